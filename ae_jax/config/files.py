"""The config files of the command line: `--config=NAME|PATH[:arg]` resolved to a file (a
shipped config's by its name) and loaded (`get_config([arg])`), each mistake one paragraph
naming the line of the user's file it broke at (`where`)."""

import importlib.util
import inspect
import os
import re
import traceback

import ml_collections

from ae_jax.errors import UserError, meant

# The configs shipped with the package (ae_jax/configs), named on the command line by name:
# found and run by path, as a user's file is (no import of that package, which imports this).
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ae_jax/configs: 'seed_sparse', 'ablations/beta_vae'."""
    names = []
    for sub in ("", "ablations"):
        folder = os.path.join(CONFIG_DIR, sub)
        names += sorted(
            os.path.join(sub, f[:-3]) if sub else f[:-3]
            for f in os.listdir(folder)
            if f.endswith(".py") and f != "__init__.py"
        )
    return names


def resolve_config(value: str) -> str:
    """--config=NAME[:arg] or PATH[:arg] -> PATH[:arg]: a file when one exists at PATH, else a
    shipped config's file (`shipped_configs()`); a UserError naming both otherwise."""
    path, sep, arg = value.partition(":")
    if os.path.isfile(path):
        return value
    shipped = os.path.join(CONFIG_DIR, *path.removesuffix(".py").split("/")) + ".py"
    if re.fullmatch(r"[\w/]+(\.py)?", path) and os.path.isfile(shipped):
        return shipped + sep + arg
    if os.path.isdir(path):
        raise UserError(f"--config={value}: {path!r} is a directory; expected a .py config file.")
    if sep and os.path.isfile(value):
        raise UserError(
            f"--config={value}: a config file's path cannot hold ':', which separates the "
            "file from its get_config argument (--config=FILE:ARG); rename the file or its "
            "folder, or link to it from a path without one."
        )
    raise UserError(
        f"--config={value}: no config file {path!r} (paths are relative to the "
        "current directory) and no shipped config of that name"
        + meant(path.removesuffix(".py"), shipped_configs())
        + f"; shipped: {', '.join(shipped_configs())}."
    )


def load_config_file(resolved: str, value: str):
    """get_config([arg]) of --config=PATH[:arg] (`resolved` by `resolve_config` from `value`,
    what the user typed, which the one-paragraph errors quote)."""
    path, colon, arg = resolved.partition(":")
    spec = importlib.util.spec_from_file_location("_ae_jax_config", path)
    if spec is None or spec.loader is None:
        raise UserError(
            f"--config={value}: {path!r} cannot be loaded as Python; expected a .py config file."
        )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's file: say where it broke.
        raise UserError(
            f"--config={value}: the config file raised {type(e).__name__}: {e}{where(e, path)}"
        ) from None
    get = getattr(module, "get_config", None)
    if get is None:
        raise UserError(f"--config={value}: {path!r} defines no get_config().")
    check_argument(get, "get_config", value, path, colon, arg)
    try:
        config = get(arg) if arg else get()
    except Exception as e:  # noqa: BLE001 - the user's function: say what it raised.
        raise UserError(
            f"--config={value}: get_config() raised {type(e).__name__}: {e}{where(e, path)}"
        ) from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise UserError(
            f"--config={value}: get_config() returned a {type(config).__name__}; expected an "
            "ml_collections.ConfigDict (start from ae_jax.default_config())."
        )
    if isinstance(config, ml_collections.FrozenConfigDict):  # (absl's lock() raised on it)
        raise UserError(
            f"--config={value}: get_config() returned a FrozenConfigDict, which the launcher "
            "cannot lock and apply --config.FIELD flags to; return a ConfigDict (e.g. "
            "frozen.as_configdict())."
        )
    return config


def where(e: Exception, path: str = "") -> str:
    """' at FILE:LINE (code)' of the innermost frame of `e` in the file `path` (the user's
    config: a frame inside ml_collections said nothing of which line of it), else of the
    innermost frame."""
    if isinstance(e, SyntaxError) and e.filename and e.lineno:  # the file's own line, not
        return f" at {e.filename}:{e.lineno} ({(e.text or '').strip()})"  # the import machinery
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return ""
    mine = [f for f in frames if path and os.path.abspath(f.filename) == os.path.abspath(path)]
    f = (mine or frames)[-1]
    return f" at {f.filename}:{f.lineno} ({(f.line or '').strip()})"


def check_argument(get, what: str, value: str, path: str, colon: str, arg: str) -> None:
    """Refuses `--config=value`'s ':arg' (`colon`, `arg`) where `path`'s function `what`
    (get_config, or get_sweep, which is given it too) takes none, and none where it needs one:
    a probe's get_sweep() met a TypeError said as ae_jax's."""
    if not callable(get):  # (`get_sweep = sweep.product(...)`: a list, a traceback: a review)
        raise UserError(
            f"--config={value}: {path}'s {what} is a {type(get).__name__}, not a function; "
            f"define `def {what}(): return ...`."
        )
    try:
        params = list(inspect.signature(get).parameters.values())
    except (TypeError, ValueError):  # (a builtin without a signature: called as given)
        return
    sweep = " (given to get_config() and get_sweep() alike)" if what == "get_sweep" else ""
    if colon and not params:  # (a bare ':' too: ml_collections' "Error whilst parsing")
        raise UserError(
            f"--config={value}: {path}'s {what}() takes no argument, so ':{arg}'{sweep} cannot "
            f"be given; drop it{', or define get_sweep(arg=None)' if sweep else ''}."
        )
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not arg and params and params[0].kind in positional and params[0].default is params[0].empty:
        raise UserError(
            f"--config={value}: {path}'s {what}({params[0].name}) needs an argument, given "
            f"after the file name: --config={value.rstrip(':')}:ARG (a ':' and the text it "
            f"reads){'; get_config() is given it too' if sweep else ''}."
        )
