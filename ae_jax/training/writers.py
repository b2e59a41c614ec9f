"""TensorBoard event files: a metric writer (summaries built by tensorboardX; clu's need
TensorFlow) and a reader of their scalars; `MultiWriter`, the same interface over several
writers (TensorBoard's and the trackers', `trackers.open_writers`).

The records themselves (`_EventFile`, `_events`) are ours: tensorboardX checksums them in pure
Python unless the LGPL `crc32c` package is installed (3.4 s of a 64-run sweep's main process,
for the figures' PNGs in its event files); google-crc32c does it in C.
"""

import contextlib
import io
import itertools
import os
import re
import socket
import struct
import time
from collections import defaultdict

import google_crc32c
import numpy as np
from tensorboardX import summary as tbx_summary
from tensorboardX.proto import event_pb2, types_pb2
from tensorboardX.proto.api_pb2 import Status
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
from tensorboardX.proto.summary_pb2 import Summary

HParam = float | int | str | bool
Scalars = dict[str, list[tuple[int, float]]]
_FILE_IDS = itertools.count()
_PREFIX = "events.out.tfevents."


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum of `data`: CRC-32C, rotated right by 15 bits, plus a constant."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord: [u64 length][u32 masked crc(length)][data][u32 masked crc(data)]."""
    head = struct.pack("<Q", len(data))
    return (
        head
        + struct.pack("<I", masked_crc32c(head))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


class _EventFile:
    """An event file, named as TensorBoard's writers name theirs
    (events.out.tfevents.<seconds>.<host><suffix>), starting with the file-version event."""

    def __init__(self, logdir: str, suffix: str):
        name = f"{_PREFIX}{int(time.time())}.{socket.gethostname()}{suffix}"
        self.path = os.path.join(logdir, name)
        self._f = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, event) -> None:
        self._f.write(record(event.SerializeToString()))

    def flush(self) -> None:
        """On disk, as TensorBoard's writers flush (fsync)."""
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self.flush()
        self._f.close()


def not_per_epoch(metrics: dict) -> dict:
    """The metrics of `metrics` that are not written every epoch (train/*, eval/*)."""
    return {k: v for k, v in metrics.items() if not k.startswith(("train/", "eval/"))}


class MetricWriter:
    """Writes to DIR/tb/ (TensorBoard event files; records and summaries built by tensorboardX).

    Not tensorboardX.SummaryWriter: its flush() leaves events queued for a thread (only close()
    drains them), and add_hparams(name=".") opens a same-named file that truncates ours.
    """

    def __init__(
        self, logdir: str, purge_step: int | None = None, step: int = 0, name: str | None = None
    ):
        """Creates `logdir` (e.g. workdir + "/tb") and a new event file in it.

        Args:
          logdir: the run's TensorBoard directory.
          purge_step: for a resumed run, the first step it will write again. TensorBoard (and
            `read_scalars`) then drop what earlier files wrote at or after it, the points of
            the epochs a killed run did past its last checkpoint.
          step: the step the run is at (a resumed run's), where `write_hparams` writes until
            a later one is written.
          name: letters, digits, '-' and '_', ending the file's name: once this writer is
            closed, the event files of that name there when it opened are removed, so its
            events replace theirs (an evaluation run again shows its figures once, not once
            per call). A writer left by an exception keeps them. (Those of writers opened
            since stay: of two evaluations at once, each removed the other's, leaving none.)
        """
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        if name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"MetricWriter name {name!r}: letters, digits, '-' and '_' only")
        # pid and counter in the name: two writers in one second must not share a file.
        suffix = f".{os.getpid()}.{next(_FILE_IDS)}"
        self._name = name
        self._file = _EventFile(logdir, suffix if name is None else f"{suffix}.{name}")
        mine = os.path.basename(self._file.path)
        self._earlier = [  # what this writer's file replaces once it is closed
            f
            for f in (os.listdir(logdir) if name is not None else ())
            if f != mine and f.startswith(_PREFIX) and f.endswith(f".{name}")
        ]
        self._closed = False
        self._last_step = int(step)
        self._last: dict[str, tuple[int, float]] = {}  # tag -> (step, value) last written
        if purge_step is not None:
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._file.write(
                event_pb2.Event(wall_time=time.time(), step=int(purge_step), session_log=start)
            )

    def _write(self, step: int, summary: Summary) -> None:
        event = event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        self._file.write(event)

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Writes every key as a scalar tag, names kept as-is ("train/loss", "eval/mse")."""
        if not scalars:
            return
        values = [Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()]
        self._write(step, Summary(value=values))
        # As stored (float32), so write_hparams can tell a repeated point.
        step = int(step)
        self._last.update({v.tag: (step, v.simple_value) for v in values})
        self._last_step = max(self._last_step, step)

    def write_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """Writes HxWxC (C in 1, 3, 4) or HxW images, uint8 or float in [0, 1]."""
        for tag, image in images.items():
            image = np.asarray(image)
            scale = 255.0 if np.issubdtype(image.dtype, np.floating) else 1
            # Clipped here: tensorboardX casts float*255 to uint8 unclipped (1.001 wraps to 0).
            image = np.clip(np.round(image * scale), 0, 255).astype(np.uint8)
            self._write(step, tbx_summary.image(tag, image, dataformats="HWC"[: image.ndim]))

    def write_figure(self, step: int, tag: str, path_or_fig) -> None:
        """Writes a PNG file (path) or a matplotlib Figure as an image; the figure stays open.

        A PNG goes in as its own bytes (TensorBoard stores images PNG-encoded): no decoding,
        no re-encoding, and no matplotlib import.
        """
        if isinstance(path_or_fig, str | os.PathLike):
            with open(os.fspath(path_or_fig), "rb") as f:
                png = f.read()
        else:
            # Through PNG bytes rather than fig.canvas: works under any backend, and unlike
            # tensorboardX's add_figure it neither swaps the canvas nor closes the figure.
            buf = io.BytesIO()
            path_or_fig.savefig(buf, format="png")
            png = buf.getvalue()
        if png[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError(f"{tag}: not a PNG image")
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(png[25], 3)  # colour type -> channels
        image = Summary.Image(
            height=height, width=width, colorspace=channels, encoded_image_string=png
        )
        self._write(step, Summary(value=[Summary.Value(tag=tag, image=image)]))

    def write_text(self, tag: str, text: str) -> None:
        """Writes markdown text (e.g. the config JSON as a code block) at step 0."""
        self._write(0, tbx_summary.text(tag, text))

    def write_hparams(
        self, hparams: dict[str, HParam], metrics: dict[str, float], failed: bool = False
    ) -> None:
        """Writes flattened config values ("optim.learning_rate") and final metrics, this run;
        `failed` (a diverged run): its session ends STATUS_FAILURE, not tensorboardX's SUCCESS.

        The hparams dashboard shows a metric's last value from this run's scalar of the same tag,
        so each metric is also written as a scalar at the last step seen, unless it is a
        per-epoch one (train/*, eval/*: written each epoch, by this process or, for a resumed run
        that trains no further, an earlier one) or that exact point was already written.
        """
        hp = {k: v.item() if isinstance(v, np.generic) else v for k, v in hparams.items()}
        # tensorboardX drops None and writes lists/tuples without a value: keep them visible.
        hp = {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in hp.items()}
        *start, end = tbx_summary.hparams(hp, metrics)
        if failed:  # (a probe: a diverged run showed as a success in the hparams dashboard)
            data = HParamsPluginData.FromString(end.value[0].metadata.plugin_data.content)
            data.session_end_info.status = Status.Value("STATUS_FAILURE")
            end.value[0].metadata.plugin_data.content = data.SerializeToString()
        for summary in (*start, end):
            self._write(self._last_step, summary)
        with np.errstate(over="ignore"):  # a diverged run's huge values become inf, as stored
            new = {
                k: float(v)
                for k, v in not_per_epoch(metrics).items()
                if self._last.get(k) != (self._last_step, float(np.float32(v)))
            }
        self.write_scalars(self._last_step, new)

    def flush(self) -> None:
        """Puts everything written so far on disk."""
        if not self._closed:
            self._file.flush()

    def close(self, stopped: bool = False, failed: bool = False) -> None:
        """Flushes and closes the event file; closing twice is fine. A named writer then
        removes the files of its name there when it opened (after: a kill before leaves
        both, never none). `stopped` (a stop request ended the run) and `failed` (an error
        did), the trackers' interface, change nothing."""
        if not self._closed:
            self._file.close()
            self._closed = True
            if self._name is not None:
                for f in self._earlier:
                    with contextlib.suppress(FileNotFoundError):  # another's, just now
                        os.remove(os.path.join(self.logdir, f))

    def __enter__(self) -> "MetricWriter":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is not None:  # what it wrote may be partial: the earlier files stay
            self._name = None
        self.close()


class NullWriter:
    """Same interface as MetricWriter, does nothing (for runs that disable TensorBoard)."""

    def __init__(self, logdir: str | None = None, purge_step: int | None = None):
        self.logdir = logdir

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None: ...
    def write_images(self, step: int, images: dict[str, np.ndarray]) -> None: ...
    def write_figure(self, step: int, tag: str, path_or_fig) -> None: ...
    def write_text(self, tag: str, text: str) -> None: ...
    def write_hparams(
        self, hparams: dict[str, HParam], metrics: dict[str, float], failed: bool = False
    ) -> None: ...
    def flush(self) -> None: ...
    def close(self, stopped: bool = False, failed: bool = False) -> None: ...

    def __enter__(self) -> "NullWriter":
        return self

    def __exit__(self, *exc_info) -> None: ...


class MultiWriter:
    """The metric-writer interface over several writers (each call goes to all of them)."""

    def __init__(self, parts: list, hparams: dict):
        self.parts = parts
        self.hparams = hparams

    def write_scalars(self, step, scalars):
        for p in self.parts:
            p.write_scalars(step, scalars)

    def write_images(self, step, images):
        for p in self.parts:
            p.write_images(step, images)

    def write_figure(self, step, tag, path_or_fig):
        for p in self.parts:
            p.write_figure(step, tag, path_or_fig)

    def write_text(self, tag, text):
        for p in self.parts:
            p.write_text(tag, text)

    def write_hparams(self, hparams, metrics, failed: bool = False):
        """hparams: None = the start's (`hparams.group_hparams`); failed: the run diverged."""
        for p in self.parts:
            p.write_hparams(self.hparams if hparams is None else hparams, metrics, failed)

    def flush(self):
        for p in self.parts:
            p.flush()

    def close(self, stopped: bool = False, failed: bool = False):
        """`stopped`: a stop request ends the process; `failed`: an error ended the run (a
        tracker that has a state for them says so). Closing twice is fine; every part is
        closed whatever another raises (an MLflow server gone left TensorBoard's file open)."""
        with contextlib.ExitStack() as parts:
            for p in self.parts:
                parts.callback(p.close, stopped, failed)


def read_scalars(logdir: str) -> Scalars:
    """Reads every scalar back from the event files under logdir.

    One run: the event files directly in `logdir`, as TensorBoard reads a run directory. Uses
    tensorboard's EventAccumulator when `tensorboard` is installed, else our own record parser.

    Returns:
        tag -> [(step, value), ...] sorted by step (stable: equal steps keep file order).
    """
    if not os.path.isdir(logdir):
        return {}
    try:
        from tensorboard.backend.event_processing import event_accumulator  # noqa: F401
    except ImportError:  # tensorboard is optional: our own parser reads the same records
        return _read_event_files(logdir)
    return _read_with_tensorboard(logdir)


def _read_with_tensorboard(logdir: str) -> Scalars:
    """Scalars via tensorboard's EventAccumulator (simple_value and scalar-plugin tensors)."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(logdir, {ea.SCALARS: 0, ea.TENSORS: 0}, purge_orphaned_data=True)
    acc.Reload()
    out: Scalars = defaultdict(list)
    for tag in acc.Tags()[ea.SCALARS]:
        out[tag] += [(e.step, float(e.value)) for e in acc.Scalars(tag)]
    for tag in acc.Tags()[ea.TENSORS]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            out[tag] += [
                (e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)
            ]
    return {tag: sorted(points, key=lambda p: p[0]) for tag, points in out.items()}


def _read_event_files(logdir: str) -> Scalars:
    """Scalars by parsing the TFRecord framing and `Event` protos ourselves, CRCs checked."""
    out: Scalars = defaultdict(list)
    plugins: dict[str, str] = {}  # tag -> plugin name; TF writes metadata on first use only
    for name in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, name)
        events = _events(path) if "tfevents" in name and os.path.isfile(path) else []
        for event in events:
            if event.session_log.status == event_pb2.SessionLog.START:
                # A restart: forget what was written at or after its step (TensorBoard's rule).
                out = defaultdict(
                    list, {t: [p for p in pts if p[0] < event.step] for t, pts in out.items()}
                )
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
        length, length_crc = struct.unpack("<QI", data[pos : pos + 12])
        if length_crc != masked_crc32c(data[pos : pos + 8]):
            raise ValueError(f"{path}: corrupt record length at byte {pos}")
        end = pos + 12 + length + 4
        if end > len(data):
            break  # a record still being written: stop where a live reader would
        body = data[pos + 12 : end - 4]
        if struct.unpack("<I", data[end - 4 : end])[0] != masked_crc32c(body):
            raise ValueError(f"{path}: corrupt record data at byte {pos}")
        yield event_pb2.Event.FromString(body)
        pos = end


_DTYPES = {
    types_pb2.DT_FLOAT: "<f4",
    types_pb2.DT_DOUBLE: "<f8",
    types_pb2.DT_INT32: "<i4",
    types_pb2.DT_INT64: "<i8",
}


def _tensor_scalar(t) -> float:
    """The single value of a scalar TensorProto: packed bytes or a typed repeated field."""
    if t.tensor_content:
        return float(np.frombuffer(t.tensor_content, _DTYPES[t.dtype])[0])
    return float([*t.float_val, *t.double_val, *t.int_val, *t.int64_val][0])
