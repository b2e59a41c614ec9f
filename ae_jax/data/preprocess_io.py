"""The fitted `Preprocessor` as JSON (workdir/preprocessor.json): what a new file is encoded
with at inference, so it is read back exactly as written.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import numpy as np

from ae_jax.data.cells import quote_names
from ae_jax.data.preprocess import Preprocessor
from ae_jax.data.spellings import pixel_names
from ae_jax.errors import UserError, quoted
from ae_jax.files import write_atomic


def to_dict(p: Preprocessor) -> dict[str, Any]:
    """A JSON-serialisable description of `p` (lists, str, float, bool only)."""
    return {
        "version": 3,
        "input_columns": list(p.input_columns),
        "kinds": list(p.kinds),
        "categories": dict(p.categories),
        "categorical": p.categorical,
        "scaling": p.scaling,
        "label_column": p.label_column,
        "columns": list(p.columns),
        "offset": [float(v) for v in p.offset],
        "scale": [float(v) for v in p.scale],
        "threshold": p.threshold,
        "na_values": list(p.na_values),
        "missing": p.missing,
        "fill": dict(p.fill),
        "thousands": p.thousands,
        "pixel_max": p.pixel_max,
        "span": None if p.span is None else list(p.span),
        "ranges": None if p.ranges is None else [[float(v) for v in r] for r in p.ranges],
    }


def from_dict(d: dict[str, Any]) -> Preprocessor:
    """Rebuilds a `Preprocessor` from `to_dict` output (version 1 files: empty cells are
    the only missing values, as they were then)."""
    keys = ("input_columns", "kinds", "categories", "categorical", "scaling", "offset", "scale")
    missing = [k for k in keys if not isinstance(d, dict) or k not in d]
    if missing:
        raise UserError(
            f"preprocessor: missing field(s) {quote_names(missing)}; expected "
            "a dict written by preprocess_io.to_dict"
        )
    each = "finite numbers, one per output column"
    offset = _numbers(d, "offset", (None,), f"a list of {each}", required=True)
    scale = _numbers(d, "scale", (None,), f"a list of {each}", required=True)
    p = Preprocessor(
        d["input_columns"],
        d["kinds"],
        d["categories"],
        d["categorical"],
        d["scaling"],
        offset,
        scale,
        d.get("label_column", ""),
        d.get("threshold"),
        na_values=d.get("na_values", [""]),
        missing=d.get("missing", "error"),
        fill=d.get("fill", {}),
        thousands=d.get("thousands", ""),
        pixel_max=d.get("pixel_max", 0),
        span=_numbers(d, "span", (2,), "[lowest, highest]: two finite numbers, the lowest first"),
    )
    # (None in files written before 2026-12-07)
    lists = f"[[lowest, ...], [highest, ...]]: two lists of {p.num_features} {each}, lowest first"
    p.ranges = _numbers(d, "ranges", (2, p.num_features), lists)
    return p


def _numbers(d: dict, key: str, shape: tuple, expected: str, required: bool = False):
    """preprocessor.json's field `key` as float64 of `shape` (None: any length), or None where
    it is null or absent and not `required`; a damaged one is named (text, booleans, ragged
    lists, numbers not finite, a lowest above its highest: ragged ones were numpy tracebacks)."""
    value, ok = d.get(key), False
    if value is None and not required:
        return None
    with contextlib.suppress(TypeError, ValueError, OverflowError):
        leaves = np.asarray(value, dtype=object).ravel()
        arr = np.asarray(value, dtype=np.float64)
        ok = all(type(v) in (int, float) for v in leaves) and bool(np.isfinite(arr).all())
        ok = (
            ok
            and arr.ndim == len(shape)
            and all(s in (None, a) for s, a in zip(shape, arr.shape, strict=True))
        )
        ok = ok and (key not in ("span", "ranges") or bool((arr[0] <= arr[1]).all()))
    if not ok:
        raise UserError(f"preprocessor: field {key!r} is {quoted(str(value))}; expected {expected}")
    return arr


def save_preprocessor(p: Preprocessor, path: str) -> None:
    """Writes `p` as a JSON file, whole or not at all."""
    write_atomic(path, lambda f: json.dump(to_dict(p), f, indent=1))


def load_preprocessor(path: str) -> Preprocessor:
    """Reads a JSON file written by `save_preprocessor`."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise UserError(
            f"no preprocessor file {path!r} (a run stopped before its training began has none "
            "yet: rerun its training command)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"preprocessor file {path!r} is not valid JSON ({e}); {_RESTORE}") from None
    try:
        return from_dict(d)
    except UserError as e:
        raise UserError(f"preprocessor file {path!r} is damaged: {e}; {_RESTORE}") from None


# What a damaged preprocessor.json leaves: it was fitted on the training split when the run
# began, and the model's inputs are encoded with it.
_RESTORE = (
    "expected the file the run wrote: restore it from a copy, or train into a new workdir (the "
    "model's inputs cannot be encoded without it)"
)


def difference(a: Preprocessor, b: Preprocessor) -> str:
    """'' when a and b transform rows alike, else the name of the first field that differs."""
    da, db = _pixels_named(to_dict(a)), _pixels_named(to_dict(b))
    # Not how rows are transformed: what the inputs were (pixel_max kept in the scale), and
    # the training ranges (a run saved before they were recorded, resumed, is not refused).
    for key in sorted((da.keys() | db.keys()) - {"pixel_max", "span", "ranges"}):
        if key in ("offset", "scale"):
            va, vb = np.asarray(da.get(key)), np.asarray(db.get(key))
            # The JSON round trip of a float64 is exact; the tolerance only forgives last ulps.
            if va.shape != vb.shape or not np.allclose(va, vb, rtol=1e-9, atol=0.0):
                return key
        elif da.get(key) != db.get(key):
            return key
    return ""


def _pixels_named(d: dict) -> dict:
    """`d` with pixel data's columns x_0, x_1, ... (by position) named pixel_0, pixel_1, ...:
    an array's flat rows declared images were named so before they were named as an image
    array's pixels (`images.in_pixel_order`); a run saved then resumes, not refused."""
    if not d["pixel_max"]:
        return d
    named = {key: pixel_names(d[key]) for key in ("input_columns", "columns")}
    old = dict(zip(d["input_columns"], named["input_columns"], strict=True))  # a fill's name
    return {**d, **named, "fill": {old.get(k, k): v for k, v in d["fill"].items()}}
