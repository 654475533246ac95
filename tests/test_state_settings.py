"""The ``[state]`` settings and which database holds the state (issue 12, point 5).

Everything crm-batch writes goes to the state database: ``[state] url`` when set, else
the source when it is writable, else ``state.duckdb`` in ``paths.data_dir``. These tests
check the settings (secrets by the same rules as ``[database]``), the resolution rule and
the engines it gives (one engine when the state is the source; a source engine that
refuses writes when it is not). The runs on a read-only source are in
``test_state_runs.py``.
"""

from __future__ import annotations

import sqlite3
import stat
import textwrap
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from crm_batch.app.engines import (
    build_databases,
    database_failure,
    resolve_state,
    state_url,
)
from crm_batch.config import (
    ENV_STATE_PASSWORD,
    ENV_STATE_URL,
    Settings,
    default_state_url,
    load_settings,
)
from crm_batch.errors import ConfigError, DependencyError
from crm_batch.source.db import make_engine, server_read_only

SECRET = "s3cr3t-state-pw"


def write_config(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "crm_batch.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def settings_for(folder: Path, body: str = "", **environ: str) -> Settings:
    """Settings of a config in ``folder`` with ``body`` (data_dir = var)."""
    path = write_config(folder, '[paths]\ndata_dir = "var"\n' + textwrap.dedent(body))
    return load_settings(path, environ=environ, cwd=folder)


def sqlite_source(path: Path) -> Path:
    """A small SQLite file with one table, as a source."""
    with sqlite3.connect(path) as conn:
        conn.execute("create table customers (customer_id integer)")
        conn.execute("insert into customers values (1), (2)")
    return path


# -- settings ----------------------------------------------------------------------------


def test_state_url_unset_by_default(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert settings.state_url is None
    assert settings.source_read_only is False


def test_password_in_the_files_state_url_is_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[state]\nurl = "postgresql://crm:{SECRET}@db/state"\n')
    for env in ({}, {ENV_STATE_URL: "postgresql://crm@db.env/state"}):
        with pytest.raises(ConfigError) as refused:
            load_settings(path, environ=env, cwd=tmp_path)
        message = str(refused.value)
        assert "state.url" in message
        assert ENV_STATE_PASSWORD in message
        assert "state.password_file" in message
        assert SECRET not in message


def test_state_password_from_the_environment_and_hidden_in_dumps(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, '[state]\nurl = "postgresql://crm@db/state"\n', **{ENV_STATE_PASSWORD: SECRET}
    )
    assert settings.state_url is not None
    assert settings.state_url.password == SECRET
    assert settings.database_url.password is None, "the source's password is its own"
    for shown in (repr(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert SECRET not in shown
        assert "db/state" in shown


def test_state_password_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "state.pw").write_text(f"{SECRET}\n", encoding="utf-8")
    settings = settings_for(
        tmp_path, '[state]\nurl = "postgresql://crm@db/state"\npassword_file = "state.pw"\n'
    )
    assert settings.state_url is not None
    assert settings.state_url.password == SECRET


def test_environment_state_url_beats_the_file(tmp_path: Path) -> None:
    env_url = f"postgresql://ops:{SECRET}@db.env/state"
    settings = settings_for(
        tmp_path, '[state]\nurl = "postgresql://crm@db/state"\n', **{ENV_STATE_URL: env_url}
    )
    assert settings.state_url is not None
    assert (settings.state_url.host, settings.state_url.password) == ("db.env", SECRET)


def test_relative_state_file_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "conf", '[state]\nurl = "duckdb:///keep/state.duckdb"\n')
    assert settings.state_url is not None
    assert settings.state_url.database == str(tmp_path / "conf" / "keep" / "state.duckdb")


def test_an_invalid_state_url_is_named_without_echoing_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[state]\nurl = "postgresql://crm:{SECRET}@db:x/s"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={}, cwd=tmp_path)
    assert "state.url" in str(refused.value)
    assert SECRET not in str(refused.value)


# -- which database holds the state ------------------------------------------------------


def test_a_writable_source_keeps_the_state_in_one_engine(tmp_path: Path) -> None:
    """Today's behaviour: no [state], a writable source: the state is the source, and
    source and state share one engine (one pool)."""
    source = sqlite_source(tmp_path / "sales.sqlite")
    settings = settings_for(tmp_path, f'[database]\nurl = "sqlite:///{source.as_posix()}"\n')
    choice = resolve_state(settings)
    assert (choice.url, choice.separate) == (settings.database_url, False)
    databases = build_databases(settings)
    try:
        assert databases.source is databases.state
        with databases.state.begin() as conn:  # the state is written in the source
            conn.execute(text("create table written (x integer)"))
    finally:
        databases.dispose()


@pytest.mark.parametrize(
    "how",
    ["setting", "chmod", "sqlite_uri_mode"],
)
def test_a_read_only_sqlite_source_puts_the_state_in_state_duckdb(tmp_path: Path, how: str) -> None:
    source = sqlite_source(tmp_path / "sales.sqlite")
    url = f"sqlite:///{source.as_posix()}"
    body = f'[database]\nurl = "{url}"\n'
    if how == "setting":
        body += "read_only = true\n"
    elif how == "chmod":
        source.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # 0444
    else:
        body = f'[database]\nurl = "sqlite:///file:{source.as_posix()}?mode=ro&uri=true"\n'
    settings = settings_for(tmp_path, body)
    choice = resolve_state(settings)
    assert choice.url == default_state_url(tmp_path / "var")
    assert choice.separate
    assert "read-only" in choice.why
    assert state_url(settings) == make_url(
        f"duckdb:///{(tmp_path / 'var/state.duckdb').as_posix()}"
    )
    databases = build_databases(settings)
    try:
        assert not databases.shared
        with databases.source.connect() as conn:
            assert conn.execute(text("select count(*) from customers")).scalar_one() == 2
        with pytest.raises(DBAPIError, match="readonly"), databases.source.begin() as conn:
            conn.execute(text("insert into customers values (3)"))
        with databases.state.begin() as conn:  # created on first use
            conn.execute(text("create table written (x integer)"))
    finally:
        databases.dispose()
    assert (tmp_path / "var" / "state.duckdb").is_file()


def test_a_read_only_duckdb_source_engine_refuses_writes(tmp_path: Path) -> None:
    source = tmp_path / "sales.duckdb"
    with duckdb.connect(str(source)) as conn:
        conn.execute("create table customers as select 1 as customer_id")
    settings = settings_for(
        tmp_path, f'[database]\nurl = "duckdb:///{source.as_posix()}"\nread_only = true\n'
    )
    databases = build_databases(settings)
    try:
        assert not databases.shared
        with pytest.raises(DBAPIError, match="read-only"), databases.source.begin() as conn:
            conn.execute(text("insert into customers values (2)"))
    finally:
        databases.dispose()


def test_an_explicit_state_url_separates_a_writable_source(tmp_path: Path) -> None:
    """[state] url elsewhere: the source is only read, so its engine is read-only too."""
    source = sqlite_source(tmp_path / "sales.sqlite")
    state = tmp_path / "elsewhere" / "state.sqlite"
    settings = settings_for(
        tmp_path,
        f'[database]\nurl = "sqlite:///{source.as_posix()}"\n'
        f'[state]\nurl = "sqlite:///{state.as_posix()}"\n',
    )
    choice = resolve_state(settings)
    assert choice.url == make_url(f"sqlite:///{state.as_posix()}")
    assert choice.why == "state.url"
    databases = build_databases(settings)
    try:
        assert databases.state.url.database == str(state)
        with pytest.raises(DBAPIError, match="readonly"), databases.source.begin() as conn:
            conn.execute(text("insert into customers values (3)"))
    finally:
        databases.dispose()


def test_state_url_naming_a_read_only_source_is_refused(tmp_path: Path) -> None:
    source = sqlite_source(tmp_path / "sales.sqlite")
    url = f"sqlite:///{source.as_posix()}"
    settings = settings_for(
        tmp_path, f'[database]\nurl = "{url}"\nread_only = true\n[state]\nurl = "{url}"\n'
    )
    with pytest.raises(ConfigError, match=r"names the source database.*read_only"):
        resolve_state(settings)


def test_a_state_url_equal_to_the_source_is_one_engine(tmp_path: Path) -> None:
    source = sqlite_source(tmp_path / "sales.sqlite")
    url = f"sqlite:///{source.as_posix()}"
    settings = settings_for(tmp_path, f'[database]\nurl = "{url}"\n[state]\nurl = "{url}"\n')
    databases = build_databases(settings)
    try:
        assert databases.shared
    finally:
        databases.dispose()


def test_a_file_name_that_needs_quoting_opens_read_only(tmp_path: Path) -> None:
    """The read-only SQLite URI percent-encodes the path (a space, '%', '#')."""
    source = sqlite_source(tmp_path / "sales 100% #1.sqlite")
    settings = settings_for(
        tmp_path, f'[database]\nurl = "sqlite:///{source.as_posix()}"\nread_only = true\n'
    )
    databases = build_databases(settings)
    try:
        with databases.source.connect() as conn:
            assert conn.execute(text("select count(*) from customers")).scalar_one() == 2
    finally:
        databases.dispose()
    assert sorted(p.name for p in tmp_path.glob("sales*")) == [source.name], "no new file"


def test_a_failure_names_the_database_it_came_from(tmp_path: Path) -> None:
    """With two databases, an unavailable one is named in the DependencyError."""
    source = sqlite_source(tmp_path / "sales.sqlite")
    settings = settings_for(
        tmp_path, f'[database]\nurl = "sqlite:///{source.as_posix()}"\nread_only = true\n'
    )
    databases = build_databases(settings)
    try:
        for engine, name in ((databases.source, "source"), (databases.state, "state")):
            outage = _operational_error(engine)
            failure = database_failure(outage, "nightly 2026-06-30: kpis")
            assert failure is not None
            assert str(failure).startswith(f"nightly 2026-06-30: kpis: {name} database unavailable")
    finally:
        databases.dispose()


def _operational_error(engine: object) -> BaseException:
    """An OperationalError raised through ``engine`` (a database file it cannot open)."""
    from sqlalchemy.exc import OperationalError

    try:
        with engine.connect() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql("attach database '/nonexistent/dir/x.db' as x")
    except OperationalError as exc:
        return exc
    except DBAPIError as exc:  # DuckDB reports it as another DBAPI error class
        return OperationalError(exc.statement, exc.params, exc.orig)
    raise AssertionError("expected the attach to fail")


# -- servers -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_a_read_only_server_engine_refuses_writes_and_says_so(
    backend: str, db_url_factory: Callable[[str], URL]
) -> None:
    """The read-only session options (PostgreSQL default_transaction_read_only, MySQL
    SET SESSION TRANSACTION READ ONLY) hold, and the detection reads them back; the
    same database on a writable engine counts as writable."""
    url = db_url_factory(backend)
    writable = make_engine(url)
    read_only = make_engine(url, read_only=True)
    try:
        assert server_read_only(writable) is None
        reason = server_read_only(read_only)
        assert reason is not None
        assert "read-only" in reason
        with pytest.raises(DBAPIError, match=r"(?i)read.only"), read_only.begin() as conn:
            conn.execute(text("create table crm_should_not_exist (x integer)"))
    finally:
        writable.dispose()
        read_only.dispose()


def test_a_source_server_that_does_not_answer_leaves_the_state_unknown(tmp_path: Path) -> None:
    """Asking a server source whether it is writable needs it to answer: a refused
    connection is a DependencyError naming its URL (exit 5), not a silent guess."""
    settings = settings_for(
        tmp_path,
        '[database]\nurl = "postgresql://crm@127.0.0.1:9/sales"\nconnect_timeout_seconds = 2\n',
    )
    with pytest.raises(DependencyError, match=r"cannot connect to postgresql://crm@127\.0\.0\.1:9"):
        resolve_state(settings)
    flagged = settings.model_copy(update={"source_read_only": True})
    assert resolve_state(flagged).url == default_state_url(tmp_path / "var"), "no question asked"
