"""Flax Linen encoders, decoders, the autoencoder and the VAE.

Parameters nest as {"encoder": ..., "decoder": ...} so either half can be used on
its own after training (`Encoder(...).apply({"params": params["encoder"]}, x)`),
like the seed's separate Keras `encoder` and `decoder` models. The simple AE is an
`Autoencoder` with no hidden layers, the deep AE one with several, and the sparse
AE is either of them trained with an L1 or KL-sparsity term (see `objective.py`).
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

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


class Autoencoder(nn.Module):
    """Deterministic autoencoder: simple (no hidden layer), deep, sparse (by objective)."""

    encoder: Encoder
    decoder: Decoder
    output_activation: str = "sigmoid"

    def encode(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)

    def decode(self, code: jax.Array) -> jax.Array:
        return ACTIVATIONS[self.output_activation](self.decoder(code))

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> dict[str, jax.Array]:
        """Returns {"out": reconstruction, "logits": pre-activation, "code": code}."""
        del rng  # Deterministic; the argument keeps one calling convention with the VAE.
        code = self.encoder(x)
        logits = self.decoder(code)
        out = ACTIVATIONS[self.output_activation](logits)
        return {"out": out, "logits": logits, "code": code}


class VAE(nn.Module):
    """Variational autoencoder with a diagonal Gaussian posterior and an N(0, I) prior."""

    encoder: GaussianEncoder
    decoder: Decoder
    output_activation: str = "sigmoid"

    def encode(self, x: jax.Array) -> jax.Array:
        """The posterior mean, the usual deterministic code of a VAE."""
        return self.encoder(x)[0]

    def decode(self, z: jax.Array) -> jax.Array:
        return ACTIVATIONS[self.output_activation](self.decoder(z))

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
        out = ACTIVATIONS[self.output_activation](logits)
        return {"out": out, "logits": logits, "code": mean, "mean": mean, "logvar": logvar, "z": z}

    def sample(self, rng: jax.Array, n: int) -> jax.Array:
        """Decodes n draws from N(0, I); returns the likelihood mean (e.g. pixel probabilities)."""
        z = jax.random.normal(rng, (n, self.encoder.latent_dim))
        return self.decode(z)


def parse_activations(spec: str, n: int, field: str) -> tuple[str, ...]:
    """'relu' -> ('relu',) * n; 'relu,tanh' -> per layer (must have n entries)."""
    from ae_jax.errors import UserError

    names = tuple(s.strip() for s in spec.split(",") if s.strip()) or ("",)
    for name in names:
        if name not in ACTIVATIONS:
            raise UserError(
                f"{field}: unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)} "
                "(or a comma-separated list, one per hidden layer)."
            )
    if len(names) == 1:
        return names * n
    if len(names) != n:
        raise UserError(
            f"{field}: {len(names)} activations given ({spec!r}) for {n} hidden layers; give one "
            "name for all layers or exactly one per layer."
        )
    return names


def build_model(model_cfg, num_features: int, image_shape: tuple[int, ...] | None = None
                ) -> nn.Module:
    """Builds an `Autoencoder` or `VAE` from the `model` config section (already validated).

    `model.arch = "mlp"` builds Dense encoders and decoders from `encoder_widths` and
    `decoder_widths`. `model.arch = "conv"` builds the convolutional halves of
    `ae_jax/conv.py` from `conv_features` and `conv_kernel` instead, and ignores
    `encoder_widths` and `decoder_widths`; its (decoder_)activation is one name, or one per
    entry of `conv_features`. Both take and return flat rows (N, D).

    Args:
      model_cfg: the config's `model` section.
      num_features: D, the width of the (flat) input and output rows.
      image_shape: (H, W) or (H, W, C) of image data whose rows are flattened images;
        needed by `model.arch = "conv"`, ignored by the MLP.

    Raises:
      UserError: an unknown activation, or `model.arch = "conv"` on data that is not
        images of D pixels (tabular data, or a label column kept among the pixels).
    """
    # Mixed precision: layers compute in bfloat16, parameters stay float32 (Flax's
    # param_dtype), and the objective casts outputs back to float32 before any loss.
    dtype = jnp.bfloat16 if model_cfg.compute_dtype == "bfloat16" else None
    if model_cfg.arch == "conv":
        from ae_jax import conv  # conv imports this module; a lazy import avoids the cycle.

        return conv.build_conv_model(model_cfg, num_features, image_shape, dtype)
    enc_hidden = tuple(model_cfg.encoder_widths)
    dec_hidden = (
        tuple(model_cfg.decoder_widths)
        if model_cfg.decoder_widths is not None
        else tuple(reversed(enc_hidden))
    )
    enc_acts = parse_activations(model_cfg.activation, len(enc_hidden), "model.activation")
    dec_acts = parse_activations(
        model_cfg.decoder_activation or model_cfg.activation,
        len(dec_hidden),
        "model.decoder_activation" if model_cfg.decoder_activation else "model.activation",
    )
    decoder = Decoder(dec_hidden, dec_acts, num_features, dtype=dtype)
    if model_cfg.name == "vae":
        encoder = GaussianEncoder(enc_hidden, enc_acts, model_cfg.latent_dim, dtype=dtype)
        return VAE(encoder, decoder, model_cfg.output_activation)
    encoder = Encoder(
        enc_hidden, enc_acts, model_cfg.latent_dim, model_cfg.code_activation, dtype=dtype
    )
    return Autoencoder(encoder, decoder, model_cfg.output_activation)
