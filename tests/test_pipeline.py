"""The nightly pipeline end to end on a small demo: snapshots, run log, reruns, crashes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from fixtures.batch import (
    DEMO_DAY,
    ODD_FIRST_ID,
    ODD_TEAMS,
    add_customers,
    demo_folder,
    folder_settings,
    run_rows,
)
from sqlalchemy import event
from sqlalchemy.engine import URL
from test_cli import run_cli
from test_delivery import Handler, LocalController

from crm_batch.app.engines import build_engine
from crm_batch.app.runlog import FAILED, OK, RUN_STAGE, ok_business_dates
from crm_batch.app.snapshots import read_snapshots
from crm_batch.config import Settings
from crm_batch.errors import CompletedWithProblemsError, ExitCode
from crm_batch.jobs.pipeline import (
    NIGHTLY_STAGES,
    RunContext,
    Stage,
    StageOutcome,
    run_nightly,
    run_quarterly,
    store_kpi_snapshots,
)
from crm_batch.periods import parse_period


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, db_url_factory: Callable[[str], URL]
) -> Settings:
    """Settings of a folder whose database (DuckDB file or PostgreSQL) holds the demo."""
    url = db_url_factory("postgres") if request.param == "postgres" else None
    return folder_settings(demo_folder(tmp_path, url), url)


@pytest.fixture
def duckdb_settings(tmp_path: Path) -> Settings:
    return folder_settings(demo_folder(tmp_path))


def snapshots(settings: Settings) -> pd.DataFrame:
    engine = build_engine(settings)
    try:
        return read_snapshots(engine)
    finally:
        engine.dispose()


def runs(settings: Settings) -> list[dict]:
    engine = build_engine(settings)
    try:
        return run_rows(engine)
    finally:
        engine.dispose()


def test_nightly_stores_snapshots_logs_each_stage_and_reruns_identically(
    settings: Settings,
) -> None:
    first = run_nightly(settings, DEMO_DAY)

    assert [s.name for s in first.stages] == [
        "kpis",
        "snapshots",
        "harvest",
        "workbooks",
        "reports",
        "callsheets",
        "prune",
        "delivery",
    ]
    kpis, stored, _harvest, workbooks, reports, sheets, _prune, delivery = first.stages
    assert workbooks.rows == 8  # one workbook per team
    assert len(list(settings.workbooks_dir.glob("*.xlsm"))) == 8
    assert (reports.rows, sheets.rows, delivery.rows) == (0, 0, 0)  # off in these settings
    assert kpis.rows == 300
    assert "8 teams" in kpis.summary
    stored_first = snapshots(settings)
    assert stored.rows == len(stored_first) > 0
    assert set(stored_first["as_of"].dt.date) == {DEMO_DAY}
    assert set(stored_first["scope"]) == {"all", "team"}
    assert stored_first["team"].nunique() == 9  # the company ('') and 8 teams

    logged = {(r["run_id"], r["stage"]): r for r in runs(settings)}
    assert set(logged) == {(first.run_id, s) for s in (RUN_STAGE, *NIGHTLY_NAMES)}
    assert all(r["status"] == OK and r["kind"] == "nightly" for r in logged.values())
    assert logged[(first.run_id, "kpis")]["rows"] == 300
    assert logged[(first.run_id, "snapshots")]["rows"] == stored.rows

    second = run_nightly(settings, DEMO_DAY)
    stored_second = snapshots(settings)
    assert second.run_id != first.run_id
    value_columns = ["as_of", "scope", "team", "kpi", "value"]
    pd.testing.assert_frame_equal(stored_first[value_columns], stored_second[value_columns])
    assert [r["status"] for r in runs(settings) if r["stage"] == RUN_STAGE] == [OK, OK]


NIGHTLY_NAMES = [stage.name for stage in NIGHTLY_STAGES]


def _crash(_context: RunContext) -> StageOutcome:
    raise RuntimeError("injected crash")


def test_a_crash_between_stages_keeps_the_previous_snapshots(duckdb_settings: Settings) -> None:
    run_nightly(duckdb_settings, DEMO_DAY)
    before = snapshots(duckdb_settings)
    kpis, store = NIGHTLY_STAGES[:2]

    with pytest.raises(RuntimeError, match="injected crash"):
        run_nightly(duckdb_settings, DEMO_DAY, stages=(kpis, Stage("crash", _crash), store))

    pd.testing.assert_frame_equal(before, snapshots(duckdb_settings))  # computed_at too
    failed = [r for r in runs(duckdb_settings) if r["status"] != OK]
    assert {(r["stage"], r["status"]) for r in failed} == {(RUN_STAGE, FAILED), ("crash", FAILED)}
    assert all(r["error"] == "RuntimeError: injected crash" for r in failed)
    crashed_run = failed[0]["run_id"]
    assert "snapshots" not in {
        r["stage"] for r in runs(duckdb_settings) if r["run_id"] == crashed_run
    }

    rerun = run_nightly(duckdb_settings, DEMO_DAY)
    after = snapshots(duckdb_settings)
    assert rerun.stages[1].rows == len(after) == len(before)
    pd.testing.assert_series_equal(before["value"], after["value"])


@pytest.mark.slow
def test_a_crash_between_stages_leaves_workbooks_and_reports_byte_identical(
    tmp_path: Path,
) -> None:
    settings = folder_settings(demo_folder(tmp_path, reports=True))
    run_nightly(settings, DEMO_DAY)
    outputs = sorted([*settings.workbooks_dir.glob("*.xlsm"), *settings.reports_dir.glob("*.*")])
    assert len([p for p in outputs if p.suffix == ".pdf"]) == 9  # company + 8 teams
    before = {path: path.read_bytes() for path in outputs}

    # the next night dies after the KPIs, before the workbooks and reports are rewritten
    stages = list(NIGHTLY_STAGES)
    stages.insert(NIGHTLY_NAMES.index("workbooks"), Stage("crash", _crash))
    with pytest.raises(RuntimeError, match="injected crash"):
        run_nightly(settings, DEMO_DAY, stages=stages)
    assert {path: path.read_bytes() for path in outputs} == before
    leftovers = [p.name for p in settings.workbooks_dir.rglob("*") if ".tmp" in p.name]
    assert leftovers == []

    # and a crash inside the reports stage, after the workbooks were replaced
    stages = list(NIGHTLY_STAGES)
    stages.insert(NIGHTLY_NAMES.index("reports") + 1, Stage("crash", _crash))
    with pytest.raises(RuntimeError, match="injected crash"):
        run_nightly(settings, DEMO_DAY, stages=stages)
    rerun = run_nightly(settings, DEMO_DAY)
    assert [s.name for s in rerun.stages] == NIGHTLY_NAMES
    assert sorted(settings.reports_dir.glob("*.pdf")) == sorted(
        p for p in outputs if p.suffix == ".pdf"
    )


def _store_then_fail_on_insert(context: RunContext) -> StageOutcome:
    """The snapshots stage, killed after it deleted the date's rows, before the insert."""

    def fail_insert(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().lower().startswith("insert into kpi_snapshots"):
            raise RuntimeError("connection lost during the snapshot insert")

    event.listen(context.state, "before_cursor_execute", fail_insert)
    try:
        return store_kpi_snapshots(context)
    finally:
        event.remove(context.state, "before_cursor_execute", fail_insert)


def test_a_crash_inside_the_snapshot_write_rolls_back(duckdb_settings: Settings) -> None:
    run_nightly(duckdb_settings, DEMO_DAY)
    before = snapshots(duckdb_settings)
    kpis, _store = NIGHTLY_STAGES[:2]

    with pytest.raises(RuntimeError, match="snapshot insert"):
        run_nightly(
            duckdb_settings, DEMO_DAY, stages=(kpis, Stage("snapshots", _store_then_fail_on_insert))
        )

    pd.testing.assert_frame_equal(before, snapshots(duckdb_settings))
    last = [r for r in runs(duckdb_settings) if r["stage"] == "snapshots"][-1]
    assert last["status"] == FAILED
    assert "snapshot insert" in last["error"]


def test_nightly_cli_exits_5_when_the_database_is_down(tmp_path: Path) -> None:
    folder = tmp_path / "down"
    folder.mkdir()
    (folder / "crm_batch.toml").write_text(
        '[paths]\ndata_dir = "var"\n[database]\nconnect_timeout_seconds = 3\n'
        "[retry]\nattempts = 2\nfirst_wait_seconds = 0.2\n",
        encoding="utf-8",
    )
    result = run_cli(
        "nightly",
        "--db",
        "postgresql://crm@127.0.0.1:9/sales",
        "--as-of",
        "2026-06-30",
        cwd=folder,
        timeout=120,  # hang bound
    )
    assert result.returncode == ExitCode.DEPENDENCY, result.stderr
    assert "crm-batch: error: cannot connect to postgresql://crm@127.0.0.1:9/sales" in result.stderr
    assert "database: attempt 1 of 2 failed" in result.stderr  # a restart gets a second try
    # the file lock was released: the next run is not refused as "already running"
    again = run_cli("nightly", "--db", "postgresql://crm@127.0.0.1:9/sales", cwd=folder)
    assert again.returncode == ExitCode.DEPENDENCY, again.stderr


def test_nightly_cli_runs_the_demo_and_says_what_it_did(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path)
    result = run_cli("nightly", "--as-of", DEMO_DAY.isoformat(), cwd=folder)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"nightly {DEMO_DAY.isoformat()}: ok in ")
    assert lines[1].split()[:2] == ["kpis", "300"]
    assert lines[2].split()[0] == "snapshots"
    assert "nightly" in run_cli("--help", cwd=folder).stdout


@pytest.mark.slow
def test_nightly_cli_ends_with_exit_5_when_the_database_hangs(
    tmp_path: Path, silent_server: int
) -> None:
    """A server that accepts and never answers: the connect timeout ends the night."""
    folder = tmp_path / "hang"
    folder.mkdir()
    (folder / "crm_batch.toml").write_text(
        '[paths]\ndata_dir = "var"\n[database]\nconnect_timeout_seconds = 2\n'
        "[retry]\nattempts = 2\nfirst_wait_seconds = 0.1\n",
        encoding="utf-8",
    )
    url = f"postgresql://crm@127.0.0.1:{silent_server}/sales"
    started = time.monotonic()
    result = run_cli("nightly", "--db", url, "--as-of", "2026-06-30", cwd=folder, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == ExitCode.DEPENDENCY, result.stderr
    assert f"cannot connect to {url}" in result.stderr
    # two attempts of a 2 s connect timeout (libpq waits at least 2 s each) + start-up:
    # a generous hang bound, not a speed test
    assert elapsed < 60, elapsed


def test_json_log_format_keeps_every_stderr_line_json(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "json"
    folder.mkdir()
    (folder / "crm_batch.toml").write_text(
        '[paths]\ndata_dir = "var"\n[database]\nconnect_timeout_seconds = 2\n'
        "[retry]\nattempts = 2\nfirst_wait_seconds = 0.1\n",
        encoding="utf-8",
    )
    url = "postgresql://crm:pw-123@127.0.0.1:9/sales"
    result = run_cli("--log-format", "json", "nightly", "--db", url, cwd=folder)
    assert result.returncode == ExitCode.DEPENDENCY
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [r["level"] for r in records] == ["WARNING", "ERROR"]  # the retry, the failure
    assert records[-1]["message"].startswith("crm-batch: error: cannot connect to")
    assert records[-1]["message"].endswith("(exit 5)")
    assert "pw-123" not in result.stderr


@pytest.mark.slow
def test_quarterly_send_ends_with_exit_7_when_the_mail_server_hangs(
    tmp_path: Path, silent_server: int
) -> None:
    """The review is written, the silent SMTP server times out: exit 7, no hang."""
    folder = demo_folder(tmp_path)
    with (folder / "crm_batch.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            '[[teams]]\nname = "Shanghai"\nmanager_email = "manager@example.com"\nlanguage = "en"\n'
            "[retry]\nattempts = 2\nfirst_wait_seconds = 0.1\n"
            '[email]\nenabled = true\nsmtp_host = "127.0.0.1"\n'
            f"smtp_port = {silent_server}\nstarttls = false\ntimeout_seconds = 0.5\n"
            'from_address = "crm-batch@example.com"\n'
        )
    started = time.monotonic()
    result = run_cli(
        "quarterly", "--quarter", "2026Q2", "--team", "Shanghai", "--send", cwd=folder, timeout=300
    )
    elapsed = time.monotonic() - started
    assert result.returncode == ExitCode.TIMEOUT, result.stderr
    assert "manager@example.com" in result.stderr
    assert (folder / "output" / "reports" / "quarterly_Shanghai_2026Q2_en.pdf").is_file()
    settings = folder_settings(folder)
    last = [r for r in runs(settings) if r["stage"] == "delivery"][-1]
    assert last["status"] == FAILED
    assert elapsed < 120, elapsed  # a hang bound: rendering plus two 0.5 s attempts


def test_a_quarter_that_has_not_finished_is_refused_before_any_run(tmp_path: Path) -> None:
    """run_quarterly checks the one finished-quarter rule against the default business
    date (yesterday) before it takes a lock or records a run."""
    from datetime import datetime, timedelta

    from crm_batch.config import load_settings
    from crm_batch.errors import ConfigError
    from crm_batch.jobs.pipeline import run_quarterly
    from crm_batch.periods import parse_period, period_containing

    url = f"duckdb:///{(tmp_path / 'none.duckdb').as_posix()}"
    settings = load_settings(None, database_url=url, environ={}, cwd=tmp_path)
    yesterday = datetime.now(settings.tz).date() - timedelta(days=1)
    running = period_containing(yesterday + timedelta(days=1), "quarter")  # holds today
    with pytest.raises(ConfigError, match="after the business date"):
        run_quarterly(settings, running)
    with pytest.raises(ConfigError, match="not a quarter"):
        run_quarterly(settings, parse_period("2025-05"))
    assert not (tmp_path / "none.duckdb").exists()  # no database opened


# -- a team's failure is that team's failure (issue 13) ----------------------------------


def _odd_company(tmp_path: Path, teams: dict[str, str | None]) -> Settings:
    """The demo company plus one customer per entry of ``teams`` (key -> team as stored)."""
    settings = folder_settings(demo_folder(tmp_path))
    engine = build_engine(settings)
    try:
        add_customers(engine, teams)
    finally:
        engine.dispose()
    return settings


def _workbook_names(settings: Settings) -> set[str]:
    return {path.name for path in settings.workbooks_dir.glob("*.xlsm")}


def test_a_customer_with_an_empty_team_does_not_stop_the_night(tmp_path: Path) -> None:
    """Was: exit 1 "snapshot scope 'team' with team ''" at the snapshots stage, no
    workbook for anyone. '' is no team: the (unassigned) scope, stored as 'noteam'."""
    settings = _odd_company(tmp_path, {"empty": ODD_TEAMS["empty"]})
    result = run_nightly(settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4])
    assert result.problems == ()
    assert result.stages[3].rows == 9  # 8 teams and the unassigned scope
    assert "(unassigned).xlsm" in _workbook_names(settings)
    stored = snapshots(settings)
    assert set(stored["scope"]) == {"all", "team", "noteam"}
    assert "" not in set(stored.loc[stored["scope"] == "team", "team"])
    assert set(stored.loc[stored["scope"] == "noteam", "team"]) == {""}


@pytest.mark.filterwarnings("ignore:.*extension is not supported:UserWarning")
def test_customers_without_a_team_get_their_own_scope_workbook_and_note(tmp_path: Path) -> None:
    """Was: customers with team NULL silently appeared in no workbook and no team report."""
    settings = _odd_company(tmp_path, {"null": None, "also null": None})
    ids = {ODD_FIRST_ID, ODD_FIRST_ID + 1}
    result = run_nightly(settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4])
    assert "(unassigned).xlsm" in _workbook_names(settings)
    kpis = result.stages[0]
    assert kpis.notes == (
        f"2 customers have no team (e.g. ids {min(ids)}, {max(ids)}): they are the "
        "(unassigned) scope, with its own workbook and report; set their team at the source "
        "(customers.team)",
    )
    book = openpyxl.load_workbook(settings.workbooks_dir / "(unassigned).xlsm", read_only=True)
    try:
        assert book.defined_names["crm_team"].value == '"(unassigned)"'
        customers = book["Customers"] if "Customers" in book.sheetnames else book.worksheets[1]
        cells = {str(value) for row in customers.iter_rows(values_only=True) for value in row}
    finally:
        book.close()
    assert {str(i) for i in ids} <= cells
    logged = {(r["stage"], r["status"]): r for r in runs(settings)}
    assert logged[("kpis", OK)]["error"].startswith("note: 2 customers have no team")


def test_a_team_name_with_a_line_break_is_one_team_night_after_night(tmp_path: Path) -> None:
    """Was: a team with a newline was stored differently each night: its workbook was
    'not replaced' and a new dated copy written every night."""
    settings = _odd_company(tmp_path, {"newline": ODD_TEAMS["newline"], "spaced": "  North East "})
    results = [run_nightly(settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4]) for _night in range(2)]
    assert not [name for name in _workbook_names(settings) if " 20" in name]  # no dated copy
    assert "North East.xlsm" in _workbook_names(settings)
    assert [result.problems for result in results] == [(), ()]
    assert (settings.workbooks_dir / "backup").is_dir()  # the second night replaced it
    teams = set(snapshots(settings)["team"])
    assert "North East" in teams
    assert not any("\n" in team or team != team.strip() for team in teams)


def test_a_300_character_team_fails_alone_with_exit_8_and_a_status_line(tmp_path: Path) -> None:
    """Was: the team failed, then the run stopped before any team's report. Now the
    other teams get everything, the run ends with exit 8 and `status` says what to do."""
    settings = _odd_company(tmp_path, {"long": ODD_TEAMS["long"], "empty": ""})
    folder = tmp_path
    result = run_cli("nightly", "--as-of", DEMO_DAY.isoformat(), cwd=folder)
    assert [
        s.split()[0] for s in result.stdout.splitlines()[1 : 1 + len(NIGHTLY_NAMES)]
    ] == NIGHTLY_NAMES
    assert result.returncode == 8, result.stderr
    assert result.stdout.splitlines()[0].startswith(
        f"nightly {DEMO_DAY.isoformat()}: completed with 1 problem(s)"
    )
    line = (
        f"team '{'L' * 40}…' (300 characters): the name has 300 characters, more than 64; "
        "the team gets no snapshot, workbook or report (its 1 customers count in the "
        "company's KPIs). What to do: fix the name in the source"
    )
    assert f"PROBLEM: {line}" in result.stdout
    assert "crm-batch: error: nightly 2026-06-30 completed with 1 problem(s)" in result.stderr
    assert len(_workbook_names(settings)) == 9  # 8 teams and (unassigned)
    assert not any(name.startswith("L") for name in _workbook_names(settings))

    status = run_cli("status", cwd=folder)
    assert status.returncode == 0, status.stderr
    assert "last nightly run: problems (business date 2026-06-30)" in status.stdout
    assert f"  PROBLEM: {line}" in status.stdout
    assert "  note: 1 customers have no team" in status.stdout
    run_row = [r for r in runs(settings) if r["stage"] == RUN_STAGE][-1]
    assert (run_row["status"], run_row["error"].splitlines()[0][:30]) == ("problems", line[:30])


def test_a_team_whose_report_fails_costs_the_other_teams_nothing(
    duckdb_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that fails to render is its team's problem; every other scope's report
    is written (the batch is rendered again scope by scope to find the failing one)."""
    from crm_batch.reports import diagnosis

    calls: list[list[str | None]] = []

    def render(
        settings: Settings, run: Any, scopes: Any = None, languages: Any = None, extras: Any = None
    ):
        chosen = list(run.reports) if scopes is None else list(scopes)
        calls.append(chosen)
        if "Shanghai" in chosen:
            raise RuntimeError("render worker crashed")
        return [f"report of {scope}" for scope in chosen]

    monkeypatch.setattr(diagnosis, "write_diagnoses", render)
    settings = duckdb_settings.model_copy(
        update={"reports": duckdb_settings.reports.model_copy(update={"nightly_diagnosis": True})}
    )
    kpis, reports = NIGHTLY_STAGES[0], NIGHTLY_STAGES[4]
    result = run_nightly(settings, DEMO_DAY, stages=(kpis, reports))
    assert result.stages[1].rows == 8  # the company and 7 of the 8 teams
    [problem] = result.problems
    assert problem.startswith(
        "team 'Shanghai': its diagnosis report could not be written (RuntimeError: render "
        "worker crashed)"
    )
    assert len(calls[0]) == 9
    assert all(len(chosen) == 1 for chosen in calls[1:])
    assert [r["status"] for r in runs(settings) if r["stage"] == RUN_STAGE] == ["problems"]
    engine = build_engine(settings)
    try:  # a run with problems is done: catch-up and serve do not run the date again
        assert ok_business_dates(engine, "nightly") == {DEMO_DAY}
    finally:
        engine.dispose()


def test_an_unharvestable_workbook_file_is_a_problem_not_a_green_night(tmp_path: Path) -> None:
    """Was: a truncated workbook file made `nightly` exit 0 "ok" while its rows were not
    stored. Now it is its team's problem, named with the file and what to do."""
    settings = folder_settings(demo_folder(tmp_path))
    run_nightly(settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4])
    good = settings.workbooks_dir / "Shanghai.xlsm"
    truncated = settings.workbooks_dir / "Shanghai 2026-06-29 0300.xlsm"
    truncated.write_bytes(good.read_bytes()[:5000])
    result = run_nightly(settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4])
    run_row = [r for r in runs(settings) if r["stage"] == RUN_STAGE][-1]
    assert run_row["status"] == "problems"
    [problem] = result.problems
    assert problem.startswith(
        "team 'Shanghai': Shanghai 2026-06-29 0300.xlsm could not be harvested"
    )
    assert "What to do: repair Shanghai 2026-06-29 0300.xlsm" in problem
    assert truncated.exists()  # kept until it is repaired or moved away


def test_a_workbook_renamed_by_a_new_look_alike_team_leaves_no_stale_copy(
    tmp_path: Path,
) -> None:
    """Was: a new team 'shanghai' forced the hashed name Shanghai-303b1fa9.xlsm while the
    old Shanghai.xlsm stayed behind, stale. Now the old file moves to the new name, with
    what staff typed in it."""
    from crm_batch.excel.harvest import read_staff_inputs
    from crm_batch.excel.workbook_files import team_workbook_paths

    settings = folder_settings(demo_folder(tmp_path))
    run_nightly(settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4])
    old = settings.workbooks_dir / "Shanghai.xlsm"
    engine = build_engine(settings)
    try:
        add_customers(engine, {"look-alike": "shanghai"})
    finally:
        engine.dispose()
    result = run_nightly(settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4])
    assert not old.exists()
    assert result.problems == ()
    new = team_workbook_paths(settings, ["Shanghai", "shanghai"])["Shanghai"]
    assert new.name.startswith("Shanghai-")
    assert new.is_file()
    assert not old.exists()
    assert read_staff_inputs(new).team == "Shanghai"
    names = _workbook_names(settings)
    assert len(names) == 9
    assert not [name for name in names if " 20" in name]


# --- e-mail: look-alike teams, re-runs, the failure notice ----------------------------------

#: Two look-alike pairs: the demo teams renamed so their slugs would meet.
LOOK_ALIKES = {
    "Shanghai": "Team A/B",
    "Beijing": "Team A-B",
    "Guangzhou": "Sales: East",
    "Shenzhen": "Sales- East",
}


@pytest.fixture
def mail_server() -> Iterator[tuple[Handler, int]]:
    """An aiosmtpd server on 127.0.0.1 recording what arrives: (handler, port)."""
    handler = Handler()
    controller = LocalController(handler, hostname="127.0.0.1")
    controller.start()
    yield handler, controller.port
    controller.stop()


def _rename_teams(settings: Settings) -> None:
    from sqlalchemy import text

    engine = build_engine(settings)
    try:
        with engine.begin() as conn:
            for old, new in LOOK_ALIKES.items():
                for table in ("customers", "leads"):
                    conn.execute(
                        text(f"UPDATE {table} SET team = :new WHERE team = :old"),
                        {"new": new, "old": old},
                    )
    finally:
        engine.dispose()


def _manager(team: str) -> str:
    return f"m{list(LOOK_ALIKES.values()).index(team)}@example.com"


def _mail_settings(folder: Path, port: int, extra: str = "") -> Settings:
    teams = "".join(
        f'[[teams]]\nname = "{team}"\nmanager_email = "{_manager(team)}"\nlanguage = "en"\n'
        for team in LOOK_ALIKES.values()
    )
    with (folder / "crm_batch.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            teams + "[email]\nenabled = true\nnightly_diagnosis = true\n"
            f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\nstarttls = false\n'
            f'from_address = "crm-batch@example.com"\n{extra}'
        )
    return folder_settings(folder)


def _received_scopes(handler) -> dict[str, list[tuple[str, str]]]:
    """recipient -> [(attachment file name, the scope the attached PDF records)]."""
    import io

    from pypdf import PdfReader

    from crm_batch.files import SCOPE_PDF_KEY

    found: dict[str, list[tuple[str, str]]] = {}
    for message in handler.received():
        [attachment] = list(message.iter_attachments())
        recorded = PdfReader(io.BytesIO(attachment.get_content())).metadata[SCOPE_PDF_KEY]
        found.setdefault(message["To"], []).append((attachment.get_filename(), recorded))
    return found


@pytest.mark.slow
def test_look_alike_teams_each_get_their_own_report_and_a_rerun_sends_nothing(
    tmp_path: Path, mail_server: tuple[Handler, int], caplog: pytest.LogCaptureFixture
) -> None:
    from crm_batch.jobs.pipeline import run_quarterly
    from crm_batch.periods import parse_period

    handler, port = mail_server
    folder = demo_folder(tmp_path, reports=True)
    settings = _mail_settings(folder, port)
    _rename_teams(settings)

    nightly = run_nightly(settings, DEMO_DAY)
    quarterly = run_quarterly(settings, parse_period("2026Q2"), send=True)

    scopes = _received_scopes(handler)
    for team in LOOK_ALIKES.values():
        files = scopes[_manager(team)]
        assert [recorded for _, recorded in files] == [f"team:{team}"] * 2, team
        assert [name.split("_")[0] for name, _ in files] == ["diagnosis", "quarterly"]
    names = [name for team in LOOK_ALIKES.values() for name, _ in scopes[_manager(team)]]
    assert len(set(names)) == len(names)  # no two teams share a file
    sent = len(handler.messages)
    assert sent == 8
    assert nightly.stages[-1].rows == 4
    assert quarterly.stages[-1].rows == 4
    # each mail carries the report's summary, as plain text and HTML
    first = handler.received()[0]
    assert "Headline figures" in first.get_body(("plain",)).get_content()
    assert "<h3>Headline figures" in first.get_body(("html",)).get_content()

    # re-runs render every report again (new bytes) and send zero new messages
    again = run_nightly(settings, DEMO_DAY)
    review_again = run_quarterly(settings, parse_period("2026Q2"), send=True)
    assert len(handler.messages) == sent
    assert "0 sent, 4 already sent before" in again.stages[-1].summary
    assert "0 sent, 4 already sent before" in review_again.stages[-1].summary

    # --resend sends again on purpose; --dry-run lists and sends nothing
    dry = run_quarterly(settings, parse_period("2026Q2"), dry_run=True)
    assert "dry run: 0 would be sent, 4 already sent before" in dry.stages[-1].summary
    dry = run_quarterly(settings, parse_period("2026Q2"), resend=True, dry_run=True)
    assert len(handler.messages) == sent
    assert "would send quarterly Team A/B 2026Q2 en -> m0@example.com" in dry.stages[-1].summary
    assert "would send quarterly Team A-B 2026Q2 en -> m1@example.com" in dry.stages[-1].summary
    run_nightly(settings, DEMO_DAY, resend=True)
    assert len(handler.messages) == sent + 4


def test_a_failed_run_sends_one_notice_to_ops_and_keeps_its_own_error(
    tmp_path: Path, mail_server: tuple[Handler, int], caplog: pytest.LogCaptureFixture
) -> None:
    from crm_batch.config import load_settings
    from crm_batch.errors import DataError
    from crm_batch.jobs.pipeline import run_stages

    handler, port = mail_server
    path = tmp_path / "crm_batch.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{(tmp_path / "b.sqlite").as_posix()}"\n'
        f'[paths]\ndata_dir = "{(tmp_path / "var").as_posix()}"\n'
        '[email]\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {port}\nstarttls = false\nfrom_address = "crm-batch@example.com"\n'
        'ops_recipients = ["ops@example.com", "oncall@example.com"]\n',
        encoding="utf-8",
    )
    settings = load_settings(path, environ={})

    def ok(context: RunContext) -> StageOutcome:
        return StageOutcome(1, "fine")

    def broken(context: RunContext) -> StageOutcome:
        raise DataError("orders.csv row 7: amount is not a number")

    caplog.set_level(logging.INFO, logger="crm_batch")  # as the CLI's logging sets it
    stages = [Stage("first", ok), Stage("second", broken, retry=False)]
    with pytest.raises(DataError, match="row 7"):
        run_stages(settings, "nightly", DEMO_DAY, stages)

    notices = handler.received()
    # one notice, to every ops address
    assert [m["To"] for m in notices] == ["ops@example.com, oncall@example.com"]
    assert [rcpts for rcpts, _ in handler.messages] == [["ops@example.com", "oncall@example.com"]]
    body = notices[0].get_content()
    assert notices[0]["Subject"].endswith("crm-batch nightly 2026-06-30 failed at second")
    assert "exit code: 4" in body
    assert "DataError: orders.csv row 7" in body
    assert "first: fine" in body  # the run's last log lines

    # a mail server that is down: the run's own error and exit code, nothing else
    dead = settings.model_copy(update={"email": settings.email.model_copy(update={"smtp_port": 9})})
    with pytest.raises(DataError, match="row 7"):
        run_stages(dead, "nightly", DEMO_DAY, stages)
    # a run that succeeds sends nothing
    run_stages(settings, "nightly", DEMO_DAY, stages[:1])
    assert len(handler.messages) == 1


def test_a_team_whose_quarterly_review_fails_costs_the_other_teams_nothing(
    duckdb_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quarterly reviews are isolated per scope like the diagnosis reports: one
    team's failed review is its problem (exit 8), every other review is written."""
    from crm_batch.reports import quarterly

    calls: list[list[str | None]] = []

    def render(settings: Settings, data: Any, teams: Any = None, languages: Any = None):
        chosen = [None, *data.teams()] if not teams else list(teams)
        calls.append(chosen)
        if "Shanghai" in chosen:
            raise RuntimeError("render worker crashed")
        return []

    monkeypatch.setattr(quarterly, "write_quarterly_reviews", render)
    run_nightly(duckdb_settings, DEMO_DAY, stages=NIGHTLY_STAGES[:2])  # the quarter's snapshots
    result = run_quarterly(duckdb_settings, parse_period("2026Q2"))
    [problem] = result.problems
    assert problem.startswith("team 'Shanghai': its quarterly review could not be written")
    assert len(calls[0]) == 9  # the company and 8 teams, then each on its own
    assert sorted(map(str, (c[0] for c in calls[1:]))) == sorted(map(str, calls[0]))
    with pytest.raises(CompletedWithProblemsError):
        result.raise_for_problems()
