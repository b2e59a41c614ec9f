"""Two processes on localhost (CPU collectives) train like one process with all devices."""

import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from ae_jax import experiment
from ae_jax.configs import seed_deep
from ae_jax.errors import UserError
from ae_jax.training import distributed
from ae_jax.training.checkpoint import Checkpointer
from tests.conftest import suite_xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = [
    "--config=experiments/configs/seed_deep.py",
    "--config.train.epochs=3",
    "--config.train.batch_size=100",
    "--config.train.parallel=data",
    "--config.eval.at_end=False",
    "--config.train.figures=False",
]


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = suite_xla_flags(devices)
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _params(workdir):
    ck = Checkpointer(str(workdir), read_only=True)
    params = ck.restore_raw(ck.epochs()[-1])["params"]
    ck.close()
    return params


_STARTED: list[subprocess.Popen] = []  # this test's launchers: killed at its end if still up


@pytest.fixture(autouse=True)
def _no_process_left():
    """A test that fails or times out while its two processes wait in a collective left them
    running (seen under jax 0.12.1: six idle launchers after the suite): killed at its end."""
    yield
    while _STARTED:
        p = _STARTED.pop()
        if p.poll() is None:
            p.kill()
            p.wait()


def _launch_two(workdir, *extra, each=((), ()), **popen) -> list[subprocess.Popen]:
    """The two processes of one multi-host run on localhost (2 CPU devices each, unless `env`
    gives each process's environment); `each`: flags of one process only."""
    port = _free_port()
    envs = popen.pop("env", [_env(2), _env(2)])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "experiments.main",
                f"--workdir={workdir}",
                *ARGS,
                *extra,
                *each[i],
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            cwd=ROOT,
            env=envs[i],
            **{k: v[i] if isinstance(v, list) else v for k, v in popen.items()},
        )
        for i in range(2)
    ]
    _STARTED.extend(procs)
    return procs


def test_two_processes_equal_one_process(tmp_path):
    envs = [{**_env(2), "AE_JAX_COMPILATION_CACHE": str(tmp_path / "xla")} for _ in range(2)]
    procs = _launch_two(
        tmp_path / "two", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=envs
    )
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs[0][-3000:] + errs[1][-3000:]
    for i, err in enumerate(errs):
        assert f"process {i} of 2; 2 local and 4 global devices" in err
        assert "data parallel over 4 device(s) (cpu, 2 process(es))" in err
        # (programs from the persistent cache hung in their first collective, jax 0.12.1)
        assert "compilation cache off for this multi-process CPU run" in err
    assert os.listdir(tmp_path / "xla") == []  # none written, so none read
    # The reference: this test process, which has 4 CPU devices of its own (conftest.py).
    assert jax.device_count() == 4
    c = seed_deep.get_config()
    c.train.epochs, c.train.batch_size, c.train.parallel = 3, 100, "data"
    c.eval.at_end, c.train.figures = False, False
    experiment.train_and_evaluate(c, str(tmp_path / "one"))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        _params(tmp_path / "one"),
        _params(tmp_path / "two"),
    )
    assert (tmp_path / "two" / "summary.json").exists()


def test_two_processes_split_the_models_like_one_process(tmp_path):
    """train.parallel='models' over two processes: each holds two of the four models' shards
    (states spread over hosts are not fetched to place them again) and trains them like one
    process with the four devices."""
    models = ["--config.train.num_models=4", "--config.train.parallel=models"]
    procs = _launch_two(
        tmp_path / "two", *models, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs[0][-3000:] + errs[1][-3000:]
    assert "models split over 4 device(s) (cpu, 2 process(es))" in errs[0]
    c = seed_deep.get_config()
    c.train.epochs, c.train.batch_size, c.train.parallel = 3, 100, "models"
    c.train.num_models, c.eval.at_end, c.train.figures = 4, False, False
    experiment.train_and_evaluate(c, str(tmp_path / "one"))
    for seed in range(4):
        run = f"seed={seed}"
        jax.tree.map(
            np.testing.assert_array_equal,
            _params(tmp_path / "one" / run),
            _params(tmp_path / "two" / run),
        )
        assert (tmp_path / "two" / run / "summary.json").exists()


def _refused_lines(workdir, *extra, each, **popen) -> list[str]:
    """The last line each process of a two-process run writes, both having exited 2."""
    procs = _launch_two(
        workdir,
        *extra,
        each=each,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [2, 2], errs[0][-3000:] + errs[1][-3000:]
    return [err.strip().splitlines()[-1] for err in errs]


def test_processes_given_different_runs_are_refused_together(tmp_path):
    """train.epochs raised on one host only: the two trained in step until the shorter left,
    and the other then waited in a collective for ever (a second SIGTERM could not end it).
    Now both refuse at once, naming the field, and write nothing."""
    for last in _refused_lines(tmp_path / "w", each=([], ["--config.train.epochs=4"])):
        assert last.startswith(
            "error: the 2 processes of this multi-host run were given different runs: "
            "process(es) [1] differ from process 0 in train.epochs. Every process must run"
        )
    assert not (tmp_path / "w").exists()
    # One host's K seeds refused by a check of its own (3 models do not split over 4 devices)
    # while the other waited: now they agree first.
    models = (["--config.train.num_models=4"], ["--config.train.num_models=3"])
    for last in _refused_lines(tmp_path / "k", "--config.train.parallel=models", each=models):
        assert "differ from process 0 in train.num_models. Every" in last


def test_processes_with_different_numbers_of_devices_are_refused_together(tmp_path):
    """One process started without the other's XLA_FLAGS (2 CPU devices against 1): a 40-line
    traceback of a reshape inside a gather (a probe). Now both refuse, naming the counts."""
    for last in _refused_lines(tmp_path / "w", each=([], []), env=[_env(2), _env(1)]):
        assert last.startswith(
            "error: the processes of this multi-host run have different numbers of devices "
            "(process 0: 2, process 1: 1); expected as many in each"
        )
    assert not (tmp_path / "w").exists()


# A peer that never starts: JAX's join waits (here: sleeps) in C++, which no signal ends.
NEVER_JOINED = """
import time, jax
from ae_jax.training import distributed
jax.distributed.initialize = lambda *args, **kwargs: time.sleep(600)
distributed.initialize("localhost:1", 2, 0)
"""


def test_a_process_whose_peers_never_join_says_so_and_ends(tmp_path):
    """Process 0 of two, the other never started: it waited 5 minutes without a word, then
    JAX aborted it with a C++ stack dump (exit 134; a probe). It ends after
    AE_JAX_JOIN_TIMEOUT seconds with a one-paragraph error, exit 2."""
    env = {**_env(2), "AE_JAX_JOIN_TIMEOUT": "1"}
    p = subprocess.run(
        [sys.executable, "-c", NEVER_JOINED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # (JAX's join sleeps 600 s here: no watchdog, no end)
    )
    assert p.returncode == 2, p.stderr[-3000:]
    assert (
        p.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: the processes of a multi-host run did not all join within 1 s "
            "(--coordinator_address='localhost:1', --num_processes=2, --process_id=0). Check that"
        )
    )


def test_a_coordinator_without_the_process_count_and_id_is_refused_naming_them(monkeypatch):
    """AE_JAX_COORDINATOR_ADDRESS alone: JAX's failure to join was said with flags the user
    never passed ("--num_processes=0, --process_id=-1") and not the variables left unset (a
    probe). Refused before joining, naming what is missing, as a flag or its variable."""
    for k in ("AE_JAX_NUM_PROCESSES", "AE_JAX_PROCESS_ID"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AE_JAX_COORDINATOR_ADDRESS", "localhost:1234")
    with pytest.raises(UserError) as e:
        distributed.initialize()
    assert str(e.value) == (
        "a multi-host run's coordinator is set ('localhost:1234'), but not --num_processes (or "
        "AE_JAX_NUM_PROCESSES) nor --process_id (or AE_JAX_PROCESS_ID): each process needs the "
        "number of processes and its own id (0 .. n-1)."
    )
    with pytest.raises(UserError, match=r"but not --process_id \(or AE_JAX_PROCESS_ID\):"):
        distributed.initialize(num_processes=2)
    assert jax.process_count() == 1  # nothing joined
    # The reverse: the count or an id without a coordinator trained each host alone, unsaid,
    # --process_id=1 as process 0 writing the shared workdir (a probe).
    monkeypatch.delenv("AE_JAX_COORDINATOR_ADDRESS")
    for given, said in (
        ({"num_processes": 2}, "--num_processes=2"),
        ({"process_id": 1}, "--process_id=1"),
    ):
        with pytest.raises(UserError, match=rf"is set \({said}[^,]*\), but not its coordinator"):
            distributed.initialize(**given)  # (only what was set: a review)
    monkeypatch.setenv("AE_JAX_PROCESS_ID", "2")
    with pytest.raises(UserError, match=r"is set \(AE_JAX_PROCESS_ID=2\), but not its coordin"):
        distributed.initialize()
    distributed.initialize(num_processes=1, process_id=0)  # one process, said so: no refusal
    assert jax.process_count() == 1


def test_a_slurm_batch_script_that_starts_one_process_trains_alone(monkeypatch):
    """`sbatch -n 4` (or `salloc -n 2`) sets SLURM_NTASKS > 1 in the batch script; a process it
    starts without srun is no task of a multi-task step and must not wait for, or fail on,
    three others (it raised "coordinator_address should be defined" from inside JAX). A step
    that srun started with several tasks is one, as JAX's own detection reads it."""
    batch = {"SLURM_JOB_ID": "123", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "node[1-2]"}
    for k in list(os.environ):
        if k.startswith("SLURM_"):
            monkeypatch.delenv(k)
    for k, v in batch.items():
        monkeypatch.setenv(k, v)
    distributed.initialize()  # a no-op: this process trains alone
    assert jax.process_count() == 1
    step = {
        **batch,
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_STEP_NODELIST": "node[1-2]",
        "SLURM_PROCID": "2",
        "SLURM_LOCALID": "0",
    }
    assert distributed._slurm_step_of_several_tasks(step)
    assert not distributed._slurm_step_of_several_tasks({**step, "SLURM_STEP_NUM_TASKS": "1"})
    assert not distributed._slurm_step_of_several_tasks(batch)


def test_a_stop_sent_to_one_process_stops_every_process_at_the_same_point(tmp_path):
    """SIGTERM to one task of a multi-host run: every process stops at the same boundary and
    says so (exit 143); the one alone stopped, and the other waited in the next collective."""
    logs = [tmp_path / f"p{i}.log" for i in range(2)]
    procs = _launch_two(
        tmp_path / "two",
        "--config.train.epochs=5000",  # far more than a stop needs: never reached
        stdout=subprocess.DEVNULL,
        stderr=[open(log, "w") for log in logs],
    )
    try:
        deadline = time.monotonic() + 240
        while "epoch 1/5000" not in logs[0].read_text():
            assert time.monotonic() < deadline and procs[0].poll() is None, logs[0].read_text()
            time.sleep(0.1)
        procs[0].send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    text = [log.read_text() for log in logs]
    assert codes == [143, 143], text[0][-2000:] + text[1][-2000:]
    for t in text:
        assert "stopped by SIGTERM after epoch" in t and "run the same command" in t


def test_a_resaved_epoch_put_back_is_resumed_from_by_every_process(tmp_path):
    """A kill between the two renames of a re-saved checkpoint leaves its epoch renamed away;
    the writer (process 0) puts it back when it opens the checkpoints, and every process then
    resumes from it: the others list the checkpoints only after that (`distributed.barrier`;
    without it, one that listed them first resumed from an older epoch than process 0, and
    the two trained apart)."""
    run = tmp_path / "two"

    def launch(epochs: int) -> list[str]:
        procs = _launch_two(
            run, f"--config.train.epochs={epochs}", stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        errs = [p.communicate(timeout=300)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errs[0][-3000:] + errs[1][-3000:]
        return errs

    launch(2)
    os.remove(run / "summary.json")  # killed before it finished (summary.json is written last)
    ck = run / "checkpoints"
    os.rename(ck / "2", ck / "2.tmp-replaced-12345")  # ... between the two renames
    os.makedirs(ck / "2.tmp-12345")  # the new copy, cut short
    for err in launch(2):  # the same command again: both processes resume
        assert "resuming from the epoch-2 checkpoint" in err, err[-3000:]
    assert sorted(os.listdir(ck))[-1] == "2" and (run / "summary.json").exists()
