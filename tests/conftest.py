"""Shared test setup: strict JAX, a tiny purchase-layout CSV, small configs."""

import csv
import importlib.metadata
import os
import tempfile


def suite_xla_flags(devices: int = 4) -> str:
    """The suite's XLA_FLAGS (for its launchers too): `devices` CPU devices, for the sharding
    tests; and on jaxlib 0.10 XLA's elemental CPU emitters instead of its fusion emitters,
    which compile the suite's programs in about half the time (0.75 s against 1.51 s for a
    seed_sparse run's three programs, 2.44 s against 4.29 s for seed_vae's; the whole suite,
    cold, 1,540 test-seconds against 2,025). The numbers need not be bitwise those of the
    fusion emitters (seed_sparse, seed_vae and seed_deep runs of 20 epochs at full
    optimisation ended with the same losses to the last digit printed). jaxlib 0.12 has only
    the fusion emitters (the flag is unknown there, a fatal error): under it, and so on Python
    3.12, the suite compiles as users' runs do."""
    flags = f"--xla_force_host_platform_device_count={devices}"
    major, minor = (int(p) for p in importlib.metadata.version("jaxlib").split(".")[:2])
    if (major, minor) == (0, 10):
        flags += " --xla_cpu_use_fusion_emitters=false"
    return flags


# Several CPU devices for the sharding tests; must be set before JAX starts. The suite runs on
# the CPU even where an accelerator is (its layouts assume the 4 CPU devices, its tolerances
# CPU arithmetic); scripts/gpu_check.sh runs the device tests on the accelerator.
os.environ.setdefault("XLA_FLAGS", suite_xla_flags())
if os.environ.get("AE_JAX_TEST_ON_ACCELERATOR") != "1":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Many tests (and the launcher subprocesses they start, which inherit these variables)
# compile the same programs: share executables through JAX's persistent cache, keyed by
# the program's hash, so results are unchanged and only compile time is saved.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(tempfile.gettempdir(), f"ae_jax_tests_xla_{os.getuid()}"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# One figure worker process per run instead of one per core: each costs ~0.5 s of a core to
# start and builds its own figure layouts, and the suite's runs are short and many (three of
# its files took 103 s against 120-126 s). The worker path stays the one every run takes.
os.environ.setdefault("AE_JAX_FIGURE_WORKERS", "1")
# XLA's costly optimisation passes off (its backend optimisation level 0, LLVM's expensive
# passes skipped): the suite's programs are tiny and run for milliseconds, while compiling
# them at full optimisation was ~40% of a clean run's time. The numbers are those of the same
# operations; the tests that compare two different programs bit for bit (an epoch's scan in
# chunks of two sizes, a loss with a zero-weighted term against the plain one, an exported
# model against the loaded one) are marked `optimized` and run as users' programs do (the
# `_optimisation` fixture below), but for the emitters `suite_xla_flags` chose, which XLA_FLAGS
# fixes for the whole process: on jaxlib 0.10 the elemental ones; the Python 3.12 suite (jaxlib
# 0.12) runs them with the fusion emitters users' runs compile with. The other comparisons of
# two programs (K models against one, several devices against one) have float tolerances.
if (
    os.environ.get("AE_JAX_TEST_ON_ACCELERATOR") != "1"
    and "JAX_DISABLE_MOST_OPTIMIZATIONS" not in os.environ  # (a developer's own setting wins)
):
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    os.environ["AE_JAX_TESTS_SET_PASSES_OFF"] = "1"  # (pytest-xdist's workers inherit both)
PASSES_OFF = os.environ.get("AE_JAX_TESTS_SET_PASSES_OFF") == "1"
# No implicit dtype promotion (float32 + float64 arrays, int + float): here and in launcher
# subprocesses alike.
os.environ.setdefault("JAX_NUMPY_DTYPE_PROMOTION", "strict")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Equinox's habit: rank promotion is a bug in our code, not a convenience.
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

PURCHASE_COLUMNS = [
    "Administrative",
    "Administrative_Duration",
    "Informational",
    "Informational_Duration",
    "ProductRelated",
    "ProductRelated_Duration",
    "BounceRates",
    "ExitRates",
    "PageValues",
    "SpecialDay",
    "Month",
    "OperatingSystems",
    "Browser",
    "Region",
    "TrafficType",
    "VisitorType",
    "Weekend",
    "Revenue",
]
MONTHS = ["Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
VISITORS = ["Returning_Visitor", "New_Visitor", "Other"]


def write_purchase_csv(path, n: int = 300, seed: int = 0) -> str:
    """Rows in the UCI Online Shoppers table's 18-column layout, with its value kinds."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(PURCHASE_COLUMNS)
        for _ in range(n):
            admin = int(rng.integers(0, 10))
            w.writerow(
                [
                    admin,
                    round(admin * rng.uniform(0, 60), 3),
                    int(rng.integers(0, 4)),
                    round(rng.uniform(0, 200), 2),
                    int(rng.integers(1, 80)),
                    round(rng.uniform(0, 3000), 3),
                    round(rng.uniform(0, 0.2), 5),
                    round(rng.uniform(0, 0.2), 5),
                    round(rng.exponential(5.0), 4),
                    rng.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
                    rng.choice(MONTHS),
                    int(rng.integers(1, 8)),
                    int(rng.integers(1, 13)),
                    int(rng.integers(1, 9)),
                    int(rng.integers(1, 20)),
                    rng.choice(VISITORS),
                    rng.choice(["TRUE", "FALSE"]),
                    rng.choice(["TRUE", "FALSE"]),
                ]
            )
    return str(path)


@pytest.fixture
def purchase_csv(tmp_path):
    return write_purchase_csv(tmp_path / "online_shoppers.csv")


def vocab_by_rule(train_values) -> list[str]:
    """The documented category order, computed independently: training-split frequency, most
    frequent first, ties by first appearance; then the '<unseen>' slot."""
    counts, first = {}, {}
    for i, v in enumerate(train_values):
        counts[v] = counts.get(v, 0) + 1
        first.setdefault(v, i)
    return sorted(counts, key=lambda v: (-counts[v], first[v])) + ["<unseen>"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "optimized: compiles with XLA's full optimisation, as users' runs do (a test comparing "
        "two different programs bit for bit), in its process and its launchers' alike",
    )


@pytest.fixture(autouse=True)
def _optimisation(request):
    """Full XLA optimisation for a test marked `optimized`, then the suite's setting again.
    (Its own MonkeyPatch: a test's `monkeypatch.undo()` must not undo it. A module-scoped
    fixture that trains runs before this one, unoptimised: a marked test compares no such
    fixture's numbers.)"""
    if request.node.get_closest_marker("optimized") is None:
        yield
        return
    before = jax.config.read("jax_disable_most_optimizations")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "0")  # for its launchers
        # The setting is read when a program compiles, and is not part of the key of JAX's
        # in-memory caches: empty them, so that nothing compiled before is reused.
        jax.clear_caches()
        jax.config.update("jax_disable_most_optimizations", False)
        try:
            yield
        finally:
            jax.clear_caches()
            jax.config.update("jax_disable_most_optimizations", before)
