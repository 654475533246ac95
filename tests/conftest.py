"""Shared fixtures: throwaway databases on four engines, and the canonical test data.

Database servers (both on this machine, standard ports; override with the environment):

* PostgreSQL: ``CRM_BATCH_TEST_POSTGRES_URL``, default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (trust auth);
* MariaDB/MySQL: ``CRM_BATCH_TEST_MARIADB_URL``, default
  ``mysql+pymysql://root@127.0.0.1:3306/test`` (empty password).

Spark (``spark_url``): the first test that needs it starts a local Spark Connect server
with scripts/spark-local.sh on a free port, its warehouse, metastore and logs in a
session temp folder, and the session stops it at its end (also after failures). Java
and pyspark missing skip those tests with the reason.

Every test session works in its own PostgreSQL schema / MariaDB database named
``crm_t_<pid>_<random>_<n>`` and drops it at the end, so concurrent runs never collide.
A server that cannot be reached skips its tests with the reason; set
``CRM_BATCH_TEST_REQUIRE_SERVERS=1`` (CI) to make that a failure instead.

Fixtures (see each docstring): ``as_of``, ``period``, ``canonical_frames``,
``sql_catalog``, ``postgres_url``, ``postgres_url_factory``, ``mariadb_url``,
``mariadb_url_factory``, ``db_url_factory``, ``loaded_db_factory``, ``canonical_db``,
``spark_url``.
"""

from __future__ import annotations

import http.server
import itertools
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from fixtures.canonical import AS_OF, PERIOD_LABEL, IdType, canonical_frames, load_canonical
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine, make_url

from crm_batch.logs import ConsoleHandler
from crm_batch.periods import Period, parse_period
from crm_batch.source.db import make_engine
from crm_batch.source.sql_files import SqlCatalog
from crm_batch.urls import safe_url

REPO_DIR = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_DIR / "sql"

BACKENDS = ("duckdb", "sqlite", "postgres", "mariadb")
ID_TYPES: tuple[IdType, ...] = ("int", "text")
SERVER_BACKENDS = ("postgres", "mariadb")

_RUN_TOKEN = f"{os.getpid()}_{secrets.token_hex(2)}"
_COUNTER = itertools.count(1)
#: The test being set up or run (see :func:`pytest_runtest_setup`).
_CURRENT_TEST: list[pytest.Item] = []


def unique_name() -> str:
    """A schema/database/file name no other test session uses: crm_t_<pid>_<hex>_<n>."""
    return f"crm_t_{_RUN_TOKEN}_{next(_COUNTER)}"


class Server:
    """A database server we make throwaway schemas (PostgreSQL) or databases (MariaDB) on."""

    def __init__(self, backend: str, admin_url: str, start_hint: str) -> None:
        self.backend = backend
        self.admin_url = make_url(admin_url)
        self.start_hint = start_hint
        self.created: list[str] = []
        self._engine: Engine | None = None
        self._unreachable: str | None = None

    @property
    def where(self) -> str:
        return f"{self.admin_url.host or 'localhost'}:{self.admin_url.port or ''}"

    def engine(self) -> Engine:
        """An autocommit admin engine; skip (or fail) the test if the server is down.

        A test that reaches the server must carry its marker (``postgres``/``mariadb``),
        so that ``-m 'not postgres and not mariadb'`` (the fast loop) leaves it out.
        """
        test = _CURRENT_TEST[0] if _CURRENT_TEST else None
        if test is not None and test.get_closest_marker(self.backend) is None:
            pytest.fail(
                f"{test.nodeid} uses the {self.backend} server without "
                f"@pytest.mark.{self.backend} (the fast loop would run it)",
                pytrace=False,
            )
        if self._unreachable is None and self._engine is None:
            engine = make_engine(self.admin_url, connect_timeout=3, statement_timeout=60)
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.execute(text("select 1"))
            except Exception as exc:  # any driver error means "not usable here"
                engine.dispose()
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                self._unreachable = (
                    f"{self.backend} server not reachable at {self.where} "
                    f"({safe_url(self.admin_url)}): {first[:200]}. {self.start_hint}"
                )
            else:
                self._engine = engine
        if self._unreachable is not None:
            if os.environ.get("CRM_BATCH_TEST_REQUIRE_SERVERS") == "1":
                pytest.fail(self._unreachable, pytrace=False)
            pytest.skip(self._unreachable)
        assert self._engine is not None
        return self._engine

    def new_url(self) -> URL:
        """A fresh, empty schema/database and a URL whose connections land in it."""
        engine = self.engine()
        name = unique_name()
        with engine.connect() as conn:
            if self.backend == "postgres":
                conn.execute(text(f'create schema "{name}"'))
            else:
                conn.execute(text(f"create database `{name}` character set utf8mb4"))
        self.created.append(name)
        if self.backend == "postgres":
            # the search_path travels in the URL so that any engine (and the CLI) lands there
            return self.admin_url.update_query_dict({"options": f"-csearch_path={name}"})
        return self.admin_url.set(database=name)

    def drop_all(self) -> None:
        """Drop what this session created; a failure is a warning, never a test failure."""
        if self._engine is None:
            return
        with self._engine.connect() as conn:
            for name in self.created:
                try:
                    if self.backend == "postgres":
                        conn.execute(text("set lock_timeout = '10s'"))
                        conn.execute(text(f'drop schema if exists "{name}" cascade'))
                    else:
                        conn.execute(text("set session lock_wait_timeout = 10"))
                        conn.execute(text(f"drop database if exists `{name}`"))
                except Exception as exc:  # leave it behind, say so
                    warnings.warn(f"could not drop {self.backend} {name}: {exc}", stacklevel=1)
        self._engine.dispose()


@dataclass
class LoadedDb:
    """A database holding the canonical test data (read-only: tests share it)."""

    backend: str
    id_type: IdType
    url: URL
    engine: Engine
    frames: dict[str, pd.DataFrame] = field(repr=False)


# -- markers ---------------------------------------------------------------------------


_FIXTURE_MARKERS = {
    "postgres_url": "postgres",
    "postgres_url_factory": "postgres",
    "mariadb_url": "mariadb",
    "mariadb_url_factory": "mariadb",
    "spark_url": "spark",
    "spark_url_factory": "spark",
}


#: Parameter values that name a server: backend names and SQLAlchemy dialect names.
_SERVER_PARAMS = {"postgres": "postgres", "postgresql": "postgres", "mariadb": "mariadb"}
_SERVER_PARAMS["mysql"] = "mariadb"


def _server_params(item: pytest.Item) -> set[str]:
    """The servers among a parametrized test's values (``backend="postgres"``,
    ``("mariadb", "text")``, ``dialect="postgresql"``): such a test uses that server."""
    callspec = getattr(item, "callspec", None)
    found: set[str] = set()
    for value in callspec.params.values() if callspec is not None else ():
        for part in value if isinstance(value, tuple) else (value,):
            if isinstance(part, str) and part in _SERVER_PARAMS:
                found.add(_SERVER_PARAMS[part])
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using a server fixture, or parametrized with a server backend, get that
    server's marker (for ``-m 'not mariadb'``; :meth:`Server.engine` fails a test that
    reaches a server without it)."""
    for item in items:
        markers = {_FIXTURE_MARKERS.get(name) for name in getattr(item, "fixturenames", ())}
        for marker in sorted((markers - {None}) | _server_params(item)):
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(autouse=True)
def _forget_command_logging() -> Iterator[None]:
    """A command run in-process (``setup_logging``) points the root logger at the stderr
    pytest captured for that one test; drop that handler afterwards, so later tests (in
    the same process, e.g. an xdist worker) never write to a closed stream."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if isinstance(handler, ConsoleHandler):
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Remember the test being set up (its markers are checked by :meth:`Server.engine`)."""
    _CURRENT_TEST[:] = [item]


# -- plain data ------------------------------------------------------------------------


@pytest.fixture
def as_of() -> date:
    """The business date of the canonical data: 2026-06-30."""
    return AS_OF


@pytest.fixture
def period() -> Period:
    """The reference period of the canonical data: 2026Q2 (2026-04-01 .. 2026-06-30)."""
    return parse_period(PERIOD_LABEL)


@pytest.fixture(name="canonical_frames")
def canonical_frames_fixture() -> dict[str, pd.DataFrame]:
    """The six source tables (integer ids shown as text) as typed frames; a fresh copy."""
    return canonical_frames("int")


@pytest.fixture(scope="session")
def sql_catalog() -> SqlCatalog:
    """The repository's sql/ folder."""
    return SqlCatalog(SQL_DIR)


# -- servers ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _servers() -> Iterator[dict[str, Server]]:
    servers = {
        "postgres": Server(
            "postgres",
            os.environ.get(
                "CRM_BATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
            ),
            "Start it with `sudo service postgresql start` (trust auth for postgres, a "
            "database `test`), or set CRM_BATCH_TEST_POSTGRES_URL.",
        ),
        "mariadb": Server(
            "mariadb",
            os.environ.get(
                "CRM_BATCH_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
            ),
            "Start it with `sudo service mariadb start` (root with an empty password), or "
            "set CRM_BATCH_TEST_MARIADB_URL.",
        ),
    }
    yield servers
    for server in servers.values():
        server.drop_all()


@pytest.fixture(scope="session")
def postgres_url_factory(_servers: dict[str, Server]) -> Callable[[], URL]:
    """Call it for a fresh, empty PostgreSQL schema; returns a URL landing in it.

    The URL carries ``options=-csearch_path=<schema>``, so it works as a plain string
    (``--db``) and with :func:`crm_batch.source.db.make_engine`. Dropped at session end.
    """
    _servers["postgres"].engine()
    return _servers["postgres"].new_url


@pytest.fixture(scope="session")
def postgres_url(postgres_url_factory: Callable[[], URL]) -> URL:
    """A URL for this session's own empty PostgreSQL schema (shared by the session)."""
    return postgres_url_factory()


@pytest.fixture(scope="session")
def mariadb_url_factory(_servers: dict[str, Server]) -> Callable[[], URL]:
    """Call it for a fresh, empty MariaDB database (utf8mb4); returns a URL for it."""
    _servers["mariadb"].engine()
    return _servers["mariadb"].new_url


@pytest.fixture(scope="session")
def mariadb_url(mariadb_url_factory: Callable[[], URL]) -> URL:
    """A URL for this session's own empty MariaDB database (shared by the session)."""
    return mariadb_url_factory()


@pytest.fixture(scope="session")
def db_url_factory(
    _servers: dict[str, Server], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], URL]:
    """``make(backend)`` -> URL of a fresh, empty database on that backend.

    ``backend`` is one of ``duckdb``, ``sqlite`` (files in a session temp folder),
    ``postgres``, ``mariadb`` (skips the calling test when the server is down).
    """
    folder = tmp_path_factory.mktemp("databases")

    def make(backend: str) -> URL:
        if backend in _servers:
            return _servers[backend].new_url()
        if backend in {"duckdb", "sqlite"}:
            suffix = "duckdb" if backend == "duckdb" else "sqlite"
            return make_url(f"{backend}:///{(folder / f'{unique_name()}.{suffix}').as_posix()}")
        raise ValueError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")

    return make


@pytest.fixture(scope="session")
def loaded_db_factory(db_url_factory: Callable[[str], URL]) -> Iterator[Callable[..., LoadedDb]]:
    """``get(backend, id_type)`` -> :class:`LoadedDb` with the canonical data, cached.

    One database per (backend, id_type) per session; treat it as read-only.
    """
    cache: dict[tuple[str, str], LoadedDb] = {}

    def get(backend: str, id_type: IdType = "int") -> LoadedDb:
        key = (backend, id_type)
        if key not in cache:
            url = db_url_factory(backend)
            engine = make_engine(url, connect_timeout=5, statement_timeout=120)
            frames = canonical_frames(id_type)
            load_canonical(engine, frames, id_type)
            cache[key] = LoadedDb(backend, id_type, url, engine, frames)
        return cache[key]

    yield get
    for loaded in cache.values():
        loaded.engine.dispose()


def _backend_param(backend: str, id_type: str) -> object:
    marks = [getattr(pytest.mark, backend)] if backend in SERVER_BACKENDS else []
    return pytest.param((backend, id_type), id=f"{backend}-{id_type}", marks=marks)


CANONICAL_DB_PARAMS = [_backend_param(b, i) for b in BACKENDS for i in ID_TYPES]


@pytest.fixture(scope="session", params=CANONICAL_DB_PARAMS)
def canonical_db(
    request: pytest.FixtureRequest, loaded_db_factory: Callable[..., LoadedDb]
) -> LoadedDb:
    """The canonical data on duckdb, sqlite, postgres and mariadb, each with int and text ids.

    A test using it runs eight times (ids ``duckdb-int`` ... ``mariadb-text``); server
    variants carry the ``postgres``/``mariadb`` markers and skip when the server is down.
    """
    backend, id_type = request.param
    return loaded_db_factory(backend, id_type)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections into its backlog and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.fixture(scope="module")
def canary() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it receives."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


# -- Spark -----------------------------------------------------------------------------


class SparkServer:
    """A local Spark Connect server for this session (scripts/spark-local.sh), started on
    first use on a free port; :meth:`stop` ends it."""

    SCRIPT = REPO_DIR / "scripts" / "spark-local.sh"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port: int | None = None
        self._unusable: str | None = None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CRM_BATCH_SPARK_PORT=str(self.port),
            CRM_BATCH_SPARK_DIR=str(self.folder),
            CRM_BATCH_SPARK_MEMORY="2g",
            CRM_BATCH_SPARK_PARTITIONS="2",  # tiny tables: fewer, cheaper tasks
            PYTHON=sys.executable,
        )
        return env

    def url(self) -> str:
        """``sc://127.0.0.1:<port>``; skip (or fail) the test when Spark cannot run."""
        test = _CURRENT_TEST[0] if _CURRENT_TEST else None
        if test is not None and test.get_closest_marker("spark") is None:
            pytest.fail(f"{test.nodeid} uses Spark without @pytest.mark.spark", pytrace=False)
        if self.port is None and self._unusable is None:
            self._unusable = self._start()
        if self._unusable is not None:
            if os.environ.get("CRM_BATCH_TEST_REQUIRE_SERVERS") == "1":
                pytest.fail(self._unusable, pytrace=False)
            pytest.skip(self._unusable)
        return f"sc://127.0.0.1:{self.port}"

    def _start(self) -> str | None:
        """Start the server; why it cannot run, or None when it answers."""
        if shutil.which("java") is None:
            return (
                "Spark needs Java 17+ (apt-get install openjdk-17-jre-headless, or "
                "scripts/bootstrap.sh --test)"
            )
        try:
            import pyspark  # noqa: F401
        except ImportError:
            return 'Spark needs pyspark with Spark Connect (pip install -e ".[spark]")'
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        done = subprocess.run(
            [str(self.SCRIPT), "start"],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            self.stop()
            self.port = None
            return f"the Spark Connect server did not start: {done.stderr.strip()[-600:]}"
        return None

    def stop(self) -> None:
        if self.port is None:
            return
        subprocess.run(
            [str(self.SCRIPT), "stop"],
            env=self._env(),
            capture_output=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="session")
def _spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkServer]:
    server = SparkServer(tmp_path_factory.mktemp("spark"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spark_url(_spark_server: SparkServer) -> str:
    """The URL of this session's local Spark Connect server (started on first use)."""
    return _spark_server.url()


@pytest.fixture(scope="session")
def spark_url_factory(spark_url: str) -> Callable[[], str]:
    """Call it for a fresh, empty Spark database (schema); returns an ``sc://`` URL whose
    session works in it (``?schema=<name>``). The server goes with the session."""
    from crm_batch.source.spark import SparkSource

    def make() -> str:
        name = unique_name()
        source = SparkSource(spark_url, statement_timeout=300)
        try:
            source.session().sql(f"create database {name}").collect()
        finally:
            source.dispose()
        return f"{spark_url}?schema={name}"

    return make
