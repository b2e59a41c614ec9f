"""What the shards of a sweep share: which shard a process is, and the base config they all
train with.

Shard i of n takes every n-th run of the names sorted, from the i-th. Every launch of a sweep
directory (each shard, each rerun) must use the same base config: per-run checks
(`checks.check_unchanged`) compare a run with its own saved config, but shards launched
together find no run trained yet, and one with another learning rate would train its share
with it, which the report would then average with the others' as seeds of one setting.
`check_same_base` closes that gap, and `check_same_data` the one of a data file edited between
two launches.
"""

import json
import numbers
import os
from collections.abc import Sequence

from absl import logging

from ae_jax import config as config_lib
from ae_jax import reruns
from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.sweeps import overrides as overrides_lib
from ae_jax.training import group, startup
from ae_jax.workdir import saved_config

_LOCK = ".sweep_config.lock"  # held while a launch compares and records the base config


def takes(names: Sequence[str], shard: tuple[int, int]) -> set[str]:
    """The runs (by name) that shard (i, n) trains: those at places i, i + n, ... of the run
    names sorted, so shards agree whatever order each launch's get_sweep() lists them in (a
    list built from a set, whose order changes from process to process, left a run to none)."""
    i, n = shard
    return set(sorted(names)[i::n])


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n); with no text, $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT or (0, 1)."""
    source = f"--shard={text!r}"
    if not text:
        env = os.environ
        if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            first, step = (
                env.get("SLURM_ARRAY_TASK_MIN", "0"),
                env.get("SLURM_ARRAY_TASK_STEP", "1"),
            )
            text = f"{env['SLURM_ARRAY_TASK_ID']}/{env['SLURM_ARRAY_TASK_COUNT']}"
            source = (
                f"the shard from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT ({text!r}, "
                f"SLURM_ARRAY_TASK_MIN={first}, SLURM_ARRAY_TASK_STEP={step}; submit the array "
                "as --array=0-N, N one less than the count, or pass --shard)"
            )
            if (first, step) != ("0", "1"):  # --array=1-3 or 0-10:2: no task would be shard 0
                raise UserError(f"{source}: expected an array numbered 0, 1, ..., count - 1.")
        else:
            if "SLURM_ARRAY_TASK_ID" in env:  # (an older Slurm: every task took every run)
                logging.warning(
                    "SLURM_ARRAY_TASK_ID=%s is set but not SLURM_ARRAY_TASK_COUNT: this task "
                    "is not a shard, it takes every run of the sweep (the other tasks too, "
                    "each run trained once under the locks); pass --shard=i/n to share them",
                    env["SLURM_ARRAY_TASK_ID"],
                )
            return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise UserError(f"{source}: expected 'i/n' with integers, e.g. 0/4.") from None
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"{source}: expected 0 <= i < n.")
    return i, n


def check_shard(shard) -> tuple[int, int]:
    """`run_sweep`'s shard (i, n) as two ints, or a UserError: a shard past the last one
    trained nothing and left the runs pending, and one number was a ValueError."""
    whole = lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)  # noqa: E731
    if not (isinstance(shard, tuple | list) and len(shard) == 2 and all(map(whole, shard))):
        raise UserError(f"shard={shard!r}: expected (i, n), two whole numbers, e.g. (0, 4).")
    i, n = int(shard[0]), int(shard[1])
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"shard={shard!r}: expected (i, n) with 0 <= i < n (shards 0 .. n-1).")
    return i, n


def check_same_base(
    workdir: str, base, overrides: list[dict], record: bool = True, names: Sequence[str] = ()
) -> None:
    """Records the sweep's base config (DIR/sweep_config.json) at its first launch; refuses a
    later launch (a shard, a rerun) whose base differs in a field not every run overrides. A
    larger train.epochs passes (the runs are extended, as a rerun of one run is) and is
    recorded. The check and the write hold a lock, so shards launched together take turns.
    With `record=False` it only compares, taking no lock and writing nothing: the launch's
    early check, before its data is read (then the locked check records).

    So too each run's overrides, by its name (`names`, the runs' in the order of `overrides`:
    DIR/sweep_named.json): a named variant's name hides its values, and two shards launched
    together with the variant edited between them trained one setting with two learning
    rates, reported as its seeds (a probe)."""
    entries = {n: json.loads(json.dumps(o)) for n, o in zip(names, overrides, strict=False)}
    if not record:
        _refuse_other_base(workdir, base, overrides, names)
        _refuse_other_entries(workdir, entries)
        return
    workdir_lib.writable(workdir, "sweep directory")
    # Waits for another launch's check (a flock: a lock file another user made is read).
    with workdir_lib.waiting(os.path.join(workdir, _LOCK)):
        _refuse_other_base(workdir, base, overrides, names)
        recorded = _refuse_other_entries(workdir, entries)
        paths = [
            os.path.join(workdir, n) for n in (workdir_lib.SWEEP_CONFIG, workdir_lib.SWEEP_NAMED)
        ]
        new = [p for p in paths if not os.path.exists(p)]
        workdir_lib.write_json(paths[0], base.to_dict())
        if entries:
            workdir_lib.write_json(paths[1], {**recorded, **entries})
        _refuse_a_run_started_alongside(workdir, [p for p in new if os.path.exists(p)])


def _refuse_a_run_started_alongside(workdir: str, written: list[str]) -> None:
    """Refuses a sweep whose directory a run's training took since `check_kind` passed it (a
    `train` started into the same new directory at the same time), removing what this first
    launch recorded: that run claims its directory by its `.lock` before it looks for these
    files (`workdir.claim_run`), so of the two launches one sees the other."""
    holder = workdir_lib.holder(workdir)
    if holder is None and workdir_lib.kind_of(workdir) != "run":
        return
    for p in written:
        os.remove(p)
    raise UserError(
        f"workdir {workdir!r} became a run's directory while this sweep started (training by "
        f"{holder or 'another process'}): a run was started into it at the same time; expected "
        "a directory of the sweep's own. Nothing of the sweep was recorded: pass another workdir."
    )


def recorded_entries(workdir: str) -> dict[str, dict]:
    """Each run's overrides by its name, as the sweep's launches recorded them ({} before the
    first). A damaged record is a UserError naming it, as a damaged sweep_config.json is
    (read as none, it was rewritten, and an edited named variant trained unsaid: a probe)."""
    path = os.path.join(workdir, workdir_lib.SWEEP_NAMED)
    if not os.path.exists(path):
        return {}
    fix = (
        "restore it from a copy, or delete it (this launch then records its named runs' "
        "overrides anew, unchecked against those the runs were trained with)"
    )
    try:
        recorded = workdir_lib.read_json(path, "a record of the named runs' overrides", fix)
    except OSError as e:  # a folder of that name, no permission
        raise UserError(f"{path} cannot be read ({e.strerror}); {fix}") from None
    if bad := [n for n, o in recorded.items() if not isinstance(o, dict)][:1]:
        raise UserError(f"{path} is damaged (run {bad[0]!r}: overrides that are no object); {fix}")
    return recorded


def _refuse_other_entries(workdir: str, entries: dict[str, dict]) -> dict:
    """Refuses runs whose overrides differ from those recorded under their names; returns the
    record ({} before the first launch that recorded one)."""
    if not (recorded := recorded_entries(workdir)):
        return {}
    for name, now in entries.items():
        before = recorded.get(name, now)
        if before != now:
            keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            changes = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in keys]
            raise UserError(
                f"sweep {workdir!r}: run {name!r} was launched with other overrides (saved -> "
                f"now): {'; '.join(changes[:4])}. A named variant's name hides its values: "
                "launch every shard, and rerun, with the same get_sweep(), or give the edited "
                "variant another name; nothing was changed."
            )
    return recorded


def _refuse_other_base(workdir: str, base, overrides: list[dict], names: Sequence[str]) -> None:
    # A field every run overrides is no part of any run's config: a launch that also set
    # it (a flag the entries override, with a warning) neither differs nor blocks an
    # extension of the runs to a larger train.epochs.
    sets = [frozenset(o) for o in overrides]
    everywhere = frozenset.intersection(*sets) if sets else frozenset()
    changes, extends = reruns.config_changes(
        workdir, base, workdir_lib.SWEEP_CONFIG, ignore=everywhere
    )
    _refuse_other_numbers(workdir, base, overrides, names)
    if changes and not extends and not _reached_no_run(workdir, base, overrides, names):
        raise UserError(
            f"sweep {workdir!r} was launched with another base config; these fields differ "
            f"(saved -> now): {'; '.join(changes[:4])}{' ...' if len(changes) > 4 else ''}."
            " Launch every shard, and rerun, with the same config and flags (another "
            "shard's runs would be averaged with these as one setting's seeds), or pass a "
            "new workdir; nothing was changed."
        )


# Fields a rerun of one run may change (reruns.OPERATIONAL) that move its numbers enough to set
# it apart from its seeds (a VAE's eval/loss 44.49 at train.eval_batch_size 4096, 44.25 at 50;
# the epochs best_epoch can name): a launch must train a run that has trained with its own
# value, and a new run with the one the sweep's trained runs share. (Not eval.iw_batch_rows:
# the last bits of a sampled bound, and the way to fit its memory.)
SAME_IN_EVERY_LAUNCH = ("train.eval_batch_size", "train.checkpoint_every")


def _refuse_other_numbers(workdir: str, base, overrides: list[dict], names: Sequence[str]):
    """Refuses a launch that would train a run with another `SAME_IN_EVERY_LAUNCH` value than
    the one it has trained with (its config.json), or a new run with another than the one
    every run of the sweep that trained, or is being trained (its lock held), shares (an
    entry's own value aside): a shard launched with another eval_batch_size trained its runs
    so, unsaid, and the report averaged them with the others as one setting's seeds (a
    probe). The runs themselves are the reference, not sweep_config.json, which a launch that
    trained nothing rewrote, and older sweeps lack (a review); runs it does not train
    (finished, diverged) are only the reference (one rerun alone with another value locked
    the sweep); before any run trained (its launch killed for memory), any value passes."""
    new = config_lib.flatten_config(base.to_dict())
    recorded = saved_config(workdir, workdir_lib.SWEEP_CONFIG) or {}
    runs, shared = [], {k: set[str]() for k in SAME_IN_EVERY_LAUNCH}
    for name, entry in zip(names, overrides, strict=False):
        run = os.path.join(workdir, "runs", name)
        own, held = saved_config(run), workdir_lib.holder(run)
        if own is None and held:  # compiling: its launch recorded the sweep's config
            own = {k: entry.get(k, recorded.get(k)) for k in SAME_IN_EVERY_LAUNCH}
        if own and (held or not workdir_lib.trained_nothing(run)):
            for k in SAME_IN_EVERY_LAUNCH:
                if k not in entry and own.get(k) is not None:
                    shared[k].add(json.dumps(own[k]))
        else:
            own = None
        runs.append((name, entry, run, own, held))
    for name, entry, run, own, held in runs:
        done = workdir_lib.finished_summary(run)
        epochs = entry.get("train.epochs", new["train.epochs"])
        if held or done and (done["status"] != "done" or done["epoch"] >= epochs):
            continue  # not trained by this launch: being trained by another, or finished
        gives = {k: entry.get(k, new.get(k)) for k in SAME_IN_EVERY_LAUNCH}
        for k, v in gives.items():
            if own is not None:
                theirs, whose = own.get(k), f"run {name!r} trained with"
            elif k not in entry and len(shared[k]) == 1:
                theirs, whose = json.loads(next(iter(shared[k]))), "the sweep's runs trained with"
            else:
                continue
            if theirs is not None and theirs != v:
                raise UserError(
                    f"sweep {workdir!r}: {whose} {k}={theirs!r}, and this launch would train "
                    f"run {name!r} with {v!r}; a rerun of one run may change it, but it moves a "
                    "run's numbers, and the report would average the runs as one setting's "
                    f"seeds. Launch every shard, and rerun, with {k}={theirs!r}, or pass a new "
                    "workdir; nothing was changed."
                )


def _reached_no_run(workdir: str, base, overrides: list[dict], names: Sequence[str]) -> bool:
    """Whether the base config saved by the last launch reached no run: every run trained so
    far (one at least) is finished, with the config this launch gives it. An extension to
    more epochs stopped before it trained any run, or launched as a shard that took none, was
    recorded, and the sweep's own command was then refused until it was extended (a probe).
    (An unfinished run's comparison passes over its evaluation's settings: not here.)"""
    dirs = [os.path.join(workdir, "runs", n) for n in names]
    trained = [(d, o) for d, o in zip(dirs, overrides, strict=False) if saved_config(d)]
    if any(workdir_lib.finished_summary(d) is None for d, _ in trained):
        return False
    return bool(trained) and not any(
        reruns.config_changes(d, overrides_lib.apply_overrides(base, o))[0] for d, o in trained
    )


def check_same_data(run_workdir: str, config, ds) -> None:
    """Refuses to train a sweep's run (of `config`) on data other than what its other runs of
    the same data config trained on (a file edited between two shards' launches): the report
    would average runs of two data sets as one setting's seeds. Compares `ds` with the first
    such run found under the sweep's runs/ directory."""
    runs = os.path.dirname(run_workdir)
    for name in sorted(os.listdir(runs)):
        other = os.path.join(runs, name)
        if other == run_workdir or not os.path.exists(
            os.path.join(other, workdir_lib.PREPROCESSOR)
        ):
            continue
        changes, _ = reruns.config_changes(other, config)  # a rerun's own comparison
        if not any(c.startswith("data.") for c in changes):
            # As that run saw it (its config.json's fingerprint is of that): a validation split
            # clipped into [0, 1] under its Bernoulli likelihood read as "edited" as loaded.
            recon = str((workdir_lib.saved_config(other) or {}).get("loss.recon", "mse"))
            if change := startup.changed_data(other, group.as_trained(config, ds, recon)):
                raise UserError(
                    f"the data this launch loads ({ds.name!r}) is not what run {other!r} of the "
                    f"same sweep trained on (edited since, or read differently by this version "
                    f"of ae_jax: {change}); restore the file the sweep started with, or run the "
                    "sweep into a new workdir"
                )
            return
