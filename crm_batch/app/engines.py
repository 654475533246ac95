"""The composition root for databases: the one place that builds an engine from Settings.

Entry points (CLI, scheduler, buttons) never build engines; the services of
:mod:`crm_batch.app` open them here with the configured URLs and timeouts, use them and
dispose of them. Two databases, by purpose:

* the **source** (:func:`source_url`): the company's data, only ever read. When the
  state lives elsewhere its engine is read-only where the driver can say so (SQLite
  ``mode=ro``, DuckDB ``read_only``, PostgreSQL ``default_transaction_read_only``,
  MySQL/MariaDB ``SET SESSION TRANSACTION READ ONLY``). A Spark Connect URL
  (``sc://``) makes a :class:`~crm_batch.source.spark.SparkSource` instead of an engine:
  Spark is read-mostly and holds no state, so the state is then always elsewhere;
* the **state** (:func:`state_url`): everything crm-batch writes (``kpi_snapshots``,
  ``batch_runs``, ``followups``, ``deliveries``, ``value_model_parameters``, the
  database lock). ``[state] url`` when set; else the source when it is writable (one
  engine, one pool, as before the split); else the embedded ``state.duckdb`` in
  ``paths.data_dir``, created on first use.

"Not writable" is :func:`source_read_only`: ``[database] read_only = true``; a SQLite
or DuckDB URL that opens the file read-only, or a file this user may not write; a
PostgreSQL server in recovery, a session that is read-only, or a user who can neither
create tables in its schema nor insert into an existing run log; a MySQL/MariaDB server
or session that is read-only (:func:`crm_batch.source.db.server_read_only`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from crm_batch.config import Settings, default_demo_url, default_state_url
from crm_batch.errors import ConfigError, DependencyError
from crm_batch.source.db import Source, check_connection, make_engine, server_read_only
from crm_batch.source.failures import first_line
from crm_batch.source.folder import prepare_folder_source
from crm_batch.source.spark import SparkSource, is_spark_url
from crm_batch.urls import normalize_url

__all__ = [
    "Databases",
    "StateChoice",
    "build_databases",
    "build_engine",
    "check_connection",
    "database_failure",
    "database_file",
    "open_databases",
    "open_engine",
    "open_state",
    "resolve_state",
    "source_read_only",
    "source_url",
    "state_url",
]

#: Where the DuckDB caches of ``[source] folder`` live, inside ``paths.data_dir``.
SOURCE_CACHE_DIR = "source-cache"
#: Dialects whose read-only state is asked of the server (a connection), not of a file.
_SERVERS = frozenset({"postgresql", "mysql", "mariadb"})
#: What :func:`database_failure` calls each database when the two differ.
SOURCE, STATE = "source database", "state database"


def database_file(url: URL) -> Path | None:
    """The file of a DuckDB or SQLite URL (also a SQLite ``file:`` URI), else None."""
    if url.get_backend_name() not in {"duckdb", "sqlite"}:
        return None
    name = url.database
    if name in (None, "", ":memory:"):
        return None
    if name.startswith("file:"):
        name = unquote(name[len("file:") :].split("?", 1)[0])
    return Path(name)


def missing_database_file(url: URL) -> Path | None:
    """The file of a DuckDB or SQLite URL when that file does not exist, else None.

    Opening such a URL would create an empty database: a misspelt ``paths.data_dir`` or
    database path would then run on nothing and report zeros.
    """
    path = database_file(url)
    return None if path is None or path.exists() else path


def source_url(settings: Settings) -> URL:
    """Where the company's data is read (``--db``, ``$CRM_BATCH_DATABASE_URL``,
    ``database.url``, else the demo database in ``paths.data_dir``); with ``[source]
    folder`` set, that folder's DuckDB cache (loaded or refreshed now), opened read-only.
    """
    if settings.source_folder is None:
        return settings.database_url
    cache = prepare_folder_source(
        settings.source_folder, settings.data_dir / SOURCE_CACHE_DIR, settings.source_files
    )
    return make_url(f"duckdb:///{cache.as_posix()}").update_query_dict({"access_mode": "read_only"})


def source_read_only(settings: Settings, source: Engine | None = None) -> str | None:
    """Why the source may not be written (a phrase for ``status`` and the log), or None
    when it may. A server is asked on ``source`` (or on a short-lived engine of its own);
    a server that cannot be reached is a :class:`DependencyError` naming its URL (until
    it answers, nobody knows whether it holds the state too)."""
    if settings.source_read_only:
        return "database.read_only = true"
    if settings.source_folder is not None:
        return f"the source is the folder of exports {settings.source_folder}"
    url = source_url(settings)
    if is_spark_url(url):
        return "Spark is only read, through Spark Connect (the state needs a SQL database)"
    reason = _file_read_only(url)
    if reason is not None or url.get_backend_name() not in _SERVERS:
        return reason
    if source is not None:
        return server_read_only(source)
    probe = build_engine(settings, url)
    try:
        return server_read_only(probe)
    finally:
        probe.dispose()


def _file_read_only(url: URL) -> str | None:
    """Why a SQLite or DuckDB source is read-only: its URL says so, or this user may not
    write the file (or, for a new SQLite journal, its folder)."""
    backend = url.get_backend_name()
    query = {key.lower(): str(value).lower() for key, value in url.query.items()}
    if backend == "sqlite" and (query.get("mode") == "ro" or query.get("immutable") == "1"):
        return "the SQLite URL opens the file read-only"
    if backend == "duckdb" and (
        query.get("access_mode") == "read_only" or query.get("read_only") in {"true", "1"}
    ):
        return "the DuckDB URL opens the file read-only"
    path = database_file(url)
    if path is None or not path.exists():
        return None
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        # no write bit for anyone (chmod a-w) says "do not write" even to root
        return f"the file {path} is not writable (by this user)"
    if backend == "sqlite" and not os.access(path.parent, os.W_OK):
        return f"this user may not write in {path.parent} (SQLite's journal)"
    return None


@dataclass(frozen=True)
class StateChoice:
    """The state database and why it is that one (shown by ``status``, logged by runs)."""

    url: URL
    why: str
    separate: bool  # the state is not the source: the source's engine is read-only


def resolve_state(settings: Settings, source: Engine | None = None) -> StateChoice:
    """Which database holds the state (see the module docstring); ``source`` is an
    engine on the source to ask a server with (else one is made for the question).

    A ``[state] url`` naming the source itself while ``database.read_only`` is set is a
    :class:`ConfigError`.
    """
    src = source_url(settings)
    if settings.state_url is not None and is_spark_url(settings.state_url):
        raise ConfigError(
            "state.url / $CRM_BATCH_STATE_URL names a Spark Connect server: the state (run "
            "log, snapshots, follow-ups, locks) needs a SQL database; point it at "
            "PostgreSQL, MySQL/MariaDB or DuckDB, or leave it unset for state.duckdb in "
            "paths.data_dir"
        )
    if settings.state_url is not None:
        same = _same_database(settings.state_url, src)
        if same and settings.source_read_only:
            raise ConfigError(
                "state.url / $CRM_BATCH_STATE_URL names the source database, which "
                "database.read_only = true says may not be written: point the state at "
                "another database, or leave state.url unset for state.duckdb in "
                "paths.data_dir"
            )
        return StateChoice(settings.state_url, "state.url", separate=not same)
    reason = source_read_only(settings, source)
    if reason is None:
        return StateChoice(src, "the source database (writable)", separate=False)
    state = default_state_url(settings.data_dir)
    return StateChoice(state, f"the source is read-only: {reason}", separate=True)


def state_url(settings: Settings) -> URL:
    """The URL of the state database (:func:`resolve_state`)."""
    return resolve_state(settings).url


def _same_database(first: URL, second: URL) -> bool:
    """Whether two URLs name the same database (the password and a driver crm-batch
    would pick anyway aside)."""
    return normalize_url(first).set(password=None) == normalize_url(second).set(password=None)


def build_engine(
    settings: Settings, url: URL | None = None, *, create: bool = False, read_only: bool = False
) -> Source:
    """An engine for the source (or ``url``) with the configured timeouts; ``read_only``
    asks the driver to refuse writes (:func:`crm_batch.source.db.make_engine`). A Spark
    Connect URL gives a :class:`~crm_batch.source.spark.SparkSource` (it only reads).

    With no database configured, the embedded demo database in ``paths.data_dir`` must
    exist: a missing one is a :class:`ConfigError` naming the path and the settings
    behind it (a misspelt ``data_dir`` would otherwise run on a new, empty database),
    unless ``create`` (the demo builds its database so). A database file the settings
    name explicitly is the user's choice and is opened (created) as asked. The caller
    disposes of the engine; prefer :func:`open_engine`, which does.
    """
    target = source_url(settings) if url is None else url
    if is_spark_url(target):
        return SparkSource(
            target,
            connect_timeout=settings.connect_timeout_seconds,
            statement_timeout=settings.statement_timeout_seconds,
        )
    embedded = target == default_demo_url(settings.data_dir)
    missing = None if create or not embedded else missing_database_file(target)
    if missing is not None:
        raise ConfigError(
            f"there is no database file {missing}: check database.url / --db / "
            "$CRM_BATCH_DATABASE_URL (without one, crm-batch uses var/demo.duckdb in "
            f"paths.data_dir, here {settings.data_dir}), or run `crm-batch demo` to build "
            "the demo database there"
        )
    return make_engine(
        target,
        connect_timeout=settings.connect_timeout_seconds,
        statement_timeout=settings.statement_timeout_seconds,
        read_only=read_only,
    )


@contextmanager
def open_engine(settings: Settings, url: URL | None = None) -> Iterator[Source]:
    """:func:`build_engine` for the length of a ``with`` block, disposed of after it."""
    engine = build_engine(settings, url)
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Databases:
    """The engines of one command: ``source`` (read; a SQLAlchemy engine or a Spark
    Connect source) and ``state`` (written, always a SQL database). When the state is
    the source they are the same engine (:attr:`shared`)."""

    source: Source
    state: Engine
    choice: StateChoice | None = None  # None: made by hand (tests, one engine for both)

    @classmethod
    def single(cls, engine: Engine) -> Databases:
        """One engine that is both source and state (the state kept in the source)."""
        return cls(engine, engine)

    @property
    def shared(self) -> bool:
        """Whether source and state are one database (and one engine)."""
        return self.source is self.state

    def dispose(self) -> None:
        """Close both pools."""
        self.source.dispose()
        if not self.shared:
            self.state.dispose()


def build_databases(settings: Settings) -> Databases:
    """The source and state engines (:func:`resolve_state`); the caller disposes of them
    (:meth:`Databases.dispose`), prefer :func:`open_databases`. A server source is asked
    whether it is writable on the engine that then serves both, so a writable source
    costs no second pool. Errors of either database name it."""
    src = source_url(settings)
    probe = None
    if settings.state_url is None and src.get_backend_name() in _SERVERS:
        probe = build_engine(settings, src)
    try:
        choice = resolve_state(settings, probe)
    except BaseException:
        if probe is not None:
            probe.dispose()
        raise
    if not choice.separate:
        engine = probe or build_engine(settings, src)
        assert isinstance(engine, Engine)  # a Spark source is never the state (resolve_state)
        return Databases(engine, engine, choice)
    if probe is not None:
        probe.dispose()
    source = build_engine(settings, src, read_only=True)
    try:
        state = build_engine(settings, choice.url, create=True)
    except BaseException:
        source.dispose()
        raise
    assert isinstance(state, Engine)  # resolve_state refuses a Spark state
    if isinstance(source, Engine):  # a Spark source's errors name its URL already
        _name_failures(source, SOURCE)
    _name_failures(state, STATE)
    return Databases(source, state, choice)


@contextmanager
def open_databases(settings: Settings) -> Iterator[Databases]:
    """:func:`build_databases` for the length of a ``with`` block, disposed of after it."""
    databases = build_databases(settings)
    try:
        yield databases
    finally:
        databases.dispose()


@contextmanager
def open_state(settings: Settings) -> Iterator[Engine]:
    """An engine on the state database alone (the run log, follow-ups, snapshots) for
    the length of a ``with`` block. The source's engine is made but never connected
    when the state is elsewhere (engines connect on first use); a server source that
    must be asked whether it is writable is asked on the engine that then serves."""
    with open_databases(settings) as databases:
        yield databases.state


def _name_failures(engine: Engine, name: str) -> None:
    """Mark every error of ``engine`` with the database it came from (``name``), so a
    failure of a run with two databases says which one went away."""

    def mark(context: Any) -> None:
        error = context.sqlalchemy_exception
        if error is not None:
            error.crm_database = name

    event.listen(engine, "handle_error", mark)


def database_failure(error: BaseException, where: str) -> DependencyError | None:
    """``error`` as a :class:`DependencyError` (retried by the run's policy, exit code 5)
    when it says the database is unavailable: the server went away, restarted, refused
    or dropped the connection, or is locked for now. None for anything else (a rejected
    statement or bad data is not cured by waiting). With a separate state database the
    message names the one that failed ("source database" or "state database")."""
    unavailable = isinstance(error, OperationalError | InterfaceError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )
    if not unavailable:
        return None
    reason = first_line(getattr(error, "orig", None) or error)
    which = getattr(error, "crm_database", "database")
    return DependencyError(f"{where}: {which} unavailable: {reason}")
