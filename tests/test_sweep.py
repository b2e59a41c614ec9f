"""Sweeps: declaration helpers, failure isolation, kill + resume, shards, claims, Ray."""

import copy
import csv
import errno
import fcntl
import importlib.util
import json
import os
import pathlib
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import ae_jax
from ae_jax import experiment, locks
from ae_jax import files as files_lib
from ae_jax import sweeps as sweep
from ae_jax import workdir as workdir_lib
from ae_jax.commands import sweep as sweep_command
from ae_jax.configs import seed_sparse, seed_vae
from ae_jax.configs.ablations import seed_study
from ae_jax.errors import UserError
from ae_jax.evaluation import finish
from ae_jax.evaluation.figure_writer import FigureWriter
from ae_jax.sweeps import checks, finished, ray_launch, report, report_figures, run_folders, shards
from ae_jax.sweeps import overrides as overrides_lib
from ae_jax.sweeps import status as status_lib
from ae_jax.training.signals import Interrupted
from tests.bad_inputs import _cfg
from tests.test_study import _Stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_declaration_helpers():
    assert sweep.product({"a": [1, 2]}, {"b": [3, 4]}) == [
        {"a": 1, "b": 3},
        {"a": 1, "b": 4},
        {"a": 2, "b": 3},
        {"a": 2, "b": 4},
    ]
    assert sweep.zip_(a=[1, 2], b=["x", "y"]) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert sweep.product({"a": [1, 2], "b": [5, 6]}, {"c": [0]}) == [
        {"a": 1, "b": 5, "c": 0},
        {"a": 2, "b": 6, "c": 0},
    ]
    assert sweep.chain([{"a": 1}], [{"b": 2}]) == [{"a": 1}, {"b": 2}]
    draws = sweep.random_search(
        50, 0, lr=("log", 1e-4, 1e-1), act=["relu", "tanh"], width=("int", 4, 6)
    )
    assert draws == sweep.random_search(
        50, 0, lr=("log", 1e-4, 1e-1), act=["relu", "tanh"], width=("int", 4, 6)
    )  # seeded
    assert all(1e-4 <= d["lr"] <= 1e-1 and d["width"] in (4, 5, 6) for d in draws)
    assert {d["act"] for d in draws} == {"relu", "tanh"}
    runs = sweep.expand([{"loss.l1_weight": 1e-4, "train.seed": 3}, {}], "/w")
    assert [r.name for r in runs] == ["loss.l1_weight=0.0001,train.seed=3", "base"]
    assert runs[0].workdir == "/w/runs/loss.l1_weight=0.0001,train.seed=3"
    assert sweep.parse_shard("2/5") == (2, 5)


def test_a_shard_from_slurm_names_its_variables(monkeypatch, caplog):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")  # an older Slurm's, no count: said (a probe)
    assert sweep.parse_shard("") == (0, 1)
    assert "SLURM_ARRAY_TASK_ID=1 is set but not SLURM_ARRAY_TASK_COUNT: this task" in caplog.text
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert sweep.parse_shard("") == (1, 3)
    assert sweep.parse_shard("0/2") == (0, 2)  # --shard wins
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    with pytest.raises(UserError, match=r"\('3/3', SLURM_ARRAY_TASK_MIN=0, .*expected 0 <= i < n"):
        sweep.parse_shard("")
    # An array numbered 1..3 (or with a step) would leave shard 0 to no task: every task refuses.
    for task_id, first, step in (("1", "1", "1"), ("2", "0", "2")):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", task_id)
        monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", first)
        monkeypatch.setenv("SLURM_ARRAY_TASK_STEP", step)
        with pytest.raises(UserError) as e:
            sweep.parse_shard("")
        assert str(e.value) == (
            f"the shard from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT ('{task_id}/3', "
            f"SLURM_ARRAY_TASK_MIN={first}, SLURM_ARRAY_TASK_STEP={step}; submit the array as "
            "--array=0-N, N one less than the count, or pass --shard): expected an array "
            "numbered 0, 1, ..., count - 1."
        )


HEADER = """from ae_jax import sweeps as sweep
from ae_jax.sweeps import report
from ae_jax.configs import seed_sparse


def get_config():
    c = seed_sparse.get_config()
    c.train.epochs, c.train.batch_size = 2, 128
    c.eval.at_end = c.train.figures = False
    return c


def get_sweep():
"""


def _sweep_file(tmp_path, body: str) -> str:
    path = tmp_path / "sweep_cfg.py"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n")
    return str(path)


def _launch(cfg, workdir, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.sweep",
            f"--config={cfg}",
            f"--workdir={workdir}",
            *extra,
        ],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _status(workdir):
    return json.load(open(os.path.join(workdir, "sweep.json")))


def test_a_misspelt_field_in_any_entry_is_refused_before_any_run(tmp_path):
    cfg = _sweep_file(tmp_path, 'return [{"train.seed": 0}, {"loss.l1_wieght": 1.0}]')
    proc = _launch(cfg, tmp_path / "w")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err[-3000:]
    assert err.strip().splitlines()[-1] == (
        "error: sweep entry 1 (loss.l1_wieght=1): override 'loss.l1_wieght': no such config "
        "field; did you mean 'loss.l1_weight'? (--helpconfig lists them)."
    )
    assert "training" not in err and not (tmp_path / "w").exists()


def test_an_invalid_value_in_any_entry_or_a_wrong_directory_is_refused_before_any_run(tmp_path):
    cfg = _sweep_file(tmp_path, 'return [{"train.seed": 0}, {"model.latent_dim": -3}]')
    proc = _launch(cfg, tmp_path / "w")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err[-3000:]
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "error: sweep entry 1 (model.latent_dim=-3): model.latent_dim: got -3; expected"
        )
    )
    assert "training" not in err and not (tmp_path / "w").exists()
    # A run's directory, or one inside a run, is no sweep's; nor is a sweep's a run's.
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    for name in ("config.json", "preprocessor.json"):  # what a run writes when it starts
        (tmp_path / "run" / name).write_text("{}")
    for where in ("run", "run/checkpoints"):
        with pytest.raises(UserError, match=r"is a run's directory|inside .*a run's directory"):
            sweep.run_sweep(seed_sparse.get_config(), [{}], str(tmp_path / where))
    (tmp_path / "sw" / "runs").mkdir(parents=True)
    (tmp_path / "sw" / "sweep.json").write_text("{}")
    with pytest.raises(UserError, match=r"is a sweep's directory; expected a new directory"):
        experiment.train_and_evaluate(seed_sparse.get_config(), str(tmp_path / "sw"))
    with pytest.raises(UserError, match=r"--max_models=0; expected a positive whole number"):
        sweep.run_sweep(seed_sparse.get_config(), [{}], str(tmp_path / "new"), max_models=0)
    assert not (tmp_path / "new").exists() and not (tmp_path / "run" / "runs").exists()
    # A project folder's own config.json makes it no run: runs and sweeps go inside it.
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "config.json").write_text('{"editor": "vim"}')
    for kind in ("run", "sweep"):
        workdir_lib.check_kind(str(tmp_path / "project" / "studies" / "a"), kind)


def test_failing_and_diverging_runs_are_recorded_and_others_finish(tmp_path):
    cfg = _sweep_file(
        tmp_path,
        """
        return [{"train.seed": 0},
                {"model.encoder_widths": [100000, 100000], "model.latent_dim": 3},
                {"optim.name": "sgd", "optim.eps": None, "optim.learning_rate": 1e9,
                 "model.output_activation": "identity", "train.seed": 1},
                {"train.seed": 2, "model.latent_dim": 4}]
    """,
    )
    proc = _launch(cfg, tmp_path / "w", "--config.model.latent_dim=5")
    out, err = proc.communicate(timeout=300)
    status = _status(tmp_path / "w")
    by_index = {e["index"]: e for e in status["runs"]}
    assert [by_index[i]["status"] for i in range(4)] == ["done", "failed", "diverged", "done"], err[
        -3000:
    ]
    assert "need about" in by_index[1]["error"] and "GiB" in by_index[1]["error"]
    assert "non-finite loss, gradient or update in step" in by_index[2]["error"]
    assert status["counts"] == {"done": 2, "diverged": 1, "failed": 1, "running": 0, "pending": 0}
    # The flag that two entries replace is named, before training; the failures end the command.
    assert (
        "sweep entries replace command-line overrides: --config.model.latent_dim=5 in 2 of the 4 "
        "runs (their model.latent_dim: 3, 4)." in err.split("training ")[0]
    ), err[-3000:]
    assert proc.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 1 run(s) failed: 1 (") and "); the others ran." in last
    assert last.endswith(
        "rerunning the same command retries the failed runs (and skips the finished ones)."
    )


def test_the_flags_seed_study_replaces_are_named():
    """--config.train.epochs=2 on the seed study: its VAE entries' 30 epochs win, and say so."""
    entries = seed_study.get_sweep()
    warning = sweep_command.replaced_flags({"train.epochs": 2, "train.batch_size": 100}, entries)
    assert warning == (
        "sweep entries replace command-line overrides: --config.train.epochs=2 in 10 of the 40 "
        "runs (their train.epochs: 30). A sweep entry's value wins for its runs; to change it, "
        "edit the config file's get_sweep()."
    )  # batch_size=100: what the VAE entries set, so nothing is replaced
    assert sweep_command.replaced_flags({"data.name": "digits", "train.seed": 0}, entries) == (
        "sweep entries replace command-line overrides: --config.data.name=digits in 20 of the 40 "
        "runs (their data.name: breast_cancer); --config.train.seed=0 in 32 of the 40 runs "
        "(their train.seed: 1, 2, 3, 4). A sweep entry's value wins for its runs; to change it, "
        "edit the config file's get_sweep()."
    )


FOUR_RUNS = """
    return sweep.product({"model.latent_dim": [3, 5]}, {"train.seed": [0, 1]})
"""


def _summaries(workdir):
    out = {}
    for name in sorted(os.listdir(os.path.join(workdir, "runs"))):
        s = json.load(open(os.path.join(workdir, "runs", name, "summary.json")))
        out[name] = {k: v for k, v in s.items() if k.startswith(("train/", "eval/"))}
    return out


# The sweep command, SIGKILLed by itself right after its second run is marked done: a kill at a
# known moment, however fast or slow the machine (the other runs may be trained, or not).
KILLED_AFTER_TWO = """
import os, signal, sys
from ae_jax.commands import main
from ae_jax.evaluation import finish

mark, done = finish.mark_done, []


def mark_then_die(runs):
    mark(runs)
    done.extend(runs)
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)


finish.mark_done = mark_then_die
main(["sweep", *sys.argv[1:]])
"""


def test_killed_sweep_resumes_without_retraining_finished_runs(tmp_path):
    cfg = _sweep_file(tmp_path, FOUR_RUNS)
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_AFTER_TWO,
            f"--config={cfg}",
            f"--workdir={tmp_path / 'killed'}",
            "--max_models=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
    runs = tmp_path / "killed" / "runs"
    finished = {
        d: os.path.getmtime(runs / d / "summary.json")
        for d in os.listdir(runs)
        if (runs / d / "summary.json").exists()
    }
    assert len(finished) == 2, p.stderr[-3000:]
    _, err = _launch(cfg, tmp_path / "killed", "--max_models=1").communicate(timeout=300)
    for d, mtime in finished.items():  # not retrained
        assert os.path.getmtime(runs / d / "summary.json") == mtime, d
    # What it takes, said so ("takes 4" read as 4 runs to train: a probe); a run the kill
    # caught after its training, before it was written, is only evaluated.
    taken = r"shard 0/1 takes 4 \(2 of them finished: (\d) to train(?:, (\d) to evaluate)?\)"
    said = re.search(taken, err)
    assert said and int(said[1]) + int(said[2] or 0) == 2, err[-3000:]
    # The uninterrupted reference, in this process: the same runner the command calls.
    spec = importlib.util.spec_from_file_location("sweep_cfg", cfg)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sweep.run_sweep(module.get_config(), module.get_sweep(), str(tmp_path / "whole"), max_models=1)
    assert _status(tmp_path / "killed")["counts"]["done"] == 4
    assert _summaries(tmp_path / "killed") == _summaries(tmp_path / "whole")
    for w in ("killed", "whole"):
        report.write_report(str(tmp_path / w))
    results = (tmp_path / "killed" / "results.csv").read_text()
    assert results == (tmp_path / "whole" / "results.csv").read_text()
    assert len(results.splitlines()) == 3  # header + one row per latent size (2 seeds each)
    assert (tmp_path / "killed" / "figures" / "metrics_vs_model_latent_dim.png").exists()


def test_shards_cover_every_run_once_and_claims_prevent_double_training(tmp_path):
    """Shard 1/2 is launched (twice) with the runs listed in the reverse order (a list built
    from a set: its order changes from process to process): shards take runs by their sorted
    names, so the two orders split them alike (by place in each list, two runs were left to no
    shard)."""
    cfg = _sweep_file(tmp_path, FOUR_RUNS)
    (tmp_path / "r").mkdir()
    reversed_cfg = _sweep_file(tmp_path / "r", FOUR_RUNS.replace("[0, 1]})", "[0, 1]})[::-1]"))
    procs = [
        _launch(cfg, tmp_path / "w", "--shard=0/2", "--max_models=1"),
        _launch(reversed_cfg, tmp_path / "w", "--shard=1/2", "--max_models=1"),
        _launch(reversed_cfg, tmp_path / "w", "--shard=1/2", "--max_models=1"),
    ]  # same shard twice
    errs = [p.communicate(timeout=300)[1] for p in procs]
    failed = [
        f"exit {p.returncode}:\n{e[-2000:]}"
        for p, e in zip(procs, errs, strict=True)
        if p.returncode
    ]
    assert not failed, "\n\n".join(failed)
    assert _status(tmp_path / "w")["counts"]["done"] == 4
    trained = [
        line.split("together: ")[1].strip()
        for err in errs
        for line in err.splitlines()
        if "training 1 run(s) together: " in line
    ]
    assert sorted(trained) == sorted(os.listdir(tmp_path / "w" / "runs"))  # each exactly once
    shard0 = [line for line in errs[0].splitlines() if "training 1 run(s)" in line]
    assert all("latent_dim=3,train.seed=1" not in line for line in shard0)  # index 1 is shard 1


def test_a_launcher_that_cannot_run_is_refused_before_the_sweep_writes_anything(
    tmp_path, monkeypatch
):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "ray" else real(n))
    base = seed_sparse.get_config()
    # (the installed package's extra, as the trackers' say: '.[ray]' only works in a checkout)
    with pytest.raises(UserError, match=re.escape('needs Ray: pip install "ae_jax[ray]" (in a')):
        sweep.run_sweep(base, [{"train.seed": 0}], str(tmp_path / "w"), launcher="ray")
    with pytest.raises(UserError, match="--launcher='slurm'; expected 'local' or 'ray'"):
        sweep.run_sweep(base, [{"train.seed": 0}], str(tmp_path / "w"), launcher="slurm")
    with pytest.raises(UserError, match=r"--ray_cpus=-1; expected a number of CPUs/GPUs"):
        sweep.run_sweep(base, [{"train.seed": 0}], str(tmp_path / "w"), ray_cpus=-1)
    assert not (tmp_path / "w").exists()


def test_ray_launcher_runs_a_small_sweep(tmp_path):
    pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")
    cfg = _sweep_file(
        tmp_path,
        """
        return sweep.product({"model.latent_dim": [3, 4]}, {"train.seed": [0]})
    """,
    )
    # The driver starts no JAX backend (its tasks train): on a GPU head node one takes most of
    # every visible GPU's memory from the tasks (a check of nothing, for Ray, started it).
    refuse = (
        "import sys; import jax._src.xla_bridge as xb\n"
        "def backends(): raise RuntimeError('the driver started a JAX backend')\n"
        "xb.backends = backends\n"
        "from ae_jax.entry import main; main(['sweep', *sys.argv[1:]])"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", refuse, f"--config={cfg}", f"--workdir={tmp_path / 'w'}"]
        + ["--launcher=ray"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    assert _status(tmp_path / "w")["counts"]["done"] == 2  # two groups, two Ray tasks


def _read_until(proc, *texts: str, timeout: float = 300) -> tuple[list[str], threading.Thread]:
    """proc's stderr lines, read on by a thread to the end, once lines holding each of `texts`
    have come, in that order."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        waiting = list(texts)
        for line in proc.stderr:
            seen.append(line)
            if waiting and waiting[0] in line:
                waiting.pop(0)
                if not waiting:
                    found.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert found.wait(timeout), "".join(seen)[-3000:]
    return seen, thread


def _metrics_epochs(run_dir) -> list[int]:
    with open(run_dir / workdir_lib.METRICS) as f:
        return [json.loads(line)["epoch"] for line in f]


def test_a_stopped_ray_sweep_saves_the_runs_under_way_and_resumes(tmp_path):
    """SIGTERM or Ctrl-C to a --launcher=ray sweep: Ray's own handler aborted the driver 3 s
    later (exit 134, a stack dump), its tasks were killed without saving, and sweep.json kept
    them running (a walkthrough). Now the driver passes the stop on to its tasks, which save
    where they are; it exits 128 + the signal with the resume hint, and the rerun resumes from
    the saved epoch. (Ctrl-C stops the first launch, SIGTERM the rerun: one Ray start each.)"""
    pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")
    cfg = _sweep_file(tmp_path, 'return [{"train.seed": 0}, {"train.seed": 1}]')
    work = tmp_path / "w"
    flags = ["--launcher=ray", "--config.train.epochs=1000000", "--config.train.figures=False"]
    wait_for: tuple[str, ...] = ("epoch 3/",)
    before = 0
    for signum in (signal.SIGINT, signal.SIGTERM):
        p = _launch(cfg, work, *flags)
        seen, reader = _read_until(p, *wait_for)
        p.send_signal(signum)
        p.wait(timeout=300)
        reader.join(timeout=60)
        name = signal.Signals(signum).name
        assert p.returncode == 128 + signum, "".join(seen)[-3000:]
        assert f"stopped by {name} while its Ray tasks trained" in "".join(seen)
        saved = set()
        for run in (work / "runs").iterdir():  # (one group, one task: both trained together)
            epochs = _metrics_epochs(run)
            checkpoints = [int(c.name) for c in (run / workdir_lib.CHECKPOINTS).iterdir()]
            assert epochs == list(range(1, len(epochs) + 1)) and max(checkpoints) == len(epochs)
            saved.add(len(epochs))
        assert _status(work)["counts"]["running"] == 0 and not list(work.glob("stop-*.json"))
        (epoch,) = saved
        assert epoch >= max(3, before + 2)
        # The rerun resumes from the saved epoch and trains on past it before its stop.
        wait_for = (f"resuming from the epoch-{epoch} checkpoint", f"epoch {epoch + 2}/")
        before = epoch


def test_each_ray_launch_stops_its_own_tasks_only(tmp_path):
    """A stop reaches the tasks through a file in the sweep's directory: one name for every
    launch stopped all the launches sharing the directory (two shards: the one not signalled
    ended silently with exit status 0 and its runs pending). Each launch now names its own."""

    class Ref:
        def __init__(self, stop_path):
            self.stop_path = stop_path

    class FakeRay:
        def wait(self, pending, timeout):
            return pending, []

    class Task:
        def __init__(self):
            self.paths = []

        def remote(self, *args):
            self.paths.append(args[-1])
            return Ref(args[-1])

    task = Task()
    for _ in range(2):  # two launches on one sweep directory
        ray_launch.run(FakeRay(), "", task, [("group 1",), ("group 2",)], str(tmp_path), list)
    first, second = set(task.paths[:2]), set(task.paths[2:])
    assert len(first) == len(second) == 1 and first != second
    for path in first | second:
        assert os.path.dirname(path) == str(tmp_path)
        assert re.fullmatch(r"stop-.+-\d+-[0-9a-f]{8}\.json", os.path.basename(path))


def test_a_finished_sweep_rerun_on_ray_starts_no_ray(tmp_path, monkeypatch):
    """Nothing left to train: the rerun started a local Ray and submitted every group (7.3 s
    against 1.2 s with the local launcher; a walkthrough). Now it only says the sweep is done."""
    pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")
    base = seed_sparse.get_config()
    base.train.epochs, base.eval.at_end, base.train.figures = 1, False, False
    entries = [{"train.seed": 0}, {"train.seed": 1}]
    work = str(tmp_path / "w")
    assert sweep.run_sweep(base, entries, work)["counts"]["done"] == 2

    def no_ray(*args):
        raise AssertionError("Ray was started for a finished sweep")

    monkeypatch.setattr(ray_launch, "connect", no_ray)
    assert sweep.run_sweep(base, entries, work, launcher="ray")["counts"]["done"] == 2


def test_a_ray_task_asking_for_more_than_the_cluster_has_is_refused(tmp_path, monkeypatch):
    """Such a task waited for ever (the tracker probe). The local Ray's resources are stated
    here (a second real Ray took ~12 s to start); the launch above asks the real one."""
    ray = pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")
    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0, "memory": 1e9})
    base = seed_sparse.get_config()
    base.data.name, base.train.epochs = "digits", 1
    with pytest.raises(UserError, match=r"--ray_gpus=1000: each Ray task asks for 1000 GPU\(s\)"):
        sweep.run_sweep(
            base, [{"train.seed": 0}], str(tmp_path / "g"), launcher="ray", ray_gpus=1000
        )
    # ... refused before the sweep's config is recorded: another config may launch there.
    assert not any((tmp_path / "g" / f).exists() for f in ("sweep.json", "sweep_config.json"))


def test_ray_leaves_the_commands_stop_handlers_in_place(monkeypatch):
    """ray.init puts a SIGTERM handler of its own in place: a stop before the sweep's tasks
    were submitted ended the driver with status 15 and a native stack dump, a second stop
    with status 1, not 143 with the resume hint (a probe). The handlers the process had are
    put back once Ray has started."""
    ray = pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")

    def init(**kwargs):  # as Ray's driver does
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(signal.SIGTERM))

    def ours(signum, frame):
        raise AssertionError("not called here")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    before = {s: signal.signal(s, ours) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        ray_launch.connect("", 1, 0)
        assert signal.getsignal(signal.SIGTERM) is ours and signal.getsignal(signal.SIGINT) is ours

        def stopped(**kwargs):  # a stop while Ray starts: its handler's sys.exit(15)
            init()
            sys.exit(signal.SIGTERM)

        monkeypatch.setattr(ray, "init", stopped)
        with pytest.raises(Interrupted) as e:
            ray_launch.connect("", 1, 0)
        assert e.value.signum == signal.SIGTERM and "while Ray started" in str(e.value)
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_ray_starts_with_every_workers_lines_or_says_why_it_cannot(tmp_path, monkeypatch):
    """Ray folded look-alike lines of several workers into one ("[repeated 2x across
    cluster]"), dropping rows of the groups' summary tables that differed in their numbers
    only; and a Ray that could not start or connect was a traceback (the tracker probe)."""
    ray = pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")
    seen = {}
    env = {k: v for k, v in os.environ.items() if k != "RAY_DEDUP_LOGS"}
    monkeypatch.setattr(os, "environ", env)

    def init(**kwargs):
        seen["dedup"] = os.environ.get("RAY_DEDUP_LOGS")
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "init", init)
    base = seed_sparse.get_config()
    base.data.name, base.train.epochs = "digits", 1
    with pytest.raises(UserError, match=r"--ray_address='auto': Ray could not start or connect"):
        sweep.run_sweep(
            base, [{"train.seed": 0}], str(tmp_path / "w"), launcher="ray", ray_address="auto"
        )
    assert seen["dedup"] == "0"
    assert not (tmp_path / "w" / "sweep_config.json").exists()  # nothing recorded


RAY_IMPORT = """
import os, sys
os.environ.pop("RAY_DEDUP_LOGS", None)
from ae_jax.errors import UserError
from ae_jax.sweeps import ray_launch
seen = []
def hook(event, args):  # when Ray is imported, what it reads; then the import stops
    if event == "import" and args[0] == "ray":
        seen.append(os.environ.get("RAY_DEDUP_LOGS"))
        raise ImportError("stopped by the test")
sys.addaudithook(hook)
try:
    ray_launch.connect("", 1, 0)
except UserError as e:
    print(e)
print(seen)
"""


def test_ray_is_imported_with_log_folding_off():
    """Ray reads RAY_DEDUP_LOGS once, when imported: set after the import (as it was), it left
    look-alike lines folded. A fresh process, so that Ray is not imported already."""
    out = subprocess.run(
        [sys.executable, "-c", RAY_IMPORT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Ray does not import (stopped by the test)" in out.stdout
    assert out.stdout.splitlines()[-1] == "['0']"


WRITER = """
import sys
from ae_jax.workdir import write_json
for i in range(2000):
    write_json(sys.argv[1], {"writer": sys.argv[2], "i": i, "pad": "x" * 4000})
"""


def test_processes_writing_one_json_file_at_once(tmp_path):
    """Shards of one sweep rewrite its sweep.json at the same moments: every write must
    succeed and the file must always be whole (once, a shared temporary name made one
    shard crash with FileNotFoundError)."""
    path = str(tmp_path / "sweep.json")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, path, str(k)], stderr=subprocess.PIPE)
        for k in range(3)
    ]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    last = json.load(open(path))
    assert last["i"] == 1999 and last["pad"] == "x" * 4000
    assert os.listdir(tmp_path) == ["sweep.json"]  # no temporary file left behind


def test_an_atomic_write_follows_a_link_and_keeps_the_files_permissions(tmp_path, monkeypatch):
    """A file replaced whole stays what it was: a link stays a link (its target gets the new
    text) and the file keeps its mode; a failed write leaves the old text and no temporary."""
    (tmp_path / "real.json").write_text("old")
    os.chmod(tmp_path / "real.json", 0o600)
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    files_lib.write_atomic(str(tmp_path / "link.json"), lambda f: f.write("new"))
    assert os.path.islink(tmp_path / "link.json") and (tmp_path / "real.json").read_text() == "new"
    assert os.stat(tmp_path / "real.json").st_mode & 0o777 == 0o600

    def half(f):
        f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files_lib.write_atomic(str(tmp_path / "real.json"), half)
    assert (tmp_path / "real.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]
    umask = os.umask(0o027)  # a new file: the user's umask, as open() would give it
    try:
        files_lib.write_atomic(str(tmp_path / "new.json"), lambda f: f.write("x"))
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "new.json").st_mode & 0o777 == 0o640
    # A new file claimed, then its write failed (here: a name whose temporary file's name is
    # too long): no empty claim is left behind to refuse the retry as "exists" (a review).
    long = str(tmp_path / ("c" * 250))
    with pytest.raises(OSError):
        files_lib.write_atomic(long, lambda f: f.write("x"), new=True)
    assert not os.path.exists(long)
    with pytest.raises(FileExistsError):  # a file already there is no new one
        files_lib.write_atomic(str(tmp_path / "new.json"), lambda f: f.write("y"), new=True)
    assert (tmp_path / "new.json").read_text() == "x"
    # While a new file is written, nothing is at its name: a kill -9 then left an empty claim
    # there, and the rerun was refused as an existing output (a probe of `ae-jax encode`).
    seen = []
    out = str(tmp_path / "codes.csv")
    files_lib.write_atomic(
        out, lambda f: seen.append(os.path.exists(out)) or f.write("z"), new=True
    )
    assert seen == [False] and open(out).read() == "z"
    assert sorted(os.listdir(tmp_path)).count("codes.csv") == 1 and not any(
        n.endswith(".tmp") for n in os.listdir(tmp_path)
    )
    with pytest.raises(FileExistsError):  # written meanwhile by another: refused at the end
        files_lib.write_atomic(out, lambda f: f.write("w"), new=True)
    assert open(out).read() == "z" and not any(n.endswith(".tmp") for n in os.listdir(tmp_path))

    # No hard links on this file system: claimed, then renamed, as before.
    def no_link(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files_lib.os, "link", no_link)
    files_lib.write_atomic(str(tmp_path / "nolink.csv"), lambda f: f.write("v"), new=True)
    assert (tmp_path / "nolink.csv").read_text() == "v"
    assert not any(n.endswith(".tmp") for n in os.listdir(tmp_path))
    with pytest.raises(FileExistsError):
        files_lib.write_atomic(str(tmp_path / "nolink.csv"), lambda f: f.write("u"), new=True)
    assert (tmp_path / "nolink.csv").read_text() == "v"


def test_a_folder_is_published_whole_or_claimed_in_place(tmp_path):
    """files.publish_folder: a new folder appears whole; an existing empty one (a link to one)
    is filled and kept, keeping its mode (it was replaced: 2770 became 0755, and a link or a
    parent not writable failed: a review); one another writer filled meanwhile is refused."""
    fill = lambda folder: (pathlib.Path(folder) / "a.txt").write_text("mine")  # noqa: E731
    files_lib.publish_folder(str(tmp_path / "new"), fill)
    assert os.listdir(tmp_path / "new") == ["a.txt"]
    (tmp_path / "empty").mkdir(mode=0o750)
    os.symlink(tmp_path / "empty", tmp_path / "link")
    files_lib.publish_folder(str(tmp_path / "link"), fill)
    assert os.path.islink(tmp_path / "link") and os.listdir(tmp_path / "empty") == ["a.txt"]
    assert os.stat(tmp_path / "empty").st_mode & 0o777 == 0o750
    with pytest.raises(FileExistsError):
        files_lib.publish_folder(str(tmp_path / "empty"), fill)
    assert sorted(os.listdir(tmp_path)) == ["empty", "link", "new"]  # no temporary left
    # Stopped midway into an existing empty folder: it stays empty (half an export was left
    # in it, and the rerun refused it as not empty: a probe), and the rerun fills it; what a
    # writer killed (-9) left, its claim and half-filled folder, is cleared by the next.
    (tmp_path / "e2").mkdir(mode=0o751)

    def stopped(folder):
        fill(folder)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files_lib.publish_folder(str(tmp_path / "e2"), stopped)
    assert os.listdir(tmp_path / "e2") == []
    (tmp_path / "e2" / files_lib.CLAIM).write_text("")  # (its writer's lock died with it)
    (tmp_path / "e2" / files_lib.FILLING).mkdir()
    (tmp_path / "e2" / files_lib.FILLING / "half.bin").write_text("")
    files_lib.publish_folder(str(tmp_path / "e2"), fill)
    assert os.listdir(tmp_path / "e2") == ["a.txt"]
    assert os.stat(tmp_path / "e2").st_mode & 0o777 == 0o751
    assert sorted(os.listdir(tmp_path)) == ["e2", "empty", "link", "new"]
    # A live claim, another writer's or another thread's (flock: per open file), is refused;
    # so is one whose file another writer removed and made anew while this one locked it.
    (tmp_path / "e4").mkdir()
    held = os.open(tmp_path / "e4" / files_lib.CLAIM, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    with pytest.raises(FileExistsError, match="claimed by another process"):
        files_lib.publish_folder(str(tmp_path / "e4"), fill)
    os.close(held)
    flock, made = fcntl.flock, []

    def replaced_meanwhile(fd, op):
        if not made:  # the first claim's file removed and made again, held by another
            os.remove(tmp_path / "e4" / files_lib.CLAIM)
            made.append(os.open(tmp_path / "e4" / files_lib.CLAIM, os.O_CREAT | os.O_WRONLY))
            flock(made[0], fcntl.LOCK_EX)
        return flock(fd, op)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(FileExistsError, match="claimed"):
        mp.setattr(files_lib.fcntl, "flock", replaced_meanwhile)
        files_lib.publish_folder(str(tmp_path / "e4"), fill)
    os.close(made[0])
    assert os.listdir(tmp_path / "e4") == [files_lib.CLAIM]  # (the other's, kept)
    # Stopped while the filled entries move up: those moved go too (half stayed: a review).
    (tmp_path / "e5").mkdir()
    two = lambda folder: [(pathlib.Path(folder) / n).write_text(n) for n in ("a", "b")]  # noqa: E731
    rename, calls = files_lib.os.rename, []

    def stop_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        rename(src, dst)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(files_lib.os, "rename", stop_second)
        files_lib.publish_folder(str(tmp_path / "e5"), two)
    assert os.listdir(tmp_path / "e5") == []
    # The claim removed at the end is this writer's own only (here another's replaced it).
    (tmp_path / "e6").mkdir()
    others = []

    def replace_claim(folder):
        fill(folder)
        os.remove(tmp_path / "e6" / files_lib.CLAIM)
        others.append(os.open(tmp_path / "e6" / files_lib.CLAIM, os.O_CREAT | os.O_RDONLY))
        fcntl.flock(others[0], fcntl.LOCK_EX)

    files_lib.publish_folder(str(tmp_path / "e6"), replace_claim)
    assert sorted(os.listdir(tmp_path / "e6")) == [files_lib.CLAIM, "a.txt"]
    os.close(others[0])
    # An export's functions move up last (a folder holding them is read as an export), and a
    # name the user took meanwhile is not replaced.
    (tmp_path / "e7").mkdir()
    order: list[str] = []

    def export_like(folder):
        for n in ("x.jax_export", "z.txt"):
            (pathlib.Path(folder) / n).write_text(n)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(files_lib.os, "rename", lambda a, b: (order.append(b), rename(a, b)))
        files_lib.publish_folder(str(tmp_path / "e7"), export_like, last=("x.jax_export",))
    assert [os.path.basename(p) for p in order] == ["z.txt", "x.jax_export"]
    (tmp_path / "e8").mkdir()

    def taken_meanwhile(folder):
        export_like(folder)
        (tmp_path / "e8" / "x.jax_export").write_text("the user's")

    with pytest.raises(FileExistsError):
        files_lib.publish_folder(str(tmp_path / "e8"), taken_meanwhile)
    assert sorted(os.listdir(tmp_path / "e8")) == ["x.jax_export"]
    assert (tmp_path / "e8" / "x.jax_export").read_text() == "the user's"
    # A new folder under a shared group's setgid folder keeps the bit (its chmod cleared it).
    (tmp_path / "shared").mkdir()
    os.chmod(tmp_path / "shared", 0o2775)
    files_lib.publish_folder(str(tmp_path / "shared" / "out"), fill)
    assert os.stat(tmp_path / "shared" / "out").st_mode & stat.S_ISGID
    # The folder is kept, not replaced (a mount point cannot be, and a shell or notebook
    # inside it saw the old, empty one): filled while it is the current directory.
    (tmp_path / "e3").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path / "e3")
        files_lib.publish_folder(".", fill)
        assert os.listdir(".") == ["a.txt"]


@pytest.mark.parametrize("name", ["report.md", "results.csv", "runs.csv", ".png"])
def test_a_report_killed_while_writing_leaves_the_last_one_whole(tmp_path, monkeypatch, name):
    """Each of the report's files is the previous one or the new one, never half of one: here
    the process is stopped (KeyboardInterrupt) just before a file would replace the last."""
    runs = [
        ({"lr": lr, "train.seed": s}, "done", {"eval/loss": lr + s})
        for lr in (1, 2)
        for s in (0, 1)
    ]
    _fake_sweep(tmp_path, runs)
    report.write_report(str(tmp_path), ["eval/loss"])
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.endswith(name)]
    before = {p: p.read_bytes() for p in files}
    assert files and all(before.values())
    (tmp_path / "runs" / "run0" / "summary.json").write_text('{"status": "done", "eval/loss": 7}')
    replace = files_lib.os.replace

    def stopped(src, dst):
        if str(dst).endswith(name):
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(files_lib.os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(str(tmp_path), ["eval/loss"])
    assert {p: p.read_bytes() for p in files} == before
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary file left behind


def _fake_sweep(
    root, runs: list[tuple[dict, str | None, dict]], config: dict | None = None, evals=None
):
    """A sweep directory without training: (overrides, summary status, "failed" or None,
    numbers) per run, and each run's eval.json (`evals`, if given). sweep.json says every run
    is pending, as a killed sweep leaves it."""
    entries = []
    for i, (overrides, status, values) in enumerate(runs):
        name = f"run{i}"
        os.makedirs(root / "runs" / name)
        if evals is not None:
            (root / "runs" / name / "eval.json").write_text(json.dumps(evals[i]))
        if status == "failed":
            (root / "runs" / name / "failed.json").write_text(json.dumps({"error": "bad"}))
        elif status is not None:
            summary = {"status": status, **values}
            (root / "runs" / name / "summary.json").write_text(json.dumps(summary))
        if status is not None and config is None:  # a run's config.json, no settings in it
            (root / "runs" / name / "config.json").write_text("{}")
        elif config is not None:  # the saved config, before this run's overrides
            saved = json.loads(json.dumps(config))
            for key, v in overrides.items():
                section, field = key.split(".")
                saved.setdefault(section, {})[field] = v
            (root / "runs" / name / "config.json").write_text(json.dumps(saved))
        entries.append(
            {"index": i, "name": name, "overrides": overrides, "workdir": f"runs/{name}"}
        )
        entries[-1]["status"] = "pending"
    (root / "sweep.json").write_text(json.dumps({"num_runs": len(runs), "runs": entries}))


def test_runs_trained_to_the_end_but_not_written_are_said_to_be_evaluated(tmp_path, caplog):
    """A sweep killed after a group's training, before its runs were written: the relaunch
    said they were "to train" and "training 2 run(s) together", though it only restores,
    evaluates and writes them (a probe). Now said so; their numbers are those of an
    uninterrupted sweep."""
    base = _cfg(train__checkpoint_every=1)
    overrides = [{"train.seed": s} for s in range(3)]
    work = tmp_path / "s"
    sweep.run_sweep(base, overrides, str(work))
    whole = _summaries(work)
    for name in ("train.seed=0", "train.seed=1"):  # as a kill after their last checkpoint
        for f in ("summary.json", "eval.json"):
            (work / "runs" / name / f).unlink(missing_ok=True)
    caplog.set_level("INFO")
    assert sweep.run_sweep(base, overrides, str(work))["counts"]["done"] == 3
    assert "shard 0/1 takes 3 (1 of them finished: 0 to train, 2 to evaluate)" in caplog.text
    assert "evaluating (trained to the end before) 2 run(s) together: train.seed=0, train.s" in (
        caplog.text
    )
    assert _summaries(work) == whole


def test_a_finished_run_without_its_eval_json_is_named(tmp_path, caplog):
    """One run's eval.json deleted: its cell's n says so, and a warning names the run and the
    command that writes it anew; runs that all lack one (eval.at_end off) are no news."""
    runs = [({"lr": 0.1, "train.seed": s}, "done", {"eval/mse": 0.1}) for s in range(3)]
    _fake_sweep(tmp_path, runs, evals=[{"recon/mse": 0.1}] * 3)
    (tmp_path / "runs" / "run1" / "eval.json").unlink()
    caplog.set_level("WARNING")
    report.write_report(str(tmp_path), ["recon/mse"])
    assert "1 finished run(s) have no eval.json" in caplog.text
    assert "runs/run1; `ae-jax evaluate --workdir=RUN` writes it" in caplog.text
    # ... and so does its cell (a probe: "(n = 1)" under 2 seeds, with no reason given)
    assert "| 0.1000 ± 0 (n = 2, 1 not evaluated) |" in (tmp_path / "report.md").read_text()
    caplog.clear()
    for i in (0, 2):
        (tmp_path / "runs" / f"run{i}" / "eval.json").unlink()
    report.write_report(str(tmp_path), ["eval/mse"])
    assert "have no eval.json" not in caplog.text
    assert "not evaluated" not in (tmp_path / "report.md").read_text()  # summary.json's own


def test_a_report_on_a_sweeps_runs_folder_is_refused_with_the_sweeps_command(tmp_path):
    """`ae-jax report --workdir=SWEEP/runs` wrote report.md, results.csv and figures/ among
    the runs; it now names the sweep's own directory, and writes nothing. A folder of runs
    that belongs to no sweep is still reported where it is."""
    runs = [({"train.seed": s}, "done", {"eval/mse": 0.1}) for s in range(2)]
    _fake_sweep(tmp_path / "sweep", runs, config={"train": {"seed": 0}})
    before = sorted(os.listdir(tmp_path / "sweep" / "runs"))
    with pytest.raises(UserError, match=r"runs/ folder of the sweep .*report --workdir=.*sweep"):
        report.write_report(str(tmp_path / "sweep" / "runs"), ["eval/mse"])
    assert sorted(os.listdir(tmp_path / "sweep" / "runs")) == before
    report.write_report(str(tmp_path / "sweep"), ["eval/mse"])
    assert (tmp_path / "sweep" / "results.csv").exists()
    shutil.copytree(tmp_path / "sweep" / "runs", tmp_path / "mine" / "runs")  # no sweep.json
    report.write_report(str(tmp_path / "mine" / "runs"), ["eval/mse"])
    assert (tmp_path / "mine" / "runs" / "results.csv").exists()


def test_an_eval_json_of_an_earlier_epoch_than_the_runs_end_is_left_out(tmp_path, caplog):
    """A run extended by a version that left its old end's eval.json in place (the lifecycle
    probe): its row showed that epoch and its evaluation beside the new end's eval/ numbers.
    Its evaluation numbers are left out and named; a diverged run's eval.json, of the
    checkpoint after its last epoch, is no such case."""
    runs = [({"lr": 0.1, "train.seed": s}, "done", {"epoch": 5, "eval/mse": 0.1}) for s in range(3)]
    runs.append(({"lr": 0.1, "train.seed": 3}, "diverged", {"epoch": 0, "eval/mse": 0.2}))
    # run 1: an older version's own evaluation of the best checkpoint, epoch 4: no such case
    evals = [{"epoch": 5, "recon/mse": 0.1}, {"epoch": 4, "which": "best", "recon/mse": 0.1}]
    evals.append({"epoch": 3, "which": "latest", "recon/mse": 0.7})
    _fake_sweep(tmp_path, runs, evals=evals + [{"epoch": 1, "recon/mse": 0.9}])
    caplog.set_level("WARNING")
    out = report.write_report(str(tmp_path), ["recon/mse", "eval/mse"])
    (row,) = out["rows"]
    assert (row["recon/mse n"], row["recon/mse mean"]) == (2, pytest.approx(0.1))
    assert row["eval/mse n"] == 3
    assert "1 finished run(s) have an eval.json of an earlier epoch than their end" in caplog.text
    assert "runs/run2; move each one's eval.json" in caplog.text


def test_a_read_only_sweep_directory_is_refused_in_a_sentence(tmp_path, monkeypatch):
    """report and sweep on a read-only mount raised OSError tracebacks from their first write
    (the lifecycle probe). As root here, permissions cannot make a directory unwritable: a
    read-only file system is what os.access then reports."""
    runs = [({"lr": 0.1, "train.seed": s}, "done", {"eval/mse": 0.1}) for s in range(2)]
    _fake_sweep(tmp_path / "s", runs)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and mode != os.W_OK)
    with pytest.raises(UserError, match=r"sweep directory \(where the report goes\) .* is not wr"):
        report.write_report(str(tmp_path / "s"), ["eval/mse"])
    assert not (tmp_path / "s" / "runs.csv").exists()
    with pytest.raises(UserError, match=r"sweep directory '.*' is not writable \(a read-only"):
        sweep.run_sweep(_cfg(), [{"train.seed": s} for s in range(2)], str(tmp_path / "s"))


def test_the_default_report_shows_a_vaes_bound_under_the_name_it_has(tmp_path):
    """A Bernoulli VAE on grey pixels writes vae/bce_iwae_bound, not vae/iwae: the default
    metrics left its headline bound out without a word (the tracker probe)."""
    runs = [({"loss.beta": b, "train.seed": 0}, "done", {"eval/loss": b}) for b in (1.0, 2.0)]
    _fake_sweep(tmp_path, runs, evals=[{"vae/bce_iwae_bound": -20.0 - b} for b in (1, 2)])
    out = report.write_report(str(tmp_path))
    assert out["metrics"][:2] == ["eval/loss", "vae/bce_iwae_bound"]
    assert "vae/bce_iwae_bound" in (tmp_path / "report.md").read_text()


def test_equal_values_have_a_standard_deviation_of_zero(tmp_path):
    """Three seeds' identical PCA baseline: sd 0, not np.std's 8.5e-18 of float residue."""
    runs = [({"lr": 0.1, "train.seed": s}, "done", {"pca/mse": 0.1}) for s in range(3)]
    _fake_sweep(tmp_path, runs)
    row = report.write_report(str(tmp_path), ["pca/mse"])["rows"][0]
    assert row["pca/mse std"] == 0.0 and row["pca/mse mean"] == pytest.approx(0.1)


def test_report_counts_what_it_averages(tmp_path):
    """The report reads finished runs from their directories (not a stale sweep.json), keeps
    diverged runs out of the means, says the n of a cell with fewer finite values and how many
    were not finite, gives no sd for one value, and shows a metric asked for even if 0."""
    inf = float("inf")
    _fake_sweep(
        tmp_path,
        [
            ({"lr": 0.1, "train.seed": 0}, "done", {"eval/loss": 1.0, "eval/kl": 0.0}),
            ({"lr": 0.1, "train.seed": 1}, "done", {"eval/loss": 3.0, "eval/kl": 0.0}),
            ({"lr": 0.1, "train.seed": 2}, None, {}),  # killed before it finished
            ({"lr": 2.0, "train.seed": 0}, "done", {"eval/loss": inf, "eval/kl": 0.0}),
            ({"lr": 2.0, "train.seed": 1}, "done", {"eval/loss": 5.0, "eval/kl": 0.0}),
            ({"lr": 2.0, "train.seed": 2}, "diverged", {"eval/loss": 1e30, "eval/kl": 0.0}),
            ({"lr": 2.0, "train.seed": 3}, "failed", {}),
        ],
    )
    out = report.write_report(str(tmp_path), ["eval/loss", "eval/kl"])
    rows = {r["lr"]: r for r in out["rows"]}
    assert (rows[0.1]["seeds"], rows[0.1]["diverged"]) == (2, 0)
    assert rows[0.1]["eval/loss mean"] == 2.0 and rows[0.1]["eval/loss std"] == pytest.approx(
        2**0.5
    )
    assert (rows[2.0]["seeds"], rows[2.0]["diverged"]) == (3, 1)
    assert (rows[2.0]["eval/loss mean"], rows[2.0]["eval/loss n"]) == (5.0, 1)
    assert (
        rows[2.0]["eval/loss not finite"] == 1
        and rows[2.0]["eval/loss std"] != rows[2.0]["eval/loss std"]
    )  # NaN: no sd from one value
    assert out["metrics"] == ["eval/loss", "eval/kl"]  # asked for: shown although all 0
    md = (tmp_path / "report.md").read_text()
    assert "| lr | seeds | diverged | eval/loss | eval/kl |" in md
    # A setting with runs failed or unfinished says so in its row ("3 of 4"), not only in the
    # header: a 4-seed mean read as if 4 seeds were the design (a probe).
    assert "| 2.0 | 3 of 4 | 1 | 5 (n = 1, 1 not finite) | 0 ± 0 (n = 2) |" in md
    assert "| 0.1 | 2 of 3 | 0 | 2 ± 1.4 | 0 ± 0 |" in md
    assert "5 finished runs of the 7 the sweep lists (1 failed, 1 unfinished), 2 settings" in md
    # ... and names the failed ones, with their error: they were counted, never named (a
    # setting whose every seed failed vanished from the report, a probe).
    assert "Runs that failed (in no row; `ae-jax sweep` retries them):\n\n- run6: bad\n" in md


def test_a_settings_missing_runs_are_counted_whatever_its_reported_overrides(tmp_path):
    """A setting's row said "1" for "1 of 2" where its finished runs' reported overrides were
    rewritten (a probe): a field they leave unused dropped (optim.end_factor under a constant
    schedule), or a field no entry sets added (train.epochs after a stopped extension). The
    sweep's listed runs are matched by the overrides they were listed with."""
    cfg = {"optim": {"schedule": "cosine", "end_factor": 0.0}, "train": {"epochs": 6, "seed": 0}}
    _fake_sweep(
        tmp_path / "unused",
        [
            (
                {"optim.schedule": s, "optim.end_factor": 0.5, "train.seed": i},
                st,
                {"eval/loss": 1.0},
            )
            for s in ("cosine", "constant")
            for i, st in ((0, "done"), (1, None))
        ],
        config=cfg,
    )
    report.write_report(str(tmp_path / "unused"), ["eval/loss"])
    md = (tmp_path / "unused" / "report.md").read_text()
    assert "| '' | constant | 1 of 2 | 1 |" in md and "| 0.5 | cosine | 1 of 2 | 1 |" in md
    runs = [
        ({"optim.learning_rate": lr, "train.seed": i}, "done", {"eval/loss": 1.0})
        for lr in (0.001, 0.01)
        for i in (0, 1)
    ]
    _fake_sweep(tmp_path / "hidden", runs[:3] + [(runs[3][0], None, {})], config=cfg)
    for name in ("run2", "run3"):  # extended to 8 epochs; run3 stopped before it finished
        saved = tmp_path / "hidden" / "runs" / name / "config.json"
        saved.write_text(saved.read_text().replace('"epochs": 6', '"epochs": 8'))
    report.write_report(str(tmp_path / "hidden"), ["eval/loss"])
    md = (tmp_path / "hidden" / "report.md").read_text()
    assert "| 0.01 | 8 | 1 of 2 | 1 |" in md and "| 0.001 | 6 | 2 | 1 ± 0 |" in md, md
    # Every run finished, one entry's two split by train.epochs: each "1", none "1 of 2" (a
    # review: both settings claimed both runs, rung and said "failed or unfinished").
    _fake_sweep(tmp_path / "split", runs, config=cfg)
    saved = tmp_path / "split" / "runs" / "run3" / "config.json"
    saved.write_text(saved.read_text().replace('"epochs": 6', '"epochs": 8'))
    report.write_report(str(tmp_path / "split"), ["eval/loss"])
    md = (tmp_path / "split" / "report.md").read_text()
    assert "| 0.01 | 6 | 1 | 1 |" in md and "| 0.01 | 8 | 1 | 1 |" in md, md


def test_an_unfinished_run_counts_under_the_setting_its_config_trains(tmp_path):
    """A one-at-a-time design: the base config (l1 1e-4) as an entry of its own, {seed: 2},
    beside l1 in {1e-4, 1e-3} x seeds 0-1. With the base entry and a seed of each l1 not run,
    the 1e-4 row said "1 of 2" and the report "No finished run ...: the base config", which is
    that row's setting (a probe): an unfinished run is counted by the config it trains, its
    own config.json or the sweep's base config with its overrides (0 of a float field: 0.0)."""
    base = {"loss": {"l1_weight": 1e-4}, "train": {"epochs": 3, "seed": 0}}
    runs = [
        ({"loss.l1_weight": w, "train.seed": i}, "done" if i else None, {"eval/loss": 1.0})
        for w in (1e-4, 0)
        for i in (0, 1)
    ] + [({"train.seed": 2}, None, {})]
    _fake_sweep(tmp_path, runs, config=base)
    for i in (0, 2, 4):  # never launched: no config.json of their own
        (tmp_path / "runs" / f"run{i}" / "config.json").unlink()
    saved = tmp_path / "runs" / "run3" / "config.json"  # as a run saves it: a float field's
    saved.write_text(saved.read_text().replace('"l1_weight": 0}', '"l1_weight": 0.0}'))
    (tmp_path / "sweep_config.json").write_text(json.dumps(base))
    report.write_report(str(tmp_path), ["eval/loss"])
    md = (tmp_path / "report.md").read_text()
    assert "| 0.0001 | 1 of 3 | 1 |" in md and "| 0.0 | 1 of 2 | 1 |" in md, md
    assert "No finished run" not in md
    # An entry of a setting no finished run has is still said, with its runs.
    (tmp_path / "runs" / "run1" / "summary.json").unlink()
    report.write_report(str(tmp_path), ["eval/loss"])
    md = (tmp_path / "report.md").read_text()
    said = "No finished run, so no row or point: loss.l1_weight=0.0001 (2 failed or unfinished);"
    assert f"{said} the base config (1 failed or unfinished)." in md, md


def test_entries_that_differ_in_a_field_that_moves_numbers_are_two_settings(tmp_path):
    """train.eval_batch_size changes no training, but the validation numbers (a VAE's sampled
    terms, batch statistics such as the KL sparsity: 3.2133 at 8 against 3.2074 at 4096 in an
    audit): a zip of it with distinct seeds was reported as one setting of 6 seeds. Now two."""
    runs = [
        ({"train.eval_batch_size": b, "train.seed": s}, "done", {"eval/loss": b / 1000 + s})
        for b, seeds in ((8, (0, 1, 2)), (4096, (3, 4, 5)))
        for s in seeds
    ]
    _fake_sweep(tmp_path, runs, config={"train": {"eval_batch_size": 256, "seed": 0}})
    out = report.write_report(str(tmp_path), ["eval/loss"])
    rows = {r["train.eval_batch_size"]: r for r in out["rows"]}
    assert out["params"] == ["train.eval_batch_size"] and sorted(rows) == [8, 4096]
    assert [rows[b]["seeds"] for b in (8, 4096)] == [3, 3]
    assert rows[8]["eval/loss mean"] == pytest.approx(1.008)
    # A field that moves no number (how often to log) stays no parameter.
    runs = [
        ({"train.log_every": k, "train.seed": s}, "done", {"eval/loss": 1.0})
        for k, s in ((1, 0), (2, 1))
    ]
    _fake_sweep(tmp_path / "log", runs, config={"train": {"log_every": 1, "seed": 0}})
    out = report.write_report(str(tmp_path / "log"), ["eval/loss"])
    assert out["params"] == [] and [r["seeds"] for r in out["rows"]] == [2]


def test_a_reports_counts_after_relaunches_copies_and_damage(tmp_path):
    """What a review of the counting by config found: (a) eval.iw_batch_rows, which a relaunch
    may lower to fit the evaluation in memory, split every setting once finished runs differed
    in it; (b) an unfinished run whose config leaves a field unused that the finished runs
    differ in (optim.end_factor under a constant schedule) was no row's ("No finished run");
    (c) a damaged sweep_config.json refused every report; (d) a run counted once as a copy of
    another was called unfinished."""
    cfg = {
        "optim": {"schedule": "cosine", "end_factor": 0.0},
        "train": {"epochs": 6, "seed": 0},
        "eval": {"iw_batch_rows": 64},
    }
    runs = [
        (
            {"optim.schedule": k, "train.seed": i},
            None if (k, i) == ("constant", 1) else "done",
            {"eval/loss": 1.0},
        )
        for k in ("cosine", "constant")
        for i in (0, 1)
    ]
    _fake_sweep(tmp_path / "b", runs, config=cfg)
    saved = tmp_path / "b" / "runs" / "run1" / "config.json"
    saved.write_text(saved.read_text().replace('"end_factor": 0.0', '"end_factor": 0.5'))
    for run in ("run0", "run2"):  # (a): relaunched with a smaller eval.iw_batch_rows
        saved = tmp_path / "b" / "runs" / run / "config.json"
        saved.write_text(saved.read_text().replace('"iw_batch_rows": 64', '"iw_batch_rows": 8'))
    out = report.write_report(str(tmp_path / "b"), ["eval/loss"])
    md = (tmp_path / "b" / "report.md").read_text()
    assert out["params"] == ["optim.end_factor", "optim.schedule"], out["params"]
    assert "| constant | 1 of 2 |" in md and "No finished run" not in md, md
    # (c) every run finished: the base config is not needed, damaged or not
    (tmp_path / "b" / "sweep_config.json").write_text("{not json")
    (tmp_path / "b" / "runs" / "run3" / "summary.json").write_text(
        json.dumps({"status": "done", "eval/loss": 1.0})
    )
    report.write_report(str(tmp_path / "b"), ["eval/loss"])
    # (d) two entries that train one config (end_factor unused under constant): one is counted
    copies = [
        ({"optim.schedule": "constant", "optim.end_factor": f}, "done", {"eval/loss": 1.0})
        for f in (0.5, 0.7)
    ]
    _fake_sweep(tmp_path / "d", copies, config=cfg)
    report.write_report(str(tmp_path / "d"), ["eval/loss"])
    md = (tmp_path / "d" / "report.md").read_text()
    assert "1 finished runs, 1 setting" in md and "unfinished" not in md, md


def test_entries_that_differ_only_in_a_field_that_moves_numbers_are_no_copies():
    """A sweep of train.eval_batch_size x seeds was refused as training one config twice (its
    report would count seeds twice); its report now has a setting per batch size. Fields that
    move no number (train.figures) still make copies."""
    base = _cfg()
    configs = []
    for field, values in (("eval_batch_size", (8, 4096)), ("figures", (False, True))):
        for v in values:
            c = base.copy_and_resolve_references()
            setattr(c.train, field, v)
            configs.append(c)
    assert overrides_lib.first_same(configs[:2]) is None
    assert overrides_lib.first_same(configs[2:]) == (0, 1)


DONE = '{"status": "done", "epoch": 2, "step": 8}'


def test_sweep_json_lists_the_newest_launchs_runs_whatever_launch_writes_last(tmp_path):
    """A launch of an edited get_sweep() (a run added) while an older launch still ran: the
    older one, ending last, wrote its own list, and the added run, finished, vanished from
    sweep.json and the report (a probe). The newest launch's list stands; the older launch's
    writes keep its runs' statuses in it."""
    old = sweep.expand([{"train.seed": s} for s in range(2)], str(tmp_path))
    new = sweep.expand([{"train.seed": s} for s in range(3)], str(tmp_path))
    for r in new:
        os.makedirs(r.workdir)
    (tmp_path / "runs" / "train.seed=2" / "summary.json").write_text(DONE)
    status_lib.write_status(str(tmp_path), old, launched=100.0)  # the older launch, at its start
    mine = status_lib.write_status(str(tmp_path), new, launched=200.0)  # the edited one's
    assert mine["counts"]["done"] == 1 and _status(tmp_path)["num_runs"] == 3
    (tmp_path / "runs" / "train.seed=0" / "summary.json").write_text(DONE)
    mine = status_lib.write_status(str(tmp_path), old, launched=100.0)  # the older one ends
    written = _status(tmp_path)
    assert [e["name"] for e in written["runs"]] == [r.name for r in new]
    assert written["counts"]["done"] == 2 and written["launched"] == 200.0
    assert mine["num_runs"] == 2 and mine["counts"] == {
        "done": 1, "diverged": 0, "failed": 0, "running": 0, "pending": 1
    }  # fmt: skip
    status_lib.write_status(str(tmp_path), old, launched=300.0)  # a later launch of the old list
    assert _status(tmp_path)["num_runs"] == 2


def _held(path) -> bool:
    """Whether another holder has `path`'s `waiting` lock: a try of our own that fails."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_sweep_json_is_read_and_written_under_the_sweeps_lock(tmp_path, monkeypatch):
    """Shards rewrote sweep.json unlocked: one's read of a run's folder before another shard
    finished the run, written after that shard's, would keep the run "running" (a
    concurrency probe, from the code). The lock is held from the read to the write."""
    runs = sweep.expand([{"train.seed": s} for s in range(2)], str(tmp_path))
    lock, seen = tmp_path / workdir_lib.SWEEP_LOCK, []
    real_status, real_write = status_lib.run_status, workdir_lib.write_json
    monkeypatch.setattr(
        status_lib, "run_status", lambda *a: seen.append(_held(lock)) or real_status(*a)
    )
    monkeypatch.setattr(
        workdir_lib, "write_json", lambda *a: seen.append(_held(lock)) or real_write(*a)
    )
    status_lib.write_status(str(tmp_path), runs, launched=100.0)
    assert seen == [True, True, True] and not _held(lock)  # two reads, one write; then free


def test_a_file_system_without_flock_runs_the_block_unlocked(tmp_path, monkeypatch):
    """On NFS a flock is a POSIX lock, which a folder opened to read cannot take (EBADF): a
    report there would have failed; it runs unlocked, as before the lock. Another error is
    raised."""

    def refuse(fd, op, code=errno.EBADF):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(locks.fcntl, "flock", refuse)
    ran = []
    with locks.waiting(str(tmp_path)):
        ran.append(1)
    assert ran == [1]
    monkeypatch.setattr(locks.fcntl, "flock", lambda fd, op: refuse(fd, op, errno.EIO))
    with pytest.raises(OSError), locks.waiting(str(tmp_path)):
        ran.append(2)
    assert ran == [1]


def test_a_lock_file_another_user_made_is_opened_to_read(tmp_path, monkeypatch):
    """.sweep.lock made by another user (0644 in a shared folder) could not be opened to
    write, and a shard's first sweep.json write raised PermissionError (a review); a flock
    needs only a file opened to read."""
    path = tmp_path / ".sweep.lock"
    path.write_text("")
    real_open, modes = os.open, []

    def no_write(p, flags, *a):
        modes.append(flags & (os.O_RDWR | os.O_WRONLY))
        if flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(13, "Permission denied", p)
        return real_open(p, flags, *a)

    monkeypatch.setattr(locks.os, "open", no_write)
    with locks.waiting(str(path)):
        monkeypatch.undo()
        assert _held(path)
    assert modes == [os.O_RDWR, 0] and not _held(path)


def test_a_launchs_config_check_holds_a_flock_and_a_wait_is_said(tmp_path, monkeypatch):
    """The sweep's config check locked .sweep_config.lock with lockf, which needs the file
    open to write: one another user made (0644 in a shared folder) stopped every shard with
    'permission denied' (a concurrency probe). It is a `waiting` lock, read where it must be;
    and a wait for a held lock is said (a stuck holder looked like a silent hang)."""
    base, lock = seed_sparse.get_config(), tmp_path / ".sweep_config.lock"
    seen, real = [], shards._refuse_other_base
    monkeypatch.setattr(
        shards, "_refuse_other_base", lambda *a: seen.append(_held(lock)) or real(*a)
    )
    shards.check_same_base(str(tmp_path), base, [{"train.seed": 0}])
    assert seen == [True] and not _held(lock)
    holder, said = os.open(lock, os.O_RDONLY), threading.Event()
    fcntl.flock(holder, fcntl.LOCK_EX)  # another holder; it lets go when the wait is said

    def say(*a):
        seen.append(a)
        os.close(holder)
        said.set()

    monkeypatch.setattr(locks.logging, "info", say)
    check = threading.Thread(target=shards.check_same_base, args=(str(tmp_path), base, [{}]))
    check.start()
    if not said.wait(60):  # never said (the bound only matters then): let the check go
        os.close(holder)
    check.join()
    assert seen[1] == ("waiting for %s, held by another process ...", str(lock)) and seen[2]


def test_a_report_holds_its_folder_while_it_reads_and_writes(tmp_path, monkeypatch):
    """Two reports of one folder at once mixed their tables (runs.csv of 3 runs, report.md of
    2), and the later one's report_files.json lacked the other's figure, which every report
    after refused to replace as the user's (a concurrency probe): a report locks the folder."""
    runs = [({"loss.beta": b}, "done", {"eval/mse": b}) for b in (1.0, 4.0)]
    _fake_sweep(tmp_path, runs)
    seen, real = [], report._write_report
    monkeypatch.setattr(
        report, "_write_report", lambda *a: seen.append(_held(tmp_path)) or real(*a)
    )
    report.write_report(str(tmp_path))
    assert seen == [True] and not _held(tmp_path)
    assert not (tmp_path / ".report.lock").exists()  # nothing written to lock it


def test_report_names_run_directories_the_sweep_no_longer_lists(tmp_path, caplog):
    """An entry edited since (1e-3 -> 1e-2) leaves its old runs' directories behind: the report
    leaves them out, and says so."""
    runs = [({"lr": 0.1, "train.seed": s}, "done", {"eval/loss": 1.0}) for s in range(2)]
    _fake_sweep(tmp_path, runs)
    for old in ("lr=0.001,train.seed=10", "lr=0.001,train.seed=2"):  # (natural order: 2, 10)
        os.makedirs(tmp_path / "runs" / old)
        (tmp_path / "runs" / old / "summary.json").write_text('{"status": "done"}')
    # A report on DIR/runs as a folder of runs (its refusal's advice) wrote these: no runs.
    os.makedirs(tmp_path / "runs" / "figures")
    (tmp_path / "runs" / "figures" / "metrics_vs_lr.png").write_bytes(b"png")
    caplog.set_level("WARNING")
    out = report.write_report(str(tmp_path), ["eval/loss"])
    assert out["rows"][0]["seeds"] == 2
    (warning,) = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert warning == (
        f"2 run directories in {tmp_path / 'runs'} are not in the sweep's list (sweep.json; "
        "entries since changed or removed?) and are left out: lr=0.001,train.seed=2, "
        "lr=0.001,train.seed=10"
    )
    # report.md says so too (the log alone said it: "2 finished runs" hid 2 more, a probe).
    assert (
        "Left out: 2 run directories in runs/ that sweep.json does not list (runs of entries "
        "since changed or removed from the sweep): lr=0.001,train.seed=2, lr=0.001,train.seed=10."
    ) in (tmp_path / "report.md").read_text().splitlines()


@pytest.mark.parametrize("chosen_by", ["--metrics", "REPORT_METRICS"])
def test_timing_csv_has_the_wall_times_whatever_the_metrics(tmp_path, chosen_by):
    """timing.csv holds wall_s and compile_s per setting even when the metrics asked for (by
    --metrics or the config's REPORT_METRICS) name none; results.csv holds no timing."""
    _fake_sweep(
        tmp_path,
        [
            (
                {"lr": 0.1, "train.seed": 0},
                "done",
                {"eval/loss": 1.0, "wall_s": 2.0, "compile_s": 1.0},
            ),
            (
                {"lr": 0.1, "train.seed": 1},
                "done",
                {"eval/loss": 3.0, "wall_s": 4.0, "compile_s": 1.0},
            ),
        ],
    )
    asked = None
    if chosen_by == "--metrics":
        asked = ["eval/loss"]
    else:
        (tmp_path / "report_metrics.json").write_text(json.dumps({"metrics": ["eval/loss"]}))
    report.write_report(str(tmp_path), asked)
    with open(tmp_path / "timing.csv") as f:
        (row,) = csv.DictReader(f)
    assert (row["wall_s mean"], row["wall_s n"], row["compile_s mean"]) == ("3.0", "2", "1.0")
    assert float(row["wall_s std"]) == pytest.approx(2**0.5)
    with open(tmp_path / "results.csv") as f:
        header = next(csv.reader(f))
    assert header == ["lr", "seeds", "diverged", "eval/loss mean", "eval/loss std", "eval/loss n"]


def test_report_counts_a_null_of_eval_json_as_not_finite(tmp_path):
    """eval.json is strict JSON: a NaN bound is written as null. It is one of the setting's
    values that was not finite, not a run that has no such metric."""
    done = ({"lr": 0.1, "train.seed": 0}, "done", {}), ({"lr": 0.1, "train.seed": 1}, "done", {})
    evals = [{"vae/iwae": -10.0, "pca/note": "text"}, {"vae/iwae": None, "pca/note": "text"}]
    _fake_sweep(
        tmp_path, list(done) + [({"lr": 0.1, "train.seed": 2}, "done", {})], evals=evals + [{}]
    )  # the third run's evaluation has no such key
    row = report.write_report(str(tmp_path), ["vae/iwae"])["rows"][0]
    assert (row["seeds"], row["vae/iwae n"], row["vae/iwae not finite"]) == (3, 1, 1)
    assert row["vae/iwae mean"] == -10.0
    assert "-10 (n = 1, 1 not finite)" in (tmp_path / "report.md").read_text()


def test_report_says_text_where_the_other_runs_have_a_number(tmp_path, caplog):
    """An eval.json edited to hold "0.5" (text) for a metric was left out of its mean unsaid:
    "0.008772 (n = 1)" (a probe). It is said, naming the file and the key; a text key of
    every run (a note) is not."""
    done = ({"lr": 0.1, "train.seed": 0}, "done", {}), ({"lr": 0.1, "train.seed": 1}, "done", {})
    evals = [{"code/x": 0.25, "pca/note": "text"}, {"code/x": "0.5", "pca/note": "text"}]
    _fake_sweep(tmp_path, list(done), evals=evals)
    caplog.set_level("WARNING")
    row = report.write_report(str(tmp_path), ["code/x"])["rows"][0]
    assert (row["code/x n"], row["code/x mean"]) == (1, 0.25)
    odd = [r.getMessage() for r in caplog.records if "text where the other runs" in r.getMessage()]
    assert len(odd) == 1 and "eval.json holds 'code/x' = '0.5', text where the other" in odd[0]


def test_raising_epochs_on_a_finished_sweep_continues_its_runs(tmp_path):
    """check_unchanged lets a larger train.epochs through as an extension; the runs must then
    train on (as `ae-jax train` does), not be skipped as finished with their old length."""
    from ae_jax.configs import seed_sparse

    base = seed_sparse.get_config()
    base.train.epochs, base.eval.at_end = 2, False
    base.train.figures = base.train.tensorboard = base.train.checkpoints = False
    overrides = [{"train.seed": s} for s in range(2)]
    sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    base.train.epochs = 3
    status = sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    assert status["counts"]["done"] == 2
    for r in status["runs"]:
        run = tmp_path / "s" / r["workdir"]
        epochs = [json.loads(line)["epoch"] for line in open(run / "metrics.jsonl")]
        assert epochs == [1, 2, 3], r["name"]
        assert json.loads((run / "summary.json").read_text())["epoch"] == 3


def test_a_run_that_lost_its_config_json_is_refused_not_counted_or_left_pending(tmp_path):
    """A finished run whose config.json was deleted compared as "no config yet": a rerun with
    the same config counted it done (and the report read its settings as the defaults), one
    with train.epochs raised left it "pending" for good, exit 0. Every entry point now refuses
    it, naming the run, and changes nothing."""
    base = seed_sparse.get_config()
    base.train.epochs, base.eval.at_end = 1, False
    base.train.figures = base.train.tensorboard = False
    overrides = [{"train.seed": s} for s in range(2)]
    status = sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    run = tmp_path / "s" / status["runs"][1]["workdir"]
    os.remove(run / "config.json")
    kept = {f: (run / f).read_bytes() for f in ("summary.json", "metrics.jsonl")}
    before = (tmp_path / "s" / "sweep.json").read_bytes()
    lost = re.escape(f"{str(run)!r} holds a run (summary.json, metrics.jsonl, checkpoints/1)")
    lost += " whose config.json is gone"
    for epochs in (1, 2):  # the same config; an extension
        base.train.epochs = epochs
        with pytest.raises(UserError, match=lost):
            sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    with pytest.raises(UserError, match=lost):
        report.write_report(str(tmp_path / "s"))
    with pytest.raises(UserError, match=lost):
        experiment.train_and_evaluate(base, str(run))
    with pytest.raises(UserError, match=lost):
        ae_jax.load(str(run))
    assert (tmp_path / "s" / "sweep.json").read_bytes() == before
    assert {f: (run / f).read_bytes() for f in kept} == kept
    assert not (run / "config.json").exists()


def test_raising_epochs_while_adding_runs_trains_both_kinds(tmp_path):
    """Finished runs to extend (checkpoints at epoch 2) and a new run (none) land in one chunk:
    they train as two groups, not refused as runs that "cannot resume together"."""
    from ae_jax.configs import seed_sparse

    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 2, False, 256
    base.train.figures = base.train.tensorboard = False
    sweep.run_sweep(base, [{"train.seed": s} for s in range(2)], str(tmp_path / "s"))
    base.train.epochs = 3
    status = sweep.run_sweep(base, [{"train.seed": s} for s in range(3)], str(tmp_path / "s"))
    assert status["counts"]["done"] == 3
    for r in status["runs"]:
        summary = json.loads((tmp_path / "s" / r["workdir"] / "summary.json").read_text())
        assert summary["epoch"] == 3, r["name"]
        assert summary["resumed_from_epoch"] == (2 if r["name"] != "train.seed=2" else 0)


def test_a_launch_that_set_a_field_every_entry_sets_does_not_block_an_extension(tmp_path):
    """A launch with a flag every entry overrides (train.seed, with a warning) was recorded as
    the sweep's base; a later launch raising train.epochs was then refused as "another base
    config", naming only train.epochs, which extends a sweep (the lifecycle probe)."""
    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 2, False, 256
    base.train.figures = base.train.tensorboard = base.train.checkpoints = False
    overrides = [{"train.seed": s} for s in range(2)]
    sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    base.train.seed = 7  # every entry sets it: no run changes
    sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    base.train.seed, base.train.epochs = 0, 3
    status = sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    assert status["counts"]["done"] == 2
    for r in status["runs"]:
        summary = json.loads((tmp_path / "s" / r["workdir"] / "summary.json").read_text())
        assert summary["epoch"] == 3, r["name"]
    base.model.latent_dim = 3  # a field no entry sets still differs, for the runs and the base
    with pytest.raises(UserError, match=r"another config .*model.latent_dim: 9 -> 3"):
        sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    with pytest.raises(UserError, match=r"another base config; .*model.latent_dim: 9 -> 3"):
        shards.check_same_base(str(tmp_path / "s"), base, overrides)


def test_an_extension_that_trained_no_run_does_not_block_the_sweeps_own_command(tmp_path):
    """A launch extending a finished sweep to 3 epochs, stopped before it trained a run (or a
    shard that took none), recorded its base: the sweep's own command was then refused as
    "another base config; train.epochs: 3 -> 2" until the sweep was extended (a probe)."""
    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 2, False, 256
    base.train.figures = base.train.tensorboard = base.train.checkpoints = False
    overrides, w = [{"train.seed": s} for s in range(2)], str(tmp_path / "s")
    names = [r["name"] for r in sweep.run_sweep(base, overrides, w)["runs"]]
    longer = copy.deepcopy(base)
    longer.train.epochs = 3
    shards.check_same_base(w, longer, overrides, names=names)  # recorded; then stopped
    assert sweep.run_sweep(base, overrides, w)["counts"]["done"] == 2
    assert json.load(open(tmp_path / "s" / "sweep_config.json"))["train"]["epochs"] == 2
    sweep.run_sweep(longer, overrides[:1], w)  # an extension that reached a run: kept to
    with pytest.raises(UserError, match=r"another base config; .*train.epochs: 3 -> 2"):
        shards.check_same_base(w, base, overrides, names=names)
    # A run not finished compares without its evaluation's settings: no way past (a review).
    w = str(tmp_path / "u")
    sweep.run_sweep(base, overrides, w)
    os.remove(os.path.join(w, "runs", names[1], "summary.json"))
    shards.check_same_base(w, longer, overrides, names=names)
    with pytest.raises(UserError, match=r"another base config; .*train.epochs: 3 -> 2"):
        shards.check_same_base(w, base, overrides, names=names)


def test_a_shard_with_another_eval_batch_size_or_checkpoint_every_is_refused(tmp_path):
    """A rerun of one run may change train.eval_batch_size or checkpoint_every (warned of,
    recorded); a sweep's second shard launched with another one trained its runs so, unsaid,
    and the report averaged them with the first shard's as one setting's seeds (a VAE's
    eval/loss moves 44.49 -> 44.25 with the batch size alone: a probe). A launch may not train
    a run that trained with another value than its own, nor a new run with another than the
    one the sweep's trained (or being trained) runs share; the runs are the reference, not
    sweep_config.json (a launch that trained nothing rewrote it; older sweeps lack it: a
    review). Before any run trained (a launch killed for memory) any value passes; finished
    runs are only the reference; an entry's own value is its run's; eval.iw_batch_rows (last
    bits only) may change at any launch."""
    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 1, False, 256
    base.train.figures = base.train.tensorboard = base.train.checkpoints = False
    overrides, w = [{"train.seed": s} for s in range(3)], str(tmp_path / "s")
    names = [r["name"] for r in sweep.run_sweep(base, overrides[:1], w)["runs"]]
    for field, value in [("eval_batch_size", 50), ("checkpoint_every", 2)]:
        other = copy.deepcopy(base)
        setattr(other.train, field, value)
        saved = base.train[field]
        with pytest.raises(
            UserError,
            match=rf"the sweep's runs trained with train.{field}={saved}, and this launch would "
            rf"train run 'train.seed=1' with {value}; a rerun",
        ):
            sweep.run_sweep(other, overrides[:2], w)
    assert not os.path.exists(os.path.join(w, "runs", "train.seed=1"))  # nothing was changed
    other = copy.deepcopy(base)
    other.eval.iw_batch_rows = 7
    assert sweep.run_sweep(other, overrides[:2], w)["counts"]["done"] == 2
    other.train.eval_batch_size = 50
    assert sweep.run_sweep(other, overrides[:2], w)["counts"]["done"] == 2  # trains nothing
    with pytest.raises(UserError, match=r"train.eval_batch_size=4096, and .* 'train.seed=2' "):
        sweep.run_sweep(other, overrides, w)  # ... and set no value for the runs added
    os.remove(os.path.join(w, "sweep_config.json"))  # nor does its absence (a review)
    with pytest.raises(UserError, match=r"train.eval_batch_size=4096, and .* 'train.seed=2' "):
        sweep.run_sweep(other, overrides, w)
    # A finished run trained with another value (one run's rerun may change it): no value is
    # the runs' own, and the sweep goes on.
    path = os.path.join(w, "runs", "train.seed=1", "config.json")
    saved = json.loads(open(path).read())
    saved["train"]["eval_batch_size"] = 50
    with open(path, "w") as f:
        json.dump(saved, f)
    assert sweep.run_sweep(base, overrides, w)["counts"]["done"] == 3
    w = str(tmp_path / "fresh")  # the first launch killed before a step: free to change
    shards.check_same_base(w, base, overrides, names=names)
    started = os.path.join(w, "runs", names[0])
    os.makedirs(started)
    shutil.copy(os.path.join(tmp_path, "s", "runs", names[0], "config.json"), started)
    assert sweep.run_sweep(other, overrides[:2], w)["counts"]["done"] == 2
    w = str(tmp_path / "compiling")  # ... but not beside a run a launch trains (lock held)
    shards.check_same_base(w, base, overrides, names=names)
    held = os.path.join(w, "runs", names[0])
    os.makedirs(held)
    with locks.WorkdirLock(held):
        with pytest.raises(UserError, match=r"eval_batch_size=4096, and .* 'train.seed=1' with 50"):
            sweep.run_sweep(other, overrides[:2], w)
    w = str(tmp_path / "entries")  # an entry's own value is its run's, whatever the base's
    own = [{**overrides[0], "train.eval_batch_size": 100}, overrides[1]]
    sweep.run_sweep(base, own, w)
    base.train.epochs = other.train.epochs = 2  # extended: each run keeps its own
    with pytest.raises(UserError, match=r"run 'train.seed=1' trained with .*=4096, and .* 50"):
        sweep.run_sweep(other, own, w)
    assert sweep.run_sweep(base, own, w)["counts"]["done"] == 2


def test_a_run_whose_extension_failed_is_reported_as_failed_not_as_a_setting(tmp_path):
    """A sweep extended to 2 epochs, one run's checkpoints gone (it cannot continue): sweep.json
    counted it failed, but the report read its old end's summary.json and showed it as a
    finished run of a setting of its own (train.epochs 1 beside 2), no failure listed (a
    probe). It is a failed run, named with its error; its old end stays in its directory."""
    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 1, False, 256
    base.train.figures = base.train.tensorboard = False
    overrides, w = [{"train.seed": s} for s in range(2)], str(tmp_path / "s")
    sweep.run_sweep(base, overrides, w)
    shutil.rmtree(os.path.join(w, "runs", "train.seed=1", "checkpoints"))
    base.train.epochs = 2
    assert sweep.run_sweep(base, overrides, w)["counts"] == {
        "done": 1, "diverged": 0, "failed": 1, "running": 0, "pending": 0
    }  # fmt: skip
    rows, _, failed, _ = finished.collect(w)
    assert [r["name"] for r in rows] == ["train.seed=0"]
    ((name, error),) = failed
    assert name == "train.seed=1" and error.endswith("(its end at epoch 1: in its directory)")
    assert "checkpoints" in error
    assert os.path.exists(os.path.join(w, "runs", "train.seed=1", "summary.json"))
    # Decided by what failed.json records, not by file times: a copy without them (rsync -r)
    # reported the failed run as finished again (a review).
    copy_of = str(tmp_path / "copy")
    shutil.copytree(w, copy_of, copy_function=shutil.copy)
    assert [n for n, _ in finished.collect(copy_of)[2]] == ["train.seed=1"]
    # A failed.json of an earlier failure: the run failed, then was finished alone (a resume
    # of its own removes no failed.json): finished, not failed (a review); one an earlier
    # version wrote (no summary recorded) is told by file times.
    old = os.path.join(w, "runs", "train.seed=0", "failed.json")
    summary = os.stat(os.path.join(w, "runs", "train.seed=0", "summary.json")).st_mtime_ns
    for record, when, is_failed in [
        ({"error": "RuntimeError: killed", "beside_summary": {"epoch": 0}}, summary + 10**9, 0),
        ({"error": "RuntimeError: killed", "beside_summary": None}, summary + 10**9, 0),
        ({"error": "RuntimeError: killed"}, summary - 10**9, 0),
        ({"error": "RuntimeError: killed"}, summary + 10**9, 1),
    ]:
        with open(old, "w") as f:
            json.dump(record, f)
        os.utime(old, ns=(when, when))
        rows, _, failed, _ = finished.collect(w)
        assert [r["name"] for r in rows] == ["train.seed=0"][is_failed:]
        assert [n for n, _ in failed] == ["train.seed=0"][:is_failed] + ["train.seed=1"]


def test_a_config_file_without_report_metrics_removes_an_earlier_launchs(tmp_path):
    """report_metrics.json, written by a launch of a config file with REPORT_METRICS, stayed
    when the file no longer defined them: the report kept showing those alone (a probe)."""
    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 1, False, 256
    base.train.figures = base.train.tensorboard = base.train.checkpoints = False
    w, chosen = str(tmp_path / "s"), tmp_path / "s" / "report_metrics.json"
    sweep.run_sweep(base, [{}], w, report_metrics=["eval/mse"])
    assert json.loads(chosen.read_text()) == {"metrics": ["eval/mse"]}
    sweep.run_sweep(base, [{}], w)  # the API's None: left as it is
    assert chosen.exists()
    (tmp_path / "c.py").write_text("def get_sweep():\n    return [{}]\n")
    entries, metrics = sweep_command.load_sweep(str(tmp_path / "c.py"))
    sweep.run_sweep(base, entries, w, report_metrics=metrics)  # a file that defines none
    assert not chosen.exists()


def test_a_sweep_under_a_cosine_schedule_says_why_it_is_not_extended(tmp_path):
    """More epochs under cosine were refused as "trained with another config (train.epochs:
    1 -> 2)" alone; a single run's refusal says why (a probe): now a sweep's too."""
    base = seed_sparse.get_config()
    base.data.name, base.optim.schedule = "digits", "cosine"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 1, False, 256
    base.train.figures = base.train.tensorboard = base.train.checkpoints = False
    sweep.run_sweep(base, [{}], str(tmp_path / "s"))
    base.train.epochs = 2
    with pytest.raises(
        UserError,
        match=r"train.epochs: 1 -> 2\. Raising train.epochs continues a run only under a "
        r"schedule whose value .* uses optim.schedule='cosine'\. Rerun with the same",
    ):
        sweep.run_sweep(base, [{}], str(tmp_path / "s"))


def test_a_group_that_fails_leaves_its_chunks_other_group_to_train(tmp_path, monkeypatch):
    """Runs being extended and a new run are one chunk but two groups: when the first group is
    refused, the new run still trains, and only the refused runs are marked failed."""
    from ae_jax import experiment
    from ae_jax.configs import seed_sparse
    from ae_jax.errors import UserError

    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 2, False, 256
    base.train.figures = base.train.tensorboard = False
    sweep.run_sweep(base, [{"train.seed": s} for s in range(2)], str(tmp_path / "s"))
    real = experiment.train_group

    def refuse_the_extension(configs, workdirs, *args, **kwargs):
        if any(w.endswith("train.seed=0") for w in workdirs):
            raise UserError("refused for the test")
        return real(configs, workdirs, *args, **kwargs)

    monkeypatch.setattr(experiment, "train_group", refuse_the_extension)
    base.train.epochs = 3
    sweep.run_sweep(base, [{"train.seed": s} for s in range(3)], str(tmp_path / "s"))
    runs = tmp_path / "s" / "runs"
    assert json.loads((runs / "train.seed=2" / "summary.json").read_text())["epoch"] == 3
    failed = sorted(d for d in os.listdir(runs) if (runs / d / "failed.json").exists())
    assert failed == ["train.seed=0", "train.seed=1"]


def test_a_run_folder_of_other_files_is_refused_at_launch_nothing_written(tmp_path):
    """A stray file in one run's folder failed its whole group: every run got that run's error
    in its failed.json, "1 done, 8 failed" (a probe). Then it failed alone, when its group
    came to train, after the runs before it, writing its .lock and failed.json among the
    user's files (a probe): now the launch is refused before anything is written."""
    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = 1, False, 256
    base.train.figures = base.train.tensorboard = False
    stray = tmp_path / "s" / "runs" / "train.seed=1"
    stray.mkdir(parents=True)
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(UserError) as e:
        sweep.run_sweep(base, [{"train.seed": s} for s in range(3)], str(tmp_path / "s"))
    assert str(e.value) == (
        f"sweep {str(tmp_path / 's')!r}: 1 run(s)' directories are files or folders of other "
        f"files, not runs' ({str(stray)!r} holds ['notes.txt']): each run would write its files "
        "there (and replace any of the same names). Move them out of the way, then rerun the "
        "same command; nothing was written."
    )
    (tmp_path / "s" / "runs" / "train.seed=2").write_text("a file")  # refused alike (a review)
    with pytest.raises(UserError, match=r"2 run\(s\)' .*train.seed=2' is a file\)"):
        sweep.run_sweep(base, [{"train.seed": s} for s in range(3)], str(tmp_path / "s"))
    (tmp_path / "s" / "runs" / "train.seed=2").unlink()
    (tmp_path / "s" / "runs" / "train.seed=2").symlink_to(tmp_path / "gone")  # a broken link
    with pytest.raises(UserError, match=r"train.seed=2' is a link to nothing \(a broken link\)"):
        sweep.run_sweep(base, [{"train.seed": s} for s in range(3)], str(tmp_path / "s"))
    (tmp_path / "s" / "runs" / "train.seed=2").unlink()
    assert sorted(os.listdir(tmp_path / "s")) == ["runs"]
    assert os.listdir(tmp_path / "s" / "runs") == ["train.seed=1"]
    assert os.listdir(stray) == ["notes.txt"] and (stray / "notes.txt").read_text() == "mine"
    (stray / "notes.txt").unlink()  # moved out: the same command trains all three
    status = sweep.run_sweep(base, [{"train.seed": s} for s in range(3)], str(tmp_path / "s"))
    assert status["counts"]["done"] == 3


def test_sweep_json_tells_how_far_the_sweep_is_after_each_group(tmp_path, monkeypatch):
    """sweep.json is rebuilt after each group's summaries are written, not only at the start
    and the end: three groups of one run read 0, 1, 2, 3 done (and 3 at the end); and once
    each group's runs are claimed, so that it lists them as running (they read "pending" while
    they trained: a README walkthrough)."""
    from ae_jax.configs import seed_sparse
    from ae_jax.sweeps import runner

    seen, real = [], runner.write_status

    def recording(*args, **kwargs):
        status = real(*args, **kwargs)
        seen.append((status["counts"]["done"], status["counts"]["running"]))
        return status

    monkeypatch.setattr(runner, "write_status", recording)
    base = seed_sparse.get_config()
    base.data.name, base.train.batch_size, base.train.epochs = "digits", 256, 1
    base.eval.at_end = base.train.figures = base.train.tensorboard = False
    sweep.run_sweep(base, [{"train.seed": s} for s in range(3)], str(tmp_path), max_models=1)
    assert [done for done, _ in seen] == [0, 0, 1, 1, 2, 2, 3, 3]
    # Claimed: running. (After a group, the next may already be claimed: running 0 or 1.)
    assert seen[0] == (0, 0) and [r for _, r in seen[1:6:2]] == [1, 1, 1] and seen[-1] == (3, 0)


def test_report_groups_runs_by_their_effective_config(tmp_path):
    """A run that sets loss.l1_weight to the base config's value and one that leaves it there
    trained the same config: one row (2 seeds), its cell the value, not blank."""
    _fake_sweep(
        tmp_path,
        [
            ({"loss.l1_weight": 1e-4, "train.seed": 0}, "done", {"eval/loss": 1.0}),
            ({"train.seed": 1}, "done", {"eval/loss": 3.0}),
            ({"loss.l1_weight": 1e-2, "train.seed": 0}, "done", {"eval/loss": 5.0}),
        ],
        config={"loss": {"l1_weight": 1e-4}, "train": {"seed": 0}},
    )
    out = report.write_report(str(tmp_path), ["eval/loss"])
    rows = {r["loss.l1_weight"]: (r["seeds"], r["eval/loss mean"]) for r in out["rows"]}
    assert rows == {1e-4: (2, 2.0), 1e-2: (1, 5.0)}


def test_report_groups_an_int_override_with_its_float_value(tmp_path):
    """`loss.l1_weight=0` (an int on the command line) trains the float field 0.0: one row."""
    _fake_sweep(
        tmp_path,
        [
            ({"loss.l1_weight": 0, "train.seed": 0}, "done", {"eval/loss": 1.0}),
            ({"loss.l1_weight": 0.0, "train.seed": 1}, "done", {"eval/loss": 3.0}),
        ],
        config={"loss": {"l1_weight": 1e-4}, "train": {"seed": 0}},
    )
    saved = tmp_path / "runs" / "run0" / "config.json"  # as training writes it: the field's type
    saved.write_text(saved.read_text().replace('"l1_weight": 0}', '"l1_weight": 0.0}'))
    assert '"l1_weight": 0.0' in saved.read_text()
    out = report.write_report(str(tmp_path), ["eval/loss"])
    assert [(r["loss.l1_weight"], r["seeds"]) for r in out["rows"]] == [(0.0, 2)]


def test_log_axis_labels_of_close_swept_values_do_not_run_together():
    """Ticks at every swept value; labels only where they do not crowd the last one."""
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.set_xscale("log")
    report_figures._value_ticks(ax, [0.01, 0.1, 1.2, 1.4, 1.6, 1.8, 0.01])
    assert list(ax.xaxis.get_major_locator().locs) == [0.01, 0.1, 1.2, 1.4, 1.6, 1.8]
    assert ax.xaxis.get_major_formatter().seq == ["0.01", "0.1", "1.2", "", "", ""]
    report_figures._value_ticks(ax, [0.0, 1e-5, 1e-4, 1e-3])  # symlog sweeps keep their 0
    assert ax.xaxis.get_major_formatter().seq == ["0", "1e-05", "0.0001", "0.001"]


def test_report_of_k_seeds_trained_together_and_of_no_sweep(tmp_path):
    """`ae-jax train` with train.num_models = K writes DIR/seed=S/: one setting over K seeds."""
    c = _cfg(train__num_models=2)
    experiment.train_and_evaluate(c, str(tmp_path / "k"))
    out = report.write_report(str(tmp_path / "k"), ["eval/mse"])
    assert [e["overrides"] for e in run_folders.subdir_runs(str(tmp_path / "k"))] == [
        {"train.seed": 0},
        {"train.seed": 1},
    ]
    (row,) = out["rows"]
    assert row["seeds"] == 2 and row["eval/mse n"] == 2
    mses = [json.loads((tmp_path / "k" / f"seed={s}" / "summary.json").read_text()) for s in (0, 1)]
    assert row["eval/mse mean"] == pytest.approx(np.mean([m["eval/mse"] for m in mses]))
    with pytest.raises(UserError, match=r"'.*nope' does not exist; expected a sweep's workdir"):
        report.write_report(str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"is one run's directory \(it holds config.json\)"):
        report.write_report(str(tmp_path / "k" / "seed=0"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"has no sweep.json .*; run ae-jax sweep --config=FILE"):
        report.write_report(str(tmp_path / "empty"))
    # A sweep's directory whose sweep.json is gone: said so, not "run ae-jax sweep first".
    os.rename(tmp_path / "k", tmp_path / "empty" / "runs")
    with pytest.raises(UserError, match=r"no sweep.json, but its runs/ holds a sweep's runs"):
        report.write_report(str(tmp_path / "empty"))
    assert report.write_report(str(tmp_path / "empty" / "runs"), ["eval/mse"])["rows"] == [row]


def test_report_of_runs_trained_together(tmp_path, caplog):
    """ae_jax.train_together's DIR/NAME/ runs: a setting per value of the fields they differ
    in (operational ones excepted), its runs' seeds the seeds."""
    d = tmp_path / "l1"
    weights = (0.0, 0.1, 0.01)  # by name 0.1 and 0.01 tie ("0.1" and "0.01" hold the same numbers)
    sweep.train_together(
        _cfg(), [{"loss.l1_weight": w, "train.seed": s} for w in weights for s in (0, 1)], str(d)
    )
    # A field that changes nothing a run learns is no setting: one run logged more often.
    saved = json.loads((d / "loss.l1_weight=0,train.seed=1" / "config.json").read_text())
    saved["train"]["log_every"] += 7
    (d / "loss.l1_weight=0,train.seed=1" / "config.json").write_text(json.dumps(saved))
    weights = sorted(weights)  # the report's order: by value
    assert [e["overrides"] for e in run_folders.subdir_runs(str(d))] == [
        {"loss.l1_weight": w, "train.seed": s} for w in weights for s in (0, 1)
    ]
    caplog.set_level("WARNING")
    out = report.write_report(str(d), ["eval/mse", "eval/l1"])
    assert "no finished run has" not in caplog.text
    assert out["params"] == ["loss.l1_weight"]
    assert [row["loss.l1_weight"] for row in out["rows"]] == list(weights)
    for w, row in zip(weights, out["rows"], strict=True):
        runs = [
            json.loads((d / f"loss.l1_weight={w:g},train.seed={s}" / "summary.json").read_text())
            for s in (0, 1)
        ]
        assert row["seeds"] == 2 and row["eval/mse n"] == 2
        for m in ("eval/mse", "eval/l1"):
            assert row[f"{m} mean"] == pytest.approx(np.mean([r[m] for r in runs]))
            assert row[f"{m} std"] == pytest.approx(np.std([r[m] for r in runs], ddof=1))
    assert out["rows"][0]["eval/l1 mean"] != pytest.approx(out["rows"][2]["eval/l1 mean"])
    # Metrics asked for with --metrics that no run has are named, with the ones the runs have.
    report.write_report(str(d), ["vae/iwae", "eval/mse", "foo/bar"])
    (warning,) = [r.getMessage() for r in caplog.records if "no finished run has" in r.getMessage()]
    assert warning.startswith(  # (a misspelling too: "as a number" alone implied it exists)
        "--metrics asks for vae/iwae, foo/bar, which no finished run has as a number (misspelt, "
        "or a per-feature table or a label)"
    )
    assert "eval/kl, eval/l1, eval/loss, eval/mse, eval/recon" in warning and "..." not in warning
    # None of them present: refused before results.csv (or anything) is rewritten.
    before = {f: (d / f).read_bytes() for f in ("results.csv", "runs.csv", "report.md")}
    with pytest.raises(UserError, match=r"no finished run has any of the metrics \['bogus'\] as a"):
        report.write_report(str(d), ["bogus"])
    assert before == {f: (d / f).read_bytes() for f in before}
    # The list offered names every metric report.md shows (it left out those without a '/').
    with pytest.raises(UserError, match=r"expected some of \[.*'n_params'.*\] \(nothing was"):
        report.write_report(str(d), ["bogus"])
    # A damaged eval.json is named, with the way out, not a JSONDecodeError.
    damaged = d / "loss.l1_weight=0,train.seed=0" / "eval.json"
    damaged.write_text('{"recon/mse": 0.1')  # cut short
    with pytest.raises(UserError, match=r"eval.json is damaged .*ae-jax evaluate --workdir="):
        report.write_report(str(d), ["eval/mse"])
    damaged.unlink()
    # The config file's REPORT_METRICS may be absent from some sweeps: no warning.
    caplog.clear()
    (d / "report_metrics.json").write_text(json.dumps({"metrics": ["foo/bar", "eval/mse"]}))
    assert report.write_report(str(d))["metrics"] == ["eval/mse"]
    assert "no finished run has" not in caplog.text
    # None of the config's there (VAE metrics of an AE sweep): the defaults, said.
    (d / "report_metrics.json").write_text(json.dumps({"metrics": ["vae/kl"]}))
    assert "eval/mse" in report.write_report(str(d))["metrics"]
    assert "no finished run has the config's REPORT_METRICS ['vae/kl']" in caplog.text
    caplog.clear()
    # Past 40 metrics the list ends in "..."; an absent metric's last part finds its stored name.
    caplog.clear()
    have = {"vae/bce_iwae_bound", *(f"m/{i:02d}" for i in range(45))}
    report._warn_absent(["vae/iwae"], have)
    assert "vae/iwae (perhaps vae/bce_iwae_bound)" in caplog.text
    assert "m/00, m/01" in caplog.text and "m/39, ...." in caplog.text and "m/40" not in caplog.text
    # A misspelt one suggested nothing (a probe): its nearest spellings now.
    caplog.clear()
    report._warn_absent(["eval/mes"], {"eval/mse", "eval/loss", "pca/mse"})
    assert "eval/mes (perhaps eval/mse)" in caplog.text


def test_report_figures_draw_every_metric_that_varies_and_name_the_rest(tmp_path, monkeypatch):
    """No cap on panels (the 10th and later metrics were dropped without a word); a metric the
    same for every setting is named in the title instead of drawn."""
    metrics = [f"m{i}" for i in range(1, 12)]
    table = [
        {
            "loss.beta": b,
            **{f"{m} {k}": v for m in metrics for k, v in (("mean", b * int(m[1:])), ("std", 0.1))},
            **{f"{m} n": 2 for m in [*metrics, "same"]},
            "same mean": 1.0,
            "same std": 0.0,
        }
        for b in (1.0, 10.0, 100.0)
    ]
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    report_figures.plot(str(tmp_path), ["loss.beta"], table, [*metrics, "same"])
    (fig,) = saved
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == metrics
    assert fig.get_suptitle().endswith("not drawn, the same for every setting: same")
    assert fig.axes[0].get_xlabel() == "loss.beta (log axis)"
    # The reconstruction term's unit, when every run has one likelihood.
    for row in table:
        row.update({"eval/recon mean": row["m1 mean"], "eval/recon std": 0.1, "eval/recon n": 2})
    report_figures.plot(str(tmp_path), ["loss.beta"], table, ["eval/recon"], "squared error")
    assert saved[-1].axes[0].get_ylabel() == "squared error per example"
    # A setting whose runs all diverged (NaN means) makes no constant metric look varying,
    # and the title says which setting has no value (tests/test_report.py: more).
    table[1].update({f"{m} mean": float("nan") for m in [*metrics, "same"]})
    report_figures.plot(str(tmp_path), ["loss.beta"], table, [*metrics, "same"])
    assert (
        saved[-1]
        .get_suptitle()
        .endswith("not drawn, the same for every setting that has a value: same")
    )
    # Seeds of one setting (nothing swept): no figure, and no empty figures/ folder.
    one = [dict(table[0], **{"train.seed": 0})]
    assert report_figures.plot(str(tmp_path / "seeds"), ["train.seed"], one, metrics) == []
    assert not (tmp_path / "seeds").exists()


def _drawn(monkeypatch, folder, metrics) -> list:
    """The figures `report.write_report(folder, metrics)` draws, caught before they are saved."""
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    report.write_report(str(folder), metrics)
    return saved


def test_error_bars_of_a_metric_never_below_0_stop_at_0(tmp_path, monkeypatch):
    """Active units 0, 0 and 4 over three seeds: mean 1.33 - sd 2.31 drew the bar (and the
    axis) down to -1; a count no run took below 0 stops at 0. A metric with a negative value
    keeps its whole bar."""
    values = [(0, -1.0), (0, -2.0), (4, 3.0)]
    runs = [
        ({"loss.beta": 4.0, "train.seed": s}, "done", {"vae/active_units": a, "signed": v})
        for s, (a, v) in enumerate(values)
    ]
    runs.append(({"loss.beta": 1.0, "train.seed": 0}, "done", {"vae/active_units": 5, "signed": 1}))
    _fake_sweep(tmp_path, runs)
    (fig,) = _drawn(monkeypatch, tmp_path, ["vae/active_units", "signed"])
    low = {}
    for ax in fig.axes[:2]:
        (bars,) = [c for c in ax.collections if len(c.get_segments()) == 2]
        low[ax.get_title()] = min(seg[:, 1].min() for seg in bars.get_segments())
    assert low["vae/active_units"] == 0.0
    assert low["signed"] == pytest.approx(0.0 - np.std([-1.0, -2.0, 3.0], ddof=1))
    assert "(cut at 0 for a metric no run took below it)" in fig.get_suptitle()


def test_error_bars_of_an_accuracy_stop_at_1(tmp_path, monkeypatch):
    """Accuracies 1, 1 and 0.8 over three seeds: mean 0.93 + sd 0.12 drew the bar to 1.05
    (a shipped figure's reached 1.003); an accuracy or a fraction stops at 1."""
    runs = [
        ({"loss.beta": 4.0, "train.seed": s}, "done", {"recon/categorical_accuracy": a})
        for s, a in enumerate((1.0, 1.0, 0.8))
    ]
    runs.append(({"loss.beta": 1.0, "train.seed": 0}, "done", {"recon/categorical_accuracy": 0.5}))
    _fake_sweep(tmp_path, runs)
    (fig,) = _drawn(monkeypatch, tmp_path, ["recon/categorical_accuracy"])
    (bars,) = [c for c in fig.axes[0].collections if len(c.get_segments()) == 2]
    assert max(seg[:, 1].max() for seg in bars.get_segments()) == pytest.approx(1.0)
    assert "(cut at 1 for a fraction)" in fig.get_suptitle()


def test_error_bars_of_active_units_stop_at_the_codes_size(tmp_path, monkeypatch):
    """Active units 4, 4 and 2 of a 4-unit code: mean 3.33 + sd 1.15 drew the bar to 4.49, more
    units than the code has; it stops at model.latent_dim (each setting's own)."""
    runs = [
        ({"loss.beta": 4.0, "train.seed": s}, "done", {"vae/active_units": a})
        for s, a in enumerate((4, 4, 2))
    ]
    runs += [
        ({"loss.beta": 1.0, "train.seed": s}, "done", {"vae/active_units": a})
        for s, a in enumerate((1, 3))
    ]
    _fake_sweep(tmp_path, runs, config={"model": {"latent_dim": 4}})
    (fig,) = _drawn(monkeypatch, tmp_path, ["vae/active_units"])
    (bars,) = [c for c in fig.axes[0].collections if len(c.get_segments()) == 2]
    tops = sorted(seg[:, 1].max() for seg in bars.get_segments())
    sd = np.std([1, 3], ddof=1)  # beta 1: 2 + 1.41, under 4: whole
    assert tops == pytest.approx([2 + sd, 4.0])
    assert "(cut at model.latent_dim for active units)" in fig.get_suptitle()


def test_the_default_report_has_a_tables_categorical_accuracy(tmp_path):
    """A sweep over a table with categories reported eval/mse and friends by default but not
    recon/categorical_accuracy, though runs.csv had it (a purchase-table probe)."""
    runs = [
        ({"loss.beta": b, "train.seed": s}, "done", {"eval/mse": 0.1 * b + s, "x": 1})
        for b in (1.0, 4.0)
        for s in (0, 1)
    ]
    acc = [0.5, 0.7, 0.6, 0.9]
    _fake_sweep(tmp_path, runs, evals=[{"recon/categorical_accuracy": a} for a in acc])
    report.write_report(str(tmp_path))
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    got = {r["loss.beta"]: float(r["recon/categorical_accuracy mean"]) for r in rows}
    assert got == pytest.approx({"1.0": 0.6, "4.0": 0.75})
    assert "wall_s" not in rows[0]  # (timing.csv's)


def test_error_bars_of_a_bound_of_no_likelihood_stop_at_0(tmp_path, monkeypatch):
    """vae/bce_iwae_bound, -(a cross-entropy + a KL), never above 0: -1, -1 and -30 over three
    seeds, mean -10.7 + sd 16.7 drew its bar to +6 (a probe's, to +1.1e7); it stops at 0."""
    runs = [
        ({"loss.beta": 4.0, "train.seed": s}, "done", {"vae/bce_iwae_bound": v})
        for s, v in enumerate((-1.0, -1.0, -30.0))
    ]
    runs.append(({"loss.beta": 1.0, "train.seed": 0}, "done", {"vae/bce_iwae_bound": -2.0}))
    _fake_sweep(tmp_path, runs)
    (fig,) = _drawn(monkeypatch, tmp_path, ["vae/bce_iwae_bound"])
    (bars,) = [c for c in fig.axes[0].collections if len(c.get_segments()) == 2]
    (seg,) = [seg for seg in bars.get_segments() if np.ptp(seg[:, 1]) > 0]  # one seed: none
    sd = np.std([-1.0, -1.0, -30.0], ddof=1)
    assert sorted(seg[:, 1]) == pytest.approx([-32.0 / 3 - sd, 0.0])
    assert "(cut at 0 for a bound of no likelihood)" in fig.get_suptitle()


def test_one_seed_per_setting_is_said_and_every_bound_has_its_unit(tmp_path, monkeypatch):
    """With one seed per setting the title said "mean ± sample standard deviation over n = 1
    seeds" (there is none); a VAE's bounds of no log-likelihood had a bare y label."""
    metrics = ["vae/bce_bound", "vae/bce_iwae_bound", "vae/mse_bound"]
    runs = [
        ({"loss.beta": b}, "done", {m: -b * (i + 1) for i, m in enumerate(metrics)})
        for b in (1.0, 2.0)
    ]
    _fake_sweep(tmp_path, runs)
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    report.write_report(str(tmp_path), metrics)
    (fig,) = saved
    assert fig.get_suptitle().startswith("one seed per setting (no standard deviation)")
    md = (tmp_path / "report.md").read_text()  # (it said "... over n = 1 seeds per setting")
    assert "2 settings; one seed per setting (no standard deviation)" in md
    labels = {ax.get_title(): ax.get_ylabel().replace("\n", " ") for ax in fig.axes[:3]}
    assert labels == {
        "vae/bce_bound": "ELBO form, Bernoulli CE (nats per example, no log-lik.)",
        "vae/bce_iwae_bound": "IWAE form, Bernoulli CE (nats per example, no log-lik.)",
        "vae/mse_bound": "ELBO form, squared error (per example, no log-lik.)",
    }


@pytest.mark.parametrize(
    "values, shown",
    [((0.0, 1e-4), ["0", "0.0001"]), ((1e-3,), ["0.001"]), ((1.0, 1.02, 2.0), ["1", "", "2"])],
)
def test_a_linear_axis_is_ticked_at_the_swept_values(tmp_path, monkeypatch, values, shown):
    """An l1 weight of 0 and 1e-4 (linear: 0 is no log value) got matplotlib's ticks, labelled
    0.00000, 0.00002, ... run together into one unreadable string; a lone value likewise.
    Ticks now sit at the swept values, written as swept; one too close to the last labelled
    keeps no label."""
    runs = [
        ({"loss.l1_weight": w, "train.seed": s}, "done", {"eval/loss": w + s})
        for w in values
        for s in range(2)
    ]
    _fake_sweep(tmp_path, runs)
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    report.write_report(str(tmp_path), ["eval/loss"])
    if len(values) == 1:  # a figure per parameter of two values or more: drawn directly
        import matplotlib.figure

        fig = matplotlib.figure.Figure()
        ax = fig.subplots()
        report_figures._value_ticks(ax, list(values), log=False)
    else:
        (fig,) = saved
        ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert list(ax.get_xticks()) == pytest.approx(values)
    assert [t.get_text() for t in ax.get_xticklabels()] == shown


def test_a_kl_no_run_has_is_left_out_and_a_measured_0_is_shown():
    """report.md leaves out a plain autoencoder's eval/kl (0 by construction) unless asked for;
    a measured metric 0 in every run stays (it was left out with any 0 everywhere, as every
    collapsed VAE's vae/active_units, unsaid)."""
    plain = [{"l1_weight": 0.0, "config": {"model.name": "autoencoder"}}]
    metrics = ["eval/loss", "eval/kl", "code/near_zero_fraction"]
    assert report._meaningful(metrics, plain) == ["eval/loss", "code/near_zero_fraction"]
    assert report._meaningful(["eval/kl"], plain, asked=True) == ["eval/kl"]
    vae = [{"l1_weight": 0.0, "config": {"model.name": "vae"}}]
    assert report._meaningful(["eval/kl", "vae/active_units"], vae + plain) == [
        "eval/kl",
        "vae/active_units",
    ]


def test_a_shard_with_another_config_is_refused_before_mixing_into_the_sweep(tmp_path):
    """Shard 1/2 launched with another learning rate than shard 0/2 would have trained its seeds
    with it, and results.csv averaged both as one setting's seeds: refused, nothing trained."""
    from ae_jax.configs import seed_sparse

    base = seed_sparse.get_config()
    base.train.epochs, base.eval.at_end = 1, False
    base.train.figures = base.train.tensorboard = base.train.checkpoints = False
    overrides = [{"train.seed": s} for s in range(2)]
    w = str(tmp_path / "s")
    sweep.run_sweep(base, overrides, w, shard=(0, 2))
    base.optim.learning_rate *= 10
    with pytest.raises(UserError, match=r"run 0 \(train.seed=0\): optim.learning_rate"):
        sweep.run_sweep(base, overrides, w, shard=(1, 2))
    assert not os.path.exists(os.path.join(w, "runs", "train.seed=1", "config.json"))


def test_every_launch_of_a_sweep_has_the_base_config_of_the_first(tmp_path):
    """Shards launched together find no run trained yet to compare with: the first launch
    records the base config (sweep_config.json, under a lock) and another one is refused, but
    for fields every run overrides and for a longer training, which extends the runs."""
    from ae_jax.configs import seed_sparse
    from ae_jax.sweeps import shards

    base = seed_sparse.get_config()
    w, overrides = str(tmp_path / "s"), [{"train.seed": 0, "loss.l1_weight": 0.0}]
    shards.check_same_base(w, base, overrides)
    assert json.load(open(tmp_path / "s" / "sweep_config.json"))["optim"]["learning_rate"] == (
        base.optim.learning_rate
    )
    other = copy.deepcopy(base)
    other.optim.learning_rate *= 10
    with pytest.raises(UserError, match=r"another base config.*optim.learning_rate: 0.001 -> 0.01"):
        shards.check_same_base(w, other, overrides)
    other = copy.deepcopy(base)
    other.loss.l1_weight, other.train.log_every = 0.5, 7  # overridden everywhere; operational
    shards.check_same_base(w, other, overrides)
    other.train.epochs += 5  # an extension: passes, and is what later launches must match
    shards.check_same_base(w, other, overrides)
    with pytest.raises(UserError, match=r"train.epochs: 10 -> 5"):
        shards.check_same_base(w, base, overrides)


def test_shards_launched_together_with_an_edited_named_variant_are_refused(tmp_path):
    """A named variant's name hides its values: shard 1 launched while shard 0 had recorded
    its launch but trained nothing yet, the variant's learning rate edited between them,
    trained A's other seed with 0.05 beside 0.001, one setting in the report (a probe). Each
    run's overrides are recorded by name (sweep_named.json) and another launch compared."""
    from ae_jax.configs import seed_sparse

    base = seed_sparse.get_config()
    base.data.name, base.train.epochs, base.train.figures = "digits", 1, False
    w = str(tmp_path / "s")

    def sweep_of(lr):
        variants = [
            sweep.named("A", {"optim.learning_rate": lr}),
            sweep.named("B", {"optim.learning_rate": 0.003}),
        ]
        return sweep.product(variants, {"train.seed": [0, 1]})

    first = sweep_of(0.001)
    names = [r.name for r in sweep.expand(first, w)]
    shards.check_same_base(w, base, first, names=names)  # shard 0's launch, before training
    with pytest.raises(
        UserError,
        match=r"run 'A,train.seed=0' was launched with other "
        r"overrides \(saved -> now\): optim.learning_rate: 0.001 -> 0.05",
    ):
        sweep.run_sweep(base, sweep_of(0.05), w, shard=(1, 2))
    assert not os.path.exists(os.path.join(w, "runs"))
    sweep.run_sweep(base, first, w, shard=(1, 2))  # the same sweep: trains its share
    assert sorted(json.load(open(os.path.join(w, "sweep_named.json")))) == sorted(names)
    # A damaged record is said, not read as none and rewritten (the edited variant then
    # trained unsaid: a probe), before anything trains; restored, the check holds again.
    record = os.path.join(w, "sweep_named.json")
    saved = open(record).read()
    for damage in (saved[:30], '{"A,train.seed=0": 5}'):
        with open(record, "w") as f:
            f.write(damage)
        with pytest.raises(UserError, match=r"sweep_named.json is damaged \(.*delete it"):
            sweep.run_sweep(base, sweep_of(0.05), w)
        assert open(record).read() == damage
    os.remove(record)
    os.mkdir(record)  # unreadable (a folder of its name): said too, not a traceback
    with pytest.raises(UserError, match=r"sweep_named.json cannot be read \(Is a directory"):
        sweep.run_sweep(base, sweep_of(0.05), w)
    os.rmdir(record)
    with open(record, "w") as f:
        f.write(saved)
    with pytest.raises(UserError, match=r"optim.learning_rate: 0.001 -> 0.05"):
        sweep.run_sweep(base, sweep_of(0.05), w)


def test_a_launch_with_another_base_is_refused_before_its_data_is_read(tmp_path):
    """A second shard launched with another learning rate was refused only after the sweep's
    data had been read (a large file: minutes); now the base is compared first. The data file
    is gone here, so reading it first would give the file's error instead."""
    from ae_jax.configs import seed_sparse

    base = seed_sparse.get_config()
    base.data.path = str(tmp_path / "gone.csv")
    w, overrides = str(tmp_path / "s"), [{"train.seed": s} for s in range(2)]
    shards.check_same_base(w, base, overrides)  # shard 0's launch recorded its base
    other = copy.deepcopy(base)
    other.optim.learning_rate *= 10
    with pytest.raises(UserError, match=r"another base config.*optim.learning_rate"):
        sweep.run_sweep(other, overrides, w, shard=(1, 2))
    with pytest.raises(UserError, match=r"gone.csv"):  # the same base reads the data, refused
        sweep.run_sweep(base, overrides, w, shard=(1, 2))
    assert sorted(os.listdir(w)) == [".sweep_config.lock", "sweep_config.json"]
    (tmp_path / "s" / "sweep_config.json").write_text("{not json")  # said to be what it is
    with pytest.raises(UserError, match=r"damaged \(the sweep's base config, as first launched"):
        sweep.run_sweep(base, overrides, w, shard=(1, 2))


def test_parameter_counts_are_drawn_and_printed_whole(tmp_path, monkeypatch):
    """n_params varies with depth: it gets a panel like every metric that varies (it was left
    out without a word) and its cells print whole (34250 ± 0, not 3.425e+04 ± 0)."""
    runs = [
        ({"model.depth": d, "train.seed": s}, "done", {"eval/mse": 0.1 * d + s, "n_params": p})
        for d, p in ((1, 9416), (2, 34250))
        for s in (0, 1)
    ]
    _fake_sweep(tmp_path, runs)
    saved = []
    monkeypatch.setattr(report_figures.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    report.write_report(str(tmp_path), ["eval/mse", "n_params"])
    md = (tmp_path / "report.md").read_text()
    assert "| 2 | 2 | 0.7000 ± 0.71 | 34250 ± 0 |" in md
    assert "| 1 | 2 | 0.6000 ± 0.71 | 9416 ± 0 |" in md
    (fig,) = saved
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["eval/mse", "n_params"]


def test_a_stop_between_groups_writes_the_trained_groups_and_stops(tmp_path, monkeypatch):
    """SIGTERM after one group, before the next (its data loading, its workdir checks): no
    handler was installed there, so the process died and the trained group's eval.json and
    summary.json, written in the background, were lost. The stop now waits for them, trains
    no further group, says how to go on, and sweep.json shows nothing running."""
    from ae_jax.sweeps import runner

    base = seed_sparse.get_config()
    base.train.epochs, base.train.tensorboard = 1, False
    overrides = [{"model.latent_dim": d, "train.seed": 0} for d in (2, 3)]  # two groups
    real, trained = experiment.train_group, []

    def train_then_signal(configs, workdirs, **kw):
        trained.append(workdirs)
        out = real(configs, workdirs, **kw)
        signal.raise_signal(signal.SIGTERM)  # in the main thread, between the groups
        return out

    monkeypatch.setattr(runner.experiment, "train_group", train_then_signal)
    with pytest.raises(Interrupted, match="between the sweep's groups; every group trained so"):
        sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    assert len(trained) == 1 and len(trained[0]) == 1  # the second group never started
    status = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [r["status"] for r in status["runs"]] == ["done", "pending"]
    done = tmp_path / "s" / status["runs"][0]["workdir"]
    assert (done / "eval.json").exists() and (done / "summary.json").exists()


def test_a_get_sweep_that_raises_is_one_paragraph_naming_where(tmp_path):
    """get_config()'s errors were one paragraph; get_sweep()'s (or its generator's) a
    traceback."""
    for body in ("    return [{'train.seed': 0}][5]", "    yield {'train.seed': 0}\n    1 / 0"):
        path = tmp_path / "s.py"
        path.write_text(f"def get_config():\n    return None\n\n\ndef get_sweep():\n{body}\n")
        with pytest.raises(UserError, match=r"get_sweep\(\) raised (IndexError|ZeroDivisionError)"):
            sweep_command.load_sweep(str(path))
        with pytest.raises(UserError, match=rf"at {re.escape(str(path))}:\d+ \("):
            sweep_command.load_sweep(str(path))
    # A config of one run: the command for it is one a pip install has (experiments/ is not).
    path.write_text("def get_config():\n    return None\n")
    with pytest.raises(UserError, match=r"defines no get_sweep\(\); .* or use `ae-jax train` for"):
        sweep_command.load_sweep(str(path))
    # FILE:ARG reaches get_sweep() too: one that takes none, or needs one, met a TypeError said
    # as raised at ae_jax's own line (a probe); now said as get_config()'s are.
    path.write_text(
        "def get_config(a=None):\n    return None\n\n\ndef get_sweep():\n    return []\n"
    )
    with pytest.raises(
        UserError, match=r"get_sweep\(\) takes no argument, so ':x' \(given to get_c"
    ):
        sweep_command.load_sweep(f"{path}:x")
    path.write_text(
        "def get_config(a=None):\n    return None\n\n\ndef get_sweep(a):\n    return []\n"
    )
    with pytest.raises(UserError, match=r"get_sweep\(a\) needs an argument, .* given it too\.$"):
        sweep_command.load_sweep(str(path))
    path.write_text("def get_config():\n    return None\n\n\nget_sweep = [{'train.seed': 0}]\n")
    with pytest.raises(UserError, match=r"s.py's get_sweep is a list, not a function; define `def"):
        sweep_command.load_sweep(str(path))  # (a TypeError traceback: a review)


def test_a_field_a_run_leaves_unused_is_no_parameter_of_its_report(tmp_path):
    """A run trained on a file (data.path) was reported as a setting of data.name, which the
    file made unused (a probe: it plotted the file's run at data.name=breast_cancer, and a
    sweep of data.name beside a path as two settings of equal numbers). Its unused fields are
    no parameters: blank in its row, and no column where only they differ (data.dir)."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 5}\n" for i in range(40)))
    f = tmp_path / "f"
    for name, o in (
        ("a", {"data.name": "digits"}),
        ("b", {"data.name": "breast_cancer"}),
        ("c", {"data.name": "digits", "data.path": str(path)}),
    ):
        experiment.train_and_evaluate(
            overrides_lib.apply_overrides(_small_base(1), o), str(f / name)
        )
    out = report.write_report(str(f), ["eval/loss"])
    assert out["params"] == ["data.name", "data.path"]
    with open(f / "results.csv") as csv_file:
        rows = {(r["data.name"], r["data.path"]) for r in csv.DictReader(csv_file)}
    assert rows == {("breast_cancer", ""), ("digits", ""), ("", str(path))}


def test_an_older_sweeps_runs_of_one_config_are_counted_once(tmp_path, monkeypatch, caplog):
    """A sweep launched before entries differing only in unused fields were refused trained one
    config twice (data.name beside a data.path); with those fields no parameters, its runs
    were one setting's seeds counted twice (n 4, a review). Each config is counted once."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 5}\n" for i in range(40)))
    base = overrides_lib.apply_overrides(_small_base(1), {"data.path": str(path)})
    entries = sweep.product({"data.name": ["breast_cancer", "digits"]}, {"train.seed": [0, 1]})
    with monkeypatch.context() as m:  # as an earlier version launched it
        m.setattr(overrides_lib, "first_same", lambda configs: None)
        sweep.run_sweep(base, entries, str(tmp_path / "s"))
    caplog.set_level("WARNING")
    (row,) = report.write_report(str(tmp_path / "s"), ["eval/loss"])["rows"]
    assert row["seeds"] == 2 and row["eval/loss n"] == 2
    assert "2 finished run(s) trained the same config as another" in caplog.text


def test_entries_that_train_one_config_are_refused_and_name_collisions_said(tmp_path):
    """A one-at-a-time design repeats its base point on each axis (latent_dim 9 is the base's,
    as is learning rate 1e-3): that config trained twice and counted as 4 seeds of 2. Refused
    before any work, as are (16,) and [16]; runs whose overrides differ but whose directory
    names collide are told so, not that they have the same overrides."""
    base = seed_sparse.get_config()
    seeds = [{"train.seed": s} for s in range(2)]
    one_at_a_time = sweep.chain(
        sweep.product({"model.latent_dim": [4, 9]}, seeds),
        sweep.product({"optim.learning_rate": [1e-3, 1e-2]}, seeds),
    )
    with pytest.raises(UserError, match=r"sweep entries 2 \(.*latent_dim=9,train.seed=0\) and 4 "):
        sweep.run_sweep(base, one_at_a_time, str(tmp_path / "a"))
    widths = [{"model.encoder_widths": (16,)}, {"model.encoder_widths": [16]}]
    with pytest.raises(UserError, match=r"have the same overrides \(model.encoder_widths=\(16,\)"):
        sweep.run_sweep(seed_study.get_config(), widths, str(tmp_path / "b"))
    logging = [{"train.log_every": 1}, {"train.log_every": 2}]  # how it runs, not what it learns
    with pytest.raises(UserError, match=r"train the same config"):
        sweep.run_sweep(base, logging, str(tmp_path / "d"))
    # A grid built by arithmetic beside a literal (a probe): the same float32, so the same run
    # twice, reported as two settings with every number equal. Beyond float32, two runs.
    rates = [{"optim.learning_rate": 0.009}, {"optim.learning_rate": 9 * 0.001}]
    assert rates[0] != rates[1]
    with pytest.raises(UserError, match=r"sweep entries 0 \(.*\) and 1 \(.*\) train the same"):
        sweep.run_sweep(base, rates, str(tmp_path / "d"))
    signs = [{"loss.l1_weight": 0.0}, {"loss.l1_weight": -0.0}]  # trained twice (a probe)
    with pytest.raises(UserError, match=r"sweep entries 0 \(.*\) and 1 \(.*\) train the same"):
        sweep.run_sweep(base, signs, str(tmp_path / "d"))
    # Entries that differ in a field the rest leaves unused: data.name beside a data.path,
    # which is read instead, trained one config twice (a probe).
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 5}\n" for i in range(40)))
    on_file = sweep.product({"data.name": ["breast_cancer", "digits"]}, seeds)
    with pytest.raises(UserError, match=r"train the same config .* data.name beside a data.path"):
        sweep.run_sweep(
            overrides_lib.apply_overrides(base, {"data.path": str(path)}),
            on_file,
            str(tmp_path / "e"),
        )
    apply = overrides_lib.apply_overrides
    assert overrides_lib.first_same([apply(base, {"loss.beta": b}) for b in (1.0, 1 + 4e-8)])
    assert not overrides_lib.first_same([apply(base, {"loss.beta": b}) for b in (1.0, 1 + 2e-7)])
    paths = [{"data.path": "/d/a/b.csv"}, {"data.path": "/d/a_b.csv"}]
    with pytest.raises(UserError, match=r"differ but get the same directory name runs/"):
        sweep.run_sweep(base, paths, str(tmp_path / "c"))
    assert not any((tmp_path / w).exists() for w in "abc")  # nothing written


def test_a_stopped_extension_is_pending_and_its_report_keeps_the_lengths_apart(
    tmp_path, monkeypatch, caplog
):
    """A sweep rerun with a larger train.epochs, stopped after its first group: sweep.json said
    every run done, and the report averaged 2-epoch with 1-epoch runs as one setting's seeds.
    The run not yet extended is pending (from epoch 1 to 2), and the report shows train.epochs
    as a parameter, with a warning."""
    from ae_jax.sweeps import runner
    from ae_jax.training.signals import Interrupted

    base = seed_sparse.get_config()
    base.train.epochs, base.train.tensorboard, base.train.figures = 1, False, False
    overrides = [{"model.latent_dim": 2, "train.seed": 0}, {"model.latent_dim": 3, "train.seed": 0}]
    sweep.run_sweep(base, overrides, str(tmp_path))
    real = experiment.train_group

    def train_then_signal(configs, workdirs, **kw):
        out = real(configs, workdirs, **kw)
        signal.raise_signal(signal.SIGTERM)
        return out

    monkeypatch.setattr(runner.experiment, "train_group", train_then_signal)
    base.train.epochs = 2
    with pytest.raises(Interrupted):
        sweep.run_sweep(base, overrides, str(tmp_path))
    runs = json.loads((tmp_path / "sweep.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["done", "pending"]
    assert runs[1]["extends"] == "from epoch 1 to 2"
    caplog.set_level("WARNING")
    out = report.write_report(str(tmp_path), ["eval/loss"])
    assert "the finished runs differ in train.epochs, which no sweep entry sets" in caplog.text
    # A field some runs lack (written by an older version) splits nothing.
    rows = [{"overrides": {}, "config": {"a": 1, "b": 2}}, {"overrides": {}, "config": {"a": 1}}]
    finished._split_by_unswept(rows)
    assert [r["overrides"] for r in rows] == [{}, {}]
    assert sorted((r["model.latent_dim"], r["train.epochs"]) for r in out["rows"]) == [
        (2, 2),
        (3, 1),
    ]


def test_a_data_file_edited_between_two_shards_is_refused(tmp_path, monkeypatch):
    """Shard 0 trained on the file, which was then edited (rows added), and shard 1 trained on
    the new one: results.csv averaged runs of two data sets as seeds. Shard 1's launch is now
    refused, naming the run trained on the earlier file, before it claims a run."""
    from tests.test_data import shopper_rows, write_csv

    write_csv(tmp_path / "d.csv", shopper_rows(40))
    monkeypatch.chdir(tmp_path)  # a path relative to it (config.json saves it absolute)
    base = seed_sparse.get_config()
    base.data.path, base.train.epochs = "d.csv", 1
    base.train.figures = base.train.tensorboard = False
    overrides = [{"train.seed": s} for s in range(2)]
    sweep.run_sweep(base, overrides, str(tmp_path / "s"), shard=(0, 2))
    write_csv(tmp_path / "d.csv", shopper_rows(60))
    refused = r"the data this launch loads \('d.csv'\) is not what run .*train.seed=0' of the"
    with pytest.raises(UserError, match=refused + r" .* restore the file the sweep started with"):
        sweep.run_sweep(base, overrides, str(tmp_path / "s"), shard=(1, 2))
    assert os.listdir(tmp_path / "s" / "runs") == ["train.seed=0"]  # nothing claimed
    # Runs that lack a data field (an older version's) still compare on the fields both know.
    config = tmp_path / "s" / "runs" / "train.seed=0" / "config.json"
    saved = json.loads(config.read_text())
    del saved["data"]["thousands"]
    config.write_text(json.dumps(saved))
    with pytest.raises(UserError, match=refused):
        sweep.run_sweep(base, overrides, str(tmp_path / "s"), shard=(1, 2))


def test_a_metric_asked_twice_is_one_column_and_times_only_are_told(tmp_path, caplog):
    runs = [
        ({"lr": 0.1, "train.seed": s}, "done", {"eval/loss": 0.1 * s, "wall_s": 2.0})
        for s in range(2)
    ]
    _fake_sweep(tmp_path, runs)
    report.write_report(str(tmp_path), ["eval/loss", "eval/loss"])
    with open(tmp_path / "results.csv") as f:
        header = next(csv.reader(f))
    assert header.count("eval/loss mean") == 1
    caplog.set_level("WARNING")
    with pytest.raises(UserError, match=r"--metrics=wall_s: wall-clock times go to timing.csv, w"):
        report.write_report(str(tmp_path), ["wall_s"])  # (an empty report.md was written)
    # Among other metrics, a wall time was dropped from report.md without a word, and offered
    # as a choice by the warning about absent metrics (a probe).
    caplog.clear()
    report.write_report(str(tmp_path), ["eval/loss", "wall_s", "bogus/metric"])
    assert "['wall_s']: wall-clock times go to timing.csv only" in caplog.text
    (absent,) = [r.getMessage() for r in caplog.records if "no finished run has" in r.getMessage()]
    assert "eval/loss" in absent and "wall_s" not in absent and "step" not in absent


def test_an_invalid_base_config_is_blamed_on_the_base_not_entry_0(tmp_path):
    base = seed_sparse.get_config()
    base.model.latent_dim = -3
    with pytest.raises(UserError, match=r"^the sweep's base config \(get_config\(\)\): model\."):
        sweep.run_sweep(base, [{"train.seed": s} for s in range(2)], str(tmp_path / "a"))
    with pytest.raises(UserError, match=r"^sweep entry 1 \(model.latent_dim=-2"):  # an entry's
        sweep.run_sweep(
            seed_sparse.get_config(),
            [{"model.latent_dim": d} for d in (2, -2)],
            str(tmp_path / "b"),
        )


def test_numpy_values_in_sweep_entries_are_their_python_values(tmp_path):
    """np.arange seeds and np.float32 weights were refused ('got int64'); they are the Python
    values they hold (a float32 as the decimal it prints as), in names and configs alike."""
    entries = [
        {"train.seed": s, "loss.l1_weight": np.float32(1e-3), "model.encoder_widths": np.array([8])}
        for s in np.arange(2)
    ]
    runs = sweep.expand(entries, str(tmp_path))
    assert [r.name for r in runs][
        0
    ] == "train.seed=0,loss.l1_weight=0.001,model.encoder_widths=(8,)"
    assert runs[1].overrides == {
        "train.seed": 1,
        "loss.l1_weight": 0.001,
        "model.encoder_widths": [8],
    }
    assert type(runs[1].overrides["train.seed"]) is int
    json.dumps([r.overrides for r in runs])  # sweep.json holds them
    # The public apply_overrides alike (it raised "expected int ..., got int64").
    c = sweep.apply_overrides(seed_sparse.get_config(), entries[1])
    assert (c.train.seed, c.loss.l1_weight, c.model.encoder_widths) == (1, 0.001, (8,))
    assert type(c.train.seed) is int


def test_a_report_on_one_runs_directory_says_what_it_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match=r"is one run's directory \(it holds config.json\), not"):
        report.write_report(str(tmp_path))
    (tmp_path / "encode.jax_export").write_bytes(b"")  # `ae-jax export`'s folder: not a run's
    with pytest.raises(UserError, match=r"is an exported run \(`ae-jax export`'s output\), not"):
        report.write_report(str(tmp_path))


def test_num_models_in_a_sweep_is_refused_not_ignored(tmp_path):
    """--config.train.num_models=2 in a sweep was ignored (one directory per run) though every
    run's config.json recorded it."""
    base = seed_sparse.get_config()
    base.train.num_models = 2
    with pytest.raises(UserError, match=r"train.num_models=2: a sweep trains one model per entry"):
        sweep.run_sweep(base, [{"train.seed": 0}], str(tmp_path / "s"))
    assert not (tmp_path / "s" / "runs").exists()
    # Swept, it is said so, not that the entries train one config (a probe).
    entries = sweep.product({"train.num_models": [1, 3]})
    with pytest.raises(UserError, match=r"train.num_models=3: a sweep trains one model per entry"):
        sweep.run_sweep(seed_sparse.get_config(), entries, str(tmp_path / "t"))


def test_json_files_list_numbered_keys_in_their_numbers_order(tmp_path):
    """eval.json's per-pixel dicts read in pixel order (sorted as text, pixel_10 came before
    pixel_2, and np.array(list(d.values())).reshape(8, 8) scrambled the map); other keys stay
    in alphabetical order, nested dicts too."""
    per_pixel = {f"pixel_{j}": float(j) for j in (10, 2, 0, 1, 100, 11)}
    columns = {"sex": 1, "Region": 2, "age": 3, "City": 4, "city": 5}  # capitals came first
    workdir_lib.write_json(
        str(tmp_path / "e.json"),
        {"z": 1, "recon/mse_per_feature": per_pixel, "recon/per_column": columns},
    )
    back = json.load(open(tmp_path / "e.json"))
    assert list(back) == ["recon/mse_per_feature", "recon/per_column", "z"]
    assert list(back["recon/mse_per_feature"].values()) == [0.0, 1.0, 2.0, 10.0, 11.0, 100.0]
    assert list(back["recon/per_column"]) == ["age", "City", "city", "Region", "sex"]


def test_data_no_run_can_read_is_one_error_before_anything_is_written(tmp_path, monkeypatch):
    """A bad cell in the file every run reads: each group failed on it, the same message per
    run, failed.json files in a new sweep directory, "N run(s) failed ... the others ran" with
    none run. Now one paragraph before sweep.json; a good file is read once for all groups."""
    rows = "".join(f"{i % 7},{i % 5},{i % 3}\n" for i in range(60))
    (tmp_path / "bad.csv").write_text("a,b,c\n" + rows + "1,-,2\n")
    base = _cfg(data__path=str(tmp_path / "bad.csv"))
    entries = [{"model.latent_dim": d, "train.seed": s} for d in (1, 2) for s in (0, 1)]
    with pytest.raises(UserError, match=r"bad.csv': column 'b' .* row 61 \(line 62\) '-'"):
        sweep.run_sweep(base, entries, str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()
    (tmp_path / "good.csv").write_text("a,b,c\n" + rows)
    reads = []
    load = sweep.runner.data_lib.load_dataset
    monkeypatch.setattr(
        sweep.runner.data_lib, "load_dataset", lambda c: reads.append(c.path) or load(c)
    )
    base = _cfg(data__path=str(tmp_path / "good.csv"))
    status = sweep.run_sweep(base, entries, str(tmp_path / "s"))
    assert status["counts"]["done"] == 4 and len(reads) == 1  # two groups, one read
    assert sweep.run_sweep(base, entries, str(tmp_path / "s"))["counts"]["done"] == 4
    assert len(reads) == 1  # nothing left to train: not read again


def test_a_groups_failure_is_said_once_for_its_runs(tmp_path, caplog):
    """A group of 80 runs refused for memory said the same paragraph 80 times as errors, then
    80 times more in the sweep's last lines (a probe): once for the group, with its runs."""
    base = _cfg()
    huge = {"model.encoder_widths": (150000, 150000)}
    entries = [{**huge, "train.seed": s} for s in range(3)] + [{"train.seed": 0}]
    caplog.set_level("INFO")
    status = sweep.run_sweep(base, entries, str(tmp_path / "s"))
    assert status["counts"] == {"done": 1, "diverged": 0, "failed": 3, "running": 0, "pending": 0}
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert said.startswith("runs 0 (model.encoder_widths=(150000,150000),train.seed=0), 1 (")
    assert "GiB" in said  # the memory refusal itself, said once
    for i in range(3):  # each run's own record of it
        run = tmp_path / "s" / "runs" / status["runs"][i]["name"]
        assert json.loads((run / "failed.json").read_text())["error"] in said
    (last,) = sweep_command.outcome_lines(status)  # the command's last lines: one for the three
    assert last.startswith("runs 0 model.encoder_widths=(150000,150000),train.seed=0, 1 ")
    assert " failed: " in last and "GiB" in last


@pytest.mark.parametrize(
    "entries, said",
    [
        # A [0, 1] likelihood on standard-scaled data.
        ([{"loss.recon": "mse"}, {"loss.recon": "bce"}], "loss.recon='bce' (a likelihood on"),
        # The total correlation over a last training batch of one row (129 rows, batch 128).
        (
            [{"loss.tc_weight": 0.0}, {"loss.tc_weight": 5.0}],
            "the total correlation (loss.tc_weight > 0) is estimated",
        ),
    ],
)
def test_a_run_that_cannot_train_on_the_data_is_refused_before_any_run(tmp_path, entries, said):
    """A run that its data refuses was its group's failure, recorded when the group came to
    train, after every group before it had trained and been evaluated (a sweep of an MSE and a
    BCE run on standard-scaled data: the MSE run trained, then the BCE run failed). Now the
    sweep is refused before any run trains, the run named, nothing written."""
    base = seed_vae.get_config()
    base.data.name, base.data.scaling, base.data.limit = "digits", "standard", 129
    base.loss.recon = "mse"
    base.train.epochs, base.train.batch_size = 1, 128
    base.eval.at_end = base.train.figures = base.train.tensorboard = False
    pattern = rf"^sweep run 1 \({re.escape(sweep.expand(entries, '/w')[1].name)}\): "
    with pytest.raises(UserError, match=pattern + re.escape(said)) as e:
        sweep.run_sweep(base, entries, str(tmp_path / "s"))
    assert str(e.value).endswith(" Refused before any run trains."), str(e.value)
    assert not (tmp_path / "s").exists()
    # The run that fits trains alone.
    status = sweep.run_sweep(base, entries[:1], str(tmp_path / "s"))
    assert status["counts"]["done"] == 1


def test_a_models_split_that_does_not_divide_is_refused_before_any_run(tmp_path, monkeypatch):
    """train.parallel='models' over the 4 devices (conftest.py) with groups of 4 and 2 runs
    (--max_models=4): the group of 2 failed when it came to train, after the first had; and
    when every run failed, the last line still said "the others ran ... retries"."""
    base = _cfg()
    base.train.parallel = "models"
    entries = [{"train.seed": s} for s in range(6)]
    with pytest.raises(UserError, match=r"form groups of 4, 2 .* --max_models=4 .* group of 2"):
        sweep.run_sweep(base, entries, str(tmp_path / "s"), max_models=4)
    assert not (tmp_path / "s").exists()
    with pytest.raises(UserError, match=r"runs of --shard=1/2 form groups of 3 \(runs grouped"):
        sweep.run_sweep(base, entries, str(tmp_path / "s"), shard=(1, 2))

    # Grouped as training groups them: chunks of every run, then the finished ones left out
    # (the check grouped the unfinished ones, passing groups of 2 and 2, refusing 4 and 4).
    def check(n_runs, max_models, done):
        runs = checks.expand([{"train.seed": s} for s in range(n_runs)], str(tmp_path / "x"))
        valid = checks.valid_configs(base, runs)
        with monkeypatch.context() as m:
            m.setattr(sweep.runner.checks, "finished", lambda r, c: r.index in done)
            chunks = sweep.runner.plan(base, runs, max_models, valid)[0]
            checks.check_models_split(chunks, max_models, valid, (0, 1))

    with pytest.raises(UserError, match=r"the unfinished runs form groups of 2, 2 \("):
        check(8, 4, {0, 1, 4, 5})
    check(12, 6, {0, 1, 6, 7})  # groups of 4 and 4: no refusal
    # ... and as train_group splits a chunk: runs being extended apart from runs added (a chunk
    # of 8, 6 extended and 2 added, passed; then both groups failed, advised to change
    # train.num_models, which a sweep refuses, and the finished runs got a failed.json).
    base.train.parallel = "auto"
    assert sweep.run_sweep(base, entries, str(tmp_path / "e"))["counts"]["done"] == 6
    base.train.parallel, base.train.epochs = "models", 2
    more = [{"train.seed": s} for s in range(8)]
    with pytest.raises(UserError, match=r"unfinished runs form groups of 6, 2 \(runs grouped"):
        sweep.run_sweep(base, more, str(tmp_path / "e"))
    assert not list((tmp_path / "e").glob("runs/*/failed.json"))
    runs = [{"index": i, "name": f"train.seed={i}", "status": "failed"} for i in range(3)]
    last = sweep_command._failed_line({"runs": runs}, (0, 1), "w")
    assert last.startswith("error: every one of the 3 run(s) failed: 0 (train.seed=0), 1 (")
    assert "the others ran" not in last and last.endswith("(it retries the failed runs).")
    runs[2]["status"] = "done"
    assert "; the others ran." in sweep_command._failed_line({"runs": runs}, (0, 1), "w")


def test_a_batch_that_does_not_split_over_the_devices_is_refused_before_any_run(tmp_path):
    """train.parallel='data' over the 4 devices (conftest.py): a later group's batch of 90
    failed when that group came to train, after the first had trained. The batch is the one
    trained with: train.batch_size=1000 is cut to the 455 training rows, which do not divide."""
    base = _cfg(train__parallel="data")
    entries = [{"train.batch_size": 64}, {"train.batch_size": 90}]
    with pytest.raises(
        UserError, match=r"sweep run 1 \(train.batch_size=90\): train.parallel='data' needs the "
    ):
        sweep.run_sweep(base, entries, str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()  # nothing trained, nothing written
    with pytest.raises(UserError, match=r"\(train.batch_size=1000 cut to the training split's 455"):
        sweep.run_sweep(base, [{"train.batch_size": 1000}], str(tmp_path / "s"))
    status = sweep.run_sweep(
        base, [{"train.batch_size": 64}, {"train.batch_size": 128}], str(tmp_path / "s")
    )
    assert status["counts"]["done"] == 2


def _small_base(epochs: int = 2):
    base = seed_sparse.get_config()
    base.data.name = "digits"
    base.train.epochs, base.eval.at_end, base.train.batch_size = epochs, False, 256
    base.train.figures = base.train.tensorboard = False
    return base


def test_a_run_whose_last_writes_fail_is_recorded_failed_and_the_sweep_goes_on(
    tmp_path, monkeypatch
):
    """An error in a run's last writes (eval.json, summary.json: on the figure writer's
    thread) ended run_sweep with it only once every group was trained, the run left "pending"
    with no failed.json (a probe); a failure in training was recorded and the sweep went on.
    Now it is recorded too; the other run of its group, marked done with it, is left to the
    rerun, which finishes both."""
    entries = [{"model.latent_dim": d, "train.seed": s} for d in (2, 3) for s in (0, 1)]
    finish_run, w = finish.finish_run, tmp_path / "s"

    def fails_for_one(marks, r, *args):
        if r.config.model.latent_dim == 2 and r.config.train.seed == 0:
            raise RuntimeError("eval.json could not be written")
        return finish_run(marks, r, *args)

    monkeypatch.setattr(finish, "finish_run", fails_for_one)
    status = sweep.run_sweep(_small_base(1), entries, str(w))
    by_name = {e["name"]: e for e in status["runs"]}
    failed = by_name["model.latent_dim=2,train.seed=0"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("RuntimeError: eval.json could not be written")
    assert by_name["model.latent_dim=2,train.seed=1"]["status"] == "pending"  # (its group's)
    assert status["counts"] == {"done": 2, "diverged": 0, "failed": 1, "running": 0, "pending": 1}
    monkeypatch.undo()
    status = sweep.run_sweep(_small_base(1), entries, str(w))
    assert (
        status["counts"]["done"] == 4 and not (w / "runs" / failed["name"] / "failed.json").exists()
    )


def test_a_reported_sweep_that_lost_its_sweep_json_is_launched_again(tmp_path):
    """The report of a sweep whose sweep.json is gone says to rerun the sweep's command, which
    writes it anew; the sweep refused its directory as "a folder of other files" (the report's:
    a probe), and advised a new workdir. The report's own files are the sweep's: the launch
    rebuilds sweep.json, training nothing again. A file of the user's is still refused."""
    w = tmp_path / "s"
    entries = sweep.product({"loss.l1_weight": [0.0, 1e-3]}, {"train.seed": [0, 1]})
    sweep.run_sweep(_small_base(1), entries, str(w))
    report.write_report(str(w), ["eval/loss"])
    assert (w / "figures").is_dir() and (w / "report_files.json").exists()
    os.remove(w / "sweep.json")
    run = w / "runs" / "loss.l1_weight=0,train.seed=0"
    metrics = (run / "metrics.jsonl").read_bytes()
    status = sweep.run_sweep(_small_base(1), entries, str(w))
    assert status["counts"]["done"] == 4 and (w / "sweep.json").exists()
    assert (run / "metrics.jsonl").read_bytes() == metrics
    os.remove(w / "sweep.json")
    (w / "figures" / "mine.png").write_bytes(b"")  # not the report's: figures/ is the user's
    with pytest.raises(UserError, match=r"is a folder of other files \(\['figures'\]\)"):
        sweep.run_sweep(_small_base(1), entries, str(w))


def test_a_sweep_whose_product_axes_are_swapped_keeps_its_runs(tmp_path):
    """Swapping a product's two axes names every run the other way round
    ("train.seed=0,loss.l1_weight=0"): the whole sweep trained again under the new names,
    beside the old (a probe). A run whose overrides were recorded under another name keeps it:
    nothing trains again, and the report has each run once."""
    w = tmp_path / "s"
    weights, seeds = {"loss.l1_weight": [0.0, 1e-3]}, {"train.seed": [0, 1]}
    sweep.run_sweep(_small_base(1), sweep.product(weights, seeds), str(w))
    before = sorted(os.listdir(w / "runs"))
    stamp = (w / "runs" / before[0] / "metrics.jsonl").read_bytes()
    status = sweep.run_sweep(_small_base(1), sweep.product(seeds, weights), str(w))
    assert sorted(os.listdir(w / "runs")) == before
    assert sorted(r["name"] for r in status["runs"]) == before
    assert status["counts"]["done"] == 4
    assert (w / "runs" / before[0] / "metrics.jsonl").read_bytes() == stamp
    assert [r["seeds"] for r in report.write_report(str(w), ["eval/loss"])["rows"]] == [2, 2]


def test_a_launch_with_another_list_of_runs_says_which_runs_it_leaves_out(tmp_path, caplog):
    """Launching another get_sweep() list into a sweep's directory replaced sweep.json's list
    without a word; reports then left the runs not in it out. The launch now names them; a
    launch of the same list, or of more runs, says nothing."""
    w = str(tmp_path / "s")
    caplog.set_level("WARNING")
    sweep.run_sweep(_small_base(1), [{"train.seed": s} for s in range(3)], w)
    sweep.run_sweep(_small_base(1), [{"train.seed": s} for s in range(4)], w)  # one more
    assert "not in this launch's list" not in caplog.text
    sweep.run_sweep(_small_base(1), [{"train.seed": 0}, {"train.seed": 3}], w)
    (said,) = [r.getMessage() for r in caplog.records if "this launch's list" in r.getMessage()]
    assert said.startswith(
        "sweep: 2 run(s) that sweep.json listed are not in this launch's list (the config "
        "file's get_sweep() changed?): train.seed=1, train.seed=2; their directories are kept"
    )
    assert os.path.isdir(tmp_path / "s" / "runs" / "train.seed=1")


def test_an_extension_that_fails_for_one_run_fails_that_run_alone(tmp_path):
    """A run whose checkpoints/ are gone cannot be extended: it was recorded 'pending' with the
    command's exit 0, and its refusal failed its whole group (the healthy runs not extended).
    Now it alone is failed, with the reason, and the others train to the longer length."""
    w, overrides = str(tmp_path / "s"), [{"train.seed": s} for s in range(3)]
    sweep.run_sweep(_small_base(2), overrides, w)
    gone = tmp_path / "s" / "runs" / "train.seed=1"
    shutil.rmtree(gone / "checkpoints")
    status = sweep.run_sweep(_small_base(3), overrides, w)
    assert [r["status"] for r in status["runs"]] == ["done", "failed", "done"]
    assert "whose checkpoints/ are gone" in status["runs"][1]["error"]
    assert status["runs"][1]["extends"] == "from epoch 2 to 3"
    for name, epochs in (("train.seed=0", 3), ("train.seed=1", 2), ("train.seed=2", 3)):
        summary = json.loads((tmp_path / "s" / "runs" / name / "summary.json").read_text())
        assert summary["epoch"] == epochs, name
    again = sweep.run_sweep(_small_base(3), overrides, w)  # retried: refused again, still failed
    assert again["counts"] == {"done": 2, "diverged": 0, "failed": 1, "running": 0, "pending": 0}


def test_a_diverged_run_names_its_own_epoch_and_is_extended_with_its_group(tmp_path, caplog):
    """In a group, a run that diverged in epoch 2 of 3 was evaluated as 'epoch 3' (the group's
    last checkpoint) while its summary said 1: eval.json and `ae_jax.load` now name its
    summary's epoch. Raising train.epochs extends it with its group (the healthy run trains as
    one of K = 2 models, so its numbers equal an uninterrupted sweep's, bit for bit), with a
    warning that it trains no further; its evaluation is unchanged."""
    import ae_jax

    base = _small_base(3)
    base.eval.at_end = True
    base.optim.name, base.optim.eps, base.model.output_activation = "sgd", None, "identity"
    overrides = [{"optim.learning_rate": 1e-3}, {"optim.learning_rate": 1e9}]
    w = str(tmp_path / "s")
    status = sweep.run_sweep(base, overrides, w)
    assert [r["status"] for r in status["runs"]] == ["done", "diverged"]
    div = tmp_path / "s" / "runs" / "optim.learning_rate=1e+09"
    summary = json.loads((div / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["epoch"] < 3
    before = json.loads((div / "eval.json").read_text())
    assert before["epoch"] == summary["epoch"] and ae_jax.load(str(div)).epoch == summary["epoch"]
    longer = copy.deepcopy(base)
    longer.train.epochs = 4
    caplog.set_level("INFO")
    status = sweep.run_sweep(longer, overrides, w)
    assert [r["status"] for r in status["runs"]] == ["done", "diverged"]
    assert "diverged (non-finite loss, gradient or update in step" in caplog.text
    # The info lines said of it too "it trains on" and "training continues from the newest
    # checkpoint"; they now say what happens to each run.
    said = {
        r.getMessage().split(": ", 1)[0]: r.getMessage()
        for r in caplog.records
        if "raised from 3 to 4" in r.getMessage()
    }
    assert said[str(div)].endswith("it diverged: nothing trains for it, its group trains on")
    healthy = str(tmp_path / "s" / "runs" / "optim.learning_rate=0.001")
    assert said[healthy].endswith("training continues from the newest checkpoint")
    moved = [r.getMessage() for r in caplog.records if "its evaluation of epoch" in r.getMessage()]
    assert sorted(m.rsplit("; ", 1)[1] for m in moved) == [
        "it diverged, so its parameters stay as they are",
        "it trains on",
    ]
    after = json.loads((div / "eval.json").read_text())
    assert {k: v for k, v in after.items() if k != "figures"} == {
        k: v for k, v in before.items() if k != "figures"
    }
    straight = str(tmp_path / "u")
    sweep.run_sweep(longer, overrides, straight)
    for name in ("optim.learning_rate=0.001", "optim.learning_rate=1e+09"):
        ours, theirs = (
            json.loads((tmp_path / d / "runs" / name / "eval.json").read_text()) for d in "su"
        )
        assert {k: v for k, v in ours.items() if k not in ("figures", "data")} == {
            k: v for k, v in theirs.items() if k not in ("figures", "data")
        }, name


def test_a_train_and_a_sweep_started_together_into_one_directory_are_not_both_taken(
    tmp_path, monkeypatch
):
    """Both passed the "new or empty directory" check when started at the same instant, and
    their files were mixed in one directory. Each now claims the directory and then looks for
    the other's claim (the run: its .lock, then sweep files; the sweep: sweep_config.json, then
    a run's lock), so one of them is refused, and leaves nothing of its own behind."""
    d = str(tmp_path / "both")
    c = _cfg()
    real = experiment.load_dataset

    def a_sweep_records_meanwhile(data):  # between the run's first check and its lock
        shards.check_same_base(d, c, [{"train.seed": 0}], names=["train.seed=0"])
        return real(data)

    monkeypatch.setattr(experiment, "load_dataset", a_sweep_records_meanwhile)
    with pytest.raises(UserError, match=r"became a sweep's directory \(its sweep_config.json\)"):
        experiment.train_and_evaluate(c, d)
    sweep_files = [".sweep_config.lock", "sweep_config.json", "sweep_named.json"]
    assert sorted(os.listdir(d)) == [".lock", *sweep_files]  # no file of the run
    monkeypatch.undo()
    e = str(tmp_path / "other")
    os.makedirs(e)
    with workdir_lib.WorkdirLock(e):  # a run that took its lock after the sweep's first checks
        said = r"became a run's directory while this sweep started \(training by pid "
        with pytest.raises(UserError, match=said):
            sweep.run_sweep(c, [{"train.seed": 0}], e)
    assert sorted(os.listdir(e)) == [".lock", ".sweep_config.lock"]  # no sweep file


def test_a_sweep_whose_validation_values_are_clipped_resumes_and_shards(tmp_path, caplog):
    """seed_vae under a Bernoulli likelihood on breast_cancer clips a few validation values
    into [0, 1], and its run records the fingerprint of the data so clipped: the sweep's second
    shard, or its rerun, compared the data as loaded (or as its own run, under MSE, would see
    it), and was refused as "edited" (probes). Each run's data is compared as that run saw it."""
    c = seed_vae.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end, c.train.tensorboard = 1, False, False, False
    entries = [{"loss.recon": "bce"}, {"loss.recon": "mse"}]
    w = str(tmp_path / "sweep")
    caplog.set_level("WARNING")
    sweep.run_sweep(c, entries, w, shard=(0, 2))
    clipped = "the validation split of 'breast_cancer': 3 of its 3420 values lie"
    assert caplog.text.count(clipped) == 1
    assert sweep.run_sweep(c, entries, w, shard=(1, 2))["counts"]["done"] == 2  # (MSE: no clip)
    c.train.epochs = 2  # a rerun that extends both reads the data again, and trains on
    assert sweep.run_sweep(c, entries, w)["counts"]["done"] == 2
    assert caplog.text.count(clipped) == 2  # the bce run's training, not the comparisons


def test_a_shard_launched_with_another_list_than_the_sweeps_is_warned_of(tmp_path, caplog):
    """A shard takes every n-th run of the list it is launched with: shard 0/2 of three seeds,
    then shard 1/2 of five, left the fifth seed's run (shard 0/2's of that list) untrained,
    without a word at either launch (the last list; sweep.json and the report show it
    pending). A shard whose list is not sweep.json's is warned of; one of the same list is
    not."""
    base = seed_sparse.get_config()
    base.train.epochs, base.eval.at_end, base.train.figures = 1, False, False
    base.train.tensorboard, base.train.checkpoints = False, False
    three = [{"train.seed": s} for s in range(3)]
    five = [*three, {"train.seed": 3}, {"train.seed": 4}]
    work = str(tmp_path / "w")
    caplog.set_level("WARNING")
    sweep.run_sweep(base, three, work, shard=(0, 2))
    assert "is not the one sweep.json holds" not in caplog.text  # (the first launch)
    sweep.run_sweep(base, five, work, shard=(1, 2))
    said = "sweep: this shard's list of 5 runs is not the one sweep.json holds from an earlier"
    assert said in caplog.text and "launch every shard, 0/2 to 1/2, with this list" in caplog.text
    counts = lambda: json.loads((tmp_path / "w" / "sweep.json").read_text())["counts"]
    assert counts()["pending"] == 1  # the fifth seed's: shard 0/2's of this list
    caplog.clear()
    sweep.run_sweep(base, five, work, shard=(0, 2))  # the same list as the last launch's
    assert "is not the one sweep.json holds" not in caplog.text
    assert counts()["done"] == 5


def test_a_full_disk_while_a_sweep_writes_is_one_paragraph_and_the_rerun_finishes(
    tmp_path, monkeypatch
):
    """A sweep whose runs could not be written (a full disk: a figure failed to save) ended in
    four tracebacks, sweep.json listing its runs as running, and the failure of its next group
    raised again as failed.json could not be written either (a probe; that:
    `test_a_failure_that_cannot_be_recorded_is_still_said`). Now: one paragraph, and the same
    command finishes the runs."""
    base = _cfg(train__epochs=2)
    overrides = [{"model.latent_dim": d, "train.seed": s} for d in (3, 5) for s in (0, 1)]
    work = str(tmp_path / "sweep")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(finish, "finish_run", full)
    with pytest.raises(UserError) as e:
        sweep.run_sweep(base, overrides, work, max_models=2)
    assert str(e.value) == (
        "cannot write the sweep's runs (no space left on device): free space or choose "
        "another workdir; the runs written are kept, and the same command finishes the others."
    )
    # (no run left "running": here the last group's progress write already says so)
    counts = json.loads(open(os.path.join(work, "sweep.json")).read())["counts"]
    assert counts["running"] == 0 and counts["done"] == 0, counts
    monkeypatch.undo()
    status = sweep.run_sweep(base, overrides, work, max_models=2)
    assert status["counts"]["done"] == 4


def test_a_failure_that_cannot_be_recorded_is_still_said(tmp_path, caplog):
    """mark_failed wrote failed.json into the run's folder: on a full or read-only disk that
    raised over the failure it recorded, and the sweep stopped with a traceback (a probe)."""
    (tmp_path / "file").write_text("")
    run = status_lib.Run(0, "a", {}, str(tmp_path / "file" / "a"))
    status_lib.mark_failed([run], "it broke")
    assert "run 0 (a) failed: it broke (not recorded in failed.json: Not a directory)" in (
        caplog.text
    )


def test_a_sweep_trains_one_group_ahead_of_its_writes():
    """Groups trained faster than their figures are drawn piled up hundreds of runs, each
    holding its files open (a 768-run sweep ran out of them) and all waited for by a stop
    (22.7 s: a probe). `throttle` waits for the backlog to shrink, or for a stop."""
    release = threading.Event()
    with FigureWriter(processes=False) as writer:
        for _ in range(3):
            writer.submit_run(lambda paths: release.wait(30))
        writer.submit_run(lambda paths: 1 / 0)  # a failed run is finished too
        assert writer.backlog() == 4
        looks = []
        writer.throttle(1, lambda: looks.append(1) or len(looks) > 2)  # a stop: returns
        assert writer.backlog() == 4 and len(looks) == 3
        writer.throttle(9, lambda: looks.append(1) or len(looks) > 5, lambda: False)  # no room
        assert writer.backlog() == 4 and len(looks) == 6
        release.set()
        writer.throttle(0, lambda: False)
        assert writer.backlog() == 0
        writer.throttle(0, lambda: False, lambda: False)  # no room, nothing to wait for: goes
        with pytest.raises(ZeroDivisionError):
            writer.wait()


def test_a_sweep_stopped_inside_a_group_shows_no_run_running(tmp_path, monkeypatch):
    """A stop while a group trains ends the sweep with its runs listed as pending in sweep.json
    (resumed by the same command), not "running" for good: the status written as a stop or an
    error ends the sweep was left out by a mutation that passed every test (the stop tests
    stopped between groups, where an earlier write had the statuses right)."""
    base = seed_sparse.get_config()
    base.train.epochs, base.train.tensorboard = 4, False
    overrides = [{"train.seed": s} for s in (0, 1)]  # one group of two
    monkeypatch.setattr(experiment, "StopRequests", lambda: _Stop(after=4))
    with pytest.raises(Interrupted, match="stopped by SIGTERM"):
        sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    status = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [r["status"] for r in status["runs"]] == ["pending", "pending"]
    monkeypatch.undo()
    sweep.run_sweep(base, overrides, str(tmp_path / "s"))
    status = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [r["status"] for r in status["runs"]] == ["done", "done"]


def test_a_finished_run_being_extended_is_running_in_sweep_json(tmp_path):
    """A done run a launch extends (its train.epochs raised) is "running" while a process holds
    it, "pending" before its turn, "failed" after a failed try: a mutation calling every held
    extension pending passed every test."""
    run = status_lib.Run(0, "a", {}, str(tmp_path / "runs" / "a"))
    os.makedirs(run.workdir)
    summary = {"status": "done", "epoch": 2}
    (tmp_path / "runs" / "a" / "summary.json").write_text(json.dumps(summary))
    assert status_lib.run_status(run, epochs=2)["status"] == "done"
    entry = status_lib.run_status(run, epochs=4)
    assert entry["status"] == "pending" and entry["extends"] == "from epoch 2 to 4"
    with workdir_lib.WorkdirLock(run.workdir):
        assert status_lib.run_status(run, epochs=4)["status"] == "running"
    (tmp_path / "runs" / "a" / "failed.json").write_text(json.dumps({"error": "it broke"}))
    assert status_lib.run_status(run, epochs=4)["status"] == "failed"
