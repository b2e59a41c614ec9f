"""A matplotlib figure's life in ae_jax: made without pyplot, laid out once, drawn once, saved.

The renderer (`renderer.py`) builds its layouts with `figure`, fixes them with `fix_layout`
and writes each run's PNG with `save` (through `png.py`); `few_ticks` and `limits` are the
axis conventions its figures share.
"""

from typing import Literal

import numpy as np

from ae_jax.evaluation import png

DPI = 150  # paper-ready


def few_ticks(ax, log_y: bool = False) -> None:
    """At most ~5 labelled ticks per axis, no minor labels: tick labels are most of the cost of
    drawing a small figure, and a paper figure needs few."""
    from matplotlib import ticker

    ax.xaxis.set_major_locator(ticker.MaxNLocator(5, integer=True, min_n_ticks=1))
    if log_y:
        ax.yaxis.set_major_locator(ticker.LogLocator(numticks=5))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    else:
        ax.yaxis.set_major_locator(ticker.MaxNLocator(4))


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
    `tight_layout()`'s placeholder, twice; `save` draws once, but a template's layout is fixed
    by design: only its data changes)."""
    fig.set_layout_engine(None)


def save(fig, path: str, keep_layout: bool = False) -> None:
    """Draws the figure once and writes its pixels with `png.write` (savefig's Pillow encoder
    took a quarter of a figure's time choosing row filters). keep_layout: the constrained
    layout computed at this first drawing is kept for the next runs' (it costs a third of a
    bar chart's drawing; only the data changes)."""
    import matplotlib

    fig.canvas.draw()
    software = f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"
    png.write(path, np.asarray(fig.canvas.buffer_rgba()), fig.dpi, {"Software": software})
    if keep_layout:
        fix_layout(fig)


def limits(lo: float, hi: float, log: bool = False, margin: float = 0.05):
    if log:
        lo, hi = max(lo, 1e-12), max(hi, 1e-12)
        return lo / 1.5, hi * 1.5
    if not np.isfinite(lo) or not np.isfinite(hi):
        return -1.0, 1.0
    pad = (hi - lo) * margin or max(abs(hi), 1.0) * margin
    return lo - pad, hi + pad
