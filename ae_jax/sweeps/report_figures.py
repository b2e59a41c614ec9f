"""The sweep report's figures: each metric against each swept parameter (`report.py` owns the
numbers; this module draws them, 150 dpi, y axes labelled with what each number is)."""

import json
import math
import os
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from ae_jax.files import write_atomic

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


def plot(
    workdir: str, params: list[str], table: list[dict], metrics: list[str], recon_unit: str = ""
) -> list[str]:
    """One figure per swept parameter: a panel per metric (mean ± sample sd over seeds), a series
    per setting of the other parameters; named variants as unjoined points on a categorical axis,
    numbers joined by lines on a log axis when they span 10x or more."""
    out_dir = os.path.join(workdir, "figures")
    written: list[str] = []
    # A setting whose runs all diverged has a NaN mean: no value, not another value.
    finite = lambda m: {round(v, 12) for row in table if math.isfinite(v := row[f"{m} mean"])}
    varying = [m for m in metrics if len(finite(m)) > 1]
    shown = varying or metrics[:1]
    same = [m for m in metrics if m not in shown]  # named on the figure, not drawn
    for p in params if metrics else []:  # none: every one constant at 0 or absent
        xs = [row[p] for row in table]
        if len({json.dumps(x) for x in xs}) < 2:
            continue  # seeds of one setting: no figure (and no empty figures/ folder)
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"metrics_vs_{p.replace('.', '_')}.png")
        units = {**UNITS, "eval/recon": f"{recon_unit} per example"} if recon_unit else UNITS
        _figure(path, p, [q for q in params if q != p], table, shown, same, units)
        written.append(path)
    for old in os.listdir(out_dir) if os.path.isdir(out_dir) else []:  # an earlier report's ...
        path = os.path.join(out_dir, old)
        if old.startswith("metrics_vs_") and old.endswith(".png") and path not in written:
            os.remove(path)
    return written


def _figure(
    path: str,
    p: str,
    others: list[str],
    table: list[dict],
    metrics: list[str],
    same: list[str],
    units: dict[str, str],
):
    xs = [row[p] for row in table]
    numeric = all(is_number(x) for x in xs)
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
    cut = False  # a bar stopped at 0
    for ax, m in zip(axes, metrics, strict=False):
        # A metric no run took below 0 (an MSE, a count of units): its bars stop at 0.
        floor = all(not r[f"{m} n"] or r.get(f"{m} min", math.nan) >= 0 for r in table)
        for s, (key, rs) in enumerate(series.items()):
            # A marker and size of its own: a series equal to another stays visible over it.
            marker, size = "osD^v<>p"[s % 8], max(2.5, 6.0 - 1.2 * s)
            label = ", ".join(f"{q.split('.')[-1]}={v}" for q, v in zip(others, key, strict=True))
            if numeric:
                rs = sorted(rs, key=lambda r: r[p])
                x = [r[p] for r in rs]
                style = {"marker": marker, "linestyle": "-"}
            else:
                x = [
                    categories.index(json.dumps(r[p])) + (s - (len(series) - 1) / 2) * width
                    for r in rs
                ]
                style = {"marker": marker, "linestyle": "none"}
            sd = np.array([np.nan_to_num(r[f"{m} std"]) for r in rs])
            mean = np.array([r[f"{m} mean"] for r in rs])
            below = np.minimum(sd, np.maximum(np.nan_to_num(mean), 0)) if floor else sd
            cut = cut or bool((below < sd).any())
            ax.errorbar(x, mean, yerr=[below, sd], ms=size, capsize=3, label=label or None, **style)
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
        scale = {"log": " (log axis)", "symlog": " (log axis, linear near 0)"}
        ax.set_title(m, fontsize=FONT + 1)
        ax.set_ylabel(textwrap.fill(units.get(m, m), 30), fontsize=FONT)
        ax.set_xlabel(p + scale.get(ax.get_xscale(), ""), fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.grid(alpha=0.3)
    if len(series) > 1:  # beside the panels: inside one it hid error bars
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize=FONT)
    n = sorted({row[f"{m} n"] for row in table for m in metrics} - {0})
    title = f"mean ± sample standard deviation over n = {'/'.join(map(str, n))} seeds"
    title += " (cut at 0 for a metric no run took below it)" if cut else ""
    if same:
        title += f"\nnot drawn, the same for every setting: {', '.join(same)}"
    fig.suptitle(title, fontsize=FONT)
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=DPI), binary=True)


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
        if sum(map(len, labels)) > 24:  # "1e-05" beside "0.0001" ran together: slanted
            ax.tick_params(axis="x", labelrotation=30)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")


def is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
