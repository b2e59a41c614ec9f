"""Which runs can train together, and the compiled programs a group of them shares.

Runs whose configs differ only in the vmappable scalars (`objective.HYPER_KEYS`: learning rate,
loss weights, seed, ...) have the same static signature and train as K models of one compiled
program. `ProgramCache` keeps those programs for later groups of the same static config and
data shapes; its owner (a sweep, a benchmark) decides how long it lives.
"""

import dataclasses
import itertools
import json
import os

import numpy as np
from absl import logging

from ae_jax import config as config_lib
from ae_jax import workdir as workdir_lib
from ae_jax.data import Dataset
from ae_jax.data.cells import quote_names
from ae_jax.data.load import settings as data_settings
from ae_jax.errors import UserError, closest
from ae_jax.models import conv
from ae_jax.training import objective


def static_signature(config) -> dict:
    """The config with vmappable scalars removed: runs with equal signatures share a program."""
    d = config.to_dict()
    for key in objective.HYPER_KEYS:
        section = "optim" if key == "learning_rate" else "train" if key == "seed" else "loss"
        d[section].pop(key)
    d["train"].pop("num_models")
    return d


def signature_key(config) -> str:
    """`static_signature` as a string, for grouping and cache keys."""
    return json.dumps(static_signature(config), sort_keys=True)


def check_groupable(configs: list) -> None:
    """Raises UserError naming the fields that stop these configs training together."""
    base = config_lib.flatten_config(static_signature(configs[0]))
    for i, c in enumerate(configs[1:], start=1):
        other = config_lib.flatten_config(static_signature(c))
        diff = sorted(k for k in base.keys() | other.keys() if base.get(k) != other.get(k))
        if diff:
            shown = ", ".join(f"{k}: {base.get(k)!r} vs {other.get(k)!r}" for k in diff[:5])
            raise UserError(
                f"runs 0 and {i} cannot train together: they differ in {shown}, and one "
                f"program trains a group. Only {list(objective.HYPER_KEYS)} may vary within it; "
                "train the others separately (or with the sweep runner, which groups them)."
            )


def check_sweep_place(workdir: str, sweep: bool = False, holds_runs: bool = False) -> None:
    """Refuses a run in a sweep launch's runs/ (one holding sweep_config.json, which launches
    write since 2026-12-01: a project folder may hold a sweep.json of its own) anywhere but
    runs/NAME, as its report lists no other (`holds_runs`: the workdir of runs of its own, as
    train.num_models > 1 makes, DIR/seed=S/), and, unless the caller is the `sweep`'s launcher,
    in a folder there where no run has started, which its report leaves out (the sweep's
    command starts its runs and retries failed ones)."""
    full, runs = os.path.realpath(workdir), ""
    for up in itertools.accumulate(full.split(os.sep)[1:], os.path.join, initial=os.sep):
        top = os.path.dirname(up)
        if os.path.basename(up) == "runs" and workdir_lib.kind_of(top) == "sweep":
            runs = up if os.path.exists(os.path.join(top, workdir_lib.SWEEP_CONFIG)) else runs
    if not runs:
        return
    where = f"the runs/ of the sweep {os.path.dirname(runs)!r}"
    if full == runs or os.path.dirname(full) != runs or holds_runs:
        said = (
            "is"
            if full == runs
            else "lies in"
            if os.path.dirname(full) == runs
            else "lies in a folder in"
        )
        raise UserError(
            f"workdir {workdir!r} {said} {where}"
            + " and would hold runs of its own (train.num_models > 1: its seed=S/)" * holds_runs
            + "; the sweep's report lists only the runs directly in it. Expected a workdir "
            "outside the sweep."
        )
    if not sweep and workdir_lib.kind_of(full) != "run":
        raise UserError(
            f"workdir {workdir!r} lies in {where} and holds no run started there (its "
            "config.json and preprocessor.json): only the sweep's command starts its runs (and "
            "retries those that failed); expected a workdir outside the sweep, or this run "
            "added to the sweep and its command run again."
        )


def check_workdirs(configs: list, workdirs: list[str], sweep: bool = False) -> list[str]:
    """One distinct workdir per config, before any work: two runs in one directory wrote over
    each other's checkpoints (orbax tracebacks), and unequal lists failed inside zip(). Only a
    `sweep`'s launcher starts a run in a sweep's runs/ (any other is left out of its report).
    Returns the workdirs as paths, '~' expanded."""
    if not isinstance(configs, list | tuple) or not isinstance(workdirs, list | tuple):
        raise UserError(
            f"train_group: expected a list of configs and a list of workdirs, one per config; "
            f"got a {type(configs).__name__} and a {type(workdirs).__name__}."
        )
    workdirs = [
        workdir_lib.as_path(w, f"train_group: workdirs[{i}]") for i, w in enumerate(workdirs)
    ]
    if len(configs) != len(workdirs) or not configs:
        raise UserError(
            f"train_group: got {len(configs)} config(s) and {len(workdirs)} workdir(s); "
            "expected one workdir per config, at least one of each."
        )
    seen: dict[str, int] = {}
    for i, w in enumerate(workdirs):
        workdir_lib.check_kind(w, "run")
        check_sweep_place(w, sweep)
        j = seen.setdefault(os.path.realpath(w), i)
        if j != i:
            raise UserError(
                f"train_group: workdirs[{j}] {workdirs[j]!r} and workdirs[{i}] {w!r} are the "
                "same directory; each run needs a workdir of its own (two runs in one would "
                "overwrite each other's checkpoints)."
            )
    for inner, i in seen.items():  # a run inside another's directory: refused by its rerun
        up = os.path.dirname(inner)  # its parents, one lookup each (not every pair of runs)
        while up != os.path.dirname(up) and up not in seen:
            up = os.path.dirname(up)
        if up in seen:
            j = seen[up]
            raise UserError(
                f"train_group: workdirs[{i}] {workdirs[i]!r} lies inside workdirs[{j}] "
                f"{workdirs[j]!r}; give each run a directory of its own beside the others "
                "(a run's directory holds no other run)."
            )
    for i, c in enumerate(configs):
        k = getattr(getattr(c, "train", None), "num_models", 1)
        if k != 1:  # each config here is one run: K would be ignored, yet recorded
            raise UserError(
                f"train_group: configs[{i}] has train.num_models={k!r}; each config given here "
                "is one run. Give the seeds as configs of their own (or overrides of "
                "train_together), or train_and_evaluate one config with num_models=K."
            )
    return workdirs


def check_given_dataset(config, ds) -> None:
    """A Dataset passed in (`train_group(dataset=...)`, a sweep's) is one `load_dataset` made
    with these configs' data section: a run trained on other data would record a config that
    cannot rebuild it."""
    if not isinstance(ds, Dataset):
        raise UserError(
            f"dataset: got {type(ds).__name__} {ds!r:.60}; expected the Dataset that "
            "ae_jax.data.load_dataset(config.data) returns, or None to load it"
        )
    now = data_settings(config.data)
    if ds.settings is not None and ds.settings != now:
        fields = sorted(
            k for k in now.keys() | ds.settings.keys() if now.get(k) != ds.settings.get(k)
        )
        raise UserError(
            "dataset: loaded with other data settings than the configs' ("
            + ", ".join(
                f"data.{k} {ds.settings.get(k)!r} there, {now.get(k)!r} here" for k in fields
            )
            + "); pass the Dataset load_dataset(config.data) returns, or None to load it"
        )


def check_data_fits_config(configs: list, ds):
    """Contradictions between a group's configs and the loaded data, found before compiling
    (`refuse_misfits`); returns the data set to train on (validation values clipped into a
    Bernoulli's support)."""
    refuse_misfits(configs, ds)
    config = configs[0]
    if config.model.name == "autoencoder" and config.model.latent_dim >= ds.num_features:
        logging.warning(
            "model.latent_dim=%d is not smaller than the %d input features: an autoencoder "
            "can then learn the identity; fine for an overcomplete sparse code, otherwise "
            "choose a smaller code.",
            config.model.latent_dim,
            ds.num_features,
        )
    return as_trained(config, ds)


def misfit_key(config) -> tuple:
    """What `refuse_misfits` reads of one run's config: runs of one data set alike in it are
    refused alike (a sweep checks each such kind once)."""
    return (
        config.model.arch,
        config.loss.recon,
        config.eval.color_by,
        int(config.train.batch_size),
        int(config.train.eval_batch_size),
        objective.optional_terms([config]),
    )


def refuse_misfits(configs: list, ds) -> None:
    """Raises UserError where a group's configs cannot train on the loaded data set `ds` (a conv
    model on a table, a [0, 1] likelihood on data beyond it, eval.color_by no column of it,
    'mixed' on ordinal codes, a batch statistic over one row); warns of nothing and changes
    nothing. What it reads of a config is `misfit_key`'s."""
    config = configs[0]
    if config.model.arch == "conv":
        conv.image_hwc(ds.num_features, ds.image_shape)  # UserError for non-image data
    if config.loss.recon in UNIT_INTERVAL:  # (the range read only where it is needed)
        lo, hi = float(ds.train.min()), float(ds.train.max())
        if lo < 0.0 or hi > 1.0:
            raise UserError(
                f"loss.recon={config.loss.recon!r} (a likelihood on [0, 1]) needs data in "
                f"[0, 1], but the training split of {ds.name!r} spans [{lo:.4g}, {hi:.4g}] "
                f"with data.scaling={config.data.scaling!r}. Use data.scaling='minmax', or "
                "loss.recon='mse' or 'gaussian'."
            )
    if config.eval.color_by:
        names = [name for name, *_ in ds.preprocessor.layout()]
        if ds.image_shape or config.eval.color_by not in names:
            near = closest(config.eval.color_by, names) if names else ""
            raise UserError(
                f"eval.color_by {config.eval.color_by!r} is not a column of {ds.name!r}"
                f"{f' (did you mean {near!r}?)' if near else ''}; expected one of "
                f"{quote_names(names, 20)} (a table's column), or '' for the label column."
            )
    if config.loss.recon == "mixed":
        ordinal = [name for name, kind, _, _ in ds.preprocessor.layout() if kind == "ordinal"]
        if ordinal:
            raise UserError(
                f"loss.recon='mixed' models a categorical column as a softmax over its one-hot "
                f"encoding, but data.categorical='ordinal' encodes {quote_names(ordinal, 8)} as "
                "one code each; set data.categorical='onehot'."
            )
    _check_batch_statistics(configs, ds)


# The terms estimated from the other rows of a batch, and what a batch of one row made of them.
_BATCH_STATISTICS = {
    "tc": ("loss.tc_weight", "the total correlation", "(L - 1) log N, not ~0"),
    "mmd": ("loss.mmd_weight", "MMD²", "-2 k(z, a prior draw), not ~0"),
}


def _check_batch_statistics(configs: list, ds) -> None:
    """The total correlation and the MMD are estimated from the other rows of a batch (the
    aggregate posterior, the pairs of codes): a batch of one real row has none, and what came
    out was far from any estimate (a probe: train/tc 0.34 against 0.0004 with one training row
    fewer, an MMD² of -0.0067 that put the loss below its reconstruction term). So no batch of
    a run weighting either may hold a single row: training's last batch, the validation
    pass's, or a split of one row."""
    terms = objective.optional_terms(configs)
    on = [_BATCH_STATISTICS[t] for t in ("tc", "mmd") if t in terms]
    if not on:
        return
    for field, what, n in (
        ("train.batch_size", "training", int(ds.train.shape[0])),
        ("train.eval_batch_size", "validation", int(ds.val.shape[0])),
    ):
        size = min(int(configs[0].train[field.split(".")[1]]), n)
        if n % size != 1 and size != 1:  # the last batch holds n % size rows, or size
            continue
        terms_said = " and ".join(f"{name} ({key} > 0)" for key, name, _ in on)
        made = "; ".join(f"{name}: {value}" for _, name, value in on)
        if n == 1:  # (data.limit cuts the training split alone; a batch size cannot help)
            where = f"the 1 {what} row of {ds.name!r} is a batch of its own"
            fix = "data.limit or " * (what == "training") + "data.val_fraction"
            fix += f" for a {what} split of at least 2 rows"
        else:
            where = (
                f"the {n:,} {what} rows of {ds.name!r} in batches of {size} ({field}) leave a "
                "last batch of 1 row"
            )
            sizes = itertools.chain(range(size - 1, 1, -1), range(size + 1, n + 1))  # n fits
            fits = next(s for s in sizes if n % s != 1)
            fix = f"{field} to a size that leaves no row alone, e.g. {fits}"
        raise UserError(
            f"{terms_said} {'is' if len(on) == 1 else 'are'} estimated from the other rows of "
            f"a batch, so every batch needs 2 rows or more; but {where}, for which it is no "
            f"estimate ({made}). Set {fix}."
        )


# Likelihoods defined on [0, 1] only.
UNIT_INTERVAL = ("bce", "cbernoulli")


def as_trained(config, ds, recon: str | None = None):
    """The data set as a run of `config` sees it, in training and in evaluation alike: under a
    likelihood on [0, 1], its validation values clipped into [0, 1] (the model's inputs and
    targets both). The fingerprint a run records (config.json) is of these values, so a rerun
    or `ae-jax evaluate` compares this, not the data as loaded. `recon`: another run's
    loss.recon, for a comparison with its data (clipped without a word)."""
    if (recon or config.loss.recon) in UNIT_INTERVAL:
        said = None if recon else f"the validation split of {ds.name!r}"
        return dataclasses.replace(ds, val=clip_unit(ds.val, said))
    return ds


def clip_unit(x: np.ndarray, what: str | None) -> np.ndarray:
    """x clipped into [0, 1], with a warning that counts the values moved (`what`: the values,
    for it; None: no warning).

    Min-max scaling fitted on the training split leaves some validation (or new) values
    outside [0, 1], where a Bernoulli or continuous-Bernoulli likelihood is undefined (BCE has
    no lower bound there). Clipping them, and saying how many, keeps such data usable and every
    reported number a value of the likelihood; refusing would rule out most tables.
    """
    outside = int(np.sum((x < 0.0) | (x > 1.0)))
    if not outside or what is None:
        return np.clip(x, 0.0, 1.0).astype(x.dtype) if outside else x
    logging.warning(
        "%s: %d of its %d values lie outside [0, 1] (range [%.4g, %.4g]), where the "
        "likelihood is undefined; they are clipped to [0, 1], as the model's inputs and "
        "targets alike",
        what,
        outside,
        x.size,
        float(x.min()),
        float(x.max()),
    )
    return np.clip(x, 0.0, 1.0).astype(x.dtype)


class ProgramCache:
    """Compiled programs by (static config, data shapes, K, layout), newest `max_size` kept.

    A sweep holds one for its whole run, so groups with the same shapes compile once per
    process; across processes, JAX's persistent compilation cache (`ae_jax.runtime`) does it.
    """

    def __init__(self, max_size: int = 16):
        self.max_size = max_size
        self._programs: dict[tuple, object] = {}

    def get(self, key: tuple):
        return self._programs.get(key)

    def put(self, key: tuple, value) -> None:
        self._programs[key] = value
        while len(self._programs) > self.max_size:
            self._programs.pop(next(iter(self._programs)))

    def __len__(self) -> int:
        return len(self._programs)
