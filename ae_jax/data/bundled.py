"""The bundled data sets: scikit-learn's copies of two UCI tables, read from its package files.

scikit-learn ships the Wisconsin breast cancer table (`breast_cancer.csv`) and the 8 x 8 digits
(`digits.csv.gz`) in its `sklearn/datasets/data` folder. Importing scikit-learn to read them
costs ~2.5 s of a 2-core machine (it imports SciPy's statistics and pandas), more than a seed
run trains, in every process that reads them. The files are small plain text, so they are read
here without importing scikit-learn: the package is found, not run, and its files parsed as its
own loaders parse them (a test compares the two). Where the files are not where scikit-learn's
releases keep them, its loaders are used after all.
"""

from __future__ import annotations

import gzip
import importlib.machinery
import os

import numpy as np

from ae_jax.data.tables import Table

# The breast cancer table's 30 features: 10 measurements of a cell nucleus (UCI's wdbc.names),
# each as its mean, its standard error and its worst value, in that order, as scikit-learn
# names them.
_NUCLEUS = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
BREAST_CANCER_FEATURES = (
    [f"mean {m}" for m in _NUCLEUS]
    + [f"{m} error" for m in _NUCLEUS]
    + [f"worst {m}" for m in _NUCLEUS]
)
DIGITS_FEATURES = [f"pixel_{j}" for j in range(64)]  # the 8 x 8 image, row by row


def _data_folder() -> str | None:
    """scikit-learn's `datasets/data` folder, found on sys.path without importing (or, if
    imported, consulting) scikit-learn."""
    spec = importlib.machinery.PathFinder.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


def _breast_cancer(folder: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    path = os.path.join(folder, "breast_cancer.csv")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        header = f.readline().strip().split(",")  # rows, features, then the class names
        n, d = int(header[0]), int(header[1])
        rows = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if d != len(BREAST_CANCER_FEATURES) or rows.shape != (n, d + 1):
        return None
    return rows[:, :d].copy(), rows[:, d].astype(np.int64), list(BREAST_CANCER_FEATURES)


def _digits(folder: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    path = os.path.join(folder, "digits.csv.gz")
    if not os.path.isfile(path):
        return None
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if rows.shape[1] != 65:  # 8 x 8 pixels, then the digit
        return None
    return rows[:, :64].copy(), rows[:, 64].astype(np.int64), list(DIGITS_FEATURES)


def _from_sklearn(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    # Imported here: only where the package files above were not found (a layout that a
    # future scikit-learn may change), so that the common path never pays for the import.
    from sklearn import datasets

    if name == "digits":
        bunch = datasets.load_digits()
        return bunch.data, bunch.target, list(DIGITS_FEATURES)
    bunch = datasets.load_breast_cancer()
    return bunch.data, bunch.target, [str(c) for c in bunch.feature_names]


def read(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features float64 (N, D), integer targets (N,), feature names) of a bundled set."""
    folder = _data_folder()
    found = None
    if folder is not None:
        try:
            found = _digits(folder) if name == "digits" else _breast_cancer(folder)
        except (ValueError, IndexError, OSError, EOFError):
            # The files are scikit-learn's, not the user's: a release that writes them in
            # another text layout is read by its own loaders instead, never reported as bad
            # input.
            found = None
    return found if found is not None else _from_sklearn(name)


def table(name: str) -> Table:
    """The bundled data set `name` as a `Table` (its label column 'target')."""
    x, target, columns = read(name)
    # Digits' pixels are counts 0..16: divided by 16, they are intensities in [0, 1].
    image_shape = (8, 8) if name == "digits" else None
    return Table(
        f"bundled data set {name!r}",
        columns + ["target"],
        list(x.T) + [target],
        image_shape=image_shape,
        default_label="target",
        pixel_max=16 if name == "digits" else 0,
    )
