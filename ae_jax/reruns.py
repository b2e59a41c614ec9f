"""What a rerun may change: the config a run was trained with (its config.json) against the
one launched now. A rerun with the same config resumes or reuses the run; a larger
`train.epochs` under a schedule that allows it continues it; operational fields (how a run is
executed or logged, never what it learns) may change, and so may the end-of-run evaluation's
settings of a run not yet evaluated; anything else is refused before any work.
"""

import contextlib
import json
import os
import re

from absl import logging

from ae_jax import config as config_lib
from ae_jax.config.unused import unused_fields
from ae_jax.errors import UserError
from ae_jax.workdir import (
    CONFIG,
    EVAL,
    EVALUATIONS,
    FIGURES,
    SUMMARY,
    checkpoint_epochs,
    diverged_at,
    finished_summary,
    free_name,
    read_history,
    real_path,
    saved_config,
    saved_nothing,
    trained_nothing,
    write_json,
)

# Fields that change how a run is executed or logged, never what it learns: a rerun may change
# them. (eval_batch_size batches the per-epoch validation pass, whose sampled and batch-statistic
# terms depend on it; checkpoint_every decides which epochs best_epoch can name: README.)
OPERATIONAL = (
    "train.log_every",
    "train.log_seconds",
    "train.chunk_steps",
    "train.compilation_cache",
    "train.parallel",
    "train.eval_batch_size",
    "train.keep_checkpoints",
    "train.checkpoint_every",
    "eval.iw_batch_rows",
    # TensorBoard only mirrors metrics.jsonl and the figures. (train.figures and eval.at_end
    # are not here: a run extended without them would keep its old end's eval.json and
    # figures beside a new summary, and reports would mix the two.)
    "train.tensorboard",
    "train.num_models",  # K of the program: a run resumed after a kill may be in another group
)
# Fields that change neither what a run learns nor a number the report reads, so never one of a
# report's parameters nor of a tracker's hyperparameters: those a rerun may change (OPERATIONAL),
# and those a rerun must keep for its files' sake (below) that decide only where metrics go,
# which figures are drawn, whether checkpoints are kept and whether the end's evaluation ran
# (runs without it lack its numbers, which the report says).
NOT_PARAMETERS = frozenset(OPERATIONAL) | {
    "train.figures",
    "train.loggers",
    "train.tracker_project",
    "train.mlflow_uri",
    "train.checkpoints",
    "eval.at_end",
    "eval.color_by",
}
# Of OPERATIONAL, the ones that move reported numbers, and how (said when a rerun changes them).
MOVES_NUMBERS = {
    "train.eval_batch_size": "the validation metrics of the epochs it trains now, and its "
    "evaluation, are computed in batches of another size: a VAE's sampled terms, the batch "
    "terms (KL sparsity, TC, MMD) and the last bits of every mean can differ from an "
    "uninterrupted run's",
    "train.checkpoint_every": "the epochs that get a checkpoint from now on, so which one "
    "best_epoch and --which=best name, can differ from an uninterrupted run's",
    "eval.iw_batch_rows": "the end's importance-weighted pass runs in batches of another "
    "size: a VAE's sampled bounds and their Monte Carlo standard errors can differ from an "
    "uninterrupted run's in their last bits",
}
# The fields no number of a report depends on, so none of its parameters: entries that differ in
# train.eval_batch_size alone (and their seeds) were averaged as seeds of one setting (a probe).
NOT_REPORTED = NOT_PARAMETERS - MOVES_NUMBERS.keys()


def moves_numbers(config) -> dict[str, str]:
    """The fields of `MOVES_NUMBERS` that move a number of `config`'s run (the importance-
    weighted pass's batches, a VAE's evaluated at the end only)."""
    vae_end = config.model.name == "vae" and bool(config.eval.at_end)
    return {k: how for k, how in MOVES_NUMBERS.items() if k != "eval.iw_batch_rows" or vae_end}


# Fields read by the end-of-run evaluation and figures alone: a rerun of a run not yet evaluated
# (no summary.json: killed before or during its evaluation) may change them, so a run whose
# evaluation cannot fit (eval.iw_samples too large for the memory) can still be finished, and
# one whose figures or evaluation fail (a figure its names failed, on every rerun: a probe)
# finished without them.
END_OF_RUN = (
    "eval.iw_samples",
    "eval.near_zero",
    "eval.active_var",
    "eval.color_by",
    "eval.at_end",
    "train.figures",
)
# Files a run reads: config.json records them absolute (a relative path would tie the run to
# the directory it was started from), and a rerun naming the same file relatively matches.
PATH_FIELDS = ("data.path", "data.dir")
# A tracker's store named by a folder's path, not a URI (MLflow's file store): recorded absolute
# too (a relative one tied a run's resumes to its first directory, its absolute path then
# refused as another config: a probe).
URI_FIELDS = ("train.mlflow_uri",)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # file:, http:, sqlite:, databricks:
# Where a run's metrics go: a rerun of a run that has trained nothing (its launch failed as its
# trackers opened: W&B without an API key) may change them, as a new run could.
TRACKER_FIELDS = ("train.loggers", "train.tracker_project", "train.mlflow_uri")
# Schedules whose value at a step does not depend on the total number of steps: a finished or
# unfinished run with these may be continued to more epochs (`train.epochs` raised).
EXTENSIBLE_SCHEDULES = ("constant", "exponential")


def is_path(key: str, value) -> bool:
    """Whether `value`, of the flattened config field `key`, names a local file or folder: a
    PATH_FIELDS value, or a URI_FIELDS value without a scheme ('databricks' names no folder)."""
    if not value or not isinstance(value, str):
        return False
    return key in PATH_FIELDS or (
        key in URI_FIELDS and not _SCHEME.match(value) and value != "databricks"
    )


def config_changes(
    workdir: str, config, name: str = CONFIG, ignore: frozenset[str] = frozenset()
) -> tuple[list[str], bool]:
    """How `config` differs from the one `workdir` was trained with (saved in its `name`).

    Returns (changes, extends): "field: old -> new" for every field that differs (operational
    fields, fields both configs leave unused, the end-of-run evaluation's settings of a run not
    yet evaluated, the trackers' of a run that trained nothing, train.checkpoints of a run
    that saved nothing and those in `ignore` excepted), and whether the only change is a
    larger `train.epochs` under a schedule that allows continuing (then training continues;
    any other change is refused).
    """
    old = saved_config(workdir, name)
    if old is None:
        return [], False
    new = config_lib.flatten_config(config.to_dict())
    defaults = config_lib.flatten_config(config_lib.default_config().to_dict())
    # A field neither config uses changes nothing; nor, before the run is evaluated, do the
    # evaluation's settings.
    skip = ignore | (unused_fields({**defaults, **old}) & unused_fields(new))
    if name == CONFIG and finished_summary(workdir) is None:
        skip |= frozenset(END_OF_RUN)
    if name == CONFIG and trained_nothing(workdir):
        skip |= frozenset(TRACKER_FIELDS)
    if name == CONFIG and saved_nothing(workdir):  # (it trains from epoch 1 either way: the
        skip |= {"train.checkpoints"}  # stop's "turn checkpoints on to resume" was refused)
    changes, keys = [], []
    for key in sorted(new):
        if key in OPERATIONAL or key in skip:
            continue
        before = old.get(key, defaults.get(key))  # a field added since: its default held
        if is_path(key, before) and is_path(key, new[key]):
            if real_path(str(before)) == real_path(new[key]):
                continue  # the same file, typed relative or absolute
        if before != new[key]:
            changes.append(f"{key}: {before!r} -> {new[key]!r}")
            keys.append(key)
    extends = (
        keys == ["train.epochs"]
        and new["train.epochs"] > old["train.epochs"]
        and new["optim.schedule"] in EXTENSIBLE_SCHEDULES
    )
    return changes, extends


def check_config(workdir: str, config) -> bool:
    """Refuses a rerun whose config differs from the run's; True if it continues training."""
    changes, extends = config_changes(workdir, config)
    if extends:
        _check_can_continue(workdir)
        return True
    if changes:
        raise UserError(
            f"workdir {workdir!r} holds a run trained with another config; these fields differ "
            f"(saved -> now): {'; '.join(changes)}.{not_extended(workdir, config, changes)}"
            f"{moved_data(workdir, config)} Rerun with the saved config to resume "
            "or reuse the run, or pass a new workdir to train this config; nothing in the "
            "workdir was changed."
        )
    return False


def moved_data(workdir: str, config) -> str:
    """Why a rerun naming its data file elsewhere is refused, when the run's own file is gone
    from where it was and the new one exists (a project moved with its data): it said only
    'data.path: /old/data.csv -> data.csv', as if the naming were the change ("" otherwise)."""
    saved, now = saved_config(workdir) or {}, config_lib.flatten_config(config.to_dict())
    for key in PATH_FIELDS:
        old, new = saved.get(key), now.get(key)
        if is_path(key, old) and is_path(key, new) and real_path(str(old)) != real_path(str(new)):
            if not os.path.exists(str(old)) and os.path.exists(real_path(str(new))):
                return (
                    f" The run's {key} {old!r} no longer exists: if {new!r} is that file, moved, "
                    f"put it (or a link to it) back at {old!r}: a run is tied to the file it "
                    "trained on."
                )
    return ""


def not_extended(workdir: str, config, changes: list[str]) -> str:
    """Why raising train.epochs, when it is the only change, does not continue the run: its
    schedule depends on the total length ("" for other changes)."""
    epochs_only = [c for c in changes if c.startswith("train.epochs:")] == changes
    old_epochs = (saved_config(workdir) or {}).get("train.epochs", 0)
    if not (changes and epochs_only and config.train.epochs > old_epochs):
        return ""
    return (
        f" Raising train.epochs continues a run only under a schedule whose value does "
        f"not depend on the total length ({', '.join(EXTENSIBLE_SCHEDULES)}); this run "
        f"uses optim.schedule={config.optim.schedule!r}."
    )


def _check_can_continue(workdir: str) -> None:
    """A finished run is continued from its last checkpoint; one whose checkpoints/ are gone
    (though it saved them) would train again from epoch 1 and replace the history it has, under
    a warning that blamed train.checkpoints=False: refused instead, changing nothing."""
    saved, summary = saved_config(workdir) or {}, finished_summary(workdir)
    kept = saved.get("train.checkpoints", True)  # else it trains again from epoch 1 anyway
    if summary is None or not kept:
        return
    if epochs := checkpoint_epochs(workdir):  # a damaged line: refused now, before reopening
        # (the refusal named checkpoints/ gone, and offered to delete them: a probe)
        read_history(workdir, max(epochs), quiet=True, again=False)
        return
    raise UserError(
        f"workdir {workdir!r} holds a finished run of {saved.get('train.epochs')} epoch(s) "
        "whose checkpoints/ are gone (it saved them: train.checkpoints=True), so raising "
        "train.epochs cannot continue it: it would train again from epoch 1 and replace its "
        "metrics.jsonl, eval.json and figures. Restore checkpoints/, or train the longer run "
        "into a new workdir; nothing in the workdir was changed."
    )


def say_moved(configs: list, workdirs: list[str], finished: list) -> None:
    """Warns of each run that trains on (not `finished`) under a changed field that moves
    reported numbers (`moves_numbers`): a rerun may change it, but not silently."""
    for config, workdir, done in zip(configs, workdirs, finished, strict=True):
        old, new = saved_config(workdir) or {}, config_lib.flatten_config(config.to_dict())
        for key, how in moves_numbers(config).items():
            if done is None and key in old and old[key] != new[key]:
                logging.warning(
                    "%s: %s %r -> %r on this rerun: %s", workdir, key, old[key], new[key], how
                )


def say_diverged_extended(extended: list[str]) -> None:
    """Warns of each diverged run among those a raised train.epochs extends: it trains on with
    its group (as K models do in an uninterrupted run of the new length) but changes nothing."""
    for w in extended:
        summary = finished_summary(w) or {}
        if summary.get("status") == "diverged":
            what, kept = diverged_at(summary.get("diverged_step"))
            logging.warning(
                "%s diverged (%s): raising train.epochs trains nothing for it (its parameters "
                "stay %s); its checkpoint, eval.json and figures are written again",
                *(w, what, kept),
            )


def reopen(workdir: str) -> bool:
    """Marks a finished run unfinished (removes summary.json): train.epochs was raised and it
    trains on. Called before config.json records the new length, so a kill in between leaves a
    run that the same command resumes, never one "finished" at its old length.

    Its own evaluation of the old end (eval.json, figures/) moves to evaluations/which=latest,
    epoch=E,end/, kept (left in place, a report mixed the two epochs in one row; named as an
    evaluation, `ae-jax evaluate` replaced it). Figures first: a kill leaves eval.json, which the
    same command then moves. The evaluations `ae-jax evaluate` wrote of the old end under names
    without an epoch (which=best, data=FILE: names that read as current once the run trains on)
    get theirs: NAME,epoch=E. Returns whether the run had diverged (its parameters then stay)."""
    path = os.path.join(workdir, SUMMARY)
    diverged = (finished_summary(workdir) or {}).get("status") == "diverged"
    if os.path.exists(path):
        os.remove(path)
    _date_evaluations(workdir)
    own = os.path.join(workdir, EVAL)
    if not os.path.exists(own):
        return diverged
    epoch, which = None, "latest"  # an older version's own evaluation may be of the best
    with contextlib.suppress(OSError, ValueError, AttributeError), open(own) as f:
        saved = json.load(f)
        epoch, which = saved.get("epoch"), str(saved.get("which", "latest"))
    end = f"which={which},epoch={epoch},end"  # (",end": no name an evaluation is given)
    name = end if isinstance(epoch, int) else "which=latest,earlier_end"
    base, figures = os.path.join(workdir, EVALUATIONS, name), os.path.join(workdir, FIGURES)
    # (one of that name: kept too, but this move's own, cut short by a kill: finished here)
    dest = (not os.path.isdir(figures) and _cut_short(base)) or free_name(base)
    os.makedirs(dest, exist_ok=True)
    if os.path.isdir(figures) and not os.path.exists(os.path.join(dest, FIGURES)):
        os.replace(figures, os.path.join(dest, FIGURES))
    moved = os.path.join(EVALUATIONS, os.path.basename(dest), FIGURES, "")  # where they are now
    _refile_figures(own, os.path.join(FIGURES, ""), moved)
    os.replace(own, os.path.join(dest, EVAL))
    of = f"of epoch {epoch}" if isinstance(epoch, int) else "(unreadable: of an earlier end)"
    then = "it diverged, so its parameters stay as they are" if diverged else "it trains on"
    logging.info("%s: its evaluation %s moved to %s; %s", workdir, of, dest, then)
    return diverged


def _cut_short(path: str) -> str | None:
    """The first of `path`, `path@2`, ... holding figures without eval.json: an end's move
    that a kill cut short after its figures (None if none)."""
    dest, n = path, 1
    while os.path.exists(dest):
        if os.path.isdir(os.path.join(dest, FIGURES)) and not os.path.exists(f"{dest}/{EVAL}"):
            return dest
        n += 1
        dest = f"{path}@{n}"
    return None


def _date_evaluations(workdir: str) -> None:
    """evaluations/NAME without an epoch -> NAME,epoch=E (E: its eval.json's epoch). (A name
    with '@' is one too: another file's of the same name, "data=new.csv@1f0c9a2e"; the names
    `free_name` gives, NAME@2, are of dated evaluations or of an earlier end, unreadable.)"""
    folder = os.path.join(workdir, EVALUATIONS)
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if "epoch=" in name:  # dated already; its figures' list too, unless a kill cut it short
            if dated := re.fullmatch(r"(.*),epoch=-?\d+(@\d+)?", name):
                was, now = (os.path.join(EVALUATIONS, n, "") for n in (dated[1], name))
                _refile_figures(os.path.join(folder, name, EVAL), was, now)
            continue
        with contextlib.suppress(OSError, ValueError, AttributeError):
            with open(os.path.join(folder, name, EVAL)) as f:
                epoch = json.load(f).get("epoch")
            if isinstance(epoch, int):
                dest = free_name(f"{folder}/{name},epoch={epoch}")
                os.replace(os.path.join(folder, name), dest)
                _refile_figures(
                    os.path.join(dest, EVAL),
                    os.path.join(EVALUATIONS, name, ""),
                    os.path.join(EVALUATIONS, os.path.basename(dest), ""),
                )


def _refile_figures(eval_path: str, old: str, new: str) -> None:
    """Rewrites the figures an eval.json lists (paths inside the run) from under `old` to under
    `new`: they moved with its folder (`reopen`, `_date_evaluations`; they named files of the
    new end's, or none)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        with open(eval_path) as f:
            saved = json.load(f)
        listed = saved.get("figures")
        moved = lambda p: isinstance(p, str) and p.startswith(old)  # noqa: E731
        if isinstance(listed, list) and any(moved(p) for p in listed):
            saved["figures"] = [new + p[len(old) :] if moved(p) else p for p in listed]
            write_json(eval_path, saved)
