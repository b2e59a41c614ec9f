r"""Depth: 1 to 4 hidden layers per side at a fixed code size of 8, on digits.

  ae-jax sweep --config=ablations/depth --workdir=runs/depth
  ae-jax report --workdir=runs/depth

Encoders (64), (128, 64), (128, 64, 32), (256, 128, 64, 32), mirrored decoders, ReLU,
sigmoid output, MSE, adam 1e-3, 150 epochs at batch 128, x 5 seeds = 20 runs. The
report compares eval/mse with the PCA-8 baseline on the same split (ae_over_pca).
"""

from ae_jax import sweeps as sweep
from ae_jax.config import default_config

# What the report shows (ae-jax report; --metrics overrides it).
REPORT_METRICS = ("eval/mse", "pca/mse", "ae_over_pca", "code/near_zero_fraction", "n_params")

WIDTHS = [(64,), (128, 64), (128, 64, 32), (256, 128, 64, 32)]


def get_config():
    c = default_config()
    c.data.name = "digits"
    c.model.latent_dim, c.model.activation = 8, "relu"
    c.model.code_activation, c.model.output_activation = "identity", "sigmoid"
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every = 150, 128, 0
    return c


def get_sweep():
    depths = [sweep.named(f"depth={len(w)}", {"model.encoder_widths": list(w)}) for w in WIDTHS]
    return sweep.product(depths, {"train.seed": list(range(5))})
