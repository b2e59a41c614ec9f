"""Tests for ae_jax.image_data: MNIST/CIFAR files of every format written to tmp_path."""

import gzip
import os
import pickle
import struct
import sys
import types

import jax
import ml_collections
import numpy as np
import pytest

from ae_jax import config as config_lib
from ae_jax import data
from ae_jax.data import image_files, preprocess_io
from ae_jax.data import images as image_data
from ae_jax.data.tables import read_table
from ae_jax.errors import UserError

N_TRAIN, N_TEST = 20, 10


def pixels(n, shape, offset=0):
    """Known uint8 images: every value 0..255 occurs, and each image differs."""
    size = int(np.prod(shape))
    values = (np.arange(n)[:, None] * 37 + np.arange(size)[None] * 11 + offset) % 256
    return values.astype(np.uint8).reshape(n, *shape)


def idx_bytes(arr, magic=None):
    """An IDX file of unsigned bytes: magic 0x0000 08 NDIM, big-endian dims, then the bytes."""
    magic = 0x0800 + arr.ndim if magic is None else magic
    return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.tobytes()


def write_mnist(folder, gz=True, n_train=N_TRAIN):
    """The four MNIST IDX files; returns (x_train, y_train, x_test, y_test)."""
    os.makedirs(folder, exist_ok=True)
    arrays = (
        pixels(n_train, (28, 28)),
        (np.arange(n_train) % 10).astype(np.uint8),
        pixels(N_TEST, (28, 28), offset=5),
        (np.arange(N_TEST) * 3 % 10).astype(np.uint8),
    )
    names = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    for name, arr in zip(names, arrays, strict=True):
        raw = idx_bytes(arr)
        with open(os.path.join(folder, name + (".gz" if gz else "")), "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)
    return arrays


def cifar_images(n, offset=0):
    return pixels(n, (32, 32, 3), offset)  # HWC, as the loader returns them


def write_cifar(root, per_batch=4):
    """cifar-10-batches-py/ with 5 train batches and a test batch (rows in CHW order)."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    x = cifar_images(5 * per_batch)
    x[3, 7, 9, 1] = 200  # one green pixel we can find again: row 7, column 9 of image 3
    x[3, 7, 9, 0] = x[3, 7, 9, 2] = 0
    y = np.arange(5 * per_batch) % 10
    xt, yt = cifar_images(N_TEST, offset=9), np.arange(N_TEST)[::-1] % 10
    for i in range(5):
        rows = slice(i * per_batch, (i + 1) * per_batch)
        batch(os.path.join(folder, f"data_batch_{i + 1}"), x[rows], y[rows])
    batch(os.path.join(folder, "test_batch"), xt, yt)
    return x, y, xt, yt


def batch(path, x_hwc, y):
    chw = x_hwc.transpose(0, 3, 1, 2).reshape(len(x_hwc), -1)
    with open(path, "wb") as f:
        pickle.dump(
            {
                b"batch_label": b"batch",
                b"labels": [int(v) for v in y],
                b"data": chw,
                b"filenames": [b"img.png"] * len(y),
            },
            f,
            protocol=2,
        )


def cfg(**kw):
    return ml_collections.ConfigDict({"name": "mnist", "dir": "", **kw})


def load(**kw):
    return data.load_dataset(cfg(**kw))


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_mnist_idx(tmp_path, gz, caplog):
    x, y, xt, yt = write_mnist(tmp_path, gz=gz)
    np.savez(tmp_path / "mnist.npz", x_train=x[:3], y_train=y[:3], x_test=xt[:2], y_test=yt[:2])
    caplog.set_level("INFO", logger="absl")
    ds = load(dir=str(tmp_path))
    # Its summary line, as every other data's (an image set printed none: a probe).
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data: ")]
    # ... naming the files it read (with a Keras .npz beside them, which was not read).
    read = f"data: mnist (read from the IDX files in {str(tmp_path)!r}): {ds.kinds_text()}"
    assert said == [read] and "0..255 divided by 255" in said[0]
    assert ds.train.shape == (N_TRAIN, 784) and ds.val.shape == (N_TEST, 784)
    assert ds.image_shape == (28, 28) and ds.train.dtype == np.float32 and ds.name == "mnist"
    np.testing.assert_array_equal(ds.train, (x.reshape(N_TRAIN, -1) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.val, (xt.reshape(N_TEST, -1) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.labels_train, y)
    np.testing.assert_array_equal(ds.labels_val, yt)
    np.testing.assert_array_equal(ds.train_indices, np.arange(N_TRAIN))
    assert ds.columns[783] == "pixel_783" and not ds.dynamic_binarize
    # The saved preprocessing turns raw 0..255 pixels (e.g. a new .npy of images) into `train`.
    np.save(tmp_path / "new.npy", x)
    np.testing.assert_array_equal(
        ds.preprocessor.transform(data.read_table(str(tmp_path / "new.npy"))), ds.train
    )


def test_a_folder_holding_an_idx_file_gzipped_and_not_says_which_it_reads(tmp_path, caplog):
    """torchvision's raw/ folder holds each IDX file twice, gzipped and not: the gzipped one is
    read, and said (it was said nowhere, whichever differed: a probe)."""
    write_mnist(tmp_path, gz=False, n_train=5)  # other images than the gzipped ones
    x, *_ = write_mnist(tmp_path, gz=True)
    caplog.set_level("INFO", logger="absl")
    ds = load(dir=str(tmp_path))
    np.testing.assert_array_equal(ds.train, (x.reshape(len(x), -1) / 255.0).astype(np.float32))
    said = f"{str(tmp_path)!r} holds train-images-idx3-ubyte.gz and train-images-idx3-ubyte: "
    assert said + "reading train-images-idx3-ubyte.gz" in caplog.text, caplog.text


def test_torchvision_layout_and_limit(tmp_path):
    x, y, _, _ = write_mnist(tmp_path / "FashionMNIST" / "raw")
    ds = load(name="fashion_mnist", dir=str(tmp_path), limit=5)
    assert ds.train.shape == (5, 784) and ds.val.shape == (N_TEST, 784)
    np.testing.assert_array_equal(ds.train, (x[:5].reshape(5, -1) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.labels_train, y[:5])


def test_the_training_files_of_each_layout_are_those_read(tmp_path):
    """`training_files` names the files the training images are read from, in each layout
    (what evaluating one of them is warned of): the IDX file where it is found, CIFAR's five
    data batches, x_train of an .npz; none for a folder without the set."""
    write_mnist(tmp_path / "tv" / "FashionMNIST" / "raw", gz=False)
    (idx,) = image_files.training_files("fashion_mnist", str(tmp_path / "tv"))
    assert idx == (str(tmp_path / "tv" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"), "")
    write_cifar(str(tmp_path / "c"))
    batches = image_files.training_files("cifar10", str(tmp_path / "c"))
    folder = tmp_path / "c" / "cifar-10-batches-py"
    assert batches == [(str(folder / f"data_batch_{i}"), "") for i in range(1, 6)]
    arrays = write_mnist(tmp_path / "n")
    np.savez(tmp_path / "n" / "keras.npz", **dict(zip(image_files._NPZ_KEYS, arrays, strict=True)))
    npz = str(tmp_path / "n" / "keras.npz")
    assert image_files.training_files("mnist", npz) == [(npz, "x_train")]
    assert image_files.training_files("mnist", str(tmp_path / "c")) == []


@pytest.mark.parametrize(
    "name,file", [("mnist", "mnist.npz"), ("fashion_mnist", "fashion-mnist.npz")]
)
def test_keras_npz(tmp_path, name, file):
    x, xt = pixels(N_TRAIN, (28, 28)), pixels(N_TEST, (28, 28), offset=1)
    y, yt = np.arange(N_TRAIN) % 10, np.arange(N_TEST) % 10
    np.savez(tmp_path / file, x_train=x, y_train=y, x_test=xt, y_test=yt)
    for directory in (tmp_path, tmp_path / file):  # the folder, or the archive itself
        ds = load(name=name, dir=str(directory))
        assert ds.image_shape == (28, 28) and ds.name == name
        np.testing.assert_array_equal(ds.val, (xt.reshape(N_TEST, -1) / 255.0).astype(np.float32))
        np.testing.assert_array_equal(ds.labels_train, y)


def test_an_npz_of_another_sets_images_is_read_and_warned_of(tmp_path, caplog):
    """A Keras-layout MNIST archive read as data.name='cifar10' was logged as '784 pixels of
    28x28 images' of cifar10, unsaid (a probe): its images are not the set's. Read all the same
    (an .npz of other images is a use), with a warning naming the sets of that shape."""
    x, xt = pixels(N_TRAIN, (28, 28)), pixels(N_TEST, (28, 28), offset=1)
    y, yt = np.arange(N_TRAIN) % 10, np.arange(N_TEST) % 10
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    caplog.set_level("WARNING")
    ds = load(name="cifar10", dir=str(tmp_path / "mnist.npz"))
    assert ds.image_shape == (28, 28)
    assert caplog.messages == [
        f"data.dir '{tmp_path / 'mnist.npz'}': its images are 28x28, not cifar10's 32x32x3; read "
        "all the same, and named cifar10 (images of that shape: data.name='mnist' or "
        "data.name='fashion_mnist')"
    ]
    caplog.clear()
    load(name="fashion_mnist", dir=str(tmp_path / "mnist.npz"))  # (the same shape: nothing)
    assert not caplog.messages


def test_keras_npz_labels_are_read_as_a_tables_are(tmp_path):
    """An image set's labels were cast to int: names ('zero', as a label column reads) ended
    the run with numpy's ValueError after its images were read, and 1.5 became 1 without a
    word (a probe). Names stay names, numbers keep their values, whole numbers are int64."""
    x, xt = pixels(4, (28, 28)), pixels(2, (28, 28), offset=1)
    for y, yt in (
        (np.array(["zero", "one", "two", "one"]), np.array(["two", "zero"])),
        (np.array([0.5, 1.5, 2.0, 1.5]), np.array([2.5, 0.5])),
        (np.arange(4, dtype=np.uint8), np.arange(2, dtype=np.uint8)),
    ):
        np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
        ds = load(dir=str(tmp_path))
        np.testing.assert_array_equal(ds.labels_train, y)
        np.testing.assert_array_equal(ds.labels_val, yt)
        assert ds.labels_val.dtype == (np.int64 if y.dtype == np.uint8 else yt.dtype)


def test_cifar_batches_chw_to_hwc(tmp_path):
    x, y, xt, yt = write_cifar(tmp_path)
    ds = load(name="cifar10", dir=str(tmp_path))
    assert ds.train.shape == (20, 3072) and ds.val.shape == (N_TEST, 3072)
    assert ds.image_shape == (32, 32, 3)
    images = ds.train.reshape(-1, 32, 32, 3)
    assert images[3, 7, 9, 1] == np.float32(200 / 255) and images[3, 7, 9, 0] == 0
    np.testing.assert_array_equal(ds.train, (x.reshape(20, -1) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.val, (xt.reshape(N_TEST, -1) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.labels_train, y)
    np.testing.assert_array_equal(ds.labels_val, yt)
    # data.dir may also point into the batches folder itself.
    inner = load(name="cifar10", dir=str(tmp_path / "cifar-10-batches-py"))
    np.testing.assert_array_equal(inner.train, ds.train)


def test_cifar_standard_scaling_per_channel(tmp_path):
    x, *_ = write_cifar(tmp_path)
    ds = load(name="cifar10", dir=str(tmp_path), scaling="standard")
    per_channel = ds.train.reshape(-1, 3)
    np.testing.assert_allclose(per_channel.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(0), 1.0, atol=1e-5)
    mean = x.reshape(-1, 3).mean(0)
    np.testing.assert_allclose(ds.preprocessor.offset[:6], np.tile(mean, 2))


def test_fixed_binarisation(tmp_path, caplog):
    x, _, xt, _ = write_mnist(tmp_path)
    caplog.set_level("INFO", logger="absl")
    ds = load(dir=str(tmp_path), binarize="fixed")
    assert f"IDX files in {str(tmp_path)!r}): {ds.kinds_text()}" in caplog.text
    assert "binar" in ds.kinds_text()
    # 128/255 is the first intensity above 0.5.
    np.testing.assert_array_equal(ds.train, (x.reshape(N_TRAIN, -1) >= 128).astype(np.float32))
    np.testing.assert_array_equal(ds.val, (xt.reshape(N_TEST, -1) >= 128).astype(np.float32))
    assert not ds.dynamic_binarize
    # The threshold is part of the saved preprocessing, so new files are binarised alike.
    p = preprocess_io.from_dict(preprocess_io.to_dict(ds.preprocessor))
    np.testing.assert_array_equal(p.transform(x.reshape(N_TRAIN, -1)), ds.train)


def test_dynamic_binarisation(tmp_path):
    x, *_ = write_mnist(tmp_path)
    ds = load(dir=str(tmp_path), binarize="dynamic")
    assert ds.dynamic_binarize
    np.testing.assert_array_equal(ds.train, (x.reshape(N_TRAIN, -1) / 255.0).astype(np.float32))
    assert set(np.unique(ds.val)) == {0.0, 1.0}  # validation: binarised once, reproducibly
    np.testing.assert_array_equal(ds.val, load(dir=str(tmp_path), binarize="dynamic").val)
    assert ds.preprocessor.threshold is None


def test_binarisation_of_a_users_array_of_images(tmp_path):
    """A uint8 .npy of MNIST-like images binarises as the image sets do (it was refused: only
    data.name='mnist' with data.dir could), and so does the bundled digits set dynamically."""
    x, *_ = write_mnist(tmp_path)
    np.save(tmp_path / "x.npy", x)
    path = str(tmp_path / "x.npy")
    fixed = data.load_dataset(cfg(name="", path=path, binarize="fixed"))
    rows = x.reshape(N_TRAIN, -1)
    expected = (rows >= 128).astype(np.float32)
    np.testing.assert_array_equal(fixed.train, expected[fixed.train_indices])
    np.testing.assert_array_equal(fixed.val, expected[fixed.val_indices])
    assert not fixed.dynamic_binarize
    np.testing.assert_array_equal(fixed.preprocessor.transform(rows), expected)  # new files too
    dynamic = data.load_dataset(cfg(name="", path=path, binarize="dynamic"))
    assert dynamic.dynamic_binarize and dynamic.preprocessor.threshold is None
    np.testing.assert_array_equal(
        dynamic.train, (rows[dynamic.train_indices] / 255.0).astype(np.float32)
    )
    assert set(np.unique(dynamic.val)) == {0.0, 1.0}  # one fixed draw, as the image sets'
    np.testing.assert_array_equal(
        dynamic.val, data.load_dataset(cfg(name="", path=path, binarize="dynamic")).val
    )
    digits = data.load_dataset(cfg(name="digits", binarize="dynamic"))
    assert digits.dynamic_binarize and set(np.unique(digits.val)) == {0.0, 1.0}
    np.save(tmp_path / "floats.npy", x / 255.0)
    with pytest.raises(UserError, match=r"not pixel data \(.*; floats in \[0, 1\], save them as"):
        data.load_dataset(cfg(name="", path=str(tmp_path / "floats.npy"), binarize="fixed"))


def test_one_idx_file_as_data_path_reads_as_the_same_npy(tmp_path):
    x, *_ = write_mnist(tmp_path, gz=False)
    np.save(tmp_path / "x.npy", x)
    from_idx = data.load_dataset(cfg(name="", path=str(tmp_path / "train-images-idx3-ubyte")))
    from_npy = data.load_dataset(cfg(name="", path=str(tmp_path / "x.npy")))
    assert from_idx.image_shape == (28, 28) and from_idx.train.shape == (16, 784)
    np.testing.assert_array_equal(from_idx.train, from_npy.train)
    np.testing.assert_array_equal(from_idx.val, from_npy.val)
    assert from_idx.preprocessor.pixel_max == 255


def test_binarize_function():
    p = np.array([[0.0, 0.1, 0.5], [0.9, 1.0, 0.25]], np.float32)
    key = jax.random.PRNGKey(3)
    a = jax.jit(image_data.binarize)(p, key)
    assert a.shape == p.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, image_data.binarize(p, key))  # deterministic for a key
    draws = jax.vmap(image_data.binarize, (None, 0))(p, jax.random.split(key, 4000))
    assert set(np.unique(draws)) == {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(0), p, atol=0.03)  # E[Bernoulli(p)] = p
    np.testing.assert_array_equal(draws[:, 0, 0], 0.0)
    np.testing.assert_array_equal(draws[:, 1, 1], 1.0)


def test_config_fields_validate():
    c = config_lib.default_config()
    assert (c.data.dir, c.data.limit, c.data.binarize) == ("", 0, "none")
    for name in ("mnist", "fashion_mnist", "cifar10", "tfds:mnist"):
        c.data.name = name
        config_lib.validate(c)
    for field, value, match in [
        ("binarize", "random", r"data.binarize: got 'random'"),
        ("limit", -1, r"data.limit: got -1; expected an integer >= 0"),
        ("name", "svhn", r"data.name: got 'svhn'"),
    ]:
        bad = config_lib.default_config()
        bad.data[field] = value
        with pytest.raises(UserError, match=match):
            config_lib.validate(bad)


def _truncate(path, keep):
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:keep])


def _replace(path, raw):
    open(path, "wb").write(raw)


@pytest.mark.parametrize(
    "setup,kw,match",
    [
        (
            None,
            {},
            r"data.name 'mnist' reads its standard files from a local directory, but "
            r"data.dir is empty",
        ),
        (None, {"dir": "nowhere"}, r"data.dir 'nowhere' is not an existing directory"),
        (
            "empty",
            {},
            r"holds no complete set of mnist files; looked for "
            r"train-images-idx3-ubyte\[.gz\], .* in '.*' or '.*MNIST/raw'; or "
            r"mnist.npz \(arrays x_train, y_train, x_test, y_test\)",
        ),
        (
            lambda d: os.remove(d / "t10k-labels-idx1-ubyte.gz"),
            {},
            r"holds no complete set of mnist files: '.*' lacks \['t10k-labels-idx1-ubyte'\]",
        ),
        (
            lambda d: _replace(d / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros(3, np.uint8))),
            {},
            r"train-images-idx3-ubyte.gz' is not an IDX file of images: its magic number should be "
            r"0x00000803 \(unsigned bytes, 3 dimension\(s\)\) but it is 0x00000801",
        ),
        (
            lambda d: _replace(d / "t10k-labels-idx1-ubyte.gz", b"PK\x03\x04 not idx"),
            {},
            r"t10k-labels-idx1-ubyte.gz' is not an IDX file of labels: .* but it is 0x504B0304",
        ),
        (
            lambda d: _replace(
                d / "train-images-idx3-ubyte.gz",
                gzip.compress(idx_bytes(pixels(N_TRAIN, (28, 28)))[:-100]),
            ),
            {},
            r"train-images-idx3-ubyte.gz': its IDX header says images of shape \(20, 28, 28\) "
            r"\(15680 bytes\), but the file is truncated: it holds 15580",
        ),
        (
            lambda d: _truncate(d / "train-labels-idx1-ubyte.gz", 30),
            {},
            r"train-labels-idx1-ubyte.gz' is a damaged or truncated gzip file",
        ),
        (
            lambda d: _replace(d / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(7, np.uint8))),
            {},
            r"t10k-images-idx3-ubyte.gz' and '.*t10k-labels-idx1-ubyte.gz': 10 images but labels "
            r"of shape \(7,\)",
        ),
        (
            lambda d: None,
            {"scaling": "standard", "binarize": "fixed"},
            r"data.binarize 'fixed' needs pixels in \[0, 1\], but data.scaling='standard'",
        ),
    ],
    ids=[
        "no-dir",
        "missing-dir",
        "empty-dir",
        "missing-file",
        "bad-magic",
        "not-idx",
        "truncated",
        "truncated-gzip",
        "label-count",
        "binarize-standard",
    ],
)
def test_mnist_errors(tmp_path, monkeypatch, setup, kw, match):
    monkeypatch.chdir(tmp_path)
    if setup == "empty":
        kw = {"dir": str(tmp_path), **kw}
    elif setup is not None:
        write_mnist(tmp_path)
        setup(tmp_path)
        kw = {"dir": str(tmp_path), **kw}
    with pytest.raises(UserError, match=match):
        load(**kw)


def test_cifar_errors(tmp_path):
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    _truncate(folder / "data_batch_2", 100)
    with pytest.raises(
        UserError,
        match=r"data_batch_2' cannot be read as a CIFAR-10 python "
        r"batch \(.*\); expected a pickled dict",
    ):
        load(name="cifar10", dir=str(tmp_path))
    # A pickle that would run code is refused, not executed.
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": os.system}, f)
    with pytest.raises(UserError, match=r"asks to load posix.system"):
        load(name="cifar10", dir=str(tmp_path))
    batch(folder / "data_batch_2", cifar_images(4)[:, :16], np.zeros(4))
    with pytest.raises(
        UserError,
        match=r"data_batch_2' is not a CIFAR-10 batch: b'data' is "
        r"array uint8 \(4, 1536\); expected",
    ):
        load(name="cifar10", dir=str(tmp_path))
    os.remove(folder / "test_batch")
    with pytest.raises(UserError, match=r"'.*cifar-10-batches-py' lacks \['test_batch'\]"):
        load(name="cifar10", dir=str(tmp_path))


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=pixels(4, (28, 28)), y_train=np.arange(4))
    # Readable, only not the Keras layout: not called unreadable.
    with pytest.raises(
        UserError, match=r"^'[^(]*mnist.npz' has no array\(s\) \['x_test', 'y_test'\]"
    ):
        load(dir=str(tmp_path))
    np.savez(
        tmp_path / "mnist.npz",
        x_train=np.ones((4, 28, 28)),
        y_train=np.arange(4),
        x_test=pixels(2, (28, 28)),
        y_test=np.arange(2),
    )
    with pytest.raises(UserError, match=r"array 'x_train' has dtype float64 .* expected uint8"):
        load(dir=str(tmp_path))
    # One-hot labels: their shape as it is (it was said flattened, "(40,)"); (N, 1) is read.
    one_hot = np.eye(10)[np.arange(4)]
    arrays = dict(x_train=pixels(4, (28, 28)), x_test=pixels(2, (28, 28)), y_test=np.arange(2))
    np.savez(tmp_path / "mnist.npz", y_train=one_hot, **arrays)
    said = r"4 images but labels of shape \(4, 10\); .* \(one-hot rows\? save y.argmax\(axis=1\)\)"
    with pytest.raises(UserError, match=said):
        load(dir=str(tmp_path))
    np.savez(tmp_path / "mnist.npz", y_train=np.arange(4)[:, None], **arrays)
    assert load(dir=str(tmp_path)).num_features == 28 * 28  # (N, 1) labels: read


def test_tfds_missing_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now fails
    with pytest.raises(
        UserError,
        match=r"'tfds:mnist' needs TensorFlow Datasets, which is not "
        r"installed: pip install tensorflow-datasets",
    ):
        load(name="tfds:mnist", dir=str(tmp_path))


def test_tfds_mock_data(tmp_path):
    tfds = pytest.importorskip(
        "tensorflow_datasets",
        reason="optional extra: pip install tensorflow-datasets to test the tfds: path",
    )
    with tfds.testing.mock_data(num_examples=12):
        ds = load(name="tfds:mnist", dir=str(tmp_path), limit=5)
        source = tfds.data_source("mnist", split="train", data_dir=str(tmp_path), download=False)
        expected = np.stack([source[i]["image"] for i in range(5)]).reshape(5, -1)
        labels = [source[i]["label"] for i in range(5)]
    assert ds.train.shape == (5, 784) and ds.val.shape == (12, 784)
    assert ds.image_shape == (28, 28) and ds.name == "tfds:mnist"
    np.testing.assert_array_equal(ds.train, (expected / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.labels_train, labels)


def _fake_tfds(splits: dict) -> types.SimpleNamespace:
    """A stand-in for tensorflow_datasets: data_source(name, split=...) gives `splits[split]`
    (a list of rows), and for a split it lacks raises TFDS's own error for an unknown split."""

    def data_source(name, split, data_dir=None, download=True):
        assert not download
        if split not in splits:
            raise ValueError(f'Unknown split "{split}". Should be one of {sorted(splits)}.')
        return splits[split]

    return types.SimpleNamespace(data_source=data_source)


def test_tfds_set_without_a_test_split_or_of_many_image_shapes(tmp_path, monkeypatch):
    """A set without a 'test' split validates on its 'validation' split (one without either
    was told to prepare the set it had prepared: a probe); images of several shapes (many TFDS
    sets') are refused naming them (np.stack's traceback)."""
    rng = np.random.default_rng(0)

    def rows(n, shape):
        return [{"image": rng.integers(0, 256, shape, np.uint8), "label": i % 3} for i in range(n)]

    train, held_out = rows(12, (8, 8, 1)), rows(5, (8, 8, 1))
    fake = _fake_tfds({"train": train, "validation": held_out})
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    ds = load(name="tfds:imagenette", dir=str(tmp_path))
    assert ds.val.shape == (5, 64) and ds.image_shape == (8, 8)
    expected = np.stack([r["image"] for r in held_out]).reshape(5, 64) / 255.0
    np.testing.assert_array_equal(ds.val, expected.astype(np.float32))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", _fake_tfds({"train": train}))
    said = r"'tfds:imagenette' has no 'test' or 'validation' split \(ValueError: Unknown split"
    with pytest.raises(UserError, match=said):
        load(name="tfds:imagenette", dir=str(tmp_path))
    ragged = train[:6] + rows(6, (6, 7, 1))
    fake = _fake_tfds({"train": ragged, "test": held_out})
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    with pytest.raises(UserError, match=r"split 'train' holds images of 2 shapes \(\(8, 8, 1\), "):
        load(name="tfds:imagenette", dir=str(tmp_path))


def test_tfds_set_not_prepared(tmp_path):
    pytest.importorskip(
        "tensorflow_datasets",
        reason="optional extra: pip install tensorflow-datasets to test the tfds: path",
    )
    with pytest.raises(
        UserError,
        match=r"'tfds:mnist': TFDS cannot read split 'train' from "
        r"data.dir '.*' \(it has no folder 'mnist': the set is "
        r"not prepared there\); prepare it once .* tfds build",
    ):
        load(name="tfds:mnist", dir=str(tmp_path))
    with pytest.raises(UserError, match=r"'tfds:mnist': data.dir '.*nowhere' does not exist; exp"):
        load(name="tfds:mnist", dir=str(tmp_path / "nowhere"))


def test_channels_first_images_are_refused_and_channels_last_kept(tmp_path, caplog):
    """(N, 3, 8, 8) and (N, 3, 8, 12) are PyTorch's layout of colour images, refused with the
    fix, from a file and from a Keras-layout archive of an image set alike (data.dir trained
    (N, 1, 28, 28) as 1 x 28 pixels of 28 channels); arrays whose second and third axes are
    small (patches, signals) are channels last. A cut-off archive is a UserError."""
    rng = np.random.default_rng(0)
    for shape in ((20, 3, 8, 8), (20, 3, 8, 12), (20, 1, 28, 28)):
        np.save(tmp_path / "chw.npy", rng.integers(0, 256, shape, dtype=np.uint8))
        with pytest.raises(UserError, match=r"channels first .*np.moveaxis\(x, 1, -1\)"):
            load(path=str(tmp_path / "chw.npy"))
    x, xt = pixels(N_TRAIN, (28, 28))[:, None], pixels(N_TEST, (28, 28))[:, None]
    keras = dict(x_train=x, y_train=np.arange(N_TRAIN) % 10, y_test=np.arange(N_TEST) % 10)
    np.savez(tmp_path / "mnist.npz", x_test=xt, **keras)
    with pytest.raises(UserError, match=r"array 'x_train' has shape \(\d+, 1, 28, 28\): images"):
        load(name="mnist", dir=str(tmp_path))
    # An image set's archive takes no data.image_shape: not offered as a way out (it was).
    with pytest.raises(UserError, match=r"np.moveaxis\(x, 1, -1\) instead$"):
        load(name="mnist", dir=str(tmp_path))
    with pytest.raises(UserError, match=r"instead \(if it is H x W x C, save it flattened"):
        load(path=str(tmp_path / "chw.npy"))  # a file of its own: it may
    for field in ("--input", "--data", ""):  # new rows for a trained run: the shape is its own
        with pytest.raises(UserError, match=r"np.moveaxis\(x, 1, -1\) instead$"):
            read_table(str(tmp_path / "chw.npy"), field=field)
    # grey images with or without their one channel axis are one shape
    np.savez(tmp_path / "mnist.npz", x_test=xt[:, 0, :, :, None], **{**keras, "x_train": x[:, 0]})
    assert load(name="mnist", dir=str(tmp_path)).image_shape == (28, 28)
    data = (tmp_path / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(data[: len(data) // 2])
    for how in (dict(name="mnist", dir=str(tmp_path)), dict(path=str(tmp_path / "mnist.npz"))):
        with pytest.raises(UserError, match=r"cannot be read as a NumPy .npz"):
            load(**how)
    caplog.set_level("WARNING")
    for shape in ((20, 3, 3, 13), (20, 4, 4, 8), (20, 1, 128, 2)):
        np.save(tmp_path / "hwc.npy", rng.integers(0, 256, shape, dtype=np.uint8))
        assert load(path=str(tmp_path / "hwc.npy")).image_shape == shape[1:]
        assert f"images of {shape[3]} channels train and evaluate" in caplog.text


def test_messages_point_to_the_setting_that_reads_the_file(tmp_path):
    """A Keras-layout archive given as data.path, a file given as data.dir, and a pixel CSV
    whose extra column is its label: each message names the fix (the image probe)."""
    x = pixels(N_TRAIN, (28, 28))
    np.savez(
        tmp_path / "mnist.npz",
        x_train=x,
        y_train=np.arange(N_TRAIN) % 10,
        x_test=x,
        y_test=x[:, 0, 0],
    )
    with pytest.raises(UserError, match=r"Keras layout of an image set: data.name='mnist'"):
        load(path=str(tmp_path / "mnist.npz"))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(UserError, match=r"is a file, not a directory; expected the directory"):
        load(name="mnist", dir=str(tmp_path / "train-images-idx3-ubyte.gz"))
    rows = ["label," + ",".join(f"pixel{j}" for j in range(4))]
    rows += [f"{i % 10}," + ",".join(str((i * 7 + j) % 256) for j in range(4)) for i in range(20)]
    (tmp_path / "kaggle.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(UserError, match=r"may be a label: data.label_column='label'"):
        load(path=str(tmp_path / "kaggle.csv"), image_shape=(2, 2))
    # pjreddie's MNIST CSV has no header: its first row of pixels repeats values (0, 0, ...)
    (tmp_path / "mnist_train.csv").write_text("5,0,0,0,12\n" + "\n".join(rows[1:]) + "\n")
    with pytest.raises(UserError, match=r"the first row .* looks like data; expected a header"):
        load(path=str(tmp_path / "mnist_train.csv"))
