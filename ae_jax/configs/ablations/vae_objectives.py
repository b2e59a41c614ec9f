r"""VAE objectives side by side: VAE, beta-TC-VAE, InfoVAE, WAE and IWAE x 3 seeds.

  ae-jax sweep --config=ablations/vae_objectives --workdir=runs/obj
  ae-jax sweep --config=ablations/vae_objectives:FILE.csv \
      --workdir=runs/obj_table
  ae-jax report --workdir=runs/obj

The models are the `vae_objectives` config's (binarised digits, or a table with the
mixed likelihood). The first four objectives differ only in vmappable weights (beta, tc_weight,
mmd_weight) and train as one program of 12 models; IWAE (a static number of samples) is a
second. Evaluation reports the IWAE bound with k = 1000, active units, the reconstruction (per
column for a table) and the aggregate posterior's total correlation.
"""

from ae_jax import sweeps as sweep
from ae_jax.configs import vae_objectives

# What the report shows (ae-jax report; --metrics overrides it).
REPORT_METRICS = (
    "vae/iwae",
    "vae/elbo",
    "vae/active_units",
    "vae/total_correlation",
    "vae/mutual_info",
    "vae/dim_kl",
    "eval/recon",
    "eval/kl",
    "recon/categorical_accuracy",
    "recon/numeric_mse",
)


def get_config(arg: str | None = None):
    c = vae_objectives.get_config(arg)
    c.eval.iw_samples = 1000
    return c


def get_sweep(arg: str | None = None):
    del arg  # the same runs on either data set
    models = [sweep.named(name, o) for name, o in vae_objectives.OBJECTIVES.items()]
    return sweep.product(models, {"train.seed": list(range(3))})
