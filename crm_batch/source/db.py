"""SQLAlchemy engines with timeouts, and sql/ queries run into typed pandas frames.

Engines are made on demand (never at import time). Every engine has a connect timeout
and, where the driver supports one, a statement timeout, so a dead or hung server ends
in a :class:`DependencyError` (or :class:`StageTimeoutError`) instead of a hung night.
URLs are shown only through :func:`safe_url`, which hides the password.

Column types of the sql/ headers come back as these pandas dtypes: ``id`` and ``text``
-> ``string`` (keys are opaque text: ``7`` becomes ``"7"``, ``"007"`` stays ``"007"``),
``date`` and ``timestamp`` -> ``datetime64[ns]`` (naive local time), ``int`` -> ``Int64``,
``float`` and ``money`` -> ``float64``, ``bool`` -> ``boolean``.

Fetch paths (all give the same typed frames): DuckDB and PostgreSQL results arrive as
Arrow columns (DuckDB's own Arrow export; on PostgreSQL the ADBC driver,
``adbc-driver-postgresql``, with the engine's connect and statement timeouts and URL
options) and are typed column by column in Arrow, without a Python object per value:
pulling a million customers this way takes a fraction of a second where row tuples took
several. Other dialects (and PostgreSQL without the ADBC driver) fetch row tuples through
the SQLAlchemy connection. Anything the Arrow path does not recognise goes through the
same per-value conversion as row tuples, so errors read alike on every database.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import time
import weakref
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.types import UserDefinedType

from crm_batch.errors import (
    DataError,
    DependencyError,
    PermanentDependencyError,
    SqlContractError,
    StageTimeoutError,
)
from crm_batch.source.ids import remember_integer_keys
from crm_batch.source.sql_files import SqlQuery
from crm_batch.urls import normalize_url, safe_url

log = logging.getLogger(__name__)

#: MySQL/MariaDB: the client gives up this long after the server-side statement limit,
#: so that the server's own "statement timeout" error normally arrives first.
_MYSQL_CLIENT_GRACE_SECONDS = 5.0

#: Compiles named binds to PostgreSQL's ``$n`` placeholders (what ADBC sends).
_DOLLAR_DIALECT = PGDialect_psycopg(paramstyle="numeric_dollar")
#: SQLSTATE classes meaning "the server or the connection failed", not the query.
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57P", "58")


def dialect_name(engine: Engine) -> str:
    """The dialect name used to pick sql/ variants (``mariadb`` for MariaDB servers)."""
    name = engine.dialect.name
    if name == "mysql" and getattr(engine.dialect, "is_mariadb", False):
        return "mariadb"
    return name


def make_engine(
    url: URL | str,
    *,
    connect_timeout: float = 10.0,
    statement_timeout: float | None = 900.0,
) -> Engine:
    """An engine for ``url`` with connect and statement timeouts set per driver.

    * PostgreSQL (psycopg): libpq's ``connect_timeout`` bounds the whole connection
      set-up (libpq waits at least 2 s); ``statement_timeout`` is added to the
      ``options`` the URL may already carry (e.g. a ``search_path``).
    * MySQL/MariaDB (PyMySQL): ``connect_timeout`` bounds the TCP connect and, as the
      read timeout during the handshake, a server that accepts but never answers;
      after connecting, the server limits each statement (``max_statement_time`` on
      MariaDB, ``max_execution_time`` on MySQL) and the client read timeout is the
      statement timeout plus a few seconds.
    * SQLite: ``connect_timeout`` is the busy timeout on a locked file.
    """
    url = normalize_url(url)
    backend = url.get_backend_name()
    connect_seconds = max(1, math.ceil(connect_timeout))
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["connect_timeout"] = connect_seconds
        options = _postgres_options(url, statement_timeout)
        if options:
            # connect_args replace the URL's own query values: pass the merged options
            connect_args["options"] = options
    elif backend in {"mysql", "mariadb"}:
        connect_args.update(
            connect_timeout=connect_seconds,
            charset="utf8mb4",
            # PyMySQL waits for the server greeting with the *read* timeout, so the
            # handshake gets the connect timeout; _mysql_session raises it afterwards
            read_timeout=connect_seconds,
            write_timeout=connect_seconds,
        )
    elif backend == "sqlite":
        connect_args["timeout"] = connect_timeout
    elif backend == "duckdb" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=backend != "duckdb")
    except (SQLAlchemyError, ImportError) as exc:
        raise DependencyError(f"cannot use database {safe_url(url)}: {_first_line(exc)}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif backend in {"mysql", "mariadb"}:
        session = functools.partial(_mysql_session, statement_timeout=statement_timeout)
        event.listen(engine, "connect", session)
    return engine


def _postgres_options(url: URL, statement_timeout: float | None) -> str:
    """libpq ``options``: the URL's own plus ``-c statement_timeout`` unless it sets one."""
    existing = url.query.get("options") or ""
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    parts = [existing] if existing else []
    if statement_timeout and "statement_timeout" not in existing:
        parts.append(f"-c statement_timeout={math.ceil(statement_timeout * 1000)}")
    return " ".join(parts)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _mysql_session(dbapi_connection: Any, _record: Any, *, statement_timeout: float | None) -> None:
    """After the handshake: statement limits on the server and on the client socket."""
    client_timeout = statement_timeout + _MYSQL_CLIENT_GRACE_SECONDS if statement_timeout else None
    # PyMySQL re-applies these before every socket read/write (no public setter exists)
    if hasattr(dbapi_connection, "_read_timeout"):
        dbapi_connection._read_timeout = client_timeout
        dbapi_connection._write_timeout = client_timeout
    if not statement_timeout:
        return
    server = str(getattr(dbapi_connection, "server_version", "") or "")
    if "mariadb" in server.lower():
        statement = f"SET SESSION max_statement_time = {float(statement_timeout):.3f}"
    else:
        statement = f"SET SESSION max_execution_time = {math.ceil(statement_timeout * 1000)}"
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    except Exception as exc:  # an old server without the variable: the client timeout remains
        log.debug("cannot set a server-side statement limit (%s); using the client's", exc)
    finally:
        cursor.close()


def check_connection(engine: Engine) -> None:
    """Open one connection and run ``select 1``; raise :class:`DependencyError` if we can't."""
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except DBAPIError as exc:
        error = PermanentDependencyError if _refused_for_good(exc.orig) else DependencyError
        raise error(
            f"cannot connect to {safe_url(engine.url)}: {_first_line(exc.orig or exc)}"
        ) from None


#: Connection failures that waiting cannot fix: PostgreSQL SQLSTATEs (bad password,
#: no such role, no such database) and MySQL/MariaDB error numbers (access denied,
#: unknown database).
_PG_REFUSED_STATES = frozenset({"28P01", "28000", "3D000"})
_MYSQL_REFUSED_ERRORS = frozenset({1044, 1045, 1049, 1698})
_REFUSED_WORDS = ("password authentication failed", "does not exist", "access denied")


def _refused_for_good(error: BaseException | None) -> bool:
    """Whether a failed connection is permanent (credentials, database name)."""
    if error is None:
        return False
    if getattr(error, "sqlstate", None) in _PG_REFUSED_STATES:
        return True
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_REFUSED_ERRORS:
        return True
    text = str(error).lower()
    return any(words in text for words in _REFUSED_WORDS)


def run_query(
    engine: Engine,
    query: SqlQuery,
    params: Mapping[str, Any],
    *,
    timezone: str | None = None,
) -> pd.DataFrame:
    """Run a sql/ query with named binds and return a frame typed by its header.

    ``params`` may hold more values than the query declares (a standard set of
    windows); a declared parameter that is missing is a :class:`SqlContractError`.
    Failing to connect is a :class:`DependencyError`; a statement that runs past the
    statement timeout a :class:`StageTimeoutError`; a statement the database rejects
    (unknown table or column, syntax) a :class:`SqlContractError` naming the file.
    ``timezone``: see :func:`conform_frame`.
    """
    missing = [name for name in query.param_names if name not in params]
    if missing:
        raise SqlContractError(
            f"{query.path}: no value for declared parameter(s) {', '.join(missing)}"
        )
    binds = {spec.name: _bind_value(params[spec.name], spec.type, engine) for spec in query.params}
    started = time.perf_counter()
    try:
        frame = _fetch(engine, query, binds, timezone, arrow=True)
    except _ArrowUnsupportedError as exc:
        log.debug("%s: %s; fetching row tuples instead", query.name, exc)
        frame = _fetch(engine, query, binds, timezone, arrow=False)
    log.debug("query %s: %d rows in %.2fs", query.name, len(frame), time.perf_counter() - started)
    return frame


class _ArrowUnsupportedError(Exception):
    """A result column of an Arrow type :func:`conform_arrow` cannot convert faithfully."""


class _AdbcConnectError(Exception):
    """ADBC could not open a connection with the pooled connection's settings."""


#: PostgreSQL engines whose settings ADBC could not connect with: rows only from then on.
_ROWS_ONLY: weakref.WeakSet[Engine] = weakref.WeakSet()


def _fetch(
    engine: Engine, query: SqlQuery, binds: Mapping[str, Any], timezone: str | None, *, arrow: bool
) -> pd.DataFrame:
    """Run the query on a pooled connection into a typed frame.

    With ``arrow``: DuckDB exports Arrow itself, and PostgreSQL (psycopg) results come
    through ADBC on a libpq connection made with the pooled connection's own settings;
    otherwise (and for other dialects) row tuples come through the DB-API cursor.
    """
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise DependencyError(
            f"{query.path.name}: cannot connect to {safe_url(engine.url)}: "
            f"{_first_line(exc.orig or exc)}"
        ) from None
    try:
        with conn:
            if arrow and engine.dialect.name == "duckdb":
                return conform_arrow(_fetch_duckdb_arrow(conn, query, binds), query, timezone)
            conninfo = _libpq_conninfo(conn) if arrow and engine not in _ROWS_ONLY else None
            adbc = _adbc_postgres() if conninfo else None
            if adbc is not None and conninfo and None not in binds.values():
                try:
                    table, zone = _fetch_postgres_arrow(adbc, conninfo, engine, query, binds)
                except _AdbcConnectError as exc:
                    # psycopg connected but ADBC's libpq could not (an authentication or
                    # SSL setting it lacks): row tuples work, only slower
                    _ROWS_ONLY.add(engine)
                    log.warning(
                        "%s: the ADBC driver cannot connect (%s); fetching row tuples",
                        safe_url(engine.url),
                        exc,
                    )
                else:
                    return conform_arrow(table, query, timezone=timezone or zone)
            frame = _fetch_rows(conn, query, binds)
    except DBAPIError as exc:
        raise _statement_error(exc, query, engine) from None
    except duckdb.Error as exc:
        raise SqlContractError(
            f"{query.path}: the database rejected the query: {_first_line(exc)}"
        ) from None
    return conform_frame(frame, query, timezone=timezone)


def _fetch_rows(conn: Connection, query: SqlQuery, binds: Mapping[str, Any]) -> pd.DataFrame:
    """Portable fetch through the DB-API cursor, row tuples into object columns."""
    result = conn.execute(text(query.body), binds)
    columns = list(map(str, result.keys()))
    rows = result.fetchall()
    # object columns: no float detour for integers next to NULLs (big keys keep digits)
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    frame = pd.DataFrame({i: pd.Series(v, dtype=object) for i, v in enumerate(data)})
    frame.columns = columns
    return frame


def _fetch_duckdb_arrow(conn: Connection, query: SqlQuery, binds: Mapping[str, Any]) -> pa.Table:
    """DuckDB's result as an Arrow table (no Python object per value).

    SQLAlchemy compiles the named binds to DuckDB's ``$n`` placeholders (the same
    parsing as the portable path); DuckDB exports the result to Arrow itself.
    """
    compiled = text(query.body).bindparams(**binds).compile(dialect=conn.dialect)
    arguments = [compiled.params[name] for name in compiled.positiontup or []]
    driver_connection = conn.connection.driver_connection
    return driver_connection.sql(str(compiled), params=arguments).to_arrow_table()


@functools.cache
def _adbc_postgres() -> Any:
    """The ADBC PostgreSQL DB-API module, or None when the driver is not installed."""
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:  # the row-tuple path still works, only slower
        log.debug("adbc-driver-postgresql is not installed: PostgreSQL rows come as tuples")
        return None
    return adbc


def _libpq_conninfo(conn: Connection) -> str | None:
    """The libpq connection string of a pooled psycopg connection, password included.

    psycopg reports every setting the connection was made with (host, port, database,
    user, ``options`` with the statement timeout and search_path, connect timeout, SSL),
    so an ADBC connection made from it lands in the same place under the same limits.
    None for other PostgreSQL drivers.
    """
    info = getattr(conn.connection.driver_connection, "info", None)
    dsn = getattr(info, "dsn", None)
    if not isinstance(dsn, str):
        return None
    password = getattr(info, "password", None)
    if password:
        escaped = password.replace("\\", "\\\\").replace("'", "\\'")
        dsn = f"{dsn} password='{escaped}'"
    return dsn


def _is_typed_literal(value: Any) -> bool:
    """A bind :class:`_TypedLiteral` can write: a date, naive timestamp or finite number."""
    if isinstance(value, datetime):
        return value.tzinfo is None
    if isinstance(value, bool):
        return False
    if isinstance(value, (date, int)):
        return True
    return isinstance(value, float) and math.isfinite(value)


class _TypedLiteral(UserDefinedType):
    """Renders a bind as a typed PostgreSQL literal (see :func:`_fetch_postgres_arrow`)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TEXT"  # never used in DDL

    def literal_processor(self, dialect: Any) -> Any:
        def render(value: Any) -> str:
            if isinstance(value, datetime):
                return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
            if isinstance(value, date):
                return f"DATE '{value.isoformat()}'"
            return repr(value) if isinstance(value, float) else str(int(value))

        return render


def _fetch_postgres_arrow(
    adbc: Any, conninfo: str, engine: Engine, query: SqlQuery, binds: Mapping[str, Any]
) -> tuple[pa.Table, str | None]:
    """The result as an Arrow table through ADBC, and the session time zone when a
    column is a ``timestamptz`` (ADBC sends those as UTC instants).

    When every bind is a date, a naive timestamp or a finite number (the windows
    crm-batch computes), they are written into the statement as typed literals
    (``DATE '2026-06-30'``): without parameters ADBC reads the result with ``COPY ...
    (FORMAT binary)``, about twice as fast for a million rows as the prepared-statement
    path. The literals come from the typed values (ISO format, digits), never from text.
    Other binds (text) stay server-side parameters ``$n``.
    """
    statement = text(query.body)
    if all(_is_typed_literal(value) for value in binds.values()):
        literal = [bindparam(name, value, type_=_TypedLiteral()) for name, value in binds.items()]
        sql = str(
            statement.bindparams(*literal).compile(
                dialect=_DOLLAR_DIALECT, compile_kwargs={"literal_binds": True}
            )
        )
        arguments: list[Any] = []
    else:
        compiled = statement.bindparams(**binds).compile(dialect=_DOLLAR_DIALECT)
        sql = str(compiled)
        arguments = [compiled.params[name] for name in compiled.positiontup or []]
    where = f"{query.path.name} on {safe_url(engine.url)}"
    try:
        conn = adbc.connect(conninfo, autocommit=True)
    except adbc.Error as exc:
        raise _AdbcConnectError(_first_line(exc)) from None
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(sql, parameters=arguments or None)
            table = cursor.fetch_arrow_table()
            zone = None
            if any(pa.types.is_timestamp(f.type) and f.type.tz for f in table.schema):
                cursor.execute("select current_setting('TimeZone')")
                zone = str(cursor.fetchone()[0])
    except adbc.Error as exc:
        state = str(getattr(exc, "sqlstate", None) or "")
        reason = _first_line(exc)
        if state == "57014":  # query_canceled: the statement timeout
            raise StageTimeoutError(
                f"{where}: the statement ran past its time limit ({reason}); make the query "
                "cheaper or raise database.statement_timeout_seconds"
            ) from None
        if not state or state.startswith(_PG_UNAVAILABLE_CLASSES):
            raise DependencyError(f"{where}: {reason}") from None
        raise SqlContractError(f"{query.path}: the database rejected the query: {reason}") from None
    return table, zone


def _statement_error(exc: DBAPIError, query: SqlQuery, engine: Engine) -> Exception:
    """Classify a failed statement: timeout, lost/locked database, or a rejected query."""
    reason = _first_line(exc.orig or exc)
    where = f"{query.path.name} on {safe_url(engine.url)}"
    if _is_timeout(exc.orig):
        return StageTimeoutError(
            f"{where}: the statement ran past its time limit ({reason}); make the query "
            "cheaper or raise database.statement_timeout_seconds"
        )
    if exc.connection_invalidated or getattr(exc.orig, "sqlite_errorcode", None) in _SQLITE_BUSY:
        return DependencyError(f"{where}: {reason}")
    return SqlContractError(f"{query.path}: the database rejected the query: {reason}")


#: SQLite result codes for a busy/locked or unreadable database (not the query's fault).
_SQLITE_BUSY = frozenset({5, 6, 10, 13, 14})


def _is_timeout(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) == "57014":  # PostgreSQL query_canceled
        return True
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in {1969, 3024}:  # MariaDB max_statement_time, MySQL max_execution_time
        return True
    return code == 2013 and "timed out" in str(orig)  # PyMySQL's socket read timeout


def conform_frame(
    frame: pd.DataFrame, query: SqlQuery, *, timezone: str | None = None
) -> pd.DataFrame:
    """Check the columns against the header and cast each to its declared type.

    Timestamps with a time zone (PostgreSQL ``timestamptz``, DuckDB ``TIMESTAMPTZ``)
    become naive: converted to ``timezone`` when given, else each keeps the wall time
    the database sent (the session time zone), offsets that differ row by row
    (daylight saving) included.
    """
    returned = _returned_columns([str(c) for c in frame.columns], query)
    frame = frame.rename(columns={r: d for d, r in returned.items()})[list(returned)]
    typed = {
        spec.name: _cast(frame[spec.name], spec.type, query, spec.name, timezone)
        for spec in query.columns
    }
    return pd.DataFrame(typed, index=frame.index, copy=False)


def conform_arrow(table: pa.Table, query: SqlQuery, timezone: str | None = None) -> pd.DataFrame:
    """:func:`conform_frame` for an Arrow result: the same checks, dtypes and errors.

    Columns of the Arrow types databases send for each header type are converted in
    Arrow; any other column goes through the per-value conversion of row tuples.
    ``timezone`` also names the zone of ``timestamptz`` columns when no conversion
    zone is configured (the session time zone ADBC does not apply itself).
    """
    returned = _returned_columns(list(table.column_names), query)
    typed: dict[str, pd.Series] = {}
    for spec in query.columns:
        column = table.column(returned[spec.name])
        try:
            series = _arrow_series(column, spec.type, timezone)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            series = None  # out of range or unparsable: the generic path names the row
        if series is None:
            try:
                values = column.to_pandas()
            except (pa.ArrowException, ValueError, TypeError) as exc:
                raise _ArrowUnsupportedError(f"column {spec.name}: {column.type}") from exc
            series = _cast(values, spec.type, query, spec.name, timezone)
        typed[spec.name] = series
    # copy=False: the typed columns are new; stacking them into 2-D blocks would copy all
    return pd.DataFrame(typed, index=pd.RangeIndex(table.num_rows), copy=False)


def _returned_columns(returned: list[str], query: SqlQuery) -> dict[str, str]:
    """Declared column -> returned column name (case-insensitive), in header order.

    Raises :class:`SqlContractError` for a repeated, missing or undeclared column.
    """
    lowered = [c.lower() for c in returned]
    repeated = sorted({c for c in returned if lowered.count(c.lower()) > 1})
    if repeated:
        raise SqlContractError(
            f"{query.path}: the query returns {', '.join(repeated)} more than once; give "
            "every output column its own alias"
        )
    by_lower = {c.lower(): c for c in returned}
    declared = list(query.column_names)
    missing = [c for c in declared if c.lower() not in by_lower]
    extra = [c for c in returned if c.lower() not in {d.lower() for d in declared}]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"declared but not returned: {', '.join(missing)}")
        if extra:
            parts.append(f"returned but not declared: {', '.join(extra)}")
        raise SqlContractError(f"{query.path}: columns differ from the header ({'; '.join(parts)})")
    return {d: by_lower[d.lower()] for d in declared}


def _string_series(column: pa.ChunkedArray) -> pd.Series:
    """A ``large_string`` column as pandas ``string``, sharing its buffers.

    The array always has a chunk (an empty one for no rows): some pandas operations,
    e.g. ``merge_asof`` on a text key, fail on an Arrow column without chunks.
    """
    if column.num_chunks == 0:
        column = pa.chunked_array([pa.array([], type=pa.large_string())])
    return pd.Series(pd.arrays.ArrowStringArray(column))


def _integer_id_series(column: pa.ChunkedArray) -> pd.Series:
    """Integer ids as text in one chunk, with the integers remembered for joins
    (:mod:`crm_batch.source.ids`: the KPI layer need not parse the text back)."""
    ints = pc.cast(column, pa.int64())
    ints = ints.combine_chunks() if ints.num_chunks else pa.array([], type=pa.int64())
    series = _string_series(pa.chunked_array([pc.cast(ints, pa.large_string())]))
    numbers = ints.fill_null(0).to_numpy(zero_copy_only=False)
    remember_integer_keys(series, (numbers, ints.is_null().to_numpy(zero_copy_only=False)))
    return series


def _arrow_series(column: pa.ChunkedArray, kind: str, timezone: str | None) -> pd.Series | None:
    """One Arrow column as its header type's pandas series; None for the generic path.

    Handled: text and integer ids, text; dates and timestamps (a time zone is dropped
    after converting to ``timezone``, else to the zone the column carries); integers
    and exact integral decimals (DuckDB sums) as Int64; numbers, decimals and
    PostgreSQL ``numeric`` text as float64; booleans and 0/1 integers as boolean.
    """
    if pa.types.is_dictionary(column.type):  # enums
        column = column.cast(column.type.value_type)
    if isinstance(column.type, pa.BaseExtensionType):  # ADBC: numeric and others as text
        storage = column.type.storage_type
        textual = pa.types.is_string(storage) or pa.types.is_large_string(storage)
        if not (textual and kind in {"int", "float", "money"}):
            # e.g. a numeric id "7.00", which the row path turns into "7"
            raise _ArrowUnsupportedError(f"{column.type} read as {kind}")
        column = pa.chunked_array([chunk.storage for chunk in column.chunks], storage)
    kind_type = column.type
    if kind in {"id", "text"}:
        textual = pa.types.is_string(kind_type) or pa.types.is_large_string(kind_type)
        if kind == "id" and pa.types.is_integer(kind_type):
            return _integer_id_series(column)
        if not textual:
            return None
        return _string_series(pc.cast(column, pa.large_string()))
    if kind in {"date", "timestamp"}:
        if pa.types.is_timestamp(kind_type) and kind_type.tz:
            zone = timezone or kind_type.tz
            values = _naive(pd.Series(column.to_pandas()), zone).astype("datetime64[ns]")
        elif pa.types.is_date(kind_type) or pa.types.is_timestamp(kind_type):
            nanos = pc.cast(column, pa.timestamp("ns"))
            values = pd.Series(nanos.to_numpy(), dtype="datetime64[ns]")
        else:
            return None
        if kind == "date" and not pa.types.is_date(kind_type):  # a date type has no time
            return values.dt.normalize()
        return values
    if kind == "int":
        integral = pa.types.is_decimal(kind_type) and kind_type.scale == 0
        if not (pa.types.is_integer(kind_type) or integral):
            return None
        return pd.Series(pd.Int64Dtype().__from_arrow__(pc.cast(column, pa.int64())))
    if kind in {"float", "money"}:
        numeric = pa.types.is_integer(kind_type) or pa.types.is_floating(kind_type)
        textual = pa.types.is_string(kind_type) or pa.types.is_large_string(kind_type)
        if pa.types.is_decimal(kind_type):
            return pd.Series(decimal_floats(column), dtype="float64", copy=False)
        if not (numeric or textual):
            return None
        floats = pc.cast(column, pa.float64())
        return pd.Series(floats.to_numpy(zero_copy_only=False), dtype="float64")
    if kind == "bool":
        if pa.types.is_integer(kind_type):
            column = pc.not_equal(column, 0)
        elif not pa.types.is_boolean(kind_type):
            return None
        return pd.Series(pd.BooleanDtype().__from_arrow__(column))
    return None


def decimal_floats(column: pa.ChunkedArray) -> np.ndarray:
    """Decimal values as the nearest float64 each (NULL: NaN), like ``float(Decimal)``.

    Arrow's own decimal-to-float cast is not correctly rounded: ``19.99`` came out as
    ``19.990000000000002`` for about one value in eight, so money read through Arrow
    (DuckDB, PostgreSQL) differed in the last bit from the same money read as Python
    decimals (SQLite, MariaDB) and printed with a tail in CSV and JSON. Here the
    unscaled integer of each decimal is read from the Arrow buffer and divided by the
    power of ten in one float64 division, which is correctly rounded whenever the
    unscaled value is exact in a float64 (below 2**53: money under 90 trillion with
    cents); any other value goes through Python's Decimal.
    """
    parts = [_decimal_chunk_floats(chunk) for chunk in column.chunks]
    return np.concatenate(parts) if parts else np.empty(0, dtype="float64")


def _decimal_chunk_floats(chunk: pa.Array) -> np.ndarray:
    scale = chunk.type.scale
    unscaled = _unscaled_int64(chunk) if 0 <= scale <= 22 and len(chunk) else None
    if unscaled is None:  # decimal256, negative or huge scales: rare, Python per value
        return np.array([np.nan if v is None else float(v) for v in chunk.to_pylist()])
    values, fits = unscaled
    floats = values / float(10**scale)  # 10**22 is still exact in float64
    # exact where the integer is: below 2**53 in size (every amount under 90 trillion)
    exact = fits & (values <= 2**53) & (values >= -(2**53))
    if chunk.null_count:
        missing = chunk.is_null().to_numpy(zero_copy_only=False)
        floats[missing] = np.nan
        exact |= missing
    if not exact.all():
        for row in np.flatnonzero(~exact):
            floats[row] = float(chunk[int(row)].as_py())
    return floats


def _unscaled_int64(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """The unscaled integers of a decimal32/64/128 chunk as int64 and where they fit
    (little-endian two's complement in the data buffer); None for other widths."""
    data = chunk.buffers()[1]
    rows = slice(chunk.offset, chunk.offset + len(chunk))
    for width, dtype in (("decimal32", "<i4"), ("decimal64", "<i8")):  # pyarrow >= 18
        is_width = getattr(pa.types, f"is_{width}", None)
        if is_width is not None and is_width(chunk.type):
            values = np.frombuffer(data, dtype=dtype)[rows].astype("int64")
            return values, np.ones(len(values), dtype=bool)
    if not pa.types.is_decimal128(chunk.type):
        return None
    words = np.frombuffer(data, dtype="<i8").reshape(-1, 2)[rows]  # low word, high word
    low, high = words[:, 0], words[:, 1]
    return low, high == (low >> 63)  # the high word only extends the sign


def _cast(
    values: pd.Series, kind: str, query: SqlQuery, column: str, timezone: str | None
) -> pd.Series:
    try:
        if kind == "id":
            return id_series(values)
        if kind == "text":
            if _all_text(values):
                return values.astype("string")
            return values.map(_decoded, na_action="ignore").astype("string")
        if kind in {"date", "timestamp"}:
            converted = pd.to_datetime(_naive(values, timezone), errors="raise", format="mixed")
            # text with one offset ("...+08:00", SQLite) parses tz-aware: drop it too
            converted = _naive(converted, timezone).astype("datetime64[ns]")
            return converted.dt.normalize() if kind == "date" else converted
        if kind == "int":
            return pd.to_numeric(values, errors="raise").astype("Int64")
        if kind in {"float", "money"}:
            return pd.to_numeric(values, errors="raise").astype("float64")
        if kind == "bool":
            if pd.api.types.is_bool_dtype(values) or _inferred(values) == "boolean":
                return values.astype("boolean")
            return values.map(_to_bool, na_action="ignore").astype("boolean")
    except (ValueError, TypeError, OverflowError) as exc:
        bad = _first_bad_row(values, kind)
        raise DataError(
            f"{query.path.name}: column {column} should be {kind}: {bad} ({_first_line(exc)})"
        ) from None
    raise SqlContractError(f"{query.path}: unknown column type {kind!r} for {column}")


def _naive(values: pd.Series, timezone: str | None) -> pd.Series:
    """Drop time zones: convert to ``timezone`` first when given."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return (values.dt.tz_convert(timezone) if timezone else values).dt.tz_localize(None)
    if values.dtype != object:
        return values
    zone = ZoneInfo(timezone) if timezone else None

    def naive(value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return (value.astimezone(zone) if zone else value).replace(tzinfo=None)
        return value

    return values.map(naive, na_action="ignore")


def _inferred(values: pd.Series) -> str:
    """pandas' inferred kind of an object column's values (one C-level pass)."""
    if values.dtype != object:
        return ""
    return pd.api.types.infer_dtype(values, skipna=True)


def _all_text(values: pd.Series) -> bool:
    """True when every value is already text (or missing): no per-value conversion."""
    return pd.api.types.is_string_dtype(values.dtype) and (
        values.dtype != object or _inferred(values) in {"string", "empty"}
    )


def _decoded(value: Any) -> Any:
    """Text as str: bytes (binary collations, BLOB-ish columns) decode as UTF-8."""
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


def id_series(values: pd.Series) -> pd.Series:
    """Opaque keys as text: integers lose no digits and gain no '.0'; NULL stays NULL.

    Text keys are kept as they are (``"007"`` stays ``"007"``, ``"1e3"`` stays text).
    """
    if pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").astype("string")
    if pd.api.types.is_float_dtype(values):
        return values.astype("Int64").astype("string")
    if _all_text(values):
        return values.astype("string")
    return values.map(_id_text, na_action="ignore").astype("string")


def _id_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, (float, Decimal, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (bytes, bytearray)) and len(value) == 1:  # MySQL BIT(1)
        return value != b"\x00"
    if isinstance(value, numbers.Number):  # tinyint(1), SQLite 0/1, Decimal sums
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "t", "yes", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "f", "no", "n"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _first_bad_row(values: pd.Series, kind: str) -> str:
    """Name the first row whose value does not convert (for the error message)."""
    for position, value in enumerate(values):
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        try:
            if kind in {"date", "timestamp"}:
                pd.Timestamp(value).as_unit("ns")
            elif kind == "int":
                if not float(value).is_integer():
                    raise ValueError("not a whole number")
            elif kind in {"float", "money"}:
                float(value)
            elif kind == "bool":
                _to_bool(value)
        except (ValueError, TypeError, OverflowError):
            return f"row {position + 1} has {str(value)[:60]!r}"
    return "a value does not convert"


def _bind_value(value: Any, kind: str, engine: Engine) -> Any:
    """Bind values as the driver expects.

    SQLite stores dates and timestamps as ISO text, written by SQLAlchemy as
    ``YYYY-MM-DD`` and ``YYYY-MM-DD HH:MM:SS.ffffff``; binds use the same shapes so that
    text comparison agrees with time order, equality included.
    """
    if value is None:
        return None
    if kind == "date":
        value = pd.Timestamp(value).date()
        return value.isoformat() if engine.dialect.name == "sqlite" else value
    if kind == "timestamp":
        value = pd.Timestamp(value).to_pydatetime()
        if engine.dialect.name == "sqlite":
            return value.isoformat(sep=" ", timespec="microseconds")
        return value
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def _first_line(exc: BaseException | object) -> str:
    message = str(exc).strip().splitlines()
    return message[0] if message else type(exc).__name__


def as_date(value: date | datetime | str) -> date:
    """Parse a business date (``YYYY-MM-DD``) or pass a date through."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)
