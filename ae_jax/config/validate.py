"""Validation of a config before any work: every field's type, range and allowed names.
`validate(config)` raises one `UserError` naming the field, the value and what is expected; it
runs before data is read or anything is compiled."""

import inspect
import math
import numbers

import ml_collections
import optax

from ae_jax.config.parse import parse_activations, parse_loggers
from ae_jax.config.schema import (
    ACTIVATION_NAMES,
    ARCHS,
    CATEGORICAL,
    COMPUTE_DTYPES,
    DATASETS,
    IMAGE_SETS,
    MMD_KERNELS,
    MODELS,
    OPTIM_KWARGS,
    OPTIMIZERS,
    RECON,
    SCALINGS,
    SCHEDULES,
    SPARSITY,
    default_config,
)
from ae_jax.errors import UserError, closest, meant


def _check(cond: bool, field: str, value, expected: str) -> None:
    if not cond:
        numpy = isinstance(value, list | tuple) and any("numpy" in str(type(v)) for v in value)
        numpy = numpy and not all(isinstance(v, str) for v in value)  # np.str_ is a str
        hint = " (numpy values, such as np.int64(8), are not Python ones: int(v) makes one)" * numpy
        raise UserError(f"{field}: got {value!r}; expected {expected}{hint}.")


def _choice(value, field: str, allowed, shown=None) -> None:  # (shown: the list, if not allowed)
    said = list(shown or allowed)
    _check(value in allowed, field, value, f"one of {said}{meant(value, allowed)}")


def _positive_int(value, field: str) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    _check(ok, field, value, "a positive integer")


def _number(v, field: str, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    where = f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if hi == math.inf:  # not "in (0.0, inf]", which read as allowing inf
        where = f" {'>' if lo_open else '>='} {lo}" * (lo > -math.inf)
    _check(ok, field, v, f"a finite number{where}")


# (lo, hi, lo_open, hi_open) of the optimizer's numbers: decay rates below 1, the rest >= 0.
_OPTIM_RANGES = {
    "b1": (0.0, 1.0, False, True),
    "b2": (0.0, 1.0, False, True),
    "eps": (0.0, math.inf),
    "momentum": (0.0, 1.0),
    "weight_decay": (0.0, math.inf),
    "rho": (0.0, 1.0),
    "decay": (0.0, 1.0),
    "initial_accumulator_value": (0.0, math.inf),
}


def _check_types(config: ml_collections.ConfigDict) -> None:
    """Every field has its default's type (ints pass for floats; placeholders may be None):
    ml_collections lets None through to any field, and a misspelt override of a field that
    defaults to None could hold anything; both would otherwise fail far from the cause."""
    defaults = default_config()
    for section, fields in defaults.items():
        for key, default in fields.items():
            value, field = config[section].get(key), f"{section}.{key}"
            if default is None:  # An optional setting (placeholder): None or its own type.
                continue
            kind = type(default)  # (ints pass for floats, lists for tuples)
            expected = {float: (int, float), tuple: (tuple, list)}.get(kind, (kind,))
            ok = isinstance(value, expected) and not (
                isinstance(value, bool) and not isinstance(default, bool)
            )
            # A whole number past 64 bits: a probe's 2**64 seed trained, then failed writing
            # TensorBoard's hyperparameters, and so did every rerun.
            huge = ok and type(value) is int and not -(2**63) <= value < 2**63
            if not ok or huge:
                name = {float: "a number", tuple: "a tuple"}.get(kind, kind.__name__)
                got = f"{value!r} ({type(value).__name__})"
                if huge:
                    bits = value.bit_length()
                    got = str(value) if bits < 128 else f"a whole number of {bits} bits"
                    name = "a whole number that fits in 64 bits (-2**63 .. 2**63 - 1)"
                raise UserError(
                    f"{field}: got {got}; expected {name}, like the default {default!r}."
                )


def _nearest(key: str, section: str, schema: ml_collections.ConfigDict) -> str:
    """The real field closest to `section.key`: in its own section, else in another one."""
    own = closest(key, list(schema[section]))
    if own:
        return f"{section}.{own}"
    sections = {k: s for s in reversed(list(schema)) for k in schema[s]}  # field -> a section
    other = closest(key, list(sections))
    return f"{sections[other]}.{other}" if other else ""


def check_known(config: ml_collections.ConfigDict) -> None:
    """Every section and field is one of `default_config()`'s: a misspelt name (train.epoch)
    would otherwise be a silently new setting that nothing reads, next to the real one."""
    schema = default_config()
    for section in config.keys():
        if section not in schema:
            near = closest(section, list(schema), cutoff=0.5)
            hint = f"; did you mean {near!r}?" if near else ""
            if section == "dataset":  # config.json's record of the data, read as a config
                hint += " (a run's config.json records its data there: ae_jax.load(DIR).config)"
            raise UserError(
                f"config: no section {section!r}{hint} (the sections are {list(schema)}; a "
                "misspelt field is an error, not a silently new setting)."
            )
    for section in schema:  # (a sweep's base checked here first met a KeyError: a probe)
        if section not in config:
            raise UserError(f"config: missing section {section!r}; start from default_config().")
        check_section(section, config[section], schema)


def check_section(section: str, fields, schema: ml_collections.ConfigDict | None = None) -> None:
    """`fields` is a section of the config (a ConfigDict or dict) whose every field is one of
    `default_config().section`'s: for the functions that take one section (`load_dataset`,
    `build_model`) as much as for a whole config."""
    schema = schema or default_config()
    if not isinstance(fields, ml_collections.ConfigDict | dict):
        raise UserError(
            f"{section}: got {fields!r:.80}; expected a section of fields (a ConfigDict or "
            f"dict), like default_config().{section}."
        )
    for key in fields.keys():
        if key not in schema[section]:
            near = _nearest(key, section, schema)
            hint = f"; did you mean {near!r}?" if near else ""
            raise UserError(
                f"{section}.{key}: the config has no field {section + '.' + key!r}{hint} (the "
                "fields are default_config()'s, listed by --helpconfig; a misspelt field is an "
                "error, not a silently new setting)."
            )


def check_is_config(config) -> None:
    """Refuses anything but a ConfigDict where the Python API takes a config (a dict or None
    failed deep inside with an AttributeError)."""
    if not isinstance(config, ml_collections.ConfigDict):
        raise UserError(
            f"config: expected an ml_collections.ConfigDict, as ae_jax.default_config() or a "
            f"config module's get_config() returns; got {type(config).__name__} {config!r:.80}"
            + (" (a dict: ConfigDict(d) makes one)" if isinstance(config, dict) else "")
            + "."
        )


def check_model(m) -> None:
    """The model section's fields (`validate` checks them with the rest; `build_model`, which
    takes the section alone, checks them too)."""
    _choice(m.name, "model.name", MODELS)
    _positive_int(m.latent_dim, "model.latent_dim")
    for field in ("encoder_widths", "decoder_widths"):
        widths = m[field]
        if widths is None and field == "decoder_widths":
            continue
        ok = isinstance(widths, tuple | list) and all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths
        )
        _check(ok, f"model.{field}", widths, "a tuple of positive integer layer widths")
    for field in ("code_activation", "output_activation"):
        _choice(m[field], f"model.{field}", ACTIVATION_NAMES)
    _choice(m.arch, "model.arch", ARCHS)
    _choice(m.compute_dtype, "model.compute_dtype", COMPUTE_DTYPES)
    _positive_int(m.conv_kernel, "model.conv_kernel")
    ok = len(m.conv_features) > 0 and all(
        isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in m.conv_features
    )
    _check(ok, "model.conv_features", m.conv_features, "a non-empty tuple of channel counts")
    widths = {
        "activation": m.encoder_widths,
        "decoder_activation": m.decoder_widths
        if m.decoder_widths is not None
        else m.encoder_widths,
    }
    if m.arch == "conv":  # Activations then name one function per conv layer.
        widths = {"activation": m.conv_features, "decoder_activation": m.conv_features}
    for field, layers in widths.items():
        spec = m[field] or (m.activation if field == "decoder_activation" else "")
        parse_activations(spec, len(layers), f"model.{field}")


_SET_FIXES = (("label_column", ""), ("keep_label", False), ("npz_key", ""), ("image_shape", ()))


def check_image_set_fields(d) -> None:
    """An image set's files fix its labels and shape: a value here would be ignored without a
    word (by `load_dataset` too, given the data section alone: a probe)."""
    name = d.get("name", "breast_cancer")
    if d.get("path") or not (name in IMAGE_SETS or name.startswith("tfds:")):
        return
    why = f"with data.name={name!r}, whose files fix it (the images, their labels and shape)"
    for field, default in _SET_FIXES:
        given = d.get(field, default)
        given = tuple(given) if isinstance(given, list) else given
        _check(
            given == default, f"data.{field}", given, f"{default!r} {why}; it applies to data.path"
        )


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `UserError` for the first invalid field; returns None when all are valid."""
    check_is_config(config)
    check_known(config)
    _check_types(config)
    d, m, lo, o, t = config.data, config.model, config.loss, config.optim, config.train

    _check(isinstance(d.path, str), "data.path", d.path, "a file path string")
    if not d.path and not d.name.startswith("tfds:"):
        _choice(d.name, "data.name", DATASETS, [*DATASETS, "tfds:NAME"])
    check_image_set_fields(d)
    _choice(d.binarize, "data.binarize", ("none", "fixed", "dynamic"))
    _check(d.limit >= 0, "data.limit", d.limit, "an integer >= 0 (0 = all training rows)")
    _choice(d.scaling, "data.scaling", SCALINGS)
    _choice(d.categorical, "data.categorical", CATEGORICAL)
    _number(d.val_fraction, "data.val_fraction", 0.0, 1.0, lo_open=True, hi_open=True)
    shape = d.image_shape
    ok = len(shape) in (0, 2, 3) and all(type(v) is int and v > 0 for v in shape)
    _check(ok, "data.image_shape", shape, "() (not set), (H, W) or (H, W, C) of positive integers")
    ok = d.delimiter in ("auto", "tab", "\\t") or (
        len(d.delimiter) == 1 and d.delimiter not in '"\r\n'
    )
    _check(ok, "data.delimiter", d.delimiter, "'auto' or one character such as ',' ';' '|' 'tab'")
    _check(
        all(isinstance(v, str) for v in d.na_values),
        "data.na_values",
        d.na_values,
        "a tuple of strings",
    )
    names = d.categorical_columns
    _check(
        all(isinstance(v, str) and v for v in names) and len(set(names)) == len(names),
        "data.categorical_columns",
        names,
        "a tuple of column names, each once, e.g. ('Region', 'Browser')",
    )
    _choice(d.missing, "data.missing", ("error", "drop", "impute"))
    _choice(d.thousands, "data.thousands", ("", ",", " ", "'"))
    _positive_int(d.max_categories, "data.max_categories")

    check_model(m)

    _choice(lo.recon, "loss.recon", RECON)
    if lo.recon in ("bce", "cbernoulli"):
        _check(
            m.output_activation == "sigmoid",
            "model.output_activation",
            m.output_activation,
            f"'sigmoid' with loss.recon={lo.recon!r} (its parameter is sigmoid(logits))",
        )
    if lo.obs_std_learned:
        _check(
            lo.recon in ("gaussian", "mixed"),
            "loss.obs_std_learned",
            lo.obs_std_learned,
            "False unless loss.recon is 'gaussian' or 'mixed' (only they have a std)",
        )
    _choice(lo.sparsity, "loss.sparsity", SPARSITY)
    if lo.sparsity == "none" and isinstance(lo.sparsity_weight, int | float):
        _check(
            lo.sparsity_weight == 0,
            "loss.sparsity_weight",
            lo.sparsity_weight,
            "0 with loss.sparsity='none' (it weights no term; set loss.sparsity='kl' for the "
            "KL sparsity penalty, or loss.l1_weight for the L1 one)",
        )
    if lo.sparsity == "kl":
        _check(
            m.name == "autoencoder" and m.code_activation == "sigmoid",
            "model.code_activation",
            m.code_activation,
            "'sigmoid' on an autoencoder with loss.sparsity='kl' (rates need codes in (0, 1))",
        )
    _number(lo.obs_std, "loss.obs_std", 0.0, lo_open=True)
    _number(lo.rho, "loss.rho", 0.0, 1.0, lo_open=True, hi_open=True)
    for field in (
        "l1_weight",
        "sparsity_weight",
        "beta",
        "noise_std",
        "kl_warmup_epochs",
        "kl_warmup_start",
        "free_bits",
        "tc_weight",
        "mmd_weight",
    ):
        _number(lo[field], f"loss.{field}", 0.0)
    _positive_int(lo.iw_samples_train, "loss.iw_samples_train")
    _choice(lo.mmd_kernel, "loss.mmd_kernel", MMD_KERNELS)
    _check_vae_objective(config)

    _choice(o.name, "optim.name", OPTIMIZERS)
    _number(o.learning_rate, "optim.learning_rate", 0.0, lo_open=True)
    _choice(o.schedule, "optim.schedule", SCHEDULES)
    _number(o.warmup_epochs, "optim.warmup_epochs", 0.0)
    _number(o.end_factor, "optim.end_factor", 0.0)
    _number(o.decay_rate, "optim.decay_rate", 0.0, lo_open=True)
    _number(o.grad_clip, "optim.grad_clip", 0.0)
    accepted = inspect.signature(getattr(optax, o.name)).parameters
    extra = [k for k in OPTIM_KWARGS if o[k] is not None and k not in accepted]
    if extra:  # e.g. a seed config's optim.eps (Adam's) under --config.optim.name=sgd
        takes = [k for k in OPTIM_KWARGS if k in accepted]
        raise UserError(
            f"optim.{extra[0]}: optax.{o.name} has no setting {extra[0]!r}; it takes {takes}. "
            f"The config sets {', '.join(f'optim.{k}={o[k]!r}' for k in extra)}: unset "
            f"{'it' if len(extra) == 1 else 'them'} for {o.name} with "
            + " ".join(f"--config.optim.{k}=none" for k in extra)
            + f" (from Python: {'; '.join(f'config.optim.{k} = None' for k in extra)})."
        )
    for key in OPTIM_KWARGS:
        if o[key] is not None and key in _OPTIM_RANGES:
            # optax takes any number: a NaN or a decay rate of 1 (a zero bias correction)
            # made every update NaN while the loss and gradient stayed finite.
            _number(o[key], f"optim.{key}", *_OPTIM_RANGES[key])
        elif o[key] is not None:  # a flag: a config rebuilt from a dict has no placeholder
            _check(isinstance(o[key], bool), f"optim.{key}", o[key], "True, False or None")

    for field in (
        "epochs",
        "batch_size",
        "num_models",
        "eval_batch_size",
        "log_every",
        "keep_checkpoints",
    ):
        _positive_int(t[field], f"train.{field}")
    ok = isinstance(t.checkpoint_every, int) and t.checkpoint_every >= 0
    _check(ok, "train.checkpoint_every", t.checkpoint_every, "an integer >= 0 (0 = at the end)")
    _choice(t.parallel, "train.parallel", ("auto", "none", "data", "models"))
    parse_loggers(t.loggers)
    _number(t.log_seconds, "train.log_seconds")
    ok = isinstance(t.chunk_steps, int) and not isinstance(t.chunk_steps, bool)
    ok = ok and t.chunk_steps >= 0
    _check(ok, "train.chunk_steps", t.chunk_steps, "an integer >= 0 (0 = automatic)")
    e = config.eval
    for field in ("iw_samples", "iw_batch_rows"):
        _positive_int(e[field], f"eval.{field}")
    _number(e.near_zero, "eval.near_zero", 0.0, lo_open=True)
    _number(e.active_var, "eval.active_var", 0.0)
    check_seed(t.seed, "train.seed")


def check_seed(seed, name: str) -> None:
    """A seed of a random stream: a whole number in [0, 2**31), as train.seed (evaluation's and
    sampling's seeds too: 2**70 was an OverflowError from inside JAX, -1 a key of its own)."""
    whole = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    ok = whole and 0 <= int(seed) < 2**31
    _check(ok, name, seed, "an integer in [0, 2**31)")


def _check_vae_objective(config) -> None:
    """The VAE-only loss fields need a VAE, and the IWAE bound a likelihood without free bits."""
    lo = config.loss
    used = (
        [f for f in ("kl_warmup_epochs", "free_bits", "tc_weight", "mmd_weight") if lo[f] > 0]
        + (["iw_samples_train"] if lo.iw_samples_train > 1 else [])
        + (["beta"] if lo.beta != 1 else [])  # the KL's weight: an autoencoder has no KL
    )
    if used and config.model.name != "vae":
        raise UserError(
            f"loss.{used[0]}={lo[used[0]]!r} is a VAE objective, but model.name is "
            f"{config.model.name!r}; set model.name='vae' or leave loss.{used[0]} at "
            "its default."
        )
    if lo.iw_samples_train > 1:
        _check(
            lo.recon != "mse",
            "loss.recon",
            lo.recon,
            "a likelihood ('bce', 'cbernoulli', 'gaussian' or 'mixed') with "
            "loss.iw_samples_train > 1: the importance-weighted bound needs p(x|z), and a "
            "squared error defines none",
        )
        _check(
            lo.free_bits == 0,
            "loss.free_bits",
            lo.free_bits,
            "0 with loss.iw_samples_train > 1 (free bits clamp the analytic KL of the ELBO, "
            "which the importance-weighted bound does not have)",
        )
