"""Churn early warning (流失预警): who is about to leave, how urgent, and what is at stake.

A customer is warned as of T when at least one signal holds:

* **quiet** (``no_order_3m``): no paid order in the last ``churn_quiet_months`` (3) *full*
  calendar months completed by T, while having a paid order in the
  ``churn_lookback_months`` (12) calendar months before those. The month containing T
  counts as a full month only when T is its last day; otherwise the quiet months are the
  3 months before T's month, and a paid order in T's month (on or before T) cancels the
  signal: the customer has just bought. Examples: T = 2026-07-15 -> quiet months
  April-June 2026, lookback 2025-04-01..2026-03-31, and no paid order 2026-04-01..T;
  T = 2026-06-30 -> quiet months April-June 2026 as well.
* **complaint** (``complaint_open``): a complaint open at the end of T for longer than
  ``complaint_open_hours`` (24 h). Any registered customer can have this signal.

Level:

* ``high``: tier A, or both signals;
* ``medium``: otherwise, a high value tier (diamond or silver) or tier B;
* ``low``: everyone else (bronze tier C, prospects).

``revenue_at_risk`` is the yearly net revenue the warning puts at stake, floored at 0:
for a quiet customer the net revenue of the lookback months (they have bought nothing
since); for a complaint-only warning the net revenue of the last 365 days.

:func:`churn_warnings` sorts the list by revenue at risk (highest first), then level
(high first), then customer_id; once the value models have scored the customers,
:func:`rank_for_calls` puts it in calling order (expected 12-month revenue first).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crm_batch.config import ThresholdSettings
from crm_batch.kpi.definitions import TICKETS, KpiDefinition
from crm_batch.kpi.playbook import WARNING_ACTIONS

SIGNAL_QUIET = "no_order_3m"
SIGNAL_COMPLAINT = "complaint_open"
LEVELS = ("high", "medium", "low")

#: Columns of :func:`churn_warnings`' result, in order.
WARNING_COLUMNS = (
    "customer_id",
    "name",
    "team",
    "owner",
    "tier",
    "value_tier",
    "lifecycle",
    "signal_quiet",
    "signal_complaint",
    "signals",
    "level",
    "revenue_at_risk",
    "last_order_date",
    "recency_days",
    "revenue_lookback",
    "revenue_12m",
    "complaints_open_over_limit",
    "oldest_open_complaint_at",
    "complaint_hours_open",
    "warning_action_key",
)

KPIS = (
    KpiDefinition(
        "churn_warnings_count",
        "流失预警客户数",
        "Churn warnings",
        "count",
        "down",
        "Customers quiet for 3 full calendar months after buying in the 12 months before, "
        "or with a complaint open over 24 h.",
        "连续3个完整自然月无消费(此前12个月有消费)或投诉超过24小时未解决的客户数。",
        0,
        partial_without=TICKETS,
    ),
    KpiDefinition(
        "churn_warnings_high",
        "高风险流失预警数",
        "High-level churn warnings",
        "count",
        "down",
        "Churn warnings of level high: tier A customers or both signals.",
        "高风险预警数:A类客户或两个信号同时出现。",
        0,
        partial_without=TICKETS,
    ),
    KpiDefinition(
        "revenue_at_risk",
        "风险销售额",
        "Revenue at risk",
        "money",
        "down",
        "Sum over churn warnings of the yearly net revenue at stake (lookback months for "
        "quiet customers, last 365 days for complaint-only warnings).",
        "预警客户的年度净销售额合计(沉默客户取回看期,仅投诉客户取近365天)。",
        0,
        partial_without=TICKETS,
    ),
)


_SIGNALS = (f"{SIGNAL_QUIET},{SIGNAL_COMPLAINT}", SIGNAL_QUIET, SIGNAL_COMPLAINT)
_ACTION_KEYS = tuple(dict.fromkeys(WARNING_ACTIONS[k] for k in ("complaint", *LEVELS)))
_LEVEL_ACTION = np.array([_ACTION_KEYS.index(WARNING_ACTIONS[level]) for level in LEVELS])


def churn_warnings(table: pd.DataFrame, as_of: date, thresholds: ThresholdSettings) -> pd.DataFrame:
    """The churn watchlist as of ``as_of``: one row per warned customer.

    ``table`` is :func:`crm_batch.kpi.segments.segment_customers`' result (it needs the
    tier and value tier for the level). The windows were applied in SQL by
    :func:`crm_batch.source.extract.extract_as_of` with the same ``thresholds``, so the
    signals read the table's counts; ``as_of`` dates ``complaint_hours_open``, the age of
    the oldest open complaint at the end of T. ``signals``, ``level`` and
    ``warning_action_key`` are categoricals (``level`` in the order high, medium, low).
    """
    missing = {"tier", "value_tier"} - set(table.columns)
    if missing:
        raise ValueError(
            "churn_warnings needs the segmented table (segment_customers); missing "
            + ", ".join(sorted(missing))
        )
    quiet = (
        (table["orders_lookback"] > 0)
        & (table["orders_quiet"] == 0)
        & (table["orders_current_month"] == 0)
    ).to_numpy()
    complaint = (table["complaints_open_over_limit"] > 0).to_numpy()
    warned = quiet | complaint
    rows = table.loc[warned].reset_index(drop=True)
    quiet, complaint = quiet[warned], complaint[warned]

    tier_a = rows["tier"].isin(["A"]).to_numpy(dtype=bool)
    tier_b = rows["tier"].isin(["B"]).to_numpy(dtype=bool)
    high_value = rows["value_tier"].isin(["diamond", "silver"]).to_numpy(dtype=bool)
    high = tier_a | (quiet & complaint)
    medium = ~high & (high_value | tier_b)
    level = np.select([high, medium], [0, 1], 2)  # codes into LEVELS

    at_risk = np.where(
        quiet,
        rows["revenue_lookback"].to_numpy(dtype="float64"),
        rows["revenue_12m"].to_numpy(dtype="float64"),
    )
    signals = np.select([quiet & complaint, quiet], [0, 1], 2)  # codes into _SIGNALS
    action = np.where(
        complaint, _ACTION_KEYS.index(WARNING_ACTIONS["complaint"]), _LEVEL_ACTION[level]
    )
    end_of_day = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    computed = pd.DataFrame(
        {
            "signal_quiet": quiet,
            "signal_complaint": complaint,
            "signals": pd.Categorical.from_codes(signals, categories=_SIGNALS),
            "level": pd.Categorical.from_codes(level, categories=LEVELS),
            "revenue_at_risk": np.maximum(at_risk, 0.0),
            "complaint_hours_open": (end_of_day - rows["oldest_open_complaint_at"])
            / pd.Timedelta(hours=1),
            "warning_action_key": pd.Categorical.from_codes(action, categories=_ACTION_KEYS),
        },
        index=rows.index,
    )
    result = pd.concat([rows, computed], axis=1)[list(WARNING_COLUMNS)]
    # the level categories are ordered high, medium, low: ascending puts high first
    result = result.sort_values(
        ["revenue_at_risk", "level", "customer_id"], ascending=[False, True, True], kind="stable"
    )
    return result.reset_index(drop=True)


def rank_for_calls(warnings: pd.DataFrame) -> pd.DataFrame:
    """The watchlist in calling order: what a call can still save first.

    That is the customer's expected revenue of the next 12 months
    (``expected_revenue_12m``, the value models of :mod:`crm_batch.kpi.predict`): a big
    past spender who is most likely gone already ranks below a smaller one who is still
    buying elsewhere in the year. Ties, customers without a prediction (no repeat
    purchase yet) and lists without the column (a model could not be fitted) fall back
    to past revenue at risk, then the level (high first), then the id.
    """
    if "expected_revenue_12m" not in warnings.columns:
        return warnings
    expected = warnings["expected_revenue_12m"].astype("float64").fillna(-1.0)
    order = pd.DataFrame(
        {
            "expected": expected.to_numpy(),
            "at_risk": warnings["revenue_at_risk"].astype("float64").to_numpy(),
            "level": warnings["level"].cat.codes.to_numpy(),  # high, medium, low
            "customer_id": warnings["customer_id"].to_numpy(),
        }
    ).sort_values(
        ["expected", "at_risk", "level", "customer_id"],
        ascending=[False, False, True, True],
        kind="stable",
    )
    return warnings.iloc[order.index.to_numpy()].reset_index(drop=True)


def warning_kpis(warnings: pd.DataFrame) -> dict[str, float]:
    """The KPIs of :data:`KPIS` over a warning list (filter it for a team)."""
    return {
        "churn_warnings_count": float(len(warnings)),
        "churn_warnings_high": float((warnings["level"] == "high").sum()),
        "revenue_at_risk": float(warnings["revenue_at_risk"].sum()),
    }
