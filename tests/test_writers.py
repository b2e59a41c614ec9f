"""MetricWriter round trips through real event files, read by our parser and by tensorboard."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from tensorboardX import FileWriter  # noqa: E402
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata  # noqa: E402
from tensorboardX.proto.tensor_pb2 import TensorProto  # noqa: E402

from ae_jax.training import writers  # noqa: E402
from ae_jax.training.writers import MetricWriter, NullWriter, read_scalars  # noqa: E402

TAGS = ("train/loss", "eval/mse", "eval/kl")


def _expected(steps) -> dict[str, list[tuple[int, float]]]:
    """What the writer should store: each value rounded to float32, as `simple_value` is."""
    return {t: [(s, float(np.float32(_value(i, s)))) for s in steps] for i, t in enumerate(TAGS)}


def _value(i: int, step: int) -> float:
    return 1.0 / (step + 1) + 0.1 * i  # not float32-exact, so the rounding is exercised


def _write_curves(writer, steps) -> None:
    for s in steps:
        writer.write_scalars(s, {t: _value(i, s) for i, t in enumerate(TAGS)})


def _write_everything_else(writer, tmp_path) -> None:
    """Images (all accepted layouts), figures (object and PNG), text and hparams."""
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    png = str(tmp_path / "curve.png")
    fig.savefig(png)
    writer.write_images(
        3,
        {
            "img/uint8": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
            "img/float": rng.uniform(-0.1, 1.1, (8, 8, 3)),  # out of range: clipped, not wrapped
            "img/gray": rng.uniform(0, 1, (8, 8)),
            "img/one_channel": rng.uniform(0, 1, (8, 8, 1)).astype(np.float32),
        },
    )
    writer.write_figure(3, "fig/object", fig)
    writer.write_figure(3, "fig/png", png)
    plt.close(fig)
    writer.write_text("config", '```json\n{"optim": {"learning_rate": 0.001}}\n```')
    writer.write_hparams(
        {
            "optim.learning_rate": 1e-3,
            "model.hidden": (64, 32),
            "model.kind": "vae",
            "data.seed": np.int64(3),
            "train.jit": True,
            "data.limit": None,
        },
        {"eval/mse": float(np.float32(_value(1, 4))), "hparam/test_mse": 0.25},
    )


def test_scalars_round_trip_through_our_parser(tmp_path):
    logdir = str(tmp_path / "tb")
    with MetricWriter(logdir) as w:
        _write_curves(w, [2, 0, 1, 3, 4])  # out of order on purpose: read back sorted
    assert writers._read_event_files(logdir) == _expected(range(5))
    assert read_scalars(logdir) == _expected(range(5))


def test_a_named_writer_replaces_its_earlier_files_only(tmp_path):
    logdir = str(tmp_path / "tb")
    with MetricWriter(logdir) as w:  # a run's own file: never replaced
        w.write_scalars(0, {"train/loss": 1.0})
    for value in (2.0, 3.0):  # the same evaluation twice: its second file replaces the first
        with MetricWriter(logdir, name="evaluate-a") as w:
            w.write_scalars(5, {"evaluate/x": value})
    with MetricWriter(logdir, name="evaluate-b") as w:  # another name: kept beside it
        w.write_scalars(5, {"evaluate/y": 4.0})
    assert len(os.listdir(logdir)) == 3
    assert read_scalars(logdir) == {
        "train/loss": [(0, 1.0)],
        "evaluate/x": [(5, 3.0)],
        "evaluate/y": [(5, 4.0)],
    }
    w = MetricWriter(logdir, name="evaluate-a")  # open, not closed (killed): both kept
    w.write_scalars(5, {"evaluate/x": 5.0})
    w.flush()
    assert len(os.listdir(logdir)) == 4
    w.close()
    assert read_scalars(logdir)["evaluate/x"] == [(5, 5.0)] and len(os.listdir(logdir)) == 3
    with pytest.raises(RuntimeError), MetricWriter(logdir, name="evaluate-a") as w:
        w.write_scalars(6, {"evaluate/x": 6.0})
        raise RuntimeError("a figure could not be read")  # left by an exception: both kept
    assert read_scalars(logdir)["evaluate/x"] == [(5, 5.0), (6, 6.0)]
    # Two at once (two processes evaluating alike): each removed the other's file, leaving
    # none (a probe); closed in either order, the later-opened one's is kept, and only it.
    for first_closed in (0, 1):
        a, b = (MetricWriter(logdir, name="evaluate-c") for _ in range(2))
        for i, w in enumerate((a, b)):
            w.write_scalars(7, {"evaluate/z": float(i)})
        (a, b)[first_closed].close()
        (a, b)[1 - first_closed].close()
        assert read_scalars(logdir)["evaluate/z"] == [(7, 1.0)]
        assert len([f for f in os.listdir(logdir) if f.endswith(".evaluate-c")]) == 1
    with pytest.raises(ValueError, match="letters, digits"):
        MetricWriter(logdir, name="a.b")


def test_images_text_and_hparams_leave_scalars_readable(tmp_path):
    logdir = str(tmp_path / "tb")
    with MetricWriter(logdir) as w:
        _write_curves(w, range(5))
        _write_everything_else(w, tmp_path)
    # One event file: hparams must not open a second writer on the same directory.
    assert len([n for n in os.listdir(logdir) if "tfevents" in n]) == 1
    got = writers._read_event_files(logdir)
    # "eval/mse" already holds that value at the last step, so it gains no duplicate point.
    assert got == {**_expected(range(5)), "hparam/test_mse": [(4, 0.25)]}
    [path] = [os.path.join(logdir, n) for n in os.listdir(logdir)]
    values = {v.tag: v for e in writers._events(path) for v in e.summary.value}
    assert {
        "img/uint8",
        "img/float",
        "img/gray",
        "img/one_channel",
        "fig/object",
        "fig/png",
        "config/text_summary",
        "_hparams_/session_start_info",
    } <= set(values)
    assert values["fig/png"].image.height == 200  # the PNG's own size, 2 in at 100 dpi
    start = values["_hparams_/session_start_info"].metadata.plugin_data.content
    for text in (b"optim.learning_rate", b"(64, 32)", b"vae", b"None", b"data.seed"):
        assert text in start
    # The session at the run's last step, where its headline numbers are (at step 0 the
    # dashboard's step column read 0 for a trained run).
    steps = {e.step for e in writers._events(path) for v in e.summary.value if "_hparams_" in v.tag}
    assert steps == {4}


def test_close_flushes(tmp_path):
    logdir = str(tmp_path / "tb")
    w = MetricWriter(logdir)
    w.write_scalars(7, {"train/loss": 0.5})  # one event: below tensorboardX's queue threshold
    w.close()
    assert read_scalars(logdir) == {"train/loss": [(7, 0.5)]}


def test_flush_makes_scalars_visible_while_open(tmp_path):
    logdir = str(tmp_path / "tb")
    w = MetricWriter(logdir)
    w.write_scalars(1, {"train/loss": 0.5})
    w.flush()
    assert writers._read_event_files(logdir) == {"train/loss": [(1, 0.5)]}
    w.close()


def test_two_writers_in_one_second_keep_both_files(tmp_path):
    logdir = str(tmp_path / "tb")
    for step in (0, 1):  # e.g. a resumed run: each writer gets a file of its own
        with MetricWriter(logdir) as w:
            w.write_scalars(step, {"train/loss": float(step)})
    assert len(os.listdir(logdir)) == 2
    assert read_scalars(logdir) == {"train/loss": [(0, 0.0), (1, 1.0)]}


def test_null_writer_writes_nothing(tmp_path):
    logdir = str(tmp_path / "tb")
    with NullWriter(logdir) as w:
        _write_curves(w, range(3))
        _write_everything_else(w, tmp_path)
        w.flush()
    assert not os.path.exists(logdir)
    assert read_scalars(logdir) == {}


def test_missing_or_empty_dir_reads_empty(tmp_path):
    assert read_scalars(str(tmp_path / "missing")) == {}
    assert read_scalars(str(tmp_path)) == {}
    assert writers._read_event_files(str(tmp_path)) == {}


def _write_tensor_scalars(logdir: str) -> None:
    """Scalars as TF2 writes them: a tensor, plugin metadata on the tag's first value only."""
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    fw = FileWriter(logdir)
    protos = [
        TensorProto(dtype="DT_FLOAT", float_val=[0.5]),
        TensorProto(dtype="DT_DOUBLE", tensor_content=np.float64(0.25).tobytes()),
    ]
    for step, tensor in enumerate(protos):
        value = Summary.Value(tag="tf2/loss", tensor=tensor, metadata=meta if step == 0 else None)
        fw.add_summary(Summary(value=[value]), step)
    fw.close()


def test_tensor_encoded_scalars(tmp_path):
    _write_tensor_scalars(str(tmp_path))
    assert writers._read_event_files(str(tmp_path)) == {"tf2/loss": [(0, 0.5), (1, 0.25)]}


def test_corrupt_record_raises_and_partial_tail_is_ignored(tmp_path):
    logdir = str(tmp_path / "tb")
    with MetricWriter(logdir) as w:
        _write_curves(w, range(3))
    [path] = [os.path.join(logdir, n) for n in os.listdir(logdir)]
    data = open(path, "rb").read()
    with open(path, "wb") as f:  # a record cut short, as a live writer leaves it
        f.write(data[:-3])
    assert writers._read_event_files(logdir) == _expected(range(2))  # step 2 is one event
    with open(path, "wb") as f:  # one flipped bit in the last record's payload
        f.write(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
    with pytest.raises(ValueError, match="corrupt record data"):
        writers._read_event_files(logdir)


def test_tensorboard_event_accumulator_agrees(tmp_path):
    pytest.importorskip(
        "tensorboard",
        reason="tensorboard not installed: its EventAccumulator cross-check is "
        "skipped; our own parser is still tested above",
    )
    logdir = str(tmp_path / "tb")
    with MetricWriter(logdir) as w:
        _write_curves(w, [1, 0, 2, 3, 4])
        _write_everything_else(w, tmp_path)
    _write_tensor_scalars(logdir)  # a second event file in the same run
    ours = writers._read_event_files(logdir)
    assert writers._read_with_tensorboard(logdir) == ours
    assert (
        ours["tf2/loss"] == [(0, 0.5), (1, 0.25)]
        and ours["eval/kl"] == _expected(range(5))["eval/kl"]
    )


def test_records_are_checksummed_as_tensorboardX_does(tmp_path):
    """Our record framing (google-crc32c) against tensorboardX's own RecordWriter (its checksum
    in pure Python): byte for byte, on payloads of many lengths, empty to a figure's size."""
    from tensorboardX.record_writer import RecordWriter

    rng = np.random.default_rng(0)
    payloads = [b"", b"a", bytes(range(256)), rng.bytes(50_000)]
    path = str(tmp_path / "theirs")
    theirs = RecordWriter(path)
    for p in payloads:
        theirs.write(p)
    theirs.close()
    with open(path, "rb") as f:
        assert b"".join(writers.record(p) for p in payloads) == f.read()
