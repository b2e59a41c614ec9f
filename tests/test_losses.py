"""Loss terms against hand-computed and Monte-Carlo answers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ae_jax.training import losses


def test_kl_normal_is_zero_at_the_prior():
    mean, logvar = jnp.zeros((3, 5)), jnp.zeros((3, 5))
    np.testing.assert_allclose(losses.kl_normal(mean, logvar), np.zeros(3), atol=1e-7)


@pytest.mark.parametrize("mu,sigma", [(0.5, 1.0), (-1.0, 0.5), (2.0, 2.0)])
def test_kl_normal_matches_monte_carlo(mu, sigma):
    d = 3
    mean, logvar = jnp.full((d,), mu), jnp.full((d,), 2 * math.log(sigma))
    z = np.asarray(mu + sigma * jax.random.normal(jax.random.PRNGKey(0), (400_000, d)))
    # Densities from scipy, not from the code under test.
    log_q = stats.norm.logpdf(z, mu, sigma).sum(axis=1)
    log_p = stats.norm.logpdf(z).sum(axis=1)
    mc = float(np.mean(log_q - log_p))
    exact = float(losses.kl_normal(mean, logvar))
    # Closed form per dimension: log(1/sigma) + (sigma^2 + mu^2) / 2 - 1/2.
    assert exact == pytest.approx(d * (-math.log(sigma) + (sigma**2 + mu**2) / 2 - 0.5), rel=1e-5)
    assert mc == pytest.approx(exact, rel=0.02, abs=0.01)


def test_l1_is_sum_of_absolute_code_per_row():
    code = jnp.array([[1.0, -2.0, 0.5], [0.0, 0.0, -3.0]])
    np.testing.assert_allclose(losses.l1(code), [3.5, 3.0])


def test_kl_sparsity_hand_computed():
    code = jnp.array([[0.1, 0.5], [0.3, 0.7]])  # unit means 0.2 and 0.6
    rho = 0.05
    kl = lambda r, q: r * math.log(r / q) + (1 - r) * math.log((1 - r) / (1 - q))
    assert float(losses.kl_sparsity(code, rho)) == pytest.approx(
        kl(rho, 0.2) + kl(rho, 0.6), rel=1e-5
    )
    # Masked rows do not count: with the second row masked the means are 0.1 and 0.5.
    masked = losses.kl_sparsity(code, rho, jnp.array([1.0, 0.0]))
    assert float(masked) == pytest.approx(kl(rho, 0.1) + kl(rho, 0.5), rel=1e-5)
    assert float(losses.kl_sparsity(jnp.full((4, 3), rho), rho)) == pytest.approx(0.0, abs=1e-6)


def test_bce_from_logits_matches_probability_form():
    logits = jnp.array([[-3.0, 0.0, 2.5], [10.0, -10.0, 0.3]])
    x = jnp.array([[0.0, 1.0, 0.2], [1.0, 0.0, 0.7]])
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(-1)
    np.testing.assert_allclose(losses.bce_logits(logits, x), expected, rtol=1e-5)
    # Logits far beyond float32 sigmoid saturation stay finite.
    assert np.isfinite(losses.bce_logits(jnp.array([[200.0, -200.0]]), jnp.array([[0.0, 1.0]])))


def test_squared_error_and_gaussian_nll_hand_computed():
    x_hat, x = jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]])
    np.testing.assert_allclose(losses.squared_error(x_hat, x), [5.0])
    logvar = jnp.log(jnp.array([[4.0, 4.0]]))
    expected = 0.5 * (2 * math.log(2 * math.pi) + 2 * math.log(4.0) + 5.0 / 4.0)
    np.testing.assert_allclose(losses.gaussian_nll(x_hat, logvar, x), [expected], rtol=1e-6)
