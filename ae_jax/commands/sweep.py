r"""Run a config's sweep (its `get_sweep()`): grouped, resumable, shardable.

  ae-jax sweep --config=ablations/sparsity --workdir=runs/sparsity
  ae-jax sweep --config=FILE --workdir=DIR --shard=2/8        # run i of n shares
  ae-jax sweep --config=FILE --workdir=DIR --launcher=ray --ray_address=auto

Rerunning the same command skips finished runs and resumes unfinished ones. Each run
writes DIR/runs/<name>/; DIR/sweep.json lists every run and its status. Overrides such
as --config.train.epochs=2 apply to every run. Then: ae-jax report --workdir=DIR
"""

import importlib.util

from absl import app, flags, logging
from ml_collections import config_flags

from ae_jax import cli
from ae_jax import sweeps as sweep
from ae_jax.cli import cli_errors
from ae_jax.errors import UserError

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command's flags (at run time, so importing this module defines none)."""
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Config with get_sweep(): a shipped name (ablations/beta_vae) or a file.",
        lock_config=True,
    )
    flags.DEFINE_string("workdir", None, "Sweep directory: runs/<name>/, sweep.json.")
    flags.DEFINE_string(
        "shard",
        "",
        "i/n: run the runs whose index is i mod n "
        "(default: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT, else all).",
    )
    flags.DEFINE_integer("max_models", 256, "At most this many runs in one compiled program.")
    flags.DEFINE_enum("launcher", "local", ["local", "ray"], "Where runs execute.")
    flags.DEFINE_string("ray_address", "", "Ray cluster address ('' = start a local Ray).")
    flags.DEFINE_float("ray_cpus", 1.0, "CPUs per Ray task (one task = one group of runs).")
    flags.DEFINE_float("ray_gpus", 0.0, "GPUs per Ray task.")
    flags.mark_flags_as_required(["config", "workdir"])


def load_sweep(path_and_arg: str) -> tuple[list[dict], list[str] | None]:
    """Calls get_sweep() (or get_sweep(arg) for FILE:arg) of the config file; returns its runs
    and the metrics it asks the report for (REPORT_METRICS, if it defines them)."""
    path, _, arg = path_and_arg.partition(":")
    spec = importlib.util.spec_from_file_location("_sweep_config", path)
    if spec is None or spec.loader is None:
        raise UserError(
            f"--config={path}: {path!r} cannot be loaded as Python; expected a .py config "
            "file defining get_sweep()."
        )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_sweep"):
        raise UserError(
            f"--config={path}: the file defines no get_sweep(); add one returning "
            "a list of override dicts (see ae_jax/sweeps/declare.py), or use "
            "experiments.main for a single run."
        )
    overrides = module.get_sweep(arg) if arg else module.get_sweep()
    if not overrides:
        raise UserError(f"--config={path}: get_sweep() returned no runs.")
    return list(overrides), getattr(module, "REPORT_METRICS", None)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.setup()
    with cli_errors():
        overrides, metrics = load_sweep(config_flags.get_config_filename(FLAGS["config"]))
        status = sweep.run_sweep(
            FLAGS.config,
            overrides,
            FLAGS.workdir,
            shard=sweep.parse_shard(FLAGS.shard),
            max_models=FLAGS.max_models,
            launcher=FLAGS.launcher,
            ray_address=FLAGS.ray_address,
            ray_cpus=FLAGS.ray_cpus,
            ray_gpus=FLAGS.ray_gpus,
            report_metrics=metrics,
        )
    for entry in status["runs"]:
        if entry["status"] in ("failed", "diverged"):
            logging.warning(
                "run %d %s %s: %s",
                entry["index"],
                entry["name"],
                entry["status"],
                entry.get("error", "").splitlines()[0] if entry.get("error") else "",
            )
    print(f"sweep.json: {status['counts']}")
