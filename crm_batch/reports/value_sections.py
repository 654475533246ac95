"""Report sections of the value models and the control groups, as display rows.

* "Who is still with us" (diagnosis): P(alive) by value tier and the valuable customers
  most likely lost (:mod:`crm_batch.kpi.alive`);
* incremental campaign results, sent against control, per channel (:mod:`crm_batch.kpi.
  uplift`), with "attributed, not incremental" where a channel has no control group;
* the forecast check of the quarterly review: predicted against actual purchase days
  (:mod:`crm_batch.kpi.calibration`).

Plain data in, formatted strings out, like :mod:`crm_batch.reports.context`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.messages import channel_label, message
from crm_batch.kpi.alive import BAND_COLUMNS
from crm_batch.kpi.calibration import TOTAL
from crm_batch.kpi.engine import PeriodReport
from crm_batch.kpi.playbook import label
from crm_batch.kpi.uplift import MIN_CONTROL
from crm_batch.reports.display import display_text

#: Valuable customers listed as most likely lost.
TOP_LOST = 10


def alive_section(
    report: PeriodReport, language: str, currency: str, likely_lost_p_alive: float
) -> dict[str, Any]:
    """P(alive) by value tier and the top likely-lost valuable customers; ``fitted`` is
    False when the models could not be fitted (the section then says so)."""
    tiers = []
    for row in report.alive_by_tier.itertuples(index=False):
        tiers.append(
            {
                "tier": label(str(row.value_tier), language),
                "buyers": fmt.number(row.buyers),
                "p_alive_mean": fmt.percent(row.p_alive_mean, 0),
                **{band: fmt.number(getattr(row, band)) for band in BAND_COLUMNS},
                "likely_lost": fmt.number(row.likely_lost),
                "likely_lost_revenue": fmt.money(row.likely_lost_revenue_12m, language, currency),
            }
        )
    lost = [
        {
            "customer": display_text(row.name),
            "customer_id": display_text(row.customer_id, 40),
            "owner": display_text(row.owner),
            "value_tier": label(str(row.value_tier), language),
            "revenue_12m": fmt.money(row.revenue_12m, language, currency),
            "last_order": fmt.day(row.last_order_date, language),
            "p_alive": fmt.percent(row.p_alive, 0),
            "expected_12m": fmt.money(row.expected_revenue_12m, language, currency),
        }
        for row in report.likely_lost.head(TOP_LOST).itertuples(index=False)
    ]
    return {
        "fitted": bool(len(report.alive_by_tier)),
        "intro": message(
            "text.alive_intro", language, threshold=fmt.percent(likely_lost_p_alive, 0)
        ),
        "tiers": tiers,
        "lost": lost,
    }


def uplift_rows(frame: pd.DataFrame, language: str, currency: str) -> list[dict[str, str]]:
    """Per channel: sent, control, both conversions, uplift and incremental revenue with
    their intervals, incremental ROI; "attributed, not incremental" without a control."""
    rows = []
    for row in frame.itertuples(index=False):
        measured = not math.isnan(row.uplift)
        plain = (
            message("text.control_too_small", language, minimum=MIN_CONTROL)
            if row.control
            else message("text.not_incremental", language)
        )
        rows.append(
            {
                "name": channel_label(str(row.channel), language),
                "sent": fmt.number(row.sent),
                "control": fmt.number(row.control),
                "conversion_sent": fmt.percent(row.conversion_sent),
                "conversion_control": fmt.percent(row.conversion_control)
                if row.control
                else fmt.DASH,
                "uplift": _points(row.uplift, row.uplift_low, row.uplift_high)
                if measured
                else plain,
                "incremental_revenue": _money_interval(row, language, currency)
                if measured
                else fmt.DASH,
                "incremental_roi": fmt.percent(row.incremental_roi, 0)
                if measured and not math.isnan(row.incremental_roi)
                else fmt.DASH,
            }
        )
    return rows


def _points(value: float, low: float, high: float) -> str:
    return f"{value * 100:+.1f} ({low * 100:+.1f} … {high * 100:+.1f})"


def _money_interval(row: Any, language: str, currency: str) -> str:
    value = fmt.money(row.incremental_revenue, language, currency)
    low = fmt.money(row.incremental_revenue_low, language, currency)
    high = fmt.money(row.incremental_revenue_high, language, currency)
    return f"{value} ({low} … {high})"


def calibration_rows(frame: pd.DataFrame, language: str) -> list[dict[str, str]]:
    """Per value tier at the quarter's start and in all: buyers, predicted and actual
    purchase days, actual / predicted."""
    return [
        {
            "tier": message("tier.all", language)
            if row.value_tier == TOTAL
            else label(str(row.value_tier), language),
            "buyers": fmt.number(row.buyers),
            "predicted_days": fmt.number(row.predicted_days),
            "actual_days": fmt.number(row.actual_days),
            "ratio": fmt.number(row.ratio, 2),
            "total": row.value_tier == TOTAL,
        }
        for row in frame.itertuples(index=False)
    ]
