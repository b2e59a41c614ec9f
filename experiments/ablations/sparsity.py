"""The shipped config `ablations/sparsity` (ae_jax/configs/ablations/sparsity.py).

`--config=ablations/sparsity` names it from any directory; this file keeps
`--config=experiments/ablations/sparsity.py` working.
"""

from ae_jax.configs.ablations.sparsity import REPORT_METRICS, get_config, get_sweep  # noqa: F401
