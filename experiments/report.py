# `python -m experiments.report` is `ae-jax report` (ae_jax/commands/report.py),
# run from the repository. (A comment, not a docstring: --help shows the command's own usage.)

import sys

from ae_jax.entry import main

if __name__ == "__main__":
    main(["report", *sys.argv[1:]])
