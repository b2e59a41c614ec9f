"""The in-process JAX contenders of the throughput, compute and many-models sections.

EngineRunner runs an epoch the way `ae_jax.training.loop` does, through the engine's public
programs: the host computes the row order, the compiled epoch (in chunks when
`chunking.steps_per_chunk` says so) runs, and the per-step metrics of shape (K, steps) are
fetched and reduced on the host to row-weighted epoch means. PlainRunner is the
Flax-examples loop: a `TrainState`, a `@jax.jit` step per batch, host-permuted numpy batches.
"""

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from ae_jax import config as config_lib
from ae_jax import models
from ae_jax.training import chunking, objective
from ae_jax.training import engine as engine_lib


def row_means(metrics: dict, rows: np.ndarray) -> dict:
    """(K, S) per-step metrics and real rows per step -> (K,) row-weighted epoch means, as the
    training loop reduces them (steps without real rows, i.e. chunk padding, count zero)."""
    w = np.asarray(rows, np.float64)
    total = np.maximum(w.sum(axis=1), 1.0)
    return {
        n: (np.where(w > 0, np.asarray(m, np.float64), 0.0) * w).sum(axis=1) / total
        for n, m in metrics.items()
    }


class EngineRunner:
    """The project's per-epoch loop for the one model of `config` (K = 1), or K models of its
    static config together (`hypers`, one per model: seed, L1 weight, ...)."""

    label = "engine"

    def __init__(self, config, x_train: np.ndarray, hypers: list[dict] | None = None):
        n, d = x_train.shape
        self.n, self.shuffle, self.epoch = n, config.train.shuffle, 0
        self.engine = engine_lib.Engine(config, d, n)
        self.hypers = hypers or [objective.hyper_from_config(config)]
        self.k = len(self.hypers)
        self.order_s: list[float] = []  # host seconds computing each next epoch's K orders
        self.hyper = objective.stack_hypers(self.hypers)
        self.x = jax.device_put(x_train)
        steps, batch = self.engine.steps_per_epoch, self.engine.batch_size
        t0 = time.perf_counter()
        progs = self.engine.compile(self.k)
        init = engine_lib.compile_init(progs.init, self.hypers[0])  # as the loop compiles it
        self.states = jax.device_put(engine_lib.init_many(init, self.hypers))
        t1 = time.perf_counter()
        zeros = lambda s: np.zeros((self.k, s, batch), np.int32)
        lowered = progs.epoch.lower(self.states, self.hyper, self.x, zeros(steps))
        # As the loop: an epoch XLA's cost analysis deems long runs as chunks of it.
        self.chunk = chunking.steps_per_chunk(
            lowered, steps, float(config.train.log_seconds), int(config.train.chunk_steps)
        )
        if self.chunk < steps:
            progs = self.engine.compile(self.k, skip_empty=steps % self.chunk != 0)
            lowered = progs.epoch.lower(self.states, self.hyper, self.x, zeros(self.chunk))
        self.n_chunks = math.ceil(steps / self.chunk)
        self.epoch_fn = lowered.compile()
        t2 = time.perf_counter()
        self.order = self._order(0)
        # init = the one-model init program (compiled once) run K times, and the first order.
        self.init_s = t1 - t0 + time.perf_counter() - t2
        self.aot_compile_s = t2 - t1

    def _order(self, epoch: int) -> np.ndarray:
        seeds = [h["seed"] for h in self.hypers]
        steps = self.n_chunks * self.chunk  # whole batches of -1 past the epoch: skipped
        return engine_lib.stacked_orders(
            seeds, epoch, self.n, self.engine.batch_size, self.shuffle, steps
        )

    def run_epoch(self) -> dict:
        parts, rows, c = [], [], self.chunk
        for ci in range(self.n_chunks):
            self.states, (m, r) = self.epoch_fn(
                self.states, self.hyper, self.x, self.order[:, ci * c : (ci + 1) * c]
            )
            if ci == self.n_chunks - 1:
                t0 = time.perf_counter()
                # As the loop: the next order is computed while the device runs the epoch.
                self.order = self._order(self.epoch + 1)
                self.order_s.append(time.perf_counter() - t0)
            m, r = jax.device_get((m, r))
            parts.append(m)
            rows.append(r)
        self.epoch += 1
        metrics = {n: np.concatenate([p[n] for p in parts], axis=1) for n in parts[0]}
        means = row_means(metrics, np.concatenate(rows, axis=1))
        jax.device_get(self.states.diverged_step)
        return means


def plain_optimizer(config) -> optax.GradientTransformation:
    """The config's optax optimizer built the usual way, learning rate inside."""
    kwargs = {k: config.optim[k] for k in config_lib.OPTIM_KWARGS if config.optim[k] is not None}
    return getattr(optax, config.optim.name)(learning_rate=config.optim.learning_rate, **kwargs)


class PlainRunner:
    """The Flax-examples loop: jitted step per batch, host-side shuffling and slicing.

    The last, partial batch is trained too (a second compiled shape), so every
    contender processes the same rows per epoch.
    """

    label = "plain"

    def __init__(self, config, x_train: np.ndarray):
        n, d = x_train.shape
        self.x, self.batch_size, self.epoch = x_train, int(config.train.batch_size), 0
        self.seed = int(config.train.seed)
        model = models.build_model(config.model, d)
        hyper = objective.hyper_from_config(config)  # Python floats: constants of the step.
        loss_fn = objective.make_loss_fn(model, config)
        key = jax.random.PRNGKey(self.seed)
        params = model.init(key, jnp.zeros((1, d), jnp.float32), key)["params"]
        self.state = train_state.TrainState.create(
            apply_fn=model.apply, params=params, tx=plain_optimizer(config)
        )
        self.key = jax.random.fold_in(key, 1)

        @jax.jit
        def train_step(state, batch, key):
            rng = jax.random.fold_in(key, state.step)  # The VAE's samples; unused by the AEs.
            mask = jnp.ones(batch.shape[:1], batch.dtype)
            grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
            (loss, _), grads = grad_fn(state.params, batch, mask, rng, hyper, True)
            return state.apply_gradients(grads=grads), loss

        self.train_step = train_step

    def run_epoch(self) -> None:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.x.shape[0])
        losses = []
        for start in range(0, len(perm), self.batch_size):
            batch = jax.device_put(self.x[perm[start : start + self.batch_size]])
            self.state, loss = self.train_step(self.state, batch, self.key)
            losses.append(loss)
        jax.device_get(losses)  # The examples fetch the epoch's metrics once, at its end.
        self.epoch += 1
