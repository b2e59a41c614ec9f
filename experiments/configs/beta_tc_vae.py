"""The shipped config `beta_tc_vae` (ae_jax/configs/beta_tc_vae.py).

`--config=beta_tc_vae` names it from any directory; this file keeps
`--config=experiments/configs/beta_tc_vae.py` working.
"""

from ae_jax.configs.beta_tc_vae import get_config  # noqa: F401
