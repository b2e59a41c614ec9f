"""Section 3: the 64-config seed_sparse sweep, as a user runs it, against Keras one by one.

The sweep (L1 weight i mod 8, seed i div 8; 5 epochs at batch 1000, the config's) runs through
the launcher a user types, as a whole process timed from start to exit:
  python -m experiments.sweep --config=FILE --workdir=NEW [--config.x.y=v ...]
where FILE (written here) is seed_sparse on the section's CSV with a `get_sweep()` of the N
overrides. Contenders:
  - defaults: every default on (metrics, TensorBoard, checkpoints, evaluation and figures at
    the end of every run, the compilation cache), cold = AE_JAX_COMPILATION_CACHE a fresh
    empty directory, warm = the same command right after on that directory (new workdir);
  - extras off: eval.at_end=False, train.figures=False, train.tensorboard=False,
    train.checkpoints=False (what Keras' `fit` does not do either), cold and warm alike;
  - Keras one by one, in this process: per model a fresh Keras model and `fit` with
    `validation_split` (the same split), `clear_session` between; the sum of the models.
The sweep repeats are spread over the Keras pass (repeat r before Keras segment r), the
contenders in a rotated order, so every one sees the same spells of machine speed.
"""

import json
import math
import os
import shutil
import statistics
import tempfile

import numpy as np

from bench import common, keras_models, process
from bench.common import fmt, log, median, rotated, spread, times, verdict

NEED_VS_KERAS, NEED_OVERHEAD = 20.0, 1.5
EXTRAS_OFF = {
    "eval.at_end": False,
    "train.figures": False,
    "train.tensorboard": False,
    "train.checkpoints": False,
}

CONFIG_FILE = '''"""seed_sparse on {path!r}, a sweep of {n} configs (by scripts/benchmark.py)."""
from ae_jax.configs import seed_sparse

OVERRIDES = {overrides!r}


def get_config():
    c = seed_sparse.get_config()
    c.data.path = {path!r}
    c.data.val_fraction = {val_fraction!r}
    return c


def get_sweep():
    return [dict(o) for o in OVERRIDES]
'''


def write_config(path: str, data_path: str, n: int) -> None:
    with open(path, "w") as f:
        f.write(
            CONFIG_FILE.format(
                path=data_path,
                n=n,
                overrides=common.sweep_overrides(n),
                val_fraction=common.VAL_FRACTION,
            )
        )


def sweep_cmd(config: str, workdir: str, extras_off: bool) -> list[str]:
    flags = [f"--config.{k}={v}" for k, v in EXTRAS_OFF.items()] if extras_off else []
    return process.python(
        "-m", "experiments.sweep", f"--config={config}", f"--workdir={workdir}", *flags
    )


class Contender:
    def __init__(self, label: str, extras_off: bool):
        self.label, self.extras_off = label, extras_off
        self.rows: list[dict] = []

    def walls(self) -> list[float]:
        return [r["wall"] for r in self.rows]

    def values(self, key: str) -> list:
        return [r.get(key) for r in self.rows]


def first_summary(workdir: str) -> dict:
    """summary.json of the sweep's first run ({} if it has none: the run failed)."""
    try:
        runs = os.path.join(workdir, "runs")
        with open(os.path.join(runs, sorted(os.listdir(runs))[0], "summary.json")) as f:
            return json.load(f)
    except (OSError, IndexError, ValueError):
        return {}


def runs_done(workdir: str, n: int) -> bool:
    """Whether sweep.json counts all n runs done."""
    try:
        with open(os.path.join(workdir, "sweep.json")) as f:
            return json.load(f)["counts"]["done"] == n
    except (OSError, KeyError, ValueError):
        return False


def run(ctx: common.Context) -> tuple[list[str], dict]:
    args, ds = ctx.args, ctx.ds
    n, repeats = args.sweep_models, args.sweep_repeats
    n_keras = args.keras_sweep_models
    root = tempfile.mkdtemp(prefix="sweep_", dir=ctx.tmp)
    logs = os.path.join(root, "logs")
    os.makedirs(logs)
    config = os.path.join(root, "sweep_config.py")
    write_config(config, ctx.data_path, n)
    base = common.seed_sparse.get_config()
    epochs, batch = base.train.epochs, base.train.batch_size
    counter = iter(range(10**6))
    pairs = [
        (Contender("defaults, cold cache", False), Contender("defaults, warm cache", False)),
        (Contender("extras off, cold cache", True), Contender("extras off, warm cache", True)),
    ]

    def run_pair(pair, tag: str) -> None:
        cache = os.path.join(root, f"cache{next(counter)}")
        for c in pair:
            wd = os.path.join(root, f"sweep{next(counter)}")
            res = process.timed_run(
                f"sweep: {c.label}{tag}",
                sweep_cmd(config, wd, c.extras_off),
                {"AE_JAX_COMPILATION_CACHE": cache},
                os.path.join(logs, f"{os.path.basename(wd)}.log"),
            )
            s = first_summary(wd)
            evaluated = res.last_line_with("evaluated in")
            c.rows.append(
                {
                    "wall": res.wall_s,
                    "cpu": res.cpu_s,
                    "first": res.first_line_s,
                    "compile": s.get("compile_s"),
                    "train": s.get("wall_s"),
                    "after_eval": res.wall_s - evaluated if evaluated else None,
                    "done": runs_done(wd, n),
                }
            )
            shutil.rmtree(wd, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)

    # Keras splits off the LAST rows: train + val in that order gives the same split.
    x_all = np.concatenate([ds.train, ds.val])
    val_split = ds.val.shape[0] / x_all.shape[0]
    assert math.floor(x_all.shape[0] * (1 - val_split)) == ds.train.shape[0]
    keras_s: list[float] = []
    overrides = common.sweep_overrides(n)
    have_keras = keras_models.keras is not None
    try:
        bounds = np.linspace(0, n_keras, repeats + 1).round().astype(int)
        for r in range(repeats):
            tag = f", repeat {r + 1}/{repeats}"
            for pair in rotated(pairs, r):
                run_pair(pair, tag)
            if have_keras and bounds[r + 1] > bounds[r]:
                log(
                    f"sweep: Keras one by one, models {bounds[r] + 1}..{bounds[r + 1]} of {n_keras}"
                )
                for i in range(bounds[r], bounds[r + 1]):
                    o = overrides[i]
                    keras_s.append(
                        common.timed(
                            keras_models.sweep_run,
                            x_all,
                            val_split,
                            o["loss.l1_weight"],
                            o["train.seed"],
                            epochs,
                            batch,
                        )
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    keras_total, keras_note = None, ""
    if keras_s:
        keras_total = sum(keras_s) * n / len(keras_s)
        if len(keras_s) < n:
            keras_note = f" (EXTRAPOLATED from {len(keras_s)} measured models)"
    checks: dict[str, list[bool]] = {}
    off = {c.label.split(", ")[1]: c for c in pairs[1]}
    rows = []
    for c in [*pairs[0], *pairs[1]]:
        wall = median(c.walls())
        vs_keras = keras_total / wall if keras_total else None
        cache = c.label.split(", ")[1]
        need, result, over = "-", "-", None
        if not c.extras_off:
            # defaults / extras off, paired repeat by repeat, median of the ratios.
            over = median(a / b for a, b in zip(c.walls(), off[cache].walls(), strict=True))
            ok_over = over <= NEED_OVERHEAD
            checks[f"sweep defaults / extras off, {cache} (<= {NEED_OVERHEAD}x)"] = [ok_over]
            ok = vs_keras >= NEED_VS_KERAS if vs_keras is not None else None
            if ok is not None:
                checks[f"sweep defaults vs Keras one by one, {cache} (>= {NEED_VS_KERAS:g}x)"] = [
                    ok
                ]
            need = f">= {NEED_VS_KERAS:g}x Keras; <= {NEED_OVERHEAD}x extras off"
            result = f"{verdict(ok)}; {verdict(ok_over)}"
        rows.append(
            f"| {c.label} | {n} | {spread(c.walls())} | {fmt(median(c.values('cpu')))} | "
            f"{fmt(wall / n, '.3f')} | "
            f"{times(vs_keras, '.1f')} | {times(over)} | {need} | {result} | "
            f"{fmt(median(c.values('first')))} | {fmt(median(c.values('compile')))} | "
            f"{fmt(median(c.values('train')))} | {fmt(median(c.values('after_eval')))} |"
        )
    rows.append(
        f"| Keras one by one{keras_note} | {n} | {fmt(keras_total)} | - | "
        f"{fmt(median(keras_s), '.3f')} | {'1.0x' if keras_s else '-'} | - | - | - | - | - | "
        "- | - |"
    )
    not_done = sum(not ok for c in [*pairs[0], *pairs[1]] for ok in c.values("done"))
    lines = [
        f"## 3. Sweep: {n} seed_sparse configs ({len(common.L1_WEIGHTS)} L1 weights x seeds), "
        f"{epochs} epochs at batch {batch}, as `python -m experiments.sweep`",
        "",
        f"Whole launcher processes, start to exit, {repeats} repeats spread over the Keras "
        "pass, contenders in a rotated order (each cold run followed by its warm run). "
        "defaults = every default on: per run metrics, TensorBoard, a checkpoint, evaluation "
        "and figures at the end, and the persistent compilation cache (cold = a fresh empty "
        "AE_JAX_COMPILATION_CACHE directory, warm = the same directory again). extras off = "
        f"{', '.join(f'--config.{k}={v}' for k, v in EXTRAS_OFF.items())}. Keras one by one "
        "= in this process (its import not counted), per model a fresh model and `fit` with "
        "`validation_split`, `clear_session` between; the sum over models. Keras / this = "
        "Keras total / median wall. / extras off = median over repeats of defaults / extras "
        "off with the same cache state, same repeat. CPU s = user + system CPU time of the "
        "launcher and its figure workers (at most the wall time times the number of cores). "
        "to first output = start to the "
        "launcher's first log line (imports); compile, train = the runs' `compile_s`, "
        "`wall_s` (compile + epoch loop, all runs together) from summary.json; after eval = "
        "the last 'evaluated' log line to exit (figures and summaries written in the "
        "background, exit).",
        "",
        "| contender | models | wall s, median (min-max) | CPU s, median | s per model | "
        "Keras / this | "
        "/ extras off | need | result | to first output s | compile s | train s | "
        "after eval s |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        "- Per repeat, s: "
        + "; ".join(
            f"{c.label} {', '.join(format(w, '.2f') for w in c.walls())}"
            for c in [*pairs[0], *pairs[1]]
        )
        + ".",
        "- Per repeat, CPU s: "
        + "; ".join(
            f"{c.label} {', '.join(format(v, '.2f') for v in c.values('cpu'))}"
            for c in [*pairs[0], *pairs[1]]
        )
        + ".",
    ]
    if not_done:
        lines.append(
            f"- **{not_done} sweep process(es) left runs not done** (see the status "
            "in sweep.json): their times do not count a finished sweep."
        )
    if keras_s:
        lines.append(
            f"- Keras: median model {statistics.median(keras_s):.2f} s (min {min(keras_s):.2f},"
            f" max {max(keras_s):.2f}), {len(keras_s)} measured."
        )
    else:
        lines.append(f"- Keras: not measured ({keras_models.KERAS_ERROR or 'no models'}).")
    log("sweep: done")
    return lines, checks
