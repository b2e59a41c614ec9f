"""Figures drawn in two layers (`canvas.Template`: a kept static layer, the data drawn over it)
are the figures a whole drawing gives, pixel for pixel, for every kind of figure, over runs
whose data, limits, markers, labels and spans change."""

import numpy as np
import pytest
from PIL import Image

from ae_jax.evaluation import canvas, figures
from ae_jax.evaluation.renderer import Renderer


def _history(epochs: int, scale: float, gap: bool = False) -> list[dict]:
    return [
        {
            "epoch": e,
            "train/loss": scale / e,
            "train/recon": scale / e - 0.1,
            "train/kl": 0.0,
            "eval/loss": np.nan if gap and e % 2 == 0 else 1.1 * scale / e,
            "eval/recon": 1.1 * scale / e - 0.1,
            "eval/kl": 0.0,
        }
        for e in range(1, epochs + 1)
    ]


def _runs():
    """(renderer method, args per run): each kind of figure, drawn again and again."""
    rng = np.random.default_rng(0)
    units = figures.curve_units("squared error")
    curves = [(_history(5, s), units) for s in (2.0, 30.0, 0.01)]
    curves += [(_history(3, 1.0), units), (_history(3, 5.0, gap=True), units)]  # new epochs
    curves += [(_history(1, 1.0), units), (_history(5, 2.0), units)]
    wave = lambda e, k: 0.05 + 0.9 * (e * k % 1.0)  # noqa: E731 - up to the axis' ends
    noise = [
        {"epoch": e, "train/loss": wave(e, 0.618), "eval/loss": wave(e, 0.382)}
        for e in range(1, 99)
    ]
    curves += [(noise, units), (_history(5, 2.0), units)]  # the legend over the curves, then under
    names = ("pc1", "pc2")
    codes = [
        (rng.normal(size=(50, 2)) * s, names, rng.integers(0, 3, 50), "t", 10, "label")
        for s in (1.0, 100.0, 0.001)
    ]
    codes += [
        (rng.normal(size=(50, 2)), names, rng.uniform(0, s, 50), "t", 10, "x") for s in (1, 9, 1e4)
    ]
    codes += [(rng.normal(size=(50, 2)) * s, names, None, "t", 10) for s in (1, 3, 5)]
    cols = [f"column {i}" for i in range(6)]
    bars = [
        (cols, rng.uniform(0.01, 1, 6) * s, rng.uniform(0.01, 1, 6), "error", "t", True)
        for s in (1.0, 1e3, 1e-3)
    ]
    cut = np.array([0.2, 0.0, np.nan, 0.3, 1e-12, 0.5])
    bars += [(cols, cut, rng.uniform(0.01, 1, 6), "error", "t", True)]  # markers appear
    bars += [(cols, rng.uniform(0, 1, 6), rng.uniform(0, 1, 6), "accuracy", "t", False, "m")] * 3
    heat = [
        (rng.normal(size=(4, 6)) * s, cols, ["z0", "z1", "z2", "z3"], "t", "RdBu_r", True, "c")
        for s in (1.0, 50.0, 0.02)
    ]
    mosaics = [
        (rng.uniform(size=(30, 40)), "grid", (-s, s, -2 * s, 2 * s), ("z0", "z1"))
        for s in (1.0, 3.0, 0.5)
    ]
    mosaics += [(rng.uniform(size=(16, 48)), "rows") for _ in range(3)]
    return {
        "learning_curves": curves,
        "codes_2d": codes,
        "per_feature_bars": bars,
        "heatmap": heat,
        "mosaic": mosaics,
    }


@pytest.mark.parametrize("method", sorted(_runs()))
def test_layered_figures_equal_whole_drawings(tmp_path, monkeypatch, method):
    written = []  # per file, its templates (a learning curve's panels: one per term)
    save_row = canvas.save_row
    monkeypatch.setattr(
        canvas, "save_row", lambda panels, path: (written.append(panels), save_row(panels, path))
    )
    renderer = Renderer()
    for i, args in enumerate(_runs()[method]):
        path = str(tmp_path / f"{i}.png")
        getattr(renderer, method)(path, *args)
        with Image.open(path) as im:
            layered = np.asarray(im)
        wholes = []
        for template, _, _ in written[-1]:
            for artist in (*template.dynamic, *template.keyed):  # every artist by Figure.draw
                artist.set_animated(False)
            template.unlay()  # (a relayout one is laid out from its unlaid places)
            template.fig.canvas.draw()
            wholes.append(np.array(template.fig.canvas.buffer_rgba()))
        whole = np.concatenate(wholes, axis=1)
        assert layered.shape == whole.shape, (method, i)
        differ = np.any(layered != whole, axis=-1)
        assert not differ.any(), f"{method}, run {i}: {differ.sum()} pixels differ"


@pytest.mark.parametrize(
    "layers, megabytes, whole, axes",
    [
        (16, 64, [2, 0, 0, 0, 1, 0], [2, 2, 0, 0, 2, 0]),
        (2, 64, [2, 0, 0, 0, 1, 0], [2, 2, 0, 0, 2, 2]),
        (16, 1, [2, 0, 0, 0, 1, 1], [2, 2, 2, 2, 2, 2]),
    ],
)
def test_a_static_layer_is_kept_per_value_and_the_least_recently_used_dropped(
    tmp_path, monkeypatch, layers, megabytes, whole, axes
):
    """Runs whose value axes snap to the same limits share one static layer: a layout's first
    file draws the rest of the static layer once (a pass of Figure.draw without the value
    axis) and the value axis over it, each later new set of limits only the value axis, a set
    seen before nothing; here per panel (loss and recon: the curves are one figure per term,
    and these runs differ in both). Past `Template.LAYERS` layers, or past `LAYER_BYTES` of them (a
    panel's layer is 0.86 MB: one fits in 1 MB), the least recently used is dropped, and its
    value axis drawn again when its limits come back. C's recon numbers ("−0.0975") are
    wider than its layout made room for: that panel's axes start further right (`LeftRoom`),
    which draws the rest of its static layer once more (a pass), and A's place comes back
    with A (kept, but past 1 MB drawn again)."""
    from matplotlib.axis import YAxis
    from matplotlib.figure import Figure

    monkeypatch.setattr(canvas.Template, "LAYERS", layers)
    monkeypatch.setattr(canvas.Template, "LAYER_BYTES", megabytes * 2**20)
    passes, value_axes = [], []
    draw, draw_axis = Figure.draw, YAxis.draw
    monkeypatch.setattr(Figure, "draw", lambda fig, r: (passes.append(fig), draw(fig, r))[1])
    monkeypatch.setattr(
        YAxis, "draw", lambda a, r, *x: (value_axes.append(a), draw_axis(a, r, *x))[1]
    )
    units = figures.curve_units("squared error")
    renderer = Renderer()
    per_file = []
    for i, scale in enumerate([2.0, 30.0, 2.0, 30.0, 0.01, 2.0]):  # A B A B C A
        passes.clear()
        value_axes.clear()
        renderer.learning_curves(str(tmp_path / f"{i}.png"), _history(5, scale), units)
        per_file.append((len(passes), len(value_axes)))
    assert per_file == list(zip(whole, axes, strict=True))


@pytest.mark.parametrize("method", sorted(_runs()))
def test_a_figure_does_not_depend_on_the_figures_drawn_before_it(tmp_path, method):
    """Each run's figure, drawn by a renderer that drew the other runs' first (as a sweep's
    figure worker does), equals the one a fresh renderer draws for it alone (a single run),
    pixel for pixel: a layout laid out for the first run drawn (one without a bar chart's
    "value below the axis" note, or a heatmap whose colour bar's numbers were narrower) cut
    the next runs' axis labels off at the figure's edge."""
    runs = _runs()[method]
    shared = Renderer()
    for i, args in enumerate(runs):
        getattr(shared, method)(str(tmp_path / f"after_{i}.png"), *args)
    for i, args in enumerate(runs):
        getattr(Renderer(), method)(str(tmp_path / f"alone_{i}.png"), *args)
        alone, after = (
            np.asarray(Image.open(tmp_path / f"{k}_{i}.png")) for k in ("alone", "after")
        )
        assert alone.shape == after.shape, (method, i, alone.shape, after.shape)
        differ = np.any(alone != after, axis=-1)
        assert not differ.any(), f"{method}, run {i}: {differ.sum()} pixels differ"


@pytest.mark.parametrize("low, high", [(-0.0008, 0.0003), (-1234567.0, 0.5), (0.2, 0.9)])
def test_a_learning_curves_value_axis_label_stays_inside_its_panel(tmp_path, low, high):
    """Wide tick numbers ("−0.00075", drawn after a run of narrow ones, "0.2") move the value
    axis's label left: the panel makes room for them, so the label is not cut off at the
    figure's left edge (laid out once, for no numbers, it was, past 7 characters)."""
    units = figures.curve_units("squared error")
    renderer = Renderer()
    for lo, hi in [(0.2, 0.9), (low, high)]:
        history = [
            {"epoch": e, "train/loss": lo + (hi - lo) * e / 5, "eval/loss": hi - (hi - lo) * e / 5}
            for e in range(1, 6)
        ]
        renderer.learning_curves(str(tmp_path / "curves.png"), history, units)
        template = next(iter(renderer._templates.values()))[0]
        label = template.fig.axes[0].yaxis.label
        assert label.get_window_extent().x0 >= 0, (lo, hi, label.get_window_extent())


def test_a_learning_curves_legend_is_where_matplotlibs_best_puts_it(tmp_path, monkeypatch):
    """The legend, part of the kept static layer (under the curves), sits where matplotlib's
    loc="best" puts it for each run's curves, drawn whole: in the corner the curves leave
    free (falling, rising, a valley, a hill), not where the first run's left it. Curves that
    cross every place (noise) get it over them instead, at the same place, as matplotlib
    draws it (under them, they hid its names: a review)."""
    written = []
    save_row = canvas.save_row
    monkeypatch.setattr(
        canvas, "save_row", lambda panels, path: (written.append(panels), save_row(panels, path))
    )
    units = figures.curve_units("squared error")
    shapes = {
        "falling": (9, lambda e: 2.0 / e),
        "rising": (9, lambda e: 0.5 * e),
        "valley": (9, lambda e: (e - 5.0) ** 2),
        "noise": (100, lambda e: 0.05 + 0.9 * (e * 0.618034 % 1.0)),  # up to the axis' ends
        "hill": (9, lambda e: 20.0 - (e - 5.0) ** 2),
    }
    renderer, places = Renderer(), set()
    for name, (n, f) in shapes.items():
        history = [
            {"epoch": e, "train/loss": f(e), "eval/loss": f(e + 0.5)} for e in range(1, n + 1)
        ]
        renderer.learning_curves(str(tmp_path / f"{name}.png"), history, units)
        template = written[-1][0][0]
        ax = template.fig.axes[0]
        under, over = ax.get_legend(), next(a for a in ax.artists if a is not ax.get_legend())
        assert (over.get_visible(), under.get_visible()) == (name == "noise", name != "noise")
        assert over.get_zorder() > max(line.get_zorder() for line in ax.get_lines())
        shown = over if name == "noise" else under
        for artist in (*template.dynamic, *template.keyed):
            artist.set_animated(False)
        template.fig.canvas.draw()
        ours = shown.get_window_extent().bounds
        shown.set_loc("best")
        template.fig.canvas.draw()
        assert shown.get_window_extent().bounds == ours, name
        places.add(ours)
    assert len(places) >= 3  # the curves' shapes chose different places
