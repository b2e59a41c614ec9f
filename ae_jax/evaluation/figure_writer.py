"""Renders figures off the critical path: a worker process draws, a thread finishes each run.

Drawing is numpy and matplotlib only (`figures.py`, `renderer.py`), so it runs in a worker
process of its own (`figure_worker.py`: a fresh interpreter that never imports JAX), drawing on
the second core while this process trains the next group, evaluates and writes checkpoints,
and holding its own GIL. The worker keeps one `Renderer` for its life, so a sweep's figures
reuse their layouts. One thread here sends the jobs in submission order and runs each job's
finishing step when its figures are drawn (eval.json, TensorBoard, summary.json: see
`experiment.py`).

A job's exception is raised again by `wait()`. With `processes=False`, or when the worker
cannot be started, the thread draws itself.
"""

import concurrent.futures
import os
import subprocess
import sys
from collections.abc import Callable

from absl import logging

from ae_jax.evaluation import figure_worker, figures
from ae_jax.evaluation.renderer import Renderer


class FigureWriter:
    """Figures drawn in a worker process, finished in order on a thread; a context manager."""

    def __init__(self, processes: bool = True):
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ae_jax-figures"
        )
        self._pending: list[concurrent.futures.Future] = []
        self._local = Renderer()  # for drawing on the thread, without a worker
        self._worker = None
        if processes:
            try:  # Started now: its interpreter and matplotlib load while training runs.
                self._worker = subprocess.Popen(
                    [sys.executable, "-m", figure_worker.__name__],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env={**os.environ, "JAX_PLATFORMS": "cpu"},
                )
            except OSError as e:
                logging.warning("figures are drawn in this process: no worker process (%s)", e)

    def _draw(self, out_dir: str, inputs: "figures.FigureInputs") -> list[str]:
        if self._worker is not None:
            if self._worker.poll() is None:
                figure_worker.write_message(self._worker.stdin, (out_dir, inputs))
                while (answer := figure_worker.read_message(self._worker.stdout)) is not None:
                    status, value = answer
                    if status == "ok":
                        return value
                    if status == "error":
                        raise RuntimeError(f"drawing the figures of {out_dir} failed: {value}")
            logging.warning(
                "the figure worker ended (exit status %s); drawing in this process",
                self._worker.poll(),
            )
            self._worker = None
        return figures.write_figures(out_dir, inputs, self._local)

    def submit_figures(
        self, out_dir: str, inputs: "figures.FigureInputs", then: Callable[[list[str]], None]
    ) -> None:
        """Draws `inputs` into `out_dir`; then calls `then(paths)` on the writer's thread."""
        self._pending.append(self._thread.submit(lambda: then(self._draw(out_dir, inputs))))

    def submit(self, fn: Callable, *args) -> None:
        """Runs fn(*args) on the writer's thread after every job submitted before it."""
        self._pending.append(self._thread.submit(fn, *args))

    def wait(self) -> None:
        """Blocks until every submitted job has finished; re-raises the first failure."""
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        for e in errors:
            if e is not None:
                raise e

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._thread.shutdown(wait=True)
            if self._worker is not None:
                # Both pipes exist: the worker is started with stdin and stdout PIPEs.
                assert self._worker.stdin is not None and self._worker.stdout is not None
                self._worker.stdin.close()
                self._worker.wait()
                self._worker.stdout.close()

    def __enter__(self) -> "FigureWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
