"""Checkpoints: a run killed mid-training and rerun ends exactly like an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from ae_jax import train
from ae_jax.checkpoint import Checkpointer
from experiments.configs import seed_deep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["--config=experiments/configs/seed_deep.py", "--config.data.name=digits",
        "--config.train.epochs=40", "--config.train.batch_size=32",
        "--config.model.encoder_widths=(128,64,32)", "--config.model.decoder_widths=(32,64,128)",
        "--config.train.checkpoint_every=3", "--config.train.keep_checkpoints=2"]


def _launch(workdir):
    return subprocess.Popen([sys.executable, "-m", "experiments.main", f"--workdir={workdir}",
                             *ARGS], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _final_state(workdir):
    ck = Checkpointer(str(workdir), read_only=True)
    epoch = ck.epochs()[-1]
    meta = ck.meta(epoch)
    state = ck.restore_raw(epoch)
    ck.close()
    return epoch, meta, state


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    p = _launch(killed)
    deadline = time.time() + 120
    # Kill once at least two checkpoints exist and training is still going.
    while time.time() < deadline:
        ckdir = killed / "checkpoints"
        done = [d for d in os.listdir(ckdir) if d.isdigit()] if ckdir.exists() else []
        if len(done) >= 2 or p.poll() is not None:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run finished before it could be killed; make it longer"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (killed / "summary.json").exists()

    resumed = _launch(killed).communicate(timeout=300)[1]
    assert "resuming from the epoch-" in resumed, resumed[-2000:]
    _, err = _launch(whole).communicate(timeout=300)
    assert "resuming" not in err

    e1, meta1, s1 = _final_state(whole)
    e2, meta2, s2 = _final_state(killed)
    assert e1 == e2 == 40 and meta1["step"] == meta2["step"]
    jax.tree.map(np.testing.assert_array_equal, s1, s2)  # bitwise
    rows = [json.loads(r) for r in open(killed / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == list(range(1, 41))  # each epoch once
    whole_rows = [json.loads(r) for r in open(whole / "metrics.jsonl")]
    assert [r["eval/loss"] for r in rows] == [r["eval/loss"] for r in whole_rows]


def test_finished_run_is_not_retrained_and_best_is_kept(tmp_path):
    c = seed_deep.get_config()
    c.train.epochs, c.train.checkpoint_every, c.train.keep_checkpoints = 12, 2, 1
    (first,) = train.train_and_evaluate(c, str(tmp_path))
    mtime = os.path.getmtime(tmp_path / "metrics.jsonl")
    (again,) = train.train_and_evaluate(c, str(tmp_path))
    assert again == first and os.path.getmtime(tmp_path / "metrics.jsonl") == mtime
    ck = Checkpointer(str(tmp_path), read_only=True)
    rows = [json.loads(r) for r in open(tmp_path / "metrics.jsonl")]
    saved = {r["epoch"]: r["eval/loss"] for r in rows if r["epoch"] % 2 == 0}
    best = min(saved, key=saved.get)
    assert ck.best_epoch() == best == first["best_epoch"]
    assert set(ck.epochs()) == {12, best}  # the newest one and the best one
    ck.close()
