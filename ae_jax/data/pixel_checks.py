"""Warnings about pixel data, given before training: a uint8 table read as pixels
(`uint8_pixels`), pixels too dim to be intensities 0..255 (`say_dim`), flat rows of colour images
maybe stored channels first (`say_planar`). Each is a warning, not a refusal: each is a guess."""

from __future__ import annotations

import numpy as np
from absl import logging


def uint8_pixels(columns: list[np.ndarray], source: str, shaped: bool) -> np.ndarray:
    """A uint8 array's columns as (N, D) pixels, saying so: uint8 means intensities 0..255,
    divided by 255, which small codes (0..3) are not (they were divided without a word). Fewer
    columns than an 8 x 8 image's, with no image shape (`shaped`: data.image_shape, or the
    file's (N, H, W) array), a warning: a table
    of ages and counts saved as uint8 was read so (a probe: its column of 0..4 in [0, 0.016])."""
    x = np.stack(columns, axis=1)
    few = not shaped and x.shape[1] < 64
    (logging.warning if few else logging.info)(
        "%s: uint8, read as pixel intensities 0..255, divided by 255%s",
        source,
        f"; its {x.shape[1]} columns are fewer than an 8 x 8 image's 64, and neither "
        "data.image_shape nor the array's shape names an image: if they are a table's values "
        "(ages, counts), save them as int64 or float32, and each is a feature, scaled by "
        "data.scaling" * few,
    )
    return x


def say_dim(x: np.ndarray, what: str, scaling: str, fix: str) -> None:
    """Warns of pixel data divided by 255 (not standardised: data.scaling='standard') whose
    largest value is under 32: counts or codes read so train on values near 0 (the digits'
    counts 0..16 in [0, 0.063]), and their figures come out black. `fix`: how to train on them
    as features instead."""
    if scaling != "standard" and (top := int(x.max(initial=0))) < 32:
        logging.warning(
            "%s whose largest value is %d, divided by 255 into [0, %.3g]: if these are codes "
            "or counts, not intensities 0..255, scale them to 0..255 first, or %s (then each "
            "column is a feature, scaled by data.scaling)",
            what,
            top,
            top / 255,
            fix,
        )


# Flat rows are said to be maybe stored channels first when, read as (C, H, W), neighbouring
# pixels differ less than PLANAR_RATIO times as much as read as (H, W, C), and, read as
# (H, W, C), a pixel's channels differ by PLANAR_CHANNELS times its neighbours' differences
# (channels first, a "pixel's channels" are neighbouring pixels of one channel: a little less).
# Measured on 32 x 32 patches of scikit-learn's two sample photos (3 seeds) and other images:
# stored channels first 0.59-0.65 (a review's patches: 0.71) and 0.64-0.69 (RGBA 0.47 and
# 0.47, 8 x 8 0.52 and 0.58);
# stored channels last, colour photos 4.2-4.6 and 2.9-3.2, grey ones (three equal channels)
# 1.3 and 0.0, grey noise or a checkerboard 0.44-0.67 and 0.0, colour noise of channels
# correlated 0.9-0.95 0.74-0.77 and 0.22-0.32 (these three rough enough to pass the first
# test: the second keeps them from a warning). Smooth images stored channels first (Gaussian-
# blurred noise, sigma 2-8 pixels) 0.23-0.35 and 0.35-0.42, falling toward 1/3 and 1/3 (a
# "pixel's channels" 1 pixel apart, its neighbours 3), were not warned of (a probe): below
# PLANAR_SMOOTH, where no image stored channels last came (grey noise with colour 0.67-0.9),
# the channels' lower bound is PLANAR_SMOOTH_CHANNELS.
PLANAR_RATIO = 0.8
PLANAR_CHANNELS = (0.4, 1.0)
PLANAR_SMOOTH, PLANAR_SMOOTH_CHANNELS = 0.5, 0.3
PLANAR_VALUES = 2**20  # the first rows looked at: at most this many values (4 MB), 256 rows


def say_planar(x: np.ndarray, shape, source: str) -> None:
    """Warns of flat rows that may be stored channels first, (C, H, W) flattened, as CIFAR's
    python batches store them, given a channels-last shape (H, W, C): each image is then read
    as C thin copies side by side, without a word (a probe: 270x the MSE of the same images
    stored channels last). A heuristic (`PLANAR_RATIO`), so a warning, for flat rows only: an
    (N, H, W, C) array says its own layout."""
    if len(shape) != 3 or min(shape) < 2 or not len(x):  # (no neighbours: 1 x W images)
        return
    h, w, c = shape
    rows = np.asarray(x[: max(1, min(256, PLANAR_VALUES // (h * w * c)))], np.float32)
    rows = rows[np.isfinite(rows).all(axis=1)].reshape(-1, h, w, c)  # (a NaN pixel's row: not)
    first = rows.reshape(-1, c, h, w).transpose(0, 2, 3, 1)
    step = lambda a, axis: float(np.abs(np.diff(a, axis=axis)).mean()) if len(a) else 0.0  # noqa: E731
    rough = [step(a, 1) + step(a, 2) for a in (rows, first)]
    channels = step(rows, 3) / max(rough[0] / 2, 1e-12)
    lo, hi = PLANAR_CHANNELS
    lo = PLANAR_SMOOTH_CHANNELS if rough[1] < PLANAR_SMOOTH * rough[0] else lo
    if rough[1] < PLANAR_RATIO * rough[0] and lo <= channels <= hi:
        logging.warning(
            "%s: its rows may be stored channels first, (C, H, W) flattened (as CIFAR's python "
            "batches store them): read as (H, W, C) = %s, neighbouring pixels differ %.1fx more "
            "than read as %s, where each image would come out as %d thin copies side by side. "
            "If so, save them channels last: x.reshape(-1, %d, %d, %d).transpose(0, 2, 3, 1)"
            ".reshape(len(x), -1)",
            source,
            tuple(shape),
            rough[0] / max(rough[1], 1e-12),
            (c, h, w),
            c,
            c,
            h,
            w,
        )
