"""Tests that fail when the code they guard is wrong: each names the mutation it catches."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import experiment, models
from ae_jax.configs import seed_sparse
from ae_jax.data import images
from ae_jax.evaluation import passes, statistics
from ae_jax.sweeps import overrides as multi
from ae_jax.training import engine as engine_lib
from ae_jax.training import objective


def _config(**overrides):
    c = config_lib.default_config()
    c.model.encoder_widths, c.model.latent_dim = (6,), 3
    c = multi.apply_overrides(c, overrides)
    config_lib.validate(c)
    return c


def _single(c, n=40, d=5):
    e = engine_lib.Engine(c, d, n)
    hyper = {k: v[0] for k, v in objective.stack_hypers([objective.hyper_from_config(c)]).items()}
    return e, hyper, e.init(hyper)


# ---- the learning rate as a factor (mutation: a schedule or an optimizer not linear in it) --

_STEPS = 50
_CASES = (
    [(name, "constant") for name in config_lib.OPTIMIZERS]
    + [("adam", s) for s in config_lib.SCHEDULES if s != "constant"]
    + [("sgd", s) for s in config_lib.SCHEDULES if s != "constant"]
)


@pytest.mark.parametrize("name,schedule", _CASES)
def test_learning_rate_factor_equals_plain_optax_over_50_steps(name, schedule):
    c = _config(
        **{
            "optim.name": name,
            "optim.learning_rate": 0.01,
            "optim.schedule": schedule,
            "optim.warmup_epochs": 0.2,
            "optim.end_factor": 0.1,
            "train.batch_size": 8,
            "train.epochs": 5,
        }
    )
    e, hyper, state = _single(c)  # 40 rows, batch 8: 5 steps per epoch, 25 scheduled steps
    lr, total, per_epoch = 0.01, 25, 5
    # The schedules written out with the learning rate inside, independently of optim.py.
    lr_schedule = {
        "constant": lr,
        "cosine": optax.cosine_decay_schedule(lr, total, alpha=0.1),
        "warmup_cosine": optax.warmup_cosine_decay_schedule(0.0, lr, 1, total, end_value=0.1 * lr),
        "linear": optax.linear_schedule(lr, 0.1 * lr, total),
        "exponential": optax.exponential_decay(lr, per_epoch, 0.9),
    }[schedule]
    reference = getattr(optax, name)(learning_rate=lr_schedule)
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 5))
    mask = jnp.ones(8)
    grad = jax.jit(jax.grad(lambda p: e.loss_fn(p, x, mask, jax.random.PRNGKey(0), hyper, True)[0]))
    step = jax.jit(e.train_step)
    params, opt_state = state.params, reference.init(state.params)
    update = jax.jit(reference.update)
    for _ in range(_STEPS):
        state, _ = step(state, hyper, x, mask)
        with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
            updates, opt_state = update(grad(params), opt_state, params)
        params = optax.apply_updates(params, updates)
    # The training step folds the step into its rng, the reference does not: the seed model
    # has no noise and no sampling, so the losses are the same functions.
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6), state.params, params
    )


# ---- padding rows never count (mutation: dropping the mask in a term) ----


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"loss.sparsity": "kl", "loss.sparsity_weight": 1.0, "model.code_activation": "sigmoid"},
        {"loss.noise_std": 0.3},
        {"model.name": "vae", "loss.beta": 1.0},
        {"loss.l1_weight": 0.1},
    ],
    ids=["plain", "kl-sparsity", "noise", "vae", "l1"],
)
def test_padding_rows_do_not_change_the_loss_or_gradient(overrides):
    c = _config(**overrides)
    e, hyper, state = _single(c)
    x = jax.random.uniform(jax.random.PRNGKey(0), (6, 5))
    garbage = x.at[4:].set(1e3)  # the same batch with other values in its padding rows
    mask = jnp.array([1.0, 1, 1, 1, 0, 0])
    rng = jax.random.PRNGKey(1)
    f = lambda p, b: e.loss_fn(p, b, mask, rng, hyper, True)
    (la, ta), ga = jax.value_and_grad(f, has_aux=True)(state.params, x)
    (lb, tb), gb = jax.value_and_grad(f, has_aux=True)(state.params, garbage)
    assert float(la) == pytest.approx(float(lb), rel=1e-6)
    for k in ta:
        assert float(ta[k]) == pytest.approx(float(tb[k]), rel=1e-6, abs=1e-7), k
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), ga, gb)


# ---- K together equals alone, beyond a deterministic AE (mutation: a shared random stream) --


@pytest.mark.parametrize(
    "overrides",
    [
        {"loss.noise_std": 0.2},
        {
            "model.name": "vae",
            "model.encoder_widths": (8,),
            "model.latent_dim": 2,
            "loss.recon": "bce",
        },
        {"loss.sparsity": "kl", "loss.sparsity_weight": 0.5},
    ],
    ids=["noise", "vae", "kl-sparsity"],
)
def test_together_equals_alone_with_random_terms(overrides):
    base = multi.apply_overrides(seed_sparse.get_config(), {"train.batch_size": 100, **overrides})
    hyper_overrides = [
        {"train.seed": 0, "optim.learning_rate": 1e-3},
        {"train.seed": 5, "optim.learning_rate": 3e-3},
    ]
    configs = [multi.apply_overrides(base, o) for o in hyper_overrides]
    ds = data_lib.load_dataset(configs[0].data)
    x = jax.device_put(ds.train)
    n = ds.train.shape[0]
    e = engine_lib.Engine(configs[0], ds.num_features, n, terms=objective.optional_terms(configs))
    hypers = [objective.hyper_from_config(c) for c in configs]

    def run(hs):
        progs = e.compile(len(hs))
        states = engine_lib.init_many(progs.init, hs)
        for epoch in range(2):
            order = np.stack(
                [engine_lib.epoch_order(h["seed"], epoch, n, e.batch_size, True) for h in hs]
            )
            states, _ = progs.epoch(states, objective.stack_hypers(hs), x, order)
        return states.params

    together = run(hypers)
    for i, h in enumerate(hypers):
        alone = run([h])
        jax.tree.map(
            lambda t, a, i=i: np.testing.assert_allclose(t[i], a[0], rtol=2e-5, atol=2e-6),
            together,
            alone,
        )


# ---- divergence keeps the parameters from before the bad step ----


def test_divergence_keeps_exactly_the_parameters_before_the_bad_step():
    c = _config(
        **{
            "optim.name": "sgd",
            "optim.learning_rate": 3e3,
            "optim.eps": None,
            "train.batch_size": 40,
            "model.output_activation": "identity",
        }
    )
    e, hyper, state = _single(c)
    x = jax.random.uniform(jax.random.PRNGKey(0), (40, 5)) * 30
    step = jax.jit(e.train_step)
    history = [state.params]
    for _ in range(40):
        state, _ = step(state, hyper, x, jnp.ones(40))
        history.append(state.params)
        if int(state.diverged_step) >= 0:
            break
    bad = int(state.diverged_step)
    assert bad >= 1, "the case must diverge after at least one good step"
    # history[s] holds the parameters after s steps; step `bad` (0-based) was refused.
    jax.tree.map(np.testing.assert_array_equal, state.params, history[bad])
    state, _ = step(state, hyper, x, jnp.ones(40))  # and they stay frozen
    jax.tree.map(np.testing.assert_array_equal, state.params, history[bad])


def test_a_non_finite_update_from_finite_gradients_is_divergence_too():
    """Adam with eps = 0 divides 0 by 0 where a gradient is exactly 0 (weights from an input
    column of zeros): the loss and gradient are finite, the update is not. The run stops
    there with its parameters unchanged, not trained on to NaN and called done."""
    c = _config(**{"optim.name": "adam", "optim.eps": 0.0, "train.batch_size": 40})
    e, hyper, state = _single(c)
    x = jax.random.uniform(jax.random.PRNGKey(0), (40, 5)).at[:, 0].set(0.0)
    before = state.params
    state, metrics = jax.jit(e.train_step)(state, hyper, x, jnp.ones(40))
    assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["grad_norm"]))
    assert int(state.diverged_step) == 0
    jax.tree.map(np.testing.assert_array_equal, state.params, before)


def _dot_generals(jaxpr):
    """Every dot_general in a jaxpr, inside nested calls, scans and conditions too."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, list | tuple) else [value]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _dot_generals(inner)


def test_losses_and_metrics_sum_rows_in_full_float32_precision():
    """Every loss term and metric is a weighted sum over rows (weights (B,) @ values (B,) or
    (B, L)). On a TPU (bfloat16 passes) or a recent GPU (TF32) a float32 matmul at default
    precision keeps ~3-4 significant digits: each such sum in a step and in an evaluation asks
    for the highest (the model's layers keep the default)."""
    c = _config(**{"model.name": "vae", "loss.tc_weight": 1.0, "loss.free_bits": 0.1})
    e, hyper, state = _single(c)
    x, mask = jnp.ones((40, 5)), jnp.ones(40)
    for fn, args in (
        (e.train_step, (state, hyper, x, mask)),
        (e.eval_step, (state.params, hyper, x, mask)),
    ):
        sums = [
            q for q in _dot_generals(jax.make_jaxpr(fn)(*args).jaxpr) if q.invars[0].aval.ndim == 1
        ]
        assert len(sums) >= 5  # recon, l1, kl, loss, tc/mi/dim_kl, ...
        for q in sums:
            assert q.params["precision"] == (jax.lax.Precision.HIGHEST,) * 2, q


# ---- dynamic binarisation: a fresh draw each step, at the right frequency ----


def test_binarisation_draws_bernoulli_p_with_a_fresh_key_per_step():
    p = jnp.full((200, 50), 0.3)
    key = jax.random.PRNGKey(0)
    draws = np.stack(
        [np.asarray(images.binarize(p, jax.random.fold_in(key, s))) for s in range(20)]
    )
    assert set(np.unique(draws)) <= {0.0, 1.0}
    sd = math.sqrt(0.3 * 0.7 / draws.size)
    assert abs(draws.mean() - 0.3) < 4 * sd
    assert not np.array_equal(draws[0], draws[1])  # step 1 is not step 0's draw


def test_the_engine_draws_new_binary_targets_at_every_step():
    c = _config(
        **{"loss.recon": "bce", "model.output_activation": "sigmoid", "train.batch_size": 8}
    )
    e = engine_lib.Engine(c, 5, 8, dynamic_binarize=True)
    h = {**objective.hyper_from_config(c), "learning_rate": 0.0}  # the step's argument
    progs = e.compile(1)
    states = engine_lib.init_many(progs.init, [h])
    x = jax.device_put(np.full((8, 5), 0.5, np.float32))
    order = np.tile(np.arange(8, dtype=np.int32), (6, 1))[None]  # the same rows, 6 steps
    _, (per_step, _) = progs.epoch(states, objective.stack_hypers([h]), x, order)
    recon = np.asarray(per_step["recon"][0])
    # The parameters never move (learning rate 0): only new targets change the loss.
    assert len(set(np.round(recon, 5).tolist())) == 6, recon


# ---- the IWAE bound against an independent numpy computation ----


def test_iwae_equals_numpy_log_mean_exp_of_the_same_draws():
    c = _config(
        **{
            "model.name": "vae",
            "loss.recon": "gaussian",
            "loss.obs_std": 0.7,
            "model.output_activation": "identity",
        }
    )
    model = models.build_model(c.model, 5)
    params = model.init(jax.random.PRNGKey(3), jnp.zeros((1, 5)), jax.random.PRNGKey(4))["params"]
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(5), (7, 5)))
    k, rng = 6, jax.random.PRNGKey(9)
    got = passes.iwae_bound(model, params, x, k, rng, "gaussian", 0.7)
    want, mean_log_w = [], []
    for i in range(len(x)):
        mean, logvar = (
            np.asarray(a, np.float64)
            for a in model.apply({"params": params}, x[i], method=lambda m, v: m.encoder(v))
        )
        eps = np.asarray(jax.random.normal(jax.random.fold_in(rng, i), (k, mean.shape[0])))
        z = mean + np.exp(0.5 * logvar) * eps
        dec = np.asarray(
            model.apply({"params": params}, z, method=lambda m, v: m.decoder(v)), np.float64
        )
        log_w = (
            stats.norm.logpdf(x[i], dec, 0.7).sum(axis=1)
            + stats.norm.logpdf(z).sum(axis=1)
            - stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(axis=1)
        )
        want.append(np.log(np.mean(np.exp(log_w - log_w.max()))) + log_w.max())
        mean_log_w.append(np.mean(log_w))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # A mean of log-weights (the mutation) is below the log-mean-exp by Jensen's gap.
    assert np.all(np.asarray(got) > np.asarray(mean_log_w) + 1e-3)


# ---- active units on a case with a known count ----


def test_active_units_counts_dimensions_whose_posterior_mean_varies():
    rng = np.random.default_rng(0)
    n = 5000
    mean = np.stack(
        [
            rng.normal(0, 1.0, n),  # variance 1: active
            rng.normal(0, 0.2, n),  # 0.04: active
            rng.normal(0, 0.05, n),  # 0.0025: inactive at 0.01
            np.full(n, 0.7),
        ],
        axis=1,
    )  # constant: inactive
    assert statistics.active_units(mean, 0.01) == 2
    assert statistics.active_units(mean, 0.001) == 3


# ---- the seed configs against recorded numbers (mutation: any change to what they compute) --

# eval/loss after the config's epochs on the bundled breast-cancer table, recorded with
# jax 0.10.2 on CPU; the tolerance allows other XLA versions' rounding, not a changed model.
SEED_REFERENCE = {
    "seed_simple": 2.8618383,
    "seed_sparse": 2.8622501,
    "seed_deep": 2.6590934,
    "seed_vae": 17.378998,
}


@pytest.mark.parametrize("name", sorted(SEED_REFERENCE))
def test_seed_configs_reproduce_their_recorded_numbers(name, tmp_path):
    c = importlib.import_module(f"ae_jax.configs.{name}").get_config()
    c.eval.at_end, c.train.figures, c.train.tensorboard = False, False, False
    (summary,) = experiment.train_and_evaluate(c, str(tmp_path))
    assert summary["eval/loss"] == pytest.approx(SEED_REFERENCE[name], rel=1e-4)
