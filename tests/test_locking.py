"""One run at a time: the file lock across processes (kill -9 included) and the database
advisory locks of PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings, run_rows
from fixtures.timeouts import hang_bound
from sqlalchemy.engine import URL
from test_cli import run_cli

from crm_batch.app.engines import build_engine
from crm_batch.app.locking import Holder, database_lock, file_lock, read_holder, try_advisory_lock
from crm_batch.app.runlog import FAILED, OK, PROCESS_DIED, RUN_STAGE
from crm_batch.errors import AlreadyRunningError, ExitCode
from crm_batch.jobs.pipeline import run_nightly
from crm_batch.source.db import make_engine

REPO = Path(__file__).resolve().parents[1]

#: A first run that holds the lock in a stage that waits: it writes the file named by
#: argv[2] once it is inside the stage, then waits (at most two minutes) to be killed.
HOLDING_RUN = """
import sys, time
from datetime import date
from pathlib import Path
from crm_batch.config import load_settings
from crm_batch.jobs.pipeline import Stage, StageOutcome, run_nightly

def wait_to_be_killed(context):
    Path(sys.argv[2]).write_text("inside", encoding="utf-8")
    time.sleep(120)
    return StageOutcome(None, "waited")

settings = load_settings(Path(sys.argv[1]) / "crm_batch.toml", environ={}, cwd=Path(sys.argv[1]))
run_nightly(settings, date.fromisoformat(sys.argv[3]), stages=[Stage("wait", wait_to_be_killed)])
"""


def start_holding_run(folder: Path) -> tuple[subprocess.Popen, Path]:
    """Start :data:`HOLDING_RUN`; return once it is inside its waiting stage."""
    ready = folder / "inside-stage"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_BATCH_")}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDING_RUN, str(folder), str(ready), DEMO_DAY.isoformat()],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60  # hang bound only
    while not ready.exists():
        if process.poll() is not None:
            pytest.fail(f"the holding run exited early: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the holding run did not reach its waiting stage in 60 s")
        time.sleep(0.05)
    return process, ready


def test_file_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    first = Holder.this_process("nightly", "2026-06-30", "2026-07-01T02:30:00", "abc")
    with file_lock(tmp_path, first):
        assert read_holder(tmp_path) == first
        with (
            pytest.raises(
                AlreadyRunningError, match=r"nightly 2026-06-30 \(pid \d+ on host"
            ) as err,
            file_lock(tmp_path, Holder.this_process("nightly", "2026-07-01", "now")),
        ):
            pass
        assert err.value.exit_code == ExitCode.ALREADY_RUNNING
        assert "started 2026-07-01T02:30:00" in str(err.value)
    assert read_holder(tmp_path) is None
    with file_lock(tmp_path, first):  # released: free again
        pass


def test_a_second_run_exits_6_at_once_and_a_killed_run_does_not_block(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path)
    first, _ready = start_holding_run(folder)
    try:
        started = time.monotonic()
        second = run_cli("nightly", "--as-of", DEMO_DAY.isoformat(), cwd=folder, timeout=60)
        elapsed = time.monotonic() - started
        assert second.returncode == ExitCode.ALREADY_RUNNING, second.stderr
        assert "crm-batch: error: another crm-batch run is in progress" in second.stderr
        assert f"nightly {DEMO_DAY.isoformat()} (pid {first.pid} on host" in second.stderr
        assert elapsed < 10, f"the refused run took {elapsed:.1f}s"  # hang bound; ~0.5 s
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=hang_bound(30))

    status = run_cli("status", "--as-of", DEMO_DAY.isoformat(), cwd=folder, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "closed stale run" in status.stdout
    assert f"last nightly run: failed (business date {DEMO_DAY}): {PROCESS_DIED}" in status.stdout

    third = run_cli("nightly", "--as-of", DEMO_DAY.isoformat(), cwd=folder, timeout=300)
    assert third.returncode == 0, third.stderr
    assert f"nightly {DEMO_DAY.isoformat()}: ok" in third.stdout

    engine = build_engine(folder_settings(folder))
    try:
        rows = run_rows(engine)
    finally:
        engine.dispose()
    killed = [r for r in rows if r["pid"] == first.pid]
    assert {r["stage"] for r in killed} == {RUN_STAGE, "wait"}
    assert all(r["status"] == FAILED and r["error"] == PROCESS_DIED for r in killed)
    assert [r["status"] for r in rows if r["stage"] == RUN_STAGE and r["pid"] != first.pid] == [OK]
    status = run_cli("status", "--as-of", DEMO_DAY.isoformat(), cwd=folder, timeout=120)
    assert f"last nightly run: ok (business date {DEMO_DAY})" in status.stdout


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_database_lock_is_exclusive_per_database(
    backend: str, db_url_factory: Callable[[str], URL]
) -> None:
    url = db_url_factory(backend)
    first, second = make_engine(url), make_engine(url)
    elsewhere = make_engine(db_url_factory(backend))  # another schema / database
    try:
        with database_lock(first) as held:
            assert held.held is True
            with (
                pytest.raises(AlreadyRunningError, match="holds the database lock"),
                database_lock(second),
            ):
                pass
            with database_lock(elsewhere) as held_elsewhere:  # unrelated: not blocked
                assert held_elsewhere.held is True
        with database_lock(second) as held:  # released on exit
            assert held.held is True
        # the server releases the lock when the holding connection goes away
        conn = first.connect()
        assert try_advisory_lock(conn.execution_options(isolation_level="AUTOCOMMIT")) is True
        conn.invalidate()
        conn.close()
        with database_lock(second) as held:
            assert held.held is True
    finally:
        for engine in (first, second, elsewhere):
            engine.dispose()


@pytest.mark.postgres
def test_a_run_against_a_locked_database_stops_before_doing_anything(
    tmp_path: Path, db_url_factory: Callable[[str], URL]
) -> None:
    url = db_url_factory("postgres")
    settings = folder_settings(demo_folder(tmp_path / "a", url), url)
    other_machine = make_engine(url)  # another data folder: only the database lock is shared
    try:
        with database_lock(other_machine), pytest.raises(AlreadyRunningError):
            run_nightly(settings, DEMO_DAY)
    finally:
        other_machine.dispose()
    engine = build_engine(settings)
    try:
        assert run_rows(engine) == []  # nothing recorded, nothing written
    finally:
        engine.dispose()
    stored = {stage.name: stage.rows for stage in run_nightly(settings, DEMO_DAY).stages}
    assert stored["snapshots"] > 0
