"""A trained group's last writes, on the figure writer's finishing thread: each run's eval.json,
TensorBoard's figures and hyperparameters (`finish_run`, once its figures are drawn), then the
runs' summary.json, which marks them done (`Marks`).

A group's runs are marked done together, once all of them are written, when they saved
checkpoints: a run left unmarked by a kill or a stop is evaluated again from its final checkpoint
by the same command, in the group it was trained in, so its numbers are those of an
uninterrupted run. Marked one by one, the runs a kill left unmarked were evaluated again in a
smaller group, whose numbers differ in their last bits (a probe: ae_over_pca 1.7318843554 against
1.7318842911 of a group of 2). Without checkpoints an unmarked run trains again from epoch 1, so
each is marked as soon as it is written.
"""

import os

from ae_jax import files
from ae_jax import workdir as workdir_lib
from ae_jax.evaluation import evaluate
from ae_jax.training import loop, signals

# Evaluation numbers that also go to the hyperparameter table and the trackers.
HEADLINE = (
    "recon/mse",
    "pca/mse",
    "ae_over_pca",
    "code/near_zero_fraction",
    "vae/elbo",
    "vae/iwae",
    "vae/bce_bound",  # the same bounds where the likelihood is no log-density of the data
    "vae/bce_iwae_bound",
    "vae/mse_bound",
    "vae/active_units",
    "vae/total_correlation",
    "recon/numeric_mse",
    "recon/categorical_accuracy",
)


class Marks:
    """The summary.json writes of a group of `n` runs: `mark` one as each is written; `flush`
    (after the last) writes those held back. `together`: hold every one back until all `n`
    are written (none is written if one is not); else write each at once."""

    def __init__(self, n: int, together: bool):
        self.n, self.together = n, together
        self.held: list[tuple[str, dict]] = []

    def mark(self, workdir: str, summary: dict) -> None:
        if self.together:
            self.held.append((workdir, summary))
        else:
            mark_done([(workdir, summary)])

    def flush(self) -> None:
        if len(self.held) == self.n:
            mark_done(self.held)
        self.held = []


def mark_done(runs: list[tuple[str, dict]]) -> None:
    """Writes each run's summary.json ((workdir, summary) pairs): it is done (or diverged);
    all of them or none (on a full disk too)."""
    path = lambda w: os.path.join(w, workdir_lib.SUMMARY)  # noqa: E731
    files.write_json_together([(path(w), summary) for w, summary in runs])


def finish_run(
    marks: Marks, r: loop.Run, summary: dict, metrics: dict | None, figures: list[str]
) -> None:
    """A run's last writes, after its figures: eval.json, TensorBoard, then (`marks`)
    summary.json."""
    workdir_lib.check_intact(r.workdir)  # before any of them: none beside a lost config
    if metrics is not None:
        metrics["figures"] = [os.path.relpath(f, r.workdir) for f in figures]
        evaluate.write_eval(r.workdir, metrics)
    step = summary["step"]
    assert r.tb is not None  # opened by loop.train
    for path in figures:
        r.tb.write_figure(step, f"figures/{os.path.basename(path)[:-4]}", path)
    headline = {k: v for k, v in summary.items() if k.startswith("eval/") and v is not None}
    headline.update(
        {
            k: v
            for k, v in (metrics or {}).items()
            if k in HEADLINE and isinstance(v, int | float) and not isinstance(v, bool)
        }
    )
    r.tb.write_hparams(None, headline, failed=summary.get("status") == "diverged")
    r.tb.close()
    marks.mark(r.workdir, summary)


def trackers_left(runs: list[loop.Run], stop: signals.StopRequests, _type, error, _tb) -> None:
    """An ExitStack exit, before the group's locks are released: the trackers of runs whose
    finishing step did not end them (it failed, or a stop cancelled it or came before it) end
    as stopped or failed (a run whose workdir was deleted in training left TensorBoard's file
    open, and its MLflow run RUNNING)."""
    halted = isinstance(error, KeyboardInterrupt) if error else stop.signum is not None
    signals.end_trackers([r.tb for r in runs], stopped=halted)
