r"""InfoVAE (Zhao et al. 2019, alpha = 0): the ELBO plus the MMD between q(z) and the
prior (loss.mmd_weight=100).

  ae-jax train --config=info_vae --workdir=runs/info_vae
  ae-jax train --config=info_vae:FILE.csv \
      --workdir=runs/info_vae_table

The model and data are `vae_objectives.get_config`'s: binarised digits, or a table (FILE.csv)
with the mixed likelihood.
"""

from ae_jax.configs import vae_objectives


def get_config(arg: str | None = None):
    return vae_objectives.named("info_vae", arg)
