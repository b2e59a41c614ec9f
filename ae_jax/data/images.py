"""Image data sets read from the user's own files: MNIST, Fashion-MNIST, CIFAR-10 and TFDS.

Nothing here reaches the network. `data.dir` names a directory holding the standard files:

- mnist / fashion_mnist: the four IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
  `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, gzipped or not), or a Keras-style
  `mnist.npz` / `fashion-mnist.npz` with arrays `x_train, y_train, x_test, y_test`;
- cifar10: the python batches in `cifar-10-batches-py/` (`data_batch_1..5`, `test_batch`), or a
  `cifar10.npz` like the above;
- tfds:NAME: a TFDS set already prepared in `data.dir` (the TFDS data_dir), read through
  `tfds.data_source` (random access, no TensorFlow).

The standard test split is the validation split (`data.val_fraction` does not apply). Pixels are
divided by 255 and rows flattened to (N, H*W*C), with `image_shape` (H, W) or (H, W, C) kept so
figures and conv models can reshape them. `data.binarize` gives the binarised variants of Burda
et al.: "fixed" thresholds once at 0.5 (in the `Preprocessor`, so new files get it too);
"dynamic" resamples every training step with `binarize` (in the training loop).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from absl import logging

from ae_jax.data import image_files, spellings, tfds_data
from ae_jax.data.dataset import Dataset, as_labels
from ae_jax.data.preprocess import Preprocessor
from ae_jax.errors import UserError

IMAGE_SETS = ("mnist", "fashion_mnist", "cifar10")
TFDS_PREFIX = "tfds:"
BINARIZE = ("none", "fixed", "dynamic")
THRESHOLD = 0.5  # "fixed" binarisation: a pixel is 1 where intensity > 0.5 (128/255 and up)

_CHUNK = 8192  # rows scaled at a time: bounds the float64 intermediate (CIFAR: 1.2 GB at once)


def is_image_set(name: str) -> bool:
    """Whether `data.name` names a set this module loads."""
    return name in IMAGE_SETS or name.startswith(TFDS_PREFIX)


def binarize(x: jax.Array | np.ndarray, key: jax.Array) -> jax.Array:
    """Dynamic binarisation: each pixel becomes 1 with probability equal to its intensity.

    Pure and jit-able, so the training loop can call it on every batch with a fresh key.

    Args:
        x: pixels in [0, 1], any shape.
        key: a JAX PRNG key; the same key gives the same binary image.

    Returns:
        Bernoulli(x) samples as 0.0 / 1.0, with x's shape and float dtype.
    """
    x = jax.numpy.asarray(x)
    return jax.random.bernoulli(key, x).astype(x.dtype)


def not_pixel_data(binarize: str, what: str) -> UserError:
    """The refusal of data.binarize for `what` ("data.path 'x.csv'"), data that is no pixels."""
    return UserError(
        f"data.binarize {binarize!r} is for pixel data: the image sets "
        f"{', '.join(map(repr, IMAGE_SETS))} and 'tfds:NAME', the bundled 'digits', a uint8 "
        "array of images, or a table of whole intensities with data.image_shape set; "
        f"{what} is not pixel data (if it holds images: whole intensities 0..255 of any "
        "dtype, set data.image_shape; floats in [0, 1], save them as uint8, np.round(x * "
        "255).astype(np.uint8)); use data.binarize='none'"
    )


def declared_shape(declared, own, source: str, columns=(), pixel_max: int = 0, scaling=""):
    """The images' shape: data.image_shape, else the file's (a 3-D array's). Refuses one other
    than the file's: the pixel count alone matched, and (N, 28, 28) trained as 14 x 56 images,
    silently. Without one, says how to read `columns` that look like an image's pixels as
    images (`_hint_shape`)."""
    squeeze = lambda s: tuple(int(n) for n in s)[: 2 if len(s) == 3 and s[2] == 1 else 3]  # noqa: E731
    if declared and own and squeeze(declared) != squeeze(own):
        raise UserError(
            f"data.image_shape {tuple(declared)} differs from the shape the images of {source} "
            f"have, {tuple(own)}: the same pixels would be regrouped into other images. Leave "
            "data.image_shape=() (the array's own shape is used), or set it to that shape"
        )
    if not (declared or own):
        _hint_shape([str(c) for c in columns], pixel_max, source, scaling)
    return declared or own


def in_pixel_order(features, source: str, declared: bool = False):
    """A table whose columns are all named pixel0, pixel_1, ... with its columns in the order
    of those numbers, as an image's pixels are laid out (row-major H, W, C): a file sorted by
    name (pixel0, pixel1, pixel10, pixel100, ..., as sorted-column exports write it) was read
    in its own order, every image scrambled, silently (a probe). Said when it moves them.
    An array's flat rows `declared` images (data.image_shape) are named pixel_0, pixel_1, ...
    as an array of images' are: named x_0, ..., their run refused a CSV of pixel columns as
    new rows, and its per-feature numbers were not a pixel's (a probe)."""
    if not features.named:
        if not declared:
            return features
        return dataclasses.replace(features, columns=spellings.pixel_names(features.columns))
    found = [spellings.pixel_number(c) for c in features.columns]
    if None in found:
        return features
    numbers = [k for k in found if k is not None]
    if len(set(numbers)) != len(numbers) or numbers == sorted(numbers):
        return features
    order = sorted(range(len(numbers)), key=numbers.__getitem__)
    first = next(i for i, j in enumerate(order) if i != j)
    logging.info(
        "%s: its %d pixel columns are read in the order of their numbers, as an image's "
        "pixels (the file has %r at position %d, where %r belongs)",
        *(source, len(numbers), features.columns[first], first + 1),
        features.columns[order[first]],
    )
    return dataclasses.replace(
        features,
        columns=[features.columns[i] for i in order],
        values=[features.values[i] for i in order],
    )


def grey_shape(shape) -> tuple[int, ...]:
    """An image shape with a single channel written as none: (H, W, 1) is (H, W)."""
    return tuple(shape[:2]) if len(shape) == 3 and shape[2] == 1 else tuple(shape)


def check_not_one_image(rows, image_shape, source: str) -> None:
    """Refuses rows (an array, a `Table` as read from a file, an Arrow table) that are one
    image of the model's shape without a batch axis: a (16, 16, 3) array was told to "convert
    their colours" as 16 images of shape (16, 3), and a (28, 28) one named 30 missing columns
    (a probe)."""
    if isinstance(rows, np.ndarray):
        full = tuple(rows.shape)
    elif hasattr(rows, "num_rows") and hasattr(rows, "columns"):
        full = (rows.num_rows, *(getattr(rows, "image_shape", None) or (len(rows.columns),)))
    else:
        return
    if image_shape and len(full) > 1 and grey_shape(full) == grey_shape(image_shape):
        raise UserError(
            f"{source} holds one image of the model's shape {tuple(full)}, without a batch "
            f"axis (its first axis was read as {full[0]} rows); give images as (N, "
            f"{', '.join(map(str, full))}): x[None] for one image (np.save the result for a "
            "file), np.stack(images) for several"
        )


def _hint_shape(columns: list[str], pixel_max: int, source: str, scaling: str) -> None:
    """Says how to read 64 or more columns of pixels as images where nothing gave their shape:
    a flat uint8 array trained as a table (no image figures, no conv model), and a CSV's
    'pixel0' ... columns (beside one other, a label kept as a feature) were scaled one by one,
    without a word (a probe)."""
    others = [c for c in columns if spellings.pixel_number(c) is None]
    pixels = [c for c in columns if c not in others]
    d = len(pixels) if len(others) <= 1 else len(columns)
    if d < 64 or not (pixel_max or len(others) <= 1):
        return
    side, colour = math.isqrt(d), math.isqrt(d // 3)
    shape = (
        f"({side}, {side})"
        if side * side == d
        else f"({colour}, {colour}, 3)"
        if 3 * colour * colour == d
        else "(H, W) or (H, W, C)"
    )
    said = f"set data.image_shape={shape}" + (
        f" and data.label_column={others[0]!r}" if others and not pixel_max else ""
    )
    if pixel_max:  # divided by its largest intensity already: only the figures and shape differ
        logging.info(
            "%s: %d pixel columns read as a table's features: %s if each row is an image",
            source,
            d,
            said,
        )
        return
    how = {  # (a border pixel rarely lit is stretched to the full range, or blown up)
        "minmax": "each min-max scaled on its own range",
        "standard": "each standardised with its own mean and sd",
    }.get(scaling, "kept as they are")
    logging.warning(
        "%s: its columns %r ... %r look like the pixels of an image, but without "
        "data.image_shape they are a table's features, %s%s, with table figures: %s if each "
        "row is an image, to read them as pixel intensities (scaled per channel), with image "
        "figures",
        source,
        pixels[0],
        pixels[-1],
        how,
        f", beside {others[0]!r} as one more feature" if others else "",
        said,
    )


def binarize_validation(val: np.ndarray, seed: int) -> np.ndarray:
    """The validation split under dynamic binarisation: one Bernoulli draw keyed by the split
    seed, fixed for the run (its metrics compare across epochs and runs)."""
    return np.asarray(binarize(val, jax.random.PRNGKey(seed)))


def scale_pixels(p: Preprocessor, pixels: np.ndarray) -> np.ndarray:
    """`p`'s scaling of (N, D) raw pixels, in chunks; the numbers `p.transform` would give."""
    out = np.empty(pixels.shape, np.float32)
    for start in range(0, len(pixels), _CHUNK):
        out[start : start + _CHUNK] = p.scale_encoded(
            pixels[start : start + _CHUNK].astype(np.float64)
        )
    return out


def pixel_scaling(
    x_train: np.ndarray, n_features: int, channels: int, scaling: str, pixel_max: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """Offset and scale of pixel features 0..pixel_max: one mean and std per colour channel
    for 'standard', else division by pixel_max (never per-pixel min-max: near-constant border
    pixels would blow up)."""
    if scaling == "standard":
        mean, std = _pixel_stats(x_train, channels)
        return np.tile(mean, n_features // channels), np.tile(std, n_features // channels)
    return np.zeros(n_features), np.full(n_features, float(pixel_max))


def _pixel_stats(pixels: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 pixels, exact from 256-bin counts (no float copy)."""
    levels = np.arange(256, dtype=np.float64)
    mean, std = np.zeros(channels), np.ones(channels)
    for c in range(channels):
        counts = np.bincount(pixels.reshape(-1, channels)[:, c], minlength=256)
        mean[c] = counts @ levels / counts.sum()
        std[c] = math.sqrt(counts @ (levels - mean[c]) ** 2 / counts.sum()) or 1.0
    return mean, std


def _labels(y: np.ndarray) -> np.ndarray:
    """An image set's labels for the figures' colours: whole numbers as int64, others as a
    table's labels are read (a cast of all to int raised on 'zero' and cut 1.5 to 1)."""
    y = as_labels(y)
    return y.astype(np.int64) if y.dtype.kind in "iub" else y


def load_image_dataset(
    name: str,
    directory: str,
    *,
    limit: int = 0,
    scaling: str = "minmax",
    binarize_mode: str = "none",
    seed: int = 0,
) -> Dataset:
    """Loads an image set: its train split for training, its test split for validation.

    Args:
        name: "mnist", "fashion_mnist", "cifar10" or "tfds:NAME".
        directory: `data.dir`: the folder of the standard files, or the TFDS data_dir.
        limit: keep only the first `limit` training images (0 = all); validation is unchanged.
        scaling: "minmax" and "none" divide by 255 (the pixel format's fixed range: per-pixel
            min-max would blow up border pixels that are almost always 0); "standard" subtracts
            the per-channel mean and divides by the per-channel std of the training pixels.
        binarize_mode: "none", "fixed" (pixel > 0.5, once) or "dynamic" (train pixels stay grey
            and `Dataset.dynamic_binarize` asks the training loop to resample them; validation
            is binarised once with a key from `seed`, so its metrics are comparable).
        seed: `data.split_seed`, for that one validation draw.

    Returns:
        The `Dataset`; `train_indices` / `val_indices` are rows of the train / test files.
    """
    if binarize_mode != "none" and scaling == "standard":
        raise UserError(
            f"data.binarize {binarize_mode!r} needs pixels in [0, 1], but "
            "data.scaling='standard' centres them; use data.scaling='minmax'"
        )
    if name.startswith(TFDS_PREFIX):
        if not name[len(TFDS_PREFIX) :]:
            raise UserError("data.name 'tfds:' names no data set; expected e.g. 'tfds:mnist'")
        arrays, source = tfds_data.read_tfds(name[len(TFDS_PREFIX) :], directory, limit)
    else:
        arrays, source = image_files.read_files(name, directory)
    x_train, x_test = arrays["x_train"][: limit or None], arrays["x_test"]
    shape = grey_shape(x_train.shape[1:])
    if shape != grey_shape(x_test.shape[1:]):
        raise UserError(
            f"{source}: training images have shape {x_train.shape[1:]} but test images "
            f"{x_test.shape[1:]}; expected one image shape"
        )
    n_features, channels = math.prod(shape), shape[2] if len(shape) == 3 else 1
    x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    offset, scale = pixel_scaling(x_train, n_features, channels, scaling)
    p = Preprocessor(
        [f"pixel_{j}" for j in range(n_features)],
        ["numeric"] * n_features,
        {},
        scaling=scaling,
        offset=offset,
        scale=scale,
        threshold=THRESHOLD if binarize_mode == "fixed" else None,
        pixel_max=255,
    )
    train, val = scale_pixels(p, x_train), scale_pixels(p, x_test)
    if binarize_mode == "dynamic":
        val = binarize_validation(val, seed)
    return Dataset(
        name=name,
        train=train,
        val=val,
        columns=list(p.columns),
        preprocessor=p,
        image_shape=tuple(int(s) for s in shape),
        labels_train=_labels(arrays["y_train"][: len(train)]),
        labels_val=_labels(arrays["y_test"]),
        train_indices=np.arange(len(train)),
        val_indices=np.arange(len(val)),
        dynamic_binarize=binarize_mode == "dynamic",
        source=source,
    )
