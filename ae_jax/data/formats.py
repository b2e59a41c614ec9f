"""What a data file is by its first bytes, whatever its name says.

`tables.read_table` picks a reader by a file's extension. A file given another format's
extension met a reader that misnamed it (a probe): an .npy array named .csv was "UTF-16 text
without a byte-order mark", a Parquet file named .csv "a binary file, or a damaged export",
and an .npz archive named .npy (or the reverse) a traceback from numpy. `misnamed` names the
format its bytes say it is and what to do.
"""

from __future__ import annotations

from ae_jax.errors import UserError

_PARQUET = b"PAR1"  # a Parquet file starts and ends with it (a CSV's header may start so)

# (first bytes, the extension of that format ("" where none is read), what the file is, the fix)
_MAGIC = (
    (b"\x93NUMPY", ".npy", "a NumPy .npy array (np.save's)", "give it the .npy extension"),
    (
        b"PK\x03\x04",
        ".npz",
        "a zip archive: a NumPy .npz archive (np.savez's), or a spreadsheet",
        "give an .npz archive the .npz extension; save a spreadsheet's sheet as .csv",
    ),
    (_PARQUET, ".parquet", "a Parquet file", "give it the .parquet extension"),
    (
        b"\x1f\x8b",
        "",
        "gzip-compressed",
        "decompress it first (e.g. gunzip -c FILE > NEW.csv) and give the result its own extension",
    ),
    (
        b"\x00\x00\x08\x03",
        "",
        "an IDX file of images (MNIST's format)",
        "name it as MNIST names its images (...-images-idx3-ubyte)",
    ),
)


def _ends(path: str, tail: bytes) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() < 2 * len(tail):
            return False
        f.seek(-len(tail), 2)
        return f.read() == tail


def head(path: str, n: int = 8) -> bytes:
    """The first `n` bytes of `path` (b"" when it cannot be read: its reader says why)."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def misnamed(path: str, shown: str, ext: str) -> UserError | None:
    """The refusal of the file `path` (named `shown` in messages) when its first bytes are
    another format's than its extension `ext` says (None when they are not, or are no format
    named here: text, or a damaged file, which its reader refuses)."""
    first = head(path)
    for magic, right, what, fix in _MAGIC:
        if not first.startswith(magic) or right == ext:
            continue
        if magic == _PARQUET and not _ends(path, _PARQUET):
            continue  # a text file whose first column is named PAR1...
        return UserError(
            f"{shown} is {what}, by its first bytes ({first[: len(magic)]!r}), not the {ext} "
            f"file its name says: {fix}"
        )
    return None
