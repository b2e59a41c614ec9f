"""A study end to end: layering, batched evaluation, chunked epochs, stops and kills anywhere."""

import ast
import json
import os
import re
import shutil
import signal
import threading
import types

import jax
import numpy as np
import pytest

import ae_jax
from ae_jax import experiment
from ae_jax.cli import cli_errors
from ae_jax.configs import seed_vae
from ae_jax.evaluation import evaluate, figure_worker, figure_writer, finish, passes
from ae_jax.sweeps import checks, runner
from ae_jax.sweeps import overrides as multi
from ae_jax.training import chunking, signals, trackers, writers
from ae_jax.training.checkpoint import Checkpointer
from ae_jax.training.signals import Interrupted, StopRequests

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ae_jax")


# ---- the package's shape ----


def _modules() -> dict[str, str]:
    mods = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path[:-3], os.path.dirname(PACKAGE)).replace(os.sep, ".")
                mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(name: str, path: str, mods: dict) -> set[str]:
    """ae_jax modules `name` imports anywhere in its file (inside functions too): `from P
    import m` of a submodule m imports P.m; of any other name, P itself (its __init__), which
    counts even where P is `name`'s own package (`from ae_jax.data import load_dataset` in
    ae_jax/data/dataset.py runs data/__init__, which imports dataset: a cycle a first version
    of this check, which left out every edge to a module's own package, let through)."""
    pkg = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
            ]
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def test_no_import_cycles_and_small_modules():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}

    def reachable(start):  # every module `start` imports, directly or not
        seen, todo = set(), [start]
        while todo:
            for x in graph[todo.pop()] - seen:
                seen.add(x)
                todo.append(x)
        return seen

    reach = {m: reachable(m) for m in graph}
    cycles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in reach[b]})
    assert not cycles, f"import cycles: {cycles}"
    long = {m: n for m, p in mods.items() if (n := sum(1 for _ in open(p))) > 400}
    assert not long, f"modules over 400 lines: {long}"
    # The layers only import downward.
    order = [
        "ae_jax.errors",
        "ae_jax.files",
        "ae_jax.locks",
        "ae_jax.config",
        "ae_jax.workdir",
        "ae_jax.reruns",
        "ae_jax.runtime",
        "ae_jax.data",
        "ae_jax.models",
        "ae_jax.training",
        "ae_jax.evaluation",
        "ae_jax.experiment",
        "ae_jax.sweeps",
        "ae_jax.configs",
        "ae_jax.cli",
        "ae_jax.commands",
        "ae_jax.entry",  # the console script: stops noted, then the commands
        "ae_jax.__main__",  # python -m ae_jax: the command, on top
    ]
    layer = lambda m: max(i for i, p in enumerate(order) if m == p or m.startswith(p + "."))
    upward = [
        (m, d)
        for m, ds in graph.items()
        if m != "ae_jax"
        for d in ds
        if d != "ae_jax" and layer(d) > layer(m)
    ]
    assert not upward, f"imports from a higher layer: {upward}"


def test_import_ae_jax_is_light():
    code = (
        "import sys, ae_jax; heavy = [m for m in ('matplotlib', 'orbax.checkpoint', "
        "'sklearn', 'tensorboardX', 'ae_jax.experiment') if m in sys.modules]; print(heavy)"
    )
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(PACKAGE),
        check=True,
    ).stdout.strip()
    assert out == "[]"
    # Its layers are attributes, imported on first use: ae_jax.data after a bare import.
    code = (
        "import sys, ae_jax; print('ae_jax.data' in sys.modules, "
        "ae_jax.data.load_dataset.__module__, ae_jax.sweeps.product.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "ae_jax.data.load", "ae_jax.sweeps.declare"]


# ---- evaluation batched over the models of a group ----


def _vae_config(**overrides):
    c = seed_vae.get_config()
    c.data.name = "digits"
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every = 2, 64, 1
    c.eval.iw_samples = 8
    return multi.apply_overrides(c, overrides)


def test_batched_evaluation_equals_single_evaluations(tmp_path):
    """K models evaluated by one program give each model's eval.json of a K = 1 evaluation."""
    base = _vae_config()
    overrides = [{"loss.beta": b, "train.seed": s} for b, s in ((1.0, 0), (0.5, 1), (2.0, 2))]
    multi.train_together(base, overrides, str(tmp_path))
    for o in overrides:
        run = str(tmp_path / multi.run_name(o))
        with open(os.path.join(run, "eval.json")) as f:
            together = json.load(f)
        single = evaluate.evaluate_workdir(run, figures=False)
        assert set(together) - {"figures"} == set(single) - {"figures"}
        for key, value in single.items():
            if key != "figures":
                _assert_close(together[key], value, key)


def test_models_evaluated_in_chunks_are_each_their_own(monkeypatch):
    """Models too many for one evaluation program's memory (`passes._FLOAT_BUDGET`: ~2 of
    MNIST's size) are evaluated a chunk at a time, the last padded with model 0: each model's
    numbers are its own, in order, and a stop is looked at between chunks. The batched
    evaluation test above fits its 3 models in one chunk, as do the suite's others: a chunker
    giving every chunk the first one's models passed them all (a mutation check)."""
    monkeypatch.setattr(passes, "_FLOAT_BUDGET", 20)  # 2 models of 10 floats a chunk
    params = {"w": np.arange(5.0)[:, None] * np.ones((5, 10)), "b": np.arange(5) + 100}
    seen, looks = [], []

    def fn(p):
        seen.append(np.asarray(p["b"]).tolist())
        return {"sum": p["w"].sum(axis=1), "b": p["b"]}

    out = passes._model_chunks(params, 10, fn, stop=lambda: looks.append(len(seen)))
    assert seen == [[100, 101], [102, 103], [104, 100]]  # the last chunk padded with model 0
    np.testing.assert_array_equal(out["sum"], np.arange(5.0) * 10)
    np.testing.assert_array_equal(out["b"], np.arange(5) + 100)
    assert looks == [1, 2] and passes._n_chunks(params, 10) == 3


def test_train_group_refuses_a_shared_workdir_or_unequal_lists_before_any_work(tmp_path):
    """One workdir twice (however spelt) or a workdir short: a one-paragraph error naming them,
    before any directory is made (orbax's tracebacks, zip()'s ValueError)."""
    a, b = _vae_config(), _vae_config(**{"train.seed": 3})
    g7 = str(tmp_path / "g7")
    same = f"workdirs[0] {g7!r} and workdirs[1] {g7 + '/'!r} are the same directory"
    with pytest.raises(ae_jax.UserError, match=re.escape(same)):
        experiment.train_group([a, b], [g7, g7 + "/"])
    with pytest.raises(ae_jax.UserError, match=re.escape("got 2 config(s) and 1 workdir(s)")):
        experiment.train_group([a, b], [g7])
    assert os.listdir(tmp_path) == []


def _assert_close(a, b, key):
    if isinstance(b, dict):
        assert a.keys() == b.keys(), key
        for k in b:
            _assert_close(a[k], b[k], f"{key}/{k}")
    elif isinstance(b, str | type(None)):
        assert a == b, key
    else:
        np.testing.assert_allclose(
            np.asarray(a, float), np.asarray(b, float), rtol=2e-5, atol=1e-6, err_msg=key
        )


# ---- a run is done only when everything it promises is written ----


def _train(config, workdir):
    return experiment.train_and_evaluate(config, str(workdir))


def test_killed_after_the_last_epoch_is_finished_not_retrained(tmp_path):
    c = _vae_config()
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _train(c, whole)
    _train(c, killed)
    # What a kill right after the last epoch's checkpoint leaves: no summary, eval, figures.
    for name in ("summary.json", "eval.json"):
        os.remove(killed / name)
    shutil.rmtree(killed / "figures")
    metrics_before = (killed / "metrics.jsonl").read_text()
    (summary,) = _train(c, killed)
    assert summary["status"] == "done" and summary["resumed_from_epoch"] == c.train.epochs
    assert (killed / "metrics.jsonl").read_text() == metrics_before  # no epoch retrained
    assert json.loads((killed / "eval.json").read_text()) == json.loads(
        (whole / "eval.json").read_text()
    )
    assert sorted(os.listdir(killed / "figures")) == sorted(os.listdir(whole / "figures"))
    for f in os.listdir(whole / "figures"):
        assert (killed / "figures" / f).read_bytes() == (whole / "figures" / f).read_bytes(), f
    # TensorBoard holds the same points: the headline numbers at the last step (they were at
    # step 0, and eval/* again there, when the rerun trained no epoch).
    # Per-epoch tags point for point (none written twice); the headline numbers, which this
    # simulated kill had written before the rerun wrote them again, as sets.
    tb = [writers.read_scalars(str(run / "tb")) for run in (whole, killed)]
    timing = ("epoch_s", "rows_per_s")
    kept = [{t: v for t, v in x.items() if t not in timing} for x in tb]
    for t, points in kept[0].items():
        per_epoch = t.startswith(("train/", "eval/"))
        assert (kept[1][t] if per_epoch else set(kept[1][t])) == (
            points if per_epoch else set(points)
        ), t
    assert kept[1].keys() == kept[0].keys()


def test_a_kill_while_a_resumed_run_opens_its_trackers_loses_no_history(tmp_path, monkeypatch):
    """metrics.jsonl was opened for writing (emptied) before the trackers, ~2 s with MLflow and
    W&B, and written back after them: a kill in between left a resumed run without its rows."""
    run = tmp_path / "run"
    lean = {"train.figures": False, "eval.at_end": False}  # (what is checked: metrics.jsonl)
    _train(_vae_config(**lean), run)
    before = (run / "metrics.jsonl").read_text()
    os.remove(run / "summary.json")  # unfinished: the rerun resumes at its last checkpoint

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trackers, "open_writers", killed)
    with pytest.raises(KeyboardInterrupt):
        _train(_vae_config(**lean), run)
    assert (run / "metrics.jsonl").read_text() == before


def test_a_rerun_without_checkpoints_writes_each_step_once_to_tensorboard(tmp_path, monkeypatch):
    """Checkpoints off, stopped while evaluating: the rerun trains again from step 1, and what
    the first process wrote from there is dropped (it was kept: every point twice)."""
    c = _vae_config(**{"train.checkpoints": False})
    stop = _Stop()
    real = evaluate.evaluate_group

    def arm_then_evaluate(*args, **kwargs):
        stop.armed = True
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "StopRequests", lambda: stop)
    monkeypatch.setattr(experiment.evaluate, "evaluate_group", arm_then_evaluate)
    with pytest.raises(Interrupted):
        _train(c, tmp_path / "run")
    monkeypatch.undo()
    _train(c, tmp_path / "run")
    steps = [s for s, _ in writers.read_scalars(str(tmp_path / "run" / "tb"))["train/loss"]]
    assert len(steps) == c.train.epochs and len(set(steps)) == len(steps), steps


class _Stop:
    """Stands in for StopRequests: a SIGTERM arrives when `arm()` is called or after the
    `after`-th look at it."""

    def __init__(self, after=None):
        self.after, self.looks, self.armed = after, 0, False

    @property
    def signum(self):
        self.looks += 1
        if self.armed or (self.after is not None and self.looks > self.after):
            return signal.SIGTERM
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def test_sigterm_during_evaluation_exits_143_and_the_rerun_completes(tmp_path, monkeypatch, caplog):
    """The stop is acted on inside the evaluation (between its passes, not after the whole
    of a long IWAE), says training is saved and how to resume (not "no state was saved"), and
    the rerun evaluates what an uninterrupted run does (a mutation check passed a wrong hint
    and an evaluation that never looked at the stop)."""
    c = _vae_config()
    stop = _Stop()
    real, ended = evaluate.evaluate_group, []

    def arm_then_evaluate(*args, **kwargs):
        stop.armed = True  # the signal arrives while the models are being evaluated
        try:
            out = real(*args, **kwargs)
        except Interrupted:
            ended.append("stopped inside")
            raise
        ended.append("returned")
        return out

    monkeypatch.setattr(experiment, "StopRequests", lambda: stop)
    monkeypatch.setattr(experiment.evaluate, "evaluate_group", arm_then_evaluate)
    # The bound's rows in calls of one batch (as a big set's are): a stop is looked at between
    # calls (a small set's one call is followed by the look after the evaluation).
    monkeypatch.setattr(passes, "_SAMPLES_PER_CALL", 1)
    caplog.set_level("WARNING")
    with pytest.raises(SystemExit) as exit_info, cli_errors():
        _train(c, tmp_path / "run")
    assert exit_info.value.code == 143 and ended == ["stopped inside"]
    assert caplog.records[-1].getMessage() == (
        "stopped by SIGTERM while evaluating; training is finished and saved: run the same "
        "command (or Python call) again to resume."
    )
    assert not (tmp_path / "run" / "summary.json").exists()
    monkeypatch.undo()
    (summary,) = _train(c, tmp_path / "run")
    assert summary["status"] == "done" and summary["resumed_from_epoch"] == c.train.epochs
    _train(c, tmp_path / "whole")
    whole = json.loads((tmp_path / "whole" / "eval.json").read_text())
    assert json.loads((tmp_path / "run" / "eval.json").read_text()) == whole


@pytest.mark.parametrize(
    "models, kept",
    [
        (3, "as are the groups of runs written in full before the stop (the others are "),
        # (a run alone was told of "the others": a probe)
        (1, "as is its evaluation if written in full before the stop (else the rerun "),
    ],
)
def test_sigterm_while_writing_says_which_runs_are_saved_and_the_rerun_completes(
    tmp_path, monkeypatch, models, kept
):
    """A stop while a group's runs were written said "training and evaluation are finished and
    saved", of a sweep with 12 of its 18 runs lacking eval.json (a probe): a run's evaluation
    is written with its figures, so the runs not yet written are evaluated again."""
    c = _vae_config()
    c.train.num_models, c.train.figures = models, False
    stop = _Stop()
    real, looking = finish.finish_run, threading.Event()
    while_writing = signals.while_writing

    def finish_then_arm(*args, **kwargs):
        real(*args, **kwargs)
        # The signal arrives once the first run is written, and (its writes run on their own
        # thread) once the launch waits for them: before, the stop was seen "after
        # evaluating", 1 of 1166 under load (Python 3.12).
        assert looking.wait(timeout=120)
        stop.armed = True

    def waiting(*args):
        looking.set()
        return while_writing(*args)

    monkeypatch.setattr(experiment, "StopRequests", lambda: stop)
    monkeypatch.setattr(finish, "finish_run", finish_then_arm)
    monkeypatch.setattr(signals, "while_writing", waiting)
    with pytest.raises(Interrupted) as info:
        _train(c, tmp_path)
    assert str(info.value).startswith(
        "stopped by SIGTERM while writing figures and summaries; training is finished and "
        "saved, " + kept
    )
    runs = [tmp_path / f"seed={i}" for i in range(3)] if models > 1 else [tmp_path]
    assert (runs[0] / "eval.json").exists()
    monkeypatch.undo()
    summaries = _train(c, tmp_path)
    assert [s["status"] for s in summaries] == ["done"] * models
    assert all((r / "eval.json").exists() for r in runs)


def test_a_group_written_in_part_is_evaluated_again_as_the_group_it_was(tmp_path, monkeypatch):
    """A group's runs were marked done one by one as each was written: a failure (or kill)
    after the first left it done and the others evaluated again by the rerun in a group of 2,
    in numbers that differed from an uninterrupted run's in their last bits (a probe:
    ae_over_pca 1.7318843554 against 1.7318842911). The group's runs are marked done together,
    so all three are evaluated again, in the group of 3 they were trained in."""
    # (breast_cancer: its evaluation of a group of 2 and of 3 differ in their last bits)
    c = _vae_config(**{"data.name": "breast_cancer", "train.num_models": 3, "train.figures": False})
    real, written = finish.finish_run, []

    def fail_second(marks, r, *args):
        if written:  # the second run's writes fail, as on a full disk
            raise OSError(28, "No space left on device")
        real(marks, r, *args)
        written.append(r.workdir)

    monkeypatch.setattr(finish, "finish_run", fail_second)
    with pytest.raises(ae_jax.UserError, match="no space left on device"):
        _train(c, tmp_path / "failed")
    runs = [tmp_path / "failed" / f"seed={i}" for i in range(3)]
    assert (runs[0] / "eval.json").exists()
    assert not any((r / "summary.json").exists() for r in runs)  # none marked done
    monkeypatch.undo()
    summaries = _train(c, tmp_path / "failed")
    assert [(s["status"], s["num_models_together"]) for s in summaries] == [("done", 3)] * 3
    _train(c, tmp_path / "whole")
    for i, r in enumerate(runs):
        whole = json.loads((tmp_path / "whole" / f"seed={i}" / "eval.json").read_text())
        assert json.loads((r / "eval.json").read_text()) == whole, i


def test_without_checkpoints_a_run_whose_eval_json_fails_is_not_marked_done(tmp_path, monkeypatch):
    """Without checkpoints each run is marked done as it is written (nothing to evaluate again
    from), so the order inside its last writes is what keeps a run that failed before its
    eval.json from counting as done: summary.json first passed every test (a mutation check)."""
    c = _vae_config(**{"train.checkpoints": False, "train.figures": False})

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate, "write_eval", full)
    with pytest.raises(ae_jax.UserError, match="no space left on device"):
        _train(c, tmp_path / "run")
    assert not (tmp_path / "run" / "eval.json").exists()
    assert not (tmp_path / "run" / "summary.json").exists()  # not done: the rerun trains it


def test_interrupted_message_has_the_resume_hint():
    e = Interrupted(signal.SIGTERM, "while evaluating", "training is finished and saved")
    assert str(e) == (
        "stopped by SIGTERM while evaluating; training is finished and saved: run "
        "the same command (or Python call) again to resume."
    )
    # A script looping over configs with `except Exception` around each call stops too.
    with pytest.raises(ae_jax.Interrupted):
        try:
            raise e
        except Exception:  # noqa: BLE001 - what such a loop does
            pass


# ---- epochs in chunks ----


def _params(workdir):
    ck = Checkpointer(str(workdir), read_only=True)
    state = ck.restore_raw(ck.epochs()[-1])
    ck.close()
    return state


def _rows(workdir):
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    return [{k: v for k, v in r.items() if "/" in k} for r in rows]


def _sparse_config(**overrides):
    c = _vae_config(
        **{"eval.at_end": False, "train.figures": False, "train.tensorboard": False, **overrides}
    )
    return c


@pytest.mark.optimized
def test_chunked_epochs_equal_one_scan_bit_for_bit(tmp_path):
    # digits: 1437 training rows, batch 64 -> 23 steps; chunks of 5 need 2 padding steps.
    _train(_sparse_config(), tmp_path / "one")
    _train(_sparse_config(**{"train.chunk_steps": 5}), tmp_path / "chunked")
    chunk = lambda w: json.loads((w / "config.json").read_text())["dataset"]["steps_per_chunk"]
    assert (chunk(tmp_path / "one"), chunk(tmp_path / "chunked")) == (23, 5)
    assert _rows(tmp_path / "one") == _rows(tmp_path / "chunked")
    a, b = _params(tmp_path / "one"), _params(tmp_path / "chunked")
    assert jax.tree.all(jax.tree.map(np.array_equal, a, b))


def test_a_groups_progress_line_names_the_median_and_spread_of_its_models(tmp_path, caplog):
    """Inside an epoch of K models the line printed one number, the median of the K running
    losses, unnamed (one model's loss was 3.68 under a printed 3.96): it is named, with the
    range, as the epoch's own line names its eval/loss."""
    caplog.set_level("INFO", logger="absl")
    c = _sparse_config(**{"train.chunk_steps": 5, "train.epochs": 1, "train.log_seconds": 1e-9})
    multi.train_together(c, [{"optim.learning_rate": lr} for lr in (1e-4, 3e-2)], str(tmp_path))
    lines = [r.getMessage() for r in caplog.records if "train loss so far" in r.getMessage()]
    assert lines, "no progress line"
    for line in lines:
        got = re.search(r"train loss so far median (\S+) \[min (\S+), max (\S+)\] \|", line)
        assert got, line
        median, lo, hi = map(float, got.groups())
        assert lo <= median <= hi and lo < hi, line  # two learning rates: two losses


def test_a_progress_line_comes_before_log_seconds_pass_not_after(tmp_path, caplog, monkeypatch):
    """A line was written at the first chunk's end after `train.log_seconds` had passed:
    chunks of 4 s under the 10 s wanted came with a line every 12 s (a probe saw 11.5-12.1
    s). It is written when the next chunk would pass it: every 8 s. Chunks timed by a fake
    clock, 4 s a chunk; 23 steps in chunks of 5."""
    assert chunking.line_due(8.0, 4.0, 10.0) and not chunking.line_due(4.0, 4.0, 10.0)
    caplog.set_level("INFO", logger="absl")
    ticks = iter(np.arange(0.0, 100.0, 4.0))
    monkeypatch.setattr(chunking, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    _train(_sparse_config(**{"train.chunk_steps": 5, "train.epochs": 1}), tmp_path)
    lines = [r.getMessage() for r in caplog.records if "train loss so far" in r.getMessage()]
    assert [re.search(r" step (\d+)/23 ", line).group(1) for line in lines] == ["10", "20"]


def test_a_groups_epoch_line_spreads_the_finite_losses_and_counts_the_others(caplog):
    """One model's validation loss blew up an epoch before its training did (so it is not yet
    diverged): the line read 'eval/loss median nan [min nan, max nan]', hiding 3 finite of 4
    (a probe)."""
    caplog.set_level("INFO", logger="absl")
    run = lambda loss, status="running": types.SimpleNamespace(  # noqa: E731
        status=status, running=status == "running", history=[{"eval/loss": loss}]
    )
    runs = [run(1.0), run(2.0), run(float("nan")), run(3.0), run(9.0, "diverged")]
    chunking.log_epoch(1, 2, runs, 1000.0, 1.0)
    said = caplog.records[-1].getMessage()
    assert "| 4 models running, 1 diverged | eval/loss median 2 [min 1, max 3, 1 not finite] |" in (
        said
    )
    chunking.log_epoch(2, 2, [run(float("inf")), run(float("nan"))], 1000.0, 0.0)
    assert "| eval/loss not finite in all 2 |" in caplog.records[-1].getMessage()


def test_figure_workers_start_only_when_a_run_draws_figures(tmp_path, monkeypatch):
    started = []
    popen = figure_writer.figure_worker.subprocess.Popen

    def counting(args, **kw):
        started.append(args)
        return popen(args, **kw)

    monkeypatch.setattr(figure_writer.figure_worker.subprocess, "Popen", counting)
    off = _sparse_config(**{"train.epochs": 1})
    _train(off, tmp_path / "off")
    runner.train_runs(off, checks.expand([{"train.seed": 1}], str(tmp_path / "sweep")))
    assert started == []  # ~0.5 s of a core each, for nothing to draw
    _train(_sparse_config(**{"train.epochs": 1, "train.figures": True}), tmp_path / "on")
    forks = figure_writer.figure_worker.FORKS  # one interpreter, forked into the others
    workers = figure_worker.default_workers()  # 1 in the tests, unless the environment says
    assert len(started) == (min(1, workers) if forks else workers)
    assert all(figure_writer.figure_worker.__name__ in a for a in started)
    assert (tmp_path / "on" / "figures" / "learning_curves.png").stat().st_size > 0


def test_learning_curves_are_drawn_while_the_last_checkpoint_is_written(tmp_path, monkeypatch):
    """... and the last epoch's line is printed before the (seconds-long, for 64 runs) saves."""
    events, drawn = [], []
    save, start = Checkpointer.save, figure_writer.FigureWriter.start
    draw, log_epoch = figure_writer.FigureWriter._draw, chunking.log_epoch

    def logged_epoch(epoch, *args):
        events.append(f"log {epoch}")
        return log_epoch(epoch, *args)

    def logged_draw(self, job):
        drawn.append(os.path.basename(job.path))
        return draw(self, job)

    def logged_save(self, epoch, *args):
        events.append(f"save {epoch}")
        return save(self, epoch, *args)

    def logged_start(self, jobs):
        events.extend(f"start {os.path.basename(j.path)}" for j in jobs)
        return start(self, jobs)

    monkeypatch.setattr(Checkpointer, "save", logged_save)
    monkeypatch.setattr(figure_writer.FigureWriter, "start", logged_start)
    monkeypatch.setattr(figure_writer.FigureWriter, "_draw", logged_draw)
    monkeypatch.setattr(chunking, "log_epoch", logged_epoch)
    overrides = {"train.epochs": 2, "train.checkpoint_every": 1}
    c = _sparse_config(**overrides, **{"train.figures": True, "eval.at_end": True})
    _train(c, tmp_path / "run")
    assert events == ["log 1", "save 1", "log 2", "start learning_curves.png", "save 2"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "done"
    figures = sorted(os.listdir(tmp_path / "run" / "figures"))
    assert sorted(drawn) == figures and "learning_curves.png" in figures  # each drawn once
    listed = json.loads((tmp_path / "run" / "eval.json").read_text())["figures"]
    assert sorted(os.path.basename(f) for f in listed) == figures


@pytest.mark.parametrize("checkpoint_every", [1, 10])  # 10: no checkpoint before the stop
def test_stop_inside_an_epoch_resumes_bit_for_bit(tmp_path, monkeypatch, caplog, checkpoint_every):
    c = _sparse_config(
        **{"train.chunk_steps": 5, "train.epochs": 3, "train.checkpoint_every": checkpoint_every}
    )
    _train(c, tmp_path / "whole")
    # Looks at the stop flag: 5 per epoch (one after each of the first four chunks, one at the
    # epoch's end); after 7 the request arrives: after chunk 2 of epoch 2.
    monkeypatch.setattr(experiment, "StopRequests", lambda: _Stop(after=7))
    with pytest.raises(Interrupted, match="at step 15 of epoch 2"):
        _train(c, tmp_path / "stopped")
    assert (tmp_path / "stopped" / "partial_epoch.msgpack").exists()
    monkeypatch.undo()
    caplog.set_level("INFO")
    paces, pace = [], chunking.Pace  # the ETA's pace: the 2 of 5 chunks left (padding runs)
    monkeypatch.setattr(chunking, "Pace", lambda *a, **k: paces.append(k) or pace(*a, **k))
    (summary,) = _train(c, tmp_path / "stopped")
    assert summary["status"] == "done" and paces == [{"share": pytest.approx(0.4)}]
    assert "resuming epoch 2 at step 15 of 23" in caplog.text  # the chunks done are not redone
    # ... said once: not "resuming from the epoch-1 checkpoint" before it (a probe's run read
    # "epoch-150 checkpoint", then "epoch 180 at step 44")
    newest = "epoch 1's" if checkpoint_every == 1 else "none"
    assert f"where a stop saved it (newest checkpoint: {newest})" in caplog.text
    assert "resuming from the epoch-" not in caplog.text
    assert not (tmp_path / "stopped" / "partial_epoch.msgpack").exists()
    assert _rows(tmp_path / "whole") == _rows(tmp_path / "stopped")
    a, b = _params(tmp_path / "whole"), _params(tmp_path / "stopped")
    assert jax.tree.all(jax.tree.map(np.array_equal, a, b))
    # Epoch 2's rows per second count the rows of the 8 of 23 steps this process trained (all
    # 1438: 3x), the last of them 30 rows short (1438 x 8/23 = 500.2 was counted: a probe).
    row = [json.loads(line) for line in open(tmp_path / "stopped" / "metrics.jsonl")][1]
    assert row["rows_per_s"] * row["epoch_s"] == pytest.approx(1438 - 15 * 64)


def test_a_group_stopped_inside_an_epoch_resumes_each_run_bit_for_bit(tmp_path, monkeypatch):
    """The position a stop inside an epoch saves holds each run's own state: the test above
    has one run, and saving run 0's state for every run of a group (sweeps, num_models)
    passed every test (a mutation check)."""
    c = _sparse_config(**{"train.chunk_steps": 5, "train.epochs": 3, "train.num_models": 2})
    experiment.train_and_evaluate(c, str(tmp_path / "whole"))
    monkeypatch.setattr(experiment, "StopRequests", lambda: _Stop(after=7))
    with pytest.raises(Interrupted, match="at step 10 of epoch 2"):
        experiment.train_and_evaluate(c, str(tmp_path / "stopped"))
    assert (tmp_path / "stopped" / "seed=1" / "partial_epoch.msgpack").exists()
    monkeypatch.undo()
    experiment.train_and_evaluate(c, str(tmp_path / "stopped"))
    for run in ("seed=0", "seed=1"):
        assert _rows(tmp_path / "whole" / run) == _rows(tmp_path / "stopped" / run), run
        a, b = _params(tmp_path / "whole" / run), _params(tmp_path / "stopped" / run)
        assert jax.tree.all(jax.tree.map(np.array_equal, a, b)), run
    assert _rows(tmp_path / "whole" / "seed=0") != _rows(tmp_path / "whole" / "seed=1")


@pytest.mark.optimized
def test_a_position_saved_with_another_chunk_size_is_passed_over_saying_why(
    tmp_path, monkeypatch, caplog
):
    c = _sparse_config(**{"train.chunk_steps": 5, "train.epochs": 3, "train.checkpoint_every": 1})
    _train(c, tmp_path / "whole")
    monkeypatch.setattr(experiment, "StopRequests", lambda: _Stop(after=7))
    with pytest.raises(Interrupted, match="at step 15 of epoch 2"):
        _train(c, tmp_path / "stopped")
    monkeypatch.undo()
    caplog.set_level("INFO")
    c.train.chunk_steps = 7  # may differ on a rerun: the saved position cannot be used
    (summary,) = _train(c, tmp_path / "stopped")
    assert summary["status"] == "done"
    assert (
        "ignoring the saved position inside an epoch: it was saved with 5 steps per chunk and "
        "this run takes 7 (train.chunk_steps, train.log_seconds, the backend or the group "
        "changed); training resumes "
        "from the checkpoint of epoch 1" in caplog.text
    )
    assert _rows(tmp_path / "whole") == _rows(tmp_path / "stopped")
    a, b = _params(tmp_path / "whole"), _params(tmp_path / "stopped")
    assert jax.tree.all(jax.tree.map(np.array_equal, a, b))
    # The position passed over, epoch 2 was trained whole here: its rows per second count all.
    row = [json.loads(line) for line in open(tmp_path / "stopped" / "metrics.jsonl")][1]
    assert row["rows_per_s"] * row["epoch_s"] == pytest.approx(1438)


def test_public_api_is_unchanged():
    for name in (
        "load",
        "train_and_evaluate",
        "train_group",
        "default_config",
        "VAE",
        "Autoencoder",
        "Encoder",
        "Decoder",
        "GaussianEncoder",
        "UserError",
    ):
        assert getattr(ae_jax, name) is not None


def test_a_stop_request_is_acknowledged_at_once(capfd):
    """A stop waits for the chunk or evaluation pass under way (an IWAE bound of k = 1000:
    seconds, in silence before): the handler says at once that it is stopping."""
    with StopRequests() as stop:
        signal.raise_signal(signal.SIGTERM)
    assert stop.signum == signal.SIGTERM
    assert "SIGTERM: stopping at the next safe point" in capfd.readouterr().err


def test_a_stop_request_on_a_closed_stderr_still_stops_cleanly():
    """`ae-jax ... 2>&1 | tee log` and Ctrl-C: tee ends first, and the handler's line to a pipe
    with no reader raised BrokenPipeError out of the handler, mid-chunk (a sweep then marked
    the group failed and went on). The stop is recorded whatever fd 2 is."""
    saved = os.dup(2)
    read, write = os.pipe()
    os.close(read)  # a pipe nobody reads, as after tee ended
    os.dup2(write, 2)
    try:
        with StopRequests() as stop:
            signal.raise_signal(signal.SIGINT)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write)
    assert stop.signum == signal.SIGINT


def test_the_eta_is_paced_by_the_epochs_after_a_process_first():
    """A process's first epoch runs its programs for the first time: 200 epochs of 12.5 ms
    after a first of 62 ms were told 'ETA 12.3 s' after epoch 2 too (7.4 s), for 2.5 s left.
    A fake clock: each reading is the next time."""
    for start in (0, 50):  # a fresh run, and one resumed after epoch 50
        times = iter([0.0, 0.062, 0.062, 0.0745, 0.087, 0.087])
        pace = chunking.Pace(start, 200 + start, clock=times.__next__)
        assert pace.eta(start + 1) == pytest.approx(0.062 * 199)  # one epoch: its pace
        pace.ended(start + 1)
        assert pace.eta(start + 2) == pytest.approx(0.0125 * 198)
        pace.ended(start + 2)
        assert pace.eta(start + 3) == pytest.approx(0.0125 * 197)
    # Resumed at step 80 of 90 of its first epoch: 1/9 of it took 1.6 s (its ETA had read
    # 1.6 s x 2 epochs left, for 14.8 s: a probe); the next epochs are paced whole.
    times = iter([0.0, 1.6, 1.6, 16.0])
    pace = chunking.Pace(0, 3, clock=times.__next__, share=10 / 90)
    assert pace.eta(1) == pytest.approx(1.6 * 9 * 2)
    pace.ended(1)
    assert pace.eta(2) == pytest.approx(14.4)
