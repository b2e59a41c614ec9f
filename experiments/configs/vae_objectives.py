"""The shipped config `vae_objectives` (ae_jax/configs/vae_objectives.py).

`--config=vae_objectives` names it from any directory; this file keeps
`--config=experiments/configs/vae_objectives.py` working.
"""

from ae_jax.configs.vae_objectives import get_config  # noqa: F401
