"""Writes an RGBA pixel array as a PNG file: every row unfiltered, deflated at level 2 by
zlib-ng (`zlib_ng`).

matplotlib's savefig hands its pixels to Pillow, whose PNG encoder tries every row filter on
every row to choose one: that choice, not the compression, took a quarter of a figure's time
(20 ms of a 1920 x 450 learning-curve figure, at any zlib level). A rendered figure is mostly
runs of identical pixels, which deflate compresses well without a filter. Decoders read both
alike (PNG spec, filter type 0).

zlib-ng writes the same format as zlib, faster and smaller (a 1920 x 450 learning-curve figure:
1.8 ms and 77 KB against zlib's 5.6 ms and 94 KB at level 1). ISA-L (`isal`), faster still
(0.7 ms, 89 KB), was used before: its level-1 output is not always the same for the same pixels
(a CI run of the suite wrote one of a figure's 124,306 deflated bytes differently in two
processes; both decoded to the same pixels), and a rerun must write the same file.
"""

import struct
import zlib

import numpy as np
from zlib_ng import zlib_ng

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_METRE = 0.0254  # inches


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode(rgba, dpi: float, text: dict[str, str] | None = None) -> bytes:
    """The PNG file of `rgba` ((H, W, 4) uint8, or a list of such arrays of one height: the
    image of them side by side, left to right), its physical size `dpi` dots per inch, with
    Latin-1 `text` chunks (key -> value, as matplotlib writes its "Software" key)."""
    panels = [np.asarray(p) for p in (rgba if isinstance(rgba, list | tuple) else [rgba])]
    for p in panels:
        if p.ndim != 3 or p.shape[2] != 4 or p.dtype != np.uint8 or 0 in p.shape:
            raise ValueError(f"expected a non-empty (H, W, 4) uint8 array, got {p.shape} {p.dtype}")
    if not panels or len({p.shape[0] for p in panels}) != 1:
        raise ValueError(
            f"expected images of one height, got heights {[p.shape[0] for p in panels]}"
        )
    if not (np.isfinite(dpi) and 0 < dpi < 1e6):
        raise ValueError(f"dpi must be a positive number of dots per inch, got {dpi!r}")
    for key, value in (text or {}).items():  # tEXt: a 1-79 byte Latin-1 key, no NUL
        if not (1 <= len(key) <= 79 and "\0" not in key + value and _latin1(key + value)):
            raise ValueError(
                f"a PNG text chunk needs a 1-79 character key and a value, both Latin-1 "
                f"without NUL: {key!r}"
            )
    h, w = panels[0].shape[0], sum(p.shape[1] for p in panels)
    rows = np.empty((h, 1 + 4 * w), np.uint8)  # each row: filter type 0 (none), its pixels
    rows[:, 0] = 0
    x = 1
    for p in panels:
        rows[:, x : x + 4 * p.shape[1]] = p.reshape(h, -1)
        x += 4 * p.shape[1]
    per_metre = round(dpi / _METRE)
    parts = [
        _SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)),  # 8-bit RGBA
        *(
            _chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1"))
            for k, v in (text or {}).items()
        ),
        _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),  # unit: metre
        _chunk(b"IDAT", zlib_ng.compress(rows.data, 2)),
        _chunk(b"IEND", b""),
    ]
    return b"".join(parts)


def write(path: str, rgba, dpi: float, text: dict[str, str] | None = None) -> None:
    """Writes `encode(rgba, dpi, text)` to `path`."""
    data = encode(rgba, dpi, text)
    with open(path, "wb") as f:
        f.write(data)
