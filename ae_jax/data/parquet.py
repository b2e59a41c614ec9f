"""Parquet files: read with pyarrow, numbers and booleans as NumPy arrays, the rest as text;
a pandas index stored beside the columns is left out, as pandas reads it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from absl import logging

from ae_jax.data.cells import numpy_of, quote_names
from ae_jax.data.csv_reader import two_rows
from ae_jax.data.delimiters import check_header
from ae_jax.errors import UserError, repeated


def read_parquet(
    full: str, shown: str, label_column: str = ""
) -> tuple[list[str], list[pa.Array | np.ndarray], tuple[str, ...]]:
    """Reads a Parquet file: numbers and booleans as NumPy arrays (nulls in numbers become NaN,
    a missing value), everything else as pyarrow text (nulls stay null, a missing value); and
    the names of its dictionary columns (pandas' category dtype), categorical by declaration."""
    try:
        schema = [str(n).strip() for n in pq.read_schema(full).names]  # as a CSV header's
        dupes = repeated(schema)
        if dupes:  # before reading: pyarrow's reader fails on them with its internals' words
            raise UserError(
                f"{shown}: duplicate column names: {quote_names(dupes)}; expected unique names"
            )
        table = pq.read_table(full)
        # A pandas index (DataFrame.to_parquet keeps a named or non-default one as a column):
        # pandas reads it back as the index, not data; so does this.
        index = [  # (the names present: the metadata outlives pyarrow's drop_columns)
            c
            for c in (table.schema.pandas_metadata or {}).get("index_columns", [])
            if isinstance(c, str) and c in table.column_names
        ]
        if index:
            logging.info("data: %s: its pandas index %s left out of the columns", shown, index)
            table = table.drop_columns(index)
    except UserError:
        raise
    except (pa.ArrowException, OSError, ValueError) as e:
        raise UserError(
            f"{shown} cannot be read as a Parquet file ({e}); expected a Parquet "
            "table of number, boolean or text columns"
        ) from None
    if table.num_columns == 0 or table.num_rows == 0:
        raise UserError(
            f"{shown} has {table.num_columns} columns and {table.num_rows} rows; expected named "
            f"columns and rows of data{two_rows(shown)}"
        )
    names, values = arrow_columns(table, shown, label_column)
    meta = table.schema.pandas_metadata or {}
    indexes = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    kinds = {  # by the column's field name in the file (an index may share its pandas name)
        c.get("field_name"): c.get("pandas_type")
        for c in meta.get("columns", [])
        if isinstance(c, dict) and c.get("field_name") not in indexes
    }
    declared = tuple(  # a pandas category column of numbers is stored as plain numbers
        n
        for n, field, c in zip(names, table.column_names, table.columns, strict=True)
        if pa.types.is_dictionary(c.type) or kinds.get(field) == "categorical"
    )
    if declared:
        logging.info("data: %s: %s categorical in the file (category dtype)", shown, declared)
    return names, values, declared


def arrow_columns(
    table: pa.Table | pa.RecordBatch, shown: str, label_column: str = ""
) -> tuple[list[str], list[pa.Array | np.ndarray]]:
    """An Arrow table's column names (stripped, as a CSV header's) and columns: numbers and
    booleans as NumPy arrays (nulls in numbers become NaN, a missing value), everything else
    as pyarrow text (nulls stay null, a missing value). A Parquet file's, or a table passed to
    a trained model (`Preprocessor.transform`), which matches its columns by name. Dates and
    times are refused, as a frame's are (as text, each a category), but in `label_column`."""
    names = [str(n).strip() for n in table.column_names]
    check_header(names, shown, "")  # no delimiter: no line to end with one
    values: list[pa.Array | np.ndarray] = []
    for name, col in zip(names, table.columns, strict=True):
        t = col.type
        try:
            if pa.types.is_integer(t) and col.null_count == 0:
                values.append(numpy_of(col))
            elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
                values.append(numpy_of(pc.cast(col, pa.float64()), np.nan))
            elif pa.types.is_boolean(t) and col.null_count == 0:
                values.append(numpy_of(col))
            elif pa.types.is_temporal(t) and name != label_column:  # (a label: text, as was)
                kind = "time spans" if pa.types.is_duration(t) else "dates or times"
                raise UserError(
                    f"{shown}: column {name!r} holds {kind} ({t}); expected numbers, "
                    "true/false or text: convert it (e.g. days since a date, or the parts as "
                    "two columns) or drop it"
                )
            else:
                values.append(pc.cast(col, pa.string()))
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            raise UserError(
                f"{shown}: column {name!r} has type {t}; expected numbers, booleans or text"
            ) from None
    return names, values
