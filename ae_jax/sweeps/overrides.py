"""Many models at once: a base config plus K overrides, trained as one program.

    from ae_jax.sweeps import overrides
    overrides.train_together(get_config(), [{"loss.l1_weight": w, "train.seed": s}
                                        for w in (0.0, 1e-4) for s in range(3)], "/tmp/l1")

writes one workdir per run, `/tmp/l1/<name>/` (name e.g. `loss.l1_weight=0.0001,train.seed=2`),
each with the same files a separate run writes. Runs that differ in anything but
the vmappable scalars (`objective.HYPER_KEYS`) are refused with the differing
fields named; the sweep runner groups such runs instead.
"""

import copy
import hashlib
import json
import os

import ml_collections
import numpy as np

from ae_jax import config as config_lib
from ae_jax import data as data_lib
from ae_jax import experiment, reruns, runtime
from ae_jax import workdir as workdir_lib
from ae_jax.config.unused import unused_fields
from ae_jax.errors import UserError, closest
from ae_jax.training.group import check_groupable
from ae_jax.training.objective import HYPER_KEYS

# The vmappable scalars, held in float32 by the programs that train them.
_FLOAT32_FIELDS = {"optim.learning_rate", *(f"loss.{k}" for k in HYPER_KEYS[1:-1])}


def run_name(overrides: dict, limit: int | None = None) -> str:
    """A readable, stable directory name: 'loss.l1_weight=0.0001,train.seed=3' ('base' if empty).
    One longer than `limit` bytes (the file system's, `name_max`) is cut to a readable prefix
    and a hash of the whole name: many overrides named a directory no file system could make."""
    if not overrides:
        return "base"
    hidden = set(overrides.get("_named_keys", ())) | {"_name", "_named_keys"}
    parts = [str(overrides["_name"])] if "_name" in overrides else []
    for key, value in overrides.items():
        if key in hidden:
            continue
        text = format_value(value)
        parts.append(f"{key}={text}".replace("/", "_").replace(" ", ""))
    name = ",".join(parts)
    data = name.encode()
    if limit is None or len(data) <= limit:
        return name
    suffix = "~" + hashlib.sha256(data).hexdigest()[:16]
    return data[: limit - len(suffix)].decode(errors="ignore") + suffix


def name_max(directory: str) -> int:
    """The longest file name, in bytes, that the file system of `directory` (or of its nearest
    existing parent) takes: its PC_NAME_MAX, else 255 (Linux's and macOS's)."""
    path = os.path.abspath(directory)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        limit = os.pathconf(path, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or not asked
        return 255
    return limit if limit > 0 else 255


def format_value(value) -> str:
    """A value as a run name shows it: floats by %g where that reads back as the same float,
    else by their shortest round-trip form (1.0000001e-3 stays distinct from 1e-3); a list as
    the tuple it is in the config (JSON and YAML write tuples so), not '[...]' (the names of
    runs swept before 2026-12-03, whose orbax checkpoints the brackets made unreadable)."""
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def first_same(configs: list) -> tuple[int, int] | None:
    """The first two configs (i < j) that learn the same (fields that are no parameter aside:
    how a run executes, which figures and files it writes, `reruns.NOT_REPORTED`: two that
    differ in train.eval_batch_size are two settings of a report), or None: overrides that
    differ only in how they say it (a file as 'a.csv' and './a.csv'), or that set the base
    config's own values, train one run twice, which a report then counts as seeds."""
    seen: dict[str, int] = {}
    for j, c in enumerate(configs):
        flat = config_lib.flatten_config(c.to_dict())
        # (nor fields the rest leaves unused: data.name beside a data.path read instead, a probe)
        key = learned_key(flat, reruns.NOT_REPORTED | unused_fields(flat))
        if key in seen:
            return seen[key], j
        seen[key] = j
    return None


def learned_key(flat: dict, skip: frozenset[str]) -> str:
    """What a flattened config learns, as text two such configs share (`_as_learned`), its
    fields in `skip` aside."""
    learns = {k: _as_learned(k, v) for k, v in flat.items() if k not in skip}
    return json.dumps(learns, sort_keys=True, default=str)


def _as_learned(key: str, value):
    """A field's value as training uses it: a path made absolute; a vmappable scalar as the
    float32 its program holds (0.009 and 9 * 0.001 train bit for bit alike)."""
    if key in reruns.PATH_FIELDS and value:
        return os.path.abspath(os.path.expanduser(value))
    if key in _FLOAT32_FIELDS and isinstance(value, float):
        return float(np.float32(value)) + 0.0  # (-0.0 is 0.0: it trained one config twice)
    return value


def check_name(name: str, what: str) -> None:
    """A run name is one directory: not empty, no '/' or control character (a NUL ended the
    sweep in a traceback), not '.' or '..' or hidden."""
    bad = not name or os.sep in name or "/" in name or any(ord(ch) < 32 for ch in name)
    if bad or name.startswith("."):
        raise UserError(
            f"{what} {name!r} cannot name a run directory: it must be non-empty, "
            "hold no '/' or control character (NUL, a tab, a line break) and not start with '.'."
        )


def unknown_field(config: ml_collections.ConfigDict, key: str) -> str:
    """The refusal of an override of a field `config` does not have, naming the nearest."""
    fields = list(config_lib.flatten_config(config.to_dict()))
    near = closest(key, fields)
    hint = f"did you mean {near!r}?" if near else "fields look like 'loss.l1_weight'"
    if key in {f.split(".")[0] for f in fields}:  # {"loss": {"l1_weight": 0}}
        hint = f"{key!r} is a section: name each field with dots, as {f'{key}.FIELD'!r}"
    return f"override {key!r}: no such config field; {hint} (--helpconfig lists them)."


def check_fields(
    config: ml_collections.ConfigDict, overrides: list[dict], what: str = "sweep entry"
) -> None:
    """Every key of every override names a field of `config`: a misspelt one is refused before
    any run trains, not when its own run comes up."""
    fields = set(config_lib.flatten_config(config.to_dict()))
    for i, o in enumerate(overrides):
        for key in o:
            if not isinstance(key, str):  # (an AttributeError's traceback, exit 1)
                raise UserError(
                    f"{what} {i}: its key {key!r} is of type {type(key).__name__}; expected dotted "
                    "field names as text, such as 'loss.l1_weight'."
                )
            if key.startswith("_") and key.lstrip("_") in fields:  # a label, not that field
                raise UserError(
                    f"{what} {i} ({run_name(o)}): override {key!r}: a key starting with '_' "
                    f"is a label of the run's name, not the field {key.lstrip('_')!r}, which "
                    "stays as the base config sets it; write the field without the '_'."
                )
            if not key.startswith("_") and key not in fields:
                raise UserError(f"{what} {i} ({run_name(o)}): {unknown_field(config, key)}")


def plain(value):
    """A numpy scalar or array as its Python value (list), anything else as it is; a float32
    as the shortest decimal it prints as (np.float32(1e-3) -> 0.001, not 0.0010000000474...):
    entries built with np.arange or np.float32 are the values they hold."""
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return float(str(value))
    return value.tolist() if isinstance(value, np.generic | np.ndarray) else value


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: dict
) -> ml_collections.ConfigDict:
    """A copy of `config` with dotted-key overrides applied; unknown keys are a UserError."""
    c = copy.deepcopy(config)
    for key, value in overrides.items():
        if key.startswith("_"):  # Naming metadata (see sweep.named), not a config field.
            continue
        value = plain(value)  # np.int64(3) is 3 (ml_collections refuses a numpy scalar)
        if isinstance(value, list):  # JSON and YAML spell tuples as lists.
            value = tuple(value)
        node, *path = key.split(".")
        target = c
        try:
            for part in [node, *path[:-1]]:
                target = target[part]
            leaf = path[-1] if path else None
            if leaf is None or leaf not in target:
                raise KeyError(key)
            if isinstance(value, bool) and type(target[leaf]) in (int, float):  # (True: 1.0)
                raise TypeError
            target[leaf] = value
        except (KeyError, AttributeError):
            raise UserError(unknown_field(config, key)) from None
        except TypeError:
            current, kind = target[leaf], target.get_type(leaf)  # (a None field's: its type)
            split = kind is tuple and isinstance(value, int | float)  # an axis (64, 32), split
            raise UserError(
                f"override {key}={value!r}: expected {kind.__name__}"
                + (" or None" if current is None else "")
                + f" like the current value {current!r}, got {type(value).__name__}"
                + " (a tuple given as an axis of product() is split into its elements: write "
                "the axis as a list of tuples, [(64, 32)])" * split + "."
            ) from None
    return c


@runtime.progress_log()
def train_together(
    base: ml_collections.ConfigDict, overrides: list[dict], workdir: str, chunk_size: int = 0
) -> list[dict]:
    """Trains every override of `base` together; returns their summaries in order.

    Args:
      base: the base config.
      overrides: one dict of dotted keys -> values per run.
      workdir: parent directory; run i goes to `workdir/run_name(overrides[i])`.
      chunk_size: at most this many models in one program (0 = all); bounds memory
        for large K. Chunks of equal size reuse the compiled program.
    """
    if not isinstance(overrides, list | tuple) or not all(isinstance(o, dict) for o in overrides):
        raise UserError(
            "train_together: expected overrides as a list of dicts (dotted field -> value, one "
            f"dict per run); got {overrides!r:.120}."
        )
    if not overrides:
        raise UserError("train_together: the list of overrides is empty; give at least one run.")
    if (
        not isinstance(chunk_size, int | np.integer)
        or isinstance(chunk_size, bool)
        or chunk_size < 0
    ):
        raise UserError(
            f"train_together: chunk_size={chunk_size!r}; expected a whole number >= 0 (0: all "
            "models in one program)."
        )
    chunk_size = int(chunk_size)  # (np.int64(1) was refused, as run_sweep's max_models is not)
    overrides = [{k: plain(v) for k, v in o.items()} for o in overrides]
    config_lib.check_is_config(base)
    workdir = workdir_lib.as_path(workdir)
    check_fields(base, overrides, "train_together: run")
    configs = [apply_overrides(base, o) for o in overrides]
    names = [run_name(o, name_max(workdir)) for o in overrides]
    for i, name in enumerate(names):
        check_name(name, f"train_together: run {i}'s name")
    if len(set(names)) != len(names):
        i, j = next((i, j) for j, n in enumerate(names) for i in range(j) if names[i] == n)
        raise UserError(
            f"train_together: overrides {i} and {j} give the same run name {names[i]!r}; each "
            "must differ."
        )
    if (same := first_same(configs)) is not None:
        i, j = same
        raise UserError(
            f"train_together: overrides {i} ({names[i]}) and {j} ({names[j]}) train the same "
            "config (they differ only in how they say it, or set the base config's own "
            "values): every run must differ, so remove one of them."
        )
    check_groupable(configs)  # Before reading data or compiling anything.
    for i, c in enumerate(configs):
        try:
            config_lib.validate(c)
        except UserError as e:
            raise UserError(f"train_together: override {i} ({names[i]}): {e}") from None
    dataset = data_lib.load_dataset(configs[0].data)
    workdirs = [os.path.join(workdir, n) for n in names]
    size = chunk_size if chunk_size > 0 else len(configs)
    summaries = []
    for start in range(0, len(configs), size):
        summaries += experiment.train_group(
            configs[start : start + size], workdirs[start : start + size], dataset=dataset
        )
    return summaries
