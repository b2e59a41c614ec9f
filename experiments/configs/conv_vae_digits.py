"""The shipped config `conv_vae_digits` (ae_jax/configs/conv_vae_digits.py).

`--config=conv_vae_digits` names it from any directory; this file keeps
`--config=experiments/configs/conv_vae_digits.py` working.
"""

from ae_jax.configs.conv_vae_digits import get_config  # noqa: F401
