"""The sql/ header contract: every file in sql/ keeps it, and each way to break it fails
with a SqlContractError (or DataError) naming the file, the line and the column.

The repository's files are discovered at collection time: a file added to sql/ is
checked without editing this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SQL_DIR
from sqlalchemy.engine import Engine

from crm_batch.errors import DataError, SqlContractError
from crm_batch.source.db import make_engine, run_query
from crm_batch.source.sql_files import (
    COLUMN_TYPES,
    KNOWN_DIALECTS,
    SqlCatalog,
    parse_sql_file,
)

SQL_FILES = sorted(SQL_DIR.glob("*.sql"))
BASE_FILES = [p for p in SQL_FILES if p.name.count(".") == 1]
VARIANT_FILES = [p for p in SQL_FILES if p.name.count(".") > 1]


def test_the_catalog_finds_every_base_file() -> None:
    assert BASE_FILES, "sql/ holds no queries"
    assert SqlCatalog(SQL_DIR).names() == sorted(p.stem for p in BASE_FILES)


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_header_parses_and_declares_exactly_the_used_params(path: Path) -> None:
    query = parse_sql_file(path)
    assert re.fullmatch(r"[a-z][a-z0-9_]*", query.name), "file names are snake_case"
    assert query.description, "the first line describes the query"
    assert query.columns, "the header declares its output columns"
    assert set(query.param_names) == set(query.used_params)
    assert len(set(query.column_names)) == len(query.column_names)


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_column_names_follow_the_naming_conventions(path: Path) -> None:
    """``_date`` columns are dates, ``_at`` columns timestamps, ``is_``/``has_`` booleans."""
    for spec in parse_sql_file(path).columns:
        if spec.name.endswith("_date"):
            assert spec.type == "date", spec.name
        if spec.name.endswith("_at"):
            assert spec.type == "timestamp", spec.name
        if spec.name.startswith(("is_", "has_")):
            assert spec.type == "bool", spec.name
        assert spec.type in COLUMN_TYPES


@pytest.mark.parametrize("path", VARIANT_FILES or [None], ids=lambda p: p.name if p else "none")
def test_dialect_variant_declares_the_base_contract(path: Path | None) -> None:
    if path is None:
        pytest.skip("sql/ holds no dialect variants")
    name, dialect, _ = path.name.split(".")
    assert dialect in KNOWN_DIALECTS, f"{path.name}: unknown dialect {dialect!r}"
    assert (SQL_DIR / f"{name}.sql").is_file(), f"{path.name}: no base file {name}.sql"
    catalog = SqlCatalog(SQL_DIR)
    variant = catalog.get(name, dialect)
    base = catalog.get(name)
    assert variant.path == path, "the loader picks the variant on its dialect"
    assert [(s.name, s.type) for s in variant.params] == [(s.name, s.type) for s in base.params]
    assert [(s.name, s.type) for s in variant.columns] == [(s.name, s.type) for s in base.columns]


def test_mariadb_falls_back_to_a_mysql_variant(tmp_path: Path) -> None:
    write(tmp_path, "q.sql", header("q", columns=["n int: n"]) + "select 1 as n\n")
    write(tmp_path, "q.mysql.sql", header("q", columns=["n int: n"]) + "select 2 as n\n")
    catalog = SqlCatalog(tmp_path)
    assert catalog.get("q", "mariadb").path.name == "q.mysql.sql"
    assert catalog.get("q", "postgresql").path.name == "q.sql"


# -- broken files ----------------------------------------------------------------------


def header(
    name: str,
    params: list[str] | None = None,
    columns: list[str] | None = None,
    adapt: str = "nothing to adapt",
) -> str:
    lines = [f"-- {name}: a test query"]
    lines.append("-- params:")
    lines += [f"--   {p}" for p in params or []]
    if columns is not None:
        lines.append("-- columns:")
        lines += [f"--   {c}" for c in columns]
    lines.append(f"-- adapt: {adapt}")
    return "\n".join(lines) + "\n"


def write(folder: Path, filename: str, content: str) -> Path:
    path = folder / filename
    path.write_text(content, encoding="utf-8")
    return path


def contract_error(path: Path) -> str:
    with pytest.raises(SqlContractError) as caught:
        parse_sql_file(path)
    message = str(caught.value)
    assert str(path) in message, "the error names the file"
    return message


def test_missing_header(tmp_path: Path) -> None:
    path = write(tmp_path, "bare.sql", "select 1 as n\n")
    assert "missing header" in contract_error(path)


def test_header_naming_another_query(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.sql", "-- theirs: copied\n-- columns:\n--   n int: n\nselect 1\n")
    message = contract_error(path)
    assert f"{path}:1:" in message
    assert "-- mine:" in message


def test_unknown_column_type_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typo.sql",
        header("typo", columns=["customer_id id: key", "amount decimal: money"]) + "select 1\n",
    )
    message = contract_error(path)
    assert f"{path}:5:" in message  # line 5: the 'amount decimal' entry
    assert "'decimal'" in message
    assert "money" in message, "the message lists the allowed types"


def test_unknown_parameter_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.sql",
        header("p", params=["as_of day: T"], columns=["n int: n"]) + "select :as_of as n\n",
    )
    assert f"{path}:3:" in contract_error(path)


def test_malformed_entry_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "m.sql", header("m", columns=["n: no type"]) + "select 1 as n\n")
    message = contract_error(path)
    assert f"{path}:4:" in message
    assert "<name> <type>" in message


def test_query_binding_an_undeclared_parameter(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.sql",
        header("u", params=["as_of date: T"], columns=["n int: n"])
        + "select count(*) as n from orders where order_date <= :as_of and team = :team\n",
    )
    message = contract_error(path)
    assert ":team" in message
    assert "does not declare" in message


def test_declared_parameter_never_used(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.sql",
        header("d", params=["as_of date: T", "start_90d date: window"], columns=["n int: n"])
        + "select count(*) as n from orders where order_date <= :as_of\n",
    )
    message = contract_error(path)
    assert ":start_90d" in message
    assert "never uses" in message


def test_column_declared_twice(tmp_path: Path) -> None:
    path = write(tmp_path, "c.sql", header("c", columns=["n int: a", "n int: b"]) + "select 1\n")
    assert "declared twice: n" in contract_error(path)


def test_no_columns_declared(tmp_path: Path) -> None:
    path = write(tmp_path, "nc.sql", header("nc") + "select 1 as n\n")
    assert "no '-- columns:'" in contract_error(path)


def test_header_without_a_query(tmp_path: Path) -> None:
    path = write(tmp_path, "e.sql", header("e", columns=["n int: n"]))
    assert "no query" in contract_error(path)


def test_file_not_in_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.sql"
    path.write_bytes((header("gbk", columns=["n int: 客户"]) + "select 1 as n\n").encode("gbk"))
    message = contract_error(path)
    assert "UTF-8" in message
    assert f"{path}:4:" in message


def test_byte_order_mark_and_crlf_are_accepted(tmp_path: Path) -> None:
    text = header("bom", params=["as_of date: T"], columns=["n int: n"]) + "select :as_of as n\n"
    path = tmp_path / "bom.sql"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    query = parse_sql_file(path)
    assert query.param_names == ("as_of",)
    assert query.column_names == ("n",)


def test_query_names_may_contain_digits(tmp_path: Path) -> None:
    path = write(
        tmp_path, "orders_90d.sql", header("orders_90d", columns=["n int: n"]) + "select 1"
    )
    assert parse_sql_file(path).name == "orders_90d"


def test_variant_with_a_different_contract(tmp_path: Path) -> None:
    write(tmp_path, "q.sql", header("q", columns=["n int: n"]) + "select 1 as n\n")
    variant = write(tmp_path, "q.sqlite.sql", header("q", columns=["n text: n"]) + "select 1\n")
    with pytest.raises(SqlContractError, match="same columns") as caught:
        SqlCatalog(tmp_path).get("q", "sqlite")
    assert str(variant) in str(caught.value)


def test_variant_for_an_unknown_dialect(tmp_path: Path) -> None:
    write(tmp_path, "q.sql", header("q", columns=["n int: n"]) + "select 1 as n\n")
    write(tmp_path, "q.oracle.sql", header("q", columns=["n int: n"]) + "select 1 as n\n")
    with pytest.raises(SqlContractError, match=r"q\.oracle\.sql.*unknown dialect 'oracle'"):
        SqlCatalog(tmp_path).get("q", "oracle")


def test_missing_sql_folder_and_missing_query(tmp_path: Path) -> None:
    with pytest.raises(SqlContractError, match="sql folder not found"):
        SqlCatalog(tmp_path / "nowhere")
    with pytest.raises(SqlContractError, match=r"nope\.sql"):
        SqlCatalog(tmp_path).get("nope")


# -- broken at run time: the columns a query really returns ----------------------------


@pytest.fixture(params=["sqlite", "duckdb"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = make_engine(f"{request.param}:///:memory:")
    yield engine
    engine.dispose()


def test_returned_column_missing_from_the_result(tmp_path: Path, engine: Engine) -> None:
    path = write(
        tmp_path,
        "short.sql",
        header("short", columns=["customer_id id: key", "revenue money: net"])
        + "select 1 as customer_id\n",
    )
    with pytest.raises(SqlContractError) as caught:
        run_query(engine, parse_sql_file(path), {})
    message = str(caught.value)
    assert str(path) in message
    assert "declared but not returned: revenue" in message


def test_extra_returned_column(tmp_path: Path, engine: Engine) -> None:
    path = write(
        tmp_path,
        "long.sql",
        header("long", columns=["customer_id id: key"]) + "select 1 as customer_id, 2 as bonus\n",
    )
    with pytest.raises(SqlContractError) as caught:
        run_query(engine, parse_sql_file(path), {})
    assert str(path) in str(caught.value)
    assert "returned but not declared: bonus" in str(caught.value)


def test_value_that_does_not_convert_names_column_and_row(
    tmp_path: Path,
    engine: Engine,
) -> None:
    path = write(
        tmp_path,
        "bad_value.sql",
        header("bad_value", columns=["customer_id id: key", "orders int: count"])
        + "select 1 as customer_id, '3' as orders\n"
        + "union all select 2, 'three'\n",
    )
    with pytest.raises(DataError) as caught:
        run_query(engine, parse_sql_file(path), {})
    message = str(caught.value)
    assert "bad_value.sql" in message
    assert "column orders" in message
    assert "row 2" in message
    assert "'three'" in message


def test_declared_parameter_without_a_value(tmp_path: Path, engine: Engine) -> None:
    path = write(
        tmp_path,
        "needs.sql",
        header("needs", params=["as_of date: T"], columns=["d date: T"]) + "select :as_of as d\n",
    )
    with pytest.raises(SqlContractError, match=r"needs\.sql.*no value.*as_of"):
        run_query(engine, parse_sql_file(path), {"start_90d": "2026-04-01"})
