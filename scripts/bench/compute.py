"""Section 5: a compute-bound case, the engine's achieved GFLOP/s against the matmul peak.

An MLP autoencoder trained by runners.EngineRunner (chunked as the loop would chunk it),
against the float32 matmul peak measured here with a jitted `jnp.dot`, interleaved. Two sizes
(`--compute_case`): `cpu`, 784-512-256-32-256-512-784 at batch 256 on 8,192 rows (1.66 GFLOP
a step), and `accelerator`, 784-4096-2048-32-2048-4096-784 at batch 4,096 on 32,768 rows (573
GFLOP a step, peak of n = 4,096 and 8,192): the cpu case took 0.25 ms a step on an H200, too
little work to fill it (9% of the peak measured beside it). `auto`, the default, picks by
JAX's default backend.
"""

import dataclasses
import itertools
import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ae_jax import config as config_lib
from bench import common
from bench.common import Timed, fmt, log, peak_rss_mib, rotated, verdict
from bench.runners import EngineRunner

NEED_PEAK = 0.5


@dataclasses.dataclass(frozen=True)
class Case:
    widths: tuple[int, ...]  # the encoder's hidden layers (the decoder mirrors them)
    latent: int
    d: int  # features
    n: int  # rows
    batch: int
    matmul_sizes: tuple[int, ...]  # n of the n x n products that measure the peak


CASES = {
    "cpu": Case((512, 256), 32, 784, 8192, 256, (1024, 2048)),
    "accelerator": Case((4096, 2048), 32, 784, 32768, 4096, (4096, 8192)),
}


def pick_case(name: str) -> str:
    """`--compute_case`: a name of CASES, or auto (cpu on JAX's CPU backend, else accelerator)."""
    if name == "auto":
        return "cpu" if jax.default_backend() == "cpu" else "accelerator"
    return name


def mlp_config(case: Case = CASES["cpu"]):
    c = config_lib.default_config()
    c.model.encoder_widths = case.widths
    c.model.latent_dim = case.latent
    c.model.activation = "relu"
    c.model.output_activation = "sigmoid"
    c.loss.recon = "mse"
    c.optim.name = "adam"
    c.train.batch_size = case.batch
    return c


def _time_matmul(dot, a, calls: int, out: list) -> None:
    t0 = time.perf_counter()
    for _ in range(calls):
        dot(a, a).block_until_ready()
    out.append((time.perf_counter() - t0) / calls)


def run(ctx: common.Context) -> tuple[list[str], dict]:
    repeats, target_s = ctx.args.repeats, ctx.target_s
    name = pick_case(ctx.args.compute_case)
    case = CASES[name]
    c = mlp_config(case)
    x = np.random.default_rng(1).random((case.n, case.d), dtype=np.float32)

    log("compute-bound: warming up")
    rss0 = peak_rss_mib()
    eng = Timed(lambda: EngineRunner(c, x), target_s)
    dot = jax.jit(jnp.dot)
    mats = {}
    calls = {}  # products per timing: ~target_s of them, as one took in the warm-up
    for size in case.matmul_sizes:
        a = jax.device_put(np.random.default_rng(size).random((size, size), dtype=np.float32))
        dot(a, a).block_until_ready()
        t0 = time.perf_counter()
        dot(a, a).block_until_ready()
        calls[size] = max(2, math.ceil(target_s / (time.perf_counter() - t0)))
        mats[size] = a
    matmul_s = {size: [] for size in case.matmul_sizes}
    for r in range(repeats):
        log(f"compute-bound: repeat {r + 1}/{repeats}")
        work = [eng.measure] + [
            (lambda s=s: _time_matmul(dot, mats[s], calls[s], matmul_s[s]))
            for s in case.matmul_sizes
        ]
        for w in rotated(work, r):
            w()

    widths = [case.d, *case.widths, case.latent, *reversed(case.widths), case.d]
    macs = sum(a * b for a, b in itertools.pairwise(widths))
    steps = math.ceil(case.n / case.batch)
    flops = 3 * 2 * case.batch * macs * steps  # forward matmuls x3 for forward + backward
    gflops = flops / eng.epoch_s / 1e9
    peaks = {s: 2 * s**3 / statistics.median(v) / 1e9 for s, v in matmul_s.items()}
    frac = gflops / max(peaks.values())
    ok = frac >= NEED_PEAK
    chunk = eng.runner.chunk
    lines = [
        f"## 5. Compute-bound: MLP AE {'-'.join(map(str, widths))}, batch {case.batch}, "
        f"{case.n:,} x {case.d} random rows (case {name})",
        "",
        f"FLOPs per step = 3 x 2 x B x sum(in x out) over the {len(widths) - 1} Dense layers "
        f"(forward x3 for forward + backward; biases, activations, loss and adam not counted) "
        f"= {3 * 2 * case.batch * macs / 1e9:.2f} GFLOP; {steps} steps per epoch"
        + (
            f", run as {eng.runner.n_chunks} chunks of {chunk} steps (as the training loop "
            "chunks an epoch it estimates long)"
            if chunk < steps
            else ""
        )
        + ". Peak = the best median of a jitted float32 `jnp.dot` of n x n (2 n^3 FLOPs; at "
        "JAX's default precision, as the model's layers: TF32 on a recent NVIDIA GPU), "
        f"interleaved with the engine's epochs, {repeats} repeats. Pass: >= 50% of peak.",
        "",
        "| measure | value |",
        "|---|---:|",
        *[f"| matmul peak, n = {s} | {p:.1f} GFLOP/s |" for s, p in peaks.items()],
        f"| engine epoch (median) | {eng.epoch_s * 1e3:.1f} ms "
        f"({case.n / eng.epoch_s:,.0f} rows/s) |",
        f"| engine achieved | {gflops:.1f} GFLOP/s |",
        f"| engine / peak | {frac:.0%} ({verdict(ok)}, need 50%) |",
        f"| engine compile (warm-up minus an epoch) | {eng.compile_s:.2f} s |",
        f"| ΔRSS of the warm-up; peak RSS after the case | {fmt(eng.rss_delta, '.0f')} MiB; "
        f"{peak_rss_mib():,.0f} MiB (was {rss0:,.0f}) |",
    ]
    return lines, {"compute-bound (>= 50% of matmul peak)": [ok]}
