"""`python -m experiments.sweep` is `ae-jax sweep` (ae_jax/commands/sweep.py),
run from the repository."""

import sys

from ae_jax.commands import run

if __name__ == "__main__":
    run(["sweep", *sys.argv[1:]])
