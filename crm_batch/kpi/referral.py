"""Referral ("old customer brings new customer", 老顾客转介): shares, advocates, viral K.

Inputs: :func:`referral_people` (the register with each customer's first paid order and
referrer's team, aligned once), ``period_orders`` (last paid order before the period) and, for
advocates, the segmented customer table at the period's end (``referrals_successful``,
``orders_12m``, ``value_tier`` per customer).

Definitions (DESIGN.md and the seeds' referral plan, details chosen here):

* a **referral** is a customer whose ``referred_by`` names another customer (a
  self-reference is ignored); it is **successful** when the referee has a paid order;
* **referral_share_new**: of P's new customers (first paid order in P), the share with
  a referrer;
* **successful_referrals**: referees whose first paid order is in P (each referee
  counts once, in the period of their first order);
* **advocates**: customers with >= ``advocate_min_referrals`` (2) successful referrals,
  cumulative to the end of P;
* **advocate candidates** (the seeds' screening): advocates who are also repeat buyers
  (>= 2 paid orders in the last 12 months) and high value (diamond or silver tier), all
  judged at the end of P;
* **viral_coefficient** K = successful referrals in P / customers active at the start of
  P, where active means new or active on the day before P (a paid order within
  ``active_days`` (90) days).

Per team, the new customers are the team's own; successful referrals, advocates and K
are credited to the referrer's team (the old customer who brought the new one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crm_batch.config import ThresholdSettings
from crm_batch.kpi.definitions import KpiDefinition
from crm_batch.kpi.keys import count_by_team, positions, ratio, take, team_codes
from crm_batch.kpi.repurchase import day_before, new_customer_mask
from crm_batch.periods import Period

#: Value tiers that count as "high value" for advocate candidates.
HIGH_VALUE_TIERS = ("diamond", "silver")

#: Columns of :func:`advocate_candidates`.
CANDIDATE_COLUMNS = (
    "customer_id",
    "name",
    "team",
    "owner",
    "referrals_successful",
    "orders_12m",
    "revenue_12m",
    "value_tier",
)

KPIS = (
    KpiDefinition(
        "referral_share_new",
        "转介绍新客占比",
        "Referred share of new customers",
        "ratio",
        "up",
        "Share of the period's new customers who were referred by an existing customer.",
        "本期新客户中由老客户推荐而来的比例。",
    ),
    KpiDefinition(
        "successful_referrals",
        "成功转介绍数",
        "Successful referrals",
        "count",
        "up",
        "Referred customers whose first paid order is in the period.",
        "被推荐客户中首笔已付款订单落在本期的人数。",
        0,
    ),
    KpiDefinition(
        "advocates",
        "推荐达人数",
        "Advocates",
        "count",
        "up",
        "Customers with 2+ referred customers who bought, up to the end of the period.",
        "截至期末成功推荐≥2位成交客户的老客户数。",
        0,
    ),
    KpiDefinition(
        "advocate_candidates",
        "推荐大使候选数",
        "Advocate candidates",
        "count",
        "up",
        "Advocates who are also repeat buyers in 12 months and diamond or silver tier.",
        "成功推荐≥2人、近12个月复购且为金钻/白银等级的客户数。",
        0,
    ),
    KpiDefinition(
        "viral_coefficient",
        "病毒系数K",
        "Viral coefficient K",
        "score",
        "up",
        "Successful referrals in the period / customers active (order <= 90 days) at its start.",
        "本期成功转介绍数 / 期初活跃客户数(90天内有购买)。",
        3,
    ),
)


def referral_people(customers: pd.DataFrame) -> pd.DataFrame:
    """The register with what referral KPIs need, aligned once per period.

    ``customers`` is the register with each customer's ``first_order_date``
    (:func:`crm_batch.kpi.keys.attach`). Returns customer_id, team, referred_by,
    first_order_date, is_referred (a real referrer, not the customer itself) and
    referrer_team.
    """
    columns = ["customer_id", "team", "referred_by", "first_order_date"]
    people = customers[columns].reset_index(drop=True)
    referrer = people["referred_by"]
    is_referred = (referrer.notna() & (referrer != people["customer_id"])).fillna(False)
    people["is_referred"] = is_referred.astype(bool)
    # the referrer's row in the register (its ids are already indexed for lookups)
    referrer_row = positions(referrer, people["customer_id"])
    referrer_team = take(people["team"], referrer_row, people.index)
    people["referrer_team"] = referrer_team.where(people["is_referred"])
    return people


def _in_team(values: pd.Series, team: str) -> pd.Series:
    return (values == team).fillna(False).astype(bool)


def _active_at_start(
    period_orders: pd.DataFrame, period: Period, thresholds: ThresholdSettings
) -> pd.Series:
    """Customers of ``period_orders`` active on the day before ``period`` (K's base)."""
    before = period_orders["last_order_before_date"]
    return before.notna() & (
        day_before(period) - before <= pd.Timedelta(days=thresholds.active_days)
    )


def _flow_values(
    new_in_scope: float, referred_new: float, successful: float, active: float
) -> dict[str, float]:
    return {
        "referral_share_new": ratio(referred_new, new_in_scope),
        "successful_referrals": float(successful),
        "viral_coefficient": ratio(successful, active),
    }


def referral_flow(
    people: pd.DataFrame,
    period_orders: pd.DataFrame,
    period: Period,
    thresholds: ThresholdSettings,
    team: str | None = None,
) -> dict[str, float]:
    """referral_share_new, successful_referrals and viral_coefficient for ``period``.

    ``people`` is :func:`referral_people`; ``period_orders`` are the rows of the scope
    (for a team, only its customers': the caller filters them).
    """
    new = new_customer_mask(people, period).to_numpy(dtype=bool)
    referred = people["is_referred"].to_numpy(dtype=bool)
    scope = np.ones(len(people), dtype=bool)
    credited = np.ones(len(people), dtype=bool)
    if team is not None:
        scope = _in_team(people["team"], team).to_numpy()
        credited = _in_team(people["referrer_team"], team).to_numpy()
    new_in_scope = new & scope
    return _flow_values(
        new_in_scope.sum(),
        (new_in_scope & referred).sum(),
        int((new & referred & credited).sum()),
        _active_at_start(period_orders, period, thresholds).sum(),
    )


def referral_flows(
    people: pd.DataFrame,
    period_orders: pd.DataFrame,
    period: Period,
    thresholds: ThresholdSettings,
    teams: Sequence[str],
) -> dict[str, dict[str, float]]:
    """:func:`referral_flow` of each of ``teams`` in one pass: every count is one
    ``np.bincount`` over team codes. ``period_orders`` are everyone's, with ``team``."""
    index = pd.Index(list(teams))
    new = new_customer_mask(people, period).to_numpy(dtype=bool)
    referred = people["is_referred"].to_numpy(dtype=bool)
    active = _active_at_start(period_orders, period, thresholds).to_numpy(dtype=bool)

    def count(team_values: pd.Series, chosen: np.ndarray) -> np.ndarray:
        return count_by_team(team_codes(team_values, index), chosen, len(index))

    new_in_team = count(people["team"], new)
    referred_new = count(people["team"], new & referred)
    successful = count(people["referrer_team"], new & referred)
    active_in_team = count(period_orders["team"], active)
    return {
        team: _flow_values(new_in_team[i], referred_new[i], int(successful[i]), active_in_team[i])
        for i, team in enumerate(index)
    }


def advocate_mask(table: pd.DataFrame, thresholds: ThresholdSettings) -> pd.Series:
    """True for customers with at least ``advocate_min_referrals`` successful referrals."""
    return table["referrals_successful"].fillna(0) >= thresholds.advocate_min_referrals


def advocate_candidates(table: pd.DataFrame, thresholds: ThresholdSettings) -> pd.DataFrame:
    """Advocates who are repeat buyers in 12 months and diamond/silver, best first.

    ``table`` is the segmented customer table at the end of the period. Sorted by
    successful referrals, then 12-month revenue (both descending), then customer_id.
    """
    wanted = (
        advocate_mask(table, thresholds)
        & (table["orders_12m"].fillna(0) >= 2)
        & table["value_tier"].isin(HIGH_VALUE_TIERS)
    )
    columns = [c for c in CANDIDATE_COLUMNS if c in table.columns]
    return (
        table.loc[wanted, columns]  # only the columns shown (and sorted by)
        .sort_values(
            ["referrals_successful", "revenue_12m", "customer_id"],
            ascending=[False, False, True],
        )
        .reset_index(drop=True)
    )


def referral_kpis(
    people: pd.DataFrame,
    period_orders: pd.DataFrame,
    end_table: pd.DataFrame,
    period: Period,
    thresholds: ThresholdSettings,
    team: str | None = None,
) -> dict[str, float]:
    """Every KPI of :data:`KPIS`; ``period_orders`` and ``end_table`` (the segmented table
    at the period's end) are the scope's rows, ``people`` is everyone's."""
    return {
        **referral_flow(people, period_orders, period, thresholds, team),
        **advocate_kpis(end_table, thresholds),
    }


def advocate_kpis(
    end_table: pd.DataFrame,
    thresholds: ThresholdSettings,
    candidates: pd.DataFrame | None = None,
) -> dict[str, float]:
    """advocates and advocate_candidates of the scope's end table; ``candidates`` is its
    :func:`advocate_candidates` table when the caller has it already."""
    if candidates is None:
        candidates = advocate_candidates(end_table, thresholds)
    return {
        "advocates": float(advocate_mask(end_table, thresholds).sum()),
        "advocate_candidates": float(len(candidates)),
    }
