"""What each run's figures draw, computed for the K models of a group in batched passes.

Decodings (reconstructions, prior samples, the latent grid, traversals) are computed here with
JAX, so that drawing (`figures.py`) needs nothing but numpy and can run in another process.
"""

import os
from collections.abc import Sequence

import jax
import numpy as np

from ae_jax import models
from ae_jax.data.cells import quote_names
from ae_jax.data.dataset import MISSING_LABEL
from ae_jax.errors import UserError
from ae_jax.evaluation import bounds, passes
from ae_jax.evaluation import figures as figures_lib


def figure_inputs(
    model,
    params,
    data,
    configs: list,
    results: list | None,
    histories: list,
    epoch: int | Sequence[int],
) -> list["figures_lib.FigureInputs"]:
    """The arrays each model's figures draw (decodings computed here, in one batched pass),
    so rendering needs nothing but numpy and can run off the critical path.

    `results` is `evaluate_group`'s output, or None when the run was not evaluated (then only
    learning curves, reconstructions and samples are drawn).
    """
    is_vae = isinstance(model, models.VAE)
    shape = data.image_shape
    show = data.x[: figures_lib.N_SHOW]
    if results is None:
        det = passes.deterministic_many(model, params, show, len(show))
        recon_show = det["out"]
    else:
        recon_show = np.stack([a["recon"][: figures_lib.N_SHOW] for _, a in results])
    latent = configs[0].model.latent_dim
    samples = manifold = traversal = None
    if is_vae:
        z = np.stack(
            [
                np.asarray(
                    jax.random.normal(
                        jax.random.fold_in(jax.random.PRNGKey(c.train.seed), 3),
                        (figures_lib.N_SHOW, latent),
                    )
                )
                for c in configs
            ]
        )
        samples = passes.decode_many(model, params, z)
    lo_hi = None
    if results is not None and shape is not None and figures_lib.displayable(shape) and latent == 2:
        if is_vae:
            lo_hi = [(np.full(2, -2.5), np.full(2, 2.5))] * len(configs)
        else:
            lo_hi = [figures_lib.code_range(a["codes"]) for _, a in results]
        grids = np.stack([figures_lib.latent_grid(lo, hi, figures_lib.GRID) for lo, hi in lo_hi])
        manifold = passes.decode_many(model, params, grids)
    if results is not None and shape is None and is_vae:
        traversal = figures_lib.traversal_response(
            passes.decode_many(model, params, figures_lib.traversal_codes(latent))
        )
    colour_name = configs[0].eval.color_by or data.label_name or "label"
    labels = column_values(data, colour_name) if configs[0].eval.color_by else data.labels
    recon_unit, bounds_are_ll = units(configs[0], data.x)
    # A table's one-hot slot for categories unseen in training, when no evaluated row has one:
    # its bars and cells would only say that an always-0 column is reconstructed as 0.
    keep = np.array(
        [
            not (c.endswith("=<unseen>") and not np.any(data.x[:, j]))
            for j, c in enumerate(data.columns)
        ]
    )
    keep |= shape is not None  # an image's pixels are all drawn
    columns = [c for c, k in zip(data.columns, keep, strict=True) if k]
    image_range, units_of = None, lambda a: a
    if shape is not None:  # images in the data's units: a scaling such as 'standard' undone
        units_of = lambda a: np.asarray(a, np.float64) * data.scale + data.offset  # noqa: E731
        # scale > 0 per feature: the range of each feature's rows, no copy of them all
        lo, hi = units_of(data.x.min(axis=0)), units_of(data.x.max(axis=0))
        image_range = (min(0.0, float(lo.min())), max(1.0, float(hi.max())))
        if data.pixel_max:  # pixels: their intensity range (a dim set was drawn white)
            image_range = (0.0, float(data.pixel_max))
    rows_name = (
        "validation rows"
        if data.source.startswith("validation split")
        else f"rows of {os.path.basename(data.source)}"
    )
    out = []
    for i in range(len(configs)):
        m, a = results[i] if results is not None else ({}, {})
        per, pca = m.get("recon/mse_per_feature"), m.get("pca/mse_per_feature")
        acc = [
            (c, v["accuracy"], v.get("baseline_accuracy", np.nan))
            for c, v in m.get("recon/per_column", {}).items()
            if "accuracy" in v
        ]
        out.append(
            figures_lib.FigureInputs(
                columns=columns,
                image_shape=shape,
                epoch=int(epoch if isinstance(epoch, int) else epoch[i]),
                is_vae=is_vae,
                history=histories[i],
                x_show=units_of(show),
                recon_show=units_of(recon_show[i]),
                samples=None if samples is None else units_of(samples[i])[:, keep],
                codes=a.get("codes"),
                labels=labels,
                manifold=None
                if manifold is None or lo_hi is None
                else (units_of(manifold[i]), *lo_hi[i]),
                mse_per_feature=None if per is None else np.array([per[c] for c in columns]),
                pca_per_feature=None if pca is None else np.array([pca[c] for c in columns]),
                traversal=None if traversal is None else traversal[i][:, keep],
                column_accuracy=tuple(map(list, zip(*acc, strict=True))) if acc else None,
                colour_name=colour_name,
                recon_unit=recon_unit,
                bounds_are_ll=bounds_are_ll,
                kl_weighted=kl_weighted(configs[i]),
                iw_k=int(configs[i].loss.iw_samples_train),
                decoded=DECODED.get(configs[0].loss.recon, "means"),
                image_range=image_range,
                rows_name=rows_name,
                value_units=value_units(configs[0]),
                filled_cells=0 if data.imputed is None else int(data.imputed.sum()),
            )
        )
    return out


def value_units(config) -> str:
    """What a table's values are in, as the figures' axes say: scaled (data.scaling minmax or
    standard), or the data's own (none: a table's raw values, 1e13 said "scaled units")."""
    return "the data's own units" if config.data.scaling == "none" else "scaled units"


def kl_weighted(config) -> bool:
    """Whether training weighted the KL other than by 1 (loss.beta, or a KL warm-up from
    another weight): its importance-weighted objective is then no bound on log p(x)."""
    loss = config.loss
    warmup = float(loss.kl_warmup_epochs) > 0 and float(loss.kl_warmup_start) != float(loss.beta)
    return float(loss.beta) != 1.0 or warmup


# What the decoder outputs where it is not the likelihood's mean (the figures' titles).
DECODED = {"cbernoulli": "λ, not the continuous Bernoulli's mean"}


# What the reconstruction term of each loss.recon is (the learning curves' y labels).
def units(config, x: np.ndarray) -> tuple[str, bool]:
    """What the reconstruction term of `config` is (its unit) and whether the VAE's bounds on
    the rows `x` are bounds on log p(x) (`bounds.likelihood_label`)."""
    return RECON_UNITS[config.loss.recon], bounds.likelihood_label(config, x)["is_log_likelihood"]


RECON_UNITS = {
    "mse": "squared error",
    "bce": "Bernoulli cross-entropy, nats",  # an NLL only of binary data (grey: eval.json)
    "cbernoulli": "continuous-Bernoulli NLL, nats",
    "gaussian": "Gaussian NLL, nats",
    "mixed": "mixed-type NLL, nats",
}


def column_values(data, name: str) -> np.ndarray:
    """The values of table column `name` in the evaluated rows, for colouring plots: category
    names of a categorical column (one-hot or ordinal), "true"/"false", or numbers in the
    column's own units; a cell missing from the file (imputed: data.missing='impute') is
    MISSING_LABEL, or NaN in a numeric column, not the value it was filled with."""
    for i, (col, kind, start, width) in enumerate(data.layout or ()):
        if col != name:
            continue
        x = data.x[:, start : start + width]
        raw = x[:, 0].astype(np.float64) * data.scale[start] + data.offset[start]
        if kind == "boolean":
            values = np.where(x[:, 0] > 0.5, "true", "false").astype(object)
        elif kind == "categorical":
            values = np.asarray(data.categories[name], dtype=object)[np.argmax(x, axis=1)]
        elif kind == "ordinal":
            names = np.asarray(data.categories[name], dtype=object)
            values = names[np.clip(np.rint(raw).astype(int), 0, len(names) - 1)]
        else:
            values = raw
        if data.imputed is not None and data.imputed[:, i].any():
            values = np.where(
                data.imputed[:, i], np.nan if kind == "numeric" else MISSING_LABEL, values
            )
        return values if kind == "numeric" else values.astype(str)
    raise UserError(
        f"eval.color_by {name!r} is not a column of the evaluated table; expected one of "
        f"{quote_names([c for c, *_ in data.layout or ()], 20)} (or '' for the label column)."
    )
