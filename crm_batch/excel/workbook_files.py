"""Team workbook files: their names, and replacing one safely.

openpyxl's load-and-save of a workbook staff have edited silently drops features it does
not model, so a staff workbook is never edited in place: it is read once (size,
modification time and sha256 recorded, :func:`read_snapshot`), a new one is built into a
temporary file beside it, and the old file is replaced atomically after a copy went to
``<workbooks_dir>/backup/<name> <YYYY-MM-DD HHMMSS>.xlsm`` (:func:`copy_backup`,
:func:`prune_backups`). This module holds those file steps; :mod:`crm_batch.excel.refresh`
puts them in order.

File names: a team's workbook is ``<team name>.xlsm`` when the name is a safe file name
on Windows, macOS and Linux, else a slug of it plus a short hash of the exact name
(``team-a-b-3f2a9c1d.xlsm`` for ``Team A/B``). The workbook itself knows its team from
its ``crm_team`` defined name, never from the file name. When a team's name changes
form (a new team whose name differs only in letter case forces the hashed form), the
workbook under the old name is one of :func:`previous_paths`; the nightly refresh moves
it to the new name instead of leaving it behind, stale.

Dated copies written beside an open or unreadable workbook
(``<stem> <YYYY-MM-DD HHMM>.xlsm``, :func:`beside_path`) are harvested every night; all
but the newest ``workbooks.keep_backups`` of them are moved into the backup folder
(:func:`retire_side_copies`), where they are pruned like backups.
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
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crm_batch.config import Settings
from crm_batch.errors import DataError
from crm_batch.files import file_stem

log = logging.getLogger(__name__)

SUFFIX = ".xlsm"
BACKUP_FOLDER = "backup"
_BACKUP_STAMP = re.compile(r" (\d{4}-\d{2}-\d{2} \d{6})(?:-\d+)?\.xlsm")
_SIDE_STAMP = re.compile(r" (\d{4}-\d{2}-\d{2} \d{4})(?: \((\d+)\))?\.xlsm")


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


def _hashed_stem(team: str) -> str:
    digest = hashlib.sha256(team.encode("utf-8")).hexdigest()[:8]
    return f"{file_stem(team)}-{digest}"


def previous_paths(folder: Path, team: str, current: Path) -> list[Path]:
    """Existing files in ``folder`` that were ``team``'s workbook under another form of
    its name (the plain or the hashed stem, whichever ``current`` is not), by name only:
    the caller checks the ``crm_team`` inside."""
    stems = [file_stem(team), _hashed_stem(team)]
    paths = [folder / f"{stem}{SUFFIX}" for stem in dict.fromkeys(stems)]
    return [path for path in paths if path != current and path.is_file()]


def team_of_file(path: Path, current: dict[str, Path]) -> str | None:
    """The team whose workbook ``path`` is, or is a dated copy of, by file name (None:
    no current team's)."""
    for team, team_path in current.items():
        if path.name == team_path.name or _side_stamp(path, team_path) is not None:
            return team
    return None


def _side_stamp(other: Path, path: Path) -> tuple[str, int] | None:
    """The stamp and counter of ``other`` when it is a dated copy of ``path``."""
    if other.parent != path.parent or not other.name.startswith(path.stem):
        return None
    match = _SIDE_STAMP.fullmatch(other.name[len(path.stem) :])
    return (match[1], int(match[2] or 1)) if match else None


def side_copies(path: Path) -> list[Path]:
    """The dated copies written beside ``path`` (:func:`beside_path`), oldest first."""
    if not path.parent.is_dir():
        return []
    found = []
    for other in path.parent.iterdir():
        stamp = _side_stamp(other, path)
        if stamp is not None and other.is_file():
            found.append((stamp, other))
    return [other for _stamp, other in sorted(found)]


def retire_side_copies(path: Path, keep: int, *, protect: Collection[Path] = ()) -> list[Path]:
    """Move all but the newest ``keep`` dated copies of ``path`` into the backup folder
    (named like backups, so :func:`prune_backups` rotates them); copies in ``protect``
    (not harvested yet) and open ones stay. Returns the copies moved."""
    protected = {Path(p).resolve() for p in protect}
    copies = side_copies(path)
    moved = []
    for copy in copies[: max(len(copies) - keep, 0)]:
        stamp = _side_stamp(copy, path)
        if stamp is None or copy.resolve() in protected or owner_files(copy):
            continue
        written = datetime.strptime(stamp[0], "%Y-%m-%d %H%M")
        moved.append(archive(copy, written, path.stem))
    if moved:
        prune_backups(path.parent / BACKUP_FOLDER, path.stem, keep)
    return moved


def backup_path(workbooks: Path, stem: str, stamp: datetime) -> Path:
    """A free path in ``workbooks``' backup folder for a backup of ``stem`` taken at
    ``stamp`` (``<stem> YYYY-MM-DD HHMMSS.xlsm``, ``-2``, ``-3``... when taken twice in a
    second); the folder is created if missing."""
    folder = workbooks / BACKUP_FOLDER
    folder.mkdir(exist_ok=True)
    base = f"{stem} {stamp:%Y-%m-%d %H%M%S}"
    target = folder / f"{base}{SUFFIX}"
    counter = 2
    while target.exists():
        target = folder / f"{base}-{counter}{SUFFIX}"
        counter += 1
    return target


def archive(path: Path, stamp: datetime, stem: str | None = None) -> Path:
    """Move ``path`` into the backup folder as a backup of ``stem`` (default: its own
    stem) taken at ``stamp``; returns its new path."""
    target = backup_path(path.parent, stem or path.stem, stamp)
    os.replace(path, target)
    fsync_folder(target.parent)
    return target


def owner_files(path: Path) -> list[Path]:
    """Lock files beside ``path`` saying it is open: Excel's and WPS's ``~$<name>`` (Excel
    drops the first two characters of long names) and LibreOffice's ``.~lock.<name>#``."""
    candidates = [f"~${path.name}", f".~lock.{path.name}#"]
    if len(path.name) > 2:
        candidates.append(f"~${path.name[2:]}")
    return [
        path.parent / name for name in dict.fromkeys(candidates) if (path.parent / name).exists()
    ]


def beside_path(path: Path, now: datetime) -> Path:
    """``<stem> <YYYY-MM-DD HHMM>.xlsm`` beside ``path``, not yet taken."""
    base = f"{path.stem} {now:%Y-%m-%d %H%M}"
    candidate = path.with_name(base + SUFFIX)
    counter = 2
    while candidate.exists():
        candidate = path.with_name(f"{base} ({counter}){SUFFIX}")
        counter += 1
    return candidate


def is_generated_copy(name: str) -> bool:
    """Whether ``name`` is an owner file, a hidden or temporary file, or not a workbook."""
    return name.startswith(("~$", ".")) or not name.lower().endswith(SUFFIX)


def workbooks_to_harvest(folder: Path, skip: Collection[Path] = ()) -> list[Path]:
    """Every ``*.xlsm`` in ``folder`` that may be a team workbook, by name: dated copies
    written beside an open workbook too; owner files, temporary files, sub-folders (the
    backups) and the files in ``skip`` left out."""
    skipped = {Path(p).resolve() for p in skip}
    paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    return [
        path
        for path in paths
        if not is_generated_copy(path.name) and path.is_file() and path.resolve() not in skipped
    ]


@dataclass(frozen=True)
class Snapshot:
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


def read_snapshot(path: Path) -> tuple[bytes, Snapshot] | None:
    """The file's bytes and its snapshot; None if it does not exist. A file that changes
    while being read is read again (a save in progress)."""
    for _attempt in range(3):
        before = _stat(path)
        if before is None:
            return None
        data = path.read_bytes()
        after = _stat(path)
        if before == after and after is not None and after[0] == len(data):
            return data, Snapshot(after[0], after[1], hashlib.sha256(data).hexdigest())
    raise DataError(f"{path}: the file keeps changing while it is read; try again later")


def changed_since(path: Path, snapshot: Snapshot | None) -> str | None:
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


def copy_backup(path: Path, now: datetime) -> Path:
    """Copy ``path`` (content, permission bits, times) into the backup folder."""
    target = backup_path(path.parent, path.stem, now)
    folder = target.parent
    temporary = folder / f".{target.stem}.{secrets.token_hex(4)}.tmp"
    try:
        shutil.copy2(path, temporary)
        fsync(temporary)
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


def remove_stale_temporaries(path: Path, older_than_seconds: float = 3600.0) -> None:
    """Remove temporary workbooks of ``path`` left by a run that was killed (kill -9,
    power loss); a temporary file is never older than one build."""
    cutoff = time.time() - older_than_seconds
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{SUFFIX}"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
                log.info("removed %s, left by an interrupted run", stale.name)


def fsync(path: Path) -> None:
    """Flush ``path``'s content to the disk."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename in it) to the disk, where the OS allows."""
    with contextlib.suppress(OSError):  # not possible on every OS / file system
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def copy_permissions(source: Path, target: Path) -> None:
    """Give ``target`` the permission bits (and, where allowed, owner) of ``source``."""
    info = source.stat()
    os.chmod(target, stat.S_IMODE(info.st_mode))
    with contextlib.suppress(OSError, AttributeError):
        if hasattr(os, "chown") and (info.st_uid, info.st_gid) != (
            target.stat().st_uid,
            target.stat().st_gid,
        ):
            os.chown(target, info.st_uid, info.st_gid)
