"""The VAE objectives (issue 14): KL warm-up, free bits, IWAE training, the total-correlation
decomposition and MMD, each checked against an answer computed another way."""

import glob
import importlib.util
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax import config as config_lib
from ae_jax import experiment
from ae_jax.configs import seed_vae
from ae_jax.configs.ablations import vae_objectives as vae_ablation
from ae_jax.errors import UserError
from ae_jax.evaluation import passes
from ae_jax.sweeps import checks, runner
from ae_jax.sweeps import overrides as multi
from ae_jax.training import engine as engine_lib
from ae_jax.training import objective, vae_terms
from ae_jax.training.checkpoint import Checkpointer
from ae_jax.training.signals import Interrupted
from tests.test_study import _Stop

# ---- KL warm-up ----


def test_warmup_schedule_matches_the_hand_computed_one():
    steps = jnp.asarray([0, 1, 7, 19, 20, 21, 500])
    got = vae_terms.warmup_beta(steps, 10, jnp.float32(2.0), jnp.float32(0.1), jnp.float32(2.0))
    want = [0.1 + 1.9 * min(1.0, s / 20.0) for s in (0, 1, 7, 19, 20, 21, 500)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    # No warm-up: beta itself, whatever the start.
    off = vae_terms.warmup_beta(steps, 10, jnp.float32(2.0), jnp.float32(0.1), jnp.float32(0.0))
    assert np.all(np.asarray(off) == 2.0)


def _config(**overrides):
    c = seed_vae.get_config()
    c.data.name = "digits"  # 1438 training rows
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every = 3, 100, 1  # 15 steps/epoch
    c.model.latent_dim = 4
    c.eval.iw_samples = 4
    c.train.figures, c.train.tensorboard = False, False
    return multi.apply_overrides(c, overrides)


def _rows(workdir):
    return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


def test_warmup_weight_in_training_is_the_schedule(tmp_path):
    c = _config(**{"loss.kl_warmup_epochs": 2.0, "loss.kl_warmup_start": 0.2, "loss.beta": 1.5})
    experiment.train_and_evaluate(c, str(tmp_path))
    assert not (tmp_path / "figures").exists()  # train.figures off: not even an empty folder
    # Per epoch, metrics are row-weighted means over its steps: 14 batches of 100, one of 38.
    rows = np.array([100] * 14 + [38], np.float64)
    for epoch, row in enumerate(_rows(tmp_path)):
        steps = epoch * 15 + np.arange(15)
        beta = 0.2 + 1.3 * np.minimum(steps / 30.0, 1.0)
        assert row["train/kl_weight"] == pytest.approx(rows @ beta / rows.sum(), rel=1e-5)


def _params(workdir):
    ck = Checkpointer(str(workdir), read_only=True)
    state = ck.restore_raw(ck.epochs()[-1])
    ck.close()
    return state


def test_resume_mid_warmup_is_bitwise_equal(tmp_path, monkeypatch):
    c = _config(**{"loss.kl_warmup_epochs": 2.5, "train.chunk_steps": 5})
    experiment.train_and_evaluate(c, str(tmp_path / "whole"))
    # Looks at the stop flag after each of an epoch's first two chunks and at its end: the 5th
    # look is after the second chunk of epoch 2 (step 25 of the 37.5 the warm-up takes).
    monkeypatch.setattr(experiment, "StopRequests", lambda: _Stop(after=4))
    with pytest.raises(Interrupted, match="at step 10 of epoch 2"):
        experiment.train_and_evaluate(c, str(tmp_path / "stopped"))
    monkeypatch.undo()
    experiment.train_and_evaluate(c, str(tmp_path / "stopped"))
    strip = lambda rows: [{k: v for k, v in r.items() if "/" in k} for r in rows]
    assert strip(_rows(tmp_path / "whole")) == strip(_rows(tmp_path / "stopped"))
    a, b = _params(tmp_path / "whole"), _params(tmp_path / "stopped")
    assert jax.tree.all(jax.tree.map(np.array_equal, a, b))


# ---- free bits ----


def test_free_bits_stop_the_kl_gradient_of_dimensions_under_the_threshold():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(32, 3)).astype(np.float32) * np.array([0.05, 2.0, 0.1], np.float32)
    logvar = np.zeros((32, 3), np.float32)
    w = jnp.full((32,), 1 / 32, jnp.float32)
    per_dim = np.asarray(w @ vae_terms.kl_per_dim(mean, logvar))  # ~0.001, ~2, ~0.005 nats
    assert per_dim[0] < 0.5 < per_dim[1] and per_dim[2] < 0.5
    grad = jax.grad(lambda m: vae_terms.free_bits_kl(m, logvar, w, 0.5))(jnp.asarray(mean))
    assert np.all(np.asarray(grad[:, [0, 2]]) == 0.0)
    np.testing.assert_allclose(np.asarray(grad[:, 1]), mean[:, 1] / 32, rtol=1e-5)
    assert float(vae_terms.free_bits_kl(mean, logvar, w, 0.5)) == pytest.approx(
        0.5 + per_dim[1] + 0.5, rel=1e-6
    )


def _batch(config, n=50):
    x = np.asarray(np.random.default_rng(1).uniform(size=(n, 64)) > 0.5, np.float32)
    mask = np.ones(n, np.float32)
    mask[-7:] = 0.0  # padding rows too
    return jnp.asarray(x), jnp.asarray(mask)


def _loss_and_grads(config, terms, hyper_overrides=None, step=5):
    e = engine_lib.Engine(config, 64, 1000, terms=terms)
    hyper = {**objective.hyper_from_config(config), **(hyper_overrides or {})}
    hyper = {k: jnp.asarray(v) for k, v in hyper.items()}
    params = e.init(hyper).params
    x, mask = _batch(config)
    rng = jax.random.PRNGKey(3)
    fn = jax.jit(
        jax.value_and_grad(
            lambda p: e.loss_fn(p, x, mask, rng, hyper, True, jnp.int32(step)), has_aux=True
        )
    )
    (loss, terms_out), grads = fn(params)
    return loss, terms_out, grads, e, params, hyper, x, mask, rng


@pytest.mark.optimized
def test_zero_free_bits_is_the_plain_loss_bitwise():
    c = _config()
    plain = _loss_and_grads(c, frozenset())
    with_term = _loss_and_grads(c, frozenset({"free_bits"}))
    assert float(plain[0]) == float(with_term[0])
    assert jax.tree.all(jax.tree.map(np.array_equal, plain[2], with_term[2]))
    # ... and a positive threshold does change it.
    clamped = _loss_and_grads(c, frozenset({"free_bits"}), {"free_bits": 2.0})
    assert float(clamped[0]) != float(plain[0])
    # The loss is recon + beta * kl_free_bits, both logged (kl stays the unclamped KL: the
    # logged loss had a term no logged number explained).
    t = clamped[1]
    beta = float(objective.hyper_from_config(c)["beta"])
    assert float(clamped[0]) == pytest.approx(
        float(t["recon"]) + beta * float(t["kl_free_bits"]), rel=1e-6
    )
    assert float(t["kl_free_bits"]) >= 2.0 * c.model.latent_dim > float(t["kl"])
    assert float(with_term[1]["kl_free_bits"]) == pytest.approx(float(plain[1]["kl"]), rel=1e-6)


# ---- IWAE training ----


@pytest.mark.optimized
def test_one_importance_sample_is_the_vae_loss_bitwise():
    plain = _loss_and_grads(_config(), frozenset())
    k1 = _loss_and_grads(_config(**{"loss.iw_samples_train": 1}), frozenset())
    assert float(plain[0]) == float(k1[0])
    assert jax.tree.all(jax.tree.map(np.array_equal, plain[2], k1[2]))


def test_training_bound_equals_the_evaluation_bound_on_the_same_draws():
    c = _config(**{"loss.iw_samples_train": 5})
    loss, terms, _, e, params, hyper, x, mask, rng = _loss_and_grads(c, frozenset())
    # The draws the loss took: its rng split as the loss splits it.
    _, sample_rng = jax.random.split(rng)
    eps = vae_terms.iw_eps(sample_rng, x.shape[0], 5, c.model.latent_dim)
    rows = jax.vmap(lambda xr, er: passes.row_samples(e.model, params, xr, er, "bce", 1.0))
    bounds = rows(x, eps)["bound"]
    real = np.asarray(mask) > 0
    want = float(np.mean(np.asarray(bounds)[real]))
    assert float(terms["iw_bound"]) == pytest.approx(want, rel=1e-6)
    assert float(loss) == pytest.approx(-want, rel=1e-6)  # no other term: the loss is -bound
    # The bound with 5 draws lies above the single-draw ELBO on average.
    assert want > -float(terms["recon"] + terms["kl"]) - 1.0


def test_the_evaluation_elbo_averages_every_draw():
    """The evaluation's ELBO reconstruction term (vae/recon, so vae/elbo) is the mean of
    -log p(x|z_j) over all k posterior draws the IWAE bound takes, not the first draw alone
    (k times the variance: up to 1.5 nats on a Gaussian VAE's printed ELBO)."""
    c = _config()
    *_, e, params, _, x, _, rng = _loss_and_grads(c, frozenset())
    x = np.asarray(x, np.float64)
    (n, d), k, latent = x.shape, 7, c.model.latent_dim
    eps = np.asarray(jax.random.normal(rng, (n, k, latent)))
    rows = jax.vmap(lambda xr, er: passes.row_samples(e.model, params, xr, er, "bce", 1.0))
    nll = rows(x.astype(np.float32), eps)["nll_mean"]
    # By hand: each draw decoded, the Bernoulli NLL from logits, softplus(l) - x l.
    variables = {"params": params}
    mean, logvar = e.model.apply(variables, x.astype(np.float32), method=lambda m, v: m.encoder(v))
    z = np.asarray(mean)[:, None] + np.exp(0.5 * np.asarray(logvar))[:, None] * eps
    flat = z.reshape(-1, latent).astype(np.float32)
    logits = np.asarray(e.model.apply(variables, flat, method=lambda m, v: m.decoder(v)))
    logits = logits.reshape(n, k, d).astype(np.float64)
    per_draw = np.sum(np.logaddexp(0.0, logits) - x[:, None] * logits, axis=-1)
    np.testing.assert_allclose(np.asarray(nll), per_draw.mean(axis=1), rtol=2e-5)
    assert not np.allclose(np.asarray(nll), per_draw[:, 0], rtol=1e-3)  # not the first draw's


# ---- total correlation ----


def _gaussian_posteriors(corr, s2, n, seed):
    """Posteriors N(mu_n, s2 I) with mu_n ~ N(0, R - s2 I): their aggregate is N(0, R)."""
    rng = np.random.default_rng(seed)
    dim = corr.shape[0]
    mu = rng.multivariate_normal(np.zeros(dim), corr - s2 * np.eye(dim), size=n)
    z = mu + np.sqrt(s2) * rng.standard_normal((n, dim))
    return [jnp.asarray(a, jnp.float32) for a in (z, mu, np.full((n, dim), np.log(s2)))]


CORR = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.5], [0.3, 0.5, 1.0]])


@pytest.mark.parametrize("corr", [np.eye(3), CORR], ids=["factorised", "correlated"])
def test_total_correlation_of_a_gaussian_aggregate(corr):
    """TC of N(0, R) is -0.5 log det R (0 for R = I). With all 2,000 posteriors as the batch the
    estimate is the mixture's own TC: over 10 seeds its mean is 0.010 (factorised) and 0.371
    (correlated, truth 0.367) with standard deviations 0.002 and 0.015, so 0.06 is 3-4 sd."""
    truth = -0.5 * np.linalg.slogdet(corr)[1]
    z, mu, logvar = _gaussian_posteriors(corr, 0.2, 2000, seed=0)
    full = vae_terms.kl_decomposition(z, mu, logvar, jnp.ones(2000), 2000)
    assert float(full["tc"]) == pytest.approx(truth, abs=0.06)
    blocked = vae_terms.aggregate_decomposition(z, mu, logvar, block=300)
    for key in ("tc", "mi", "dim_kl"):
        assert float(blocked[key]) == pytest.approx(float(full[key]), abs=1e-4)
    # tc + mi + dim_kl estimates the mean KL(q(z|x) || p(z)).
    kl = float(jnp.mean(jnp.sum(vae_terms.kl_per_dim(mu, logvar), -1)))
    assert float(full["tc"] + full["mi"] + full["dim_kl"]) == pytest.approx(kl, abs=0.1)
    # Each term alone (their sum hid a shift between them: log 2 pi left out of the Gaussian
    # log-density moved 0.92 nats per dimension from dim_kl to mi, a mutation check): z = mu
    # + noise of variance s2 has I(x; z) = (log det R - L log s2) / 2 (2.414 and 2.047; over
    # 5 seeds the estimates were 0.03-0.06 below), and the aggregate's unit-variance marginals
    # are the prior's, so dim_kl is 0 (estimates 0.0002-0.006).
    mi = 0.5 * (np.linalg.slogdet(corr)[1] - 3 * np.log(0.2))
    assert float(full["mi"]) == pytest.approx(mi, abs=0.15)
    assert float(full["dim_kl"]) == pytest.approx(0.0, abs=0.03)


def test_aggregate_terms_average_draws_and_their_standard_error_is_the_spread_over_keys():
    """eval.json's decomposition averages S draws per row (S x N >= 8192, 4..32) and gives each
    term's Monte Carlo standard error: over 24 keys the estimates spread by about that much."""
    z, mu, logvar = _gaussian_posteriors(CORR, 0.2, 60, seed=2)
    means, logvars = np.asarray(mu)[None], np.asarray(logvar)[None]
    rng = jax.random.PRNGKey(5)
    (m,) = passes.aggregate_kl_terms(means, logvars, rng)
    assert m["vae/aggregate_rows"] == 60 and m["vae/aggregate_draws"] == 32
    # The mean of the 32 draws' own estimates, each as one draw per row.
    keys = jax.random.split(rng, 32)
    by_hand = []
    for key in keys:
        eps = jax.random.normal(key, mu.shape, jnp.float32)
        by_hand.append(
            float(
                vae_terms.aggregate_decomposition(mu + jnp.exp(0.5 * logvar) * eps, mu, logvar)[
                    "tc"
                ]
            )
        )
    assert m["vae/total_correlation"] == pytest.approx(np.mean(by_hand), abs=1e-5)
    assert m["vae/total_correlation_mc_se"] == pytest.approx(
        np.std(by_hand, ddof=1) / np.sqrt(32), rel=1e-3
    )
    runs = [
        passes.aggregate_kl_terms(means, logvars, jax.random.PRNGKey(100 + i))[0] for i in range(24)
    ]
    for term in ("vae/total_correlation", "vae/mutual_info", "vae/dim_kl"):
        spread = np.std([r[term] for r in runs], ddof=1)
        se = np.mean([r[f"{term}_mc_se"] for r in runs])
        assert 0.5 < spread / se < 2.0, (term, spread, se)
    # Larger sets take fewer draws, at least 4; their first 4,096 rows.
    big = np.zeros((1, 5000, 3), np.float32)
    (b,) = passes.aggregate_kl_terms(big, big, rng)
    assert b["vae/aggregate_rows"] == 4096 and b["vae/aggregate_draws"] == 4


def test_minibatch_total_correlation_uses_the_data_set_size():
    """32 batches of 256 from 8,192 posteriors (N = 8192): the mean estimate is 0.3605 against
    the truth 0.3670; with the batch size taken for N it would be 0.4073 (a test at 0.1 nats,
    as this one was, could not tell them apart)."""
    z, mu, logvar = _gaussian_posteriors(CORR, 0.2, 8192, seed=1)
    ones = jnp.ones(256)

    def mean_tc(n):
        return np.mean(
            [
                float(
                    vae_terms.kl_decomposition(
                        z[i : i + 256], mu[i : i + 256], logvar[i : i + 256], ones, n
                    )["tc"]
                )
                for i in range(0, 8192, 256)
            ]
        )

    truth = -0.5 * np.linalg.slogdet(CORR)[1]
    assert mean_tc(8192) == pytest.approx(truth, abs=0.015)
    assert abs(mean_tc(256) - truth) > 0.03  # the wrong N is told apart
    first = float(vae_terms.kl_decomposition(z[:256], mu[:256], logvar[:256], ones, 8192)["tc"])
    # Padded rows change nothing.
    pad = lambda a: jnp.concatenate([a[:256], jnp.zeros((44, 3))])
    mask = jnp.concatenate([ones, jnp.zeros(44)])
    padded = vae_terms.kl_decomposition(pad(z), pad(mu), pad(logvar), mask, 8192)["tc"]
    assert float(padded) == pytest.approx(first, abs=1e-5)


def test_validation_decomposition_is_the_validation_sets_own():
    """eval/tc, eval/mi and eval/dim_kl (per-epoch validation) estimate the validation split's
    aggregate posterior: N = its rows, so one batch holding the split gives eval.json's exact
    decomposition over those rows. With N the training split's size (an audit: 455 against 114
    rows), eval/mi was log 455 = 6.12 where the validation mixture's is at most log 114."""
    c = _config(**{"loss.tc_weight": 1.0})
    x, mask = _batch(c)  # 43 real rows, 7 padded
    e = engine_lib.Engine(c, 64, 1000, terms=frozenset({"tc"}), num_val=43)
    hyper = {k: jnp.asarray(v) for k, v in objective.hyper_from_config(c).items()}
    params = e.init(hyper).params
    got = e.evaluate(params, hyper, x[None], mask[None])
    key = jax.random.fold_in(jax.random.PRNGKey(hyper["seed"]), engine_lib._EVAL)
    out = e.model.apply({"params": params}, x, jax.random.split(key)[1])
    exact = vae_terms.aggregate_decomposition(out["z"][:43], out["mean"][:43], out["logvar"][:43])
    for term in ("tc", "mi", "dim_kl"):
        assert float(got[term]) == pytest.approx(float(exact[term]), rel=1e-4, abs=1e-5), term
    # Training keeps the training split's N (1000): on the same draws, another estimate.
    _, train_terms = e.loss_fn(params, x, mask, key, hyper, True, jnp.int32(0))
    n_train = vae_terms.kl_decomposition(out["z"], out["mean"], out["logvar"], mask, 1000)
    for term in ("tc", "mi", "dim_kl"):
        assert float(train_terms[term]) == pytest.approx(float(n_train[term]), rel=1e-5), term
    # (at these random weights the posteriors overlap: eval/mi 0.229, with N = 1000 0.242)
    assert abs(float(n_train["mi"]) - float(exact["mi"])) > 0.01


def test_training_gives_the_engine_the_validation_splits_rows(tmp_path, monkeypatch):
    """The group loop passes N_val (the digits' 359 validation rows) to the engine the
    validation terms use (the unit test above takes num_val as given)."""
    seen = []

    class Recording(engine_lib.Engine):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("num_val"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(engine_lib, "Engine", Recording)
    c = _config(**{"loss.tc_weight": 1.0, "train.epochs": 1})
    c.train.checkpoints, c.eval.at_end = False, False
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert seen == [359]


# ---- MMD ----


def _mmd_numpy(x, y, kind):
    c = 2.0 * x.shape[1]
    k = lambda a, b: (
        c / (c + ((a[:, None] - b[None]) ** 2).sum(-1))
        if kind == "imq"
        else np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / c)
    )
    n = x.shape[0]
    off = ~np.eye(n, dtype=bool)
    return k(x, x)[off].mean() + k(y, y)[off].mean() - 2 * k(x, y).mean()


@pytest.mark.parametrize("kind", ["imq", "rbf"])
def test_mmd_is_unbiased_grows_with_the_shift_and_matches_numpy(kind):
    rng = np.random.default_rng(0)
    same = [
        float(vae_terms.mmd(rng.standard_normal((64, 4)), rng.standard_normal((64, 4)), kind))
        for _ in range(200)
    ]
    # Unbiased: the mean over draws of two samples of one distribution is ~0 (single draws are
    # not: their spread is ~10x the tolerance).
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(200)
    assert np.std(same) > 1e-3
    shifts = [0.0, 0.5, 1.0, 2.0]
    x = rng.standard_normal((128, 4))
    y = rng.standard_normal((128, 4))
    values = []
    for m in shifts:
        got = float(vae_terms.mmd(jnp.asarray(x), jnp.asarray(y + m), kind))
        assert got == pytest.approx(_mmd_numpy(x, y + m, kind), rel=1e-4, abs=1e-6)
        values.append(got)
    assert values == sorted(values) and values[-1] > 10 * abs(values[0])


@pytest.mark.parametrize("term", sorted(objective.OPTIONAL_TERMS))
def test_each_optional_term_reports_the_metrics_a_run_leaves_out_when_it_does_not_use_it(term):
    """TERM_METRICS, which decides what a run grouped with others records, is what the loss
    reports: computing one optional term adds exactly its metrics to the loss's report."""
    c = _config()
    engine = engine_lib.Engine(c, 64, 128)
    hyper = objective.hyper_from_config(c)
    state = engine.init(hyper)
    x, mask, rng = jnp.full((8, 64), 0.5), jnp.ones((8,)), jax.random.PRNGKey(0)

    def reported(terms):
        loss_fn = objective.make_loss_fn(engine.model, c, frozenset(terms), 128, 2)
        return set(loss_fn(state.params, x, mask, rng, hyper, True, jnp.asarray(1))[1])

    assert reported({term}) - reported(()) == set(objective.TERM_METRICS[term])


def test_a_run_leaves_out_the_metrics_only_its_group_computes():
    group = objective.optional_terms(
        [_config(**{"loss.free_bits": 0.5}), _config(**{"loss.kl_warmup_epochs": 2.0})]
    )
    assert group == {"free_bits", "warmup"}
    assert objective.group_only_metrics(_config(), group) == {"kl_free_bits", "kl_weight"}
    assert objective.group_only_metrics(_config(**{"loss.free_bits": 0.5}), group) == {"kl_weight"}


# ---- a sweep over objectives trains as one program ----

OBJECTIVES = [
    {"_name": "vae"},
    {"_name": "tcvae", "loss.tc_weight": 5.0},
    {"_name": "infovae", "loss.mmd_weight": 50.0},
]


def test_objective_sweep_is_one_program_and_equals_separate_runs(tmp_path, caplog):
    base = _config(**{"train.epochs": 2, "train.checkpoints": False, "eval.at_end": False})
    runs = [{**o, "train.seed": s} for o in OBJECTIVES for s in (0, 1)]
    caplog.set_level(logging.INFO)
    multi.train_together(base, runs, str(tmp_path / "together"))
    assert caplog.text.count("compiling") == 1 and "compiling 6 model(s)" in caplog.text
    finals = {multi.run_name(o): _rows(tmp_path / "together" / multi.run_name(o))[-1] for o in runs}
    # Each objective alone once, the seeds alternating (vae 0, tcvae 1, infovae 0): every term
    # and both seeds' row orders are compared, at half the runs.
    for o in runs[0::3] + runs[4:5]:
        name = multi.run_name(o)
        config = multi.apply_overrides(base, o)
        experiment.train_and_evaluate(config, str(tmp_path / "alone" / name))
        together, alone = _rows(tmp_path / "together" / name), _rows(tmp_path / "alone" / name)
        for a, b in zip(together, alone, strict=True):
            # A run's records name the same metrics alone as in a group (the group computes
            # tc and mmd for every model; a zero-weighted run's are left out of its files).
            assert a.keys() == b.keys(), (name, a.keys() ^ b.keys())
            for key in b:
                if key.startswith(("train/", "eval/")):
                    assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (name, key)
    has = {n: ("train/tc" in r, "eval/mmd" in r) for n, r in finals.items()}
    assert has == {
        multi.run_name(o): ("tcvae" in multi.run_name(o), "infovae" in multi.run_name(o))
        for o in runs
    }
    losses = {round(r["train/loss"], 6) for r in finals.values()}
    assert len(losses) == 6


def test_vae_objective_fields_need_a_vae_and_a_likelihood():
    c = _config(**{"model.name": "autoencoder", "loss.tc_weight": 1.0})
    with pytest.raises(UserError, match="loss.tc_weight=1.0 is a VAE objective"):
        config_lib.validate(c)
    c = _config(**{"loss.recon": "mse", "loss.iw_samples_train": 3})
    with pytest.raises(UserError, match="loss.recon"):
        config_lib.validate(c)
    c = _config(**{"loss.mmd_kernel": "gauss"})
    with pytest.raises(UserError, match="loss.mmd_kernel"):
        config_lib.validate(c)


# ---- shipped configs ----

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(
    glob.glob(os.path.join(ROOT, "ae_jax", "configs", "*.py"))
    + glob.glob(os.path.join(ROOT, "ae_jax", "configs", "ablations", "*.py"))
)


@pytest.mark.parametrize(
    "path",
    [p for p in SHIPPED if not p.endswith("__init__.py")],
    ids=lambda p: os.path.relpath(p, ROOT),
)
def test_every_shipped_config_validates_and_loading_writes_nothing(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("_shipped", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config_lib.validate(module.get_config())
    if hasattr(module, "get_sweep"):
        assert module.get_sweep()
    assert os.listdir(tmp_path) == []


def test_objective_ablation_groups_the_weighted_objectives_into_one_program(tmp_path):
    config = vae_ablation.get_config()
    runs = checks.expand(vae_ablation.get_sweep(), str(tmp_path))
    chunks, _ = runner.plan(config, runs)
    names = sorted(sorted(r.name.split(",")[0] for r in chunk) for chunk in chunks)
    assert names == sorted([["iwae"] * 3, sorted(["vae", "beta_tc_vae", "info_vae", "wae"] * 3)])


@pytest.mark.optimized
def test_each_validation_batch_draws_its_own_posterior_noise():
    """Per-epoch validation of a VAE: with one key for every batch, rows in the same place of
    two batches shared their draws (a 12,000-row split at eval batch 4,096 had three copies of
    the same noise). Two identical batches now give different sampled terms; a single batch
    keeps the numbers it always had (batch 0's key is the old one)."""
    c = _config()
    *_, e, params, hyper, x, mask, _ = _loss_and_grads(c, frozenset())
    one = e.evaluate(params, hyper, x[None], mask[None])
    two = e.evaluate(params, hyper, jnp.stack([x, x]), jnp.stack([mask, mask]))
    assert float(two["recon"]) != float(one["recon"])  # the second batch: other draws
    assert float(two["kl"]) == pytest.approx(float(one["kl"]), rel=1e-6)  # exact, no draws
    old_key = jax.random.fold_in(jax.random.PRNGKey(hyper["seed"]), engine_lib._EVAL)
    loss, terms = e.loss_fn(params, x, mask, old_key, hyper, False)
    assert float(one["recon"]) == float(terms["recon"]) and float(one["loss"]) == float(loss)


@pytest.mark.parametrize(
    "name, field, size, rows, said",
    [
        # 129 training rows in batches of 128: a last batch of one row (train/tc was 0.34,
        # (L - 1) log N / N, against 0.0004 with 128 rows: a probe).
        ("beta_tc_vae", "batch_size", 128, "129 training rows", "the total correlation"),
        ("info_vae", "batch_size", 128, "129 training rows", "MMD²"),
        # The 359 validation rows of the digits in batches of 358 (eval/loss moved by 0.9).
        ("beta_tc_vae", "eval_batch_size", 358, "359 validation rows", "the total correlation"),
    ],
)
def test_a_batch_of_one_row_is_refused_where_a_term_is_a_batch_statistic(
    tmp_path, name, field, size, rows, said
):
    """The total correlation and the MMD are estimated from a batch's other rows: a batch of one
    row has none. A run that would train or validate on one is refused before any work, and
    the batch size the error suggests trains."""
    c = importlib.import_module(f"ae_jax.configs.{name}").get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    if field == "batch_size":
        c.data.limit = 129  # training rows
    c.train[field] = size
    with pytest.raises(UserError, match=rf"^{said} \(loss\.\w+_weight > 0\) is estimated") as e:
        experiment.train_and_evaluate(c, str(tmp_path / "refused"))
    text = str(e.value)
    assert f"the {rows} of" in text and f"batches of {size} (train.{field})" in text, text
    suggested = int(text.rsplit("e.g. ", 1)[1].rstrip("."))
    assert not os.path.exists(tmp_path / "refused" / "summary.json")
    c.train[field] = suggested  # the size suggested leaves no row alone: it trains
    assert experiment.train_and_evaluate(c, str(tmp_path / "fits"))[0]["status"] == "done"


@pytest.mark.parametrize("split", ["validation", "training"])
def test_a_split_of_one_row_is_told_the_setting_that_grows_it(tmp_path, split):
    """A split of one row: the error said 'in batches of 1 (train.eval_batch_size)' (4096, cut
    to the row) and offered data.limit for a validation split, which it cannot grow (data.limit
    keeps the first N training rows: a README walkthrough)."""
    c = importlib.import_module("ae_jax.configs.beta_tc_vae").get_config()
    c.train.epochs, c.train.figures, c.eval.at_end = 1, False, False
    if split == "validation":
        c.data.val_fraction = 0.0005  # 1 of the digits' 1,797 rows
    else:
        c.data.limit = 1
    with pytest.raises(UserError) as e:
        experiment.train_and_evaluate(c, str(tmp_path / "refused"))
    text = str(e.value)
    assert f"but the 1 {split} row of 'digits' is a batch of its own, for which" in text, text
    fix = "data.val_fraction" if split == "validation" else "data.limit or data.val_fraction"
    assert text.endswith(f"Set {fix} for a {split} split of at least 2 rows."), text
    assert "batch_size" not in text
