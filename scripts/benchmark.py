r"""Benchmark: the project's engine against a plain Flax loop and Keras 3 (JAX backend).

  python scripts/benchmark.py [--csv=PATH] [--quick] [--repeats=5] [--sweep_models=64] \
    [--many_models=1,64,1024] [--out=FILE.md]

prints the machine, then markdown tables (the report goes to stdout, progress to
stderr; `--out` writes the report to a file as well):

1. Per-epoch training throughput (rows/s) of the seed's sparse, deep and VAE models at
   batch 1000 and 64 on 18-column data of the purchase table's size (9,864 training
   rows; `--csv` reads a real table, else a deterministic stand-in is generated and
   written to a temporary CSV; either is read through `ae_jax.data.load_dataset`).
   Contenders, interleaved within every repeat because this kind of machine's speed
   swings by up to 2x within a minute:
   - engine: the project's loop, as `train.train_group` runs it per epoch: the host
     computes the row order, one compiled `lax.scan` epoch runs, the metrics are fetched;
   - plain: the Flax-examples style: a `TrainState`, a `@jax.jit` step per batch, a
     Python loop over host-permuted numpy batches (`device_put` each), same model,
     loss and optax optimizer;
   - Keras: Keras 3 on JAX with the seed's exact models, `fit(epochs=1)` per epoch.
   Compile time is reported apart: the warm-up (setup, compile, first epoch) less the
   median steady epoch.
2. A sweep of 64 seed_sparse configs (8 L1 weights x 8 seeds, 5 epochs at batch
   1000): the project trained together (`train_group`, one compiled program) and one
   by one (64 `train_group` calls in process), each with the config's defaults (per-run
   TensorBoard, figures, checkpoints, evaluation at the end) and with all those extras
   switched off ("training only", like Keras' `fit`); Keras one by one (fresh model,
   `fit` with `validation_split`, `clear_session` between).
3. A compute-bound case (MLP AE 784-512-256-32-256-512-784, batch 256): the engine's
   achieved GFLOP/s against the float32 matmul peak measured here with `jnp.dot`.
4. With `--many_models=K1,K2,...` (default: skipped): K seed_sparse models (different
   seeds and L1 weights) trained together by the engine directly (`Engine.compile(K)`,
   `init_many`, the stacked per-epoch orders, one compiled epoch), for each K (K = 1
   always added as the baseline): compile and init seconds, median epoch seconds,
   model-epochs/s, aggregate rows/s and the speedup per model over K = 1. Reported, not
   judged against a threshold.
Memory: the process's peak RSS (`ru_maxrss`, a high-water mark that only grows) after
each case, and the RSS growth of setting up each contender (psutil).

Tables 1-3 have a PASS/FAIL column against the acceptance thresholds: engine >= 1.2x
Keras rows/s at batch 1000 and >= 3x at batch 64 for every model; the sweep trained
together >= 20x faster than Keras one by one (judged for both the defaults and
training only); the compute-bound case >= 50% of peak.

The full run takes 6-10 minutes on 2 shared cores (341 s with `--many_models=1,64,1024`
at load average ~4), most of it the sweep: Keras one by one and the per-run evaluation
of the defaults; `--quick` (8-model sweep, shorter timing windows, still >= 3 repeats)
about 2-3 (`--many_models=1,64,1024` adds under a minute on CPU: K = 1,024 of the
18-9-18 model is ~3 s an epoch there), and `--sweep_models=N` shrinks the sweep alone.
`--out` is rewritten after every section, so a run stopped by a timeout (as in
scripts/gpu_check.sh) leaves the sections it finished. No XLA flags are set:
every number is for the default configuration a user gets. Two hooks into the package,
neither changing what it computes: the sweep wraps `ae_jax.plots.run_figures` and
`ae_jax.evaluate.evaluate_workdir` in timers (they still run) to report their share of
the wall time (see `hook_timers`), and empties `train_group`'s process-wide program
cache around each together repeat, so that every repeat includes its compile as a
fresh process would (see `cold_program_cache`).
"""

import argparse
import contextlib
import csv
import datetime
import hashlib
import inspect
import itertools
import math
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

# Keras reads its backend once, at import; it must be JAX so that all three
# contenders share one XLA CPU client and thread pool.
os.environ["KERAS_BACKEND"] = "jax"

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from absl import logging  # noqa: E402
from flax.training import train_state  # noqa: E402

# Run as a file (`python scripts/benchmark.py`), the repository root is not on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ae_jax import config as config_lib  # noqa: E402
from ae_jax import data as data_lib  # noqa: E402
from ae_jax import engine as engine_lib  # noqa: E402
from ae_jax import models, multi, objective, plots, train  # noqa: E402
from experiments.configs import seed_deep, seed_sparse, seed_vae  # noqa: E402

try:
    import psutil
except ImportError:  # psutil is in the `bench` extra; without it the ΔRSS columns read "-".
    psutil = None

try:
    import keras
except Exception as e:  # Any failure to import (e.g. no backend) means no Keras column.
    keras, KERAS_ERROR = None, f"{type(e).__name__}: {e}"
else:
    KERAS_ERROR = ""

# The purchase table (online_shoppers_intention.csv): 12,330 rows of 18 columns; the
# project's default split (val_fraction 0.2) leaves 9,864 training rows.
N_ROWS, N_COLS, VAL_FRACTION = 12_330, 18, 0.2
SEEDS = {"sparse": seed_sparse, "deep": seed_deep, "vae": seed_vae}
BATCHES = (1000, 64)
NEED_VS_KERAS = {1000: 1.2, 64: 3.0}
NEED_SWEEP, NEED_PEAK = 20.0, 0.5
L1_WEIGHTS = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SWEEP_SEEDS = 8
COMPUTE_WIDTHS, COMPUTE_LATENT, COMPUTE_D, COMPUTE_N, COMPUTE_B = (512, 256), 32, 784, 8192, 256
MATMUL_SIZES = (1024, 2048)


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """The process's RSS high-water mark; Linux reports KiB, macOS bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20 if psutil else math.nan


def machine_lines() -> list[str]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:  # platform.processor() is often empty on Linux.
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    u = platform.uname()
    versions = (f"python {platform.python_version()}, jax {jax.__version__}, flax "
                f"{flax.__version__}, optax {optax.__version__}, keras "
                f"{keras.__version__ if keras else 'unavailable'}, numpy {np.__version__}")
    return [
        f"- machine: {u.system} {u.release} {u.machine}, CPU {cpu or 'unknown'}, "
        f"{os.cpu_count()} logical CPUs",
        f"- {versions}",
        f"- jax devices: {', '.join(str(d) for d in jax.devices())}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '') or '(unset)'}",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"load average at start {load_average()} (other processes share these CPUs)",
        f"- package: ae_jax sources sha1 {package_fingerprint()} (to tell runs of different "
        "package states apart)",
    ]


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    return "unknown"


def package_fingerprint() -> str:
    """sha1 of ae_jax/*.py: the package changes between runs, and its numbers with it."""
    root = os.path.dirname(os.path.abspath(engine_lib.__file__))
    digest = hashlib.sha1()
    for name in sorted(os.listdir(root)):
        if name.endswith(".py"):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(name.encode() + f.read())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------- data


def write_generated_csv(path: str) -> None:
    """A deterministic stand-in for the purchase table: 12,330 x 18, a mix like the
    original's (skewed counts and durations, small ordinal codes, booleans).

    Written as a CSV and read back through `ae_jax.data.load_dataset`, so both data
    sources take the package's own path (split, encoding, min-max scaling fitted on
    train rows), and the sweep's configs can name the file: the evaluation that
    `train_group` runs at the end of training rebuilds the split from `data.path`.
    """
    rng = np.random.default_rng(0)
    cols = [np.floor(rng.lognormal(1.0, 1.2, N_ROWS)) for _ in range(6)]  # page counts
    cols += [rng.lognormal(4.0, 1.5, N_ROWS) for _ in range(4)]  # durations, rates
    cols += [rng.integers(0, k, N_ROWS) for k in (10, 8, 13, 9, 20, 3)]  # categorical codes
    cols += [rng.random(N_ROWS) < p for p in (0.23, 0.15)]  # booleans
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"x{j}" for j in range(N_COLS)])
        writer.writerows(zip(*[c.tolist() for c in cols], strict=True))


def load_data(path: str) -> data_lib.Dataset:
    cfg = seed_sparse.get_config()
    cfg.data.path = path
    cfg.data.val_fraction = VAL_FRACTION
    return data_lib.load_dataset(cfg.data)


def seed_config(kind: str, batch_size: int):
    c = SEEDS[kind].get_config()
    c.train.batch_size = batch_size
    return c


# ---------------------------------------------------------------- contenders


class EngineRunner:
    """The project's per-epoch loop, exactly as `train.train_group` runs it: the one
    model of `config` (K = 1), or K models of its static config together (`hypers`,
    one per model: seed, L1 weight, ...)."""

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
        progs = self.engine.compile(self.k)
        t0 = time.perf_counter()
        self.states = jax.device_put(engine_lib.init_many(progs.init, self.hypers))
        self.order = self._order(0)
        t1 = time.perf_counter()
        self.epoch_fn = progs.epoch.lower(self.states, self.hyper, self.x, self.order).compile()
        # init = the one-model init program (compiled once) run K times, and the first order.
        self.init_s, self.aot_compile_s = t1 - t0, time.perf_counter() - t1

    def _order(self, epoch: int) -> np.ndarray:
        return np.stack([
            engine_lib.epoch_order(h["seed"], epoch, self.n, self.engine.batch_size, self.shuffle)
            for h in self.hypers
        ])

    def run_epoch(self) -> None:
        self.states, metrics = self.epoch_fn(self.states, self.hyper, self.x, self.order)
        self.epoch += 1
        t0 = time.perf_counter()
        self.order = self._order(self.epoch)  # As train_group: overlaps the device's epoch.
        self.order_s.append(time.perf_counter() - t0)
        jax.device_get((metrics, self.states.diverged_step))


def plain_optimizer(config) -> optax.GradientTransformation:
    """The config's optax optimizer built the usual way, learning rate inside."""
    kwargs = {k: config.optim[k] for k in config_lib.OPTIM_KWARGS if config.optim[k] is not None}
    return getattr(optax, config.optim.name)(learning_rate=config.optim.learning_rate, **kwargs)


class PlainRunner:
    """The Flax-examples loop: jitted step per batch, host-side shuffling and slicing.

    The last, partial batch is trained too (a second compiled shape), so every
    contender processes the same 9,864 rows per epoch.
    """

    label = "plain"

    def __init__(self, config, x_train: np.ndarray):
        n, d = x_train.shape
        self.x, self.batch_size, self.epoch = x_train, int(config.train.batch_size), 0
        self.seed = int(config.train.seed)
        model = models.build_model(config.model, d)
        hyper = objective.hyper_from_config(config)  # Python floats: constants of the step.
        loss_fn = objective.make_loss_fn(model, config, noise=False)
        key = jax.random.PRNGKey(self.seed)
        params = model.init(key, jnp.zeros((1, d), jnp.float32), key)["params"]
        self.state = train_state.TrainState.create(
            apply_fn=model.apply, params=params, tx=plain_optimizer(config))
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
            batch = jax.device_put(self.x[perm[start:start + self.batch_size]])
            self.state, loss = self.train_step(self.state, batch, self.key)
            losses.append(loss)
        jax.device_get(losses)  # The examples fetch the epoch's metrics once, at its end.
        self.epoch += 1


def keras_model(kind: str, d: int, l1_weight: float = 1e-4, seed: int = 0):
    """The seed's Keras models, compiled with the seed's optimizer and loss."""
    layers = keras.layers
    inp = keras.Input((d,))
    if kind == "sparse":
        code = layers.Dense(9, activation="sigmoid",
                            activity_regularizer=keras.regularizers.l1(l1_weight))(inp)
        model = keras.Model(inp, layers.Dense(d, activation="sigmoid")(code))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
        return model
    if kind == "deep":
        h = inp
        for width in (15, 11, 11, 8, 11, 11, 15):  # encoder 15-11-11, code 8, decoder 11-11-15
            h = layers.Dense(width, activation="sigmoid")(h)
        model = keras.Model(inp, layers.Dense(d, activation="relu")(h))
        model.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0), loss="mse")
        return model
    # The blog's VAE, the Keras 3 way: KL added by the sampling layer, recon = d * bce.
    ops = keras.ops

    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            mean, logvar = inputs
            kl = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
            self.add_loss(ops.mean(kl))  # Batch mean, like the compiled loss: -ELBO per row.
            eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            return mean + ops.exp(0.5 * logvar) * eps

    h = layers.Dense(12, activation="relu")(inp)
    mean, logvar = layers.Dense(2)(h), layers.Dense(2)(h)
    z = Sampling()([mean, logvar])
    out = layers.Dense(d, activation="sigmoid")(layers.Dense(12, activation="relu")(z))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=lambda y, p: d * keras.losses.binary_crossentropy(y, p))
    return model


class KerasRunner:
    label = "keras"

    def __init__(self, kind: str, config, x_train: np.ndarray):
        keras.utils.set_random_seed(int(config.train.seed))
        self.model = keras_model(kind, x_train.shape[1])
        self.x, self.batch_size = x_train, int(config.train.batch_size)

    def run_epoch(self) -> None:
        self.model.fit(self.x, self.x, batch_size=self.batch_size, epochs=1, shuffle=True,
                       verbose=0)


# ---------------------------------------------------------------- helpers


class Timed:
    """A contender with its warm-up and its per-repeat seconds per epoch."""

    def __init__(self, make, target_s: float):
        rss0, t0 = rss_mib(), time.perf_counter()
        self.runner = make()
        self.runner.run_epoch()
        self.warmup_s = time.perf_counter() - t0
        # Epochs per timing window: enough for ~target_s, since one seed epoch can be 2 ms.
        t0 = time.perf_counter()
        self.runner.run_epoch()
        self.runner.run_epoch()
        probe = (time.perf_counter() - t0) / 2
        self.epochs = int(min(max(math.ceil(target_s / max(probe, 1e-6)), 2), 200))
        self.rss_delta = rss_mib() - rss0
        self.samples: list[float] = []

    def measure(self) -> None:
        t0 = time.perf_counter()
        for _ in range(self.epochs):
            self.runner.run_epoch()
        self.samples.append((time.perf_counter() - t0) / self.epochs)

    @property
    def epoch_s(self) -> float:
        return statistics.median(self.samples)

    @property
    def compile_s(self) -> float:
        return max(self.warmup_s - self.epoch_s, 0.0)


def rotated(items: list, r: int) -> list:
    """The contenders in a different order each repeat, so no one always goes first."""
    k = r % len(items)
    return items[k:] + items[:k]


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def fmt_int(x: float) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.0f}"


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def times(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else f"{format(x, spec)}x"


@contextlib.contextmanager
def cold_program_cache():
    """Runs the block with train_group's process-wide cache of compiled programs empty.

    `train._PROGRAMS` (private) keeps executables by static config and shapes. Each
    together repeat must include its compile, as in a fresh process, while the
    interleaved one-by-one pass keeps its own entry: so the cache is emptied for the
    block and restored after. Without such a cache (older package) this does nothing.
    """
    cache = getattr(train, "_PROGRAMS", None)
    if not isinstance(cache, dict):
        yield
        return
    saved = dict(cache)
    cache.clear()
    try:
        yield
    finally:
        cache.clear()
        cache.update(saved)


def _timed_hooks() -> dict:
    """Package functions timed in the sweep: name -> (module, attribute)."""
    hooks = {"figures": (plots, "run_figures")}
    with contextlib.suppress(ImportError):
        from ae_jax import evaluate  # Newer package versions evaluate at the end of training.

        hooks["eval_at_end"] = (evaluate, "evaluate_workdir")
    return hooks


@contextlib.contextmanager
def hook_timers():
    """Times the package's figure and evaluation functions (still called, unchanged):
    train_group looks them up on their modules at call time, so wrapping the module
    attribute sees every call. A function the package lacks is reported as "-"."""
    spent: dict[str, float] = {}
    originals = []
    for name, (module, attr) in _timed_hooks().items():
        original = getattr(module, attr, None)
        if original is None:
            continue
        spent[name] = 0.0

        def wrapper(*args, _f=original, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - t0

        setattr(module, attr, wrapper)
        originals.append((module, attr, original))
    try:
        yield spent
    finally:
        for module, attr, original in originals:
            setattr(module, attr, original)


# ---------------------------------------------------------------- 1. throughput


def bench_throughput(ds, repeats: int, target_s: float) -> tuple[list[str], list[bool]]:
    x = ds.train
    n = x.shape[0]
    cases = []
    for kind, batch in itertools.product(SEEDS, BATCHES):
        c = seed_config(kind, batch)
        log(f"throughput: warming up {kind} at batch {batch}")
        contenders = {
            "engine": Timed(lambda c=c: EngineRunner(c, x), target_s),
            "plain": Timed(lambda c=c: PlainRunner(c, x), target_s),
        }
        if keras is not None:
            contenders["keras"] = Timed(lambda c=c, k=kind: KerasRunner(k, c, x), target_s)
        cases.append((kind, batch, contenders, peak_rss_mib()))
    for r in range(repeats):
        log(f"throughput: repeat {r + 1}/{repeats}")
        for _, _, contenders, _ in cases:
            for t in rotated(list(contenders.values()), r):
                t.measure()

    lines = [
        f"## 1. Per-epoch training throughput, {n:,} rows x {x.shape[1]} columns",
        "",
        f"rows/s = {n:,} / median seconds per epoch ({repeats} repeats, contenders interleaved"
        " within each repeat; each repeat times several epochs back to back). engine = "
        "host order + one compiled epoch + fetched metrics (train_group's loop); plain = "
        "Flax-examples per-batch jit loop; Keras = `fit(epochs=1)` per epoch. Pass: engine "
        ">= 1.2x Keras at batch 1000, >= 3x at batch 64.",
        "",
        "| model | batch | engine rows/s | plain rows/s | Keras rows/s | engine/Keras | "
        "engine/plain | need | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    oks = []
    for kind, batch, ct, _ in cases:
        rate = {k: n / t.epoch_s for k, t in ct.items()}
        vs_keras = rate["engine"] / rate["keras"] if "keras" in rate else None
        ok = None if vs_keras is None else vs_keras >= NEED_VS_KERAS[batch]
        if ok is not None:
            oks.append(ok)
        lines.append(
            f"| {kind} | {batch} | {fmt_int(rate['engine'])} | {fmt_int(rate['plain'])} | "
            f"{fmt_int(rate.get('keras'))} | {times(vs_keras)} | "
            f"{times(rate['engine'] / rate['plain'])} | {NEED_VS_KERAS[batch]}x | {verdict(ok)} |")
    lines += [
        "",
        "Warm-up and memory. compile = warm-up (build, compile, first epoch) minus the median "
        "epoch; engine compiles AOT as train_group does (init + epoch program), plain jit "
        "compiles two batch shapes (full and last partial), Keras compiles in its first "
        "`fit`. ΔRSS = resident memory growth over the warm-up (psutil). Peak RSS = the "
        "process's `ru_maxrss` high-water mark after the case's warm-up: cumulative, it "
        "only grows.",
        "",
        "| model | batch | engine compile s | plain compile s | Keras compile s | "
        "engine ΔRSS MiB | plain ΔRSS MiB | Keras ΔRSS MiB | epochs/window e/p/K | "
        "peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, batch, ct, peak in cases:
        get = lambda k, attr, ct=ct: getattr(ct[k], attr) if k in ct else None
        windows = "/".join(str(ct[k].epochs) if k in ct else "-"
                           for k in ("engine", "plain", "keras"))
        lines.append(
            f"| {kind} | {batch} | {fmt(get('engine', 'compile_s'))} | "
            f"{fmt(get('plain', 'compile_s'))} | {fmt(get('keras', 'compile_s'))} | "
            f"{fmt(get('engine', 'rss_delta'), '.0f')} | {fmt(get('plain', 'rss_delta'), '.0f')}"
            f" | {fmt(get('keras', 'rss_delta'), '.0f')} | {windows} | {peak:,.0f} |")
    return lines, oks


# ---------------------------------------------------------------- 2. sweep


def sweep_overrides(n: int) -> list[dict]:
    """Model i: L1 weight i mod 8, seed i div 8; the first 8 span all L1 weights."""
    return [{"loss.l1_weight": L1_WEIGHTS[i % len(L1_WEIGHTS)],
             "train.seed": i // len(L1_WEIGHTS)} for i in range(n)]


# What a Keras `fit` does not do: the package's per-run extras, all of which have a
# switch. With `train.checkpoints` off no checkpoint is written (orbax, at the end of a
# 5-epoch run), and so no evaluation at the end either (it loads the checkpoint).
TRAINING_ONLY = {"eval.at_end": False, "train.figures": False, "train.tensorboard": False,
                 "train.checkpoints": False}


def training_only_overrides(base) -> dict:
    """The TRAINING_ONLY switches this package version has (an older one may lack some;
    the table's label lists the switches actually set)."""
    out = {}
    for key, value in TRAINING_ONLY.items():
        section, field = key.split(".")
        if section in base and field in base[section]:
            out[key] = value
    return out


def keras_sweep_run(x_all: np.ndarray, val_split: float, l1_weight: float, seed: int,
                    epochs: int, batch: int) -> None:
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras_model("sparse", x_all.shape[1], l1_weight=l1_weight)
    model.fit(x_all, x_all, batch_size=batch, epochs=epochs, shuffle=True,
              validation_split=val_split, verbose=0)


def run_record(total: float, summary: dict, spent: dict) -> dict:
    """One train_group call: measured total, the package's own compile_s and wall_s
    (wall_s spans compile and the epoch loop), and the time inside the timed hooks."""
    return {"total": total, "compile": summary.get("compile_s", math.nan),
            "wall": summary.get("wall_s", math.nan), **spent}


class SweepContender:
    """One way of training the sweep's configs with train_group, and its records."""

    def __init__(self, label: str, configs: list, names: list[str], root: str, ds, together):
        self.label, self.configs, self.names, self.root, self.ds = label, configs, names, root, ds
        self.together = together
        self.records: list[dict] = []
        self.peak_rss = math.nan

    def run(self, tag: str, index: int | None = None) -> None:
        """Trains all configs in one group (index None) or config `index` alone."""
        picks = range(len(self.configs)) if index is None else [index]
        parent = os.path.join(self.root, tag)
        workdirs = [os.path.join(parent, self.names[i]) for i in picks]
        # Together repeats start cold, as a fresh process would (see cold_program_cache).
        cold = cold_program_cache() if self.together else contextlib.nullcontext()
        with cold, hook_timers() as spent:
            t0 = time.perf_counter()
            summaries = train.train_group([self.configs[i] for i in picks], workdirs,
                                          dataset=self.ds)
            total = time.perf_counter() - t0
        self.records.append(run_record(total, summaries[0], spent))
        if self.together:
            shutil.rmtree(parent, ignore_errors=True)  # 64 workdirs of figures and checkpoints
        self.peak_rss = peak_rss_mib()

    def wall(self) -> float:
        """Together: median over repeats; one by one: the sum of the pass."""
        values = [r["total"] for r in self.records]
        return statistics.median(values) if self.together else sum(values)

    def part(self, key: str) -> float | None:
        values = [r.get(key) for r in self.records]
        if any(v is None for v in values):
            return None
        return statistics.median(values) if self.together else sum(values)


def bench_sweep(ds, data_path: str, n_models: int, n_keras: int,
                repeats: int) -> tuple[list[str], dict[str, list[bool]]]:
    base = seed_sparse.get_config()
    base.data.path = data_path  # The end-of-training evaluation re-reads the data from here.
    base.data.val_fraction = VAL_FRACTION
    overrides = sweep_overrides(n_models)
    names = [multi.run_name(o) for o in overrides]
    lean = training_only_overrides(base)
    defaults = [multi.apply_overrides(base, o) for o in overrides]
    training_only = [multi.apply_overrides(base, {**o, **lean}) for o in overrides]
    epochs, batch = base.train.epochs, base.train.batch_size
    # Keras splits off the LAST rows: train + val in that order gives the same split.
    x_all = np.concatenate([ds.train, ds.val])
    val_split = ds.val.shape[0] / x_all.shape[0]
    assert math.floor(x_all.shape[0] * (1 - val_split)) == ds.train.shape[0]
    root = tempfile.mkdtemp(prefix="ae_bench_sweep_")
    lean_text = ", ".join(f"{k}={v}" for k, v in lean.items()) or "no switches found"
    together = [SweepContender("project together, defaults", defaults, names, root, ds, True),
                SweepContender(f"project together, training only ({lean_text})", training_only,
                               names, root, ds, True)]
    one = [SweepContender("project one by one, defaults", defaults, names, root, ds, False),
           SweepContender("project one by one, training only", training_only, names, root, ds,
                          False)]
    keras_s: list[float] = []
    try:
        # The together repeats are spread over the one-by-one pass: repeat r runs before
        # segment r, so every contender sees the same spells of machine speed.
        bounds = np.linspace(0, n_models, repeats + 1).round().astype(int)
        for r in range(repeats):
            for c in rotated(together, r):
                log(f"sweep: {c.label}, repeat {r + 1}/{repeats}")
                c.run(f"together{r}")
            log(f"sweep: one by one, models {bounds[r] + 1}..{bounds[r + 1]} of {n_models}")
            for i in range(bounds[r], bounds[r + 1]):
                jobs = [lambda c=c, i=i: c.run(f"one{one.index(c)}", i) for c in one]
                if keras is not None and i < n_keras:
                    o = overrides[i]
                    jobs.append(lambda o=o: keras_s.append(timed(
                        keras_sweep_run, x_all, val_split, o["loss.l1_weight"],
                        o["train.seed"], epochs, batch)))
                for job in rotated(jobs, i):
                    job()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    keras_peak = peak_rss_mib()

    keras_total, keras_note = None, ""
    if keras_s:
        keras_total = sum(keras_s) * n_models / len(keras_s)
        if len(keras_s) < n_models:
            keras_note = f" (EXTRAPOLATED from {len(keras_s)} measured models)"
    oks: dict[str, list[bool]] = {}

    def row(c: SweepContender) -> str:
        wall = c.wall()
        per_model = wall / n_models if c.together else statistics.median(
            r["total"] for r in c.records)
        vs = keras_total / wall if keras_total else None
        result = "-"
        if c.together and vs is not None:
            ok = vs >= NEED_SWEEP
            oks[f"sweep, {c.label.split(' (')[0]}"] = [ok]
            result = f"{verdict(ok)} (need {NEED_SWEEP:g}x)"
        return (f"| {c.label} | {n_models} | {fmt(wall)} | {fmt(per_model, '.3f')} | "
                f"{fmt(c.part('compile'))} | {fmt(c.part('figures'))} | "
                f"{fmt(c.part('eval_at_end'))} | {times(vs, '.1f')} | {result} | "
                f"{fmt(c.peak_rss, ',.0f')} |")

    lines = [
        f"## 2. Sweep: {n_models} seed_sparse configs ({len(L1_WEIGHTS)} L1 weights x seeds), "
        f"{epochs} epochs at batch {batch}",
        "",
        f"Wall seconds for all {n_models} models, each evaluated on the validation rows every "
        f"epoch. Together = one `train_group` call (K = {n_models}, one compiled program, "
        f"with its compile and the {n_models} workdirs it writes), median of {repeats} "
        "repeats spread over the sweep (these timings are seconds long, so 3 repeats "
        "suffice). One by one = sequential in-process calls, interleaved model by model "
        "with each other and Keras: one pass, the sum of its runs. defaults = the seed "
        "config as a user runs it: metrics, TensorBoard, a checkpoint, figures and the "
        "evaluation at the end (eval.json, its figures) per run; training only = the "
        f"package's switches for all those extras off ({lean_text}), leaving the per-epoch "
        "validation and the small per-run files (config, metrics.jsonl, summary.json): "
        "the nearest to Keras' `fit` with `validation_split`, which writes no files. "
        "compile = the package's reported `compile_s`; figures = time in "
        "`plots.run_figures`; eval at end = time in `evaluate.evaluate_workdir`; s per "
        "model = wall / models for together, the median run otherwise. Pass: Keras one by "
        "one / together >= 20x, for both together rows. Peak RSS = `ru_maxrss` after the "
        "contender's last run (cumulative).",
        "",
        "| contender | models | wall s | s per model | compile s | figures s | eval at end s | "
        "Keras / this | result | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        *[row(c) for c in together + one],
        f"| Keras one by one{keras_note} | {n_models} | {fmt(keras_total)} | "
        f"{fmt(statistics.median(keras_s) if keras_s else None, '.3f')} | - | - | - | "
        f"{'1.0x' if keras_s else '-'} | - | {keras_peak:,.0f} |",
        "",
    ]
    for c in together:
        med = lambda key, c=c: c.part(key) if c.part(key) is not None else math.nan
        lines.append(
            f"- {c.label.split(' (')[0]}: compile {med('compile'):.2f} s; the epoch loop "
            f"(training, eval, per-epoch writes, checkpoint if on) "
            f"{med('wall') - med('compile'):.2f} s; outside it (workdirs, summaries, figures, "
            f"evaluation) {c.wall() - med('wall'):.2f} s. Repeats: "
            f"{', '.join(format(r['total'], '.2f') for r in c.records)} s.")
    for c in one:
        first = c.records[0]["compile"]
        later = sum(r["compile"] for r in c.records[1:])
        if len(c.records) < 2:
            note = ""
        elif later / (len(c.records) - 1) < 0.1 * first:
            note = "the package reuses the compiled programs of equal static configs."
        else:
            note = (f"every run compiles again; a compiled-program cache shared by runs with "
                    f"one static config would save ~{later:.0f} s of {c.wall():.0f} s.")
        lines.append(f"- {c.label}: compile {first:.2f} s in the first run, {later:.2f} s in "
                     f"the other {len(c.records) - 1} together: {note}")
    if keras_s:
        lines.append(
            f"- Keras: median model {statistics.median(keras_s):.2f} s (min {min(keras_s):.2f},"
            f" max {max(keras_s):.2f}), {len(keras_s)} measured.")
    else:
        lines.append(f"- Keras: not measured ({KERAS_ERROR or 'no Keras models requested'}).")
    return lines, oks


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


# ---------------------------------------------------------------- 3. compute-bound


def bench_compute(repeats: int, target_s: float) -> tuple[list[str], list[bool]]:
    c = config_lib.default_config()
    c.model.encoder_widths = COMPUTE_WIDTHS
    c.model.latent_dim = COMPUTE_LATENT
    c.model.activation = "relu"
    c.model.output_activation = "sigmoid"
    c.loss.recon = "mse"
    c.optim.name = "adam"
    c.train.batch_size = COMPUTE_B
    x = np.random.default_rng(1).random((COMPUTE_N, COMPUTE_D), dtype=np.float32)

    log("compute-bound: warming up")
    rss0 = peak_rss_mib()
    eng = Timed(lambda: EngineRunner(c, x), target_s)
    dot = jax.jit(jnp.dot)
    mats = {}
    for size in MATMUL_SIZES:
        a = jax.device_put(np.random.default_rng(size).random((size, size), dtype=np.float32))
        dot(a, a).block_until_ready()
        mats[size] = a
    matmul_s = {size: [] for size in MATMUL_SIZES}
    calls = {size: max(2, math.ceil(target_s / (2 * size**3 / 100e9))) for size in MATMUL_SIZES}
    for r in range(repeats):
        log(f"compute-bound: repeat {r + 1}/{repeats}")
        work = [lambda: eng.measure()] + [
            (lambda s=s: _time_matmul(dot, mats[s], calls[s], matmul_s[s])) for s in MATMUL_SIZES]
        for w in rotated(work, r):
            w()

    widths = [COMPUTE_D, *COMPUTE_WIDTHS, COMPUTE_LATENT, *reversed(COMPUTE_WIDTHS), COMPUTE_D]
    macs = sum(a * b for a, b in itertools.pairwise(widths))
    steps = math.ceil(COMPUTE_N / COMPUTE_B)
    flops = 3 * 2 * COMPUTE_B * macs * steps  # forward matmuls x3 for forward + backward
    gflops = flops / eng.epoch_s / 1e9
    peaks = {s: 2 * s**3 / statistics.median(v) / 1e9 for s, v in matmul_s.items()}
    peak = max(peaks.values())
    frac = gflops / peak
    ok = frac >= NEED_PEAK
    lines = [
        f"## 3. Compute-bound: MLP AE {'-'.join(map(str, widths))}, batch {COMPUTE_B}, "
        f"{COMPUTE_N:,} x {COMPUTE_D} random rows",
        "",
        f"FLOPs per step = 3 x 2 x B x sum(in x out) over the {len(widths) - 1} Dense layers "
        f"(forward x3 for forward + backward; biases, activations, loss and adam not counted) "
        f"= {3 * 2 * COMPUTE_B * macs / 1e9:.2f} GFLOP; {steps} steps per epoch. Peak = the "
        f"best median of a jitted float32 `jnp.dot` of n x n (2 n^3 FLOPs), interleaved with "
        f"the engine's epochs, {repeats} repeats. Pass: >= 50% of peak.",
        "",
        "| measure | value |",
        "|---|---:|",
        *[f"| matmul peak, n = {s} | {p:.1f} GFLOP/s |" for s, p in peaks.items()],
        f"| engine epoch (median) | {eng.epoch_s * 1e3:.1f} ms ({COMPUTE_N / eng.epoch_s:,.0f} "
        "rows/s) |",
        f"| engine achieved | {gflops:.1f} GFLOP/s |",
        f"| engine / peak | {frac:.0%} ({verdict(ok)}, need 50%) |",
        f"| engine compile (warm-up minus an epoch) | {eng.compile_s:.2f} s |",
        f"| ΔRSS of the warm-up; peak RSS after the case | {fmt(eng.rss_delta, '.0f')} MiB; "
        f"{peak_rss_mib():,.0f} MiB (was {rss0:,.0f}) |",
    ]
    return lines, [ok]


def _time_matmul(dot, a, calls: int, out: list) -> None:
    t0 = time.perf_counter()
    for _ in range(calls):
        dot(a, a).block_until_ready()
    out.append((time.perf_counter() - t0) / calls)


# ---------------------------------------------------------------- 4. many models at once


def many_hypers(base, k: int) -> list[dict]:
    """The hypers of K seed_sparse models: the sweep's overrides (L1 weight i mod 8,
    seed i div 8), set on the base's hypers directly (apply_overrides on 1,024 configs
    would time config copies, not training)."""
    h0 = objective.hyper_from_config(base)
    return [{**h0, "l1_weight": float(o["loss.l1_weight"]), "seed": int(o["train.seed"])}
            for o in sweep_overrides(k)]


def package_max_models() -> int | None:
    """`ae_jax.sweep`'s default cap on models per compiled program, if it has one."""
    with contextlib.suppress(ImportError, AttributeError, KeyError, TypeError, ValueError):
        from ae_jax import sweep

        default = inspect.signature(sweep.train_runs).parameters["max_models"].default
        return int(default)
    return None


def bench_many_models(ds, ks: list[int], repeats: int, target_s: float) -> list[str]:
    base = seed_sparse.get_config()
    base.data.val_fraction = VAL_FRACTION
    x = ds.train
    n = x.shape[0]
    ks = sorted(set(ks) | {1})  # K = 1 is the baseline of the speedup column.
    cases = {}
    for k in ks:
        log(f"many models: warming up K = {k}")
        hypers = many_hypers(base, k)
        cases[k] = (Timed(lambda h=hypers: EngineRunner(base, x, h), target_s), peak_rss_mib())
    for r in range(repeats):
        log(f"many models: repeat {r + 1}/{repeats}")
        for k in rotated(ks, r):
            cases[k][0].measure()

    cap = package_max_models()
    t1 = cases[1][0].epoch_s
    engine = cases[1][0].runner.engine
    lines = [
        f"## 4. Many models at once: K seed_sparse models together, {n:,} rows x "
        f"{x.shape[1]} columns, batch {engine.batch_size} ({engine.steps_per_epoch} steps per "
        "epoch)",
        "",
        "K models of one static config with different seeds and L1 weights (model i: L1 "
        f"weight number i mod {len(L1_WEIGHTS)} of {', '.join(map(str, L1_WEIGHTS))}; seed "
        f"i div {len(L1_WEIGHTS)}), trained by the engine directly as `train_group` runs "
        "its epochs: `Engine.compile(K)` (vmapped epoch), `init_many` with the one-model "
        "init program, per epoch the host's K row orders stacked, one compiled `lax.scan` "
        "epoch for all K, the metrics fetched. No validation, files or checkpoints: the "
        "training loop alone. compile = the AOT `lower().compile()` of the K-model epoch "
        "program; init = `init_many` (the one-model init program, compiled once, run K "
        "times) plus the first stacked order. epoch = median seconds per epoch over "
        f"{repeats} repeats, the K values interleaved within each repeat. host order = "
        "median seconds the host spends per epoch computing the next epoch's K row orders "
        "(numpy) while the device runs the epoch: it bounds the epoch from below only when "
        "the host is the bottleneck. model-epochs/s = K / epoch; rows/s = K x rows / epoch; "
        "speedup per model = (epoch at K = 1) x K / (epoch at K). chunk = models per "
        "compiled program: all K here, as `train_group` and `multi.train_together` "
        "(chunk_size 0) run them; the package splits K only when asked to, to bound memory"
        + (f" (`ae_jax.sweep` caps a program at max_models = {cap} by default"
           + (f", so it would run K = {max(ks):,} as {math.ceil(max(ks) / cap)} programs"
              if max(ks) > cap else "") + ")" if cap else "")
        + ". ΔRSS = resident memory growth over the warm-up (psutil); peak RSS = `ru_maxrss` "
        "after the warm-up (cumulative).",
        "",
        "| K | chunk | compile s | init s | epoch s | host order s | model-epochs/s | rows/s | "
        "speedup per model vs K=1 | ΔRSS MiB | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in ks:
        t, peak = cases[k]
        epoch_s = t.epoch_s
        lines.append(
            f"| {k:,} | {k:,} | {t.runner.aot_compile_s:.2f} | {t.runner.init_s:.2f} | "
            f"{epoch_s:.4f} | {statistics.median(t.runner.order_s):.4f} | "
            f"{k / epoch_s:,.1f} | {k * n / epoch_s:,.0f} | {k * t1 / epoch_s:.2f}x | "
            f"{fmt(t.rss_delta, '.0f')} | {peak:,.0f} |")
    lines.append("")
    lines.append("Epoch seconds per repeat: " + "; ".join(
        f"K = {k}: {', '.join(format(v, '.4f') for v in cases[k][0].samples)} "
        f"({cases[k][0].epochs} epochs per window)" for k in ks) + ".")
    return lines


# ---------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", default="", help="a CSV table read through ae_jax.data "
                   "(default: generated 12,330 x 18 data like the purchase table)")
    p.add_argument("--quick", action="store_true",
                   help="8-model sweep and shorter timing windows (still >= 3 repeats)")
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats per measurement, >= 3 (default 5; 3 with --quick)")
    p.add_argument("--sweep_models", type=int, default=None,
                   help="models in the sweep (default 64; 8 with --quick)")
    p.add_argument("--keras_sweep_models", type=int, default=None,
                   help="time Keras on only this many sweep models and extrapolate "
                   "(labelled so in the table; default: all)")
    p.add_argument("--many_models", default="",
                   help="comma-separated K values, e.g. 1,64,1024: time K seed_sparse models "
                   "trained together by the engine (default: section skipped)")
    p.add_argument("--out", default="", help="also write the report to this markdown file "
                   "(rewritten after every section, so a stopped run leaves what it measured)")
    args = p.parse_args(argv)
    try:
        args.many_models = [int(v) for v in args.many_models.split(",") if v.strip()]
    except ValueError:
        p.error(f"--many_models={args.many_models!r}: expected integers like 1,64,1024")
    if any(k < 1 for k in args.many_models):
        p.error("--many_models: every K must be >= 1")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 3:
        p.error("--repeats must be >= 3: a median of fewer says little on a noisy machine")
    if args.sweep_models is None:
        args.sweep_models = 8 if args.quick else SWEEP_SEEDS * len(L1_WEIGHTS)
    if args.sweep_models < 1:
        p.error("--sweep_models must be >= 1")
    if args.keras_sweep_models is None:
        args.keras_sweep_models = args.sweep_models
    args.keras_sweep_models = max(1, min(args.keras_sweep_models, args.sweep_models))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    t_start = time.perf_counter()
    logging.set_verbosity(logging.WARNING)  # train_group logs every epoch at INFO.
    target_s = 0.1 if args.quick else 0.3
    jnp.zeros(1).block_until_ready()  # Start the backend before anything is timed.

    tmp = tempfile.mkdtemp(prefix="ae_bench_data_")
    try:
        data_path = args.csv or os.path.join(tmp, "generated.csv")
        if not args.csv:
            write_generated_csv(data_path)
        ds = load_data(data_path)
        report = run_all(args, ds, data_path, target_s, argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report += ["", f"Total runtime: {time.perf_counter() - t_start:.0f} s; load average at the "
               f"end {load_average()}."]
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        log(f"wrote {args.out}")


def save_partial(args, report: list[str]) -> None:
    """Writes the sections so far to --out, so that a run stopped by a timeout (as in
    scripts/gpu_check.sh) still leaves its measurements; the finished run overwrites it."""
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(report + ["**Partial report: the run was stopped, or is still "
                                         "going; the sections above are complete.**"]) + "\n")


def run_all(args, ds, data_path: str, target_s: float, argv) -> list[str]:
    source = args.csv or "generated (purchase-table-like, deterministic, via a temporary CSV)"
    report = [
        "# ae_jax benchmark",
        "",
        f"`python scripts/benchmark.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        *machine_lines(),
        f"- data: {source}: {ds.train.shape[0]:,} train / {ds.val.shape[0]:,} val rows x "
        f"{ds.num_features} columns, float32 in [{ds.train.min():.0f}, {ds.train.max():.0f}]",
        f"- repeats {args.repeats}; timing window ~{target_s} s per contender per repeat",
        "",
    ]
    if keras is None:
        msg = f"Keras (JAX backend) could not be imported ({KERAS_ERROR}); Keras columns skipped."
        log(msg)
        report += [f"**{msg}**", ""]

    oks = {}
    lines, oks["throughput (6 model x batch cases)"] = bench_throughput(ds, args.repeats,
                                                                        target_s)
    report += lines + [""]
    save_partial(args, report)
    # The sweep's timings are seconds to minutes each: 3 repeats bound its run time.
    lines, sweep_oks = bench_sweep(ds, data_path, args.sweep_models, args.keras_sweep_models,
                                   min(args.repeats, 3))
    oks.update(sweep_oks or {"sweep": []})
    report += lines + [""]
    save_partial(args, report)
    lines, oks["compute-bound"] = bench_compute(args.repeats, target_s)
    report += lines + [""]
    save_partial(args, report)
    if args.many_models:  # No threshold: reported, not judged.
        report += bench_many_models(ds, args.many_models, args.repeats, target_s) + [""]

    report += ["## Thresholds", "", "| check | result |", "|---|---|"]
    for name, results in oks.items():
        verdict_text = (f"{sum(results)}/{len(results)} PASS" if results
                        else "not measured")
        report.append(f"| {name} | {verdict_text} |")
    return report


if __name__ == "__main__":
    main()
