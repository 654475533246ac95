"""check-source: per relation mapped or absent, rows, dates and column kinds, the data
checks, and exit 4 only when a nightly run cannot go ahead (issue 12 point 3)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from conftest import BACKENDS, SERVER_BACKENDS, LoadedDb
from fixtures.canonical import AS_OF
from sqlalchemy import text
from sqlalchemy.engine import URL

from crm_batch import resources
from crm_batch.app.kpis import run_data_checks
from crm_batch.app.source_check import SourceVerdict, check_source_report
from crm_batch.config import ENV_SOURCE_DIR, Settings, load_settings
from crm_batch.errors import DataError, SqlContractError
from crm_batch.source.db import make_engine

SHIPPED_MAPPING = resources.SQL_DIR / "source"


def settings_for(url: URL, mapping: Path | None = None) -> Settings:
    environ = {ENV_SOURCE_DIR: str(mapping)} if mapping is not None else {}
    return load_settings(
        None, database_url=url.render_as_string(hide_password=False), environ=environ
    )


def copied_mapping(tmp_path: Path, drop: tuple[str, ...] = ()) -> Path:
    folder = tmp_path / "mapping"
    shutil.copytree(SHIPPED_MAPPING, folder)
    for name in drop:
        (folder / f"{name}.sql").unlink()
    return folder


def _param(backend: str) -> object:
    marks = [getattr(pytest.mark, backend)] if backend in SERVER_BACKENDS else []
    return pytest.param(backend, id=backend, marks=marks)


@pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])
def test_rows_and_dates_of_every_relation_match_the_loaded_data(
    backend: str, loaded_db_factory: Callable[..., LoadedDb]
) -> None:
    loaded = loaded_db_factory(backend, "text")
    verdict = check_source_report(settings_for(loaded.url), AS_OF)
    dates = {
        "customers": "signup_date",
        "orders": "order_date",
        "leads": "created_at",
        "tickets": "opened_at",
        "campaigns": "started_at",
        "touches": "sent_at",
    }
    for relation in verdict.relations:
        frame = loaded.frames[relation.name]
        assert relation.mapped
        assert relation.rows == len(frame), relation.name
        column = frame[dates[relation.name]].dropna()
        assert relation.first == column.min().date(), relation.name
        assert relation.last == column.max().date(), relation.name
    assert verdict.column_errors() == []
    # the canonical data carries deliberate warnings (hostile names, case variants, ...)
    # but nothing that stops a run
    assert verdict.blocking == 0
    assert "result: ready for a nightly run" in verdict.render_text()


def test_absent_optional_relations_are_listed_and_do_not_block(
    loaded_db_factory: Callable[..., LoadedDb], tmp_path: Path
) -> None:
    loaded = loaded_db_factory("duckdb", "int")
    mapping = copied_mapping(tmp_path, drop=("leads", "touches"))
    verdict = check_source_report(settings_for(loaded.url, mapping), AS_OF)
    absent = {r.name for r in verdict.relations if not r.mapped}
    assert absent == {"leads", "touches"}
    assert verdict.blocking == 0
    text_report = verdict.render_text()
    assert "leads      (absent)" in text_report
    assert "optional: its KPIs show 'no data' (null), never 0" in text_report


def test_text_dates_and_decimal_ids_block_with_their_fix(
    db_url_factory: Callable[[str], URL], tmp_path: Path
) -> None:
    """A DuckDB mapping that hands dates over as text and ids as decimals: the column
    check finds both (the data checks alone could not: DuckDB stores real dates)."""
    url = db_url_factory("duckdb")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("create table k (id decimal(10, 1), team varchar, signed date)"))
        conn.execute(text("insert into k values (1.0, 'East', date '2026-01-05')"))
        conn.execute(text("create table s (id integer, k decimal(10, 1), day varchar)"))
        conn.execute(text("insert into s values (7, 1.0, '2026-06-01')"))
    engine.dispose()
    mapping = copied_mapping(tmp_path, drop=("leads", "tickets", "campaigns", "touches"))
    (mapping / "customers.sql").write_text(
        "select id as customer_id, 'x' as name, team, 'o' as owner, 'r' as region,\n"
        "  'web' as acquisition_channel, signed as signup_date, cast(null as date) as birthday,\n"
        "  cast(null as decimal(10, 1)) as referred_by, cast(null as varchar) as phone,\n"
        "  cast(null as varchar) as email, false as marketing_opt_out from k\n",
        encoding="utf-8",
    )
    (mapping / "orders.sql").write_text(
        "select id as order_id, k as customer_id, day as order_date,\n"
        "  cast(10 as decimal(14, 2)) as amount, 'paid' as status, 'web' as channel,\n"
        "  'tea' as category from s\n",
        encoding="utf-8",
    )
    settings = settings_for(url, mapping)
    verdict = check_source_report(settings, date(2026, 6, 30))
    problems = {(c.table, c.column): c for c in verdict.column_errors()}
    assert set(problems) == {
        ("customers", "customer_id"),
        ("orders", "customer_id"),
        ("orders", "order_date"),
    }
    assert "cast(... as date) as order_date" in problems[("orders", "order_date")].fix
    assert "'2026-06-01'" in problems[("orders", "order_date")].line()
    assert "decimal" in problems[("customers", "customer_id")].problem
    assert verdict.blocking >= 3
    assert "result: NOT ready" in verdict.render_text()
    # the nightly runs the same checks first and stops on them, naming the fix
    engine = make_engine(url)
    try:
        with pytest.raises(DataError, match="cast\\(\\.\\.\\. as date\\) as order_date"):
            run_data_checks(settings, engine, date(2026, 6, 30))
    finally:
        engine.dispose()


def test_a_mapping_without_rows_blocks(
    loaded_db_factory: Callable[..., LoadedDb], tmp_path: Path
) -> None:
    loaded = loaded_db_factory("sqlite", "int")
    mapping = copied_mapping(tmp_path)
    orders = (mapping / "orders.sql").read_text(encoding="utf-8")
    (mapping / "orders.sql").write_text(orders.rstrip() + "\nwhere 1 = 0\n", encoding="utf-8")
    verdict: SourceVerdict = check_source_report(settings_for(loaded.url, mapping), AS_OF)
    assert [r.name for r in verdict.empty_required()] == ["orders"]
    assert "ERROR orders: the mapping returns no rows" in verdict.render_text()
    assert verdict.blocking >= 1


def test_a_missing_column_is_one_error_naming_the_file(
    loaded_db_factory: Callable[..., LoadedDb], tmp_path: Path
) -> None:
    loaded = loaded_db_factory("sqlite", "int")
    mapping = copied_mapping(tmp_path)
    tickets = (mapping / "tickets.sql").read_text(encoding="utf-8")
    (mapping / "tickets.sql").write_text(
        tickets.replace("satisfaction as satisfaction", "satisfaction as score"),
        encoding="utf-8",
    )
    with pytest.raises(SqlContractError) as raised:
        check_source_report(settings_for(loaded.url, mapping), AS_OF)
    message = str(raised.value)
    assert str(mapping / "tickets.sql") in message
    assert "satisfaction" in message
