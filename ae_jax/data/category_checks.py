"""What data.categorical_columns and the encoding of categorical columns are refused or warned
for: names that are no list of columns or no feature column of the table, categories of pixel
data; a one-hot encoding too wide (with a hint where the named column holds measurements) or
with colliding feature names; categories that differ only in case; a column of one category.
The checks of one column's cells as a kind are `column_checks.py`'s."""

import collections
from collections.abc import Collection

from absl import logging

from ae_jax.data.cells import UNSEEN, is_number, quote_names, size_text
from ae_jax.data.tables import Table
from ae_jax.errors import UserError, closest


def say_if_one_category(table: Table, categories: dict[str, list[str]]) -> None:
    """Warns of categorical columns with one category in the training split (a vocabulary is
    its categories and the unseen one), as scaling warns of constant numeric columns."""
    one = {n: v[0] for n, v in categories.items() if len(v) == 2}
    if one:
        logging.warning(
            "%s: %d categorical column(s) with a single category in the training split, which "
            "carry no information: %s",
            table.source,
            len(one),
            ", ".join(f"{n!r} (all {v!r})" for n, v in list(one.items())[:20]),
        )


def no_categories_in_pixels(names, source: str) -> None:
    """Refuses data.categorical_columns for pixel data (whose values are intensities)."""
    if names:
        raise UserError(
            f"data.categorical_columns={tuple(names)!r}, but {source} holds pixel data, whose "
            "values are intensities, no categories; leave data.categorical_columns empty"
        )


def check_names(names, field: str) -> None:
    """Refuses a list of column names that is not one: each a non-empty string, each once."""
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise UserError(
            f"{field} must be a tuple of column names, each once, e.g. ('Region', 'Browser'); "
            f"got {tuple(names)!r}"
        )


def check_categorical_columns(table: Table, names, field: str = "data.categorical_columns"):
    """Refuses names that are no feature column of `table` (a typo, or the label column, which
    is no feature unless data.keep_label): before any column is encoded."""
    check_names(names, field)
    unknown = [n for n in names if n not in table.columns]
    if unknown:
        joined = next(
            (
                n
                for n in unknown
                if "," in n and all(p.strip() in table.columns for p in n.split(","))
            ),
            None,
        )
        # each unknown name's closest column ('region,browser': only 'Region' was offered)
        hints = {n: h for n in unknown if (h := closest(n, table.columns))}
        if joined is not None:  # 'a,b' typed as one name where two were meant
            near = tuple(p.strip() for p in joined.split(","))
            hint_text = f" ({joined!r} is one name: for the columns, give the tuple {near!r})"
        elif len(hints) == 1 == len(unknown):
            hint_text = f" (did you mean {next(iter(hints.values()))!r}?)"
        else:
            said = ", ".join(f"{h!r} for {n!r}" for n, h in list(hints.items())[:8])
            hint_text = f" (did you mean {said}?)" if hints else ""
        raise UserError(
            f"{field} names {quote_names(unknown)}, not feature column(s) of {table.source}"
            + hint_text
            + f"; its feature columns: {quote_names(table.columns, 100)} (a label column is "
            "no feature unless data.keep_label=True)."
        )


def check_one_hot(
    table: Table,
    categories: dict[str, list[str]],
    input_columns: list[str],
    features: list[str],
    max_categories: int,
    named: Collection[str] = (),
) -> None:
    """Refuses a one-hot encoding of more than `max_categories` categories in a column, and
    feature names (COLUMN=CATEGORY) that a column's own name, or another column's category,
    also gives: eval.json's per-feature numbers, keyed by name, kept one of them. `named`:
    the columns data.categorical_columns names."""
    for name, vocab in categories.items():
        if len(vocab) - 1 > max_categories:  # the UNSEEN slot is no category of the data
            d, n = len(features), table.num_rows
            if name in named and all(is_number(v) for v in vocab if v != UNSEEN):
                raise UserError(  # "drop the column" missed that the user named it
                    f"{table.source}: column {name!r}, named in data.categorical_columns, "
                    f"holds {len(vocab) - 1} distinct numbers in the training split (e.g. "
                    f"{quote_names(vocab[:3])}), more categories than data.max_categories="
                    f"{max_categories}: if they are measurements, not codes, leave the column "
                    "out of data.categorical_columns"
                )
            raise UserError(
                f"{table.source}: column {name!r} has {len(vocab) - 1} categories in the "
                f"training split, more than data.max_categories={max_categories}; one-hot "
                f"encoding would give {d} feature columns, {n} rows x {d} features x 4 bytes "
                f"= {size_text(4.0 * n * d)}; use data.categorical='ordinal' (one column of "
                "codes), drop the column, or raise data.max_categories"
            )
    for name in [f for f, n in collections.Counter(features).items() if n > 1][:1]:
        who = "two columns' names and categories join to it (as 'a' with 'b=c', 'a=b' with 'c')"
        raise UserError(
            f"{table.source}: two features are named {name!r}: one-hot encoding names a "
            "category's feature COLUMN=CATEGORY, and "
            f"{f'column {name!r} is named so too' if name in input_columns else who}; rename a "
            "column (features need distinct names: eval.json and the figures key their numbers "
            "by name)"
        )


def say_case_variants(table: Table, categories: dict[str, list[str]]) -> None:
    """Warns of a column whose categories differ only in case ('YES', 'Yes', 'yes'): each is
    a category of its own (true/false words are read in any case, and a new row's text that
    differs from training's only in case is told of; training's own were not)."""
    for name, vocab in categories.items():
        groups: dict[str, list[str]] = {}
        for v in vocab:
            if v != UNSEEN:
                groups.setdefault(str(v).casefold(), []).append(v)
        alike = [" / ".join(map(repr, sorted(g))) for _, g in sorted(groups.items()) if len(g) > 1]
        if alike:
            more = f" and {len(alike) - 3} more" * (len(alike) > 3)
            logging.warning(
                "%s: column %r has categories that differ only in case: %s%s; each is a "
                "category of its own (matched exactly); if they are one, write them alike in "
                "the file",
                table.source,
                name,
                "; ".join(alike[:3]),
                more,
            )
