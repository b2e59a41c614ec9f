"""`python -m experiments.evaluate` is `ae-jax evaluate` (ae_jax/commands/evaluate.py),
run from the repository."""

import sys

from ae_jax.commands import main

if __name__ == "__main__":
    main(["evaluate", *sys.argv[1:]])
