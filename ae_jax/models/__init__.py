"""Models: the MLP autoencoder and VAE (autoencoder), convolutional halves for images (conv,
with the CPU convolution workaround isolated in conv_cpu), and `build_model` from a config."""

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
)
from ae_jax.models.build import build_model

__all__ = ["ACTIVATIONS", "LOGVAR_MAX", "LOGVAR_MIN", "MLP", "VAE", "Autoencoder", "Decoder",
           "Encoder", "GaussianEncoder", "build_model"]
