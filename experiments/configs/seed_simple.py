"""The shipped config `seed_simple` (ae_jax/configs/seed_simple.py).

`--config=seed_simple` names it from any directory; this file keeps
`--config=experiments/configs/seed_simple.py` working.
"""

from ae_jax.configs.seed_simple import get_config  # noqa: F401
