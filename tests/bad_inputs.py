"""The bad inputs a user may give, each with the message they see (README table + tests).

Each case is (what the user did, a function of a scratch directory that does it). Run
`python scripts/bad_inputs_table.py` to print the README's table from these cases.
"""

import os

import numpy as np

from ae_jax import config as config_lib
from ae_jax import experiment
from ae_jax import sweeps as sweep
from ae_jax.configs import seed_simple
from ae_jax.evaluation import evaluate
from ae_jax.evaluation import trained as inference
from ae_jax.sweeps import overrides as multi


def _cfg(**overrides):
    c = seed_simple.get_config()
    c.train.epochs, c.eval.at_end, c.train.figures, c.train.tensorboard = 1, False, False, False
    return multi.apply_overrides(c, {k.replace("__", "."): v for k, v in overrides.items()})


def _run(d, **overrides):
    return experiment.train_and_evaluate(_cfg(**overrides), os.path.join(d, "run"))


def _csv(d, text, **overrides):
    path = os.path.join(d, "data.csv")
    with open(path, "w") as f:
        f.write(text)
    return _run(d, data__path=path, **overrides)


_ROWS = "".join(f"{i},{i % 7}\n" for i in range(20))


def _mismatch(d):
    _run(d)  # breast_cancer: 30 features
    np.save(os.path.join(d, "x.npy"), np.ones((10, 18), np.float32))
    return _run(d, data__path=os.path.join(d, "x.npy"))


def _encode_wrong_columns(d):
    _run(d)
    return inference.load(os.path.join(d, "run")).encode(np.ones((4, 29), np.float32))


def _other_architecture(d):
    _run(d)
    path = os.path.join(d, "run", "config.json")
    text = open(path).read().replace('"latent_dim": 9', '"latent_dim": 4')
    open(path, "w").write(text)
    return inference.load(os.path.join(d, "run"))


def _misspelt_in_python(d):
    c = _cfg()  # as a config file's get_config() or a notebook would
    c.train.epoch = 2
    return experiment.train_and_evaluate(c, os.path.join(d, "run"))


def _foreign_dir(d):
    os.makedirs(os.path.join(d, "photos"))
    open(os.path.join(d, "photos", "cat.jpg"), "w").close()
    return evaluate.evaluate_workdir(os.path.join(d, "photos"))


def _train_into_a_folder_of_files(d):
    os.makedirs(os.path.join(d, "photos"))
    open(os.path.join(d, "photos", "cat.jpg"), "w").close()
    return experiment.train_and_evaluate(_cfg(), os.path.join(d, "photos"))


def _under_a_file(d):
    open(os.path.join(d, "file"), "w").close()
    return experiment.train_and_evaluate(_cfg(), os.path.join(d, "file", "run"))


def _in_use(d):
    from ae_jax.workdir import WorkdirLock

    os.makedirs(os.path.join(d, "run"))
    with WorkdirLock(os.path.join(d, "run")):  # Another process's lock, as seen from here.
        import subprocess
        import sys

        code = f"from tests.bad_inputs import _run; import sys; _run({d!r})"
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        raise_from_child(r.stderr)


def raise_from_child(stderr: str):
    from ae_jax.errors import UserError

    line = [ln for ln in stderr.splitlines() if "UserError: " in ln][-1]
    raise UserError(line.split("UserError: ", 1)[1])


CASES = [
    ("unknown model", lambda d: _run(d, model__name="transformer")),
    (
        "unknown activation",
        lambda d: _run(d, model__activation="swish2", model__encoder_widths=(8,)),
    ),
    ("unknown optimizer", lambda d: _run(d, optim__name="adamm")),
    ("a setting the optimizer does not take", lambda d: _run(d, optim__momentum=0.9)),
    ("non-positive size", lambda d: _run(d, model__latent_dim=0)),
    ("negative layer width", lambda d: _run(d, model__encoder_widths=(16, -4))),
    ("wrong type in a sweep entry or Python override", lambda d: _run(d, train__epochs=2.5)),
    ("misspelt field in a sweep entry or Python override", lambda d: _run(d, loss__l1_wieght=0.1)),
    ("a misspelt field in a config file or in Python", _misspelt_in_python),
    ("None for a required setting", lambda d: _run(d, model__activation=None)),
    (
        "Bernoulli likelihood on data outside [0, 1]",
        lambda d: _run(d, loss__recon="bce", data__scaling="standard"),
    ),
    (
        "KL sparsity on a non-sigmoid code",
        lambda d: _run(d, loss__sparsity="kl", model__code_activation="relu"),
    ),
    ("missing data file", lambda d: _run(d, data__path="shop.csv")),
    ("empty file", lambda d: _csv(d, "")),
    ("header only", lambda d: _csv(d, "a,b\n")),
    ("ragged row", lambda d: _csv(d, "a,b\n1,2\n3\n4,5\n")),
    ("text in a numeric column", lambda d: _csv(d, "a,b\n" + _ROWS + "7,oops\n")),
    ("empty cell", lambda d: _csv(d, "a,Month\n1,Feb\n2,\n3,Mar\n")),
    ("NaN in the data", lambda d: _csv(d, "a,b\n1,2\n3,nan\n4,5\n")),
    ("infinite value", lambda d: _csv(d, "a,b\n1,2\n3,4\n-inf,5\n")),
    ("unknown label column", lambda d: _csv(d, "a,b\n" + _ROWS, data__label_column="Revenue")),
    ("too few rows", lambda d: _csv(d, "a,b\n1,2\n")),
    ("data with another feature count than the trained model", _mismatch),
    ("rows with the wrong columns given to ae_jax.load(D).encode", _encode_wrong_columns),
    ("checkpoint of a different architecture", _other_architecture),
    ("evaluating an empty directory", lambda d: evaluate.evaluate_workdir(d)),
    ("evaluating a foreign directory", _foreign_dir),
    ("training into a folder of other files", _train_into_a_folder_of_files),
    ("workdir that cannot be created", _under_a_file),
    ("a second process on a workdir", _in_use),
    (
        "runs that cannot train together",
        lambda d: multi.train_together(_cfg(), [{"train.seed": 0}, {"model.latent_dim": 4}], d),
    ),
    ("malformed --shard", lambda d: sweep.parse_shard("3/2")),
    ("non-finite loss weight", lambda d: config_lib.validate(_cfg(loss__beta=float("nan")))),
]
