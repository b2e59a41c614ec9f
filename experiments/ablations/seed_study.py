"""The shipped config `ablations/seed_study` (ae_jax/configs/ablations/seed_study.py).

`--config=ablations/seed_study` names it from any directory; this file keeps
`--config=experiments/ablations/seed_study.py` working.
"""

from ae_jax.configs.ablations.seed_study import REPORT_METRICS, get_config, get_sweep  # noqa: F401
