"""Scaling statistics of the encoded training rows: min-max or standard, per output column.

Computed a block of columns at a time (memory bounded), refusing any column whose scaling or
scaled values are not finite in float32; indicator columns (one-hot, true/false) are never
scaled, and ordinal codes under min-max span their whole vocabulary.
"""

import numpy as np
from absl import logging

from ae_jax.data.cells import quote_names
from ae_jax.errors import UserError

_STATS_BYTES = 1 << 24  # train rows x columns read at a time for the scaling statistics
_F32_MAX = float(np.finfo(np.float32).max)
_EPS32 = float(np.finfo(np.float32).eps)


def fit(
    encoded: np.ndarray,
    train_rows: np.ndarray,
    scaling: str,
    out_kinds: list,
    columns: list,
    source: str,
    channels: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offset, scale, range) per output column of `encoded` from its `train_rows`, range the
    (2, D) lowest and highest value; `out_kinds` as `Preprocessor.output_kinds()`, `columns`
    and `source` name the data in errors. `channels` > 0: the columns are an image's pixels,
    channel j % channels: one range (or mean and std) per channel, never per pixel (a rarely
    lit pixel would be stretched to the full range)."""
    d = encoded.shape[1]
    lo, hi, mean, std = (np.zeros(d) for _ in range(4))
    block = max(1, _STATS_BYTES // (8 * max(len(train_rows), 1)))
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(0, d, block):
            t = encoded[train_rows, s : s + block]
            lo[s : s + block], hi[s : s + block] = t.min(axis=0), t.max(axis=0)
            if scaling == "standard":
                mean[s : s + block], std[s : s + block] = t.mean(axis=0), t.std(axis=0)
        if channels:
            lo, hi, mean, std = _per_channel(lo, hi, mean, std, channels)
        spread = hi - lo
    _refuse_nonfinite(source, columns, scaling, lo, hi, spread, "range (max - min)")
    constant = hi == lo
    offset, scale = np.zeros(d), np.ones(d)  # "none"
    if scaling == "minmax":
        offset, scale = lo, spread
    elif scaling == "standard":
        stats_ok = np.isfinite(mean) & np.isfinite(std)
        _refuse_nonfinite(
            source,
            columns,
            scaling,
            lo,
            hi,
            np.where(stats_ok, 0.0, np.inf),
            "mean or standard deviation",
        )
        # A constant column's float mean can be off by one ulp; its min maps it to exactly 0.
        offset, scale = np.where(constant, lo, mean), std
    scale = np.where(constant, 1.0, scale)  # no division by zero for constants
    # One-hot and true/false outputs are 0/1 indicators: never scaled, so a likelihood can
    # read them as such. Ordinal codes span their whole vocabulary (0 .. n - 1, UNSEEN last)
    # under minmax, so a category unseen in training still maps into [0, 1].
    indicator = np.array([k == "indicator" for k in out_kinds], bool)
    offset = np.where(indicator, 0.0, offset)
    scale = np.where(indicator, 1.0, scale)
    if scaling == "minmax":
        for j, k in enumerate(out_kinds):
            if isinstance(k, int):
                offset[j], scale[j] = 0.0, float(max(k - 1, 1))
    constant &= np.array([k == "numeric" for k in out_kinds], bool)
    with np.errstate(over="ignore"):
        largest = np.maximum(abs(lo - offset), abs(hi - offset)) / scale
    _refuse_nonfinite(
        source,
        columns,
        scaling,
        lo,
        hi,
        np.where(largest > _F32_MAX, np.inf, largest),
        "largest scaled value in float32",
    )
    if constant.any():
        names = [c for c, k in zip(columns, constant, strict=True) if k]
        logging.warning(
            "data: %d constant column(s) in the training split, left unscaled "
            "(scale 1; in training they carry no information): %s",
            len(names),
            quote_names(names, 20),
        )
    return offset, scale, np.stack([lo, hi])


def say_far_rows(source: str, p, x: np.ndarray) -> None:
    """`say_far` for new rows (`x`: scaled, as the model reads them; a probe encoded an age of
    1e6, 15,650 as scaled, to a code of ~2,000 where others are ~1, unsaid) against the
    training split's range of each numeric column (`p.ranges`: a constant column's one value,
    10 of room either way), under any scaling. A run saved without ranges: under minmax,
    whose offset and scale are each column's range, 0 to 1 scaled (a constant column's too:
    said as "c to c + 1"); under other scalings, not checked."""
    if p.threshold is not None or p.pixel_max or not len(x):
        return
    if p.ranges is not None:  # scaled as the rows are, to float32 (float64 ends put the
        # training rows themselves outside: 1.00000006 read as 1.0000001, a review)
        ends = ((p.ranges - p.offset) / p.scale).astype(np.float32)
    elif p.scaling == "minmax":
        ends = np.array([np.zeros(x.shape[1]), np.ones(x.shape[1])])
    else:
        return
    say_far(source, p, ends, x, "", "the codes and reconstructions of those rows extrapolate")


def say_far(
    source: str,
    p,
    train: np.ndarray,
    val: np.ndarray,
    what: str = "validation ",
    effect: str = "they dominate the validation metrics, and their squares can overflow "
    "float32 (a per-epoch eval loss of inf)",
) -> None:
    """Warns of numeric columns of a table whose validation values, as the model reads them
    (`train`, `val`: the scaled splits; `p` the Preprocessor), lie far outside the training
    split's: beyond 10 times its range's width (10 off a column constant in training, which is
    left in raw units, scale 1). They dominate the validation metrics, and squared can
    overflow float32: three cells of 1e25 made every epoch's eval loss inf, and a column of
    5s in training but +-300 in validation an eval/mse of 2756, said nowhere (a probe)."""
    numeric = np.array([k == "numeric" for k in p.output_kinds()], bool)
    if not numeric.any() or not len(train) or not len(val):
        return
    with np.errstate(over="ignore", invalid="ignore"):
        t_lo, t_hi = train[:, numeric].min(axis=0), train[:, numeric].max(axis=0)
        v_lo, v_hi = val[:, numeric].min(axis=0), val[:, numeric].max(axis=0)
        # (10 of a constant column's own units; a width under 1 is no floor: data.scaling=
        # 'none' keeps raw units, and 5 was near a column of 0 .. 0.01 (a review))
        room = np.where(t_hi > t_lo, 10 * (t_hi - t_lo), 10.0)
        far = (v_lo < t_lo - room) | (v_hi > t_hi + room)
    if far.any():
        off, sc = p.offset[numeric], p.scale[numeric]
        cols = [c for c, k in zip(p.columns, numeric, strict=True) if k]
        raw = lambda v, j: float(v[j]) * sc[j] + off[j]  # noqa: E731 (in the column's units)
        logging.warning(
            "%s: %d numeric column(s) whose %svalues lie far outside the training split's "
            "range (beyond 10 times its width, or 10 off a column constant in training): %s. "
            "As the model reads them %s; check those rows (outliers, another unit), or drop "
            "the column",
            source,
            int(far.sum()),
            what,
            "; ".join(
                f"{cols[j]!r}: {what or 'here '}{raw(v_lo, j):.4g} to {raw(v_hi, j):.4g}, training "
                f"{raw(t_lo, j):.4g} to {raw(t_hi, j):.4g}"
                for j in np.flatnonzero(far)[:5]
            )
            + (" ..." if far.sum() > 5 else ""),
            effect,
        )


def _per_channel(lo, hi, mean, std, channels: int):
    """Per-pixel statistics pooled per channel (the pixels have as many rows each), tiled."""
    c = np.arange(len(lo)) % channels
    k = range(channels)
    lo_c = np.array([lo[c == i].min() for i in k])
    hi_c = np.array([hi[c == i].max() for i in k])
    mean_c = np.array([mean[c == i].mean() for i in k])
    second = np.array([(std[c == i] ** 2 + mean[c == i] ** 2).mean() for i in k])
    return lo_c[c], hi_c[c], mean_c[c], np.sqrt(np.maximum(second - mean_c**2, 0.0))[c]


def _refuse_nonfinite(
    source: str,
    columns: list,
    scaling: str,
    lo: np.ndarray,
    hi: np.ndarray,
    value: np.ndarray,
    what: str,
) -> None:
    bad = np.flatnonzero(~np.isfinite(value))
    if bad.size:
        j = int(bad[0])
        raise UserError(
            f"{source}: column {columns[j]!r} cannot be scaled: its training "
            f"values run from {lo[j]:.6g} to {hi[j]:.6g}, and their {what} is not finite "
            f"(data.scaling={scaling!r}); expected values whose scaled range fits in "
            "float64 and float32: rescale the column (e.g. change its units), use another "
            "data.scaling, or drop it"
        )


def whole_fills(fill: dict, encoded: np.ndarray, imputed, columns) -> tuple[dict, np.ndarray]:
    """Pixel data's imputed cells as whole intensities: each column's training mean rounded
    (an intensity of 9.1 was refused as no pixel, naming that value as the file's, and the
    same mean would fill a new file's missing cells). `imputed`: (N, columns) bool, or None."""
    fill = {c: float(np.round(v)) for c, v in fill.items()}
    if imputed is None or not imputed.any():
        return fill, encoded
    whole = np.array([fill.get(c, np.nan) for c in columns])
    return fill, np.where(imputed, whole[None, :], encoded)


def whole_in_own_units(scaled: np.ndarray, scale: float, offset: float) -> bool:
    """Whether a scaled column's values are whole numbers in the column's own units
    (`scaled * scale + offset`), within float32's rounding of the scaled value times the
    scale: counts, identifiers, codes of categories, pixel intensities."""
    span = np.asarray(scaled, np.float64) * float(scale)
    v = span + float(offset)
    return bool(np.all(np.abs(v - np.rint(v)) <= 1e-6 + 4 * _EPS32 * np.abs(span)))


def check_images(p, x: np.ndarray, source: str) -> None:
    """Refuses scaled images `x` far outside what the training images' scaling maps to (0..255
    pixels for a model trained on floats in [0, 1]: scaled up to ~255), saying the training
    images' own range, and warns of images reaching under 2% of it. Pixel intensities (0..255)
    are checked when read (`check_pixels`); under data.scaling='none' (which kept no range)
    the training images' `span` is the range, and a run saved without one is not checked."""
    scaling = p.scaling
    if p.pixel_max and x.size:
        _say_dim_pixels(p, x, source)
    if p.pixel_max or not x.size or (scaling == "none" and p.span is None):
        return
    lo, hi = float(np.min(x)), float(np.max(x))
    if scaling == "none":  # the units themselves: 10 training widths beyond either end
        (a, b), maps = p.span, "keeps the training images' values"
        width = max(b - a, 1e-12)
        far, reach = hi > b + 10 * width or lo < a - 10 * width, (hi - a) / width
    else:
        offset, scale = np.asarray(p.offset, np.float64), np.asarray(p.scale, np.float64)
        a, b = float(offset.min()), float((offset + scale).max())  # what minmax maps to 0, 1
        if p.span is not None:  # (a constant channel's scale is 1: "7 .. 8" for 7s, a probe)
            a, b = p.span
        limit = 10.0 if scaling == "minmax" else 100.0  # [0, 1] / z-scores of the training's
        far, reach = hi > limit or lo < -limit, hi if scaling == "minmax" else 1.0
        maps = "maps the training images to " + (
            "[0, 1]" if scaling == "minmax" else "mean 0, sd 1 per channel"
        )
    was = f" (they spanned {a:.4g} .. {b:.4g})" if scaling != "standard" else ""
    if far:
        raise UserError(
            f"{source}: its images reach {lo:.4g} .. {hi:.4g} after the run's "
            f"data.scaling={scaling!r}, which {maps}: images in other units? Give them in the "
            f"training images' units{was}"
        )
    if 0 < reach < 0.02:  # [0, 1] images for a model of 0..255 ones
        logging.warning(
            "%s: its images reach only %.4g of the training images' range after the run's "
            "data.scaling=%r%s: images in other units (as [0, 1] for a model trained on "
            "0..255)? Encoded as given",
            source,
            reach,
            scaling,
            was,
        )


def _say_dim_pixels(p, x: np.ndarray, source: str) -> None:
    """Warns of pixel intensities whose largest is under an eighth of the run's 0..pixel_max
    (as training warns of its own: under 32 of 0..255): counts 0..16 given to a model of
    0..255 images were evaluated and encoded without a word (a probe)."""
    # In the pixels' own units, per feature first (scale > 0): no copy of a large input.
    top = float(np.max(x.max(axis=0) * np.asarray(p.scale) + np.asarray(p.offset)))
    if 0 < top < p.pixel_max / 8:  # (all black: nothing to tell)
        logging.warning(
            "%s: pixel intensities whose largest is %.4g, under an eighth of the run's "
            "0..%d: codes or counts, or images scaled down? Where the training images were "
            "intensities 0..%d, give these so too (training warned if its own were this dim); "
            "encoded as given",
            source,
            top,
            p.pixel_max,
            p.pixel_max,
        )


def first_non_pixel(encoded: np.ndarray, pixel_max: int) -> tuple[int, int] | None:
    """(row, column) of the first value that is not a whole intensity 0..pixel_max, if any."""
    bad = np.argwhere((encoded < 0) | (encoded > pixel_max) | (encoded % 1 != 0))
    return (int(bad[0][0]), int(bad[0][1])) if bad.size else None


def check_pixels(encoded: np.ndarray, pixel_max: int, columns: list, table) -> None:
    """New rows of pixel data hold whole intensities 0..pixel_max, as training's did: an image
    already divided (floats in [0, 1]) would silently be divided again."""
    if pixel_max > 1 and encoded.size and encoded.max() == 1 and np.isin(encoded, (0, 1)).all():
        raise UserError(
            f"{table.source}: every pixel is 0 or 1 (binarised images?), but the model was "
            f"trained on pixel intensities, whole numbers 0..{pixel_max} that it divides by "
            f"{pixel_max} (these would all be near black); expected such intensities (binary "
            f"images: multiply them by {pixel_max})"
        )
    bad = first_non_pixel(encoded, pixel_max)
    if bad is not None:
        r, j = bad
        # The way back to 0..pixel_max from what the values look like (the advice to multiply,
        # given for any value, made images of 0..255 for a 0..16 model worse)
        low, top = float(encoded.min()) + 0.0, float(encoded.max()) + 0.0  # (-0.0 said "-0")
        fix = (
            f"images already in [0, 1]: multiply them by {pixel_max}"
            if low >= 0 and top <= 1
            else "round them to whole numbers"
            if low >= 0 and top <= pixel_max
            else f"images of 0..255: multiply them by {pixel_max}/255 and round"
            if low >= 0 and top <= 255 and (encoded % 1 == 0).all()
            else f"these span {low:.6g}..{top:.6g}: map them to whole numbers 0..{pixel_max}"
        )
        raise UserError(
            f"{table.source}: column {columns[j]!r} has {encoded[r, j]:.6g} at "
            f"{table.where([r])}, but the model was trained on pixel intensities, whole "
            f"numbers 0..{pixel_max} that it divides by {pixel_max}; expected such intensities "
            f"({fix})"
        )
