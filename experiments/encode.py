# `python -m experiments.encode` is `ae-jax encode` (ae_jax/commands/encode.py),
# run from the repository. (A comment, not a docstring: --help shows the command's own usage.)

import sys

from ae_jax.entry import main

if __name__ == "__main__":
    main(["encode", *sys.argv[1:]])
