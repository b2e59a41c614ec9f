r"""Evaluate a trained run: reconstruction vs PCA, code statistics, VAE bounds, figures.

  ae-jax evaluate --workdir=runs/vae_digits [--data=FILE] [--which=latest|best] \
    [--iw_samples=1000]

prints the key numbers, one per line, and writes eval.json and figures/. Without --data it
evaluates the run's validation split (rebuilt from the run's config); with --data, every row
of that file, transformed with the run's saved preprocessing. The run's own evaluation (no
options) goes to DIR/eval.json and DIR/figures/ when the run has finished and has none yet;
any other, any second one, and any of a run not finished (stopped, or still training) to
DIR/evaluations/NAME/ (NAME lists the options, e.g. which=best,data=new.csv, and for a run not
finished the checkpoint's epoch), so the evaluation a sweep report reads is never replaced.
"""

import os

from absl import flags

from ae_jax import cli
from ae_jax.cli import cli_errors
from ae_jax.evaluation import evaluate

FLAGS = flags.FLAGS

# (key, name printed); keys absent from a run's eval.json are skipped.
_SUMMARY = (
    ("n_val", "rows"),
    ("epoch", "checkpoint epoch"),
    ("recon/mse", "reconstruction MSE"),
    ("recon/bce", "reconstruction BCE (nats/row)"),
    ("recon/numeric_mse", "numeric columns' mean MSE (scaled)"),
    ("recon/categorical_accuracy", "category and true/false accuracy"),
    ("pca/mse", "PCA MSE (same code size)"),
    ("ae_over_pca", "model MSE / PCA MSE"),
    ("code/near_zero_fraction", "near-zero code share"),
    ("code/dead_unit_count", "dead code units"),
    ("likelihood", "reconstruction likelihood"),
    ("is_log_likelihood", "a log-likelihood of these rows"),
    ("vae/elbo", "ELBO (nats/row)"),
    ("vae/bce_bound", "ELBO-form bound with BCE (not log p)"),
    ("vae/mse_bound", "ELBO-form bound with MSE (not log p)"),
    ("vae/kl", "KL (nats/row)"),
    ("vae/active_units", "active latent units"),
    ("vae/iwae", "IWAE bound (nats/row)"),
    ("vae/bce_iwae_bound", "IWAE-form bound with BCE (not log p)"),
    ("vae/iwae_k", "IWAE samples k"),
)


def summarize(metrics: dict) -> str:
    """The key numbers of an eval.json dict, one named line each."""
    lines = []
    width = max(len(name) for _, name in _SUMMARY)
    for key, name in _SUMMARY:
        value = metrics.get(key)
        if value is None:
            continue
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        if isinstance(metrics.get(f"{key}_mc_se"), float):  # a bound's Monte Carlo error
            shown += f" ± {metrics[f'{key}_mc_se']:.2g} (Monte Carlo)"
        lines.append(f"{name:{width}s} {shown}   [{key}]")
    for key in ("pca/note", "likelihood_note", "vae/iwae_note", "vae/active_units_note"):
        if key in metrics:
            lines.append(f"note: {metrics[key]}")
    return "\n".join(lines)


def define_flags() -> None:
    """Defines the command's flags; at run time only, so importing this module (tests,
    other tools) leaves absl's global flags alone."""
    flags.DEFINE_string("workdir", None, "Run directory (config.json, checkpoints/) to evaluate.")
    flags.DEFINE_string(
        "data",
        "",
        "CSV/Parquet/npy/npz of raw rows, or IDX images; default: the run's validation split.",
    )
    flags.DEFINE_enum(
        "which", "latest", ["latest", "best"], "Checkpoint: latest, or best eval/loss."
    )
    flags.DEFINE_integer(
        "iw_samples",
        None,
        "k of the VAE's importance-weighted bound (default: the run's eval.iw_samples).",
    )
    flags.DEFINE_integer("seed", 0, "Seed of the VAE's posterior samples.")
    flags.DEFINE_string(
        "npz_key", "", "For an .npz --data: the array to evaluate, e.g. x_test ('': the run's)."
    )
    flags.mark_flags_as_required(["workdir"])


def main(argv):
    cli.setup()
    cli.no_arguments(argv, "evaluate")
    with cli_errors():
        options = dict(iw_samples=FLAGS.iw_samples, seed=FLAGS.seed, npz_key=FLAGS.npz_key)
        metrics, out = evaluate.evaluate_run(FLAGS.workdir, FLAGS.data, FLAGS.which, **options)
    print(summarize(metrics))
    print(f"wrote {os.path.join(out, evaluate.EVAL_FILE)} and {os.path.join(out, 'figures')}/")
