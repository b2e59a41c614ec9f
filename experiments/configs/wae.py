"""The shipped config `wae` (ae_jax/configs/wae.py).

`--config=wae` names it from any directory; this file keeps
`--config=experiments/configs/wae.py` working.
"""

from ae_jax.configs.wae import get_config  # noqa: F401
