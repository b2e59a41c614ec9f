"""Settings the rest of a config leaves unused: `loss.obs_std` with `loss.recon='mse'`, a VAE's
`model.code_activation`, a schedule's parameter under another schedule.

Such a value is not refused: a sweep over `loss.recon` or `optim.schedule` from one base config
sets it for every entry, and runs saved with one must resume. A launch says it once instead
(`unused_settings`: a probe set `loss.obs_std=0.1` under MSE and got the base run's numbers,
without a word), and a rerun may change a field its run and the launch both leave unused
(`unused_fields`: the seed VAE's config recorded the seed AE's sigmoid code activation, which
no VAE applies, until it said `identity`).

Both read a flattened config (`flatten_config`), as a saved config.json is read.
"""

import os
from collections.abc import Callable

from absl import logging

from ae_jax.config.schema import default_config, flatten_config

_GAUSSIAN = ("gaussian", "mixed")  # the likelihoods with an observation std
_END_FACTOR = ("cosine", "warmup_cosine", "linear")  # the schedules that end at a fraction

# field -> (whether the rest of the config leaves it unused, why: what would use it)
_RULES: dict[str, tuple[Callable[[dict], bool], Callable[[dict], str]]] = {
    "model.code_activation": (
        lambda f: f.get("model.name") == "vae",
        lambda f: "a VAE's code is its posterior's mean, a linear head: no activation applies",
    ),
    "loss.obs_std": (
        lambda f: f.get("loss.recon") not in _GAUSSIAN,
        lambda f: (
            f"only loss.recon='gaussian' or 'mixed' has an observation std; "
            f"loss.recon={f.get('loss.recon')!r} has none"
        ),
    ),
    "loss.rho": (
        lambda f: f.get("loss.sparsity") != "kl",
        lambda f: (
            "it is the target rate of loss.sparsity='kl'; loss.sparsity="
            f"{f.get('loss.sparsity')!r} has none"
        ),
    ),
    "optim.warmup_epochs": (
        lambda f: f.get("optim.schedule") != "warmup_cosine",
        lambda f: (
            "it is read by optim.schedule='warmup_cosine' alone; optim.schedule="
            f"{f.get('optim.schedule')!r} does not warm up"
        ),
    ),
    "optim.end_factor": (
        lambda f: f.get("optim.schedule") not in _END_FACTOR,
        lambda f: (
            "it is read by optim.schedule='cosine', 'warmup_cosine' and 'linear'; "
            f"optim.schedule={f.get('optim.schedule')!r} does not read it"
        ),
    ),
    "optim.decay_rate": (
        lambda f: f.get("optim.schedule") != "exponential",
        lambda f: (
            "it is read by optim.schedule='exponential' alone; optim.schedule="
            f"{f.get('optim.schedule')!r} does not read it"
        ),
    ),
    "model.conv_features": (
        lambda f: f.get("model.arch") != "conv",
        lambda f: "it shapes model.arch='conv' alone; this model is model.arch='mlp'",
    ),
    "model.conv_kernel": (
        lambda f: f.get("model.arch") != "conv",
        lambda f: "it shapes model.arch='conv' alone; this model is model.arch='mlp'",
    ),
}


def unused_fields(flat: dict) -> frozenset[str]:
    """The fields of the flattened config `flat` that its other fields leave unused."""
    return frozenset(key for key, (unused, _) in _RULES.items() if unused(flat))


def unused_settings(config) -> list[str]:
    """One sentence per field `config` sets away from its default that the rest of it leaves
    unused (a launch logs them as warnings: the value changes nothing)."""
    flat = flatten_config(config.to_dict())
    defaults = flatten_config(default_config().to_dict())
    return [
        f"{key}={flat[key]!r} has no effect: {_RULES[key][1](flat)}"
        for key in sorted(unused_fields(flat))
        if key in flat and flat[key] != defaults.get(key)
    ]


def say_unused(configs: list, workdirs: list[str]) -> None:
    """Warns once of each setting of the configs of a group that the rest of its config
    leaves unused (naming how many of the group's runs it concerns, when not all)."""
    said: dict[str, list[str]] = {}
    for c, w in zip(configs, workdirs, strict=True):
        for text in unused_settings(c):
            said.setdefault(text, []).append(os.path.basename(w))
    for text, runs in said.items():
        which = f" ({len(runs)} of the {len(configs)} runs)" if len(runs) < len(configs) else ""
        logging.warning("%s%s", text, which)
