"""Error types shared by every stage.

`UserError` means bad input or usage: the CLI prints its message as one line on
stderr and exits 2. Anything else escaping a stage is an internal failure (exit 1).
"""


class UserError(Exception):
    """Bad input the user can fix (missing column, unknown key, bad path...)."""


class Reported(UserError):
    """A UserError whose one line a launched process already printed: the CLI exits 2 without a second line."""


class Diverged(Exception):
    """Training produced a non-finite loss, gradient norm or reward: the run stopped at that step without
    saving it. The CLI prints the message as one line and exits 1."""


class Refused(UserError):
    """Several problems found at once (a pipeline's preflight): the CLI prints one `rlt: error:` line for each,
    after `result` (what a plan shows whatever it finds, when there is one), and exits 2."""

    def __init__(self, problems: list[str], result=None):
        super().__init__("; ".join(problems))
        self.problems, self.result = list(problems), result


def did_you_mean(word: str, options, cutoff: float = 0.6) -> str:
    """`"did you mean 'x'? "` naming the option nearest `word` (difflib's similarity ratio >= `cutoff`), else
    "": the one wording of every suggestion for a mistyped name (a command, a pipeline, a step, a benchmark)."""
    import difflib

    near = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=cutoff)
    return f"did you mean '{near[0]}'? " if near else ""
