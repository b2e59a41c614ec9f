"""A trained run as files usable without ae_jax: `jax.export` serialisations of its encoder and
decoder, its parameters, preprocessing and config.

`export_run(workdir, output)` writes
- encode.jax_export: preprocessed features (N, D) float32 -> codes (N, L) (a VAE's posterior
  mean), any N >= 1;
- decode.jax_export: codes (N, L) float32 -> reconstructions (N, D) in the scaled feature space
  (the likelihood's mean), any N >= 1;
- params.msgpack (flax.serialization of the parameters), preprocessor.json, config.json and a
  README.md saying how to call the first two with only jax and numpy, and how a raw row becomes
  their input.
The parameters are constants inside the exported functions, so calling them needs nothing else.
"""

import functools
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from ae_jax import files
from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.evaluation import trained

ENCODE, DECODE, PARAMS = workdir_lib.EXPORTED, "decode.jax_export", "params.msgpack"
# Lowered for every platform JAX runs on, so an export made on a laptop runs on a GPU or TPU
# server (by default an export runs only where it was made). The programs are the same on each:
# the CPU convolution workaround, chosen when tracing on a CPU, is plain matrix products.
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")

_README = """# {name}: an exported {kind}

Exported by `ae-jax export` from `{workdir}` (epoch {epoch}) with jax {jax_version}.{diverged}

```python
import jax, numpy as np

with open("encode.jax_export", "rb") as f:
    encode = jax.export.deserialize(bytearray(f.read()))
with open("decode.jax_export", "rb") as f:
    decode = jax.export.deserialize(bytearray(f.read()))

x = np.zeros((5, {d}), np.float32)   # preprocessed rows: see below
codes = np.asarray(encode.call(x))    # (5, {latent}){code_note}
recon = np.asarray(decode.call(codes))  # (5, {d}), the scaled feature space
```

Any number of rows from 1; float32 only; on CPU, CUDA, ROCm or TPU (`encode.platforms`).
Load it with jax {jax_version} or newer: JAX reads exports of its own and older versions (within
its compatibility window), not newer ones (jax 0.10 could not read a jax 0.12 export:
"Failed to deserialize StableHLO"). `params.msgpack` holds the same parameters
(`flax.serialization.msgpack_restore`), `config.json` the run's config.

## From a raw row to the input x

`preprocessor.json` holds everything needed ({scaling}); its keys in `backticks`.

1. Cells: one per name in `input_columns`, in that order (`label_column` is not one). Image
   data: one cell per pixel, the image flattened in C order (row by row, channels last),
   intensities as stored (e.g. 0..255).
2. Missing cells (NaN, or text in `na_values`): replaced by `fill[name]` when it is set; a
   missing cell without a fill cannot be encoded.
3. Encoding, by `kinds`: "numeric": the number (`thousands`, when not "", is a separator to
   drop); "boolean": true 1, false 0 (any case; 1/0 as is); "categorical": k = the 0-based
   position of the cell's text in `categories[name]` (stripped of surrounding spaces; a float
   without its ".0" when whole: 3.0 is "3"; a text not listed that reads as a number below
   2**53: the one category equal to it as a number, if exactly one is; else the last, when that
   is "<unseen>"); when `categorical` is "onehot", one column per listed category, 1.0 at k
   and 0.0 elsewhere; when "ordinal", one column holding k.
   The result, `encoded`, has the {d} columns listed in `columns`.
4. Per output column j: x[j] = (encoded[j] - offset[j]) / scale[j], computed in float64, then
   cast to float32.
5. When `threshold` is not null (binarised images): x[j] = 1.0 if x[j] > threshold else 0.0.
"""


def _scaling_said(p) -> str:
    """How preprocessor `p` scales, in words, as it was fitted: pixels by their intensity
    range whatever `data.scaling` said (it named "minmax scaling" for digits divided by 16)."""
    if p.pixel_max:
        if p.scaling == "standard":
            return f"pixel intensities 0..{p.pixel_max} standardised per colour channel"
        return f"pixel intensities 0..{p.pixel_max} divided by {p.pixel_max}"
    how = {
        "minmax": "numbers scaled by the training split's minimum and maximum",
        "standard": "numbers standardised by the training split's mean and std",
    }.get(p.scaling)
    if how is None:
        return "not scaled: every `offset` 0, every `scale` 1"
    indicators = "boolean" in p.kinds or ("categorical" in p.kinds and p.categorical == "onehot")
    return how + "; true/false and one-hot columns as they are" * indicators


def export_run(workdir: str, output: str, which: str = "latest") -> dict:
    """Writes the export of the run in `workdir` to the folder `output` (`~`: the home
    folder); returns what it wrote."""
    if output == "":
        raise UserError("--output is empty; expected a new folder for the export.")
    output = files.as_path(output, "--output", "folder")
    workdir = workdir_lib.as_path(workdir)
    if not isinstance(which, str):
        raise UserError(f"which: expected 'latest' or 'best'; got {which!r}.")
    _check_output(output)
    model = trained.load(workdir, which)
    d, latent = model.num_features, model.config.model.latent_dim
    what, kept = workdir_lib.diverged_at(model.diverged_step)
    diverged = (
        f"This run diverged ({what}): these are its parameters, {kept}"
        if model.kept_at_divergence
        else f"This run diverged later ({what}): these are its parameters at the end of epoch "
        f"{model.epoch}"
        if model.diverged_step is not None
        else ""
    )
    why = (
        "its summary.json cannot be read" if model.status == "unknown" else "it has no summary.json"
    )
    unfinished = (
        f"This run is not marked finished ({why}): these are the parameters of its "
        f"epoch-{model.epoch} checkpoint, of {model.config.train.epochs} epochs"
        if model.status in ("unfinished", "unknown")
        else ""
    )
    params = jax.tree.map(jnp.asarray, model.params)
    module = model.model
    encode = jax.jit(functools.partial(trained.model_fn(module, "encode"), params))
    decode = jax.jit(functools.partial(trained.model_fn(module, "decode"), params))
    (n,) = jax.export.symbolic_shape("n")
    exported = {  # both made before any file is written
        ENCODE: jax.export.export(encode, platforms=PLATFORMS)(
            jax.ShapeDtypeStruct((n, d), jnp.float32)
        ),
        DECODE: jax.export.export(decode, platforms=PLATFORMS)(
            jax.ShapeDtypeStruct((n, latent), jnp.float32)
        ),
    }
    serialized = {name: e.serialize() for name, e in exported.items()}
    fill = lambda folder: _write(
        folder, workdir, model, serialized, d, latent, diverged or unfinished
    )
    try:  # whole or not at all: a killed export leaves no half folder, a rival's is kept
        files.publish_folder(output, fill, last=(ENCODE, DECODE))  # (read as an export)
    except FileExistsError:
        raise UserError(
            f"--output {output!r} was written by another process while this one exported (it "
            "was new or empty when this one started); nothing was written: choose a new folder."
        ) from None
    except OSError as e:
        raise UserError(f"--output {output!r} cannot be written: {e.strerror}.") from None
    return {
        "output": output,
        "features": d,
        "latent_dim": latent,
        "epoch": model.epoch,
        "diverged": diverged,
        "unfinished": unfinished,
    }


# A run's own folders, which its training, evaluation and loading read (an export beside them,
# as runs/r/exported, is the user's to keep there).
_RUN_FOLDERS = (
    workdir_lib.CHECKPOINTS,
    workdir_lib.FIGURES,
    workdir_lib.TENSORBOARD,
    workdir_lib.EVALUATIONS,
    "damaged_checkpoints",
)


def _check_output(output: str) -> None:
    """Refuses an --output that is not a new (or empty) folder that can be made, outside the
    folders of runs and exports."""
    names = os.listdir(output) if os.path.isdir(output) else []
    is_file = os.path.exists(output) and not os.path.isdir(output)
    if is_file or not all(map(files.leftover, names)):  # (a killed export's: the next clears them)
        what = "is a file" if not os.path.isdir(output) else "exists and is not an empty folder"
        if files.CLAIM in names:
            what += f" (its {files.CLAIM} beside them: an export killed, or still writing)"
        raise UserError(f"--output {output!r} {what}; choose a new folder (nothing was written).")
    # Both ways up: through a link (RUN/checkpoints -> scratch) the real path meets no run.
    for full in dict.fromkeys([os.path.abspath(output), os.path.realpath(output)]):
        _check_not_inside(output, full)
    parent = os.path.abspath(output)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        why = "is a file" if not os.path.isdir(parent) else "is not writable"
        raise UserError(f"--output {output!r} cannot be made: {parent!r} {why}.")


def _check_not_inside(output: str, full: str) -> None:
    """Refuses `full` (--output's path) inside a run's own folders, an export, or as a run of
    a sweep's runs/ (into a run's checkpoints/: read as a damaged epoch)."""
    up = os.path.dirname(full)
    while up != os.path.dirname(up):
        inside, under = workdir_lib.kind_of(up), os.path.relpath(full, up).split(os.sep)
        what = ""
        if inside == "run" and under[0] in _RUN_FOLDERS:
            what = f"a run's {under[0]}/"
        elif inside == "export":
            what = "an export's"
        elif inside == "sweep" and under[0] == "runs" and len(under) == 2:  # (read as a run)
            what = "a sweep's runs/"
        if what:
            raise UserError(
                f"--output {output!r} lies inside {up!r}, {what} folder, whose files it would "
                "mix with the export's; choose a folder outside it (nothing was written)."
            )
        up = os.path.dirname(up)


def _write(output, workdir, model, serialized, d, latent, diverged) -> None:
    """The export's files, into the existing folder `output`."""
    for name, blob in serialized.items():
        with open(os.path.join(output, name), "wb") as f:
            f.write(blob)
    with open(os.path.join(output, PARAMS), "wb") as f:
        f.write(serialization.msgpack_serialize(jax.tree.map(np.asarray, model.params)))
    for name in (workdir_lib.PREPROCESSOR, workdir_lib.CONFIG):
        shutil.copyfile(os.path.join(workdir, name), os.path.join(output, name))
    with open(
        os.path.join(output, "README.md"), "w", encoding="utf-8", errors="surrogateescape"
    ) as f:
        f.write(
            _README.format(
                name=os.path.basename(os.path.abspath(workdir)),
                workdir=os.path.abspath(workdir),
                epoch=model.epoch,
                kind="VAE" if model.is_vae else "autoencoder",
                jax_version=jax.__version__,
                d=d,
                latent=latent,
                scaling=_scaling_said(model.preprocessor),
                code_note=", posterior means" if model.is_vae else "",
                diverged=f"\n\n{diverged}." if diverged else "",
            )
        )
