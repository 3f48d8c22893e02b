"""Errors that describe a user's mistake (bad input), as opposed to a bug.

Every command catches :class:`UserError` at the top level and prints ``str(err)`` as one line,
exits non-zero and writes nothing. Messages name the file, the row and the field when known,
in the form ``file:row:field: message``.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input; printed as one line, never as a traceback."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 field: str | None = None, exit_code: int = 2):
        self.message = message
        self.file = file
        self.row = row
        self.field = field
        self.exit_code = exit_code
        super().__init__(self.format())

    def format(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.row, self.field) if p is not None)
        return f"{where}: {self.message}" if where else self.message
