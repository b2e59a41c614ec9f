"""The suite's own settings (conftest.py): XLA's costly passes off, except in tests marked
`optimized`, which compile as users' runs do, in their process and their launchers alike."""

import os

import jax
import pytest

from tests.conftest import PASSES_OFF


@pytest.mark.optimized
def test_an_optimized_test_compiles_as_users_runs_do(monkeypatch):
    assert jax.config.read("jax_disable_most_optimizations") is False
    assert os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] == "0"  # its launchers' too
    monkeypatch.setenv("OTHER", "1")
    monkeypatch.undo()  # the test's own patches only
    assert os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] == "0"


@pytest.mark.skipif(not PASSES_OFF, reason="the suite's CPU setting, unless one was set")
def test_a_plain_test_compiles_with_the_costly_passes_off():
    """(After the test above in the same process: its setting was put back.)"""
    assert jax.config.read("jax_disable_most_optimizations") is True
    assert os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] == "1"
