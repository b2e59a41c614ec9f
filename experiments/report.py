r"""Aggregate a finished (or partly finished) sweep into a table and figures.

  python -m experiments.report --workdir=runs/sparsity [--metrics=eval/mse,code/near_zero_fraction]

writes DIR/results.csv and DIR/report.md (one row per setting, mean ± std over seeds)
and DIR/figures/metrics_vs_<param>.png, and prints the table.
"""

import os

from absl import app, flags

from ae_jax import cli
from ae_jax.cli import cli_errors
from ae_jax.sweeps import report

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The sweep's --workdir.")
flags.DEFINE_list("metrics", [], "Metrics to aggregate (default: the usual eval/code/vae ones).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    with cli_errors():
        report.write_report(FLAGS.workdir, FLAGS.metrics or None)
    with open(os.path.join(FLAGS.workdir, "report.md")) as f:
        print(f.read())


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
