# `python -m experiments.main` is `ae-jax train` (ae_jax/commands/train.py),
# run from the repository. (A comment, not a docstring: --help shows the command's own usage.)

import sys

from ae_jax.entry import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
