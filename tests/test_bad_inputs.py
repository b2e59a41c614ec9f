"""Each bad input of tests/bad_inputs.py ends in one UserError whose message is in the README."""

import os
import re

import pytest

from ae_jax.errors import UserError
from tests.bad_input_cases import CASES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def normalise(message: str, scratch: str) -> str:
    """The message as the README shows it: the scratch directory as DIR, pids as N."""
    text = message.replace(os.path.realpath(scratch), "DIR").replace(scratch, "DIR")
    text = re.sub(r"pid \d+ on host \S+ since [0-9T:-]+", "pid N on host H since T", text)
    text = re.sub(r"than the [0-9.e+-]+ GiB of", "than the N GiB of", text)  # this machine's
    return text


@pytest.mark.parametrize("title,trigger", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_its_documented_message(title, trigger, tmp_path):
    with pytest.raises(UserError) as info:
        trigger(str(tmp_path))
    message = normalise(str(info.value), str(tmp_path))
    assert "\n" not in message and "Traceback" not in message
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert f"| {title} | {message} |" in readme.replace("\\|", "|"), (
        f"README's bad-input table is out of date for {title!r}; "
        "regenerate it with python scripts/bad_inputs_table.py"
    )
