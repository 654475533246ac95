"""Who gets which report: recipients come only from the settings, never from the data.

* a team's report goes to that team's ``manager_email`` (``[[teams]]`` in the settings);
* the company-wide report goes to every address in ``email.management``.

When the same report (kind, scope, period) was rendered in several languages, a team
manager gets the team's configured ``language`` and management the general
``language``; if that language was not rendered, every rendered language is sent, so
nobody silently gets nothing. A team without a ``manager_email`` (or missing from the
settings) gets nothing; :func:`unaddressed_reports` lists those reports for the run's
summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from crm_batch.config import Settings
from crm_batch.delivery.summary import ReportSummary
from crm_batch.errors import DataError

#: The report kinds that can be delivered.
REPORT_KINDS = ("diagnosis", "quarterly")


class Deliverable(Protocol):
    """A rendered report as delivery reads it; :class:`ReportFile` and the reports'
    ``RenderedReport`` (:mod:`crm_batch.reports.diagnosis`) are both one."""

    @property
    def kind(self) -> str: ...
    @property
    def team(self) -> str | None: ...
    @property
    def period(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def pdf(self) -> Path: ...


@dataclass(frozen=True)
class ReportFile:
    """One rendered PDF to deliver: what it is, for whom (scope) and where it lies;
    ``content_sha256`` (the digest of the data it shows, for ``email.only_if_changed``)
    and ``summary`` (for the mail body) come from the jobs layer when it has them."""

    kind: str  # "diagnosis" | "quarterly"
    team: str | None  # None = the company-wide report
    period: str  # the label in the file name: "2026-06-30", "2026Q3"
    language: str  # "zh-CN" | "en"
    pdf: Path
    content_sha256: str | None = field(default=None, compare=False)
    summary: ReportSummary | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Delivery:
    """One message to send: one report to one recipient."""

    report: ReportFile
    recipient: str
    role: str  # "manager" | "management"


def as_report_file(report: Deliverable) -> ReportFile:
    """``report`` as a :class:`ReportFile`, checking its kind."""
    item = (
        report
        if isinstance(report, ReportFile)
        else ReportFile(
            report.kind,
            report.team,
            report.period,
            report.language,
            report.pdf,
            getattr(report, "content_sha256", None),
        )
    )
    if item.kind not in REPORT_KINDS:
        raise DataError(f"{item.pdf}: unknown report kind {item.kind!r} (one of {REPORT_KINDS})")
    return item


def plan_deliveries(settings: Settings, reports: Iterable[Deliverable]) -> list[Delivery]:
    """The messages to send for ``reports``, in a stable order (input order, then
    recipients in settings order); a report given twice is planned once."""
    files = _unique(as_report_file(report) for report in reports)
    deliveries: list[Delivery] = []
    for report in _preferred_languages(settings, files):
        role = "management" if report.team is None else "manager"
        for recipient in _recipients(settings, report.team):
            deliveries.append(Delivery(report=report, recipient=recipient, role=role))
    return deliveries


def unaddressed_reports(settings: Settings, reports: Iterable[Deliverable]) -> list[ReportFile]:
    """The reports nobody is configured to receive (no manager_email / no management)."""
    files = _unique(as_report_file(report) for report in reports)
    return [report for report in files if not _recipients(settings, report.team)]


def _unique(files: Iterable[ReportFile]) -> list[ReportFile]:
    seen: set[ReportFile] = set()
    result = []
    for item in files:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


def _recipients(settings: Settings, team: str | None) -> list[str]:
    if team is None:
        return list(dict.fromkeys(settings.email.management))
    manager = settings.team(team).manager_email
    return [manager] if manager else []


def _preferred_languages(settings: Settings, files: Sequence[ReportFile]) -> list[ReportFile]:
    """Of each report rendered in several languages keep the recipient's language."""
    groups: dict[tuple[str, str | None, str], list[ReportFile]] = {}
    for item in files:
        groups.setdefault((item.kind, item.team, item.period), []).append(item)
    keep: set[ReportFile] = set()
    for (_, team, _), group in groups.items():
        wanted = settings.language_of(team)
        preferred = [item for item in group if item.language == wanted]
        keep.update(preferred or group)
    return [item for item in files if item in keep]
