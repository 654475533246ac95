"""The quarterly review's account lists: who slipped, who came back, the big customers.

Pure selections from a :class:`~crm_batch.app.quarter.QuarterData` for one
scope (None = the company), returning frames of the end-of-quarter customer table with
the columns the review adds. They follow the KPI engine's definitions, so their counts
equal the KPIs (tier downgrades, won-back customers). The company table can hold a
million customers: comparisons run on narrow copies and only the chosen rows are copied.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from crm_batch.app.quarter import QuarterData, Scope
from crm_batch.kpi.migration import NONE_LABEL, TIER_ORDER

#: Size of the big-customer list (top accounts by 12-month revenue).
TOP_BIG = 20


def quarter_revenue(data: QuarterData, scope: Scope) -> float:
    """Net revenue dated in the quarter (paid minus refunded) of ``scope``."""
    orders = data.prepared.views.of(data.prepared.period_orders, scope)
    return float(orders["revenue_in_period"].fillna(0).sum())


def _tier_codes(values: pd.Series) -> np.ndarray:
    """Position of each tier in :data:`TIER_ORDER` (best first); no tier is ``none``."""
    codes = pd.Categorical(values.astype("object"), categories=list(TIER_ORDER)).codes
    return np.where(codes < 0, TIER_ORDER.index(NONE_LABEL), codes).astype("int64")


def slipped_accounts(data: QuarterData, scope: Scope) -> pd.DataFrame:
    """Customers whose tier is worse at the quarter's end than at its start, the
    biggest (12-month revenue at the start) first; ``tier_start``, ``tier_end`` and
    ``revenue_start`` added to the end-of-quarter columns.

    Tiers are compared on narrow copies (id, tier), so only the slipped customers'
    full rows are copied (the company table can hold a million customers).
    """
    start = data.prepared.views.of(data.prepared.start_table, scope)
    end = data.report(scope).customers
    before = start.loc[:, ["customer_id", "tier", "revenue_12m"]].rename(
        columns={"tier": "tier_start", "revenue_12m": "revenue_start"}
    )
    pairs = end.loc[:, ["customer_id", "tier"]].merge(before, on="customer_id", how="inner")
    worse = pairs[_tier_codes(pairs["tier"]) > _tier_codes(pairs["tier_start"])]
    rows = end[end["customer_id"].isin(worse["customer_id"])]
    slipped = rows.merge(worse.drop(columns="tier"), on="customer_id", how="inner").assign(
        tier_start=lambda f: f["tier_start"].astype("object"),
        tier_end=lambda f: f["tier"].astype("object"),
    )
    return slipped.sort_values(
        ["revenue_start", "customer_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def won_back_accounts(data: QuarterData, scope: Scope) -> pd.DataFrame:
    """Customers churned the day before the quarter who ordered in it (the win-back
    KPI's definition), the largest quarter revenue first, with their end-of-quarter row."""
    quarter = data.quarter
    orders = data.prepared.views.of(data.prepared.period_orders, scope)
    day_before = pd.Timestamp(quarter.start - timedelta(days=1))
    before = pd.to_datetime(orders["last_order_before_date"])
    limit = pd.Timedelta(days=data.prepared.thresholds.dormant_days)
    won = orders[
        (before.notna() & (day_before - before > limit)).to_numpy()
        & (orders["orders_in_period"].fillna(0) >= 1).to_numpy()
    ]
    customers = data.report(scope).customers
    rows = customers[customers["customer_id"].isin(won["customer_id"])]
    merged = rows.merge(
        won.loc[
            :, ["customer_id", "last_order_before_date", "orders_in_period", "revenue_in_period"]
        ],
        on="customer_id",
        how="inner",
    )
    merged["days_away"] = (day_before - pd.to_datetime(merged["last_order_before_date"])).dt.days
    return merged.sort_values(
        ["revenue_in_period", "customer_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def _ranks(table: pd.DataFrame) -> pd.Series:
    """Rank (1 = most) of each buyer with 12-month revenue > 0, by customer id; ties
    broken by customer id. Sorted on a narrow copy (two columns)."""
    buyers = table.loc[table["revenue_12m"].fillna(0) > 0, ["customer_id", "revenue_12m"]]
    ranked = buyers.sort_values(
        ["revenue_12m", "customer_id"], ascending=[False, True], kind="stable"
    )
    return pd.Series(
        np.arange(1, len(ranked) + 1, dtype="float64"), index=ranked["customer_id"].to_numpy()
    )


def big_customers(data: QuarterData, scope: Scope) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The top :data:`TOP_BIG` accounts by 12-month revenue at the quarter's end (with
    their rank at its start, NaN: not ranked) and those that left the top list (their
    start rank and 12-month revenue, and where they rank now)."""
    start = data.prepared.views.of(data.prepared.start_table, scope)
    customers = data.report(scope).customers
    start_rank, end_rank = _ranks(start), _ranks(customers)
    top_ids = end_rank.index[:TOP_BIG]
    top = customers[customers["customer_id"].isin(top_ids)]
    top = top.assign(rank=top["customer_id"].map(end_rank)).sort_values("rank", kind="stable")
    orders = data.prepared.views.of(data.prepared.period_orders, scope)
    quarter = orders.loc[orders["customer_id"].isin(top_ids), ["customer_id", "revenue_in_period"]]
    revenue_q = quarter.set_index("customer_id")["revenue_in_period"]
    top = top.assign(
        previous_rank=top["customer_id"].map(start_rank).astype("float64"),
        revenue_q=top["customer_id"].map(revenue_q).astype("float64").fillna(0.0),
    )
    on_top = set(top_ids)
    left_ids = [i for i in start_rank.index[:TOP_BIG] if i not in on_top]
    left = start[start["customer_id"].isin(left_ids)].loc[:, ["customer_id", "revenue_12m"]]
    now = customers[customers["customer_id"].isin(left_ids)].set_index("customer_id")
    left = left.assign(
        rank=left["customer_id"].map(start_rank),
        name=left["customer_id"].map(now["name"]),
        owner=left["customer_id"].map(now["owner"]),
        team=left["customer_id"].map(now["team"]),
        rank_now=left["customer_id"].map(end_rank).astype("float64"),
        revenue_now=left["customer_id"].map(now["revenue_12m"]).astype("float64"),
    ).sort_values("rank", kind="stable")
    return top.reset_index(drop=True), left.reset_index(drop=True)
