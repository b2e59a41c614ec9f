"""Where arrays live: one device, data parallel, or the models axis over devices.

`train.parallel` picks the layout over all devices (`jax.devices()`, every host's):
- "data": a Mesh over the devices with axis "data"; each batch is sharded along it
  (the global batch is `train.batch_size`), parameters and optimizer state are
  replicated, and XLA inserts the gradient all-reduce. Equal to one device up to
  float rounding of the reductions.
- "models": K models trained together are split along a Mesh axis "models": each
  device trains K / n of them; nothing is communicated.
- "none": everything on the default device.
- "auto" (default): "models" when K > 1 divides evenly over the devices, else "data"
  when the batch divides evenly, else "none" (saying why).

Arrays are placed with `jax.make_array_from_callback`, which works unchanged when the
devices span several processes (multi-host): each process fills its own shards.
"""

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ae_jax.errors import UserError

MODES = ("auto", "none", "data", "models")


def choose_mode(
    setting: str,
    k: int,
    batch_size: int,
    eval_batch: int,
    n_dev: int,
    configured: int = 0,
    warn: bool = True,
) -> str:
    """The layout to use; explicit settings that cannot work are a UserError. `batch_size` is
    the batch trained with; `configured`, train.batch_size when larger (cut to the training
    split's rows); `warn`: say when 'auto' falls back to one device."""
    batch = (
        f"{batch_size}"
        if configured in (0, batch_size)
        else (
            f"{batch_size} (train.batch_size={configured} cut to the training split's "
            f"{batch_size} rows)"
        )
    )
    if setting == "none" or n_dev == 1:
        return "none"
    models_ok, data_ok = k > 1 and k % n_dev == 0, batch_size % n_dev == 0
    if setting == "models" and not models_ok:
        raise UserError(
            f"train.parallel='models' needs the number of models trained together "
            f"({k}) to be a multiple of the {n_dev} devices: train a multiple of {n_dev} "
            "(train.num_models), or use train.parallel='auto', which splits the batch instead "
            "when the models do not divide."
        )
    if setting == "data" and not data_ok:
        raise UserError(
            f"train.parallel='data' needs the batch, {batch}, to be a multiple of the "
            f"{n_dev} devices: set train.batch_size to a multiple of {n_dev} (e.g. "
            f"{max(n_dev, batch_size // n_dev * n_dev)}), or use train.parallel='auto', which "
            "trains on one device when neither the models nor the batch divide."
        )
    if setting != "auto":
        return setting
    if models_ok:
        return "models"
    if data_ok:
        return "data"
    if warn:
        logging.warning(
            "train.parallel='auto': %d model(s) and batch %s do not divide over %d "
            "devices; training on one device.",
            k,
            batch,
            n_dev,
        )
    return "none"


class Placement:
    """Shardings for one layout, and the functions that put host arrays there."""

    def __init__(self, mode: str, devices=None):
        self.mode = mode
        self.devices = list(devices if devices is not None else jax.devices())
        self.n = len(self.devices) if mode != "none" else 1
        if mode == "none":
            self.mesh = None
            self.batch_sharding = None
            return
        axis = "data" if mode == "data" else "models"
        self.mesh = Mesh(np.array(self.devices), (axis,))
        self.replicated_sharding = NamedSharding(self.mesh, P())
        self.model_sharding = NamedSharding(self.mesh, P("models")) if mode == "models" else None
        # Inside the scanned step: a batch (B, D) and its mask (B,) split along "data".
        self.batch_sharding = NamedSharding(self.mesh, P("data")) if mode == "data" else None

    def _put(self, tree, sharding):
        if sharding is None:
            return jax.device_put(tree)

        def put(x):
            if isinstance(x, jax.Array) and x.sharding == sharding:
                return x  # placed already: its shards may live on other hosts
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

        return jax.tree.map(put, tree)

    def replicated(self, tree):
        """Data every device needs whole: the training and validation rows."""
        return self._put(tree, None if self.mesh is None else self.replicated_sharding)

    def per_model(self, tree):
        """Arrays with a leading K axis (states, hyperparameters, row orders)."""
        if self.mesh is None:
            return jax.device_put(tree)
        return self._put(tree, self.model_sharding or self.replicated_sharding)

    @property
    def state_sharding(self):
        """Sharding of arrays with a leading K axis, or None on one device."""
        if self.mesh is None:
            return None
        return self.model_sharding or self.replicated_sharding

    def describe(self) -> str:
        kinds = sorted({d.platform for d in self.devices})
        where = (
            f"{len(self.devices)} device(s) ({', '.join(kinds)}, {jax.process_count()} process(es))"
        )
        return {
            "none": f"one device of {where}",
            "data": f"data parallel over {where}",
            "models": f"models split over {where}",
        }[self.mode]
