"""The training objective: configured terms, summed with per-model weights.

Static choices (which reconstruction loss, whether the KL-sparsity term exists, AE or VAE, the
number of importance samples) are fixed when the loss function is built. The weights and rates
(`l1_weight`, `beta`, `sparsity_weight`, `rho`, `noise_std`, the KL warm-up, free bits,
`tc_weight`, `mmd_weight`) come in at call time from the `hyper` pytree, so K models with
different values share one compiled program under `jax.vmap` (see `ae_jax/sweeps/overrides.py`).
The optional terms a weight switches on (`OPTIONAL_TERMS`) are computed when any model of the
group uses them; a model whose weight is 0 then gets exactly the loss it would get without them.
"""

import math
from collections.abc import Callable
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ae_jax import models
from ae_jax.training import losses, vae_terms

# The scalars a model may vary without recompiling; all live in `hyper`.
HYPER_KEYS = (
    "learning_rate",
    "l1_weight",
    "beta",
    "sparsity_weight",
    "rho",
    "noise_std",
    "kl_warmup_epochs",
    "kl_warmup_start",
    "free_bits",
    "tc_weight",
    "mmd_weight",
    "seed",
)
TERMS = ("recon", "l1", "kl")
# Optional terms -> the hyper field whose positive value (in any model of a group) adds them.
OPTIONAL_TERMS = {
    "noise": "noise_std",
    "warmup": "kl_warmup_epochs",
    "free_bits": "free_bits",
    "tc": "tc_weight",
    "mmd": "mmd_weight",
}
# Optional term -> the metrics it adds to the loss's report (`make_loss_fn`'s out_terms).
TERM_METRICS = {
    "noise": (),
    "warmup": ("kl_weight",),
    "free_bits": ("kl_free_bits",),
    "tc": ("tc", "mi", "dim_kl"),
    "mmd": ("mmd",),
}


def hyper_from_config(config) -> dict[str, float | int]:
    """The vmappable scalars of one run, read from its config."""
    lo = config.loss
    out: dict[str, float | int] = {"learning_rate": float(config.optim.learning_rate)}
    for key in HYPER_KEYS[1:-1]:
        out[key] = float(lo[key])
    out["seed"] = int(config.train.seed)
    return out


def optional_terms(configs: list) -> frozenset:
    """The optional terms a group of runs computes: those any of its models weights above 0."""
    hypers = [hyper_from_config(c) for c in configs]
    return frozenset(t for t, key in OPTIONAL_TERMS.items() if any(h[key] > 0 for h in hypers))


def group_only_metrics(config, group_terms: frozenset) -> frozenset:
    """The metrics a run's loss reports only because another model of its group weights a term
    that this run's config does not (`group_terms` outside its own `optional_terms`). A run's
    records leave them out, so that its files name the same metrics whether it trains alone or
    in any group: e.g. a plain VAE beside a beta-TC-VAE logs no tc, mi and dim_kl."""
    own = optional_terms([config])
    return frozenset(m for t in group_terms - own for m in TERM_METRICS[t])


def stack_hypers(hypers: list[dict]) -> dict[str, jax.Array]:
    """K per-run hyper dicts -> one dict of (K,) arrays (float32, seed int32)."""
    # Built on the host and moved with device_put: jnp.asarray dispatched a small device
    # program per key and dtype (~40 ms of a run's start from a Python list, a cache lookup
    # or a compile each from a numpy array).
    return {
        k: jax.device_put(
            np.asarray([h[k] for h in hypers], np.int32 if k == "seed" else np.float32)
        )
        for k in HYPER_KEYS
    }


def reconstruction(kind: str, out: dict[str, jax.Array], x: jax.Array, obs_std: float, heads=None):
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


def make_loss_fn(
    model: nn.Module,
    config,
    terms: frozenset = frozenset(),
    num_train: int = 1,
    steps_per_epoch: int = 1,
    num_val: int | None = None,
) -> Callable:
    """Returns loss_fn(params, x, mask, rng, hyper, train, step=None) -> (loss, terms).

    Args:
      model: an `Autoencoder` or `VAE`.
      config: the run's config (static parts only are read here).
      terms: the optional terms to compute (`optional_terms` of the group).
      num_train: rows in the training split: the data-set size of the total correlation's
        aggregate posterior in training (`train=True`).
      steps_per_epoch: optimizer steps per epoch (the KL warm-up's unit).
      num_val: rows in the validation split, its data-set size in validation (`train=False`):
        `eval/tc`, `eval/mi` and `eval/dim_kl` describe the validation set's aggregate
        posterior, as eval.json's `vae/*` do (exactly so when one batch holds the split); with
        N_train, `eval/mi` was bounded by log N_train, not log N_val. None: `num_train`.

    The returned function takes x (B, D) and mask (B,) with 1 for real rows and 0 for padding;
    the loss is the mask-weighted mean over rows of the per-example objective, plus the
    batch-level terms (KL sparsity, total correlation, MMD) when configured. `step` (the
    optimizer step, training only) sets the warm-up's KL weight; without it the weight is beta.
    """
    recon_kind, obs_std = config.loss.recon, float(config.loss.obs_std)
    sparsity = config.loss.sparsity == "kl"
    is_vae = config.model.name == "vae"
    iw_k = int(config.loss.iw_samples_train)
    kernel = config.loss.mmd_kernel

    def loss_fn(params, x, mask, rng, hyper, train: bool, step=None):
        noise_rng, sample_rng = jax.random.split(rng)
        x_in = x
        if "noise" in terms and train:
            x_in = x + hyper["noise_std"] * jax.random.normal(noise_rng, x.shape, x.dtype)
        w = mask / jnp.maximum(jnp.sum(mask), 1.0)
        if is_vae and iw_k > 1:
            out, bound, beta = _iw_pass(
                model,
                params,
                x_in,
                x,
                sample_rng,
                hyper,
                step,
                recon_kind,
                obs_std,
                iw_k,
                terms,
                steps_per_epoch,
            )
            recon = out["nll"]
        else:
            # Both models' __call__ return a dict; flax's `apply` is typed for any method.
            out = cast(dict[str, jax.Array], model.apply({"params": params}, x_in, sample_rng))
            out = {k: v.astype(jnp.float32) for k, v in out.items()}  # losses in float32
            recon = reconstruction(recon_kind, out, x, obs_std, model.heads)
        l1 = losses.l1(out["code"])
        out_terms = {"recon": losses.weighted(w, recon), "l1": losses.weighted(w, l1)}
        if not is_vae:
            kl = jnp.zeros_like(recon)
            loss = losses.weighted(w, recon + hyper["l1_weight"] * l1 + hyper["beta"] * kl)
        elif iw_k > 1:
            kl = losses.kl_normal(out["mean"], out["logvar"])
            loss = losses.weighted(w, -bound + hyper["l1_weight"] * l1)
            out_terms["iw_bound"] = losses.weighted(w, bound)
        else:
            kl = losses.kl_normal(out["mean"], out["logvar"])
            beta = _kl_weight(hyper, step, terms, steps_per_epoch)
            loss = losses.weighted(w, recon + hyper["l1_weight"] * l1 + beta * kl)
            if "free_bits" in terms:  # the KL term clamped per dimension; fb = 0: unchanged
                fb = hyper["free_bits"]
                # Logged: the loss's KL term under free bits (kl stays the unclamped KL).
                out_terms["kl_free_bits"] = vae_terms.free_bits_kl(
                    out["mean"], out["logvar"], w, fb
                )
                clamped = (
                    losses.weighted(w, recon + hyper["l1_weight"] * l1)
                    + beta * out_terms["kl_free_bits"]
                )
                loss = jnp.where(fb > 0, clamped, loss)
        out_terms["kl"] = losses.weighted(w, kl)
        if is_vae and "warmup" in terms:
            out_terms["kl_weight"] = beta
        if sparsity:
            out_terms["sparsity"] = losses.kl_sparsity(out["code"], hyper["rho"], mask)
            loss = loss + hyper["sparsity_weight"] * out_terms["sparsity"]
        if is_vae and "tc" in terms:
            size = num_train if train or num_val is None else num_val
            parts = vae_terms.kl_decomposition(out["z"], out["mean"], out["logvar"], mask, size)
            out_terms.update(parts)
            loss = loss + hyper["tc_weight"] * parts["tc"]
        if is_vae and "mmd" in terms:
            prior = jax.random.normal(jax.random.fold_in(sample_rng, 1), out["z"].shape)
            out_terms["mmd"] = vae_terms.mmd(out["z"], prior, kernel, mask)
            loss = loss + hyper["mmd_weight"] * out_terms["mmd"]
        return loss, out_terms

    return loss_fn


def _kl_weight(hyper, step, terms: frozenset, steps_per_epoch: int):
    """beta, or the warm-up's weight at this training step."""
    if "warmup" in terms and step is not None:
        return vae_terms.warmup_beta(
            step,
            steps_per_epoch,
            hyper["beta"],
            hyper["kl_warmup_start"],
            hyper["kl_warmup_epochs"],
        )
    return hyper["beta"]


def _iw_pass(
    model, params, x_in, x, rng, hyper, step, recon_kind, obs_std, k, terms, steps_per_epoch
):
    """Training on the k-sample importance-weighted bound: (pass outputs, bound (B,), weight)."""
    beta = _kl_weight(hyper, step, terms, steps_per_epoch)
    eps = vae_terms.iw_eps(rng, x.shape[0], k, model.encoder.latent_dim)
    out = iw_pass(model, params, x_in, x, eps, recon_kind, obs_std, beta)
    return out, vae_terms.iw_bound(out["log_w"]), beta


# Linen `method=`s: the encoder's raw output ((mean, logvar) for a VAE), the decoder's logits.
_encoder = lambda module, x: module.encoder(x)
_decoder = lambda module, z: module.decoder(z)


def iw_pass(model, params, x_in, x, eps, recon_kind: str, obs_std: float, beta=1.0) -> dict:
    """Encodes x_in, draws z = mean + std * eps for eps (B, k, L), decodes, and returns the
    importance log-weights (B, k) of x under them with {"mean", "logvar", "z" (the first draw),
    "nll" (-log p(x|z_1)), "nll_mean" (-log p(x|z_j) averaged over the k draws), "nll_draws"
    (-log p(x|z_j) of each draw, (B, k)), "code"}. The
    evaluation's IWAE bound and ELBO use this same function."""
    variables = {"params": params}
    mean, logvar = model.apply(variables, x_in, method=_encoder)
    mean, logvar = mean.astype(jnp.float32), logvar.astype(jnp.float32)
    z = mean[..., None, :] + jnp.exp(0.5 * logvar)[..., None, :] * eps  # (B, k, L)
    flat = z.reshape(-1, z.shape[-1])
    logits = model.apply(variables, flat, method=_decoder).astype(jnp.float32)
    logits = logits.reshape(*z.shape[:-1], logits.shape[-1])  # (B, k, D)
    out = {"logits": logits}
    if "obs_log_std" in params:  # a learned Gaussian scale
        out["log_std"] = params["obs_log_std"]
    out["out"] = models.output_mean(model, logits)
    nll = reconstruction(
        recon_kind, out, jnp.broadcast_to(x[..., None, :], logits.shape), obs_std, model.heads
    )
    log_w = vae_terms.log_weights(nll, z, mean, logvar, beta)
    return {
        "log_w": log_w,
        "mean": mean,
        "logvar": logvar,
        "code": mean,
        "z": z[..., 0, :],
        "nll": nll[..., 0],
        "nll_mean": jnp.mean(nll, axis=-1),
        "nll_draws": nll,
    }
