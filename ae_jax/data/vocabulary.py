"""A categorical column's vocabulary: its categories in the training split, in the order that
gives their codes, and how a cell written otherwise finds its category (by the number it reads
as). Used by `columns.column_values` and the `Preprocessor`'s fit."""

from __future__ import annotations

import collections

import numpy as np
from absl import logging

from ae_jax.data import cells
from ae_jax.data.cells import LEADING_ZERO, UNSEEN, Cells, quote_names
from ae_jax.data.tables import Table
from ae_jax.errors import UserError


def codes_by_value(vocab: list[str], plain: bool = False) -> dict[float | None, int]:
    """The categories that read as numbers, by value, where one category alone has it; `plain`:
    of the categories without a leading zero (what a cell without one, '7.0', may be: '7', not
    a code '007' of the same value, which left the value to neither)."""
    values = [
        cells.number_or_none(t) if t != UNSEEN and not (plain and LEADING_ZERO.match(t)) else None
        for t in vocab
    ]
    seen = collections.Counter(values)
    return {v: k for k, v in enumerate(values) if v is not None and seen[v] == 1}


def ordered_vocabulary(
    table: Table, name: str, column: Cells, missing: np.ndarray, train_rows: np.ndarray
) -> list[str]:
    """A categorical column's vocabulary: the categories of the training split, most frequent
    first, ties in order of first appearance, then the UNSEEN slot.

    Spellings of one number ('2' and '2.0': a file joined from two exports) are one category,
    as a new file's '2.0' matches a vocabulary's '2'. Else the order depends on counts and
    positions only, never on how categories are spelled, so
    renaming categories (a bijection) changes no code and no trained number. Categories found
    only outside the training split (validation rows, new files) are encoded as UNSEEN. A cell
    spelled like that slot is refused: it would be read as the slot (a second, always-empty
    "<unseen>" feature beside it)."""
    uniq, inverse = column.distinct
    slot = uniq.index(UNSEEN) if UNSEEN in uniq else -2  # (-1 marks a Parquet null)
    rows = np.flatnonzero((inverse == slot) & ~missing)
    if len(rows):  # (none when '<unseen>' is one of data.na_values)
        raise UserError(
            f"{table.source}: column {name!r} holds the value {UNSEEN!r} at {table.where(rows)}: "
            "the name of the slot of categories not seen in training; rename that value in "
            "the file (or drop the column)"
        )
    codes = inverse[train_rows]
    codes = codes[(codes >= 0) & ~missing[train_rows]]
    counts = np.bincount(codes, minlength=len(uniq))
    first = np.full(len(uniq), len(codes))
    np.minimum.at(first, codes, np.arange(len(codes)))
    _one_per_number(table.source, name, uniq, counts, first)
    present = np.flatnonzero(counts > 0)
    order = present[np.lexsort((first[present], -counts[present]))]
    return [uniq[k] for k in order] + [UNSEEN]


def _one_per_number(
    source: str, name: str, uniq: list[str], counts: np.ndarray, first: np.ndarray
) -> None:
    """Merges, in `counts` and `first` (per distinct spelling), the training split's spellings
    of one number into its most frequent one, and warns of them: '2' and '2.0' were two
    categories, and a new file's '2' matched neither ('02', '007': codes of their own)."""
    by_number = collections.defaultdict(list)
    for k in np.flatnonzero(counts > 0):
        if uniq[k] != UNSEEN and not LEADING_ZERO.match(uniq[k]):  # ('007': a code's own)
            if (v := cells.number_or_none(uniq[k])) is not None:
                by_number[v].append(k)
    merged = [ks for ks in by_number.values() if len(ks) > 1]
    for ks in merged:
        keep = min(ks, key=lambda k: (-counts[k], first[k]))
        counts[keep], first[keep] = counts[ks].sum(), first[ks].min()
        counts[[k for k in ks if k != keep]] = 0
    if merged:
        logging.warning(
            "data: %s: column %r writes some categories in more than one way, each read as one "
            "category by its value: %s",
            source,
            name,
            "; ".join(quote_names([uniq[k] for k in ks], 4) for ks in merged[:3])
            + ("; ..." if len(merged) > 3 else ""),
        )
