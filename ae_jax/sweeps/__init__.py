"""Sweeps: declaring them (declare), naming and applying overrides (overrides), running them
(runner: groups, claims, shards, Ray; status: sweep.json) and reporting them (finished: the
runs read back; report).

`from ae_jax import sweeps` gives the names a config's `get_sweep()` and the launchers use.
"""

from ae_jax.sweeps.checks import expand
from ae_jax.sweeps.declare import chain, config_diff, named, product, random_search, zip_
from ae_jax.sweeps.overrides import apply_overrides, run_name, train_together
from ae_jax.sweeps.runner import plan, run_sweep, train_runs
from ae_jax.sweeps.shards import parse_shard, takes
from ae_jax.sweeps.status import Run, write_status

__all__ = [
    "Run",
    "apply_overrides",
    "chain",
    "config_diff",
    "expand",
    "named",
    "parse_shard",
    "plan",
    "product",
    "random_search",
    "run_name",
    "run_sweep",
    "takes",
    "train_runs",
    "train_together",
    "write_status",
    "zip_",
]
