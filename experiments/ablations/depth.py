"""The shipped config `ablations/depth` (ae_jax/configs/ablations/depth.py).

`--config=ablations/depth` names it from any directory; this file keeps
`--config=experiments/ablations/depth.py` working.
"""

from ae_jax.configs.ablations.depth import REPORT_METRICS, get_config, get_sweep  # noqa: F401
