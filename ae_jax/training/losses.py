"""Per-example loss terms.

Reduction convention (used by every term, every metric named `recon`, `l1`, `kl`
and the total `loss`): each function returns one value per example, SUMMED over
features (or code units); the objective then takes the MEAN over the examples of
a batch. So `recon` for MSE is the squared error summed over the D features of a
row, averaged over rows, and a VAE's `recon + kl` is the negative ELBO in nats
per example. The one exception is `eval/mse`, which is the plain per-element mean
squared error (the sum divided by D as well) so that numbers compare with tools
that average over features, such as Keras' `mse`.

The KL-sparsity penalty is a property of a batch (it compares the batch's mean
activation of each code unit with the target rate), so it returns a scalar.
"""

import math

import jax
import jax.numpy as jnp
import optax

from ae_jax.models import heads as heads_lib

_LOG_2PI = math.log(2.0 * math.pi)


def weighted(w: jax.Array, v: jax.Array) -> jax.Array:
    """The rows' weighted sum w @ v (w: (B,) weights, v: (B,) or (B, L)), in full float32 on
    every backend: a TPU multiplies float32 matrices in bfloat16 passes by default and a recent
    GPU in TF32, ~3 and ~4 significant digits, and a loss or metric must keep all of float32's
    (a CPU ignores the setting: the same bits as w @ v there)."""
    return jnp.matmul(w, v, precision=jax.lax.Precision.HIGHEST)


def squared_error(x_hat: jax.Array, x: jax.Array) -> jax.Array:
    """Sum over features of (x_hat - x)**2. Shapes (..., D) -> (...)."""
    return jnp.sum(jnp.square(x_hat - x), axis=-1)


def bce_logits(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Bernoulli negative log-likelihood from logits, summed over features.

    Uses optax's log-sigmoid form, which stays finite for any logit; targets may be
    any value in [0, 1] (the loss is then a cross-entropy, not a likelihood).
    """
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=-1)


def cb_log_normalizer(logits: jax.Array) -> jax.Array:
    """log C(lambda) of the continuous Bernoulli (Loaiza-Ganem and Cunningham 2019), elementwise,
    with lambda = sigmoid(logits).

    C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda), which in the logit eta is
    eta / tanh(eta / 2): no division by a vanishing 1 - 2 lambda. Near eta = 0 (lambda = 0.5,
    where both vanish) a Taylor series is used, log 2 + u^2 / 3 - 7 u^4 / 90 with u = eta / 2
    (error below 1e-9 for |eta| < 0.1); elsewhere log|eta| - log tanh(|eta| / 2), with eta
    replaced by a safe value in the branch not taken so neither branch yields NaN gradients.
    """
    eta = logits.astype(jnp.float32)
    a = jnp.abs(eta)
    small = a < 0.1
    a_safe = jnp.where(small, 1.0, a)
    exact = jnp.log(a_safe) - jnp.log(jnp.tanh(a_safe / 2.0))
    u2 = jnp.square(jnp.where(small, eta, 0.0) / 2.0)
    taylor = math.log(2.0) + u2 / 3.0 - 7.0 * jnp.square(u2) / 90.0
    return jnp.where(small, taylor, exact)


def cbernoulli_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Continuous Bernoulli negative log-density of x in [0, 1], summed over features: the
    Bernoulli cross-entropy minus the log-normaliser, a true density on [0, 1]."""
    bce = optax.sigmoid_binary_cross_entropy(logits, x)
    return jnp.sum(bce - cb_log_normalizer(logits), axis=-1)


def gaussian_nll(mean: jax.Array, logvar: jax.Array, x: jax.Array) -> jax.Array:
    """Negative log-density of x under N(mean, exp(logvar)), summed over features."""
    return 0.5 * jnp.sum(_LOG_2PI + logvar + jnp.square(x - mean) * jnp.exp(-logvar), axis=-1)


def mixed_nll(logits: jax.Array, x: jax.Array, heads, log_std: jax.Array) -> jax.Array:
    """Negative log-likelihood of a mixed-type row, summed over its columns (nats).

    Per column of `heads` (models/heads.py): numeric -> Gaussian with mean = logit and std
    exp(log_std) (per output column, (D,) or broadcastable); true/false -> Bernoulli from the
    logit; categorical -> the softmax cross-entropy of its one-hot block. Shapes (..., D) -> (...).
    """
    total = jnp.zeros(logits.shape[:-1], jnp.float32)
    numeric = jnp.asarray(heads_lib.indices(heads, heads_lib.NUMERIC), jnp.int32)
    if numeric.size:
        ls = jnp.broadcast_to(log_std, logits.shape)[..., numeric]
        total += gaussian_nll(logits[..., numeric], 2.0 * ls, x[..., numeric])
    boolean = jnp.asarray(heads_lib.indices(heads, heads_lib.BOOLEAN), jnp.int32)
    if boolean.size:
        total += bce_logits(logits[..., boolean], x[..., boolean])
    for start, width in heads_lib.blocks(heads):
        log_p = jax.nn.log_softmax(logits[..., start : start + width], axis=-1)
        total += -jnp.sum(x[..., start : start + width] * log_p, axis=-1)
    return total


def l1(code: jax.Array) -> jax.Array:
    """L1 activity of the code: sum of |code| over units (Keras' activity_regularizer)."""
    return jnp.sum(jnp.abs(code), axis=-1)


def kl_sparsity(code: jax.Array, rho: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Sum over units of KL(Bernoulli(rho) || Bernoulli(rho_hat_j)) for a batch.

    Args:
      code: (B, K) activations in (0, 1) (sigmoid codes).
      rho: target mean activation, a scalar in (0, 1).
      mask: optional (B,) weights; padded rows get weight 0.

    Returns:
      A scalar: the penalty of Ng's sparse autoencoder notes, rho_hat_j being the
      batch's mean activation of unit j (clipped away from 0 and 1 so the log is finite).
    """
    if mask is None:
        mask = jnp.ones(code.shape[:1], code.dtype)
    rho_hat = jnp.sum(code * mask[:, None], axis=0) / jnp.maximum(jnp.sum(mask), 1.0)
    rho_hat = jnp.clip(rho_hat, 1e-6, 1.0 - 1e-6)
    kl = rho * (jnp.log(rho) - jnp.log(rho_hat)) + (1.0 - rho) * (
        jnp.log1p(-rho) - jnp.log1p(-rho_hat)
    )
    return jnp.sum(kl)


def kl_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """Analytic KL(N(mean, exp(logvar)) || N(0, I)), summed over latent dimensions."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def gaussian_log_prob(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; mean, exp(logvar)), summed over the last axis (used by the IWAE bound)."""
    return -0.5 * jnp.sum(_LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar), axis=-1)
