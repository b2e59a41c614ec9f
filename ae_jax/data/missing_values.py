"""A column's missing values (data.missing): the refusal that names them (`missing_error`),
the training split's fill value (`impute_value`), and what was filled, said (`log_imputed`).
Used by `Preprocessor` as it encodes each column (`columns.py`)."""

from __future__ import annotations

import numpy as np
from absl import logging

from ae_jax.data import cells
from ae_jax.data.cells import Cells, quote_names
from ae_jax.data.tables import Table
from ae_jax.errors import UserError

MISSING = ("error", "drop", "impute")  # data.missing's choices
_NAN_WORDS = {"nan", "+nan", "-nan"}


def missing_error(
    table: Table, i: int, col, missing: np.ndarray, masks: list | None, prep, trained: bool
) -> UserError:
    """The refusal of the missing values of column `i` (data.missing='error', or a new file
    for a model trained without imputation); `prep` is the Preprocessor (its missing,
    na_values, thousands and fill), `masks` the columns' missing-value masks when known. It
    names the later columns with missing values too, so a file is fixed in one pass."""
    name, mode, na_values = table.columns[i], prep.missing, prep.na_values
    others = [
        other
        for k, other in enumerate(table.columns[i + 1 :], i + 1)
        if other not in prep.fill
        and (
            masks[k]
            if masks is not None
            else Cells(table.values[k], prep.thousands).missing(na_values)
        ).any()
    ]
    rows = np.flatnonzero(missing)
    markers = sorted({cells.cell(col, r) for r in rows[:1000]})
    if markers == [""] and table.file is None:  # a Parquet or pyarrow null reads as ''
        noun, col = f"{rows.size} missing value(s) (empty or null)", None
    elif markers == [""]:
        noun = f"{rows.size} empty cell(s) (missing values)"
    elif all(m.lower() in _NAN_WORDS for m in markers) and table.file is not None:
        noun = "NaN or infinite values"  # the words of the finite check: NaN is missing too
    elif all(m.lower() in _NAN_WORDS for m in markers):  # a null (Parquet, rows) reads as NaN
        noun = f"{rows.size} missing value(s) ({'NaN or null' if table.named else 'NaN'})"
        col = None  # (no cell to show: each would read 'nan')
    else:
        noun = f"{rows.size} missing value(s) (marker(s) {quote_names(markers, 8)})"
    if trained:
        remedy = (
            f"the model was trained with data.missing={mode!r}, so new rows need a "
            "value in every cell: fill them in or drop those rows"
        )
    elif rows.size == len(missing):
        remedy = (
            "expected some values: the column has none in any row, so neither dropping rows "
            "(data.missing='drop') nor filling them (data.missing='impute') can keep it: "
            "remove it from the file"
        )
    else:
        remedy = (
            "expected a value in every cell (data.missing='error'): set "
            "data.missing='drop' to drop those rows, or data.missing='impute' to fill "
            "them with the training split's mean (numeric) or most frequent value "
            "(categorical, true/false), or fill them in the file; markers read as "
            f"missing: data.na_values={tuple(na_values)!r}, and NaN or null in arrays and Parquet"
        )
    words = [m for m in markers if m.strip() and m.lower() not in _NAN_WORDS]
    texts = Cells(table.values[i], prep.thousands) if words and not trained else None
    # A marker on a tenth of a column of words ('NA': North America?), not among numbers.
    if texts is not None and of_words(texts, missing):
        uniq, inverse = texts.distinct
        spelt = np.isin(inverse, [k for k, u in enumerate(uniq) if u.strip() in words])
        if (n := int(spelt.sum())) >= 0.1 * len(missing):
            remedy += (
                f"; {quote_names(words, 3)[1:-1]} in {n} of its {len(missing)} rows: if a "
                "category here (NA for North America), give data.na_values without it"
            )
    also = f", and {len(others)} other column(s) have some too: {quote_names(others)}"
    return UserError(
        f"{table.source}: column {name!r} has {noun} at {table.where(rows, col)}"
        f"{also if others else ''}; {remedy}"
    )


def impute_value(
    table: Table,
    name: str,
    kind: str,
    vocab: list[str] | None,
    x: np.ndarray,
    missing: np.ndarray,
    train_rows: np.ndarray,
    column: Cells | None = None,
    na_values: tuple[str, ...] = (),
) -> float | str:
    """The fill value of a column from its training rows: mean (numeric), most frequent value
    (boolean: 1.0 / 0.0, categorical: the category; ties go to the first). A text column's
    missing-value marker on a tenth of its training rows or more is warned of (`column`'s
    spellings): 'NA' for North America, 'None' for a plan, filled in unsaid (a probe)."""
    present = x[train_rows][~missing[train_rows]]
    if not present.size:
        way_out = (
            "the column has none in any row, so remove it from the file"
            if missing.all()
            else "remove the column from the file, or use data.missing='drop'"
        )
        raise UserError(
            f"{table.source}: column {name!r} has no value in the {train_rows.size} "
            "rows of the training split, so data.missing='impute' has nothing to "
            f"fill its missing cells from; expected some values: {way_out}"
        )
    if kind == "numeric":
        with np.errstate(over="ignore"):
            return float(present.mean())
    counts = np.bincount(present.astype(np.int64), minlength=len(vocab) if vocab else 2)
    if kind == "categorical":
        assert vocab is not None  # a categorical column always comes with its vocabulary
        fill = vocab[int(counts.argmax())]
        if column is not None and column.text:
            say_common_markers(
                table, name, column, missing, train_rows, f"filled in with {fill!r}", na_values
            )
        return fill
    return float(counts.argmax())


def of_words(column: Cells, missing: np.ndarray) -> bool:
    """Whether a column's cells besides its `missing` ones hold text that is no number: a
    marker there may be a category ('NA', North America), among numbers a missing number."""
    return column.text and not missing[column.numbers[1]].all()


def say_common_markers(
    table: Table, name, column: Cells, missing, rows_of: np.ndarray, outcome: str, na
) -> None:
    """Warns of a text column's missing-value marker on a tenth of the rows `rows_of` (the
    training split's, or all) or more, and what became of them (`outcome`): 'NA' for North
    America filled in, or its rows dropped (data.missing='drop' dropped a whole category with
    an information line alone: a probe)."""
    uniq, inverse = column.distinct
    rows = rows_of[missing[rows_of]]
    spelt = np.bincount(inverse[rows][inverse[rows] >= 0], minlength=len(uniq))
    what = "training rows'" if len(rows_of) < len(missing) else "rows'"
    for k in np.flatnonzero(spelt >= max(1, 0.1 * len(rows_of))):
        if uniq[k].strip() and uniq[k] in na:  # (not '', nor a Python None: no marker's doing)
            logging.warning(
                "data: %s: column %r: %r, a missing-value marker (data.na_values), is %d of the "
                "%d %s cells (%.0f%%), %s; if it is a category here (NA for North America, a "
                "plan named None), give data.na_values without it",
                table.source, name, uniq[k], spelt[k], len(rows_of), what,
                100 * spelt[k] / len(rows_of), outcome,
            )  # fmt: skip


def log_imputed(
    source: str, name: str, kind: str, mask: np.ndarray, value: float | str, new: bool
) -> None:
    """Says how many of a column's cells (`mask`) were filled in; a warning for half of its
    rows or more, or all of 2 or more new rows (a column 99.7% filled: information only)."""
    how = "mean" if kind == "numeric" else "most frequent value"
    if kind == "boolean":  # its fill is the encoded 0.0 or 1.0
        value = "true" if value else "false"
    count = int(mask.sum())
    most = count == mask.size > 1 if new else 2 * count >= mask.size
    tail = (
        ", in every row: the column has no value there, and their codes are of that value's"
        if new
        else f", {count} of its {mask.size} rows: the column is mostly that one value, which "
        "tells rows apart little; drop it, or fill it in yourself"
    )
    (logging.warning if most else logging.info)(
        "data: %s: column %r: %d missing value(s) filled with the training split's %s %r%s%s",
        source, name, count, how, value, " (new rows)" if new else "", tail * most,
    )  # fmt: skip
