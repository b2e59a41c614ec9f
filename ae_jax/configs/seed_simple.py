r"""The seed's simple autoencoder: one code layer of 9 sigmoid units.

  ae-jax train --config=seed_simple --workdir=/tmp/seed_simple

prints one line per epoch (train and eval loss per term, rows/s, ETA) and a summary
table; on the bundled breast-cancer table (455 train / 114 val rows, 30 features,
min-max scaled) eval/mse falls every epoch. On the purchase table:

  ae-jax train --config=seed_simple \
    --workdir=/tmp/seed_simple_csv --config.data.path=online_shoppers_intention.csv

As in Chollet's "Building Autoencoders in Keras": Dense(9, sigmoid) encoder,
Dense(D, sigmoid) decoder, MSE, adam, batch 1000, 5 epochs, shuffled, with a
validation split. Adam's eps is Keras' 1e-7 (optax's default is 1e-8). Our MSE
sums over features (see the README's loss convention); `eval/mse` is Keras' mse.

The seed configs take an optional argument, the data: `--config=seed_simple:digits` (a
bundled or image set name, as data.name) or `--config=seed_simple:my.csv` (a file, as
data.path); without it they train on the bundled breast-cancer table.
"""

import os

from ae_jax.config import default_config


def with_data(c, arg: str | None):
    """Applies a seed config's optional argument: a data set name, or a file (has a suffix)."""
    if arg:
        if os.path.splitext(arg)[1]:
            c.data.path = arg
        else:
            c.data.name = arg
    return c


def get_config(arg: str | None = None):
    c = default_config()
    c.model.name = "autoencoder"
    c.model.encoder_widths = ()
    c.model.latent_dim = 9
    c.model.code_activation = "sigmoid"
    c.model.output_activation = "sigmoid"
    c.loss.recon = "mse"
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.eps = 1e-7
    c.train.batch_size = 1000
    c.train.epochs = 5
    c.train.shuffle = True
    return with_data(c, arg)
