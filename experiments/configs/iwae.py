"""The shipped config `iwae` (ae_jax/configs/iwae.py).

`--config=iwae` names it from any directory; this file keeps
`--config=experiments/configs/iwae.py` working.
"""

from ae_jax.configs.iwae import get_config  # noqa: F401
