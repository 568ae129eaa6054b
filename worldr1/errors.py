"""The one error type for mistakes a user can fix (bad params, missing files, missing weights)."""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's inputs: shown as one line with its cause and fix, exit code 2.

    Everything else is a bug and keeps its traceback.
    """

    exit_code = 2

    def __init__(self, cause: str, fix: str) -> None:
        self.cause = cause.rstrip(". ")
        self.fix = fix.rstrip(". ")
        super().__init__(self.line())

    def line(self) -> str:
        # Newlines would break the one-line contract, e.g. a path or a YAML snippet in the cause.
        text = f"{self.cause}. Fix: {self.fix}."
        return " ".join(text.split())
