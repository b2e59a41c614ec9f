"""A run's checkpoints rewritten in the format ae_jax wrote until December 2026: orbax's
CheckpointManager, items `state` (StandardSave) and `meta` (JsonSave), as the old Checkpointer
saved them; to test that runs trained then are still loaded and resumed."""

import os
import shutil

import orbax.checkpoint as ocp

from ae_jax.training.checkpoint import Checkpointer


def _lists(tree):
    """The stored tree with the optimizer state's tuples as orbax saved them (lists), not the
    dicts keyed '0', '1', ... that today's raw read gives."""
    if isinstance(tree, dict):
        tree = {k: _lists(v) for k, v in tree.items()}
        if tree and sorted(tree) == [str(i) for i in range(len(tree))]:
            return [tree[str(i)] for i in range(len(tree))]
    return tree


def to_orbax(workdir: str) -> list[int]:
    """Rewrites every checkpoint of the run in `workdir` as orbax did; returns their epochs."""
    ck = Checkpointer(workdir, read_only=True)
    epochs = ck.epochs()
    for e in epochs:
        state, meta = _lists(ck.restore_raw(e)), ck.meta(e)
        shutil.rmtree(os.path.join(ck.directory, str(e)))
        manager = ocp.CheckpointManager(
            ck.directory,
            item_names=("state", "meta"),
            options=ocp.CheckpointManagerOptions(create=False),
        )
        manager.save(
            e,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        manager.wait_until_finished()
        manager.close()
    return epochs
