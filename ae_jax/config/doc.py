"""Every config field with its value and the comment `config.default_config` gives it.

`ae-jax train --config=NAME --helpconfig` prints `describe(config)`. The comments are read from
the source of `default_config` (the schema's one owner), so they cannot drift from it: a
comment on the field's own line, or on the lines just above it.
"""

import inspect
import re

from ae_jax.config import schema as config_lib

_SECTION = re.compile(r"^\s*c\.(\w+) = dict\(")
_FIELD = re.compile(r"^\s*(\w+)=.*?(?:#\s*(.*))?$")
_COMMENT = re.compile(r"^\s*#\s?(.*)$")


def field_comments() -> dict[str, str]:
    """{"section.field": comment} from the source of `config.default_config`."""
    comments: dict[str, str] = {}
    section: str | None = None
    pending: list[str] = []
    for line in inspect.getsource(config_lib.default_config).splitlines():
        if m := _SECTION.match(line):
            section, pending = m.group(1), []
        elif m := _COMMENT.match(line):
            pending.append(m.group(1).strip())
        elif section and (m := _FIELD.match(line)):
            text = " ".join([*pending, m.group(2) or ""]).strip()
            comments[f"{section}.{m.group(1)}"] = text
            pending = []
        elif line.strip() == ")":
            section, pending = None, []
    return comments


def describe(config) -> str:
    """One line per field, `section.field = value`, then its comment when there is one."""
    comments = field_comments()
    for key in config_lib.OPTIM_KWARGS:  # set in a loop, so no comment of their own
        comments.setdefault(
            f"optim.{key}", "passed to the optax optimizer when set; None: its default"
        )
    lines = []
    for key, value in config_lib.flatten_config(config.to_dict()).items():
        lines.append(f"{key} = {value!r}")
        if comments.get(key):
            lines.append(f"    {comments[key]}")
    return "\n".join(lines)
