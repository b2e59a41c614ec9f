"""`load_dataset(cfg)`: read one table, split it deterministically, fit the preprocessing.

A bundled scikit-learn set, a user file (`.csv` / `.tsv` with a header row, `.parquet`, `.npy`,
`.npz`) or an image set (`ae_jax.data.images`) is split into train and validation rows, and one
`Preprocessor` is fitted on the TRAIN rows. Rows with missing values are refused, dropped
before the split, or imputed (data.missing). Pixel data (uint8 arrays, or any numbers with
data.image_shape set: 0..255; the bundled digits: 0..16) is divided by its largest intensity
like the image sets, never scaled per column. Every
user mistake raises `UserError` naming the field, file, column, row and value, before any
training starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np
import pyarrow as pa
from absl import logging

from ae_jax.config import check_image_set_fields, check_section, default_config
from ae_jax.data import bundled, column_checks, images, pixel_checks
from ae_jax.data import scaling as scaling_lib
from ae_jax.data.category_checks import check_names, no_categories_in_pixels
from ae_jax.data.cells import NA_VALUES, THOUSANDS
from ae_jax.data.dataset import Dataset, as_labels, say_if_label_like
from ae_jax.data.delimiters import resolve_delimiter
from ae_jax.data.missing_values import MISSING
from ae_jax.data.preprocess import Preprocessor
from ae_jax.data.tables import BUNDLED, NO_LABEL, SCALING, Table, quote_names, read_table
from ae_jax.errors import UserError, check_choice, closest
from ae_jax.files import real_path


def _field(cfg: Any, key: str, default: Any, kind: type | tuple[type, ...], what: str) -> Any:
    value = cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)
    # bool is an int subclass, but True is no seed and no fraction.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UserError(f"data.{key} must be {what}; got {value!r}")
    return value


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_val = max(1, int(round(n * val_fraction)))
    if n < 2 or n - n_val < 1:
        raise UserError(
            f"data: {n} row(s) cannot be split with data.val_fraction="
            f"{val_fraction}: need at least 2 rows and at least 1 row in each of "
            f"train (got {max(n - n_val, 0)}) and validation (got {n_val})"
        )
    perm = np.random.default_rng(seed).permutation(n)
    # In row order, so each split keeps the file's order (a mask: no sort of N indices).
    val = np.zeros(n, bool)
    val[perm[:n_val]] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


def _options(cfg: Any) -> dict[str, Any]:
    """The reading options of the data section, checked (fields missing from `cfg` take their
    defaults)."""
    na_values = _field(cfg, "na_values", NA_VALUES, (tuple, list), "a tuple of strings")
    if not all(isinstance(v, str) for v in na_values):
        raise UserError(f"data.na_values must be a tuple of strings; got {tuple(na_values)!r}")
    missing = _field(cfg, "missing", "error", str, "a string")
    check_choice("data.missing", missing, MISSING)
    thousands = _field(cfg, "thousands", "", str, "a string")
    check_choice("data.thousands", thousands, THOUSANDS)
    max_categories = _field(cfg, "max_categories", 1000, (int, np.integer), "an integer")
    if max_categories < 1:
        raise UserError(f"data.max_categories must be a positive integer; got {max_categories}")
    categorical_columns = _field(cfg, "categorical_columns", (), (tuple, list), "a tuple of names")
    check_names(categorical_columns, "data.categorical_columns")
    return dict(
        na_values=tuple(na_values),
        missing=missing,
        thousands=thousands,
        max_categories=int(max_categories),
        categorical_columns=tuple(categorical_columns),
    )


def _image_shape(cfg: Any) -> tuple[int, ...]:
    shape = _field(cfg, "image_shape", (), (tuple, list), "a tuple such as (28, 28)")
    ok = len(shape) in (0, 2, 3) and all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0 for s in shape
    )
    if not ok:
        raise UserError(
            f"data.image_shape must be () (not set), (H, W) or (H, W, C) with "
            f"positive integers; got {tuple(shape)!r}"
        )
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[1] > 4 and shape[2] > 4:
        c, h, w = shape
        raise UserError(  # (as arrays stored so are: `image_files.check_channels_last`)
            f"data.image_shape {tuple(shape)}: channels first (C, H, W), as PyTorch stores "
            f"images? expected (H, W, C); as given, each row would be read as {c} x {h} pixels "
            f"of {w} channels. Save the rows channels last, np.moveaxis(x.reshape(-1, {c}, {h}, "
            f"{w}), 1, -1).reshape(len(x), -1), and set ({h}, {w}, {c})."
        )
    return tuple(int(s) for s in shape)


def _scaled_splits(
    p: Preprocessor, encoded: np.ndarray, splits: list[np.ndarray], source: str
) -> list[np.ndarray]:
    """`p.scale_encoded(encoded[rows])` for the rows of each split, a column at a time (the
    encoding is column-major: each column is contiguous)."""
    outs = [np.empty((len(rows), encoded.shape[1]), np.float32) for rows in splits]
    for j in range(encoded.shape[1]):
        x = p.scale_encoded(encoded[:, j], source, column=j)
        for out, rows in zip(outs, splits, strict=True):
            out[:, j] = x[rows]
    return outs


def _pixels(
    features: Table,
    shape: tuple[int, ...] | None,
    train_idx: np.ndarray,
    scaling: str,
    label: str,
    options: dict[str, Any],
    pixel_max: int,
    declared: bool,
    threshold: float | None,
) -> tuple[Preprocessor, np.ndarray]:
    """Pixel data, whole intensities 0..pixel_max: the Preprocessor that divides by pixel_max
    (scaling "standard": per-channel statistics) and thresholds (data.binarize='fixed'), as
    `images.load_image_dataset` does, and the (N, D) uint8 pixels. `declared`:
    data.image_shape gave `shape`, so it must fit."""
    d = len(features.columns)
    no_categories_in_pixels(options["categorical_columns"], features.source)
    if declared and shape is not None and math.prod(shape) != d:
        raise UserError(
            f"data.image_shape {shape} holds {math.prod(shape)} pixels, but "
            f"{features.source} has {d} feature columns"
            f"{f' besides the label {label!r}' if label else ''}; expected H*W or "
            f"H*W*C equal to {d}"
            + (
                f" (its column {extra[0]!r} may be a label: data.label_column={extra[0]!r})"
                if (extra := [c for c in features.columns if "label" in c.lower()][:1])
                and d == math.prod(shape) + 1
                else ""
            )
        )
    fill: dict[str, float | str] = {}
    if all(isinstance(v, np.ndarray) and v.dtype == np.uint8 for v in features.values):
        x = pixel_checks.uint8_pixels(features.values, features.source, shape is not None)
        fix = "save them as a 2-D array of int64 or float32"
        pixel_checks.say_dim(x, f"{features.source}: uint8 pixel data", scaling, fix)
    else:
        p, encoded, imputed = Preprocessor.fit_encoding(
            features, train_idx, "ordinal", "none", label, **options
        )
        text = [c for c, k in zip(p.input_columns, p.kinds, strict=True) if k != "numeric"]
        if text:
            raise UserError(
                f"{features.source}: data.image_shape {shape} marks pixel data, but "
                f"column(s) {quote_names(text)} hold text, not numbers; expected "
                f"pixel intensities 0..{pixel_max} in every feature column"
            )
        fill, encoded = scaling_lib.whole_fills(p.fill, encoded, imputed, p.input_columns)
        bad = scaling_lib.first_non_pixel(encoded, pixel_max)
        if bad is not None:
            r, j = bad
            raise UserError(
                f"{features.source}: column {features.columns[j]!r} has "
                f"{encoded[r, j]:.6g} at {features.where([r])}, but pixel data (data.image_shape "
                f"{shape}) holds whole numbers 0..{pixel_max}, divided by {pixel_max}; expected "
                "such intensities: for features already scaled, leave data.image_shape=() "
                "(a 3-D (N, H, W) array still keeps its image shape)"
            )
        x = encoded.astype(np.uint8)
        if pixel_max == 255:  # (not the bundled digits' counts 0..16, divided by 16)
            what = f"{features.source}: pixel data (data.image_shape {shape})"
            pixel_checks.say_dim(x, what, scaling, "leave data.image_shape=()")
    if declared and shape is not None:  # flat rows: of channels last, as the shape says?
        pixel_checks.say_planar(x, shape, features.source)
    channels = shape[2] if shape is not None and len(shape) == 3 and d % shape[2] == 0 else 1
    offset, scale = images.pixel_scaling(x[train_idx], d, channels, scaling, pixel_max)
    p = Preprocessor(
        features.columns,
        ["numeric"] * d,
        {},
        scaling=scaling,
        offset=offset,
        scale=scale,
        label_column=label,
        fill=fill,
        threshold=threshold,
        pixel_max=pixel_max,
        **{k: options[k] for k in ("na_values", "missing", "thousands")},
    )
    return p, x


def settings(cfg: Any) -> dict:
    """The data section's fields as JSON values, those it lacks at their defaults: what a
    `Dataset` records it was loaded with, so that data loaded for one config is not trained
    under another's."""
    given = cfg.to_dict() if isinstance(cfg, ml_collections.ConfigDict) else dict(cfg)
    as_json = lambda v: v.tolist() if hasattr(v, "tolist") else list(v)
    out = json.loads(json.dumps({**default_config().data.to_dict(), **given}, default=as_json))
    for key in ("path", "dir"):  # one spelling of a file, as a rerun's config check reads it
        out[key] = out[key] and real_path(out[key])
    return out


_BIG_FILE = 16 << 20  # bytes: a file this large is said before it is read (~0.5 s or more:
# a 51 MB CSV with a text id column was read and encoded for 8 s, silent)


def _say_reading(path: str) -> bool:
    """Says that a big file is being read (a 211 MB CSV read and encoded for 18 s, silent)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return False  # (read_table says what is wrong with it)
    if size >= _BIG_FILE:
        logging.info("reading %s (%.0f MB) ...", path, size / 1e6)
    return size >= _BIG_FILE


def load_dataset(cfg: Any) -> Dataset:
    """Loads, splits and preprocesses the data named by the `data` config section (its
    `settings` recorded in the Dataset); see `_load` for the fields."""
    return dataclasses.replace(_load(cfg), settings=settings(cfg))


def _load(cfg: Any) -> Dataset:
    """Loads, splits and preprocesses the data named by the `data` config section.

    Args:
        cfg: ConfigDict of data.* fields (missing ones take defaults). Image set names
            (mnist, fashion_mnist, cifar10, tfds:NAME) go to `ae_jax.data.images`.

    Returns:
        The preprocessed `Dataset`. `train_indices` / `val_indices` are rows of the file, also
        when data.missing='drop' left some out.
    """
    if _field(cfg, "data", None, object, "") is not None and _field(cfg, "model", None, object, ""):
        raise UserError(
            "load_dataset takes the config's data section (load_dataset(config.data)), but was "
            "given a whole config (it has 'data' and 'model' sections): its fields would all "
            "be missing and take their defaults"
        )
    check_section("data", cfg)  # a ConfigDict or dict of data.* fields, none misspelt
    name = _field(cfg, "name", "breast_cancer", str, "a string")  # (default_config()'s)
    path = _field(cfg, "path", "", str, "a string")
    label_column = _field(cfg, "label_column", "", str, "a string")
    keep_label = _field(cfg, "keep_label", False, bool, "True or False")
    categorical = _field(cfg, "categorical", "ordinal", str, "a string")
    scaling = _field(cfg, "scaling", "minmax", str, "a string")
    val_fraction = _field(cfg, "val_fraction", 0.2, (int, float, np.floating), "a number")
    split_seed = _field(cfg, "split_seed", 0, (int, np.integer), "an integer")
    npz_key = _field(cfg, "npz_key", "", str, "a string")
    directory = _field(cfg, "dir", "", str, "a string")
    limit = _field(cfg, "limit", 0, (int, np.integer), "an integer")
    binarize = _field(cfg, "binarize", "none", str, "a string")
    delimiter = resolve_delimiter(_field(cfg, "delimiter", "auto", str, "a string"))
    image_shape, options = _image_shape(cfg), _options(cfg)
    check_image_set_fields(cfg)  # (their types checked above)
    check_choice("data.binarize", binarize, images.BINARIZE)
    if limit < 0:
        raise UserError(f"data.limit must be a non-negative integer (0 = all rows); got {limit}")
    check_choice("data.scaling", scaling, SCALING)
    if not (math.isfinite(val_fraction) and 0 < val_fraction < 1):
        raise UserError(f"data.val_fraction must be strictly between 0 and 1; got {val_fraction}")
    if split_seed < 0:
        raise UserError(f"data.split_seed must be a non-negative integer; got {split_seed}")
    if not path and images.is_image_set(name):
        no_categories_in_pixels(options["categorical_columns"], f"data.name {name!r}")
        return images.load_image_dataset(
            name,
            directory,
            limit=int(limit),
            scaling=scaling,
            binarize_mode=binarize,
            seed=int(split_seed),
        ).logged()  # (it was not: an image set's summary was never said)
    table_file = os.path.splitext(path)[1].lower() in (".csv", ".tsv", ".parquet")
    if binarize != "none" and not image_shape and (table_file or (not path and name != "digits")):
        raise images.not_pixel_data(
            binarize, f"data.path {path!r}" if path else f"data.name {name!r}"
        )
    if binarize != "none" and scaling == "standard":
        raise UserError(
            f"data.binarize {binarize!r} needs pixels in [0, 1], but data.scaling='standard' "
            "centres them; use data.scaling='minmax'"
        )
    if path:
        big, t0 = _say_reading(path), time.perf_counter()
        table = read_table(
            path, npz_key, label_column=label_column, field="data.path", delimiter=delimiter
        )
        if big:  # (the encoding of 2,000,000 rows into 81 one-hot features: ~8 s more)
            logging.info(
                "read %s rows x %d columns in %.1f s; encoding and scaling them ...",
                f"{table.num_rows:,}",
                len(table.columns),
                time.perf_counter() - t0,
            )
    else:
        check_choice("data.name", name, BUNDLED + images.IMAGE_SETS + ("tfds:NAME",))
        table = bundled.table(name)
    label = "" if label_column == NO_LABEL else label_column or table.default_label
    if label_column == NO_LABEL:  # no label at all: a bundled set's target is no feature
        table = table.drop(table.default_label) if table.default_label in table.columns else table
    elif not label and not (table.pixel_max or image_shape):  # (pixels: images.py says)
        say_if_label_like(table.source, table.columns)
    if label and label not in table.columns:
        near = f" (did you mean {h!r}?)" if (h := closest(label, table.columns)) else ""
        raise UserError(
            f"data.label_column {label!r} is not a column of {table.source}{near}; "
            f"available columns: {quote_names(table.columns, 100)} (or 'none': no label)"
        )
    features = table if (keep_label or not label) else table.drop(label)
    if not features.columns:
        raise UserError(
            f"{table.source} has no feature columns besides the label {label!r}; "
            "set data.keep_label to True or add feature columns"
        )
    table, features = column_checks.drop_rows(table, features, options)
    train_pos, val_pos = _split(table.num_rows, float(val_fraction), int(split_seed))
    # Cut after splitting, so a quick run validates on exactly the rows of the full one.
    train_pos = train_pos[: limit or None]
    kept_label = "" if keep_label else label
    shape = images.declared_shape(
        image_shape, table.image_shape, table.source, features.columns, table.pixel_max, scaling
    )
    if shape and len(shape) == 3 and shape[2] not in (1, 3):
        logging.warning(
            "%s: images of %d channels train and evaluate, but are drawn in no figure "
            "(reconstructions.png, latent_manifold.png and samples.png need 1 or 3 channels)",
            table.source,
            shape[2],
        )
    labels = as_labels(table.column(label), options["na_values"]) if label else None
    rows = table.row_index if table.row_index is not None else np.arange(table.num_rows)
    source, pixel_max = table.source, table.pixel_max
    if binarize != "none" and not (pixel_max or image_shape):  # a file (named sets: above)
        raise images.not_pixel_data(binarize, f"data.path {path!r}")
    del table  # the raw columns live on in `features` until they are encoded
    imputed = None  # which cells of a table were missing and imputed
    if pixel_max or image_shape:
        p, x = _pixels(
            images.in_pixel_order(features, source, bool(image_shape)),
            shape,
            train_pos,
            scaling,
            kept_label,
            options,
            pixel_max or 255,
            bool(image_shape),
            images.THRESHOLD if binarize == "fixed" else None,
        )
        del features
        train, val = images.scale_pixels(p, x[train_pos]), images.scale_pixels(p, x[val_pos])
        if binarize == "dynamic":  # one fixed draw to validate on, as the image sets do
            val = images.binarize_validation(val, int(split_seed))
    else:
        p, encoded, imputed = Preprocessor.fit_encoding(
            features, train_pos, categorical, scaling, kept_label, **options
        )
        del features  # the raw text: no longer needed, and as large as the file
        pa.default_memory_pool().release_unused()
        # An array of images (N, H, W[, C]) in its own units: scaled per channel, not per pixel.
        image = shape is not None and math.prod(shape) == encoded.shape[1]
        channels = (shape[2] if len(shape) == 3 else 1) if shape is not None and image else 0
        p.fit_scaling(encoded, train_pos, source, channels)
        train, val = _scaled_splits(p, encoded, [train_pos, val_pos], source)
        if not channels:  # (pixels share one range)
            scaling_lib.say_far(source, p, train, val)
    # Image plots only make sense while the features are exactly the image's pixels.
    if shape is not None and math.prod(shape) != p.num_features:
        shape = None
    ds = Dataset(
        name=os.path.basename(path) if path else name,
        train=train,
        val=val,
        columns=list(p.columns),
        preprocessor=p,
        image_shape=shape,
        labels_train=None if labels is None else labels[train_pos],
        labels_val=None if labels is None else labels[val_pos],
        train_indices=rows[train_pos],
        val_indices=rows[val_pos],
        imputed_train=None if imputed is None else imputed[train_pos],
        imputed_val=None if imputed is None else imputed[val_pos],
        dynamic_binarize=binarize == "dynamic",
        label_feature=label if keep_label else "",
    )
    return ds.logged()
