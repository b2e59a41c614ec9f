r"""Encode raw rows with a trained run: codes of an AE, posterior means of a VAE.

  ae-jax encode --workdir=runs/shop --input=online_shoppers_intention.csv \
    --output=codes.npy      # or codes.csv: a header z0..z{d-1}, one row per input row

The input is a CSV (with header), .npy or .npz of raw rows like the training data's; the run's
saved preprocessing encodes and scales them (a label column, if present, is ignored).
"""

import os

import numpy as np
from absl import app, flags

import ae_jax
from ae_jax import cli
from ae_jax import data as data_lib
from ae_jax.cli import cli_errors
from ae_jax.errors import UserError

FLAGS = flags.FLAGS

OUTPUTS = (".npy", ".csv")


def encode_file(
    workdir: str, input_path: str, output_path: str, which: str = "latest"
) -> np.ndarray:
    """Encodes every row of `input_path` with the run in `workdir`; writes and returns the
    codes, (N, latent_dim) float32."""
    ext = os.path.splitext(output_path)[1].lower()
    if ext not in OUTPUTS:
        raise UserError(
            f"--output {output_path!r}: unsupported file type {ext or '(none)'!r}; "
            f"expected one of {', '.join(OUTPUTS)}."
        )
    out_dir = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(out_dir):
        raise UserError(
            f"--output {output_path!r}: directory {out_dir!r} does not exist; create it first."
        )
    model = ae_jax.load(workdir, which)
    c = model.config.data
    table = data_lib.read_table(
        input_path, c.npz_key, label_column=c.label_column, field="--input", delimiter=c.delimiter
    )
    codes = model.encode(table).astype(np.float32)
    try:
        if ext == ".npy":
            np.save(output_path, codes)
        else:
            header = ",".join(f"z{j}" for j in range(codes.shape[1]))
            np.savetxt(output_path, codes, delimiter=",", header=header, comments="", fmt="%.9g")
    except OSError as e:
        raise UserError(f"--output {output_path!r} cannot be written: {e.strerror}.") from None
    return codes


def define_flags() -> None:
    """Defines the command's flags; at run time only, so importing this module (tests,
    other tools) leaves absl's global flags alone."""
    flags.DEFINE_string("workdir", None, "Run directory (config.json, checkpoints/).")
    flags.DEFINE_string("input", None, "CSV/npy/npz of raw rows, in the training data's columns.")
    flags.DEFINE_string("output", None, "Where to write the codes: a .npy or .csv file.")
    flags.DEFINE_enum(
        "which", "latest", ["latest", "best"], "Checkpoint: latest, or best eval/loss."
    )
    flags.mark_flags_as_required(["workdir", "input", "output"])


def main(argv):
    cli.setup()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    with cli_errors():
        codes = encode_file(FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.which)
    print(f"wrote {codes.shape[0]} codes of size {codes.shape[1]} to {FLAGS.output}")
