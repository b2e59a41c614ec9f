"""What every command-line entry point shares: one-paragraph errors and process setup.

Entry points run their work under `cli_errors()`: a `UserError` prints as one paragraph after
`error: `, with no traceback, and exits with status 2; a stop on SIGTERM/SIGINT prints its
resume hint and exits with 128 + the signal's number (143 for SIGTERM).
"""

import atexit
import contextlib
import functools
import os
import re
import sys
import threading
from typing import NoReturn

from absl import flags, logging

from ae_jax import config as config_lib
from ae_jax import runtime
from ae_jax.config import doc as config_doc
from ae_jax.config import files as config_files
from ae_jax.errors import UserError, closest, environment_error
from ae_jax.training.signals import Interrupted


@contextlib.contextmanager
def cli_errors():
    """UserError -> `error: ...` and exit 2; Interrupted -> its resume hint and 128 + signal."""
    try:
        yield
    except UserError as e:
        logging.flush()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        logging.warning("%s", e)
        sys.exit(128 + e.signum)
    except Exception as e:  # XLA out of memory, a disk's refusal, wherever they come from
        if (said := environment_error(e)) is None:
            raise
        logging.flush()
        print(f"error: {said}", file=sys.stderr)
        sys.exit(2)


def no_arguments(argv: list[str], command: str) -> None:
    """Refuses words after a command's flags (absl printed 'unexpected arguments' without
    `error: `, and exited 1), as one paragraph, exit 2."""
    if len(argv) > 1:
        with cli_errors():
            raise UserError(
                f"unexpected argument(s) {argv[1:]}: `ae-jax {command}` takes --flags only (a "
                f"value with spaces needs quotes; `ae-jax {command} --help` lists the flags)."
            )


def end_process(code: object = 0) -> NoReturn:
    """Ends a launcher's process as `sys.exit(code)` would, minus the interpreter's teardown.

    Tearing down XLA's runtime and the libraries' modules takes ~0.4 s of every command and
    writes nothing. So the first two steps of the interpreter's own shutdown, in its order:
    `threading._shutdown()` (wakes idle thread-pool workers, then joins every non-daemon
    thread: a plain join would wait forever on an executor nobody shut down) and the atexit
    handlers (JAX's distributed shutdown, Ray's, the trackers', logging's); then the logs and
    standard streams are flushed and `os._exit` ends the process. Only for a process's entry
    point: a caller that goes on (a notebook) uses `commands.run`, which raises SystemExit.
    """
    code = 0 if code is None else code
    if not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    shutdown = getattr(threading, "_shutdown", None)  # CPython's, run at every exit
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    logging.flush()
    for stream in (sys.stdout, sys.stderr):  # None: started with it closed (`>&-`)
        with contextlib.suppress(OSError, ValueError):  # a reader gone (`| head`): no traceback
            if stream is not None:
                stream.flush()
    os._exit(code)


def escaped_stdout() -> None:
    """Standard output that cannot encode a character (an ASCII locale: eval's '±') writes it
    escaped, as standard error does, not a UnicodeEncodeError after the work is done."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)  # (None: closed, or replaced)
    if callable(reconfigure):
        reconfigure(errors="backslashreplace")


def setup(config=None) -> None:
    """Quiet library logs and the persistent compilation cache, for a launcher's process: on
    unless `config` (the launch's config, a sweep's base) sets train.compilation_cache off (a
    sweep's was ignored: a probe); read before the config is checked, so a config without it
    is said by the check, not an AttributeError."""
    runtime.quiet_library_logs()
    train = None if config is None else config.get("train")
    on = train.get("compilation_cache", True) if hasattr(train, "get") and train else True
    path = runtime.enable_compilation_cache(bool(on))
    if path:
        logging.info("compilation cache: %s", path)


_UNSET = ("none", "None", "null")


def _joined(argv: list[str]) -> list[str]:
    """argv with absl's '--config FILE' and '--config.FIELD VALUE' written with '=', as the
    checks read them (a misspelt FIELD given so was a traceback from inside absl)."""
    out, i = [], 0
    while i < len(argv):
        spaced = argv[i] == "--config" or (argv[i].startswith("--config.") and "=" not in argv[i])
        if spaced and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _text_lists(argv: list[str]) -> list[str]:
    """argv with each tuple-of-text field (`config.TEXT_LISTS`) given once, as a literal:
    `--config.data.categorical_columns=Region,Browser` (ml_collections read one name
    'Region,Browser'), and a field given more than once joined in order, as absl's repeated
    flag was, where it was first given."""
    end = _end_of_flags(argv)
    lists: dict[str, list[str]] = {}
    first: dict[int, str] = {}  # position in `out` -> the field whose joined flag goes there
    out: list[str] = []
    for a in argv[:end]:
        name, eq, value = a[len("--config.") :].partition("=")
        if a.startswith("--config.") and eq and name in config_lib.TEXT_LISTS:
            if name not in lists:
                lists[name], first[len(out)] = [], name
                out.append(a)
            lists[name] += config_lib.parse_text_list(value)
        else:
            out.append(a)
    for i, name in first.items():
        out[i] = f"--config.{name}={tuple(lists[name])!r}"
    return out + argv[end:]


def _unknown_flag(name: str) -> str:
    """The refusal of a flag this command does not take: its own flags, the nearest first."""
    by_module = flags.FLAGS.flags_by_module_dict()
    ours = [fs for m, fs in by_module.items() if m.startswith(("ae_jax", "experiments"))]
    own = sorted(
        {f.name for fs in ours for f in fs} | {f.name for f in by_module.get(sys.argv[0], [])}
    )
    own = sorted(own + ["helpconfig"]) if "config" in own else own  # read by parse_flags
    near = closest(name, own, cutoff=0.5)
    hint = f"; did you mean --{near}?" if near else ""
    return (
        f"--{name}: this command takes no such flag{hint} (its flags: "
        f"{', '.join('--' + f for f in own)}; --helpfull lists absl's too)."
    )


def _nearest(name: str, known: list[str]) -> str:
    near = closest(name, known, cutoff=0.5)
    return f"; did you mean --config.{near}?" if near else ""


# absl's flags that print help and exit (`--help` is also `-?`).
_HELP_FLAGS = {"help", "?", "helpshort", "helpfull", "helpxml"}


def _last_of_each(argv: list[str]) -> list[str]:
    """argv with each --config.FIELD flag once, its last value (=none beat any later value; a
    tuple's repeated flag was appended to: (4,) then (8,) trained (4, 8)), but the text lists,
    whose repeated flags add to the list; another flag twice refused (--workdir: the last won)."""
    end, args = _end_of_flags(argv), argv[: _end_of_flags(argv)]
    names = [a[9:].partition("=")[0] if a.startswith("--config.") else "" for a in args]
    said = [a.partition("=")[0] for a in args if a[:2] == "--" and not a.startswith("--config.")]
    if twice := sorted({f for f in said if said.count(f) > 1}):

        def typed(i: int) -> str:  # as typed: a flag that takes a value, the next word too
            name = args[i][2:].partition("=")[0]
            spaced = "=" not in args[i] and i + 1 < len(args) and name in flags.FLAGS
            return (
                f"{args[i]} {args[i + 1]}" if spaced and not flags.FLAGS[name].boolean else args[i]
            )

        given = [typed(i) for i, a in enumerate(args) if a.partition("=")[0] == twice[0]]
        fields = ", its fields changed with --config.FIELD=VALUE" * (twice[0] == "--config")
        raise UserError(
            f"{twice[0]} given {len(given)} times ({', '.join(given)}); expected one{fields}."
        )
    last = {n: i for i, n in enumerate(names) if n and n not in config_lib.TEXT_LISTS}
    return [a for i, a in enumerate(argv[:end]) if last.get(names[i], i) == i] + argv[end:]


def _end_of_flags(argv: list[str]) -> int:
    """Where the flags end: at `--`, after which everything is an argument."""
    return argv.index("--") if "--" in argv else len(argv)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every mistake about --config as one paragraph (exit 2).

    Checks before absl parses: the config exists and loads (`--config=NAME|FILE[:arg]`, a
    shipped name resolved to its file; `--helpconfig` prints its fields, with the
    `--config.FIELD` flags applied, and exits), every `--config.FIELD=VALUE` names a field of
    it (else the nearest name is suggested); `-h` is `--help`, as for `ae-jax -h`; and
    `--config.FIELD=none` unsets an optional field (one whose default is None), which absl's
    parser cannot express, and is the text 'none' for a text field (train.parallel=none); a
    help flag prints the help whatever the config. Use as `app.run(main, flags_parser=...)`.
    """
    with cli_errors():
        config_value, typed, unset, rest = None, "", [], []
        argv = _last_of_each(_joined(["--help" if a == "-h" else a for a in argv]))
        asked = {
            a.lstrip("-").partition("=")[0] for a in argv[: _end_of_flags(argv)] if a[:1] == "-"
        }
        if asked & _HELP_FLAGS:  # (not a value: --workdir help) the help, whatever the config
            argv = [a for a in argv if not a.startswith(("--config", "--helpconfig"))]
        for a in argv:
            if a.startswith("--config="):
                typed = a.split("=", 1)[1]
                config_value = config_files.resolve_config(typed)
                a = f"--config={config_value}"
            if a.startswith("--config.") and "=" in a and a.split("=", 1)[1] in _UNSET:
                unset.append(a)
                continue
            rest.append(a)
        if config_value is not None:
            config = config_files.load_config_file(config_value, typed)
            # A text field's 'none' ('none' layout, scaling, binarisation) is its value.
            text = {
                k
                for k, v in config_lib.flatten_config(config.to_dict()).items()
                if isinstance(v, str) or k in config_lib.TEXT_LISTS  # (na_values=null: a marker)
            }
            rest += [a for a in unset if a[len("--config.") :].split("=", 1)[0] in text]
            unset = [a for a in unset if a not in rest]
            known = sorted(config_lib.flatten_config(config.to_dict()))
            for a in argv[: _end_of_flags(argv)]:  # (without a value too: a traceback)
                if a.startswith("--config."):
                    name = a[len("--config.") :].split("=", 1)[0]
                    if name not in known:
                        fields = [k for k in known if k.startswith(f"{name}.")]  # a section's
                        raise UserError(
                            f"--config.{name}: {name!r} is a section of the config, not a field"
                            f"; set one of its fields, such as --config.{fields[0]}."
                            if fields
                            else f"--config.{name}: the config has no field {name!r}"
                            f"{_nearest(name, known)} (fields are SECTION.FIELD, "
                            "e.g. --config.loss.beta=2)."
                        )
            rest = _text_lists(rest)
        if config_value is None and "--helpconfig" in rest:
            raise UserError(
                "--helpconfig lists a config's fields: name it, --config=NAME."
                if "config" in flags.FLAGS
                else "--helpconfig lists a config's fields, with `ae-jax train --config=NAME "
                "--helpconfig` (or sweep); this command reads each run's own config.json."
            )
        helpconfig = config_value is not None and "--helpconfig" in rest
        if helpconfig:  # printed once the --config.FIELD flags are applied: their values
            rest = [a for a in rest if a != "--helpconfig"]
            if "workdir" in flags.FLAGS and not any(a.startswith("--workdir") for a in rest):
                rest.append("--workdir=unused")  # required, but no command runs
        try:
            args = flags.FLAGS(rest)
        except SystemExit as e:  # absl's help flags print, then exit with status 1
            asked = {a.lstrip("-").split("=", 1)[0] for a in rest[: _end_of_flags(rest)]}
            if e.code == 1 and asked & _HELP_FLAGS:
                sys.exit(0)  # what was asked for was done
            raise
        except flags.Error as e:
            first = str(e).split("\n")[0].rstrip(":")
            m = re.match(r"flag --config\.([\w.]+)=(.*?): ", first)
            if m and config_value is not None:
                current = config_lib.flatten_config(config.to_dict()).get(m.group(1))
                raise UserError(
                    f"--config.{m.group(1)}={m.group(2)}: cannot be read as "
                    f"{type(current).__name__} like the config's value "
                    f"{current!r} ({first[m.end() :]})."
                ) from None
            if unknown := re.search(r"Unknown command line flag '([\w.-]+)'", first):
                raise UserError(_unknown_flag(unknown.group(1))) from None
            if needed := re.match(r"flag --(\w+)=None: Flag --\1 must have a value other", first):
                name = needed.group(1)
                raise UserError(f"--{name} is required: {flags.FLAGS[name].help}") from None
            raise UserError(f"{first.rstrip('.')}. Pass --helpfull to list the flags.") from None
        for a in unset:
            _unset(flags.FLAGS.config, a[len("--config.") :].split("=", 1)[0])
        if helpconfig:
            print(config_doc.describe(flags.FLAGS.config))
            sys.exit(0)
        return args


def _unset(config, name: str) -> None:
    *sections, leaf = name.split(".")
    target = functools.reduce(lambda c, s: c[s], sections, config)
    defaults = config_lib.flatten_config(config_lib.default_config().to_dict())
    if defaults.get(name, None) is not None:
        raise UserError(
            f"--config.{name}=none: {name} is not optional (its default is "
            f"{defaults[name]!r}); only fields whose default is None can be unset."
        )
    try:
        target[leaf] = None
    except (TypeError, ValueError):
        raise UserError(
            f"--config.{name}=none: {name} is not optional (its value is "
            f"{target[leaf]!r}); only fields whose default is None can be unset."
        ) from None
