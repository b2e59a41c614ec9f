"""Aggregate a sweep: one row per setting, mean ± std over seeds, plots per swept parameter.

Reads every finished run under DIR/runs/ (summary.json, and eval.json when present),
writes DIR/results.csv (one row per setting), DIR/report.md (the same as a markdown
table, with wall time) and DIR/figures/metrics_vs_<param>.png. results.csv holds only
numbers the config and seed determine, so a resumed sweep's equals an uninterrupted
one's; wall-clock times go to DIR/timing.csv.
"""

import csv
import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ae_jax.errors import UserError  # noqa: E402

SEED_KEY = "train.seed"
DEFAULT_METRICS = ("eval/loss", "eval/mse", "eval/recon", "eval/l1", "eval/kl",
                   "code/near_zero_fraction", "code/l1_per_row", "pca/mse", "ae_over_pca",
                   "vae/active_units", "vae/iwae", "n_params", "wall_s")
TIMING = ("wall_s", "compile_s", "epoch_s", "rows_per_s")


def collect(workdir: str) -> list[dict]:
    """One dict per finished run: its overrides, status and numeric results."""
    path = os.path.join(workdir, "sweep.json")
    if not os.path.exists(path):
        raise UserError(f"{workdir!r} has no sweep.json, so it is not a sweep directory; run "
                        "python -m experiments.sweep --config=FILE --workdir=DIR first.")
    with open(path) as f:
        entries = json.load(f)["runs"]
    rows = []
    for e in entries:
        run_dir = os.path.join(workdir, e["workdir"])
        summary_path = os.path.join(run_dir, "summary.json")
        if e["status"] not in ("done", "diverged") or not os.path.exists(summary_path):
            continue
        with open(summary_path) as f:
            values = {k: v for k, v in json.load(f).items() if _is_number(v)}
        eval_path = os.path.join(run_dir, "eval.json")
        if os.path.exists(eval_path):
            with open(eval_path) as f:
                values.update({k: v for k, v in json.load(f).items() if _is_number(v)})
        rows.append({"index": e["index"], "overrides": e["overrides"], "status": e["status"],
                     "values": values})
    return rows


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _shown(overrides: dict) -> dict:
    """The overrides a report shows: a `named` block appears as its name, under "model"."""
    hidden = set(overrides.get("_named_keys", ())) | {"_named_keys", SEED_KEY}
    shown = {k: v for k, v in overrides.items() if k not in hidden}
    if "_name" in shown:
        shown["model"] = shown.pop("_name")
    return shown


def _setting(overrides: dict) -> tuple:
    return tuple(sorted((k, json.dumps(v)) for k, v in _shown(overrides).items()))


def aggregate(rows: list[dict], metrics: list[str]) -> tuple[list[str], list[dict]]:
    """Groups runs by setting (overrides minus the seed): mean and std of each metric."""
    params = sorted({k for r in rows for k in _shown(r["overrides"])})
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(_setting(r["overrides"]), []).append(r)
    table = []
    for runs in groups.values():
        row = {p: _shown(runs[0]["overrides"]).get(p, "") for p in params}
        row["seeds"] = len(runs)
        row["diverged"] = sum(r["status"] == "diverged" for r in runs)
        for m in metrics:
            vals = [r["values"][m] for r in runs if m in r["values"]
                    and math.isfinite(r["values"][m])]
            row[f"{m} mean"] = float(np.mean(vals)) if vals else float("nan")
            row[f"{m} std"] = float(np.std(vals)) if len(vals) > 1 else 0.0
        table.append(row)
    return params, table


def write_report(workdir: str, metrics: list[str] | None = None) -> dict:
    """Writes results.csv, report.md and figures; returns {"rows": ..., "params": ...}."""
    rows = collect(workdir)
    if not rows:
        raise UserError(f"{workdir!r}: no finished run yet (see sweep.json); nothing to report.")
    present = {k for r in rows for k in r["values"]}
    metrics = [m for m in (metrics or DEFAULT_METRICS) if m in present]
    params, table = aggregate(rows, metrics)
    for name, keep in (("results.csv", lambda m: m not in TIMING),
                       ("timing.csv", lambda m: m in TIMING)):
        header = [*params, "seeds", "diverged"] + [f"{m} {s}" for m in metrics if keep(m)
                                                   for s in ("mean", "std")]
        with open(os.path.join(workdir, name), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
            w.writeheader()
            w.writerows(table)
    # All-zero columns (e.g. eval/kl of autoencoders) stay in the CSV, not in the table.
    metrics = [m for m in metrics if any(row[f"{m} mean"] != 0 for row in table)]
    lines = ["| " + " | ".join([*params, "seeds", *metrics]) + " |",
             "|" + "---|" * (len(params) + 1 + len(metrics))]
    for row in table:
        cells = [str(row[p]) for p in params] + [str(row["seeds"])]
        cells += [f"{row[f'{m} mean']:.4g} ± {row[f'{m} std']:.2g}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    figures = plot(workdir, params, table, metrics)
    md = [f"# Sweep report: {os.path.abspath(workdir)}", "",
          f"{len(rows)} finished runs, {len(table)} settings; mean ± std over seeds.", "",
          *lines, "", *[f"![{os.path.basename(p)}](figures/{os.path.basename(p)})"
                        for p in figures]]
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return {"params": params, "rows": table, "figures": figures}


def plot(workdir: str, params: list[str], table: list[dict], metrics: list[str]) -> list[str]:
    """One figure per swept numeric parameter: each metric against it, a line per other setting."""
    out_dir = os.path.join(workdir, "figures")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    varying = [m for m in metrics if m not in ("wall_s", "n_params")
               and len({round(row[f"{m} mean"], 12) for row in table}) > 1]
    shown = varying[:6] or metrics[:1]
    for p in params:
        xs = [row[p] for row in table]
        if len({json.dumps(x) for x in xs}) < 2:
            continue
        numeric = all(_is_number(x) for x in xs)
        # Named variants (a model, a data set) go on a categorical axis, in sweep order.
        categories = list(dict.fromkeys(json.dumps(x) for x in xs))
        def pos(r, p=p, numeric=numeric, categories=categories):
            return r[p] if numeric else categories.index(json.dumps(r[p]))

        others = [q for q in params if q != p]
        fig, axes = plt.subplots(1, len(shown), figsize=(3.3 * len(shown), 2.9), squeeze=False)
        for ax, m in zip(axes[0], shown, strict=True):
            lines: dict[tuple, list] = {}
            for row in table:
                lines.setdefault(tuple(row[q] for q in others), []).append(row)
            for key, rs in lines.items():
                rs = sorted(rs, key=pos)
                label = ",".join(f"{q.split('.')[-1]}={v}" for q, v in zip(others, key,
                                                                          strict=True))
                ax.errorbar([pos(r) for r in rs], [r[f"{m} mean"] for r in rs],
                            yerr=[r[f"{m} std"] for r in rs], marker="o", ms=3, capsize=2,
                            label=label or None)
            if not numeric:
                ax.set_xticks(range(len(categories)))
                ax.set_xticklabels([json.loads(c) for c in categories], fontsize=7, rotation=30)
            elif all(x > 0 for x in xs) and max(xs) / min(xs) >= 100:
                ax.set_xscale("log")
            elif min(xs) == 0 and max(xs) > 0 and sorted(set(xs))[1] / max(xs) < 0.01:
                ax.set_xscale("symlog", linthresh=sorted(set(xs))[1])
            ax.set_title(m, fontsize=9)
            ax.set_xlabel(p, fontsize=8)
        if len(lines) > 1:
            axes[0][0].legend(fontsize=6)
        fig.subplots_adjust(left=0.07, right=0.99, bottom=0.18, top=0.88, wspace=0.35)
        path = os.path.join(out_dir, f"metrics_vs_{p.replace('.', '_')}.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written
