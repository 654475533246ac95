"""Per-scope isolation of report rendering: one team's failed report is that team's.

Reports render side by side in worker processes (:mod:`crm_batch.reports.render`), and
the first failure stops a batch. :func:`render_each` renders every scope in one batch
(the fast path) and, only when that batch fails, renders each scope on its own, so the
failing scopes become :class:`~crm_batch.app.problems.Problem` lines and every other
scope gets its report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from crm_batch.app.problems import Problem, is_team_failure, show_team
from crm_batch.app.runlog import error_text
from crm_batch.errors import CrmBatchError

log = logging.getLogger(__name__)

T = TypeVar("T")


def render_each(
    what: str,
    scopes: Sequence[str | None],
    render: Callable[[list[str | None]], list[T]],
) -> tuple[list[T], tuple[Problem, ...]]:
    """``render(scopes)``; if it fails with a team's failure
    (:func:`~crm_batch.app.problems.is_team_failure`), ``render([scope])`` for each scope.

    Returns what was rendered and a problem per scope that failed on its own (``what``
    names the output in it, e.g. "diagnosis report"; scope None is the company's).
    Database and mail failures propagate, as they fail every scope alike.
    """
    try:
        return render(list(scopes)), ()
    except Exception as exc:
        if not is_team_failure(exc):
            raise
        if len(scopes) == 1:
            return [], (_problem(what, scopes[0], exc),)
        log.warning("%ss failed (%s); rendering each scope on its own", what, error_text(exc))
    done: list[T] = []
    problems: list[Problem] = []
    for scope in scopes:
        try:
            done.extend(render([scope]))
        except Exception as exc:
            if not is_team_failure(exc):
                raise
            problems.append(_problem(what, scope, exc))
    return done, tuple(problems)


def render_each_owner(
    what: str,
    units: Sequence[tuple[str, str]],
    render: Callable[[list[tuple[str, str]]], list[T]],
) -> tuple[list[T], tuple[Problem, ...]]:
    """:func:`render_each` for outputs of one (team, owner) each, such as the call sheets:
    ``render(units)``; if it fails with a team's failure, ``render([unit])`` for each, so
    one owner's failed output is a problem of that owner's team (naming the owner) and
    every other owner, of that team too, gets theirs."""
    try:
        return render(list(units)), ()
    except Exception as exc:
        if not is_team_failure(exc):
            raise
        log.warning("%ss failed (%s); rendering each on its own", what, error_text(exc))
    done: list[T] = []
    problems: list[Problem] = []
    for team, owner in units:
        try:
            done.extend(render([(team, owner)]))
        except Exception as exc:
            if not is_team_failure(exc):
                raise
            problems.append(_problem(f"{what} of owner {show_team(owner)}", team, exc))
    return done, tuple(problems)


def _problem(what: str, scope: str | None, exc: Exception) -> Problem:
    """The problem of ``scope``'s failed ``what``, logged (with the traceback of a bug)."""
    if not isinstance(exc, CrmBatchError):
        name = "the company" if scope is None else f"team {show_team(scope)}"
        log.error("%s of %s failed", what, name, exc_info=exc)
    owner = "the company's" if scope is None else "its"
    problem = Problem(
        scope,
        f"{owner} {what} could not be written ({error_text(exc)}); the previous file, if "
        "any, is left as it was",
        "fix what the message names; the next run writes it (report an internal error "
        "with the log's traceback to the maintainers)",
    )
    log.error("%s", problem.line())
    return problem
