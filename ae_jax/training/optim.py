"""Optimizers by name from optax, with the learning rate kept out of the compiled program.

Every optax optimizer ends in `scale_by_learning_rate`, so its update is linear in the learning
rate: building it with a unit-peak schedule and multiplying the update by the run's learning
rate inside the step is exact, and keeps the learning rate a vmappable argument.
"""

import optax
from absl import logging

from ae_jax import config as config_lib


def make_schedule(
    optim_cfg, steps_per_epoch: int, epochs: int, quiet: bool = False
) -> optax.Schedule:
    """A multiplier schedule with peak 1; the step scales it by hyper['learning_rate'].
    `quiet`: no warning of a warm-up cut short (said by the engine's own optimizer)."""
    total = max(steps_per_epoch * epochs, 1)
    name, end = optim_cfg.schedule, float(optim_cfg.end_factor)
    # (a warm-up under another schedule is said at launch: `config.unused`)
    if name == "constant":
        return optax.constant_schedule(1.0)
    if name == "cosine":
        return optax.cosine_decay_schedule(1.0, total, alpha=end)
    if name == "warmup_cosine":
        warmup = min(int(round(optim_cfg.warmup_epochs * steps_per_epoch)), total - 1)
        if warmup < round(optim_cfg.warmup_epochs * steps_per_epoch) and not quiet:
            logging.warning(
                "optim.warmup_epochs=%s is not shorter than the run (%d epochs): the warm-up "
                "is cut to %d steps of the run's %d, and no cosine decay follows",
                optim_cfg.warmup_epochs,
                epochs,
                warmup,
                total,
            )
        return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, total, end_value=end)
    if name == "linear":
        return optax.linear_schedule(1.0, end, total)
    return optax.exponential_decay(1.0, steps_per_epoch, float(optim_cfg.decay_rate))


def make_optimizer(
    optim_cfg, steps_per_epoch: int, epochs: int, quiet: bool = False
) -> optax.GradientTransformation:
    """The optax optimizer named in the config, with learning rate = schedule multiplier.

    Every optax optimizer ends in `scale_by_learning_rate`, so its update is linear
    in the learning rate: building it with the unit-peak schedule and multiplying
    the update by the run's learning rate inside the step is exact, and keeps the
    learning rate a vmappable argument rather than a constant baked into the program.
    `quiet`: as for `make_schedule` (an optimizer built for its state's shapes alone).
    """
    kwargs = {k: optim_cfg[k] for k in config_lib.OPTIM_KWARGS if optim_cfg[k] is not None}
    schedule = make_schedule(optim_cfg, steps_per_epoch, epochs, quiet)
    tx = getattr(optax, optim_cfg.name)(learning_rate=schedule, **kwargs)
    if optim_cfg.grad_clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(optim_cfg.grad_clip), tx)
    return tx
