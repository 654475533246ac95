"""Spark through Spark Connect: the same KPI JSON as DuckDB, byte for byte.

The canonical test data and a small demo company are loaded into Spark (Parquet tables
of a local Spark Connect server, started once per session by conftest's ``spark_url``)
and into DuckDB; ``kpis --by-team --format json`` through the real entry point must
print the same bytes from both. Errors read as on every other database: a mapping the
server rejects names the mapping file, an unreachable server is a dependency failure,
a statement past its limit a timeout. Spark never holds the state.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.canonical import AS_OF, PERIOD_LABEL, canonical_frames, load_canonical
from fixtures.spark import load_canonical_spark
from fixtures.timeouts import hang_bound
from sqlalchemy.engine import make_url

from crm_batch.app.engines import build_databases, resolve_state
from crm_batch.config import load_settings
from crm_batch.errors import (
    ConfigError,
    DataError,
    DependencyError,
    SqlContractError,
    StageTimeoutError,
)
from crm_batch.source.db import check_connection, make_engine
from crm_batch.source.demo import generate_demo
from crm_batch.source.demo.load_spark import load_demo_spark
from crm_batch.source.mapping import load_mapping
from crm_batch.source.spark import SparkSource, connect_string
from crm_batch.source.sql_files import SqlCatalog
from crm_batch.urls import safe_url

REPO = Path(__file__).resolve().parents[1]


#: The Spark runs' client time zone: timestamps must not move with the client's zone
#: (pyspark reads a naive datetime in the client's zone; crm-batch binds UTC wall times).
CLIENT_ZONE = {"TZ": "Asia/Shanghai"}


def run_cli(
    *args: str, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``run_batch.py`` in a clean environment (no CRM_BATCH_* from the caller)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRM_BATCH_")}
    return subprocess.run(
        [sys.executable, str(REPO / "run_batch.py"), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=hang_bound(timeout),
        check=False,
    )


def kpi_json(url: str, cwd: Path, *options: str) -> str:
    """``kpis --by-team --format json`` on ``url``: its stdout (fails on an error); Spark
    runs in the :data:`CLIENT_ZONE`."""
    env = CLIENT_ZONE if url.startswith("sc://") else None
    done = run_cli("kpis", "--db", url, "--by-team", "--format", "json", *options, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# -- without a server ----------------------------------------------------------------------


def test_url_options_go_to_spark_connect_and_the_token_stays_hidden() -> None:
    url = make_url("sc://spark.example:443?use_ssl=true&user_id=crm&schema=sales")
    assert connect_string(url) == "sc://spark.example:443/;use_ssl=true;user_id=crm"
    # the token comes as the URL's password ($CRM_BATCH_DATABASE_PASSWORD / password_file)
    with_token = url.set(password="s3cr;t=")
    assert connect_string(with_token).endswith(";token=s3cr%3Bt%3D")
    assert "s3cr" not in safe_url(with_token)
    assert "abc" not in safe_url("sc://h:1?token=abc")
    # Spark's own form works too
    native = make_url("sc://h:15002/;use_ssl=true;user_id=me")
    assert connect_string(native) == "sc://h:15002/;use_ssl=true;user_id=me"
    headers = make_url("sc://h:443?use_ssl=true&x-databricks-cluster-id=0123-abc")
    assert connect_string(headers) == "sc://h:443/;use_ssl=true;x-databricks-cluster-id=0123-abc"
    with pytest.raises(ConfigError, match=r"unknown Spark Connect option.*colour"):
        SparkSource("sc://h:1?colour=red", statement_timeout=None)


def test_the_state_is_never_spark(tmp_path: Path) -> None:
    settings = load_settings(None, database_url="sc://127.0.0.1:15002", environ={}, cwd=tmp_path)
    choice = resolve_state(settings)
    assert choice.separate
    assert choice.url.get_backend_name() == "duckdb"
    assert choice.url.database.endswith("state.duckdb")
    assert "Spark" in choice.why
    databases = build_databases(settings)  # builds, connects nothing
    try:
        assert isinstance(databases.source, SparkSource)
        assert databases.state.dialect.name == "duckdb"
    finally:
        databases.dispose()
    spark_state = load_settings(
        None,
        database_url="sc://127.0.0.1:15002",
        environ={"CRM_BATCH_STATE_URL": "sc://127.0.0.1:15002"},
        cwd=tmp_path,
    )
    with pytest.raises(ConfigError, match="needs a SQL database"):
        resolve_state(spark_state)


def test_an_unreachable_server_is_a_dependency_failure() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = SparkSource(f"sc://127.0.0.1:{port}", connect_timeout=2, statement_timeout=None)
    with pytest.raises(DependencyError, match=f"cannot connect to sc://127.0.0.1:{port}"):
        check_connection(source)


# -- on a local Spark Connect server -----------------------------------------------------


@pytest.mark.slow
def test_canonical_data_gives_the_same_kpi_json_as_duckdb(
    spark_url_factory: Callable[[], str], tmp_path: Path
) -> None:
    url = spark_url_factory()
    frames = canonical_frames("int")
    load_canonical_spark(url, frames, "int")
    duck = f"duckdb:///{(tmp_path / 'canonical.duckdb').as_posix()}"
    engine = make_engine(duck)
    try:
        load_canonical(engine, frames, "int")
    finally:
        engine.dispose()
    options = ("--as-of", AS_OF.isoformat(), "--period", PERIOD_LABEL)
    expected = kpi_json(duck, tmp_path, *options)
    assert '"scope": "team"' in expected
    assert '"customers_total": 16' in expected
    assert kpi_json(url, tmp_path, *options) == expected


@pytest.mark.slow
def test_a_demo_loaded_into_spark_gives_the_same_kpi_json_as_duckdb(
    spark_url_factory: Callable[[], str], tmp_path: Path
) -> None:
    """``demo --database-only`` into Spark (text keys, Parquet tables) and into DuckDB."""
    url = spark_url_factory()
    duck = f"duckdb:///{(tmp_path / 'demo.duckdb').as_posix()}"
    size = ("--customers", "600", "--orders", "6000", "--seed", "7", "--id-type", "text")
    for target in (url, duck):
        done = run_cli(
            *("demo", "--db", target, "--database-only", "--as-of", "2026-06-30", *size),
            cwd=tmp_path,
            env=CLIENT_ZONE if target == url else None,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Net revenue by team and year" in done.stdout
    options = ("--as-of", "2026-06-30", "--period", "2026Q2")
    expected = kpi_json(duck, tmp_path, *options)
    assert expected.count('"scope": "team"') == 8
    assert kpi_json(url, tmp_path, *options) == expected


@pytest.mark.slow
def test_errors_name_the_mapping_file_and_the_time_limit(
    spark_url_factory: Callable[[], str], tmp_path: Path
) -> None:
    url = spark_url_factory()
    load_canonical_spark(url, canonical_frames("int"), "int")
    folder = tmp_path / "source"
    folder.mkdir()
    for name in ("customers", "orders"):
        body = (REPO / "sql" / "source" / f"{name}.sql").read_text(encoding="utf-8")
        (folder / f"{name}.sql").write_text(body, encoding="utf-8")
    (folder / "orders.sql").write_text(
        body.replace("from orders", "from orders_missing"), encoding="utf-8"
    )
    source = SparkSource(url, statement_timeout=300)
    try:
        catalog = SqlCatalog(REPO / "sql", load_mapping(folder))
        with pytest.raises(SqlContractError, match=r"orders\.sql: the database rejected"):
            catalog.check_mapping(source)
        # canonical tables without the demo's marker are somebody's data
        demo = generate_demo(customers=20, orders=50, seed=1, end_date=AS_OF)
        with pytest.raises(DataError, match="not made by the demo"):
            load_demo_spark(source, demo)
        assert source.session().sql("select count(*) from orders").collect()[0][0] == 28
    finally:
        source.dispose()
    slow = SparkSource(url, statement_timeout=1)
    try:
        statement = "select count(*) as n from range(100000000000) as a"
        with pytest.raises(StageTimeoutError, match=r"slow\.sql on sc://.*time limit"):
            slow.fetch_arrow(statement, {}, Path("slow.sql"))
        slow.statement_timeout = 300  # select 1 may take a second on a busy machine
        slow.check()  # the session survives an interrupted statement
    finally:
        slow.dispose()
