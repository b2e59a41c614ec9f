"""The jitted model passes of an evaluation, batched over the K models of a group.

Every function takes parameters stacked on a leading model axis (K, ...) and returns arrays with
that axis first: one compiled program evaluates all models of a group. Rows are mapped in
batches (`_map_rows`: a `lax.map` of vmapped batches), so memory is bounded by
K * rows_per_batch * (D or k * D) floats; the K axis is cut into chunks on the host when all K
models at once would need more (`_model_chunks`). Each row draws its posterior samples from
`fold_in(rng, row_index)`, so no number depends on the batch size or on K.

`deterministic_pass`, `elbo_terms` and `iwae_bound` are the single-model forms (K = 1).
"""

import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from ae_jax import models
from ae_jax.errors import UserError
from ae_jax.training import losses, objective, vae_terms

# Floats one chunk of models may hold at once (per row batch and in its outputs): 256 MiB.
_FLOAT_BUDGET = 1 << 26
# Linen `method=`s: the encoder's raw output ((mean, logvar) for a VAE), the decoder's logits.
_encoder = lambda module, x: module.encoder(x)
_decoder = lambda module, z: module.decoder(z)


def rows_per_batch(n: int, rows: int) -> int:
    if not isinstance(rows, int) or rows < 1:
        raise UserError(f"rows_per_batch: got {rows!r}; expected a positive integer.")
    return max(1, min(rows, n))


def _map_rows(fn, xs: tuple, rows: int):
    """fn mapped over the leading (row) axis of the arrays xs, `rows` rows at a time.

    Rows are padded to whole batches and each batch is one vmapped call inside a `lax.map`: one
    compiled copy of the body and memory for one batch only. Returns fn's outputs stacked over
    the N real rows.
    """
    n = xs[0].shape[0]
    nb = -(-n // rows)
    padded = tuple(
        jnp.pad(a, [(0, nb * rows - n)] + [(0, 0)] * (a.ndim - 1)).reshape(nb, rows, *a.shape[1:])
        for a in xs
    )
    out = jax.lax.map(lambda batch: jax.vmap(fn)(*batch), padded)
    return jax.tree.map(lambda o: o.reshape(nb * rows, *o.shape[2:])[:n], out)


def on_device(x) -> jax.Array:
    """x as a float32 device array. Host data is moved with `jax.device_put`: `jnp.asarray`
    of a numpy array runs a small device program, compiled (or loaded from the cache) once per
    shape, ~5 ms each of a warm run and tens of a cold one."""
    if isinstance(x, jax.Array):
        return x if x.dtype == jnp.float32 else x.astype(jnp.float32)
    return jax.device_put(np.asarray(x, np.float32))


def _chunk_size(k: int, per_model_floats: int) -> int:
    return max(1, min(k, _FLOAT_BUDGET // max(per_model_floats, 1)))


def _n_chunks(params, per_model_floats: int) -> int:
    """How many chunks `_model_chunks` cuts the K models of `params` into."""
    k = jax.tree.leaves(params)[0].shape[0]
    return -(-k // _chunk_size(k, per_model_floats))


def _model_chunks(params, per_model_floats: int, fn: Callable, stop: Callable | None = None):
    """fn(params of a chunk of models) for chunks of the K axis, outputs concatenated (numpy).

    Every chunk has the same size (the last is padded by repeating model 0), so one program
    serves them all. `stop()` is called between chunks (it may raise to stop cleanly).
    """
    k = jax.tree.leaves(params)[0].shape[0]
    size = _chunk_size(k, per_model_floats)
    n_chunks = -(-k // size)
    index = np.concatenate([np.arange(k), np.zeros(n_chunks * size - k, np.int64)])
    outs = []
    for c in range(n_chunks):
        if stop is not None and c:
            stop()
        sel = index[c * size : (c + 1) * size]
        out = fn(jax.tree.map(lambda a, sel=sel: jax.device_put(np.asarray(a)[sel]), params))
        outs.append(jax.tree.map(np.asarray, out))
    return jax.tree.map(lambda *a: np.concatenate(a)[:k], *outs)


@functools.partial(jax.jit, static_argnames=("model", "rows"))
def _deterministic(model, params, x, rows):
    def for_model(p):
        variables = {"params": p}

        def one(xr):  # (D,) -> the row's code, reconstruction and (VAE) posterior
            res = {}
            if isinstance(model, models.VAE):
                code, res["logvar"] = model.apply(variables, xr, method=_encoder)
            else:
                code = model.apply(variables, xr, method=_encoder)
            logits = model.apply(variables, code, method=_decoder)
            res.update(code=code, logits=logits, out=models.output_mean(model, logits))
            return res

        return _map_rows(one, (x,), rows)

    return jax.vmap(for_model)(params)


def deterministic_many(
    model, params, x: np.ndarray | jax.Array, rows: int = 4096, stop=None
) -> dict:
    """decode(encode(x)) of x (N, D) by each of K models (params stacked on a K axis).

    Returns {"code": (K, N, L) the AE's code or the VAE's posterior mean, "logits": (K, N, D)
    decoder pre-activations, "out": (K, N, D) reconstructions, for a VAE "logvar": (K, N, L)}.
    """
    x = on_device(x)
    r = rows_per_batch(x.shape[0], rows)
    floats = x.shape[0] * (3 * x.shape[1] + 2 * 64) + r * x.shape[1]
    return _model_chunks(params, floats, lambda p: _deterministic(model, p, x, r), stop)


def deterministic_pass(model, params, x: np.ndarray, rows_per_batch: int = 4096) -> dict:
    """`deterministic_many` for one model (params without a K axis), as numpy arrays."""
    out = deterministic_many(model, jax.tree.map(lambda a: a[None], params), x, rows_per_batch)
    return {k: v[0] for k, v in out.items()}


def row_samples(model, params, xr, eps, recon_kind, obs_std) -> dict:
    """For one row xr (D,) and k standard-normal draws eps (k, L): "bound" (the IWAE bound with
    those k posterior samples), "nll_mean" (-log p(x|z_j) averaged over the same k draws), "kl"
    (KL(q || p), exact) and the Monte Carlo variance of each estimate over the draws (k >= 2;
    NaN for k = 1): "nll_mean_var" = the draws' sample variance / k, and "bound_var" = the
    delta-method variance of the log of a mean of k weights, Var(w) / (k E[w]^2), estimated as
    (k sum w^2 / (sum w)^2 - 1) / (k - 1) = (k / ESS - 1) / (k - 1). Training's IWAE objective
    (`objective.iw_pass`) computes the same bound from the same function."""
    out = objective.iw_pass(model, params, xr, xr, eps, recon_kind, obs_std)
    log_w = out["log_w"]
    k = log_w.shape[-1]
    # sum w^2 / (sum w)^2 from weights relative to the largest, each in (0, 1]: of log-weights
    # of -2000 the squares' sum would lose the variance to rounding (or go negative).
    rel = log_w - jnp.max(log_w, axis=-1, keepdims=True)
    lse2 = jax.nn.logsumexp(2.0 * rel, axis=-1)
    inverse_ess = jnp.exp(lse2 - 2.0 * jax.nn.logsumexp(rel, axis=-1))
    return {
        "bound": vae_terms.iw_bound(log_w),
        "nll_mean": out["nll_mean"],
        "kl": losses.kl_normal(out["mean"], out["logvar"]),
        "nll_mean_var": jnp.var(out["nll_draws"], axis=-1, ddof=1) / k if k > 1 else jnp.nan,
        "bound_var": jnp.maximum(k * inverse_ess - 1.0, 0.0) / (k - 1) if k > 1 else jnp.nan,
    }


@functools.partial(jax.jit, static_argnames=("model", "k", "recon_kind", "obs_std", "rows"))
def _sampled(model, params, x, first, rng, k, recon_kind, obs_std, rows):
    """Per model and row of x (N, D), the rows first, first + 1, ... of the evaluated set:
    `row_samples`' dict, each value (K, N)."""

    def for_model(p):
        def one(xr, i):
            key = jax.random.fold_in(rng, i)  # per row: results do not depend on the batching
            eps = jax.random.normal(key, (k, model.encoder.latent_dim), jnp.float32)
            return row_samples(model, p, xr, eps, recon_kind, obs_std)

        rows_index = first + jnp.arange(x.shape[0], dtype=jnp.uint32)
        return _map_rows(one, (x, rows_index), rows)

    return jax.vmap(for_model)(params)


# Row-samples (rows x k) one call of the sampled pass computes: between calls a stop request is
# acted on and progress said (a 2,000,000-row table's k = 1000 bound was one 184 s call).
_SAMPLES_PER_CALL = 1 << 19


def rows_per_call(n: int, rows: int, k: int) -> int:
    """Rows of one call of the sampled pass: whole batches of `rows`, ~_SAMPLES_PER_CALL
    row-samples (all n rows when they are fewer: one call, as small sets always were)."""
    r = rows_per_batch(n, rows)
    return min(-(-n // r) * r, r * max(1, _SAMPLES_PER_CALL // (r * k)))


def sampled_many(
    model,
    params,
    x: np.ndarray | jax.Array,
    rng: jax.Array,
    k: int,
    recon_kind: str,
    obs_std: float,
    rows: int = 64,
    stop=None,
    log_seconds: float | None = None,
):
    """Per model (K) and row, each (K, N): `row_samples`' "bound" (the k-sample IWAE bound),
    "nll_mean" (the mean of -log p(x|z_j) over the same k posterior samples: the ELBO's
    reconstruction term), "kl", and the Monte Carlo variances "bound_var" and "nll_mean_var".

    Many rows are computed in calls of `rows_per_call` rows (the last padded, so one program
    serves all): `stop()` is called between calls, and with `log_seconds` a line says the
    progress at most that often."""
    _check_vae(model, recon_kind, "the ELBO")
    kind, std = recon_kind, float(obs_std)
    x = np.asarray(x, np.float32)
    n = x.shape[0]
    r = rows_per_batch(n, rows)
    per_call = rows_per_call(n, rows, k)
    n_calls = -(-n // per_call)
    if n_calls > 1:
        x = np.concatenate([x, np.zeros((n_calls * per_call - n, x.shape[1]), np.float32)])
    floats = sampled_floats(per_call, x.shape[1], k, rows)
    total = n_calls * _n_chunks(params, floats)  # calls in all
    clock = {"start": time.perf_counter(), "said": time.perf_counter(), "calls": 0}

    def for_models(p):
        outs = []
        for c in range(n_calls):
            if stop is not None and c:
                stop()
            part = jax.device_put(x[c * per_call : (c + 1) * per_call])
            out = _sampled(model, p, part, np.uint32(c * per_call), rng, k, kind, std, r)
            outs.append(jax.tree.map(np.asarray, out))
            clock["calls"] += 1
            now, done = time.perf_counter(), clock["calls"]
            if log_seconds is not None and now - clock["said"] >= log_seconds and done < total:
                clock["said"] = now
                took = now - clock["start"]
                logging.info(
                    "evaluating: the %d-sample bound on %s row(s) x %d model(s), %d%% after "
                    "%.0f s, about %.0f s left",
                    k,
                    f"{n:,}",
                    jax.tree.leaves(params)[0].shape[0],
                    100 * done // total,
                    took,
                    took * (total - done) / done,
                )
        return jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, :n], *outs)

    return _model_chunks(params, floats, for_models, stop)


def end_floats(config, n: int, d: int) -> int:
    """Floats one model's largest pass of the end-of-run evaluation holds (`evaluate_group`),
    on n rows of d features: a VAE's k-sample bound (one sample under MSE); 0 for an
    autoencoder's, which are batches of rows alone, or without an evaluation at the end."""
    if config.model.name != "vae" or not config.eval.at_end:
        return 0
    k = 1 if config.loss.recon == "mse" else int(config.eval.iw_samples)
    return sampled_floats(n, d, k, int(config.eval.iw_batch_rows))


def sampled_floats(n: int, d: int, k: int, rows: int) -> int:
    """Floats one model's `sampled_many` holds at once on n rows of d features: its outputs,
    and a batch of `rows` rows x k samples of the decoder's output (and the layers before it,
    counted as 64 more)."""
    return 5 * n + rows_per_batch(n, rows) * k * (d + 64)


def _check_vae(model, recon_kind: str, what: str) -> None:
    if not isinstance(model, models.VAE):
        raise UserError(f"{what} needs a VAE; this model is a deterministic autoencoder.")
    if recon_kind not in ("mse", "bce", "gaussian", "cbernoulli", "mixed"):
        raise UserError(
            f"recon_kind: got {recon_kind!r}; expected 'mse', 'bce', 'gaussian', "
            "'cbernoulli' or 'mixed'."
        )


def elbo_terms(
    model,
    params,
    x: np.ndarray,
    rng: jax.Array,
    recon_kind: str,
    obs_std: float,
    rows_per_batch: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row terms of the negative ELBO of a `VAE` on x (N, D), one posterior sample per row
    (row i samples with fold_in(rng, i)); recon_kind and obs_std are the run's loss.recon and
    loss.obs_std.

    Returns:
        recon (N,) = -log p(x|z) (for 'mse' the squared error), kl (N,) = KL(q(z|x) || N(0, I));
        the ELBO of row i is -(recon[i] + kl[i]) nats.
    """
    one = jax.tree.map(lambda a: a[None], params)
    out = sampled_many(model, one, x, rng, 1, recon_kind, obs_std, rows_per_batch)
    return np.asarray(out["nll_mean"][0], np.float64), np.asarray(out["kl"][0], np.float64)


def iwae_bound(
    model,
    params,
    x: np.ndarray,
    k: int,
    rng: jax.Array,
    recon_kind: str,
    obs_std: float,
    rows_per_batch: int = 64,
) -> np.ndarray:
    """Importance-weighted lower bound on log p(x) (Burda et al. 2016), per row, in nats.

    For row x: logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k with
    z_1..z_k ~ q(z|x). k = 1 is an unbiased estimate of the ELBO; the bound's expectation grows
    with k towards log p(x). Memory: rows_per_batch * k * D floats at once.

    Args:
        model, params: a `VAE` and its parameters; x: (N, D) features; k: samples per row.
        rng: key; row i samples with fold_in(rng, i).
        recon_kind: 'bce' (Bernoulli from logits), 'cbernoulli' (continuous Bernoulli),
            'gaussian' (std `obs_std`, or the model's learned one) or 'mixed' (per column of a
            table); 'mse' defines no likelihood and raises UserError.
        rows_per_batch: rows per mapped batch.

    Returns:
        (N,) float64 estimates; their mean is the reported `vae/iwae`.
    """
    _check_vae(model, recon_kind, "the importance-weighted bound")
    if recon_kind == "mse":
        raise UserError(
            "the importance-weighted bound needs a likelihood p(x|z); loss.recon="
            "'mse' has none. Use a run trained with 'bce' or 'gaussian'."
        )
    check_iw_samples(k)
    one = jax.tree.map(lambda a: a[None], params)
    out = sampled_many(model, one, x, rng, k, recon_kind, obs_std, rows_per_batch)
    return np.asarray(out["bound"][0], np.float64)


def check_iw_samples(k) -> int:  # (np.int64(5): the int 5 it holds)
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise UserError(f"iw_samples: got {k!r}; expected a positive integer.")
    return int(k)


@functools.partial(jax.jit, static_argnames=("model",))
def _decode(model, params, z):
    decode = lambda p, zi: model.apply({"params": p}, zi, method="decode")
    return jax.vmap(decode)(params, z)


def decode_many(model, params, z: np.ndarray) -> np.ndarray:
    """Decodings (K, n, D) of codes z, shared (n, L) or per model (K, n, L), in float32."""
    k = jax.tree.leaves(params)[0].shape[0]
    z = np.asarray(z, np.float32)
    if z.ndim == 2:
        z = np.broadcast_to(z, (k, *z.shape))
    return np.asarray(_decode(model, params, jnp.asarray(z)), np.float32)


# Rows of the validation set the aggregate posterior's decomposition uses (memory and time grow
# with their square); larger sets use their first rows. Posterior draws per row: enough for
# AGGREGATE_DRAWS_TIMES_ROWS draws in all (the estimate's Monte Carlo error shrinks with them;
# on 120 rows one draw each left dim_kl 0.03 nats sd), between 4 (a standard error from fewer
# draws would be a guess) and 32.
AGGREGATE_ROWS = 4096
AGGREGATE_DRAWS_TIMES_ROWS, AGGREGATE_MAX_DRAWS = 8192, 32


@jax.jit
def _aggregate(mean, logvar, keys):
    def one(key):
        eps = jax.random.normal(key, mean.shape, jnp.float32)
        z = mean + jnp.exp(0.5 * logvar) * eps
        return vae_terms.aggregate_decomposition(z, mean, logvar)

    return jax.lax.map(one, keys)  # one draw at a time: memory stays that of one


def aggregate_kl_terms(means: np.ndarray, logvars: np.ndarray, rng: jax.Array) -> list[dict]:
    """Per model: total correlation, index-code MI and dimension-wise KL of the aggregate
    posterior over (up to `AGGREGATE_ROWS`) rows, averaged over S posterior draws per row from
    `rng` (the same draws for every model), with each term's Monte Carlo standard error over
    the draws (sd / sqrt(S): what another `rng` would move it by; no part of a spread over
    seeds, which all share the draws).

    means, logvars: (K, N, L) posterior parameters. Returns K dicts of floats (nats), keyed
    by their eval.json names, with vae/aggregate_rows N and vae/aggregate_draws S.
    """
    names = {"tc": "vae/total_correlation", "mi": "vae/mutual_info", "dim_kl": "vae/dim_kl"}
    n = min(means.shape[1], AGGREGATE_ROWS)
    s = int(np.clip(-(-AGGREGATE_DRAWS_TIMES_ROWS // max(n, 1)), 4, AGGREGATE_MAX_DRAWS))
    keys = jax.random.split(rng, s)
    out = []
    for mean, logvar in zip(means, logvars, strict=True):
        terms = _aggregate(on_device(mean[:n]), on_device(logvar[:n]), keys)
        m: dict = {"vae/aggregate_rows": n, "vae/aggregate_draws": s}
        for k, v in terms.items():
            v = np.asarray(v, np.float64)
            m[names[k]] = float(v.mean())
            m[f"{names[k]}_mc_se"] = float(v.std(ddof=1) / np.sqrt(s))
        out.append(m)
    return out
