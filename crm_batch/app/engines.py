"""The composition root for databases: the one place that builds an engine from Settings.

Entry points (CLI, scheduler, buttons) never build engines; the services of
:mod:`crm_batch.app` open one here with the configured URL and timeouts, use it and
dispose of it. Later the source and the state database may differ (a read-only
warehouse and a writable state file); callers already ask for an engine by purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from crm_batch.config import Settings, default_demo_url
from crm_batch.errors import ConfigError, DependencyError
from crm_batch.source.db import check_connection, make_engine
from crm_batch.source.failures import first_line
from crm_batch.source.folder import prepare_folder_source

__all__ = ["build_engine", "check_connection", "database_failure", "open_engine", "source_url"]

#: Where the DuckDB caches of ``[source] folder`` live, inside ``paths.data_dir``.
SOURCE_CACHE_DIR = "source-cache"


def source_url(settings: Settings) -> URL:
    """The URL the source is read from: ``settings.database_url``, or with ``[source]
    folder`` set, that folder's DuckDB cache (loaded or refreshed now), opened read-only.
    """
    if settings.source_folder is None:
        return settings.database_url
    cache = prepare_folder_source(
        settings.source_folder, settings.data_dir / SOURCE_CACHE_DIR, settings.source_files
    )
    return make_url(f"duckdb:///{cache.as_posix()}").update_query_dict({"access_mode": "read_only"})


def missing_database_file(url: URL) -> Path | None:
    """The file of a DuckDB or SQLite URL when that file does not exist, else None.

    Opening such a URL would create an empty database: a misspelt ``paths.data_dir`` or
    database path would then run on nothing and report zeros.
    """
    if url.get_backend_name() not in {"duckdb", "sqlite"}:
        return None
    if url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path


def build_engine(settings: Settings, url: URL | None = None, *, create: bool = False) -> Engine:
    """An engine for the source (:func:`source_url`) or ``url``, with the configured timeouts.

    With no database configured, the embedded demo database in ``paths.data_dir`` must
    exist: a missing one is a :class:`ConfigError` naming the path and the settings
    behind it (a misspelt ``data_dir`` would otherwise run on a new, empty database),
    unless ``create`` (the demo builds its database so). A database file the settings
    name explicitly is the user's choice and is opened (created) as asked. The caller
    disposes of the engine; prefer :func:`open_engine`, which does.
    """
    target = source_url(settings) if url is None else url
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
    )


@contextmanager
def open_engine(settings: Settings, url: URL | None = None) -> Iterator[Engine]:
    """:func:`build_engine` for the length of a ``with`` block, disposed of after it."""
    engine = build_engine(settings, url)
    try:
        yield engine
    finally:
        engine.dispose()


def database_failure(error: BaseException, where: str) -> DependencyError | None:
    """``error`` as a :class:`DependencyError` (retried by the run's policy, exit code 5)
    when it says the database is unavailable: the server went away, restarted, refused
    or dropped the connection, or is locked for now. None for anything else (a rejected
    statement or bad data is not cured by waiting)."""
    unavailable = isinstance(error, OperationalError | InterfaceError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )
    if not unavailable:
        return None
    reason = first_line(getattr(error, "orig", None) or error)
    return DependencyError(f"{where}: database unavailable: {reason}")
