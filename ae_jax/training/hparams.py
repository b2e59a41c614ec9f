"""Which config fields a tracker shows as a run's hyperparameters (TensorBoard's hparams table,
MLflow's params, W&B's config): `group_hparams`."""

import json
import os
from collections.abc import Sequence

from ae_jax import config as config_lib
from ae_jax import reruns
from ae_jax import workdir as workdir_lib


def group_hparams(group: list, workdirs: Sequence[str] = ()) -> list[dict]:
    """Each config's fields worth a tracker's hyperparameter table: those that differ from
    `default_config()` or among the configs of `group`, and those the sweep that `workdirs`
    belong to overrides (`_swept`: a swept field at its default in this group, another group or
    another shard, was left out, a blank beside the others' values); never a field that is no
    parameter (`reruns.NOT_PARAMETERS`: where metrics go, how often to log). Each config is
    flattened once: comparing every run with every other took 1 s of a 64-run sweep."""
    flats = [config_lib.flatten_config(c.to_dict()) for c in group]
    defaults = config_lib.flatten_config(config_lib.default_config().to_dict())
    keys = {k for f in flats for k in f}
    varying = {k for k in keys if any(f.get(k) != flats[0].get(k) for f in flats[1:])}
    varying |= _swept(workdirs)
    return [
        {
            k: v
            for k, v in f.items()
            if (v != defaults.get(k) or k in varying) and k not in reruns.NOT_PARAMETERS
        }
        for f in flats
    ]


def _swept(workdirs: Sequence[str]) -> set[str]:
    """The fields overridden by any run of the sweep whose runs `workdirs` are (DIR/runs/NAME,
    listed in DIR/sweep.json, which a sweep's launch writes before it trains): {} for others."""
    keys: set[str] = set()
    for w in {os.path.abspath(w) for w in workdirs}:
        if not (sweep_dir := workdir_lib.sweep_of(w)):
            continue
        try:
            with open(os.path.join(sweep_dir, workdir_lib.SWEEP)) as f:
                runs = json.load(f)["runs"]
            if any(os.path.join(sweep_dir, e["workdir"]) == w for e in runs):
                keys |= {k for e in runs for k in e["overrides"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # no sweep's run, or a list it cannot be told from
    return keys
