"""The training objective: configured terms, summed with per-model weights.

Static choices (which reconstruction loss, whether the KL-sparsity term or input
noise exist, AE or VAE) are fixed when the loss function is built. The weights
and rates (`l1_weight`, `beta`, `sparsity_weight`, `rho`, `noise_std`) come in at
call time from the `hyper` pytree, so K models with different values share one
compiled program under `jax.vmap` (see `ae_jax/sweeps/overrides.py`).
"""

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.training import losses

# The scalars a model may vary without recompiling; all live in `hyper`.
HYPER_KEYS = ("learning_rate", "l1_weight", "beta", "sparsity_weight", "rho", "noise_std", "seed")
TERMS = ("recon", "l1", "kl")


def hyper_from_config(config) -> dict[str, float | int]:
    """The vmappable scalars of one run, read from its config."""
    lo = config.loss
    return {
        "learning_rate": float(config.optim.learning_rate),
        "l1_weight": float(lo.l1_weight),
        "beta": float(lo.beta),
        "sparsity_weight": float(lo.sparsity_weight),
        "rho": float(lo.rho),
        "noise_std": float(lo.noise_std),
        "seed": int(config.train.seed),
    }


def stack_hypers(hypers: list[dict]) -> dict[str, jax.Array]:
    """K per-run hyper dicts -> one dict of (K,) arrays (float32, seed int32)."""
    return {
        k: jnp.asarray([h[k] for h in hypers], jnp.int32 if k == "seed" else jnp.float32)
        for k in HYPER_KEYS
    }


def reconstruction(kind: str, out: dict[str, jax.Array], x: jax.Array, obs_std: float,
                   heads=None):
    """Per-example reconstruction term (summed over features): the negative log-likelihood
    (squared error for "mse"). A learned Gaussian scale comes in `out["log_std"]`."""
    log_std = out.get("log_std")
    if log_std is None:
        log_std = jnp.full(out["logits"].shape[-1:], math.log(obs_std), jnp.float32)
    if kind == "mixed":
        return losses.mixed_nll(out["logits"], x, heads, log_std)
    if kind == "mse":
        return losses.squared_error(out["out"], x)
    if kind == "bce":
        return losses.bce_logits(out["logits"], x)
    if kind == "cbernoulli":
        return losses.cbernoulli_nll(out["logits"], x)
    logvar = jnp.broadcast_to(2.0 * log_std, out["out"].shape)
    return losses.gaussian_nll(out["out"], logvar, x)


def make_loss_fn(model: nn.Module, config, noise: bool) -> Callable:
    """Returns loss_fn(params, x, mask, rng, hyper, train) -> (loss, terms).

    Args:
      model: an `Autoencoder` or `VAE`.
      config: the run's config (static parts only are read here).
      noise: whether input noise exists at all (static; its std is in `hyper`).

    The returned function takes x (B, D) and mask (B,) with 1 for real rows and 0
    for padding; the loss is the mask-weighted mean over rows of the per-example
    objective, plus the batch-level KL-sparsity penalty when configured.
    """
    recon_kind, obs_std = config.loss.recon, float(config.loss.obs_std)
    sparsity = config.loss.sparsity == "kl"
    is_vae = config.model.name == "vae"

    def loss_fn(params, x, mask, rng, hyper, train: bool):
        noise_rng, sample_rng = jax.random.split(rng)
        x_in = x
        if noise and train:
            x_in = x + hyper["noise_std"] * jax.random.normal(noise_rng, x.shape, x.dtype)
        out = model.apply({"params": params}, x_in, sample_rng)
        out = {k: v.astype(jnp.float32) for k, v in out.items()}  # losses in float32
        recon = reconstruction(recon_kind, out, x, obs_std, model.heads)
        l1 = losses.l1(out["code"])
        kl = losses.kl_normal(out["mean"], out["logvar"]) if is_vae else jnp.zeros_like(recon)
        per_example = recon + hyper["l1_weight"] * l1 + hyper["beta"] * kl
        w = mask / jnp.maximum(jnp.sum(mask), 1.0)
        terms = {"recon": w @ recon, "l1": w @ l1, "kl": w @ kl}
        loss = w @ per_example
        if sparsity:
            terms["sparsity"] = losses.kl_sparsity(out["code"], hyper["rho"], mask)
            loss = loss + hyper["sparsity_weight"] * terms["sparsity"]
        return loss, terms

    return loss_fn
