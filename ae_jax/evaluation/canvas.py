"""A matplotlib figure's life in ae_jax: made without pyplot, laid out once, then drawn per run.

The renderer (`renderer.py`) builds its layouts with `figure`, fixes them with `fix_layout`,
wraps each in a `Template` that names the artists a run changes, and writes each run's PNG with
`save` (through `png.py`): the changing layer over the kept static one, drawn the first time
a run needs it. `few_ticks` and `limits` are the axis conventions its figures share.
"""

from typing import Literal

import numpy as np

from ae_jax.evaluation import png

DPI = 150  # paper-ready
FONT = 9  # points: the smallest text on a figure


Y_TICKS = 4  # a value axis's most tick intervals
Y_STEPS = [1, 2, 2.5, 5, 10]  # its tick steps (times a power of ten): no steps of 0.15 or 0.8


def group_colours(groups, rest) -> list:
    """A colour per group of a scatter's legend: grey for "other" (`rest`) and a missing
    number (NaN); the others none grey (tab10's and tab20's own greys read as "other"):
    tab10's 9 others, else tab20's 18 and tab20b's 20, repeated beyond 38."""
    from matplotlib import colormaps

    grey = [v in rest or v != v for v in groups]
    names = ["tab10"] if len(grey) - sum(grey) <= 9 else ["tab20", "tab20b"]
    rgb = [tuple(c[:3]) for name in names for c in colormaps[name](range(colormaps[name].N))]
    colours = [c for c in rgb if max(c) - min(c) > 0.05]
    palette = iter(colours * (1 + len(groups) // len(colours)))
    return ["0.6" if g else next(palette) for g in grey]


def few_ticks(ax, log_y: bool = False) -> None:
    """At most ~5 labelled ticks per axis, no minor labels: tick labels are most of the cost of
    drawing a small figure, and a paper figure needs few."""
    from matplotlib import ticker

    # An epoch axis's steps are the value axes' (matplotlib's own, for whole numbers, add 3,
    # 4, 6 and 8: a 30-epoch run's axis read 0, 8, 16, 24, its last epochs past the last tick).
    ax.xaxis.set_major_locator(ticker.MaxNLocator(5, integer=True, min_n_ticks=1, steps=Y_STEPS))
    if log_y:
        ax.yaxis.set_major_locator(ticker.LogLocator(numticks=5))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    else:
        ax.yaxis.set_major_locator(ticker.MaxNLocator(Y_TICKS, steps=Y_STEPS))


def figure(figsize, nrows: int = 1, ncols: int = 1, layout: Literal["constrained"] | None = None):
    # matplotlib is imported when the first figure is drawn (on the figure writer's thread),
    # not with ae_jax: it costs a run's critical path 0.4 s and a notebook nothing.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def fix_layout(fig) -> None:
    """Keeps the axes where the layout engine put them and removes the engine, so that no
    later drawing lays the figure out again (savefig also drew a figure with any engine, even
    `tight_layout()`'s placeholder, twice; `save` draws once). For a template laid out once,
    by its build; a `relayout` template keeps its engine."""
    fig.set_layout_engine(None)


def spines(ax) -> list:
    return list(ax.spines.values())


class Template:
    """A figure that is drawn again for every run, in two layers.

    The static layer is what no run changes: the figure's and axes' backgrounds, titles, axis
    labels, and the ticks and tick labels of axes whose limits are fixed, legends outside the
    axes or under the data (`curves.legend_place`). It is drawn once, kept as pixels, and pasted
    back under each later run's dynamic layer: the `dynamic` artists (the data, the axes whose
    limits follow the data, the spines and legends drawn over the data), drawn in matplotlib's
    own order (by zorder). Text is most of the cost of drawing a small figure, and most of a
    figure's text is static: a sweep's later figures cost a fraction of the first (measured on
    the 256 figures of a 64-run sweep, replayed in one process: 5.8 CPU-s with the value axes in
    the dynamic layer, 2.8 with them in the static one, as the renderer now puts them; a
    learning curve's median 29 -> 10 ms).

    Nothing static may be drawn over a dynamic artist (or the figure would differ from a
    whole drawing, Figure.draw's): an axis in the static layer is put below the data
    (`set_axisbelow`). What fixes the static layer beyond the template's own key (the epochs a
    learning curve spans, the limits its value axes snapped to, a label that changes) is
    passed to `save` as `static`: a template keeps the static layers of the last `LAYERS`
    values it saw (a sweep's runs share a few: `snapped` limits), as many as fit in
    `LAYER_BYTES` (at least one), and draws a new one when it meets a new value.

    A `relayout` template (its figure built with a layout engine) is laid out again for each
    new static layer, by the engine, around that layer's text (what lays it out, a value axis's
    numbers or a label's notes, is then part of `static`); each layer keeps the axes' places it
    was drawn with, and they are put back when it is used again. Laid out once, for the first
    run drawn, a bar chart's later "value below the axis" note and a heatmap's wider colour-bar
    numbers were cut off at the figure's edge, and a run's figure depended on which run its
    renderer drew first (a sweep's figure worker against a single run).

    A new static layer need not be drawn whole: the `keyed` artists (the value axes, whose
    ticks and labels are what `static` changes) are drawn last, over a layer of everything
    else kept for `base` (what else changes the static layer: the axes' place, an epoch span),
    so a new value costs its axes' drawing alone (the benchmark sweep's 64 learning curves,
    replayed in one process: 30 new static layers of a panel, 13.7 -> 7.7 ms each with the
    data at the median; all 64 files 1.04 -> 0.88 s). The rest's layers are kept as the
    static layers are (as many again). The keyed artists must be the last static ones
    matplotlib draws where they lie (as an Axes draws its axes after its other children, y
    after x), or the layer would differ from a whole drawing's (tests/test_figure_layers.py).
    """

    LAYERS = 16  # a learning-curve panel's layer is ~0.9 MB of pixels ...
    LAYER_BYTES = 64 * 2**20  # ... the bars of 784 features' ~100 MB: then one is kept

    def __init__(self, fig, dynamic, relayout: bool = False, keyed=()):
        if relayout and (keyed or fig.get_layout_engine() is None):
            raise ValueError("a relayout template needs a layout engine and no keyed artists")
        self.fig = fig
        self.dynamic = sorted(dynamic, key=self._drawing_order)
        self.keyed = sorted(keyed, key=self._drawing_order)
        self.relayout = relayout  # laid out again for each new static layer
        self._unlaid = self._places()  # (relayout) the axes' places before any layout
        # (base, static) -> (the static layer's pixels, the axes' places it was drawn with:
        # relayout only), and base -> the layer without the keyed artists (with any): the
        # newest used last in each
        self._layers: dict = {}
        self._bases: dict = {}

    def _drawing_order(self, artist) -> tuple:
        """Where Figure.draw draws `artist`: its figure-level parent (an Axes, or itself) by
        zorder then place among the figure's children; within an Axes, the same again."""
        tops = [c for c in self.fig.get_children() if c is not self.fig.patch]
        for i, top in enumerate(tops):
            if top is artist:
                return (top.get_zorder(), i, float("-inf"), -1)
            kids = top.get_children() if hasattr(top, "get_axes_locator") else []  # an Axes
            for j, kid in enumerate(kids):
                if kid is artist:
                    return (top.get_zorder(), i, kid.get_zorder(), j)
        raise ValueError(f"{artist!r} is not drawn by its figure or one of its axes")

    def draw(self, static=(), base=()) -> None:
        """Draws the figure on its canvas: the dynamic layer over the static layer kept for
        (`base`, `static`), drawn and kept first if there is none, the first drawing too.
        (Drawn whole the first time, as it was, the first figure cost the same, ~180 ms of a
        learning curve's, and the second paid for the static layer again: the benchmark
        sweep's second learning curve 73 ms, its later ones 7; now 9.)"""
        canvas = self.fig.canvas
        key = (base, static)
        layer = self._layers.pop(key, None)
        if layer is None:
            layer = (self._static_layer(base), self._places())
            while len(self._layers) >= self._keep():
                del self._layers[next(iter(self._layers))]  # the least recently used
        else:
            _put(layer[1])
            canvas.restore_region(layer[0])
        self._layers[key] = layer
        for artist in self.dynamic:
            self.fig.draw_artist(artist)

    def unlay(self) -> None:
        """Puts a relayout template's axes back where they were before any layout, from where
        the engine lays them out for a drawing: laid out from where the last layout left
        them, the places differed by up to ~0.1 pixel (the engine measures text where it is
        drawn, to whole pixels), and so did the pixels of a run's figure with the runs drawn
        before it."""
        _put(self._unlaid)

    def _places(self) -> tuple:
        """Where the layout put each axes (a relayout template's; else nothing to put back)."""
        if not self.relayout:
            return ()
        return tuple(
            (ax, ax.get_position(original=True), ax.get_position(original=False))
            for ax in self.fig.axes
        )

    def _keep(self) -> int:
        """How many layers of this figure's size `LAYER_BYTES` holds (1 to `LAYERS`)."""
        size = 4 * int(self.fig.bbox.width) * int(self.fig.bbox.height)  # RGBA bytes
        return max(1, min(self.LAYERS, self.LAYER_BYTES // max(size, 1)))

    def _static_layer(self, base):
        """Draws the static layer on the canvas and returns its pixels: the keyed artists over
        the kept layer of the rest for `base` (drawn and kept first), or all of it at once."""
        canvas = self.fig.canvas
        for artist in (*self.dynamic, *self.keyed):  # left out of Figure.draw
            artist.set_animated(True)
        if not self.keyed:
            self.unlay()
            canvas.draw()  # the static layer alone (laid out again: relayout)
            return canvas.copy_from_bbox(self.fig.bbox)
        rest = self._bases.pop(base, None)
        if rest is None:
            canvas.draw()  # the rest of the static layer (without the keyed artists)
            rest = canvas.copy_from_bbox(self.fig.bbox)
            while len(self._bases) >= self._keep():
                del self._bases[next(iter(self._bases))]
        else:
            canvas.restore_region(rest)
        self._bases[base] = rest
        for artist in self.keyed:
            self.fig.draw_artist(artist)
        return canvas.copy_from_bbox(self.fig.bbox)


def _put(places: tuple) -> None:
    """Puts each (axes, original place, active place) back (not with set_position, which
    also takes the axes out of the layout)."""
    for ax, original, active in places:
        ax._set_position(original, "original")
        ax._set_position(active, "active")


def save(template: Template, path: str, static=(), base=()) -> None:
    """Draws the template (`Template.draw`) and writes its pixels with `png.write` (savefig's
    Pillow encoder took a quarter of a figure's time choosing row filters)."""
    save_row([(template, static, base)], path)


PER_ROW = 4  # panels side by side in `save_row`; more wrap onto further rows


def save_row(panels: list[tuple[Template, tuple, tuple]], path: str) -> None:
    """Draws each (template, static, base), as `save` does one, and writes their pixels side
    by side, left to right, as one PNG, `PER_ROW` to a row (a last row shorter than the others
    is filled out in white); the templates' figures are of one height and dpi."""
    import matplotlib

    pixels = []
    for template, static, base in panels:
        template.draw(static, base)
        pixels.append(np.asarray(template.fig.canvas.buffer_rgba()))
    if len({t.fig.dpi for t, _, _ in panels}) != 1:
        raise ValueError("figures written side by side must be of one dpi")
    image: list | np.ndarray = pixels  # one row: the PNG's rows are built without a copy
    if len(pixels) > PER_ROW:
        rows = [
            np.concatenate(pixels[i : i + PER_ROW], axis=1) for i in range(0, len(pixels), PER_ROW)
        ]
        image = np.full((sum(r.shape[0] for r in rows), rows[0].shape[1], 4), 255, np.uint8)
        for i, r in enumerate(rows):
            image[i * r.shape[0] : (i + 1) * r.shape[0], : r.shape[1]] = r
    software = f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"
    png.write(path, image, panels[0][0].fig.dpi, {"Software": software})


def snapped(locator, lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi) rounded out to the nearest ticks `locator` (an axis's major tick locator) puts
    at or beyond them for that span: round limits, which many runs share (and so the static
    layer drawn for them: `Template`). The axis drawn over the rounded span may tick at a
    coarser step, so it need not end on a tick. An end with no tick beyond it stays."""
    ticks = np.asarray(locator.tick_values(lo, hi), float)
    below, above = ticks[ticks <= lo], ticks[ticks >= hi]
    return (
        float(below.max()) if below.size else float(lo),
        float(above.min()) if above.size else float(hi),
    )


def value_ticks(
    axis, lo: float, hi: float, nonnegative: bool = False, shown: bool = True
) -> tuple[float, float, tuple[float, ...]]:
    """Limits for a value axis spanning the data's (lo, hi), rounded out to ticks (`snapped`,
    with `few_ticks`' locator), and those ticks, both ends included, fixed on `axis`: it ends
    on labelled ticks (the rounded, wider span could tick at a coarser step). The ticks belong
    to a layer's static value: two spans rounded to the same limits may tick differently.
    A `nonnegative` quantity (a KL, an L1) gets no axis below 0. Not `shown` (no finite value
    to draw, which the panel's title says): no ticks, rather than numbers (-2 to 2 for an MSE)
    that no value has."""
    from matplotlib import ticker

    locator = ticker.MaxNLocator(Y_TICKS, steps=Y_STEPS)
    ticks = np.asarray(locator.tick_values(lo, hi), float)
    a, b = snapped(locator, lo, hi)
    if nonnegative and a < 0:
        a, ticks = 0.0, np.concatenate([[0.0], ticks[ticks > 0]])
    kept = tuple(float(t) for t in ticks if a <= t <= b) if shown else ()
    axis.set_major_locator(ticker.FixedLocator(kept))
    return a, b, kept


def log_limits(locator, values: np.ndarray, decades: float = 6.0) -> tuple[float, float]:
    """A log value axis's limits for bars of `values` (non-positive and non-finite ones aside):
    the right end the tick above 1.5 x the largest, snapped over a decade (over the whole span,
    ticks two decades apart put it far past the largest bar), the left end the tick at or below
    the smallest / 1.5, at most `decades` below the right end (snapped first, it reached 7)."""
    every = values[np.isfinite(values) & (values > 0)]
    top = float(every.max()) if every.size else 1.0
    low = float(every.min()) / 1.5 if every.size else 1e-3
    right = snapped(locator, top * 0.15, top * 1.5)[1]
    deepest = right * 10.0**-decades
    return max(snapped(locator, max(low, deepest), right)[0], deepest), right


def data_limits(values: np.ndarray):
    """`limits` of the values' range; of no values (a diverged run's codes, none finite), the
    default span."""
    return limits(np.min(values, initial=np.inf), np.max(values, initial=-np.inf))


def limits(lo: float, hi: float, log: bool = False, margin: float = 0.05):
    if log:
        lo, hi = max(lo, 1e-12), max(hi, 1e-12)
        return lo / 1.5, hi * 1.5
    if not np.isfinite(lo) or not np.isfinite(hi):
        return -1.0, 1.0
    pad = (hi - lo) * margin or max(abs(hi), 1.0) * margin
    return lo - pad, hi + pad
