"""Section 4: the longest silence of a one-epoch run on a 60,000 x 784 table, start to exit.

Writes a deterministic 60,000 x 784 float32 .npy (uniform uint8 / 255, like MNIST's size) and
runs, as a user would,
  python -m experiments.main --config=experiments/configs/seed_sparse.py --workdir=NEW \
    --config.data.path=TABLE.npy --config.train.epochs=1 --config.train.batch_size=64
with PYTHONUNBUFFERED=1, stamping every line of its output as it arrives. Reported: start to
the first line, the longest gap between consecutive lines (and the lines around it), the last
line to exit. Pass: all three <= 15 s. Run with a cold compilation cache (a fresh directory)
and then warm (the same directory again).
"""

import os
import shutil
import tempfile

import numpy as np

from bench import common, process
from bench.common import fmt, log, verdict

NEED_S = 15.0


def write_table(path: str, rows: int, cols: int) -> None:
    """Deterministic pixel-like floats in [0, 1], written in blocks (bounded memory)."""
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    block = 8192
    for start in range(0, rows, block):
        stop = min(start + block, rows)
        out[start:stop] = rng.integers(0, 256, (stop - start, cols), dtype=np.uint8) / np.float32(
            255
        )
    out.flush()
    del out


def shorten(text: str, n: int = 110) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= n else text[: n - 3] + "..."


def run(ctx: common.Context) -> tuple[list[str], dict]:
    args = ctx.args
    rows, cols, config = args.gap_rows, args.gap_cols, args.gap_config
    root = tempfile.mkdtemp(prefix="gap_", dir=ctx.tmp)
    table = os.path.join(root, f"table_{rows}x{cols}.npy")
    log(f"output gap: writing {table} ({rows * cols * 4 / 2**20:,.0f} MiB)")
    write_table(table, rows, cols)
    cache = os.path.join(root, "cache")
    results = {}
    try:
        for kind in ("cold", "warm"):
            wd = os.path.join(root, f"run_{kind}")
            cmd = process.python(
                "-m",
                "experiments.main",
                f"--config=experiments/configs/{config}.py",
                f"--workdir={wd}",
                f"--config.data.path={table}",
                "--config.train.epochs=1",
                f"--config.train.batch_size={args.gap_batch}",
            )
            results[kind] = process.timed_run(
                f"output gap: {kind} cache",
                cmd,
                {"AE_JAX_COMPILATION_CACHE": cache},
                os.path.join(root, f"{kind}.log"),
            )
            if args.gap_log_dir:
                os.makedirs(args.gap_log_dir, exist_ok=True)
                shutil.copy(
                    os.path.join(root, f"{kind}.log"),
                    os.path.join(args.gap_log_dir, f"output_gap_{kind}.log"),
                )
            shutil.rmtree(wd, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    checks, table_rows, notes = {}, [], []
    for kind, res in results.items():
        gap, i = res.longest_gap()
        worst, where = res.worst_silence()
        ok = worst <= NEED_S
        checks[f"output gap, one epoch {rows:,} x {cols}, {kind} cache (<= {NEED_S:g} s)"] = [ok]
        table_rows.append(
            f"| {kind} | {res.wall_s:.2f} | {len(res.lines)} | {res.first_line_s:.2f} | "
            f"{gap:.2f} | {res.tail_s:.2f} | {worst:.2f} ({where}) | {verdict(ok)} |"
        )
        if i:
            notes.append(
                f"- {kind}: the longest gap between lines, {gap:.2f} s, after "
                f"`{shorten(res.lines[i - 1][1])}` (at {res.lines[i - 1][0]:.2f} s), "
                f"before `{shorten(res.lines[i][1])}` (at {res.lines[i][0]:.2f} s)."
            )
        notes.append(
            f"- {kind}: last line `{shorten(res.lines[-1][1]) if res.lines else '-'}`, "
            f"then {res.tail_s:.2f} s to exit."
        )
    lines = [
        f"## 4. Output gaps: one epoch of {config} on a {rows:,} x {cols} table at batch "
        f"{args.gap_batch}, start to exit",
        "",
        f"`python -m experiments.main --config=experiments/configs/{config}.py "
        f"--config.data.path=TABLE.npy --config.train.epochs=1 --config.train.batch_size="
        f"{args.gap_batch}` (TABLE: deterministic uniform uint8 / 255 as float32, written "
        "here), PYTHONUNBUFFERED=1, stdout and stderr merged and every line time-stamped on "
        "arrival. cold = a fresh AE_JAX_COMPILATION_CACHE directory, warm = the same one "
        f"again. Pass: no silence over {NEED_S:g} s from start to exit (start to first "
        "line, between lines, last line to exit).",
        "",
        "| cache | wall s | lines | start to first line s | longest gap between lines s | "
        "last line to exit s | worst silence s | result |",
        "|---|---:|---:|---:|---:|---:|---|---|",
        *table_rows,
        "",
        *notes,
    ]
    if args.gap_log_dir:
        lines.append(f"- Time-stamped logs: {args.gap_log_dir}/output_gap_{{cold,warm}}.log.")
    worst = ", ".join(f"{k} {fmt(r.worst_silence()[0])} s" for k, r in results.items())
    log(f"output gap: done (worst silence: {worst})")
    return lines, checks
