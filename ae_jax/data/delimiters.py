"""A delimited file's delimiter and header: `data.delimiter` read (`resolve_delimiter`), or
sniffed from the header and first rows among `DELIMITERS` (`sniff`), and the header's names
checked (`check_header`: a Parquet file's too) before any cell is parsed (`csv_reader.py`)."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
from absl import logging

from ae_jax.data.cells import NA_VALUES, parse_floats, quote_names
from ae_jax.errors import UserError, repeated

DELIMITERS = (",", ";", "\t", "|")
NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}  # as messages name them
_ALIASES = {"tab": "\t", "\\t": "\t"}
_SNIFF_ROWS = 20
# "0,57", "-1,5e3", "1.250,00" ('.' grouping thousands): decimal commas, read as text.
DECIMAL_COMMA = re.compile(r"[+-]?((\d{1,3}(\.\d{3})+|\d+),\d*|,\d+)([eE][+-]?\d+)?")


def resolve_delimiter(value: str) -> str:
    """`data.delimiter` as the character to split on ("auto" stays "auto")."""
    value = _ALIASES.get(value, value)
    if value != "auto" and (len(value) != 1 or value in '"\r\n'):
        raise UserError(
            f"data.delimiter {value!r} is not supported; expected 'auto' (sniffed "
            "among ',', ';', tab and '|') or one character such as ',' ';' '|' or "
            "'tab'"
        )
    return value


def split_rows(text: str, delim: str) -> list[list[str]]:
    """The non-blank rows of `text` up to the first one Python's csv module cannot read."""
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delim):
            if row:
                rows.append(row)
    except csv.Error:
        pass
    return rows


def sniff(text: str, shown: str) -> str:
    """The delimiter that splits the header into the most columns with most rows agreeing
    (',' if none splits it); refused when two split the header and every row consistently, or
    tie: a ';' file whose names and cells hold commas ('Weight, kg;Height, cm' over
    '74,6;152,4') was read split at the commas."""
    scores = {}
    for delim in DELIMITERS:
        rows = split_rows(text, delim)[: _SNIFF_ROWS + 1]
        agree = sum(len(r) == len(rows[0]) for r in rows) / max(len(rows), 1)
        if rows and len(rows[0]) >= 2 and agree >= 0.5:
            scores[delim] = (agree, len(rows[0]))
    whole = [d for d, (agree, _) in scores.items() if agree == 1.0]  # every row as the header
    tied = [d for d, score in scores.items() if score == max(scores.values())]
    tied = whole if len(whole) > 1 else tied
    if len(tied) > 1:
        raise UserError(
            f"{shown}: its delimiter is ambiguous: {' and '.join(NAMES[d] for d in tied)} "
            f"each split its header and first rows consistently ("
            + "; ".join(f"{NAMES[d]}: {quote_names(_names(text, d), 3)}" for d in tied)
            + "); expected one delimiter that splits them: set data.delimiter to the file's "
            "(a training file), or save it with a delimiter no name or cell holds, e.g. "
            "tab-separated as .tsv (a new file for a trained run, whose delimiter is sniffed)"
        )
    return tied[0] if tied else ","


def check_header(header: list[str], shown: str, delim: str, chosen: str = "sniffed") -> None:
    """Refuses a header that is no row of unique column names. `chosen`: how `delim` was
    chosen, for the message: 'given' (data.delimiter), 'tsv' (a .tsv file's tab) or
    'sniffed' (from the file's first rows)."""
    if any(not name for name in header):
        trailing = delim and header.index("") == len(header) - 1  # "a,b,c," (a spreadsheet)
        where = "in the first row" if delim else "(a table's column names)"
        raise UserError(
            f"{shown}: header column {header.index('') + 1} has no name; expected "
            f"a name for every column {where}"
            + (
                f" (the line ends with the delimiter {NAMES.get(delim, delim)}: if every line "
                "does, with nothing after it, remove the trailing ones; else name that column)"
                if trailing
                else ""
                if header[0] or not delim
                else " (pandas' DataFrame.to_csv writes its index there: save with index=False)"
            )
        )
    # A first row of numbers is data (a file without a header: 0,0,12,...), but for pandas'
    # names of an unnamed frame's columns, 0,1,...,D-1, which its to_csv writes; a Parquet
    # file's names (no `delim`) are names whatever they look like.
    numbers = not parse_floats(np.array(header, dtype=object))[1].size
    pandas = header == [str(i) for i in range(len(header))]
    if numbers and delim and (len(header) < 3 or not pandas):
        raise UserError(
            f"{shown}: the first row {quote_names(header, 5)} looks like data; expected a "
            "header row of column names: add one (e.g. x_0,x_1,..., as for an array); a header "
            "of numbers, such as years, is read as data: prefix them (y2019,y2020,...). "
            + (
                "(pandas' to_csv of an unnamed frame writes this header, read as names from 3 "
                "columns on: with fewer, 0,1 is as likely a row of data; name the columns.)"
                if pandas
                else "(pandas' to_csv of a frame without column names writes the header "
                "0,1,2,..., which is read as names from 3 columns on.)"
            )
        )
    dupes = repeated(header)
    if dupes:
        # Numbers or booleans twice: a first row of data (0,0,Feb,FALSE), its header missing.
        words = np.array([d for d in dupes if d.lower() not in ("true", "false")], dtype=object)
        data = bool(delim) and not parse_floats(words)[1].size  # (not a Parquet file's names)
        raise UserError(
            f"{shown}: duplicate column names in the header: {quote_names(dupes)}; "
            "expected unique names"
            + (
                f" (the first row {quote_names(header, 5)} looks like data: if the file has "
                "no header row, add one of column names)"
                if data
                else ""
            )
        )
    inside = [d for d in DELIMITERS if len(header) == 1 and d in header[0]]
    if inside:
        how = {
            "given": f"data.delimiter={NAMES.get(delim, repr(delim))}",
            "tsv": "a .tsv file is read with tab as its delimiter unless data.delimiter says "
            "otherwise",
            "sniffed": "no delimiter among ',', ';', tab and '|' splits the header and first "
            "rows consistently",
        }[chosen]
        raise UserError(
            f"{shown}: the header row reads as one column named {header[0]!r} "
            f"({how}), but it contains {NAMES[inside[0]]}; expected a header with "
            f"one name per column: set data.delimiter to the file's delimiter "
            f"(e.g. {NAMES[inside[0]]}), or make every row have as many cells "
            "as the header"
        )


def check_first_rows(rows: list[list[str]], shown: str) -> None:
    """Refuses a header (`rows[0]`, over the first data rows) that is no header: a file whose
    cells are separated by spaces (one column, 'a n city', read as a single text), or a first
    row of data in a file with text columns (-0.803,0,green: each number heads a column of
    numbers, each text is one of its own column's cells; a header of all numbers is refused by
    `check_header`)."""
    header, body = rows[0], rows[1 : _SNIFF_ROWS + 1]
    if not body:
        return
    widths = {len(r[0].split()) if len(r) == 1 else 0 for r in rows[: _SNIFF_ROWS + 1]}
    one = len(header) == 1 and len(widths) == 1 and min(widths) > 1
    fields = np.array([r[0].split() for r in body] if one else [], dtype=object).T
    # ... with a field of numbers: not one column of words ('John Smith' under 'full name')
    if any(not parse_floats(f)[1].size for f in fields):
        raise UserError(
            f"{shown}: its cells are separated by spaces (the header {header[0]!r} and the "
            f"first rows each split into {min(widths)} cells at spaces) and read as one column; "
            "expected ',', ';', tab or '|' between cells: set data.delimiter=' ' if one space "
            "separates each cell, or convert the file, e.g. with pandas' read_csv(path, "
            "sep=r'\\s+').to_csv('file.csv', index=False)"
        )
    # (A missing cell, blank or a marker, says nothing of its column's kind.)
    cells = [
        [v for r in body if len(r) > j and (v := r[j].strip()) not in NA_VALUES]
        for j in range(len(header))
    ]
    numeric = [bool(c) and not parse_floats(np.array(c, dtype=object))[1].size for c in cells]
    names = [h.strip() for h in header]
    named = [not parse_floats(np.array([h], dtype=object))[1].size for h in names]
    # A text is a cell of its column: one of its first cells, a missing-value marker, or an id
    # written as every one of them is, with digits (p000 over p001, p002; ISO over FRA, DEU
    # is a name).
    ids = [bool(c) and "9" in _shape(h) and {_shape(v) for v in c} == {_shape(h)} for h, c in
           zip(names, cells, strict=True)]  # fmt: skip
    as_data = [
        h in NA_VALUES or n == num and (n or h in c or i)
        for h, c, n, num, i in zip(names, cells, named, numeric, ids, strict=True)
    ]
    if all(as_data) and any(named) and not all(named):
        raise UserError(
            f"{shown}: the first row {quote_names(header, 5)} looks like data: its numbers head "
            "columns of numbers and its texts are cells of their own columns (among their first "
            "rows, missing-value markers, or ids written as each cell is); expected a header "
            "row of column names: add one (a trained run's new rows: the names of the columns "
            "it was trained on)"
        )
    # Weaker evidence, said: a name with a sign, a decimal point or an exponent heading a column
    # of numbers (-1.067,E,76, its grade E in no first row: a probe), which spectra (400.5),
    # quantiles (0.05) and lags (-2) are named with too (a review).
    if odd := [
        h for h, n, num in zip(names, named, numeric, strict=True) if n and num and not h.isdigit()
    ]:
        logging.warning(
            "%s: its first row %s is read as the header, but names columns of numbers with "
            "numbers (%s): if the file has no header row, add one (else its first row of data "
            "is lost, its values naming the columns)",
            shown, quote_names(header, 5), ", ".join(map(repr, odd[:3])),
        )  # fmt: skip


def _shape(text: str) -> str:
    """How a cell is written: each digit 9, each letter A or a by its case ('p001': 'a999')."""
    return re.sub(r"[a-z]", "a", re.sub(r"[A-Z]", "A", re.sub(r"[0-9]", "9", text)))


def _names(text: str, delim: str) -> list[str]:
    """The header's names read with `delim` (stripped, as a header's are)."""
    return [name.strip() for name in split_rows(text, delim)[0]]
