"""Model shapes, standalone encoder/decoder, per-layer activations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax import config as config_lib
from ae_jax import models
from ae_jax.errors import UserError


def _model_cfg(**kw):
    c = config_lib.default_config().model
    for k, v in kw.items():
        c[k] = v
    return c


@pytest.mark.parametrize("name", ["autoencoder", "vae"])
def test_shapes_and_standalone_halves(name):
    cfg = _model_cfg(name=name, encoder_widths=(15, 11), latent_dim=4)
    model = models.build_model(cfg, num_features=18)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 18))
    rng = jax.random.PRNGKey(1)
    params = model.init(jax.random.PRNGKey(2), x, rng)["params"]
    assert set(params) == {"encoder", "decoder"}
    out = model.apply({"params": params}, x, rng)
    assert out["out"].shape == (5, 18) and out["code"].shape == (5, 4)
    # The halves work on their own with their own parameters, like the seed's Keras models.
    code = model.encoder.apply({"params": params["encoder"]}, x)
    code = code[0] if name == "vae" else code
    np.testing.assert_allclose(code, model.apply({"params": params}, x, method="encode"), rtol=1e-6)
    logits = model.decoder.apply({"params": params["decoder"]}, code)
    np.testing.assert_allclose(
        jax.nn.sigmoid(logits), model.apply({"params": params}, code, method="decode"), rtol=1e-6
    )
    if name == "autoencoder":
        np.testing.assert_allclose(out["out"], jax.nn.sigmoid(logits), rtol=1e-6)


def test_deep_widths_and_mirrored_decoder():
    model = models.build_model(_model_cfg(encoder_widths=(15, 11, 11), latent_dim=8), 18)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 18)), None)["params"]
    shapes = jax.tree.map(lambda a: a.shape, params)
    enc, dec = shapes["encoder"]["mlp"], shapes["decoder"]["mlp"]
    assert [enc[f"dense_{i}"]["kernel"] for i in range(3)] == [(18, 15), (15, 11), (11, 11)]
    assert shapes["encoder"]["code"]["kernel"] == (11, 8)
    assert [dec[f"dense_{i}"]["kernel"] for i in range(3)] == [(8, 11), (11, 11), (11, 15)]
    assert shapes["decoder"]["out"]["kernel"] == (15, 18)


def test_vae_sample_and_logvar_clamp():
    model = models.build_model(_model_cfg(name="vae", encoder_widths=(6,), latent_dim=2), 7)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 7)), jax.random.PRNGKey(1))["params"]
    s = model.apply({"params": params}, jax.random.PRNGKey(3), 11, method=models.VAE.sample)
    assert s.shape == (11, 7) and bool(jnp.all((s >= 0) & (s <= 1)))
    # A huge input drives the log-variance head far out; it is clamped, exp() stays finite.
    out = model.apply({"params": params}, jnp.full((1, 7), 1e6), jax.random.PRNGKey(4))
    assert float(out["logvar"].max()) <= models.LOGVAR_MAX
    assert float(out["logvar"].min()) >= models.LOGVAR_MIN


def test_per_layer_activations_and_errors():
    assert config_lib.parse_activations("relu,tanh", 2, "f") == ("relu", "tanh")
    assert config_lib.parse_activations("gelu", 3, "f") == ("gelu",) * 3
    with pytest.raises(UserError, match=r"model.activation: unknown activation 'relux'.*sigmoid"):
        models.build_model(_model_cfg(activation="relux", encoder_widths=(4,)), 5)
    with pytest.raises(UserError, match="2 activations given .* for 3 hidden layers"):
        config_lib.parse_activations("relu,tanh", 3, "model.activation")
