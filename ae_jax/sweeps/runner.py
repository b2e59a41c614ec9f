"""Running sweeps: grouped, resumable, sharded, optionally on Ray.

The runs come from a config's `get_sweep()` (see `declare.py`). Run i is addressed by its
index in that list and named by its overrides (`loss.l1_weight=0.0001,train.seed=3`); it
writes the usual workdir contract to `DIR/runs/<name>/`. Runs that differ only in vmappable
scalars train together as one program (`experiment.train_group`); the rest run one group
after another, sharing compiled programs and the data, with each group's figures drawn while
the next one trains.
`DIR/sweep.json` lists every run with its status, rebuilt from the run directories (the source
of truth), so any number of processes can share DIR. A run directory is claimed with the
workdir lock before training, so two processes never train the same run; a failed (in training
or in its last writes) or diverged run is recorded and the sweep goes on.
"""

import contextlib
import dataclasses
import functools
import importlib.util
import math
import numbers
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping

import jax
from absl import logging

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import experiment, reruns, runtime
from ae_jax import workdir as workdir_lib
from ae_jax.config import unused
from ae_jax.errors import UserError, storage_error
from ae_jax.evaluation.figure_worker import default_workers
from ae_jax.evaluation.figure_writer import FigureWriter
from ae_jax.sweeps import checks, ray_launch, report_files, shards
from ae_jax.sweeps import overrides as overrides_lib
from ae_jax.sweeps.status import Run, listed, mark_failed, unlisted, write_status
from ae_jax.training import startup
from ae_jax.training.group import ProgramCache, signature_key
from ae_jax.training.signals import Interrupted, StopRequests, stop_file, while_writing


def plan(
    base, runs: list[Run], max_models: int = 256, valid: dict | None = None
) -> tuple[list[list[Run]], dict]:
    """Groups runs by static config into chunks of at most `max_models`.

    Runs whose overrides are invalid are marked failed here and left out (`valid`: configs by
    run index already built and validated, as `run_sweep` does before any run). Returns
    (chunks, configs by run index).
    """
    configs = {}
    for run in runs:
        if valid is not None and run.index in valid:
            configs[run.index] = valid[run.index]
            continue
        try:
            c = overrides_lib.apply_overrides(base, run.overrides)
            config_lib.validate(c)
            configs[run.index] = c
        except UserError as e:
            mark_failed([run], str(e))
    groups: dict[str, list[Run]] = {}
    for run in runs:
        if run.index in configs:
            key = signature_key(configs[run.index])
            groups.setdefault(key, []).append(run)
    chunks = [g[i : i + max_models] for g in groups.values() for i in range(0, len(g), max_models)]
    return chunks, configs


def train_runs(
    base,
    runs: list[Run],
    max_models: int = 256,
    progress: Callable[[], object] | None = None,
    valid: dict | None = None,
    datasets: dict | None = None,
) -> None:
    """Trains `runs` in this process: claims each, groups by static config, trains groups.

    Runs finished or claimed by another process are skipped; a run whose overrides or
    training fail is marked failed (DIR/runs/<name>/failed.json) and the rest go on.
    Groups with equal shapes reuse compiled programs through JAX's compilation cache.
    `progress` is called after each group's summaries are written (the sweep rebuilds
    sweep.json then, so it tells how far a long sweep is). `valid`: as for `plan`;
    `datasets`: data sets already read, by `checks.data_key` (`checks.load_shared_data`).
    """
    chunks, configs = plan(base, runs, max_models, valid)
    runtime.raise_open_files_limit()  # (a run's lock is taken here, before train_group)
    # One stop for the whole sweep: a signal between groups (loading data, checking workdirs)
    # stops before the next group, once the groups trained are written.
    with StopRequests() as stop, _figure_writer(configs.values()) as writer:
        shared = _Shared(dict(datasets or {}), ProgramCache(), writer, progress)
        on = all(c.train.checkpoints for c in configs.values())
        for chunk in chunks:
            # The group before is written as this one trains (as far as the open-file limit
            # allows), not the ones before it: a stop waits for one group's writes at most.
            room = functools.partial(runtime.room_for, len(chunk))
            writer.throttle(len(chunk), lambda: stop.signum is not None, room)
            if stop.signum is not None:
                raise Interrupted(
                    stop.signum,
                    "between the sweep's groups",
                    "every group trained so far is finished and written",
                    "run the same command again to train the rest",
                )
            _train_chunk(chunk, configs, shared)
            if progress is not None:
                writer.submit(progress)
        writer.wait(while_writing(stop, on))  # the last groups' figures and summaries


def _figure_writer(configs) -> FigureWriter:
    """A writer with drawing worker processes only when some run draws figures."""
    return FigureWriter(processes=any(c.train.figures for c in configs))


def _ray_chunk(base, chunk: list[Run], stop_path: str) -> bool:
    """A Ray task: trains one chunk in a worker process (shared workdir). Whether it stopped
    (`stop_path` written by the driver: the runs under way saved their state) or ran to the end."""
    if os.path.exists(stop_path):  # (the sweep stopped before this task started)
        return True
    runtime.quiet_library_logs()
    configs = {r.index: overrides_lib.apply_overrides(base, r.overrides) for r in chunk}
    try:
        with stop_file(stop_path), _figure_writer(configs.values()) as writer:
            _train_chunk(chunk, configs, _Shared({}, ProgramCache(), writer))
    except Interrupted:
        return True
    return False


def _checked_arguments(base, overrides, workdir, report_metrics) -> tuple[list, str]:
    """run_sweep's arguments from the Python API, checked before any work: a ConfigDict, the
    entries as a list of dicts (any iterable of them: a generator was read as no runs), a
    directory path (`~` expanded), and REPORT_METRICS as a list of names."""
    config_lib.check_is_config(base)
    if isinstance(overrides, str | bytes | Mapping) or not isinstance(overrides, Iterable):
        raise UserError(
            f"run_sweep: got entries {overrides!r:.80}; expected a list of dicts (dotted field "
            "-> value, one dict per run), as a config file's get_sweep() returns."
        )
    overrides = list(overrides)  # (a generator was read as no runs; each entry: checks.expand)
    if not overrides:  # (it wrote sweep.json: a later launch was checked against its base)
        raise UserError(
            "run_sweep: got no entries; expected a list of at least one dict (dotted field -> "
            "value, one dict per run; {} for a run of the base config as it is)."
        )
    metrics = report_metrics
    if metrics is not None and (
        not isinstance(metrics, list | tuple) or not all(isinstance(m, str) for m in metrics)
    ):
        raise UserError(
            f"report_metrics={metrics!r:.80}: expected a list of metric names (e.g. "
            "['recon/mse']), as a config file's REPORT_METRICS, or None."
        )
    return overrides, workdir_lib.as_path(workdir, "run_sweep: workdir")


@runtime.progress_log()
def run_sweep(
    base,
    overrides: list[dict],
    workdir: str,
    shard: tuple[int, int] = (0, 1),
    max_models: int = 256,
    launcher: str = "local",
    ray_address: str = "",
    ray_cpus: float = 1.0,
    ray_gpus: float = 0.0,
    report_metrics: list[str] | None = None,
) -> dict:
    """Runs this shard's share of the sweep; returns the rebuilt sweep.json.

    `report_metrics` (the config file's REPORT_METRICS) are saved for `report.write_report`;
    an empty list (a config file that defines none) removes those an earlier launch saved, and
    None (the API's default) leaves them.

    Shard i of n takes every n-th run of the runs' names sorted, from the i-th, so n processes
    with i = 0..n-1 on one shared workdir cover every run exactly once.
    """
    launched = time.time()  # a later launch's list of runs replaces this one's (`write_status`)
    overrides, workdir = _checked_arguments(base, overrides, workdir, report_metrics)
    if launcher not in ("local", "ray"):
        raise UserError(f"--launcher={launcher!r}; expected 'local' or 'ray'.")
    if launcher == "ray" and importlib.util.find_spec("ray") is None:
        raise UserError(
            '--launcher=ray needs Ray: pip install "ae_jax[ray]" (in a checkout: pip install '
            '-e ".[ray]").'
        )
    if (
        not isinstance(max_models, numbers.Integral)
        or isinstance(max_models, bool)
        or max_models < 1
    ):
        raise UserError(f"--max_models={max_models!r}; expected a positive whole number of models.")
    for flag, value in (("--ray_cpus", ray_cpus), ("--ray_gpus", ray_gpus)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise UserError(f"{flag}={value!r}; expected a number of CPUs/GPUs per task >= 0.")
    shard = shards.check_shard(shard)
    default_workers()  # AE_JAX_FIGURE_WORKERS, before any data is read
    workdir_lib.check_kind(workdir, "sweep", report_files.entries(workdir))
    runs = checks.expand(overrides, workdir)
    valid = checks.valid_configs(base, runs)  # a misspelt field, a bad value: before any run
    i, n = shard
    taken = shards.takes([r.name for r in runs], shard)  # by name: any order of the list
    mine = [r for r in runs if r.name in taken]
    checks.check_unchanged(base, runs, workdir, valid)  # every shard's: another config is no rerun
    left = [r for r in mine if not checks.finished(r, valid[r.index])]  # (said below, too)
    checks.check_run_folders(left, workdir)
    if launcher == "local":  # (Ray: a task's devices and open-file limit are its node's)
        chunks = plan(base, mine, max_models, valid)[0]
        if any(valid[r.index].train.parallel == "models" for r in mine):
            checks.check_models_split(chunks, max_models, valid, shard)
        checks.check_open_files(chunks, {r.index for r in left})
    overrides = [r.overrides for r in runs]
    names = [r.name for r in runs]
    shards.check_same_base(workdir, base, overrides, False, names)  # before reading the data
    # A file no run can read: one error (a Ray sweep's tasks read the data on their nodes).
    datasets = checks.load_shared_data(mine, valid) if launcher == "local" else {}
    if datasets:  # (a Ray sweep's driver starts no JAX backend: on a GPU it took the memory)
        checks.check_batch_split(mine, valid, datasets, jax.device_count())
    checks.check_data_fits(mine, valid, datasets)
    # Ray started (or reached) and asked for the resources before anything is recorded; not
    # for a rerun with nothing left to train (it started Ray and submitted every group: 7 s).
    unused.say_unused([valid[r.index] for r in left], [r.workdir for r in left])  # (once)
    todo = left if launcher == "ray" else mine
    ray = (
        ray_launch.connect(ray_address, ray_cpus, ray_gpus) if launcher == "ray" and todo else None
    )
    shards.check_same_base(workdir, base, overrides, names=names)  # again, locked, recorded
    epochs = {i: int(c.train.epochs) for i, c in valid.items()}  # a done run with fewer: pending
    before = listed(workdir)
    if n > 1 and before is not None and set(before) != set(names):
        logging.warning(
            "sweep: this shard's list of %d runs is not the one sweep.json holds from an "
            "earlier launch (%d runs, other runs: get_sweep() changed?). Shard i/%d takes the "
            "runs at places i, i + %d, ... of the list's names sorted, so shards launched with "
            "different lists can leave runs untrained: launch every shard, 0/%d to %d/%d, with "
            "this list",
            *(len(runs), len(before), n, n, n, n - 1, n),
        )
    if gone := unlisted(workdir, runs):
        logging.warning(
            "sweep: %d run(s) that sweep.json listed are not in this launch's list (the config "
            "file's get_sweep() changed?): %s; their directories are kept, but sweep.json no "
            "longer lists them and reports leave them out",
            len(gone),
            ", ".join(gone[:5]) + (" ..." if len(gone) > 5 else ""),
        )
    write_status(workdir, runs, epochs, launched)
    chosen = os.path.join(workdir, workdir_lib.REPORT_METRICS)
    if report_metrics:
        workdir_lib.write_json(chosen, {"metrics": list(report_metrics)})
    elif report_metrics is not None and os.path.exists(chosen):  # the config defines none now
        os.remove(chosen)
    done = len(mine) - len(left)  # ("takes 4" read as 4 to train)
    ended = sum(checks.trained_through(r, valid[r.index]) for r in left)  # (killed after it)
    said = f"{len(left) - ended} to train" + f", {ended} to evaluate" * bool(ended)
    said = f" ({done} of them finished: {said})" if done or ended else ""
    logging.info("sweep: %d runs, shard %d/%d takes %d%s", len(runs), i, n, len(mine), said)
    progress = lambda: write_status(workdir, runs, epochs, launched)
    try:
        if launcher == "local":
            train_runs(base, mine, max_models, progress, valid, datasets)
        elif todo:
            chunks, _ = plan(base, todo, max_models)
            task = ray.remote(num_cpus=ray_cpus, num_gpus=ray_gpus)(_ray_chunk)
            arguments = [(base, chunk) for chunk in chunks]
            ray_launch.run(ray, ray_address, task, arguments, workdir, progress)
    except BaseException as e:  # stopped or failed runs are no longer running
        with contextlib.suppress(Exception):  # (on a full disk too, the error is said)
            write_status(workdir, runs, epochs, launched)
        if (storage := storage_error(e)) is None:
            raise
        (why, fix) = storage
        raise UserError(f"cannot write the sweep's runs ({why}): {fix}; {_KEPT}.") from None
    status = write_status(workdir, runs, epochs, launched)
    logging.info("sweep: %s", ", ".join(f"{v} {k}" for k, v in status["counts"].items() if v))
    return status


# (a group's figures and summaries, written in the background, met a full or read-only disk)
_KEPT = "the runs written are kept, and the same command finishes the others"


@dataclasses.dataclass
class _Shared:
    """What the groups of one process share: data sets, compiled programs, the figure writer."""

    datasets: dict
    programs: ProgramCache
    writer: FigureWriter
    # Called on the writer's thread once a group's runs are claimed: sweep.json lists them as
    # running (rebuilt only at the launch and after each group, it said "pending" throughout).
    claimed: Callable[[], object] | None = None


def _train_chunk(chunk: list[Run], configs: dict, shared: _Shared) -> None:
    with contextlib.ExitStack() as stack:
        claimed = []
        for run in chunk:
            if checks.finished(run, configs[run.index]):
                continue
            os.makedirs(run.workdir, exist_ok=True)
            try:
                stack.enter_context(workdir_lib.WorkdirLock(run.workdir))
            except UserError:
                logging.info(
                    "run %d (%s) is being trained by another process; skipped", run.index, run.name
                )
                continue
            if checks.finished(run, configs[run.index]):  # finished while we were claiming
                continue
            stale = os.path.join(run.workdir, workdir_lib.FAILED)
            if os.path.exists(stale):
                os.remove(stale)  # retried now
            try:  # a run that cannot continue (its checkpoints gone, a folder of other files)
                workdir_lib.check_kind(run.workdir, "run")  # fails alone, not its group
                reruns.check_config(run.workdir, configs[run.index])
            except UserError as e:
                mark_failed([run], str(e))
                continue
            claimed.append(run)
        if not claimed:
            return
        if shared.claimed is not None:  # (after the groups before it are written, in order)
            shared.writer.submit(shared.claimed)
        for part in startup.resume_groups([r.workdir for r in claimed]):
            _train_group(
                [claimed[i] for i in part], [configs[claimed[i].index] for i in part], shared
            )
        # The claims are released after the groups' figures and summaries are written.
        shared.writer.submit(stack.pop_all().close)


def _train_group(runs: list[Run], cfgs: list, shared: _Shared) -> None:
    """Trains runs that resume from one epoch; a failure is recorded for them alone."""
    key = checks.data_key(cfgs[0])
    try:
        if key not in shared.datasets:  # the sweep's other runs of this data config: the same
            ds = data_lib.load_dataset(cfgs[0].data)
            shards.check_same_data(runs[0].workdir, cfgs[0], ds)
            shared.datasets[key] = ds
        ended = all(checks.trained_through(r, c) for r, c in zip(runs, cfgs, strict=True))
        logging.info(
            "%s %d run(s) together: %s",
            "evaluating (trained to the end before)" if ended else "training",
            len(runs),
            ", ".join(r.name for r in runs[:4]) + (" ..." if len(runs) > 4 else ""),
        )
        experiment.train_group(
            cfgs,
            [r.workdir for r in runs],
            dataset=shared.datasets[key],
            programs=shared.programs,
            figure_writer=shared.writer,
            checked=True,  # (validated, and unused settings said, at launch)
            failed=functools.partial(_finish_failed, runs),
        )
    except Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - recorded per run; the sweep goes on.
        mark_failed(runs, _said(e))


def _finish_failed(runs: list[Run], workdir: str, e: Exception) -> None:
    """A run whose figures or last writes failed (on the figure writer's thread): recorded,
    and the sweep goes on; a full or read-only disk (or a run not of `runs`) is raised, said
    once at the sweep's end."""
    if storage_error(e) is not None or not (run := [r for r in runs if r.workdir == workdir]):
        raise e
    mark_failed(run, _said(e))


def _said(e: Exception) -> str:
    """A run's failure as recorded: a UserError's paragraph, else its type, text and where."""
    if isinstance(e, UserError):
        return str(e)
    return f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exception(e, limit=8))
