"""`build_model(model_cfg, num_features, image_shape)`: the config's model, MLP or conv."""

import math
import numbers

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from ae_jax.config import check_model, check_section, parse_activations
from ae_jax.errors import UserError
from ae_jax.models import conv
from ae_jax.models.autoencoder import VAE, Autoencoder, Decoder, Encoder, GaussianEncoder


def build_model(
    model_cfg,
    num_features: int,
    image_shape: tuple[int, ...] | None = None,
    heads: tuple | None = None,
    learned_log_std: float | None = None,
) -> nn.Module:
    """Builds an `Autoencoder` or `VAE` from the `model` config section (already validated).

    `model.arch = "mlp"` builds Dense encoders and decoders from `encoder_widths` and
    `decoder_widths`. `model.arch = "conv"` builds the convolutional halves of
    `ae_jax/models/conv.py` from `conv_features` and `conv_kernel` instead, and ignores
    `encoder_widths` and `decoder_widths`; its (decoder_)activation is one name, or one per
    entry of `conv_features`. Both take and return flat rows (N, D).

    Args:
      model_cfg: the config's `model` section.
      num_features: D, the width of the (flat) input and output rows.
      image_shape: (H, W) or (H, W, C) of image data whose rows are flattened images;
        needed by `model.arch = "conv"`, ignored by the MLP.
      heads: the preprocessor's layout, for a mixed-type likelihood (models/heads.py).
      learned_log_std: the initial log std of a Gaussian likelihood whose scale per output
        column is learned; None keeps it fixed (outside the model).

    Raises:
      UserError: an unknown activation, or `model.arch = "conv"` on data that is not
        images of D pixels (tabular data, or a label column kept among the pixels).
    """
    if not isinstance(model_cfg, ml_collections.ConfigDict):
        raise UserError(
            f"build_model: expected the config's model section, a ConfigDict (config.model); "
            f"got {type(model_cfg).__name__}"
            + (
                " (a dict: ml_collections.ConfigDict(d) makes one)"
                if isinstance(model_cfg, dict)
                else ""
            )
            + "."
        )
    if "model" in model_cfg and "compute_dtype" not in model_cfg:
        raise UserError(
            "build_model: expected the config's model section (config.model); got the whole config."
        )
    check_section("model", model_cfg)  # none misspelt: build_model reads model.* alone
    check_model(model_cfg)
    if (
        not isinstance(num_features, numbers.Integral)
        or isinstance(num_features, bool)
        or num_features < 1
    ):
        raise UserError(
            f"build_model: num_features={num_features!r}; expected a whole number >= 1."
        )
    # Mixed precision: layers compute in bfloat16, parameters stay float32 (Flax's
    # param_dtype), and the objective casts outputs back to float32 before any loss.
    dtype = jnp.bfloat16 if model_cfg.compute_dtype == "bfloat16" else None
    if model_cfg.arch == "conv":
        model = conv.build_conv_model(model_cfg, num_features, image_shape, dtype)
        # (without the heads, loss.recon='mixed' failed inside the loss's trace)
        return model.clone(heads=heads, learned_log_std=learned_log_std)
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
        encoder: nn.Module = GaussianEncoder(
            enc_hidden, enc_acts, model_cfg.latent_dim, dtype=dtype
        )
        return VAE(encoder, decoder, model_cfg.output_activation, heads, learned_log_std)
    encoder = Encoder(
        enc_hidden, enc_acts, model_cfg.latent_dim, model_cfg.code_activation, dtype=dtype
    )
    return Autoencoder(encoder, decoder, model_cfg.output_activation, heads, learned_log_std)


def model_from_config(
    config,
    num_features: int,
    image_shape: tuple[int, ...] | None = None,
    layout: tuple | None = None,
) -> nn.Module:
    """`build_model` from a whole config: the likelihood's heads (the data's column `layout`,
    for loss.recon='mixed') and a learned Gaussian scale (loss.obs_std_learned) included."""
    heads = tuple(layout) if config.loss.recon == "mixed" and layout else None
    learned = math.log(config.loss.obs_std) if config.loss.obs_std_learned else None
    return build_model(config.model, num_features, image_shape, heads, learned)
