"""The sweep report's figures: each metric against each swept parameter (`report.py` owns the
numbers; this module draws them, 150 dpi, y axes labelled with what each number is)."""

import json
import math
import os
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator, NullLocator

from ae_jax.evaluation.figure_text import literal
from ae_jax.files import write_atomic
from ae_jax.sweeps import report_text
from ae_jax.sweeps.report_text import value_text

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
    "vae/bce_bound": "ELBO form, Bernoulli CE (nats per example, no log-lik.)",
    "vae/bce_iwae_bound": "IWAE form, Bernoulli CE (nats per example, no log-lik.)",
    "vae/mse_bound": "ELBO form, squared error (per example, no log-lik.)",
    "vae/active_units": "active units",
    "vae/total_correlation": "total correlation (nats)",
    "vae/mutual_info": "index-code MI (nats)",
    "vae/dim_kl": "dimension-wise KL (nats)",
    "eval/l1": "sum |code| per example",
    "code/l1_per_row": "sum |code| per example",
    "code/near_zero_fraction": "fraction of codes",
    "recon/numeric_mse": "MSE of numeric columns (scaled)",
    "recon/categorical_accuracy": "mean accuracy, category and true/false columns",
    "ae_over_pca": "AE MSE / PCA MSE",
    "n_params": "parameters",
    "wall_s": "seconds",
}
DPI = 150
FONT = 9  # points: the smallest text on a figure
CHAR = 0.62  # a character's width, in FONTs, at most nearly (DejaVu Sans): a legend's width
SHORT = 24  # characters of a categorical tick label: a longer value is cut in the middle


# What a figure says of bars stopped at a metric's `most` (else: a fraction's, at 1).
MOST_SAID = {"vae/active_units": "at model.latent_dim for active units"}
# -(a cross-entropy or a squared error + a KL): never above 0 (an sd bar drew one to +1.1e7)
AT_MOST_0 = ("vae/bce_bound", "vae/bce_iwae_bound", "vae/mse_bound")
MOST_SAID.update(dict.fromkeys(AT_MOST_0, "at 0 for a bound of no likelihood"))


def most(m: str, config: dict) -> float:
    """The largest value metric `m` can take in a run of `config` (its error bars stop there):
    1 for an accuracy or a fraction, the code's size for active units (a mean of 3.3 + sd 1.2
    of 4 units drew a bar past 4), 0 for a VAE's bound of no likelihood, else infinity."""
    if m.endswith(("accuracy", "_fraction")):
        return 1.0
    if m in AT_MOST_0:
        return 0.0
    if m == "vae/active_units" and isinstance(config.get("model.latent_dim"), int):
        return float(config["model.latent_dim"])
    return math.inf


def figure_names(params: list[str], table: list[dict], metrics: list[str]) -> list[str]:
    """The figures `plot` draws, relative to the report's folder: one per parameter that takes
    two or more values (seeds of one setting: none), none without metrics."""
    return [
        _name(p)
        for p in (params if metrics else [])  # none: every one constant at 0 or absent
        if len({json.dumps(row[p]) for row in table}) > 1
    ]


def _name(p: str) -> str:
    return f"figures/metrics_vs_{p.replace('.', '_')}.png"


def plot(
    workdir: str,
    params: list[str],
    table: list[dict],
    metrics: list[str],
    recon_unit: str = "",
    iw_k: str = "",
    absent: list[str] | tuple = (),
    together: list[list[str]] | tuple = (),
) -> list[str]:
    """One figure per swept parameter (`figure_names`): a panel per metric (mean ± sample sd
    over seeds), a series per setting of the other parameters; named variants as unjoined
    points on a categorical axis, numbers joined by lines on a log axis when they span 10x or
    more. `iw_k` ('k = 8') names the importance-weighted bounds' draws; `absent`, the listed
    settings without a finished run (no point: said); `together`, the groups of parameters
    that vary together (`report_text.zipped`: drawn as one series, said). Returns the paths
    written."""
    written: list[str] = []
    drawn, same = _panels(metrics, table)
    units = {**UNITS, "eval/recon": f"{recon_unit} per example"} if recon_unit else dict(UNITS)
    if iw_k:  # eval.json's vae/iwae_k, where the runs share it (the bound moves with k)
        units["vae/iwae"] = f"IWAE bound, {iw_k} (nats per example)"
        units["vae/bce_iwae_bound"] = f"IWAE form, {iw_k}, Bernoulli CE (nats, no log-lik.)"
    names = figure_names(params, table, metrics)
    for p in params:
        if (name := _name(p)) not in names:
            continue
        os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
        path = os.path.join(workdir, *name.split("/"))
        group = next((g for g in together if p in g), [p])
        partners = [q for q in group if q != p]  # drawn with p, said, not as series
        others = [q for q in params if q not in group]
        with_ = [report_text.zipped_said(p, partners, table)] if partners else []
        _figure(path, p, others, table, drawn, same, units, absent, with_)
        written.append(path)
    return written


def _panels(metrics: list[str], table: list[dict]) -> tuple[list[str], dict[str, list[str]]]:
    """The metrics drawn (their settings' means differ, or only one setting has one) and those
    named instead: the same in every setting ("all"), the same in every setting that has a
    value, at least two ("valued"), or without a value in any setting ("none"). A setting
    whose runs all diverged has a NaN mean: no value, not another value."""
    same: dict[str, list[str]] = {"all": [], "valued": [], "none": []}
    drawn = []
    for m in metrics:
        values = [v for row in table if math.isfinite(v := row[f"{m} mean"])]
        if len({round(v, 12) for v in values}) > 1 or len(values) == 1:
            drawn.append(m)
        else:
            same["none" if not values else "all" if len(values) == len(table) else "valued"] += [m]
    if not drawn and metrics:  # a figure has one panel at least
        drawn = metrics[:1]
        same = {k: [m for m in ms if m != drawn[0]] for k, ms in same.items()}
    return drawn, same


def _figure(
    path: str,
    p: str,
    others: list[str],
    table: list[dict],
    metrics: list[str],
    same: dict[str, list[str]],
    units: dict[str, str],
    absent=(),
    notes=(),
):
    named = [m for ms in same.values() for m in ms]
    # A setting without any value (its runs all diverged) is no point: the axis spans the rest.
    empty = [r for r in table if not any(math.isfinite(r[f"{m} mean"]) for m in [*metrics, *named])]
    xs = [row[p] for row in table if row not in empty] or [row[p] for row in table]
    numeric = all(is_number(row[p]) for row in table)
    categories = list(dict.fromkeys(json.dumps(row[p]) for row in table))  # sweep order
    series: dict[tuple, list] = {}
    for row in table:
        series.setdefault(tuple(row[q] for q in others), []).append(row)
    labels = [series_label(others, k) for k in series]
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    # The legend beside the panels (inside one it hid error bars), the figure widened to hold
    # it and heightened to its length: a long one squeezed the panels to nothing.
    legend = len(series) > 1
    lines = [line for label in labels for line in label.split("\n")] if legend else []
    wide = (max(map(len, lines), default=0) * FONT * CHAR + 40) / 72 if legend else 0.0
    tall = (len(lines) * FONT * 1.3 + len(labels) * FONT * 0.5 + 20) / 72
    fig = Figure(figsize=(3.6 * ncols + wide, 2.9 * nrows), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    width = 0.5 / max(len(series), 1)  # categorical: series side by side within a category
    cut, top = False, set()  # a bar stopped at 0; the ceilings bars stopped at
    for ax, m in zip(axes, metrics, strict=False):
        # A metric no run took below 0 (an MSE, a count of units): its bars stop at 0; an
        # accuracy or a fraction of codes at 1 (0.92 +- 0.078 drew one up to 1.003).
        floor = all(not r[f"{m} n"] or r.get(f"{m} min", math.nan) >= 0 for r in table)
        log_y = _log_means([r[f"{m} mean"] for r in table])
        for s, (label, rs) in enumerate(zip(labels, series.values(), strict=True)):
            # A marker of its own; on a value axis, where series share their x, smaller and
            # hollow for each later one, its line dashed, so one equal to another stays
            # visible over it (a filled square hid an equal series' circle, and its solid line
            # the line: a probe; to 2.5 pt, the 4th and later were dots hard to see; side by
            # side, categories need no shrinking).
            marker = "osD^v<>p"[s % 8]
            size = max(3.5, 6.0 - 0.6 * s) if numeric else 5.0
            if numeric:
                rs = sorted(rs, key=lambda r: r[p])
                x = [r[p] for r in rs]
                style: dict = {"marker": marker, "linestyle": ("-", "--", ":", "-.")[s % 4]}
                style |= {"mfc": "none", "mew": 1.2} if s else {}
            else:
                x = [
                    categories.index(json.dumps(r[p])) + (s - (len(series) - 1) / 2) * width
                    for r in rs
                ]
                style = {"marker": marker, "linestyle": "none"}
            sd = np.array([np.nan_to_num(r[f"{m} std"]) for r in rs])
            mean = np.array([r[f"{m} mean"] for r in rs])
            below = np.minimum(sd, np.maximum(np.nan_to_num(mean), 0)) if floor else sd
            ceiling = np.array([r.get(f"{m} most", math.inf) for r in rs])  # (`most`)
            above = np.minimum(sd, np.maximum(ceiling - np.nan_to_num(mean), 0))
            # On a log axis a bar reaching 0 went down to the axis's floor (a probe read 15
            # decades of spread into one): no lower bar, said, and not "cut at 0" (a review).
            gone = below >= mean if log_y else np.zeros(len(mean), bool)
            cut = cut or bool(((below < sd) & ~gone).any())
            if gone.any():
                below = np.where(gone, 0.0, below)
                top.add("to no lower bar where it reaches 0 on a log axis")
            if (above < sd).any():
                top.add(MOST_SAID.get(m, "at 1 for a fraction"))
            ax.errorbar(
                x,
                mean,
                yerr=[below, above],
                ms=size,
                capsize=3,
                label=literal(label) or None,
                **style,
            )
            # A mean over fewer runs than its setting has: ringed (and said above).
            if part := [j for j, r in enumerate(rs) if report_text.fewer_than_setting(r, m)]:
                ax.scatter(
                    [x[j] for j in part], mean[part], s=(2.2 * size + 4) ** 2,
                    facecolors="none", edgecolors="black", linewidths=1.0, zorder=3,
                )  # fmt: skip
        if not numeric:
            ax.set_xticks(range(len(categories)))
            # a long value (a file's path) squeezed the panel to nothing: cut, its end kept
            names = [literal(_short(value_text(json.loads(c)))) for c in categories]
            ax.set_xticklabels(names, rotation=25, ha="right")
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
        else:  # (matplotlib's own ticks, 0.00002 apart, ran together: 0.000000.00002...)
            _value_ticks(ax, xs, log=False)
        if numeric and (ys := [r[f"{m} mean"] for r in table if math.isfinite(r[f"{m} mean"])]):
            ax.update_datalim([(x, ys[0]) for x in xs])  # every setting's x, a point or not
            ax.autoscale_view()
        # After the x scale: reading the limits fixes them, in linear space before (a swept 0
        # on "log, linear near 0" left the left 40% of the panel empty).
        _value_axis(ax, [r[f"{m} mean"] for r in table])
        scale = {"log": " (log axis)", "symlog": " (log axis, linear near 0)"}
        ax.set_title(literal(m), fontsize=FONT + 1)
        said = " (log axis)" if ax.get_yscale() == "log" else ""
        ax.set_ylabel(literal(textwrap.fill(units.get(m, m) + said, 30)), fontsize=FONT)
        ax.set_xlabel(p + scale.get(ax.get_xscale(), ""), fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.grid(alpha=0.3)
    if legend:
        handles, shown = axes[0].get_legend_handles_labels()
        fig.legend(handles, shown, loc="outside right upper", fontsize=FONT)
    # Over the panels, wrapped to their width: the legend beside them reaches the top.
    title = report_text.figure_title(p, others, table, metrics, same, empty, cut, top, absent)
    title = "\n".join([title, *notes])
    title = _fit(title, 3.6 * ncols * DPI - 10, canvas.get_renderer())
    lines_in = (title.count("\n") + 1) * FONT * 1.3 / 72  # the title's height, in inches
    fig.set_size_inches(3.6 * ncols + wide, max(2.9 * nrows + 0.2 + lines_in, tall))
    fig.suptitle(literal(title), fontsize=FONT, x=1.8 * ncols / (3.6 * ncols + wide))
    _no_touching_labels(fig, axes[: len(metrics)] if numeric else [])
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=DPI), binary=True)


def _no_touching_labels(fig, value_axes) -> None:
    """Labels the swept values of a value axis left to right, each that clears the one before
    it, measured on the laid-out figure (`_value_ticks` spaced them by a share of the axis: 0.12
    and 0.16, 0.125 decades apart on an axis of 1.26, ran together as '0.120.16' in a narrow
    panel, and 0.18, the last, had none)."""
    axes = [a for a in value_axes if isinstance(a.xaxis.get_major_formatter(), FixedFormatter)]
    for ax in axes:
        ax.xaxis.set_major_formatter(FixedFormatter([f"{v:g}" for v in ax.get_xticks()]))
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    size = FONT * DPI / 72  # pixels
    for ax in (a for a in axes if a.get_visible()):
        labels, end = [], -math.inf
        for text in ax.get_xticklabels():
            box, slant = text.get_window_extent(renderer), math.radians(text.get_rotation())
            # Slanted labels (right-aligned at their ticks) are parallel strips, their ticks'
            # distance times sin(slant) apart across them: their upright boxes overlap long
            # before they do (the sparsity ablation's 1e-4 went unlabelled: a probe).
            clear = (
                (box.x1 - end) * math.sin(slant) >= 1.25 * size
                if slant
                else box.x0 >= end + size / 3
            )
            labels.append(text.get_text() if clear else "")
            end = box.x1 if labels[-1] else end  # (a slanted one's: its tick)
        ax.xaxis.set_major_formatter(FixedFormatter(labels))


def _fit(text: str, width_px: float, renderer) -> str:
    """Each line of `text` wrapped (at spaces) so that none is wider than width_px as drawn at
    FONT points: a long title was cut off at both edges of its figure."""
    font = FontProperties(size=FONT)
    fits = lambda t: renderer.get_text_width_height_descent(t, font, ismath=False)[0] <= width_px
    out = []
    for line in text.split("\n"):
        chars = len(line)
        while chars > 10 and not all(map(fits, textwrap.wrap(line, chars))):
            chars -= 2
        out += textwrap.wrap(line, chars)
    return "\n".join(out)


def _short(value: str) -> str:
    """A value in at most SHORT characters, its middle cut (a path keeps its file's name)."""
    return (
        value if len(value) <= SHORT else f"{value[: SHORT // 3]}…{value[SHORT // 3 + 1 - SHORT :]}"
    )


def _value_ticks(ax, xs: list, log: bool = True) -> None:
    """Ticks at the swept values themselves, labelled as written (%g); a value closer than
    1/12 of the axis (its decades, on a log axis) to the last labelled one keeps its tick
    unlabelled (1.2, 1.4, 1.6 beside 0.01 ran together as one number). More than 10 values:
    a linear axis gets 4 of matplotlib's ticks, a log axis its own."""
    values = sorted(set(xs))
    if not log and len(values) > 10:
        ax.xaxis.set_major_locator(MaxNLocator(4))
    if len(values) <= 10:
        positive = [v for v in values if v > 0] if log else values
        position = math.log10 if log else float
        span = position(positive[-1]) - position(positive[0]) if len(positive) > 1 else 0.0
        gap = span / 12
        labels, last = [], -math.inf
        for v in values:
            # 0 (symlog's linear part): labelled
            at = position(v) if v > 0 or not log else -math.inf
            labels.append(f"{v:g}" if (log and v <= 0) or at - last >= gap else "")
            last = at if labels[-1] else last
        ax.xaxis.set_major_locator(FixedLocator(values))
        ax.xaxis.set_major_formatter(FixedFormatter(labels))
        ax.xaxis.set_minor_locator(NullLocator())
        if sum(map(len, labels)) > 24:  # "1e-05" beside "0.0001" ran together: slanted
            ax.tick_params(axis="x", labelrotation=30)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")


def _value_axis(ax, means: list[float]) -> None:
    """No offset on the value axis, one no narrower than a millionth of its values (means
    equal to float rounding were drawn as a full-height trend on an axis labelled '1e-9 +
    9.852795e-2'), and a log one for positive means three decades apart or more."""
    ax.ticklabel_format(axis="y", useOffset=False)
    finite = [v for v in means if math.isfinite(v)]
    if not finite:
        return
    if _log_means(finite):  # (1.1e16 flattened 2 to 3.7)
        return ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    middle, size = (max(finite) + min(finite)) / 2, max(map(abs, finite))
    if hi - lo < 1e-6 * size:  # (all 0: matplotlib's own +-0.055)
        ax.set_ylim(middle - 0.05 * size, middle + 0.05 * size)


def _log_means(means: list[float]) -> bool:
    """Whether a panel of these means has a log value axis: positive, 3 decades apart or more."""
    finite = [v for v in means if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) >= 1e3 * min(finite)


def is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def series_label(fields, values) -> str:
    """A legend's label for one series: each other swept field with its value, the field named
    in full (`data.name=digits`; its last part alone read as model.name), wrapped at 40
    characters."""
    return textwrap.fill(
        ", ".join(f"{q}={value_text(v)}" for q, v in zip(fields, values, strict=True)), 40
    )
