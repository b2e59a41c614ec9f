r"""Encode raw rows with a trained run: codes of an AE, posterior means of a VAE.

  ae-jax encode --workdir=runs/shop --input=online_shoppers_intention.csv \
    --output=codes.npy      # or codes.csv: a header z0..z{d-1}, one row per input row

The input is a CSV (with header), Parquet, .npy or .npz of raw rows like the training data's,
or an IDX file of images (MNIST's t10k-images-idx3-ubyte[.gz]) for an image run; the run's
saved preprocessing encodes and scales them (a label column, if present, is ignored). For an
.npz holding several arrays (a Keras-style x_train, y_train, x_test, y_test), `--npz_key`
names the one to encode, e.g. `--npz_key=x_test`.
"""

import os

import numpy as np
from absl import flags, logging

import ae_jax
from ae_jax import cli
from ae_jax import data as data_lib
from ae_jax import workdir as workdir_lib
from ae_jax.cli import cli_errors
from ae_jax.errors import UserError
from ae_jax.evaluation import trained
from ae_jax.files import as_path, write_atomic

FLAGS = flags.FLAGS

OUTPUTS = (".npy", ".csv")


def check_output(output_path: str, input_path: str, overwrite: bool) -> str:
    """The output's extension, after refusing a path that would lose or misplace a file: a
    directory, the --input file itself, an existing file without `overwrite`."""
    ext = os.path.splitext(output_path)[1].lower()
    if os.path.isdir(output_path):
        raise UserError(
            f"--output {output_path!r} is a directory; expected a file path (.npy or .csv)."
        )
    if ext not in OUTPUTS:
        raise UserError(
            f"--output {output_path!r}: unsupported file type {ext or '(none)'!r}; "
            f"expected one of {', '.join(OUTPUTS)}."
        )
    # (a link's target's folder: through a dangling link into a missing folder, the lock
    # taken beside the output left an empty file named as that folder: a probe)
    out_dir = os.path.dirname(os.path.realpath(output_path))
    if not os.path.isdir(out_dir):
        what = "is not a directory" if os.path.exists(out_dir) else "does not exist"
        link = " (where the link leads)" * os.path.islink(output_path)
        raise UserError(
            f"--output {output_path!r}: {out_dir!r}{link} {what}; expected an existing directory."
        )
    if os.path.exists(output_path):
        if os.path.exists(input_path) and os.path.samefile(output_path, input_path):
            raise UserError(
                f"--output {output_path!r} is the --input file: the codes would replace the "
                "rows they encode; name another file (nothing was written)."
            )
        if not overwrite:
            raise UserError(
                f"--output {output_path!r} exists; pass --overwrite to replace it, or name a "
                "new file (nothing was written)."
            )
    return ext


def check_not_training_file(workdir: str, output_path: str) -> None:
    """Refuses an --output that is the file the run was trained on (its data.path), even with
    --overwrite: the codes would replace its training rows, and the run could no longer be
    evaluated, resumed or extended on them."""
    saved = workdir_lib.saved_config(workdir) if os.path.isdir(workdir) else None
    trained_on = os.path.expanduser(str((saved or {}).get("data.path") or ""))
    if not (trained_on and os.path.isfile(trained_on) and os.path.exists(output_path)):
        return
    if os.path.samefile(output_path, trained_on):
        raise UserError(
            f"--output {output_path!r} is the file the run in {workdir!r} was trained on (its "
            f"data.path {trained_on!r}): the codes would replace its training rows, and the run "
            "could no longer be evaluated, resumed or extended on them; name another file "
            "(nothing was written, --overwrite or not)."
        )


def encode_file(
    workdir: str,
    input_path: str,
    output_path: str,
    which: str = "latest",
    npz_key: str = "",
    overwrite: bool = False,
) -> np.ndarray:
    """Encodes every row of `input_path` with the run in `workdir`; writes and returns the
    codes, (N, latent_dim) float32. `npz_key`: the array of an .npz input ("": the run's
    data.npz_key, and when that is "" too, the reader's choice: "x" or the only array). An
    existing `output_path` is refused unless `overwrite` (never the input file); the codes are
    written to a temporary file first, so a failed write leaves it as it was. `~` in either
    path is the home folder (a shell leaves it as is after `--output=`), and in `workdir`."""
    # `~` expanded before any check: the training file's guard read an unexpanded
    # `~/run` as no run, and `--overwrite` replaced the run's data.path (a probe).
    workdir = as_path(workdir)
    input_path, output_path = (
        as_path(input_path, "--input", "file"),
        as_path(output_path, "--output", "file"),
    )
    for name, value in (("which", which), ("npz_key", npz_key)):
        if not isinstance(value, str):
            raise UserError(f"{name}: expected a str; got {value!r} ({type(value).__name__}).")
    if not isinstance(overwrite, (bool, np.bool_)):  # ("no" is true)
        raise UserError(f"overwrite: expected True or False; got {overwrite!r}.")
    ext = check_output(output_path, input_path, overwrite)
    check_not_training_file(workdir, output_path)
    if npz_key and os.path.splitext(input_path)[1].lower() != ".npz":
        raise UserError(
            f"--npz_key={npz_key!r} names an array of an .npz --input; {input_path!r} is none."
        )
    before = _state(output_path)  # another process's write meanwhile is refused, even here
    model = ae_jax.load(workdir, which)
    c = model.config.data
    suffix = os.path.splitext(input_path)[1].lower()
    npz = suffix == ".npz"
    # Labels are ignored unless kept as a feature: an .npz's label array is not looked for,
    # so the training file's label array (y_train) need not be in the file (or fit x_test),
    # nor is one asked of a .npy or an IDX file (one unnamed array, the features).
    arrays = npz or data_lib.one_array(input_path)
    label = data_lib.NO_LABEL if arrays and model.preprocessor.label_column else c.label_column
    from_config = npz and bool(c.npz_key) and not npz_key  # else the flag names the array
    table = data_lib.read_table(
        input_path,
        npz_key or c.npz_key,
        label_column=label,
        field="--input",
        delimiter=trained.delimiter_for(c, input_path),
        key_field=trained.RUNS_KEY.format("--npz_key") if from_config else "--npz_key",
    )
    logging.info(  # (said by evaluate and export; encode wrote only its count)
        "encoding %d row(s) of %s with the epoch-%d checkpoint of %s (which=%s)",
        *(table.num_rows, input_path, model.epoch, workdir, which),
    )
    codes = model.encode(table).astype(np.float32)

    def write(f):
        if ext == ".npy":
            np.save(f, codes)
        else:
            header = ",".join(f"z{j}" for j in range(codes.shape[1]))
            np.savetxt(f, codes, delimiter=",", header=header, comments="", fmt="%.9g")
        if overwrite and _state(output_path) != before:  # (two encodes into one output,
            raise FileExistsError  # each said it wrote it, and one's codes were lost: a probe)

    folder = os.path.dirname(os.path.realpath(output_path))
    try:  # a link is followed: its target gets the codes; a failed write leaves it as it was
        with workdir_lib.waiting(folder):  # (one check-and-replace at a time)
            write_atomic(output_path, write, binary=True, new=not overwrite)
    except FileExistsError:  # (checked at the start: written since, by another process)
        was = "it changed after" if before else "it did not exist when"
        fix = "run it again" if overwrite else "pass --overwrite"
        raise UserError(
            f"--output {output_path!r} was written (or removed) by another process while this "
            "one encoded "
            f"({was} this one started); nothing was written: {fix} to replace it, or name "
            "another --output."
        ) from None
    except OSError as e:
        raise UserError(f"--output {output_path!r} cannot be written: {e.strerror}.") from None
    return codes


def _state(path: str) -> tuple | None:
    """A file's identity and last write (None: no file), to tell whether another wrote it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def define_flags() -> None:
    """Defines the command's flags; at run time only, so importing this module (tests,
    other tools) leaves absl's global flags alone."""
    flags.DEFINE_string("workdir", None, "Run directory (config.json, checkpoints/).")
    flags.DEFINE_string(
        "input", None, "CSV/TSV/Parquet/npy/npz/IDX of raw rows, in the training data's columns."
    )
    flags.DEFINE_string("output", None, "Where to write the codes: a .npy or .csv file.")
    flags.DEFINE_enum(
        "which", "latest", ["latest", "best"], "Checkpoint: latest, or best eval/loss."
    )
    flags.DEFINE_string(
        "npz_key",
        "",
        "For an .npz --input: the array to encode, e.g. x_test ('': the run's data.npz_key, "
        "else 'x' or the only array).",
    )
    flags.DEFINE_bool("overwrite", False, "Replace --output if it exists (never the --input).")
    flags.mark_flags_as_required(["workdir", "input", "output"])


def main(argv):
    cli.setup()
    cli.no_arguments(argv, "encode")
    with cli_errors():
        codes = encode_file(
            FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.which, FLAGS.npz_key, FLAGS.overwrite
        )
    print(f"wrote {codes.shape[0]} codes of size {codes.shape[1]} to {FLAGS.output}")
