"""Times `ae_jax.data.load_dataset` on a large CSV against `pandas.read_csv` of the same file.

Writes (once, in a child process, so its memory does not count) a CSV in the 18-column layout
of the UCI Online Shoppers table (`tests/conftest.py: write_purchase_csv`), then in this process
times `load_dataset` (read, split, encode, scale) and `pandas.read_csv` (read only), alternately
`--repeats` times each, and prints the best wall-clock time of each, their ratio, the CPU times,
and the peak resident memory of the process (ru_maxrss) after the first `load_dataset`, before
pandas ran. Best-of-N, because a shared machine's other work only ever adds time.

pandas is not a dependency of ae_jax; the bench extra installs it (pip install -e ".[bench]").

    python scripts/bench_csv.py [--rows 2000000] [--path /tmp/purchase_2000000.csv]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import time

import numpy as np

COLUMNS = [
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


def write_csv(path: str, n: int, seed: int = 0) -> None:
    """The value kinds and ranges of write_purchase_csv, drawn column-wise."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    admin = rng.integers(0, 10, n)
    cols = [
        admin,
        np.round(admin * rng.uniform(0, 60, n), 3),
        rng.integers(0, 4, n),
        np.round(rng.uniform(0, 200, n), 2),
        rng.integers(1, 80, n),
        np.round(rng.uniform(0, 3000, n), 3),
        np.round(rng.uniform(0, 0.2, n), 5),
        np.round(rng.uniform(0, 0.2, n), 5),
        np.round(rng.exponential(5.0, n), 4),
        rng.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], n),
        np.array(MONTHS)[rng.integers(0, 10, n)],
        rng.integers(1, 8, n),
        rng.integers(1, 13, n),
        rng.integers(1, 9, n),
        rng.integers(1, 20, n),
        np.array(VISITORS)[rng.integers(0, 3, n)],
        np.array(["TRUE", "FALSE"])[rng.integers(0, 2, n)],
        np.array(["TRUE", "FALSE"])[rng.integers(0, 2, n)],
    ]
    table = pa.table({name: pa.array(c) for name, c in zip(COLUMNS, cols, strict=True)})
    # Like csv.writer: a plain header, no quotes (no cell needs them).
    with open(path, "wb") as f:
        f.write((",".join(COLUMNS) + "\n").encode())
        pacsv.write_csv(
            table, f, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
        )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--path", default="")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = args.path or f"/tmp/purchase_{args.rows}.csv"
    if args.write_only:
        write_csv(path, args.rows)
        return
    if not os.path.exists(path):
        subprocess.run(
            [sys.executable, __file__, "--write-only", "--rows", str(args.rows), "--path", path],
            check=True,
        )
    import pandas

    from ae_jax import config as config_lib
    from ae_jax import data

    cfg = config_lib.default_config().data
    cfg.path = path
    base = peak_mb()
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "pandas": []}
    for i in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        ds = data.load_dataset(cfg)
        runs["ours"].append((time.perf_counter() - wall, time.process_time() - cpu))
        if i == 0:
            peak, shape = peak_mb(), (len(ds.train) + len(ds.val), ds.num_features)
        del ds
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        frame = pandas.read_csv(path)
        runs["pandas"].append((time.perf_counter() - wall, time.process_time() - cpu))
        rows = len(frame)
        del frame
        gc.collect()
    (ours, ours_cpu), (theirs, theirs_cpu) = (min(runs[k]) for k in ("ours", "pandas"))
    print(f"file: {path} ({os.path.getsize(path) / 1e6:.0f} MB, {rows} rows); dataset {shape}")
    print(
        f"ae_jax.data.load_dataset: {ours:.2f} s (cpu {ours_cpu:.2f} s), best of "
        f"{args.repeats}: {', '.join(f'{w:.2f}' for w, _ in runs['ours'])}"
    )
    print(
        f"pandas.read_csv:          {theirs:.2f} s (cpu {theirs_cpu:.2f} s), best of "
        f"{args.repeats}: {', '.join(f'{w:.2f}' for w, _ in runs['pandas'])} "
        f"(pandas {pandas.__version__})"
    )
    print(f"ratio:                    {ours / theirs:.2f}x wall, {ours_cpu / theirs_cpu:.2f}x cpu")
    print(f"peak memory (ru_maxrss) after load_dataset: {peak:.0f} MB (before it: {base:.0f} MB)")


if __name__ == "__main__":
    main()
