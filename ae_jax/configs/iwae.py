r"""IWAE (Burda et al. 2016): trained on the 5-sample importance-weighted bound
(loss.iw_samples_train=5).

  ae-jax train --config=iwae --workdir=runs/iwae
  ae-jax train --config=iwae:FILE.csv \
      --workdir=runs/iwae_table

The model and data are `vae_objectives.get_config`'s: binarised digits, or a table (FILE.csv)
with the mixed likelihood.
"""

from ae_jax.configs import vae_objectives


def get_config(arg: str | None = None):
    return vae_objectives.named("iwae", arg)
