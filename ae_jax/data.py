"""Data sets for the autoencoders: bundled sets or user files, encoded and scaled.

`load_dataset(cfg)` reads one table (a bundled scikit-learn set, a `.csv` with a header row, a
`.npy` array or a `.npz` archive), splits it deterministically into train and validation rows,
and fits one `Preprocessor` on it: categorical columns become ordinal codes or one-hot columns,
true/false columns become 1/0, and every output column is scaled with statistics of the TRAIN
rows only. The same `Preprocessor` (saved as JSON) later encodes new files for inference.

Every user mistake raises `UserError` naming the field, file, column, row and value, before any
training starts.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import logging

from ae_jax.errors import UserError

BUNDLED = ("digits", "breast_cancer")
CATEGORICAL = ("ordinal", "onehot")
SCALING = ("minmax", "standard", "none")
EXTENSIONS = (".csv", ".npy", ".npz")
# A column this numeric is a numeric column with typos, not a categorical one.
_NUMERIC_SHARE = 0.9
_SHOWN_ROWS = 5  # offending rows quoted in one error message
_BOOL = {"true": 1.0, "false": 0.0}


def _names(names: Sequence[Any], limit: int = 30) -> str:
    """Formats names as a list, cut short so a 784-pixel table still gives a readable error."""
    shown = ", ".join(repr(str(n)) for n in list(names)[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"[{shown}{more}]"


@dataclasses.dataclass
class Table:
    """Raw columns of one source, before any encoding (what `read_table` returns).

    Attributes:
        source: how error messages name the source, e.g. "data.path 'shop.csv'".
        columns: column names in source order.
        values: one 1-D array per column: object arrays of stripped strings (CSV) or the
            numeric arrays as stored (npy, npz, bundled sets).
        line_numbers: file line of each row (CSV only), so errors point into the file.
        row_index: 0-based position of each row in the source (None: 0..N-1); kept by `take`.
        image_shape: per-row image shape of a flattened image array, else None.
        default_label: label column used when the config names none: "y" for npz files with
            such an array, "target" for bundled sets, "" otherwise.
    """

    source: str
    columns: list[str]
    values: list[np.ndarray]
    line_numbers: np.ndarray | None = None
    row_index: np.ndarray | None = None
    image_shape: tuple[int, ...] | None = None
    default_label: str = ""

    @property
    def num_rows(self) -> int:
        return len(self.values[0]) if self.values else 0

    def column(self, name: str) -> np.ndarray:
        return self.values[self.columns.index(name)]

    def take(self, rows: Sequence[int] | np.ndarray) -> Table:
        """Returns the given rows (0-based positions); error messages keep the original rows."""
        rows = np.asarray(rows, dtype=np.int64)
        index = self.row_index if self.row_index is not None else np.arange(self.num_rows)
        lines = None if self.line_numbers is None else self.line_numbers[rows]
        return dataclasses.replace(
            self, values=[v[rows] for v in self.values], line_numbers=lines, row_index=index[rows]
        )

    def drop(self, name: str) -> Table:
        keep = [i for i, c in enumerate(self.columns) if c != name]
        return dataclasses.replace(
            self, columns=[self.columns[i] for i in keep], values=[self.values[i] for i in keep]
        )

    def where(self, rows: Sequence[int], col: np.ndarray | None = None) -> str:
        """Names up to 5 rows as the user sees them: 1-based data row plus file line or index."""
        parts = []
        for r in list(rows)[:_SHOWN_ROWS]:
            orig = int(self.row_index[r]) if self.row_index is not None else int(r)
            if self.line_numbers is not None:
                part = f"row {orig + 1} (line {int(self.line_numbers[r])})"
            else:
                part = f"row {orig + 1} (index {orig})"
            parts.append(part if col is None else f"{part} {str(col[r])!r}")
        more = f" and {len(rows) - _SHOWN_ROWS} more" if len(rows) > _SHOWN_ROWS else ""
        return ", ".join(parts) + more


def read_table(
    path: str, npz_key: str = "", *, label_column: str = "", field: str = ""
) -> Table:
    """Reads a `.csv` (header row required), `.npy` or `.npz` file into a `Table`.

    Args:
        path: the file; its extension picks the format.
        npz_key: for `.npz`: the feature array; "" means "x" if present, else the only array
            besides the label array.
        label_column: for `.npz`: an array of labels to add as a column named after its key;
            "" means "y" if present. Ignored for `.csv` (the label is already a column).
        field: config field that named the file ("data.path"), used to prefix error messages.

    Returns:
        The raw table: CSV cells stay strings; type inference happens in `Preprocessor`.
    """
    shown = f"{field} {path!r}" if field else repr(path)
    full = os.path.expanduser(path)
    ext = os.path.splitext(full)[1].lower()
    if not os.path.exists(full):
        raise UserError(f"{field + ': ' if field else ''}no such file {path!r}; expected an "
                        f"existing {', '.join(EXTENSIONS)} file")
    if ext not in EXTENSIONS:
        raise UserError(f"{shown}: unsupported file type {ext or '(no extension)'!r}; "
                        f"supported: {', '.join(EXTENSIONS)}")
    if os.path.isdir(full) or os.path.getsize(full) == 0:
        raise UserError(f"{shown} is {'a directory' if os.path.isdir(full) else 'empty'}; "
                        "expected a file holding a header row and data rows, or an array")
    if ext == ".csv":
        return _read_csv(full, shown)
    return _read_arrays(full, shown, ext, npz_key, label_column)


def _read_csv(full: str, shown: str) -> Table:
    header: list[str] | None = None
    cells: list[list[str]] = []
    lines: list[int] = []
    # utf-8-sig drops the byte-order mark spreadsheet programs put before the first header name.
    with open(full, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            for row in reader:
                if not row:  # blank line: nothing to read, and trailing ones are common
                    continue
                row = [c.strip() for c in row]
                if header is None:
                    header = row
                    _check_header(header, shown)
                    cells = [[] for _ in header]
                    continue
                if len(row) != len(header):
                    raise UserError(
                        f"{shown}: line {reader.line_num} (data row {len(lines) + 1}) has "
                        f"{len(row)} cells but the header has {len(header)} columns; expected "
                        "one cell per column in every row")
                for column, cell in zip(cells, row, strict=True):
                    column.append(cell)
                lines.append(reader.line_num)
        except UnicodeDecodeError:
            raise UserError(f"{shown} is not UTF-8 text; expected a comma-separated text file "
                            "with a header row") from None
        except csv.Error as e:
            raise UserError(f"{shown}: line {reader.line_num} is not valid CSV ({e})") from None
    if header is None:
        raise UserError(f"{shown} is empty; expected a header row of column names followed by "
                        "data rows")
    if not lines:
        raise UserError(f"{shown} has a header row but no data rows; expected at least 2 rows "
                        "to split into train and validation")
    table = Table(shown, header, [np.array(c, dtype=object) for c in cells], np.array(lines))
    for name, col in zip(table.columns, table.values, strict=True):
        empty = np.flatnonzero(col == "")
        if empty.size:
            raise UserError(
                f"{shown}: column {name!r} has {empty.size} empty cell(s) (missing values) at "
                f"{table.where(empty)}; expected a value in every cell: fill them in or drop "
                "those rows")
    return table


def _check_header(header: list[str], shown: str) -> None:
    if any(not name for name in header):
        raise UserError(f"{shown}: header column {header.index('') + 1} has no name; expected "
                        "a name for every column in the first row")
    dupes = sorted({n for n in header if header.count(n) > 1})
    if dupes:
        raise UserError(f"{shown}: duplicate column names in the header: {_names(dupes)}; "
                        "expected unique names")
    if not _parse_floats(np.array(header, dtype=object))[1]:
        raise UserError(f"{shown}: the first row {_names(header, 5)} looks like data; expected "
                        "a header row of column names")


def _read_arrays(full: str, shown: str, ext: str, npz_key: str, label_column: str) -> Table:
    try:
        # No pickles: loading a data file must not be able to run code.
        loaded = np.load(full, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{shown} cannot be read as a NumPy {ext} file ({e}); expected a "
                        "numeric array") from None
    labels, label_key, key = None, "", ""
    if ext == ".npy":
        x = loaded
        if label_column:
            raise UserError(f"data.label_column {label_column!r} is set but {shown} is a .npy "
                            "file holding one unnamed array; use '' or a .npz/.csv file")
    else:
        with loaded:
            keys = list(loaded.files)
            label_key = label_column or ("y" if "y" in keys else "")
            others = [k for k in keys if k != label_key]
            key = npz_key or ("x" if "x" in keys else (others[0] if len(others) == 1 else ""))
            for what, k in (("data.label_column", label_key), ("data.npz_key", key)):
                if k and k not in keys:
                    raise UserError(f"{what} {k!r} is not an array in {shown}; its arrays: "
                                    f"{_names(keys)}")
            if not key:
                raise UserError(f"{shown} has no array 'x' and not exactly one other array; set "
                                f"data.npz_key to one of its arrays: {_names(keys)}")
            try:
                x = loaded[key]
                labels = loaded[label_key] if label_key else None
            except ValueError as e:
                raise UserError(f"{shown} holds object arrays ({e}); expected numeric arrays"
                                ) from None
    what = f"{shown} array {key!r}" if key else shown
    if x.dtype.kind not in "biuf":
        raise UserError(f"{what} has dtype {x.dtype}; expected a numeric (bool, int or float) "
                        "array")
    if x.ndim not in (2, 3, 4) or x.shape[0] == 0 or x[0].size == 0:
        raise UserError(f"{what} has shape {x.shape}; expected (N, D) features or (N, H, W) / "
                        "(N, H, W, C) images with N >= 1 rows")
    n = x.shape[0]
    image_shape = tuple(int(s) for s in x.shape[1:]) if x.ndim > 2 else None
    x = x.reshape(n, -1)
    prefix = "pixel" if image_shape else "x"
    columns, values = [f"{prefix}_{j}" for j in range(x.shape[1])], list(x.T)
    if labels is not None:
        if labels.shape != (n,):
            raise UserError(f"{shown} label array {label_key!r} has shape {labels.shape}; "
                            f"expected ({n},), one label per row")
        columns.append(label_key)
        values.append(labels)
    return Table(shown, columns, values, image_shape=image_shape, default_label=label_key)


def _bundled(name: str) -> Table:
    # Imported here: scikit-learn is slow to import and only the bundled sets need it.
    from sklearn import datasets

    if name == "digits":
        bunch = datasets.load_digits()
        # Pixels are counts 0..16; dividing puts them in [0, 1] like any image intensity.
        x, columns, image_shape = bunch.data / 16.0, [f"pixel_{j}" for j in range(64)], (8, 8)
    else:
        bunch = datasets.load_breast_cancer()
        x, columns, image_shape = bunch.data, [str(c) for c in bunch.feature_names], None
    return Table(f"bundled data set {name!r}", columns + ["target"], list(x.T) + [bunch.target],
                 image_shape=image_shape, default_label="target")


def _parse_floats(col: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Returns the column as float64 and the positions whose cells are not numbers."""
    try:
        return np.asarray(col, dtype=np.float64), []
    except (TypeError, ValueError):
        pass
    out, bad = np.zeros(len(col)), []
    for i, v in enumerate(col):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            bad.append(i)
    return out, bad


def _infer_kind(table: Table, name: str, col: np.ndarray) -> tuple[str, list[str] | None]:
    """Picks "numeric", "boolean" or "categorical" (with its sorted vocabulary) for a column."""
    if col.dtype.kind == "b":
        return "boolean", None
    if col.dtype.kind in "iuf":
        return "numeric", None
    _, bad = _parse_floats(col)
    if not bad:
        return "numeric", None
    text = [str(v) for v in col]
    if {t.lower() for t in text} <= _BOOL.keys():
        return "boolean", None
    if len(col) - len(bad) >= _NUMERIC_SHARE * len(col):
        raise UserError(
            f"{table.source}: column {name!r} cannot be encoded: {len(col) - len(bad)} of its "
            f"{len(col)} cells are numbers, but these are not: {table.where(bad, col)}; "
            "expected a number in every cell of a numeric column (missing-value markers such "
            "as 'NA' or '?' are not supported): fix or drop those rows")
    return "categorical", sorted(set(text))


class Preprocessor:
    """Encodes raw columns (categories, booleans) and scales them with train statistics.

    The category vocabulary of a categorical column is taken from the whole column (train and
    validation rows): categories are names, not statistics, so this leaks nothing, and it means
    validation rows never hold an unseen category. Scaling statistics use train rows only.

    Attributes:
        input_columns: raw column names expected in a table (label excluded unless kept).
        columns: output feature names; one-hot columns are named "COLUMN=value".
        kinds: "numeric", "boolean" or "categorical", one per input column.
        categories: sorted vocabulary per categorical column.
        categorical: "ordinal" or "onehot".
        scaling: "minmax", "standard" or "none".
        offset, scale: per output column; output = (encoded - offset) / scale.
        label_column: label column dropped from tables passed to `transform` ("" if none).
        threshold: None, or the value above which a scaled output becomes 1 and else 0 (the
            "fixed" binarisation of image sets, applied to new files too).
    """

    def __init__(self, input_columns: Sequence[str], kinds: Sequence[str],
                 categories: dict[str, Sequence[str]], categorical: str = "ordinal",
                 scaling: str = "minmax", offset: Sequence[float] | None = None,
                 scale: Sequence[float] | None = None, label_column: str = "",
                 threshold: float | None = None):
        self.input_columns, self.kinds = list(input_columns), list(kinds)
        self.threshold = None if threshold is None else float(threshold)
        self.categories = {k: [str(v) for v in vs] for k, vs in categories.items()}
        self.categorical, self.scaling, self.label_column = categorical, scaling, label_column
        self.columns: list[str] = []
        for name, kind in zip(self.input_columns, self.kinds, strict=True):
            if kind == "categorical" and categorical == "onehot":
                self.columns += [f"{name}={v}" for v in self.categories[name]]
            else:
                self.columns.append(name)
        d = len(self.columns)
        self.offset = np.zeros(d) if offset is None else np.asarray(offset, dtype=np.float64)
        self.scale = np.ones(d) if scale is None else np.asarray(scale, dtype=np.float64)
        if self.offset.shape != (d,) or self.scale.shape != (d,):
            raise UserError(f"preprocessor: offset and scale need {d} values, one per output "
                            f"column; got {self.offset.shape} and {self.scale.shape}")

    @property
    def num_features(self) -> int:
        return len(self.columns)

    @classmethod
    def fit(cls, table: Table, train_rows: Sequence[int] | np.ndarray, *,
            categorical: str = "ordinal", scaling: str = "minmax",
            label_column: str = "") -> Preprocessor:
        """Infers column kinds from `table` and fits scaling on its `train_rows`."""
        return cls._fit(table, np.asarray(train_rows), categorical, scaling, label_column)[0]

    @classmethod
    def _fit(cls, table: Table, train_rows: np.ndarray, categorical: str, scaling: str,
             label_column: str) -> tuple[Preprocessor, np.ndarray]:
        _check_choice("data.categorical", categorical, CATEGORICAL)
        _check_choice("data.scaling", scaling, SCALING)
        kinds, categories = [], {}
        for name, col in zip(table.columns, table.values, strict=True):
            kind, vocab = _infer_kind(table, name, col)
            kinds.append(kind)
            if vocab is not None:
                categories[name] = vocab
        p = cls(table.columns, kinds, categories, categorical, scaling, label_column=label_column)
        encoded = p._encode(table)
        train = encoded[train_rows]
        lo, hi = train.min(axis=0), train.max(axis=0)
        constant = hi == lo
        if scaling == "minmax":
            p.offset, p.scale = lo, hi - lo
        elif scaling == "standard":
            # A constant column's float mean can be off by one ulp; its min maps it to exactly 0.
            p.offset, p.scale = np.where(constant, lo, train.mean(axis=0)), train.std(axis=0)
        p.scale = np.where(constant, 1.0, p.scale)  # no division by zero for constant columns
        if constant.any():
            names = [c for c, k in zip(p.columns, constant, strict=True) if k]
            logging.warning("data: %d constant column(s) in the training split, left unscaled "
                            "(scale 1; they carry no information): %s", len(names),
                            _names(names, 20))
        return p, encoded

    def _as_table(self, data: Table | np.ndarray | Sequence[Sequence[Any]]) -> Table:
        """Puts the input's columns in training order, or says which columns do not match."""
        n = len(self.input_columns)
        trained = f"the model was trained on {n} columns ({_names(self.input_columns)})"
        if isinstance(data, Table):
            # A label column (the trained one, or one read_table attached) is not a feature.
            labels = {self.label_column, data.default_label} - set(self.input_columns) - {""}
            given = [c for c in data.columns if c not in labels]
            missing = [c for c in self.input_columns if c not in given]
            extra = [c for c in given if c not in self.input_columns]
            if missing or extra:
                parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
                    [f"extra {', '.join(map(repr, extra))}"] if extra else [])
                raise UserError(f"{trained}; {data.source} has {len(given)}: {'; '.join(parts)}")
            order = [data.columns.index(c) for c in self.input_columns]
            return dataclasses.replace(data, columns=list(self.input_columns),
                                       values=[data.values[i] for i in order])
        arr = np.asarray(data)
        if arr.ndim != 2 or arr.shape[1] != n or arr.dtype.kind not in "biufUO":
            raise UserError(f"{trained}; the input array has shape {arr.shape} and dtype "
                            f"{arr.dtype}; expected shape (N, {n}) of numbers or raw strings")
        return Table("the input array", list(self.input_columns), list(arr.T))

    def _encode(self, table: Table) -> np.ndarray:
        parts = [self._encode_column(table, name, col, kind) for name, col, kind
                 in zip(table.columns, table.values, self.kinds, strict=True)]
        return np.concatenate(parts, axis=1) if parts else np.zeros((table.num_rows, 0))

    def _encode_column(self, table: Table, name: str, col: np.ndarray, kind: str) -> np.ndarray:
        where = f"{table.source}: column {name!r}"
        if kind == "numeric":
            x, bad = _parse_floats(col)
            if bad:
                raise UserError(f"{where} was numeric in training, but these cells are not "
                                f"numbers: {table.where(bad, col)}; expected a number in every "
                                "cell")
            nonfinite = np.flatnonzero(~np.isfinite(x))
            if nonfinite.size:
                raise UserError(f"{where} has NaN or infinite values at "
                                f"{table.where(nonfinite, col)}; expected finite numbers")
            return x[:, None]
        if kind == "boolean":
            if col.dtype.kind in "biuf":
                x = np.asarray(col, dtype=np.float64)
                bad = np.flatnonzero((x != 0) & (x != 1))
            else:
                text = np.char.lower(np.asarray(col, dtype=str))
                x = (text == "true").astype(np.float64)
                bad = np.flatnonzero(~np.isin(text, list(_BOOL)))
            if bad.size:
                raise UserError(f"{where} was true/false in training, but these cells are not: "
                                f"{table.where(bad, col)}; expected true/false (any case) or 1/0")
            return x[:, None]
        vocab = self.categories[name]
        index = {v: i for i, v in enumerate(vocab)}
        codes = np.array([index.get(str(v), -1) for v in col], dtype=np.int64)
        unseen = np.flatnonzero(codes < 0)
        if unseen.size:
            raise UserError(f"{where} has values not seen in training at "
                            f"{table.where(unseen, col)}; known values: {_names(vocab)}")
        if self.categorical == "onehot":
            return np.eye(len(vocab))[codes]
        return codes[:, None].astype(np.float64)

    def _scale(self, encoded: np.ndarray) -> np.ndarray:
        x = (encoded - self.offset) / self.scale
        return (x if self.threshold is None else x > self.threshold).astype(np.float32)

    def transform(self, data: Table | np.ndarray | Sequence[Sequence[Any]]) -> np.ndarray:
        """Encodes and scales raw rows: a `Table` (columns matched by name, any order; the
        label column is ignored) or a 2-D array / list of rows in `input_columns` order.

        Returns:
            (N, num_features) float32.
        """
        return self._scale(self._encode(self._as_table(data)))

    def inverse_scale(self, x: np.ndarray) -> np.ndarray:
        """Undoes the scaling only (the result is in encoded space), for (..., D) arrays."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != self.num_features:
            raise UserError(f"inverse_scale: expected an array of shape (..., "
                            f"{self.num_features}); got {x.shape}")
        return (x * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-serialisable description (lists, str, float, bool only)."""
        return {"version": 1, "input_columns": list(self.input_columns),
                "kinds": list(self.kinds), "categories": dict(self.categories),
                "categorical": self.categorical, "scaling": self.scaling,
                "label_column": self.label_column, "columns": list(self.columns),
                "offset": [float(v) for v in self.offset], "scale": [float(v) for v in self.scale],
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        """Rebuilds a `Preprocessor` from `to_dict` output."""
        keys = ("input_columns", "kinds", "categories", "categorical", "scaling", "offset", "scale")
        missing = [k for k in keys if not isinstance(d, dict) or k not in d]
        if missing:
            raise UserError(f"preprocessor: missing field(s) {_names(missing)}; expected a dict "
                            "written by Preprocessor.to_dict")
        return cls(d["input_columns"], d["kinds"], d["categories"], d["categorical"],
                   d["scaling"], d["offset"], d["scale"], d.get("label_column", ""),
                   d.get("threshold"))


def save_preprocessor(p: Preprocessor, path: str) -> None:
    """Writes `p` as a JSON file."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(p.to_dict(), f, indent=1)


def load_preprocessor(path: str) -> Preprocessor:
    """Reads a JSON file written by `save_preprocessor`."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise UserError(f"no such preprocessor file {path!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"preprocessor file {path!r} is not valid JSON ({e})") from None
    return Preprocessor.from_dict(d)


@dataclasses.dataclass
class Dataset:
    """Train and validation features, preprocessed with one `Preprocessor` fitted on train.

    `train_indices` / `val_indices` are the 0-based source rows of each split (sorted), so
    `preprocessor.transform(read_table(path).take(train_indices))` reproduces `train`. For the
    image sets of `ae_jax.image_data` they are rows of the train and test files.

    `dynamic_binarize` asks the training loop to replace each batch by Bernoulli samples of its
    pixels (`image_data.binarize`) with a fresh key per step.
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    columns: list[str]
    preprocessor: Preprocessor
    image_shape: tuple[int, ...] | None = None
    labels_train: np.ndarray | None = None
    labels_val: np.ndarray | None = None
    train_indices: np.ndarray | None = None
    val_indices: np.ndarray | None = None
    dynamic_binarize: bool = False

    @property
    def num_features(self) -> int:
        return int(self.train.shape[1])


def _check_choice(field: str, value: Any, valid: Sequence[str]) -> None:
    if value not in valid:
        raise UserError(f"{field} {value!r} is not supported; expected one of "
                        f"{', '.join(map(repr, valid))}")


def _field(cfg: Any, key: str, default: Any, kind: type | tuple[type, ...], what: str) -> Any:
    value = getattr(cfg, key, default)
    # bool is an int subclass, but True is no seed and no fraction.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UserError(f"data.{key} must be {what}; got {value!r}")
    return value


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_val = max(1, int(round(n * val_fraction)))
    if n < 2 or n - n_val < 1:
        raise UserError(f"data: {n} row(s) cannot be split with data.val_fraction="
                        f"{val_fraction}: need at least 2 rows and at least 1 row in each of "
                        f"train (got {max(n - n_val, 0)}) and validation (got {n_val})")
    perm = np.random.default_rng(seed).permutation(n)
    # Sorted, so each split keeps the file's row order.
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def as_labels(col: np.ndarray) -> np.ndarray:
    """Label cells as ints, floats, true/false -> 1/0, or else strings (for plot colours)."""
    if col.dtype.kind not in "OU":
        return np.array(col)
    text = np.asarray(col, dtype=str)
    for convert in (int, float):
        try:
            return np.array([convert(t) for t in text])
        except ValueError:
            pass
    lower = np.char.lower(text)
    if np.isin(lower, list(_BOOL)).all():
        return (lower == "true").astype(np.int64)
    return text


def load_dataset(cfg: Any) -> Dataset:
    """Loads, splits and preprocesses the data named by the `data` config section.

    Args:
        cfg: ConfigDict with fields name, path, dir, label_column, keep_label, categorical,
            scaling, val_fraction, split_seed, npz_key, limit, binarize (missing fields take
            defaults). Image set names (mnist, fashion_mnist, cifar10, tfds:NAME) go to
            `ae_jax.image_data`; `limit` keeps the first N rows of the training split.

    Returns:
        The preprocessed `Dataset`.
    """
    name = _field(cfg, "name", "digits", str, "a string")
    path = _field(cfg, "path", "", str, "a string")
    label_column = _field(cfg, "label_column", "", str, "a string")
    keep_label = _field(cfg, "keep_label", False, bool, "True or False")
    categorical = _field(cfg, "categorical", "ordinal", str, "a string")
    scaling = _field(cfg, "scaling", "minmax", str, "a string")
    val_fraction = _field(cfg, "val_fraction", 0.2, (int, float, np.floating), "a number")
    split_seed = _field(cfg, "split_seed", 0, (int, np.integer), "an integer")
    npz_key = _field(cfg, "npz_key", "", str, "a string")
    directory = _field(cfg, "dir", "", str, "a string")
    limit = _field(cfg, "limit", 0, (int, np.integer), "an integer")
    binarize = _field(cfg, "binarize", "none", str, "a string")
    # Imported here: image_data builds on this module's Dataset and Preprocessor.
    from ae_jax import image_data

    _check_choice("data.binarize", binarize, image_data.BINARIZE)
    if limit < 0:
        raise UserError(f"data.limit must be a non-negative integer (0 = all rows); got {limit}")
    _check_choice("data.scaling", scaling, SCALING)
    if not (math.isfinite(val_fraction) and 0 < val_fraction < 1):
        raise UserError(f"data.val_fraction must be strictly between 0 and 1; got {val_fraction}")
    if split_seed < 0:
        raise UserError(f"data.split_seed must be a non-negative integer; got {split_seed}")
    if not path and image_data.is_image_set(name):
        return image_data.load_image_dataset(name, directory, limit=int(limit), scaling=scaling,
                                             binarize_mode=binarize, seed=int(split_seed))
    if binarize != "none":
        raise UserError(f"data.binarize {binarize!r} is for the image sets "
                        f"{', '.join(map(repr, image_data.IMAGE_SETS))} and 'tfds:NAME'; "
                        f"{'data.path' if path else 'data.name'} {path or name!r} is not one: "
                        "use data.binarize='none'")
    if path:
        table = read_table(path, npz_key, label_column=label_column, field="data.path")
    else:
        _check_choice("data.name", name, BUNDLED + image_data.IMAGE_SETS + ("tfds:NAME",))
        table = _bundled(name)
    label = label_column or table.default_label
    if label and label not in table.columns:
        raise UserError(f"data.label_column {label!r} is not a column of {table.source}; "
                        f"available columns: {_names(table.columns, 100)}")
    features = table if (keep_label or not label) else table.drop(label)
    if not features.columns:
        raise UserError(f"{table.source} has no feature columns besides the label {label!r}; "
                        "set data.keep_label to True or add feature columns")
    train_idx, val_idx = _split(table.num_rows, float(val_fraction), int(split_seed))
    # Cut after splitting, so a quick run validates on exactly the rows of the full one.
    train_idx = train_idx[:limit or None]
    p, encoded = Preprocessor._fit(features, train_idx, categorical, scaling,
                                   "" if keep_label else label)
    labels = as_labels(table.column(label)) if label else None
    shape = table.image_shape
    # Image plots only make sense while the features are exactly the image's pixels.
    if shape is not None and math.prod(shape) != p.num_features:
        shape = None
    return Dataset(
        name=os.path.basename(path) if path else name, train=p._scale(encoded[train_idx]),
        val=p._scale(encoded[val_idx]), columns=list(p.columns), preprocessor=p,
        image_shape=shape, labels_train=None if labels is None else labels[train_idx],
        labels_val=None if labels is None else labels[val_idx], train_indices=train_idx,
        val_indices=val_idx)
