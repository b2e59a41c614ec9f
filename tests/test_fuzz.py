"""Properties of the losses, and fuzzing: malformed CSVs and invalid overrides always end in
our UserError (or a valid result), never in another exception."""

import csv
import io
import math

import hypothesis.extra.numpy as hnp
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import models
from ae_jax.errors import UserError
from ae_jax.sweeps import overrides as multi
from ae_jax.training import losses, optim

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
floats = st.floats(-20, 20, allow_nan=False, width=32)
arrays = hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=floats)


@FUZZ
@given(arrays, st.data())
def test_losses_are_nonnegative_where_they_must_be(x, data):
    y = data.draw(hnp.arrays(np.float32, x.shape, elements=floats))
    targets = data.draw(hnp.arrays(np.float32, x.shape, elements=st.floats(0, 1, width=32)))
    assert np.all(np.asarray(losses.squared_error(x, y)) >= 0)
    assert np.all(np.asarray(losses.bce_logits(x, targets)) >= -1e-5)
    assert np.all(np.asarray(losses.l1(x)) >= 0)
    assert np.all(np.asarray(losses.kl_normal(x, y)) >= -1e-4)


@FUZZ
@given(arrays, st.data())
def test_kl_is_zero_only_at_the_prior(mean, data):
    logvar = data.draw(hnp.arrays(np.float32, mean.shape, elements=st.floats(-5, 5, width=32)))
    kl = np.asarray(losses.kl_normal(mean, logvar))
    off_prior = (np.abs(mean) > 1e-2) | (np.abs(logvar) > 1e-2)
    assert np.all(kl[off_prior.any(-1)] > 0)
    assert float(losses.kl_normal(jnp.zeros_like(mean), jnp.zeros_like(mean)).max()) == 0.0


@FUZZ
@given(arrays)
def test_a_perfect_decoder_has_zero_reconstruction_error(x):
    assert np.all(np.asarray(losses.squared_error(x, x)) == 0)
    # Gaussian NLL of a perfect mean is its normaliser alone: the error term vanishes.
    logvar = jnp.zeros_like(x)
    nll = np.asarray(losses.gaussian_nll(x, logvar, x))
    np.testing.assert_allclose(nll, 0.5 * x.shape[-1] * math.log(2 * math.pi), rtol=1e-5)


CELLS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "",
            "TRUE",
            "false",
            "Feb",
            "Returning_Visitor",
            "NA",
            "?",
            " ",
            "nan",
            "inf",
            "-inf",
            "1e400",
            '"q"',
            "a,b",
            "0x10",
        ]
    ),
    st.text(max_size=6),
)


@FUZZ
@given(
    st.lists(st.text(min_size=0, max_size=6), min_size=0, max_size=5),
    st.lists(st.lists(CELLS, min_size=0, max_size=6), min_size=0, max_size=12),
    st.sampled_from(["ordinal", "onehot"]),
    st.sampled_from(["minmax", "standard", "none"]),
)
def test_malformed_csv_gives_our_error_or_a_dataset(tmp_path, header, rows, categorical, scaling):
    buf = io.StringIO()
    w = csv.writer(buf)
    if header:
        w.writerow(header)
    w.writerows(rows)
    path = tmp_path / "fuzz.csv"
    path.write_text(buf.getvalue())
    cfg = config_lib.default_config().data
    cfg.path, cfg.categorical, cfg.scaling = str(path), categorical, scaling
    try:
        ds = data_lib.load_dataset(cfg)
    except UserError as e:
        assert str(e) and "\n" not in str(e)  # one paragraph
        return
    assert np.isfinite(ds.train).all() and np.isfinite(ds.val).all()
    assert ds.train.shape[1] == ds.val.shape[1] == len(ds.columns)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_as_a_data_file(tmp_path, blob):
    for ext in (".csv", ".npy", ".npz"):
        path = tmp_path / f"blob{ext}"
        path.write_bytes(blob)
        cfg = config_lib.default_config().data
        cfg.path = str(path)
        try:
            data_lib.load_dataset(cfg)
        except UserError:
            pass


FIELDS = sorted(k for k in multi.config_lib.flatten_config(config_lib.default_config().to_dict()))
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10_000),
    floats,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 40), max_size=4).map(tuple),
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(FIELDS + ["model.nonexistent", "bogus"]), VALUES, min_size=1, max_size=3
    )
)
def test_random_overrides_give_our_error_or_a_valid_config(overrides):
    try:
        c = multi.apply_overrides(config_lib.default_config(), overrides)
        config_lib.validate(c)
    except UserError as e:
        assert str(e)
        return
    # A config that validates must also build its model and optimizer without surprises.
    models.build_model(c.model, 7)
    optim.make_optimizer(c.optim, 3, c.train.epochs)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_nonfinite_or_negative_weights_are_refused(value):
    c = config_lib.default_config()
    c.loss.beta = value
    with pytest.raises(UserError, match="loss.beta"):
        config_lib.validate(c)
