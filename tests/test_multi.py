"""K models in one program equal the same K trained one by one; divergence is isolated."""

import json
import os
import re

import jax
import numpy as np
import pytest

from ae_jax import data as data_lib
from ae_jax import experiment
from ae_jax.configs import seed_sparse
from ae_jax.errors import UserError
from ae_jax.sweeps import overrides as multi
from ae_jax.training import engine as engine_lib
from ae_jax.training import objective

OVERRIDES = [
    {"train.seed": 0, "loss.l1_weight": 0.0, "optim.learning_rate": 1e-3},
    {"train.seed": 1, "loss.l1_weight": 1e-3, "optim.learning_rate": 3e-3},
    {"train.seed": 2, "loss.l1_weight": 1e-2, "optim.learning_rate": 1e-2},
]


def _base():
    c = seed_sparse.get_config()
    c.train.epochs, c.train.batch_size = 4, 100  # 455 rows: a partial last batch each epoch
    # These tests compare training's numbers: no evaluation, figures or TensorBoard at the end
    # (~40 of the file's 58 s; test_study compares batched and single evaluations).
    c.eval.at_end, c.train.figures, c.train.tensorboard = False, False, False
    return c


def _metrics(path):
    return [json.loads(line) for line in open(path / "metrics.jsonl")]


@pytest.fixture(scope="module")
def together(tmp_path_factory):
    """OVERRIDES trained in one program: read (never written) by the tests below."""
    path = tmp_path_factory.mktemp("together")
    multi.train_together(_base(), OVERRIDES, str(path))
    return path


def test_together_equals_one_by_one(together, tmp_path):
    base = _base()
    for o in OVERRIDES:
        name = multi.run_name(o)
        experiment.train_and_evaluate(
            multi.apply_overrides(base, o), str(tmp_path / "alone" / name)
        )
        together_rows = _metrics(together / name)
        alone = _metrics(tmp_path / "alone" / name)
        assert len(together_rows) == len(alone) == 4
        for a, b in zip(together_rows, alone, strict=True):
            for key in a:
                if key.startswith(("train/", "eval/")):
                    assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (name, key)
    # The runs really differ (different seeds, rates and weights).
    finals = [_metrics(together / multi.run_name(o))[-1]["eval/loss"] for o in OVERRIDES]
    assert len(set(finals)) == 3


def test_together_params_equal_one_by_one():
    configs = [multi.apply_overrides(_base(), o) for o in OVERRIDES]
    ds = data_lib.load_dataset(configs[0].data)
    x = jax.device_put(ds.train)
    e = engine_lib.Engine(configs[0], ds.num_features, ds.train.shape[0])
    hypers = [objective.hyper_from_config(c) for c in configs]

    def run(hs, k):
        progs = e.compile(k)
        hyper = objective.stack_hypers(hs)
        states = engine_lib.init_many(progs.init, hs)
        for epoch in range(3):
            order = np.stack(
                [
                    engine_lib.epoch_order(h["seed"], epoch, ds.train.shape[0], e.batch_size, True)
                    for h in hs
                ]
            )
            states, _ = progs.epoch(states, hyper, x, order)
        return states.params

    together = run(hypers, len(hypers))
    for i, h in enumerate(hypers):
        alone = run([h], 1)
        jax.tree.map(
            lambda t, a, i=i: np.testing.assert_allclose(t[i], a[0], rtol=1e-5, atol=1e-6),
            together,
            alone,
        )


def test_diverging_model_is_marked_and_others_unaffected(tmp_path, caplog):
    base = _base()
    base.model.output_activation = "identity"  # Let a huge step overflow rather than saturate.
    base.optim.name, base.optim.eps = "sgd", None
    overrides = [
        {"train.seed": 0},
        {"train.seed": 1, "optim.learning_rate": 1e7},
        {"train.seed": 2},
    ]
    caplog.set_level("INFO", logger="absl")
    summaries = multi.train_together(base, overrides, str(tmp_path / "together"))
    assert [s["status"] for s in summaries] == ["done", "diverged", "done"]
    # The group's rate counts the 3 models the program computes, the diverged one too (a
    # review read "rows/s (all models)" beside "2 models running" as theirs), and says so.
    last = [m.getMessage() for m in caplog.records if "models running" in m.getMessage()][-1]
    assert "| 2 models running, 1 diverged |" in last, last
    rate = re.search(r"\| ([\d,]+) rows/s \(all 3 models, the diverged still computed\) \|", last)
    per_model = _metrics(tmp_path / "together" / multi.run_name(overrides[0]))[-1]["rows_per_s"]
    assert rate and int(rate[1].replace(",", "")) == pytest.approx(3 * per_model, abs=1), last
    assert summaries[1]["diverged_step"] is not None and summaries[1]["diverged_step"] >= 0
    for o in (overrides[0], overrides[2]):
        name = multi.run_name(o)
        experiment.train_and_evaluate(
            multi.apply_overrides(base, o), str(tmp_path / "alone" / name)
        )
        a, b = _metrics(tmp_path / "together" / name), _metrics(tmp_path / "alone" / name)
        assert [r["eval/loss"] for r in a] == pytest.approx([r["eval/loss"] for r in b], rel=1e-5)
    diverged_rows = _metrics(tmp_path / "together" / multi.run_name(overrides[1]))
    assert all(np.isfinite(r["train/loss"]) for r in diverged_rows)  # only finite epochs kept


def test_num_models_flag_trains_consecutive_seeds(tmp_path, caplog):
    c = _base()
    c.train.num_models, c.train.seed, c.train.epochs = 3, 5, 2
    summaries = experiment.train_and_evaluate(c, str(tmp_path))
    assert len(summaries) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed=5", "seed=6", "seed=7"]
    assert json.load(open(tmp_path / "seed=6" / "config.json"))["train"]["seed"] == 6
    # A launch with fewer seeds says which of an earlier launch's unfinished runs it leaves
    # half-trained (it said nothing): seeds 6 and 7 as a launch killed before their ends.
    for name in ("seed=6", "seed=7"):
        os.remove(tmp_path / name / "summary.json")
    c.train.num_models = 2
    with caplog.at_level("INFO"):
        experiment.train_and_evaluate(c, str(tmp_path))  # finishes seed=6
        experiment.train_and_evaluate(c, str(tmp_path))
    left = f"{tmp_path} also holds seed=7, started by an earlier launch and not finished: this "
    assert caplog.text.count(left + "one trains seeds 5..6 only") == 2
    assert "all 2 runs already finished; not retraining" in caplog.text
    assert not (tmp_path / "seed=7" / "summary.json").exists()
    caplog.clear()
    c.train.num_models = 3
    with caplog.at_level("INFO"):
        experiment.train_and_evaluate(c, str(tmp_path))  # finishes seed=7: nothing left
    assert "also holds" not in caplog.text and (tmp_path / "seed=7" / "summary.json").exists()
    # The last seeds allowed, and one past: it named seed 2147483648, which nobody typed.
    c.train.seed = 2**31 - 2
    with pytest.raises(UserError, match=r"^train.seed=2147483646 with train.num_models=3: the "):
        experiment.train_and_evaluate(c, str(tmp_path / "late"))
    assert not (tmp_path / "late").exists()


def test_unvmappable_overrides_are_refused_with_the_field_named(tmp_path):
    with pytest.raises(UserError, match=r"differ in model.latent_dim: 9 vs 4"):
        multi.train_together(_base(), [{"train.seed": 0}, {"model.latent_dim": 4}], str(tmp_path))
    with pytest.raises(
        UserError,
        match=r"override 'loss.l1_wieght': no such config field; did you mean 'loss.l1_weight'",
    ):
        multi.train_together(_base(), [{"loss.l1_wieght": 0.1}], str(tmp_path))
    with pytest.raises(UserError, match=r"override 'loss.l1': .*did you mean 'loss.l1_weight'"):
        multi.train_together(_base(), [{"loss.l1": 0.1}], str(tmp_path))  # was: loss.rho
    # The same run said two ways (its keys in another order) was trained twice, as run_sweep
    # refuses: refused too.
    twice = [{"loss.beta": 3.0, "train.seed": 0}, {"train.seed": 0, "loss.beta": 3.0}]
    with pytest.raises(UserError, match=r"overrides 0 \(loss.beta=3,train.seed=0\) and 1 \("):
        multi.train_together(_base(), twice, str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_chunks_give_the_same_numbers(together, tmp_path):
    multi.train_together(_base(), OVERRIDES, str(tmp_path / "a"), chunk_size=2)
    for o in OVERRIDES:
        name = multi.run_name(o)
        a, b = _metrics(tmp_path / "a" / name), _metrics(together / name)
        assert [r["eval/mse"] for r in a] == pytest.approx([r["eval/mse"] for r in b], rel=1e-5)
