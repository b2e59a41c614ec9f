"""Convolutional encoders and decoder for image data (`model.arch = "conv"`).

Drop-in replacements for `models.Encoder`, `GaussianEncoder` and `Decoder` on the same flat
rows, x (..., H*W*C) -> code (..., latent_dim) and z -> logits (..., H*W*C), so `Autoencoder`,
`VAE`, the objective, evaluation (which vmaps the halves over single rows) and inference work
unchanged. Each module rebuilds the (H, W, C) image from its row-major flattening (`data.py`).

Encoder: one stride-2 SAME convolution per entry of `model.conv_features`, each halving the
map, rounding up (28 -> 14 -> 7, 8 -> 4 -> 2, 7 -> 4), then Dense code layer(s). Decoder, the
mirror: Dense to the smallest map, one stride-2 transposed convolution per encoder layer
(channels reversed), each cropped to the size its encoder layer saw (doubling gives
2 * ceil(n / 2) >= n, so cropping always suffices), then a convolution to C channels: logits.

On a CPU the convolutions run as patches @ kernel (`conv_cpu.matmul_conv`, see there).

Parameters (as in models.py, so either half can be applied on its own):
  encoder: conv/conv_{i}, then code (AE) or mean and logvar (VAE); decoder: dense, deconv_{i}, out
"""

import math
from collections.abc import Sequence
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.config import parse_activations
from ae_jax.errors import UserError
from ae_jax.models.autoencoder import ACTIVATIONS, LOGVAR_MAX, LOGVAR_MIN, VAE, Autoencoder
from ae_jax.models.conv_cpu import matmul_conv


def image_hwc(num_features: int, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """Checks that rows of `num_features` values are flattened images; returns (H, W, C).

    Args:
      num_features: D, the width of the data's rows.
      image_shape: the data's per-row image shape, (H, W) (grey, C = 1) or (H, W, C); None
        for tabular data.

    Raises:
      UserError: tabular data, an image shape of another rank, or pixels that do not add up
        to D (e.g. `data.keep_label=True` appended the label to the pixels).
    """
    if image_shape is None:
        raise UserError(
            "model.arch='conv' needs image data: rows that are flattened images (data.name="
            "'digits' or 'mnist', an .npy/.npz array of shape (N, H, W) or (N, H, W, C), or "
            "flat rows of pixels with data.image_shape=(H, W) or (H, W, C)); got tabular data "
            f"with {num_features} columns. Use model.arch='mlp' for tables."
        )
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise UserError(
            f"model.arch='conv' needs images of shape (H, W) or (H, W, C); got image shape {shape}."
        )
    hwc = shape if len(shape) == 3 else (*shape, 1)
    if math.prod(hwc) != num_features:
        raise UserError(
            f"model.arch='conv' needs rows that are exactly the image's pixels: image shape "
            f"{shape} has {math.prod(hwc)} values but the rows have {num_features} features "
            "(data.keep_label=True adds the label column to them); use model.arch='mlp' or "
            "data.keep_label=False."
        )
    return cast(tuple[int, int, int], hwc)  # three sizes: checked above


def map_sizes(height: int, width: int, num_layers: int) -> list[tuple[int, int]]:
    """Spatial sizes [(H, W), after layer 0, ..., after layer n-1] of the stride-2 trunk."""
    sizes = [(height, width)]
    for _ in range(num_layers):
        h, w = sizes[-1]
        sizes.append((-(-h // 2), -(-w // 2)))  # SAME padding with stride 2 rounds up.
    return sizes


def _conv(
    features: int,
    kernel: int,
    dtype: jnp.dtype | None,
    name: str,
    *,
    stride: int = 1,
    transpose: bool = False,
    native: bool | None = None,
) -> nn.Conv:
    """A SAME convolution; `transpose=True`: the stride-`stride` transposed convolution.

    The transposed form is `nn.ConvTranspose(features, (k, k), (s, s), padding="SAME")`
    written as what `lax.conv_transpose` computes, a stride-1 convolution of the input dilated
    by s with explicit padding, so `matmul_conv` can run it. Output size: s * input.
    `native`: use XLA's convolution (None: everywhere but on a CPU).
    """
    native = jax.default_backend() != "cpu" if native is None else native
    impl = None if native else matmul_conv
    if not transpose:
        return nn.Conv(
            features,
            (kernel, kernel),
            strides=stride,
            padding="SAME",
            dtype=dtype,
            conv_general_dilated=impl,
            name=name,
        )
    pad_len = kernel + stride - 2  # lax.conv_transpose's SAME padding, in explicit pairs
    before = kernel - 1 if stride > kernel - 1 else -(-pad_len // 2)
    pads = ((before, pad_len - before),) * 2
    return nn.Conv(
        features,
        (kernel, kernel),
        padding=pads,
        input_dilation=stride,
        dtype=dtype,
        conv_general_dilated=impl,
        name=name,
    )


class ConvTrunk(nn.Module):
    """(B, H, W, C) -> (B, H', W', F): stride-2 SAME convolutions, each with its activation."""

    features: Sequence[int]
    activations: Sequence[str]
    kernel: int = 3
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, (feat, act) in enumerate(zip(self.features, self.activations, strict=True)):
            x = ACTIVATIONS[act](_conv(feat, self.kernel, self.dtype, f"conv_{i}", stride=2)(x))
        return x


def _trunk(enc: nn.Module, x: jax.Array) -> tuple[jax.Array, tuple[int, ...]]:
    """x (..., H*W*C) -> ((B, H'*W'*F) trunk features, the leading shape "..."), for the
    encoders' compact methods; any leading shape works, even none (one row under vmap)."""
    img = x.reshape((-1, *enc.image_shape))
    h = ConvTrunk(enc.features, enc.activations, enc.kernel, enc.dtype, name="conv")(img)
    return h.reshape(h.shape[0], -1), x.shape[:-1]


class ConvEncoder(nn.Module):
    """x (..., H*W*C) -> code (..., latent_dim): conv trunk, flatten, Dense code layer.

    Attributes:
      image_shape: (H, W, C) of one row.
      features: channels of each stride-2 convolution, e.g. (32, 64).
      activations: one activation name per convolution.
      latent_dim: code size.
      code_activation: applied to the code layer, as in `models.Encoder`.
      kernel: square kernel size of every convolution.
      dtype: compute dtype (None = float32); parameters stay float32.
    """

    image_shape: tuple[int, int, int]
    features: Sequence[int]
    activations: Sequence[str]
    latent_dim: int
    code_activation: str = "identity"
    kernel: int = 3
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h, lead = _trunk(self, x)
        code = nn.Dense(self.latent_dim, dtype=self.dtype, name="code")(h)
        return ACTIVATIONS[self.code_activation](code).reshape(*lead, self.latent_dim)


class ConvGaussianEncoder(nn.Module):
    """x (..., H*W*C) -> (mean, logvar), each (..., latent_dim), of q(z | x).

    The same trunk as `ConvEncoder`, with linear mean and log-variance heads; the log-variance
    is clamped to [LOGVAR_MIN, LOGVAR_MAX] like `models.GaussianEncoder`, so exp() stays
    finite. Attributes as in `ConvEncoder` (no code activation: the mean is linear).
    """

    image_shape: tuple[int, int, int]
    features: Sequence[int]
    activations: Sequence[str]
    latent_dim: int
    kernel: int = 3
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h, lead = _trunk(self, x)
        mean = nn.Dense(self.latent_dim, dtype=self.dtype, name="mean")(h)
        logvar = nn.Dense(self.latent_dim, dtype=self.dtype, name="logvar")(h)
        logvar = jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)
        return mean.reshape(*lead, self.latent_dim), logvar.reshape(*lead, self.latent_dim)


class ConvDecoder(nn.Module):
    """z (..., latent_dim) -> pre-activation output (..., H*W*C), i.e. logits.

    Dense to the encoder's smallest map (H_n, W_n, features[-1]), then one stride-2
    transposed convolution per encoder layer with channels reversed(features), each cropped
    to the matching encoder map, then a stride-1 convolution to C channels. As in
    `models.Decoder`, the output activation is left to the model (exact BCE from logits).

    Attributes:
      image_shape: (H, W, C) of one output row.
      features: the ENCODER's channels, e.g. (32, 64); the decoder runs them backwards.
      activations: one name per transposed convolution (in decoder order); the Dense layer
        shares the first one's, since it only reshapes its output into that layer's input.
      kernel: square kernel size of every (transposed) convolution.
      dtype: compute dtype (None = float32); parameters stay float32.
    """

    image_shape: tuple[int, int, int]
    features: Sequence[int]
    activations: Sequence[str]
    kernel: int = 3
    dtype: jnp.dtype | None = None

    @property
    def out_dim(self) -> int:
        return math.prod(self.image_shape)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, channels = self.image_shape
        sizes = map_sizes(height, width, len(self.features))
        lead = z.shape[:-1]
        z = z.reshape(-1, z.shape[-1])
        (h_n, w_n), f_n = sizes[-1], self.features[-1]
        h = nn.Dense(h_n * w_n * f_n, dtype=self.dtype, name="dense")(z)
        h = ACTIVATIONS[self.activations[0]](h).reshape(-1, h_n, w_n, f_n)
        layers = zip(reversed(self.features), self.activations, reversed(sizes[:-1]), strict=True)
        for i, (feat, act, (th, tw)) in enumerate(layers):
            deconv = _conv(feat, self.kernel, self.dtype, f"deconv_{i}", stride=2, transpose=True)
            # Doubling overshoots odd encoder sizes (7 -> 4 -> 8): crop back so each map
            # matches its encoder counterpart and the output is exactly (H, W).
            h = ACTIVATIONS[act](deconv(h))[:, :th, :tw, :]
        logits = _conv(channels, self.kernel, self.dtype, "out")(h)
        return logits.reshape(*lead, height * width * channels)


def build_conv_model(
    model_cfg, num_features: int, image_shape: Sequence[int] | None, dtype: jnp.dtype | None = None
) -> Autoencoder | VAE:
    """The `model.arch = "conv"` branch of `models.build_model` (see there).

    Args:
      model_cfg: the config's `model` section: name, latent_dim, conv_features, conv_kernel,
        (decoder_)activation (one name, or one per conv layer), code and output activations.
      num_features: D, the width of the flat rows; must equal H * W * C.
      image_shape: (H, W) or (H, W, C) of the data's images; None for tabular data.
      dtype: compute dtype (None = float32).
    """
    hwc = image_hwc(num_features, image_shape)
    features = tuple(int(f) for f in model_cfg.conv_features)
    enc_acts = parse_activations(model_cfg.activation, len(features), "model.activation")
    dec_field = "model.decoder_activation" if model_cfg.decoder_activation else "model.activation"
    dec_acts = parse_activations(
        model_cfg.decoder_activation or model_cfg.activation, len(features), dec_field
    )
    kernel = int(model_cfg.conv_kernel)
    decoder = ConvDecoder(hwc, features, dec_acts, kernel=kernel, dtype=dtype)
    if model_cfg.name == "vae":
        encoder: nn.Module = ConvGaussianEncoder(
            hwc, features, enc_acts, model_cfg.latent_dim, kernel=kernel, dtype=dtype
        )
        return VAE(encoder, decoder, model_cfg.output_activation)
    encoder = ConvEncoder(
        hwc,
        features,
        enc_acts,
        model_cfg.latent_dim,
        model_cfg.code_activation,
        kernel=kernel,
        dtype=dtype,
    )
    return Autoencoder(encoder, decoder, model_cfg.output_activation)
