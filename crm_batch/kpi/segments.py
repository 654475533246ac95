"""Segmentation as of T: RFM, tier A/B/C, value tier, lifecycle and the 8 value groups.

All columns are added to :func:`crm_batch.kpi.facts.customer_table`'s result by
:func:`segment_customers`. Definitions (thresholds are settings, defaults shown):

**RFM scores** (``r_score``, ``f_score``, ``m_score``, 1..5) are computed over the
customers with a paid order in the last 12 months (``orders_12m > 0``); everyone else has
no scores. R ranks recency (more recent = higher), F ``orders_12m``, M ``revenue_12m``
(net, may be negative). Score = 1 + floor(5 x *b* / *n*), where *n* is the number of
scored customers and *b* the number of them with a strictly worse value. Ties: **equal
values always get the same score** (every tied customer gets the score of the lowest
place among them), so the result never depends on row order or ids; with heavy ties
(many single-order customers) some scores stay unused. On untied data this equals
``pandas.qcut(values, 5)``'s quintiles when *n* is a multiple of 5.

**RFM segment** (``rfm_segment``) from R and FM = ceil((F + M) / 2):

=======  ==============  ==================  ==================  ===========  ===========
R \\ FM  1               2                   3                   4            5
=======  ==============  ==================  ==================  ===========  ===========
5        new             potential_loyalist  potential_loyalist  champions    champions
4        promising       potential_loyalist  potential_loyalist  loyal        loyal
3        about_to_sleep  about_to_sleep      need_attention      loyal        loyal
2        hibernating     hibernating         at_risk             at_risk      cannot_lose
1        lost            hibernating         at_risk             at_risk      cannot_lose
=======  ==============  ==================  ==================  ===========  ===========

A buyer without a paid order in the last 12 months is ``lost`` (no scores); a customer
without any paid order has no segment.

**Tier** (``tier``): ``A`` = revenue_12m >= 100,000 and a paid order in >= 3 of the 4
rolling quarters of the last 365 days; ``B`` = otherwise revenue_12m >= 20,000 or
orders_12m >= 4; ``C`` = every other buyer (lifetime), lapsed buyers included; no tier
for customers without a paid order.

**Value tier** (``value_tier``): buyers of the last 12 months (the RFM population, *n*
customers) are ranked by net 12-month revenue; ``diamond`` = the top ceil(20 % x *n*)
places, ``silver`` = the places down to ceil(50 % x *n*), counting places like RFM ties:
customers with equal revenue share the better tier (so a tie at a boundary can make the
tier slightly larger). Zero or negative net 12-month revenue is never diamond or silver.
``bronze`` = every other buyer (lifetime, including lapsed buyers and those at or below
zero); ``iron`` = registered customers and leads without a paid order.

**Lifecycle** (``lifecycle``), first match wins: ``prospect`` = no paid order; ``new`` =
first paid order <= 90 days before T (new takes precedence over active); ``active`` =
last paid order <= 90 days before T; ``dormant`` = 91..180 days; ``churned`` = > 180
days. The day counts are inclusive: an order exactly 90 days before T is active, 91 is
dormant (DESIGN.md's numbers; note the rolling ``orders_90d`` window (T-90, T] excludes
day T-90).

**Value group** (``value_group``) = ``high`` (diamond, silver) or ``low`` (bronze) x
``new|active|dormant|churned``, e.g. ``high_dormant``: the 8 groups of the seeds; none
for prospects. ``next_action_key`` is the group's playbook action
(:data:`crm_batch.kpi.playbook.GROUP_ACTIONS`), ``prospect_nurture`` for prospects.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from crm_batch.config import ThresholdSettings
from crm_batch.kpi.churn import warning_kpis
from crm_batch.kpi.definitions import Direction, KpiDefinition
from crm_batch.kpi.facts import fact_kpis
from crm_batch.kpi.playbook import GROUP_ACTIONS, PROSPECT_ACTION

SCORE_BINS = 5
RFM_SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose",
    "hibernating",
    "lost",
)
LIFECYCLES = ("new", "active", "dormant", "churned", "prospect")
VALUE_TIERS = ("diamond", "silver", "bronze", "iron")
TIERS = ("A", "B", "C")

#: RFM_GRID[r - 1][fm - 1] is the segment of scores (r, fm); see the module docstring.
RFM_GRID = (
    ("lost", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
)
_GRID_CODES = np.array([[RFM_SEGMENTS.index(name) for name in row] for row in RFM_GRID])
#: The 8 value x lifecycle groups of the seeds.
VALUE_GROUPS = tuple(
    f"{value}_{stage}"
    for value in ("high", "low")
    for stage in ("new", "active", "dormant", "churned")
)
#: rfm_code values: "111" .. "555" (R, F, M digits).
RFM_CODES = tuple(f"{r}{f}{m}" for r in range(1, 6) for f in range(1, 6) for m in range(1, 6))
#: next_action_key categories: the groups' actions in VALUE_GROUPS order, then prospects'.
_NEXT_ACTIONS = tuple(dict.fromkeys((*map(GROUP_ACTIONS.get, VALUE_GROUPS), PROSPECT_ACTION)))
#: _ACTION_CODES[group code] is the action's category code; the last entry is prospects'.
_ACTION_CODES = np.array(
    [_NEXT_ACTIONS.index(key) for key in (*map(GROUP_ACTIONS.get, VALUE_GROUPS), PROSPECT_ACTION)]
)

#: Columns :func:`segment_customers` adds, in order.
SEGMENT_COLUMNS = (
    "r_score",
    "f_score",
    "m_score",
    "rfm_code",
    "rfm_segment",
    "tier",
    "value_tier",
    "lifecycle",
    "value_group",
    "next_action_key",
)


def _count(
    name: str, zh: str, en: str, what_en: str, what_zh: str, good: Direction
) -> KpiDefinition:
    return KpiDefinition(name, zh, en, "count", good, what_en, what_zh, 0)


def _share(
    name: str, zh: str, en: str, what_en: str, what_zh: str, good: Direction
) -> KpiDefinition:
    return KpiDefinition(name, zh, en, "ratio", good, what_en, what_zh, 1)


KPIS = (
    _count(
        "tier_a_count",
        "A类客户数",
        "Tier A customers",
        "Buyers with at least 100,000 of net revenue in the last 12 months, active in at least "
        "3 of the last 4 quarters.",
        "近12个月消费≥10万元且近4个季度中≥3个季度有消费的客户数。",
        "up",
    ),
    _share(
        "tier_a_share",
        "A类客户占比",
        "Tier A share",
        "Tier A customers / buyers (lifetime).",
        "A类客户数/成交客户数。",
        "up",
    ),
    _count(
        "tier_b_count",
        "B类客户数",
        "Tier B customers",
        "Other buyers with at least 20,000 of net revenue or at least 4 orders in the last 12 "
        "months.",
        "其余近12个月消费≥2万元或订单≥4笔的客户数。",
        "up",
    ),
    _count(
        "tier_c_count",
        "C类客户数",
        "Tier C customers",
        "All other buyers (lifetime).",
        "其余成交客户数。",
        "neutral",
    ),
    _count(
        "diamond_count",
        "金钻客户数",
        "Diamond customers",
        "Top 20 % of last-12-month buyers by net 12-month revenue.",
        "近12个月购买客户中净销售额前20%的客户数。",
        "up",
    ),
    _count(
        "silver_count",
        "白银客户数",
        "Silver customers",
        "The next 30 % of last-12-month buyers by net 12-month revenue.",
        "近12个月购买客户中净销售额其后30%的客户数。",
        "up",
    ),
    _count(
        "bronze_count",
        "铜客户数",
        "Bronze customers",
        "All other buyers (lifetime).",
        "其余成交客户数。",
        "neutral",
    ),
    _count(
        "iron_count",
        "铁客户数",
        "Iron customers",
        "Registered customers without a paid order.",
        "尚未成交的注册客户数。",
        "neutral",
    ),
    _share(
        "high_value_revenue_share_12m",
        "高价值客户销售额占比",
        "High-value share of revenue, 12 months",
        "Net 12-month revenue of diamond and silver customers / all net 12-month revenue.",
        "金钻和白银客户近12个月净销售额/全部近12个月净销售额。",
        "up",
    ),
    _count(
        "new_count",
        "新客户数(近90天首单)",
        "New customers (first order in 90 days)",
        "Buyers whose first paid order is at most 90 days old.",
        "首单距今不超过90天的客户数。",
        "up",
    ),
    _share(
        "new_share",
        "新客户占比",
        "New share",
        "New customers / buyers (lifetime).",
        "新客户数/成交客户数。",
        "up",
    ),
    _count(
        "active_count",
        "活跃客户数",
        "Active customers",
        "Buyers (not new) whose last paid order is at most 90 days old.",
        "最近一次购买距今不超过90天的老客户数。",
        "up",
    ),
    _share(
        "active_share",
        "活跃客户占比",
        "Active share",
        "Active customers / buyers (lifetime).",
        "活跃客户数/成交客户数。",
        "up",
    ),
    _count(
        "dormant_count",
        "沉睡客户数",
        "Dormant customers",
        "Buyers whose last paid order is 91 to 180 days old.",
        "最近一次购买距今91至180天的客户数。",
        "down",
    ),
    _share(
        "dormant_share",
        "沉睡客户占比",
        "Dormant share",
        "Dormant customers / buyers (lifetime).",
        "沉睡客户数/成交客户数。",
        "down",
    ),
    _count(
        "churned_count",
        "流失客户数",
        "Churned customers",
        "Buyers whose last paid order is more than 180 days old.",
        "最近一次购买距今超过180天的客户数。",
        "down",
    ),
    _share(
        "churned_share",
        "流失客户占比",
        "Churned share",
        "Churned customers / buyers (lifetime).",
        "流失客户数/成交客户数。",
        "down",
    ),
)


def quintile_scores(values: pd.Series, bins: int = SCORE_BINS) -> pd.Series:
    """Scores 1..``bins``: 1 + floor(bins x (values strictly below) / n); ties share a score.

    ``values`` must not hold missing values. Higher values get higher scores.
    """
    scores = _scores(values.to_numpy(dtype="float64"), bins)
    return pd.Series(scores, index=values.index, dtype="Int64")


def rfm_segments(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Segment names for score arrays (1..5 each) by :data:`RFM_GRID`, FM = ceil((F+M)/2)."""
    return np.asarray(RFM_SEGMENTS, dtype=object)[_segment_codes(r, f, m)]


def lifecycle_stage(
    recency_days: pd.Series, tenure_days: pd.Series, thresholds: ThresholdSettings
) -> pd.Series:
    """Lifecycle (categorical) from days since the last and first paid order (NA: none)."""
    recency = recency_days.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    tenure = tenure_days.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    codes = np.select(
        [
            np.isnan(recency),
            tenure <= thresholds.new_customer_days,
            recency <= thresholds.active_days,
            recency <= thresholds.dormant_days,
        ],
        [LIFECYCLES.index(name) for name in ("prospect", "new", "active", "dormant")],
        LIFECYCLES.index("churned"),
    )
    return pd.Series(_categorical(codes, LIFECYCLES), index=recency_days.index)


def segment_customers(table: pd.DataFrame, thresholds: ThresholdSettings) -> pd.DataFrame:
    """``table`` with the columns of :data:`SEGMENT_COLUMNS` added (a new frame).

    Scores are nullable integers; the category columns are pandas categoricals whose
    categories are the names above (in that order), missing where not defined.
    """
    scored = (table["orders_12m"] > 0).to_numpy()
    buyer = table["has_paid_order"].to_numpy(dtype=bool)
    recency = table["recency_days"].astype("Float64").to_numpy("float64", na_value=np.nan)
    revenue_12m = table["revenue_12m"].to_numpy(dtype="float64")
    orders_12m = table["orders_12m"].to_numpy(dtype="int64")

    r, f, m = (np.zeros(len(table), dtype="int64") for _ in range(3))
    r[scored] = _scores(-recency[scored])
    f[scored] = _scores(orders_12m[scored].astype("float64"))
    m[scored] = _scores(revenue_12m[scored])
    segment = np.where(scored, _segment_codes(r, f, m), -1)
    segment[buyer & ~scored] = RFM_SEGMENTS.index("lost")
    rfm_code = np.where(scored, (r - 1) * 25 + (f - 1) * 5 + (m - 1), -1)

    tier_a = (revenue_12m >= thresholds.tier_a_revenue_12m) & (
        table["quarters_active_4q"].to_numpy(dtype="int64") >= thresholds.tier_a_active_quarters
    )
    tier_b = (revenue_12m >= thresholds.tier_b_revenue_12m) | (
        orders_12m >= thresholds.tier_b_orders_12m
    )
    tier = np.select([~buyer, tier_a, tier_b], [-1, 0, 1], 2)

    value_tier = _value_tiers(revenue_12m, scored, buyer, thresholds)
    lifecycle = lifecycle_stage(table["recency_days"], table["tenure_days"], thresholds)
    stage = lifecycle.cat.codes.to_numpy()
    high = value_tier <= VALUE_TIERS.index("silver")
    # VALUE_GROUPS is high x (new, active, dormant, churned), then low x the same
    group = np.where(buyer, np.where(high, 0, 4) + stage, -1)
    action = _ACTION_CODES[np.where(buyer, group, len(VALUE_GROUPS))]

    added = {
        "r_score": _nullable(r, scored),
        "f_score": _nullable(f, scored),
        "m_score": _nullable(m, scored),
        "rfm_code": _categorical(rfm_code, RFM_CODES),
        "rfm_segment": _categorical(segment, RFM_SEGMENTS),
        "tier": _categorical(tier, TIERS),
        "value_tier": _categorical(value_tier, VALUE_TIERS),
        "lifecycle": lifecycle.array,
        "value_group": _categorical(group, VALUE_GROUPS),
        "next_action_key": _categorical(action, _NEXT_ACTIONS),
    }
    data = {name: table[name] for name in table.columns} | {
        name: pd.Series(values, index=table.index) for name, values in added.items()
    }
    return pd.DataFrame(data, index=table.index, copy=False)


def segment_kpis(table: pd.DataFrame) -> dict[str, float]:
    """The KPIs of :data:`KPIS` over a segmented table (filter it for a team)."""
    buyers = float(table["has_paid_order"].sum())

    def share(count: float) -> float:
        return count / buyers if buyers > 0 else float("nan")

    tiers = table["tier"].value_counts()
    value_tiers = table["value_tier"].value_counts()
    stages = table["lifecycle"].value_counts()
    revenue = table["revenue_12m"]
    total_revenue = float(revenue.sum())
    high_revenue = float(revenue[table["value_tier"].isin(["diamond", "silver"])].sum())
    values: dict[str, float] = {}
    for name in ("a", "b", "c"):
        values[f"tier_{name}_count"] = float(tiers.get(name.upper(), 0))
    values["tier_a_share"] = share(values["tier_a_count"])
    for name in VALUE_TIERS:
        values[f"{name}_count"] = float(value_tiers.get(name, 0))
    values["high_value_revenue_share_12m"] = (
        high_revenue / total_revenue if total_revenue > 0 else float("nan")
    )
    for name in ("new", "active", "dormant", "churned"):
        values[f"{name}_count"] = float(stages.get(name, 0))
        values[f"{name}_share"] = share(values[f"{name}_count"])
    return {kpi.name: values[kpi.name] for kpi in KPIS}


def as_of_kpis(table: pd.DataFrame, warnings: pd.DataFrame) -> dict[str, float]:
    """Every as-of KPI (facts, segments, churn) over a segmented table and its warnings.

    Pass the whole table for the overall scope; for a team, pass the team's rows of both
    (``table[table.team == t]``, ``warnings[warnings.team == t]``): tiers and scores stay
    company-wide ranks, a team's count is how many of its customers hold them. Rates whose
    denominator is zero are NaN.
    """
    return {**fact_kpis(table), **segment_kpis(table), **warning_kpis(warnings)}


def _scores(values: np.ndarray, bins: int = SCORE_BINS) -> np.ndarray:
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype="int64")
    return 1 + (bins * _count_below(values)) // n


def _count_below(values: np.ndarray) -> np.ndarray:
    """For each value, how many values are strictly smaller (``rank(method="min") - 1``).

    Whole numbers in a narrow range (order counts, days) are counted with a histogram,
    anything else with one stable sort; both give pandas' answer for ties and are several
    times faster on a million values. ``values`` must not hold NaN.
    """
    values = np.asarray(values, dtype="float64")
    if np.isnan(values).any():
        raise ValueError("cannot rank NaN values")
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype="int64")
    low, high = values.min(), values.max()
    if high - low <= 4 * n and np.array_equal(values, np.floor(values)):
        offsets = (values - low).astype("int64")
        smaller = np.cumsum(np.bincount(offsets)) - np.bincount(offsets)
        return smaller[offsets]
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    # in sorted order, each value's count below is the position where its run starts
    run_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    below = np.empty(n, dtype="int64")
    below[order] = run_start
    return below


def _segment_codes(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    fm = (np.asarray(f, dtype="int64") + np.asarray(m, dtype="int64") + 1) // 2
    rows = np.clip(np.asarray(r, dtype="int64"), 1, SCORE_BINS) - 1
    return _GRID_CODES[rows, np.clip(fm, 1, SCORE_BINS) - 1]


def _value_tiers(
    revenue_12m: np.ndarray, scored: np.ndarray, buyer: np.ndarray, thresholds: ThresholdSettings
) -> np.ndarray:
    """Codes into :data:`VALUE_TIERS` (see the module docstring for the rule)."""
    n = int(scored.sum())
    above = np.full(len(revenue_12m), np.inf)
    ranked = scored & ~np.isnan(revenue_12m)  # NaN revenue is never ranked (as pandas' rank)
    if ranked.any():
        # customers with strictly more revenue: rank(method="min", ascending=False) - 1
        above[ranked] = _count_below(-revenue_12m[ranked])
    positive = scored & (revenue_12m > 0)
    diamond = positive & (above < _places(thresholds.diamond_share, n))
    silver = positive & (above < _places(thresholds.diamond_share + thresholds.silver_share, n))
    return np.select([diamond, silver, buyer], [0, 1, 2], 3)


def _places(share: float, n: int) -> int:
    """ceil(share x n), without float noise (0.7 x 10 is 7.000000000000001)."""
    return math.ceil(round(min(share, 1.0) * n, 9))


def _categorical(codes: np.ndarray, categories: tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype="int64"), categories=categories)


def _nullable(values: np.ndarray, present: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(values.astype("int64"), ~present)
