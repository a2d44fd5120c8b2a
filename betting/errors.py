"""The one exception hierarchy of betml.

Every error betml raises on purpose derives from :class:`BetmlError`, so callers (the CLI, the
HTTP and gRPC handlers) can turn it into a clear message without catching everything.
"""

from __future__ import annotations

from dataclasses import dataclass


class BetmlError(Exception):
    """Root of every error betml raises on purpose."""


class InvalidInput(BetmlError, ValueError):
    """A value a caller passed is wrong; the message names the value and the reason."""


class NotFound(BetmlError, LookupError):
    """Something asked for by name or id does not exist."""


class ConfigError(BetmlError):
    """A setting or configuration file is missing or invalid."""


@dataclass(frozen=True)
class RowProblem:
    """One bad row or field of an imported file."""

    source: str
    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.location}: {self.reason}"


class ImportRejected(BetmlError):
    """A file was refused as a whole; nothing of it was written.

    Attributes:
        problems: every bad row or field found, with its file, line or field and reason.
    """

    def __init__(self, source: str, problems: list[RowProblem]) -> None:
        self.source = source
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{source}: rejected, {len(problems)} problem(s):\n{shown}{more}")
