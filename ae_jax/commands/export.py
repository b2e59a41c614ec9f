r"""Export a trained run's encoder and decoder with jax.export, usable without ae_jax.

  ae-jax export --workdir=runs/seed_sparse --output=exported/seed_sparse [--which=best]

writes OUTPUT/encode.jax_export and decode.jax_export (any batch size, float32, on the
preprocessed features), params.msgpack, preprocessor.json, config.json and README.md.
"""

from absl import flags

from ae_jax import cli
from ae_jax.cli import cli_errors
from ae_jax.evaluation import export

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command's flags (at run time, so importing this module defines none)."""
    flags.DEFINE_string("workdir", None, "Run directory (config.json, checkpoints/).")
    flags.DEFINE_string("output", None, "A new (or empty) folder for the exported files.")
    flags.DEFINE_enum(
        "which", "latest", ["latest", "best"], "Checkpoint: latest, or best eval/loss."
    )
    flags.mark_flags_as_required(["workdir", "output"])


def main(argv):
    cli.setup()
    cli.no_arguments(argv, "export")
    with cli_errors():
        out = export.export_run(FLAGS.workdir, FLAGS.output, FLAGS.which)
    print(
        f"exported the encoder ({out['features']} features -> {out['latent_dim']}) and "
        f"decoder of epoch {out['epoch']} to {out['output']}"
    )
    for note in (out["diverged"], out["unfinished"]):  # said beside the export, not only logged
        if note:
            print(f"note: {note}")
