"""Files written whole or not at all: the one way ae_jax replaces a file a reader may be reading
(a run's JSON files and metrics.jsonl, a sweep's sweep.json, a report's tables and figures,
`ae-jax encode`'s output); JSON written so (`write_json`), keys in natural order; a path
argument as every entry point takes one (`as_path`) and the file it names (`real_path`)."""

import json
import os
import re
import tempfile

from ae_jax.errors import UserError


def write_atomic(path: str, write, binary: bool = False) -> None:
    """Calls `write(f)` on a temporary file beside `path`, then renames it to `path`, so a
    reader never sees half a file and a write killed midway leaves the previous one whole.

    A link is followed: its target is replaced. The file keeps the permissions of the one it
    replaces; a new one gets the user's umask. The temporary file is each writer's own:
    processes sharing a sweep write its sweep.json at the same moments, and with one shared
    name a writer renamed another's half-written file, then found its own gone
    (FileNotFoundError). The last rename wins. Text is written as UTF-8, without newline
    translation (csv's writer needs that)."""
    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.chmod(tmp, _mode(target))  # mkstemp's 0600 would make the file unreadable to others
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _mode(path: str) -> int:
    """The replaced file's permissions, or a new file's under the user's umask."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o7777
    try:  # read, not set: setting it would race other threads' files (Linux)
        with open("/proc/self/status") as f:
            umask = int(next(x for x in f if x.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def write_json(path: str, obj) -> None:
    """Writes `obj` as JSON, whole or not at all (`files.write_atomic`), every object's keys in
    natural order: pixel_2 before pixel_10, so a per-feature dict reads in feature order
    (sorted as text, pixel_0, pixel_1, pixel_10, pixel_100, ... scrambled an image's map)."""
    write_atomic(path, lambda f: json.dump(_natural_keys(obj), f, indent=2))


def _natural_keys(obj):
    if isinstance(obj, dict):
        return {k: _natural_keys(obj[k]) for k in sorted(obj, key=natural_key)}
    if isinstance(obj, list | tuple):
        return [_natural_keys(v) for v in obj]
    return obj


def natural_key(text) -> list:
    """A sort key that orders the numbers inside text by value ('x2' < 'x10') and the rest
    alphabetically, whatever the case ('age' < 'Region' < 'sex'; as text, capitals came
    first); names equal but for case keep a fixed order."""
    parts = re.split(r"(\d+)", str(text))
    return [int(t) if i % 2 else (t.casefold(), t) for i, t in enumerate(parts)]


def real_path(path: str) -> str:
    """The file a path names, whatever the way (~, relative, through links)."""
    return os.path.realpath(os.path.expanduser(path))


def as_path(value, what: str = "workdir") -> str:
    """A directory argument as a path string, `~` expanded as data.path's is: a str or
    os.PathLike; refuses anything else (an int, None, bytes) and "" (the current directory,
    by accident)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise UserError(
            f"{what}: expected a directory path, a non-empty str or os.PathLike; got {value!r} "
            f"({type(value).__name__})."
        )
    return os.path.expanduser(value)
