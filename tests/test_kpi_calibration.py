"""The quarterly calibration: predicted against actual purchase days, by value tier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_batch.kpi import predict
from crm_batch.kpi.calibration import calibration_by_tier


def start_table(n: int = 400, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(30, 700, n).astype(float)
    order_days = rng.integers(1, 9, n)
    recency = np.where(order_days > 1, rng.uniform(0.0, 1.0, n) * tenure, tenure)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "has_paid_order": True,
            "order_days": order_days,
            "repeat_paid": (order_days - 1) * rng.uniform(50, 500, n),
            "tenure_days": tenure,
            "recency_days": recency,
            "value_tier": rng.choice(["diamond", "silver", "bronze"], n),
        }
    )
    # a customer without a paid order is not a buyer: never predicted, never counted
    prospect = {
        "customer_id": "p0",
        "has_paid_order": False,
        "order_days": 0,
        "repeat_paid": 0.0,
        "tenure_days": np.nan,
        "recency_days": np.nan,
        "value_tier": "iron",
    }
    return pd.concat([frame, pd.DataFrame([prospect])], ignore_index=True)


def test_sums_match_the_model_and_the_actual_days_by_tier() -> None:
    table = start_table()
    actual = pd.DataFrame(
        {"customer_id": ["c0", "c1", "c2", "p0", "zz"], "order_days_in_period": [2, 1, 3, 5, 9]}
    )
    result = calibration_by_tier(table, actual, 92).set_index("value_tier")
    # independent: the model's own per-customer predictions, summed per tier
    model = predict.fit(table)
    buyers, summary = predict.buyer_summary(table)
    each = predict.expected_purchases(
        model.bgnbd, 92, summary.frequency, summary.recency, summary.T
    )
    tiers = table["value_tier"][buyers].to_numpy()
    for tier in ("diamond", "silver", "bronze"):
        assert result.loc[tier, "predicted_days"] == pytest.approx(each[tiers == tier].sum())
        assert result.loc[tier, "buyers"] == (tiers == tier).sum()
    assert result.loc["all", "buyers"] == 400  # the prospect is no buyer
    assert result.loc["all", "predicted_days"] == pytest.approx(each.sum())
    # actual: c0 + c1 + c2 (p0 is no buyer at the start, zz not a customer then)
    assert result.loc["all", "actual_days"] == 6.0
    by_tier = dict.fromkeys(("diamond", "silver", "bronze"), 0.0)
    for cid, days in (("c0", 2), ("c1", 1), ("c2", 3)):
        by_tier[table.set_index("customer_id").loc[cid, "value_tier"]] += days
    for tier, days in by_tier.items():
        assert result.loc[tier, "actual_days"] == days
    assert result.loc["all", "ratio"] == pytest.approx(6.0 / each.sum())


def test_no_orders_in_the_quarter_and_no_model() -> None:
    empty = pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype=object),
            "order_days_in_period": pd.Series([], dtype="int64"),
        }
    )
    result = calibration_by_tier(start_table(), empty, 92)
    assert (result["actual_days"] == 0).all()
    one_timers = start_table().assign(order_days=1, repeat_paid=0.0)
    assert calibration_by_tier(one_timers, empty, 92).empty


def test_the_purchase_model_alone_is_the_full_fits_to_the_digit() -> None:
    """Calibration fits the BG/NBD alone (no Gamma-Gamma): the same model as the full
    fit's, in any row order."""
    table = start_table()
    full = predict.fit(table).bgnbd
    assert full is not None
    assert predict.fit_purchases(table) == full
    assert predict.fit_purchases(table.sample(frac=1.0, random_state=3)) == full
    assert predict.fit_purchases(table.assign(order_days=1, repeat_paid=0.0)) is None
