"""Experiment trackers: MLflow against its local file store, Weights & Biases offline."""

import json
import os
import shutil
import signal
import struct

import pytest
from tensorboardX.proto import plugin_hparams_pb2 as hparams_pb

from ae_jax import experiment
from ae_jax import sweeps as sweep
from ae_jax.config import default_config
from ae_jax.configs import seed_sparse, seed_vae
from ae_jax.errors import UserError
from ae_jax.evaluation import finish
from ae_jax.sweeps import overrides as multi
from ae_jax.training import chunking, hparams, trackers, writers
from ae_jax.training.signals import Interrupted


def _config(**overrides):
    c = seed_sparse.get_config()  # loss.l1_weight = 1e-4 differs from the default 0
    c.train.epochs = 3
    return multi.apply_overrides(c, overrides)


def test_hparams_are_the_changed_and_the_swept_fields():
    a, b = _config(**{"train.seed": 0}), _config(**{"train.seed": 1})
    hp, hp_b = hparams.group_hparams([a, b])
    assert hp["loss.l1_weight"] == 1e-4 and hp["train.seed"] == 0  # changed; swept
    assert "optim.name" not in hp and "data.val_fraction" not in hp  # defaults, not swept
    assert len(hp) < 15
    assert hp_b == {**hp, "train.seed": 1}
    assert "train.seed" not in hparams.group_hparams([a])[0]  # seed 0 is the default


def test_a_sweeps_field_is_a_hyperparameter_of_every_run_and_tracker_settings_are_none(tmp_path):
    """A swept field at its default value in a group (its own shape: model.latent_dim, one
    group each) or a shard was left out of that run's hyperparameters, a blank in MLflow and
    W&B beside the other runs' values; and where metrics go (train.loggers, tracker_project,
    mlflow_uri) was logged as a hyperparameter (a probe). The sweep's overrides (sweep.json)
    name the swept fields of each of its runs; the fields that are no parameter are left out."""
    base = _config(**{"train.epochs": 1, "train.tracker_project": "mine"})
    base.eval.at_end, base.train.figures, base.train.log_seconds = False, False, 5.0
    default = default_config().model.latent_dim
    entries = [{"model.latent_dim": default}, {"model.latent_dim": 4}]
    sweep.run_sweep(base, entries, str(tmp_path))
    for entry in entries:
        run = tmp_path / "runs" / multi.run_name(entry)
        (hp,) = hparams.group_hparams([multi.apply_overrides(base, entry)], [str(run)])
        assert hp["model.latent_dim"] == entry["model.latent_dim"]
        assert not {"train.loggers", "train.tracker_project", "train.log_seconds"} & set(hp)
    at_default = multi.apply_overrides(base, entries[0])
    (alone,) = hparams.group_hparams([at_default], [str(tmp_path / "w")])  # no sweep's run
    assert "model.latent_dim" not in alone and "loss.l1_weight" in alone


def test_mlflow_gets_params_metrics_headline_and_figures_and_resumes_its_run(tmp_path):
    tracking = pytest.importorskip("mlflow.tracking")
    uri = f"file:{tmp_path / 'mlruns'}"
    c = _config(
        **{"train.loggers": "tensorboard,mlflow", "train.mlflow_uri": uri, "train.epochs": 2}
    )
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    client = tracking.MlflowClient(tracking_uri=uri)
    run_id = json.loads((tmp_path / "run" / "trackers.json").read_text())["mlflow"]
    run = client.get_run(run_id)
    assert run.data.params["loss.l1_weight"] == "0.0001" and "optim.name" not in run.data.params
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2]
    # Each epoch's point once: the headline numbers did not log eval/* a second time.
    assert [m.step for m in client.get_metric_history(run_id, "eval/mse")] == [1, 2]
    for key in ("recon/mse", "pca/mse", "ae_over_pca", "eval/mse"):
        assert key in run.data.metrics, key
    # The headline numbers at the last epoch's step, where the run's curves end.
    assert [m.step for m in client.get_metric_history(run_id, "ae_over_pca")] == [2]
    artifacts = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert "figures/learning_curves.png" in artifacts
    assert run.info.status == "FINISHED"
    # More epochs into the same workdir continue the same MLflow run.
    c.train.epochs = 3
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "trackers.json").read_text())["mlflow"] == run_id
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3]
    assert (tmp_path / "run" / "tb").is_dir()  # TensorBoard as well


def test_a_relative_mlflow_store_is_recorded_absolute_and_a_changed_one_is_a_config_change(
    tmp_path, monkeypatch
):
    """train.mlflow_uri=relstore (a folder's path) was recorded as typed: a rerun from another
    directory was told the store had no such run, and, pointed at the store's absolute path,
    that it changed the config (a probe). Recorded absolute as data.path is; and a trained
    run's store changed is refused as a config change before the store is looked in (its
    advice, to delete trackers.json's entry, met the config-change refusal next)."""
    tracking = pytest.importorskip("mlflow.tracking")
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    run = str(tmp_path / "run")
    monkeypatch.chdir(tmp_path / "a")
    c = _config(**{"train.loggers": "mlflow", "train.mlflow_uri": "relstore", "train.epochs": 1})
    c.train.figures = c.eval.at_end = False
    experiment.train_and_evaluate(c, run)
    store = str(tmp_path / "a" / "relstore")
    assert (
        json.loads((tmp_path / "run" / "config.json").read_text())["train"]["mlflow_uri"] == store
    )
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(UserError, match=r"another config; .*train.mlflow_uri: '/.*/a/relstore' ->"):
        experiment.train_and_evaluate(c, run)  # relative to b/: another store
    c.train.mlflow_uri = f"file://{tmp_path / 'elsewhere'}"
    with pytest.raises(UserError, match=r"another config; .*train.mlflow_uri: "):
        experiment.train_and_evaluate(c, run)
    assert sorted(os.listdir(tmp_path / "b")) == [] and not (tmp_path / "elsewhere").exists()
    c.train.mlflow_uri, c.train.epochs = store, 2  # its absolute path: the same run, continued
    experiment.train_and_evaluate(c, run)
    run_id = json.loads((tmp_path / "run" / "trackers.json").read_text())["mlflow"]
    history = tracking.MlflowClient(tracking_uri=store).get_metric_history(run_id, "train/loss")
    assert [m.step for m in history] == [1, 2]


def test_a_deleted_mlflow_run_or_experiment_is_refused_before_any_work(tmp_path, monkeypatch):
    """An extension of a run whose MLflow run was deleted trained an epoch, then MLflow's
    traceback, on every rerun; a new run under a deleted experiment failed likewise after
    compiling, leaving a half-made workdir (a probe). Both are refused first, changing nothing;
    a finished run rerun as it was logs nothing and is not refused."""
    tracking = pytest.importorskip("mlflow.tracking")
    uri = f"file:{tmp_path / 'mlruns'}"
    c = _config(**{"train.loggers": "mlflow", "train.mlflow_uri": uri, "train.epochs": 2})
    c.train.figures = c.eval.at_end = False
    run = tmp_path / "run"
    experiment.train_and_evaluate(c, str(run))
    client = tracking.MlflowClient(tracking_uri=uri)
    run_id = json.loads((run / "trackers.json").read_text())["mlflow"]
    client.delete_run(run_id)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert experiment.train_and_evaluate(c, str(run))[0]["epoch"] == 2  # as it was: reused
    c.train.epochs = 3
    said = rf"logs to the MLflow run {run_id} \(its trackers.json\), .*: it is deleted \(in "
    with pytest.raises(UserError, match=said):
        experiment.train_and_evaluate(c, str(run))
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before

    # Not reachable, or refused (not a run gone): said, with no advice to give the run up.
    def unreachable(self, run_id):
        raise ConnectionError("Connection reset by peer")

    with monkeypatch.context() as m:
        m.setattr(tracking.MlflowClient, "get_run", unreachable)
        with pytest.raises(UserError, match=r"MLflow cannot be asked about the run .*Connec"):
            experiment.train_and_evaluate(c, str(run))
    # A store that has no such run at all (another store's id; one emptied and made again).
    (run / "trackers.json").write_text(json.dumps({"mlflow": "0" * 32}))
    with pytest.raises(UserError, match=r"cannot log to: the store has no such run"):
        experiment.train_and_evaluate(c, str(run))
    # A finished run rerun as it was reads no tracker file, a damaged one included.
    c.train.epochs = 2
    (run / "trackers.json").write_text('{"mlflow": "')
    assert experiment.train_and_evaluate(c, str(run))[0]["epoch"] == 2
    client = tracking.MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.get_experiment_by_name("ae_jax").experiment_id)
    with pytest.raises(UserError, match=r"experiment 'ae_jax' .* is deleted \(in MLflow's trash"):
        experiment.train_and_evaluate(c, str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_a_copied_workdir_does_not_log_into_its_originals_mlflow_run(tmp_path):
    """cp -a of a run, extended: the copy continued the original's MLflow run (its
    trackers.json copied), its epochs in that run's history, the run named for the original
    (a probe). Refused while the original still logs to that run; a moved workdir continues
    its own; with the copy's 'mlflow' entry deleted it logs to a new MLflow run."""
    tracking = pytest.importorskip("mlflow.tracking")
    uri = f"file:{tmp_path / 'mlruns'}"
    c = _config(**{"train.loggers": "mlflow", "train.mlflow_uri": uri, "train.epochs": 1})
    c.train.figures = c.eval.at_end = False
    a, b = tmp_path / "a", tmp_path / "b"
    experiment.train_and_evaluate(c, str(a))
    run_id = json.loads((a / "trackers.json").read_text())["mlflow"]
    shutil.copytree(a, b)
    c.train.epochs = 2
    with pytest.raises(
        UserError,
        match=rf"workdir '{b}' logs to the MLflow run {run_id} \(its trackers.json\), which "
        rf"belongs to workdir '{a}', still logging to it: a copy of that run\?",
    ):
        experiment.train_and_evaluate(c, str(b))
    moved = tmp_path / "moved"
    a.rename(moved)  # the original gone from its place: the copy is that run, moved
    shutil.rmtree(b)
    experiment.train_and_evaluate(c, str(moved))
    assert json.loads((moved / "trackers.json").read_text())["mlflow"] == run_id
    shutil.copytree(moved, b)
    (b / "trackers.json").write_text("{}")
    c.train.epochs = 3
    experiment.train_and_evaluate(c, str(b))
    assert json.loads((b / "trackers.json").read_text())["mlflow"] != run_id
    client = tracking.MlflowClient(tracking_uri=uri)
    steps = [m.step for m in client.get_metric_history(run_id, "eval/loss")]
    assert len(steps) == 2  # the original's epochs 1 and 2, none of the copy's


class _StopWhen:
    """Stands in for StopRequests: a SIGTERM once `ready()` says so."""

    def __init__(self, ready):
        self.ready = ready

    @property
    def signum(self):
        return signal.SIGTERM if self.ready() else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


@pytest.mark.parametrize(
    "when", ["after epoch 1", "while evaluating", "while writing figures and summaries"]
)
def test_a_stopped_run_is_killed_in_mlflow_and_finished_by_its_resume(tmp_path, monkeypatch, when):
    """A run stopped by SIGTERM was FINISHED in MLflow, like one that ended (a probe), and one
    stopped while evaluated stayed RUNNING (another): it is KILLED, MLflow's status for it,
    until the rerun that resumes it finishes it. Stopped while written (its finishing step
    left undone, as a stop leaves it), it is KILLED too, not FAILED."""
    tracking = pytest.importorskip("mlflow.tracking")
    uri = f"file:{tmp_path / 'mlruns'}"
    c = _config(**{"train.loggers": "mlflow", "train.mlflow_uri": uri, "train.figures": False})
    metrics, trained = tmp_path / "r" / "metrics.jsonl", []
    if when == "after epoch 1":  # once the first epoch is in metrics.jsonl
        stop = _StopWhen(lambda: metrics.exists() and metrics.read_text().strip())
    elif when == "while writing figures and summaries":

        def cancelled(*args):  # a stop now: its finishing step ends, as a stop ends it, undone
            trained.append(1)

        monkeypatch.setattr(finish, "finish_run", cancelled)
        stop = _StopWhen(lambda: trained)
    else:  # once training's summary table is logged
        log_summary = chunking.log_summary
        monkeypatch.setattr(
            chunking, "log_summary", lambda *a, **k: (log_summary(*a, **k), trained.append(1))
        )
        stop = _StopWhen(lambda: trained)
    monkeypatch.setattr(experiment, "StopRequests", lambda: stop)
    # (written on the finishing thread: the stop may be seen first as evaluation ends)
    said = "(after evaluating|while writing)" if "writing" in when else when
    with pytest.raises(Interrupted, match=f"stopped by SIGTERM {said}"):
        experiment.train_and_evaluate(c, str(tmp_path / "r"))
    client = tracking.MlflowClient(tracking_uri=uri)
    run_id = json.loads((tmp_path / "r" / "trackers.json").read_text())["mlflow"]
    assert client.get_run(run_id).info.status == "KILLED"
    monkeypatch.undo()
    experiment.train_and_evaluate(c, str(tmp_path / "r"))
    assert client.get_run(run_id).info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3]


def test_the_headline_has_a_vaes_bounds_whatever_they_are_named(tmp_path):
    """Bernoulli cross-entropy on grey digits is no log-likelihood: its bounds are named
    vae/bce_bound and vae/bce_iwae_bound, and those reach the trackers as vae/iwae would."""
    c = seed_vae.get_config()
    c.train.epochs, c.train.figures, c.eval.iw_samples = 1, False, 4
    experiment.train_and_evaluate(c, str(tmp_path / "run"))
    bounds = json.loads((tmp_path / "run" / "eval.json").read_text())
    scalars = writers.read_scalars(str(tmp_path / "run" / "tb"))
    for key in ("vae/bce_bound", "vae/bce_iwae_bound"):
        assert [v for _, v in scalars[key]] == [pytest.approx(bounds[key], rel=1e-6)], key


def test_wandb_offline_logs_every_run_of_a_group(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    base = _config(**{"train.loggers": "wandb", "train.epochs": 2})
    runs = [{"train.seed": 0}, {"train.seed": 1}]
    multi.train_together(base, runs, str(tmp_path))
    # W&B's service process writes the run files; what it has not yet flushed when they are
    # read here (one CI run on a busy machine found no summary record) is written by teardown,
    # which waits for all of it (as a launcher's exit does, through W&B's atexit hook).
    wandb.teardown()
    for o in runs:
        workdir = tmp_path / multi.run_name(o)
        run_id = json.loads((workdir / "trackers.json").read_text())["wandb"]
        (offline,) = [d for d in os.listdir(workdir / "wandb") if d.endswith(run_id)]
        records = _wandb_records(workdir / "wandb" / offline / f"run-{run_id}.wandb")
        summary = {
            i.key
            for r in records
            if r.WhichOneof("record_type") == "summary"
            for i in r.summary.update
        }
        assert {"recon/mse", "ae_over_pca", "eval/mse"} <= summary
        history = [r for r in records if r.WhichOneof("record_type") == "history"]
        assert len(history) == 2  # one per epoch, the headline and figures at the last
        # ... at metrics.jsonl's steps (a step one off passed: a mutation check)
        steps = _wandb_steps(records)
        rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
        assert steps == [row["step"] for row in rows]
        (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        config = {i.key: i.value_json for i in run.config.update}
        assert config["train.seed"] == str(o["train.seed"]) and "loss.l1_weight" in config
        assert "optim.name" not in config
        media = os.listdir(workdir / "wandb" / offline / "files" / "media" / "images" / "figures")
        assert any(m.startswith("learning_curves") for m in media)
        assert not (workdir / "tb").exists()  # only the loggers asked for


def _wandb_steps(records) -> list:
    """The steps of an offline W&B run's history records (an item's key, or its nested key's
    parts, "_step")."""
    items = [i for r in records if r.WhichOneof("record_type") == "history" for i in r.history.item]
    return [json.loads(i.value_json) for i in items if (i.key or "/".join(i.nested_key)) == "_step"]


def _wandb_records(path):
    """The records of an offline W&B run file: a 7-byte header, then LevelDB-style log blocks
    of 32 KiB whose records (4-byte crc, 2-byte length, 1-byte type) hold Record protobufs."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, out, pending = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # block trailer or padding
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # a whole record, or the last piece of one
            out.append(wandb_internal_pb2.Record.FromString(pending))
    return out


def test_unknown_or_missing_logger_is_refused_before_work(tmp_path):
    with pytest.raises(UserError, match="train.loggers: unknown logger 'comet'"):
        experiment.train_and_evaluate(
            _config(**{"train.loggers": "tensorboard,comet"}), str(tmp_path)
        )
    assert not os.listdir(tmp_path)


def test_tracker_settings_that_cannot_work_are_refused_before_work(tmp_path, monkeypatch):
    """They failed when the trackers opened, after compiling, with MLflow's or W&B's traceback,
    and left a run whose rerun with the setting fixed was refused as another config (the
    tracker probe): refused first, nothing written."""
    tracking_lib = pytest.importorskip("mlflow.tracking")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # Set for this process by an earlier file: URI (trackers._mlflow_client), it lets MLflow
    # open a bare folder too.
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for fields, said in (
        # The cause said as what it is (it quoted MLflow's "model registry functionality is
        # unavailable", cut mid-word at 300 characters: a probe).
        (
            {"train.mlflow_uri": "bogus://x"},
            r"MLflow cannot open the tracking URI 'bogus://x' .*: this MLflow has no store for the "
            r"URI's scheme; expected a local store",
        ),
        ({"train.tracker_project": " "}, r"train.tracker_project is empty"),
    ):
        c = _config(**{"train.loggers": "tensorboard,mlflow", **fields})
        with pytest.raises(UserError, match=said):
            experiment.train_and_evaluate(c, str(tmp_path / "run"))
        assert not os.path.exists(tmp_path / "run")
    ok = _config(**{"train.loggers": "mlflow", "train.mlflow_uri": f"file:{tmp_path / 'ml'}"})
    trackers.check([ok], [str(tmp_path / "new")])  # a file store opens
    # ... and a folder's path, MLflow's default where ./mlruns holds a store: MLflow 3 refused
    # both, the latter saying "expected a file:///ABSOLUTE/PATH URI" of one (a probe).
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    bare = _config(**{"train.loggers": "mlflow", "train.mlflow_uri": str(tmp_path / "mlruns")})
    trackers.check([bare], [str(tmp_path / "new")])
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)  # (it holds ./mlruns, a store now)
    trackers.check([_config(**{"train.loggers": "mlflow"})], [str(tmp_path / "new")])
    # A server that does not answer: refused after one try, not MLflow's 7 retries with
    # backoff (251 s of urllib3's lines: a probe); the user's settings of those kept.
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    tried = []

    def unreachable(self, name):
        tried.append({k: os.environ.get(k) for k in trackers.QUICK_TRY})
        raise ConnectionError("Connection refused")

    monkeypatch.setattr(tracking_lib.MlflowClient, "get_experiment_by_name", unreachable)
    http = _config(**{"train.loggers": "mlflow", "train.mlflow_uri": "http://127.0.0.1:9/"})
    with pytest.raises(UserError, match=r"cannot open the tracking URI 'http://127.0.0.1:9/'"):
        trackers.check([http], [str(tmp_path / "new")])
    assert tried == [{"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "7"}]
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # only for the check
    pytest.importorskip("wandb")
    c = _config(**{"train.loggers": "wandb", "train.tracker_project": "me/project"})
    with pytest.raises(UserError, match=r"W&B project names cannot hold any of"):
        experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


def test_wandb_that_cannot_open_a_run_is_one_paragraph_and_the_rerun_trains(tmp_path, monkeypatch):
    """Online W&B without an API key: wandb.init's UsageError ended the launch with a
    traceback (exit 1; a probe). It is a UserError naming the setting and both ways out, and
    the same call trains once W&B is set up, in the same process too (W&B kept the settings it
    had read: WANDB_MODE=offline set after the refusal was refused again, a probe)."""
    wandb = pytest.importorskip("wandb")
    wandb.teardown()  # (what an earlier test left in this process)
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))  # no login here
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))  # ... nor there
    run = tmp_path / "run"
    c = _config(**{"train.loggers": "wandb", "train.epochs": 1})
    with pytest.raises(UserError) as e:
        experiment.train_and_evaluate(c, str(run))
    said = str(e.value)
    assert "train.loggers names 'wandb'" in said and "No API key configured" in said
    assert "WANDB_MODE=offline" in said and "WANDB_API_KEY" in said
    assert not (run / "summary.json").exists()
    monkeypatch.setenv("WANDB_MODE", "offline")  # the way out it names, in this process
    experiment.train_and_evaluate(c, str(run))
    wandb.teardown()
    assert json.loads((run / "summary.json").read_text())["status"] == "done"
    assert json.loads((run / "trackers.json").read_text())["wandb"]


def test_a_wandb_refusal_tears_wandb_down_only_when_no_run_of_ours_is_open(tmp_path, monkeypatch):
    """W&B's state is the process's: torn down on a refusal (its settings read again), it
    finished every open run, those of the group or sweep writing beside it (a review)."""
    wandb = pytest.importorskip("wandb")
    torn, finished = [], []

    class Run:
        id = "r1"

        def finish(self, exit_code=0):
            finished.append(exit_code)

    refusal = wandb.errors.UsageError("No API key configured.")
    answers = iter([Run(), refusal, refusal])

    def init(**kwargs):
        if isinstance(answer := next(answers), Exception):
            raise answer
        return answer

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setattr(wandb, "teardown", lambda *a, **k: torn.append(len(finished)))
    c = _config(**{"train.loggers": "wandb"})
    for name in "abc":
        os.makedirs(tmp_path / name)
    first = trackers.WandbWriter(c, str(tmp_path / "a"), {})
    with pytest.raises(UserError, match="W&B cannot open a run"):
        trackers.WandbWriter(c, str(tmp_path / "b"), {})
    assert torn == []  # the first run is open: left as it is
    first.close()
    with pytest.raises(UserError, match="W&B cannot open a run"):
        trackers.WandbWriter(c, str(tmp_path / "c"), {})
    assert torn == [1] and finished == [0]  # none open: torn down, after the first finished


def test_a_launch_that_trained_nothing_may_be_rerun_with_other_loggers(tmp_path, monkeypatch):
    """A launch whose W&B could not open left config.json (loggers 'tensorboard,wandb') and an
    empty metrics.jsonl; its rerun without W&B was refused as "a run trained with another
    config" (a probe), though nothing was trained. Now it trains; once a run has trained an
    epoch, its loggers are kept."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")

    def no_key(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(wandb, "init", no_key)
    run = str(tmp_path / "run")
    with pytest.raises(UserError, match="or without 'wandb' in train.loggers"):
        experiment.train_and_evaluate(_config(**{"train.loggers": "tensorboard,wandb"}), run)
    assert os.path.exists(os.path.join(run, "config.json"))
    # A tracker that did open saved its run's id (MLflow's, before W&B failed): the rerun with
    # other trackers starts new runs, not that one (a review).
    with open(os.path.join(run, "trackers.json"), "w") as f:
        json.dump({"mlflow": "0123abcd"}, f)
    experiment.train_and_evaluate(_config(**{"train.loggers": "tensorboard"}), run)
    assert not os.path.exists(os.path.join(run, "trackers.json"))
    saved = json.loads(open(os.path.join(run, "config.json")).read())
    assert saved["train"]["loggers"] == "tensorboard"
    assert json.loads(open(os.path.join(run, "summary.json")).read())["status"] == "done"
    os.remove(os.path.join(run, "summary.json"))  # unfinished, but it trained an epoch
    with pytest.raises(UserError, match="train.loggers: 'tensorboard' -> 'tensorboard,wandb'"):
        experiment.train_and_evaluate(_config(**{"train.loggers": "tensorboard,wandb"}), run)


def test_a_diverged_run_ends_as_a_failure_in_tensorboard_mlflow_and_wandb(tmp_path, monkeypatch):
    """A diverged run (summary.json's status) was a success in all three trackers, its NaN
    headline numbers beside finite ones (a probe): TensorBoard's session ends STATUS_FAILURE,
    MLflow's run FAILED, W&B's with exit code 1; a healthy run of the same group, a success."""
    tracking = pytest.importorskip("mlflow.tracking")
    wandb = pytest.importorskip("wandb")
    finished: dict[str, int | None] = {}
    monkeypatch.setattr(
        wandb.Run, "finish", lambda run, exit_code=None: finished.update({run.name: exit_code})
    )
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    loggers = {"train.loggers": "tensorboard,mlflow,wandb", "train.mlflow_uri": uri}
    base = _config(**loggers, **{"train.epochs": 2, "optim.name": "sgd", "optim.eps": None})
    base.model.output_activation = "identity"
    rates = [{"optim.learning_rate": 1e-3}, {"optim.learning_rate": 1e30}]
    status = sweep.run_sweep(base, rates, str(tmp_path / "s"))
    wandb.teardown()
    assert [r["status"] for r in status["runs"]] == ["done", "diverged"]
    client = tracking.MlflowClient(tracking_uri=uri)
    for entry, ok in zip(rates, (True, False), strict=True):
        run = tmp_path / "s" / "runs" / multi.run_name(entry)
        run_id = json.loads((run / "trackers.json").read_text())["mlflow"]
        assert client.get_run(run_id).info.status == ("FINISHED" if ok else "FAILED")
        [path] = [str(p) for p in (run / "tb").iterdir() if "tfevents" in p.name]
        values = {v.tag: v for e in writers._events(path) for v in e.summary.value}
        end = values["_hparams_/session_end_info"].metadata.plugin_data.content
        assert hparams_pb.HParamsPluginData.FromString(end).session_end_info.status == (
            1 if ok else 2
        )
        assert finished[f"s/{multi.run_name(entry)}"] == (0 if ok else 1)


@pytest.mark.parametrize("gone_first", [True, False])
def test_every_tracker_is_closed_whatever_another_raises(tmp_path, gone_first):
    """An MLflow server gone at the end: its close raised and TensorBoard's event file, after
    it in train.loggers, stayed open (a probe). Every part is closed; the error is still said."""

    class Gone:
        def close(self, stopped=False, failed=False):
            raise ConnectionError("MLflow unreachable")

    tb = writers.MetricWriter(str(tmp_path / "tb"))
    parts = [Gone(), tb] if gone_first else [tb, Gone()]
    with pytest.raises(ConnectionError, match="MLflow unreachable"):
        writers.MultiWriter(parts, {}).close(failed=True)
    assert tb._closed and tb._file._f.closed


@pytest.mark.parametrize(
    "where", ["opening", "training", "evaluating", "writing the run", "Ctrl-C in training"]
)
def test_a_run_an_error_ends_ends_failed_in_its_trackers(tmp_path, monkeypatch, where):
    """An error after the trackers opened, other than a stop, left TensorBoard's event file
    open (CI: its ResourceWarning surfaced in a later test) and MLflow's run RUNNING: both
    end, MLflow's run FAILED, wherever the error came from."""
    tracking = pytest.importorskip("mlflow.tracking")
    uri = f"file:{tmp_path / 'mlruns'}"
    c = _config(**{"train.loggers": "tensorboard,mlflow", "train.mlflow_uri": uri})
    c.train.epochs, c.train.figures = 1, False
    run, opened = tmp_path / "r", []

    def kept(writer, *args, **kwargs):
        opened.append(writer)
        metric_writer(writer, *args, **kwargs)

    def broken(*args, **kwargs):
        raise RuntimeError("broken here")

    metric_writer, evaluate_runs = writers.MetricWriter.__init__, experiment._evaluate
    monkeypatch.setattr(writers.MetricWriter, "__init__", kept)
    if where == "opening":  # the trackers opened, then the config's text refused
        monkeypatch.setattr(writers.MultiWriter, "write_text", broken)
    elif where == "training":
        monkeypatch.setattr(chunking, "log_epoch", broken)
    elif where == "Ctrl-C in training":  # Python's own (no handler of ours): a stop, KILLED
        monkeypatch.setattr(
            chunking, "log_epoch", lambda *a, **k: signal.default_int_handler(2, None)
        )
    elif where == "evaluating":
        monkeypatch.setattr(experiment, "_evaluate", broken)
    else:  # the run's workdir deleted while it trained: its eval.json is refused

        def deleted_then_evaluate(trained, stop):
            shutil.rmtree(run)
            return evaluate_runs(trained, stop)

        monkeypatch.setattr(experiment, "_evaluate", deleted_then_evaluate)
    with pytest.raises((RuntimeError, UserError, KeyboardInterrupt)):
        experiment.train_and_evaluate(c, str(run))
    (tb,) = opened
    assert tb._closed and tb._file._f.closed
    client = tracking.MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("ae_jax").experiment_id])
    assert found.info.status == ("KILLED" if "Ctrl-C" in where else "FAILED")


def test_a_misspelt_wandb_mode_is_refused_before_any_work(tmp_path, monkeypatch):
    """WANDB_MODE=offlne compiled, then wandb.init raised a 60-line pydantic traceback (exit 1)
    and left a workdir behind (a probe): refused up front, naming the variable."""
    monkeypatch.setenv("WANDB_MODE", "offlne")
    c = _config(**{"train.loggers": "wandb", "train.epochs": 1})
    with pytest.raises(UserError, match=r"^WANDB_MODE='offlne' \(the environment's\); expected"):
        experiment.train_and_evaluate(c, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("WANDB_MODE", "offline")  # (the check alone: no W&B run is opened)
    trackers.check_one(c)


def test_tracker_run_names_tell_sweeps_and_groups_apart(tmp_path):
    """A tracker run was named after its workdir's last folder alone: two sweeps' runs of one
    setting, or K runs trained together (seed=0 ...) in two projects, shared names, told apart
    in W&B by no field (a probe). The name keeps the folder (a sweep's, for its runs/)."""
    for name in ("sweep_a", "sweep_b"):
        (tmp_path / name / "runs").mkdir(parents=True)
        (tmp_path / name / "sweep.json").write_text("{}")
        run = tmp_path / name / "runs" / "model.latent_dim=4"
        assert trackers.run_label(f"{run}/") == f"{name}/model.latent_dim=4"
    assert trackers.run_label(str(tmp_path / "k2" / "seed=0")) == "k2/seed=0"
    assert trackers.run_label(str(tmp_path / "runs" / "vae")) == "runs/vae"  # no sweep's
    # A cause without a space is cut too (it was kept whole, its last letter dropped).
    assert len(trackers._cause(ValueError("x" * 1000))) == len("ValueError: ") + 300 + 4


def test_a_run_an_error_ends_ends_failed_in_wandb(tmp_path, monkeypatch):
    """W&B's run of a run an error ended exits with code 1, as MLflow's ends FAILED: an exit
    code of 0, a success in W&B's view, passed every test (a mutation check)."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    c = _config(**{"train.loggers": "wandb", "train.epochs": 2})
    c.train.figures = False

    def broken(*args, **kwargs):
        raise RuntimeError("broken here")

    monkeypatch.setattr(chunking, "log_epoch", broken)
    with pytest.raises(RuntimeError, match="broken here"):
        experiment.train_and_evaluate(c, str(tmp_path / "r"))
    wandb.teardown()
    run_id = json.loads((tmp_path / "r" / "trackers.json").read_text())["wandb"]
    (offline,) = [d for d in os.listdir(tmp_path / "r" / "wandb") if d.endswith(run_id)]
    records = _wandb_records(tmp_path / "r" / "wandb" / offline / f"run-{run_id}.wandb")
    exits = [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
    assert exits == [1]


def test_a_resumed_run_goes_on_in_its_own_wandb_run(tmp_path, monkeypatch):
    """A run extended (or resumed) logs to the W&B run it started, by the id trackers.json
    keeps, its history going on from the last step: a new W&B run for each process, the
    history split in two, passed every test (a mutation check)."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    c = _config(**{"train.loggers": "wandb", "train.epochs": 1})
    c.train.figures = False
    workdir = tmp_path / "r"
    experiment.train_and_evaluate(c, str(workdir))
    wandb.teardown()
    run_id = json.loads((workdir / "trackers.json").read_text())["wandb"]
    c.train.epochs = 2
    experiment.train_and_evaluate(c, str(workdir))
    wandb.teardown()
    assert json.loads((workdir / "trackers.json").read_text())["wandb"] == run_id
    # each process's offline folder holds the run's file (a folder started in the same second
    # as the one before it is named with a "-1" after the id)
    parts = sorted(d for d in os.listdir(workdir / "wandb") if d.startswith("offline-run-"))
    assert len(parts) == 2 and all(
        (workdir / "wandb" / d / f"run-{run_id}.wandb").exists() for d in parts
    )
    later = _wandb_records(workdir / "wandb" / parts[1] / f"run-{run_id}.wandb")
    (run,) = [r.run for r in later if r.WhichOneof("record_type") == "run"]
    assert run.run_id == run_id
    steps = _wandb_steps(later)
    rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    assert len(rows) == 2 and steps == [rows[1]["step"]]  # epoch 2's, after epoch 1's
