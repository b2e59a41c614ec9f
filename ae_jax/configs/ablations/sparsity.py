r"""Sparsity: where does an L1 penalty on the code actually make it sparse?

  ae-jax sweep --config=ablations/sparsity --workdir=runs/sparsity
  ae-jax report --workdir=runs/sparsity

The seed's sparse AE (code 9) on the bundled breast-cancer table, trained to
convergence (300 epochs, batch 100): L1 weight in {0, 1e-5, 1e-4, 1e-3, 1e-2}, extended
by 0.1 and 1 because that is where sparsity appears, x code activation (sigmoid as in
the seed, ReLU) x 5 seeds = 70 runs. Within one activation the L1 weights and seeds
differ only in vmappable scalars, so each activation trains as one program of 35
models. Compare eval/recon with code/near_zero_fraction (|code| < eval.near_zero).
"""

from ae_jax import sweeps as sweep
from ae_jax.configs import seed_sparse

# What the report shows (ae-jax report; --metrics overrides it).
REPORT_METRICS = (
    "eval/mse",
    "eval/recon",
    "code/near_zero_fraction",
    "code/l1_per_row",
    "ae_over_pca",
)


def get_config():
    c = seed_sparse.get_config()
    c.data.name = "breast_cancer"
    c.train.epochs, c.train.batch_size = 300, 100
    c.train.checkpoint_every = 0
    return c


def get_sweep():
    return sweep.product(
        {"model.code_activation": ["sigmoid", "relu"]},
        {"loss.l1_weight": [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]},
        {"train.seed": list(range(5))},
    )
