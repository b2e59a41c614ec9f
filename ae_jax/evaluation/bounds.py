"""What an evaluation calls its numbers: whether the reconstruction term is a log-likelihood
of the evaluated rows, and the VAE's `vae/` keys (ELBO, IWAE bound, KL, active units), named for
what they are when the likelihood is not one.
"""

import numpy as np

from ae_jax.data import scaling as scaling_lib
from ae_jax.evaluation import statistics


def bound_draws(cfg, iw_samples: int | None = None) -> int:
    """Posterior draws per row of a VAE's importance-weighted bound at evaluation:
    eval.iw_samples (or `iw_samples`); 0 for none: an autoencoder, or a VAE under MSE, which
    has no likelihood to weight (its evaluation draws one sample per row)."""
    if cfg.model.name != "vae" or cfg.loss.recon == "mse":
        return 0
    return int(cfg.eval.iw_samples if iw_samples is None else iw_samples)


def likelihood_label(cfg, x: np.ndarray) -> dict:
    """What the reconstruction term is, for eval.json: `likelihood` (its name) and
    `is_log_likelihood`: whether it is a normalised log-density of the evaluated rows `x`, so
    that the VAE's bounds are bounds on log p(x) in nats.

    A squared error is no likelihood; a Bernoulli one is a log-probability only of binary data
    (on grey values it is a cross-entropy, whose minimum is the data's own entropy, not 0); the
    continuous Bernoulli and the Gaussian are densities of data in [0, 1] and of any real data.
    """
    kind = cfg.loss.recon
    std = "learned std" if cfg.loss.obs_std_learned else f"std={cfg.loss.obs_std:g}"
    names = {
        "mse": "none (squared error)",
        "bce": "bernoulli",
        "cbernoulli": "continuous_bernoulli",
        "gaussian": f"gaussian({std})",
        "mixed": f"mixed (gaussian({std}) numeric, bernoulli true/false, categorical)",
    }
    x = np.asarray(x)
    is_ll = {
        "mse": False,
        "gaussian": True,
        "mixed": True,
        "bce": bool(np.isin(x, (0.0, 1.0)).all()),
        "cbernoulli": bool(((x >= 0.0) & (x <= 1.0)).all()),
    }[kind]
    return {"likelihood": names[kind], "is_log_likelihood": is_ll}


def discrete_note(cfg, x: np.ndarray, layout, offset, scale, imputed=None) -> str | None:
    """Why a density's bounds are no log-probabilities of these rows, or None: the columns a
    Gaussian (`gaussian`, `mixed`'s numeric ones) or continuous Bernoulli models as a density
    whose values in `x` (N, D) are discrete levels: true/false, category codes or one-hot
    cells (`layout`'s kinds other than numeric), and numeric columns of whole numbers in
    their own units (`x * scale + offset`: counts, identifiers, pixel intensities) or of a few
    levels (at most 256, and at most half as many as rows: grey values k/16). A density at
    such points is no probability of them: it grows as it narrows (a smaller loss.obs_std),
    so its bounds compare only with densities of the same scaled data, not with discrete
    likelihoods. `imputed` ((N, input columns) bool, or None) marks cells that were missing,
    filled with the training mean: a column's observed cells alone tell its values (one
    filled cell, 99.977 among whole numbers, hid a column of counts from the note: a probe)."""
    kind = cfg.loss.recon
    if kind not in ("gaussian", "mixed", "cbernoulli") or layout is None or scale is None:
        return None
    x = np.asarray(x)
    levels = []
    for i, (name, col_kind, start, _) in enumerate(layout):
        if col_kind != "numeric":
            if kind != "mixed":  # mixed gives them a Bernoulli or a softmax: probabilities
                levels.append(name)
            continue
        seen = x[:, start] if imputed is None else x[~np.asarray(imputed)[:, i], start]
        if not len(seen):
            continue
        whole = scaling_lib.whole_in_own_units(seen, scale[start], offset[start])
        if whole or np.unique(seen).size <= min(256, len(seen) // 2):
            levels.append(name)
    if not levels or not len(x):
        return None
    model = "continuous Bernoulli" if kind == "cbernoulli" else "Gaussian"
    shown = ", ".join(repr(n) for n in levels[:6]) + (" ..." if len(levels) > 6 else "")
    return (
        f"columns the {model} models as a density hold discrete values ({len(levels)}: "
        f"{shown}; true/false, category codes, whole numbers in their own units or a few "
        "levels): its log-density at those points is no log-probability of them (a density "
        "is not bounded by 1: it grows as it narrows around them), so vae/elbo and vae/iwae "
        "compare only with "
        "densities of the same scaled data, not with discrete likelihoods (dequantised data, "
        "uniform noise within each level, would give such a bound)."
    )


def _mc_se(row_variances) -> float:
    """Monte Carlo standard error of a mean over N rows of estimates with these variances (each
    row's draws are its own): sqrt(sum of variances) / N."""
    v = np.asarray(row_variances, np.float64)
    return float(np.sqrt(np.sum(v)) / v.size)


def vae_metrics(cfg, det: dict, sampled: dict, k: int, is_log_likelihood: bool) -> dict:
    """The `vae/` keys. One pass drew k posterior samples per row (`passes.row_samples`): all k
    make both the ELBO's reconstruction term (their mean of -log p(x|z), a k-sample estimate of
    its expectation) and the importance-weighted bound. With k >= 2 each bound gets its Monte
    Carlo standard error (`*_mc_se`: what other draws would move it by, given these rows; the
    KL is exact); one draw per row gives none.

    Only a true log-likelihood gives `vae/elbo` and `vae/iwae` (bounds on log p(x) in nats);
    otherwise the same quantities are named for what they are: `vae/bce_bound` and
    `vae/bce_iwae_bound` (Bernoulli cross-entropy on non-binary data), `vae/mse_bound`.
    """
    recon = float(np.mean(np.asarray(sampled["nll_mean"], np.float64)))
    kl_dims = statistics.kl_per_dim(det["code"], det["logvar"])
    kl = float(np.sum(kl_dims))
    kind = cfg.loss.recon
    m = {
        "vae/recon": recon,
        "vae/kl": kl,
        "vae/kl_per_dim": kl_dims.tolist(),
        "vae/active_units": statistics.active_units(det["code"], float(cfg.eval.active_var)),
        "vae/active_var": float(cfg.eval.active_var),
    }
    if m["vae/active_units"] is None:
        m["vae/active_units_note"] = (
            "one row evaluated: a unit is active when its posterior mean varies over the rows, "
            "which one row cannot show, so no count (null)"
        )
    elbo, iwae = (
        ("vae/elbo", "vae/iwae")
        if is_log_likelihood
        else (f"vae/{kind}_bound", f"vae/{kind}_iwae_bound")
    )
    m[elbo] = -(recon + kl)
    if k > 1:
        m[f"{elbo}_mc_se"] = _mc_se(sampled["nll_mean_var"])
    if kind == "mse":
        m["vae/iwae_note"] = (
            "loss.recon is 'mse': a squared error defines no likelihood p(x|z), so no "
            "importance-weighted bound is reported and vae/mse_bound is -(squared error + kl), "
            "not a bound on log p(x); train with loss.recon='gaussian', 'cbernoulli', 'mixed' "
            "(a table's columns) or (binary data) 'bce' for one."
        )
    else:
        m.update(
            {"vae/iwae_k": int(k), iwae: float(np.mean(np.asarray(sampled["bound"], np.float64)))}
        )
        if k > 1:
            m[f"{iwae}_mc_se"] = _mc_se(sampled["bound_var"])
        if not is_log_likelihood:
            m["vae/iwae_note"] = (
                f"loss.recon is {kind!r} on data that is not binary: the Bernoulli term is a "
                "cross-entropy, not a log-probability, so its bounds are named vae/bce_bound "
                "and vae/bce_iwae_bound, not ELBO and IWAE; use loss.recon='cbernoulli' (or "
                "binarised data) for bounds on log p(x)."
            )
    return m
