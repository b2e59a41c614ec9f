"""The config's text fields parsed into names: activations (one per layer, or one for all),
the loggers of train.loggers, and the command line's text for a tuple of names."""

import ast
import importlib.util
import re

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


def parse_text_list(text: str) -> tuple[str, ...]:
    """A command line's value for a tuple of text (`TEXT_LISTS`) as that tuple.

    A Python literal of text stays what it says: `"('a,b',)"` is one name, `'a'` one. Anything
    else is a comma-separated list, its parts stripped, in optional parentheses or brackets:
    `Region,Browser`, `(Region, Browser)`, `-999,NA` (numbers are text here: cells are). A part
    in quotes is its inside (`'',NA`: the empty cell and NA); a lone quote is text
    (`Driver's license`; two such names in one list pair up: give them as a tuple); an
    unquoted empty part, as after a trailing comma, is none. ml_collections read `a,b` as the
    one name 'a,b' and `-999` as the number -999.
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    inner = text.strip()
    if inner[:1] + inner[-1:] in ("()", "[]"):
        inner = inner[1:-1]
    parts = []  # split at the commas outside quotes: `a, 'b,c'` is two names
    for part in (p.strip() for p in re.findall(r"""(?:'[^']*'|"[^"]*"|[^,'"]|['"])+""", inner)):
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            parts.append(part[1:-1])
        elif part:
            parts.append(part)
    return tuple(parts)
