"""Campaign funnel: last-touch 7-day attribution, cost by touch share, ROI, opt-outs.

One small scenario in 2026Q2 (2026-04-01 .. 2026-06-30), every number worked out by
hand in the comments, and a brute-force attribution (a plain Python loop over every
order and touch) against :func:`crm_batch.kpi.campaigns.attribute_orders` on random data.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from crm_batch.kpi import campaigns
from crm_batch.periods import parse_period

Q2 = parse_period("2026Q2")


def touches_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(touch_id, campaign_id, customer_id, sent_at, opened, clicked, opted_out)."""
    columns = ["touch_id", "campaign_id", "customer_id", "sent_at", "opened", "clicked"]
    frame = pd.DataFrame(rows, columns=[*columns, "opted_out"])
    for column in ("touch_id", "campaign_id", "customer_id"):
        frame[column] = frame[column].astype("string")
    frame["sent_at"] = pd.to_datetime(frame["sent_at"]).astype("datetime64[ns]")
    for column in ("opened", "clicked", "opted_out"):
        frame[column] = frame[column].astype("boolean")
    return frame


def orders_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(order_id, customer_id, order_date, amount)."""
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "order_date", "amount"])
    frame["order_id"] = frame["order_id"].astype("string")
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["order_date"] = pd.to_datetime(frame["order_date"]).astype("datetime64[ns]")
    frame["amount"] = frame["amount"].astype("float64")
    return frame


CAMPAIGNS = pd.DataFrame(
    {
        "campaign_id": pd.array(["A", "B", "C", "D"], dtype="string"),
        "campaign_name": pd.array(["Spring SMS", "Free mail", "Launch event", "618"], "string"),
        "channel": pd.array(["sms", "email", "event", "wechat"], dtype="string"),
        "cost": [400.0, 0.0, 1000.0, 500.0],
        "started_at": pd.to_datetime(
            ["2026-04-01", "2026-03-01", "2026-05-20", "2026-03-15"]
        ).astype("datetime64[ns]"),
        "touches_total": pd.array([4, 3, 0, 5], dtype="Int64"),  # up to T, all periods
        "touches_in_period": pd.array([4, 1, 0, 3], dtype="Int64"),
    }
)

# fmt: off
TOUCHES = touches_frame([
    ("tA1", "A", "c1", "2026-04-10 09:00", True, True, False),
    ("tA2", "A", "c2", "2026-05-01 18:00", False, False, False),
    ("tA3", "A", "c5", "2026-04-01 00:00", True, False, False),   # first instant of Q2
    ("t08", "A", "c7", "2026-05-10 10:00", False, False, False),  # same time as t09
    ("tB1", "B", "c2", "2026-05-03 08:00", True, True, False),
    ("tB2", "B", "c6", "2026-03-31 23:59", True, False, False),   # before Q2
    ("tD1", "D", "c3", "2026-06-28 10:00", True, False, True),    # opted out
    ("tD2", "D", "c3", "2026-07-02 10:00", False, False, False),  # after Q2
    ("tD3", "D", "c4", "2026-06-30 23:59", False, False, False),  # last minute of Q2
    ("t09", "D", "c7", "2026-05-10 10:00", False, False, False),
])
ORDERS = orders_frame([
    ("o1", "c1", "2026-04-17", 100.0),  # 7 days after tA1: attributed (inclusive)
    ("o2", "c1", "2026-04-18", 200.0),  # 8 days after tA1: not attributed
    ("o3", "c2", "2026-05-03", 50.0),   # same day as tB1, the later touch: tB1
    ("o4", "c2", "2026-05-02", 70.0),   # the day after tA2: tA2
    ("o5", "c3", "2026-07-01", 500.0),  # 3 days after tD1 (after Q2, still counted)
    ("o6", "c3", "2026-07-03", 900.0),  # tD2, a touch after Q2: not the funnel's
    ("o7", "c4", "2026-06-30", 40.0),   # same day as tD3
    ("o8", "c6", "2026-04-01", 30.0),   # tB2, a touch before Q2
    ("o9", "c7", "2026-05-11", 60.0),   # t08 and t09 tie on sent_at: t09 (higher id)
])
# fmt: on
SEGMENTS = pd.Series(
    ["diamond", "silver", "bronze", "bronze", "diamond"],
    index=pd.Index(["c1", "c2", "c3", "c4", "c7"], dtype="string"),
)  # c5 was not a customer at the start: iron


@pytest.fixture
def table() -> pd.DataFrame:
    return campaigns.touch_table(TOUCHES, ORDERS, CAMPAIGNS, Q2, 7, SEGMENTS)


def test_last_touch_attribution_by_hand() -> None:
    got = campaigns.attribute_orders(TOUCHES, ORDERS, 7)
    pairs = dict(zip(got["order_id"], got["touch_id"], strict=True))
    assert pairs == {
        "o1": "tA1",
        "o3": "tB1",
        "o4": "tA2",
        "o5": "tD1",
        "o6": "tD2",
        "o7": "tD3",
        "o8": "tB2",
        "o9": "t09",
    }


def test_touch_table_keeps_the_periods_touches_with_cost_and_segment(table: pd.DataFrame) -> None:
    assert sorted(table["touch_id"]) == ["t08", "t09", "tA1", "tA2", "tA3", "tB1", "tD1", "tD3"]
    by_id = table.set_index("touch_id")
    # A: 400 / 4 touches; B: free; D: 500 / 5 touches (two of them outside Q2)
    assert by_id["cost"].to_dict() == {
        "tA1": 100.0,
        "tA2": 100.0,
        "tA3": 100.0,
        "t08": 100.0,
        "tB1": 0.0,
        "tD1": 100.0,
        "tD3": 100.0,
        "t09": 100.0,
    }
    assert by_id.loc["tA3", "segment"] == "iron"
    assert by_id.loc["tD1", "revenue"] == 500.0
    assert by_id.loc["t08", "conversions"] == 0


def test_overall_campaign_kpis_by_hand(table: pd.DataFrame) -> None:
    untouched = campaigns.untouched_costs(CAMPAIGNS, Q2)
    assert untouched["campaign_id"].tolist() == ["C"]
    got = campaigns.campaign_kpis(table, untouched)
    # 8 touches; opened tA1 tA3 tB1 tD1 = 4; clicked tA1 tB1 = 2; opted out tD1 = 1
    # converted tA1 tA2 tB1 tD1 tD3 t09 = 6; revenue 100+70+50+500+40+60 = 820
    # cost A 400 + B 0 + D 3 x 100 + untouched C 1000 = 1700; ROI (820-1700)/1700
    assert got == pytest.approx(
        {
            "campaign_touches": 8.0,
            "campaign_open_rate": 4 / 8,
            "campaign_click_rate": 2 / 8,
            "campaign_conversion_rate": 6 / 8,
            "campaign_revenue": 820.0,
            "campaign_cost": 1700.0,
            "campaign_roi": (820 - 1700) / 1700,
            "opt_out_rate": 1 / 8,
        }
    )


def test_funnel_per_campaign_includes_untouched_cost_and_nan_roi_for_free_ones(
    table: pd.DataFrame,
) -> None:
    got = campaigns.funnel(
        table, ["campaign_id", "channel"], campaigns.untouched_costs(CAMPAIGNS, Q2)
    ).set_index("campaign_id")
    assert list(got.columns) == ["channel", *campaigns.FUNNEL_COLUMNS]
    # A: 4 touches, opened tA1 tA3, clicked tA1, converted tA1 tA2, revenue 170, cost 400
    assert got.loc["A", ["touches", "opened", "clicked", "conversions"]].tolist() == [4, 2, 1, 2]
    assert got.loc["A", "roi"] == pytest.approx((170 - 400) / 400)
    # B costs nothing: ROI undefined, conversions still shown
    assert got.loc["B", "conversions"] == 1
    assert math.isnan(got.loc["B", "roi"])
    # C never touched anyone: cost only, ROI -1, rates undefined
    assert got.loc["C", "touches"] == 0
    assert got.loc["C", "cost"] == 1000.0
    assert got.loc["C", "roi"] == -1.0
    assert math.isnan(got.loc["C", "open_rate"])
    # D: tD1 tD3 t09, revenue 500+40+60 = 600, cost 300 -> ROI 1.0; 1 opt-out of 3
    assert got.loc["D", ["revenue", "cost", "roi"]].tolist() == [600.0, 300.0, 1.0]
    assert got.loc["D", "opt_out_rate"] == pytest.approx(1 / 3)


def test_funnel_per_segment_splits_cost_by_touch_share(table: pd.DataFrame) -> None:
    untouched = campaigns.untouched_costs(CAMPAIGNS, Q2)
    got = campaigns.funnel(table, ["segment"], untouched).set_index("segment")
    # diamond: tA1 t08 t09 (rev 100+60, cost 300); silver: tA2 tB1 (rev 120, cost 100);
    # bronze: tD1 tD3 (rev 540, cost 200); iron: tA3 (cost 100). The untouched campaign's
    # cost cannot be split by segment: 300+100+200+100 = 700 = 1700 - 1000
    assert got["touches"].to_dict() == {"bronze": 2, "diamond": 3, "iron": 1, "silver": 2}
    assert got["revenue"].to_dict() == {"bronze": 540, "diamond": 160, "iron": 0, "silver": 120}
    assert got["cost"].to_dict() == {"bronze": 200, "diamond": 300, "iron": 100, "silver": 100}
    assert got.loc["silver", "roi"] == pytest.approx(0.2)
    assert got["cost"].sum() == 700.0


def test_shorter_attribution_window() -> None:
    # with 3 days, o1 (7 days after tA1) is no longer attributed
    got = campaigns.attribute_orders(TOUCHES, ORDERS, 3)
    assert "o1" not in set(got["order_id"])
    assert "o5" in set(got["order_id"])  # 3 days after tD1: still in


def test_no_touches_gives_zero_counts_and_nan_rates() -> None:
    empty = campaigns.touch_table(TOUCHES.iloc[:0], ORDERS.iloc[:0], CAMPAIGNS.iloc[:0], Q2)
    got = campaigns.campaign_kpis(empty)
    assert got["campaign_touches"] == 0.0
    assert got["campaign_cost"] == 0.0
    assert math.isnan(got["campaign_roi"])
    assert math.isnan(got["opt_out_rate"])
    assert campaigns.funnel(empty, ["channel"]).empty


def brute_force_attribution(
    touches: list[tuple[str, str, datetime]],
    orders: list[tuple[str, str, datetime]],
    days: int,
) -> dict[str, str]:
    """order_id -> touch_id: the latest (sent_at, touch_id) touch of the customer sent on
    the order's day or up to ``days`` days before it."""
    result = {}
    for order_id, customer, order_day in orders:
        best = None
        for touch_id, touch_customer, sent_at in touches:
            lag = (order_day.date() - sent_at.date()).days
            later = best is None or (sent_at, touch_id) > (best[1], best[0])
            if touch_customer == customer and 0 <= lag <= days and later:
                best = (touch_id, sent_at)
        if best is not None:
            result[order_id] = best[0]
    return result


def test_attribution_matches_a_brute_force_loop() -> None:
    rng = random.Random(11)
    start = datetime(2026, 4, 1)
    for _ in range(30):
        touches = [
            (
                f"t{i:03d}",
                f"c{rng.randint(1, 6)}",
                start + timedelta(days=rng.randint(0, 40), hours=rng.choice([0, 9, 9, 23])),
            )
            for i in range(rng.randint(0, 25))
        ]
        orders = [
            (f"o{i:03d}", f"c{rng.randint(1, 6)}", start + timedelta(days=rng.randint(0, 50)))
            for i in range(rng.randint(0, 25))
        ]
        want = brute_force_attribution(touches, orders, 7)
        got = campaigns.attribute_orders(
            touches_frame([(t, "A", c, s, False, False, False) for t, c, s in touches]),
            orders_frame([(o, c, d, 1.0) for o, c, d in orders]),
            7,
        )
        assert dict(zip(got["order_id"], got["touch_id"], strict=True)) == want
