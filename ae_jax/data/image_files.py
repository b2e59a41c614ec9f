"""The standard files of the image sets, read from the user's `data.dir` (no network).

- mnist / fashion_mnist: the four IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
  `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, gzipped or not, also in torchvision's
  `MNIST/raw` layout), or a Keras-style `mnist.npz` / `fashion-mnist.npz` with arrays
  `x_train, y_train, x_test, y_test`;
- cifar10: the python batches in `cifar-10-batches-py/` (`data_batch_1..5`, `test_batch`, read
  without unpickling arbitrary objects), or a `cifar10.npz` like the above.
(tfds:NAME, a TFDS set already prepared in `data.dir`: `tfds_data.py`.)

`read_files` returns {"x_train", "y_train", "x_test", "y_test"} uint8 pixel and label arrays
and a description of the source; every damaged or missing file is a UserError naming it.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np
from absl import logging

from ae_jax.errors import UserError

_IDX = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Where the IDX files may sit below data.dir: directly, or torchvision's download layout.
_IDX_FOLDERS = {"mnist": ("", "MNIST/raw"), "fashion_mnist": ("", "FashionMNIST/raw")}
_NPZ = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": ("fashion-mnist.npz", "fashion_mnist.npz"),
    "cifar10": ("cifar10.npz", "cifar-10.npz"),
}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
SHAPES: dict[str, list[tuple[int, ...]]] = {
    "mnist": [(28, 28), (28, 28, 1)],
    "cifar10": [(32, 32, 3)],
}
SHAPES["fashion_mnist"] = SHAPES["mnist"]
_CIFAR_FOLDERS = ("cifar-10-batches-py", "")
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_CIFAR_SHAPE = (3, 32, 32)  # each row of b"data": 1024 red, then green, then blue values


def _read_bytes(path: str) -> bytes:
    """The file's bytes, gunzipped when it is gzip (told by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(
            f"{path!r} is a damaged or truncated gzip file ({e}); expected a complete "
            "download: fetch it again"
        ) from None


def read_idx(path: str, ndim: int) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (the MNIST format), gzipped or not.

    Args:
        path: the file.
        ndim: dimensions it must hold: 3 for images (N, H, W), 1 for labels (N,).

    Returns:
        The uint8 array, shaped as its header says.
    """
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    what = "images" if ndim == 3 else "labels"
    expected = 0x0800 + ndim  # two zero bytes, type 0x08 (unsigned byte), number of dimensions
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected:
        found = "the file is shorter than 4 bytes" if magic is None else f"it is 0x{magic:08X}"
        raise UserError(
            f"{path!r} is not an IDX file of {what}: its magic number should be "
            f"0x{expected:08X} (unsigned bytes, {ndim} dimension(s)) but {found}"
        )
    if len(raw) < header:
        raise UserError(
            f"{path!r} is truncated: {len(raw)} bytes, shorter than its "
            f"{header}-byte IDX header; fetch it again"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size, body = math.prod(dims), len(raw) - header
    if body != size or dims[0] == 0:
        problem = (
            "holds no rows"
            if dims[0] == 0
            else f"is truncated: it holds {body}"
            if body < size
            else f"has extra bytes: {body}"
        )
        raise UserError(
            f"{path!r}: its IDX header says {what} of shape {dims} ({size} bytes), "
            f"but the file {problem}; expected a complete file: fetch it again"
        )
    return np.frombuffer(raw, np.uint8, size, header).reshape(dims)


def check_channels_last(shape: tuple, what: str, training: bool = False) -> None:
    """Refuses images stored channels first (N, C, H, W), as PyTorch keeps them: read channels
    last, (N, 3, 32, 32) would be 3 x 32 pixels of 32 channels and train as nonsense. A 4-D
    array whose axis 1 could be channels (1, 3 or 4) and whose last two axes are both more
    than 4 (an image's height and width; (N, 3, 3, 13), 3 x 3 patches of 13 bands, is kept).
    Only a `training` file (data.path) can instead be flattened with data.image_shape set: an
    image set's archive, or new rows for a trained run, have the channels moved alone."""
    if len(shape) == 4 and shape[1] in (1, 3, 4) and shape[2] > 4 and shape[3] > 4:
        raise UserError(
            f"{what} has shape {tuple(shape)}: images with their channels first (N, C, H, W), "
            f"as PyTorch stores them? expected channels last (N, H, W, C); as read here it "
            f"would be {shape[1]} x {shape[2]} pixels of {shape[3]} channels: save "
            "np.moveaxis(x, 1, -1) instead"
            + (
                " (if it is H x W x C, save it flattened to (N, H*W*C) and set data.image_shape)"
                if training
                else ""
            )
        )


def _pairs(x: np.ndarray, y: np.ndarray, where: str) -> None:
    if y.shape != (x.shape[0],):
        one_hot = y.ndim == 2 and y.shape[0] == x.shape[0]  # (y was flattened: "(14000,)")
        raise UserError(
            f"{where}: {x.shape[0]} images but labels of shape {y.shape}; expected "
            "one label per image" + (" (one-hot rows? save y.argmax(axis=1))" if one_hot else "")
        )


def _first_existing(folder: str, stem: str) -> str:
    """The file `stem` in `folder` under its usual names ("" if none), gzip first; said when
    another of those names is there too (torchvision's raw/ folder holds both: which one was
    read was said nowhere, a probe)."""
    names = (f"{stem}.gz", stem, stem.replace("-idx", ".idx"))
    found = [n for n in dict.fromkeys(names) if os.path.isfile(os.path.join(folder, n))]
    if len(found) > 1:
        logging.info("%r holds %s: reading %s", folder, " and ".join(found), found[0])
    return os.path.join(folder, found[0]) if found else ""


def _read_idx_set(folder: str) -> dict[str, np.ndarray]:
    arrays = {}
    for split, (images, labels) in _IDX.items():
        x_path, y_path = _first_existing(folder, images), _first_existing(folder, labels)
        x, y = read_idx(x_path, 3), read_idx(y_path, 1)
        _pairs(x, y, f"{x_path!r} and {y_path!r}")
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        # No pickles: loading a data file must not be able to run code.
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _NPZ_KEYS if k not in z.files]
            if missing:
                raise UserError(
                    f"{path!r} has no array(s) {missing}; expected the Keras layout "
                    f"{list(_NPZ_KEYS)} (its arrays: {z.files})"
                )
            arrays = {k: z[k] for k in _NPZ_KEYS}
    except UserError:  # a ValueError too: readable, but not the Keras layout
        raise
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise UserError(
            f"{path!r} cannot be read as a NumPy .npz archive ({e}); expected "
            f"arrays {list(_NPZ_KEYS)}"
        ) from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y  # (N, 1): Keras' CIFAR-10
        if x.dtype != np.uint8 or x.ndim not in (3, 4) or x.shape[0] == 0:
            raise UserError(
                f"{path!r} array 'x_{split}' has dtype {x.dtype} and shape {x.shape}; "
                "expected uint8 pixels 0..255 of shape (N, H, W) or (N, H, W, C)"
            )
        check_channels_last(x.shape, f"{path!r} array 'x_{split}'")
        _pairs(x, y, f"{path!r} arrays 'x_{split}' and 'y_{split}'")
        arrays[f"y_{split}"] = y
    return arrays


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes, numbers and NumPy arrays only: CIFAR's batches are pickles,
    and loading a data file must not be able to run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        # The original batches name numpy.core, which NumPy 2 renamed to numpy._core.
        module = module.replace("numpy.core.", "numpy._core.")
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"it asks to load {module}.{name}, which a data batch never needs"
            )
        return super().find_class(module, name)


def _read_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        reason = str(e) or "the file ends early"
        raise UserError(
            f"{path!r} cannot be read as a CIFAR-10 python batch ({reason}); "
            "expected a pickled dict from the official cifar-10-python.tar.gz: "
            "fetch it again"
        ) from None
    get = lambda key: batch.get(key, batch.get(key.decode())) if isinstance(batch, dict) else None
    x, y = get(b"data"), get(b"labels")
    size = math.prod(_CIFAR_SHAPE)
    if not (
        isinstance(x, np.ndarray)
        and x.dtype == np.uint8
        and x.ndim == 2
        and x.shape[1] == size
        and x.shape[0] > 0
        and y is not None
    ):
        shown = f"array {x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise UserError(
            f"{path!r} is not a CIFAR-10 batch: b'data' is {shown}; expected a dict "
            f"with b'data' (N, {size}) uint8 and b'labels' (N labels)"
        )
    y = np.asarray(y, dtype=np.int64)
    _pairs(x, y, repr(path))
    # Rows are channel-major (CHW); images are stored as HWC, like the other sets.
    return x.reshape(-1, *_CIFAR_SHAPE).transpose(0, 2, 3, 1), y


def _read_cifar_set(folder: str) -> dict[str, np.ndarray]:
    train = [_read_cifar_batch(os.path.join(folder, f)) for f in _CIFAR_FILES[:-1]]
    x_test, y_test = _read_cifar_batch(os.path.join(folder, _CIFAR_FILES[-1]))
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
    }


def read_files(name: str, directory: str) -> tuple[dict[str, np.ndarray], str]:
    """Finds and reads the standard files of `name` under `directory`; returns arrays, source.
    Images of another shape than the set's (an .npz of MNIST read as cifar10: the log called
    its 28 x 28 grey images cifar10) are warned of: a Keras-layout .npz of other images reads."""
    read, where = _locate(name, directory)
    given = os.path.isfile(os.path.expanduser(directory))  # data.dir names the .npz itself
    files = {
        _read_npz: "",
        _read_cifar_set: "the CIFAR batches in ",
        _read_idx_set: "the IDX files in ",
    }
    arrays = read(where)
    source = f"data.dir {directory!r}" if given else files[read] + repr(where)
    shape = tuple(arrays["x_train"].shape[1:])
    if shape not in SHAPES[name]:
        like = [f"data.name={n!r}" for n, own in SHAPES.items() if shape in own]
        logging.warning(
            "%s: its images are %s, not %s's %s; read all the same, and named %s%s",
            source, "x".join(map(str, shape)), name, "x".join(map(str, SHAPES[name][0])), name,
            f" (images of that shape: {' or '.join(like)})" if like else "",
        )  # fmt: skip
    return arrays, source


def training_files(name: str, directory: str) -> list[tuple[str, str]]:
    """The files `read_files` takes the training images of `name` from, as (path, the array
    of an .npz holding them, else ""): so that evaluating one of them is said to be no
    validation error. None when the set cannot be found (its reading says why)."""
    try:
        read, where = _locate(name, directory)
    except UserError:
        return []
    if read is _read_npz:
        return [(where, "x_train")]
    if read is _read_cifar_set:
        return [(os.path.join(where, stem), "") for stem in _CIFAR_FILES[:-1]]
    return [(_first_existing(where, _IDX["train"][0]), "")]


def _locate(name: str, directory: str):
    """(how to read, where): the reader of the layout of `name` found under `directory` and
    its folder or .npz file."""
    if not directory:
        raise UserError(
            f"data.name {name!r} reads its standard files from a local directory, "
            "but data.dir is empty; set data.dir to the directory holding them "
            "(nothing is downloaded)"
        )
    full = os.path.expanduser(directory)
    if os.path.isfile(full) and full.endswith(".npz"):
        return _read_npz, full
    if not os.path.isdir(full):
        raise UserError(
            f"data.dir {directory!r} is "
            + ("a file, not a directory" if os.path.isfile(full) else "not an existing directory")
            + f"; expected the directory holding the {name} files (or a Keras-layout .npz)"
        )
    # Each layout: (folder, the files it needs, how to read them).
    if name == "cifar10":
        stems, read = list(_CIFAR_FILES), _read_cifar_set
        layouts = [os.path.join(full, sub) if sub else full for sub in _CIFAR_FOLDERS]
        has = lambda folder, stem: os.path.isfile(os.path.join(folder, stem))
    else:
        stems, read = [s for pair in _IDX.values() for s in pair], _read_idx_set
        layouts = [os.path.join(full, sub) if sub else full for sub in _IDX_FOLDERS[name]]
        has = lambda folder, stem: bool(_first_existing(folder, stem))
    hints = []
    for folder in layouts:
        found = [s for s in stems if has(folder, s)]
        if len(found) == len(stems):
            return read, folder
        if found:  # Most likely a partial download or extraction: say what is missing.
            hints.append(f"{folder!r} lacks {[s for s in stems if s not in found]}")
    for npz in _NPZ[name]:
        if os.path.isfile(os.path.join(full, npz)):
            return _read_npz, os.path.join(full, npz)
    gz = "" if name == "cifar10" else "[.gz]"
    looked = (
        f"{', '.join(s + gz for s in stems)} in {' or '.join(map(repr, layouts))}; or "
        f"{' or '.join(_NPZ[name])} (arrays {', '.join(_NPZ_KEYS)}) in {full!r}"
    )
    if name == "cifar10" and os.path.isfile(os.path.join(full, "cifar-10-python.tar.gz")):
        hints.append(
            f"{full!r} holds cifar-10-python.tar.gz: extract it there first "
            "(tar xzf cifar-10-python.tar.gz)"
        )
    raise UserError(
        f"data.dir {directory!r} holds no complete set of {name} files"
        f"{': ' + '; '.join(hints) if hints else ''}; looked for {looked}"
    )
