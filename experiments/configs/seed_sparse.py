"""The shipped config `seed_sparse` (ae_jax/configs/seed_sparse.py).

`--config=seed_sparse` names it from any directory; this file keeps
`--config=experiments/configs/seed_sparse.py` working.
"""

from ae_jax.configs.seed_sparse import get_config  # noqa: F401
