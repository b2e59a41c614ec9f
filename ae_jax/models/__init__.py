"""Models: the MLP autoencoder and VAE (autoencoder), per-column likelihood heads (heads),
convolutional halves for images (conv, with the CPU convolution workaround isolated in
conv_cpu), and `build_model` / `model_from_config`."""

from ae_jax.models.autoencoder import (
    ACTIVATIONS,
    LOGVAR_MAX,
    LOGVAR_MIN,
    MLP,
    VAE,
    Autoencoder,
    Decoder,
    Encoder,
    GaussianEncoder,
    output_mean,
)
from ae_jax.models.build import build_model, model_from_config

__all__ = [
    "ACTIVATIONS",
    "LOGVAR_MAX",
    "LOGVAR_MIN",
    "MLP",
    "VAE",
    "Autoencoder",
    "Decoder",
    "Encoder",
    "GaussianEncoder",
    "build_model",
    "model_from_config",
    "output_mean",
]
