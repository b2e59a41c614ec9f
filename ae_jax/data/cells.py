"""Vectorised operations on one raw column, whatever holds it.

A raw column is a pyarrow string array (CSV, TSV and Parquet text, as read; Parquet nulls stay
null), a NumPy string or object array (rows passed to `Preprocessor.transform`), or a NumPy
numeric / bool array (npy, npz, bundled sets, numeric Parquet columns). Text is parsed with
Python's `float` rules but for digits joined by "_" (as pandas reads "2023_01"), cells stripped
like `str.strip`; what the fast paths (pyarrow's cast, NumPy's conversion) refuse is parsed
once per distinct cell (a categorical column: as many `float` calls as it has categories).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ae_jax.errors import UserError, quoted, repeated

# Cells read as missing values unless data.na_values says otherwise.
NA_VALUES = ("", "NA", "N/A", "NaN", "nan", "null", "None", "?")
# The category every categorical column keeps for values its training split never showed.
UNSEEN = "<unseen>"
# Thousands separators data.thousands may name ("" = none: "1,037" is refused, not guessed).
THOUSANDS = ("", ",", " ", "'")
_PROBE = 1000  # cells cast to numbers before the whole column is
# A number written with leading zeros ('007', '02134'): a code (an id, a zip code), whose zeros
# a number loses.
LEADING_ZERO = re.compile(r"\s*[+-]?0\d")
_GROUPED = {
    sep: re.compile(rf"[+-]?[1-9]\d{{0,2}}(?:{re.escape(sep)}\d{{3}})+(?:\.\d*)?")  # not 0,125
    for sep in THOUSANDS
    if sep
}


def quote_names(names: Sequence[Any], limit: int = 30) -> str:
    """Formats names as a list, cut short so a 784-pixel table still gives a readable error."""
    shown = ", ".join(quoted(str(n)) for n in list(names)[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"[{shown}{more}]"


def size_text(nbytes: float) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{nbytes:.0f} bytes"


def frame_columns(frame: Any) -> tuple[list[str], list[np.ndarray]]:
    """A pandas-like data frame's column names and columns as NumPy arrays. The frame's own
    missing markers (pandas' NA in string and nullable columns) become None, missing as NaN is
    (`Cells.missing`): as they are, they read as the text '<NA>', a category of their own."""
    names = [str(c).strip() for c in frame.columns]  # as a CSV header's and Parquet's
    if twice := repeated(names):
        raise UserError(
            f"the data frame has repeated column names {quote_names(twice)}; expected each "
            "column once: rename or drop the copies."
        )
    values = []
    for name, c in zip(names, frame.columns, strict=True):
        series = frame[c]
        arr = np.asarray(series.to_numpy())
        kind = {"M": "dates or times", "m": "time spans", "c": "complex numbers"}.get(
            arr.dtype.kind
        )
        if kind:  # as float64: nanoseconds since 1970, or the real part alone, silently
            raise UserError(
                f"the data frame's column {name!r} holds {kind} ({arr.dtype}); expected numbers, "
                "true/false or text: convert it (e.g. days since a date, or the parts as two "
                "columns) or drop it."
            )
        check_cells(f"the data frame's column {name!r}", arr)
        isna = getattr(series, "isna", None) or getattr(series, "is_null", None)  # pandas, polars
        if arr.dtype == object and isna is not None:
            missing = np.asarray(isna(), bool)
            if missing.any():
                arr = arr.copy()
                arr[missing] = None
        values.append(arr)
    return names, values


def check_cells(what: str, col: np.ndarray) -> None:
    """Refuses an object column holding lists or arrays (a ValueError deep in the encoding),
    dates, time spans or complex numbers (a datetime64 cell was read as days since 1970)."""
    odd = (np.datetime64, np.timedelta64, complex, np.complexfloating)
    kinds = (list, tuple, dict, set, np.ndarray, *odd)
    bad = next((v for v in col if isinstance(v, kinds)), None) if col.dtype == object else None
    if bad is not None:
        held = "dates, time spans or complex numbers" if isinstance(bad, odd) else "lists or arrays"
        raise UserError(
            f"{what} holds {held} in its cells (e.g. {bad!r:.40}); expected one number, "
            "true/false or text per cell."
        )


def is_arrow(col: Any) -> bool:
    return isinstance(col, pa.Array | pa.ChunkedArray)


def is_text(col: Any) -> bool:
    return is_arrow(col) or np.asarray(col).dtype.kind in "OUST"


def cell(col: Any, r: int) -> str:
    """The cell at `r` as text, stripped ("" for a null: not named as the marker 'None')."""
    v = col[int(r)].as_py() if is_arrow(col) else col[r]
    return "" if v is None else str(v).strip()


def numpy_of(arr: Any, fill: float | None = None) -> np.ndarray:
    """A numeric or boolean pyarrow Array or ChunkedArray as one NumPy array (a copy); nulls
    become `fill` (None: the array must have none). Through its Arrow buffers: pyarrow's own
    conversions (`pa.array`, `to_numpy`) import pandas, 0.25 s on every run."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    t = arr.type
    dtype = np.dtype(bool) if pa.types.is_boolean(t) else np.dtype(_NUMPY.get(str(t), str(t)))
    parts = []
    for c in chunks:
        n, offset = len(c), c.offset
        if n == 0:
            continue
        validity, data = c.buffers()[:2]
        if pa.types.is_boolean(t):
            values = _bits(data, offset, n)
        else:  # a read-only view of the Arrow buffer: copied below
            values = np.frombuffer(data, dtype, n, offset * dtype.itemsize)
        if c.null_count:
            if fill is None:
                raise ValueError(f"{c.null_count} null(s) where none are expected")
            values = values.astype(np.result_type(values.dtype, np.min_scalar_type(fill)))
            values[~_bits(validity, offset, n)] = fill
        parts.append(values)
    if not parts:
        return np.zeros(0, dtype)
    return np.concatenate(parts) if len(parts) > 1 else np.array(parts[0])


_NUMPY = {"double": "float64", "float": "float32", "halffloat": "float16"}


def _bits(buffer: Any, offset: int, n: int) -> np.ndarray:
    """n booleans of an Arrow bitmap (least significant bit first), from bit `offset`."""
    bits = np.unpackbits(np.frombuffer(buffer, np.uint8), bitorder="little")
    return bits[offset : offset + n].astype(bool)


def strings_array(texts: Sequence[str]) -> pa.StringArray:
    """A pyarrow string array of `texts`, built from its buffers (see `numpy_of`)."""
    data = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(data), pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data))
    )


def take(col: Any, rows: np.ndarray) -> Any:
    if not is_arrow(col):
        return col[rows]
    index = np.ascontiguousarray(rows, np.int64)
    return col.take(pa.Array.from_buffers(pa.int64(), len(index), [None, pa.py_buffer(index)]))


def bool_words(col: Any, vocab: Sequence[str]) -> Any:
    """A column of booleans (a data frame's, parsed by pandas) as the words a categorical
    column's training `vocab` spelt true and false with, in any case ('TRUE', 'False'); any
    other column, or a vocabulary without both words, as it is."""
    if not (isinstance(col, np.ndarray) and col.dtype == np.bool_):
        return col
    spelt = {str(v).strip().lower(): v for v in reversed(vocab)}  # the first of each, kept
    if "true" not in spelt or "false" not in spelt:
        return col
    return np.where(col, spelt["true"], spelt["false"]).astype(object)


def as_numpy(col: Any) -> np.ndarray:
    """The column as NumPy: pyarrow text becomes an object array of stripped str (None for
    nulls)."""
    if is_arrow(col):
        return pc.utf8_trim_whitespace(_as_string(col)).to_numpy(zero_copy_only=False)
    return np.asarray(col)


def _text(col: np.ndarray) -> np.ndarray:
    """Cells as text; a float array's as `number_text` writes them ('3', not '3.0': the
    categories of a column of codes read from an array or a Parquet file)."""
    if col.dtype.kind == "U":
        return col
    if col.dtype.kind == "f":
        found, inverse = np.unique(col, return_inverse=True)
        return np.array([number_text(v) for v in found], dtype=str)[inverse.reshape(col.shape)]
    return np.asarray(col, dtype=str)


def number_text(v: Any) -> str:
    """A cell as text: a whole number as an integer ('3', not '3.0'), another number as its
    shortest form ('0.5'), anything else (text, true/false) as str() gives it."""
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isfinite(f) and f == int(f) and abs(f) < 2**53:
            return str(int(f))
    return str(v)


def _as_string(col: Any) -> Any:
    """pyarrow text as plain strings (dictionary-encoded text decoded)."""
    return pc.cast(col, pa.string()) if pa.types.is_dictionary(col.type) else col


def _distinct(col: Any) -> tuple[list[str], np.ndarray]:
    if is_arrow(col):
        enc = col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(col)
        chunks = enc.chunks if isinstance(enc, pa.ChunkedArray) else [enc]
        # The chunks of one encoding share its dictionary (else: one chunk, at a copy's cost).
        if not chunks or len({len(c.dictionary) for c in chunks}) != 1:
            chunks = [pc.dictionary_encode(_as_string(col).combine_chunks())]
        uniq = chunks[0].dictionary.to_pylist()
        inverse = np.concatenate([numpy_of(c.indices, -1) for c in chunks])
    else:
        found, inverse = np.unique(_text(np.asarray(col)), return_inverse=True)
        uniq = found.tolist()
    # Surrounding whitespace is no part of a cell (" Feb " is "Feb"): strip the distinct
    # texts, then merge those that became equal.
    stripped = [u.strip() for u in uniq]
    if stripped != uniq:
        merged: dict[str, int] = {}
        remap = np.array([merged.setdefault(t, len(merged)) for t in stripped] + [-1])
        uniq, inverse = list(merged), remap[inverse]
    return uniq, inverse.reshape(-1).astype(np.int64)


def _float_or_none(text: str, thousands: str) -> float | None:
    # Python's float reads "2023_01" as 202301 and "2_5" as 25 (its literals' digit groups):
    # a period or a code, which pandas and pyarrow read as text, is no number here either.
    if "_" in text:
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        pass
    if thousands and _GROUPED[thousands].fullmatch(text):
        return float(text.replace(thousands, ""))
    return None


def number_or_none(text: str) -> float | None:
    """The number `text` reads as (Python's `float`), or None: not one, NaN, or beyond 2**53,
    where float64 holds several integers as one (18-digit ids would match each other)."""
    v = _float_or_none(text, "")
    return None if v is None or not abs(v) < 2**53 else v


def is_number(text: str, thousands: str = "") -> bool:
    """Whether `text` reads as a number other than NaN (a marker such as "-999")."""
    v = _float_or_none(text, thousands)
    return v is not None and not math.isnan(v)


def _fast_floats(col: Any) -> np.ndarray | None:
    """The column as float64 if pyarrow's cast or NumPy's conversion reads every cell."""
    try:
        if is_arrow(col):
            if pa.types.is_dictionary(col.type):  # text where a cell is no number
                return None
            # A refused cast costs as much as a full parse: try the first cells first, so a
            # text column goes straight to its (few) distinct values.
            pc.cast(col.slice(0, _PROBE), pa.float64())
            x = pc.cast(col, pa.float64())
            return numpy_of(x) if x.null_count == 0 else None
        x = np.asarray(col, dtype=np.float64)  # (NumPy reads "2_5" as 25 too: not here)
        return None if (np.char.find(np.asarray(col, dtype=str), "_") >= 0).any() else x
    except (pa.ArrowInvalid, TypeError, ValueError):
        return None


class Cells:
    """One raw column, with its distinct values and parsed numbers computed once.

    A text column that is not all numbers is parsed once per distinct cell (`parsed`), and
    per-cell arrays are made only when asked for (`numbers`). Attributes:
        values: the column (pyarrow text, or a NumPy array).
        thousands: thousands separator read inside numbers ("" = none).
        text: whether the cells are text (else NumPy numbers or booleans).
    """

    def __init__(self, values: Any, thousands: str = ""):
        self.values, self.thousands = values, thousands
        self.text = is_text(values)

    def release(self, *what: str) -> None:
        """Forgets computed values ("fast", "parsed", "distinct"; default: all), for memory."""
        for name in what or ("fast", "parsed", "distinct"):
            self.__dict__.pop(name, None)

    def __len__(self) -> int:
        return len(self.values)

    @functools.cached_property
    def distinct(self) -> tuple[list[str], np.ndarray]:
        """The distinct cells as text (in no particular order) and, per cell, the position of
        its text among them (-1 for a Parquet null)."""
        return _distinct(self.values)

    @functools.cached_property
    def fast(self) -> np.ndarray | None:
        """The column as float64 when every cell is a number the fast converters read."""
        if not self.text:
            return np.asarray(self.values, dtype=np.float64)
        return _fast_floats(self.values)

    @functools.cached_property
    def parsed(self) -> tuple[np.ndarray, np.ndarray]:
        """Per distinct cell (and a last slot for nulls): its number, and whether it is not
        one. Python's `float` decides; `thousands` also reads "1,037" (groups of three)."""
        uniq = self.distinct[0]
        values, bad = np.zeros(len(uniq) + 1), np.ones(len(uniq) + 1, bool)
        for k, text in enumerate(uniq):
            v = _float_or_none(text, self.thousands)
            if v is not None:
                values[k], bad[k] = v, False
        return values, bad

    @property
    def numbers(self) -> tuple[np.ndarray, np.ndarray]:
        """The column as float64 and the positions whose cells are not numbers (0.0 there)."""
        if self.fast is not None:
            return self.fast, np.zeros(0, np.int64)
        (values, bad), inverse = self.parsed, self.distinct[1]
        return values[inverse], np.flatnonzero(bad[inverse])

    def missing(self, na_values: Sequence[str]) -> np.ndarray:
        """True where a cell is a missing value: a text cell equal to one of `na_values`, a
        Parquet null, NaN in a number array, None or NaN in an object array (rows passed as
        Python objects, a data frame's NA), or a cell whose number equals a marker that is a
        number ("-999", "-999.0" or -999.0 for the marker "-999"), in any column."""
        col = self.values
        # is_number keeps only markers _float_or_none reads, so none of these is None.
        numeric_markers = [
            cast(float, _float_or_none(v, self.thousands))
            for v in na_values
            if is_number(v, self.thousands)
        ]
        if not self.text:  # NaN, and numbers equal to a marker such as "-999"
            col = np.asarray(col)
            mask = np.isnan(col) if col.dtype.kind == "f" else np.zeros(len(col), bool)
            if numeric_markers and col.dtype.kind in "iuf":
                mask |= np.isin(col, numeric_markers)
            return mask
        if self.fast is not None:
            if not numeric_markers and not np.isnan(self.fast).any():
                return np.zeros(len(col), bool)  # numbers, no NaN, no marker like "-999"
            if is_arrow(col):
                spelled = numpy_of(pc.is_in(col, value_set=strings_array(list(na_values))), False)
                return spelled | np.isin(self.fast, numeric_markers)
        uniq, inverse = self.distinct  # per distinct cell: its spelling, or its number
        marked = np.isin(np.array(uniq, dtype=object), list(na_values))
        if numeric_markers:
            values, not_number = self.parsed
            marked |= ~not_number[:-1] & np.isin(values[:-1], numeric_markers)
        mask = np.append(marked, True)[inverse]
        if isinstance(col, np.ndarray) and col.dtype == object:  # rows passed as Python objects
            mask |= np.frompyfunc(_absent, 1, 1)(col).astype(bool)
        return mask


def _absent(v: Any) -> bool:
    """None, NaN or pandas' NA (without importing pandas): no value, whatever the markers."""
    if v is None:
        return True
    try:
        return bool(v != v)
    except (TypeError, ValueError, ArithmeticError):  # NA's truth is ambiguous; sNaN traps
        return type(v).__name__ == "NAType"


def missing_mask(col: Any, na_values: Sequence[str]) -> np.ndarray:
    """`Cells(col).missing(na_values)`."""
    return Cells(col).missing(na_values)


def parse_floats(col: Any, thousands: str = "") -> tuple[np.ndarray, np.ndarray]:
    """`Cells(col, thousands).numbers`: float64 values and the positions of non-numbers."""
    return Cells(col, thousands).numbers


def grouped_separator(texts: Sequence[str]) -> str:
    """The thousands separator every one of `texts` is written with ("" if none fits)."""
    for sep, pattern in _GROUPED.items():
        if texts and all(pattern.fullmatch(t) for t in texts):
            return sep
    return ""
