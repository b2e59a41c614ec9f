"""The researcher's toolbox: the `ae-jax` command from a built wheel outside the source tree,
configs by name, --helpconfig, jax.export of a run, and the sweep report's files."""

import csv
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys

import flax
import jax
import jaxlib
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits
from tensorboard.backend.event_processing import event_accumulator as ea

import ae_jax
from ae_jax import data as data_lib
from ae_jax import experiment, runtime
from ae_jax import files as files_lib
from ae_jax.commands import encode as encode_cli
from ae_jax.configs import seed_sparse, seed_vae
from ae_jax.evaluation import eval_data, evaluate, export, figure_data
from ae_jax.sweeps import overrides as multi
from ae_jax.sweeps import report, run_folders, runner
from ae_jax.training import resumes
from tests.conftest import write_purchase_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the project, installed (without its dependencies, which
    this interpreter has) into a folder of its own; commands run from an unrelated folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(
        os.path.join(ROOT, "ae_jax"), src / "ae_jax", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").iterdir()
    site = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    away = tmp / "elsewhere"
    away.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "AE_JAX_COMPILATION_CACHE": "off"}
    return {"site": site, "cwd": away, "env": env, "wheel": wheel}


def _ae_jax(installed, *args):
    return subprocess.run(
        [str(installed["site"] / "bin" / "ae-jax"), *args],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_wheel_installs_ae_jax_only_with_its_configs(installed):
    tops = {p.name for p in installed["site"].iterdir()}
    assert "ae_jax" in tops and "experiments" not in tops
    assert (installed["site"] / "ae_jax" / "configs" / "ablations" / "beta_vae.py").exists()
    where = subprocess.run(
        [sys.executable, "-c", "import ae_jax; print(ae_jax.__file__)"],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed["site"]))  # not the source tree's ae_jax


def test_python_m_ae_jax_is_the_command(installed):
    """`python -m ae_jax` (for an environment whose scripts folder is not on PATH) runs the
    same subcommands as `ae-jax`, from the installed wheel."""
    python_m = lambda *args: subprocess.run(
        [sys.executable, "-m", "ae_jax", *args],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    r, ref = python_m("--help"), _ae_jax(installed, "--help")
    assert r.returncode == 0 and r.stdout == ref.stdout and "  report " in r.stdout, r.stderr
    r = python_m("report", "--help")
    assert r.returncode == 0 and "--workdir:" in r.stdout + r.stderr, r.stderr
    r = python_m("trian")
    assert r.returncode == 2 and "unknown subcommand 'trian'" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["--help"], ["train", "--config=seed_sparse", "--helpconfig"]])
def test_help_into_a_pipe_whose_reader_left_ends_without_a_traceback(args):
    """`ae-jax --help | head -3`: the reader leaves before the help is written, and the
    command ended in a BrokenPipeError traceback (a new-user probe). Here the reader has left
    before the command starts, so every write fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "ae_jax", *args],
            cwd=ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
    assert r.returncode in (0, 1), r.stderr  # 0 when only the last flush found it closed
    ours, theirs = socket.socketpair()  # a socket whose peer left: POLLHUP, not POLLERR
    ours.close()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "ae_jax", *args],
            cwd=ROOT,
            stdout=theirs.fileno(),
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        theirs.close()
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr


def test_a_broken_pipe_elsewhere_is_no_silent_exit():
    """Only a closed standard output is passed over: a pipe or socket that breaks inside a
    command (a tracker, a worker) is reported as any error is."""
    code = (
        "import sys; from ae_jax import commands; from ae_jax.commands import train\n"
        "def broken(argv): raise BrokenPipeError(32, 'a tracker socket')\n"
        "train.main = broken\n"
        "commands.main(['train', '--config=seed_sparse', '--workdir=unused'])\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode != 0 and "a tracker socket" in r.stderr, (r.returncode, r.stderr)


def _software_by_the_modules() -> dict:
    """What a run should record as its software, from each package's own __version__."""
    return {
        "python": platform.python_version(),
        "ae_jax": ae_jax.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "orbax-checkpoint": ocp.__version__,
        "numpy": np.__version__,
        "ae_jax_source": _digest_of(os.path.dirname(ae_jax.__file__)),
    }


def _digest_of(package: str) -> str:
    """The package's Python files, hashed here as runtime.source_digest promises to."""
    files = sorted(
        os.path.relpath(os.path.join(d, n), package)
        for d, _, names in os.walk(package)
        if "__pycache__" not in d
        for n in names
        if n.endswith(".py")
    )
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode() + b"\0" + open(os.path.join(package, rel), "rb").read() + b"\0")
    return h.hexdigest()[:12]


def test_the_code_that_computed_a_run_is_named_by_its_digest(tmp_path, monkeypatch):
    """Every revision says `ae_jax 0.1.0`: the digest of the package's files tells them apart.
    The same files elsewhere give the same digest; a byte changed in one, another; compiled
    files and other files do not count."""
    copy = tmp_path / "a" / "ae_jax"
    shutil.copytree(os.path.dirname(ae_jax.__file__), copy)
    here = runtime.source_digest()
    assert runtime.source_digest(str(copy)) == here == runtime.versions()["ae_jax_source"]
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "stray.py").write_text("x = 1\n")
    (copy / "notes.txt").write_text("not code\n")
    assert runtime.source_digest(str(copy)) == here
    (copy / "errors.py").write_text((copy / "errors.py").read_text() + "\n")
    assert runtime.source_digest(str(copy)) not in (here, "")
    said = runtime.describe(runtime.versions())
    assert f"ae_jax {ae_jax.__version__} (source {here}), jax " in said
    # The package's files edited while a process runs (a probe: a sweep's later groups named
    # code the process never loaded): its runs keep the digest of the code it started with.
    monkeypatch.setattr(runtime, "source_digest", lambda *a: "edited since")
    assert runtime.versions()["ae_jax_source"] == here


def test_a_checkpoint_from_before_the_digest_is_not_said_to_differ_in_it(caplog):
    """A checkpoint written before runs recorded the code's digest lacks the key: resuming it
    is not said to change the software for that (what it did record is still compared)."""
    now = runtime.versions()
    older = {k: v for k, v in now.items() if k != "ae_jax_source"}
    caplog.set_level("WARNING")
    resumes.warn_software_change([older], now)
    assert "other software" not in caplog.text
    resumes.warn_software_change([{**now, "ae_jax_source": "0123456789ab"}], now)
    assert f"(ae_jax_source 0123456789ab -> {now['ae_jax_source']})" in caplog.text


def test_version_names_python_and_the_packages_that_compute_the_numbers(installed):
    r = _ae_jax(installed, "--version")
    want = _software_by_the_modules()
    assert r.returncode == 0 and r.stdout.startswith(f"ae-jax {want['ae_jax']} (Python "), r.stderr
    assert all(f"{name} {v}" in r.stdout for name, v in want.items() if name in runtime.PACKAGES)
    assert f"ae_jax {want['ae_jax']} (source {want['ae_jax_source']}), " in r.stdout


def test_runs_and_evaluations_record_their_software(tmp_path):
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures = 1, False
    experiment.train_and_evaluate(c, str(tmp_path))
    want = {
        **_software_by_the_modules(),
        # The suite runs on the CPU (conftest) unless told to use the accelerator.
        **(
            {"backend": "cpu", "device_kind": "cpu"}
            if os.environ.get("AE_JAX_TEST_ON_ACCELERATOR") != "1"
            else {"backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind}
        ),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["software"] == want
    assert json.load(open(tmp_path / "eval.json"))["software"] == want
    _, out = evaluate.evaluate_run(str(tmp_path), which="best", figures=False)
    assert json.load(open(os.path.join(out, "eval.json")))["software"] == want


def test_a_run_resumed_under_other_software_says_so(tmp_path, monkeypatch, caplog):
    """Each checkpoint records the software it was trained with; a run extended (resumed from
    its last checkpoint) under other versions is told that its numbers may now differ from an
    uninterrupted run's, and its summary.json names the software that finished it."""
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    experiment.train_and_evaluate(c, str(tmp_path))
    caplog.set_level("WARNING")
    c.train.epochs = 2  # the same software: not a word
    experiment.train_and_evaluate(c, str(tmp_path))
    assert "other software" not in caplog.text
    real = runtime.versions
    monkeypatch.setattr(runtime, "versions", lambda: {**real(), "jax": "9.9.9"})
    c.train.epochs = 3
    experiment.train_and_evaluate(c, str(tmp_path))
    assert "resuming with other software than the checkpoint was trained with (jax " in caplog.text
    assert f"jax {jax.__version__} -> 9.9.9)" in caplog.text
    assert json.load(open(tmp_path / "summary.json"))["software"]["jax"] == "9.9.9"


def test_every_subcommand_works_from_another_folder(installed):
    r = _ae_jax(installed, "--help")
    assert r.returncode == 0 and all(
        c in r.stdout for c in ("train", "sweep", "evaluate", "encode", "report", "export")
    )
    r = _ae_jax(installed, "evaluate", "--help")  # as `ae-jax --help` promises: its flags
    assert "Evaluate a trained run" in r.stdout and r.returncode == 0  # (absl's would be 1)
    r = _ae_jax(installed, "evaluate", "-h")  # as `ae-jax -h` (it was "no such flag --h")
    assert "Evaluate a trained run" in r.stdout and r.returncode == 0, r.stderr[-2000:]
    assert all(f"--{f}:" in r.stdout + r.stderr for f in ("workdir", "data", "which", "iw_samples"))
    r = _ae_jax(installed, "train", "--help", "--config=nope")  # was the config's error, exit 2
    assert "Train one config" in r.stdout and r.returncode == 0, r.stderr[-2000:]
    r = _ae_jax(installed, "train", "--config=seed_sparse", "--helpconfig", "-h")
    assert "Train one config" in r.stdout and r.returncode == 0, r.stderr[-2000:]
    r = _ae_jax(
        installed,
        "train",
        "--config=seed_sparse",
        "--workdir=runs/x",
        "--config.train.epochs=2",
        "--config.eval.at_end=False",  # `evaluate` below writes the run's eval.json and figures
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.load(open(installed["cwd"] / "runs/x/summary.json"))["status"] == "done"
    for args in (
        ["evaluate", "--workdir=runs/x"],
        ["export", "--workdir=runs/x", "--output=exported"],
    ):
        r = _ae_jax(installed, *args)
        assert r.returncode == 0, (args, r.stderr[-3000:])
    # Drawn by figure workers started from the installed wheel, in another folder.
    drawn = set(os.listdir(installed["cwd"] / "runs/x/figures"))
    assert {"learning_curves.png", "codes_2d.png", "recon_per_feature.png"} <= drawn, drawn
    assert (installed["cwd"] / "runs/x/eval.json").exists()
    rows = installed["cwd"] / "rows.csv"
    bc = load_breast_cancer()
    np.savetxt(rows, bc.data[:6], delimiter=",", header=",".join(bc.feature_names), comments="")
    r = _ae_jax(installed, "encode", "--workdir=runs/x", f"--input={rows}", "--output=codes.npy")
    assert r.returncode == 0 and np.load(installed["cwd"] / "codes.npy").shape == (6, 9)
    np.savez(installed["cwd"] / "rows.npz", x_train=bc.data[6:9], x_test=bc.data[:6])
    r = _ae_jax(installed, "encode", "--workdir=runs/x", "--input=rows.npz", "--output=test.npy")
    assert r.returncode == 2 and "set --npz_key to one of its arrays" in r.stderr, r.stderr
    npz_test = ["--npz_key=x_test", "--output=test.npy"]
    r = _ae_jax(installed, "encode", "--workdir=runs/x", "--input=rows.npz", *npz_test)
    assert r.returncode == 0, r.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(installed["cwd"] / "test.npy"), np.load(installed["cwd"] / "codes.npy"), 1e-6
    )
    r = _ae_jax(
        installed,
        "sweep",
        "--config=ablations/beta_vae",
        "--workdir=runs/s",
        "--shard=0/6",  # 3 of its 18 runs: the command, not the study, is under test
        "--config.train.epochs=1",
        "--config.eval.iw_samples=2",
        "--config.train.figures=False",  # (drawn from this folder by `evaluate` above)
    )
    assert r.returncode == 0, r.stderr[-3000:]
    r = _ae_jax(installed, "report", "--workdir=runs/s")
    assert r.returncode == 0 and (installed["cwd"] / "runs/s/runs.csv").exists(), r.stderr
    # Nothing but what the commands were asked to write.
    made = "codes.npy exported rows.csv rows.npz runs test.npy".split()
    assert sorted(os.listdir(installed["cwd"])) == made


def test_mistakes_through_ae_jax_are_one_paragraph_with_exit_2(installed):
    for args, text in (
        (
            ["train", "--config=seed_sparse", "--workdir=w", "--config.loss.betta=2"],
            "did you mean --config.loss.beta?",
        ),
        (
            ["train", "--config=seed_sparce", "--workdir=w"],
            "no shipped config of that name (did you mean 'seed_sparse'?)",
        ),
        (["trian"], "unknown subcommand 'trian' (did you mean 'train'?)"),
        (
            ["train", "--config=seed_sparse", "--workdir=w", "--config.data.name=mnsit"],
            "'cifar10', 'tfds:NAME'] (did you mean 'mnist'?)",
        ),
        # Quoted as typed (it was the shipped file's absolute path), the file named after it.
        (["train", "--config=conv_ae_mnist:big", "--workdir=w"], "--config=conv_ae_mnist:big: /"),
        # A field flag without a value was checked by nobody: ml_collections' traceback, exit 1.
        (["train", "--config=seed_sparse", "--config.train.shufle"], "--config.train.shuffle?"),
        # A second --config dropped the first's field flags, or was absl's "defined twice".
        (["train", "--config=seed_sparse", "--config=seed_vae", "--workdir=w"], "given 2 times"),
        # A second --workdir won silently: a pasted command could resume the wrong run (a probe).
        (
            ["train", "--config=seed_sparse", "--workdir=w", "--workdir", "v"],
            "--workdir given 2 times (--workdir=w, --workdir v); expected one.",
        ),
        (  # a value after a space, '-1' too: shown (a review: "--process_id 1, --process_id")
            ["train", "--config=seed_sparse", "--workdir=w", "--process_id", "1"]
            + ["--process_id", "-1"],
            "--process_id given 2 times (--process_id 1, --process_id -1); expected one.",
        ),
        # A workdir named 'help' is no help flag (the config was dropped: "--config is required").
        (
            ["train", "--config=seed_sparse", "--config.train.epochs=-1", "--workdir", "help"],
            "train.epochs: got -1; expected a positive integer.",
        ),
        # A required flag left out was absl's "flag --output=None: Flag --output must have ...".
        (["export", "--workdir=w"], "--output is required: A new (or empty) folder for the"),
        (["train", "--config=seed_sparse"], "--workdir is required: The run's directory, new"),
        # A section given a value was "no field 'train'; did you mean --config.train.seed?".
        (
            ["train", "--config=seed_sparse", "--workdir=w", "--config.train=3"],
            "--config.train: 'train' is a section of the config, not a field; set one of its "
            "fields, such as --config.train.",
        ),
    ):
        r = _ae_jax(installed, *args)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
        assert r.returncode == 2 and len(errors) == 1 and text in errors[0], r.stderr[-2000:]
        assert "Traceback" not in r.stderr


def test_helpconfig_lists_fields_with_their_comments_and_stray_words_are_refused(installed):
    r = _ae_jax(installed, "train", "--config=ablations/beta_vae", "--helpconfig")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    i = lines.index("loss.free_bits = 0.0")
    assert "nats per latent dimension" in lines[i + 1]
    assert "data.binarize = 'fixed'" in lines  # the config's value, not the default
    # Every field says what it is (16 had no comment: optim.name, optim.b1, train.epochs, ...).
    fields = [j for j, ln in enumerate(lines) if ln and not ln.startswith(" ")]
    bare = [lines[j] for j in fields if j + 1 == len(lines) or not lines[j + 1].startswith(" ")]
    assert not bare, bare
    # The --config.FIELD flags on the same line are applied (they were ignored) and checked.
    flags = ("--config.loss.free_bits=0.25", "--config.data.name=digits", "--helpconfig")
    r = _ae_jax(installed, "train", "--config=ablations/beta_vae", *flags)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {"loss.free_bits = 0.25", "data.name = 'digits'"} <= set(r.stdout.splitlines())
    # A field given twice takes its last value: =none won over a later one, and a tuple's
    # second flag was appended to the first; the text lists add up, as documented.
    twice = ("--config.optim.eps=none", "--config.optim.eps=1e-5", "--config.data.na_values=a")
    twice += ("--config.model.encoder_widths=(4,)", "--config.model.encoder_widths=(8,)")
    r = _ae_jax(
        installed,
        "train",
        "--config=seed_sparse",
        *twice,
        "--config.data.na_values=b",
        "--helpconfig",
    )
    lines = set(r.stdout.splitlines())
    assert {
        "optim.eps = 1e-05",
        "model.encoder_widths = (8,)",
        "data.na_values = ('a', 'b')",
    } <= lines
    # 'null' is a missing-value marker (it was read as unsetting the field, and refused).
    r = _ae_jax(
        installed, "train", "--config=seed_sparse", "--config.data.na_values=null", "--helpconfig"
    )
    assert "data.na_values = ('null',)" in r.stdout.splitlines(), r.stderr[-2000:]
    r = _ae_jax(installed, "train", "--config=seed_vae", "--config.loss.fre_bits=1", "--helpconfig")
    assert r.returncode == 2 and "did you mean --config.loss.free_bits?" in r.stderr
    r = _ae_jax(installed, "train", "--helpconfig")  # was "no such flag; did you mean it?"
    assert r.returncode == 2 and "error: --helpconfig lists a config's fields" in r.stderr
    r = _ae_jax(installed, "evaluate", "--workdir=w", "--helpconfig")  # its advice was refused
    said = "error: --helpconfig lists a config's fields, with `ae-jax train --config=NAME"
    assert r.returncode == 2 and said in r.stderr, r.stderr[-2000:]
    # Words after the flags: one error paragraph, exit 2 (absl's usage text, exit 1, before).
    for command in ("train --config=seed_sparse", "report"):
        r = _ae_jax(installed, *command.split(), "--workdir=w", "extra")
        said = f"error: unexpected argument(s) ['extra']: `ae-jax {command.split()[0]}` takes"
        assert r.returncode == 2 and r.stderr.startswith(said), r.stderr[-2000:]


@pytest.mark.optimized
def test_exported_encoder_equals_the_loaded_model(tmp_path, monkeypatch):
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 2, False, False
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    # A run's path as an ASCII locale gives it ("ñ" as undecodable bytes): the README naming
    # it was written half, a UnicodeEncodeError (a probe), and the folder then refused a rerun.
    os.rename(tmp_path / "run", tmp_path / "\u00f1 run")
    os.symlink(tmp_path / "\u00f1 run", tmp_path / "run")
    export.export_run(str(tmp_path) + "/\udcc3\udcb1 run", str(tmp_path / "out"))
    assert "/\u00f1 run` (epoch 2)" in (tmp_path / "out" / "README.md").read_text("utf-8")
    model = ae_jax.load(str(tmp_path / "run"))
    rows = load_breast_cancer().data[:37]
    with open(tmp_path / "out" / export.ENCODE, "rb") as f:
        encode = jax.export.deserialize(bytearray(f.read()))
    with open(tmp_path / "out" / export.DECODE, "rb") as f:
        decode = jax.export.deserialize(bytearray(f.read()))
    codes = np.asarray(encode.call(model.features(rows)))
    np.testing.assert_array_equal(codes, model.encode(rows))
    # Made on a CPU, it runs on a GPU or TPU too (an export is for its own platform by default).
    assert {"cpu", "cuda", "tpu"} <= set(encode.platforms) and decode.platforms == encode.platforms
    np.testing.assert_allclose(
        np.asarray(decode.call(codes[:5])), model.decode(codes[:5]), rtol=1e-6, atol=1e-7
    )
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "encode.call" in readme and f"Load it with jax {jax.__version__} or newer" in readme
    assert "not marked finished" not in (tmp_path / "out" / "README.md").read_text()
    # An unfinished run's export says so in its README, and to the command's user beside what
    # it exported (it was in a log line only: a probe); the README names the run's folder whole.
    os.rename(tmp_path / "run" / "summary.json", tmp_path / "summary.json")
    monkeypatch.chdir(tmp_path)
    out = export.export_run("run", str(tmp_path / "unfinished"))
    readme = (tmp_path / "unfinished" / "README.md").read_text()
    said = "not marked finished (it has no summary.json): these are the parameters of its "
    assert said in readme and said in out["unfinished"]
    assert f"from `{tmp_path / 'run'}` (epoch 2)" in readme
    assert "epoch-2 checkpoint, of 2 epochs" in readme
    (tmp_path / "run" / "summary.json").write_text('{"status": "do')  # damaged: said so
    export.export_run(str(tmp_path / "run"), str(tmp_path / "damaged"))
    readme = (tmp_path / "damaged" / "README.md").read_text()
    assert "not marked finished (its summary.json cannot be read): these are" in readme
    os.replace(tmp_path / "summary.json", tmp_path / "run" / "summary.json")
    # An existing, non-empty output folder is refused before anything is written.
    with pytest.raises(ae_jax.UserError, match="is not an empty folder"):
        export.export_run(str(tmp_path / "run"), str(tmp_path / "out"))
    # So are an empty path, a file, and a folder that cannot be made: one paragraph each.
    (tmp_path / "f.txt").write_text("x")
    for output, match in [
        ("", r"--output is empty"),
        (tmp_path / "f.txt", r"is a file; choose a new folder"),
        (tmp_path / "f.txt" / "sub", r"cannot be made: '.*f.txt' is a file"),
        # Inside a run's folders: its checkpoints/ then read the export as a damaged epoch and
        # the run could no longer be loaded (a probe); inside another export too.
        (tmp_path / "run" / "checkpoints" / "99", r"lies inside '.*run', a run's checkpoints/"),
        (tmp_path / "run" / "figures" / "e", r"lies inside '.*run', a run's figures/ folder"),
        (tmp_path / "out" / "x", r"lies inside '.*out', an export's folder"),
        (None, r"--output: expected a folder path, .* got None"),
    ]:
        with pytest.raises(ae_jax.UserError, match=match):
            export.export_run(str(tmp_path / "run"), None if output is None else str(output))
    assert not (tmp_path / "run" / "checkpoints" / "99").exists()
    assert (tmp_path / "f.txt").read_text() == "x"
    # Written whole or not at all: another export into the same new folder meanwhile is kept
    # (two both said they exported, one lost; once their files mixed: a probe), and one
    # stopped midway leaves no half folder (its rerun was refused as "not an empty folder").
    load, rival = export.trained.load, tmp_path / "rival"

    def load_while_another_exports(*a, **k):
        rival.mkdir()
        (rival / "config.json").write_text("the other export's")
        return load(*a, **k)

    monkeypatch.setattr(export.trained, "load", load_while_another_exports)
    with pytest.raises(ae_jax.UserError, match=r"rival' was written by another process while"):
        export.export_run(str(tmp_path / "run"), str(rival))
    assert os.listdir(rival) == ["config.json"] and "other" in (rival / "config.json").read_text()
    monkeypatch.setattr(export.trained, "load", load)
    monkeypatch.setattr(export.serialization, "msgpack_serialize", _stopped)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(str(tmp_path / "run"), str(tmp_path / "stopped"))
    assert not (tmp_path / "stopped").exists()
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # Into an existing empty folder alike: left empty, rerun whole (half an export stayed in
    # it, and the rerun was refused as a folder not empty: a probe).
    (tmp_path / "given").mkdir()
    with pytest.raises(KeyboardInterrupt):
        export.export_run(str(tmp_path / "run"), str(tmp_path / "given"))
    assert os.listdir(tmp_path / "given") == []
    monkeypatch.undo()
    export.export_run(str(tmp_path / "run"), str(tmp_path / "stopped"))  # the rerun
    assert os.stat(tmp_path / "stopped").st_mode & 0o777 == 0o777 & ~_umask()
    # What a kill -9 left in the given folder (the claim, the folder being filled) is no file
    # of the user's: the rerun clears it.
    (tmp_path / "given" / files_lib.CLAIM).write_text("")
    (tmp_path / "given" / files_lib.FILLING).mkdir()
    export.export_run(str(tmp_path / "run"), str(tmp_path / "given"))
    assert sorted(os.listdir(tmp_path / "given")) == sorted(os.listdir(tmp_path / "stopped"))


def test_an_export_into_a_run_or_a_sweep_is_refused_only_where_it_would_be_read(tmp_path):
    """Refused: a run's own folders, also through a link (RUN/checkpoints -> scratch: the real
    path meets no run), and a new folder of a sweep's runs/ (read as a run); accepted: a
    folder of the user's beside a run's (RUN/exported, a sweep's run's too). Faked folders."""
    sweep = tmp_path / "sw"
    run = sweep / "runs" / "r"
    run.mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}")
    for name in ("config.json", "preprocessor.json"):
        (run / name).write_text("{}")
    (tmp_path / "scratch").mkdir()
    os.symlink(tmp_path / "scratch", run / "checkpoints")
    for output, said in [
        (run / "checkpoints" / "7", r"lies inside '.*/r', a run's checkpoints/ folder"),
        (run / "tb" / "x", r"a run's tb/ folder"),
        (sweep / "runs" / "new", r"lies inside '.*/sw', a sweep's runs/ folder"),
    ]:
        with pytest.raises(ae_jax.UserError, match=said):
            export._check_output(str(output))
    export._check_output(str(run / "exported"))
    export._check_output(str(tmp_path / "elsewhere"))


def _stopped(*_):
    raise KeyboardInterrupt


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_an_export_folder_is_no_run_directory(tmp_path):
    """An export holds a run's config.json and preprocessor.json, which marked a run's directory:
    `train` then trained into it (rewriting both), evaluate and load said 'no checkpoint yet;
    train it first', and a report counted it as an unfinished run. Now it is an export."""
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    experiment.train_and_evaluate(c, str(tmp_path / "runs" / "run"))
    out = tmp_path / "runs" / "exported"
    export.export_run(str(tmp_path / "runs" / "run"), str(out))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ae_jax.UserError, match=r"is an exported run \(`ae-jax export`'s output\)"):
        experiment.train_and_evaluate(c, str(out))
    for call in (ae_jax.load, evaluate.evaluate_workdir):
        with pytest.raises(ae_jax.UserError, match="is an exported run .* pass the run's own"):
            call(str(out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [r["name"] for r in run_folders.subdir_runs(str(tmp_path / "runs"))] == ["run"]


@pytest.mark.optimized
def test_a_bfloat16_run_gives_float32_that_its_exported_decoder_takes(tmp_path):
    """Mixed precision computes in bfloat16; the API and the export give float32, as they say
    (the exported encoder's bfloat16 codes were refused by its own decoder)."""
    c = seed_vae.get_config()
    c.data.name, c.model.compute_dtype = "breast_cancer", "bfloat16"
    c.train.epochs, c.train.figures, c.eval.at_end = 2, False, False
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    model = ae_jax.load(str(tmp_path / "run"))
    rows = load_breast_cancer().data[:9]
    outputs = [model.encode(rows), model.reconstruct(rows), model.sample(3)]
    assert [o.dtype for o in outputs] == [np.float32] * 3
    export.export_run(str(tmp_path / "run"), str(tmp_path / "out"))
    calls = []
    for name in (export.ENCODE, export.DECODE):
        with open(tmp_path / "out" / name, "rb") as f:
            calls.append(jax.export.deserialize(bytearray(f.read())).call)
    codes = np.asarray(calls[0](model.features(rows)))
    assert codes.dtype == np.float32
    np.testing.assert_array_equal(codes, outputs[0])
    np.testing.assert_array_equal(np.asarray(calls[1](codes)), outputs[1])


def _readme_recipe(pre: dict, rows: list[dict]) -> np.ndarray:
    """Steps 1-5 of the exported README.md, from preprocessor.json alone: raw rows (dicts of
    cells, text or numbers) -> the exported encoder's input."""
    out = []
    for row in rows:
        enc: list[float] = []
        for name, kind in zip(pre["input_columns"], pre["kinds"], strict=True):
            cell = row[name]
            if cell in pre["na_values"] or (isinstance(cell, float) and np.isnan(cell)):
                cell = pre["fill"][name]
            if kind == "boolean" and isinstance(cell, str):
                enc.append({"true": 1.0, "false": 0.0}[cell.lower()])
            elif kind in ("numeric", "boolean"):
                enc.append(float(cell))
            else:
                vocab = pre["categories"][name]
                k = vocab.index(cell) if cell in vocab else len(vocab) - 1
                enc += list(np.eye(len(vocab))[k]) if pre["categorical"] == "onehot" else [k]
        out.append(enc)
    x = ((np.array(out) - np.array(pre["offset"])) / np.array(pre["scale"])).astype(np.float32)
    if pre["threshold"] is not None:
        x = np.where(x > pre["threshold"], 1.0, 0.0).astype(np.float32)
    return x


@pytest.mark.optimized
@pytest.mark.parametrize("data", ["table", "binarised digits"])
def test_export_readme_says_how_raw_rows_become_the_encoders_input(tmp_path, data):
    c = seed_sparse.get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    if data == "table":  # one-hot categories, booleans, imputed and unseen values
        path = write_purchase_csv(tmp_path / "shop.csv", n=120)
        c.data.path, c.data.categorical, c.data.missing = path, "onehot", "impute"
        with open(path) as f:
            rows = list(csv.DictReader(f))[:6]
        rows[0]["Month"], rows[1]["VisitorType"], rows[2]["Weekend"] = "Jan", "", "NA"
        rows[3]["Administrative_Duration"], rows[4]["Revenue"] = "?", "true"
        raw = str(tmp_path / "new.csv")
        with open(raw, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:  # counts 0..16 / 16, then 1 above 0.5
        c.data.name, c.data.binarize = "digits", "fixed"
        raw = load_digits().data[:6]
        rows = [{f"pixel_{j}": float(v) for j, v in enumerate(r)} for r in raw]
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    export.export_run(str(tmp_path / "run"), str(tmp_path / "out"))
    with open(tmp_path / "out" / "preprocessor.json") as f:
        x = _readme_recipe(json.load(f), rows)
    with open(tmp_path / "out" / export.ENCODE, "rb") as f:
        encode = jax.export.deserialize(bytearray(f.read()))
    model = ae_jax.load(str(tmp_path / "run"))
    np.testing.assert_array_equal(x, model.features(raw))
    np.testing.assert_array_equal(np.asarray(encode.call(x)), model.encode(raw))
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "x[j] = (encoded[j] - offset[j]) / scale[j]" in readme and "`threshold`" in readme
    # How it scales, as fitted: digits are divided by 16 whatever data.scaling says (the README
    # named it "minmax scaling").
    said = {
        "table": "(numbers scaled by the training split's minimum and maximum; true/false and "
        "one-hot columns as they are)",
        "binarised digits": "(pixel intensities 0..16 divided by 16)",
    }[data]
    assert said in readme and " scaling)" not in readme


def test_encode_reads_the_npz_array_npz_key_names(tmp_path):
    rng = np.random.default_rng(0)

    def images(n):
        return rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)

    np.savez(tmp_path / "train.npz", x=images(80), labels=rng.integers(0, 3, 80))
    c = seed_sparse.get_config()
    c.data.path, c.data.label_column = str(tmp_path / "train.npz"), "labels"
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    run, out = str(tmp_path / "run"), str(tmp_path / "codes.npy")
    experiment.train_and_evaluate(c, run)
    x_test = images(7)  # Keras-style: no 'x', no 'labels'; y_train does not fit x_test
    keras = str(tmp_path / "mnist.npz")
    np.savez(keras, x_train=images(9), y_train=np.zeros(9), x_test=x_test, y_test=np.zeros(7))
    with pytest.raises(ae_jax.UserError, match="set --npz_key to one of its arrays") as e:
        encode_cli.encode_file(run, keras, out)
    assert "'x_test'" in str(e.value) and "data.npz_key" not in str(e.value)
    assert not os.path.exists(out)
    codes = encode_cli.encode_file(run, keras, out, npz_key="x_test")
    np.testing.assert_array_equal(codes, ae_jax.load(run).encode(x_test.reshape(7, 16)))
    np.testing.assert_array_equal(np.load(out), codes)
    with pytest.raises(ae_jax.UserError, match="--npz_key 'x_tset' is not an array in --input"):
        encode_cli.encode_file(run, keras, out, npz_key="x_tset", overwrite=True)
    # The run's label array ('labels') is asked neither of a .npy (one unnamed array) nor of
    # another array of an .npz: encoded and evaluated without (it was refused).
    npy = str(tmp_path / "x_test.npy")
    np.save(npy, x_test)
    np.testing.assert_array_equal(encode_cli.encode_file(run, npy, out, overwrite=True), codes)
    for data_path, key in ((keras, "x_test"), (npy, "")):
        m = evaluate.evaluate_workdir(run, data_path=data_path, npz_key=key, figures=False)
        assert m["n_val"] == 7
    (tmp_path / "h.csv").write_text("a,b\n")  # no rows: said, without training's two-row need
    with pytest.raises(ae_jax.UserError, match=r"no data rows; expected rows of data$"):
        encode_cli.encode_file(run, str(tmp_path / "h.csv"), out, overwrite=True)
    # A run trained with data.npz_key='x' reads 'x' unless told otherwise.
    config = json.load(open(tmp_path / "run" / "config.json"))
    config["data"]["npz_key"] = "x"
    json.dump(config, open(tmp_path / "run" / "config.json", "w"))
    with pytest.raises(ae_jax.UserError, match=r"^the run's data.npz_key \(--npz_key names "):
        encode_cli.encode_file(run, keras, out, overwrite=True)
    np.testing.assert_array_equal(
        encode_cli.encode_file(run, keras, out, "latest", "x_test", overwrite=True), codes
    )


def test_report_files_are_tidy_and_say_what_their_numbers_are(tmp_path):
    base = seed_sparse.get_config()
    base.train.epochs, base.eval.at_end = 2, False
    base.train.figures, base.train.tensorboard = False, False
    overrides = [
        {"loss.l1_weight": w, "train.seed": s} for w in (0.0, 1e-3, 1e-1) for s in range(3)
    ]
    runner.run_sweep(base, overrides, str(tmp_path), report_metrics=["eval/loss", "eval/l1"])
    out = report.write_report(str(tmp_path))
    assert out["metrics"] == ["eval/loss", "eval/l1"]  # the config's choice, no wall_s
    with open(tmp_path / "runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 9 and {r["loss.l1_weight"] for r in runs} == {"0.0", "0.001", "0.1"}
    # results.csv: the sample standard deviation (ddof 1) over the 3 seeds.
    with open(tmp_path / "results.csv") as f:
        results = {r["loss.l1_weight"]: r for r in csv.DictReader(f)}
    losses = [float(r["eval/loss"]) for r in runs if r["loss.l1_weight"] == "0.1"]
    assert float(results["0.1"]["eval/loss std"]) == pytest.approx(np.std(losses, ddof=1))
    assert results["0.1"]["eval/loss n"] == "3"
    md = (tmp_path / "report.md").read_text()
    assert "sample standard deviation (ddof 1) over n = 3 seeds" in md and "wall_s" not in md
    png = Image.open(tmp_path / "figures" / "metrics_vs_loss_l1_weight.png")
    assert png.info["dpi"][0] == pytest.approx(150, abs=1)


def test_importing_ae_jax_leaves_matplotlib_backend_alone():
    code = (
        "import matplotlib; matplotlib.use('svg'); import ae_jax.sweeps.report, "
        "ae_jax.evaluation.renderer; print(matplotlib.get_backend())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "svg"


def test_a_command_process_collects_garbage_again_once_its_modules_are_imported():
    """`ae-jax` keeps the garbage collector off while the subcommand's modules import, then
    freezes what was made (so collections skip it) and turns the collector back on for the
    run (here a stand-in run that reports both)."""
    code = (
        "import gc, json; import ae_jax.commands as c\n"
        "def run(argv, imported):\n"
        "    seen = [gc.isenabled()]; imported(); seen += [gc.isenabled(), gc.get_freeze_count()]\n"
        "    print(json.dumps(seen), flush=True)\n"
        "c.run = run\n"
        "c.main(['train'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    before, after, frozen = json.loads(out)
    assert (before, after) == (False, True) and frozen > 10_000


def test_loading_a_run_prints_no_library_warnings(tmp_path):
    c = multi.apply_overrides(
        seed_sparse.get_config(), {"train.epochs": 1, "eval.at_end": False, "train.figures": False}
    )
    experiment.train_and_evaluate(c, str(tmp_path))
    code = f"import ae_jax; ae_jax.load({str(tmp_path)!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stderr == "" and r.stdout == ""


def test_codes_coloured_by_a_table_column_in_its_own_values(tmp_path):
    path = write_purchase_csv(tmp_path / "shop.csv", n=200)
    c = seed_sparse.get_config()
    c.data.path, c.data.categorical, c.train.epochs = path, "onehot", 2
    ds = data_lib.load_dataset(c.data)
    ev = eval_data.dataset_eval_data(ds, c)
    raw = {row["Revenue"] for row in csv.DictReader(open(path))}
    assert set(figure_data.column_values(ev, "Revenue")) <= {"true", "false"} and raw
    months = figure_data.column_values(ev, "Month")
    assert set(months) <= set(ds.preprocessor.categories["Month"])
    admin = figure_data.column_values(ev, "Administrative")  # a number, unscaled
    assert admin.dtype.kind == "f" and admin.max() > 1.5
    c.eval.color_by = "Revenue"
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    png = Image.open(tmp_path / "run" / "figures" / "codes_2d.png")
    assert png.info["dpi"][0] == pytest.approx(150, abs=1)
    c.eval.color_by = "Revenu"
    with pytest.raises(
        ae_jax.UserError, match=r"color_by 'Revenu' is not a column of .*Revenue'\?"
    ):
        experiment.train_and_evaluate(c, str(tmp_path / "other"))
    assert not (tmp_path / "other" / "checkpoints").exists()
    c.data.path, c.data.name = "", "breast_cancer"  # 30 columns: 20 named, and how many more
    with pytest.raises(ae_jax.UserError, match=r"'fractal dimension error', \.\.\. \(10 more\)\]"):
        experiment.train_and_evaluate(c, str(tmp_path / "other"))


@pytest.mark.parametrize("categorical", ["ordinal", "onehot"])
def test_codes_coloured_by_a_column_with_imputed_cells_show_them_missing(tmp_path, categorical):
    """With data.missing='impute', a colour column's blank cells were coloured as the value
    that filled them (the mean, the most frequent category): the README promises grey points
    for a numeric colour's missing values, and a "(missing)" group for text."""
    rng = np.random.default_rng(0)
    lines = ["income,city,flag,v"]
    for i in range(60):
        income = "" if i % 7 == 3 else f"{rng.uniform(10, 90):.1f}"
        city = "" if i % 5 == 2 else ["Oslo", "Lima", "Kyiv"][i % 3]
        flag = "" if i % 4 == 1 else ["true", "false"][i % 2]
        lines.append(f"{income},{city},{flag},{rng.normal():.3f}")
    (tmp_path / "gaps.csv").write_text("\n".join(lines) + "\n")
    c = seed_sparse.get_config()
    c.data.path, c.data.missing, c.data.categorical = (
        str(tmp_path / "gaps.csv"),
        "impute",
        categorical,
    )
    ds = data_lib.load_dataset(c.data)
    ev = eval_data.dataset_eval_data(ds, c)
    cells = [lines[1 + r].split(",") for r in ds.val_indices]
    for j, name in enumerate(("income", "city", "flag")):
        values = figure_data.column_values(ev, name)
        blank = np.array([row[j] == "" for row in cells])
        assert blank.any() and not blank.all(), name
        if name == "income":
            assert np.isnan(values[blank]).all() and not np.isnan(values[~blank]).any()
            np.testing.assert_allclose(values[~blank], [float(r[0]) for r in cells if r[0]], 1e-5)
        else:
            assert list(values[blank]) == ["(missing)"] * blank.sum()
            assert [v.lower() for v in values[~blank]] == [r[j].lower() for r in cells if r[j]]


def test_evaluation_figures_reach_tensorboard(tmp_path):
    c = seed_sparse.get_config()
    c.train.epochs = 2
    experiment.train_and_evaluate(c, str(tmp_path))
    acc = ea.EventAccumulator(str(tmp_path / "tb"), {ea.IMAGES: 0})
    acc.Reload()
    assert "figures/recon_per_feature" in acc.Tags()[ea.IMAGES]  # at the end of training
    evaluate.evaluate_workdir(str(tmp_path))  # a later evaluation adds its own, by its name
    acc = ea.EventAccumulator(str(tmp_path / "tb"), {ea.IMAGES: 0})
    acc.Reload()
    tag = "evaluate/which=latest/recon_per_feature"
    assert tag in acc.Tags()[ea.IMAGES] and len(acc.Images(tag)) == 1
    # The same evaluation again replaces its figures there, as it does eval.json and the PNGs
    # (each call added one more image at the same step); another evaluation keeps its own.
    evaluate.evaluate_workdir(str(tmp_path), which="best")
    evaluate.evaluate_workdir(str(tmp_path))
    evaluate.evaluate_workdir(str(tmp_path))
    acc = ea.EventAccumulator(str(tmp_path / "tb"), {ea.IMAGES: 0})
    acc.Reload()
    assert len(acc.Images(tag)) == 1
    assert len(acc.Images("evaluate/which=best/recon_per_feature")) == 1
    assert len(acc.Images("figures/recon_per_feature")) == 1  # training's own: untouched
    # Extended, the run keeps its old end's evaluation (moved aside): its figures stay in
    # TensorBoard at their step beside the new end's (an evaluation of the new end replaced
    # the old end's event file: its folder was kept, its figures there were lost).
    c.train.epochs = 3
    experiment.train_and_evaluate(c, str(tmp_path))
    evaluate.evaluate_workdir(str(tmp_path))
    evaluate.evaluate_workdir(str(tmp_path))
    assert os.path.isdir(tmp_path / "evaluations" / "which=latest,epoch=2")
    acc = ea.EventAccumulator(str(tmp_path / "tb"), {ea.IMAGES: 0})
    acc.Reload()
    steps = json.loads((tmp_path / "config.json").read_text())["dataset"]["steps_per_epoch"]
    assert [e.step for e in acc.Images(tag)] == [2 * steps, 3 * steps]
    # ... as training's own figures are, at each end's last step (all at step 0, where the
    # two ends could not be told apart, passed every test: a mutation check)
    assert [e.step for e in acc.Images("figures/recon_per_feature")] == [2 * steps, 3 * steps]


def test_train_names_a_sweep_files_get_sweep(tmp_path):
    """`ae-jax train --config=ablations/beta_vae` trained the base config alone without a
    word of the sweep the file declares: the command now warns when the file defines one."""
    from ae_jax.commands import train as train_command

    configs = os.path.join(ROOT, "ae_jax", "configs")
    assert train_command._defines_get_sweep(os.path.join(configs, "ablations", "beta_vae.py"))
    assert not train_command._defines_get_sweep(os.path.join(configs, "seed_sparse.py"))
    reexport = os.path.join(ROOT, "experiments", "ablations", "depth.py")
    assert train_command._defines_get_sweep(reexport)  # imports it from ae_jax.configs
    inner = tmp_path / "inner.py"
    inner.write_text("def get_config():\n    def get_sweep():\n        return []\n")
    assert not train_command._defines_get_sweep(str(inner))
    assert not train_command._defines_get_sweep(str(tmp_path / "missing.py"))
