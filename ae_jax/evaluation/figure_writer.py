"""Renders figures off the critical path: worker processes draw, one thread finishes runs.

Drawing is numpy and matplotlib only (`figures.py`, `renderer.py`), so it runs in worker
processes of their own (`figure_worker.py`: processes that never import JAX, on Linux one
interpreter forked into the others once it has loaded matplotlib), each holding its own GIL, on
the cores this process leaves idle while it trains the next group, evaluates and writes
checkpoints. A run's figures are separate jobs (`figures.plan`), so even one run's figures are
drawn side by side. Each worker keeps one `Renderer` for its life, so a sweep's figures reuse
their layouts; for that, each kind of figure (its file name) has a home worker, the one home to
the fewest kinds, then with the fewest jobs, when the kind is first seen (each kind of a sweep
has a job per run: by jobs alone, the kinds after the curves, which all start when training
ends, went to one worker, and the other drew a share of them at a first drawing each), which
draws that kind's jobs in the order they came. Handing each job to whichever worker was free
drew every layout and static layer once per worker (the benchmark's 64-run sweep, warm, 5 rounds
on 2 cores: 7.0-7.4 CPU-s in all against 6.6-7.1 with home workers; its 256 figures replayed in
two processes, round robin: 4.1 CPU-s, one kind per process: 3.3). Once `wait()` says no more
jobs are coming, an idle worker takes from the longest queue it may (`_worth`, newest first, of
a kind it has drawn where there is one), so the last figures are drawn side by side, but takes up
a kind new to it only from a long queue, or one its owner has not drawn either: a kind's first
drawing costs 10-60 later ones (learning curves 0.2-0.4 s against ~10 ms, bar charts 0.2-0.3 s
against ~5 ms), and taking one from a 10-job queue (~65 ms of its owner's) ended the
benchmark's 64-run sweep 0.06-0.17 s later.

One finishing thread runs each run's finishing step (eval.json, TensorBoard, summary.json: see
`experiment.py`) once all of that run's figures are drawn, strictly in submission order, so a
run is never marked done before the runs submitted ahead of it.

A job's exception is raised again by `wait()`, but for a run given `failed` (a sweep's, which
records it and goes on; the run counts as written in the progress lines). With
`processes=False`, or when a worker
cannot be started or dies, figures are drawn on the drawing thread itself.
"""

import collections
import concurrent.futures
import itertools
import os
import threading
import time
from collections.abc import Callable

from absl import logging

from ae_jax.evaluation import figure_worker, figures
from ae_jax.evaluation.renderer import Renderer

PROGRESS_SECONDS = 5.0
LOOK_BACK = 64  # queued jobs an idle worker looks through for a kind it has drawn
LEARN_AT = 32  # jobs queued for an idle worker to take up a kind new to it (module docstring)


def _started(n: int) -> list[figure_worker.Lane]:
    """n figure workers, started now: their interpreter and matplotlib load while training
    runs; none (a warning) if they cannot be started."""
    try:
        return figure_worker.start(n, {**os.environ, **figure_worker.WORKER_ENV}) if n else []
    except OSError as e:
        logging.warning("figures are drawn in this process: no worker process (%s)", e)
        return []


class _Slot:
    """One drawing lane: a worker process, or (without one) a Renderer in this process."""

    def __init__(self, worker: figure_worker.Lane | None, local_lock: threading.Lock):
        self.worker = worker
        self.local: Renderer | None = None
        self.local_lock = local_lock  # one thread at a time draws in this process

    def draw(self, job: figures.Drawing) -> str:
        if self.worker is not None:
            if self.worker.ready():
                try:
                    figure_worker.write_message(self.worker.jobs, job)
                except BrokenPipeError:
                    pass
                else:  # one answer per job; none when the worker died drawing it
                    answer = figure_worker.read_message(self.worker.answers)
                    if answer is not None:
                        status, value = answer
                        if status == "error":
                            raise RuntimeError(
                                f"drawing {job.path} failed (a bug in ae_jax's figures: a run "
                                "of its own, not a sweep's, is finished without them by its "
                                f"command with train.figures=False): {value}"
                            )
                        return value
            logging.warning(
                "a figure worker ended (%s); drawing in this process", self.worker.wait()
            )
            self.worker = None
        with self.local_lock:
            if self.local is None:
                self.local = Renderer()
            return job.draw(self.local)

    def end(self) -> None:
        """Tells the worker to end (it does when its job pipe closes)."""
        if self.worker is not None:
            self.worker.end()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.wait()
            self.worker = None


class FigureWriter:
    """Figures drawn by worker processes, runs finished in order on a thread; a context manager.

    Args:
        processes: draw in worker processes (False: on one thread of this process).
        workers: how many workers draw side by side (None: `default_workers()`, which may
            be 0: no processes); 1 without processes. Drawing in this process (without
            workers, or after one died) takes one thread at a time: matplotlib's font caches
            are not shared safely.
        steal_at, learn_at: how many jobs a worker's queue must hold, once `wait()` was called,
            for an idle one to take some of a kind it has drawn, or of any kind.
    """

    def __init__(
        self,
        processes: bool = True,
        workers: int | None = None,
        steal_at: int = 8,
        learn_at: int = LEARN_AT,
    ):
        if processes and not workers:
            workers = figure_worker.default_workers()
            processes = workers > 0
        n = workers if processes and workers else 1
        local_lock = threading.Lock()
        self._all = [_Slot(lane, local_lock) for lane in _started(n if processes else 0)]
        self._all += [_Slot(None, local_lock) for _ in range(n - len(self._all))]
        # Per worker, its queue of (future, job, kind); each kind's home worker; jobs sent to
        # each. A job's kind is its file's name.
        self._queues: list[collections.deque] = [collections.deque() for _ in range(n)]
        self._homes: dict[str, int] = {}
        self._sent = [0] * n
        self._drawn: list[set[str]] = [set() for _ in range(n)]  # the kinds each has drawn
        self._steal_at, self._learn_at = max(1, steal_at), max(1, learn_at)
        self._ready = threading.Condition()
        self._all_sent = False  # wait() was called and nothing was queued since
        self._closing = False
        self._lanes = [
            threading.Thread(target=self._lane, args=(i,), name=f"ae_jax-draw-{i}", daemon=True)
            for i in range(n)
        ]
        for lane in self._lanes:
            lane.start()
        self._finishing = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ae_jax-figures"
        )
        self._pending: list[concurrent.futures.Future] = []
        self._run_jobs: list[concurrent.futures.Future] = []  # each run's finishing step
        self._runs = [0, 0]  # runs submitted, runs finished
        self._what = "summaries"  # what is being written: "figures and summaries" once drawn
        self._logged = time.monotonic()
        # A run's drawings were cancelled by a stop (on the finishing thread): no later run is
        # finished, though other workers may have drawn all of its figures.
        self._gap = False
        self._drawings: list[concurrent.futures.Future] = []

    def _draw(self, job: figures.Drawing) -> concurrent.futures.Future:
        """Queues `job` on its kind's home worker (see the module docstring)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._ready:
            if self._closing:
                raise RuntimeError("the figure writer is closed")
            kind = os.path.basename(job.path)
            if kind not in self._homes:
                homed = [sum(h == i for h in self._homes.values()) for i in range(len(self._sent))]
                self._homes[kind] = min(range(len(homed)), key=lambda i: (homed[i], self._sent[i]))
            home = self._homes[kind]
            self._sent[home] += 1
            self._queues[home].append((future, job, kind))
            self._all_sent = False
            self._ready.notify_all()
        return future

    def _next(self, i: int):
        """The next (future, job, kind) worker `i` draws, waiting for one; None once closed and
        every queue is empty."""
        with self._ready:
            while True:
                if self._queues[i]:
                    return self._queues[i].popleft()
                # The longest queue it may take from (with 3 or more workers the longest may
                # hold only kinds new to it, and a shorter one a kind it has drawn: a review).
                by_length = sorted(range(len(self._queues)), key=lambda j: -len(self._queues[j]))
                for j in by_length:
                    if self._queues[j] and (self._closing or self._all_sent and self._worth(i, j)):
                        return self._take(self._queues[j], self._drawn[i])
                if self._closing:
                    return None
                self._ready.wait()

    def _worth(self, i: int, j: int) -> bool:
        """Whether idle worker i takes a job of worker j's queue: its newest is of a kind
        worker j has not drawn (taking it duplicates no first drawing: a single run's third
        kind, queued on a worker still drawing its curves), or it holds `learn_at` jobs, or
        `steal_at` with one of a kind worker i has drawn among its newest LOOK_BACK."""
        queue = self._queues[j]
        if queue[-1][2] not in self._drawn[j] or len(queue) >= self._learn_at:
            return True
        newest = itertools.islice(reversed(queue), LOOK_BACK)
        return len(queue) >= self._steal_at and any(k in self._drawn[i] for _, _, k in newest)

    @staticmethod
    def _take(queue: collections.deque, known: set):
        """The newest job of `queue` (its owner draws from the other end) of a kind in
        `known` among its newest LOOK_BACK (a kind's first drawing in a worker costs 10-60
        later ones; the look bounded, as a sweep of thousands of runs queues thousands of
        jobs), else its newest."""
        for back, (_, _, kind) in enumerate(itertools.islice(reversed(queue), LOOK_BACK)):
            if kind in known:
                item = queue[-1 - back]
                del queue[-1 - back]
                return item
        return queue.pop()

    def _lane(self, i: int) -> None:
        while (item := self._next(i)) is not None:
            future, job, kind = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled by a stop
            with self._ready:  # (read by idle workers)
                self._drawn[i].add(kind)
            try:
                future.set_result(self._all[i].draw(job))
            except BaseException as e:
                future.set_exception(e)

    def start(self, jobs: list[figures.Drawing]) -> dict[str, concurrent.futures.Future]:
        """Starts drawing `jobs` now, ahead of their run's `submit_figures` (which is given
        what this returns): a run's learning curves, while its checkpoints are written."""
        started = {job.path: self._draw(job) for job in jobs}
        self._drawings = [f for f in self._drawings if not f.done()] + list(started.values())
        return started

    def submit_figures(
        self,
        out_dir: str,
        inputs: figures.FigureInputs,
        then: Callable[[list[str]], None],
        started: dict[str, concurrent.futures.Future] | None = None,
        failed: Callable[[Exception], None] | None = None,
    ) -> None:
        """Draws `inputs` into `out_dir` (all but the figures `started` already draws); then
        calls `then(paths)` on the finishing thread, after every job submitted before it.
        `failed(error)`, if given, is called there when a drawing or `then` fails, instead of
        `wait()` raising the error (a sweep records it for the run and goes on)."""
        self._runs[0] += 1
        self._what = "figures and summaries"
        started = dict(started or {})
        drawn = [
            started.pop(job.path) if job.path in started else self._draw(job)
            for job in figures.plan(out_dir, inputs)
        ]
        drawn += started.values()  # none unless the plan changed its mind: still waited for
        self._drawings += drawn
        self._finish_run(drawn, then, out_dir, failed)

    def submit_run(
        self, then: Callable[[list[str]], None], failed: Callable[[Exception], None] | None = None
    ) -> None:
        """A run without figures: `then([])` on the finishing thread, after every job submitted
        before it, counted in the progress lines as `submit_figures`' runs are (8,000 runs'
        summaries were written for 27 s without a line); `failed` as for `submit_figures`."""
        self._runs[0] += 1
        self._finish_run([], then, None, failed)

    def _finish_run(self, drawn: list, then, out_dir, failed) -> None:
        """Queues a run's finishing step: once its drawings are done, `then(paths)`."""

        def finish() -> None:
            if self._gap:  # finished runs stay a prefix of those submitted (see `wait`)
                raise concurrent.futures.CancelledError()
            try:
                paths = [f.result() for f in drawn]
                if out_dir is not None:  # also for a run with nothing to draw
                    os.makedirs(out_dir, exist_ok=True)
                then(paths)
            except concurrent.futures.CancelledError:
                self._gap = True
                raise
            except Exception as e:
                if failed is None:
                    raise
                failed(e)
            self._runs[1] += 1
            self._progress()

        job = self._finishing.submit(finish)
        self._pending.append(job)
        self._run_jobs = [f for f in self._run_jobs if not f.done()] + [job]

    def backlog(self) -> int:
        """How many runs submitted are not yet finished (written, failed or cancelled)."""
        self._run_jobs = [f for f in self._run_jobs if not f.done()]
        return len(self._run_jobs)

    def throttle(
        self, most: int, stopped: Callable[[], bool], room: Callable[[], bool] = lambda: True
    ) -> None:
        """Blocks while runs are not yet finished, more than `most` of them or without `room()`
        for what comes next, until `stopped()`: a sweep trains a group while the one before is
        written, not further ahead (groups trained faster than their figures are drawn left a
        backlog of hundreds of runs, each holding its files open, and a stop waited for all of
        them: a probe)."""
        while (n := self.backlog()) and (n > most or not room()) and not stopped():
            concurrent.futures.wait(self._run_jobs, timeout=0.2)

    def _progress(self) -> None:
        """A line at most every PROGRESS_SECONDS while runs are being finished (on the
        finishing thread), so a sweep's last minutes are not silent."""
        submitted, finished = self._runs
        if finished < submitted and time.monotonic() - self._logged >= PROGRESS_SECONDS:
            self._logged = time.monotonic()
            logging.info("%s: %d of %d run(s) written", self._what, finished, submitted)

    def submit(self, fn: Callable, *args) -> None:
        """Runs fn(*args) on the finishing thread after every job submitted before it."""
        self._pending.append(self._finishing.submit(fn, *args))

    def wait(self, stop: Callable[[], None] | None = None) -> None:
        """Blocks until every submitted job has finished; re-raises the first failure. `stop`
        is called every 0.2 s meanwhile and once at the end: if it raises (a stop request), the
        drawings not started are cancelled, so their runs stay unfinished, and so do the runs
        submitted after the first of them, whose figures other workers may have drawn (the
        rest of each finishing job, such as releasing locks, still runs when the writer
        closes)."""
        pending, self._pending = self._pending, []
        with self._ready:  # the last jobs are in: idle workers may take others' jobs
            self._all_sent = True
            self._ready.notify_all()
        if stop is not None:
            try:
                while concurrent.futures.wait(pending, timeout=0.2).not_done:
                    stop()
                stop()  # a stop while the last jobs ended is not lost
            except BaseException:
                for f in self._drawings:
                    f.cancel()
                raise
        errors = [f.exception() for f in pending]
        for e in errors:
            if e is not None:
                raise e

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._finishing.shutdown(wait=True)
            with self._ready:  # the lanes draw what is queued (cancelled jobs are skipped)
                self._closing = True
                self._ready.notify_all()
            for lane in self._lanes:
                lane.join()
            for slot in self._all:  # all told to end first, then waited for
                slot.end()
            for slot in self._all:
                slot.close()

    def __enter__(self) -> "FigureWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
