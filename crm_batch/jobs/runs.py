"""The run frame every scheduled job shares: a list of stages run under the run lock and
recorded.

:func:`run_stages` opens the source and the state database
(:func:`crm_batch.app.engines.build_databases`: one engine when the state is kept in the
source), takes the run lock (file, then the state database's), closes stale runs, records
the run and each stage in ``batch_runs`` (state), runs the stages in order (retrying idempotent
stages on transient failures, checking the database lock before each) and logs what each
did. A stage is a named function of the :class:`RunContext` that returns a
:class:`StageOutcome`; the stages of the nightly and quarterly runs are in
:mod:`crm_batch.jobs.stages`.

A team's failure is that team's failure: the per-team parts of the stages (a team's
KPIs, snapshot, workbook, report, and the workbook files the harvest cannot read) fail
alone, as :class:`~crm_batch.app.problems.Problem` lines of their stage's outcome, and
every other team gets its outputs. Such a run *completes with problems*: recorded as
``problems`` in ``batch_runs``, shown by ``status``, and the CLI exits 8
(:meth:`RunResult.raise_for_problems`).

Heavy modules (pandas, the KPI engine, database drivers) are imported only after the
file lock is taken, so a refused second run exits within a fraction of a second. A run
that fails (anything but "already running") sends one notice to
``email.ops_recipients`` (:mod:`crm_batch.jobs.failures`) before its error propagates.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_batch.app.locking import Holder, database_lock, file_lock
from crm_batch.app.runlog import (
    close_stale_runs,
    ensure_runs_table,
    local_now,
    open_runs,
    record_run,
)
from crm_batch.app.state_copy import history_left_behind
from crm_batch.config import RetrySettings, Settings
from crm_batch.errors import AlreadyRunningError, CompletedWithProblemsError, OutputError
from crm_batch.jobs.failures import RecentLines, notify_ops

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crm_batch.app.engines import Databases
    from crm_batch.app.kpis import KpiRun
    from crm_batch.app.problems import Problem

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What the stages of one run share: inputs, and results handed to later stages.

    ``source`` is read (extraction, KPI queries, data checks); ``state`` is where the run
    writes (snapshots, follow-ups, deliveries, the run log): the same engine when the
    state is kept in the source."""

    settings: Settings
    source: Engine
    state: Engine
    business_date: date
    run_id: str
    kind: str
    kpis: KpiRun | None = None  # set by the ``kpis`` stage
    rendered: list[Any] = field(default_factory=list)  # report files, for delivery
    send: bool = False  # e-mail the rendered reports (the delivery stage)
    # rebuild the team workbooks and reports (None: the ``kpis`` stage decides by the
    # backfill rule, :func:`crm_batch.jobs.stages.decide_outputs`)
    outputs: bool | None = None
    unharvested: list[Path] = field(default_factory=list)  # set by the ``harvest`` stage
    resend: bool = False  # send again what the ledger records as sent
    dry_run: bool = False  # list what would be sent, send nothing

    @property
    def databases(self) -> Databases:
        """Both engines, for services that read the source and the state."""
        from crm_batch.app.engines import Databases

        return Databases(self.source, self.state)


@dataclass(frozen=True)
class StageOutcome:
    """What a stage did: a row count for ``batch_runs``, a phrase for the log, the
    teams it failed (``problems``) and lines worth knowing (``notes``)."""

    rows: int | None
    summary: str
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()


StageFunction = Callable[[RunContext], StageOutcome]


@dataclass(frozen=True)
class Stage:
    """A named step of a run.

    ``retry``: the stage is idempotent, so a transient failure (database restarting,
    connection dropped) runs it again under the ``retry`` settings.
    """

    name: str
    run: StageFunction
    retry: bool = True


@dataclass(frozen=True)
class StageResult:
    """A finished stage: its outcome and how long it took."""

    name: str
    rows: int | None
    summary: str
    seconds: float
    problems: tuple[str, ...] = ()  # one line per problem (Problem.line)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    """A finished run: ok, or completed with problems (:attr:`problems`)."""

    run_id: str
    kind: str
    business_date: date
    stages: tuple[StageResult, ...]
    seconds: float

    @property
    def problems(self) -> tuple[str, ...]:
        """Every stage's problem lines, in stage order."""
        return tuple(line for stage in self.stages for line in stage.problems)

    def summary(self) -> str:
        """One line per stage under a headline, then the problems and notes, for people."""
        verdict = f"completed with {len(self.problems)} problem(s)" if self.problems else "ok"
        lines = [
            f"{self.kind} {self.business_date.isoformat()}: {verdict} in {self.seconds:.1f}s "
            f"(run {self.run_id[:8]})"
        ]
        lines += [f"  {s.name:<10} {s.summary} ({s.seconds:.1f}s)" for s in self.stages]
        lines += [f"PROBLEM: {line}" for line in self.problems]
        lines += [f"note: {line}" for stage in self.stages for line in stage.notes]
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        """Raise :class:`CompletedWithProblemsError` (exit 8) if the run had problems."""
        if self.problems:
            raise CompletedWithProblemsError(
                f"{self.kind} {self.business_date.isoformat()} completed with "
                f"{len(self.problems)} problem(s); the other teams got their outputs. "
                f"First: {self.problems[0]} (`status` lists them all)"
            )


#: For stages that must not run twice (they retry inside, e.g. e-mail delivery).
_NO_RETRY = RetrySettings(attempts=1)


def run_stages(
    settings: Settings,
    kind: str,
    business_date: date,
    stages: Sequence[Stage],
    *,
    send: bool = False,
    outputs: bool | None = None,
    resend: bool = False,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """Run ``stages`` in order as one recorded run of ``kind`` for ``business_date``
    (``outputs``: :attr:`RunContext.outputs`).

    Raises :class:`AlreadyRunningError` (before doing anything) when another run holds
    the file or the database lock. Transient failures of the first connection and of
    retryable stages are retried (:mod:`crm_batch.retry`, waiting with ``sleep``); a
    stage's final exception marks the stage and the run failed in ``batch_runs``, sends
    the failure notice to ``email.ops_recipients`` and propagates. ``send``, ``resend``
    and ``dry_run`` are for the delivery stage (:class:`RunContext`).
    """
    recent = RecentLines()
    package_log = logging.getLogger("crm_batch")
    package_log.addHandler(recent)
    run_id = str(uuid.uuid4())
    where = ["start"]  # the stage in progress, for the failure notice
    try:
        result = _run(
            settings, kind, business_date, stages, run_id, where, sleep=sleep,
            outputs=outputs, send=send, resend=resend, dry_run=dry_run,
        )  # fmt: skip
        if result.problems:  # ops hear of a run that completed with problems too
            try:
                result.raise_for_problems()
            except CompletedWithProblemsError as problems:
                notify_ops(
                    settings,
                    kind=kind,
                    business_date=business_date,
                    run_id=run_id,
                    stage="(completed with problems)",
                    error=problems,
                    log_lines=[*result.problems, *recent.lines()],
                )
        return result
    except AlreadyRunningError:
        raise
    except Exception as exc:
        package_log.removeHandler(recent)
        notify_ops(
            settings,
            kind=kind,
            business_date=business_date,
            run_id=run_id,
            stage=where[0],
            error=exc,
            log_lines=recent.lines(),
        )
        raise
    finally:
        package_log.removeHandler(recent)


def _run(
    settings: Settings,
    kind: str,
    business_date: date,
    stages: Sequence[Stage],
    run_id: str,
    where: list[str],
    *,
    sleep: Callable[[float], None],
    outputs: bool | None,
    **delivery: bool,
) -> RunResult:
    """:func:`run_stages` without the failure notice; ``where[0]`` follows the stages."""
    from crm_batch.retry import call_with_retries

    tz = settings.tz
    holder = Holder.this_process(
        kind, business_date.isoformat(), local_now(tz).isoformat(timespec="seconds"), run_id
    )
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.enter_context(file_lock(settings.data_dir, holder))
        day = business_date.isoformat()
        databases = _open_databases(settings, f"{kind} {day}", sleep)
        stack.callback(databases.dispose)
        engine = databases.state
        try:
            locked_database = stack.enter_context(database_lock(engine))
        except AlreadyRunningError as exc:
            others = "; ".join(run.describe() for run in open_runs(engine))
            raise AlreadyRunningError(
                f"{exc} (running: {others})" if others else str(exc)
            ) from None
        ensure_runs_table(engine)
        close_stale_runs(engine, tz, all_others=bool(locked_database), data_dir=settings.data_dir)
        recorder = stack.enter_context(
            record_run(engine, tz, kind, business_date, run_id, data_dir=settings.data_dir)
        )
        log.info("%s %s: run %s started", kind, business_date.isoformat(), run_id[:8])
        left_behind = history_left_behind(databases)
        if left_behind is not None:
            log.warning("%s %s: %s", kind, day, left_behind)
        context = RunContext(
            settings,
            databases.source,
            databases.state,
            business_date,
            run_id,
            kind,
            outputs=outputs,
            **delivery,
        )
        results = []
        for stage in stages:
            where[0] = stage.name
            stage_started = time.perf_counter()
            label = f"{kind} {day}: {stage.name}"
            try:
                # a safe point: the lock is still ours (a restart may have ended it)
                call_with_retries(
                    lambda label=label: locked_database.ensure_held(label),
                    settings.retry,
                    what=f"{label}: database lock",
                    sleep=sleep,
                )
                with recorder.stage(stage.name) as record:
                    outcome = call_with_retries(
                        lambda stage=stage, label=label: _run_stage(stage, context, label),
                        settings.retry if stage.retry else _NO_RETRY,
                        what=label,
                        sleep=sleep,
                    )
                    record.rows = outcome.rows
                    record.problems = [problem.line() for problem in outcome.problems]
                    record.notes = list(outcome.notes)
            except BaseException:
                log.error("%s %s: stage %s failed", kind, business_date.isoformat(), stage.name)
                raise
            seconds = time.perf_counter() - stage_started
            log.info(
                "%s %s: %s: %s in %.1fs", kind, business_date, stage.name, outcome.summary, seconds
            )
            results.append(
                StageResult(
                    stage.name,
                    outcome.rows,
                    outcome.summary,
                    seconds,
                    tuple(problem.line() for problem in outcome.problems),
                    outcome.notes,
                )
            )
    result = RunResult(run_id, kind, business_date, tuple(results), time.perf_counter() - started)
    if result.problems:
        log.warning(
            "%s %s: completed with %d problem(s) in %.1fs (the other teams got their outputs)",
            kind,
            business_date.isoformat(),
            len(result.problems),
            result.seconds,
        )
    else:
        log.info("%s %s: ok in %.1fs", kind, business_date.isoformat(), result.seconds)
    return result


def _open_databases(settings: Settings, what: str, sleep: Callable[[float], None]) -> Databases:
    """The run's engines, each database answering (transient failures retried); a
    failure names the database ("state database: cannot connect to ...") when the two
    differ. The state is checked first: the run log and the lock live there."""
    from crm_batch.app.engines import SOURCE, STATE, build_databases, check_connection
    from crm_batch.errors import DependencyError
    from crm_batch.retry import call_with_retries
    from crm_batch.urls import safe_url

    databases = call_with_retries(
        lambda: build_databases(settings), settings.retry, what=f"{what}: database", sleep=sleep
    )
    try:
        checks = [(databases.state, "database")]
        if not databases.shared:
            checks = [(databases.state, STATE), (databases.source, SOURCE)]
            why = databases.choice.why if databases.choice is not None else "state.url"
            log.info("%s: state database %s (%s)", what, safe_url(databases.state.url), why)
        for engine, name in checks:

            def check(engine: Engine = engine, name: str = name) -> None:
                try:
                    check_connection(engine)
                except DependencyError as exc:
                    if name == "database":
                        raise
                    raise type(exc)(f"{name}: {exc}") from None

            call_with_retries(check, settings.retry, what=f"{what}: {name}", sleep=sleep)
    except BaseException:
        databases.dispose()
        raise
    return databases


def _run_stage(stage: Stage, context: RunContext, where: str) -> StageOutcome:
    """Run one stage; a database that went away mid-stage becomes a
    :class:`~crm_batch.errors.DependencyError` (retried, exit code 5) and a file that
    cannot be written an :class:`~crm_batch.errors.OutputError` (exit code 3) naming it,
    never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from crm_batch.app.engines import database_failure

    try:
        return stage.run(context)
    except SQLAlchemyError as exc:
        failure = database_failure(exc, where)
        if failure is None:
            raise
        raise failure from exc
    except OSError as exc:
        if exc.filename is None:  # a socket or process error, not a file: as it is
            raise
        raise OutputError(
            f"{where}: cannot write {exc.filename}: {exc.strerror or exc}. Check that "
            "paths.workbooks_dir and paths.reports_dir are folders this user may write, "
            "and that the disk has room"
        ) from exc
