"""Which files in the report's folder are the report's own: it replaces and removes only those.

`ae-jax report` runs on a sweep's directory or on any folder of runs, where a results.csv,
report.md or figures/metrics_vs_*.png of the user's own may lie. DIR/report_files.json lists
every file the report wrote there; a file of one of the report's names that it does not list
is someone else's: the report refuses to replace it, before writing anything, and never
removes it. A folder that a version without the list reported on: in a sweep's directory
(sweep.json) the report's names are the report's files, as they always were; elsewhere the
report knows its report.md by its title (and the figures that report.md shows) and its tables
by their columns.
"""

import contextlib
import csv
import os
import re
import time

from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError

MANIFEST = workdir_lib.REPORT_FILES
TABLES = ("runs.csv", "results.csv", "timing.csv", "report.md")
FIGURES = "figures/metrics_vs_"  # + <param>.png, relative to the report's folder
TITLE = "# Sweep report: "  # report.md's first line


def writing(workdir: str):
    """A `with` block in which no other report of `workdir` runs (the folder itself locked,
    nothing written); none for a folder that does not exist, which the report refuses."""
    return workdir_lib.waiting(workdir) if os.path.isdir(workdir) else contextlib.nullcontext()


def chosen_metrics(workdir: str) -> list[str] | None:
    """The metrics the sweep's config file chose (DIR/report_metrics.json), if any."""
    path = os.path.join(workdir, workdir_lib.REPORT_METRICS)
    if not os.path.exists(path):
        return None
    return list(
        workdir_lib.read_json(
            path, "the report's metrics", "delete it to report the default metrics"
        )["metrics"]
    )


def owned(workdir: str) -> set[str]:
    """The files (relative to `workdir`, "/"-separated) the report may replace or remove."""
    path = os.path.join(workdir, MANIFEST)
    if os.path.exists(path):
        fix = "delete it: the report then knows its own files by their contents"
        files = workdir_lib.read_json(path, "the report's list of its files", fix).get("files")
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UserError(f"{path} is damaged (no list of 'files'); {fix}")
        return set(files)
    present = [f for f in (*TABLES, *_figures(workdir)) if os.path.isfile(_at(workdir, f))]
    if os.path.exists(os.path.join(workdir, workdir_lib.SWEEP)):
        return set(present)  # a sweep's directory: only its report writes these names
    return {f for f in present if _recognised(workdir, f)} | _shown_figures(workdir)


def entries(workdir: str) -> frozenset[str]:
    """The entries of `workdir` that are the report's alone: its list, the files it owns and a
    folder all of whose files it owns. A sweep's directory whose sweep.json was lost after a
    report was refused by the sweep as a folder of other files, whose rerun the report's
    refusal advises (a probe)."""
    with contextlib.suppress(OSError, UserError):
        own = owned(workdir)
        tops = {f.split("/")[0] for f in own}
        whole = lambda t: all(f"{t}/{n}" in own for n in os.listdir(_at(workdir, t)))  # noqa: E731
        mine = {t for t in tops if t in own or os.path.isdir(_at(workdir, t)) and whole(t)}
        return frozenset(mine | ({MANIFEST} if os.path.exists(_at(workdir, MANIFEST)) else set()))
    return frozenset()


def refuse_foreign(workdir: str, names: list[str], own: set[str]) -> None:
    """Refuses, before anything is written, to replace a file the report did not write."""
    foreign = [f for f in names if f not in own and os.path.lexists(_at(workdir, f))]
    if not foreign:
        return
    one = len(foreign) == 1
    raise UserError(
        f"{workdir!r} already holds {', '.join(foreign)}, which `ae-jax report` did not write "
        f"({'it is' if one else 'they are'} not in {MANIFEST}, the report's list of its own "
        f"files), and the report would replace {'it' if one else 'them'}. Move or rename "
        f"{'it' if one else 'them'} and run the report again, or report on a folder holding "
        "only the runs; nothing was written."
    )


def record(workdir: str, files) -> None:
    """Writes DIR/report_files.json: the files the report wrote (or is about to write)."""
    workdir_lib.write_json(
        os.path.join(workdir, MANIFEST),
        {"about": "files written by `ae-jax report`, which it replaces", "files": sorted(files)},
    )


def remove_stale(workdir: str, own: set[str], written: list[str]) -> None:
    """Removes the report's own figures that this report did not draw again (of a parameter no
    longer swept); a figure the report did not write stays."""
    for f in sorted(own - set(written)):
        if f.startswith(FIGURES) and os.path.isfile(_at(workdir, f)):
            os.remove(_at(workdir, f))


STALE_SECONDS = 600  # a temporary file this old is no report's at work (a figure takes ms)


def remove_temporaries(workdir: str, names) -> None:
    """Removes what a report killed while writing left of its files (`files.write_atomic`'s
    `.NAME.RANDOM.tmp` beside them, which no later report replaced), once older than
    STALE_SECONDS: a report running beside this one may be writing its own now."""
    for name in names:
        folder, base = os.path.split(_at(workdir, name))
        pattern = re.compile(re.escape(f".{base}.") + r"[^/]*\.tmp")
        for n in os.listdir(folder) if os.path.isdir(folder) else []:
            path = os.path.join(folder, n)
            if pattern.fullmatch(n) and time.time() - os.path.getmtime(path) > STALE_SECONDS:
                os.remove(path)


def _at(workdir: str, name: str) -> str:
    return os.path.join(workdir, *name.split("/"))


def _figures(workdir: str) -> list[str]:
    folder, prefix = os.path.split(_at(workdir, FIGURES))
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return [f"{FIGURES}{n[len(prefix) :]}" for n in names if n.startswith(prefix)]


def _recognised(workdir: str, name: str) -> bool:
    """An earlier version's table: report.md by its title, runs.csv by its first columns, and
    results.csv and timing.csv by theirs (a setting's columns, seeds, then statistics)."""
    try:
        with open(_at(workdir, name), encoding="utf-8", newline="") as f:
            if name == "report.md":
                return f.readline().startswith(TITLE)
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    if name == "runs.csv":
        return header[:3] == ["index", "name", "status"]
    after = header[header.index("seeds") + 1 :] if "seeds" in header else []
    stats = [h for h in after if h != "diverged"]
    return bool(stats) and all(h.rsplit(" ", 1)[-1] in ("mean", "std", "n") for h in stats)


def _shown_figures(workdir: str) -> set[str]:
    """The figures an earlier version's own report.md shows (its figure links)."""
    if not _recognised(workdir, "report.md"):
        return set()
    with open(_at(workdir, "report.md"), encoding="utf-8") as f:
        return set(re.findall(rf"\]\(({re.escape(FIGURES)}[^)/]*\.png)\)", f.read()))
