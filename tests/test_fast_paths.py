"""The fast paths give exactly what the plain paths give (no timings here).

* Arrow typing (DuckDB, ADBC) against the per-value typing of row tuples;
* PostgreSQL through ADBC: typed literals against ``$n`` parameters, and the fall-backs
  to row tuples (a numeric id, ADBC unable to connect);
* integer keys against text hashing, the histogram/sort ranks against pandas' rank,
  team views against boolean masks, the precomputed migration alignment against the
  id lookup, day counts against pandas' timedeltas;
* every dialect variant (``*.duckdb.sql``, ``*.postgresql.sql``) against its portable
  query, on messy random data.

The benchmark (benchmarks/kpi_bench.py) measures the speed; these tests pin the answers.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import crm_batch.source.db as db
from crm_batch.config import SHIPPED_SQL_DIR, ThresholdSettings
from crm_batch.kpi import keys as keys_module
from crm_batch.kpi import migration, segments
from crm_batch.kpi.engine import TeamViews
from crm_batch.kpi.facts import _days_between
from crm_batch.kpi.keys import (
    align_to,
    has_duplicate_keys,
    integer_keys,
    positions,
    positions_many,
)
from crm_batch.periods import cohort_start
from crm_batch.source import conform, pg_arrow
from crm_batch.source.extract import as_of_params, contiguous
from crm_batch.source.extract_period import (
    ENDS_QUERY,
    PERIOD_ORDER_COLUMNS,
    ends_params,
    period_orders_of,
    split_ends,
)
from crm_batch.source.ids import IdentityCache, remembered_integer_keys
from crm_batch.source.mapping import SourceMapping, canonical_columns, load_mapping
from crm_batch.source.params import standard_params
from crm_batch.source.quality import (
    FUSED_QUERIES,
    check_names,
    check_params,
    fused_tasks,
    split_fused,
)
from crm_batch.source.sql_files import SqlCatalog, SqlQuery, parse_sql_file

COLUMNS = {
    "key_int": "id",
    "key_text": "id",
    "label": "text",
    "day": "date",
    "stamp": "timestamp",
    "count_big": "int",
    "count": "int",
    "amount": "money",
    "ratio": "float",
    "flag": "bool",
    "flag_int": "bool",
    "nothing": "text",
}


def _query(folder: Path, columns: dict[str, str], body: str = "select 1") -> SqlQuery:
    header = "\n".join(f"--   {name} {kind}: x" for name, kind in columns.items())
    path = folder / "shape.sql"
    path.write_text(f"-- shape: a test query\n-- columns:\n{header}\n{body}\n", encoding="utf-8")
    return parse_sql_file(path)


def _arrow_table() -> pa.Table:
    """One column per Arrow type the databases send, with NULLs and edge values."""
    return pa.table(
        {
            "key_int": pa.array([9007199254740993, None, -7], pa.int64()),
            "key_text": pa.array(["007", "1e3", None], pa.string()),
            "label": pa.array(["陈静", "", None], pa.large_string()),
            "day": pa.array([date(2026, 6, 30), None, date(2000, 2, 29)], pa.date32()),
            "stamp": pa.array([datetime(2026, 7, 1, 0, 0, 0, 5), None, datetime(1999, 1, 1)]),
            "count_big": pa.array([12, None, 0], pa.decimal128(38, 0)),  # DuckDB's sum(int)
            "count": pa.array([1, 2, None], pa.int32()),
            "amount": pa.array([1, None, -2], pa.decimal128(38, 2)),
            "ratio": pa.array([0.5, None, float("inf")], pa.float64()),
            "flag": pa.array([True, None, False]),
            "flag_int": pa.array([1, 0, None], pa.int8()),
            "nothing": pa.nulls(3),
        }
    )


def test_arrow_typing_matches_row_typing(tmp_path: Path) -> None:
    query = _query(tmp_path, COLUMNS)
    table = _arrow_table()
    fast = conform.conform_arrow(table, query)
    rows = pd.DataFrame({name: pd.Series(table.column(name).to_pylist(), dtype=object)
                         for name in table.column_names})  # fmt: skip
    slow = conform.conform_frame(rows, query)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["key_int"].tolist()[0] == "9007199254740993"


def _decimal_types() -> list[pa.DataType]:
    types = [pa.decimal128(38, 2), pa.decimal128(14, 2), pa.decimal128(38, 0), pa.decimal128(20, 6)]
    types.append(pa.decimal256(50, 2))
    for name, precision in (("decimal32", 9), ("decimal64", 18)):  # pyarrow >= 18
        if hasattr(pa, name):
            types.append(getattr(pa, name)(precision, 2))
    return types


@pytest.mark.parametrize("decimal_type", _decimal_types(), ids=str)
def test_decimals_become_the_nearest_float_like_python_decimals(
    decimal_type: pa.DataType,
) -> None:
    """Money read through Arrow equals money read as Python decimals, bit for bit
    (Arrow's own cast turned 19.99 into 19.990000000000002): nulls, sliced and chunked
    arrays, values past 2**53 and past int64 included."""
    rng = np.random.default_rng(11)
    scale, digits = decimal_type.scale, decimal_type.precision
    unscaled = [int(v) for v in rng.integers(-(10**8), 10**8, 3_000)]
    unscaled += [1999, -330, 0, 10 ** (digits - 1) - 1, -(10 ** (digits - 1) - 1)]
    if digits > 18:
        unscaled += [2**53 + 1, -(2**53) - 3, 2**63 + 5, -(2**64) - 7]
    values = [Decimal(n).scaleb(-scale) for n in unscaled]
    values[::97] = [None] * len(values[::97])
    array = pa.array(values, decimal_type)
    column = pa.chunked_array([array.slice(0, 1_000), array.slice(1_000).slice(7)])
    expected = [None if v is None else float(v) for v in values[:1_000] + values[1_007:]]
    got = conform.decimal_floats(column)
    want = np.array([np.nan if v is None else v for v in expected])
    np.testing.assert_array_equal(got, want)


def test_arrow_typing_of_an_empty_result_keeps_dtypes_and_a_chunk(tmp_path: Path) -> None:
    query = _query(tmp_path, COLUMNS)
    empty = pa.Table.from_batches([], schema=_arrow_table().schema)
    frame = conform.conform_arrow(empty, query)
    assert len(frame) == 0
    assert str(frame["key_int"].dtype) == "string"
    assert str(frame["count_big"].dtype) == "Int64"
    # pandas' merge_asof (campaign attribution) fails on an Arrow column without chunks
    assert frame["key_text"].array._pa_array.num_chunks == 1


def test_arrow_typing_of_tz_aware_timestamps_keeps_the_sessions_wall_time(
    tmp_path: Path,
) -> None:
    query = _query(tmp_path, {"stamp": "timestamp"})
    utc = pa.array([datetime(2026, 1, 5, 8, 30)], pa.timestamp("us", tz="UTC"))
    frame = conform.conform_arrow(pa.table({"stamp": utc}), query, timezone="Europe/Berlin")
    assert frame["stamp"].tolist() == [pd.Timestamp("2026-01-05 09:30")]


def test_a_value_that_does_not_convert_still_names_the_row(tmp_path: Path) -> None:
    query = _query(tmp_path, {"amount": "money"})
    table = pa.table({"amount": pa.array(["1.00", "ten"])})
    with pytest.raises(conform.DataError, match="row 2"):
        conform.conform_arrow(table, query)


# -- PostgreSQL through ADBC ---------------------------------------------------------------


def _pg_query(
    tmp_path: Path, name: str, columns: dict[str, str], params: str, body: str
) -> SqlQuery:
    header = "\n".join(f"--   {n} {k}: x" for n, k in columns.items())
    path = tmp_path / f"{name}.sql"
    declared = f"-- params:\n{params}\n" if params else ""
    path.write_text(
        f"-- {name}: a test query\n{declared}-- columns:\n{header}\n{body}\n", encoding="utf-8"
    )
    return parse_sql_file(path)


def test_postgres_typed_literals_and_parameters_give_the_same_frame(
    postgres_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dates, times and numbers are written as typed literals (ADBC's COPY path); a text
    bind keeps server-side parameters. Both come through ADBC with the same values."""
    calls: list[str] = []
    fetch = pg_arrow.fetch_arrow

    def spy(*args: object, **kwargs: object) -> object:
        calls.append("adbc")
        return fetch(*args, **kwargs)

    monkeypatch.setattr(pg_arrow, "fetch_arrow", spy)
    params = "--   day date: a day\n--   stamp timestamp: a time\n--   n int: a number"
    typed = "select :day as day, :stamp as stamp, :n + 1 as n"
    columns = {"day": "date", "stamp": "timestamp", "n": "int"}
    literal_query = _pg_query(tmp_path, "typed", columns, params, typed)
    text_query = _pg_query(
        tmp_path,
        "with_text",
        {**columns, "label": "text"},
        params + "\n--   label text: a text",
        typed + ", :label as label",
    )
    values = {"day": date(2026, 6, 30), "stamp": datetime(2026, 7, 1, 0, 0, 0, 5), "n": 41}
    engine = db.make_engine(postgres_url, connect_timeout=5)
    try:
        literal = db.run_query(engine, literal_query, values)
        bound = db.run_query(engine, text_query, {**values, "label": "it's"})
    finally:
        engine.dispose()
    assert calls == ["adbc", "adbc"]
    pd.testing.assert_frame_equal(literal, bound.drop(columns="label"))
    assert literal.loc[0, "day"] == pd.Timestamp("2026-06-30")
    assert literal.loc[0, "stamp"] == pd.Timestamp("2026-07-01 00:00:00.000005")
    assert literal.loc[0, "n"] == 42
    assert bound.loc[0, "label"] == "it's"


def test_typed_literals_are_rendered_from_typed_values_only() -> None:
    assert pg_arrow.is_typed_literal(date(2026, 6, 30))
    assert pg_arrow.is_typed_literal(datetime(2026, 7, 1))
    assert pg_arrow.is_typed_literal(3)
    assert pg_arrow.is_typed_literal(0.25)
    for value in ("2026-06-30", True, float("nan"), None, datetime(2026, 7, 1).astimezone()):
        assert not pg_arrow.is_typed_literal(value), value
    render = pg_arrow.TypedLiteral().literal_processor(None)
    assert render(date(2026, 6, 30)) == "DATE '2026-06-30'"
    assert render(datetime(2026, 7, 1, 0, 0, 0, 5)) == "TIMESTAMP '2026-07-01 00:00:00.000005'"
    assert render(-7) == "-7"


def test_postgres_numeric_ids_fall_back_to_the_row_typing(
    postgres_url: URL, tmp_path: Path
) -> None:
    query = _pg_query(
        tmp_path,
        "numeric_id",
        {"key": "id", "amount": "money"},
        "",
        "select cast(7.00 as numeric(10, 2)) as key, cast(1.50 as numeric(14, 2)) as amount",
    )
    engine = db.make_engine(postgres_url, connect_timeout=5)
    try:
        frame = db.run_query(engine, query, {})
    finally:
        engine.dispose()
    assert frame["key"].tolist() == ["7"]
    assert frame["amount"].tolist() == [1.5]


def test_postgres_without_an_adbc_connection_uses_row_tuples(
    postgres_url: URL,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unreachable(conn: object) -> str:
        return "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=2"

    monkeypatch.setattr(pg_arrow, "libpq_conninfo", unreachable)
    query = _pg_query(tmp_path, "plain", {"n": "int"}, "", "select 1 as n")
    engine = db.make_engine(postgres_url, connect_timeout=5)
    try:
        with caplog.at_level(logging.WARNING, logger="crm_batch.source.db"):
            first = db.run_query(engine, query, {})
            second = db.run_query(engine, query, {})
    finally:
        engine.dispose()
    assert first["n"].tolist() == second["n"].tolist() == [1]
    assert sum("ADBC driver cannot connect" in r.message for r in caplog.records) == 1


# -- keys, ranks, views ----------------------------------------------------------------


def _ids(values: list[object]) -> pd.Series:
    return pd.Series(values, dtype="string")


@pytest.mark.parametrize(
    ("values", "canonical"),
    [
        (["1", "-12", None, "9223372036854775807"], True),
        ([], True),
        ([None, None], True),
        (["007"], False),
        (["+7"], False),
        (["-0"], False),
        (["7.0"], False),
        (["1e3"], False),
        (["C001"], False),
        (["9223372036854775808"], False),
    ],
)
def test_integer_keys_accepts_only_canonical_integers(
    values: list[object], canonical: bool
) -> None:
    assert (integer_keys(_ids(values)) is not None) is canonical


def _first_positions(keys: pd.Series, values: pd.Series) -> np.ndarray:
    """The answer of positions() worked out in plain Python."""
    first: dict[str, int] = {}
    for position, value in enumerate(values.tolist()):
        if value is not pd.NA and value is not None:
            first.setdefault(value, position)
    return np.array([first.get(k, -1) if k is not pd.NA else -1 for k in keys.tolist()])


def test_integer_and_text_lookups_agree() -> None:
    rng = np.random.default_rng(3)
    values = _ids([None if n % 97 == 0 else str(n) for n in rng.integers(-50, 500, 2_000)])
    keys = [_ids([str(n) for n in rng.integers(-60, 560, 700)] + [None]), _ids([])]
    assert integer_keys(values) is not None  # the integer path
    for got, k in zip(positions_many(keys, values), keys, strict=True):
        np.testing.assert_array_equal(got, _first_positions(k, values))
    # one text key anywhere: the text path, with the same kind of answers
    text_keys = _ids(["007", *keys[0].tolist()])
    np.testing.assert_array_equal(positions(text_keys, values), _first_positions(text_keys, values))
    mixed = positions(_ids(["007", "5", None]), _ids(["5", "007", "5"]))
    np.testing.assert_array_equal(mixed, [1, 0, -1])


@pytest.mark.parametrize(
    ("numbers", "shape"),
    [
        (np.random.default_rng(4).permutation(np.arange(-300, 1_700)), "dense"),
        (np.arange(0, 4_000_000, 2_000), "sorted"),  # too sparse for a table, ascending
        (np.random.default_rng(5).permutation(np.arange(0, 4_000_000, 2_000)), "sorted"),
        (np.random.default_rng(6).integers(0, 900, 2_000), "sorted"),  # repeated keys
    ],
)
def test_integer_index_shapes_find_first_positions_like_text(
    numbers: np.ndarray, shape: str
) -> None:
    """Each shape of the integer index (direct table, binary search over ascending or
    sorted keys, repeated keys) gives the positions a plain Python lookup gives."""
    rng = np.random.default_rng(8)
    values = _ids([None if i % 211 == 5 else str(n) for i, n in enumerate(numbers)])
    probes = np.concatenate([rng.choice(numbers, 600), rng.integers(-5_000, 4_100_000, 400)])
    keys = _ids([None, *(str(n) for n in probes)])
    numeric = integer_keys(values)
    assert numeric is not None
    assert (keys_module._integer_index(numeric).slots is not None) is (shape == "dense")
    np.testing.assert_array_equal(positions(keys, values), _first_positions(keys, values))


def test_integer_index_never_matches_keys_at_the_int64_limits() -> None:
    """A key minus the table's low end wraps around near the int64 limits; such keys are
    outside the table, never a wrapped match."""
    top = 2**63 - 1
    values = _ids([str(n) for n in range(top - 2_000, top + 1)])  # dense, ends at the top
    keys = _ids([str(-(2**63)), str(-(2**63) + 1_000), str(top), str(top - 2_000), "0"])
    assert keys_module._integer_index(integer_keys(values)).slots is not None  # type: ignore[arg-type]
    np.testing.assert_array_equal(positions(keys, values), [-1, -1, 2_000, 0, -1])


@pytest.mark.parametrize(
    ("values", "repeated"),
    [
        (["3", "1", "2", None, None], False),  # missing ids are not repeats
        (["3", "1", "3"], True),  # dense table
        (["1", "2", "9000000000", "9000000000"], True),  # sparse: sorted
        ([str(n) for n in range(0, 10**7, 1000)], False),  # ascending
        (["a", "b", None, None], False),  # text
        (["a", "b", "a"], True),
        (["7", "007"], False),  # text, not integers: different customers
        ([], False),
    ],
)
def test_has_duplicate_keys(values: list[object], repeated: bool) -> None:
    assert has_duplicate_keys(_ids(values)) is repeated


def _naive_alignment(register: list[object], column: list[object]) -> tuple[list[int], bool]:
    """align_to's answer worked out in plain Python: per register key, the row of the
    column holding it (last one wins; only asked when no key repeats)."""
    present = [key for key in column if key is not None]
    row_of = {key: row for row, key in enumerate(column) if key is not None}
    return [row_of.get(key, -1) for key in register], len(present) != len(set(present))


@pytest.mark.parametrize("text", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_align_to_matches_plain_python(seed: int, text: bool) -> None:
    """Rows and the repeat flag, for columns with unregistered ids, missing ids and
    repeats inside and outside the register, on the integer and the text path."""
    rng = np.random.default_rng(seed)

    def key(n: int) -> str:
        return f"c{n}" if text else str(n)

    register = [key(n) for n in rng.permutation(300)[:250]]
    columns = []
    for _ in range(4):
        ids: list[object] = [key(n) for n in rng.permutation(400)[: rng.integers(0, 300)]]
        if rng.random() < 0.5 and ids:  # a repeat, of a registered id or not
            ids.append(ids[int(rng.integers(0, len(ids)))])
        if rng.random() < 0.5:
            ids += [None, None]  # missing ids are never repeats
        columns.append(ids)
    alignments = align_to(_ids(register), [_ids(c) for c in columns])
    for column, alignment in zip(columns, alignments, strict=True):
        rows, repeated = _naive_alignment(register, column)
        assert alignment.repeated is repeated
        if not repeated:
            np.testing.assert_array_equal(alignment.rows, rows)


def test_integer_ids_from_the_database_come_with_their_integers(tmp_path: Path) -> None:
    """conform_arrow keeps the integers of an integer id column, and integer_keys gives
    exactly what parsing the text would (one chunk, so contiguous keeps the column)."""
    query = _query(tmp_path, COLUMNS)
    table = pa.concat_tables([_arrow_table(), _arrow_table()])  # two chunks
    ids = conform.conform_arrow(table, query)["key_int"]
    found, remembered = remembered_integer_keys(ids)
    assert found
    assert remembered is not None
    parsed = keys_module._parse_integer_keys(keys_module._arrow(ids))
    assert parsed is not None
    for got, want in zip(remembered, parsed, strict=True):
        np.testing.assert_array_equal(got, want)
    assert ids.array._pa_array.num_chunks == 1
    assert contiguous(ids.to_frame())["key_int"].array._pa_array is ids.array._pa_array
    # text ids are not remembered as integers by the database layer
    assert not remembered_integer_keys(conform.conform_arrow(table, query)["key_text"])[0]


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).integers(0, 40, 5_000).astype(float),  # histogram path
        np.random.default_rng(2).normal(size=5_000).round(1),  # sort path, many ties
        np.array([3.0, -0.0, 0.0, 1e15, -1e15, 3.0]),
        np.array([2.5]),
    ],
)
def test_count_below_is_pandas_min_rank(values: np.ndarray) -> None:
    want = pd.Series(values).rank(method="min").to_numpy(dtype="int64") - 1
    np.testing.assert_array_equal(segments._count_below(values), want)
    np.testing.assert_array_equal(segments._count_below(-values), (
        pd.Series(-values).rank(method="min").to_numpy(dtype="int64") - 1
    ))  # fmt: skip


def test_team_views_are_boolean_masks() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": _ids([str(n) for n in range(9)]),
            "team": _ids(["b", "a", None, "b", "a", "c", None, "b", "a"]),
            "value": range(9),
        },
        index=range(10, 19),
    )
    views = TeamViews()
    for team in ["a", "b", "c", "nobody"]:
        want = frame[(frame["team"] == team).fillna(False).astype(bool)]
        pd.testing.assert_frame_equal(views.of(frame, team), want)
    assert views.of(frame, None) is frame


def test_tier_migration_with_a_known_alignment_matches_the_lookup() -> None:
    start = pd.DataFrame(
        {
            "customer_id": _ids(["1", "2", "3", "4"]),
            "tier": pd.Categorical(["A", None, "C", "B"], categories=["A", "B", "C"]),
        }
    )
    end = pd.DataFrame(
        {
            "customer_id": _ids(["3", "1", "5", "2"]),
            "tier": pd.Categorical(["B", "A", "C", "C"], categories=["A", "B", "C"]),
        }
    )
    where = positions(start["customer_id"], end["customer_id"])
    known = migration.tier_migration(start, end, where=where)
    pd.testing.assert_frame_equal(known, migration.tier_migration(start, end))
    as_text = migration.tier_migration(start.astype({"tier": "string"}), end)
    pd.testing.assert_frame_equal(known, as_text)


def test_days_between_floors_like_pandas() -> None:
    dates = pd.Series(
        pd.to_datetime(
            ["2026-06-30", None, "2026-07-01 13:00", "2020-01-01 23:59:59"], format="mixed"
        )
    )
    t = pd.Timestamp("2026-06-30")
    pd.testing.assert_series_equal(_days_between(dates, t), (t - dates).dt.days.astype("Int64"))


def test_contiguous_joins_chunks_and_keeps_values_and_dtypes() -> None:
    chunked = pa.chunked_array([["a", None], ["=cmd", "张三"]], pa.large_string())
    frame = pd.DataFrame(
        {
            "text": pd.Series(pd.arrays.ArrowStringArray(chunked)),
            "one_chunk": pd.Series(["x", "y", None, "z"], dtype="string"),
            "number": [1.5, 2.0, np.nan, 4.0],
        }
    )
    joined = contiguous(frame)
    assert joined["text"].array._pa_array.num_chunks == 1
    pd.testing.assert_frame_equal(joined, frame)

    def data_address(column: str, table: pd.DataFrame) -> int:
        return table[column].array._pa_array.chunk(0).buffers()[2].address

    assert data_address("one_chunk", joined) == data_address("one_chunk", frame)  # no copy
    assert contiguous(joined) is joined  # nothing left to join


# -- dialect variants of sql/ files ------------------------------------------------------

#: sql/ and sql/checks/ files with a faster shape for one dialect: (dialect, folder, name).
VARIANTS = sorted(
    (path.name.split(".")[-2], path.parent, path.name.split(".")[0])
    for folder in (SHIPPED_SQL_DIR, SHIPPED_SQL_DIR / "checks")
    for path in folder.glob("*.*.sql")
)
#: The test backend of each dialect (conftest's db_url_factory).
VARIANT_BACKENDS = {"duckdb": "duckdb", "postgresql": "postgres", "sqlite": "sqlite"}


def _messy_orders() -> dict[str, pd.DataFrame]:
    """Random customers and orders with every oddity the queries must treat alike:
    refunds (also without an order, also alone), cancelled rows, NULL and orphan
    customer ids, NULL and repeated order ids, undated rows and rows after T, customers
    without a signup date or signed up after T, several orders on one day."""
    rng = np.random.default_rng(7)
    customers = 400
    signup = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 1300, customers), "D")
    customer_frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, customers + 1),
            "team": rng.choice(["North", "South", None], customers),
            "signup_date": pd.Series(signup).where(rng.random(customers) > 0.03),
        }
    )
    n = 6000
    ids = rng.integers(1, customers + 40, n).astype("float")  # > customers: orphans
    ids[rng.random(n) < 0.02] = np.nan
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 1300, n), "D")
    order_id = np.arange(1, n + 1).astype("float")
    order_id[rng.choice(n, 5, replace=False)] = 17.0  # a repeated id
    order_id[rng.choice(n, 3, replace=False)] = np.nan
    orders = pd.DataFrame(
        {
            "order_id": pd.array(order_id, dtype="Int64"),
            "customer_id": pd.array(ids, dtype="Int64"),
            "order_date": pd.Series(day).where(rng.random(n) > 0.01),
            "amount": np.round(rng.uniform(1, 500, n), 2),
            "status": rng.choice(["paid", "paid", "paid", "refunded", "cancelled"], n),
        }
    )
    return {"customers": customer_frame, "orders": orders}


def _messy_mapping(folder: Path, dialect: str = "") -> SourceMapping:
    """Mapping files for :func:`_load_messy`'s tables: the columns they lack are NULL
    (cast to the types ``dialect`` knows: MySQL and MariaDB have no varchar casts, Spark
    SQL knows ``string``, not a bare ``varchar``)."""
    present = {
        "customers": {"customer_id", "team", "signup_date"},
        "orders": {"order_id", "customer_id", "order_date", "amount", "status"},
    }
    text_type = "string" if dialect == "spark" else "varchar"
    cast = {"id": "bigint", "text": text_type, "date": "date", "money": "decimal(14, 2)"}
    cast |= {"bool": "boolean"}
    if dialect in {"mysql", "mariadb"}:
        cast |= {"id": "signed", "text": "char", "bool": "signed"}
    for table, names in present.items():
        columns = [
            column.name
            if column.name in names
            else f"cast(null as {cast[column.kind]}) as {column.name}"
            for column in canonical_columns()[table]
        ]
        sql = f"select {', '.join(columns)} from {table}\n"
        (folder / f"{table}.sql").write_text(sql, encoding="utf-8")
    return load_mapping(folder)


def _load_messy(engine: Any, frames: dict[str, pd.DataFrame]) -> None:
    """The messy frames as tables customers(customer_id, team, signup_date) and
    orders(order_id, customer_id, order_date, amount decimal(14,2), status)."""
    columns = {
        "customers": "customer_id bigint, team varchar(20), signup_date date",
        "orders": "order_id bigint, customer_id bigint, order_date date, "
        "amount decimal(14, 2), status varchar(16)",
    }

    def plain(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, float) and np.isnan(value):
            return None
        if isinstance(value, pd.Timestamp):
            return value.date()
        return value.item() if isinstance(value, np.generic) else value

    with engine.begin() as conn:
        for table, frame in frames.items():
            conn.execute(text(f"create table {table} ({columns[table]})"))
            names = list(frame.columns)
            if engine.dialect.name == "duckdb":  # row by row takes seconds on DuckDB
                raw = conn.connection.driver_connection
                raw.register("messy_frame", frame)
                raw.execute(f"insert into {table} select {', '.join(names)} from messy_frame")
                raw.unregister("messy_frame")
                continue
            rows = [
                {name: plain(value) for name, value in zip(names, row, strict=True)}
                for row in frame.astype(object).itertuples(index=False)
            ]
            binds = ", ".join(f":{name}" for name in names)
            conn.execute(text(f"insert into {table} ({', '.join(names)}) values ({binds})"), rows)


@pytest.mark.parametrize("as_of", [date(2025, 12, 31), date(2026, 6, 30)])
@pytest.mark.parametrize("dialect", ["duckdb", "postgresql"])
def test_dialect_variants_return_the_rows_of_their_portable_query(
    db_url_factory: Callable[[str], URL], dialect: str, as_of: date, tmp_path: Path
) -> None:
    """Each ``<name>.<dialect>.sql`` gives exactly the rows of ``<name>.sql`` on that
    database (sorted: the variants may return them in another order), both read through
    mapping files over the messy tables (their other columns NULL, the optional
    relations absent)."""
    chosen = [(folder, name) for kind, folder, name in VARIANTS if kind == dialect]
    assert len(chosen) >= {"duckdb": 6, "postgresql": 1}[dialect], VARIANTS
    engine = db.make_engine(db_url_factory(VARIANT_BACKENDS[dialect]))
    params = {
        **standard_params(as_of),
        **as_of_params(as_of, ThresholdSettings()),
        **check_params(as_of, sample_rows=1000),
        **ends_params(as_of, as_of - timedelta(days=91), ThresholdSettings()),
        "cohort_start": cohort_start(as_of),
    }
    try:
        _load_messy(engine, _messy_orders())
        for folder, name in chosen:
            catalog = SqlCatalog(folder, _messy_mapping(tmp_path))
            variant = catalog.get(name, dialect)
            assert variant.path.name == f"{name}.{dialect}.sql"
            portable = catalog.get(name)  # the base file, read through the same mapping
            assert portable.path.name == f"{name}.sql"
            frames = []
            for query in (portable, variant):
                frame = db.run_query(engine, query, params)
                keys = list(frame.columns)
                frames.append(frame.sort_values(keys, na_position="first").reset_index(drop=True))
            assert len(frames[0]) > 0, name  # the messy data fails every check
            pd.testing.assert_frame_equal(frames[0], frames[1], obj=name)
    finally:
        engine.dispose()


#: The messy tables' column types (DuckDB names), as :func:`_load_messy` creates them.
MESSY_TYPES = {
    "customers": {"customer_id": "BIGINT", "team": "VARCHAR", "signup_date": "DATE"},
    "orders": {
        "order_id": "BIGINT",
        "customer_id": "BIGINT",
        "order_date": "DATE",
        "amount": "DECIMAL(14, 2)",
        "status": "VARCHAR",
    },
}


@pytest.mark.spark
@pytest.mark.slow
def test_spark_returns_the_rows_of_the_portable_queries_on_duckdb(
    spark_url_factory: Callable[[], str], db_url_factory: Callable[[str], URL], tmp_path: Path
) -> None:
    """Every sql/ and sql/checks/ query as Spark runs it (its ``*.spark.sql`` variant
    where there is one, else the portable file) gives exactly the rows of the portable
    query on DuckDB, on the messy tables through mapping files (the optional relations
    absent: their empty relations run on Spark too). One business date: each Spark query
    costs about a second of job scheduling, and the windows' edges are the same SQL."""
    as_of = date(2026, 6, 30)
    from fixtures.spark import load_frames

    from crm_batch.periods import period_containing
    from crm_batch.source.extract_period import period_params
    from crm_batch.source.spark import SparkSource

    spark_variants = [(folder, name) for kind, folder, name in VARIANTS if kind == "spark"]
    assert len(spark_variants) >= 2, VARIANTS
    frames_in = _messy_orders()
    source = SparkSource(spark_url_factory(), statement_timeout=300)
    engine = db.make_engine(db_url_factory("duckdb"))
    quarter = period_containing(as_of, "quarter")
    params = {
        **period_params(quarter, as_of, ThresholdSettings()),
        **ends_params(as_of, quarter.start - timedelta(days=1), ThresholdSettings()),
        **as_of_params(as_of, ThresholdSettings()),
        **check_params(as_of, sample_rows=1000),
        "cohort_start": cohort_start(as_of),
    }
    (tmp_path / "duckdb").mkdir()
    (tmp_path / "spark").mkdir()
    try:
        load_frames(source, frames_in, MESSY_TYPES)
        _load_messy(engine, frames_in)
        compared = 0
        for folder in (SHIPPED_SQL_DIR, SHIPPED_SQL_DIR / "checks"):
            portable_catalog = SqlCatalog(folder, _messy_mapping(tmp_path / "duckdb"))
            spark_catalog = SqlCatalog(folder, _messy_mapping(tmp_path / "spark", "spark"))
            for name in portable_catalog.names():
                portable = portable_catalog.get(name)
                on_spark = spark_catalog.get(name, "spark")
                if (folder, name) in spark_variants:
                    assert on_spark.path.name == f"{name}.spark.sql"
                frames = []
                for where, query in ((engine, portable), (source, on_spark)):
                    frame = db.run_query(where, query, params)
                    keys = list(frame.columns)
                    frame = frame.sort_values(keys, na_position="first")
                    frames.append(frame.reset_index(drop=True))
                pd.testing.assert_frame_equal(frames[0], frames[1], obj=name)
                compared += 1
        assert compared >= 30
    finally:
        source.dispose()


#: (start day, end day) pairs: a quarter, a month, a year (its start's 12 months end
#: before the end's begin), a first day (the start is the day before it).
ENDS = [
    (date(2025, 12, 31), date(2026, 3, 31)),
    (date(2026, 4, 30), date(2026, 5, 31)),
    (date(2024, 12, 31), date(2025, 12, 31)),
    (date(2026, 5, 31), date(2026, 6, 1)),
]


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "postgres", "mariadb"])
def test_both_ends_in_one_query_are_customer_facts_at_each_end(
    db_url_factory: Callable[[str], URL], backend: str, tmp_path: Path
) -> None:
    """customer_facts_ends.sql (the dialect's variant where there is one), cut apart by
    split_ends, gives exactly the rows customer_facts.sql gives at the period's end and
    at the day before it, and period_orders_of those period_customer_orders.sql gives for
    the days between, on messy data (refunds alone, NULL and orphan ids, several orders a
    day, rows after T)."""
    engine = db.make_engine(db_url_factory(backend))
    try:
        _load_messy(engine, _messy_orders())
        dialect = db.dialect_name(engine)
        catalog = SqlCatalog(SHIPPED_SQL_DIR, _messy_mapping(tmp_path, dialect))
        facts = catalog.get("customer_facts", dialect)
        both = catalog.get(ENDS_QUERY, dialect)
        in_period = catalog.get("period_customer_orders", dialect)
        assert tuple(in_period.column_names) == PERIOD_ORDER_COLUMNS

        def rows(frame: pd.DataFrame) -> pd.DataFrame:
            ordered = frame.sort_values("customer_id", na_position="first")
            return ordered.reset_index(drop=True)

        for start_day, end_day in ENDS:
            params = ends_params(end_day, start_day, ThresholdSettings())
            frame = db.run_query(engine, both, params)
            end, start = split_ends(frame, facts.column_names)
            for day, got in ((end_day, end), (start_day, start)):
                expected = db.run_query(engine, facts, as_of_params(day, ThresholdSettings()))
                assert len(expected) > 100, (backend, day)
                pd.testing.assert_frame_equal(rows(got), rows(expected), obj=f"{day}")
            bounds = {"period_start": start_day + timedelta(days=1), "period_end": end_day}
            expected = db.run_query(engine, in_period, bounds)
            assert expected["orders_in_period"].gt(0).any(), (backend, end_day)
            pd.testing.assert_frame_equal(
                rows(period_orders_of(frame)), rows(expected), obj=f"period to {end_day}"
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "postgres", "mariadb"])
def test_fused_order_checks_give_each_checks_own_rows(
    db_url_factory: Callable[[str], URL], backend: str, tmp_path: Path
) -> None:
    """orders_row_checks.sql (its dialect's variant), split by check, gives each of its
    seven checks exactly the rows and failing count of the check's own file, on messy
    data that fails all seven (bad amounts, unknown and odd-case statuses too)."""
    frames = _messy_orders()
    orders = frames["orders"]
    rng = np.random.default_rng(11)
    odd = rng.choice(len(orders), 40, replace=False)
    orders.loc[odd[:10], "amount"] = 0.0
    orders.loc[odd[10:20], "amount"] = -5.0
    orders.loc[odd[20:30], "status"] = "PAID"
    orders.loc[odd[30:], "status"] = None
    engine = db.make_engine(db_url_factory(backend))
    try:
        _load_messy(engine, frames)
        dialect = db.dialect_name(engine)
        catalog = SqlCatalog(SHIPPED_SQL_DIR / "checks", _messy_mapping(tmp_path, dialect))
        params = check_params(date(2026, 3, 31), sample_rows=10_000)
        fused = fused_tasks(catalog, dialect, check_names(catalog))
        assert set(fused) == set(FUSED_QUERIES)
        for query, given in fused.values():
            split = split_fused(db.run_query(engine, query, params), given)
            for name in given:
                alone = db.run_query(engine, catalog.get(name, dialect), params)
                assert len(alone) > 0, (backend, name)  # the data fails every check
                keys = list(alone.columns)
                pd.testing.assert_frame_equal(
                    split[name].sort_values(keys, na_position="first").reset_index(drop=True),
                    alone.sort_values(keys, na_position="first").reset_index(drop=True),
                    obj=name,
                )
    finally:
        engine.dispose()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_variants_fail_the_same_text_ids_as_the_portable_checks(
    spark_url_factory: Callable[[], str], db_url_factory: Callable[[str], URL], tmp_path: Path
) -> None:
    """The ``*.spark.sql`` checks exist for text ids (integer ids never fail them): on
    text ids with case variants and surrounding whitespace they return the failing rows
    the portable checks return on DuckDB, and some rows at all."""
    from fixtures.spark import load_frames

    from crm_batch.source.spark import SparkSource

    ids = ["C-1", "c-1", "C-1 ", " C-2", "C-3\t", "", "D-4", "d-4", "D-4\u00a0", "E-5"]
    frames = {
        "customers": pd.DataFrame(
            {
                "customer_id": ids,
                "team": ["North"] * len(ids),
                "signup_date": [pd.Timestamp("2024-01-01")] * len(ids),
            }
        ),
        "orders": pd.DataFrame(
            {
                "order_id": [1],
                "customer_id": ["C-1"],
                "order_date": [pd.Timestamp("2024-02-01")],
                "amount": [10.0],
                "status": ["paid"],
            }
        ),
    }
    types = {table: dict(columns) for table, columns in MESSY_TYPES.items()}
    types["customers"]["customer_id"] = types["orders"]["customer_id"] = "VARCHAR"
    source = SparkSource(spark_url_factory(), statement_timeout=300)
    engine = db.make_engine(db_url_factory("duckdb"))
    as_of = date(2026, 6, 30)
    params = check_params(as_of, sample_rows=1000)
    (tmp_path / "duckdb").mkdir()
    (tmp_path / "spark").mkdir()
    try:
        load_frames(source, frames, types)
        raw = engine.raw_connection()
        try:
            for table, frame in frames.items():
                columns = ", ".join(f"cast({c} as {t}) as {c}" for c, t in types[table].items())
                raw.driver_connection.register("text_frame", frame)
                raw.driver_connection.execute(
                    f"create table {table} as select {columns} from text_frame"
                )
                raw.driver_connection.unregister("text_frame")
            raw.commit()
        finally:
            raw.close()
        folder = SHIPPED_SQL_DIR / "checks"
        portable_catalog = SqlCatalog(folder, _messy_mapping(tmp_path / "duckdb"))
        spark_catalog = SqlCatalog(folder, _messy_mapping(tmp_path / "spark", "spark"))
        variants = [name for kind, where, name in VARIANTS if kind == "spark" and where == folder]
        assert variants
        for name in variants:
            results = []
            for where, query in (
                (engine, portable_catalog.get(name)),
                (source, spark_catalog.get(name, "spark")),
            ):
                frame = db.run_query(where, query, params)
                frame = frame.sort_values(list(frame.columns), na_position="first")
                results.append(frame.reset_index(drop=True))
            assert len(results[0]) > 0, name
            pd.testing.assert_frame_equal(results[0], results[1], obj=name)
    finally:
        source.dispose()
        engine.dispose()


def test_identity_cache_finds_the_same_object_only_and_forgets_it_with_the_object() -> None:
    cache = IdentityCache()
    kept, other = np.arange(3), np.arange(3)
    cache.put(kept, "index")
    assert cache.get(kept) == (True, "index")
    assert cache.get(other) == (False, None)  # equal values, another object
    del kept
    gc.collect()
    assert not cache._entries  # the entry went with its array
