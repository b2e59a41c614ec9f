"""Evaluate a trained run: reconstruction against PCA, code statistics, VAE bounds.

`evaluate_group(model, params, data, configs)` evaluates the K models of a group (parameters
stacked on a leading axis, in memory) with one compiled program per pass and one PCA fit;
training calls it with the parameters it holds. `evaluate_run(workdir)` is the same for one
run loaded from disk (`ae_jax.load`): its validation split rebuilt, or another file read through
the saved preprocessor; it writes eval.json (flat "/"-separated keys, JSON-safe numbers) and
figures (`folders.evaluation_dir`: the run's own, or `workdir/evaluations/NAME/`), and returns
the dict and where it wrote them (`evaluate_workdir`: the dict).

Keys: n_val, epoch, which, data, data_path and data_digest (an evaluation of a file: its real path,
and a digest of its rows as the model reads them), figures, diverged_step (a diverged run's: its
parameters are from before that step), imputed_cells (with data.missing='impute': how many cells of
these rows were filled in; the per-column metrics pass over them, recon/mse, pca/mse and the vae/
terms, of the matrix the model reads, do not); likelihood (the reconstruction term's name) and
is_log_likelihood (whether it is a normalised log-density of these rows); likelihood_note (a VAE's,
when a density models discrete values: `bounds.discrete_note`); recon/mse, recon/mse_per_feature
(column -> MSE), with loss.recon == "bce" also recon/bce and recon/bce_per_feature; pca/mse,
pca/mse_per_feature and ae_over_pca (PCA with latent_dim components fitted on the run's training
split; pca/note instead when that split cannot be rebuilt, or with a null ae_over_pca when PCA is
exact); code/mean_activation, code/l1_per_row, code/near_zero_fraction, code/near_zero_threshold,
code/unit_mean, code/unit_std, code/dead_units, code/dead_unit_count; for a VAE vae/recon, vae/kl,
vae/kl_per_dim, vae/active_units (null, vae/active_units_note why, for one row), vae/active_var, the
aggregate posterior's KL decomposition (vae/total_correlation, vae/mutual_info, vae/dim_kl over the
first vae/aggregate_rows rows, vae/aggregate_draws draws each, each with its Monte Carlo standard
error, e.g. vae/total_correlation_mc_se; Chen et al. 2018), and the bounds: vae/elbo, vae/iwae_k,
vae/iwae when is_log_likelihood, else the same numbers named for what they are (vae/bce_bound,
vae/bce_iwae_bound; vae/mse_bound) with vae/iwae_note saying why, each bound with its Monte Carlo
standard error when k >= 2 (vae/elbo_mc_se, vae/iwae_mc_se, ...; 'mse' draws one sample per row, so
vae/mse_bound has none). For a table, also recon/per_column (per input column: numeric mse, mae,
rmse_original; categorical and true/false accuracy, cross_entropy, baseline_accuracy) and its
summaries recon/numeric_mse and recon/categorical_accuracy.

Conventions are those of training (see `losses.py`): per-example terms are summed over features
(or latent dimensions) and averaged over rows, in nats for likelihoods; only `recon/mse` (and
`pca/mse`) is the per-element mean, so it equals the training log's `eval/mse`.

Jitted passes (batched over models): `passes.py`; numpy statistics: `statistics.py`; the rows
it reads: `eval_data.py`.
"""

import contextlib
import hashlib
import os
from collections.abc import Sequence

import jax
import numpy as np
from absl import logging

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import models, runtime
from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError, storage_error
from ae_jax.evaluation import bounds, figure_data, folders, passes, statistics, trained
from ae_jax.evaluation import figures as figures_lib
from ae_jax.evaluation.eval_data import EvalData, evaluation_data
from ae_jax.training import group, writers

EVAL_FILE = workdir_lib.EVAL


def _per_feature(columns: list[str], values: np.ndarray) -> dict[str, float]:
    return {c: float(v) for c, v in zip(columns, values, strict=True)}


# A diverged model's huge or non-finite outputs give NaN in numpy's statistics: written as null
# (and said so by write_eval), without numpy's warnings in the log.
@np.errstate(all="ignore")
def evaluate_group(
    model,
    params,
    data: EvalData,
    configs: list,
    epoch: int | Sequence[int],
    iw_samples: int | None = None,
    seed: int = 0,
    stop=None,
) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """Every eval.json number for each of K models on `data`; no files written.

    Args:
        model: the group's Linen module; params: its K models' parameters, stacked on axis 0.
        configs: the K runs' configs (static parts equal; eval settings read from the first).
        epoch: the epoch the parameters are from, or per model (a diverged model's: the last
            it finished, which its summary.json names).
        iw_samples: k of the VAE's importance-weighted bound (None: config eval.iw_samples).
        seed: seeds the VAE's posterior samples (the same draws for every model).
        stop: called between chunks of models; may raise to stop cleanly.

    Returns:
        Per model (metrics, arrays): metrics as in eval.json (before JSON cleaning); arrays
        holds "codes" (N, L), "recon" (N, D), and when computed "pca_recon" (N, D) and
        "logvar" (N, L).
    """
    cfg = configs[0]
    is_vae = isinstance(model, models.VAE)
    k = cfg.eval.iw_samples if iw_samples is None else iw_samples
    passes.check_iw_samples(k)
    det = passes.deterministic_many(model, params, data.x, cfg.train.eval_batch_size, stop)
    pca_recon = pca_per = pca_note = few = None
    if data.x_train is not None:  # one fit for the group: same data, same code size
        pca_recon = statistics.pca_reconstruction(data.x_train, data.x, cfg.model.latent_dim)
        pca_per = statistics.mse_per_feature(pca_recon, data.x)
        pca_note = statistics.pca_exact(pca_per, data.x, int(cfg.model.latent_dim))
        few = statistics.pca_few_rows(data.x_train, int(cfg.model.latent_dim))  # (a ratio still)
    sampled = None
    if is_vae:
        k = bounds.bound_draws(cfg, k) or 1  # under MSE, no importance weights: one draw
        sampled = passes.sampled_many(
            model,
            params,
            data.x,
            jax.random.PRNGKey(seed),
            k,
            cfg.loss.recon,
            float(cfg.loss.obs_std),
            cfg.eval.iw_batch_rows,
            stop,
            float(cfg.train.log_seconds),
        )
    aggregate = None
    if is_vae:
        aggregate = passes.aggregate_kl_terms(
            det["code"], det["logvar"], jax.random.fold_in(jax.random.PRNGKey(seed), 1)
        )
    label = bounds.likelihood_label(cfg, data.x)
    if is_vae and label["is_log_likelihood"]:  # (the note is of a VAE's bounds only)
        note = bounds.discrete_note(cfg, data.x, data.layout, data.offset, data.scale, data.imputed)
        label.update({"likelihood_note": note} if note else {})
    results = []
    for i, c in enumerate(configs):
        one = {key: v[i] for key, v in det.items()}
        per = statistics.mse_per_feature(one["out"], data.x)
        m: dict = {
            "n_val": int(data.x.shape[0]),
            "epoch": int(epoch if isinstance(epoch, int) else epoch[i]),
            "data": data.source,
            **label,
            **({} if data.imputed is None else {"imputed_cells": int(data.imputed.sum())}),
            "recon/mse": float(np.mean(per)),
            "recon/mse_per_feature": _per_feature(data.columns, per),
        }
        arrays = {"codes": one["code"], "recon": one["out"]}
        if c.loss.recon == "bce":
            bce = statistics.bce_per_feature(one["logits"], data.x)
            m["recon/bce"] = float(np.sum(bce))
            m["recon/bce_per_feature"] = _per_feature(data.columns, bce)
        if pca_recon is not None:
            assert pca_per is not None  # computed with pca_recon
            arrays["pca_recon"] = pca_recon
            m["pca/mse"] = float(np.mean(pca_per))
            m["pca/mse_per_feature"] = _per_feature(data.columns, pca_per)
            m["ae_over_pca"] = None if pca_note else m["recon/mse"] / m["pca/mse"]
            if pca_note or few:
                m["pca/note"] = "; ".join(n for n in (pca_note, few) if n)
        else:
            m["pca/note"] = data.note
        if data.layout is not None and data.image_shape is None:
            cats = data.categories or {}  # column -> its UNSEEN code, last (since version 3)
            unseen = {
                c: len(cats[c]) - 1
                for c, kind, _, _ in data.layout
                if kind in ("categorical", "ordinal") and cats.get(c, [""])[-1] == data_lib.UNSEEN
            }
            cols, summary = statistics.per_column(
                data.layout,
                data.x,
                one["out"],
                data.x_train,
                data.offset,
                data.scale,
                data.imputed,
                data.imputed_train,
                unseen,
            )
            m["recon/per_column"] = cols
            m.update(summary)
        m.update(statistics.code_statistics(one["code"], float(cfg.eval.near_zero)))
        if is_vae:
            assert sampled is not None and aggregate is not None  # computed for a VAE above
            m.update(
                bounds.vae_metrics(
                    c, one, {key: v[i] for key, v in sampled.items()}, k, label["is_log_likelihood"]
                )
            )
            m.update(aggregate[i])  # the aggregate posterior's KL decomposition
            m["vae/eval_seed"] = int(seed)  # the posterior draws' (`ae-jax evaluate --seed`)
            arrays["logvar"] = one["logvar"]
        results.append((m, arrays))
    return results


def evaluate_model(
    tm: trained.TrainedModel, data: EvalData, iw_samples: int | None = None, seed: int = 0
) -> tuple[dict, dict[str, np.ndarray]]:
    """`evaluate_group` for one loaded run."""
    params = jax.tree.map(lambda a: np.asarray(a)[None], tm.params)
    return evaluate_group(tm.model, params, data, [tm.config], tm.epoch, iw_samples, seed)[0]


def write_eval(workdir: str, metrics: dict) -> dict:
    """Writes eval.json (JSON-safe); returns what was written. Numbers that are not finite
    (a diverged model's) are written as null, and said so."""
    if bad := statistics.not_finite(metrics):
        logging.warning(
            "%s: %d value(s) are not finite (NaN or infinite), written as null: %s%s",
            os.path.join(workdir, EVAL_FILE),
            len(bad),
            ", ".join(bad[:8]),
            f" and {len(bad) - 8} more" if len(bad) > 8 else "",
        )
    metrics = statistics.json_safe(metrics)
    try:
        os.makedirs(workdir, exist_ok=True)
        workdir_lib.write_json(os.path.join(workdir, EVAL_FILE), metrics)
    except OSError as e:
        why, fix = storage_error(e) or (f"{e.strerror}: {e.filename}", "make it writable")
        raise UserError(f"cannot write the evaluation into {workdir!r} ({why}): {fix}.") from None
    return metrics


def evaluate_workdir(
    workdir: str,
    data_path: str = "",
    which: str = "latest",
    iw_samples: int | None = None,
    seed: int = 0,
    dataset: data_lib.Dataset | None = None,
    figures: bool = True,
    npz_key: str = "",
) -> dict:
    """`evaluate_run`'s metrics alone."""
    return evaluate_run(
        workdir, data_path, which, iw_samples, seed, dataset, figures=figures, npz_key=npz_key
    )[0]


def evaluate_run(
    workdir: str,
    data_path: str = "",
    which: str = "latest",
    iw_samples: int | None = None,
    seed: int = 0,
    dataset: data_lib.Dataset | None = None,
    figures: bool = True,
    npz_key: str = "",
) -> tuple[dict, str]:
    """Evaluates the run in `workdir`; writes eval.json and figures/ into
    `folders.evaluation_dir` (for a run not finished, a directory named with the checkpoint's
    epoch); returns (the metrics, that directory).

    Args:
        workdir: a run directory (config.json, preprocessor.json, checkpoints/).
        data_path: "" for the run's validation split; else a file whose rows (all of them)
            are transformed with the saved preprocessor.
        which: the checkpoint, "latest" or "best" (lowest eval/loss).
        iw_samples: k of the VAE's importance-weighted bound (None: config eval.iw_samples).
        seed: seeds the VAE's posterior samples.
        dataset: the run's Dataset when the caller holds it, else rebuilt.
        figures: also write the evaluation figures.
        npz_key: the array of an .npz `data_path` ("": the run's data.npz_key).

    Returns:
        The eval.json dict (flat "/"-separated keys, listed in the module docstring) and the
        directory it was written to.
    """
    workdir = workdir_lib.as_path(workdir)  # ('~' expanded: read and written alike)
    if isinstance(data_path, os.PathLike):  # (a pathlib.Path was a traceback)
        data_path = os.fspath(data_path)
    if not (isinstance(data_path, str) and isinstance(npz_key, str)):  # (None, 3, an array)
        raise UserError(
            f"evaluate: data_path={data_path!r:.60}, npz_key={npz_key!r:.60}; expected a file's "
            "path (or '' for the run's validation split) and an .npz array's name (or '')."
        )
    if iw_samples is not None:
        iw_samples = passes.check_iw_samples(iw_samples)
    config_lib.check_seed(seed, "seed")
    tm = trained.load(workdir, which)  # a directory that is no run: said first
    if dataset is not None:  # (another data set's rows were evaluated as the run's own: a probe)
        group.check_given_dataset(tm.config, dataset)
    if iw_samples is not None and not tm.is_vae:
        raise UserError(f"--iw_samples={iw_samples}: k of a VAE's bound; {workdir!r} is an AE.")
    if seed and not tm.is_vae:  # it named an output directory of the same numbers
        raise UserError(
            f"--seed={seed}: seeds a VAE's posterior samples; {workdir!r} is an AE, whose "
            "evaluation draws none."
        )
    if npz_key and not data_path.lower().endswith(".npz"):  # (it read "got ''" without --data)
        given = f"{data_path!r} is none" if data_path else "no --data was given"
        raise UserError(f"--npz_key={npz_key!r} names an array of an .npz --data; {given}.")
    # Another file's rows: read first, their digest names the evaluation's folder apart from an
    # earlier one of the same file with other rows (it was replaced, unsaid: a probe).
    data = evaluation_data(tm, data_path, dataset, npz_key) if data_path else None
    digest = rows_digest(data) if data is not None else ""
    end = (workdir_lib.finished_summary(workdir) or {}).get("epoch")  # (as the name is chosen)
    out = folders.evaluation_dir(
        workdir, data_path, which, iw_samples, seed, npz_key, tm.epoch, data_digest=digest
    )
    if digest and os.path.basename(out).split(",")[1].endswith("@" + digest[:8]):
        logging.info(
            "the evaluation of %s in %s was of other rows (kept): this one goes to %s",
            data_path,
            out.replace("@" + digest[:8], "", 1),
            out,
        )
    with contextlib.ExitStack() as held:
        if out == workdir:  # its own: while no training changes the run (see `_own_held`)
            out = _own_held(held, tm, out)
        if data is None:  # (the run's own rows: read holding its lock)
            data = evaluation_data(tm, data_path, dataset, npz_key)
        return _evaluate_into(
            tm, out, end, data_path, data, digest, which, iw_samples, seed, figures
        )


def rows_digest(data: EvalData) -> str:
    """A digest of evaluated rows as the evaluation reads them (eval.json's `data_digest`): the
    features, which cells were imputed (the per-column metrics count the observed ones) and
    the labels (the codes' colours)."""
    return data_lib.digest(data.x, data.imputed, data.labels)


def _own_held(held: contextlib.ExitStack, tm: trained.TrainedModel, out: str) -> str:
    """The run's own evaluation is written holding the run's lock, the run still finished at
    the epoch evaluated; else (an extension started: it holds the lock, or has trained on) it
    goes to evaluations/which=latest,epoch=E/. An evaluation racing an extension wrote its
    epoch-200 eval.json and figures as the run's own beside the epoch-400 summary (a probe)."""
    aside = os.path.join(out, workdir_lib.EVALUATIONS, f"which=latest,epoch={tm.epoch}")
    try:
        held.enter_context(workdir_lib.WorkdirLock(out))
    except UserError:  # (in use: training)
        return aside
    still = (workdir_lib.finished_summary(out) or {}).get("epoch") == tm.epoch
    return out if still and folders.evaluation_dir(out) == out else aside


def _dated_if_trained_on(tm: trained.TrainedModel, out: str, end) -> str:
    """`out`, or, for an evaluation named without an epoch whose run has trained on since the
    name was chosen (its summary's epoch then `end`: an extension started meanwhile and dated
    the old end's evaluations before this one was written, and a probe found it undated beside
    the new end), `out` named with its checkpoint's epoch, as the extension names the others."""
    if out == tm.workdir or "epoch=" in os.path.basename(out):
        return out
    if (workdir_lib.finished_summary(tm.workdir) or {}).get("epoch") == end:
        return out
    return f"{out},epoch={tm.epoch}"


def _evaluate_into(tm, out, end, data_path, data, digest, which, iw_samples, seed, figures):
    """`evaluate_run`'s evaluation of the loaded run `tm` on `data`, written into `out`."""
    workdir = tm.workdir
    k = tm.config.eval.iw_samples if iw_samples is None else iw_samples
    bound = bool(bounds.bound_draws(tm.config))  # (a VAE under MSE draws one sample)
    logging.info(
        "evaluating %s (epoch %d) on %s row(s): %s%s ...",
        workdir,
        tm.epoch,
        f"{data.x.shape[0]:,}",
        data.source if data_path else f"the {data.source}",
        f" (an importance-weighted bound, k = {k})" if bound else "",
    )
    metrics, arrays = evaluate_model(tm, data, iw_samples, seed)
    out = _dated_if_trained_on(tm, out, end)
    metrics["which"] = which
    metrics["software"] = runtime.software()  # this evaluation's, maybe not training's
    if data_path:  # the file, whatever directory the command ran in (`folders.evaluation_dir`)
        metrics["data_path"] = workdir_lib.real_path(data_path)
        metrics["data_digest"] = digest
    if tm.kept_at_divergence:  # its parameters are from before the non-finite step
        metrics["diverged_step"] = tm.diverged_step
    written = []
    if figures:
        params = jax.tree.map(lambda a: np.asarray(a)[None], tm.params)
        inputs = figure_data.figure_inputs(
            tm.model, params, data, [tm.config], [(metrics, arrays)], [None], tm.epoch
        )[0]
        try:
            written = figures_lib.write_figures(os.path.join(out, workdir_lib.FIGURES), inputs)
        except OSError as e:
            why, fix = storage_error(e) or (f"{e.strerror}: {e.filename}", "make it writable")
            raise UserError(f"cannot write figures into {out!r} ({why}): {fix}.") from None
    curves = os.path.join(workdir, workdir_lib.FIGURES, "learning_curves.png")
    own = [curves] if out == workdir and figures and os.path.exists(curves) else []
    metrics["figures"] = [os.path.relpath(f, workdir) for f in own + written]  # as training
    tb = os.path.join(workdir, workdir_lib.TENSORBOARD)
    if written and tm.config.train.tensorboard and os.path.isdir(tb):
        # The figures of this evaluation next to training's, at the checkpoint's step.
        step = tm.epoch * int(tm.dataset_info.get("steps_per_epoch", 1))
        tag = "evaluate/" + (os.path.basename(out) + "/" if out != workdir else "")
        # One event file per evaluation, replaced when the same evaluation of the same epoch
        # runs again (as its eval.json and PNGs are), kept beside one of a later epoch (a run
        # extended: its old end's evaluation is kept, moved aside): named by a hash of its
        # folder, which may hold any character, and its step.
        name = "evaluate-" + hashlib.sha1(f"{tag}@{step}".encode()).hexdigest()[:16]
        with writers.MetricWriter(tb, name=name) as w:
            for path in written:
                w.write_figure(step, f"{tag}{os.path.basename(path)[:-4]}", path)
    return write_eval(out, metrics), out
