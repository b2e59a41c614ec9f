r"""Seed study: the four seed models, as the seed trains them, on two bundled data sets.

  python -m experiments.sweep --config=experiments/ablations/seed_study.py --workdir=runs/seed_study
  python -m experiments.report --workdir=runs/seed_study

40 runs (4 models x {breast_cancer, digits} x 5 seeds), each with the seed's own
settings (5 epochs; batch 1000, 100 for the VAE). The report gives validation MSE,
code sparsity, parameter count and wall time per model and data set.
"""

from ae_jax import sweeps as sweep
from ae_jax.config import default_config
from ae_jax.configs import seed_deep, seed_simple, seed_sparse, seed_vae

# What the report shows (ae-jax report; --metrics overrides it).
REPORT_METRICS = (
    "eval/mse",
    "ae_over_pca",
    "code/near_zero_fraction",
    "code/l1_per_row",
    "vae/active_units",
    "n_params",
)

SEEDS = {"simple": seed_simple, "sparse": seed_sparse, "deep": seed_deep, "vae": seed_vae}


def get_config():
    return default_config()


def get_sweep():
    base = default_config()
    models = [
        sweep.named(name, sweep.config_diff(base, module.get_config()))
        for name, module in SEEDS.items()
    ]
    return sweep.product(
        models, {"data.name": ["breast_cancer", "digits"]}, {"train.seed": list(range(5))}
    )
