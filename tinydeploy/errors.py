"""The one error type users see: a one-line message naming the problem and the fix."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, and its answer is "no" (does not fit, outputs differ, a board failed)
EXIT_USAGE = 2  # bad input or usage
# Ctrl-C exits with 130 and SIGTERM with 143 (128 + the signal), after stopping builds and boards (cli.py).


class TinydeployError(Exception):
    """An expected failure with a message for the user; the CLI prints it on one line, no traceback."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.hint:
            text += f"; {self.hint}"
        return " ".join(text.split())  # never more than one line, whatever the message holds
