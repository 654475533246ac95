"""Segmentation: RFM scores and segments, tier A/B/C, value tier, lifecycle, value groups.

Tables are built from hand-written facts rows through customer_table, so they have
exactly the columns extract_as_of would give; expected values are worked out by hand.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_kpi_facts import AS_OF_QUERIES, T, typed

from crm_batch.config import ThresholdSettings
from crm_batch.kpi import churn, facts, playbook, segments
from crm_batch.kpi.facts import customer_table
from crm_batch.kpi.segments import (
    RFM_GRID,
    RFM_SEGMENTS,
    SEGMENT_COLUMNS,
    as_of_kpis,
    lifecycle_stage,
    quintile_scores,
    rfm_segments,
    segment_customers,
    segment_kpis,
)
from crm_batch.source.frames import SourceFrames

THRESHOLDS = ThresholdSettings()


def buyer(
    cid: str,
    *,
    last: int,
    first: int | None = None,
    orders_12m: int = 1,
    revenue_12m: float = 100.0,
    quarters: int = 1,
    team: str = "North",
) -> dict[str, Any]:
    """A facts row: last/first paid order ``last``/``first`` days before T."""
    first = last if first is None else first
    return {
        "customer_id": cid,
        "team": team,
        "first_order_date": T - timedelta(days=first),
        "last_order_date": T - timedelta(days=last),
        "orders_total": max(orders_12m, 1),
        "revenue_total": revenue_12m,
        "orders_12m": orders_12m,
        "revenue_12m": revenue_12m,
        "quarters_active_4q": quarters,
    }


def prospect(cid: str, team: str = "North", revenue: float = 0.0) -> dict[str, Any]:
    """No paid order; ``revenue`` < 0 makes it a refund-only customer."""
    row: dict[str, Any] = {"customer_id": cid, "team": team}
    if revenue:
        row.update(orders_total=0, revenue_total=revenue, orders_12m=0, revenue_12m=revenue)
    return row


def build_table(rows: list[dict[str, Any]], **extra: list[dict[str, Any]]) -> pd.DataFrame:
    """customer_table over a register of ``rows`` with their facts (and extra frames)."""
    customers = typed(
        "customers",
        [
            {"customer_id": r["customer_id"], "name": f"n{r['customer_id']}", "team": r["team"]}
            for r in rows
        ],
    )
    fact_rows = [{k: v for k, v in r.items() if k != "team"} for r in rows if len(r) > 2]
    frames = {"facts": fact_rows, **extra}
    built = {
        field: typed(query, frames.get(field, []))
        for field, query in AS_OF_QUERIES.items()
        if field != "customers"
    }
    return customer_table(SourceFrames(as_of=T, customers=customers, **built), T)


def segmented(rows: list[dict[str, Any]], thresholds: ThresholdSettings = THRESHOLDS) -> Any:
    return segment_customers(build_table(rows), thresholds).set_index("customer_id")


# -- quintile scores -------------------------------------------------------------------


def test_quintile_scores_by_hand_with_a_tie() -> None:
    values = pd.Series([10, 20, 20, 30, 40, 50, 60, 70, 80, 90], dtype="float64")
    # strictly below: 0 1 1 3 4 5 6 7 8 9; score = 1 + floor(5 * below / 10)
    assert quintile_scores(values).tolist() == [1, 1, 1, 2, 3, 3, 4, 4, 5, 5]


def test_all_equal_values_share_the_lowest_score() -> None:
    assert quintile_scores(pd.Series([5.0, 5.0, 5.0])).tolist() == [1, 1, 1]


def test_empty_values_give_no_scores() -> None:
    assert quintile_scores(pd.Series([], dtype="float64")).empty


@pytest.mark.parametrize("n", [5, 10, 25, 100, 1000])
def test_untied_quintiles_equal_pandas_qcut(n: int) -> None:
    values = pd.Series(np.random.default_rng(n).permutation(n).astype("float64") * 1.5)
    expected = pd.qcut(values, 5, labels=False) + 1
    assert quintile_scores(values).tolist() == expected.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_tied_scores_equal_a_brute_force_count(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = pd.Series(rng.integers(0, 6, size=37).astype("float64"))
    brute = [1 + (5 * sum(1 for y in values if y < x)) // len(values) for x in values]
    assert quintile_scores(values).tolist() == brute


def test_scores_do_not_depend_on_row_order() -> None:
    values = pd.Series([3.0, 1.0, 2.0, 2.0, 5.0, 1.0], index=list("abcdef"))
    shuffled = values.sample(frac=1.0, random_state=3)
    pd.testing.assert_series_equal(
        quintile_scores(values), quintile_scores(shuffled).reindex(values.index)
    )


# -- RFM segments ----------------------------------------------------------------------


def test_rfm_grid_is_the_table_in_the_docstring() -> None:
    """The README copies the docstring's table: it must be the grid the code uses."""
    doc = segments.__doc__ or ""
    rows = {
        int(m["r"]): tuple(m["cells"].split())
        for m in re.finditer(r"^(?P<r>[1-5])\s{2,}(?P<cells>[a-z_ ]+)$", doc, re.MULTILINE)
    }
    assert rows == {r: RFM_GRID[r - 1] for r in range(1, 6)}
    assert {cell for row in RFM_GRID for cell in row} | {"lost"} == set(RFM_SEGMENTS)


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "champions"),
        (5, 4, 3, "champions"),  # FM = ceil(3.5) = 4
        (5, 3, 3, "potential_loyalist"),
        (5, 1, 1, "new"),
        (5, 1, 2, "potential_loyalist"),  # FM = ceil(1.5) = 2
        (4, 1, 1, "promising"),
        (4, 5, 4, "loyal"),
        (3, 3, 3, "need_attention"),
        (3, 2, 1, "about_to_sleep"),
        (3, 4, 3, "loyal"),
        (2, 1, 2, "hibernating"),
        (2, 3, 3, "at_risk"),
        (2, 5, 4, "cannot_lose"),
        (1, 1, 1, "lost"),
        (1, 2, 1, "hibernating"),
        (1, 4, 4, "at_risk"),
        (1, 5, 5, "cannot_lose"),
    ],
)
def test_rfm_segment_rules(r: int, f: int, m: int, segment: str) -> None:
    assert rfm_segments(np.array([r]), np.array([f]), np.array([m])).tolist() == [segment]


def test_rfm_scores_and_segments_on_a_table() -> None:
    # five buyers; customer k has recency 60 - 10k, k orders and revenue 10k, so with
    # n = 5 each score is 1 + (number strictly worse) = k
    rows = [
        buyer(f"c{k}", last=60 - 10 * k, first=300, orders_12m=k, revenue_12m=10.0 * k)
        for k in range(1, 6)
    ]
    rows += [buyer("lapsed", last=400, orders_12m=0, revenue_12m=0.0), prospect("p")]
    table = segmented(rows)
    scores = table[["r_score", "f_score", "m_score"]]
    for k in range(1, 6):
        assert tuple(scores.loc[f"c{k}"]) == (k, k, k)
        assert table.loc[f"c{k}", "rfm_code"] == f"{k}{k}{k}"
    assert table["rfm_segment"].astype("string").to_dict() == {
        "c1": "lost",
        "c2": "hibernating",
        "c3": "need_attention",
        "c4": "loyal",
        "c5": "champions",
        "lapsed": "lost",  # a buyer without an order in 12 months
        "p": None,  # missing
    }
    assert scores.loc["lapsed"].isna().all()
    assert scores.loc["p"].isna().all()


def test_more_recent_is_a_higher_r_and_equal_recency_an_equal_r() -> None:
    rows = [buyer("old", last=300), buyer("mid", last=30), buyer("mid2", last=30)]
    rows += [buyer("new", last=0)]
    r = segmented(rows)["r_score"]
    # n = 4; recency worse counts: old 0, mid 1, mid2 1, new 3 -> 1 + floor(5b/4)
    assert r.to_dict() == {"old": 1, "mid": 2, "mid2": 2, "new": 4}


# -- tier A/B/C ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revenue", "quarters", "orders", "tier"),
    [
        (100_000.0, 3, 3, "A"),  # both A thresholds met exactly
        (100_000.0, 2, 3, "B"),  # active in only 2 quarters: B by revenue
        (99_999.99, 4, 3, "B"),
        (20_000.0, 1, 1, "B"),
        (19_999.99, 1, 4, "B"),  # 4 orders
        (19_999.99, 1, 3, "C"),
        (0.0, 0, 0, "C"),  # a lapsed buyer
    ],
)
def test_tiers(revenue: float, quarters: int, orders: int, tier: str) -> None:
    row = buyer("x", last=10 if orders else 400, orders_12m=orders, revenue_12m=revenue)
    row["quarters_active_4q"] = quarters
    assert segmented([row]).loc["x", "tier"] == tier


def test_no_tier_without_a_paid_order() -> None:
    table = segmented([prospect("p"), prospect("refund_only", revenue=-30.0)])
    assert table["tier"].isna().all()


# -- value tiers -----------------------------------------------------------------------


def tiers_of(revenues: list[float], **extra: dict[str, Any]) -> dict[str, str]:
    rows = [buyer(f"b{i}", last=10, revenue_12m=v) for i, v in enumerate(revenues)]
    rows += list(extra.values())
    return segmented(rows)["value_tier"].to_dict()


def test_value_tiers_split_20_30_50() -> None:
    got = tiers_of(
        [1000.0, 900.0, 800.0, 700.0, 600.0, 500.0, 400.0, 300.0, 200.0, 100.0],
        lapsed=buyer("lapsed", last=400, orders_12m=0, revenue_12m=0.0),
        p=prospect("p"),
        r=prospect("r", revenue=-10.0),
    )
    # n = 10: diamond = ceil(2) = 2 places, silver down to ceil(5) = 5 places
    assert [got[f"b{i}"] for i in range(10)] == ["diamond"] * 2 + ["silver"] * 3 + ["bronze"] * 5
    assert (got["lapsed"], got["p"], got["r"]) == ("bronze", "iron", "iron")


def test_ties_at_a_value_tier_boundary_share_the_better_tier() -> None:
    got = tiers_of([500.0, 400.0, 400.0, 300.0, 200.0, 100.0, 100.0])
    # n = 7: diamond places ceil(1.4) = 2, silver places ceil(3.5) = 4;
    # customers above: 0 1 1 3 4 5 5 -> D D D S B B B
    assert list(got.values()) == ["diamond"] * 3 + ["silver"] + ["bronze"] * 3


def test_zero_or_negative_12_month_revenue_is_never_high_value() -> None:
    # n = 3: diamond 1 place, silver to 2 places; 0 is second but not > 0
    assert list(tiers_of([300.0, 0.0, -50.0]).values()) == ["diamond", "bronze", "bronze"]
    assert set(tiers_of([0.0, 0.0]).values()) == {"bronze"}


def test_value_tier_shares_are_settings_without_float_noise() -> None:
    # 0.3 + 0.4 = 0.7000000000000001; 0.7 x 10 must give 7 places, not 8
    thresholds = replace_thresholds(diamond_share=0.3, silver_share=0.4)
    rows = [buyer(f"b{i}", last=10, revenue_12m=100.0 - i) for i in range(10)]
    counts = segmented(rows, thresholds)["value_tier"].value_counts().to_dict()
    assert counts == {"diamond": 3, "silver": 4, "bronze": 3, "iron": 0}


def replace_thresholds(**changes: Any) -> ThresholdSettings:
    return ThresholdSettings(**{**THRESHOLDS.model_dump(), **changes})


# -- lifecycle -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenure", "recency", "stage"),
    [
        (0, 0, "new"),
        (90, 90, "new"),  # first order exactly 90 days ago: new wins over active
        (91, 0, "active"),
        (91, 90, "active"),
        (200, 91, "dormant"),
        (200, 180, "dormant"),
        (400, 181, "churned"),
        (None, None, "prospect"),
    ],
)
def test_lifecycle_boundaries(tenure: int | None, recency: int | None, stage: str) -> None:
    got = lifecycle_stage(
        pd.Series([recency], dtype="Int64"), pd.Series([tenure], dtype="Int64"), THRESHOLDS
    )
    assert got.tolist() == [stage]


def test_lifecycle_thresholds_are_settings() -> None:
    thresholds = replace_thresholds(new_customer_days=30, active_days=60, dormant_days=120)
    got = lifecycle_stage(
        pd.Series([31, 61, 121], dtype="Int64"),
        pd.Series([31, 100, 200], dtype="Int64"),
        thresholds,
    )
    assert got.tolist() == ["active", "dormant", "churned"]


# -- value groups and actions ----------------------------------------------------------


def test_value_groups_and_next_actions() -> None:
    rows = [
        buyer("d_active", last=5, first=300, revenue_12m=900.0),
        buyer("s_dormant", last=120, first=300, revenue_12m=800.0),
        buyer("b_new", last=5, first=5, revenue_12m=10.0),
        buyer("b_churned", last=200, first=300, revenue_12m=5.0),
        prospect("p"),
    ]
    table = segmented(rows)
    # n = 4: diamond 1 place, silver to 2 places
    assert table["value_tier"].tolist() == ["diamond", "silver", "bronze", "bronze", "iron"]
    assert table["value_group"].astype("string").to_dict() == {
        "d_active": "high_active",
        "s_dormant": "high_dormant",
        "b_new": "low_new",
        "b_churned": "low_churned",
        "p": None,  # missing
    }
    assert table["next_action_key"].to_dict() == {
        "d_active": "dedicated_account_manager",
        "s_dormant": "vip_winback_call",
        "b_new": "first_order_follow_up",
        "b_churned": "low_cost_winback",
        "p": "prospect_nurture",
    }


def test_the_playbook_covers_every_group_segment_and_level_in_both_languages() -> None:
    groups = {f"{v}_{s}" for v in ("high", "low") for s in ("new", "active", "dormant", "churned")}
    assert set(playbook.GROUP_ACTIONS) == groups
    assert set(playbook.SEGMENT_ACTIONS) == set(RFM_SEGMENTS)
    assert set(playbook.WARNING_ACTIONS) == {"complaint", *churn.LEVELS}
    used = {
        *playbook.GROUP_ACTIONS.values(),
        *playbook.SEGMENT_ACTIONS.values(),
        *playbook.WARNING_ACTIONS.values(),
        playbook.PROSPECT_ACTION,
    }
    assert used <= set(playbook.ACTIONS)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for action_key in used:
        assert cjk.search(playbook.action_text(action_key, "zh-CN")), action_key
        assert not cjk.search(playbook.action_text(action_key, "en")), action_key
    values = {*RFM_SEGMENTS, *segments.LIFECYCLES, *segments.VALUE_TIERS, *segments.TIERS}
    for value in values | groups | set(churn.LEVELS):
        assert playbook.label(value, "zh-CN") != playbook.label(value, "en"), value


def test_segment_customers_adds_columns_and_leaves_the_input_alone() -> None:
    table = build_table([buyer("a", last=3), prospect("b")])
    before = table.copy()
    result = segment_customers(table, THRESHOLDS)
    pd.testing.assert_frame_equal(table, before)
    assert list(result.columns) == [*table.columns, *SEGMENT_COLUMNS]
    assert segment_customers(build_table([]), THRESHOLDS).empty


@pytest.mark.parametrize(
    ("column", "categories"),
    [
        ("rfm_segment", RFM_SEGMENTS),
        ("tier", segments.TIERS),
        ("value_tier", segments.VALUE_TIERS),
        ("lifecycle", segments.LIFECYCLES),
        ("value_group", segments.VALUE_GROUPS),
    ],
)
def test_category_columns_carry_every_documented_value(
    column: str, categories: tuple[str, ...]
) -> None:
    result = segment_customers(build_table([]), THRESHOLDS)
    assert tuple(result[column].cat.categories) == categories
    assert str(result["r_score"].dtype) == "Int64"


# -- KPIs ------------------------------------------------------------------------------


def kpi_table() -> pd.DataFrame:
    rows = [
        buyer("a", last=5, first=400, orders_12m=6, revenue_12m=150_000.0, quarters=4),
        buyer("b", last=30, first=30, orders_12m=1, revenue_12m=300.0, team="South"),
        buyer("c", last=100, first=500, orders_12m=2, revenue_12m=200.0),
        buyer("d", last=200, first=600, orders_12m=1, revenue_12m=100.0, team="South"),
        buyer("e", last=500, first=700, orders_12m=0, revenue_12m=0.0),
        prospect("p"),
    ]
    return segment_customers(build_table(rows), THRESHOLDS)


def test_segment_kpis_by_hand() -> None:
    kpis = segment_kpis(kpi_table())
    # buyers a..e = 5; 12-month buyers a..d = 4: diamond ceil(0.8) = 1 place (a),
    # silver to ceil(2) = 2 places (b)
    assert (kpis["tier_a_count"], kpis["tier_b_count"], kpis["tier_c_count"]) == (1, 0, 4)
    assert kpis["tier_a_share"] == pytest.approx(1 / 5)
    assert [kpis[f"{t}_count"] for t in ("diamond", "silver", "bronze", "iron")] == [1, 1, 3, 1]
    # (150,000 + 300) / (150,000 + 300 + 200 + 100)
    assert kpis["high_value_revenue_share_12m"] == pytest.approx(150_300 / 150_600)
    # b is new; a active; c dormant (100 days); d and e churned
    counts = [kpis[f"{s}_count"] for s in ("new", "active", "dormant", "churned")]
    assert counts == [1, 1, 1, 2]
    assert kpis["churned_share"] == pytest.approx(2 / 5)


def test_as_of_kpis_cover_every_registered_kpi_of_these_modules() -> None:
    table = kpi_table()
    warnings = churn.churn_warnings(table, T, THRESHOLDS)
    kpis = as_of_kpis(table, warnings)
    names = [k.name for module in (facts, segments, churn) for k in module.KPIS]
    assert list(kpis) == names
    assert all(isinstance(v, float) for v in kpis.values())


def test_a_team_without_customers_gives_zero_counts_and_nan_rates() -> None:
    table = kpi_table()
    warnings = churn.churn_warnings(table, T, THRESHOLDS)
    nobody = as_of_kpis(table[table["team"] == "West"], warnings[warnings["team"] == "West"])
    assert nobody["customers_total"] == 0
    assert nobody["diamond_count"] == 0
    for rate in ("tier_a_share", "active_share", "aov_12m", "high_value_revenue_share_12m"):
        assert np.isnan(nobody[rate]), rate
    south = as_of_kpis(table[table["team"] == "South"], warnings[warnings["team"] == "South"])
    assert (south["customers_total"], south["revenue_12m"]) == (2, 400.0)  # b + d
