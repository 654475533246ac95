"""SQLite dates stored as other text never shift a window silently: the run stops with
the dates_stored_as_text check, naming the rows and the fix (issue: "SQLite dates stored
as text ('2011-12-09 00:00:00', what pandas.to_sql writes) silently move every window
boundary by a day")."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.canonical import AS_OF, canonical_frames, load_canonical
from sqlalchemy import Engine, text

from crm_batch.errors import DataError
from crm_batch.resources import SQL_DIR
from crm_batch.source.db import make_engine
from crm_batch.source.quality import check_source, checks_dir


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{(tmp_path / 'sales.sqlite').as_posix()}")
    load_canonical(engine, canonical_frames("int"), "int")
    yield engine
    engine.dispose()


def failures(engine: Engine) -> tuple[int, list[dict]]:
    report = check_source(engine, checks_dir(SQL_DIR), AS_OF)
    result = next(r for r in report.results if r.name == "dates_stored_as_text")
    return result.failing, result.sample.to_dict("records")


def test_dates_as_sqlalchemy_writes_them_pass(sqlite_engine: Engine) -> None:
    assert failures(sqlite_engine)[0] == 0


def test_pandas_style_text_dates_stop_the_run_naming_rows_and_fix(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:  # what pandas.DataFrame.to_sql writes
        conn.execute(text("update orders set order_date = order_date || ' 00:00:00'"))
        # a timestamp column holding dates only: '2026-06-30' sorts before its midnight
        conn.execute(text("update leads set created_at = substr(created_at, 1, 10)"))
    failing, sample = failures(sqlite_engine)
    orders = conn_count(sqlite_engine, "orders")
    leads = conn_count(sqlite_engine, "leads")
    assert failing == orders + leads
    assert {(row["table_name"], row["column_name"]) for row in sample} <= {
        ("leads", "created_at"),
        ("orders", "order_date"),
    }
    for row in sample:  # each example shows the value as stored
        stored = str(row["stored"])
        assert stored.endswith(" 00:00:00") if row["table_name"] == "orders" else len(stored) == 10
    with pytest.raises(DataError, match="dates_stored_as_text") as stopped:
        check_source(sqlite_engine, checks_dir(SQL_DIR), AS_OF).raise_for_errors()
    assert "date(order_date)" in str(stopped.value)  # the fix, not just the finding


def test_timestamps_without_the_fraction_are_refused(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:  # what pandas writes: no fraction of a second
        conn.execute(text("update touches set sent_at = substr(sent_at, 1, 19)"))
    assert failures(sqlite_engine)[0] == conn_count(sqlite_engine, "touches")


def test_numbers_in_a_date_column_are_refused_too(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(text("update customers set birthday = julianday(birthday)"))
    assert failures(sqlite_engine)[0] > 0


def conn_count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"select count(*) from {table}")).scalar_one()


def test_check_source_names_the_sqlite_fix_for_text_dates(sqlite_engine: Engine) -> None:
    from crm_batch.app.source_check import inspect_source
    from crm_batch.config import load_settings

    with sqlite_engine.begin() as conn:  # what pandas.to_sql writes into a date column
        conn.execute(text("update orders set order_date = order_date || ' 00:00:00'"))
    settings = load_settings(
        None, database_url=sqlite_engine.url.render_as_string(hide_password=False), environ={}
    )
    verdict = inspect_source(settings, sqlite_engine, AS_OF, count=False)
    (problem,) = verdict.column_errors()
    assert (problem.table, problem.column) == ("orders", "order_date")
    assert problem.fix == "date(...) as order_date"
    assert " 00:00:00'" in problem.line()  # the example as stored
    assert verdict.blocking == 1
