"""The nightly refresh of the team workbooks, and the ``harvest`` command.

openpyxl's load-and-save of a workbook staff have edited silently drops features it does
not model (newer form controls, text boxes, data bars, sparklines, cross-sheet
validation), so a staff workbook is never edited in place. For each team the refresh

1. reads the current workbook once into memory (recording size, modification time and
   sha256), harvests its staff inputs from those bytes and stores them
   (:func:`crm_batch.excel.harvest.store_followups`);
2. builds a fresh workbook from the KPI run into a temporary file in the same folder, with
   the staff inputs merged back by customer id (rows of customers who left the team, and
   a second unsaved row for the same customer, go to the Orphaned notes sheet), and reads
   it back to compare with what it should contain;
3. replaces the old file atomically (``os.replace``) after copying it to
   ``<workbooks_dir>/backup/<name> <YYYY-MM-DD HHMMSS>.xlsm`` (the last
   ``workbooks.keep_backups`` copies per team are kept), with the old file's permission
   bits. If the workbook is open (an owner/lock file ``~$<name>`` or LibreOffice's
   ``.~lock.<name>#`` beside it), changed since it was read, or could not be harvested,
   it is left alone and the new one is written beside it as
   ``<name> <YYYY-MM-DD HHMM>.xlsm``; the report and the log say so.

A failure at any step before the replace leaves the old workbook byte-identical (the
temporary file is removed); the replace itself is atomic on one file system.

File names: a team's workbook is ``<team name>.xlsm`` when the name is a safe file name
on Windows, macOS and Linux, else a slug of it plus a short hash of the exact name
(``team-a-b-3f2a9c1d.xlsm`` for ``Team A/B``). The workbook itself knows its team from
its ``crm_team`` defined name, never from the file name.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from crm_batch.config import Settings
from crm_batch.errors import CrmBatchError, DataError
from crm_batch.excel.harvest import (
    HarvestedWorkbook,
    NotATeamWorkbookError,
    StoreResult,
    clean_text,
    latest_followups,
    read_staff_inputs,
    store_followups,
    with_saved_at,
)
from crm_batch.excel.layout import OrphanedNote, StaffInput
from crm_batch.excel.teamdata import read_history, team_workbook_data
from crm_batch.excel.workbook import build_team_workbook, verify_workbook
from crm_batch.files import file_stem

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crm_batch.app.kpis import KpiRun
    from crm_batch.excel.vba.project import VbaModule

log = logging.getLogger(__name__)

SUFFIX = ".xlsm"
BACKUP_FOLDER = "backup"
_BACKUP_STAMP = re.compile(r" (\d{4}-\d{2}-\d{2} \d{6})(?:-\d+)?\.xlsm")


class WorkbookRefreshError(CrmBatchError):
    """Some team workbooks could not be refreshed or harvested (the others were)."""

    exit_code = DataError.exit_code


# -- file names -------------------------------------------------------------------------


def team_workbook_paths(settings: Settings, teams: Iterable[str]) -> dict[str, Path]:
    """Each team's workbook path in ``paths.workbooks_dir``.

    Names that differ only in letter case (one file on Windows and macOS) get the hashed
    form, as do names that are not safe file names.
    """
    teams = list(dict.fromkeys(teams))
    stems = {team: file_stem(team) for team in teams}
    folded: dict[str, int] = {}
    for stem in stems.values():
        folded[stem.casefold()] = folded.get(stem.casefold(), 0) + 1
    for team, stem in stems.items():
        if folded[stem.casefold()] > 1:
            digest = hashlib.sha256(team.encode("utf-8")).hexdigest()[:8]
            stems[team] = f"{stem}-{digest}"
    return {team: settings.workbooks_dir / f"{stem}{SUFFIX}" for team, stem in stems.items()}


def owner_files(path: Path) -> list[Path]:
    """Lock files beside ``path`` saying it is open: Excel's and WPS's ``~$<name>`` (Excel
    drops the first two characters of long names) and LibreOffice's ``.~lock.<name>#``."""
    candidates = [f"~${path.name}", f".~lock.{path.name}#"]
    if len(path.name) > 2:
        candidates.append(f"~${path.name[2:]}")
    return [
        path.parent / name for name in dict.fromkeys(candidates) if (path.parent / name).exists()
    ]


def _beside_path(path: Path, now: datetime) -> Path:
    """``<stem> <YYYY-MM-DD HHMM>.xlsm`` beside ``path``, not yet taken."""
    base = f"{path.stem} {now:%Y-%m-%d %H%M}"
    candidate = path.with_name(base + SUFFIX)
    counter = 2
    while candidate.exists():
        candidate = path.with_name(f"{base} ({counter}){SUFFIX}")
        counter += 1
    return candidate


def _is_generated_copy(name: str) -> bool:
    return name.startswith(("~$", ".")) or not name.lower().endswith(SUFFIX)


# -- reports ------------------------------------------------------------------------------


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
    stored: StoreResult = field(default_factory=lambda: StoreResult(0, 0, 0, ()))
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


@dataclass(frozen=True)
class RefreshReport:
    """The nightly refresh of every team's workbook."""

    teams: tuple[TeamRefresh, ...]

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
    skipped_paths = {Path(p).resolve() for p in skip}
    folder = settings.workbooks_dir
    files: list[HarvestedFile] = []
    skipped: list[Path] = []
    failed: list[tuple[Path, str]] = []
    paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    for path in paths:
        if _is_generated_copy(path.name) or not path.is_file():
            continue
        if path.resolve() in skipped_paths:
            continue
        try:
            harvested = read_staff_inputs(path)
        except NotATeamWorkbookError:
            skipped.append(path)
            continue
        except DataError as exc:
            log.error("harvest: %s", exc)
            failed.append((path, str(exc)))
            continue
        rows = [*harvested.rows, *harvested.orphaned_rows]
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


@dataclass(frozen=True)
class _Snapshot:
    """The old workbook as read: compared again just before it is replaced."""

    size: int
    mtime_ns: int
    sha256: str


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_size, info.st_mtime_ns


def _read_snapshot(path: Path) -> tuple[bytes, _Snapshot] | None:
    """The file's bytes and its snapshot; None if it does not exist. A file that changes
    while being read is read again (a save in progress)."""
    for _attempt in range(3):
        before = _stat(path)
        if before is None:
            return None
        data = path.read_bytes()
        after = _stat(path)
        if before == after and after is not None and after[0] == len(data):
            return data, _Snapshot(after[0], after[1], hashlib.sha256(data).hexdigest())
    raise DataError(f"{path}: the file keeps changing while it is read; try again later")


def _changed_since(path: Path, snapshot: _Snapshot | None) -> str | None:
    """Why ``path`` is not as it was read (None when it is unchanged)."""
    now = _stat(path)
    if snapshot is None:
        return None if now is None else "a workbook appeared while the new one was built"
    if now is None:
        return "the workbook was moved or deleted while the new one was built"
    if now != (snapshot.size, snapshot.mtime_ns):
        return "the workbook was saved while the new one was built"
    if hashlib.sha256(path.read_bytes()).hexdigest() != snapshot.sha256:
        return "the workbook's content changed while the new one was built"
    return None


def _company_customers(run: KpiRun) -> pd.DataFrame:
    """customer_id (text) -> name, team of every customer in the run."""
    if None in run.reports:
        frames = [run.reports[None].customers]
    else:
        frames = [report.customers for report in run.reports.values()]
    columns = [c for c in ("customer_id", "name", "team") if c in frames[0].columns]
    table = pd.concat([frame[columns] for frame in frames], ignore_index=True)
    table["customer_id"] = table["customer_id"].astype("string")
    return table.drop_duplicates("customer_id").set_index("customer_id")


def _orphaned_note(row: StaffInput, customers: pd.DataFrame) -> OrphanedNote:
    """A staff row as an Orphaned notes row; an invalid row keeps what staff typed."""
    known = row.customer_id in customers.index
    name = customers.at[row.customer_id, "name"] if known and "name" in customers else None
    team = customers.at[row.customer_id, "team"] if known and "team" in customers else None
    outcome = row.outcome
    note = row.note
    if row.problem:
        outcome = row.outcome or clean_text(row.raw.get("outcome"))
        if row.next_contact_date is None and clean_text(row.raw.get("next_contact_date")):
            extra = f"[{clean_text(row.raw.get('next_contact_date'))}]"
            note = f"{note}\n{extra}" if note else extra
    return OrphanedNote(
        customer_id=row.customer_id,
        customer_name=None if pd.isna(name) else str(name),
        current_team=None if pd.isna(team) else str(team),
        outcome=outcome,
        note=note,
        next_contact_date=row.next_contact_date,
        entered_by=row.entered_by,
        sheet_row=row.sheet_row,
    )


def merge_staff_inputs(
    harvested: HarvestedWorkbook | None,
    stored: StoreResult,
    team_ids: set[str],
    customers: pd.DataFrame,
) -> tuple[dict[str, StaffInput], list[OrphanedNote]]:
    """The staff inputs to carry into the new workbook, by customer id, and the orphaned
    notes.

    ``stored`` is :func:`store_followups`' result for ``harvested.rows`` followed by
    ``harvested.orphaned_rows``. One row per team customer stays on the Follow-ups sheet
    (an unsaved row with a problem first, else the last saved one); rows of customers no
    longer in the team, further unsaved rows of the same customer, and unsaved rows of
    the previous Orphaned notes sheet go to the Orphaned notes sheet. Saved rows of the
    previous Orphaned notes sheet are in the database and follow their customer.
    """
    if harvested is None:
        return {}, []
    rows = with_saved_at([*harvested.rows, *harvested.orphaned_rows], stored)
    follow, previous_orphans = rows[: len(harvested.rows)], rows[len(harvested.rows) :]
    inputs: dict[str, StaffInput] = {}
    orphaned: list[OrphanedNote] = []
    for row in follow:
        if row.customer_id not in team_ids:
            orphaned.append(_orphaned_note(row, customers))
            continue
        current = inputs.get(row.customer_id)
        if current is None or (current.problem is None):
            # the first row of the customer, or the row after a saved one (which is in
            # the database either way): this one shows
            inputs[row.customer_id] = row
        elif row.problem:
            # a second unsaved row of the same customer: the table has one row per
            # customer, so it goes to the Orphaned notes sheet rather than being lost
            orphaned.append(_orphaned_note(row, customers))
    orphaned.extend(_orphaned_note(row, customers) for row in previous_orphans if row.problem)
    return inputs, orphaned


def _copy_backup(path: Path, now: datetime) -> Path:
    """Copy ``path`` (content, permission bits, times) into the backup folder."""
    folder = path.parent / BACKUP_FOLDER
    folder.mkdir(exist_ok=True)
    base = f"{path.stem} {now:%Y-%m-%d %H%M%S}"
    target = folder / f"{base}{SUFFIX}"
    counter = 2
    while target.exists():
        target = folder / f"{base}-{counter}{SUFFIX}"
        counter += 1
    temporary = folder / f".{base}.{secrets.token_hex(4)}.tmp"
    try:
        shutil.copy2(path, temporary)
        _fsync(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return target


def prune_backups(folder: Path, stem: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups of the workbook ``stem``; return them."""
    if not folder.is_dir():
        return []
    prefix = re.compile(re.escape(stem) + _BACKUP_STAMP.pattern)
    found = sorted(
        (path for path in folder.iterdir() if prefix.fullmatch(path.name)),
        key=lambda p: (prefix.fullmatch(p.name)[1], p.name),  # type: ignore[index]
    )
    removed = found[: max(len(found) - keep, 0)]
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return removed


def _remove_stale_temporaries(path: Path, older_than_seconds: float = 3600.0) -> None:
    """Remove temporary workbooks of ``path`` left by a run that was killed (kill -9,
    power loss); a temporary file is never older than one build."""
    cutoff = time.time() - older_than_seconds
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{SUFFIX}"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
                log.info("removed %s, left by an interrupted run", stale.name)


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not possible on every OS / file system
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _copy_permissions(source: Path, target: Path) -> None:
    """Give ``target`` the permission bits (and, where allowed, owner) of ``source``."""
    info = source.stat()
    os.chmod(target, stat.S_IMODE(info.st_mode))
    with contextlib.suppress(OSError, AttributeError):
        if hasattr(os, "chown") and (info.st_uid, info.st_gid) != (
            target.stat().st_uid,
            target.stat().st_gid,
        ):
            os.chown(target, info.st_uid, info.st_gid)


def refresh_team_workbooks(
    settings: Settings,
    engine: Engine,
    run: KpiRun,
    now: datetime,
    *,
    teams: Sequence[str] | None = None,
    vba_modules: Sequence[VbaModule] | None = None,
) -> RefreshReport:
    """Harvest, rebuild and replace the workbook of every team in ``run`` (or ``teams``).

    ``now`` is the local wall time (naive) used for ``entered_at``, the workbooks'
    "generated" stamp and backup names. A team whose workbook cannot be built stops that
    team only; the others are refreshed and then :class:`WorkbookRefreshError` names
    the failures. An unexpected error (a bug) propagates at once. Either way no old
    workbook is left half-replaced.
    """
    names = [team for team in run.reports if team is not None]
    if teams is not None:
        missing = [team for team in teams if team not in run.reports]
        if missing:
            raise KeyError(f"the KPI run has no report for team {missing[0]!r}")
        names = list(teams)
    settings.workbooks_dir.mkdir(parents=True, exist_ok=True)
    paths = team_workbook_paths(settings, names)
    history = read_history(engine, run.as_of)
    customers = _company_customers(run)
    done: list[TeamRefresh] = []
    failures: list[str] = []
    for team in names:
        try:
            done.append(
                refresh_team_workbook(
                    settings,
                    engine,
                    run,
                    team,
                    paths[team],
                    now,
                    history=history,
                    customers=customers,
                    vba_modules=vba_modules,
                )
            )
        except CrmBatchError as exc:
            log.error("workbook of team %r: %s", team, exc)
            failures.append(f"team {team!r}: {exc}")
    if failures:
        raise WorkbookRefreshError(
            f"{len(failures)} of {len(names)} team workbooks failed (the others were "
            "refreshed): " + "; ".join(failures)
        )
    return RefreshReport(tuple(done))


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
    """Harvest, rebuild and replace one team's workbook at ``path`` (see the module docs)."""
    report = run.reports[team]
    customers = _company_customers(run) if customers is None else customers
    team_ids = set(report.customers["customer_id"].astype("string"))
    language = settings.team(team).language

    # (a) read once, harvest from exactly those bytes, store
    read = _read_snapshot(path)
    snapshot = read[1] if read else None
    harvested: HarvestedWorkbook | None = None
    problem: str | None = None
    result = StoreResult(0, 0, 0, ())
    if read is not None:
        try:
            harvested = read_staff_inputs(path, read[0])
        except DataError as exc:
            problem = f"its staff inputs could not be read: {exc}"
            log.error("workbook of team %r: %s", team, problem)
        if harvested is not None:
            if harvested.team != team:
                problem = f"it is the workbook of team {harvested.team!r}"
            rows = [*harvested.rows, *harvested.orphaned_rows]
            result = store_followups(engine, harvested.team, rows, path.name, now)
            if harvested.team != team:
                harvested = None
    inputs, orphaned = merge_staff_inputs(harvested, result, team_ids, customers)

    # (b) build into a temporary file beside the workbook and read it back
    frame = latest_followups(engine, sorted(team_ids))
    data = team_workbook_data(
        run, team, frame, settings, history=history, generated_at=now, language=language
    )
    _remove_stale_temporaries(path)
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{SUFFIX}")
    try:
        summary = build_team_workbook(
            data,
            temporary,
            language=language,
            staff_inputs=inputs,
            orphaned=orphaned,
            vba_modules=vba_modules,
            verify=False,
        )
        verify_workbook(temporary, summary)
        _fsync(temporary)

        # (c) replace, or write beside an open / changed / unreadable workbook
        reason = problem
        locks = owner_files(path)
        if reason is None and locks:
            reason = f"it is open ({locks[0].name} exists)"
        if reason is None:
            reason = _changed_since(path, snapshot)
        backup = None
        if reason is not None:
            target = _beside_path(path, now)
            if path.exists():
                _copy_permissions(path, temporary)
            os.replace(temporary, target)
            log.warning(
                "workbook of team %r: %s not replaced because %s; the new workbook is %s",
                team,
                path,
                reason,
                target.name,
            )
        else:
            target = path
            if snapshot is not None:
                backup = _copy_backup(path, now)
                _copy_permissions(path, temporary)
                reason = _changed_since(path, snapshot)  # the last moment to notice
                if reason is not None:
                    target = _beside_path(path, now)
                    log.warning(
                        "workbook of team %r: %s not replaced because %s; the new workbook is %s",
                        team,
                        path,
                        reason,
                        target.name,
                    )
            os.replace(temporary, target)
        _fsync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    if backup is not None:
        removed = prune_backups(backup.parent, path.stem, settings.workbooks.keep_backups)
        if removed:
            log.debug("workbook of team %r: removed %d old backups", team, len(removed))
    outcome = TeamRefresh(
        team=team,
        path=path,
        written=target,
        kept_reason=reason,
        backup=backup,
        customers=len(report.customers),
        harvested=len(harvested.rows) if harvested else 0,
        stored=result,
        orphaned=len(orphaned),
    )
    log.info("workbook %s", outcome.describe())
    return outcome


# -- nightly stages -------------------------------------------------------------------------
