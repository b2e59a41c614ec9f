"""The compiled core: train state, optimizer, one pure step, a fused epoch, eval.

Everything here works on K >= 1 models at once. K stacked `TrainState`s and K
hyper dicts go through `jax.vmap`; for K = 1 the same functions run unbatched, so
a single run pays nothing for the multi-model machinery and "K together equals K
alone" is a real comparison of two different programs (tests/test_multi.py).

An epoch is one jitted `lax.scan` over device-resident data: the host passes only
the epoch's row order, an int32 array (num_batches, batch_size) padded with -1.
Padded rows carry mask 0, so a batch size that does not divide the data gives a
smaller last batch, as in Keras' `fit`, without a second compiled shape.
"""

import functools
import math
from collections.abc import Callable
from typing import Any, cast

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ae_jax import models
from ae_jax.data import images
from ae_jax.training import losses, objective, optim

# Independent random streams, all derived from the run's seed.
_INIT, _TRAIN, _EVAL, _BINARIZE = 0, 1, 2, 3


class TrainState(flax.struct.PyTreeNode):
    step: jax.Array  # int32, optimizer steps taken
    params: Any
    opt_state: Any
    # -1 while healthy; else the first step whose loss, gradient or update was non-finite.
    # From then on updates are skipped, so params stay at the last finite values.
    diverged_step: jax.Array


def epoch_order(seed: int, epoch: int, n: int, batch_size: int, shuffle: bool) -> np.ndarray:
    """Row order of one epoch, (ceil(n / batch_size), batch_size) int32, padded with -1.

    Computed on the host from (seed, epoch) alone, so a resumed run sees the same
    batches, and cheaply (numpy's permutation of 10k rows takes ~0.1 ms, while
    `jax.random.permutation` costs more than a whole epoch of the seed models on a
    CPU). The host computes epoch e+1's order while the device runs epoch e.
    """
    if shuffle:
        rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0xAE]))
        order = rng.permutation(n).astype(np.int32)
    else:
        order = np.arange(n, dtype=np.int32)
    num_batches = -(-n // batch_size)
    padded = np.full(num_batches * batch_size, -1, np.int32)
    padded[:n] = order
    return padded.reshape(num_batches, batch_size)


def stacked_orders(
    seeds: list[int], epoch: int, n: int, batch_size: int, shuffle: bool, steps: int
) -> np.ndarray:
    """(K, steps, batch_size) row orders of `epoch` for K models of `seeds`: each model's
    `epoch_order`, followed by whole batches of -1 up to `steps` (a chunked epoch skips them).

    An order depends on (seed, epoch) alone, and a sweep's models share seeds (8 L1 weights x
    8 seeds: 8 orders for 64 models), so each seed's is computed once (K = 1,024 models of 128
    seeds on the purchase table's size, 2 CPU cores: 0.188 -> 0.060 s of the host per epoch,
    beside a ~2.5 s epoch; on an H200 it had been 0.24 s beside a 0.26 s epoch).
    """
    index: dict[int, int] = {}  # seed -> its order's place in `unique`
    for seed in seeds:
        index.setdefault(seed, len(index))
    unique = np.stack([epoch_order(seed, epoch, n, batch_size, shuffle) for seed in index])
    out = np.full((len(seeds), steps, batch_size), -1, np.int32)
    out[:, : unique.shape[1]] = unique[[index[seed] for seed in seeds]]
    return out


class Engine:
    """Builds and compiles the model's init, epoch and eval programs for one static config."""

    def __init__(
        self,
        config,
        num_features: int,
        num_train: int,
        terms: frozenset | None = None,
        image_shape: tuple[int, ...] | None = None,
        dynamic_binarize: bool = False,
        batch_sharding=None,
        layout: tuple | None = None,
        num_val: int | None = None,
    ):
        self.config = config
        self.num_features = num_features
        self.model = models.model_from_config(config, num_features, image_shape, layout)
        # A batch larger than the data would only add padding: use one full batch.
        self.batch_size = min(int(config.train.batch_size), num_train)
        self.steps_per_epoch = math.ceil(num_train / self.batch_size)
        self.tx = optim.make_optimizer(config.optim, self.steps_per_epoch, config.train.epochs)
        # The optional loss terms (objective.OPTIONAL_TERMS) of this run, or of its group.
        self.terms = objective.optional_terms([config]) if terms is None else frozenset(terms)
        self.loss_fn = objective.make_loss_fn(
            self.model, config, self.terms, num_train, self.steps_per_epoch, num_val
        )
        self.traces = 0  # incremented when the epoch program is traced (retrace guard)
        # Burda et al.'s dynamic binarisation: a fresh Bernoulli draw of each batch per step.
        self.dynamic_binarize = dynamic_binarize
        # Data parallelism: the sharding of a batch's rows over the mesh (training/placement.py).
        self.batch_sharding = batch_sharding

    # ---- pure functions of one model; vmapped for K models ----

    def init(self, hyper) -> TrainState:
        key = jax.random.PRNGKey(hyper["seed"])
        dummy = jnp.zeros((1, self.num_features), jnp.float32)
        params = self.model.init(
            jax.random.fold_in(key, _INIT), dummy, jax.random.fold_in(key, _EVAL)
        )["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=self.tx.init(params),
            diverged_step=jnp.full((), -1, jnp.int32),
        )

    def train_step(self, state: TrainState, hyper, x, mask) -> tuple[TrainState, dict]:
        """One optimizer step on batch x (B, D) with row mask (B,)."""
        key = jax.random.fold_in(jax.random.PRNGKey(hyper["seed"]), _TRAIN)
        rng = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(self.loss_fn, has_aux=True)
        (loss, terms), grads = grad_fn(state.params, x, mask, rng, hyper, True, state.step)
        # optax multiplies its int32 step count by Python floats (Adam's bias correction,
        # schedules): its update is traced under standard promotion, our code under any.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: hyper["learning_rate"] * u, updates)
        params = optax.apply_updates(state.params, updates)
        grad_norm = _tree_norm(grads)
        # The new parameters too: an update can be NaN from finite gradients (Adam's 0 / 0 at
        # eps = 0 where a gradient is 0; a decay rate of 1).
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & _all_finite(params)
        healthy = state.diverged_step < 0
        keep_new = finite & healthy
        pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(keep_new, a, b), new, old)
        state = TrainState(
            step=state.step + 1,
            params=pick(params, state.params),
            opt_state=pick(opt_state, state.opt_state),
            diverged_step=jnp.where(healthy & ~finite, state.step, state.diverged_step),
        )
        return state, {"loss": loss, **terms, "grad_norm": grad_norm}

    def train_steps(
        self, state: TrainState, hyper, x_train, order, skip_empty: bool = False
    ) -> tuple[TrainState, tuple[dict, jax.Array]]:
        """The batches of `order` (c, B) as one `lax.scan`: a chunk of an epoch, or all of it.

        Returns the state after them and, per step, the metrics and the number of real rows,
        each of shape (c,): the host reduces them to the epoch's row-weighted means, so an epoch
        split into chunks gives bit for bit the numbers of an epoch run as one scan.
        `skip_empty`: rows of -1 only (padding that makes the epoch a whole number of chunks)
        leave the state unchanged, so the padded epoch equals the unpadded one.
        """
        self.traces += 1

        def body(state, idx):
            mask = (idx >= 0).astype(jnp.float32)
            batch, mask = self._shard_batch(x_train[jnp.maximum(idx, 0)], mask)
            if self.dynamic_binarize:
                key = jax.random.fold_in(jax.random.PRNGKey(hyper["seed"]), _BINARIZE)
                batch = images.binarize(batch, jax.random.fold_in(key, state.step))
            new, metrics = self.train_step(state, hyper, batch, mask)
            if skip_empty:
                real = idx[0] >= 0  # padding fills whole batches at the end of an order
                new = jax.tree.map(lambda a, b: jnp.where(real, a, b), new, state)
            return new, (metrics, jnp.sum(mask))

        return jax.lax.scan(body, state, order)

    def eval_step(self, params, hyper, x, mask, batch=0) -> dict:
        """Validation terms on batch number `batch`, plus `mse`: per-element MSE of the
        deterministic reconstruction (a VAE decodes its posterior mean). Each batch draws its
        own posterior noise (batch 0 the key it always had, so a one-batch validation's numbers
        are those of earlier versions); one key for all made rows in the same place of
        different batches share their draws."""
        rng = jax.random.fold_in(jax.random.PRNGKey(hyper["seed"]), _EVAL)
        rng = jnp.where(batch == 0, rng, jax.random.fold_in(rng, batch))
        loss, terms = self.loss_fn(params, x, mask, rng, hyper, False)
        # `_reconstruct` returns one array; flax's `apply` is typed for any method.
        recon = cast(jax.Array, self.model.apply({"params": params}, x, method=_reconstruct))
        recon = recon.astype(jnp.float32)
        w = mask / jnp.maximum(jnp.sum(mask), 1.0)
        mse = losses.weighted(w, jnp.mean(jnp.square(recon - x), axis=-1))
        return {"loss": loss, **terms, "mse": mse}

    def evaluate(self, params, hyper, x_batches, masks) -> dict:
        """Eval over padded batches (nb, B, D) with masks (nb, B); row-weighted means."""

        def body(_, inp):
            x, mask = self._shard_batch(*inp[:2])
            return None, (self.eval_step(params, hyper, x, mask, inp[2]), jnp.sum(mask))

        batches = jnp.arange(x_batches.shape[0], dtype=jnp.uint32)
        _, (metrics, rows) = jax.lax.scan(body, None, (x_batches, masks, batches))
        return jax.tree.map(lambda m: jnp.sum(m * rows) / jnp.sum(rows), metrics)

    def _shard_batch(self, x, mask):
        """Data parallel: split the batch's rows over the mesh (parameters stay replicated)."""
        if self.batch_sharding is None:
            return x, mask
        return (
            jax.lax.with_sharding_constraint(x, self.batch_sharding),
            jax.lax.with_sharding_constraint(mask, self.batch_sharding),
        )

    # ---- compiled programs over K stacked models ----

    def compile(
        self, k: int, per_model=None, replicated=None, skip_empty: bool = False
    ) -> "Programs":
        """jit (and vmap when k > 1) init, a chunk of training steps, and eval for k models.

        Args:
          k: the number of models trained together.
          per_model: sharding of every array with the leading K axis (states, hyper,
            orders, metrics); None = the default device.
          replicated: sharding of the data every device needs whole.
          skip_empty: the chunk program leaves state unchanged on all-padding batches.
        Pinning both keeps one layout from epoch to epoch, so the compiled programs
        never see arguments laid out differently from what they were compiled for.
        """
        # Initialisation runs one model at a time (see `init_many`): a vmapped init of 64
        # models took 2.5 s to compile against 0.2 s for one, and this way K models start
        # bit for bit where K separate runs start.
        steps = functools.partial(self.train_steps, skip_empty=skip_empty)
        if per_model is None:
            return Programs(
                init=jax.jit(self.init),
                epoch=jax.jit(_over_models(steps, k, (0, 0, None, 0)), donate_argnums=0),
                evaluate=jax.jit(_over_models(self.evaluate, k, (0, 0, None, None))),
            )
        s, r = per_model, replicated
        return Programs(
            init=jax.jit(self.init),
            epoch=jax.jit(
                _over_models(steps, k, (0, 0, None, 0)),
                donate_argnums=0,
                in_shardings=(s, s, r, s),
                out_shardings=(s, s),
            ),
            evaluate=jax.jit(
                _over_models(self.evaluate, k, (0, 0, None, None)),
                in_shardings=(s, s, r, r),
                out_shardings=s,
            ),
        )


# optax.tree.norm replaced optax.global_norm (deprecated) in newer optax releases.
_tree_norm = getattr(getattr(optax, "tree", None), "norm", None) or optax.global_norm


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(tree)]))


def one_hyper(hyper: dict) -> dict:
    """One model's hyperparameters as the init program takes them (host arrays)."""
    return {key: np.asarray(v) for key, v in hyper.items()}


# Initialisation runs once per model: how fast its code runs hardly matters, how long it takes
# to compile does. On CPU at XLA's default optimisation its compile took 0.56 s of a cold
# 2.8 s seed_sparse run (a convolutional model's 1.5 s), at level 0 0.16 s (0.5 s). The weights
# differ from the default level's in ~1% of them, by at most 4 units in the last place
# (seeds 0-4 of seed_simple, seed_deep, seed_vae, conv_ae_mnist).
# Not set for other backends, where it was not measured.
INIT_COMPILER_OPTIONS: dict[str, str | bool] = {"xla_backend_optimization_level": "0"}


def compile_init(init: jax.stages.Wrapped, hyper: dict) -> jax.stages.Compiled:
    """The init program (`Programs.init`) compiled ahead of time for `hyper`'s types: on CPU
    at XLA's lowest optimisation level (`INIT_COMPILER_OPTIONS`)."""
    options = INIT_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    return init.lower(one_hyper(hyper)).compile(options)


def init_many(init: Callable, hypers: list[dict], progress: Callable | None = None):
    """K initial states from the single-model init program, stacked on a leading axis (host).

    `progress(i, k)` is called after each model (it may log, or raise to stop).
    """
    states = []
    for i, h in enumerate(hypers):
        states.append(jax.device_get(init(one_hyper(h))))
        if progress is not None:
            progress(i + 1, len(hypers))
    return jax.tree.map(lambda *a: np.stack(a), *states)


def abstract_states(init: Callable, hyper: dict, k: int):
    """The shapes and dtypes of K stacked initial states, computed without initialising any."""
    one = jax.eval_shape(init, one_hyper(hyper))
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((k, *a.shape), a.dtype), one)


def _reconstruct(module, x):
    return module.decode(module.encode(x))


@flax.struct.dataclass
class Programs:
    # jitted, so they can be lowered and compiled ahead of time
    init: jax.stages.Wrapped = flax.struct.field(pytree_node=False)
    epoch: jax.stages.Wrapped = flax.struct.field(pytree_node=False)
    evaluate: jax.stages.Wrapped = flax.struct.field(pytree_node=False)


def _over_models(fn: Callable, k: int, in_axes: tuple) -> Callable:
    """vmap over a leading model axis; for k == 1 call fn unbatched and re-add the axis."""
    if k > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def single(*args):
        args = [
            jax.tree.map(lambda a: a[0], arg) if axis == 0 else arg
            for arg, axis in zip(args, in_axes, strict=True)
        ]
        return jax.tree.map(lambda a: a[None], fn(*args))

    return single


def pad_batches(x: np.ndarray, batch_size: int, multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(n, D) -> (nb, B, D) zero-padded rows and (nb, B) masks, for `Engine.evaluate`.

    Batch b holds rows b*R .. b*R + R - 1, R = `batch_size` (or n), whatever `multiple` (the
    number of devices a data-parallel batch is split over): each batch is padded with masked
    rows up to B, R rounded up to a multiple of it. So the batches, and what depends on them
    (a VAE's per-batch draws, the batch-statistic terms), are the same on any device count.
    """
    n, d = x.shape
    rows = max(min(batch_size, n), 1)
    width = -(-rows // multiple) * multiple
    nb = -(-n // rows)
    xp = np.zeros((nb, width, d), np.float32)
    mask = np.zeros((nb, width), np.float32)
    for b in range(nb):
        part = x[b * rows : (b + 1) * rows]
        xp[b, : len(part)] = part
        mask[b, : len(part)] = 1.0
    return xp, mask


def count_params(params) -> int:
    return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
