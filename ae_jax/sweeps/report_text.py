"""A sweep report's prose: report.md's beside its table (`report.write_report`): which evaluation
its numbers are, the runs' own notes on what their VAE bounds are, and what software computed
them; and its figures' titles (`report_figures`): the seeds behind each point, and why some
are fewer."""

import json
import math

import numpy as np
from absl import logging

from ae_jax import runtime

# What a report (its figures and report.md) says of settings of one seed each.
ONE_SEED = "one seed per setting (no standard deviation)"


def seeds_said(n: list[int]) -> str:
    """The seeds behind a report's points, n the sorted counts: 'n = 3 seeds', 'n = 2 or 3
    seeds', 'n = 1 to 5 seeds' ('n = 1/3' read as a third of a seed)."""
    text = (
        f"{n[0]}" if len(n) == 1 else f"{n[0]} or {n[1]}" if len(n) == 2 else f"{n[0]} to {n[-1]}"
    )
    return f"n = {text} seeds"


def has_vae(rows: list[dict]) -> bool:
    """Whether any of the runs (`finished.collect`'s rows) is a VAE."""
    return any(r.get("config", {}).get("model.name") == "vae" for r in rows)


def evaluation_lines(rows: list[dict], shown: list[str]) -> list[str]:
    """report.md's lines saying which evaluation its numbers are (each run's own eval.json:
    `ae-jax evaluate --which=best` and the like write elsewhere; `eval/*` are not eval.json's
    but training's last validation pass) and repeating the runs' eval.json notes on what their
    VAE bounds are (`finished.BOUND_NOTES`)."""
    lines = []
    if any(r.get("evaluated", True) for r in rows):
        lines += [
            "",
            "The evaluation numbers are each run's own eval.json: its parameters at its last "
            "epoch (a diverged run's, from before its non-finite step), on its validation rows; "
            "the evaluations `ae-jax evaluate` wrote since (`--which=best`, `--data`) are in "
            "each run's evaluations/ folder, not here.",
        ]
    if own := [m for m in shown if m.startswith(("eval/", "train/"))]:
        vae = has_vae(rows)
        lines += [
            "",
            f"{', '.join(own)} {'is' if len(own) == 1 else 'are'} not from eval.json but "
            "training's own, of its last epoch (summary.json, as metrics.jsonl logs them; a run "
            "without eval.json has them too), `eval/` on the validation rows"
            + (
                ", a VAE's from one posterior draw per row of training's, so its eval/recon + "
                "eval/kl is not eval.json's ELBO-form bound (`vae/elbo`, or its form under the "
                "run's likelihood), drawn anew (`eval.iw_samples` draws per row, one under "
                "squared error)."
                if vae
                else "."
            ),
        ]
    if not any(m.startswith("vae/") for m in shown):
        return lines
    said: dict[tuple[str, str], int] = {}
    for r in rows:
        for key, text in r.get("notes", {}).items():
            said[key, text] = said.get((key, text), 0) + 1
    if said:
        lines += ["", "What the VAE bounds are, as the runs' eval.json says:", ""]
        lines += [f"- {key} ({n} of {len(rows)} runs): {text}" for (key, text), n in said.items()]
    return lines


def software_lines(rows: list[dict]) -> list[str]:
    """report.md's lines naming what computed the runs' numbers (their summary.json's and
    eval.json's `software`, and their earlier epochs'), each run by the set it saw; runs of
    different sets are named, with a warning. (Counted once under each software it saw, every
    run of a sweep extended under a new version was said twice, and the runs said to compare
    unfairly: a probe. No order is said: a checkpoint's earlier software is listed newest
    first, a stop inside an epoch's after it.)"""
    kinds: dict[frozenset[str], list[str]] = {}  # a run's set -> its software, first seen first
    counts: dict[frozenset[str], int] = {}
    for r in rows:
        said = list(dict.fromkeys(software_text(s) for s in r["software"]))
        kinds.setdefault(frozenset(said), said)
        counts[frozenset(said)] = counts.get(frozenset(said), 0) + 1
    if len(kinds) <= 1:
        parts = next(iter(kinds.values()), [])
        if len(parts) <= 1:
            return [f"Computed by {s}." for s in parts]
        return [
            "Every run was computed in parts by the same software (epochs before an "
            "extension or a resumption, or an evaluation, under another version); a rerun "
            "from scratch under one of them may give other numbers:",
            "",
            *[f"- {s}" for s in parts],
        ]
    listed = "; ".join(f"{counts[k]} run(s) by {' and '.join(v)}" for k, v in kinds.items())
    logging.warning("the report's runs were computed by different software: %s", listed)
    return [
        "The runs were computed by different software, so their numbers may differ by more "
        "than their seeds make them:",
        "",
        *[f"- {counts[k]} run(s): {'; and '.join(v)}" for k, v in kinds.items()],
    ]


def software_text(software) -> str:
    if not isinstance(software, dict):
        return "software not recorded (written by an ae_jax before runs recorded it)"
    flags = software.get("xla_flags")
    return runtime.describe(software) + (f", XLA_FLAGS={flags!r}" if flags else "")


def failed_lines(failed: list[tuple[str, str]], shown: int = 10) -> list[str]:
    """report.md's list of the runs that failed, each with its error's first line (they were
    counted, "8 failed", but never named: a setting whose every seed failed vanished)."""
    if not failed:
        return []
    more = [f"- and {len(failed) - shown} more (their failed.json)"] if len(failed) > shown else []
    return [
        "Runs that failed (in no row; `ae-jax sweep` retries them):",
        "",
        *[f"- {name}: {why}" for name, why in failed[:shown]],
        *more,
        "",
    ]


def unlisted_lines(names: list[str], shown: int = 10) -> list[str]:
    """report.md's note of the run directories sweep.json does not list, left out (they were
    said in the log alone: a report's "6 finished runs" hid 4 more trained ones, a probe)."""
    if not names:
        return []
    more = f", and {len(names) - shown} more" if len(names) > shown else ""
    return [
        f"Left out: {len(names)} run director{'y' if len(names) == 1 else 'ies'} in runs/ that "
        "sweep.json does not list (runs of entries since changed or removed from the sweep): "
        f"{', '.join(names[:shown])}{more}.",
        "",
    ]


def value_text(v) -> str:
    """A swept value as report.md and the figures write it: a tuple as the tuple it is in the
    config, `(16, 8)` (JSON made it a list, and figures said `[16, 8]`); an empty string as
    `''` (data.path's default, the data set data.name names, was an empty cell and a legend's
    "data.path="); a whole float from 1e5 up in scientific form, the shortest that reads back
    as it (1e+08, not 100000000.0, a probe's learning rate; Python's own from 1e16)."""
    if v == "":
        return "''"
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1e5:  # 1e+08: a probe
        return np.format_float_scientific(v, trim="-")
    return str(tuple(v) if isinstance(v, list) else v)


def figure_title(
    p, others, table, metrics, same, empty, cut: bool, top: set[str], absent=()
) -> str:
    """What the figure says above its panels, a line per statement: the seeds behind each
    point, the settings without any value or without a finished run (`absent`), and the
    metrics named instead of drawn, each for what it is true of."""
    n = sorted({row[f"{m} n"] for row in table for m in metrics} - {0})
    says = [  # (no n at all: every run diverged, or NaN throughout; seeds_said([]) raised)
        f"mean ± sample standard deviation over {seeds_said(n)}"
        if n not in ([1], [])
        else ONE_SEED
        if n
        else "no setting has a finite value"
    ]
    cuts = ["at 0 for a metric no run took below it"] * cut + sorted(top)
    says[0] += f" (cut {', '.join(cuts)})" if cuts else ""
    setting = lambda row: ", ".join(f"{q}={value_text(row[q])}" for q in [p, *others])  # noqa: E731
    if at := [f"{setting(r)} ({why})" for r in table if (why := fewer_runs(r, metrics))]:
        says.append(
            f"ringed in black: a mean over fewer runs than its setting has, at "
            f"{'; '.join(at[:3])}{'; ...' if len(at) > 3 else ''}"
        )
    if n not in ([1], []) and (alone := [setting(r) for r in table if one_value(r, metrics)]):
        says.append(  # (a point without an error bar looked like one of no spread)
            f"no error bar (one seed) at {'; '.join(alone[:3])}{'; ...' if len(alone) > 3 else ''}"
        )
    if empty:
        at = [setting(row) for row in empty]
        says.append(
            f"no finite value at {'; '.join(at[:3])}{'; ...' if len(at) > 3 else ''} "
            "(every run diverged, or none has these metrics)"
        )
    if absent:
        more = "; ..." if len(absent) > 3 else ""
        says.append(f"no finished run, no point, at {'; '.join(absent[:3])}{more}")
    # A setting with values of other metrics but none of a panel's: no point there, said (the
    # panel's axis spans every setting; a probe's ae_over_pca panel shrank to the other one).
    # A metric's settings together, the reason left to report.md's cell (not always "no
    # finite value": a VAE's metric at the AEs of a seed study is none of theirs).
    holes = {m: [setting(r) for r in table if r not in empty and not r[f"{m} n"]] for m in metrics}
    if at := [f"{m} at {'; '.join(h[:3])}{'; ...' * (len(h) > 3)}" for m, h in holes.items() if h]:
        says.append(
            f"no point of {' | '.join(at[:3])}{' | ...' * (len(at) > 3)} (report.md says why)"
        )
    for key, what in (
        ("all", "not drawn, the same for every setting"),
        ("valued", "not drawn, the same for every setting that has a value"),
        ("none", "not drawn, no finite value in any setting"),
    ):
        if same[key]:
            says.append(f"{what}: {', '.join(same[key])}")
    return "\n".join(says)


def fewer_than_setting(row: dict, m: str) -> bool:
    """Whether metric m's mean at `row`'s setting is over fewer of its runs than it has, or
    than the sweep lists for it (`listed`: some failed or unfinished): a figure rings it."""
    return 0 < row[f"{m} n"] < max(row.get("seeds", 0), row.get("listed", 0))


def one_value(row: dict, metrics: list[str]) -> bool:
    """Whether some of the metrics' means at `row`'s setting are of its one seed (no error bar;
    one left of more is `fewer_than_setting`'s, ringed and said)."""
    return any(row[f"{m} n"] == 1 and not fewer_than_setting(row, m) for m in metrics)


def fewer_runs(row: dict, metrics: list[str]) -> str:
    """Why some of the metrics' means at `row`'s setting are over fewer of its runs than it has
    ('' if none is): "1 of 3 diverged", the runs listed but not finished ("1 of 3 failed or
    unfinished"), and the runs without a finite value of some metrics."""
    if not (ringed := [m for m in metrics if fewer_than_setting(row, m)]):
        return ""
    said = [f"{row['diverged']} of {row['seeds']} diverged"] if row.get("diverged") else []
    if (gone := row.get("listed", 0) - row["seeds"]) > 0:
        said.append(f"{gone} of {row['listed']} failed or unfinished")
    why: dict[str, list[str]] = {}
    for m in ringed:
        counts = [(row.get(f"{m} {k}", 0), k) for k in ("not evaluated", "not finite")]
        counts.append((row.get(f"{m} without value", 0), "without a value"))
        text = ", ".join(f"{n} {k}" for n, k in counts if n)
        if not text and (gap := row["seeds"] - row.get("diverged", 0) - row[f"{m} n"]) > 0:
            text = f"{gap} without a finite value"  # (a run's eval.json lacks it: an older one)
        if text:
            why.setdefault(text, []).append(m)
    return ", ".join(said + [f"{' and '.join(ms)} {text}" for text, ms in why.items()])


def means_said(seeds: list[int], kept: list[int], diverged: bool) -> str:
    """What report.md's means are over: the seeds per setting (`seeds`), or, when runs
    diverged, those that did not (`kept`), which enter the means alone."""
    sd = "mean ± sample standard deviation (ddof 1) over"
    if seeds == [1]:
        over = ONE_SEED
    elif diverged:
        over = f"{sd} the seeds that did not diverge, {seeds_said(kept)} per setting of the "
        over += f"{seeds_said(seeds)[4:]} run"
    else:
        over = f"{sd} {seeds_said(seeds)} per setting"
    diverged_said = (
        "; runs that diverged enter no mean (their numbers are of parameters from before their "
        "non-finite step)"
    )
    return over + diverged_said * diverged


def mean_text(mean: float, sd: float) -> str:
    """A mean beside its sd's 2 figures: 4 significant figures, or down to the sd's second
    figure where that is finer, rounded there ("-24.4612 ± 0.0063", "10.0000 ± 0.0063" of
    9.99996; at 4, "-24.46 ± 0.0063" hid differences of settings at the scale of their
    spread: a probe), at most 7, a float32's (the runs' numbers are)."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0 or sd == 0:
        return sig(mean, 4)
    last = math.floor(math.log10(sd)) - 1  # the place of the sd's second figure
    shown = round(mean, -last)
    digits = math.floor(math.log10(abs(shown))) - last + 1 if shown else 0
    return sig(shown, min(7, digits)) if digits > 4 else sig(mean, 4)


def sig(x: float, digits: int) -> str:
    """x to `digits` significant figures, trailing zeros kept (3.400, not 3.4 over 3.412 in the
    same column: a probe); 0 as 0."""
    return "0" if x == 0 else f"{x:#.{digits}g}".rstrip(".").replace(".e", "e")


def absent_said(unfinished, finished: set[str]) -> list[str]:
    """The listed settings (JSON keys of their shown overrides) no finished run has, with how
    many runs each lists that did not finish (`unfinished`: a Counter of keys), in sweep order,
    as `field=value, ...` (or "the base config") texts."""
    out = []
    for k, n in unfinished.items():
        if n > 0 and k not in finished:
            fields = ", ".join(f"{f}={value_text(v)}" for f, v in json.loads(k).items())
            out.append(f"{fields or 'the base config'} ({n} failed or unfinished)")
    return out


def zipped(params: list[str], table: list[dict]) -> list[list[str]]:
    """Groups of swept parameters that vary together: each value of one goes with one value
    of another, both ways, over the settings (a `product` dict of two fields zips them; a
    random search draws each setting's own values). No setting changes one alone, so a figure
    against one draws the others with it, said, not as series of one point each (the shapes
    of a crossed sweep, drawn so for a zipped one: a probe)."""
    key = lambda row, p: json.dumps(row[p], sort_keys=True, default=str)  # noqa: E731
    groups: list[list[str]] = []
    for p in params:
        if len({key(r, p) for r in table}) < 2:
            continue
        for g in groups:
            pairs = {(key(r, g[0]), key(r, p)) for r in table}
            if len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs}):
                g.append(p)
                break
        else:
            groups.append([p])
    return [g for g in groups if len(g) > 1]


def zipped_said(p: str, partners: list[str], table: list[dict]) -> str:
    """What a figure against `p` and report.md say of the `partners` that vary with it, with
    the first few of their pairs of values."""
    values: dict[str, list[str]] = {}
    for row in table:
        values.setdefault(value_text(row[p]), [value_text(row[q]) for q in partners])
    pairs = [f"{v} with {', '.join(w)}" for v, w in values.items()]
    more = "; ..." if len(pairs) > 3 else ""
    return (
        f"{' and '.join(partners)} {'vary' if len(partners) > 1 else 'varies'} with {p} "
        f"({'; '.join(pairs[:3])}{more}): no setting changes one alone"
    )
