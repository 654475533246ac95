"""Old nightly reports: the diagnosis reports and call sheets of business dates more than
``reports.keep_days`` days before the run's are removed from ``paths.reports_dir``.

Each night adds a diagnosis per scope and, with ``reports.per_owner``, a call sheet per
sales rep, as PDF and HTML; left alone the folder grows by tens of thousands of files a
year. Nothing is lost by removing them: every figure stays in the state database
(``kpi_snapshots``) and ``nightly --as-of D --outputs-to DIR`` renders any date again.

Only files whose whole name is one this package writes for a nightly report are
candidates (``diagnosis_<scope>_<YYYY-MM-DD>_<lang>.pdf``/``.html``,
``callsheet_<team>_<owner>_<YYYY-MM-DD>_<lang>.pdf``/``.html``), dated by the business
date in the name, never by the file's time; so is the temporary file a killed run left
beside one (``.<report name>.<random>.tmp``). Quarterly reviews, files people put there
and sub-folders are never touched. A file that cannot be removed is reported and left.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from crm_batch.i18n import LANGUAGES
from crm_batch.reports import callsheets, diagnosis

log = logging.getLogger(__name__)

#: The reports a nightly run writes once per business date.
NIGHTLY_REPORTS = (diagnosis.REPORT, callsheets.REPORT)

_DATED_NAME = re.compile(
    rf"(?:{'|'.join(map(re.escape, NIGHTLY_REPORTS))})_.+"
    rf"_(?P<day>\d{{4}}-\d{{2}}-\d{{2}})_(?:{'|'.join(map(re.escape, LANGUAGES))})"
    r"\.(?:pdf|html)"
)
#: The temporary file :func:`crm_batch.files.atomic_output` writes beside a report: left
#: behind only by a killed run, and dated by its report's name.
_LEFT_BEHIND = re.compile(r"\.(?P<report>.+)\.[^.]+\.tmp")


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune_nightly_reports` did: the files removed, and those it could not
    remove with the reason."""

    removed: tuple[Path, ...]
    failed: tuple[tuple[Path, str], ...]


def report_date(name: str) -> date | None:
    """The business date of a nightly report's file name, or of the temporary file a
    killed run left beside one; None for any other name."""
    left_behind = _LEFT_BEHIND.fullmatch(name)
    match = _DATED_NAME.fullmatch(left_behind["report"] if left_behind else name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match["day"])
    except ValueError:  # 2026-13-45: not a name this package wrote
        return None


def expired_reports(folder: Path, business_date: date, keep_days: int) -> list[Path]:
    """The nightly reports in ``folder`` dated ``keep_days`` or more days before
    ``business_date`` (the reports of the last ``keep_days`` dates are kept), by name;
    none when ``keep_days`` is 0 (keep everything) or the folder does not exist."""
    if keep_days <= 0 or not folder.is_dir():
        return []
    first_kept = business_date - timedelta(days=keep_days - 1)
    expired = []
    for path in folder.iterdir():
        day = report_date(path.name)
        if day is not None and day < first_kept and path.is_file() and not path.is_symlink():
            expired.append(path)
    return sorted(expired)


def prune_nightly_reports(folder: Path, business_date: date, keep_days: int) -> Pruned:
    """Remove :func:`expired_reports`; a file that cannot be removed is logged and left."""
    removed, failed = [], []
    for path in expired_reports(folder, business_date, keep_days):
        try:
            path.unlink()
        except FileNotFoundError:  # removed meanwhile (a second run): nothing to do
            continue
        except OSError as exc:
            log.warning("cannot remove the old report %s: %s", path.name, exc.strerror or exc)
            failed.append((path, exc.strerror or str(exc)))
        else:
            removed.append(path)
    return Pruned(tuple(removed), tuple(failed))
