"""The command line's own error: a message for the user and the exit status it ends with."""

from __future__ import annotations

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_NOT_CONVERGED", "CliError"]

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
EXIT_INTERNAL = 1


class CliError(Exception):
    """Bad input found by the command line: printed as one ``fisherlab: error:`` line, exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code
