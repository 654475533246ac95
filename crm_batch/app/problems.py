"""Problems: what went wrong for one team (or one file) while the run went on.

A run whose stages all finished but left something undone for a team (a workbook that
could not be read or replaced, a report that failed to render, a team name that cannot
be a scope) *completes with problems*: the other teams got their outputs, the run ends
with exit code 8 (:attr:`crm_batch.errors.ExitCode.PROBLEMS`) and each problem is one
line in the log, in ``batch_runs`` and in ``status``: the team, the file and what to do.
A *note* is something worth knowing that needs no action tonight (customers without a
team, reported in the ``(unassigned)`` scope); it does not change the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from crm_batch.errors import DependencyError
from crm_batch.source.quality import escape_text

#: Longest team name shown in a problem line (longer names are cut, with their length).
_SHOWN_TEAM_CHARS = 40


@dataclass(frozen=True)
class Problem:
    """One team's (or one file's) failure, and what to do about it."""

    team: str | None  # None: not one team's (e.g. a workbook of no current team)
    what: str  # what went wrong, naming the file where there is one
    action: str  # what to do

    def line(self) -> str:
        """One line for people: ``team 'X': what. What to do: action``."""
        where = f"team {show_team(self.team)}: " if self.team is not None else ""
        return f"{where}{self.what}. What to do: {self.action}"


def show_team(team: str) -> str:
    """A team name for a log line: quoted, control characters escaped, long names cut."""
    shown = escape_text(team)
    if len(shown) > _SHOWN_TEAM_CHARS:
        return f"'{shown[:_SHOWN_TEAM_CHARS]}…' ({len(team)} characters)"
    return f"'{shown}'"


def is_team_failure(exc: Exception) -> bool:
    """Whether ``exc``, raised while one team's output was made, is that team's failure
    (the run goes on without it) rather than the run's: a database or mail server that
    fails (:class:`~crm_batch.errors.DependencyError`, a driver error) or memory running
    out fails every team alike, so those go to the run's retry policy."""
    return not isinstance(exc, DependencyError | SQLAlchemyError | MemoryError)
