"""The quarterly review's targets, gaps and next quarter's actions, and how changes read.

* :func:`target_rows`: a target table (:func:`crm_batch.kpi.targets.target_table`
  columns) as display rows: rule, baseline, target, actual, attainment, met;
* :func:`action_rows`: one action per targeted KPI that missed its target, the lowest
  attainment first, with the gap (target - actual, in the KPI's unit) and the playbook
  action of the seeds that moves that KPI (:data:`KPI_ACTIONS`), plus whom it is for in
  this scope (the customer group and how many) or, for campaign KPIs, the weakest and
  best channel;
* :func:`change_text` / :func:`trend_class`: a change between two values of a KPI,
  signed in the KPI's unit (percentage points for rates), and whether it is better or
  worse by the KPI's good direction.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from crm_batch.app.quarter import QuarterData, Scope
from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.messages import channel_label, message
from crm_batch.kpi import targets
from crm_batch.kpi.definitions import KpiDefinition, registry
from crm_batch.kpi.engine import PeriodReport, kpi_note
from crm_batch.kpi.playbook import ACTIONS, GROUP_ACTIONS, PROSPECT_ACTION, label

#: A KPI that misses its target -> the playbook action that moves it (the seeds' plans).
KPI_ACTIONS: dict[str, str] = {
    "lead_conversion_rate": "prospect_nurture",
    "new_customers": "prospect_nurture",
    "repurchase_rate": "repurchase_incentive",
    "repeat_rate_90d": "first_order_follow_up",
    "aov_12m": "upsell_membership",
    "tier_upgrades": "upsell_membership",
    "tier_a_count": "dedicated_account_manager",
    "high_value_revenue_share_12m": "dedicated_account_manager",
    "churn_rate": "vip_winback_call",
    "tier_downgrades": "vip_winback_call",
    "churn_warnings_count": "personal_winback",
    "revenue_at_risk": "vip_winback_call",
    "winback_rate": "low_cost_winback",
    "winback_customers": "low_cost_winback",
    "active_share": "reactivation_offer",
    "dormant_share": "reactivation_offer",
    "referral_share_new": "reward_and_refer",
    "successful_referrals": "reward_and_refer",
    "advocates": "reward_and_refer",
    "viral_coefficient": "reward_and_refer",
    "satisfaction_mean": "resolve_complaint",
    "complaint_resolved_24h_rate": "resolve_complaint",
    "open_complaints": "resolve_complaint",
}
#: Campaign KPIs get the review texts of the catalogue (``action.<kpi>``), with the
#: channel figures they rest on.
CAMPAIGN_ACTION_KPIS = ("campaign_roi", "opt_out_rate", "campaign_conversion_rate")


# --- formatting -----------------------------------------------------------------------


def kpi_text(kpi: KpiDefinition, value: float, language: str, currency: str) -> str:
    """A value of ``kpi`` as the report shows it (:func:`fmt.kpi_value`)."""
    return fmt.kpi_value(kpi, value, language, currency)


def change_text(kpi: KpiDefinition, change: float, language: str, currency: str) -> str:
    """A difference of two values of ``kpi`` with its sign: ``+2.5 pp``, ``-¥1,200``."""
    if change is None or not math.isfinite(change):
        return fmt.DASH
    if kpi.unit in ("ratio", "ratio_delta"):
        points = f"{change * 100:+,.{kpi.decimals}f}"
        return f"{points} 个百分点" if language == "zh-CN" else f"{points} pp"
    if kpi.unit == "money":
        shown = fmt.money(abs(change), language, currency)
        return ("+" if change >= 0 else "-") + shown
    if kpi.unit == "count":
        return f"{change:+,.0f}"
    if kpi.unit == "days":
        return f"{change:+,.0f} 天" if language == "zh-CN" else f"{change:+,.0f} d"
    return f"{change:+,.{max(kpi.decimals, 2)}f}"


def trend_class(kpi: KpiDefinition, change: float) -> str:
    """``better`` / ``worse`` by the KPI's good direction, ``''`` when neutral or flat."""
    if change is None or not math.isfinite(change) or change == 0 or kpi.direction == "neutral":
        return ""
    good = change > 0 if kpi.direction == "up" else change < 0
    return "better" if good else "worse"


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def difference(current: float, earlier: float) -> float:
    return current - earlier if _finite(current) and _finite(earlier) else math.nan


# --- targets and actions --------------------------------------------------------------


def _rule_text(row: Any, kpi: KpiDefinition, language: str, currency: str) -> str:
    if row.rule == "change":
        key = "rule.change_down" if row.direction == "down" else "rule.change_up"
        text = message(key, language, change=fmt.percent(row.change, 0), period=row.baseline_period)
        if is_capped(row):
            limit = kpi_text(kpi, row.target, language, currency)
            text += message("rule.capped", language, value=limit)
        return text
    return message(
        f"rule.{row.rule}", language, value=kpi_text(kpi, row.target, language, currency)
    )


def is_capped(row: Any) -> bool:
    """Whether a relative target row was cut to its KPI's scale limit (a satisfaction
    target of +50 % on 4.2 is the scale's 5.00, and reads as a ceiling, not a plan)."""
    if row.rule != "change" or not (_finite(row.target) and _finite(row.baseline)):
        return False
    return not math.isclose(
        row.target, targets.uncapped_target(row.direction, row.change, row.baseline)
    )


def attainment_text(row: Any) -> str:
    """Attainment as a percentage for a relative target; a dash for a bound (``max`` /
    ``min``): a bound is met or missed, "179 % of at most 3 %" means nothing."""
    if row.rule in ("max", "min"):
        return fmt.DASH
    return fmt.percent(row.attainment, 0)


def _met_text(met: Any, language: str) -> tuple[str, str]:
    if pd.isna(met):
        return fmt.DASH, ""
    return (message("met.yes", language), "met") if met else (message("met.no", language), "missed")


def target_note(row: Any, language: str, currency: str) -> tuple[str, str]:
    """A KPI tile's line on its target: ``Target 27.0% (35% up on 2026Q1) · met`` or,
    for a bound, ``Target: at most 3.00% · missed``; and ``met`` / ``missed`` / ``''``."""
    kpi = registry()[row.kpi]
    met, met_key = _met_text(row.met, language)
    rule = _rule_text(row, kpi, language, currency)
    if row.rule == "change":
        target = kpi_text(kpi, row.target, language, currency)
        return message("tile.target", language, target=target, rule=rule, met=met), met_key
    return message("tile.bound", language, rule=rule, met=met), met_key


def target_rows(
    table: pd.DataFrame, language: str, currency: str, report: PeriodReport | None = None
) -> list[dict[str, Any]]:
    """The target table of one scope as display rows (attainment as a percentage).

    A KPI of ``report`` without data (an optional table is not mapped) shows "no data"
    and the reason instead of its actual value: it was not measured, so it did not miss.
    """
    kpis = registry()
    missing = report.missing if report is not None else {}
    rows = []
    for row in table.itertuples(index=False):
        kpi = kpis[row.kpi]
        met, met_key = _met_text(row.met, language)
        actual = kpi_text(kpi, row.actual, language, currency)
        if report is not None and row.kpi in report.missing:
            met, met_key = message("met.no_data", language), ""
            actual = kpi_note(report, row.kpi, language)
        rows.append(
            {
                "kpi": row.kpi,
                "label": kpi.label(language),
                "rule": _rule_text(row, kpi, language, currency),
                "baseline_period": row.baseline_period,
                "baseline": kpi_text(kpi, row.baseline, language, currency),
                "target": kpi_text(kpi, row.target, language, currency),
                "actual": actual,
                "attainment": fmt.DASH if row.kpi in missing else attainment_text(row),
                "met": met,
                "met_key": met_key,
            }
        )
    return rows


def _focus(key: str, data: QuarterData, scope: Scope, language: str) -> str:
    """Who the action is for in this scope, with how many customers (or '')."""
    customers = data.report(scope).customers
    groups = [group for group, action in GROUP_ACTIONS.items() if action == key]
    if groups:
        count = int(customers["value_group"].astype("object").isin(groups).sum())
        names = "、".join if language == "zh-CN" else ", ".join
        return message(
            "action.focus",
            language,
            group=names(label(group, language) for group in groups),
            count=fmt.number(count),
        )
    if key == PROSPECT_ACTION:
        count = int((customers["lifecycle"].astype("object") == "prospect").sum())
        return message(
            "action.focus",
            language,
            group=label("prospect", language),
            count=fmt.number(count),
        )
    kpis = data.report(scope).kpis
    if key == "reward_and_refer":
        return message(
            "action.focus_candidates",
            language,
            count=fmt.number(kpis.get("advocate_candidates")),
        )
    if key == "resolve_complaint":
        return message(
            "action.focus_complaints", language, count=fmt.number(kpis.get("open_complaints"))
        )
    return ""


def _channel_evidence(data: QuarterData, scope: Scope, kpi: str, language: str) -> str:
    """The channel figures a campaign action rests on (worst and best channel)."""
    channels = data.report(scope).funnel_by_channel
    channels = channels[channels["touches"] > 0]
    column = {"campaign_roi": "roi", "campaign_conversion_rate": "conversion_rate"}.get(
        kpi, "opt_out_rate"
    )
    ranked = channels[np.isfinite(channels[column].astype("float64"))].sort_values(
        [column, "channel"], kind="stable"
    )
    if len(ranked) < 1:
        return ""
    low, high = ranked.iloc[0], ranked.iloc[-1]
    if column == "opt_out_rate":
        low, high = high, low  # the worst channel has the highest opt-out rate
    decimals = 0 if column == "roi" else 1
    return message(
        "action.channels",
        language,
        worst=channel_label(str(low["channel"]), language),
        worst_value=fmt.percent(float(low[column]), decimals),
        best=channel_label(str(high["channel"]), language),
        best_value=fmt.percent(float(high[column]), decimals),
    )


def action_rows(
    data: QuarterData, scope: Scope, language: str, currency: str
) -> list[dict[str, str]]:
    """Next quarter's actions: one per targeted KPI that missed its target, the lowest
    attainment first (an undefined attainment last), each with its gap to the target."""
    kpis = registry()
    table = data.target_tables[scope]
    missed = table[table["met"].fillna(True).eq(False)]
    order = missed.assign(_order=missed["attainment"].fillna(np.inf)).sort_values(
        ["_order", "kpi"], kind="stable"
    )
    rows = []
    for row in order.itertuples(index=False):
        kpi = kpis[row.kpi]
        if row.kpi in CAMPAIGN_ACTION_KPIS:
            title = message(f"action.{row.kpi}.title", language)
            detail = message(f"action.{row.kpi}", language)
            evidence = _channel_evidence(data, scope, row.kpi, language)
        elif row.kpi in KPI_ACTIONS:
            key = KPI_ACTIONS[row.kpi]
            title = ACTIONS[key].title(language)
            detail = ACTIONS[key].detail(language)
            evidence = _focus(key, data, scope, language)
        else:
            title = message("action.review.title", language)
            detail = message("action.review", language, kpi=kpi.label(language))
            evidence = ""
        rows.append(
            {
                "label": kpi.label(language),
                "actual": kpi_text(kpi, row.actual, language, currency),
                "target": kpi_text(kpi, row.target, language, currency),
                "gap": change_text(kpi, row.target - row.actual, language, currency),
                "attainment": attainment_text(row),
                "title": title,
                "detail": detail,
                "evidence": evidence,
            }
        )
    return rows
