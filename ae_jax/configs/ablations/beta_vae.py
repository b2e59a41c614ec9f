r"""beta-VAE: the trade between reconstruction and KL as beta grows, on binarised digits.

  ae-jax sweep --config=ablations/beta_vae --workdir=runs/beta_vae
  ae-jax report --workdir=runs/beta_vae

A VAE (ReLU 256-128 encoder, latent 10, mirrored decoder, Bernoulli likelihood) on
the bundled digits binarised at 0.5 (data.binarize='fixed'; nothing is written), beta in
{0.25, 0.5, 1, 2, 4, 8} x 3 seeds = 18 runs trained as one program (beta is a
vmappable scalar). The report gives eval/recon and eval/kl, active units
(Burda et al.'s 0.01 variance threshold) and the IWAE bound (k = 1000, nats).
"""

from ae_jax import sweeps as sweep
from ae_jax.config import default_config

# What the report shows (ae-jax report; --metrics overrides it).
REPORT_METRICS = (
    "vae/iwae",
    "vae/active_units",
    "eval/recon",
    "eval/kl",
    "vae/total_correlation",
    "vae/elbo",
)


def get_config():
    c = default_config()
    c.data.name, c.data.binarize, c.data.scaling = "digits", "fixed", "none"
    c.model.name, c.model.encoder_widths, c.model.latent_dim = "vae", (256, 128), 10
    c.model.activation, c.model.output_activation = "relu", "sigmoid"
    c.loss.recon = "bce"
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every = 150, 128, 0
    return c


def get_sweep():
    return sweep.product(
        {"loss.beta": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]}, {"train.seed": list(range(3))}
    )
