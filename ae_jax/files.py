"""Files written whole or not at all: the one way ae_jax replaces a file a reader may be reading
(a run's JSON files, a sweep's sweep.json, a report's tables and figures)."""

import os
import tempfile


def write_atomic(path: str, write, binary: bool = False) -> None:
    """Calls `write(f)` on a temporary file beside `path`, then renames it to `path`, so a
    reader never sees half a file and a write killed midway leaves the previous one whole.

    The temporary file is each writer's own: processes sharing a sweep write its sweep.json at
    the same moments, and with one shared name a writer renamed another's half-written file,
    then found its own gone (FileNotFoundError). The last rename wins. Text is written as UTF-8,
    without newline translation (csv's writer needs that)."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the file unreadable to others
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
