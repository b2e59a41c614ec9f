"""Process setup shared by every entry point: quiet library logs, the compilation cache.

JAX's persistent compilation cache keeps compiled programs on disk, keyed by a hash of the
program, the JAX version and the device, so a second run of the same config (or a sweep group
with the same shapes in a new process) loads its programs instead of compiling them. It changes
no number. Where it lives, in order of precedence:

  AE_JAX_COMPILATION_CACHE=off|0|false   no persistent cache (env override)
  AE_JAX_COMPILATION_CACHE=DIR           that directory
  JAX_COMPILATION_CACHE_DIR=DIR          JAX's own setting, if the user already chose one
  config train.compilation_cache=False   no persistent cache (config switch)
  otherwise                              $XDG_CACHE_HOME/ae_jax/xla (~/.cache/ae_jax/xla)
"""

import contextlib
import hashlib
import importlib.metadata
import logging as std_logging
import math
import os
import platform
import signal
import sys
import threading
import types

try:
    import resource  # (POSIX)
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

import jax
from absl import flags, logging

from ae_jax.errors import UserError

ENV = "AE_JAX_COMPILATION_CACHE"
_OFF = ("off", "0", "false", "no", "none", "disabled", "disable")


class _LibraryInfoFilter(std_logging.Filter):
    """Drops INFO records of orbax and jax (several per checkpoint save) from absl's log,
    and orbax's warnings that a read-only manager (how runs are loaded) is read-only. orbax's
    errors from its background save threads keep one line each, their exception named at the
    end instead of its traceback (on a full disk, three tracebacks of ~60 lines came before
    the launcher's own error, which says what happened and what to do)."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        # A damaged orbax checkpoint's other reads, failed after the first (whose error names
        # the checkpoint): asyncio says each unretrieved one as its task is collected, with a
        # traceback (Python 3.12 under load: a test's stderr held four before the error).
        exc = record.exc_info[1] if record.exc_info else None
        if record.name == "asyncio" and "Error reading" in str(exc) and "OCDBT" in str(exc):
            return False
        origin = _origin(record)
        noisy = any(f"{os.sep}{lib}{os.sep}" in origin for lib in ("orbax", "jax"))
        if noisy and "read only" in record.getMessage().replace("_", " "):
            return False
        if f"{os.sep}orbax{os.sep}" in origin and record.exc_info and record.exc_info[1]:
            exc, message = record.exc_info[1], record.getMessage()
            cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            named = bool(str(exc)) and str(exc) in message  # "... raised an exception: {exc}"
            record.msg = message if named else f"{message} ({cause})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return record.levelno >= std_logging.WARNING or not noisy


# The logging machinery's own files: a record's origin is the first caller outside them.
_LOGGING_DIRS = tuple(
    os.path.dirname(m.__file__) + os.sep for m in (std_logging, logging) if m.__file__
)


def _origin(record: std_logging.LogRecord) -> str:
    """The file a record was logged from. absl's logger names the caller of absl.logging.info;
    but when something made a logger called "absl" before absl was imported (a notebook's
    setup), absl logs through that plain logger, whose records all name absl's own module.
    Filters run in the logging call, so the caller is then found on the stack."""
    if not record.pathname.startswith(_LOGGING_DIRS):
        return record.pathname
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename.startswith(_LOGGING_DIRS) or frame.f_code.co_filename == __file__
    ):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else record.pathname


_PROGRESS = {"calls": 0, "filter": None}  # API calls showing progress now, and their filter
_PROGRESS_LOCK = threading.Lock()


@contextlib.contextmanager
def progress_log():
    """For the Python API: while the block runs, the lines the launchers print (compiling,
    epochs, the summary, evaluation) go to stderr, library chatter filtered out, when nothing
    configured logging (no absl app, no `absl.logging.set_verbosity`, the root logger at its
    default level); without it a call trains for minutes in silence. Configured logging is
    left alone. Calls may nest or run in several threads: the last to end restores the absl
    logger's level, unless something set it meanwhile. Like absl's own first record, the first
    call gives the root logger its default stderr handler when it has none."""
    logger = std_logging.getLogger("absl")
    with _PROGRESS_LOCK:
        if not _PROGRESS["calls"]:
            configured = (
                flags.FLAGS.is_parsed() or std_logging.getLogger().level != std_logging.WARNING
            )
            if configured or logger.level != std_logging.NOTSET:
                mine = False
            else:
                if not std_logging.getLogger().handlers:
                    std_logging.basicConfig()
                _PROGRESS["filter"] = _LibraryInfoFilter()
                logger.addFilter(_PROGRESS["filter"])
                logger.setLevel(std_logging.INFO)
                mine = True
        else:
            mine = True
        _PROGRESS["calls"] += mine
    try:
        yield
    finally:
        with _PROGRESS_LOCK:
            _PROGRESS["calls"] -= mine
            if mine and not _PROGRESS["calls"]:
                if logger.level == std_logging.INFO:  # else set by someone meanwhile: kept
                    logger.setLevel(std_logging.NOTSET)
                logger.removeFilter(_PROGRESS["filter"])


def _late_loop_callback(unraisable) -> bool:
    """Whether an unraisable exception is a read's late completion on a finished event loop:
    orbax reads a checkpoint's arrays on an event loop of its own, closed when the first read
    fails (a damaged checkpoint); tensorstore then completes the other reads from its threads
    and asyncio's `call_soon_threadsafe` raises `RuntimeError('Event loop is closed')` in each,
    printed as a traceback per array before the error that names the checkpoint."""
    exc, tb = unraisable.exc_value, unraisable.exc_traceback
    if not (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"):
        return False
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.endswith(
        os.path.join("asyncio", "base_events.py")
    )


class _QuietUnraisable:
    """sys.unraisablehook that drops `_late_loop_callback`s and passes the rest on; a stop
    (`signals.Interrupted`, raised by the launchers' handler) that a finalizer or a garbage
    collector callback swallowed (JAX's: evaluate then ran on to the end, exit 0) is delivered
    again from a thread, to land outside it."""

    def __init__(self, previous):
        self.previous = previous

    def __call__(self, unraisable) -> None:
        signum = getattr(unraisable.exc_value, "signum", None)
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and signum:
            later = threading.Timer(0.01, signal.raise_signal, (signum,))
            later.daemon = True  # (the process may end first: nothing to wait for)
            later.start()
        elif not _late_loop_callback(unraisable):
            self.previous(unraisable)


def quiet_library_logs() -> None:
    """Keeps the launcher's log to our lines: library INFO chatter is filtered out, and so are
    the tracebacks of a damaged checkpoint's late reads (`_late_loop_callback`)."""
    handler = logging.get_absl_handler()
    if not any(isinstance(f, _LibraryInfoFilter) for f in handler.filters):
        handler.addFilter(_LibraryInfoFilter())
    if not isinstance(sys.unraisablehook, _QuietUnraisable):
        sys.unraisablehook = _QuietUnraisable(sys.unraisablehook)


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ae_jax", "xla")


def compilation_cache_dir(enabled: bool = True) -> str:
    """The directory the persistent cache should use ('' = none), by the precedence above."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() in _OFF:
        return ""
    if env:  # (a relative one: from where the command started, said in full)
        path = os.path.abspath(os.path.expanduser(env))
        word = env.lower() if env.isalpha() else ""  # ('of', 'fals', 'offf'; not 'node', 'one')
        like = [
            o
            for o in _OFF
            if (len(word) >= 2 and o.startswith(word)) or (len(o) >= 3 and word[:-1] == o)
        ]
        near = like[0] if like else ""
        if near and not os.path.isdir(path) and path not in _LIKE_OFF:  # ('of': a folder ./of)
            _LIKE_OFF.add(path)
            logging.warning(
                "%s=%r is read as a folder for the compilation cache, %s; to turn the cache "
                "off, set it to %r",
                *(ENV, env, path, near),
            )
        return path
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    return default_cache_dir() if enabled else ""


_REFUSED: set[str] = set()  # cache directories that could not be made, said once
_LIKE_OFF: set[str] = set()  # values read as folders, though like 'off': said once


# The most open files asked for where the hard limit is unlimited (macOS's: RLIM_INFINITY, above
# what its kernel allows a process, kern.maxfilesperproc, 10,240 by default).
_MOST_FILES = 10240


def raise_open_files_limit() -> None:
    """Raises this process's soft limit on open files to its hard one. A run holds three files
    while it trains (its lock, metrics.jsonl, TensorBoard's events) until it is written: a
    sweep of a few hundred runs passed the usual soft limit of 1,024 (macOS's: 256) and
    failed with "Too many open files" (a probe), where most hard limits are far higher."""
    if resource is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # (macOS refuses more than its kernel allows a process, whatever the hard limit: then that)
    unlimited = hard == resource.RLIM_INFINITY
    for want in dict.fromkeys([_MOST_FILES] if unlimited else [hard, min(hard, _MOST_FILES)]):
        if soft == resource.RLIM_INFINITY or soft >= want:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            return
        except (ValueError, OSError):
            continue  # refused to this process: the next, else the limit as it was


def _files_left(runs: int) -> float:
    """The open files this process may open beyond those of `runs` training (three each) and
    its own (its libraries, the figure workers' pipes); inf without a limit."""
    if resource is None:
        return math.inf
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return math.inf if soft == resource.RLIM_INFINITY else soft - 3 * runs - 64


def room_for(runs: int) -> bool:
    """Whether `runs` can start training beside the files open now (those of runs still being
    written: a run holds its three until it is written, and its lock until its group is)."""
    return _files_left(runs) >= open_files()


def open_files() -> int:
    """How many files this process has open (0 where the system does not say)."""
    fds = "/dev/fd"  # (Linux's and macOS's: this process's open files)
    return len(os.listdir(fds)) if os.path.isdir(fds) else 0


def check_open_files(runs: int) -> None:
    """Refuses, before any work, `runs` trained together that would hold more files than this
    process may open (`raise_open_files_limit` raised the soft limit as far as it goes)."""
    if runs and _files_left(runs) < 0:  # (none to train: a rerun of a finished sweep, a review)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        fit = max(0, (soft - 64) // 3)  # (beside the process's own 64)
        fewer = f"train at most {fit} together (train.num_models, a sweep's --max_models={fit})"
        raise UserError(
            f"{runs} runs trained together hold about {3 * runs} open files (each its lock, "
            f"metrics.jsonl and TensorBoard's events file), more than this process may open "
            f"(ulimit -n: {soft}, raised to the hard limit where allowed, 64 of them its own); "
            f"{fewer if fit else 'none fit'}{' or' if fit else ':'} raise the hard limit."
        )


def enable_compilation_cache(enabled: bool = True) -> str:
    """Turns on JAX's persistent compilation cache (see the module docstring); returns its
    directory, or '' when it stays off. Safe to call more than once."""
    path = compilation_cache_dir(enabled)
    if not path:
        return ""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        why = "a file is there" if os.path.isfile(path) else e.strerror
        if path not in _REFUSED:  # (once: every launcher and each group's run ask again)
            logging.warning(
                "compilation cache %r cannot be created (%s); compiling without it", path, why
            )
        _REFUSED.add(path)
        return ""
    # Config options are dynamic attributes; jax's own annotations do not list them.
    if jax.config.jax_compilation_cache_dir != path:  # type: ignore[attr-defined]
        jax.config.update("jax_compilation_cache_dir", path)
    # Cache every program, however quick to compile: a run's are small but many (unless the
    # user's environment sets JAX's own thresholds, which then hold).
    for option, value in (
        ("jax_persistent_cache_min_compile_time_secs", 0.0),
        ("jax_persistent_cache_min_entry_size_bytes", 0),
    ):
        if option.upper() not in os.environ:
            jax.config.update(option, value)
    return path


# The packages whose versions decide a run's numbers: recorded beside them.
PACKAGES = ("ae_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


def versions() -> dict[str, str | None]:
    """Python's version and PACKAGES' (None: not installed), from the installed packages'
    metadata: nothing is imported."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["ae_jax_source"] = SOURCE
    return out


def source_digest(package: str = os.path.dirname(os.path.abspath(__file__))) -> str:
    """The first 12 hex digits of a SHA-256 over the Python files of the ae_jax package (each
    one's path inside it and its bytes), ~3 ms: every revision of the code says `ae_jax 0.1.0`,
    so this names the code that computed a run's numbers. The same files give the same digest
    wherever they are installed (a checkout, site-packages)."""
    files = []
    for folder, subfolders, names in os.walk(package):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        files += [os.path.relpath(os.path.join(folder, n), package) for n in names]
    digest = hashlib.sha256()
    for path in sorted(f for f in files if f.endswith(".py")):
        with open(os.path.join(package, path), "rb") as f:
            digest.update(path.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()[:12]


# The code this process runs, digested once as it starts: an editable install's files edited
# during a long sweep named later runs (and their resume warnings) for code they never ran.
SOURCE = source_digest()


def describe(v: dict) -> str:
    """'Python 3.11.7; ae_jax 0.1.0, jax 0.10.2, ...' (`versions()` or `software()`)."""
    source = {"ae_jax": f" (source {v['ae_jax_source']})"} if v.get("ae_jax_source") else {}
    packages = ", ".join(
        f"{name} {v.get(name) or '(not installed)'}{source.get(name, '')}" for name in PACKAGES
    )
    where = f" on {v.get('backend')} ({v.get('device_kind')})" if "backend" in v else ""
    return f"Python {v.get('python')}; {packages}{where}"


def software() -> dict:
    """What computed a run's numbers, recorded in its summary.json and eval.json: `versions()`,
    JAX's backend and the first device's kind, and XLA_FLAGS (flags such as GPU deterministic
    ops change results)."""
    return {
        **versions(),
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
