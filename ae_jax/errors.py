"""One error type for user mistakes (bad config, bad data, bad workdir).

Entry points run under `cli_errors()`: a `UserError` prints as one paragraph after
`error: `, with no traceback, and exits with status 2; the message must say what is
wrong (field, file, column, row, value) and what is expected instead.
"""

import contextlib
import sys


class UserError(ValueError):
    """A mistake the user can fix: bad config value, bad data file, wrong workdir."""

    def __init__(self, message: str):
        # Fold whitespace so multi-line f-strings print as one paragraph.
        super().__init__(" ".join(str(message).split()))


@contextlib.contextmanager
def cli_errors():
    """For command-line entry points: UserError -> `error: ...` and exit 2; a stop on
    SIGTERM/SIGINT (procsafe.Interrupted) -> its resume hint and exit 128 + signal."""
    from absl import logging

    from ae_jax import procsafe

    try:
        yield
    except UserError as e:
        logging.flush()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except procsafe.Interrupted as e:
        logging.warning("%s", e)
        sys.exit(128 + e.signum)
