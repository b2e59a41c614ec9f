"""Section 1: per-epoch training throughput (rows/s) of the seed's models, in process.

The sparse, deep and VAE seed models at batch 1000 and 64 on the section's table. Contenders,
interleaved within every repeat because this kind of machine's speed swings by up to 2x
within a minute:
  - engine: the project's loop as `ae_jax.training.loop` runs an epoch (runners.EngineRunner);
  - plain: the Flax-examples style per-batch jitted loop, same model, loss and optimizer;
  - Keras: Keras 3 on JAX with the seed's exact models, `fit(epochs=1)` per epoch.
Compile time is reported apart: the warm-up (setup, compile, first epoch) less the median
steady epoch.
"""

import itertools

from ae_jax.configs import seed_deep, seed_sparse, seed_vae
from bench import common, keras_models
from bench.common import Timed, fmt, fmt_int, log, peak_rss_mib, rotated, times, verdict
from bench.runners import EngineRunner, PlainRunner

SEEDS = {"sparse": seed_sparse, "deep": seed_deep, "vae": seed_vae}
BATCHES = (1000, 64)
NEED_VS_KERAS = {1000: 1.2, 64: 3.0}


def seed_config(kind: str, batch_size: int):
    c = SEEDS[kind].get_config()
    c.train.batch_size = batch_size
    return c


def run(ctx: common.Context) -> tuple[list[str], dict]:
    x, repeats, target_s = ctx.ds.train, ctx.args.repeats, ctx.target_s
    n = x.shape[0]
    cases = []
    for kind, batch in itertools.product(SEEDS, BATCHES):
        c = seed_config(kind, batch)
        log(f"throughput: warming up {kind} at batch {batch}")
        contenders = {
            "engine": Timed(lambda c=c: EngineRunner(c, x), target_s),
            "plain": Timed(lambda c=c: PlainRunner(c, x), target_s),
        }
        if keras_models.keras is not None:
            contenders["keras"] = Timed(
                lambda c=c, k=kind: keras_models.KerasRunner(k, c, x), target_s
            )
        cases.append((kind, batch, contenders, peak_rss_mib()))
    for r in range(repeats):
        log(f"throughput: repeat {r + 1}/{repeats}")
        for _, _, contenders, _ in cases:
            for t in rotated(list(contenders.values()), r):
                t.measure()

    lines = [
        f"## 1. Per-epoch training throughput, {n:,} rows x {x.shape[1]} columns",
        "",
        f"rows/s = {n:,} / median seconds per epoch ({repeats} repeats, contenders interleaved"
        " within each repeat; each repeat times several epochs back to back). engine = host "
        "order + the compiled epoch (in chunks where the loop would chunk it) + the per-step "
        "metrics fetched and reduced on the host, as the training loop runs it; plain = "
        "Flax-examples per-batch jit loop; Keras = `fit(epochs=1)` per epoch. Pass: engine "
        ">= 1.2x Keras at batch 1000, >= 3x at batch 64.",
        "",
        "| model | batch | engine rows/s | plain rows/s | Keras rows/s | engine/Keras | "
        "engine/plain | need | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    oks = []
    for kind, batch, ct, _ in cases:
        rate = {k: n / t.epoch_s for k, t in ct.items()}
        vs_keras = rate["engine"] / rate["keras"] if "keras" in rate else None
        ok = None if vs_keras is None else vs_keras >= NEED_VS_KERAS[batch]
        if ok is not None:
            oks.append(ok)
        lines.append(
            f"| {kind} | {batch} | {fmt_int(rate['engine'])} | {fmt_int(rate['plain'])} | "
            f"{fmt_int(rate.get('keras'))} | {times(vs_keras)} | "
            f"{times(rate['engine'] / rate['plain'])} | {NEED_VS_KERAS[batch]}x | {verdict(ok)} |"
        )
    lines += [
        "",
        "Warm-up and memory. compile = warm-up (build, compile, first epoch) minus the median "
        "epoch; engine compiles AOT as the loop does (init + epoch program), plain jit "
        "compiles two batch shapes (full and last partial), Keras compiles in its first "
        "`fit`. ΔRSS = resident memory growth over the warm-up (psutil). Peak RSS = the "
        "process's `ru_maxrss` high-water mark after the case's warm-up: cumulative, it "
        "only grows.",
        "",
        "| model | batch | engine compile s | plain compile s | Keras compile s | "
        "engine ΔRSS MiB | plain ΔRSS MiB | Keras ΔRSS MiB | epochs/window e/p/K | "
        "peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, batch, ct, peak in cases:
        get = lambda k, attr, ct=ct: getattr(ct[k], attr) if k in ct else None
        windows = "/".join(
            str(ct[k].epochs) if k in ct else "-" for k in ("engine", "plain", "keras")
        )
        lines.append(
            f"| {kind} | {batch} | {fmt(get('engine', 'compile_s'))} | "
            f"{fmt(get('plain', 'compile_s'))} | {fmt(get('keras', 'compile_s'))} | "
            f"{fmt(get('engine', 'rss_delta'), '.0f')} | {fmt(get('plain', 'rss_delta'), '.0f')}"
            f" | {fmt(get('keras', 'rss_delta'), '.0f')} | {windows} | {peak:,.0f} |"
        )
    checks = {f"throughput ({len(cases)} model x batch cases)": oks}
    return lines, checks
