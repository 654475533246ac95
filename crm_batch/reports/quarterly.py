"""The quarterly review (季度复盘报告): PDF + standalone HTML per scope and language.

``<reports_dir>/quarterly_<scope>_<quarter>_<lang>.pdf`` and ``.html``, scope ``all``
or the team's slug (:func:`crm_batch.reports.diagnosis.scope_slug`), quarter such as
``2026Q2``. :func:`write_quarterly_reviews` is what the quarterly run's ``reviews``
stage calls: it renders each review from one :class:`~crm_batch.app.quarter.QuarterData`
(gathered by :func:`crm_batch.app.quarter.gather_quarter`), atomically, its scope
recorded in the PDF and the digest of its data on the :class:`RenderedReport`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from crm_batch.app.quarter import QuarterData
from crm_batch.config import Settings
from crm_batch.files import report_scope
from crm_batch.periods import Period
from crm_batch.reports.diagnosis import RenderedReport, report_language, scope_slug
from crm_batch.reports.quarterly_context import quarterly_context
from crm_batch.reports.render import (
    ReportJob,
    content_digest,
    render_html,
    write_report,
    write_reports,
)

log = logging.getLogger(__name__)

REPORT = "quarterly"
TEMPLATE = "quarterly.html"


def output_paths(
    settings: Settings, team: str | None, quarter: Period, language: str
) -> tuple[Path, Path]:
    """The PDF and HTML paths of one review."""
    stem = f"{REPORT}_{scope_slug(team)}_{quarter.label}_{language}"
    return settings.reports_dir / f"{stem}.pdf", settings.reports_dir / f"{stem}.html"


def quarterly_page(
    settings: Settings,
    data: QuarterData,
    team: str | None,
    language: str,
    generated_at: datetime | None = None,
) -> tuple[str, str]:
    """The review's HTML (its scope recorded for the PDF) and the digest of its data."""
    context = quarterly_context(
        data,
        team,
        language=language,
        currency=settings.currency,
        company_name=settings.company_name,
        generated_at=generated_at or datetime.now(settings.tz),
    )
    html = render_html(TEMPLATE, {**context, "scope_record": report_scope(team)})
    return html, content_digest(context)


def quarterly_html(
    settings: Settings,
    data: QuarterData,
    team: str | None,
    language: str,
    generated_at: datetime | None = None,
) -> str:
    """The review of ``team`` (None = company) as standalone HTML.

    ``generated_at`` (default: now in the configured timezone) is the only clock input,
    so a fixed value gives byte-identical HTML.
    """
    return quarterly_page(settings, data, team, language, generated_at)[0]


def write_quarterly(
    settings: Settings,
    data: QuarterData,
    team: str | None,
    language: str | None = None,
    generated_at: datetime | None = None,
) -> RenderedReport:
    """Render one review and write its PDF and HTML atomically (a failed render leaves
    the previous files); the PDF renders in a worker process with the configured time
    limit (``reports.render_timeout_seconds``)."""
    chosen = report_language(settings, team, language)
    pdf_path, html_path = output_paths(settings, team, data.quarter, chosen)
    page, digest = quarterly_page(settings, data, team, chosen, generated_at)
    write_report(page, pdf_path, html_path, timeout_seconds=settings.reports.render_timeout_seconds)
    return _rendered(team, data.quarter, chosen, pdf_path, html_path, digest)


def review_plan(
    settings: Settings,
    scopes: Sequence[str | None],
    languages: Sequence[str] | None = None,
) -> list[tuple[str | None, str]]:
    """(scope, language) of every review to write: each scope in each of ``languages``,
    or (None) in its own language: the company in ``general.language``, a team in its
    team's ``language``."""
    plan: list[tuple[str | None, str]] = []
    for scope in scopes:
        chosen = list(languages) if languages else [report_language(settings, scope, None)]
        plan += [(scope, language) for language in dict.fromkeys(chosen)]
    return plan


def write_quarterly_reviews(
    settings: Settings,
    data: QuarterData,
    teams: Sequence[str | None] | None = None,
    languages: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
) -> list[RenderedReport]:
    """Write the quarterly reviews of ``data``'s quarter; the rendered files in order.

    Without ``teams``: the company-wide review and one per team of ``data``. With
    ``teams``: those scopes' reviews only (None in it: the company's). ``languages`` as
    in :func:`review_plan`. Every review's HTML is built here and the PDFs render side by
    side in the render workers, each written atomically when ready (the first failure
    stops the batch; reviews not yet written keep their previous files).
    """
    now = now or datetime.now(settings.tz)
    scopes: list[str | None] = list(teams) if teams else [None, *data.teams()]
    quarter = data.quarter
    rendered: list[RenderedReport] = []

    def jobs() -> Iterator[ReportJob]:
        # a generator: each PDF starts rendering while the next review's HTML is built
        for scope, language in review_plan(settings, scopes, languages):
            pdf_path, html_path = output_paths(settings, scope, quarter, language)
            page, digest = quarterly_page(settings, data, scope, language, generated_at=now)
            rendered.append(_rendered(scope, quarter, language, pdf_path, html_path, digest))
            yield ReportJob(page, pdf_path, html_path)

    started = time.perf_counter()
    write_reports(jobs(), timeout_seconds=settings.reports.render_timeout_seconds)
    log.info(
        "quarterly review %s: %d review(s) built and rendered in %.1fs",
        data.quarter.label,
        len(rendered),
        time.perf_counter() - started,
    )
    return rendered


def _rendered(
    scope: str | None, quarter: Period, language: str, pdf: Path, html: Path, digest: str
) -> RenderedReport:
    return RenderedReport(REPORT, scope, quarter.label, language, pdf, html, digest)
