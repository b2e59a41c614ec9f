"""Data as researchers have it: label shapes, pixel arrays, missing values, delimiters, scale
guards, Parquet and the columnar CSV reader. Small files written to tmp_path."""

import ast
import codecs
import csv
import itertools
import json
import logging as std_logging
import os
import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from ae_jax import config as config_lib
from ae_jax import data
from ae_jax.data import cells, column_checks, csv_reader, images, preprocess_io, text_encoding
from ae_jax.data import load as load_lib
from ae_jax.data import scaling as scaling_lib
from ae_jax.errors import UserError, repeated
from tests.conftest import vocab_by_rule
from tests.test_data import cfg

HEADER = ["num", "cat", "flag", "int"]


def rows(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [
        [
            f"{rng.uniform(-5, 5):.4f}",
            ["red", "green", "blue"][i % 3],
            ["TRUE", "false"][i % 2],
            str(int(rng.integers(0, 100))),
        ]
        for i in range(n)
    ]


def write(path, body, header=HEADER, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(body)
    return str(path)


def load(path, **kw):
    return data.load_dataset(cfg(path=str(path), **kw))


def same(a, b):
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.val, b.val)
    assert a.columns == b.columns


@pytest.fixture
def info_logs(caplog):
    caplog.set_level(std_logging.INFO, logger="absl")
    return caplog


# ---- 1. labels as published ---------------------------------------------------------------


def test_an_object_array_is_named_with_its_field_and_a_way_out(tmp_path):
    """An .npz whose labels were an object array was refused as "holds object arrays ...;
    expected numeric arrays", naming neither the array nor what to do (a probe); and a CSV
    renamed .npy was told to take a .txt extension, which is refused too."""
    x = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    np.savez(tmp_path / "l.npz", x=x, y=np.array(["cat", "dog"] * 25, dtype=object))
    with pytest.raises(
        UserError,
        match=r"l.npz': its array 'y' \(data.label_column\) is an object array \(.*\); expected "
        r"a numeric array, or one of strings: save it with .astype\(str\) \(or set "
        r"data.label_column=none: no labels\)$",
    ):
        data.read_table(str(tmp_path / "l.npz"))
    assert data.read_table(str(tmp_path / "l.npz"), label_column="none").num_rows == 50
    np.savez(tmp_path / "x.npz", x=x.astype(object))
    with pytest.raises(UserError, match=r"its array 'x' \(data.npz_key\) is an object array"):
        data.read_table(str(tmp_path / "x.npz"))
    (tmp_path / "t.npy").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(UserError, match=r"give it its own extension: .csv or .tsv\)$"):
        data.read_table(str(tmp_path / "t.npy"))
    (tmp_path / "t.npy").rename(tmp_path / "t.csv")  # as told: read
    assert data.read_table(str(tmp_path / "t.csv")).num_rows == 2


def test_npz_labels_of_shape_n_or_n1(tmp_path):
    x, y = np.arange(30.0).reshape(10, 3), np.arange(10) % 3
    np.savez(tmp_path / "flat.npz", x=x, y=y)
    np.savez(tmp_path / "col.npz", x=x, y=y[:, None])
    flat, col = load(tmp_path / "flat.npz"), load(tmp_path / "col.npz")
    same(flat, col)
    np.testing.assert_array_equal(col.labels_train, y[col.train_indices])
    np.savez(tmp_path / "two.npz", x=x, y=np.zeros((10, 2)))
    with pytest.raises(
        UserError,
        match=r"label array 'y' has shape \(10, 2\); expected "
        r"\(10,\) or \(10, 1\), one label per row",
    ):
        load(tmp_path / "two.npz")


def test_label_column_none_means_no_label(tmp_path):
    x, y = np.arange(30.0).reshape(10, 3), np.arange(10) % 3
    np.savez(tmp_path / "a.npz", x=x, y=y)
    ds = load(tmp_path / "a.npz", label_column="none")
    assert ds.labels_train is None and ds.columns == ["x_0", "x_1", "x_2"]
    path = write(tmp_path / "t.csv", rows(10))
    ds = load(path, label_column="none")
    assert ds.labels_train is None and ds.preprocessor.input_columns == HEADER
    digits = data.load_dataset(cfg(name="digits", label_column="none"))
    assert digits.labels_train is None and digits.num_features == 64
    np.save(tmp_path / "a.npy", x)
    assert load(tmp_path / "a.npy", label_column="none").num_features == 3


# ---- 2. pixel arrays ------------------------------------------------------------------------


def pixels(n, shape):
    values = (np.arange(n)[:, None] * 37 + np.arange(int(np.prod(shape)))[None] * 11) % 256
    return values.astype(np.uint8).reshape(n, *shape)


def test_uint8_arrays_are_divided_by_255(tmp_path):
    x = pixels(12, (6,))
    x[:, 0] = 7  # a constant pixel: per-column min-max would give 0, /255 keeps 7/255
    np.save(tmp_path / "p.npy", x)
    ds = load(tmp_path / "p.npy")
    np.testing.assert_array_equal(ds.train, (x[ds.train_indices] / 255.0).astype(np.float32))
    assert ds.image_shape is None
    # The saved preprocessor divides a new file of raw pixels the same way.
    np.testing.assert_array_equal(
        ds.preprocessor.transform(data.read_table(str(tmp_path / "p.npy")).take(ds.val_indices)),
        ds.val,
    )


def test_flat_uint8_with_image_shape_equals_3d(tmp_path):
    x, y = pixels(20, (28, 28)), np.arange(20) % 10
    np.savez(tmp_path / "flat.npz", x=x.reshape(20, -1), y=y)
    np.savez(tmp_path / "cube.npz", x=x, y=y)
    for scaling in ("minmax", "standard"):
        flat = load(tmp_path / "flat.npz", image_shape=(28, 28), scaling=scaling)
        cube = load(tmp_path / "cube.npz", scaling=scaling)
        np.testing.assert_array_equal(flat.train, cube.train)
        np.testing.assert_array_equal(flat.val, cube.val)
        assert flat.image_shape == cube.image_shape == (28, 28)
        np.testing.assert_array_equal(flat.labels_val, cube.labels_val)
    assert np.array_equal(cube.preprocessor.scale, flat.preprocessor.scale)
    # Named as the image array's pixels (they were x_0, ...: a CSV of pixel columns was then
    # refused as new rows for the flat array's run), float rows of 0..255 too.
    assert flat.columns == cube.columns == [f"pixel_{j}" for j in range(784)]
    np.save(tmp_path / "flat.npy", x.reshape(20, -1).astype(np.float32))
    assert load(tmp_path / "flat.npy", image_shape=(28, 28)).columns == cube.columns
    pd.DataFrame(x.reshape(20, -1), columns=[f"pixel{j}" for j in range(784)]).to_csv(
        tmp_path / "new.csv", index=False
    )
    new = flat.preprocessor.transform(data.read_table(str(tmp_path / "new.csv")))
    np.testing.assert_array_equal(new[flat.val_indices], flat.val)
    # A run saved with the old names is the same preprocessing (it resumes); a table's
    # columns renamed are not.
    old = preprocess_io.to_dict(flat.preprocessor)
    for key in ("input_columns", "columns"):
        old[key] = [f"x_{j}" for j in range(784)]
    assert preprocess_io.difference(flat.preprocessor, preprocess_io.from_dict(old)) == ""
    old["pixel_max"] = 0
    assert preprocess_io.difference(flat.preprocessor, preprocess_io.from_dict(old)) == "columns"
    # Only a name at its own position is mapped: two fills stay two (a review).
    mixed = {"pixel_max": 255, "input_columns": ["pixel_0", "x_0"], "columns": ["pixel_0", "x_0"]}
    a = preprocess_io._pixels_named({**mixed, "fill": {"pixel_0": 1.0, "x_0": 2.0}})
    assert a["fill"] == {"pixel_0": 1.0, "x_0": 2.0}
    minmax = load(tmp_path / "cube.npz")
    expected = (x.reshape(20, -1)[minmax.train_indices] / 255).astype(np.float32)
    np.testing.assert_array_equal(minmax.train, expected)


def test_rgb_standard_uses_the_image_sets_channel_statistics(tmp_path):
    x = pixels(10, (4, 4, 3))
    np.save(tmp_path / "rgb.npy", x)
    ds = load(tmp_path / "rgb.npy", scaling="standard")
    mean, std = images._pixel_stats(x.reshape(10, -1)[ds.train_indices], 3)
    np.testing.assert_array_equal(ds.preprocessor.offset, np.tile(mean, 16))
    np.testing.assert_array_equal(ds.preprocessor.scale, np.tile(std, 16))
    assert ds.image_shape == (4, 4, 3)


def test_image_shape_on_a_csv_of_pixels(tmp_path):
    x, y = pixels(10, (2, 3)).reshape(10, 6), np.arange(10) % 2
    names = ["label"] + [f"p{j}" for j in range(6)]
    path = write(tmp_path / "px.csv", [[str(v) for v in r] for r in np.c_[y, x]], names)
    ds = load(path, label_column="label", image_shape=(2, 3))
    np.save(tmp_path / "px.npy", x)
    ref = load(tmp_path / "px.npy", image_shape=(2, 3))
    np.testing.assert_array_equal(ds.train, ref.train)
    assert ds.image_shape == (2, 3) and list(ds.labels_train) == list(y[ds.train_indices])


def test_pixel_refusals(tmp_path):
    np.save(tmp_path / "p.npy", pixels(10, (6,)))
    with pytest.raises(
        UserError,
        match=r"data.image_shape \(2, 2\) holds 4 pixels, but "
        r"data.path '.*p.npy' has 6 feature columns",
    ):
        load(tmp_path / "p.npy", image_shape=(2, 2))
    np.save(tmp_path / "f.npy", np.full((10, 4), 0.5))
    with pytest.raises(
        UserError,
        match=r"column 'pixel_0' has 0.5 at row 1 \(index 0\), but pixel "
        r"data .* holds whole numbers 0..255",
    ):
        load(tmp_path / "f.npy", image_shape=(2, 2))
    path = write(tmp_path / "t.csv", rows(10))
    with pytest.raises(
        UserError,
        match=r"marks pixel data, but column\(s\) \['cat', 'flag'\] "
        r"hold text",
    ):
        load(path, image_shape=(2, 2))


# ---- 3. missing values ----------------------------------------------------------------------


def with_holes():
    body = rows(40)
    body[3][0], body[7][0], body[5][1], body[9][2], body[11][3] = "NA", "", "?", "null", "N/A"
    return body


def test_missing_values_refused_by_default(tmp_path):
    path = write(tmp_path / "h.csv", with_holes())
    with pytest.raises(
        UserError,
        match=r"column 'num' has 2 missing value\(s\) \(marker\(s\) "
        r"\['', 'NA'\]\) at row 4 \(line 5\) 'NA', row 8 "
        r"\(line 9\) '', and 3 other column\(s\) have some too: \['cat', 'flag', 'int'\]; "
        r".*data.missing='drop'.*'impute'",
    ):
        load(path)


def test_missing_drop(tmp_path, info_logs):
    path = write(tmp_path / "h.csv", with_holes())
    ds = load(path, missing="drop")
    dropped = {3, 7, 5, 9, 11}
    kept = np.r_[ds.train_indices, ds.val_indices]
    assert len(kept) == 35 and not set(kept) & dropped
    assert "dropped 5 of 40 rows" in info_logs.text and "'num': 2" in info_logs.text
    # Indices are rows of the file: the saved preprocessing reproduces the splits from it.
    table = data.read_table(path)
    np.testing.assert_array_equal(ds.preprocessor.transform(table.take(ds.train_indices)), ds.train)
    assert ds.preprocessor.kinds == ["numeric", "categorical", "boolean", "numeric"]
    with pytest.raises(UserError, match=r"trained with data.missing='drop', so new rows need"):
        ds.preprocessor.transform(table)


def test_a_big_file_is_said_before_it_is_read_and_before_it_is_encoded(
    tmp_path, info_logs, monkeypatch
):
    """A 211 MB CSV was read and encoded for 18 s with nothing said: a file of
    `_BIG_FILE` bytes or more gets a line before its reading and one before its encoding."""
    path = write(tmp_path / "h.csv", rows(40))
    load(path)
    assert "reading" not in info_logs.text and "encoding and scaling" not in info_logs.text
    monkeypatch.setattr(load_lib, "_BIG_FILE", os.path.getsize(path))
    load(path)
    said = [r.getMessage() for r in info_logs.records]
    reading = [i for i, m in enumerate(said) if m.startswith(f"reading {path} (0 MB) ...")]
    read = [i for i, m in enumerate(said) if m.startswith("read 40 rows x 4 columns in ")]
    data_line = [i for i, m in enumerate(said) if m.startswith("data: h.csv")]
    assert len(reading) == len(read) == 1 and reading[0] < read[0] < data_line[-1]
    assert said[read[0]].endswith(" s; encoding and scaling them ...")


def test_marker_like_cells_of_a_text_column_are_said_to_be_categories(tmp_path, info_logs):
    """'-' in a text column became a category silently, where a numeric column refuses it and
    a column of codes warns (a probe): now warned of too, naming its rows. Words that are as
    often categories ('Unknown') are not."""
    body = rows(40)
    body[5][1], body[7][1], body[9][1] = "-", "-", "Unknown"
    ds = load(write(tmp_path / "h.csv", body))
    assert "-" in ds.preprocessor.categories["cat"]  # (as before: a category, said)
    (said,) = [r for r in info_logs.records if "missing-value markers" in r.getMessage()]
    assert said.levelname == "WARNING"
    assert (
        "column 'cat' holds cells that read as missing-value markers: row 6 (line 7) '-', "
        "row 8 (line 9) '-'; they are categories"
    ) in said.getMessage()
    assert "Unknown" not in said.getMessage()
    load(write(tmp_path / "na.csv", body), na_values=("", "-"), missing="impute")
    assert len([r for r in info_logs.records if "missing-value markers" in r.getMessage()]) == 1


def test_drop_that_takes_most_rows_warns_naming_the_column(tmp_path, info_logs):
    """A column missing in most rows left a handful to train on, said only as information:
    over half the rows dropped is a warning naming the column(s) behind most of them."""
    body = rows(40)
    for r in body[:30]:
        r[0] = "NA"  # 'num' missing in 30 rows ...
    body[35][1] = "?"  # ... 'cat' in 1
    ds = load(write(tmp_path / "h.csv", body), missing="drop")
    assert len(ds.train_indices) + len(ds.val_indices) == 9
    (line,) = [r for r in info_logs.records if "dropped" in r.getMessage()]
    assert line.levelname == "WARNING"
    assert "dropped 31 of 40 rows" in line.getMessage()
    assert "most of them lack a value of column(s) ['num']" in line.getMessage()
    load(write(tmp_path / "few.csv", with_holes()), missing="drop")  # 5 of 40: information
    assert [r.levelname for r in info_logs.records if "dropped 5 of" in r.getMessage()] == ["INFO"]


def test_missing_impute_train_statistics_and_round_trip(tmp_path, info_logs):
    body = with_holes()
    path = write(tmp_path / "h.csv", body)
    ds = load(path, missing="impute", scaling="none")
    p = ds.preprocessor
    train = [body[i] for i in ds.train_indices]
    nums = [float(r[0]) for r in train if r[0] not in ("NA", "")]
    assert p.fill["num"] == pytest.approx(np.mean(nums), rel=1e-15)
    cats = [r[1] for r in train if r[1] != "?"]
    assert p.fill["cat"] == vocab_by_rule(cats)[0]  # the most frequent, ties: first seen
    assert p.kinds == ["numeric", "categorical", "boolean", "numeric"]  # markers: no text
    full = np.concatenate([ds.train, ds.val])[np.argsort(np.r_[ds.train_indices, ds.val_indices])]
    assert full[3, 0] == np.float32(p.fill["num"])
    assert full[5, 1] == p.categories["cat"].index(p.fill["cat"])
    assert "column 'num': 2 missing value(s) filled" in info_logs.text
    flag = p.input_columns[2]  # a true/false column: its fill is said as true or false
    # ... and is the training split's most frequent value (here 16 true to 15 false; the
    # least frequent passed every test: a mutation check)
    flags = [r[2].lower() == "true" for r in train if r[2] != "null"]
    assert sum(flags) != len(flags) / 2 and p.fill[flag] == float(sum(flags) > len(flags) / 2)
    said = "'true'" if p.fill[flag] else "'false'"
    assert (
        f"{flag!r}: 1 missing value(s) filled with the training split's most frequent "
        f"value {said}" in info_logs.text
    )
    # Which cells were filled, per split (the per-column evaluation passes over them).
    holes = {(3, 0), (7, 0), (5, 1), (9, 2), (11, 3)}
    for rows_, imputed in ((ds.train_indices, ds.imputed_train), (ds.val_indices, ds.imputed_val)):
        assert {(int(rows_[r]), j) for r, j in zip(*np.nonzero(imputed), strict=True)} == {
            h for h in holes if h[0] in set(rows_)
        }
    # Saved and loaded, the fill values transform a new file alike.
    q = preprocess_io.from_dict(json.loads(json.dumps(preprocess_io.to_dict(p))))
    assert q.fill == p.fill and q.missing == "impute"
    new = write(tmp_path / "new.csv", [["NA", "?", "", "N/A"], body[0]])
    out = q.transform(data.read_table(new))
    np.testing.assert_array_equal(
        out[0],
        np.array(
            [
                p.fill["num"],
                p.categories["cat"].index(p.fill["cat"]),
                p.fill["flag"],
                p.fill["int"],
            ],
            np.float32,
        ),
    )
    _, imputed = q.transform_imputed(data.read_table(new))
    assert imputed.tolist() == [[True] * 4, [False] * 4]


def test_a_column_mostly_filled_in_is_warned_of_in_training_and_in_new_rows(tmp_path, info_logs):
    """data.missing='impute' on a column 280 of 300 cells empty made it nearly constant, and
    new rows whose column was empty in every row were coded at the fill: both said as
    information only (a probe). Half the rows or more (training), every one of 2 or more new
    rows: warnings; fewer: information, as before."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame.loc[:279, "b"] = np.nan
    frame.loc[290, "a"] = np.nan  # (a row with neither value would be left out)
    frame.to_csv(tmp_path / "m.csv", index=False)
    p = load(tmp_path / "m.csv", missing="impute").preprocessor
    said = {
        r.getMessage().split(": column ")[1][:3]: r
        for r in info_logs.records
        if "filled" in r.getMessage()
    }
    assert said["'a'"].levelname == "INFO" and said["'b'"].levelname == "WARNING"
    tail = ", 280 of its 300 rows: the column is mostly that one value, which tells rows apart"
    assert (
        said["'b'"]
        .getMessage()
        .endswith(f"mean {p.fill['b']!r}{tail} little; drop it, or fill it in yourself")
    )
    for b, level in [([np.nan, np.nan], "WARNING"), ([np.nan, 1.0], "INFO"), ([np.nan], "INFO")]:
        info_logs.clear()
        p.transform(pd.DataFrame({"a": [0.5] * len(b), "b": b}))
        (record,) = [r for r in info_logs.records if "filled" in r.getMessage()]
        assert record.levelname == level
        assert record.getMessage().endswith(
            "(new rows), in every row: the column has no value there, and their codes are of "
            "that value's"
            if level == "WARNING"
            else "(new rows)"
        )


def test_na_values_are_configurable(tmp_path):
    body = rows(20)
    for i in range(0, 20, 3):
        body[i][1] = "NA"  # here a category (say, North America), not a missing value
    body[4][0] = "-"
    path = write(tmp_path / "na.csv", body)
    ds = load(path, na_values=("-",), missing="impute")
    assert "NA" in ds.preprocessor.categories["cat"]
    assert ds.preprocessor.kinds[0] == "numeric"
    body = rows(20)
    body[6][3] = "-999"  # a number as the marker: matched as text, in an all-number column
    ds = load(write(tmp_path / "m.csv", body), na_values=("-999",), missing="drop")
    assert sorted(np.r_[ds.train_indices, ds.val_indices]) == [i for i in range(20) if i != 6]


def test_a_number_marker_matches_by_value_in_any_column(tmp_path):
    """na_values=('', '-999'): a column with an empty cell is read as text, where '-999.0' was
    no marker (spelled otherwise): trained on as -999, in the mean that filled the empty cell
    and in the scaling; and new rows' -999.0, '-999.0' and '-999' became three values."""
    body = rows(20)
    body[3][0], body[8][0], body[11][0] = "-999.0", "-999", ""
    ds = load(write(tmp_path / "s.csv", body), na_values=("", "-999"), missing="impute")
    p = ds.preprocessor
    seen = [float(body[i][0]) for i in ds.train_indices if i not in (3, 8, 11)]
    assert p.fill["num"] == pytest.approx(np.mean(seen))
    assert p.offset[0] == min(seen)  # minmax scaling of the values alone, no -999
    new = [[v, "red", "TRUE", 1] for v in (-999.0, "-999.0", "-999", "")]
    out = p.transform(np.array(new, dtype=object))
    assert (out[:, 0] == out[0, 0]).all()
    frame = pd.DataFrame({"num": [-999.0], "cat": ["red"], "flag": [True], "int": [1]})
    np.testing.assert_array_equal(p.transform(frame)[0], out[0])
    arrow = pa.table(
        {"num": ["-999.0", "2"], "cat": ["red"] * 2, "flag": [True] * 2, "int": [1] * 2}
    )
    np.testing.assert_array_equal(p.transform(arrow)[0], out[0])  # text, every cell a number


def test_nan_in_arrays_is_missing(tmp_path):
    x = np.arange(40.0).reshape(10, 4)
    x[2, 1] = np.nan
    np.save(tmp_path / "n.npy", x)
    with pytest.raises(UserError, match=r"column 'x_1' has 1 missing value\(s\) \(NaN\) at row 3"):
        load(tmp_path / "n.npy")
    dropped = load(tmp_path / "n.npy", missing="drop")
    assert 2 not in np.r_[dropped.train_indices, dropped.val_indices]
    assert len(dropped.train) + len(dropped.val) == 9
    assert np.isfinite(load(tmp_path / "n.npy", missing="impute").train).all()


def test_thousands_separators(tmp_path):
    body = rows(10)
    body[1][3], body[4][3] = "1,037", "12,500"
    path = write(tmp_path / "k.csv", body)
    with pytest.raises(
        UserError,
        match=r"column 'int' holds numbers written with a thousands "
        r"separator ',': row 2 \(line 3\) '1,037', row 5 "
        r"\(line 6\) '12,500'; .*set data.thousands=',' to read '1,037' as 1037, or remove",
    ):
        load(path)
    # A new file to a run trained without separators: no setting to name (encode has none).
    p = load(path, thousands=",").preprocessor
    trained = load(write(tmp_path / "plain.csv", rows(10))).preprocessor
    with pytest.raises(UserError, match=r"numeric in training, .* \('1,037' groups thousands wi"):
        trained.transform(data.read_table(path))
    assert p.transform(data.read_table(path)).shape[0] == 10
    body[1][3] = "48,366.28"  # its digits as written (the message showed 48366.3)
    with pytest.raises(UserError, match=r"to read '48,366.28' as 48366.28, or remove"):
        load(write(tmp_path / "k2.csv", body))
    body[1][3], body[4][3] = "48366,28", "1,5"
    with pytest.raises(UserError, match=r"a decimal point, '48366,28' written 48366.28: "):
        load(write(tmp_path / "k3.csv", body))
    ds = load(path, thousands=",", scaling="none")
    x = ds.preprocessor.transform(data.read_table(path))
    assert x[1, 3] == 1037 and x[4, 3] == 12500 and ds.preprocessor.kinds[3] == "numeric"
    body[1][3] = "0,125"  # no thousands group starts with 0: a decimal comma (was read as 125)
    with pytest.raises(UserError, match=r"decimal comma: row 2 \(line 3\) '0,125', row 5 "):
        load(write(tmp_path / "k4.csv", body), thousands=",")


@pytest.mark.parametrize("marker", ["-", "n/a"])
def test_a_marker_cell_hides_no_separators_or_decimal_commas(tmp_path, marker):
    """A European export's doses '0,5' ... '2,0' with one '-' cell, or '1,250' amounts with
    one 'n/a', trained as 4 or 7 categories (the numbers' order lost) with no word of the
    decimal commas or separators the same column is refused for without that cell."""
    body = rows(20)
    for i, r in enumerate(body):
        r[0], r[3] = ["0,5", "1,0", "1,5", "2,0"][i % 4], ["1,250", "12,500", "999"][i % 3]
    body[7][0] = body[7][3] = marker
    path = write(tmp_path / "eu.csv", body)
    add = rf"; add '{marker}' to data.na_values if they mark missing values"
    with pytest.raises(
        UserError, match=rf"column 'num' holds numbers written with a decimal comma: .*{add}$"
    ):
        load(path)
    body = [[r[3] if i == 0 else v for i, v in enumerate(r)] for r in body]  # amounts first
    with pytest.raises(
        UserError, match=rf"column 'num' .* thousands separator ',': .*as 1250, or remove.*{add}$"
    ):
        load(write(tmp_path / "amounts.csv", body))


# ---- 4. delimiters --------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path, delimiter):
    body = rows(20)
    body[0][1] = "a,b"  # a comma inside a cell must not fool the sniffer
    ref = load(write(tmp_path / "c.csv", body))
    other = load(write(tmp_path / "o.csv", body, delimiter=delimiter))
    same(ref, other)
    given = "tab" if delimiter == "\t" else delimiter
    same(ref, load(tmp_path / "o.csv", delimiter=given))


def test_an_ambiguous_delimiter_is_refused(tmp_path):
    """A ';' file whose names and cells hold commas split alike at ',' and ';' into 3 columns:
    it trained on 'Weight', 'kg;Height' and 'cm;Sex' (categories such as '6;152')."""
    lines = ["Weight, kg;Height, cm;Sex"] + [f"7{i},6;15{i},4;{'FM'[i % 2]}" for i in range(10)]
    (tmp_path / "eu.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        UserError,
        match=r"eu.csv': its delimiter is ambiguous: ',' and ';' each split its header and "
        r"first rows consistently \(',': \['Weight', 'kg;Height', 'cm;Sex'\]; ';': "
        r"\['Weight, kg', 'Height, cm', 'Sex'\]\); expected one delimiter .* set data.delimiter",
    ):
        load(tmp_path / "eu.csv")
    # Into 3 columns at ',' and 2 at ';', every row alike: ',' was taken, as the wider (the
    # README's own example, a review).
    lines = ["Weight, kg;Height, cm"] + [f"7{i},6;15{i},4" for i in range(10)]
    (tmp_path / "two.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"two.csv': its delimiter is ambiguous: ',' and ';' e"):
        load(tmp_path / "two.csv")
    with pytest.raises(
        UserError, match=r"column 'Weight, kg' holds numbers written with a decimal"
    ):
        load(tmp_path / "eu.csv", delimiter=";")  # as given: read at ';'


def test_tsv_is_tab_separated(tmp_path):
    body = rows(20)
    same(
        load(write(tmp_path / "c.csv", body)), load(write(tmp_path / "t.tsv", body, delimiter="\t"))
    )
    # Every cell holds one comma: sniffed, commas would split more columns than tabs.
    (tmp_path / "c.tsv").write_text("p,q\tr,s\n1,2\t3,4\n5,6\t7,8\n")
    assert data.read_table(str(tmp_path / "c.tsv")).columns == ["p,q", "r,s"]


def test_one_column_header_with_a_delimiter_is_refused(tmp_path):
    path = write(tmp_path / "s.csv", rows(10), delimiter=";")
    with pytest.raises(
        UserError,
        match=r"header row reads as one column named "
        r"'num;cat;flag;int' \(data.delimiter=','\), but it "
        r"contains ';'.*set data.delimiter",
    ):
        load(path, delimiter=",")
    (tmp_path / "r.csv").write_text("a;b;c\n1\n2\n3\n")  # rows that never split like the header
    with pytest.raises(UserError, match=r"one column named 'a;b;c' \(no delimiter among"):
        load(tmp_path / "r.csv")


# ---- 5. scale guards ------------------------------------------------------------------------


def test_ranges_beyond_float64_or_float32_are_refused(tmp_path):
    def huge(values):
        body = rows(len(values))
        for r, v in zip(body, values, strict=True):
            r[0] = v
        return write(tmp_path / "h.csv", body)

    path = huge(["1e308", "-1e308"] + ["0"] * 8)
    with pytest.raises(
        UserError,
        match=r"column 'num' cannot be scaled: its training values "
        r"run from -1e\+308 to 1e\+308, and their range",
    ):
        load(path)
    path = huge(["3e300"] * 5 + ["1e300"] * 5)
    with pytest.raises(
        UserError,
        match=r"column 'num' cannot be scaled.*largest scaled value "
        r"in float32 is not finite \(data.scaling='none'\)",
    ):
        load(path, scaling="none")
    with pytest.raises(UserError, match=r"column 'num' cannot be scaled.*mean or standard"):
        load(path, scaling="standard")
    # A new row that the training scaling maps beyond float32.
    p = load(write(tmp_path / "ok.csv", rows(10))).preprocessor
    new = write(tmp_path / "new.csv", [["1e300", "red", "TRUE", "1"]])
    with pytest.raises(
        UserError,
        match=r"new.csv': column 'num' has value 1e\+300, which "
        r"scaled .* is not finite in float32",
    ):
        p.transform(data.read_table(new))


def test_onehot_with_too_many_categories_is_refused(tmp_path):
    body = rows(30)
    for i, r in enumerate(body):
        r[1] = f"user{i}"
    path = write(tmp_path / "ids.csv", body)
    # 24 training rows: 24 categories and the '<unseen>' slot, 3 other columns.
    with pytest.raises(
        UserError,
        match=r"column 'cat' has 24 categories in the training split, more than "
        r"data.max_categories=20; one-hot encoding would give "
        r"28 feature columns, 30 rows x 28 features x 4 bytes = "
        r"3.4 kB; use data.categorical='ordinal'",
    ):
        load(path, categorical="onehot", max_categories=20)
    with pytest.raises(UserError, match=r"has 24 categories in the training split, more than"):
        load(path, categorical="onehot", max_categories=23)
    # Exactly max_categories categories are allowed (the '<unseen>' slot was counted as one).
    assert load(path, categorical="onehot", max_categories=24).num_features == 28
    assert load(path, max_categories=20).num_features == 4  # ordinal: no limit


def test_one_hot_feature_names_that_collide_are_refused(tmp_path):
    """A column named 'cat=b' beside column 'cat' (category 'b'): eval.json's per-feature
    numbers, keyed by name, silently kept one of the two."""
    body = rows(30)
    header = ["num", "cat", "flag", "int", "cat=b"]
    for i, r in enumerate(body):
        r[1] = "ab"[i % 2]
    path = write(tmp_path / "names.csv", [[*r, str(i)] for i, r in enumerate(body)], header)
    with pytest.raises(
        UserError, match=r"two features are named 'cat=b': .* and column 'cat=b' is named so too"
    ):
        load(path, categorical="onehot")
    assert load(path).num_features == 5  # ordinal: one column each, no joined names
    body = [[r[0], "b=c" if i % 2 else "d", "c" if i % 2 else "e"] for i, r in enumerate(rows(30))]
    path = write(tmp_path / "joined.csv", body, ["num", "a", "a=b"])
    with pytest.raises(UserError, match=r"named 'a=b=c': .* two columns' names and categories"):
        load(path, categorical="onehot")


def test_a_category_spelled_like_the_unseen_slot_is_refused_naming_its_rows(tmp_path):
    """It was read as the slot: two features named 'cat=<unseen>', the data's always 0."""
    body = rows(30)
    for i in (3, 7):
        body[i][1] = "<unseen>"
    path = write(tmp_path / "slot.csv", body)
    for categorical in ("onehot", "ordinal"):
        with pytest.raises(
            UserError,
            match=r"slot.csv': column 'cat' holds the value '<unseen>' at row 4 \(line 5\), "
            r"row 8 \(line 9\): the name of the slot of categories not seen in training",
        ):
            load(path, categorical=categorical)
    # Declared a missing-value marker, it is one: no category, nothing to refuse.
    na = ("", "NA", "<unseen>")
    assert load(path, na_values=na, missing="impute").preprocessor.categories["cat"][-1] == (
        "<unseen>"
    )


# ---- 6. the columnar reader -----------------------------------------------------------------


def test_a_parquet_category_column_of_numbers_is_categorical(tmp_path):
    """pandas' category dtype with integer categories (which Parquet stores as plain numbers,
    with pandas' metadata) declares the column categorical: it read as a number, without a
    word; a CSV of the same codes then encodes alike."""
    codes = [1, 2, 3, 7] * 10
    frame = pd.DataFrame({"a": np.linspace(0, 1, 40), "code": pd.Categorical(codes)})
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    # pandas' metadata lists an index too: by its field name, not its (shared) name.
    named = frame.set_index(pd.Index(np.arange(40) * 2, name="code"), drop=False)
    named.rename(columns={"code": "code"}).to_parquet(tmp_path / "i.parquet")
    assert data.read_table(str(tmp_path / "i.parquet")).categorical == ("code",)
    as_index = pd.DataFrame(
        {"code": np.arange(40.0)}, index=pd.CategoricalIndex(codes, name="code")
    )
    as_index.to_parquet(tmp_path / "j.parquet")
    assert data.read_table(str(tmp_path / "j.parquet")).categorical == ()
    ds = load(tmp_path / "c.parquet", scaling="none", val_fraction=0.25)
    p = ds.preprocessor
    assert p.kinds == ["numeric", "categorical"]
    assert sorted(p.categories["code"][:-1]) == ["1", "2", "3", "7"]
    csv_rows = [[f"{a}", f"{c}"] for a, c in zip(np.linspace(0, 1, 40), codes, strict=True)]
    from_csv = p.transform(data.read_table(write(tmp_path / "c.csv", csv_rows, ["a", "code"])))
    np.testing.assert_array_equal(from_csv[ds.train_indices], ds.train)


def test_parquet_equals_csv(tmp_path):
    body = rows(30)
    path = write(tmp_path / "c.csv", body)
    pq.write_table(pacsv.read_csv(path), tmp_path / "c.parquet")  # typed columns
    for kw in (dict(), dict(categorical="onehot", scaling="standard")):
        a, b = load(path, **kw), load(tmp_path / "c.parquet", **kw)
        same(a, b)
        assert a.preprocessor.kinds == b.preprocessor.kinds
    strings = pa.table({h: [r[j] for r in body] for j, h in enumerate(HEADER)})
    pq.write_table(strings, tmp_path / "s.parquet")  # all text, like the CSV's cells
    same(load(path), load(tmp_path / "s.parquet"))
    holes = pa.table({"a": [1.0, None, 3.0, 4.0, 5.0], "b": ["x", "y", None, "x", "y"]})
    pq.write_table(holes, tmp_path / "n.parquet")
    with pytest.raises(
        UserError,
        match=r"column 'a' has 1 missing value\(s\) \(NaN or null\) at row 2 \(index 1\), "
        r".*and NaN or null in arrays and Parquet",
    ):
        load(tmp_path / "n.parquet")
    assert load(tmp_path / "n.parquet", missing="drop").train.shape[1] == 2
    pq.write_table(holes.drop_columns(["a"]), tmp_path / "t.parquet")  # a text null
    with pytest.raises(
        UserError, match=r"'b' has 1 missing value\(s\) \(empty or null\) at row 3 \(index 2\);"
    ):
        load(tmp_path / "t.parquet")


@pytest.mark.parametrize(
    "values, said",
    [
        (pd.date_range("2024-01-01", periods=30), r"dates or times \(timestamp\[(ns|us)\]\)"),
        (pd.date_range("2024-01-01", periods=30).date, r"dates or times \(date32\[day\]\)"),
        (pd.to_timedelta(np.arange(30), unit="D"), r"time spans \(duration\[(ns|us)\]\)"),
    ],
)
def test_parquet_dates_are_refused_as_a_frames_are(tmp_path, values, said):
    """A Parquet timestamp column trained as text, each date a category, while the same file
    read by pandas and given to the trained model was refused (a frame's dates are)."""
    frame = pd.DataFrame({"when": values, "x": np.arange(30.0)})
    frame.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(UserError, match=rf"d.parquet': column 'when' holds {said}; expected"):
        load(tmp_path / "d.parquet")
    load(tmp_path / "d.parquet", label_column="when")  # a label is no feature (a review)
    frame[["x"]].to_csv(tmp_path / "x.csv", index=False)
    trained = load(tmp_path / "x.csv").preprocessor
    with pytest.raises(UserError, match=rf"column 'when' holds {said}; expected numbers"):
        trained.transform(pa.Table.from_pandas(frame))  # an Arrow table's, as a file's


def test_line_numbers_with_blank_lines_crlf_bom_and_quoted_newlines(tmp_path):
    text = '\ufeffa,b\r\n1,x\r\n\r\n2,y\r\n3,"two\r\nlines"\r\n4,x\r\nfive,y\r\n' + "".join(
        f"{i},x\r\n" for i in range(6, 40)
    )
    (tmp_path / "q.csv").write_bytes(text.encode())
    table = data.read_table(str(tmp_path / "q.csv"))
    assert table.columns == ["a", "b"] and table.column("b")[2] == "two\r\nlines"
    assert list(table.line_numbers[:6]) == [2, 4, 6, 7, 8, 9]
    with pytest.raises(
        UserError,
        match=r"column 'a' cannot be encoded: 38 of its 39 cells are "
        r"numbers, but these are not: row 5 \(line 8\) 'five'",
    ):
        load(tmp_path / "q.csv")
    (tmp_path / "plain.csv").write_text("a,b\n1,x\n\n2,y\n3\n")
    with pytest.raises(
        UserError,
        match=r"line 5 \(data row 3\) has 1 cells but the header "
        r"has 2 columns",
    ):
        data.read_table(str(tmp_path / "plain.csv"))
    (tmp_path / "latin.csv").write_bytes(b"a,b\n1,caf\xe9\n2,x\n")
    with pytest.raises(
        UserError, match=r"latin.csv' is not UTF-8 text: line 2 \(byte 9\) holds byte 0xe9"
    ):
        data.read_table(str(tmp_path / "latin.csv"))


def test_a_file_not_in_utf8_is_located_at_any_block_boundary(tmp_path):
    """The first byte that is not UTF-8 is found where it is, whatever the decoding block size
    (a valid two-byte character cut by a block's end is no error), at the end of a file too;
    a UTF-16 file is named as such (pandas' latin-1 would read it as text with NULs)."""
    raw = "a,b\n1,caf\u00e9\n2,d\u00e9j\u00e0\n".encode() + b"3,x\xe9y\n"
    path = tmp_path / "mixed.csv"
    path.write_bytes(raw)
    expected = (raw.index(b"\xe9y"), 4, 0xE9, b"3,x\xe9y")
    for block in range(1, len(raw) + 2):
        assert text_encoding.first_bad_byte(str(path), block) == expected, block
    path.write_bytes(b"a,b\n1,caf\xe9")  # the last byte, no newline after it
    assert text_encoding.first_bad_byte(str(path), 3) == (9, 2, 0xE9, b"1,caf\xe9")
    path.write_bytes("a,b\n1,x\n".encode("utf-16"))
    with pytest.raises(UserError, match=r"mixed.csv' is UTF-16 text .*encoding='utf-16'"):
        data.read_table(str(path))


def test_a_damaged_preprocessor_file_is_named_with_the_way_out(tmp_path):
    """A damaged preprocessor.json said only "is not valid JSON (...)" (a probe), where a
    damaged config.json or summary.json says what to do."""
    path = tmp_path / "preprocessor.json"
    way_out = (
        "; expected the file the run wrote: restore it from a copy, or train into a new "
        "workdir (the model's inputs cannot be encoded without it)"
    )
    path.write_text('{"columns": [')
    with pytest.raises(UserError, match=r"preprocessor.json' is not valid JSON \(") as e:
        preprocess_io.load_preprocessor(str(path))
    assert str(e.value).endswith(way_out)
    path.write_text('{"columns": 3}')
    with pytest.raises(UserError, match=r"preprocessor.json' is damaged: ") as e:
        preprocess_io.load_preprocessor(str(path))
    assert str(e.value).endswith(way_out)


def test_categories_that_differ_only_in_case_are_told_of(tmp_path, caplog):
    """'YES', 'Yes', 'no', 'No' trained as four categories without a word (a probe), though a
    new row's case mismatch is told of; the training split's own are told of now."""
    caplog.set_level("WARNING")
    body = "a,c\n" + "".join(
        f"{i % 7},{['YES', 'Yes', 'no', 'No', 'maybe'][i % 5]}\n" for i in range(60)
    )
    (tmp_path / "case.csv").write_text(body)
    ds = load(str(tmp_path / "case.csv"))
    assert len(ds.preprocessor.categories["c"]) == 6  # each its own, and the unseen slot
    assert (
        "column 'c' has categories that differ only in case: 'No' / 'no'; 'YES' / 'Yes'; each "
        "is a category of its own (matched exactly); if they are one, write them alike in the "
        "file"
    ) in caplog.text
    caplog.clear()
    (tmp_path / "plain.csv").write_text(body.replace("Yes", "YES").replace("No", "no"))
    load(str(tmp_path / "plain.csv"))
    assert "differ only in case" not in caplog.text


def test_nul_bytes_are_refused_as_utf16_without_a_mark_or_as_no_text(tmp_path):
    """UTF-16 without a byte-order mark is valid UTF-8 (a NUL beside each ASCII letter): it was
    refused as "line 42 (data row 41) has 1 cells but the header has 3 columns", and a cell
    'p\x00' became a category of its own beside 'p' (a probe). Both are refused, naming why,
    in the first rows and beyond them (a cell found in the parsed text)."""
    body = "a,b,c\n" + "".join(f"{i},{i % 3},{'pq'[i % 2]}\n" for i in range(40))
    for bits, order in itertools.product((16, 32), ("le", "be")):  # UTF-32 was named UTF-16
        path = tmp_path / f"u{bits}{order}.csv"
        path.write_bytes(body.encode(f"utf-{bits}-{order}"))
        with pytest.raises(UserError) as info:
            data.read_table(str(path))
        assert "holds NUL bytes beside its letters" in str(info.value)
        assert (
            f"UTF-{bits} text without a byte-order mark; expected UTF-8: save it as UTF-8, e.g. "
            f"with pandas' read_csv(path, encoding='utf-{bits}-{order}')" in str(info.value)
        )
        path.write_bytes(body.encode(f"utf-{bits}"))  # with a byte-order mark (LE's or BE's)
        with pytest.raises(UserError, match=rf"is UTF-{bits} text \(it starts with a UTF-{bits} "):
            data.read_table(str(path))
        assert pd.read_csv(path, encoding=f"utf-{bits}").columns.tolist() == ["a", "b", "c"]
    # Saved as UTF-8 twice: two marks, the second was part of the first column's name.
    (tmp_path / "twice.csv").write_bytes(codecs.BOM_UTF8 * 2 + body.encode())
    assert data.read_table(str(tmp_path / "twice.csv")).columns == ["a", "b", "c"]
    quoted = '"a","b","c"\n' + body.split("\n", 1)[1]  # its quotes kept: refused (a review)
    (tmp_path / "twice.csv").write_bytes(codecs.BOM_UTF8 * 2 + quoted.encode())
    with pytest.raises(
        UserError, match=r"starts with two UTF-8 byte-order marks .* read as '\"a\"'"
    ):
        data.read_table(str(tmp_path / "twice.csv"))
    (tmp_path / "once.csv").write_bytes(codecs.BOM_UTF8 + quoted.encode())
    assert data.read_table(str(tmp_path / "once.csv")).columns == ["a", "b", "c"]
    lines = body.splitlines(keepends=True)
    lines[7] = "6,0,p\x00\n"
    (tmp_path / "cell.csv").write_text("".join(lines))
    with pytest.raises(UserError, match=r"cell.csv': line 8 holds a NUL byte \(0x00\), in b'6,"):
        data.read_table(str(tmp_path / "cell.csv"))
    far = ["a,b,c\n"] + [f"{i},{i % 3},{'pq'[i % 2]}\n" for i in range(20_000)]
    far[15_000] = "14999,0,p\x00\n"  # beyond the first 64 KiB read as a sample
    (tmp_path / "far.csv").write_text("".join(far))
    with pytest.raises(
        UserError, match=r"far.csv': column 'c' has a cell holding a NUL character \(0x00\): 'p"
    ):
        data.read_table(str(tmp_path / "far.csv"))
    far[15_000] = "14999,0,p\n"
    (tmp_path / "far.csv").write_text("".join(far))
    assert data.read_table(str(tmp_path / "far.csv")).num_rows == 20_000


def test_numbers_typed_by_the_reader_keep_their_text(tmp_path):
    # A text column's categories are its cells as written; a new file holding only numbers
    # reads as numbers, and transform takes their text back from the file ("12.0", which as
    # a number would be written "12"). (Codes with leading zeros, "007", are read as text.)
    body = rows(12)
    for i, r in enumerate(body):
        r[1] = ["7", "12.0", "x1"][i % 3]
    ds = load(write(tmp_path / "t.csv", body), scaling="none")
    p = ds.preprocessor
    assert p.categories["cat"] == vocab_by_rule([body[i][1] for i in ds.train_indices])
    code = p.categories["cat"].index
    new = write(tmp_path / "n.csv", [r for r in body if r[1] != "x1"])
    table = data.read_table(new)
    assert table.values[1].dtype == np.float64  # read as numbers
    np.testing.assert_array_equal(p.transform(table)[:, 1], [code("7"), code("12.0")] * 4)
    np.testing.assert_array_equal(p.transform(table.take([3, 0]))[:, 1], [code("12.0"), code("7")])
    # A label column stays text: integer labels stay integers.
    body = rows(12)
    labelled = write(
        tmp_path / "l.csv", [r + [str(i % 3)] for i, r in enumerate(body)], HEADER + ["y"]
    )
    ds = load(labelled, label_column="y")
    assert ds.labels_train.dtype.kind == "i" and set(ds.labels_train) <= {0, 1, 2}


def test_a_late_non_number_falls_back_to_text(tmp_path):
    body = rows(6000)  # past the rows the reader guesses types from
    body[5500][3] = "NA"
    path = write(tmp_path / "late.csv", body)
    with pytest.raises(
        UserError,
        match=r"column 'int' has 1 missing value\(s\) \(marker\(s\) "
        r"\['NA'\]\) at row 5501 \(line 5502\) 'NA'",
    ):
        load(path)
    ds = load(path, missing="impute")
    assert ds.preprocessor.kinds == ["numeric", "categorical", "boolean", "numeric"]
    body[5500][3] = "oops"
    with pytest.raises(
        UserError,
        match=r"column 'int' cannot be encoded: 5999 of its 6000 "
        r"cells are numbers, but these are not: row 5501 "
        r"\(line 5502\) 'oops'",
    ):
        load(write(tmp_path / "typo.csv", body))


def test_python_float_rules_and_vocabulary_order(tmp_path):
    # pyarrow's cast refuses "1000.0" written " \u0661\u0662" (Arabic-Indic 12); Python's
    # float reads it, and the column stays numeric as before.
    body = rows(12)
    body[0][0], body[1][0] = "1000.0", "\u0661\u0662"
    body[2][1], body[3][1] = "Zebra", "\u00e9clair"
    ds = load(write(tmp_path / "f.csv", body), scaling="none")
    x = ds.preprocessor.transform(data.read_table(str(tmp_path / "f.csv")))
    assert x[0, 0] == 1000 and x[1, 0] == 12
    vocab = ds.preprocessor.categories["cat"]
    assert vocab == vocab_by_rule([body[i][1] for i in ds.train_indices])
    known = [vocab.index(r[1]) if r[1] in vocab else len(vocab) - 1 for r in body[:4]]
    np.testing.assert_array_equal(x[:4, 1], known)
    # Raw rows (NumPy object arrays) encode like the file.
    np.testing.assert_array_equal(ds.preprocessor.transform(np.array(body, dtype=object)), x)


def test_digits_joined_by_underscores_are_no_number(tmp_path):
    """Python's float (and NumPy's) reads "2023_01" as 202301 and "2_5" as 25, as its literals'
    digit groups: a year-month column trained silently as numbers of that size. pandas and
    pyarrow read such cells as text, and so does ae_jax now: a column of them is categorical,
    one among numbers is named."""
    body = [[f"2023_{m % 12 + 1:02d}", str(m * 0.5)] for m in range(30)]
    ds = load(write(tmp_path / "ym.csv", body, header=["period", "v"]))
    assert ds.preprocessor.kinds == ["categorical", "numeric"]
    assert "2023_01" in ds.preprocessor.categories["period"]
    body = [[str(m), str(m * 0.5)] for m in range(29)] + [["2_5", "1"]]
    with pytest.raises(
        UserError, match=r"column 'a' cannot be encoded: 29 of its 30 cells .*'2_5'"
    ):
        load(write(tmp_path / "n.csv", body, header=["a", "v"]))
    # The same cells as raw rows of NumPy text (NumPy's own conversion reads "2_5" as 25).
    p = ds.preprocessor
    new = p.transform(np.array([["2023_01", "1.5"], ["2_5", "1"]], dtype=str))
    assert new[1, 0] == p.transform(np.array([["zzz", "1"]], dtype=object))[0, 0]
    assert new[0, 0] == p.transform([["2023_01", "0"]])[0, 0] != new[1, 0]
    with pytest.raises(UserError, match=r"column 'v'.*'2_5'"):  # a numeric column's
        p.transform(np.array([["2023_01", "2_5"]], dtype=str))


def test_a_headerless_file_is_refused_or_warned_of_by_its_first_row(tmp_path, caplog):
    """A file without a header row lost its first row of data to the column names, with no
    word, when a text of that row was in none of its column's next 20 rows (a rare grade, an
    id) or was a missing-value marker, or a blank there hid a column of numbers: -1.067,E,76
    were read as the names of 199 rows (a probe). An id shaped as its column's cells, or a
    marker, is a cell: refused. A fractional or signed number heading a column of numbers is
    weaker evidence, as spectra (400.5), quantiles (0.05) and lags (-2) name columns so (a
    review): said in a warning, the header read."""
    rng = np.random.default_rng(16)
    ids = [f"p{i:03d},{rng.integers(0, 9)},{rng.integers(0, 9)}" for i in range(50)]
    (tmp_path / "ids.csv").write_text("\n".join(ids) + "\n")
    with pytest.raises(UserError, match=r"first row \['p000', .* its texts are cells of their"):
        load(tmp_path / "ids.csv")
    marked = [f"{'NA' if i % 3 == 0 else i},{['red', 'blue'][i % 2]},{i % 7}" for i in range(20)]
    (tmp_path / "marked.csv").write_text("\n".join(marked) + "\n")  # first row NA,red,0
    with pytest.raises(UserError, match=r"first row \['NA', 'red', '0'\] looks like data"):
        load(tmp_path / "marked.csv")
    grades = rng.choice(list("ABCD"), 200)
    grades[0] = grades[150] = "E"
    rows = [f"{rng.normal():.3f},{g},{rng.integers(0, 100)}" for g in grades]
    rows[2] = "," + rows[2].split(",", 1)[1]  # a blank and a marker among the first rows
    rows[3] = "NA," + rows[3].split(",", 1)[1]
    (tmp_path / "grades.csv").write_text("\n".join(rows) + "\n")
    caplog.set_level("WARNING")
    load(tmp_path / "grades.csv", missing="drop")
    first = rows[0].split(",")
    assert (
        f"grades.csv': its first row {first} is read as the header, but names columns of "
        f"numbers with numbers ('{first[0]}'): if the file has no header row, add one (else its "
        "first row of data is lost, its values naming the columns)" in caplog.text
    )
    headers = {
        "country": ("country,2019,2020", ["France", "Chad", "Peru"]),
        "iso": ("ISO,2019,2020", ["FRA", "TCD", "PER"]),
        "spectra": ("sample,400.5,401.0", ["S1", "S2", "S3"]),
        "quantiles": ("ISO,0.05,0.95", ["FRA", "TCD", "PER"]),
        "lags": ("name,-2,-1", ["ann", "bob", "cy"]),
    }
    for name, (header, texts) in headers.items():
        caplog.clear()
        body = [f"{c},{rng.normal():.2f},{rng.normal():.2f}" for c in texts * 4]
        (tmp_path / f"{name}.csv").write_text(header + "\n" + "\n".join(body) + "\n")
        assert load(tmp_path / f"{name}.csv").columns == header.split(","), name
        assert ("is read as the header" in caplog.text) == (name not in ("country", "iso"))


def test_pandas_default_header_is_names_and_names_are_stripped_in_every_format(tmp_path):
    """pd.DataFrame(x).to_csv(index=False) writes the header 0,1,2,3: it was refused as "looks
    like data". And a CSV header's names were stripped of spaces, Parquet's and a data frame's
    not, so a model trained on one format refused the same table in another."""
    x = np.random.default_rng(0).normal(size=(40, 4))
    pd.DataFrame(x).to_csv(tmp_path / "unnamed.csv", index=False)
    ds = load(tmp_path / "unnamed.csv")
    assert ds.columns == ["0", "1", "2", "3"] and ds.num_features == 4
    np.testing.assert_allclose(
        ds.preprocessor.transform(pd.DataFrame(x)), ds.preprocessor.transform(x)
    )
    (tmp_path / "years.csv").write_text("2019,2020,2021\n" + "1,2,3\n" * 10)
    with pytest.raises(
        UserError,
        match=r"looks like data; .*\(e.g. x_0,x_1,..., as for an array\).*prefix them \(y2019,",
    ):
        load(tmp_path / "years.csv")
    # Two unnamed columns: 0,1 is as likely data; refused, without calling it read as names.
    pd.DataFrame(x[:, :2]).to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(UserError, match=r"this header, read as names from 3 columns on: with"):
        load(tmp_path / "two.csv")
    frame = pd.DataFrame({"a": x[:, 0], "b ": x[:, 1], " c": x[:, 2]})
    frame.to_csv(tmp_path / "spaced.csv", index=False)
    frame.to_parquet(tmp_path / "spaced.parquet")
    on_csv = load(tmp_path / "spaced.csv").preprocessor
    on_parquet = load(tmp_path / "spaced.parquet").preprocessor
    assert on_csv.input_columns == on_parquet.input_columns == ["a", "b", "c"]
    for p in (on_csv, on_parquet):
        rows = [frame, data.read_table(str(tmp_path / "spaced.parquet"))]
        rows += [data.read_table(str(tmp_path / "spaced.csv"))]
        for r in rows:
            np.testing.assert_allclose(p.transform(r), on_csv.transform(frame))
    with pytest.raises(UserError, match=r"repeated column names \['a'\]"):
        on_csv.transform(pd.DataFrame({"a": x[:, 0], "a ": x[:, 1], "c": x[:, 2]}))
    # An Arrow table was read as an array, its columns matched by position: reversed, each
    # column was encoded as another. It is matched by name, as a data frame is.
    arrow = pa.Table.from_pandas(frame[frame.columns[::-1]], preserve_index=False)
    np.testing.assert_allclose(on_csv.transform(arrow), on_csv.transform(frame))
    np.testing.assert_allclose(on_csv.transform(arrow.to_batches()[0]), on_csv.transform(frame))
    with pytest.raises(UserError, match=r"the Arrow table has 2: missing 'c'"):
        on_csv.transform(arrow.drop_columns([" c"]))


# ---- the config ------------------------------------------------------------------------------


def test_config_fields_and_validation():
    c = config_lib.default_config()
    d = c.data
    assert (d.image_shape, d.delimiter, d.missing, d.thousands, d.max_categories) == (
        (),
        "auto",
        "error",
        "",
        1000,
    )
    assert d.na_values == ("", "NA", "N/A", "NaN", "nan", "null", "None", "?")
    config_lib.validate(c)
    for field, value, match in [
        ("image_shape", (28,), "data.image_shape"),
        ("image_shape", (28, 0), "data.image_shape"),
        ("delimiter", ";;", "data.delimiter"),
        ("missing", "fill", "data.missing"),
        ("thousands", ".", "data.thousands"),
        ("max_categories", 0, "data.max_categories"),
        ("na_values", ("NA", 3), "data.na_values"),
    ]:
        bad = config_lib.default_config()
        bad.data[field] = value
        with pytest.raises(UserError, match=match):
            config_lib.validate(bad)
    ok = config_lib.default_config()
    ok.data.image_shape, ok.data.delimiter = (32, 32, 3), "tab"
    config_lib.validate(ok)


def test_numbers_with_signs_and_excel_hints_are_refused_with_a_working_fix(tmp_path):
    """'12%' or '$1,250.00' columns (a stray '-' among them too), decimal commas with '.'
    groups anywhere in the column, and Excel's 'sep=' first line, quoted or a tab."""
    body = "".join(f"{i},${i},{i * 3 % 7}%\n" for i in range(1000, 1040)) + "1,-,-\n"
    (tmp_path / "s.csv").write_text("a,price,share\n" + body)
    with pytest.raises(UserError, match=r"column 'price' holds numbers written with a percent"):
        load(str(tmp_path / "s.csv"))
    message = str(_refusal(tmp_path / "s.csv"))
    pattern = re.search(r"str\.replace\(r'(.+?)', '', regex=True\)\.astype\(float\)", message)
    assert pattern is not None and "['-'] to data.na_values" in message
    # The advice, applied as written, reads '$1,250.50' and '12%' as numbers.
    assert [float(re.sub(pattern[1], "", t)) for t in ("$1,250.50", "12%", "3.5 €")] == [
        1250.5,
        12.0,
        3.5,
    ]
    (tmp_path / "d.csv").write_text(
        "a;b\n" + "".join(f"{i};0,5\n{i};1.{i:03d},25\n" for i in range(20))
    )
    with pytest.raises(UserError, match=r"read_csv\(decimal=',', thousands='.'\)"):
        load(str(tmp_path / "d.csv"))
    for first in ("sep=\t", '"sep=;"'):
        (tmp_path / "x.csv").write_text(first + "\na;b\n1;2\n3;4\n")
        with pytest.raises(UserError, match=r"is Excel's delimiter hint, not a header row"):
            load(str(tmp_path / "x.csv"))


def _refusal(path):
    try:
        load(str(path))
    except UserError as e:
        return e
    raise AssertionError(f"{path} was not refused")


def test_one_row_just_under_the_sample_size_is_read(tmp_path):
    """A file whose sample loses its last line (no newline after it) still has that row."""
    path = tmp_path / "long.csv"
    header = "a,b\n"
    path.write_text(header + "1," + "x" * ((1 << 16) - len(header) - 4))  # 65,534 bytes
    assert data.read_table(str(path)).num_rows == 1


def test_drop_refuses_a_column_with_no_value_at_once(tmp_path):
    (tmp_path / "e.csv").write_text("a,b,c\n" + "".join(f"{i},,{i % 3}\n" for i in range(30)))
    with pytest.raises(
        UserError,
        match=r"column\(s\) \['b'\] have no value in any of the "
        r"file's 30 rows, so data.missing='drop' would drop every row",
    ):
        load(str(tmp_path / "e.csv"), missing="drop")


def test_a_numeric_column_with_a_few_unlisted_markers_is_refused_not_made_categorical(tmp_path):
    """'n/a' in 10 of 60 ratings (more than the 10% the 90%-numbers rule allows) made the
    column categorical without a word: ratings coded by frequency, 'n/a' a category. Mostly
    numbers and at most 3 other texts: refused, naming them; real categories stay categorical."""
    body = "".join(f"{'n/a' if i % 6 == 0 else 1 + i % 5},{i}\n" for i in range(60))
    (tmp_path / "r.csv").write_text("rating,b\n" + body)
    with pytest.raises(UserError, match=r"'rating' cannot be encoded: 50 of its 60 cells are"):
        load(tmp_path / "r.csv")
    assert load(tmp_path / "r.csv", na_values=("n/a",), missing="drop").train.shape[1] == 2
    for values in (["S", "M", "L", "10", "12", "14"], ["yes", "no", "1", "0"], ["A", "B", "1"]):
        cells = "".join(f"{values[i % len(values)]},{i}\n" for i in range(60))
        (tmp_path / "s.csv").write_text("size,b\n" + cells)  # categories, not markers
        assert load(tmp_path / "s.csv").preprocessor.kinds == ["categorical", "numeric"], values
    dashes = "".join(f"{'-' if i % 5 == 0 else i},{i}\n" for i in range(60))
    (tmp_path / "d.csv").write_text("x,b\n" + dashes)
    with pytest.raises(UserError, match=r"48 of its 60 cells are numbers, but these are not: "):
        load(tmp_path / "d.csv")
    codes = "".join(f"{['007', '012', 'n/a'][i % 3]},{i}\n" for i in range(60))
    (tmp_path / "c.csv").write_text("code,b\n" + codes)  # leading zeros: codes, not amounts
    assert load(tmp_path / "c.csv").preprocessor.kinds == ["categorical", "numeric"]


def test_true_false_mixed_with_1_and_0_is_one_true_false_column(tmp_path):
    """A spreadsheet's TRUE/FALSE mixed with 1/0 became four categories coded 0, .25, .5, .75;
    it is one true/false column, and new rows' '1'/'0' text encode as 1/0."""
    body = "".join(f"{i},{['TRUE', 'FALSE', '1', '0'][i % 4]}\n" for i in range(40))
    (tmp_path / "b.csv").write_text("a,f\n" + body)
    ds = load(tmp_path / "b.csv")
    assert ds.preprocessor.kinds == ["numeric", "boolean"]
    new = [["1", "0"], ["2", "true"], ["3", "1"]]
    np.testing.assert_array_equal(ds.preprocessor.transform(new)[:, 1], [0.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "cell, said, number",
    [
        ("1\u00a0250", "no-break spaces (U+00A0)", 1250.0),
        ("1\u202f250", "narrow no-break spaces (U+202F)", 1250.0),
        ("1\u00a0250,5", "no-break spaces (U+00A0)", 1250.5),
        ("\u22121.5", "the minus sign U+2212", -1.5),
    ],
)
def test_numbers_with_look_alike_characters_are_refused_with_their_fix(
    tmp_path, cell, said, number
):
    """'1 250' grouped by a (narrow) no-break space (French exports, with a decimal comma too)
    or '−1.5' with the Unicode minus became categories (5 distinct values: not even a warning);
    refused, naming the character, and the pandas fix the message gives, applied as written,
    reads the cell as the number it shows."""
    body = "".join(f"{cell};{i}\n" for i in range(40))
    (tmp_path / "n.csv").write_text("x;b\n" + body, encoding="utf-8")
    error = str(_refusal(tmp_path / "n.csv"))
    assert f"column 'x' holds numbers written with {said}" in error
    fix = re.search(r"df\[col\]((?:\.str\.replace\('.*?', '.*?'\))+)", error)
    assert fix is not None, error
    fixed = cell
    for old, new in re.findall(r"replace\('(.*?)', '(.*?)'\)", fix[1]):
        fixed = fixed.replace(ast.literal_eval(f"'{old}'"), new)  # as Python reads the fix
    assert float(fixed) == number


def test_every_column_with_decimal_commas_is_named_at_once(tmp_path):
    """Only the first such column was named: a user converting it found the next one by the
    next run's refusal."""
    rows = "".join(
        f"{i},5;{i % 5};{'NA' if i == 3 else f'0,{i % 3}'};x{i % 2};1,{i};0,{i};{i + 1},037;"
        f"{i + 1},000\n"
        for i in range(30)
    )
    (tmp_path / "eu.csv").write_text("a;b;c;d;e;codes;k;m\n" + rows)

    def refusal(**kw) -> str:
        with pytest.raises(UserError, match=r"column 'a' holds numbers written with a decimal"):
            load(tmp_path / "eu.csv", **kw)
        return str(pytest.raises(UserError, load, tmp_path / "eu.csv", **kw).value)

    # c's 'NA' is a missing value; 'codes' is categorical by name; k and m group thousands
    # (from 1,037: a group never starts with 0, so 0,037 would make k decimal commas).
    kw = dict(missing="impute", categorical_columns=("codes",))
    assert "(so do columns 'c', 'e');" in refusal(**kw)
    assert "(so do columns 'c', 'e', 'codes');" in refusal(missing="drop")


def test_new_rows_with_decimal_commas_are_told_so(tmp_path):
    """Training refuses decimal commas with the conversion; new rows for a trained run said
    only 'not numbers'."""
    (tmp_path / "t.csv").write_text("a,b\n" + "".join(f"{i}.5,{i}\n" for i in range(20)))
    p = load(tmp_path / "t.csv").preprocessor
    with pytest.raises(UserError, match=r"'0,5'.*\(these have decimal commas: write them with"):
        p.transform([["0,5", "1"], ["1,5", "2"]])


def test_the_log_names_the_column_kinds_and_how_categories_are_encoded(tmp_path, caplog):
    """The default encodes categories as ordinal codes: the log said only '4 features'."""
    path = write(tmp_path / "kinds.csv", rows(30))
    caplog.set_level("INFO")
    ds = load(path)
    assert ds.kinds_text().startswith(
        "4 columns: 2 numeric, 1 true/false, 1 categorical; categories per column in the "
        "training split: cat (3); encoded as one ordinal code each (data.categorical=ordinal"
    )
    assert f"data: kinds.csv: {ds.kinds_text()}" in caplog.text
    assert "(data.categorical=onehot)" in load(path, categorical="onehot").kinds_text()
    assert data.load_dataset(cfg(name="digits", path="")).kinds_text() == (
        "64 pixels of 8x8 images, whole intensities 0..16 divided by 16; label 'target' kept "
        "out of the features"
    )
    none = data.load_dataset(cfg(name="digits", path="", scaling="none")).kinds_text()
    assert none.startswith("64 pixels of 8x8 images, whole intensities 0..16 divided by 16;")
    numbers = data.load_dataset(cfg(name="breast_cancer", path="", scaling="standard"))
    assert numbers.kinds_text() == (
        "30 columns, all numeric, each standardised by its training split's mean and std "
        "(data.scaling=standard); label 'target' kept out of the features"
    )
    # A label kept as a feature is said to be one: digits' was counted as a 65th "column of
    # pixels", breast_cancer's not named at all.
    kept = data.load_dataset(cfg(name="digits", path="", keep_label=True)).kinds_text()
    assert kept == (
        "64 columns of pixels, whole intensities 0..16 divided by 16; label 'target' kept as a "
        "feature (data.keep_label), scaled as the pixels are"
    )
    kept = data.load_dataset(cfg(name="breast_cancer", path="", keep_label=True)).kinds_text()
    assert kept == (
        "31 columns, all numeric, each scaled by its training split's minimum and maximum "
        "(data.scaling=minmax); label 'target' kept as a feature (data.keep_label)"
    )
    (tmp_path / "one.csv").write_text("a\n" + "".join(f"{i}\n" for i in range(8)))
    assert load(tmp_path / "one.csv").kinds_text().startswith("1 column, all numeric, each")
    np.savez(tmp_path / "rgb.npz", x=np.random.default_rng(0).uniform(size=(20, 4, 4, 3)))
    assert load(tmp_path / "rgb.npz").kinds_text() == (  # one range per channel, as scaled
        "48 values (16 pixels x 3 channels) of 4x4x3 images, scaled by the training split's "
        "minimum and maximum per colour channel (data.scaling=minmax)"
    )


def test_a_pandas_index_in_a_parquet_file_is_no_feature_and_to_csvs_is_named(tmp_path):
    """DataFrame.to_parquet keeps a named index as a column: it was trained as a feature
    (pandas reads it back as the index). to_csv's unnamed index column is refused, now
    saying where it comes from."""
    import pandas as pd

    frame = pd.DataFrame({"a": np.arange(30.0) % 7, "b": np.arange(30.0) % 5})
    plain = tmp_path / "plain.parquet"
    frame.to_parquet(plain)
    frame.index = pd.Index(np.arange(1000, 1030), name="rowid")
    frame.to_parquet(tmp_path / "indexed.parquet")
    ds, ref = load(tmp_path / "indexed.parquet"), load(plain)
    same(ds, ref)
    # pyarrow's drop_columns keeps the pandas metadata naming the index it dropped.
    table = pq.read_table(tmp_path / "indexed.parquet")
    pq.write_table(table.drop_columns(["rowid"]), tmp_path / "dropped.parquet")
    same(load(tmp_path / "dropped.parquet"), ref)
    assert ds.columns == ["a", "b"]
    frame.rename_axis(None).to_csv(tmp_path / "indexed.csv")  # header ',a,b
    with pytest.raises(UserError, match=r"header column 1 has no name; .* \(pandas' DataFrame"):
        load(tmp_path / "indexed.csv")


def test_a_trailing_delimiter_is_named_as_the_cause(tmp_path):
    """A spreadsheet export ending every line with ',' gives an unnamed last column (or rows a
    cell longer than the header): the message says to remove the trailing delimiter."""
    said = r"the line ends with the delimiter ',': remove the trailing one, in every line"
    (tmp_path / "t.csv").write_text("a,b,c,\n" + "".join(f"{i},2,3,\n" for i in range(9)))
    header = r"ends with the delimiter ',': if every line does, with nothing after it, remove"
    with pytest.raises(UserError, match=r"header column 4 has no name; .*" + header):
        load(tmp_path / "t.csv")
    pq.write_table(pa.table({"a": [1.0] * 9, "": [2.0] * 9}), tmp_path / "t.parquet")
    with pytest.raises(UserError, match=r"header column 2 has no name") as e:
        load(tmp_path / "t.parquet")  # no lines, no delimiter: no such hint
    assert "ends with the delimiter" not in str(e.value)
    # Nor a first row (a probe: CSV's words for a Parquet file), nor pandas' CSV index.
    assert str(e.value).endswith(
        "header column 2 has no name; expected a name for every column (a table's column names)"
    )
    pq.write_table(pa.table({"": [1.0] * 9, "a": [2.0] * 9}), tmp_path / "f.parquet")
    with pytest.raises(UserError, match=r"column 1 has no name; .*names\)$"):
        load(tmp_path / "f.parquet")
    (tmp_path / "r.csv").write_text("a,b,c\n" + "".join(f"{i},2,3,\n" for i in range(9)))
    with pytest.raises(UserError, match=r"line 2 \(data row 1\) has 4 cells but .*" + said):
        load(tmp_path / "r.csv")
    (tmp_path / "x.csv").write_text("a,b,c\n" + "".join(f"{i},2,3,4\n" for i in range(9)))
    with pytest.raises(UserError, match=r"has 4 cells but") as e:  # a cell, not a delimiter
        load(tmp_path / "x.csv")
    assert "remove the trailing one" not in str(e.value)


def test_validation_values_far_outside_the_training_range_are_warned_of(tmp_path, caplog):
    """Three validation cells of 1e25 made every epoch's eval loss inf in float32, and a column
    constant in training but not in validation (scale 1, raw units) made eval/mse 2756, both
    said nowhere ("constant ... carry no information") (a probe)."""
    body = rows(60)
    val = sorted(load(write(tmp_path / "a.csv", body)).val_indices)
    for r in body:
        r[3] = "7"  # constant in training ...
    body[val[0]][3], body[val[1]][0], body[val[2]][0] = "300", "1e+25", "1e+25"  # ... not in val
    caplog.set_level("WARNING")
    load(write(tmp_path / "far.csv", body))
    assert (
        "2 numeric column(s) whose validation values lie far outside the training split's range "
        "(beyond 10 times its width, or 10 off a column constant in training): 'num': validation "
    ) in caplog.text
    assert (
        "to 1e+25, training" in caplog.text
        and "'int': validation 7 to 300, training 7 to 7" in (caplog.text)
    )
    caplog.clear()
    body[val[1]][0] = body[val[2]][0] = "4.9"  # near the range: no word
    body[val[0]][3] = "9"  # 7 in training, 9 once in validation: no word either (a review)
    load(write(tmp_path / "near.csv", body))
    assert "far outside" not in caplog.text


@pytest.mark.parametrize("scaling", ["minmax", "standard", "none"])
def test_new_rows_far_outside_are_said_with_the_training_range_under_any_scaling(
    tmp_path, caplog, scaling
):
    """New rows (`encode`, `evaluate --data`) far outside the training range: a column constant
    in training (7s) was said to span "7 to 8" (under minmax its offset and scale read as a
    range 1 wide), and under data.scaling='standard' or 'none' nothing was said at all (only
    minmax recorded a range). The training ranges are saved with the preprocessor now."""
    body = rows(60)
    for r in body:
        r[3] = "7"  # constant in training
    ds = load(write(tmp_path / "a.csv", body), scaling=scaling)
    p = preprocess_io.from_dict(json.loads(json.dumps(preprocess_io.to_dict(ds.preprocessor))))
    num = [float(r[0]) for r in body]
    np.testing.assert_array_equal(p.ranges[:, 3], [7.0, 7.0])  # as preprocessor.json keeps it
    assert p.ranges[0, 0] >= min(num) and p.ranges[1, 0] <= max(num)  # the training rows'
    new = [["1.0", "red", "TRUE", "7"], ["2.0", "blue", "false", "300"]]
    caplog.set_level("WARNING")
    scaling_lib.say_far_rows("the input", p, p.transform(new))
    assert "1 numeric column(s) whose values lie far outside" in caplog.text
    assert "'int': here 7 to 300, training 7 to 7." in caplog.text
    caplog.clear()
    new[1][3] = "16"  # 9 off the constant: within 10 of it, no word
    scaling_lib.say_far_rows("the input", p, p.transform(new))
    assert "far outside" not in caplog.text
    # A run saved before ranges were recorded is the same preprocessing (resumed, not refused).
    older = {k: v for k, v in preprocess_io.to_dict(p).items() if k != "ranges"}
    assert preprocess_io.from_dict(older).ranges is None
    assert preprocess_io.difference(p, preprocess_io.from_dict(older)) == ""
    n = p.num_features  # a damaged field is named (a ragged one was a numpy traceback)
    for bad in ([[1.0], "x"], [[0.0], [1.0] * n], [[0.0] * n] * 3, [[0.0] * n, [np.nan] * n]):
        with pytest.raises(UserError, match=rf"'ranges' is .*two lists of {n} finite numbers"):
            preprocess_io.from_dict({**older, "ranges": bad})
    for key, bad in (  # (ragged ones were numpy tracebacks; the rest were taken: a review)
        ("ranges", [[1.0] * n, [0.0] * n]),  # lowest above highest
        ("offset", [[1.0], [1.0, 2.0]]),
        ("offset", None),
        ("scale", [True] * n),
        ("span", [2.0, 1.0]),
        ("span", [np.nan, 1.0]),
    ):
        with pytest.raises(UserError, match=rf"^preprocessor: field '{key}' is .*; expected"):
            preprocess_io.from_dict({**older, key: bad})


def test_new_rows_under_no_scaling_are_far_by_the_columns_own_width(tmp_path, caplog):
    """Under data.scaling='none' (raw units) a column of 0 .. 0.01 took new values up to ~10
    without a word (room was at least 10 units: 1,000 of its widths; a review)."""
    body = rows(60)
    for i, r in enumerate(body):
        r[0] = f"{i / 6000:.6f}"  # 0 .. 0.01
    p = load(write(tmp_path / "a.csv", body), scaling="none").preprocessor
    caplog.set_level("WARNING")
    scaling_lib.say_far_rows("the input", p, p.transform([["5", "red", "TRUE", "7"]]))
    assert "'num': here 5 to 5, training 0 to 0.009833" in caplog.text
    caplog.clear()
    scaling_lib.say_far_rows("the input", p, p.transform([["0.09", "red", "TRUE", "7"]]))
    assert "far outside" not in caplog.text  # 9 widths above: near
    for i, r in enumerate(body):  # a column float32 cannot tell apart from a constant
        r[0] = ["1.00000006", "1.000000061"][i % 2]
    p = load(write(tmp_path / "b.csv", body), scaling="none").preprocessor
    scaling_lib.say_far_rows("the input", p, p.transform(body))  # its own training rows
    assert "far outside" not in caplog.text  # (float64 ends put them outside: a review)


def test_a_row_index_kept_as_a_column_is_warned_of(tmp_path, caplog):
    """pandas' to_csv writes its index as a column ('Unnamed: 0' when read back and saved
    again); an ID column alike: trained as numbers without a word."""
    body = [[str(i), *r] for i, r in enumerate(rows(30))]
    caplog.set_level("WARNING")
    load(write(tmp_path / "indexed.csv", body, ["Unnamed: 0", *HEADER]))
    assert "column 'Unnamed: 0' holds the whole numbers 0..29, one per row: a row index" in (
        caplog.text
    )
    caplog.clear()
    body = [[str(i * i), *r] for i, r in enumerate(rows(30))]  # distinct, not consecutive
    load(write(tmp_path / "squares.csv", body, ["sq", *HEADER]))
    load(
        write(tmp_path / "few.csv", [[str(i), *r] for i, r in enumerate(rows(10))], ["i", *HEADER])
    )
    assert "one per row" not in caplog.text and "the index pandas" not in caplog.text
    body = [[str(i * i), *r] for i, r in enumerate(rows(30))]  # a filtered frame's index
    load(write(tmp_path / "filtered.csv", body, ["Unnamed: 0", *HEADER]))
    assert "'Unnamed: 0' holds distinct whole numbers 0..841: the index pandas' to_csv" in (
        caplog.text
    )
    # An id column 1..30 of a file whose rows 5 and 9 data.missing='drop' drops: 28 numbers
    # 1..30, not consecutive, the warning was gone; in the file's order they still are.
    body = [[str(i + 1), *r] for i, r in enumerate(rows(30))]
    body[4][1] = body[8][3] = ""
    caplog.clear()
    load(write(tmp_path / "dropped.csv", body, ["id", *HEADER]), missing="drop")
    assert (
        "'id' holds the whole numbers 1..30, one per row of the file less the dropped: a row"
        in (caplog.text)
    )
    body = [[str(i + 1 + (i > 20)), *r] for i, r in enumerate(rows(30))]  # a gap of its own
    body[4][1] = ""
    caplog.clear()
    load(write(tmp_path / "gap.csv", body, ["id", *HEADER]), missing="drop")
    assert "'id' holds" not in caplog.text
    empty = data.Table("f.npz", ["Unnamed: 0"], [np.array([])])  # all missing: no crash
    column_checks.say_if_index(empty, "Unnamed: 0", np.array([]))
    frame = pa.table({"u8": np.arange(256, dtype=np.uint8), "x": np.arange(256) % 7.0})
    pq.write_table(frame, tmp_path / "u8.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow in a uint8 column's max + 1
        load(tmp_path / "u8.parquet")
    assert "'u8' holds the whole numbers 0..255, one per row" in caplog.text
    # 20-digit identifiers read as one float64 (then called "a constant column"); large
    # measurements, distinct as numbers, are no such thing.
    ids = [[str(12345678901234567890 + i), *r] for i, r in enumerate(rows(30))]
    load(write(tmp_path / "ids.csv", ids, ["id", *HEADER]))
    assert "column 'id' holds 30 number(s) of 16 or more digits (beyond 2**53), only 1 " in (
        caplog.text
    )
    caplog.clear()
    # Parquet's integers: int64 and uint64 identifiers, distinct as integers, not as floats.
    for dtype, first in (("int64", 2**62), ("uint64", 2**63)):
        ids = pa.table({"id": np.arange(50, dtype=dtype) + np.array(first, dtype)})
        ids = ids.append_column("x", pa.array(np.arange(50) % 7.0))
        pq.write_table(ids, tmp_path / "i.parquet")
        load(tmp_path / "i.parquet")
        assert "column 'id' holds 50 number(s) of 16 or more digits (beyond 2**53), only 1 " in (
            caplog.text
        ), dtype
        caplog.clear()
    big = [[f"{1e20 * (1 + i / 100):.6e}", *r] for i, r in enumerate(rows(30))]
    load(write(tmp_path / "big.csv", big, ["mass", *HEADER]))
    assert "beyond 2**53" not in caplog.text
    # Images of few grey levels, scaled far beyond 2**53: no pixel is an identifier (a
    # probe's 784 warnings, one per pixel); the same numbers as a table's columns are warned of.
    levels = np.arange(40 * 16).reshape(40, 4, 4) % 3 * 1e30
    np.save(tmp_path / "images.npy", levels)
    load(tmp_path / "images.npy")
    assert "beyond 2**53" not in caplog.text
    np.save(tmp_path / "table.npy", levels.reshape(40, 16))
    load(tmp_path / "table.npy")
    said = re.search(
        r"column 'x_1' holds \d+ number\(s\) of 16 or more digits \(beyond", caplog.text
    )
    assert said, caplog.text


def test_a_marker_that_is_a_tenth_of_a_columns_cells_is_warned_of_under_impute(tmp_path, caplog):
    """A probe's Market column, NA (North America) / EU / APAC at 50/30/20%, under
    data.missing='impute': every NA was filled with 'EU' with an info line only. A marker
    spelling on a tenth of a text column's training rows or more is warned of; a few markers,
    and empty cells whatever their share, are not."""
    markets = ["NA"] * 50 + ["EU"] * 30 + ["APAC"] * 20
    plans = ["None"] * 5 + ["Basic"] * 60 + ["Pro"] * 35
    notes = [""] * 60 + ["x"] * 40
    body = [[i, m, p, n] for i, (m, p, n) in enumerate(zip(markets, plans, notes, strict=True))]
    path = write(tmp_path / "m.csv", body, header=["id", "Market", "Plan", "Note"])
    caplog.set_level("WARNING")
    ds = load(path, missing="impute", scaling="none", val_fraction=0.2)
    warned = [r.getMessage() for r in caplog.records if "a missing-value marker" in r.getMessage()]
    (line,) = warned
    n_train = len(ds.train_indices)
    nas = sum(markets[i] == "NA" for i in ds.train_indices)
    said = f"'NA', a missing-value marker (data.na_values), is {nas} of the {n_train} training"
    assert f"column 'Market': {said} rows' cells" in line
    assert "filled in with 'EU'" in line and "give data.na_values without it" in line
    caplog.clear()
    load(path, missing="impute", scaling="none", val_fraction=0.2, na_values=("",))
    assert "a missing-value marker" not in caplog.text
    # Python's None in rows given as objects is missing whatever data.na_values says: no
    # marker to give it without (a review: the warning said to).
    rows = [[float(i), None if i % 2 else "EU"] for i in range(20)]
    cols = [np.array([r[k] for r in rows], object) for k in (0, 1)]
    table = data.Table("rows", ["id", "Market"], cols)
    data.Preprocessor.fit(table, np.arange(16), missing="impute", na_values=("",))
    assert "a missing-value marker" not in caplog.text


def test_a_marker_common_in_a_column_is_warned_of_under_drop_and_named_when_refused(
    tmp_path, caplog
):
    """NA (North America) on a third of a column's rows: data.missing='drop' dropped them, a
    whole category, with an information line alone, and the refusal under 'error' advised
    'drop' first (a probe). Both now say the marker may be a category."""
    markets = ["NA"] * 40 + ["EU"] * 40 + ["APAC"] * 40
    body = [[i, m] for i, m in enumerate(markets)]
    path = write(tmp_path / "m.csv", body, header=["id", "Market"])
    caplog.set_level("WARNING")
    ds = load(path, missing="drop", scaling="none", val_fraction=0.2)
    assert len(ds.train_indices) + len(ds.val_indices) == 80
    (line,) = [r.getMessage() for r in caplog.records if "a missing-value marker" in r.getMessage()]
    assert (
        "column 'Market': 'NA', a missing-value marker (data.na_values), is 40 of the 120 rows'"
        in (line)
    )
    assert "data.missing='drop' dropped those rows" in line and "without it" in line
    with pytest.raises(UserError, match=r"; 'NA' in 40 of its 120 rows: if a category here \(NA"):
        load(path, scaling="none", val_fraction=0.2)
    # NA's own cells counted, not every missing one: 1 NA beside 15 empty cells, no hint.
    few = [[i, "NA" if i == 3 else "" if i % 7 == 0 else "EU"] for i in range(100)]
    with pytest.raises(UserError) as e:
        load(write(tmp_path / "f.csv", few, header=["id", "Market"]), scaling="none")
    assert "North America" not in str(e.value)
    # Among numbers, NA is a missing number: no such hint, nor a warning under 'drop'.
    counts = [[i, "NA" if i % 3 == 0 else i % 11] for i in range(120)]
    path = write(tmp_path / "c.csv", counts, header=["id", "count"])
    with pytest.raises(UserError) as e:
        load(path, scaling="none", val_fraction=0.2)
    assert "North America" not in str(e.value)
    caplog.clear()
    load(path, missing="drop", scaling="none", val_fraction=0.2)
    assert "a missing-value marker" not in caplog.text


@pytest.mark.parametrize(
    "cell, shown",
    [
        (lambda i: f"({1000 + i:,})" if i % 2 == 0 else f"{2000 + i:,}", "'(1,000)'"),  # grouped
        (lambda i: f"(-{i})" if i % 3 == 0 else str(i), "'(-0)'"),
        (lambda i: f'"{i}.5"' if i % 2 == 0 else f"'{i}'", "'\"0.5\"'"),  # quotes in the cells
    ],
)
def test_numbers_in_parentheses_or_quotes_are_refused_not_made_categories(tmp_path, cell, shown):
    """An accounting export's (1,055) beside 3,580, and numbers in literal quotes, became a
    categorical column of ~150 values with a generic warning (a probe). Few such values (a
    survey's answers "(1)".."(5)") and pairs "(0, 3)" are categories still (a review)."""
    body = [[i, "n/a" if i == 7 else cell(i)] for i in range(60)]
    path = write(tmp_path / "p.csv", body, header=["a", "bal"])
    with pytest.raises(UserError) as e:
        load(path)
    said = str(e.value)
    assert "column 'bal' holds numbers in parentheses (an accounting negative) or in quote" in said
    assert f"row 1 (line 2) {shown}" in said and "name it in data.categorical_columns" in said
    assert said.endswith("; add ['n/a'] to data.na_values if they mark missing values")
    assert load(path, categorical_columns=("bal",)).preprocessor.kinds[1] == "categorical"
    for name, text in [
        ("t", lambda i: ["(other)", "a (b)", "x"][i % 3]),  # words in parentheses
        ("s", lambda i: f"({1 + i % 5})"),  # a survey's answers
        ("c", lambda i: f"({i % 7}, {i % 5})"),  # pairs, 35 of them
    ]:
        rows = [[i, text(i)] for i in range(60)]
        kinds = load(write(tmp_path / f"{name}.csv", rows, header=["a", "b"])).preprocessor.kinds
        assert kinds[1] == "categorical", name


@pytest.mark.parametrize("missing", ["error", "impute", "drop"])
def test_rows_without_any_value_are_left_out_and_said(tmp_path, caplog, missing):
    """A spreadsheet's empty rows below its data, saved as ',,' lines: imputed, three trained
    as made-up rows of the columns' means (said only as filled values), and refused as missing
    cells under 'error' (a probe). Left out, with their rows and lines named."""
    body = [[i, i % 7, "ab"[i % 2]] for i in range(40)] + [["", "", ""]] * 3
    path = write(tmp_path / "e.csv", body, header=["a", "b", "c"])
    caplog.set_level("WARNING")
    ds = load(path, missing=missing, scaling="none", val_fraction=0.2)
    assert len(ds.train_indices) + len(ds.val_indices) == 40
    assert (
        "3 row(s) without a value in any feature column left out, at row 41 (line 42), row 42"
        in (caplog.text)
    )
    assert "filled" not in caplog.text
    caplog.clear()
    words = [["ab"[i % 2], "xyz"[i % 3]] for i in range(40)] + [["", ""]] * 3
    path = write(tmp_path / "w.csv", words, header=["a", "b"])
    ds = load(path, missing=missing, na_values=("NA",))  # '' a category here: rows kept
    assert len(ds.train_indices) + len(ds.val_indices) == 43 and "left out" not in caplog.text
    one = [[i, "" if i == 5 else i % 7, "ab"[i % 2]] for i in range(40)]  # one cell: no row
    load(write(tmp_path / "o.csv", one, header=["a", "b", "c"]), missing="impute")
    assert "left out" not in caplog.text


def test_a_file_is_told_apart_from_another_format_by_its_first_bytes(tmp_path):
    """A file named for another format than its bytes met the reader its name picked (a
    probe): told apart by its first bytes, but a CSV whose first column is named PAR1
    (Parquet's first bytes, which a Parquet file also ends with) is read as one, and a file
    whose bytes say its own format is not refused."""
    path = tmp_path / "p.csv"
    path.write_text("PAR1,b\n" + "".join(f"{i},{i % 3}\n" for i in range(20)))
    assert data.read_table(str(path)).columns == ["PAR1", "b"]
    idx = tmp_path / "images.npy"  # MNIST's images (unsigned bytes, 3 dimensions)
    idx.write_bytes(b"\x00\x00\x08\x03" + np.array([2, 2, 2], ">i4").tobytes() + bytes(8))
    with pytest.raises(UserError, match=r"is an IDX file of images .*\.\.\.-images-idx3-ubyte\)$"):
        data.read_table(str(idx))
    np.save(tmp_path / "ok.npy", np.ones((3, 2)))
    assert len(data.read_table(str(tmp_path / "ok.npy")).columns) == 2


def test_a_header_longer_than_the_sniffed_sample_is_read_whole(tmp_path):
    """A 6,000-column header (80 KB) was cut at the 64 KB sample the delimiter is sniffed
    from: "line 2 (data row 1) has 6000 cells but the header ... has 5042 columns" (a probe).
    The sample now holds the header and two rows; a cell longer than Python's csv field limit
    (128 KB) in them does not make the file read as one without rows."""
    names = [f"feature_{i:04d}" for i in range(6000)]
    x = np.random.default_rng(0).normal(size=(10, 6000)).round(2)
    path = write(tmp_path / "wide.csv", [list(map(str, r)) for r in x], header=names)
    ds = load(path)
    assert ds.columns == names and len(ds.train) + len(ds.val) == 10
    body = rows(12)
    body[0][1] = "X" * 200_000  # a category of 200,000 characters, in the first data row
    ds = load(write(tmp_path / "long_cell.csv", body))
    assert len(ds.train) + len(ds.val) == 12


def test_the_sniffed_sample_of_a_file_of_cr_line_ends_is_its_first_block(tmp_path):
    """A file of classic-Mac line ends (CR alone) was read whole (up to 64 MB) for its sample,
    and the sample grown by copying: 0.17 -> 16.9 s for a 44 MB file (a review). CRs end
    lines there: the first 64 KB hold the header and enough rows."""
    body = "num,cat,flag,int\r" + "".join(f"{i}.5,red,TRUE,{i}\r" for i in range(30_000))
    (tmp_path / "cr.csv").write_bytes(body.encode())
    text, _, whole = csv_reader._sample(str(tmp_path / "cr.csv"), "cr.csv")
    assert not whole and len(text) <= 1 << 16 and text.startswith("num,cat,flag,int\r0.5,red")
    assert text.endswith(f",TRUE,{text.count(chr(13)) - 2}\r")  # whole lines (a review)
    assert len(load(str(tmp_path / "cr.csv")).columns) == 4


def test_repeated_names_are_found_by_one_count_and_kept_exact():
    """Names were counted once each (quadratic: 4.3 s of a 20,000-column header), then by
    numpy's unique, which made one long name gigabytes and cut trailing NULs ('a' and 'a\\0'
    read as one name: a review)."""
    assert repeated(["b", "a", "b", "a\x00", "c", "a", "é", "é"]) == ["a", "b", "é"]
    frame = pd.DataFrame([[1, 2]], columns=["a", "a\x00"])
    assert cells.frame_columns(frame)[0] == ["a", "a\x00"]
    with pytest.raises(UserError, match=r"repeated column names \['x'\]"):
        cells.frame_columns(pd.DataFrame([[1, 2, 3]], columns=["x", "y", "x"]))


def test_a_long_cell_or_name_is_quoted_cut_short_in_messages(tmp_path, caplog):
    """A 100,000-character cell made an error of one 100,165-character line, and a
    200,000-character category a warning as long (a probe): texts past 60 characters are
    quoted by their start and their length."""
    p = load(write(tmp_path / "a.csv", rows(20))).preprocessor
    with pytest.raises(UserError) as e:
        p.transform([["X" * 100_000, "red", "TRUE", "7"]])
    said = f"row 1 (index 0) {'X' * 40!r}... (100,000 characters); expected a number"
    assert said in str(e.value)
    assert len(str(e.value)) < 300
    caplog.set_level("WARNING")
    p.transform([["1.0", "Y" * 200_000, "TRUE", "7"]])
    assert f"[{'Y' * 40!r}... (200,000 characters)]" in caplog.text and len(caplog.text) < 600
    with pytest.raises(UserError, match=r"extra 'ZZZZ.*'\.\.\. \(70 characters\); expected") as e:
        p.transform(pd.DataFrame({**{c: [1] for c in HEADER}, "Z" * 70: [1]}))


def _same_preprocessors(p, q) -> None:
    """Every attribute of two preprocessors equal (arrays element for element)."""
    a, b = vars(p), vars(q)
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, b[key], err_msg=key)
        else:
            assert value == b[key], key


@pytest.mark.parametrize("kind", ["table", "binarised digits"])
def test_preprocessor_json_keeps_every_setting(tmp_path, kind):
    """preprocessor.json, written and read back, gives the preprocessor it was written from,
    every attribute: a round trip that lost data.thousands passed every data test (the run
    then refused the very file it trained on, "'1,037' ... not numbers": a mutation check);
    the other round-trip tests compare transforms of files that need none of the settings."""
    if kind == "table":
        body = with_holes()
        body[1][3], body[2][1] = "1,037", "violet"
        header = ["num", "cat", "flag", "int"]
        path = write(
            tmp_path / "t.csv", [[*r, f"y{i % 2}"] for i, r in enumerate(body)], header + ["label"]
        )
        options = dict(thousands=",", missing="impute", categorical="onehot", scaling="standard")
        p = load(path, label_column="label", **options).preprocessor
        assert (p.thousands, p.label_column, p.missing, p.categorical) == (
            ",",
            "label",
            "impute",
            "onehot",
        )
        assert p.fill and p.ranges is not None
    else:
        p = data.load_dataset(cfg(name="digits", binarize="fixed")).preprocessor
        assert p.pixel_max == 16 and p.threshold is not None
    q = preprocess_io.from_dict(json.loads(json.dumps(preprocess_io.to_dict(p))))
    _same_preprocessors(p, q)
    data.save_preprocessor(p, str(tmp_path / "pre.json"))
    _same_preprocessors(p, data.load_preprocessor(str(tmp_path / "pre.json")))


def test_an_empty_cell_left_unread_by_a_given_na_values_says_how_to_keep_it(tmp_path):
    """data.na_values='-' replaces the defaults, '' among them: an empty cell then refused as
    "add the cell's text to data.na_values", with its text ''. The refusal says how."""
    body = [[i, "" if i == 1 else "-" if i == 2 else i % 9] for i in range(30)]
    path = write(tmp_path / "n.csv", body, header=["a", "b"])
    with pytest.raises(UserError, match=r"row 2 \(line 3\) ''; .*an empty cell is missing only "):
        load(path, na_values=("-",))
    assert load(path, na_values=("", "-"), missing="impute").train.shape[1] == 2
