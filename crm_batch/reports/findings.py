"""Automatic findings: short sentences generated from thresholds, each with its number.

Every rule reads the KPI values and the per-customer table of one scope, compares one
number with one threshold of :class:`FindingRules`, and when it fires returns a
:class:`Finding` whose ``number`` is the figure the sentence rests on (shown beside it
in the report). Rules are ordered by importance: money at risk first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.messages import channel_label, message

#: "Has not ordered for 3 months": the lifecycle's dormant threshold (days).
QUIET_DAYS = 90


@dataclass(frozen=True)
class FindingRules:
    """The thresholds of the findings (fractions for rates)."""

    a_tier_quiet_share: float = 0.10  # A-tier revenue with customers quiet for 3 months
    pareto_share: float = 0.60  # top 20 % customers' revenue share
    revenue_at_risk_share: float = 0.05  # revenue at risk / 12-month revenue
    repurchase_rate: float = 0.25  # watch line
    complaint_resolved_24h: float = 0.90  # seeds: complaints solved within 24 h
    referral_share: float = 0.10  # referred share of new customers
    opt_out_rate: float = 0.03  # DESIGN: opt-out target <= 3 %


@dataclass(frozen=True)
class Finding:
    """One sentence of the findings list and the number it rests on."""

    key: str
    severity: str  # "high" | "medium" | "info"
    number: str
    text: str


def _value(kpis: Mapping[str, float], name: str) -> float:
    value = kpis.get(name, math.nan)
    return math.nan if value is None else float(value)


def a_tier_quiet_revenue(customers: pd.DataFrame) -> tuple[float, int]:
    """Share of A-tier 12-month revenue with A-tier customers whose last order is more
    than :data:`QUIET_DAYS` days old, and how many such customers there are."""
    a_tier = customers[(customers["tier"] == "A").fillna(False).astype(bool)]
    total = float(a_tier["revenue_12m"].sum())
    if total <= 0:
        return math.nan, 0
    quiet = a_tier[(a_tier["recency_days"] > QUIET_DAYS).fillna(False).astype(bool)]
    return float(quiet["revenue_12m"].sum()) / total, len(quiet)


def find(
    kpis: Mapping[str, float],
    customers: pd.DataFrame,
    channels: pd.DataFrame,
    language: str,
    currency: str,
    rules: FindingRules | None = None,
) -> list[Finding]:
    """The findings of one scope, most important first (empty when nothing fires)."""
    rules = rules or FindingRules()
    pct = fmt.percent
    found: list[Finding] = []

    def add(key: str, severity: str, number: str, **values: object) -> None:
        found.append(Finding(key, severity, number, message(f"finding.{key}", language, **values)))

    share, quiet_count = a_tier_quiet_revenue(customers)
    if share >= rules.a_tier_quiet_share:
        add(
            "a_tier_quiet_revenue",
            "high",
            pct(share, 0),
            share=pct(share, 0),
            customers=quiet_count,
        )

    revenue = _value(kpis, "revenue_12m")
    at_risk = _value(kpis, "revenue_at_risk")
    warnings = _value(kpis, "churn_warnings_count")
    if revenue > 0 and warnings > 0 and at_risk / revenue >= rules.revenue_at_risk_share:
        amount = fmt.money(at_risk, language, currency)
        add(
            "revenue_at_risk",
            "high",
            amount,
            count=fmt.number(warnings),
            amount=amount,
            share=pct(at_risk / revenue, 0),
        )

    high = _value(kpis, "churn_warnings_high")
    if high > 0:
        add("high_warnings", "high", fmt.number(high), count=fmt.number(high))

    groups = customers["value_group"].astype("object")
    sleeping = customers[groups.isin(["high_dormant", "high_churned"])]
    if len(sleeping):
        amount = fmt.money(float(sleeping["revenue_12m"].sum()), language, currency)
        add(
            "dormant_high_value",
            "medium",
            fmt.number(len(sleeping)),
            count=fmt.number(len(sleeping)),
            amount=amount,
        )

    pareto = _value(kpis, "pareto_revenue_share")
    if pareto >= rules.pareto_share:
        add("pareto_concentration", "info", pct(pareto, 0), share=pct(pareto, 0))

    repurchase = _value(kpis, "repurchase_rate")
    if repurchase < rules.repurchase_rate:
        add(
            "repurchase_low",
            "medium",
            pct(repurchase),
            rate=pct(repurchase),
            threshold=pct(rules.repurchase_rate, 0),
        )

    resolved = _value(kpis, "complaint_resolved_24h_rate")
    if resolved < rules.complaint_resolved_24h:
        add(
            "complaints_slow",
            "medium",
            pct(resolved, 0),
            rate=pct(resolved, 0),
            threshold=pct(rules.complaint_resolved_24h, 0),
        )

    open_complaints = _value(kpis, "open_complaints")
    if open_complaints > 0:
        count = fmt.number(open_complaints)
        add("open_complaints", "medium", count, count=count)

    referred = _value(kpis, "referral_share_new")
    if referred < rules.referral_share:
        candidates = fmt.number(_value(kpis, "advocate_candidates"))
        add(
            "referral_share_low",
            "info",
            pct(referred),
            rate=pct(referred),
            threshold=pct(rules.referral_share, 0),
            candidates=candidates,
        )

    opt_out = _value(kpis, "opt_out_rate")
    if opt_out > rules.opt_out_rate:
        add(
            "opt_out_high",
            "medium",
            pct(opt_out),
            rate=pct(opt_out),
            threshold=pct(rules.opt_out_rate, 0),
        )

    for row in channels.itertuples(index=False):
        if row.touches > 0 and math.isfinite(row.roi) and row.roi < 0:
            roi = pct(float(row.roi), 0)
            # a channel with no attributed sale yet (often a campaign just started) reads
            # as "-100 %"; say so instead of "it cost more than it brought in"
            add(
                "negative_roi_channel" if row.revenue > 0 else "unpaid_channel",
                "info",
                roi,
                channel=channel_label(str(row.channel), language),
                roi=roi,
                cost=fmt.money(float(row.cost), language, currency),
                revenue=fmt.money(float(row.revenue), language, currency),
            )

    order = {"high": 0, "medium": 1, "info": 2}
    return sorted(found, key=lambda finding: order[finding.severity])
