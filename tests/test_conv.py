"""Convolutional models (ae_jax/conv.py): shapes, standalone halves, conv maths, training."""

import functools
import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from sklearn.datasets import load_digits

import ae_jax
from ae_jax import config as config_lib
from ae_jax import experiment, models
from ae_jax.errors import UserError
from ae_jax.models import conv


def _model_cfg(**kw):
    c = config_lib.default_config().model
    c.arch = "conv"
    for k, v in kw.items():
        c[k] = v
    return c


def _init(model, d: int, n: int = 3):
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, d))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x, jax.random.PRNGKey(2))["params"]
    return x, params


@functools.partial(jax.jit, static_argnames=("model", "method"))
def _apply(model, params, *args, method=None):
    """model.apply, jitted (op-by-op dispatch of the many small conv ops is slow) and cached
    per model, method and shapes."""
    return model.apply({"params": params}, *args, method=method)


# 8x8 digits, 28x28 MNIST (28 -> 14 -> 7), 32x32 RGB, and sizes that do not halve evenly.
SHAPES = [(8, 8), (28, 28), (32, 32, 3), (7, 5), (5, 9, 2)]


@pytest.mark.parametrize("name", ["autoencoder", "vae"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_shapes_any_leading_axes(name, shape):
    # Shapes only: jax.eval_shape traces without compiling, so every case costs milliseconds.
    d = math.prod(shape)
    model = models.build_model(_model_cfg(name=name, latent_dim=3), d, shape)
    x, key = jax.ShapeDtypeStruct((3, d), jnp.float32), jax.random.PRNGKey(0)
    params = jax.eval_shape(model.init, key, x, key)["params"]
    assert set(params) == {"encoder", "decoder"}
    out = jax.eval_shape(lambda p, x: model.apply({"params": p}, x, key), params, x)
    assert out["out"].shape == out["logits"].shape == (3, d) and out["code"].shape == (3, 3)
    if name == "vae":
        assert out["mean"].shape == out["logvar"].shape == out["z"].shape == (3, 3)
    # One row (the evaluation vmaps the halves over rows) and extra leading axes.
    for lead in [(), (2, 3)]:
        xs = jax.ShapeDtypeStruct((*lead, d), jnp.float32)
        code = jax.eval_shape(
            lambda p, v: model.apply({"params": p}, v, method="encode"), params, xs
        )
        assert code.shape == (*lead, 3)
        recon = jax.eval_shape(
            lambda p, v: model.apply({"params": p}, v, method="decode"), params, code
        )
        assert recon.shape == (*lead, d)


def _reconstruct(module, x):
    return module.decode(module.encode(x))


@pytest.fixture(scope="module")
def built():
    """name -> (model, x, params) on 9x7 images (odd: the decoder crops 10x8 back to 9x7),
    shared so that tests reuse one compilation of each program."""
    out = {}
    for name in ("autoencoder", "vae"):
        model = models.build_model(_model_cfg(name=name, latent_dim=4), 63, (9, 7))
        out[name] = (model, *_init(model, 63))
    return out


@pytest.mark.parametrize("name", ["autoencoder", "vae"])
def test_standalone_halves_equal_full_model(built, name):
    model, x, params = built[name]
    out = _apply(model, params, x, jax.random.PRNGKey(3))
    enc = _apply(model.encoder, params["encoder"], x)
    code = enc[0] if name == "vae" else enc
    np.testing.assert_allclose(code, out["code"], rtol=1e-5, atol=1e-6)
    # The VAE decodes its sample z, the AE its code; the standalone decoder must agree.
    z = out["z"] if name == "vae" else code
    logits = _apply(model.decoder, params["decoder"], z)
    np.testing.assert_allclose(logits, out["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.nn.sigmoid(logits), out["out"], rtol=1e-5, atol=1e-6)
    decoded = _apply(model, params, code, method="decode")
    standalone = jax.nn.sigmoid(_apply(model.decoder, params["decoder"], code))
    np.testing.assert_allclose(standalone, decoded, rtol=1e-5, atol=1e-6)


def test_layers_mirror_the_encoder():
    model = models.build_model(_model_cfg(conv_features=(16, 32, 48), latent_dim=5), 784, (28, 28))
    x, key = jax.ShapeDtypeStruct((1, 784), jnp.float32), jax.random.PRNGKey(0)
    shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(model.init, key, x, key)["params"])
    enc, dec = shapes["encoder"], shapes["decoder"]
    assert [enc["conv"][f"conv_{i}"]["kernel"] for i in range(3)] == [
        (3, 3, 1, 16),
        (3, 3, 16, 32),
        (3, 3, 32, 48),
    ]
    assert enc["code"]["kernel"] == (4 * 4 * 48, 5)  # 28 -> 14 -> 7 -> 4
    assert dec["dense"]["kernel"] == (5, 4 * 4 * 48)
    assert [dec[f"deconv_{i}"]["kernel"] for i in range(3)] == [
        (3, 3, 48, 48),
        (3, 3, 48, 32),
        (3, 3, 32, 16),
    ]
    assert dec["out"]["kernel"] == (3, 3, 16, 1)
    assert conv.map_sizes(28, 28, 3) == [(28, 28), (14, 14), (7, 7), (4, 4)]


def test_an_odd_sized_image_is_the_top_left_of_the_next_even_ones():
    """Transposed convolutions double a map (2 -> 4 -> 8); a 7-pixel side keeps the first 7
    rows and columns, lined up with the encoder's maps. 7x7 and 8x8 decoders share their
    parameters' shapes, so with the same ones the 7x7 image is the 8x8 one's top left, but for
    its last row and column (the output convolution reaches the cut border there)."""
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 5))
    small, large = (conv.ConvDecoder((n, n, 2), (4, 6), ("relu", "relu")) for n in (7, 8))
    params = large.init(jax.random.PRNGKey(1), z)
    got = np.asarray(small.apply(params, z)).reshape(3, 7, 7, 2)
    whole = np.asarray(large.apply(params, z)).reshape(3, 8, 8, 2)
    np.testing.assert_allclose(got[:, :6, :6], whole[:, :6, :6], rtol=1e-5, atol=1e-6)
    assert np.abs(whole[:, :6, :6] - whole[:, 1:7, 1:7]).max() > 1e-3  # (a shift would show)


def test_an_rgb_rows_colour_channels_are_its_last_axis():
    """Rows are (H, W, C) images flattened: swapping two colour channels of the rows, and the
    same two of the first convolution's input, leaves the code as it was; swapping two of the
    output convolution's channels swaps them in the decoded rows."""
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 6 * 5 * 3))
    enc = conv.ConvEncoder((6, 5, 3), (4,), ("tanh",), 5)
    p = enc.init(jax.random.PRNGKey(1), x)
    order = np.array([2, 0, 1])
    swapped_x = x.reshape(2, 6, 5, 3)[..., order].reshape(2, -1)
    swapped_p = jax.tree.map(lambda a: a, p)
    first = swapped_p["params"]["conv"]["conv_0"]
    first["kernel"] = first["kernel"][:, :, order, :]
    np.testing.assert_allclose(
        enc.apply(swapped_p, swapped_x), enc.apply(p, x), rtol=1e-5, atol=1e-6
    )
    z = jax.random.normal(jax.random.PRNGKey(2), (2, 5))
    dec = conv.ConvDecoder((6, 5, 3), (4,), ("tanh",))
    q = dec.init(jax.random.PRNGKey(3), z)
    swapped_q = jax.tree.map(lambda a: a, q)
    out = swapped_q["params"]["out"]
    out["kernel"], out["bias"] = out["kernel"][..., order], out["bias"][order]
    want = np.asarray(dec.apply(q, z)).reshape(2, 6, 5, 3)[..., order]
    got = np.asarray(dec.apply(swapped_q, z)).reshape(2, 6, 5, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_convolutions_run_as_matmuls_on_a_cpu_only():
    """XLA's CPU convolutions are the slow path `matmul_conv` replaces: a conv model's program
    has none on a CPU, and XLA's own elsewhere."""
    model = models.build_model(_model_cfg(conv_features=(4, 6), latent_dim=3), 64, (8, 8))
    x, key = jnp.ones((2, 64)), jax.random.PRNGKey(0)
    params = model.init(key, x, key)
    program = str(jax.make_jaxpr(lambda p: model.apply(p, x, key))(params))
    assert ("conv_general_dilated" in program) == (jax.default_backend() != "cpu")


def test_matmul_conv_matches_lax():
    rng = np.random.default_rng(0)
    dn = ("NHWC", "HWIO", "NHWC")
    cases = [  # (H, W, C, F, kh, kw, strides, padding, input dilation)
        (8, 8, 1, 4, 3, 3, (2, 2), "SAME", (1, 1)),
        (7, 5, 3, 2, 3, 3, (2, 2), "SAME", (1, 1)),
        (9, 6, 2, 3, 5, 2, (1, 3), "VALID", (1, 1)),
        (6, 6, 2, 3, 3, 3, (1, 1), ((1, 2), (0, 1)), (1, 1)),
        (4, 3, 2, 5, 3, 2, (1, 1), ((2, 1), (1, 0)), (2, 3)),  # transposed: phase path
        (2, 2, 3, 4, 5, 5, (1, 1), ((4, 4), (-1, 2)), (2, 2)),
        (3, 5, 2, 2, 1, 1, (1, 1), ((0, 0), (1, 0)), (2, 2)),  # kernel smaller than dilation
        (5, 4, 2, 2, 3, 3, (2, 1), ((1, 1), (1, 1)), (2, 2)),  # dilation and stride
    ]
    for h, w, c, f, kh, kw, strides, padding, dil in cases:
        x = jnp.asarray(rng.normal(size=(2, h, w, c)), jnp.float32)
        k = jnp.asarray(rng.normal(size=(kh, kw, c, f)), jnp.float32)
        # Full float32 products, so the algebra is compared, not the accelerator's default
        # precision (TF32 on a recent NVIDIA GPU: 1e-3 apart, seen on an H200; CPU: no change).
        with jax.default_matmul_precision("highest"):
            want = lax.conv_general_dilated(
                x, k, strides, padding, lhs_dilation=dil, dimension_numbers=dn
            )
            got = jax.jit(
                lambda x, k, s=strides, p=padding, d=dil: conv.matmul_conv(
                    x, k, s, p, lhs_dilation=d
                )
            )(x, k)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("native", [False, True], ids=["matmul", "native"])
@pytest.mark.parametrize("kernel", [1, 3, 4])  # both branches of the SAME padding
def test_transposed_conv_equals_flax_conv_transpose(kernel, native):
    # Both implementations (native: what runs on GPU and TPU) against Flax's own layer.
    # At full float32 precision, as in test_matmul_conv_matches_lax.
    with jax.default_matmul_precision("highest"):
        x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 4, 3))
        ref = nn.ConvTranspose(5, (kernel, kernel), strides=(2, 2), padding="SAME")
        variables = ref.init(jax.random.PRNGKey(1), x)
        ours = conv._conv(5, kernel, None, "deconv", stride=2, transpose=True, native=native)
        want = ref.apply(variables, x)
        assert want.shape == (2, 14, 8, 5)
        got = jax.jit(ours.apply)(variables, x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        strided = conv._conv(5, kernel, None, "conv", stride=2, native=native)
        want = nn.Conv(5, (kernel, kernel), strides=2, padding="SAME").apply(variables, x)
        got = jax.jit(strided.apply)(variables, x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_vae_sample_clamp_and_bfloat16(built):
    model, x, params = built["vae"]
    s = jax.jit(lambda p, k: model.apply({"params": p}, k, 11, method=models.VAE.sample))(
        params, jax.random.PRNGKey(3)
    )
    assert s.shape == (11, 63) and bool(jnp.all((s >= 0) & (s <= 1)))
    # A huge input drives the log-variance head far out; it is clamped, exp() stays finite.
    out = _apply(model, params, jnp.full(x.shape, 1e6), jax.random.PRNGKey(4))
    assert models.LOGVAR_MIN <= float(out["logvar"].min())
    assert float(out["logvar"].max()) <= models.LOGVAR_MAX
    # Mixed precision: bfloat16 compute, float32 parameters, the same parameter tree.
    bf = models.build_model(
        _model_cfg(name="vae", latent_dim=4, compute_dtype="bfloat16"), 63, (9, 7)
    )
    bf_params = jax.eval_shape(bf.init, jax.random.PRNGKey(1), x, jax.random.PRNGKey(2))
    assert jax.tree.map(lambda a: (a.shape, a.dtype), bf_params["params"]) == jax.tree.map(
        lambda a: (a.shape, a.dtype), params
    )
    bf_out = jax.eval_shape(lambda p: bf.apply({"params": p}, x, jax.random.PRNGKey(3)), params)
    assert bf_out["logits"].dtype == jnp.bfloat16
    # Compared without sampling: eps drawn in bfloat16 differs from eps drawn in float32.
    got = _apply(bf, params, x, method=_reconstruct).astype(jnp.float32)
    np.testing.assert_allclose(got, _apply(model, params, x, method=_reconstruct), atol=0.02)


def test_user_errors():
    with pytest.raises(
        UserError,
        match=r"model.arch='conv' needs image data: .* got tabular "
        r"data with 30 columns",
    ):
        models.build_model(_model_cfg(), 30)
    with pytest.raises(
        UserError,
        match=r"image shape \(8, 8\) has 64 values but the rows have "
        r"65 features .*keep_label",
    ):
        models.build_model(_model_cfg(), 65, (8, 8))
    with pytest.raises(UserError, match="model.activation: 3 activations given"):
        models.build_model(_model_cfg(activation="relu,tanh,elu"), 64, (8, 8))
    # Per-layer activations: one per conv layer.
    models.build_model(_model_cfg(activation="relu,tanh"), 64, (8, 8))


def test_conv_vae_trains_on_digits(tmp_path):
    c = config_lib.default_config()
    c.data.name, c.data.scaling = "digits", "none"
    c.model.name, c.model.arch, c.model.latent_dim = "vae", "conv", 4
    c.model.conv_features = (16,)  # one layer: compiling the training programs dominates
    c.loss.recon = "bce"
    c.optim.learning_rate = 3e-3
    c.train.epochs, c.train.batch_size, c.train.tensorboard = 4, 64, False
    c.eval.iw_samples = 4  # the evaluation's figures are checked, not its IWAE bound
    experiment.train_and_evaluate(c, str(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["eval/loss"] < rows[0]["eval/loss"] - 1.0, rows
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "done"
    for name in ("reconstructions.png", "samples.png", "learning_curves.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    # Grey digits under a Bernoulli likelihood: a cross-entropy, so no bound is called log p(x).
    assert ev["likelihood"] == "bernoulli" and ev["is_log_likelihood"] is False
    assert "vae/elbo" not in ev and "vae/iwae" not in ev
    assert ev["vae/bce_iwae_bound"] > ev["vae/bce_bound"]
    # No rows in, none out, of the shapes more rows give (a conv model's 0-row reshape divided
    # by zero; an MLP's returned these).
    m = ae_jax.load(str(tmp_path))
    none = np.zeros((0, 64), np.float32)
    some = m.encode(load_digits().data[:3])
    assert some.shape == (3, 4) and m.encode(none).shape == (0, 4)
    assert m.encode(none).dtype == some.dtype == np.float32
    assert m.decode(np.zeros((0, 4))).shape == (0, 64) and m.reconstruct(none).shape == (0, 64)


def test_a_conv_model_takes_the_mixed_likelihood_as_an_mlp_does(tmp_path):
    """loss.recon='mixed' on a conv model failed inside the loss's trace (the model was built
    without the data's column layout: TypeError, a 60-line traceback). On pixels every column
    is numeric, so its mixed likelihood is the Gaussian one of the raw output (mixed's numeric
    mean is the output itself): the same numbers, step for step."""
    losses = {}
    for recon in ("mixed", "gaussian"):
        c = config_lib.default_config()
        c.data.name = "digits"
        c.model.name, c.model.arch, c.model.latent_dim = "vae", "conv", 2
        c.model.conv_features, c.model.output_activation = (2,), "identity"
        c.loss.recon, c.loss.obs_std = recon, 0.5
        c.train.epochs, c.train.batch_size = 1, 256
        c.train.tensorboard = c.train.figures = c.eval.at_end = False
        experiment.train_and_evaluate(c, str(tmp_path / recon))
        row = json.loads((tmp_path / recon / "metrics.jsonl").read_text().splitlines()[0])
        losses[recon] = (row["train/loss"], row["eval/loss"])
    assert losses["mixed"] == losses["gaussian"]
