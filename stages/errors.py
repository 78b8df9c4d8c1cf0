"""Error types shared by every stage.

`UserError` means bad input or usage: the CLI prints its message as one line on
stderr and exits 2. Anything else escaping a stage is an internal failure (exit 1).
"""


class UserError(Exception):
    """Bad input the user can fix (missing column, unknown key, bad path...)."""


class Reported(UserError):
    """A UserError whose one line a launched process already printed: the CLI exits 2 without a second line."""
