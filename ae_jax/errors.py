"""One error type for user mistakes (bad config, bad data, bad workdir).

Entry points run under `ae_jax.cli.cli_errors()`: a `UserError` prints as one paragraph
after `error: `, with no traceback, and exits with status 2; the message must say what is
wrong (field, file, column, row, value) and what is expected instead. `storage_error` tells a
full, read-only or forbidden disk from other failures (it becomes such a message), and
`memory_error` XLA running out of memory (host or accelerator) from a full disk, which share
RESOURCE_EXHAUSTED; `closest` names what a misspelt name probably meant.
"""

import difflib
import errno


class UserError(ValueError):
    """A mistake the user can fix: bad config value, bad data file, wrong workdir."""

    def __init__(self, message: str):
        # Fold whitespace so multi-line f-strings print as one paragraph.
        super().__init__(" ".join(str(message).split()))


def closest(name: str, known: list[str], cutoff: float = 0.6) -> str:
    """The known name `name` most likely meant ("" if none): the shortest one it begins, itself
    first (a field set in the wrong section; a name cut short, loss.l1 for loss.l1_weight),
    else the most similar by difflib."""
    longer = sorted((k for k in known if k.startswith(name)), key=len)
    if name and longer:
        return longer[0]
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return close[0] if close else ""


_STORAGE = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}


def storage_error(e: BaseException | None) -> str | None:
    """What a full, read-only or forbidden disk looks like in `e` or its causes (orbax wraps
    them in ValueErrors with the errno's text), or None for any other error."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _STORAGE:
            return f"{_STORAGE[e.errno]}: {e.filename or ''}".rstrip(": ")
        text = str(e)
        exhausted = "RESOURCE_EXHAUSTED" if _OUT_OF_MEMORY not in text.lower() else "\0"
        for marker, why in (
            ("No space left on device", _STORAGE[errno.ENOSPC]),
            (exhausted, _STORAGE[errno.ENOSPC]),  # tensorstore's full disk; XLA's OOM: not
            ("Read-only file system", _STORAGE[errno.EROFS]),
            ("Disk quota exceeded", _STORAGE[errno.EDQUOT]),
        ):
            if marker in text:
                return why
        e = e.__cause__ or e.__context__
    return None


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
                "fits: for evaluation's importance-weighted pass, lower eval.iw_batch_rows "
                "(a rerun may change it) or, with ae-jax evaluate, --iw_samples; for training, "
                "train.batch_size, train.num_models or the model's size. Nothing written "
                "before was lost."
            )
        e = e.__cause__ or e.__context__
    return None
