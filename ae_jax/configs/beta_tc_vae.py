r"""beta-TC-VAE (Chen et al. 2018): the KL's total correlation weighted 6
(loss.beta=1, loss.tc_weight=5).

  ae-jax train --config=beta_tc_vae --workdir=runs/beta_tc_vae
  ae-jax train --config=beta_tc_vae:FILE.csv \
      --workdir=runs/beta_tc_vae_table

The model and data are `vae_objectives.get_config`'s: binarised digits, or a table (FILE.csv)
with the mixed likelihood.
"""

from ae_jax.configs import vae_objectives


def get_config(arg: str | None = None):
    return vae_objectives.named("beta_tc_vae", arg)
