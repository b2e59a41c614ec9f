r"""The VAE of the objective ablations, and the objectives themselves (named configs).

  ae-jax train --config=vae_objectives --workdir=runs/vae_objectives
  ae-jax train --config=vae_objectives:FILE.csv --workdir=runs/vae_objectives_table

`get_config()` is the beta-VAE ablation's model on the bundled digits binarised at 0.5
(pixel / 16 > 0.5; nothing is written to disk): a ReLU 256-128 encoder, a latent of 10, the
mirrored decoder and a Bernoulli likelihood, 150 epochs at batch 128. `get_config(FILE.csv)`
is a table instead (the purchase data): one-hot categories and the mixed likelihood (a
Gaussian with std 0.1 per numeric column, a Bernoulli per true/false column and a softmax per
categorical one), a 32-unit encoder, a latent of 4, 30 epochs at batch 64, lr 3e-3.

`OBJECTIVES` are the named models as overrides of it; each differs from the plain VAE only in
vmappable weights except IWAE, whose number of samples is static:
- beta_tc_vae (Chen et al. 2018): the KL's total-correlation part weighted 6 (beta = 1, tc 5).
- info_vae (Zhao et al. 2019, alpha = 0): the ELBO plus MMD(q(z), p(z)) weighted 100 per batch.
  In Zhao et al.'s terms the KL weight (loss.beta) is 1 - alpha and the MMD weight
  (loss.mmd_weight) alpha + lambda - 1, so this is alpha = 0, lambda = 101.
- wae (Tolstikhin et al. 2018, WAE-MMD with a random encoder): no KL, the MMD weighted 100.
- iwae (Burda et al. 2016): trained on the 5-sample importance-weighted bound.
"""

from ae_jax.config import default_config
from ae_jax.sweeps.overrides import apply_overrides

OBJECTIVES: dict[str, dict[str, float | int]] = {
    "vae": {},
    "beta_tc_vae": {"loss.tc_weight": 5.0},
    "info_vae": {"loss.mmd_weight": 100.0},
    "wae": {"loss.beta": 0.0, "loss.mmd_weight": 100.0},
    "iwae": {"loss.iw_samples_train": 5},
}


def get_config(arg: str | None = None):
    c = default_config()
    c.model.name, c.model.activation = "vae", "relu"
    if arg in (None, "", "digits"):
        c.data.name, c.data.binarize, c.data.scaling = "digits", "fixed", "none"
        c.model.encoder_widths, c.model.latent_dim = (256, 128), 10
        c.loss.recon = "bce"
        c.train.epochs, c.train.batch_size = 150, 128
    else:  # a table of your own, e.g. online_shoppers_intention.csv
        c.data.path, c.data.categorical = arg, "onehot"
        c.model.encoder_widths, c.model.latent_dim = (32,), 4
        c.loss.recon, c.loss.obs_std = "mixed", 0.1
        c.optim.learning_rate = 3e-3
        c.train.epochs, c.train.batch_size = 30, 64
    c.train.checkpoint_every = 0
    return c


def named(name: str, arg: str | None = None):
    """The base config with one of `OBJECTIVES` applied."""
    return apply_overrides(get_config(arg), OBJECTIVES[name])
