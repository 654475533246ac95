"""Churn warnings: the calendar window, signals, levels, revenue at risk, and the full path.

The full path (extract_as_of -> customer_table -> segment_customers -> churn_warnings)
runs on the canonical data on DuckDB, SQLite, PostgreSQL and MariaDB with integer and
text ids, checked against values worked out by hand and against each other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from conftest import LoadedDb
from fixtures.canonical import AS_OF, IdType, customer_key, text_id
from sqlalchemy.engine import URL
from test_kpi_facts import BACKEND_PARAMS, CATALOG, key, load_rows
from test_kpi_segments import build_table, buyer, prospect

from crm_batch.config import ThresholdSettings
from crm_batch.kpi.churn import (
    KPIS,
    WARNING_COLUMNS,
    churn_warnings,
    warning_kpis,
)
from crm_batch.kpi.facts import customer_table
from crm_batch.kpi.segments import as_of_kpis, segment_customers
from crm_batch.periods import QuietWindow, quiet_window
from crm_batch.source.extract import extract_as_of

THRESHOLDS = ThresholdSettings()


# -- the calendar window ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "lookback_start", "quiet_start", "quiet_end"),
    [
        # mid-month: the quiet months are the 3 before T's month
        (date(2026, 7, 15), date(2025, 4, 1), date(2026, 4, 1), date(2026, 7, 1)),
        # first day of a month: that month has just begun, it is not complete
        (date(2026, 7, 1), date(2025, 4, 1), date(2026, 4, 1), date(2026, 7, 1)),
        # last day of a month: that month is complete and is the last quiet month
        (date(2026, 6, 30), date(2025, 4, 1), date(2026, 4, 1), date(2026, 7, 1)),
        (date(2026, 6, 29), date(2025, 3, 1), date(2026, 3, 1), date(2026, 6, 1)),
        # across a year end
        (date(2026, 1, 15), date(2024, 10, 1), date(2025, 10, 1), date(2026, 1, 1)),
        (date(2025, 12, 31), date(2024, 10, 1), date(2025, 10, 1), date(2026, 1, 1)),
        # 29 February ends its month
        (date(2024, 2, 29), date(2022, 12, 1), date(2023, 12, 1), date(2024, 3, 1)),
        (date(2024, 2, 28), date(2022, 11, 1), date(2023, 11, 1), date(2024, 2, 1)),
    ],
)
def test_quiet_window(
    as_of: date, lookback_start: date, quiet_start: date, quiet_end: date
) -> None:
    assert quiet_window(
        as_of, THRESHOLDS.churn_quiet_months, THRESHOLDS.churn_lookback_months
    ) == QuietWindow(lookback_start, quiet_start, quiet_end)


def test_quiet_window_months_are_settings() -> None:
    # T = 2026-07-15: quiet month June, lookback December 2025 .. May 2026
    assert quiet_window(date(2026, 7, 15), 1, 6) == QuietWindow(
        date(2025, 12, 1), date(2026, 6, 1), date(2026, 7, 1)
    )


# -- the window in SQL, on every database ----------------------------------------------

#: Lookback 2025-04-01..2026-03-31, quiet 2026-04-01..2026-06-30 for all three dates.
WINDOW_ORDERS = [
    (1, date(2025, 3, 31), 1.0, "paid"),  # the day before the lookback: not counted
    (1, date(2025, 4, 1), 100.0, "paid"),  # the lookback's first day
    (1, date(2026, 3, 31), 200.0, "paid"),  # the lookback's last day
    (1, date(2026, 3, 31), 50.0, "refunded"),
    (2, date(2025, 6, 1), 10.0, "paid"),
    (2, date(2026, 4, 1), 10.0, "paid"),  # the quiet window's first day
    (3, date(2025, 6, 1), 10.0, "paid"),
    (3, date(2026, 6, 30), 10.0, "paid"),  # the quiet window's last day
    (4, date(2025, 6, 1), 10.0, "paid"),
    (4, date(2026, 7, 1), 10.0, "paid"),  # the first day after the quiet window
    (5, date(2025, 6, 1), 10.0, "paid"),
    (5, date(2026, 7, 15), 10.0, "paid"),  # 2026-07-15
    (6, date(2025, 6, 1), 10.0, "paid"),
    (6, date(2026, 7, 16), 10.0, "paid"),  # after every T below: invisible
    (7, date(2025, 3, 31), 10.0, "paid"),  # before the lookback only
    (8, date(2025, 6, 1), 10.0, "cancelled"),  # a cancelled order is no order
    (9, date(2025, 6, 1), 10.0, "refunded"),  # nor is a refund
]


@pytest.fixture(params=BACKEND_PARAMS)
def window_db(request: pytest.FixtureRequest, db_url_factory: Callable[[str], URL]) -> Any:
    customers = [(n, "North", date(2024, 1, 1), None) for n in range(1, 10)]
    engine = load_rows(db_url_factory(request.param), "text", customers, WINDOW_ORDERS)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("as_of", "warned"),
    [
        # 4 bought on 07-01 and 5 on T: in T's month, which cancels the signal
        (date(2026, 7, 15), {1, 6}),
        # on 07-01 only 4's order is visible, and it falls in T's month
        (date(2026, 7, 1), {1, 5, 6}),
        # June is complete: the quiet months are April-June; 4's and 5's orders are later
        (date(2026, 6, 30), {1, 4, 5, 6}),
    ],
)
def test_quiet_signal_on_window_boundaries(window_db: Any, as_of: date, warned: set[int]) -> None:
    frames = extract_as_of(window_db, CATALOG, as_of, THRESHOLDS)
    table = customer_table(frames, as_of).set_index("customer_id")
    alice = table.loc[key(1, "text")]
    # lookback: 100 + 200 paid, 50 refunded -> 2 orders, 250 net (the 2025-03-31 order is out)
    assert (alice.orders_lookback, alice.revenue_lookback) == (2, pytest.approx(250.0))
    counts = table[["orders_lookback", "orders_quiet", "orders_current_month"]]
    assert tuple(counts.loc[key(2, "text")]) == (1, 1, 0)
    assert tuple(counts.loc[key(3, "text")]) == (1, 1, 0)
    for number in (7, 8, 9):
        assert counts.loc[key(number, "text"), "orders_lookback"] == 0
    warnings = churn_warnings(segment_customers(table.reset_index(), THRESHOLDS), as_of, THRESHOLDS)
    assert set(warnings["customer_id"]) == {key(n, "text") for n in warned}
    assert warnings["signals"].eq("no_order_3m").all()


# -- signals, levels, revenue at risk --------------------------------------------------


def window(cid: str, lookback_orders: int, lookback_revenue: float, quiet: int = 0) -> dict:
    return {
        "customer_id": cid,
        "orders_lookback": lookback_orders,
        "revenue_lookback": lookback_revenue,
        "orders_quiet": quiet,
        "orders_current_month": 0,
    }


def complaint(cid: str, opened: datetime = datetime(2026, 3, 30, 12, 0)) -> dict:
    return {
        "customer_id": cid,
        "tickets_open": 1,
        "complaints_open": 1,
        "complaints_open_over_limit": 1,
        "oldest_open_complaint_at": opened,
    }


def level_table() -> pd.DataFrame:
    """T = 2026-03-31. Value tiers over the 8 buyers of 12 months (n = 8): diamond =
    ceil(1.6) = 2 places (a, dia), silver to ceil(4) = 4 places (tierb, both)."""
    rows = [
        buyer("a", last=100, orders_12m=6, revenue_12m=150_000.0, quarters=4),  # tier A
        buyer("both", last=100, revenue_12m=50.0, team="South"),
        buyer("dia", last=100, revenue_12m=5000.0),
        buyer("tierb", last=5, orders_12m=4, revenue_12m=100.0),  # tier B by 4 orders
        buyer("low", last=100, revenue_12m=40.0, team="South"),
        buyer("neg", last=100, revenue_12m=30.0),
        buyer("ok", last=5, revenue_12m=20.0),
        buyer("cur", last=1, revenue_12m=10.0),
        prospect("pros"),
    ]
    cur = window("cur", 2, 90.0)
    cur["orders_current_month"] = 1  # bought in T's month: not quiet
    churn_rows = [
        window("a", 5, 120_000.0),
        window("both", 2, 700.0),
        window("dia", 1, 4000.0),
        window("low", 1, 300.0),
        window("neg", 1, -20.0),
        window("ok", 3, 500.0, quiet=1),
        cur,
    ]
    service = [complaint("both"), complaint("tierb"), complaint("pros")]
    table = build_table(rows, churn_window=churn_rows, service=service)
    return segment_customers(table, THRESHOLDS)


def test_levels_signals_and_revenue_at_risk_by_hand() -> None:
    warnings = churn_warnings(level_table(), date(2026, 3, 31), THRESHOLDS)
    assert list(warnings.columns) == list(WARNING_COLUMNS)
    got = warnings.set_index("customer_id")
    # sorted by revenue at risk; neg and pros tie at 0 and are both low: by id
    assert list(got.index) == ["a", "dia", "both", "low", "tierb", "neg", "pros"]
    assert got["level"].to_dict() == {
        "a": "high",  # tier A
        "dia": "medium",  # diamond, tier C
        "both": "high",  # both signals (silver, tier C)
        "low": "low",  # bronze, tier C
        "tierb": "medium",  # silver and tier B
        "neg": "low",
        "pros": "low",  # a prospect with a complaint
    }
    assert got["revenue_at_risk"].to_dict() == {
        "a": 120_000.0,  # quiet: the lookback's revenue
        "dia": 4000.0,
        "both": 700.0,
        "low": 300.0,
        "tierb": 100.0,  # complaint only: the last 365 days
        "neg": 0.0,  # -20 floored at 0
        "pros": 0.0,
    }
    assert got.loc["both", "signals"] == "no_order_3m,complaint_open"
    assert got.loc["tierb", "signals"] == "complaint_open"
    assert got.loc["a", "signals"] == "no_order_3m"
    assert got.loc["both", "complaint_hours_open"] == 36.0  # 2026-03-30 12:00 -> 04-01 00:00
    assert pd.isna(got.loc["a", "complaint_hours_open"])
    assert got["warning_action_key"].to_dict() == {
        "a": "vip_winback_call",
        "dia": "personal_winback",
        "both": "resolve_complaint",
        "low": "low_cost_winback",
        "tierb": "resolve_complaint",
        "neg": "low_cost_winback",
        "pros": "resolve_complaint",
    }


def test_warning_kpis_by_hand() -> None:
    warnings = churn_warnings(level_table(), date(2026, 3, 31), THRESHOLDS)
    kpis = warning_kpis(warnings)
    assert kpis == {
        "churn_warnings_count": 7.0,
        "churn_warnings_high": 2.0,  # a, both
        "revenue_at_risk": 125_100.0,  # 120,000 + 4,000 + 700 + 300 + 100
    }
    assert set(kpis) == {k.name for k in KPIS}
    south = warning_kpis(warnings[warnings["team"] == "South"])
    assert south["revenue_at_risk"] == 1000.0  # both 700 + low 300


def test_no_customers_no_warnings() -> None:
    table = segment_customers(build_table([]), THRESHOLDS)
    warnings = churn_warnings(table, date(2026, 3, 31), THRESHOLDS)
    assert warnings.empty
    assert list(warnings.columns) == list(WARNING_COLUMNS)
    assert warning_kpis(warnings) == {
        "churn_warnings_count": 0.0,
        "churn_warnings_high": 0.0,
        "revenue_at_risk": 0.0,
    }


def test_an_unsegmented_table_is_refused() -> None:
    with pytest.raises(ValueError, match="segment_customers"):
        churn_warnings(build_table([buyer("a", last=1)]), date(2026, 3, 31), THRESHOLDS)


# -- the full path on the canonical data -----------------------------------------------


def full_path(loaded: LoadedDb) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = extract_as_of(loaded.engine, CATALOG, AS_OF, THRESHOLDS)
    table = segment_customers(customer_table(frames, AS_OF), THRESHOLDS)
    return table, churn_warnings(table, AS_OF, THRESHOLDS)


def test_full_path_by_hand(canonical_db: LoadedDb) -> None:
    table, warnings = full_path(canonical_db)

    def k(number: int) -> str:
        return customer_key(number, canonical_db.id_type)

    # T = 2026-06-30 ends June: quiet months April-June, lookback 2025-04-01..2026-03-31.
    # 2 (Bob): a complaint open since 06-27 10:00 (86 h); bought in June: not quiet.
    #   Tier C, diamond (2nd of 7 buyers) -> medium; at risk = revenue_12m 799.75.
    # 7 (He): bought 2025-09-29 and 2026-03-30 (lookback, 700 net), nothing since.
    #   Tier C, silver (3rd of 7) -> medium; at risk 700.
    # 3 (Chen): refund only, a complaint open since 06-29 08:00 (40 h) -> low, at risk 0.
    # Not warned: 6's complaint is exactly 24 h old; 1's is 9 h old.
    assert warnings["customer_id"].tolist() == [k(2), k(7), k(3)]
    assert warnings["level"].tolist() == ["medium", "medium", "low"]
    assert warnings["revenue_at_risk"].tolist() == pytest.approx([799.75, 700.0, 0.0])
    assert warnings["signals"].tolist() == ["complaint_open", "no_order_3m", "complaint_open"]

    segments = table.set_index("customer_id")
    assert segments.loc[k(6), "tier"] == "A"  # 180,000 in 12 months, 4 rolling quarters
    assert segments["value_tier"].value_counts().to_dict() == {
        "iron": 8,  # 3, 4, 5, 10, 12, 13, 14, 15
        "bronze": 4,  # 8, 9, 11 and the lapsed 17
        "diamond": 2,  # 6, 2
        "silver": 2,  # 7, 1
    }
    assert segments.loc[k(7), "value_group"] == "high_dormant"  # last order T-92
    assert segments.loc[k(17), "rfm_segment"] == "lost"

    kpis = as_of_kpis(table, warnings)
    assert kpis["customers_total"] == 16  # 17 registered, 16 signs up after T
    assert kpis["buyers_total"] == 8  # 1, 2, 6, 7, 8, 9, 11, 17
    assert kpis["buyers_12m"] == 7  # all but 17
    # 600 + 799.75 - 120 + 180,000 + 700 + 88 + 66.60 + 59.90
    assert kpis["revenue_12m"] == pytest.approx(182_194.25)
    assert kpis["churn_warnings_count"] == 3
    assert kpis["revenue_at_risk"] == pytest.approx(1499.75)


def to_text_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer-id keys mapped to the canonical text keys."""
    out = frame.copy()
    for column in ("customer_id", "referred_by"):
        if column in out:
            out[column] = (
                out[column]
                .map(lambda v: text_id("customer", int(v)), na_action="ignore")
                .astype("string")
            )
    return out


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("customer_id").reset_index(drop=True)


@pytest.mark.parametrize("id_type", ["int", "text"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS[1:])
def test_full_path_equal_on_every_database(
    loaded_db_factory: Callable[..., LoadedDb], backend: str, id_type: IdType
) -> None:
    reference = full_path(loaded_db_factory("duckdb", id_type))
    other = full_path(loaded_db_factory(backend, id_type))
    for expected, actual in zip(reference, other, strict=True):
        pd.testing.assert_frame_equal(
            comparable(actual), comparable(expected), check_exact=False, atol=0.005
        )


def test_full_path_equal_for_int_and_text_ids(loaded_db_factory: Callable[..., LoadedDb]) -> None:
    as_int = full_path(loaded_db_factory("duckdb", "int"))
    as_text = full_path(loaded_db_factory("duckdb", "text"))
    for ints, texts in zip(as_int, as_text, strict=True):
        pd.testing.assert_frame_equal(
            comparable(to_text_ids(ints)), comparable(texts), check_exact=False, atol=0.005
        )


# -- calling order ------------------------------------------------------------------------


def ranked_ids(expected, at_risk, levels):
    from crm_batch.kpi.churn import LEVELS, rank_for_calls

    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(len(at_risk))],
            "revenue_at_risk": at_risk,
            "level": pd.Categorical(levels, categories=LEVELS),
        }
    )
    if expected is not None:
        frame["expected_revenue_12m"] = expected
    return rank_for_calls(frame)["customer_id"].tolist()


def test_calls_rank_by_what_a_call_can_still_save() -> None:
    # c0 spent most but is probably gone (expected 50); c1 still buys (expected 900)
    assert ranked_ids([50.0, 900.0, 400.0], [9000.0, 1000.0, 500.0], ["high"] * 3) == [
        "c1",
        "c2",
        "c0",
    ]


def test_ties_and_missing_predictions_fall_back_to_past_revenue_then_level() -> None:
    # equal expected value: past revenue at risk decides, then the level (high first)
    ids = ranked_ids(
        [100.0, 100.0, 100.0, float("nan")],
        [10.0, 30.0, 30.0, 99999.0],
        ["low", "low", "high", "high"],
    )
    assert ids == ["c2", "c1", "c0", "c3"]  # unscored last


def test_without_a_value_model_the_order_is_past_revenue_at_risk() -> None:
    nan = float("nan")
    assert ranked_ids([nan, nan], [5.0, 7.0], ["low", "low"]) == ["c1", "c0"]
    assert ranked_ids(None, [5.0, 7.0], ["low", "low"]) == ["c0", "c1"]  # kept as given
