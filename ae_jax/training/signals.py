"""Ctrl-C and SIGTERM that keep the work.

`StopRequests` turns SIGTERM and SIGINT into a flag the training loop checks after each chunk
of steps (and evaluation between models): it then saves a checkpoint and exits with
`Interrupted`, and the same command resumes. A second signal while stopping falls through to the
default action.

`Interrupted` is a `KeyboardInterrupt`: in a notebook or a script looping over configs, a
`try/except Exception` around one call does not swallow the stop and go on to the next.

Python runs a handler only when the main thread is back in the interpreter, and an XLA call
holds it for as long as the computation runs (an IWAE bound of k = 1000: 10-20 s), so
`Announcer`, a thread reading the signals' wakeup descriptor, says that the process is stopping
the moment the signal arrives. Each stop is said once, by whichever of the two comes first.
"""

import contextlib
import functools
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any


class Interrupted(KeyboardInterrupt):
    """Stopped on a signal, with the work kept (a checkpoint, or the finished runs); the same
    command, or Python call, resumes."""

    def __init__(
        self,
        signum: int,
        where: str,
        kept: str = "its state is saved",
        then: str = "run the same command (or Python call) again to resume",
    ):
        self.signum, self.where = signum, where
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} {where}; {kept}: {then}.")


def stopped(
    signum: int, where: str, checkpoints: bool, kept: str = "its state is saved"
) -> Interrupted:
    """A stop whose state is a checkpoint (`kept`), if checkpoints are on (train.checkpoints)."""
    if checkpoints:
        return Interrupted(signum, where, kept)
    return Interrupted(
        signum,
        where,
        "train.checkpoints=False, so no state was saved",
        "the same command trains from epoch 1 again (turn checkpoints on to resume)",
    )


def raise_if_stopped(
    stop: "StopRequests", where: str, checkpoints: bool, kept: str, trackers: Sequence = ()
) -> None:
    """`stopped(...)` if a stop was requested, first closing `trackers` (runs' writers) as
    stopped: an MLflow run stopped while evaluated stayed RUNNING, not KILLED."""
    if stop.signum is not None:
        end_trackers(trackers, stopped=True)
        raise stopped(stop.signum, where, checkpoints, kept)


def end_trackers(trackers: Sequence, stopped: bool) -> None:
    """Closes runs' writers that a stop request (`stopped`) or else an error ends, each
    tracker saying which (MLflow's run was left RUNNING and TensorBoard's file open); those
    closed already stay as they are. What a tracker raises here is dropped: the stop or error
    said is the one that ended the runs."""
    for t in trackers:
        with contextlib.suppress(Exception):
            t.close(stopped=stopped, failed=not stopped)


def while_writing(
    stop: "StopRequests", checkpoints: bool, one_run: bool = False
) -> Callable[[], None]:
    """What `FigureWriter.wait` looks at while runs' figures and summaries are written (of
    one run alone, `one_run`, or of groups of runs)."""
    # A run's eval.json is written with its figures, and a group's runs are marked done
    # together (`evaluation/finish.py`): the others are evaluated again by the rerun
    # ("evaluation is saved" said so of a sweep's 12 runs of 18 lacking it).
    if one_run:  # ("the others" said of a run alone: a probe)
        done = (
            "training is finished and saved, as is its evaluation if written in full before "
            "the stop (else the rerun evaluates it again)"
        )
    else:
        done = (
            "training is finished and saved, as are the groups of runs written in full before "
            "the stop (the others are evaluated again)"
        )
    where = "while writing figures and summaries"
    return functools.partial(raise_if_stopped, stop, where, checkpoints, done)


# The stop outside training said (see `acknowledge`): taken once per process, as such a stop
# ends the command.
_COMMAND_STOP_SAID = threading.Lock()


def acknowledge(signum: int) -> None:
    """Says on fd 2 that a SIGTERM/SIGINT stops the process, once per stop: the first call for
    a stop writes, later ones (the handler after the announcer, or the reverse) do not."""
    stopping = StopRequests._installed
    said = stopping._said if stopping is not None else _COMMAND_STOP_SAID
    if not said.acquire(blocking=False):  # (never blocks: a handler may interrupt a holder)
        return
    name = signal.Signals(signum).name
    if stopping is not None:
        text = (
            f"{name}: stopping at the next safe point, after the chunk of steps or evaluation "
            "pass under way (a second one stops at once)\n"
        )
    else:
        text = f"{name}: stopping once the computation under way returns\n"
    # Written to the descriptor, as a handler may interrupt the main thread inside a write to
    # sys.stderr.
    try:  # fd 2 may be closed, or a pipe whose reader a Ctrl-C ended (`2>&1 | tee`)
        os.write(2, text.encode())
    except OSError:
        pass  # the stop itself must not fail


_AT_ONCE = (
    "stopping now, without a clean stop; what was saved is kept (the checkpoints, finished "
    "runs): run the same command again to resume from the newest checkpoint"
)


class Announcer:
    """Within a `with` block (in the main thread), a SIGTERM or SIGINT is said at once by a
    thread, while the main thread may be inside an XLA call for seconds; the handlers act when
    it returns. Through `signal.set_wakeup_fd`, whose byte per signal also reaches the
    descriptor set before (an event loop's), which is set again at the end. Blocks nest: an
    inner one does nothing."""

    _active: "Announcer | None" = None

    def __init__(self) -> None:
        self._previous_fd: int | None = None

    def __enter__(self) -> "Announcer":
        if (
            Announcer._active is not None
            or threading.current_thread() is not threading.main_thread()
        ):
            return self
        read, write = os.pipe()
        try:
            os.set_blocking(write, False)  # (set_wakeup_fd requires it)
            previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except (OSError, ValueError):  # (a platform whose pipes cannot be, e.g. Windows': the
            os.close(read)  # handlers still say it, when they run)
            os.close(write)
            return self
        thread = threading.Thread(
            target=self._listen, args=(read, previous), daemon=True, name="ae_jax stops"
        )
        try:
            thread.start()
        except BaseException:  # (no thread to be had, or a stop just then): as before
            _set_wakeup_fd(previous)
            os.close(read)
            os.close(write)
            raise
        self._previous_fd, self._write, self._thread = previous, write, thread
        Announcer._active = self
        return self

    @staticmethod
    def _listen(read: int, previous: int) -> None:
        stops = (signal.SIGTERM, signal.SIGINT)
        try:
            while data := os.read(read, 64):  # b"" once the block ends and closes the pipe
                if previous >= 0:
                    try:
                        os.write(previous, data)
                    except OSError:
                        pass
                for signum in data:
                    if signum in stops:
                        acknowledge(signum)
        finally:
            os.close(read)

    def __exit__(self, *exc) -> None:
        """Ends the thread once it has read every byte written before (so a stop inside the
        block is said in the block's words, by its once-flag)."""
        if Announcer._active is not self:
            return
        Announcer._active = None
        try:
            _set_wakeup_fd(self._previous_fd)
        finally:
            os.close(self._write)
            self._thread.join(timeout=5)


def _set_wakeup_fd(fd: int | None) -> None:
    """The wakeup descriptor set back to `fd`, or to none if `fd` cannot be any more (closed,
    or made blocking, while the block ran)."""
    try:
        signal.set_wakeup_fd(-1 if fd is None else fd)
    except (OSError, ValueError):
        signal.set_wakeup_fd(-1)


def stop_outside_training(signum, frame) -> None:
    """The launchers' SIGTERM/SIGINT handler outside training (whose own, `StopRequests`, keep
    its state): while a command's modules load, or in evaluate, encode, report or export,
    whose files are each written whole (Ctrl-C printed a 75-line traceback, SIGTERM ended it
    silently)."""
    _COMMAND_STOP_SAID.acquire(blocking=False)  # said by the line below, not the announcer
    raise Interrupted(
        signum, "before the command finished", "nothing it had written is lost", "run it again"
    )


class StopRequests:
    """Within a `with` block, SIGTERM/SIGINT set `.signum` instead of killing the process.

    Blocks nest: an inner `with StopRequests() as stop` (a group's training inside a sweep)
    gets the outer one, whose handlers are the process's, so a signal between the sweep's
    groups is the flag the next group sees."""

    _installed: "StopRequests | None" = None  # the one whose handlers the process has

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._nested = False
        self._said = threading.Lock()  # this stop said (`acknowledge`)
        self._announcer = Announcer()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # Second signal: give up on a clean stop, at once (not
            previous = self._previous.get(signum, signal.SIG_DFL)  # when a C call returns)
            at_once = previous is stop_outside_training
            with contextlib.suppress(OSError):  # (it ended silently: was anything kept?)
                os.write(2, f"{signal.Signals(signum).name} again: {_AT_ONCE}\n".encode())
            signal.signal(signum, signal.SIG_DFL if at_once else previous)
            signal.raise_signal(signum)
            return
        self.signum = signum
        acknowledge(signum)  # said at once, unless the announcer has said it already

    def __enter__(self) -> "StopRequests":
        if StopRequests._installed is not None:
            self._nested = True
            return StopRequests._installed
        # Signal handlers can only be installed from the main thread (e.g. not under Ray).
        if threading.current_thread() is not threading.main_thread():
            return self
        for s in (signal.SIGTERM, signal.SIGINT):
            self._previous[s] = signal.signal(s, self._handle)
        StopRequests._installed = self
        self._announcer.__enter__()  # (nothing, where a launcher's encloses the process)
        return self

    def __exit__(self, *exc) -> None:
        if self._nested:
            self._nested = False
            return
        if not self._previous:
            return
        # First the announcer's thread ends, having said any stop of the block in its words;
        # where a launcher's thread goes on (it may lag behind), this stop is said already.
        self._announcer.__exit__()
        if self.signum is not None:
            _COMMAND_STOP_SAID.acquire(blocking=False)
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        StopRequests._installed = None
        self._previous = {}


@contextlib.contextmanager
def stop_file(path: str):
    """Within the block, `path` appearing is a SIGTERM to the training loop (its
    `StopRequests`, installed for the block): a Ray task's process gets no signal of its
    driver's, which writes the file instead (on the workdir every task shares). A thread looks
    for it every half second."""
    stop, done = StopRequests(), threading.Event()

    def look() -> None:
        while not done.wait(0.5):
            if os.path.exists(path):
                stop.signum = signal.SIGTERM
                return

    if StopRequests._installed is not None:  # (a process's handlers already say it)
        yield StopRequests._installed
        return
    StopRequests._installed = stop
    thread = threading.Thread(target=look, daemon=True, name="ae_jax stop file")
    thread.start()
    try:
        yield stop
    finally:
        done.set()
        thread.join()
        StopRequests._installed = None
