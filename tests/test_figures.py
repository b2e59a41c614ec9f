"""The figure writer: runs finished in submission order, drawings in worker processes equal to
drawings in this process, and the learning curves' panels."""

import concurrent.futures
import dataclasses
import functools
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from ae_jax import default_config, experiment, sweeps
from ae_jax.configs import seed_vae
from ae_jax.errors import UserError
from ae_jax.evaluation import canvas, curves, figure_data, figure_worker, figure_writer, figures
from ae_jax.evaluation.renderer import Renderer
from ae_jax.training import objective, signals


def _inputs(seed: int = 0, kl: float = 0.0) -> figures.FigureInputs:
    rng = np.random.default_rng(seed)
    history = [
        {
            "epoch": e,
            "step": 10 * e,
            "train/loss": 2.0 / e,
            "train/recon": 1.5 / e,
            "train/kl": kl,
            "eval/loss": 2.1 / e,
            "eval/recon": 1.6 / e,
            "eval/kl": kl,
        }
        for e in range(1, 6)
    ]
    return figures.FigureInputs(
        columns=["a", "b", "c"],
        image_shape=None,
        epoch=5,
        is_vae=False,
        history=history,
        codes=rng.normal(size=(40, 3)),
        labels=rng.integers(0, 2, 40),
        mse_per_feature=rng.uniform(0.1, 1.0, 3),
        pca_per_feature=rng.uniform(0.1, 1.0, 3),
    )


class _HeldSlot:
    """A drawing lane that draws only when the test lets that figure through."""

    release: dict[str, threading.Event] = {}
    drawn: dict[str, threading.Event] = {}

    def __init__(self, process: bool, local_lock):
        self.renderer = Renderer()

    def draw(self, job: figures.Drawing) -> str:
        assert _HeldSlot.release[os.path.dirname(job.path)].wait(timeout=60)
        path = job.draw(self.renderer)
        _HeldSlot.drawn[job.path].set()
        return path

    def end(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_runs_are_finished_in_submission_order(tmp_path, monkeypatch):
    """The second run's figures are drawn first, yet the first run is finished first: a run
    is marked done only after every run submitted before it."""
    monkeypatch.setattr(figure_writer, "_Slot", _HeldSlot)
    dirs = [str(tmp_path / "first"), str(tmp_path / "second")]
    plans = {d: figures.plan(d, _inputs(i)) for i, d in enumerate(dirs)}
    _HeldSlot.release = {d: threading.Event() for d in dirs}
    _HeldSlot.drawn = {job.path: threading.Event() for p in plans.values() for job in p}
    finished, second_finished = [], threading.Event()

    def then(name):
        def finish(paths):
            finished.append((name, sorted(os.path.basename(p) for p in paths)))
            if name == "second":
                second_finished.set()

        return finish

    # 4 workers, 3 kinds: "first" holds 3 of them; the 4th takes "second"'s queued figures
    # once all are in (wait() called: here on a thread, as it returns when all are finished).
    writer = figure_writer.FigureWriter(workers=4, steal_at=1, learn_at=1)
    try:
        for i, d in enumerate(dirs):
            writer.submit_figures(d, _inputs(i), then(os.path.basename(d)))
        waiting = threading.Thread(target=writer.wait)
        waiting.start()
        _HeldSlot.release[dirs[1]].set()
        for job in plans[dirs[1]]:
            assert _HeldSlot.drawn[job.path].wait(timeout=60)
        # A writer that finished runs as their figures complete would finish "second" now.
        assert not second_finished.wait(timeout=0.5)
        assert finished == []
        _HeldSlot.release[dirs[0]].set()
        waiting.join(timeout=60)
        assert not waiting.is_alive()
    finally:
        writer.close()
    names = sorted(os.path.basename(j.path) for j in plans[dirs[0]])
    assert finished == [("first", names), ("second", names)]


class _LaneSlot:
    """A drawing lane that records which lane drew what, and holds the jobs of `held`
    directories (or paths) until their event is set."""

    held: dict[str, threading.Event] = {}
    holding = threading.Event()  # a lane is in a held job
    entered: set[str] = set()  # the held jobs begun
    drew: list[tuple[str, str]] = []  # (lane thread, path), in drawing order

    def __init__(self, process: bool, local_lock):
        self.renderer = Renderer()

    @classmethod
    def reset(cls, held: list[str]) -> None:
        cls.held, cls.holding, cls.entered, cls.drew = (
            {d: threading.Event() for d in held},
            threading.Event(),
            set(),
            [],
        )

    def draw(self, job: figures.Drawing) -> str:
        event = _LaneSlot.held.get(job.path, _LaneSlot.held.get(os.path.dirname(job.path)))
        if event is not None:
            _LaneSlot.entered.add(job.path)
            _LaneSlot.holding.set()
            assert event.wait(timeout=60)
        _LaneSlot.drew.append((threading.current_thread().name, job.path))
        return job.path  # what is drawn does not matter here

    def end(self) -> None:
        pass

    def close(self) -> None:
        pass


def _all_drawn(n: int) -> None:
    """Waits until the lanes drew `n` jobs, before the writer closes: closing lets an idle lane
    take a kind its owner has not drawn yet, which a lane scheduled late on a busy machine had
    not (a run on Python 3.12 beside other work: the curves and bars went to lane 1)."""
    deadline = time.monotonic() + 120
    while len(_LaneSlot.drew) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def _lanes_by_kind() -> dict[str, set]:
    """Each kind of figure (its file name) -> the lanes that drew it."""
    lanes: dict[str, set] = {}
    for lane, path in _LaneSlot.drew:
        lanes.setdefault(os.path.basename(path), set()).add(lane)
    return lanes


def test_each_kind_of_figure_is_drawn_by_its_home_worker(tmp_path, monkeypatch):
    """A kind goes to the worker home to the fewest kinds (then jobs) when first seen, and
    stays there (the worker keeps its layouts): with 2 workers, the curves and the bars share
    one."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    _LaneSlot.reset([])
    with figure_writer.FigureWriter(workers=2, steal_at=10**6) as writer:
        for i in range(6):
            writer.submit_figures(str(tmp_path / f"run{i}"), _inputs(i), lambda paths: None)
        _all_drawn(18)
    assert _lanes_by_kind() == {
        "learning_curves.png": {"ae_jax-draw-0"},
        "codes_2d.png": {"ae_jax-draw-1"},
        "recon_per_feature.png": {"ae_jax-draw-0"},
    }
    assert len(_LaneSlot.drew) == 18


def test_a_sweeps_kinds_are_shared_out_by_kind_not_by_the_jobs_sent_so_far(tmp_path, monkeypatch):
    """A sweep starts every run's curves when training ends, then sends each run's other
    figures: a new kind goes to the worker homing the fewest kinds (then jobs), as each kind
    has a job per run. By jobs sent so far, worker 1 was home to all three other kinds, and
    worker 0, done with the curves, took a share of them at a first drawing of each kind."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    _LaneSlot.reset([])
    kinds = ("learning_curves.png", "k1", "k2", "k3")
    monkeypatch.setattr(
        figures,
        "plan",
        lambda out, _: [figures.Drawing(os.path.join(out, k), "x", ()) for k in kinds],
    )
    dirs = [str(tmp_path / f"run{i}") for i in range(6)]
    with figure_writer.FigureWriter(workers=2, steal_at=10**6) as writer:
        curves = writer.start([figures.Drawing(os.path.join(d, kinds[0]), "x", ()) for d in dirs])
        for d in dirs:
            path = os.path.join(d, kinds[0])
            writer.submit_figures(d, None, lambda paths: None, {path: curves[path]})
        _all_drawn(24)
    assert _lanes_by_kind() == {
        "learning_curves.png": {"ae_jax-draw-0"},
        "k1": {"ae_jax-draw-1"},
        "k2": {"ae_jax-draw-1"},
        "k3": {"ae_jax-draw-0"},
    }
    assert len(_LaneSlot.drew) == 24


def test_idle_workers_take_the_newest_queued_jobs_once_all_are_in(tmp_path, monkeypatch):
    """Ten curves, all of worker 0's kind, its first held: worker 1 takes none of them before
    wait() (more could come, and a kind's first drawing is dear), then the newest ones while
    the queue holds at least steal_at = 2."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    dirs = [str(tmp_path / f"run{i}") for i in range(10)]
    _LaneSlot.reset([dirs[0]])
    jobs = [figures.Drawing(os.path.join(d, "learning_curves.png"), "x", ()) for d in dirs]
    with figure_writer.FigureWriter(workers=2, steal_at=2, learn_at=2) as writer:
        started = writer.start(jobs)
        assert _LaneSlot.holding.wait(timeout=60)  # worker 0 is in its first job
        # A worker 1 that took jobs at once would have drawn the newest by now.
        newest = started[jobs[-1].path]
        assert not concurrent.futures.wait([newest], timeout=0.5).done
        assert _LaneSlot.drew == []  # worker 0 is held; worker 1 waits
        writer.wait()  # nothing to finish: returns at once, and lets worker 1 take jobs
        for job in jobs[2:]:
            assert started[job.path].result(timeout=60) == job.path
        _LaneSlot.held[dirs[0]].set()
        # Drawn before the writer closes (a closing writer's idle workers take any job).
        assert started[jobs[1].path].result(timeout=60) == jobs[1].path
    by_lane = {lane: [p for t, p in _LaneSlot.drew if t == lane] for lane, _ in _LaneSlot.drew}
    assert by_lane["ae_jax-draw-1"] == [j.path for j in reversed(jobs[2:])]
    assert by_lane["ae_jax-draw-0"] == [jobs[0].path, jobs[1].path]


def test_an_idle_worker_takes_kinds_it_has_drawn_first(tmp_path, monkeypatch):
    """Worker 0 (held on its first curve) owns curves and bar charts, worker 1 code scatters.
    Once all are in, worker 1 takes the newest job (a curve), then the other curves, newest
    first, before any bar chart: each kind it takes up costs it a first drawing."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    held = str(tmp_path / "held")
    _LaneSlot.reset([held])
    kinds = ("codes_2d.png", "recon_per_feature.png", "learning_curves.png")
    jobs = [figures.Drawing(os.path.join(held, "learning_curves.png"), "x", ())] + [
        figures.Drawing(str(tmp_path / f"run{i}" / kind), "x", ())
        for i in range(4)
        for kind in kinds
    ]
    with figure_writer.FigureWriter(workers=2, steal_at=1, learn_at=1) as writer:
        started = writer.start(jobs)
        assert _LaneSlot.holding.wait(timeout=60)  # worker 0 is in its first job
        writer.wait()  # nothing to finish: returns at once, and lets worker 1 take jobs
        for job in jobs[1:]:
            assert started[job.path].result(timeout=60) == job.path
        _LaneSlot.held[held].set()
    by_lane = {lane: [p for t, p in _LaneSlot.drew if t == lane] for lane, _ in _LaneSlot.drew}
    name = lambda p: f"{os.path.basename(os.path.dirname(p))}/{os.path.basename(p)}"  # noqa: E731
    assert [name(p) for p in by_lane["ae_jax-draw-1"]] == [
        *(f"run{i}/codes_2d.png" for i in range(4)),  # its own first
        *(f"run{i}/learning_curves.png" for i in (3, 2, 1, 0)),
        *(f"run{i}/recon_per_feature.png" for i in (3, 2, 1, 0)),
    ]
    assert [name(p) for p in by_lane["ae_jax-draw-0"]] == ["held/learning_curves.png"]


@pytest.mark.parametrize("queued", [4, 5])
def test_an_idle_worker_takes_up_a_new_kind_only_from_a_queue_of_learn_at(
    tmp_path, monkeypatch, queued
):
    """Worker 0 owns k1 (held in its first), worker 1 k2. Once all are in and worker 1 has
    drawn its k2s, it takes a k1 (new to it: a first drawing) only if worker 0's queue holds
    learn_at = 5: from 4 it took the newest, and drew a layout worker 0 would have reused
    (the benchmark's sweep ended later by such a last job)."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    k1 = [figures.Drawing(str(tmp_path / f"run{i}" / "k1"), "x", ()) for i in range(queued + 1)]
    k2 = [figures.Drawing(str(tmp_path / f"run{i}" / "k2"), "x", ()) for i in range(2)]
    _LaneSlot.reset([k1[0].path])
    with figure_writer.FigureWriter(workers=2, steal_at=1, learn_at=5) as writer:
        started = writer.start(k1 + k2)
        assert _LaneSlot.holding.wait(timeout=60)  # worker 0 is in its first k1
        writer.wait()  # nothing to finish: returns at once, and lets worker 1 take jobs
        for job in k2:
            assert started[job.path].result(timeout=60) == job.path
        newest = started[k1[-1].path]
        if queued >= 5:  # taken while worker 0 is held
            assert newest.result(timeout=60) == k1[-1].path
        else:  # a worker 1 that took it would have drawn it by now
            assert not concurrent.futures.wait([newest], timeout=0.5).done
        _LaneSlot.held[k1[0].path].set()
        for job in k1:
            assert started[job.path].result(timeout=60) == job.path
    by_lane = {lane: [p for t, p in _LaneSlot.drew if t == lane] for lane, _ in _LaneSlot.drew}
    assert by_lane["ae_jax-draw-1"][:2] == [j.path for j in k2]
    took = [p for p in by_lane["ae_jax-draw-1"] if os.path.basename(p) == "k1"]
    if queued >= 5:  # the newest, then (k1 now drawn by it too) the next newest, ...
        assert took and took[0] == k1[-1].path
    else:
        assert took == []
        assert by_lane["ae_jax-draw-0"] == [j.path for j in k1]


def test_an_idle_worker_takes_a_kind_it_has_drawn_from_any_queue_of_steal_at(tmp_path, monkeypatch):
    """Once all jobs are in, idle worker 1 (which has drawn k1) takes from worker 0's 2 k1 jobs
    (steal_at = 2), though worker 2's queue is longer: its 5 jobs are of a kind new to worker 1
    (learn_at = 100). It looked at the longest queue only, and slept (a review); from 1 k1 job
    it takes none."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    _LaneSlot.reset([])
    writer = figure_writer.FigureWriter(workers=3, steal_at=2, learn_at=100)
    job = lambda k, i: (  # noqa: E731
        concurrent.futures.Future(),
        figures.Drawing(str(tmp_path / f"run{i}" / k), "x", ()),
        k,
    )
    try:
        with writer._ready:  # (no lane is woken: the state is set, then worker 1 asked)
            writer._all_sent = True
            writer._drawn[:] = [{"k1"}, {"k1"}, {"k2"}]
            writer._queues[0].extend(job("k1", i) for i in range(2))
            writer._queues[2].extend(job("k2", i) for i in range(5))
            assert writer._worth(1, 0) and not writer._worth(1, 2)
            writer._queues[0].pop()
            assert not writer._worth(1, 0)  # fewer than steal_at
            writer._queues[0].append(job("k1", 1))
        taken: list = []
        asking = threading.Thread(target=lambda: taken.append(writer._next(1)), daemon=True)
        asking.start()
        asking.join(timeout=60)
        assert taken and taken[0][2] == "k1" and taken[0][1].path.endswith("run1/k1")
    finally:
        writer.close()


def test_an_idle_worker_takes_a_kind_its_owner_has_not_drawn(tmp_path, monkeypatch):
    """A single run's three figures on two workers: the curves (held) and the bar chart are
    worker 0's kinds, the code scatter worker 1's. Once all are in, worker 1 draws the bar
    chart, though worker 0's queue holds fewer than steal_at jobs: worker 0 has no layout of
    it to reuse."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    run = str(tmp_path / "run")
    kinds = ("learning_curves.png", "codes_2d.png", "recon_per_feature.png")
    jobs = [figures.Drawing(os.path.join(run, k), "x", ()) for k in kinds]
    _LaneSlot.reset([jobs[0].path])
    with figure_writer.FigureWriter(workers=2) as writer:  # steal_at 8
        started = writer.start(jobs)
        assert _LaneSlot.holding.wait(timeout=60)  # worker 0 is in the curves
        assert started[jobs[1].path].result(timeout=60)
        newest = started[jobs[2].path]  # worker 1 takes nothing before wait()
        assert not concurrent.futures.wait([newest], timeout=0.5).done
        writer.wait()
        assert newest.result(timeout=60) == jobs[2].path
        _LaneSlot.held[jobs[0].path].set()
    by_lane = {lane: [p for t, p in _LaneSlot.drew if t == lane] for lane, _ in _LaneSlot.drew}
    assert by_lane["ae_jax-draw-1"] == [jobs[1].path, jobs[2].path]
    assert by_lane["ae_jax-draw-0"] == [jobs[0].path]


def test_a_stop_leaves_no_finished_run_behind_an_unfinished_one(tmp_path, monkeypatch):
    """Runs finished after a stop are a prefix of those submitted, as when one queue fed
    every worker. Worker 0 owns k1 (held in run0's), worker 1 k2; once all are in, worker 1
    draws its k2s, then run3's k1 and run2's (held), so at the stop run1's k1 is still queued
    and is cancelled: run0 is finished, and neither run2 nor run3, whose figures are drawn."""
    monkeypatch.setattr(figure_writer, "_Slot", _LaneSlot)
    path = lambda r, k: str(tmp_path / f"run{r}" / k)  # noqa: E731
    monkeypatch.setattr(
        figures,
        "plan",
        lambda out, inputs: [figures.Drawing(os.path.join(out, k), "x", ()) for k in ("k1", "k2")],
    )
    _LaneSlot.reset([path(0, "k1"), path(2, "k1")])
    finished = []
    writer = figure_writer.FigureWriter(workers=2, steal_at=1, learn_at=1)
    try:
        for r in range(4):
            writer.submit_figures(
                str(tmp_path / f"run{r}"), None, lambda p, r=r: finished.append(r)
            )

        def stop():  # once worker 1 has drawn run3's k1 and holds run2's
            drawn = {p for _, p in _LaneSlot.drew}
            if path(3, "k1") in drawn and path(2, "k1") in _LaneSlot.entered:
                raise signals.Interrupted(signal.SIGTERM, "while writing figures")

        with pytest.raises(signals.Interrupted):
            writer.wait(stop)
    finally:
        for event in _LaneSlot.held.values():
            event.set()
        writer.close()
    assert path(1, "k1") not in {p for _, p in _LaneSlot.drew}  # cancelled
    assert finished == [0]


def _pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def test_worker_processes_draw_what_this_process_draws(tmp_path):
    inputs = _inputs(3)
    here = figures.write_figures(str(tmp_path / "here"), inputs)
    got = []
    with figure_writer.FigureWriter(workers=2) as writer:
        writer.submit_figures(str(tmp_path / "workers"), inputs, got.extend)
    assert [os.path.basename(p) for p in here] == [os.path.basename(p) for p in got]
    assert [os.path.basename(p) for p in here] == [
        "learning_curves.png",
        "codes_2d.png",
        "recon_per_feature.png",
    ]
    for a, b in zip(here, got, strict=True):
        np.testing.assert_array_equal(_pixels(a), _pixels(b))


@pytest.mark.parametrize("value, processes", [("0", 0), ("3", 3), ("", None)])
def test_figure_workers_env_sets_how_many_processes_draw(value, processes, tmp_path, monkeypatch):
    """AE_JAX_FIGURE_WORKERS: 0 draws in this process (no worker starts), N starts N workers,
    unset one per core (at most MAX_WORKERS); the figures are the same pixels each way."""
    monkeypatch.setenv(figure_worker.WORKERS_ENV, value)
    per_core = max(1, min(figure_worker.MAX_WORKERS, os.cpu_count() or 1))
    want = per_core if processes is None else processes
    inputs, got = _inputs(3), []
    here = figures.write_figures(str(tmp_path / "here"), inputs)
    with figure_writer.FigureWriter() as writer:
        assert sum(slot.worker is not None for slot in writer._all) == want
        assert len(writer._all) == max(want, 1)
        writer.submit_figures(str(tmp_path / "w"), inputs, got.extend)
    for a, b in zip(here, got, strict=True):
        np.testing.assert_array_equal(_pixels(a), _pixels(b))


def _state(pid: int) -> str:
    """A process's state letter (R, S, Z for a zombie, ...), or "" once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _started_interpreters(monkeypatch) -> list:
    """The command lines of the worker interpreters started from now on (filled as they are)."""
    started = []
    popen = figure_worker.subprocess.Popen

    def counting(args, **kw):
        started.append(args)
        return popen(args, **kw)

    monkeypatch.setattr(figure_worker.subprocess, "Popen", counting)
    return started


@pytest.mark.skipif(not figure_worker.FORKS, reason="workers are forked on Linux only")
def test_one_interpreter_starts_and_is_forked_into_the_other_workers(tmp_path, monkeypatch):
    """Three workers cost one interpreter's start (matplotlib loaded once, ~0.6 CPU-s): the
    others are its forks, each a process of its own that draws its kinds, and every one ends
    with the writer."""
    started = _started_interpreters(monkeypatch)
    inputs, got = _inputs(3), []
    here = figures.write_figures(str(tmp_path / "here"), inputs)
    writer = figure_writer.FigureWriter(workers=3)
    try:
        writer.submit_figures(str(tmp_path / "w"), inputs, got.extend)
        writer.wait()
        lanes = [slot.worker for slot in writer._all]
        assert all(lane is not None and lane.pid is not None for lane in lanes)  # none died
        assert all(writer._drawn)  # each drew one of the run's kinds itself
        pids = [lane.pid for lane in lanes]
        first = lanes[0].process.pid
        assert pids[0] == first and len(set(pids)) == 3
        assert [_parent(pid) for pid in pids[1:]] == [first, first]
    finally:
        writer.close()
    assert len(started) == 1
    assert [_state(pid) for pid in pids] == ["", "", ""]  # ended and reaped: no zombies
    assert len(got) == len(here)
    for a, b in zip(here, got, strict=True):
        np.testing.assert_array_equal(_pixels(a), _pixels(b))


def test_without_forking_each_worker_is_an_interpreter_of_its_own(tmp_path, monkeypatch):
    """Elsewhere than on Linux (here: the switch turned off) every worker is started as its
    own interpreter, and they draw what this process draws."""
    monkeypatch.setattr(figure_worker, "FORKS", False)
    started = _started_interpreters(monkeypatch)
    inputs, got = _inputs(3), []
    here = figures.write_figures(str(tmp_path / "here"), inputs)
    with figure_writer.FigureWriter(workers=2) as writer:
        writer.submit_figures(str(tmp_path / "w"), inputs, got.extend)
        writer.wait()
        lanes = [slot.worker for slot in writer._all]
        assert all(lane is not None and lane.process is not None for lane in lanes)
        assert len({lane.pid for lane in lanes}) == 2 and all(writer._drawn)
    assert len(started) == 2 and all(len(args) == 3 for args in started)  # no lanes to fork
    for a, b in zip(here, got, strict=True):
        np.testing.assert_array_equal(_pixels(a), _pixels(b))


@pytest.mark.skipif(not figure_worker.FORKS, reason="workers are forked on Linux only")
def test_a_forked_worker_that_dies_leaves_its_figures_to_this_process(tmp_path):
    inputs, got = _inputs(3), []
    here = figures.write_figures(str(tmp_path / "here"), inputs)
    writer = figure_writer.FigureWriter(workers=2, steal_at=10**6)
    try:
        writer.submit_figures(str(tmp_path / "a"), inputs, lambda paths: None)
        writer.wait()
        slot = writer._all[1]
        assert slot.worker is not None and slot.worker.process is None  # a forked one
        os.kill(slot.worker.pid, signal.SIGKILL)
        writer.submit_figures(str(tmp_path / "b"), inputs, got.extend)
        writer.wait()
        assert slot.worker is None  # its kinds now drawn in this process
        assert writer._all[0].worker is not None  # the first worker draws on
    finally:
        writer.close()
    for a, b in zip(here, got, strict=True):
        np.testing.assert_array_equal(_pixels(a), _pixels(b))


# A training process started with stdin and stdout closed (a daemon, `cmd <&- >&-`): its pipes
# to the workers get the lowest free numbers, 0 and 1, which the first worker's own stdin and
# stdout took over (it died; the figures were drawn in the training process).
CLOSED_STDIO = """
import dataclasses, os, sys
from ae_jax.evaluation import figure_writer, figures
history = [{"epoch": e, "step": e, "train/loss": 1.0 / e, "eval/loss": 1.1 / e} for e in (1, 2)]
with figure_writer.FigureWriter(workers=3, steal_at=10**6) as writer:
    for i, kind in enumerate(("a", "b", "c")):  # a kind, so a worker, each
        path = os.path.join(sys.argv[1], kind + ".png")
        jobs = [dataclasses.replace(j, path=path) for j in figures.curves("", history, "loss")]
        [f.result() for f in writer.start(jobs).values()]
    alive = [s.worker is not None and s.worker.pid is not None for s in writer._all]
    print("alive:", alive, file=sys.stderr, flush=True)
"""


def test_a_message_cut_short_reads_as_the_end_of_the_stream():
    """A job cut short (its writer died writing it) ends the worker like a closed pipe: it
    raised in pickle, and the first worker left its forked ones unreaped."""
    stream = io.BytesIO()
    figure_worker.write_message(stream, ("ok", "x" * 100))
    data = stream.getvalue()
    assert figure_worker.read_message(io.BytesIO(data)) == ("ok", "x" * 100)
    for cut in (1, 2, len(data) - 5):
        assert figure_worker.read_message(io.BytesIO(data[:-cut])) is None


@pytest.mark.skipif(not figure_worker.FORKS, reason="workers are forked on Linux only")
def test_workers_start_from_a_process_with_stdin_and_stdout_closed(tmp_path):
    proc = subprocess.run(
        ["bash", "-c", 'exec "$0" -c "$1" "$2" <&- >&-', sys.executable, CLOSED_STDIO, tmp_path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "alive: [True, True, True]" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "²", "99999"])
def test_a_bad_figure_workers_env_is_refused_before_the_data_is_read(value, tmp_path, monkeypatch):
    """(99999 started that many threads drawing in this process, once the worker processes
    could not be started: the command hung.)"""
    monkeypatch.setenv(figure_worker.WORKERS_ENV, value)
    c = default_config()
    c.data.path = str(tmp_path / "missing.csv")  # read after the check: not this error
    message = rf"AE_JAX_FIGURE_WORKERS='{re.escape(value)}': " + (
        "more worker processes than this machine has cores" if value == "99999" else "expected"
    )
    with pytest.raises(UserError, match=message):
        experiment.train_and_evaluate(c, str(tmp_path / "run"))
    with pytest.raises(UserError, match=message):
        sweeps.run_sweep(c, [{"train.seed": 0}], str(tmp_path / "sweep"))
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="reads /proc")
def test_workers_run_with_one_blas_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")  # the user's setting, for their process
    with figure_writer.FigureWriter(workers=1) as writer:
        (slot,) = writer._all
        writer.submit_figures(str(tmp_path), _inputs(), lambda paths: None)
        writer.wait()  # drawn by the worker: it is running (its environment readable)
        assert slot.worker is not None and slot.worker.pid is not None
        with open(f"/proc/{slot.worker.pid}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    assert env[b"OPENBLAS_NUM_THREADS"] == env[b"MKL_NUM_THREADS"] == b"1"
    assert env[b"JAX_PLATFORMS"] == b"cpu"


def test_a_failed_drawing_is_raised_by_wait(tmp_path):
    bad = _inputs()
    bad.labels = np.array([0, 1, 0])  # 3 labels for 40 codes: fails inside the worker
    with figure_writer.FigureWriter(workers=2) as writer:
        writer.submit_figures(str(tmp_path / "bad"), bad, lambda paths: None)
        with pytest.raises(RuntimeError, match="codes_2d.png"):
            writer.wait()


def test_a_failed_drawing_goes_to_its_runs_failed_and_the_next_run_is_written(tmp_path):
    """A sweep records a run whose figures fail and goes on: `failed` is given the error, the
    run's `then` is not called, wait() raises nothing, and the next run is written."""
    bad, said, written = _inputs(), [], []
    bad.labels = np.array([0, 1, 0])  # 3 labels for 40 codes: fails inside the worker
    with figure_writer.FigureWriter(workers=2) as writer:
        writer.submit_figures(str(tmp_path / "bad"), bad, written.append, failed=said.append)
        writer.submit_figures(str(tmp_path / "ok"), _inputs(), written.append, failed=said.append)
        writer.wait()
    ((error,),) = [said]
    assert isinstance(error, RuntimeError) and "codes_2d.png" in str(error)
    assert len(written) == 1 and all("/ok/" in p for p in written[0])


@pytest.mark.parametrize("kl, panels", [(0.0, 2), (0.5, 3)])
def test_learning_curves_leave_out_a_term_that_is_zero_throughout(tmp_path, kl, panels):
    """A model without a KL term gets no KL panel (a flat line at 0 says nothing)."""
    path = str(tmp_path / "curves.png")
    Renderer().learning_curves(path, _inputs(kl=kl).history, figures.curve_units("squared"))
    width, _ = Image.open(path).size
    assert width == round(panels * 3.2 * 150)  # 3.2 inches per panel at 150 dpi


def test_many_learning_curve_panels_wrap_four_to_a_row(tmp_path):
    """Ten terms (a beta-TC-VAE with MMD and warm-up) were one 32-inch strip; now rows of 4."""
    terms = ["loss", "recon", "l1", "kl", "kl_weight", "tc", "mi", "dim_kl", "mmd", "mse"]
    history = [
        {
            "epoch": e,
            **{f"{s}/{t}": (i + 1.0) / e for i, t in enumerate(terms) for s in ("train", "eval")},
        }
        for e in (1, 2, 3)
    ]
    path = str(tmp_path / "curves.png")
    Renderer().learning_curves(path, history, figures.curve_units("squared"))
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[:2] == (3 * round(3.0 * 150), 4 * round(3.2 * 150))  # 3 rows of 4 panels
    assert (image[2 * 450 :, 2 * 480 :] == 255).all()  # the last row's 2 panels, then white


def test_finishing_runs_says_how_far_it_is(tmp_path, monkeypatch, caplog):
    """While runs are being finished in the background, a line says how many are written."""
    monkeypatch.setattr(figure_writer, "_Slot", _HeldSlot)
    monkeypatch.setattr(figure_writer, "PROGRESS_SECONDS", 0.0)
    dirs = [str(tmp_path / f"run{i}") for i in range(3)]
    _HeldSlot.release = {d: threading.Event() for d in dirs}
    _HeldSlot.drawn = {j.path: threading.Event() for d in dirs for j in figures.plan(d, _inputs())}
    caplog.set_level("INFO")
    with figure_writer.FigureWriter(workers=2) as writer:
        for d in dirs:
            writer.submit_figures(d, _inputs(), lambda paths: None)
        for event in _HeldSlot.release.values():  # all three submitted before any finishes
            event.set()
    lines = [r.getMessage() for r in caplog.records if "run(s) written" in r.getMessage()]
    assert lines == [
        "figures and summaries: 1 of 3 run(s) written",
        "figures and summaries: 2 of 3 run(s) written",
    ]


def test_finishing_runs_without_figures_says_how_far_it_is_too(monkeypatch, caplog):
    """Runs without figures (train.figures=False) were finished with no line: 8,000 runs'
    summaries were written for 27 s in silence (a probe)."""
    monkeypatch.setattr(figure_writer, "PROGRESS_SECONDS", 0.0)
    caplog.set_level("INFO")
    done, go = [], threading.Event()

    def then(paths, i):
        go.wait()  # all three submitted before any finishes
        done.append((i, paths))

    with figure_writer.FigureWriter(processes=False) as writer:
        for i in range(3):
            writer.submit_run(functools.partial(then, i=i))
        go.set()
    assert done == [(0, []), (1, []), (2, [])]  # in order, with no figure
    lines = [r.getMessage() for r in caplog.records if "run(s) written" in r.getMessage()]
    assert lines == ["summaries: 1 of 3 run(s) written", "summaries: 2 of 3 run(s) written"]


def test_a_reused_layout_is_drawn_once_then_only_its_data(tmp_path, monkeypatch):
    """savefig lays out a figure that has a layout engine (even the placeholder tight_layout
    leaves) with a whole extra drawing pass; ours have none: a layout's first file takes one
    pass (of the static layer, which is kept), later files none (only the data and what
    follows it are drawn, `canvas.Template`). Per figure: the learning curves' panels (loss and
    recon here) are figures of their own, so theirs take two."""
    from matplotlib.figure import Figure

    images = _inputs(1)
    images.image_shape = (4, 4)
    images.x_show = np.random.default_rng(0).uniform(size=(3, 16))
    images.recon_show = images.x_show[::-1]
    images.mse_per_feature = None
    passes = []
    draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda fig, r: (passes.append(fig), draw(fig, r))[1])
    for inputs, names in (
        (_inputs(0), ["codes_2d.png", "learning_curves.png", "recon_per_feature.png"]),
        (images, ["codes_2d.png", "learning_curves.png", "reconstructions.png"]),
    ):
        renderer = Renderer()
        per_file = []
        for run in range(3):
            passes.clear()
            drawn = figures.write_figures(str(tmp_path / f"{run}"), inputs, renderer)
            assert sorted(os.path.basename(p) for p in drawn) == names
            per_file.append(len(passes))
        assert per_file == [4, 0, 0]


def test_bars_that_cannot_be_drawn_are_marked(tmp_path, monkeypatch):
    """On the log axis a value below its floor (0, or many decades under the largest) and a
    NaN have no visible bar: each gets a marker at the floor and a note in the axis label."""
    from ae_jax.evaluation import canvas

    saved = []
    save = canvas.save
    monkeypatch.setattr(canvas, "save", lambda t, *a, **k: (saved.append(t.fig), save(t, *a, **k)))
    model = np.array([0.2, 0.1, np.nan, 0.3])
    pca = np.array([1e-3, 1e-9, 0.05, 0.0])
    r = Renderer()
    r.per_feature_bars(str(tmp_path / "a.png"), list("abcd"), model, pca, "error", "t", True)
    from matplotlib.collections import PolyCollection

    ax = saved[-1].axes[0]
    # 6 decades (it was 7: the floor, 6 decades below the largest bar, was snapped down to a
    # tick and the right end up), ending on ticks; the largest bar, 0.3, inside.
    floor, right = ax.get_xlim()
    assert right / floor == pytest.approx(1e6) and 0.3 < right and floor < 1e-3
    bars = [c for c in ax.collections if isinstance(c, PolyCollection)]  # model, PCA
    marks = [c.get_offsets() for c in ax.collections if c not in bars]
    assert [len(m) for m in marks] == [0, 1, 2, 0]  # model: below, NaN; PCA: below, NaN
    extents = [[p.get_extents() for p in c.get_paths()] for c in bars]
    # Each bar spans the axis's left end (the floor) to its value, or to the floor.
    np.testing.assert_allclose([[e.x0 for e in b] for b in extents], np.full((2, 4), floor))
    np.testing.assert_allclose(
        [[e.x1 for e in b] for b in extents], [[0.2, 0.1, floor, 0.3], [1e-3, floor, 0.05, floor]]
    )
    bar_rows = [[(e.y0 + e.y1) / 2 for e in b] for b in extents]
    np.testing.assert_allclose(marks[1], [[floor, bar_rows[0][2]]])  # the model's NaN, row c
    np.testing.assert_allclose(marks[2], [[floor, bar_rows[1][1]], [floor, bar_rows[1][3]]])
    assert (
        ax.get_xlabel() == "error\n\u25c0 value below the axis, \u00d7 not a number"
    )  # (a line of its own: "; ..." ran off a narrow figure)
    # The same layout for the next run, with every value drawable: no marker, no note.
    r.per_feature_bars(
        str(tmp_path / "b.png"), list("abcd"), np.full(4, 0.2), pca + 0.1, "error", "t", True
    )
    assert [len(c.get_offsets()) for c in ax.collections if c not in bars] == [0, 0, 0, 0]
    assert ax.get_xlabel() == "error"
    # One tiny value (1e-30): ticks two decades apart put the right end at 1e6 and every bar
    # below the axis (a review); the right end is now a decade's tick above the largest bar.
    r.per_feature_bars(
        str(tmp_path / "c.png"), list("abc"), np.array([1e-30, 0.5, 1.0]), None, "error", "t", True
    )
    np.testing.assert_allclose(saved[-1].axes[0].get_xlim(), (1e-5, 10.0))


def test_png_writer_gives_back_the_pixels_the_dpi_and_the_text(tmp_path):
    """Our PNG encoder (savefig's Pillow encoder spent a quarter of a figure choosing row
    filters): any decoder reads back the exact pixels, the physical size and the text chunks."""
    from ae_jax.evaluation import png

    rgba = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    rgba[2:5] = 255  # a run of identical rows, as on a figure
    path = str(tmp_path / "x.png")
    png.write(path, rgba, 150, {"Software": "test"})
    with Image.open(path) as im:
        assert (im.mode, im.size) == ("RGBA", (5, 7))
        np.testing.assert_array_equal(np.asarray(im), rgba)
        assert im.info["Software"] == "test"
        np.testing.assert_allclose(im.info["dpi"], (150, 150), atol=0.02)  # 5906 dots per metre
    side_by_side = str(tmp_path / "row.png")  # a list: its images left to right
    png.write(side_by_side, [rgba[:, :2], rgba[:, 2:3], rgba[:, 3:]], 150)
    with Image.open(side_by_side) as im:
        np.testing.assert_array_equal(np.asarray(im), rgba)
    with pytest.raises(ValueError, match="one height"):
        png.encode([rgba, rgba[1:]], 150)
    with pytest.raises(ValueError, match=r"\(H, W, 4\) uint8"):
        png.encode(rgba[..., :3], 150)
    with pytest.raises(ValueError, match=r"non-empty"):
        png.encode(rgba[:0], 150)  # PNG has no 0-row image
    with pytest.raises(ValueError, match="dpi"):
        png.encode(rgba, float("nan"))
    for bad in ("", "a\0b", "k" * 80, "z\u2080"):
        with pytest.raises(ValueError, match="text chunk"):
            png.encode(rgba, 150, {bad: "x"})


def test_a_figure_file_holds_the_pixels_matplotlib_drew(tmp_path, monkeypatch):
    """The PNG of a drawn figure is its canvas, pixel for pixel, at the renderer's dpi."""
    from ae_jax.evaluation import canvas

    saved = []
    save = canvas.save
    monkeypatch.setattr(canvas, "save", lambda t, *a, **k: (saved.append(t.fig), save(t, *a, **k)))
    path = str(tmp_path / "bars.png")
    Renderer().per_feature_bars(path, list("abc"), np.ones(3), np.full(3, 0.5), "error", "t")
    canvas = np.asarray(saved[0].canvas.buffer_rgba())
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.asarray(im), canvas)
        assert im.size == (round(6.4 * 150), round(2.6 * 150))  # the figure's inches x dpi


def test_a_curve_point_without_neighbours_is_drawn_as_a_dot(tmp_path, monkeypatch):
    """A one-epoch run's curves are single points, which a line does not draw: they (and a
    point between NaNs) get a dot; the next run on the same layout, with whole lines, none."""
    from ae_jax.evaluation import canvas

    saved = []
    save_row = canvas.save_row
    monkeypatch.setattr(
        canvas,
        "save_row",
        lambda panels, path: (saved.append(panels[0][0].fig), save_row(panels, path)),
    )
    units = figures.curve_units("squared error")
    r = Renderer()
    one = [{"epoch": 1, "train/loss": 2.0, "eval/loss": 2.1}]
    r.learning_curves(str(tmp_path / "a.png"), one, units)
    ax = saved[-1].axes[0]
    assert [(ln.get_marker(), list(ln.get_markevery())) for ln in ax.lines] == [
        ("o", [True]),
        ("o", [True]),
    ]
    assert [h.get_marker() for h in ax.get_legend().legend_handles] == ["o", "o"]
    assert ax.get_xlim() == (0.5, 1.5)
    assert [t for t in ax.get_xticks() if 0.5 <= t <= 1.5] == [1.0]  # one tick, the epoch
    gaps = [
        {"epoch": e, "train/loss": 1.0 / e, "eval/loss": np.nan if e in (2, 4) else 1.0}
        for e in range(1, 6)
    ]
    r.learning_curves(str(tmp_path / "b.png"), gaps, units)
    ax = saved[-1].axes[0]  # (another layout: its title says eval is not finite at 2 epochs)
    assert ax.get_title() == "loss (eval not finite at 2 epochs)"
    assert ax.lines[0].get_marker() == "None"
    assert ax.lines[1].get_marker() == "o"
    assert list(ax.lines[1].get_markevery()) == [True, False, True, False, True]
    assert [h.get_marker() for h in ax.get_legend().legend_handles] == ["None", "o"]
    nan_epoch = [{"epoch": float("nan"), "train/loss": 1.0, "eval/loss": 2.0}]
    r.learning_curves(str(tmp_path / "c.png"), nan_epoch, units)  # drawn, not raised
    assert saved[-1].axes[0].get_xlim() == (-1.0, 1.0)
    # A panel with no finite value at all (a run that diverged in its first epoch): its title
    # says so, and its value axis has no numbers (it showed -2 to 2 for an MSE).
    none = [{"epoch": 1, "train/loss": np.inf, "eval/loss": np.nan}]
    r.learning_curves(str(tmp_path / "d.png"), none, units)
    ax = saved[-1].axes[0]
    assert ax.get_title() == "loss (train not finite at epoch 1)\n(eval not finite at epoch 1)"
    assert list(ax.get_yticks()) == [] and not [t.get_text() for t in ax.get_yticklabels()]
    r.learning_curves(str(tmp_path / "e.png"), one, units)  # numbers again for the next run
    assert [float(t) for t in saved[-1].axes[0].get_yticks()] != []
    # The legend (the first panel's) shows a dot where any panel has one (a review: the
    # first panel's alone, once the legend's place was chosen with it).
    later = [
        {"epoch": e, "train/loss": 2.0 / e, "eval/loss": 2.2 / e, "train/recon": 1.0 / e}
        | {"eval/recon": 1.1 / e if e % 2 else np.nan}
        for e in range(1, 8)
    ]
    r.learning_curves(str(tmp_path / "f.png"), later, units)
    ax = saved[-1].axes[0]
    assert [ln.get_marker() for ln in ax.lines] == ["None", "None"]
    assert [h.get_marker() for h in ax.get_legend().legend_handles] == ["None", "o"]


def test_a_mosaic_leaves_no_empty_band_around_its_image(tmp_path, monkeypatch):
    """The axes box of reconstructions.png is the mosaic's own shape: the figure is the image
    plus fixed margins (0.4 in for the title, 0.1 in below), not an image inside a taller box."""
    from ae_jax.evaluation import canvas

    saved = []
    save = canvas.save
    monkeypatch.setattr(canvas, "save", lambda t, *a, **k: (saved.append(t.fig), save(t, *a, **k)))
    mosaic = figures.tile(np.random.default_rng(0).uniform(size=(20, 64)), (8, 8), 2, 10)
    Renderer().mosaic(str(tmp_path / "m.png"), mosaic, "validation rows; epoch 2")
    fig = saved[0]
    box = fig.axes[0].get_window_extent()  # after drawing: the box the image fills
    assert box.width / box.height == pytest.approx(mosaic.shape[1] / mosaic.shape[0], rel=0.01)
    assert fig.get_size_inches()[1] - box.height / fig.dpi == pytest.approx(0.5, abs=0.01)


def test_reconstructions_beyond_the_range_drawn_are_said_to_be(tmp_path, monkeypatch):
    """A run's reconstructions all above the evaluated rows' range were a white row, read as
    missing (a probe: a model of 0..255 floats evaluated on [0, 1] images): the title's second
    line says how many were beyond it; none beyond, no line. The figure grows by the line."""
    from ae_jax.evaluation import canvas

    x = np.random.default_rng(0).uniform(size=(4, 16))
    f = dataclasses.replace(
        _inputs(),
        columns=[f"p{j}" for j in range(16)],
        image_shape=(4, 4),
        x_show=x,
        recon_show=np.concatenate([x[:2] + 2.0, x[2:] - 2.0]),
        image_range=(0.0, 1.0),
    )
    (job,) = [d for d in figures.plan(str(tmp_path), f) if d.path.endswith("reconstructions.png")]
    one = dataclasses.replace(f, codes=f.codes[:1], labels=f.labels[:1])  # (one row evaluated)
    (codes,) = [d for d in figures.plan(str(tmp_path), one) if d.path.endswith("codes_2d.png")]
    assert codes.args[3] == "codes of 1 row (epoch 5)"  # not "1 rows"
    line = "reconstructed values beyond the range drawn, 0..1: 50% below, 50% above"
    assert job.args[1].split("\n")[1] == line, job.args[1]
    inside = dataclasses.replace(f, recon_show=x * 0.5)
    (job2,) = [
        d for d in figures.plan(str(tmp_path), inside) if d.path.endswith("reconstructions.png")
    ]
    assert "\n" not in job2.args[1]
    saved = []
    save = canvas.save
    monkeypatch.setattr(canvas, "save", lambda t, *a, **k: (saved.append(t.fig), save(t, *a, **k)))
    Renderer().mosaic(str(tmp_path / "two.png"), job.args[0], job.args[1])
    Renderer().mosaic(str(tmp_path / "one.png"), job2.args[0], job2.args[1])
    heights = [fig.get_size_inches()[1] for fig in saved]
    assert heights[0] - heights[1] == pytest.approx(0.2)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="Unix scheduling priorities")
def test_workers_draw_at_a_lower_priority_than_training(tmp_path):
    own = os.getpriority(os.PRIO_PROCESS, 0)
    with figure_writer.FigureWriter(workers=1) as writer:
        writer.submit_figures(str(tmp_path / "run"), _inputs(), lambda paths: None)
        writer.wait()  # the worker has drawn: it set its priority before its first job
        (slot,) = writer._all
        assert slot.worker is not None and slot.worker.pid is not None
        nice = os.getpriority(os.PRIO_PROCESS, slot.worker.pid)
    assert nice == min(19, own + figure_worker.NICENESS) > own


# A training process with one figure worker, then a Ctrl-C to its whole process group. Its own
# handler stands in for training's (it stops and closes the writer); a Python handler, unlike
# SIG_IGN, is not inherited by the worker. Then the writer is closed, or the process just dies.
CTRL_C = """
import os, signal, sys
from ae_jax.evaluation import figure_writer, figures

signal.signal(signal.SIGINT, lambda *_: None)
history = [{"epoch": e, "step": e, "train/loss": 1.0 / e, "eval/loss": 1.1 / e} for e in (1, 2)]
writer = figure_writer.FigureWriter(workers=1)
(slot,) = writer._all
worker = slot.worker
if sys.argv[2] == "early":  # while the worker still imports (its SIG_IGN not yet set)
    os.killpg(0, signal.SIGINT)


def draw(name):
    jobs = figures.curves(os.path.join(sys.argv[1], name), history, "squared error")
    return [f.result() for f in writer.start(jobs).values()]


draw("before")  # the worker is up and has drawn
os.killpg(0, signal.SIGINT)
draw("after")
print("same worker:", slot.worker is worker, flush=True)
if sys.argv[2] in ("close", "early"):
    writer.close()
    print("exit status:", worker.process.returncode, flush=True)
else:
    os._exit(0)  # the worker inherited this process's stderr: the test reads it to its end
"""


@pytest.mark.parametrize("end", ["close", "die", "early"])
def test_a_worker_ignores_ctrl_c_and_ends_with_its_writer(tmp_path, end):
    """A Ctrl-C to the terminal's process group does not reach the workers (a group of their
    own; one still importing printed a KeyboardInterrupt traceback): they go on drawing and end
    when the writer closes their stdin or its process dies (stderr ends once they have)."""
    proc = subprocess.run(
        [sys.executable, "-c", CTRL_C, str(tmp_path), end],
        start_new_session=True,  # its own process group: the SIGINT reaches no test process
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "same worker: True" in proc.stdout, proc.stderr[-3000:]
    assert os.path.exists(tmp_path / "after" / "learning_curves.png")
    if end != "die":
        assert "exit status: 0" in proc.stdout


def test_codes_coloured_by_many_text_values_draw_every_row():
    """More than 20 text values (a shop column): the 19 most frequent keep a colour and the
    rest share one "other" group, so no row goes undrawn; numbers are left alone."""
    counts = {f"shop{i:02d}": 30 - i for i in range(25)}  # shop00 the most frequent
    labels = np.array([v for v, n in counts.items() for _ in range(n)])
    grouped = figures.rare_grouped(labels, 20)
    kept = [f"shop{i:02d}" for i in range(19)]
    assert sorted(set(grouped)) == sorted([*kept, "other (6 values)"])
    assert (grouped == "other (6 values)").sum() == sum(30 - i for i in range(19, 25))
    assert np.array_equal(grouped[np.isin(labels, kept)], labels[np.isin(labels, kept)])
    few = np.array(["a", "b", "a"])
    assert figures.rare_grouped(few, 20) is not None and list(figures.rare_grouped(few, 20)) == [
        "a",
        "b",
        "a",
    ]
    numbers = np.arange(50)
    assert figures.rare_grouped(numbers, 20) is numbers  # a continuum, coloured by a bar
    # Only "other" (and a missing number) is grey: tab10's and tab20's greys gave g07, or g14
    # and g15, the colour of "other" (a probe could not tell them apart).
    for n in (9, 19):
        groups = [*kept[:n], "other (6 values)"]
        colours = canvas.group_colours(groups, ["other (6 values)"])
        assert colours[-1] == "0.6" and len(set(colours[:-1])) == n
        assert all(max(c) - min(c) > 0.05 for c in colours[:-1])  # no grey
    assert canvas.group_colours([1.0, float("nan")], [])[1] == "0.6"


@pytest.mark.parametrize("shape", [(8, 8), (28, 20)])
def test_each_manifold_tile_sits_at_the_code_it_decodes(shape):
    """The latent grid's axes put every tile's centre at its own code (they reached the end
    tiles' outer edges, half a tile off), and the title says what the grid spans."""
    lo, hi = np.array([-2.5, -1.0]), np.array([2.5, 3.0])
    n = figures.GRID
    f = figures.FigureInputs(
        columns=[str(i) for i in range(shape[0] * shape[1])],
        image_shape=shape,
        epoch=1,
        is_vae=True,
        manifold=(np.zeros((n * n, shape[0] * shape[1])), lo, hi),
    )
    (drawing,) = [d for d in figures.plan("/tmp/x", f) if d.path.endswith("latent_manifold.png")]
    image, title, extent = drawing.args[:3]
    assert title == "decoded 15x15 grid of codes over [-2.5, 2.5]², the prior's bulk; epoch 1"
    gap = (image.shape[1] - n * shape[1]) // (n - 1)
    for axis, size, (first, last) in ((0, shape[1], extent[:2]), (1, shape[0], extent[2:])):
        pixels = image.shape[1 - axis]
        centres = np.arange(n) * (size + gap) + size / 2  # in pixels from the low end
        z = first + centres * (last - first) / pixels
        np.testing.assert_allclose(z, np.linspace(lo[axis], hi[axis], n), atol=1e-12)


def test_a_nonnegative_curve_gets_no_axis_below_zero():
    """A KL rising from 0.02 had its axis snapped down to -0.1 (a negative KL on the page)."""
    history = [
        {
            "epoch": e,
            "train/loss": 20 / e,
            "eval/loss": 21 / e,
            "train/kl": 0.02 * e,
            "eval/kl": 0.021 * e,
        }
        for e in range(1, 21)
    ]
    r = Renderer()
    units = figures.curve_units("squared error")
    r.learning_curves("/dev/null", history, units)
    kl_axes = r._templates[("curve", "kl", units["kl"], False)][1]  # the kl panel's axes
    assert kl_axes.get_ylim()[0] == 0.0 and kl_axes.get_ylim()[1] >= 0.42


def test_a_curve_below_zero_by_float_round_off_gets_no_axis_below_zero():
    """A collapsed VAE's KL of 0.002 to 0.0001 with one epoch at -3.5e-8 (float32 round-off;
    a KL is never negative) drew its axis from -0.001, a quarter of it below 0."""
    history = [
        {"epoch": e, "train/loss": 1 / e, "eval/loss": 1 / e, "train/kl": 0.002 / e}
        | {"eval/kl": -3.5e-8 if e == 8 else 0.002 / e}
        for e in range(1, 11)
    ]
    r = Renderer()
    units = figures.curve_units("squared error")
    r.learning_curves("/dev/null", history, units)
    kl_axes = r._templates[("curve", "kl", units["kl"], False)][1]
    assert kl_axes.get_ylim()[0] == 0.0


@pytest.mark.parametrize(
    "epochs, ticks",
    [(5, [1, 2, 3, 4, 5]), (20, [5, 10, 15, 20]), (30, [0, 10, 20, 30]), (150, [0, 50, 100, 150])],
)
def test_a_learning_curves_epoch_axis_has_round_ticks(epochs, ticks):
    """Ticks at multiples of 1, 2, 2.5 or 5 times a power of ten, as the value axes' (a
    30-epoch run's axis read 0, 8, 16, 24, a 150-epoch run's 0, 40, 80, 120: the last epochs
    past the last tick; a README walkthrough)."""
    history = [
        {"epoch": e, "train/loss": 2.0 / e, "eval/loss": 2.1 / e} for e in range(1, epochs + 1)
    ]
    r = Renderer()
    r.learning_curves("/dev/null", history, figures.curve_units("squared error"))
    ((_, ax, _, _, _),) = r._templates.values()
    lo, hi = ax.get_xlim()
    assert [t for t in ax.get_xticks() if lo <= t <= hi] == ticks


def test_an_importance_weighted_bound_of_no_log_likelihood_is_named_for_what_it_is():
    """A Bernoulli VAE on grey values: its IWAE-objective curve is a cross-entropy bound (as
    eval.json's vae/bce_iwae_bound), not an IWAE bound in nats of log p(x); either names its
    k, training's loss.iw_samples_train (eval.json's vae/iwae has its own, eval.iw_samples)."""
    c = seed_vae.get_config()
    c.loss.recon = "bce"
    binary, grey = np.array([[0.0, 1.0, 1.0]] * 4), np.full((4, 3), 0.5)
    history = [{"epoch": 1, "train/iw_bound": 20.0}]
    labels = [
        figures.curves("/tmp/x", history, *figure_data.units(c, x), iw_k=5)[0].args[1]["iw_bound"]
        for x in (binary, grey)
    ]
    assert labels == [
        "IWAE bound (k = 5), nats per example",
        "IWAE-form bound (k = 5; Bernoulli cross-entropy, nats) per example",
    ]
    # A KL weighted other than by 1 (beta, or a warm-up from another weight) makes the IWAE
    # objective no bound; a warm-up from 1 to beta = 1 weights nothing.
    said = {
        True: "IWAE objective (k = 5), KL weighted (no bound), nats per example",
        False: "IWAE-form objective, KL weighted (k = 5; Bernoulli cross-entropy, nats) "
        "per example",
    }
    for fields, weighted in (
        ({"beta": 2.0}, True),
        ({"kl_warmup_epochs": 1.0, "kl_warmup_start": 0.1}, True),
        ({"kl_warmup_epochs": 1.0, "kl_warmup_start": 1.0}, False),
    ):
        w = seed_vae.get_config()
        w.loss.recon = "bce"
        w.loss.update(fields)
        assert figure_data.kl_weighted(w) is weighted and not figure_data.kl_weighted(c)
        for x in (binary, grey):
            unit, is_ll = figure_data.units(w, x)
            weighted_kl = figure_data.kl_weighted(w)
            (drawing,) = figures.curves("/tmp/x", history, unit, is_ll, weighted_kl, iw_k=5)
            label = drawing.args[1]["iw_bound"]
            assert label == (said[is_ll] if weighted else labels[0 if is_ll else 1]), label


def test_a_learning_curve_axis_ends_on_labelled_ticks():
    """Rounded out to 300..550 ticks of step 50, a 316..515 curve's axis then ticked at 320,
    400, 480 (the wider span's coarser step): both ends unlabelled. Its ticks are now those
    it was rounded to, ends included; a nonnegative term's axis starts at 0."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from ae_jax.evaluation import canvas

    for lo, hi, nonnegative in [(316.0, 515.0, False), (4.005, 4.19, False), (-0.01, 0.3, True)]:
        fig, ax = plt.subplots()
        low, high, ticks = canvas.value_ticks(ax.yaxis, lo, hi, nonnegative)
        ax.set_ylim(low, high)
        shown = [t for t in ax.get_yticks() if low <= t <= high]
        assert shown == list(ticks) and ticks[0] == low and ticks[-1] == high, (lo, hi, shown)
        assert low <= lo or nonnegative and low == 0.0
        assert high >= hi and (high - low) < 2.5 * (hi - lo)  # rounded out, not inflated
        plt.close(fig)


@pytest.mark.parametrize("rows_name", ["validation rows", "rows of new.csv"])
def test_figures_of_a_file_name_its_rows_not_the_validation_split(rows_name):
    """`ae-jax evaluate --data=FILE`'s per-feature and per-column charts said "validation"
    and an AE's latent grid spanned "the validation codes' range", of FILE's rows."""
    import dataclasses

    base = dataclasses.replace(_inputs(), rows_name=rows_name, mse_per_feature=np.ones(3))
    tab = dataclasses.replace(base, column_accuracy=(["a"], np.array([0.9]), np.array([0.5])))
    (per_feature, per_column) = [
        j for j in figures.plan("/tmp/x", tab) if j.method.endswith("bars")
    ]
    assert per_feature.args[4] == f"reconstruction error per feature ({rows_name}, epoch 5)"
    assert per_column.args[3] == f"accuracy of the reconstruction ({rows_name})"
    assert per_column.args[4] == "categorical and true/false columns (epoch 5)"
    # Its error counts the rows' filled cells (eval.json's per-column one does not): said.
    assert per_feature.args[3] == "mean squared error over the rows, scaled units (log axis)"
    filled = dataclasses.replace(tab, filled_cells=3)
    (per_feature, _) = [j for j in figures.plan("/tmp/x", filled) if j.method.endswith("bars")]
    assert per_feature.args[3].startswith("mean squared error over the rows (the 3 filled missing")
    n = figures.GRID
    grid = dataclasses.replace(
        base,
        columns=[str(i) for i in range(4)],
        image_shape=(2, 2),
        is_vae=False,
        manifold=(np.zeros((n * n, 4)), np.array([-1.0, -1.0]), np.array([1.0, 1.0])),
    )
    (drawing,) = [d for d in figures.plan("/tmp/x", grid) if d.path.endswith("manifold.png")]
    assert (
        drawing.args[1]
        == f"decoded 15x15 grid of codes over the range of the codes of the {rows_name}; epoch "
        f"{grid.epoch}"
    )


def test_a_wide_table_draws_its_worst_reconstructed_features_only():
    """500 one-hot features drew an 18,000-pixel-tall chart: at most MAX_BARS bars, the
    features with the largest model error (NaN counts as the worst), in table order."""
    import dataclasses

    d = 100
    mse = np.arange(d, dtype=float)[::-1] / d  # feature 0 worst
    mse[70] = np.nan
    f = dataclasses.replace(
        _inputs(), columns=[f"x{j}" for j in range(d)], mse_per_feature=mse, pca_per_feature=mse / 2
    )
    (bars,) = [j for j in figures.plan("/tmp/x", f) if j.method == "per_feature_bars"]
    names, model, pca, _, title = bars.args[:5]
    expected = [f"x{j}" for j in range(59)] + ["x70"]
    assert names == expected and np.array_equal(model, mse[[*range(59), 70]], equal_nan=True)
    np.testing.assert_array_equal(pca, model / 2)
    assert title.endswith("; the 60 of 100 worst reconstructed")
    small = figures.plan("/tmp/x", _inputs())
    assert [j.args[0] for j in small if j.method == "per_feature_bars"] == [["a", "b", "c"]]


def test_names_with_dollar_signs_are_drawn_as_written(tmp_path):
    """matplotlib reads text between two "$" as mathematics: a column named "net $ (a_b_c) $"
    failed its bar chart ("Double subscript"), and so its run, on every rerun (a probe). Names
    of columns, label values, the colouring column and another file's rows are drawn as
    written, in every figure that shows them."""
    rng = np.random.default_rng(0)
    columns = ["x", "net $ (a_b_c) $", r"cost $\frac{a}$"]
    f = dataclasses.replace(
        _inputs(),
        columns=columns,
        is_vae=True,
        labels=np.array(["$p_q_r$", "b"] * 20),
        colour_name="$a_b_c$ kind",
        samples=rng.normal(size=(10, 3)),
        traversal=rng.normal(size=(3, 3)),
        column_accuracy=(columns[1:], [0.5, 0.7], [0.4, 0.6]),
        rows_name="rows of $x_y_z$.csv",
    )
    written = figures.write_figures(str(tmp_path), f)
    assert sorted(os.path.basename(p) for p in written) == [
        "codes_2d.png",
        "learning_curves.png",
        "recon_per_column.png",
        "recon_per_feature.png",
        "samples.png",
        "traversal.png",
    ]
    assert all(Image.open(p).size[0] > 100 for p in written)


def test_a_wide_tables_heatmaps_draw_the_columns_that_vary_most_only():
    """A 300-column VAE's samples and traversal heatmaps were 11,000 pixels tall (the bar
    chart's 60 were not): at most MAX_BARS columns each, in table order, those that vary most
    across the draws (samples) or change most with any z_d (traversal), as the title says."""
    import dataclasses

    d = 100
    rng = np.random.default_rng(0)
    spread = np.arange(d, dtype=float)[::-1] + 1  # column 0 varies most
    samples = np.linspace(-1, 1, 10)[:, None] * spread  # each column's spread: spread
    traversal = np.array([[1.0], [-0.5], [0.25]]) * spread  # its largest change: spread
    traversal[1, 70] = np.nan  # NaN counts as the largest change
    f = dataclasses.replace(
        _inputs(),
        is_vae=True,
        columns=[f"x{j}" for j in range(d)],
        samples=samples,
        traversal=traversal,
        mse_per_feature=None,
        pca_per_feature=None,
    )
    maps = {
        j.path.rsplit("/", 1)[1]: j.args for j in figures.plan("/tmp/x", f) if j.method == "heatmap"
    }
    values, names, _, title = maps["traversal.png"][:4]
    assert names == [f"x{j}" for j in range(59)] + ["x70"] and values.shape == (3, 60)
    assert title.endswith(f"; the 60 of 100 columns it changes most; epoch {f.epoch}")
    np.testing.assert_array_equal(values, traversal[:, [*range(59), 70]])
    values, names, _, title = maps["samples.png"][:4]
    assert names == [f"x{j}" for j in range(60)] and values.shape == (10, 60)
    np.testing.assert_array_equal(values, samples[:, :60])
    assert title.endswith("; the 60 of 100 columns varying most")
    small = dataclasses.replace(_inputs(), samples=rng.normal(size=(10, 3)), traversal=None)
    ((values, names, _, title, *_),) = [
        j.args for j in figures.plan("/tmp/x", small) if j.method == "heatmap"
    ]
    assert names == ["a", "b", "c"] and values.shape == (10, 3) and "of" not in title.split(")")[-1]


def test_a_numeric_colour_with_missing_values_keeps_its_scale_and_every_row(tmp_path, monkeypatch):
    """NaN among a numeric colour column made the colour limits NaN (every point one colour,
    a bar from -0.1 to 0.1) and dropped those rows; now the bar spans the finite values, the
    missing rows are drawn grey and the bar's label says so."""
    from ae_jax.evaluation import canvas

    saved = []
    save = canvas.save
    monkeypatch.setattr(canvas, "save", lambda t, *a, **k: (saved.append(t.fig), save(t, *a, **k)))
    rng = np.random.default_rng(0)
    labels = rng.uniform(10, 90, 50)
    labels[:7] = np.nan
    xy = rng.normal(size=(50, 2))
    Renderer().codes_2d(str(tmp_path / "c.png"), xy, ["a", "b"], labels, "t", 20, "price")
    ax, bar = saved[-1].axes
    (points,) = ax.collections
    assert points.get_clim() == (np.nanmin(labels), np.nanmax(labels))
    # Each point coloured by its own row's value (the colour bar's), NaN for the grey ones.
    np.testing.assert_array_equal(points.get_offsets(), xy)
    np.testing.assert_array_equal(np.ma.filled(points.get_array(), np.nan), labels)
    np.testing.assert_allclose(points.cmap.get_bad()[:3], 0.6)  # a missing value's point: grey
    assert bar.get_ylabel() == "price (grey: missing)"
    # Few values (a legend): the NaN rows are their own grey "(missing)" group, none left out,
    # each group's points in the colour its legend entry shows.
    grades = labels.round(-1)  # 10, 20, ..., 90 and NaN
    xy = rng.normal(size=(50, 2))
    Renderer().codes_2d(str(tmp_path / "g.png"), xy, ["a", "b"], grades, "t", 20, "grade")
    ax = saved[-1].axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50
    legend = ax.get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    assert names[-1] == "(missing)"
    assert len(names) == len(ax.collections) == len(set(grades[~np.isnan(grades)])) + 1
    for name, handle, points in zip(names, legend.legend_handles, ax.collections, strict=True):
        value = np.nan if name == "(missing)" else float(name)
        rows = np.isnan(grades) if name == "(missing)" else grades == value
        np.testing.assert_array_equal(points.get_offsets(), xy[rows], err_msg=name)
        np.testing.assert_array_equal(handle.get_facecolor(), points.get_facecolor(), name)


def test_a_stop_while_waiting_cancels_the_drawings_not_started(tmp_path):
    """wait(stop): a stop request while the background writes run cancels the drawings not
    begun (their runs stay unfinished, for the rerun); the finishing jobs still run when the
    writer closes (one releases the runs' locks), and a stop as the last job ends is not lost."""
    from ae_jax.training.signals import Interrupted

    started, release, drawn, ran = threading.Event(), threading.Event(), [], []

    class Job:
        def __init__(self, path, block):
            self.path, self.block = path, block

        def draw(self, renderer):
            if self.block:
                started.set()
                release.wait(60)
            drawn.append(self.path)
            return self.path

    writer = figure_writer.FigureWriter(processes=False)  # one drawing thread
    writer.start([Job("first", True), Job("second", False)])
    writer.submit(release.wait, 60)  # the finishing thread waits too ...
    writer.submit(ran.append, "locks released")  # ... with this queued behind

    def stop():
        if started.is_set():
            raise Interrupted(2, "while writing figures and summaries")

    with pytest.raises(Interrupted):
        writer.wait(stop)
    release.set()  # only now: "second" was cancelled while "first" still ran
    writer.close()
    assert drawn == ["first"] and ran == ["locks released"]

    def stop_once_done():
        if ran[-1] == "done":  # the signal came as the last job ended
            raise Interrupted(15, "while writing figures and summaries")

    writer = figure_writer.FigureWriter(processes=False)
    writer.submit(ran.append, "done")
    with pytest.raises(Interrupted):
        writer.wait(stop_once_done)
    writer.close()


@pytest.mark.parametrize("scale", [0.004, 0.08, 999.0, 2e4, "1e6+0.5"])
@pytest.mark.parametrize("colours", [None, "classes", "long names", "numbers"])
def test_codes_2d_text_lies_inside_the_figure_without_overlap(
    tmp_path, monkeypatch, scale, colours
):
    """Every text of codes_2d (title, axis and tick labels, offset texts, legend, colour bar) is
    on the canvas, and no two x tick labels overlap: without a legend the narrow figure cut off
    "code PC2"; codes of 0.004 or 2e4 ran their x tick labels together; a colour bar's label
    and a 30-character legend entry ran past the right edge."""
    from matplotlib.text import Text

    from ae_jax.evaluation import canvas

    saved = []
    save = canvas.save
    monkeypatch.setattr(canvas, "save", lambda t, *a, **k: (saved.append(t.fig), save(t, *a, **k)))
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 2))
    points = points * 0.5 + 1e6 if scale == "1e6+0.5" else points * scale
    names = np.array(["a category with a thirty-char name", "b", "c"])
    labels = {
        None: None,
        "classes": rng.integers(0, 3, 300),
        "long names": names[rng.integers(0, 3, 300)],
        "numbers": rng.normal(size=300) * 2e4,
    }[colours]
    title = "codes of 300 rows (epoch 5)"
    Renderer().codes_2d(
        str(tmp_path / "c.png"), points, ("code PC1", "code PC2"), labels, title, 20
    )
    fig = saved[0]
    renderer = fig.canvas.get_renderer()
    hidden = set()  # tick labels of ticks outside an axis' view: matplotlib does not draw them
    for a in fig.axes:  # the scatter's and a colour bar's
        for axis, view in ((a.xaxis, a.get_xlim()), (a.yaxis, a.get_ylim())):
            for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True):
                if not min(view) <= v <= max(view):
                    hidden.add(id(t))
    shown = [
        t
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden
    ]
    assert any(t.get_text() == title for t in shown)
    for text in shown:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0, text.get_text()
        assert box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height, text.get_text()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t, v in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True) if lo <= v <= hi]
    boxes = sorted(
        (t.get_window_extent(renderer) for t in ticks if t.get_text()), key=lambda b: b.x0
    )
    for left, right in zip(boxes, boxes[1:], strict=False):
        assert left.x1 < right.x0, [t.get_text() for t in ticks]


def test_a_long_runs_learning_curve_leaves_its_first_epochs_above_the_axis():
    """A loss of ~1e3 at epoch 1 and ~1 after made every panel of a 1,500-epoch run a spike
    and a flat line. From 10 epochs on, the axis spans the later epochs (and the minimum) when
    the first tenth would take over 80% of it; a short run, or a steady one, spans them all."""
    epochs = np.arange(1.0, 101.0)
    loss = 1000.0 * np.exp(-epochs) + 1.0 + 0.01 * np.exp(-epochs / 50)
    lo, hi, cut = curves.span(epochs, loss, loss * 0.99)
    assert cut and lo == pytest.approx(0.99 * loss[-1]) and hi == pytest.approx(loss[10])
    assert curves.span(epochs[:9], loss[:9], loss[:9])[2] is False  # 9 epochs: all
    steady = 2.0 - epochs / 100  # falling evenly: nothing is an outlier
    assert curves.span(epochs, steady) == (1.0, 1.99, False)
    assert curves.span(epochs, np.full(100, np.nan)) is None


def test_a_learning_curves_values_that_are_not_finite_are_named_in_its_title():
    """A diverging run's eval/mse of inf at epoch 1 was left out of its panel without a word
    (an empty panel, an axis of -2..2); the title now says which curve and epochs, NaN too,
    even when no epoch has a finite value (a review), but not of a curve never recorded."""
    inf, nan = float("inf"), float("nan")
    rows = [{"epoch": 1, "eval/mse": inf}, {"epoch": 2, "eval/mse": 0.5}, {"epoch": 3}]
    said = curves.title("mse", False, rows)
    assert said.replace("\n", " ") == "eval mse (eval not finite at epoch 1)"
    rows = [
        {"epoch": 1, "train/loss": 1.0, "eval/loss": inf},
        {"epoch": 2, "train/loss": nan, "eval/loss": nan},
        {"epoch": 3, "train/loss": inf, "eval/loss": 0.4},
    ]
    both = curves.title("loss", True, rows)
    assert both.replace("\n", " ") == (
        "loss (early epochs above) (train not finite at 2 epochs) (eval not finite at 2 epochs)"
    )
    assert "\n" in both  # wrapped to the panel's width
    one = [{"epoch": 1, "train/kl": 0.1, "eval/kl": nan}]  # diverged in its first epoch
    assert curves.title("kl", False, one) == "kl (eval not finite at epoch 1)"
    # a term with no train curve is named an eval one (its colour alone said so)
    assert curves.title("mse", False, [{"epoch": 1, "eval/mse": 0.2}]) == "eval mse"
    assert curves.title("l1", False, [{"epoch": 1, "train/l1": 0.1, "eval/l1": 0.2}]) == "l1"


def test_every_term_a_learning_curve_can_draw_has_a_unit():
    """The kl_free_bits panel's y axis said only "per example" (the README promises every y
    axis says what and in which unit): each term an objective can log has its label."""
    logged = {*objective.TERMS, *(m for ms in objective.TERM_METRICS.values() for m in ms)}
    units = figures.curve_units("squared error")
    assert sorted(logged - set(units)) == []
    assert units["kl_free_bits"].endswith("nats per example")


def test_a_narrow_heatmaps_title_wraps_to_its_width(tmp_path):
    """traversal.png of a 2-D code is 4.2 in wide: its title ran off the right edge (a probe)."""
    saved = []
    save = canvas.save

    def keep(t, *a, **k):
        saved.append(t.fig)
        return save(t, *a, **k)

    long = "output change as z_d goes from -2 to 2 (others 0), and then some more words"
    try:
        canvas.save = keep
        Renderer().heatmap(
            str(tmp_path / "h.png"),
            np.ones((2, 3)),
            list("abc"),
            ["z0", "z1"],
            long,
            "RdBu_r",
            True,
            "change",
        )
    finally:
        canvas.save = save
    title = saved[-1].get_suptitle()  # over the figure: long names push the axes right
    assert "\n" in title and title.replace("\n", " ") == long


def test_codes_2d_of_a_run_whose_codes_overflowed_draws_the_finite_ones_and_says_so(tmp_path):
    """A diverged run's kept parameters gave infinite codes (SGD at a learning rate of 1e38):
    the codes' PCA raised LinAlgError and the run ended in a traceback, never finished, its
    rerun the same. The rows with a non-finite code are left out of the projection and named
    in the title; with none finite the figure is empty, said so, and no warning is raised."""
    f = _inputs()
    codes = f.codes.copy()
    codes[[3, 7], 1] = np.inf
    codes[9, 0] = np.nan
    f = dataclasses.replace(f, codes=codes)
    (job,) = [d for d in figures.plan(str(tmp_path), f) if d.path.endswith("codes_2d.png")]
    points, _, labels, title = job.args[:4]
    keep = np.delete(np.arange(40), [3, 7, 9])
    np.testing.assert_array_equal(labels, f.labels[keep])
    want, _ = figures.project_2d(f.codes[keep])
    np.testing.assert_allclose(points, want)
    assert title == "codes of 40 rows (epoch 5)\nnot drawn: the 3 with a non-finite code"
    none = dataclasses.replace(f, codes=np.full((40, 3), np.inf), is_vae=True)
    (empty,) = [d for d in figures.plan(str(tmp_path), none) if d.path.endswith("codes_2d.png")]
    assert empty.args[0].shape == (0, 2) and empty.args[2] is None
    assert empty.args[3].endswith("not drawn: the 40 with a non-finite posterior mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for drawing in (job, empty):
            drawing.draw(Renderer())
            with Image.open(drawing.path) as image:
                assert image.size[0] > 0


def test_the_latent_manifold_spans_the_finite_codes():
    """The manifold's grid spanned the codes' min..max: an overflowed code made it inf, every
    decoding NaN. It spans the finite rows' codes (-1..1 when none is finite); a unit that does
    not vary gets an axis of 1."""
    codes = np.array([[0.0, 2.0], [1.0, 2.0], [np.inf, 0.0], [-3.0, np.nan]])
    lo, hi = figures.code_range(codes)
    np.testing.assert_array_equal(lo, [0.0, 2.0])
    np.testing.assert_array_equal(hi, [1.0, 3.0])
    lo, hi = figures.code_range(np.full((3, 2), -np.inf))
    np.testing.assert_array_equal(lo, [-1.0, -1.0])
    np.testing.assert_array_equal(hi, [1.0, 1.0])
