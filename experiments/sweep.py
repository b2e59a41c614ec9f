# `python -m experiments.sweep` is `ae-jax sweep` (ae_jax/commands/sweep.py),
# run from the repository. (A comment, not a docstring: --help shows the command's own usage.)

import sys

from ae_jax.entry import main

if __name__ == "__main__":
    main(["sweep", *sys.argv[1:]])
