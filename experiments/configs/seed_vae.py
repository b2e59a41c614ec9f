"""The shipped config `seed_vae` (ae_jax/configs/seed_vae.py).

`--config=seed_vae` names it from any directory; this file keeps
`--config=experiments/configs/seed_vae.py` working.
"""

from ae_jax.configs.seed_vae import get_config  # noqa: F401
