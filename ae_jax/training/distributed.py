"""Multi-host training through `jax.distributed.initialize`.

Every process runs the same command; together they see every host's devices
(`jax.devices()`), so the layouts of `training/placement.py` span hosts unchanged.
Process 0 is the writer: it holds the workdir lock and writes every file
(metrics, summaries, TensorBoard, figures, checkpoints); the others compute, and
read the same files on resume (the workdir must be on a shared file system).

Settings come from flags (`--coordinator_address`, `--num_processes`,
`--process_id`) or the environment (`AE_JAX_COORDINATOR_ADDRESS`,
`AE_JAX_NUM_PROCESSES`, `AE_JAX_PROCESS_ID`); on TPU pods and in a SLURM job step of
several tasks (srun -n N) JAX detects them itself.
"""

import collections
import contextlib
import hashlib
import json
import os
import threading
import zlib

import jax
import numpy as np
from absl import logging

from ae_jax import config as config_lib
from ae_jax.errors import UserError


def initialize(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1) -> None:
    """Joins the processes of one multi-host run; a no-op for a single process."""
    env = os.environ
    given = [  # the process count and id as the user set them, flag or variable
        f"--{name}={value}" if value != unset else f"{var}={env[var]}"
        for name, value, unset, var in (
            ("num_processes", num_processes, 0, "AE_JAX_NUM_PROCESSES"),
            ("process_id", process_id, -1, "AE_JAX_PROCESS_ID"),
        )
        if value != unset or var in env
    ]
    coordinator_address = coordinator_address or env.get("AE_JAX_COORDINATOR_ADDRESS", "")
    num_processes = num_processes or _env_int(env, "AE_JAX_NUM_PROCESSES", 0)
    if process_id < 0:
        process_id = _env_int(env, "AE_JAX_PROCESS_ID", -1)
    slurm = _slurm_step_of_several_tasks(env)
    tpu_pod = "TPU_WORKER_HOSTNAMES" in env and "," in env["TPU_WORKER_HOSTNAMES"]
    if not coordinator_address and not slurm and not tpu_pod:
        if num_processes > 1 or process_id > 0:  # (each host trained alone, unsaid: a probe)
            raise UserError(
                f"a multi-host run's process count or id is set ({', '.join(given)}), "
                "but not its coordinator: set --coordinator_address=HOST:PORT (or "
                "AE_JAX_COORDINATOR_ADDRESS), the same for every process, or unset them to "
                "train as one process."
            )
        return
    if coordinator_address and (num_processes < 1 or process_id < 0):  # (JAX's own error
        unset = [  # named flags the user never passed, values they never set: a probe)
            f"{flag} (or {var})"
            for flag, var, bad in (
                ("--num_processes", "AE_JAX_NUM_PROCESSES", num_processes < 1),
                ("--process_id", "AE_JAX_PROCESS_ID", process_id < 0),
            )
            if bad
        ]
        raise UserError(
            f"a multi-host run's coordinator is set ({coordinator_address!r}), but not "
            f"{' nor '.join(unset)}: each process needs the number of processes and its own id "
            "(0 .. n-1)."
        )
    # CPU devices of several processes talk through gloo collectives; the option only
    # concerns CPU devices, and asking which backend is in use would start it too early.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    how = (
        f"--coordinator_address={coordinator_address!r}, --num_processes={num_processes}, "
        f"--process_id={process_id}"
        if coordinator_address
        else ("the SLURM step's tasks" if slurm else "the TPU pod's hosts")
    )
    wait = _env_int(env, JOIN_TIMEOUT_ENV, JOIN_TIMEOUT_S)
    if wait < 1:
        raise UserError(f"{JOIN_TIMEOUT_ENV}={wait}; expected whole seconds >= 1.")
    logging.info("joining the processes of a multi-host run (%s): waiting up to %d s", how, wait)
    # JAX ends a process whose peers do not all join in time with a C++ abort and a stack dump
    # (after 5 silent minutes: a probe): this process says why and ends first.
    watchdog = threading.Timer(wait, _not_joined, (how, wait))
    watchdog.daemon = True
    watchdog.start()
    late = wait + 60  # JAX's own deadline, after this process's
    try:
        if coordinator_address:
            jax.distributed.initialize(
                coordinator_address, num_processes, process_id, initialization_timeout=late
            )
        else:  # SLURM / TPU pod: detected by JAX
            jax.distributed.initialize(initialization_timeout=late)
    except (ValueError, RuntimeError) as e:
        text = " ".join(str(e).split())[:300].rstrip(".")
        raise UserError(
            f"the processes of a multi-host run could not join ({how}): {text}. Check the "
            "coordinator's address and port, the number of processes and each process's id "
            "(0 .. n-1), and that every process was started."
        ) from None
    finally:
        watchdog.cancel()
    check_same_devices(jax.devices())
    logging.info(
        "process %d of %d; %d local and %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    if jax.default_backend() == "cpu" and jax.config.jax_enable_compilation_cache:  # type: ignore[attr-defined]
        # Under jax 0.12.1, CPU processes that loaded their programs from the persistent cache
        # hung in their first gloo collective, silently (two processes on one machine: the
        # first launch trained, the same command again never reached epoch 1). Multi-process
        # CPU runs are small: they compile instead (before any program has: this still holds).
        jax.config.update("jax_enable_compilation_cache", False)
        logging.info("compilation cache off for this multi-process CPU run: its programs compile")


JOIN_TIMEOUT_ENV, JOIN_TIMEOUT_S = "AE_JAX_JOIN_TIMEOUT", 300  # JAX's own default


def _not_joined(how: str, wait: int) -> None:
    """Ends the process with a one-paragraph error: its peers did not all join in time (the
    main thread is inside JAX's join, which cannot be interrupted)."""
    message = (
        f"error: the processes of a multi-host run did not all join within {wait} s ({how}). "
        "Check that every process was started, with the same --coordinator_address and "
        "--num_processes and its own --process_id (0 .. n-1), and that the coordinator's "
        f"host and port are reachable from every host; {JOIN_TIMEOUT_ENV}=SECONDS waits "
        "longer. Nothing was written.\n"
    )
    with contextlib.suppress(OSError):
        os.write(2, message.encode())
    os._exit(2)


def check_same_devices(devices) -> None:
    """Refuses (in every process alike: each sees every process's devices) processes with
    different numbers of devices, which the layouts and the gathers assume equal: a process
    started without another's XLA_FLAGS was a 40-line traceback of a reshape (a probe)."""
    per = collections.Counter(d.process_index for d in devices)
    if len(set(per.values())) > 1:
        counts = ", ".join(f"process {p}: {n}" for p, n in sorted(per.items()))
        raise UserError(
            f"the processes of this multi-host run have different numbers of devices ({counts}); "
            "expected as many in each: the same accelerators per host, or on CPUs the same "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N in every process's environment; "
            "nothing was written."
        )


def _env_int(env, name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        raise UserError(f"{name}={env[name]!r}; expected a whole number.") from None


# What srun sets in each task of a job step (and JAX's SLURM detection reads). A batch script
# of a job with several tasks (sbatch -n 4, salloc -n 2) that starts one process has
# SLURM_NTASKS > 1 too, but no step of several tasks: that process trains alone.
_SLURM_STEP = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID", "SLURM_LOCALID")


def _slurm_step_of_several_tasks(env) -> bool:
    try:
        tasks = int(env.get("SLURM_STEP_NUM_TASKS", "1"))
    except ValueError:
        return False
    return tasks > 1 and all(v in env for v in _SLURM_STEP)


def is_writer() -> bool:
    """True in the one process that writes the workdir (process 0)."""
    return jax.process_index() == 0


def fetch(tree):
    """Device arrays -> host numpy, gathering shards that live on other hosts."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(
        lambda a: (
            np.asarray(a)
            if getattr(a, "is_fully_replicated", True)
            else multihost_utils.process_allgather(a, tiled=True)
        ),
        tree,
    )


def agreed_stop(signum: int | None) -> int | None:
    """A stop request as every process of a multi-host run acts on it: the signal of the first
    process that got one, if any did. Each process is signalled on its own (SIGTERM to one task,
    Ctrl-C in one terminal); one that stopped alone left the others in the next chunk's
    collectives, waiting for it until JAX's timeout. Every process calls this at the same
    points (between chunks, after an epoch); with one process it returns `signum`."""
    if jax.process_count() == 1:
        return signum
    got = np.asarray(_allgather(np.int32(signum or 0))).reshape(-1)
    return int(got[got > 0][0]) if (got > 0).any() else None


def barrier() -> None:
    """Returns in each process of a multi-host run once every process has called it (a
    no-op for one process): where process 0 has just changed shared files that the others
    read next (opening the checkpoints, it puts back a re-saved epoch a kill left renamed
    away; a process listing them before that resumed from an older epoch than the others)."""
    if jax.process_count() > 1:
        _allgather(np.int32(0))


def check_same_runs(configs: list, workdirs: list[str]) -> None:
    """Refuses, in every process, a multi-host run whose processes were given different
    configs or workdirs (train.epochs raised on one host): they trained in step until the
    shorter one left, and the others then waited in a collective for ever. A no-op for one
    process; every process calls it at the same point, before anything is written."""
    if jax.process_count() == 1:
        return
    fields = {f"workdir[{i}]": str(w) for i, w in enumerate(workdirs)}
    for i, c in enumerate(configs):
        for name, value in config_lib.flatten_config(c.to_dict()).items():
            key = name if i == 0 else f"[{i}] {name}"
            fields[key] = json.dumps(value, sort_keys=True, default=str)
    names = sorted(fields)
    # 24-bit digests as int32: what JAX gathers without 64-bit types
    digest = lambda text: int.from_bytes(hashlib.sha256(text.encode()).digest()[:3], "big")  # noqa: E731
    mine = np.array(
        [digest("\n".join(names)), digest(json.dumps(fields, sort_keys=True))], np.int32
    )
    seen = np.asarray(_allgather(mine)).reshape(jax.process_count(), 2)
    if (seen == seen[0]).all():
        return
    others = [int(p) for p in np.flatnonzero((seen != seen[0]).any(axis=1))]
    which = "the config's fields"
    if (seen[:, 0] == seen[0, 0]).all():  # the same fields: which values differ
        crc = np.array([zlib.crc32(fields[n].encode()) >> 1 for n in names], dtype=np.int32)
        all_crc = np.asarray(_allgather(crc)).reshape(jax.process_count(), len(names))
        differ = [n for j, n in enumerate(names) if (all_crc[:, j] != all_crc[0, j]).any()]
        which = ", ".join(differ[:5]) + (" ..." if len(differ) > 5 else "")
    raise UserError(
        f"the {jax.process_count()} processes of this multi-host run were given different "
        f"runs: process(es) {others} differ from process 0 in {which}. Every process must "
        "run the same command (the same --config, overrides and --workdir), only "
        "--process_id differing; nothing was written."
    )


def _allgather(x: np.ndarray | np.generic) -> np.ndarray:
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(x)
