"""The diagnosis report's render context: plain data built from a :class:`PeriodReport`.

Templates receive only dicts, lists, strings and numbers (no frames, no objects), so
what a template can show is exactly what this module puts in. Text from the database
(customer and owner names) is passed through :func:`display_text` and escaped by
Jinja2's autoescape in the template.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from crm_batch.app.report_extras import DiagnosisExtras, ScopeExtras
from crm_batch.config import ThresholdSettings
from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.messages import absent_reason, channel_label, message, messages
from crm_batch.kpi.definitions import KpiDefinition, registry
from crm_batch.kpi.engine import PeriodReport, kpi_note
from crm_batch.kpi.keys import lookup
from crm_batch.kpi.playbook import (
    ACTIONS,
    GROUP_ACTIONS,
    OUTCOME_LABELS,
    action_text,
    label,
    outcome_label,
)
from crm_batch.reports import charts, findings
from crm_batch.reports.display import display_text

#: Accounts listed in the "call first" table.
TOP_CALLS = 15
#: A high warning counts as contacted when its latest follow-up was saved in the last
#: this many days up to the business date (or after it: staff call in the morning).
CONTACT_DAYS = 7
#: Headline KPIs on the first pages, in this order.
HEADLINE_KPIS = (
    "customers_total", "buyers_12m", "revenue_12m", "aov_12m", "tier_a_count",
    "high_value_revenue_share_12m", "active_share", "churn_warnings_count",
    "revenue_at_risk", "repurchase_rate", "lead_conversion_rate", "referral_share_new",
    "complaint_resolved_24h_rate", "satisfaction_mean", "campaign_roi",
)  # fmt: skip
REPURCHASE_KPIS = (
    "period_buyers", "new_customers", "repurchase_rate", "repeat_rate_90d", "churn_rate",
    "winback_customers", "winback_rate", "leads_created", "leads_converted",
    "lead_conversion_rate",
)  # fmt: skip
REFERRAL_KPIS = ("referral_share_new", "successful_referrals", "advocates",
                 "advocate_candidates", "viral_coefficient")  # fmt: skip
SERVICE_KPIS = ("complaints", "complaint_resolved_24h_rate", "open_complaints",
                "satisfaction_mean")  # fmt: skip
CAMPAIGN_KPIS = ("campaign_touches", "campaign_open_rate", "campaign_click_rate",
                 "campaign_conversion_rate", "campaign_revenue", "campaign_cost",
                 "campaign_roi", "opt_out_rate")  # fmt: skip
TIERS = ("A", "B", "C")
VALUE_TIERS = ("diamond", "silver", "bronze", "iron")
LIFECYCLES = ("new", "active", "dormant", "churned")


def kpi_rows(
    report: PeriodReport,
    names: tuple[str, ...],
    language: str,
    currency: str,
    extras: ScopeExtras | None = None,
) -> list[dict[str, Any]]:
    """KPI table rows (label, formatted value, definition) of ``names``, for both reports.

    ``note`` says why a value is a dash or partial (an optional table is not mapped:
    "no leads mapped"), '' otherwise; the templates show it under the value. With
    ``extras`` (the diagnosis tiles) each row also says its change on the previous
    period to the same day and its target with met/missed (empty texts where there is
    none)."""
    kpis = registry()
    rows = []
    for name in names:
        if name not in report.kpis:
            continue
        kpi = kpis[name]
        row = {
            "name": name,
            "label": kpi.label(language),
            "value": fmt.kpi_value(kpi, report.kpis.get(name), language, currency),
            "definition": kpi.definition(language),
            "direction": kpi.direction,
            "note": kpi_note(report, name, language),
            "change": "",
            "change_class": "",
            "target": "",
            "target_class": "",
        }
        if extras is not None:
            row.update(_tile_notes(kpi, report, extras, language, currency))
        rows.append(row)
    return rows


def _tile_notes(
    kpi: KpiDefinition, report: PeriodReport, extras: ScopeExtras, language: str, currency: str
) -> dict[str, str]:
    """A tile's change on the previous period and its target line (see :func:`kpi_rows`)."""
    from crm_batch.reports.quarterly_targets import change_text, target_note, trend_class

    notes: dict[str, str] = {}
    tile = extras.tiles.get(kpi.name)
    if tile is not None and tile.previous is not None and math.isfinite(tile.current):
        change = tile.current - tile.previous
        period = report.period.previous().label
        notes["change"] = (
            f"{change_text(kpi, change, language, currency)} "
            f"{message('tile.vs', language, period=period)}"
        )
        notes["change_class"] = trend_class(kpi, change)
    if kpi.name in extras.targets.index:
        notes["target"], notes["target_class"] = target_note(
            extras.targets.loc[kpi.name], language, currency
        )
    return notes


def _distribution(customers: pd.DataFrame, column: str, keys: tuple[str, ...], language: str):
    values = customers[column].astype("object")
    revenues = customers["revenue_12m"].clip(lower=0)  # one column: no copy of the frame
    total_customers = len(customers)
    total_revenue = float(revenues.sum())
    rows = []
    for key in keys:
        chosen = values == key
        count = int(chosen.sum())
        revenue = float(revenues[chosen].sum())
        rows.append(
            {
                "key": key,
                "label": label(key, language),
                "customers": count,
                "customer_share": count / total_customers if total_customers else 0.0,
                "revenue": revenue,
                "revenue_share": revenue / total_revenue if total_revenue > 0 else 0.0,
            }
        )
    return rows


def _format_distribution(rows: list[dict[str, Any]], language: str, currency: str):
    return [
        {
            "label": row["label"],
            "customers": fmt.number(row["customers"]),
            "customer_share": fmt.percent(row["customer_share"]),
            "revenue": fmt.money(row["revenue"], language, currency),
            "revenue_share": fmt.percent(row["revenue_share"]),
        }
        for row in rows
    ]


def _matrix(customers: pd.DataFrame, language: str, currency: str) -> list[dict[str, Any]]:
    groups = customers["value_group"].astype("object")
    revenues = customers["revenue_12m"]  # one column: no copy of the frame per cell
    rows = []
    for value in ("high", "low"):
        cells = []
        for lifecycle in LIFECYCLES:
            key = f"{value}_{lifecycle}"
            chosen = groups == key
            cells.append(
                {
                    "key": key,
                    "label": label(key, language),
                    "customers": fmt.number(int(chosen.sum())),
                    "revenue": fmt.money(float(revenues[chosen].sum()), language, currency),
                    "action": action_text(GROUP_ACTIONS[key], language),
                }
            )
        rows.append({"value": message(f"lifecycle.{value}", language), "cells": cells})
    return rows


def _signals(row: Any, language: str) -> str:
    if row.signal_quiet and row.signal_complaint:
        return message("signal.both", language)
    if row.signal_complaint:
        return message("signal.complaint", language)
    return message("signal.no_order_3m", language)


def _warnings(
    report: PeriodReport, language: str, currency: str, followups: pd.DataFrame | None
) -> list[dict[str, str]]:
    """The call list: the first warnings in calling order (what a call can still save
    first, :func:`crm_batch.kpi.churn.rank_for_calls`), each with the customer's id and
    phone and the latest follow-up staff saved (``followups``:
    :func:`crm_batch.app.followups.latest_followups`' frame; None: not read)."""
    ranked = report.churn_warnings.head(TOP_CALLS)
    ids = ranked["customer_id"].astype(str)
    phones = lookup(ranked["customer_id"], report.customers.set_index("customer_id")["phone"])
    latest = _latest_by_customer(followups, ids)
    rows = []
    for row, customer_id, phone in zip(ranked.itertuples(index=False), ids, phones, strict=True):
        contact = latest.get(customer_id)
        rows.append(
            {
                "customer": display_text(row.name),
                "customer_id": display_text(customer_id, 40),
                "phone": display_text(phone, 40),
                "team": display_text(row.team),
                "owner": display_text(row.owner),
                "level": label(str(row.level), language),
                "level_key": str(row.level),
                "signals": _signals(row, language),
                "last_order": fmt.day(row.last_order_date, language),
                "revenue_at_risk": fmt.money(row.revenue_at_risk, language, currency),
                "expected_12m": fmt.money(
                    getattr(row, "expected_revenue_12m", math.nan), language, currency
                ),
                "action": action_title(row.warning_action_key, language),
                "action_key": str(row.warning_action_key),
                "contacted": fmt.DASH
                if contact is None
                else fmt.day(contact["entered_at"], language),
                "outcome": _outcome(contact, language),
                "next_contact": fmt.DASH
                if contact is None
                else fmt.day(contact["next_contact_date"], language),
            }
        )
    return rows


def owner_followups(
    report: PeriodReport, followups: pd.DataFrame | None, language: str
) -> list[dict[str, str]]:
    """Per account owner: the high churn warnings, how many of them were contacted in the
    last :data:`CONTACT_DAYS` days (latest saved follow-up) and those contacts' outcomes,
    the owners with the fewest contacted first. Empty without ``followups`` (not read)."""
    if followups is None:
        return []
    high = report.churn_warnings[report.churn_warnings["level"].astype("object") == "high"]
    if high.empty:
        return []
    latest = _latest_by_customer(followups, high["customer_id"].astype(str))
    since = pd.Timestamp(report.as_of - timedelta(days=CONTACT_DAYS - 1))
    ranked: list[tuple[tuple[float, str], dict[str, str]]] = []
    for owner, group in high.groupby(high["owner"].astype("object").fillna(""), sort=True):
        outcomes: dict[str, int] = {}
        contacted = 0
        for customer_id in group["customer_id"].astype(str):
            contact = latest.get(customer_id)
            if contact is None or pd.isna(contact["entered_at"]):
                continue
            if pd.Timestamp(contact["entered_at"]).normalize() >= since:
                contacted += 1
                shown = _outcome(contact, language)
                outcomes[shown] = outcomes.get(shown, 0) + 1
        row = {
            "owner": display_text(owner),
            "high": fmt.number(len(group)),
            "contacted": fmt.number(contacted),
            "share": fmt.percent(contacted / len(group), 0),
            "outcomes": " · ".join(f"{name} {count}" for name, count in outcomes.items())
            or fmt.DASH,
        }
        ranked.append(((contacted / len(group), str(owner)), row))
    return [row for _order, row in sorted(ranked, key=lambda pair: pair[0])]


def _outcome(contact: dict[str, Any] | None, language: str) -> str:
    """A saved follow-up's outcome label (a stored key the list no longer has: as is)."""
    if contact is None or not isinstance(contact.get("outcome"), str):
        return fmt.DASH
    key = contact["outcome"]
    return outcome_label(key, language) if key in OUTCOME_LABELS else display_text(key, 40)


def _latest_by_customer(
    followups: pd.DataFrame | None, ids: pd.Series
) -> dict[str, dict[str, Any]]:
    """customer id (text) -> its latest follow-up row, for the customers ``ids`` (text)
    only: the frame holds every warned customer of the company."""
    if followups is None or followups.empty:
        return {}
    chosen = followups[followups["customer_id"].astype(str).isin(set(ids))]
    return {str(record["customer_id"]): record for record in chosen.to_dict(orient="records")}


def action_legend(keys: Iterable[object], language: str) -> list[dict[str, str]]:
    """Each distinct playbook action of ``keys`` once, in first-seen order: its title
    and instruction. A table of accounts shows only the action's title per row and this
    legend under it, instead of the same long instruction on every row."""
    legend: dict[str, dict[str, str]] = {}
    for key in keys:
        if isinstance(key, str) and key in ACTIONS and key not in legend:
            action = ACTIONS[key]
            legend[key] = {"title": action.title(language), "detail": action.detail(language)}
    return list(legend.values())


def action_title(key: object, language: str) -> str:
    """The playbook title of action ``key``; a dash for an unknown or missing key."""
    if isinstance(key, str) and key in ACTIONS:
        return ACTIONS[key].title(language)
    return fmt.DASH


def _candidates(report: PeriodReport, language: str, currency: str) -> list[dict[str, str]]:
    return [
        {
            "customer": display_text(row.name),
            "team": display_text(row.team),
            "owner": display_text(row.owner),
            "value_tier": label(str(row.value_tier), language),
            "referrals": fmt.number(row.referrals_successful),
            "orders_12m": fmt.number(row.orders_12m),
            "revenue_12m": fmt.money(row.revenue_12m, language, currency),
        }
        for row in report.advocate_candidates.head(TOP_CALLS).itertuples(index=False)
    ]


def funnel_rows(
    frame: pd.DataFrame, language: str, currency: str, name: str
) -> list[dict[str, Any]]:
    """Campaign funnel rows (by channel or campaign, per ``name``), formatted for tables."""
    rows = []
    for row in frame.itertuples(index=False):
        title = getattr(row, name)
        rows.append(
            {
                "name": channel_label(str(title), language)
                if name == "channel"
                else display_text(title),
                # campaigns: the id and start tell apart campaigns of the same name
                "campaign_id": display_text(getattr(row, "campaign_id", None), 40),
                "started": fmt.day(getattr(row, "started_at", None), language),
                "touches": fmt.number(row.touches),
                "opened": fmt.number(row.opened),
                "clicked": fmt.number(row.clicked),
                "conversions": fmt.number(row.conversions),
                "conversion_rate": fmt.percent(row.conversion_rate),
                "revenue": fmt.money(row.revenue, language, currency),
                "cost": fmt.money(row.cost, language, currency),
                "roi": fmt.percent(row.roi, 0),
                "opt_out_rate": fmt.percent(row.opt_out_rate),
            }
        )
    return rows


def campaign_section(
    report: PeriodReport,
    names: tuple[str, ...],
    language: str,
    currency: str,
    extras: ScopeExtras | None = None,
) -> dict[str, Any]:
    """The campaign section of both reports: KPI cards and the funnel by channel and by
    campaign. ``absent``: without touches there is no funnel at all, and the section
    says so ("no touches mapped") instead of showing zeros; ``tables_absent``: without
    campaigns the touches have no channel or campaign, so the tables give way to
    "no campaigns mapped" (the cards still show what touches alone measure)."""
    absent = [t for t in ("touches",) if t in report.absent_tables]
    tables_absent = [t for t in ("campaigns",) if t in report.absent_tables]
    return {
        "absent": absent_reason(absent, language),
        "tables_absent": absent_reason(tables_absent, language),
        "kpis": kpi_rows(report, names, language, currency, extras),
        "channels": funnel_rows(report.funnel_by_channel, language, currency, "channel"),
        "campaigns": funnel_rows(report.funnel_by_campaign, language, currency, "campaign_name"),
    }


def _charts(report: PeriodReport, tiers, value_tiers, language: str) -> dict[str, str]:
    t = messages(language)
    customers = report.customers
    distribution = tiers + value_tiers
    touches = report.funnel_by_channel
    stages = ("touches", "opened", "clicked", "conversions")
    return {
        "pareto": charts.pareto_curve(
            customers["revenue_12m"].tolist(),
            0.2,
            t["chart.customers_ranked"],
            t["chart.revenue_cumulative"],
            message("chart.top_share", language, share="20%"),
        ),
        "distribution": charts.distribution_bars(
            [row["label"] for row in distribution],
            [row["customers"] for row in distribution],
            [row["revenue_share"] for row in distribution],
            t["chart.customers"],
            t["chart.revenue_share"],
        ),
        # without touches the campaign section shows only the reason: no chart to draw
        "funnel": ""
        if "touches" in report.absent_tables
        else charts.funnel(
            [t[f"funnel.{stage}"] for stage in stages],
            [float(touches[stage].sum()) for stage in stages],
            t["chart.count"],
        ),
    }


def diagnosis_context(
    report: PeriodReport,
    *,
    language: str,
    currency: str,
    company_name: str,
    generated_at: datetime,
    rules: findings.FindingRules | None = None,
    extras: DiagnosisExtras | None = None,
    likely_lost_p_alive: float | None = None,
) -> dict[str, Any]:
    """Everything ``diagnosis.html`` shows for one scope, as plain data.

    ``extras`` (read by :mod:`crm_batch.app.report_extras`) adds to the KPI tiles their
    change on the previous period and their targets, and to the call list each
    customer's latest follow-up; without it those stay empty. ``likely_lost_p_alive``:
    ``thresholds.likely_lost_p_alive`` (default: the setting's default)."""
    from crm_batch.reports.value_sections import alive_section, uplift_rows

    if likely_lost_p_alive is None:
        likely_lost_p_alive = ThresholdSettings().likely_lost_p_alive
    t = messages(language)
    tiles = extras.of(report.team) if extras is not None else ScopeExtras()
    calls = _warnings(report, language, currency, extras.followups if extras else None)
    scope = t["scope.all"] if report.team is None else display_text(report.team)
    tiers = _distribution(report.customers, "tier", TIERS, language)
    value_tiers = _distribution(report.customers, "value_tier", VALUE_TIERS, language)
    found = findings.find(
        report.kpis, report.customers, report.funnel_by_channel, language, currency, rules
    )
    period = report.period
    warnings_total = len(report.churn_warnings)
    return {
        "lang": language,
        "t": t,
        "report": {
            "title": t["diagnosis.title"],
            "subject": t["diagnosis.subject"],
            "company": display_text(company_name, 200),
            "scope": scope,
            "is_company": report.team is None,
            "as_of": fmt.day(report.as_of, language),
            "period": period.label,
            "period_span": f"{fmt.day(period.start, language)} – {fmt.day(period.end, language)}",
            "generated": fmt.moment(generated_at, language),
        },
        "findings": [{"severity": f.severity, "number": f.number, "text": f.text} for f in found],
        "headline": kpi_rows(report, HEADLINE_KPIS, language, currency, tiles),
        "tiers": _format_distribution(tiers, language, currency),
        "value_tiers": _format_distribution(value_tiers, language, currency),
        "pareto": kpi_rows(report, ("pareto_revenue_share", "buyers_12m"), language, currency),
        "matrix": _matrix(report.customers, language, currency),
        "churn": {
            "kpis": kpi_rows(
                report,
                ("churn_warnings_count", "churn_warnings_high", "revenue_at_risk", "churn_rate"),
                language,
                currency,
                tiles,
            ),
            "top": calls,
            "actions": action_legend([row["action_key"] for row in calls], language),
            "owners": owner_followups(report, extras.followups if extras else None, language),
            "title": message("text.top_calls", language, count=TOP_CALLS),
            "more": message(
                "text.more_warnings", language, count=max(0, warnings_total - TOP_CALLS)
            )
            if warnings_total > TOP_CALLS
            else "",
        },
        "repurchase": kpi_rows(report, REPURCHASE_KPIS, language, currency),
        "referral": {
            "kpis": kpi_rows(report, REFERRAL_KPIS, language, currency, tiles),
            "candidates": _candidates(report, language, currency),
        },
        "service": kpi_rows(report, SERVICE_KPIS, language, currency, tiles),
        "campaigns": {
            **campaign_section(report, CAMPAIGN_KPIS, language, currency, tiles),
            "uplift": uplift_rows(report.uplift_by_channel, language, currency),
        },
        "alive": alive_section(report, language, currency, likely_lost_p_alive),
        "definitions": kpi_rows(report, tuple(report.kpis), language, currency),
        "charts": _charts(report, tiers, value_tiers, language),
    }
