"""Locks that hold: a database restart during a run ends the run's advisory-lock session;
the run takes the lock again at its next safe point, or stops with exit code 5 when
another run took it meanwhile. A database that goes away inside a stage is a retried
dependency failure (exit 5), never a traceback (issue: "A database restart during a run
loses the advisory lock").

The restart tests start a private PostgreSQL cluster on a free port (never the shared
server), as the PostgreSQL user when the tests run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings
from fixtures.timeouts import hang_bound
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from crm_batch.app.locking import DatabaseLock, try_advisory_lock
from crm_batch.config import RetrySettings
from crm_batch.errors import DependencyError, ExitCode, LockLostError
from crm_batch.jobs.pipeline import RunContext, Stage, StageOutcome, run_stages
from crm_batch.source.db import make_engine

BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PrivateServer:
    """A throw-away PostgreSQL cluster: data and socket in a temporary folder."""

    bin_dir: Path
    folder: Path
    port: int

    @property
    def url(self) -> URL:
        return URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=self.port,
            database="postgres",
        )  # fmt: skip

    def _pg(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=hang_bound(60))

    def ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            "pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-m", "fast", "-w",
            "-l", str(self.folder / "server.log"), action,
        )  # fmt: skip

    def restart(self) -> None:
        self.ctl("restart")


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    if not BIN_DIRS or (os.geteuid() == 0 and not shutil.which("runuser")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="crm-batch-pg-", dir="/tmp"))
    folder.chmod(0o777)  # the postgres user writes the cluster and its socket here
    server = PrivateServer(Path(BIN_DIRS[0]), folder, _free_port())
    try:
        server._pg("initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres")
        server.ctl("start")
        yield server
    finally:
        with contextlib.suppress(Exception):
            server._pg("pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def engine_for(url: URL) -> Iterator[Engine]:
    engine = make_engine(url, connect_timeout=5)
    try:
        yield engine
    finally:
        engine.dispose()


pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_restart_ends_the_lock_and_the_run_takes_it_again(
    private_server: PrivateServer, caplog: pytest.LogCaptureFixture
) -> None:
    with engine_for(private_server.url) as engine, engine_for(private_server.url) as other:
        lock = DatabaseLock(engine)
        lock.acquire()
        assert lock
        private_server.restart()

        lock.ensure_held("before stage workbooks")

        with other.connect() as conn:
            assert try_advisory_lock(conn) is False  # ours again, not free
        assert "database lock taken again" in caplog.text
        lock.release()


def test_a_lock_another_run_took_after_a_restart_stops_this_run(
    private_server: PrivateServer,
) -> None:
    with engine_for(private_server.url) as engine, engine_for(private_server.url) as other:
        lock = DatabaseLock(engine)
        lock.acquire()
        private_server.restart()
        with other.connect().execution_options(isolation_level="AUTOCOMMIT") as second:
            assert try_advisory_lock(second) is True  # the second run starts meanwhile
            with pytest.raises(LockLostError) as lost:
                lock.ensure_held("before stage workbooks")
            assert lost.value.exit_code == ExitCode.DEPENDENCY
            assert "another crm-batch run holds it now" in str(lost.value)
        lock.release()


def test_a_run_whose_lock_was_taken_over_stops_before_its_next_stage(
    private_server: PrivateServer, tmp_path: Path
) -> None:
    settings = folder_settings(demo_folder(tmp_path, private_server.url), private_server.url)
    later: list[str] = []
    second_run: dict[str, object] = {}

    def restart_and_let_another_run_in(_context: RunContext) -> StageOutcome:
        private_server.restart()
        engine = make_engine(private_server.url, connect_timeout=5)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        assert try_advisory_lock(conn) is True
        second_run.update(engine=engine, conn=conn)
        return StageOutcome(None, "restarted")

    def write(_context: RunContext) -> StageOutcome:
        later.append("written")
        return StageOutcome(1, "wrote")

    stages = [Stage("first", restart_and_let_another_run_in), Stage("second", write)]
    try:
        with pytest.raises(LockLostError):
            run_stages(settings, "nightly", DEMO_DAY, stages, sleep=lambda _s: None)
    finally:
        if second_run:
            second_run["conn"].close()  # type: ignore[attr-defined]
            second_run["engine"].dispose()  # type: ignore[attr-defined]
    assert later == []  # it never wrote beside the other run
    with engine_for(private_server.url) as engine, engine.connect() as conn:
        status = conn.execute(
            text("select status from batch_runs where stage = 'run'")
        ).scalar_one()
    assert status == "failed"


def test_a_database_gone_inside_a_stage_is_retried_and_ends_with_exit_5(tmp_path: Path) -> None:
    settings = folder_settings(demo_folder(tmp_path))
    settings = settings.model_copy(update={"retry": RetrySettings(attempts=3)})
    calls: list[int] = []

    def workbooks(_context: RunContext) -> StageOutcome:
        calls.append(1)
        raise OperationalError(
            "insert into followups", {}, Exception("server closed the connection unexpectedly")
        )

    with pytest.raises(DependencyError) as failed:
        run_stages(
            settings, "nightly", DEMO_DAY, [Stage("workbooks", workbooks)], sleep=lambda _s: None
        )
    assert failed.value.exit_code == ExitCode.DEPENDENCY
    assert "workbooks: database unavailable: server closed the connection" in str(failed.value)
    assert len(calls) == 3  # the retry policy, not a traceback on the first failure


def test_a_failure_the_database_could_not_take_reads_failed_not_process_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: a run that failed while the database was down stayed "running" in batch_runs
    and `status` later said "process died". The failure is kept in the data folder and
    written by the next run or `status`."""
    from crm_batch.app import runlog
    from crm_batch.app.status import status_report

    settings = folder_settings(demo_folder(tmp_path))
    real_close = runlog.RunRecorder.close

    def database_down(self: runlog.RunRecorder, stage: str, status: str, **kwargs: object):
        if status == runlog.FAILED:  # the outage: the failure cannot be written
            raise OperationalError("update batch_runs", {}, Exception("server closed"))
        return real_close(self, stage, status, **kwargs)

    def workbooks(_context: RunContext) -> StageOutcome:
        raise DependencyError("workbooks: database unavailable: server closed")

    monkeypatch.setattr(runlog.RunRecorder, "close", database_down)
    with pytest.raises(DependencyError):
        run_stages(
            settings,
            "nightly",
            DEMO_DAY,
            [Stage("workbooks", workbooks, retry=False)],
            sleep=lambda _s: None,
        )
    assert (settings.data_dir / runlog.UNRECORDED_FILE_NAME).is_file()
    monkeypatch.setattr(runlog.RunRecorder, "close", real_close)  # the database is back

    report, _healthy = status_report(settings, DEMO_DAY, runs=5)

    assert "process died" not in report
    assert "last nightly run: failed" in report
    assert "workbooks: database unavailable" in report
    assert not (settings.data_dir / runlog.UNRECORDED_FILE_NAME).exists()
