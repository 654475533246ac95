"""The mapping folder (crm_batch.source.mapping): loading, CTE merging, absent optional
relations on each database, and mapping errors reported under the mapping file's name."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BACKENDS, SERVER_BACKENDS, SQL_DIR
from sqlalchemy import text
from sqlalchemy.engine import URL

from crm_batch.config import load_settings
from crm_batch.errors import SqlContractError
from crm_batch.schema import SOURCE_TABLES
from crm_batch.source.db import dialect_name, make_engine, run_query
from crm_batch.source.mapping import (
    OPTIONAL,
    REQUIRED,
    SourceMapping,
    canonical_columns,
    load_mapping,
    shipped_mapping,
)
from crm_batch.source.sql_files import SqlCatalog, parse_sql_file

SOURCE_DIR = SQL_DIR / "source"
QUERY_FILES = sorted(SQL_DIR.glob("*.sql")) + sorted((SQL_DIR / "checks").glob("*.sql"))
PHYSICAL = re.compile(r"\b(?:from|join)\s+(" + "|".join(SOURCE_TABLES) + r")\b", re.IGNORECASE)


def copy_mapping(folder: Path, *names: str) -> Path:
    """A mapping folder holding the shipped files ``names`` (default: all six)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names or SOURCE_TABLES:
        shutil.copy(SOURCE_DIR / f"{name}.sql", folder / f"{name}.sql")
    return folder


# -- the shipped files -------------------------------------------------------------------


@pytest.mark.parametrize("name", SOURCE_TABLES)
def test_each_shipped_mapping_documents_and_selects_every_canonical_column(name: str) -> None:
    query = parse_sql_file(SOURCE_DIR / f"{name}.sql")  # the sql/ header style
    expected = [(c.name, c.kind) for c in canonical_columns()[name]]
    assert [(c.name, c.type) for c in query.columns] == expected
    assert not query.params
    assert "one SELECT" in query.description
    assert "bind parameters" in query.description
    for column, _ in expected:  # named explicitly, no select *
        assert re.search(rf"\bas {column}\b", query.body), column
    assert "*" not in query.body


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_query_reads_only_the_mapped_relations(path: Path) -> None:
    body = parse_sql_file(path).body
    assert PHYSICAL.findall(body) == [], "reads a physical table instead of mapped_<name>"
    assert re.search(r"\bmapped_[a-z]+\b", body), "reads no mapped relation"
    assert "adapt" not in path.read_text(encoding="utf-8").split("\nwith")[0].lower()


def test_the_settings_default_the_mapping_folder_to_source_in_the_sql_folder(
    tmp_path: Path,
) -> None:
    config = tmp_path / "crm_batch.toml"
    config.write_text('[paths]\nsql_dir = "mine/sql"\n', encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.source_dir == tmp_path / "mine" / "sql" / "source"
    config.write_text('[paths]\nsource_dir = "mapping"\n', encoding="utf-8")
    assert load_settings(config, environ={}).source_dir == tmp_path / "mapping"
    env = {"CRM_BATCH_SOURCE_DIR": str(tmp_path / "elsewhere")}
    assert load_settings(config, environ=env).source_dir == tmp_path / "elsewhere"


# -- loading -----------------------------------------------------------------------------


def test_a_missing_required_file_is_one_error_naming_folder_and_file(tmp_path: Path) -> None:
    folder = copy_mapping(tmp_path / "m", "customers", "leads")
    with pytest.raises(SqlContractError) as caught:
        load_mapping(folder)
    message = str(caught.value)
    assert str(folder) in message
    assert "orders.sql" in message
    assert "customers.sql" not in message.split("missing:")[1].split("(")[0]
    with pytest.raises(SqlContractError, match="mapping folder not found"):
        load_mapping(tmp_path / "nowhere")


def test_missing_optional_files_are_absent_relations(tmp_path: Path) -> None:
    mapping = load_mapping(copy_mapping(tmp_path / "m", *REQUIRED))
    assert (
        mapping.absent
        == frozenset(OPTIONAL)
        == frozenset({"leads", "tickets", "campaigns", "touches"})
    )
    assert SqlCatalog(SQL_DIR, mapping).absent_tables == mapping.absent
    assert shipped_mapping().absent == frozenset()


def test_a_mapping_with_a_bind_parameter_or_no_select_is_refused(tmp_path: Path) -> None:
    folder = copy_mapping(tmp_path / "m", *REQUIRED)
    (folder / "leads.sql").write_text(
        "select * from crm_leads where created_at > :since", encoding="utf-8"
    )
    with pytest.raises(SqlContractError, match=r"leads\.sql.*:since"):
        load_mapping(folder)
    (folder / "leads.sql").write_text("-- nothing yet\n\n", encoding="utf-8")
    with pytest.raises(SqlContractError, match=r"leads\.sql: the mapping file holds no SELECT"):
        load_mapping(folder)


def test_the_header_and_a_trailing_semicolon_or_comment_are_left_out(tmp_path: Path) -> None:
    folder = copy_mapping(tmp_path / "m", *REQUIRED)
    body = "select 1 as lead_id -- the id\nfrom crm_leads;  \n-- end of file\n"
    (folder / "leads.sql").write_text("-- leads: mine\n--   more\n\n" + body, encoding="utf-8")
    relation = load_mapping(folder).relations["leads"]
    assert relation.body == "select 1 as lead_id -- the id\nfrom crm_leads"


# -- merging into the queries ------------------------------------------------------------


def _mapping(tmp_path: Path, *names: str) -> SourceMapping:
    return load_mapping(copy_mapping(tmp_path / "m", *names))


def test_only_the_referenced_relations_are_prepended(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    merged = mapping.apply("select count(*) from mapped_orders as o", "duckdb")
    assert merged.startswith("with mapped_orders as not materialized (\nselect")
    assert "mapped_customers as" not in merged
    assert "from touches" not in merged
    assert merged.endswith(")\nselect count(*) from mapped_orders as o")
    assert mapping.apply("select 1", "sqlite") == "select 1"


def test_a_leading_with_is_merged_and_comments_stay_first(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    body = "-- a comment\n/* and a block */\nWITH paid as (select * from mapped_orders)\nselect 1"
    merged = mapping.apply(body, "mariadb")
    assert merged.startswith("-- a comment\n/* and a block */\nwith mapped_orders as (\n")
    assert merged.endswith("),\npaid as (select * from mapped_orders)\nselect 1")
    assert merged.lower().count("with ") == 1


def test_with_recursive_stays_recursive(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    body = "with recursive n(i) as (select 1 union all select i + 1 from n where i < 3)\n"
    body += "select i from n, mapped_customers as c"
    merged = mapping.apply(body, "postgresql")
    assert merged.startswith("with recursive mapped_customers as not materialized (\n")
    assert "),\nn(i) as (select 1" in merged


def test_an_absent_relation_brings_the_mapped_relations_its_keys_are_typed_by(
    tmp_path: Path,
) -> None:
    mapping = _mapping(tmp_path, "customers", "orders", "touches")
    assert mapping.referenced("select * from mapped_campaigns") == [
        "customers",
        "touches",
        "campaigns",
    ]
    empty = mapping.relation_sql("campaigns", "postgresql")
    assert "(select s.campaign_id from mapped_touches as s where 1 = 0) as campaign_id" in empty
    assert empty.endswith("from mapped_customers as k\nwhere 1 = 0")


# -- on each database --------------------------------------------------------------------


def _param(backend: str) -> object:
    marks = [getattr(pytest.mark, backend)] if backend in SERVER_BACKENDS else []
    return pytest.param(backend, id=backend, marks=marks)


@pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])
def test_absent_relations_run_empty_with_typed_columns_on_each_database(
    backend: str, loaded_db_factory: Callable[..., object], tmp_path: Path
) -> None:
    """Only customers and orders mapped: every query still runs; the optional relations
    are empty, with their canonical columns, and join the mapped keys (integer keys
    compared with a text NULL would be an error on PostgreSQL)."""
    db = loaded_db_factory(backend, "int")
    mapping = _mapping(tmp_path, *REQUIRED)
    catalog = SqlCatalog(SQL_DIR, mapping)
    dialect = dialect_name(db.engine)
    catalog.check_mapping(db.engine)
    customer = " join mapped_customers as c on c.customer_id = x.customer_id"
    joins = {
        "leads": "mapped_leads as x" + customer,
        "tickets": "mapped_tickets as x" + customer,
        "touches": "mapped_touches as x join mapped_campaigns as m"
        " on m.campaign_id = x.campaign_id" + customer,
        "campaigns": "mapped_campaigns as x",
    }
    with db.engine.connect() as conn:
        for name in OPTIONAL:
            sql = mapping.apply(f"select x.* from {joins[name]}", dialect)
            result = conn.execute(text(sql))
            assert list(map(str.lower, result.keys())) == [
                c.name for c in canonical_columns()[name]
            ]
            assert result.fetchall() == []
        paid = conn.execute(
            text(mapping.apply("select count(*) from mapped_orders as o", dialect))
        ).scalar_one()
    assert paid == len(db.frames["orders"])
    for name in ("leads", "tickets", "campaign_touches", "period_campaigns", "customers"):
        query = catalog.get(name, dialect)
        params = {
            p.name: _param_value(p.type) for p in query.params
        }  # any dates will do: the relations are empty or complete
        frame = run_query(db.engine, query, params)
        assert list(frame.columns) == list(query.column_names)
        if name != "customers":
            assert frame.empty, name


def _param_value(kind: str) -> object:
    from datetime import date, datetime

    return {"date": date(2026, 6, 30), "timestamp": datetime(2026, 7, 1)}.get(kind, 1)


@pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])
def test_an_absent_relation_takes_its_key_type_from_the_mapped_one_it_joins(
    backend: str, loaded_db_factory: Callable[..., object], tmp_path: Path
) -> None:
    """touches mapped, campaigns absent (and the other way round): the join on
    campaign_id type-checks on every database (integer keys against a text NULL would be
    an error on PostgreSQL) and finds nothing."""
    db = loaded_db_factory(backend, "int")
    dialect = dialect_name(db.engine)
    body = (
        "select count(*) from mapped_touches as t"
        " join mapped_campaigns as m on m.campaign_id = t.campaign_id"
    )
    for present in ("touches", "campaigns"):
        mapping = _mapping(tmp_path / present, *REQUIRED, present)
        mapping.check_columns(db.engine)
        with db.engine.connect() as conn:
            assert conn.execute(text(mapping.apply(body, dialect))).scalar_one() == 0
            rows = conn.execute(text(mapping.apply(f"select * from mapped_{present}", dialect)))
            assert len(rows.fetchall()) == len(db.frames[present])


@pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])
def test_with_recursive_and_mapped_relations_run_on_each_database(
    backend: str, loaded_db_factory: Callable[..., object], tmp_path: Path
) -> None:
    db = loaded_db_factory(backend, "int")
    mapping = _mapping(tmp_path)
    body = (
        "-- counts\nwith recursive n(i) as (select 1 union all select i + 1 from n where i < 3)"
        "\nselect count(*) from n cross join mapped_customers as c"
    )
    with db.engine.connect() as conn:
        count = conn.execute(text(mapping.apply(body, dialect_name(db.engine)))).scalar_one()
    assert count == 3 * len(db.frames["customers"])


# -- mapping errors name the mapping file --------------------------------------------------


@pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])
def test_missing_and_extra_columns_are_reported_together_naming_the_files(
    backend: str, db_url_factory: Callable[[str], URL], tmp_path: Path
) -> None:
    engine = make_engine(db_url_factory(backend), connect_timeout=5)
    try:
        with engine.begin() as conn:
            conn.execute(text("create table shop_customer (cid integer, cname varchar(20))"))
        folder = copy_mapping(tmp_path / "m", *REQUIRED)
        (folder / "customers.sql").write_text(
            "select cid as customer_id, cname as name, cname as nickname from shop_customer",
            encoding="utf-8",
        )
        (folder / "orders.sql").write_text(
            "select cid as order_id, cid as customer_id from shop_customer", encoding="utf-8"
        )
        catalog = SqlCatalog(SQL_DIR, load_mapping(folder))
        with pytest.raises(SqlContractError) as caught:
            catalog.check_mapping(engine)
        message = str(caught.value)
        lines = message.splitlines()
        customers = str(folder / "customers.sql")
        orders = str(folder / "orders.sql")
        assert f"{customers}: missing column(s): team, owner, region" in message
        assert f"{customers}: unexpected column(s): nickname" in lines
        assert f"{orders}: missing column(s): order_date, amount, status, channel, category" in (
            lines
        )
        assert "  a column your data does not have is returned as NULL: null as team" in lines
        assert "  a column your data does not have is returned as NULL: null as order_date" in (
            lines
        )
        assert "customer_facts" not in message
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])
def test_a_mapping_the_database_rejects_is_named_before_any_query_runs(
    backend: str, loaded_db_factory: Callable[..., object], tmp_path: Path
) -> None:
    db = loaded_db_factory(backend, "int")
    folder = copy_mapping(tmp_path / "m")
    (folder / "tickets.sql").write_text(
        "select t.ticket_id as ticket_id from no_such_tickets as t", encoding="utf-8"
    )
    from fixtures.canonical import AS_OF

    from crm_batch.config import ThresholdSettings
    from crm_batch.source.extract import extract_as_of

    catalog = SqlCatalog(SQL_DIR, load_mapping(folder))
    with pytest.raises(SqlContractError) as caught:
        extract_as_of(db.engine, catalog, AS_OF, ThresholdSettings())
    message = str(caught.value)
    assert message.startswith(f"{folder / 'tickets.sql'}: the database rejected the query")
    assert "no_such_tickets" in message
