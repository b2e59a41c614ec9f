"""`build_model(model_cfg, num_features, image_shape)`: the config's model, MLP or conv."""

import flax.linen as nn
import jax.numpy as jnp

from ae_jax.config import parse_activations
from ae_jax.models import conv
from ae_jax.models.autoencoder import VAE, Autoencoder, Decoder, Encoder, GaussianEncoder


def build_model(model_cfg, num_features: int, image_shape: tuple[int, ...] | None = None
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

    Raises:
      UserError: an unknown activation, or `model.arch = "conv"` on data that is not
        images of D pixels (tabular data, or a label column kept among the pixels).
    """
    # Mixed precision: layers compute in bfloat16, parameters stay float32 (Flax's
    # param_dtype), and the objective casts outputs back to float32 before any loss.
    dtype = jnp.bfloat16 if model_cfg.compute_dtype == "bfloat16" else None
    if model_cfg.arch == "conv":
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
