"""Reuse a trained run: `ae_jax.load(workdir)` -> encode / decode / reconstruct / sample.

The loaded object applies the preprocessing saved with the run (categorical and boolean
encoding, then the scaling fitted on the training split), so raw rows can be encoded directly:

    model = ae_jax.load("runs/shop")
    codes = model.encode("online_shoppers_intention.csv")   # (N, latent_dim)
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import models
from ae_jax import workdir as workdir_lib
from ae_jax.data import images, pixel_checks
from ae_jax.data import scaling as scaling_lib
from ae_jax.data.image_files import check_channels_last
from ae_jax.errors import UserError
from ae_jax.evaluation import restore
from ae_jax.files import real_path
from ae_jax.training import resources


class TrainedModel:
    """A trained autoencoder or VAE with its preprocessing; methods take raw rows.

    Attributes:
        workdir, config (the run's, a ConfigDict), dataset_info (what config.json records of
            the data), preprocessor (`data.Preprocessor`), num_features, image_shape (or None),
            model (the Flax module), params, is_vae.
        epoch: the epoch of the checkpoint loaded; of a diverged run, the last epoch it
            finished, as its summary.json says (the checkpoint holds the parameters from before
            its non-finite step, `diverged_step`).
        status: "done", "diverged", "unfinished" (stopped, or training now: `epoch` is its
            newest checkpoint) or "unknown" (its summary.json cannot be read, `summary_damage`
            says why); `ae_jax.load` warns of all but "done".
        diverged_step: a diverged run's (the steps its kept parameters had taken), else None.
        checkpoint: the epoch named by the checkpoint loaded (checkpoints/<it>): a diverged
            run's kept parameters are in its group's checkpoints after its divergence.
        kept_at_divergence: whether these are a diverged run's kept parameters (not earlier ones).
    """

    def __init__(self, workdir: str, which: str = "latest"):
        self.workdir = workdir = workdir_lib.as_path(workdir)
        self.config, self.dataset_info = restore.load_config(workdir)
        self.preprocessor = data_lib.load_preprocessor(os.path.join(workdir, "preprocessor.json"))
        self.num_features = self.preprocessor.num_features
        self.image_shape = tuple(self.dataset_info.get("image_shape") or ()) or None
        self.model = models.model_from_config(
            self.config, self.num_features, self.image_shape, self.preprocessor.layout()
        )
        if which not in ("latest", "best"):
            raise UserError(f"which={which!r}; expected 'latest' or 'best'.")
        self.epoch, raw = restore.read_checkpoint(workdir, self.config, which)
        self.checkpoint = self.epoch  # the checkpoint loaded (checkpoints/<this>)
        params = raw["params"]
        # A run that diverged keeps the parameters from before its non-finite step (-1: none).
        div = int(np.asarray(raw.get("diverged_step", -1)))
        self.params = restore.check_params(params, self.model, self.num_features, workdir)
        self.summary_damage: str | None = None  # why summary.json cannot be read, if so
        try:
            summary = workdir_lib.finished_summary(workdir) or {}
        except UserError as e:  # a damaged summary.json: the parameters do not need it
            summary, self.summary_damage = {}, str(e)
        no_summary = "unknown" if self.summary_damage else "unfinished"  # (if it finished)
        self.status = "diverged" if div >= 0 else summary.get("status", no_summary)
        self.kept_at_divergence = div >= 0  # (else an earlier checkpoint of one: which='best')
        # Its step: the checkpoint's, or its summary's (an earlier checkpoint: which='best').
        step = div if div >= 0 else summary.get("diverged_step")
        self.diverged_step = step if self.status == "diverged" and isinstance(step, int) else None
        self.end_epoch = summary.get("epoch")  # where a finished run ended (its summary's)
        self.best_epoch = summary.get("best_epoch")  # the best when it finished (its summary's)
        if div >= 0 and isinstance(summary.get("epoch"), int):  # as its summary says, not the
            self.epoch = summary["epoch"]  # epoch of the group's last checkpoint
        self.is_vae = isinstance(self.model, models.VAE)
        self._encode = jax.jit(model_fn(self.model, "encode"))
        self._decode = jax.jit(model_fn(self.model, "decode"))

    def features(self, rows, npz_key: str | None = None) -> np.ndarray:
        """Raw rows (a file path, `data.Table`, or 2-D array/list in the training columns'
        order) -> the model's input features (encoded and scaled). `npz_key`: the array of an
        `.npz` file to read (default: the run's data.npz_key, else 'x' or its only array)."""
        _no_mask(
            rows,
            "the input rows",
            "pass rows.astype(float).filled(np.nan) to have them read as missing values (the run's "
            f"data.missing={self.config.data.missing!r} decides what becomes of them)",
        )
        path = isinstance(rows, str | os.PathLike)
        if npz_key is not None and (not path or npz_key and not f"{rows}".lower().endswith(".npz")):
            given = repr(str(rows)) if path else f"a {type(rows).__name__}"  # (was ignored)
            raise UserError(
                f"npz_key={npz_key!r} names an array of an .npz file; the rows given are "
                f"{given}, not one: pass the .npz file's path, or no npz_key."
            )
        if path:
            key = self.config.data.npz_key if npz_key is None else npz_key
            rows = data_lib.read_table(
                str(rows),
                key,
                delimiter=delimiter_for(self.config.data, str(rows)),
                key_field="npz_key="
                if npz_key is not None or not key
                else RUNS_KEY.format("npz_key="),
            )
        source = getattr(rows, "source", "the input")
        images.check_not_one_image(rows, self.image_shape, source)
        shape = getattr(rows, "image_shape", None)
        if shape is None and isinstance(rows, np.ndarray) and rows.ndim > 2:
            # (channels first were told to "convert their colours (32 channels -> RGB)")
            check_channels_last(rows.shape, "the input array")
            shape = rows.shape[1:]
        self.check_image_shape(shape, source)
        x = self.preprocessor.transform(rows)
        self.check_image_units(x, source)
        if shape is None:  # flat rows (an (N, H, W, C) array says its own layout)
            pixel_checks.say_planar(x, self.image_shape or (), source)
        scaling_lib.say_far_rows(source, self.preprocessor, x)
        return x

    def check_image_shape(self, shape, source: str) -> None:
        """Refuses images of another shape than the model's (their pixels would be matched by
        position: 64 x 48 grey images fed to a 32 x 32 x 3 model)."""
        grey = images.grey_shape
        if shape is not None and self.image_shape and grey(shape) != grey(self.image_shape):
            channels = [s[2] if len(s) == 3 else 1 for s in (tuple(shape), self.image_shape)]
            fixes = [_CHANNELS.get(c, f"{c} channels") for c in channels]
            fix = (  # a colour mismatch is no size (resizing grey images gives no colour)
                f"convert their colours ({fixes[0]} -> {fixes[1]})"
                + (" and resize them" if tuple(shape)[:2] != self.image_shape[:2] else "")
                if channels[0] != channels[1]
                else "swap height and width if stored transposed (np.swapaxes(x, 1, 2)), or resize"
                if tuple(shape)[1::-1] == self.image_shape[:2]  # (not "resize": a probe)
                else "resize them to that shape"
            )
            raise UserError(
                f"{source} holds images of shape {tuple(shape)}; the model was trained on "
                f"images of shape {self.image_shape}: {fix} first"
            )

    def check_image_units(self, x: np.ndarray, source: str) -> None:
        """Refuses images in other units than the training images' (`scaling.check_images`)."""
        if self.image_shape:
            scaling_lib.check_images(self.preprocessor, x, source)

    def encode(self, rows, npz_key: str | None = None) -> np.ndarray:
        """Codes of raw rows: the code layer of an AE, the posterior mean of a VAE."""
        return self.encode_features(self.features(rows, npz_key))

    def encode_features(self, x: np.ndarray) -> np.ndarray:
        """Codes of features already encoded and scaled (`features(rows)`, or a Dataset's
        splits): (N, num_features) -> (N, latent_dim)."""
        x = _finite(x, self.num_features, "features", "Use encode() for raw rows.")
        if not len(x):  # no rows, no codes (a conv model's reshape of 0 rows divided by 0)
            return np.zeros((0, self.config.model.latent_dim), np.float32)
        return self._batched(self._encode, x)

    def decode(self, z) -> np.ndarray:
        """Codes (N, latent_dim) -> reconstructions in the scaled feature space."""
        z = _finite(z, self.config.model.latent_dim, "codes")
        if not len(z):
            return np.zeros((0, self.num_features), np.float32)
        return self._batched(self._decode, z)

    def _batched(self, fn, x: np.ndarray) -> np.ndarray:
        """fn(params, x) in batches of train.eval_batch_size rows, the last padded to that size
        (one program), so that a large input's activations need not fit in memory at once; fewer
        rows, padded to a power of two (a notebook encoding 1, 2, ... 30 rows compiled 30
        programs, 0.35-0.5 s each for a conv model: now 6, and at most 13 for any number)."""
        rows = int(self.config.train.eval_batch_size)
        rows = min(rows, 1 << (len(x) - 1).bit_length())
        out = []
        for start in range(0, len(x), rows):
            part = x[start : start + rows]
            padded = np.concatenate([part, np.zeros((rows - len(part), *x.shape[1:]), x.dtype)])
            out.append(np.asarray(fn(self.params, jnp.asarray(padded)))[: len(part)])
        return np.concatenate(out)

    def reconstruct(self, rows, npz_key: str | None = None) -> np.ndarray:
        """Raw rows -> reconstructions (scaled feature space; `inverse_scale` undoes it)."""
        codes = self.encode(rows, npz_key)
        if not len(codes):
            return np.zeros((0, self.num_features), np.float32)
        return self._batched(self._decode, codes)

    def inverse_scale(self, x: np.ndarray) -> np.ndarray:
        """Scaled features or reconstructions (..., num_features) -> the encoded space (the
        columns' own units for numeric columns; one-hot and true/false stay 0..1)."""
        return self.preprocessor.inverse_scale(_numbers(x, self.num_features, "values", ndim=0))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n draws from the VAE's generative model (likelihood means)."""
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise UserError(f"sample: n={n!r}; expected a whole number >= 1.")
        config_lib.check_seed(seed, "sample: seed")
        if not self.is_vae:
            raise UserError("sample() needs a VAE; this run trained a deterministic autoencoder.")
        # Drawn at once, then decoded in batches: a billion draws aborted the process (a probe).
        need = 4 * n * (self.config.model.latent_dim + 2 * self.num_features)  # float32
        have, what = resources.available_bytes()
        if need > have // 2:
            raise UserError(
                f"sample: n={n:,} draws need about {need / 2**30:.3g} GiB (their codes and "
                f"decodings) of {have / 2**30:.3g} GiB of {what}; draw fewer at a time."
            )
        z = jax.random.normal(jax.random.PRNGKey(seed), (n, self.config.model.latent_dim))
        return self.decode(np.asarray(z))


# How messages name the run's data.npz_key where it, not the caller, names an .npz's array ({}:
RUNS_KEY = "the run's data.npz_key ({} names another array)"  # the flag or argument naming one)


def delimiter_for(data_config, path: str) -> str:
    """The delimiter a file of new rows is read with: the run's data.delimiter for its own
    training file, else sniffed ('auto'; with ';' every later ',' file was refused)."""
    own = data_config.path and real_path(str(path)) == real_path(str(data_config.path))
    return str(data_config.delimiter) if own else "auto"


def model_fn(module, method: str):
    """(params, x) -> the module's `method` ("encode", "decode") as float32, whatever its
    compute dtype: a bfloat16 model's codes, say, are then what its decoder (float32) takes."""

    def fn(params, x):
        out = module.apply({"params": params}, x, method=method)
        return jax.tree.map(lambda a: a.astype(jnp.float32), out)

    return fn


def _finite(x, width: int, what: str, hint: str = "") -> np.ndarray:
    """`x` as finite float32 of shape (N, width); else UserError."""
    given, x = x, _numbers(x, width, what, hint)
    if not np.isfinite(x).all():
        at = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        none = np.ndim(given) == x.ndim and np.asarray(given, dtype=object)[at] is None  # not nan
        raise UserError(f"{what} at {at} is {'None' if none else x[at]}; expected finite values.")
    return x


def _numbers(x, width: int, what: str, hint: str = "", ndim: int = 2) -> np.ndarray:
    """`x` as float32 of shape (N, width) (ndim=0: any (..., width)); else UserError."""
    _no_mask(x, what, "fill them first (x.filled(value))")
    given = x
    if np.iscomplexobj(given):  # (its imaginary part was dropped with a ComplexWarning: a probe)
        raise UserError(f"expected {what} as real numbers; got complex values.")
    try:
        with np.errstate(over="ignore"):  # a value beyond float32's range: said below
            x = np.asarray(given, np.float32)
    except (ValueError, TypeError) as e:
        raise UserError(f"expected {what} as numbers; got {type(x).__name__} ({e}).") from None
    shape = f"(N, {width})" if ndim else f"(..., {width})"
    if (ndim and x.ndim != ndim) or x.ndim == 0 or x.shape[-1] != width:
        raise UserError(f"expected {what} of shape {shape}; got {x.shape}. {hint}".strip())
    if np.isinf(x).any():
        at = tuple(int(i) for i in np.argwhere(np.isinf(x))[0])
        value = float(np.asarray(given, np.float64)[at])
        if np.isfinite(value):
            raise UserError(
                f"{what} at {at} is {value:.6g}, beyond float32's range (about +-3.4e38), "
                "which the model computes in; expected values float32 can hold."
            )
    return x


def _no_mask(x, what: str, remedy: str) -> None:
    """Refuses a numpy masked array with masked entries: converting it drops the mask, so the
    values under it would be used as data."""
    if isinstance(x, np.ma.MaskedArray) and np.ma.is_masked(x):
        raise UserError(
            f"{what}: a masked array with {int(np.ma.count_masked(x))} masked entries, whose "
            f"values would be used as data (converting it drops the mask); {remedy}."
        )


_CHANNELS = {1: "grey", 3: "RGB", 4: "RGBA"}


def load(workdir: str, which: str = "latest") -> TrainedModel:
    """Loads a run for reuse; `which` is 'latest' or 'best' (lowest eval/loss)."""
    workdir = workdir_lib.as_path(workdir)
    restore.check_run_dir(workdir)  # the parent of K seed runs: named, not "not a run directory"
    model = TrainedModel(workdir, which)
    if model.diverged_step is not None and model.kept_at_divergence:
        what, kept = workdir_lib.diverged_at(model.diverged_step)
        logging.warning(
            "%s diverged (%s): its parameters are %s (as checkpoints/%d holds them)",
            workdir,
            what,
            kept,
            model.checkpoint,
        )
    elif model.diverged_step is not None:  # a checkpoint from before it diverged
        what, _ = workdir_lib.diverged_at(model.diverged_step)
        logging.warning(
            "%s diverged later (%s); these are its parameters at the end of epoch %d "
            "(checkpoints/%d)",
            workdir,
            what,
            model.epoch,
            model.checkpoint,
        )
    elif model.status == "unknown":  # not "has not finished": its summary.json is damaged
        logging.warning(
            "%s; whether the run finished is not known: its epoch-%d checkpoint is loaded",
            model.summary_damage,
            model.epoch,
        )
    elif model.status == "unfinished":  # (trained to the end: not its last writes, a probe)
        ended = max(workdir_lib.checkpoint_epochs(workdir), default=0) >= model.config.train.epochs
        logging.warning(
            "%s has not finished %s: its epoch-%d checkpoint is loaded",
            workdir,
            "its last writes (eval.json, summary.json: the same command writes them)"
            if ended
            else "training (stopped, or training now)",
            model.epoch,
        )
    elif which == "latest" and isinstance(model.end_epoch, int) and model.end_epoch > model.epoch:
        logging.warning(
            "%s finished at epoch %d, but its newest checkpoint is of epoch %d (checkpoints/%d "
            "deleted, or set aside as damaged?): that one is loaded",
            workdir,
            model.end_epoch,
            model.epoch,
            model.end_epoch,
        )
    elif which == "best" and isinstance(model.best_epoch, int) and model.best_epoch != model.epoch:
        there = os.path.isdir(os.path.join(workdir, workdir_lib.CHECKPOINTS, str(model.best_epoch)))
        logging.warning(
            "%s finished with epoch %d as its best (summary.json's best_epoch), but checkpoints/%d "
            "%s: the best of the checkpoints kept, epoch %d, is loaded",
            workdir,
            model.best_epoch,
            model.best_epoch,
            "is there, its meta.json (its eval/loss) unreadable: damaged? Restore it from a copy"
            if there  # (a probe's damaged one was said to be missing)
            else "is missing (deleted, or set aside as damaged?)",
            model.epoch,
        )
    return model
