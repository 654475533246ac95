"""Retention in a period: repurchase rate, repeat within 90 days, churn rate and win-back.

Inputs are the per-customer frames of :mod:`crm_batch.source.extract_period`:

* ``period_orders`` (period_customer_orders.sql): ``last_order_before_date``,
  ``last_order_date``, ``orders_in_period`` per customer;
* ``first_orders`` (customer_first_orders.sql): ``first_order_date``,
  ``second_order_date`` per buyer, seen up to the business date T.

``period`` is the calendar period already clipped to T (its ``end`` is at most T).
Orders are paid rows only: a refund lowers revenue but is not an order, and does not
undo the order it refunds; cancelled rows are ignored.

Definitions (DESIGN.md "KPI definitions", details chosen here):

* **repurchase_rate** = customers with >= 2 paid orders dated in P / customers with
  >= 1. Two orders on the same day are two orders.
* **repeat_rate_90d** ("new -> repeat"): of the customers whose first paid order is in
  P, the share whose second paid order is dated at most ``repeat_window_days`` (90)
  after the first (the same day counts), as seen up to T. For a period that ended less
  than 90 days before T the rate is still maturing; target baselines are computed at
  the same distance from their period's end (:func:`crm_batch.kpi.targets.baseline_as_of`),
  so comparisons are like for like.
* **churn_rate**: lifecycle is judged on the day before P starts and on P's last day:
  churned = more than ``dormant_days`` (180) days since the last paid order. Of the
  customers with a paid order before P who were not churned the day before P (new,
  active and dormant customers; prospects excluded), the share churned on P's last day.
* **winback_customers** / **winback_rate**: customers churned the day before P with a
  paid order in P, and their share of all customers churned the day before P.

Rates with an empty denominator are NaN (shown as "-"), counts are 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm_batch.config import ThresholdSettings
from crm_batch.kpi.definitions import KpiDefinition
from crm_batch.kpi.keys import count_by_team, ratio, team_codes
from crm_batch.periods import Period

KPIS = (
    KpiDefinition(
        "period_buyers",
        "期内购买客户数",
        "Buyers in the period",
        "count",
        "up",
        "Customers with at least one paid order dated in the period.",
        "期内至少有一笔已付款订单的客户数。",
        0,
    ),
    KpiDefinition(
        "new_customers",
        "期内新客户数",
        "New customers in the period",
        "count",
        "up",
        "Customers whose first paid order is dated in the period.",
        "首笔已付款订单落在本期的客户数。",
        0,
    ),
    KpiDefinition(
        "repurchase_rate",
        "复购率",
        "Repurchase rate",
        "ratio",
        "up",
        "Customers with 2+ paid orders in the period / customers with 1+ paid order in it.",
        "期内已付款订单≥2笔的客户数 / 期内已付款订单≥1笔的客户数。",
    ),
    KpiDefinition(
        "repeat_rate_90d",
        "新客90天复购率",
        "New customers repeating within 90 days",
        "ratio",
        "up",
        "Of customers whose first paid order is in the period, share with a second one "
        "within 90 days of it.",
        "首单在本期的客户中,首单后90天内产生第二笔已付款订单的比例。",
    ),
    KpiDefinition(
        "churn_rate",
        "流失率",
        "Churn rate",
        "ratio",
        "down",
        "Of buyers not churned (last order <= 180 days ago) before the period, share "
        "churned at its end.",
        "期初未流失(距上次购买≤180天)的客户中,期末已流失的比例。",
    ),
    KpiDefinition(
        "winback_customers",
        "挽回客户数",
        "Won-back customers",
        "count",
        "up",
        "Customers churned before the period who placed a paid order in it.",
        "期初已流失、期内又有已付款订单的客户数。",
        0,
    ),
    KpiDefinition(
        "winback_rate",
        "流失挽回率",
        "Win-back rate",
        "ratio",
        "up",
        "Won-back customers / customers churned before the period.",
        "挽回客户数 / 期初已流失客户数。",
    ),
)


def day_before(period: Period) -> pd.Timestamp:
    """The day before ``period`` starts: where "at the start of P" is judged."""
    return pd.Timestamp(period.start - timedelta(days=1))


def repurchase_rate(period_orders: pd.DataFrame) -> float:
    """Customers with >= 2 paid orders in the period / customers with >= 1."""
    buyers, repeaters = _buyer_masks(period_orders)
    return ratio(repeaters.sum(), buyers.sum())


def _buyer_masks(period_orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Customers with >= 1 paid order in the period, and with >= 2."""
    orders = period_orders["orders_in_period"].fillna(0).to_numpy(dtype="float64")
    return orders >= 1, orders >= 2


def new_customer_mask(first_orders: pd.DataFrame, period: Period) -> pd.Series:
    """True for customers whose first paid order is dated in ``period``."""
    first = first_orders["first_order_date"]
    return (first >= pd.Timestamp(period.start)) & (first <= pd.Timestamp(period.end))


def repeat_rate_90d(
    first_orders: pd.DataFrame, period: Period, as_of: date, window_days: int = 90
) -> float:
    """Of the period's new customers, the share with a 2nd paid order within the window."""
    new, repeated = _repeat_masks(first_orders, period, as_of, window_days)
    return ratio(repeated.sum(), new.sum())


def _repeat_masks(
    first_orders: pd.DataFrame, period: Period, as_of: date, window_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """The period's new customers, and those of them with a 2nd order in the window."""
    new = new_customer_mask(first_orders, period)
    first = first_orders["first_order_date"]
    second = first_orders["second_order_date"]
    repeated = (
        second.notna()
        & (second <= first + pd.Timedelta(days=window_days))
        & (second <= pd.Timestamp(as_of))
    )
    return new.to_numpy(dtype=bool), (new & repeated).to_numpy(dtype=bool)


def churn_and_winback(
    period_orders: pd.DataFrame, period: Period, dormant_days: int = 180
) -> dict[str, float]:
    """Churn rate, won-back customers and win-back rate of ``period`` (see the module)."""
    masks = _churn_masks(period_orders, period, dormant_days)
    return _churn_values({name: int(mask.sum()) for name, mask in masks.items()})


def _churn_masks(
    period_orders: pd.DataFrame, period: Period, dormant_days: int
) -> dict[str, np.ndarray]:
    """The customers :func:`_churn_values` counts."""
    start_ref = day_before(period)
    end_ref = pd.Timestamp(period.end)
    before = period_orders["last_order_before_date"]
    last = period_orders["last_order_date"]
    limit = pd.Timedelta(days=dormant_days)
    live_at_start = before.notna() & (start_ref - before <= limit)
    churned_at_start = before.notna() & (start_ref - before > limit)
    churned_at_end = last.notna() & (end_ref - last > limit)
    ordered = period_orders["orders_in_period"].fillna(0) >= 1
    return {
        "live_at_start": live_at_start.to_numpy(dtype=bool),
        "live_then_churned": (live_at_start & churned_at_end).to_numpy(dtype=bool),
        "churned_at_start": churned_at_start.to_numpy(dtype=bool),
        "won_back": (churned_at_start & ordered).to_numpy(dtype=bool),
    }


def _churn_values(counts: Mapping[str, int]) -> dict[str, float]:
    return {
        "churn_rate": ratio(counts["live_then_churned"], counts["live_at_start"]),
        "winback_customers": float(counts["won_back"]),
        "winback_rate": ratio(counts["won_back"], counts["churned_at_start"]),
    }


def retention_kpis(
    period_orders: pd.DataFrame,
    first_orders: pd.DataFrame,
    period: Period,
    as_of: date,
    thresholds: ThresholdSettings,
) -> dict[str, float]:
    """Every KPI of :data:`KPIS` for ``period`` (clipped to ``as_of``)."""
    every = np.zeros(len(period_orders), dtype="int64"), np.zeros(len(first_orders), dtype="int64")
    return _retention(period_orders, first_orders, period, as_of, thresholds, every, 1)[0]


def retention_kpis_by_team(
    period_orders: pd.DataFrame,
    first_orders: pd.DataFrame,
    period: Period,
    as_of: date,
    thresholds: ThresholdSettings,
    teams: Sequence[str],
) -> dict[str, dict[str, float]]:
    """:func:`retention_kpis` of each of ``teams`` in one pass over everyone's rows (with
    ``team``): each count is one ``np.bincount`` over team codes."""
    teams = list(teams)
    codes = team_codes(period_orders["team"], teams), team_codes(first_orders["team"], teams)
    values = _retention(period_orders, first_orders, period, as_of, thresholds, codes, len(teams))
    return dict(zip(teams, values, strict=True))


def _retention(
    period_orders: pd.DataFrame,
    first_orders: pd.DataFrame,
    period: Period,
    as_of: date,
    thresholds: ThresholdSettings,
    codes: tuple[np.ndarray, np.ndarray],
    teams: int,
) -> list[dict[str, float]]:
    """The KPIs of each of ``teams`` groups; ``codes`` number the rows of both frames."""
    order_codes, first_codes = codes
    buyers, repeaters = (count_by_team(order_codes, m, teams) for m in _buyer_masks(period_orders))
    new, repeated = (
        count_by_team(first_codes, m, teams)
        for m in _repeat_masks(first_orders, period, as_of, thresholds.repeat_window_days)
    )
    churn = {
        name: count_by_team(order_codes, mask, teams)
        for name, mask in _churn_masks(period_orders, period, thresholds.dormant_days).items()
    }
    return [
        {
            "period_buyers": float(buyers[i]),
            "new_customers": float(new[i]),
            "repurchase_rate": ratio(repeaters[i], buyers[i]),
            "repeat_rate_90d": ratio(repeated[i], new[i]),
            **_churn_values({name: int(counts[i]) for name, counts in churn.items()}),
        }
        for i in range(teams)
    ]
