r"""Run a config's sweep (its `get_sweep()`): grouped, resumable, shardable.

  ae-jax sweep --config=ablations/sparsity --workdir=runs/sparsity
  ae-jax sweep --config=FILE --workdir=DIR --shard=2/8        # run i of n shares
  ae-jax sweep --config=FILE --workdir=DIR --launcher=ray --ray_address=auto

Rerunning the same command skips finished runs, resumes unfinished ones and retries failed
ones. Each run writes DIR/runs/<name>/; DIR/sweep.json lists every run and its status. The
command exits 1 when a run of its shard failed (after training the others). Overrides such as
--config.train.epochs=2 apply to every run whose sweep entry does not set the same field (a
warning names those it does). Then: ae-jax report --workdir=DIR
"""

import importlib.util
import os
import sys
import traceback

from absl import flags, logging
from ml_collections import config_flags

from ae_jax import cli
from ae_jax import sweeps as sweep
from ae_jax.cli import cli_errors
from ae_jax.config import files as config_files
from ae_jax.errors import UserError
from ae_jax.files import as_path
from ae_jax.sweeps.overrides import format_value

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
        "i/n: run the runs at places i, i + n, ... of the run names sorted "
        "(default: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT, else all).",
    )
    flags.DEFINE_integer("max_models", 256, "At most this many runs in one compiled program.")
    flags.DEFINE_enum("launcher", "local", ["local", "ray"], "Where runs execute.")
    flags.DEFINE_string("ray_address", "", "Ray cluster address ('' = start a local Ray).")
    flags.DEFINE_float("ray_cpus", 1.0, "CPUs per Ray task (one task = one group of runs).")
    flags.DEFINE_float(
        "ray_gpus", 0.0, "GPUs per Ray task (0: Ray hides the GPUs from it; it trains on CPU)."
    )
    flags.mark_flags_as_required(["config", "workdir"])


def load_sweep(path_and_arg: str) -> tuple[list[dict], list[str] | None]:
    """Calls get_sweep() (or get_sweep(arg) for FILE:arg) of the config file; returns its runs
    and the metrics it asks the report for (REPORT_METRICS; [] when it defines none)."""
    path, colon, arg = path_and_arg.partition(":")
    module = _module(path)
    config_files.check_argument(module.get_sweep, "get_sweep", path_and_arg, path, colon, arg)
    overrides = _entries(module, arg, path)
    if not overrides:
        raise UserError(f"--config={path}: get_sweep() returned no runs.")
    # Every shard and rerun loads the file and calls get_sweep(): do two loads agree?
    again = _entries(_module(path), arg, path)
    if repr(again) != repr(overrides):
        pairs = enumerate(zip(overrides, again, strict=False))
        i = next((i for i, (a, b) in pairs if repr(a) != repr(b)), None)
        differ = (
            f"{len(overrides)} then {len(again)} runs"
            if i is None
            else f"entry {i} was {overrides[i]!r:.150} then {again[i]!r:.150}"
        )
        raise UserError(
            f"--config={path}: get_sweep() returned other runs when the file was loaded and "
            f"called again ({differ}); each shard and each rerun does that, so each would "
            "train another list of runs. Seed whatever random draws it makes: "
            "sweep.random_search(n, seed, ...), random.Random(0), np.random.default_rng(0)."
        )
    return overrides, getattr(module, "REPORT_METRICS", [])


def _module(path: str):
    """The config file, loaded afresh (as another process loads it), with its get_sweep()."""
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
            "`ae-jax train` for a single run."
        )
    return module


def _entries(module, arg: str, path: str) -> list:
    """The entries of the config file's get_sweep() (a generator's are made here); its
    errors as one paragraph, saying where in the file."""
    try:
        entries = module.get_sweep(arg) if arg else module.get_sweep()
        if not isinstance(entries, dict | str | bytes) and hasattr(entries, "__iter__"):
            entries = list(entries)
    except UserError as e:  # a helper's refusal (sweep.product ...): where the file called it
        frames = [f for f in traceback.extract_tb(e.__traceback__) if _same_file(f.filename, path)]
        at = f", line {frames[-1].lineno} ({(frames[-1].line or '').strip()})" if frames else ""
        raise UserError(f"--config={path}: get_sweep(){at}: {e}") from None
    except Exception as e:  # noqa: BLE001 - the user's file: say where it broke.
        raise UserError(
            f"--config={path}: get_sweep() raised {type(e).__name__}: {e}"
            + config_files.where(e, path)
        ) from None
    if not isinstance(entries, list):  # a dict's keys were read as entries: "entry 0 is str"
        raise UserError(
            f"--config={path}: get_sweep() returned a {type(entries).__name__}; expected a list "
            "of dicts, one per run (e.g. [{'loss.beta': 1.0}, {'loss.beta': 4.0}], or "
            "ae_jax.sweeps.product(...))."
        )
    return entries


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def replaced_flags(cli_values: dict, overrides: list[dict]) -> str:
    """The warning for command-line overrides that some sweep entries set to another value,
    which wins for their runs ('' if none): the flag would otherwise be silently ignored."""
    parts, entries = [], [o for o in overrides if isinstance(o, dict)]  # the runner refuses others
    for key, value in cli_values.items():
        theirs = [o[key] for o in entries if key in o and _same(o[key]) != _same(value)]
        if theirs:
            values = ", ".join(dict.fromkeys(format_value(_same(v)) for v in theirs))
            parts.append(
                f"--config.{key}={format_value(value)} in {len(theirs)} of the "
                f"{len(overrides)} runs (their {key}: {values})"
            )
    if not parts:
        return ""
    return (
        f"sweep entries replace command-line overrides: {'; '.join(parts)}. A sweep entry's "
        "value wins for its runs; to change it, edit the config file's get_sweep()."
    )


def _same(value):
    """A value as apply_overrides sets it (JSON and YAML lists are tuples)."""
    return tuple(value) if isinstance(value, list) else value


def outcome_lines(status: dict) -> list[str]:
    """The runs that failed or diverged, a line per outcome and error (80 runs of a group
    refused for memory said the same paragraph 80 times)."""
    said: dict[tuple[str, str], list[dict]] = {}
    for entry in status["runs"]:
        if entry["status"] in ("failed", "diverged"):
            why = entry.get("error", "").splitlines()[0] if entry.get("error") else ""
            said.setdefault((entry["status"], why), []).append(entry)
    lines = []
    for (outcome, why), entries in said.items():
        named = ", ".join(f"{e['index']} {e['name']}" for e in entries[:5])
        more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        lines.append(f"run{'s' * (len(entries) > 1)} {named}{more} {outcome}: {why}")
    return lines


def _failed_line(status: dict, shard: tuple[int, int], workdir: str) -> str:
    """The last line when runs of this shard failed ('' if none): which, and what next."""
    taken = sweep.takes([e["name"] for e in status["runs"]], shard)
    failed = [e for e in status["runs"] if e["status"] == "failed" and e["name"] in taken]
    if not failed:
        return ""
    named = ", ".join(f"{e['index']} ({e['name']})" for e in failed[:5])
    where = os.path.join(workdir, "runs", "<name>", "failed.json")
    mine = len(taken)
    if len(failed) == mine:  # no other run trained: a retry fails alike unless the cause is fixed
        return (
            f"error: every one of the {mine} run(s) failed: {named}"
            f"{' ...' if len(failed) > 5 else ''}. Each error is above and in {where}; fix "
            "the cause, then rerun the same command (it retries the failed runs)."
        )
    return (
        f"error: {len(failed)} run(s) failed: {named}{' ...' if len(failed) > 5 else ''}; the "
        f"others ran. Each error is above and in {where}; rerunning the same command retries "
        "the failed runs (and skips the finished ones)."
    )


def main(argv):
    cli.no_arguments(argv, "sweep")
    cli.setup(FLAGS.config)
    with cli_errors():
        as_path(FLAGS.workdir)  # (said as the flag's, not as run_sweep()'s argument: a probe)
        overrides, metrics = load_sweep(config_flags.get_config_filename(FLAGS["config"]))
        warning = replaced_flags(config_flags.get_override_values(FLAGS["config"]), overrides)
        if warning:
            logging.warning("%s", warning)
        shard = sweep.parse_shard(FLAGS.shard)
        status = sweep.run_sweep(
            FLAGS.config,
            overrides,
            FLAGS.workdir,
            shard=shard,
            max_models=FLAGS.max_models,
            launcher=FLAGS.launcher,
            ray_address=FLAGS.ray_address,
            ray_cpus=FLAGS.ray_cpus,
            ray_gpus=FLAGS.ray_gpus,
            report_metrics=metrics,
        )
    for line in outcome_lines(status):
        logging.warning("%s", line)
    print(f"sweep.json: {status['counts']}")
    failed = _failed_line(status, shard, FLAGS.workdir)
    if failed:
        logging.flush()
        sys.stdout.flush()
        print(failed, file=sys.stderr)
        sys.exit(1)
