r"""Prints the README's table of bad inputs and the exact message each gives.

  python scripts/bad_inputs_table.py > /tmp/table.md

Every row is also a test (tests/test_bad_inputs.py), which fails when a message changes
and the README was not regenerated.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ae_jax import runtime
from ae_jax.errors import UserError  # noqa: E402
from tests.bad_input_cases import CASES  # noqa: E402
from tests.test_bad_inputs import normalise  # noqa: E402


def main() -> None:
    runtime.quiet_library_logs()
    print("| bad input | what the user sees (`error: ` + this) |")
    print("|---|---|")
    for title, trigger in CASES:
        with tempfile.TemporaryDirectory() as d:
            try:
                trigger(d)
                message = "(no error: this case is broken)"
            except UserError as e:
                message = normalise(str(e), d)
        print(f"| {title} | {message.replace('|', chr(92) + '|')} |")


if __name__ == "__main__":
    main()
