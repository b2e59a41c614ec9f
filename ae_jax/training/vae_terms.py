"""The VAE objective's optional terms: KL warm-up, free bits, the importance-weighted bound,
the total-correlation decomposition of the KL (beta-TC-VAE) and the MMD to the prior
(InfoVAE, WAE).

Each is a pure function of arrays; the weights are traced values (`hyper`), so runs that differ
only in them train as one program. All densities are diagonal Gaussians with `logvar` = log
sigma^2, as in `models/autoencoder.py`; all results are in nats.
"""

import math

import jax
import jax.numpy as jnp

from ae_jax.config import MMD_KERNELS
from ae_jax.training import losses

_LOG_2PI = math.log(2.0 * math.pi)
# Log-weight of a padded row: exp() of it is 0, yet an all-padding batch stays finite.
_NO_ROW = -1e30


def warmup_beta(
    step: jax.Array, steps_per_epoch: int, beta: jax.Array, start: jax.Array, epochs: jax.Array
) -> jax.Array:
    """KL warm-up (Bowman et al. 2016): the KL weight of the optimizer step `step` (0-based).

    It rises linearly from `start` at step 0 to `beta` at step `epochs * steps_per_epoch` and
    stays there; `epochs` <= 0 gives `beta` itself (exactly, whatever `start` is).
    """
    total = epochs * steps_per_epoch
    frac = jnp.minimum(step.astype(jnp.float32) / jnp.maximum(total, 1e-12), 1.0)
    return jnp.where(epochs > 0, start + (beta - start) * frac, beta)


def kl_per_dim(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per latent dimension, elementwise."""
    return 0.5 * (jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar)


def free_bits_kl(
    mean: jax.Array, logvar: jax.Array, w: jax.Array, free_bits: jax.Array
) -> jax.Array:
    """The KL term with free bits (Kingma et al. 2016, eq. 15): sum over latent dimensions of
    max(batch-mean KL of the dimension, free_bits).

    `w` (B,) are the rows' weights (mask / number of real rows). A dimension whose batch KL is
    under the threshold contributes a constant, so it gets no gradient from the KL term.
    """
    per_dim = losses.weighted(w, kl_per_dim(mean, logvar))  # (L,)
    return jnp.sum(jnp.maximum(per_dim, free_bits))


def iw_eps(rng: jax.Array, rows: int, k: int, latent_dim: int) -> jax.Array:
    """The k posterior draws of each of `rows` rows, (rows, k, L), as training takes them."""
    return jax.random.normal(rng, (rows, k, latent_dim), jnp.float32)


def log_weights(
    nll: jax.Array, z: jax.Array, mean: jax.Array, logvar: jax.Array, beta: jax.Array | float = 1.0
) -> jax.Array:
    """Importance log-weights log p(x|z) + beta * (log p(z) - log q(z|x)) of draws z (..., k, L)
    from q = N(mean, exp(logvar)) (..., L); nll (..., k) = -log p(x|z). beta = 1: Burda et al."""
    log_pz = losses.gaussian_log_prob(z, jnp.zeros_like(z), jnp.zeros_like(z))
    log_qz = losses.gaussian_log_prob(z, mean[..., None, :], logvar[..., None, :])
    return -nll + beta * (log_pz - log_qz)


def iw_bound(log_w: jax.Array) -> jax.Array:
    """The importance-weighted bound from log-weights (..., k): logsumexp - log k."""
    return jax.nn.logsumexp(log_w, axis=-1) - math.log(log_w.shape[-1])


def _log_density(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z_id; mean_jd, exp(logvar_jd)) for all pairs: z (M, L), mean (N, L) -> (M, N, L)."""
    diff = z[:, None, :] - mean[None, :, :]
    return -0.5 * (_LOG_2PI + logvar[None] + jnp.square(diff) * jnp.exp(-logvar[None]))


def kl_decomposition(
    z: jax.Array, mean: jax.Array, logvar: jax.Array, mask: jax.Array, dataset_size: int | jax.Array
) -> dict[str, jax.Array]:
    """Total correlation, index-code mutual information and dimension-wise KL of the aggregate
    posterior q(z) = mean over the data set of q(z|x), estimated on a batch (Chen et al. 2018).

    z (B, L): one draw from each row's posterior N(mean, exp(logvar)); mask (B,): 1 for real rows.
    q(z_i) is estimated by importance-weighting the batch's posteriors: the row's own posterior
    gets weight 1/N and each of the M - 1 others (N - 1) / (N (M - 1)), N = `dataset_size`,
    M = real rows (a stratified form of Chen et al.'s minibatch-weighted sampling: an unbiased
    estimate of the density q(z_i); their plainer 1/(N M) weights are off by a constant of
    about (L - 1) log N in the total correlation, harmless to its gradient but not to the
    reported value). When the batch is the whole data set (M = N) every weight is 1/N and the
    estimate is the exact density of the finite mixture. The same weights give each marginal
    q(z_d). Returns batch means (nats): {"tc": E log q(z) / prod_d q(z_d), "mi": E log q(z|x) /
    q(z), "dim_kl": E log prod_d q(z_d) / p(z)}; tc + mi + dim_kl estimates the mean KL.
    """
    m = jnp.sum(mask)
    n = jnp.asarray(dataset_size, jnp.float32)
    other = jnp.log(jnp.maximum(n - 1.0, 0.0)) - jnp.log(n) - jnp.log(jnp.maximum(m - 1.0, 1.0))
    cols = jnp.arange(z.shape[0])

    def rows(zb, ib):  # a block of rows i: log q(z_i) and sum_d log q(z_id)
        log_w = jnp.where(ib[:, None] == cols[None, :], -jnp.log(n), other)
        log_w = jnp.where(mask[None, :] > 0, log_w, _NO_ROW)  # padded rows are no posterior
        pair = _log_density(zb, mean, logvar)  # (b, B, L)
        return (
            jax.nn.logsumexp(jnp.sum(pair, -1) + log_w, axis=1),
            jnp.sum(jax.nn.logsumexp(pair + log_w[..., None], axis=1), axis=-1),
        )

    log_qz, log_qz_dims = _blocked(rows, z, _BLOCK)
    log_qz_x = losses.gaussian_log_prob(z, mean, logvar)
    log_pz = losses.gaussian_log_prob(z, jnp.zeros_like(z), jnp.zeros_like(z))
    w = mask / jnp.maximum(m, 1.0)
    return {
        "tc": losses.weighted(w, log_qz - log_qz_dims),
        "mi": losses.weighted(w, log_qz_x - log_qz),
        "dim_kl": losses.weighted(w, log_qz_dims - log_pz),
    }


# Rows of z per block of the pairwise densities: memory is _BLOCK * B * L floats.
_BLOCK = 256


def _blocked(fn, z: jax.Array, block: int):
    """fn(z block, row indices) over blocks of z's rows (one block: a plain call)."""
    n = z.shape[0]
    idx = jnp.arange(n)
    if n <= block:
        return fn(z, idx)
    nb = -(-n // block)
    zp = jnp.pad(z, [(0, nb * block - n), (0, 0)]).reshape(nb, block, z.shape[-1])
    ip = jnp.pad(idx, (0, nb * block - n), constant_values=-1).reshape(nb, block)
    out = jax.lax.map(lambda a: fn(*a), (zp, ip))
    return tuple(o.reshape(-1)[:n] for o in out)


def _kernel(a: jax.Array, b: jax.Array, kind: str) -> jax.Array:
    """k(a_i, b_j) for all pairs, (M, L) x (N, L) -> (M, N), with scale C = 2 L (the expected
    squared distance of two N(0, I) draws, as in Tolstikhin et al.'s C = 2 d sigma^2):
    imq C / (C + |a - b|^2), rbf exp(-|a - b|^2 / C)."""
    c = 2.0 * a.shape[-1]
    d2 = jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)
    return c / (c + d2) if kind == "imq" else jnp.exp(-d2 / c)


def mmd(x: jax.Array, y: jax.Array, kind: str = "imq", mask: jax.Array | None = None) -> jax.Array:
    """Unbiased estimate of MMD^2 between the distributions of samples x and y, (B, L) each.

    mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j) over the
    rows whose mask is 1 (the same rows of x and y). Its expectation is 0 when x and y come from
    one distribution, so single estimates may be negative.
    """
    if kind not in MMD_KERNELS:
        raise ValueError(f"mmd kernel {kind!r}; expected one of {MMD_KERNELS}")
    if mask is None:
        mask = jnp.ones(x.shape[:1], jnp.float32)
    pair = mask[:, None] * mask[None, :]
    off = pair * (1.0 - jnp.eye(x.shape[0], dtype=pair.dtype))
    m = jnp.sum(mask)
    n_off = jnp.maximum(m * (m - 1.0), 1.0)
    kxx = jnp.sum(_kernel(x, x, kind) * off) / n_off
    kyy = jnp.sum(_kernel(y, y, kind) * off) / n_off
    kxy = jnp.sum(_kernel(x, y, kind) * pair) / jnp.maximum(m * m, 1.0)
    return kxx + kyy - 2.0 * kxy


def aggregate_decomposition(
    z: jax.Array, mean: jax.Array, logvar: jax.Array, block: int = 256
) -> dict[str, jax.Array]:
    """`kl_decomposition` with the whole set as the batch (every weight 1/N: the exact density of
    the N posteriors' mixture), computed `block` rows at a time so memory is block * N * L.

    z, mean, logvar: (N, L). Returns the means over the N rows of tc, mi and dim_kl (nats).
    """
    log_n = math.log(z.shape[0])

    def rows(zb, _):
        pair = _log_density(zb, mean, logvar)  # (block, N, L)
        return (
            jax.nn.logsumexp(jnp.sum(pair, -1), axis=1) - log_n,
            jnp.sum(jax.nn.logsumexp(pair, axis=1) - log_n, axis=-1),
        )

    log_qz, log_qz_dims = _blocked(rows, z, block)
    log_qz_x = losses.gaussian_log_prob(z, mean, logvar)
    log_pz = losses.gaussian_log_prob(z, jnp.zeros_like(z), jnp.zeros_like(z))
    return {
        "tc": jnp.mean(log_qz - log_qz_dims),
        "mi": jnp.mean(log_qz_x - log_qz),
        "dim_kl": jnp.mean(log_qz_dims - log_pz),
    }
