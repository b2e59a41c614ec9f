"""Experiment trackers behind the metric-writer interface: MLflow and Weights & Biases.

`open_writers(config, workdir, hparams, purge_step, step)` returns one writer for a run that
forwards to every logger `train.loggers` names: TensorBoard (`writers.MetricWriter`, DIR/tb/),
MLflow (`MlflowWriter`) and W&B (`WandbWriter`). The tracker packages are optional extras
(`pip install "ae_jax[trackers]"`) imported only when named. A resumed run continues its
tracker run: their ids are kept in DIR/trackers.json. What goes to a tracker: the
hyperparameters of `hparams.group_hparams` (the fields that differ from the defaults and the
swept ones) at the start; every per-epoch metric; the headline numbers and figures at the end.
"""

import contextlib
import os
import re
import time
import urllib.parse
import weakref
from typing import TYPE_CHECKING

from ae_jax import config as config_lib
from ae_jax import workdir as workdir_lib
from ae_jax.errors import UserError
from ae_jax.training import signals, writers

if TYPE_CHECKING:
    import wandb


def parse_loggers(config) -> list[str]:
    """train.loggers as a list (`config.parse_loggers`); train.tensorboard=False: no TB."""
    names = config_lib.parse_loggers(config.train.loggers)
    return [n for n in names if n != "tensorboard" or config.train.tensorboard]


def check(configs: list, workdirs: list[str]) -> None:
    """`check_one` for each distinct tracker setting of `configs` (one for a whole group), and
    `_check_mlflow_run` for each run that continues an MLflow run (its trackers.json)."""
    seen = set()
    for c in configs:
        key = (str(c.train.loggers), str(c.train.mlflow_uri), str(c.train.tracker_project))
        if key not in seen:
            seen.add(key)
            check_one(c)
    for c, w in zip(configs, workdirs, strict=True):
        if "mlflow" in parse_loggers(c) and _logs(c, w) and (run_id := _ids(w).get("mlflow")):
            _check_mlflow_run(c, w, run_id)


def _logs(config, workdir: str) -> bool:
    """Whether the run in `workdir` logs again to its tracker runs: unfinished (but for one
    that trained nothing, which may start new ones: `startup`) or extended."""
    saved, done = workdir_lib.saved_config(workdir) or {}, workdir_lib.finished_summary(workdir)
    unfinished = done is None and not workdir_lib.trained_nothing(workdir)
    return unfinished or saved.get("train.epochs", 0) < int(config.train.epochs)


def _check_mlflow_run(config, workdir: str, run_id: str) -> None:
    """Refuses to continue an MLflow run that its store no longer has, or has deleted: MLflow
    refused to log to it once the epochs were trained, with a traceback, on every rerun."""
    tagged = None
    try:
        with _one_quick_try():
            run = _mlflow_client(config).get_run(run_id)
        stage, tagged = run.info.lifecycle_stage, run.data.tags.get("ae_jax.workdir")
        why = "" if stage == "active" else f"it is {stage} (in MLflow's trash)"
    except Exception as e:  # noqa: BLE001 - MLflow raises many types
        said = _cause(e)
        if getattr(e, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":  # not a run gone:
            raise UserError(  # (a timeout, a refused login) nothing to give up on
                f"MLflow cannot be asked about the run {run_id} that workdir {workdir!r} logs "
                f"to (its {workdir_lib.TRACKERS}) at {_named_uri(config)}: {said}; expected "
                "the store it was created in, reachable; nothing was changed."
            ) from None
        why = f"the store has no such run ({said})"
    _refuse_a_copy(workdir, run_id, tagged)
    if why:
        raise UserError(
            f"workdir {workdir!r} logs to the MLflow run {run_id} (its {workdir_lib.TRACKERS}), "
            f"which the tracking URI {_named_uri(config)} cannot log to: {why}. Restore that "
            "run, point train.mlflow_uri at its store, or delete the 'mlflow' entry of "
            f"{workdir_lib.TRACKERS} to log the run to a new MLflow run."
        )


def _refuse_a_copy(workdir: str, run_id: str, tagged: str | None) -> None:
    """Refuses a workdir whose MLflow run is another workdir's, which still logs to it: a copy
    (cp -a) of a run continued its original's MLflow run, the copy's epochs in its history
    and the run named for the original (a probe). A moved workdir continues its run."""
    try:  # (the same directory by another path, a bind mount's: samefile, not the names)
        if not tagged or os.path.samefile(tagged, workdir):
            return
        shared = _ids(tagged).get("mlflow") == run_id
    except (OSError, UserError):  # gone (moved), or its trackers.json damaged: not its run
        shared = False
    if shared:
        raise UserError(
            f"workdir {workdir!r} logs to the MLflow run {run_id} (its {workdir_lib.TRACKERS}), "
            f"which belongs to workdir {tagged!r}, still logging to it: a copy of that run? Its "
            "epochs would go into that run's history. Delete the 'mlflow' entry of "
            f"{os.path.join(workdir, workdir_lib.TRACKERS)} to log this one to a new MLflow "
            "run; nothing was changed."
        )


def _cause(e: Exception, most: int = 300) -> str:
    """A tracker's exception in one line, cut at a word (it was cut mid-word: "See htt"). The
    model registry's refusal of a scheme, which MLflow's client raises for a tracking URI it
    has no store for, is said as that (it read as a registry setting to fix)."""
    if type(e).__name__ == "UnsupportedModelRegistryStoreURIException":
        return "this MLflow has no store for the URI's scheme"
    text = " ".join(str(e).split())
    space = text.rfind(" ", 0, most)
    cut = text if len(text) <= most else text[: space if space > 0 else most] + " ..."
    return f"{type(e).__name__}: {cut}"


def _named_uri(config) -> str:
    uri = _mlflow_uri(config)
    return repr(uri) if uri else f"{_mlflow_default_uri()!r} (MLflow's default)"


_WANDB_MODES = ("", "online", "offline", "shared", "disabled", "dryrun", "run")  # W&B's


def check_one(config) -> None:
    """Refuses tracker settings that would fail only when the trackers open, after compiling,
    with a tracker's traceback, and leave a run whose rerun with the setting fixed is refused as
    another config: an empty or (for W&B) ill-formed train.tracker_project, and an MLflow
    tracking URI its client cannot open (a database URI without SQLAlchemy, an unknown scheme,
    an unwritable folder), tried by opening it and looking the experiment up."""
    names = parse_loggers(config)
    project = str(config.train.tracker_project)
    if {"mlflow", "wandb"} & set(names) and not project.strip():
        raise UserError("train.tracker_project is empty; expected the tracker's project name.")
    if "wandb" in names and re.search(r"[/\\#?%:]", project):
        raise UserError(
            f"train.tracker_project {project!r}: W&B project names cannot hold any of "
            "/ \\ # ? % :; expected a plain name (the entity is W&B's own setting, "
            "WANDB_ENTITY)."
        )
    mode = os.environ.get("WANDB_MODE", "")  # (a typo raised a pydantic traceback after compiling)
    if "wandb" in names and mode not in _WANDB_MODES:
        raise UserError(f"WANDB_MODE={mode!r} (the environment's); expected online or offline.")
    if "mlflow" in names:
        try:
            with _one_quick_try():
                exp = _mlflow_client(config).get_experiment_by_name(project)
        except Exception as e:  # noqa: BLE001 - MLflow raises many types; all say the same
            raise UserError(
                f"MLflow cannot open the tracking URI {_named_uri(config)} (train.mlflow_uri, else "
                f"$MLFLOW_TRACKING_URI): {_cause(e)}; expected a local store, a folder's path "
                "or file:///ABSOLUTE/PATH URI, or a server's http(s):// URI (a database URI "
                "needs SQLAlchemy: pip install mlflow, not mlflow-skinny)."
            ) from None
        if exp is not None and exp.lifecycle_stage != "active":  # no run can be created in it
            raise UserError(
                f"MLflow's experiment {project!r} (train.tracker_project) at "
                f"{_named_uri(config)} is {exp.lifecycle_stage} (in MLflow's trash): no run can "
                f"be made in it. Restore it (mlflow experiments restore --experiment-id "
                f"{exp.experiment_id}), delete it for good (mlflow gc), or name another project."
            )


# The check's request to an MLflow server: tried once, for at most 20 s. With MLflow's own
# settings (7 retries with backoff, 120 s each) an unreachable server was refused after 251 s
# of urllib3's retry lines (a probe). The user's own settings of these are kept.
QUICK_TRY = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@contextlib.contextmanager
def _one_quick_try():
    added = [k for k in QUICK_TRY if k not in os.environ]
    os.environ.update({k: QUICK_TRY[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _mlflow_uri(config) -> str | None:
    return str(config.train.mlflow_uri) or os.environ.get("MLFLOW_TRACKING_URI") or None


def _mlflow_default_uri() -> str:
    """The URI MLflow's client opens when none is named (a SQLite file in MLflow 3)."""
    import mlflow

    return str(mlflow.get_tracking_uri())


def _mlflow_client(config):
    from mlflow.tracking import MlflowClient

    uri = _mlflow_uri(config)
    # A file store, named as a file: URI or a path, or MLflow's default where ./mlruns exists
    # (refused by MLflow 3 unless allowed: "expected a file:///PATH URI" of one given as such)
    scheme = urllib.parse.urlparse(uri or _mlflow_default_uri()).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # (C:\\mlruns: a Windows drive's path)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


def run_label(workdir: str) -> str:
    """A tracker run's name: the workdir's folder and name, a sweep's name for its runs/ folder
    (a sweep's runs were named by their overrides alone, K runs trained together seed=0 ...:
    two sweeps of one project gave runs of one name, told apart by no field in W&B)."""
    parts = os.path.abspath(workdir).split(os.sep)[-3:]
    return "/".join(parts[::2] if workdir_lib.sweep_of(workdir) else parts[-2:])


def _ids(workdir: str) -> dict:
    path = os.path.join(workdir, workdir_lib.TRACKERS)
    what = ("the run's tracker ids", "delete it to start new tracker runs")
    return workdir_lib.read_json(path, *what) if os.path.exists(path) else {}


def _save_id(workdir: str, name: str, run_id: str) -> None:
    ids = _ids(workdir)
    ids[name] = run_id
    workdir_lib.write_json(os.path.join(workdir, workdir_lib.TRACKERS), ids)


class MlflowWriter:
    """Logs to MLflow with its client API (no global active run, so K runs can log at once).

    The tracking URI is train.mlflow_uri, else $MLFLOW_TRACKING_URI, else MLflow's default; the
    experiment is train.tracker_project. An explicit file: URI opts in to MLflow's file store.
    """

    def __init__(self, config, workdir: str, hparams: dict, step: int = 0):
        from mlflow.entities import Param

        self.client = _mlflow_client(config)
        project = str(config.train.tracker_project)
        exp = self.client.get_experiment_by_name(project)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(project)
        self.last_step, self.failed = step, False
        self.run_id: str | None = _ids(workdir).get("mlflow")
        if self.run_id is None:
            run = self.client.create_run(
                exp_id,
                run_name=run_label(workdir),
                tags={"ae_jax.workdir": os.path.abspath(workdir)},
            )
            self.run_id = run.info.run_id
            _save_id(workdir, "mlflow", self.run_id)
            params = [Param(k, str(v)[:6000]) for k, v in sorted(hparams.items())]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _open_run(self) -> str:
        """The MLflow run's id (None once the writer is closed)."""
        assert self.run_id is not None, "MlflowWriter used after close()"
        return self.run_id

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.last_step = max(self.last_step, int(step))
        metrics = [Metric(k, float(v), now, int(step)) for k, v in scalars.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self._open_run(), metrics=metrics[i : i + 1000])

    def write_images(self, step: int, images) -> None:  # arrays stay in TensorBoard
        pass

    def write_figure(self, step: int, tag: str, path_or_fig) -> None:
        if isinstance(path_or_fig, str | os.PathLike):
            self.client.log_artifact(self.run_id, os.fspath(path_or_fig), "figures")
        else:
            self.client.log_figure(self._open_run(), path_or_fig, f"figures/{tag}.png")

    def write_text(self, tag: str, text: str) -> None:
        self.client.log_text(self._open_run(), text, f"{tag}.md")

    def write_hparams(self, hparams: dict, metrics: dict[str, float], failed: bool = False) -> None:
        # The headline numbers, at the last step; the per-epoch ones are there already.
        self.write_scalars(self.last_step, writers.not_per_epoch(metrics))
        self.failed = failed

    def flush(self) -> None:
        pass

    def close(self, stopped: bool = False, failed: bool = False) -> None:
        """Ends the MLflow run: FINISHED, FAILED for a diverged run or one an error ended
        (`failed`), or KILLED when a stop request ended the process (both showed as finished:
        probes); a resumed run continues it."""
        if self.run_id is not None:
            status = "KILLED" if stopped else "FAILED" if self.failed or failed else "FINISHED"
            self.client.set_terminated(self.run_id, status)
            self.run_id = None


class WandbWriter:
    """Logs to Weights & Biases: one W&B run per ae_jax run (several may be open at once),
    online or offline as W&B is set up (WANDB_MODE=offline writes DIR/wandb/ only); the project
    is train.tracker_project."""

    # The writers with a W&B run open: W&B's state is the process's, so it is torn down (for
    # its settings to be read again) only when none is (teardown finishes every open run).
    _open: "weakref.WeakSet[WandbWriter]" = weakref.WeakSet()

    def __init__(self, config, workdir: str, hparams: dict, step: int = 0):
        import wandb

        run_id, self.failed = _ids(workdir).get("wandb"), False
        try:
            self.run: wandb.Run | None = wandb.init(
                project=str(config.train.tracker_project),
                dir=workdir,
                name=run_label(workdir),
                notes=os.path.abspath(workdir),
                config=hparams,
                id=run_id,
                resume="allow" if run_id else None,
                reinit="create_new",
            )
        except wandb.errors.Error as e:  # (online without a key: a traceback, exit 1)
            if not WandbWriter._open:  # (WANDB_MODE=offline set then was refused: a probe)
                with contextlib.suppress(Exception):
                    wandb.teardown()
            raise UserError(
                f"train.loggers names 'wandb', but W&B cannot open a run for workdir "
                f"{workdir!r}: {_cause(e)}; expected "
                "W&B set up to log: an API key (WANDB_API_KEY, or `wandb login`) for its "
                "server, or WANDB_MODE=offline to write the run's wandb/ folder only (`wandb "
                "sync` uploads it later). Nothing was trained in this launch: run the same "
                "command again (or without 'wandb' in train.loggers)."
            ) from None
        WandbWriter._open.add(self)
        if run_id is None:
            _save_id(workdir, "wandb", self.run.id)
        self.step = step

    def _open_run(self) -> "wandb.Run":
        """The W&B run (None once the writer is closed)."""
        assert self.run is not None, "WandbWriter used after close()"
        return self.run

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        self.step = max(self.step, int(step))
        self._open_run().log({k: float(v) for k, v in scalars.items()}, step=self.step)

    def write_images(self, step: int, images) -> None:
        pass

    def write_figure(self, step: int, tag: str, path_or_fig) -> None:
        import wandb

        self._open_run().log({tag: wandb.Image(path_or_fig)}, step=self.step)

    def write_text(self, tag: str, text: str) -> None:  # the config is the W&B run's config
        pass

    def write_hparams(self, hparams: dict, metrics: dict[str, float], failed: bool = False) -> None:
        self._open_run().summary.update({k: float(v) for k, v in metrics.items()})
        self.failed = failed  # (a diverged run ends with exit code 1: W&B shows it failed)

    def flush(self) -> None:
        pass

    def close(self, stopped: bool = False, failed: bool = False) -> None:  # (no stop state)
        if self.run is not None:  # exit code 1: a diverged run, or one an error ended
            WandbWriter._open.discard(self)
            self.run.finish(exit_code=int(self.failed or failed))
            self.run = None


def open_writers(
    config, workdir: str, hparams: dict, purge_step: int | None, step: int = 0
) -> writers.MultiWriter:
    """The run's writers, one per logger of train.loggers (none: a writer that does nothing);
    `hparams`: the run's entry of `hparams.group_hparams`; `step`: the optimizer step the run is
    at (a resumed run's: its headline numbers go there even when it trains no further epoch)."""
    writer = writers.MultiWriter([], hparams)
    try:  # one that cannot open: those before it end (TensorBoard's file was left open)
        for name in parse_loggers(config):
            if name == "tensorboard":
                tb = os.path.join(workdir, workdir_lib.TENSORBOARD)
                writer.parts.append(writers.MetricWriter(tb, purge_step=purge_step, step=step))
            elif name == "mlflow":
                writer.parts.append(MlflowWriter(config, workdir, hparams, step))
            else:
                writer.parts.append(WandbWriter(config, workdir, hparams, step))
        writer.write_text("config", f"```json\n{config.to_json_best_effort(indent=2)}\n```")
    except BaseException as e:
        signals.end_trackers([writer], stopped=isinstance(e, KeyboardInterrupt))
        raise
    return writer
