"""What every section shares: the machine's description, the data, timing and formatting.

Importing this module sets KERAS_BACKEND=jax (unless already set) before anything can import
Keras: Keras reads its backend once, at import, and the in-process contenders must share one
XLA CPU client and thread pool.
"""

import contextlib
import csv
import dataclasses
import datetime
import hashlib
import math
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import flax  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:  # Run as a file, the repository root is not on the path.
    sys.path.insert(0, ROOT)

from ae_jax import data as data_lib  # noqa: E402
from ae_jax.configs import seed_sparse  # noqa: E402

try:
    import psutil
except ImportError:  # psutil is in the `bench` extra; without it the ΔRSS columns read "-".
    psutil = None

# The purchase table (online_shoppers_intention.csv): 12,330 rows of 18 columns; the
# project's default split (val_fraction 0.2) leaves 9,864 training rows.
N_ROWS, N_COLS, VAL_FRACTION = 12_330, 18, 0.2
# The sweep's L1 weights: model i has weight i mod 8 and seed i div 8.
L1_WEIGHTS = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


@dataclasses.dataclass
class Context:
    """What the sections get: the parsed flags, the data and a scratch directory."""

    args: object
    ds: object  # ae_jax.data.Dataset of the table
    data_path: str  # the table's CSV (the launchers read it again)
    tmp: str  # scratch space, removed at exit
    target_s: float  # timing window per contender per repeat (in-process sections)


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """The process's RSS high-water mark; Linux reports KiB, macOS bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20 if psutil else math.nan


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    return "unknown"


def package_fingerprint() -> str:
    """sha1 of ae_jax/**/*.py: the package changes between runs, and its numbers with it."""
    root = os.path.join(ROOT, "ae_jax")
    digest = hashlib.sha1()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    digest.update(os.path.relpath(path, root).encode() + f.read())
    return digest.hexdigest()[:12]


def machine_lines(keras_version: str) -> list[str]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:  # platform.processor() is often empty on Linux.
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    u = platform.uname()
    versions = (
        f"python {platform.python_version()}, jax {jax.__version__}, flax "
        f"{flax.__version__}, optax {optax.__version__}, keras {keras_version}, numpy "
        f"{np.__version__}"
    )
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


# ---------------------------------------------------------------- data


def write_generated_csv(path: str) -> None:
    """A deterministic stand-in for the purchase table: 12,330 x 18, a mix like the
    original's (skewed counts and durations, small ordinal codes, booleans).

    Written as a CSV and read back through `ae_jax.data.load_dataset`, so both data
    sources take the package's own path (split, encoding, min-max scaling fitted on
    train rows), and the launchers and the Keras script can read the same file.
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


def load_data(path: str):
    cfg = seed_sparse.get_config()
    cfg.data.path = path
    cfg.data.val_fraction = VAL_FRACTION
    return data_lib.load_dataset(cfg.data)


def sweep_overrides(n: int) -> list[dict]:
    """Model i: L1 weight i mod 8, seed i div 8; the first 8 span all L1 weights."""
    return [
        {"loss.l1_weight": L1_WEIGHTS[i % len(L1_WEIGHTS)], "train.seed": i // len(L1_WEIGHTS)}
        for i in range(n)
    ]


# ---------------------------------------------------------------- timing


class Timed:
    """An in-process contender with its warm-up and its per-repeat seconds per epoch.

    `make()` returns an object with `run_epoch()`.
    """

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


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def rotated(items: list, r: int) -> list:
    """The contenders in a different order each repeat, so no one always goes first."""
    k = r % len(items)
    return items[k:] + items[:k]


# ---------------------------------------------------------------- formatting


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def fmt_int(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.0f}"


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def times(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else f"{format(x, spec)}x"


def median(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else math.nan


def spread(values) -> str:
    """'median (min-max)' of seconds."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
