"""Evaluate a trained run: reconstruction against PCA, code statistics, VAE bounds.

`evaluate_workdir(workdir)` loads a run (`ae_jax.load`), rebuilds its validation split (or reads
another file through the saved preprocessor), writes `workdir/eval.json` (flat "/"-separated
keys, JSON-safe numbers) and figures in `workdir/figures/`, and returns the dict.

Keys: n_val, epoch, which, data, figures; recon/mse, recon/mse_per_feature (column -> MSE), with
loss.recon == "bce" also recon/bce, recon/bce_per_feature; pca/mse, pca/mse_per_feature and
ae_over_pca (PCA with latent_dim components fitted on the run's training split; pca/note instead
when that split cannot be rebuilt); code/mean_activation, code/l1_per_row,
code/near_zero_fraction, code/near_zero_threshold, code/unit_mean, code/unit_std,
code/dead_units, code/dead_unit_count; for a VAE vae/elbo, vae/recon, vae/kl, vae/kl_per_dim,
vae/active_units, vae/active_var and vae/iwae_k, vae/iwae (vae/iwae_note instead for
loss.recon == "mse", which has no likelihood).

Conventions are those of training (see `losses.py`): per-example terms are summed over features
(or latent dimensions) and averaged over rows, in nats for likelihoods; only `recon/mse` (and
`pca/mse`) is the per-element mean, so it equals the training log's `eval/mse`.

The heavy parts are jitted and mapped over batches of rows (`_map_rows`: a `lax.map` of vmapped
batches), so memory is bounded by rows * k * D floats for the importance-weighted bound. Each
row draws its samples from `fold_in(rng, row_index)`, so no number depends on the batch size.
"""

import dataclasses
import functools
import hashlib
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.decomposition import PCA

from ae_jax import data as data_lib
from ae_jax import eval_plots, inference, losses, models, objective, train
from ae_jax.errors import UserError

EVAL_FILE = "eval.json"


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
        note: why `x_train` is None, if it is.
    """

    x: np.ndarray
    labels: np.ndarray | None
    x_train: np.ndarray | None
    columns: list[str]
    image_shape: tuple[int, ...] | None
    source: str
    note: str = ""


# ---- data ----------------------------------------------------------------------------------


def _preprocessor_difference(a: data_lib.Preprocessor, b: data_lib.Preprocessor) -> str:
    """'' when a and b transform rows alike, else the name of the first field that differs."""
    da, db = a.to_dict(), b.to_dict()
    for key in sorted(da.keys() | db.keys()):
        if key in ("offset", "scale"):
            va, vb = np.asarray(da.get(key)), np.asarray(db.get(key))
            # The JSON round trip of a float64 is exact; the tolerance only forgives last ulps.
            if va.shape != vb.shape or not np.allclose(va, vb, rtol=1e-9, atol=0.0):
                return key
        elif da.get(key) != db.get(key):
            return key
    return ""


def _run_dataset(tm: inference.TrainedModel) -> data_lib.Dataset:
    """The run's own data, split and preprocessed again; refuses data that changed since."""
    source = tm.config.data.path or f"bundled data set {tm.config.data.name!r}"
    try:
        ds = data_lib.load_dataset(tm.config.data)
    except UserError as e:
        raise UserError(f"cannot rebuild the validation split of {tm.workdir!r} from its data "
                        f"({source}): {e}. Pass --data=FILE to evaluate on rows of another file "
                        "with the run's saved preprocessing.") from None
    differs = _preprocessor_difference(ds.preprocessor, tm.preprocessor)
    if differs:
        raise UserError(
            f"the data of {tm.workdir!r} ({source}) changed since training: preprocessing fitted "
            f"on it now differs from the saved preprocessor.json in {differs!r}, so the "
            "validation split cannot be rebuilt. Pass --data=FILE to evaluate on a file "
            "transformed with the saved preprocessing.")
    return ds


def evaluation_data(tm: inference.TrainedModel, data_path: str = "",
                    dataset: data_lib.Dataset | None = None) -> EvalData:
    """The validation split of the run (no `data_path`), or every row of `data_path`.

    A file's rows go through the SAVED preprocessor (its column mismatches raise UserError).
    The PCA baseline always fits the run's training split; with `data_path` it is skipped
    (and `note` says why) if that split cannot be rebuilt.
    """
    shape = tm.dataset_info.get("image_shape")
    shape = tuple(shape) if shape and math.prod(shape) == tm.num_features else None
    columns = list(tm.preprocessor.columns)
    if not data_path:
        # Training passes the Dataset it holds: no second read, split and fit of the data.
        ds = dataset if dataset is not None else _run_dataset(tm)
        return EvalData(ds.val, ds.labels_val, ds.train, columns, shape,
                        f"validation split of {ds.name}")
    c = tm.config.data
    table = data_lib.read_table(data_path, c.npz_key, label_column=c.label_column, field="--data")
    x = tm.preprocessor.transform(table)
    label = c.label_column or table.default_label
    # The same conversion as training, so label colours match the training plots.
    labels = data_lib.as_labels(table.column(label)) if label in table.columns else None
    try:
        x_train, note = _run_dataset(tm).train, ""
    except UserError as e:
        x_train, note = None, f"no PCA baseline: {e}"
    return EvalData(x, labels, x_train, columns, shape, data_path, note)


# ---- pure numpy statistics -----------------------------------------------------------------


def mse_per_feature(x_hat: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, D), (N, D) -> (D,) mean over rows of the squared error, in float64."""
    return np.mean(np.square(np.asarray(x_hat, np.float64) - np.asarray(x, np.float64)), axis=0)


def bce_per_feature(logits: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, D) logits, (N, D) targets in [0, 1] -> (D,) mean over rows of the Bernoulli NLL.

    Their sum is the per-example BCE summed over features, averaged over rows (`recon/bce`).
    """
    z, x = np.asarray(logits, np.float64), np.asarray(x, np.float64)
    # max(z, 0) - z x + log(1 + exp(-|z|)): finite for every logit.
    return np.mean(np.maximum(z, 0.0) - z * x + np.log1p(np.exp(-np.abs(z))), axis=0)


_PCA_CACHE: dict[tuple, PCA] = {}


def pca_reconstruction(x_train: np.ndarray, x: np.ndarray, n_components: int) -> np.ndarray:
    """Fits PCA(n_components) on x_train (M, D); returns the reconstruction of x (N, D).

    Fits are cached by the training rows' bytes and k: every run of a sweep on the same
    data and code size shares one baseline.
    """
    k = max(1, min(n_components, x_train.shape[1], x_train.shape[0]))
    x_train = np.ascontiguousarray(x_train, np.float64)
    key = (x_train.shape, hashlib.sha1(x_train.tobytes()).hexdigest(), k)
    if key not in _PCA_CACHE:
        _PCA_CACHE[key] = PCA(n_components=k).fit(x_train)
        while len(_PCA_CACHE) > 8:
            _PCA_CACHE.pop(next(iter(_PCA_CACHE)))
    pca = _PCA_CACHE[key]
    return pca.inverse_transform(pca.transform(np.asarray(x, np.float64)))


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


def active_units(mean: np.ndarray, threshold: float) -> int:
    """Units u with Var_x(E_q[z_u | x]) > threshold (Burda et al. 2016); mean is (N, L)."""
    return int(np.sum(np.var(np.asarray(mean, np.float64), axis=0) > threshold))


# ---- jitted model passes -------------------------------------------------------------------


# Linen `method=`s: the encoder's raw output ((mean, logvar) for a VAE), the decoder's logits.
_encoder = lambda module, x: module.encoder(x)
_decoder = lambda module, z: module.decoder(z)


def _rows(n: int, rows_per_batch: int) -> int:
    if not isinstance(rows_per_batch, int) or rows_per_batch < 1:
        raise UserError(f"rows_per_batch: got {rows_per_batch!r}; expected a positive integer.")
    return max(1, min(rows_per_batch, n))


def _map_rows(fn, xs: tuple, rows_per_batch: int):
    """fn mapped over the leading (row) axis of the arrays xs, `rows_per_batch` rows at a time.

    Rows are padded to whole batches and each batch is one vmapped call inside a `lax.map`: one
    compiled copy of the body (`lax.map(batch_size=)` compiles a second for the remainder), and
    memory for one batch only. Returns fn's outputs stacked over the N real rows.
    """
    n, b = xs[0].shape[0], rows_per_batch
    nb = -(-n // b)
    padded = tuple(jnp.pad(a, [(0, nb * b - n)] + [(0, 0)] * (a.ndim - 1)).reshape(
        nb, b, *a.shape[1:]) for a in xs)
    out = jax.lax.map(lambda batch: jax.vmap(fn)(*batch), padded)
    return jax.tree.map(lambda o: o.reshape(nb * b, *o.shape[2:])[:n], out)


@functools.partial(jax.jit, static_argnames=("model", "rows_per_batch"))
def _deterministic(model, params, x, rows_per_batch):
    variables = {"params": params}

    def one(xr):  # (D,) -> the row's code, reconstruction and (VAE) posterior
        res = {}
        if isinstance(model, models.VAE):
            code, res["logvar"] = model.apply(variables, xr, method=_encoder)
        else:
            code = model.apply(variables, xr, method=_encoder)
        logits = model.apply(variables, code, method=_decoder)
        res.update(code=code, logits=logits,
                   out=models.ACTIVATIONS[model.output_activation](logits))
        return res

    return _map_rows(one, (x,), rows_per_batch)


def deterministic_pass(model, params, x: np.ndarray, rows_per_batch: int = 4096) -> dict:
    """The deterministic reconstruction decode(encode(x)) of x (N, D), as numpy arrays.

    Returns:
        {"code": (N, L) the AE's code or the VAE's posterior mean, "logits": (N, D) decoder
        pre-activations, "out": (N, D) reconstructions, and for a VAE "logvar": (N, L)}.
    """
    x = jnp.asarray(x, jnp.float32)
    out = _deterministic(model, params, x, _rows(x.shape[0], rows_per_batch))
    return {k: np.asarray(v) for k, v in out.items()}


def _posterior_samples(model, params, xr, key, k, recon_kind, obs_std):
    """For one row xr (D,): k draws z ~ q(z|x); returns (-log p(x|z), log p(z), log q(z|x),
    KL(q || p)), the first three of shape (k,)."""
    variables = {"params": params}
    mean, logvar = model.apply(variables, xr, method=_encoder)  # (L,) each
    eps = jax.random.normal(key, (k, mean.shape[-1]), mean.dtype)
    z = mean[None] + jnp.exp(0.5 * logvar)[None] * eps  # (k, L)
    logits = model.apply(variables, z, method=_decoder)  # (k, D)
    out = {"logits": logits, "out": models.ACTIVATIONS[model.output_activation](logits)}
    nll = objective.reconstruction(recon_kind, out, jnp.broadcast_to(xr[None], logits.shape),
                                   obs_std)
    log_pz = losses.gaussian_log_prob(z, jnp.zeros_like(z), jnp.zeros_like(z))
    log_qz = losses.gaussian_log_prob(z, mean[None], logvar[None])
    return nll, log_pz, log_qz, losses.kl_normal(mean, logvar)


@functools.partial(jax.jit, static_argnames=("model", "k", "recon_kind", "obs_std",
                                             "rows_per_batch"))
def _sampled(model, params, x, rng, k, recon_kind, obs_std, rows_per_batch):
    """Per row of x (N, D): (IWAE bound with k samples, -log p(x|z_1), KL(q || p)), each (N,)."""

    def one(xr, i):
        key = jax.random.fold_in(rng, i)  # per row: results do not depend on the batching
        nll, log_pz, log_qz, kl = _posterior_samples(model, params, xr, key, k, recon_kind,
                                                     obs_std)
        return jax.nn.logsumexp(-nll + log_pz - log_qz) - math.log(k), nll[0], kl

    return _map_rows(one, (x, jnp.arange(x.shape[0], dtype=jnp.uint32)), rows_per_batch)


def _check_vae(model, recon_kind: str, what: str) -> None:
    if not isinstance(model, models.VAE):
        raise UserError(f"{what} needs a VAE; this model is a deterministic autoencoder.")
    if recon_kind not in ("mse", "bce", "gaussian"):
        raise UserError(f"recon_kind: got {recon_kind!r}; expected 'mse', 'bce' or 'gaussian'.")


def elbo_terms(model, params, x: np.ndarray, rng: jax.Array, recon_kind: str, obs_std: float,
               rows_per_batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-row terms of the negative ELBO of a `VAE` on x (N, D), one posterior sample per row
    (row i samples with fold_in(rng, i)); recon_kind and obs_std are the run's loss.recon and
    loss.obs_std.

    Returns:
        recon (N,) = -log p(x|z) (for 'mse' the squared error), kl (N,) = KL(q(z|x) || N(0, I));
        the ELBO of row i is -(recon[i] + kl[i]) nats.
    """
    _check_vae(model, recon_kind, "the ELBO")
    x = jnp.asarray(x, jnp.float32)
    _, recon, kl = _sampled(model, params, x, rng, 1, recon_kind, float(obs_std),
                            _rows(x.shape[0], rows_per_batch))
    return np.asarray(recon, np.float64), np.asarray(kl, np.float64)


def iwae_bound(model, params, x: np.ndarray, k: int, rng: jax.Array, recon_kind: str,
               obs_std: float, rows_per_batch: int = 64) -> np.ndarray:
    """Importance-weighted lower bound on log p(x) (Burda et al. 2016), per row, in nats.

    For row x: logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k with
    z_1..z_k ~ q(z|x). k = 1 is an unbiased estimate of the ELBO; the bound's expectation grows
    with k towards log p(x). Memory: rows_per_batch * k * D floats at once.

    Args:
        model, params: a `VAE` and its parameters; x: (N, D) features; k: samples per row.
        rng: key; row i samples with fold_in(rng, i).
        recon_kind: 'bce' (Bernoulli from logits) or 'gaussian' (std `obs_std`); 'mse' defines
            no likelihood and raises UserError.
        rows_per_batch: rows per mapped batch.

    Returns:
        (N,) float64 estimates; their mean is the reported `vae/iwae`.
    """
    _check_vae(model, recon_kind, "the importance-weighted bound")
    if recon_kind == "mse":
        raise UserError("the importance-weighted bound needs a likelihood p(x|z); loss.recon="
                        "'mse' has none. Use a run trained with 'bce' or 'gaussian'.")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise UserError(f"iw_samples: got {k!r}; expected a positive integer.")
    x = jnp.asarray(x, jnp.float32)
    bound, _, _ = _sampled(model, params, x, rng, k, recon_kind, float(obs_std),
                           _rows(x.shape[0], rows_per_batch))
    return np.asarray(bound, np.float64)


# ---- the evaluation ------------------------------------------------------------------------


def _per_feature(columns: list[str], values: np.ndarray) -> dict[str, float]:
    return {c: float(v) for c, v in zip(columns, values, strict=True)}


def evaluate_model(tm: inference.TrainedModel, data: EvalData, iw_samples: int | None = None,
                   seed: int = 0) -> tuple[dict, dict[str, np.ndarray]]:
    """Every eval.json number for `tm` on `data`; no files written.

    Returns:
        (metrics, arrays): metrics as in eval.json (before JSON cleaning); arrays holds
        "codes" (N, L) (the codes `tm.encode` gives these rows), "recon" (N, D), and, when
        computed, "pca_recon" (N, D), "logvar" (N, L).
    """
    cfg = tm.config
    det = deterministic_pass(tm.model, tm.params, data.x, cfg.train.eval_batch_size)
    per = mse_per_feature(det["out"], data.x)
    m: dict = {"n_val": int(data.x.shape[0]), "epoch": int(tm.epoch), "data": data.source,
               "recon/mse": float(np.mean(per)),
               "recon/mse_per_feature": _per_feature(data.columns, per)}
    arrays = {"codes": det["code"], "recon": det["out"]}
    if cfg.loss.recon == "bce":
        bce = bce_per_feature(det["logits"], data.x)
        m["recon/bce"] = float(np.sum(bce))
        m["recon/bce_per_feature"] = _per_feature(data.columns, bce)
    if data.x_train is not None:
        arrays["pca_recon"] = pca_reconstruction(data.x_train, data.x, cfg.model.latent_dim)
        pca = mse_per_feature(arrays["pca_recon"], data.x)
        m["pca/mse"] = float(np.mean(pca))
        m["pca/mse_per_feature"] = _per_feature(data.columns, pca)
        m["ae_over_pca"] = m["recon/mse"] / m["pca/mse"] if m["pca/mse"] > 0 else None
    else:
        m["pca/note"] = data.note
    m.update(code_statistics(det["code"], float(cfg.eval.near_zero)))
    if tm.is_vae:
        m.update(_vae_metrics(tm, data.x, det, iw_samples, seed))
        arrays["logvar"] = det["logvar"]
    return m, arrays


def _vae_metrics(tm, x: np.ndarray, det: dict, iw_samples: int | None, seed: int) -> dict:
    """The `vae/` keys. One pass draws k posterior samples per row: the first is the ELBO's
    single sample, all k make the importance-weighted bound (one compiled program, not two)."""
    cfg = tm.config
    kind, obs_std = cfg.loss.recon, float(cfg.loss.obs_std)
    k = cfg.eval.iw_samples if iw_samples is None else iw_samples
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise UserError(f"iw_samples: got {k!r}; expected a positive integer.")
    if kind == "mse":
        k = 1  # No likelihood, no bound: one sample for the ELBO-like objective.
    rng = jax.random.PRNGKey(seed)
    bound, recon, _ = _sampled(tm.model, tm.params, jnp.asarray(x, jnp.float32), rng, k, kind,
                               obs_std, _rows(x.shape[0], cfg.eval.iw_batch_rows))
    recon = float(np.mean(np.asarray(recon, np.float64)))
    kl_dims = kl_per_dim(det["code"], det["logvar"])
    kl = float(np.sum(kl_dims))
    m = {"vae/elbo": -(recon + kl), "vae/recon": recon, "vae/kl": kl,
         "vae/kl_per_dim": kl_dims.tolist(),
         "vae/active_units": active_units(det["code"], float(cfg.eval.active_var)),
         "vae/active_var": float(cfg.eval.active_var)}
    if kind == "mse":
        m["vae/iwae_note"] = (
            "loss.recon is 'mse': a squared error defines no likelihood p(x|z), so no "
            "importance-weighted bound is reported and vae/elbo is -(squared error + kl), not a "
            "bound on log p(x); train with loss.recon='bce' or 'gaussian' for one.")
    else:
        m.update({"vae/iwae_k": int(k), "vae/iwae": float(np.mean(np.asarray(bound)))})
    return m


def _json_safe(value):
    """NaN and infinities become None (strict JSON has no such numbers); numpy -> Python."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_workdir(workdir: str) -> None:
    """Points a parent of K seed runs (DIR/seed=S/) at its runs instead of a bare refusal."""
    if not os.path.isdir(workdir) or os.path.exists(os.path.join(workdir, "config.json")):
        return  # inference.load_config words the other cases.
    runs = sorted(d for d in os.listdir(workdir)
                  if os.path.exists(os.path.join(workdir, d, "config.json")))
    if runs:
        raise UserError(f"workdir {workdir!r} holds several runs, not one: "
                        f"{runs[:6]}{' ...' if len(runs) > 6 else ''}; evaluate each of them "
                        f"(e.g. --workdir={os.path.join(workdir, runs[0])}).")


def evaluate_workdir(workdir: str, data_path: str = "", which: str = "latest",
                     iw_samples: int | None = None, seed: int = 0,
                     dataset: data_lib.Dataset | None = None, figures: bool = True) -> dict:
    """Evaluates the run in `workdir`; writes eval.json and figures/; returns the metrics.

    Args:
        workdir: a run directory (config.json, preprocessor.json, checkpoints/).
        data_path: "" for the run's validation split; else a file whose rows (all of them)
            are transformed with the saved preprocessor.
        which: the checkpoint, "latest" or "best" (lowest eval/loss).
        iw_samples: k of the VAE's importance-weighted bound (None: config eval.iw_samples).
        seed: seeds the VAE's posterior samples.
        dataset: the run's Dataset when the caller holds it (training does), else rebuilt.
        figures: also write the evaluation figures.

    Returns:
        The eval.json dict (flat "/"-separated keys, listed in the module docstring).
    """
    if iw_samples is not None and (not isinstance(iw_samples, int) or iw_samples < 1):
        raise UserError(f"iw_samples: got {iw_samples!r}; expected a positive integer.")
    _check_workdir(workdir)
    tm = inference.load(workdir, which)
    data = evaluation_data(tm, data_path, dataset)
    metrics, arrays = evaluate_model(tm, data, iw_samples, seed)
    metrics["which"] = which
    try:
        written = eval_plots.write_figures(os.path.join(workdir, "figures"), tm, data, arrays,
                                           metrics) if figures else []
        metrics["figures"] = [os.path.relpath(f, workdir) for f in written]
        metrics = _json_safe(metrics)
        train.write_json(os.path.join(workdir, EVAL_FILE), metrics)
    except OSError as e:
        raise UserError(f"cannot write the evaluation into {workdir!r}: {e.strerror} "
                        f"({e.filename}); make the workdir writable.") from None
    return metrics
