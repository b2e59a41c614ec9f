"""Data: read a table (tables, csv_reader), infer column kinds and handle missing values
(columns, cells), fit its encoding and scaling (preprocess), load image sets (images), and split
and preprocess one data set for a run (load)."""

from ae_jax.data.cells import NA_VALUES, THOUSANDS, UNSEEN
from ae_jax.data.dataset import Dataset, as_labels, digest
from ae_jax.data.load import load_dataset
from ae_jax.data.missing_values import MISSING
from ae_jax.data.preprocess import Preprocessor
from ae_jax.data.preprocess_io import difference, load_preprocessor, save_preprocessor
from ae_jax.data.tables import (
    BUNDLED,
    CATEGORICAL,
    EXTENSIONS,
    NO_LABEL,
    SCALING,
    Table,
    npz_feature_array,
    one_array,
    read_table,
)

__all__ = [
    "BUNDLED",
    "CATEGORICAL",
    "EXTENSIONS",
    "MISSING",
    "NA_VALUES",
    "NO_LABEL",
    "SCALING",
    "THOUSANDS",
    "UNSEEN",
    "Dataset",
    "Preprocessor",
    "Table",
    "as_labels",
    "difference",
    "digest",
    "load_dataset",
    "load_preprocessor",
    "npz_feature_array",
    "one_array",
    "read_table",
    "save_preprocessor",
]
