"""Figures of a run, drawn from numpy arrays alone by a `renderer.Renderer`.

Nothing here touches JAX or matplotlib's global state (pyplot, the backend), so figures can be
rendered on a background thread while the next group trains (`figure_writer.py`), and importing
ae_jax leaves a notebook's backend alone. `figure_data.figure_inputs` computes what
they draw.

  learning_curves.png    train and eval loss terms against epoch
  codes_2d.png           codes projected to 2-D (PCA of the codes unless latent_dim == 2),
                         coloured by the labels when the data has them
  latent_manifold.png    image data, latent_dim == 2: decodings of a grid of z
  reconstructions.png    image data: validation rows and their reconstructions
  recon_per_feature.png  tabular data: per-feature MSE of the model and of the PCA baseline
  recon_per_column.png   tables with categorical or true/false columns: accuracy per column
                         against always predicting the most frequent value
  traversal.png          tabular VAE: change of each output column as z_d moves from -2 to 2
  samples.png            VAE: decodings of draws from the prior (images, or a heatmap)
"""

import dataclasses
import os

import numpy as np

from ae_jax.evaluation import statistics
from ae_jax.evaluation.renderer import Renderer

N_SHOW = 10  # rows shown in reconstructions and samples
GRID = 15  # the latent manifold's grid is GRID x GRID
_MAX_CATEGORIES = 20  # more distinct numeric labels than this are coloured as a continuum
_SPAN = 2.0  # the traversal moves z_d from -_SPAN to _SPAN


@dataclasses.dataclass
class FigureInputs:
    """Everything one run's figures draw; None where a figure does not apply."""

    columns: list[str]
    image_shape: tuple[int, ...] | None
    epoch: int
    is_vae: bool
    history: list[dict] | None = None
    x_show: np.ndarray | None = None  # (n, D) validation rows ...
    recon_show: np.ndarray | None = None  # ... and their reconstructions
    samples: np.ndarray | None = None  # (n, D) decoded prior draws
    codes: np.ndarray | None = None  # (N, L) codes of the validation rows
    labels: np.ndarray | None = None
    manifold: tuple | None = None  # ((GRID**2, D) decodings, lo (2,), hi (2,))
    mse_per_feature: np.ndarray | None = None
    pca_per_feature: np.ndarray | None = None
    traversal: np.ndarray | None = None  # (L, D)
    # categorical and true/false columns: (names, model accuracy, majority-baseline accuracy)
    column_accuracy: tuple | None = None
    colour_name: str = "label"  # what `labels` are (eval.color_by names a column)
    recon_unit: str = "squared error"  # what the reconstruction term is (loss.recon)
    bounds_are_ll: bool = True  # whether the VAE's bounds are of log p(x) (bounds.py)
    kl_weighted: bool = False  # whether training weighted its KL (`figure_data.kl_weighted`)
    iw_k: int = 1  # the importance samples of the training objective (loss.iw_samples_train)
    decoded: str = "means"  # what the decoder's output is (the continuous Bernoulli: its λ)
    # Images are drawn in the data's own units (the scaling undone), all of a run's over one
    # range: the evaluated rows' [min(0, lo), max(1, hi)]; reconstructions past it are clipped.
    image_range: tuple | None = None
    rows_name: str = "validation rows"  # what x_show are (another file's rows: its name)
    value_units: str = "scaled units"  # what a table's values are in (`figure_data.value_units`)
    filled_cells: int = 0  # cells of the rows missing from the file, filled (data.missing)


MAX_BARS = 60  # features in recon_per_feature.png


def curve_units(
    recon_unit: str, bounds_are_ll: bool = True, kl_weighted: bool = False, iw_k: int = 1
) -> dict[str, str]:
    """The y-axis label of each learning-curve term: what it is, per what, in which unit (an
    importance-weighted bound of a term that is no log-likelihood is named for what it is, and
    with a KL weight other than 1, a warm-up's included, it is an objective, not a bound; its
    k is training's, loss.iw_samples_train, not eval.json's vae/iwae_k)."""
    k = f"k = {iw_k}"
    if bounds_are_ll:
        iw = (
            f"IWAE objective ({k}), KL weighted (no bound), nats"
            if kl_weighted
            else f"IWAE bound ({k}), nats"
        )
    else:
        what = "objective, KL weighted" if kl_weighted else "bound"
        iw = f"IWAE-form {what} ({k}; {recon_unit})"
    return {
        "loss": "objective per example",
        "recon": f"{recon_unit} per example",
        "l1": "sum |code| per example",
        "kl": "KL, nats per example",
        "kl_free_bits": "KL with free bits, nats per example",
        "kl_weight": "KL weight",
        "iw_bound": f"{iw} per example",
        "tc": "total correlation, nats",
        "mi": "index-code MI, nats",
        "dim_kl": "dimension-wise KL, nats",
        "mmd": "MMD² to the prior",
        "sparsity": "KL sparsity, nats",
        "mse": "per-element MSE",
    }


def displayable(shape) -> bool:
    return shape is not None and (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3)))


def traversal_codes(latent_dim: int) -> np.ndarray:
    """(2L, L) codes: z_d = -span then +span for each dim d, others 0."""
    z = np.zeros((2 * latent_dim, latent_dim), np.float32)
    dims = np.arange(latent_dim)
    z[2 * dims, dims] = -_SPAN
    z[2 * dims + 1, dims] = _SPAN
    return z


def traversal_response(decoded: np.ndarray) -> np.ndarray:
    """(..., 2L, D) decodings of `traversal_codes` -> (..., L, D) change per latent dim."""
    out = np.asarray(decoded, np.float64)
    return out[..., 1::2, :] - out[..., 0::2, :]


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """(N, L) codes -> (N, 2) points and axis names: the codes themselves when L <= 2 (L == 1
    gets a zero second axis), else their first two principal components."""
    c = np.asarray(codes, np.float64)
    if c.shape[1] == 2:
        return c, ("z0", "z1")
    if c.shape[1] == 1:
        return np.concatenate([c, np.zeros_like(c)], axis=1), ("z0", "none (a 1-D code)")
    if c.shape[0] < 2:
        return c[:, :2], ("z0", "z1")
    mean, components = statistics.pca_fit(c, 2)
    return (c - mean) @ components.T, ("code PC1", "code PC2")


def code_range(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The span (lo, hi) of each unit of (N, L) codes that the latent manifold decodes: of the
    rows whose code is finite (a diverged run's can overflow; none finite: -1..1), a unit
    that does not vary given an axis of 1."""
    c = np.asarray(codes)[np.isfinite(codes).all(axis=1)]
    if not len(c):
        return -np.ones(c.shape[1]), np.ones(c.shape[1])
    lo, hi = c.min(axis=0), c.max(axis=0)
    return lo, np.where(hi > lo, hi, lo + 1.0)


def latent_grid(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """An n x n grid over [lo0, hi0] x [lo1, hi1] -> (n * n, 2), row-major with z1 falling
    down the rows and z0 rising along them (so the image reads like a plot)."""
    z0 = np.linspace(lo[0], hi[0], n)
    z1 = np.linspace(hi[1], lo[1], n)
    g1, g0 = np.meshgrid(z1, z0, indexing="ij")
    return np.stack([g0.ravel(), g1.ravel()], axis=1).astype(np.float32)


def rare_grouped(labels, max_categories: int) -> np.ndarray:
    """Labels of more than `max_categories` text values: the `max_categories - 1` most frequent
    kept, the rest one "other (m values)" group, so every row gets a colour. Numbers are left
    as they are (so many are coloured as a continuum)."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "iufb":
        return labels
    values, counts = np.unique(labels, return_counts=True)
    if len(values) <= max_categories:
        return labels
    keep = values[np.argsort(-counts, kind="stable")[: max_categories - 1]]
    other = f"other ({len(values) - len(keep)} values)"
    return np.where(np.isin(labels, keep), labels.astype(str), other)


def tile(
    images: np.ndarray, shape, rows: int, cols: int, gap: int = 1, value_range=None
) -> np.ndarray:
    """(rows * cols, prod(shape)) images -> one (H', W'[, 3]) mosaic with `gap` white pixels
    between tiles; values mapped from `value_range` (lo, hi) to [0, 1] and clipped (None: from
    [min(0, lo), max(1, hi)] of the images themselves)."""
    h, w = shape[:2]
    c = shape[2] if len(shape) == 3 else 1
    imgs = np.asarray(images, np.float64).reshape(rows, cols, h, w, c)
    if value_range is not None:
        lo, hi = (float(v) for v in value_range)
    else:
        lo, hi = min(0.0, float(np.nanmin(imgs))), max(1.0, float(np.nanmax(imgs)))
    hi = hi if hi > lo else lo + 1.0
    imgs = np.clip((imgs - lo) / (hi - lo), 0.0, 1.0)
    out = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, c))
    for r in range(rows):
        for k in range(cols):
            out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = imgs[r, k]
    return out[..., 0] if c == 1 else out


@dataclasses.dataclass(frozen=True)
class Drawing:
    """One figure to draw: `Renderer.<method>(path, *args)`, numpy arrays and text only, so
    it can be sent to a figure worker process (`figure_writer.py`)."""

    path: str
    method: str
    args: tuple

    def draw(self, renderer: Renderer) -> str:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        getattr(renderer, self.method)(self.path, *self.args)
        return self.path


def curves(
    out_dir: str,
    history: list[dict] | None,
    recon_unit: str,
    bounds_are_ll: bool = True,
    kl_weighted: bool = False,
    iw_k: int = 1,
) -> list[Drawing]:
    """The learning curves alone (none for a run that diverged in its first epoch): they need
    only the history, so they can be drawn as soon as training ends (`plan` includes them)."""
    if not history:
        return []
    path = os.path.join(out_dir, "learning_curves.png")
    units = curve_units(recon_unit, bounds_are_ll, kl_weighted, iw_k)
    return [Drawing(path, "learning_curves", (list(history), units))]


def _widest_columns(spread: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """At most MAX_BARS columns of a bar chart or heatmap (500 drew a chart 18,000 pixels
    tall): those of the largest `spread` (NaN counts as the largest), in table order, and the
    title's note, "; the 60 of 500 `what`"."""
    spread = np.asarray(spread, float)
    if spread.size <= MAX_BARS:
        return np.arange(spread.size), ""
    order = np.argsort(-np.nan_to_num(spread, nan=np.inf), kind="stable")
    return np.sort(order[:MAX_BARS]), f"; the {MAX_BARS} of {spread.size} {what}"


def _clipped(images: np.ndarray, value_range) -> str:
    """A title's second line when some of `images` lie beyond the range drawn: a row of
    reconstructions all above it was drawn white, as if missing (a probe)."""
    if value_range is None:  # (the images' own range: nothing beyond it)
        return ""
    x = np.asarray(images, np.float64)
    lo, hi = value_range
    below, above = float(np.mean(x < lo)), float(np.mean(x > hi))
    if not below and not above:
        return ""
    said = [
        f"{v:.0%} {w}" if v >= 0.01 else f"under 1% {w}"
        for v, w in ((below, "below"), (above, "above"))
        if v
    ]
    return f"\nreconstructed values beyond the range drawn, {lo:g}..{hi:g}: {', '.join(said)}"


def plan(out_dir: str, f: FigureInputs) -> list[Drawing]:
    """The figures of one run, in the order they are listed in the module docstring."""
    todo = curves(out_dir, f.history, f.recon_unit, f.bounds_are_ll, f.kl_weighted, f.iw_k)

    def add(name: str, method: str, *args) -> None:
        todo.append(Drawing(os.path.join(out_dir, name), method, args))

    shape = f.image_shape if displayable(f.image_shape) else None
    if f.codes is not None:
        what = "posterior means" if f.is_vae else "codes"
        # A diverged run's codes can overflow: its rows with a non-finite code are left out of
        # the projection (whose PCA raised LinAlgError on them) and said.
        finite = np.isfinite(f.codes).all(axis=1)
        off = len(f.codes) - int(finite.sum())
        labels = f.labels if f.labels is None or not off else np.asarray(f.labels)[finite]
        points, names = project_2d(f.codes[finite] if off else f.codes)
        add(
            "codes_2d.png",
            "codes_2d",
            points,
            names,
            None if labels is None or not len(points) else rare_grouped(labels, _MAX_CATEGORIES),
            f"{what} of {len(f.codes)} row{'s' * (len(f.codes) != 1)} (epoch {f.epoch})"
            + (f"\nnot drawn: the {off} with a non-finite {what[:-1]}" if off else ""),
            _MAX_CATEGORIES,
            f.colour_name,
        )
    if f.manifold is not None and shape is not None:
        imgs, lo, hi = f.manifold
        gap = max(2, shape[0] // 8)
        # Each tile centred on the code it decodes: the axes reach half a tile beyond the grid.
        tile_px = np.array([shape[1], shape[0]], float)  # z0 along a tile's width, z1 its height
        half = (np.asarray(hi) - np.asarray(lo)) / (GRID - 1) * (tile_px / 2) / (tile_px + gap)
        span = (
            f"[{lo[0]:g}, {hi[0]:g}]², the prior's bulk"
            if f.is_vae
            else f"the range of the codes of the {f.rows_name}"
        )
        add(
            "latent_manifold.png",
            "mosaic",
            tile(imgs, shape, GRID, GRID, gap=gap, value_range=f.image_range),
            f"decoded {GRID}x{GRID} grid of codes over {span}; epoch {f.epoch}",
            (lo[0] - half[0], hi[0] + half[0], lo[1] - half[1], hi[1] + half[1]),
            ("z0", "z1"),
        )
    if shape is not None and f.recon_show is not None and f.x_show is not None:
        n = len(f.x_show)
        add(
            "reconstructions.png",
            "mosaic",
            tile(np.concatenate([f.x_show, f.recon_show]), shape, 2, n, value_range=f.image_range),
            f"{f.rows_name} (top), reconstructions (bottom); epoch {f.epoch}"
            + _clipped(f.recon_show, f.image_range),
        )
    if f.image_shape is None and f.mse_per_feature is not None:
        # At most MAX_BARS bars (a 500-feature table drew an 18,000-pixel-tall chart): the
        # features the model reconstructs worst, in table order; eval.json has them all.
        mse = np.asarray(f.mse_per_feature, float)
        keep, note = _widest_columns(mse, "worst reconstructed")
        # (eval.json's recon/per_column has each column's error over its observed cells)
        filled = f" (the {f.filled_cells} filled missing cells too)" if f.filled_cells else ""
        add(
            "recon_per_feature.png",
            "per_feature_bars",
            [f.columns[j] for j in keep],
            mse[keep],
            None if f.pca_per_feature is None else np.asarray(f.pca_per_feature)[keep],
            f"mean squared error over the rows{filled}, {f.value_units} (log axis)",
            f"reconstruction error per feature ({f.rows_name}, epoch {f.epoch}){note}",
            True,
            "PCA, as many components",
        )
    if f.column_accuracy is not None:
        names, model, baseline = f.column_accuracy
        add(
            "recon_per_column.png",
            "per_feature_bars",
            names,
            np.asarray(model),
            np.asarray(baseline),
            f"accuracy of the reconstruction ({f.rows_name})",
            f"categorical and true/false columns (epoch {f.epoch})",
            False,
            "most frequent value",
        )
    if f.traversal is not None:
        keep, note = _widest_columns(np.abs(f.traversal).max(axis=0), "columns it changes most")
        add(
            "traversal.png",
            "heatmap",
            f.traversal[:, keep],
            [f.columns[j] for j in keep],
            [f"z{d}" for d in range(f.traversal.shape[0])],
            f"output change as z_d goes from {-_SPAN:g} to {_SPAN:g} (others 0){note}; "
            f"epoch {f.epoch}",
            "RdBu_r",
            True,
            f"change ({f.value_units})",
        )
    if f.samples is not None:
        if shape is not None:
            add(
                "samples.png",
                "mosaic",
                tile(f.samples, shape, 1, len(f.samples), value_range=f.image_range),
                f"samples from the prior (decoded {f.decoded}; epoch {f.epoch})",
            )
        else:
            keep, note = _widest_columns(np.std(f.samples, axis=0), "columns varying most")
            add(
                "samples.png",
                "heatmap",
                f.samples[:, keep],
                [f.columns[j] for j in keep],
                [str(i) for i in range(len(f.samples))],
                f"VAE samples from the prior (decoded {f.decoded}; epoch {f.epoch}){note}",
                "viridis",
                False,
                f"value ({f.value_units})",
                "draw from the prior",
            )
    return todo


def write_figures(out_dir: str, f: FigureInputs, renderer: Renderer | None = None) -> list[str]:
    """Writes one run's figures into `out_dir`, in this thread; returns their paths.

    `renderer`: a Renderer to reuse; None draws with a new one.
    """
    r = renderer or Renderer()
    os.makedirs(out_dir, exist_ok=True)
    return [d.draw(r) for d in plan(out_dir, f)]
