"""The shipped config `conv_ae_mnist` (ae_jax/configs/conv_ae_mnist.py).

`--config=conv_ae_mnist` names it from any directory; this file keeps
`--config=experiments/configs/conv_ae_mnist.py` working.
"""

from ae_jax.configs.conv_ae_mnist import get_config  # noqa: F401
