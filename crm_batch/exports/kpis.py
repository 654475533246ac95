"""KPI results for people and other tools: stable JSON, long CSV, aligned text tables
and the per-customer CSV (``kpis --customers-out``).

The JSON document is the documented interface (README: format ``crm-batch-kpis``, key =
registry name); text tables use the reader's language and number formats
(:mod:`crm_batch.i18n.numbers`). Text from the database reaches CSV cells through
:func:`spreadsheet_safe`, so a spreadsheet never runs it as a formula.

A KPI without data because an optional table is not mapped is null in JSON and empty in
CSV, and says why: ``missing`` in JSON, the ``note`` column in CSV, the reason in place
of the value in text tables (README "KPI output formats").
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from crm_batch.app.kpis import KpiRun
from crm_batch.files import atomic_output
from crm_batch.i18n.messages import message
from crm_batch.i18n.numbers import kpi_value
from crm_batch.kpi.definitions import OPTIONAL_TABLES, registry
from crm_batch.kpi.engine import PeriodReport, kpi_note
from crm_batch.kpi.playbook import action_text

JSON_FORMAT = "crm-batch-kpis"
JSON_VERSION = 1

#: A cell whose text starts with one of these is a formula in Excel/LibreOffice/Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(text: str | None) -> str | None:
    """Text that a spreadsheet will show as text, never run as a formula.

    A leading formula character gets a ``'`` in front (the OWASP advice for CSV
    injection); everything else is unchanged. Numbers must not pass through here.
    """
    if text is None:
        return None
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def _json_number(value: float, unit: str | None = None) -> float | int | None:
    """A value as JSON: None for missing, integers as integers, money to the cent (a sum
    of order amounts in binary floating point is 7995442.459999999, not what anyone
    booked)."""
    if value is None or not math.isfinite(value):
        return None
    if unit == "money":
        value = round(float(value), 2)
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _csv_number(value: float | None, unit: str) -> str:
    """A value as CSV text: empty for missing, money to the cent, else its shortest
    exact text."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.2f}" if unit == "money" else repr(float(value))


def _unit(name: str) -> str | None:
    kpi = registry().get(name)
    return kpi.unit if kpi else None


def _absent_tables(run: KpiRun) -> list[str]:
    """The optional tables not mapped in ``run`` (every report shares one extraction)."""
    absent = set().union(*(report.absent_tables for report in run.reports.values()))
    return [table for table in OPTIONAL_TABLES if table in absent]


def as_json(run: KpiRun, targets_by_scope: dict[str | None, pd.DataFrame] | None = None) -> str:
    """The stable JSON document (format ``crm-batch-kpis`` version 1, see the README).

    ``measured_at`` is the day the point-in-time KPIs (customer counts, tiers, warnings,
    Pareto) are taken at: the period's last day up to ``as_of``, so a past period asked
    for with a later ``--as-of`` says that its stock KPIs are of its own last day.
    ``absent_tables`` lists the optional tables not mapped; each result's ``missing``
    maps the KPIs they leave without data (null) to the reason, ``partial`` those
    computed without a signal (both empty objects when every table is mapped).
    """
    document: dict[str, Any] = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "as_of": run.as_of.isoformat(),
        "measured_at": run.period.end.isoformat(),
        "period": {
            "label": run.period.label,
            "kind": run.period.kind,
            "start": run.period.start.isoformat(),
            "end": run.period.end.isoformat(),
        },
        "absent_tables": _absent_tables(run),
        "results": [
            {
                "scope": "all" if team is None else "team",
                "team": team,
                "kpis": {
                    name: _json_number(value, _unit(name)) for name, value in report.kpis.items()
                },
                "missing": {name: kpi_note(report, name) for name in report.missing},
                "partial": {name: kpi_note(report, name) for name in report.partial},
            }
            for team, report in run.reports.items()
        ],
    }
    if targets_by_scope is not None:
        for result, team in zip(document["results"], run.reports, strict=True):
            report = run.reports[team]
            result["targets"] = [
                {
                    "kpi": row.kpi,
                    "rule": row.rule,
                    "baseline_period": row.baseline_period,
                    "baseline": _json_number(row.baseline, _unit(row.kpi)),
                    "target": _json_number(row.target, _unit(row.kpi)),
                    "actual": _json_number(row.actual, _unit(row.kpi)),
                    "attainment": _json_number(row.attainment),
                    "met": None if pd.isna(row.met) else bool(row.met),
                    "missing": kpi_note(report, row.kpi) if row.kpi in report.missing else None,
                }
                for row in targets_by_scope[team].itertuples(index=False)
            ]
    return json.dumps(document, ensure_ascii=False, indent=2)


def as_csv(run: KpiRun) -> str:
    """Long CSV: as_of, period, scope, team, kpi, value (rates as fractions, money to the
    cent), note (why a value is empty or partial: an optional table is not mapped)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["as_of", "period", "scope", "team", "kpi", "value", "note"])
    for team, report in run.reports.items():
        for name, value in report.kpis.items():
            shown = _csv_number(value, _unit(name) or "")
            writer.writerow(
                [
                    run.as_of.isoformat(),
                    run.period.label,
                    "all" if team is None else "team",
                    spreadsheet_safe(team or ""),
                    name,
                    shown,
                    kpi_note(report, name),
                ]
            )
    return buffer.getvalue()


def as_table(run: KpiRun, language: str, currency: str) -> str:
    """An aligned text table: one row per KPI, one column per scope.

    A KPI without data shows the reason instead of a value ("no leads mapped"); a partial
    one is marked ``*`` with the reason under the table."""
    kpis = registry()
    scopes = list(run.reports)
    title_all = "全公司" if language == "zh-CN" else "all"
    header = ["KPI", *[title_all if s is None else s for s in scopes]]
    rows = [header]
    names = list(next(iter(run.reports.values())).kpis) if run.reports else []
    footnotes: dict[str, None] = {}
    for name in names:
        kpi = kpis[name]
        partial = [
            kpi_note(run.reports[s], name, language)
            for s in scopes
            if name in run.reports[s].partial
        ]
        footnotes.update(dict.fromkeys(f"* {kpi.label(language)}: {note}" for note in partial))
        rows.append(
            [
                kpi.label(language) + (" *" if partial else ""),
                *[
                    kpi_note(run.reports[s], name, language)
                    if name in run.reports[s].missing
                    else kpi_value(kpi, run.reports[s].kpis.get(name), language, currency)
                    for s in scopes
                ],
            ]
        )
    if language == "zh-CN":
        title = f"截至 {run.as_of.isoformat()} 的指标,期间 {run.period.label}"
    else:
        title = f"KPIs as of {run.as_of.isoformat()}, period {run.period.label}"
    span = f"({run.period.start.isoformat()} – {run.period.end.isoformat()})"
    if run.period.end < run.as_of:  # a past period: its stock KPIs are of its last day
        day = run.period.end.isoformat()
        span += f",时点指标取 {day}" if language == "zh-CN" else f", stock KPIs measured {day}"
    notes = "".join(f"\n{line}" for line in footnotes)
    return f"{title} {span}\n{_align(rows)}{notes}"


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
    "p_alive", "expected_orders_12m", "expected_revenue_12m",
)  # fmt: skip

_TEXT_COLUMNS = ("name", "team", "owner", "region")
#: Decimals of the computed numbers of ``--customers-out``: money to the cent (a sum of
#: amounts in binary floating point is 1591.624230769231, not what anyone booked), the
#: predictions to what they can tell.
CUSTOMER_DECIMALS = {
    "revenue_total": 2,
    "revenue_12m": 2,
    "revenue_90d": 2,
    "aov": 2,
    "revenue_at_risk": 2,
    "expected_revenue_12m": 2,
    "expected_orders_12m": 3,
    "p_alive": 4,
}
#: Columns of :data:`CUSTOMER_COLUMNS` read from tickets (empty when tickets are absent).
TICKET_COLUMNS = ("tickets_open", "complaints_open_over_limit")


def customer_rows(report: PeriodReport, language: str) -> pd.DataFrame:
    """The per-customer table: facts, scores, tiers, segment, lifecycle, warning, action.

    The next action is the churn warning's action when the customer has a warning,
    else the value x lifecycle group's playbook action. Without tickets mapped the
    ticket columns are empty (unknown), not 0.
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
    if "tickets" in report.absent_tables:  # not mapped: unknown, not 0 open tickets
        for column in TICKET_COLUMNS:
            out[column] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    for column in _TEXT_COLUMNS:
        out[column] = out[column].astype("object").map(spreadsheet_safe, na_action="ignore")
    for column, decimals in CUSTOMER_DECIMALS.items():
        out[column] = out[column].astype("float64").round(decimals)
    return out


def write_customers_csv(report: PeriodReport, path: Path, language: str) -> int:
    """Write :func:`customer_rows` to ``path`` (UTF-8 with BOM so Excel reads Chinese)."""
    rows = customer_rows(report, language)
    with atomic_output(path, "w", encoding="utf-8-sig") as stream:
        rows.to_csv(stream, index=False, date_format="%Y-%m-%d", lineterminator="\n")
    return len(rows)


def targets_as_text(
    tables: dict[str | None, pd.DataFrame],
    language: str,
    currency: str,
    reports: Mapping[str | None, PeriodReport] | None = None,
) -> str:
    """The target tables as aligned text, one block per scope; a KPI without data in its
    scope's report (an optional table is not mapped) shows the reason and "no data"."""
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
            actual = kpi_value(kpi, record.actual, language, currency)
            report = None if reports is None else reports.get(scope)
            if report is not None and record.kpi in report.missing:
                actual, met = (
                    kpi_note(report, record.kpi, language),
                    message("met.no_data", language),
                )
            rows.append(
                [
                    kpi.label(language),
                    record.baseline_period,
                    kpi_value(kpi, record.baseline, language, currency),
                    kpi_value(kpi, record.target, language, currency),
                    actual,
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
