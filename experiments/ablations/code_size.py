"""The shipped config `ablations/code_size` (ae_jax/configs/ablations/code_size.py).

`--config=ablations/code_size` names it from any directory; this file keeps
`--config=experiments/ablations/code_size.py` working.
"""

from ae_jax.configs.ablations.code_size import REPORT_METRICS, get_config, get_sweep  # noqa: F401
