"""Will it fit? Memory a group needs, estimated from shapes alone, checked before allocating.

The estimate adds, for K models: parameters, gradients and optimizer state (their exact sizes,
from `jax.eval_shape` of the model's and the optimizer's init: nothing is allocated), the
activations of one training batch and of one evaluation batch (the layer widths times the
batch, for a forward and a backward pass), and the data held on the device; the end-of-run
evaluation's largest pass (a VAE's importance-weighted bound: rows x k samples x features,
sized by its caller) replaces the activations after training. It is compared with
the device's memory (an accelerator's `bytes_limit`; on a CPU the host's available memory), so
a setting that cannot fit is refused with the estimate and the setting to change, instead of
hanging in an allocation.
"""

import math
import os

import jax
import jax.numpy as jnp

from ae_jax.errors import UserError
from ae_jax.models import conv
from ae_jax.training import optim

_FLOAT = 4  # bytes: parameters, optimizer state, activations and data are float32
_HEADROOM = 0.9  # refuse beyond this share of the memory available
# (after training, when training's activations are freed: the total counts the larger)
EVAL_PASS = "evaluation's importance-weighted pass, in place of the activations"
ACTIVATIONS = "activations of one batch"
# A VAE trained on an importance-weighted bound decodes k samples of each row (a probe's
# loss.iw_samples_train=2000000 compiled, then ran out of memory, told of train.batch_size)
IW_ACTIVATIONS = "activations of one batch's loss.iw_samples_train samples"


def _size(tree) -> int:
    return int(sum(math.prod(a.shape) for a in jax.tree.leaves(tree)))


def _activation_width(config, params_shapes, num_features: int, image_shape) -> int:
    """Floats per row that one forward pass keeps: each layer's output, input included."""
    if config.model.arch == "conv":
        h, w, c = conv.image_hwc(num_features, image_shape)
        sizes = conv.map_sizes(h, w, len(config.model.conv_features))
        maps = sum(
            hh * ww * f for (hh, ww), f in zip(sizes[1:], config.model.conv_features, strict=True)
        )
        return 2 * maps + 2 * h * w * c  # encoder and decoder trunks, input and output
    widths = [leaf.shape[-1] for leaf in jax.tree.leaves(params_shapes) if len(leaf.shape) == 2]
    return num_features + sum(widths)


def estimate(
    config,
    model,
    num_features: int,
    n_train: int,
    n_val: int,
    k: int,
    image_shape=None,
    mode: str = "none",
    n_dev: int = 1,
    eval_floats: int = 0,
) -> dict[str, int]:
    """Bytes by part on one device: params+grads, optimizer state, activations, data, and the
    evaluation's largest pass (`eval_floats` floats: one model's, as evaluation takes the
    models a few at a time; 0: none); and their total, in which the evaluation's pass takes
    the place of training's activations. `mode` (placement's layout) over `n_dev` devices:
    'models' puts k / n_dev models on each, 'data' a batch's share of the rows; the data is on
    every device either way."""
    dummy = jax.ShapeDtypeStruct((1, num_features), jnp.float32)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    params = jax.eval_shape(lambda x, r: model.init(r, x, r)["params"], dummy, key)
    steps = max(1, math.ceil(n_train / max(1, min(config.train.batch_size, n_train))))
    tx = optim.make_optimizer(config.optim, steps, config.train.epochs, quiet=True)  # (shapes)
    opt_state = jax.eval_shape(tx.init, params)
    width = _activation_width(config, params, num_features, image_shape)
    batch = min(int(config.train.batch_size), n_train)
    eval_batch = min(int(config.train.eval_batch_size), n_val)
    split = n_dev if mode in ("models", "data") else 1  # activations: per model or per row
    models = k // n_dev if mode == "models" else k
    iw = max(1, int(config.loss.iw_samples_train)) if config.model.name == "vae" else 1
    rows = max(batch, eval_batch) * iw  # (training's validation takes the same bound)
    activations = ACTIVATIONS if iw == 1 else IW_ACTIVATIONS
    parts = {
        "parameters and gradients": 2 * _size(params) * models * _FLOAT,
        "optimizer state": _size(opt_state) * models * _FLOAT,
        # forward values and their gradients, twice over for the loss's intermediates
        activations: -(-4 * width * rows * k * _FLOAT // split),
        "data on the device": (n_train + n_val) * num_features * _FLOAT,
    }
    phases = [parts[activations]]
    if eval_floats:
        parts[EVAL_PASS] = eval_floats * _FLOAT
        phases.append(parts[EVAL_PASS])
    parts["total"] = sum(parts.values()) - sum(phases) + max(phases)
    return parts


def available_bytes() -> tuple[int, str]:
    """Memory the first device of this process can use, and what it is (in a multi-host run
    `jax.devices()[0]` is another host's, whose memory statistics this process cannot read)."""
    device = jax.local_devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if stats.get("bytes_limit"):
            return int(stats["bytes_limit"]) - int(
                stats.get("bytes_in_use", 0)
            ), f"{device.device_kind} memory"
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024, "available host memory"
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_fits(parts: dict[str, int], k: int, mode: str = "none", n_dev: int = 1) -> None:
    """Raises UserError when `estimate`'s `parts` for k models (under `mode` over `n_dev`
    devices) do not fit in one device's memory."""
    have, what = available_bytes()
    if parts["total"] > _HEADROOM * have:
        shown = ", ".join(f"{name} {_gib(b)}" for name, b in parts.items() if name != "total")
        # What shrinks the largest part (a smaller model shrinks Adam's state too, which is a
        # few bytes larger than the parameters and gradients), then fewer models together
        # where there are several.
        # A batch's part (the activations, or the evaluation's pass in their place) is no
        # answer when the rest alone does not fit: a latent_dim of 3e8 (272 GiB of parameters
        # and Adam's state) was told to reduce train.batch_size.
        batch = (ACTIVATIONS, IW_ACTIVATIONS, EVAL_PASS)
        rest = parts["total"] - max(parts.get(n, 0) for n in batch)
        shrinks = [
            n for n in parts if n != "total" and (n not in batch or rest <= _HEADROOM * have)
        ]
        biggest = max((parts[n], n) for n in shrinks)[1]
        change = {
            "parameters and gradients": "reduce the model (model.encoder_widths / "
            "decoder_widths / latent_dim)",
            "optimizer state": "reduce the model (model.encoder_widths / decoder_widths / "
            "latent_dim), or choose an optimizer that keeps less state (optim.name='sgd')",
            ACTIVATIONS: "reduce train.batch_size / train.eval_batch_size",
            IW_ACTIVATIONS: "lower loss.iw_samples_train (training's k samples per row), or "
            "train.batch_size / train.eval_batch_size",
            "data on the device": "reduce data.limit",
            EVAL_PASS: "lower eval.iw_batch_rows (rows per batch of the bound, down to 1) or "
            "eval.iw_samples (its k samples per row)",
        }[biggest]
        if k > 1 and biggest != EVAL_PASS:
            change += (
                ", or train fewer models together (train.num_models; a sweep splits large "
                "groups with --max_models)"
            )
        where = f" per device ({mode} over {n_dev} devices)" if mode != "none" else ""
        raise UserError(
            f"{k} model(s) of this config need about {_gib(parts['total'])}{where} ({shown}), "
            f"more than the {_gib(have)} of {what}; {change}."
        )
