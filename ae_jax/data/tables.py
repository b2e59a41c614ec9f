"""Table readers: a bundled scikit-learn set or a user file as raw columns.

User files: delimited text with a header row (`.csv`, `.tsv`; see `csv_reader`), Parquet, a
`.npy` array, a `.npz` archive, or an IDX file of images (MNIST's `t10k-images-idx3-ubyte`).
`load_dataset(cfg)` (in `load`) splits the table and fits one `Preprocessor` (in `preprocess`)
on it; cells stay raw here (text stays text) so that a new file reads exactly like the training
file.

Every user mistake raises `UserError` naming the field, file, column, row and value, before any
training starts."""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ae_jax.data import cells, formats
from ae_jax.data.cells import quote_names
from ae_jax.data.csv_reader import TextFile, read_delimited
from ae_jax.data.image_files import check_channels_last, read_idx
from ae_jax.data.parquet import arrow_columns, read_parquet
from ae_jax.errors import UserError, closest, quoted

BUNDLED = ("digits", "breast_cancer")
CATEGORICAL = ("ordinal", "onehot")
SCALING = ("minmax", "standard", "none")
# An IDX file by its name, as MNIST and Fashion-MNIST publish them (train-images-idx3-ubyte.gz,
# torchvision's t10k-images.idx3-ubyte); the digit is its number of dimensions.
_IDX_NAME = re.compile(r"[.-]idx(\d)-ubyte(\.gz)?$", re.IGNORECASE)


def one_array(path: str) -> bool:
    """Whether `path` holds one unnamed array (a `.npy` or an IDX file): no label array in it."""
    return path.lower().endswith(".npy") or bool(_IDX_NAME.search(path))


# .tsv files are tab-separated; .csv ones are sniffed (data.delimiter).
EXTENSIONS = (".csv", ".npy", ".npz", ".tsv", ".parquet")
NO_LABEL = "none"  # data.label_column: no label at all, not even the default one
_SHOWN_ROWS = 5  # offending rows quoted in one error message
BOOL_WORDS = {"true": 1.0, "false": 0.0}
# What a true/false text column may also hold (spreadsheets mix TRUE/FALSE with 1/0).
BOOL_TEXTS = {**BOOL_WORDS, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


@dataclasses.dataclass
class Table:
    """Raw columns of one source, before any encoding (what `read_table` returns).

    Attributes:
        source: how error messages name the source, e.g. "data.path 'shop.csv'".
        columns: column names in source order.
        values: one 1-D array per column: pyarrow string arrays of cells as read (CSV, TSV,
            Parquet text; `cells.Cells` strips surrounding whitespace), or NumPy arrays as
            stored (npy, npz, bundled sets, Parquet numbers and booleans).
        file: for delimited text, the `TextFile` it was read from: `line_numbers` asks it for
            lines only when an error message needs them, and `text` for a column's text.
        row_index: 0-based position of each row in the source (None: 0..N-1); kept by `take`.
        row_labels: a data frame's index labels of its rows (None: its index is 0..N-1).
        image_shape: per-row image shape of a flattened image array, else None.
        default_label: label column used when the config names none: "y" for npz files with
            such an array, "target" for bundled sets, "" otherwise.
        pixel_max: the features are whole pixel intensities 0..pixel_max (255: a uint8
            array; 16: the bundled digits' counts): `load_dataset` divides them by it (or,
            data.scaling='standard', by one mean and std per colour channel), never scaling
            each pixel by its own range. 0: not known to be pixels.
        named: the columns are named by the file (a header, Parquet); False for arrays
            (npy, npz), whose names x_j / pixel_j are made up: matched by position.
        categorical: the columns the file declares categorical (Parquet: a dictionary
            column, or pandas' category dtype in its metadata): categories whatever their
            cells, as if named in data.categorical_columns.
    """

    source: str
    columns: list[str]
    values: list[np.ndarray]
    file: TextFile | None = None
    row_index: np.ndarray | None = None
    image_shape: tuple[int, ...] | None = None
    default_label: str = ""
    pixel_max: int = 0
    named: bool = True
    categorical: tuple[str, ...] = ()
    row_labels: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        return len(self.values[0]) if self.values else 0

    @property
    def line_numbers(self) -> np.ndarray | None:
        """File line of each row (delimited text only, else None), so errors point into the
        file."""
        if self.file is None:
            return None
        lines = self.file.line_numbers()
        return lines if self.row_index is None else lines[self.row_index]

    def text(self, name: str) -> np.ndarray:
        """A column's cells as text where the file has it (a delimited file's column of
        numbers is read again), else the column as stored."""
        col = self.values[self.columns.index(name)]
        if self.file is None or cells.is_text(col) or name not in self.file.header:
            return col
        text = self.file.text(self.file.header.index(name))
        return text if self.row_index is None else cells.take(text, self.row_index)

    def column(self, name: str) -> np.ndarray:
        """The raw column as NumPy (pyarrow text becomes an object array of str)."""
        return cells.as_numpy(self.values[self.columns.index(name)])

    def take(self, rows: Sequence[int] | np.ndarray) -> Table:
        """Returns the given rows (0-based positions); error messages keep the original rows."""
        rows = np.asarray(rows, dtype=np.int64)
        index = self.row_index if self.row_index is not None else np.arange(self.num_rows)
        return dataclasses.replace(
            self, values=[cells.take(v, rows) for v in self.values], row_index=index[rows]
        )

    def drop(self, name: str) -> Table:
        keep = [i for i, c in enumerate(self.columns) if c != name]
        return dataclasses.replace(
            self, columns=[self.columns[i] for i in keep], values=[self.values[i] for i in keep]
        )

    def where(self, rows: Sequence[int] | np.ndarray, col: np.ndarray | None = None) -> str:
        """Names up to 5 rows as the user sees them: 1-based data row plus file line or index."""
        parts = []
        lines = None if self.file is None else self.file.line_numbers()
        for r in list(rows)[:_SHOWN_ROWS]:
            orig = int(self.row_index[r]) if self.row_index is not None else int(r)
            if lines is not None:
                part = f"row {orig + 1} (line {int(lines[orig])})"
            elif self.row_labels is not None:  # a data frame's: what df.loc finds it by
                part = f"row {orig + 1} (index label {self.row_labels[orig:][:1].tolist()[0]!r})"
            else:
                part = f"row {orig + 1} (index {orig})"
            parts.append(part if col is None else f"{part} {quoted(cells.cell(col, r))}")
        more = f" and {len(rows) - _SHOWN_ROWS} more" if len(rows) > _SHOWN_ROWS else ""
        return ", ".join(parts) + more


def read_table(
    path: str,
    npz_key: str = "",
    *,
    label_column: str = "",
    field: str = "",
    delimiter: str = "auto",
    key_field: str = "data.npz_key",
) -> Table:
    """Reads a user file into a `Table`: `.csv` / `.tsv` (header row required), `.parquet`,
    `.npy` or `.npz`.

    Args:
        path: the file; its extension picks the format.
        npz_key: for `.npz`: the feature array; "" means "x" if present, else the only array
            besides the label array.
        label_column: for `.npz`: an array of labels, shape (N,) or (N, 1), to add as a column
            named after its key; "" means "y" if present, "none" means no label array. For
            `.csv` / `.tsv`: a column read as text even if it holds numbers (labels "3" stay
            integers, as `as_labels` reads text).
        field: config field that named the file ("data.path"), used to prefix error messages;
            "data.path", a training file, is also offered training settings as ways out.
        key_field: the setting that names an `.npz`'s array, for messages ("--npz_key" when a
            command's flag does).
        delimiter: for `.csv` / `.tsv`: "auto" (sniffed; tab for `.tsv`) or the character.

    Returns:
        The raw table: text stays text (a delimited file's columns of numbers are float64);
        column kinds are the `Preprocessor`'s to decide.
    """
    path = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(path, str) or not path:
        raise UserError(f"{field or 'path'}: got {path!r}; expected a file's path")
    shown = f"{field} {path!r}" if field else repr(path)
    full = os.path.expanduser(path)
    ext = os.path.splitext(full)[1].lower()
    if not os.path.exists(full):
        raise UserError(
            f"{field + ': ' if field else ''}no such file {path!r}; expected an "
            f"existing {', '.join(EXTENSIONS)} file (or IDX images)"
        )
    idx = _IDX_NAME.search(os.path.basename(full))
    if idx and os.path.isfile(full):
        if idx.group(1) != "3":
            what = "labels, by its name" if idx.group(1) == "1" else "not grey images"
            raise UserError(
                f"{shown} is an IDX file of {idx.group(1)} dimension(s) ({what}); expected an "
                "images file of 3 (...-images-idx3-ubyte): images are the rows"
            )
        _no_label_array(label_column, shown, "an IDX file")
        return _array_table(read_idx(full, 3), shown, training=field == "data.path")
    if ext not in EXTENSIONS and not os.path.isdir(full):
        packed = ext in (".gz", ".zip", ".bz2", ".xz", ".zst", ".7z")  # an export, compressed
        raise UserError(
            f"{shown}: unsupported file type {ext or '(no extension)'!r}; supported: "
            f"{', '.join(EXTENSIONS)}, and IDX images (...-idx3-ubyte[.gz])"
            f"{'; a compressed file: decompress it first (e.g. gunzip FILE.csv.gz)' * packed}"
        )
    if os.path.isdir(full) or os.path.getsize(full) == 0:
        raise UserError(
            f"{shown} is {'a directory' if os.path.isdir(full) else 'empty'}; "
            "expected a file holding a header row and data rows, or an array"
        )
    if (wrong := formats.misnamed(full, shown, ext)) is not None:
        raise wrong
    if ext in (".csv", ".tsv"):
        header, values, file = read_delimited(full, shown, ext, delimiter, label_column)
        return Table(shown, header, values, file=file)
    if ext == ".parquet":
        names, values, declared = read_parquet(full, shown, label_column)
        return Table(shown, names, values, categorical=declared)
    return _read_arrays(full, shown, ext, npz_key, label_column, key_field, field == "data.path")


def npz_arrays(keys: list[str], npz_key: str, label_column: str) -> tuple[str, str]:
    """The feature array ("" when it cannot be told) and the label array ("": none) that
    `read_table` reads from an .npz holding arrays `keys`, under these settings."""
    label_key = label_column or ("y" if "y" in keys else "")
    label_key = "" if label_key == NO_LABEL else label_key
    # With no label ('none'), "y" is still no feature candidate.
    not_x = label_key or ("y" if label_column == NO_LABEL else "")
    others = [k for k in keys if k != not_x]
    return npz_key or ("x" if "x" in keys else (others[0] if len(others) == 1 else "")), label_key


def npz_feature_array(path: str, npz_key: str, label_column: str = "") -> str:
    """The name of the array `read_table(path, npz_key, label_column=...)` reads an .npz's
    rows from ("" when the file is no readable .npz or the array cannot be told)."""
    try:
        with np.load(os.path.expanduser(path), allow_pickle=False) as loaded:
            return npz_arrays(list(loaded.files), npz_key, label_column)[0]
    except (ValueError, OSError, EOFError, TypeError, AttributeError, zipfile.BadZipFile):
        return ""  # (a .npy loads as an array: no context manager, no .files)


def _read_arrays(
    full: str, shown: str, ext: str, npz_key: str, label_column: str, key_field: str, training
) -> Table:
    try:
        # No pickles: loading a data file must not be able to run code.
        loaded = np.load(full, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        head = formats.head(full, 6)  # (b"" unreadable: numpy's own reason below)
        if head and not head.startswith((b"\x93NUMPY", b"PK")):  # (.npy's and zip's magic)
            # numpy reads a file without its header as a pickle ("... allow_pickle=False")
            raise UserError(
                f"{shown} is not a NumPy {ext} file: it does not start as one (its first bytes "
                f"{head!r}); expected a file written by np.save / np.savez (a CSV or text file "
                "renamed? give it its own extension: .csv or .tsv)"
            ) from None
        pickled = "allow_pickle" in str(e)  # an object array: np.save of mixed Python values
        raise UserError(
            f"{shown} cannot be read as a NumPy {ext} file ({e}); expected a numeric array"
            + ", or one of strings (np.save(path, rows.astype(str)))" * pickled
        ) from None
    labels, label_key, key = None, "", ""
    if ext == ".npy":
        x = loaded
        _no_label_array(label_column, shown, "a .npy file")
    else:
        with loaded:
            keys = list(loaded.files)
            key, label_key = npz_arrays(keys, npz_key, label_column)
            for what, k in ((key_field, key), ("data.label_column", label_key)):  # data first
                if k and k not in keys:
                    near = f" (did you mean {h!r}?)" if (h := closest(k, keys)) else ""
                    said = f"{shown}{near}; its arrays: {quote_names(keys)}"
                    raise UserError(f"{what} {k!r} is not an array in {said}")
            if not keys:
                raise UserError(f"{shown} holds no arrays; expected an .npz archive of arrays")
            if not key:
                keras = {"x_train", "y_train", "x_test", "y_test"} <= set(keys)
                raise UserError(
                    f"{shown} has no array 'x' and not exactly one other array; set "
                    f"{key_field} to one of its arrays: {quote_names(keys)}"
                    + (
                        " (it is in the Keras layout of an image set: data.name='mnist', "
                        "'fashion_mnist' or 'cifar10' with data.dir naming this file reads its "
                        "train and test splits and labels)"
                        if keras
                        else ""
                    )
                )
            bad = key  # the array being read
            try:
                x = loaded[key]
                bad = label_key
                labels = loaded[label_key] if label_key else None
            except ValueError as e:  # an object array (np.savez of Python values)
                field = key_field if bad == key else "data.label_column"
                raise UserError(
                    f"{shown}: its array {bad!r} ({field}) is an object array ({e}); expected "
                    "a numeric array, or one of strings: save it with .astype(str)"
                    + " (or set data.label_column=none: no labels)"
                    * (bad == label_key)
                ) from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # cut off
                raise UserError(
                    f"{shown} cannot be read as a NumPy {ext} file ({type(e).__name__}: {e}); "
                    "expected a whole .npz archive (was it cut off while copying?)"
                ) from None
    return _array_table(x, shown, key, labels, label_key, training)


def as_text(x: np.ndarray, what: str) -> np.ndarray:
    """An array of bytes as str (read as UTF-8); any other array as it is."""
    if x.dtype.kind != "S":
        return x
    try:
        return np.char.decode(x, "utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} holds bytes that are not UTF-8 text ({e})") from None


def _no_label_array(label_column: str, shown: str, kind: str) -> None:
    if label_column and label_column != NO_LABEL:
        raise UserError(
            f"data.label_column {label_column!r} is set but {shown} is {kind} holding one "
            "unnamed array; use '' or 'none', or a .npz/.csv file"
        )


def _array_table(
    x: np.ndarray, shown: str, key: str = "", labels=None, label_key: str = "", training=False
) -> Table:
    """An array of rows (N, D) or images (N, H, W[, C]), and an .npz's labels, as a Table (a
    `training` file's, data.path's, may be refused with its settings' way out)."""
    what = f"{shown} array {key!r}" if key else shown
    if x.dtype.kind in "SU" and x.ndim == 2:  # raw rows as text (np.save of a table's cells)
        x = as_text(x, what)
    elif x.dtype.kind not in "biuf":
        raise UserError(
            f"{what} has dtype {x.dtype}; expected a numeric (bool, int or float) array, or "
            "a 2-D array of strings (raw rows)"
        )
    if x.ndim not in (2, 3, 4) or x.shape[0] == 0 or x[0].size == 0:
        raise UserError(
            f"{what} has shape {x.shape}; expected (N, D) features or (N, H, W) / "
            "(N, H, W, C) images with N >= 1 rows"
            + (" and D >= 1 columns (H, W, C >= 1)" if x.ndim in (2, 3, 4) and x.shape[0] else "")
        )
    check_channels_last(x.shape, what, training)
    n = x.shape[0]
    image_shape = tuple(int(s) for s in x.shape[1:]) if x.ndim > 2 else None
    x = x.reshape(n, -1)
    prefix = "pixel" if image_shape else "x"
    columns, values = [f"{prefix}_{j}" for j in range(x.shape[1])], list(x.T)
    if labels is not None:
        if labels.shape not in ((n,), (n, 1)):
            raise UserError(
                f"{shown} label array {label_key!r} has shape {labels.shape}; "
                f"expected ({n},) or ({n}, 1), one label per row"
            )
        columns.append(label_key)
        values.append(labels.reshape(n))
    return Table(
        shown,
        columns,
        values,
        image_shape=image_shape,
        default_label=label_key,
        pixel_max=255 if x.dtype == np.uint8 else 0,
        named=False,
    )


def named_table(data) -> Table | None:
    """Rows whose columns have names, as a `Table` matched by them: a data frame (pandas,
    polars), a pandas Series (one row, as `df.iloc[0]`: read as an array, told to reshape, it
    was matched by position) or an Arrow table (read as an array, its columns were matched by
    position, the label among them); None for anything else (arrays, lists of rows); refuses
    records."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        return Table("the Arrow table", *arrow_columns(data, "the Arrow table"))
    if hasattr(data, "to_frame") and hasattr(data, "index") and not hasattr(data, "columns"):
        data = data.to_frame().T  # a pandas Series (df.iloc[0]): one row, named by its index
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        index = np.asarray(getattr(data, "index", ()))  # (polars: none)
        labels = None if np.array_equal(index, np.arange(len(index))) else index
        return Table("the data frame", *cells.frame_columns(data), row_labels=labels)
    if isinstance(data, list | tuple) and data and all(isinstance(r, dict) for r in data):
        raise UserError(  # (read as an array: one row of objects, "x.reshape(1, -1)")
            f"the input rows are a list of {len(data)} dicts (records); give them as a table: "
            "pandas.DataFrame(records) or pyarrow.Table.from_pylist(records)"
        )
    if isinstance(data, dict):  # (read as an array: one object, "shape ()")
        raise UserError(
            f"the input rows are a dict of {len(data)} entries; give columns by name as a "
            "table: pandas.DataFrame(columns) or pyarrow.table(columns)"
        )
    return None
