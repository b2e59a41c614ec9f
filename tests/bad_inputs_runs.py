"""Bad inputs about runs and the command line (README table rows; see tests/bad_inputs.py)."""

import os
import subprocess
import sys

from ae_jax import sweeps
from ae_jax.errors import UserError
from tests.bad_inputs import _ROWS, _csv, _run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(d, *args, module="experiments.main", env=None):
    """Runs a launcher; its `error: ` paragraph becomes a UserError (exit status 2 checked)."""
    r = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AE_JAX_COMPILATION_CACHE": "off", **(env or {})},
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    if r.returncode != 2 or len(lines) != 1 or "Traceback" in r.stderr:
        raise AssertionError(
            f"expected one error paragraph and exit 2, got {r.returncode}:\n{r.stderr[-3000:]}"
        )
    raise UserError(lines[0][len("error: ") :])


SEED = "--config=experiments/configs/seed_sparse.py"


def _drift(d):
    _run(d)
    return _run(d, model__latent_dim=4, optim__learning_rate=0.1)


def _fewer_epochs(d):
    _run(d, train__epochs=2)
    return _run(d, train__epochs=1)


def _longer_cosine(d):
    _run(d, optim__schedule="cosine")
    return _run(d, optim__schedule="cosine", train__epochs=3)


def _broken_config_json(d):
    _run(d)
    with open(os.path.join(d, "run", "config.json"), "w") as f:
        f.write('{"data": {"name": "breast_')
    return _run(d)


def _deleted_config_json(d):
    _run(d)
    os.remove(os.path.join(d, "run", "config.json"))
    return _run(d)


def _deleted_preprocessor_json(d):
    _run(d)
    os.remove(os.path.join(d, "run", "preprocessor.json"))
    return _run(d)


def _broken_summary(d):
    _run(d)
    with open(os.path.join(d, "run", "summary.json"), "w") as f:
        f.write("{")
    return _run(d)


def _no_metrics(d):
    _run(d)
    for name in ("summary.json", "metrics.jsonl"):
        os.remove(os.path.join(d, "run", name))
    return _run(d)


def _data_edited(d):
    _csv(d, "a,b\n" + _ROWS)
    return _csv(d, "a,b\n" + _ROWS.replace("0,0\n", "-5,0\n", 1))  # a's minimum moved


def _data_grown(d):
    _csv(d, "a,b\n" + _ROWS)
    return _csv(d, "a,b\n" + _ROWS + _ROWS[:40])  # more rows, every value in range


def _config_file(d, body, params=""):
    path = os.path.join(d, "my_config.py")
    with open(path, "w") as f:
        f.write(f"def get_config({params}):\n    {body}\n")
    return path


def _sweep_file(d, returned):
    path = os.path.join(d, "my_sweep.py")
    with open(path, "w") as f:
        f.write(
            "from ae_jax.configs import seed_sparse\nget_config = seed_sparse.get_config\n"
            f"def get_sweep():\n    return {returned}\n"
        )
    return path


def _colon_in_config_path(d):
    """'cf/my:cfg.py' was read as the file 'cf/my' with the argument 'cfg.py': "no config
    file 'cf/my'" (a probe), though the file exists."""
    folder = os.path.join(d, "cf")
    os.makedirs(folder)
    with open(os.path.join(folder, "my:cfg.py"), "w") as f:
        f.write("from ae_jax.configs import seed_sparse\nget_config = seed_sparse.get_config\n")
    return cli(d, f"--config={folder}/my:cfg.py", f"--workdir={d}/w")


CASES = [
    ("rerun with another config", _drift),
    ("rerun on a data file edited since", _data_edited),
    ("rerun on a data file grown since", _data_grown),
    ("rerun with fewer epochs", _fewer_epochs),
    ("more epochs under a length-dependent schedule", _longer_cosine),
    ("damaged config.json", _broken_config_json),
    ("config.json deleted from a finished run", _deleted_config_json),
    ("preprocessor.json deleted from a finished run", _deleted_preprocessor_json),
    ("damaged summary.json", _broken_summary),
    ("metrics.jsonl deleted while checkpoints remain", _no_metrics),
    (
        "AE_JAX_FIGURE_WORKERS not a whole number",
        lambda d: cli(d, SEED, f"--workdir={d}/w", env={"AE_JAX_FIGURE_WORKERS": "two"}),
    ),
    (
        "a model too large for memory",
        lambda d: cli(d, SEED, f"--workdir={d}/w", "--config.model.encoder_widths=(10000000,)"),
    ),
    ("a sweep entry that is not a dict", lambda d: sweeps.expand([{}, "lr=1"], d)),
    ("a run name that is not a directory name", lambda d: sweeps.named("../up", {})),
    (
        "two runs with the same name",
        lambda d: sweeps.expand([{"loss.beta": 1.0}, {"loss.beta": 1.0}], d),
    ),
    (
        "misspelt field on the command line",
        lambda d: cli(d, SEED, f"--workdir={d}/w", "--config.loss.betta=2"),
    ),
    (
        "misspelt field on the command line, its value after a space",
        lambda d: cli(d, SEED, f"--workdir={d}/w", "--config.loss.betta", "2"),
    ),
    (
        "wrong type on the command line",
        lambda d: cli(d, SEED, f"--workdir={d}/w", "--config.train.epochs=2.5"),
    ),
    (
        "unknown field on the command line",
        lambda d: cli(d, SEED, f"--workdir={d}/w", "--config.no_such_field=1"),
    ),
    (
        "a config file that does not exist",
        lambda d: cli(d, "--config=experiments/configs/nope.py", f"--workdir={d}/w"),
    ),
    ("a config file whose path holds ':'", _colon_in_config_path),
    (
        "a config file that is not valid Python",
        lambda d: cli(d, "--config=" + _config_file(d, "return (1,"), f"--workdir={d}/w"),
    ),
    (
        "a sweep whose get_sweep() returns a dict",
        lambda d: cli(
            d,
            "--config=" + _sweep_file(d, "{'loss.l1_weight': [0.0, 1e-4]}"),
            f"--workdir={d}/w",
            module="experiments.sweep",
        ),
    ),
    (
        "a config file whose get_config() raises",
        lambda d: cli(
            d, "--config=" + _config_file(d, "raise KeyError('data')"), f"--workdir={d}/w"
        ),
    ),
    (
        "a config file setting a field to a value of another type",
        lambda d: cli(
            d,
            "--config="
            + _config_file(
                d,
                "from ae_jax.configs import seed_simple; c = seed_simple.get_config(); "
                "c.train.epochs = 'ten'; return c",
            ),
            f"--workdir={d}/w",
        ),
    ),
    (
        "a config file whose get_config(arg) is given no argument",
        lambda d: cli(d, "--config=" + _config_file(d, "return None", "size"), f"--workdir={d}/w"),
    ),
    (
        "a config file whose get_config() returns a dict",
        lambda d: cli(d, "--config=" + _config_file(d, "return {'train': {}}"), f"--workdir={d}/w"),
    ),
    (
        "an argument to a config that takes none",
        lambda d: cli(d, "--config=experiments/configs/conv_ae_mnist.py:big", f"--workdir={d}/w"),
    ),
    (
        "a bare ':' after a config that takes no argument",
        lambda d: cli(d, "--config=experiments/configs/conv_ae_mnist.py:", f"--workdir={d}/w"),
    ),
    (
        "a malformed value on the command line",
        lambda d: cli(d, SEED, f"--workdir={d}/w", "--config.train.epochs=abc"),
    ),
    (
        "unsetting a required field",
        lambda d: cli(d, SEED, f"--workdir={d}/w", "--config.train.epochs=none"),
    ),
    ("a misspelt flag", lambda d: cli(d, SEED, f"--workdir={d}/w", "--helpconfg")),
    (
        "an unknown flag",
        lambda d: cli(d, f"--workdir={d}/w", "--bogus", module="experiments.evaluate"),
    ),
    ("a VAE objective on an autoencoder", lambda d: _run(d, loss__tc_weight=2.0)),
    (
        "IWAE training without a likelihood",
        lambda d: _run(d, model__name="vae", loss__iw_samples_train=5),
    ),
    (
        "free bits with IWAE training",
        lambda d: _run(
            d,
            model__name="vae",
            loss__recon="gaussian",
            loss__iw_samples_train=5,
            loss__free_bits=0.5,
        ),
    ),
    ("an unknown MMD kernel", lambda d: _run(d, model__name="vae", loss__mmd_kernel="gauss")),
]
