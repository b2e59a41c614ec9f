r"""Code size against PCA: code 2 to 32 for the simple AE, the deep AE and PCA, on digits.

  ae-jax sweep --config=ablations/code_size --workdir=runs/code_size
  ae-jax report --workdir=runs/code_size

Simple AE: one code layer (the seed's sigmoid code and output). Deep AE: ReLU 128-64
encoder, mirrored decoder, linear code. Both trained 150 epochs at batch 128 with adam
1e-3; 5 code sizes x 2 models x 3 seeds = 30 runs. Each run's eval.json carries the
PCA baseline with the same number of components on the same split (pca/mse).
"""

from ae_jax import sweeps as sweep
from ae_jax.config import default_config

# What the report shows (ae-jax report; --metrics overrides it).
REPORT_METRICS = ("eval/mse", "pca/mse", "ae_over_pca", "code/near_zero_fraction")

MODELS = {
    "simple": {"model.encoder_widths": [], "model.code_activation": "sigmoid"},
    "deep": {"model.encoder_widths": [128, 64], "model.code_activation": "identity"},
}


def get_config():
    c = default_config()
    c.data.name = "digits"
    c.model.activation, c.model.output_activation = "relu", "sigmoid"
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every = 150, 128, 0
    return c


def get_sweep():
    models = [sweep.named(name, o) for name, o in MODELS.items()]
    return sweep.product(
        models, {"model.latent_dim": [2, 4, 8, 16, 32]}, {"train.seed": list(range(3))}
    )
