"""A stop's saved position inside an epoch: the group's state after its last finished chunk and
the per-step metrics so far, one file per run (workdir.PARTIAL), which the rerun resumes from so
that the resumed epoch equals an uninterrupted one bit for bit (`chunking.py`)."""

import dataclasses
import json
import os

import flax.serialization
import jax
import numpy as np
from absl import logging

from ae_jax import workdir as workdir_lib
from ae_jax.training import distributed, resumes


@dataclasses.dataclass
class Partial:
    """A group's state inside an epoch, after `next_chunk` of its chunks (one file per run)."""

    epoch: int
    next_chunk: int
    chunk: int
    states: list  # per run: the TrainState as a state dict
    metrics: dict  # name -> (K, steps done) per-step metrics
    rows: np.ndarray  # (K, steps done) real rows per step
    software: list = dataclasses.field(default_factory=list)  # per run: all that trained it

    @property
    def steps_done(self) -> int:
        return self.next_chunk * self.chunk

    @staticmethod
    def save_group(
        workdirs,
        epoch,
        next_chunk,
        chunk,
        states,
        metrics,
        rows,
        layout="",
        software=None,
        earlier=None,
    ) -> None:
        host = distributed.fetch(states)
        if not distributed.is_writer():
            return
        for i, w in enumerate(workdirs):
            blob = flax.serialization.msgpack_serialize(
                {
                    "epoch": epoch,
                    "next_chunk": next_chunk,
                    "chunk": chunk,
                    "state": flax.serialization.to_state_dict(
                        jax.tree.map(lambda a, i=i: np.asarray(a[i]), host)
                    ),
                    "metrics": {n: np.asarray(m[i]) for n, m in metrics.items()},
                    "rows": np.asarray(rows[i]),
                    "layout": layout,  # a resume under another one is told (load_group)
                    "models_together": len(workdirs),  # ... and one in another group
                    "software": software or {},  # likewise (`runtime.software()`)
                    # ... and each run's earlier processes' (kept through two stops in a row)
                    "earlier_software": json.dumps((earlier or [[]] * len(workdirs))[i]),
                }
            )
            path = os.path.join(w, workdir_lib.PARTIAL)
            with open(f"{path}.tmp", "wb") as f:
                f.write(blob)
            os.replace(f"{path}.tmp", path)

    @staticmethod
    def load_group(
        workdirs, after: int, chunk: int, layout: str = "", software=None, quiet=False
    ) -> "Partial | None":
        """The group's saved position inside an epoch later than `after` (the newest
        checkpoint's), if every run has the same one, saved with `chunk` steps per chunk;
        resumed under another device `layout` or other `software` than it was saved with,
        said so (`quiet`: nothing said, a look whether there is one to resume)."""
        warn = (lambda *a: None) if quiet else logging.warning
        blobs = []
        for w in workdirs:
            path = os.path.join(w, workdir_lib.PARTIAL)
            if not os.path.exists(path):
                return None
            try:
                with open(path, "rb") as f:
                    blobs.append(flax.serialization.msgpack_restore(f.read()))
            except (OSError, ValueError) as e:
                warn("ignoring %s: unreadable (%s); the epoch restarts", path, e)
                return None
        keys = {(int(b["epoch"]), int(b["next_chunk"]), int(b["chunk"])) for b in blobs}
        epoch, _, saved_chunk = next(iter(keys))
        why = (
            "the group's runs saved different positions"
            if len(keys) != 1
            else f"it is in epoch {epoch}, not after the checkpoint resumed from (epoch {after})"
            if epoch <= after
            else f"it was saved with {saved_chunk} steps per chunk and this run takes {chunk} "
            "(train.chunk_steps, train.log_seconds, the backend or the group changed)"
            if saved_chunk != chunk
            else ""
        )
        if why:
            warn(
                "ignoring the saved position inside an epoch: %s; %s",
                why,
                f"training resumes from the checkpoint of epoch {after}"
                if after
                else "training starts from epoch 1",
            )
            return None
        names = blobs[0]["metrics"].keys()
        what = "the position saved inside the epoch"
        if not quiet:
            resumes.warn_layout_change({str(b.get("layout", "")) for b in blobs}, layout, what)
            resumes.warn_group_change({b.get("models_together") for b in blobs}, len(blobs), what)
            resumes.warn_software_change(
                [b.get("software") or None for b in blobs], software or {}, what
            )
        return Partial(
            epoch,
            int(blobs[0]["next_chunk"]),
            chunk,
            [b["state"] for b in blobs],
            {n: np.stack([b["metrics"][n] for b in blobs]) for n in names},
            np.stack([b["rows"] for b in blobs]),
            [[b.get("software"), *json.loads(b.get("earlier_software") or "[]")] for b in blobs],
        )

    def restore_states(self, target):
        """The K saved states, stacked like `target` (host arrays)."""
        one = jax.tree.map(lambda a: a[0], target)
        states = [flax.serialization.from_state_dict(one, s) for s in self.states]
        return jax.tree.map(lambda *a: np.stack(a), *states)

    @staticmethod
    def remove(workdirs) -> None:
        for w in workdirs:
            path = os.path.join(w, workdir_lib.PARTIAL)
            if os.path.exists(path):
                os.remove(path)
