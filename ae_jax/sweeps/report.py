"""Aggregate a sweep: one row per setting, mean ± sample sd over seeds, figures per swept parameter.

Reads every finished run under DIR/runs/ (summary.json, and eval.json when present) and writes
- DIR/runs.csv: one tidy row per run (its overrides, status, summary and evaluation numbers);
- DIR/results.csv: one row per setting (the overrides without the seed), each metric's mean and
  sample standard deviation (ddof 1, NaN for one value) over its seeds' finite values and their
  number n; `seeds` counts the setting's finished runs and `diverged` those that diverged,
  whose numbers (of parameters from before their non-finite step) enter no mean;
- DIR/report.md: the same as a markdown table, without columns that mean nothing here, each
  cell saying its n when it differs from the row's and how many values were not finite;
- DIR/figures/metrics_vs_<param>.png: each metric against each swept parameter.
results.csv holds only numbers the config and seed determine, so a resumed sweep's equals an
uninterrupted one's; wall-clock times (all of `TIMING`, whatever the metrics) go to
DIR/timing.csv. The metrics are `--metrics`, else the ones the sweep's config file chose
(`REPORT_METRICS`, saved in DIR/report_metrics.json by the sweep), else `DEFAULT_METRICS`.
"""

import csv
import json
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError

SEED_KEY = "train.seed"
DEFAULT_METRICS = (
    "eval/loss",
    "eval/mse",
    "eval/recon",
    "eval/kl",
    "vae/iwae",
    "vae/active_units",
    "vae/total_correlation",
    "eval/l1",
    "code/near_zero_fraction",
    "code/l1_per_row",
    "pca/mse",
    "ae_over_pca",
    "n_params",
    "wall_s",
)
TIMING = ("wall_s", "compile_s", "epoch_s", "rows_per_s")
# Metrics about the code's L1 activity: shown only when some run's objective had an L1 term.
L1_METRICS = ("eval/l1", "train/l1", "code/l1_per_row")
# y-axis labels: what each number is, with its unit.
UNITS = {
    "eval/loss": "objective (per example)",
    "train/loss": "objective (per example)",
    "eval/mse": "per-element MSE",
    "recon/mse": "per-element MSE",
    "pca/mse": "per-element MSE",
    "eval/recon": "reconstruction term (per example)",
    "eval/kl": "KL (nats per example)",
    "vae/iwae": "IWAE bound (nats per example)",
    "vae/elbo": "ELBO (nats per example)",
    "vae/kl": "KL (nats per example)",
    "vae/active_units": "active units",
    "vae/total_correlation": "total correlation (nats)",
    "vae/mutual_info": "index-code MI (nats)",
    "vae/dim_kl": "dimension-wise KL (nats)",
    "eval/l1": "sum |code| per example",
    "code/l1_per_row": "sum |code| per example",
    "code/near_zero_fraction": "fraction of codes",
    "recon/numeric_mse": "MSE of numeric columns (scaled)",
    "recon/categorical_accuracy": "accuracy of categories",
    "ae_over_pca": "AE MSE / PCA MSE",
    "n_params": "parameters",
    "wall_s": "seconds",
}
DPI = 150
FONT = 9  # points: the smallest text on a figure


def collect(workdir: str) -> tuple[list[dict], int, int]:
    """One dict per finished run (its name, overrides, status, numeric results and L1 weight),
    how many runs sweep.json lists, and how many of them failed. Whether a run finished or
    failed is read from its own directory, as sweep.json's statuses are (a killed sweep leaves
    them behind its runs)."""
    path = os.path.join(workdir, "sweep.json")
    if not os.path.exists(path):
        raise UserError(
            f"{workdir!r} has no sweep.json, so it is not a sweep directory; run "
            "python -m experiments.sweep --config=FILE --workdir=DIR first."
        )
    with open(path) as f:
        entries = json.load(f)["runs"]
    rows, failed = [], 0
    for e in entries:
        run_dir = os.path.join(workdir, e["workdir"])
        summary = workdir_lib.finished_summary(run_dir)
        if summary is None:
            failed += os.path.exists(os.path.join(run_dir, workdir_lib.FAILED))
            continue
        values = {}
        for name in (workdir_lib.SUMMARY, workdir_lib.EVAL):
            if os.path.exists(os.path.join(run_dir, name)):
                with open(os.path.join(run_dir, name)) as f:
                    loaded = json.load(f)
                if name == workdir_lib.EVAL:  # strict JSON: a number that was not finite is null
                    loaded = {k: math.nan if v is None else v for k, v in loaded.items()}
                values.update({k: v for k, v in loaded.items() if _is_number(v)})
        config = workdir_lib.saved_config(run_dir) or {}
        rows.append(
            {
                "index": e["index"],
                "name": e["name"],
                "overrides": e["overrides"],
                "status": summary["status"],
                "values": values,
                "l1_weight": config.get("loss.l1_weight", 0.0),
                "config": config,
            }
        )
    return rows, len(entries), failed


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _shown(overrides: dict) -> dict:
    """The overrides a report shows: a `named` block appears as its name, under "model"."""
    hidden = set(overrides.get("_named_keys", ())) | {"_named_keys", SEED_KEY}
    shown = {k: v for k, v in overrides.items() if k not in hidden}
    if "_name" in shown:
        shown["model"] = shown.pop("_name")
    return shown


def _effective(run: dict, params: list[str]) -> dict:
    """A run's value of each swept parameter: the value its saved config had (typed by the
    config: an override 0 of a float field is 0.0), else its override (a `named` block), so a
    run that left a field at the base config's value groups with one that set it explicitly."""
    shown, config = _shown(run["overrides"]), run.get("config", {})
    return {p: config[p] if p in config else shown.get(p, "") for p in params}


def aggregate(rows: list[dict], metrics: list[str]) -> tuple[list[str], list[dict]]:
    """Groups runs by setting (overrides minus the seed): each metric's mean, sample standard
    deviation (ddof 1; NaN for a single value) and number n of the finite values of the runs
    that did not diverge, and how many of their values were not finite."""
    params = sorted({k for r in rows for k in _shown(r["overrides"])})
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(json.dumps(_effective(r, params), sort_keys=True), []).append(r)
    table = []
    for runs in groups.values():
        row = _effective(runs[0], params)
        row["seeds"] = len(runs)
        row["diverged"] = sum(r["status"] == "diverged" for r in runs)
        kept = [r for r in runs if r["status"] != "diverged"]
        for m in metrics:
            have = [r["values"][m] for r in kept if m in r["values"]]
            vals = [v for v in have if math.isfinite(v)]
            row[f"{m} mean"] = float(np.mean(vals)) if vals else float("nan")
            # Equal values have sd 0, not the float residue of their mean (8.5e-18).
            sd = float(np.std(vals, ddof=1)) if len(set(vals)) > 1 else 0.0
            row[f"{m} std"] = sd if len(vals) > 1 else float("nan")
            row[f"{m} n"] = len(vals)
            row[f"{m} not finite"] = len(have) - len(vals)
        table.append(row)
    return params, table


def report_metrics(workdir: str) -> list[str] | None:
    """The metrics the sweep's config file chose (DIR/report_metrics.json), if any."""
    path = os.path.join(workdir, workdir_lib.REPORT_METRICS)
    if not os.path.exists(path):
        return None
    return list(
        workdir_lib.read_json(
            path, "the report's metrics", "delete it to report the default metrics"
        )["metrics"]
    )


def write_report(workdir: str, metrics: list[str] | None = None) -> dict:
    """Writes runs.csv, results.csv, report.md and figures; returns {"rows", "params", ...}."""
    rows, listed, failed = collect(workdir)
    if not rows:
        raise UserError(f"{workdir!r}: no finished run yet (see sweep.json); nothing to report.")
    present = {k for r in rows for k in r["values"]}
    chosen = metrics or report_metrics(workdir) or list(DEFAULT_METRICS)
    metrics = [m for m in chosen if m in present]
    # Every wall time goes to timing.csv, whatever the metrics chosen.
    metrics += [m for m in TIMING if m in present and m not in metrics]
    _write_runs(workdir, rows)
    params, table = aggregate(rows, metrics)
    for name, keep in (
        ("results.csv", lambda m: m not in TIMING),
        ("timing.csv", lambda m: m in TIMING),
    ):
        header = [*params, "seeds", "diverged"] + [
            f"{m} {s}" for m in metrics if keep(m) for s in ("mean", "std", "n")
        ]
        with open(os.path.join(workdir, name), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
            w.writeheader()
            w.writerows(table)
    asked = list(chosen) != list(DEFAULT_METRICS)  # --metrics or the config's REPORT_METRICS
    shown = _meaningful(metrics, table, rows, keep_zero=asked)
    diverged = any(row["diverged"] for row in table)
    head = [*params, "seeds", *(["diverged"] if diverged else []), *shown]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table:
        cells = [str(row[p]) for p in params] + [str(row["seeds"])]
        cells += [str(row["diverged"])] if diverged else []
        cells += [_cell(row, m) for m in shown]
        lines.append("| " + " | ".join(cells) + " |")
    figures = plot(workdir, params, table, [m for m in shown if m != "n_params"])
    seeds = sorted({row["seeds"] for row in table})
    unfinished = listed - len(rows) - failed  # pending, running, or killed
    missing = [f"{n} {why}" for n, why in ((failed, "failed"), (unfinished, "unfinished")) if n]
    md = [
        f"# Sweep report: {os.path.abspath(workdir)}",
        "",
        f"{len(rows)} finished runs"
        + (f" of the {listed} the sweep lists ({', '.join(missing)})" if missing else "")
        + f", {len(table)} settings; mean ± sample standard deviation "
        f"(ddof 1) over n = {'/'.join(map(str, seeds))} seeds per setting"
        + (
            "; runs that diverged enter no mean (their numbers are of parameters from before "
            "their non-finite step)"
            if diverged
            else ""
        )
        + ". A cell says its n when fewer seeds gave a finite value.",
        "",
        *lines,
        "",
        *[f"![{os.path.basename(p)}](figures/{os.path.basename(p)})" for p in figures],
    ]
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return {"params": params, "rows": table, "figures": figures, "metrics": shown}


def _cell(row: dict, m: str) -> str:
    """A metric's report.md cell: mean ± sd, the n behind it when fewer seeds than the row's
    gave a finite value, and how many values were not finite."""
    n, bad = row[f"{m} n"], row[f"{m} not finite"]
    text = "–"
    if n:
        text = f"{row[f'{m} mean']:.4g}" + (f" ± {row[f'{m} std']:.2g}" if n > 1 else "")
    notes = [f"n = {n}"] if n and n < row["seeds"] else []
    notes += [f"{bad} not finite"] if bad else []
    return text + (f" ({', '.join(notes)})" if notes else "")


def _meaningful(
    metrics: list[str], table: list[dict], rows: list[dict], keep_zero: bool = False
) -> list[str]:
    """The metrics report.md shows: no wall-clock time (a group's runs share one), no L1
    activity when no run had an L1 term, and (unless asked for) none that is 0 everywhere."""
    l1_used = any(r["l1_weight"] for r in rows)
    return [
        m
        for m in metrics
        if m not in TIMING
        and (l1_used or m not in L1_METRICS)
        and (keep_zero or any(row[f"{m} mean"] != 0 for row in table))
    ]


def _write_runs(workdir: str, rows: list[dict]) -> None:
    """DIR/runs.csv: one row per run, its overrides then its numbers (tidy data)."""
    keys = sorted({k for r in rows for k in r["overrides"] if not k.startswith("_")})
    values = sorted({k for r in rows for k in r["values"]})
    with open(os.path.join(workdir, "runs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "name", "status", *keys, *values])
        for r in sorted(rows, key=lambda r: r["index"]):
            w.writerow(
                [
                    r["index"],
                    r["name"],
                    r["status"],
                    *[json.dumps(r["overrides"][k]) if k in r["overrides"] else "" for k in keys],
                    *[r["values"].get(k, "") for k in values],
                ]
            )


def plot(workdir: str, params: list[str], table: list[dict], metrics: list[str]) -> list[str]:
    """One figure per swept parameter: a panel per metric (mean ± sample sd over seeds), a series
    per setting of the other parameters; named variants as unjoined points on a categorical axis,
    numbers joined by lines on a log axis when they span 10x or more."""
    out_dir = os.path.join(workdir, "figures")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    varying = [m for m in metrics if len({round(row[f"{m} mean"], 12) for row in table}) > 1]
    shown = varying[:9] or metrics[:1]
    for p in params:
        xs = [row[p] for row in table]
        if len({json.dumps(x) for x in xs}) < 2:
            continue
        path = os.path.join(out_dir, f"metrics_vs_{p.replace('.', '_')}.png")
        _figure(path, p, [q for q in params if q != p], table, shown)
        written.append(path)
    return written


def _figure(path: str, p: str, others: list[str], table: list[dict], metrics: list[str]):
    xs = [row[p] for row in table]
    numeric = all(_is_number(x) for x in xs)
    categories = list(dict.fromkeys(json.dumps(x) for x in xs))  # named variants, sweep order
    series: dict[tuple, list] = {}
    for row in table:
        series.setdefault(tuple(row[q] for q in others), []).append(row)
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows + 0.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    width = 0.5 / max(len(series), 1)  # categorical: series side by side within a category
    for ax, m in zip(axes, metrics, strict=False):
        for s, (key, rs) in enumerate(series.items()):
            label = ", ".join(f"{q.split('.')[-1]}={v}" for q, v in zip(others, key, strict=True))
            if numeric:
                rs = sorted(rs, key=lambda r: r[p])
                x = [r[p] for r in rs]
                style = {"marker": "o", "linestyle": "-"}
            else:
                x = [
                    categories.index(json.dumps(r[p])) + (s - (len(series) - 1) / 2) * width
                    for r in rs
                ]
                style = {"marker": "o", "linestyle": "none"}
            ax.errorbar(
                x,
                [r[f"{m} mean"] for r in rs],
                yerr=[np.nan_to_num(r[f"{m} std"]) for r in rs],
                ms=4,
                capsize=3,
                label=label or None,
                **style,
            )
        if not numeric:
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels([json.loads(c) for c in categories], rotation=25, ha="right")
            ax.set_xlim(-0.6, len(categories) - 0.4)
        elif all(x > 0 for x in xs) and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
            _value_ticks(ax, xs)
        elif (
            min(xs) == 0
            and max(xs) > 0
            and len(set(xs)) > 2
            and (max(xs) / sorted(set(xs))[1] >= 10)
        ):
            ax.set_xscale("symlog", linthresh=sorted(set(xs))[1])
            _value_ticks(ax, xs)
        ax.set_title(m, fontsize=FONT + 1)
        ax.set_ylabel(UNITS.get(m, m), fontsize=FONT)
        ax.set_xlabel(p if numeric else p.split(".")[-1], fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.grid(alpha=0.3)
    if len(series) > 1:
        axes[0].legend(fontsize=FONT)
    n = sorted({row[f"{m} n"] for row in table for m in metrics} - {0})
    fig.suptitle(
        f"mean ± sample standard deviation over n = {'/'.join(map(str, n))} seeds", fontsize=FONT
    )
    fig.savefig(path, dpi=DPI)


def _value_ticks(ax, xs: list) -> None:
    """On a log axis, ticks at the swept values themselves, labelled as written (%g); a value
    closer than 1/12 of the axis's decades to the last labelled one keeps its tick unlabelled
    (1.2, 1.4, 1.6 beside 0.01 ran together as one number)."""
    values = sorted(set(xs))
    if len(values) <= 10:
        positive = [v for v in values if v > 0]
        gap = math.log10(positive[-1] / positive[0]) / 12 if len(positive) > 1 else 0.0
        labels, last = [], -math.inf
        for v in values:
            at = math.log10(v) if v > 0 else -math.inf  # 0 (symlog's linear part): labelled
            labels.append(f"{v:g}" if v <= 0 or at - last >= gap else "")
            last = at if labels[-1] else last
        ax.xaxis.set_major_locator(FixedLocator(values))
        ax.xaxis.set_major_formatter(FixedFormatter(labels))
        ax.xaxis.set_minor_locator(NullLocator())
