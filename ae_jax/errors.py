"""One error type for user mistakes (bad config, bad data, bad workdir).

Entry points run under `ae_jax.cli.cli_errors()`: a `UserError` prints as one paragraph
after `error: `, with no traceback, and exits with status 2; the message must say what is
wrong (field, file, column, row, value) and what is expected instead.
"""


class UserError(ValueError):
    """A mistake the user can fix: bad config value, bad data file, wrong workdir."""

    def __init__(self, message: str):
        # Fold whitespace so multi-line f-strings print as one paragraph.
        super().__init__(" ".join(str(message).split()))
