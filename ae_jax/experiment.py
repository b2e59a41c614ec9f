"""`train_and_evaluate(config, workdir)` and `train_group(configs, workdirs)`: a run, end to end.

One direction, nothing re-read: validate the configs and the data, train the group, evaluate
its K models from the parameters in memory with one batched program (PCA fitted once), then
hand the figures to a background writer, whose last step for each run writes eval.json, the
figures, TensorBoard's, and then summary.json (`evaluation/finish.py`: a group's together): a
run is "done" only once all it promises is on disk, so a run killed while being evaluated is
finished, not retrained, by the same command (it resumes from its final checkpoint, trains no
epoch, and evaluates).
"""

import contextlib
import copy
import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import cast

import jax
import ml_collections
from absl import logging

from ae_jax import config as config_lib
from ae_jax import reruns, runtime
from ae_jax import workdir as workdir_lib
from ae_jax.config import unused
from ae_jax.data import load_dataset
from ae_jax.errors import UserError, memory_error, storage_error
from ae_jax.evaluation import bounds, eval_data, evaluate, figure_data, finish, passes
from ae_jax.evaluation import figures as figures_lib
from ae_jax.evaluation.figure_worker import default_workers
from ae_jax.evaluation.figure_writer import FigureWriter
from ae_jax.models import model_from_config
from ae_jax.training import (
    chunking,
    distributed,
    group,
    loop,
    placement,
    resources,
    signals,
    startup,
    trackers,
)
from ae_jax.training.signals import StopRequests


@runtime.progress_log()
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
    """Trains the configured run (or `train.num_models` seeds of it) into `workdir`.

    Returns the summaries (one per model). With num_models = K > 1 the runs go to
    `workdir/seed=S` for S = seed .. seed + K - 1.
    """
    distributed.check_same_runs([config], [workdir])  # every host's, before any can refuse alone
    config_lib.validate(config)
    workdir = workdir_lib.as_path(workdir)
    k = config.train.num_models
    if k == 1:
        return train_group([config], [workdir])
    if workdir_lib.kind_of(os.path.realpath(workdir)) == "run":
        raise UserError(
            f"workdir {workdir!r} is one run's directory; train.num_models={k} trains {k} runs "
            f"into {os.path.join(workdir, 'seed=S')} for each seed S, which cannot lie inside a "
            "run's. Give the K runs a new workdir, or train.num_models=1 to go on with this run."
        )
    if config.train.seed + k - 1 >= 2**31:  # (each of the K is checked as train.seed, later)
        raise UserError(
            f"train.seed={config.train.seed} with train.num_models={k}: the runs' seeds "
            f"{config.train.seed}..{config.train.seed + k - 1} pass 2**31 - 1; expected "
            f"train.seed <= {2**31 - k} for {k} models."
        )
    group.check_sweep_place(workdir, holds_runs=True)  # (before the data is read)
    ds = load_dataset(config.data)  # read once, and the K models checked against memory first
    _check_fits([config] * k, ds)
    configs, workdirs = [], []
    for i in range(k):
        c = copy.deepcopy(config)
        with c.unlocked():
            c.train.seed = config.train.seed + i
            c.train.num_models = 1
        configs.append(c)
        workdirs.append(os.path.join(workdir, f"seed={c.train.seed}"))
    if left := workdir_lib.unfinished_runs(workdir, workdirs):  # (a launch with a smaller K)
        logging.warning(
            "%s also holds %s, started by an earlier launch and not finished: this one trains "
            "seeds %d..%d only and leaves them as they are; a launch whose train.seed and "
            "train.num_models cover them finishes them",
            *(workdir, ", ".join(left), config.train.seed, config.train.seed + k - 1),
        )
    return train_group(configs, workdirs, ds)


def _check_fits(configs: list, ds) -> None:
    c = configs[0]
    # The layout training will use (one that cannot work is refused here); memory per device.
    n, batch = jax.device_count(), min(int(c.train.batch_size), ds.train.shape[0])
    mode = placement.choose_mode(
        c.train.parallel, len(configs), batch, 0, n, c.train.batch_size, warn=False
    )
    model = model_from_config(c, ds.num_features, ds.image_shape, ds.preprocessor.layout())
    k = len(configs)
    n_train, n_val = ds.train.shape[0], ds.val.shape[0]
    end = passes.end_floats(c, n_val, ds.num_features)
    parts = resources.estimate(
        c, model, ds.num_features, n_train, n_val, k, ds.image_shape, mode, n, end
    )
    resources.check_fits(parts, k, mode, n)


@runtime.progress_log()
def train_group(
    configs: list,
    workdirs: list[str],
    dataset=None,
    programs: group.ProgramCache | None = None,
    figure_writer: FigureWriter | None = None,
    *,
    checked: bool = False,
    failed: Callable[[str, Exception], None] | None = None,
) -> list[dict]:
    """Trains len(configs) runs that differ only in vmappable scalars, together; evaluates them.

    Returns one summary dict per run (also written to each workdir/summary.json). A run whose
    loss turns non-finite is stopped there (its parameters stay at the last finite values) and
    marked "diverged"; the others go on. Rerunning on the same workdirs resumes the runs from
    the newest checkpoint they all have (`startup.resume_groups`: when they train as separate
    groups); finished runs are not retrained.

    Args:
        dataset: the configs' Dataset, when the caller holds it (a sweep).
        programs: compiled programs to reuse across groups (a sweep keeps one cache).
        figure_writer: renders figures in the background; the caller waits for it (a sweep
            overlaps one group's figures with the next group's training). None: a writer of
            this call's own, waited for before returning.
        checked: the caller is a sweep's launcher: it validated the configs and said their
            unused settings at launch (they were said again for each of its groups), and it
            alone starts runs in its runs/.
        failed: a run whose figures or last writes (eval.json, TensorBoard's; its
            summary.json where runs are marked done one by one, without checkpoints) fail
            after its training: `failed(workdir, error)` on the figure writer's thread, the
            other runs going on (a sweep records it: raised, it ended the sweep once every
            group was trained, the run still "pending"). None: the error is raised.
    """
    workdirs = group.check_workdirs(configs, workdirs, sweep=checked)  # ('~' expanded)
    distributed.check_same_runs(configs, workdirs)  # every host's, before any can refuse alone
    if not checked:
        if len(configs) >= 1000:  # ~1.5 ms each: 8,000 runs were checked for 12 s, unsaid
            logging.info("checking the configs of %d runs ...", len(configs))
        for i, c in enumerate(configs):
            try:
                config_lib.validate(c)
            except UserError as e:  # which of the runs, where there are several
                if len(configs) == 1:
                    raise
                raise UserError(f"configs[{i}] (workdir {workdirs[i]!r}): {e}") from None
        unused.say_unused(configs, workdirs)
    default_workers()  # AE_JAX_FIGURE_WORKERS, before reading any data
    group.check_groupable(configs)
    runtime.enable_compilation_cache(bool(configs[0].train.compilation_cache))
    runtime.raise_open_files_limit()
    # A rerun must match the run's config; raising train.epochs continues training.
    extends = [reruns.check_config(w, c) for c, w in zip(configs, workdirs, strict=True)]
    # After: a trained run's changed train.mlflow_uri is a config change, not a store without
    # its run (whose advice, to delete trackers.json's entry, then met the refusal: a probe).
    trackers.check(configs, workdirs)
    if jax.process_count() == 1:  # (the runs to train, before the data is read; one process
        # alone refusing would leave a multi-host run's others waiting: they meet EMFILE)
        pairs = zip(extends, workdirs, strict=True)
        runtime.check_open_files(sum(e or not workdir_lib.finished_summary(w) for e, w in pairs))
    reruns.say_diverged_extended([w for e, w in zip(extends, workdirs, strict=True) if e])
    if dataset is not None:
        group.check_given_dataset(configs[0], dataset)
    ds = dataset if dataset is not None else load_dataset(configs[0].data)
    ds = group.check_data_fits_config(configs, ds)
    _check_fits(configs, ds)
    for w in workdirs:
        workdir_lib.prepare(w, ds.num_features, ds.columns)
        startup.check_same_data(w, ds)
    finished = [
        None if e else workdir_lib.finished_summary(w)
        for e, w in zip(extends, workdirs, strict=True)
    ]
    if all(finished):
        logging.info(
            "%s already finished; not retraining (to train from scratch, pass a new workdir or "
            "delete this one)",
            f"all {len(workdirs)} runs" if len(workdirs) > 1 else "the run",
        )
        return cast(list[dict], finished)  # all(finished): none of them is None
    # The unfinished runs train on in groups that can resume from one epoch together.
    todo = [i for i, f in enumerate(finished) if f is None]
    parts = startup.resume_groups([workdirs[i] for i in todo])
    if any(finished) or len(parts) > 1:
        done = list(finished)
        for part in ([todo[j] for j in p] for p in parts):
            trained = train_group(
                [configs[i] for i in part],
                [workdirs[i] for i in part],
                ds,
                programs,
                figure_writer,
                checked=True,
                failed=failed,
            )
            for i, s in zip(part, trained, strict=True):
                done[i] = s
        return cast(list[dict], done)  # every None was replaced
    reruns.say_moved(configs, workdirs, finished)  # (here: once, for the runs that train)
    own = figure_writer is None
    # Worker processes only when there are figures to draw (each costs ~0.5 s of a core).
    writer = figure_writer or FigureWriter(processes=bool(configs[0].train.figures))
    try:
        # One stop request covers training, evaluation and (a writer of this call's own) the
        # background writes: none between them is lost, or left to a traceback.
        with StopRequests() as stop:
            summaries = _train_and_finish(configs, workdirs, ds, programs, writer, stop, failed)
            if own:
                writer.wait(
                    signals.while_writing(stop, configs[0].train.checkpoints, len(configs) == 1)
                )
                _say_finished(workdirs, summaries)
    except Exception as e:
        if (oom := memory_error(e)) is not None:
            raise oom from None
        if (storage := storage_error(e)) is None:
            raise
        (why, fix), more = storage, " ..." if len(workdirs) > 1 else ""
        raise UserError(
            f"cannot write to the workdir ({why}; {workdirs[0]!r}{more}): {fix}; the "
            "checkpoints already written are kept, so the same command resumes from the "
            "newest one."
        ) from None
    finally:
        if own:
            writer.close()
    return summaries


def _say_finished(workdirs: list[str], summaries: list[dict]) -> None:
    """The log's last line: the runs are finished, all they promise on disk (a new user saw the
    log end at "writing ... in the background", and could not tell that it had)."""
    diverged = sum(s.get("status") == "diverged" for s in summaries)
    said = f" ({diverged} diverged)" if diverged else ""
    where = workdirs[0] if len(workdirs) == 1 else f"{workdirs[0]} ... {workdirs[-1]}"
    logging.info("finished %d run(s)%s, summary.json written: %s", len(workdirs), said, where)


def _train_and_finish(
    configs, workdirs, ds, programs, writer: FigureWriter, stop, failed
) -> list[dict]:
    with contextlib.ExitStack() as locks:
        if distributed.is_writer():  # Other hosts of a multi-host run only compute.
            for w in workdirs:
                locks.enter_context(workdir_lib.claim_run(w))
        done = [
            workdir_lib.finished_summary(w) if not reruns.check_config(w, c) else None
            for c, w in zip(configs, workdirs, strict=True)
        ]
        if all(done):  # Finished by another process meanwhile.
            return cast(list[dict], done)  # all(done): none of them is None
        for w, d in zip(workdirs, done, strict=True):
            epochs = workdir_lib.checkpoint_epochs(w)
            if d is None and epochs and not os.path.exists(os.path.join(w, workdir_lib.METRICS)):
                workdir_lib.read_history(w, max(epochs))  # refuses, before anything compiles
        curves: dict[str, dict] = {}  # per workdir: its learning curves, being drawn

        def draw_curves(runs: list[loop.Run]) -> None:
            """Training has ended: the curves are drawn while the checkpoints are written."""
            if distributed.is_writer() and configs[0].train.figures:
                unit, is_ll = figure_data.units(configs[0], ds.val)
                for r in runs:
                    out = os.path.join(r.workdir, workdir_lib.FIGURES)
                    weighted = figure_data.kl_weighted(r.config)
                    k = int(r.config.loss.iw_samples_train)
                    todo = figures_lib.curves(out, r.history, unit, is_ll, weighted, k)
                    curves[r.workdir] = writer.start(todo)

        trained = loop.train(configs, workdirs, ds, stop, programs, draw_curves)
        locks.push(functools.partial(finish.trackers_left, trained.runs, stop))
        summaries, jobs = _evaluate(trained, stop)
        if distributed.is_writer():
            marks = finish.Marks(len(jobs), together=bool(configs[0].train.checkpoints))
            for r, summary, metrics, inputs in jobs:
                then = functools.partial(finish.finish_run, marks, r, summary, metrics)
                said = functools.partial(failed, r.workdir) if failed else None
                if inputs is None:
                    writer.submit_run(then, said)
                else:
                    writer.submit_figures(
                        os.path.join(r.workdir, workdir_lib.FIGURES),
                        inputs,
                        then,
                        curves.get(r.workdir),
                        said,
                    )
            # The runs are marked done together (`finish.Marks`), then the locks released.
            writer.submit(marks.flush)
            writer.submit(locks.pop_all().close)
        # A stop since evaluation's last look: the group's runs are written first (closing the
        # writer waits for them), then the process stops, not the next group's training.
        signals.raise_if_stopped(
            stop, "after evaluating", configs[0].train.checkpoints, "the evaluated runs are written"
        )
    return summaries


def _evaluate(trained: loop.Trained, stop) -> tuple[list[dict], list[tuple]]:
    """Summaries and, per run, what is left to write: (run, summary, eval metrics, figures)."""
    runs, k = trained.runs, len(trained.runs)
    cfg, ds = runs[0].config, trained.dataset
    software = runs[0].software  # what computed the numbers, beside them
    summaries = []
    for r in runs:
        summary = dict(r.history[-1] if r.history else {"epoch": 0, "step": 0})
        summary.update(
            {
                "status": "done" if r.running else r.status,
                "diverged_step": r.diverged_step,
                "wall_s": trained.wall_s,
                "compile_s": trained.compile_s,
                "n_params": trained.n_params,
                "num_models_together": k,
                "layout": r.layout,
                "resumed_from_epoch": trained.start_epoch,
                "best_epoch": r.checkpointer.best_epoch(),
                "software": software,
                **({"earlier_software": r.earlier_software} if r.earlier_software else {}),
            }
        )
        summaries.append(summary)
    chunking.log_summary(summaries, [r.workdir for r in runs])
    if not distributed.is_writer():
        return summaries, []

    check_stop = functools.partial(
        signals.raise_if_stopped,
        stop,
        "while evaluating"
        if cfg.eval.at_end
        else "while drawing the figures"
        if cfg.train.figures
        else "after training",
        cfg.train.checkpoints,
        "training is finished and saved",
        [r.tb for r in runs],  # (their trackers: stopped, not left running)
    )
    data = eval_data.dataset_eval_data(ds, cfg)
    configs = [r.config for r in runs]
    # A diverged run's parameters are from before its non-finite step: eval.json names the
    # epoch its summary does (the last it finished), not the group's last.
    epochs = [s["epoch"] if s["status"] == "diverged" else trained.epoch for s in summaries]
    results = None
    t0 = time.perf_counter()
    if cfg.eval.at_end:
        logging.info(
            "evaluating %d model(s) together on %d validation rows%s ...",
            k,
            ds.val.shape[0],
            f" (an importance-weighted bound, k = {n})" if (n := bounds.bound_draws(cfg)) else "",
        )
        results = evaluate.evaluate_group(
            trained.engine.model, trained.params, data, configs, epochs, stop=check_stop
        )
    check_stop()
    inputs: Sequence[figures_lib.FigureInputs | None] = [None] * k
    if cfg.train.figures:
        inputs = figure_data.figure_inputs(
            trained.engine.model,
            trained.params,
            data,
            configs,
            results,
            [r.history for r in runs],
            epochs,
        )
    check_stop()
    writing = ", ".join(
        [*(["eval.json"] if cfg.eval.at_end else []), *(["figures"] if cfg.train.figures else [])]
    )
    logging.info(
        "%s; writing %ssummaries of %d run(s) in the background",
        f"evaluated in {time.perf_counter() - t0:.2f} s"
        if cfg.eval.at_end
        else "not evaluated (eval.at_end=False)",
        f"{writing} and " if writing else "",
        k,
    )
    jobs = []
    for i, r in enumerate(runs):
        metrics = None
        if results is not None:
            metrics = dict(results[i][0], which="latest", software=software)
            if r.diverged_step is not None:  # its parameters are from before that step
                metrics["diverged_step"] = r.diverged_step
        jobs.append((r, summaries[i], metrics, inputs[i]))
    return summaries, jobs
