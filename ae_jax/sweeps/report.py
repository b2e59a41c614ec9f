"""Aggregate a sweep: one row per setting, mean ± sample sd over seeds, figures per swept parameter.

Reads every finished run under DIR/runs/ (summary.json, and eval.json when present; without
DIR/sweep.json, the runs in DIR's subdirectories, as `ae-jax train` with train.num_models = K
and `ae_jax.train_together` write them, each setting of the fields they differ in) and writes
- DIR/runs.csv: one tidy row per run (its setting as results.csv writes it, its seed, status,
  summary and evaluation numbers: the two files join on the setting's columns);
- DIR/results.csv: one row per setting (the overrides but the seed and `NOT_REPORTED`), each
  metric's mean and sample sd (ddof 1, NaN for one value) over its seeds' finite values and
  their number n; `seeds` counts the setting's finished runs and `diverged` those that
  diverged, whose numbers (of parameters from before their non-finite step) enter no mean;
- DIR/report.md: the same as a markdown table, without columns that mean nothing here, each
  cell saying its n when it differs from the row's, how many values were not finite and how
  many had none on purpose (`finished.EXPLAINED_NULLS`);
- DIR/figures/metrics_vs_<param>.png: each metric against each swept parameter;
- DIR/report_files.json: the files above, the only ones it replaces or removes
  (`report_files`: one of their names that it did not write is refused before any write).
results.csv holds only numbers the config and seed determine, so a resumed sweep's equals an
uninterrupted one's; wall-clock times (all of `TIMING`, whatever the metrics) go to
DIR/timing.csv. The metrics are `--metrics`, else the ones the sweep's config file chose
(`REPORT_METRICS`, saved in DIR/report_metrics.json by the sweep), else `DEFAULT_METRICS`; a
`--metrics` one that no finished run has is named in a warning (the others may be absent).
"""

import collections
import csv
import difflib
import io
import json
import math
import os

import numpy as np
from absl import logging

from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.evaluation import figure_data
from ae_jax.files import write_atomic
from ae_jax.reruns import NOT_REPORTED
from ae_jax.sweeps import finished, report_files, report_text
from ae_jax.sweeps.report_figures import figure_names, most, plot
from ae_jax.sweeps.report_text import mean_text, sig, value_text, zipped

SEED_KEY = "train.seed"
DEFAULT_METRICS = (
    "eval/loss",
    "eval/mse",
    "recon/categorical_accuracy",
    "eval/recon",
    "eval/kl",
    "vae/iwae",
    "vae/active_units",
    "vae/total_correlation",
    "eval/l1",
    "code/near_zero_fraction",
    "code/l1_per_row",
    "pca/mse",
    "ae_over_pca",
    "n_params",
)  # (and every one of TIMING, to timing.csv)
TIMING = ("wall_s", "compile_s", "epoch_s", "rows_per_s")
GROUP_TIMES = ("wall_s", "compile_s")  # a group's, every run of it alike (`aggregate`)
# Metrics about the code's L1 activity: shown only when some run's objective had an L1 term.
L1_METRICS = ("eval/l1", "train/l1", "code/l1_per_row")
KL_METRICS = ("eval/kl", "train/kl")  # a plain autoencoder's: 0 (no column unless a run is a VAE)
LISTED_METRICS = 40  # at most this many of the runs' metrics in the warning about absent ones


def _shown(overrides: dict) -> dict:
    """The overrides a report shows (no seed, no field no reported number depends on, such as
    train.figures: `NOT_REPORTED`): a `named` block appears as its name, under "model"."""
    hidden = {*overrides.get("_named_keys", ()), "_named_keys", SEED_KEY, *NOT_REPORTED}
    shown = {k: v for k, v in overrides.items() if k not in hidden}
    if "_name" in shown:
        shown["model"] = shown.pop("_name")
    return shown


def _effective(run: dict, params: list[str]) -> dict:
    """A run's value of each swept parameter: the value its saved config had (typed by the
    config: an override 0 of a float field is 0.0), else its override (a `named` block), so a
    run that left a field at the base config's value groups with one that set it explicitly."""
    shown, config = _shown(run["overrides"]), run.get("config", {})
    return {p: config[p] if p in config else shown.get(p, "") for p in params}


def _setting_key(values: dict) -> str:
    """A setting (its swept parameters' values) as the key its runs are grouped under."""
    return json.dumps(values, sort_keys=True)


def aggregate(rows: list[dict], metrics: list[str]) -> tuple[list[str], list[dict]]:
    """Groups runs by setting (overrides minus the seed): each metric's mean, sample standard
    deviation (ddof 1; NaN for a single value) and number n of the finite values of the runs
    that did not diverge (of every run for GROUP_TIMES), and how many were not finite."""
    params = sorted({k for r in rows for k in _shown(r["overrides"])})
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(_setting_key(_effective(r, params)), []).append(r)
    table = []
    for runs in groups.values():
        row = _effective(runs[0], params)
        row["seeds"] = len(runs)
        row["diverged"] = sum(r["status"] == "diverged" for r in runs)
        kept = [r for r in runs if r["status"] != "diverged"]
        for m in metrics:
            # A diverged run trained in the others' program: its group's times count. Its
            # epoch_s, rows_per_s are of an earlier epoch than theirs (a first epoch's, with
            # the program's first run, took 35x a later one's: a probe): no mean, as metrics.
            pool = runs if m in GROUP_TIMES else kept
            have = [r["values"][m] for r in pool if m in r["values"]]
            vals = [v for v in have if math.isfinite(v)]
            row[f"{m} mean"] = float(np.mean(vals)) if vals else float("nan")
            # Equal values have sd 0, not the float residue of their mean (8.5e-18).
            sd = float(np.std(vals, ddof=1)) if len(set(vals)) > 1 else 0.0
            row[f"{m} std"] = sd if len(vals) > 1 else float("nan")
            row[f"{m} n"] = len(vals)
            row[f"{m} not finite"] = len(have) - len(vals)
            row[f"{m} without value"] = sum(m in r["absent"] for r in pool)
            row[f"{m} not evaluated"] = sum(  # no eval.json (a run not evaluated at its end)
                not r.get("evaluated", True) and m not in r["values"] and m not in r["absent"]
                for r in pool
            )
            row[f"{m} min"] = min(vals) if vals else float("nan")  # for figures, not tables
            row[f"{m} most"] = min(most(m, r.get("config", {})) for r in runs)  # (figures too)
        table.append(row)
    return params, table


def write_report(workdir: str, metrics: list[str] | None = None) -> dict:
    """Writes runs.csv, results.csv, report.md and figures; returns {"rows", "params", ...}.
    One report of a folder at a time, another waiting: two at once mixed their tables, and
    the later one's list of its files lacked the other's figure, which every report after
    then refused to replace as the user's (a probe)."""
    workdir = workdir_lib.as_path(workdir)  # (before the lock: '~/s' locked nothing)
    if metrics is not None and (
        not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str) for m in metrics)
    ):  # (a str was read letter by letter: metrics 'e', 'v', 'a', ...)
        raise UserError(
            f"metrics: expected a list of metric names, such as ['eval/mse']; got {metrics!r}."
        )
    with report_files.writing(workdir):
        return _write_report(workdir, metrics)


def _write_report(workdir: str, metrics: list[str] | None) -> dict:
    if metrics and not all(m.strip() for m in metrics):  # (`--metrics=,,`: two messages of '')
        raise UserError(
            f"--metrics={','.join(metrics)!r} names an empty metric; expected metric names "
            "separated by commas, such as eval/mse,code/near_zero_fraction (nothing was written)."
        )
    workdir = workdir_lib.as_path(workdir)
    sweep_dir, folder = os.path.split(os.path.realpath(workdir))
    if folder == "runs" and workdir_lib.kind_of(sweep_dir) == "sweep":  # its report goes there
        raise UserError(
            f"{workdir!r} is the runs/ folder of the sweep {sweep_dir!r}; its report goes in "
            f"the sweep's own directory: ae-jax report --workdir={sweep_dir} (nothing was "
            "written)."
        )
    rows, entries, failed, unlisted = finished.collect(workdir)
    listed = len(entries)
    if not rows:
        raise UserError(
            f"{workdir!r}: no finished run yet (see sweep.json, or the runs' own directories); "
            "nothing to report."
        )
    present = {k for r in rows for k in [*r["values"], *r["absent"]]}  # absent: without a value
    if metrics:
        metrics = list(dict.fromkeys(metrics))  # a metric asked twice is one column
        _warn_absent([m for m in metrics if not _renamed(m, present)], present)  # (bounds: below)
        if timed := [m for m in metrics if m in TIMING]:  # (some among others: dropped unsaid)
            logging.warning("%s: wall-clock times go to timing.csv only, not report.md", timed)
        if len(timed) == len(metrics):  # a report of no metric (every one goes to timing.csv)
            raise UserError(
                f"--metrics={','.join(metrics)}: wall-clock times go to timing.csv, which every "
                f"report writes, not report.md; expected some of {_reportable(present)} "
                "(nothing was written)."
            )
    chosen = metrics or report_files.chosen_metrics(workdir) or list(DEFAULT_METRICS)
    if not metrics and not any(m in present for m in chosen):  # the config's: none there
        logging.warning(
            "no finished run has the config's REPORT_METRICS %s: reporting the defaults", chosen
        )
        chosen = list(DEFAULT_METRICS)
    asked = list(chosen) != list(DEFAULT_METRICS)  # --metrics or the config's REPORT_METRICS
    # A VAE's bounds also under the names they have here (vae/iwae: vae/bce_iwae_bound), asked
    # for by --metrics, the config's or the defaults.
    chosen = _bounds_named(chosen, present)
    metrics = [m for m in chosen if m in present]
    if not metrics:  # refused before any file is rewritten
        raise UserError(
            f"{workdir!r}: no finished run has any of the metrics {list(chosen)} as a number "
            "(misspelt, or a per-feature table or a label); expected "
            f"some of {_reportable(present)} (nothing was written)."
        )
    # Every wall time goes to timing.csv, whatever the metrics chosen.
    metrics += [m for m in TIMING if m in present and m not in metrics]
    workdir_lib.writable(workdir, "sweep directory (where the report goes)", create=False)
    params, table = aggregate(rows, metrics)
    shown = _meaningful(metrics, rows, asked)
    names = [*report_files.TABLES, *figure_names(params, table, shown)]
    own = report_files.owned(workdir)
    report_files.refuse_foreign(workdir, names, own)  # before anything is written
    report_files.record(workdir, own | set(names))  # a report killed midway: still its own
    _write_runs(workdir, rows, params)
    for name, keep in (
        ("results.csv", lambda m: m not in TIMING),
        ("timing.csv", lambda m: m in TIMING),
    ):
        header = [*params, "seeds", "diverged"] + [
            f"{m} {s}" for m in metrics if keep(m) for s in ("mean", "std", "n")
        ]
        w = csv.DictWriter(text := io.StringIO(), fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(table)
        write_atomic(os.path.join(workdir, name), lambda f, t=text: f.write(t.getvalue()))
    diverged = any(row["diverged"] for row in table)
    head = [*params, "seeds", *(["diverged"] if diverged else []), *shown]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    planned, absent = _listed_per_setting(rows, entries, params)
    for row in table:
        of = row["listed"] = planned.get(_setting_key({p: row[p] for p in params}), 0)
        cells = [value_text(row[p]) for p in params]
        cells += [f"{row['seeds']} of {of}" if of > row["seeds"] else str(row["seeds"])]
        cells += [str(row["diverged"])] if diverged else []
        cells += [_cell(row, m) for m in shown]
        lines.append("| " + " | ".join(cells) + " |")
    kinds = {r["config"].get("loss.recon") for r in rows}  # one likelihood: its unit named
    recon = figure_data.RECON_UNITS.get(kinds.pop(), "") if len(kinds) == 1 else ""
    ks = sorted({int(r["values"]["vae/iwae_k"]) for r in rows if "vae/iwae_k" in r["values"]})
    iw_k = f"k = {ks[0]}" if len(ks) == 1 else f"k = {ks[0]} to {ks[-1]}" if ks else ""
    iw_k = iw_k if any(m.endswith("iwae") or m.endswith("iwae_bound") for m in shown) else ""
    together = zipped(params, table)  # fields that vary together (`report_text.zipped`)
    figures = plot(workdir, params, table, shown, recon, iw_k, absent, together)
    seeds = sorted({row["seeds"] for row in table})
    kept = sorted({row["seeds"] - row["diverged"] for row in table})  # a mean's most seeds
    unfinished = sum("config" in e for e in entries) - len(failed)  # pending, running, killed
    missing = [
        f"{n} {why}" for n, why in ((len(failed), "failed"), (unfinished, "unfinished")) if n
    ]  # (a folder of runs has no sweep.json: "the sweep lists" named a sweep there is not)
    listing = os.path.exists(os.path.join(workdir, workdir_lib.SWEEP))  # as `finished.collect`
    lists = "the sweep lists" if listing else "found"
    md = [
        f"# Sweep report: {os.path.abspath(workdir)}",
        "",
        f"{len(rows)} finished runs"
        + (f" of the {listed} {lists} ({', '.join(missing)})" if missing else "")
        + f", {len(table)} setting{'s' * (len(table) != 1)}; "
        + report_text.means_said(seeds, kept, diverged)
        + (f"; the importance-weighted bounds with {iw_k} posterior draws" if iw_k else "")
        + ". A cell says its n when fewer seeds gave a finite value, and why the others "
        "gave none: not finite, or without a value (eval.json's null where the number does "
        "not apply, as ae_over_pca when PCA is exact).",
        *report_text.evaluation_lines(rows, shown),
        "",
        *report_text.software_lines(rows),
        "",
        *report_text.failed_lines(failed),
        *([f"No finished run, so no row or point: {'; '.join(absent)}.", ""] if absent else []),
        *[f"{report_text.zipped_said(g[0], g[1:], table)}.\n" for g in together],
        *report_text.unlisted_lines(unlisted),
        *lines,
        "",
        *[f"![{os.path.basename(p)}](figures/{os.path.basename(p)})" for p in figures],
    ]
    write_atomic(os.path.join(workdir, "report.md"), lambda f: f.write("\n".join(md) + "\n"))
    report_files.remove_stale(workdir, own, names)  # an earlier report's figures no longer drawn
    report_files.remove_temporaries(workdir, own | set(names))
    report_files.record(workdir, names)
    return {"params": params, "rows": table, "figures": figures, "metrics": shown}


def _listed_per_setting(
    rows: list[dict], listed: list[dict], params: list[str]
) -> tuple[dict, list[str]]:
    """Per setting (`aggregate`'s key), how many runs the sweep lists for it ("4 of 5" in its
    row): its finished runs and its unfinished ones, by the config each trains (`finished.
    _listed`; none saved: as the finished runs listed alike, a key of two settings in both).
    And the listed settings no finished run has, said (`report_text.absent_said`): no row."""
    key = lambda overrides: json.dumps(_shown(overrides), sort_keys=True, default=str)  # noqa: E731
    counts = collections.Counter(_setting_key(_effective(r, params)) for r in rows)
    alike: dict[str, set] = {}
    for r in rows:
        alike.setdefault(key(r["listed"]), set()).add(_setting_key(_effective(r, params)))
    done, unplaced = set(counts), collections.Counter[str]()
    for run in (x for x in listed if "config" in x):  # (not finished)
        known = {_setting_key(_effective(run, params))} if run["config"] else None
        settings = (alike.get(key(run["listed"]), set()) if known is None else known) & done
        counts.update(settings)
        unplaced[key(run["listed"])] += not settings
    return counts, report_text.absent_said(unplaced, set())


def _renamed(metric: str, present: set[str]) -> list[str]:
    """The runs' names of a log-likelihood bound where it is no such bound (`bounds.py`):
    vae/iwae -> vae/bce_iwae_bound, vae/mse_iwae_bound; vae/elbo -> vae/bce_bound, ..."""
    named = sorted(m for m in present if m.startswith("vae/") and m.endswith("_bound"))
    if metric not in ("vae/iwae", "vae/elbo"):
        return []
    return [b for b in named if b.endswith("iwae_bound") == (metric == "vae/iwae")]


def _bounds_named(chosen: list[str], present: set[str]) -> list[str]:
    """`chosen` with each log-likelihood bound followed by the runs' names of it (`_renamed`)."""
    return list(dict.fromkeys(b for m in chosen for b in [m, *_renamed(m, present)]))


def _showable(present: set[str]) -> list[str]:
    """The metrics of `present` report.md can show, sorted."""
    return sorted(m for m in present if m not in (*TIMING, "epoch", "step"))


def _reportable(present: set[str]) -> str:
    """`_showable(present)`, the first LISTED_METRICS of them, as text."""
    have = _showable(present)
    return f"{have[:LISTED_METRICS]}{', ...' if len(have) > LISTED_METRICS else ''}"


def _warn_absent(asked: list[str], present: set[str]) -> None:
    """Warns of the asked-for (--metrics) metrics that no finished run has, listing the runs'
    numeric metrics; the report leaves them out."""
    absent = [m for m in dict.fromkeys(asked) if m not in present]
    if not absent:
        return
    have = _showable(present)
    hints = []
    for m in absent:  # vae/iwae -> vae/bce_iwae_bound: the ones holding its last part; else
        # the nearest spellings (eval/mes -> eval/mse)
        close = [p for p in have if m.rsplit("/", 1)[-1] in p][:3]
        close = close or difflib.get_close_matches(m, have, 3, 0.75)
        hints.append(f"{m} (perhaps {', '.join(close)})" if close else m)
    logging.warning(
        "--metrics asks for %s, which no finished run has as a number (misspelt, or a "
        "per-feature table or a label), so the report leaves %s out; expected metrics the "
        "runs have: %s.",
        ", ".join(hints),
        "it" if len(absent) == 1 else "them",
        ", ".join(have[:LISTED_METRICS]) + (", ..." if len(have) > LISTED_METRICS else ""),
    )


def _cell(row: dict, m: str) -> str:
    """A metric's report.md cell: mean ± sd, the n behind it when fewer seeds than the row's
    gave a finite value, how many values were not finite, how many had none on purpose and
    how many runs have no evaluation (eval.json)."""
    n, bad, absent = row[f"{m} n"], row[f"{m} not finite"], row[f"{m} without value"]
    lacking = row.get(f"{m} not evaluated", 0)
    text = "–"
    if n:  # a count whole (not 3.425e+04), a huge whole value (3.557e+14) as the others
        mean, sd = row[f"{m} mean"], row[f"{m} std"] if n > 1 else math.nan
        whole = float(mean).is_integer() and abs(mean) < 1e9
        text = f"{int(mean)}" if whole else mean_text(mean, sd)
        text += f" ± {sig(sd, 2)}" if n > 1 else ""
    notes = [f"n = {n}"] if n and n < row["seeds"] else []
    notes += [f"{row['diverged']} diverged"] if not n and row["diverged"] else []
    notes += [f"{bad} not finite"] if bad else []
    notes += [f"{absent} without a value"] if absent else []
    notes += [f"{lacking} not evaluated"] if lacking else []
    # No value and none of the above: no run has the metric (a VAE's, of a plain autoencoder).
    notes += ["not a metric of these runs"] if not (n or notes) else []
    return text + (f" ({', '.join(notes)})" if notes else "")


def _meaningful(metrics: list[str], rows: list[dict], asked: bool = False) -> list[str]:
    """The metrics report.md shows: no wall-clock time (a group's runs share one), no L1
    activity when no run had an L1 term, and (unless `asked` for) no KL when no run is a VAE
    (a plain autoencoder's is 0). A measured 0 everywhere is shown: every VAE's
    `vae/active_units` 0 is the sweep's finding (left out, unsaid, with any metric 0 everywhere
    before)."""
    l1_used = any(r["l1_weight"] for r in rows)
    vae = report_text.has_vae(rows)
    return [
        m
        for m in metrics
        if m not in TIMING
        and (l1_used or m not in L1_METRICS)
        and (asked or vae or m not in KL_METRICS)
    ]


def _write_runs(workdir: str, rows: list[dict], params: list[str]) -> None:
    """DIR/runs.csv: one row per run, its setting (results.csv's columns, written as there, so
    the two files join on them: JSON-quoted text and lists did not) and seed, then its numbers
    (tidy data)."""
    seed = [SEED_KEY] if any(SEED_KEY in r["overrides"] for r in rows) else []
    values = sorted({k for r in rows for k in r["values"]})

    def write(f):
        w = csv.writer(f)
        w.writerow(["index", "name", "status", *params, *seed, *values])
        for r in sorted(rows, key=lambda r: r["index"]):
            cells = [*_effective(r, params).values()]
            cells += [r.get("config", {}).get(SEED_KEY, r["overrides"].get(SEED_KEY, ""))] * len(
                seed
            )
            cells += [r["values"].get(k, "") for k in values]
            w.writerow([r["index"], r["name"], r["status"], *cells])

    write_atomic(os.path.join(workdir, "runs.csv"), write)
