"""Declaring sweeps next to the config: products, zips, chains, random search, named variants.

A config file may define `get_sweep()` (or `get_sweep(arg)`) returning a list of override dicts:

    def get_sweep():
        return declare.product({"loss.l1_weight": [0.0, 1e-4, 1e-3]}, {"train.seed": range(5)})
"""

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from ae_jax import config as config_lib
from ae_jax.errors import UserError

_NAMING = ("_name", "_named_keys")  # sweep.named's labels, not config fields


def product(*axes: dict | list[dict]) -> list[dict]:
    """Cartesian product: product({"a": [1, 2]}, {"b": [3, 4]}) -> 4 overrides.

    Each argument maps keys to value lists (keys in one dict vary together, zipped),
    or is already a list of override dicts (e.g. of `named` model variants). Two axes may not
    set one field (the later would overwrite the earlier's value under the earlier's name).
    """
    for i, a in enumerate(axes):
        if isinstance(a, dict) and "_named_keys" in a:  # (its '_name' was said as an axis)
            raise UserError(
                f"sweep.product argument {i + 1} is one sweep.named variant ({a['_name']!r}), "
                "an override dict, not an axis: put it in a list, [sweep.named(...), ...] (a "
                "list axis holds the variants, one run each)."
            )
    parts = [_entries(i, a) if isinstance(a, list) else zip_(**a) for i, a in enumerate(axes)]
    _refuse_shared_fields(axes, parts)
    return [
        dict(itertools.chain.from_iterable(d.items() for d in combo))
        for combo in itertools.product(*parts)
    ]


def zip_(**axes: Iterable) -> list[dict]:
    """Values taken together: zip_(a=[1, 2], b=[3, 4]) -> [{a: 1, b: 3}, {a: 2, b: 4}]."""
    keys = list(axes)
    values = [_values(k, v) for k, v in axes.items()]
    if len({len(v) for v in values}) > 1:
        raise UserError(
            f"sweep zip: the lists for {keys} have different lengths "
            f"{[len(v) for v in values]}; zipped axes must be equally long."
        )
    return [dict(zip(keys, combo, strict=True)) for combo in zip(*values, strict=True)]


def _values(key: str, values) -> list:
    """An axis's values as a list, refusing one value given where a list of them is expected
    (a string was split into its characters, a number was 'not iterable') and a set (its
    order, so the runs' indices, changes from process to process)."""
    if isinstance(values, set | frozenset):
        raise UserError(
            f"sweep axis {key!r}: got a set {values!r}; a set's order changes from process to "
            "process, so each shard would number the runs differently: give a list, e.g. "
            f"{sorted(values, key=repr)!r}."
        )
    if isinstance(values, str | bytes | dict) or not isinstance(values, Iterable):
        raise UserError(
            f"sweep axis {key!r}: got the single {type(values).__name__} {values!r} where a "
            f"list of values is expected; wrap it in a list, {{{key!r}: [{values!r}]}} (one "
            "run per value in the list; a tuple-valued field's values are tuples in a list, "
            "e.g. {'model.encoder_widths': [(64,), (128, 64)]})."
        )
    values = list(values)
    if not values:  # (the whole product was then empty: "get_sweep() returned no runs")
        raise UserError(
            f"sweep axis {key!r}: the list of values is empty; an axis needs at least one value "
            "(one run per value, times the other axes' values)."
        )
    return values


def _entries(i: int, axis: list) -> list[dict]:
    """A list axis's override dicts (e.g. of `named` variants), refusing anything else."""
    for j, entry in enumerate(axis):
        if not isinstance(entry, dict):
            raise UserError(
                f"sweep.product argument {i + 1}: entry {j} is {type(entry).__name__} {entry!r}; a "
                "list axis holds override dicts (e.g. sweep.named variants); to sweep a "
                "field's values, give a dict: {'field': [value, ...]}."
            )
    return axis


def _refuse_shared_fields(axes: tuple, parts: list[list[dict]]) -> None:
    """Refuses two axes of one product that set the same field, or that both name their
    entries: a run would show the earlier axis's name but train the later one's value."""
    owner: dict[str, int] = {}
    for i, part in enumerate(parts):
        fields = dict.fromkeys(k for d in part for k in d if k not in _NAMING)
        if any("_name" in d for d in part):
            fields["_name"] = None
        for key in fields:
            if key not in owner:
                owner[key] = i
                continue
            j = owner[key]
            if key == "_name":
                what = (
                    "both hold named variants (sweep.named): a run would show only the later "
                    "argument's name. Name the combinations in one argument instead, e.g. "
                    "sweep.named(f'{a}-{b}', {**first, **second}) for each pair"
                )
            else:
                what = (
                    f"both set {key!r}: every run would train the later argument's value, the "
                    "earlier one's lost (a named variant's run would keep its name, not its "
                    "value). Set each field in one argument only (put its values together in "
                    "one, or chain products that each set it once)"
                )
            raise UserError(
                f"sweep.product: its arguments {j + 1} ({_describe(axes[j])}) and {i + 1} "
                f"({_describe(axes[i])}) {what}."
            )


def _describe(axis) -> str:
    """An axis as a refusal names it: its named variants, else its fields."""
    if isinstance(axis, list):
        names = [d["_name"] for d in axis if "_name" in d]
        if names:
            return f"named {', '.join(map(str, names[:4]))}{' ...' if len(names) > 4 else ''}"
        return f"{len(axis)} entries of {sorted({k for d in axis for k in d})}"
    return repr(axis)[:120]


def chain(*sweeps: list[dict]) -> list[dict]:
    """Concatenation of sweeps (each a list of entries: dicts), in order."""
    out = []
    for i, s in enumerate(sweeps):
        listed = isinstance(s, Iterable) and not isinstance(s, str | bytes | Mapping)
        entries = list(s) if listed else []
        if not listed or not all(isinstance(o, Mapping) for o in entries):
            one = " (one entry, such as sweeps.named(...)'s: wrap it in a list, [entry])"
            raise UserError(
                f"sweeps.chain: argument {i + 1} is {type(s).__name__} {s!r:.60}; expected a "
                f"sweep, a list of dicts (as product(...) returns){one * isinstance(s, Mapping)}."
            )
        out += [dict(o) for o in entries]
    return out


def random_search(*args, **kwargs) -> list[dict]:
    """n seeded random draws of a space of fields, given as a dict, as `product`'s axes are:
    random_search({"optim.learning_rate": ("log", 1e-4, 1e-2)}, n=8, seed=0), or after n and
    seed as keywords: random_search(8, 0, **{...}). A value is a list (uniform choice),
    ("uniform", lo, hi), ("log", lo, hi) for log-uniform (0 < lo), or ("int", lo, hi) for
    integers in [lo, hi]."""
    first = bool(args) and isinstance(args[0], dict)  # (then n and seed after it, or keywords)
    space, rest = (dict(args[0]), args[1:]) if first else ({}, args)
    given = dict(zip(("n", "seed"), rest, strict=False))
    if len(rest) > 2 or given.keys() & kwargs.keys():
        raise UserError(
            f"random_search: called with {len(args)} positional argument(s) and keywords "
            f"{sorted(kwargs)}; expected random_search(space, n=N, seed=S), space a dict of "
            "fields to their choices or ranges (or random_search(N, S, **space))."
        )
    given.update(kwargs)
    n, seed = given.pop("n", None), given.pop("seed", None)
    space.update(given)
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise UserError(f"random_search: n={n!r}; expected how many draws, a whole number >= 1.")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise UserError(
            f"random_search: seed={seed!r}; give a whole number >= 0: the draws must be the "
            "same in every process (each shard and rerun calls get_sweep() again)."
        )
    for key, spec in space.items():
        _check_space(key, spec)
    rng = np.random.default_rng(int(seed))
    out: list[dict] = []
    for _ in range(n):
        draw = {}
        for key, spec in space.items():
            if isinstance(spec, list):
                draw[key] = spec[int(rng.integers(len(spec)))]
            elif spec[0] == "uniform":
                draw[key] = float(rng.uniform(spec[1], spec[2]))
            elif spec[0] == "log":
                draw[key] = float(np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]))))
            else:
                draw[key] = int(rng.integers(spec[1], spec[2] + 1))
        if draw in out:  # (the sweep's check named two entries, not the space that was small)
            raise UserError(
                f"random_search: draws {out.index(draw) + 1} and {len(out) + 1} of n={n} "
                f"(seed={seed}) are the same settings, {draw}; a sweep's runs must differ: "
                "give fewer draws, wider ranges or more choices, or another seed (with lists "
                "of choices alone, product(...) trains every combination once)."
            )
        out.append(draw)
    return out


def _check_space(key: str, spec) -> None:
    """Refuses a random_search value that is no list of choices nor a range it can draw from."""
    forms = "expected a list of choices, ('uniform', lo, hi), ('log', lo, hi) or ('int', lo, hi)"
    if isinstance(spec, list):
        if not spec:
            raise UserError(f"random_search {key}: the list of choices is empty; {forms}.")
        return
    if not isinstance(spec, tuple) or len(spec) != 3:
        raise UserError(f"random_search {key}: got {spec!r}; {forms}.")
    kind, lo, hi = spec
    if kind not in ("uniform", "log", "int"):
        raise UserError(f"random_search {key}: unknown distribution {kind!r}; {forms}.")
    whole = kind == "int"
    number = numbers.Integral if whole else numbers.Real
    # (np.isfinite refused a Python int beyond int64 with a TypeError; integers are finite)
    typed = all(isinstance(v, number) and not isinstance(v, bool) for v in (lo, hi))
    if not typed or not all(isinstance(v, numbers.Integral) or math.isfinite(v) for v in (lo, hi)):
        raise UserError(
            f"random_search {key}: {spec!r}; lo and hi must be finite "
            f"{'whole numbers' if whole else 'numbers'}."
        )
    if whole and not -(2**63) <= min(lo, hi) <= max(lo, hi) < 2**63 - 1:
        raise UserError(f"random_search {key}: {spec!r}; expected lo and hi within ±2**63.")
    if kind == "log" and not 0 < lo <= hi:
        raise UserError(
            f"random_search {key}: {spec!r}; a log-uniform range needs 0 < lo <= hi (the draws "
            "are exp(uniform(log lo, log hi))); for a range from 0 use ('uniform', 0, hi)."
        )
    if lo > hi:
        raise UserError(f"random_search {key}: {spec!r}; expected lo <= hi.")


def named(name: str, overrides: dict) -> dict:
    """Overrides shown under one name in run names and reports (e.g. a whole seed model)."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise UserError(
            f"sweep.named({name!r}, ...): the name becomes part of a run directory's "
            "name: give a non-empty string with no '/' that does not start with '.'."
        )
    if not isinstance(overrides, dict):
        raise UserError(
            f"sweep.named({name!r}, ...): got {type(overrides).__name__} "
            f"{overrides!r:.60}; expected a dict of overrides ({{'field.name': value, ...}})."
        )
    return {"_name": name, "_named_keys": sorted(overrides), **overrides}


def config_diff(base, other) -> dict:
    """The dotted overrides that turn config `base` into `other` (e.g. to sweep seed models)."""
    config_lib.check_is_config(base)  # (a dict was an AttributeError)
    config_lib.check_is_config(other)
    a, b = config_lib.flatten_config(base.to_dict()), config_lib.flatten_config(other.to_dict())
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in b.items() if a.get(k) != v}
