"""Where an evaluation of a run goes (`evaluation_dir`): the run's own eval.json and figures, or
a folder of its evaluations/ named for what differs (the workdir contract, `workdir.py`, names
the files; this is the evaluation's choice among them)."""

import contextlib
import hashlib
import json
import os
import re

from ae_jax.files import real_path
from ae_jax.workdir import EVAL, EVALUATIONS, finished_summary, saved_config


def evaluation_dir(
    workdir: str,
    data_path: str = "",
    which: str = "latest",
    iw_samples: int | None = None,
    seed: int = 0,
    npz_key: str = "",
    epoch: int | None = None,
    data_digest: str = "",
) -> str:
    """Where an evaluation of the run in `workdir` goes: the run itself (eval.json, figures/)
    for its own (the validation split, latest checkpoint, the config's k, seed 0, as at the end
    of training) while it has none and has finished; else workdir/evaluations/NAME/, NAME
    listing the options ("which=best,data=new.csv") and, for a run not finished or a latest
    checkpoint not of its end, the checkpoint's `epoch`. Never replaced: the run's own
    eval.json (reports read it), and another file's evaluation of the same NAME (eval.json's
    `data_path`; the file's name in this NAME then ends with a hash of its path:
    "data=new.csv@1f0c9a2e"), nor the same file's of other rows or of rows not said
    (`data_digest`, which evaluations before December 2026 lack: the name then ends with
    `data_digest`'s start, "data=new.csv@5d41402a")."""
    safe = lambda text: re.sub(r"[^\w.=+-]", "_", text)  # noqa: E731 - a directory name
    parts = [f"which={which}"]
    if data_path:
        parts += [f"data={safe(os.path.basename(data_path))}"]
        parts += [f"npz_key={safe(npz_key)}"] if npz_key else []
    if iw_samples is not None and iw_samples != (saved_config(workdir) or {}).get(
        "eval.iw_samples"
    ):
        parts.append(f"iw_samples={iw_samples}")
    if seed:
        parts.append(f"seed={seed}")
    summary = finished_summary(workdir) or {}
    finished = bool(summary)
    # (the latest checkpoint of a finished run not of its end, checkpoints/END deleted, was
    # filed as the end's evaluation, which=latest: a probe)
    if epoch is not None and (not finished or which == "latest" and summary.get("epoch") != epoch):
        parts.append(f"epoch={epoch}")
    if parts == ["which=latest"] and finished and not os.path.exists(os.path.join(workdir, EVAL)):
        return workdir
    where, name = real_path(data_path), ",".join(parts)
    if data_path and _evaluated(os.path.join(workdir, EVALUATIONS, name))[0] not in (None, where):
        parts[1] += "@" + hashlib.sha256(where.encode()).hexdigest()[:8]  # another file's there
    path, said = _evaluated(os.path.join(workdir, EVALUATIONS, ",".join(parts)))
    if data_path and data_digest and path is not None and said != data_digest:
        parts[1] += "@" + data_digest[:8]  # this file's other rows (or not said: kept alike)
    return os.path.join(workdir, EVALUATIONS, ",".join(parts))


def _evaluated(evaluation: str) -> tuple[str | None, str | None]:
    """The file an evaluation directory's eval.json says it evaluated, and the digest of its
    rows (None: not said)."""
    with (
        contextlib.suppress(OSError, ValueError, AttributeError),
        open(os.path.join(evaluation, EVAL)) as f,
    ):
        saved = json.load(f)
        return saved.get("data_path"), saved.get("data_digest")
    return None, None
