"""Learning curves: one panel per loss term, train and eval against epoch, side by side.

Each panel is a figure of its own (`canvas.Template`), written side by side with the others
(`canvas.save_row`), keeping the static layers of its own limits, which a sweep's runs share far
more often than all panels' together (the benchmark's 64 runs: 7, 5, 17, 5 against 20). The
first panel's legend is static too, under the curves, at the place matplotlib's loc="best" picks
for each run's curves (`legend_place`): drawn over them for every run, it cost the benchmark
sweep's 64 learning curves 0.24 of 0.94 CPU-s. Where every place is crossed by the curves, a
second legend, the same, is drawn over them instead (curves over the legend's names hid them).
"""

import textwrap

import numpy as np

from ae_jax.evaluation import canvas, figure_text

_FONT = canvas.FONT


def draw(template, path: str, history: list[dict], units: dict[str, str]) -> None:
    """Writes the learning curves of `history` (metrics.jsonl's rows) to `path`; `units` labels
    each term's y axis (what it is and its unit). A term 0 throughout (a plain AE's KL) gets no
    panel. `template(key, build)`: a renderer's layouts (`Renderer._template`)."""
    every = [k[len("eval/") :] for k in history[0] if k.startswith("eval/")]
    terms = tuple(t for t in every if not zero_throughout(history, t)) or tuple(every)
    epochs = np.array([r["epoch"] for r in history], float)
    x_limits = epoch_limits(epochs)
    dotted = [False, False]  # train, eval: a dot anywhere (the legend shows one then)
    panels: list = []
    first: tuple = ()  # the first panel's lines and legends (under and over the curves)
    for p, term in enumerate(terms):
        unit = units.get(term, "per example")
        y_train = np.array([r.get(f"train/{term}", np.nan) for r in history], float)
        y_eval = np.array([r.get(f"eval/{term}", np.nan) for r in history], float)
        lo, hi, cut = span(epochs, y_train, y_eval) or (np.nan, np.nan, False)
        name = title(term, cut, history)
        layout, ax, lines, room, legends = template(
            ("curve", name, unit, p == 0), lambda n=name, u=unit, p=p: _panel(n, u, p == 0)
        )
        for i, (line, y) in enumerate(zip(lines, (y_train, y_eval), strict=True)):
            line.set_data(epochs, y)
            # A point with no finite neighbour (a 1-epoch run) draws no line: it gets a dot.
            dots = isolated(y)
            line.set(marker="o" if dots.any() else "None", markersize=4, markevery=list(dots))
            dotted[i] |= bool(dots.any())
        ax.set_xlim(*x_limits)
        low, high = canvas.limits(lo, hi)
        # Never negative, up to float round-off (a collapsed VAE's KL of -3.5e-8).
        nonnegative = lo >= -1e-3 * (hi - lo)
        low, high, ticks = canvas.value_ticks(ax.yaxis, low, high, nonnegative, not np.isnan(lo))
        ax.set_ylim(low, high)
        left = room.fit(ticks)  # (wide numbers: the axes start further right)
        panels.append((layout, ((low, high), ticks), (x_limits, left)))
        first = first or (lines, legends)
    # The legend: under the curves, or over them where no place is free of them; a dot in its
    # handles where any panel has one (all part of the first panel's static layer's key).
    place, covered = legend_place(first[1][0], first[0], _FONT)
    for legend, shown in zip(first[1], (not covered, bool(covered)), strict=True):
        legend.set(loc=place, visible=shown)
        for handle, dot in zip(legend.legend_handles, dotted, strict=True):
            handle.set(marker="o" if dot else "None", markersize=4)
    panels[0] = (*panels[0][:2], (*panels[0][2], place, not covered, tuple(dotted)))
    canvas.save_row(panels, path)


def _panel(name: str, unit: str, legend: bool):
    """A panel's template: static, the title (`title`: what the axis leaves out), the axes and
    the legend under the curves; dynamic, the curves, the legend over them, the spines."""
    from matplotlib.legend import Legend

    fig, axes = canvas.figure((3.2, 3.0))
    ax = axes[0][0]
    lines = (ax.plot([], [], label="train")[0], ax.plot([], [], label="eval")[0])
    ax.set_title(name, fontsize=_FONT + 1)
    ax.set_xlabel("epoch")
    canvas.few_ticks(ax)
    ax.set_ylabel(textwrap.fill(unit, 30), fontsize=_FONT)  # a long one: two lines
    ax.tick_params(labelsize=_FONT)
    # Numbers written out whole ("4.000001"), not as an offset above the axes, which
    # pushed the title off the figure ("1e−6+4.000001"); `LeftRoom` makes their room.
    ax.yaxis.get_major_formatter().set_useOffset(False)
    ax.set_axisbelow(True)  # the axes are static: drawn before (under) the curves
    dynamic = [*lines, *canvas.spines(ax)]
    legends: tuple = ()
    if legend:  # under: below the axes' zorder 0.5, drawn before the keyed value axis
        under = ax.legend(fontsize=_FONT)
        under.set_zorder(0.4)
        over = ax.add_artist(Legend(ax, lines, ["train", "eval"], fontsize=_FONT))
        legends = (under, over)
        dynamic.append(over)
    fig.tight_layout()
    canvas.fix_layout(fig)
    template = canvas.Template(fig, dynamic, keyed=[ax.yaxis])
    return template, ax, lines, figure_text.LeftRoom(ax), legends


# matplotlib's legend place codes 1-10 (in the order its "best" tries them) as anchors in the
# axes (x, y): "upper right" (1, 1), "upper left", ..., "center" (0.5, 0.5).
_PLACES: tuple[tuple[float, float], ...] = ((1, 1), (0, 1), (0, 0), (1, 0), (1, 0.5), (0, 0.5))
_PLACES += ((1, 0.5), (0.5, 0), (0.5, 1), (0.5, 0.5))


def legend_place(legend, lines, fontsize: float) -> tuple[int, int]:
    """The place code where `legend` covers the least of `lines`, as matplotlib's loc="best"
    chooses it when drawing (its `Legend._find_best_position`: the points inside, plus the lines
    crossing, the first of equals), and how much it covers there (0: nothing), chosen before
    drawing: the legend can then be part of a kept static layer, under the lines."""
    from matplotlib.transforms import Bbox

    renderer = legend.figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    pad = legend.borderaxespad * renderer.points_to_pixels(fontsize)
    room = legend.axes.bbox.padded(-pad, -pad)
    paths = [line.get_transform().transform_path(line.get_path()) for line in lines]
    best = (np.inf, 1)
    for code, anchor in enumerate(_PLACES, start=1):
        x, y = Bbox.from_bounds(0, 0, box.width, box.height).anchored(anchor, room).p0
        cover = Bbox.from_bounds(x, y, box.width, box.height)
        bad = sum(cover.count_contains(p.vertices) + p.intersects_bbox(cover, False) for p in paths)
        best = min(best, (bad, code))
        if bad == 0:
            break
    return int(best[1]), int(best[0])


def zero_throughout(history: list[dict], term: str) -> bool:
    return all(r.get(f"{p}/{term}", 0) == 0 for r in history for p in ("train", "eval"))


def epoch_limits(epochs: np.ndarray) -> tuple[float, float]:
    """x limits of a learning curve: one epoch gets epoch +- 0.5 (and so one tick)."""
    finite = epochs[np.isfinite(epochs)]
    if finite.size and finite.min() == finite.max():
        return finite.min() - 0.5, finite.max() + 0.5
    return canvas.limits(finite.min(), finite.max()) if finite.size else (-1.0, 1.0)


def isolated(y: np.ndarray) -> np.ndarray:
    """Which finite values of a curve have no finite neighbour (drawn as a line, invisible)."""
    finite = np.isfinite(y)
    return finite & ~(padded := np.pad(finite, 1))[:-2] & ~padded[2:]


def span(epochs: np.ndarray, *curves: np.ndarray) -> tuple[float, float, bool] | None:
    """The values a learning curve's axis spans and whether the early epochs are left above
    it (None: no finite value). A run of 10 epochs or more whose first tenth of epochs would
    take over 80% of the axis (a loss of 1e3 at epoch 1, then ~1: the rest a flat line)
    spans the later epochs' values and its own minimum, as TensorBoard's chart scaling
    ignores outliers."""
    y, e = np.concatenate(curves), np.tile(epochs, len(curves))
    ok = np.isfinite(y)
    if not ok.any():
        return None
    lo, hi = float(y[ok].min()), float(y[ok].max())
    if np.unique(epochs).size >= 10:
        late = y[ok & (e > epochs.min() + 0.1 * (epochs.max() - epochs.min()))]
        if late.size and hi - lo > 5 * (late.max() - lo):
            return lo, float(late.max()), True
    return lo, hi, False


def title(term: str, cut: bool, history: list[dict]) -> str:
    """A learning-curve panel's title: the term, whether the early epochs are above the axis
    (`span`), and which curve has values that are not finite (inf or NaN: on a run's way
    to diverging), at which epochs: such points are no point of the line, which said nothing.
    (A curve no epoch records, such as train/mse, has none; a panel with no train curve is
    titled "eval TERM": the first panel's legend alone said which curve its colour was.)"""
    notes = [" (early epochs above)"] if cut else []
    named = term if any(f"train/{term}" in r for r in history) else f"eval {term}"
    for name in ("train", "eval"):
        key = f"{name}/{term}"
        where = [r["epoch"] for r in history if key in r and not np.isfinite(float(r[key]))]
        if where:
            at = f"epoch {where[0]:g}" if len(where) == 1 else f"{len(where)} epochs"
            notes.append(f" ({name} not finite at {at})")
    return textwrap.fill(named + "".join(notes), 34)
