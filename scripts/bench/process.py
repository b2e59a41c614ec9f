"""Whole processes timed from start to exit, every line of their output time-stamped.

A user waits for the whole command: interpreter start, imports, reading the data, compiling,
training, evaluation, figures, exit. `run()` starts the command with `subprocess.Popen`, reads
its merged stdout and stderr as the bytes arrive (`os.read` on the pipe: no line buffering on
this side, and PYTHONUNBUFFERED=1 on the child's), stamps every line with `time.perf_counter()`
and returns the wall time from just before the start to the exit, with the lines, and the CPU
time the process and its descendants used (the figure workers, which it waits for, and theirs).
"""

import dataclasses
import os
import resource
import selectors
import signal
import subprocess
import sys
import time

from bench.common import ROOT, log

# Environment variables that choose a persistent compilation cache: cleared for a contender
# that should run as a user gets it by default.
CACHE_VARS = ("AE_JAX_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR")


@dataclasses.dataclass
class Result:
    cmd: list[str]
    rc: int
    wall_s: float  # start (just before Popen) to exit (wait returned)
    lines: list[tuple[float, str]]  # (seconds since start, text) per output line
    cpu_s: float  # user + system CPU of the process and every descendant waited for

    @property
    def first_line_s(self) -> float:
        """Start to the first line of output (the whole run if it printed nothing)."""
        return self.lines[0][0] if self.lines else self.wall_s

    @property
    def tail_s(self) -> float:
        """The last line of output to the exit."""
        return self.wall_s - self.lines[-1][0] if self.lines else self.wall_s

    def longest_gap(self) -> tuple[float, int]:
        """(seconds, i): the longest silence between consecutive lines i-1 and i (0, 0 if
        fewer than two lines)."""
        best = (0.0, 0)
        for i in range(1, len(self.lines)):
            best = max(best, (self.lines[i][0] - self.lines[i - 1][0], i))
        return best

    def worst_silence(self) -> tuple[float, str]:
        """The longest time without output anywhere from start to exit, and where."""
        gap, i = self.longest_gap()
        worst = [(self.first_line_s, "start to first line"), (self.tail_s, "last line to exit")]
        if i:
            worst.append((gap, f"between lines {i} and {i + 1}"))
        return max(worst)

    def last_line_with(self, text: str) -> float | None:
        """Seconds since start of the last line containing `text`."""
        for t, line in reversed(self.lines):
            if text in line:
                return t
        return None

    def find(self, text: str) -> str | None:
        for _, line in reversed(self.lines):
            if text in line:
                return line
        return None

    def tail_text(self, n: int = 15) -> str:
        return "\n".join(line for _, line in self.lines[-n:])


class ProcessFailed(RuntimeError):
    pass


def child_env(updates: dict | None = None) -> dict:
    """os.environ with PYTHONUNBUFFERED=1 and `updates` (a value of None removes the key)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for key, value in (updates or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def run(
    cmd: list[str],
    env: dict | None = None,
    log_path: str = "",
    timeout_s: float = 3600,
    check: bool = True,
) -> Result:
    """Runs `cmd` in the repository root; see the module docstring. `env`: see child_env.

    The output also goes to `log_path` (if given), each line after its time stamp. With
    `check`, a non-zero exit raises ProcessFailed with the output's last lines.
    """
    lines: list[tuple[float, str]] = []
    pending = b""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # one child runs at a time
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while True:
            left = timeout_s - (time.perf_counter() - t0)
            if left <= 0:
                os.killpg(proc.pid, signal.SIGKILL)
                raise ProcessFailed(f"timed out after {timeout_s:.0f} s: {' '.join(cmd)}")
            if not sel.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(fd, 1 << 16)
            now = time.perf_counter() - t0
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            lines += [(now, c.decode(errors="replace").rstrip("\r")) for c in complete]
        rc = proc.wait()
        wall = time.perf_counter() - t0
    finally:
        sel.close()
        proc.stdout.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if pending:  # A last line without a newline arrived with the end of the output.
        lines.append((lines[-1][0] if lines else wall, pending.decode(errors="replace")))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result = Result(cmd, rc, wall, lines, cpu)
    if log_path:
        with open(log_path, "w") as f:
            f.write(f"$ {' '.join(cmd)}\n")
            f.writelines(f"{t:9.3f} {text}\n" for t, text in lines)
            f.write(f"exit {rc} after {wall:.3f} s\n")
    if check and rc != 0:
        raise ProcessFailed(f"exit {rc}: {' '.join(cmd)}\n{result.tail_text()}")
    return result


def python(*args: str) -> list[str]:
    """A command line running this interpreter (the same virtual environment)."""
    return [sys.executable, *args]


def timed_run(
    label: str, cmd: list[str], env: dict | None = None, log_path: str = "", **kwargs
) -> Result:
    log(f"{label}: {' '.join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)}")
    result = run(cmd, env, log_path, **kwargs)
    log(f"{label}: {result.wall_s:.2f} s")
    return result
