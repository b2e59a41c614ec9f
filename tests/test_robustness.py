"""Runs that cannot be silently corrupted: config drift, damaged files, retention, full disks,
and a kill campaign whose end result equals an uninterrupted run's."""

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import types

import jax
import numpy as np
import pytest

import ae_jax
from ae_jax import cli, errors, experiment, files, reruns, runtime, sweeps
from ae_jax import workdir as workdir_lib
from ae_jax.configs import seed_sparse
from ae_jax.errors import UserError
from ae_jax.evaluation import evaluate, figures, folders
from ae_jax.sweeps import overrides as multi
from ae_jax.training import chunking, distributed, startup
from ae_jax.training.checkpoint import Checkpointer
from ae_jax.training.partial import Partial
from ae_jax.training.signals import Interrupted
from tests import checkpoints_old

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides):
    c = seed_sparse.get_config()
    c.data.name = "digits"
    c.train.batch_size, c.train.epochs, c.train.checkpoint_every = 256, 4, 1
    c.eval.at_end, c.train.figures, c.train.tensorboard = False, False, False
    return multi.apply_overrides(c, overrides)


def _train(c, w):
    return experiment.train_and_evaluate(c, str(w))


def _state(w, epoch=None):
    ck = Checkpointer(str(w), read_only=True)
    state = ck.restore_raw(epoch or ck.epochs()[-1])
    ck.close()
    return state


def _rows(w):
    rows = [json.loads(line) for line in open(os.path.join(w, "metrics.jsonl"))]
    return [{k: v for k, v in r.items() if k not in ("epoch_s", "rows_per_s")} for r in rows]


def _same(a, b) -> bool:
    return jax.tree.all(jax.tree.map(np.array_equal, a, b))


def test_raising_epochs_continues_and_equals_a_longer_run(tmp_path):
    _train(_config(**{"train.epochs": 4}), tmp_path / "long")
    _train(_config(**{"train.epochs": 2}), tmp_path / "short")
    (s,) = _train(_config(**{"train.epochs": 4}), tmp_path / "short")
    assert s["epoch"] == 4 and s["resumed_from_epoch"] == 2
    assert _rows(tmp_path / "short") == _rows(tmp_path / "long")
    assert _same(_state(tmp_path / "short"), _state(tmp_path / "long"))
    saved = json.loads((tmp_path / "short" / "config.json").read_text())
    assert saved["extended"] == [{"from_epochs": 2, "to_epochs": 4}]


def test_an_extension_killed_once_its_config_is_written_still_trains_on(tmp_path, monkeypatch):
    """A kill right after config.json records the raised train.epochs: the run must not stay
    "finished" at its old length (its summary.json from before); the rerun trains it on."""
    _train(_config(**{"train.epochs": 4}), tmp_path / "long")
    _train(_config(**{"train.epochs": 2}), tmp_path / "run")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # a kill -9 right after config.json is written

    monkeypatch.setattr(Partial, "load_group", killed)
    with pytest.raises(KeyboardInterrupt):
        _train(_config(**{"train.epochs": 4}), tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["epochs"] == 4
    monkeypatch.undo()
    (s,) = _train(_config(**{"train.epochs": 4}), tmp_path / "run")
    assert (s["status"], s["epoch"], s["resumed_from_epoch"]) == ("done", 4, 2)
    assert _rows(tmp_path / "run") == _rows(tmp_path / "long")


def test_an_extended_run_keeps_its_old_evaluation_aside_not_as_its_own(tmp_path):
    """Without eval.at_end, a run evaluated at epoch 2 and then extended to 4 kept its epoch-2
    eval.json and figures as its own beside the epoch-4 summary (the lifecycle probe: a report
    mixed the two epochs in one row, and no plain evaluate could replace them). They move to
    evaluations/which=latest,epoch=2,end/, kept; `evaluate` then writes the run's own, of epoch
    4. An evaluation of an unfinished extension's epoch-2 checkpoint (a stop before its next
    one) went to which=latest,epoch=2/, the same folder, and replaced it (a probe)."""
    w = tmp_path / "run"
    _train(_config(**{"train.epochs": 2, "train.figures": True}), w)
    m2, out = evaluate.evaluate_run(str(w))
    assert out == str(w) and m2["epoch"] == 2
    before, drawn = (w / "eval.json").read_bytes(), sorted(os.listdir(w / "figures"))
    assert "codes_2d.png" in drawn
    (s,) = _train(_config(**{"train.epochs": 4, "train.figures": True}), w)
    aside = w / "evaluations" / "which=latest,epoch=2,end"
    assert s["epoch"] == 4 and not (w / "eval.json").exists()
    # The same, but the figures it lists are where they moved (it named the new end's).
    moved, kept = json.loads((aside / "eval.json").read_text()), json.loads(before)
    assert moved["figures"] == [
        f"evaluations/which=latest,epoch=2,end/{f}" for f in kept.pop("figures")
    ]
    assert {k: v for k, v in moved.items() if k != "figures"} == kept
    assert all((w / f).exists() for f in moved["figures"])
    assert sorted(os.listdir(aside / "figures")) == drawn
    assert "codes_2d.png" not in os.listdir(w / "figures")  # the new end's curves only
    os.rename(w / "summary.json", w / "kept.json")  # as while an extension runs, unfinished
    elsewhere = folders.evaluation_dir(str(w), epoch=2)
    assert os.path.basename(elsewhere) == "which=latest,epoch=2" and str(aside) != elsewhere
    os.rename(w / "kept.json", w / "summary.json")
    m4, out = evaluate.evaluate_run(str(w))
    assert out == str(w) and m4["epoch"] == 4


def test_an_evaluation_racing_an_extension_never_writes_the_runs_own(tmp_path):
    """`ae-jax evaluate` of a finished run started, then an extension of it: the evaluation
    wrote its epoch-2 eval.json and figures as the run's own beside the extension's epoch-4
    summary, and nothing replaced them (a probe). The run's own is written holding the run's
    lock, the run still finished at the epoch evaluated; else into evaluations/."""
    w = tmp_path / "run"
    _train(_config(**{"train.epochs": 2}), w)
    aside = w / "evaluations" / "which=latest,epoch=2"
    # The extension holds the run's lock (here another thread, as another process would).
    taken, release = threading.Event(), threading.Event()

    def extension():
        with workdir_lib.WorkdirLock(str(w)):
            taken.set()
            release.wait(60)

    t = threading.Thread(target=extension)
    t.start()
    assert taken.wait(60)
    try:
        m, out = evaluate.evaluate_run(str(w), figures=False)
    finally:
        release.set()
        t.join()
    assert (out, m["epoch"]) == (str(aside), 2) and not (w / "eval.json").exists()
    # It trained on and finished while the evaluation loaded the epoch-2 checkpoint.
    summary = json.loads((w / "summary.json").read_text())
    (w / "summary.json").write_text(json.dumps({**summary, "epoch": 4}))
    shutil.rmtree(aside)
    m, out = evaluate.evaluate_run(str(w), figures=False)
    assert out == str(aside) and not (w / "eval.json").exists()
    (w / "summary.json").write_text(json.dumps(summary))  # as it was: its own, as before
    m, out = evaluate.evaluate_run(str(w), figures=False)
    assert out == str(w) and (w / "eval.json").exists()


def test_an_extension_dates_the_old_ends_evaluations_that_named_no_epoch(tmp_path):
    """`ae-jax evaluate --which=best` (or --data) of a finished run writes evaluations/which=best
    /: once the run was extended, that evaluation of the old end kept a name that reads as the
    run's current best (a probe). Reopening the run dates it: which=best,epoch=E (E from its
    eval.json); dated ones, and one whose epoch cannot be read, stay as they are."""
    run = tmp_path / "run"
    other = "evaluations/which=latest,data=new.csv@1f0c9a2e/figures"
    for name, saved in (
        ("which=best", {"epoch": 2}),
        ("which=latest,data=new.csv", {"epoch": 3}),
        # another file's of that name (it stayed undated), listing its figures
        ("which=latest,data=new.csv@1f0c9a2e", {"epoch": 3, "figures": [f"{other}/a.png", 7]}),
        ("which=latest,epoch=1", {"epoch": 1}),  # an unfinished run's: dated already
        ("which=best,seed=3", "{cut off"),
    ):
        os.makedirs(run / "evaluations" / name)
        text = saved if isinstance(saved, str) else json.dumps(saved)
        (run / "evaluations" / name / "eval.json").write_text(text)
    os.makedirs(run / "evaluations" / "which=best,epoch=2")  # taken: the next name
    (run / "summary.json").write_text('{"status": "done"}')
    reruns.reopen(str(run))
    assert sorted(os.listdir(run / "evaluations")) == [
        "which=best,epoch=2",
        "which=best,epoch=2@2",
        "which=best,seed=3",
        "which=latest,data=new.csv,epoch=3",
        "which=latest,data=new.csv@1f0c9a2e,epoch=3",
        "which=latest,epoch=1",
    ]
    dated = run / "evaluations" / "which=latest,data=new.csv@1f0c9a2e,epoch=3" / "eval.json"
    assert json.loads(dated.read_text())["figures"] == [
        "evaluations/which=latest,data=new.csv@1f0c9a2e,epoch=3/figures/a.png",
        7,  # (an entry that is no path: kept, and the others rewritten all the same)
    ]
    assert json.loads((run / "evaluations" / "which=best,epoch=2@2" / "eval.json").read_text()) == {
        "epoch": 2
    }


def test_an_old_end_is_moved_aside_whole_beside_what_evaluations_holds(tmp_path, caplog):
    """reopen's move on its own: a name taken (even by an evaluation's figures alone) gets the
    next one, an older version's own evaluation of the best checkpoint keeps which=best, and a
    damaged eval.json still moves; nothing is replaced or left beside the run."""
    run = tmp_path / "run"
    caplog.set_level("INFO")
    cases = [
        ({"epoch": 2, "which": "latest"}, "which=latest,epoch=2,end@2"),
        ({"epoch": 3, "which": "best"}, "which=best,epoch=3,end"),
        ("{cut off", "which=latest,earlier_end"),
    ]
    for taken in ("which=latest,epoch=2", "which=latest,epoch=2,end"):  # an evaluation's
        os.makedirs(run / "evaluations" / taken / "figures")
        (run / "evaluations" / taken / "figures" / "b.png").write_text("b")
    for saved, name in cases:
        os.makedirs(run / "figures")
        (run / "figures" / "a.png").write_text("a")
        text = saved if isinstance(saved, str) else json.dumps(saved)
        (run / "eval.json").write_text(text)
        (run / "summary.json").write_text('{"status": "done"}')
        reruns.reopen(str(run))
        assert sorted(os.listdir(run)) == ["evaluations"], name
        assert (run / "evaluations" / name / "eval.json").read_text() == text
        assert os.listdir(run / "evaluations" / name / "figures") == ["a.png"]
    for taken in ("which=latest,epoch=2", "which=latest,epoch=2,end"):
        assert os.listdir(run / "evaluations" / taken / "figures") == ["b.png"]
    # The log names the epoch it read, and a damaged file's as such (it said "epoch None").
    assert "its evaluation of epoch 3 moved to" in caplog.text
    assert "its evaluation (unreadable: of an earlier end) moved to" in caplog.text
    assert "epoch None" not in caplog.text


def test_extending_a_finished_run_whose_checkpoints_are_gone_is_refused(tmp_path):
    """It trained again from epoch 1, replacing the finished run's history, under a warning
    that blamed train.checkpoints=False (the lifecycle probe)."""
    w = tmp_path / "run"
    _train(_config(**{"train.epochs": 2}), w)
    shutil.rmtree(w / "checkpoints")
    kept = {f: (w / f).read_bytes() for f in ("metrics.jsonl", "summary.json", "config.json")}
    with pytest.raises(
        UserError, match=r"finished run of 2 epoch\(s\) whose checkpoints/ are gone"
    ):
        _train(_config(**{"train.epochs": 4}), w)
    assert {f: (w / f).read_bytes() for f in kept} == kept
    # Its metrics.jsonl gone too: the same refusal. The history's was given first, naming
    # "checkpoints up to epoch 2" and offering to delete checkpoints/, which it had done (a
    # probe); of a finished run with checkpoints, the history's offers no deletion.
    os.remove(w / "metrics.jsonl")
    with pytest.raises(UserError, match=r"finished run of 2 epoch\(s\) whose checkpoints/ are"):
        _train(_config(**{"train.epochs": 4}), w)
    _train(_config(**{"train.epochs": 2}), tmp_path / "kept")
    os.remove(tmp_path / "kept" / "metrics.jsonl")
    with pytest.raises(UserError, match=r"checkpoints up to epoch 2: .* new workdir\.$"):
        _train(_config(**{"train.epochs": 4}), tmp_path / "kept")
    # A run that never saved any (train.checkpoints=False) is trained again, as it says.
    n = tmp_path / "none"
    _train(_config(**{"train.epochs": 2, "train.checkpoints": False}), n)
    (s,) = _train(_config(**{"train.epochs": 4, "train.checkpoints": False}), n)
    assert s["epoch"] == 4


def test_a_lost_history_is_refused_before_anything_compiles(tmp_path, monkeypatch):
    _train(_config(), tmp_path / "run")
    for name in ("summary.json", "metrics.jsonl"):
        os.remove(tmp_path / "run" / name)

    def compiles(*args, **kwargs):
        raise AssertionError("training started (and compiled) before the refusal")

    monkeypatch.setattr(experiment.loop, "train", compiles)
    with pytest.raises(UserError, match=r"metrics.jsonl is missing, but the run has checkpoints"):
        _train(_config(), tmp_path / "run")


def test_a_refused_rerun_changes_nothing(tmp_path):
    _train(_config(), tmp_path / "run")
    before = {
        f: (tmp_path / "run" / f).read_bytes()
        for f in ("config.json", "metrics.jsonl", "summary.json")
    }
    with pytest.raises(UserError, match=r"model.latent_dim: 9 -> 4"):
        _train(_config(**{"model.latent_dim": 4}), tmp_path / "run")
    # (it decides eval.json: of a finished run; one not yet evaluated may change it)
    with pytest.raises(UserError, match=r"eval.at_end: False -> True"):
        _train(_config(**{"eval.at_end": True}), tmp_path / "run")
    with pytest.raises(UserError, match=r"train.epochs: 4 -> 2"):  # an unfinished one too
        os.remove(tmp_path / "run" / "summary.json")
        _train(_config(**{"train.epochs": 2}), tmp_path / "run")
    for f in ("config.json", "metrics.jsonl"):
        assert (tmp_path / "run" / f).read_bytes() == before[f]
    # Operational settings may change: they never change a number.
    changed = {"train.log_every": 2, "train.keep_checkpoints": 3, "train.tensorboard": True}
    (s,) = _train(_config(**changed), tmp_path / "run")
    assert s["status"] == "done"
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before["metrics.jsonl"]


def _truncate_newest(w) -> int:
    ck = Checkpointer(str(w), read_only=True)
    epoch = ck.epochs()[-1]
    ck.close()
    files = [
        os.path.join(d, f)
        for d, _, fs in os.walk(w / "checkpoints" / str(epoch))
        for f in fs
        if os.path.getsize(os.path.join(d, f)) > 64
    ]
    for f in files:  # every data file cut short
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) // 2)
    return epoch


def test_the_launcher_names_a_damaged_checkpoint_without_the_reads_late_tracebacks(tmp_path):
    # In a checkpoint orbax wrote (the format until December 2026, still read), orbax closes
    # its event loop at the first failed read; tensorstore's other reads then land on the
    # closed loop, each printed as a traceback ('Event loop is closed') before the
    # one-paragraph error. The launcher prints the error alone. (The late reads race the
    # error: without the filter they show in most runs here, 2 of 3; the next test is exact.)
    _train(_config(), tmp_path / "run")
    epoch = checkpoints_old.to_orbax(str(tmp_path / "run"))[-1]
    # Its arrays' data files cut short, its metadata intact: the reads start, then fail.
    data = tmp_path / "run" / "checkpoints" / str(epoch) / "state" / "ocdbt.process_0" / "d"
    for f in data.iterdir():
        os.truncate(f, 10)
    # Today's format (an .npz): its arrays cut short alike, named alike.
    _train(_config(), tmp_path / "new")
    new = Checkpointer(str(tmp_path / "new"), read_only=True).epochs()[-1]
    os.truncate(tmp_path / "new" / "checkpoints" / str(new) / "state.npz", 10)
    for run, e in (("run", epoch), ("new", new)):
        r = subprocess.run(
            [sys.executable, "-m", "experiments.evaluate", f"--workdir={tmp_path / run}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2, r.stderr
        assert f"checkpoints/{e} cannot be read" in r.stderr
        assert "Traceback" not in r.stderr and "Event loop is closed" not in r.stderr, r.stderr


def test_a_stop_that_a_finalizer_swallowed_is_delivered_again():
    """The launchers' handler raises its stop where the signal lands; inside JAX's garbage
    collector callback Python only prints it ("Exception ignored in: _xla_gc_callback"), and
    evaluate ran on to the end. The unraisable hook sends the signal again, from a thread."""
    got = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda *a: got.set())
    try:
        swallowed = Interrupted(signal.SIGUSR1, "in a test")
        runtime._QuietUnraisable(lambda u: None)(
            types.SimpleNamespace(exc_value=swallowed, exc_traceback=None)
        )
        for _ in range(6000):  # sleeps, in which the main thread runs the handler
            if got.is_set():
                break
            time.sleep(0.01)
        assert got.is_set()
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_only_a_late_read_on_a_closed_event_loop_is_kept_quiet():
    loop = asyncio.new_event_loop()
    loop.close()
    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError as e:
        late = e
    passed = []
    hook = runtime._QuietUnraisable(passed.append)
    hook(types.SimpleNamespace(exc_value=late, exc_traceback=late.__traceback__))
    assert passed == []
    other = types.SimpleNamespace(
        exc_value=RuntimeError("Event loop is closed"), exc_traceback=None
    )
    hook(other)  # the same words raised elsewhere (no asyncio frame) are passed on
    hook(unraisable := types.SimpleNamespace(exc_value=ValueError("x"), exc_traceback=None))
    assert passed == [other, unraisable]


def test_unreadable_newest_checkpoint_falls_back_and_resumes_bit_for_bit(tmp_path, caplog):
    _train(_config(), tmp_path / "whole")
    _train(_config(), tmp_path / "damaged")
    os.remove(tmp_path / "damaged" / "summary.json")  # as if killed after the last save
    epoch = _truncate_newest(tmp_path / "damaged")
    # Loading it (ae_jax.load, evaluate, encode, export) names it and the way out, no traceback.
    with pytest.raises(
        UserError, match=rf"checkpoints/{epoch} cannot be read .*\(mkdir -p .* && mv .*/{epoch} "
    ) as e:
        ae_jax.load(str(tmp_path / "damaged"))
    # Its eval/loss unreadable too, the best readable one is another: offered, by its epoch.
    assert str(e.value).endswith(
        f"(which='best'; on the command line --which=best), epoch {epoch - 1}."
    )
    # Its arrays alone cut short, it is the best too: no "load the best instead", which named
    # the same checkpoint again.
    arrays = tmp_path / "arrays"
    shutil.copytree(tmp_path / "whole", arrays)
    assert Checkpointer(str(arrays), read_only=True).best_epoch() == epoch
    npz = arrays / "checkpoints" / str(epoch) / "state.npz"
    os.truncate(npz, os.path.getsize(npz) // 2)
    for which in ("latest", "best"):
        with pytest.raises(UserError, match=rf"checkpoints/{epoch} cannot be read") as e:
            ae_jax.load(str(arrays), which=which)
        assert "which=" not in str(e.value) and str(e.value).endswith("aside itself."), e.value
    # The run's only checkpoint: no "move it aside to read the others" (there are none).
    for other in set(os.listdir(arrays / "checkpoints")) - {str(epoch)}:
        shutil.rmtree(arrays / "checkpoints" / other)
    with pytest.raises(UserError, match=r"It is the run's only checkpoint: restore it from a "):
        ae_jax.load(str(arrays))
    # The way out it names for a finished run (whose training command does nothing): moved
    # aside, the newest older checkpoint is read.
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "damaged", copy)
    os.makedirs(copy / "damaged_checkpoints")
    os.replace(copy / "checkpoints" / str(epoch), copy / "damaged_checkpoints" / str(epoch))
    assert ae_jax.load(str(copy)).epoch == epoch - 1

    # A file it may not read is not damage: no advice to set a good checkpoint aside.
    def denied(self, epoch):
        raise PermissionError(13, "Permission denied")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Checkpointer, "restore_raw", denied)
        with pytest.raises(UserError, match=r"cannot be read: \[Errno 13\] Permission denied$"):
            ae_jax.load(str(tmp_path / "whole"))
    caplog.set_level("WARNING")
    (s,) = _train(_config(), tmp_path / "damaged")
    assert "cannot be read" in caplog.text and s["resumed_from_epoch"] == epoch - 1
    assert f"; falling back to the epoch-{epoch - 1} checkpoint" in caplog.text
    assert (tmp_path / "damaged" / "damaged_checkpoints" / str(epoch)).exists()  # kept aside
    assert _rows(tmp_path / "damaged") == _rows(tmp_path / "whole")
    assert _same(_state(tmp_path / "damaged"), _state(tmp_path / "whole"))


def test_a_group_resumes_below_one_runs_damaged_checkpoint_and_writes_over_the_others(tmp_path):
    """Two runs trained together; the first's newest checkpoint is damaged. Both resume from
    the epoch before it; the second's own newest checkpoint is written again, not refused."""
    configs = [_config(**{"train.seed": s}) for s in (0, 1)]
    whole = [str(tmp_path / f"whole{s}") for s in (0, 1)]
    runs = [str(tmp_path / f"run{s}") for s in (0, 1)]
    experiment.train_group(configs, whole)
    experiment.train_group(configs, runs)
    for w in runs:
        os.remove(os.path.join(w, "summary.json"))  # as if killed after the last saves
    epoch = _truncate_newest(tmp_path / "run0")
    summaries = experiment.train_group(configs, runs)
    assert [s["resumed_from_epoch"] for s in summaries] == [epoch - 1] * 2
    for w, ref in zip(runs, whole, strict=True):
        assert _rows(w) == _rows(ref)
        assert _same(_state(w), _state(ref))


def test_a_group_killed_while_saving_resumes_together_bit_for_bit(tmp_path):
    """Three runs trained together, killed while saving epoch 2's checkpoints: two saved it,
    the third did not. All three resume from epoch 1, together: trained apart (K = 2 from
    epoch 2, K = 1 from epoch 1) they differ from the uninterrupted group in the last bits."""
    keep = {"train.batch_size": 100, "train.keep_checkpoints": 4}
    configs = [_config(**{"train.seed": s, **keep}) for s in range(3)]
    whole = [str(tmp_path / f"whole{s}") for s in range(3)]
    runs = [str(tmp_path / f"run{s}") for s in range(3)]
    experiment.train_group(configs, whole)
    experiment.train_group(configs, runs)
    for w in runs:
        os.remove(os.path.join(w, "summary.json"))
        for e in (3, 4):
            shutil.rmtree(os.path.join(w, "checkpoints", str(e)))
    shutil.rmtree(os.path.join(runs[2], "checkpoints", "2"))  # the kill came before its save
    summaries = experiment.train_group(configs, runs)
    assert [s["resumed_from_epoch"] for s in summaries] == [1, 1, 1]
    for w, ref in zip(runs, whole, strict=True):
        assert _rows(w) == _rows(ref)
        assert _same(_state(w), _state(ref))


@pytest.mark.parametrize("every", [1, 0])
def test_a_group_killed_in_its_first_save_trains_again_together_bit_for_bit(tmp_path, every):
    """As above, but at the group's first save (with checkpoint_every=0 its final one): two
    runs saved it, the third has none. Split (K = 2 resuming, K = 1 from scratch) the third's
    numbers drifted (a kill probe: results.csv moved in its 8th digit). All three train again
    from epoch 1, together, as they first did. A run whose metrics end before that epoch (hard
    killed earlier, in another launch or shard) or that never started stays apart: joining
    would throw the others' training away for nothing."""
    keep = {"train.batch_size": 100, "train.checkpoint_every": every, "train.keep_checkpoints": 4}
    configs = [_config(**{"train.seed": s, **keep}) for s in range(3)]
    whole = [str(tmp_path / f"whole{s}") for s in range(3)]
    runs = [str(tmp_path / f"run{s}") for s in range(3)]
    experiment.train_group(configs, whole)
    experiment.train_group(configs, runs)
    first = 1 if every else 4
    metrics = [os.path.join(w, "metrics.jsonl") for w in runs]
    for w, m in zip(runs, metrics, strict=True):
        os.remove(os.path.join(w, "summary.json"))
        for e in workdir_lib.checkpoint_epochs(w) - {first}:
            shutil.rmtree(os.path.join(w, "checkpoints", str(e)))
        with open(m) as f:  # the epochs logged when the kill came: the next is, during the save
            rows = [r for r in f if json.loads(r)["epoch"] <= first + 1]
        with open(m, "w") as f:
            f.writelines(rows)
    shutil.rmtree(os.path.join(runs[2], "checkpoints", str(first)))  # the kill came first
    assert startup.resume_groups(runs) == [[0, 1, 2]]
    full = open(metrics[2]).read()
    behind = [r for r in full.splitlines(keepends=True) if json.loads(r)["epoch"] < first]
    for earlier in (behind, []):  # killed before the save (elsewhere), or never started
        with open(metrics[2], "w") as f:
            f.writelines(earlier)
        assert startup.resume_groups(runs) == [[0, 1], [2]]
    with open(metrics[2], "w") as f:
        f.write(full + '{"epoch": 4')  # a last line cut off by the kill is passed over
    assert startup.resume_groups(runs) == [[0, 1, 2]]
    summaries = experiment.train_group(configs, runs)
    assert [s["resumed_from_epoch"] for s in summaries] == [0, 0, 0]
    for w, ref in zip(runs, whole, strict=True):
        assert _rows(w) == _rows(ref)
        assert _same(_state(w), _state(ref))


def test_a_process_that_does_not_write_passes_over_a_damaged_checkpoint(tmp_path, monkeypatch):
    """In a multi-host run every process restores, and process 0 alone writes: another
    process must fall back past the damaged checkpoint without moving it (process 0 does)."""
    _train(_config(), tmp_path / "whole")
    _train(_config(), tmp_path / "run")
    os.remove(tmp_path / "run" / "summary.json")
    epoch = _truncate_newest(tmp_path / "run")
    monkeypatch.setattr(distributed, "is_writer", lambda: False)
    (s,) = _train(_config(), tmp_path / "run")
    assert s["resumed_from_epoch"] == epoch - 1
    assert (tmp_path / "run" / "checkpoints" / str(epoch)).exists()  # left for the writer
    assert not (tmp_path / "run" / "summary.json").exists()  # nor did it write anything
    monkeypatch.undo()
    (s,) = _train(_config(), tmp_path / "run")
    assert s["resumed_from_epoch"] == epoch - 1
    assert (tmp_path / "run" / "damaged_checkpoints" / str(epoch)).exists()
    assert _same(_state(tmp_path / "run"), _state(tmp_path / "whole"))


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
    c = _config(**{"train.keep_checkpoints": 1})
    _train(c, tmp_path / "run")
    ck = Checkpointer(str(tmp_path / "run"), read_only=True)
    epochs = ck.epochs()
    ck.close()
    os.remove(tmp_path / "run" / "summary.json")
    for e in epochs:
        os.remove(tmp_path / "run" / "checkpoints" / str(e) / "state.npz")
    with pytest.raises(UserError, match="no readable checkpoint to resume from"):
        _train(c, tmp_path / "run")


@pytest.mark.parametrize("position", ["whole", "unreadable", "after lost rows"])
def test_a_stops_position_is_resumed_when_no_checkpoint_can_be_read(tmp_path, caplog, position):
    """Every checkpoint unreadable, but a stop saved the run's position inside an epoch: the
    rerun resumes there, as it does with no checkpoint at all, to an uninterrupted run's
    numbers (it was refused, "no readable checkpoint", and only the next rerun, the damaged
    checkpoints set aside, resumed: a probe; a sweep's group failed with its healthy runs).
    A position that cannot be resumed (unreadable, or after rows metrics.jsonl lost) leaves
    the refusal as it was, with no word of a restart before it (a review)."""
    c = _config()
    _train(c, tmp_path / "whole")
    shutil.copytree(tmp_path / "whole", tmp_path / "run")
    w = str(tmp_path / "run")
    os.remove(os.path.join(w, "summary.json"))
    shutil.rmtree(os.path.join(w, "checkpoints", "4"))
    metrics = tmp_path / "run" / "metrics.jsonl"
    rows_kept = 1 if position == "after lost rows" else 3
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:rows_kept]))
    state = jax.tree.map(lambda a: np.asarray(a)[None], _state(w, 3))
    steps = json.loads((tmp_path / "run" / "config.json").read_text())["dataset"]
    zeros = {n: np.zeros((1, 0), np.float32) for n in ("loss", "recon", "l1", "kl", "grad_norm")}
    rows = np.zeros((1, 0), np.float32)
    Partial.save_group([w], 4, 0, steps["steps_per_chunk"], state, zeros, rows)
    if position == "unreadable":
        with open(os.path.join(w, "partial_epoch.msgpack"), "r+b") as f:
            f.truncate(10)
    kept = sorted(os.listdir(os.path.join(w, "checkpoints")))
    assert kept  # (the newest train.keep_checkpoints of epochs 1-3)
    for e in kept:
        with open(os.path.join(w, "checkpoints", e, "state.npz"), "r+b") as f:
            f.truncate(20)
    caplog.set_level("WARNING")
    if position != "whole":
        with pytest.raises(UserError, match="no readable checkpoint to resume from"):
            _train(c, w)
        assert "restarts" not in caplog.text and "starts from epoch 1" not in caplog.text
        return
    (s,) = _train(c, w)
    assert "no checkpoint could be read" in caplog.text and s["epoch"] == 4
    # The last one set aside says there is no older one (not "falling back": a walkthrough).
    assert f"damaged_checkpoints/{kept[0]}; no older one" in caplog.text
    assert sorted(os.listdir(os.path.join(w, "damaged_checkpoints"))) == kept
    assert _rows(w) == _rows(tmp_path / "whole")
    assert _same(_state(w), _state(tmp_path / "whole"))


def test_cut_off_metrics_line_is_dropped_and_the_run_completes(tmp_path, caplog):
    c = _config(**{"train.epochs": 3})
    _train(c, tmp_path / "whole")
    _train(_config(**{"train.epochs": 2}), tmp_path / "cut")
    # Killed while writing epoch 3's row: 2 epochs checkpointed, half a line after them.
    (tmp_path / "cut" / "summary.json").unlink()
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "step": 1')
    with open(tmp_path / "cut" / "config.json") as f:
        saved = json.load(f)
    saved["train"]["epochs"] = 3  # the run was started for 3 epochs
    with open(tmp_path / "cut" / "config.json", "w") as f:
        json.dump(saved, f)
    caplog.set_level("WARNING")
    _train(c, tmp_path / "cut")
    assert "last line is cut off" in caplog.text
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "whole")


@pytest.mark.parametrize("lost", ["a cut line", "whole lines"])
def test_a_checkpoint_newer_than_the_history_is_passed_over(tmp_path, caplog, lost):
    """A crash can leave a checkpoint on disk (orbax syncs it) while the last rows of
    metrics.jsonl (written, not synced) are cut or gone: the resume must start from a
    checkpoint the history reaches, and redo the epochs after it, or their rows were missing
    for good (the run finished with epochs 1-3 recorded and summary.json at epoch 3)."""
    c = _config(**{"train.checkpoint_every": 2})  # checkpoints of epochs 2 and 4
    _train(c, tmp_path / "whole")
    _train(c, tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()
    metrics = tmp_path / "run" / "metrics.jsonl"
    rows = metrics.read_text().splitlines(keepends=True)
    kept = rows[:3] + [rows[3][:25]] if lost == "a cut line" else rows[:2]  # to epoch 3 / 2
    metrics.write_text("".join(kept))
    caplog.set_level("WARNING")
    (s,) = _train(c, tmp_path / "run")
    assert s["resumed_from_epoch"] == 2 and s["epoch"] == 4
    covered = 3 if lost == "a cut line" else 2
    said = f"holds the epochs up to {covered} only, but the checkpoint to resume from is of epoch 4"
    assert said in caplog.text and "resuming from the epoch-2 checkpoint" in caplog.text
    assert _rows(tmp_path / "run") == _rows(tmp_path / "whole")
    assert _same(_state(tmp_path / "run"), _state(tmp_path / "whole"))


def test_a_mid_epoch_stop_after_lost_rows_is_passed_over(tmp_path, caplog):
    """The same for a stop inside an epoch: its saved position is ignored when the rows of
    the epochs before it are not all in metrics.jsonl."""
    c = _config(**{"train.checkpoint_every": 2})
    _train(c, tmp_path / "whole")
    _train(c, tmp_path / "run")
    w = str(tmp_path / "run")
    os.remove(os.path.join(w, "summary.json"))
    shutil.rmtree(os.path.join(w, "checkpoints", "4"))
    ck = Checkpointer(w, read_only=True)
    state = jax.tree.map(lambda a: np.asarray(a)[None], ck.restore_raw(2))
    ck.close()
    # A stop inside epoch 4 (as if after 0 chunks of it), but epoch 3's row was lost.
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:2]))
    steps = json.loads((tmp_path / "run" / "config.json").read_text())["dataset"]
    chunk = steps["steps_per_chunk"]
    zeros = {"loss": np.zeros((1, 0), np.float32)}
    Partial.save_group([w], 4, 0, chunk, state, zeros, np.zeros((1, 0), np.float32))
    caplog.set_level("WARNING")
    (s,) = _train(c, tmp_path / "run")
    said = "holds the epochs up to 2 only, but a stop's saved position is in epoch 4"
    assert said in caplog.text and "resuming from the epoch-2 checkpoint" in caplog.text
    assert s["resumed_from_epoch"] == 2
    assert _rows(tmp_path / "run") == _rows(tmp_path / "whole")


def test_a_mid_epoch_resume_under_other_software_records_both(tmp_path, caplog):
    """A stop inside epoch 4 under software A, resumed under B: summary.json credited the
    whole run to B (a checkpoint's software was carried into earlier_software, a stop's
    position's was not). The position's software is carried on now, and the numbers still
    equal an uninterrupted run's."""
    c = _config()
    (whole,) = _train(c, tmp_path / "whole")
    shutil.copytree(tmp_path / "whole", tmp_path / "run")
    w = str(tmp_path / "run")
    os.remove(os.path.join(w, "summary.json"))
    shutil.rmtree(os.path.join(w, "checkpoints", "4"))
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:3]))
    # A stop at the very start of epoch 4 (no chunk of it done) under other software.
    state = jax.tree.map(lambda a: np.asarray(a)[None], _state(w, 3))
    chunk = json.loads((tmp_path / "run" / "config.json").read_text())["dataset"]
    zeros = {n: np.zeros((1, 0), np.float32) for n in ("loss", "recon", "l1", "kl", "grad_norm")}
    then = {**whole["software"], "jax": "9.9.9"}
    # ... by a process that had itself resumed a stop of another (two stops, no checkpoint
    # between them: the first's software was lost, a review).
    before = {**whole["software"], "jax": "8.8.8"}
    rows = np.zeros((1, 0), np.float32)
    steps = chunk["steps_per_chunk"]
    Partial.save_group([w], 4, 0, steps, state, zeros, rows, "", then, [[before]])
    caplog.set_level("WARNING")
    (s,) = _train(c, w)
    assert "other software than the position saved inside the epoch" in caplog.text
    assert s["software"] == whole["software"] and s["earlier_software"] == [then, before]
    assert _rows(w) == _rows(tmp_path / "whole")


def test_a_group_with_a_diverged_run_resumes_from_its_newest_checkpoint(tmp_path, caplog):
    """A diverged run records no epoch after its divergence while its group's checkpoints go
    on: that is no lost row, and the group resumes from its newest checkpoint (a first version
    of the lost-rows check restarted such a group from epoch 1 on every resume)."""
    sgd = {"optim.name": "sgd", "optim.eps": None, "train.epochs": 3}
    sgd["model.output_activation"] = "identity"  # a huge step overflows, not saturates
    configs = [_config(**sgd, **{"optim.learning_rate": lr}) for lr in (0.1, 1e7)]
    runs = [str(tmp_path / "ok"), str(tmp_path / "diverges")]
    experiment.train_group(configs, runs)
    assert json.load(open(os.path.join(runs[1], "summary.json")))["status"] == "diverged"
    assert len(_rows(runs[1])) < 3
    caplog.set_level("INFO")
    for c in configs:
        c.train.epochs = 5
    ok, _ = experiment.train_group(configs, runs)
    assert ok["resumed_from_epoch"] == 3 and ok["epoch"] == 5
    assert "rows were lost" not in caplog.text


def test_retention_applies_to_checkpoints_of_earlier_processes(tmp_path):
    c = _config(**{"train.epochs": 6, "train.keep_checkpoints": 10})
    _train(c, tmp_path / "run")
    assert len(os.listdir(tmp_path / "run" / "checkpoints")) == 6
    ck = Checkpointer(str(tmp_path / "run"), keep=2)  # a later process, keeping 2 (+ best)
    kept = ck.epochs()
    ck.close()
    losses = {e: _meta_loss(tmp_path / "run", e) for e in range(1, 7) if e in kept}
    assert kept[-2:] == [5, 6] and len(kept) <= 3
    assert len(kept) == 2 or min(losses, key=losses.get) == kept[0]


def test_retention_applies_after_a_resume_too(tmp_path):
    """The checkpoints a run kept before a resume are pruned once it has saved newer ones."""
    _train(_config(**{"train.keep_checkpoints": 10}), tmp_path / "run")
    (s,) = _train(_config(**{"train.epochs": 7, "train.keep_checkpoints": 2}), tmp_path / "run")
    assert s["resumed_from_epoch"] == 4
    ck = Checkpointer(str(tmp_path / "run"), read_only=True)
    kept, best = ck.epochs(), ck.best_epoch()
    ck.close()
    assert set(kept) == {6, 7, best}


def _meta_loss(w, epoch):
    ck = Checkpointer(str(w), read_only=True)
    loss = ck.meta(epoch)["metrics"]["eval/loss"]
    ck.close()
    return loss


def test_full_disk_during_a_save_is_one_paragraph(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise ValueError("RESOURCE_EXHAUSTED: ... No space left on device")

    monkeypatch.setattr(Checkpointer, "save", full)
    with pytest.raises(
        UserError,
        match=r"cannot write to the workdir \(no space left on "
        r"device; .*checkpoints already written are kept",
    ):
        _train(_config(), tmp_path / "run")


OOM = "RESOURCE_EXHAUSTED: Out of memory allocating 101424106472 bytes."


def test_running_out_of_memory_is_said_as_such_not_as_a_full_disk(tmp_path, monkeypatch, capsys):
    """XLA's out-of-memory error shares RESOURCE_EXHAUSTED with tensorstore's full disk: an
    IWAE pass too large for memory was reported as "no space left on device" (a sweep's
    failed.json kept that), and `ae-jax evaluate` printed its traceback. Now one paragraph
    saying which settings size the computation, from the Python API and every command."""

    def too_big(trained, stop):
        raise jax.errors.JaxRuntimeError(OOM)

    monkeypatch.setattr(experiment, "_evaluate", too_big)
    with pytest.raises(UserError, match=r"^the computation ran out of memory \(RESOURCE_EXHAUS"):
        _train(_config(), tmp_path / "run")
    with pytest.raises(SystemExit) as stopped, cli.cli_errors():  # as `ae-jax evaluate`'s
        raise RuntimeError("while evaluating") from jax.errors.JaxRuntimeError(OOM)
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert said.startswith("error: the computation ran out of memory (RESOURCE_EXHAUSTED: Out")
    assert "lower eval.iw_batch_rows" in said and "Traceback" not in said
    assert errors.storage_error(jax.errors.JaxRuntimeError(OOM)) is None
    disk = ValueError("RESOURCE_EXHAUSTED: Error writing local file 'x': [OS error 28]")
    assert errors.storage_error(disk)[0] == "no space left on device"  # tensorstore's still is
    assert errors.memory_error(disk) is None


def _vae(**overrides):
    c = _config(**{"model.name": "vae", "model.code_activation": "identity", **overrides})
    c.loss.recon, c.model.output_activation = "bce", "sigmoid"
    c.train.epochs, c.eval.at_end = 1, True
    return c


def test_an_evaluation_too_large_for_memory_is_refused_before_training(tmp_path):
    """eval.iw_samples=2e9 trained to the end, then ran out of memory in the bound's pass, and
    no rerun could finish it (a probe). The memory check counts that pass now, before
    anything is read into a model or compiled."""
    c = _vae(**{"eval.iw_samples": 2_000_000_000})
    with pytest.raises(UserError) as info:
        _train(c, tmp_path / "run")
    said = str(info.value)
    assert "evaluation's importance-weighted pass, in place of the activations " in said, said
    assert said.endswith(
        "; lower eval.iw_batch_rows (rows per batch of the bound, down to 1) or "
        "eval.iw_samples (its k samples per row)."
    )
    assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")
    # Its size: rows of a batch x k samples x (features + 64), as the pass holds them.
    ds = ae_jax.data.load_dataset(c.data)
    rows, d = min(64, ds.val.shape[0]), ds.num_features
    gib = (5 * ds.val.shape[0] + rows * 2_000_000_000 * (d + 64)) * 4 / 2**30
    assert f"importance-weighted pass, in place of the activations {gib:.3g} GiB)" in said


def test_a_training_bound_too_large_for_memory_is_refused_naming_its_samples(tmp_path):
    """loss.iw_samples_train=2e6 compiled (12 s), then ran out of memory, advised to lower
    train.batch_size or eval settings, and its workdir then refused the fixed config (a probe).
    Training's k samples per row are in the estimate, refused before any file is written."""
    c = _vae(**{"loss.iw_samples_train": 2_000_000, "eval.iw_samples": 5})
    with pytest.raises(UserError) as info:
        _train(c, tmp_path / "run")
    said = str(info.value)
    assert "activations of one batch's loss.iw_samples_train samples " in said, said
    assert said.endswith(
        "; lower loss.iw_samples_train (training's k samples per row), or train.batch_size / "
        "train.eval_batch_size."
    )
    assert not os.path.exists(tmp_path / "run")
    c.loss.iw_samples_train = 5  # the fixed config trains in the same directory
    _train(c, tmp_path / "run")
    assert os.path.exists(tmp_path / "run" / "summary.json")


def test_a_run_not_yet_evaluated_may_change_its_evaluation_settings(tmp_path, monkeypatch):
    """A run whose evaluation failed (here: out of memory) is finished by a rerun with a
    smaller eval.iw_samples; once evaluated, its evaluation settings are fixed again."""
    w = tmp_path / "run"

    def too_big(trained, stop):
        raise jax.errors.JaxRuntimeError(OOM)

    with monkeypatch.context() as m:
        m.setattr(experiment, "_evaluate", too_big)
        with pytest.raises(UserError, match="ran out of memory"):
            _train(_vae(**{"eval.iw_samples": 50}), w)
    assert not os.path.exists(w / "summary.json") and os.path.exists(w / "metrics.jsonl")
    _train(_vae(**{"eval.iw_samples": 5, "eval.near_zero": 0.1}), w)
    evaluated = json.load(open(w / "eval.json"))
    assert evaluated["vae/iwae_k"] == 5
    assert json.load(open(w / "config.json"))["eval"]["iw_samples"] == 5
    assert len(_rows(w)) == 1  # finished, not trained again
    with pytest.raises(UserError, match=r"eval.iw_samples: 5 -> 7"):
        _train(_vae(**{"eval.iw_samples": 7, "eval.near_zero": 0.1}), w)
    assert json.load(open(w / "eval.json")) == evaluated


def test_a_run_whose_figures_fail_is_finished_without_them(tmp_path, monkeypatch):
    """A figure that failed to draw (a column named with two '$', read as mathematics: a
    probe) failed its run on every rerun, and train.figures=False was refused as another
    config: the run could not be finished in its directory. A run not yet evaluated may turn
    its figures (and its evaluation) off, as the failure says; once finished, they are fixed."""
    w = tmp_path / "run"
    real = figures.plan

    def failing(out_dir, inputs):  # bars of 3 values for 1 name: fails in the worker
        bad = figures.Drawing(
            os.path.join(out_dir, "x.png"), "per_feature_bars", (["a"], [1.0] * 3, None, "v", "t")
        )
        return [*real(out_dir, inputs), bad]

    with monkeypatch.context() as m:
        m.setattr(figures, "plan", failing)
        with pytest.raises(
            RuntimeError,
            match=r"x.png failed \(a bug in ae_jax's figures: a run of its own, "
            r"not a sweep's, is finished without them by its command with train.figures=False",
        ):
            _train(_config(**{"train.figures": True, "eval.at_end": True}), w)
    assert not os.path.exists(w / "summary.json") and not os.path.exists(w / "eval.json")
    (summary,) = _train(_config(**{"train.figures": False, "eval.at_end": True}), w)
    assert summary["status"] == "done" and summary["resumed_from_epoch"] == 4  # not retrained
    assert json.load(open(w / "eval.json"))["figures"] == []
    assert json.load(open(w / "config.json"))["train"]["figures"] is False
    with pytest.raises(UserError, match=r"train.figures: False -> True"):
        _train(_config(**{"train.figures": True, "eval.at_end": True}), w)


def test_a_run_stopped_without_checkpoints_may_turn_them_on(tmp_path):
    """A stop of a run with train.checkpoints=False says "the same command trains from epoch 1
    again (turn checkpoints on to resume)", and the rerun with them on was refused as another
    config (a probe). A run that saved nothing may turn them on (or off); one that saved a
    checkpoint keeps its setting."""
    w = tmp_path / "run"
    _train(_config(**{"train.checkpoints": False}), w)
    os.remove(w / "summary.json")  # what a stop or kill in training leaves: nothing saved
    (summary,) = _train(_config(), w)  # checkpoints on
    assert summary["status"] == "done" and len(_rows(w)) == 4
    assert workdir_lib.checkpoint_epochs(str(w))
    os.remove(w / "summary.json")  # a checkpoint of epoch 4 now: the setting is kept
    with pytest.raises(UserError, match=r"train.checkpoints: True -> False"):
        _train(_config(**{"train.checkpoints": False}), w)


# ---- a kill campaign ----

ARGS = [
    "--config=experiments/configs/seed_sparse.py:digits",
    "--config.train.epochs=3",
    "--config.train.batch_size=64",
    "--config.train.chunk_steps=5",
    "--config.train.log_seconds=0",
    "--config.train.checkpoint_every=1",
    "--config.eval.iw_samples=4",
]
# Kill moments, each when the launcher prints a line containing the text.
MOMENTS = ["compilation cache", "compiling", "step 10/", "epoch 2/3 |", "evaluating"]


def _launch(workdir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.main", f"--workdir={workdir}", *ARGS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _kill_at(workdir, text) -> bool:
    """Starts the launcher and SIGKILLs it once it prints `text`; False if it finished."""
    p = _launch(workdir)
    for line in p.stdout:
        if text in line:
            p.send_signal(signal.SIGKILL)
            p.wait()
            return True
    p.wait()
    return False


def test_kill_campaign_ends_like_an_uninterrupted_run(tmp_path):
    _, _ = _launch(tmp_path / "whole").communicate(timeout=600)
    killed = tmp_path / "killed"
    hit = [_kill_at(killed, text) for text in MOMENTS]
    assert sum(hit) >= 3, hit  # most moments are reached: the run resumed between them
    out, _ = _launch(killed).communicate(timeout=600)
    assert (killed / "summary.json").exists(), out[-3000:]
    assert _rows(killed) == _rows(tmp_path / "whole")
    assert _same(_state(killed), _state(tmp_path / "whole"))
    assert json.loads((killed / "eval.json").read_text()) == json.loads(
        (tmp_path / "whole" / "eval.json").read_text()
    )
    assert sorted(os.listdir(killed / "figures")) == sorted(
        os.listdir(tmp_path / "whole" / "figures")
    )


def test_a_stop_while_initialising_many_models_is_clean(tmp_path, monkeypatch):
    class Stop:
        signum = signal.SIGTERM

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(experiment, "StopRequests", Stop)
    with pytest.raises(Interrupted) as stopped:
        _train(_config(**{"train.num_models": 3}), tmp_path / "run")
    # Not "nothing was trained yet": a sweep's earlier groups had finished their runs (a probe).
    assert "while initialising model 1 of 3 of a group; the group had not started training (" in (
        str(stopped.value)
    )
    assert not os.path.exists(tmp_path / "run" / "seed=0" / "summary.json")


def test_run_names_are_distinct_for_distinct_floats_and_safe_as_directories():
    a = sweeps.run_name({"optim.learning_rate": 1e-3})
    b = sweeps.run_name({"optim.learning_rate": 1.0000001e-3})
    assert a == "optim.learning_rate=0.001" and a != b
    assert (
        sweeps.run_name({"loss.beta": 1.0, "model.activation": "a/b"})
        == "loss.beta=1,model.activation=a_b"
    )
    runs = sweeps.expand(
        [{"optim.learning_rate": 1e-3}, {"optim.learning_rate": 1.0000001e-3}], "/w"
    )
    assert len({r.workdir for r in runs}) == 2
    for bad in ("..", "a/b", ".hidden", ""):
        with pytest.raises(UserError, match="cannot name a run directory|becomes part of a run"):
            sweeps.named(bad, {"loss.beta": 1.0})


@pytest.mark.parametrize(
    "saved, parts",
    [
        # a kill while the group saved epoch 3: all resume from 2, together
        ([{2, 3}, {2, 3}, {1, 2}], [[0, 1, 2]]),
        # runs being extended (checkpoints) beside runs added (none): never joined
        ([{4}, set(), {4}, set()], [[0, 2], [1, 3]]),
        # one run behind the newest epoch all share: split by newest checkpoint
        ([{1, 3}, {1, 2}, {1, 3}], [[0, 2], [1]]),
        ([set(), set()], [[0, 1]]),
    ],
)
def test_resume_groups_keep_a_group_together_when_none_loses_training(tmp_path, saved, parts):
    dirs = []
    for i, epochs in enumerate(saved):
        dirs.append(str(tmp_path / str(i)))
        for e in epochs:
            os.makedirs(os.path.join(dirs[-1], "checkpoints", str(e)))
        os.makedirs(os.path.join(dirs[-1], "checkpoints", "5.orbax-checkpoint-tmp-1"))
    assert startup.resume_groups(dirs) == parts


def test_a_workdir_deleted_while_training_is_not_marked_done(tmp_path, monkeypatch):
    """rm -rf of the workdir mid-run: the process recreated the directories it wrote later
    (checkpoints, figures) and wrote summary.json 'done' beside no config.json, exit 0; the
    rerun then said 'already finished' and load() refused. Now the run ends with a UserError."""
    c = seed_sparse.get_config()
    c.data.name, c.train.epochs, c.train.figures = "breast_cancer", 1, False
    run = tmp_path / "run"
    evaluate_runs = experiment._evaluate

    def deleted_then_evaluate(trained, stop):
        shutil.rmtree(run)  # what `rm -rf` does to a run in training
        os.makedirs(run / "checkpoints")  # ... and what the process writes again afterwards
        return evaluate_runs(trained, stop)

    monkeypatch.setattr(experiment, "_evaluate", deleted_then_evaluate)
    with pytest.raises(ae_jax.UserError, match=r"lost config.json, preprocessor.json, metrics.j"):
        experiment.train_and_evaluate(c, str(run))
    assert not (run / "summary.json").exists()


def test_a_stop_after_evaluation_writes_the_group_then_stops(tmp_path, monkeypatch):
    """A Ctrl-C after evaluation's last look used to be recorded and dropped (a sweep trained
    its next group and exited 0): the evaluated runs are written, then the call stops."""
    c = seed_sparse.get_config()
    c.data.name, c.train.epochs, c.train.figures = "breast_cancer", 1, False
    evaluate_runs = experiment._evaluate

    def then_a_signal(trained, stop):
        out = evaluate_runs(trained, stop)
        stop.signum = signal.SIGINT  # as the handler records one
        return out

    monkeypatch.setattr(experiment, "_evaluate", then_a_signal)
    with pytest.raises(Interrupted, match="stopped by SIGINT after evaluating; the evaluated runs"):
        experiment.train_and_evaluate(c, str(tmp_path / "run"))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "done" and (tmp_path / "run" / "eval.json").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_evaluate_is_one_line_and_128_plus_the_signal(tmp_path, signum):
    """Outside training (whose handlers keep its state) a command had none: Ctrl-C printed a
    75-line KeyboardInterrupt traceback, SIGTERM ended it without a word."""
    _train(_config(), tmp_path / "run")
    p = subprocess.Popen(
        [sys.executable, "-m", "experiments.evaluate", f"--workdir={tmp_path / 'run'}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",  # its first line, the compilation cache's, on arrival
            "AE_JAX_COMPILATION_CACHE": os.environ["JAX_COMPILATION_CACHE_DIR"],
        },
    )
    assert p.stdout is not None
    lines = []
    for line in p.stdout:  # the command's first line: its handlers are in place
        lines.append(line)
        if "compilation cache" in line:
            p.send_signal(signum)
            break
    rest = p.communicate(timeout=600)[0]
    assert p.returncode == 128 + signum, "".join(lines) + rest
    name = signal.Signals(signum).name
    assert f"stopped by {name} before the command finished; nothing it had written" in rest
    assert "Traceback" not in rest and not (tmp_path / "run" / "eval.json").exists()


# The console script's entry with a stop arriving while the command's modules load (sent right
# after its handlers are in place, so the test does not depend on when the modules are loaded).
EARLY_STOP = """
import os, signal, sys
from ae_jax import entry

installed = entry.EarlyStops.install


def install(self):
    out = installed(self)
    for _ in range(int(stops)):
        os.kill(os.getpid(), signal.SIGINT)
    return out


entry.EarlyStops.install = install
workdir, stops = sys.argv[1:]
sys.argv = ["ae-jax", "train", "--config=seed_sparse", "--config.data.name=breast_cancer",
            "--config.train.epochs=1", "--config.train.figures=False", "--workdir=" + workdir]
entry.main()
"""


def test_a_stop_while_the_modules_load_stops_the_command(tmp_path):
    """A Ctrl-C in a command's first half second was Python's KeyboardInterrupt wherever the
    interpreter was: inside a JAX garbage-collection callback it was printed as "Exception
    ignored" and lost, and the command trained to the end and exited 0 (a probe: 4 of 12)."""
    run = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-c", EARLY_STOP, str(run), "1"], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 128 + signal.SIGINT, r.stderr
    assert "SIGINT: stopping once the command's modules have loaded" in r.stderr
    assert "stopped by SIGINT before the command finished; nothing it had written" in r.stderr
    assert "Traceback" not in r.stderr and not run.exists()  # stopped before any work
    # A second one ends it at once, by the signal's default action.
    r = subprocess.run(
        [sys.executable, "-c", EARLY_STOP, str(run), "2"], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == -signal.SIGINT and not run.exists(), r.stderr


def test_a_second_stop_in_training_ends_the_process_at_once():
    """Under the launchers' own handler (outside training) a second SIGTERM in training fell
    back to it: an exception when the C call under way returned (a compile, a device wait),
    not the immediate end StopRequests promises."""
    code = (
        "import os, signal\n"
        "from ae_jax.training import signals\n"
        "for s in (signal.SIGTERM, signal.SIGINT):\n"
        "    signal.signal(s, signals.stop_outside_training)\n"
        "with signals.StopRequests():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('survived')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == -signal.SIGTERM and "survived" not in r.stdout, r.stderr
    # Said, not silent: the first line says a stop is under way, the second that it is abrupt.
    assert "SIGTERM again: stopping now, without a clean stop; what was saved is kept" in r.stderr


# A command whose main thread is inside a C call (as in an XLA computation) until a line
# arrives on its stdin: a thread of its own (created with the stop signals blocked, so they go
# to the main thread) reads it, and the main thread waits in pthread_join, which a signal does
# not interrupt. The launchers' handler and announcer are set up as commands.main does.
BLOCKED_IN_C = """
import ctypes, signal, sys
from ae_jax.training import signals

libc = ctypes.CDLL(None)
libc.pthread_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, signals.stop_outside_training)
try:
    with signals.%s:
        reader = ctypes.c_ulong()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        start = ctypes.cast(libc.getchar, ctypes.c_void_p)
        assert libc.pthread_create(ctypes.byref(reader), None, start, None) == 0
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        print("waiting", flush=True)
        libc.pthread_join(reader.value, None)
        print("returned", flush=True)
except signals.Interrupted as e:
    print(e, file=sys.stderr)
    sys.exit(128 + e.signum)
"""


def _in_the_c_call(pid: int) -> None:
    """Returns once the process's main thread sleeps (after its "waiting" line, that is in
    pthread_join: it holds the GIL until then), per /proc; a signal before would be handled
    in Python at once."""
    for _ in range(6000):
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "S":
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid}'s main thread never waited")


@pytest.mark.parametrize(
    "block, said",
    [
        ("Announcer()", "SIGINT: stopping once the computation under way returns"),
        ("StopRequests()", "SIGINT: stopping at the next safe point, after the chunk"),
    ],
)
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads Linux's /proc")
def test_a_stop_while_a_long_c_call_holds_the_main_thread_is_said_at_once(block, said):
    """Ctrl-C during an IWAE pass of k = 1000 (10-20 s) was silent until the pass returned:
    Python runs a handler only in the main thread, which the XLA call holds. Here the call
    returns only once this test has read the stop's line (or waited 120 s for it in vain)."""
    p = subprocess.Popen(
        [sys.executable, "-c", BLOCKED_IN_C % block],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    the_line, ended = threading.Event(), threading.Event()

    def read():
        for line in p.stderr:
            lines.append(line)
            if said in line:
                the_line.set()
        ended.set()  # (a child that died early: no 120 s wait)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert p.stdout.readline() == "waiting\n"
        _in_the_c_call(p.pid)
        p.send_signal(signal.SIGINT)
        for _ in range(1200):
            if the_line.wait(0.1) or ended.is_set():
                break
        seen_before_return = the_line.is_set()
    finally:
        with contextlib.suppress(OSError):  # (BrokenPipeError: the child has ended)
            p.stdin.write("go\n")  # the C call returns
        with contextlib.suppress(OSError):
            p.stdin.close()
        try:
            p.wait(timeout=120)
        finally:
            p.kill()  # (a child that hung: no orphan)
        rest = p.stdout.read()
    reader.join(timeout=60)
    assert seen_before_return, "".join(lines)
    # Said once (the handler, running after the call, does not say it again); then acted on.
    assert sum(ln.startswith("SIGINT: stopping") for ln in lines) == 1, "".join(lines)
    if block == "Announcer()":  # the launchers' handler ends the command
        assert p.returncode == 128 + signal.SIGINT and rest == "", (rest, lines)
        assert "stopped by SIGINT before the command finished" in lines[-1]
    else:  # training's records the stop for the loop to act on
        assert p.returncode == 0 and rest == "returned\n", (rest, lines)


def test_a_file_where_the_workdir_keeps_a_directory_and_a_protected_file_are_one_paragraph(
    tmp_path,
):
    """figures/ or tb/ as a file, .lock as a directory, an immutable metrics.jsonl (EPERM):
    tracebacks (FileExistsError, IsADirectoryError, PermissionError), or "make the workdir
    writable" for a file in the way. Now one paragraph naming the path and what fixes it."""
    w = tmp_path / "run"
    _train(_config(**{"train.epochs": 1, "train.tensorboard": True}), w)
    shutil.rmtree(w / "tb")
    (w / "tb").write_text("x")  # a file where TensorBoard's folder goes
    c = _config(**{"train.epochs": 2, "train.tensorboard": True})
    expected = f"a file stands where a directory is expected: {w / 'tb'}; '{w}'): remove or rename"
    with pytest.raises(UserError, match=re.escape(expected)):
        _train(c, w)
    # The error text of a figure worker (another process): the path is read from it.
    text = RuntimeError(f"drawing failed: FileExistsError: [Errno 17] File exists: '{w / 'tb'}'")
    assert errors.storage_error(text) == (
        f"a file stands where a directory is expected: {w / 'tb'}",
        "remove or rename it (or choose another workdir)",
    )
    # (a review) a rename's text names the file it replaces; a path in double quotes is read;
    # a folder in the way is said as such; a bare "Permission denied" of no file (a driver's)
    # is no storage error.
    moved = RuntimeError("PermissionError: [Errno 1] Operation not permitted: 'a.tmp' -> 'a'")
    assert errors.storage_error(moved)[0] == "operation not permitted: a"
    quoted = RuntimeError(f'[Errno 17] File exists: "{w / "tb"}/it\'s"')
    assert errors.storage_error(quoted)[0].endswith(f": {w / 'tb'}")
    assert errors.storage_error(FileExistsError(17, "File exists", str(w)))[0] == (
        f"a folder is in the way (left by an earlier attempt?): {w}"
    )
    assert errors.storage_error(RuntimeError("open /dev/nvidiactl: Permission denied")) is None
    ts = 'FAILED_PRECONDITION: Failed to open directory: "/w/x": Not a directory '
    assert errors.storage_error(RuntimeError(ts + "[os_error_code='20']"))[0] == (
        "a file stands where a directory is expected: /w/x"  # tensorstore's words (a review)
    )
    inside = FileExistsError(17, "File exists", str(w / "tb" / "sub" / "deeper"))
    assert errors.storage_error(inside)[0].endswith(f": {w / 'tb'}")  # the file, not the leaf
    rename = PermissionError(1, "Operation not permitted", str(w / ".m.tmp"), None, str(w / "m"))
    assert errors.storage_error(rename) == (
        f"operation not permitted: {w / 'm'}",
        "make the workdir writable or choose another (chattr -i?)",
    )
    assert errors.storage_error(IsADirectoryError(21, "Is a directory", "x"))[0] == (
        "a directory stands where a file is expected: x"
    )
    assert errors.storage_error(UserError("[Errno 13] Permission denied: 'x'")) is None


def test_loading_a_run_whose_summary_json_is_damaged_says_so_not_unfinished(tmp_path, caplog):
    """ae_jax.load of a finished run whose summary.json is damaged warned that it "has not
    finished training (stopped, or training now)": only its summary cannot be read."""
    _train(_config(**{"train.epochs": 1}), tmp_path / "run")
    (tmp_path / "run" / "summary.json").write_text('{"status": "do')
    caplog.set_level("WARNING")
    model = ae_jax.load(str(tmp_path / "run"))
    assert model.status == "unknown" and model.epoch == 1
    assert "summary.json is damaged" in caplog.text
    assert "whether the run finished is not known: its epoch-1 checkpoint" in caplog.text
    assert "has not finished training" not in caplog.text


def test_a_workdir_that_is_a_dangling_link_is_said_to_be_one(tmp_path):
    """A workdir that is a symbolic link to a missing directory: "cannot be created: File
    exists" (a probe). Said as what it is, before any work."""
    link = tmp_path / "dl"
    os.symlink(tmp_path / "nonexist", link)
    with pytest.raises(UserError) as e:
        experiment.train_and_evaluate(_config(**{"train.epochs": 1}), str(link))
    assert str(e.value) == (
        f"workdir {str(link)!r} is a symbolic link to {str(tmp_path / 'nonexist')!r}, which "
        "does not exist; create that directory, or pass another workdir; nothing was written."
    )
    assert not (tmp_path / "nonexist").exists()


def test_a_groups_summary_table_shows_its_first_runs_and_says_how_many_more(caplog):
    """4,000 runs of one group logged a 4,002-line table after training (a probe): the first
    64 rows, then how many more there are and where their numbers are."""
    caplog.set_level("INFO", logger="absl")
    row = {"train/loss": 1.0, "eval/loss": 2.0, "status": "done", "epoch": 3, "n_params": 7}
    summaries = [{**row, "wall_s": float(i)} for i in range(70)]
    chunking.log_summary(summaries, [f"/w/runs/seed={i}" for i in range(70)])
    lines = caplog.records[-1].getMessage().splitlines()
    assert lines[0] == "training summary:"
    assert lines[1] == "| run | training | epoch | train/loss | eval/loss | n_params | wall_s |"
    assert lines[3] == "| seed=0 | done | 3 | 1 | 2 | 7 | 0.00 |"
    assert lines[66] == "| seed=63 | done | 3 | 1 | 2 | 7 | 63.00 |"
    assert lines[67:] == ["... and 6 more run(s): each one's summary.json"]
    chunking.log_summary(summaries[:2], ["/w/a", "/w/b"])  # a few: all of them, nothing more
    assert caplog.records[-1].getMessage().splitlines()[-1] == "| b | done | 3 | 1 | 2 | 7 | 1.00 |"


def test_a_groups_summary_table_has_a_column_for_every_runs_terms(caplog):
    """Runs of other objectives trained together (VAE, beta-TC-VAE, InfoVAE, WAE): the table's
    columns were the first run's terms alone, so an InfoVAE row had no mmd column and its
    printed terms did not add up to its loss (a probe). Every run's terms, train before eval,
    '-' where a run has none."""
    caplog.set_level("INFO", logger="absl")
    base = {"status": "done", "epoch": 2, "n_params": 7, "wall_s": 1.0}
    tc = {"train/loss": 3.0, "train/tc": 0.5, "eval/loss": 4.0, "eval/tc": 0.25}
    mmd = {"train/loss": 2.0, "train/mmd": 0.125, "eval/loss": 2.5, "eval/mmd": 0.0625}
    chunking.log_summary([{**base, **tc}, {**base, **mmd}], ["/w/tc", "/w/mmd"])
    lines = caplog.records[-1].getMessage().splitlines()
    assert lines[1] == (
        "| run | training | epoch | train/loss | train/tc | train/mmd | eval/loss | eval/tc | "
        "eval/mmd | n_params | wall_s |"
    )
    assert lines[3:] == [
        "| tc | done | 2 | 3 | 0.5 | - | 4 | 0.25 | - | 7 | 1.00 |",
        "| mmd | done | 2 | 2 | - | 0.125 | 2.5 | - | 0.0625 | 7 | 1.00 |",
    ]


def test_the_open_files_limit_is_raised_and_a_group_beyond_it_refused(tmp_path, monkeypatch):
    """A run holds three files while it trains: a sweep of a few hundred runs failed under the
    usual soft limit of 1,024 with "Too many open files" tracebacks (a probe). The soft limit is
    raised to the hard one; a group that would still pass it is refused before any work."""
    resource = pytest.importorskip("resource")
    limits, set_to = [(1024, 4096)], []
    monkeypatch.setattr(resource, "getrlimit", lambda kind: limits[0])
    monkeypatch.setattr(resource, "setrlimit", lambda kind, v: set_to.append(v))
    runtime.raise_open_files_limit()
    limits[0] = (256, resource.RLIM_INFINITY)  # macOS's: asks for what its kernel allows
    runtime.raise_open_files_limit()
    limits[0] = (4096, 4096)
    runtime.raise_open_files_limit()  # already there: nothing to do
    assert set_to == [(4096, 4096), (10240, resource.RLIM_INFINITY)]

    def refuse_over_10240(kind, v):
        if v[0] > 10240:
            raise ValueError("current limit exceeds maximum limit")  # macOS's kernel's
        set_to.append(v)

    monkeypatch.setattr(resource, "setrlimit", refuse_over_10240)
    limits[0] = (256, 1 << 20)
    runtime.raise_open_files_limit()
    assert set_to[-1] == (10240, 1 << 20)
    # A sweep's next group of 256 waits for room under a limit of 1,024 (3 x 256 + 64 = 832):
    # for the files of the groups still being written to close.
    limits[0] = (1024, 1024)
    open_now = [192]
    monkeypatch.setattr(runtime, "open_files", lambda: open_now[0])
    assert runtime.room_for(256) and not runtime.room_for(257)
    open_now[0] = 193
    assert not runtime.room_for(256)
    monkeypatch.undo()
    assert runtime.open_files() == len(os.listdir("/dev/fd")) > 3  # (stdin, stdout, stderr)
    monkeypatch.setattr(resource, "getrlimit", lambda kind: limits[0])
    limits[0] = (100, 100)
    c = multi.apply_overrides(seed_sparse.get_config(), {"train.num_models": 13})  # 103 files
    fewer = r"train at most 12 together \(train.num_models, a sweep's --max_models=12\)"
    with pytest.raises(UserError, match=r"13 runs trained together hold about 39 open files"):
        experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")
    # A sweep's group of 13 too, at launch: each of its runs was recorded as failed when the
    # group came to train, the sweep telling to rerun the same command (a probe); 12 fit.
    seeds = [{"train.seed": s} for s in range(13)]
    with pytest.raises(UserError, match=fewer):
        sweeps.run_sweep(seed_sparse.get_config(), seeds, str(tmp_path / "sweep"))
    assert not os.path.exists(tmp_path / "sweep" / "sweep.json")
    with pytest.raises(UserError, match=r"13 runs trained together .* --max_models=12\) or"):
        sweeps.run_sweep(seed_sparse.get_config(), seeds, str(tmp_path / "sweep"), max_models=13)
    limits[0] = (60, 60)  # none fit beside the process's own 64
    with pytest.raises(UserError, match=r"\(ulimit -n: 60, .* its own\); none fit: raise the h"):
        sweeps.run_sweep(seed_sparse.get_config(), seeds, str(tmp_path / "sweep"), max_models=1)
    limits[0] = (100, 100)
    # Runs already finished open nothing: rerun under that limit, they are not refused.
    lean = {"train.epochs": 1, "train.figures": False, "eval.at_end": False}
    c = multi.apply_overrides(c, lean)
    limits[0] = (20000, 20000)
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    limits[0] = (100, 100)
    summaries = experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert [s["status"] for s in summaries] == ["done"] * 13
    limits[0] = (60, 60)  # ... under a limit where none fit either (a review)
    assert len(experiment.train_and_evaluate(c, str(tmp_path / "run"))) == 13
    assert errors.storage_error(OSError(24, "Too many open files"))[0] == "too many open files"


def test_a_folder_where_a_run_keeps_a_file_is_one_paragraph_on_every_command(tmp_path):
    """A folder named summary.json (config.json, eval.json, ...) in a run gave `evaluate`,
    `train` and `report` an IsADirectoryError traceback, exit 1 (a probe): every command says
    it in one paragraph, exit 2."""
    run = tmp_path / "run"
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    experiment.train_and_evaluate(c, str(run))
    os.remove(run / "summary.json")
    os.mkdir(run / "summary.json")
    p = subprocess.run(
        [sys.executable, "-m", "ae_jax", "evaluate", f"--workdir={run}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    said = f"error: a directory stands where a file is expected: {run / 'summary.json'}: remove"
    assert p.returncode == 2 and said in p.stderr, p.stderr[-2000:]
    assert "Traceback" not in p.stderr


def test_a_rerun_removes_the_temporary_files_a_kill_left(tmp_path):
    """A kill -9 during a run's atomic write left .summary.json.XXXXXXXX.tmp (or a stop's
    partial_epoch.msgpack.tmp) in the run's folder, kept by every later launch (a probe). The
    launch that claims the run removes them; a user's own files are left alone."""
    run = tmp_path / "run"
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    experiment.train_and_evaluate(c, str(run))
    left = [
        ".summary.json.k3j9x_2q.tmp",
        ".metrics.jsonl.abcdefgh.tmp",
        "partial_epoch.msgpack.tmp",
    ]
    mine = [".notes.tmp", "notes.k3j9x_2q.tmp"]
    for name in left + mine:
        (run / name).write_text("x")
    c.train.epochs = 2  # (extended: the run is claimed and trains on)
    experiment.train_and_evaluate(c, str(run))
    assert sorted(n for n in os.listdir(run) if "tmp" in n) == sorted(mine)


def test_an_extension_cut_short_by_a_kill_finishes_its_moves(tmp_path):
    """Reopening a run moves its old end's figures, then eval.json, to evaluations/which=latest,
    epoch=E,end/, and dates `evaluate`'s which=best/ as which=best,epoch=E, then rewrites the
    figures its eval.json lists. A kill between the two steps left the figures in ...,end/ and
    eval.json moved by the rerun to ...,end@2/, listing figures there that never were; or a
    dated evaluation listing figures under its old name for good (a probe). The rerun finishes
    each move instead."""
    run = tmp_path / "run"
    os.makedirs(run / "evaluations" / "which=latest,epoch=3,end" / "figures")  # an earlier
    (run / "evaluations" / "which=latest,epoch=3,end" / "eval.json").write_text("{}")  # end's
    end = run / "evaluations" / "which=latest,epoch=3,end@2"  # (a diverged run's: one epoch)
    os.makedirs(end / "figures")  # the figures moved; the kill came before eval.json followed
    (run / "eval.json").write_text(json.dumps({"epoch": 3, "figures": ["figures/a.png"]}))
    best = run / "evaluations" / "which=best,epoch=2"  # renamed; its list not yet rewritten
    os.makedirs(best)
    (best / "eval.json").write_text(
        json.dumps({"figures": ["evaluations/which=best/figures/b.png"]})
    )
    reruns.reopen(str(run))
    assert sorted(os.listdir(run / "evaluations")) == [
        "which=best,epoch=2",
        "which=latest,epoch=3,end",
        end.name,
    ]
    assert json.loads((end / "eval.json").read_text())["figures"] == [
        "evaluations/which=latest,epoch=3,end@2/figures/a.png"
    ]
    assert json.loads((best / "eval.json").read_text())["figures"] == [
        "evaluations/which=best,epoch=2/figures/b.png"
    ]


def test_a_groups_summaries_are_written_all_or_none(tmp_path):
    """A group's summary.json files were written one by one: a full disk at the third left two
    runs done and the rest evaluated again in a smaller group (a review). All temporary files
    are written before the first rename; a failure writes none and leaves no temporary file."""
    for d in ("a", "b"):
        os.makedirs(tmp_path / d)
    items = [(str(tmp_path / d / "summary.json"), {"status": "done"}) for d in ("a", "b", "c")]
    with pytest.raises(FileNotFoundError):  # c's folder is not there: as a refused write
        files.write_json_together(items)
    assert os.listdir(tmp_path / "a") == [] and os.listdir(tmp_path / "b") == []
    files.write_json_together(items[:2])
    assert json.loads((tmp_path / "b" / "summary.json").read_text()) == {"status": "done"}
