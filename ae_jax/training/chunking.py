"""Epochs in chunks: progress lines inside long epochs, and stops acted on within one chunk.

An epoch's batches run as one compiled `lax.scan`; when the epoch would take longer than about
half of `train.log_seconds`, the scan covers a chunk of the epoch's steps instead and the host
calls it once per chunk. Between chunks it logs progress (step i/N of the epoch, running loss,
rows/s, ETA) and checks for a stop request. The chunk length comes from XLA's cost analysis of
one step (floating-point operations) and a deliberately low throughput per backend, so a chunk
rarely runs longer than planned; `train.chunk_steps` sets it by hand.

Chunking changes no number: the scan body is the same program, padding that makes the epoch a
whole number of chunks is skipped (state unchanged), and the per-step metrics are reduced to the
epoch's means on the host in one fixed order. A stop inside an epoch saves the group's state
after the last finished chunk with the per-step metrics so far (`partial.Partial`, one file
per run), so the resumed epoch equals an uninterrupted one bit for bit. Training's log lines
are written here too: each epoch's, a divergence's and the final table.
"""

import math
import os
import time

import jax
import numpy as np
from absl import logging

from ae_jax import workdir as workdir_lib
from ae_jax.training import distributed
from ae_jax.training.engine import stacked_orders
from ae_jax.training.partial import Partial
from ae_jax.training.signals import Interrupted

# Floating-point operations per second assumed when sizing chunks: well below what each
# backend reaches on these small programs, so chunks come out shorter than planned, not longer.
_ASSUMED_FLOPS = {"cpu": 2e9, "gpu": 2e12, "tpu": 2e12}


def steps_per_chunk(lowered, steps: int, log_seconds: float, chunk_steps: int = 0) -> int:
    """Steps per compiled chunk for an epoch of `steps` steps (`steps` = no chunking).

    Args:
        lowered: the lowered epoch program (`jax.jit(...).lower(...)`); XLA's cost analysis
            counts a loop body once, so its flops are those of one step of all K models.
        log_seconds: the longest wanted gap between progress lines (<= 0: never chunk).
        chunk_steps: > 0 forces this chunk length.
    """
    if chunk_steps > 0:
        return min(int(chunk_steps), steps)
    if log_seconds <= 0:
        return steps
    cost = lowered.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else {}
    flops = float((cost or {}).get("flops", 0.0))
    if flops <= 0:
        return steps
    step_s = flops / _ASSUMED_FLOPS.get(jax.default_backend(), 2e12)
    target = max(log_seconds / 2.0, 0.05)
    if step_s * steps <= target:
        return steps
    n_chunks = math.ceil(steps * step_s / target)
    return math.ceil(steps / n_chunks)  # balanced chunks: the least padding


class EpochRunner:
    """Runs one epoch of a group as its compiled chunks; reduces the per-step metrics."""

    def __init__(self, prog, place, hypers, n_train: int, cfg, stop, runs):
        self.prog, self.place, self.hypers, self.n_train = prog, place, hypers, n_train
        self.batch, self.steps = prog.engine.batch_size, prog.engine.steps_per_epoch
        self.shuffle, self.log_seconds = cfg.train.shuffle, float(cfg.train.log_seconds)
        self.epochs, self.stop, self.runs = cfg.train.epochs, stop, runs
        self.chunk = prog.chunk
        self.n_chunks = math.ceil(self.steps / self.chunk)
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        """(K, n_chunks * chunk, B) row order of `epoch`, padded with whole batches of -1."""
        if epoch not in self._orders:
            self._orders.clear()
            seeds = [h["seed"] for h in self.hypers]
            order = stacked_orders(
                seeds, epoch, self.n_train, self.batch, self.shuffle, self.n_chunks * self.chunk
            )
            self._orders[epoch] = order
        return self._orders[epoch]

    def run(self, epoch: int, states, hyper, x_train, partial: Partial | None):
        """Trains `epoch` (from `partial`'s position if given); returns (states, means)."""
        order = self.order(epoch)
        parts_m, parts_rows, first = [], [], 0
        if partial is not None:
            parts_m, parts_rows = [partial.metrics], [partial.rows]
            first = partial.next_chunk
        t0 = last_log = time.perf_counter()
        c = self.chunk
        for ci in range(first, self.n_chunks):
            states, (m, rows) = self.prog.epoch_fn(
                states, hyper, x_train, self.place.per_model(order[:, ci * c : (ci + 1) * c])
            )
            if ci == self.n_chunks - 1 and epoch < self.epochs:
                self.order(epoch + 1)  # The host prepares the next order while the device runs.
            m, rows = distributed.fetch((m, rows))
            parts_m.append(m)
            parts_rows.append(rows)
            if ci == self.n_chunks - 1:
                break
            now = time.perf_counter()
            signum = distributed.agreed_stop(self.stop.signum)  # every host stops here, or none
            if signum is not None:
                metrics, rows_all = _concat(parts_m, parts_rows)
                Partial.save_group(
                    [r.workdir for r in self.runs],
                    epoch,
                    ci + 1,
                    c,
                    states,
                    metrics,
                    rows_all,
                    self.runs[0].layout,
                    self.runs[0].software,
                    [r.earlier_software for r in self.runs],
                )
                raise Interrupted(signum, f"at step {(ci + 1) * c} of epoch {epoch}")
            if line_due(now - last_log, (now - t0) / (ci + 1 - first), self.log_seconds):
                last_log = now
                self._log_progress(
                    epoch,
                    (ci + 1) * c,
                    parts_m,
                    parts_rows,
                    (ci + 1 - first) * c * self.batch / (now - t0),
                    now - t0,
                    ci + 1 - first,
                )
        metrics, rows = _concat(parts_m, parts_rows)
        return states, {n: _row_mean(m, rows) for n, m in metrics.items()}

    def _log_progress(self, epoch, done, parts_m, parts_rows, rows_per_s, elapsed, chunks_run):
        metrics, rows = _concat(parts_m, parts_rows)
        losses = _row_mean(metrics["loss"], rows)  # K models: their spread, as the epoch's line
        loss = _spread(losses) if len(losses) > 1 else f"{losses[0]:.4g}"
        eta = elapsed / chunks_run * (self.n_chunks - done // self.chunk)
        logging.info(
            "epoch %d/%d step %d/%d | train loss so far %s | %s rows/s%s | epoch ETA %.1f s",
            epoch,
            self.epochs,
            min(done, self.steps),
            self.steps,
            loss,
            f"{rows_per_s * len(self.hypers):,.0f}",
            f" (all {len(self.hypers)} models)" if len(self.hypers) > 1 else "",
            eta,
        )


def line_due(since_line: float, chunk_s: float, log_seconds: float) -> bool:
    """Whether the next chunk, at this epoch's pace, would end `log_seconds` after the last
    line (a line once they had passed came every third 4.9 s chunk: 14.7 s gaps for 10)."""
    return since_line + chunk_s >= log_seconds


def _concat(parts_m: list[dict], parts_rows: list) -> tuple[dict, np.ndarray]:
    metrics = {n: np.concatenate([np.asarray(p[n]) for p in parts_m], axis=1) for n in parts_m[0]}
    return metrics, np.concatenate([np.asarray(r) for r in parts_rows], axis=1)


def _row_mean(m: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(K, S) per-step values and real rows -> (K,) row-weighted means over steps with rows."""
    m64, w = np.asarray(m, np.float64), np.asarray(rows, np.float64)
    m64 = np.where(w > 0, m64, 0.0)  # padding steps may hold anything, NaN included
    return (np.sum(m64 * w, axis=1) / np.maximum(np.sum(w, axis=1), 1.0)).astype(np.float32)


def _spread(values) -> str:
    """'median M [min A, max B]' of the finite values, with how many are not (a model whose
    validation loss blew up before its training did: 'median nan' hid 3 finite of 4)."""
    v = np.asarray(values, np.float64)
    finite = v[np.isfinite(v)]
    if not finite.size:
        return f"not finite in all {v.size}" if v.size else "none running"
    bad = f", {v.size - finite.size} not finite" if finite.size < v.size else ""
    return f"median {np.median(finite):.4g} [min {finite.min():.4g}, max {finite.max():.4g}{bad}]"


def _fmt(row: dict, prefix: str) -> str:
    keys = [k for k in row if k.startswith(prefix)]
    return " ".join(f"{k[len(prefix) :]} {row[k]:.4g}" for k in keys)


class Pace:
    """A process's ETA after each epoch: the time left at the pace of its epochs since its first
    (which runs the compiled programs for the first time: 5x a later epoch for 200 short ones,
    a first ETA 12.3 s for the 2.5 s left), or of the first alone, of which `share` of the
    steps ran here (a resume inside it paced 1/9 of an epoch as one: 'ETA 1.9 s' for 14.8)."""

    def __init__(self, start: int, epochs: int, clock=time.perf_counter, share: float = 1.0):
        self.start, self.epochs, self.clock, self.share = start, epochs, clock, share
        self.since, self.paced = clock(), start  # epochs after `paced` ran since `since`

    def eta(self, epoch: int) -> float:
        ran = epoch - self.paced - (1.0 - self.share if self.paced == self.start else 0.0)
        return (self.clock() - self.since) / ran * (self.epochs - epoch)

    def ended(self, epoch: int) -> None:
        """Epoch `epoch` is recorded (and logged): the pace starts after the first."""
        if epoch == self.start + 1:
            self.since, self.paced = self.clock(), epoch


def log_epoch(epoch, epochs, runs, rows_per_s, eta_s) -> None:
    """The line after an epoch: every term of one run, or the spread of K runs' eval/loss."""
    live = [r.history[-1] for r in runs if r.running and r.history]
    if len(runs) == 1 and live:
        r = live[0]
        logging.info(
            "epoch %d/%d | train %s | eval %s | %s rows/s | ETA %.1f s",
            epoch,
            epochs,
            _fmt(r, "train/"),
            _fmt(r, "eval/"),
            f"{rows_per_s:,.0f}",
            eta_s,
        )
        return
    diverged = sum(r.status == "diverged" for r in runs)
    logging.info(
        "epoch %d/%d | %d models running, %d diverged | eval/loss %s | %s rows/s (all %d "
        "models%s) | ETA %.1f s",
        epoch,
        epochs,
        len(live),
        diverged,
        _spread([r["eval/loss"] for r in live]),
        f"{rows_per_s:,.0f}",
        len(runs),
        ", the diverged still computed" if diverged else "",
        eta_s,
    )


def log_divergence(workdir: str, step: int, epoch: int, history: list[dict]) -> None:
    """The error line of a run whose loss, gradient or update turned non-finite at `step`."""
    last = history[-1] if history else {}
    what, kept = workdir_lib.diverged_at(step)
    logging.error(
        "run %s diverged: %s (epoch %d); kept its parameters, %s; %s",
        workdir,
        what,
        epoch,
        kept,
        f"the last finished epoch's values (epoch {last['epoch']}; its training loss was "
        "finite, its validation values need not be): "
        + str({k: v for k, v in last.items() if k.startswith(("train/", "eval/"))})
        if last
        else "no epoch had finished",
    )


def log_summary(summaries: list[dict], workdirs: list[str], shown: int = 64) -> None:
    """The markdown table of a group's final numbers, a row per run (the first `shown`: 4,000
    flooded the log), a column per term of any run (the first run's alone missed others')."""
    every = dict.fromkeys(k for s in summaries for k in s if k.startswith(("train/", "eval/")))
    keys = sorted((k for k in every if k != "train/grad_norm"), key=lambda k: k[0] == "e")
    head = ["run", "training", "epoch", *keys, "n_params", "wall_s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w, s in zip(workdirs[:shown], summaries, strict=False):
        vals = [f"{s[k]:.5g}" if k in s else "-" for k in keys]
        row = [os.path.basename(os.path.normpath(w)), s["status"], str(s["epoch"]), *vals]
        lines.append("| " + " | ".join([*row, str(s["n_params"]), f"{s['wall_s']:.2f}"]) + " |")
    if (more := len(workdirs) - shown) > 0:
        lines.append(f"... and {more} more run(s): each one's summary.json")
    logging.info("training summary:\n%s", "\n".join(lines))
