"""The shipped config `ablations/beta_vae` (ae_jax/configs/ablations/beta_vae.py).

`--config=ablations/beta_vae` names it from any directory; this file keeps
`--config=experiments/ablations/beta_vae.py` working.
"""

from ae_jax.configs.ablations.beta_vae import REPORT_METRICS, get_config, get_sweep  # noqa: F401
