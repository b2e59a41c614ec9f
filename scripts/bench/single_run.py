"""Section 2: one seed_sparse run end to end, as a user waits for it, against a Keras 3 script.

Contenders, each a whole process timed from start to exit on the section's CSV:
  - project, cold cache: `python -m experiments.main --config=experiments/configs/seed_sparse.py
    --workdir=NEW --config.data.path=CSV --config.train.epochs=E --config.train.batch_size=B`
    with AE_JAX_COMPILATION_CACHE set to a fresh, empty directory;
  - project, warm cache: the same command again right after it, on the directory the cold
    run filled (a new workdir, so it trains again);
  - Keras: `python scripts/bench/keras_seed_sparse.py --csv=CSV --epochs=E --batch_size=B
    --out=NEW` (KERAS_BACKEND=jax, no compilation cache variable set: as a Keras user runs it).
The cold-then-warm pair and Keras alternate in a rotated order each repeat; one untimed run of
each comes first, so that no contender pays for reading the libraries from disk.
"""

import json
import os
import shutil
import tempfile

from bench import common, keras_models, process
from bench.common import fmt, log, median, rotated, spread, times, verdict

NEED_COLD, NEED_WARM = 0.75, 0.4
KERAS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_seed_sparse.py")


def project_cmd(workdir: str, csv_path: str, epochs: int, batch: int) -> list[str]:
    return process.python(
        "-m",
        "experiments.main",
        "--config=experiments/configs/seed_sparse.py",
        f"--workdir={workdir}",
        f"--config.data.path={csv_path}",
        f"--config.train.epochs={epochs}",
        f"--config.train.batch_size={batch}",
    )


def keras_cmd(out: str, csv_path: str, epochs: int, batch: int) -> list[str]:
    return process.python(
        KERAS_SCRIPT,
        f"--csv={csv_path}",
        f"--epochs={epochs}",
        f"--batch_size={batch}",
        f"--out={out}",
    )


KERAS_ENV = {"KERAS_BACKEND": "jax", **{v: None for v in process.CACHE_VARS}}


def summary_of(workdir: str) -> dict:
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


def cache_entries(path: str) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


class Records:
    def __init__(self, label: str):
        self.label, self.rows = label, []

    def add(self, result: process.Result, **extra) -> None:
        self.rows.append(
            {"wall": result.wall_s, "first": result.first_line_s, "tail": result.tail_s, **extra}
        )

    def values(self, key: str) -> list:
        return [r.get(key) for r in self.rows]


def run(ctx: common.Context) -> tuple[list[str], dict]:
    args = ctx.args
    epochs, batch, repeats = args.single_epochs, args.single_batch, args.single_repeats
    root = tempfile.mkdtemp(prefix="single_", dir=ctx.tmp)
    logs = os.path.join(root, "logs")
    os.makedirs(logs)
    counter = iter(range(10**6))

    def new_dir(kind: str) -> str:
        return os.path.join(root, f"{kind}{next(counter)}")

    cold, warm, keras = (
        Records("project, cold cache"),
        Records("project, warm cache"),
        Records("Keras 3 script"),
    )
    entries: list[int] = []

    def project_pair(tag: str, timed: bool = True) -> None:
        cache = new_dir("cache")
        for rec, kind in ((cold, "cold"), (warm, "warm")):
            wd = new_dir(f"run_{kind}")
            res = process.timed_run(
                f"single run: project, {kind} cache{tag}",
                project_cmd(wd, ctx.data_path, epochs, batch),
                {"AE_JAX_COMPILATION_CACHE": cache},
                os.path.join(logs, f"{os.path.basename(wd)}.log"),
            )
            if kind == "cold":
                entries.append(cache_entries(cache))
            if timed:
                s = summary_of(wd)
                rec.add(
                    res, compile=s.get("compile_s"), mse=s.get("eval/mse"), train=s.get("wall_s")
                )
            shutil.rmtree(wd, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)

    def keras_run(tag: str, timed: bool = True) -> None:
        out = new_dir("keras")
        res = process.timed_run(
            f"single run: Keras{tag}",
            keras_cmd(out, ctx.data_path, epochs, batch),
            KERAS_ENV,
            os.path.join(logs, f"{os.path.basename(out)}.log"),
        )
        if timed:
            phases = json.loads(res.lines[-1][1])
            mse = res.find("validation mse")
            keras.add(
                res,
                mse=float(mse.split()[-1]) if mse else None,
                train=phases.get("fit_s"),
                imports=phases.get("import_s"),
            )
        shutil.rmtree(out, ignore_errors=True)

    # Without Keras here (the Keras script would not import it either) the project's runs
    # alone are measured, and the ratios are not judged.
    have_keras = keras_models.keras is not None
    jobs = [project_pair, keras_run] if have_keras else [project_pair]
    try:
        for job in jobs:
            job(" (untimed warm-up)", timed=False)
        for r in range(repeats):
            for job in rotated(jobs, r):
                job(f", repeat {r + 1}/{repeats}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    k_walls = keras.values("wall")
    checks, rows = {}, []
    for rec, need in ((cold, NEED_COLD), (warm, NEED_WARM), (keras, None)):
        walls = rec.values("wall")
        # Paired: repeat r's project run against repeat r's Keras run (interleaved, so they
        # shared the machine's speed of that moment); the median of those ratios.
        judged = need is not None and have_keras
        ratio = median(w / k for w, k in zip(walls, k_walls, strict=True)) if judged else None
        ok = ratio <= need if judged else None
        if need:
            name = f"single run end to end, {rec.label.split(', ')[1]} (<= {need}x Keras)"
            checks[name] = [ok] if judged else []
        if rec is keras and not have_keras:
            rows.append(
                f"| {rec.label} | not measured: {keras_models.KERAS_ERROR} | - | - | - "
                "| - | - | - | - | - |"
            )
            continue
        first = rec.values("first")
        rows.append(
            f"| {rec.label} | {spread(walls)} | {times(ratio)} | "
            f"{f'<= {need}x' if need else '-'} | {verdict(ok)} | {spread(first)} | "
            f"{fmt(median(rec.values('compile')))} | {fmt(median(rec.values('train')))} | "
            f"{fmt(median(rec.values('tail')))} | {fmt(median(rec.values('mse')), '.4f')} |"
        )
    lines = [
        f"## 2. One seed_sparse run end to end: {ctx.ds.train.shape[0]:,} training rows x "
        f"{ctx.ds.num_features} columns, {epochs} epochs at batch {batch}",
        "",
        "Whole processes, start to exit (`subprocess`, `time.perf_counter()` around it), "
        f"{repeats} repeats; the cold/warm pair and Keras alternate, in a rotated order. "
        "project = `python -m experiments.main --config=experiments/configs/seed_sparse.py "
        f"--config.data.path=CSV --config.train.epochs={epochs} "
        f"--config.train.batch_size={batch}` with its defaults (per-epoch validation, "
        "metrics, TensorBoard, checkpoints, evaluation and figures at the end); cold = "
        "AE_JAX_COMPILATION_CACHE a fresh empty directory, warm = the same directory again "
        "right after. Keras = `scripts/bench/keras_seed_sparse.py` (the same model in Keras 3 "
        "on JAX: read the CSV, encode, min-max scale, `fit` with validation data, predict the "
        "validation rows, save the model). Ratio = median over repeats of project / Keras "
        "of the same repeat. compile = the run's `compile_s` (summary.json); train = its "
        "`wall_s` (compile + epoch loop), Keras' `fit` seconds; exit tail = last output "
        "line to exit (the background figure writer, interpreter shutdown). val MSE = mean "
        "squared error per entry on the validation rows (same model, so similar values).",
        "",
        "| contender | wall s, median (min-max) | / Keras | need | result | to first output s | "
        "compile s | train s | exit tail s | val MSE |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"- Compilation cache after a cold run: {', '.join(map(str, entries))} files (the warm "
        "run loads these instead of compiling).",
        (
            f"- Keras' imports (keras on JAX) took {fmt(median(keras.values('imports')))} s of "
            "its run; the project's first output line comes after its imports."
            if have_keras
            else "- Keras: not measured (it could not be imported here)."
        ),
        "- Per repeat, s (cold / warm / Keras): "
        + "; ".join(
            f"{c:.2f} / {w:.2f} / " + (f"{k:.2f}" if k is not None else "-")
            for c, w, k in zip(
                cold.values("wall"),
                warm.values("wall"),
                k_walls if have_keras else [None] * len(cold.values("wall")),
                strict=True,
            )
        )
        + ".",
    ]
    log("single run: done")
    return lines, checks
