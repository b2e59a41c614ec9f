r"""The seed's variational autoencoder, with its two sampling mistakes corrected.

  ae-jax train --config=seed_vae --workdir=/tmp/seed_vae

prints one line per epoch (train/eval loss = the negative ELBO's form, nats per row: a
Bernoulli cross-entropy of the min-max scaled features, whose bound is of no
log-likelihood, eval.json says; recon, kl; rows/s; ETA), a summary table, and writes
figures/samples.png; eval/loss ends below its first-epoch value. Add
`--config.data.path=FILE.csv` for your own table.

As in the blog's VAE: a ReLU hidden layer, a Gaussian posterior (mean and log
variance heads), a 2-D latent, a sigmoid decoder trained with binary cross-entropy
summed over features (the blog's `original_dim * binary_crossentropy`), plus the
KL to N(0, I), adam. Two corrections:
- The blog sampled eps with std 0.1 (`epsilon_std`); the reparameterisation of
  q(z|x) = N(mean, sigma^2) needs eps ~ N(0, 1), which we use.
- The blog's sampling used exp(z_log_var) as the std while its KL read z_log_var
  as log sigma^2; we treat the head as log sigma^2 everywhere: std = exp(logvar/2).
"""

from ae_jax.configs import seed_simple


def get_config(arg: str | None = None):
    c = seed_simple.get_config(arg)
    c.model.name = "vae"
    c.model.encoder_widths = (12,)
    c.model.latent_dim = 2
    c.model.activation = "relu"
    c.model.code_activation = "identity"  # (seed_simple's sigmoid: no VAE applies one)
    c.model.output_activation = "sigmoid"
    c.loss.recon = "bce"
    c.loss.beta = 1.0
    c.train.batch_size = 100
    c.train.epochs = 30
    return c
