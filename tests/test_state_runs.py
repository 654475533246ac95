"""Runs on a source that may not be written, with the state elsewhere (issue 12, point 5).

The source is only ever read: a SQLite file made read-only, a PostgreSQL user with
SELECT only, a DuckDB file beside a PostgreSQL state database. Snapshots, the run log
and follow-ups land in the state database, the source's bytes (or tables) stay as they
were, and an unavailable database is named in the error ("source database" / "state
database", exit code 5).
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from fixtures.batch import DEMO_DAY, demo_folder, url_text
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from test_cli import run_cli

from crm_batch.app.engines import resolve_state
from crm_batch.app.followups import StaffInput, save_followups
from crm_batch.app.kpis import compute
from crm_batch.app.runlog import OK, RUN_STAGE
from crm_batch.config import (
    ENV_STATE_URL,
    RetrySettings,
    Settings,
    default_demo_url,
    load_settings,
)
from crm_batch.errors import DependencyError, ExitCode
from crm_batch.jobs.pipeline import Stage, StageOutcome, run_nightly, run_stages
from crm_batch.jobs.runs import RunContext
from crm_batch.schema import OUTPUT_TABLES
from crm_batch.source.db import make_engine

#: An address where no database answers (connections are refused at once).
DEAD_POSTGRES = "postgresql://crm@127.0.0.1:9/state"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_of(folder: Path, source: URL | None, **environ: str) -> Settings:
    """The settings of a :func:`demo_folder` with ``source`` as ``--db`` and ``environ``."""
    return load_settings(
        folder / "crm_batch.toml", database_url=url_text(source), environ=environ, cwd=folder
    )


def state_tables(path: Path) -> dict[str, int]:
    """Rows of each output table in a DuckDB state file (opened read-only)."""
    engine = make_engine(make_url(f"duckdb:///{path.as_posix()}?access_mode=read_only"))
    try:
        present = set(inspect(engine).get_table_names()) & set(OUTPUT_TABLES)
        with engine.connect() as conn:
            return {
                name: conn.execute(text(f"select count(*) from {name}")).scalar_one()
                for name in sorted(present)
            }
    finally:
        engine.dispose()


def output_rows(engine: Engine) -> int:
    """Rows in the output tables of a source (the demo creates them, empty); disposes."""
    try:
        present = set(inspect(engine).get_table_names()) & set(OUTPUT_TABLES)
        with engine.connect() as conn:
            return sum(
                conn.execute(text(f"select count(*) from {name}")).scalar_one() for name in present
            )
    finally:
        engine.dispose()


def one_followup(settings: Settings) -> int:
    """Save one follow-up as the workbook's Save button does; rows inserted."""
    row = StaffInput("1", "call_back", "asked for a quote", DEMO_DAY, "Li")
    return save_followups(settings, None, [row], "Shanghai.xlsm", datetime(2026, 7, 1, 9)).inserted


@pytest.fixture
def read_only_sqlite(tmp_path: Path) -> Iterator[tuple[Path, URL]]:
    """A demo folder whose source is a SQLite file with no write bit (chmod 0444)."""
    path = tmp_path / "sales.sqlite"
    url = make_url(f"sqlite:///{path.as_posix()}")
    demo_folder(tmp_path, url)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        yield path, url
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_read_only_sqlite_source_runs_with_the_state_in_state_duckdb(
    tmp_path: Path, read_only_sqlite: tuple[Path, URL]
) -> None:
    source, url = read_only_sqlite
    before = sha256(source)
    settings = settings_of(tmp_path, url)

    result = run_nightly(settings, DEMO_DAY)
    assert result.stages[0].rows == 300  # customers extracted from the read-only source
    assert result.problems == ()
    snapshot = compute(settings, DEMO_DAY, snapshot=True, verify=False)
    assert snapshot.run.reports[None].kpis
    assert one_followup(settings) == 1

    state = tmp_path / "var" / "state.duckdb"
    stored = state_tables(state)
    assert stored["kpi_snapshots"] > 0
    assert stored["batch_runs"] == 1 + len(result.stages)  # the run row and its stages
    assert stored["followups"] == 1
    assert stored["value_model_parameters"] == 1
    assert sha256(source) == before, "the source's bytes are unchanged"
    with duckdb.connect(str(state), read_only=True) as conn:
        runs = conn.execute(
            "select kind, status from batch_runs where stage = ?", [RUN_STAGE]
        ).fetchall()
    assert runs == [("nightly", OK)]
    assert output_rows(make_engine(f"sqlite:///file:{source.as_posix()}?mode=ro&uri=true")) == 0

    # the command line: kpis --snapshot and status see the same two databases
    kpis = run_cli(
        "kpis", "--db", url_text(url), "--as-of", "2026-06-30", "--snapshot", cwd=tmp_path
    )
    assert kpis.returncode == 0, kpis.stderr
    status = run_cli("status", "--db", url_text(url), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"state:      duckdb:///{state.as_posix()} (the source is read-only" in status.stdout
    assert "(source, opened read-only)" in status.stdout
    assert "connection: ok (source and state)" in status.stdout
    assert "last nightly run: ok (business date 2026-06-30)" in status.stdout
    assert sha256(source) == before


def test_the_state_follows_the_source_when_it_is_writable(tmp_path: Path) -> None:
    """No [state], a writable demo file: everything stays in the source, as before."""
    folder = demo_folder(tmp_path)
    settings = settings_of(folder, None)
    run_nightly(settings, DEMO_DAY)
    assert not (tmp_path / "var" / "state.duckdb").exists()
    demo = Path(default_demo_url(tmp_path / "var").database or "")
    assert state_tables(demo)["kpi_snapshots"] > 0


@pytest.mark.postgres
def test_a_postgres_user_with_select_only_keeps_the_state_in_duckdb(
    tmp_path: Path, db_url_factory: Callable[[str], URL]
) -> None:
    """A warehouse user that may only SELECT: detected (no CREATE in its schema, no
    batch_runs to write), so the state goes to state.duckdb and nothing is written to
    the server."""
    admin_url = db_url_factory("postgres")
    demo_folder(tmp_path, admin_url)
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    schema = str(admin_url.query["options"]).split("=", 1)[1]
    role = f"{schema}_reader"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'create role "{role}" login'))
            conn.execute(text(f'grant usage on schema "{schema}" to "{role}"'))
            conn.execute(text(f'grant select on all tables in schema "{schema}" to "{role}"'))
        settings = settings_of(tmp_path, admin_url.set(username=role))

        result = run_nightly(settings, DEMO_DAY)

        assert result.problems == ()
        stored = state_tables(tmp_path / "var" / "state.duckdb")
        assert stored["kpi_snapshots"] > 0
        assert stored["batch_runs"] == 1 + len(result.stages)
        assert output_rows(make_engine(admin_url)) == 0, "nothing written to the source"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop owned by "{role}"'))
            conn.execute(text(f'drop role if exists "{role}"'))
        admin.dispose()


@pytest.mark.postgres
def test_an_explicit_postgres_state_with_a_duckdb_source(
    tmp_path: Path, db_url_factory: Callable[[str], URL]
) -> None:
    """[state] url on PostgreSQL, the demo DuckDB file as the source: the run log, the
    snapshots and the lock are on the server, the DuckDB file is opened read-only."""
    folder = demo_folder(tmp_path)
    source = Path(default_demo_url(tmp_path / "var").database or "")
    before = sha256(source)
    state_url = db_url_factory("postgres")
    settings = settings_of(folder, None, **{ENV_STATE_URL: url_text(state_url) or ""})

    result = run_nightly(settings, DEMO_DAY)

    assert result.problems == ()
    engine = make_engine(state_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from kpi_snapshots")).scalar_one() > 0
            kinds = conn.execute(
                text("select kind, status from batch_runs where stage = 'run'")
            ).all()
        assert [tuple(row) for row in kinds] == [("nightly", OK)]
    finally:
        engine.dispose()
    assert sha256(source) == before, "a DuckDB file opened read-only is not written"
    read_only = make_url(f"duckdb:///{source.as_posix()}?access_mode=read_only")
    assert output_rows(make_engine(read_only)) == 0, "nothing written to the source"


# -- an unavailable database is named -----------------------------------------------------


def _quick(settings: Settings) -> Settings:
    return settings.model_copy(update={"retry": RetrySettings(attempts=1)})


def test_a_state_database_that_does_not_answer_is_named(
    tmp_path: Path, read_only_sqlite: tuple[Path, URL]
) -> None:
    _source, url = read_only_sqlite
    settings = _quick(settings_of(tmp_path, url, **{ENV_STATE_URL: DEAD_POSTGRES}))
    with pytest.raises(DependencyError) as failed:
        run_nightly(settings, DEMO_DAY, sleep=lambda _seconds: None)
    message = str(failed.value)
    assert message.startswith("state database: cannot connect to postgresql://crm@127.0.0.1:9")
    assert failed.value.exit_code == ExitCode.DEPENDENCY


def test_a_source_database_that_does_not_answer_is_named(tmp_path: Path) -> None:
    demo_folder(tmp_path)
    state = make_url(f"duckdb:///{(tmp_path / 'state.duckdb').as_posix()}")
    dead_source = make_url("postgresql://crm@127.0.0.1:9/sales")
    settings = _quick(settings_of(tmp_path, dead_source, **{ENV_STATE_URL: url_text(state)}))
    with pytest.raises(DependencyError) as failed:
        run_nightly(settings, DEMO_DAY, sleep=lambda _seconds: None)
    assert str(failed.value).startswith("source database: cannot connect to postgresql://")


@pytest.mark.parametrize("which", ["source", "state"])
def test_a_database_lost_mid_stage_is_named(
    tmp_path: Path, read_only_sqlite: tuple[Path, URL], which: str
) -> None:
    """A stage whose database goes away (here: an operational error on its engine) ends
    in a DependencyError naming that database, retried under the run's policy."""
    _source, url = read_only_sqlite
    settings = _quick(settings_of(tmp_path, url))

    def lose(context: RunContext) -> StageOutcome:
        engine = context.source if which == "source" else context.state
        with engine.connect() as conn:
            conn.exec_driver_sql("attach database '/nonexistent/folder/x.db' as lost")
        return StageOutcome(0, "unreachable")

    with pytest.raises(DependencyError) as failed:
        run_stages(settings, "nightly", DEMO_DAY, [Stage("kpis", lose)], sleep=lambda _s: None)
    assert f"nightly 2026-06-30: kpis: {which} database unavailable" in str(failed.value)


def test_the_command_line_exits_5_naming_the_state_database(
    tmp_path: Path, read_only_sqlite: tuple[Path, URL]
) -> None:
    _source, url = read_only_sqlite
    with (tmp_path / "crm_batch.toml").open("a", encoding="utf-8") as config:
        config.write("[retry]\nattempts = 1\n")
    result = run_cli(
        "nightly",
        "--db",
        url_text(url) or "",
        "--as-of",
        "2026-06-30",
        cwd=tmp_path,
        env={ENV_STATE_URL: DEAD_POSTGRES},
        timeout=120,
    )
    assert result.returncode == ExitCode.DEPENDENCY, result.stderr
    assert "crm-batch: error: state database: cannot connect to postgresql://" in result.stderr


def test_status_names_both_databases_and_which_one_failed(
    tmp_path: Path, read_only_sqlite: tuple[Path, URL]
) -> None:
    """status with a state database that does not answer: the source is shown, the
    state line says where and why, the connection line names the state database."""
    from crm_batch.app.status import status_report

    _source, url = read_only_sqlite
    settings = settings_of(tmp_path, url, **{ENV_STATE_URL: DEAD_POSTGRES})
    report, healthy = status_report(settings, DEMO_DAY)
    assert not healthy
    assert f"database:   {url_text(url)}   (source, opened read-only)" in report
    assert f"state:      {DEAD_POSTGRES} (state.url)" in report
    assert "connection: FAILED: state database: cannot connect to postgresql://" in report
    assert "tables (rows)" not in report


@pytest.mark.mariadb
def test_a_mariadb_user_with_select_only_keeps_the_state_in_duckdb(
    tmp_path: Path, db_url_factory: Callable[[str], URL]
) -> None:
    """A MariaDB user granted SELECT only, without database.read_only: its grants are
    read (no CREATE, no batch_runs to write), so the state goes to state.duckdb and
    nothing is written to the server; the same user with CREATE keeps it there."""
    admin_url = db_url_factory("mariadb")
    demo_folder(tmp_path, admin_url)
    database = admin_url.database
    user = f"{database}_r"[-32:]
    admin = make_engine(admin_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"create user '{user}'@'%'"))
            conn.execute(text(f"create user '{user}'@'localhost'"))
            for host in ("%", "localhost"):
                conn.execute(text(f"grant select on `{database}`.* to '{user}'@'{host}'"))
        reader = admin_url.set(username=user, password=None)
        settings = settings_of(tmp_path, reader)
        choice = resolve_state(settings)
        assert choice.separate
        assert "may not create tables" in choice.why

        result = run_nightly(settings, DEMO_DAY)

        assert result.problems == ()
        stored = state_tables(tmp_path / "var" / "state.duckdb")
        assert stored["kpi_snapshots"] > 0
        assert output_rows(make_engine(admin_url)) == 0, "nothing written to the source"
        with admin.begin() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"grant create on `{database}`.* to '{user}'@'{host}'"))
        assert not resolve_state(settings).separate, "CREATE granted: the state may stay"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"drop user if exists '{user}'@'%'"))
            conn.execute(text(f"drop user if exists '{user}'@'localhost'"))
        admin.dispose()


@pytest.mark.mariadb
def test_a_mariadb_source_marked_read_only_runs_with_the_state_in_duckdb(
    tmp_path: Path, db_url_factory: Callable[[str], URL]
) -> None:
    """database.read_only = true says it whatever the grants: the source sessions run
    SET SESSION TRANSACTION READ ONLY and the state goes to DuckDB."""
    url = db_url_factory("mariadb")
    demo_folder(tmp_path, url)
    with (tmp_path / "crm_batch.toml").open("a", encoding="utf-8") as config:
        config.write("[database]\nread_only = true\n")
    settings = settings_of(tmp_path, url)

    result = run_nightly(settings, DEMO_DAY)

    assert result.problems == ()
    assert result.stages[0].rows == 300
    stored = state_tables(tmp_path / "var" / "state.duckdb")
    assert stored["kpi_snapshots"] > 0
    assert stored["batch_runs"] == 1 + len(result.stages)
    assert output_rows(make_engine(url)) == 0, "nothing written to the source"
