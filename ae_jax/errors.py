"""One error type for user mistakes (bad config, bad data, bad workdir).

Entry points run under `ae_jax.cli.cli_errors()`: a `UserError` prints as one paragraph
after `error: `, with no traceback, and exits with status 2; the message must say what is
wrong (field, file, column, row, value) and what is expected instead. `storage_error` tells a
full, read-only or forbidden disk (or a file where a directory belongs) from other failures
(it becomes such a message), and
`memory_error` XLA running out of memory (host or accelerator) from a full disk, which share
RESOURCE_EXHAUSTED; `closest` names what a misspelt name probably meant, `check_choice`
refuses a setting that is none of its choices, `quoted` quotes a value, cut short, and
`repeated` finds the names given twice.
"""

import collections
import difflib
import errno
import os
import re
from collections.abc import Sequence
from typing import Any


class UserError(ValueError):
    """A mistake the user can fix: bad config value, bad data file, wrong workdir."""

    def __init__(self, message: str):
        # Fold whitespace so multi-line f-strings print as one paragraph.
        super().__init__(" ".join(str(message).split()))


def check_choice(field: str, value: Any, valid: Sequence[str]) -> None:
    """Refuses a setting's `value` that is none of the `valid` choices."""
    if value not in valid:
        choices = ", ".join(map(repr, valid))
        hint = meant(value, valid)
        raise UserError(f"{field} {value!r} is not supported{hint}; expected one of {choices}")


QUOTED_CHARS = 60  # a value's characters quoted in a message: longer texts are cut short


def quoted(value: Any) -> str:
    """`repr(value)`, a text longer than `QUOTED_CHARS` cut to its start and its length (a
    100,000-character cell made an error of one 100,165-character line: a probe)."""
    if not isinstance(value, str) or len(value) <= QUOTED_CHARS:
        return repr(value)
    return f"{value[: QUOTED_CHARS - 20]!r}... ({len(value):,} characters)"


def repeated(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, sorted: one count of them all (a count per name
    took 4.3 s of a 20,000-column header's reading; numpy's unique, gigabytes for one long
    name, and it cut trailing NULs)."""
    return sorted(n for n, k in collections.Counter(names).items() if k > 1)


def meant(value, known) -> str:
    """ " (did you mean 'x'?)" for a misspelt text `value` of the `known` ones ("" if none)."""
    near = closest(value, [str(k) for k in known]) if isinstance(value, str) else ""
    return f" (did you mean {near!r}?)" if near else ""


def closest(name: str, known: list[str], cutoff: float = 0.6) -> str:
    """The known name `name` most likely meant ("" if none): one differing in case alone
    ('revenue' for 'Revenue'), else the shortest one it begins, itself first (a field set in
    the wrong section; a name cut short, loss.l1 for loss.l1_weight), else the most similar by
    difflib."""
    if same := [k for k in known if k != name and k.lower() == name.lower()]:
        return same[0]
    longer = sorted((k for k in known if k.startswith(name)), key=len)
    if name and longer:
        return longer[0]
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return close[0] if close else ""


_FREE = "free space or choose another workdir"
_FIX = "make the workdir writable or choose another"
_SHAPE = "remove or rename it (or choose another workdir)"
# errno -> (what the disk says, and its first line in an error's text) and what fixes it
_STORAGE = {
    errno.ENOSPC: ("no space left on device", "No space left on device", _FREE),
    errno.EDQUOT: ("disk quota exceeded", "Disk quota exceeded", _FREE),
    errno.EROFS: ("read-only file system", "Read-only file system", _FIX),
    errno.EACCES: ("permission denied", "Permission denied", _FIX),
    errno.EPERM: ("operation not permitted", "Operation not permitted", _FIX + " (chattr -i?)"),
    # A file where the run keeps a directory (figures/, tb/, checkpoints/), or the reverse.
    errno.EEXIST: ("a file stands where a directory is expected", "File exists", _SHAPE),
    errno.ENOTDIR: ("a file stands where a directory is expected", "Not a directory", _SHAPE),
    errno.EISDIR: ("a directory stands where a file is expected", "Is a directory", _SHAPE),
    # Each run trained holds three files until it is written (`runtime.raise_open_files_limit`).
    errno.EMFILE: (
        "too many open files",
        "Too many open files",
        "raise the limit on open files (ulimit -n; each run holds three while it trains) or "
        "train fewer runs together (train.num_models; a sweep's --max_models)",
    ),
}


def environment_error(e: BaseException) -> str | None:
    """What a launcher says of `e` when the machine refused the work (`memory_error`,
    `storage_error`: one met outside a training's writes, as a folder where a run keeps its
    summary.json), in one paragraph; None for any other error."""
    if (oom := memory_error(e)) is not None:
        return str(oom)
    if (storage := storage_error(e)) is not None:
        return f"{storage[0]}: {storage[1]}."
    return None


def storage_error(e: BaseException | None) -> tuple[str, str] | None:
    """What a full, read-only or forbidden disk, or a file where the workdir keeps a directory
    (or the reverse), looks like in `e` or its causes (orbax wraps them in ValueErrors with
    the errno's text, a figure worker's error comes back as text): (what, with the path where
    known; what fixes it), or None for any other error."""
    seen = set()
    while e is not None and id(e) not in seen and not isinstance(e, UserError):
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _STORAGE:
            what, _, fix = _STORAGE[e.errno]
            path = e.filename2 or e.filename  # a rename: the file it replaces, not the temporary
            return _named(e.errno, what, path), fix
        text = str(e)
        if "RESOURCE_EXHAUSTED" in text and _OUT_OF_MEMORY not in text.lower():
            return _STORAGE[errno.ENOSPC][0], _FREE  # tensorstore's full disk; XLA's OOM: not
        for code, (what, marker, fix) in _STORAGE.items():
            # Python's own text of the error, "[Errno 17] File exists: 'p'" (a rename's: "'a' ->
            # 'b'"), from a figure worker; a full or read-only disk in tensorstore's words too.
            found = re.search(rf"\[Errno {code}\] {marker}{_PATHS}", text)
            # tensorstore's: 'Failed to open directory: "/w/x": Not a directory [os_error_code=..'
            ts = re.search(rf"""(?:"([^"]*)": )?{marker} \[os_error_code='{code}'\]""", text)
            if found or ts or (code in _BARE and marker in text):
                path = (found and (found.group(4) or found.group(2))) or (ts and ts.group(1))
                return _named(code, what, path), fix
        e = e.__cause__ or e.__context__
    return None


# ": 'path'" or a rename's ": 'from' -> 'to'", each in ' or in " (groups 2 and 4), or nothing
_PATHS = r"""(?:: (['"])(.*?)\1(?: -> (['"])(.*?)\3)?)?"""
_BARE = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)  # said without an errno by tensorstore


def _named(code: int, what: str, path) -> str:
    """'what: path'. For a file where a directory is expected, that file (the error names the
    directory that could not be made inside it: evaluations/which=best, not evaluations);
    an existing folder where one is being made is said as such."""
    path = str(path or "")
    if code in (errno.EEXIST, errno.ENOTDIR) and path:
        at = path
        while at and not os.path.exists(at) and os.path.dirname(at) != at:
            at = os.path.dirname(at)
        if os.path.isfile(at):
            path = at
        elif code == errno.EEXIST and os.path.isdir(path):
            what = "a folder is in the way (left by an earlier attempt?)"
    return f"{what}: {path}".rstrip(": ")


_OUT_OF_MEMORY = "out of memory"  # XLA's RESOURCE_EXHAUSTED text when an allocation fails


def memory_error(e: BaseException | None) -> UserError | None:
    """XLA's failure to allocate memory (host or accelerator) in `e` or its causes, as one
    paragraph saying which settings size the computation; None for any other error. (It was
    read as a full disk, RESOURCE_EXHAUSTED being tensorstore's word for one too, and
    `ae-jax evaluate` printed its traceback.)"""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        if "RESOURCE_EXHAUSTED" in text and _OUT_OF_MEMORY in text.lower():
            line = next(ln for ln in text.splitlines() if _OUT_OF_MEMORY in ln.lower())
            return UserError(
                f"the computation ran out of memory ({line.strip()[:200]}); expected one that "
                "fits: for evaluation's importance-weighted pass, lower eval.iw_batch_rows or "
                "eval.iw_samples (a rerun of a run not yet evaluated may change them) or, with "
                "ae-jax evaluate, --iw_samples; for training, "
                "train.batch_size, train.num_models or the model's size. Nothing written "
                "before was lost."
            )
        e = e.__cause__ or e.__context__
    return None
