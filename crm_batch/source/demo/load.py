"""``load_demo``: bulk load the demo frames into DuckDB, PostgreSQL, MariaDB/MySQL or SQLite.

The canonical tables are created from :func:`crm_batch.schema.build_metadata` and filled
with each database's bulk path: DuckDB inserts straight from the registered frames,
PostgreSQL takes ``COPY ... FROM STDIN``, MariaDB/MySQL ``LOAD DATA LOCAL INFILE`` (with
multi-row INSERTs when the server forbids it), SQLite one ``executemany`` transaction.
An in-memory DuckDB turns the frames into each target's column types (text ids, dates,
booleans) and, for the server databases, writes the CSV they read. Primary keys (where
the database can add them later) and the schema's indexes are built after the load,
which is several times faster than loading into indexed tables; PostgreSQL then gets
``VACUUM (ANALYZE)`` and MariaDB/MySQL ``ANALYZE TABLE`` (statistics, visibility map).

The demo never overwrites somebody's data: a target that holds canonical tables but no
:data:`DEMO_INFO_TABLE` (the demo's own marker) is refused unless ``replace=True``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
    inspect,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex, CreateTable
from tqdm import tqdm

from crm_batch.errors import ConfigError, DataError, DependencyError
from crm_batch.schema import OUTPUT_TABLES, SOURCE_TABLES, build_metadata
from crm_batch.source.demo.model import TEXT_ID_FORMAT, DemoData, text_id_format
from crm_batch.source.failures import first_line
from crm_batch.urls import safe_url

#: The marker table: its presence says the canonical tables beside it are a demo.
DEMO_INFO_TABLE = "crm_batch_demo_info"
#: Length of text ids in the schema (``O000000001`` needs 10).
TEXT_ID_LENGTH = 16
_SUPPORTED = ("duckdb", "postgresql", "mysql", "sqlite")
#: Databases that can add a primary key to a loaded table (faster than loading into it).
_DEFERRED_KEYS = ("duckdb", "postgresql")
_CHUNK = 1 << 20
#: MySQL / MariaDB errors meaning "LOAD DATA LOCAL is disabled on the server or client".
_LOCAL_FILES_REFUSED = (1148, 2068, 3948, 4166)

log = logging.getLogger(__name__)


def load_demo(
    engine: Engine,
    data: DemoData,
    *,
    id_type: Literal["int", "text"] = "int",
    replace: bool = False,
    progress: bool = False,
) -> dict[str, int]:
    """Create the canonical tables in ``engine``'s database and load ``data``; returns
    table -> rows loaded.

    ``id_type="text"`` stores keys as text (``C0000123``, ``O000000001``). A previous
    demo (marked by :data:`DEMO_INFO_TABLE`) is replaced; canonical tables without the
    marker are somebody's data and make this raise :class:`DataError` unless
    ``replace=True``. On PostgreSQL and SQLite the whole load is one transaction, so a
    failure leaves the previous state. DuckDB commits the rows before it builds the
    indexes (it builds indexes on uncommitted rows several times slower) and MariaDB
    commits every DDL statement; the marker is committed with the tables, so a failed
    load is still recognised as a demo and replaced by the next one.
    """
    backend = _backend(engine)
    if backend not in _SUPPORTED:
        raise ConfigError(
            f"the demo loads into {', '.join(_SUPPORTED)} databases, not {backend} "
            f"({safe_url(engine.url)})"
        )
    if id_type not in ("int", "text"):
        raise ValueError(f"id_type must be 'int' or 'text', not {id_type!r}")
    counts = data.row_counts()
    dbapi = engine.dialect.loaded_dbapi  # the bulk paths use its cursors directly
    unreachable = (OperationalError, getattr(dbapi, "OperationalError", OperationalError))
    rejected = (DBAPIError, getattr(dbapi, "Error", DBAPIError), duckdb.Error)
    target = _mysql_loader_engine(engine) if backend == "mysql" else engine
    try:
        with target.connect() as conn:
            loaded = _load_all(conn, data, id_type=id_type, replace=replace, progress=progress)
    except unreachable as exc:
        raise DependencyError(
            f"cannot load the demo into {safe_url(engine.url)}: {first_line(exc)}"
        ) from None
    except rejected as exc:
        raise DataError(
            f"{safe_url(engine.url)} rejected the demo data: {first_line(exc)}"
        ) from None
    finally:
        if target is not engine:
            target.dispose()
    short = {name: rows for name, rows in loaded.items() if rows != counts[name]}
    if short:
        raise DataError(f"{safe_url(engine.url)}: rows loaded differ from the demo: {short}")
    return loaded


def _load_all(
    conn: Connection, data: DemoData, *, id_type: str, replace: bool, progress: bool
) -> dict[str, int]:
    """Replace the demo tables and load every frame on one connection; commits."""
    backend = _backend(conn)
    metadata = _metadata(id_type, backend)
    deferred_keys = backend in _DEFERRED_KEYS
    if backend == "sqlite":  # pysqlite would run the DDL outside of the transaction
        conn.exec_driver_sql("BEGIN")
    _clear_target(conn, metadata, replace=replace)
    _create_tables(conn, metadata, deferred_keys=deferred_keys)
    conn.execute(
        insert(metadata.tables[DEMO_INFO_TABLE]).values(
            seed=data.seed,
            end_date=data.end_date,
            years=data.years,
            id_type=id_type,
            customers=len(data.customers),
            orders=len(data.orders),
            created_at=datetime.now().replace(microsecond=0),
        )
    )
    if backend == "mysql":  # its DDL committed the tables already: commit their marker too
        conn.commit()
    loaded = {}
    total = sum(data.row_counts().values())
    with (
        _staging(conn, backend) as stage,
        tqdm(
            total=total, desc="demo: load", unit="row", unit_scale=True, disable=not progress
        ) as bar,
    ):
        for name, frame in data.tables().items():
            bar.set_postfix_str(name)
            started = time.perf_counter()
            loaded[name] = _load_table(conn, stage, metadata.tables[name], frame, id_type)
            log.debug("demo: %s loaded in %.2fs", name, time.perf_counter() - started)
            bar.update(len(frame))
    _build_keys_and_indexes(
        conn,
        metadata,
        deferred_keys=deferred_keys,
        commit_each=backend == "duckdb",
        progress=progress,
    )
    conn.commit()
    _refresh_statistics(conn)
    return loaded


def _refresh_statistics(conn: Connection) -> None:
    """What a database's maintenance would do to freshly loaded tables, done at once.

    PostgreSQL: ``VACUUM (ANALYZE)`` gathers the planner statistics (without them the
    first queries are planned for a 10-million-row table taken for a few thousand rows)
    and sets the visibility map, so the per-customer queries read the covering index
    ``ix_orders_customer_cover`` alone, already in customer order (an index-only scan),
    instead of hashing and sorting the table: two to three times faster at 10M orders.
    Autovacuum gets there by itself on a live database, later. MariaDB/MySQL: ``ANALYZE
    TABLE`` refreshes the index statistics LOAD DATA leaves stale. Commits first.
    """
    backend = _backend(conn)
    if backend not in ("postgresql", "mysql"):
        return
    quote = conn.dialect.identifier_preparer.quote
    names = [quote(name) for name in (*SOURCE_TABLES, DEMO_INFO_TABLE)]
    started = time.perf_counter()
    if backend == "postgresql":  # VACUUM cannot run inside a transaction
        autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in names:
            autocommit.exec_driver_sql(f"VACUUM (ANALYZE) {name}")
    else:
        conn.exec_driver_sql(f"ANALYZE TABLE {', '.join(names)}").fetchall()
        conn.commit()
    log.debug("demo: statistics refreshed in %.2fs", time.perf_counter() - started)


def _metadata(id_type: str, backend: str) -> MetaData:
    """The canonical tables plus the marker, with utf8mb4 tables on MariaDB/MySQL."""
    metadata = build_metadata(BigInteger if id_type == "int" else String(TEXT_ID_LENGTH))
    Table(
        DEMO_INFO_TABLE,
        metadata,
        Column("seed", BigInteger, nullable=False),
        Column("end_date", Date, nullable=False),
        Column("years", Integer, nullable=False),
        Column("id_type", String(8), nullable=False),
        Column("customers", BigInteger, nullable=False),
        Column("orders", BigInteger, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )
    if backend == "mysql":  # Chinese names and emoji need 4-byte UTF-8 whatever the default
        for table in metadata.tables.values():
            table.dialect_options["mysql"]["charset"] = "utf8mb4"
    return metadata


def _clear_target(conn: Connection, metadata: MetaData, *, replace: bool) -> None:
    """Drop a previous demo; refuse to touch canonical tables the demo did not make."""
    existing = set(inspect(conn).get_table_names())
    canonical = [name for name in (*SOURCE_TABLES, *OUTPUT_TABLES) if name in existing]
    if canonical and DEMO_INFO_TABLE not in existing and not replace:
        raise DataError(
            f"{safe_url(conn.engine.url)} already holds table {canonical[0]!r} and it was not "
            f"made by the demo (no {DEMO_INFO_TABLE} table): refusing to overwrite it. "
            "Point the demo at an empty database, or pass replace to drop the canonical tables."
        )
    drop = [metadata.tables[name] for name in (*canonical, DEMO_INFO_TABLE) if name in existing]
    metadata.drop_all(conn, tables=drop, checkfirst=False)


def _create_tables(conn: Connection, metadata: MetaData, *, deferred_keys: bool) -> None:
    """Create every table without its indexes; source tables also without their primary
    key when the database can add it after the load."""
    for table in metadata.sorted_tables:
        if deferred_keys and table.name in SOURCE_TABLES:
            bare = Table(
                table.name,
                MetaData(),
                *(Column(c.name, c.type, nullable=c.nullable) for c in table.columns),
            )
            conn.execute(CreateTable(bare))
        else:
            conn.execute(CreateTable(table))


def _build_keys_and_indexes(
    conn: Connection,
    metadata: MetaData,
    *,
    deferred_keys: bool,
    commit_each: bool,
    progress: bool,
) -> None:
    """Add the deferred primary keys, then every index the schema declares.

    ``commit_each`` commits before each statement: DuckDB defers an index on uncommitted
    rows to the commit, where building it is several times slower.
    """
    quote = conn.dialect.identifier_preparer.quote
    statements: list[tuple[str, Any]] = []
    for table in metadata.sorted_tables:
        if deferred_keys and table.name in SOURCE_TABLES:
            columns = ", ".join(quote(c.name) for c in table.primary_key.columns)
            alter = text(f"ALTER TABLE {quote(table.name)} ADD PRIMARY KEY ({columns})")
            statements.append((f"{table.name} primary key", alter))
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            statements.append((f"{index.name}", CreateIndex(index)))
    with tqdm(statements, desc="demo: indexes", disable=not progress) as bar:
        for label, statement in bar:
            bar.set_postfix_str(label)
            if commit_each:
                conn.commit()
            started = time.perf_counter()
            conn.execute(statement)
            log.debug("demo: %s in %.2fs", label, time.perf_counter() - started)


@contextmanager
def _staging(conn: Connection, backend: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The DuckDB connection that converts frames: the target itself, or an in-memory one."""
    if backend == "duckdb":
        yield _driver(conn)
        return
    stage = duckdb.connect()
    try:
        yield stage
    finally:
        stage.close()


def _load_table(
    conn: Connection,
    stage: duckdb.DuckDBPyConnection,
    table: Table,
    frame: pd.DataFrame,
    id_type: str,
) -> int:
    """Load one frame into ``table``; returns the number of rows the database took."""
    backend = _backend(conn)
    view = f"demo_frame_{table.name}"
    stage.register(view, frame)
    try:
        select = f"SELECT {_select_list(table, frame, id_type, backend)} FROM {view}"
        columns = ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in table.columns)
        if backend == "duckdb":
            (rows,) = stage.execute(f"INSERT INTO {table.name} ({columns}) {select}").fetchall()
            return int(rows[0])
        if backend == "sqlite":
            return _sqlite_insert(conn, stage, table.name, columns, select, len(table.columns))
        with tempfile.TemporaryDirectory(prefix="crm_demo_") as folder:
            path = Path(folder) / f"{table.name}.csv"
            target = str(path).replace("'", "''")
            if backend == "postgresql":  # NULL is an empty field, '' a quoted empty field
                stage.execute(f"COPY ({select}) TO '{target}' (FORMAT csv, HEADER false)")
                return _postgres_copy(conn, table.name, columns, path)
            # MariaDB reads an unquoted NULL as NULL: quote all text, so 'NULL' stays text
            texts = [c.name for c in table.columns if isinstance(c.type, String)]
            quoted = f", FORCE_QUOTE ({', '.join(texts)})" if texts else ""
            stage.execute(
                f"COPY ({select}) TO '{target}' (FORMAT csv, HEADER false, NULLSTR 'NULL'{quoted})"
            )
            return _mysql_load(conn, stage, table.name, columns, select, path)
    finally:
        stage.unregister(view)


def _select_list(table: Table, frame: pd.DataFrame, id_type: str, backend: str) -> str:
    """DuckDB expressions that turn the frame's columns into the target's column types."""
    parts = []
    for column in table.columns:
        name = column.name
        kind = column.type
        if name in TEXT_ID_FORMAT and id_type == "text":
            largest = int(frame[name].max()) if frame[name].notna().any() else None
            prefix, width = text_id_format(name, largest)
            expr = f"'{prefix}' || lpad(CAST({name} AS VARCHAR), {width}, '0')"
        elif isinstance(kind, Boolean):
            expr = f"CAST({name} AS INTEGER)" if backend in ("mysql", "sqlite") else name
        elif isinstance(kind, DateTime):
            expr = f"CAST({name} AS TIMESTAMP)"
            if backend == "sqlite":  # the ISO text SQLite compares and crm-batch binds
                expr = f"strftime({expr}, '%Y-%m-%d %H:%M:%S.%f')"
        elif isinstance(kind, Date):
            expr = f"CAST({name} AS DATE)"
            if backend == "sqlite":
                expr = f"strftime({expr}, '%Y-%m-%d')"
        elif isinstance(kind, Numeric):
            expr = f"CAST({name} AS {'DOUBLE' if backend == 'sqlite' else 'DECIMAL(14, 2)'})"
        elif isinstance(kind, String):  # also Text; categoricals arrive as ENUMs
            expr = f"CAST({name} AS VARCHAR)"
        else:
            expr = f"CAST({name} AS BIGINT)"
        parts.append(f"{expr} AS {name}")
    return ", ".join(parts)


def _postgres_copy(conn: Connection, table: str, columns: str, path: Path) -> int:
    """Stream a CSV file into ``COPY ... FROM STDIN`` on the transaction's connection."""
    raw = _driver(conn)
    with raw.cursor() as cursor:
        with (
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(_CHUNK):
                copy.write(chunk)
        return cursor.rowcount


def _mysql_loader_engine(engine: Engine) -> Engine:
    """A one-connection engine like ``engine`` whose driver may send local files."""
    return create_engine(
        engine.url,
        poolclass=NullPool,
        connect_args={"local_infile": True, "charset": "utf8mb4", "connect_timeout": 10},
    )


def _mysql_load(
    conn: Connection,
    stage: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    select: str,
    path: Path,
) -> int:
    """``LOAD DATA LOCAL INFILE`` the CSV; multi-row INSERTs if the server refuses it."""
    import pymysql

    raw = _driver(conn)
    statement = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
        f"LINES TERMINATED BY '\\n' ({columns})"
    )
    with raw.cursor() as cursor:
        try:
            rows = cursor.execute(statement, (str(path),))
        except pymysql.err.OperationalError as exc:
            if exc.args[0] not in _LOCAL_FILES_REFUSED:
                raise
            return _batched_insert(cursor, stage, table, columns, select)
        cursor.execute("SHOW WARNINGS LIMIT 1")
        warning = cursor.fetchone()
        if warning:
            raise DataError(f"LOAD DATA into {table}: {warning[2]}")
        return int(rows)


def _batched_insert(
    cursor: Any, stage: duckdb.DuckDBPyConnection, table: str, columns: str, select: str
) -> int:
    """Multi-row INSERTs (pymysql batches ``executemany`` into long statements)."""
    width = columns.count(",") + 1
    statement = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * width)})"
    result = stage.execute(select)
    total = 0
    while rows := result.fetchmany(50_000):
        cursor.executemany(statement, rows)
        total += len(rows)
    return total


def _sqlite_insert(
    conn: Connection,
    stage: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    select: str,
    width: int,
) -> int:
    """``executemany`` in batches, inside the connection's transaction."""
    statement = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['?'] * width)})"
    cursor = _driver(conn).cursor()
    result = stage.execute(select)
    total = 0
    while rows := result.fetchmany(100_000):
        cursor.executemany(statement, rows)
        total += len(rows)
    return total


def _backend(bind: Engine | Connection) -> str:
    """The dialect's name, with MariaDB under ``mysql`` (same DDL, same bulk path)."""
    name = bind.dialect.name
    return "mysql" if name == "mariadb" else name


def _driver(conn: Connection) -> Any:
    """The driver's own connection (psycopg, pymysql, sqlite3, DuckDB) under ``conn``."""
    return conn.connection.driver_connection
