"""Flax Linen encoders, decoders, the autoencoder and the VAE.

Parameters nest as {"encoder": ..., "decoder": ...} so either half can be used on
its own after training (`Encoder(...).apply({"params": params["encoder"]}, x)`),
like the seed's separate Keras `encoder` and `decoder` models. The simple AE is an
`Autoencoder` with no hidden layers, the deep AE one with several, and the sparse
AE is either of them trained with an L1 or KL-sparsity term (see `training/objective.py`).
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.config import ACTIVATION_NAMES
from ae_jax.models import heads as heads_lib

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": nn.sigmoid,
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "selu": nn.selu,
    "silu": nn.silu,
    "softplus": nn.softplus,
    "leaky_relu": nn.leaky_relu,
    "identity": lambda x: x,
}

# exp(logvar) must not overflow float32 (exp(88) does) nor underflow to a zero
# variance; 1e-13..5e8 is far wider than any posterior a VAE should learn.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
assert set(ACTIVATIONS) == set(ACTIVATION_NAMES), "config.ACTIVATION_NAMES is out of date"


class MLP(nn.Module):
    """Dense layers, each followed by its own activation."""

    widths: Sequence[int]
    activations: Sequence[str]
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, (width, act) in enumerate(zip(self.widths, self.activations, strict=True)):
            x = ACTIVATIONS[act](nn.Dense(width, dtype=self.dtype, name=f"dense_{i}")(x))
        return x


class Encoder(nn.Module):
    """x (..., D) -> code (..., latent_dim): hidden layers, then the code layer."""

    hidden: Sequence[int]
    activations: Sequence[str]
    latent_dim: int
    code_activation: str = "identity"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = MLP(self.hidden, self.activations, self.dtype, name="mlp")(x)
        code = nn.Dense(self.latent_dim, dtype=self.dtype, name="code")(h)
        return ACTIVATIONS[self.code_activation](code)


class GaussianEncoder(nn.Module):
    """x -> (mean, logvar) of a diagonal Gaussian posterior q(z | x)."""

    hidden: Sequence[int]
    activations: Sequence[str]
    latent_dim: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(self.hidden, self.activations, self.dtype, name="mlp")(x)
        mean = nn.Dense(self.latent_dim, dtype=self.dtype, name="mean")(h)
        logvar = nn.Dense(self.latent_dim, dtype=self.dtype, name="logvar")(h)
        return mean, jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)


class Decoder(nn.Module):
    """code (..., latent_dim) -> pre-activation output (..., out_dim), i.e. logits.

    The output activation is applied by the model, not here, so that a Bernoulli
    likelihood can use the logits directly (exact and overflow-free BCE).
    """

    hidden: Sequence[int]
    activations: Sequence[str]
    out_dim: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        h = MLP(self.hidden, self.activations, self.dtype, name="mlp")(z)
        return nn.Dense(self.out_dim, dtype=self.dtype, name="out")(h)


def output_mean(model: nn.Module, logits: jax.Array) -> jax.Array:
    """The reconstruction of decoder logits: per-column heads' means for a mixed-type model,
    else the output activation."""
    if model.heads:
        return heads_lib.mean(logits, model.heads)
    return ACTIVATIONS[model.output_activation](logits)


class Autoencoder(nn.Module):
    """Deterministic autoencoder: simple (no hidden layer), deep, sparse (by objective).

    heads: the per-column layout of a mixed-type likelihood (models/heads.py), or None.
    learned_log_std: None, or the initial log std of a Gaussian likelihood whose std per
        output column is learned (the parameter "obs_log_std").
    """

    encoder: nn.Module  # an Encoder, or models.conv's ConvEncoder
    decoder: nn.Module  # a Decoder, or models.conv's ConvDecoder
    output_activation: str = "sigmoid"
    heads: tuple | None = None
    learned_log_std: float | None = None

    def encode(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)

    def decode(self, code: jax.Array) -> jax.Array:
        return output_mean(self, self.decoder(code))

    @nn.compact
    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> dict[str, jax.Array]:
        """Returns {"out": reconstruction, "logits": pre-activation, "code": code} (and
        "log_std" when the likelihood's scale is learned)."""
        del rng  # Deterministic; the argument keeps one calling convention with the VAE.
        code = self.encoder(x)
        logits = self.decoder(code)
        out = {"out": output_mean(self, logits), "logits": logits, "code": code}
        return _with_log_std(self, out, logits.shape[-1])


def _with_log_std(model, out: dict, num_features: int) -> dict:
    """Adds the likelihood's learned log std per output column (parameter "obs_log_std")."""
    if model.learned_log_std is not None:
        out["log_std"] = model.param(
            "obs_log_std", nn.initializers.constant(model.learned_log_std), (num_features,)
        )
    return out


class VAE(nn.Module):
    """Variational autoencoder with a diagonal Gaussian posterior and an N(0, I) prior.

    heads, learned_log_std: as for `Autoencoder`.
    """

    encoder: nn.Module  # a GaussianEncoder, or models.conv's ConvGaussianEncoder
    decoder: nn.Module  # a Decoder, or models.conv's ConvDecoder
    output_activation: str = "sigmoid"
    heads: tuple | None = None
    learned_log_std: float | None = None

    def encode(self, x: jax.Array) -> jax.Array:
        """The posterior mean, the usual deterministic code of a VAE."""
        return self.encoder(x)[0]

    def decode(self, z: jax.Array) -> jax.Array:
        return output_mean(self, self.decoder(z))

    @nn.compact
    def __call__(self, x: jax.Array, rng: jax.Array) -> dict[str, jax.Array]:
        """Encodes, samples z = mean + exp(logvar / 2) * eps with `rng`, decodes.

        Returns {"out", "logits", "code" (= mean), "mean", "logvar", "z"}.
        """
        mean, logvar = self.encoder(x)
        eps = jax.random.normal(rng, mean.shape, mean.dtype)
        # std = exp(log sigma^2 / 2): the seed's blog used exp(logvar) here but logvar
        # as log sigma^2 in the KL; this keeps one meaning everywhere.
        z = mean + jnp.exp(0.5 * logvar) * eps
        logits = self.decoder(z)
        out = {
            "out": output_mean(self, logits),
            "logits": logits,
            "code": mean,
            "mean": mean,
            "logvar": logvar,
            "z": z,
        }
        return _with_log_std(self, out, logits.shape[-1])

    def sample(self, rng: jax.Array, n: int) -> jax.Array:
        """Decodes n draws from N(0, I); returns the likelihood mean (e.g. pixel probabilities)."""
        z = jax.random.normal(rng, (n, self.encoder.latent_dim))
        return self.decode(z)
