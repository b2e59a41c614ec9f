"""The sweep's list of runs and their statuses: DIR/sweep.json, rebuilt from the run
directories (the source of truth), so any number of processes can share DIR.

A run is `done` or `diverged` once its summary.json is written, `failed` with its
failed.json, `running` while a process holds its workdir lock, else `pending`; a finished run
that the launch's config would extend to more epochs is `pending` again, or `failed` if its
extension failed.
"""

import dataclasses
import json
import os

from absl import logging

from ae_jax import workdir as workdir_lib


@dataclasses.dataclass
class Run:
    index: int
    name: str
    overrides: dict
    workdir: str


def run_status(run: Run, epochs: int | None = None) -> dict:
    """Status of one run from its directory: done/diverged/failed/running/pending; `epochs`:
    the launch's train.epochs for it (a done run with fewer is to be extended: pending)."""
    summary = workdir_lib.finished_summary(run.workdir)
    entry = {
        "index": run.index,
        "name": run.name,
        "overrides": run.overrides,
        "workdir": os.path.relpath(run.workdir, os.path.dirname(os.path.dirname(run.workdir))),
    }
    failed = os.path.join(run.workdir, workdir_lib.FAILED)  # the last try's, removed on a retry
    if summary is not None and summary["status"] == "done" and summary["epoch"] < (epochs or 0):
        # an extension stopped before this run's turn (or another process extends it now), or
        # failed: its summary is the earlier training's
        entry["extends"] = f"from epoch {summary['epoch']} to {epochs}"
        if workdir_lib.holder(run.workdir):
            entry["status"] = "running"
        elif os.path.exists(failed):
            entry.update(status="failed", error=_error(failed))
        else:
            entry["status"] = "pending"
        return entry
    if summary is not None:
        entry["status"] = summary["status"]
        if summary["status"] == "diverged":
            what, kept = workdir_lib.diverged_at(summary.get("diverged_step"))
            entry["error"] = f"{what}; its parameters are {kept}"
        return entry
    if os.path.exists(failed):
        entry.update(status="failed", error=_error(failed))
    elif workdir_lib.holder(run.workdir):  # read through this process's own file if held
        entry["status"] = "running"
    else:
        entry["status"] = "pending"
    return entry


def _error(failed: str) -> str:
    with open(failed) as f:
        return json.load(f)["error"]


def write_status(
    workdir: str, runs: list[Run], epochs: dict | None = None, launched: float = 0.0
) -> dict:
    """Rebuilds DIR/sweep.json from the run directories; returns this launch's part of it.
    `epochs`: train.epochs by run index, as this launch trains them (see `run_status`).

    The list is the newest launch's (`launched`: when this one started): a launch of an
    edited get_sweep() while an older one still ran had its added runs dropped from sweep.json
    (and from reports) when the older one wrote its own list at its end (a probe). Runs of a
    newer list that this launch lacks are read from their directories."""
    path = os.path.join(workdir, workdir_lib.SWEEP)
    os.makedirs(workdir, exist_ok=True)
    # Read and written while no other launch does (shards: one's read of a run's folder
    # before another finished it, written after that one's, would keep it "running").
    with workdir_lib.waiting(os.path.join(workdir, workdir_lib.SWEEP_LOCK)):
        mine = [run_status(r, (epochs or {}).get(r.index)) for r in runs]
        entries, newer = mine, _newer(path, launched)
        if newer is not None:
            launched, own = newer["launched"], {e["name"]: e for e in mine}
            entries = [
                own.get(e["name"])
                or run_status(
                    Run(e["index"], e["name"], e["overrides"], os.path.join(workdir, e["workdir"]))
                )
                for e in newer["runs"]
            ]
        status = {"num_runs": len(entries), "launched": launched, **_counted(entries)}
        workdir_lib.write_json(path, status)
    return {"num_runs": len(mine), "launched": launched, **_counted(mine)}


def _counted(entries: list[dict]) -> dict:
    statuses = ("done", "diverged", "failed", "running", "pending")
    return {
        "counts": {s: sum(e["status"] == s for e in entries) for s in statuses},
        "runs": entries,
    }


def _newer(path: str, launched: float) -> dict | None:
    """sweep.json when a launch that started after `launched` wrote it, else None."""
    try:
        with open(path) as f:
            found = json.load(f)
        later = float(found.get("launched", 0.0)) > launched
        return found if later and all("workdir" in e for e in found["runs"]) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def listed(workdir: str) -> list[str] | None:
    """The names of the runs DIR/sweep.json lists, in order (None: none yet, or unreadable)."""
    try:
        with open(os.path.join(workdir, workdir_lib.SWEEP)) as f:
            return [e["name"] for e in json.load(f)["runs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def unlisted(workdir: str, runs: list[Run]) -> list[str]:
    """The runs DIR/sweep.json lists that `runs` (a launch's list) does not: a launch of
    another list replaces it, and reports then leave those runs out (their directories stay)."""
    names = {r.name for r in runs}
    return [n for n in listed(workdir) or [] if n not in names]


def mark_failed(runs: list[Run], error: str) -> None:
    """Records `error` as each run's failure (its failed.json), said once for them all (80
    runs of a group refused for memory said the same paragraph 80 times)."""
    unrecorded = ""
    for run in runs:
        try:
            os.makedirs(run.workdir, exist_ok=True)
            # The summary it is written beside (an extension's: its old end), or None: a report
            # tells this failure from an earlier one by it (`finished.py`).
            record = {"error": error, "beside_summary": workdir_lib.finished_summary(run.workdir)}
            workdir_lib.write_json(os.path.join(run.workdir, workdir_lib.FAILED), record)
        except OSError as e:  # (a full or read-only disk: the failure is said, not recorded)
            unrecorded = f" (not recorded in {workdir_lib.FAILED}: {e.strerror or e})"
    named = ", ".join(f"{r.index} ({r.name})" for r in runs[:5]) + " ..." * (len(runs) > 5)
    logging.error("run%s %s failed: %s%s", "s" * (len(runs) > 1), named, error, unrecorded)
