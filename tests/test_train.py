"""End to end: the launcher's workdir contract, the seed configs, PCA, bad input."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA

from ae_jax import data as data_lib
from ae_jax import experiment, runtime
from ae_jax.config import default_config, validate
from ae_jax.configs import seed_deep, seed_simple, seed_sparse, seed_vae
from ae_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = {
    "seed_simple": seed_simple,
    "seed_sparse": seed_sparse,
    "seed_deep": seed_deep,
    "seed_vae": seed_vae,
}


def _launch(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "experiments.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_launcher_writes_the_workdir_contract(tmp_path):
    workdir = tmp_path / "run"
    r = _launch(
        "--config=experiments/configs/seed_vae.py",
        f"--workdir={workdir}",
        "--config.data.name=digits",
        "--config.train.epochs=3",
        "--config.model.latent_dim=4",
        "--config.eval.iw_samples=20",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "epoch 3/3" in r.stderr and "rows/s" in r.stderr and "ETA" in r.stderr
    assert "| run | training |" in r.stderr  # the training summary table, before evaluation
    assert "; writing eval.json, figures and summaries of 1 run(s)" in r.stderr
    cfg = json.loads((workdir / "config.json").read_text())
    assert cfg["model"]["latent_dim"] == 4 and cfg["dataset"]["num_features"] == 64
    for key in (
        "data.path",
        "train.epochs",
        "train.batch_size",
        "train.seed",
        "optim.name",
        "optim.learning_rate",
        "model.latent_dim",
    ):
        section, field = key.split(".")
        assert field in cfg[section], key
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for key in (
        "epoch",
        "step",
        "train/loss",
        "train/recon",
        "train/kl",
        "eval/loss",
        "eval/recon",
        "eval/kl",
        "eval/mse",
        "epoch_s",
        "rows_per_s",
    ):
        assert key in rows[-1], key
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "done" and summary["n_params"] > 0 and summary["wall_s"] > 0
    assert summary["eval/mse"] == rows[-1]["eval/mse"]
    figures = set(os.listdir(workdir / "figures"))
    assert {"learning_curves.png", "reconstructions.png", "samples.png"} <= figures
    assert (workdir / "preprocessor.json").exists()


@pytest.mark.parametrize("name", sorted(SEEDS))
@pytest.mark.parametrize("source", ["bundled", "purchase_csv"])
def test_seed_configs_train_on_bundled_data_and_purchase_csv(name, source, tmp_path, purchase_csv):
    c = SEEDS[name].get_config()
    if source == "purchase_csv":  # (the bundled half runs each seed config as shipped, to its
        c.data.path = purchase_csv  # figures; this half checks training on the 18 columns)
        c.eval.at_end, c.train.figures = False, False
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path / name))
    rows = [json.loads(r) for r in open(tmp_path / name / "metrics.jsonl")]
    assert len(rows) == c.train.epochs and summary["status"] == "done"
    assert rows[-1]["eval/loss"] < rows[0]["eval/loss"]
    if source == "purchase_csv":
        assert json.load(open(tmp_path / name / "config.json"))["dataset"]["num_features"] == 18


def test_linear_autoencoder_reaches_pca(tmp_path):
    """PCA is the optimum of a linear AE: within 2% of PCA-8's validation MSE on digits."""
    c = default_config()
    c.data.name = "digits"
    c.model.latent_dim = 8
    c.model.code_activation = c.model.output_activation = "identity"
    c.optim.learning_rate, c.optim.schedule = 0.02, "cosine"
    c.train.epochs, c.train.batch_size, c.train.log_every = 300, 128, 100
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path))
    ds = data_lib.load_dataset(c.data)
    pca = PCA(8).fit(ds.train)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(ds.val)) - ds.val) ** 2))
    assert summary["eval/mse"] <= 1.02 * pca_mse
    assert summary["eval/mse"] >= 0.9 * pca_mse  # sanity: the same split and metric


def _tiny(**overrides):
    c = seed_simple.get_config()
    c.train.epochs, c.eval.at_end, c.train.figures = 1, False, False  # refusals and training
    for dotted, value in overrides.items():
        section, field = dotted.split("__")
        c[section][field] = value
    return c


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            {"model__name": "transformer"},
            r"model.name: got 'transformer'; expected one of \['autoe",
        ),
        (
            {"model__activation": "swishy", "model__encoder_widths": (4,)},
            r"model.activation: unknown activation 'swishy'",
        ),
        ({"optim__name": "adamax2"}, r"optim.name: got 'adamax2'; expected one of \['adam'"),
        ({"model__latent_dim": 0}, r"model.latent_dim: got 0; expected a positive integer"),
        ({"model__encoder_widths": (8, -1)}, r"model.encoder_widths: got \(8, -1\)"),
        ({"train__batch_size": -5}, r"train.batch_size: got -5; expected a positive integer"),
        ({"optim__momentum": 0.9}, r"optim.momentum: optax.adam has no setting 'momentum'"),
        # optax takes these and every update is NaN: refused, not trained to NaN
        ({"optim__eps": float("nan")}, r"optim.eps: got nan; expected a finite number >= 0.0\.$"),
        ({"optim__b2": 1.0}, r"optim.b2: got 1.0; expected a finite number in \[0.0, 1.0\)"),
        # the other ends of ranges (each accepted by a mutation that passed every test)
        ({"optim__b1": 1.0}, r"optim.b1: got 1.0; expected a finite number in \[0.0, 1.0\)"),
        ({"data__val_fraction": 1.0}, r"data.val_fraction: got 1.0; expected a finite number in"),
        ({"data__limit": -1}, r"data.limit: got -1; expected an integer >= 0"),
        ({"data__limit": True}, r"data.limit: got True \(bool\); expected int, like the default"),
        ({"train__checkpoint_every": -1}, r"train.checkpoint_every: got -1; expected an integer"),
        # settings that do nothing here, accepted and ignored without a word before
        ({"loss__beta": 4.0}, r"loss.beta=4.0 is a VAE objective, but model.name is 'autoen"),
        ({"loss__sparsity_weight": 100.0}, r"loss.sparsity_weight: got 100.0; expected 0 with"),
        (
            {"data__name": "mnist", "data__label_column": "none"},
            r"data.label_column: got 'none'; expected '' with data.name='mnist', whose files",
        ),
        ({"data__name": "cifar10", "data__image_shape": (32, 32)}, r"data.image_shape: got"),
        (
            {"data__path": "/nonexistent/shop.csv"},
            r"data.path: no such file '/nonexistent/shop.csv'",
        ),
    ],
)
def test_bad_config_is_refused_before_any_work(overrides, match, tmp_path):
    with pytest.raises(UserError, match=match):
        experiment.train_and_evaluate(_tiny(**overrides), str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()  # Nothing written, nothing compiled.


def test_switching_a_seed_config_to_sgd_says_which_settings_to_unset():
    """seed_deep sets Adadelta-style settings (optim.eps, optim.rho) that optax.sgd does not
    take: the message names both and the flags that unset them, which then validate."""
    c = seed_deep.get_config()
    c.optim.name = "sgd"
    with pytest.raises(UserError) as e:
        validate(c)
    assert "The config sets optim.eps=1e-07, optim.rho=0.95: unset them for sgd with " in str(
        e.value
    ) and str(e.value).endswith(
        "--config.optim.eps=none --config.optim.rho=none (from Python: config.optim.eps = "
        "None; config.optim.rho = None)."  # (from Python the flags were no way out: a probe)
    )
    c.optim.eps, c.optim.rho = None, None
    validate(c)


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_bad_data_files_name_the_problem(tmp_path, purchase_csv):
    cases = [
        (_write(tmp_path / "empty.csv", ""), "is empty"),
        (
            _write(tmp_path / "nan.csv", "a,b\n1,2\n3,nan\n4,5\n6,7\n"),
            r"column 'b' has NaN or infinite values at row 2 \(line 3\)",
        ),
        (_write(tmp_path / "inf.csv", "a,b\n1,2\n3,4\ninf,5\n6,7\n"), r"column 'a' .* row 3"),
        (
            _write(
                tmp_path / "typo.csv",
                "a,b\n" + "".join(f"{i},{i}\n" for i in range(20)) + "7,oops\n",
            ),
            r"column 'b' cannot be encoded.*'oops'",
        ),
    ]
    for path, match in cases:
        with pytest.raises(UserError, match=match):
            experiment.train_and_evaluate(_tiny(data__path=path), str(tmp_path / "w"))


def test_feature_count_must_match_a_trained_model(tmp_path, purchase_csv):
    workdir = str(tmp_path / "w")
    experiment.train_and_evaluate(_tiny(data__path=purchase_csv), workdir)
    before = open(os.path.join(workdir, "metrics.jsonl")).read()
    # The same file name, other contents: breast-cancer's 30 columns.
    features, _ = load_breast_cancer(return_X_y=True)
    np.savetxt(
        purchase_csv,
        features,
        delimiter=",",
        header=",".join(f"f{i}" for i in range(30)),
        comments="",
    )
    with pytest.raises(UserError, match="trained on 18 features.*this data has 30"):
        experiment.train_and_evaluate(_tiny(data__path=purchase_csv), workdir)
    assert open(os.path.join(workdir, "metrics.jsonl")).read() == before  # nothing lost


def test_launcher_prints_one_paragraph_and_no_traceback(tmp_path):
    r = _launch(
        "--config=experiments/configs/seed_simple.py",
        f"--workdir={tmp_path}/w",
        "--config.optim.name=adamm",
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "optim.name: got 'adamm'" in err[0]


def test_a_run_compiles_only_its_training_and_evaluation_programs(tmp_path):
    """Host data reaches the device by `device_put`, never through small eager programs
    (`jnp.asarray` of a numpy array compiles, or loads from the cache, one per shape: ~10 of
    them took ~0.13 s of a cold run). A run's programs: initialisation, the epoch and the
    per-epoch validation, and the end-of-run evaluation pass."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.main",
            "--config=experiments/configs/seed_sparse.py",
            f"--workdir={tmp_path / 'run'}",
            "--config.data.name=digits",
            "--config.train.epochs=2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_LOG_COMPILES": "1", "AE_JAX_COMPILATION_CACHE": "off"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    compiled = sorted(
        line.split("Compiling jit(")[1].split(")")[0]
        for line in r.stderr.splitlines()
        if "Compiling jit(" in line
    )
    assert compiled == ["_deterministic", "init", "single", "single"], compiled


PYTHON_API_RUN = """
import logging as std_logging
import sys
if sys.argv[2] == "absl_logger_first":  # as a notebook's setup can: absl then logs through it
    std_logging.getLogger("absl")
from absl import logging
import ae_jax
from ae_jax.configs import seed_sparse
if sys.argv[2] == "quiet":
    logging.set_verbosity("warning")  # the user's choice: left alone
c = seed_sparse.get_config()
c.train.epochs, c.train.figures = 2, False
c.eval.at_end = sys.argv[2] != "no_eval"
if sys.argv[2] == "absl_logger_first":
    c.train.batch_size = 100  # 455 training rows: 5 steps per epoch (else 1)
ae_jax.train_and_evaluate(c, sys.argv[1])
"""


@pytest.mark.parametrize("mode", ["default", "quiet", "no_eval", "absl_logger_first"])
def test_the_python_api_says_what_it_does_unless_told_not_to(tmp_path, mode):
    """Called from Python (no launcher configures logging), a run prints the launcher's lines
    on stderr, without library chatter, also when a logger named "absl" was made before absl
    was imported (its records then name absl's module, not orbax's); with absl's verbosity set
    by the user it does not. Each phase line says what it does: not evaluating, it does not
    claim to; one step per epoch is "1 step/epoch"."""
    r = subprocess.run(
        [sys.executable, "-c", PYTHON_API_RUN, str(tmp_path / "run"), mode],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    if mode == "no_eval":
        assert not os.path.exists(tmp_path / "run" / "eval.json")
        assert "evaluat" not in r.stderr.replace("not evaluated (eval.at_end=False)", "")
        assert "not evaluated (eval.at_end=False); writing summaries of 1 run(s)" in r.stderr
        return
    assert os.path.exists(tmp_path / "run" / "eval.json")
    assert "; writing eval.json and summaries of 1 run(s)" in r.stderr or mode == "quiet"
    lines = ("compiling 1 model(s) autoencoder", "epoch 2/2 | train loss", "evaluating 1 model(s)")
    if mode == "quiet":
        assert not any(line in r.stderr for line in lines), r.stderr[-3000:]
    else:
        assert all(line in r.stderr for line in lines), r.stderr[-3000:]
        # No record of orbax's own (the devices line names its version among the packages').
        records = [ln for ln in r.stderr.splitlines() if "devices: " not in ln]
        assert not [ln for ln in records if "orbax" in ln], r.stderr[-3000:]
        assert r.stderr.count("compiling 1 model(s)") == 1
        steps = "(5 steps/epoch)" if mode == "absl_logger_first" else "(1 step/epoch)"
        assert steps in r.stderr, r.stderr[-3000:]  # "(1 steps/epoch)" was said
        assert len(r.stderr.splitlines()) - len(records) == 1  # the devices line, once


@pytest.fixture
def plain_logging():
    """Logging as a plain Python process leaves it (pytest may have set levels); restored."""
    absl_logger, root = logging.getLogger("absl"), logging.getLogger()
    saved = absl_logger.level, root.level
    absl_logger.setLevel(logging.NOTSET)
    root.setLevel(logging.WARNING)
    yield absl_logger
    absl_logger.setLevel(saved[0])
    root.setLevel(saved[1])


def test_progress_log_nests_and_restores_only_what_it_changed(plain_logging):
    absl_logger = plain_logging
    with runtime.progress_log():
        with runtime.progress_log():  # train_and_evaluate -> train_group
            assert absl_logger.level == logging.INFO
        assert absl_logger.level == logging.INFO  # the inner call's end restores nothing
    assert absl_logger.level == logging.NOTSET and not absl_logger.filters
    with pytest.raises(ValueError), runtime.progress_log():
        raise ValueError
    assert absl_logger.level == logging.NOTSET and not absl_logger.filters
    with runtime.progress_log():
        absl_logger.setLevel(logging.DEBUG)  # the user's choice, made during a call: kept
    assert absl_logger.level == logging.DEBUG and not absl_logger.filters


def _record(path, level, exc=None, msg="save failed in %s"):
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("absl", level, path, 1, msg, ("thread",), exc_info)


def test_the_launchers_log_keeps_orbaxs_errors_to_one_line_naming_the_exception():
    quiet = runtime._LibraryInfoFilter()
    orbax = os.path.join(os.sep, "env", "site-packages", "orbax", "checkpoint", "future.py")
    try:
        raise OSError(28, "No space left on device")
    except OSError as e:
        full = e
    r = _record(orbax, logging.ERROR, full)
    assert quiet.filter(r) and r.exc_info is None and r.exc_text is None
    assert r.getMessage() == "save failed in thread (OSError: [Errno 28] No space left on device)"
    r = _record(orbax, logging.ERROR, full, msg="raised: [Errno 28] No space left on device %s")
    assert quiet.filter(r) and r.getMessage() == "raised: [Errno 28] No space left on device thread"
    r = _record(orbax, logging.ERROR, TimeoutError())  # no words of its own: named by type
    assert quiet.filter(r) and r.getMessage() == "save failed in thread (TimeoutError)"
    assert not quiet.filter(_record(orbax, logging.INFO))  # chatter: dropped
    ours = _record(os.path.join(os.sep, "repo", "ae_jax", "x.py"), logging.ERROR, full)
    assert quiet.filter(ours) and ours.exc_info is not None  # our own traceback: kept


def test_a_damaged_orbax_checkpoints_unretrieved_reads_are_not_said():
    """Its other reads fail after the first, whose error names the checkpoint; asyncio said
    each as its task was collected ('Task exception was never retrieved', with a traceback:
    four in a Python 3.12 run's stderr under load). Other asyncio errors are kept."""
    quiet = runtime._LibraryInfoFilter()
    late = ValueError('OUT_OF_RANGE: Error reading "params.kernel/0.0" in OCDBT database at x')
    msg = "Task exception was never retrieved\nfuture: <Task finished name='Task-54'>"
    r = logging.LogRecord("asyncio", logging.ERROR, "base_events.py", 1, msg, (), None)
    r.exc_info = (ValueError, late, None)
    assert not quiet.filter(r)
    r.exc_info = (ValueError, ValueError("something else"), None)
    assert quiet.filter(r)


def test_the_compilation_cache_directory_follows_its_switches_and_says_a_file_in_the_way(
    tmp_path, monkeypatch, caplog
):
    """AE_JAX_COMPILATION_CACHE: words turn it off ('disabled' made a folder of that name,
    logged as 'compilation cache: disabled', a probe); a relative folder is the one under
    where the command started, named in full; a file in its place is said (not 'File
    exists'), once however often a launcher asks."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    for word in ("off", "disabled", "None", "0"):
        monkeypatch.setenv(runtime.ENV, word)
        assert runtime.compilation_cache_dir() == ""
    monkeypatch.setenv(runtime.ENV, "relcache")
    caplog.set_level("WARNING")
    assert runtime.compilation_cache_dir() == str(tmp_path / "relcache")
    assert not caplog.text
    # A word like an 'off' (a typo, 'of') stays a folder, but is said, once.
    monkeypatch.setenv(runtime.ENV, "of")
    assert (
        runtime.compilation_cache_dir() == runtime.compilation_cache_dir() == str(tmp_path / "of")
    )
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"{runtime.ENV}='of' is read as a folder for the compilation cache, "
        f"{tmp_path / 'of'}; to turn the cache off, set it to 'off'"
    ]
    caplog.clear()
    for name in ("node", "one", "notes", "home", "n", "not", "now"):  # (looser rules warned)
        monkeypatch.setenv(runtime.ENV, name)
        runtime.compilation_cache_dir()
    assert not caplog.text
    monkeypatch.delenv(runtime.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.compilation_cache_dir() == str(tmp_path / "xdg" / "ae_jax" / "xla")
    assert runtime.compilation_cache_dir(enabled=False) == ""
    (tmp_path / "taken").write_text("a file")
    monkeypatch.setenv(runtime.ENV, str(tmp_path / "taken"))
    caplog.set_level("WARNING")
    assert runtime.enable_compilation_cache() == runtime.enable_compilation_cache() == ""
    said = [r.getMessage() for r in caplog.records if "cannot be created" in r.getMessage()]
    assert said == [
        f"compilation cache {str(tmp_path / 'taken')!r} cannot be created (a file is there); "
        "compiling without it"
    ]


@pytest.mark.parametrize(
    "recon, said", [("bce", " (an importance-weighted bound, k = 4) ..."), ("mse", " ...")]
)
def test_the_evaluating_line_names_an_iwae_bound_only_where_there_is_one(
    tmp_path, caplog, recon, said
):
    """A VAE under MSE draws one sample per row and reports no importance-weighted bound, but
    the log said "evaluating 1 model(s) together on 114 validation rows (IWAE with k = 1000)"
    (a README walkthrough); `ae-jax evaluate` already said none. Nor was it named an IWAE (a
    bound on log p(x)) where eval.json names it a BCE bound, on grey data: a neutral name."""
    c = seed_vae.get_config()
    c.train.epochs, c.loss.recon, c.eval.iw_samples = 1, recon, 4
    c.train.figures = c.train.tensorboard = c.train.checkpoints = False
    caplog.set_level("INFO")
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    (line,) = [r.getMessage() for r in caplog.records if "model(s) together on" in r.getMessage()]
    assert line.endswith(f"validation rows{said}"), line
    assert ("vae/iwae_k" in json.loads((tmp_path / "run" / "eval.json").read_text())) == (
        recon == "bce"
    )


def test_a_bfloat16_vae_on_a_table_finishes_with_its_figures(tmp_path):
    """Its samples' decodings reached the figures in bfloat16, whose drawing refused them
    ("Unsuitable type bfloat16"): the run failed after training, and on every rerun (a probe)."""
    c = seed_vae.get_config()
    c.train.epochs, c.model.compute_dtype, c.eval.iw_samples = 1, "bfloat16", 4
    c.train.tensorboard = c.train.checkpoints = False
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert summary["status"] == "done"
    assert os.path.getsize(tmp_path / "run" / "figures" / "samples.png") > 1000


def test_a_warm_up_cut_short_is_said_once(tmp_path, caplog):
    """The memory estimate built the run's optimizer for its state's shapes and said the
    warm-up cut short too: twice a run (a probe)."""
    c = seed_sparse.get_config()
    c.train.epochs, c.optim.schedule, c.optim.warmup_epochs = 1, "warmup_cosine", 3.0
    c.eval.at_end = c.train.figures = c.train.tensorboard = c.train.checkpoints = False
    caplog.set_level("WARNING")
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert caplog.text.count("optim.warmup_epochs=3.0 is not shorter than the run (1 epochs)") == 1


def test_the_log_ends_saying_the_runs_are_finished(tmp_path, caplog):
    """The log ended at "writing eval.json, figures and summaries ... in the background" and
    the process exited: a new user could not tell that the runs had finished. The last line
    says so, once every summary.json (what marks a run finished) is on disk."""
    runs = [str(tmp_path / "ok"), str(tmp_path / "diverges")]
    written: list[list[bool]] = []

    class Look(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("finished"):
                written.append([os.path.exists(os.path.join(r, "summary.json")) for r in runs])

    configs = []
    for lr in (0.1, 1e7):  # a huge step of plain SGD overflows
        c = seed_sparse.get_config()
        c.optim.name, c.optim.eps, c.optim.learning_rate = "sgd", None, lr
        c.train.epochs, c.model.output_activation = 4, "identity"
        c.train.tensorboard = c.train.checkpoints = False
        configs.append(c)
    caplog.set_level("INFO")
    look = Look()
    logging.getLogger().addHandler(look)
    try:
        experiment.train_group(configs, runs)
    finally:
        logging.getLogger().removeHandler(look)
    assert caplog.records[-1].getMessage() == (
        f"finished 2 run(s) (1 diverged), summary.json written: {runs[0]} ... {runs[1]}"
    )
    assert written == [[True, True]]
    caplog.clear()
    experiment._say_finished(["runs/one"], [{"status": "done"}])  # a run alone
    assert caplog.records[-1].getMessage() == "finished 1 run(s), summary.json written: runs/one"
