"""Files written whole or not at all: the one way ae_jax replaces a file a reader may be reading
(a run's JSON files and metrics.jsonl, a sweep's sweep.json, a report's tables and figures,
`ae-jax encode`'s output; an export's folder: `publish_folder`); JSON written so
(`write_json`), keys in natural order; a path argument as every entry point takes one
(`as_path`) and the file it names (`real_path`)."""

import contextlib
import errno
import fcntl
import json
import os
import re
import reprlib
import shutil
import stat
import tempfile

import ml_collections

from ae_jax.errors import UserError


def write_atomic(path: str, write, binary: bool = False, new: bool = False) -> None:
    """Calls `write(f)` on a temporary file beside `path`, then renames it to `path`, so a
    reader never sees half a file and a write killed midway leaves the previous one whole.

    A link is followed: its target is replaced. The file keeps the permissions of the one it
    replaces; a new one gets the user's umask. The temporary file is each writer's own:
    processes sharing a sweep write its sweep.json at the same moments, and with one shared
    name a writer renamed another's half-written file, then found its own gone
    (FileNotFoundError). The last rename wins. Text is written as UTF-8, without newline
    translation (csv's writer needs that). `new`: `path` must not exist, and FileExistsError
    is raised if it does when the file is complete: two `ae-jax encode` into one new output
    each replaced the other's. The complete file is hard-linked to `path` (which fails if it
    exists), so a writer killed midway leaves no file there: an empty claim made first was left
    by a kill -9, and refused the rerun as an existing output. Where hard links are not
    supported, `path` is claimed (created empty, exclusively) just before the rename."""
    target = os.path.realpath(path)
    made: list[str] = []
    claimed = False
    try:
        tmp = _temp_beside(target, write, binary, made)
        if not new:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system (some network and FUSE ones)
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _mode(target)))
            claimed = True
            os.replace(tmp, target)
        else:
            os.remove(tmp)
    except BaseException:
        for left in [*made, target] if claimed else made:  # (a claim: this writer's own)
            if os.path.exists(left) and (left in made or not os.path.getsize(left)):
                os.remove(left)
        raise


def _temp_beside(target: str, write, binary: bool, made: list[str]) -> str:
    """A temporary file beside `target` (named in `made` as soon as it exists, for the caller
    to remove on failure) holding what `write(f)` writes, with `target`'s permissions."""
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    made.append(tmp)
    with open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline="") as f:
        write(f)
    os.chmod(tmp, _mode(target))  # mkstemp's 0600 would make the file unreadable to others
    return tmp


# An existing empty folder being published into: the claim and (a prefix of) the folder
# filled first.
CLAIM, FILLING = ".claimed", ".filling"


def publish_folder(path: str, fill, last: tuple[str, ...] = ()) -> None:
    """Calls `fill(folder)` on a new temporary folder beside `path`, then renames it to
    `path`, which must not exist or be an empty folder: a reader never sees half of it, a
    writer killed midway leaves only the hidden temporary folder, and of two writers into
    one new `path` the second gets FileExistsError (two `ae-jax export` into one folder both
    said they exported, one of them lost, once the files of both mixed).

    An existing empty folder (a link's target, a mount point, the current directory, a shared
    group's setgid folder) is kept, not replaced: it is claimed by a locked file (CLAIM; a
    claim whose writer died is taken over, a writer finding any other file refuses), filled
    in a hidden folder inside it (FILLING, then a random suffix: its files get the folder's
    group and default ACLs), whose entries are then moved up, those named in `last` last (a
    folder holding an export's functions is read as an export). A stop midway empties it
    again, and what a killed writer left (its claim and fill folder) is cleared by the next:
    filled in place, a stopped export left half its files there, and the rerun was refused as
    a folder not empty (a probe)."""
    target = os.path.realpath(path)
    if os.path.isdir(target):
        _fill_inside(path, target, fill, last)
        return
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    try:
        fill(tmp)
        setgid = os.stat(tmp).st_mode & stat.S_ISGID  # (a shared group's parent's: kept)
        os.chmod(tmp, 0o777 & ~_umask() | setgid)  # (mkdtemp's 0700 would hide it from others)
        os.rename(tmp, target)  # (replaces an empty folder; a non-empty one: ENOTEMPTY)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY) and os.path.exists(target):
            raise FileExistsError(e.errno, "written by another process meanwhile", path) from e
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def leftover(name: str) -> bool:
    """Whether an entry of a folder being published into is a writer's own (its claim, its
    folder being filled), not one of the user's files."""
    return name == CLAIM or name.startswith(FILLING)


def _fill_inside(path: str, target: str, fill, last: tuple[str, ...]) -> None:
    """`publish_folder` into the existing empty folder `target` (see there). Each writer fills
    a folder of its own (FILLING and a suffix: a killed group member's, which another cannot
    remove, was in the way of the next one's), entries moved up only to names still free."""
    claim = os.path.join(target, CLAIM)
    fd = _claimed(path, claim)
    moved: list[str] = []
    filling = ""
    try:
        names = os.listdir(target)
        if not all(leftover(n) for n in names):
            raise FileExistsError(errno.EEXIST, "written by another process meanwhile", path)
        for name in names:  # (a killed writer's, where this user may remove it)
            if name.startswith(FILLING):
                shutil.rmtree(os.path.join(target, name), ignore_errors=True)
        try:
            filling = tempfile.mkdtemp(prefix=FILLING + ".", dir=target)
            fill(filling)
            for name in sorted(os.listdir(filling), key=lambda n: n in last):
                dst = os.path.join(target, name)
                if os.path.lexists(dst):  # (rename would replace a file put there meanwhile)
                    raise FileExistsError(errno.EEXIST, "written by another process", dst)
                os.rename(os.path.join(filling, name), dst)
                moved.append(dst)
            os.rmdir(filling)
        except BaseException:  # (a stop while moving up: the moved ones go too, a review)
            for done in [filling, *moved]:
                with contextlib.suppress(OSError):  # (the stop's exception, not a cleanup's)
                    if os.path.isdir(done):
                        shutil.rmtree(done)
                    else:
                        os.remove(done)
            raise
    finally:
        with contextlib.suppress(OSError):  # (gone with a stop; a sticky folder's: kept)
            if os.path.samestat(os.fstat(fd), os.stat(claim)):  # (not another's)
                os.remove(claim)
        os.close(fd)


def _claimed(path: str, claim: str) -> int:
    """An open descriptor of `claim`, locked by this open file (flock: another thread of this
    process is refused too, where lockf's locks are the process's) and still the file the path
    names (one removed by a writer that stopped, while this one waited to lock it, is no
    claim: two writers filled the folder at once, a review)."""
    for _ in range(3):
        fd = os.open(claim, os.O_CREAT | os.O_RDONLY, 0o666)  # (a group member's to take over)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):  # (ENOLCK: no locks there)
                raise
            raise FileExistsError(errno.EEXIST, "claimed by another process", path) from None
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(claim)):
                return fd
        os.close(fd)  # (its file was removed meanwhile: claim the one there now)
    raise FileExistsError(errno.EEXIST, "claimed by another process", path)


def _mode(path: str) -> int:
    """The replaced file's permissions, or a new file's under the user's umask."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # read, not set: setting it would race other threads' files (Linux)
        with open("/proc/self/status") as f:
            return int(next(x for x in f if x.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
        return umask


def write_json(path: str, obj) -> None:
    """Writes `obj` as JSON, whole or not at all (`files.write_atomic`), every object's keys in
    natural order: pixel_2 before pixel_10, so a per-feature dict reads in feature order
    (sorted as text, pixel_0, pixel_1, pixel_10, pixel_100, ... scrambled an image's map)."""
    write_atomic(path, lambda f: json.dump(_natural_keys(obj), f, indent=2))


def write_json_together(items: list[tuple[str, object]]) -> None:
    """Writes each (path, obj) as `write_json` does, all of them or none: every temporary file
    is written before the first is renamed (renames need no space; only a kill between them
    leaves some written)."""
    targets, made = [os.path.realpath(path) for path, _ in items], list[str]()
    try:
        for target, (_, obj) in zip(targets, items, strict=True):
            dump = lambda f, o=obj: json.dump(_natural_keys(o), f, indent=2)  # noqa: E731
            _temp_beside(target, dump, False, made)
    except BaseException:
        for tmp in made:
            if os.path.exists(tmp):
                os.remove(tmp)
        raise
    for tmp, target in zip(made, targets, strict=True):
        os.replace(tmp, target)


def free_name(path: str) -> str:
    """`path`, or `path@2`, `path@3`, ... the first that does not exist."""
    dest, n = path, 1
    while os.path.exists(dest):
        n += 1
        dest = f"{path}@{n}"
    return dest


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


def as_path(value, what: str = "workdir", kind: str = "directory") -> str:
    """A directory (or `kind`) argument as a path string, `~` expanded as data.path's is: a
    str or os.PathLike; refuses anything else (an int, None, bytes) and "" (the current
    directory, by accident)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        got = f"{reprlib.repr(value)} ({type(value).__name__})"
        if isinstance(value, ml_collections.ConfigDict):  # (its repr: the whole config)
            got = f"a {type(value).__name__}, a config"
            if what.startswith("workdir"):
                got += " (where a function takes both, the config comes first, the folder second)"
        raise UserError(
            f"{what}: expected a {kind} path, a non-empty str or os.PathLike; got {got}."
        )
    return os.path.expanduser(value)
