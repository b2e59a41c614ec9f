"""Bad inputs about data files (README table rows; see tests/bad_inputs.py)."""

import gzip
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ae_jax.evaluation import trained
from tests.bad_inputs import _csv, _run


def _npz(d, **arrays):
    path = os.path.join(d, "data.npz")
    np.savez(path, **arrays)
    return path


_GOOD = "".join(f"{i},{i % 5},{i % 3}\n" for i in range(30))


def _parquet(d, table):
    path = os.path.join(d, "data.parquet")
    pq.write_table(table, path)
    return path


def _broken_parquet(d):
    path = os.path.join(d, "data.parquet")
    with open(path, "wb") as f:
        f.write(b"PAR1 this is not a parquet file")
    return _run(d, data__path=path)


def _nested_parquet(d):
    return _run(
        d, data__path=_parquet(d, pa.table({"a": [[1, 2], [3]] * 10, "b": list(range(20))}))
    )


def _npy_of_zero_columns(d):
    """(80, 0) was told "with N >= 1 rows" (a probe): it has 80."""
    np.save(os.path.join(d, "x.npy"), np.zeros((80, 0), np.float32))
    return _run(d, data__path=os.path.join(d, "x.npy"))


def _csv_named_npy(d):
    """numpy reads a file without its header as a pickle, and its message pointed to
    allow_pickle (a probe)."""
    with open(os.path.join(d, "x.npy"), "w") as f:
        f.write("a,b,c\n" + _GOOD)
    return _run(d, data__path=os.path.join(d, "x.npy"))


def _misnamed(name: str, write):
    """A file named for another format than its bytes are: the reader its name picked misnamed
    it, or numpy raised a traceback (a probe), for each of these."""

    def case(d):
        write(os.path.join(d, name))
        return _run(d, data__path=os.path.join(d, name))

    return case


def _npz_file(path):
    with open(path, "wb") as f:  # (np.savez would add .npz to the name)
        np.savez(f, x=np.ones((4, 2)))


def _npy_file(path):
    with open(path, "wb") as f:
        np.save(f, np.ones((4, 2)))


def _parquet_file(path):
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": [3.0, 4.0]}), path)


def _gzip_csv(path):
    with gzip.open(path, "wt") as f:
        f.write("a,b,c\n" + _GOOD)


def _tsv_of_commas(d):
    """A .tsv file is read with tab (it is not sniffed): the message said no delimiter split
    its rows (a probe)."""
    path = os.path.join(d, "data.tsv")
    with open(path, "w") as f:
        f.write("a,b,c\n" + _GOOD)
    return _run(d, data__path=path)


def _impute_from_nothing(d):
    rows = "".join(f"{i},,{i % 2}\n" for i in range(30))
    return _csv(d, "a,b,c\n" + rows, data__missing="impute")


def _new_rows_not_scalable(d):
    _csv(d, "a,b,c\n" + _GOOD)
    path = os.path.join(d, "new.csv")
    with open(path, "w") as f:
        f.write("a,b,c\n1e300,1,1\n")
    return trained.load(os.path.join(d, "run")).encode(path)


def _latin1(d):
    path = os.path.join(d, "data.csv")
    with open(path, "wb") as f:
        f.write(("a,b,c\n" + _GOOD + "1,café,2\n").encode("latin-1"))
    return _run(d, data__path=path)


def _utf16(d):
    path = os.path.join(d, "data.csv")
    with open(path, "wb") as f:
        f.write(("a,b,c\n" + _GOOD + "1,x,2\n").encode("utf-16-le"))  # no byte-order mark
    return _run(d, data__path=path)


def _duplicate_parquet_names(d):
    table = pa.Table.from_arrays([pa.array([1.0, 2.0, 3.0])] * 2, names=["x", "x"])
    return _run(d, data__path=_parquet(d, table))


CASES = [
    ("a Parquet file with a column name twice", _duplicate_parquet_names),
    ("a file in Latin-1, not UTF-8", _latin1),
    ("a file in UTF-16 without a byte-order mark", _utf16),
    (
        "a label array of the wrong shape",
        lambda d: _run(d, data__path=_npz(d, x=np.ones((10, 3), np.float32), y=np.zeros((10, 2)))),
    ),
    (
        "images stored channels first (N, C, H, W)",
        lambda d: _run(d, data__path=_npz(d, x=np.ones((10, 3, 8, 8), np.uint8))),
    ),
    (
        "data.image_shape channels first (C, H, W)",
        lambda d: _run(
            d, data__path=_npz(d, x=np.ones((10, 192), np.uint8)), data__image_shape=(3, 8, 8)
        ),
    ),
    (
        "data.image_shape that does not match the columns",
        lambda d: _run(
            d, data__path=_npz(d, x=np.ones((10, 6), np.uint8)), data__image_shape=(2, 2)
        ),
    ),
    (
        "data.image_shape other than the images' own (a 3-D array)",
        lambda d: _run(
            d, data__path=_npz(d, x=np.ones((10, 4, 6), np.uint8)), data__image_shape=(2, 12)
        ),
    ),
    (
        "missing values (data.missing='error')",
        lambda d: _csv(d, "a,b,c\n" + _GOOD + "1,NA,2\n3,,4\n"),
    ),
    ("a thousands separator in a number", lambda d: _csv(d, "a,b,c\n" + _GOOD + '"1,037",2,3\n')),
    (
        "numbers with a decimal comma (a ';' export)",
        lambda d: _csv(d, "a;b;c\n" + "".join(f"{i},5;{i % 5};0,{i % 3}\n" for i in range(30))),
    ),
    ("Excel's 'sep=;' first line", lambda d: _csv(d, "sep=;\na;b;c\n" + _GOOD.replace(",", ";"))),
    (
        "amounts with '.' grouping thousands and a decimal comma",
        lambda d: _csv(d, "a;b;c\n" + "".join(f"1.{i:03d},50;{i % 5};3\n" for i in range(4))),
    ),
    (
        "percentages written with a '%' sign",
        lambda d: _csv(d, "a,b,c\n" + "".join(f"{i},{i % 5}%,3\n" for i in range(40))),
    ),
    (
        "a decimal comma that reads as a thousands separator",
        lambda d: _csv(d, "a;b;c\n" + _GOOD.replace(",", ";") + "1,377;2;3\n"),
    ),
    (
        "a header that is one column holding a delimiter",
        lambda d: _csv(d, "a;b;c\n" + _GOOD, data__delimiter=","),
    ),
    ("a .tsv file whose cells are separated by commas", _tsv_of_commas),
    ("an .npz file holding no arrays", lambda d: _run(d, data__path=_npz(d))),
    ("a .npy file of zero columns", _npy_of_zero_columns),
    ("a CSV file named .npy", _csv_named_npy),
    ("an .npz archive named .npy", _misnamed("x.npy", _npz_file)),
    ("an .npy array named .npz", _misnamed("x.npz", _npy_file)),
    ("an .npy array named .csv", _misnamed("x.csv", _npy_file)),
    ("a Parquet file named .csv", _misnamed("x.csv", _parquet_file)),
    ("a gzip-compressed CSV named .csv", _misnamed("x.csv", _gzip_csv)),
    (
        "a quote never closed",  # was: the last line, good, named as the one of too few cells
        lambda d: _csv(d, "a,b,c\n" + _GOOD + '"7,8,9\n' + _GOOD),
    ),
    (
        "a column whose range is not finite",
        lambda d: _csv(d, "a,b,c\n" + _GOOD + "-1e308,1,2\n1e308,2,3\n"),
    ),
    (
        "onehot on a column with too many categories",
        lambda d: _csv(
            d,
            "a,b,c\n" + "".join(f"{i},c{i},{i % 2}\n" for i in range(40)),
            data__categorical="onehot",
            data__max_categories=10,
        ),
    ),
    (
        "data.categorical_columns names a column the file lacks",
        lambda d: _csv(d, "Region,b,c\n" + _GOOD, data__categorical_columns=("region",)),
    ),
    (
        "data.categorical_columns with two names as one ('Region,b')",
        lambda d: _csv(d, "Region,b,c\n" + _GOOD, data__categorical_columns=("Region,b",)),
    ),
    (
        "data.categorical_columns with pixel data",
        lambda d: _csv(
            d,
            "p0,p1,p2,p3\n" + "".join(f"{i},1,3,4\n" for i in range(20)),
            data__image_shape=(2, 2),
            data__categorical_columns=("p1",),
        ),
    ),
    (
        "data.missing='drop' leaves no rows",
        lambda d: _csv(d, "a,b,c\n1,NA,2\n,3,4\n", data__missing="drop"),
    ),
    (
        "a column with no value in any row",
        lambda d: _csv(d, "a,b,c\n" + "".join(f"{i},,{i % 3}\n" for i in range(30))),
    ),
    (
        "text in pixel data (data.image_shape set)",
        lambda d: _csv(
            d,
            "p0,p1,p2,p3\n" + "".join(f"{i},x,3,4\n" for i in range(20)),
            data__image_shape=(2, 2),
        ),
    ),
    (
        "a pixel value that is not a whole number 0..255",
        lambda d: _run(
            d, data__path=_npz(d, x=np.full((20, 4), 0.5, np.float32)), data__image_shape=(2, 2)
        ),
    ),
    ("data.missing='impute' on a column with no value", _impute_from_nothing),
    ("a file that is not Parquet", _broken_parquet),
    ("a Parquet column of lists", _nested_parquet),
    ("new rows whose scaled values overflow float32", _new_rows_not_scalable),
]
