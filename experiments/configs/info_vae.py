"""The shipped config `info_vae` (ae_jax/configs/info_vae.py).

`--config=info_vae` names it from any directory; this file keeps
`--config=experiments/configs/info_vae.py` working.
"""

from ae_jax.configs.info_vae import get_config  # noqa: F401
