"""What a table's columns are refused or warned for as a model would see them, beyond their
kinds (`columns.py`): a one-hot encoding too wide or with colliding feature names, a row index
or identifier kept as a number, data.categorical_columns naming no feature column, marker-like
categories, unseen categories that look like a mismatch; and rows data.missing='drop' drops."""

import re

import numpy as np
from absl import logging

from ae_jax.data import missing_values
from ae_jax.data.cells import LEADING_ZERO, Cells, grouped_separator, missing_mask, quote_names
from ae_jax.data.delimiters import DECIMAL_COMMA
from ae_jax.data.tables import BOOL_TEXTS, BOOL_WORDS, Table
from ae_jax.errors import UserError

# Texts that read as missing-value markers not in data.na_values ('n/a', '-', 'NULL', '#N/A'),
# and how many of them a column of numbers (or of number codes) may hold to be told so.
MARKER = re.compile(
    r"[^\w]*|(?i:n/?a|n\.a\.?|nan|null|none|nil|missing|unknown|#n/a|#div/0!|#value!|#ref!|"
    r"#num!|#name\?|#null!)"
)
FEW_TEXTS = 3
_WORD_CATEGORIES = {"none", "unknown", "missing"}
# A categorical column with more distinct values than this, and than half its cells, is more
# likely an identifier, a date or numbers in an unread form than categories: it is said.
MANY_CATEGORIES = 20


def say_if_identifier(
    table: Table, name: str, texts: list[str], present: int, numbers: bool = False
) -> None:
    """Warns of a categorical column of near-unique values (`texts`, in `present` cells);
    `numbers`: the column is named in data.categorical_columns and every value is a number."""
    if len(texts) <= max(MANY_CATEGORIES, present // 2):
        return
    typed = name in table.categorical  # (a Parquet dictionary, a pandas category column)
    if numbers:  # a measurement named by mistake: "convert or drop it" missed the naming
        how = "so typed in its file" if typed else "data.categorical_columns"
        fix = "leave it out of data.categorical_columns"
        fix = f"store it as numbers (and {fix} if it is there)" if typed else fix
        why = (
            f"is categorical ({how}) but holds %d distinct numbers in %d cells, e.g. %s: "
            "measurements rather than codes? As categories each value is one of its own, which "
            f"carries nothing a model can generalise: {fix} to model it as a number"
        )
    else:
        why = (
            "becomes a categorical column of %d distinct values in %d cells, e.g. %s: an "
            "identifier, a date, or numbers in a form not read as numbers (such as '3 kg')? "
            "Codes of such a column carry nothing a model can generalise: convert or drop it"
        )
    logging.warning(
        "%s: column %r " + why, table.source, name, len(texts), present, quote_names(texts[:3])
    )


def say_if_codes(table: Table, name: str, texts: list[str]) -> None:
    """Warns of a numeric column with numbers written with leading zeros (zip codes, ids)."""
    codes = sorted(t for t in texts if LEADING_ZERO.match(t))
    if codes:
        logging.warning(
            "%s: column %r holds numbers written with leading zeros, e.g. %s: read as numbers, "
            "which lose the zeros and are modelled by their size; if they are codes (zip "
            "codes, ids), name the column in data.categorical_columns",
            table.source,
            name,
            quote_names(codes[:3]),
        )


def say_numbers_as_categories(table: Table, name: str, values: int, col, rows: np.ndarray) -> None:
    """Warns that a column (`col`) of a few distinct numbers (`values`) beside a few texts (not
    missing-value markers; in `rows`) is categorical, its numbers categories too: sizes 10, 12
    beside 'S', 'M'; or ratings 1-5 beside 'not rated', whose order the codes then lose."""
    logging.warning(
        "%s: column %r is categorical: most of its cells are numbers (%d distinct), but these "
        "are not: %s; each number is a category of its own, unrelated to the next: if the "
        "column is a quantity, add those texts to data.na_values (missing values) or fix the "
        "cells; name it in data.categorical_columns to keep it categorical without this warning",
        table.source,
        name,
        values,
        table.where(rows, col),
    )


def check_named_codes(table: Table, name: str, column: Cells, missing: np.ndarray) -> None:
    """A column named in data.categorical_columns (or declared categorical by its file): warns
    of a few texts among number codes that read as missing-value markers not in
    data.na_values ('-', '#N/A': categories of their own here, unless na_values names them),
    and of near-unique values (a measurement named by mistake)."""
    uniq, inverse = column.distinct
    counts = np.bincount(inverse[~missing], minlength=len(uniq))  # (nulls are missing)
    seen = np.flatnonzero(counts > 0)
    texts = seen[column.parsed[1][:-1][seen]]  # the distinct cells that are no numbers
    present = int(counts.sum())
    numbers = present - int(counts[texts].sum())
    markers = all(MARKER.fullmatch(uniq[k].strip()) for k in texts)
    if 0 < len(texts) <= FEW_TEXTS and numbers >= present / 2 and markers:
        bad = np.flatnonzero(np.isin(inverse, texts) & ~missing)
        logging.warning(
            "%s: column %r holds %d number codes and these cells that read as missing-value "
            "markers: %s; they are categories of their own here: add their text to "
            "data.na_values if they mark missing values",
            table.source,
            name,
            numbers,
            table.where(bad, column.values),
        )
    say_if_identifier(table, name, [uniq[k] for k in seen], present, numbers=not len(texts))


def check_true_false(table: Table, name: str, column: Cells, missing: np.ndarray) -> None:
    """Refuses true/false cells (any case; 1/0 besides) beside a few other texts in under a
    tenth of the cells, as a numeric column's: one 'unknown' among TRUE/FALSE made the column
    categorical, FALSE 0 and TRUE 0.33 as ordinal codes, silently (a probe). Not where the
    words true/false are under half the cells: counts 0-3 beside one 'FALSE' are numbers."""
    uniq, inverse = column.distinct
    counts = np.bincount(inverse[~missing], minlength=len(uniq))[: len(uniq)]  # (nulls missing)
    others = np.flatnonzero((counts > 0) & ~np.array([u.lower() in BOOL_TEXTS for u in uniq]))
    words, present = counts[[u.lower() in BOOL_WORDS for u in uniq]].sum(), counts.sum()
    if 2 * words < present or len(others) > FEW_TEXTS or 10 * counts[others].sum() >= present:
        return
    bad = np.flatnonzero(np.isin(inverse, others) & ~missing)
    raise UserError(
        f"{table.source}: column {name!r} holds true/false values, but these cells are not: "
        f"{table.where(bad, column.values)}; expected true or false (any case) or 1/0 in every "
        "cell of a true/false column: fix or drop those rows, or add the cell's text to "
        "data.na_values if it marks a missing value; or, if its values are categories, name it "
        "in data.categorical_columns"
    )


def say_marker_categories(table: Table, name: str, column: Cells, missing: np.ndarray) -> None:
    """Warns of a text column's few cells that read as missing-value markers not in
    data.na_values ('-', 'NULL'; not 'none', 'unknown', 'missing', as often categories)."""
    uniq, inverse = column.distinct
    counts = np.bincount(inverse[~missing], minlength=len(uniq))  # (nulls are missing)
    marks = [
        k
        for k in np.flatnonzero(counts)
        if MARKER.fullmatch(t := uniq[k].strip()) and t.lower() not in _WORD_CATEGORIES
    ]
    if 0 < len(marks) <= FEW_TEXTS and 2 * counts[marks].sum() < counts.sum():
        logging.warning(
            "%s: column %r holds cells that read as missing-value markers: %s; they are "
            "categories of their own here: add their text to data.na_values if they mark "
            "missing values",
            table.source,
            name,
            table.where(np.flatnonzero(np.isin(inverse, marks) & ~missing), column.values),
        )


def say_if_index(table: Table, name: str, x: np.ndarray) -> None:
    """Warns of whole numbers one per row, consecutive (1..N, 100001..100300), or so in the
    file's order less the rows data.missing='drop' dropped: a row index (pandas' 'Unnamed: 0')
    or an identifier, modelled as a number; and of distinct numbers beyond 2**53 that float64
    merges (20-digit identifiers became one value, then reported as a constant column)."""
    # As float64, as the model gets them: Parquet's int64 identifiers 2**62 + i are distinct
    # integers but one float (they were called a constant column without this warning).
    as_float = np.asarray(x, np.float64)
    big = as_float[np.abs(as_float) >= 2**53]
    if big.size and np.unique(big).size < big.size:
        logging.warning(
            "%s: column %r holds %d number(s) of 16 or more digits (beyond 2**53), only %d "
            "distinct as numbers: float64 keeps 15-17 digits, so identifiers that long lose "
            "their last ones and several read as one (e.g. %r); if they are identifiers, drop "
            "the column or write it as text",
            table.source,
            name,
            big.size,
            np.unique(big).size,
            float(big[0]),
        )
    if x.size < 20 and (name != "Unnamed: 0" or not x.size):
        return
    lo, hi = float(x.min()), float(x.max())  # (a uint8 column's max + 1 overflowed)
    at, consecutive = table.row_index, hi - lo + 1 == x.size  # (at: the rows kept, if dropped)
    kept = not consecutive and at is not None and len(at) == x.size and (x - at == lo - at[0]).all()
    if name != "Unnamed: 0" and not consecutive and not kept:
        return  # no index (the sort below took ~1 s for the 784 columns of 60,000 pixels)
    if not np.all(x == np.round(x)) or np.unique(x).size != x.size:
        return
    pandas = not consecutive and not kept  # 'Unnamed: 0' with gaps: a filtered frame's index
    logging.warning(
        "%s: column %r holds %s whole numbers %d..%d%s: %s? It is modelled as a number; drop "
        "it from the file%s if it is one",
        table.source,
        name,
        "distinct" if pandas else "the",
        lo,
        hi,
        ", one per row" * consecutive + ", one per row of the file less the dropped" * bool(kept),
        "the index pandas' to_csv writes (of a filtered frame: with gaps)"
        if pandas
        else "a row index or an identifier",
        " (or save with index=False)" * pandas,
    )


def decimal_comma_columns(
    table: Table, columns: list[Cells], masks: list[np.ndarray], named: set[str]
) -> list[str]:
    """The table's text columns, not categorical by name, whose present cells that are no
    numbers (with data.thousands) are numbers with a decimal comma, not thousands groups (at
    least one, `besides_markers`): named together in the refusal of the first."""
    found = []
    for name, column, mask in zip(table.columns, columns, masks, strict=True):
        if name in named or not column.text or column.fast is not None:
            continue
        uniq, inverse = column.distinct
        seen = np.isin(np.arange(len(uniq)), inverse[~mask])  # (a null's -1 is no cell)
        texts = [uniq[k] for k in np.flatnonzero(column.parsed[1][:-1] & seen)]
        commas = besides_markers(texts)[0]
        if commas and all(map(DECIMAL_COMMA.fullmatch, commas)) and not grouped_separator(commas):
            found.append(name)
    return found


def besides_markers(texts: list[str]) -> tuple[list[str], list[str]]:
    """A column's cells that are no numbers as (the others, the missing-value markers: '-',
    'n/a'), or (all, none) beyond FEW_TEXTS markers: a few hide no decimal commas or thousands."""
    marks = [t for t in texts if MARKER.fullmatch(t.strip())]
    few = len(marks) <= FEW_TEXTS
    return [t for t in texts if not few or t not in marks], marks if few else []


def listed(names: list[str], most: int = 8) -> str:
    """'a', 'b' and 3 more: names in a sentence."""
    return ", ".join(map(repr, names[:most])) + (
        f" and {len(names) - most} more" * (len(names) > most)
    )


def header_row_hint(table: Table, rows: np.ndarray) -> str:
    """What a refusal of an array's cells adds when the only one is in its first row: column
    names saved with the rows (np.save of a table with its header), which arrays do not have."""
    first = table.row_index[rows] if table.row_index is not None else rows
    if table.named or list(first) != [0]:
        return ""
    return "; the array's first row looks like column names (saved with the rows?): drop it"


def drop_rows(table: Table, features: Table, options: dict) -> tuple[Table, Table]:
    """The rows training reads: without the empty ones (`drop_empty_rows`), and under
    data.missing='drop' without any missing a value (`drop_missing`)."""
    table, features = drop_empty_rows(table, features, options["na_values"])
    if options["missing"] == "drop":
        table, features = drop_missing(table, features, options["na_values"])
    return table, features


def drop_empty_rows(table: Table, features: Table, na_values) -> tuple[Table, Table]:
    """Leaves out a delimited file's rows whose every feature cell is empty, saying where: a
    spreadsheet's empty rows below its data, saved as ',,' lines (imputed, three trained as
    made-up rows of the columns' means, said only as filled values: a probe). Not a table of
    one feature column, whose empty cell is a missing value, nor a file of no other rows (its
    empty columns are refused), nor where data.na_values leaves '' out (a category there)."""
    if table.file is None or len(features.columns) < 2 or "" not in na_values:
        return table, features
    empty = np.ones(table.num_rows, bool)
    for col in features.values:  # (one column without an empty cell ends the search)
        empty &= missing_mask(col, ("",))
        if not empty.any():
            return table, features
    if empty.all():
        return table, features
    rows = np.flatnonzero(empty)
    logging.warning(
        "data: %s: %d row(s) without a value in any feature column left out, at %s (empty "
        "rows, as a spreadsheet saves below its data?)",
        table.source,
        rows.size,
        table.where(rows),
    )
    keep = np.flatnonzero(~empty)
    return table.take(keep), features.take(keep)


def drop_missing(table: Table, features: Table, na_values: tuple[str, ...]) -> tuple[Table, Table]:
    """Drops the rows with a missing value in any feature column, saying counts per column (a
    warning naming the columns behind most of them when over half the rows go, and one for a
    text column's marker on a tenth of the rows or more: 'NA' may be North America)."""
    masks = [missing_mask(col, na_values) for col in features.values]
    gone = np.logical_or.reduce(masks) if masks else np.zeros(table.num_rows, bool)
    if not gone.any():
        return table, features
    everyone = np.arange(table.num_rows)
    for name, col, mask in zip(features.columns, features.values, masks, strict=True):
        if mask.any() and missing_values.of_words(cells := Cells(col), mask):
            outcome = "and data.missing='drop' dropped those rows"
            missing_values.say_common_markers(
                table, name, cells, mask, everyone, outcome, na_values
            )
    counts = {n: int(m.sum()) for n, m in zip(features.columns, masks, strict=True) if m.any()}
    empty = [n for n, m in zip(features.columns, masks, strict=True) if m.all()]
    if empty:
        raise UserError(
            f"{table.source}: column(s) {quote_names(empty)} have no value in any of the "
            f"file's {table.num_rows} rows, so data.missing='drop' would drop every row and "
            "data.missing='impute' has nothing to fill them from; expected some values in "
            "every column: remove those columns from the file"
        )
    if gone.all():
        raise UserError(
            f"{table.source}: every one of its {table.num_rows} rows has a missing "
            f"value (per column: {counts}), so data.missing='drop' leaves no rows; "
            "expected some complete rows: use data.missing='impute', or drop the "
            "emptiest columns from the file"
        )
    dropped, worst = int(gone.sum()), [n for n, c in counts.items() if c > gone.sum() / 2]
    say = dropped > table.num_rows / 2  # most rows gone: a warning
    (logging.warning if say else logging.info)(
        "data: data.missing='drop' dropped %d of %d rows with missing values (per column: %s)%s",
        dropped,
        table.num_rows,
        counts,
        f"; most of them lack a value of column(s) {quote_names(worst)}: drop those columns "
        "from the file, or use data.missing='impute', to train on more rows"
        if say and worst
        else "",
    )
    keep = np.flatnonzero(~gone)
    return table.take(keep), features.take(keep)
