"""A figure's text stays inside it and tells its items apart, whatever the data's names: long
column names, long category labels that differ only at their ends, a long colouring column."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from ae_jax import default_config
from ae_jax.evaluation import figure_data, figure_text, figures
from ae_jax.evaluation.renderer import Renderer

_LONG = "net margin fraction of revenue after tax and adjustments, quarterly ({})"  # 70+


def test_short_names_keep_both_ends_and_stay_apart():
    stores = [f"Downtown retail branch location, Store {i:02d}" for i in range(3)]
    assert figure_text.short_names(stores, 22) == [
        "Downtown re\u2026, Store 00",
        "Downtown re\u2026, Store 01",
        "Downtown re\u2026, Store 02",
    ]
    assert figure_text.short_names(["short", "x" * 36, "y" * 37], 36) == [
        "short",
        "x" * 36,
        "y" * 18 + "\u2026" + "y" * 17,
    ]
    # Alike with both ends kept: their ends alone; alike as given: numbered in order.
    a, b = "a" * 30 + "X" + "b" * 10, "a" * 30 + "Y" + "b" * 10
    assert figure_text.short_names([a, b], 22) == ["\u2026" + a[-21:], "\u2026" + b[-21:]]
    assert figure_text.short_names(["1", 1, "z"]) == ["1", "1 (2)", "z"]


def _border_ink(path) -> int:
    """Pixels of the image's outermost rows and columns that are not white: text cut off at
    the figure's edge leaves some."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    edges = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    return int((edges.sum(axis=1) < 3 * 250).sum())


def _figures(rng):
    names = [_LONG.format(i) for i in range(12)]
    labels = np.array([f"Downtown retail branch location, Store {i % 18:02d}" for i in range(300)])
    revenue = rng.uniform(0, 1e7, 300)
    revenue[::7] = np.nan
    return {
        "bars": lambda r, p: r.per_feature_bars(
            p, names, rng.uniform(1e-3, 1, 12), rng.uniform(1e-3, 1, 12), "error", "t", True
        ),
        "accuracy bars": lambda r, p: r.per_feature_bars(
            p, names[:3], rng.uniform(0, 1, 3), rng.uniform(0, 1, 3), "accuracy", "t", False, "m"
        ),
        "heatmap": lambda r, p: r.heatmap(
            p, rng.normal(size=(4, 12)), names, ["z0", "z1", "z2", "z3"], "t", "RdBu_r", True, "c"
        ),
        # Two columns of a traversal beside long names: the title ran off the right.
        "narrow heatmap": lambda r, p: r.heatmap(
            p,
            rng.normal(size=(2, 12)),
            names,
            ["z0", "z1"],
            "output change as z_d goes from -2 to 2 (others 0)",
            "RdBu_r",
            True,
            "change (the data's own units)",
        ),
        # The longest value label beside long names: it ran off the right.
        "bars, long label": lambda r, p: r.per_feature_bars(
            p,
            names,
            rng.uniform(1e-3, 1, 12),
            np.where(np.arange(12) < 6, 0.0, rng.uniform(1e-3, 1, 12)),
            "mean squared error over the rows (the 1234 filled missing cells too), the data's "
            "own units (log axis)",
            "reconstruction error per feature (rows of shop_sessions_2026_november_export.csv, "
            "epoch 1000); the 60 of 300 worst reconstructed",
            True,
            "PCA, as many components",
        ),
        "legend": lambda r, p: r.codes_2d(
            p, rng.normal(size=(300, 2)), ("pc1", "pc2"), labels, "t", 20, _LONG.format("x")
        ),
        "colour bar": lambda r, p: r.codes_2d(
            p, rng.normal(size=(300, 2)), ("pc1", "pc2"), revenue, "t", 20, _LONG.format("y")
        ),
    }


@pytest.mark.parametrize("kind", sorted(_figures(np.random.default_rng(0))))
def test_long_names_stay_inside_the_figure(tmp_path, kind):
    """No text runs past the figure's edge (an 80-character column name lost its start on a
    bar chart's and a heatmap's left, a legend's title pushed its entries off the right, a
    colour bar's label lost its ends)."""
    path = str(tmp_path / "f.png")
    _figures(np.random.default_rng(0))[kind](Renderer(), path)
    assert _border_ink(path) == 0


def test_a_legend_tells_apart_labels_that_differ_at_their_ends(tmp_path):
    renderer = Renderer()
    _figures(np.random.default_rng(0))["legend"](renderer, str(tmp_path / "f.png"))
    ((template, ax, _),) = renderer._templates.values()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(texts) == 18 and len(set(texts)) == 18, texts
    assert all(len(t) <= 22 for t in texts), texts


def test_the_figures_name_the_units_of_the_values_they_show():
    """data.scaling=none trains on the table's own values (1e13 in a user's run): its bar
    chart and heatmaps said "scaled units" all the same."""
    config = default_config()
    assert figure_data.value_units(config) == "scaled units"  # minmax
    with config.unlocked():
        config.data.scaling = "none"
    raw = figure_data.value_units(config)
    assert raw == "the data's own units"
    rng = np.random.default_rng(0)
    f = figures.FigureInputs(
        columns=["a", "b"],
        image_shape=None,
        epoch=1,
        is_vae=True,
        history=[],
        mse_per_feature=np.ones(2),
        samples=rng.normal(size=(4, 2)),
        traversal=rng.normal(size=(2, 2)),
        value_units=raw,
    )
    labels = {j.path.rsplit("/", 1)[1]: j.args for j in figures.plan("/tmp/x", f)}
    assert labels["recon_per_feature.png"][3] == (
        "mean squared error over the rows, the data's own units (log axis)"
    )
    assert labels["traversal.png"][6] == "change (the data's own units)"
    assert labels["samples.png"][6] == "value (the data's own units)"
    scaled = {
        j.path.rsplit("/", 1)[1]: j.args
        for j in figures.plan("/tmp/x", dataclasses.replace(f, value_units="scaled units"))
    }
    assert scaled["samples.png"][6] == "value (scaled units)"


def test_a_learning_curve_of_nearly_constant_values_keeps_its_title_inside(tmp_path):
    """A diverged run's L1, 4.0000005 (train) and 4.0000014 (eval) throughout, put
    "1e−6+4.000001" above its panel, which pushed the title "l1" up to the figure's top row:
    its numbers are now written out whole."""
    history = [
        {"epoch": e, "train/loss": 1 / e, "eval/loss": 1 / e}
        | {"train/l1": 4.000000476837158, "eval/l1": 4.000001430511475}
        for e in range(1, 13)
    ]
    path = str(tmp_path / "curves.png")
    Renderer().learning_curves(path, history, figures.curve_units("squared error"))
    assert _border_ink(path) == 0


def test_a_wrapped_axis_label_keeps_its_last_parenthesis_whole():
    """recon_per_column.png's label read "accuracy of the reconstruction (validation" over
    "rows)" (a new user's trial): a closing parenthesis the wrap would split goes whole onto a
    line of its own; one that fits stays where the plain wrap put it."""
    fill = figure_text.fill
    said = fill("accuracy of the reconstruction (validation rows)", 46)
    assert said == "accuracy of the reconstruction\n(validation rows)"
    label = "mean squared error over the rows, squared error per element (log axis)"
    assert (
        fill(label, 46) == "mean squared error over the rows, squared\nerror per element (log axis)"
    )
    assert fill("plain words, many of them, and no parenthesis to keep", 20) == (
        "plain words, many of\nthem, and no\nparenthesis to keep"
    )
    assert fill("short (x)", 46) == "short (x)" and fill("", 46) == ""
