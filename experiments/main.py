"""`python -m experiments.main` is `ae-jax train` (ae_jax/commands/train.py),
run from the repository."""

import sys

from ae_jax.commands import run

if __name__ == "__main__":
    run(["train", *sys.argv[1:]])
