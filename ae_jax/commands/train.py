r"""Train one config (or K seeds of it together) into a workdir.

  ae-jax train --config=seed_sparse --workdir=/tmp/run \
    [--config.model.latent_dim=4] [--config.data.path=my.csv] [--config.train.num_models=8]

`ae-jax train --config=seed_sparse --helpconfig` lists every field of the config, its value
and its comment (the --config.FIELD=VALUE flags), and exits.
"""

import ast

from absl import flags, logging
from ml_collections import config_flags

from ae_jax import cli, experiment
from ae_jax.cli import cli_errors
from ae_jax.training import distributed

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command's flags (at run time, so importing this module defines none)."""
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Config: a shipped name (seed_sparse) or a file, FILE[:arg] (get_config()).",
        lock_config=True,
    )
    flags.DEFINE_string(
        "workdir", None, "The run's directory, new or to resume (config.json, checkpoints/, ...)."
    )
    flags.DEFINE_string("coordinator_address", "", "Multi-host: host:port of process 0.")
    flags.DEFINE_integer("num_processes", 0, "Multi-host: number of processes.")
    flags.DEFINE_integer("process_id", -1, "Multi-host: this process's index.")
    flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    cli.no_arguments(argv, "train")
    cli.setup(FLAGS.config)
    given = config_flags.get_config_filename(FLAGS["config"])
    path = given.partition(":")[0]
    if _defines_get_sweep(path):  # a sweep's file: its base config is what trains here
        logging.warning(
            "%s defines get_sweep(): `ae-jax train` trains its base config (get_config()) "
            "alone; `ae-jax sweep --config=%s --workdir=DIR` trains the sweep's runs",
            path,
            given,  # (with its ':ARG': without, the sweep of another data set, a probe)
        )
    with cli_errors():
        distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
        experiment.train_and_evaluate(FLAGS.config, FLAGS.workdir)


def _defines_get_sweep(path: str) -> bool:
    """Whether the config file defines or imports get_sweep() (read, not run again)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for n in tree.body:
        if isinstance(n, ast.FunctionDef) and n.name == "get_sweep":
            return True
        if isinstance(n, ast.ImportFrom) and any(
            (a.asname or a.name) == "get_sweep" for a in n.names
        ):  # experiments/ablations/*.py re-export the shipped ablations'
            return True
    return False
