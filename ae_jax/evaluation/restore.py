"""What a reused run loads (`ae_jax.load`, encode, export, evaluate): its config, and which
checkpoint, read and checked against the model and the run; each way there is none to load
(no run there, a run that failed or lost its config, no checkpoint) is one error saying why
and what to do."""

import contextlib
import json
import os
import shlex

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from ae_jax import config as config_lib
from ae_jax import workdir as workdir_lib
from ae_jax.data.cells import quote_names
from ae_jax.errors import UserError
from ae_jax.training.checkpoint import Checkpointer, DamagedCheckpoint


def check_run_dir(workdir: str) -> None:
    """Points a parent of K seed runs (DIR/seed=S/) at its runs instead of a bare refusal."""
    if not os.path.isdir(workdir) or os.path.exists(os.path.join(workdir, workdir_lib.CONFIG)):
        return  # load_config words the other cases.
    runs = sorted(
        d
        for d in os.listdir(workdir)
        if os.path.exists(os.path.join(workdir, d, workdir_lib.CONFIG))
    )
    if runs:
        raise UserError(
            f"workdir {workdir!r} holds several runs, not one: "
            f"{runs[:6]}{' ...' if len(runs) > 6 else ''}; use each of them "
            f"(e.g. {os.path.join(workdir, runs[0])!r})."
        )


def load_config(workdir: str) -> tuple[ml_collections.ConfigDict, dict]:
    """The run's config (as a ConfigDict) and its recorded dataset facts."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isdir(workdir):
        what = "is a file" if os.path.exists(workdir) else "does not exist"
        raise UserError(f"workdir {workdir!r} {what}; expected the workdir of a run.")
    if workdir_lib.kind_of(workdir) == "export":  # its config.json alone read as a run's
        raise UserError(
            f"workdir {workdir!r} is an exported run (`ae-jax export`'s output, used without "
            "ae_jax as its README.md says), not a run's directory; pass the run's own workdir."
        )
    if lost := workdir_lib.lost_config(workdir, launch=False):
        raise UserError(lost)
    failed = os.path.join(workdir, workdir_lib.FAILED)
    if not os.path.exists(path) and os.path.isfile(failed):  # (said "not a run directory")
        error = workdir_lib.read_json(failed, "the run's failure", "delete it").get("error")
        raise UserError(
            f"workdir {workdir!r} is a run that failed before it trained, so it has nothing "
            f"to load (its failed.json: {str(error)[:600]!r}); fix that, then run the sweep's "
            "command again, which retries it."
        )
    if not os.path.exists(path):
        sweep = os.path.exists(os.path.join(workdir, workdir_lib.SWEEP))
        raise UserError(
            f"workdir {workdir!r} has no config.json, so it is not an ae_jax run directory "
            f"(it holds {quote_names(sorted(os.listdir(workdir)), 8)}); expected the workdir of "
            "a run" + (f": it is a sweep's, whose runs are {workdir}/runs/NAME." if sweep else ".")
        )
    saved = workdir_lib.read_json(
        path,
        "the run's config",
        "restore it from a copy; without it the checkpoints cannot be interpreted",
    )
    c = config_lib.default_config()
    for section in workdir_lib.SECTIONS:
        for key, value in saved.get(section, {}).items():
            if key in c[section]:
                c[section][key] = tuple(value) if isinstance(value, list) else value
    return c, saved.get("dataset", {})


def read_checkpoint(workdir: str, config, which: str) -> tuple[int, dict]:
    """(epoch, raw state) of the run's `which` checkpoint ('latest' or 'best' by eval/loss)."""
    ck = Checkpointer(workdir, read_only=True)
    try:
        try:
            found = ck.restore_current(which)
        except DamagedCheckpoint as e:
            aside = shlex.quote(os.path.join(workdir, "damaged_checkpoints"))
            other = "latest" if which == "best" else "best"
            # The other choice only when it is another checkpoint (not this one again).
            alt = (
                f" Or load the {other} checkpoint instead (which={other!r}; on the command "
                f"line --which={other}), epoch {ck.current(other)}."
                if ck.current(other) not in (None, ck.current(which))
                else ""
            )
            way = (
                f"Restore it from a copy, or move it aside (mkdir -p {aside} && mv "
                f"{shlex.quote(e.where)} {aside}/) to read the others"
                if len(ck.epochs()) > 1
                else "It is the run's only checkpoint: restore it from a copy of the run"
            )
            raise UserError(
                f"{e}: it is damaged (a copy cut short, a full disk?). {way}; a run not "
                "finished is resumed by its training command, which sets a damaged checkpoint "
                f"aside itself.{alt}"
            ) from None
        if found is None and not ck.epochs() and not config.train.checkpoints:
            raise UserError(
                f"workdir {workdir!r} was trained with train.checkpoints=False, so it kept "
                "no parameters to load, encode, export or evaluate; train the config with "
                "checkpoints on into a new workdir."
            )
        if found is None and not ck.epochs() and _finished_epoch(workdir) is not None:
            raise UserError(  # (training it again says "already finished")
                f"workdir {workdir!r} finished training (epoch {_finished_epoch(workdir)}, "
                f"summary.json), but its checkpoints are missing: {ck.directory} is "
                f"{'empty' if os.path.isdir(ck.directory) else 'gone'} (deleted, or not "
                "copied with the run?). Restore it from a copy of the run; without it there "
                "are no parameters to load, encode, export or evaluate."
            )
        if found is None and not ck.epochs():
            raise UserError(
                f"workdir {workdir!r} has no checkpoint yet; train it first "
                "(or wait for its first checkpoint)."
            )
        if found is None:
            stops = [e for e in ck.epochs() if _meta(ck, e).get("stop")]
            raise UserError(
                f"workdir {workdir!r}: which='best' needs a checkpoint with a finite "
                f"eval/loss saved on schedule, and none of epochs {ck.epochs()} is one ("
                + (
                    f"epoch(s) {stops} saved by a stop between scheduled checkpoints, which an "
                    "uninterrupted run has not; "
                    if stops
                    else ""
                )
                + "a run that diverged saves its last parameters without metrics); use "
                "which='latest'" + (", or train on to a scheduled checkpoint." if stops else ".")
            )
        _check_own(workdir, config, found[0], _meta(ck, found[0]))
    finally:
        ck.close()
    return found


def _meta(ck: Checkpointer, epoch: int) -> dict:
    """A checkpoint's meta.json, {} where it is damaged, gone (pruned meanwhile) or no object:
    its state was read, and what meta.json adds is a check and a message."""
    try:
        meta = ck.meta(epoch)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _check_own(workdir: str, config, epoch: int, meta: dict) -> None:
    """Refuses a checkpoint another run wrote (a copy of another run's checkpoints/: a probe
    evaluated seed 1's parameters as seed 0's run, silently, the shapes being alike): its
    train.seed, which meta.json records, must be the run's; warns where its eval/loss is not
    the one metrics.jsonl logged at its epoch (a run of other settings, same seed)."""
    seed = config.train.seed
    if "seed" in meta and meta["seed"] != seed:
        raise UserError(
            f"the epoch-{epoch} checkpoint in {workdir!r} was written by a run of "
            f"train.seed={meta['seed']}, not this run's train.seed={seed} (config.json): copied "
            "from another run? Use the workdir it came from, or restore this run's own."
        )
    path = os.path.join(workdir, workdir_lib.METRICS)
    saved = (meta.get("metrics") or {}).get("eval/loss")
    if saved is None or meta.get("stop") or not os.path.isfile(path):
        return
    logged = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            with contextlib.suppress(ValueError, AttributeError):  # (a line cut short: skipped)
                row = json.loads(line)
                logged = row.get("eval/loss") if row.get("epoch") == epoch else logged
    if logged is not None and logged != saved and saved == saved:  # (NaN: a diverged run's)
        logging.warning(
            "%s: the epoch-%d checkpoint's eval/loss %r is not the %r that %s logged at that "
            "epoch: a checkpoint copied from another run of other settings?",
            *(workdir, epoch, saved, logged, workdir_lib.METRICS),
        )


def _finished_epoch(workdir: str) -> int | str | None:
    """The epoch a finished run ended at (its summary.json), None when unfinished or unread."""
    try:
        summary = workdir_lib.finished_summary(workdir)
    except UserError:  # a damaged summary.json: say the checkpoints are missing as for any run
        return None
    return summary.get("epoch", "?") if summary else None


def check_params(params, model, num_features: int, workdir: str):
    """Checks the checkpoint's parameter shapes against the configured model."""
    expected = jax.eval_shape(
        lambda: model.init(
            jax.random.PRNGKey(0), jnp.zeros((1, num_features)), jax.random.PRNGKey(1)
        )["params"]
    )
    want = {
        jax.tree_util.keystr(p): v.shape for p, v in jax.tree_util.tree_leaves_with_path(expected)
    }
    got = {
        jax.tree_util.keystr(p): np.shape(v) for p, v in jax.tree_util.tree_leaves_with_path(params)
    }
    if want != got:
        diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))[:4]
        shown = "; ".join(f"{k}: checkpoint {got.get(k)} vs model {want.get(k)}" for k in diff)
        raise UserError(
            f"the checkpoint in {workdir!r} does not match the architecture in its config.json "
            f"({shown}); it was written by a different model. Use the workdir it came from."
        )
    return jax.tree.map(jnp.asarray, params)
