"""Per-customer facts: SQL aggregation through extract_as_of, joined by customer_table.

Expected values are worked out by hand in the comments; an independent pandas groupby
over the canonical order rows cross-checks the SQL on all four databases.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SQL_DIR, LoadedDb
from fixtures.canonical import AS_OF, IdType, customer_key, load_canonical, text_id
from sqlalchemy.engine import URL

from crm_batch.config import ThresholdSettings
from crm_batch.errors import DataError
from crm_batch.kpi.facts import KPIS, customer_table, fact_kpis
from crm_batch.source.conform import conform_frame
from crm_batch.source.db import make_engine
from crm_batch.source.extract import AS_OF_QUERIES, SourceFrames, extract_as_of
from crm_batch.source.sql_files import SqlCatalog

CATALOG = SqlCatalog(SQL_DIR)
THRESHOLDS = ThresholdSettings()
T = date(2026, 3, 31)  # the business date of the inline scenarios (not a quarter start)

BACKEND_PARAMS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]


def key(number: int, id_type: IdType) -> str:
    """Customer ``number`` as frames show it ("7" or the text key "00007")."""
    return customer_key(number, id_type)


def day(offset: int, base: date = T) -> date:
    """``base`` + ``offset`` days (negative = before)."""
    return base + timedelta(days=offset)


def load_rows(
    url: URL,
    id_type: IdType,
    customers: list[tuple[int, str | None, date, int | None]],
    orders: list[tuple[int, date, float, str]] = (),  # type: ignore[assignment]
    tickets: list[tuple[int, datetime, datetime | None, str]] = (),  # type: ignore[assignment]
) -> Any:
    """A fresh database with the given rows; returns its engine.

    customers: (number, team, signup_date, referred_by number); orders: (customer
    number, order_date, amount, status); tickets: (customer number, opened_at,
    resolved_at, kind). Order and ticket ids are numbered from 1.
    """

    def cid(number: int | None) -> str | None:
        if number is None:
            return None
        return str(number) if id_type == "int" else text_id("customer", number)

    def oid(space: str, number: int) -> str:
        return str(number) if id_type == "int" else text_id(space, number)

    frames = {
        "customers": pd.DataFrame(
            [
                {
                    "customer_id": cid(number),
                    "name": f"Customer {number}",
                    "team": team,
                    "owner": "owner",
                    "region": "region",
                    "acquisition_channel": "web",
                    "signup_date": signup,
                    "birthday": None,
                    "referred_by": cid(referrer),
                    "phone": None,
                    "email": None,
                    "marketing_opt_out": False,
                }
                for number, team, signup, referrer in customers
            ]
        ),
        "orders": pd.DataFrame(
            [
                {
                    "order_id": oid("order", i),
                    "customer_id": cid(number),
                    "order_date": when,
                    "amount": amount,
                    "status": status,
                    "channel": "web",
                    "category": "tea",
                }
                for i, (number, when, amount, status) in enumerate(orders, start=1)
            ]
        ),
        "tickets": pd.DataFrame(
            [
                {
                    "ticket_id": oid("ticket", i),
                    "customer_id": cid(number),
                    "opened_at": opened,
                    "resolved_at": resolved,
                    "kind": kind,
                    "satisfaction": None,
                }
                for i, (number, opened, resolved, kind) in enumerate(tickets, start=1)
            ]
        ),
    }
    engine = make_engine(url, connect_timeout=5, statement_timeout=60)
    load_canonical(engine, frames, id_type)
    return engine


@pytest.fixture(params=["int", "text"])
def id_type(request: pytest.FixtureRequest) -> IdType:
    return request.param


# -- the SQL facts on small inline data ------------------------------------------------

#: T = 2026-03-31: T-90 = 2025-12-31, T-91 = 2025-12-30, T-365 = 2025-03-31,
#: T-366 = 2025-03-30; rolling quarters (T-365, T-273] (T-273, T-182] (T-182, T-91]
#: (T-91, T].
SCENARIO_CUSTOMERS = [
    (1, "North", date(2024, 1, 1), None),  # boundaries
    (2, "North", date(2024, 1, 1), None),  # refunds net out, a cancelled order
    (3, "South", date(2025, 1, 1), None),  # the only row is a refund
    (4, "South", date(2025, 1, 1), None),  # the only order is cancelled
    (5, "South", T, None),  # prospect signed up on T
    (6, "East", date(2025, 1, 1), 2),  # only a future-dated order; referred by 2
    (7, "East", date(2025, 1, 1), 2),  # referred by 2, bought
    (8, None, day(1), 2),  # signs up after T: not registered on T
]
SCENARIO_ORDERS = [
    (1, T, 100.0, "paid"),
    (1, day(-90), 200.0, "paid"),
    (1, day(-91), 400.0, "paid"),
    (1, day(-365), 800.0, "paid"),
    (1, day(-366), 1600.0, "paid"),
    (1, day(1), 3200.0, "paid"),  # T+1: invisible
    (2, day(-10), 1000.0, "paid"),
    (2, day(-5), 250.50, "refunded"),
    (2, day(-3), 5000.0, "cancelled"),
    (2, day(-200), 80.25, "paid"),
    (2, day(-89), 30.0, "refunded"),
    (3, day(-20), 120.0, "refunded"),
    (4, day(-15), 700.0, "cancelled"),
    (6, day(1), 999.0, "paid"),
    (7, day(-400), 50.0, "paid"),
]
SCENARIO_TICKETS = [
    # open at T's end for 24 h + 1 s: over the limit
    (1, datetime(2026, 3, 30, 23, 59, 59), None, "complaint"),
    # open exactly 24 h at T's end: not over the limit
    (2, datetime(2026, 3, 31, 0, 0), None, "complaint"),
    # resolved after T: open on T, 3 days old
    (2, datetime(2026, 3, 28, 9, 0), datetime(2026, 4, 2, 9, 0), "complaint"),
    # resolved in T's last second: closed on T
    (3, datetime(2026, 3, 1, 9, 0), datetime(2026, 3, 31, 23, 59, 59), "complaint"),
    # resolved at midnight after T: that instant belongs to T+1, so open on T
    (3, datetime(2026, 3, 2, 9, 0), datetime(2026, 4, 1, 0, 0), "complaint"),
    # an open inquiry counts as an open ticket, not a complaint
    (4, datetime(2026, 1, 1, 9, 0), None, "inquiry"),
    # opened at midnight after T: not yet on T
    (5, datetime(2026, 4, 1, 0, 0), None, "complaint"),
]


@pytest.fixture
def scenario(
    request: pytest.FixtureRequest, db_url_factory: Callable[[str], URL], id_type: IdType
) -> tuple[pd.DataFrame, IdType]:
    engine = load_rows(
        db_url_factory(request.param),
        id_type,
        SCENARIO_CUSTOMERS,
        SCENARIO_ORDERS,
        SCENARIO_TICKETS,
    )
    try:
        frames = extract_as_of(engine, CATALOG, T, THRESHOLDS)
    finally:
        engine.dispose()
    return customer_table(frames, T).set_index("customer_id"), id_type


@pytest.mark.parametrize("scenario", BACKEND_PARAMS, indirect=True)
def test_facts_by_hand(scenario: tuple[pd.DataFrame, IdType]) -> None:
    table, id_type = scenario
    # customer 8 signs up after T: not in the register
    assert sorted(table.index) == sorted(key(n, id_type) for n in range(1, 8))

    alice = table.loc[key(1, id_type)]
    # lifetime: 100 + 200 + 400 + 800 + 1600 = 3100 in 5 orders (T+1 invisible)
    assert (alice.orders_total, alice.revenue_total) == (5, pytest.approx(3100.0))
    # (T-365, T]: T, T-90, T-91 -> 3 orders, 100 + 200 + 400 = 700
    assert (alice.orders_12m, alice.revenue_12m) == (3, pytest.approx(700.0))
    # (T-90, T]: T only -> 1 order, 100
    assert (alice.orders_90d, alice.revenue_90d) == (1, pytest.approx(100.0))
    # T-91 is in rolling quarter 3 (T-182, T-91]; T-90 and T in quarter 4 -> 2 quarters
    assert alice.quarters_active_4q == 2
    assert alice.first_order_date == pd.Timestamp(day(-366))
    assert alice.last_order_date == pd.Timestamp(T)
    assert (alice.recency_days, alice.tenure_days) == (0, 366)
    assert alice.aov == pytest.approx(620.0)  # 3100 / 5

    bob = table.loc[key(2, id_type)]
    # paid 1000 + 80.25, refunded 250.50 + 30, cancelled 5000 ignored
    assert bob.orders_total == 2
    assert bob.revenue_total == pytest.approx(799.75)  # 1080.25 - 280.50
    assert bob.refunds_total == pytest.approx(280.50)
    assert (bob.orders_12m, bob.revenue_12m) == (2, pytest.approx(799.75))
    # (T-90, T]: paid 1000 at T-10, refunds 250.50 at T-5 and 30 at T-89 -> 719.50
    assert (bob.orders_90d, bob.revenue_90d) == (1, pytest.approx(719.50))
    assert (bob.recency_days, bob.tenure_days) == (10, 200)
    assert bob.aov == pytest.approx(399.875)  # 799.75 / 2
    assert bool(bob.has_paid_order)

    chen = table.loc[key(3, id_type)]  # only a refund: not a buyer, negative revenue
    assert (chen.orders_total, chen.revenue_total) == (0, pytest.approx(-120.0))
    assert not chen.has_paid_order
    assert pd.isna(chen.first_order_date)
    assert pd.isna(chen.recency_days)
    assert np.isnan(chen.aov)

    for number in (4, 5, 6):  # cancelled only, prospect, future-dated only
        row = table.loc[key(number, id_type)]
        assert (row.orders_total, row.revenue_total, row.orders_12m) == (0, 0.0, 0)
        assert not row.has_paid_order
        assert pd.isna(row.last_order_date)
        assert pd.isna(row.tenure_days)


@pytest.mark.parametrize("scenario", BACKEND_PARAMS, indirect=True)
def test_service_and_referral_columns_by_hand(scenario: tuple[pd.DataFrame, IdType]) -> None:
    table, id_type = scenario
    got = table[["tickets_open", "complaints_open", "complaints_open_over_limit"]]
    expected = {
        1: (1, 1, 1),  # open 24 h + 1 s
        2: (2, 2, 1),  # 24 h exactly (not over) and 3 days (over)
        3: (1, 1, 1),  # one resolved on T, one at midnight after T (open on T)
        4: (1, 0, 0),  # an inquiry
        5: (0, 0, 0),  # opened after T
        6: (0, 0, 0),
        7: (0, 0, 0),
    }
    for number, values in expected.items():
        assert tuple(got.loc[key(number, id_type)]) == values, number
    assert table.loc[key(2, id_type), "oldest_open_complaint_at"] == pd.Timestamp(
        "2026-03-28 09:00"
    )
    # customer 2 referred 6 (future order only), 7 (bought) and 8 (signs up after T)
    referrals = table[["referrals_made", "referrals_successful"]]
    assert tuple(referrals.loc[key(2, id_type)]) == (2, 1)
    assert tuple(referrals.loc[key(1, id_type)]) == (0, 0)


@pytest.mark.parametrize("scenario", BACKEND_PARAMS[:2], indirect=True)
def test_fact_kpis_by_hand(scenario: tuple[pd.DataFrame, IdType]) -> None:
    table, _ = scenario
    kpis = fact_kpis(table.reset_index())
    assert kpis["customers_total"] == 7
    assert kpis["buyers_total"] == 3  # customers 1, 2, 7
    assert kpis["buyers_12m"] == 2  # 1 and 2; 7's only order is T-400
    assert kpis["orders_12m"] == 5  # 3 + 2
    # 700 + 799.75 + (-120: customer 3's refund) = 1379.75
    assert kpis["revenue_12m"] == pytest.approx(1379.75)
    assert kpis["aov_12m"] == pytest.approx(1379.75 / 5)
    assert set(kpis) == {kpi.name for kpi in KPIS}


def test_extract_logs_rows_and_seconds_per_query(
    loaded_db_factory: Callable[..., LoadedDb], caplog: pytest.LogCaptureFixture
) -> None:
    loaded = loaded_db_factory("duckdb", "int")
    with caplog.at_level("DEBUG", logger="crm_batch.source.extract"):
        frames = extract_as_of(loaded.engine, CATALOG, AS_OF, THRESHOLDS)
    for query_name in AS_OF_QUERIES.values():
        assert any(
            query_name in record.getMessage() and "rows in" in record.getMessage()
            for record in caplog.records
        ), query_name
    assert frames.as_of == AS_OF
    assert len(frames.customers) == 16  # 17 customers, one signs up after T


# -- an independent method: a plain pandas groupby over the order rows -----------------


def facts_by_groupby(orders: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """customer_facts' columns computed directly from the order rows with pandas."""
    t = pd.Timestamp(as_of)
    rows = orders[orders["status"].isin(["paid", "refunded"]) & (orders["order_date"] <= t)]
    rows = rows.assign(
        paid=rows["status"].eq("paid"),
        net=np.where(rows["status"].eq("paid"), rows["amount"], -rows["amount"]),
        age=(t - rows["order_date"]).dt.days,
    )
    paid = rows[rows["paid"]]
    out = pd.DataFrame(index=pd.Index(sorted(rows["customer_id"].unique()), name="customer_id"))
    out["first_order_date"] = paid.groupby("customer_id")["order_date"].min()
    out["last_order_date"] = paid.groupby("customer_id")["order_date"].max()
    out["orders_total"] = paid.groupby("customer_id").size()
    out["revenue_total"] = rows.groupby("customer_id")["net"].sum()
    for window in (365, 90):
        suffix = "12m" if window == 365 else "90d"
        inside = rows[rows["age"] < window]
        out[f"orders_{suffix}"] = inside[inside["paid"]].groupby("customer_id").size()
        out[f"revenue_{suffix}"] = inside.groupby("customer_id")["net"].sum()
    out["refunds_total"] = rows[~rows["paid"]].groupby("customer_id")["amount"].sum()
    quarter = pd.cut(paid["age"], [-1, 90, 181, 272, 364], labels=False)
    out["quarters_active_4q"] = (
        paid.assign(quarter=quarter).dropna(subset="quarter").groupby("customer_id")["quarter"]
    ).nunique()
    days = paid.groupby(["customer_id", "order_date"])["amount"].sum().reset_index()
    first_day = days.groupby("customer_id")["order_date"].transform("min")
    out["order_days"] = days.groupby("customer_id").size()
    out["repeat_paid"] = days[days["order_date"] > first_day].groupby("customer_id")["amount"].sum()
    counts = [c for c in out.columns if c.startswith(("orders_", "quarters_", "order_days"))]
    out[counts] = out[counts].fillna(0).astype("int64")
    money = [c for c in out.columns if c.startswith(("revenue_", "refunds_", "repeat_"))]
    out[money] = out[money].fillna(0.0)
    return out


def test_sql_facts_equal_a_pandas_groupby(canonical_db: LoadedDb) -> None:
    frames = extract_as_of(canonical_db.engine, CATALOG, AS_OF, THRESHOLDS)
    expected = facts_by_groupby(canonical_db.frames["orders"], AS_OF)
    actual = frames.facts.set_index("customer_id").sort_index()
    actual = actual.astype({c: "int64" for c in expected.columns if expected[c].dtype == "int64"})
    expected.index = expected.index.astype("string")
    pd.testing.assert_frame_equal(
        actual[list(expected.columns)], expected, check_exact=False, atol=0.005
    )


# -- customer_table on hand-built frames -----------------------------------------------


def typed(query_name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A frame typed exactly as run_query would type ``query_name``'s result."""
    query = CATALOG.get(query_name)
    return conform_frame(pd.DataFrame(rows, columns=list(query.column_names)), query)


def register(*ids: str) -> pd.DataFrame:
    return typed(
        "customers",
        [{"customer_id": i, "name": f"n{i}", "signup_date": date(2025, 1, 1)} for i in ids],
    )


def source_frames(customers: pd.DataFrame, **frames: list[dict[str, Any]]) -> SourceFrames:
    names = {field: query for field, query in AS_OF_QUERIES.items() if field != "customers"}
    built = {field: typed(query, frames.get(field, [])) for field, query in names.items()}
    return SourceFrames(as_of=T, customers=customers, **built)


def test_empty_inputs_give_an_empty_typed_table() -> None:
    table = customer_table(source_frames(register()), T)
    assert table.empty
    assert str(table["orders_12m"].dtype) == "int64"
    assert str(table["revenue_12m"].dtype) == "float64"
    assert str(table["recency_days"].dtype) == "Int64"
    assert str(table["has_paid_order"].dtype) == "bool"
    kpis = fact_kpis(table)
    assert kpis["customers_total"] == 0
    assert kpis["revenue_12m"] == 0
    assert np.isnan(kpis["aov_12m"])


def test_facts_of_unregistered_ids_are_dropped_and_missing_facts_are_zero() -> None:
    frames = source_frames(
        register("a", "b"),
        facts=[
            {"customer_id": "a", "orders_total": 2, "revenue_total": 50.0, "orders_12m": 1},
            {"customer_id": "zz", "orders_total": 9, "revenue_total": 900.0, "orders_12m": 9},
        ],
        referrals=[{"customer_id": "b", "referrals_made": 3, "referrals_successful": 1}],
    )
    table = customer_table(frames, T).set_index("customer_id")
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "aov"] == 25.0  # 50 / 2
    assert table.loc["b", "orders_total"] == 0
    assert np.isnan(table.loc["b", "aov"])
    assert table.loc["b", "referrals_made"] == 3
    assert table.loc["a", "referrals_made"] == 0
    assert table.loc["b", "tickets_open"] == 0


def test_dates_follow_their_customer_and_absent_ones_are_missing() -> None:
    """Dates are placed by customer like the numbers: the date of an unregistered id is
    dropped, a registered customer without facts gets NaT and no recency."""
    frames = source_frames(
        register("a", "b", "c"),
        facts=[
            {"customer_id": "c", "first_order_date": date(2024, 3, 1),
             "last_order_date": T - timedelta(days=10), "orders_total": 3},
            {"customer_id": "zz", "first_order_date": date(2020, 1, 1),
             "last_order_date": date(2020, 1, 2), "orders_total": 1},
            {"customer_id": "a", "first_order_date": T, "last_order_date": T,
             "orders_total": 1},
        ],
        service=[{"customer_id": "b", "tickets_open": 1,
                  "oldest_open_complaint_at": datetime(2026, 3, 30, 8, 30)}],
    )  # fmt: skip
    table = customer_table(frames, T).set_index("customer_id")
    assert table.loc["c", "first_order_date"] == pd.Timestamp("2024-03-01")
    assert table.loc["c", "recency_days"] == 10
    assert table.loc["a", "tenure_days"] == 0
    assert pd.isna(table.loc["b", "first_order_date"])
    assert pd.isna(table.loc["b", "recency_days"])
    assert table.loc["b", "oldest_open_complaint_at"] == pd.Timestamp("2026-03-30 08:30")
    assert pd.isna(table.loc["a", "oldest_open_complaint_at"])


@pytest.mark.parametrize("key", ["a", "7"])  # text ids and integer ids
@pytest.mark.parametrize("field", ["customers", "facts", "service"])
def test_duplicate_customer_rows_are_a_data_error_naming_the_query(field: str, key: str) -> None:
    rows = [{"customer_id": key}, {"customer_id": "9"}, {"customer_id": key}]
    if field == "customers":
        frames = source_frames(register(key, "9", key))
        source = "customers.sql"
    else:
        frames = source_frames(register(key), **{field: rows})
        source = f"{AS_OF_QUERIES[field]}.sql"
    with pytest.raises(DataError, match=rf"{source} returned 1 duplicate customer_id.*\b{key}\b"):
        customer_table(frames, T)


def test_duplicates_outside_the_register_are_an_error_too() -> None:
    """A query must return one row per customer even for ids the register lacks."""
    rows = [{"customer_id": "5"}, {"customer_id": "123456789"}, {"customer_id": "123456789"}]
    frames = source_frames(register("5", "6"), facts=rows)
    with pytest.raises(DataError, match=r"customer_facts.sql returned 1 duplicate.*123456789"):
        customer_table(frames, T)
