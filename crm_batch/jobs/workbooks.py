"""The nightly refresh of the team workbooks, and the ``harvest`` command.

Orchestration only: the files are read, merged and written by :mod:`crm_batch.excel`
(which never opens a database) and the follow-ups are stored and read by
:mod:`crm_batch.app.followups` on the run's engine.

* :func:`harvest_all`: store the staff inputs of every team workbook in the folder.
* :func:`refresh_team_workbooks`: for each team, read its workbook once
  (:func:`crm_batch.excel.refresh.read_current_workbook`), store what staff typed,
  merge it back with the one staff-input merge
  (:func:`crm_batch.excel.staff_merge.merge_staff_inputs`: a row per customer on the
  Follow-ups sheet, every other unsaved row on the Orphaned notes sheet), and write the
  rebuilt workbook in place of the old one
  (:func:`crm_batch.excel.refresh.write_team_workbook`).

A team's failure is that team's: a workbook that cannot be built, read or replaced is a
:class:`~crm_batch.app.problems.Problem` naming the team, the file and what to do, and
the other teams are refreshed. So is a file that cannot be harvested. Database failures
are not one team's: they propagate to the run's retry policy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from crm_batch.app.followups import (
    NOTHING_STORED,
    StoreResult,
    latest_followups,
    store_followups,
    with_saved_at,
)
from crm_batch.app.kpis import KpiRun
from crm_batch.app.problems import Problem, is_team_failure, show_team
from crm_batch.app.runlog import error_text
from crm_batch.app.workbook_data import read_history
from crm_batch.config import Settings
from crm_batch.errors import CrmBatchError, DataError
from crm_batch.excel import staff_merge
from crm_batch.excel.harvest import NotATeamWorkbookError, read_staff_inputs
from crm_batch.excel.refresh import read_current_workbook, write_team_workbook
from crm_batch.excel.teamdata import HISTORY_KPIS, team_workbook_data
from crm_batch.excel.workbook_files import (
    archive,
    owner_files,
    previous_paths,
    retire_side_copies,
    team_of_file,
    team_workbook_paths,
    workbooks_to_harvest,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crm_batch.excel.vba.project import VbaModule

log = logging.getLogger(__name__)


class WorkbookRefreshError(CrmBatchError):
    """Some workbooks could not be harvested by the ``harvest`` command (the others
    were stored); the nightly run reports such files as problems instead."""

    exit_code = DataError.exit_code


@dataclass(frozen=True)
class TeamRefresh:
    """What happened to one team's workbook."""

    team: str
    path: Path  # the team workbook
    written: Path  # the new workbook: ``path`` itself, or a dated file beside it
    kept_reason: str | None  # why the old workbook was left alone (None: replaced/created)
    backup: Path | None  # the copy of the old workbook in the backup folder
    customers: int
    harvested: int = 0  # staff input rows read from the old workbook
    stored: StoreResult = NOTHING_STORED
    orphaned: int = 0

    @property
    def replaced(self) -> bool:
        """Whether the team workbook itself now holds the new workbook."""
        return self.written == self.path

    def describe(self) -> str:
        """One line for people."""
        what = f"{self.team}: {self.customers:,} customers"
        if self.harvested:
            what += (
                f", {self.harvested} staff rows ({self.stored.inserted} new, "
                f"{self.stored.already_stored} already stored, {self.stored.rejected} with "
                "problems)"
            )
        if self.orphaned:
            what += f", {self.orphaned} orphaned notes"
        if self.kept_reason:
            return f"{what}; NOT replaced ({self.kept_reason}): new workbook is {self.written.name}"
        return f"{what} -> {self.written.name}"

    def problem(self) -> Problem | None:
        """The team's problem when its workbook was left alone (None: it was replaced)."""
        if not self.kept_reason:
            return None
        reason = self.kept_reason
        if "could not be read" in reason:
            action = (
                f"repair {self.path.name} as the message says (earlier copies are in the "
                "backup folder) or move it out of the folder; the next run then replaces it"
            )
        elif reason.startswith("it is open"):
            locks = " or ".join(p.name for p in owner_files(self.path)) or "its owner file"
            action = (
                f"close {self.path.name} in Excel/WPS; if nobody has it open, delete {locks} "
                "(left behind when Excel stopped)"
            )
        elif reason.startswith("it is the workbook of team"):
            action = f"move {self.path.name} away: it belongs to another team"
        else:
            action = "nothing: the next run replaces it"
        return Problem(
            self.team,
            f"{self.path.name} was NOT replaced ({reason}); tonight's workbook is "
            f"{self.written.name}",
            action,
        )


@dataclass(frozen=True)
class RefreshReport:
    """The nightly refresh of every team's workbook."""

    teams: tuple[TeamRefresh, ...]
    failures: tuple[Problem, ...] = ()  # teams whose workbook could not be refreshed

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every team whose workbook failed or was left alone, with what to do."""
        kept = (team.problem() for team in self.teams)
        return (*self.failures, *(problem for problem in kept if problem is not None))

    @property
    def written_beside(self) -> tuple[TeamRefresh, ...]:
        """Teams whose workbook was left alone and got a dated new one beside it."""
        return tuple(t for t in self.teams if t.kept_reason)

    def summary(self) -> str:
        """A phrase for the run log."""
        beside = len(self.written_beside)
        text = f"{len(self.teams)} team workbooks"
        stored = sum(t.stored.inserted for t in self.teams)
        if stored:
            text += f", {stored} follow-ups stored"
        if beside:
            text += f", {beside} written beside an open or changed workbook"
        if self.failures:
            text += f", {len(self.failures)} FAILED"
        return text


@dataclass(frozen=True)
class HarvestedFile:
    """One workbook harvested by :func:`harvest_all`."""

    path: Path
    team: str
    rows: int
    stored: StoreResult


@dataclass(frozen=True)
class HarvestReport:
    """What :func:`harvest_all` read and stored."""

    files: tuple[HarvestedFile, ...]
    skipped: tuple[Path, ...]  # .xlsm files that are not team workbooks
    failed: tuple[tuple[Path, str], ...]  # files that could not be harvested, and why

    @property
    def inserted(self) -> int:
        """Follow-ups stored by this harvest."""
        return sum(f.stored.inserted for f in self.files)

    def summary(self) -> str:
        """Lines for people: one per workbook, then the totals."""
        lines = [
            f"{f.path.name} ({f.team}): {f.rows} rows, {f.stored.inserted} new, "
            f"{f.stored.already_stored} already stored, {f.stored.rejected} with problems"
            for f in self.files
        ]
        lines += [f"{path.name}: FAILED: {reason}" for path, reason in self.failed]
        lines.append(
            f"{len(self.files)} workbooks harvested, {self.inserted} follow-ups stored"
            + (f", {len(self.failed)} failed" if self.failed else "")
            + (f", {len(self.skipped)} other .xlsm files skipped" if self.skipped else "")
        )
        return "\n".join(lines)

    def problems(self, current: dict[str, Path]) -> tuple[Problem, ...]:
        """Each file that could not be harvested, with its team by file name (``current``:
        the team workbook paths)."""
        return tuple(
            Problem(
                team_of_file(path, current),
                f"{path.name} could not be harvested ({reason}); what staff typed in it is "
                "NOT stored",
                f"repair {path.name} as the message says, or move it out of the folder "
                "once its rows are copied into the team's workbook",
            )
            for path, reason in self.failed
        )

    def check(self) -> None:
        """Raise :class:`WorkbookRefreshError` naming every workbook that failed."""
        if self.failed:
            raise WorkbookRefreshError(
                "could not harvest "
                + "; ".join(f"{path}: {reason}" for path, reason in self.failed)
            )


# -- harvest ------------------------------------------------------------------------------


def harvest_all(
    settings: Settings, engine: Engine, now: datetime, *, skip: Collection[Path] = ()
) -> HarvestReport:
    """Store the staff inputs of every team workbook in ``paths.workbooks_dir``.

    Every ``*.xlsm`` with a ``crm_team`` name counts (dated copies written beside an open
    workbook too); backups, owner files and temporary files are skipped, and so are the
    files in ``skip`` (the nightly run leaves the current team workbooks to the refresh,
    which harvests each from the bytes it then replaces, so no file is read twice).
    Idempotent: the same rows harvested twice are stored once. A workbook that cannot be
    harvested is reported in ``failed`` and the others are still stored.
    """
    files: list[HarvestedFile] = []
    skipped: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for path in workbooks_to_harvest(settings.workbooks_dir, skip):
        try:
            harvested = read_staff_inputs(path)
        except NotATeamWorkbookError:
            skipped.append(path)
            continue
        except DataError as exc:
            log.error("harvest: %s", exc)
            failed.append((path, str(exc)))
            continue
        rows = harvested.all_rows
        result = store_followups(engine, harvested.team, rows, path.name, now)
        files.append(HarvestedFile(path, harvested.team, len(rows), result))
        log.info(
            "harvest %s (team %s): %d rows, %d new, %d already stored, %d with problems",
            path.name,
            harvested.team,
            len(rows),
            result.inserted,
            result.already_stored,
            result.rejected,
        )
    return HarvestReport(tuple(files), tuple(skipped), tuple(failed))


# -- refresh ------------------------------------------------------------------------------


def refresh_team_workbooks(
    settings: Settings,
    engine: Engine,
    run: KpiRun,
    now: datetime,
    *,
    teams: Sequence[str] | None = None,
    vba_modules: Sequence[VbaModule] | None = None,
    unharvested: Collection[Path] = (),
) -> RefreshReport:
    """Harvest, rebuild and replace the workbook of every team in ``run`` (or ``teams``).

    ``now`` is the local wall time (naive) used for ``entered_at``, the workbooks'
    "generated" stamp and backup names. A team whose workbook cannot be built or
    replaced is a failure of that team only (:attr:`RefreshReport.failures`); the others
    are refreshed. A workbook left under an earlier form of the team's name is moved to
    the current one first (:func:`_move_previous`); dated copies beyond
    ``workbooks.keep_backups`` go to the backup folder, except those in ``unharvested``
    (files the harvest could not read). No old workbook is ever left half-replaced.
    """
    names = [team for team in run.reports if team is not None]
    if teams is not None:
        missing = [team for team in teams if team not in run.reports]
        if missing:
            raise KeyError(f"the KPI run has no report for team {missing[0]!r}")
        names = list(teams)
    settings.workbooks_dir.mkdir(parents=True, exist_ok=True)
    paths = team_workbook_paths(settings, names)
    history = read_history(engine, run.as_of, HISTORY_KPIS)
    customers = staff_merge.company_customers(run)
    done: list[TeamRefresh] = []
    failures: list[Problem] = []
    for team in names:
        path = paths[team]
        try:
            _move_previous(team, path, set(paths.values()), now)
            done.append(
                refresh_team_workbook(
                    settings,
                    engine,
                    run,
                    team,
                    path,
                    now,
                    history=history,
                    customers=customers,
                    vba_modules=vba_modules,
                )
            )
            moved = retire_side_copies(path, settings.workbooks.keep_backups, protect=unharvested)
            if moved:
                log.info(
                    "workbook of team %s: %d older dated copies moved to the backup folder",
                    show_team(team),
                    len(moved),
                )
        except Exception as exc:
            if not is_team_failure(exc):
                raise
            if not isinstance(exc, CrmBatchError):
                log.exception("workbook of team %s failed", show_team(team))
            failures.append(
                Problem(
                    team,
                    f"its workbook {path.name} could not be refreshed ({error_text(exc)}); "
                    "the old workbook is left as it was",
                    "fix what the message names; the next run refreshes it (report an "
                    "internal error with the log's traceback to the maintainers)",
                )
            )
            log.error("%s", failures[-1].line())
    return RefreshReport(tuple(done), tuple(failures))


def _move_previous(team: str, path: Path, current: Collection[Path], now: datetime) -> None:
    """Move ``team``'s workbook from an earlier form of its file name to ``path`` (or,
    when ``path`` exists already, into the backup folder), so no stale copy stays behind.
    Only a closed file whose ``crm_team`` is ``team`` moves; its rows were stored by the
    harvest stage, and the refresh harvests it again at its new name."""
    for old in previous_paths(path.parent, team, path):
        if old in current or owner_files(old):
            continue
        try:
            if read_staff_inputs(old).team != team:
                continue
        except DataError:
            continue
        if path.exists():
            target = archive(old, now)
            log.info("workbook of team %s: %s moved to %s", show_team(team), old.name, target)
        else:
            os.replace(old, path)
            log.info(
                "workbook of team %s renamed from %s to %s", show_team(team), old.name, path.name
            )


def refresh_team_workbook(
    settings: Settings,
    engine: Engine,
    run: KpiRun,
    team: str,
    path: Path,
    now: datetime,
    *,
    history: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    vba_modules: Sequence[VbaModule] | None = None,
) -> TeamRefresh:
    """Harvest, rebuild and replace one team's workbook at ``path`` (see the module docs
    of :mod:`crm_batch.excel.refresh`)."""
    report = run.reports[team]
    customers = staff_merge.company_customers(run) if customers is None else customers
    team_ids = set(report.customers["customer_id"].astype("string"))
    language = settings.team(team).language

    # read once, harvest from exactly those bytes, store (another team's rows too)
    current = read_current_workbook(path, team)
    result = NOTHING_STORED
    if current.harvested is not None:
        rows = current.harvested.all_rows
        result = store_followups(engine, current.harvested.team, rows, path.name, now)
    own = current.own
    saved = with_saved_at(own.all_rows, result) if own is not None else []
    typed = len(own.rows) if own is not None else 0
    merged = staff_merge.merge_staff_inputs(saved[:typed], team_ids, orphaned_before=saved[typed:])
    orphaned = staff_merge.orphaned_notes(merged.orphaned, customers)

    # rebuild from the run, the stored follow-ups and the history; put it in place
    frame = latest_followups(engine, sorted(team_ids))
    data = team_workbook_data(
        run, team, frame, settings, history=history, generated_at=now, language=language
    )
    written = write_team_workbook(
        data,
        current,
        now,
        language=language,
        staff_inputs=merged.shown,
        orphaned=orphaned,
        keep_backups=settings.workbooks.keep_backups,
        vba_modules=vba_modules,
    )
    outcome = TeamRefresh(
        team=team,
        path=path,
        written=written.target,
        kept_reason=written.kept_reason,
        backup=written.backup,
        customers=len(report.customers),
        harvested=len(own.rows) if own else 0,
        stored=result,
        orphaned=len(orphaned),
    )
    log.info("workbook %s", outcome.describe())
    return outcome
