"""Who is still with us: P(alive) by value tier and the valuable customers likely lost,
checked against counts worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_batch.kpi.alive import BAND_COLUMNS, alive_by_value_tier, likely_lost_valuable

NAN = float("nan")


def scored_table() -> pd.DataFrame:
    rows = [
        # id, tier, p_alive, revenue_12m
        ("d1", "diamond", 0.90, 5000.0),
        ("d2", "diamond", 0.25, 8000.0),  # band [0, 0.25] (bound inclusive), likely lost
        ("d3", "diamond", 0.50, 9000.0),  # band (0.25, 0.5], not below 0.5: not lost
        ("s1", "silver", 0.10, 700.0),
        ("s2", "silver", 0.30, 900.0),
        ("b1", "bronze", 0.75, 0.0),  # band (0.5, 0.75]
        ("i1", "iron", NAN, 0.0),  # no paid order: no P(alive)
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "value_tier", "p_alive", "revenue_12m"])
    frame["name"] = frame["customer_id"].str.upper()
    frame["team"] = "East"
    frame["owner"] = "Li"
    frame["last_order_date"] = pd.Timestamp("2026-01-31")
    frame["expected_revenue_12m"] = frame["p_alive"] * 100
    return frame


def test_distribution_by_tier_by_hand() -> None:
    result = alive_by_value_tier(scored_table(), 0.5).set_index("value_tier")
    assert list(result.index) == ["diamond", "silver", "bronze"]
    assert result.loc["diamond", "buyers"] == 3
    assert result.loc["diamond", "p_alive_mean"] == pytest.approx((0.9 + 0.25 + 0.5) / 3)
    assert result.loc["diamond", list(BAND_COLUMNS)].tolist() == [1, 1, 0, 1]
    assert result.loc["diamond", "likely_lost"] == 1
    assert result.loc["diamond", "likely_lost_revenue_12m"] == 8000.0
    assert result.loc["silver", list(BAND_COLUMNS)].tolist() == [1, 1, 0, 0]
    assert result.loc["silver", "likely_lost"] == 2
    assert result.loc["silver", "likely_lost_revenue_12m"] == 1600.0
    assert result.loc["bronze", list(BAND_COLUMNS)].tolist() == [0, 0, 1, 0]
    assert result.loc["bronze", "likely_lost"] == 0
    # every scored buyer in exactly one band
    assert (result[list(BAND_COLUMNS)].sum(axis=1) == result["buyers"]).all()


def test_valuable_likely_lost_biggest_revenue_first() -> None:
    lost = likely_lost_valuable(scored_table(), 0.5)
    assert lost["customer_id"].tolist() == ["d2", "s2", "s1"]
    assert likely_lost_valuable(scored_table(), 0.5, limit=1)["customer_id"].tolist() == ["d2"]
    assert lost.loc[0, "expected_revenue_12m"] == pytest.approx(25.0)


def test_without_a_fitted_model_both_are_empty() -> None:
    table = scored_table().assign(p_alive=NAN)
    assert alive_by_value_tier(table, 0.5).empty
    assert likely_lost_valuable(table, 0.5).empty
