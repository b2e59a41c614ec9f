"""`ae-jax report` in folders it shares with the user's files, and what its tables and figures
say about settings without values (the report's probe campaign). Runs are faked: a config.json
and a summary.json (and eval.json) per run, no training."""

import csv
import json
import math
import os
import subprocess
import sys
import time
import warnings

import pytest
from matplotlib.collections import PathCollection

from ae_jax import files as files_lib
from ae_jax.errors import UserError
from ae_jax.sweeps import report, report_figures, report_files, report_text, run_folders
from tests.test_sweep import _fake_sweep


def _pile(root, runs: list[tuple[dict, str, dict]], evals: list[dict] | None = None) -> None:
    """A plain folder of runs (no sweep.json): (config fields, status, numbers) per run, each
    in root/r<i>/ as `ae-jax train` writes it."""
    for i, (fields, status, values) in enumerate(runs):
        run = root / f"r{i}"
        run.mkdir(parents=True)
        config: dict = {}
        for key, v in fields.items():
            section, field = key.split(".")
            config.setdefault(section, {})[field] = v
        (run / "config.json").write_text(json.dumps(config))
        (run / "summary.json").write_text(json.dumps({"status": status, **values}))
        if evals is not None:
            (run / "eval.json").write_text(json.dumps(evals[i]))


def _lr_pile(root, rates=(0.1, 1.0), **fields) -> None:
    _pile(
        root,
        [
            ({"optim.learning_rate": lr, "train.seed": s, **fields}, "done", {"eval/mse": lr + s})
            for lr in rates
            for s in (0, 1)
        ],
    )


def _files(root) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".json")
    }


def test_a_folder_holding_the_users_own_files_is_refused_before_anything_is_written(tmp_path):
    """The probe: a plain folder of run copies beside the user's results.csv, report.md and
    figures/metrics_vs_foo.png. The report replaced the first two and deleted the figure (as
    an earlier report's of a parameter no longer swept). Now: refused, naming the files,
    nothing written; once they are moved, the report writes its files beside the user's
    figure, keeps it, and a rerun replaces its own files."""
    _lr_pile(tmp_path)
    (tmp_path / "results.csv").write_text("my,own\n1,2\n")
    (tmp_path / "report.md").write_text("# My notes\n")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "metrics_vs_foo.png").write_bytes(b"my figure")
    before = _files(tmp_path)
    with pytest.raises(UserError) as e:
        report.write_report(str(tmp_path), ["eval/mse"])
    assert "already holds results.csv, report.md, which `ae-jax report` did not write" in str(
        e.value
    )
    assert "Move or rename them and run the report again" in str(e.value)
    assert _files(tmp_path) == before
    assert not (tmp_path / report_files.MANIFEST).exists()
    (tmp_path / "results.csv").rename(tmp_path / "mine.csv")
    (tmp_path / "report.md").rename(tmp_path / "mine.md")
    out = report.write_report(str(tmp_path), ["eval/mse"])
    assert [os.path.basename(f) for f in out["figures"]] == ["metrics_vs_optim_learning_rate.png"]
    assert (tmp_path / "figures" / "metrics_vs_foo.png").read_bytes() == b"my figure"
    assert (tmp_path / "mine.md").read_text() == "# My notes\n"
    listed = json.loads((tmp_path / report_files.MANIFEST).read_text())["files"]
    assert listed == [
        "figures/metrics_vs_optim_learning_rate.png",
        "report.md",
        "results.csv",
        "runs.csv",
        "timing.csv",
    ]
    report.write_report(str(tmp_path), ["eval/mse"])  # its own files: replaced, no refusal
    assert (tmp_path / "figures" / "metrics_vs_foo.png").read_bytes() == b"my figure"


def test_only_the_reports_own_figures_of_a_parameter_no_longer_swept_are_removed(tmp_path):
    """A figure of a parameter the runs no longer differ in is removed when the report drew
    it; the user's figure under a report's name, which it would not replace, stays."""
    _pile(
        tmp_path,
        [
            (
                {"optim.learning_rate": lr, "loss.beta": b, "train.seed": 0},
                "done",
                {"eval/mse": lr * b},
            )
            for lr in (0.1, 1.0)
            for b in (1.0, 2.0)
        ],
    )
    report.write_report(str(tmp_path), ["eval/mse"])
    figures = tmp_path / "figures"
    assert sorted(os.listdir(figures)) == [
        "metrics_vs_loss_beta.png",
        "metrics_vs_optim_learning_rate.png",
    ]
    (figures / "metrics_vs_foo.png").write_bytes(b"mine")
    for run in ("r1", "r3"):  # beta 2.0 gone: the runs differ in the learning rate only
        config = json.loads((tmp_path / run / "config.json").read_text())
        config["loss"]["beta"] = 1.0
        config["train"]["seed"] = 1
        (tmp_path / run / "config.json").write_text(json.dumps(config))
    out = report.write_report(str(tmp_path), ["eval/mse"])
    assert out["params"] == ["optim.learning_rate"]
    assert sorted(os.listdir(figures)) == [
        "metrics_vs_foo.png",
        "metrics_vs_optim_learning_rate.png",
    ]


@pytest.mark.parametrize("sweep_dir", [True, False])
def test_an_earlier_versions_report_files_are_its_own(tmp_path, sweep_dir):
    """Folders reported on before report_files.json: in a sweep's directory every report name
    is the report's; elsewhere its report.md is known by its title (and the figures it shows)
    and its tables by their columns. They are replaced, and its stale figure removed; a figure
    the old report.md does not show is not the report's and stays."""
    _lr_pile(tmp_path)
    if sweep_dir:  # sweep.json listing the same runs
        entries = run_folders.subdir_runs(str(tmp_path))
        (tmp_path / "sweep.json").write_text(json.dumps({"runs": entries}))
    (tmp_path / "figures").mkdir()
    for name in ("metrics_vs_model.png", "metrics_vs_other.png"):
        (tmp_path / "figures" / name).write_bytes(b"old")
    (tmp_path / "report.md").write_text(
        "# Sweep report: /elsewhere\n\n| x |\n\n![m](figures/metrics_vs_model.png)\n"
    )
    (tmp_path / "results.csv").write_text("lr,seeds,eval/mse mean,eval/mse std,eval/mse n\n")
    (tmp_path / "timing.csv").write_text("lr,seeds,diverged,wall_s mean,wall_s std,wall_s n\n")
    (tmp_path / "runs.csv").write_text("index,name,status,lr\n")
    report.write_report(str(tmp_path), ["eval/mse"])
    assert (tmp_path / "report.md").read_text().startswith(report_files.TITLE + str(tmp_path))
    assert not (tmp_path / "figures" / "metrics_vs_model.png").exists()
    assert (tmp_path / "figures" / "metrics_vs_other.png").exists() is not sweep_dir


def test_a_results_csv_with_a_seeds_column_of_the_users_is_not_taken_for_the_reports(tmp_path):
    """Recognising an earlier report's table by its columns: a seeds column alone is not one."""
    _lr_pile(tmp_path)
    (tmp_path / "results.csv").write_text("model,seeds,accuracy\nA,3,0.9\n")
    with pytest.raises(UserError, match=r"already holds results.csv, which `ae-jax report`"):
        report.write_report(str(tmp_path), ["eval/mse"])


def test_a_report_killed_midway_is_rerun_over_its_own_files(tmp_path, monkeypatch):
    """report_files.json lists the files before they are written: a report stopped after its
    figure, before its report.md (a plain folder: nothing else says the figure is its own), is
    rerun, not refused."""
    _lr_pile(tmp_path)
    replace = files_lib.write_atomic

    def stopped(path, write, binary=False):
        if path.endswith("report.md"):
            raise KeyboardInterrupt
        replace(path, write, binary)

    monkeypatch.setattr(report, "write_atomic", stopped)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(str(tmp_path), ["eval/mse"])
    assert (tmp_path / "figures" / "metrics_vs_optim_learning_rate.png").exists()
    assert not (tmp_path / "report.md").exists()
    monkeypatch.undo()
    report.write_report(str(tmp_path), ["eval/mse"])
    assert (tmp_path / "report.md").exists()


def test_a_killed_reports_temporary_files_are_removed_by_the_next_once_stale(tmp_path):
    """A report killed while writing a figure leaves `.NAME.RANDOM.tmp` beside it, which no
    later report removed (a probe). The next report removes those of its own files once
    older than a report could be writing them; a fresh one (a report running beside it) and
    files not the report's stay."""
    _lr_pile(tmp_path)
    report.write_report(str(tmp_path), ["eval/mse"])
    figures = tmp_path / "figures"
    old = figures / ".metrics_vs_optim_learning_rate.png.d_nj4j1c.tmp"
    fresh = figures / ".metrics_vs_optim_learning_rate.png.5lg_jkev.tmp"
    table = tmp_path / ".results.csv.x1y2z3.tmp"
    mine = figures / ".my_plot.png.abc.tmp"
    for f in (old, fresh, table, mine):
        f.write_bytes(b"half a file")
    stale = time.time() - report_files.STALE_SECONDS - 60
    for f in (old, table, mine):
        os.utime(f, (stale, stale))
    report.write_report(str(tmp_path), ["eval/mse"])
    assert not old.exists() and not table.exists()
    assert fresh.exists() and mine.exists()


def test_a_deliberate_null_of_eval_json_is_without_a_value_not_not_finite(tmp_path):
    """eval.json writes ae_over_pca null, with pca/note saying why, when PCA is exact: no
    ratio on purpose. report.md said "(2 not finite)"; a null without a note (a NaN bound)
    is still not finite."""
    note = "PCA with 8 components for 4 features is exact: no ratio"
    evals = [{"ae_over_pca": 1.5, "vae/iwae": -9.0}] * 2
    evals += [{"ae_over_pca": None, "pca/note": note, "vae/iwae": None}] * 2
    runs = [
        ({"model.latent_dim": d, "train.seed": s}, "done", {"eval/mse": 0.1 * (s + 1)})
        for d in (2, 8)
        for s in range(2)
    ]
    _pile(tmp_path, runs, evals)
    out = report.write_report(str(tmp_path), ["eval/mse", "ae_over_pca", "vae/iwae"])
    row = out["rows"][1]
    assert row["model.latent_dim"] == 8
    assert (row["ae_over_pca n"], row["ae_over_pca not finite"]) == (0, 0)
    assert row["ae_over_pca without value"] == 2
    assert row["vae/iwae not finite"] == 2 and row["vae/iwae without value"] == 0
    table = (tmp_path / "report.md").read_text()
    assert "| – (2 without a value) | – (2 not finite) |" in table
    with open(tmp_path / "runs.csv") as f:
        assert [r["ae_over_pca"] for r in csv.DictReader(f)] == ["1.5", "1.5", "", ""]


def test_fields_that_change_nothing_learned_are_no_parameters_of_a_pile_of_runs(tmp_path):
    """The probe's mixed pile: runs differing in where their metrics went, whether figures
    and checkpoints were written, showed those as swept parameters (a figure each, series
    labelled by them). They are not; the learning rate is."""
    runs = []
    for i, (lr, s) in enumerate([(0.1, 0), (0.1, 1), (1.0, 0), (1.0, 1)]):
        fields = {
            "optim.learning_rate": lr,
            "train.seed": s,
            "train.figures": bool(i % 2),
            "train.loggers": ["tensorboard", "", "tensorboard,mlflow", ""][i],
            "train.mlflow_uri": f"file:///mlruns/{i}",
            "train.checkpoints": i < 2,
            "train.tracker_project": f"p{i}",
            "eval.at_end": True,
        }
        runs.append((fields, "done", {"eval/mse": lr + s}))
    _pile(tmp_path, runs)
    out = report.write_report(str(tmp_path), ["eval/mse"])
    assert out["params"] == ["optim.learning_rate"]
    assert [row["seeds"] for row in out["rows"]] == [2, 2]
    with open(tmp_path / "runs.csv") as f:
        assert next(csv.reader(f))[:5] == [
            "index",
            "name",
            "status",
            "optim.learning_rate",
            "train.seed",
        ]
    assert os.listdir(tmp_path / "figures") == ["metrics_vs_optim_learning_rate.png"]


def _table(settings: list[dict], metrics: dict[str, list[float]]) -> list[dict]:
    """A report's table: each setting's mean of each metric (NaN: no finite value), sd 0.1."""
    nan = float("nan")
    return [
        {
            **setting,
            **{
                f"{m} {k}": v
                for m, means in metrics.items()
                for k, v in (
                    ("mean", means[i]),
                    ("std", 0.1),
                    ("n", 0 if means[i] != means[i] else 2),
                    ("min", means[i] if means[i] == means[i] else nan),
                )
            },
        }
        for i, setting in enumerate(settings)
    ]


def _drawn(monkeypatch, workdir, params, table, metrics):
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report_figures.plot(str(workdir), params, table, metrics)
        for fig in saved:
            fig.canvas.draw()  # the layout, as savefig makes it
    # Matplotlib's warnings (layout, glyphs); not a ResourceWarning, which garbage collection
    # says of a file another test left open whenever it happens to run (CI: during this one).
    said = [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]
    assert said == []
    return saved


def test_a_figure_says_the_same_for_every_setting_only_where_it_is_so(tmp_path, monkeypatch):
    """The probe: learning rates 0.1 and 1e30, every run of the second diverged (NaN means).
    The title said "the same for every setting: eval/mse, ..." of metrics that had one value
    in one setting; now each is drawn (one point), and the title names the setting without a
    value. With a second setting with values, a metric equal in both is "the same for every
    setting that has a value"."""
    nan = float("nan")
    settings = [{"optim.learning_rate": lr} for lr in (0.1, 1e30)]
    metrics = {"eval/mse": [0.09, nan], "pca/mse": [0.001, nan], "n_params": [579, nan]}
    (fig,) = _drawn(
        monkeypatch, tmp_path, ["optim.learning_rate"], _table(settings, metrics), [*metrics]
    )
    title = fig.get_suptitle().replace("\n", " ")
    assert "same for every setting" not in title
    assert "no finite value at optim.learning_rate=1e+30" in title
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == list(metrics)
    settings.insert(1, {"optim.learning_rate": 1.0})
    metrics = {"eval/mse": [0.09, 0.03, nan], "pca/mse": [0.001, 0.001, nan]}
    (fig,) = _drawn(
        monkeypatch, tmp_path, ["optim.learning_rate"], _table(settings, metrics), [*metrics]
    )
    title = fig.get_suptitle().replace("\n", " ")
    assert title.endswith("not drawn, the same for every setting that has a value: pca/mse")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["eval/mse"]
    # the axis spans the settings with values: 0.1 and 1, both labelled (1e30 hid the 1)
    assert fig.axes[0].xaxis.get_major_formatter().seq == ["0.1", "1"]


def test_a_mean_over_the_seeds_left_by_divergence_is_ringed_and_said(tmp_path, monkeypatch):
    """A setting where 2 of 3 seeds diverged was drawn as an ordinary point (the mean of the
    one left), the title saying only "n = 1 to 3 seeds"; now ringed, and named in the title."""
    settings = [{"optim.learning_rate": lr} for lr in (0.1, 1.0, 10.0)]
    table = _table(settings, {"eval/mse": [0.09, 0.05, 0.3]})
    for row, diverged in zip(table, (0, 0, 2), strict=True):
        row.update(seeds=3, diverged=diverged, **{"eval/mse n": 3 - diverged})
    (fig,) = _drawn(monkeypatch, tmp_path, ["optim.learning_rate"], table, ["eval/mse"])
    title = fig.get_suptitle().replace("\n", " ")
    assert "ringed in black: a mean over fewer runs than its setting has, at " in title
    assert title.endswith("optim.learning_rate=10.0 (2 of 3 diverged)")
    assert _rings(fig) == [[[10.0, 0.3]]]
    table[2].update(diverged=0, **{"eval/mse n": 3})
    (fig,) = _drawn(monkeypatch, tmp_path, ["optim.learning_rate"], table, ["eval/mse"])
    assert "ringed" not in fig.get_suptitle() and not _rings(fig)
    # A probe: a setting whose sweep lists 3 runs, one failed ("2 of 3" in report.md), was an
    # ordinary point; and one of a single seed had no error bar, unsaid, as if of no spread.
    table[1].update(seeds=2, listed=3, **{"eval/mse n": 2})
    table[0].update(seeds=1, listed=1, **{"eval/mse n": 1})
    (fig,) = _drawn(monkeypatch, tmp_path, ["optim.learning_rate"], table, ["eval/mse"])
    title = fig.get_suptitle().replace("\n", " ")
    assert "has, at optim.learning_rate=1.0 (1 of 3 failed or unfinished) " in title
    assert title.endswith("no error bar (one seed) at optim.learning_rate=0.1")
    assert _rings(fig) == [[[1.0, 0.05]]]


def test_a_panels_setting_without_a_value_keeps_its_place_and_is_said(tmp_path, monkeypatch):
    """A setting with a value of every metric but one (ae_over_pca, null where PCA is exact)
    was no point in that panel, whose axis shrank to the other setting, unsaid (a probe);
    and an empty-string setting was written `=` in the title where the legend said `''`."""
    settings = [{"model.latent_dim": d, "data.path": ""} for d in (4, 30)]
    table = _table(settings, {"eval/mse": [0.1, 0.2], "ae_over_pca": [3.0, float("nan")]})
    params = ["data.path", "model.latent_dim"]
    (fig,) = _drawn(monkeypatch, tmp_path, params, table, ["eval/mse", "ae_over_pca"])
    title = fig.get_suptitle().replace("\n", " ")
    assert "no point of ae_over_pca at model.latent_dim=30, data.path='' (report.md says" in title
    assert [ax.get_xlim() for ax in fig.axes[1:2]] == [fig.axes[0].get_xlim()]
    assert fig.axes[1].get_xlim()[1] > 30  # (4 to 4.5 before)
    # A metric's settings without a point, named together (a seed study's title ran to three
    # lines naming vae/active_units once per autoencoder, as of "no finite value").
    wide = [{"model.latent_dim": d, "data.path": ""} for d in (4, 8, 30)]
    table3 = _table(wide, {"eval/mse": [0.1, 0.2, 0.3], "ae_over_pca": [3.0] + [float("nan")] * 2})
    (fig,) = _drawn(monkeypatch, tmp_path, params, table3, ["eval/mse", "ae_over_pca"])
    title = fig.get_suptitle().replace("\n", " ")
    said = "no point of ae_over_pca at model.latent_dim=8, data.path=''"
    assert said + "; model.latent_dim=30, data.path='' (report.md says why)" in title
    # Two series of equal means: the later one's filled square hid the first's circle and its
    # line the first's (a probe); a later series is hollow and dashed, the first shows through.
    more = [{"model.latent_dim": d, "data.path": "b.csv"} for d in (4, 30)]
    table += _table(more, {"eval/mse": [0.1, 0.2], "ae_over_pca": [3.0, 3.0]})
    figs = _drawn(monkeypatch, tmp_path, params, table, ["eval/mse"])
    (fig,) = [f for f in figs if f.axes[0].get_xlabel() == "model.latent_dim"]
    first, later = (c.lines[0] for c in fig.axes[0].containers)
    assert (first.get_linestyle(), later.get_linestyle()) == ("-", "--")
    assert first.get_markerfacecolor() != "none" and later.get_markerfacecolor() == "none"


def test_a_bar_reaching_0_on_a_log_axis_is_left_out_and_said(tmp_path, monkeypatch):
    """A mean of 1e5 with a sd of 2e5 on a log value axis: its bar, cut at 0, was drawn down to
    the axis's floor, as if its seeds spread over 15 decades (a probe). No lower bar, said."""
    table = _table([{"optim.learning_rate": lr} for lr in (0.01, 1.0)], {"eval/loss": [1.0, 1e5]})
    table[1]["eval/loss std"] = 2e5
    (fig,) = _drawn(monkeypatch, tmp_path, ["optim.learning_rate"], table, ["eval/loss"])
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    (bars,) = ax.containers[0][2]  # the error bars' LineCollection: one segment per point
    low = [float(min(seg[:, 1])) for seg in bars.get_segments()]
    assert low == [pytest.approx(0.9), 1e5]  # the first's sd 0.1 kept; the second's none
    title = fig.get_suptitle().replace("\n", " ")
    assert "(cut to no lower bar where it reaches 0 on a log axis)" in title  # no "at 0": a review


def _rings(fig) -> list:
    """The ringed points of a figure's first panel, one list per ring collection."""
    rings = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    return [c.get_offsets().tolist() for c in rings]


def test_a_long_title_and_legend_fit_the_figure(tmp_path, monkeypatch):
    """The title naming many constant metrics was cut off at both edges, and a legend of long
    labels squeezed the panels to nothing (matplotlib's "constrained_layout not applied"
    warnings, 23 on the probe's pile) and ran off the figure. Both now fit: wrapped, and the
    figure sized to hold the legend beside the panels."""
    constant = {f"metric/number_{i}_with_a_long_name": [1.0] * 6 for i in range(12)}
    metrics = {"eval/mse": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], **constant}
    settings = [
        {"optim.learning_rate": lr, "data.path": f"/home/someone/projects/autoencoders/{k}.csv"}
        for lr in (0.01, 0.1)
        for k in ("first_table", "second_table_with_a_longer_name", "x")
    ]
    params = ["data.path", "optim.learning_rate"]
    (_, fig) = _drawn(monkeypatch, tmp_path, params, _table(settings, metrics), [*metrics])
    width, height = fig.bbox.width, fig.bbox.height
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    legend = fig.legends[0].get_window_extent(renderer)
    panel = fig.axes[0].get_window_extent(renderer)
    for box in (title, legend, panel):
        assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height
    assert title.x1 <= legend.x0 and panel.x1 <= legend.x0  # beside, not over each other
    assert panel.width > 200  # pixels at 150 dpi: a panel, not a sliver
    assert "metric/number_11_with_a_long_name" in fig.get_suptitle()
    (categorical, _) = _drawn(monkeypatch, tmp_path, params, _table(settings, metrics), [*metrics])
    ticks = [t.get_text() for t in categorical.axes[0].get_xticklabels()]
    assert ticks[0] == "/home/so…first_table.csv" and ticks[2] == "/home/so…oencoders/x.csv"
    assert all(len(t) == report_figures.SHORT for t in ticks)


def test_swept_values_with_dollar_signs_are_drawn_as_written(tmp_path, monkeypatch):
    """A swept value with two "$" (a file's name) was read by matplotlib as mathematics and
    failed the report's figure ("Double subscript": a probe of the run figures): values on the
    axis, in the legend and in the title are drawn as written."""
    metrics = {"eval/mse": [0.1, 0.2, 0.3, 0.4]}
    settings = [
        {"data.path": path, "model.name": name}
        for path in ("/data/$a_b_c$.csv", "/data/b.csv")
        for name in ("$x_1_2$", "autoencoder")
    ]
    params = ["data.path", "model.name"]
    figs = _drawn(monkeypatch, tmp_path, params, _table(settings, metrics), [*metrics])
    ticks = [t.get_text() for fig in figs for t in fig.axes[0].get_xticklabels()]
    # (each '$' escaped once: matplotlib draws '\$' as '$', and '\\$' as '\' then math)
    assert any(r"\$a_b_c\$" in t for t in ticks) and any(r"\$x_1_2\$" in t for t in ticks)
    assert not any("\\\\$" in t for t in ticks)


def test_copies_of_one_run_are_refused_not_counted_as_seeds(tmp_path):
    """A folder of a/, b/, c/ copied from one run was reported as one setting of n = 3 seeds
    with a standard deviation of 0; copies (one config, seed included) are now refused."""
    _pile(
        tmp_path,
        [({"optim.learning_rate": 0.1, "train.seed": 0}, "done", {"eval/mse": 0.5})] * 2
        + [({"optim.learning_rate": 0.1, "train.seed": 1}, "done", {"eval/mse": 0.7})],
    )
    with pytest.raises(UserError, match=r"runs 'r0' and 'r1' have the same config, seed included"):
        report.write_report(str(tmp_path), ["eval/mse"])
    assert not (tmp_path / "results.csv").exists()
    (tmp_path / "r1" / "config.json").write_text(
        json.dumps({"optim": {"learning_rate": 0.1}, "train": {"seed": 2}})
    )
    out = report.write_report(str(tmp_path), ["eval/mse"])
    assert [r["seeds"] for r in out["rows"]] == [3]
    # An unfinished copy (a launch killed before its first checkpoint) has no numbers to count
    # twice: reported as unfinished, not refused (a README walkthrough).
    (tmp_path / "r9").mkdir()
    (tmp_path / "r9" / "config.json").write_text((tmp_path / "r0" / "config.json").read_text())
    out = report.write_report(str(tmp_path), ["eval/mse"])
    assert [r["seeds"] for r in out["rows"]] == [3]
    assert "3 finished runs of the 4 found (1 unfinished)" in (tmp_path / "report.md").read_text()


def _software(**changes) -> dict:
    return {
        "python": "3.11.7",
        "ae_jax": "0.1.0",
        "jax": "0.10.2",
        "jaxlib": "0.10.2",
        "flax": "0.12.8",
        "optax": "0.2.8",
        "orbax-checkpoint": "0.12.8",
        "numpy": "2.4.6",
        "backend": "cpu",
        "device_kind": "cpu",
        "xla_flags": "",
        **changes,
    }


def test_report_names_the_software_and_says_when_runs_differ_in_it(tmp_path, caplog):
    one = (
        "Computed by Python 3.11.7; ae_jax 0.1.0, jax 0.10.2, jaxlib 0.10.2, flax 0.12.8, "
        "optax 0.2.8, orbax-checkpoint 0.12.8, numpy 2.4.6 on cpu (cpu)."
    )
    runs = [
        ({"optim.learning_rate": 0.1, "train.seed": s}, "done", {"eval/mse": 1.0 + s})
        for s in (0, 1)
    ]
    _pile(tmp_path / "same", [(f, st, {**v, "software": _software()}) for f, st, v in runs])
    report.write_report(str(tmp_path / "same"), ["eval/mse"])
    assert one in (tmp_path / "same" / "report.md").read_text().splitlines()
    # One run trained under another jax, one evaluated again under XLA flags: three kinds.
    summaries = [_software(), _software(jax="0.12.0", jaxlib="0.12.0")]
    evals = [{"software": _software(xla_flags="--xla_gpu_deterministic_ops=true")}, {}]
    _pile(
        tmp_path / "mixed",
        [(f, st, {**v, "software": sw}) for (f, st, v), sw in zip(runs, summaries, strict=True)],
        evals,
    )
    report.write_report(str(tmp_path / "mixed"), ["eval/mse"])
    md = (tmp_path / "mixed" / "report.md").read_text()
    assert one not in md and "computed by different software" in md
    assert "- 1 run(s): Python 3.11.7; ae_jax 0.1.0, jax 0.10.2, jaxlib 0.10.2," in md
    assert "- 1 run(s): Python 3.11.7; ae_jax 0.1.0, jax 0.12.0, jaxlib 0.12.0," in md
    assert "on cpu (cpu), XLA_FLAGS='--xla_gpu_deterministic_ops=true'" in md
    assert "; and software not recorded (written by an ae_jax before" in md  # {} eval
    assert "computed by different software" in caplog.text
    # Every run extended twice under other jaxes: each run said once, by the set of software
    # it saw (in whichever order its files list them), and no warning (each run was counted
    # under each, thrice the runs, "may differ": a probe).
    caplog.clear()
    v = [_software(jax=j, jaxlib=j) for j in ("0.4.0", "0.5.0", "0.6.0")]
    _pile(
        tmp_path / "extended",
        [
            (f, st, {**val, "software": v[2], "earlier_software": earlier})
            for (f, st, val), earlier in zip(runs, [[v[1], v[0]], [v[0], v[1]]], strict=True)
        ],
        [{"software": v[2]}] * 2,
    )
    report.write_report(str(tmp_path / "extended"), ["eval/mse"])
    md = (tmp_path / "extended" / "report.md").read_text()
    assert "different software" not in md + caplog.text
    assert "Every run was computed in parts by the same software" in md
    lines = md.splitlines()
    assert sum(ln.startswith("- Python 3.11.7; ae_jax 0.1.0, jax 0.") for ln in lines) == 3
    assert all(f"jax {j}, jaxlib {j}" in md for j in ("0.4.0", "0.5.0", "0.6.0"))


def test_a_legend_names_each_swept_field_in_full():
    """'name=digits' was data.name's label, which reads as model.name; a long label wraps."""
    label = report_figures.series_label(("data.name", "loss.l1_weight"), ("digits", 0.001))
    assert label == "data.name=digits, loss.l1_weight=0.001"
    long = report_figures.series_label(("model.encoder_widths", "data.name"), ((64, 32), "x" * 20))
    assert long.split("\n") == ["model.encoder_widths=(64, 32),", "data.name=" + "x" * 20]


def test_a_tuple_setting_is_written_as_a_tuple_in_figures_as_in_run_names(tmp_path, monkeypatch):
    """model.encoder_widths swept over (16,) and (16, 8): run names and report.md say so, the
    figure's ticks and legend said [16] and [16, 8] (JSON's lists)."""
    settings = [
        {"model.encoder_widths": w, "train.seed": s} for w in ((16,), (16, 8)) for s in (0, 1)
    ]
    table = _table(settings, {"eval/mse": [0.1, 0.2, 0.3, 0.4]})
    params = ["model.encoder_widths", "train.seed"]
    (fig, *_) = _drawn(monkeypatch, tmp_path, params, table, ["eval/mse"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["(16,)", "(16, 8)"]
    assert report_figures.series_label(("model.encoder_widths",), ([16, 8],)) == (
        "model.encoder_widths=(16, 8)"
    )


def test_an_empty_setting_is_written_as_an_empty_string_not_an_empty_cell(tmp_path, monkeypatch):
    """data.path swept over its default '' (the data set data.name names) and a file: report.md
    had an empty cell for the default, its figure an empty tick label (a probe)."""
    _pile(
        tmp_path,
        [
            ({"data.path": p, "train.seed": s}, "done", {"eval/mse": 0.1 + s})
            for p in ("", "/data/x.csv")
            for s in (0, 1)
        ],
    )
    report.write_report(str(tmp_path), ["eval/mse"])
    rows = [line for line in (tmp_path / "report.md").read_text().splitlines() if "| 2 |" in line]
    assert [r.split(" | ")[0] for r in rows] == ["| ''", "| /data/x.csv"]
    with open(tmp_path / "results.csv") as f:  # the value itself, for a program that reads it
        assert [r["data.path"] for r in csv.DictReader(f)] == ["", "/data/x.csv"]
    table = _table([{"data.path": p} for p in ("", "/data/x.csv")], {"eval/mse": [0.1, 0.2]})
    (fig,) = _drawn(monkeypatch, tmp_path, ["data.path"], table, ["eval/mse"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["''", "/data/x.csv"]
    assert report_figures.series_label(("data.path",), ("",)) == "data.path=''"


def test_means_equal_but_for_float_rounding_are_drawn_flat_without_an_offset(tmp_path, monkeypatch):
    """eval/mse 0.09852795 and 0.09852796 (an L1 weight of 0 and 1e-3 after one epoch) were a
    full-height falling line on an axis labelled '1e-9+9.852795e-2'."""
    settings = [{"loss.l1_weight": w} for w in (0.0, 1e-3)]
    table = _table(settings, {"eval/mse": [0.09852795, 0.09852796]})
    for row in table:
        row["eval/mse std"] = 0.0  # one seed
    (fig,) = _drawn(monkeypatch, tmp_path, ["loss.l1_weight"], table, ["eval/mse"])
    ax = fig.axes[0]
    assert ax.yaxis.get_offset_text().get_text() == ""
    lo, hi = ax.get_ylim()
    assert lo < 0.0985 and hi > 0.0986  # +-5% of the value: flat


def test_runs_csv_writes_a_setting_as_results_csv_does_so_the_two_join(tmp_path):
    """runs.csv wrote a run's overrides as JSON ('"relu"', '[8]') where results.csv wrote the
    setting ('relu', '(8,)'): a join on the swept fields gave no rows (a probe)."""
    runs = [
        (
            {"model.activation": a, "model.encoder_widths": w, "train.seed": s},
            "done",
            {"eval/mse": s},
        )
        for a in ("relu", "tanh")
        for w in ([8], [16, 8])
        for s in (0, 1)
    ]
    _pile(tmp_path, runs)
    report.write_report(str(tmp_path), ["eval/mse"])
    keys = ["model.activation", "model.encoder_widths"]
    with open(tmp_path / "results.csv") as f:
        settings = {tuple(r[k] for k in keys) for r in csv.DictReader(f)}
    with open(tmp_path / "runs.csv") as f:
        per_run = [tuple(r[k] for k in keys) for r in csv.DictReader(f)]
    assert len(settings) == 4 and set(per_run) == settings and len(per_run) == 8
    assert ("relu", "(8,)") in settings


def test_the_seeds_behind_a_reports_points_are_said_in_words():
    """'over n = 1/3 seeds' read as a third of a seed, or 1 of 3 (a probe)."""
    assert report_text.seeds_said([3]) == "n = 3 seeds"
    assert report_text.seeds_said([1, 3]) == "n = 1 or 3 seeds"
    assert report_text.seeds_said([1, 2, 5]) == "n = 1 to 5 seeds"


def test_timing_csv_counts_the_wall_times_of_runs_that_diverged(tmp_path):
    """A diverged run trained in the program of the others: its group's wall time is a
    measurement and timing.csv counts it (it showed nan, n = 0), while its metrics enter no
    mean. Nor do its epoch_s and rows_per_s, of its last epoch, an earlier one than the
    others' (a setting whose seeds diverged in epoch 1, with the program's first run, showed
    a 35x lower throughput: a probe)."""
    times = lambda w, e: {"wall_s": w, "epoch_s": e, "rows_per_s": 100 / e}  # noqa: E731
    runs = [
        (
            {"optim.learning_rate": 1e3, "train.seed": s},
            "diverged",
            {"eval/mse": 9.0, **times(4.0, 3.5)},
        )
        for s in (0, 1)
    ] + [
        ({"optim.learning_rate": 1e3, "train.seed": 2}, "done", {"eval/mse": 0.3, **times(4, 0.1)}),
        ({"optim.learning_rate": 0.1, "train.seed": 0}, "done", {"eval/mse": 0.1, **times(2, 0.1)}),
    ]
    _pile(tmp_path, runs)
    report.write_report(str(tmp_path), ["eval/mse"])
    with open(tmp_path / "timing.csv") as f:
        rows = {r["optim.learning_rate"]: r for r in csv.DictReader(f)}
    assert (rows["1000.0"]["wall_s mean"], rows["1000.0"]["wall_s n"]) == ("4.0", "3")
    for m, value in (("epoch_s", 0.1), ("rows_per_s", 1000.0)):
        assert (float(rows["1000.0"][f"{m} mean"]), rows["1000.0"][f"{m} n"]) == (value, "1")
    with open(tmp_path / "results.csv") as f:
        diverged = next(r for r in csv.DictReader(f) if r["optim.learning_rate"] == "1000.0")
    assert (diverged["eval/mse mean"], diverged["eval/mse n"]) == ("0.3", "1")


def test_a_report_names_the_draws_of_its_importance_weighted_bounds(tmp_path, monkeypatch):
    """vae/iwae moves with k (eval.iw_samples): the report said "IWAE bound" with no k while a
    shrunk ablation's runs had k = 8, not the config's 1000 (a probe)."""
    evals = [{"vae/iwae": -90.0 - s, "vae/iwae_k": 8} for s in range(4)]
    runs = [
        ({"loss.beta": b, "train.seed": s}, "done", {"eval/mse": 0.1})
        for b in (1.0, 4.0)
        for s in (0, 1)
    ]
    _pile(tmp_path, runs, evals)
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    report.write_report(str(tmp_path), ["eval/mse", "vae/iwae"])
    assert "the importance-weighted bounds with k = 8 posterior draws" in (
        (tmp_path / "report.md").read_text()
    )
    labels = [ax.get_ylabel().replace("\n", " ") for ax in saved[0].axes]
    assert "IWAE bound, k = 8 (nats per example)" in labels


def test_a_report_whose_every_run_diverged_says_so_and_does_not_crash(tmp_path, monkeypatch):
    """Every run of a learning-rate sweep diverged, the metric asked for: the figure's title
    raised IndexError (a review); it says that no setting has a finite value."""
    runs = [
        ({"optim.learning_rate": lr, "train.seed": s}, "diverged", {"eval/mse": float("nan")})
        for lr in (1e3, 1e4)
        for s in (0, 1)
    ]
    saved = _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    assert saved and saved[0].get_suptitle().startswith("no setting has a finite value")


def test_report_md_says_the_seeds_behind_its_means_when_runs_diverged(tmp_path, monkeypatch):
    """report.md's header said "over n = 3 seeds per setting" where 2 of 3 runs, or all 3,
    diverged and entered no mean; a setting whose every run diverged showed a bare "–"."""
    status = {0.1: ("done",) * 3, 1.0: ("done", "diverged", "diverged"), 1e30: ("diverged",) * 3}
    runs = [
        (
            {"optim.learning_rate": lr, "train.seed": s},
            st,
            {"eval/mse": lr + s if st == "done" else float("nan")},
        )
        for lr, sts in status.items()
        for s, st in enumerate(sts)
    ]
    _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    md = (tmp_path / "report.md").read_text().replace("\n", " ")
    assert "mean ± sample standard deviation (ddof 1) over the seeds that did not diverge, " in md
    assert "n = 0 to 3 seeds per setting of the 3 seeds run; runs that diverged enter no" in md
    assert "over n = 3 seeds per setting" not in md
    table = [
        line for line in (tmp_path / "report.md").read_text().splitlines() if line.startswith("| 1")
    ]
    assert [line.split(" | ")[-1] for line in table] == ["1 (n = 1) |", "– (3 diverged) |"]


def _report_figures(root, monkeypatch, runs, metrics) -> list:
    """The figures `write_report` draws of a pile of `runs` (see `_pile`), not written."""
    _pile(root, runs)
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    report.write_report(str(root), metrics)
    return saved


@pytest.mark.parametrize("huge", [1.1e16, 30.0])
def test_means_decades_apart_are_drawn_on_a_log_value_axis(tmp_path, monkeypatch, huge):
    """One setting's mean of 1.1e16 (a diverging learning rate) drew the others, 2.0 to 3.7,
    flat on 0 on a linear axis (a probe): positive means three decades apart or more get a log
    value axis, said in its label; closer ones keep the linear axis."""
    runs = [
        ({"optim.learning_rate": lr, "train.seed": s}, "done", {"eval/mse": mean + 0.1 * s})
        for lr, mean in ((0.001, 2.0), (0.01, 3.7), (1000.0, huge))
        for s in (0, 1)
    ]
    (fig,) = _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    ax = fig.axes[0]
    log = huge > 1e3 * 2.0
    assert ax.get_yscale() == ("log" if log else "linear")
    assert ("(log axis)" in ax.get_ylabel()) == log


def test_swept_values_are_labelled_without_touching_each_other(tmp_path, monkeypatch):
    """Learning rates 0.01, 0.12, 0.14, 0.16 and 0.18 on a log axis: the labels of 0.12 and
    0.16 ran together as '0.120.16' in the panel, and 0.18 had none (a probe). Measured on the
    laid-out figure now: no two labels touch, and the first and the last value are labelled."""
    rates = (0.01, 0.12, 0.14, 0.16, 0.18)
    runs = [
        ({"optim.learning_rate": lr, "train.seed": s}, "done", {"eval/mse": 0.1 + lr})
        for lr in rates
        for s in (0, 1)
    ]
    (fig,) = _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    shown = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.get_xticklabels()]
    shown = [(text, box) for text, box in shown if text]
    assert [text for text, _ in shown][0] == "0.01" and shown[-1][0] == "0.18"
    for (_, a), (_, b) in zip(shown, shown[1:], strict=False):
        assert a.x1 < b.x0, shown


def test_slanted_swept_values_are_labelled_where_they_do_not_touch(tmp_path, monkeypatch):
    """The sparsity ablation's L1 weights, 0 and 1e-5 to 1, are slanted: 1e-4 went unlabelled,
    its upright box overlapping 1e-05's, though the slanted labels are far apart (a probe).
    Every value is labelled now, and each two neighbours' strips are a text's height apart
    across them at least (their ticks' distance times the sine of the slant)."""
    weights = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)
    runs = [
        ({"loss.l1_weight": w, "train.seed": s}, "done", {"eval/mse": 0.1 + w + 0.01 * s})
        for w in weights
        for s in (0, 1)
    ]
    (fig,) = _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    labels = fig.axes[0].get_xticklabels()
    assert [t.get_text() for t in labels] == ["0", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1"]
    slant = math.radians(labels[0].get_rotation())
    assert slant > 0
    ticks = [t.get_window_extent(renderer).x1 for t in labels]  # right-aligned at the tick
    font = labels[0].get_fontproperties()
    _, high, _ = renderer.get_text_width_height_descent("0.0001", font, False)
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert min(gaps) * math.sin(slant) >= high


@pytest.mark.parametrize("weights", [(0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0), (0.0, 1e-4, 1e-3)])
def test_a_swept_zero_on_a_log_axis_spreads_the_values_over_the_panel(
    tmp_path, monkeypatch, weights
):
    """A sweep of 0 and powers of ten ("log axis, linear near 0"): the axis's limits were fixed
    in linear space before the scale was set (the value axis's check read them), so the left
    ~40% of each panel was empty and the largest value sat on the right frame, its marker cut
    in half (a README walkthrough; the shipped sparsity ablation's figure)."""
    runs = [
        ({"loss.l1_weight": w, "train.seed": s}, "done", {"eval/mse": 0.1 + w + 0.01 * s})
        for w in weights
        for s in (0, 1)
    ]
    saved = _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    (fig,) = saved
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog" and "linear near 0" in ax.get_xlabel()
    to_axes = ax.transData + ax.transAxes.inverted()
    left, right = (to_axes.transform((x, 0.1))[0] for x in (0.0, max(weights)))
    assert 0.0 < left < 0.1 and 0.9 < right < 1.0  # within the frame, spread over the panel


@pytest.mark.parametrize("axis", ["categories", "values"])
def test_every_series_marker_stays_visible(tmp_path, monkeypatch, axis):
    """Seven series (l1 weights) over two code activations: from the 4th on, markers shrank to
    2.5 pt dots, hard to find in the panel or its legend (a README walkthrough). Series side by
    side over categories keep one size; over a value axis, where they share their x, each
    later one is a little smaller, to 3.5 pt at least."""
    weights = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)
    across = ("sigmoid", "relu") if axis == "categories" else (0.5, 1.0)
    field = "model.code_activation" if axis == "categories" else "optim.learning_rate"
    runs = [
        ({field: a, "loss.l1_weight": w, "train.seed": s}, "done", {"eval/mse": 0.1 + w + s})
        for a in across
        for w in weights
        for s in (0, 1)
    ]
    saved = _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    fig = next(f for f in saved if field in f.axes[0].get_xlabel())
    lines = fig.axes[0].lines  # (the error bars' caps are lines of "_" markers)
    sizes = [line.get_markersize() for line in lines if line.get_marker() in list("osD^v<>p")]
    assert len(sizes) == len(weights)
    if axis == "categories":
        assert set(sizes) == {5.0}
    else:
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1] >= 3.5


def test_the_configs_report_metrics_keep_a_vaes_bounds_under_the_names_they_have(tmp_path, caplog):
    """A sweep config's REPORT_METRICS naming vae/iwae and vae/elbo reported neither on grey
    data, where the runs have them as vae/bce_iwae_bound and vae/bce_bound, and said nothing;
    --metrics naming them dropped them with a warning, or was refused when they were all it
    named (the README promised the renaming for all three; the config's others absent
    stay unsaid, as a config may name metrics for several kinds of model); nor did report.md
    repeat eval.json's note on what those numbers are, or say which evaluation it reports (a
    probe)."""
    note = "a Bernoulli cross-entropy on grey pixels, no log-probability"
    evals = [
        {"vae/bce_iwae_bound": -90.0 - s, "vae/bce_bound": -91.0 - s, "vae/iwae_note": note}
        for s in range(4)
    ]
    runs = [
        ({"loss.beta": b, "train.seed": s}, "done", {"eval/mse": 0.1})
        for b in (1.0, 4.0)
        for s in (0, 1)
    ]
    _pile(tmp_path, runs, evals)
    wanted = ["vae/iwae", "vae/elbo", "eval/mse", "vae/active_units"]
    (tmp_path / "report_metrics.json").write_text(json.dumps({"metrics": wanted}))
    out = report.write_report(str(tmp_path))
    assert out["metrics"] == ["vae/bce_iwae_bound", "vae/bce_bound", "eval/mse"]
    md = (tmp_path / "report.md").read_text()
    assert f"- vae/iwae_note (4 of 4 runs): {note}" in md
    assert "The evaluation numbers are each run's own eval.json: its parameters at its last" in md
    caplog.set_level("WARNING")
    out = report.write_report(str(tmp_path), ["vae/iwae", "vae/elbo", "eval/mse"])
    assert out["metrics"] == ["vae/bce_iwae_bound", "vae/bce_bound", "eval/mse"]
    assert "which no finished run has" not in caplog.text
    assert report.write_report(str(tmp_path), ["vae/iwae"])["metrics"] == ["vae/bce_iwae_bound"]


def test_a_report_of_runs_none_of_them_evaluated_says_so(tmp_path, caplog):
    """Every run trained with eval.at_end=False: the report lacked pca/mse, ae_over_pca and the
    code/ numbers without a word (the warning was for some runs evaluated, not all)."""
    _lr_pile(tmp_path)
    caplog.set_level("WARNING")
    report.write_report(str(tmp_path))
    assert (
        "none of the finished runs has an eval.json (trained with eval.at_end=False?)"
        in caplog.text
    )
    assert "The evaluation numbers are" not in (tmp_path / "report.md").read_text()


def test_report_md_shows_counts_whole_and_huge_values_as_the_others():
    """A parameter count reads 80913, not 8.091e+04; a diverging loss that happens to be a
    whole float (3.557e+14) read 355709666899968 beside 3.557e+14 in the next column."""
    row = {"seeds": 2}
    for m, mean, std in (("n_params", 80913.0, 0.0), ("eval/l1", 355709666899968.0, 6.9e14)):
        row.update({f"{m} mean": mean, f"{m} std": std, f"{m} n": 2})
        row.update({f"{m} not finite": 0, f"{m} without value": 0})
    assert report._cell(row, "n_params") == "80913 ± 0"
    assert report._cell(row, "eval/l1") == "3.557e+14 ± 6.9e+14"


def test_a_mean_is_shown_down_to_its_sds_second_figure():
    """A mean had 4 significant figures beside its sd's 2: "-24.46 ± 0.0063" (the README's
    beta-VAE table) hid differences at the scale of the spread (an audit). It now reaches the
    sd's second figure (7 at most: the runs' numbers are float32); 4 figures where those say
    more, one value alike."""
    cases = [
        (-24.461234, 0.0063421, 3, "-24.4612 ± 0.0063"),
        (0.00038984, 0.000151, 3, "0.0003898 ± 0.00015"),  # as before
        (3.0123456, 0.42, 3, "3.012 ± 0.42"),
        (12.345678, 0.0012, 2, "12.3457 ± 0.0012"),
        (9.99996, 0.0063, 2, "10.0000 ± 0.0063"),  # rounded up a decade: one figure more
        (5.8625570, 3.5e-07, 3, "5.862557 ± 3.5e-07"),  # a float32's 7 figures at most
        (-24.461234, float("nan"), 1, "-24.46"),  # one value: no sd, 4 figures
        (-24.461234, 0.0, 3, "-24.46 ± 0"),
    ]
    for mean, std, n, text in cases:
        row = {"seeds": n, "m mean": mean, "m std": std, "m n": n}
        row.update({"m not finite": 0, "m without value": 0})
        assert report._cell(row, "m") == text, (mean, std)


def test_the_report_command_prints_report_md_under_an_ascii_locale(tmp_path):
    """Under a strict ASCII locale (no UTF-8 mode), `ae-jax report` read its own report.md
    ('±') with the locale's codec: UnicodeDecodeError, exit status 1 (a probe)."""
    _lr_pile(tmp_path)
    env = {"PYTHONUTF8": "0", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PATH": "/usr/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "ae_jax", "report", f"--workdir={tmp_path}", "--metrics=eval/mse"],
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert "| 1.0 | 2 | 1.500 \\xb1 0.71 |" in r.stdout.decode("ascii")  # (escaped)
    # A folder given with ~ (a probe: the report was written, then reading it back raised).
    home = {**env, "HOME": str(tmp_path.parent)}
    r = subprocess.run(
        [sys.executable, "-m", "ae_jax", "report", f"--workdir=~/{tmp_path.name}"],
        capture_output=True,
        env=home,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert "| 1.0 | 2 | 1.500 \\xb1 0.71 |" in r.stdout.decode("ascii")


@pytest.mark.parametrize(
    "args, match",
    [
        ((None,), r"workdir: expected a directory path, .* got None"),
        # a str of metrics was read letter by letter ('e', 'v', 'a', ...)
        (("DIR", "eval/mse"), r"metrics: expected a list of metric names, .* got 'eval/mse'"),
    ],
)
def test_write_report_refuses_arguments_of_another_type(tmp_path, args, match):
    _lr_pile(tmp_path)
    with pytest.raises(UserError, match=match):
        report.write_report(*[str(tmp_path) if a == "DIR" else a for a in args])
    assert not (tmp_path / "report.md").exists()


def test_a_vae_report_says_where_its_numbers_come_from_and_rings_points_of_fewer_runs(
    tmp_path, monkeypatch
):
    """A probe's β-VAE sweep: report.md said its evaluation numbers were each run's eval.json,
    but eval/recon and eval/kl are training's last validation pass (summary.json, one posterior
    draw per row: their sum was not -vae/elbo); vae/active_units 0 in every run (every VAE
    collapsed) was left out of report.md and the figures unsaid; and a point whose mean had
    fewer runs, one not evaluated, was drawn like the others (only diverged ones were ringed)."""
    runs, evals = [], []
    for beta in (0.5, 1.0):
        for seed in (0, 1):
            fields = {"model.name": "vae", "loss.beta": beta, "train.seed": seed}
            numbers = {"eval/recon": 20.0 + beta + seed, "eval/kl": beta + seed}
            runs.append((fields, "done", numbers))
            evals.append({"vae/iwae": -21.0 - 2 * beta - seed, "vae/active_units": 0})
    _pile(tmp_path, runs, evals)
    (tmp_path / "r3" / "eval.json").unlink()  # beta 1, seed 1: not evaluated
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    out = report.write_report(str(tmp_path))
    assert "vae/active_units" in out["metrics"] and "eval/kl" in out["metrics"]
    md = (tmp_path / "report.md").read_text().replace("\n", " ")
    assert "eval/recon, eval/kl are not from eval.json but training's own" in md
    assert "so its eval/recon + eval/kl is not eval.json's ELBO-form bound" in md
    assert "| -22.50 ± 0.71 | 0 ± 0 |" in md  # vae/active_units: 0 in every run, shown
    (fig,) = saved
    title = fig.get_suptitle().replace("\n", " ")
    assert "not drawn, the same for every setting: vae/active_units" in title
    assert (
        "ringed in black: a mean over fewer runs than its setting has, at loss.beta=1.0 "
        "(vae/iwae 1 not evaluated)" in title
    )
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    ring = [c for c in panels["vae/iwae"].collections if isinstance(c, PathCollection)]
    assert [c.get_offsets().tolist() for c in ring] == [[[1.0, -23.0]]]
    assert not [c for c in panels["eval/kl"].collections if isinstance(c, PathCollection)]
    # A plain autoencoder's KL, 0 by construction, gets no column; asked for, it does.
    plain = tmp_path / "plain"
    _pile(
        plain,
        [
            ({"loss.l1_weight": 0.0, "train.seed": s}, "done", {"eval/mse": 0.1, "eval/kl": 0.0})
            for s in (0, 1)
        ],
    )
    assert report.write_report(str(plain))["metrics"] == ["eval/mse"]
    # `--metrics=,,` (or a trailing comma) named a metric '': a blank warning, then an error.
    for empty in (["", "", ""], ["eval/mse", " "]):
        with pytest.raises(UserError, match=r"names an empty metric; expected metric names"):
            report.write_report(str(plain), empty)
    assert report.write_report(str(plain), ["eval/mse", "eval/kl"])["metrics"] == [
        "eval/mse",
        "eval/kl",
    ]


def test_a_folder_of_runs_counts_its_unfinished_runs_as_found_not_as_a_sweeps(tmp_path):
    """A plain folder of runs (no sweep.json) was reported as "2 finished runs of the 3 the
    sweep lists", naming a sweep there is not (a README walkthrough)."""
    _lr_pile(tmp_path, rates=(0.1,))
    unfinished = tmp_path / "r2"  # a launch killed before its first checkpoint: no summary
    unfinished.mkdir()
    config = {"optim": {"learning_rate": 0.1}, "train": {"seed": 2}}
    (unfinished / "config.json").write_text(json.dumps(config))
    (row,) = report.write_report(str(tmp_path))["rows"]
    assert (row["seeds"], row["listed"]) == (2, 3)  # (what its figure's ring is told)
    md = (tmp_path / "report.md").read_text()
    assert "2 finished runs of the 3 found (1 unfinished), 1 setting" in md, md[:400]
    assert "the sweep lists" not in md


def test_a_setting_without_a_finished_run_is_said_in_report_md_and_each_figure(
    tmp_path, monkeypatch
):
    """A sweep whose depth-4 runs all failed (or are unfinished) has no row and no point of
    that setting: its figures said nothing of it, a complete-looking sweep (a probe). Now
    report.md and the figure's title name the setting and its runs. A metric no run of a
    setting has (a VAE's, of a plain autoencoder) is said so in its cell, not a bare dash."""
    listed = [{"model.depth": d, "train.seed": s} for d in (1, 2, 4) for s in (0, 1)]
    done = [
        (f, "done", {"eval/mse": 0.1 * f["model.depth"] + 0.01 * f["train.seed"]})
        for f in listed[:4]
    ]
    _pile(tmp_path, done)
    evals = [{"vae/active_units": 3.0} if f["model.depth"] == 2 else {} for f, _, _ in done]
    for i, e in enumerate(evals):
        (tmp_path / f"r{i}" / "eval.json").write_text(json.dumps(e))
    entries = [
        {"index": i, "name": f"r{i}", "overrides": f, "workdir": f"r{i}"}
        for i, f in enumerate(listed)
    ]
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": entries}))
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    out = report.write_report(str(tmp_path), ["eval/mse", "vae/active_units"])
    assert [r["model.depth"] for r in out["rows"]] == [1, 2]
    md = (tmp_path / "report.md").read_text()
    assert "No finished run, so no row or point: model.depth=4 (2 failed or unfinished)." in md
    assert "| – (not a metric of these runs) |" in md  # depth 1's vae/active_units
    (fig,) = saved
    title = fig._suptitle.get_text()
    assert "no finished run, no point, at model.depth=4 (2 failed or unfinished)" in title


def test_a_large_whole_swept_float_is_written_in_scientific_form(tmp_path):
    """A learning rate of 1e8 was written 100000000.0 in report.md and the figures (a probe);
    smaller values keep Python's own form."""
    _lr_pile(tmp_path, rates=(1e-5, 0.001, 1e8))
    report.write_report(str(tmp_path))
    md = (tmp_path / "report.md").read_text()
    rows = [line.split(" | ")[0] for line in md.splitlines() if line[:2] == "| "]
    assert rows[1:] == ["| 1e-05", "| 0.001", "| 1e+08"]


def test_fields_that_vary_together_are_drawn_together_and_said(tmp_path, monkeypatch):
    """product({"model.latent_dim": [2, 4, 8], "model.activation": [...]}) zips the two: each
    was drawn against the other as if crossed, three one-point series per panel, and nothing
    said they vary together (a probe). Now each figure draws one series, its title and
    report.md say which field varies with it and how; every swept field keeps its figure (a
    random search's fields, all values distinct, vary together too: a review); two crossed
    fields are series of each other, unsaid."""
    pairs = ((2, "relu"), (4, "tanh"), (8, "sigmoid"), (16, "gelu"))
    runs = [
        (
            {"model.latent_dim": d, "model.activation": a, "train.seed": s},
            "done",
            {"eval/mse": 0.1 * d + 0.01 * s},
        )
        for d, a in pairs
        for s in (0, 1)
    ]
    saved = _report_figures(tmp_path, monkeypatch, runs, ["eval/mse"])
    assert sorted(f.axes[0].get_xlabel() for f in saved) == ["model.activation", "model.latent_dim"]
    said = "model.latent_dim varies with model.activation (gelu with 16; relu with 2; sigmoid"
    for fig in saved:
        assert fig.legends == [] and len(fig.axes[0].lines) == 1 + 2  # a series, its caps
    title = next(f for f in saved if f.axes[0].get_xlabel() == "model.activation")._suptitle
    assert said + " with 8; ...): no setting changes one alone" in title.get_text().replace(
        "\n", " "
    )
    assert said in (tmp_path / "report.md").read_text()
    crossed = [
        ({"model.latent_dim": d, "model.activation": a, "train.seed": 0}, "done", {"eval/mse": d})
        for d in (2, 4)
        for a in ("relu", "tanh")
    ]
    (tmp_path / "x").mkdir()
    saved = _report_figures(tmp_path / "x", monkeypatch, crossed, ["eval/mse"])
    assert len(saved) == 2 and all(len(f.legends) == 1 for f in saved)
    assert "varies with" not in (tmp_path / "x" / "report.md").read_text()


def test_fields_that_change_nothing_a_run_learns_are_no_parameter_of_a_sweeps_report(tmp_path):
    """A probe: a sweep whose entries turned figures, the end's evaluation or color_by off for
    some seeds reported four settings of one learning rate (their seeds split: 1.019 ± 0.12
    over 3, then three single seeds) and drew metrics_vs_train_figures.png. They are no
    parameter (`reruns.NOT_PARAMETERS`): one setting of 4 seeds."""
    quiet = ({}, {"eval.at_end": False}, {"train.figures": False}, {"eval.color_by": "x"})
    fields = [{"optim.learning_rate": 0.1, "train.seed": s, **q} for s, q in enumerate(quiet)]
    _pile(tmp_path, [(f, "done", {"eval/mse": 1.0 + s}) for s, f in enumerate(fields)])
    entries = [
        {"index": i, "name": f"r{i}", "overrides": f, "workdir": f"r{i}"}
        for i, f in enumerate(fields)
    ]
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": entries}))
    out = report.write_report(str(tmp_path), ["eval/mse"])
    assert out["params"] == ["optim.learning_rate"]
    (row,) = out["rows"]
    assert row["seeds"] == 4 and row["eval/mse n"] == 4 and row["eval/mse mean"] == 2.5
    assert out["figures"] == [] and not (tmp_path / "figures").exists()  # (one value swept)


def test_settings_of_entries_that_set_different_fields_stay_apart(tmp_path):
    """A chain of two one-field sweeps (learning rates, then L1 weights): every run's fields
    are the report's parameters, and a run is in the setting of its own. Parameters read from
    the first run alone passed every test (a mutation check), and merged l1_weight 0.0 and
    0.5 (losses 2 and 9) into one setting of 2 seeds, mean 5.5."""
    _fake_sweep(
        tmp_path,
        [
            ({"optim.learning_rate": 0.1, "train.seed": 0}, "done", {"eval/loss": 1.0}),
            ({"optim.learning_rate": 0.1, "train.seed": 1}, "done", {"eval/loss": 1.2}),
            ({"loss.l1_weight": 0.0, "train.seed": 0}, "done", {"eval/loss": 2.0}),
            ({"loss.l1_weight": 0.5, "train.seed": 0}, "done", {"eval/loss": 9.0}),
        ],
    )
    out = report.write_report(str(tmp_path), ["eval/loss"])
    assert out["params"] == ["loss.l1_weight", "optim.learning_rate"]
    rows = [
        (r["loss.l1_weight"], r["optim.learning_rate"], r["seeds"], r["eval/loss mean"])
        for r in out["rows"]
    ]
    assert rows == [("", 0.1, 2, pytest.approx(1.1)), (0.0, "", 1, 2.0), (0.5, "", 1, 9.0)]


def test_fields_vary_together_only_when_each_value_of_one_goes_with_one_of_the_other():
    """`zipped` groups fields whose values pair one to one over the settings. One that
    depends on the other one way only (relu at latent sizes 2 and 4, tanh at 8) is changed
    alone by some setting: a check of one direction passed every test (a mutation check) and
    would say "varies with ...: no setting changes one alone", which is false."""
    one_to_one = [{"a": 2, "b": "relu"}, {"a": 4, "b": "tanh"}, {"a": 8, "b": "gelu"}]
    assert report_text.zipped(["a", "b"], one_to_one) == [["a", "b"]]
    one_way = [{"a": 2, "b": "relu"}, {"a": 4, "b": "relu"}, {"a": 8, "b": "tanh"}]
    assert report_text.zipped(["a", "b"], one_way) == []
    assert report_text.zipped(["b", "a"], one_way) == []
