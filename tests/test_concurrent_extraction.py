"""Queries run at the same time give exactly what they give one after the other.

* extract_period and the data checks with several workers against one worker, on
  PostgreSQL (the default: two at a time) and DuckDB (sequential by default; threads
  sharing the engine must still agree);
* a failing query (rejected, past the statement timeout) ends the extraction with the
  error a sequential run raises, naming its file, and leaves no worker thread and no
  checked-out connection behind;
* run_concurrently's own contract: results by key, the first failure in the given
  order wins, tasks not started after a failure never run;
* the worker setting: dialect defaults, the environment override, bad values.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from conftest import SQL_DIR, LoadedDb
from sqlalchemy.engine import Engine

from crm_batch.config import ThresholdSettings
from crm_batch.errors import ConfigError, SqlContractError, StageTimeoutError
from crm_batch.periods import parse_period
from crm_batch.source import concurrent
from crm_batch.source.concurrent import WORKERS_ENV, query_workers, run_concurrently
from crm_batch.source.db import make_engine
from crm_batch.source.extract import AS_OF_QUERIES, SourceFrames
from crm_batch.source.extract_period import (
    FIRST_STARTED,
    PERIOD_QUERIES,
    PeriodFrames,
    extract_period,
)
from crm_batch.source.quality import check_source, checks_dir
from crm_batch.source.sql_files import SqlCatalog

SETTINGS = ThresholdSettings()
T = date(2026, 6, 30)
CATALOG = SqlCatalog(SQL_DIR)
QUARTER = parse_period("2026Q2")


def _frames_by_name(frames: PeriodFrames) -> dict[str, pd.DataFrame]:
    """Every frame of ``frames`` by a dotted name (start.facts, end.customers, ...)."""
    found: dict[str, pd.DataFrame] = {}
    for item in fields(frames):
        value = getattr(frames, item.name)
        if isinstance(value, pd.DataFrame):
            found[item.name] = value
        elif isinstance(value, SourceFrames):
            for inner in fields(value):
                frame = getattr(value, inner.name)
                if isinstance(frame, pd.DataFrame):
                    found[f"{item.name}.{inner.name}"] = frame
    return found


def _assert_same_frames(left: PeriodFrames, right: PeriodFrames, backend: str) -> None:
    assert (left.period, left.as_of, left.start.as_of, left.end.as_of) == (
        right.period,
        right.as_of,
        right.start.as_of,
        right.end.as_of,
    )
    ours, theirs = _frames_by_name(left), _frames_by_name(right)
    assert list(ours) == list(theirs)
    for name, frame in ours.items():
        other = theirs[name]
        if backend == "duckdb" and name.endswith(".facts"):
            # customer_facts.duckdb.sql has no ORDER BY: its row order is DuckDB's own
            # (it varies between sequential runs too); the rows must be the same
            frame = frame.sort_values("customer_id", ignore_index=True)
            other = other.sort_values("customer_id", ignore_index=True)
        pd.testing.assert_frame_equal(frame, other, check_exact=True, obj=name)


def _no_query_threads() -> bool:
    return not any(t.name.startswith("crm-query") for t in threading.enumerate())


@pytest.mark.parametrize(
    ("backend", "id_type", "period", "as_of"),
    [
        pytest.param("postgres", "int", "2026Q2", T, marks=pytest.mark.postgres, id="pg-int"),
        # a period ending before T: the register query runs as well
        pytest.param(
            "postgres", "text", "2026Q1", T, marks=pytest.mark.postgres, id="pg-text-past"
        ),
        pytest.param("duckdb", "int", "2026Q2", date(2026, 5, 15), id="duckdb-int"),
    ],
)
def test_concurrent_extraction_equals_sequential(
    loaded_db_factory: Callable[..., LoadedDb], backend: str, id_type: str, period: str, as_of: date
) -> None:
    db = loaded_db_factory(backend, id_type)
    quarter = parse_period(period)
    sequential = extract_period(db.engine, CATALOG, quarter, as_of, SETTINGS, workers=1)
    parallel = extract_period(db.engine, CATALOG, quarter, as_of, SETTINGS, workers=3)
    assert len(sequential.end.customers) > 0
    assert len(sequential.period_orders) > 0
    _assert_same_frames(parallel, sequential, backend)
    assert (sequential.register is sequential.end.customers) == (quarter.end >= as_of)
    assert db.engine.pool.checkedout() == 0
    assert _no_query_threads()


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), "duckdb"]
)
def test_concurrent_checks_equal_sequential(
    loaded_db_factory: Callable[..., LoadedDb], backend: str
) -> None:
    db = loaded_db_factory(backend, "text")
    folder = checks_dir(SQL_DIR)
    sequential = check_source(db.engine, folder, T, today=T, workers=1)
    parallel = check_source(db.engine, folder, T, today=T, workers=3)
    assert [r.name for r in parallel.results] == [r.name for r in sequential.results]
    assert parallel.counts() == sequential.counts()
    assert any(sequential.counts().values())  # the canonical data plants failing rows
    for ours, theirs in zip(parallel.results, sequential.results, strict=True):
        pd.testing.assert_frame_equal(ours.sample, theirs.sample, check_exact=True)
    assert parallel.render_text() == sequential.render_text()


def _broken_catalog(folder: Path, name: str, old: str, new: str) -> SqlCatalog:
    """A copy of sql/ where ``name``.sql has ``old`` replaced by ``new``."""
    shutil.copytree(SQL_DIR, folder, dirs_exist_ok=True)
    path = folder / f"{name}.sql"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return SqlCatalog(folder)


@pytest.mark.postgres
def test_a_rejected_query_names_its_file_and_leaves_nothing_open(
    loaded_db_factory: Callable[..., LoadedDb], tmp_path: Path
) -> None:
    db = loaded_db_factory("postgres", "int")
    catalog = _broken_catalog(
        tmp_path, "leads", "from mapped_leads as l", "from no_such_leads as l"
    )
    engine = make_engine(db.url, connect_timeout=5, statement_timeout=60)
    try:
        for workers in (1, 3):
            with pytest.raises(SqlContractError, match=r"leads\.sql.*no_such_leads") as caught:
                extract_period(
                    engine, catalog, parse_period("2026Q2"), T, SETTINGS, workers=workers
                )
            assert str(tmp_path / "leads.sql") in str(caught.value)
            assert engine.pool.checkedout() == 0
            assert _no_query_threads()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_statement_timeout_ends_the_extraction(
    loaded_db_factory: Callable[..., LoadedDb], tmp_path: Path
) -> None:
    db = loaded_db_factory("postgres", "int")
    catalog = _broken_catalog(
        tmp_path,
        "tickets",
        "from mapped_tickets as t",
        "from mapped_tickets as t, (select pg_sleep(60)) as s",
    )
    engine = make_engine(db.url, connect_timeout=5, statement_timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(StageTimeoutError, match=r"tickets\.sql"):
            extract_period(engine, catalog, QUARTER, T, SETTINGS, workers=3)
        # ended by the 1 s limit, not by the end of the 60 s sleep (a bound that a busy
        # machine cannot reach: the other queries of the extraction run meanwhile)
        assert time.monotonic() - started < 40
        assert engine.pool.checkedout() == 0
        assert _no_query_threads()
    finally:
        engine.dispose()


def test_the_queries_started_first_are_real_task_keys() -> None:
    keys = {f"period.{field}" for field in PERIOD_QUERIES}
    keys |= {f"end.{field}" for field in AS_OF_QUERIES if field != "facts"}
    keys |= {"ends.facts", "register"}  # customer_facts_ends.sql: both ends' facts
    assert set(FIRST_STARTED) <= keys
    assert len(set(FIRST_STARTED)) == len(FIRST_STARTED)


# -- run_concurrently --------------------------------------------------------------------


def test_results_come_back_by_key_in_the_given_order() -> None:
    ran: list[str] = []

    def task(key: str, delay: float) -> Callable[[], str]:
        def run() -> str:
            time.sleep(delay)
            ran.append(key)
            return key.upper()

        return run

    tasks = [("a", task("a", 0.3)), ("b", task("b", 0.0)), ("c", task("c", 0.01))]
    result = run_concurrently(tasks, 3)
    assert list(result) == ["a", "b", "c"]
    assert result == {"a": "A", "b": "B", "c": "C"}
    assert ran[0] != "a"  # the slow first task really ran next to the others


def test_one_worker_runs_in_the_calling_thread_in_order() -> None:
    threads: list[str] = []
    tasks = [(k, lambda k=k: threads.append(threading.current_thread().name) or k) for k in "xyz"]
    assert run_concurrently(tasks, 1) == {"x": "x", "y": "y", "z": "z"}
    assert threads == [threading.current_thread().name] * 3


def test_the_first_failure_in_the_given_order_wins_and_later_tasks_never_start() -> None:
    started: list[str] = []
    release = threading.Event()

    def slow_failure() -> None:
        started.append("early")
        release.wait(5)
        raise SqlContractError("early.sql: rejected")

    def quick_failure() -> None:
        started.append("late")
        release.set()  # fails while the earlier task is still running
        raise StageTimeoutError("late.sql: timed out")

    def never() -> None:
        started.append("never")

    tasks = [("early", slow_failure), ("late", quick_failure), ("after", never)]
    with pytest.raises(SqlContractError, match=r"early\.sql"):
        run_concurrently(tasks, 2)
    assert sorted(started) == ["early", "late"]
    assert _no_query_threads()


def test_start_first_changes_the_start_order_not_the_error_order() -> None:
    started: list[str] = []
    a_failing = threading.Event()

    def a() -> str:
        started.append("a")
        a_failing.set()
        raise ValueError("a")

    def b() -> str:
        started.append("b")
        return "b"

    def c() -> str:
        started.append("c")
        a_failing.wait(5)  # fails after a, though it started first
        raise ValueError("c")

    with pytest.raises(ValueError, match=r"^a$"):
        run_concurrently([("a", a), ("b", b), ("c", c)], 2, start_first=["c", "b"])
    assert started[:2] in (["c", "b"], ["b", "c"])
    assert started[2] == "a"
    with pytest.raises(ValueError, match="unique"):
        run_concurrently([("a", b), ("a", b)], 2)


# -- how many workers -------------------------------------------------------------------


def _engine(url: str) -> Engine:
    return make_engine(url, connect_timeout=1)


def test_worker_defaults_by_dialect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    postgres = _engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    duckdb = _engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    sqlite = _engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert query_workers(postgres) == concurrent.DEFAULT_WORKERS["postgresql"] == 3
    assert query_workers(duckdb) == 1
    assert query_workers(sqlite) == 1
    assert query_workers(duckdb, 3) == 3
    monkeypatch.setenv(WORKERS_ENV, " 2 ")
    assert query_workers(postgres) == 2
    assert query_workers(duckdb) == 2
    assert query_workers(postgres, 1) == 1  # an explicit value beats the environment


@pytest.mark.parametrize("raw", ["two", "0", "-1", "9", "1.5"])
def test_a_bad_worker_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, raw: str
) -> None:
    monkeypatch.setenv(WORKERS_ENV, raw)
    with pytest.raises(ConfigError, match=WORKERS_ENV):
        query_workers(_engine(f"sqlite:///{tmp_path / 'x.sqlite'}"))


def test_a_bad_worker_argument_is_a_config_error(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    for bad in (0, concurrent.MAX_WORKERS + 1, True):
        with pytest.raises(ConfigError, match="workers"):
            query_workers(engine, bad)
