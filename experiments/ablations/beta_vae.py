r"""beta-VAE: the trade between reconstruction and KL as beta grows, on binarised digits.

  python -m experiments.sweep --config=experiments/ablations/beta_vae.py --workdir=runs/beta_vae
  python -m experiments.report --workdir=runs/beta_vae

A VAE (ReLU 256-128 encoder, latent 10, mirrored decoder, Bernoulli likelihood) on
digits binarised at 0.5 (written once to runs/.data/digits_binary.npy), beta in
{0.25, 0.5, 1, 2, 4, 8} x 3 seeds = 18 runs trained as one program (beta is a
vmappable scalar). The report gives eval/recon and eval/kl, active units
(Burda et al.'s 0.01 variance threshold) and the IWAE bound (k = 1000, nats).
"""

import os

import numpy as np

from ae_jax import sweeps as sweep
from ae_jax.config import default_config

DATA = os.path.join("runs", ".data", "digits_binary.npy")


def binarised_digits(path: str = DATA) -> str:
    """Writes digits with pixels > 0.5 (of 16) as 1, else 0, once; returns the path."""
    if not os.path.exists(path):
        from sklearn.datasets import load_digits

        os.makedirs(os.path.dirname(path), exist_ok=True)
        x = (load_digits().images / 16.0 > 0.5).astype(np.float32)
        np.save(path, x)
    return path


def get_config():
    c = default_config()
    c.data.path, c.data.scaling = binarised_digits(), "none"
    c.model.name, c.model.encoder_widths, c.model.latent_dim = "vae", (256, 128), 10
    c.model.activation, c.model.output_activation = "relu", "sigmoid"
    c.loss.recon = "bce"
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every = 150, 128, 0
    return c


def get_sweep():
    return sweep.product({"loss.beta": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]},
                         {"train.seed": list(range(3))})
