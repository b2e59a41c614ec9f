"""Delimited text (.csv, .tsv) as raw text columns, read with pyarrow (Parquet: parquet.py).

pyarrow's multithreaded CSV reader parses the columns that are all numbers into float64 (the
types are guessed from the first rows; a column where a later cell is no number is read again
as text) and every other column as text: kinds (numeric, true/false, categorical) are the
`Preprocessor`'s to decide, with Python's rules. The file line of each row is found only when
an error message asks for it: NumPy finds it from the positions of line ends and quotes.
Anything pyarrow refuses is read again with Python's `csv` module to name the offending line.

The delimiter is sniffed from the header and the first rows (`delimiters.py`) unless
`data.delimiter` names it; `.tsv` files are tab-separated.
"""

from __future__ import annotations

import codecs
import csv
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ae_jax.data.cells import LEADING_ZERO, numpy_of, strings_array
from ae_jax.data.delimiters import (
    DECIMAL_COMMA,
    NAMES,
    check_first_rows,
    check_header,
    resolve_delimiter,
    sniff,
    split_rows,
)
from ae_jax.data.text_encoding import MARKS, not_utf8, nul_in_head, refuse_nul_cells
from ae_jax.errors import UserError

_SNIFF_BYTES = 1 << 16  # the header and first rows the delimiter is sniffed from ...
_SNIFF_LINES = 3  # ... read on until they hold the header and two rows (a wide table's)
_SNIFF_MOST = 1 << 26  # ... or this much of a file without as many line ends
# Text columns come dictionary-encoded from the parser's threads (`cells` reads the distinct
# values from the dictionary).
_TEXT = pa.dictionary(pa.int32(), pa.string())
_SCAN_BYTES = 1 << 24  # bytes searched at a time (quotes, line ends): bounds temporaries


def _sample(full: str, shown: str) -> tuple[str, bool, bool]:
    """The first bytes of the file as text (whole lines: at least the header and two rows, as
    far as `_SNIFF_MOST` goes; a 6,000-column header is 80 KB, and cut at 64 KB it was read as
    5,042 columns, "line 2 has 6000 cells"), whether the file holds a quote, and whether the
    text is the whole file."""
    quoted = False
    with open(full, "rb") as f:
        blocks = [f.read(_SNIFF_BYTES)]
        whole = len(blocks[0]) < _SNIFF_BYTES
        ends = lambda b: b.count(b"\n") or b.count(b"\r")  # noqa: E731 (CR-only files: \r)
        lines, size = ends(blocks[0]), len(blocks[0])
        while not whole and lines < _SNIFF_LINES and size < _SNIFF_MOST:
            blocks.append(more := f.read(_SNIFF_BYTES))
            lines, size, whole = lines + ends(more), size + len(more), len(more) < _SNIFF_BYTES
        head = block = b"".join(blocks)
        while block and not quoted:  # a fast byte search, a block at a time
            quoted = b'"' in block
            block = f.read(_SCAN_BYTES)
    head = head[len(codecs.BOM_UTF8) :] if head.startswith(codecs.BOM_UTF8) else head
    if b"\x00" in head and not head.startswith(sum(MARKS.values(), ())):  # (`not_utf8` names)
        raise nul_in_head(head, shown)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut by the sample's end
            raise not_utf8(full, shown) from None
        text = head[: e.start].decode("utf-8")
    if not whole:  # drop the last, maybe partial, line (CR-only files: at the last CR)
        text = text[: (text.rfind("\n") if "\n" in text else text.rfind("\r")) + 1] or text
    return text, quoted, whole


def header_names(names: list[str]) -> list[str]:
    """A header's names as read: stripped of spaces, and of byte-order marks (a file saved as
    UTF-8 twice starts with two: the second one was part of the first name, unseen)."""
    return [n.strip().strip("\ufeff").strip() for n in names]


class TextFile:
    """What a `Table` read from delimited text can still ask its file: the file line of each
    data row, and a column's cells as text. Both read the file again, so only error messages
    and rare cases (a column of numbers that training saw as categories) pay for them.
    """

    def __init__(
        self, full: str, shown: str, delim: str, quoted: bool, names: list[str], num_rows: int
    ):
        self.full, self.shown, self.delim, self.quoted = full, shown, delim, quoted
        self.names, self.num_rows = names, num_rows  # names as in the file, unstripped
        self.header = header_names(names)
        self._lines: np.ndarray | None = None

    def line_numbers(self) -> np.ndarray:
        """File line of each data row (found once, when first asked for)."""
        if self._lines is None:
            with open(self.full, "rb") as f:
                raw = f.read()
            start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
            lines = _line_numbers(raw, start)
            if len(lines) != self.num_rows + 1:  # e.g. a stray quote: Python's reader knows
                lines = _scan(self.full, self.shown, self.delim, len(self.names))
            self._lines = lines[1:]
        return self._lines

    def text(self, j: int) -> pa.ChunkedArray:
        """Column `j`'s cells as text, as they are in the file."""
        return _parse(self, {self.names[j]: pa.string()}, [self.names[j]]).column(0)


def _parse(
    file: TextFile, types: dict[str, pa.DataType], only: list[str] | None = None
) -> pa.Table:
    return pacsv.read_csv(
        file.full,  # the first row names the columns
        # Quoted cells may hold line breaks; without quotes, blocks split faster.
        parse_options=pacsv.ParseOptions(delimiter=file.delim, newlines_in_values=file.quoted),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=only,
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _guess_types(rows: list[list[str]], width: int, text: set[int]) -> list[pa.DataType]:
    """float64 for the columns whose sampled cells are all numbers pyarrow reads, else text
    (dictionary-encoded; the reader falls back to text for a column where a later cell is no
    number)."""
    types = []
    for j in range(width):
        cells = [r[j] for r in rows[1:] if len(r) == width]
        try:
            numeric = (  # a code with leading zeros stays text: `infer_kind` says so
                bool(cells)
                and j not in text
                and pc.cast(strings_array(cells), pa.float64()).null_count == 0
                and not any(LEADING_ZERO.match(c) for c in cells)
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            numeric = False
        types.append(pa.float64() if numeric else _TEXT)
    return types


def read_delimited(
    full: str, shown: str, ext: str, delimiter: str, label_column: str = ""
) -> tuple[list[str], list[pa.ChunkedArray | np.ndarray], TextFile]:
    """Reads a delimited text file with a header row.

    Columns whose cells are all numbers come back as float64 NumPy arrays (parsed by pyarrow's
    multithreaded reader), the others as dictionary-encoded pyarrow text (`cells.Cells` strips
    the cells), and `label_column` always as text.

    Returns:
        The header names (stripped), one array per column, and the `TextFile`.
    """
    text, quoted, whole = _sample(full, shown)
    if re.fullmatch(r'"?sep=."?', first := text.split("\n", 1)[0].rstrip("\r")):
        raise UserError(
            f"{shown}: its first line {first!r} is Excel's delimiter hint, not a header row; "
            "expected the header row first: delete it (pandas: read_csv(path, skiprows=1))"
        )
    given = resolve_delimiter(delimiter)
    delim = given if given != "auto" else ("\t" if ext == ".tsv" else sniff(text, shown))
    rows = split_rows(text, delim)
    if not rows:
        what = "is empty" if not text.strip() else "has a first row that is not valid CSV"
        raise UserError(
            f"{shown} {what}; expected a header row of column names followed by data rows"
        )
    header = header_names(rows[0])
    if rows[0][0].startswith("\ufeff") and header[0].startswith('"'):  # (its quotes kept)
        raise UserError(
            f"{shown} starts with two UTF-8 byte-order marks (saved as UTF-8 twice?) before a "
            f"quoted name, read as {header[0]!r}; expected at most one: remove one, the file's "
            "first 3 bytes (e.g. tail -c +4 FILE > NEW.csv)"
        )
    check_header(
        header, shown, delim, "given" if given != "auto" else "tsv" if ext == ".tsv" else "sniffed"
    )
    check_first_rows(rows, shown)
    file = TextFile(full, shown, delim, quoted, rows[0], 0)
    # (A sample of more loses its last, maybe partial, line; csv stops at a 128 KB cell.)
    if len(rows) == 1 and whole and not text.partition("\n")[2].strip():
        raise _no_rows(shown)
    types = _guess_types(
        rows, len(header), {header.index(label_column)} if label_column in header else set()
    )
    for _ in range(len(header) + 1):
        try:
            table = _parse(file, dict(zip(file.names, types, strict=True)))
            break
        except UnicodeDecodeError:
            raise not_utf8(full, shown) from None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            bad = re.search(r"column #(\d+): CSV conversion error", str(e))
            if not bad or types[int(bad[1])] == _TEXT:
                raise _explain(full, shown, delim, len(header), str(e)) from None
            types[int(bad[1])] = _TEXT  # a cell that is no number: read as text
    try:
        names = table.column_names
    except UnicodeDecodeError:
        raise not_utf8(full, shown) from None
    if names != file.names:
        raise _explain(full, shown, delim, len(header), "the header row splits differently")
    if table.num_rows < 1:
        raise _no_rows(shown)
    table = table.unify_dictionaries()  # one vocabulary per column, not one per block
    named = zip(file.names, table.columns, strict=True)
    refuse_nul_cells(shown, [(name, col) for name, col in named if col.type == _TEXT])
    values = [numpy_of(col, np.nan) if col.type == pa.float64() else col for col in table.columns]
    file.num_rows = table.num_rows
    del table
    pa.default_memory_pool().release_unused()  # the parser's scratch buffers
    return header, values, file


def _no_rows(shown: str) -> UserError:
    return UserError(
        f"{shown} has a header row but no data rows; expected rows of data{two_rows(shown)}"
    )


def two_rows(shown: str) -> str:
    """What training needs besides (`shown` names the field: data.path is training's data)."""
    training = shown.startswith("data.")
    return " (at least 2 to train: a training and a validation split)" if training else ""


def _line_numbers(raw: bytes, start: int) -> np.ndarray:
    """File line of each non-blank record (header included).

    Lines end at "\\n", "\\r\\n" or a lone "\\r" (as for Python's csv module); a line end ends a
    record unless an odd number of quotes precedes it (RFC 4180: an escaped quote is two
    quotes). The caller checks the count against the parser's.
    """
    buf = np.frombuffer(raw, np.uint8)
    # Only the bytes the file holds are searched (bytes.__contains__ is a fast scan).
    found: dict[int, list[np.ndarray]] = {b: [] for b in (10, 13, 34) if bytes([b]) in raw}
    for i in range(0, len(buf), _SCAN_BYTES):
        block = buf[i : i + _SCAN_BYTES]
        for byte, hits in found.items():
            hits.append(np.flatnonzero(block == byte) + i)
    nl, cr, quotes = (np.concatenate(found.get(b) or [np.zeros(0, np.int64)]) for b in (10, 13, 34))
    lone_cr = cr[(cr + 1 >= len(buf)) | (buf[np.minimum(cr + 1, len(buf) - 1)] != 10)]
    breaks = np.sort(np.concatenate([nl, lone_cr]))
    inside = np.searchsorted(quotes, breaks) % 2 == 1
    ends = np.append(breaks[~inside], len(buf))
    starts = np.concatenate([[start], ends[:-1] + 1])
    length = ends - starts
    crlf = np.zeros(len(ends), bool)
    has = length > 0
    crlf[has] = buf[ends[has] - 1] == 13  # "\r\n": the "\r" is no content
    # Python's csv module numbers a record by its last line; so do we.
    last = ends[length - crlf > 0]
    return np.searchsorted(breaks, last) + 1


def _scan(full: str, shown: str, delim: str, width: int) -> np.ndarray:
    """File lines of the header and data rows, read with Python's csv module; raises the
    first problem."""
    lines: list[int] = []
    header: list[str] = []
    hashed = True  # every line read so far starts with '#': comment lines above the header
    with open(full, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delim)
        try:
            for row in reader:
                if not row:  # blank line: nothing to read, and trailing ones are common
                    continue
                start = lines[-1] + 1 if lines else 1  # (blank lines before it aside)
                if lines and len(row) != width and reader.line_num > start:
                    if any("\n" in c or "\r" in c for c in row):  # a record over many lines
                        cells = f"{len(row)} cell{'s' * (len(row) != 1)}"
                        raise UserError(
                            f"{shown}: the row that starts on line {start} (data row "
                            f"{len(lines)}) runs on inside quotes to line {reader.line_num} and "
                            f'has {cells}, but the header has {width} columns: a quote (") '
                            f"opened on line {start} is likely never closed; expected every "
                            "quoted cell to end with a quote"
                        )
                if lines and len(row) != width:
                    read = comment = ""
                    if len(lines) == 1 or hashed:  # perhaps the header read is a title or comment
                        read = f" (line {lines[0]}: {delim.join(header)[:80]!r})"
                        if hashed:
                            comment = "; that line looks like a comment: remove the lines above"
                            comment += " the real header"
                    if delim == "," and DECIMAL_COMMA.fullmatch(",".join(row).strip()):
                        comment += (  # "0,346" under "value": one number, a decimal comma
                            f"; {','.join(row)!r} reads as one number written with a decimal "
                            "comma: save the file with decimal points, or with ';' between cells"
                        )
                    if len(row) == width + 1 and not row[-1].strip():
                        comment += (  # "1,2,3," under "a,b,c"
                            f"; the line ends with the delimiter {NAMES.get(delim, delim)}: "
                            "remove the trailing one, in every line that has it"
                        )
                    raise UserError(
                        f"{shown}: line {reader.line_num} (data row {len(lines)}) has "
                        f"{len(row)} cells but the header{read} has {width} "
                        f"columns; expected one cell per column in every row (delimiter "
                        f"{NAMES.get(delim, delim)}){comment}"
                    )
                header = header or row
                hashed &= row[0].lstrip().startswith("#")  # (a header '#CHROM' then data: no)
                lines.append(reader.line_num)
        except UnicodeDecodeError:
            raise not_utf8(full, shown) from None
        except csv.Error as e:
            raise UserError(f"{shown}: line {reader.line_num} is not valid CSV ({e})") from None
    return np.array(lines, dtype=np.int64)


def _explain(full: str, shown: str, delim: str, width: int, reason: str) -> UserError:
    """The precise error for a file pyarrow refused (raised by the Python scan when it finds
    it), else pyarrow's own reason."""
    if "UTF8" in reason:
        return not_utf8(full, shown)
    _scan(full, shown, delim, width)
    return UserError(
        f"{shown} cannot be read as delimited text ({reason.strip()}); expected a "
        f"header row and rows of {width} cells separated by "
        f"{NAMES.get(delim, repr(delim))}"
    )
