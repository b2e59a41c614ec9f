"""`Dataset`: a run's train and validation features with the `Preprocessor` fitted on them,
and `as_labels`: the label column as the figures colour by it."""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import math

import numpy as np
from absl import logging

from ae_jax.data import scaling as scaling_lib
from ae_jax.data.cells import NA_VALUES, as_numpy
from ae_jax.data.preprocess import Preprocessor
from ae_jax.data.tables import BOOL_WORDS


@dataclasses.dataclass
class Dataset:
    """Train and validation features, preprocessed with one `Preprocessor` fitted on train.

    `train_indices` / `val_indices` are the 0-based source rows of each split (sorted), so
    `preprocessor.transform(read_table(path).take(train_indices))` reproduces `train`. For the
    image sets of `ae_jax.data.images` they are rows of the train and test files.

    `imputed_train` / `imputed_val`: which cells of each split's input columns were missing and
    imputed (data.missing='impute'), (N, input columns) bool; None when none was.

    `label_feature`: the label column kept among the features (data.keep_label), else "".

    `dynamic_binarize` asks the training loop to replace each batch by Bernoulli samples of its
    pixels (`image_data.binarize`) with a fresh key per step.
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    columns: list[str]
    preprocessor: Preprocessor
    image_shape: tuple[int, ...] | None = None
    labels_train: np.ndarray | None = None
    labels_val: np.ndarray | None = None
    train_indices: np.ndarray | None = None
    val_indices: np.ndarray | None = None
    dynamic_binarize: bool = False
    imputed_train: np.ndarray | None = None
    imputed_val: np.ndarray | None = None
    settings: dict | None = None  # the data section it was loaded with (`load_dataset`)
    label_feature: str = ""
    source: str = ""  # where an image set's files were read from (its data.dir's files)

    @property
    def num_features(self) -> int:
        return int(self.train.shape[1])

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of both splits' values as the model sees them: a run records it, and a
        rerun or evaluation on data edited since (even within every column's range) differs."""
        return digest(self.train, self.val)

    def logged(self) -> Dataset:
        """This dataset, its summary (`kinds_text`: what its features are, how they are scaled,
        its label) logged as the `data:` line a run prints."""
        if kinds := self.kinds_text():
            read = f" (read from {self.source})" if self.source else ""
            logging.info("data: %s%s: %s", self.name, read, kinds)
        if few := self.few_whole_values():
            shown = ", ".join(f"{c} ({n} values)" for c, n in few[:8])
            logging.info(
                "data: %s: numeric columns of a few whole numbers, read as numbers: %s%s; if "
                "any codes categories (a region or browser id, a 0/1 flag), name it in "
                "data.categorical_columns",
                self.name, shown, f" and {len(few) - 8} more" * (len(few) > 8),
            )  # fmt: skip
        return self

    def few_whole_values(self, most: int = 32) -> list[tuple[str, int]]:
        """A table's numeric columns whose training values are 2 to `most` whole numbers in
        their own units, with how many: integer ids of categories (the purchase table's
        OperatingSystems, Browser, Region, TrafficType) look so, and were trained as numbers
        unsaid (a probe), as are counts, and flags of 0 and 1 (a Revenue column written 0/1 had
        a Gaussian likelihood, no accuracy, unsaid: a probe); images' pixels are not listed."""
        p = self.preprocessor
        if self.image_shape or p.pixel_max or not len(self.train):
            return []
        out = []
        for i, (name, kind, start, _) in enumerate(p.layout()):
            if kind != "numeric":
                continue
            values = self.train[:, start]  # a column at a time
            if self.imputed_train is not None:  # a filled-in mean is no value of the file's
                values = values[~self.imputed_train[:, i]]
            sc, off = p.scale[start], p.offset[start]
            if scaling_lib.whole_in_own_units(values, sc, off):
                own = np.rint(np.asarray(values, np.float64) * sc + off)
                if 2 <= (n := np.unique(own).size) <= most:
                    out.append((name, int(n)))
        return out

    def kinds_text(self) -> str:
        """For the log: the table's columns by kind and how its categories are encoded; for a
        table of numbers only or pixels, how they are scaled; the label kept out, if any."""
        p = self.preprocessor
        label = f"; label {p.label_column!r} kept out of the features" * bool(p.label_column)
        kept = self.label_feature  # (a pixel column by its kinds: not said to be one)
        label += f"; label {kept!r} kept as a feature (data.keep_label)" * bool(kept)
        shape = self.image_shape
        # (as load_dataset scales an image's pixels: per colour channel, never per pixel)
        per = "per colour channel" if shape and len(shape) == 3 else "over all pixels"
        what = f"{len(p.kinds)} pixels" if shape else ""
        if shape and len(shape) == 3:  # its values: its pixels times its channels
            what = f"{len(p.kinds)} values ({math.prod(shape[:2])} pixels x {shape[2]} channels)"
        what += f" of {'x'.join(map(str, shape))} images" if shape else ""
        if p.pixel_max:
            how = (
                f"standardised by the training split's mean and std {per}"
                if p.scaling == "standard"
                else f"divided by {p.pixel_max}"
            )
            if p.threshold is not None:
                how += f", then 1 above {p.threshold:g}, else 0 (data.binarize=fixed)"
            elif self.dynamic_binarize:
                how += (
                    ", then a Bernoulli draw of each pixel per training step, one fixed draw for "
                    "validation (data.binarize=dynamic)"
                )
            what = what or f"{len(p.kinds) - bool(kept)} columns of pixels"
            label += ", scaled as the pixels are" * bool(kept)
            return f"{what}, whole intensities 0..{p.pixel_max} {how}{label}"
        if what and all(k == "boolean" for k in p.kinds):  # (it said "64 true/false": a probe)
            return f"{what}, true/false read as 1 and 0, not scaled{label}"
        if all(k == "numeric" for k in p.kinds):
            how = {
                "minmax": "scaled by the training split's minimum and maximum",
                "standard": "standardised by the training split's mean and std",
            }.get(p.scaling, "not scaled")
            if what:  # an array of images in its own units
                how += f" {per}" * (p.scaling != "none")
                return f"{what}, {how} (data.scaling={p.scaling}){label}"
            how = (
                how
                if p.scaling == "none"
                else f"each {how.replace('the training', 'its training')}"
            )
            n = f"{len(p.kinds)} column{'s' * (len(p.kinds) > 1)}"
            return f"{n}, all numeric, {how} (data.scaling={p.scaling}){label}"
        counts = collections.Counter(p.kinds)
        names = (("numeric", "numeric"), ("boolean", "true/false"), ("categorical", "categorical"))
        text = f"{len(p.kinds)} column{'s' * (len(p.kinds) > 1)}: " + ", ".join(
            f"{counts[k]} {name}" for k, name in names if counts[k]
        )
        cats = [
            f"{c} ({len(p.categories[c]) - 1})"
            for c, k in zip(p.input_columns, p.kinds, strict=True)
            if k == "categorical"
        ]
        if not cats:
            return text + label
        how = (
            "one 0/1 feature per category and one for categories not seen in training "
            "(data.categorical=onehot)"
            if p.categorical == "onehot"
            else "one ordinal code each (data.categorical=ordinal: codes by training-split "
            "frequency, an order the categories need not have; onehot gives a 0/1 feature per "
            "category, and loss.recon=mixed a likelihood per column)"
        )
        shown = ", ".join(cats[:6]) + (", ..." if len(cats) > 6 else "")
        return (
            f"{text}; categories per column in the training split: {shown}; encoded as {how}{label}"
        )


MISSING_LABEL = "(missing)"


def digest(*arrays: np.ndarray | None) -> str:
    """A digest of arrays' shapes, types and values (None: an empty one; text and objects by
    their text; dates by their unit's count): a Dataset's `fingerprint`, an evaluation's
    `data_digest`."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a) if a is not None else np.zeros(0, np.int8))
        h.update(f"{a.shape} {a.dtype.str};".encode())
        if a.dtype.kind in "mM":  # dates, time spans: their int64 counts (no buffer of theirs)
            a = a.view(np.int64)
        h.update(a.astype(str).tobytes() if a.dtype == object else a.data)
    return h.hexdigest()


# Names a table's label column often has (compared lower-cased): the bundled sets' "target".
# (Not "y": the second coordinate of many a table of points.)
LABEL_NAMES = ("label", "labels", "target", "targets", "class", "outcome")


def say_if_label_like(source: str, columns: list[str]) -> None:
    """Warns of feature columns named as labels are, when data.label_column names none: a CSV
    of the bundled breast-cancer table trained its 'target' as a feature, unsaid (the bundled
    table keeps it out of the features and colours the figures by it)."""
    if like := [c for c in columns if c.strip().lower() in LABEL_NAMES]:
        logging.warning(
            "%s: column %r is trained as a feature, as data.label_column names no label: if it "
            "is the rows' label, set data.label_column=%r (kept out of the features, the "
            "figures coloured by it); data.label_column='none' says there is none",
            source,
            like[0],
            like[0],
        )


def as_labels(col: np.ndarray, na_values: tuple[str, ...] = NA_VALUES) -> np.ndarray:
    """Label cells as ints, floats, true/false -> 1/0, or else strings (for plot colours).
    Missing cells (`na_values` markers, nulls) are NaN among numbers, drawn grey (numbers with
    a blank were all text: a legend of values sorted as text, not a colour bar), and
    MISSING_LABEL among text (true/false too), a legend entry of their own."""
    col = as_numpy(col)
    if col.dtype.kind not in "OU":
        return np.array(col)
    text = np.asarray(col, dtype=str)
    absent = np.isin(np.char.strip(text), list(na_values)) | (col == None)  # noqa: E711 - per cell
    present = text[~absent]
    for convert in (int, float):
        try:
            values = np.array([convert(t) for t in present])
        except ValueError:
            continue
        if not absent.any():
            return values
        out = np.full(len(text), np.nan)
        out[~absent] = values
        return out
    if absent.any():
        return np.where(absent, MISSING_LABEL, text)
    lower = np.char.lower(text)
    if np.isin(lower, list(BOOL_WORDS)).all():
        return (lower == "true").astype(np.int64)
    return text
