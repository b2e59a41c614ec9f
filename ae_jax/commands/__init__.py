"""The `ae-jax` command: `ae-jax SUBCOMMAND [flags]`, one module per subcommand.

Each subcommand module defines `define_flags()` and `main(argv)`; only the chosen one is
imported, so its absl flags are the only ones defined. `python -m experiments.main` (and the
other `experiments/` launchers of the repository) run the same modules.
"""

import gc
import importlib
import os
import select
import signal
import sys
import threading
from collections.abc import Callable

from absl import app, flags

from ae_jax import cli, runtime
from ae_jax.config import files as config_files
from ae_jax.errors import meant
from ae_jax.training import signals

# name -> what it does (`ae-jax --help` lists them).
COMMANDS = {
    "train": "train one config (or K seeds of it together) into a workdir",
    "sweep": "run a config's sweep (get_sweep()): grouped, resumable, shardable",
    "evaluate": "evaluate a trained run: reconstruction vs PCA, codes, VAE bounds, figures",
    "encode": "encode raw rows with a trained run (codes to .npy or .csv)",
    "report": "aggregate a sweep into runs.csv, results.csv, report.md and figures",
    "export": "export a run's encoder and decoder with jax.export (usable without ae_jax)",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: ae-jax SUBCOMMAND [--flag=value ...]", "", "subcommands:"]
    lines += [f"  {name:{width}}  {text}" for name, text in COMMANDS.items()]
    lines += [
        "",
        "ae-jax SUBCOMMAND --help lists a subcommand's flags; ae-jax train "
        "--config=NAME --helpconfig lists a config's fields; ae-jax --version the versions "
        "of Python and the packages that compute the numbers.",
        f"shipped configs (--config=NAME): {', '.join(config_files.shipped_configs())}",
    ]
    return "\n".join(lines)


def run(argv: list[str], imported: Callable[[], None] | None = None) -> None:
    """Runs `argv` = [SUBCOMMAND, flags...] (what follows `ae-jax` on the command line);
    `imported()` is called once the subcommand's module (and so every module it uses) is."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":  # what a paper's methods section names
        v = runtime.versions()
        print(f"ae-jax {v['ae_jax']} ({runtime.describe(v)})")
        sys.exit(0)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"error: unknown subcommand {name!r}{meant(name, COMMANDS)}; expected one of "
            f"{', '.join(COMMANDS)} (ae-jax --help lists them).",
            file=sys.stderr,
        )
        sys.exit(2)
    module = importlib.import_module(f"ae_jax.commands.{name}")
    if imported is not None:
        imported()
    module.define_flags()
    # `--help` lists the main module's flags (absl: the module named by sys.argv[0]) under the
    # main module's docstring: here, the subcommand's.
    main = sys.modules["__main__"]
    for flag in flags.FLAGS.get_key_flags_for_module(module.__name__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    if not getattr(main, "__doc__", None):
        main.__doc__ = module.__doc__
    app.run(module.main, argv=[f"ae-jax {name}", *rest], flags_parser=cli.parse_flags)


def main(argv: list[str] | None = None, early=None) -> None:
    """The console script's entry point (through `ae_jax.entry`, which passes `early`: the stops
    noted while this module loaded): `run(argv)` (default: the command line's), then ends the
    process without the interpreter's teardown (`cli.end_process`); `run` instead raises
    SystemExit, for a caller that goes on."""
    # The cyclic garbage collector is off while the subcommand's modules load, then leaves
    # every object made so far out of its collections (`gc.freeze`, as CPython's docs advise
    # for long-lived objects) and is on again for the run: its full collections walked every
    # object jax, flax and orbax made at import to free a few dozen (a warm single run spent
    # 0.20 s collecting, now 0.08 s). Only here: the process ends with the command.
    gc.disable()

    def imported() -> None:
        gc.freeze()
        gc.enable()

    cli.escaped_stdout()
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signals.stop_outside_training if main_thread else None
    code: object = 0
    try:
        _handle_stops(handler)
        if handler is not None and early is not None and (signum := early.take()) is not None:
            handler(signum, None)  # noted while the modules loaded: acted on as if just now
        with signals.Announcer():  # a stop said at once, even inside a long XLA call
            run(sys.argv[1:] if argv is None else argv, imported)
    except SystemExit as e:
        code = e.code
    except signals.Interrupted as e:
        print(e, file=sys.stderr)
        code = 128 + e.signum
    except BrokenPipeError:
        if not _stdout_gone():  # another pipe or socket broke: said as any error is
            raise
        # `ae-jax ... --help | head`: the reader left, no traceback (Python's docs, "Note on
        # SIGPIPE": stdout to /dev/null, so its flush does not raise)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    _handle_stops(signal.SIG_DFL if main_thread else None)  # a stop while ending: no traceback
    cli.end_process(code)


def _stdout_gone() -> bool:
    """Whether standard output's reader has left: a pipe's (poll says POLLERR) or a socket's
    peer (POLLHUP)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() here, or no descriptor
        return False


def _handle_stops(handler) -> None:
    if handler is not None:
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, handler)
