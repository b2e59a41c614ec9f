"""A folder of runs as a sweep's entries, for `report` (`finished.py`): the runs of one
`ae-jax train` with train.num_models = K (DIR/seed=S/) or of `ae_jax.train_together`
(DIR/NAME/), each a run directory of DIR holding config.json, with overrides the fields their
configs differ in; and which fields of a run's saved config are no parameter of a report.
"""

import os

from ae_jax import config as config_lib
from ae_jax import reruns
from ae_jax import workdir as workdir_lib
from ae_jax.config.unused import unused_fields
from ae_jax.errors import UserError
from ae_jax.sweeps.report_figures import is_number


def unused_in(config: dict, defaults: dict) -> frozenset[str]:
    """The fields a run's saved config (flattened) leaves unused, a field it lacks (an older
    version's) at its default (`defaults`, the flattened default config): no parameter of the
    report (a sweep of data.name beside a data.path read instead reported its runs as settings
    of data.name, the same numbers on each: a probe). None of a config not saved."""
    return (
        frozenset(unused_fields({**defaults, **config}) & config.keys()) if config else frozenset()
    )


def subdir_runs(workdir: str) -> list[dict]:
    """The runs in DIR's subdirectories (those holding config.json) as sweep entries: the runs
    of one `ae-jax train` with train.num_models = K (DIR/seed=S/) or of `ae_jax.train_together`
    (DIR/NAME/). A run's overrides are the config fields whose values differ between the runs,
    fields no reported number depends on (`reruns.NOT_REPORTED`) excepted: {"train.seed": S}
    for K seeds, e.g. {"loss.l1_weight": w, "train.seed": s} for train_together."""
    if not os.path.isdir(workdir):
        what = "is a file" if os.path.exists(workdir) else "does not exist"
        raise UserError(f"workdir {workdir!r} {what}; expected a sweep's workdir.")
    names = sorted(
        (
            d
            for d in os.listdir(workdir)
            if os.path.isfile(os.path.join(workdir, d, workdir_lib.CONFIG))
            and workdir_lib.kind_of(os.path.join(workdir, d)) != "export"  # no run, a copy
        ),
        key=workdir_lib.natural_key,  # seed=2 before seed=10
    )
    if not names and workdir_lib.kind_of(workdir) == "export":
        raise UserError(
            f"workdir {workdir!r} is an exported run (`ae-jax export`'s output), not a sweep's "
            "directory: `ae-jax report` aggregates the runs of a sweep's --workdir, or of a "
            "directory of runs; the numbers of the run it was exported from are in that run's "
            "eval.json and summary.json."
        )
    if not names and os.path.isfile(os.path.join(workdir, workdir_lib.CONFIG)):
        raise UserError(
            f"{workdir!r} is one run's directory (it holds config.json), not a sweep's: "
            "`ae-jax report` aggregates the runs of a sweep's --workdir, or of a directory of "
            "runs; one run's numbers are its summary.json and eval.json (`ae-jax evaluate "
            "--workdir=RUN` prints them)."
        )
    inner = os.path.join(workdir, "runs")
    if (
        not names
        and os.path.isdir(inner)
        and any(workdir_lib.kind_of(os.path.join(inner, d)) == "run" for d in os.listdir(inner))
    ):  # a sweep's directory whose sweep.json is gone
        raise UserError(
            f"{workdir!r} has no sweep.json, but its runs/ holds a sweep's runs: rerun the "
            "sweep's command (ae-jax sweep --config=FILE --workdir=DIR), which writes "
            f"sweep.json anew and keeps the finished runs, or report on {inner!r} as a "
            "folder of runs."
        )
    if not names:
        raise UserError(
            f"{workdir!r} has no sweep.json (nor subdirectories holding runs, as train.num_models "
            "or ae_jax.train_together write: DIR/NAME/config.json), so it is not a sweep "
            "directory; run ae-jax sweep --config=FILE --workdir=DIR first."
        )
    saved = [workdir_lib.saved_config(os.path.join(workdir, d)) or {} for d in names]
    defaults = config_lib.flatten_config(config_lib.default_config().to_dict())
    unused = [unused_in(c, defaults) for c in saved]
    missing = object()  # a field one run's config lacks (an older version) differs too ...
    fields = sorted({k for c in saved for k in c} - reruns.NOT_REPORTED)
    # ... one it leaves unused does not, nor is it the run's parameter (`_unused`)
    used = lambda k: [c.get(k, missing) for c, u in zip(saved, unused, strict=True) if k not in u]  # noqa: E731
    differs = lambda vs: any(v != vs[0] for v in vs)  # noqa: E731 - (each field's values once)
    varied = [k for k in fields if differs(used(k))]
    configs = [
        {k: v for k, v in c.items() if k not in u} for c, u in zip(saved, unused, strict=True)
    ]
    # Only finished runs count as seeds: an unfinished copy (a launch killed before its first
    # checkpoint leaves config.json and preprocessor.json) has no numbers to count twice.
    done = [workdir_lib.finished_summary(os.path.join(workdir, d)) is not None for d in names]
    _refuse_copies(
        workdir,
        [d for d, f in zip(names, done, strict=True) if f],
        [{k: c.get(k) for k in varied} for c, f in zip(configs, done, strict=True) if f],
    )
    by_value = sorted(
        zip(names, configs, strict=True), key=lambda nc: [value_order(nc[1].get(k)) for k in varied]
    )  # settings in the order of their values (0.0001 before 0.001), as a sweep lists them
    return [
        {"index": i, "name": d, "overrides": {k: c[k] for k in varied if k in c}, "workdir": d}
        for i, (d, c) in enumerate(by_value)
    ]


def _refuse_copies(workdir: str, names: list[str], settings: list[dict]) -> None:
    """Refuses two runs of one config, seed included: copies of one run (a/, b/, c/ copied
    from one) were reported as n = 3 seeds of a setting, with a standard deviation of 0."""
    seen: dict[str, str] = {}
    for name, setting in zip(names, settings, strict=True):
        key = repr(sorted(setting.items()))
        if key in seen:
            raise UserError(
                f"{workdir!r}: runs {seen[key]!r} and {name!r} have the same config, seed "
                "included (copies of one run?), and the report would count one run's numbers "
                f"as two seeds of a setting. Move the copies out of {workdir!r}, or report on "
                "a folder holding each run once; nothing was written."
            )
        seen[key] = name


def value_order(value) -> tuple:
    """Numbers by value, then other values by their text, then None (or a field a run lacks)."""
    if is_number(value):
        return (0, float(value), "")
    return (1, 0.0, str(value)) if value is not None else (2, 0.0, "")
