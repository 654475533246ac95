"""KPI snapshots on DuckDB, SQLite, PostgreSQL and MariaDB: idempotent writes, filtered reads."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import URL, Engine
from test_kpi_facts import BACKEND_PARAMS

from crm_batch.app.snapshots import SNAPSHOT_COLUMNS, read_snapshots, write_snapshots
from crm_batch.schema import build_metadata
from crm_batch.source.db import make_engine

D1, D2, D3 = date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30)
AT = datetime(2026, 7, 1, 2, 30, 15)

#: Values exact in 6 significant digits: full precision has its own test below.
VALUES: dict[tuple[str, str], dict[str, float]] = {
    ("all", ""): {"customers_total": 16.0, "revenue_12m": 18_219.5, "aov_12m": 0.125},
    ("team", "North"): {"customers_total": 6.0, "revenue_12m": 1465.5, "aov_12m": float("nan")},
    ("team", "东区"): {"customers_total": 4.0, "revenue_12m": 180_788.0, "aov_12m": 2.5},
}


@pytest.fixture(params=BACKEND_PARAMS)
def engine(
    request: pytest.FixtureRequest, db_url_factory: Callable[[str], URL]
) -> Iterator[Engine]:
    engine = make_engine(db_url_factory(request.param), connect_timeout=5, statement_timeout=60)
    yield engine
    engine.dispose()


def row_count(engine: Engine) -> int:
    table = build_metadata().tables["kpi_snapshots"]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_write_then_read_back(engine: Engine) -> None:
    assert write_snapshots(engine, D2, VALUES, AT) == 9
    frame = read_snapshots(engine)
    assert list(frame.columns) == list(SNAPSHOT_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "as_of": "datetime64[ns]",
        "scope": "string",
        "team": "string",
        "kpi": "string",
        "value": "float64",
        "computed_at": "datetime64[ns]",
    }
    # sorted by as_of, scope, team, kpi
    assert list(zip(frame["scope"], frame["team"], frame["kpi"], strict=True))[:4] == [
        ("all", "", "aov_12m"),
        ("all", "", "customers_total"),
        ("all", "", "revenue_12m"),
        ("team", "North", "aov_12m"),
    ]
    got = {(r.scope, r.team, r.kpi): r.value for r in frame.itertuples()}
    for (scope, team), kpis in VALUES.items():
        for kpi, value in kpis.items():
            stored = got[(scope, team, kpi)]
            assert (math.isnan(stored) and math.isnan(value)) or stored == value, (team, kpi)
    assert set(frame["as_of"]) == {pd.Timestamp(D2)}
    assert set(frame["computed_at"]) == {pd.Timestamp(AT)}


def test_rewriting_a_date_replaces_it_and_leaves_other_dates(engine: Engine) -> None:
    write_snapshots(engine, D1, VALUES, AT)
    write_snapshots(engine, D2, VALUES, AT)
    later = AT + timedelta(hours=1)
    write_snapshots(engine, D2, {("all", ""): {"customers_total": 17.0}}, later)
    write_snapshots(engine, D2, {("all", ""): {"customers_total": 17.0}}, later)  # again
    assert row_count(engine) == 9 + 1  # D1's nine rows and D2's one
    d2 = read_snapshots(engine, start=D2, end=D2)
    assert d2[["kpi", "value"]].values.tolist() == [["customers_total", 17.0]]
    assert d2["computed_at"].tolist() == [pd.Timestamp(later)]
    assert len(read_snapshots(engine, end=D1)) == 9


def test_filters(engine: Engine) -> None:
    for day in (D1, D2, D3):
        write_snapshots(engine, day, VALUES, AT)
    north = read_snapshots(engine, kpis=["revenue_12m"], scope="team", team="North")
    assert north["as_of"].tolist() == [pd.Timestamp(d) for d in (D1, D2, D3)]
    assert set(north["value"]) == {1465.5}
    # start and end are inclusive
    window = read_snapshots(engine, kpis=["customers_total"], scope="all", start=D2, end=D3)
    assert window["as_of"].tolist() == [pd.Timestamp(D2), pd.Timestamp(D3)]
    assert read_snapshots(engine, team="东区", start=D3)["value"].tolist() == [
        2.5,
        4.0,
        180_788.0,
    ]
    assert read_snapshots(engine, kpis=[]).empty


def test_a_frame_writes_the_same_rows_as_a_mapping(engine: Engine) -> None:
    frame = pd.DataFrame(
        [
            {"scope": s, "team": t, "kpi": k, "value": v}
            for (s, t), kpis in VALUES.items()
            for k, v in kpis.items()
        ]
    )
    write_snapshots(engine, D1, VALUES, AT)
    write_snapshots(engine, D2, frame, AT)
    by_mapping = read_snapshots(engine, end=D1).drop(columns="as_of")
    by_frame = read_snapshots(engine, start=D2).drop(columns="as_of")
    pd.testing.assert_frame_equal(by_frame, by_mapping)


def test_nan_and_infinite_values_are_stored_as_null(engine: Engine) -> None:
    values = {("all", ""): {"a": float("nan"), "b": float("inf"), "c": None, "d": 0.0}}
    write_snapshots(engine, D1, values, AT)  # type: ignore[arg-type]
    got = read_snapshots(engine).set_index("kpi")["value"]
    assert got.isna().tolist() == [True, True, True, False]


def test_full_precision_round_trip(engine: Engine) -> None:
    values = {("all", ""): {"revenue_12m": 12_345_678.91, "share": 1 / 3}}
    write_snapshots(engine, D1, values, AT)
    got = read_snapshots(engine).set_index("kpi")["value"]
    assert got["revenue_12m"] == pytest.approx(12_345_678.91, rel=0, abs=1e-6)
    assert got["share"] == pytest.approx(1 / 3, rel=1e-12)


def test_a_failed_write_keeps_the_previous_set(engine: Engine) -> None:
    write_snapshots(engine, D1, VALUES, AT)

    def refuse_inserts(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            raise RuntimeError("the database went away")

    event.listen(engine, "before_cursor_execute", refuse_inserts)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            write_snapshots(engine, D1, {("all", ""): {"x": 1.0}}, AT)
    finally:
        event.remove(engine, "before_cursor_execute", refuse_inserts)
    assert row_count(engine) == 9


def test_computed_at_keeps_the_wall_time_to_the_second(engine: Engine) -> None:
    aware = datetime(2026, 7, 1, 2, 30, 15, 987_654, tzinfo=timezone(timedelta(hours=8)))
    write_snapshots(engine, D1, {("all", ""): {"x": 1.0}}, aware)
    assert read_snapshots(engine)["computed_at"].tolist() == [pd.Timestamp(AT)]


def test_reading_before_any_write_gives_an_empty_typed_frame(engine: Engine) -> None:
    frame = read_snapshots(engine)
    assert frame.empty
    assert list(frame.columns) == list(SNAPSHOT_COLUMNS)
    assert str(frame["value"].dtype) == "float64"


def test_writing_nothing_clears_the_date(engine: Engine) -> None:
    write_snapshots(engine, D1, VALUES, AT)
    assert write_snapshots(engine, D1, {}, AT) == 0
    assert row_count(engine) == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({("region", ""): {"x": 1.0}}, "scope must be 'all' or 'team'"),
        ({("all", "North"): {"x": 1.0}}, "scope 'all' has team ''"),
        ({("team", ""): {"x": 1.0}}, "scope 'team' names the team"),
        (pd.DataFrame({"scope": ["all"], "kpi": ["x"], "value": [1.0]}), "lacks column"),
        (
            pd.DataFrame({"scope": ["all"] * 2, "team": [""] * 2, "kpi": ["x"] * 2, "value": 1.0}),
            "appears twice",
        ),
    ],
)
def test_invalid_values_are_refused_before_anything_is_deleted(
    tmp_path: Any, values: Any, message: str
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'snapshots.sqlite'}")
    write_snapshots(engine, D1, VALUES, AT)
    with pytest.raises(ValueError, match=message):
        write_snapshots(engine, D1, values, AT)
    assert row_count(engine) == 9
