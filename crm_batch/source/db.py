"""SQLAlchemy engines with timeouts, and sql/ queries run into typed pandas frames.

Engines are made on demand (never at import time). Every engine has a connect timeout
and, where the driver supports one, a statement timeout, so a dead or hung server ends
in a :class:`DependencyError` (or :class:`StageTimeoutError`) instead of a hung night.
URLs are shown only through :func:`safe_url`, which hides the password.

Column types of the sql/ headers come back as these pandas dtypes: ``id`` and ``text``
-> ``string`` (keys are opaque text: ``7`` becomes ``"7"``, ``"007"`` stays ``"007"``),
``date`` and ``timestamp`` -> ``datetime64[ns]`` (naive local time), ``int`` -> ``Int64``,
``float`` and ``money`` -> ``float64``, ``bool`` -> ``boolean``.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crm_batch.config import Settings
from crm_batch.errors import DataError, DependencyError, SqlContractError, StageTimeoutError
from crm_batch.source.sql_files import SqlQuery

log = logging.getLogger(__name__)

#: Drivers we install: a bare ``postgresql://`` or ``mysql://`` URL is routed to them.
_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}

#: URL query keys whose values are secrets (drivers accept ``?password=...`` too).
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword", "secret", "token"})

#: MySQL/MariaDB: the client gives up this long after the server-side statement limit,
#: so that the server's own "statement timeout" error normally arrives first.
_MYSQL_CLIENT_GRACE_SECONDS = 5.0


def normalize_url(url: URL | str) -> URL:
    """Route bare dialect names to the drivers crm-batch installs."""
    url = make_url(url)
    backend, driver = url.get_backend_name(), url.get_driver_name()
    wanted = _DEFAULT_DRIVERS.get(backend)
    if wanted and "+" not in url.drivername and driver != wanted:
        url = url.set(drivername=f"{backend}+{wanted}")
    return url


def safe_url(url: URL | str) -> str:
    """The URL as text with the password (also a ``?password=`` query) shown as ``***``."""
    url = make_url(url)
    secrets = {key: "***" for key in url.query if key.lower() in _SECRET_QUERY_KEYS}
    if secrets:
        url = url.update_query_dict(secrets)
    return url.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")


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
        raise DependencyError(
            f"cannot connect to {safe_url(engine.url)}: {_first_line(exc.orig or exc)}"
        ) from None


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
        conn = engine.connect()
    except DBAPIError as exc:
        raise DependencyError(
            f"{query.path.name}: cannot connect to {safe_url(engine.url)}: "
            f"{_first_line(exc.orig or exc)}"
        ) from None
    try:
        with conn:
            if engine.dialect.name == "duckdb":
                frame = _fetch_duckdb_columnar(conn, query, binds)
            else:
                frame = _fetch_rows(conn, query, binds)
    except DBAPIError as exc:
        raise _statement_error(exc, query, engine) from None
    except duckdb.Error as exc:
        raise SqlContractError(
            f"{query.path}: the database rejected the query: {_first_line(exc)}"
        ) from None
    frame = conform_frame(frame, query, timezone=timezone)
    log.debug("query %s: %d rows in %.2fs", query.name, len(frame), time.perf_counter() - started)
    return frame


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


def _fetch_duckdb_columnar(
    conn: Connection, query: SqlQuery, binds: Mapping[str, Any]
) -> pd.DataFrame:
    """DuckDB straight into pandas columns: ~10x faster than row tuples at 1M rows.

    SQLAlchemy compiles the named binds to DuckDB's ``$n`` placeholders (the same
    parsing as the portable path), and DuckDB's own ``df()`` builds the frame;
    integers with NULLs arrive as nullable Int64, so keys keep every digit.
    """
    compiled = text(query.body).bindparams(**binds).compile(dialect=conn.dialect)
    positions = compiled.positiontup or []
    arguments = [compiled.params[name] for name in positions]
    driver_connection = conn.connection.driver_connection
    return driver_connection.execute(str(compiled), arguments).df()


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
    returned = [str(c) for c in frame.columns]
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
    frame = frame.rename(columns={by_lower[d.lower()]: d for d in declared})[declared]
    typed = {
        spec.name: _cast(frame[spec.name], spec.type, query, spec.name, timezone)
        for spec in query.columns
    }
    return pd.DataFrame(typed, index=frame.index)


def _cast(
    values: pd.Series, kind: str, query: SqlQuery, column: str, timezone: str | None
) -> pd.Series:
    try:
        if kind == "id":
            return id_series(values)
        if kind == "text":
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


def engine_from_settings(settings: Settings, url: URL | None = None) -> Engine:
    """An engine for the configured database (or ``url``) with the configured timeouts."""
    return make_engine(
        settings.database_url if url is None else url,
        connect_timeout=settings.connect_timeout_seconds,
        statement_timeout=settings.statement_timeout_seconds,
    )
