r"""seed_sparse as a Keras 3 user writes it: read the CSV, encode, scale, fit, evaluate, save.

  KERAS_BACKEND=jax python scripts/bench/keras_seed_sparse.py --csv=TABLE.csv \
    [--epochs=20] [--batch_size=64] [--out=DIR]

Standalone on purpose (numpy and Keras only, nothing from this repository): the benchmark runs
it as a whole process, start to exit, against `python -m experiments.main` with
experiments/configs/seed_sparse.py on the same file. The model is that config's:
Dense(D -> 9, sigmoid) with an L1 activity regularizer of 1e-4 on the code, Dense(9 -> D,
sigmoid), mean squared error, Adam (learning rate 1e-3, epsilon 1e-7). The data path mirrors
the package's defaults: numeric columns as numbers, true/false columns as 1/0, any other
column as ordinal codes of its sorted values (--categorical=onehot for one-hot), a seeded 20%
validation split, min-max scaling fitted on the training rows. `fit` validates on the held-out
rows every epoch and prints one line per epoch (verbose=2); then the validation MSE is printed
and, with --out, the model saved as DIR/model.keras. The last line of output is JSON with the
seconds of each phase.
"""

import argparse
import csv
import json
import os
import time

T0 = time.perf_counter()
os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

T_IMPORT = time.perf_counter()
TRUE_FALSE = {"true": 1.0, "false": 0.0}


def read_columns(path: str) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return header, [list(col) for col in zip(*body, strict=True)]


def encode_column(cells: list[str], categorical: str) -> np.ndarray:
    """(n, 1) numbers, or (n, categories) one-hot columns."""
    try:
        return np.asarray([float(c) for c in cells], np.float32)[:, None]
    except ValueError:
        pass
    lower = [c.strip().lower() for c in cells]
    if set(lower) <= set(TRUE_FALSE):
        return np.asarray([TRUE_FALSE[c] for c in lower], np.float32)[:, None]
    vocab = {v: i for i, v in enumerate(sorted(set(cells)))}
    codes = np.asarray([vocab[c] for c in cells])
    if categorical == "onehot":
        return np.eye(len(vocab), dtype=np.float32)[codes]
    return codes.astype(np.float32)[:, None]


def load(path: str, val_fraction: float, seed: int, categorical: str):
    _, columns = read_columns(path)
    x = np.concatenate([encode_column(c, categorical) for c in columns], axis=1)
    n = x.shape[0]
    n_val = max(1, round(n * val_fraction))
    perm = np.random.default_rng(seed).permutation(n)
    train, val = x[np.sort(perm[n_val:])], x[np.sort(perm[:n_val])]
    lo, hi = train.min(axis=0), train.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    return (train - lo) / scale, (val - lo) / scale


def build(d: int, latent: int, l1: float) -> keras.Model:
    inp = keras.Input((d,))
    code = keras.layers.Dense(
        latent, activation="sigmoid", activity_regularizer=keras.regularizers.l1(l1)
    )(inp)
    out = keras.layers.Dense(d, activation="sigmoid")(code)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7), loss="mse")
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--latent", type=int, default=9)
    p.add_argument("--l1", type=float, default=1e-4)
    p.add_argument("--val_fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--categorical", choices=("ordinal", "onehot"), default="ordinal")
    p.add_argument("--out", default="", help="save the trained model as OUT/model.keras")
    args = p.parse_args()

    t = {"import_s": T_IMPORT - T0}
    t1 = time.perf_counter()
    x_train, x_val = load(args.csv, args.val_fraction, args.seed, args.categorical)
    print(
        f"{x_train.shape[0]} train / {x_val.shape[0]} val rows x {x_train.shape[1]} columns",
        flush=True,
    )
    t["data_s"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    model = build(x_train.shape[1], args.latent, args.l1)
    model.fit(
        x_train,
        x_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        validation_data=(x_val, x_val),
        verbose=2,
    )
    t["fit_s"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    recon = model.predict(x_val, batch_size=4096, verbose=0)
    print(f"validation mse {float(np.mean(np.square(recon - x_val))):.5g}", flush=True)
    t["eval_s"] = time.perf_counter() - t1
    if args.out:
        t1 = time.perf_counter()
        os.makedirs(args.out, exist_ok=True)
        model.save(os.path.join(args.out, "model.keras"))
        t["save_s"] = time.perf_counter() - t1
    t["script_s"] = time.perf_counter() - T0
    print(json.dumps(t), flush=True)


if __name__ == "__main__":
    main()
