"""The workdir contract: the files a run directory holds, and how they are read and written.

  config.json        the resolved config, plus the data's shape and columns
  preprocessor.json  the fitted encoding and scaling, to transform new rows alike
  metrics.jsonl      one JSON object per epoch: epoch, step, train/*, eval/*, epoch_s, rows_per_s
  summary.json       the last epoch's figures, plus status, wall_s, compile_s, n_params. Written
                     last, after eval.json and the figures: its status "done" (or "diverged")
                     marks a run finished (one killed while evaluated is finished by a rerun).
  eval.json          the evaluation (`ae_jax.evaluation`)
  checkpoints/       per saved epoch: state.npz, meta.json (training/checkpoint.py; once orbax's)
  figures/           learning curves, reconstructions, codes, samples, ...
  tb/                TensorBoard events mirroring metrics.jsonl
  .lock              held by the one process that trains the run (`locks.WorkdirLock`)
  partial_epoch.msgpack  the state inside an epoch a stop interrupted (training/chunking.py)
  evaluations/NAME/  `ae-jax evaluate`'s other evaluations (another file, the best
                     checkpoint, another k or seed, or a second look): eval.json and figures/

Other modules name these files (and a sweep directory's, below) through the constants here.
"""

import contextlib
import json
import os
import re

from absl import logging

from ae_jax import config as config_lib
from ae_jax.errors import UserError
from ae_jax.files import as_path, free_name, natural_key, real_path, write_atomic, write_json  # noqa: F401 - the contract's
from ae_jax.locks import LOCK, WorkdirLock, holder, waiting  # noqa: F401 - the contract's locks

CONFIG = "config.json"
PREPROCESSOR = "preprocessor.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
EVAL = "eval.json"
FIGURES = "figures"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tb"
FAILED = "failed.json"
PARTIAL = "partial_epoch.msgpack"
TRACKERS = "trackers.json"  # the run's MLflow / W&B run ids, so a resumed run continues them
EVALUATIONS = "evaluations"  # DIR/evaluations/NAME/: never the run's own eval.json
REPORT_METRICS = "report_metrics.json"  # a sweep directory's: the metrics its config chose
SWEEP = "sweep.json"  # a sweep directory's: every run and its status
SWEEP_CONFIG = "sweep_config.json"  # ... and its base config, as launched (checked by shards)
SWEEP_NAMED = "sweep_named.json"  # ... and each run's overrides by its name (the same)
STOP = "stop-{launch}.json"  # a Ray sweep launch's, while it asks its own tasks to stop
REPORT_FILES = "report_files.json"  # a reported folder's: the files `ae-jax report` wrote there
SWEEP_LOCK = ".sweep.lock"  # a sweep directory's: held while a launch rewrites sweep.json
EXPORTED = "encode.jax_export"  # an `ae-jax export` folder's (beside a run's config.json)
FINISHED = ("done", "diverged")
SECTIONS = ("data", "model", "loss", "optim", "train", "eval")  # config.json's config part


def finished_summary(workdir: str) -> dict | None:
    """The summary of a run that already ended (done or diverged), else None."""
    path = os.path.join(workdir, SUMMARY)
    if not os.path.exists(path):
        return None
    fix = "delete it: the run's training command then resumes from the newest checkpoint"
    summary = read_json(path, "the run's summary", fix + " and writes it again")
    return summary if summary.get("status") in FINISHED else None


def unfinished_runs(parent: str, besides: list[str]) -> list[str]:
    """The names of the runs in `parent` other than `besides` that started but did not end (no
    summary.json): K seeds' runs that a launch with fewer of them leaves half-trained."""
    names = os.listdir(parent) if os.path.isdir(parent) else []
    skip = {os.path.basename(os.path.normpath(w)) for w in besides}
    return sorted(
        n
        for n in names
        if n not in skip
        and kind_of(os.path.join(parent, n)) == "run"
        and not os.path.exists(os.path.join(parent, n, SUMMARY))
    )


def diverged_at(step) -> tuple[str, str]:
    """A diverged run's `diverged_step` (the steps done before its non-finite one, as
    metrics.jsonl counts `step`) in words: (the non-finite step, from 1; the parameters kept)."""
    if not isinstance(step, int) or isinstance(step, bool):  # a summary that lacks it
        return "non-finite loss, gradient or update", "those from before that step"
    kept = f"those after step {step}" if step else "the initial ones (before step 1)"
    return f"non-finite loss, gradient or update in step {step + 1}", kept


def checkpoint_epochs(workdir: str) -> set[int]:
    """The epochs with a checkpoint directory in workdir/checkpoints. Cheap, for grouping runs
    before any checkpoint manager is opened; the Checkpointer decides which can be read."""
    with contextlib.suppress(OSError):
        return {int(n) for n in os.listdir(os.path.join(workdir, CHECKPOINTS)) if n.isdigit()}
    return set()


def saved_nothing(workdir: str) -> bool:
    """Whether the run in `workdir` has nothing to resume from or reuse: no checkpoint, no
    stopped epoch's position and no summary (a run stopped with train.checkpoints=False)."""
    return not checkpoint_epochs(workdir) and not any(
        os.path.exists(os.path.join(workdir, name)) for name in (PARTIAL, SUMMARY)
    )


def trained_nothing(workdir: str) -> bool:
    """Whether the run in `workdir` has trained no step: no checkpoint, no stopped epoch's
    position, no summary and no metrics.jsonl row (its launch failed before training)."""
    if not saved_nothing(workdir):
        return False
    with contextlib.suppress(FileNotFoundError), open(os.path.join(workdir, METRICS)) as f:
        return not f.read().strip()
    return True


def read_history(workdir: str, last_epoch: int, quiet: bool = False, again=True) -> list[dict]:
    """The metrics.jsonl rows of epochs 1..last_epoch (resuming at `last_epoch`).

    A cut-off last line (a crash mid-write) is dropped with a warning (`quiet`: none): the
    resume starts before that epoch (`startup.history_end`), so it is redone. A missing file,
    or a damaged line elsewhere, is refused (`again`: offering to train again): the history
    cannot be rebuilt from the checkpoints (of their own epochs' metrics alone)."""
    path = os.path.join(workdir, METRICS)
    if not os.path.exists(path):
        if last_epoch > 0:
            raise UserError(
                f"{path} is missing, but the run has checkpoints up to epoch {last_epoch}: the "
                "per-epoch history cannot be rebuilt from them. Restore metrics.jsonl, or train "
                f"into a new workdir{' (or delete checkpoints/ to train this run again)' * again}."
            )
        return []
    with open(path) as f:
        lines = [line for line in f.read().split("\n") if line.strip()]
    rows = []
    for n, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if n == len(lines):
                (logging.warning if not quiet else logging.debug)(
                    "%s: its last line is cut off (%r...); dropped, and that "
                    "epoch's row is written again",
                    path,
                    line[:40],
                )
                break
            raise UserError(
                f"{path} line {n} is damaged ({line[:60]!r}); restore the file, "
                "or train into a new workdir."
            ) from None
    return [r for r in rows if r.get("epoch", 0) <= last_epoch]


def kind_of(directory: str) -> str:
    """'run' (config.json beside preprocessor.json, both written when a run starts), 'sweep'
    (sweep.json beside runs/), 'export' (`ae-jax export`'s output: a run's two JSON files
    beside its exported functions) or '' for any other directory (a project folder may well
    hold a config.json or a sweep.json of its own)."""
    has = lambda name: os.path.exists(os.path.join(directory, name))  # noqa: E731
    if has(EXPORTED):
        return "export"
    if has(CONFIG) and has(PREPROCESSOR):
        return "run"
    return "sweep" if has(SWEEP) and os.path.isdir(os.path.join(directory, "runs")) else ""


def sweep_of(workdir: str) -> str:
    """The sweep directory whose runs/ holds the run `workdir` (DIR/runs/NAME), else ""."""
    up = os.path.dirname(os.path.abspath(workdir))
    sweep = os.path.dirname(up)
    return sweep if os.path.basename(up) == "runs" and kind_of(sweep) == "sweep" else ""


def check_kind(path: str, kind: str, also: frozenset[str] = frozenset()) -> None:
    """Refuses to make a run ('run') or a sweep ('sweep') in `path` when it is, or lies inside,
    a directory of another kind: a run written into a sweep's folder or into another run's
    checkpoints/ mixes their files (reports and evaluations then pick up strays). A sweep's
    runs lie inside it (DIR/runs/NAME), and no other run or sweep does (`also`: its report's)."""
    if not path:
        raise UserError(f"workdir is empty; expected the directory of the {kind}.")
    full = os.path.realpath(path)  # as training uses it ('~' expanded by `as_path` before)
    if os.path.exists(full) and not os.path.isdir(full):
        raise UserError(f"workdir {path!r} is a file; expected a directory (new or the {kind}'s).")
    found = kind_of(full)
    if found and found != kind:
        what = (
            "an exported run (`ae-jax export`'s output)"
            if found == "export"
            else f"a {found}'s directory"
        )
        raise UserError(
            f"workdir {path!r} is {what}; expected a new directory or the {kind}'s own (a "
            "sweep's runs are in DIR/runs/NAME)."
        )
    up = os.path.dirname(full)  # first: a folder inside a run's takes no run however empty
    home = False  # inside a sweep's runs/: the sweeps further up hold that sweep, not this
    while up != os.path.dirname(up):
        inside = kind_of(up)
        in_runs = (full + os.sep).startswith(os.path.join(up, "runs") + os.sep)
        # (a sweep's runs lie in its runs/, and no other run inside it: its reports skip them)
        if inside == "run" or (inside == "sweep" and not home and in_runs == (kind == "sweep")):
            raise UserError(
                f"workdir {path!r} lies inside {up!r}, a {inside}'s directory; expected a "
                f"{kind} directory of its own, outside it."
            )
        home = home or (inside == "sweep" and in_runs)
        up = os.path.dirname(up)
    if not found and os.path.isdir(full):
        _check_no_foreign_files(path, full, kind, also)


# What a run's or a sweep's directory can hold before it is one (`kind_of`): a run claimed by
# a sweep (its lock, a failure to retry) or killed before its config was written; a sweep
# killed before its first sweep.json. A run's JSON files hold the keys of _KEYS, its checkpoints/
# epochs alone (a folder's own config.json, checkpoints/model.pt were taken for a run's: a probe).
_STARTED = {
    "run": (LOCK, FAILED, CHECKPOINTS, CONFIG, PREPROCESSOR),
    "sweep": (SWEEP, SWEEP_CONFIG, SWEEP_NAMED, REPORT_METRICS, "runs"),
}
_KEYS = {CONFIG: SECTIONS, PREPROCESSOR: ("input_columns", "kinds", "offset", "scale")}


def _holds(path: str, keys) -> bool:
    """Whether `path` can be a started run's: a JSON object with `keys` (none: any file), or
    checkpoints/ of entries named by their epoch (12, 12.tmp-99, ...)."""
    if os.path.basename(path) == CHECKPOINTS:
        with contextlib.suppress(OSError):
            return all(n[:1].isdigit() or n.startswith(".") for n in os.listdir(path))
        return False
    with contextlib.suppress(OSError, ValueError), open(path) as f:
        return not keys or (isinstance(d := json.load(f), dict) and all(k in d for k in keys))
    return not keys


def _check_no_foreign_files(path: str, full: str, kind: str, also: frozenset[str]) -> None:
    """Refuses a folder holding runs (a run among them makes them unusable: each then lies in a
    run's directory) or files no started run or sweep writes (the run would write config.json,
    eval.json, figures/ among them, replacing theirs); hidden ones (.DS_Store) are ignored."""
    names = sorted(n for n in os.listdir(full) if not n.startswith("."))
    if runs := [n for n in names if kind_of(os.path.join(full, n)) == "run"]:
        raise UserError(
            f"workdir {path!r} holds runs ({runs[:4]}{' ...' if len(runs) > 4 else ''}); "
            f"a {kind} written among them would make them unusable. Pass "
            f"{'one of them to continue it, or ' * (kind == 'run')}a new workdir for a new {kind}"
            f"{' (each of them is a run: `ae-jax train` continues one)' * (kind != 'run')}."
        )
    if kind == "run" and (lost := lost_config(full)):
        raise UserError(lost)
    if foreign := foreign_files(full, kind, also):
        again = "out of it, then rerun the same sweep command: it retries the run"  # (a review)
        other = f"out, or pass a new or empty workdir, e.g. {os.path.join(path, kind)!r}"
        raise UserError(
            f"workdir {path!r} is a folder of other files ({foreign[:4]}"
            f"{' ...' if len(foreign) > 4 else ''}), not a {kind}'s directory: the {kind} "
            f"would write its files among them (and replace any of the same names). Move them "
            f"{again if sweep_of(full) else other}."
        )


def foreign_files(full: str, kind: str = "run", also: frozenset[str] = frozenset()) -> list[str]:
    """The entries of directory `full` that no started `kind` writes (hidden ones aside)."""
    ours = lambda n: n in _STARTED[kind] and _holds(os.path.join(full, n), _KEYS.get(n))  # noqa: E731
    return [n for n in sorted(os.listdir(full)) if n[0] != "." and n not in also and not ours(n)]


@contextlib.contextmanager
def claim_run(workdir: str):
    """The run's `.lock`, held for a `with` block, once no sweep was launched into its directory
    since `check_kind` passed it (a `train` and a `sweep` started together into one new
    directory both passed: their files were mixed). A sweep records sweep_config.json before it
    looks for this lock (`shards.check_same_base`), so of two such launches one sees the other."""
    with WorkdirLock(workdir):
        if found := [n for n in (SWEEP, SWEEP_CONFIG) if os.path.exists(os.path.join(workdir, n))]:
            raise UserError(
                f"workdir {workdir!r} became a sweep's directory (its {found[0]}) while this run "
                "started: a sweep was launched into it at the same time; expected a directory of "
                "the run's own. Nothing of the run was written: pass another workdir."
            )
        for name in os.listdir(workdir) if os.path.isdir(workdir) else []:
            if _LEFT_BEHIND.fullmatch(name):  # (only the lock's holder writes them)
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(workdir, name))
        yield


# The temporary files of the run's writes that a kill -9 left behind: `files.write_atomic`'s
# (.summary.json.k3j9x_2q.tmp: mkstemp's eight characters) and a stop's state (PARTIAL.tmp).
_LEFT_BEHIND = re.compile(rf"\..+\.[a-z0-9_]{{8}}\.tmp|{re.escape(PARTIAL)}\.tmp")


def writable(workdir: str, what: str = "workdir", create: bool = True) -> None:
    """Creates `workdir` (with `create`); refuses one that cannot be written, before any work."""
    if os.path.islink(workdir) and not os.path.exists(workdir):  # ("cannot be created: File
        raise UserError(  # exists", it said)
            f"{what} {workdir!r} is a symbolic link to {os.readlink(workdir)!r}, which does not "
            f"exist; create that directory, or pass another {what}; nothing was written."
        )
    try:
        if create:
            os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise UserError(f"{what} {workdir!r} cannot be created: {e.strerror}.") from None
    if not os.access(workdir, os.W_OK):
        raise UserError(
            f"{what} {workdir!r} is not writable (a read-only file system, or another user's); "
            "make it writable or choose another workdir; nothing was written."
        )


def prepare(workdir: str, num_features: int, columns: list[str]) -> None:
    """Creates the workdir (figures/ is made by what draws in it); refuses one holding a run
    on other data."""
    writable(workdir)
    old = os.path.join(workdir, CONFIG)
    if os.path.exists(old):
        with open(old) as f:
            prev = json.load(f).get("dataset", {})
        if prev.get("num_features") not in (None, num_features):
            raise UserError(
                f"workdir {workdir!r} holds a model trained on {prev['num_features']} features "
                f"({prev.get('columns', [])[:6]}...), but this data has {num_features} "
                f"({columns[:6]}...). Use the same data, or a new workdir."
            )


def read_json(path: str, what: str, fix: str) -> dict:
    """A JSON file of the workdir, or a UserError naming it and the way out."""
    try:
        with open(path) as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is damaged ({what} that is not valid JSON: {e}); {fix}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is damaged ({what} that is not a JSON object); {fix}")
    return value


def lost_config(workdir: str, launch: bool = True) -> str:
    """Why `workdir` is a run that lost its config.json or preprocessor.json ("" when it is
    not): it holds what a run writes only after both (summary.json, metrics.jsonl, a
    checkpoint); said to a `launch`, or to a reader (load, evaluate, export, encode)."""
    has = lambda name: os.path.exists(os.path.join(workdir, name))  # noqa: E731
    later = [f for f in (SUMMARY, METRICS) if has(f)]
    later += [f"{CHECKPOINTS}/{e}" for e in sorted(checkpoint_epochs(workdir))[-1:]]
    gone = [f for f in (CONFIG, PREPROCESSOR) if not has(f)]
    if not gone or not later:
        return ""
    it = "it" if len(gone) == 1 else "them"
    why = (
        "what the run trained with (config.json) and how it encodes rows (preprocessor.json) "
        f"cannot be compared with this launch, nor its checkpoints read. Restore {it} from a "
        "copy, or move the run's directory aside to train it again"
        if launch
        else "the run's model (config.json) and how it encodes rows (preprocessor.json) are "
        f"not known, so it cannot be loaded. Restore {it} from a copy"
    )
    return (
        f"workdir {workdir!r} holds a run ({', '.join(later)}) whose {' and '.join(gone)} "
        f"{'is' if len(gone) == 1 else 'are'} gone (deleted or moved?): without {it}, {why}; "
        "nothing was changed."
    )


def saved_config(workdir: str, name: str = CONFIG) -> dict | None:
    """The flattened config of the run in `workdir` (or its file `name`; None: none yet, and a
    run that lost its config.json is refused: read as none, any config matched it)."""
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        if name == CONFIG and (lost := lost_config(workdir)):
            raise UserError(lost)
        return None
    what, fix = (
        "the run's config",
        (
            "restore it from a copy, or train into a new workdir (the checkpoints cannot be "
            "interpreted without it)"
        ),
    )
    if name != CONFIG:
        what = "the sweep's base config, as first launched"
        fix = "delete it: the next launch records its own (each run's config.json is still "
        fix += "compared with the launch's)"
    saved = read_json(path, what, fix)
    return config_lib.flatten_config({k: v for k, v in saved.items() if k in SECTIONS})


def check_intact(workdir: str) -> None:
    """Refuses to mark a run finished whose workdir lost files written when it started (deleted
    or moved while it trained: the process recreates only what it writes later, and a run
    marked done without its config could be neither resumed nor loaded)."""
    lost = [
        f for f in (CONFIG, PREPROCESSOR, METRICS) if not os.path.exists(os.path.join(workdir, f))
    ]
    if lost:
        raise UserError(
            f"workdir {workdir!r} lost {', '.join(lost)} while the run trained (deleted or "
            "moved?), so it is not marked done: without them it can be neither resumed nor "
            "loaded. Restore them from a copy, or train the run again (delete its checkpoints/ "
            "first, or use a new workdir)."
        )
