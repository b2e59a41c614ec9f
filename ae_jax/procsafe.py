"""Process safety: one process per workdir, and Ctrl-C / SIGTERM that keep the work.

`WorkdirLock` takes a POSIX record lock (`fcntl.lockf`) on `workdir/.lock`. Such
locks work across hosts on NFS, and the kernel drops them when the holder dies,
even by SIGKILL, so a crashed run never leaves a stale lock behind.

`StopRequests` turns SIGTERM and SIGINT into a flag the training loop checks
after each epoch: it then saves a checkpoint and exits, and the same command
resumes. A second signal while stopping falls through to the default action.
"""

import datetime
import fcntl
import os
import signal
import socket
import threading

from ae_jax.errors import UserError


class WorkdirLock:
    """Exclusive lock on a workdir for the life of a `with` block."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, ".lock")
        self._file = None

    def __enter__(self) -> "WorkdirLock":
        f = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime.
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise UserError(
                f"workdir {os.path.dirname(self.path)!r} is in use by {holder}; two processes "
                "must not train the same run. Wait for it to finish (or stop it), or use "
                "another --workdir."
            ) from None
        f.seek(0)
        f.truncate()
        now = datetime.datetime.now().isoformat(timespec="seconds")
        f.write(f"pid {os.getpid()} on host {socket.gethostname()} since {now}")
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.truncate(0)
            fcntl.lockf(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def holder(workdir: str) -> str | None:
    """Who holds the workdir's lock, from the text the holder wrote, without locking.

    Probing with a lock of our own would be wrong twice over: POSIX locks are per
    process (a probe from the holder's process succeeds) and closing the probe's file
    drops every lock the process has on it. A holder killed by SIGKILL leaves its
    text behind, so a pid on this host is checked for life.
    """
    try:
        with open(os.path.join(workdir, ".lock")) as f:
            text = f.read().strip()
    except OSError:
        return None
    parts = text.split()
    if len(parts) < 5 or parts[0] != "pid":
        return None
    if parts[3] == socket.gethostname():
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return None
        except (PermissionError, ValueError):
            pass
    return text


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint; rerun to resume."""

    def __init__(self, signum: int, epoch: int):
        self.signum, self.epoch = signum, epoch
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after epoch {epoch}; a checkpoint of that epoch "
                         "is saved: run the same command again to resume.")


class StopRequests:
    """Within a `with` block, SIGTERM/SIGINT set `.signum` instead of killing the process."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # Second signal: give up on a clean stop.
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
            return
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        # Signal handlers can only be installed from the main thread (e.g. not under Ray).
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
