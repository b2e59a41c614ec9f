"""ae_jax: autoencoders in JAX/Flax Linen, trained with one pure jitted step.

Public entry points: `train_and_evaluate(config, workdir)`, `load(workdir)`, `train_group(configs,
workdirs)` for runs trained together, `default_config()`, and the model classes.
"""

from ae_jax.config import default_config, validate
from ae_jax.errors import UserError
from ae_jax.inference import TrainedModel, load
from ae_jax.models import VAE, Autoencoder, Decoder, Encoder, GaussianEncoder, build_model
from ae_jax.train import train_and_evaluate, train_group

__all__ = [
    "VAE", "Autoencoder", "Decoder", "Encoder", "GaussianEncoder", "TrainedModel", "UserError",
    "build_model", "default_config", "load", "train_and_evaluate", "train_group", "validate",
]
