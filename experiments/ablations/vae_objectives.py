"""The shipped config `ablations/vae_objectives` (ae_jax/configs/ablations/vae_objectives.py).

`--config=ablations/vae_objectives` names it from any directory; this file keeps
`--config=experiments/ablations/vae_objectives.py` working.
"""

from ae_jax.configs.ablations.vae_objectives import REPORT_METRICS, get_config, get_sweep  # noqa: F401
