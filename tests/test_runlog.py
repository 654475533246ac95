"""The run log (batch_runs): rows per stage, failures, and closing runs whose process died."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psutil
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL

from crm_batch.app.runlog import (
    FAILED,
    OK,
    PROCESS_DIED,
    RUN_STAGE,
    RUNNING,
    close_stale_runs,
    ensure_runs_table,
    local_now,
    open_runs,
    record_run,
    runs_table,
)
from crm_batch.source.db import make_engine

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 6, 30)


@pytest.fixture(params=["sqlite", "duckdb"])
def engine(request: pytest.FixtureRequest, db_url_factory: Callable[[str], URL]) -> Engine:
    made = make_engine(db_url_factory(request.param))
    yield made
    made.dispose()


def rows(engine: Engine) -> dict[tuple[str, str], dict]:
    table = runs_table()
    with engine.connect() as conn:
        return {
            (r.run_id, r.stage): r._asdict()
            for r in conn.execute(select(table).order_by(table.c.started_at)).all()
        }


def test_each_stage_and_the_run_get_a_row(engine: Engine) -> None:
    with record_run(engine, TZ, "nightly", DAY) as recorder:
        with recorder.stage("kpis") as stage:
            stage.rows = 400
        with recorder.stage("snapshots") as stage:
            stage.rows = 522
    found = rows(engine)
    assert set(found) == {(recorder.run_id, s) for s in (RUN_STAGE, "kpis", "snapshots")}
    for (_run, stage), row in found.items():
        assert row["status"] == OK
        assert row["kind"] == "nightly"
        assert row["business_date"] == DAY
        assert row["host"] == socket.gethostname()
        assert row["pid"] == os.getpid()
        assert row["finished_at"] >= row["started_at"]
        assert row["error"] is None
        assert row["rows"] == {"kpis": 400, "snapshots": 522}.get(stage)


def test_a_failing_stage_fails_the_run_with_its_error_and_reraises(engine: Engine) -> None:
    recorders = []

    def run() -> None:
        with record_run(engine, TZ, "nightly", DAY) as recorder:
            recorders.append(recorder)
            with recorder.stage("kpis") as stage:
                stage.rows = 3
            with recorder.stage("snapshots"):
                raise ValueError("bad row from postgresql://ops:hunter2@db.example/sales")

    with pytest.raises(ValueError, match="bad row"):
        run()
    (recorder,) = recorders
    found = rows(engine)
    assert found[(recorder.run_id, "kpis")]["status"] == OK
    for stage in ("snapshots", RUN_STAGE):
        row = found[(recorder.run_id, stage)]
        assert row["status"] == FAILED
        assert row["finished_at"] is not None
        assert row["error"].startswith("ValueError: bad row from postgresql://ops:***@")
        assert "hunter2" not in row["error"]


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _zombie() -> subprocess.Popen:
    """A child that has exited but is not reaped yet (the caller reaps it with wait())."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30  # hang bound only
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.02)
    return child


def _insert_running(
    engine: Engine, run_id: str, *, pid: int, host: str, started_at: datetime
) -> None:
    table = runs_table()
    with engine.begin() as conn:
        for stage in (RUN_STAGE, "kpis"):
            conn.execute(
                table.insert().values(
                    run_id=run_id,
                    stage=stage,
                    business_date=DAY,
                    kind="nightly",
                    status=RUNNING,
                    started_at=started_at,
                    host=host,
                    pid=pid,
                )
            )


def test_runs_whose_process_died_are_closed_and_live_ones_kept(engine: Engine) -> None:
    ensure_runs_table(engine)
    here = socket.gethostname()
    now = local_now(TZ)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie = _zombie()
    try:
        # started before the run's recorded start: it is that run, still alive
        _insert_running(engine, "alive", pid=sleeper.pid, host=here, started_at=now)
        _insert_running(engine, "dead", pid=_dead_pid(), host=here, started_at=now)
        # a live pid whose process started after the run: a reused pid, the run is gone
        _insert_running(
            engine, "reused", pid=sleeper.pid, host=here, started_at=now - timedelta(hours=1)
        )
        _insert_running(engine, "elsewhere", pid=1, host="other-host", started_at=now)
        _insert_running(engine, "zombie", pid=zombie.pid, host=here, started_at=now)

        closed = close_stale_runs(engine, TZ)

        assert sorted(r.run_id for r in closed) == ["dead", "reused", "zombie"]
        found = rows(engine)
        for run_id in ("dead", "reused", "zombie"):
            for stage in (RUN_STAGE, "kpis"):
                assert found[(run_id, stage)]["status"] == FAILED
                assert found[(run_id, stage)]["error"] == PROCESS_DIED
                assert found[(run_id, stage)]["finished_at"] is not None
        assert sorted(r.run_id for r in open_runs(engine)) == ["alive", "elsewhere"]

        # a run holding the database lock knows no other run can be in progress
        closed = close_stale_runs(engine, TZ, all_others=True)
        assert sorted(r.run_id for r in closed) == ["alive", "elsewhere"]
        assert open_runs(engine) == []
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()


def test_the_own_open_run_is_never_stale(engine: Engine) -> None:
    with record_run(engine, TZ, "nightly", DAY) as recorder:
        assert close_stale_runs(engine, TZ, all_others=True) == []
        assert [r.run_id for r in open_runs(engine)] == [recorder.run_id]
