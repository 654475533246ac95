"""The composition root for databases: the one place that builds an engine from Settings.

Entry points (CLI, scheduler, buttons) never build engines; the services of
:mod:`crm_batch.app` open one here with the configured URL and timeouts, use it and
dispose of it. Later the source and the state database may differ (a read-only
warehouse and a writable state file); callers already ask for an engine by purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL, Engine

from crm_batch.config import Settings
from crm_batch.source.db import check_connection, make_engine

__all__ = ["build_engine", "check_connection", "open_engine"]


def build_engine(settings: Settings, url: URL | None = None) -> Engine:
    """An engine for the configured database (or ``url``) with the configured timeouts.

    The caller disposes of it; prefer :func:`open_engine`, which does.
    """
    return make_engine(
        settings.database_url if url is None else url,
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
