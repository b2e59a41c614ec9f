"""Layouts over 4 (fake CPU) devices equal one device: data parallel and models split."""

import json

import jax
import numpy as np
import pytest

from ae_jax import data as data_lib
from ae_jax import experiment, models
from ae_jax.configs import seed_deep, seed_vae
from ae_jax.errors import UserError
from ae_jax.sweeps import overrides as multi
from ae_jax.training import engine as engine_lib
from ae_jax.training import placement as parallel
from ae_jax.training import resources
from ae_jax.training.checkpoint import Checkpointer


def _config(mode):
    c = seed_deep.get_config()
    c.train.epochs, c.train.batch_size, c.train.parallel = 2, 100, mode
    c.eval.at_end, c.train.figures = False, False
    return c


def _params(workdir):
    ck = Checkpointer(str(workdir), read_only=True)
    params = ck.restore_raw(ck.epochs()[-1])["params"]
    ck.close()
    return params


def _rows(workdir):
    return [json.loads(r) for r in open(workdir / "metrics.jsonl")]


def test_there_are_four_devices():
    assert jax.device_count() == 4  # tests/conftest.py forces them


def test_data_parallel_equals_one_device(tmp_path):
    experiment.train_and_evaluate(_config("none"), str(tmp_path / "one"))
    experiment.train_and_evaluate(_config("data"), str(tmp_path / "data"))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6),
        _params(tmp_path / "one"),
        _params(tmp_path / "data"),
    )
    for a, b in zip(_rows(tmp_path / "one"), _rows(tmp_path / "data"), strict=True):
        assert a["eval/loss"] == pytest.approx(b["eval/loss"], rel=1e-5)


def test_a_vaes_validation_is_batched_alike_on_any_device_count(tmp_path):
    """Validation batches of 50 rows (not a multiple of 4 devices) hold the same rows in data
    parallel as on one device, padded with masked rows: a VAE's per-batch posterior draws
    and batch-statistic terms (the total correlation) then agree to float rounding. (Batches
    of 52 rows moved eval/recon by 1e-3 relative and the best epoch with it.)"""
    rows = []
    for mode in ("none", "data"):
        c = seed_vae.get_config()
        c.data.name, c.train.epochs, c.train.batch_size = "breast_cancer", 2, 100
        c.train.eval_batch_size, c.train.parallel, c.loss.tc_weight = 50, mode, 1.0
        c.eval.at_end, c.train.figures, c.train.tensorboard = False, False, False
        experiment.train_and_evaluate(c, str(tmp_path / mode))
        rows.append(_rows(tmp_path / mode))
    for a, b in zip(*rows, strict=True):
        for key in ("eval/recon", "eval/kl", "eval/tc", "eval/loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key  # tc: ~1e-4
    x = np.arange(11 * 2, dtype=np.float32).reshape(11, 2)
    for multiple in (1, 4):
        xp, mask = engine_lib.pad_batches(x, 5, multiple)
        assert xp.shape == (3, 5 if multiple == 1 else 8, 2)
        np.testing.assert_array_equal(xp[mask == 1], x)  # in order, 5 + 5 + 1 rows
        assert mask.sum(axis=1).tolist() == [5, 5, 1]


def test_the_layout_is_recorded_and_a_resume_under_another_is_said(tmp_path, caplog):
    """summary.json and each checkpoint record the device layout; a run resumed under another
    (one device, then data parallel over 4) says that its numbers now differ from an
    uninterrupted run's in the last bits (it was silent, and the layout nowhere)."""
    c = _config("none")
    (s,) = experiment.train_and_evaluate(c, str(tmp_path))
    assert s["layout"] == "one device of 4 device(s) (cpu, 1 process(es))"
    c.train.epochs, c.train.parallel = 3, "data"
    caplog.set_level("WARNING")
    (s,) = experiment.train_and_evaluate(c, str(tmp_path))
    assert s["layout"].startswith("data parallel over 4 device(s)") and s["epoch"] == 3
    assert "resuming under another device layout than the checkpoint was trained with" in (
        caplog.text
    )
    ck = Checkpointer(str(tmp_path), read_only=True)
    assert ck.meta(3)["layout"] == s["layout"]
    ck.close()


def test_models_split_over_devices_equals_one_device(tmp_path):
    overrides = [
        {"train.seed": s, "loss.l1_weight": w}
        for s, w in [(0, 0.0), (1, 1e-3), (2, 1e-2), (3, 0.1)]
    ]
    multi.train_together(_config("none"), overrides, str(tmp_path / "one"))
    multi.train_together(_config("models"), overrides, str(tmp_path / "split"))
    for o in overrides:
        name = multi.run_name(o)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            _params(tmp_path / "one" / name),
            _params(tmp_path / "split" / name),
        )


def test_layouts_place_arrays_on_every_device():
    data = parallel.Placement("data")
    x = data.replicated(np.ones((8, 3), np.float32))
    assert len(x.sharding.device_set) == 4 and x.sharding.is_fully_replicated
    split = parallel.Placement("models")
    h = split.per_model(np.arange(8, dtype=np.float32))
    assert [s.data.shape for s in h.addressable_shards] == [(2,)] * 4


def test_choose_mode():
    assert parallel.choose_mode("auto", 8, 100, 100, 4) == "models"
    assert parallel.choose_mode("auto", 1, 100, 100, 4) == "data"
    assert parallel.choose_mode("auto", 3, 99, 100, 4) == "none"
    assert parallel.choose_mode("auto", 8, 100, 100, 1) == "none"
    with pytest.raises(UserError, match=r"train.parallel='data' needs the batch, 99, to be"):
        parallel.choose_mode("data", 1, 99, 100, 4)
    # ... naming the field and a batch that divides (it named neither: a probe).
    with pytest.raises(
        UserError, match=r"devices: set train.batch_size to a multiple of 4 \(e.g. 96\)"
    ):
        parallel.choose_mode("data", 1, 99, 100, 4)
    # The batch a small split cuts train.batch_size to: both numbers named.
    cut = r"the batch, 455 \(train.batch_size=1000 cut to the training split's 455 rows\), to"
    with pytest.raises(UserError, match=cut):
        parallel.choose_mode("data", 1, 455, 100, 2, 1000)


def test_an_explicit_layout_that_cannot_work_is_refused_before_any_directory(tmp_path):
    c = _config("data")
    c.train.batch_size = 99
    with pytest.raises(UserError, match=r"train.parallel='data' needs the batch, 99"):
        experiment.train_and_evaluate(c, str(tmp_path / "run"))
    c = _config("models")
    c.train.num_models = 3
    with pytest.raises(
        UserError, match=r"train.parallel='models' needs .* \(3\) .*or use train.parallel='auto'"
    ):
        experiment.train_and_evaluate(c, str(tmp_path / "k3"))
    assert list(tmp_path.iterdir()) == []  # no workdir, lock or figures/ left behind


def test_memory_is_checked_per_device_of_the_layout(monkeypatch):
    """K models split over 4 devices need a quarter of the parameters, optimizer state and
    activations on each; data parallel a quarter of the activations; the data is on every
    device. (The check compared all K models with one device's memory: refused 4x early.)"""
    c = _config("models")
    ds = data_lib.load_dataset(c.data)
    model = models.model_from_config(c, ds.num_features, ds.image_shape)
    args = (c, model, ds.num_features, ds.train.shape[0], ds.val.shape[0], 8, ds.image_shape)
    one = resources.estimate(*args)
    split = resources.estimate(*args, "models", 4)
    rows = resources.estimate(*args, "data", 4)
    for part in ("parameters and gradients", "optimizer state"):
        assert split[part] * 4 == one[part] and rows[part] == one[part]
    act = "activations of one batch"
    assert split[act] * 4 == one[act] and rows[act] * 4 == one[act]
    assert split["data on the device"] == rows["data on the device"] == one["data on the device"]
    # A device that holds a quarter of the group, and a little more: refused on one device only.
    monkeypatch.setattr(
        resources, "available_bytes", lambda: (int(split["total"] / 0.85), "a small device")
    )
    resources.check_fits(split, 8, "models", 4)
    with pytest.raises(UserError, match=r"8 model\(s\) of this config need about .* small"):
        resources.check_fits(one, 8)


def test_a_group_too_large_for_memory_is_told_what_shrinks_its_largest_part(monkeypatch):
    """A model of 149 GiB was told "reduce optim.name (sgd keeps less state), or
    train.num_models" (a probe): Adam's state, as large as the parameters and gradients, was
    named the largest part, and one model cannot be fewer models together."""
    monkeypatch.setattr(resources, "available_bytes", lambda: (2**30, "a small device"))
    gib = 2**30

    def said(params, state, acts, k):
        parts = {
            "parameters and gradients": params * gib,
            "optimizer state": state * gib,
            "activations of one batch": acts * gib,
            "data on the device": gib // 100,
        }
        parts["total"] = sum(parts.values())
        with pytest.raises(UserError) as info:
            resources.check_fits(parts, k)
        return str(info.value)

    one = said(149, 149.001, 1, 1)  # Adam's state: the parameters' two moments and a count
    assert "; reduce the model (model.encoder_widths / decoder_widths / latent_dim), or " in one
    assert "optim.name='sgd'" in one and "num_models" not in one and "max_models" not in one
    no_state = said(149, 0, 1, 1)
    assert "; reduce the model (model.encoder_widths / decoder_widths / latent_dim)." in no_state
    assert "; reduce train.batch_size / train.eval_batch_size." in said(0.1, 0.1, 30, 1)
    # The activations largest, but the rest alone too large (2 GiB of 1): the batch is no
    # answer (a latent size of 3e8, 272 GiB of parameters and Adam's state, was told to reduce
    # train.batch_size, which could not make it fit).
    assert said(2, 0, 30, 1).endswith(
        "; reduce the model (model.encoder_widths / decoder_widths / latent_dim)."
    )
    several = said(149, 149, 1, 8)
    assert "or train fewer models together (train.num_models; a sweep splits" in several
