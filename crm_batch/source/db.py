"""SQLAlchemy engines with timeouts, and sql/ queries run into typed pandas frames.

Engines are made on demand (never at import time). Every engine has a connect timeout
and, where the driver supports one, a statement timeout, so a dead or hung server ends
in a :class:`DependencyError` instead of a hung night. URLs are shown only through
:func:`safe_url`, which hides the password.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from crm_batch.errors import DataError, DependencyError, SqlContractError
from crm_batch.source.sql_files import SqlQuery

log = logging.getLogger(__name__)

#: Drivers we install: a bare ``postgresql://`` or ``mysql://`` URL is routed to them.
_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}


def normalize_url(url: URL | str) -> URL:
    """Route bare dialect names to the drivers crm-batch installs."""
    url = make_url(url)
    backend, driver = url.get_backend_name(), url.get_driver_name()
    wanted = _DEFAULT_DRIVERS.get(backend)
    if wanted and "+" not in url.drivername and driver != wanted:
        url = url.set(drivername=f"{backend}+{wanted}")
    return url


def safe_url(url: URL | str) -> str:
    """The URL as text with the password replaced by ``***``: for logs and errors."""
    return make_url(url).render_as_string(hide_password=True)


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
    """An engine for ``url`` with connect and statement timeouts set per driver."""
    url = normalize_url(url)
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["connect_timeout"] = max(1, int(connect_timeout))
        if statement_timeout:
            connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    elif backend in {"mysql", "mariadb"}:
        connect_args["connect_timeout"] = max(1, int(connect_timeout))
        connect_args["charset"] = "utf8mb4"
        if statement_timeout:
            # the socket read timeout bounds every statement's wait for an answer
            connect_args["read_timeout"] = max(1, int(statement_timeout))
            connect_args["write_timeout"] = max(1, int(statement_timeout))
    elif backend == "sqlite":
        connect_args["timeout"] = connect_timeout
    elif backend == "duckdb" and url.database not in (None, "", ":memory:"):
        from pathlib import Path

        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=backend != "duckdb")
    except (SQLAlchemyError, ImportError) as exc:
        raise DependencyError(f"cannot use database {safe_url(url)}: {_first_line(exc)}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def check_connection(engine: Engine) -> None:
    """Open one connection and run ``select 1``; raise :class:`DependencyError` if we can't."""
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except (OperationalError, DBAPIError) as exc:
        raise DependencyError(
            f"cannot connect to {safe_url(engine.url)}: {_first_line(exc.orig or exc)}"
        ) from None


def run_query(engine: Engine, query: SqlQuery, params: Mapping[str, Any]) -> pd.DataFrame:
    """Run a sql/ query with named binds and return a frame typed by its header.

    ``params`` may hold more values than the query declares (a standard set of
    windows); a declared parameter that is missing is a :class:`SqlContractError`.
    """
    missing = [name for name in query.param_names if name not in params]
    if missing:
        raise SqlContractError(
            f"{query.path}: no value for declared parameter(s) {', '.join(missing)}"
        )
    binds = {spec.name: _bind_value(params[spec.name], spec.type, engine) for spec in query.params}
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            result = conn.execute(text(query.body), binds)
            columns = list(result.keys())
            rows = result.fetchall()
    except OperationalError as exc:
        raise DependencyError(
            f"{query.path.name} on {safe_url(engine.url)}: {_first_line(exc.orig or exc)}"
        ) from None
    except DBAPIError as exc:
        raise SqlContractError(
            f"{query.path}: the database rejected the query: {_first_line(exc.orig or exc)}"
        ) from None
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame = conform_frame(frame, query)
    log.debug("query %s: %d rows in %.2fs", query.name, len(frame), time.perf_counter() - started)
    return frame


def conform_frame(frame: pd.DataFrame, query: SqlQuery) -> pd.DataFrame:
    """Check the columns against the header and cast each to its declared type."""
    returned = [str(c) for c in frame.columns]
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
        spec.name: _cast(frame[spec.name], spec.type, query, spec.name) for spec in query.columns
    }
    return pd.DataFrame(typed, index=frame.index)


def _cast(values: pd.Series, kind: str, query: SqlQuery, column: str) -> pd.Series:
    try:
        if kind == "id":
            return id_series(values)
        if kind == "text":
            return values.astype("string")
        if kind in {"date", "timestamp"}:
            converted = pd.to_datetime(values, errors="raise", format="mixed")
            if getattr(converted.dt, "tz", None) is not None:
                converted = converted.dt.tz_localize(None)
            converted = converted.astype("datetime64[ns]")
            return converted.dt.normalize() if kind == "date" else converted
        if kind == "int":
            return pd.to_numeric(values, errors="raise").astype("Int64")
        if kind in {"float", "money"}:
            return pd.to_numeric(values, errors="raise").astype("float64")
        if kind == "bool":
            return values.map(_to_bool, na_action="ignore").astype("boolean")
    except (ValueError, TypeError) as exc:
        bad = _first_bad_row(values, kind)
        raise DataError(
            f"{query.path.name}: column {column} should be {kind}: {bad} ({_first_line(exc)})"
        ) from None
    raise SqlContractError(f"{query.path}: unknown column type {kind!r} for {column}")


def id_series(values: pd.Series) -> pd.Series:
    """Opaque keys as text: integers lose no digits and gain no '.0'."""
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").astype("string")
    return values.map(lambda v: v if v is None or isinstance(v, str) else str(v)).astype("string")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "t", "yes", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "f", "no", "n"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _first_bad_row(values: pd.Series, kind: str) -> str:
    """Name the first row whose value does not convert (for the error message)."""
    for position, value in enumerate(values):
        if value is None:
            continue
        try:
            if kind in {"date", "timestamp"}:
                pd.Timestamp(value)
            elif kind in {"int", "float", "money"}:
                float(value)
            elif kind == "bool":
                _to_bool(value)
        except (ValueError, TypeError):
            return f"row {position + 1} has {str(value)[:60]!r}"
    return "a value does not convert"


def _bind_value(value: Any, kind: str, engine: Engine) -> Any:
    """Bind values as the driver expects; SQLite stores dates and timestamps as ISO text."""
    if value is None:
        return None
    if kind == "date":
        value = pd.Timestamp(value).date()
        return value.isoformat() if engine.dialect.name == "sqlite" else value
    if kind == "timestamp":
        value = pd.Timestamp(value).to_pydatetime()
        return value.isoformat(sep=" ") if engine.dialect.name == "sqlite" else value
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
