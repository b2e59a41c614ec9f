"""Sweeps: declare runs next to the config, run them grouped, resumable, sharded.

A config file may define `get_sweep()` (or `get_sweep(arg)`) returning a list of
override dicts, built with `product`, `zip_`, `chain` and `random_search`:

    def get_sweep():
        return sweep.product({"loss.l1_weight": [0.0, 1e-4, 1e-3]}, {"train.seed": range(5)})

Run i is addressed by its index in that list and named by its overrides
(`loss.l1_weight=0.0001,train.seed=3`); it writes the usual workdir contract to
`DIR/runs/<name>/`. Runs that differ only in vmappable scalars train together
as one program (`train.train_group`); the rest run one group after another.
`DIR/sweep.json` lists every run with its status, rebuilt from the run
directories (the source of truth), so any number of processes can share DIR.
A run directory is claimed with the workdir lock before training, so two
processes never train the same run; a failed or diverged run is recorded and
the sweep goes on.
"""

import contextlib
import dataclasses
import itertools
import json
import os
import traceback
from collections.abc import Iterable

import numpy as np
from absl import logging

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import multi, procsafe, train
from ae_jax.errors import UserError

# ---- declaring sweeps ----


def product(*axes: dict | list[dict]) -> list[dict]:
    """Cartesian product: product({"a": [1, 2]}, {"b": [3, 4]}) -> 4 overrides.

    Each argument maps keys to value lists (keys in one dict vary together, zipped),
    or is already a list of override dicts (e.g. of `named` model variants).
    """
    parts = [a if isinstance(a, list) else zip_(**a) for a in axes]
    return [dict(itertools.chain.from_iterable(d.items() for d in combo))
            for combo in itertools.product(*parts)]


def zip_(**axes: Iterable) -> list[dict]:
    """Values taken together: zip_(a=[1, 2], b=[3, 4]) -> [{a: 1, b: 3}, {a: 2, b: 4}]."""
    keys = list(axes)
    values = [list(v) for v in axes.values()]
    if len({len(v) for v in values}) > 1:
        raise UserError(f"sweep zip: the lists for {keys} have different lengths "
                        f"{[len(v) for v in values]}; zipped axes must be equally long.")
    return [dict(zip(keys, combo, strict=True)) for combo in zip(*values, strict=True)]


def chain(*sweeps: list[dict]) -> list[dict]:
    """Concatenation of sweeps, in order."""
    return [dict(o) for s in sweeps for o in s]


def random_search(n: int, seed: int, **space) -> list[dict]:
    """n seeded random draws. A value is a list (uniform choice), ("uniform", lo, hi),
    ("log", lo, hi) for log-uniform, or ("int", lo, hi) for integers in [lo, hi]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        draw = {}
        for key, spec in space.items():
            if isinstance(spec, list):
                draw[key] = spec[int(rng.integers(len(spec)))]
            elif spec[0] == "uniform":
                draw[key] = float(rng.uniform(spec[1], spec[2]))
            elif spec[0] == "log":
                draw[key] = float(np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]))))
            elif spec[0] == "int":
                draw[key] = int(rng.integers(spec[1], spec[2] + 1))
            else:
                raise UserError(f"random_search {key}: unknown distribution {spec[0]!r}; "
                                "expected a list, ('uniform', lo, hi), ('log', lo, hi) or "
                                "('int', lo, hi).")
        out.append(draw)
    return out


def named(name: str, overrides: dict) -> dict:
    """Overrides shown under one name in run names and reports (e.g. a whole seed model)."""
    return {"_name": name, "_named_keys": sorted(overrides), **overrides}


def config_diff(base, other) -> dict:
    """The dotted overrides that turn config `base` into `other` (e.g. to sweep seed models)."""
    a, b = train.flatten_config(base.to_dict()), train.flatten_config(other.to_dict())
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in b.items() if a.get(k) != v}


# ---- running sweeps ----


@dataclasses.dataclass
class Run:
    index: int
    name: str
    overrides: dict
    workdir: str


def expand(overrides: list[dict], workdir: str) -> list[Run]:
    """Indexes and names every run; names must be unique (they are directories)."""
    runs = [Run(i, multi.run_name(o), dict(o), os.path.join(workdir, "runs", multi.run_name(o)))
            for i, o in enumerate(overrides)]
    seen = {}
    for r in runs:
        if r.name in seen:
            raise UserError(f"sweep runs {seen[r.name]} and {r.index} have the same overrides "
                            f"({r.name}); every run must differ.")
        seen[r.name] = r.index
    return runs


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n); with no text, $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT or (0, 1)."""
    if not text:
        if "SLURM_ARRAY_TASK_ID" in os.environ and "SLURM_ARRAY_TASK_COUNT" in os.environ:
            text = f"{os.environ['SLURM_ARRAY_TASK_ID']}/{os.environ['SLURM_ARRAY_TASK_COUNT']}"
        else:
            return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise UserError(f"--shard={text!r}: expected 'i/n' with integers, e.g. 0/4.") from None
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"--shard={text!r}: expected 0 <= i < n.")
    return i, n


def run_status(run: Run, mine: frozenset = frozenset()) -> dict:
    """Status of one run from its directory: done/diverged/failed/running/pending."""
    summary = train.finished_summary(run.workdir)
    entry = {"index": run.index, "name": run.name, "overrides": run.overrides,
             "workdir": os.path.relpath(run.workdir, os.path.dirname(os.path.dirname(run.workdir)))}
    if summary is not None:
        entry["status"] = summary["status"]
        if summary["status"] == "diverged":
            entry["error"] = f"non-finite loss at step {summary.get('diverged_step')}"
        return entry
    failed = os.path.join(run.workdir, "failed.json")
    if os.path.exists(failed):
        with open(failed) as f:
            entry.update(status="failed", error=json.load(f)["error"])
    elif run.index in mine or procsafe.holder(run.workdir):
        entry["status"] = "running"
    else:
        entry["status"] = "pending"
    return entry


def write_status(workdir: str, runs: list[Run], mine: frozenset = frozenset()) -> dict:
    """Rebuilds DIR/sweep.json from the run directories; returns it."""
    entries = [run_status(r, mine) for r in runs]
    counts = {s: sum(e["status"] == s for e in entries)
              for s in ("done", "diverged", "failed", "running", "pending")}
    status = {"num_runs": len(runs), "counts": counts, "runs": entries}
    os.makedirs(workdir, exist_ok=True)
    train.write_json(os.path.join(workdir, "sweep.json"), status)
    return status


def _mark_failed(run: Run, error: str) -> None:
    os.makedirs(run.workdir, exist_ok=True)
    train.write_json(os.path.join(run.workdir, "failed.json"), {"error": error})
    logging.error("run %d (%s) failed: %s", run.index, run.name, error)


def plan(base, runs: list[Run], max_models: int = 256) -> tuple[list[list[Run]], dict]:
    """Groups runs by static config into chunks of at most `max_models`.

    Runs whose overrides are invalid are marked failed here and left out. Returns
    (chunks, configs by run index).
    """
    configs = {}
    for run in runs:
        try:
            c = multi.apply_overrides(base, run.overrides)
            config_lib.validate(c)
            configs[run.index] = c
        except UserError as e:
            _mark_failed(run, str(e))
    groups: dict[str, list[Run]] = {}
    for run in runs:
        if run.index in configs:
            key = json.dumps(train.static_signature(configs[run.index]), sort_keys=True)
            groups.setdefault(key, []).append(run)
    chunks = [g[i:i + max_models] for g in groups.values() for i in range(0, len(g), max_models)]
    return chunks, configs


def train_runs(base, runs: list[Run], max_models: int = 256) -> None:
    """Trains `runs` in this process: claims each, groups by static config, trains groups.

    Runs finished or claimed by another process are skipped; a run whose overrides or
    training fail is marked failed (DIR/runs/<name>/failed.json) and the rest go on.
    Groups with equal shapes reuse compiled programs through JAX's compilation cache.
    """
    chunks, configs = plan(base, runs, max_models)
    datasets: dict[str, data_lib.Dataset] = {}
    for chunk in chunks:
        _train_chunk(chunk, configs, datasets)


def _ray_chunk(base, chunk: list[Run]) -> int:
    """A Ray task: trains one chunk in a worker process (shared workdir)."""
    train.quiet_library_logs()
    configs = {r.index: multi.apply_overrides(base, r.overrides) for r in chunk}
    _train_chunk(chunk, configs, {})
    return len(chunk)


def run_sweep(base, overrides: list[dict], workdir: str, shard: tuple[int, int] = (0, 1),
              max_models: int = 256, launcher: str = "local", ray_address: str = "",
              ray_cpus: float = 1.0, ray_gpus: float = 0.0) -> dict:
    """Runs this shard's share of the sweep; returns the rebuilt sweep.json.

    Shard i of n takes the runs whose index is i mod n, so n processes with
    i = 0..n-1 on one shared workdir cover every run exactly once.
    """
    runs = expand(overrides, workdir)
    i, n = shard
    mine = [r for r in runs if r.index % n == i]
    write_status(workdir, runs)
    logging.info("sweep: %d runs, shard %d/%d takes %d", len(runs), i, n, len(mine))
    if launcher == "local":
        train_runs(base, mine, max_models)
    elif launcher == "ray":
        _run_with_ray(base, mine, max_models, ray_address, ray_cpus, ray_gpus, workdir, runs)
    else:
        raise UserError(f"--launcher={launcher!r}; expected 'local' or 'ray'.")
    status = write_status(workdir, runs)
    logging.info("sweep: %s", ", ".join(f"{v} {k}" for k, v in status["counts"].items() if v))
    return status


def _run_with_ray(base, runs, max_models, address, cpus, gpus, workdir, all_runs) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("--launcher=ray needs Ray: pip install -e '.[ray]'.") from None
    chunks, _ = plan(base, runs, max_models)
    ray.init(address=address or None, ignore_reinit_error=True, include_dashboard=False,
             log_to_driver=True)
    task = ray.remote(num_cpus=cpus, num_gpus=gpus)(_ray_chunk)
    pending = [task.remote(base, chunk) for chunk in chunks]
    logging.info("sweep: submitted %d Ray task(s) to %s", len(pending), address or "a local Ray")
    while pending:
        _, pending = ray.wait(pending)
        write_status(workdir, all_runs)


def _train_chunk(chunk: list[Run], configs: dict, datasets: dict) -> None:
    with contextlib.ExitStack() as stack:
        claimed = []
        for run in chunk:
            if train.finished_summary(run.workdir):
                continue
            os.makedirs(run.workdir, exist_ok=True)
            try:
                stack.enter_context(procsafe.WorkdirLock(run.workdir))
            except UserError:
                logging.info("run %d (%s) is being trained by another process; skipped",
                             run.index, run.name)
                continue
            if train.finished_summary(run.workdir):  # finished while we were claiming
                continue
            stale = os.path.join(run.workdir, "failed.json")
            if os.path.exists(stale):
                os.remove(stale)  # retried now
            claimed.append(run)
        if not claimed:
            return
        cfgs = [configs[r.index] for r in claimed]
        key = json.dumps(cfgs[0].data.to_dict(), sort_keys=True)
        try:
            if key not in datasets:
                datasets[key] = data_lib.load_dataset(cfgs[0].data)
            logging.info("training %d run(s) together: %s", len(claimed),
                         ", ".join(r.name for r in claimed[:4]) + (" ..." if len(claimed) > 4
                                                                   else ""))
            train.train_group(cfgs, [r.workdir for r in claimed], dataset=datasets[key])
        except UserError as e:
            for r in claimed:
                _mark_failed(r, str(e))
        except procsafe.Interrupted:
            raise
        except Exception as e:  # noqa: BLE001 - recorded per run; the sweep goes on.
            text = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
            for r in claimed:
                _mark_failed(r, text)
