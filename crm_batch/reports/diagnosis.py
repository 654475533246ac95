"""The customer status diagnosis report (客户现状诊断报告): PDF + standalone HTML per scope.

One report per scope (the company or a team) and language, from a :class:`KpiRun`:
``<reports_dir>/diagnosis_<scope>_<period>_<lang>.pdf`` and ``.html``, where scope is
``all`` or the team's file-system-safe slug and period is the business date. Each
report records its scope in the PDF (:func:`crm_batch.files.report_scope`) and carries
the digest of the data it shows (:func:`crm_batch.reports.render.content_digest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crm_batch.app.kpis import KpiRun
from crm_batch.app.report_extras import DiagnosisExtras
from crm_batch.config import Settings
from crm_batch.files import file_stem, report_scope
from crm_batch.reports.context import diagnosis_context
from crm_batch.reports.render import (
    ReportJob,
    content_digest,
    render_html,
    write_report,
    write_reports,
)

REPORT = "diagnosis"
TEMPLATE = "diagnosis.html"


@dataclass(frozen=True)
class RenderedReport:
    """One rendered report: what it is, for whom, and where it went.

    It has the attributes :mod:`crm_batch.delivery` reads (kind, team, period, language,
    pdf), so a run hands its rendered reports to delivery as they are.
    """

    kind: str  # "diagnosis" | "quarterly"
    team: str | None  # None = the company-wide report
    period: str  # the label in the file name: "2026-06-30", "2026Q3"
    language: str  # "zh-CN" | "en"
    pdf: Path
    html: Path
    content_sha256: str | None = None  # digest of the data shown (render.content_digest)


def scope_slug(team: str | None) -> str:
    """``all`` for the company, else the team's file-name stem
    (:func:`crm_batch.files.file_stem`); a team named "all" in any letter case gets
    the hashed form, so it never shares the company's file name."""
    if team is None:
        return "all"
    stem = file_stem(team)
    if stem.lower() == "all":
        return f"all-team-{_digest(team)}"
    return stem


def _digest(team: str) -> str:
    return hashlib.sha256(team.encode("utf-8")).hexdigest()[:8]


def output_paths(settings: Settings, team: str | None, period: str, language: str):
    """The PDF and HTML paths of one report."""
    stem = f"{REPORT}_{scope_slug(team)}_{period}_{language}"
    return settings.reports_dir / f"{stem}.pdf", settings.reports_dir / f"{stem}.html"


def report_language(settings: Settings, team: str | None, language: str | None) -> str:
    """The language asked for, else the scope's language (:meth:`Settings.language_of`)."""
    return language or settings.language_of(team)


def diagnosis_page(
    settings: Settings,
    run: KpiRun,
    team: str | None,
    language: str,
    extras: DiagnosisExtras | None = None,
) -> tuple[str, str]:
    """The diagnosis report of ``team`` (None = company) as standalone HTML (its scope
    recorded for the PDF) and the digest of the data it shows. ``extras``
    (:mod:`crm_batch.app.report_extras`): the tiles' previous values and targets and the
    call list's follow-ups."""
    context = diagnosis_context(
        run.reports[team],
        language=language,
        currency=settings.currency,
        company_name=settings.company_name,
        generated_at=datetime.now(settings.tz),
        extras=extras,
        likely_lost_p_alive=settings.thresholds.likely_lost_p_alive,
    )
    html = render_html(TEMPLATE, {**context, "scope_record": report_scope(team)})
    return html, content_digest(context)


def diagnosis_html(
    settings: Settings,
    run: KpiRun,
    team: str | None,
    language: str,
    extras: DiagnosisExtras | None = None,
) -> str:
    """The diagnosis report of ``team`` (None = company) as standalone HTML."""
    return diagnosis_page(settings, run, team, language, extras)[0]


def write_diagnosis(
    settings: Settings,
    run: KpiRun,
    team: str | None,
    language: str | None = None,
    extras: DiagnosisExtras | None = None,
) -> RenderedReport:
    """Render the diagnosis report of ``team`` and write its PDF and HTML atomically."""
    chosen = report_language(settings, team, language)
    period = run.as_of.isoformat()
    pdf_path, html_path = output_paths(settings, team, period, chosen)
    page, digest = diagnosis_page(settings, run, team, chosen, extras)
    write_report(page, pdf_path, html_path, timeout_seconds=settings.reports.render_timeout_seconds)
    return RenderedReport(REPORT, team, period, chosen, pdf_path, html_path, digest)


def write_diagnoses(
    settings: Settings,
    run: KpiRun,
    scopes: Sequence[str | None] | None = None,
    languages: Sequence[str] | None = None,
    extras: DiagnosisExtras | None = None,
) -> list[RenderedReport]:
    """Render the diagnosis reports of ``scopes`` (default: every report of the run) in
    ``languages`` (default: each scope's configured language), side by side in the render
    workers; each report is written atomically when its PDF is ready."""
    chosen_scopes = list(run.reports) if scopes is None else list(scopes)
    period = run.as_of.isoformat()
    rendered: list[RenderedReport] = []

    def jobs() -> Iterator[ReportJob]:
        # a generator: each PDF starts rendering while the next report's HTML is built
        for scope in chosen_scopes:
            for language in languages or [report_language(settings, scope, None)]:
                pdf_path, html_path = output_paths(settings, scope, period, language)
                page, digest = diagnosis_page(settings, run, scope, language, extras)
                rendered.append(
                    RenderedReport(REPORT, scope, period, language, pdf_path, html_path, digest)
                )
                yield ReportJob(page, pdf_path, html_path)

    write_reports(jobs(), timeout_seconds=settings.reports.render_timeout_seconds)
    return rendered
