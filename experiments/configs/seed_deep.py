"""The shipped config `seed_deep` (ae_jax/configs/seed_deep.py).

`--config=seed_deep` names it from any directory; this file keeps
`--config=experiments/configs/seed_deep.py` working.
"""

from ae_jax.configs.seed_deep import get_config  # noqa: F401
