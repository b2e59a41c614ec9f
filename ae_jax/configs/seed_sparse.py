r"""The seed's sparse autoencoder: the simple AE plus an L1 activity penalty on the code.

  ae-jax train --config=seed_sparse --workdir=/tmp/seed_sparse

prints one line per epoch (train/eval loss, recon, l1, kl; rows/s; ETA) and a
summary table; eval/mse falls every epoch. Add `--config.data.path=FILE.csv` for
your own table.

The seed wrote `activity_regularizer=regularizers.l1(10e-5)`, i.e. 1e-4 times the
sum of |code| per row, kept here as `loss.l1_weight = 1e-4`. Keras' mse averages
over the D features while ours sums them (README: loss convention), so relative
to the reconstruction this penalty is D times weaker than in the seed; set
`--config.loss.l1_weight` to 1e-4 x D, D the features the log names, to match the
seed's balance (1.8e-3 on the purchase table's 18, 3e-3 on the bundled table's 30), if
the seed's Keras divided the penalty by the batch size as tf.keras does (a Keras that
summed it over the batch made it B times stronger per row; README: loss convention).
With sigmoid codes either weight leaves the code dense (see the sparsity ablation).
"""

from ae_jax.configs import seed_simple


def get_config(arg: str | None = None):
    c = seed_simple.get_config(arg)
    c.loss.l1_weight = 1e-4
    return c
