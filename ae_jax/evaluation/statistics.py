"""Statistics of an evaluation, in numpy (float64): per-feature errors, the PCA baseline,
code statistics, KL per latent dimension, active units.

Conventions are those of training (`training/losses.py`): per-example terms are summed over
features (or latent dimensions) and averaged over rows, in nats for likelihoods; only the
per-element MSE (`recon/mse`, `pca/mse`) is a mean over features too.
"""

import math
from collections.abc import Mapping

import numpy as np

_ROWS = 4096  # rows per block of the PCA covariance (32 MB of float64 at 1,000 features)


def mse_per_feature(x_hat: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, D), (N, D) -> (D,) mean over rows of the squared error, in float64."""
    err = np.array(x_hat, np.float64)  # a copy, squared in place: no other (N, D) temporary
    err -= x
    return np.mean(np.square(err, out=err), axis=0)


def bce_per_feature(logits: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, D) logits, (N, D) targets in [0, 1] -> (D,) mean over rows of the Bernoulli NLL.

    Their sum is the per-example BCE summed over features, averaged over rows (`recon/bce`).
    """
    z, x = np.asarray(logits, np.float64), np.asarray(x, np.float64)
    # max(z, 0) - z x + log(1 + exp(-|z|)): finite for every logit.
    return np.mean(np.maximum(z, 0.0) - z * x + np.log1p(np.exp(-np.abs(z))), axis=0)


def pca_fit(x_train: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of x_train (M, D): its mean (D,) and top principal directions (k, D), in float64.

    With more rows than columns (M >= D), from the eigendecomposition of the D x D covariance,
    summed over blocks of `_ROWS` centred rows in float64: a copy of the whole split in float64
    was 2.5x its float32 size, and its centred copy as much again (600 MB for 48,000 x 784).
    With fewer (a wide table), from the SVD of the M x D centred rows, which costs M^2 D, not
    the covariance's D^2 M and eigh's D^3 (40 x 2,000: 3.6 s of eigh; 20,000 columns would have
    been 3 GB and about an hour). k is capped at D and M. The sign of each direction is fixed
    (largest |entry| positive), so the result is deterministic.
    """
    return _pca(x_train, n_components)[:2]


def _pca(x_train: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`pca_fit`, and the variance of the training rows along each direction (k,)."""
    x = np.asarray(x_train)
    k = max(1, min(int(n_components), x.shape[1], x.shape[0]))
    mean = x.mean(axis=0, dtype=np.float64)
    if x.shape[0] < x.shape[1]:
        _, sv, vt = np.linalg.svd(x.astype(np.float64) - mean, full_matrices=False)
        top, variances = vt[:k], sv[:k] ** 2 / max(x.shape[0] - 1, 1)
    else:
        cov = np.zeros((x.shape[1], x.shape[1]))
        for start in range(0, x.shape[0], _ROWS):
            xc = x[start : start + _ROWS].astype(np.float64) - mean
            cov += xc.T @ xc
        values, vectors = np.linalg.eigh(cov / max(x.shape[0] - 1, 1))
        order = np.argsort(values)[::-1][:k]
        top, variances = vectors[:, order].T, values[order]  # (k, D), (k,)
    signs = np.sign(top[np.arange(k), np.argmax(np.abs(top), axis=1)])
    return mean, top * np.where(signs == 0, 1.0, signs)[:, None], variances


def pca_reconstruction(x_train: np.ndarray, x: np.ndarray, n_components: int) -> np.ndarray:
    """Fits PCA(n_components) on x_train (M, D); returns the reconstruction of x (N, D).

    Directions along which the training rows do not vary (more components than their rank:
    M rows span at most M - 1) are no principal directions and are left out: any vector of
    that null space would do, and the one a solver returns (eigh or SVD, a LAPACK build's)
    decided how other rows were reconstructed. Evaluation calls it once per group of models
    (they share the data and the code size).
    """
    mean, components, variances = _pca(x_train, n_components)
    # (numpy's rank tolerance: the largest times max(M, D) times float64's epsilon)
    tol = float(variances.max()) * max(np.shape(x_train)) * np.finfo(np.float64).eps
    components = components[variances > tol]
    centred = np.array(x, np.float64)
    centred -= mean
    out = centred @ components.T @ components
    out += mean
    return out


def pca_exact(pca_per: np.ndarray, x: np.ndarray, width: int) -> str | None:
    """Why PCA with `width` components is exact on x (N, D), or None when it is not: width >=
    D, or data of rank <= width (duplicated or one-hot columns), when its reconstruction of x
    is exact. Exact: every column's PCA error (pca_per, (D,)) is below 1e-10 of its own
    variance plus float32 resolution (1e-14) of the largest column's mean square, the scale of
    the decomposition's own rounding. A ratio over rounding error would be ~1e30, so
    ae_over_pca is then null. (width >= D alone is not enough: a training split of M rows
    spans at most M - 1 directions, and rows off them are not reconstructed.)"""
    d = x.shape[1]
    x = np.asarray(x, np.float64)
    rounding = 1e-10 * np.var(x, axis=0) + 1e-14 * np.max(np.mean(x**2, axis=0))
    if not np.all(np.asarray(pca_per) <= rounding):
        return None
    if width >= d:
        return f"PCA with {width} components for {d} features is exact: no ratio"
    return (
        f"PCA with {width} components reconstructs these {d} features exactly (the data "
        f"has rank <= {width}): no ratio"
    )


def pca_few_rows(x_train: np.ndarray, width: int) -> str | None:
    """What pca/mse is when the training split's M rows span fewer directions (M - 1 at most)
    than the code's `width` and the data's D: PCA with at most M - 1 components, no more to
    fit (`pca_reconstruction`), where a reader of pca/mse takes `width`; None otherwise."""
    m, d = np.shape(x_train)
    if m - 1 >= min(width, d):
        return None
    return (
        f"PCA of the training split's {m} row(s) has at most {m - 1} component(s), fewer than "
        f"the code's {width}: its rows span no more directions"
    )


def code_statistics(codes: np.ndarray, near_zero: float) -> dict:
    """Statistics of codes (N, L) under the `code/` keys of eval.json.

    A unit is dead when its mean |activation| over the rows is below `near_zero`.
    """
    c = np.asarray(codes, np.float64)
    mean_abs = np.mean(np.abs(c), axis=0)
    dead = [int(u) for u in np.flatnonzero(mean_abs < near_zero)]
    return {
        "code/mean_activation": float(np.mean(c)),
        "code/l1_per_row": float(np.mean(np.sum(np.abs(c), axis=1))),
        "code/near_zero_fraction": float(np.mean(np.abs(c) < near_zero)),
        "code/near_zero_threshold": float(near_zero),
        "code/unit_mean": np.mean(c, axis=0).tolist(),
        "code/unit_std": np.std(c, axis=0).tolist(),
        "code/dead_units": dead,
        "code/dead_unit_count": len(dead),
    }


def kl_per_dim(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """(N, L) posterior means and log variances -> (L,) mean over rows of KL(q || N(0, 1))."""
    m, lv = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return np.mean(0.5 * (np.exp(lv) + np.square(m) - 1.0 - lv), axis=0)


def active_units(mean: np.ndarray, threshold: float) -> int | None:
    """Units u with Var_x(E_q[z_u | x]) > threshold (Burda et al. 2016); mean is (N, L). None
    for one row, which no unit's mean can vary over (its variance, 0, counted no unit active)."""
    m = np.asarray(mean, np.float64)
    return int(np.sum(np.var(m, axis=0) > threshold)) if len(m) >= 2 else None


def not_finite(metrics: dict) -> list[str]:
    """The keys of `metrics` holding a NaN or infinite number (in dicts and lists, nested as
    `recon/per_column` is: the key, with how many), which `json_safe` writes as null."""

    def count(v) -> int:
        if isinstance(v, dict):
            return sum(count(x) for x in v.values())
        if isinstance(v, list | tuple):
            return sum(count(x) for x in v)
        return int(isinstance(v, float | np.floating) and not math.isfinite(v))

    return [
        key if isinstance(v, float | np.floating) else f"{key} ({n})"
        for key, v in metrics.items()
        if (n := count(v))
    ]


def json_safe(value):
    """NaN and infinities become None (strict JSON has no such numbers); numpy -> Python."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_EPS = 1e-7


def per_column(
    layout,
    x: np.ndarray,
    out: np.ndarray,
    x_train: np.ndarray | None,
    offset: np.ndarray | None,
    scale: np.ndarray | None,
    imputed: np.ndarray | None = None,
    imputed_train: np.ndarray | None = None,
    unseen: Mapping[str, int] | None = None,
) -> tuple[dict, dict]:
    """Reconstruction per input column of a table, by its kind (`Preprocessor.layout()`).

    Every metric counts the column's observed cells only: `imputed` / `imputed_train` ((N,
    input columns) bool, or None) mark the cells of `x` / `x_train` that were missing and filled
    with the training split's mean or mode (data.missing='impute'), which are no data to
    reconstruct (and a baseline predicting the mode would score on each). Such a column also
    gets "imputed_rows" (how many were passed over); one with no observed row, no metric. A
    categorical column's rows of a category training never saw (`unseen`: column -> its
    UNSEEN code, a one-hot block's last slot or the last ordinal code; a preprocessor saved
    before version 3 has none) are counted, "unseen_rows", and each is a miss of the
    accuracy: its guess is among the trained categories (an ordinal guess, the nearest trained
    code: one of the UNSEEN code or beyond is the last trained one, one below 0 is 0).

    numeric: "mse" and "mae" (scaled units), "rmse_original" (the column's own units, through
    the inverse scaling). categorical (a one-hot block, or an ordinal code) and boolean:
    "accuracy" (argmax of the block, nearest code, or p > 0.5), "cross_entropy" (nats, of the
    reconstruction read as probabilities: a block normalised to sum 1, p clipped to
    [1e-7, 1 - 1e-7]; not for ordinal codes), and "baseline_accuracy": the accuracy on these
    same rows of always predicting the training split's most frequent value (what a model that
    learned nothing but the marginal gets; the training split's own share of that value would
    compare two different sets of rows).

    Returns:
        ({column: metrics}, summaries: "recon/numeric_mse" (mean over numeric columns) and
        "recon/categorical_accuracy" (mean over categorical and boolean columns), when any).
    """
    cols, numeric_mse, accuracies, unseen = {}, [], [], unseen or {}
    for i, (name, kind, start, width) in enumerate(layout):
        m: dict = {
            "kind": "numeric"
            if kind == "numeric"
            else "boolean"
            if kind == "boolean"
            else "categorical"
        }
        rows = slice(None) if imputed is None else ~imputed[:, i]
        # A column at a time in float64 (copies of the whole splits were 2x their size).
        t = np.asarray(x[:, start : start + width][rows], np.float64)
        o = np.asarray(out[:, start : start + width][rows], np.float64)
        if imputed is not None and imputed[:, i].any():
            m["imputed_rows"] = int(imputed[:, i].sum())
        col_train = None  # the column's observed training rows (N_train, width)
        if x_train is not None and kind != "numeric":
            col_train = np.asarray(x_train[:, start : start + width], np.float64)
            if imputed_train is not None:
                col_train = col_train[~imputed_train[:, i]]
        cols[name] = m
        if not len(t):
            continue
        if kind == "numeric":
            assert scale is not None  # numeric and ordinal columns need the scaling
            err = o[:, 0] - t[:, 0]
            m.update(
                mse=float(np.mean(err**2)),
                mae=float(np.mean(np.abs(err))),
                rmse_original=float(np.sqrt(np.mean(err**2)) * abs(scale[start])),
            )
            numeric_mse.append(m["mse"])
        elif kind == "ordinal":
            assert scale is not None and offset is not None  # as above
            sc, off = scale[start], offset[start]
            truth, guess = np.rint(t[:, 0] * sc + off), np.rint(o[:, 0] * sc + off)
            if (code := unseen.get(name)) is not None:
                guess = np.clip(guess, 0, code - 1)  # the nearest trained code
                if n_unseen := int((truth == code).sum()):
                    m["unseen_rows"] = n_unseen
            m["accuracy"] = float(np.mean(guess == truth))
            if col_train is not None:
                codes, counts = np.unique(np.rint(col_train[:, 0] * sc + off), return_counts=True)
                mode = codes[np.argmax(counts)]
                m["baseline_accuracy"] = float(np.mean(np.rint(t[:, 0] * sc + off) == mode))
        elif kind == "boolean":
            truth, p = t[:, 0] > 0.5, np.clip(o[:, 0], _EPS, 1 - _EPS)
            m.update(
                accuracy=float(np.mean((p > 0.5) == truth)),
                cross_entropy=float(-np.mean(np.where(truth, np.log(p), np.log1p(-p)))),
            )
            if col_train is not None:
                # a tie: false, the value data.missing='impute' fills (`impute_value`)
                mode = bool(np.mean(col_train[:, 0] > 0.5) > 0.5)
                m["baseline_accuracy"] = float(np.mean(truth == mode))
        else:
            truth = np.argmax(t, axis=1)
            if name in unseen and (n_unseen := int((truth == width - 1).sum())):
                m["unseen_rows"] = n_unseen  # (a miss for any model: it was never trained on)
            # A guess among the trained categories: the UNSEEN slot is none (a model whose
            # slot led on every row had its unseen rows counted as hits: 0.005, all 3 of them).
            guess = np.argmax(o[:, : width - 1] if name in unseen else o, axis=1)
            p = np.clip(o, _EPS, None)
            p = p / p.sum(axis=1, keepdims=True)
            m.update(
                accuracy=float(np.mean(guess == truth)),
                cross_entropy=float(-np.mean(np.log(p[np.arange(len(p)), truth]))),
            )
            if col_train is not None:
                counts = np.bincount(np.argmax(col_train, axis=1), minlength=width)
                m["baseline_accuracy"] = float(np.mean(truth == np.argmax(counts)))
        if "accuracy" in m:
            accuracies.append(m["accuracy"])
    summary = {}
    if numeric_mse:
        summary["recon/numeric_mse"] = float(np.mean(numeric_mse))
    if accuracies:
        summary["recon/categorical_accuracy"] = float(np.mean(accuracies))
    return cols, summary
