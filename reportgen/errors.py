"""Typed errors. Library code raises these; only the CLI prints them.

Every error a user can cause is an :class:`InputError` (exit code 2) whose message is one
line naming the file, field or path and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass


class ReportgenError(Exception):
    """Base class for every error reportgen raises on purpose."""

    exit_code = 2


class InputError(ReportgenError):
    """Bad input from the user: spec, paths, checkpoints, tokenizers, probe files."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a spec: ``file:line: field: message``."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class InputErrors(InputError):
    """Every problem of one input file (a vocabulary, a probe pack), one line each, so one
    run names all of them; ``str()`` is those lines."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("\n".join(messages))


class SpecError(InputError):
    """A spec with one or more problems; all of them are reported at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ModelError(InputError):
    """A checkpoint that cannot be resolved, read or compared."""


class OutputError(InputError):
    """An output folder that cannot be written."""


class UnknownNameError(InputError, KeyError):
    """A metric or candidate name a certificate does not hold (a KeyError too, so code that
    caught the bare KeyError still does); the message says what was meant."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""
