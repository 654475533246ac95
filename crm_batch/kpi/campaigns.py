"""Campaign funnel: touches, opens, clicks, 7-day conversions, revenue, cost, ROI, opt-outs.

Inputs (:mod:`crm_batch.source.extract_period`): ``touches`` (campaign_touches.sql, sent
from the period's start to the end of the attribution window), ``orders``
(campaign_orders.sql, paid orders of the touched customers) and ``campaigns``
(period_campaigns.sql, with ``touches_total`` up to T and ``touches_in_period``).

Definitions (DESIGN.md "Campaigns", details chosen here):

* the funnel of P is made of the **touches sent in P** (whatever the campaign's start);
  ``open_rate`` = opened / touches, ``click_rate`` = clicked / touches (not
  click-to-open: SMS and calls have no open tracking), ``opt_out_rate`` = opted-out
  touches / touches (the seeds: at most 3 %);
* **7-day conversion**: a paid order converts a touch when it is dated from the touch's
  send day to ``campaign_attribution_days`` (7) days after it, both inclusive (orders
  carry a date, not a time, so a same-day order counts). Each order is attributed to one
  touch only, the customer's **last touch** sent on or before the order's day (latest
  ``sent_at``, then highest ``touch_id`` as text), so revenue is never counted twice; a touch
  converts when at least one order is attributed to it. Touches sent after P still take
  the orders that follow them, so a P touch never claims an order a later touch earned;
* **revenue** = the paid amounts of the attributed orders (refund rows are not linked to
  orders in the data model and are not deducted);
* **cost**: a campaign's cost is spread evenly over its touches sent up to T, so a
  period, a customer segment or a team carries cost = cost x its touches / all the
  campaign's touches. A campaign started in P without any touch books its whole cost to
  P; that cost appears in the overall figures and per campaign and channel, but cannot
  be split by segment or team;
* **ROI** = (revenue - cost) / cost, NaN when the cost is zero (a free campaign has no
  return ratio; revenue and conversions are still shown).

The segment of a touch is the customer's value tier at the start of P (before the
campaign could move it); customers unknown then count as ``iron``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from crm_batch.kpi.definitions import CAMPAIGNS_AND_TOUCHES, TOUCHES, KpiDefinition
from crm_batch.kpi.keys import lookup, ratio
from crm_batch.kpi.uplift import window_outcomes
from crm_batch.periods import Period

#: Campaign attributes: grouping only by these can include the cost of untouched campaigns.
CAMPAIGN_COLUMNS = ("campaign_id", "campaign_name", "channel", "started_at")
#: Columns of :func:`funnel` after the grouping columns.
FUNNEL_COLUMNS = (
    "touches",
    "opened",
    "clicked",
    "conversions",
    "opted_out",
    "revenue",
    "cost",
    "open_rate",
    "click_rate",
    "conversion_rate",
    "opt_out_rate",
    "roi",
)

KPIS = (
    KpiDefinition(
        "campaign_touches",
        "营销触达数",
        "Campaign touches",
        "count",
        "neutral",
        "Campaign messages, calls and invitations sent in the period.",
        "期内发出的营销触达(短信、邮件、微信、电话、活动邀请)数。",
        0,
        needs=TOUCHES,
    ),
    KpiDefinition(
        "campaign_open_rate",
        "触达打开率",
        "Open rate",
        "ratio",
        "up",
        "Opened touches / touches sent in the period.",
        "被打开的触达数 / 期内触达数。",
        needs=TOUCHES,
    ),
    KpiDefinition(
        "campaign_click_rate",
        "触达点击率",
        "Click rate",
        "ratio",
        "up",
        "Clicked touches / touches sent in the period.",
        "被点击的触达数 / 期内触达数。",
        needs=TOUCHES,
    ),
    KpiDefinition(
        "campaign_conversion_rate",
        "7天转化率",
        "7-day conversion rate",
        "ratio",
        "up",
        "Touches followed by a paid order within 7 days (last touch) / touches.",
        "触达后7天内产生已付款订单(末次触达归因)的触达数 / 触达数。",
        needs=TOUCHES,
    ),
    KpiDefinition(
        "campaign_revenue",
        "营销归因销售额",
        "Campaign revenue",
        "money",
        "up",
        "Paid orders attributed to the period's touches (last touch within 7 days).",
        "归因于期内触达的已付款订单金额(7天内末次触达)。",
        0,
        needs=TOUCHES,
    ),
    KpiDefinition(
        "campaign_cost",
        "营销成本",
        "Campaign cost",
        "money",
        "down",
        "Campaign cost booked to the period, spread over each campaign's touches.",
        "按触达数分摊到本期的营销成本。",
        0,
        needs=CAMPAIGNS_AND_TOUCHES,
    ),
    KpiDefinition(
        "campaign_roi",
        "营销ROI",
        "Marketing ROI",
        "ratio",
        "up",
        "(Attributed revenue - cost) / cost of the period's campaigns.",
        "(营销归因销售额 - 营销成本) / 营销成本。",
        needs=CAMPAIGNS_AND_TOUCHES,
    ),
    KpiDefinition(
        "opt_out_rate",
        "退订率",
        "Opt-out rate",
        "ratio",
        "down",
        "Touches answered with a marketing opt-out / touches sent in the period.",
        "触达后退订营销的数量 / 期内触达数(目标≤3%)。",
        2,
        needs=TOUCHES,
    ),
)


def attribute_orders(
    touches: pd.DataFrame, orders: pd.DataFrame, attribution_days: int = 7
) -> pd.DataFrame:
    """Each order with the ``touch_id`` it is attributed to (last touch, see the module).

    Returns the orders that have a touch, with columns order_id, customer_id,
    order_date, amount, touch_id.
    """
    right = touches[["customer_id", "sent_at", "touch_id"]].sort_values(
        ["sent_at", "touch_id"], kind="stable"
    )
    left = orders[["order_id", "customer_id", "order_date", "amount"]].copy()
    left["_day_end"] = left["order_date"].dt.normalize() + pd.Timedelta(days=1)
    left = left.sort_values("_day_end", kind="stable")
    matched = pd.merge_asof(
        left,
        right,
        left_on="_day_end",
        right_on="sent_at",
        by="customer_id",
        direction="backward",
        allow_exact_matches=False,  # sent before midnight after the order's day
    )
    lag = matched["order_date"].dt.normalize() - matched["sent_at"].dt.normalize()
    keep = matched["touch_id"].notna() & (lag <= pd.Timedelta(days=attribution_days))
    return matched.loc[keep, ["order_id", "customer_id", "order_date", "amount", "touch_id"]]


def touch_table(
    touches: pd.DataFrame,
    orders: pd.DataFrame,
    campaigns: pd.DataFrame,
    period: Period,
    attribution_days: int = 7,
    segments: pd.Series | None = None,
    default_segment: str = "iron",
) -> pd.DataFrame:
    """The touches of ``period``, each with its conversions, revenue, cost and segment.

    Control touches (``is_control``: held out, not sent) are kept, with no conversion,
    revenue or cost of their own: they take no part in attribution and the funnel
    (:func:`sent_touches`), only in the incremental comparison, for which every row also
    gets ``window_orders`` and ``window_revenue`` (:func:`crm_batch.kpi.uplift.
    window_outcomes`). ``segments`` maps customer_id to a segment label (value tier at
    the period's start).
    """
    control = _control_flags(touches)
    attributed = attribute_orders(touches.loc[~control], orders, attribution_days)
    per_touch = attributed.groupby("touch_id", sort=False)["amount"].agg(["size", "sum"])
    end = pd.Timestamp(period.end + timedelta(days=1))
    in_period = (touches["sent_at"] >= pd.Timestamp(period.start)) & (touches["sent_at"] < end)
    table = touches.loc[in_period].reset_index(drop=True)
    for column in ("opened", "clicked", "opted_out"):
        table[column] = table[column].fillna(False).astype(bool)
    table["is_control"] = control[in_period.to_numpy()]
    conversions = lookup(table["touch_id"], per_touch["size"])
    table["conversions"] = conversions.fillna(0).astype("int64")
    table["converted"] = table["conversions"] > 0
    revenue = lookup(table["touch_id"], per_touch["sum"]).astype("float64")
    table["revenue"] = revenue.fillna(0.0)
    info = campaigns.set_index("campaign_id")
    table["campaign_name"] = lookup(table["campaign_id"], info["campaign_name"]).astype("string")
    table["channel"] = lookup(table["campaign_id"], info["channel"]).astype("string")
    table["started_at"] = lookup(table["campaign_id"], info["started_at"])
    total = lookup(table["campaign_id"], info["touches_total"]).astype("float64")
    cost = lookup(table["campaign_id"], info["cost"]).astype("float64")
    per_touch_cost = (cost / total.where(total > 0)).fillna(0.0)
    table["cost"] = np.where(table["is_control"], 0.0, per_touch_cost.to_numpy(dtype="float64"))
    outcomes = window_outcomes(table, orders, attribution_days)
    table["window_orders"] = outcomes["window_orders"].to_numpy()
    table["window_revenue"] = outcomes["window_revenue"].to_numpy()
    segment = pd.Series(pd.NA, index=table.index, dtype="string")
    if segments is not None:
        segment = lookup(table["customer_id"], segments).astype("string")
    table["segment"] = segment.fillna(default_segment)
    return table


def _control_flags(touches: pd.DataFrame) -> np.ndarray:
    """Which touches are control (held out); all sent when the column is missing."""
    if "is_control" not in touches.columns:
        return np.zeros(len(touches), dtype=bool)
    return touches["is_control"].fillna(False).astype(bool).to_numpy()


def sent_touches(touches: pd.DataFrame) -> pd.DataFrame:
    """The :func:`touch_table` rows that were really sent (control rows left out)."""
    if "is_control" not in touches.columns:
        return touches
    held = touches["is_control"].to_numpy(dtype=bool)
    return touches.loc[~held] if held.any() else touches  # a frame of sent rows as it is


def untouched_costs(campaigns: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Campaigns started in ``period`` without any touch up to T: their whole cost."""
    end = pd.Timestamp(period.end + timedelta(days=1))
    started = (campaigns["started_at"] >= pd.Timestamp(period.start)) & (
        campaigns["started_at"] < end
    )
    chosen = campaigns.loc[started & (campaigns["touches_total"].fillna(0) == 0)]
    columns = ["campaign_id", "campaign_name", "channel", "started_at", "cost"]
    return chosen[columns].astype({"cost": "float64"})


def funnel(
    touches: pd.DataFrame,
    by: Sequence[str],
    untouched: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The funnel of :func:`touch_table` rows grouped by ``by`` (e.g. ``["channel"]``).

    ``untouched`` (:func:`untouched_costs`) adds cost-only rows; it is used only when
    every grouping column is a campaign attribute (:data:`CAMPAIGN_COLUMNS`).
    """
    by = list(by)
    touches = sent_touches(touches)
    rows = touches.assign(touches=1)[
        [*by, "touches", "opened", "clicked", "converted", "opted_out", "revenue", "cost"]
    ]
    rows = rows.astype({"opened": "int64", "clicked": "int64", "converted": "int64"})
    rows = rows.astype({"opted_out": "int64"})
    if untouched is not None and len(untouched) and set(by) <= set(CAMPAIGN_COLUMNS):
        extra = untouched[[*by, "cost"]].assign(
            touches=0, opened=0, clicked=0, converted=0, opted_out=0, revenue=0.0
        )
        rows = pd.concat([rows, extra[rows.columns]], ignore_index=True)
    sums = rows.groupby(by, dropna=False, sort=True).sum().reset_index()
    sums = sums.rename(columns={"converted": "conversions"})
    touches_n = sums["touches"].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        sums["open_rate"] = np.where(touches_n > 0, sums["opened"] / touches_n, np.nan)
        sums["click_rate"] = np.where(touches_n > 0, sums["clicked"] / touches_n, np.nan)
        sums["conversion_rate"] = np.where(touches_n > 0, sums["conversions"] / touches_n, np.nan)
        sums["opt_out_rate"] = np.where(touches_n > 0, sums["opted_out"] / touches_n, np.nan)
        sums["roi"] = np.where(
            sums["cost"] > 0, (sums["revenue"] - sums["cost"]) / sums["cost"], np.nan
        )
    return sums[[*by, *FUNNEL_COLUMNS]]


def campaign_kpis(touches: pd.DataFrame, untouched: pd.DataFrame | None = None) -> dict[str, float]:
    """Every KPI of :data:`KPIS` over :func:`touch_table` rows (plus untouched costs);
    control touches are not sent and do not count."""
    touches = sent_touches(touches)
    n = len(touches)
    revenue = float(touches["revenue"].sum())
    cost = float(touches["cost"].sum())
    if untouched is not None:
        cost += float(untouched["cost"].sum())
    return {
        "campaign_touches": float(n),
        "campaign_open_rate": ratio(touches["opened"].sum(), n),
        "campaign_click_rate": ratio(touches["clicked"].sum(), n),
        "campaign_conversion_rate": ratio(touches["converted"].sum(), n),
        "campaign_revenue": revenue,
        "campaign_cost": cost,
        "campaign_roi": (revenue - cost) / cost if cost > 0 else float("nan"),
        "opt_out_rate": ratio(touches["opted_out"].sum(), n),
    }
