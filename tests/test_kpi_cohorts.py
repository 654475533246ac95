"""Cohort retention matrix and tier migration matrix.

The cohort matrix is checked three ways: on hand-made activity counts (arithmetic in
the comments), and end to end (cohort_activity.sql on each database, then
:func:`cohort_matrix`) against a plain Python double loop over the raw orders of a
random dataset that spans a year end.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import BACKENDS, SQL_DIR
from fixtures.canonical import load_canonical
from sqlalchemy.engine import URL

from crm_batch.kpi import cohorts, migration
from crm_batch.periods import cohort_start
from crm_batch.source.db import dialect_name, make_engine, run_query
from crm_batch.source.sql_files import SqlCatalog

CATALOG = SqlCatalog(SQL_DIR)


def activity(rows: list[tuple[str | None, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "team": pd.array([r[0] for r in rows], dtype="string"),
            "cohort_month": pd.array([r[1] for r in rows], dtype="Int64"),
            "months_since": pd.array([r[2] for r in rows], dtype="Int64"),
            "customers": pd.array([r[3] for r in rows], dtype="Int64"),
        }
    )


ACTIVITY = activity(
    [
        ("N", 202512, 0, 4),
        ("N", 202512, 1, 2),
        ("N", 202512, 3, 1),
        ("S", 202512, 0, 1),
        ("S", 202512, 2, 1),
        ("N", 202602, 0, 2),
        ("N", 202602, 1, 1),
        ("N", 202603, 0, 3),
        ("N", 202511, 0, 5),  # before the 4-month window: left out
    ]
)


def test_cohort_matrix_by_hand() -> None:
    got = cohorts.cohort_matrix(ACTIVITY, date(2026, 3, 15), cohorts=4)
    # cohorts 2025-12 .. 2026-03; 2026-01 has no customers and is left out
    assert got.index.tolist() == ["2025-12", "2026-02", "2026-03"]
    assert list(got.columns) == [cohorts.SIZE_COLUMN, 0, 1, 2, 3]
    nan = np.nan
    want = np.array(
        [
            [5, 1.0, 2 / 5, 1 / 5, 1 / 5],  # Dec: 4 + 1 customers; Jan 2, Feb 1, Mar 1
            [2, 1.0, 1 / 2, nan, nan],  # Feb: April and May have not begun
            [3, 1.0, nan, nan, nan],
        ]
    )
    np.testing.assert_allclose(got.to_numpy(dtype="float64"), want, equal_nan=True)


def test_cohort_matrix_for_one_team() -> None:
    north = ACTIVITY[ACTIVITY["team"] == "N"]
    got = cohorts.cohort_matrix(north, date(2026, 3, 15), cohorts=4)
    # Dec: 4 customers; Jan 2 -> 0.5, Feb none -> 0.0, Mar 1 -> 0.25
    assert got.loc["2025-12", [0, 1, 2, 3]].tolist() == [1.0, 0.5, 0.0, 0.25]


def test_cohort_matrix_of_nothing_is_empty() -> None:
    got = cohorts.cohort_matrix(activity([]), date(2026, 3, 15), cohorts=4)
    assert got.empty
    assert list(got.columns) == [cohorts.SIZE_COLUMN, 0, 1, 2, 3]


# -- end to end against a double loop ----------------------------------------------------


def random_data(seed: int) -> dict[str, pd.DataFrame]:
    rng = random.Random(seed)
    n_customers = 60
    customers = pd.DataFrame(
        {
            "customer_id": pd.array([str(i) for i in range(1, n_customers + 1)], "string"),
            "name": pd.array([f"c{i}" for i in range(n_customers)], dtype="string"),
            "team": pd.array(
                [rng.choice(["North", "South", None]) for _ in range(n_customers)], "string"
            ),
            "signup_date": pd.to_datetime(["2024-01-01"] * n_customers).astype("datetime64[ns]"),
            "marketing_opt_out": pd.array([False] * n_customers, dtype="boolean"),
        }
    )
    start = date(2024, 11, 1)
    rows = []
    for order_id in range(1, 401):
        rows.append(
            (
                str(order_id),
                str(rng.randint(1, n_customers + 5)),  # a few orders of unknown customers
                start + timedelta(days=rng.randint(0, 640)),  # up to 2026-08
                rng.choice(["paid", "paid", "paid", "refunded", "cancelled"]),
            )
        )
    orders = pd.DataFrame(rows, columns=["order_id", "customer_id", "order_date", "status"])
    orders["order_id"] = orders["order_id"].astype("string")
    orders["customer_id"] = orders["customer_id"].astype("string")
    orders["order_date"] = pd.to_datetime(orders["order_date"]).astype("datetime64[ns]")
    orders["amount"] = 10.0
    return {"customers": customers, "orders": orders}


def double_loop_matrix(
    data: dict[str, pd.DataFrame], as_of: date, n: int, team: str | None
) -> dict[str, list[float]]:
    """cohort label -> [size, share month 0, ..., share month n-1], by plain loops."""
    register = data["customers"]
    teams = {
        c: (None if pd.isna(t) else t)
        for c, t in zip(register["customer_id"], register["team"], strict=True)
    }
    months: dict[str, set[int]] = {}
    for order in data["orders"].itertuples():
        day = order.order_date.date()
        if order.status != "paid" or day > as_of:
            continue
        if team is not None and teams.get(order.customer_id) != team:
            continue
        months.setdefault(order.customer_id, set()).add(day.year * 12 + day.month - 1)
    last = as_of.year * 12 + as_of.month - 1
    result = {}
    for cohort in range(last - n + 1, last + 1):
        members = [c for c, m in months.items() if min(m) == cohort]
        if not members:
            continue
        row = [float(len(members))]
        for k in range(n):
            if cohort + k > last:
                row.append(math.nan)
            else:
                row.append(sum(1 for c in members if cohort + k in months[c]) / len(members))
        result[f"{cohort // 12:04d}-{cohort % 12 + 1:02d}"] = row
    return result


@pytest.mark.parametrize("backend", BACKENDS)
def test_sql_cohort_matrix_equals_a_double_loop(
    backend: str, db_url_factory: Callable[[str], URL]
) -> None:
    data = random_data(5)
    engine = make_engine(db_url_factory(backend), connect_timeout=5, statement_timeout=60)
    try:
        load_canonical(engine, data, "int")
        for as_of in (date(2025, 12, 31), date(2026, 1, 15), date(2026, 6, 30)):
            query = CATALOG.get("cohort_activity", dialect_name(engine))
            params = {"as_of": as_of, "cohort_start": cohort_start(as_of)}
            counts = run_query(engine, query, params)
            for team in (None, "North"):
                chosen = counts if team is None else counts[counts["team"] == team]
                got = cohorts.cohort_matrix(chosen, as_of, cohorts=12)
                want = double_loop_matrix(data, as_of, 12, team)
                assert got.index.tolist() == list(want), (as_of, team)
                np.testing.assert_allclose(
                    got.to_numpy(dtype="float64"),
                    np.array(list(want.values())),
                    equal_nan=True,
                    err_msg=f"as of {as_of}, team {team}",
                )
    finally:
        engine.dispose()


# -- tier migration ----------------------------------------------------------------------


def tiers(rows: list[tuple[str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "tier": pd.array([r[1] for r in rows], dtype="string"),
        }
    )


def test_tier_migration_by_hand() -> None:
    start = tiers(
        [
            ("c1", "A"),
            ("c2", "B"),
            ("c3", "C"),
            ("c4", "A"),
            ("c5", None),  # a prospect at the start
            ("c7", None),
            ("c8", "C"),  # gone from the register at the end
            ("c9", "B"),
        ]
    )
    end = tiers(
        [
            ("c1", "A"),  # A -> A
            ("c2", "A"),  # B -> A: up
            ("c3", "B"),  # C -> B: up
            ("c4", "C"),  # A -> C: down
            ("c5", "C"),  # none -> C: up (first order)
            ("c6", "C"),  # not registered at the start: none -> C, up
            ("c7", None),  # prospect both times
            ("c9", "C"),  # B -> C: down
        ]
    )
    got = migration.tier_migration(start, end)
    want = pd.DataFrame(
        [[1, 0, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 2, 1]],
        index=list(migration.TIER_ORDER),
        columns=list(migration.TIER_ORDER),
    )
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert got.index.tolist() == ["A", "B", "C", "none"]
    assert got.to_numpy().sum() == 9  # every customer once
    # upgrades: c2, c3, c5, c6; downgrades: c4, c8, c9
    assert migration.migration_kpis(got) == {"tier_upgrades": 4.0, "tier_downgrades": 3.0}


def test_tier_migration_of_nobody_is_a_zero_matrix() -> None:
    got = migration.tier_migration(tiers([]), tiers([]))
    assert got.shape == (4, 4)
    assert got.to_numpy().sum() == 0
    assert migration.migration_kpis(got) == {"tier_upgrades": 0.0, "tier_downgrades": 0.0}


def test_value_tier_migration() -> None:
    start = pd.DataFrame({"customer_id": ["a", "b"], "value_tier": ["silver", "iron"]})
    end = pd.DataFrame({"customer_id": ["a", "b"], "value_tier": ["diamond", "bronze"]})
    order = ("diamond", "silver", "bronze", "iron", "none")
    got = migration.tier_migration(start, end, "value_tier", order)
    assert got.loc["silver", "diamond"] == 1
    assert got.loc["iron", "bronze"] == 1
    assert got.to_numpy().sum() == 2


def test_cohort_start_is_the_first_day_of_the_oldest_cohort_shown() -> None:
    # 12 cohorts up to June 2026: July 2025 .. June 2026
    assert cohort_start(date(2026, 6, 30)) == date(2025, 7, 1)
    assert cohort_start(date(2026, 1, 15)) == date(2025, 2, 1)
    assert cohort_start(date(2026, 12, 1)) == date(2026, 1, 1)
    assert cohort_start(date(2026, 3, 31), cohorts=1) == date(2026, 3, 1)
    assert cohort_start(date(2026, 3, 31), cohorts=3) == date(2026, 1, 1)
