"""What a sweep refuses before any work: entries that cannot be runs (not dicts, names that
collide, invalid values, two that train one config, K models each), a rerun with another
config, data that no run of this launch can read, and a run that cannot train on the data
(`check_data_fits`). `runner.run_sweep` calls them in that order, before it writes sweep.json
or claims a run.
"""

import json
import os

import jax
from absl import logging

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import reruns, runtime
from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.sweeps import overrides as overrides_lib
from ae_jax.sweeps import shards
from ae_jax.sweeps.status import Run
from ae_jax.training import group, placement, startup


def expand(overrides: list[dict], workdir: str) -> list[Run]:
    """Indexes and names every run; names must be unique (they are directories)."""
    for i, o in enumerate(overrides):
        if not isinstance(o, dict):
            raise UserError(
                f"get_sweep() entry {i} is {type(o).__name__} {o!r}; every entry "
                "must be a dict of overrides such as {'loss.beta': 2.0} (build "
                "them with sweep.product, zip_, chain or random_search)."
            )
    # numpy values (np.arange, np.float32(1e-3)) as the Python values they hold
    overrides = [{k: overrides_lib.plain(v) for k, v in o.items()} for o in overrides]
    limit = overrides_lib.name_max(os.path.join(workdir, "runs"))  # a longer name: shortened
    names = _kept_names(workdir, overrides, [overrides_lib.run_name(o, limit) for o in overrides])
    runs = [
        Run(i, n, dict(o), os.path.join(workdir, "runs", n))
        for i, (n, o) in enumerate(zip(names, overrides, strict=True))
    ]
    seen: dict[str, int] = {}
    as_config = lambda o: {k: tuple(v) if isinstance(v, list) else v for k, v in o.items()}
    for r in runs:
        overrides_lib.check_name(r.name, f"sweep run {r.index}'s name")
        if r.name in seen and as_config(runs[seen[r.name]].overrides) == as_config(r.overrides):
            raise UserError(
                f"sweep runs {seen[r.name]} and {r.index} have the same overrides "
                f"({r.name}); every run must differ."
            )
        if r.name in seen:
            raise UserError(
                f"sweep runs {seen[r.name]} ({runs[seen[r.name]].overrides}) and {r.index} "
                f"({r.overrides}) differ but get the same directory name runs/{r.name} (a "
                "path's '/' is written '_', a named block shows its name only); give one "
                "a name of its own, e.g. with sweep.named."
            )
        seen[r.name] = r.index
    return runs


def _kept_names(workdir: str, overrides: list[dict], names: list[str]) -> list[str]:
    """`names`, but a run's overrides recorded under another name (the same fields in another
    order: a product's axes swapped) keep that name: the whole sweep was trained again under
    new names, beside the old (a probe)."""
    recorded = shards.recorded_entries(workdir)
    key = lambda o: json.dumps(o, sort_keys=True, default=str)  # noqa: E731 - (as recorded)
    named = {key(o): n for n, o in recorded.items() if isinstance(o, dict)}
    old = [
        n if n in recorded else named.get(key(json.loads(json.dumps(o, default=str))), n)
        for n, o in zip(names, overrides, strict=True)
    ]
    if moved := sum(a != b for a, b in zip(names, old, strict=True)):
        logging.info("sweep: %d run(s) keep the names they were launched with", moved)
    return old


def valid_configs(base, runs: list[Run]) -> dict:
    """Every entry's config (by run index), refusing a misspelt field of the base or of any
    entry, a value no config may have (naming the base or the entry it comes from), two
    entries that train one config and `train.num_models` > 1."""
    config_lib.check_known(base)  # a misspelt field of the base: refused once, not per run
    overrides_lib.check_fields(base, [r.overrides for r in runs])  # ... and of any entry
    valid = {}
    for r in runs:
        try:
            valid[r.index] = overrides_lib.apply_overrides(base, r.overrides)
            config_lib.validate(valid[r.index])
        except UserError as e:
            try:  # the base config's own error is no entry's
                config_lib.validate(base)
            except UserError:
                if not any(k in str(e) for k in r.overrides):
                    raise UserError(f"the sweep's base config (get_config()): {e}") from None
            raise UserError(f"sweep entry {r.index} ({r.name}): {e}") from None
    several = sorted({int(c.train.num_models) for c in valid.values()} - {1})
    if several:  # each run is one model: a sweep's seeds are its entries (said before entries
        # differing in it alone are refused as one config: a probe)
        raise UserError(
            f"train.num_models={several[0]}: a sweep trains one model per entry (runs that "
            "differ only in seeds or vmappable scalars train together anyway); list the seeds "
            "in get_sweep() instead, e.g. sweep.product(..., {'train.seed': range(K)})."
        )
    refuse_same_configs(runs, valid)
    return valid


def refuse_same_configs(runs: list[Run], configs: dict) -> None:
    """Refuses entries that train one config (it would count twice among a setting's seeds)."""
    same = overrides_lib.first_same([configs[r.index] for r in runs])
    if same is not None:
        a, b = runs[same[0]], runs[same[1]]
        raise UserError(
            f"sweep entries {a.index} ({a.name}) and {b.index} ({b.name}) "
            "train the same config (their overrides differ only in how they say it, such as "
            "a file's path or a learning rate or loss weight beyond the float32 that training "
            "holds, 0.009 and 9 * 0.001, in fields that change nothing a run learns, such as "
            "train.figures or eval.at_end, or in fields the rest of the config leaves unused, "
            "such as data.name beside a data.path, or set the base config's own values); the "
            "report would count its "
            "seeds twice: "
            "every run must differ, so remove one of them."
        )


def check_unchanged(base, runs: list[Run], workdir: str, valid: dict | None = None) -> None:
    """Refuses a rerun of a sweep whose runs would now train another config (before any work);
    `valid`: as for `plan`."""
    drift, why = [], ""
    for run in runs:
        try:
            config = (valid or {}).get(run.index) or overrides_lib.apply_overrides(
                base, run.overrides
            )
        except UserError:
            continue  # plan() records it as a failed run
        changes, extends = reruns.config_changes(run.workdir, config)
        if changes and not extends:
            why = why or reruns.not_extended(run.workdir, config, changes)  # (a cosine schedule)
            drift.append(
                f"run {run.index} ({run.name}): {'; '.join(changes[:3])}"
                f"{' ...' if len(changes) > 3 else ''}"
            )
    if drift:
        raise UserError(
            f"{len(drift)} run(s) in sweep {workdir!r} were trained with another config (saved "
            f"-> now): {' | '.join(drift[:3])}{' | ...' if len(drift) > 3 else ''}.{why} Rerun "
            "with the same config and flags to resume the sweep, or pass a new workdir; nothing "
            "was changed."
        )


def finished(run: Run, config) -> bool:
    """Whether a run has nothing left to train: finished, and not extended by this config
    (train.epochs raised, which `check_unchanged` let through: train_group continues it; a
    diverged run too, with its group, so the others train as K models as before)."""
    if workdir_lib.finished_summary(run.workdir) is None:
        return False
    return not reruns.config_changes(run.workdir, config)[1]


def check_run_folders(runs: list[Run], workdir: str) -> None:
    """Refuses, before anything is written, runs whose directories are files or folders of other
    files (DIR/runs/NAME made by hand, no run's): each such run failed when its group trained,
    after the runs before it, writing its lock and failed.json among the user's files (a
    probe). A started run's directory with strays in it still fails alone (`_train_chunk`)."""
    odd = [
        (run, f"holds {found[:4]}" if os.path.isdir(run.workdir) else _not_a_folder(run.workdir))
        for run in runs
        if os.path.lexists(run.workdir)
        and not workdir_lib.kind_of(run.workdir)
        and not workdir_lib.lost_config(run.workdir)  # (a run that lost them: said per run)
        and (not os.path.isdir(run.workdir) or (found := workdir_lib.foreign_files(run.workdir)))
    ]
    if odd:
        said = "; ".join(f"{r.workdir!r} {found}" for r, found in odd[:3])
        raise UserError(
            f"sweep {workdir!r}: {len(odd)} run(s)' directories are files or folders of other "
            f"files, not runs' ({said}{' ...' if len(odd) > 3 else ''}): each run would write its "
            "files there (and replace any of the same names). Move them out of the way, then "
            "rerun the same command; nothing was written."
        )


def _not_a_folder(path: str) -> str:
    return "is a link to nothing (a broken link)" if not os.path.exists(path) else "is a file"


def check_open_files(chunks: list[list[Run]], left: set[int]) -> None:
    """Refuses, before any work, a group of this shard's unfinished runs (`left`: their
    indices) that could never be open at once under the open-file limit
    (`runtime.check_open_files`): each such group's runs were recorded as failed when it came
    to train, the last line saying to rerun the same command, which failed again (a probe).
    `chunks`: `runner.plan`'s."""
    runtime.raise_open_files_limit()
    runtime.check_open_files(max((sum(r.index in left for r in c) for c in chunks), default=0))


def trained_through(run: Run, config) -> bool:
    """Whether an unfinished run has its last epoch's checkpoint: left to evaluate and write
    (a kill after training), no training (its group compiles, restores and evaluates)."""
    return max(workdir_lib.checkpoint_epochs(run.workdir), default=0) >= int(config.train.epochs)


def data_key(config) -> str:
    """Runs with equal keys train on one data set (read once per process)."""
    return json.dumps(config.data.to_dict(), sort_keys=True)


def load_shared_data(runs: list[Run], configs: dict) -> dict:
    """Reads the data of this launch's runs left to train, when they all train on one data
    config, before sweep.json is written or a run claimed; returns {data_key: data set} for the
    groups to share ({} when they train on several, each group then reading its own). A file
    that cannot be read is one error (exit 2): it was each group's failure, recorded per run
    (failed.json), its message repeated per run and the sweep's directory made, nothing
    trained. The data is also compared with what the sweep's other runs trained on
    (`shards.check_same_data`)."""
    left = [r for r in runs if r.index in configs and not finished(r, configs[r.index])]
    keys = {data_key(configs[r.index]) for r in left}
    if len(keys) != 1:
        return {}
    config = configs[left[0].index]
    ds = data_lib.load_dataset(config.data)
    if os.path.isdir(os.path.dirname(left[0].workdir)):  # runs/: a rerun or another shard's
        shards.check_same_data(left[0].workdir, config, ds)
    return {keys.pop(): ds}


def check_batch_split(runs: list[Run], configs: dict, datasets: dict, n_dev: int) -> None:
    """train.parallel='data' splits each batch over the devices: a run left to train whose
    batch does not divide is refused before any run trains (its group failed when it came to
    train, after the groups before it had). Checked where the data is read already (the batch
    is cut to the training split's rows); otherwise its group's training checks it."""
    for r in runs:
        c = configs[r.index]
        ds = datasets.get(data_key(c))
        if c.train.parallel != "data" or ds is None or finished(r, c):
            continue
        batch = min(int(c.train.batch_size), ds.train.shape[0])
        try:
            placement.choose_mode("data", 1, batch, 0, n_dev, int(c.train.batch_size))
        except UserError as e:
            raise UserError(
                f"sweep run {r.index} ({r.name}): {e} Refused before any run trains: set "
                f"train.batch_size to a multiple of {n_dev} for it, or train.parallel='auto' "
                "(which splits the models, or trains on one device, instead)."
            ) from None


def check_data_fits(runs: list[Run], configs: dict, datasets: dict) -> None:
    """Each run left to train whose data is read already, against that data
    (`group.refuse_misfits`: a conv model on a table, a [0, 1] likelihood on data beyond it, a
    batch statistic over one row, ...), once per kind of run (`group.misfit_key`): such a run is
    refused before any run trains (its group failed when it came to train, after the groups
    before it had trained and been evaluated). Its group checks it again when it trains, as a
    group: a run weighting no total correlation in a group whose other runs weight it is
    refused there alone."""
    seen = set()
    for r in runs:
        c = configs[r.index]
        ds = datasets.get(data_key(c))
        if ds is None or finished(r, c) or (key := group.misfit_key(c)) in seen:
            continue
        seen.add(key)
        try:
            group.refuse_misfits([c], ds)
        except UserError as e:
            raise UserError(
                f"sweep run {r.index} ({r.name}): {e} Refused before any run trains."
            ) from None


def check_models_split(chunks: list[list[Run]], max_models: int, valid: dict, shard) -> None:
    """train.parallel='models' splits each group of runs trained together over the devices:
    groups of this shard's unfinished runs that do not divide are refused before any run
    (each such group failed when it came to train). `chunks`: `runner.plan`'s."""
    n = jax.device_count()
    # As train_runs groups them: chunks of all runs, then the finished ones left out, then
    # as train_group splits a chunk: runs being extended apart from new ones, runs resumed
    # from different epochs apart (checked on the chunks alone, a sweep of 3 runs extended
    # and 1 added, 4 on 2 devices, passed, and every run then failed).
    groups = []
    for chunk in chunks:
        left = [r for r in chunk if not finished(r, valid[r.index])]
        if left:
            parts = startup.resume_groups([r.workdir for r in left])
            groups += [[left[i] for i in part] for part in parts]
    bad = [c for c in groups if valid[c[0].index].train.parallel == "models" and len(c) % n]
    if not bad:
        return
    sizes = ", ".join(str(len(c)) for c in groups)
    which = "" if shard[1] == 1 else f" of --shard={shard[0]}/{shard[1]}"
    raise UserError(
        f"train.parallel='models' splits each group of runs trained together over the {n} "
        f"devices, so each group must hold a multiple of {n} runs; the unfinished "
        f"runs{which} form groups of {sizes} (runs grouped by static config, at most "
        f"--max_models={max_models} per group; runs being extended, or resumed from different "
        f"epochs, apart from the others), and a group of {len(bad[0])} (first run: "
        f"{bad[0][0].name}) does not divide. Use train.parallel='auto' (such a group trains data "
        f"parallel, or on one device), or choose --max_models, --shard and the entries so that "
        f"every group is a multiple of {n}."
    )
