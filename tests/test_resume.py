"""Checkpoints: a run killed mid-training and rerun ends exactly like an uninterrupted one."""

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from flax import serialization
from sklearn.datasets import load_breast_cancer

import ae_jax
from ae_jax import data as data_lib
from ae_jax import experiment
from ae_jax import workdir as workdir_lib
from ae_jax.commands import encode as encode_cli
from ae_jax.configs import seed_deep, seed_sparse
from ae_jax.errors import UserError
from ae_jax.evaluation import evaluate, export, figure_data
from ae_jax.sweeps import overrides as multi
from ae_jax.sweeps import report
from ae_jax.training import checkpoint, chunking, loop, resumes, startup, writers
from ae_jax.training.checkpoint import Checkpointer
from ae_jax.training.partial import Partial
from ae_jax.training.signals import Interrupted
from ae_jax.workdir import WorkdirLock
from tests import checkpoints_old
from tests.bad_inputs import _cfg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = [
    "--config=experiments/configs/seed_deep.py",
    "--config.data.name=digits",
    "--config.train.epochs=8",
    "--config.train.batch_size=32",
    "--config.model.encoder_widths=(128,64,32)",
    "--config.model.decoder_widths=(32,64,128)",
    "--config.train.checkpoint_every=2",
    "--config.train.keep_checkpoints=2",
    "--config.eval.at_end=False",  # what is compared is training's: its state and metrics
    "--config.train.figures=False",
]


def _launch(workdir):
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.main", f"--workdir={workdir}", *ARGS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _final_state(workdir):
    ck = Checkpointer(str(workdir), read_only=True)
    epoch = ck.epochs()[-1]
    meta = ck.meta(epoch)
    state = ck.restore_raw(epoch)
    ck.close()
    return epoch, meta, state


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One uninterrupted run, the reference for every interrupted one."""
    path = tmp_path_factory.mktemp("whole")
    _, err = _launch(path).communicate(timeout=300)
    assert "resuming" not in err and (path / "summary.json").exists(), err[-2000:]
    return path


# The train command, signalled by itself once its second checkpoint is on disk: a kill at a known
# moment (epoch 4 of 8), however fast or slow the machine.
SIGNALLED_AFTER_TWO_CHECKPOINTS = """
import os, sys
from ae_jax.commands import main
from ae_jax.training.checkpoint import Checkpointer
from ae_jax.training.signals import Interrupted

save, saved = Checkpointer.save, []


def save_then_signal(self, epoch, *args, **kwargs):
    save(self, epoch, *args, **kwargs)
    saved.append(epoch)
    if len(saved) == 2:  # (saves are synchronous: it is on disk)
        os.kill(os.getpid(), int(os.environ["SIGNAL"]))


Checkpointer.save = save_then_signal
main(["train", *sys.argv[1:]])
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_then_rerun_equals_uninterrupted(sig, whole, tmp_path):
    killed = tmp_path / "killed"
    p = subprocess.Popen(
        [sys.executable, "-c", SIGNALLED_AFTER_TWO_CHECKPOINTS, f"--workdir={killed}", *ARGS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SIGNAL": str(int(sig))},
    )
    _, err = p.communicate(timeout=300)
    ckdir = killed / "checkpoints"
    assert {"2", "4"} <= set(os.listdir(ckdir)), err[-3000:]
    assert not (killed / "summary.json").exists()
    if sig == signal.SIGTERM:  # A clean stop: checkpoint saved, told how to resume.
        assert p.returncode == 128 + signal.SIGTERM
        assert "stopped by SIGTERM after epoch" in err
        assert "run the same command (or Python call) again" in err
    else:
        assert p.returncode == -signal.SIGKILL, err[-3000:]

    resumed = _launch(killed).communicate(timeout=300)[1]
    assert "resuming from the epoch-" in resumed, resumed[-2000:]

    e1, meta1, s1 = _final_state(whole)
    e2, meta2, s2 = _final_state(killed)
    assert e1 == e2 == 8 and meta1["step"] == meta2["step"]
    jax.tree.map(np.testing.assert_array_equal, s1, s2)  # bitwise
    rows = [json.loads(r) for r in open(killed / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == list(range(1, 9))  # each epoch once
    whole_rows = [json.loads(r) for r in open(whole / "metrics.jsonl")]
    assert [r["eval/loss"] for r in rows] == [r["eval/loss"] for r in whole_rows]
    # TensorBoard agrees with metrics.jsonl: the redone epochs' old points are purged.
    tb = writers.read_scalars(str(killed / "tb"))
    for key in ("train/loss", "eval/loss", "eval/mse"):
        assert tb[key] == [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in rows], key


def test_second_process_on_a_workdir_is_refused(tmp_path):
    os.makedirs(tmp_path / "w")
    with WorkdirLock(str(tmp_path / "w")):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "experiments.main",
                f"--workdir={tmp_path}/w",
                "--config=experiments/configs/seed_simple.py",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"is in use by pid {os.getpid()}" in r.stderr
    assert not (tmp_path / "w" / "metrics.jsonl").exists()


def test_holder_reads_the_lock_text_and_sees_a_dead_holder(tmp_path):
    """A holder killed by SIGKILL leaves its lock text: a sweep must not call its run running."""
    w = tmp_path / "w"
    os.makedirs(w)
    assert workdir_lib.holder(str(w)) is None  # never locked
    with WorkdirLock(str(w)):
        assert workdir_lib.holder(str(w)).startswith(f"pid {os.getpid()} on host ")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    (w / ".lock").write_text(f"pid {dead.pid} on host {host} since 2026-12-01T03:00:00")
    assert workdir_lib.holder(str(w)) is None
    elsewhere = f"pid {dead.pid} on host not-{host} since 2026-12-01T03:00:00"
    (w / ".lock").write_text(elsewhere)  # another host's pid cannot be checked from here
    assert workdir_lib.holder(str(w)) == elsewhere


TRY_LOCK = """
import sys
from ae_jax.errors import UserError
from ae_jax.workdir import WorkdirLock
try:
    with WorkdirLock(sys.argv[1]):
        print("acquired")
except UserError:
    print("refused")
"""


def _other_process_gets(w) -> str:
    r = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(w)], capture_output=True, text=True, timeout=120
    )
    return r.stdout.strip()


def test_a_held_lock_survives_probes_and_nesting_in_its_own_process(tmp_path):
    """POSIX locks belong to the process and closing any descriptor of the file drops them:
    a sweep's status probe (`holder`) dropped its own claims, and another shard trained the
    same run. Now probes and a nested lock of the same workdir keep it held until the
    outermost lock ends."""
    w = tmp_path / "w"
    os.makedirs(w)
    with WorkdirLock(str(w)):  # a sweep's claim
        assert workdir_lib.holder(str(w)).startswith(f"pid {os.getpid()} on host ")  # a probe
        assert _other_process_gets(w) == "refused"
        with WorkdirLock(str(w) + "/"):  # the run's own lock, inside the claim
            pass
        assert workdir_lib.holder(str(w)).startswith(f"pid {os.getpid()} ")
        assert _other_process_gets(w) == "refused"
    assert workdir_lib.holder(str(w)) is None and _other_process_gets(w) == "acquired"


def test_another_thread_of_the_process_is_refused_a_held_workdir(tmp_path):
    """Nesting counted per process, so two threads of a notebook training one workdir both
    got in: their checkpoints and histories interleaved, and the run ended "done" at epoch 30
    with 20 rows. Another thread is now refused as another process is; the lock still passes
    to the finishing thread that releases it."""
    w = tmp_path / "w"
    os.makedirs(w)
    got = []

    def enter():
        try:
            with WorkdirLock(str(w)):
                got.append("acquired")
        except UserError as e:
            got.append(str(e))

    with WorkdirLock(str(w)):
        thread = threading.Thread(target=enter)
        thread.start()
        thread.join()
        with WorkdirLock(str(w)):  # nested in the thread that took it: counted, as before
            pass
    assert got == [
        f"workdir {str(w)!r} is in use by another thread of this process (pid {os.getpid()}); "
        "two calls must not train the same run at once. Wait for that call to return, or use "
        "another workdir."
    ]
    release = WorkdirLock(str(w)).__enter__()
    thread = threading.Thread(target=release.__exit__, args=(None, None, None))
    thread.start()  # released by another thread (the finishing thread's way)
    thread.join()
    enter()
    assert got[-1] == "acquired" and _other_process_gets(w) == "acquired"


def test_finished_run_is_not_retrained_and_best_is_kept(tmp_path, caplog):
    c = seed_deep.get_config()
    c.train.epochs, c.train.checkpoint_every, c.train.keep_checkpoints = 12, 2, 1
    (first,) = experiment.train_and_evaluate(c, str(tmp_path))
    mtime = os.path.getmtime(tmp_path / "metrics.jsonl")
    caplog.set_level("INFO")
    caplog.clear()  # (the first run's last line names the summary.json it wrote)
    (again,) = experiment.train_and_evaluate(c, str(tmp_path))
    assert again == first and os.path.getmtime(tmp_path / "metrics.jsonl") == mtime
    # How to train it anew (deleting summary.json only has the rerun resume and rewrite it).
    said = "the run already finished; not retraining (to train from scratch, pass a new"
    assert said in caplog.text and "summary.json" not in caplog.text
    ck = Checkpointer(str(tmp_path), read_only=True)
    rows = [json.loads(r) for r in open(tmp_path / "metrics.jsonl")]
    saved = {r["epoch"]: r["eval/loss"] for r in rows if r["epoch"] % 2 == 0}
    best = min(saved, key=saved.get)
    assert ck.best_epoch() == best == first["best_epoch"]
    assert set(ck.epochs()) == {12, best}  # the newest one and the best one
    ck.close()


def test_which_best_is_the_best_checkpoint_in_encode_evaluate_export_and_load(tmp_path):
    """--which=best names the lowest-eval/loss checkpoint wherever it is taken: the codes of
    `encode`, the epoch `evaluate` evaluates, the parameters `export` writes (params.msgpack,
    which no test read) and `ae_jax.load`. Encode loading the latest for "best" passed every
    test, as did best loading the latest in evaluate and export but for a diverged run's
    message (a mutation check): here a healthy run whose loss rises after epoch 5."""
    c = seed_sparse.get_config()
    c.train.epochs, c.train.batch_size, c.optim.learning_rate = 6, 64, 0.3  # too large a step
    c.train.checkpoint_every, c.train.keep_checkpoints = 1, 1
    c.train.figures = c.train.tensorboard = False
    run = str(tmp_path / "run")
    (summary,) = experiment.train_and_evaluate(c, run)
    best = summary["best_epoch"]
    assert best < 6, "the run's premise: a best checkpoint before the newest"
    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(5)
    rows = str(tmp_path / "rows.csv")
    frame.to_csv(rows, index=False)
    loaded, newest = ae_jax.load(run, "best"), ae_jax.load(run)
    assert (loaded.epoch, newest.epoch) == (best, 6)
    codes = encode_cli.encode_file(run, rows, str(tmp_path / "codes.npy"), which="best")
    np.testing.assert_array_equal(codes, loaded.encode(rows))
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), codes)
    assert not np.allclose(codes, newest.encode(rows))
    metrics, where = evaluate.evaluate_run(run, which="best", figures=False)
    assert metrics["epoch"] == best and where.endswith("which=best")
    export.export_run(run, str(tmp_path / "out"), which="best")
    with open(tmp_path / "out" / "params.msgpack", "rb") as f:
        params = serialization.msgpack_restore(f.read())
    same = jax.tree.map(np.array_equal, params, jax.tree.map(np.asarray, loaded.params))
    assert jax.tree.all(same)


def test_a_rerun_that_changes_what_the_run_learns_is_refused(tmp_path):
    """A finished run's rerun with any of these changed is refused, naming the field (a rerun
    may change only settings of how it runs, reruns.OPERATIONAL): train.batch_size put there
    passed every test (a mutation check), and a rerun would then mix two configs in one run."""
    c = seed_sparse.get_config()
    c.train.epochs, c.train.tensorboard = 1, False
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(c, run)
    changes = [
        ("train.batch_size", 64),
        ("train.seed", 1),
        ("optim.learning_rate", 0.01),
        ("loss.l1_weight", 0.0),
        ("model.activation", "tanh"),
        ("data.val_fraction", 0.3),
        ("data.split_seed", 1),
        ("train.figures", False),
    ]
    for field, value in changes:
        changed = copy.deepcopy(c)
        section, name = field.split(".")
        assert changed[section][name] != value
        changed[section][name] = value
        said = rf"another config; these fields differ \(saved -> now\): {re.escape(field)}"
        with pytest.raises(UserError, match=said):
            experiment.train_and_evaluate(changed, run)


def test_best_epoch_is_the_lowest_eval_loss_not_the_newest(tmp_path):
    """What summary.json's best_epoch and `--which=best` name: the checkpoint with the lowest
    eval/loss, not the newest, here and reopened."""
    state = {"w": np.ones(3, np.float32)}
    ck = Checkpointer(str(tmp_path), keep=1)
    for epoch, loss in [(1, 2.0), (2, 1.0), (3, 3.0), (4, float("nan"))]:
        meta = {"epoch": epoch, "metrics": {"eval/loss": loss}}
        ck.save(epoch, state, meta)
    ck.close()
    assert ck.epochs() == [2, 4] and ck.best_epoch() == 2
    again = Checkpointer(str(tmp_path), read_only=True)
    assert again.best_epoch() == 2
    again.close()


def test_a_stops_checkpoint_is_no_best_and_goes_once_a_later_one_is_saved(tmp_path):
    """With checkpoint_every=0, a run stopped after epoch 133 and resumed ended with checkpoints
    133 and 200 where an uninterrupted run has 200 alone, and the stop's one was its best_epoch
    and `--which=best` (a lower eval/loss): the resumed run's best model differed. A stop's
    checkpoint now resumes the run, is no candidate for best, and goes once a later one is
    on disk."""
    state = {"w": np.ones(3, np.float32)}
    ck = Checkpointer(str(tmp_path), keep=2)

    def save(epoch, loss, **stop):
        meta = {"epoch": epoch, "metrics": {"eval/loss": loss}, **stop}
        ck.save(epoch, state, meta)

    save(1, 3.0)
    save(2, 1.0, stop=True)
    assert ck.epochs() == [1, 2] and ck.best_epoch() == 1 and ck.current("latest") == 2
    ck.close()
    ck = Checkpointer(str(tmp_path), keep=2)  # the resumed process reads it from disk
    assert ck.best_epoch() == 1 and ck.current("latest") == 2
    save(3, 2.0)
    ck.close()
    again = Checkpointer(str(tmp_path), read_only=True)
    assert again.epochs() == [1, 3] and again.best_epoch() == 3
    again.close()


def test_a_diverged_run_saves_no_metrics_that_are_not_its_own(tmp_path):
    """A run that diverges inside an epoch keeps the parameters from before the non-finite step;
    their checkpoint must not carry the previous epoch's metrics (it was ranked best by them),
    and an infinite eval/loss names no best checkpoint either."""
    c = seed_deep.get_config()
    c.optim.learning_rate, c.train.epochs, c.train.checkpoint_every = 1e30, 4, 1
    c.train.figures = c.train.tensorboard = c.eval.at_end = False
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path))
    assert summary["status"] == "diverged"
    history = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    ck = Checkpointer(str(tmp_path), read_only=True)
    last = ck.epochs()[-1]
    assert last == len(history) + 1  # the epoch it diverged in, saved with its parameters
    assert ck.meta(last)["metrics"] is None
    finite = [r["epoch"] for r in history if np.isfinite(r["eval/loss"])]
    assert summary["best_epoch"] == ck.best_epoch() == (min(finite) if finite else None)
    ck.close()
    assert not finite  # lr 1e30: eval/loss is inf from the first epoch on
    # No checkpoint to call best: said so, not the newest (diverged) one given instead.
    with pytest.raises(UserError, match="none of epochs .* is one .a run that diverged"):
        ae_jax.load(str(tmp_path), which="best")


def test_a_run_extended_under_other_software_records_both(tmp_path, monkeypatch):
    """A run trained under jax A, extended under jax B: summary.json named only B, so a report
    credited every epoch to B and, every run extended, saw no mix (a probe). The software of
    the earlier epochs is carried on through the checkpoints into summary.json, and the report
    names both."""
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end, c.train.tensorboard = 2, False, False, False
    run = str(tmp_path / "runs" / "r")
    experiment.train_and_evaluate(c, run)
    first = json.load(open(os.path.join(run, "summary.json")))["software"]
    later = {**first, "jax": "9.9.9", "jaxlib": "9.9.9"}
    monkeypatch.setattr(loop.runtime, "software", lambda: later)
    c.train.epochs = 3
    experiment.train_and_evaluate(c, run)
    summary = json.load(open(os.path.join(run, "summary.json")))
    assert summary["software"] == later and summary["earlier_software"] == [first]
    meta = json.load(open(os.path.join(run, "checkpoints", "3", "meta.json")))
    assert meta["earlier_software"] == [first]  # carried on to a later extension
    report.write_report(str(tmp_path / "runs"), ["eval/mse"])
    md = (tmp_path / "runs" / "report.md").read_text()
    assert "computed in parts by the same software" in md  # (its one run)
    assert f"jax {first['jax']}, jaxlib" in md and "jax 9.9.9" in md


def test_a_groups_diverged_run_saves_its_checkpoints_with_the_steps_its_parameters_took(tmp_path):
    """In a group, a diverged run's parameters are saved again at each later save (so the
    group resumes together), each labelled with the group's step counter (60, 75 for
    parameters of 7 steps: a probe). Its checkpoints' step is now its own."""
    c = seed_deep.get_config()
    c.train.epochs, c.train.checkpoint_every, c.train.keep_checkpoints = 3, 1, 3
    c.train.figures = c.train.tensorboard = c.eval.at_end = False
    runs = [str(tmp_path / "calm"), str(tmp_path / "wild")]
    wild = multi.apply_overrides(c, {"optim.learning_rate": 1e30})
    calm, wild_s = experiment.train_group([c, wild], runs)
    assert calm["status"] == "done" and wild_s["status"] == "diverged"
    for run, want in ((runs[0], None), (runs[1], wild_s["diverged_step"])):
        ck = Checkpointer(run, read_only=True)
        steps = {e: ck.meta(e)["step"] for e in ck.epochs()}
        ck.close()
        if want is None:  # the calm run: the group's steps, epoch by epoch
            assert steps == {e: e * calm["step"] // 3 for e in (1, 2, 3)}
        else:
            assert steps and set(steps.values()) == {want}, steps


def test_a_diverged_runs_evaluation_names_the_step_its_parameters_precede(tmp_path, caplog):
    """eval.json of a diverged run evaluates parameters from before its non-finite step: it
    says which step, from training and from `ae-jax evaluate` alike."""
    c = seed_deep.get_config()
    c.optim.learning_rate, c.train.epochs = 1e30, 2
    c.train.figures = c.train.tensorboard = False
    caplog.set_level("ERROR")
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path))
    assert summary["status"] == "diverged" and summary["diverged_step"] >= 0
    said = f"the last finished epoch's values (epoch {summary['epoch']}; its training loss was"
    assert said in caplog.text and "need not be): {'train/loss'" in caplog.text
    chunking.log_divergence("w", 0, 1, [])  # in its first epoch: no "last ... values: {}"
    said = "in step 1 (epoch 1); kept its parameters, the initial ones (before step 1); no epoch"
    assert said in caplog.text
    m = json.loads((tmp_path / "eval.json").read_text())
    assert m["diverged_step"] == summary["diverged_step"]
    again = evaluate.evaluate_workdir(str(tmp_path), figures=False)
    assert again["diverged_step"] == summary["diverged_step"]
    out = export.export_run(str(tmp_path), str(tmp_path / "exported"))  # says so too
    d = summary["diverged_step"]
    said = f"diverged (non-finite loss, gradient or update in step {d + 1}): these are its "
    said += f"parameters, those after step {d}" if d else "parameters, the initial ones"
    assert said in out["diverged"] and said in (tmp_path / "exported" / "README.md").read_text()


def test_a_divergence_counts_steps_as_metrics_jsonl_does(tmp_path, caplog):
    """With one step an epoch, metrics.jsonl said step 1 at epoch 1's end and the log said the
    run diverged "at step 1 (epoch 2)", meaning the step after it (a README walkthrough): the
    non-finite step is now counted from 1, and the kept parameters named by the steps taken."""
    c = seed_sparse.get_config()
    c.optim.name, c.optim.eps, c.optim.learning_rate = "sgd", None, 1e20
    c.model.activation = c.model.code_activation = c.model.output_activation = "identity"
    c.train.epochs, c.train.batch_size = 3, 10**6  # all rows in one batch: one step an epoch
    c.train.figures = c.train.tensorboard = c.eval.at_end = False
    caplog.set_level("ERROR")
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path))
    with open(tmp_path / workdir_lib.METRICS) as f:
        steps = [(r["epoch"], r["step"]) for r in map(json.loads, f)]
    assert steps == [(1, 1)] and (summary["status"], summary["diverged_step"]) == ("diverged", 1)
    said = "in step 2 (epoch 2); kept its parameters, those after step 1; the last finished"
    assert said in caplog.text
    # Loaded, the checkpoint named is the one that holds them (not "its epoch-1 checkpoint",
    # the last epoch it finished, whose folder there is not: a probe).
    caplog.clear()
    caplog.set_level("WARNING")
    loaded = ae_jax.load(str(tmp_path))
    held = sorted(os.listdir(tmp_path / "checkpoints"))
    assert held == [str(loaded.checkpoint)] and loaded.epoch == 1, held
    said = "its parameters are those after step 1 (as checkpoints/2 holds them)"
    assert said in caplog.text
    assert workdir_lib.diverged_at(0)[1] == "the initial ones (before step 1)"


def test_a_diverged_run_loaded_at_its_best_epoch_says_it_diverged(tmp_path, caplog):
    """ae_jax.load(which='best') of a run that diverged in its second epoch loaded the first
    epoch's checkpoint as status 'diverged' with diverged_step None and no warning, though
    the docstring promises the step and a warning for all but 'done' (a probe)."""
    c = seed_sparse.get_config()
    c.optim.name, c.optim.eps = "sgd", None
    c.optim.learning_rate, c.optim.schedule, c.optim.decay_rate = 0.01, "exponential", 8.0
    c.model.activation = c.model.code_activation = c.model.output_activation = "identity"
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every = 5, 64, 1
    c.train.figures = c.train.tensorboard = c.eval.at_end = False
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path))
    assert summary["status"] == "diverged" and summary["best_epoch"] == 1
    caplog.set_level("WARNING")
    best = ae_jax.load(str(tmp_path), which="best")
    assert (best.status, best.diverged_step, best.epoch) == (
        "diverged",
        summary["diverged_step"],
        1,
    )
    d = summary["diverged_step"]  # (in epoch 2: the best, epoch 1's, is from before it)
    said = f"diverged later (non-finite loss, gradient or update in step {d + 1}); these are "
    assert said + "its parameters at the end of epoch 1 (checkpoints/1)" in caplog.text
    out = export.export_run(str(tmp_path), str(tmp_path / "exported"), which="best")
    said = f"diverged later (non-finite loss, gradient or update in step {d + 1}): these are "
    assert out["diverged"] == "This run " + said + "its parameters at the end of epoch 1"
    # Its evaluation names no step its parameters precede (they are epoch 1's).
    best_eval = evaluate.evaluate_workdir(str(tmp_path), which="best", figures=False)
    assert best_eval["epoch"] == 1 and "diverged_step" not in best_eval
    assert evaluate.evaluate_workdir(str(tmp_path), figures=False)["diverged_step"] == d


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _snapshot(root) -> dict:
    return {
        os.path.relpath(os.path.join(d, f), root): _read(os.path.join(d, f))
        for d, _, files in os.walk(root)
        for f in files
        if f != workdir_lib.LOCK
    }


def test_a_rerun_on_data_that_changed_is_refused_and_changes_nothing(tmp_path):
    """A file grown since (every value in range, so the same scaling) would otherwise resume
    training on another split, and overwrite preprocessor.json; evaluation refuses it too."""
    rows = "".join(f"{i},{i % 7}\n" for i in range(20))
    data, run = tmp_path / "data.csv", str(tmp_path / "run")
    data.write_text("a,b\n" + rows)
    experiment.train_and_evaluate(_cfg(data__path=str(data)), run)
    before = _snapshot(run)
    data.write_text("a,b\n" + rows + rows[:40])
    longer = _cfg(data__path=str(data), train__epochs=2)  # would continue training
    with pytest.raises(
        UserError,
        match=r"changed since it was trained \(the file, or how this version of ae_jax reads "
        r"it\): its split had 16 ",
    ):
        experiment.train_and_evaluate(longer, run)
    assert _snapshot(run) == before
    with pytest.raises(UserError, match=r"changed since training: its split had 16 training"):
        evaluate.evaluate_workdir(run)
    # Edited within every column's range (the same scaling): the values tell.
    data.write_text("a,b\n" + rows.replace("\n5,5\n", "\n6,5\n"))
    with pytest.raises(UserError, match=r"reads it\): the values of its rows differ from those"):
        experiment.train_and_evaluate(longer, run)
    with pytest.raises(UserError, match=r"changed since training: the values of its rows"):
        evaluate.evaluate_workdir(run)
    assert _snapshot(run) == before


class _StopNow:
    """Stands in for StopRequests: a SIGTERM is pending from the start (acted on after epoch 1:
    one chunk per epoch, and a single model's initialisation does not look)."""

    signum = signal.SIGTERM

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def test_a_stop_without_checkpoints_says_nothing_was_saved(tmp_path, monkeypatch, caplog):
    run = str(tmp_path / "run")
    monkeypatch.setattr(experiment, "StopRequests", _StopNow)
    on = _cfg(train__epochs=3, train__checkpoint_every=0)
    with pytest.raises(Interrupted, match=r"after epoch 1; its state is saved: run the same"):
        experiment.train_and_evaluate(on, str(tmp_path / "on"))
    assert sorted(os.listdir(tmp_path / "on" / "checkpoints")) == ["1"]  # the stop's
    monkeypatch.undo()
    (summary,) = experiment.train_and_evaluate(on, str(tmp_path / "on"))  # resumed: the end's
    assert sorted(os.listdir(tmp_path / "on" / "checkpoints")) == ["3"]  # alone, as uninterrupted
    assert summary["best_epoch"] == 3
    monkeypatch.setattr(experiment, "StopRequests", _StopNow)
    off = _cfg(train__epochs=2, train__checkpoints=False)
    with pytest.raises(
        Interrupted,
        match=r"after epoch 1; train.checkpoints=False, so no state was saved: the same "
        r"command trains from epoch 1 again",
    ):
        experiment.train_and_evaluate(off, run)
    monkeypatch.undo()
    caplog.set_level("WARNING")
    (summary,) = experiment.train_and_evaluate(off, run)
    assert "holds 1 epoch(s) of an earlier attempt but no checkpoint" in caplog.text
    assert summary["epoch"] == 2 and len(workdir_lib.read_history(run, 2)) == 2
    # Raised train.epochs without checkpoints: the log says training starts over, not that it
    # "continues from the newest checkpoint" (right after the warning that it starts at 1).
    caplog.clear()
    caplog.set_level("INFO")
    off.train.epochs = 3
    experiment.train_and_evaluate(off, run)
    assert "raised from 2 to 3; training starts at epoch 1 (no checkpoint" in caplog.text
    assert "continues from the newest checkpoint" not in caplog.text
    # A stop while evaluating: the parameters were only in memory.
    real = evaluate.evaluate_group

    class _Armed(_StopNow):
        armed = False

        @property
        def signum(self):
            return signal.SIGTERM if _Armed.armed else None

    def stop_then_evaluate(*args, **kwargs):
        _Armed.armed = True  # the signal arrives while the model is being evaluated
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "StopRequests", _Armed)
    monkeypatch.setattr(evaluate, "evaluate_group", stop_then_evaluate)
    with pytest.raises(Interrupted, match=r"while evaluating; train.checkpoints=False, so no"):
        experiment.train_and_evaluate(_cfg(train__checkpoints=False, eval__at_end=True), run + "2")
    # Without evaluation, the same stop comes while the figures' codes are computed: said so
    # (it said "while evaluating" of a run not evaluated).
    _Armed.armed = False
    real_inputs = figure_data.figure_inputs

    def stop_then_draw(*args, **kwargs):
        _Armed.armed = True
        return real_inputs(*args, **kwargs)

    monkeypatch.setattr(figure_data, "figure_inputs", stop_then_draw)
    cfg = _cfg(train__checkpoints=False, eval__at_end=False, train__figures=True)
    with pytest.raises(Interrupted, match=r"by SIGTERM while drawing the figures; train.check"):
        experiment.train_and_evaluate(cfg, run + "3")


def test_a_relative_data_path_is_recorded_absolute(tmp_path, monkeypatch):
    """A run started with data.path=d.csv from its folder is evaluated, and continued with the
    path typed absolute, from anywhere: config.json holds the absolute path."""
    (tmp_path / "data").mkdir()
    rows = "".join(f"{i},{i % 7}\n" for i in range(20))
    (tmp_path / "data" / "d.csv").write_text("a,b\n" + rows)
    run = str(tmp_path / "run")
    monkeypatch.chdir(tmp_path / "data")
    experiment.train_and_evaluate(_cfg(data__path="d.csv"), run)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["data"]["path"]
    assert saved == str(tmp_path / "data" / "d.csv")
    monkeypatch.chdir(tmp_path)
    assert evaluate.evaluate_workdir(run)["n_val"] == 4
    monkeypatch.chdir(tmp_path / "data")  # typed as at first: the same file, so continued
    (summary,) = experiment.train_and_evaluate(_cfg(data__path="d.csv", train__epochs=2), run)
    assert summary["epoch"] == 2 and summary["resumed_from_epoch"] == 1


def test_a_mid_epoch_resume_under_another_device_layout_is_said(tmp_path, caplog):
    """Resuming from a stop inside an epoch (partial_epoch.msgpack) under another device layout
    said nothing, where a checkpoint's resume warns that the numbers move in their last bits."""
    w = str(tmp_path / "run")
    os.makedirs(w)
    states = {"w": np.ones((1, 3), np.float32)}
    metrics, rows = {"train/loss": np.zeros((1, 10), np.float32)}, np.ones((1, 10), np.float32)
    Partial.save_group([w], 2, 2, 5, states, metrics, rows, "models split over 2")
    caplog.set_level("WARNING")
    assert Partial.load_group([w], 1, 5, "models split over 2") is not None
    assert "another device layout" not in caplog.text
    partial = Partial.load_group([w], 1, 5, "one device")
    assert partial is not None and partial.epoch == 2 and partial.steps_done == 10
    said = "another device layout than the position saved inside the epoch was trained with "
    said += "(models split over 2, now"
    assert said + " one device)" in caplog.text


def test_a_resume_in_a_group_of_another_size_is_said(tmp_path, caplog):
    """Two runs trained together (K = 2), each extended alone: one program computes a group,
    so a run regrouped (train.num_models or --max_models changed, or a kill's rerun) differs
    from an uninterrupted one in the last bits, which training amplifies (6.9% after 1,300
    epochs: a probe), without a word. It is said, as a layout change is; the same group, not."""
    runs = [str(tmp_path / "a"), str(tmp_path / "b")]
    pair = [_cfg(train__epochs=2), _cfg(train__epochs=2, train__seed=1)]
    experiment.train_group(pair, runs)
    caplog.set_level("WARNING")
    experiment.train_group([_cfg(train__epochs=3), _cfg(train__epochs=3, train__seed=1)], runs)
    assert "resuming in a group" not in caplog.text
    experiment.train_and_evaluate(_cfg(train__epochs=4), runs[0])
    assert (
        "resuming in a group of 1 model(s) trained together, where the checkpoint was "
        "trained in one of 2: from here the numbers differ" in caplog.text
    )
    assert caplog.text.count("resuming in a group") == 1
    # A position inside an epoch records its group's size too.
    w = str(tmp_path / "p")
    os.makedirs(w)
    os.makedirs(w + "2")
    states = {"w": np.ones((2, 3), np.float32)}
    metrics, rows = {"train/loss": np.zeros((2, 10), np.float32)}, np.ones((2, 10), np.float32)
    Partial.save_group([w, w + "2"], 2, 2, 5, states, metrics, rows, "one device")
    caplog.clear()
    Partial.load_group([w], 1, 5, "one device")
    assert "in one of 2: from here" in caplog.text and "the position saved inside" in caplog.text


def test_one_device_of_several_computes_as_one_device_of_one(caplog):
    """train.parallel='none' on 4 devices is bit for bit one device of 1 (a probe measured
    it): a resume between them was told its numbers now differ. Other layouts still are."""
    one_of = "one device of {} device(s) (cpu, 1 process(es))"
    caplog.set_level("WARNING")
    resumes.warn_layout_change({one_of.format(4)}, one_of.format(1))
    assert "another device layout" not in caplog.text
    resumes.warn_layout_change(
        {"data parallel over 4 device(s) (cpu, 1 process(es))"}, one_of.format(1)
    )
    assert (
        "another device layout than the checkpoint was trained with (data parallel" in caplog.text
    )
    # Models split over 4 devices of 1 process or of 2 (multi-host) compute alike: not said;
    # data parallel over them is (its sums cross the devices, and so the processes).
    caplog.clear()
    split = "models split over 4 device(s) (cpu, {} process(es))"
    resumes.warn_layout_change({split.format(1)}, split.format(2))
    resumes.warn_layout_change({one_of.format(4)}, one_of.format(1).replace("1 pro", "2 pro"))
    assert "another device layout" not in caplog.text
    data = "data parallel over 4 device(s) (cpu, {} process(es))"
    resumes.warn_layout_change({data.format(1)}, data.format(2))
    assert "another device layout" in caplog.text


def test_a_mid_epoch_resume_under_other_software_is_said(tmp_path, caplog):
    """The position inside an epoch records the software it was trained with, as a checkpoint
    does: resumed under another jax (or backend), the run is told; under the same, not a word.
    A version recorded as None (a package not installed) survives the file."""
    w = str(tmp_path / "run")
    os.makedirs(w)
    states = {"w": np.ones((1, 3), np.float32)}
    metrics, rows = {"train/loss": np.zeros((1, 10), np.float32)}, np.ones((1, 10), np.float32)
    then = {"python": "3.11.7", "jax": "0.10.2", "ray": None, "backend": "cpu", "xla_flags": ""}
    Partial.save_group([w], 2, 2, 5, states, metrics, rows, "one device", then)
    caplog.set_level("WARNING")
    same_but_flags = {**then, "xla_flags": "--xla_force_host_platform_device_count=2"}
    assert Partial.load_group([w], 1, 5, "one device", same_but_flags) is not None
    assert "other software" not in caplog.text
    now = {**then, "jax": "0.12.0", "backend": "gpu"}
    assert Partial.load_group([w], 1, 5, "one device", now) is not None
    said = "other software than the position saved inside the epoch was trained with (backend "
    said += "cpu -> gpu, jax 0.10.2"
    assert said + " -> 0.12.0)" in caplog.text


def test_extending_a_finished_run_with_damaged_files_changes_nothing(tmp_path, monkeypatch):
    """Raising train.epochs over a finished run whose metrics.jsonl has a damaged line, or
    whose checkpoints are all unreadable, reopened the run first (its eval.json moved away,
    summary.json deleted, config.json at the new length) and then failed: the run was no
    longer finished and its own command was refused. Now refused with the run as it was (the
    metrics line before anything is compiled; unreadable checkpoints set aside, as always)."""
    run = str(tmp_path / "run")
    cfg = _cfg(train__epochs=2, eval__at_end=True)
    experiment.train_and_evaluate(cfg, run)
    longer = _cfg(train__epochs=4, eval__at_end=True)
    damaged = str(tmp_path / "damaged")
    shutil.copytree(run, damaged)
    path = os.path.join(damaged, workdir_lib.METRICS)
    lines = open(path).read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(['{"epoch": 1, garbage', *lines[1:]]) + "\n")
    before = _snapshot(damaged)
    with pytest.raises(UserError, match=r"metrics.jsonl line 1 is damaged"):
        with monkeypatch.context() as m:  # refused before anything is compiled
            m.setattr(experiment.loop, "train", lambda *a, **k: pytest.fail("compiled"))
            experiment.train_and_evaluate(longer, damaged)
    assert _snapshot(damaged) == before
    unreadable = str(tmp_path / "unreadable")
    shutil.copytree(run, unreadable)
    for d, _, files in os.walk(os.path.join(unreadable, workdir_lib.CHECKPOINTS)):
        for f in files:
            if f == "state.npz":  # every checkpoint's arrays unreadable
                with open(os.path.join(d, f), "w") as out:
                    out.write("garbage")
    kept = {k: v for k, v in _snapshot(unreadable).items() if not k.startswith("checkpoints")}
    with pytest.raises(UserError, match=r"no readable checkpoint to resume from"):
        experiment.train_and_evaluate(longer, unreadable)
    after = _snapshot(unreadable)
    assert {k: v for k, v in after.items() if not k.startswith("damaged_checkpoints")} == kept
    assert json.loads(open(os.path.join(unreadable, "summary.json")).read())["epoch"] == 2


def test_a_rerun_changing_a_field_that_moves_numbers_says_so(tmp_path, caplog):
    """train.eval_batch_size may change on a rerun (memory), but the validation metrics of the
    epochs still to train then differ from an uninterrupted run's: it was accepted silently."""
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(_cfg(train__epochs=1), run)
    caplog.set_level("WARNING")
    experiment.train_and_evaluate(_cfg(train__epochs=2), run)  # extended, nothing else changed
    assert "on this rerun" not in caplog.text
    bigger = _cfg(train__epochs=3, train__eval_batch_size=7)
    experiment.train_and_evaluate(bigger, run)
    said = f"{run}: train.eval_batch_size 4096 -> 7 on this rerun: the validation"
    assert caplog.text.count(said) == 1  # (a review: twice, when the run's group was split)
    # ... and recorded (a probe: config.json held only the new value, so the first epochs'
    # metrics matched no config of the run's), with the first epoch computed under it.
    saved = json.loads(open(os.path.join(run, "config.json")).read())
    assert saved["train"]["eval_batch_size"] == 7 and [
        e["to_epochs"] for e in saved["extended"]
    ] == [2, 3]
    assert saved["changed"] == [
        {"field": "train.eval_batch_size", "from": 4096, "to": 7, "from_epoch": 3}
    ]
    caplog.clear()
    experiment.train_and_evaluate(_cfg(train__epochs=3), run)  # finished: nothing trains
    assert "on this rerun" not in caplog.text
    # A group of a finished run and an unfinished one trains the latter in a group of its own
    # (train_group calls itself): said once, not in both calls.
    pair = [str(tmp_path / "a"), str(tmp_path / "b")]
    experiment.train_group([_cfg(), _cfg(train__seed=1)], pair)
    os.remove(os.path.join(pair[1], "summary.json"))  # b: unfinished again
    caplog.clear()
    small = [_cfg(train__eval_batch_size=7), _cfg(train__seed=1, train__eval_batch_size=7)]
    experiment.train_group(small, pair)
    assert caplog.text.count("train.eval_batch_size 4096 -> 7 on this rerun") == 1
    assert f"{pair[1]}: train.eval_batch_size" in caplog.text


def test_a_rerun_changing_the_importance_weighted_batches_says_so(tmp_path, caplog):
    """eval.iw_batch_rows may change on any rerun (memory), but it moves a VAE's sampled
    bounds and their standard errors in their last bits (a probe: ~1e-9 relative, said
    nowhere): a VAE finishing its evaluation under another value says so and records it; a
    plain autoencoder, which has no such pass, says nothing."""
    caplog.set_level("WARNING")
    for name in ("vae", "autoencoder"):
        run = str(tmp_path / name)
        fields = {"model__name": name, "eval__at_end": True, "eval__iw_samples": 5}
        experiment.train_and_evaluate(_cfg(**fields), run)
        os.remove(os.path.join(run, "summary.json"))  # as if killed during its evaluation
        caplog.clear()
        experiment.train_and_evaluate(_cfg(**fields, eval__iw_batch_rows=7), run)
        changed = json.loads(open(os.path.join(run, "config.json")).read())["changed"]
        if name == "vae":
            assert f"{run}: eval.iw_batch_rows 64 -> 7 on this rerun" in caplog.text
            entry = {"field": "eval.iw_batch_rows", "from": 64, "to": 7, "from_epoch": 2}
            assert changed == [entry]
        else:
            assert "on this rerun" not in caplog.text and changed == []


def test_best_of_a_run_with_only_a_stops_checkpoint_says_why_there_is_none(tmp_path):
    """A run stopped before its first scheduled checkpoint has only the stop's, which is no
    candidate for best (an uninterrupted run has none there): the refusal blamed divergence,
    though the checkpoint held a finite eval/loss (a probe)."""
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(_cfg(train__epochs=1, train__checkpoint_every=1), run)
    meta = os.path.join(run, workdir_lib.CHECKPOINTS, "1", "meta.json")
    with open(meta) as f:
        saved = json.load(f)
    assert np.isfinite(saved["metrics"]["eval/loss"])
    with open(meta, "w") as f:
        json.dump({**saved, "stop": True}, f)  # what a stop inside epoch 2 would have saved
    with pytest.raises(UserError) as e:
        ae_jax.load(run, which="best")
    said = str(e.value)
    assert "none of epochs [1] is one (epoch(s) [1] saved by a stop between scheduled" in said
    assert "or train on to a scheduled checkpoint." in said


def test_loading_a_finished_run_whose_last_checkpoint_is_gone_says_so(tmp_path, caplog):
    """A finished 2-epoch run without checkpoints/2 loaded (and was evaluated as `which=latest`)
    at epoch 1 without a word."""
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(_cfg(train__epochs=2, train__checkpoint_every=1), run)
    caplog.set_level("WARNING")
    assert ae_jax.load(run).epoch == 2 and "newest checkpoint" not in caplog.text
    assert evaluate.evaluate_run(run, figures=False)[1] == run  # the run's own, of epoch 2
    shutil.rmtree(os.path.join(run, workdir_lib.CHECKPOINTS, "2"))
    assert ae_jax.load(run).epoch == 1
    said = "finished at epoch 2, but its newest checkpoint is of epoch 1 (checkpoints/2 deleted"
    assert f"{run} {said}" in caplog.text
    # Its evaluation is named for its epoch, not filed as the end's, which=latest (a probe: a
    # copy of the checkpoint put back, evaluated again, replaced it)
    metrics, out = evaluate.evaluate_run(run, figures=False)
    assert metrics["epoch"] == 1 and os.path.basename(out) == "which=latest,epoch=1"


def test_loading_the_best_of_a_finished_run_whose_best_checkpoint_is_gone_says_so(tmp_path, caplog):
    """--which=best (evaluate, encode, export, `ae_jax.load`) loaded another epoch without a
    word when summary.json's best_epoch had no checkpoint left (a probe's finding)."""
    run = str(tmp_path / "run")
    (s,) = experiment.train_and_evaluate(_cfg(train__epochs=2, train__checkpoint_every=1), run)
    assert s["best_epoch"] == 2  # the loss still falls: the best is the last
    caplog.set_level("WARNING")
    assert ae_jax.load(run, which="best").epoch == 2 and "as its best" not in caplog.text
    shutil.rmtree(os.path.join(run, workdir_lib.CHECKPOINTS, "2"))
    assert ae_jax.load(run, which="best").epoch == 1
    said = "finished with epoch 2 as its best (summary.json's best_epoch), but checkpoints/2 is"
    assert f"{run} {said} missing" in caplog.text and "epoch 1, is loaded" in caplog.text
    # There, its meta.json (its eval/loss) damaged, it was said to be "missing" too (a probe).
    other = str(tmp_path / "other")
    experiment.train_and_evaluate(_cfg(train__epochs=2, train__checkpoint_every=1), other)
    with open(os.path.join(other, workdir_lib.CHECKPOINTS, "2", "meta.json"), "w") as f:
        f.write('{"epoch": ')
    caplog.clear()
    assert ae_jax.load(other, which="best").epoch == 1
    there = "there, its meta.json (its eval/loss) unreadable: damaged? Restore it from a copy:"
    assert f"{other} {said} {there} the best of the checkpoints kept, epoch 1" in caplog.text


def test_extending_a_finished_run_without_checkpoints_reads_no_history(tmp_path):
    """Such a run trains again from epoch 1 and replaces its history: a missing (or damaged)
    metrics.jsonl was refused as if its checkpoints needed it ("checkpoints up to epoch 1")."""
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(_cfg(train__checkpoints=False), run)
    os.remove(os.path.join(run, workdir_lib.METRICS))
    (s,) = experiment.train_and_evaluate(_cfg(train__checkpoints=False, train__epochs=2), run)
    assert s["epoch"] == 2 and len(workdir_lib.read_history(run, 2)) == 2


def test_a_run_whose_checkpoints_orbax_wrote_is_loaded_and_resumed_bit_for_bit(tmp_path):
    """Until December 2026 a run's checkpoints were orbax's (items state/ and meta/); such a
    run is still loaded and resumed, to the numbers of an uninterrupted run, and its old
    checkpoints are never rewritten: the new ones are written in today's format beside them
    and the old ones pruned by the same policy."""
    cfg = dict(train__epochs=2, train__checkpoint_every=1, train__keep_checkpoints=3)
    old, whole = str(tmp_path / "old"), str(tmp_path / "whole")
    experiment.train_and_evaluate(_cfg(**cfg), old)
    experiment.train_and_evaluate(_cfg(**{**cfg, "train__epochs": 4}), whole)
    before = ae_jax.load(old)
    assert checkpoints_old.to_orbax(old) == [1, 2]
    assert os.path.isdir(os.path.join(old, "checkpoints", "2", "state"))  # orbax's item
    assert not os.path.exists(os.path.join(old, "checkpoints", "2", "state.npz"))
    loaded = ae_jax.load(old)
    assert loaded.epoch == 2 and jax.tree.all(
        jax.tree.map(np.array_equal, loaded.params, before.params)
    )
    assert ae_jax.load(old, which="best").epoch == Checkpointer(old, read_only=True).best_epoch()
    (s,) = experiment.train_and_evaluate(_cfg(**{**cfg, "train__epochs": 4}), old)
    assert s["resumed_from_epoch"] == 2 and s["epoch"] == 4
    a, b = Checkpointer(old, read_only=True), Checkpointer(whole, read_only=True)
    assert a.epochs() == b.epochs() == [2, 3, 4]  # the newest 3: epoch 1 (orbax's) pruned
    assert os.path.isdir(os.path.join(old, "checkpoints", "2", "state"))  # left as it was
    for e in (3, 4):
        assert os.path.exists(os.path.join(old, "checkpoints", str(e), "state.npz"))
        assert jax.tree.all(jax.tree.map(np.array_equal, a.restore_raw(e), b.restore_raw(e)))
        timing = ("epoch_s", "rows_per_s")
        ma, mb = (
            {k: v for k, v in c.meta(e)["metrics"].items() if k not in timing} for c in (a, b)
        )
        assert ma == mb


def test_a_save_cut_short_is_passed_over_and_removed_by_the_next_training(tmp_path):
    """A kill while a checkpoint is written leaves `<epoch>.tmp-<pid>/`: readers list only
    complete checkpoints, and the process that trains the run next removes it."""
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(_cfg(train__epochs=1), run)
    cut = os.path.join(run, "checkpoints", "2.tmp-12345")
    os.makedirs(cut)
    with open(os.path.join(cut, "state.npz"), "wb") as f:
        f.write(b"PK\x03\x04 cut short")
    assert Checkpointer(run, read_only=True).epochs() == [1]
    assert ae_jax.load(run).epoch == 1
    assert os.path.isdir(cut)  # a reader removes nothing
    (s,) = experiment.train_and_evaluate(_cfg(train__epochs=2), run)
    assert s["resumed_from_epoch"] == 1 and not os.path.exists(cut)
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["1", "2"]


def test_a_kill_between_the_renames_of_a_resave_puts_the_earlier_copy_back(tmp_path):
    """Saving an epoch that has a checkpoint already (a group resumed from an older one)
    renames the earlier copy away, then the new one in: a kill between the two left neither
    under the epoch's name, and the next process removed both. It now puts the earlier copy,
    complete, back; a reader changes nothing."""
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(_cfg(train__epochs=2), run)
    ck = os.path.join(run, "checkpoints")
    epochs = Checkpointer(run, read_only=True).epochs()
    assert epochs[-1] == 2
    before = Checkpointer(run, read_only=True).restore_raw(2)
    os.rename(os.path.join(ck, "2"), os.path.join(ck, "2.tmp-replaced-12345"))
    os.makedirs(os.path.join(ck, "2.tmp-12345"))  # the new copy, cut short
    assert Checkpointer(run, read_only=True).epochs() == epochs[:-1]
    assert len(os.listdir(ck)) == len(epochs) + 1
    Checkpointer(run, keep=5)  # as the next process that trains the run opens it
    assert sorted(os.listdir(ck)) == [str(e) for e in epochs]
    after = Checkpointer(run, read_only=True).restore_raw(2)
    assert jax.tree.all(jax.tree.map(np.array_equal, before, after))
    # An earlier copy whose removal was cut short (a file gone) is no checkpoint: removed.
    partial = os.path.join(ck, "7.tmp-replaced-12345")
    shutil.copytree(os.path.join(ck, "2"), partial)
    os.remove(os.path.join(partial, "state.npz"))
    Checkpointer(run, keep=5)
    assert sorted(os.listdir(ck)) == [str(e) for e in epochs]


def test_checkpoint_arrays_keep_a_dtype_numpys_format_cannot_name(tmp_path):
    """bfloat16 (ml_dtypes') is stored as uint16 with its name beside it, and read back as
    bfloat16 with the same bits; numpy's own dtypes are stored as they are."""
    arrays = {
        "a/b": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        "c": np.asarray(np.pi, dtype=jax.numpy.bfloat16),
        "d": np.int32(5),
    }
    path = str(tmp_path / "state.npz")
    checkpoint._write_arrays(path, arrays)
    back = checkpoint._read_arrays(path)
    assert sorted(back) == ["a/b", "c", "d"]
    for k, a in arrays.items():
        assert back[k].dtype == a.dtype and back[k].shape == np.shape(a)
        assert np.array_equal(back[k].reshape(-1).view(np.uint8), np.reshape(a, -1).view(np.uint8))


def test_a_checkpoint_leaves_the_listing_before_its_files_are_deleted(tmp_path, monkeypatch):
    """A reader (`ae-jax evaluate` while the run trains) must never list a checkpoint whose
    files are half deleted: it would read as damaged. Pruned ones are renamed away first."""
    ck = Checkpointer(str(tmp_path), keep=1)
    listed, rmtree = [], shutil.rmtree

    def deleting(path, *args, **kwargs):
        listed.append(Checkpointer(str(tmp_path), read_only=True).epochs())
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.shutil, "rmtree", deleting)
    for epoch, loss in [(1, 2.0), (2, 1.0)]:  # the newest is the best: epoch 1 goes
        ck.save(
            epoch, {"w": np.ones(3, np.float32)}, {"epoch": epoch, "metrics": {"eval/loss": loss}}
        )
    assert listed == [[2]] and ck.epochs() == [2]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2"]


def _saves(ck, *epochs, stop=(), loss=None):
    for e in epochs:
        meta = {"epoch": e, "metrics": {"eval/loss": loss(e) if loss else float(-e)}}
        ck.save(
            e, {"w": np.full(3, e, np.float32)}, {**meta, **({"stop": True} if e in stop else {})}
        )


def test_retention_counts_scheduled_checkpoints_and_keeps_what_a_resume_trains_again(tmp_path):
    """keep=2 counts the scheduled checkpoints only: stops at 7 and 8 between scheduled ones at
    5 and 10 leave [5, 10], an uninterrupted run's (they left [10]). A run resumed from an
    older epoch than its newest checkpoints (their metrics rows lost: the resume started at 0)
    keeps the last one it saved: each was deleted straight away, as older than 14 and 15, so a
    kill lost all the training again."""
    w = str(tmp_path / "stops")
    _saves(Checkpointer(w, keep=2), 5, loss=lambda e: float("inf"))  # no best: kept by count
    _saves(Checkpointer(w, keep=2), 7, stop=(7,))  # each stop: the next process resumes
    _saves(Checkpointer(w, keep=2), 8, stop=(8,))
    assert Checkpointer(w, read_only=True).epochs() == [5, 8]  # 8 to resume from
    _saves(Checkpointer(w, keep=2), 10)
    assert Checkpointer(w, read_only=True).epochs() == [5, 10]
    w = str(tmp_path / "again")
    _saves(Checkpointer(w, keep=2), 14, 15)
    ck = Checkpointer(w, keep=2)  # the resume from 0
    _saves(ck, 1)
    assert ck.epochs() == [1, 14, 15]
    _saves(ck, 2)
    ck.close()
    assert Checkpointer(w, read_only=True).epochs() == [2, 14, 15]


def test_the_checkpoint_that_replaces_others_is_durable_before_they_are_deleted(
    tmp_path, monkeypatch
):
    """Nothing was fsynced: after a machine crash the new checkpoint's files could come back
    empty while the deletion of the older ones had reached the disk."""
    events, fsync, rename = [], os.fsync, os.rename
    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: events.append("fsync") or fsync(fd))

    def renaming(src, dst):
        events.append("delete" if "deleted" in str(dst) else "rename")
        return rename(src, dst)

    monkeypatch.setattr(checkpoint.os, "rename", renaming)
    ck = Checkpointer(str(tmp_path), keep=1)
    _saves(ck, 1)
    assert events == ["rename"]  # nothing deleted: no fsync
    events.clear()
    _saves(ck, 2)  # epoch 1 goes (2 is the best too)
    assert events[0] == "rename" and events[-1] == "delete"
    assert events.count("fsync") == 4  # state.npz, meta.json, its directory, checkpoints/


def test_a_reader_reads_again_a_checkpoint_being_replaced_and_names_a_missing_file(
    tmp_path, monkeypatch
):
    """A file not found in a listed checkpoint is read once more (the writer replaces it by
    a rename); missing again, it is damage, not 'replaced 5 times'. Setting aside one that
    is gone is no error."""
    _saves(Checkpointer(str(tmp_path)), 1)
    ck, real, calls = Checkpointer(str(tmp_path), read_only=True), Checkpointer.restore_raw, []

    def once_missing(self, epoch):
        calls.append(epoch)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", "state.npz")
        return real(self, epoch)

    monkeypatch.setattr(Checkpointer, "restore_raw", once_missing)
    assert ck.restore_current("latest")[0] == 1 and calls == [1, 1]
    monkeypatch.undo()
    os.remove(tmp_path / "checkpoints" / "1" / "state.npz")
    with pytest.raises(checkpoint.DamagedCheckpoint, match=r"checkpoints/1 cannot be read"):
        ck.restore_current("latest")
    writer = Checkpointer(str(tmp_path))
    assert writer.set_aside(7).endswith("damaged_checkpoints/7")  # never there: no error
    # A second damaged copy of an epoch is kept beside the first, which it replaced (a probe).
    for n, text in enumerate(("FIRST", "SECOND"), start=1):
        os.makedirs(tmp_path / "checkpoints" / "7")
        (tmp_path / "checkpoints" / "7" / "state.npz").write_text(text)
        assert writer.set_aside(7).endswith("damaged_checkpoints/7" + "@2" * (n == 2))
    aside = tmp_path / "damaged_checkpoints"
    assert [(aside / d / "state.npz").read_text() for d in ("7", "7@2")] == ["FIRST", "SECOND"]


def test_a_rerun_that_trained_nothing_leaves_no_changed_entry_of_its_own(tmp_path):
    """config.json's `changed` (a field that moves numbers changed on a rerun) piled up entries
    of reruns that trained nothing (a review: 4096 -> 7, stopped before an epoch, then back to
    4096, recorded both, the first over no epoch): an entry of the same field and first epoch
    is replaced, and a change undone before it computed anything leaves none."""
    c = _cfg()
    ds = data_lib.load_dataset(c.data)
    engine = SimpleNamespace(batch_size=64, steps_per_epoch=3)
    work = str(tmp_path)
    changed = lambda: json.load(open(os.path.join(work, "config.json")))["changed"]  # noqa: E731
    for size, start in ((4096, 0), (7, 2), (4096, 2), (5, 2), (9, 3)):
        c.train.eval_batch_size = size
        startup.write_resolved_config(c, ds, engine, 3, work, start)
        if start == 2 and size == 4096:
            assert changed() == []  # 4096 -> 7 -> 4096 before epoch 3 computed anything
    assert changed() == [
        {"field": "train.eval_batch_size", "from": 4096, "to": 5, "from_epoch": 3},
        {"field": "train.eval_batch_size", "from": 5, "to": 9, "from_epoch": 4},
    ]


def test_a_run_whose_data_file_moved_is_told_so(tmp_path):
    """A project moved with its data (mv proj proj2): the rerun was refused as 'data.path:
    /old/proj/data.csv -> data.csv', as if the naming were the change (a probe). The refusal
    now says the run's file is gone from where it trained and how to resume it; a rerun naming
    another file while the run's own is still there says nothing of it."""
    from sklearn.datasets import load_breast_cancer

    proj = tmp_path / "proj"
    proj.mkdir()
    load_breast_cancer(as_frame=True).frame.to_csv(proj / "data.csv", index=False)
    c = seed_sparse.get_config()
    c.data.path, c.data.label_column = str(proj / "data.csv"), "target"
    c.train.epochs, c.eval.at_end, c.train.figures = 1, False, False
    experiment.train_and_evaluate(c, str(proj / "run"))
    moved = tmp_path / "moved"
    proj.rename(moved)
    c.data.path = str(moved / "data.csv")
    with pytest.raises(
        UserError,
        match=rf"data.path: '{proj}/data.csv' -> '{moved}/data.csv'. The run's data.path "
        rf"'{proj}/data.csv' no longer exists: if '{moved}/data.csv' is that file, moved, put "
        rf"it \(or a link to it\) back at '{proj}/data.csv'",
    ):
        experiment.train_and_evaluate(c, str(moved / "run"))
    proj.mkdir()
    os.symlink(moved / "data.csv", proj / "data.csv")  # as the refusal says: it resumes
    c.data.path = str(proj / "data.csv")
    assert experiment.train_and_evaluate(c, str(moved / "run"))[0]["epoch"] == 1
    shutil.copy(moved / "data.csv", tmp_path / "other.csv")
    c.data.path = str(tmp_path / "other.csv")  # the run's own file is there: no such words
    with pytest.raises(UserError, match=r"data.path: .* -> .*other.csv'") as e:
        experiment.train_and_evaluate(c, str(moved / "run"))
    assert "no longer exists" not in str(e.value)


def test_an_epoch_redone_after_its_points_reached_tensorboard_is_there_once(tmp_path):
    """A process killed after an epoch's points reached TensorBoard, before its checkpoint
    (here: that checkpoint and the end's summary removed), redoes the epoch on the rerun:
    TensorBoard drops the earlier process's points from the first step redone on, with
    epochs of one step too (all rows in one batch)."""
    run = str(tmp_path / "run")
    c = _cfg(
        train__epochs=3,
        train__tensorboard=True,
        train__batch_size=4096,
        train__checkpoint_every=1,
        train__keep_checkpoints=3,
    )
    experiment.train_and_evaluate(c, run)
    rows = [json.loads(r) for r in open(os.path.join(run, workdir_lib.METRICS))]
    assert [r["step"] for r in rows] == [1, 2, 3]  # one step an epoch
    shutil.rmtree(os.path.join(run, "checkpoints", "3"))
    os.remove(os.path.join(run, "summary.json"))
    (summary,) = experiment.train_and_evaluate(c, run)
    assert summary["resumed_from_epoch"] == 2
    tb = writers.read_scalars(os.path.join(run, "tb"))
    assert [step for step, _ in tb["train/loss"]] == [1, 2, 3]
