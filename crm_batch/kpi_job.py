"""The ``kpis`` job: the KPI set of a period as of a date, for the company and teams.

Renders it as a table for people, as stable JSON for other tools (documented in the
README: key = registry name), or as long CSV; writes the per-customer table; stores
snapshots. Snapshot convention: the values stored for business date T are those of
the quarter containing T measured up to T (quarter to date), so the snapshot of a
quarter's last day holds that quarter's final figures.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from crm_batch.config import Settings
from crm_batch.errors import ConfigError
from crm_batch.files import atomic_output
from crm_batch.formatting import format_kpi, spreadsheet_safe
from crm_batch.kpi import targets
from crm_batch.kpi.definitions import registry
from crm_batch.kpi.engine import (
    PeriodReport,
    PreparedPeriod,
    load_frames,
    period_report,
    prepare,
    snapshot_values,
)
from crm_batch.kpi.playbook import action_text
from crm_batch.periods import Period, period_containing
from crm_batch.progress import track
from crm_batch.snapshots import write_snapshots
from crm_batch.source.extract_period import clip_period
from crm_batch.source.quality import log_reconciliation, verify_source
from crm_batch.source.sql_files import SqlCatalog

log = logging.getLogger(__name__)

JSON_FORMAT = "crm-batch-kpis"
JSON_VERSION = 1


@dataclass(frozen=True)
class KpiRun:
    """The reports of one computation: key ``None`` is the whole company."""

    as_of: date
    period: Period  # as measured: clipped to as_of
    reports: dict[str | None, PeriodReport]
    requested: Period | None = None  # as asked for (targets compare like for like)
    # the extracted and prepared period, kept only when asked (run_kpis keep_prepared):
    # the quarterly review's account lists read it; everyone else lets it go
    prepared: PreparedPeriod | None = None


def snapshot_period(as_of: date) -> Period:
    """The period whose values a snapshot of ``as_of`` stores: its quarter."""
    return period_containing(as_of, "quarter")


def run_kpis(
    settings: Settings,
    engine: Engine,
    as_of: date,
    period: Period,
    *,
    teams: Sequence[str] | None = None,
    all_teams: bool = False,
    include_company: bool | None = None,
    verify: bool = True,
    keep_prepared: bool = False,
) -> KpiRun:
    """Compute the company's reports and those of ``teams`` (or every team) in one pass.

    The company's report is included when no team is named, with ``all_teams``, or
    when ``include_company`` says so. ``verify``: run the data checks first (errors stop
    the run with one report, warnings are logged). Pass False only when the same source
    was just checked (:func:`run_data_checks`), e.g. for the other dates of a backfill or
    a target's baseline: the error checks do not depend on the date. ``keep_prepared``
    keeps the extracted, prepared period on the result (:attr:`KpiRun.prepared`).
    """
    try:
        measured = clip_period(period, as_of)
    except ValueError as exc:
        raise ConfigError(f"--period {period.label}: {exc}") from None
    catalog = SqlCatalog(settings.sql_dir)
    if verify:  # data checks first: errors stop the run with one report
        run_data_checks(settings, engine, as_of)
    started = time.perf_counter()
    frames = load_frames(engine, period, as_of, settings.thresholds, catalog)
    extracted = time.perf_counter()
    prepared = prepare(frames, settings.thresholds)
    log.info(
        "%s as of %s: extracted %s customers in %.1fs, computed in %.1fs",
        measured.label,
        as_of.isoformat(),
        f"{len(prepared.end_table):,}",
        extracted - started,
        time.perf_counter() - extracted,
    )
    log_reconciliation(engine, settings.sql_dir, measured.end, prepared.end_table)
    data_teams = sorted(prepared.frames.register["team"].dropna().unique())
    known = list(dict.fromkeys([t.name for t in settings.teams] + data_teams))
    wanted = known if all_teams else list(teams or [])
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ConfigError(
            f"unknown team {unknown[0]!r}: teams in the settings and the data are "
            f"{', '.join(repr(t) for t in known) or '(none)'}"
        )
    reports: dict[str | None, PeriodReport] = {}
    if include_company if include_company is not None else (not teams or all_teams):
        reports[None] = period_report(prepared)
    for name in track(wanted, "KPIs by team", "team"):
        reports[name] = period_report(prepared, name)
    return KpiRun(
        as_of=as_of,
        period=measured,
        reports=reports,
        requested=period,
        prepared=prepared if keep_prepared else None,
    )


def run_data_checks(settings: Settings, engine: Engine, as_of: date) -> None:
    """Run the data checks of ``sql/checks/`` for business date ``as_of``: one
    :class:`~crm_batch.errors.DataError` lists every failing error check (exit code 4);
    each warning is logged."""
    verify_source(engine, settings.sql_dir, as_of, today=datetime.now(settings.tz).date())


def store_snapshots(engine: Engine, run: KpiRun, computed_at: datetime) -> int:
    """Write the run's values as the snapshots of its business date; rows written."""
    expected = clip_period(snapshot_period(run.as_of), run.as_of)
    if run.period != expected:
        raise ConfigError(
            f"snapshots of {run.as_of.isoformat()} hold the quarter to date "
            f"({expected.label}); they cannot be taken from period {run.period.label}"
        )
    return write_snapshots(engine, run.as_of, snapshot_values(run.reports), computed_at)


def snapshot_dates(as_of: date, history_quarters: int) -> list[date]:
    """``as_of`` and the last days of the ``history_quarters`` quarters before it, oldest first."""
    dates = [as_of]
    quarter = snapshot_period(as_of)
    for _ in range(history_quarters):
        quarter = quarter.previous()
        dates.append(quarter.end)
    return sorted(set(dates))


def backfill_snapshots(
    settings: Settings, engine: Engine, dates: Sequence[date], computed_at: datetime
) -> int:
    """Store the snapshots of each business date (company and every team); rows written.

    The data checks run once, for the latest date (the error checks do not depend on
    the date; the warnings of the latest date cover the most orders), not once per
    date; every date still logs its own revenue reconciliation.
    """
    if dates:
        run_data_checks(settings, engine, max(dates))
    rows = 0
    for day in track(dates, "KPI snapshots", "date"):
        started = datetime.now()
        run = run_kpis(settings, engine, day, snapshot_period(day), all_teams=True, verify=False)
        rows += store_snapshots(engine, run, computed_at)
        log.info(
            "snapshots of %s (%s to date): %d scopes in %.1fs",
            day.isoformat(),
            run.period.label,
            len(run.reports),
            (datetime.now() - started).total_seconds(),
        )
    return rows


def _json_number(value: float) -> float | int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def as_json(run: KpiRun, targets_by_scope: dict[str | None, pd.DataFrame] | None = None) -> str:
    """The stable JSON document (format ``crm-batch-kpis`` version 1, see the README)."""
    document: dict[str, Any] = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "as_of": run.as_of.isoformat(),
        "period": {
            "label": run.period.label,
            "kind": run.period.kind,
            "start": run.period.start.isoformat(),
            "end": run.period.end.isoformat(),
        },
        "results": [
            {
                "scope": "all" if team is None else "team",
                "team": team,
                "kpis": {name: _json_number(value) for name, value in report.kpis.items()},
            }
            for team, report in run.reports.items()
        ],
    }
    if targets_by_scope is not None:
        for result, team in zip(document["results"], run.reports, strict=True):
            result["targets"] = [
                {
                    "kpi": row.kpi,
                    "rule": row.rule,
                    "baseline_period": row.baseline_period,
                    "baseline": _json_number(row.baseline),
                    "target": _json_number(row.target),
                    "actual": _json_number(row.actual),
                    "attainment": _json_number(row.attainment),
                    "met": None if pd.isna(row.met) else bool(row.met),
                }
                for row in targets_by_scope[team].itertuples(index=False)
            ]
    return json.dumps(document, ensure_ascii=False, indent=2)


def as_csv(run: KpiRun) -> str:
    """Long CSV: as_of, period, scope, team, kpi, value (raw values, rates as fractions)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["as_of", "period", "scope", "team", "kpi", "value"])
    for team, report in run.reports.items():
        for name, value in report.kpis.items():
            shown = "" if value is None or not math.isfinite(value) else repr(float(value))
            writer.writerow(
                [
                    run.as_of.isoformat(),
                    run.period.label,
                    "all" if team is None else "team",
                    spreadsheet_safe(team or ""),
                    name,
                    shown,
                ]
            )
    return buffer.getvalue()


def as_table(run: KpiRun, language: str, currency: str) -> str:
    """An aligned text table: one row per KPI, one column per scope."""
    kpis = registry()
    scopes = list(run.reports)
    title_all = "全公司" if language == "zh-CN" else "all"
    header = ["KPI", *[title_all if s is None else s for s in scopes]]
    rows = [header]
    names = list(next(iter(run.reports.values())).kpis) if run.reports else []
    for name in names:
        kpi = kpis[name]
        rows.append(
            [
                kpi.label(language),
                *[
                    format_kpi(kpi, run.reports[s].kpis.get(name), currency=currency)
                    for s in scopes
                ],
            ]
        )
    if language == "zh-CN":
        title = f"截至 {run.as_of.isoformat()} 的指标,期间 {run.period.label}"
    else:
        title = f"KPIs as of {run.as_of.isoformat()}, period {run.period.label}"
    span = f"({run.period.start.isoformat()} – {run.period.end.isoformat()})"
    return f"{title} {span}\n{_align(rows)}"


def _display_width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in {"W", "F"} else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    gap = " " * (width - _display_width(text))
    return text + gap if left else gap + text


#: Columns of ``--customers-out`` in order (see the README's KPI reference).
CUSTOMER_COLUMNS = (
    "customer_id", "name", "team", "owner", "region", "signup_date",
    "first_order_date", "last_order_date", "recency_days", "tenure_days",
    "orders_total", "revenue_total", "orders_12m", "revenue_12m", "orders_90d", "revenue_90d",
    "aov", "quarters_active_4q", "tickets_open", "complaints_open_over_limit",
    "referrals_made", "referrals_successful",
    "r_score", "f_score", "m_score", "rfm_segment", "tier", "value_tier", "lifecycle",
    "value_group", "churn_warning_level", "revenue_at_risk", "next_action",
)  # fmt: skip

_TEXT_COLUMNS = ("name", "team", "owner", "region")


def customer_rows(report: PeriodReport, language: str) -> pd.DataFrame:
    """The per-customer table: facts, scores, tiers, segment, lifecycle, warning, action.

    The next action is the churn warning's action when the customer has a warning,
    else the value x lifecycle group's playbook action.
    """
    table = report.customers.copy()
    warnings = report.churn_warnings.set_index("customer_id")
    table["churn_warning_level"] = table["customer_id"].map(warnings["level"]).astype("object")
    table["revenue_at_risk"] = table["customer_id"].map(warnings["revenue_at_risk"])
    action_key = table["customer_id"].map(warnings["warning_action_key"]).astype("object")
    action_key = action_key.where(action_key.notna(), table["next_action_key"].astype("object"))
    texts = {key: action_text(key, language) for key in action_key.dropna().unique()}
    table["next_action"] = action_key.map(texts)
    out = table.loc[:, list(CUSTOMER_COLUMNS)]
    for column in _TEXT_COLUMNS:
        out[column] = out[column].astype("object").map(spreadsheet_safe, na_action="ignore")
    return out


def write_customers_csv(report: PeriodReport, path: Path, language: str) -> int:
    """Write :func:`customer_rows` to ``path`` (UTF-8 with BOM so Excel reads Chinese)."""
    rows = customer_rows(report, language)
    with atomic_output(path, "w", encoding="utf-8-sig") as stream:
        rows.to_csv(stream, index=False, date_format="%Y-%m-%d", lineterminator="\n")
    return len(rows)


def target_tables(
    settings: Settings, engine: Engine, run: KpiRun
) -> dict[str | None, pd.DataFrame]:
    """Actual, baseline, target and attainment per targeted KPI, for each scope of ``run``.

    Each distinct baseline period is computed once for all scopes, at the same distance
    from its end as the run's date is from the run's period end
    (:func:`crm_batch.kpi.targets.baseline_as_of`); a baseline before the data is NaN.
    """
    requested = run.requested or run.period
    by_kpi = targets.baseline_periods(requested, settings.targets)
    teams = [team for team in run.reports if team is not None]
    baselines: dict[Period, tuple[date, KpiRun | None]] = {}
    for base in dict.fromkeys(by_kpi.values()):
        day = targets.baseline_as_of(requested, run.as_of, base)
        baseline_run = (
            run_kpis(
                settings,
                engine,
                day,
                base,
                teams=teams,
                include_company=None in run.reports,
                verify=False,  # the run itself was computed after the checks
            )
            if day >= base.start
            else None
        )
        baselines[base] = (day, baseline_run)
    kpis = registry()
    tables: dict[str | None, pd.DataFrame] = {}
    for scope, report in run.reports.items():
        values = {}
        for name, base in by_kpi.items():
            baseline_run = baselines[base][1]
            values[name] = (
                baseline_run.reports[scope].kpis.get(name, math.nan) if baseline_run else math.nan
            )
        table = targets.target_table(report.kpis, values, settings.targets, kpis)
        table.insert(1, "period", run.period.label)
        table.insert(2, "baseline_period", [by_kpi[name].label for name in table["kpi"]])
        table.insert(3, "baseline_as_of", [baselines[by_kpi[name]][0] for name in table["kpi"]])
        tables[scope] = table
    return tables


def targets_as_text(tables: dict[str | None, pd.DataFrame], language: str, currency: str) -> str:
    """The target tables as aligned text, one block per scope."""
    kpis = registry()
    zh = language == "zh-CN"
    header = (
        ["目标", "基准期", "基准值", "目标值", "实际值", "达成率", "达标"]
        if zh
        else ["Target", "Baseline period", "Baseline", "Target", "Actual", "Attainment", "Met"]
    )
    blocks = []
    for scope, table in tables.items():
        rows = [header]
        for record in table.itertuples(index=False):
            kpi = kpis[record.kpi]
            met = (
                "–"
                if pd.isna(record.met)
                else (("是" if record.met else "否") if zh else ("yes" if record.met else "no"))
            )
            attainment = "–" if pd.isna(record.attainment) else f"{record.attainment * 100:,.0f} %"
            rows.append(
                [
                    kpi.label(language),
                    record.baseline_period,
                    format_kpi(kpi, record.baseline, currency=currency),
                    format_kpi(kpi, record.target, currency=currency),
                    format_kpi(kpi, record.actual, currency=currency),
                    attainment,
                    met,
                ]
            )
        title = ("全公司" if zh else "all") if scope is None else scope
        blocks.append(title + "\n" + _align(rows))
    return "\n\n".join(blocks)


def _align(rows: list[list[str]]) -> str:
    widths = [max(_display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [_pad(row[0], widths[0], left=True)]
        cells += [_pad(cell, widths[i + 1], left=False) for i, cell in enumerate(row[1:])]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
