"""SQLAlchemy engines with timeouts, and sql/ queries run into typed pandas frames.

Engines are made on demand (never at import time). Every engine has a connect timeout
and, where the driver supports one, a statement timeout, so a dead or hung server ends
in a :class:`DependencyError` (or :class:`StageTimeoutError`) instead of a hung night
(:mod:`crm_batch.source.failures` says which error each failure becomes). URLs are
shown only through :func:`crm_batch.urls.safe_url`, which hides the password.

Fetch paths (all give the same typed frames, :mod:`crm_batch.source.conform`): DuckDB
and PostgreSQL results arrive as Arrow columns (DuckDB's own Arrow export; on
PostgreSQL the ADBC driver, :mod:`crm_batch.source.pg_arrow`) and are typed column by
column in Arrow, without a Python object per value: pulling a million customers this
way takes a fraction of a second where row tuples took several. Other dialects (and
PostgreSQL without the ADBC driver) fetch row tuples through the SQLAlchemy connection.
A Spark Connect source (:class:`~crm_batch.source.spark.SparkSource`, not a SQLAlchemy
engine: :data:`Source` is either) runs the statement in Spark and returns Arrow too.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pandas as pd
import pyarrow as pa
from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crm_batch.errors import DependencyError, PermanentDependencyError, SqlContractError
from crm_batch.source import pg_arrow
from crm_batch.source.conform import ArrowUnsupportedError, conform_arrow, conform_frame
from crm_batch.source.failures import first_line, refused_for_good, rejected_error, statement_error
from crm_batch.source.spark import SparkSource
from crm_batch.source.sql_files import SqlQuery
from crm_batch.urls import normalize_url, safe_url

log = logging.getLogger(__name__)

#: MySQL/MariaDB: the client gives up this long after the server-side statement limit,
#: so that the server's own "statement timeout" error normally arrives first.
_MYSQL_CLIENT_GRACE_SECONDS = 5.0


#: What the source queries run on: a SQLAlchemy engine, or a Spark Connect server.
Source = Engine | SparkSource


def dialect_name(engine: Source) -> str:
    """The dialect name used to pick sql/ variants (``mariadb`` for MariaDB servers,
    ``spark`` for a Spark Connect source)."""
    if isinstance(engine, SparkSource):
        return engine.dialect_name
    name = engine.dialect.name
    if name == "mysql" and getattr(engine.dialect, "is_mariadb", False):
        return "mariadb"
    return name


def make_engine(
    url: URL | str,
    *,
    connect_timeout: float = 10.0,
    statement_timeout: float | None = 900.0,
    read_only: bool = False,
) -> Engine:
    """An engine for ``url`` with connect and statement timeouts set per driver;
    ``read_only``: the driver refuses every write (:func:`_read_only_url`, and below).

    * PostgreSQL (psycopg): libpq's ``connect_timeout`` bounds the whole connection
      set-up (libpq waits at least 2 s); ``statement_timeout`` is added to the
      ``options`` the URL may already carry (e.g. a ``search_path``).
    * MySQL/MariaDB (PyMySQL): ``connect_timeout`` bounds the TCP connect and, as the
      read timeout during the handshake, a server that accepts but never answers;
      after connecting, the server limits each statement (``max_statement_time`` on
      MariaDB, ``max_execution_time`` on MySQL) and the client read timeout is the
      statement timeout plus a few seconds.
    * SQLite: ``connect_timeout`` is the busy timeout on a locked file.

    Read-only: SQLite opens the file with ``mode=ro``; DuckDB with ``read_only`` (other
    processes may then read the file at the same time); PostgreSQL sessions start with
    ``default_transaction_read_only=on``; MySQL/MariaDB sessions run ``SET SESSION
    TRANSACTION READ ONLY``.
    """
    url = normalize_url(url)
    backend = url.get_backend_name()
    if read_only and backend == "sqlite":
        url = _read_only_url(url)
    connect_seconds = max(1, math.ceil(connect_timeout))
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["connect_timeout"] = connect_seconds
        options = _postgres_options(url, statement_timeout, read_only=read_only)
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
        if read_only:
            connect_args["read_only"] = True
        else:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=backend != "duckdb")
    except (SQLAlchemyError, ImportError) as exc:
        raise DependencyError(f"cannot use database {safe_url(url)}: {first_line(exc)}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif backend in {"mysql", "mariadb"}:
        session = functools.partial(
            _mysql_session, statement_timeout=statement_timeout, read_only=read_only
        )
        event.listen(engine, "connect", session)
    elif backend == "postgresql":
        # before SQLAlchemy's own first query on the connection (it reads the version)
        event.listen(engine, "do_connect", _postgres_connect)
    return engine


def _postgres_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """Open a psycopg connection and make its text readable (:func:`_postgres_text`)."""
    connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
    _postgres_text(connection)
    return connection


#: PostgreSQL text types whose values a SQL_ASCII database hands over as raw bytes.
_PG_TEXT_TYPES = ("text", "varchar", "bpchar", "name")


def _postgres_text(dbapi_connection: Any) -> None:
    """A database created with ``ENCODING 'SQL_ASCII'`` stores bytes without a character
    set, and psycopg then returns every text value as ``bytes`` (which breaks every text
    operation downstream). On such a connection text is read as UTF-8, broken bytes as
    U+FFFD with one warning (as for SQLite, :class:`_LenientText`); UTF8 databases are
    untouched."""
    if getattr(getattr(dbapi_connection, "info", None), "encoding", "utf-8") != "ascii":
        return
    from psycopg.adapt import Loader

    lenient = _LenientText()

    class SqlAsciiText(Loader):
        def load(self, data: Any) -> str:
            return lenient(bytes(data))

    for name in _PG_TEXT_TYPES:
        dbapi_connection.adapters.register_loader(name, SqlAsciiText)


def _postgres_options(url: URL, statement_timeout: float | None, *, read_only: bool = False) -> str:
    """libpq ``options``: the URL's own plus ``-c statement_timeout`` unless it sets one,
    and ``-c default_transaction_read_only=on`` for a read-only engine."""
    existing = url.query.get("options") or ""
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    parts = [existing] if existing else []
    if statement_timeout and "statement_timeout" not in existing:
        parts.append(f"-c statement_timeout={math.ceil(statement_timeout * 1000)}")
    if read_only:
        parts.append("-c default_transaction_read_only=on")
    return " ".join(parts)


def _read_only_url(url: URL) -> URL:
    """A SQLite URL that opens its file read-only: the path as a ``file:`` URI with
    ``mode=ro`` (percent-encoded, so any file name works). A URL that is a URI already
    (``uri=true``) or an in-memory database is left as it is."""
    name = url.database
    if name in (None, "", ":memory:") or str(url.query.get("uri", "")).lower() == "true":
        return url
    uri = "file:" + quote(Path(name).as_posix(), safe="/:")
    return url.set(database=uri).update_query_dict({"mode": "ro", "uri": "true"})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()
    dbapi_connection.text_factory = _LenientText()


class _LenientText:
    """Database bytes as ``str`` (SQLite text, a SQL_ASCII PostgreSQL database), bytes
    that are not UTF-8 read as U+FFFD.

    SQLite stores whatever bytes an import wrote; Python's driver then fails the whole
    query with the row's text in the message (personal data in the log and the run log),
    stopping the night for one bad row. Instead the broken bytes become U+FFFD, the rest
    of the text is kept, and one warning per connection counts such values (never the
    text itself): fix those rows in the source.
    """

    def __init__(self) -> None:
        self.broken = 0

    def __call__(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.broken += 1
            if self.broken == 1:
                log.warning(
                    "database text that is not valid UTF-8 was read with U+FFFD in place "
                    "of the broken bytes; fix those rows in the source (the text is not "
                    "logged)"
                )
            return raw.decode("utf-8", errors="replace")


def _mysql_session(
    dbapi_connection: Any,
    _record: Any,
    *,
    statement_timeout: float | None,
    read_only: bool = False,
) -> None:
    """After the handshake: statement limits on the server and on the client socket, and
    read-only transactions for a read-only engine."""
    client_timeout = statement_timeout + _MYSQL_CLIENT_GRACE_SECONDS if statement_timeout else None
    # PyMySQL re-applies these before every socket read/write (no public setter exists)
    if hasattr(dbapi_connection, "_read_timeout"):
        dbapi_connection._read_timeout = client_timeout
        dbapi_connection._write_timeout = client_timeout
    if read_only:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        finally:
            cursor.close()
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


def server_read_only(engine: Engine) -> str | None:
    """Why this PostgreSQL or MySQL/MariaDB server will not take crm-batch's writes on
    this connection, or None when it will (other dialects: None).

    PostgreSQL: a standby (``pg_is_in_recovery()``), a read-only session
    (``transaction_read_only``, e.g. a role with ``default_transaction_read_only``), or a
    user who may neither create tables in its current schema nor insert into an existing
    ``batch_runs`` (a user with SELECT only). MySQL/MariaDB: ``read_only``,
    ``super_read_only``, a read-only session (``transaction_read_only`` /
    ``tx_read_only``), or a user whose grants (its own and its enabled roles') allow
    neither CREATE in the database nor INSERT into an existing ``batch_runs``. A server
    that cannot be reached is a :class:`DependencyError` (as :func:`check_connection`).
    """
    name = engine.dialect.name
    if name not in {"postgresql", "mysql", "mariadb"}:
        return None
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        error = PermanentDependencyError if refused_for_good(exc.orig) else DependencyError
        raise error(f"cannot connect to {safe_url(engine.url)}: {first_line(exc)}") from None
    with conn:
        return _postgres_read_only(conn) if name == "postgresql" else _mysql_read_only(conn)


def _postgres_read_only(conn: Connection) -> str | None:
    row = conn.execute(
        text(
            "select pg_is_in_recovery(), current_setting('transaction_read_only') = 'on', "
            "coalesce(has_schema_privilege(current_schema(), 'CREATE'), false), "
            "coalesce(has_table_privilege(to_regclass('batch_runs'), 'INSERT'), false), "
            "coalesce(current_schema(), '(no schema)')"
        )
    ).one()
    recovery, read_only_session, can_create, can_log, schema = row
    if recovery:
        return "the PostgreSQL server is a standby (in recovery)"
    if read_only_session:
        return "the PostgreSQL session is read-only (transaction_read_only = on)"
    if not (can_create or can_log):
        return (
            f"this PostgreSQL user may not create tables in schema {schema!r} nor write "
            "an existing batch_runs"
        )
    return None


def _mysql_read_only(conn: Connection) -> str | None:
    names = ("read_only", "super_read_only", "transaction_read_only", "tx_read_only")
    listed = ", ".join(f"'{name}'" for name in names)
    rows = conn.execute(text(f"show variables where variable_name in ({listed})")).all()
    on = sorted(str(name) for name, value in rows if str(value).upper() in {"ON", "1"})
    if on:
        return f"the MySQL/MariaDB server or session is read-only ({', '.join(on)} = ON)"
    return _mysql_grants_read_only(conn)


#: The privileges of the connected user (and its enabled roles) that let crm-batch keep
#: its state here: CREATE in the database, or INSERT into an existing batch_runs.
_MYSQL_PRIVILEGES = """
select 'user', privilege_type, '' from information_schema.user_privileges
 where grantee in :grantees
union all
select 'schema', privilege_type, '' from information_schema.schema_privileges
 where grantee in :grantees and database() like table_schema
union all
select 'table', privilege_type, table_name from information_schema.table_privileges
 where grantee in :grantees and table_schema = database() and table_name = 'batch_runs'
"""


def _mysql_grants_read_only(conn: Connection) -> str | None:
    """Why this MySQL/MariaDB user may not keep crm-batch's state in its database (it
    may neither create tables there nor insert into an existing ``batch_runs``), or None.

    Read from information_schema's privilege views, which show the connected user's own
    grants. Only a positive reading says read-only: when the user's own row cannot be
    found (an unusual authentication such as a proxy user) or the roles cannot be read,
    the database counts as writable, as before (``database.read_only`` says otherwise).
    """
    try:
        user = str(conn.execute(text("select current_user()")).scalar_one())
        name, _, host = user.rpartition("@")
        grantees = [f"'{name}'@'{host}'"]
        grantees += _mysql_enabled_roles(conn)
        rows = conn.execute(
            text(_MYSQL_PRIVILEGES).bindparams(bindparam("grantees", expanding=True)),
            {"grantees": grantees},
        ).all()
        has_runs = conn.execute(
            text(
                "select count(*) from information_schema.tables "
                "where table_schema = database() and table_name = 'batch_runs'"
            )
        ).scalar_one()
        database = conn.execute(text("select database()")).scalar_one()
    except DBAPIError as exc:
        log.debug("cannot read the MySQL/MariaDB privileges (%s); taken as writable", exc)
        return None
    if not any(level == "user" for level, _privilege, _table in rows):
        return None  # not our own rows: no positive reading
    privileges = {str(privilege).upper() for _level, privilege, _table in rows}
    if "CREATE" in privileges or ("INSERT" in privileges and has_runs):
        return None
    return (
        f"this MySQL/MariaDB user ({user}) may not create tables in database "
        f"{database!r} nor write an existing batch_runs"
    )


def _mysql_enabled_roles(conn: Connection) -> list[str]:
    """The grantee names of the session's enabled roles (MariaDB: ``'role'``; MySQL 8:
    ``'role'@'host'``); raises DBAPIError when they cannot be read."""
    try:
        rows = conn.execute(
            text("select role_name, role_host from information_schema.enabled_roles")
        ).all()
        return [f"'{role}'@'{host}'" for role, host in rows]
    except DBAPIError:
        conn.rollback()
    rows = conn.execute(text("select role_name from information_schema.enabled_roles")).all()
    return [f"'{role}'" for (role,) in rows if role is not None]


def check_connection(engine: Source) -> None:
    """Open one connection and run ``select 1``; raise :class:`DependencyError` if we can't."""
    if isinstance(engine, SparkSource):
        engine.check()
        return
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except DBAPIError as exc:
        error = PermanentDependencyError if refused_for_good(exc.orig) else DependencyError
        raise error(f"cannot connect to {safe_url(engine.url)}: {first_line(exc)}") from None


def run_query(
    engine: Source,
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
    ``timezone``: see :func:`~crm_batch.source.conform.conform_frame`.
    """
    missing = [name for name in query.param_names if name not in params]
    if missing:
        raise SqlContractError(
            f"{query.path}: no value for declared parameter(s) {', '.join(missing)}"
        )
    binds = {spec.name: _bind_value(params[spec.name], spec.type, engine) for spec in query.params}
    started = time.perf_counter()
    if isinstance(engine, SparkSource):  # Spark binds the typed values itself
        table = engine.fetch_arrow(query.body, binds, query.path)
        return conform_arrow(table, query, timezone)
    try:
        frame = _fetch(engine, query, binds, timezone, arrow=True)
    except ArrowUnsupportedError as exc:
        log.debug("%s: %s; fetching row tuples instead", query.name, exc)
        frame = _fetch(engine, query, binds, timezone, arrow=False)
    log.debug("query %s: %d rows in %.2fs", query.name, len(frame), time.perf_counter() - started)
    return frame


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
            f"{query.path.name}: cannot connect to {safe_url(engine.url)}: {first_line(exc)}"
        ) from None
    try:
        with conn:
            if arrow and engine.dialect.name == "duckdb":
                return conform_arrow(_fetch_duckdb_arrow(conn, query, binds), query, timezone)
            arrow = arrow and engine not in _ROWS_ONLY and not _sql_ascii(conn)
            conninfo = pg_arrow.libpq_conninfo(conn) if arrow else None
            adbc = pg_arrow.adbc_postgres() if conninfo else None
            if adbc is not None and conninfo and None not in binds.values():
                try:
                    table, zone = pg_arrow.fetch_arrow(adbc, conninfo, engine, query, binds)
                except pg_arrow.AdbcConnectError as exc:
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
        raise statement_error(exc, query.path, engine) from None
    except duckdb.Error as exc:
        raise rejected_error(query.path, first_line(exc)) from None
    return conform_frame(frame, query, timezone=timezone)


def _sql_ascii(conn: Connection) -> bool:
    """Whether ``conn`` is a PostgreSQL connection to a SQL_ASCII database: its text is
    raw bytes, which Arrow would take for UTF-8 unchecked, so it goes through the row
    fetch and :func:`_postgres_text`'s reading instead."""
    if conn.dialect.name != "postgresql":
        return False
    info = getattr(conn.connection.dbapi_connection, "info", None)
    return getattr(info, "encoding", "utf-8") == "ascii"


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


def _bind_value(value: Any, kind: str, engine: Source) -> Any:
    """Bind values as the driver expects.

    SQLite stores dates and timestamps as ISO text, written by SQLAlchemy as
    ``YYYY-MM-DD`` and ``YYYY-MM-DD HH:MM:SS.ffffff``; binds use the same shapes so that
    text comparison agrees with time order, equality included.
    """
    if value is None:
        return None
    if kind == "date":
        value = pd.Timestamp(value).date()
        return value.isoformat() if dialect_name(engine) == "sqlite" else value
    if kind == "timestamp":
        value = pd.Timestamp(value).to_pydatetime()
        if dialect_name(engine) == "sqlite":
            return value.isoformat(sep=" ", timespec="microseconds")
        return value
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)
