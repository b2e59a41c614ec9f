"""Metric writers over tensorboardX, and a reader for the scalars they write.

Our own small interface instead of clu's writers, which need TensorFlow: training code writes
through one object, and tests read back what was written with `read_scalars`.
"""

import io
import os
import struct
from collections import defaultdict

import matplotlib.image
import numpy as np
from tensorboardX import SummaryWriter
from tensorboardX.proto import event_pb2, types_pb2
from tensorboardX.record_writer import masked_crc32c
from tensorboardX.summary import hparams as hparams_summaries

HParam = float | int | str | bool


class MetricWriter:
    """Writes to DIR/tb/ (TensorBoard event files through tensorboardX.SummaryWriter)."""

    def __init__(self, logdir: str):
        """Creates `logdir` (e.g. workdir + "/tb") and one event file in it."""
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        self._writer = SummaryWriter(logdir=logdir)
        self._last_step = 0
        self._last: dict[str, tuple[int, float]] = {}  # tag -> (step, value) last written

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Writes every key as a scalar tag, names kept as-is ("train/loss", "eval/mse")."""
        step = int(step)
        for tag, value in scalars.items():
            value = float(value)  # jax/numpy scalars too
            self._writer.add_scalar(tag, value, step)
            self._last[tag] = (step, value)
        self._last_step = max(self._last_step, step)

    def write_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """Writes HxWxC (C in 1, 3, 4) or HxW images, uint8 or float in [0, 1]."""
        for tag, image in images.items():
            image = np.asarray(image)
            if np.issubdtype(image.dtype, np.floating):
                # tensorboardX casts float*255 to uint8 unclipped: 1.0001 would wrap to black.
                image = np.round(np.clip(image, 0.0, 1.0) * 255.0)
            image = np.clip(image, 0, 255).astype(np.uint8)
            dataformats = "HWC" if image.ndim == 3 else "HW"
            self._writer.add_image(tag, image, int(step), dataformats=dataformats)

    def write_figure(self, step: int, tag: str, path_or_fig) -> None:
        """Writes a PNG file (path) or a matplotlib Figure as an image; the figure stays open."""
        if isinstance(path_or_fig, str | os.PathLike):
            image = matplotlib.image.imread(os.fspath(path_or_fig))
        else:
            # Through PNG bytes rather than fig.canvas: works under any backend, and unlike
            # tensorboardX's add_figure it neither swaps the canvas nor closes the figure.
            buf = io.BytesIO()
            path_or_fig.savefig(buf, format="png")
            buf.seek(0)
            image = matplotlib.image.imread(buf, format="png")
        self.write_images(step, {tag: image})

    def write_text(self, tag: str, text: str) -> None:
        """Writes markdown text (e.g. the config JSON as a code block) at step 0."""
        self._writer.add_text(tag, text, 0)

    def write_hparams(self, hparams: dict[str, HParam], metrics: dict[str, float]) -> None:
        """Writes flattened config values ("optim.learning_rate") and final metrics.

        The hparams dashboard shows a metric's last value from this run's scalar of the same tag,
        so each metric is also written as a scalar at the last step seen, unless that exact point
        was already written (e.g. "eval/mse" at the final epoch).
        """
        hp = {k: _hparam_value(v) for k, v in hparams.items()}
        mt = {k: float(v) for k, v in metrics.items()}
        # Not SummaryWriter.add_hparams(name="."): it opens a second writer on the same
        # directory whose file name (seconds + hostname) can equal ours, and its "wb" open
        # truncates our event file. Writing the three summaries ourselves keeps one file.
        file_writer = self._writer._get_file_writer()
        for summary in hparams_summaries(hp, mt):
            file_writer.add_summary(summary, self._last_step)
        new = {k: v for k, v in mt.items()
               if self._last.get(k) != (self._last_step, float(np.float32(v)))}
        self.write_scalars(self._last_step, new)

    def flush(self) -> None:
        """Pushes pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()

    def __enter__(self) -> "MetricWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class NullWriter:
    """Same interface as MetricWriter, does nothing (for runs that disable TensorBoard)."""

    def __init__(self, logdir: str | None = None):
        self.logdir = logdir

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None: ...
    def write_images(self, step: int, images: dict[str, np.ndarray]) -> None: ...
    def write_figure(self, step: int, tag: str, path_or_fig) -> None: ...
    def write_text(self, tag: str, text: str) -> None: ...
    def write_hparams(self, hparams: dict[str, HParam], metrics: dict[str, float]) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

    def __enter__(self) -> "NullWriter":
        return self

    def __exit__(self, *exc_info) -> None: ...


def _hparam_value(value) -> HParam:
    """Keeps bool/int/float/str; numpy scalars become Python ones, anything else str."""
    if isinstance(value, np.generic):
        value = value.item()
    # tensorboardX drops None and writes lists/tuples without a value: keep them visible.
    return value if isinstance(value, bool | int | float | str) else str(value)


def read_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """Reads every scalar back from the event files under logdir.

    Returns:
        tag -> [(step, value), ...] sorted by step (stable: equal steps keep file order).

    One run: the event files directly in `logdir`, as TensorBoard reads a run directory. Uses
    tensorboard's EventAccumulator when `tensorboard` is installed, else our own record parser.
    """
    if not os.path.isdir(logdir):
        return {}
    try:
        from tensorboard.backend.event_processing import event_accumulator  # noqa: F401
    except ImportError:
        return _read_event_files(logdir)
    return _read_with_tensorboard(logdir)


def _read_with_tensorboard(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """Scalars via tensorboard's EventAccumulator (simple_value and scalar-plugin tensors)."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(logdir, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0},
                              purge_orphaned_data=False)
    acc.Reload()
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for tag in acc.Tags()[ea.SCALARS]:
        out[tag] += [(e.step, float(e.value)) for e in acc.Scalars(tag)]
    for tag in acc.Tags()[ea.TENSORS]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            out[tag] += [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                         for e in acc.Tensors(tag)]
    return {tag: sorted(points, key=lambda p: p[0]) for tag, points in out.items()}


_TENSOR_DTYPES = {types_pb2.DT_FLOAT: "<f4", types_pb2.DT_DOUBLE: "<f8",
                  types_pb2.DT_INT32: "<i4", types_pb2.DT_INT64: "<i8"}


def _read_event_files(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """Scalars by parsing the TFRecord framing and `Event` protos ourselves, CRCs checked."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    plugins: dict[str, str] = {}  # tag -> plugin name; TF writes metadata on first use only
    for name in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, name)
        if "tfevents" not in name or name.endswith(".profile-empty") or not os.path.isfile(path):
            continue
        for event in _events(path):
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name:
                    plugins[v.tag] = v.metadata.plugin_data.plugin_name
                if v.WhichOneof("value") == "simple_value":
                    out[v.tag].append((event.step, float(v.simple_value)))
                elif v.HasField("tensor") and plugins.get(v.tag) == "scalars":
                    out[v.tag].append((event.step, _tensor_scalar(v.tensor)))
    return {tag: sorted(points, key=lambda p: p[0]) for tag, points in out.items()}


def _events(path: str):
    """Yields the Events of one file: [u64 len][u32 masked crc(len)][data][u32 masked crc(data)]."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        length, header_crc = struct.unpack("<QI", data[pos:pos + 12])
        if header_crc != masked_crc32c(data[pos:pos + 8]):
            raise ValueError(f"{path}: corrupt record length at byte {pos}")
        end = pos + 12 + length + 4
        if end > len(data):
            break  # a record still being written: stop where a live reader would
        body = data[pos + 12:end - 4]
        if struct.unpack("<I", data[end - 4:end])[0] != masked_crc32c(body):
            raise ValueError(f"{path}: corrupt record data at byte {pos}")
        yield event_pb2.Event.FromString(body)
        pos = end


def _tensor_scalar(tensor) -> float:
    """The single value of a scalar TensorProto: packed bytes or a typed repeated field."""
    if tensor.tensor_content:
        return float(np.frombuffer(tensor.tensor_content, _TENSOR_DTYPES[tensor.dtype])[0])
    for field in ("float_val", "double_val", "int_val", "int64_val"):
        if len(getattr(tensor, field)):
            return float(getattr(tensor, field)[0])
    raise ValueError(f"scalar tensor without a value: {tensor}")
