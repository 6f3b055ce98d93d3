"""How ``convkit train`` and ``convkit evaluate`` stop on a problem: ``Exit`` carries the one-line message and
the exit code (2 usage error, 1 failure); ``os_error`` words an operating-system error in one line."""

from __future__ import annotations


class Exit(Exception):
    """Stop the command: print the message on stderr and exit with ``code``."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def os_error(exc: OSError) -> str:
    """One line for an OSError: what failed, on which path."""
    where = f" {exc.filename}" if exc.filename is not None else ""
    return f"cannot write{where}: {exc.strerror or exc}"
