"""The mail summaries of a run's reports, built where the data is (the jobs layer).

Delivery lays a summary out but computes nothing, so it never needs the KPI frames: this
module turns each rendered report into a :class:`~crm_batch.delivery.ReportFile` that
carries a :class:`~crm_batch.delivery.ReportSummary` - a few headline KPIs with their
change and the top findings, in the report's language, reusing what the reports compute
(:func:`crm_batch.reports.findings.find`, the quarterly review's glance cards and its
number formats).

* diagnosis: :data:`DIAGNOSIS_HEADLINES`, the change against the latest stored snapshot
  before the business date (none on the first night);
* quarterly review: the review's first glance cards, the change against the previous
  quarter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from crm_batch.delivery import Headline, ReportFile, ReportSummary
from crm_batch.delivery.summary import MAX_FINDINGS, MAX_HEADLINES

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crm_batch.app.kpis import KpiRun
    from crm_batch.app.quarter import QuarterData
    from crm_batch.config import Settings

#: The diagnosis mail's headline KPIs, in this order.
DIAGNOSIS_HEADLINES = (
    "revenue_12m",
    "buyers_12m",
    "active_share",
    "churn_warnings_count",
    "revenue_at_risk",
)
#: How far back the diagnosis looks for the snapshot it compares with.
LOOKBACK_DAYS = 31


def _file(report: Any, summary: ReportSummary | None) -> ReportFile:
    return ReportFile(
        report.kind,
        report.team,
        report.period,
        report.language,
        report.pdf,
        getattr(report, "content_sha256", None),
        summary,
    )


def _findings(period_report: Any, language: str, currency: str) -> tuple[str, ...]:
    from crm_batch.reports.findings import find

    found = find(
        period_report.kpis,
        period_report.customers,
        period_report.funnel_by_channel,
        language,
        currency,
    )
    return tuple(finding.text for finding in found[:MAX_FINDINGS])


def previous_values(
    engine: Engine, as_of: date
) -> tuple[date | None, dict[tuple[str, str], float]]:
    """The latest stored snapshot before ``as_of`` (within :data:`LOOKBACK_DAYS`): its
    date and the headline values by (team or '', kpi)."""
    from crm_batch.app.snapshots import read_snapshots

    frame = read_snapshots(
        engine,
        DIAGNOSIS_HEADLINES,
        start=as_of - timedelta(days=LOOKBACK_DAYS),
        end=as_of - timedelta(days=1),
    )
    if frame.empty:
        return None, {}
    latest = frame["as_of"].max()
    rows = frame[frame["as_of"] == latest]
    values = {
        (str(team), str(kpi)): float(value)
        for team, kpi, value in zip(rows["team"], rows["kpi"], rows["value"], strict=True)
    }
    return latest.date(), values


def diagnosis_files(
    settings: Settings, engine: Engine, run: KpiRun, rendered: Sequence[Any]
) -> list[ReportFile]:
    """The rendered diagnosis reports of ``run`` with their mail summaries."""
    from crm_batch.kpi.definitions import registry
    from crm_batch.reports.quarterly_targets import change_text, difference, kpi_text

    kpis = registry()
    before, values = previous_values(engine, run.as_of)
    files = []
    for report in rendered:
        scope = run.reports[report.team]
        language, currency = report.language, settings.currency
        headlines = []
        for name in DIAGNOSIS_HEADLINES[:MAX_HEADLINES]:
            if name not in scope.kpis:
                continue
            actual = scope.kpis[name]
            actual = math.nan if actual is None else float(actual)
            earlier = values.get((report.team or "", name), math.nan)
            change = difference(actual, earlier)
            headlines.append(
                Headline(
                    kpis[name].label(language),
                    kpi_text(kpis[name], actual, language, currency),
                    change_text(kpis[name], change, language, currency) if before else "",
                )
            )
        summary = ReportSummary(
            tuple(headlines),
            _findings(scope, language, currency),
            before.isoformat() if before else "",
        )
        files.append(_file(report, summary))
    return files


def review_files(
    settings: Settings, data: QuarterData, rendered: Sequence[Any]
) -> list[ReportFile]:
    """The rendered quarterly reviews of ``data`` with their mail summaries."""
    from crm_batch.reports.quarterly_context import glance_cards

    files = []
    for report in rendered:
        language, currency = report.language, settings.currency
        cards = glance_cards(data, report.team, language, currency)[:MAX_HEADLINES]
        summary = ReportSummary(
            tuple(Headline(card["label"], card["value"], card["change"]) for card in cards),
            _findings(data.report(report.team), language, currency),
            data.previous.label,
        )
        files.append(_file(report, summary))
    return files
