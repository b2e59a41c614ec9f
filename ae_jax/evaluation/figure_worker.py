"""The figure-drawing worker processes: `python -m ae_jax.evaluation.figure_worker`.

A worker imports numpy, matplotlib and the figure modules only (no JAX), reads jobs from its
job pipe and answers on its answer pipe, one at a time: each message is a 4-byte big-endian
length and a pickle. Its first message is ("ready", its pid); then a job is one
`figures.Drawing`, its answer ("ok", path) or ("error", text). It keeps one `Renderer` for its
life, so the layouts of a sweep's figures are built once per worker. `FigureWriter`
(figure_writer.py) starts `default_workers()` of them (AE_JAX_FIGURE_WORKERS, else one per core)
with `start` and talks to them through `Lane`s; a worker
ends when its job pipe closes: when the writer closes it, or the writer's process dies. The
workers run in a process group of their own (a terminal's Ctrl-C reaches the training process
only, which handles the stop and closes them) and ignore SIGINT besides.

On Linux `start` starts one interpreter, which forks the other workers once it has loaded
matplotlib: they share what it loaded. A worker's start is ~0.6 CPU-s, most of it matplotlib's
import, taken from the cores training uses: started each as an interpreter of its own (as they
still are elsewhere, where forking a process with matplotlib loaded is not known to be safe),
2 workers took 1.2-1.6 CPU-s of the benchmark's 64-run sweep on 2 cores.
"""

import dataclasses
import os
import pickle
import signal
import struct
import subprocess
import sys
import traceback
from typing import IO, NoReturn

from ae_jax.errors import UserError
from ae_jax.evaluation.renderer import Renderer

MAX_WORKERS = 4  # beyond this, a run's few figures and a sweep's finishing gain little
# A worker's numpy work is small (axis transforms, PNG filtering): one BLAS thread. Its other
# BLAS threads only spin-waited after calls, on the cores training uses (OpenBLAS spins before
# sleeping): ~0.1 CPU-s of a 64-run sweep's figure workers on 2 cores, by `perf`.
WORKER_ENV = {
    "JAX_PLATFORMS": "cpu",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


WORKERS_ENV = "AE_JAX_FIGURE_WORKERS"


def default_workers() -> int:
    """How many worker processes draw: AE_JAX_FIGURE_WORKERS where set (0: none, figures are
    drawn in the launcher's own process), else one per core, at most MAX_WORKERS. The first
    worker costs ~0.6 s of a core to start (on Linux the others are its forks), and each builds
    its own figure layouts, so fewer suit machines where runs are short and many (the tests
    use 1).

    Raises:
        UserError: the variable is set to anything but a whole number from 0 to the larger of
            MAX_WORKERS and the machine's cores (99999 started threads until the process hung).
    """
    value = os.environ.get(WORKERS_ENV, "").strip()
    cores = os.cpu_count() or 1
    if not value:
        return max(1, min(MAX_WORKERS, cores))
    if not (value.isascii() and value.isdigit()):  # not "²", which isdigit() accepts
        raise UserError(
            f"{WORKERS_ENV}={value!r}: expected how many worker processes draw figures, a "
            "whole number >= 0 (0 draws them in this process); unset it for one per core, "
            f"at most {MAX_WORKERS}"
        )
    if int(value) > (most := max(MAX_WORKERS, cores)):
        raise UserError(
            f"{WORKERS_ENV}={value!r}: more worker processes than this machine has cores "
            f"({cores}); expected at most {most} (more draw no faster); unset it for one per "
            f"core, at most {MAX_WORKERS}"
        )
    return int(value)


# How much lower than the training process's a worker's scheduling priority is: on a machine
# with few cores, a worker loading matplotlib or drawing while the main process compiles,
# trains or evaluates slowed it; at this niceness it takes the cycles training leaves idle
# (measured on 2 cores: a single run 3.87 -> 3.53 s, a 64-run sweep 21.7 -> 20.3 s).
NICENESS = 10
FORKS = sys.platform.startswith("linux")  # the first worker forks the others
if FORKS:
    import fcntl


def read_message(stream):
    """The next message from a binary stream, or None at its end."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    data = stream.read(size)
    if len(data) < size:  # cut short: its writer died writing it
        return None
    return pickle.loads(data)


def write_message(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


@dataclasses.dataclass
class Lane:
    """A worker as its writer sees it: the pipe its jobs go into, the one its answers come
    from, and, for the worker the writer started (not one forked from it), its process."""

    jobs: IO[bytes]
    answers: IO[bytes]
    process: subprocess.Popen | None
    pid: int | None = None  # known once its "ready" message is read

    def ready(self) -> bool:
        """Whether the worker is up: reads its first message (waiting for it) once."""
        if self.pid is None and (self.process is None or self.process.poll() is None):
            hello = read_message(self.answers)
            self.pid = None if hello is None else hello[1]
        return self.pid is not None and (self.process is None or self.process.poll() is None)

    def end(self) -> None:
        """Tells the worker to end (it does when its job pipe closes)."""
        try:
            self.jobs.close()
        except OSError:
            pass

    def wait(self) -> str:
        """Waits for the worker to end: how it ended, in words."""
        self.end()
        if self.process is not None:
            status = f"exit status {self.process.wait()}"
        else:  # not this process's child: its end is its answer pipe's end
            while self.answers.read(65536):
                pass
            status = "its pipe closed"
        try:
            self.answers.close()
        except OSError:
            pass
        return status


def start(n: int, env: dict) -> list[Lane]:
    """Starts `n` workers with environment `env` (see the module docstring).

    Raises:
        OSError: a worker's interpreter could not be started.
    """
    if not FORKS:
        lanes: list[Lane] = []
        try:
            for _ in range(n):
                lanes += _started([], env)
        except OSError:
            for lane in lanes:
                lane.wait()
            raise
        return lanes
    return _started([(_pipe(), _pipe()) for _ in range(n - 1)], env)


def _pipe() -> tuple[int, int]:
    """os.pipe(), both ends numbered 3 or more. A process started with stdin or stdout closed
    gets 0 or 1 from os.pipe(), which the worker's own stdin and stdout would overwrite."""
    ends = []
    for fd in os.pipe():
        if fd < 3:
            fd, low = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3), fd
            os.close(low)
        ends.append(fd)
    return ends[0], ends[1]


def _started(pipes: list, env: dict) -> list[Lane]:
    """A worker's interpreter, told to fork one worker for each of `pipes` ((job pipe, answer
    pipe) pairs, each an (read, write) pair); its Lane first, then the forked workers'."""
    theirs = [fd for (jobs_in, _), (_, answers_out) in pipes for fd in (jobs_in, answers_out)]
    ours = [fd for (_, jobs_out), (answers_in, _) in pipes for fd in (jobs_out, answers_in)]
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, *(f"{j},{a}" for (j, _), (_, a) in pipes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            pass_fds=theirs,
            # Its own process group: a terminal's Ctrl-C reaches the training process only
            # (the worker, still importing, printed KeyboardInterrupt tracebacks).
            process_group=0 if os.name == "posix" else None,
        )
    except OSError:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    # Both pipes exist: started with stdin and stdout PIPEs.
    assert process.stdin is not None and process.stdout is not None
    return [Lane(process.stdin, process.stdout, process)] + [
        Lane(os.fdopen(j, "wb"), os.fdopen(a, "rb"), None) for (_, j), (a, _) in pipes
    ]


def _serve(
    renderer: Renderer, jobs: IO[bytes], answers: IO[bytes], forked: tuple[int, ...] = ()
) -> NoReturn:
    """Answers jobs until the job pipe ends; then waits for the workers it `forked` (told to
    end too: the writer closes every job pipe before waiting), so once the writer has waited
    for it no worker is left, not even one not yet reaped."""
    try:
        write_message(answers, ("ready", os.getpid()))
        while (job := read_message(jobs)) is not None:
            try:
                answer = ("ok", job.draw(renderer))
            except Exception as e:  # noqa: BLE001 - reported to the writer, which raises it
                answer = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
            write_message(answers, answer)
    except BrokenPipeError:
        pass  # the writer is gone (its process ended): nobody to answer
    for pid in forked:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    # Every figure is closed on disk and every answer flushed: end now, as multiprocessing's
    # workers do, instead of tearing down matplotlib's modules (~0.2 s the writer waits for).
    sys.stderr.flush()
    os._exit(0)


def main() -> NoReturn:
    # Not a KeyboardInterrupt traceback beside the training process's "stopped by SIGINT".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    if hasattr(os, "nice"):  # draw on the cores training leaves idle, not against it
        os.nice(NICENESS)
    renderer = Renderer()
    renderer.warm_up()
    # The other workers' (job pipe, answer pipe) ends, forked now, with matplotlib loaded.
    lanes = [tuple(int(fd) for fd in arg.split(",")) for arg in sys.argv[1:]]
    for fd in [fd for lane in lanes for fd in lane]:
        os.set_inheritable(fd, False)  # (pass_fds made them so) no process started here keeps one
    forked = []
    for ours in lanes:
        try:
            pid = os.fork()
        except OSError:
            continue  # its pipes close below: its writer draws its figures itself
        if pid == 0:
            for fd in [fd for lane in lanes if lane is not ours for fd in lane]:
                os.close(fd)
            null = os.open(os.devnull, os.O_RDWR)  # not the first worker's pipes, which
            os.dup2(null, 0)  # would then not end with it
            os.dup2(null, 1)
            os.close(null)
            _serve(renderer, os.fdopen(ours[0], "rb"), os.fdopen(ours[1], "wb"))
        forked.append(pid)
    for fd in [fd for lane in lanes for fd in lane]:
        os.close(fd)
    _serve(renderer, stdin, stdout, tuple(forked))


if __name__ == "__main__":
    main()
