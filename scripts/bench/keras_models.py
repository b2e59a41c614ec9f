"""The seed's models in Keras 3 (JAX backend), for the in-process Keras contenders.

`keras` is None (and KERAS_ERROR says why) when Keras cannot be imported; the sections then
leave their Keras columns empty.
"""

import numpy as np

from bench import common  # noqa: F401  (sets KERAS_BACKEND=jax before Keras is imported)

try:
    import keras
except Exception as e:  # Any failure to import (e.g. no backend) means no Keras column.
    keras, KERAS_ERROR = None, f"{type(e).__name__}: {e}"
else:
    KERAS_ERROR = ""


def version() -> str:
    return keras.__version__ if keras is not None else "unavailable"


def keras_model(kind: str, d: int, l1_weight: float = 1e-4, seed: int = 0):
    """The seed's Keras models, compiled with the seed's optimizer and loss."""
    layers = keras.layers
    inp = keras.Input((d,))
    if kind == "sparse":  # experiments/configs/seed_sparse.py: code 9 sigmoid, adam eps 1e-7
        code = layers.Dense(
            9, activation="sigmoid", activity_regularizer=keras.regularizers.l1(l1_weight)
        )(inp)
        model = keras.Model(inp, layers.Dense(d, activation="sigmoid")(code))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7), loss="mse")
        return model
    if kind == "deep":
        h = inp
        for width in (15, 11, 11, 8, 11, 11, 15):  # encoder 15-11-11, code 8, decoder 11-11-15
            h = layers.Dense(width, activation="sigmoid")(h)
        model = keras.Model(inp, layers.Dense(d, activation="relu")(h))
        model.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0), loss="mse")
        return model
    # The blog's VAE, the Keras 3 way: KL added by the sampling layer, recon = d * bce.
    ops = keras.ops

    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            mean, logvar = inputs
            kl = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
            self.add_loss(ops.mean(kl))  # Batch mean, like the compiled loss: -ELBO per row.
            eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            return mean + ops.exp(0.5 * logvar) * eps

    h = layers.Dense(12, activation="relu")(inp)
    mean, logvar = layers.Dense(2)(h), layers.Dense(2)(h)
    z = Sampling()([mean, logvar])
    out = layers.Dense(d, activation="sigmoid")(layers.Dense(12, activation="relu")(z))
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=lambda y, p: d * keras.losses.binary_crossentropy(y, p),
    )
    return model


class KerasRunner:
    """Keras' `fit(epochs=1)` per epoch, for the throughput table."""

    label = "keras"

    def __init__(self, kind: str, config, x_train: np.ndarray):
        keras.utils.set_random_seed(int(config.train.seed))
        self.model = keras_model(kind, x_train.shape[1])
        self.x, self.batch_size = x_train, int(config.train.batch_size)

    def run_epoch(self) -> None:
        self.model.fit(
            self.x, self.x, batch_size=self.batch_size, epochs=1, shuffle=True, verbose=0
        )


def sweep_run(
    x_all: np.ndarray, val_split: float, l1_weight: float, seed: int, epochs: int, batch: int
) -> None:
    """One model of the sweep the Keras way: a fresh model, `fit` with `validation_split`."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras_model("sparse", x_all.shape[1], l1_weight=l1_weight)
    model.fit(
        x_all,
        x_all,
        batch_size=batch,
        epochs=epochs,
        shuffle=True,
        validation_split=val_split,
        verbose=0,
    )
