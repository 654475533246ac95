"""PostgreSQL results as Arrow tables through the ADBC driver (``adbc-driver-postgresql``).

The ADBC connection is made from the pooled psycopg connection's own settings
(:func:`libpq_conninfo`: host, database, user, ``options`` with the statement timeout
and search_path, connect timeout, SSL), so it lands in the same place under the same
limits. :func:`crm_batch.source.db.run_query` uses this path when the driver is
installed and falls back to row tuples otherwise; the Arrow table is typed by
:func:`crm_batch.source.conform.conform_arrow`.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import UserDefinedType

from crm_batch.errors import DependencyError
from crm_batch.source.failures import PG_QUERY_CANCELED, first_line, rejected_error, timeout_error
from crm_batch.source.sql_files import SqlQuery
from crm_batch.urls import safe_url

log = logging.getLogger(__name__)

#: Compiles named binds to PostgreSQL's ``$n`` placeholders (what ADBC sends).
_DOLLAR_DIALECT = PGDialect_psycopg(paramstyle="numeric_dollar")
#: SQLSTATE classes meaning "the server or the connection failed", not the query.
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57P", "58")


class AdbcConnectError(Exception):
    """ADBC could not open a connection with the pooled connection's settings."""


@functools.cache
def adbc_postgres() -> Any:
    """The ADBC PostgreSQL DB-API module, or None when the driver is not installed."""
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:  # the row-tuple path still works, only slower
        log.debug("adbc-driver-postgresql is not installed: PostgreSQL rows come as tuples")
        return None
    return adbc


def libpq_conninfo(conn: Connection) -> str | None:
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


def is_typed_literal(value: Any) -> bool:
    """A bind :class:`TypedLiteral` can write: a date, naive timestamp or finite number."""
    if isinstance(value, datetime):
        return value.tzinfo is None
    if isinstance(value, bool):
        return False
    if isinstance(value, (date, int)):
        return True
    return isinstance(value, float) and math.isfinite(value)


class TypedLiteral(UserDefinedType):
    """Renders a bind as a typed PostgreSQL literal (see :func:`fetch_arrow`)."""

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


def fetch_arrow(
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
    if all(is_typed_literal(value) for value in binds.values()):
        literal = [bindparam(name, value, type_=TypedLiteral()) for name, value in binds.items()]
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
        raise AdbcConnectError(first_line(exc)) from None
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
        reason = first_line(exc)
        if state == PG_QUERY_CANCELED:  # the statement timeout
            raise timeout_error(where, reason) from None
        if not state or state.startswith(_PG_UNAVAILABLE_CLASSES):
            raise DependencyError(f"{where}: {reason}") from None
        raise rejected_error(query.path, reason) from None
    return table, zone
