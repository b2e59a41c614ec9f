"""Reads the checkpoints ae_jax wrote with orbax until December 2026 (never writes them).

Such a checkpoint is `checkpoints/<epoch>/` holding orbax items: `state/` (the TrainState,
orbax's StandardSave: OCDBT and tensorstore files) and `meta/metadata` (the JSON `meta`).
A run trained then is still loaded, evaluated and resumed from them; its next checkpoints are
written in today's format (`checkpoint.py`) beside them, and the old ones pruned as usual.

Imported only when such a checkpoint is read: orbax takes ~0.1 s to import, which every launch
would otherwise pay.
"""

import json
import os

import jax
import orbax.checkpoint as ocp

STATE, META = "state", os.path.join("meta", "metadata")


def _checkpointer() -> ocp.Checkpointer:
    # Each process reads alone (no cross-host barriers), as the old CheckpointManager did.
    me = jax.process_index()
    return ocp.Checkpointer(
        ocp.StandardCheckpointHandler(),
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me}
        ),
    )


def read_state(directory: str, target=None):
    """The saved TrainState: in `target`'s structure (its shapes and dtypes checked by orbax),
    or as stored (nested dicts of arrays) when `target` is None."""
    path = os.path.join(os.path.abspath(directory), STATE)
    if target is None:
        return _checkpointer().restore(path)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return _checkpointer().restore(path, args=ocp.args.StandardRestore(abstract))


def read_meta(directory: str) -> dict:
    with open(os.path.join(directory, META)) as f:
        return json.load(f)
