"""The run log: every batch run and each of its stages as rows of ``batch_runs``.

A run writes its ``'run'`` row when it starts (status ``running``) and one row per stage
as the stage starts; each row is closed with ``ok``, ``problems`` (it finished, but some
team's output failed: the ``error`` column holds one line per problem, see
:mod:`crm_batch.app.problems`) or ``failed`` (and the error, secrets masked) when it
ends. A stage's notes (lines worth knowing that need no action) are kept in its
``error`` column too, each starting with ``note:``, on an ``ok`` row. Every write is
its own short transaction, so ``status`` sees a run while it is in progress. Times are
naive local times in the configured timezone.

A process killed with ``kill -9`` cannot close its rows. Such a stale ``running`` row is
recognised by its host and pid: on this host, a pid that no longer exists (or now
belongs to a process started after the run) means the run died. :func:`close_stale_runs`
closes those rows as ``failed`` with "process died"; a run that holds the database lock
may also close every other open row, since no other run can be in progress.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
from sqlalchemy import Engine, Table, and_, inspect, select, update
from sqlalchemy.exc import SQLAlchemyError

from crm_batch.app.engines import open_state
from crm_batch.config import Settings
from crm_batch.logs import mask_secrets
from crm_batch.schema import build_metadata
from crm_batch.source.conform import as_date

log = logging.getLogger(__name__)

#: The stage name of the row that stands for the whole run.
RUN_STAGE = "run"
RUNNING, OK, PROBLEMS, FAILED = "running", "ok", "problems", "failed"
#: Statuses of a run that finished (a run with problems is not run again by catch-up).
COMPLETED = (OK, PROBLEMS)
#: How a note starts in the ``error`` column of an ok stage.
NOTE_PREFIX = "note: "
PROCESS_DIED = "process died"
#: Failures the database could not take, kept in the data folder (:func:`keep_unrecorded`).
UNRECORDED_FILE_NAME = "crm-batch.unrecorded.jsonl"
#: Longest error text stored (the column is long text; a traceback does not belong there).
MAX_ERROR_CHARS = 2000
#: A process created up to this long after its run's recorded start is still that run
#: (timestamps are stored to the second on MariaDB).
_START_TOLERANCE_SECONDS = 2.0


def runs_table() -> Table:
    """The ``batch_runs`` table (schema in :mod:`crm_batch.schema`)."""
    return build_metadata().tables["batch_runs"]


def ensure_runs_table(engine: Engine) -> None:
    """Create ``batch_runs`` if it does not exist yet."""
    runs_table().create(engine, checkfirst=True)


def local_now(tz: ZoneInfo) -> datetime:
    """The current wall time in ``tz`` without tzinfo (how ``*_at`` columns are stored)."""
    return datetime.now(tz).replace(tzinfo=None)


def error_text(exc: BaseException) -> str:
    """A one-paragraph error for the log table: the message (type for non-crm errors),
    passwords masked, capped in length."""
    from crm_batch.errors import CrmBatchError

    message = str(exc).strip()
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    elif not isinstance(exc, CrmBatchError):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return mask_secrets(message)[:MAX_ERROR_CHARS]


@dataclass
class StageRecord:
    """What a stage reports back to the run log (set ``rows``, ``problems`` and ``notes``
    inside the stage)."""

    name: str
    rows: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str | None:
        """The ``error`` column of a stage that finished: its problems, then its notes."""
        lines = [*self.problems, *(NOTE_PREFIX + note for note in self.notes)]
        return mask_secrets("\n".join(lines))[:MAX_ERROR_CHARS] if lines else None


@dataclass
class RunRecorder:
    """Writes one run's rows; create it with :func:`record_run`."""

    engine: Engine
    tz: ZoneInfo
    kind: str
    business_date: date
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    problems: list[str] = field(default_factory=list)  # of every stage so far
    # where a failure is kept when the database cannot take it (:func:`apply_unrecorded`)
    data_dir: Path | None = None

    def insert(self, stage: str) -> None:
        """Record ``stage`` (or :data:`RUN_STAGE`) as running from now."""
        table = runs_table()
        with self.engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    run_id=self.run_id,
                    stage=stage,
                    business_date=self.business_date,
                    kind=self.kind,
                    status=RUNNING,
                    started_at=local_now(self.tz),
                    host=self.host[:255],
                    pid=self.pid,
                )
            )

    def close(
        self, stage: str, status: str, *, rows: int | None = None, error: str | None = None
    ) -> None:
        """Mark ``stage`` finished now with ``status``, its row count and error text."""
        table = runs_table()
        with self.engine.begin() as conn:
            conn.execute(
                update(table)
                .where(and_(table.c.run_id == self.run_id, table.c.stage == stage))
                .values(status=status, finished_at=local_now(self.tz), rows=rows, error=error)
            )

    def close_quietly(self, stage: str, exc: BaseException) -> None:
        """Mark ``stage`` failed with ``exc``; a failure to write is logged, not raised,
        so the original error is the one the caller sees."""
        error = error_text(exc)
        try:
            self.close(stage, FAILED, error=error)
        except SQLAlchemyError as write_error:
            log.warning(
                "could not record the failure of %s in batch_runs: %s%s",
                stage,
                mask_secrets(str(write_error).splitlines()[0] if str(write_error) else ""),
                "; kept in the data folder for the next run" if self.data_dir else "",
            )
            if self.data_dir is not None:
                keep_unrecorded(self.data_dir, self.run_id, stage, local_now(self.tz), error)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        """Record a stage around the ``with`` block: ok (or problems) at its end, failed
        (with the error) when it raises; the exception propagates."""
        record = StageRecord(name)
        self.insert(name)
        try:
            yield record
        except BaseException as exc:
            self.close_quietly(name, exc)
            raise
        status = PROBLEMS if record.problems else OK
        self.close(name, status, rows=record.rows, error=record.text())
        self.problems.extend(record.problems)


@contextlib.contextmanager
def record_run(
    engine: Engine,
    tz: ZoneInfo,
    kind: str,
    business_date: date,
    run_id: str | None = None,
    *,
    data_dir: Path | None = None,
) -> Iterator[RunRecorder]:
    """Record a whole run around the ``with`` block (the ``'run'`` row).

    The run is ok when the block ends normally (``problems``, listing them, when a stage
    had problems) and failed with the error when it raises (the exception propagates).
    Creates ``batch_runs`` if it is missing. ``run_id`` defaults to a new uuid4.
    ``data_dir``: where a failure is kept when the database cannot take it
    (:func:`keep_unrecorded`).
    """
    ensure_runs_table(engine)
    recorder = RunRecorder(engine, tz, kind, business_date, data_dir=data_dir)
    if run_id is not None:
        recorder.run_id = run_id
    recorder.insert(RUN_STAGE)
    try:
        yield recorder
    except BaseException as exc:
        recorder.close_quietly(RUN_STAGE, exc)
        raise
    if recorder.problems:
        text = mask_secrets("\n".join(recorder.problems))[:MAX_ERROR_CHARS]
        recorder.close(RUN_STAGE, PROBLEMS, error=text)
    else:
        recorder.close(RUN_STAGE, OK)


def process_alive(pid: int, started_at: datetime | None, tz: ZoneInfo) -> bool:
    """Whether process ``pid`` on this host exists and is plausibly the one that started
    a run at ``started_at`` (naive local time in ``tz``): a process created after that
    is a reused pid, not the run."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped by its parent
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:  # exists, owned by someone else: assume it is the run
        return True
    if started_at is None:
        return True
    started = started_at.replace(tzinfo=tz).timestamp()
    return created <= started + _START_TOLERANCE_SECONDS


@dataclass(frozen=True)
class OpenRun:
    """A ``'run'`` row still marked running."""

    run_id: str
    kind: str
    business_date: date
    started_at: datetime
    host: str | None
    pid: int | None

    def describe(self) -> str:
        """E.g. ``nightly 2026-06-30, pid 4242 on host ops1, started 2026-07-01 02:30:00``."""
        return (
            f"{self.kind} {self.business_date.isoformat()}, pid {self.pid} on host "
            f"{self.host}, started {self.started_at:%Y-%m-%d %H:%M:%S}"
        )


def open_runs(engine: Engine) -> list[OpenRun]:
    """Runs recorded as running, oldest first (empty when ``batch_runs`` is missing)."""
    if not inspect(engine).has_table("batch_runs"):
        return []
    table = runs_table()
    query = (
        select(
            table.c.run_id,
            table.c.kind,
            table.c.business_date,
            table.c.started_at,
            table.c.host,
            table.c.pid,
        )
        .where(and_(table.c.stage == RUN_STAGE, table.c.status == RUNNING))
        .order_by(table.c.started_at)
    )
    with engine.connect() as conn:
        return [OpenRun(*row) for row in conn.execute(query).all()]


def stale_runs(
    engine: Engine, tz: ZoneInfo, *, all_others: bool = False, host: str | None = None
) -> list[OpenRun]:
    """Open runs whose process is gone: same host and pid not alive.

    ``all_others``: every open run of another process counts as stale; only a caller
    holding the database lock may say so (no other run can be in progress).
    """
    here = host or socket.gethostname()
    stale = []
    for run in open_runs(engine):
        if run.host == here and run.pid == os.getpid():
            continue
        gone = run.host == here and (
            run.pid is None or not process_alive(run.pid, run.started_at, tz)
        )
        if gone or all_others:
            stale.append(run)
    return stale


def close_runs(engine: Engine, tz: ZoneInfo, runs: list[OpenRun], reason: str) -> None:
    """Mark ``runs`` and their unfinished stages failed with ``reason``."""
    if not runs:
        return
    table = runs_table()
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(and_(table.c.run_id.in_([r.run_id for r in runs]), table.c.status == RUNNING))
            .values(status=FAILED, finished_at=local_now(tz), error=reason)
        )
    for run in runs:
        log.warning("closed stale run %s (%s): %s", run.run_id[:8], run.describe(), reason)


def keep_unrecorded(
    data_dir: Path, run_id: str, stage: str, finished_at: datetime, error: str
) -> None:
    """Keep a failure the database could not take (it was down when the run failed) in
    ``<data_dir>/crm-batch.unrecorded.jsonl``, for :func:`apply_unrecorded`. Never raises:
    the run's own error is the one to report."""
    line = {
        "run_id": run_id,
        "stage": stage,
        "finished_at": finished_at.isoformat(),
        "error": error,
    }
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with (data_dir / UNRECORDED_FILE_NAME).open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(line, ensure_ascii=False) + "\n")
    except OSError as exc:
        log.warning("could not keep the unrecorded failure in %s: %s", data_dir, exc)


def apply_unrecorded(engine: Engine, data_dir: Path) -> int:
    """Write the failures :func:`keep_unrecorded` kept into ``batch_runs`` (rows still
    "running" only) and forget them; rows updated. A run that failed while the database
    was down then reads "failed" with its error, not "process died". The file stays when
    the database cannot take it yet."""
    path = data_dir / UNRECORDED_FILE_NAME
    if not path.is_file():
        return 0
    entries = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(text))
        except ValueError:
            log.warning("%s: a line that is not JSON is skipped", path)
    table = runs_table()
    updated = 0
    with engine.begin() as conn:
        for entry in entries:
            result = conn.execute(
                update(table)
                .where(
                    and_(
                        table.c.run_id == entry["run_id"],
                        table.c.stage == entry["stage"],
                        table.c.status == RUNNING,
                    )
                )
                .values(
                    status=FAILED,
                    finished_at=datetime.fromisoformat(entry["finished_at"]),
                    error=entry["error"],
                )
            )
            updated += result.rowcount or 0
    path.unlink(missing_ok=True)
    return updated


def close_stale_runs(
    engine: Engine, tz: ZoneInfo, *, all_others: bool = False, data_dir: Path | None = None
) -> list[OpenRun]:
    """Find stale runs (see :func:`stale_runs`), close them as "process died"; return them.

    Failures kept in ``data_dir`` while the database was down are written first
    (:func:`apply_unrecorded`), so those runs read "failed" with their error.
    """
    if data_dir is not None:
        apply_unrecorded(engine, data_dir)
    runs = stale_runs(engine, tz, all_others=all_others)
    close_runs(engine, tz, runs, PROCESS_DIED)
    return runs


def ok_business_dates(engine: Engine, kind: str) -> set[date]:
    """Business dates with a completed run of ``kind``, with or without problems (empty
    when nothing is recorded)."""
    if not inspect(engine).has_table("batch_runs"):
        return set()
    table = runs_table()
    query = (
        select(table.c.business_date)
        .where(
            and_(
                table.c.stage == RUN_STAGE,
                table.c.kind == kind,
                table.c.status.in_(COMPLETED),
            )
        )
        .distinct()
    )
    with engine.connect() as conn:
        return {as_date(value) for (value,) in conn.execute(query).all()}


def completed_dates(settings: Settings, kind: str) -> set[date]:
    """:func:`ok_business_dates` on a short-lived connection of its own (DuckDB admits
    one process at a time, so a waiting scheduler must not hold one open)."""
    with open_state(settings) as engine:
        return ok_business_dates(engine, kind)
