"""Evaluation: known answers for the bounds, the PCA baseline, codes, eval.json, the CLIs."""

import dataclasses
import hashlib
import json
import logging
import math
import os
import pathlib
import shutil
import subprocess
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

import ae_jax
from ae_jax import data as data_lib
from ae_jax import experiment, models
from ae_jax import workdir as workdir_lib
from ae_jax.commands import encode as encode_cli
from ae_jax.commands import evaluate as evaluate_cli
from ae_jax.config import default_config
from ae_jax.configs import seed_simple, seed_sparse, seed_vae
from ae_jax.errors import UserError
from ae_jax.evaluation import bounds, eval_data, evaluate, figure_data, passes, statistics
from ae_jax.evaluation import figures as eval_plots
from ae_jax.evaluation.renderer import Renderer
from ae_jax.training import checkpoint
from ae_jax.training.checkpoint import Checkpointer
from ae_jax.training.signals import Interrupted
from tests import test_image_data
from tests.conftest import write_purchase_csv
from tests.test_study import _Stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(config, workdir) -> str:
    config.eval.at_end = False  # these tests evaluate explicitly; never rely on the hook
    config.train.checkpoint_every = 0  # one checkpoint, at the end: saves cost seconds here
    experiment.train_and_evaluate(config, str(workdir))
    return str(workdir)


def _digits_config(**model):
    c = default_config()
    c.data.name = "digits"
    c.model.latent_dim = 8
    for key, value in model.items():
        c.model[key] = value
    c.train.batch_size, c.train.log_every = 128, 100
    return c


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A small VAE (2-D latent) on binarised digits, stored as 8x8 images with labels."""
    root = tmp_path_factory.mktemp("vae")
    digits = load_digits()
    path = root / "binary_digits.npz"
    np.savez(path, x=(digits.images / 16.0 > 0.5).astype(np.float32), y=digits.target)
    c = seed_vae.get_config()
    c.data.path, c.data.scaling = str(path), "none"
    c.model.encoder_widths = (64,)
    c.optim.learning_rate = 3e-3
    c.train.epochs, c.train.batch_size = 30, 128
    return _train(c, root / "run")


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    """A simple AE with a 3-unit code on a purchase-layout CSV, 'Revenue' as the label."""
    root = tmp_path_factory.mktemp("shop")
    csv_path = write_purchase_csv(root / "shop.csv")
    c = seed_simple.get_config()
    c.data.path, c.data.label_column = csv_path, "Revenue"
    c.model.latent_dim = 3
    c.train.epochs, c.train.batch_size = 20, 64
    return _train(c, root / "run")


# ---- pure functions against known answers ----


def test_statistics_known_answers():
    codes = np.array([[0.0, 1.0, -0.01], [0.0, -3.0, 0.02]])
    s = statistics.code_statistics(codes, near_zero=0.05)
    assert s["code/mean_activation"] == pytest.approx(-1.99 / 6)
    assert s["code/l1_per_row"] == pytest.approx((1.01 + 3.02) / 2)
    assert s["code/near_zero_fraction"] == pytest.approx(4 / 6)
    assert s["code/unit_mean"] == pytest.approx([0.0, -1.0, 0.005])
    assert s["code/unit_std"] == pytest.approx([0.0, 2.0, 0.015])
    assert s["code/dead_units"] == [0, 2] and s["code/dead_unit_count"] == 2

    # KL(N(m, e^lv) || N(0, 1)) per dim: 0 at the prior, m^2 / 2 for a shifted unit variance.
    mean, logvar = np.array([[0.0, 1.0], [0.0, 3.0]]), np.zeros((2, 2))
    assert statistics.kl_per_dim(mean, logvar) == pytest.approx([0.0, (0.5 + 4.5) / 2])
    assert statistics.kl_per_dim(np.zeros((1, 1)), np.log([[4.0]])) == pytest.approx(
        [0.5 * (4.0 - 1.0 - math.log(4.0))]
    )
    assert statistics.active_units(mean, 0.01) == 1  # Var of unit 1's means is 1; unit 0's is 0
    assert statistics.active_units(mean, 0.0) == 1  # more than the threshold: a constant is not
    assert statistics.active_units(mean, 1.0) == 0

    x = np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 0.9]])
    logits = np.array([[2.0, -1.0, 0.0], [-20.0, 20.0, 1.5]])
    p = 1.0 / (1.0 + np.exp(-logits))
    direct = -(x * np.log(p) + (1 - x) * np.log(1 - p))
    np.testing.assert_allclose(statistics.bce_per_feature(logits, x), direct.mean(0), atol=1e-8)
    # Saturated logits stay finite: the loss of a confident right answer is ~0, not NaN.
    assert statistics.bce_per_feature(np.array([[-800.0, 800.0]]), np.array([[0.0, 1.0]])) == (
        pytest.approx([0.0, 0.0], abs=1e-300)
    )
    np.testing.assert_allclose(statistics.mse_per_feature(x + [[1, 2, 0], [1, 0, 0]], x), [1, 2, 0])

    # Rank-2 data: PCA(2) reconstructs unseen rows of the same subspace exactly.
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 6))
    train_x, val_x = rng.normal(size=(50, 2)) @ basis, rng.normal(size=(7, 2)) @ basis
    np.testing.assert_allclose(statistics.pca_reconstruction(train_x, val_x, 2), val_x, atol=1e-9)
    assert statistics.json_safe({"a": [1.0, float("nan")], "b": np.float32(2)}) == {
        "a": [1.0, None],
        "b": 2.0,
    }


def test_per_column_known_answers():
    """Every number of recon/per_column by hand, on 3 validation rows of a numeric, a
    true/false, a one-hot (3 categories) and an ordinal (codes 0..4) column: no test checked
    cross_entropy or mae, nor an ordinal baseline from the training rows, and a mutation check
    passed MAE computed as RMSE, swapped true/false branches, an unnormalised block and a
    baseline taken from the validation rows."""
    layout = [("n", "numeric", 0, 1), ("b", "boolean", 1, 1), ("c", "categorical", 2, 3)]
    layout.append(("o", "ordinal", 5, 1))
    scale, offset = np.array([10.0, 1, 1, 1, 1, 4]), np.zeros(6)
    x = np.array(
        [
            [0.1, 0, 0, 1, 0, 0.25],  # c: category 1; o: code 1
            [0.5, 0, 0, 0, 1, 0.50],  # c: 2; o: 2
            [0.9, 1, 1, 0, 0, 1.00],  # c: 0; o: 4
        ]
    )
    out = np.array(
        [
            [0.2, 0.9, 0.2, 0.6, 0.2, 0.30],  # o: rint(1.2) = 1
            [0.5, 0.2, 0.5, 0.3, 0.2, 0.80],  # o: rint(3.2) = 3
            [0.6, 0.4, 0.1, 0.1, 0.2, 0.95],  # c: sums to 0.4; o: rint(3.8) = 4
        ]
    )
    x_train = np.array(
        [
            [0, 1, 0, 0, 1, 0.0],  # b: true 3 of 4; c: 2, 2, 0, 1; o: codes 0, 0, 1, 2
            [0, 1, 0, 0, 1, 0.0],
            [0, 0, 1, 0, 0, 0.25],
            [0, 1, 0, 1, 0, 0.5],
        ]
    )
    cols, summary = statistics.per_column(layout, x, out, x_train, offset, scale)
    n, b, c, o = (cols[k] for k in "nbco")
    assert n["mse"] == pytest.approx((0.01 + 0 + 0.09) / 3)
    assert n["mae"] == pytest.approx((0.1 + 0 + 0.3) / 3)
    assert n["rmse_original"] == pytest.approx(np.sqrt(0.1 / 3) * 10)
    # b: truth F, F, T; p 0.9, 0.2, 0.4: one right; the training mode (true) is right once
    assert b["accuracy"] == pytest.approx(1 / 3) and b["baseline_accuracy"] == pytest.approx(1 / 3)
    assert b["cross_entropy"] == pytest.approx(-(np.log(0.1) + np.log(0.8) + np.log(0.4)) / 3)
    # c: truth 1, 2, 0; guesses 1, 0, 2; the last row's block read as 0.25, 0.25, 0.5; the
    # training mode (2) is right once
    assert c["accuracy"] == pytest.approx(1 / 3) and c["baseline_accuracy"] == pytest.approx(1 / 3)
    assert c["cross_entropy"] == pytest.approx(-(np.log(0.6) + np.log(0.2) + np.log(0.25)) / 3)
    # o: truth 1, 2, 4; guesses 1, 3, 4; the training mode (code 0) is never right, where the
    # validation rows' first most frequent code (1) would be once
    assert o["accuracy"] == pytest.approx(2 / 3) and o["baseline_accuracy"] == 0.0
    assert "cross_entropy" not in o
    assert summary == {
        "recon/numeric_mse": pytest.approx(0.1 / 3),
        "recon/categorical_accuracy": pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3),
    }


def test_a_vaes_monte_carlo_errors_are_each_their_bounds_own():
    """vae/elbo_mc_se is sqrt(sum of the rows' variances of the ELBO's draws) / N, from the
    reconstruction term's variances, and vae/iwae_mc_se likewise from the bound's: only a
    spread test within 1.6x checked them, which the IWAE's variance in the ELBO's place and a
    sqrt(2) too wide passed (a mutation check)."""
    c = seed_vae.get_config()
    c.loss.recon = "bce"
    det = {"code": np.array([[0.0, 1.0], [0.0, 3.0]]), "logvar": np.zeros((2, 2))}
    sampled = {
        "nll_mean": np.array([10.0, 12.0]),
        "nll_mean_var": np.array([0.25, 0.75]),
        "bound": np.array([-9.0, -11.0]),
        "bound_var": np.array([0.04, 0.12]),
    }
    m = bounds.vae_metrics(c, det, sampled, 8, is_log_likelihood=True)
    kl = (0.5 + 4.5) / 2
    assert m["vae/recon"] == 11.0 and m["vae/kl"] == pytest.approx(kl)
    assert m["vae/elbo"] == pytest.approx(-(11.0 + kl)) and m["vae/iwae"] == -10.0
    assert m["vae/elbo_mc_se"] == pytest.approx(np.sqrt(1.0) / 2)
    assert m["vae/iwae_mc_se"] == pytest.approx(np.sqrt(0.16) / 2)
    one = bounds.vae_metrics(c, det, sampled, 1, is_log_likelihood=True)
    assert "vae/elbo_mc_se" not in one and "vae/iwae_mc_se" not in one  # one draw: none


def test_traversal_and_grid_known_answers(tmp_path):
    w = np.arange(12.0).reshape(3, 4)  # a linear decoder: response = 2 * span * w (span 2)
    response = eval_plots.traversal_response(eval_plots.traversal_codes(3) @ w)
    np.testing.assert_allclose(response, 4.0 * w)
    grid = eval_plots.latent_grid(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), 3)
    assert grid.shape == (9, 2)
    assert grid[0].tolist() == [-1.0, 2.0] and grid[-1].tolist() == [1.0, -2.0]  # top left
    points, _ = eval_plots.project_2d(np.random.default_rng(0).normal(size=(20, 5)))
    assert points.shape == (20, 2)
    line, names = eval_plots.project_2d(np.arange(4.0)[:, None])  # a 1-D code: its own axis
    assert line[:, 1].tolist() == [0.0] * 4 and names == ("z0", "none (a 1-D code)")
    Renderer().heatmap(
        str(tmp_path / "t.png"),
        response,
        ["a", "b", "c", "d"],
        ["z0", "z1", "z2"],
        "t",
        "RdBu_r",
        True,
        "change",
    )
    assert (tmp_path / "t.png").stat().st_size > 0


# ---- the VAE's bounds ----


def test_iwae_is_exact_for_a_linear_gaussian_vae_with_its_true_posterior():
    """x = W z + b + N(0, s^2 I), z ~ N(0, I): log p(x) = log N(x; b, W W^T + s^2 I). With W's
    columns orthogonal the true posterior is a diagonal Gaussian, linear in x; an encoder set to
    it makes every importance weight equal p(x), so the bound is exact for any k."""
    d, latent, s = 5, 2, 0.5
    c = default_config()
    c.model.name, c.model.latent_dim, c.model.output_activation = "vae", latent, "identity"
    model = models.build_model(c.model, d)
    rng = np.random.default_rng(0)
    w = np.linalg.qr(rng.normal(size=(d, latent)))[0] * [1.5, 0.7]  # (D, L), W^T W diagonal
    b = rng.normal(size=d)
    cov_post = np.linalg.inv(np.eye(latent) + w.T @ w / s**2)  # diagonal
    a = cov_post @ w.T / s**2  # posterior mean = a (x - b)
    params = model.init(jax.random.PRNGKey(0), np.zeros((1, d), np.float32), jax.random.PRNGKey(1))[
        "params"
    ]
    params = jax.tree_util.tree_map_with_path(
        lambda p, v: np.asarray(
            {
                "encoder/mean/kernel": a.T,
                "encoder/mean/bias": -a @ b,
                "encoder/logvar/kernel": np.zeros((d, latent)),
                "encoder/logvar/bias": np.log(np.diag(cov_post)),
                "decoder/out/kernel": w.T,
                "decoder/out/bias": b,
            }["/".join(k.key for k in p)],
            np.float32,
        ),
        params,
    )
    x = b + rng.normal(size=(40, latent)) @ w.T + s * rng.normal(size=(40, d))
    exact = multivariate_normal(b, w @ w.T + s**2 * np.eye(d)).logpdf(x)
    bound = passes.iwae_bound(
        model, params, x, 7, jax.random.PRNGKey(3), "gaussian", s, rows_per_batch=16
    )  # 40 rows: the last batch is padded
    np.testing.assert_allclose(bound, exact, atol=2e-4)


def test_iwae_bound_does_not_depend_on_rows_per_batch(vae_run):
    """Each row draws its samples from its own number, so batching changes no number (a
    config may pick its rows per batch for memory and speed: conv_vae_digits uses 8)."""
    tm = ae_jax.load(vae_run)
    x = eval_data.evaluation_data(tm).x[:45]  # 45 rows: 8 and 16 leave a padded last batch
    args = (jax.random.PRNGKey(5), tm.config.loss.recon, tm.config.loss.obs_std)
    per = {
        r: passes.iwae_bound(tm.model, tm.params, x, 20, *args, rows_per_batch=r)
        for r in (8, 16, 45)
    }
    np.testing.assert_allclose(per[8], per[45], rtol=1e-6)
    np.testing.assert_allclose(per[16], per[45], rtol=1e-6)


def test_iwae_k1_is_the_elbo_and_the_bound_grows_with_k(vae_run):
    tm = ae_jax.load(vae_run)
    x = eval_data.evaluation_data(tm).x
    args = (tm.config.loss.recon, tm.config.loss.obs_std)
    iw1, elbo = [], []
    for seed in range(6):
        iw1.append(passes.iwae_bound(tm.model, tm.params, x, 1, jax.random.PRNGKey(seed), *args))
        recon, kl = passes.elbo_terms(tm.model, tm.params, x, jax.random.PRNGKey(100 + seed), *args)
        elbo.append(-(recon + kl))
    diff = np.ravel(iw1) - np.ravel(elbo)  # independent draws: E[diff] = 0 exactly
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(diff.size), (diff.mean(), diff.std())

    key = jax.random.PRNGKey(7)
    bounds = {k: passes.iwae_bound(tm.model, tm.params, x, k, key, *args) for k in (1, 10, 100)}
    means = [bounds[k].mean() for k in (1, 10, 100)]
    assert means[0] < means[1] < means[2] < 0.0, means  # log p(x) <= 0 for binary pixels
    with pytest.raises(UserError, match="needs a likelihood"):
        passes.iwae_bound(tm.model, tm.params, x, 10, key, "mse", 1.0)


def test_eval_json_of_a_vae(vae_run):
    m = evaluate.evaluate_workdir(vae_run, iw_samples=100)
    out = os.path.join(vae_run, "evaluations", "which=latest,iw_samples=100")  # k is not 1000
    assert json.load(open(os.path.join(out, "eval.json"))) == m
    assert m["which"] == "latest" and m["epoch"] == 30 and m["n_val"] == 359
    assert m["vae/iwae_k"] == 100 and "vae/iwae_note" not in m
    assert m["vae/elbo"] < m["vae/iwae"] < 0.0
    assert m["vae/elbo"] == pytest.approx(-(m["vae/recon"] + m["vae/kl"]))
    assert m["vae/kl"] == pytest.approx(sum(m["vae/kl_per_dim"]))
    assert m["vae/active_units"] == 2 and len(m["code/unit_std"]) == 2
    assert m["recon/bce"] == pytest.approx(sum(m["recon/bce_per_feature"].values()))
    assert m["recon/bce"] < m["vae/recon"]  # the posterior mean decodes better than a sample
    assert m["ae_over_pca"] == pytest.approx(m["recon/mse"] / m["pca/mse"])
    with pytest.raises(UserError, match="iw_samples: got 0; expected a positive integer"):
        evaluate.evaluate_workdir(vae_run, iw_samples=0)
    figures = set(os.listdir(os.path.join(out, "figures")))
    assert {"codes_2d.png", "latent_manifold.png", "reconstructions.png"} <= figures
    # The same model on tabular features: a traversal heatmap and per-feature bars instead.
    tm = ae_jax.load(vae_run)
    data = eval_data.evaluation_data(tm)
    metrics, arrays = evaluate.evaluate_model(tm, data, iw_samples=1)
    tabular = eval_data.EvalData(data.x, None, data.x_train, data.columns, None, "test")
    params = jax.tree.map(lambda a: np.asarray(a)[None], tm.params)
    inputs = figure_data.figure_inputs(
        tm.model, params, tabular, [tm.config], [(metrics, arrays)], [None], tm.epoch
    )[0]
    written = eval_plots.write_figures(str(vae_run) + "/tab", inputs)
    assert sorted(map(os.path.basename, written)) == [
        "codes_2d.png",
        "recon_per_feature.png",
        "samples.png",
        "traversal.png",
    ]


def test_one_evaluated_row_gives_no_active_unit_count(vae_run):
    """A VAE evaluated on one row (a validation split of one, `--data` of one row) reported
    vae/active_units 0: the posterior mean's variance over one row is 0 for every unit, which
    says nothing of the units (a probe). It is null with a note saying why; two rows count."""
    tm = ae_jax.load(vae_run)
    data = eval_data.evaluation_data(tm)
    rows = {}
    for n in (1, 2):
        few = eval_data.EvalData(data.x[:n], None, data.x_train, data.columns, None, "test")
        rows[n] = evaluate.evaluate_model(tm, few, iw_samples=2)[0]
    assert rows[1]["vae/active_units"] is None and rows[1]["n_val"] == 1
    assert "one row evaluated" in rows[1]["vae/active_units_note"]
    assert "note: one row evaluated" in evaluate_cli.summarize(rows[1])
    assert "active latent units" not in evaluate_cli.summarize(rows[1])
    assert isinstance(rows[2]["vae/active_units"], int) and "vae/active_units_note" not in rows[2]


def test_sample_titles_say_what_the_decoder_outputs(vae_run):
    """A continuous Bernoulli's decoder outputs λ, not the distribution's mean: the samples'
    title says so, where other likelihoods' titles say "decoded means"."""
    tm = ae_jax.load(vae_run)
    data = eval_data.evaluation_data(tm)
    params = jax.tree.map(lambda a: np.asarray(a)[None], tm.params)
    titles = {}
    for recon in ("bce", "cbernoulli"):
        c = tm.config.copy_and_resolve_references()
        c.loss.recon = recon
        f = figure_data.figure_inputs(tm.model, params, data, [c], None, [None], tm.epoch)[0]
        (drawing,) = [d for d in eval_plots.plan(str(vae_run), f) if d.path.endswith("samples.png")]
        titles[recon] = [a for a in drawing.args if isinstance(a, str) and "prior" in a][0]
    assert titles["bce"] == f"samples from the prior (decoded means; epoch {tm.epoch})"
    assert titles["cbernoulli"] == (
        f"samples from the prior (decoded λ, not the continuous Bernoulli's mean; epoch {tm.epoch})"
    )


def test_the_codes_legend_is_titled_by_the_label_column(shop_run, tmp_path):
    """The codes' colours come from data.label_column ('Revenue'): the legend was titled
    'label'; now by the column, for the run's own split and for a file (--data)."""
    tm = ae_jax.load(shop_run)
    params = jax.tree.map(lambda a: np.asarray(a)[None], tm.params)
    for data in (
        eval_data.evaluation_data(tm),
        eval_data.evaluation_data(tm, data_path=tm.config.data.path),
    ):
        assert data.label_name == "Revenue" and data.labels is not None
        f = figure_data.figure_inputs(tm.model, params, data, [tm.config], None, [None], 1)[0]
        assert f.colour_name == "Revenue"
    unnamed = eval_data.EvalData(data.x, data.labels, None, data.columns, None, "test")
    f = figure_data.figure_inputs(tm.model, params, unnamed, [tm.config], None, [None], 1)[0]
    assert f.colour_name == "label"


# ---- autoencoders against PCA ----


def test_linear_autoencoder_matches_pca(tmp_path):
    c = _digits_config(code_activation="identity", output_activation="identity")
    c.optim.learning_rate, c.optim.schedule = 0.02, "cosine"
    c.train.epochs = 300
    m = evaluate.evaluate_workdir(_train(c, tmp_path))
    assert 0.98 <= m["ae_over_pca"] <= 1.02, m["ae_over_pca"]
    ds = data_lib.load_dataset(c.data)
    pca = PCA(8).fit(ds.train)
    expected = np.mean((pca.inverse_transform(pca.transform(ds.val)) - ds.val) ** 2)
    assert m["pca/mse"] == pytest.approx(expected, rel=1e-6)
    assert "vae/elbo" not in m and "recon/bce" not in m


def test_no_pca_ratio_when_the_code_is_as_wide_as_the_data(tmp_path):
    """PCA with latent_dim >= D components reconstructs exactly: pca/mse is rounding error and
    ae_over_pca (~1e29 before) is null, with a note saying why."""
    x = np.random.default_rng(0).uniform(size=(120, 6))
    np.savetxt(tmp_path / "t.csv", x, delimiter=",", header="a,b,c,d,e,f", comments="")
    c = seed_simple.get_config()  # code 9 > 6 columns
    c.data.path, c.train.epochs = str(tmp_path / "t.csv"), 1
    c.train.figures = c.train.tensorboard = c.train.checkpoints = False
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    m = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert m["pca/mse"] < 1e-20 and m["ae_over_pca"] is None
    assert m["pca/note"] == "PCA with 9 components for 6 features is exact: no ratio"
    # Its checkpoints were off: nothing to load, and the message says why (not "train it first").
    with pytest.raises(UserError, match=r"train.checkpoints=False, so it kept no parameters"):
        ae_jax.load(str(tmp_path / "run"))
    # 12 columns of rank 6 (each column twice): PCA with 9 components is exact just the same.
    np.savetxt(
        tmp_path / "t.csv",
        np.hstack([x, x]),
        delimiter=",",
        comments="",
        header="a,b,c,d,e,f,g,h,i,j,k,l",
    )
    experiment.train_and_evaluate(c, str(tmp_path / "run12"))
    m = json.loads((tmp_path / "run12" / "eval.json").read_text())
    assert m["ae_over_pca"] is None, m
    assert "reconstructs these 12 features exactly (the data has rank <= 9)" in m["pca/note"]


def test_pca_fit_over_blocks_of_rows_is_the_principal_directions_of_the_whole_split():
    """The covariance is summed over blocks of rows (a float64 copy of a large split is not
    made): on float32 rows spanning several blocks, with a large offset and unequal column
    scales, mean and directions are those of an SVD of the whole centred split in float64."""
    rng = np.random.default_rng(1)
    m = 2 * statistics._ROWS + 123  # three blocks, the last partial
    x = (rng.normal(size=(m, 7)) * [9.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.1] + 1e3).astype(np.float32)
    mean, top = statistics.pca_fit(x, 3)
    x64 = x.astype(np.float64)
    want_mean = x64.mean(axis=0)
    vt = np.linalg.svd(x64 - want_mean, full_matrices=False)[2][:3]
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    np.testing.assert_allclose(np.abs(top @ vt.T), np.eye(3), atol=1e-9)  # same up to sign
    assert np.all(top[np.arange(3), np.argmax(np.abs(top), axis=1)] > 0)  # signs fixed


def test_pca_of_a_wide_table_is_that_of_the_covariance_without_forming_it(monkeypatch):
    """Fewer rows than columns (40 x 2,000: the D x D covariance's eigh took 3.6 s, 20,000
    columns ~an hour): PCA comes from the SVD of the rows, with the directions, reconstructions
    and signs the covariance gives, and no D x D eigendecomposition."""
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(40, 300)) * np.linspace(3.0, 0.1, 300)).astype(np.float32)
    new = rng.normal(size=(5, 300))
    wide_mean, wide = statistics.pca_fit(x, 6)
    assert wide.shape == (6, 300)
    cov_path = np.concatenate([x, x])  # the same directions, M >= D: the covariance path
    mean, top = statistics.pca_fit(np.concatenate([cov_path] * 4), 6)
    np.testing.assert_allclose(wide_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(wide, top, atol=1e-9)  # signs fixed alike
    np.testing.assert_allclose(
        statistics.pca_reconstruction(x, new, 6), (new - mean) @ top.T @ top + mean, atol=1e-9
    )
    # More components than the rows span (5 rows: 4 directions): the rest are no principal
    # directions, whichever null-space vectors the solver returns; other rows are projected on
    # the rows' span alone, by either path.
    few = x[:5].astype(np.float64)
    span = np.linalg.qr((few - few.mean(axis=0)).T)[0][:, :4]  # (300, 4), independently
    want = (new - few.mean(axis=0)) @ span @ span.T + few.mean(axis=0)
    np.testing.assert_allclose(statistics.pca_reconstruction(few, new, 8), want, atol=1e-9)
    two = few[:2, :3]  # two rows, 3 times each (6 x 3: the covariance path): one direction
    u = (two[1] - two[0]) / np.linalg.norm(two[1] - two[0])
    want = two.mean(axis=0) + np.outer((new[:, :3] - two.mean(axis=0)) @ u, u)
    line = statistics.pca_reconstruction(np.concatenate([two] * 3), new[:, :3], 3)
    np.testing.assert_allclose(line, want, atol=1e-9)
    monkeypatch.setattr(statistics.np.linalg, "eigh", None)  # not called for a wide table
    statistics.pca_fit(x, 6)


def test_pca_is_exact_only_when_every_column_is_reconstructed_to_rounding_error():
    """Columns on very different scales (data.scaling="none"): one of variance 1e12 must not
    make the others' real PCA error look like rounding error; rank-deficient data is exact."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 10))
    x[:, 0] *= 1e6
    per = statistics.mse_per_feature(statistics.pca_reconstruction(x, x, 1), x)
    assert statistics.pca_exact(per, x, 1) is None  # a real error: ae_over_pca is kept
    low = np.hstack([x[:, :3], x[:, :3] * 2.0 + 5.0, 1e6 + x[:, :1]])  # rank 3 (+ offsets)
    per = statistics.mse_per_feature(statistics.pca_reconstruction(low, low, 3), low)
    assert "the data has rank <= 3" in statistics.pca_exact(per, low, 3)
    # As many components as features, but fitted on 2 training rows: one direction, so other
    # rows are not reconstructed and the ratio stands.
    train, val = x[:2, 1:4], x[2:50, 1:4]
    per = statistics.mse_per_feature(statistics.pca_reconstruction(train, val, 9), val)
    assert per.min() > 0.01 and statistics.pca_exact(per, val, 9) is None
    per = statistics.mse_per_feature(statistics.pca_reconstruction(val, val, 9), val)
    assert (
        statistics.pca_exact(per, val, 9)
        == "PCA with 9 components for 3 features is exact: no ratio"
    )
    # Good is not exact: an error of 1e-6 of each column's variance is far above rounding
    # (1e-10 of it), and its ratio is a number to report (a tolerance loosened to 1e-4 of
    # the variance nulled such ratios and passed every test: a mutation check).
    per = 1e-6 * np.var(val, axis=0)
    assert statistics.pca_exact(per, val, 2) is None
    assert statistics.pca_exact(1e-11 * np.var(val, axis=0), val, 2) is not None


def test_deep_autoencoder_beats_pca(tmp_path):
    c = _digits_config(encoder_widths=(128, 64), code_activation="identity")
    c.optim.learning_rate = 3e-3
    c.train.epochs = 25
    m = evaluate.evaluate_workdir(_train(c, tmp_path))
    assert m["ae_over_pca"] < 0.9, m["ae_over_pca"]
    assert {"codes_2d.png", "reconstructions.png"} <= set(os.listdir(tmp_path / "figures"))


# ---- codes, the training log, other files ----


def test_codes_equal_load_encode_and_mse_equals_the_training_log(shop_run):
    tm = ae_jax.load(shop_run)
    data = eval_data.evaluation_data(tm)
    metrics, arrays = evaluate.evaluate_model(tm, data)
    ds = data_lib.load_dataset(tm.config.data)
    table = data_lib.read_table(tm.config.data.path)
    np.testing.assert_allclose(
        tm.encode(table.take(ds.val_indices)), arrays["codes"], rtol=1e-5, atol=1e-6
    )
    last = [json.loads(r) for r in open(os.path.join(shop_run, "metrics.jsonl"))][-1]
    assert metrics["recon/mse"] == pytest.approx(last["eval/mse"], rel=1e-5)
    per = metrics["recon/mse_per_feature"]
    assert list(per) == tm.preprocessor.columns and "Revenue" not in per
    assert np.mean(list(per.values())) == pytest.approx(metrics["recon/mse"], rel=1e-12)

    m = evaluate.evaluate_workdir(shop_run)
    assert {"codes_2d.png", "recon_per_feature.png"} <= set(map(os.path.basename, m["figures"]))
    # The validation rows as a file, through the saved preprocessor: the same numbers.
    lines = open(tm.config.data.path).read().splitlines()
    subset = os.path.join(shop_run, "val_rows.csv")
    with open(subset, "w") as f:
        f.write("\n".join([lines[0]] + [lines[i + 1] for i in ds.val_indices]) + "\n")
    on_file = evaluate.evaluate_workdir(shop_run, data_path=subset)
    assert on_file["n_val"] == len(ds.val_indices) and on_file["data"] == subset
    for key in ("recon/mse", "pca/mse", "code/l1_per_row"):
        assert on_file[key] == pytest.approx(m[key], rel=1e-6), key


@pytest.mark.parametrize("layout", ["idx", "npz"])
def test_evaluating_an_image_sets_training_file_says_so(tmp_path, caplog, layout):
    """A run of data.name='mnist' from data.dir, evaluated on the set's own training file (the
    IDX file, or x_train of the Keras .npz): its training rows, no validation error, and the
    log said nothing (it compared --data with data.path only; a probe). Its test file and
    x_test, the validation split, say nothing."""
    x_train, y_train, x_test, y_test = test_image_data.write_mnist(str(tmp_path / "set"))
    if layout == "npz":
        data_dir = str(tmp_path / "set" / "mnist.npz")
        np.savez(data_dir, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        own, other = (data_dir, "x_train"), (data_dir, "x_test")
    else:
        data_dir = str(tmp_path / "set")
        own = (os.path.join(data_dir, "train-images-idx3-ubyte.gz"), "")
        other = (os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"), "")
    c = seed_simple.get_config()
    c.data.name, c.data.dir, c.train.epochs = "mnist", data_dir, 1
    c.train.figures = c.train.tensorboard = c.eval.at_end = False
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(c, run)
    caplog.set_level("WARNING")
    evaluate.evaluate_workdir(run, data_path=own[0], npz_key=own[1], figures=False)
    what = "array 'x_train'" if own[1] else "training images"
    said = f"is the file the run trained on (its {what}, of the mnist set in data.dir): its "
    assert said + f"{len(x_train)} training rows are among the {len(x_train)}" in caplog.text
    caplog.clear()
    evaluate.evaluate_workdir(run, data_path=other[0], npz_key=other[1], figures=False)
    assert "the file the run trained on" not in caplog.text


def test_evaluating_the_file_a_run_trained_on_says_so(shop_run, caplog):
    """--data naming the run's own training file evaluates its training rows too: no
    validation error, and the log says so (it said nothing); another file says nothing."""
    tm = ae_jax.load(shop_run)
    caplog.set_level("WARNING")
    own = os.path.relpath(tm.config.data.path)  # typed another way: the same file
    evaluate.evaluate_workdir(shop_run, data_path=own, figures=False)
    n_train = tm.dataset_info["n_train"]
    said = f"is the file the run trained on (its data.path): its {n_train} training rows are"
    assert said in caplog.text
    caplog.clear()
    copy = os.path.join(shop_run, "other.csv")
    shutil.copy(tm.config.data.path, copy)
    evaluate.evaluate_workdir(shop_run, data_path=copy, figures=False)
    assert "the file the run trained on" not in caplog.text


def test_evaluating_a_run_whose_file_moved_advises_data_only_without_it(tmp_path):
    """Its file moved: `evaluate` is told to pass --data; with --data given, the note on the
    missing PCA baseline told the user to pass --data all the same (a probe)."""
    c = seed_simple.get_config()
    c.data.path = write_purchase_csv(tmp_path / "t.csv")
    c.train.epochs, c.train.figures, c.train.tensorboard = 1, False, False
    _train(c, tmp_path / "run")
    os.rename(tmp_path / "t.csv", tmp_path / "moved.csv")
    with pytest.raises(UserError, match=r"no such file.*\. Pass --data=FILE to evaluate on rows"):
        evaluate.evaluate_workdir(str(tmp_path / "run"), figures=False)
    m = evaluate.evaluate_workdir(
        str(tmp_path / "run"), data_path=str(tmp_path / "moved.csv"), figures=False
    )
    # (the training split: the baseline's; "the validation split" named the wrong one)
    assert m["pca/note"].startswith(
        "no PCA baseline: cannot rebuild the training split (the PCA baseline's)"
    )
    assert "no such file" in m["pca/note"] and "--data" not in m["pca/note"]


def test_new_files_are_read_with_their_own_delimiter(tmp_path):
    """A run trained on a ';' file with data.delimiter=';' read every later file with ';':
    encode, evaluate --data and `ae-jax encode` of a ',' or tab file were refused with "set
    data.delimiter", which a trained run's reader cannot (a probe). Other files are sniffed."""
    comma = write_purchase_csv(str(tmp_path / "rows.csv"), n=120)
    lines = open(comma).read().splitlines()
    semi, tab = tmp_path / "rows_semi.csv", tmp_path / "rows.tsv"
    semi.write_text("\n".join(line.replace(",", ";") for line in lines) + "\n")
    tab.write_text("\n".join(line.replace(",", "\t") for line in lines) + "\n")
    c = seed_simple.get_config()
    c.data.path, c.data.delimiter, c.train.epochs = str(semi), ";", 1
    c.train.figures = c.train.tensorboard = c.eval.at_end = False
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(c, run)
    tm = ae_jax.load(run)
    own = tm.encode(str(semi))
    for other in (comma, str(tab)):
        np.testing.assert_array_equal(tm.encode(other), own)
        codes = encode_cli.encode_file(run, other, str(tmp_path / "codes.npy"), overwrite=True)
        np.testing.assert_array_equal(codes, own)
    on_tab = evaluate.evaluate_workdir(run, data_path=str(tab), figures=False)
    on_own = evaluate.evaluate_workdir(run, data_path=str(semi), figures=False)
    assert on_tab["recon/mse"] == on_own["recon/mse"] and on_tab["n_val"] == 120


def test_a_data_frames_missing_text_cell_is_named_a_null_not_the_marker_none(shop_run):
    """NaN in a data frame's text column was refused as "missing value(s) (marker(s)
    ['None'])" at "row 3 (index 2) 'None'" (a probe): it is a null."""
    tm = ae_jax.load(shop_run)
    frame = pd.read_csv(tm.config.data.path).head(6)
    frame.loc[2, "VisitorType"] = np.nan
    with pytest.raises(UserError) as e:
        tm.encode(frame)
    said = "column 'VisitorType' has 1 missing value(s) (empty or null) at row 3 (index 2);"
    assert said in str(e.value) and "None" not in str(e.value)


def test_encode_writes_npy_and_csv(shop_run, tmp_path):
    tm = ae_jax.load(shop_run)
    csv_path = tm.config.data.path
    out = tmp_path / "codes.csv"
    # The command runs while the in-process checks do: the subprocess mostly imports.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.encode",
            f"--workdir={shop_run}",
            f"--input={csv_path}",
            f"--output={out}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    codes = encode_cli.encode_file(shop_run, csv_path, str(tmp_path / "codes.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), codes)
    np.testing.assert_allclose(codes, tm.encode(csv_path), rtol=1e-6)
    assert codes.shape == (300, 3) and codes.dtype == np.float32
    with pytest.raises(UserError, match=r"--output .*unsupported file type '\.txt'"):
        encode_cli.encode_file(shop_run, csv_path, str(tmp_path / "codes.txt"))
    # Nothing the user has is replaced unasked: not the input, not an existing file.
    rows = open(csv_path, "rb").read()
    copy = tmp_path / "rows.csv"
    copy.write_bytes(rows)
    for target, overwrite, match in [
        (copy, True, r"is the --input file: the codes would replace the rows"),
        # The run's own training file, asked for (the run could not be evaluated on it again).
        (csv_path, True, r"is the file the run in .* was trained on \(its data.path"),
        (tmp_path / "codes.npy", False, r"exists; pass --overwrite to replace it"),
        (tmp_path, False, r"is a directory; expected a file path"),
    ]:
        with pytest.raises(UserError, match=match):
            encode_cli.encode_file(shop_run, str(copy), str(target), overwrite=overwrite)
    # The run named with `~` (a probe: the guard read '~/run' as no run and the training file
    # was replaced); arguments of the wrong type; a dangling link into a missing folder.
    os.symlink("nowhere/x.npy", tmp_path / "dangling.npy")
    home = os.path.dirname(shop_run)
    for args, kwargs, match in [
        (
            ("~/" + os.path.basename(shop_run), str(copy), csv_path),
            {"overwrite": True},
            r"is the file the run in .* was trained on",
        ),
        ((shop_run, str(copy), str(tmp_path / "codes.npy")), {"overwrite": "no"}, "True or Fa"),
        ((shop_run, str(copy), None), {}, r"--output: expected a file path, .* got None"),
        ((shop_run, 3, str(tmp_path / "c.npy")), {}, r"--input: expected a file path"),
        ((shop_run, str(copy), str(tmp_path / "dangling.npy")), {}, r"\(where the link lead"),
    ]:
        with pytest.MonkeyPatch.context() as mp, pytest.raises(UserError, match=match):
            mp.setenv("HOME", home)
            encode_cli.encode_file(*args, **kwargs)
    assert copy.read_bytes() == rows and open(csv_path, "rb").read() == rows
    assert not os.path.exists(tmp_path / "nowhere")  # (the lock made it, an empty file)
    encode_cli.encode_file(shop_run, str(copy), str(tmp_path / "codes.npy"), overwrite=True)
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), codes)
    # Replaced in place: its permissions kept, a link's target written, no temporary left.
    os.chmod(tmp_path / "codes.npy", 0o600)
    os.symlink(tmp_path / "codes.npy", tmp_path / "link.npy")
    encode_cli.encode_file(shop_run, str(copy), str(tmp_path / "link.npy"), overwrite=True)
    assert os.path.islink(tmp_path / "link.npy")
    assert os.stat(tmp_path / "codes.npy").st_mode & 0o777 == 0o600
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # An output written by another process while this one encoded (two encodes into one new
    # file both said they wrote it, one lost: a probe) is kept: the later one is refused.
    load, rival = ae_jax.load, tmp_path / "rival.npy"

    def load_while_another_writes(*a, **k):
        rival.write_bytes(b"the other process's codes")
        return load(*a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ae_jax, "load", load_while_another_writes)
        with pytest.raises(UserError, match=r"rival.npy' was written \(or removed\) by another"):
            encode_cli.encode_file(shop_run, str(copy), str(rival))
    assert rival.read_bytes() == b"the other process's codes"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # ... with --overwrite too: it replaces the file as it was when it started, not one
    # written since (two encodes with --overwrite both said they wrote it: a probe).
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ae_jax, "load", load_while_another_writes)
        rival.write_bytes(b"older codes, to replace")
        with pytest.raises(UserError, match=r"\(it changed after this one started\); noth"):
            encode_cli.encode_file(shop_run, str(copy), str(rival), overwrite=True)
    assert rival.read_bytes() == b"the other process's codes"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    assert "wrote 300 codes of size 3" in stdout
    epoch = ae_jax.load(shop_run).epoch  # which checkpoint encoded them (it was unsaid)
    said = f"encoding 300 row(s) of {csv_path} with the epoch-{epoch} checkpoint of {shop_run} "
    assert said + "(which=latest)" in stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "z0,z1,z2" and len(lines) == 301
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1), codes, rtol=1e-6)


# ---- bad input ----


def test_bad_workdirs_and_data_raise_user_error(shop_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("hello")
    no_ckpt = tmp_path / "no_ckpt"
    no_ckpt.mkdir()
    for name in ("config.json", "preprocessor.json"):
        shutil.copy(os.path.join(shop_run, name), no_ckpt / name)
    # A checkpoint of another architecture: this config.json asks for a 4-unit code.
    other = tmp_path / "other"
    shutil.copytree(shop_run, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model"]["latent_dim"] = 4
    (other / "config.json").write_text(json.dumps(cfg))
    parent = tmp_path / "sweep"
    shutil.copytree(no_ckpt, parent / "seed=0")
    # A finished run copied without its checkpoints (training it again: "already finished").
    gone = tmp_path / "gone"
    shutil.copytree(shop_run, gone, ignore=shutil.ignore_patterns("checkpoints"))
    wrong = tmp_path / "wrong.csv"
    lines = open(cfg["data"]["path"]).read().splitlines()
    wrong.write_text("\n".join(line.split(",", 1)[1] for line in lines[:20]) + "\n")
    changed = tmp_path / "changed"
    shutil.copytree(shop_run, changed)
    cfg = json.loads((changed / "config.json").read_text())
    cfg["data"]["path"] = write_purchase_csv(tmp_path / "other.csv", seed=1)
    (changed / "config.json").write_text(json.dumps(cfg))
    cases = [
        (empty, {}, r"has no config.json, so it is not an ae_jax run directory \(it holds \[\]"),
        (foreign, {}, r"has no config.json.*'notes.txt'"),
        (tmp_path / "missing", {}, "does not exist"),
        (no_ckpt, {}, "has no checkpoint yet"),
        (
            gone,
            {},
            r"finished training \(epoch \d+, summary.json\), but its checkpoints are "
            r"missing: .*gone/checkpoints is gone \(deleted, or not copied",
        ),
        (other, {}, r"does not match the architecture in its config.json.*\(4,\)"),
        (parent, {}, r"holds several runs, not one: \['seed=0'\]"),
        (shop_run, {"data_path": str(wrong)}, r"missing 'Administrative'"),
        (shop_run, {"data_path": str(tmp_path / "nope.csv")}, r"--data: no such file"),
        (shop_run, {"which": "first"}, r"which='first'; expected 'latest' or 'best'"),
        (changed, {}, r"changed since training.*differs from the saved preprocessor.json"),
    ]
    for workdir, kwargs, match in cases:
        with pytest.raises(UserError, match=match):
            evaluate.evaluate_workdir(str(workdir), **kwargs)
    with pytest.raises(UserError, match=r"holds several runs, not one: \['seed=0'\]; use each"):
        ae_jax.load(str(parent))  # and so `ae-jax encode`, `export`
    # On a file, a run whose own data changed still evaluates, without the PCA baseline.
    m = evaluate.evaluate_workdir(str(changed), data_path=str(tmp_path / "other.csv"))
    assert "pca/mse" not in m and "changed since training" in m["pca/note"]
    assert m["pca/note"].endswith("so the training split (the PCA baseline's) cannot be rebuilt.")


def test_cli_prints_a_summary_and_one_error_line(tmp_path):
    summary = evaluate_cli.summarize(
        {"recon/mse": 0.0123, "n_val": 9, "vae/iwae": None, "vae/iwae_note": "no likelihood"}
    )
    assert summary.splitlines()[0].startswith("rows") and "0.0123" in summary
    assert "IWAE" not in summary and "note: no likelihood" in summary
    # A mixed table's two summaries (they were in eval.json only: a probe).
    mixed = evaluate_cli.summarize({"recon/numeric_mse": 0.02, "recon/categorical_accuracy": 0.9})
    assert "[recon/numeric_mse]" in mixed and "0.9   [recon/categorical_accuracy]" in mixed
    # What a mixed table's bounds are (densities at discrete values): eval.json's note, said
    # under them as the bce bound's is (it was in eval.json and report.md only: a probe).
    dense = evaluate_cli.summarize({"vae/elbo": -3.5, "likelihood_note": "densities, no log-p"})
    assert dense.splitlines()[-1] == "note: densities, no log-p"
    # A bound with its Monte Carlo error; the values start in one column whatever the names.
    said = evaluate_cli.summarize(
        {"n_val": 9, "vae/bce_bound": -23.78, "vae/bce_bound_mc_se": 0.0042, "vae/kl": 7.5}
    ).splitlines()
    assert "-23.78 ± 0.0042 (Monte Carlo)   [vae/bce_bound]" in said[1]
    assert (
        len({line.index(value) for line, value in zip(said, ("9", "-23.78", "7.5"), strict=True)})
        == 1
    )
    r = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", f"--workdir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "has no config.json" in err[0], r.stderr


def _files(root) -> dict:
    return {
        os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
        for d, _, files in os.walk(root)
        for f in files
    }


def test_evaluate_never_replaces_the_runs_own_evaluation(tmp_path):
    """The run's own evaluation is written once (here by the first `evaluate`, as training
    with eval.at_end would); a second look, the best checkpoint or another file each get
    DIR/evaluations/NAME/, so what a sweep report reads never changes under it."""
    c = seed_simple.get_config()
    c.data.path, c.train.epochs = write_purchase_csv(tmp_path / "shop.csv"), 2
    run = _train(c, tmp_path / "run")
    own = evaluate.evaluate_workdir(run)
    assert own["figures"] and all(f.startswith("figures/") for f in own["figures"])
    assert own["figures"][0] == "figures/learning_curves.png"  # training's, listed as it does
    kept = {k: v for k, v in _files(run).items() if k == "eval.json" or k.startswith("figures")}
    again = evaluate.evaluate_workdir(run)
    best = evaluate.evaluate_workdir(run, which="best")
    other = write_purchase_csv(tmp_path / "new rows.csv", seed=1)
    on_file = evaluate.evaluate_workdir(run, data_path=other)  # (an AE: no --seed, no "seed=")
    now = _files(run)
    assert {k: now[k] for k in kept} == kept
    assert sorted(os.listdir(os.path.join(run, "evaluations"))) == [
        "which=best",
        "which=latest",
        "which=latest,data=new_rows.csv",
    ]
    assert again["recon/mse"] == own["recon/mse"] and best["which"] == "best"
    assert on_file["data"] == other and on_file["data_path"] == os.path.realpath(other)
    # Another file of the same name gets its own NAME; the first file's again replaces its own.
    os.makedirs(tmp_path / "b")
    same_name = write_purchase_csv(tmp_path / "b" / "new rows.csv", seed=2, n=150)
    first = _files(os.path.join(run, "evaluations", "which=latest,data=new_rows.csv"))
    second = evaluate.evaluate_workdir(run, data_path=same_name)
    digest = hashlib.sha256(os.path.realpath(same_name).encode()).hexdigest()[:8]
    names = sorted(os.listdir(os.path.join(run, "evaluations")))
    assert names[-1] == f"which=latest,data=new_rows.csv@{digest}", names
    assert second["n_val"] == 150 and on_file["n_val"] != 150
    assert _files(os.path.join(run, "evaluations", names[-2])) == first  # not replaced
    # Given as a pathlib.Path (it was an AttributeError from the table reader): the same.
    assert evaluate.evaluate_workdir(run, data_path=pathlib.Path(other)) == on_file
    os.symlink(tmp_path / "b", tmp_path / "b_link")  # the same file another way: its own again
    evaluate.evaluate_workdir(run, data_path=str(tmp_path / "b_link" / "new rows.csv"))
    assert sorted(os.listdir(os.path.join(run, "evaluations"))) == names
    os.makedirs(tmp_path / "c")  # the first file through a link: the same file, its own again
    os.symlink(tmp_path / "new rows.csv", tmp_path / "c" / "new rows.csv")
    linked = evaluate.evaluate_workdir(run, data_path=str(tmp_path / "c" / "new rows.csv"))
    assert linked["data_path"] == os.path.realpath(other)
    assert sorted(os.listdir(os.path.join(run, "evaluations"))) == names
    # The first file's rows changed since (a probe: its evaluation was replaced, unsaid): the
    # new rows get a NAME of their own, ending with their digest; evaluated again, that one is
    # replaced; the old rows put back, theirs is.
    plain = os.path.join(run, "evaluations", "which=latest,data=new_rows.csv")
    first = _files(plain)
    write_purchase_csv(other, seed=3)
    edited = evaluate.evaluate_workdir(run, data_path=other, figures=False)
    assert edited["data_digest"] != on_file["data_digest"] and len(edited["data_digest"]) == 32
    added = sorted(set(os.listdir(os.path.join(run, "evaluations"))) - set(names))
    assert added == [f"which=latest,data=new_rows.csv@{edited['data_digest'][:8]}"]
    assert _files(plain) == first
    assert evaluate.evaluate_workdir(run, data_path=other, figures=False) == edited
    assert len(os.listdir(os.path.join(run, "evaluations"))) == len(names) + 1
    write_purchase_csv(other, seed=1)
    assert evaluate.evaluate_workdir(run, data_path=other)["recon/mse"] == on_file["recon/mse"]
    assert len(os.listdir(os.path.join(run, "evaluations"))) == len(names) + 1
    # An evaluation written before eval.json had a digest: its rows are not said, so it is kept.
    saved = json.load(open(os.path.join(plain, "eval.json")))
    del saved["data_digest"]
    json.dump(saved, open(os.path.join(plain, "eval.json"), "w"))
    first = _files(plain)
    evaluate.evaluate_workdir(run, data_path=other, figures=False)
    assert _files(plain) == first
    kept_apart = f"which=latest,data=new_rows.csv@{on_file['data_digest'][:8]}"
    assert kept_apart in os.listdir(os.path.join(run, "evaluations"))
    for m, name in ((again, "which=latest"), (best, "which=best")):
        assert m["figures"] and all(
            f.startswith(f"evaluations/{name}/figures/") for f in m["figures"]
        )
        saved = json.loads(open(os.path.join(run, "evaluations", name, "eval.json")).read())
        assert saved["which"] == m["which"] and saved["recon/mse"] == m["recon/mse"]


def test_a_run_not_finished_is_evaluated_beside_its_own_evaluation(tmp_path, monkeypatch):
    """`evaluate` on a stopped run (or one another process trains) writes
    DIR/evaluations/which=latest,epoch=E/, never DIR/eval.json, which the run's training
    writes when it ends; a checkpoint the trainer deletes between listing and reading is passed
    over for the next listing's."""
    c = seed_simple.get_config()
    c.data.path, c.train.epochs = write_purchase_csv(tmp_path / "shop.csv"), 6
    c.train.checkpoint_every, c.train.figures = 1, False
    run = str(tmp_path / "run")
    monkeypatch.setattr(experiment, "StopRequests", lambda: _Stop(after=3))
    with pytest.raises(Interrupted):
        experiment.train_and_evaluate(c, run)
    monkeypatch.undo()
    newest = max(workdir_lib.checkpoint_epochs(run))
    assert 2 <= newest < 6  # stopped between epochs
    real, read = Checkpointer.restore_raw, []

    def moved_on_while_read(self, epoch):
        """As the training process does after the reader listed: it saves a newer checkpoint
        (here a copy of the newest, as epoch newest + 1) and deletes the one being read, files
        first (the directory is still there when the read fails)."""
        read.append(epoch)
        if len(read) == 1:
            ckpts = self.directory
            shutil.copytree(os.path.join(ckpts, str(epoch)), os.path.join(ckpts, str(epoch + 1)))
            for d, _, files in os.walk(os.path.join(ckpts, str(epoch))):
                for f in files:
                    os.remove(os.path.join(d, f))
        return real(self, epoch)

    monkeypatch.setattr(Checkpointer, "restore_raw", moved_on_while_read)
    m, out = evaluate.evaluate_run(run)
    monkeypatch.undo()
    assert read == [newest, newest + 1] and m["epoch"] == newest + 1
    assert out == os.path.join(run, "evaluations", f"which=latest,epoch={newest + 1}")
    assert json.load(open(os.path.join(out, "eval.json")))["epoch"] == newest + 1
    assert not os.path.exists(os.path.join(run, "eval.json"))
    shutil.rmtree(os.path.join(run, "checkpoints", str(newest + 1)))  # the stand-in, gone
    shutil.rmtree(os.path.join(run, "checkpoints", str(newest)))  # the emptied one
    experiment.train_and_evaluate(c, run)  # resumes, ends, writes the run's own evaluation
    assert json.load(open(os.path.join(run, "eval.json")))["epoch"] == 6
    assert json.load(open(os.path.join(out, "eval.json")))["epoch"] == newest + 1


def test_evaluate_reads_the_npz_array_npz_key_names(tmp_path, caplog):
    """A Keras-style .npz (x_train, x_test, ...) holds several arrays: --npz_key names one."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.uniform(size=(40, 5)))
    c = seed_simple.get_config()
    c.data.path, c.train.epochs = str(tmp_path / "train.npz"), 1
    c.eval.at_end, c.train.figures = False, False  # evaluate_workdir's results are checked
    run = _train(c, tmp_path / "run")
    other = tmp_path / "keras.npz"
    np.savez(other, x_train=rng.uniform(size=(30, 5)), x_test=rng.uniform(size=(10, 5)))
    with pytest.raises(UserError, match=r"set --npz_key to one of its arrays"):
        evaluate.evaluate_workdir(run, data_path=str(other))
    m = evaluate.evaluate_workdir(run, data_path=str(other), npz_key="x_test", figures=False)
    assert m["n_val"] == 10
    saved = os.path.join(run, "evaluations", "which=latest,data=keras.npz,npz_key=x_test")
    assert json.load(open(os.path.join(saved, "eval.json")))["n_val"] == 10
    # Trained on x with its labels y (found by name): another array is evaluated without them.
    np.savez(
        tmp_path / "xy.npz",
        x=rng.uniform(size=(40, 5)),
        y=np.arange(40) % 3,
        x_test=rng.uniform(size=(7, 5)),
    )
    c.data.path = str(tmp_path / "xy.npz")
    run = _train(c, tmp_path / "xy_run")
    m = evaluate.evaluate_workdir(run, data_path=c.data.path, npz_key="x_test", figures=False)
    assert m["n_val"] == 7
    # --npz_key=x names the array the default setting read: the run's own, with its labels.
    tm = ae_jax.load(run)
    assert eval_data.evaluation_data(tm, c.data.path, npz_key="x_test").labels is None
    with caplog.at_level(logging.WARNING):
        own = eval_data.evaluation_data(tm, c.data.path, npz_key="x")
    np.testing.assert_array_equal(own.labels, np.arange(40) % 3)
    assert "is the file the run trained on (its data.path)" in caplog.text
    # The Keras layout's pair: x_test's labels are y_test (they were left out: a probe), the
    # legend named after them; x_train without a y_train has none.
    y_test = np.array(["a", "b", "c", "a", "b", "c", "a"])
    np.savez(tmp_path / "pair.npz", x_test=rng.uniform(size=(7, 5)), y_test=y_test)
    np.savez(tmp_path / "pair_train.npz", x_train=rng.uniform(size=(7, 5)), y_test=y_test)
    paired = eval_data.evaluation_data(tm, str(tmp_path / "pair.npz"), npz_key="x_test")
    np.testing.assert_array_equal(paired.labels, y_test)
    assert paired.label_name == "y_test"
    none = eval_data.evaluation_data(tm, str(tmp_path / "pair_train.npz"), npz_key="x_train")
    assert none.labels is None
    # One-hot rows (Keras' to_categorical) or another count are no labels: evaluated without.
    for y in (np.eye(7), np.arange(6)):
        np.savez(tmp_path / "pair.npz", x_test=rng.uniform(size=(7, 5)), y_test=y)
        paired = eval_data.evaluation_data(tm, str(tmp_path / "pair.npz"), npz_key="x_test")
        assert paired.labels is None


def test_a_workdir_of_the_wrong_kind_is_named_for_what_it_is(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match=r"notes.txt' is a file; expected the workdir of a run"):
        ae_jax.load(str(tmp_path / "notes.txt"))
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text("{}")
    with pytest.raises(UserError, match=r"it is a sweep's, whose runs are .*sw/runs/NAME"):
        ae_jax.load(str(tmp_path / "sw"))


def test_flags_that_do_not_apply_are_refused_not_ignored(shop_run, tmp_path):
    """--iw_samples or --seed on an autoencoder and --npz_key without an .npz were accepted,
    and named a second evaluation folder identical to the first."""
    csv_path = os.path.join(os.path.dirname(shop_run), "shop.csv")
    with pytest.raises(UserError, match=r"--iw_samples=10: k of a VAE's bound; .* is an AE"):
        evaluate.evaluate_run(shop_run, iw_samples=10)
    with pytest.raises(UserError, match=r"--seed=3: seeds a VAE's posterior samples; .* is an AE"):
        evaluate.evaluate_run(shop_run, seed=3)
    with pytest.raises(UserError, match=r"--npz_key='x' names an array of an .npz --data; '.*"):
        evaluate.evaluate_run(shop_run, csv_path, npz_key="x")
    with pytest.raises(UserError, match=r"npz --data; no --data was given\.$"):  # was "got ''"
        evaluate.evaluate_run(shop_run, npz_key="x")
    with pytest.raises(UserError, match=r"--npz_key='x' names an array of an .npz --input"):
        encode_cli.encode_file(shop_run, csv_path, str(tmp_path / "c.npy"), npz_key="x")
    with pytest.raises(UserError, match=r"npz_key='a' names an array .* are a ndarray, not one"):
        ae_jax.load(shop_run).encode(np.zeros((2, 18)), npz_key="a")  # (it was ignored)
    with pytest.raises(UserError, match=r"npz_key='x' names .* are '.*shop.csv', not one: pass"):
        ae_jax.load(shop_run).encode(csv_path, npz_key="x")  # (ignored too, a CSV's rows read)
    made = (
        os.listdir(os.path.join(shop_run, "evaluations"))
        if os.path.isdir(os.path.join(shop_run, "evaluations"))
        else []
    )
    assert not [m for m in made if "iw_samples=10" in m or "npz_key" in m]
    # A run stopped before training began has config.json alone: the message says so.
    os.makedirs(tmp_path / "early")
    shutil.copy(os.path.join(shop_run, "config.json"), tmp_path / "early")
    with pytest.raises(UserError, match=r"stopped before its training began .*rerun its training"):
        ae_jax.load(str(tmp_path / "early"))
    # One that trained and lost its preprocessor.json is no run stopped early: said so.
    shutil.copytree(shop_run, tmp_path / "lost", ignore=shutil.ignore_patterns("preproc*"))
    with pytest.raises(UserError, match=r"holds a run \(summary.json, .*preprocessor.json is gone"):
        ae_jax.load(str(tmp_path / "lost"))


def test_eval_json_per_column_results_pass_over_imputed_cells(tmp_path):
    """With data.missing='impute', eval.json counts the filled cells (imputed_cells, and per
    column imputed_rows) and its per-column results are those of the observed cells: training's
    evaluation and `evaluate --data` of the same file alike."""
    path = write_purchase_csv(tmp_path / "shop.csv", n=200)
    lines = open(path).read().splitlines()
    for i in range(1, 200, 7):  # every 7th row: an empty duration, every 14th a month too
        cells = lines[i].split(",")
        cells[1] = ""
        if i % 14 == 1:
            cells[10] = "NA"
        lines[i] = ",".join(cells)
    open(path, "w").write("\n".join(lines) + "\n")
    c = seed_simple.get_config()
    c.data.path, c.data.missing, c.data.categorical = path, "impute", "onehot"
    c.train.epochs, c.train.figures = 1, False
    run = str(tmp_path / "run")
    experiment.train_and_evaluate(c, run)
    ev = json.load(open(os.path.join(run, "eval.json")))
    ds = data_lib.load_dataset(c.data)
    assert ds.imputed_val is not None and ds.imputed_val.sum() > 0
    assert ev["imputed_cells"] == int(ds.imputed_val.sum())
    per = ev["recon/per_column"]
    names = list(ds.preprocessor.input_columns)
    for j, name in enumerate(names):
        assert per[name].get("imputed_rows", 0) == int(ds.imputed_val[:, j].sum()), name
    # The observed cells' error, computed here from the model's reconstruction.
    tm = ae_jax.load(run)
    recon = tm.decode(tm.encode_features(ds.val))
    j = names.index("Administrative_Duration")
    k = ds.preprocessor.columns.index("Administrative_Duration")
    keep = ~ds.imputed_val[:, j]
    assert per[names[j]]["mse"] == pytest.approx(np.mean((recon[keep, k] - ds.val[keep, k]) ** 2))
    every = evaluate.evaluate_workdir(run, data_path=path, figures=False)
    assert every["imputed_cells"] == 29 + 15  # 29 durations, 15 months
    assert every["recon/per_column"]["Month"]["imputed_rows"] == 15


def test_a_checkpoint_deleted_while_read_is_read_again(shop_run, monkeypatch):
    """The process training a run deletes older checkpoints as it saves: one gone between
    the listing and its reading (FileNotFoundError, seen by `evaluate` on a run training at
    a save every 0.1 s) makes the reader list again, and a listing that never settles is one
    error paragraph naming the training process, not a traceback."""
    real, calls, gone = checkpoint.Checkpointer.epochs, [], iter(range(100, 200))

    def racing(self, settles_after=1):
        calls.append(1)  # each listing names a newer checkpoint, gone by the time it is read
        return real(self) + ([next(gone)] if len(calls) <= settles_after else [])

    monkeypatch.setattr(checkpoint.Checkpointer, "epochs", racing)
    model = ae_jax.load(shop_run)
    assert len(calls) > 1 and model.epoch == max(workdir_lib.checkpoint_epochs(shop_run))
    calls.clear()
    monkeypatch.setattr(
        checkpoint.Checkpointer, "epochs", lambda self: racing(self, settles_after=99)
    )
    with pytest.raises(UserError, match=r"replaced 5 times while being read, by the process"):
        ae_jax.load(shop_run)


def test_a_models_values_that_are_not_finite_are_null_in_eval_json_and_said_so(
    vae_run, tmp_path, caplog
):
    """A diverged model's huge parameters give NaN statistics: written as null and named in
    one warning, without numpy's RuntimeWarnings in the log."""
    tm = ae_jax.load(vae_run)
    # x 1e10: finite but huge codes and logits, whose statistics overflow in numpy (x 1e30
    # gives NaN from the model itself, which numpy does not warn of).
    tm.params = jax.tree.map(lambda a: np.asarray(a) * np.float32(1e10), tm.params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        metrics, _ = evaluate.evaluate_model(tm, eval_data.evaluation_data(tm), iw_samples=2)
    assert statistics.not_finite({"a": 1.0, "b": float("nan"), "c": [np.inf, 2.0, np.nan]}) == [
        "b",
        "c (2)",
    ]
    nested = {"recon/per_column": {"a": {"mse": np.nan, "n": 3}, "b": {"mse": 1.0}}, "t": (np.inf,)}
    assert statistics.not_finite(nested) == ["recon/per_column (1)", "t (1)"]  # (a review)
    bad = statistics.not_finite(metrics)
    assert "recon/bce" in bad and not math.isfinite(metrics["recon/bce"])
    caplog.set_level(logging.WARNING)
    written = evaluate.write_eval(str(tmp_path), metrics)
    assert written["recon/bce"] is None
    assert json.loads((tmp_path / "eval.json").read_text())["recon/bce"] is None
    said = f"{tmp_path / 'eval.json'}: {len(bad)} value(s) are not finite (NaN or infinite), "
    assert said + "written as null: " + ", ".join(bad[:8]) in caplog.text


def test_a_pca_baseline_of_fewer_components_than_the_code_is_said(tmp_path):
    """A training split of 5 rows spans at most 4 directions: pca/mse was of PCA with 4
    components, printed beside ae_over_pca as the code's 9 without a word (a probe)."""
    rng = np.random.default_rng(0)
    header = ",".join(f"c{j}" for j in range(12))
    rows = "\n".join(",".join(f"{v:.4f}" for v in r) for r in rng.normal(size=(6, 12)))
    (tmp_path / "six.csv").write_text(f"{header}\n{rows}\n")
    c = seed_sparse.get_config()
    c.data.path, c.train.epochs = str(tmp_path / "six.csv"), 2
    c.train.figures = c.train.tensorboard = c.train.checkpoints = False
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    m = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert m["pca/note"] == (
        "PCA of the training split's 5 row(s) has at most 4 component(s), fewer than the code's "
        "9: its rows span no more directions"
    )
    assert m["ae_over_pca"] == pytest.approx(m["recon/mse"] / m["pca/mse"])
    assert statistics.pca_few_rows(np.zeros((10, 12)), 9) is None
    assert statistics.pca_few_rows(np.zeros((5, 3)), 9) is None  # 3 features: no more either
    # The boundary: 9 rows span 8 directions, one short of a code of 9; 10 rows span 9.
    assert "has at most 8 component(s)" in statistics.pca_few_rows(np.zeros((9, 12)), 9)


def test_an_evaluation_whose_run_trains_on_meanwhile_is_named_with_its_epoch(tmp_path, monkeypatch):
    """`ae-jax evaluate --which=best` running while an extension of the run starts: the
    extension dates the old end's evaluations (NAME,epoch=E) before this one is written, and a
    probe found it written undated, beside the new end, later replaced by another. Named with
    its checkpoint's epoch when the run has trained on since its name was chosen."""
    c = seed_simple.get_config()
    c.train.epochs, c.train.figures = 2, False
    run = _train(c, tmp_path / "run")
    real = evaluate.evaluate_model

    def extended_meanwhile(*args, **kwargs):
        out = real(*args, **kwargs)
        os.remove(os.path.join(run, "summary.json"))  # as `reruns.reopen` does
        return out

    monkeypatch.setattr(evaluate, "evaluate_model", extended_meanwhile)
    metrics, out = evaluate.evaluate_run(run, which="best", figures=False)
    assert os.path.basename(out) == f"which=best,epoch={metrics['epoch']}"
    assert os.path.exists(os.path.join(out, "eval.json"))
    monkeypatch.setattr(evaluate, "evaluate_model", real)  # the run as it is: its name undated
    c.train.epochs = 3
    _train(c, run)
    _, out = evaluate.evaluate_run(run, which="best", figures=False)
    assert os.path.basename(out) == "which=best"


def test_the_rows_digest_is_of_what_the_evaluation_reads():
    """A blank categorical cell imputed with the most frequent value gave the same features, so
    the same digest, though eval.json's per-column numbers count observed cells only (a
    review): the digest covers the features, which cells were imputed, and the labels."""
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    base = eval_data.EvalData(x, np.array(["a", "b", "a"], object), None, ["u", "v"], None, "f")
    same = eval_data.EvalData(
        x.copy(), np.array(["a", "b", "a"], object), None, ["u", "v"], None, "f"
    )
    assert evaluate.rows_digest(base) == evaluate.rows_digest(same)
    imputed = dataclasses.replace(base, imputed=np.array([[False], [True], [False]]))
    relabelled = dataclasses.replace(base, labels=np.array(["a", "b", "b"], object))
    unlabelled = dataclasses.replace(base, labels=None)
    digests = {evaluate.rows_digest(d) for d in (base, imputed, relabelled, unlabelled)}
    assert len(digests) == 4


def test_figure_inputs_are_each_models_own_in_the_datas_units(vae_run):
    """What a group's figures draw, per model: its own reconstructions of the rows shown beside
    them, its own samples, manifold and history, the rows' own labels, all in the data's
    units (here a scaling of x * 2 - 1 undone), a VAE's manifold over the prior's +-2.5, from
    the evaluated and the unevaluated path alike. A mutation check found every one of these
    unguarded: model 0's reconstructions or history for every model, reconstructions of the
    next rows, the scaling left on, labels one row off, a manifold over +-1 all passed."""
    tm = ae_jax.load(vae_run)
    data = eval_data.evaluation_data(tm)
    d = data.x.shape[1]
    data = dataclasses.replace(data, scale=np.full(d, 2.0), offset=np.full(d, -1.0))
    own_units = lambda a: np.asarray(a, np.float64) * 2.0 - 1.0  # noqa: E731
    params = jax.tree.map(lambda a: np.stack([np.asarray(a), 0.8 * np.asarray(a)]), tm.params)
    configs = [tm.config.copy_and_resolve_references() for _ in range(2)]
    configs[1].train.seed = 7
    results = evaluate.evaluate_group(tm.model, params, data, configs, [tm.epoch] * 2)
    histories = [[{"epoch": 1, "eval/loss": 1.0}], [{"epoch": 1, "eval/loss": 2.0}]]
    n, grid = eval_plots.N_SHOW, eval_plots.GRID
    for res in (results, None):
        inputs = figure_data.figure_inputs(tm.model, params, data, configs, res, histories, 3)
        for i, (f, c) in enumerate(zip(inputs, configs, strict=True)):
            mine = jax.tree.map(lambda a, i=i: a[i : i + 1], params)
            recon = passes.deterministic_many(tm.model, mine, data.x[:n], n)["out"][0]
            np.testing.assert_array_equal(f.x_show, own_units(data.x[:n]))
            np.testing.assert_allclose(f.recon_show, own_units(recon), rtol=1e-5, atol=1e-6)
            assert f.history is histories[i]
            np.testing.assert_array_equal(f.labels, data.labels)
            z = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(c.train.seed), 3), (n, 2))
            samples = passes.decode_many(tm.model, mine, np.asarray(z))[0]
            np.testing.assert_allclose(f.samples, own_units(samples), rtol=1e-5, atol=1e-6)
            if res is not None:
                decoded, lo, hi = f.manifold
                assert lo.tolist() == [-2.5, -2.5] and hi.tolist() == [2.5, 2.5]
                z = eval_plots.latent_grid(lo, hi, grid)
                manifold = passes.decode_many(tm.model, mine, z)[0]
                np.testing.assert_allclose(decoded, own_units(manifold), rtol=1e-5, atol=1e-6)
        assert not np.allclose(inputs[0].recon_show, inputs[1].recon_show)


def test_a_manifold_spans_the_codes_and_2d_codes_are_drawn_as_they_are():
    """An AE's manifold spans each unit's codes (a span fixed at one unit passed, the test's
    codes spanning exactly 1), and 2-D codes are drawn as (z0, z1) (swapped passed)."""
    codes = np.array([[-3.0, 0.5], [5.0, 0.5], [1.0, 0.5]])
    lo, hi = eval_plots.code_range(codes)
    assert lo.tolist() == [-3.0, 0.5] and hi.tolist() == [5.0, 1.5]  # constant unit: 1 wide
    points, names = eval_plots.project_2d(codes)
    np.testing.assert_array_equal(points, codes)
    assert names == ("z0", "z1")


def test_the_accuracy_bars_draw_the_model_as_the_model_and_the_baseline_as_the_baseline(tmp_path):
    """recon_per_column.png's bars: the model's accuracy as its series, the most frequent
    value's as the baseline (the two swapped passed every test: a mutation check)."""
    f = eval_plots.FigureInputs(
        columns=["a", "b"], image_shape=None, epoch=1, is_vae=False,
        column_accuracy=(["a", "b"], [0.9, 0.8], [0.5, 0.6]),
    )  # fmt: skip
    (bars,) = [d for d in eval_plots.plan(str(tmp_path), f) if "recon_per_column" in d.path]
    names, model, baseline = bars.args[:3]
    assert list(names) == ["a", "b"] and list(model) == [0.9, 0.8] and list(baseline) == [0.5, 0.6]
    assert bars.args[-1] == "most frequent value"  # the baseline's legend entry
