"""The config schema: every field with its default and a comment saying what it is.

`default_config()` is the one place fields are declared (`doc.py` reads their comments from its
source for --helpconfig); the names a choice field accepts are the constants below.
"""

import ml_collections
from ml_collections import config_dict

MODELS = ("autoencoder", "vae")
# The activations a model may name (models.autoencoder.ACTIVATIONS implements them).
ACTIVATION_NAMES = (
    "sigmoid",
    "relu",
    "tanh",
    "gelu",
    "elu",
    "selu",
    "silu",
    "softplus",
    "leaky_relu",
    "identity",
)
ARCHS = ("mlp", "conv")
COMPUTE_DTYPES = ("float32", "bfloat16")
RECON = ("mse", "bce", "gaussian", "cbernoulli", "mixed")
SPARSITY = ("none", "kl")
MMD_KERNELS = ("imq", "rbf")
LOGGERS = ("tensorboard", "mlflow", "wandb")
# Bundled sets, then image sets read from files in data.dir; "tfds:NAME" is allowed too.
DATASETS = ("digits", "breast_cancer", "mnist", "fashion_mnist", "cifar10")
IMAGE_SETS = ("mnist", "fashion_mnist", "cifar10")  # read from data.dir, or tfds:NAME
SCALINGS = ("minmax", "standard", "none")
CATEGORICAL = ("ordinal", "onehot")
# Fields that are tuples of text: on the command line, a comma-separated list (parse.py).
TEXT_LISTS = ("data.categorical_columns", "data.na_values")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear", "exponential")
# Optimizer settings a config may pass through to optax (None = optax's default).
OPTIM_KWARGS = (
    "b1",
    "b2",
    "eps",
    "momentum",
    "nesterov",
    "weight_decay",
    "rho",
    "decay",
    "centered",
    "initial_accumulator_value",
)
# optax constructors usable by name; each must take `learning_rate` first.
OPTIMIZERS = (
    "adam",
    "adamw",
    "sgd",
    "rmsprop",
    "adadelta",
    "adagrad",
    "adamax",
    "nadam",
    "lamb",
    "lion",
    "adabelief",
    "yogi",
    "radam",
    "novograd",
    "amsgrad",
)


def default_config() -> ml_collections.ConfigDict:
    """Every field a run reads, with its default. Seed configs override a few."""
    c = ml_collections.ConfigDict()

    c.data = dict(
        # Used when `path` is empty: digits | breast_cancer (bundled), mnist | fashion_mnist |
        # cifar10 (standard files in `dir`; their test split is the validation split, so
        # `val_fraction` and `split_seed` do not apply), or tfds:NAME (TFDS set prepared in `dir`).
        name="breast_cancer",
        # A file of your own; wins over `name`: .csv / .tsv (header row), .parquet, .npy, .npz,
        # an IDX image file (MNIST's, gzipped or not).
        path="",
        dir="",  # image sets: folder of the IDX / .npz / cifar-10-batches-py files; TFDS data_dir
        limit=0,  # keep only the first N rows of the training split (0 = all); validation as is
        # Image sets (Burda et al.): none | fixed (pixel > 0.5, once, also for new files) |
        # dynamic (Bernoulli(pixel) resampled every training step; validation drawn once).
        # The bundled digits take fixed (pixel / 16 > 0.5).
        binarize="none",
        # Column (npz key) kept out of the features, used for plots. "" = the default label
        # (npz: "y" when present; bundled sets: "target"; CSV: none); "none" = no label at all.
        # npz label arrays may have shape (N,) or (N, 1).
        label_column="",
        keep_label=False,  # also use the label column as a feature
        categorical="ordinal",  # string columns -> ordinal codes | onehot
        # Columns whose values are categories even where they are numbers (codes such as the
        # purchase table's OperatingSystems, Browser, Region, TrafficType): encoded as text
        # columns are, by data.categorical, not as one number each.
        categorical_columns=(),
        # minmax | standard | none, fitted on the training split only. Pixel data (image sets,
        # uint8 arrays, the bundled digits): minmax and none both divide by the largest
        # intensity, 255 (digits: 16), as per-pixel min-max would blow up the near-constant
        # border pixels; standard uses one mean and std per colour channel.
        scaling="minmax",
        val_fraction=0.2,  # held-out share, split deterministically by `split_seed`
        split_seed=0,  # seed of the train/validation split (not of training: train.seed)
        npz_key="",  # array inside an .npz ("" = "x" or the only array)
        # (H, W) or (H, W, C): the features are pixels 0..255 of that shape, divided by 255
        # (never per-column min-max) and reshaped by conv models and figures. () = not set;
        # uint8 .npy/.npz arrays are pixel data anyway, and 3-D/4-D arrays keep their shape.
        image_shape=(),
        # Text files: auto (sniffed among , ; tab | from the header and first rows; .tsv is
        # tab) or the delimiter itself (',', ';', '|', 'tab').
        delimiter="auto",
        # Cells that are missing values (NaN in number arrays and Parquet nulls are, too).
        na_values=("", "NA", "N/A", "NaN", "nan", "null", "None", "?"),
        # error: refuse them | drop: drop those rows before the split | impute: fill with the
        # training split's mean (numeric) or most frequent value (categorical, true/false),
        # saved with the preprocessing so new files are filled alike.
        missing="error",
        thousands="",  # thousands separator inside numbers: "" (refuse "1,037") | , | ' ' | '
        max_categories=1000,  # onehot refuses a column with more categories (use ordinal)
    )
    c.model = dict(
        name="autoencoder",  # autoencoder | vae
        encoder_widths=(),  # hidden widths before the code layer; () = the simple AE
        decoder_widths=config_dict.placeholder(tuple),  # None = mirror of encoder_widths
        latent_dim=8,  # code size
        activation="relu",  # hidden activations: one name, or comma-separated per layer
        decoder_activation="",  # "" = same as `activation`
        code_activation="identity",  # code layer of the AE (the VAE's mean is linear)
        output_activation="sigmoid",  # applied to the decoder's logits
        arch="mlp",  # mlp | conv (image data: strided convolutions, see models/conv.py)
        conv_features=(32, 64),  # conv: channels of each stride-2 layer (decoder mirrors)
        conv_kernel=3,  # conv: kernel size
        compute_dtype="float32",  # float32 | bfloat16 (params and optimizer stay float32)
    )
    c.loss = dict(
        # The reconstruction likelihood: mse (squared error, no likelihood) | bce (Bernoulli,
        # from logits; a log-likelihood of binary data only) | cbernoulli (continuous
        # Bernoulli: a density on [0, 1]) | gaussian (std `obs_std`) | mixed (tables: per
        # column a Gaussian, a Bernoulli for true/false and a softmax for categories, one-hot
        # encoded; model.output_activation is then not used).
        recon="mse",
        obs_std=1.0,  # observation std of the Gaussian parts of gaussian and mixed ...
        obs_std_learned=False,  # ... or a learned std per column, starting from obs_std
        l1_weight=0.0,  # L1 activity penalty on the code (the sparse AE)
        sparsity="none",  # none | kl: KL(rho || mean activation) penalty (sigmoid codes)
        sparsity_weight=0.0,  # weight of the `sparsity=kl` penalty
        rho=0.05,  # target mean activation for `sparsity=kl`
        beta=1.0,  # weight of the VAE's KL term (beta-VAE)
        # VAE objectives (ae_jax/training/vae_terms.py); each weight is vmappable, so runs
        # differing only in them (and in beta, seeds, rates) train as one program.
        kl_warmup_epochs=0.0,  # KL warm-up: the weight rises linearly over this many epochs ...
        kl_warmup_start=0.0,  # ... from this value to beta (Bowman et al. 2016); epochs 0 = none
        free_bits=0.0,  # nats per latent dimension: batch KL of each clamped from below (Kingma)
        iw_samples_train=1,  # k > 1: train on the k-sample IWAE bound (Burda et al.); 1 = ELBO
        tc_weight=0.0,  # extra weight on the total correlation (beta-TC-VAE: beta=1, tc = b - 1)
        mmd_weight=0.0,  # MMD between q(z) samples and the prior (InfoVAE; beta=0: WAE-MMD)
        mmd_kernel="imq",  # imq | rbf, scale 2 * latent_dim
        noise_std=0.0,  # Gaussian input noise during training (denoising AE)
    )
    c.optim = dict(
        # adam | adamw | sgd | rmsprop | adadelta | adagrad | adamax | nadam | lamb | lion |
        # adabelief | yogi | radam | novograd | amsgrad (optax's, by name)
        name="adam",
        learning_rate=1e-3,  # peak learning rate (the schedule multiplies it)
        schedule="constant",  # constant | cosine | warmup_cosine | linear | exponential
        warmup_epochs=0.0,  # for warmup_cosine
        end_factor=0.0,  # final lr / peak lr for cosine, warmup_cosine, linear
        decay_rate=0.9,  # per-epoch factor for exponential
        grad_clip=0.0,  # clip gradients to this global norm; 0 = off
    )
    for key in OPTIM_KWARGS:
        c.optim[key] = config_dict.placeholder(bool if key in ("nesterov", "centered") else float)
    c.train = dict(
        epochs=5,  # passes over the training split; raising it on a finished run extends it
        batch_size=1000,  # the last, partial batch is padded and masked (see README)
        seed=0,  # parameters, data order, noise and VAE samples all derive from it
        shuffle=True,  # a new order of the training rows every epoch, from (seed, epoch)
        num_models=1,  # >1: train seeds seed..seed+K-1 together in one program
        parallel="auto",  # auto | none | data | models: device layout (training/placement.py)
        eval_batch_size=4096,  # validation rows per step of evaluation (each epoch's, the end's)
        log_every=1,  # epochs between log lines (metrics.jsonl has every epoch)
        # Longest gap between progress lines inside a long epoch: such an epoch runs in chunks,
        # and a stop request (SIGTERM, Ctrl-C) is acted on between chunks. <= 0: never chunk.
        log_seconds=10.0,
        chunk_steps=0,  # steps per chunk (0 = sized from log_seconds); never changes a result
        # JAX's persistent compilation cache (ae_jax/runtime.py says where; the environment
        # variable AE_JAX_COMPILATION_CACHE=off|DIR overrides this).
        compilation_cache=True,
        checkpoints=True,  # False: save none (no resume, no ae_jax.load; evaluation still runs)
        checkpoint_every=10,  # epochs between checkpoints (0 = only at the end)
        keep_checkpoints=2,  # newest checkpoints kept, besides the best by eval/loss
        # False: no workdir/tb/, whatever train.loggers names (True: as train.loggers says)
        tensorboard=True,
        # Where metrics go, comma-separated: tensorboard | mlflow | wandb (the last two need
        # pip install "ae_jax[trackers]"; they get the hyperparameters that differ from the
        # defaults or are swept, every metric, the headline evaluation numbers and figures).
        loggers="tensorboard",
        tracker_project="ae_jax",  # MLflow experiment / W&B project name
        mlflow_uri="",  # MLflow tracking URI ("" = $MLFLOW_TRACKING_URI, else MLflow's default)
        figures=True,  # write figures/ at the end (learning curves, reconstructions, samples)
    )
    c.eval = dict(
        at_end=True,  # evaluate (eval.json + figures) when training ends
        iw_samples=1000,  # k of the VAE's importance-weighted log-likelihood bound
        iw_batch_rows=64,  # rows per batch of that bound (memory: rows * k * D floats)
        near_zero=0.05,  # |code| below this counts as an inactive code entry
        active_var=0.01,  # a VAE unit is active if Var_x(E_q[z_u|x]) > this (Burda et al.)
        color_by="",  # table column colouring codes_2d.png (e.g. Revenue); "" = the label
    )
    return c


def flatten_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> {"section.field": value}, lists as tuples (comparable, hashable)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out
