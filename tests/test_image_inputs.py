"""New images given to a trained image run: the model's shape and units, or a clear refusal;
and image figures drawn in the data's own units whatever the scaling (the image probe)."""

import dataclasses
import gzip
import struct
import warnings

import jax
import numpy as np
import pytest
from scipy import ndimage
from sklearn.datasets import load_digits

import ae_jax
from ae_jax import data as data_lib
from ae_jax.configs import seed_simple
from ae_jax.data import images as images_lib
from ae_jax.data import pixel_checks, preprocess_io
from ae_jax.evaluation import eval_data, figure_data
from ae_jax.evaluation import figures as figures_lib


def _train(tmp_path, name, images, **data):
    np.save(tmp_path / f"{name}.npy", images)
    c = seed_simple.get_config()
    c.data.path = str(tmp_path / f"{name}.npy")
    for key, value in data.items():
        c.data[key] = value
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    c.train.tensorboard = False
    ae_jax.train_and_evaluate(c, str(tmp_path / name))
    return ae_jax.load(str(tmp_path / name))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    digits = load_digits().images  # (1797, 8, 8), whole numbers 0..16
    floats = _train(root, "floats", (digits / 16).astype(np.float32))  # [0, 1], minmax
    pixels = _train(root, "pixels", (digits * 15).astype(np.uint8))  # 0..240 of 0..255
    return floats, pixels, digits


def test_images_in_other_units_are_refused_under_scaling_none_too(tmp_path, caplog):
    """data.scaling='none' (the shipped conv configs' setting) kept no range of the training
    images, so 0..255 images given to a model of [0, 1] floats were encoded, and evaluated
    (recon/mse 0.56, white blocks drawn) with a clipping warning only (a probe). The training
    images' range is saved (preprocessor.json `span`) and checked as under the other scalings;
    a run saved before it (no span) is read and not checked."""
    digits = load_digits().images[:300]
    ok = (digits / 16).astype(np.float32)
    run = _train(tmp_path, "none", ok, scaling="none")
    assert run.preprocessor.span == (0.0, 1.0)
    with pytest.raises(ae_jax.UserError) as e:
        run.encode((digits[:5] * 15).astype(np.uint8))
    said = str(e.value)
    assert "reach 0 .. 240 after the run's data.scaling='none', which keeps the training" in said
    assert said.endswith("Give them in the training images' units (they spanned 0 .. 1)")
    caplog.set_level("WARNING")
    assert run.encode(ok[:5] / 255).shape[0] == 5  # dark: encoded, and said
    assert "reach only 0.003922 of the training images' range after the run's data.scal" in (
        caplog.text
    )
    caplog.clear()
    run.encode(ok[:5] / 4 + 0.5)  # within reach: nothing said
    assert not caplog.text
    run.preprocessor.span = None  # as a run saved before the span was
    assert run.encode((digits[:5] * 15).astype(np.uint8)).shape[0] == 5
    saved = preprocess_io.to_dict(run.preprocessor)
    with pytest.raises(ae_jax.UserError, match=r"field 'span' is 'x'; expected \[lowest, high"):
        preprocess_io.from_dict({**saved, "span": "x"})  # a damaged file: no TypeError


def test_constant_training_images_are_said_to_span_their_one_value(tmp_path):
    """Training images all 7 (min-max scale 1, kept from a division by 0): images of 100 were
    refused as reaching 93 "(they spanned 7 .. 8)", a range the data never had (a probe)."""
    run = _train(tmp_path, "sevens", np.full((100, 6, 6), 7.0, np.float32))
    with pytest.raises(
        ae_jax.UserError, match=r"reach 93 \.\. 93 after .*\(they spanned 7 \.\. 7\)$"
    ):
        run.features(np.full((1, 6, 6), 100.0, np.float32))


def test_dim_pixels_given_to_a_model_of_0_to_255_intensities_are_said(runs, caplog):
    """Counts 0..16 (the digits as saved) given to a model trained on intensities 0..255 were
    encoded and evaluated without a word, as training would have warned of them (a probe)."""
    _, pixels, digits = runs
    caplog.set_level("WARNING")
    assert pixels.encode(digits[:5].astype(np.uint8)).shape[0] == 5
    assert "pixel intensities whose largest is 16, under an eighth of the run's 0..255" in (
        caplog.text
    )
    caplog.clear()
    pixels.encode((digits[:5] * 15).astype(np.uint8))  # its own units: nothing said
    pixels.encode((digits[:5] * 2).astype(np.uint8))  # dark, up to 32: nothing said either
    pixels.encode(np.zeros((1, 8, 8), np.uint8))  # all black: nothing to tell
    assert not caplog.text


def test_images_of_another_shape_or_in_other_units_are_refused(runs, tmp_path, caplog):
    floats, pixels, digits = runs
    ok = (digits[:5] / 16).astype(np.float32)
    assert floats.encode(ok).shape == (5, floats.config.model.latent_dim)
    assert floats.encode(ok[..., None]).shape == (5, floats.config.model.latent_dim)  # (8, 8, 1)
    # 4 x 16 images have the 64 pixels of 8 x 8 ones: matched by position, they were encoded.
    with pytest.raises(
        ae_jax.UserError, match=r"images of shape \(4, 16\); the model was .*\(8, 8\)"
    ):
        floats.encode(ok.reshape(5, 4, 16))
    # Colour images for a grey model: told to convert the colours (it said "resize them").
    rgb = np.repeat(ok[..., None], 3, axis=-1)
    with pytest.raises(
        ae_jax.UserError, match=r"\(8, 8\): convert their colours \(RGB -> grey\) f"
    ):
        floats.encode(rgb)
    with pytest.raises(ae_jax.UserError, match=r"colours \(RGB -> grey\) and resize them first$"):
        floats.encode(np.tile(rgb, (1, 2, 2, 1)))
    # 0..255 pixels given to a model of [0, 1] floats were scaled to up to ~255 and encoded.
    with pytest.raises(
        ae_jax.UserError,
        match=r"reach 0 .. 255 after .*Give them in the training images' units \(they spanned "
        r"0 .. 1\)$",  # (it said "divide them by 255" whatever the training's units)
    ):
        floats.encode((digits[:5] * 16).clip(0, 255).astype(np.uint8))
    # Far darker than training's (1/255 of it: [0, 1] images for a 0..255 model): encoded,
    # and said (they were encoded without a word: a probe).
    caplog.set_level("WARNING")
    assert floats.encode(ok / 255).shape[0] == 5
    assert "its images reach only 0.003922 of the training images' range after the run's " in (
        caplog.text
    )
    assert "(they spanned 0 .. 1): images in other units" in caplog.text
    caplog.clear()
    floats.encode(ok / 4)  # dark, but within reach: nothing said
    assert not caplog.text
    # A type the model cannot read: the shape as given (it said (5, 64), as if that were wrong),
    # and, that shape fitting, only the dtype to change (not a reshape: a review).
    with pytest.raises(ae_jax.UserError) as e:
        floats.encode(ok.astype(np.complex64))
    assert str(e.value) == (
        "the input array has shape (5, 8, 8) and dtype complex64; expected real numbers, "
        "true/false or raw strings, not that dtype"
    )
    # One image without its batch axis: told so (it was "expected (N, 64)" alone: a probe;
    # test_one_image_without_a_batch_axis_is_told_to_add_one has the rest).
    with pytest.raises(ae_jax.UserError, match=r"shape \(8, 8\), without a batch axis"):
        floats.encode(ok[0])
    # Channels first, in memory: told so, as from a file (it said "convert their colours
    # (8 channels -> grey) and resize them").
    with pytest.raises(
        ae_jax.UserError,
        match=r"^the input array has shape \(5, 1, 8, 8\): images with their channels first .*"
        r"save np.moveaxis\(x, 1, -1\) instead$",
    ):
        floats.encode(np.zeros((5, 1, 8, 8), np.float32))
    np.save(tmp_path / "other.npy", ok.reshape(5, 4, 16))
    with pytest.raises(ae_jax.UserError, match=r"--data '.*other.npy' holds images of shape"):
        eval_data.evaluation_data(floats, str(tmp_path / "other.npy"))
    # Binarised images (0 and 1) given to a model of 0..255 pixels were divided by 255: black.
    assert pixels.encode((digits[:5] * 15).astype(np.uint8)).shape[0] == 5
    with pytest.raises(ae_jax.UserError, match=r"every pixel is 0 or 1 \(binarised images\?\)"):
        pixels.encode((digits[:5] > 8).astype(np.uint8))


def test_pixels_out_of_a_models_range_are_told_the_way_back():
    """New rows for a model of digits' 0..16 intensities: every refusal said "multiply them by
    16", which made 0..255 images (or negative ones) worse. Each kind now gets its own way."""
    c = seed_simple.get_config()
    c.data.name = "digits"
    p = data_lib.load_dataset(c.data).preprocessor
    digits = load_digits().data  # (1797, 64), whole numbers 0..16
    assert p.transform(digits[:3]).shape == (3, 64)
    for rows, fix in (
        (digits[:3] / 16, r"images already in \[0, 1\]: multiply them by 16\)"),
        (digits[:3] * 15, r"images of 0\.\.255: multiply them by 16/255 and round\)"),
        (digits[:3] - 8, r"these span -8\.\.8: map them to whole numbers 0\.\.16\)"),
        (digits[:3] + 0.5, r"these span 0\.5\.\.16\.5: map them to whole numbers 0\.\.16\)"),
        (digits[:3] * 0.9, r"round them to whole numbers\)"),
        (-digits[:3], r"these span -16\.\.0: map them"),  # (it said -16..-0)
    ):
        with pytest.raises(ae_jax.UserError, match=r"trained on pixel intensities.*" + fix):
            p.transform(rows)


def test_image_figures_are_drawn_in_the_datas_units_whatever_the_scaling(runs):
    """Under a scaling that centres the data (data.scaling='standard') the figures drew
    z-scores stretched together: wrong colours and a grey background. They draw the data's
    own values over the evaluated rows' range; reconstructions beyond it are clipped."""
    floats, _, digits = runs
    data = eval_data.evaluation_data(floats)
    raw = data.x * data.scale + data.offset  # minmax: the [0, 1] floats themselves
    mean, std = raw.mean(axis=0), raw.std(axis=0) + 0.1
    centred = dataclasses.replace(
        data, x=((raw - mean) / std).astype(np.float32), offset=mean, scale=std
    )
    params = jax.tree.map(lambda a: np.asarray(a)[None], floats.params)
    for d in (data, centred):
        (f,) = figure_data.figure_inputs(
            floats.model, params, d, [floats.config], None, [None], floats.epoch
        )
        np.testing.assert_allclose(f.x_show, raw[: len(f.x_show)], atol=1e-5)
        assert f.image_range == pytest.approx((0.0, 1.0), abs=1e-6)
        assert f.rows_name == "validation rows"
        (mosaic,) = [
            x.args[0] for x in figures_lib.plan("/tmp/unused", f) if x.path.endswith("ons.png")
        ]
        np.testing.assert_allclose(mosaic[:8, :8], raw[0].reshape(8, 8), atol=1e-5)
        assert mosaic.min() >= 0 and mosaic.max() <= 1


def test_pixel_images_are_drawn_over_their_intensity_range(runs):
    """Pixel data (whole intensities 0..255) was drawn over [0, its brightest evaluated pixel]:
    a dim set (at most 100) looked fully bright and reconstructions brighter than it white (a
    probe). Pixels are drawn over 0..255 now, so a dim set looks dim."""
    _, pixels, _ = runs
    data = eval_data.evaluation_data(pixels)  # 0..240 of 0..255
    dim = dataclasses.replace(data, x=(data.x * 100 / 240).astype(np.float32))  # 0..100
    params = jax.tree.map(lambda a: np.asarray(a)[None], pixels.params)
    for d, brightest in ((data, 240), (dim, 100)):
        (f,) = figure_data.figure_inputs(
            pixels.model, params, d, [pixels.config], None, [None], pixels.epoch
        )
        assert f.image_range == (0.0, 255.0)
        raw = d.x * d.scale + d.offset
        assert raw.max() == pytest.approx(brightest, abs=1e-3)
        (mosaic,) = [
            x.args[0] for x in figures_lib.plan("/tmp/unused", f) if x.path.endswith("ons.png")
        ]
        np.testing.assert_allclose(mosaic[:8, :8], raw[0].reshape(8, 8) / 255, atol=1e-5)


@pytest.mark.parametrize("name", ["t10k-images-idx3-ubyte.gz", "t10k-images.idx3-ubyte"])
def test_idx_files_of_images_are_read_like_the_same_npy(runs, tmp_path, name):
    """MNIST's published IDX files (gzipped or not, torchvision's '.idx3' name too) can be
    given to evaluate and encode of an image run, read as the same images in a .npy are;
    the labels file is refused, naming what to give instead."""
    _, pixels, digits = runs
    images = (digits[:7] * 15).astype(np.uint8)
    raw = struct.pack(">I3I", 0x0803, *images.shape) + images.tobytes()
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    np.save(tmp_path / "same.npy", images)
    np.testing.assert_array_equal(pixels.encode(str(path)), pixels.encode(images))
    from_idx = eval_data.evaluation_data(pixels, str(path))
    from_npy = eval_data.evaluation_data(pixels, str(tmp_path / "same.npy"))
    np.testing.assert_array_equal(from_idx.x, from_npy.x)
    assert from_idx.x.shape == (7, 64) and from_idx.labels is None
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">II", 0x0801, 7) + bytes(7))
    with pytest.raises(ae_jax.UserError, match=r"labels-idx1-ubyte' is an IDX file of 1 dim"):
        pixels.encode(str(labels))
    other = tmp_path / "x-idx4-ubyte"
    other.write_bytes(struct.pack(">I4I", 0x0804, 7, 8, 8, 1) + bytes(7 * 64))
    with pytest.raises(ae_jax.UserError, match=r"of 4 dimension\(s\) \(not grey images\)"):
        pixels.encode(str(other))


def test_a_declared_image_shape_must_be_the_arrays_own():
    """(N, 28, 28) with data.image_shape=(14, 56) trained on regrouped pixels, silently (only
    the pixel count was checked); a single channel written or not is the same shape."""
    assert images_lib.declared_shape((), (28, 28), "f") == (28, 28)
    assert images_lib.declared_shape((28, 28), (28, 28, 1), "f") == (28, 28)
    assert images_lib.declared_shape((28, 28, 1), (28, 28), "f") == (28, 28, 1)
    assert images_lib.declared_shape((2, 3), None, "f") == (2, 3)  # a flat table's: declared
    with pytest.raises(ae_jax.UserError, match=r"image_shape \(14, 56\) differs .* \(28, 28\)"):
        images_lib.declared_shape((14, 56), (28, 28), "f")
    with pytest.raises(ae_jax.UserError, match="differs"):
        images_lib.declared_shape((28, 28, 3), (28, 28, 1), "f")


def test_a_uint8_array_of_small_codes_is_said_to_be_read_as_pixels(tmp_path, caplog):
    """uint8 means pixel intensities 0..255, divided by 255: an array of codes 0..3 was divided
    without a word; the log now says how it was read, and warns of the small largest value."""
    codes = np.random.default_rng(0).integers(0, 4, size=(50, 6)).astype(np.uint8)
    np.save(tmp_path / "codes.npy", codes)
    c = seed_simple.get_config()
    c.data.path = str(tmp_path / "codes.npy")
    caplog.set_level("INFO")
    ds = data_lib.load_dataset(c.data)
    assert "uint8, read as pixel intensities 0..255, divided by 255" in caplog.text
    said = "whose largest value is 3, divided by 255 into [0, 0.0118]: if these are codes or"
    assert said in caplog.text and "or save them as a 2-D array of int64 or float32" in caplog.text
    assert float(ds.train.max()) == pytest.approx(3 / 255)
    caplog.clear()
    np.save(tmp_path / "px.npy", (codes * 80).astype(np.uint8))  # real intensities: no warning
    c.data.path = str(tmp_path / "px.npy")
    data_lib.load_dataset(c.data)
    assert "divided by 255" in caplog.text and "largest value" not in caplog.text
    # The same counts as a table of numbers marked as images (data.image_shape): they were
    # divided by 255 without a word (the digits' counts 0..16, figures near black).
    caplog.clear()
    np.savetxt(tmp_path / "codes.csv", codes, "%d", ",", header=",".join("abcdef"), comments="")
    c.data.path, c.data.image_shape = str(tmp_path / "codes.csv"), (2, 3)
    data_lib.load_dataset(c.data)
    assert f"pixel data (data.image_shape (2, 3)) {said}" in caplog.text
    assert "or leave data.image_shape=() (then each column is a feature" in caplog.text
    caplog.clear()
    c.data.scaling = "standard"  # one mean and std per channel: not divided by 255, not dim
    assert float(data_lib.load_dataset(c.data).train.max()) > 1.0
    assert "largest value" not in caplog.text
    c.data.scaling = "minmax"
    caplog.clear()
    c.data.path, c.data.name, c.data.image_shape = "", "digits", ()  # counts 0..16, by 16: fine
    data_lib.load_dataset(c.data)
    assert "largest value" not in caplog.text


def test_a_uint8_table_of_fewer_columns_than_an_image_is_warned_of(tmp_path, caplog):
    """A table of ages and counts saved as uint8 (3 columns) was read as pixels, each divided by
    255 (a column of 0..4 into [0, 0.016]), said only as information (a probe). Fewer columns
    than an 8 x 8 image's 64, with no data.image_shape, are warned of; 64 columns, or a shape
    given, are pixels as before."""
    rng = np.random.default_rng(12)
    table = np.stack([rng.integers(18, 90, 40), rng.integers(0, 5, 40), rng.integers(0, 120, 40)])
    np.save(tmp_path / "t.npy", table.T.astype(np.uint8))
    c = seed_simple.get_config()
    c.data.path = str(tmp_path / "t.npy")
    caplog.set_level("WARNING")
    ds = data_lib.load_dataset(c.data)
    assert ds.preprocessor.pixel_max == 255  # read as pixels, as uint8 means
    assert caplog.text.count("its 3 columns are fewer than an 8 x 8 image's 64, and neither") == 1
    assert "save them as int64 or float32, and each is a feature, scaled by data" in caplog.text
    # Shaped: declared, 64 columns, or (N, 7, 7) images (the array's own shape: a review).
    for shape, columns in [((1, 3), (3,)), ((), (64,)), ((), (7, 7))]:
        caplog.clear()
        x = rng.integers(0, 256, (40, *columns)).astype(np.uint8)
        np.save(tmp_path / "p.npy", x)
        c.data.path, c.data.image_shape = str(tmp_path / "p.npy"), shape
        data_lib.load_dataset(c.data)
        assert "fewer than an 8 x 8 image" not in caplog.text


def test_missing_pixels_are_imputed_as_whole_intensities(tmp_path):
    """data.missing='impute' on pixel data (data.image_shape) was refused whenever a column's
    training mean was no whole number, the refusal naming that mean as the file's value at a
    cell that held NaN (a probe). A missing pixel is now its column's training mean rounded, in
    training and in a new file's rows alike."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(50, 16)).astype(np.float64)
    x[5, 3] = x[9, 7] = np.nan
    np.save(tmp_path / "px.npy", x)
    c = seed_simple.get_config()
    c.data.path, c.data.missing, c.data.image_shape = str(tmp_path / "px.npy"), "impute", (4, 4)
    ds = data_lib.load_dataset(c.data)
    for r, j in ((5, 3), (9, 7)):
        want = np.round(np.mean(x[ds.train_indices, j][~np.isnan(x[ds.train_indices, j])]))
        assert ds.preprocessor.fill[f"pixel_{j}"] == want
        split, pos = (
            (ds.train, list(ds.train_indices).index(r))
            if r in ds.train_indices
            else (ds.val, list(ds.val_indices).index(r))
        )
        assert split[pos, j] == np.float32(want / 255)
    new = x[[5]]  # a new file's row with the same missing pixel
    np.testing.assert_array_equal(
        ds.preprocessor.transform(new)[0, 3], np.float32(ds.preprocessor.fill["pixel_3"] / 255)
    )
    # Saved when these pixels were named x_0, ... (and their fills so): the same preprocessing.
    old = preprocess_io.to_dict(ds.preprocessor)
    old["input_columns"] = old["columns"] = [f"x_{j}" for j in range(16)]
    old["fill"] = {f"x_{k[len('pixel_') :]}": v for k, v in old["fill"].items()}
    assert preprocess_io.difference(ds.preprocessor, preprocess_io.from_dict(old)) == ""


def test_pixel_columns_without_an_image_shape_are_told_how_to_read_them(tmp_path, caplog):
    """A flat (N, 784) uint8 array trained as a table (table figures, no conv model), and a
    Kaggle-layout CSV (label, pixel0 .. pixel783) was min-max scaled pixel by pixel, both
    without a word (a probe): each names data.image_shape with the square shape."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(20, 784)).astype(np.uint8)
    np.save(tmp_path / "flat.npy", x)
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    rows = np.column_stack([np.arange(20) % 10, x])
    np.savetxt(tmp_path / "kaggle.csv", rows, fmt="%d", delimiter=",", header=header, comments="")
    c = seed_simple.get_config()
    caplog.set_level("INFO")
    for path, label, level in (
        ("flat.npy", "", "INFO"),
        ("kaggle.csv", "label", "WARNING"),
        ("kaggle.csv", "", "WARNING"),  # the label kept as a feature, by default: said so
    ):
        caplog.clear()
        c.data.path, c.data.label_column = str(tmp_path / path), label
        data_lib.load_dataset(c.data)
        (said,) = [r for r in caplog.records if "data.image_shape=(28, 28)" in r.message]
        assert said.levelname == level
    assert "'pixel0' ... 'pixel783' look like the pixels of an image" in said.message
    assert "each min-max scaled on its own range, beside 'label' as one more feature" in (
        said.message
    )
    assert "set data.image_shape=(28, 28) and data.label_column='label' if each row" in (
        said.message
    )
    caplog.clear()
    c.data.scaling = "standard"  # said as it is scaled (it said min-max whatever the scaling)
    data_lib.load_dataset(c.data)
    assert "each standardised with its own mean and sd" in caplog.text
    caplog.clear()
    c.data.scaling, c.data.label_column = "minmax", "label"
    c.data.image_shape = (28, 28)  # said: read as images, nothing to hint
    assert data_lib.load_dataset(c.data).image_shape == (28, 28)
    assert "if each row is an image" not in caplog.text
    caplog.clear()
    c.data.image_shape, c.data.path = (), str(tmp_path / "few.csv")
    np.savetxt(
        tmp_path / "few.csv",
        rows[:, :64],
        fmt="%d",
        delimiter=",",
        comments="",
        header=",".join(header.split(",")[:64]),
    )  # 63 pixel columns: a table
    data_lib.load_dataset(c.data)
    assert "if each row is an image" not in caplog.text


def test_pixel_columns_sorted_by_name_are_read_in_the_order_of_their_numbers(tmp_path, caplog):
    """A CSV's pixel0 ... pixel63 written sorted by name (pixel0, pixel1, pixel10, ...) were
    read in the file's order with data.image_shape set: every image scrambled, its figures
    stripes, silently (a probe). They are read as the numbers say, and the log says so."""
    caplog.set_level("INFO")
    x = load_digits().data.astype(np.int64) * 15  # whole intensities 0..240
    names = [f"pixel{j}" for j in range(64)]
    by_name = sorted(range(64), key=lambda j: names[j])  # pixel0, pixel1, pixel10, ...
    runs = {}
    for kind, order in (("numbered", list(range(64))), ("by_name", by_name)):
        path = tmp_path / f"{kind}.csv"
        header = "label," + ",".join(names[j] for j in order)
        rows = np.column_stack([np.arange(len(x)) % 10, x[:, order]])
        np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")
        c = seed_simple.get_config().data
        c.path, c.label_column, c.image_shape = str(path), "label", (8, 8)
        caplog.clear()
        runs[kind] = data_lib.load_dataset(c)
        moved = "its 64 pixel columns are read in the order of their numbers"
        assert (moved in caplog.text) == (kind == "by_name"), caplog.text
    assert "the file has 'pixel10' at position 3, where 'pixel2' belongs" in caplog.text
    a, b = runs["numbered"], runs["by_name"]
    assert b.columns == names and b.image_shape == (8, 8)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.val, b.val)
    # The rows are the images: the first training row is digit data row train_indices[0].
    np.testing.assert_array_equal(b.train[0] * 255, x[b.train_indices[0]].astype(np.float32))


def test_one_image_without_a_batch_axis_is_told_to_add_one(runs, tmp_path):
    """One image of the model's shape, as an array or a file: a grey (8, 8) one named missing
    columns, a colour (4, 4, 3) one was told to "convert their colours" as 4 images of (4, 3)
    (a probe). Told to add the batch axis, which then encodes it."""
    floats, _, digits = runs
    one = (digits[0] / 16).astype(np.float32)
    said = r"holds one image of the model's shape \(8, 8\), without a batch axis .* x\[None\]"
    for rows in (one, one[..., None]):
        with pytest.raises(ae_jax.UserError, match=said.replace("8\\)", "8(, 1)?\\)", 1)):
            floats.encode(rows)
    np.save(tmp_path / "one.npy", one)
    with pytest.raises(ae_jax.UserError, match=r"one.npy' holds one image of the model's"):
        floats.encode(str(tmp_path / "one.npy"))
    # `ae-jax evaluate --data`: it was 8 rows "by position" against the model's 64 columns.
    with pytest.raises(ae_jax.UserError, match=r"--data '.*one.npy' holds one image of the mo"):
        eval_data.evaluation_data(floats, str(tmp_path / "one.npy"))
    np.testing.assert_array_equal(floats.encode(one[None]), floats.encode(digits[:1] / 16))
    rng = np.random.default_rng(0)
    colour = _train(tmp_path, "colour", rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8))
    image = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    with pytest.raises(ae_jax.UserError, match=r"shape \(4, 4, 3\), without a batch axis"):
        colour.encode(image)
    assert colour.encode(image[None]).shape == (1, colour.config.model.latent_dim)


def test_a_file_of_pixel_columns_without_underscores_encodes_for_a_run_trained_on_an_array(
    runs, tmp_path
):
    """A run trained from an array names its pixels pixel_0 ...; a file's pixel0 ... (as
    Kaggle's CSVs write them, here sorted by name) were refused with every name listed (a
    probe): matched by their numbers. Numbered from 1, one name is left on each side."""
    _, pixels, digits = runs
    x = (digits[:5] * 15).astype(np.int64).reshape(5, -1)
    order = sorted(range(64), key=lambda j: f"pixel{j}")
    header = ",".join(f"pixel{j}" for j in order)
    np.savetxt(tmp_path / "k.csv", x[:, order], fmt="%d", delimiter=",", header=header, comments="")
    np.testing.assert_array_equal(pixels.encode(str(tmp_path / "k.csv")), pixels.encode(x))
    header = ",".join(f"pixel{j + 1}" for j in range(64))
    np.savetxt(tmp_path / "k1.csv", x, fmt="%d", delimiter=",", header=header, comments="")
    with pytest.raises(ae_jax.UserError, match=r"has 64: missing 'pixel_0'; extra 'pixel64'"):
        pixels.encode(str(tmp_path / "k1.csv"))


def test_an_array_of_true_false_images_is_said_to_be_images_of_0_and_1(tmp_path):
    """A bool (N, 8, 8) array trains as 8 x 8 images of 0 and 1 (no scaling, any
    data.scaling), and its data line says so (it said "64 columns: 64 true/false": a probe)."""
    x = np.random.default_rng(0).random((50, 8, 8)) > 0.5
    np.save(tmp_path / "b.npy", x)
    for scaling in ("minmax", "standard"):
        c = seed_simple.get_config().data
        c.path, c.scaling = str(tmp_path / "b.npy"), scaling
        ds = data_lib.load_dataset(c)
        assert ds.kinds_text() == "64 pixels of 8x8 images, true/false read as 1 and 0, not scaled"
        assert ds.image_shape == (8, 8) and set(np.unique(ds.train)) == {0.0, 1.0}
        rows = x.reshape(50, -1)[ds.train_indices].astype(np.float32)
        np.testing.assert_array_equal(ds.train, rows)


def _colour_digits(n: int = 300) -> np.ndarray:
    """(n, 8, 8, 3) uint8 colour images: the digits in three channels alike but not equal."""
    d = load_digits().images[:n] / 16
    return np.round(np.stack([d, d**2, np.sqrt(d)], axis=-1) * 255).astype(np.uint8)


def test_flat_rows_stored_channels_first_are_said_to_be(tmp_path, caplog):
    """CIFAR's python batches store each row as (C, H, W) flattened: given data.image_shape
    (H, W, C), each image was read as three thin copies, trained on and evaluated without a
    word (a probe: 270x the MSE of the same images stored channels last)."""
    rgb = _colour_digits()
    planar = rgb.transpose(0, 3, 1, 2).reshape(len(rgb), -1)
    caplog.set_level("WARNING")
    run = _train(tmp_path, "planar", planar, image_shape=(8, 8, 3))
    assert "its rows may be stored channels first, (C, H, W) flattened" in caplog.text
    assert "x.reshape(-1, 3, 8, 8).transpose(0, 2, 3, 1).reshape(len(x), -1)" in caplog.text
    caplog.clear()
    run.encode(planar[:64])  # new rows (`ae-jax encode`, `evaluate --data`) too
    assert "its rows may be stored channels first" in caplog.text
    caplog.clear()
    last = _train(tmp_path, "last", rgb.reshape(len(rgb), -1), image_shape=(8, 8, 3))
    last.encode(rgb[:64].reshape(64, -1))
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 192), dtype=np.uint8)
    last.encode(noise)  # (no smoother reading: nothing to say)
    # Stored channels last, but rough, and read channels first smoother (a review): grey
    # images in three equal channels, colour noise of channels correlated 0.9, and any
    # (N, H, W, C) array, which says its own layout.
    grey = np.repeat(rng.integers(0, 256, (64, 8, 8, 1), dtype=np.uint8), 3, axis=3)
    base, other = rng.normal(size=(64, 8, 8, 1)), rng.normal(size=(64, 8, 8, 3))
    close = np.clip(128 + 40 * (0.95 * base + 0.31 * other), 0, 255).astype(np.uint8)
    for rows in (
        grey.reshape(64, -1),
        close.reshape(64, -1),
        grey,
        planar[:64].reshape(-1, 8, 8, 3),
    ):
        last.encode(rows)
    assert "channels first" not in caplog.text
    with warnings.catch_warnings():  # images 1 pixel high: no neighbours, no "Mean of empty"
        warnings.simplefilter("error")
        pixel_checks.say_planar(noise[:, :24], (1, 8, 3), "rows")
        pixel_checks.say_planar(np.full((4, 192), np.nan), (8, 8, 3), "rows")  # (no finite row)
    assert "channels first" not in caplog.text
    with_nan = planar[:64].astype(np.float32)
    with_nan[0, 5] = np.nan  # a missing pixel's row is left out, not the check
    pixel_checks.say_planar(with_nan, (8, 8, 3), "rows")
    assert "rows: its rows may be stored channels first" in caplog.text
    # Smooth images (blurred noise), whose channels differ little from their neighbours read
    # channels last, were not warned of (a probe); grey noise tinted with colour, stored
    # channels last, is not.
    caplog.clear()
    blur = lambda a: ndimage.gaussian_filter(a, (0, 3, 3, 0))  # noqa: E731
    base, other = blur(rng.normal(size=(20, 32, 32, 1))), blur(rng.normal(size=(20, 32, 32, 1)))
    smooth = np.concatenate([base, base + other, base - other], axis=3)
    pixel_checks.say_planar(smooth.transpose(0, 3, 1, 2).reshape(20, -1), (32, 32, 3), "smooth")
    assert "smooth: its rows may be stored channels first" in caplog.text
    caplog.clear()
    for tint in (0.05, 0.2, 0.3, 0.5):
        rows = rng.normal(size=(20, 32, 32, 1)) + tint * rng.normal(size=(20, 32, 32, 3))
        pixel_checks.say_planar(rows.reshape(20, -1), (32, 32, 3), "tinted")
    assert "channels first" not in caplog.text


def test_images_with_height_and_width_swapped_are_told_to_swap_them(tmp_path):
    """(6, 4) images given to a model of (4, 6) ones were told to "resize them" (a probe)."""
    rng = np.random.default_rng(0)
    run = _train(tmp_path, "wide", rng.integers(0, 256, (40, 4, 6), dtype=np.uint8))
    tall = rng.integers(0, 256, (3, 6, 4), dtype=np.uint8)
    with pytest.raises(
        ae_jax.UserError,
        match=r"holds images of shape \(6, 4\); the model was trained on images of shape \(4, 6\)"
        r": swap height and width if stored transposed \(np.swapaxes\(x, 1, 2\)\), or resize first",
    ):
        run.encode(tall)
    assert run.encode(np.swapaxes(tall, 1, 2)).shape == (3, run.config.model.latent_dim)
    with pytest.raises(ae_jax.UserError, match=r"\(5, 6\).*: resize them to that shape first"):
        run.encode(rng.integers(0, 256, (3, 5, 6), dtype=np.uint8))
