"""The CPU convolution workaround: `lax.conv_general_dilated` as patches @ kernel.

XLA:CPU ran its own convolutions 6-80x slower inside a loop body (jax-ml/jax#12868), and a
training epoch is one `lax.scan`, so on a CPU `models.conv` passes `matmul_conv` to Flax's
`nn.Conv` (its `conv_general_dilated` hook). Other backends use native convolutions: the same
function of the same parameters. Isolated here so it can be dropped once XLA:CPU is fixed.
"""

from collections.abc import Sequence
from typing import cast

import jax
import jax.numpy as jnp
from jax import lax


def matmul_conv(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
) -> jax.Array:
    """`lax.conv_general_dilated` for 2-D channels-last data, as patches @ kernel.

    Takes what `nn.Conv` passes to its `conv_general_dilated` hook: lhs (B, H, W, C), rhs
    (kh, kw, C, F) (Flax's NHWC / HWIO layout, so `dimension_numbers` is not needed),
    strides, padding ("SAME", "VALID" or explicit pairs) and an input dilation (zeros
    between input pixels: a transposed convolution). Returns (B, H', W', F).
    """
    del dimension_numbers  # Flax's default channels-last layout, checked below.
    if lhs.ndim != 4 or feature_group_count != 1 or any(d != 1 for d in rhs_dilation or ()):
        raise ValueError("matmul_conv handles 2-D NHWC convolutions, no groups or dilation")
    kh, kw, cin, cout = rhs.shape
    dilation = cast(tuple[int, int], tuple(lhs_dilation or (1, 1)))  # 2-D: a pair
    if isinstance(padding, str):
        dilated = [(n - 1) * d + 1 for n, d in zip(lhs.shape[1:3], dilation, strict=True)]
        padding = lax.padtype_to_pads(dilated, (kh, kw), window_strides, padding)
    if dilation != (1, 1) and tuple(window_strides) == (1, 1):
        return _phase_conv(lhs, rhs, dilation, padding, precision)
    zero = jnp.zeros((), lhs.dtype)
    (dh, dw), (sh, sw), ((top, bottom), (left, right)) = dilation, window_strides, padding
    x = lax.pad(lhs, zero, [(0, 0, 0), (top, bottom, dh - 1), (left, right, dw - 1), (0, 0, 0)])
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    if oh <= 0 or ow <= 0:  # A kernel larger than the padded input: an empty output.
        return jnp.zeros((x.shape[0], max(oh, 0), max(ow, 0), cout), jnp.result_type(x, rhs))
    # Tap (i, j) of every output pixel; concatenated i-major, then j, then channel, which is
    # the row order of the HWIO kernel reshaped to (kh * kw * C, F).
    taps = [
        x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = jnp.concatenate(taps, axis=-1)
    return jnp.dot(patches, rhs.reshape(kh * kw * cin, cout), precision=precision)


def _phases(n: int, d: int, k: int, pads: tuple[int, int]) -> tuple[int, list]:
    """One axis of a stride-1 conv over input dilated by d: output length, and per output
    phase r (outputs r, r + d, ...) its count and [(tap, input offset)] of the taps that
    land on real (not inserted) inputs: out[d*m + r] = sum x[m + offset] * K[tap]."""
    length = (n - 1) * d + 1 + pads[0] + pads[1] - k + 1
    phases = []
    for r in range(d):
        taps = [(i, (r + i - pads[0]) // d) for i in range(k) if (r + i - pads[0]) % d == 0]
        phases.append((len(range(r, length, d)), taps))
    return length, phases


def _phase_conv(
    x: jax.Array,
    rhs: jax.Array,
    dilation: tuple[int, int],
    padding: Sequence[tuple[int, int]],
    precision,
) -> jax.Array:
    """A convolution of the input dilated by (dh, dw), computed without the inserted zeros.

    Each output phase (r_h, r_w) sees only the kernel taps that land on real pixels, so a
    stride-2 transposed convolution costs a quarter of the zero-dilated one.
    """
    (n_h, n_w), (k_h, k_w, _, cout) = x.shape[1:3], rhs.shape
    len_h, ph = _phases(n_h, dilation[0], k_h, padding[0])
    len_w, pw = _phases(n_w, dilation[1], k_w, padding[1])
    m_h, m_w = -(-len_h // dilation[0]), -(-len_w // dilation[1])

    def bounds(phases, n):  # zero padding so every offset of every phase is a valid index
        offs = [o for _, taps in phases for _, o in taps] or [0]
        return max(0, -min(offs)), max(0, max(offs) + max(c for c, _ in phases) - n)

    (lo_h, hi_h), (lo_w, hi_w) = bounds(ph, n_h), bounds(pw, n_w)
    xp = jnp.pad(x, [(0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)])
    rows = []
    for count_h, taps_h in ph:
        cols = []
        for count_w, taps_w in pw:
            pairs = [(i, oi, j, oj) for i, oi in taps_h for j, oj in taps_w]
            if pairs:
                patches = jnp.concatenate(
                    [
                        xp[:, lo_h + oi : lo_h + oi + count_h, lo_w + oj : lo_w + oj + count_w, :]
                        for _, oi, _, oj in pairs
                    ],
                    axis=-1,
                )
                kernel = jnp.concatenate([rhs[i, j] for i, _, j, _ in pairs], axis=0)
                y = jnp.dot(patches, kernel, precision=precision)
            else:  # A kernel smaller than the dilation: this phase sees only zeros.
                y = jnp.zeros((x.shape[0], count_h, count_w, cout), jnp.result_type(x, rhs))
            cols.append(jnp.pad(y, [(0, 0), (0, m_h - count_h), (0, m_w - count_w), (0, 0)]))
        rows.append(jnp.stack(cols, axis=3))  # (B, m_h, m_w, dw, F)
    out = jnp.stack(rows, axis=2)  # (B, m_h, dh, m_w, dw, F): output row d*m + r at [m, r]
    out = out.reshape(x.shape[0], m_h * dilation[0], m_w * dilation[1], cout)
    return out[:, :len_h, :len_w, :]
