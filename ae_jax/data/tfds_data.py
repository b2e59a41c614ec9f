"""tfds:NAME, an image set already prepared by TensorFlow Datasets in `data.dir`, read through
`tfds.data_source` (no network: download=False). `read_tfds` returns what
`image_files.read_files` does: {"x_train", "y_train", "x_test", "y_test"} uint8 pixel and label
arrays and a description of the source; a set that cannot be read is a UserError naming it.
"""

import os

import numpy as np
from absl import logging

from ae_jax.errors import UserError


def read_tfds(name: str, data_dir: str, limit: int) -> tuple[dict[str, np.ndarray], str]:
    if data_dir and not os.path.isdir(os.path.expanduser(data_dir)):  # (TFDS warned of a
        raise UserError(  # missing '<dir>/mnist/3.0.1', then said the set's folder was missing)
            f"data.name 'tfds:{name}': data.dir {data_dir!r} "
            f"{'is a file' if os.path.exists(os.path.expanduser(data_dir)) else 'does not exist'}"
            f"; expected the folder TFDS prepared the set in (tfds build {name} "
            "--file_format=array_record --data_dir=DIR, where there is network)"
        )
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError(
            f"data.name 'tfds:{name}' needs TensorFlow Datasets, which is not "
            "installed: pip install tensorflow-datasets (TensorFlow is not needed)"
        ) from None
    arrays = {}
    for split in ("train", "test"):
        try:
            # download=False: a run never reaches the network; the set must be prepared already.
            source = _source(tfds, name, split, data_dir)
            n = min(limit, len(source)) if limit and split == "train" else len(source)
            rows = [source[i] for i in range(n)]
        except Exception as e:  # noqa: BLE001 -- TFDS raises many types; all mean "not readable"
            reason = f"{type(e).__name__}: " + (str(e).strip().splitlines() or [""])[0]
            if _unknown_split(e):  # prepared, but the split is not one of the set's
                which = "'test' or 'validation'" if split == "test" else repr(split)
                raise UserError(
                    f"data.name 'tfds:{name}' has no {which} split ({reason}); expected "
                    "a set with 'train' and 'test' (or 'validation') splits, ae_jax's "
                    "training and validation images; give other images as an .npz "
                    "(data.path: np.savez(PATH, x=images, y=labels))"
                ) from None
            # TFDS's own message for an unprepared set talks about file formats; say it plainly.
            folder = name.split("/")[0].split(":")[0]  # "mnist:3.0.1", "mnist/cfg": in mnist/
            unknown = type(e).__name__ == "DatasetNotFoundError"
            if (
                data_dir
                and not unknown
                and not os.path.isdir(os.path.join(os.path.expanduser(data_dir), folder))
            ):
                reason = f"it has no folder {folder!r}: the set is not prepared there"
            raise UserError(
                f"data.name 'tfds:{name}': TFDS cannot read split {split!r} from data.dir "
                f"{data_dir or '~/tensorflow_datasets'!r} ({reason.rstrip(':')}); prepare "
                f"it once where there is network: tfds build {name} --file_format=array_record "
                "--data_dir=DIR, then set data.dir to DIR"
            ) from None
        if not rows or "image" not in rows[0]:
            raise UserError(
                f"data.name 'tfds:{name}' split {split!r} has "
                f"{'no rows' if not rows else f'features {sorted(rows[0])}'}; "
                "expected rows with an 'image' feature (and 'label')"
            )
        shapes = list(dict.fromkeys(np.shape(r["image"]) for r in rows))
        if len(shapes) > 1:
            raise UserError(
                f"data.name 'tfds:{name}' split {split!r} holds images of {len(shapes)} "
                f"shapes ({', '.join(map(str, shapes[:3]))}{', ...' if len(shapes) > 3 else ''}); "
                "expected images of one shape (ae_jax resizes none): resize them to one and "
                "give them as an .npz (data.path: np.savez(PATH, x=images, y=labels))"
            )
        arrays[f"x_{split}"] = np.stack([np.asarray(r["image"]) for r in rows])
        arrays[f"y_{split}"] = (
            np.array([r["label"] for r in rows]) if "label" in rows[0] else np.zeros(n, np.int64)
        )
        if arrays[f"x_{split}"].dtype != np.uint8:
            raise UserError(
                f"data.name 'tfds:{name}' images have dtype "
                f"{arrays[f'x_{split}'].dtype}; expected uint8 pixels 0..255"
            )
    return arrays, f"TFDS {name!r}"


def _source(tfds, name: str, split: str, data_dir: str):
    """The set's `split` as TFDS's data source; its held-out images, 'test', from the set's
    'validation' split where it has no 'test' (imagenette, say: a probe's was refused, told to
    prepare the set it had prepared)."""
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir or None, download=False)
    except Exception as e:
        if split != "test" or not _unknown_split(e):
            raise
        try:
            held_out = tfds.data_source(
                name, split="validation", data_dir=data_dir or None, download=False
            )
        except Exception as e2:
            if _unknown_split(e2):
                raise e from None  # said as the set having no 'test' (nor 'validation') split
            raise
    logging.info("tfds:%s has no 'test' split: its 'validation' split validates", name)
    return held_out


def _unknown_split(e: Exception) -> bool:
    """Whether TFDS refused a split that the set does not have ('Unknown split "test". Should
    be one of [...]')."""
    return "unknown split" in str(e).lower()
