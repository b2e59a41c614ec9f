"""The workdir's `.lock`: held by the one process that trains a run (`workdir` names it in the
contract and re-exports these); and `waiting` locks, for short rewrites of shared files.

POSIX record locks (`fcntl.lockf`) belong to a process, so a sweep's claim on a run and the
run's own lock taken inside it nest; but closing any descriptor of a lock file drops every lock
the process holds on it. So each lock file is opened once per process, and `holder` reads a
lock this process holds through that same file.
"""

import contextlib
import datetime
import errno
import fcntl
import os
import re
import socket
import threading

from absl import logging

from ae_jax.errors import UserError

LOCK = ".lock"

_HOLDER_TEXT = "pid {pid} on host {host} since {since}"  # what a lock's holder writes ...
_HOLDER = re.compile(r"pid (?P<pid>\d+) on host (?P<host>\S+) since (?P<since>\S+)")  # ... read


class WorkdirLock:
    """Exclusive lock on a workdir for a `with` block; re-entrant in the thread that took it.

    POSIX locks belong to the process, and closing any descriptor of the file drops all of
    them: so each lock file is opened once per process (`_HELD`: path -> [file, holders, the
    thread that took it]), a nested lock of the same workdir in that thread (a sweep's claim,
    then the run's own) only counts (another thread's is refused), and
    `holder` reads a held file's text through it (a probe's close dropped a sweep's claims, and
    another shard trained the run too)."""

    _HELD: dict[str, list] = {}
    _GUARD = threading.Lock()  # the finishing thread releases locks the main thread took

    def __init__(self, workdir: str):
        self.path = os.path.realpath(os.path.join(workdir, LOCK))
        self._entered = False

    def __enter__(self) -> "WorkdirLock":
        with self._GUARD:
            if self.path in self._HELD:
                # Nested in the thread that took it (a sweep's claim, then the run's own); a
                # call from another thread is a second trainer, as another process is: two
                # threads training one run interleaved their checkpoints and histories.
                if self._HELD[self.path][2] != threading.get_ident():
                    raise UserError(
                        f"workdir {os.path.dirname(self.path)!r} is in use by another thread "
                        f"of this process (pid {os.getpid()}); two calls must not train the "
                        "same run at once. Wait for that call to return, or use another workdir."
                    )
                self._HELD[self.path][1] += 1
                self._entered = True
                return self
            f = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime.
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                f.close()
                raise UserError(
                    f"workdir {os.path.dirname(self.path)!r} is in use by {holder}; two "
                    "processes must not train the same run. Wait for it to finish (or stop it), "
                    "or use another workdir."
                ) from None
            f.seek(0)
            f.truncate()
            now = datetime.datetime.now().isoformat(timespec="seconds")
            f.write(_HOLDER_TEXT.format(pid=os.getpid(), host=socket.gethostname(), since=now))
            f.flush()
            self._HELD[self.path] = [f, 1, threading.get_ident()]  # file, holds, owner
            self._entered = True
        return self

    def __exit__(self, *exc) -> None:
        with self._GUARD:
            if not self._entered:
                return
            self._entered = False
            held = self._HELD[self.path]
            held[1] -= 1
            if held[1] == 0:
                del self._HELD[self.path]
                held[0].truncate(0)
                fcntl.lockf(held[0], fcntl.LOCK_UN)
                held[0].close()


def holder(workdir: str) -> str | None:
    """Who holds the workdir's lock, from the text the holder wrote, without locking.

    Probing with a lock of our own would be wrong twice over: POSIX locks are per
    process (a probe from the holder's process succeeds) and closing the probe's file
    drops every lock the process has on it (so a lock this process holds is read through its
    own file). A holder killed by SIGKILL leaves its text behind, so a pid on this host is
    checked for life.
    """
    path = os.path.realpath(os.path.join(workdir, LOCK))
    with WorkdirLock._GUARD:
        if path in WorkdirLock._HELD:
            own = WorkdirLock._HELD[path][0]
            own.seek(0)
            return own.read().strip()
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    found = _HOLDER.fullmatch(text)
    if found is None:
        return None
    pid, host = int(found["pid"]), found["host"]
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return text


@contextlib.contextmanager
def waiting(path: str):
    """An exclusive lock on `path`, a folder or a file (made if missing), for a `with` block,
    waiting while another holder has it: for a short read-then-rewrite of files that a
    sweep's launches or reports share (sweep.json; a report's files and its list of them).
    BSD `flock` locks belong to the open file, not to the process, so unlike `.lock`'s they
    hold between this process's threads too, and need no write access: a folder is locked
    without a file written into it. Not nested on one path (it would wait for itself). On
    NFS a folder's lock holds between the processes of one machine only (Linux's NFS gives
    folders no flock of its own), a file's between machines; where a file system refuses
    the lock (EBADF, ENOLCK, ...), the block runs unlocked, as it did before."""
    try:  # (a file another user made, 0644 in a shared folder: read, as a lock needs no more)
        fd = os.open(path, os.O_RDONLY if os.path.isdir(path) else os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    try:
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # said, or a wait behind a stuck holder looks like a hang
                logging.info("waiting for %s, held by another process ...", path)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            if e.errno not in _NO_LOCKS:
                raise
        yield
    finally:
        os.close(fd)


_NO_LOCKS = (errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL)
