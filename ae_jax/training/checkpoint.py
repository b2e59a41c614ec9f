"""Checkpoints of one run in `workdir/checkpoints/`, one directory per saved epoch.

The format (owned here) is two files in `checkpoints/<epoch>/`:
  state.npz   every array of the `TrainState` (params, optimizer state, step, divergence
              marker) under its pytree path, '/'-joined ('params/encoder/Dense_0/kernel')
  meta.json   the epoch (the data-order position: epoch e's order derives from (seed, e)), the
              step, the seed (the root of every random stream; per-step keys are folded from it
              and the step), the run's status, that epoch's metrics, the layout, the group's
              size and software (and `earlier_software`, of earlier epochs where it differed)
That is everything a resumed run needs to continue bit for bit where an uninterrupted one
would be. A checkpoint is written into `<epoch>.tmp-<pid>/` and renamed when complete, so a
process killed mid-save leaves the earlier checkpoints intact and its half-written one is
passed over (and removed by the next process that trains the run); one deleted is renamed
away first, and one saved again (the same state) is renamed away while the new one is renamed
in, and put back by the next process if a kill came between the two. A save is fsynced only
before it lets an older checkpoint be deleted (orbax's ~33 fsyncs a save were much of its
cost): a kill loses nothing written, and a machine that crashes keeps the newest checkpoint
that replaced others; a newer unreadable one the resume sets aside (`startup.restore`).

Why not orbax, which wrote them until December 2026: the models are small and one process
writes (a multi-host run gathers the state to process 0), so none of orbax's sharded,
asynchronous machinery was used, yet it cost ~25 ms of CPU a save: a 64-run sweep spent 1.7 s
of its 5 s writing its final checkpoints. np.savez writes one in ~0.3 ms. Those earlier
checkpoints are still read (`orbax_legacy.py`), never rewritten.
"""

import contextlib
import json
import math
import os
import shutil
import time
import zipfile

import jax
import ml_dtypes
import numpy as np

from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.training import distributed

STATE, META = "state.npz", "meta.json"
_TMP = ".tmp-"  # in the name of a checkpoint being written (orbax's: '.orbax-checkpoint-tmp-')


class DamagedCheckpoint(Exception):
    """A checkpoint whose files cannot be read; older ones may still be."""

    def __init__(self, where: str, cause: Exception):
        self.where = where
        text = " ".join(str(cause).split())[:200]
        super().__init__(f"{where} cannot be read ({type(cause).__name__}: {text})")


def _key(path) -> str:
    """A leaf's pytree path as its name in state.npz: its parts '/'-joined."""
    parts = [str(getattr(p, "name", getattr(p, "key", getattr(p, "idx", p)))) for p in path]
    if not parts or any("/" in p or not p for p in parts):
        raise ValueError(f"cannot name a checkpoint's array by its pytree path {path!r}")
    return "/".join(parts)


def _write_arrays(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes `arrays` as an uncompressed .npz (np.savez's format). A dtype numpy's format
    cannot name (bfloat16) is stored as unsigned ints of its width, named in `dtypes.json`."""
    views = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for key, a in arrays.items():
            a = np.asarray(a, order="C")  # (np.ascontiguousarray makes a scalar 1-d)
            if a.dtype.num >= 256:  # a user-defined dtype
                views[key] = a.dtype.name
                a = a.view(f"u{a.dtype.itemsize}")
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)
        if views:
            zf.writestr("dtypes.json", json.dumps(views))


def _read_arrays(path: str) -> dict[str, np.ndarray]:
    """The arrays `_write_arrays` wrote, each read whole (zipfile checks its CRC)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "dtypes.json"}
        views = json.loads(z["dtypes.json"]) if "dtypes.json" in z.files else {}
    for key, name in views.items():
        arrays[key] = arrays[key].view(np.dtype(getattr(ml_dtypes, name)))
    return arrays


def _sync(directory: str) -> None:
    """Makes a checkpoint's files, and its entry in the checkpoints directory, durable."""
    for name in (STATE, META, None, os.pardir):
        path = os.path.join(directory, name) if name else directory
        if name in (STATE, META) and not os.path.exists(path):
            continue  # (an orbax checkpoint: written durably by orbax itself)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _legacy(directory: str):
    """The reader of orbax's format when `directory` holds an old checkpoint, else None."""
    if os.path.exists(os.path.join(directory, STATE)):
        return None
    if not os.path.isdir(os.path.join(directory, "state")):
        return None
    from ae_jax.training import orbax_legacy  # orbax's import (~0.1 s), for old checkpoints only

    return orbax_legacy


class Checkpointer:
    """Saves and restores one run's checkpoints; keeps the last `keep` and the best."""

    def __init__(self, workdir: str, keep: int = 2, read_only: bool = False):
        self.directory = os.path.abspath(os.path.join(workdir, workdir_lib.CHECKPOINTS))
        self.keep = keep
        # Only the writer (process 0 of a multi-host run) writes, deletes or moves checkpoints:
        # the others read the same shared directory.
        self._deletes = not read_only and distributed.is_writer()
        self._loss: dict[int, float | None] = {}  # eval/loss by epoch, as saved or read
        self._stop: dict[int, bool] = {}  # saved by a stop between scheduled ones, by epoch
        self._saved: int | None = None  # the last epoch this process saved
        if not read_only:
            os.makedirs(self.directory, exist_ok=True)
        if self._deletes:
            self._put_back_replaced()
            for name in os.listdir(self.directory):  # a save a kill cut short (ours, orbax's)
                if _TMP in name or ".orbax-checkpoint-tmp" in name:
                    shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
            self.prune()

    def _path(self, epoch: int) -> str:
        return os.path.join(self.directory, str(epoch))

    def _put_back_replaced(self) -> None:
        """A kill between a re-save's two renames (`save`) left an epoch under neither name:
        its earlier copy goes back under its own (the new one may be cut short), if whole."""
        for name in os.listdir(self.directory):
            epoch, _, rest = name.partition(f"{_TMP}replaced-")
            if not (rest and epoch.isdigit()) or os.path.exists(self._path(int(epoch))):
                continue
            path = os.path.join(self.directory, name)
            if _legacy(path) or all(os.path.exists(os.path.join(path, f)) for f in (STATE, META)):
                os.rename(path, self._path(int(epoch)))

    def prune(self) -> None:
        """Applies the retention policy to every checkpoint on disk: the newest `keep` of the
        scheduled ones (a stop's are not counted, as an uninterrupted run has none), the best
        by eval/loss, the newest one when a stop saved it (to resume from), and the last one
        this process saved: a run resumed from an older epoch than its newest checkpoints
        (their metrics rows were lost) keeps what it trains again until it passes them.

        The last one saved (else the newest) is made durable (fsync) before any other is
        deleted, so a machine that crashes right after keeps a readable checkpoint."""
        epochs = self.epochs()
        best = self.best_epoch()  # (reads which ones a stop saved)
        scheduled = [e for e in epochs if not self._stop.get(e)]
        keep = set(scheduled[-self.keep :]) | {best, self._saved}
        if epochs and self._stop.get(epochs[-1]):
            keep.add(epochs[-1])
        gone = [e for e in epochs if e not in keep]
        if gone:  # the one that replaces them made durable first
            _sync(self._path(epochs[-1] if self._saved is None else self._saved))
        for e in gone:
            self._delete(e)

    def _delete(self, epoch: int) -> None:
        """Removes a checkpoint at once for readers: renamed out of the listing first (a
        reader never meets one half deleted, which would read as damaged), then deleted."""
        gone = f"{self._path(epoch)}{_TMP}deleted-{os.getpid()}"
        try:
            os.rename(self._path(epoch), gone)
        except FileNotFoundError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def epochs(self) -> list[int]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def best_epoch(self) -> int | None:
        """The checkpoint with the lowest finite eval/loss (the newest of equals); None when no
        checkpoint has one (a run that diverged saves its last parameters without metrics)."""
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

    def save(self, epoch: int, state, meta: dict) -> None:
        """Writes `state` (a pytree of arrays) and `meta` as the checkpoint of `epoch`.

        `meta["stop"]`: saved by a stop between the scheduled checkpoints (train.checkpoint_every
        and the end), to resume from. No candidate for best (a resumed run's best_epoch and
        `--which=best` were the stop's epoch where an uninterrupted run has none), and deleted
        once a later checkpoint is written, so a resumed run keeps an uninterrupted one's."""
        arrays = {_key(p): np.asarray(a) for p, a in jax.tree_util.tree_leaves_with_path(state)}
        self._loss[epoch] = (meta.get("metrics") or {}).get("eval/loss")
        self._stop[epoch] = bool(meta.get("stop"))
        final = self._path(epoch)
        tmp = f"{final}{_TMP}{os.getpid()}"
        if os.path.exists(tmp):  # this process's own, cut short by an error before
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        _write_arrays(os.path.join(tmp, STATE), arrays)
        workdir_lib.write_json(os.path.join(tmp, META), meta)  # as the run's other JSON files
        # This run may already have one: its group resumed from an older epoch (a group-mate's
        # newer checkpoint was damaged and set aside, or metrics rows were lost). Training is
        # deterministic, so the new one is the same: the old is renamed away, then replaced.
        old = f"{final}{_TMP}replaced-{os.getpid()}" if os.path.exists(final) else None
        if old:
            os.rename(final, old)
        os.rename(tmp, final)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        self._saved = epoch
        if self._deletes:
            self.prune()

    def set_aside(self, epoch: int) -> str:
        """Moves an unreadable checkpoint out of the way (kept, for inspection); returns where.
        Only the writer moves it (the other processes of a multi-host run pass over it)."""
        src = self._path(epoch)
        dst = os.path.join(os.path.dirname(self.directory), "damaged_checkpoints", str(epoch))
        if not self._deletes:
            return dst
        os.makedirs(os.path.dirname(dst), exist_ok=True)  # (a second one of an epoch: EPOCH@2)
        dst = workdir_lib.free_name(dst)
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile: nothing to set aside
            os.replace(src, dst)
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
        training the run deletes older checkpoints as it saves newer ones: a read that fails
        while the listing has moved on is retried with the new listing; a failure with nothing
        newer to read is a DamagedCheckpoint."""
        missing: set[int] = set()  # listed, then a file not found: read once more
        for attempt in range(attempts):
            epoch = self.current(which)
            if epoch is None:
                return None
            try:
                return epoch, self.restore_raw(epoch)
            except Exception as e:  # noqa: BLE001 - many kinds of damage; sorted out below
                if isinstance(e, PermissionError):  # readable by someone else: not damage
                    raise UserError(f"{self._path(epoch)} cannot be read: {e}") from None
                replaced = isinstance(e, FileNotFoundError) and epoch not in missing
                missing.add(epoch)  # (being replaced by the writer, the first time)
                if self.current(which) == epoch and not replaced:  # a real failure
                    raise DamagedCheckpoint(self._path(epoch), e) from None
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
        path = self._path(epoch)
        legacy = _legacy(path)
        try:
            meta = self.meta(epoch)
            arrays = self._arrays(epoch) if legacy is None else {}
        except PermissionError as e:
            raise UserError(f"{path} cannot be read: {e}") from None
        except Exception as e:  # noqa: BLE001 - truncated, corrupt, missing: all damage
            raise DamagedCheckpoint(path, e) from None
        if legacy is not None:
            try:
                return legacy.read_state(path, target), meta
            except Exception as e:  # noqa: BLE001 - orbax raises many types
                try:  # Readable without a target: then it is another model's checkpoint.
                    legacy.read_state(path)
                except Exception as damage:  # noqa: BLE001
                    raise DamagedCheckpoint(path, damage) from None
                raise UserError(
                    f"checkpoint {path} does not fit this model: {e}. It was written by a "
                    "different architecture or data width; use a new workdir."
                ) from None
        leaves, treedef = jax.tree_util.tree_flatten_with_path(target)
        want = {_key(p): np.shape(a) for p, a in leaves}
        got = {k: a.shape for k, a in arrays.items()}
        if want != got:
            diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
            shown = "; ".join(f"{k}: checkpoint {got.get(k)} vs model {want.get(k)}" for k in diff)
            raise UserError(
                f"checkpoint {path} does not fit this model ({shown[:400]}). It was written "
                "by a different architecture or data width; use a new workdir."
            )
        values = [arrays[_key(p)].astype(np.dtype(a.dtype), copy=False) for p, a in leaves]
        return jax.tree_util.tree_unflatten(treedef, values), meta

    def _arrays(self, epoch: int) -> dict[str, np.ndarray]:
        return _read_arrays(os.path.join(self._path(epoch), STATE))

    def restore_raw(self, epoch: int):
        """The saved state as stored (nested dicts of arrays), without a target structure."""
        path = self._path(epoch)
        if (legacy := _legacy(path)) is not None:
            return legacy.read_state(path)
        tree: dict = {}
        for key, a in self._arrays(epoch).items():
            *parents, leaf = key.split("/")
            node = tree
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = a
        return tree

    def meta(self, epoch: int) -> dict:
        path = self._path(epoch)
        if (legacy := _legacy(path)) is not None:
            return legacy.read_meta(path)
        with open(os.path.join(path, META)) as f:
            return json.load(f)

    def close(self) -> None:
        """Applies the retention policy to every checkpoint (an earlier process's too)."""
        if self._deletes:
            self.prune()


class NullCheckpointer:
    """Stands in for `Checkpointer` when `train.checkpoints` is off: saves nothing."""

    def epochs(self) -> list[int]:
        return []

    def best_epoch(self) -> None:
        return None

    def save(self, epoch: int, state, meta: dict) -> None:
        pass

    def set_aside(self, epoch: int) -> str:
        return ""

    def close(self) -> None:
        pass


def save_group(runs: list, states, epoch: int, stop: bool = False) -> None:
    """Saves each run's state at `epoch`, once the TensorBoard points up to it are on disk: a
    resumed run redoes only the epochs after its checkpoint, so those before must survive a
    kill however soon after the save it comes. `stop`: a stop's save between
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
            "step": int(host.step[i]) if r.diverged_step is None else r.diverged_step,
            "seed": r.hyper["seed"],
            "status": r.status,
            "metrics": last,
            "layout": r.layout,  # what a resume under another layout is told (resumes.py)
            "models_together": len(runs),  # ... and one in a group of another size
            "software": r.software,  # ... and one under other software
            "earlier_software": r.earlier_software,
            **({"stop": True} if stop else {}),
        }
        r.checkpointer.save(epoch, jax.tree.map(lambda a, i=i: a[i], host), meta)
