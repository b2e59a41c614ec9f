"""Declaring sweeps next to the config: products, zips, chains, random search, named variants.

A config file may define `get_sweep()` (or `get_sweep(arg)`) returning a list of override dicts:

    def get_sweep():
        return declare.product({"loss.l1_weight": [0.0, 1e-4, 1e-3]}, {"train.seed": range(5)})
"""

import itertools
from collections.abc import Iterable

import numpy as np

from ae_jax import config as config_lib
from ae_jax.errors import UserError


def product(*axes: dict | list[dict]) -> list[dict]:
    """Cartesian product: product({"a": [1, 2]}, {"b": [3, 4]}) -> 4 overrides.

    Each argument maps keys to value lists (keys in one dict vary together, zipped),
    or is already a list of override dicts (e.g. of `named` model variants).
    """
    parts = [a if isinstance(a, list) else zip_(**a) for a in axes]
    return [
        dict(itertools.chain.from_iterable(d.items() for d in combo))
        for combo in itertools.product(*parts)
    ]


def zip_(**axes: Iterable) -> list[dict]:
    """Values taken together: zip_(a=[1, 2], b=[3, 4]) -> [{a: 1, b: 3}, {a: 2, b: 4}]."""
    keys = list(axes)
    values = [list(v) for v in axes.values()]
    if len({len(v) for v in values}) > 1:
        raise UserError(
            f"sweep zip: the lists for {keys} have different lengths "
            f"{[len(v) for v in values]}; zipped axes must be equally long."
        )
    return [dict(zip(keys, combo, strict=True)) for combo in zip(*values, strict=True)]


def chain(*sweeps: list[dict]) -> list[dict]:
    """Concatenation of sweeps, in order."""
    return [dict(o) for s in sweeps for o in s]


def random_search(n: int, seed: int, **space) -> list[dict]:
    """n seeded random draws. A value is a list (uniform choice), ("uniform", lo, hi),
    ("log", lo, hi) for log-uniform, or ("int", lo, hi) for integers in [lo, hi]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        draw = {}
        for key, spec in space.items():
            if isinstance(spec, list):
                draw[key] = spec[int(rng.integers(len(spec)))]
            elif spec[0] == "uniform":
                draw[key] = float(rng.uniform(spec[1], spec[2]))
            elif spec[0] == "log":
                draw[key] = float(np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]))))
            elif spec[0] == "int":
                draw[key] = int(rng.integers(spec[1], spec[2] + 1))
            else:
                raise UserError(
                    f"random_search {key}: unknown distribution {spec[0]!r}; "
                    "expected a list, ('uniform', lo, hi), ('log', lo, hi) or "
                    "('int', lo, hi)."
                )
        out.append(draw)
    return out


def named(name: str, overrides: dict) -> dict:
    """Overrides shown under one name in run names and reports (e.g. a whole seed model)."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise UserError(
            f"sweep.named({name!r}, ...): the name becomes part of a run directory's "
            "name: give a non-empty string with no '/' that does not start with '.'."
        )
    return {"_name": name, "_named_keys": sorted(overrides), **overrides}


def config_diff(base, other) -> dict:
    """The dotted overrides that turn config `base` into `other` (e.g. to sweep seed models)."""
    a, b = config_lib.flatten_config(base.to_dict()), config_lib.flatten_config(other.to_dict())
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in b.items() if a.get(k) != v}
