"""What an evaluation reads (`EvalData`): a run's validation split as training saw it, or the
rows of another file through the run's saved preprocessing, with the training split for the PCA
baseline and the table's column layout for the per-column metrics."""

import dataclasses
import math
import zipfile

import jax
import numpy as np
from absl import logging

from ae_jax import data as data_lib
from ae_jax.data import image_files, images, pixel_checks
from ae_jax.data import scaling as scaling_lib
from ae_jax.errors import UserError
from ae_jax.evaluation import trained
from ae_jax.files import real_path
from ae_jax.training import group, startup


@dataclasses.dataclass
class EvalData:
    """The rows an evaluation reads.

    Attributes:
        x: (N, D) float32 features (encoded and scaled like the training data).
        labels: (N,) labels for plot colours, or None.
        x_train: (M, D) the run's training split, for the PCA baseline, or None.
        columns: the D feature names.
        image_shape: per-row image shape when the features are an image's pixels, else None.
        source: how eval.json names the rows.
        label_name: the column `labels` come from ("" when it has no name).
        note: why `x_train` is None, if it is.
        imputed, imputed_train: which cells of `x` / `x_train` were missing and imputed, (N,
            input columns) bool, or None: per-column metrics count the observed cells only.
    """

    x: np.ndarray
    labels: np.ndarray | None
    x_train: np.ndarray | None
    columns: list[str]
    image_shape: tuple[int, ...] | None
    source: str
    note: str = ""
    layout: tuple | None = None  # the table's columns (Preprocessor.layout()), for per-column
    offset: np.ndarray | None = None  # ... and its scaling, for values in the column's units
    scale: np.ndarray | None = None
    categories: dict | None = None  # categorical columns' category names, in code order
    imputed: np.ndarray | None = None
    imputed_train: np.ndarray | None = None
    label_name: str = ""
    pixel_max: int = 0  # pixel data: whole intensities 0..pixel_max (0: other data)


def run_dataset(tm: trained.TrainedModel, advise: bool = True) -> data_lib.Dataset:
    """The run's own data, split and preprocessed again; refuses data that changed since
    (`advise`: saying that --data evaluates another file, for a caller not given one, whose
    need is the validation split; else the PCA baseline's is the training split)."""
    split = "validation split" if advise else "training split (the PCA baseline's)"
    d = tm.config.data
    source = d.path or (
        f"data.name {d.name!r} from data.dir {d.dir!r}" if d.dir else f"bundled data set {d.name!r}"
    )
    try:
        # (the PCA baseline's rebuild clips the unused validation split without a word: said,
        # it read as a warning about the --data evaluated)
        quiet = None if advise else str(tm.config.loss.recon)
        ds = group.as_trained(tm.config, data_lib.load_dataset(tm.config.data), quiet)
    except UserError as e:
        raise UserError(
            f"cannot rebuild the {split} of {tm.workdir!r} from its data "
            f"({source}): {e}."
            + " Pass --data=FILE to evaluate on rows of another file with the run's saved "
            "preprocessing." * advise
        ) from None
    change = startup.data_change(ds, tm.preprocessor, tm.dataset_info)
    if change:
        raise UserError(
            f"the data of {tm.workdir!r} ({source}) changed since training: {change}, so the "
            f"{split} cannot be rebuilt."
            + " Pass --data=FILE to evaluate on a file transformed with the saved preprocessing."
            * advise
        )
    return ds


def _pca_rows(ds: data_lib.Dataset, config) -> np.ndarray:
    """The training split as the model saw it, which the PCA baseline fits (dynamically
    binarised runs: one Bernoulli draw)."""
    if not ds.dynamic_binarize:
        return ds.train
    # seed + 1 within int64 (the largest split_seed, 2**63 - 1, draws with key 0: a review)
    key = jax.random.PRNGKey((config.data.split_seed + 1) % 2**63)
    return np.asarray(images.binarize(ds.train, key))


def dataset_eval_data(ds: data_lib.Dataset, config) -> EvalData:
    """What a run's own data set is evaluated on: its validation split as training saw it
    (`group.as_trained`: values outside [0, 1] clipped under a Bernoulli likelihood), and for
    the PCA baseline the training split as the model saw it (dynamically binarised runs: one
    Bernoulli draw)."""
    shape = (
        ds.image_shape if ds.image_shape and math.prod(ds.image_shape) == ds.num_features else None
    )
    x = group.as_trained(config, ds).val  # a no-op on a data set already as trained
    p = ds.preprocessor
    return EvalData(
        x,
        ds.labels_val,
        _pca_rows(ds, config),
        list(ds.columns),
        shape,
        f"validation split of {ds.name}",
        layout=p.layout(),
        offset=p.offset,
        scale=p.scale,
        categories=p.categories,
        pixel_max=p.pixel_max,
        imputed=ds.imputed_val,
        imputed_train=ds.imputed_train,
        label_name=p.label_column or ds.label_feature,
    )


def _trained_on(c, data_path: str, npz_key: str, another_array: bool) -> str:
    """What of the run's training data `data_path` (its array `npz_key`) is, in words, or ""
    when it is none: its data.path (its array data.npz_key), or the training images of the
    image set data.name that data.dir holds (an IDX file, a CIFAR batch, x_train of an .npz)."""
    here = real_path(data_path)
    if c.path:
        same = here == real_path(c.path) and not another_array
        return ("array " + repr(c.npz_key) if c.npz_key else "data.path") if same else ""
    if c.name not in images.IMAGE_SETS or not c.dir:
        return ""
    for path, key in image_files.training_files(c.name, c.dir):
        if real_path(path) == here and (not key or npz_key in ("", key)):
            what = f"array {key!r}" if key else "training images"
            return f"{what}, of the {c.name} set in data.dir"
    return ""


def _keras_pair(path: str, npz_key: str) -> str:
    """The labels of an .npz's array `npz_key` in the Keras layout (y_test beside x_test), if
    the file holds them, else ""."""
    y = f"y_{npz_key[2:]}"
    if not npz_key.startswith("x_"):
        return ""
    try:
        with np.load(path, allow_pickle=False) as z:
            if y not in z.files or npz_key not in z.files:
                return ""
            n, shape = len(z[npz_key]), z[y].shape
    except (ValueError, OSError, EOFError, TypeError, AttributeError, zipfile.BadZipFile):
        return ""  # (not an .npz: read_table says what it is)
    if shape in ((n,), (n, 1)):
        return y
    # (one-hot rows of Keras' to_categorical, another count: the rows are evaluated anyway)
    logging.info("--data %r: its %r of shape %s is no label per row: no colours", path, y, shape)
    return ""


def evaluation_data(
    tm: trained.TrainedModel,
    data_path: str = "",
    dataset: data_lib.Dataset | None = None,
    npz_key: str = "",
) -> EvalData:
    """The validation split of the run (no `data_path`), or every row of `data_path` (its
    array `npz_key` for an .npz; "": the run's data.npz_key).

    A file's rows go through the SAVED preprocessor (its column mismatches raise UserError).
    The PCA baseline always fits the run's training split; with `data_path` it is skipped
    (and `note` says why) if that split cannot be rebuilt.
    """
    shape = tm.dataset_info.get("image_shape")
    shape = tuple(shape) if shape and math.prod(shape) == tm.num_features else None
    columns = list(tm.preprocessor.columns)
    if not data_path:
        ds = dataset if dataset is not None else run_dataset(tm)
        return dataset_eval_data(ds, tm.config)
    c = tm.config.data
    # The run's label array belongs to its own array of an .npz (y_train to x_train): another
    # array is evaluated with its Keras-layout pair's labels (y_test beside --npz_key=x_test;
    # figure colours only), else without, and a .npy or an IDX file of images holds no label.
    # (--npz_key naming the array the run's own setting reads there, "x" for the default, is
    # that array.)
    another_array = bool(npz_key) and npz_key != (
        c.npz_key or data_lib.npz_feature_array(data_path, "", c.label_column)
    )
    other = data_lib.one_array(data_path) or another_array
    pair = _keras_pair(data_path, npz_key) if another_array else ""
    table = data_lib.read_table(
        data_path,
        npz_key or c.npz_key,
        label_column=pair
        or (data_lib.NO_LABEL if other and tm.preprocessor.label_column else c.label_column),
        field="--data",
        delimiter=trained.delimiter_for(c, data_path),
        key_field=trained.RUNS_KEY.format("--npz_key")
        if c.npz_key and not npz_key
        else "--npz_key",
    )
    # (one image without a batch axis was told to "convert their colours" or of columns)
    images.check_not_one_image(table, tm.image_shape, f"--data {data_path!r}")
    tm.check_image_shape(table.image_shape, f"--data {data_path!r}")
    if source := _trained_on(c, data_path, npz_key, another_array):
        logging.warning(
            "--data %r is the file the run trained on (its %s): its %d training rows are among "
            "the %d evaluated, so these numbers are no validation error; `ae-jax evaluate` "
            "without --data evaluates the validation split",
            data_path,
            source,
            tm.dataset_info.get("n_train", 0),
            table.num_rows,
        )
    x, imputed = tm.preprocessor.transform_imputed(table)
    tm.check_image_units(x, f"--data {data_path!r}")
    if table.image_shape is None:  # flat rows (an (N, H, W, C) array says its own layout)
        pixel_checks.say_planar(x, tm.image_shape or (), f"--data {data_path!r}")
    scaling_lib.say_far_rows(f"--data {data_path!r}", tm.preprocessor, x)
    if c.binarize == "dynamic":  # as the validation split: one Bernoulli draw of each pixel
        x = images.binarize_validation(x, c.split_seed)
    if tm.config.loss.recon in group.UNIT_INTERVAL:
        x = group.clip_unit(x, f"--data {data_path!r}")
    label = pair or c.label_column or table.default_label
    # The same conversion as training, so label colours match the training plots.
    na = tuple(c.na_values)
    labels = data_lib.as_labels(table.column(label), na) if label in table.columns else None
    logging.info(  # (the data line that follows is of the run's file, not of --data)
        "the PCA baseline fits the run's training split: reading it again from %s ...",
        c.path or f"data.name {c.name!r}",
    )
    try:
        own = run_dataset(tm, advise=False)  # (--data given: the training split only)
        x_train, imputed_train, note = _pca_rows(own, tm.config), own.imputed_train, ""
    except UserError as e:
        x_train, imputed_train, note = None, None, f"no PCA baseline: {e}"
    p = tm.preprocessor
    return EvalData(
        x,
        labels,
        x_train,
        columns,
        shape,
        data_path,
        note,
        layout=p.layout(),
        offset=p.offset,
        scale=p.scale,
        categories=p.categories,
        pixel_max=p.pixel_max,
        imputed=imputed,
        imputed_train=imputed_train,
        label_name=label if labels is not None else "",
    )
