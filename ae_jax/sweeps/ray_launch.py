"""Sweeps on Ray (`--launcher=ray`): connecting, submitting each group of runs as a task, and
passing a stop on to the tasks, which get no signal of the driver's."""

import contextlib
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable

from absl import logging

from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.training.signals import Interrupted, StopRequests


def connect(address: str, cpus: float, gpus: float):
    """Ray, started (or reached at `address`) with room for a task of `cpus` and `gpus`."""
    # Ray folds log lines that look alike from several workers into one ("[repeated 2x across
    # cluster]"): two groups' summary tables lost rows that differed only in their numbers.
    # Ray reads the switch when it is imported, so it is set first.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:  # optional (the `ray` extra): run_sweep checked it is there; this, that it imports
        import ray
    except ImportError as e:
        raise UserError(
            f"--launcher=ray: Ray does not import ({e}); reinstall the extra: "
            'pip install "ae_jax[ray]" (in a checkout: pip install -e ".[ray]").'
        ) from None
    # ray.init puts its own SIGTERM handler in place, which ends the driver with status 15 (a
    # stop before `run` took over; its second stop: status 1): the process's handlers (the
    # command's: a clean stop, and a second one at once as the signal's own) are put back.
    main = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        ray.init(
            address=address or None,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"--ray_address={address!r}: Ray could not start or connect: {e}") from None
    except SystemExit as e:  # Ray's handler, on a stop while it started: sys.exit(signum)
        if e.code not in (signal.SIGTERM, signal.SIGINT):
            raise
        raise Interrupted(int(e.code), "while Ray started", "no run had started training") from None
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    have = ray.cluster_resources()
    for flag, asked, kind in (("--ray_cpus", cpus, "CPU"), ("--ray_gpus", gpus, "GPU")):
        if asked <= have.get(kind, 0):
            continue
        why = (
            f"{flag}={asked:g}: each Ray task asks for {asked:g} {kind}(s), but the Ray cluster "
            f"has {have.get(kind, 0):g}"
        )
        if address:  # a cluster may add nodes when asked (an autoscaler): said, not refused
            logging.warning("%s now; the tasks wait until it has more", why)
        else:  # the local Ray this process started: such a task would wait for ever
            raise UserError(
                f"{why}; no task could start. Ask for at most that many, or connect to a "
                "cluster that has them (--ray_address)."
            )
    return ray


def run(
    ray, address: str, task, arguments: list[tuple], workdir: str, progress: Callable[[], object]
) -> None:
    """Submits `task(*args, stop_path)` for each of `arguments` (a group of runs each) to Ray
    (at `address`, "" for a local one) and waits for them, calling `progress` as they end.

    A stop (SIGTERM, SIGINT; handled here, after ray.init, whose own SIGTERM handler aborted
    3 s after) is passed on to the tasks as a file in the sweep's workdir (`workdir.STOP`):
    the runs under way save their state, tasks not started end at once (each returns whether
    it stopped), and the sweep ends with the resume hint. The file is this launch's own: a
    stop of one of the launches sharing the workdir (shards, reruns) stopped them all, the
    others silently, with exit status 0."""
    launch = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    stop_path = os.path.join(workdir, workdir_lib.STOP.format(launch=launch))
    with StopRequests() as stop, _removed(stop_path):
        pending = submitted = [task.remote(*args, stop_path) for args in arguments]
        where = address or "a local Ray"
        logging.info("sweep: submitted %d Ray task(s) to %s", len(pending), where)
        while pending:
            done, pending = ray.wait(pending, timeout=0.2)
            if stop.signum is not None and not os.path.exists(stop_path):
                workdir_lib.write_json(stop_path, {"signal": stop.signum})
                logging.info("sweep: asking %d Ray task(s) to stop", len(pending))
            if done:
                progress()
        if stop.signum is not None and any(_stopped(ray, ref) for ref in submitted):
            raise Interrupted(
                stop.signum,
                "while its Ray tasks trained",
                "the runs under way saved their state",
                "run the same command again to resume",
            )


@contextlib.contextmanager
def _removed(path: str):
    """`path` gone before and after the block (one left by a killed driver stops no task)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _stopped(ray, ref) -> bool:
    """Whether a finished task stopped on the sweep's stop (a task that failed did not)."""
    try:
        return bool(ray.get(ref))
    except Exception:  # noqa: BLE001 - its runs are marked failed by the task itself
        return False
