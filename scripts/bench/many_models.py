"""Section 6 (with --many_models=K1,K2,...): K seed_sparse models trained together by the engine.

For each K (K = 1 always added as the baseline): `Engine.compile(K)`, `init_many`, the stacked
per-epoch orders, the compiled epoch; compile and init seconds, median epoch seconds,
model-epochs/s, aggregate rows/s and the speedup per model over K = 1. Reported, not judged.
"""

import contextlib
import inspect
import math
import statistics

from ae_jax.configs import seed_sparse
from ae_jax.training import objective
from bench import common
from bench.common import L1_WEIGHTS, Timed, fmt, log, peak_rss_mib, rotated
from bench.runners import EngineRunner


def many_hypers(base, k: int) -> list[dict]:
    """The hypers of K seed_sparse models: the sweep's overrides (L1 weight i mod 8, seed
    i div 8), set on the base's hypers directly (apply_overrides on 1,024 configs would time
    config copies, not training)."""
    h0 = objective.hyper_from_config(base)
    return [
        {**h0, "l1_weight": float(o["loss.l1_weight"]), "seed": int(o["train.seed"])}
        for o in common.sweep_overrides(k)
    ]


def package_max_models() -> int | None:
    """The sweep runner's default cap on models per compiled program, if it has one."""
    with contextlib.suppress(ImportError, AttributeError, KeyError, TypeError, ValueError):
        from ae_jax import sweeps

        return int(inspect.signature(sweeps.train_runs).parameters["max_models"].default)
    return None


def run(ctx: common.Context) -> tuple[list[str], dict]:
    ks, repeats, target_s = ctx.args.many_models, ctx.args.repeats, ctx.target_s
    base = seed_sparse.get_config()
    base.data.val_fraction = common.VAL_FRACTION
    x = ctx.ds.train
    n = x.shape[0]
    ks = sorted(set(ks) | {1})  # K = 1 is the baseline of the speedup column.
    cases = {}
    for k in ks:
        log(f"many models: warming up K = {k}")
        hypers = many_hypers(base, k)
        cases[k] = (Timed(lambda h=hypers: EngineRunner(base, x, h), target_s), peak_rss_mib())
    for r in range(repeats):
        log(f"many models: repeat {r + 1}/{repeats}")
        for k in rotated(ks, r):
            cases[k][0].measure()

    cap = package_max_models()
    t1 = cases[1][0].epoch_s
    engine = cases[1][0].runner.engine
    cap_text = ""
    if cap:
        cap_text = f" (`python -m experiments.sweep` caps a program at --max_models = {cap}"
        if max(ks) > cap:
            cap_text += f", so it would run K = {max(ks):,} as {math.ceil(max(ks) / cap)} programs"
        cap_text += ")"
    lines = [
        f"## 6. Many models at once: K seed_sparse models together, {n:,} rows x "
        f"{x.shape[1]} columns, batch {engine.batch_size} ({engine.steps_per_epoch} steps per "
        "epoch)",
        "",
        "K models of one static config with different seeds and L1 weights (model i: L1 "
        f"weight number i mod {len(L1_WEIGHTS)} of {', '.join(map(str, L1_WEIGHTS))}; seed "
        f"i div {len(L1_WEIGHTS)}), trained by the engine directly as the training loop runs "
        "its epochs: `Engine.compile(K)` (vmapped epoch), `init_many` with the one-model "
        "init program, per epoch the host's K row orders stacked, the compiled epoch for all "
        "K, the per-step metrics fetched and reduced. No validation, files or checkpoints: "
        "the training loop alone. compile = the AOT `lower().compile()` of the K-model epoch "
        "program; init = `init_many` (the one-model init program, compiled once, run K "
        "times) plus the first stacked order. epoch = median seconds per epoch over "
        f"{repeats} repeats, the K values interleaved within each repeat. host order = "
        "median seconds the host spends per epoch computing the next epoch's K row orders "
        "(numpy) while the device runs the epoch. model-epochs/s = K / epoch; rows/s = K x "
        "rows / epoch; speedup per model = (epoch at K = 1) x K / (epoch at K). chunk = "
        "models per compiled program: all K here, as `train_group` runs them"
        + cap_text
        + ". ΔRSS = resident memory growth over the warm-up (psutil); peak RSS = `ru_maxrss` "
        "after the warm-up (cumulative).",
        "",
        "| K | chunk | compile s | init s | epoch s | host order s | model-epochs/s | rows/s | "
        "speedup per model vs K=1 | ΔRSS MiB | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in ks:
        t, peak = cases[k]
        epoch_s = t.epoch_s
        lines.append(
            f"| {k:,} | {k:,} | {t.runner.aot_compile_s:.2f} | {t.runner.init_s:.2f} | "
            f"{epoch_s:.4f} | {statistics.median(t.runner.order_s):.4f} | "
            f"{k / epoch_s:,.1f} | {k * n / epoch_s:,.0f} | {k * t1 / epoch_s:.2f}x | "
            f"{fmt(t.rss_delta, '.0f')} | {peak:,.0f} |"
        )
    lines.append("")
    lines.append(
        "Epoch seconds per repeat: "
        + "; ".join(
            f"K = {k}: {', '.join(format(v, '.4f') for v in cases[k][0].samples)} "
            f"({cases[k][0].epochs} epochs per window)"
            for k in ks
        )
        + "."
    )
    return lines, {}
