"""Checkpoints of one run in `workdir/checkpoints/`, with orbax's CheckpointManager.

Each checkpoint, named by the epoch it ends, holds the whole `TrainState` (params,
optimizer state, step, divergence marker) and a JSON `meta` item: the epoch (the
data-order position: epoch e's order derives from (seed, e)), the step, the seed
(the root of every random stream; per-step keys are folded from it and the step)
and that epoch's metrics. That is everything a resumed run needs to continue
bit for bit where an uninterrupted one would be.

orbax writes each checkpoint to a temporary directory and renames it when
complete, so a process killed mid-save leaves the previous checkpoints intact
and the half-written one is ignored. Saves are asynchronous; `close()` waits.
"""

import contextlib
import logging
import math
import os
import shutil
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.training import distributed

_policies = ocp.checkpoint_managers


class DamagedCheckpoint(Exception):
    """A checkpoint whose files cannot be read; older ones may still be."""

    def __init__(self, where: str, cause: Exception):
        self.where = where
        text = " ".join(str(cause).split())[:200]
        super().__init__(f"{where} cannot be read ({type(cause).__name__}: {text})")


class _ReadOnlyNotices(logging.Filter):
    """Drops orbax's two warnings that a read-only manager is read-only (it is asked to be),
    so `ae_jax.load` prints nothing; as a context manager, on the "absl" logger."""

    NOTICES = ("read_only=True, setting save_interval_steps", "Given directory is read only")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in self.NOTICES)

    def __enter__(self):
        logging.getLogger("absl").addFilter(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("absl").removeFilter(self)


class Checkpointer:
    """Saves and restores one run's checkpoints; keeps the last `keep` and the best."""

    def __init__(self, workdir: str, keep: int = 2, read_only: bool = False):
        self.directory = os.path.abspath(os.path.join(workdir, workdir_lib.CHECKPOINTS))
        # Keep the newest `keep` and the one with the lowest eval/loss.
        policy = _policies.AnyPreservationPolicy(
            [
                _policies.LatestN(n=keep),
                _policies.BestN(get_metric_fn=lambda m: m["eval/loss"], reverse=True, n=1),
            ]
        )
        # Each process's manager acts alone: in a multi-host run only process 0 saves (the
        # state is gathered to it first) and every process reads; no cross-host barriers.
        me = jax.process_index()
        if not read_only:
            os.makedirs(self.directory, exist_ok=True)  # orbax won't with active_processes
        with _ReadOnlyNotices() if read_only else contextlib.nullcontext():
            options = ocp.CheckpointManagerOptions(
                preservation_policy=policy,
                create=False,
                read_only=read_only,
                cleanup_tmp_directories=not read_only,
                multiprocessing_options=ocp.options.MultiprocessingOptions(
                    primary_host=me, active_processes={me}
                ),
            )
            self.manager = self._listed(
                lambda: ocp.CheckpointManager(
                    self.directory, item_names=("state", "meta"), options=options
                )
            )
        # Only the writer (process 0) deletes or moves checkpoints: the others read the same
        # shared directory.
        self.keep, self._deletes = keep, not read_only and distributed.is_writer()
        self._loss: dict[int, float | None] = {}  # eval/loss by epoch, as saved or read
        self._stop: dict[int, bool] = {}  # saved by a stop between scheduled ones, by epoch
        if self._deletes:
            self.prune()

    def _listed(self, make, attempts: int = 5):
        """`make()`, which lists the checkpoints (orbax reads each one's directory): retried
        when a checkpoint listed is gone before it is read, as the process training the run
        deletes older ones while it saves newer ones."""
        for attempt in range(attempts):
            try:
                return make()
            except FileNotFoundError:
                time.sleep(0.05 * attempt)
        holder = workdir_lib.holder(os.path.dirname(self.directory)) or "another process"
        raise UserError(
            f"{self.directory}: its checkpoints were replaced {attempts} times while being "
            f"listed, by the process training the run ({holder}); read it when that training "
            "ends, or stop it first."
        )

    def prune(self) -> None:
        """Applies the retention policy (newest `keep`, plus the best by eval/loss) to every
        checkpoint on disk, including those earlier processes saved (orbax's policy only sees
        its own process's saves)."""
        epochs = self.epochs()
        if len(epochs) <= self.keep:
            return
        keep = set(epochs[-self.keep :])
        best = self.best_epoch()
        if best is not None:
            keep.add(best)
        for e in epochs:
            if e not in keep:
                self.manager.delete(e)

    def epochs(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def best_epoch(self) -> int | None:
        """The checkpoint with the lowest finite eval/loss (the newest of equals); None when no
        checkpoint has one (a run that diverged saves its last parameters without metrics).
        (orbax's own best_step is the latest step unless the manager ranks by `best_fn`, which
        this one does not: it keeps the best by policy.)"""
        losses = {}
        for e in self.epochs():
            if e not in self._loss:
                try:
                    meta = self.meta(e) or {}
                    self._loss[e] = (meta.get("metrics") or {}).get("eval/loss")
                    self._stop[e] = bool(meta.get("stop"))
                except Exception:  # noqa: BLE001 - an unreadable one is no candidate for best
                    self._loss[e] = None
            # A stop's checkpoint is none either: an uninterrupted run has no such epoch.
            loss = None if self._stop.get(e) else self._loss[e]
            if isinstance(loss, int | float) and math.isfinite(loss):  # NaN, inf: none
                losses[e] = loss
        return min(losses, key=lambda e: (losses[e], -e)) if losses else None

    def save(self, epoch: int, state, meta: dict, metrics: dict | None) -> None:
        """Starts an asynchronous save of `state` (a pytree of arrays) at `epoch`.

        `meta["stop"]`: saved by a stop between the scheduled checkpoints (train.checkpoint_every
        and the end), to resume from. No candidate for best (a resumed run's best_epoch and
        `--which=best` were the stop's epoch where an uninterrupted run has none), and deleted
        once a later checkpoint is written, so a resumed run keeps an uninterrupted one's."""
        state = jax.tree.map(np.asarray, state)  # host copy: the device buffers may be donated
        stop = bool(meta.get("stop"))
        loss = (metrics or {}).get("eval/loss")
        self._loss[epoch], self._stop[epoch] = loss, stop
        if stop or (loss is not None and loss != loss):  # NaN: the worst for orbax's BestN,
            metrics = {**(metrics or {}), "eval/loss": float("inf")}  # which kept it as best
        if epoch in self.manager.all_steps():
            # This run already has one: its group resumed from an older epoch (a group-mate's
            # newer checkpoint was damaged and set aside). Training is deterministic, so the
            # new one is the same; orbax refuses to write over a step.
            self.manager.delete(epoch)
        self.manager.save(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            metrics=metrics,
            force=True,
        )
        if not stop and self._deletes:
            self.best_epoch()  # reads which earlier ones a stop saved
            stale = [e for e in self.epochs() if e < epoch and self._stop.get(e)]
            if stale:  # served their resume: gone once this one is on disk
                self.manager.wait_until_finished()
                for e in stale:
                    self.manager.delete(e)

    def set_aside(self, epoch: int) -> str:
        """Moves an unreadable checkpoint out of the way (kept, for inspection); returns where.
        Only the writer moves it (the other processes of a multi-host run pass over it)."""
        src = os.path.join(self.directory, str(epoch))
        dst = os.path.join(os.path.dirname(self.directory), "damaged_checkpoints", str(epoch))
        if not self._deletes:
            return dst
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(src, dst)
        self.manager.reload()
        return dst

    def current(self, which: str) -> int | None:
        """The newest checkpoint's epoch ('latest') or the best by eval/loss ('best'); None
        when there is none."""
        epochs = self.epochs()
        if not epochs:
            return None
        return self.best_epoch() if which == "best" else epochs[-1]

    def restore_current(self, which: str, attempts: int = 5) -> tuple[int, dict] | None:
        """(epoch, raw state) of `current(which)`, None when there is none. A process
        training the run deletes older checkpoints (files first, then the directory) as it
        saves newer ones: a read that fails while the listing has moved on is retried with the
        new listing; a failure with nothing newer to read is a DamagedCheckpoint."""
        for attempt in range(attempts):
            epoch = self.current(which)
            if epoch is None:
                return None
            try:
                return epoch, self.restore_raw(epoch)
            except Exception as e:  # noqa: BLE001 - orbax raises many types
                self._listed(self.manager.reload)
                if isinstance(e, PermissionError):  # readable by someone else: not damage
                    raise UserError(f"{self.directory}/{epoch} cannot be read: {e}") from None
                if self.current(which) == epoch:  # nothing moved: a real failure
                    raise DamagedCheckpoint(f"{self.directory}/{epoch}", e) from None
                time.sleep(0.05 * attempt)  # the writer's next save and deletion
        holder = workdir_lib.holder(os.path.dirname(self.directory)) or "another process"
        raise UserError(
            f"{self.directory}: its checkpoints were replaced {attempts} times while being "
            f"read, by the process training the run ({holder}); read it when that training "
            "ends, or stop it first."
        )

    def restore(self, epoch: int, target) -> tuple:
        """Restores (state, meta) at `epoch`; `target` gives the tree structure and shapes.

        Raises:
            DamagedCheckpoint: its files cannot be read (truncated, missing, corrupt).
            UserError: it is readable but holds another model's parameters.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        try:
            out = self.manager.restore(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as e:  # noqa: BLE001 - orbax raises many types; sorted out below
            try:  # Readable without a target: then it is another model's checkpoint.
                self.restore_raw(epoch)
                self.meta(epoch)
            except Exception as damage:  # noqa: BLE001
                raise DamagedCheckpoint(f"{self.directory}/{epoch}", damage) from None
            raise UserError(
                f"checkpoint {self.directory}/{epoch} does not fit this model: {e}. It was "
                "written by a different architecture or data width; use a new workdir."
            ) from None
        return out["state"], out["meta"]

    def restore_raw(self, epoch: int):
        """The saved state as stored (nested dicts of arrays), without a target structure."""
        return self.manager.restore(
            epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore())
        )["state"]

    def meta(self, epoch: int) -> dict:
        return self.manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]

    def close(self) -> None:
        """Waits for pending saves, applies the retention policy to every checkpoint (orbax's
        own policy passes over those of earlier processes: a resumed run's), then releases the
        manager."""
        self.manager.wait_until_finished()
        if self._deletes:
            self.prune()
        self.manager.close()


class NullCheckpointer:
    """Stands in for `Checkpointer` when `train.checkpoints` is off: saves nothing."""

    def epochs(self) -> list[int]:
        return []

    def best_epoch(self) -> None:
        return None

    def save(self, epoch: int, state, meta: dict, metrics: dict | None) -> None:
        pass

    def set_aside(self, epoch: int) -> str:
        return ""

    def close(self) -> None:
        pass


def save_group(runs: list, states, epoch: int, stop: bool = False) -> None:
    """Saves each run's state at `epoch`, once the TensorBoard points up to it are on disk: a
    resumed run redoes only the epochs after its checkpoint, so those before must survive a
    kill however soon after the (asynchronous) save it comes. `stop`: a stop's save between
    scheduled ones (see `Checkpointer.save`)."""
    for r in runs:
        assert r.tb is not None  # opened by train, before the first epoch
        r.tb.flush()
    host = distributed.fetch(states)  # Every process takes part in a gather ...
    if not distributed.is_writer():  # ... and one writes.
        return
    for i, r in enumerate(runs):
        last = r.history[-1] if r.history else None
        if last is not None and last["epoch"] != epoch:  # diverged inside this epoch: its ...
            last = None  # ... parameters (from before the non-finite step) have no metrics
        meta = {
            "epoch": epoch,
            "step": int(host.step[i]),
            "seed": r.hyper["seed"],
            "status": r.status,
            "metrics": last,
            "layout": r.layout,  # what a resume under another layout is told (startup.py)
            "software": r.software,  # ... and one under other software
            **({"stop": True} if stop else {}),
        }
        metrics = {"eval/loss": last["eval/loss"] if last else float("inf")}  # none: no best
        r.checkpointer.save(epoch, jax.tree.map(lambda a, i=i: a[i], host), meta, metrics)
