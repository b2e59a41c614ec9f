r"""Seed study: the four seed models, as the seed trains them, on two bundled data sets.

  ae-jax sweep --config=ablations/seed_study --workdir=runs/seed_study
  ae-jax report --workdir=runs/seed_study

40 runs (4 models x {breast_cancer, digits} x 5 seeds), each with its seed config's own
settings: the simple, sparse and deep AEs 5 epochs at batch 1000, the VAE 30 epochs at
batch 100. The VAE's epochs and batch size are part of its sweep entries, so
--config.train.epochs or --config.train.batch_size change only the other three models (the
sweep warns so). The report gives validation MSE, code sparsity and parameter count per model
and data set; DIR/timing.csv the wall times.
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
