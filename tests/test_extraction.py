"""Every sql/ query on DuckDB, SQLite, PostgreSQL and MariaDB, with integer and text ids.

The queries are discovered from sql/ at collection time, so a file added by anyone is
covered without touching this module. Each runs on the canonical test data
(tests/fixtures/canonical.py) with the standard parameters of T = 2026-06-30 and the
period 2026Q2, must return exactly its declared columns with the declared dtypes, and
must give the same frame on all four databases. customer_facts and customers are
checked against values worked out by hand from the fixture rows.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import BACKENDS, ID_TYPES, SQL_DIR, LoadedDb
from fixtures.canonical import (
    AS_OF,
    ID_SPACES,
    LONG_NAME,
    PERIOD_END,
    PERIOD_START,
    canonical_frames,
    customer_key,
    text_id,
)
from sqlalchemy import text
from sqlalchemy.engine import URL

from crm_batch.errors import DataError, DependencyError, SqlContractError, StageTimeoutError
from crm_batch.source.conform import conform_frame, id_series
from crm_batch.source.db import check_connection, dialect_name, make_engine, run_query
from crm_batch.source.params import standard_params
from crm_batch.source.sql_files import SqlCatalog, SqlQuery, parse_sql_file
from crm_batch.urls import safe_url

CATALOG = SqlCatalog(SQL_DIR)
QUERY_NAMES = CATALOG.names()

#: The pandas dtype each header column type must come back as.
EXPECTED_DTYPES = {
    "id": "string",
    "text": "string",
    "date": "datetime64[ns]",
    "timestamp": "datetime64[ns]",
    "int": "Int64",
    "float": "float64",
    "money": "float64",
    "bool": "boolean",
}

#: Parameters some queries declare beyond standard_params, worked out by hand for
#: T = 2026-06-30, period 2026Q2, 7 attribution days, 3 quiet and 12 lookback months
#: (T ends its month, so the quiet months are April..June and the lookback the 12 before).
EXTRA_PARAMS: dict[str, Any] = {
    "attribution_end": date(2026, 7, 7),
    "attribution_end_at": datetime(2026, 7, 8),
    "quiet_end": date(2026, 7, 1),
    "quiet_start": date(2026, 4, 1),
    "lookback_start": date(2025, 4, 1),
}

#: A value for a parameter nobody told this module about yet (so new files still run).
FALLBACK_BY_TYPE: dict[str, Any] = {
    "date": AS_OF,
    "timestamp": datetime(2026, 7, 1),
    "int": 1,
    "float": 1.0,
    "text": "",
}


def query_params(query: SqlQuery, as_of: date = AS_OF) -> dict[str, Any]:
    """standard_params(T, 2026Q2) plus the known extras plus a typed fallback."""
    params = standard_params(as_of, PERIOD_START, PERIOD_END)
    for spec in query.params:
        if spec.name not in params:
            params[spec.name] = EXTRA_PARAMS.get(spec.name, FALLBACK_BY_TYPE[spec.type])
    return params


def run_named(loaded: LoadedDb, name: str, as_of: date = AS_OF) -> pd.DataFrame:
    query = CATALOG.get(name, dialect_name(loaded.engine))
    return run_query(loaded.engine, query, query_params(query, as_of))


def server_param(backend: str) -> Any:
    """A backend parameter carrying the server's marker (postgres, mariadb)."""
    marks = [getattr(pytest.mark, backend)] if backend in {"postgres", "mariadb"} else []
    return pytest.param(backend, marks=marks, id=backend)


def sort_all(frame: pd.DataFrame, query: SqlQuery) -> pd.DataFrame:
    """Rows in a database-independent order: by every column, money rounded to cents."""
    keys = pd.DataFrame(index=frame.index)
    for spec in query.columns:
        column = frame[spec.name]
        if spec.type in {"money", "float"}:
            column = column.round(2)
        keys[spec.name] = column
    order = keys.sort_values(list(keys.columns), na_position="first", kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def all_ids(id_type: str) -> set[str]:
    """Every key the canonical data holds, as frames show it."""
    found: set[str] = set()
    for frame in canonical_frames(id_type).values():  # type: ignore[arg-type]
        for column in frame.columns:
            if column in ID_SPACES:
                found.update(frame[column].dropna())
    return found


# -- every query, every database -------------------------------------------------------


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_returns_declared_columns_and_dtypes(canonical_db: LoadedDb, name: str) -> None:
    query = CATALOG.get(name, dialect_name(canonical_db.engine))
    frame = run_query(canonical_db.engine, query, query_params(query))

    assert list(frame.columns) == list(query.column_names)
    for spec in query.columns:
        assert str(frame[spec.name].dtype) == EXPECTED_DTYPES[spec.type], (
            f"{query.path.name}: {spec.name} ({spec.type}) came back as {frame[spec.name].dtype}"
        )
    known = all_ids(canonical_db.id_type)
    for spec in query.columns:
        if spec.type == "id":
            mangled = set(frame[spec.name].dropna()) - known
            assert not mangled, f"{spec.name}: keys not in the data (mangled?): {mangled}"


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_keeps_dtypes_with_no_data(canonical_db: LoadedDb, name: str) -> None:
    """Before the first row (T = 2020-01-01) the frames are empty or NULL, typed alike."""
    frame = run_named(canonical_db, name, as_of=date(2020, 1, 1))
    query = CATALOG.get(name, dialect_name(canonical_db.engine))
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        spec.name: EXPECTED_DTYPES[spec.type] for spec in query.columns
    }


@pytest.mark.parametrize("id_type", ID_TYPES)
@pytest.mark.parametrize("name", QUERY_NAMES)
@pytest.mark.parametrize("backend", [server_param(b) for b in BACKENDS if b != "duckdb"])
def test_frames_equal_across_databases(
    loaded_db_factory: Callable[..., LoadedDb], backend: str, name: str, id_type: str
) -> None:
    reference = loaded_db_factory("duckdb", id_type)
    other = loaded_db_factory(backend, id_type)
    query = CATALOG.get(name)
    expected = sort_all(run_named(reference, name), query)
    actual = sort_all(run_named(other, name), query)
    pd.testing.assert_frame_equal(
        actual, expected, check_exact=False, rtol=0, atol=0.005, obj=f"{name} on {backend}"
    )


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_frames_equal_for_int_and_text_ids(
    loaded_db_factory: Callable[..., LoadedDb], name: str
) -> None:
    """Same answers whether keys are integers or text, once the keys are mapped."""
    query = CATALOG.get(name)
    unknown = [s.name for s in query.columns if s.type == "id" and s.name not in ID_SPACES]
    if unknown:
        pytest.skip(f"{name}: no id space known for {', '.join(unknown)}")
    as_int = run_named(loaded_db_factory("duckdb", "int"), name)
    as_text = run_named(loaded_db_factory("duckdb", "text"), name)
    for spec in query.columns:
        if spec.type == "id":
            space = ID_SPACES[spec.name]
            as_int[spec.name] = as_int[spec.name].map(
                lambda v, space=space: text_id(space, int(v)), na_action="ignore"
            )
    pd.testing.assert_frame_equal(
        sort_all(as_int, query), sort_all(as_text, query), check_exact=False, atol=0.005
    )


# -- hand-checked values ---------------------------------------------------------------


def test_standard_params_window_boundaries() -> None:
    params = standard_params(AS_OF, PERIOD_START, PERIOD_END)
    assert params["start_12m"] == date(2025, 6, 30)  # T-365: excluded from (T-365, T]
    assert params["start_90d"] == date(2026, 4, 1)  # T-90: excluded from (T-90, T]
    assert params["q1_end"] == date(2025, 9, 30)  # T-273
    assert params["q2_end"] == date(2025, 12, 30)  # T-182
    assert params["q3_end"] == date(2026, 3, 31)  # T-91
    assert params["as_of_end_at"] == datetime(2026, 7, 1)
    assert params["complaint_cutoff_at"] == datetime(2026, 6, 30)
    assert params["period_start_at"] == datetime(2026, 4, 1)
    assert params["period_end_at"] == datetime(2026, 7, 1)


FACT_COLUMNS = [
    "first_order_date",
    "last_order_date",
    "orders_total",
    "revenue_total",
    "orders_12m",
    "revenue_12m",
    "orders_90d",
    "revenue_90d",
    "refunds_total",
    "quarters_active_4q",
    "order_days",
    "repeat_paid",
]

#: customer_facts for T = 2026-06-30, worked out by hand from the fixture rows. The last
#: two: distinct paid-order days, and the paid amounts after the first of them.
EXPECTED_FACTS: dict[int, tuple[Any, ...]] = {
    # Alice: T, T-90, T-91 inside 12m; T-365, T-366 lifetime only; T+1 invisible.
    # 90d = (2026-04-01, 2026-06-30]: only T. Quarters: T, T-90 -> q4; T-91 -> q3.
    1: ("2025-06-29", "2026-06-30", 5, 1500.00, 3, 600.00, 1, 100.00, 0.00, 2, 5, 1000.00),
    # Bob: paid 1000 (T-10) + 80.25 (T-200); refunds 250.50 (T-5) + 30 (T-89);
    # the cancelled 5000 is ignored. 90d: 1000 - 250.50 - 30. Quarters: q2 (T-200), q4.
    2: ("2025-12-12", "2026-06-20", 2, 799.75, 2, 799.75, 1, 719.50, 280.50, 2, 2, 1000.00),
    # Chen: only a refund of 120 at T-20: no order, negative revenue everywhere.
    3: (None, None, 0, -120.00, 0, -120.00, 0, -120.00, 120.00, 0, 0, 0.00),
    # Guo: 6 x 30,000 in (T-365, T] on T-300, T-273 (q1), T-272, T-182 (q2), T-181 (q3),
    # T-1 (q4); 12,345.67 at T-400 lifetime only.
    6: ("2025-05-26", "2026-06-29", 7, 192345.67, 6, 180000.00, 1, 30000.00, 0.00, 4, 7, 180000.00),
    # He: 500 at T-274 (q1), 150 + 50 on the same day T-92 (q3): 3 orders, 2 quarters,
    # 2 order days (the repeat day's 200 is the repeat spend).
    7: ("2025-09-29", "2026-03-30", 3, 700.00, 3, 700.00, 0, 0.00, 0.00, 2, 2, 200.00),
    8: ("2026-05-01", "2026-05-01", 1, 88.00, 1, 88.00, 1, 88.00, 0.00, 1, 1, 0.00),
    # Kong: 66.60 at T-30; the cancelled 10 at T-29 is ignored.
    9: ("2026-05-31", "2026-05-31", 1, 66.60, 1, 66.60, 1, 66.60, 0.00, 1, 1, 0.00),
    11: ("2026-05-31", "2026-05-31", 1, 59.90, 1, 59.90, 1, 59.90, 0.00, 1, 1, 0.00),
    # Wang Fang: one order on 2024-11-11, outside every window.
    17: ("2024-11-11", "2024-11-11", 1, 1111.11, 0, 0.00, 0, 0.00, 0.00, 0, 1, 0.00),
}


def test_customer_facts_match_hand_computed_values(canonical_db: LoadedDb) -> None:
    facts = run_named(canonical_db, "customer_facts").set_index("customer_id")
    expected_ids = {customer_key(n, canonical_db.id_type) for n in EXPECTED_FACTS}
    # Du (only a cancelled order), prospects and non-buyers have no row
    assert set(facts.index) == expected_ids
    for number, values in EXPECTED_FACTS.items():
        row = facts.loc[customer_key(number, canonical_db.id_type)]
        for column, want in zip(FACT_COLUMNS, values, strict=True):
            got = row[column]
            where = f"customer {number} {column}"
            if column.endswith("_date"):
                assert pd.isna(got) if want is None else got == pd.Timestamp(want), where
            elif isinstance(want, float):
                assert got == pytest.approx(want, abs=0.005), where
            else:
                assert got == want, where


def test_customer_facts_window_boundaries_land_on_the_right_side(
    canonical_db: LoadedDb,
) -> None:
    facts = run_named(canonical_db, "customer_facts").set_index("customer_id")
    alice = facts.loc[customer_key(1, canonical_db.id_type)]
    assert alice["last_order_date"] == pd.Timestamp("2026-06-30"), "T is inside, T+1 is not"
    assert alice["orders_90d"] == 1, "T-90 must fall outside (T-90, T]"
    assert alice["orders_12m"] == 3, "T-91 and T-90 inside, T-365 outside (T-365, T]"
    assert alice["orders_total"] == 5, "T-366 counts for lifetime; T+1 is not seen"
    bob = facts.loc[customer_key(2, canonical_db.id_type)]
    assert bob["revenue_90d"] == pytest.approx(719.50), "the refund at T-89 is netted in 90d"
    guo = facts.loc[customer_key(6, canonical_db.id_type)]
    assert guo["quarters_active_4q"] == 4, "T-273 closes quarter 1, T-182 closes quarter 2"


def test_customers_register_round_trips_hostile_values(canonical_db: LoadedDb) -> None:
    customers = run_named(canonical_db, "customers").set_index("customer_id")
    key = lambda n: customer_key(n, canonical_db.id_type)  # noqa: E731
    # 16 signs up on T+1; 5 signs up on T itself and is in
    assert set(customers.index) == {key(n) for n in range(1, 18) if n != 16}
    assert customers.loc[key(11), "name"] == "=cmd|' /C calc'!A0"
    assert customers.loc[key(12), "name"] == "<script>alert('x')</script>"
    assert customers.loc[key(13), "name"] == "Line one\nLine two"
    assert len(customers.loc[key(14), "name"]) == 40_000
    assert customers.loc[key(14), "name"] == LONG_NAME
    assert customers.loc[key(15), "name"] == "", "an empty name is not NULL"
    assert pd.isna(customers.loc[key(15), "team"])
    assert customers.loc[key(17), "name"] == "  Wang Fang  ", "surrounding spaces are kept"
    assert customers.loc[key(3), "name"] == "陈静"
    assert pd.isna(customers.loc[key(2), "birthday"])
    assert customers.loc[key(5), "birthday"] == pd.Timestamp("2000-02-29")
    assert customers.loc[key(8), "referred_by"] == key(7)
    assert pd.isna(customers.loc[key(1), "referred_by"])
    opted_out = set(customers.index[customers["marketing_opt_out"].astype(bool)])
    assert opted_out == {key(2), key(12)}


# -- failures: unreachable, hung and slow databases ------------------------------------


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _url(scheme: str, port: int) -> str:
    return f"{scheme}://crm:s3cr3t-pw@127.0.0.1:{port}/crm"


DRIVER_SCHEMES = [
    pytest.param("postgresql+psycopg", id="psycopg"),
    pytest.param("mysql+pymysql", id="pymysql"),
]


@pytest.mark.parametrize("scheme", DRIVER_SCHEMES)
def test_closed_port_fails_at_once_naming_the_url_without_password(scheme: str) -> None:
    port = _closed_port()
    engine = make_engine(_url(scheme, port), connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(DependencyError) as caught:
        check_connection(engine)
    assert time.monotonic() - started < 30  # a hang bound: refused at once, not retried
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "crm:***@" in message
    assert "s3cr3t" not in message


@pytest.mark.parametrize("scheme", DRIVER_SCHEMES)
def test_run_query_on_closed_port_is_a_dependency_error(scheme: str, tmp_path: Path) -> None:
    query = _write_query(tmp_path, "one", "-- columns:\n--   n int: one", "select 1 as n")
    engine = make_engine(_url(scheme, _closed_port()), connect_timeout=2)
    with pytest.raises(DependencyError, match=r"one\.sql") as caught:
        run_query(engine, query, {})
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", DRIVER_SCHEMES)
def test_silent_server_ends_within_the_connect_timeout(scheme: str, silent_server: int) -> None:
    """A hang check, not a speed test: 2 s timeout, generous 15 s bound."""
    engine = make_engine(_url(scheme, silent_server), connect_timeout=2)  # default 900 s
    outcome: dict[str, BaseException | None] = {}

    def attempt() -> None:
        try:
            check_connection(engine)
            outcome["error"] = None
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=attempt, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=15)
    elapsed = time.monotonic() - started
    assert not worker.is_alive(), f"{scheme}: still waiting after {elapsed:.0f} s (a hang)"
    error = outcome["error"]
    assert isinstance(error, DependencyError), repr(error)
    assert f"127.0.0.1:{silent_server}" in str(error)
    assert "s3cr3t" not in str(error)


def _sleep_query(folder: Path, backend: str) -> SqlQuery:
    sleep = "pg_sleep(60)" if backend == "postgres" else "sleep(60)"
    return _write_query(
        folder, "sleepy", "-- columns:\n--   slept text: anything", f"select {sleep} as slept"
    )


def test_postgres_statement_timeout_is_a_timeout_error(postgres_url: URL, tmp_path: Path) -> None:
    engine = make_engine(postgres_url, connect_timeout=5, statement_timeout=1)
    started = time.monotonic()
    with pytest.raises(StageTimeoutError, match=r"sleepy\.sql"):
        run_query(engine, _sleep_query(tmp_path, "postgres"), {})
    assert time.monotonic() - started < 40  # the 1 s limit, not the 60 s sleep (hang bound)
    engine.dispose()


def test_mariadb_statement_timeout_is_a_timeout_error(mariadb_url: URL, tmp_path: Path) -> None:
    engine = make_engine(mariadb_url, connect_timeout=5, statement_timeout=1)
    started = time.monotonic()
    with pytest.raises(StageTimeoutError, match=r"sleepy\.sql"):
        run_query(engine, _sleep_query(tmp_path, "mariadb"), {})
    assert time.monotonic() - started < 40  # the 1 s limit, not the 60 s sleep (hang bound)
    engine.dispose()


def test_make_engine_keeps_the_urls_search_path_and_adds_the_timeout(postgres_url: URL) -> None:
    schema = postgres_url.query["options"].split("=", 1)[1]
    engine = make_engine(postgres_url, connect_timeout=5, statement_timeout=42)
    with engine.connect() as conn:
        assert conn.execute(text("show search_path")).scalar() == schema
        assert conn.execute(text("show statement_timeout")).scalar() == "42s"
    engine.dispose()


def test_make_engine_on_mariadb_sets_a_server_side_statement_limit(mariadb_url: URL) -> None:
    engine = make_engine(mariadb_url, connect_timeout=5, statement_timeout=42)
    with engine.connect() as conn:
        assert float(conn.execute(text("select @@session.max_statement_time")).scalar()) == 42
    engine.dispose()


def test_postgres_timestamptz_across_daylight_saving(postgres_url: URL, tmp_path: Path) -> None:
    """Session time zone Europe/Berlin: +01:00 in January, +02:00 in July, same wall time."""
    options = f"{postgres_url.query['options']} -c TimeZone=Europe/Berlin"
    engine = make_engine(postgres_url.update_query_dict({"options": options}), connect_timeout=5)
    query = _write_query(
        tmp_path,
        "tz",
        "-- columns:\n--   sent_at timestamp: when",
        "select cast('2026-01-05 08:30:00+00' as timestamptz) as sent_at\n"
        "union all select cast('2026-07-05 07:30:00+00' as timestamptz)\norder by 1",
    )
    try:
        frame = run_query(engine, query, {})
        shanghai = run_query(engine, query, {}, timezone="Asia/Shanghai")
    finally:
        engine.dispose()
    assert frame["sent_at"].tolist() == [
        pd.Timestamp("2026-01-05 09:30"),
        pd.Timestamp("2026-07-05 09:30"),
    ]
    assert shanghai["sent_at"].tolist() == [
        pd.Timestamp("2026-01-05 16:30"),
        pd.Timestamp("2026-07-05 15:30"),
    ]


def test_a_rejected_query_is_a_contract_error_not_a_dependency_error(
    canonical_db: LoadedDb, tmp_path: Path
) -> None:
    """SQLite and MariaDB report a missing table/column as an 'operational' error."""
    query = _write_query(
        tmp_path,
        "broken",
        "-- columns:\n--   customer_id id: key",
        "select c.customer_id as customer_id, c.no_such_column as x from customers as c",
    )
    with pytest.raises(SqlContractError, match=r"broken\.sql"):
        run_query(canonical_db.engine, query, {})


# -- conversion rules (no database) ----------------------------------------------------


def _write_query(folder: Path, name: str, header: str, body: str) -> SqlQuery:
    path = folder / f"{name}.sql"
    path.write_text(f"-- {name}: a test query\n-- params:\n{header}\n{body}\n", encoding="utf-8")
    return parse_sql_file(path)


def _query(tmp_path: Path, columns: dict[str, str]) -> SqlQuery:
    header = "-- columns:\n" + "\n".join(f"--   {n} {t}: x" for n, t in columns.items())
    select = ", ".join(f"1 as {n}" for n in columns)
    return _write_query(tmp_path, "shape", header, f"select {select}")


def _frame(**columns: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})


def test_big_integer_ids_with_nulls_keep_every_digit(tmp_path: Path) -> None:
    engine = make_engine("duckdb:///:memory:")
    query = _write_query(
        tmp_path,
        "big",
        "-- columns:\n--   customer_id id: key",
        "select * from (values (9007199254740993::bigint), (null)) as t(customer_id) "
        "order by customer_id nulls last",
    )
    frame = run_query(engine, query, {})
    assert frame["customer_id"].tolist()[0] == "9007199254740993"
    assert pd.isna(frame["customer_id"].tolist()[1])


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ([7, None], ["7", None]),
        ([7.0, float("nan")], ["7", None]),
        (["007", "1e3"], ["007", "1e3"]),
        ([b"C-1", None], ["C-1", None]),
        ([Decimal("12"), pd.NA], ["12", None]),
        ([np.int64(5), None], ["5", None]),
    ],
)
def test_id_series_renders_keys_as_text(raw: list[Any], want: list[Any]) -> None:
    got = id_series(pd.Series(raw, dtype=object)).tolist()
    assert [None if pd.isna(v) else v for v in got] == want


def test_integer_float_column_of_ids_keeps_digits() -> None:
    got = id_series(pd.Series([1.0, None, 3.0]))
    assert got.tolist()[0] == "1"
    assert got.tolist()[2] == "3"
    assert pd.isna(got.tolist()[1])


def test_decimal_bytes_and_numpy_values_are_typed(tmp_path: Path) -> None:
    query = _query(
        tmp_path,
        {"n": "int", "amount": "money", "label": "text", "flag": "bool", "other": "bool"},
    )
    frame = conform_frame(
        _frame(
            n=[Decimal("3"), None],  # MariaDB and PostgreSQL sum() answer in Decimal
            amount=[Decimal("10.05"), Decimal("-0.01")],
            label=[b"caf\xc3\xa9", None],  # binary-collated text arrives as bytes
            flag=[1, 0],  # tinyint(1)
            other=[b"\x01", np.bool_(False)],  # BIT(1) and numpy booleans
        ),
        query,
    )
    assert frame["n"].tolist()[0] == 3
    assert pd.isna(frame["n"].tolist()[1])
    assert frame["amount"].tolist() == pytest.approx([10.05, -0.01])
    assert frame["label"].tolist()[0] == "café"
    assert frame["flag"].tolist() == [True, False]
    assert frame["other"].tolist() == [True, False]


def test_tz_aware_timestamps_become_local_wall_time(tmp_path: Path) -> None:
    """Across a DST change the offsets differ per row; each keeps its own wall time."""
    query = _query(tmp_path, {"sent_at": "timestamp", "order_date": "date"})
    berlin_winter = datetime(2026, 1, 5, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    berlin_summer = datetime(2026, 7, 5, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    frame = conform_frame(
        _frame(sent_at=[berlin_winter, berlin_summer], order_date=[berlin_winter, None]), query
    )
    assert frame["sent_at"].tolist() == [
        pd.Timestamp("2026-01-05 09:30"),
        pd.Timestamp("2026-07-05 09:30"),
    ]
    assert frame["order_date"].tolist()[0] == pd.Timestamp("2026-01-05")


def test_timestamp_text_with_an_offset_keeps_its_wall_time(tmp_path: Path) -> None:
    query = _query(tmp_path, {"sent_at": "timestamp"})
    frame = conform_frame(_frame(sent_at=["2026-06-30 10:00:00+08:00", None]), query)
    assert frame["sent_at"].tolist()[0] == pd.Timestamp("2026-06-30 10:00")
    assert pd.isna(frame["sent_at"].tolist()[1])


def test_tz_aware_timestamps_convert_to_a_given_timezone(tmp_path: Path) -> None:
    query = _query(tmp_path, {"sent_at": "timestamp"})
    utc = datetime(2026, 6, 30, 18, 0, tzinfo=UTC)
    frame = conform_frame(_frame(sent_at=[utc]), query, timezone="Asia/Shanghai")
    assert frame["sent_at"].tolist() == [pd.Timestamp("2026-07-01 02:00")]


@pytest.mark.parametrize(
    ("kind", "values", "bad"),
    [
        ("int", [1, 2.5], "row 2"),
        ("int", [1, "many"], "row 2"),
        ("money", ["1.00", "ten"], "row 2"),
        ("date", ["2026-06-30", "yesterday"], "row 2"),
        ("bool", [True, "maybe"], "row 2"),
    ],
)
def test_a_value_that_does_not_convert_names_column_and_row(
    tmp_path: Path, kind: str, values: list[Any], bad: str
) -> None:
    query = _query(tmp_path, {"value_col": kind})
    with pytest.raises(DataError, match=rf"value_col.*{bad}"):
        conform_frame(_frame(value_col=values), query)


def test_duplicate_returned_column_is_a_contract_error(tmp_path: Path) -> None:
    query = _query(tmp_path, {"a": "int"})
    frame = pd.DataFrame([[1, 2]], columns=["a", "A"])
    with pytest.raises(SqlContractError, match="more than once"):
        conform_frame(frame, query)


def test_sqlite_timestamp_binds_compare_equal_to_stored_values(
    loaded_db_factory: Callable[..., LoadedDb], tmp_path: Path
) -> None:
    """Ticket 2 opened exactly at the cutoff: '<=' must include it on SQLite too."""
    query = _write_query(
        tmp_path,
        "at_cutoff",
        "--   cutoff timestamp: x\n-- columns:\n--   n int: tickets opened at or before",
        "select count(*) as n from tickets where opened_at <= :cutoff and opened_at >= :cutoff",
    )
    for backend in ("sqlite", "duckdb"):
        loaded = loaded_db_factory(backend, "int")
        frame = run_query(loaded.engine, query, {"cutoff": datetime(2026, 6, 30)})
        assert frame["n"].tolist() == [1], backend


def test_safe_url_hides_passwords_in_the_query_string() -> None:
    shown = safe_url("postgresql://crm@db.example/crm?password=s3cr3t&sslmode=require")
    assert "s3cr3t" not in shown
    assert "sslmode=require" in shown
    assert "db.example" in shown
