"""What a group run does before its first epoch: refuse a workdir whose run was trained on other
data, find the checkpoint to resume from, restore it (setting aside damaged ones), record the
resolved config, and report initialisation.

`runs` are `loop.Run` records: their config, workdir, checkpointer and history.
"""

import contextlib
import json
import os
import time

import jax
import numpy as np
from absl import logging

from ae_jax import reruns
from ae_jax import workdir as workdir_lib
from ae_jax.data import Dataset, Preprocessor, difference, load_preprocessor, save_preprocessor
from ae_jax.errors import UserError
from ae_jax.training import resumes
from ae_jax.training.checkpoint import DamagedCheckpoint
from ae_jax.training.partial import Partial
from ae_jax.training.signals import Interrupted


def data_change(ds: Dataset, saved: Preprocessor, info: dict) -> str:
    """'' when `ds` is the data a run was trained on, else how it differs: its split sizes or
    values (`info`: config.json's "dataset") or the preprocessing fitted on it (`saved`)."""
    then, now = (info.get("n_train"), info.get("n_val")), (len(ds.train), len(ds.val))
    if None not in then and then != now:
        return (
            f"its split had {then[0]} training / {then[1]} validation rows, and now has "
            f"{now[0]} / {now[1]}"
        )
    field = difference(ds.preprocessor, saved)
    if field:
        return (
            f"the preprocessing fitted on it now differs from the saved preprocessor.json in "
            f"{field!r}"
        )
    if info.get("fingerprint") not in (None, ds.fingerprint):
        return "the values of its rows differ from those it was trained on (dataset.fingerprint)"
    return ""


def changed_data(workdir: str, ds: Dataset) -> str:
    """How `ds` differs from the data the run in `workdir` trained on ('' when it does not,
    or the run recorded none yet)."""
    path = os.path.join(workdir, workdir_lib.PREPROCESSOR)
    config = os.path.join(workdir, workdir_lib.CONFIG)
    if not (os.path.exists(path) and os.path.exists(config)):
        return ""
    info = workdir_lib.read_json(config, "the run's config", "use a new workdir")
    return data_change(ds, load_preprocessor(path), info.get("dataset", {}))


def check_same_data(workdir: str, ds: Dataset) -> None:
    """Refuses to resume (or reuse) a run on data other than its own: a file edited or grown
    since would otherwise continue training on other rows and overwrite preprocessor.json."""
    if change := changed_data(workdir, ds):
        raise UserError(
            f"workdir {workdir!r} holds a run whose data ({ds.name!r}) changed since it was "
            f"trained (the file, or how this version of ae_jax reads it): {change}. Run it on "
            "the data it was trained on, or train into a new workdir; nothing in the workdir "
            "was changed."
        )


def resume_groups(workdirs: list[str]) -> list[list[int]]:
    """Indices of `workdirs` grouped into the runs that train on together, in first-seen order.

    K models trained in one program differ from the same models trained in another grouping
    in the last bits (~1e-7 relative: XLA sums differently), so a group keeps its runs
    together when it can. Runs with checkpoints resume together from the newest epoch they
    all have when none of them is behind it: a kill while a group saves its checkpoints
    leaves some runs one checkpoint ahead, and they redo it beside the others. Otherwise
    (finished runs being extended beside runs killed earlier, a damaged set) they are split
    by newest checkpoint. Runs without any checkpoint start afresh, together; they never join
    runs that have one (runs added to a sweep beside runs being extended), which would throw
    that training away, but for a kill during a group's first save (with
    train.checkpoint_every=0, its final one): runs whose metrics.jsonl reaches the epoch that
    every checkpointed run holds as its one checkpoint all start afresh together
    (`resume_epoch`), as they trained; split, the numbers drifted."""
    saved = [workdir_lib.checkpoint_epochs(w) for w in workdirs]
    have = [i for i, s in enumerate(saved) if s]
    common = set.intersection(*(saved[i] for i in have)) if have else set()
    together = bool(common) and max(common) == min(max(saved[i]) for i in have)
    first = max(common) if len(common) == 1 and all(len(saved[i]) == 1 for i in have) else -1
    parts: dict[int, list[int]] = {}
    for i, s in enumerate(saved):
        lost = first > 0 and not s and _last_epoch(workdirs[i]) >= first  # (the next epoch
        # is logged while the save is under way)
        key = (max(common) if together else max(s)) if s else (first if lost else -1)
        parts.setdefault(key, []).append(i)
    return list(parts.values())


def _last_epoch(workdir: str) -> int:
    """The last epoch metrics.jsonl records (0 if none; a line cut off by a kill is passed)."""
    try:
        with open(os.path.join(workdir, workdir_lib.METRICS), "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            lines = f.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["epoch"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def history_end(workdir: str) -> int | None:
    """The last epoch E whose rows 1..E the run's metrics.jsonl holds, every one (None: no
    file, which `read_history` refuses when there are checkpoints)."""
    if not os.path.exists(os.path.join(workdir, workdir_lib.METRICS)):
        return None
    end = 0
    for e in sorted({r.get("epoch", 0) for r in workdir_lib.read_history(workdir, 2**62, True)}):
        if e > end + 1:
            break
        end = max(end, e)
    return end


def history_covers(runs: list) -> int:
    """The last epoch up to which every run's metrics.jsonl is whole: a resume must not start
    after it, or the rows between would be missing for good. (Pass the runs that have not
    diverged: a diverged run records no epoch after its divergence, by design.)"""
    ends = [history_end(r.workdir) for r in runs]
    return min((e for e in ends if e is not None), default=2**62)


def resume_epoch(runs: list) -> int:
    """The newest epoch every run has a checkpoint of (0 = start fresh: an earlier attempt's
    history, with no checkpoint or stop inside an epoch to resume it, is replaced, and said)."""
    saved = [set(r.checkpointer.epochs()) for r in runs]
    if not all(saved):  # none, or a kill during the group's first save (`resume_groups`)
        if any(saved):
            logging.info(
                "%d of %d run(s) have no checkpoint (a stop during their group's first save): "
                "all train again from epoch 1 together, as they did, for an uninterrupted "
                "run's numbers",
                sum(not s for s in saved),
                len(runs),
            )
        for r, s in zip(runs, saved, strict=True):
            if not s:
                _say_history_is_replaced(r.workdir)
        return 0
    common = set.intersection(*saved)
    if not common:
        have = {r.workdir: sorted(e) for r, e in zip(runs, saved, strict=True)}
        raise UserError(
            f"these runs cannot resume together: they share no checkpoint epoch ({have}). "
            "Resume each run on its own, or use new workdirs; no checkpoint was changed."
        )
    return max(common)


def say_rows_lost(runs: list, covered: int, newer: str, start: int) -> None:
    """Warns that a resume passes over a checkpoint (or a stop's position) `newer` than the
    epochs, up to `covered`, that every run's metrics.jsonl holds."""
    logging.warning(
        "metrics.jsonl %s holds the epochs up to %d only, but %s (its last rows were lost: a "
        "crash before they reached the disk?): %s, so that the missing epochs are trained and "
        "recorded again, to the same numbers",
        "of " + runs[0].workdir if len(runs) == 1 else f"of one of the {len(runs)} runs",
        covered,
        newer,
        f"resuming from the epoch-{start} checkpoint" if start else "training from epoch 1",
    )


def _say_history_is_replaced(workdir: str) -> None:
    path = os.path.join(workdir, workdir_lib.METRICS)
    if os.path.exists(os.path.join(workdir, workdir_lib.PARTIAL)) or not os.path.exists(path):
        return
    with open(path) as f:
        n = sum(1 for line in f if line.strip())
    if n:
        logging.warning(
            "%s holds %d epoch(s) of an earlier attempt but no checkpoint to resume them from "
            "(train.checkpoints=False, a stop before the first one, or checkpoints/ deleted): "
            "training starts at epoch 1 and replaces them",
            path,
            n,
        )


def init_progress(stop):
    """Logs initialisation of many models every 10 s; a stop request ends it cleanly."""
    last = [time.perf_counter()]

    def progress(i: int, k: int) -> None:
        if i < k and stop.signum is not None:
            raise Interrupted(  # (in a sweep: earlier groups' runs finished, and are kept)
                stop.signum,
                f"while initialising model {i} of {k} of a group",
                "the group had not started training (what earlier runs saved is kept)",
            )
        if time.perf_counter() - last[0] > 10.0:
            last[0] = time.perf_counter()
            logging.info("initialised %d of %d models", i, k)

    return progress


def other_software(meta: dict, now: dict) -> list[dict]:
    """The software that computed a checkpoint's epochs (its `software`, and the
    `earlier_software` it carries from earlier processes), each once, but `now`: a run
    resumed or extended under other software recorded only the last process's (a probe)."""
    said = [meta.get("software"), *(meta.get("earlier_software") or [])]
    kinds = {json.dumps(s, sort_keys=True): s for s in said if isinstance(s, dict) and s}
    kinds.pop(json.dumps(now, sort_keys=True), None)
    return list(kinds.values())


def restore(runs: list, states, start: int, chunk: int):
    """Restores every run at the newest epoch all can read, from `start` down.

    An unreadable checkpoint is set aside (workdir/damaged_checkpoints/) with a warning, and
    the next older one all runs share is tried; none readable is a UserError naming them,
    unless a stop saved the group's position inside an epoch (with `chunk` steps per chunk),
    which the run resumes from as it would with no checkpoint (a probe's run was refused, then
    resumed there by the same command, its damaged checkpoints set aside; a sweep's group
    failed with its healthy runs). One
    newer than a live run's metrics.jsonl reaches is passed over for an older one (0: none, the
    run starts afresh, `states` as given), with a warning (`history_covers`).
    """
    tried = []
    while start:
        restored, metas = [], []
        try:
            for i, r in enumerate(runs):
                target = jax.tree.map(lambda a, i=i: a[i], states)
                state_i, meta = r.checkpointer.restore(start, target)
                restored.append(state_i)
                metas.append(meta or {})
        except DamagedCheckpoint as e:
            tried.append(e.where)
            kept = runs[len(restored)].checkpointer.set_aside(start)
            older = [{ep for ep in r.checkpointer.epochs() if ep < start} for r in runs]
            start = max(set.intersection(*older), default=0)
            then = f"falling back to the epoch-{start} checkpoint" if start else "no older one"
            logging.warning("%s; moved it to %s; %s", e, kept, then)
            continue
        live = [r for r, st in zip(runs, restored, strict=True) if int(st.diverged_step) < 0]
        covered = history_covers(live)
        if covered < start:  # rows lost after the checkpoint's write: redo from an older one
            older = [{ep for ep in r.checkpointer.epochs() if ep <= covered} for r in runs]
            was, start = start, max(set.intersection(*older), default=0)
            say_rows_lost(runs, covered, f"the checkpoint to resume from is of epoch {was}", start)
            if not start:
                return 0, states
            continue
        resumes.warn_layout_change({str(m.get("layout", "")) for m in metas}, runs[0].layout)
        resumes.warn_group_change({m.get("models_together") for m in metas}, len(runs))
        resumes.warn_software_change([m.get("software") for m in metas], runs[0].software)
        for r, state_i, m in zip(runs, restored, metas, strict=True):
            r.earlier_software = other_software(m, r.software)
            r.history = workdir_lib.read_history(r.workdir, start)
            if int(state_i.diverged_step) >= 0:
                r.status, r.diverged_step = "diverged", int(state_i.diverged_step)
        return start, jax.tree.map(lambda *a: np.stack(a), *restored)
    workdirs = [r.workdir for r in runs]
    inside = Partial.load_group(workdirs, 0, chunk, quiet=True)
    if inside is not None:  # ... and the rows before it are all there (as the loop checks)
        saved = inside.restore_states(states)
        live = [r for i, r in enumerate(runs) if int(saved.diverged_step[i]) < 0]
        if history_covers(live) >= inside.epoch - 1:
            logging.warning(
                "no checkpoint could be read (%s: set aside in damaged_checkpoints/); the "
                "position a stop saved inside epoch %d is resumed from",
                ", ".join(tried),
                inside.epoch,
            )
            return 0, states
    raise UserError(
        f"no readable checkpoint to resume from: {', '.join(tried)} could not be "
        "read (set aside in damaged_checkpoints/). Train into a new workdir, or "
        "delete the workdir's checkpoints/ to start this run again."
    )


def write_resolved_config(c, ds: Dataset, engine, chunk: int, workdir: str, start: int) -> None:
    """config.json: the run's config resolved (absolute paths, the data's shape), with what
    reruns changed recorded: `extended` (train.epochs raised) and `changed` (a field that moves
    reported numbers, `reruns.moves_numbers`, with the first epoch it computed: a probe found
    only the new value, so the first epochs' metrics matched no config of the run's)."""
    resolved = json.loads(c.to_json_best_effort())
    for key in (*reruns.PATH_FIELDS, *reruns.URI_FIELDS):  # absolute: evaluate and resume
        section, field = key.split(".")  # from any directory
        if reruns.is_path(key, value := resolved[section].get(field)):
            resolved[section][field] = os.path.abspath(os.path.expanduser(value))
    path = os.path.join(workdir, workdir_lib.CONFIG)
    old = (
        workdir_lib.read_json(path, "the run's config", "use a new workdir")
        if os.path.exists(path)
        else {}
    )
    # A run that trained nothing, rerun with other trackers (reruns.TRACKER_FIELDS): new ones.
    trackers = [k.split(".")[1] for k in reruns.TRACKER_FIELDS]
    if old and any(old["train"].get(f) != resolved["train"][f] for f in trackers):
        if workdir_lib.trained_nothing(workdir):  # (else saved by a version without a field)
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(workdir, workdir_lib.TRACKERS))
    # train.epochs raised on a rerun (reruns.check_config allowed it): recorded, and logged.
    resolved["extended"] = old.get("extended", [])
    before = old.get("train", {}).get("epochs")
    if before is not None and before != c.train.epochs:
        # first: a kill before the config is written still resumes
        diverged = reruns.reopen(workdir)
        resolved["extended"].append({"from_epochs": before, "to_epochs": c.train.epochs})
        logging.info(
            "%s: train.epochs raised from %d to %d; %s",
            workdir,
            before,
            c.train.epochs,
            "it diverged: nothing trains for it, its group trains on"
            if diverged
            else "training continues from the newest checkpoint"
            if workdir_lib.checkpoint_epochs(workdir)
            else "training starts at epoch 1 (no checkpoint to continue from)",
        )
    resolved["changed"] = old.get("changed", [])
    for key in reruns.moves_numbers(c):
        section, field = key.split(".")
        before, now = old.get(section, {}).get(field), resolved[section][field]
        if before is not None and before != now:  # (a rerun that trained nothing: replaced)
            same = lambda e, k=key: (e.get("field"), e.get("from_epoch")) == (k, start + 1)  # noqa: E731
            earlier = [e for e in resolved["changed"] if isinstance(e, dict) and same(e)]
            first = earlier[0]["from"] if earlier else before
            resolved["changed"] = [e for e in resolved["changed"] if e not in earlier]
            if first != now:
                resolved["changed"].append(
                    {"field": key, "from": first, "to": now, "from_epoch": start + 1}
                )
    resolved["dataset"] = {
        "name": ds.name,
        "num_features": ds.num_features,
        "columns": ds.columns,
        "n_train": int(ds.train.shape[0]),
        "n_val": int(ds.val.shape[0]),
        "image_shape": list(ds.image_shape) if ds.image_shape else None,
        "batch_size": engine.batch_size,
        "steps_per_epoch": engine.steps_per_epoch,
        "steps_per_chunk": chunk,
        "fingerprint": ds.fingerprint,
    }
    workdir_lib.write_json(path, resolved)
    save_preprocessor(ds.preprocessor, os.path.join(workdir, workdir_lib.PREPROCESSOR))
