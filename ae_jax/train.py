"""train_and_evaluate(config, workdir): validate, load data, train, write the workdir.

The workdir contract (other tools read these names):
  config.json        the resolved config, plus the data's shape and columns
  preprocessor.json  the fitted encoding and scaling, to transform new rows alike
  metrics.jsonl      one JSON object per epoch: epoch, step, train/*, eval/*, epoch_s, rows_per_s
  summary.json       the last epoch's figures, plus status, wall_s, compile_s, n_params
  figures/           learning curves; reconstructions (image data); samples (VAE)

`train_group` trains K runs that share a static config (shapes, losses present)
in one compiled program, each run with its own workdir; `train_and_evaluate` is
the K = 1 case, or K seeds when `train.num_models` > 1.
"""

import contextlib
import copy
import errno
import json
import logging as std_logging
import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import distributed, objective, parallel, plots, procsafe, writers
from ae_jax import engine as engine_lib
from ae_jax.checkpoint import Checkpointer, NullCheckpointer
from ae_jax.errors import UserError


class _LibraryInfoFilter(std_logging.Filter):
    """Drops INFO records of orbax and jax (several per checkpoint save) from absl's log,
    and orbax's warnings that a read-only manager (how runs are loaded) is read-only."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        noisy = any(f"{os.sep}{lib}{os.sep}" in record.pathname for lib in ("orbax", "jax"))
        if noisy and "read only" in record.getMessage().replace("_", " "):
            return False
        return record.levelno >= std_logging.WARNING or not noisy


def quiet_library_logs() -> None:
    """Keeps the launcher's log to our lines: library INFO chatter is filtered out."""
    handler = logging.get_absl_handler()
    if not any(isinstance(f, _LibraryInfoFilter) for f in handler.filters):
        handler.addFilter(_LibraryInfoFilter())


# Compiled programs by (static config, data shapes, K, noise): sequential runs with the
# same shapes (seeds one by one, sweep groups) compile once per process.
_PROGRAMS: dict[tuple, tuple] = {}
_MAX_CACHED = 16


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
    """Trains the configured run (or `train.num_models` seeds of it) into `workdir`.

    Returns the summaries (one per model). With num_models = K > 1 the runs go to
    `workdir/seed=S` for S = seed .. seed + K - 1.
    """
    config_lib.validate(config)
    k = config.train.num_models
    if k == 1:
        return train_group([config], [workdir])
    configs, workdirs = [], []
    for i in range(k):
        c = copy.deepcopy(config)
        with c.unlocked():
            c.train.seed = config.train.seed + i
            c.train.num_models = 1
        configs.append(c)
        workdirs.append(os.path.join(workdir, f"seed={c.train.seed}"))
    return train_group(configs, workdirs)


def static_signature(config) -> dict:
    """The config with vmappable scalars removed: runs with equal signatures share a program."""
    d = config.to_dict()
    for key in objective.HYPER_KEYS:
        section = "optim" if key == "learning_rate" else "train" if key == "seed" else "loss"
        d[section].pop(key)
    d["train"].pop("num_models")
    return d


def check_groupable(configs: list) -> None:
    """Raises UserError naming the fields that stop these configs training together."""
    base = flatten_config(static_signature(configs[0]))
    for i, c in enumerate(configs[1:], start=1):
        other = flatten_config(static_signature(c))
        diff = sorted(k for k in base.keys() | other.keys() if base.get(k) != other.get(k))
        if diff:
            shown = ", ".join(f"{k}: {base.get(k)!r} vs {other.get(k)!r}" for k in diff[:5])
            raise UserError(
                f"runs 0 and {i} cannot train together: they differ in {shown}, which change "
                f"shapes or code paths. Only {list(objective.HYPER_KEYS)} may vary within a group; "
                "train the others separately (or with the sweep runner, which groups them)."
            )


def flatten_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> {"section.field": value}, lists as tuples (comparable, hashable)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out


def _prepare_workdir(workdir: str, num_features: int, columns: list[str]) -> None:
    try:
        os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
    except OSError as e:
        raise UserError(f"workdir {workdir!r} cannot be created: {e.strerror}.") from None
    if not os.access(workdir, os.W_OK):
        raise UserError(f"workdir {workdir!r} is not writable; choose another --workdir.")
    old = os.path.join(workdir, "config.json")
    if os.path.exists(old):
        with open(old) as f:
            prev = json.load(f).get("dataset", {})
        if prev.get("num_features") not in (None, num_features):
            raise UserError(
                f"workdir {workdir!r} holds a model trained on {prev['num_features']} features "
                f"({prev.get('columns', [])[:6]}...), but this data has {num_features} "
                f"({columns[:6]}...). Use the same data, or a new --workdir."
            )


def check_data_fits_config(config, ds) -> None:
    """Contradictions between the config and the loaded data, found before compiling."""
    if config.model.arch == "conv":
        from ae_jax import conv

        conv.image_hwc(ds.num_features, ds.image_shape)  # UserError for non-image data
    lo, hi = float(ds.train.min()), float(ds.train.max())
    if config.loss.recon == "bce" and (lo < 0.0 or hi > 1.0):
        raise UserError(
            f"loss.recon='bce' (a Bernoulli likelihood) needs data in [0, 1], but the training "
            f"split of {ds.name!r} spans [{lo:.4g}, {hi:.4g}] with data.scaling="
            f"{config.data.scaling!r}. Use data.scaling='minmax', or loss.recon='mse' or "
            "'gaussian'."
        )
    if config.model.name == "autoencoder" and config.model.latent_dim >= ds.num_features:
        logging.warning(
            "model.latent_dim=%d is not smaller than the %d input features: an autoencoder "
            "can then learn the identity; fine for an overcomplete sparse code, otherwise "
            "choose a smaller code.", config.model.latent_dim, ds.num_features)


def write_json(path: str, obj) -> None:
    """Write then rename, so a reader never sees half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def finished_summary(workdir: str) -> dict | None:
    """The summary of a run that already ended (done or diverged), else None."""
    path = os.path.join(workdir, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        summary = json.load(f)
    return summary if summary.get("status") in ("done", "diverged") else None


def _read_history(workdir: str, last_epoch: int) -> list[dict]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r["epoch"] <= last_epoch]


def _write_resolved_config(c, ds, engine, workdir: str) -> None:
    resolved = json.loads(c.to_json_best_effort())
    resolved["dataset"] = {
        "name": ds.name, "num_features": ds.num_features, "columns": ds.columns,
        "n_train": int(ds.train.shape[0]), "n_val": int(ds.val.shape[0]),
        "image_shape": list(ds.image_shape) if ds.image_shape else None,
        "batch_size": engine.batch_size, "steps_per_epoch": engine.steps_per_epoch,
    }
    write_json(os.path.join(workdir, "config.json"), resolved)
    data_lib.save_preprocessor(ds.preprocessor, os.path.join(workdir, "preprocessor.json"))


def _resume_epoch(ckpts: list[Checkpointer], workdirs: list[str]) -> int:
    """The newest epoch every run has a checkpoint of (0 = start fresh)."""
    saved = [set(c.epochs()) for c in ckpts]
    if not any(saved):
        return 0
    common = set.intersection(*saved)
    if not common:
        have = {w: sorted(e) for w, e in zip(workdirs, saved, strict=True)}
        raise UserError(
            f"these runs cannot resume together: they share no checkpoint epoch ({have}). "
            "Resume each run on its own, or use new workdirs; no checkpoint was changed."
        )
    return max(common)


def train_group(configs: list, workdirs: list[str], dataset=None) -> list[dict]:
    """Trains len(configs) runs that differ only in vmappable scalars, together.

    Returns one summary dict per run (also written to each workdir/summary.json).
    A run whose loss turns non-finite is stopped there (its parameters stay at the
    last finite values) and marked "diverged"; the others go on unaffected.
    Rerunning on the same workdirs resumes from the newest checkpoint all runs
    share; finished runs are not retrained.
    """
    for c in configs:
        config_lib.validate(c)
    check_groupable(configs)
    ds = dataset if dataset is not None else data_lib.load_dataset(configs[0].data)
    check_data_fits_config(configs[0], ds)
    for w in workdirs:
        _prepare_workdir(w, ds.num_features, ds.columns)
    finished = [finished_summary(w) for w in workdirs]
    if all(finished):
        logging.info("all %d run(s) already finished; not retraining (delete summary.json "
                     "to train again)", len(workdirs))
        return finished
    if any(finished):
        todo = [i for i, f in enumerate(finished) if f is None]
        trained = iter(train_group([configs[i] for i in todo], [workdirs[i] for i in todo],
                                   ds))
        return [f if f is not None else next(trained) for f in finished]
    with contextlib.ExitStack() as stack:
        for w in workdirs:
            if distributed.is_writer():  # Other hosts of a multi-host run only compute.
                stack.enter_context(procsafe.WorkdirLock(w))
        done = [finished_summary(w) for w in workdirs]
        if all(done):  # Finished by another process meanwhile.
            return done
        stop = stack.enter_context(procsafe.StopRequests())
        try:
            return _train_locked(configs, workdirs, ds, stop)
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                raise
            raise UserError(
                f"cannot write to the workdir ({e.strerror}: {e.filename or workdirs[0]!r}). "
                "Free space or choose another --workdir; the checkpoints already written are "
                "kept, so the same command resumes from the newest one."
            ) from None


def _train_locked(configs: list, workdirs: list[str], ds, stop) -> list[dict]:
    """The body of `train_group`, run while holding every workdir's lock."""
    cfg, k = configs[0], len(configs)
    writer = distributed.is_writer()
    x_train, x_val = ds.train, ds.val
    n_train = x_train.shape[0]

    noise = any(c.loss.noise_std > 0 for c in configs)
    cache_key = (json.dumps(static_signature(cfg), sort_keys=True), ds.num_features, n_train,
                 x_val.shape[0], k, noise, ds.image_shape)
    batch = min(int(cfg.train.batch_size), n_train)
    mode = parallel.choose_mode(cfg.train.parallel, k, batch, cfg.train.eval_batch_size,
                                jax.device_count())
    place = parallel.Placement(mode)
    cache_key += (mode, place.n)
    cached = _PROGRAMS.get(cache_key)
    if cached:
        engine, progs = cached[:2]
    else:
        engine = engine_lib.Engine(cfg, ds.num_features, n_train, noise=noise,
                                   image_shape=ds.image_shape,
                                   dynamic_binarize=ds.dynamic_binarize)
        engine.batch_sharding = place.batch_sharding
        progs = engine.compile(k, place.state_sharding,
                               None if place.mesh is None else place.replicated_sharding)
    hypers = [objective.hyper_from_config(c) for c in configs]
    hyper = objective.stack_hypers(hypers)
    logging.info("devices: %s; layout: %s",
                 ", ".join(f"{d.platform}:{d.id}" for d in jax.devices()), place.describe())
    ckpts = [Checkpointer(w, keep=cfg.train.keep_checkpoints) if cfg.train.checkpoints
             else NullCheckpointer() for w in workdirs]
    start = _resume_epoch(ckpts, workdirs)
    for c, w in zip(configs, workdirs, strict=True):
        if writer:
            _write_resolved_config(c, ds, engine, w)

    t_start = time.perf_counter()
    x_train_d = place.replicated(x_train)
    xv, mv = engine_lib.pad_batches(x_val, cfg.train.eval_batch_size,
                                    place.n if place.mode == "data" else 1)
    xv, mv = place.replicated(xv), place.replicated(mv)
    hyper = place.per_model(hyper)
    orders = lambda epoch: np.stack([
        engine_lib.epoch_order(h["seed"], epoch, n_train, engine.batch_size, cfg.train.shuffle)
        for h in hypers
    ])

    # Compile ahead of time so compile time is reported apart from epoch time.
    t0 = time.perf_counter()
    states = place.per_model(engine_lib.init_many(progs.init, hypers))
    order = place.per_model(orders(start))
    if cached:  # Same static config and shapes as an earlier group: reuse its executables.
        epoch_fn, eval_fn = cached[2:]
    else:
        epoch_fn = progs.epoch.lower(states, hyper, x_train_d, order).compile()
        eval_fn = progs.evaluate.lower(states.params, hyper, xv, mv).compile()
        _PROGRAMS[cache_key] = (engine, progs, epoch_fn, eval_fn)
        while len(_PROGRAMS) > _MAX_CACHED:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
    compile_s = time.perf_counter() - t0
    n_params = engine_lib.count_params(jax.tree.map(lambda a: a[0], states.params))
    logging.info(
        "%d model(s) %s, %d parameters each, %d features, %d train / %d val rows, batch %d "
        "(%d steps/epoch), compiled in %.2f s",
        k, cfg.model.name, n_params, ds.num_features, n_train, x_val.shape[0],
        engine.batch_size, engine.steps_per_epoch, compile_s,
    )

    history: list[list[dict]] = [[] for _ in range(k)]
    status = ["running"] * k
    diverged_step: list[int | None] = [None] * k
    if start:
        restored = []
        for i, ck in enumerate(ckpts):
            target = jax.tree.map(lambda a, i=i: a[i], states)
            state_i, _ = ck.restore(start, target)
            restored.append(state_i)
            history[i] = _read_history(workdirs[i], start)
            if int(state_i.diverged_step) >= 0:
                status[i], diverged_step[i] = "diverged", int(state_i.diverged_step)
        states = place.per_model(jax.tree.map(lambda *a: np.stack(a), *restored))
        logging.info("resuming from the epoch-%d checkpoint in %s", start,
                     workdirs[0] if k == 1 else f"{k} workdirs")

    epochs = cfg.train.epochs
    every = cfg.train.checkpoint_every
    files = [open(os.path.join(w, "metrics.jsonl") if writer else os.devnull, "w")
             for w in workdirs]
    writer_cls = writers.MetricWriter if cfg.train.tensorboard and writer else writers.NullWriter
    # A resumed run redoes the epochs after its checkpoint: TensorBoard drops their old points.
    purge = start * engine.steps_per_epoch + 1 if start else None
    tbs = [writer_cls(os.path.join(w, "tb"), purge_step=purge) for w in workdirs]
    for c, tb in zip(configs, tbs, strict=True):
        tb.write_text("config", f"```json\n{c.to_json_best_effort(indent=2)}\n```")
    for f, h in zip(files, history, strict=True):  # Rows past the checkpoint are redone.
        f.writelines(json.dumps(r) + "\n" for r in h)
        f.flush()
    saved_epoch = start
    t_loop = time.perf_counter()
    try:
        for epoch in range(start + 1, epochs + 1):
            t_epoch = time.perf_counter()
            states, train_m = epoch_fn(states, hyper, x_train_d, order)
            if epoch < epochs:
                order = place.per_model(orders(epoch))  # Overlaps the device's epoch.
            train_m, div = distributed.fetch((train_m, states.diverged_step))
            epoch_s = time.perf_counter() - t_epoch
            eval_m = distributed.fetch(eval_fn(states.params, hyper, xv, mv))
            step = epoch * engine.steps_per_epoch
            for i in range(k):
                if status[i] != "running":
                    continue
                if div[i] >= 0:
                    status[i], diverged_step[i] = "diverged", int(div[i])
                    last = history[i][-1] if history[i] else {}
                    logging.error(
                        "run %s diverged: non-finite loss or gradient at step %d (epoch %d); "
                        "kept the parameters from before that step; last finite values: %s",
                        workdirs[i], div[i], epoch, {k_: v for k_, v in last.items()
                                                     if k_.startswith(("train/", "eval/"))},
                    )
                    continue
                row = {"epoch": epoch, "step": step}
                row.update({f"train/{n}": float(train_m[n][i]) for n in _ordered(train_m)})
                row.update({f"eval/{n}": float(eval_m[n][i]) for n in _ordered(eval_m)})
                row.update({"epoch_s": epoch_s, "rows_per_s": n_train / epoch_s})
                history[i].append(row)
                files[i].write(json.dumps(row) + "\n")
                files[i].flush()
                tbs[i].write_scalars(step, {n: v for n, v in row.items() if "/" in n or
                                            n in ("epoch_s", "rows_per_s")})
            all_stopped = all(s != "running" for s in status)
            if (every and epoch % every == 0) or epoch == epochs or all_stopped:
                _save_all(ckpts, states, epoch, hypers, history, status)
                saved_epoch = epoch
                for tb in tbs:  # Everything up to a checkpoint must survive a kill.
                    tb.flush()
            if all_stopped:
                break
            if stop.signum is not None:
                if saved_epoch != epoch:
                    _save_all(ckpts, states, epoch, hypers, history, status)
                raise procsafe.Interrupted(stop.signum, epoch)
            elapsed = time.perf_counter() - t_loop
            if epoch % cfg.train.log_every == 0 or epoch == epochs:
                _log_epoch(epoch, epochs, history, status, n_train * k / epoch_s,
                           elapsed / (epoch - start) * (epochs - epoch))
        if saved_epoch != epochs and not all(s != "running" for s in status):
            _save_all(ckpts, states, epochs, hypers, history, status)
    finally:
        for f in files:
            f.close()
        for tb in tbs:
            tb.flush()
        for ck in ckpts:
            ck.close()  # Waits for pending asynchronous saves.

    wall_s = time.perf_counter() - t_start
    final_params = distributed.fetch(states.params)
    summaries = []
    for i in range(k):
        last = history[i][-1] if history[i] else {"epoch": 0, "step": 0}
        summary = dict(last)
        summary.update({
            "status": "done" if status[i] == "running" else status[i],
            "diverged_step": diverged_step[i],
            "wall_s": wall_s, "compile_s": compile_s, "n_params": n_params,
            "num_models_together": k, "resumed_from_epoch": start,
            "best_epoch": ckpts[i].best_epoch(),
        })
        summaries.append(summary)
        if not writer:
            continue
        write_json(os.path.join(workdirs[i], "summary.json"), summary)
        params_i = jax.tree.map(lambda a, i=i: np.asarray(a[i]), final_params)
        figures = plots.run_figures(workdirs[i], engine.model, params_i, ds, history[i],
                                    hypers[i]) if cfg.train.figures else []
        step = summary["step"]
        for path in figures:
            tbs[i].write_figure(step, f"figures/{os.path.basename(path)[:-4]}", path)
        tbs[i].write_hparams(flatten_config(configs[i].to_dict()), {k: v for k, v in summary.items()
                                       if k.startswith("eval/") and v is not None})
        tbs[i].close()
    _log_summary(summaries, workdirs)
    if cfg.eval.at_end and writer and cfg.train.checkpoints:  # evaluation loads a checkpoint
        from ae_jax import evaluate  # Imported here: evaluate imports this module.

        for w in workdirs:
            try:
                evaluate.evaluate_workdir(w, dataset=ds, figures=cfg.train.figures)
            except UserError as e:  # The training result stands; say why eval.json is missing.
                logging.warning("evaluation of %s skipped: %s", w, e)
    return summaries


def _save_all(ckpts, states, epoch, hypers, history, status) -> None:
    host = distributed.fetch(states)  # Every process takes part in a gather ...
    if not distributed.is_writer():  # ... and one writes.
        return
    for i, ck in enumerate(ckpts):
        last = history[i][-1] if history[i] else None
        meta = {"epoch": epoch, "step": int(host.step[i]), "seed": hypers[i]["seed"],
                "status": status[i], "metrics": last}
        metrics = {"eval/loss": last["eval/loss"]} if last else None
        ck.save(epoch, jax.tree.map(lambda a, i=i: a[i], host), meta, metrics)


_METRIC_ORDER = ("loss", "recon", "l1", "kl", "sparsity", "mse", "grad_norm")


def _ordered(metrics: dict) -> list[str]:
    """Metric names in reading order (loss first), whatever order the pytree gave."""
    rank = {n: i for i, n in enumerate(_METRIC_ORDER)}
    return sorted(metrics, key=lambda n: (rank.get(n, len(rank)), n))


def _fmt(row: dict, prefix: str) -> str:
    keys = [k for k in row if k.startswith(prefix)]
    return " ".join(f"{k[len(prefix):]} {row[k]:.4g}" for k in keys)


def _log_epoch(epoch, epochs, history, status, rows_per_s, eta_s) -> None:
    live = [h[-1] for h, s in zip(history, status, strict=True) if s == "running" and h]
    if len(history) == 1 and live:
        r = live[0]
        logging.info("epoch %d/%d | train %s | eval %s | %s rows/s | ETA %.1f s", epoch, epochs,
                     _fmt(r, "train/"), _fmt(r, "eval/"), f"{rows_per_s:,.0f}", eta_s)
        return
    losses = np.array([r["eval/loss"] for r in live]) if live else np.array([np.nan])
    logging.info(
        "epoch %d/%d | %d models running, %d diverged | eval/loss median %.4g [min %.4g, max %.4g]"
        " | %s rows/s (all models) | ETA %.1f s", epoch, epochs, len(live),
        sum(s == "diverged" for s in status), np.median(losses), losses.min(), losses.max(),
        f"{rows_per_s:,.0f}", eta_s,
    )


def summary_table(summaries: list[dict], names: list[str]) -> str:
    """A markdown table of the final figures, one row per run."""
    keys = [k for k in summaries[0] if k.startswith(("train/", "eval/")) and k != "train/grad_norm"]
    head = ["run", "status", "epoch", *keys, "n_params", "wall_s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in zip(names, summaries, strict=True):
        vals = [f"{s[k]:.5g}" if k in s else "-" for k in keys]
        lines.append("| " + " | ".join([name, s["status"], str(s["epoch"]), *vals,
                                        str(s["n_params"]), f"{s['wall_s']:.2f}"]) + " |")
    return "\n".join(lines)


def _log_summary(summaries, workdirs) -> None:
    names = [os.path.basename(os.path.normpath(w)) for w in workdirs]
    logging.info("summary:\n%s", summary_table(summaries, names))
