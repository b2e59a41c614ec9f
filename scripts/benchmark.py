r"""Benchmark: what users wait for, the project against Keras 3 (JAX backend) and a plain Flax loop.

  python scripts/benchmark.py [--quick] [--out=FILE.md] [--only=SECTIONS] [--csv=PATH]
    [--repeats=5] [--single_repeats=N] [--single_epochs=20] [--single_batch=64]
    [--sweep_models=64] [--sweep_repeats=3] [--keras_sweep_models=N]
    [--gap_rows=60000] [--gap_cols=784] [--many_models=1,64,1024]

prints the machine, then one markdown table per section (the report goes to stdout, progress
to stderr; `--out` writes the report to a file as well, rewritten after every section so a
stopped run leaves the sections it finished). Sections (`--only=throughput,single,sweep,gap,
compute,many`, run in the order given; default all but `many`, which runs when
--many_models is given):

1. throughput: per-epoch training rows/s of the seed's sparse, deep and VAE models at batch
   1000 and 64, in process: the engine's loop, a plain Flax loop, Keras `fit`. Pass: engine
   >= 1.2x Keras at batch 1000, >= 3x at batch 64.
2. single: one seed_sparse run end to end (`python -m experiments.main`, a whole process,
   start to exit) with a cold and a warm compilation cache, against a standalone Keras 3
   script of the same model (scripts/bench/keras_seed_sparse.py), 20 epochs at batch 64.
   Pass: <= 0.75x Keras cold, <= 0.4x warm.
3. sweep: the 64-config seed_sparse sweep through `python -m experiments.sweep` (a whole
   process) with all defaults on and with all extras off (eval.at_end, train.figures,
   train.tensorboard, train.checkpoints = False), each with a cold and a warm cache, against
   Keras one by one. Pass: defaults >= 20x Keras one by one; defaults / extras off <= 1.5x.
4. gap: the longest silence of `python -m experiments.main` training one epoch on a
   60,000 x 784 table at batch 64, start to exit, lines time-stamped on arrival. Pass: <= 15 s.
5. compute: an MLP AE 784-512-256-32-256-512-784 at batch 256 (on an accelerator, by
   default, 784-4096-2048-32-2048-4096-784 at batch 4,096: `--compute_case`), the engine's
   GFLOP/s against the float32 matmul peak measured here. Pass: >= 50% of peak.
6. many: K seed_sparse models trained together by the engine, per K (reported, not judged).

Contenders alternate within every repeat, in a rotated order, because this kind of machine's
speed swings by up to 2x within a minute; medians are reported. The table (sections 1-3) is
the purchase table's size, 12,330 x 18 (9,864 training rows): `--csv` reads a real one, else a
deterministic stand-in is written to a temporary CSV; everything reads it through the package
(`ae_jax.data.load_dataset`, the launchers) or, for the Keras script, on its own. Only the
public API and the launchers are used: no private caches, no patched functions. No XLA flags
are set: every number is for the default configuration a user gets.

The full run takes about 15 minutes on 2 quiet cores, over half of it the sweep (section 3:
3 repeats of 4 sweep processes, ~6 minutes as the package stands, plus ~1.5 minutes of Keras
one by one); `--quick` (8-model sweep, 3 repeats, shorter timing windows) about 6. For a
smoke test of every section in ~3 minutes: `--quick --single_repeats=1 --single_epochs=2
--sweep_models=4 --sweep_repeats=1 --gap_rows=3000 --gap_cols=64`.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback

from absl import logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `bench`, next to this file

from bench import common, keras_models  # noqa: E402  (common first: KERAS_BACKEND=jax)
from bench.common import L1_WEIGHTS, log  # noqa: E402

SECTIONS = ("throughput", "single", "sweep", "gap", "compute", "many")


def section_module(name: str):
    from bench import compute, many_models, output_gap, single_run, sweep, throughput

    return {
        "throughput": throughput,
        "single": single_run,
        "sweep": sweep,
        "gap": output_gap,
        "compute": compute,
        "many": many_models,
    }[name]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--csv",
        default="",
        help="a CSV table read through ae_jax.data "
        "(default: generated 12,330 x 18 data like the purchase table)",
    )
    p.add_argument(
        "--quick", action="store_true", help="8-model sweep, 3 repeats, shorter timing windows"
    )
    p.add_argument(
        "--only",
        default="",
        help=f"comma-separated sections of {SECTIONS} "
        "(default: all; 'many' only with --many_models)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeats of the in-process sections, >= 3 (default 5; 3 with --quick)",
    )
    p.add_argument(
        "--single_repeats",
        type=int,
        default=None,
        help="repeats of the single-run section (default: --repeats)",
    )
    p.add_argument("--single_epochs", type=int, default=20, help="epochs of the single run")
    p.add_argument("--single_batch", type=int, default=64, help="batch size of the single run")
    p.add_argument(
        "--sweep_models",
        type=int,
        default=None,
        help="models in the sweep (default 64; 8 with --quick)",
    )
    p.add_argument("--sweep_repeats", type=int, default=3, help="repeats of each sweep process")
    p.add_argument(
        "--keras_sweep_models",
        type=int,
        default=None,
        help="time Keras on only this many sweep models and extrapolate "
        "(labelled so in the table; default: all)",
    )
    p.add_argument("--gap_rows", type=int, default=60_000, help="rows of the output-gap table")
    p.add_argument("--gap_cols", type=int, default=784, help="columns of the output-gap table")
    p.add_argument("--gap_batch", type=int, default=64, help="batch size of the output-gap run")
    p.add_argument(
        "--gap_config",
        default="seed_sparse",
        help="experiments/configs/NAME.py of the output-gap run",
    )
    p.add_argument(
        "--gap_log_dir",
        default="",
        help="keep the output-gap runs' time-stamped logs in this folder",
    )
    p.add_argument(
        "--many_models",
        default="",
        help="comma-separated K values, e.g. 1,64,1024: time K seed_sparse models "
        "trained together by the engine (default: section skipped)",
    )
    p.add_argument(
        "--compute_case",
        default="auto",
        choices=("auto", "cpu", "accelerator"),
        help="the compute-bound section's size: cpu (batch 256), accelerator (batch 4,096, "
        "widths 4,096 and 2,048: minutes an epoch on a CPU), or auto (by JAX's backend)",
    )
    p.add_argument(
        "--out",
        default="",
        help="also write the report to this markdown file "
        "(rewritten after every section, so a stopped run leaves what it measured)",
    )
    args = p.parse_args(argv)
    try:
        args.many_models = [int(v) for v in args.many_models.split(",") if v.strip()]
    except ValueError:
        p.error(f"--many_models={args.many_models!r}: expected integers like 1,64,1024")
    if any(k < 1 for k in args.many_models):
        p.error("--many_models: every K must be >= 1")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        p.error(f"--only: unknown section(s) {unknown}; expected some of {list(SECTIONS)}")
    if "many" in only and not args.many_models:
        p.error("--only=many needs --many_models=K1,K2,...")
    default = [s for s in SECTIONS if s != "many" or args.many_models]
    args.sections = list(dict.fromkeys(only)) if only else default  # in the order given
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 3:
        p.error("--repeats must be >= 3: a median of fewer says little on a noisy machine")
    if args.single_repeats is None:
        args.single_repeats = args.repeats
    if args.sweep_models is None:
        args.sweep_models = 8 if args.quick else 8 * len(L1_WEIGHTS)
    for name in (
        "single_repeats",
        "single_epochs",
        "single_batch",
        "sweep_models",
        "sweep_repeats",
        "gap_rows",
        "gap_cols",
        "gap_batch",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.keras_sweep_models is None:
        args.keras_sweep_models = args.sweep_models
    args.keras_sweep_models = max(1, min(args.keras_sweep_models, args.sweep_models))
    if not os.path.exists(
        os.path.join(common.ROOT, "experiments", "configs", f"{args.gap_config}.py")
    ):
        p.error(f"--gap_config={args.gap_config!r}: no experiments/configs/{args.gap_config}.py")
    return args


def save_partial(args, report: list[str]) -> None:
    """Writes the sections so far to --out, so that a run stopped by a timeout (as in
    scripts/gpu_check.sh) still leaves its measurements; the finished run overwrites it."""
    if args.out:
        with open(args.out, "w") as f:
            f.write(
                "\n".join(
                    report
                    + [
                        "**Partial report: the run was stopped, or is still "
                        "going; the sections above are complete.**"
                    ]
                )
                + "\n"
            )


def header(ctx: common.Context, argv) -> list[str]:
    args, ds = ctx.args, ctx.ds
    source = args.csv or "generated (purchase-table-like, deterministic, via a temporary CSV)"
    lines = [
        "# ae_jax benchmark",
        "",
        f"`python scripts/benchmark.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        *common.machine_lines(keras_models.version()),
        f"- data: {source}: {ds.train.shape[0]:,} train / {ds.val.shape[0]:,} val rows x "
        f"{ds.num_features} columns, float32 in [{ds.train.min():.0f}, {ds.train.max():.0f}]",
        f"- sections: {', '.join(args.sections)}; repeats {args.repeats} in process (timing "
        f"window ~{ctx.target_s} s per contender per repeat), {args.single_repeats} for the "
        f"single run, {args.sweep_repeats} for the sweep",
        "",
    ]
    if keras_models.keras is None:
        msg = (
            f"Keras (JAX backend) could not be imported ({keras_models.KERAS_ERROR}); "
            "Keras columns skipped."
        )
        log(msg)
        lines += [f"**{msg}**", ""]
    return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    t_start = time.perf_counter()
    logging.set_verbosity(logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="ae_bench_")
    try:
        data_path = args.csv or os.path.join(tmp, "generated.csv")
        if not args.csv:
            common.write_generated_csv(data_path)
        ctx = common.Context(
            args, common.load_data(data_path), data_path, tmp, 0.1 if args.quick else 0.3
        )
        report = header(ctx, argv)
        checks: dict[str, list[bool]] = {}
        for name in args.sections:
            t0 = time.perf_counter()
            try:
                lines, found = section_module(name).run(ctx)
            except Exception as e:  # noqa: BLE001 - the other sections still run.
                log(f"section {name} failed:\n{traceback.format_exc()}")
                lines, found = (
                    [
                        f"## Section {name}: FAILED",
                        "",
                        "```",
                        f"{type(e).__name__}: {e}"[-3000:],
                        "```",
                    ],
                    {name: [False]},
                )
            checks.update(found)
            report += lines + ["", f"_Section time: {time.perf_counter() - t0:.0f} s._", ""]
            save_partial(args, report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report += ["## Targets", "", "| check | result |", "|---|---|"]
    for name, results in checks.items():
        text = (
            (f"{sum(results)} of {len(results)} pass{'' if all(results) else ' (FAIL)'}")
            if results
            else "not measured"
        )
        report.append(f"| {name} | {text} |")
    report += [
        "",
        f"Total runtime: {time.perf_counter() - t_start:.0f} s; load average at the "
        f"end {common.load_average()}.",
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
