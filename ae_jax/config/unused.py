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

from absl import logging

from ae_jax.config.schema import IMAGE_SETS, default_config, flatten_config

# field -> (the field that decides, its values that use the field, why: what would use it,
# {value!r} the deciding field's value)
_RULES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "model.code_activation": (
        "model.name",
        ("autoencoder",),
        "a VAE's code is its posterior's mean, a linear head: no activation applies",
    ),
    "loss.obs_std": (
        "loss.recon",
        ("gaussian", "mixed"),
        "only loss.recon='gaussian' or 'mixed' has an observation std; loss.recon={value!r} "
        "has none",
    ),
    "loss.rho": (
        "loss.sparsity",
        ("kl",),
        "it is the target rate of loss.sparsity='kl'; loss.sparsity={value!r} has none",
    ),
    "optim.warmup_epochs": (
        "optim.schedule",
        ("warmup_cosine",),
        "it is read by optim.schedule='warmup_cosine' alone; optim.schedule={value!r} does "
        "not warm up",
    ),
    "optim.end_factor": (
        "optim.schedule",
        ("cosine", "warmup_cosine", "linear"),  # the schedules that end at a fraction
        "it is read by optim.schedule='cosine', 'warmup_cosine' and 'linear'; "
        "optim.schedule={value!r} does not read it",
    ),
    "optim.decay_rate": (
        "optim.schedule",
        ("exponential",),
        "it is read by optim.schedule='exponential' alone; optim.schedule={value!r} does not "
        "read it",
    ),
    "model.conv_features": (
        "model.arch",
        ("conv",),
        "it shapes model.arch='conv' alone; this model is model.arch={value!r}",
    ),
    "model.conv_kernel": (
        "model.arch",
        ("conv",),
        "it shapes model.arch='conv' alone; this model is model.arch={value!r}",
    ),
    # (conv_ae_mnist given a data.path of MNIST's training images trained on a split of them,
    # not on the test split its image set's data.name would take, without a word)
    "data.name": (
        "data.path",
        ("",),
        "it names a bundled or image set, read only without a data.path; data.path={value!r} "
        "is read instead (split by data.val_fraction)",
    ),
    "data.dir": (
        "data.path",
        ("",),
        "it holds an image set's files, read only without a data.path; data.path={value!r} is "
        "read instead",
    ),
    "data.val_fraction": (
        "data.image_set",  # (derived: `_derived`)
        ("",),
        "it splits a file or a bundled set; the image set {value!r} brings its test split, "
        "which is the validation split",
    ),
    # A VAE's objective (`objective.py`; the keys below derived by `_derived`): no warning
    # said these (a probe trained each to the same numbers as without it).
    "loss.kl_warmup_start": (
        "loss.warms_up",
        ("yes",),
        "it is the KL weight a warm-up starts from, and loss.kl_warmup_epochs=0 is none",
    ),
    "loss.free_bits": (
        "loss.kl_weighted",
        ("yes",),
        "it clamps the KL term from below, which loss.beta=0 weighs 0 (no warm-up raises it)",
    ),
    "loss.mmd_kernel": (
        "loss.mmd_on",
        ("yes",),
        "it is the kernel of the MMD term, which loss.mmd_weight=0 leaves out",
    ),
}


def _derived(flat: dict) -> dict:
    """`flat` with data.image_set: the image set it reads (data.name without a data.path), or
    '' (a file, or a bundled set, which data.val_fraction splits); and "yes" or "" for whether
    a VAE's KL warms up, whether its KL is weighted at all, and whether it has an MMD term."""
    name = str(flat.get("data.name", ""))
    image_set = not flat.get("data.path") and (name in IMAGE_SETS or name.startswith("tfds:"))
    warms_up = (flat.get("loss.kl_warmup_epochs") or 0) > 0
    weighted = (flat.get("loss.beta") or 0) != 0 or (warms_up and flat.get("loss.kl_warmup_start"))
    return {
        **flat,
        "data.image_set": name if image_set else "",
        "loss.warms_up": "yes" if warms_up else "",
        "loss.kl_weighted": "yes" if weighted else "",
        "loss.mmd_on": "yes" if (flat.get("loss.mmd_weight") or 0) > 0 else "",
    }


def unused_fields(flat: dict) -> frozenset[str]:
    """The fields of the flattened config `flat` that its other fields leave unused."""
    flat = _derived(flat)
    return frozenset(f for f, (key, using, _) in _RULES.items() if flat.get(key) not in using)


def unused_settings(config, defaults: dict | None = None) -> list[str]:
    """One sentence per field `config` sets away from its default that the rest of it leaves
    unused (a launch logs them as warnings: the value changes nothing). `defaults`: the
    flattened default config, when the caller has it (K configs: made once, not K times)."""
    flat = _derived(flatten_config(config.to_dict()))
    defaults = defaults or flatten_config(default_config().to_dict())
    return [
        f"{key}={flat[key]!r} has no effect: "
        + _RULES[key][2].format(value=flat.get(_RULES[key][0]))
        for key in sorted(unused_fields(flat))
        if key in flat and flat[key] != defaults.get(key)
    ]


def say_unused(configs: list, workdirs: list[str]) -> None:
    """Warns once of each setting of the configs of a group that the rest of its config
    leaves unused (naming how many of the group's runs it concerns, when not all)."""
    said: dict[str, list[str]] = {}
    defaults = flatten_config(default_config().to_dict())
    for c, w in zip(configs, workdirs, strict=True):
        for text in unused_settings(c, defaults):
            said.setdefault(text, []).append(os.path.basename(w))
    for text, runs in said.items():
        which = f" ({len(runs)} of the {len(configs)} runs)" if len(runs) < len(configs) else ""
        logging.warning("%s%s", text, which)
