"""Figures written to `workdir/figures/` (matplotlib, Agg backend: no display needed)."""

import os

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ae_jax.models import VAE  # noqa: E402

_N_SHOW = 10


# One learning-curve figure per set of terms, reused across runs: building axes and ticks
# was most of the cost, which a sweep of many small runs pays once per run.
_CURVES: dict[tuple, tuple] = {}


def _curves_figure(terms: tuple[str, ...]):
    if terms not in _CURVES:
        fig = Figure(figsize=(3.2 * len(terms), 2.8))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(terms), squeeze=False)[0]
        lines = []
        for ax, term in zip(axes, terms, strict=True):
            lines.append((ax.plot([], [], label="train")[0], ax.plot([], [], label="eval")[0]))
            ax.set_title(term)
            ax.set_xlabel("epoch")
        axes[0].legend(fontsize=7)
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.17, top=0.88, wspace=0.3)
        _CURVES[terms] = (fig, axes, lines)
    return _CURVES[terms]


def learning_curves(path: str, history: list[dict]) -> None:
    """One panel per loss term: train and eval against epoch."""
    terms = tuple(k[len("eval/"):] for k in history[0] if k.startswith("eval/"))
    fig, axes, lines = _curves_figure(terms)
    epochs = [r["epoch"] for r in history]
    for ax, term, (train_line, eval_line) in zip(axes, terms, lines, strict=True):
        train_line.set_data(epochs, [r.get(f"train/{term}", np.nan) for r in history])
        eval_line.set_data(epochs, [r[f"eval/{term}"] for r in history])
        ax.relim()
        ax.autoscale_view()
    fig.savefig(path, dpi=80)


def image_grid(path: str, rows: list[np.ndarray], titles: list[str], shape) -> None:
    """Rows of images (each row an (n, prod(shape)) array), one titled row each."""
    n = rows[0].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 1.0), squeeze=False)
    for r, (imgs, title) in enumerate(zip(rows, titles, strict=True)):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(np.clip(imgs[c].reshape(shape), 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def table_heatmap(path: str, rows: np.ndarray, columns: list[str], title: str) -> None:
    """Tabular rows as a heatmap (features on x), for samples of a tabular VAE."""
    fig, ax = plt.subplots(figsize=(max(4, 0.3 * len(columns)), 3))
    im = ax.imshow(rows, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, rotation=90, fontsize=6)
    ax.set_ylabel("sample")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run_figures(workdir: str, model, params, ds, history: list[dict], hyper: dict) -> list[str]:
    """Writes the figures of one finished run; returns their paths."""
    out_dir = os.path.join(workdir, "figures")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    if history:  # A run that diverged in its first epoch has no curve to draw.
        path = os.path.join(out_dir, "learning_curves.png")
        learning_curves(path, history)
        written.append(path)
    variables = {"params": params}
    x = ds.val[:_N_SHOW]
    if ds.image_shape is not None and _displayable(ds):
        recon = np.asarray(model.apply(variables, x, method=lambda m, v: m.decode(m.encode(v))))
        path = os.path.join(out_dir, "reconstructions.png")
        image_grid(path, [x, recon], ["original", "reconstruction"], ds.image_shape)
        written.append(path)
    if isinstance(model, VAE):
        rng = jax.random.fold_in(jax.random.PRNGKey(hyper["seed"]), 3)
        samples = np.asarray(model.apply(variables, rng, _N_SHOW, method=VAE.sample))
        path = os.path.join(out_dir, "samples.png")
        if ds.image_shape is not None and _displayable(ds):
            image_grid(path, [samples], ["samples"], ds.image_shape)
        else:
            table_heatmap(path, samples, ds.columns, "VAE samples (scaled feature space)")
        written.append(path)
    return written


def _displayable(ds) -> bool:
    return int(np.prod(ds.image_shape)) == ds.num_features
