"""Incremental campaign results: intervals against published values, windows and group
figures by hand, and the demo's known campaign effect recovered within its interval."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crm_batch.kpi.uplift import (
    MIN_CONTROL,
    incremental_results,
    mean_difference,
    newcombe_interval,
    wilson_interval,
    window_outcomes,
)
from crm_batch.source.demo.generate import generate_demo


def test_wilson_and_newcombe_match_the_published_examples() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion" and
    # "Interval estimation for the difference between independent proportions"
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert newcombe_interval(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert newcombe_interval(9, 10, 3, 10) == pytest.approx((0.1705, 0.8090), abs=5e-5)
    low, high = newcombe_interval(0, 40, 0, 40)  # no conversions: still a real interval
    assert low < 0 < high


def test_window_is_the_touch_day_to_seven_days_later() -> None:
    touches = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", None],
            "sent_at": pd.to_datetime(
                ["2026-06-10 23:30", "2026-06-20 08:00", "2026-06-10 08:00", "2026-06-10 00:00"]
            ),
        }
    )
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c"],
            "order_date": pd.to_datetime(
                ["2026-06-09", "2026-06-10", "2026-06-17", "2026-06-18", "2026-06-11", "2026-06-10"]
            ),
            "amount": [1.0, 10.0, 20.0, 40.0, 5.0, 99.0],
        }
    )
    result = window_outcomes(touches, orders, 7)
    # touch 0: 06-10 (same day, earlier time still counts: orders carry dates) and 06-17
    # (day + 7); 06-09 before, 06-18 after. touch 1: 06-20..27: none. touch 2: b's 06-11.
    assert result["window_orders"].tolist() == [2, 0, 1, 0]
    assert result["window_revenue"].tolist() == [30.0, 0.0, 5.0, 0.0]


def group(sent_converting: int, sent: int, control_converting: int, control: int):
    """Touches of one campaign: converting ones have one order of 100 in the window."""
    flags = [False] * sent + [True] * control
    converting = [i < sent_converting for i in range(sent)] + [
        i < control_converting for i in range(control)
    ]
    return pd.DataFrame(
        {
            "campaign_id": "M1",
            "is_control": flags,
            "cost": [2.0] * sent + [0.0] * control,
            "window_orders": [1 if c else 0 for c in converting],
            "window_revenue": [100.0 if c else 0.0 for c in converting],
        }
    )


def test_group_figures_by_hand() -> None:
    touches = group(12, 40, 4, 40)
    row = incremental_results(touches, ["campaign_id"]).iloc[0]
    assert (row["sent"], row["control"]) == (40, 40)
    assert row["conversion_sent"] == 0.30
    assert row["conversion_control"] == 0.10
    assert row["uplift"] == pytest.approx(0.20)
    assert (row["uplift_low"], row["uplift_high"]) == pytest.approx(
        newcombe_interval(12, 40, 4, 40)
    )
    # orders per touch 0.30 vs 0.10: 0.2 x 40 sent = 8 incremental orders, revenue 800
    assert row["incremental_orders"] == pytest.approx(8.0)
    assert row["incremental_revenue"] == pytest.approx(800.0)
    sent = np.array([1.0] * 12 + [0.0] * 28)
    ctrl = np.array([1.0] * 4 + [0.0] * 36)
    margin = 1.959964 * np.sqrt(sent.var(ddof=1) / 40 + ctrl.var(ddof=1) / 40)
    assert row["incremental_orders_low"] == pytest.approx((0.2 - margin) * 40, rel=1e-5)
    assert row["incremental_revenue_high"] == pytest.approx((0.2 + margin) * 4000, rel=1e-5)
    assert row["cost"] == 80.0
    assert row["incremental_roi"] == pytest.approx((800.0 - 80.0) / 80.0)


def test_too_small_a_control_gives_no_incremental_figures() -> None:
    row = incremental_results(group(12, 40, 1, MIN_CONTROL - 1), ["campaign_id"]).iloc[0]
    assert row["control"] == MIN_CONTROL - 1
    assert row["conversion_control"] == pytest.approx(1 / (MIN_CONTROL - 1))
    assert np.isnan(row["uplift"])
    assert np.isnan(row["incremental_revenue"])
    assert np.isnan(row["incremental_roi"])
    no_control = incremental_results(group(3, 10, 0, 0), ["campaign_id"]).iloc[0]
    assert no_control["control"] == 0
    assert np.isnan(no_control["conversion_control"])


def test_mean_difference_of_single_values_has_no_spread() -> None:
    assert mean_difference(np.array([3.0]), np.array([1.0])) == (2.0, 0.0)


@pytest.fixture(scope="module")
def demo():
    return generate_demo(customers=20_000, orders=300_000, end_date=date(2026, 6, 30))


def test_the_demo_has_control_groups_only_where_the_channel_has_them(demo) -> None:
    touches = demo.touches.merge(
        demo.campaigns[["campaign_id", "channel"]], on="campaign_id", how="left"
    )
    share = touches.groupby("channel", observed=True)["is_control"].mean()
    for channel in ("sms", "email", "wechat"):
        assert 0.08 < share[channel] < 0.12
    assert share.get("call", 0.0) == 0.0
    assert share.get("event", 0.0) == 0.0
    held = touches[touches["is_control"]]
    assert not held[["opened", "clicked", "opted_out"]].any().any()
    caused = demo.caused_orders.merge(demo.touches, on="touch_id")
    assert len(caused) > 0
    assert not caused["is_control"].any()  # a control is not sent: it causes nothing


def test_the_demo_campaign_effect_is_recovered_within_its_interval(demo) -> None:
    paid = demo.orders[demo.orders["status"] == "paid"]
    touches = demo.touches.assign(cost=0.0)
    outcomes = window_outcomes(touches, paid, 7)
    touches = pd.concat([touches, outcomes], axis=1)
    estimate = incremental_results(touches, ["campaign_id"]).set_index("campaign_id")
    # the truth: paid orders each campaign's sent touches caused (the generator knows)
    caused = demo.caused_orders.merge(paid[["order_id"]], on="order_id").merge(
        demo.touches[["touch_id", "campaign_id"]], on="touch_id"
    )
    truth = caused.groupby("campaign_id").size().reindex(estimate.index, fill_value=0)
    measured = estimate["incremental_orders"].notna()
    assert measured.sum() >= 20  # the mass campaigns with a control of 30 or more
    inside = (estimate["incremental_orders_low"] <= truth) & (
        truth <= estimate["incremental_orders_high"]
    )
    # 95 % intervals: nearly every campaign's interval holds its true effect
    assert inside[measured].mean() >= 0.85
    # pooled over the campaigns with a control, the effect is recovered and is real
    pooled_touches = touches[touches["campaign_id"].isin(estimate.index[measured])]
    pooled = incremental_results(pooled_touches.assign(all="all"), ["all"]).iloc[0]
    true_total = truth[measured].sum()
    assert pooled["incremental_orders_low"] <= true_total <= pooled["incremental_orders_high"]
    assert pooled["uplift_low"] > 0
