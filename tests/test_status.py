"""`status` tells the truth without side effects: a missing demo file is not created, and
a run holding the DuckDB file is reported as busy, not as a broken database."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from fixtures.batch import DEMO_DAY, demo_folder, folder_settings
from sqlalchemy import text
from test_cli import run_cli

from crm_batch.app.engines import build_engine
from crm_batch.errors import ExitCode

HOLD_THE_FILE = """
import datetime, json, os, socket, sys, time, zoneinfo
import duckdb

folder = sys.argv[1]
connection = duckdb.connect(os.path.join(folder, "var", "demo.duckdb"))
now = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
holder = dict(pid=os.getpid(), host=socket.gethostname(), kind="nightly",
              started_at=now.isoformat(timespec="seconds"), business_date="2026-06-30")
with open(os.path.join(folder, "var", "crm-batch.lock.json"), "w") as handle:
    json.dump(holder, handle)
print("ready", flush=True)
time.sleep(120)
"""


def test_status_does_not_create_a_missing_demo_database(tmp_path: Path) -> None:
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == ExitCode.DEPENDENCY
    assert "there is no database file" in result.stdout
    assert "`run_batch.py demo` builds the demo database there" in result.stdout
    assert not (tmp_path / "var" / "demo.duckdb").exists()


def test_status_while_a_run_has_the_duckdb_file_says_busy(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FILE, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        result = run_cli("status", cwd=folder)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"running:    nightly 2026-06-30 (pid {holder.pid} on host" in result.stdout
    assert "connection: busy: the run in progress has the DuckDB file open" in result.stdout

    # the holder died (kill -9 leaves its record behind): the record is ignored
    time.sleep(0.2)
    after = run_cli("status", cwd=folder)
    assert after.returncode == 0, after.stdout
    assert "running:" not in after.stdout
    assert "connection: ok" in after.stdout


def test_a_multi_line_error_is_shown_whole_on_one_line() -> None:
    """Was: a failed run's error showed as "1 failed:" (its first line) in `status`."""
    from crm_batch.app.status import one_line

    stored = "1 failed:\n  team 'Wuhan': cannot write Wuhan.xlsm: disk full\n"
    assert one_line(stored, 400) == "1 failed: | team 'Wuhan': cannot write Wuhan.xlsm: disk full"
    assert one_line(stored, 20) == "1 failed: | team 'W…"


def test_status_counts_a_view_as_a_mapped_table(tmp_path: Path) -> None:
    """Was: a source mapped through views showed "(missing)" for them (issue 12)."""
    from crm_batch.app.status import status_report

    folder = demo_folder(tmp_path)
    settings = folder_settings(folder)
    engine = build_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(text("create table crm_tickets as select * from tickets"))
            conn.execute(text("drop table tickets"))
            conn.execute(text("create view tickets as select * from crm_tickets"))
            tickets = conn.execute(text("select count(*) from crm_tickets")).scalar_one()
    finally:
        engine.dispose()
    report, _healthy = status_report(settings, DEMO_DAY, runs=1)
    line = next(line for line in report.splitlines() if line.strip().startswith("tickets "))
    assert "(missing)" not in line
    assert f"{tickets:,}" in line


def test_status_counts_the_relations_through_the_mapping_files(tmp_path: Path) -> None:
    """The canonical rows come from the mapping files: an absent optional file says
    "not mapped", a file the database rejects shows its error, on its own line."""
    from crm_batch.app.status import status_report

    folder = demo_folder(tmp_path)
    settings = folder_settings(folder)
    mapping = tmp_path / "mapping"
    mapping.mkdir()
    source = settings.source_dir
    for name in ("customers", "orders", "tickets"):
        (mapping / f"{name}.sql").write_text(
            (source / f"{name}.sql").read_text(encoding="utf-8"), encoding="utf-8"
        )
    (mapping / "orders.sql").write_text(
        "select * from orders where status = 'paid'", encoding="utf-8"
    )
    (mapping / "tickets.sql").write_text("select * from no_such_table", encoding="utf-8")
    engine = build_engine(settings)
    try:
        with engine.connect() as conn:
            paid = conn.execute(
                text("select count(*) from orders where status = 'paid'")
            ).scalar_one()
    finally:
        engine.dispose()
    report, healthy = status_report(settings.model_copy(update={"source_dir": mapping}), DEMO_DAY)
    assert healthy
    lines = {line.split()[0]: line for line in report.splitlines() if line.startswith("  ")}
    assert f"{paid:,}" in lines["orders"]
    assert "(not mapped)" in lines["leads"]
    assert "(error)" in lines["tickets"]
    assert "tickets.sql" in lines["tickets"]
    assert "no_such_table" in lines["tickets"]
    assert f"mapping:    {mapping}" in report
