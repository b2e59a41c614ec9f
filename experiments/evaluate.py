# `python -m experiments.evaluate` is `ae-jax evaluate` (ae_jax/commands/evaluate.py),
# run from the repository. (A comment, not a docstring: --help shows the command's own usage.)

import sys

from ae_jax.entry import main

if __name__ == "__main__":
    main(["evaluate", *sys.argv[1:]])
