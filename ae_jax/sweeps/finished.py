"""The finished runs of a sweep, read from their own directories, for `report`.

A sweep's runs are those its DIR/sweep.json lists (run directories it does not list are named in
a warning); without sweep.json, the runs in DIR's subdirectories, as `ae-jax train` with
train.num_models = K and `ae_jax.train_together` write them. Whether a run finished or failed is
read from its directory, not from sweep.json's statuses (a killed sweep leaves them behind).
"""

import json
import math
import os

from absl import logging

from ae_jax import config as config_lib
from ae_jax import reruns
from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError, quoted
from ae_jax.sweeps.overrides import learned_key
from ae_jax.sweeps.report_figures import is_number
from ae_jax.sweeps.run_folders import subdir_runs, unused_in

# eval.json's nulls that are no number on purpose, not a number that was not finite: the key,
# and the key eval.json writes beside it saying why (PCA exact on the data: no ratio; one
# validation row: no active units).
EXPLAINED_NULLS = {"ae_over_pca": "pca/note", "vae/active_units": "vae/active_units_note"}
# eval.json's notes on what its VAE bounds are (a density on whole numbers, a cross-entropy on
# grey data), which the report repeats beside them.
BOUND_NOTES = ("likelihood_note", "vae/iwae_note")


def collect(workdir: str) -> tuple[list[dict], list[dict], list[tuple[str, str]], list[str]]:
    """One dict per finished run (its name, overrides, status, numeric results and L1 weight),
    every run sweep.json lists (`_listed`), those that failed (name, the first line
    of the error their failed.json holds), and the run directories sweep.json does not list
    (left out: `unlisted`). Whether a run
    finished or failed is read from its own directory, as sweep.json's statuses are (a killed
    sweep leaves them behind its runs)."""
    path = os.path.join(workdir, workdir_lib.SWEEP)
    if os.path.exists(path):
        fix = "rerun the sweep command, which writes it anew (finished runs are kept)"
        entries = workdir_lib.read_json(path, "the sweep's list of runs", fix).get("runs")
        if not isinstance(entries, list):
            raise UserError(f"{path} is damaged (no list of 'runs'); {fix}")
        unlisted = _unlisted(workdir, entries)
    else:
        entries, unlisted = subdir_runs(workdir), []
    rows, failed, lacking, stale = _rows(workdir, entries)
    finished = {r["index"] for r in rows}  # (those `_once` leaves out among them)
    rows = _once(rows)
    if stale:
        logging.warning(
            "%d finished run(s) have an eval.json of an earlier epoch than their end (extended "
            "by a version that left it), so their evaluation numbers are left out of the "
            "report: %s; move each one's eval.json and figures/ into evaluations/, then "
            "`ae-jax evaluate --workdir=RUN` writes its own",
            len(stale),
            ", ".join(stale[:5]) + (", ..." if len(stale) > 5 else ""),
        )
    if lacking and len(lacking) == len(rows):  # (eval.at_end=False: its numbers are missed)
        logging.warning(
            "none of the finished runs has an eval.json (trained with eval.at_end=False?), so the "
            "report has training's numbers only, none of the evaluation's (pca/mse, ae_over_pca, "
            "code/*, vae/*); `ae-jax evaluate --workdir=RUN` writes a run's"
        )
    elif lacking:  # some runs have their evaluation, these not
        logging.warning(
            "%d finished run(s) have no eval.json, so their evaluation numbers are left out of "
            "the report: %s; `ae-jax evaluate --workdir=RUN` writes it",
            len(lacking),
            ", ".join(lacking[:5]) + (", ..." if len(lacking) > 5 else ""),
        )
    hidden = _split_by_unswept(rows)
    return rows, _listed(workdir, entries, finished, hidden), failed, unlisted


def _listed(workdir: str, entries: list[dict], finished: set, hidden: list[str]) -> list[dict]:
    """Every run the sweep lists: {"listed": its overrides}, and for one with no finished row the
    config it trains, as a row's "config" and "overrides" (`_rows`): its own config.json, else
    the sweep's base config (sweep_config.json) with its overrides, typed as the base's fields
    ({} where neither is saved). The report counts it under that setting: a base-config entry
    of a swept value was "the base config" with no finished run, its setting "1 of 2" (a probe)."""
    defaults = config_lib.flatten_config(config_lib.default_config().to_dict())
    base, out = None, []
    for e in entries:
        listed = {"listed": e["overrides"]}
        if e.get("index") not in finished:
            config = _saved(os.path.join(workdir, e["workdir"]), workdir_lib.CONFIG)
            if not config:  # (read once, where needed: a damaged one is as none)
                base = _saved(workdir, workdir_lib.SWEEP_CONFIG) if base is None else base
                typed = {k: _typed(v, base[k]) for k, v in e["overrides"].items() if k in base}
                config = {**base, **typed} if base else {}
            unused = unused_in(config, defaults)
            listed["config"] = config = {k: v for k, v in config.items() if k not in unused}
            listed["overrides"] = {k: v for k, v in e["overrides"].items() if k not in unused}
            listed["overrides"].update({k: config.get(k) for k in hidden})  # as the rows'
        out.append(listed)
    return out


def _saved(directory: str, name: str) -> dict:
    """A saved config, flattened; {} where there is none or it cannot be read."""
    try:
        return workdir_lib.saved_config(directory, name) or {}
    except UserError:
        return {}


def _typed(value, like):
    """An override as its config field has it: 0 for a float field is 0.0 (a saved config's)."""
    number = isinstance(value, int) and not isinstance(value, bool)
    return float(value) if number and isinstance(like, float) else value


def _split_by_unswept(rows: list[dict]) -> list[str]:
    """Config fields the finished runs differ in that no entry sweeps (a sweep stopped while
    extending its runs to a larger train.epochs, a base config edited between launches) become
    overrides of every run, so the report never averages them as one setting's seeds; not a
    field a relaunch may change (`reruns.NOT_PARAMETERS`: eval.iw_batch_rows lowered to fit
    the evaluation in memory split every setting in two, a review). Returns them."""
    learned = [r["config"] for r in rows]  # (without the fields each leaves unused)
    fields = sorted({k for c in learned for k in c} - reruns.NOT_PARAMETERS)
    swept = {k for r in rows for k in r["overrides"]}
    hidden = [
        k
        for k in fields
        if k not in swept
        # a field some runs lack (an older version's, or one left unused) says nothing
        and len({json.dumps(c[k], default=str) for c in learned if k in c}) > 1
    ]
    if not hidden:
        return hidden
    logging.warning(
        "the finished runs differ in %s, which no sweep entry sets (a stopped extension to a "
        "larger train.epochs, or a base config changed between launches?): the report shows "
        "each as a parameter; rerun the sweep command to bring every run to its config",
        ", ".join(hidden),
    )
    for r in rows:
        r["overrides"] = {**r["overrides"], **{k: r["config"].get(k) for k in hidden}}
    return hidden


def _newer(failed: str, run_dir: str) -> bool:
    """Whether a run's failed.json was written after its summary.json (file times: for a
    failed.json an earlier version wrote, which records no summary)."""
    try:
        summary = os.stat(os.path.join(run_dir, workdir_lib.SUMMARY)).st_mtime_ns
        return os.stat(failed).st_mtime_ns >= summary
    except OSError:
        return True


def _once(rows: list[dict]) -> list[dict]:
    """Each config once: runs of a sweep whose entries differed only in fields their config
    left unused (launched before such entries were refused) trained one config twice, and are
    one run's seeds counted twice once those fields are no parameters (a review). The first
    is kept and the others said."""
    seen: dict[str, str] = {}
    kept, again = [], []
    for r in rows:
        key = learned_key(r["config"], reruns.NOT_REPORTED)  # (its unused fields left out)
        if r["config"] and key in seen:
            again.append(f"{r['name']} (as {seen[key]})")
            continue
        seen.setdefault(key, r["name"])
        kept.append(r)
    if again:
        logging.warning(
            "%d finished run(s) trained the same config as another, their entries differing "
            "only in fields the config leaves unused, and are counted once: %s",
            len(again),
            ", ".join(again[:5]) + (", ..." if len(again) > 5 else ""),
        )
    return kept


def _rows(workdir: str, entries: list[dict]) -> tuple[list[dict], list, list[str], list[str]]:
    """The finished runs' rows (see `collect`), those that failed, the finished runs lacking
    eval.json, and those whose eval.json evaluated an earlier epoch than their summary's (left
    out: one row would mix two epochs)."""
    rows, failed, lacking, stale, odd = [], [], [], [], []
    defaults = config_lib.flatten_config(config_lib.default_config().to_dict())
    for e in entries:
        run_dir = os.path.join(workdir, e["workdir"])
        summary = workdir_lib.finished_summary(run_dir)
        # A launch removes a run's failed.json when it tries the run again; one that records
        # the summary beside it (`status.mark_failed`) is of a later try than that summary (an
        # extension that failed), as sweep.json says: the run was reported as finished at its
        # old end, a setting of its own (a probe). (A summary written since, or one it does not
        # record: the run failed, then was finished alone, not by the sweep.)
        why = os.path.join(run_dir, workdir_lib.FAILED)
        if os.path.exists(why):
            try:
                record = workdir_lib.read_json(why, "", "")
            except UserError:
                record = {"error": f"{why} cannot be read"}
            same = json.dumps(record.get("beside_summary"), sort_keys=True)  # (NaN, too)
            if (
                summary is None
                or same == json.dumps(summary, sort_keys=True)
                or "beside_summary" not in record
                and _newer(why, run_dir)  # an older version's
            ):
                said = str(record.get("error", "")).split("\n")[0]
                if summary is not None:
                    said = f"{said} (its end at epoch {summary.get('epoch')}: in its directory)"
                failed.append((e["name"], said))
                continue
        if summary is None:
            continue
        values, absent, software, notes = {}, set(), [], {}
        evaluated = False  # its eval.json read (none, or of an earlier epoch: left out)
        for name in (workdir_lib.SUMMARY, workdir_lib.EVAL):
            if os.path.exists(os.path.join(run_dir, name)):
                loaded = workdir_lib.read_json(
                    os.path.join(run_dir, name),
                    f"the run's {name}",
                    f"delete it; `ae-jax evaluate --workdir={run_dir}` writes eval.json anew"
                    if name == workdir_lib.EVAL
                    else "delete it; the sweep command then finishes the run again",
                )
                if name == workdir_lib.EVAL:  # strict JSON: a number that was not finite is null
                    # (a diverged run's eval.json evaluates the checkpoint after its last
                    # epoch; an older version's own evaluation could be of the best one)
                    end, latest = summary.get("epoch"), loaded.get("which", "latest") == "latest"
                    if summary["status"] == "done" and latest and loaded.get("epoch", end) != end:
                        stale.append(run_dir)
                        continue
                    absent = {k for k, why in EXPLAINED_NULLS.items() if why in loaded}
                    absent &= {k for k, v in loaded.items() if v is None}
                    loaded = {k: math.nan if v is None else v for k, v in loaded.items()}
                    loaded = {k: v for k, v in loaded.items() if k not in absent}
                    notes = {k: loaded[k] for k in BOUND_NOTES if isinstance(loaded.get(k), str)}
                    evaluated = True
                values.update({k: v for k, v in loaded.items() if is_number(v)})
                odd += [(run_dir, name, k, v) for k, v in loaded.items() if isinstance(v, str)]
                software.append(loaded.get("software"))  # what computed them (None: unsaid)
                software += loaded.get("earlier_software") or []  # ... and earlier epochs
        config = workdir_lib.saved_config(run_dir) or {}
        unused = unused_in(config, defaults)
        config = {k: v for k, v in config.items() if k not in unused}  # (`_unused`)
        rows.append(
            {
                "index": e["index"],
                "name": e["name"],
                "overrides": {k: v for k, v in e["overrides"].items() if k not in unused},
                "listed": e["overrides"],  # as sweep.json lists it (`overrides` is rewritten)
                "status": summary["status"],
                "values": values,
                "absent": absent,  # metrics without a value on purpose (EXPLAINED_NULLS)
                "evaluated": evaluated,
                "notes": notes,  # eval.json's BOUND_NOTES
                "software": software,  # of summary.json, then of eval.json
                "l1_weight": config.get("loss.l1_weight", 0.0),
                "config": config,
            }
        )
        if not os.path.exists(os.path.join(run_dir, workdir_lib.EVAL)):
            lacking.append(run_dir)
    # Text where the other runs have a number: an edited or damaged file (a probe's "0.5"
    # was left out of its mean, unsaid).
    numbers = {k for r in rows for k in r["values"]}
    for run_dir, name, k, v in (o for o in odd if o[2] in numbers):
        logging.warning(
            "report: %s holds %r = %s, text where the other runs have a number: left out of "
            "the report; restore the file, or delete it (the sweep command, or `ae-jax evaluate "
            "--workdir=%s` for eval.json, writes it anew)",
            os.path.join(run_dir, name),
            k,
            quoted(v),
            run_dir,
        )
    return rows, failed, lacking, stale


def _unlisted(workdir: str, entries: list[dict]) -> list[str]:
    """The run directories under DIR/runs/ that sweep.json does not list (runs of entries
    since changed or removed from the sweep), warned of: the report leaves them out, and says
    so. Other folders there are no runs (a report on DIR/runs as a folder of runs wrote
    figures/ there)."""
    runs = os.path.join(workdir, "runs")
    listed = {os.path.normpath(e["workdir"]) for e in entries}
    run_files = (workdir_lib.CONFIG, workdir_lib.SUMMARY, workdir_lib.LOCK, workdir_lib.METRICS)
    is_run = lambda d: any(os.path.exists(os.path.join(d, f)) for f in run_files)  # noqa: E731
    others = sorted(
        (
            d
            for d in (os.listdir(runs) if os.path.isdir(runs) else [])
            if os.path.normpath(os.path.join("runs", d)) not in listed
            and os.path.isdir(os.path.join(runs, d))
            and is_run(os.path.join(runs, d))
        ),
        key=workdir_lib.natural_key,  # seed=2 before seed=10, as the report's rows
    )
    if others:
        logging.warning(
            "%d run director%s in %s %s not in the sweep's list (sweep.json; entries since "
            "changed or removed?) and %s left out: %s",
            len(others),
            "y" if len(others) == 1 else "ies",
            runs,
            "is" if len(others) == 1 else "are",
            "is" if len(others) == 1 else "are",
            ", ".join(others[:10]) + (", ..." if len(others) > 10 else ""),
        )
    return others
