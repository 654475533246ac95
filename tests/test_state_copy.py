"""``crm-batch state copy``: the history moves with the state database.

A company that moves its state (``[state] url``, ``database.read_only``) must not lose
its KPI snapshots, follow-ups, value models, run log or delivery ledger. The copy
keeps what the state database already holds, writes everything or nothing, and a run
on a state database without history warns while the source still holds some.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, select, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import IntegrityError
from test_cli import run_cli

from crm_batch.app.engines import Databases
from crm_batch.app.state_copy import TableCopy, copy_state, history_left_behind
from crm_batch.config import Settings, load_settings
from crm_batch.errors import ConfigError, DependencyError
from crm_batch.schema import OUTPUT_TABLES, VALUE_MODEL_FIGURES, build_metadata
from crm_batch.source.db import make_engine

DAY = date(2026, 6, 30)
MOMENT = datetime(2026, 7, 1, 2, 30, 5)


def history_rows() -> dict[str, list[dict[str, object]]]:
    """A small history in every state table (values chosen so each column is checked)."""
    return {
        "kpi_snapshots": [
            {"as_of": DAY, "scope": "all", "team": "", "kpi": "revenue_12m", "value": 1234.5,
             "computed_at": MOMENT},
            {"as_of": DAY, "scope": "team", "team": "上海", "kpi": "revenue_12m", "value": 0.25,
             "computed_at": MOMENT},
            {"as_of": date(2026, 3, 31), "scope": "noteam", "team": "", "kpi": "buyers",
             "value": None, "computed_at": MOMENT},
        ],
        "followups": [
            {"followup_id": "f-1", "customer_id": "00042", "entered_at": MOMENT,
             "entered_by": "王芳", "outcome": "reached", "note": "=cmd|' /C calc'!A0",
             "next_contact_date": date(2026, 7, 8), "source_workbook": "Shanghai.xlsm"},
        ],
        "value_model_parameters": [
            {"as_of": DAY, "computed_at": MOMENT,
             **{name: float(i) + 0.5 for i, name in enumerate(VALUE_MODEL_FIGURES)}},
        ],
        "batch_runs": [
            {"run_id": "r-1", "stage": "run", "business_date": DAY, "kind": "nightly",
             "status": "ok", "started_at": MOMENT, "finished_at": MOMENT, "rows": 7,
             "error": None, "host": "ops1", "pid": 4242},
        ],
        "deliveries": [
            {"message_id": "<m1@crm>", "recipient": "a@example.com", "report_kind": "diagnosis",
             "team": "Shanghai", "period": "2026-06-30", "language": "zh-CN",
             "report_path": "/r/d.pdf", "pdf_sha256": "ab" * 32, "content_sha256": "cd" * 32,
             "status": "sent", "attempts": 1, "updated_at": MOMENT, "sent_at": MOMENT,
             "error": None},
        ],
    }  # fmt: skip


def fill(url: URL, rows: dict[str, list[dict[str, object]]]) -> None:
    """Create the state tables in the database at ``url`` and insert ``rows`` (the engine
    is disposed of after: DuckDB lets one process open a file read-write or read-only,
    not both, and the copy opens its origin read-only)."""
    engine = engine_of(url)
    try:
        tables = build_metadata().tables
        for name in OUTPUT_TABLES:
            tables[name].create(engine, checkfirst=True)
        with engine.begin() as conn:
            for name, table_rows in rows.items():
                conn.execute(tables[name].insert(), table_rows)
    finally:
        engine.dispose()


def read_all(url: URL) -> dict[str, list[tuple[object, ...]]]:
    """Every state table's rows, sorted, in the canonical column order."""
    tables = build_metadata().tables
    out = {}
    engine = engine_of(url)
    try:
        with engine.connect() as conn:
            for name in OUTPUT_TABLES:
                table = tables[name]
                rows = conn.execute(select(*table.columns)).all()
                out[name] = sorted((tuple(row) for row in rows), key=repr)
    finally:
        engine.dispose()
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "crm_batch.toml").write_text('[paths]\ndata_dir = "var"\n', encoding="utf-8")
    return load_settings(tmp_path / "crm_batch.toml", environ={}, cwd=tmp_path)


def engine_of(url: URL) -> Engine:
    return make_engine(url, connect_timeout=5, statement_timeout=60)


def copy(settings: Settings, origin: URL, target: URL) -> dict[str, TableCopy]:
    """:func:`copy_state` from ``origin`` into the database at ``target``, by table."""
    state = engine_of(target)
    try:
        return {r.table: r for r in copy_state(settings, origin, state)}
    finally:
        state.dispose()


@pytest.mark.parametrize(
    ("origin", "target"),
    [
        ("duckdb", "duckdb"),
        ("sqlite", "duckdb"),
        ("duckdb", "sqlite"),
        pytest.param("duckdb", "postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite", "mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", "duckdb", marks=pytest.mark.postgres),
    ],
)
def test_copy_carries_every_state_table_across_databases(
    origin: str, target: str, db_url_factory: Callable[[str], URL], settings: Settings
) -> None:
    origin_url, target_url = db_url_factory(origin), db_url_factory(target)
    fill(origin_url, history_rows())
    results = copy(settings, origin_url, target_url)
    assert {name: (r.found, r.rows, r.copied) for name, r in results.items()} == {
        "kpi_snapshots": (True, 3, 3),
        "followups": (True, 1, 1),
        "value_model_parameters": (True, 1, 1),
        "batch_runs": (True, 1, 1),
        "deliveries": (True, 1, 1),
    }
    expected = read_all(origin_url)
    assert read_all(target_url) == expected
    # twice is harmless: nothing new the second time
    again = copy(settings, origin_url, target_url)
    assert [r.copied for r in again.values()] == [0] * len(OUTPUT_TABLES)
    assert read_all(target_url) == expected


def test_rows_the_state_already_holds_are_kept(
    db_url_factory: Callable[[str], URL], settings: Settings
) -> None:
    origin_url, target_url = db_url_factory("duckdb"), db_url_factory("duckdb")
    fill(origin_url, history_rows())
    newer = history_rows()["kpi_snapshots"][0] | {"value": 999.0}
    fill(target_url, {"kpi_snapshots": [newer]})
    results = copy(settings, origin_url, target_url)
    assert (results["kpi_snapshots"].copied, results["kpi_snapshots"].kept) == (2, 1)
    snapshots = read_all(target_url)["kpi_snapshots"]
    revenue = [row for row in snapshots if row[1] == "all" and row[3] == "revenue_12m"]
    assert [row[4] for row in revenue] == [999.0]
    assert len(snapshots) == 3


@pytest.mark.parametrize("target", ["sqlite", "duckdb"])
def test_a_failed_copy_writes_nothing(
    target: str, db_url_factory: Callable[[str], URL], settings: Settings
) -> None:
    """The last table fails (a ledger row without recipient, which the state database's
    NOT NULL refuses): the tables copied before it are rolled back too (SQLite would
    commit them, as a failed statement does not end its transaction)."""
    origin_url, target_url = db_url_factory("duckdb"), db_url_factory(target)
    rows = history_rows()
    del rows["deliveries"]
    fill(origin_url, rows)
    source = engine_of(origin_url)
    try:
        with source.begin() as conn:
            conn.execute(text("drop table deliveries"))
        loose = MetaData()
        columns = [c.name for c in build_metadata().tables["deliveries"].columns]
        Table("deliveries", loose, *(Column(name, String(300)) for name in columns))
        loose.create_all(source)
        with source.begin() as conn:
            conn.execute(
                text("insert into deliveries (message_id, status) values ('<x@crm>', 'sent')")
            )
    finally:
        source.dispose()
    with pytest.raises(IntegrityError):
        copy(settings, origin_url, target_url)
    assert {name: rows for name, rows in read_all(target_url).items() if rows} == {}


def test_an_older_ledger_without_its_newer_column_copies(
    db_url_factory: Callable[[str], URL], settings: Settings
) -> None:
    origin_url, target_url = db_url_factory("sqlite"), db_url_factory("duckdb")
    row = history_rows()["deliveries"][0]
    old = {k: v for k, v in row.items() if k != "content_sha256"}
    loose = MetaData()
    canonical = build_metadata().tables["deliveries"]
    Table("deliveries", loose, *(c._copy() for c in canonical.columns if c.name in old))
    source = engine_of(origin_url)
    try:
        loose.create_all(source)
        with source.begin() as conn:
            conn.execute(loose.tables["deliveries"].insert(), [old])
    finally:
        source.dispose()
    results = copy(settings, origin_url, target_url)
    assert results["deliveries"].copied == 1
    assert not results["kpi_snapshots"].found
    [copied] = read_all(target_url)["deliveries"]
    assert copied[0] == "<m1@crm>"
    assert copied[8] is None  # content_sha256


def test_the_state_itself_and_an_unreachable_origin_are_refused(
    db_url_factory: Callable[[str], URL], settings: Settings
) -> None:
    target_url = db_url_factory("duckdb")
    with pytest.raises(ConfigError, match="is the state database itself"):
        copy(settings, target_url, target_url)
    dead = URL.create("postgresql+psycopg", username="crm", host="127.0.0.1", port=9)
    with pytest.raises(DependencyError, match="cannot connect"):
        copy(settings, dead.set(database="state"), target_url)


def test_history_left_behind_warns_until_copied(
    db_url_factory: Callable[[str], URL], settings: Settings
) -> None:
    origin_url, target_url = db_url_factory("duckdb"), db_url_factory("duckdb")

    def warning() -> str | None:
        source, state = engine_of(origin_url), engine_of(target_url)
        try:
            return history_left_behind(Databases(source, state))
        finally:
            source.dispose()
            state.dispose()

    assert warning() is None  # nothing anywhere
    fill(origin_url, history_rows())
    found = warning()
    assert found is not None
    assert "3 kpi_snapshots" in found
    assert "1 deliveries" in found
    assert "state copy --from" in found
    source = engine_of(origin_url)
    try:
        assert history_left_behind(Databases.single(source)) is None  # state is the source
    finally:
        source.dispose()
    copy(settings, origin_url, target_url)
    assert warning() is None


def test_cli_dry_run_then_copy(tmp_path: Path, db_url_factory: Callable[[str], URL]) -> None:
    origin_url = db_url_factory("duckdb")
    fill(origin_url, history_rows())
    state_file = tmp_path / "state.duckdb"
    state_url = URL.create("duckdb", database=state_file.as_posix())
    origin_text = origin_url.render_as_string(hide_password=False)
    (tmp_path / "crm_batch.toml").write_text(
        f'[paths]\ndata_dir = "var"\n\n[database]\nurl = "{origin_text}"\n\n'
        f'[state]\nurl = "duckdb:///{state_file.as_posix()}"\n',
        encoding="utf-8",
    )
    dry = run_cli("state", "copy", "--from", origin_text, "--dry-run", cwd=tmp_path, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing written" in dry.stdout
    assert "7 rows would be copied" in dry.stdout
    assert {n: r for n, r in read_all(state_url).items() if r} == {}
    done = run_cli(
        "state", "copy", cwd=tmp_path, env={"CRM_BATCH_STATE_COPY_FROM": origin_text}, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "7 rows copied" in done.stdout
    assert read_all(state_url) == read_all(origin_url)
    same = run_cli(
        "state", "copy", "--from", f"duckdb:///{state_file.as_posix()}", cwd=tmp_path, timeout=60
    )
    assert same.returncode == 3, same.stderr
    assert "is the state database itself" in same.stderr
