r"""WAE-MMD (Tolstikhin et al. 2018) with a random encoder: no KL (loss.beta=0), the MMD
to the prior weighted 100.

  ae-jax train --config=wae --workdir=runs/wae
  ae-jax train --config=wae:FILE.csv \
      --workdir=runs/wae_table

The model and data are `vae_objectives.get_config`'s: binarised digits, or a table (FILE.csv)
with the mixed likelihood.
"""

from ae_jax.configs import vae_objectives


def get_config(arg: str | None = None):
    return vae_objectives.named("wae", arg)
