"""Tests for ae_jax.data: known answers on small files written to tmp_path."""

import csv
import dataclasses
import gzip
import json
import sys
import tracemalloc

import ml_collections
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from ae_jax import config as config_lib
from ae_jax import data, default_config
from ae_jax.data import bundled, cells, preprocess_io, scaling
from ae_jax.errors import UserError
from tests.conftest import MONTHS, VISITORS, vocab_by_rule
from tests.conftest import PURCHASE_COLUMNS as HEADER

NUMERIC = [c for c in HEADER if c not in ("Month", "VisitorType", "Weekend", "Revenue")]


def shopper_rows(n=60, seed=0):
    """Deterministic rows in the UCI online-shoppers layout (all cells as strings)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rows.append(
            [
                str(rng.integers(0, 10)),
                f"{rng.uniform(0, 300):.3f}",
                str(rng.integers(0, 4)),
                f"{rng.uniform(0, 100):.3f}",
                str(rng.integers(1, 200)),
                f"{rng.uniform(0, 5000):.3f}",
                f"{rng.uniform(0, 0.2):.5f}",
                f"{rng.uniform(0, 0.2):.5f}",
                f"{rng.uniform(0, 50):.4f}",
                f"{rng.choice([0.0, 0.2, 0.4, 0.8, 1.0]):.1f}",
                MONTHS[i % 10],
                str(rng.integers(1, 5)),
                str(rng.integers(1, 9)),
                str(rng.integers(1, 10)),
                str(rng.integers(1, 20)),
                VISITORS[i % 3],
                ["TRUE", "FALSE", "True", "false"][i % 4],
                ["FALSE", "TRUE"][int(rng.integers(2))],
            ]
        )
    return rows


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def cfg(**kw):
    base = dict(
        name="digits",
        path="",
        label_column="",
        keep_label=False,
        categorical="ordinal",
        scaling="minmax",
        val_fraction=0.2,
        split_seed=0,
        npz_key="",
    )
    base.update(kw)
    return ml_collections.ConfigDict(base)


def vocabularies(rows, train_rows):
    """Month's and VisitorType's vocabularies by the documented rule, from the training rows."""
    return {
        name: vocab_by_rule([rows[i][HEADER.index(name)].strip() for i in train_rows])
        for name in ("Month", "VisitorType")
    }


def encoded_by_hand(rows, train_rows):
    """Raw rows -> ordinal/boolean encoded float64 matrix, computed independently."""
    vocab = vocabularies(rows, train_rows)
    out = np.zeros((len(rows), 18))
    for i, r in enumerate(rows):
        for j, (name, cell) in enumerate(zip(HEADER, r, strict=True)):
            if name in vocab:
                v = vocab[name]
                out[i, j] = v.index(cell.strip()) if cell.strip() in v else len(v) - 1
            elif name in ("Weekend", "Revenue"):
                out[i, j] = cell.lower() == "true"
            else:
                out[i, j] = float(cell)
    return out


@pytest.fixture
def shop(tmp_path):
    rows = shopper_rows()
    rows[0][10] = "  Feb "  # whitespace around a cell must not create a new category
    return write_csv(tmp_path / "shop.csv", rows), shopper_rows()


def test_purchase_csv_with_only_path(shop):
    path, rows = shop
    ds = data.load_dataset(ml_collections.ConfigDict({"path": path}))
    assert ds.name == "shop.csv" and ds.columns == HEADER and ds.num_features == 18
    assert ds.train.shape == (48, 18) and ds.val.shape == (12, 18)
    assert ds.train.dtype == np.float32 and ds.labels_train is None and ds.image_shape is None
    # minmax fitted on train rows only: exact values from a hand computation. Ordinal codes
    # span their vocabulary (0 .. n - 1, '<unseen>' last); true/false columns are not scaled.
    enc = encoded_by_hand(rows, ds.train_indices)
    tr = enc[ds.train_indices]
    lo, hi = tr.min(0), tr.max(0)
    vocab = vocabularies(rows, ds.train_indices)
    for name in vocab:
        j = HEADER.index(name)
        lo[j], hi[j] = 0.0, len(vocab[name]) - 1
    for j in (16, 17):
        lo[j], hi[j] = 0.0, 1.0
    np.testing.assert_array_equal(ds.train, ((tr - lo) / (hi - lo)).astype(np.float32))
    np.testing.assert_array_equal(
        ds.val, ((enc[ds.val_indices] - lo) / (hi - lo)).astype(np.float32)
    )
    numeric = [HEADER.index(c) for c in NUMERIC]
    np.testing.assert_array_equal(ds.train[:, numeric].min(0), 0.0)
    np.testing.assert_array_equal(ds.train[:, numeric].max(0), 1.0)


def test_ordinal_and_boolean_codes(shop):
    path, rows = shop
    ds = data.load_dataset(cfg(path=path, scaling="none"))
    x = np.concatenate([ds.train, ds.val])[np.argsort(np.r_[ds.train_indices, ds.val_indices])]
    month, visitor, weekend = x[:, 10], x[:, 15], x[:, 16]
    vocab = vocabularies(rows, ds.train_indices)
    assert ds.preprocessor.categories["Month"] == vocab["Month"]
    np.testing.assert_array_equal(month, [vocab["Month"].index(MONTHS[i % 10]) for i in range(60)])
    np.testing.assert_array_equal(visitor[:3], [vocab["VisitorType"].index(v) for v in VISITORS])
    np.testing.assert_array_equal(weekend[:4], [1, 0, 1, 0])  # TRUE, FALSE, True, false
    assert ds.preprocessor.kinds[10] == "categorical" and ds.preprocessor.kinds[16] == "boolean"
    np.testing.assert_array_equal(x, encoded_by_hand(rows, ds.train_indices).astype(np.float32))


def test_onehot_expands_names_and_widths(shop):
    path, _ = shop
    ds = data.load_dataset(cfg(path=path, categorical="onehot", scaling="none"))
    vocab = vocabularies(shopper_rows(), ds.train_indices)
    assert ds.num_features == 16 + 11 + 4  # ten months and three visitor types, each + unseen
    assert ds.columns[10:21] == [f"Month={m}" for m in vocab["Month"]]
    assert ds.columns[25:29] == [f"VisitorType={v}" for v in vocab["VisitorType"]]
    assert ds.columns[20] == "Month=<unseen>"
    np.testing.assert_array_equal(ds.train[:, 10:21].sum(1), 1.0)
    np.testing.assert_array_equal(ds.train[:, 20], 0.0)  # the training split has no unseen
    assert ds.preprocessor.input_columns == HEADER


def test_standard_scaling(shop):
    path, _ = shop
    ds = data.load_dataset(cfg(path=path, scaling="standard"))
    scaled = list(range(16))  # true/false columns are 0/1 indicators, never scaled
    np.testing.assert_allclose(ds.train[:, scaled].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.train[:, scaled].std(0), 1.0, atol=1e-5)
    assert set(np.unique(ds.train[:, 16:])) == {0.0, 1.0}


def test_split_deterministic_disjoint_complete(shop):
    path, _ = shop
    a, b = data.load_dataset(cfg(path=path)), data.load_dataset(cfg(path=path))
    c = data.load_dataset(cfg(path=path, split_seed=1))
    np.testing.assert_array_equal(a.train_indices, b.train_indices)
    np.testing.assert_array_equal(a.train, b.train)
    assert not set(a.train_indices) & set(a.val_indices)
    assert sorted(np.r_[a.train_indices, a.val_indices]) == list(range(60))
    assert set(c.val_indices) != set(a.val_indices)
    perm = np.random.default_rng(0).permutation(60)
    np.testing.assert_array_equal(a.val_indices, np.sort(perm[:12]))


def test_label_column_excluded_or_kept(shop):
    path, rows = shop
    ds = data.load_dataset(cfg(path=path, label_column="Revenue"))
    assert ds.num_features == 17 and "Revenue" not in ds.columns
    expected = np.array([r[17] == "TRUE" for r in rows], dtype=np.int64)
    np.testing.assert_array_equal(ds.labels_train, expected[ds.train_indices])
    np.testing.assert_array_equal(ds.labels_val, expected[ds.val_indices])
    kept = data.load_dataset(cfg(path=path, label_column="Revenue", keep_label=True))
    assert kept.num_features == 18 and kept.columns[-1] == "Revenue"
    np.testing.assert_array_equal(kept.labels_train, ds.labels_train)
    # The label column of a new file is ignored by transform (the model never saw it).
    full = data.read_table(path)
    np.testing.assert_array_equal(ds.preprocessor.transform(full.take(ds.train_indices)), ds.train)


def test_a_missing_value_refusal_names_every_column_that_has_some(tmp_path):
    """One pass fixes the file: the refusal names the first column's rows and the others."""
    rows = shopper_rows(20)
    rows[2][10], rows[5][16], rows[7][16] = "", "NA", ""
    path = write_csv(tmp_path / "m.csv", rows)
    with pytest.raises(
        UserError,
        match=r"column 'Month' has 1 empty .* row 3 \(line 4\) '', "
        r"and 1 other column\(s\) have some too: \['Weekend'\]; expected",
    ):
        data.load_dataset(cfg(path=path))
    # New rows for a model trained without imputation: the same.
    p = data.load_dataset(cfg(path=write_csv(tmp_path / "ok.csv", shopper_rows(20)))).preprocessor
    with pytest.raises(UserError, match=r"have some too: \['Weekend'\]; the model was trained"):
        p.transform(data.read_table(path))


def test_load_dataset_refuses_a_whole_config():
    """Given the whole config, not its data section, every data field would silently take its
    default (the bundled digits)."""
    with pytest.raises(UserError, match=r"load_dataset\(config.data\)"):
        data.load_dataset(default_config())
    with pytest.raises(UserError, match=r"load_dataset\(config.data\)"):
        data.load_dataset(default_config().to_dict())
    assert data.load_dataset(default_config().data).name.startswith("breast")
    # A plain dict of data fields is read, not passed over for the defaults.
    assert data.load_dataset({"name": "breast_cancer"}).name.startswith("breast")


def test_blank_labels_are_a_group_of_their_own(shop, tmp_path):
    """Blank or marker label cells colour a '(missing)' group the legend names, rather than
    an unnamed one; the other labels keep their text."""
    _, rows = shop
    rows = [
        r[:17] + ([""] if i % 5 == 0 else ["NA"] if i % 7 == 0 else r[17:])
        for i, r in enumerate(rows)
    ]
    ds = data.load_dataset(cfg(path=write_csv(tmp_path / "b.csv", rows), label_column="Revenue"))
    labels = np.concatenate([ds.labels_train, ds.labels_val])
    order = np.concatenate([ds.train_indices, ds.val_indices])
    expected = np.array(
        ["(missing)" if i % 5 == 0 or i % 7 == 0 else r[17] for i, r in enumerate(rows)]
    )
    np.testing.assert_array_equal(labels, expected[order])
    assert data.as_labels(np.array(["1", "2", "3"], dtype=object)).tolist() == [1, 2, 3]
    # The run's data.na_values decide ("NA" may be North America); a null is always missing.
    cells = np.array(["NA", "EU", None, ""], dtype=object)
    assert data.as_labels(cells, ("",)).tolist() == ["NA", "EU", "(missing)", "(missing)"]
    # Numbers with blanks are numbers, the blanks NaN (drawn grey on a colour bar): they were
    # all text, a legend of numbers sorted as text ("-10.27" before "-9.42").
    numbers = data.as_labels(np.array(["1.5", "", "-2", None, "NA"], dtype=object))
    np.testing.assert_array_equal(numbers, [1.5, np.nan, -2.0, np.nan, np.nan])


def test_transform_reproduces_train_rows(shop, tmp_path):
    path, rows = shop
    ds = data.load_dataset(cfg(path=path, categorical="onehot"))
    p = ds.preprocessor
    np.testing.assert_array_equal(
        p.transform(data.read_table(path).take(ds.train_indices)), ds.train
    )
    raw = np.array(rows, dtype=object)[ds.train_indices]
    np.testing.assert_array_equal(p.transform(raw), ds.train)
    # Columns are matched by name, so a file with another column order works too.
    order = list(reversed(range(18)))
    other = write_csv(
        tmp_path / "rev.csv", [[r[j] for j in order] for r in rows], [HEADER[j] for j in order]
    )
    np.testing.assert_array_equal(
        p.transform(data.read_table(other)), p.transform(np.array(rows, dtype=object))
    )
    np.testing.assert_allclose(
        p.inverse_scale(ds.train)[:, :10],
        encoded_by_hand(rows, ds.train_indices)[ds.train_indices, :10],
        rtol=1e-6,
    )


def test_preprocessor_json_round_trip(shop, tmp_path):
    path, rows = shop
    p = data.load_dataset(cfg(path=path, categorical="onehot", scaling="standard")).preprocessor
    q = preprocess_io.from_dict(json.loads(json.dumps(preprocess_io.to_dict(p))))
    raw = np.array(rows, dtype=object)
    np.testing.assert_array_equal(q.transform(raw), p.transform(raw))
    assert q.columns == p.columns and q.input_columns == p.input_columns
    data.save_preprocessor(p, str(tmp_path / "pre.json"))
    r = data.load_preprocessor(str(tmp_path / "pre.json"))
    np.testing.assert_array_equal(r.transform(raw), p.transform(raw))


def test_constant_column_warns_once(tmp_path, monkeypatch):
    rows = [[str(i), "5", "7", "a" if i % 2 else "b"] for i in range(10)]
    path = write_csv(tmp_path / "c.csv", rows, ["v", "k1", "k2", "cat"])
    calls = []
    monkeypatch.setattr(scaling.logging, "warning", lambda *a: calls.append(a[0] % a[1:]))
    ds = data.load_dataset(cfg(path=path))
    assert len(calls) == 1 and "'k1', 'k2'" in calls[0]
    np.testing.assert_array_equal(ds.train[:, 1:3], 0.0)
    assert np.isfinite(ds.train).all()


def test_npy_2d_and_images(tmp_path):
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    np.save(tmp_path / "a.npy", x)
    ds = data.load_dataset(cfg(path=str(tmp_path / "a.npy"), scaling="none"))
    assert ds.columns == ["x_0", "x_1", "x_2", "x_3"] and ds.image_shape is None
    np.testing.assert_array_equal(ds.train, x[ds.train_indices])
    img = np.random.default_rng(0).uniform(size=(10, 3, 2)).astype(np.float32)
    np.save(tmp_path / "img.npy", img)
    ds = data.load_dataset(cfg(path=str(tmp_path / "img.npy"), scaling="none"))
    assert ds.image_shape == (3, 2) and ds.num_features == 6 and ds.columns[0] == "pixel_0"
    np.testing.assert_array_equal(ds.val, img.reshape(10, 6)[ds.val_indices])
    np.save(
        tmp_path / "rgb.npy", np.zeros((5, 2, 2, 3), np.uint8) + np.arange(5)[:, None, None, None]
    )
    assert data.load_dataset(cfg(path=str(tmp_path / "rgb.npy"))).image_shape == (2, 2, 3)


def test_npz_key_selection_and_labels(tmp_path):
    x, y, z = np.eye(10, 3), np.arange(10), np.full((10, 2), 3.0)
    np.savez(tmp_path / "a.npz", x=x, y=y, z=z)
    ds = data.load_dataset(cfg(path=str(tmp_path / "a.npz"), scaling="none"))
    assert ds.num_features == 3
    np.testing.assert_array_equal(ds.labels_train, y[ds.train_indices])
    ds = data.load_dataset(cfg(path=str(tmp_path / "a.npz"), npz_key="z", scaling="none"))
    np.testing.assert_array_equal(ds.train, 3.0)
    # A model trained on an npz without labels still accepts a new npz that has "y".
    np.savez(tmp_path / "plain.npz", x=x)
    p = data.load_dataset(cfg(path=str(tmp_path / "plain.npz"))).preprocessor
    np.testing.assert_array_equal(
        p.transform(data.read_table(str(tmp_path / "a.npz"))), p.transform(x)
    )
    np.savez(tmp_path / "b.npz", feats=x, lab=y)
    ds = data.load_dataset(cfg(path=str(tmp_path / "b.npz"), label_column="lab", keep_label=True))
    assert ds.columns == ["x_0", "x_1", "x_2", "lab"]
    with pytest.raises(
        UserError,
        match=r"no array 'x' and not exactly one other array; set "
        r"data.npz_key to one of its arrays: \['feats', 'lab'\]",
    ):
        data.load_dataset(cfg(path=str(tmp_path / "b.npz")))
    with pytest.raises(UserError, match=r"data.npz_key 'w' is not an array.*'x', 'y', 'z'"):
        data.load_dataset(cfg(path=str(tmp_path / "a.npz"), npz_key="w"))


def test_limit_cuts_the_training_split_only(shop):
    path, _ = shop
    full = data.load_dataset(cfg(path=path))
    ds = data.load_dataset(cfg(path=path, limit=10))
    np.testing.assert_array_equal(ds.train_indices, full.train_indices[:10])
    np.testing.assert_array_equal(ds.val_indices, full.val_indices)  # same validation rows
    assert ds.train.shape == (10, 18) and ds.train.min() == 0 and ds.train.max() == 1
    assert len(data.load_dataset(cfg(path=path, limit=1000)).train) == 48


def test_preprocessor_without_threshold_field_still_loads(shop):
    """preprocessor.json files written before image sets existed have no "threshold"."""
    path, rows = shop
    p = data.load_dataset(cfg(path=path)).preprocessor
    d = preprocess_io.to_dict(p)
    assert d.pop("threshold") is None
    raw = np.array(rows, dtype=object)
    np.testing.assert_array_equal(preprocess_io.from_dict(d).transform(raw), p.transform(raw))


def test_bundled_sets():
    ds = data.load_dataset(cfg(name="digits", scaling="none"))
    assert len(ds.train) + len(ds.val) == 1797 and ds.num_features == 64
    assert ds.image_shape == (8, 8) and ds.columns[63] == "pixel_63"
    # Pixel counts 0..16 divided by 16 under every scaling but "standard": never each pixel
    # by its own range (a border pixel lit at most 3/16 in training would reach 2.67).
    counts = load_digits().data
    np.testing.assert_array_equal(ds.val, (counts[ds.val_indices] / 16).astype(np.float32))
    np.testing.assert_array_equal(data.load_dataset(cfg(name="digits")).val, ds.val)
    standard = data.load_dataset(cfg(name="digits", scaling="standard"))
    train = counts[standard.train_indices]
    expected = (counts[standard.val_indices] - train.mean()) / train.std()  # one channel
    np.testing.assert_allclose(standard.val, expected, rtol=1e-5, atol=1e-6)
    assert set(ds.labels_train) == set(range(10))
    binary = data.load_dataset(cfg(name="digits", scaling="none", binarize="fixed"))
    np.testing.assert_array_equal(binary.train, (ds.train > 0.5).astype(np.float32))
    # The threshold is part of the saved preprocessing: new rows are binarised alike.
    new_rows = binary.preprocessor.transform(counts[binary.val_indices])
    np.testing.assert_array_equal(new_rows, binary.val)
    np.testing.assert_array_equal(binary.labels_val, ds.labels_val)
    bc = data.load_dataset(cfg(name="breast_cancer"))
    assert len(bc.train) + len(bc.val) == 569 and bc.num_features == 30
    assert bc.columns[0] == "mean radius" and set(bc.labels_val) <= {0, 1}


@pytest.mark.parametrize(
    "name, loader", [("breast_cancer", load_breast_cancer), ("digits", load_digits)]
)
def test_bundled_files_are_read_as_sklearn_reads_them_without_importing_it(
    name, loader, monkeypatch, tmp_path
):
    """The bundled sets are read from scikit-learn's package files (importing it costs ~2.5 s
    a process): the same values, dtypes, targets and names as its loader; where its files are
    missing, its loader is used."""
    bunch, sklearn = loader(), sys.modules["sklearn"]
    names = [str(c) for c in bunch.feature_names] if name == "breast_cancer" else None
    monkeypatch.setitem(sys.modules, "sklearn", None)  # any import of it now fails
    x, target, columns = bundled.read(name)
    assert x.dtype == bunch.data.dtype and target.dtype == bunch.target.dtype
    np.testing.assert_array_equal(x, bunch.data)
    np.testing.assert_array_equal(target, bunch.target)
    assert columns == (names or [f"pixel_{j}" for j in range(64)])
    monkeypatch.setitem(sys.modules, "sklearn", sklearn)
    monkeypatch.setattr(bundled, "_data_folder", lambda: str(tmp_path / "moved"))
    x2, target2, columns2 = bundled.read(name)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(target2, target)
    assert columns2 == columns
    # Files where scikit-learn keeps them but in a text layout NumPy cannot parse (a future
    # release's): its loader again, not a traceback blamed on the user.
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "breast_cancer.csv").write_text("569,30,malignant,benign\n1;2;3\n")
    with gzip.open(garbled / "digits.csv.gz", "wt") as f:
        f.write("0 0 5 13\n")
    monkeypatch.setattr(bundled, "_data_folder", lambda: str(garbled))
    x3, target3, columns3 = bundled.read(name)
    np.testing.assert_array_equal(x3, x)
    np.testing.assert_array_equal(target3, target)
    assert columns3 == columns


def test_an_array_file_matches_the_trained_columns_by_position(tmp_path):
    """An .npy has no column names (read as x_j): a model trained on named columns (the
    bundled digits' pixel_j) takes it by position when the width matches, as it takes arrays."""
    p = data.load_dataset(cfg(name="digits")).preprocessor
    counts = load_digits().data[:20]
    np.save(tmp_path / "rows.npy", counts)
    from_file = p.transform(data.read_table(str(tmp_path / "rows.npy")))
    np.testing.assert_array_equal(from_file, p.transform(counts))
    np.testing.assert_array_equal(from_file, (counts / 16).astype(np.float32))
    np.testing.assert_array_equal(p.transform(counts.reshape(-1, 8, 8)), from_file)  # images
    with pytest.raises(UserError, match=r"'pixel_2' has 0.3125 at row 1 .*trained on pixel int"):
        p.transform(counts / 16)  # already divided: it would be divided again
    np.save(tmp_path / "narrow.npy", counts[:, :63])
    with pytest.raises(
        UserError, match=r"trained on 64 columns .*narrow.npy' has 63 columns, by position$"
    ):
        p.transform(data.read_table(str(tmp_path / "narrow.npy")))


def test_numeric_columns_of_a_few_whole_numbers_are_named_as_possible_codes(tmp_path, caplog):
    """The purchase table's OperatingSystems, Browser, Region and TrafficType are integer ids
    of categories: read as numbers, as a table of counts is, and trained so unsaid (a probe).
    The data line names numeric columns of 2 to 32 whole values, with how many (a 0/1 flag
    too: a probe's Revenue written so had a Gaussian likelihood unsaid); not a column of
    fractions, one of 48 whole values, nor one named in data.categorical_columns."""
    rows = "".join(f"{1 + i % 5},{i},{i % 7 / 4},{i % 2},c{i % 3}\n" for i in range(60))
    (tmp_path / "p.csv").write_text("region,count,fraction,two,kind\n" + rows)
    caplog.set_level("INFO")
    data.load_dataset(cfg(path=str(tmp_path / "p.csv"), scaling="standard"))
    said = [r.getMessage() for r in caplog.records if "a few whole numbers" in r.getMessage()]
    assert said == [
        "data: p.csv: numeric columns of a few whole numbers, read as numbers: region (5 "
        "values), two (2 values); if any codes categories (a region or browser id, a 0/1 "
        "flag), name it in data.categorical_columns"
    ]
    # Codes of millions, standardised: float32 moved a 0 by ~0.003 (not named, 198 of 200).
    big = "".join(f"{[0, 1000003, 2000011, 3000017][i % 4]},{i}\n" for i in range(60))
    (tmp_path / "big.csv").write_text("id,count\n" + big)
    caplog.clear()
    data.load_dataset(cfg(path=str(tmp_path / "big.csv"), scaling="standard"))
    assert "read as numbers: id (4 values);" in caplog.text
    caplog.clear()
    codes = ("region", "two")
    ds = data.load_dataset(cfg(path=str(tmp_path / "p.csv"), categorical_columns=codes))
    assert ds.preprocessor.kinds[0] == ds.preprocessor.kinds[3] == "categorical"
    assert "a few whole numbers" not in caplog.text


def test_a_feature_column_named_as_labels_are_is_named_with_data_label_column(tmp_path, caplog):
    """The bundled breast-cancer table keeps its 'target' out of the features; the same table
    as a CSV trained it as a feature, unsaid (a probe). Said, with the field that keeps it out;
    not once a label column is named, or data.label_column='none' says there is none, nor for a
    column 'y' (a table of points' second coordinate)."""
    load_breast_cancer(as_frame=True).frame.to_csv(tmp_path / "bc.csv", index=False)
    caplog.set_level("WARNING")
    ds = data.load_dataset(cfg(path=str(tmp_path / "bc.csv")))
    assert ds.num_features == 31
    said = [r.getMessage() for r in caplog.records if "label" in r.getMessage()]
    assert said == [
        f"data.path '{tmp_path / 'bc.csv'}': column 'target' is trained as a feature, as "
        "data.label_column names no label: if it is the rows' label, set "
        "data.label_column='target' (kept out of the features, the figures coloured by it); "
        "data.label_column='none' says there is none"
    ]
    for label, features in [("target", 30), ("none", 31)]:
        caplog.clear()
        ds = data.load_dataset(cfg(path=str(tmp_path / "bc.csv"), label_column=label))
        assert ds.num_features == features and "is trained as a feature" not in caplog.text
    rows = "".join(f"{i / 7:.3f},{(i * i) % 11 / 3:.3f},{i % 3}\n" for i in range(40))
    (tmp_path / "points.csv").write_text("x,y,Class\n" + rows)
    caplog.clear()
    data.load_dataset(cfg(path=str(tmp_path / "points.csv")))
    assert caplog.text.count("is trained as a feature") == 1 and "column 'Class'" in caplog.text


def test_each_unknown_categorical_column_gets_its_closest_name(tmp_path):
    """'region,browser' was refused with "did you mean 'Region'?" alone (a probe)."""
    rows = "".join(f"{i % 3},{i % 4},{i}\n" for i in range(30))
    (tmp_path / "p.csv").write_text("Region,Browser,x\n" + rows)
    with pytest.raises(UserError, match=r"\(did you mean 'Region' for 'region', 'Browser' for"):
        data.load_dataset(
            cfg(path=str(tmp_path / "p.csv"), categorical_columns=("region", "browser"))
        )


def test_a_categorical_column_of_near_unique_values_is_said(tmp_path, caplog):
    """Dates, identifiers: read as text, each its own category, silently codes fed to the
    loss unless the user is told (percentages are refused: test_bad_inputs)."""
    rows = "".join(f"2024-03-{i + 1:02d}T{i % 3}h,{i % 4},c{i % 3}\n" for i in range(40))
    (tmp_path / "p.csv").write_text("share,n,kind\n" + rows)
    caplog.set_level("WARNING")
    ds = data.load_dataset(cfg(path=str(tmp_path / "p.csv")))
    assert ds.preprocessor.kinds == ["categorical", "numeric", "categorical"]
    assert "column 'share' becomes a categorical column of 40 distinct values in 40" in caplog.text
    assert "'kind'" not in caplog.text  # 3 categories in 40 rows: categories


def test_a_categorical_column_of_one_category_is_said_as_a_constant_number_is(tmp_path, caplog):
    """One category in the training split carries nothing: said, as a constant numeric
    column is; two are categories."""
    rows = "".join(f"{i % 4},x,c{i % 2}\n" for i in range(40))
    (tmp_path / "p.csv").write_text("n,one,two\n" + rows)
    caplog.set_level("WARNING")
    ds = data.load_dataset(cfg(path=str(tmp_path / "p.csv")))
    assert ds.preprocessor.kinds == ["numeric", "categorical", "categorical"]
    said = "1 categorical column(s) with a single category in the training split, which carry "
    assert said + "no information: 'one' (all 'x')" in caplog.text
    assert "'two'" not in caplog.text


def test_a_float_image_array_is_scaled_per_channel_not_per_pixel(tmp_path):
    """Images stored as floats (N, H, W[, C]): 'minmax' is one range per colour channel, so
    the [0, 1] digits stay themselves (per pixel, a rarely lit one was stretched 5x)."""
    grey = (load_digits().images / 16).astype(np.float32)  # (1797, 8, 8), in [0, 1]
    np.save(tmp_path / "grey.npy", grey)
    ds = data.load_dataset(cfg(path=str(tmp_path / "grey.npy")))
    assert ds.image_shape == (8, 8)
    np.testing.assert_allclose(ds.val, grey.reshape(-1, 64)[ds.val_indices], atol=1e-7)
    rgb = np.random.default_rng(0).uniform(size=(40, 2, 2, 3)) * np.array([1.0, 10.0, 100.0])
    np.save(tmp_path / "rgb.npy", rgb)
    for how in ("minmax", "standard"):
        ds = data.load_dataset(cfg(path=str(tmp_path / "rgb.npy"), scaling=how))
        train = rgb.reshape(40, -1)[ds.train_indices].reshape(-1, 3)
        if how == "minmax":
            offset, scale = train.min(axis=0), train.max(axis=0) - train.min(axis=0)
        else:
            offset, scale = train.mean(axis=0), train.std(axis=0)
        np.testing.assert_allclose(ds.preprocessor.offset, np.tile(offset, 4), rtol=1e-9)
        np.testing.assert_allclose(ds.preprocessor.scale, np.tile(scale, 4), rtol=1e-9)


def test_a_data_frame_is_matched_by_column_name():
    """Reordered columns of a data frame are taken by name, as a CSV's are (by position they
    gave other codes without a word)."""
    p = data.load_dataset(cfg(name="breast_cancer")).preprocessor  # (pandas: a test extra)
    frame = load_breast_cancer(as_frame=True).data.iloc[:10]
    expected = p.transform(frame.to_numpy())
    np.testing.assert_array_equal(p.transform(frame), expected)
    np.testing.assert_array_equal(p.transform(frame[frame.columns[::-1]]), expected)
    with pytest.raises(UserError, match=r"the data frame has 29: missing 'mean radius'"):
        p.transform(frame.drop(columns="mean radius"))
    # One row as a pandas Series (df.iloc[0]), its index the names: it was read as an array,
    # told to reshape, and then matched by position (a probe: other codes, without a word).
    reordered = frame[frame.columns[::-1]]
    np.testing.assert_array_equal(p.transform(reordered.iloc[3]), expected[3:4])


def test_a_data_frame_of_the_training_csv_encodes_as_the_csv(tmp_path):
    """A TRUE/FALSE column made categorical (data.categorical_columns): pandas reads it as
    booleans, whose text 'True' was refused as a case mismatch of 'TRUE' (a probe), so the
    run's own CSV could not be given as a data frame. Booleans take training's spelling."""
    rows = "".join(f"{20 + i % 30},{'TRUE' if i % 3 else 'FALSE'},{i % 7}\n" for i in range(60))
    (tmp_path / "t.csv").write_text("age,member,x\n" + rows)
    ds = data.load_dataset(
        cfg(
            name="",
            path=str(tmp_path / "t.csv"),
            categorical="onehot",
            categorical_columns=("member",),
        )
    )
    p = ds.preprocessor
    assert p.categories["member"][:2] == ["TRUE", "FALSE"]
    frame = pd.read_csv(tmp_path / "t.csv")
    assert frame["member"].dtype == bool
    np.testing.assert_array_equal(
        p.transform(frame), p.transform(data.read_table(str(tmp_path / "t.csv")))
    )
    lower = frame.assign(member=frame["member"].map({True: "true", False: "false"}))
    with pytest.raises(UserError, match=r"only in case"):  # text stays matched exactly
        p.transform(lower)


def test_a_data_frame_s_own_missing_markers_are_missing_values(tmp_path):
    """pandas' NA (string, nullable and pyarrow-backed columns) reads as a missing value, as
    NaN and an empty CSV cell do: it was the text '<NA>', an unseen category, and passed where
    new rows need every value (data.missing='error' or 'drop'). Repeated column names are
    refused, not an IndexError."""
    import pandas as pd  # a test extra

    rows = [f"{i % 7 - 3.5},c{i % 3},{'TRUE' if i % 2 else 'FALSE'},{i % 5}" for i in range(40)]
    for i in (3, 11, 20):  # empty text, boolean and integer cells
        rows[i] = rows[i].split(",")[0] + ",,,"
    (tmp_path / "t.csv").write_text("a,color,flag,n\n" + "\n".join(rows) + "\n")
    p = data.load_dataset(
        cfg(path=str(tmp_path / "t.csv"), missing="impute", categorical="onehot")
    ).preprocessor
    plain = pd.read_csv(tmp_path / "t.csv")  # object columns with NaN: read as missing
    expected = p.transform(plain)
    assert np.isfinite(expected).all()
    for frame in (
        plain.astype({"color": "string"}),
        plain.convert_dtypes(),  # string, boolean and Int64 columns with <NA>
        pd.read_csv(tmp_path / "t.csv", dtype_backend="pyarrow"),
    ):
        assert any(str(t) != "object" and str(t) != "float64" for t in frame.dtypes)
        np.testing.assert_array_equal(p.transform(frame), expected)
    # Missing whatever data.na_values lists (here neither "nan" nor "None"): NaN and NA cells of
    # a frame are no text to compare with the markers.
    few = cfg(path=str(tmp_path / "t.csv"), missing="impute", categorical="onehot")
    few.na_values = ("", "?")
    custom = data.load_dataset(few).preprocessor
    for frame in (plain, plain.convert_dtypes()):
        np.testing.assert_array_equal(custom.transform(frame), expected)
    # The same rows as one object array, pandas' NA in its cells (a TypeError once).
    np.testing.assert_array_equal(custom.transform(plain.convert_dtypes().to_numpy()), expected)
    strict = data.load_dataset(cfg(path=str(tmp_path / "t.csv"), missing="drop")).preprocessor
    with pytest.raises(UserError, match=r"column 'color' has 3 missing value.*row 4 \(index 3\)"):
        strict.transform(plain.convert_dtypes())
    # A frame with index labels is named by them, as df.loc finds its rows ("index 3" was its
    # position, another row of such a frame).
    labelled = plain.convert_dtypes().set_axis([f"c{i * 7}" for i in range(len(plain))])
    with pytest.raises(UserError, match=r"missing value.*row 4 \(index label 'c21'\)"):
        strict.transform(labelled)
    with pytest.raises(UserError, match=r"repeated column names \['a'\]"):
        p.transform(plain.set_axis(["a", "a", "flag", "n"], axis=1))


def _error_files(tmp_path):
    rows = shopper_rows(10)
    stray = shopper_rows(20)
    stray[6][4] = "abc"
    empty = shopper_rows(10)
    empty[2][10] = ""
    ragged = shopper_rows(10)
    ragged[3] = ragged[3][:17]
    nan, inf = shopper_rows(10), shopper_rows(10)
    nan[3][6] = "nan"
    inf[1][7] = "-inf"
    spelt = shopper_rows(10)  # quoted as written, not as parsed ('inf')
    spelt[2][7], spelt[4][7] = "Infinity", "1e999"
    (tmp_path / "empty.csv").write_text("")
    write_csv(tmp_path / "header.csv", [])
    (tmp_path / "header_no_newline.csv").write_text(",".join(HEADER))
    (tmp_path / "comment.csv").write_text("# exported 2024\n" + "a,b\n1,2\n" * 3)
    # (two comment lines: the second read as a data row of one cell; the hint was not given)
    (tmp_path / "comments.csv").write_text("# exported 2024\n# units: cm\n" + "a,b\n1,2\n" * 3)
    (tmp_path / "chrom.csv").write_text("#CHROM,pos\n" + "chr1,2\n" * 3 + "chr1,2,3\n")  # a header
    (tmp_path / "images").mkdir()
    write_csv(tmp_path / "one.csv", rows[:1])
    for name, r in [
        ("stray", stray),
        ("cell", empty),
        ("ragged", ragged),
        ("nan", nan),
        ("inf", inf),
        ("spelt", spelt),
        ("ok", rows),
    ]:
        write_csv(tmp_path / f"{name}.csv", r)
    bad = np.ones((6, 3))
    bad[4, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "str.npy", np.array([[["a", "b"]]] * 4))  # 3-D: 2-D strings are a table
    np.savez(tmp_path / "b.npz", feats=np.ones((4, 2)), lab=np.arange(4))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(path="missing.csv"), r"data.path: no such file 'missing.csv'"),
        (dict(path="empty.csv"), r"data.path '.*empty.csv' is empty"),
        (
            dict(path="header.csv"),
            r"'.*header.csv' has a header row but no data rows; expected rows of data \(at least "
            r"2 to train",
        ),
        (dict(path="images"), r"data.path '.*images' is a directory; expected a file"),
        (
            dict(path="header_no_newline.csv"),
            r"'.*header_no_newline.csv' has a header row but no data rows",
        ),
        (dict(path="ragged.csv"), r"line 5 \(data row 4\) has 17 cells but the header has 18"),
        (
            dict(path="comment.csv"),  # the header read is said, and why it is no header
            r"line 2 \(data row 1\) has 2 cells but the header \(line 1: '# exported 2024'\) "
            r"has 1 columns; .*\); that line looks like a comment: remove the lines above",
        ),
        (  # a real header starting with '#' (VCF's): no comment hint (a review)
            dict(path="chrom.csv"),
            r"line 5 \(data row 4\) has 3 cells but the header has 2 columns; expected one cell "
            r"per column in every row \(delimiter ','\)$",
        ),
        (
            dict(path="comments.csv"),
            r"line 3 \(data row 2\) has 2 cells but the header \(line 1: '# exported 2024'\) "
            r"has 1 columns; .*\); that line looks like a comment: remove the lines above",
        ),
        (
            dict(path="stray.csv"),
            r"column 'ProductRelated' cannot be encoded: 19 of its 20 cells "
            r"are numbers, but these are not: row 7 \(line 8\) 'abc'",
        ),
        (dict(path="cell.csv"), r"column 'Month' has 1 empty cell.* row 3 \(line 4\)"),
        (
            dict(path="nan.csv"),
            r"column 'BounceRates' has NaN or infinite values at row 4 "
            r"\(line 5\) 'nan'",
        ),
        (
            dict(path="inf.csv"),
            r"column 'ExitRates' has NaN or infinite .* row 2 \(line 3\) '-inf'",
        ),
        (
            dict(path="spelt.csv"),
            r"'ExitRates' has NaN or infinite .* row 3 \(line 4\) 'Infinity', row 5 \(line 6\) "
            r"'1e999'; expected",
        ),
        (
            dict(path="nan.npy"),
            r"column 'x_1' has 1 missing value\(s\) \(NaN\) at row 5 \(index 4\)",
        ),
        (
            dict(path="str.npy"),
            r"str.npy' has dtype <U1; expected a numeric .* or a 2-D array of strings",
        ),
        (
            dict(path="ok.csv", label_column="Sales"),
            r"data.label_column 'Sales' is not a column .* available columns: \['Administrative'",
        ),
        (  # in another case: said (the categorical columns' field said it; this one did not)
            dict(path="ok.csv", label_column="revenue"),
            r"data.label_column 'revenue' is not a column of .*ok.csv' \(did you mean 'Revenue'",
        ),
        (
            # both missing: the data's array said first (the label was, where only a run's
            # data.npz_key can be changed: `ae-jax evaluate --data`, a probe)
            dict(path="b.npz", npz_key="z", label_column="q"),
            r"data.npz_key 'z' is not an array in data.path 'b.npz'; its arrays: ",
        ),
        (  # the nearest array named, as a CSV's nearest column is
            dict(path="b.npz", label_column="labs"),
            r"data.label_column 'labs' is not an array in data.path 'b.npz' \(did you mean 'lab'",
        ),
        (
            dict(path="b.npz", label_column="q"),
            r"data.label_column 'q' is not an array in data.path 'b.npz'; its arrays: "
            r"\['feats', 'lab'",
        ),
        (
            dict(path="ok.csv", scaling="zscore"),
            r"data.scaling 'zscore' is not supported; expected one of 'minmax', 'standard', "
            r"'none'",
        ),
        (dict(path="ok.csv", categorical="label"), r"data.categorical 'label' .* 'onehot'"),
        (
            dict(name="svhn"),
            r"data.name 'svhn' is not supported; expected one of 'digits', "
            r"'breast_cancer', 'mnist', 'fashion_mnist', 'cifar10', 'tfds:NAME'",
        ),
        (dict(name="fashion-mnist"), r"'fashion-mnist' is not supported \(did you mean 'fashi"),
        (
            dict(name="breast_cancer", binarize="fixed"),
            r"data.binarize 'fixed' is for pixel data: the image sets 'mnist', .*; data.name "
            r"'breast_cancer' is not pixel data",
        ),
        (
            dict(name="digits", binarize="fixed", scaling="standard"),
            r"needs pixels in \[0, 1\], but data.scaling='standard' centres them",
        ),
        (  # (the fix it gave, np.round(x * 255) as uint8, wrapped 0..255 intensities round)
            dict(path="ok.csv", binarize="dynamic"),
            r"data.path 'ok.csv' is not pixel data \(if it holds images: whole intensities "
            r"0..255 of any dtype, set data.image_shape; floats in \[0, 1\], save them as uint8",
        ),
        # known from the name, before a (large) table is read: it need not even exist
        (dict(path="nowhere.csv", binarize="fixed"), r"data.path 'nowhere.csv' is not pixel"),
        (dict(path="ok.csv", binarize="random"), r"data.binarize 'random' is not supported"),
        (dict(path="ok.csv", limit=-3), r"data.limit must be a non-negative integer .*got -3"),
        (dict(path="ok.txt"), r"unsupported file type '.txt'; supported: .csv, .npy, .npz"),
        (dict(path="one.csv"), r"1 row\(s\) cannot be split with data.val_fraction=0.2"),
        (
            dict(path="ok.csv", val_fraction=0.95),
            r"10 row\(s\) .*val_fraction=0.95.* train \(got 0",
        ),
        (
            dict(path="ok.csv", val_fraction=1.0),
            r"data.val_fraction must be strictly between 0 and 1",
        ),
        (dict(path="ok.csv", split_seed=True), r"data.split_seed must be an integer; got True"),
    ],
)
def test_load_errors(tmp_path, monkeypatch, kw, match):
    _error_files(tmp_path)
    (tmp_path / "ok.txt").write_text("a\n1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=match):
        data.load_dataset(cfg(**kw))


def test_duplicate_header(tmp_path):
    path = write_csv(tmp_path / "d.csv", [["1", "2"], ["3", "4"]], ["a", "a"])
    with pytest.raises(UserError, match=r"duplicate column names in the header: \['a'\]") as e:
        data.read_table(path)
    assert "looks like data" not in str(e.value)
    # A file without a header whose first row repeats a value (0 and FALSE, as most tables'
    # first rows do) was told only of duplicate names (a README walkthrough).
    rows = [["1", "2.5", "Mar", "TRUE"], ["3", "1.5", "Feb", "FALSE"], ["2", "0.5", "May", "TRUE"]]
    path = write_csv(tmp_path / "h.csv", rows, ["0", "0", "Feb", "FALSE"])
    with pytest.raises(UserError, match=r"names in the header: \['0'\]; expected unique names "):
        data.read_table(path)
    path = write_csv(tmp_path / "b.csv", rows, ["0", "1", "FALSE", "FALSE"])
    with pytest.raises(UserError, match=r"\['0', '1', 'FALSE', 'FALSE'\] looks like data: if the "):
        data.read_table(path)


def test_transform_mismatches(shop, tmp_path, caplog):
    path, rows = shop
    p = data.load_dataset(cfg(path=path)).preprocessor
    short = write_csv(
        tmp_path / "short.csv", [r[:16] + r[17:] for r in rows], HEADER[:16] + HEADER[17:]
    )
    with pytest.raises(
        UserError,
        match=r"trained on 18 columns \(\['Administrative'.*"
        r"short.csv' has 17: missing 'Weekend'",
    ):
        p.transform(data.read_table(short))
    extra = write_csv(tmp_path / "extra.csv", [r + ["1"] for r in rows], HEADER + ["Id"])
    with pytest.raises(
        UserError,
        match=r"has 19: extra 'Id'; expected those columns in any order \(add missing ones, "
        r"drop extra ones\)$",
    ):
        p.transform(data.read_table(extra))
    # As many columns as trained, under other names (scikit-learn's pixel_0_0 for pixel_0).
    renamed = write_csv(tmp_path / "renamed.csv", rows, [f"c{i}" for i in range(18)])
    with pytest.raises(UserError, match=r"drop extra ones; as many: renamed\? rename them\)$"):
        p.transform(data.read_table(renamed))
    # No header, and a first row with text cells ('Sep', 'FALSE'): read as names; said so, by
    # the reader where each text is a cell of its column's first rows, else by the transform.
    bare = write_csv(tmp_path / "bare.csv", rows[1:], rows[0])
    with pytest.raises(UserError, match=r"the first row \['\d+', .* looks like data: its "):
        data.read_table(bare)
    odd = write_csv(tmp_path / "odd.csv", rows[1:], [*rows[0][:10], "Smarch", *rows[0][11:]])
    with pytest.raises(UserError, match=r"the names look like a row of data: the file has no "):
        p.transform(data.read_table(odd))
    # A data frame's 0, 1, ... are names, not a row of data: no "the file has no header".
    import pandas as pd  # a test extra

    frame = pd.DataFrame(np.array(rows, dtype=object))
    with pytest.raises(UserError, match=r"drop extra ones; as many: renamed\? rename them\)$"):
        p.transform(frame)
    # A label column is no feature: the count leaves it out, and says so.
    labelled = data.load_dataset(cfg(path=path, label_column="Revenue")).preprocessor
    with pytest.raises(UserError, match=r"has 18 besides the label 'Revenue': extra 'Id'"):
        labelled.transform(data.read_table(extra))
    # 784 other names: each list cut short (it was every name, a 20,000-character error).
    pixels = write_csv(tmp_path / "px.csv", [["0"] * 784] * 3, [f"pixel{i}" for i in range(784)])
    with pytest.raises(UserError) as e:
        p.transform(data.read_table(pixels))
    said = str(e.value)
    assert "missing 'Administrative', 'Administrative_Duration'" in said
    assert "extra 'pixel0', 'pixel1'," in said and "'pixel29', ... (754 more)" in said
    assert len(said) < 2000
    with pytest.raises(
        UserError,
        match=r"input array has shape \(60, 17\).*expected shape "
        r"\(N, 18\)",
    ):
        p.transform(np.array(rows, dtype=object)[:, :17])
    unseen = [list(r) for r in rows[:3]]
    unseen[1][10] = "Jan"  # never in training: the '<unseen>' code, the last, with a warning
    caplog.set_level("WARNING")
    coded = p.transform(np.array(unseen, dtype=object))
    assert coded[1, 10] == 1.0 and p.categories["Month"][-1] == "<unseen>"
    assert "1 cell(s) of 1 value(s) not in the training split (['Jan'])" in caplog.text
    unseen[1][10], unseen[2][6] = "Feb", "inf"
    with pytest.raises(UserError, match=r"column 'BounceRates' has NaN or infinite.*row 3"):
        p.transform(np.array(unseen, dtype=object))


def test_a_column_of_categories_that_cannot_match_training_is_refused(shop, tmp_path, caplog):
    """Every cell of a column unseen in training was encoded as '<unseen>' with a warning alone:
    numbers for text categories (a numeric .npy of the rows), or the categories in another
    case. Refused now; new categories, all unseen, are still encoded, with a louder warning."""
    path, rows = shop
    p = data.load_dataset(cfg(path=path)).preprocessor
    month = HEADER.index("Month")
    x = np.array(rows[:6], dtype=object)
    codes = x.copy()
    codes[:, month] = [i % 3 for i in range(6)]
    with pytest.raises(
        UserError,
        match=r"column 'Month' holds numbers \('0', '1', '2'\), but its categories in training "
        r"were texts \('",
    ):
        p.transform(codes)
    lower = x.copy()
    lower[:, month] = [m.lower() for m in x[:, month]]
    with pytest.raises(UserError, match=r"each differs from one only in case: '"):
        p.transform(lower)
    caplog.set_level("WARNING")
    new = x.copy()
    new[:, month] = "Smarch"
    p.transform(new)
    assert "6 cell(s) of 1 value(s) not in the training split (['Smarch'])" in caplog.text
    assert "that is every value of the column: is it the column trained on?" in caplog.text
    caplog.clear()
    lower[1:, month] = x[1:, month]  # one cell in another case: a warning that says so
    np.testing.assert_array_equal(p.transform(lower)[1:], p.transform(x)[1:])
    said = f"only in case: {lower[0, month]!r} (training: {x[0, month]!r})"
    assert said in caplog.text and "every value" not in caplog.text
    caplog.clear()
    lower[1:, month] = "Smarch"  # every value unseen, one only in case: both are said
    p.transform(lower)
    assert said in caplog.text and "that is every value of the column" in caplog.text
    # One row with a new category is no mismatch: encoded as '<unseen>', with a warning only.
    unseen = p.transform(new)[0, month]
    caplog.clear()
    one = codes[:1].copy()
    one[0, month] = 42
    assert p.transform(one)[0, month] == unseen
    assert "not in the training split (['42'])" in caplog.text and "every" not in caplog.text


def test_a_string_npy_of_raw_rows_reads_like_the_rows(shop, tmp_path):
    """np.save of a table's cells (a 2-D array of str, or of bytes) was refused ("dtype <U8;
    expected numeric") by data.path, `encode FILE` and load().encode(FILE), though the same
    array in memory encoded."""
    path, rows = shop
    p = data.load_dataset(cfg(path=path)).preprocessor
    x = np.array(rows, dtype=str)
    np.save(tmp_path / "u.npy", x)
    np.save(tmp_path / "s.npy", x.astype("S"))
    for f in ("u.npy", "s.npy"):
        table = data.read_table(str(tmp_path / f))
        assert table.columns[:2] == ["x_0", "x_1"] and table.values[10][0] == rows[0][10]
        np.testing.assert_array_equal(p.transform(table), p.transform(x))
    np.testing.assert_array_equal(p.transform(x.astype("S")), p.transform(x))  # in memory too
    # Trained on, it is read as the headerless table it holds: the same kinds of column.
    kinds = data.load_dataset(cfg(path=str(tmp_path / "u.npy"))).preprocessor.kinds
    assert kinds == p.kinds
    # Saved with its header row: said, for training and for encoding.
    np.save(tmp_path / "h.npy", np.array([HEADER, *rows], dtype=str))
    hint = r"'Administrative'; .* the array's first row looks like column names \(saved with"
    with pytest.raises(UserError, match=hint):
        p.transform(data.read_table(str(tmp_path / "h.npy")))
    with pytest.raises(UserError, match=hint):
        data.load_dataset(cfg(path=str(tmp_path / "h.npy")))
    np.save(tmp_path / "o.npy", np.array(rows, dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match=r"numeric array, or one of strings \(np.save\(path, "):
        data.read_table(str(tmp_path / "o.npy"))
    np.save(tmp_path / "b.npy", np.array([[b"\xff"] * 2] * 3))
    with pytest.raises(UserError, match=r"b.npy' holds bytes that are not UTF-8 text"):
        data.read_table(str(tmp_path / "b.npy"))


def test_columns_of_number_codes_named_categorical_are_categories(tmp_path, caplog):
    """data.categorical_columns: a column of codes (the purchase table's Region 1..9) is
    categorical, not one number: its categories are the codes as the file writes them, in
    training-split frequency order, and a float array or Python rows holding the codes as
    numbers (3.0, 3) encode to the same features; a code training never showed is unseen."""
    regions = [1, 3, 3, 2, 3, 1, 2, 3, 1, 3, 2, 3]  # training: 3 (x6), 1 (x3), 2 (x3)
    path = tmp_path / "t.csv"
    path.write_text("a,Region\n" + "".join(f"{i / 10},{r}\n" for i, r in enumerate(regions)))
    table = data.read_table(str(path))
    rows = np.arange(len(regions))
    plain = data.Preprocessor.fit(table, rows, categorical="onehot")
    assert plain.kinds == ["numeric", "numeric"]  # codes read as numbers, unless named
    p = data.Preprocessor.fit(table, rows, categorical="onehot", categorical_columns=("Region",))
    assert p.kinds == ["numeric", "categorical"]
    assert p.categories["Region"] == ["3", "1", "2", "<unseen>"]  # 1 and 2 tie: first seen
    assert p.columns == ["a", "Region=3", "Region=1", "Region=2", "Region=<unseen>"]
    from_file = p.transform(table)
    assert from_file[:, 1:].tolist() == [
        [float(r == c) for c in (3, 1, 2)] + [0.0] for r in regions
    ]
    as_floats = np.column_stack([np.arange(12) / 10, np.asarray(regions, float)])
    np.testing.assert_array_equal(p.transform(as_floats), from_file)
    python_rows = [[i / 10, r if i % 2 else float(r)] for i, r in enumerate(regions)]
    np.testing.assert_array_equal(p.transform(python_rows), from_file)
    mixed_rows = [[i / 10, float(r), "x"] for i, r in enumerate(regions)]  # a '<U' array
    q = data.Preprocessor.fit(
        data.read_table(str(_with_b(path))),
        rows,
        categorical="onehot",
        categorical_columns=("Region",),
    )
    np.testing.assert_array_equal(q.transform(mixed_rows)[:, 1:5], from_file[:, 1:])
    caplog.set_level("WARNING")
    new = p.transform([[0.1, 9]])
    assert (
        new[0, 1:].tolist() == [0.0, 0.0, 0.0, 1.0] and "not in the training split" in caplog.text
    )
    ordinal = data.Preprocessor.fit(table, rows, categorical_columns=("Region",), scaling="none")
    assert ordinal.transform(table)[:, 1].tolist() == [[3, 1, 2].index(r) for r in regions]


def test_one_code_written_two_ways_in_training_is_one_category(tmp_path, caplog):
    """A file joined from two exports wrote OperatingSystems as 2 and as 2.0: they became two
    categories (10 for 5 codes), unsaid, and a new file's 2 matched one of them only. One
    number's spellings are one category now, named by its most frequent spelling, and said;
    a code with a leading zero ('007') stays a code of its own."""
    codes = ["2", "3", "2.0", "2", "1", "3.0", "2", "007", "7", "3", "1.00", "2"]
    path = tmp_path / "t.csv"
    path.write_text("a,os\n" + "".join(f"{i / 10},{c}\n" for i, c in enumerate(codes)))
    rows = np.arange(len(codes))
    caplog.set_level("WARNING")
    p = data.Preprocessor.fit(
        data.read_table(str(path)), rows, categorical="ordinal", categorical_columns=("os",),
        scaling="none",
    )  # fmt: skip
    assert p.categories["os"] == ["2", "3", "1", "007", "7", "<unseen>"]
    assert "column 'os' writes some categories in more than one way" in caplog.text
    assert "['2', '2.0']" in caplog.text and "['3', '3.0']" in caplog.text
    got = p.transform(data.read_table(str(path)))[:, 1]
    want = [p.categories["os"].index(str(int(float(c))) if c != "007" else c) for c in codes]
    assert got.tolist() == want
    # a new 7 is '7' (its exact spelling); '07' reads as 7, of two categories: unseen
    assert p.transform([[0.0, "2.00"], [0.0, 7], [0.0, "07"]])[:, 1].tolist() == [0, 4, 5]
    # A review: '7.0' merged into '7' beside a code '007' of the same value was encoded as
    # unseen (the value had two categories); a cell without a leading zero is '7'. The rarer
    # spelling first ('5.0' once, then '5' twice): the most frequent names the category.
    codes = ["5.0", "7", "7.0", "007", "7", "5", "5"]
    path.write_text("a,os\n" + "".join(f"{i / 10},{c}\n" for i, c in enumerate(codes)))
    p = data.Preprocessor.fit(
        data.read_table(str(path)), np.arange(7), categorical="ordinal",
        categorical_columns=("os",), scaling="none",
    )  # fmt: skip
    assert p.categories["os"] == ["5", "7", "007", "<unseen>"]
    got = p.transform(data.read_table(str(path)))[:, 1].tolist()
    assert got == [0, 1, 1, 2, 1, 0, 0]


def _with_b(path):
    """The file with a third, text column 'b'."""
    lines = path.read_text().splitlines()
    out = path.with_name("with_b.csv")
    out.write_text("\n".join([lines[0] + ",b"] + [line + ",x" for line in lines[1:]]) + "\n")
    return out


def test_codes_written_otherwise_match_their_category_by_value(tmp_path):
    """A category written '4.0' (pandas writes an integer column with a gap so) is the code 4
    of a file that writes '4', and a text column's '1.0' the float 1.0 of a Python row: an exact
    spelling wins, then the number, when one category alone has it."""
    path = tmp_path / "t.csv"
    path.write_text("a,code\n" + "".join(f"{i},{c}\n" for i, c in enumerate(["4.0", "7.0"] * 6)))
    p = data.Preprocessor.fit(
        data.read_table(str(path)), np.arange(12), scaling="none", categorical_columns=("code",)
    )
    assert p.categories["code"] == ["4.0", "7.0", "<unseen>"]
    other = tmp_path / "o.csv"
    other.write_text("a,code\n0,7\n1,4\n2,04\n")
    assert p.transform(data.read_table(str(other)))[:, 1].tolist() == [1.0, 0.0, 0.0]
    path.write_text(
        "a,size\n" + "".join(f"{i},{s}\n" for i, s in enumerate(["1.0", "2.0", "L"] * 4))
    )
    p = data.Preprocessor.fit(data.read_table(str(path)), np.arange(12), scaling="none")
    assert p.kinds == ["numeric", "categorical"]
    codes = p.transform([[0, 1.0], [0, 2.0], [0, "L"]])[:, 1].tolist()
    assert codes == [p.categories["size"].index(t) for t in ("1.0", "2.0", "L")]
    twice = tmp_path / "twice.csv"  # '3' and '3.0' in training: one category, '3' (were two,
    # and a new '03' then matched neither: `test_one_code_written_two_ways_...`)
    twice.write_text("a,c\n" + "".join(f"{i},{c}\n" for i, c in enumerate(["3", "3.0", "x"] * 4)))
    p = data.Preprocessor.fit(data.read_table(str(twice)), np.arange(12), scaling="none")
    assert p.categories["c"] == ["3", "x", "<unseen>"]
    assert p.transform([[0, "03"], [0, "3"], [0, "3.0"]])[:, 1].tolist() == [0, 0, 0]


def test_number_text_writes_whole_numbers_as_integers():
    assert [cells.number_text(v) for v in (3.0, np.float32(2.0), 0.5, -1.0, 7, "03", True)] == [
        "3",
        "2",
        "0.5",
        "-1",
        "7",
        "03",
        "True",
    ]


def test_numbers_written_with_leading_zeros_are_said_to_be_codes(tmp_path, caplog):
    """Zip codes read as numbers lose their zeros and are modelled by size: the log says so
    and names data.categorical_columns, which keeps them as written."""
    path = tmp_path / "t.csv"
    zips = ["02134", "10001", "07030", "94103"] * 10
    path.write_text("zip,a\n" + "".join(f"{z},0.{i % 9}\n" for i, z in enumerate(zips)))
    table = data.read_table(str(path))
    caplog.set_level("WARNING")
    p = data.Preprocessor.fit(table, np.arange(30))
    assert p.kinds == ["numeric", "numeric"]
    said = "column 'zip' holds numbers written with leading zeros, e.g. ['02134', '07030']"
    assert said in caplog.text and "'a'" not in caplog.text  # 0.5 is no code
    caplog.clear()
    p = data.Preprocessor.fit(table, np.arange(30), categorical_columns=("zip",))
    assert p.categories["zip"][:4] == ["02134", "10001", "07030", "94103"]
    assert "leading zeros" not in caplog.text


def test_a_named_code_column_with_marker_texts_says_they_are_categories(tmp_path, caplog):
    """'-' or '#N/A' among the codes of a column named in data.categorical_columns are
    categories of their own (the user said the column is categorical: 'unknown' may be one),
    with a warning naming them and data.na_values, which makes them missing values; a named
    column of near-unique values (a measurement) is warned of, as a text one is."""
    path = tmp_path / "t.csv"
    cells_ = [str(i % 4) for i in range(30)]
    cells_[5] = cells_[9] = "-"
    path.write_text("a,Region\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells_)))
    table = data.read_table(str(path))
    caplog.set_level("WARNING")
    p = data.Preprocessor.fit(table, np.arange(20), categorical_columns=("Region",))
    assert "-" in p.categories["Region"]
    said = "column 'Region' holds 28 number codes and these cells that read as missing-value"
    assert said in caplog.text and "row 6 (line 7) '-', row 10 (line 11) '-'" in caplog.text
    caplog.clear()
    p = data.Preprocessor.fit(
        table, np.arange(20), categorical_columns=("Region",), na_values=("-",), missing="impute"
    )
    assert "-" not in p.categories["Region"] and "missing-value markers" not in caplog.text
    data.Preprocessor.fit(
        table, np.arange(20), categorical_columns=("a",), na_values=("-",), missing="impute"
    )
    # 'a' (0..29) named by mistake: told to leave it out, not to "convert or drop it".
    said = "column 'a' is categorical (data.categorical_columns) but holds 30 distinct numbers "
    assert said + "in 30 cells" in caplog.text
    assert "leave it out of data.categorical_columns to model it as a number" in caplog.text
    assert "convert or drop it" not in caplog.text
    caplog.clear()  # typed categorical by its file (Parquet, pandas), not by the field
    typed = dataclasses.replace(table, categorical=("a",))
    data.Preprocessor.fit(typed, np.arange(30), na_values=("-",), missing="impute")
    assert "'a' is categorical (so typed in its file) but holds 30" in caplog.text
    assert "store it as numbers (and leave it out of data.categorical_columns if it is there)" in (
        caplog.text
    )
    # One-hot: the width refusal says the same (it advised dropping the column the user named).
    with pytest.raises(UserError, match=r"'a', named in data.categorical_columns, holds 30 dis"):
        data.Preprocessor.fit(
            table,
            np.arange(30),
            categorical="onehot",
            categorical_columns=("a",),
            max_categories=10,
            na_values=("-",),
            missing="impute",
        )
    with pytest.raises(UserError, match=r"'Region' has 5 categories .*drop the column, or rai"):
        data.Preprocessor.fit(
            table,
            np.arange(30),
            categorical="onehot",
            categorical_columns=("Region",),
            max_categories=4,
        )


def test_ids_beyond_2_53_match_only_as_written(tmp_path, caplog):
    """Matching codes by value stops where float64 merges integers: a new 18-digit id is
    unseen, not the trained id it rounds to."""
    ids = [100000000000000000 + 10 * k for k in range(4)] * 5
    path = tmp_path / "t.csv"
    path.write_text("a,acct\n" + "".join(f"{i},{v}\n" for i, v in enumerate(ids)))
    p = data.Preprocessor.fit(
        data.read_table(str(path)), np.arange(20), scaling="none", categorical_columns=("acct",)
    )
    unseen = p.categories["acct"].index("<unseen>")
    new = p.transform([[0, "100000000000000001"], [0, "100000000000000030"]])[:, 1].tolist()
    assert new == [unseen, p.categories["acct"].index("100000000000000030")]


def test_categorical_columns_are_refused_for_image_sets(tmp_path):
    c = default_config().data
    c.name, c.dir, c.categorical_columns = "mnist", str(tmp_path), ("pixel_0",)
    with pytest.raises(UserError, match=r"but data.name 'mnist' holds pixel data"):
        data.load_dataset(c)  # before it looks for the files


@pytest.mark.parametrize(
    "field, value",
    [("image_shape", (28, 28)), ("npz_key", "x_test"), ("label_column", "y"), ("keep_label", True)],
)
def test_what_an_image_sets_files_fix_is_refused_given_the_data_section_alone(
    tmp_path, field, value
):
    """validate() refused these beside an image set's name; load_dataset(config.data) ignored
    them without a word (a probe)."""
    c = default_config()
    c.data.name, c.data.dir, c.data[field] = "mnist", str(tmp_path), value
    said = rf"data.{field}: got .*; expected .* with data.name='mnist', whose files fix it"
    with pytest.raises(UserError, match=said):
        config_lib.validate(c)
    with pytest.raises(UserError, match=said):
        data.load_dataset(c.data)  # before it looks for the files
    # Its fields' types are checked first (an AttributeError of None.startswith: a review).
    with pytest.raises(UserError, match=r"data.name must be a string; got None"):
        data.load_dataset(dict(name=None, **{field: value}))
    with pytest.raises(UserError, match=r"data.image_shape must be a tuple such as"):
        data.load_dataset(dict(name="mnist", image_shape=np.array([28, 28])))
    if field == "image_shape":  # (a bundled table of pixels, read as images with a shape)
        assert data.load_dataset(dict(name="digits", image_shape=(8, 8))).image_shape == (8, 8)


def test_scaling_new_rows_needs_no_copy_of_them_in_float64():
    """`encode` of a 2,000,000-row file peaked at 4.4 GB, 1.8x training's: the scaling made
    (N, D) float64 temporaries. It scales a column at a time now: the numbers are those of
    (encoded - offset) / scale in float32, and the memory beyond the result is a column's."""
    n, d = 20_000, 50
    rng = np.random.default_rng(0)
    encoded = np.asfortranarray(rng.normal(size=(n, d)) * 100)
    p = data.Preprocessor([f"c{j}" for j in range(d)], ["numeric"] * d, {})
    p.offset, p.scale = rng.normal(size=d), rng.uniform(0.5, 2, size=d)
    tracemalloc.start()
    try:
        got = p.scale_encoded(encoded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, ((encoded - p.offset) / p.scale).astype(np.float32))
    assert got.dtype == np.float32 and peak < got.nbytes + 4 * n * 8, peak
