"""One team workbook rebuilt from plain data, and put in place of the old file safely.

The nightly refresh (:mod:`crm_batch.jobs.workbooks`) does, for each team:

1. :func:`read_current_workbook`: read the current workbook once into memory (size,
   modification time and sha256 recorded) and harvest its staff inputs from exactly
   those bytes; the job stores them and merges them
   (:func:`crm_batch.excel.staff_merge.merge_staff_inputs`);
2. :func:`write_team_workbook`: build a fresh workbook from the team's data into a
   temporary file in the same folder, with the staff inputs merged back by customer id
   and the orphaned notes on their sheet, and read it back to compare with what it
   should contain;
3. replace the old file atomically (``os.replace``) after copying it to the backup
   folder (the last ``workbooks.keep_backups`` copies per team are kept), with the old
   file's permission bits. If the workbook is open (an owner/lock file ``~$<name>`` or
   LibreOffice's ``.~lock.<name>#`` beside it), changed since it was read, or could not
   be harvested, it is left alone and the new one is written beside it as
   ``<name> <YYYY-MM-DD HHMM>.xlsm``; the report and the log say so.

A failure at any step before the replace leaves the old workbook byte-identical (the
temporary file is removed); the replace itself is atomic on one file system. Nothing
here opens a database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crm_batch.app.followups import StaffInput
from crm_batch.errors import DataError
from crm_batch.excel.harvest import HarvestedWorkbook, read_staff_inputs
from crm_batch.excel.layout import OrphanedNote
from crm_batch.excel.teamdata import TeamWorkbookData
from crm_batch.excel.workbook import build_team_workbook, verify_workbook
from crm_batch.excel.workbook_files import (
    SUFFIX,
    Snapshot,
    beside_path,
    changed_since,
    copy_backup,
    copy_permissions,
    fsync,
    fsync_folder,
    owner_files,
    prune_backups,
    read_snapshot,
    remove_stale_temporaries,
)

if TYPE_CHECKING:
    from crm_batch.excel.vba.project import VbaModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurrentWorkbook:
    """A team's workbook as read before its rebuild.

    ``harvested`` is what it holds of staff input (None: no file, or unreadable);
    ``problem`` why it must not be replaced (unreadable, or another team's workbook).
    """

    path: Path
    snapshot: Snapshot | None
    harvested: HarvestedWorkbook | None
    problem: str | None

    @property
    def own(self) -> HarvestedWorkbook | None:
        """The harvest when the file is this team's workbook (its rows are merged back);
        another team's rows are stored but not merged."""
        return None if self.problem else self.harvested


def read_current_workbook(path: Path, team: str) -> CurrentWorkbook:
    """Read ``team``'s workbook at ``path`` once and harvest it from those very bytes.

    A file that cannot be harvested, or that is another team's workbook, is reported in
    ``problem`` (logged) rather than raised: the new workbook is then written beside it.
    """
    read = read_snapshot(path)
    if read is None:
        return CurrentWorkbook(path, None, None, None)
    data, snapshot = read
    try:
        harvested = read_staff_inputs(path, data)
    except DataError as exc:
        problem = f"its staff inputs could not be read: {exc}"
        log.error("workbook of team %r: %s", team, problem)
        return CurrentWorkbook(path, snapshot, None, problem)
    problem = None if harvested.team == team else f"it is the workbook of team {harvested.team!r}"
    return CurrentWorkbook(path, snapshot, harvested, problem)


@dataclass(frozen=True)
class WrittenWorkbook:
    """Where a rebuilt workbook went: ``target`` is the team's path itself, or a dated
    file beside it when ``kept_reason`` says why the old one was left alone."""

    target: Path
    kept_reason: str | None
    backup: Path | None


def write_team_workbook(
    data: TeamWorkbookData,
    current: CurrentWorkbook,
    now: datetime,
    *,
    language: str,
    staff_inputs: Mapping[str, StaffInput],
    orphaned: Sequence[OrphanedNote],
    keep_backups: int,
    vba_modules: Sequence[VbaModule] | None = None,
) -> WrittenWorkbook:
    """Build ``data``'s workbook beside ``current.path``, verify it and put it in place
    (see the module docs); ``now`` names backups and dated files."""
    path = current.path
    team = data.team
    remove_stale_temporaries(path)
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{SUFFIX}")
    try:
        summary = build_team_workbook(
            data,
            temporary,
            language=language,
            staff_inputs=staff_inputs,
            orphaned=orphaned,
            vba_modules=vba_modules,
            verify=False,
        )
        verify_workbook(temporary, summary)
        fsync(temporary)

        # replace, or write beside an open / changed / unreadable workbook
        reason = current.problem
        locks = owner_files(path)
        if reason is None and locks:
            reason = f"it is open ({locks[0].name} exists)"
        if reason is None:
            reason = changed_since(path, current.snapshot)
        backup = None
        if reason is not None:
            target = beside_path(path, now)
            if path.exists():
                copy_permissions(path, temporary)
            os.replace(temporary, target)
            _log_beside(team, path, reason, target)
        else:
            target = path
            if current.snapshot is not None:
                backup = copy_backup(path, now)
                copy_permissions(path, temporary)
                reason = changed_since(path, current.snapshot)  # the last moment to notice
                if reason is not None:
                    target = beside_path(path, now)
                    _log_beside(team, path, reason, target)
            os.replace(temporary, target)
        fsync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    if backup is not None:
        removed = prune_backups(backup.parent, path.stem, keep_backups)
        if removed:
            log.debug("workbook of team %r: removed %d old backups", team, len(removed))
    return WrittenWorkbook(target, reason, backup)


def _log_beside(team: str, path: Path, reason: str, target: Path) -> None:
    log.warning(
        "workbook of team %r: %s not replaced because %s; the new workbook is %s",
        team,
        path,
        reason,
        target.name,
    )
