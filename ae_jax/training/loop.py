"""The group-run loop: K runs that share a static config, trained as one compiled program.

`train(configs, workdirs, ds, stop)` compiles (or takes from a `ProgramCache`) the group's
programs, resumes from the newest checkpoint every run has, and trains epoch by epoch. Each
epoch is a `lax.scan` over device-resident data, split into chunks when one epoch would run
long, so a line reports progress at most every `train.log_seconds` and a stop request
(SIGTERM, Ctrl-C) is acted on within one chunk. It writes metrics.jsonl, TensorBoard scalars,
config.json, preprocessor.json and checkpoints, and returns a `Trained` record holding the
final parameters in memory: evaluation and figures (`ae_jax.experiment`) start from it without
reading anything back from disk.
"""

import dataclasses
import json
import os
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from absl import logging

from ae_jax import runtime
from ae_jax import workdir as workdir_lib
from ae_jax.data import Dataset
from ae_jax.files import write_atomic
from ae_jax.training import chunking, distributed, objective, placement, signals, startup, trackers
from ae_jax.training import engine as engine_lib
from ae_jax.training import hparams as hparams_lib
from ae_jax.training.checkpoint import Checkpointer, NullCheckpointer, save_group
from ae_jax.training.group import ProgramCache, signature_key
from ae_jax.training.partial import Partial
from ae_jax.training.writers import MultiWriter

_METRIC_ORDER = (
    "loss",
    "recon",
    "l1",
    "kl",
    "kl_weight",
    "iw_bound",
    "tc",
    "mi",
    "dim_kl",
    "mmd",
    "sparsity",
    "mse",
    "grad_norm",
)


@dataclasses.dataclass
class Run:
    """One run of a group: its config, workdir and what training has recorded for it."""

    config: ml_collections.ConfigDict
    workdir: str
    hyper: dict
    checkpointer: Checkpointer | NullCheckpointer
    history: list[dict] = dataclasses.field(default_factory=list)
    status: str = "running"  # running | diverged (a finished run that never diverged: done)
    layout: str = ""  # the device layout it trains under (Placement.describe), as checkpointed
    software: dict = dataclasses.field(default_factory=dict)  # runtime.software(), likewise
    earlier_software: list = dataclasses.field(default_factory=list)  # of its earlier epochs
    # metrics of the group's loss not recorded for this run (objective.group_only_metrics)
    dropped: frozenset = frozenset()
    diverged_step: int | None = None
    tb: MultiWriter | None = None  # TensorBoard and the trackers of train.loggers

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclasses.dataclass
class Trained:
    """What a group's training hands on, in memory."""

    runs: list[Run]
    engine: engine_lib.Engine
    params: object  # the K models' final parameters, stacked on a leading axis, on the host
    dataset: Dataset
    epoch: int  # the last epoch trained (or restored)
    start_epoch: int
    wall_s: float
    compile_s: float
    n_params: int


@dataclasses.dataclass
class _Compiled:
    engine: engine_lib.Engine
    init: Callable
    epoch_fn: Callable
    eval_fn: Callable
    chunk: int  # training steps per compiled chunk


def ordered(metrics) -> list[str]:
    """Metric names in reading order (loss first), whatever order the pytree gave."""
    rank = {n: i for i, n in enumerate(_METRIC_ORDER)}
    return sorted(metrics, key=lambda n: (rank.get(n, len(rank)), n))


def _compile(cfg, ds, k, terms, place, hypers, x_train_d, xv, mv, cache) -> _Compiled:
    n_train = ds.train.shape[0]
    layout = ds.preprocessor.layout()
    key = (
        signature_key(cfg),
        ds.num_features,
        n_train,
        ds.val.shape[0],
        k,
        terms,
        ds.image_shape,
        place.mode,
        place.n,
        layout if cfg.loss.recon == "mixed" else None,
    )
    found = cache.get(key) if cache is not None else None
    if found is not None:
        logging.info("compiled programs reused from an earlier group of this process")
        return found
    logging.info("compiling %d model(s) %s (%s) ...", k, cfg.model.name, place.describe())
    engine = engine_lib.Engine(
        cfg,
        ds.num_features,
        n_train,
        terms=terms,
        image_shape=ds.image_shape,
        dynamic_binarize=ds.dynamic_binarize,
        batch_sharding=place.batch_sharding,
        layout=layout,
        num_val=ds.val.shape[0],
    )
    replicated = None if place.mesh is None else place.replicated_sharding
    progs = engine.compile(k, place.state_sharding, replicated)
    states = engine_lib.abstract_states(progs.init, hypers[0], k)
    hyper = place.per_model(objective.stack_hypers(hypers))
    nb, b = engine.steps_per_epoch, engine.batch_size
    order = lambda steps: place.per_model(np.zeros((k, steps, b), np.int32))
    lowered = progs.epoch.lower(states, hyper, x_train_d, order(nb))
    chunk = chunking.steps_per_chunk(
        lowered, nb, float(cfg.train.log_seconds), int(cfg.train.chunk_steps)
    )
    if chunk < nb:
        progs = engine.compile(k, place.state_sharding, replicated, skip_empty=nb % chunk != 0)
        lowered = progs.epoch.lower(states, hyper, x_train_d, order(chunk))
        logging.info(
            "epochs run in chunks of %d of their %d steps (progress and stop requests "
            "are handled between chunks)",
            chunk,
            nb,
        )
    compiled = _Compiled(
        engine,
        engine_lib.compile_init(progs.init, hypers[0]),
        lowered.compile(),
        progs.evaluate.lower(states.params, hyper, xv, mv).compile(),
        chunk,
    )
    if cache is not None:
        cache.put(key, compiled)
    return compiled


def train(
    configs: list,
    workdirs: list[str],
    ds: Dataset,
    stop,
    cache: ProgramCache | None = None,
    ended: Callable[[list[Run]], None] | None = None,
) -> Trained:
    """Trains the group (see the module docstring); call with every workdir's lock held.

    `ended(runs)` is called once the last epoch is recorded (every run's history complete),
    before its checkpoints are written: the caller can start work that needs only the history.
    """
    cfg, k = configs[0], len(configs)
    writer = distributed.is_writer()
    n_train = ds.train.shape[0]
    terms = objective.optional_terms(configs)
    configured = int(cfg.train.batch_size)
    batch = min(configured, n_train)
    mode = placement.choose_mode(
        cfg.train.parallel, k, batch, cfg.train.eval_batch_size, jax.device_count(), configured
    )
    place = placement.Placement(mode)
    hypers = [objective.hyper_from_config(c) for c in configs]
    software = runtime.software()
    runs = [
        Run(
            c,
            w,
            h,
            Checkpointer(w, keep=cfg.train.keep_checkpoints)
            if cfg.train.checkpoints
            else NullCheckpointer(),
            layout=place.describe(),
            software=software,
            dropped=objective.group_only_metrics(c, terms),
        )
        for c, w, h in zip(configs, workdirs, hypers, strict=True)
    ]
    distributed.barrier()  # the writer has tidied the checkpoints: every process lists them
    logging.info(
        "devices: %s; layout: %s; %s",
        ", ".join(f"{d.platform}:{d.id}" for d in jax.devices()),
        place.describe(),
        runtime.describe(software),
    )
    start = startup.resume_epoch(runs)

    t_start = time.perf_counter()
    x_train_d = place.replicated(ds.train)
    xv, mv = engine_lib.pad_batches(
        ds.val, cfg.train.eval_batch_size, place.n if place.mode == "data" else 1
    )
    xv, mv = place.replicated(xv), place.replicated(mv)
    t0 = time.perf_counter()
    prog = _compile(cfg, ds, k, terms, place, hypers, x_train_d, xv, mv, cache)
    engine = prog.engine
    states = place.per_model(engine_lib.init_many(prog.init, hypers, startup.init_progress(stop)))
    compile_s = time.perf_counter() - t0  # the programs, init included
    hyper = place.per_model(objective.stack_hypers(hypers))
    n_params = engine_lib.count_params(states.params) // k  # shapes only: nothing computed
    logging.info(
        "%d model(s) %s, %d parameters each, %d features, %d train / %d val rows, batch %d "
        "(%d step%s/epoch), ready in %.2f s",
        k,
        cfg.model.name,
        n_params,
        ds.num_features,
        n_train,
        ds.val.shape[0],
        engine.batch_size,
        engine.steps_per_epoch,
        "s" * (engine.steps_per_epoch != 1),
        compile_s,
    )
    if start:  # first: damaged metrics or checkpoints refuse before a finished run is reopened
        start, states = startup.restore(runs, states, start, prog.chunk)
    if writer:
        for r in runs:
            startup.write_resolved_config(r.config, ds, engine, prog.chunk, r.workdir, start)
    checkpoint = start
    partial = (
        Partial.load_group(workdirs, start, prog.chunk, runs[0].layout, runs[0].software)
        if start < cfg.train.epochs
        else None
    )
    if partial is not None:
        # A stop inside an epoch saved the whole state: it resumes there even when the newest
        # checkpoint is older (train.checkpoint_every > 1, or checkpoints off), if the rows
        # before it are all there (a diverged run's end at its divergence).
        inside = partial.restore_states(states)
        live = [r for i, r in enumerate(runs) if int(inside.diverged_step[i]) < 0]
        if (covered := startup.history_covers(live)) < partial.epoch - 1:
            newer = f"a stop's saved position is in epoch {partial.epoch}"
            startup.say_rows_lost(runs, covered, newer, start)
            partial = None
        else:
            start, states = partial.epoch - 1, inside
            for r, saved in zip(runs, partial.software, strict=True):  # its epoch's steps so far
                r.earlier_software = startup.other_software(
                    {"earlier_software": [*r.earlier_software, *saved]}, r.software
                )
            for i, r in enumerate(runs):
                r.history = workdir_lib.read_history(r.workdir, start)
                if int(states.diverged_step[i]) >= 0:
                    r.status, r.diverged_step = "diverged", int(states.diverged_step[i])
            logging.info(  # (not also "resuming from the epoch-150 checkpoint": a probe)
                "resuming epoch %d at step %d of %d, where a stop saved it (newest checkpoint: %s)",
                start + 1,
                partial.steps_done,
                engine.steps_per_epoch,
                f"epoch {checkpoint}'s" if checkpoint else "none",
            )
    if checkpoint and partial is None:
        where = workdirs[0] if k == 1 else f"{k} workdirs"
        logging.info("resuming from the epoch-%d checkpoint in %s", checkpoint, where)
    states = place.per_model(states)

    epochs = cfg.train.epochs
    # A resumed run redoes the epochs after its checkpoint (one without any, all of them):
    # TensorBoard drops the points earlier processes wrote from the first step redone.
    purge = start * engine.steps_per_epoch + 1
    files: list = []  # each run's metrics.jsonl, appended to
    hparams = hparams_lib.group_hparams(configs, workdirs) if writer else [{}] * k
    try:  # (what a failure to open a run's files or trackers leaves open is closed too)
        for r, hp in zip(runs, hparams, strict=True):
            path = os.path.join(r.workdir, workdir_lib.METRICS) if writer else os.devnull
            if writer:  # the kept history replaces the file whole: a kill now loses no row
                write_atomic(
                    path, lambda f, r=r: f.writelines(json.dumps(x) + "\n" for x in r.history)
                )
            files.append(open(path, "a"))  # noqa: SIM115 - closed after the last epoch
            step = r.history[-1]["step"] if r.history else 0  # where the trackers' steps resume
            r.tb = (
                trackers.open_writers(r.config, r.workdir, hp, purge, step)
                if writer
                else MultiWriter([], {})
            )
        epoch_runner = chunking.EpochRunner(prog, place, hypers, n_train, cfg, stop, runs)
        saved_epoch, epoch = start, start
        # The share of epoch 1 left to run here, in chunks (a last chunk's padding runs too).
        left = 1 - (partial.next_chunk / epoch_runner.n_chunks if partial else 0)
        pace = chunking.Pace(start, epochs, share=left)
        for epoch in range(start + 1, epochs + 1):
            t_epoch = time.perf_counter()
            # Rows trained in this process: a resumed epoch's steps before the stop are not
            # (counted, not n_train times the steps' share: the last batch may be short).
            rows = n_train - (float(np.sum(partial.rows[0])) if partial else 0.0)
            states, train_m = epoch_runner.run(epoch, states, hyper, x_train_d, partial)
            partial = None
            div = distributed.fetch(states.diverged_step)
            epoch_s = time.perf_counter() - t_epoch
            eval_m = distributed.fetch(prog.eval_fn(states.params, hyper, xv, mv))
            _record_epoch(
                runs,
                epoch,
                epoch * engine.steps_per_epoch,
                train_m,
                eval_m,
                div,
                epoch_s,
                rows,
                files,
            )
            all_stopped = not any(r.running for r in runs)
            if epoch % cfg.train.log_every == 0 or epoch == epochs or all_stopped:
                chunking.log_epoch(
                    epoch, epochs, runs, rows * k / epoch_s, 0.0 if all_stopped else pace.eta(epoch)
                )
            pace.ended(epoch)
            every = cfg.train.checkpoint_every
            if (every and epoch % every == 0) or epoch == epochs or all_stopped:
                if epoch == epochs or all_stopped:
                    if ended is not None:
                        ended(runs)
                    if cfg.train.checkpoints and writer:
                        logging.info("saving the final checkpoint of %d run(s) ...", k)
                save_group(runs, states, epoch)
                saved_epoch = epoch
            if writer:
                Partial.remove(workdirs)
            if all_stopped:
                break
            signum = distributed.agreed_stop(stop.signum)  # every host stops here, or none
            if signum is not None:
                if saved_epoch != epoch:
                    save_group(runs, states, epoch, stop=True)
                raise signals.stopped(signum, f"after epoch {epoch}", cfg.train.checkpoints)
        if saved_epoch != epoch and any(r.running for r in runs):
            save_group(runs, states, epoch)
    except BaseException as e:  # the runs end with it, and so do their trackers
        opened = [r.tb for r in runs if r.tb is not None]
        signals.end_trackers(opened, stopped=isinstance(e, KeyboardInterrupt))  # (Interrupted)
        raise
    finally:
        for f in files:
            f.close()
        for r in runs:
            if r.tb is not None:
                r.tb.flush()
            r.checkpointer.close()  # Prunes what an earlier process left beyond the policy.
    return Trained(
        runs,
        engine,
        distributed.fetch(states.params),
        ds,
        epoch,
        start,
        time.perf_counter() - t_start,
        compile_s,
        n_params,
    )


def _record_epoch(runs, epoch, step, train_m, eval_m, div, epoch_s, rows, files) -> None:
    for i, r in enumerate(runs):
        if not r.running:
            continue
        if div[i] >= 0:
            r.status, r.diverged_step = "diverged", int(div[i])
            chunking.log_divergence(r.workdir, int(div[i]), epoch, r.history)
            continue
        row = {"epoch": epoch, "step": step}
        for prefix, m in (("train", train_m), ("eval", eval_m)):
            row.update({f"{prefix}/{n}": float(m[n][i]) for n in ordered(m) if n not in r.dropped})
        row.update({"epoch_s": epoch_s, "rows_per_s": rows / epoch_s})
        r.history.append(row)
        files[i].write(json.dumps(row) + "\n")
        files[i].flush()
        r.tb.write_scalars(
            step, {n: v for n, v in row.items() if "/" in n or n in ("epoch_s", "rows_per_s")}
        )
