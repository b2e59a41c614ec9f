# `python -m ae_jax SUBCOMMAND [flags]` is the `ae-jax` command (ae_jax/commands/__init__.py),
# for an environment whose scripts folder is not on PATH. (A comment, not a docstring: --help
# shows the subcommand's own usage.)

from ae_jax.entry import main

if __name__ == "__main__":
    main()
