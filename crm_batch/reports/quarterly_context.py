"""The quarterly review's render context: plain data for ``quarterly.html``, one scope.

Built from a :class:`~crm_batch.app.quarter.QuarterData` (computed once for
every scope) for the company (``team=None``) or one team, in zh-CN or English. As in
the diagnosis report, templates receive only dicts, lists and strings; database text
goes through :func:`~crm_batch.reports.context.display_text` and is escaped by the
template engine.

The account lists come from :mod:`crm_batch.reports.quarterly_accounts`, targets, gaps
and actions from :mod:`crm_batch.reports.quarterly_targets`. Sections: the quarter at a
glance; targets with attainment; next quarter's actions
(targets not met -> the playbook action, with the gap); every KPI against the previous
quarter, the same quarter last year, the baseline and the target; trend lines of the
last 8 quarters; tier migration with the accounts that slipped; cohort retention;
win-back; campaigns; big-customer screening; the team comparison (company only); KPI
definitions.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from crm_batch.app.quarter import QuarterData, Scope
from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.messages import message, messages
from crm_batch.kpi.definitions import registry
from crm_batch.kpi.engine import kpi_note
from crm_batch.kpi.migration import NONE_LABEL, TIER_ORDER
from crm_batch.kpi.playbook import label
from crm_batch.reports import charts
from crm_batch.reports.context import (
    action_legend,
    action_title,
    campaign_section,
    kpi_rows,
)
from crm_batch.reports.display import display_text
from crm_batch.reports.quarterly_accounts import (
    TOP_BIG,
    big_customers,
    quarter_revenue,
    slipped_accounts,
    won_back_accounts,
)
from crm_batch.reports.quarterly_targets import (
    action_rows,
    attainment_text,
    change_text,
    difference,
    kpi_text,
    target_rows,
    trend_class,
)
from crm_batch.reports.value_sections import calibration_rows, uplift_rows

#: Rows of the account lists (slipped, won back, entrants and leavers).
TOP_ACCOUNTS = 15
#: The glance cards: KPIs of the quarter with their change on the previous quarter.
GLANCE_KPIS = (
    "period_buyers", "new_customers", "repurchase_rate", "churn_rate", "winback_customers",
    "lead_conversion_rate", "satisfaction_mean", "campaign_roi",
)  # fmt: skip
#: Trend lines (small multiples), 8 quarters each.
TREND_KPIS = (
    "revenue_12m", "period_buyers", "new_customers", "repurchase_rate",
    "churn_rate", "lead_conversion_rate", "satisfaction_mean", "campaign_roi",
)  # fmt: skip
#: The team comparison table's KPIs (after the quarter's revenue).
TEAM_KPIS = (
    "customers_total", "period_buyers", "repurchase_rate", "churn_rate",
    "lead_conversion_rate", "satisfaction_mean", "campaign_roi",
)  # fmt: skip
WINBACK_KPIS = ("winback_customers", "winback_rate", "churn_rate", "churned_count")
CAMPAIGN_KPIS = ("campaign_touches", "campaign_conversion_rate", "campaign_revenue",
                 "campaign_cost", "campaign_roi", "opt_out_rate")  # fmt: skip
MIGRATION_KPIS = ("tier_upgrades", "tier_downgrades", "tier_a_count")

# --- comparison and trends ------------------------------------------------------------


def comparison_rows(
    data: QuarterData, scope: Scope, language: str, currency: str
) -> list[dict[str, str]]:
    """Every registry KPI: the quarter, the previous quarter, the same quarter last year
    (each with the change), the baseline, the target and the attainment where targeted."""
    kpis = registry()
    current = data.history[data.quarter]
    previous = data.history[data.previous]
    year_ago = data.history[data.year_before]
    targets = data.target_tables[scope].set_index("kpi")
    rows = []
    for name, kpi in kpis.items():
        actual = current.get(scope, name)
        before = previous.get(scope, name)
        last_year = year_ago.get(scope, name)
        change_q = difference(actual, before)
        change_y = difference(actual, last_year)
        target = targets.loc[name] if name in targets.index else None
        rows.append(
            {
                "label": kpi.label(language),
                "actual": kpi_text(kpi, actual, language, currency),
                "previous": kpi_text(kpi, before, language, currency),
                "change_q": change_text(kpi, change_q, language, currency),
                "change_q_class": trend_class(kpi, change_q),
                "year_ago": kpi_text(kpi, last_year, language, currency),
                "change_y": change_text(kpi, change_y, language, currency),
                "change_y_class": trend_class(kpi, change_y),
                "baseline": fmt.DASH
                if target is None
                else kpi_text(kpi, target["baseline"], language, currency),
                "target": fmt.DASH
                if target is None
                else kpi_text(kpi, target["target"], language, currency),
                "attainment": fmt.DASH if target is None else attainment_text(target),
            }
        )
    return rows


def glance_cards(
    data: QuarterData, scope: Scope, language: str, currency: str
) -> list[dict[str, str]]:
    """Headline cards: the quarter's revenue and key KPIs with the change on Q-1."""
    kpis = registry()
    t = messages(language)
    revenue_now = quarter_revenue(data, scope)
    cards = [
        {
            "label": t["glance.revenue"],
            "value": fmt.money(revenue_now, language, currency),
            "change": "",
            "change_class": "",
            "note": t["glance.revenue_note"],
        }
    ]
    for name in GLANCE_KPIS:
        kpi = kpis[name]
        actual = data.history[data.quarter].get(scope, name)
        change = difference(actual, data.history[data.previous].get(scope, name))
        cards.append(
            {
                "label": kpi.label(language),
                "value": kpi_text(kpi, actual, language, currency),
                "change": change_text(kpi, change, language, currency),
                "change_class": trend_class(kpi, change),
                "note": kpi_note(data.report(scope), name, language)
                or message("glance.vs", language, period=data.previous.label),
            }
        )
    return cards


def trend_chart(data: QuarterData, scope: Scope, language: str) -> str:
    """Small multiples of :data:`TREND_KPIS` over the last 8 quarters (targets dashed)."""
    kpis = registry()
    quarters = [q for q in data.history if q <= data.quarter][-8:]
    targets = data.target_tables[scope].set_index("kpi")["target"]
    panels = []
    for name in TREND_KPIS:
        values = [data.history[q].get(scope, name) for q in quarters]
        target = float(targets[name]) if name in targets.index else None
        panels.append((kpis[name].label(language), values, target))
    return charts.small_multiples(
        panels,
        [q.label for q in quarters],
        percent_panels=[kpis[name].unit == "ratio" for name in TREND_KPIS],
    )


def trend_table(data: QuarterData, scope: Scope, language: str, currency: str) -> dict[str, Any]:
    """The trend lines' values as a table: one row per KPI, one column per quarter."""
    kpis = registry()
    quarters = [q for q in data.history if q <= data.quarter][-8:]
    return {
        "quarters": [q.label for q in quarters],
        "rows": [
            {
                "label": kpis[name].label(language),
                "cells": [
                    kpi_text(kpis[name], data.history[q].get(scope, name), language, currency)
                    for q in quarters
                ],
            }
            for name in TREND_KPIS
        ],
    }


def source_notes(data: QuarterData, language: str) -> list[str]:
    """Where each quarter's values came from (stored snapshot, computed, recomputed)."""
    notes = []
    for quarter, values in data.history.items():
        day = fmt.day(quarter.end, language)
        notes.append(message(f"source.{values.source}", language, quarter=quarter.label, day=day))
    return notes


# --- per-customer tables ----------------------------------------------------------------


def _tier_label(tier: str, language: str) -> str:
    return message("tier.none", language) if tier == NONE_LABEL else tier


def migration_section(
    data: QuarterData, scope: Scope, language: str, currency: str
) -> dict[str, Any]:
    """The migration heatmap, moves between tiers and the biggest accounts that slipped."""
    t = messages(language)
    report = data.report(scope)
    matrix = report.tier_migration
    moves = []
    for start in matrix.index:
        for end in matrix.columns:
            count = int(matrix.loc[start, end])
            if start != end and count:
                up = TIER_ORDER.index(end) < TIER_ORDER.index(start)
                moves.append(
                    {
                        "move": f"{_tier_label(start, language)} → {_tier_label(end, language)}",
                        "direction": t["migration.up"] if up else t["migration.down"],
                        "direction_key": "better" if up else "worse",
                        "customers": fmt.number(count),
                    }
                )
    names = [_tier_label(str(tier), language) for tier in matrix.index]
    chart = charts.heatmap(
        matrix.to_numpy().tolist(),
        names,
        [_tier_label(str(tier), language) for tier in matrix.columns],
        t["chart.tier_end"],
        t["chart.tier_start"],
    )
    slipped = slipped_accounts(data, scope)
    return {
        "kpis": kpi_rows(report, MIGRATION_KPIS, language, currency),
        "chart": chart,
        "moves": moves,
        "slipped": [
            {
                "customer": display_text(row.name),
                "team": display_text(row.team),
                "owner": display_text(row.owner),
                "move": f"{row.tier_start} → {row.tier_end}",
                "revenue_start": fmt.money(row.revenue_start, language, currency),
                "revenue_end": fmt.money(row.revenue_12m, language, currency),
                "last_order": fmt.day(row.last_order_date, language),
                "action": action_title(row.next_action_key, language),
            }
            for row in slipped.head(TOP_ACCOUNTS).itertuples(index=False)
        ],
        "slipped_actions": action_legend(
            slipped["next_action_key"].head(TOP_ACCOUNTS).tolist(), language
        ),
        "slipped_total": len(slipped),
        "slipped_title": message("text.slipped", language, count=TOP_ACCOUNTS),
    }


def winback_section(
    data: QuarterData, scope: Scope, language: str, currency: str
) -> dict[str, Any]:
    """Win-back KPIs and the won-back accounts with the most revenue in the quarter."""
    won = won_back_accounts(data, scope)
    return {
        "kpis": kpi_rows(data.report(scope), WINBACK_KPIS, language, currency),
        "accounts": [
            {
                "customer": display_text(row.name),
                "team": display_text(row.team),
                "owner": display_text(row.owner),
                "last_before": fmt.day(row.last_order_before_date, language),
                "days_away": fmt.number(row.days_away),
                "orders": fmt.number(row.orders_in_period),
                "revenue": fmt.money(row.revenue_in_period, language, currency),
                "value_tier": label(str(row.value_tier), language),
            }
            for row in won.head(TOP_ACCOUNTS).itertuples(index=False)
        ],
        "total": len(won),
        "title": message("text.won_back", language, count=TOP_ACCOUNTS),
    }


def big_customer_section(
    data: QuarterData, scope: Scope, language: str, currency: str
) -> dict[str, Any]:
    """Big-customer screening: the quarter's top accounts, new entrants and leavers."""
    t = messages(language)
    top, left = big_customers(data, scope)
    rows = []
    for row in top.itertuples(index=False):
        entrant = not (row.previous_rank <= TOP_BIG)
        rows.append(
            {
                "rank": str(int(row.rank)),
                "customer": display_text(row.name),
                "team": display_text(row.team),
                "owner": display_text(row.owner),
                "tier": label(str(row.tier), language),
                "revenue_12m": fmt.money(row.revenue_12m, language, currency),
                "revenue_q": fmt.money(row.revenue_q, language, currency),
                "previous_rank": t["big.new_entrant"] if entrant else fmt.number(row.previous_rank),
                "entrant": entrant,
            }
        )
    return {
        "top": rows,
        "entrants": sum(1 for row in rows if row["entrant"]),
        "title": message("text.big_top", language, count=TOP_BIG, period=data.quarter.label),
        "summary": message(
            "text.big_summary",
            language,
            entrants=sum(1 for row in rows if row["entrant"]),
            count=TOP_BIG,
            period=data.previous.label,
        ),
        "left": [
            {
                "customer": display_text(row.name),
                "team": display_text(row.team),
                "owner": display_text(row.owner),
                "previous_rank": fmt.number(row.rank),
                "rank_now": fmt.number(row.rank_now),
                "revenue_start": fmt.money(row.revenue_12m, language, currency),
                "revenue_now": fmt.money(row.revenue_now, language, currency),
            }
            for row in left.itertuples(index=False)
        ],
    }


def cohort_chart(data: QuarterData, scope: Scope, language: str) -> str:
    """Retention heatmap of the last 12 first-order months (sizes in the row labels)."""
    t = messages(language)
    matrix = data.report(scope).cohort_matrix
    months = [column for column in matrix.columns if column != "cohort_size"]
    rows = [
        f"{month} ({fmt.number(size)})"
        for month, size in zip(matrix.index, matrix["cohort_size"], strict=True)
    ]
    return charts.heatmap(
        matrix[months].to_numpy().tolist(),
        rows,
        [str(month) for month in months],
        t["chart.months_since"],
        t["chart.cohort"],
        percent=True,
    )


def team_rows(data: QuarterData, language: str, currency: str) -> list[dict[str, str]]:
    """One row per team: the quarter's revenue, key KPIs and targets met / targeted."""
    kpis = registry()
    rows = []
    for team in data.teams():
        values = data.report(team).kpis
        table = data.target_tables[team]
        known = table["met"].dropna()
        row = {
            "team": display_text(team),
            "revenue_q": fmt.money(quarter_revenue(data, team), language, currency),
            "targets_met": f"{int(known.sum())} / {len(table)}",
        }
        for name in TEAM_KPIS:
            row[name] = kpi_text(kpis[name], values.get(name, math.nan), language, currency)
        rows.append(row)
    return rows


# --- the whole context ------------------------------------------------------------------


def quarterly_context(
    data: QuarterData,
    team: Scope,
    *,
    language: str,
    currency: str,
    company_name: str,
    generated_at: datetime,
) -> dict[str, Any]:
    """Everything ``quarterly.html`` shows for ``team`` (None = the company)."""
    t = messages(language)
    kpis = registry()
    report = data.report(team)
    quarter = data.quarter
    targets = target_rows(data.target_tables[team], language, currency, report)
    met = [row for row in targets if row["met_key"] == "met"]
    known = [row for row in targets if row["met_key"]]
    return {
        "lang": language,
        "t": t,
        "report": {
            "title": t["quarterly.title"],
            "subject": t["quarterly.subject"],
            "company": display_text(company_name, 200),
            "scope": t["scope.all"] if team is None else display_text(team),
            "is_company": team is None,
            "as_of": fmt.day(data.run.as_of, language),
            "period": quarter.label,
            "period_span": f"{fmt.day(quarter.start, language)} – {fmt.day(quarter.end, language)}",
            "previous": data.previous.label,
            "year_before": data.year_before.label,
            "generated": fmt.moment(generated_at, language),
        },
        "glance": glance_cards(data, team, language, currency),
        "targets": {
            "rows": targets,
            "summary": message("text.targets_summary", language, met=len(met), total=len(known)),
            "chart": charts.attainment_bars(
                [row["label"] for row in targets],
                [  # a bound (max / min) is met or missed: no attainment bar
                    None if rule in ("max", "min") else value
                    for rule, value in zip(
                        data.target_tables[team]["rule"],
                        data.target_tables[team]["attainment"],
                        strict=True,
                    )
                ],
                t["chart.attainment"],
            )
            if targets
            else "",
        },
        "actions": action_rows(data, team, language, currency),
        "comparison": comparison_rows(data, team, language, currency),
        "sources": source_notes(data, language),
        "trend_chart": trend_chart(data, team, language),
        "trend_table": trend_table(data, team, language, currency),
        "migration": migration_section(data, team, language, currency),
        "cohort_chart": cohort_chart(data, team, language) if len(report.cohort_matrix) else "",
        "winback": winback_section(data, team, language, currency),
        "campaigns": {
            **campaign_section(report, CAMPAIGN_KPIS, language, currency),
            "uplift": uplift_rows(report.uplift_by_channel, language, currency),
        },
        # one population model for the company: the same check in every scope's review
        "calibration": calibration_rows(data.calibration, language),
        "big": big_customer_section(data, team, language, currency),
        "teams": {
            "rows": team_rows(data, language, currency) if team is None else [],
            "columns": [(name, kpis[name].label(language)) for name in TEAM_KPIS],
        },
        "definitions": kpi_rows(report, tuple(report.kpis), language, currency),
    }
