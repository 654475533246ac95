"""Apache Spark as the source, through Spark Connect (``sc://HOST:PORT`` URLs).

Spark Connect is Spark's client protocol: this thin client sends each query's SQL with
its named parameters (``:as_of``, bound by Spark itself, never formatted into the text)
and receives the result as Arrow record batches, which
:func:`crm_batch.source.conform.conform_arrow` types like DuckDB's. The mapping files and
every sql/ query run inside Spark SQL; only the per-customer rows come back.

:class:`SparkSource` is what the extraction calls run on instead of a SQLAlchemy engine
(:func:`crm_batch.source.db.run_query` and :func:`crm_batch.source.mapping.run_statement`
hand it the statement); it is read-only by construction (it only runs SELECTs), so the
state database (snapshots, run log, follow-ups, locks) is never Spark
(:func:`crm_batch.app.engines.resolve_state`).

URL: ``sc://HOST:PORT`` with options as query parameters (or Spark's own ``/;key=value``
form): ``use_ssl``, ``user_id``, ``user_agent``, ``session_id``, the ``grpc_keepalive_*``
settings and ``x-...`` request headers go to Spark Connect; ``catalog`` and ``schema``
pick the catalog and database the mapping files' unqualified table names resolve in;
any other option is a :class:`ConfigError` (a misspelt option would otherwise travel
as a header nobody reads). The bearer token is a secret: it comes
from ``$CRM_BATCH_DATABASE_PASSWORD`` or ``database.password_file`` (the URL's password),
from a ``token`` parameter of a URL given in the environment, or from Spark's own
``$SPARK_CONNECT_AUTHENTICATE_TOKEN``; with a token Spark Connect uses TLS.

Every session runs with ``spark.sql.session.timeZone = UTC``: timestamps then keep their
wall time from table to frame (no shift by the server's zone), as on the other databases.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.default import DefaultDialect

from crm_batch.errors import ConfigError, DependencyError, PermanentDependencyError
from crm_batch.source.failures import first_line, rejected_error, timeout_error
from crm_batch.urls import safe_url

log = logging.getLogger(__name__)

#: The URL scheme of Spark Connect and the dialect name sql/ variants use (``*.spark.sql``).
SCHEME = "sc"
DIALECT = "spark"
#: Spark Connect's default port.
DEFAULT_PORT = 15002
#: URL parameters passed on to Spark Connect's connection string.
CONNECT_PARAMS = frozenset(
    {
        "use_ssl",
        "user_id",
        "user_agent",
        "session_id",
        "token",
        "grpc_keepalive_enabled",
        "grpc_keepalive_time_ms",
        "grpc_keepalive_timeout_ms",
        "grpc_keepalive_without_calls",
    }
)
#: URL parameters crm-batch applies to the session after connecting.
SESSION_PARAMS = frozenset({"catalog", "schema"})
#: Session settings of every crm-batch session (see the module docstring).
SESSION_CONF = {"spark.sql.session.timeZone": "UTC"}
#: Compiles named binds to ``:name`` markers, which Spark SQL binds from ``args``
#: (the same parsing of the query text as every other database: ``\\:`` is a colon).
_NAMED = DefaultDialect(paramstyle="named")
#: gRPC status codes meaning "waiting will not help": the credentials are refused.
_REFUSED = ("UNAUTHENTICATED", "PERMISSION_DENIED")
_UNAVAILABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "connection refused", "Connection reset")


def is_spark_url(url: URL | str) -> bool:
    """Whether ``url`` names a Spark Connect server (``sc://``)."""
    return make_url(url).drivername == SCHEME


def url_params(url: URL) -> dict[str, str]:
    """The URL's options: query parameters and Spark's own ``/;key=value`` form, the
    latter parsed as Spark Connect does. An unknown option is a :class:`ConfigError`."""
    params = {key: str(value) for key, value in url.query.items()}
    native = (url.database or "").lstrip("/")
    for part in filter(None, native.split(";")):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"{safe_url(url)}: Spark Connect option {part!r} is not key=value")
        params[key] = value
    unknown = sorted(
        key for key in set(params) - CONNECT_PARAMS - SESSION_PARAMS if not _is_header(key)
    )
    if unknown:
        known = ", ".join(sorted(CONNECT_PARAMS | SESSION_PARAMS))
        raise ConfigError(
            f"{safe_url(url)}: unknown Spark Connect option(s) {', '.join(unknown)} "
            f"(known: {known})"
        )
    return params


def _is_header(key: str) -> bool:
    """``x-...`` options travel as gRPC headers (Spark Connect sends every option it does
    not know as one), e.g. Databricks' ``x-databricks-cluster-id``."""
    return key.lower().startswith("x-")


def connect_string(url: URL) -> str:
    """Spark Connect's own connection string for ``url``: ``sc://host:port/;k=v...``,
    the token (the URL's password, else a ``token`` option) included."""
    params = {k: v for k, v in url_params(url).items() if k in CONNECT_PARAMS or _is_header(k)}
    if url.password:
        params["token"] = str(url.password)
    host = url.host or "127.0.0.1"
    port = url.port or DEFAULT_PORT
    options = "".join(f";{key}={quote(str(value), safe='')}" for key, value in params.items())
    return f"sc://{host}:{port}/{options}"


def _spark_value(value: Any) -> Any:
    """A bind value as Spark Connect should receive it: a naive timestamp is a wall time
    in UTC, the session's time zone. (pyspark turns a naive datetime into an instant with
    the *client's* local zone: on a machine in Shanghai every timestamp window moved
    eight hours.)"""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class SparkSource:
    """A Spark Connect server as the source: runs SELECTs, returns Arrow tables.

    One Spark Connect session per source, made on first use and shared by the query
    threads (a session takes concurrent operations); :meth:`dispose` releases it on the
    server. ``statement_timeout``: a statement still running after it is interrupted on
    the server (by its operation tag) and becomes a :class:`StageTimeoutError`.
    """

    dialect_name = DIALECT

    def __init__(
        self, url: URL | str, *, connect_timeout: float = 10.0, statement_timeout: float | None
    ) -> None:
        self.url = make_url(url)
        self.params = url_params(self.url)
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._session: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SparkSource({safe_url(self.url)})"

    def session(self) -> Any:
        """The Spark Connect session (made on first use); a server that does not answer
        is a :class:`DependencyError`, refused credentials a
        :class:`PermanentDependencyError`."""
        with self._lock:
            if self._session is None:
                self._session = self._connect()
            return self._session

    def _connect(self) -> Any:
        # pyspark 4.x warns on import that it was not tested with pandas 3: crm-batch
        # hands it Arrow tables only, never pandas frames (users need not see it)
        warnings.filterwarnings(
            "ignore", "PySpark does not yet fully support pandas", FutureWarning
        )
        try:
            from pyspark.errors import PySparkException
            from pyspark.sql import SparkSession
        except ImportError:
            raise ConfigError(
                f"{safe_url(self.url)}: the Spark source needs pyspark with Spark Connect "
                '(pip install "crm-batch[spark]")'
            ) from None
        self._probe()
        # pyspark logs every rejected statement with the server's JVM stack trace (pages
        # of it); crm-batch raises its own one-line error naming the file instead
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        try:
            session = SparkSession.builder.remote(connect_string(self.url)).create()
            for key, value in SESSION_CONF.items():
                session.conf.set(key, value)
            if "catalog" in self.params:
                session.catalog.setCurrentCatalog(self.params["catalog"])
            if "schema" in self.params:
                session.catalog.setCurrentDatabase(self.params["schema"])
        except PySparkException as exc:
            raise self._connect_error(exc) from None
        return session

    def _probe(self) -> None:
        """A TCP connect within the connect timeout: Spark Connect's client retries an
        unreachable server for minutes before it gives up."""
        host, port = self.url.host or "127.0.0.1", self.url.port or DEFAULT_PORT
        try:
            with socket.create_connection((host, port), timeout=self.connect_timeout):
                pass
        except OSError as exc:
            raise DependencyError(
                f"cannot connect to {safe_url(self.url)}: {exc.strerror or exc}"
            ) from None

    def _connect_error(self, exc: BaseException) -> DependencyError | ConfigError:
        reason = first_line(exc)
        if any(code in str(exc) for code in _REFUSED):
            return PermanentDependencyError(f"{safe_url(self.url)} refused us: {reason}")
        if "schema" in self.params or "catalog" in self.params:
            return ConfigError(f"{safe_url(self.url)}: {reason}")
        return DependencyError(f"cannot connect to {safe_url(self.url)}: {reason}")

    def check(self) -> None:
        """Run ``select 1``; raise :class:`DependencyError` if the server does not answer."""
        self.fetch_arrow("select 1 as one", {}, Path("connection check"))

    def fetch_arrow(self, statement: str, binds: Mapping[str, Any], path: Path) -> pa.Table:
        """``statement`` (named binds ``:name``, SQLAlchemy text) run with ``binds``, as
        an Arrow table; the errors name ``path``, the file behind the statement."""
        from pyspark.errors import PySparkException

        compiled = text(statement).bindparams(**binds).compile(dialect=_NAMED)
        args = {name: _spark_value(compiled.params[name]) for name in compiled.params}
        session = self.session()
        tag = f"crm-batch-{uuid.uuid4().hex}"
        expired = threading.Event()

        def interrupt() -> None:
            expired.set()
            session.interruptTag(tag)

        timer = None
        if self.statement_timeout:
            timer = threading.Timer(self.statement_timeout, interrupt)
            timer.daemon = True
        session.addTag(tag)  # tags are per thread: only this statement is interrupted
        try:
            if timer is not None:
                timer.start()
            frame = session.sql(str(compiled), args=args or None)
            return frame.toArrow()
        except PySparkException as exc:
            raise self._statement_error(exc, path, expired.is_set()) from None
        finally:
            if timer is not None:
                timer.cancel()
            session.removeTag(tag)

    def run_statement(self, statement: str, path: Path) -> tuple[list[str], list[Any]]:
        """Column names and rows of a statement without binds (:func:`crm_batch.source.
        mapping.run_statement`)."""
        table = self.fetch_arrow(statement, {}, path)
        rows = list(zip(*(column.to_pylist() for column in table.columns), strict=True))
        return list(table.column_names), rows

    def _statement_error(self, exc: BaseException, path: Path, expired: bool) -> Exception:
        reason = first_line(exc)
        where = f"{path.name} on {safe_url(self.url)}"
        if expired:
            return timeout_error(where, f"interrupted after {self.statement_timeout:g} s")
        if any(code in str(exc) for code in _REFUSED):
            return PermanentDependencyError(f"{where}: {reason}")
        if type(exc).__name__ == "SparkConnectGrpcException" or any(
            code in str(exc) for code in _UNAVAILABLE
        ):
            return DependencyError(f"{where}: {reason}")
        return rejected_error(path, reason)

    def dispose(self) -> None:
        """Release the session on the server (its temporary views and cached results)."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            try:
                session.stop()
            except Exception as exc:  # the server may be gone already: nothing to release
                log.debug("closing the Spark Connect session of %s: %s", safe_url(self.url), exc)
