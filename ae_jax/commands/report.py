r"""Aggregate a finished (or partly finished) sweep into a table and figures.

  ae-jax report --workdir=runs/sparsity [--metrics=eval/mse,code/near_zero_fraction]

writes DIR/results.csv and DIR/report.md (one row per setting, mean ± std over seeds),
DIR/runs.csv (one row per run), DIR/timing.csv (wall times and throughput per setting) and
DIR/figures/metrics_vs_<param>.png, and prints report.md.
"""

import os

from absl import flags

from ae_jax import cli
from ae_jax.cli import cli_errors
from ae_jax.sweeps import report

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command's flags (at run time, so importing this module defines none)."""
    flags.DEFINE_string("workdir", None, "The sweep's --workdir.")
    flags.DEFINE_list(
        "metrics",
        [],
        "Metrics to aggregate (default: those the sweep's config "
        "chose, else the usual eval/code/vae ones).",
    )
    flags.mark_flags_as_required(["workdir"])


def main(argv):
    cli.no_arguments(argv, "report")
    with cli_errors():
        report.write_report(FLAGS.workdir, FLAGS.metrics or None)
    with open(os.path.join(os.path.expanduser(FLAGS.workdir), "report.md"), encoding="utf-8") as f:
        print(f.read())
