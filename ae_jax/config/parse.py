"""The config's text fields parsed into names: activations (one per layer, or one for all)
and the loggers of train.loggers."""

import importlib.util

from ae_jax.config.schema import ACTIVATION_NAMES, LOGGERS
from ae_jax.errors import UserError


def parse_activations(spec: str, n: int, field: str) -> tuple[str, ...]:
    """'relu' -> ('relu',) * n; 'relu,tanh' -> per layer (must have n entries)."""
    names = tuple(s.strip() for s in spec.split(",") if s.strip()) or ("",)
    for name in names:
        if name not in ACTIVATION_NAMES:
            raise UserError(
                f"{field}: unknown activation {name!r}; expected one of {sorted(ACTIVATION_NAMES)} "
                "(or a comma-separated list, one per hidden layer)."
            )
    if len(names) == 1:
        return names * n
    if len(names) != n:
        raise UserError(
            f"{field}: {len(names)} activations given ({spec!r}) for {n} hidden layers; give one "
            "name for all layers or exactly one per layer."
        )
    return names


def parse_loggers(text: str) -> list[str]:
    """train.loggers ('tensorboard,mlflow') as a list of names; UserError for an unknown name
    or a tracker whose package is not installed (checked without importing it)."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    for n in names:
        if n not in LOGGERS:
            raise UserError(
                f"train.loggers: unknown logger {n!r} in {text!r}; expected a "
                f"comma-separated list of {list(LOGGERS)}."
            )
        if n != "tensorboard" and importlib.util.find_spec(n) is None:
            raise UserError(
                f"train.loggers names {n!r}, but the {n} package is not installed; "
                'pip install "ae_jax[trackers]" (or drop it from train.loggers).'
            )
    return list(dict.fromkeys(names))
