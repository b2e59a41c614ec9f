"""One raw column -> kind, encoded values and missing-value handling (used by `Preprocessor`).

A column is numeric when its non-missing cells are numbers (missing-value markers never make it
categorical), true/false when they are true/false words (any case), and else categorical with
the sorted vocabulary of its non-missing cells. Encoded values are float64 with NaN where a cell
is missing; categorical columns give their ordinal codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
from absl import logging

from ae_jax.data import cells, column_checks, spellings, vocabulary
from ae_jax.data.cells import UNSEEN, Cells, grouped_separator, quote_names
from ae_jax.data.tables import BOOL_TEXTS, Table
from ae_jax.errors import UserError

# A column this numeric is a numeric column with typos, not a categorical one; so is one whose
# majority are numbers (not codes with leading zeros, as '007') and whose other cells are a
# few texts that read as missing-value markers not in data.na_values ('n/a', '-', 'NULL', '#N/A';
# not categories such as 'S'/'M' or 'yes'/'no'): its numbers' codes would carry nothing.
_NUMERIC_SHARE = 0.9
# Characters that make a number unreadable while it looks like one: spaces grouping thousands in
# French and spreadsheet exports, and the Unicode minus sign.
_LOOKALIKES = {
    "\u00a0": "no-break spaces (U+00A0)",
    "\u202f": "narrow no-break spaces (U+202F)",
    "\u2009": "thin spaces (U+2009)",
    "\u2212": "the minus sign U+2212",
}
# "12%", "$1,250.00", "-3.5 €": a number with a percent or currency sign, read as text.
_SIGNS = "%$€£¥"
_SIGNED = re.compile(rf"[+-]?[{_SIGNS}]?\s?[+-]?(\d[\d,.' ]*|[.,]\d+)\s?[{_SIGNS}]?")
# A number in parentheses (an accounting negative) or in quote characters kept in the cell:
# its digits grouped by commas in threes or not at all ("(0, 3)" is a pair, not a number).
_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_WRAPPED = re.compile(rf"""\(\s*{_NUMBER}\s*\)|"{_NUMBER}"|'{_NUMBER}'""")


def infer_kind(
    table: Table,
    name: str,
    column: Cells,
    missing: np.ndarray,
    categorical: bool = False,
    decimal_columns: Callable[[], list[str]] | None = None,
) -> tuple[str, list[str] | None]:
    """Picks "numeric", "boolean" or "categorical" (with its sorted vocabulary) for a column;
    `missing` marks the cells that are missing values (they do not count); `categorical`: the
    column is named in data.categorical_columns, categories whatever its cells;
    `decimal_columns`: the table's columns with decimal commas, for naming them all."""
    if categorical:
        column_checks.check_named_codes(table, name, column, missing)
        return "categorical", sorted(column.distinct[0])
    col = column.values
    fast = column.fast if column.text else np.asarray(col)
    if fast is not None:  # every cell a number (or true/false: not text, so of an array)
        if fast.dtype.kind == "b":
            return "boolean", None
        if table.image_shape is None:  # (a pixel is no row index or identifier)
            column_checks.say_if_index(table, name, fast[~missing])
        if column.text:
            column_checks.say_if_codes(table, name, column.distinct[0])
        return "numeric", None
    uniq, inverse = column.distinct
    bad_text = column.parsed[1]
    counts = np.bincount(inverse[~missing], minlength=len(uniq))  # nulls are missing
    seen = counts > 0
    not_number = bad_text[:-1] & seen
    texts = [u for u, s in zip(uniq, seen, strict=True) if s]
    if not not_number.any():
        column_checks.say_if_codes(table, name, texts)
        return "numeric", None
    not_numbers = [uniq[k] for k in np.flatnonzero(not_number)]
    bad = lambda: np.flatnonzero(bad_text[inverse] & ~missing)  # positions, for messages
    written, marks = column_checks.besides_markers(not_numbers)
    sep = grouped_separator(written)
    decimal = bool(written) and all(column_checks.DECIMAL_COMMA.fullmatch(t) for t in written)
    convert = "convert the file's decimal commas to points, e.g. with pandas' read_csv(decimal=',')"
    na = (
        f"; add {column_checks.listed(marks)} to data.na_values if they mark missing values"
        * bool(marks)
    )
    if sep:
        raise UserError(
            f"{table.source}: column {name!r} holds numbers written with a thousands "
            f"separator {sep!r}: {table.where(bad(), col)}; expected plain numbers: set "
            f"data.thousands={sep!r} to read {written[0]!r} as "
            f"{written[0].replace(sep, '')}, or remove the separators in the file"
            + (f"; if ',' is a decimal comma here, {convert}" if decimal else "")
            + na
        )
    if decimal:
        first = written[0]
        also = [c for c in (decimal_columns() if decimal_columns else []) if c != name]
        raise UserError(
            f"{table.source}: column {name!r} holds numbers written with a decimal comma: "
            f"{table.where(bad(), col)}"
            + (
                f" (so {'does column' if len(also) == 1 else 'do columns'} "
                f"{column_checks.listed(also)})" * bool(also)
            )
            + f"; expected a decimal point, {first!r} written "
            f"{first.replace('.', '').replace(',', '.')}: "
            + (
                convert.replace("=',')", "=',', thousands='.')")
                if any("." in t for t in written)
                else convert
            )
            + na
        )
    signed = np.array([any(c in t for c in _SIGNS) and bool(_SIGNED.fullmatch(t)) for t in uniq])
    present, n_bad = int(counts.sum()), int(counts[not_number].sum())
    # (the first character first: a million ids' cells went through two patterns, 0.5 s)
    wrapped = [k for k in np.flatnonzero(not_number) if uniq[k][:1] in "(\"'"]
    wrapped = [k for k in wrapped if _WRAPPED.fullmatch(uniq[k])]
    many = int(seen.sum()) > column_checks.MANY_CATEGORIES  # (survey answers "(1)".."(5)": few)
    if many and wrapped:  # ... and nine in ten cells numbers, so written or plain
        plain = [k for k in np.flatnonzero(not_number) if _SIGNED.fullmatch(uniq[k])]
        numbers_so = present - n_bad + counts[sorted({*wrapped, *plain})].sum()
        wrapped = wrapped if numbers_so >= _NUMERIC_SHARE * present else []
    if many and wrapped:
        fix = r"""str.replace(r'^\((.*)\)$', r'-\1', regex=True).str.strip('"\'')"""
        others = [t for t in not_numbers if not (_WRAPPED.fullmatch(t) or _SIGNED.fullmatch(t))]
        raise UserError(  # ("(-1,055)" beside "3,580" became one of 150 categories: a probe)
            f"{table.source}: column {name!r} holds numbers in parentheses (an accounting "
            f"negative) or in quote characters: {table.where(bad(), col)}; expected plain "
            "numbers (as categories, their codes would carry nothing a model can generalise): "
            "write (1,055) as -1055 and remove the quotes and any thousands separators in the "
            f"file, e.g. with pandas' df[col].{fix}, or drop the column; if its values are "
            "categories, name it in data.categorical_columns"
            + (
                f"; add {quote_names(others, 5)} to data.na_values if they mark missing values"
                * bool(others)
            )
        )
    if signed.any() and present - n_bad + counts[signed].sum() >= _NUMERIC_SHARE * present:
        others = [t for t in not_numbers if not _SIGNED.fullmatch(t)]
        strip = r"df[col].str.replace(r'[%$€£¥,\s]', '', regex=True).astype(float)"
        raise UserError(
            f"{table.source}: column {name!r} holds numbers written with a percent or currency "
            f"sign: {table.where(bad(), col)}; expected plain numbers (as categories, their "
            "codes would carry nothing a model can generalise): remove the signs and any "
            f"thousands separators in the file, e.g. with pandas' {strip}, or drop the column"
            + (
                f"; add {quote_names(others, 5)} to data.na_values if they mark missing values"
                * bool(others)
            )
        )
    odd = [c for c in _LOOKALIKES if any(c in t for t in not_numbers)]
    readable = lambda t: cells.is_number(t) or bool(column_checks.DECIMAL_COMMA.fullmatch(t))
    if odd and all(readable(_plain(t)) for t in not_numbers):
        commas = [t for t in not_numbers if column_checks.DECIMAL_COMMA.fullmatch(_plain(t))]
        fix = "".join(f".str.replace({c!r}, {'-' if c == chr(0x2212) else ''!r})" for c in odd)
        raise UserError(
            f"{table.source}: column {name!r} holds numbers written with "
            f"{' and '.join(_LOOKALIKES[c] for c in odd)}: {table.where(bad(), col)}; expected "
            "plain numbers: "
            + " and ".join(
                (["remove those spaces"] if odd != ["\u2212"] else [])
                + (["write '-' for the minus sign"] if "\u2212" in odd else [])
                + (["write decimal points for the decimal commas"] if commas else [])
            )
            + f" in the file (e.g. with pandas' df[col]{fix}"
            + (".str.replace(',', '.')" if commas else "")
            + "), or drop the column"
        )
    if {t.lower() for t in texts} <= BOOL_TEXTS.keys():  # only numbers returned above
        return "boolean", None
    column_checks.check_true_false(table, name, column, missing)
    numbers, values = present - n_bad, len(texts) - len(not_numbers)  # cells; distinct
    # Mostly numbers, beside texts: a numeric column with notes, or categories (sizes 10, 12,
    # 'S', 'M'); beside a few texts, all missing-value markers, a numeric column.
    mostly = numbers >= present / 2 and not any(cells.LEADING_ZERO.match(t) for t in texts)
    markers = all(column_checks.MARKER.fullmatch(t.strip()) for t in not_numbers)
    markers &= len(not_numbers) <= column_checks.FEW_TEXTS
    # Beside many distinct numbers (ages beside 'unknown', 'refused'; lab values beside '<0.1',
    # 'QNS', 'clotted', ... were categories, silently: a probe), texts are no categories.
    if numbers >= _NUMERIC_SHARE * present or (
        mostly and (markers or values > column_checks.MANY_CATEGORIES)
    ):
        which = "cells" if present == len(col) else "non-missing cells"
        raise UserError(
            f"{table.source}: column {name!r} cannot be encoded: {present - n_bad} of its "
            f"{present} {which} are numbers, but these are not: {table.where(bad(), col)}; "
            "expected a number in every cell of a numeric column: fix or drop those rows, or "
            "add the cell's text to data.na_values if it marks a missing value"
            + (  # (a list given without '' left empty cells unread, said as "add ''": a probe)
                "; an empty cell is missing only while data.na_values holds '': giving the "
                "field replaces its defaults, so write it too, --config.data.na_values=\"'',-\""
                * any(not t.strip() for t in not_numbers)
            )
            + "; or, if its values are categories, name it in data.categorical_columns"
            * (not markers)
            + column_checks.header_row_hint(table, bad())
        )
    if mostly:  # a few distinct numbers beside words: sizes 10, 12, 'S', 'M'
        column_checks.say_numbers_as_categories(table, name, values, col, bad())
    column_checks.say_if_identifier(table, name, texts, present)
    column_checks.say_marker_categories(table, name, column, missing)
    return "categorical", sorted(texts)


def _plain(text: str) -> str:
    """text without the look-alike spaces, with '-' for the Unicode minus."""
    return text.replace("\u2212", "-").translate({ord(c): None for c in "\u00a0\u202f\u2009"})


def column_values(
    table: Table, name: str, column: Cells, kind: str, vocab: list[str] | None, missing: np.ndarray
) -> np.ndarray:
    """The column encoded as float64 (ordinal codes for categorical), NaN where missing."""
    where = f"{table.source}: column {name!r}"
    col, thousands = column.values, column.thousands
    if kind == "numeric":
        x, bad = column.numbers
        bad = bad[~missing[bad]]
        if bad.size:
            texts = sorted({cells.cell(col, r) for r in bad[:100]})
            sep = "" if thousands else grouped_separator(texts)
            hint = f" ({texts[0]!r} groups thousands with {sep!r}: remove the separators)"
            hint = hint if sep else ""
            if not sep and all(column_checks.DECIMAL_COMMA.fullmatch(t) for t in texts):
                hint = " (these have decimal commas: write them with decimal points)"
            raise UserError(
                f"{where} was numeric in training, but these cells are not "
                f"numbers: {table.where(bad, col)}; expected a number in every "
                f"cell{hint}{column_checks.header_row_hint(table, bad)}"
            )
        finite = np.isfinite(x)
        if not finite.all():
            nonfinite = np.flatnonzero(~finite & ~missing)
            if nonfinite.size:
                raise UserError(  # cells as the file has them ('Infinity', '1e999': not 'inf')
                    f"{where} has NaN or infinite values at "
                    f"{table.where(nonfinite, table.text(name))}; expected finite numbers"
                )
        return np.where(missing, np.nan, x) if missing.any() else x
    if kind == "boolean":
        if not cells.is_text(col):
            x = np.asarray(col, dtype=np.float64)
            x = np.where((x == 0) | (x == 1), x, np.nan)
        else:
            uniq, inverse = column.distinct
            table_u = np.array([BOOL_TEXTS.get(u.lower(), np.nan) for u in uniq] + [np.nan])
            x = table_u[inverse]
        bad = np.flatnonzero(np.isnan(x) & ~missing)
        if bad.size:
            raise UserError(
                f"{where} was true/false in training, but these cells are not: "
                f"{table.where(bad, col)}; expected true/false (any case) or 1/0"
            )
        return np.where(missing, np.nan, x)
    assert vocab is not None  # a categorical column always comes with its vocabulary
    uniq, inverse = column.distinct
    known = np.array(vocab, dtype=str)
    order = np.argsort(known, kind="stable")
    sorted_known = known[order]
    u = np.array(uniq, dtype=str)
    pos = np.minimum(np.searchsorted(sorted_known, u), max(len(known) - 1, 0))
    found = (len(known) > 0) & (sorted_known[pos] == u) & (u != UNSEEN)
    per_u = np.where(found, order[pos], -1)
    if not found.all():  # a code written otherwise ('3.0' for '3', a float 3.0): by its value
        by_value = vocabulary.codes_by_value(vocab)
        plain = vocabulary.codes_by_value(vocab, plain=True)  # (a cell without a leading zero)
        for j in np.flatnonzero(~found):
            lookup = by_value if cells.LEADING_ZERO.match(uniq[j]) else plain
            per_u[j] = lookup.get(cells.number_or_none(uniq[j]), -1)
        # 'café' written with a combining accent (NFD): the category trained on, respelled
        respelled = spellings.canonical_matches(list(u[per_u < 0]), vocab)
        for j in np.flatnonzero(per_u < 0):
            per_u[j] = vocab.index(respelled[u[j]]) if u[j] in respelled else -1
    codes = np.append(per_u, -1)[inverse]
    unseen = np.flatnonzero((codes < 0) & ~missing)
    if unseen.size:
        if not vocab or vocab[-1] != UNSEEN:  # preprocessors written before the slot existed
            raise UserError(
                f"{where} has values not seen in training at "
                f"{table.where(unseen, col)}; known values: {quote_names(vocab)}"
            )
        codes[unseen] = len(vocab) - 1
        texts = [str(uniq[j]).strip() for j in np.unique(inverse[unseen])]
        # Every cell of two or more (one new row with a new category is no mismatch)
        every = unseen.size == int((~missing).sum()) > 1
        hint = spellings.unseen_hint(where, texts, vocab[:-1], every)
        logging.warning(
            "data: %s: %d cell(s) of %d value(s) not in the training split (%s) are encoded as "
            "its %r category%s",
            where,
            unseen.size,
            len(texts),
            quote_names(sorted(texts), 5),
            UNSEEN,
            hint,
        )
    return np.where(missing, np.nan, codes.astype(np.float64))
