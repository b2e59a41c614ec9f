"""What every command-line entry point shares: one-paragraph errors and process setup.

Entry points run their work under `cli_errors()`: a `UserError` prints as one paragraph after
`error: `, with no traceback, and exits with status 2; a stop on SIGTERM/SIGINT prints its
resume hint and exits with 128 + the signal's number (143 for SIGTERM).
"""

import contextlib
import difflib
import importlib.util
import inspect
import os
import re
import sys

from absl import flags, logging

from ae_jax import config as config_lib
from ae_jax import runtime
from ae_jax.errors import UserError
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


def setup(compilation_cache: bool = True) -> None:
    """Quiet library logs and the persistent compilation cache, for a launcher's process."""
    runtime.quiet_library_logs()
    path = runtime.enable_compilation_cache(compilation_cache)
    if path:
        logging.info("compilation cache: %s", path)


_UNSET = ("none", "None", "null")


def _load_config_file(value: str):
    """get_config([arg]) of --config=PATH[:arg], with one-paragraph errors."""
    path, _, arg = value.partition(":")
    if not os.path.isfile(path):
        raise UserError(f"--config={value}: no such config file {path!r} (paths are relative "
                        "to the current directory); expected a Python file defining "
                        "get_config(), e.g. "
                        "--config=experiments/configs/seed_sparse.py.")
    spec = importlib.util.spec_from_file_location("_ae_jax_config", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's file: say where it broke.
        raise UserError(f"--config={value}: the config file raised {type(e).__name__}: {e}"
                        ) from None
    get = getattr(module, "get_config", None)
    if get is None:
        raise UserError(f"--config={value}: {path!r} defines no get_config().")
    takes_arg = bool(inspect.signature(get).parameters)
    if arg and not takes_arg:
        raise UserError(f"--config={value}: {path}'s get_config() takes no argument, so "
                        f"':{arg}' cannot be given; drop it.")
    return get(arg) if arg else get()


def _nearest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f"; did you mean --config.{close[0]}?" if close else ""


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every mistake about --config as one paragraph (exit 2).

    Checks before absl parses: the config file exists and loads (`--config=FILE[:arg]`), every
    `--config.FIELD=VALUE` names a field of it (else the nearest name is suggested); and
    `--config.FIELD=none` unsets an optional field (one whose default is None), which absl's
    parser cannot express. Use as `app.run(main, flags_parser=cli.parse_flags)`.
    """
    with cli_errors():
        config_value, unset, rest = None, [], []
        for a in argv:
            if a.startswith("--config="):
                config_value = a.split("=", 1)[1]
            if a.startswith("--config.") and "=" in a and a.split("=", 1)[1] in _UNSET:
                unset.append(a[len("--config."):].split("=", 1)[0])
                continue
            rest.append(a)
        if config_value is not None:
            config = _load_config_file(config_value)
            known = sorted(config_lib.flatten_config(config.to_dict()))
            for a in argv:
                if a.startswith("--config.") and "=" in a:
                    name = a[len("--config."):].split("=", 1)[0]
                    if name not in known:
                        raise UserError(f"--config.{name}: the config has no field {name!r}"
                                        f"{_nearest(name, known)} (fields are SECTION.FIELD, "
                                        "e.g. --config.loss.beta=2).")
        try:
            args = flags.FLAGS(rest)
        except flags.Error as e:
            first = str(e).split("\n")[0].rstrip(":")
            m = re.match(r"flag --config\.([\w.]+)=(.*?): ", first)
            if m and config_value is not None:
                current = config_lib.flatten_config(config.to_dict()).get(m.group(1))
                raise UserError(f"--config.{m.group(1)}={m.group(2)}: cannot be read as "
                                f"{type(current).__name__} like the config's value "
                                f"{current!r} ({first[m.end():]}).") from None
            raise UserError(f"{first.rstrip('.')}. Pass --helpfull to list the flags.") from None
        for name in unset:
            _unset(flags.FLAGS.config, name)
        return args


def _unset(config, name: str) -> None:
    *sections, leaf = name.split(".")
    target = config
    for s in sections:
        target = target[s]
    defaults = config_lib.flatten_config(config_lib.default_config().to_dict())
    if defaults.get(name, None) is not None:
        raise UserError(f"--config.{name}=none: {name} is not optional (its default is "
                        f"{defaults[name]!r}); only fields whose default is None can be unset.")
    try:
        target[leaf] = None
    except (TypeError, ValueError):
        raise UserError(f"--config.{name}=none: {name} is not optional (its value is "
                        f"{target[leaf]!r}); only fields whose default is None can be unset."
                        ) from None
