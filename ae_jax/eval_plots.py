"""Figures of an evaluation (matplotlib, Agg backend), written by `evaluate.evaluate_workdir`.

  codes_2d.png           codes projected to 2-D (PCA of the codes unless latent_dim == 2),
                         coloured by the labels when the data has them
  latent_manifold.png    image data, latent_dim == 2: decodings of a grid of z
  reconstructions.png    image data: validation rows and their reconstructions (this checkpoint)
  recon_per_feature.png  tabular data: per-feature MSE of the model and of the PCA baseline
  traversal.png          tabular VAE: change of each output column as z_d moves from -2 to 2
"""

import os
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from ae_jax import plots  # noqa: E402

_N_SHOW = 10
_MAX_CATEGORIES = 20  # more distinct numeric labels than this are coloured as a continuum


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """(N, L) codes -> (N, 2) points and axis names: the codes themselves when L <= 2 (L == 1
    gets a zero second axis), else their first two principal components."""
    c = np.asarray(codes, np.float64)
    if c.shape[1] == 2:
        return c, ("z0", "z1")
    if c.shape[1] == 1:
        return np.concatenate([c, np.zeros_like(c)], axis=1), ("z0", "")
    if c.shape[0] < 2:
        return c[:, :2], ("z0", "z1")
    return PCA(n_components=2).fit_transform(c), ("code PC1", "code PC2")


def codes_2d(path: str, codes: np.ndarray, labels: np.ndarray | None, title: str) -> None:
    """Scatter of the codes' 2-D projection; categorical labels get a legend, others a bar."""
    points, (xlabel, ylabel) = project_2d(codes)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    kw = {"s": 6, "alpha": 0.7, "linewidths": 0}
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], **kw)
    else:
        labels = np.asarray(labels)
        values = np.unique(labels)
        if labels.dtype.kind in "iuf" and len(values) > _MAX_CATEGORIES:
            sc = ax.scatter(points[:, 0], points[:, 1], c=labels.astype(float), cmap="viridis",
                            **kw)
            fig.colorbar(sc, ax=ax, label="label")
        else:
            cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20")
            for i, v in enumerate(values[:_MAX_CATEGORIES]):
                sel = labels == v
                ax.scatter(points[sel, 0], points[sel, 1], color=cmap(i % cmap.N), label=str(v),
                           **kw)
            ax.legend(fontsize=6, markerscale=2, loc="best", ncol=2 if len(values) > 10 else 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def latent_grid(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """An n x n grid over [lo0, hi0] x [lo1, hi1] -> (n * n, 2), row-major with z1 falling
    down the rows and z0 rising along them (so the image reads like a plot)."""
    z0 = np.linspace(lo[0], hi[0], n)
    z1 = np.linspace(hi[1], lo[1], n)
    g1, g0 = np.meshgrid(z1, z0, indexing="ij")
    return np.stack([g0.ravel(), g1.ravel()], axis=1).astype(np.float32)


def _displayable(shape) -> bool:
    return shape is not None and (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3)))


def latent_manifold(path: str, decode: Callable[[np.ndarray], np.ndarray], lo, hi,
                    image_shape: tuple[int, ...], n: int = 15) -> None:
    """Decodes an n x n grid of 2-D codes over [lo, hi] and tiles the images into one."""
    imgs = np.asarray(decode(latent_grid(np.asarray(lo), np.asarray(hi), n)))
    h, w = image_shape[:2]
    imgs = imgs.reshape(n, n, h, w, -1)
    mosaic = imgs.transpose(0, 2, 1, 3, 4).reshape(n * h, n * w, -1)
    mosaic = mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic
    vmin, vmax = min(0.0, float(mosaic.min())), max(1.0, float(mosaic.max()))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(np.clip((mosaic - vmin) / (vmax - vmin), 0, 1), cmap="gray", vmin=0, vmax=1,
              extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto")
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    ax.set_title("decoded latent grid", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def recon_per_feature(path: str, columns: list[str], model_mse: np.ndarray,
                      pca_mse: np.ndarray | None) -> None:
    """Per-feature validation MSE as bars: the model, and PCA with as many components beside."""
    d = len(columns)
    pos = np.arange(d)
    width = 0.4 if pca_mse is not None else 0.8
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * d), 3.4))
    ax.bar(pos - (width / 2 if pca_mse is not None else 0), model_mse, width, label="model")
    if pca_mse is not None:
        ax.bar(pos + width / 2, pca_mse, width, label="PCA")
    ax.set_xticks(pos)
    ax.set_xticklabels(columns, rotation=90, fontsize=6)
    ax.set_ylabel("MSE (scaled features)")
    ax.set_title("per-feature reconstruction error (validation)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def traversal_response(decode: Callable[[np.ndarray], np.ndarray], latent_dim: int,
                       span: float = 2.0) -> np.ndarray:
    """(L, D): decode(z_d = +span, others 0) - decode(z_d = -span, others 0), per dim d."""
    z = np.zeros((2 * latent_dim, latent_dim), np.float32)
    dims = np.arange(latent_dim)
    z[2 * dims, dims] = -span
    z[2 * dims + 1, dims] = span
    out = np.asarray(decode(z), np.float64)
    return out[1::2] - out[0::2]


def traversal(path: str, response: np.ndarray, columns: list[str], span: float = 2.0) -> None:
    """Heatmap of `traversal_response`: rows are latent dims, columns the output features."""
    lim = float(np.max(np.abs(response))) or 1.0
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(columns)),
                                    max(2.2, 0.35 * response.shape[0] + 1.2)))
    im = ax.imshow(response, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, rotation=90, fontsize=6)
    ax.set_yticks(range(response.shape[0]))
    ax.set_yticklabels([f"z{d}" for d in range(response.shape[0])], fontsize=7)
    ax.set_title(f"output change as z_d goes from {-span:g} to {span:g} (others 0)", fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_figures(out_dir: str, tm, data, arrays: dict[str, np.ndarray],
                  metrics: dict) -> list[str]:
    """Writes the evaluation's figures into `out_dir`; returns their paths.

    Args:
        out_dir: usually workdir/figures.
        tm: the `inference.TrainedModel` evaluated (its `decode` draws the grids).
        data: the `evaluate.EvalData` evaluated.
        arrays: `evaluate.evaluate_model`'s arrays (codes, recon, pca_recon).
        metrics: its metrics (per-feature errors).
    """
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def out(name: str) -> str:
        written.append(os.path.join(out_dir, name))
        return written[-1]

    codes = arrays["codes"]
    latent = codes.shape[1]
    what = "posterior means" if tm.is_vae else "codes"
    codes_2d(out("codes_2d.png"), codes, data.labels,
             f"{what} of {len(codes)} rows (epoch {tm.epoch})")
    shape = data.image_shape
    if shape is not None and _displayable(shape):
        if latent == 2:
            if tm.is_vae:
                lo, hi = np.full(2, -2.5), np.full(2, 2.5)
            else:
                lo, hi = codes.min(axis=0), codes.max(axis=0)
                hi = np.where(hi > lo, hi, lo + 1.0)  # a collapsed unit still gets an axis
            latent_manifold(out("latent_manifold.png"), tm.decode, lo, hi, shape)
        n = min(_N_SHOW, len(data.x))
        plots.image_grid(out("reconstructions.png"), [data.x[:n], arrays["recon"][:n]],
                         ["original", "reconstruction"], shape)
    elif shape is None:
        per = metrics["recon/mse_per_feature"]
        pca = metrics.get("pca/mse_per_feature")
        recon_per_feature(out("recon_per_feature.png"), data.columns,
                          np.array([per[c] for c in data.columns]),
                          None if pca is None else np.array([pca[c] for c in data.columns]))
        if tm.is_vae:
            traversal(out("traversal.png"), traversal_response(tm.decode, latent), data.columns)
    return written
