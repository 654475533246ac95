"""Batch runs by business date: a list of stages run under the run lock and recorded.

:func:`run_stages` is the frame every scheduled job shares: take the run lock (file,
then database), close stale runs, record the run and each stage in ``batch_runs``, run
the stages in order (retrying idempotent stages on transient failures) and log what
each did. A stage is a named function of the :class:`RunContext` that returns a
:class:`StageOutcome`.

The nightly run of business date T (:data:`NIGHTLY_STAGES`): ``kpis`` (extraction, data
checks, the quarter-to-date KPIs of the company and every team), ``snapshots`` (T's rows
replaced in one transaction), ``harvest`` (staff inputs of the folder's other
workbooks), ``workbooks`` (each team's workbook harvested, rebuilt and replaced
atomically), ``reports`` (diagnosis PDFs) and ``delivery`` (e-mail, when asked). The
quarterly run of a quarter (:data:`QUARTERLY_STAGES`, business date = its last day):
``reviews`` and ``delivery``. Running a date twice gives the same outputs and sends
nothing twice; a run that dies between stages leaves every previous output as it was
(each is written to a temporary file or in a transaction and then put in place).

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
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_batch.app.dates import default_business_date
from crm_batch.app.locking import Holder, database_lock, file_lock
from crm_batch.app.runlog import (
    close_stale_runs,
    ensure_runs_table,
    local_now,
    open_runs,
    record_run,
)
from crm_batch.config import RetrySettings, Settings
from crm_batch.errors import (
    AlreadyRunningError,
    CompletedWithProblemsError,
    ConfigError,
    OutputError,
)
from crm_batch.jobs.failures import RecentLines, notify_ops
from crm_batch.periods import Period, finished_quarter

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

    from crm_batch.app.kpis import KpiRun
    from crm_batch.app.problems import Problem

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What the stages of one run share: inputs, and results handed to later stages."""

    settings: Settings
    engine: Engine
    business_date: date
    run_id: str
    kind: str
    kpis: KpiRun | None = None  # set by the ``kpis`` stage
    rendered: list[Any] = field(default_factory=list)  # report files, for delivery
    send: bool = False  # e-mail the rendered reports (the delivery stage)
    # rebuild the team workbooks and reports (None: the ``kpis`` stage decides by the
    # backfill rule, :func:`decide_outputs`)
    outputs: bool | None = None
    unharvested: list[Path] = field(default_factory=list)  # set by the ``harvest`` stage
    resend: bool = False  # send again what the ledger records as sent
    dry_run: bool = False  # list what would be sent, send nothing


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


def compute_kpis(context: RunContext) -> StageOutcome:
    """Extract and validate the source data and compute the quarter-to-date KPIs of the
    business date for the company and every team."""
    from crm_batch.app.kpis import run_kpis

    run = run_kpis(context.settings, context.engine, context.business_date, all_teams=True)
    context.kpis = run
    if context.outputs is None:
        context.outputs = decide_outputs(context.engine, context.business_date)
    customers = len(run.reports[None].customers)
    teams = len(run.reports) - 1
    return StageOutcome(
        customers,
        f"{customers:,} customers, {teams} teams, {run.period.label}",
        problems=run.problems,
        notes=tuple(run.notes()),
    )


def store_kpi_snapshots(context: RunContext) -> StageOutcome:
    """Replace the business date's rows in ``kpi_snapshots`` with the computed KPIs."""
    from crm_batch.app.kpis import store_snapshots

    if context.kpis is None:
        raise RuntimeError("the snapshots stage needs the kpis stage before it")
    stored = store_snapshots(context.engine, context.kpis, datetime.now(context.settings.tz))
    scopes = len(context.kpis.reports) - len(stored.problems)
    return StageOutcome(
        stored.rows, f"{stored.rows:,} snapshot rows ({scopes} scopes)", stored.problems
    )


def harvest_workbooks(context: RunContext) -> StageOutcome:
    """Store what staff typed in the other workbooks of the folder (dated copies written
    beside an open workbook, workbooks of teams no longer in the data; read-only,
    idempotent). The current team workbooks are harvested by the ``workbooks`` stage from
    the very bytes it then replaces, so no file is read twice. A workbook that cannot be
    read is left alone and is a problem of its team (named by the file name); it does
    not stop the night."""
    from crm_batch.app.runlog import local_now
    from crm_batch.excel.workbook_files import team_workbook_paths
    from crm_batch.jobs.workbooks import harvest_all

    teams = [team for team in _kpis_of(context, "harvest").reports if team is not None]
    current = team_workbook_paths(context.settings, teams)
    found = harvest_all(
        context.settings, context.engine, local_now(context.settings.tz), skip=current.values()
    )
    context.unharvested = [path for path, _reason in found.failed]
    return StageOutcome(found.inserted, found.summary().splitlines()[-1], found.problems(current))


def refresh_workbooks(context: RunContext) -> StageOutcome:
    """Rebuild every team's workbook from the run's KPIs with the staff inputs merged back
    by customer id, and replace the old one atomically (with a backup). A team whose
    workbook fails or is left alone is a problem; the others are refreshed."""
    from crm_batch.app.runlog import local_now
    from crm_batch.jobs.workbooks import refresh_team_workbooks

    run = _kpis_of(context, "workbooks")
    report = refresh_team_workbooks(
        context.settings,
        context.engine,
        run,
        local_now(context.settings.tz),
        unharvested=context.unharvested,
    )
    return StageOutcome(len(report.teams), report.summary().splitlines()[-1], report.problems)


def write_diagnosis_reports(context: RunContext) -> StageOutcome:
    """Render the diagnosis reports of the business date (company and every team, in
    ``reports.languages`` or each one's configured language), when
    ``reports.nightly_diagnosis`` is on. A report that fails is a problem of its team;
    the others are written (:func:`crm_batch.jobs.scopes.render_each`)."""
    if not context.settings.reports.nightly_diagnosis:
        return StageOutcome(0, "off (reports.nightly_diagnosis = false)")
    from crm_batch.jobs.scopes import render_each
    from crm_batch.reports.diagnosis import write_diagnoses

    run = _kpis_of(context, "reports")
    languages = context.settings.reports.languages or None
    rendered, problems = render_each(
        "diagnosis report",
        list(run.reports),
        lambda scopes: write_diagnoses(context.settings, run, scopes, languages),
    )
    if context.send:  # the mails carry a summary of each report
        from crm_batch.jobs.summaries import diagnosis_files

        context.rendered.extend(diagnosis_files(context.settings, context.engine, run, rendered))
    else:
        context.rendered.extend(rendered)
    return StageOutcome(len(rendered), f"{len(rendered)} diagnosis reports", problems)


def deliver_reports(context: RunContext) -> StageOutcome:
    """E-mail the reports this run rendered to the addresses in the settings (a re-run
    sends nothing twice unless the run asks to resend; a dry run lists the messages);
    on only when the run asks for delivery."""
    if not context.send:
        return StageOutcome(0, "not asked to send")
    from crm_batch.app.ledger import SentLedger
    from crm_batch.delivery import deliver

    report = deliver(
        context.settings,
        SentLedger(context.engine),
        context.rendered,
        resend=context.resend,
        dry_run=context.dry_run,
    )
    if context.dry_run:
        lines = [report.summary(), *(f"    {line}" for line in report.plan_lines())]
        return StageOutcome(0, "\n".join(lines))
    return StageOutcome(len(report.sent), report.summary().splitlines()[0])


def decide_outputs(engine: Engine, business_date: date) -> bool:
    """The backfill rule: a nightly run of a date older than the latest successful nightly
    run computes KPIs and snapshots only, and never replaces the current workbooks and
    reports (nor mails them) with an older day's; the same date or a newer one rebuilds
    them. ``nightly --outputs-to DIR`` rebuilds an old date's outputs in a folder of their
    own."""
    from crm_batch.app.runlog import ok_business_dates

    done = ok_business_dates(engine, "nightly")
    newest = max(done) if done else None
    if newest is not None and business_date < newest:
        log.info(
            "nightly %s: backfill of a date before the latest nightly run (%s): KPIs and "
            "snapshots only; the current workbooks and reports are kept (--outputs-to DIR "
            "rebuilds this date's outputs in a folder of their own)",
            business_date.isoformat(),
            newest.isoformat(),
        )
        return False
    return True


def current_outputs(stage: StageFunction) -> StageFunction:
    """``stage`` when the run rebuilds the team workbooks and reports
    (:attr:`RunContext.outputs`), else a stage that says it kept them."""

    @functools.wraps(stage)
    def run(context: RunContext) -> StageOutcome:
        if context.outputs is False:
            return StageOutcome(None, "kept the current outputs (backfill of an older date)")
        return stage(context)

    return run


def _kpis_of(context: RunContext, stage: str) -> KpiRun:
    if context.kpis is None:
        raise RuntimeError(f"the {stage} stage needs the kpis stage before it")
    return context.kpis


#: For stages that must not run twice (they retry inside, e.g. e-mail delivery).
_NO_RETRY = RetrySettings(attempts=1)

#: The nightly stages, in order.
NIGHTLY_STAGES: tuple[Stage, ...] = (
    Stage("kpis", compute_kpis),
    Stage("snapshots", store_kpi_snapshots),
    Stage("harvest", current_outputs(harvest_workbooks)),
    Stage("workbooks", current_outputs(refresh_workbooks)),
    Stage("reports", current_outputs(write_diagnosis_reports)),
    Stage("delivery", current_outputs(deliver_reports), retry=False),
)


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
        from crm_batch.app.engines import build_engine, check_connection

        engine = build_engine(settings)
        stack.callback(engine.dispose)
        day = business_date.isoformat()
        call_with_retries(
            lambda: check_connection(engine),
            settings.retry,
            what=f"{kind} {day}: database",
            sleep=sleep,
        )
        try:
            locked_database = stack.enter_context(database_lock(engine))
        except AlreadyRunningError as exc:
            others = "; ".join(run.describe() for run in open_runs(engine))
            raise AlreadyRunningError(
                f"{exc} (running: {others})" if others else str(exc)
            ) from None
        ensure_runs_table(engine)
        close_stale_runs(engine, tz, all_others=bool(locked_database))
        recorder = stack.enter_context(record_run(engine, tz, kind, business_date, run_id))
        log.info("%s %s: run %s started", kind, business_date.isoformat(), run_id[:8])
        context = RunContext(
            settings, engine, business_date, run_id, kind, outputs=outputs, **delivery
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


def run_nightly(
    settings: Settings,
    as_of: date,
    *,
    resend: bool = False,
    dry_run: bool = False,
    stages: Sequence[Stage] = NIGHTLY_STAGES,
    outputs: bool | None = None,
    outputs_to: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """The nightly run of business date ``as_of`` (see the module docstring); it mails
    the diagnosis reports when ``email.enabled`` and ``email.nightly_diagnosis`` are on
    (``resend``: again, even those already sent; ``dry_run``: list them, send nothing).

    ``outputs``: rebuild the team workbooks and reports (True), keep them (False: KPIs
    and snapshots only, e.g. the earlier dates of a catch-up), or decide by the backfill
    rule (None, :func:`decide_outputs`). ``outputs_to``: rebuild this date's workbooks
    and reports in ``<outputs_to>/workbooks`` and ``<outputs_to>/reports`` instead of the
    configured folders, never mailing them (an old date's outputs, for a look back).
    """
    send = settings.email.enabled and settings.email.nightly_diagnosis
    if (resend or dry_run) and not send:
        raise ConfigError(
            "--resend and --dry-run are about the nightly e-mail: set email.enabled and "
            "email.nightly_diagnosis to true"
        )
    if outputs_to is not None:
        folder = outputs_to.resolve()
        if folder in (settings.workbooks_dir.resolve(), settings.reports_dir.resolve()):
            raise ConfigError(
                f"--outputs-to {outputs_to}: choose a folder other than the configured "
                "workbooks and reports folders"
            )
        settings = settings.model_copy(
            update={"workbooks_dir": folder / "workbooks", "reports_dir": folder / "reports"}
        )
        send, outputs = False, True
    return run_stages(
        settings,
        "nightly",
        as_of,
        stages,
        send=send,
        resend=resend,
        dry_run=dry_run,
        outputs=outputs,
        sleep=sleep,
    )


def run_catch_up(
    settings: Settings,
    dates: Sequence[date],
    *,
    show: Callable[[str], object],
    resend: bool = False,
    dry_run: bool = False,
) -> list[RunResult]:
    """The nightly runs of ``dates`` (oldest first), as a catch-up: every date's KPIs and
    snapshots, but the team workbooks and reports only once, for the last date, so a
    long catch-up neither rebuilds every workbook once per missed night nor pushes the
    useful backups out. ``show`` gets each run's summary; the first failure stops the
    catch-up (its exception, and exit code, are the caller's). ``resend`` and ``dry_run``
    as for :func:`run_nightly`."""
    results = []
    for index, day in enumerate(dates):
        last = index == len(dates) - 1
        outputs = None if last else False
        result = run_nightly(settings, day, outputs=outputs, resend=resend, dry_run=dry_run)
        show(result.summary())
        results.append(result)
    return results


def write_reviews(
    context: RunContext,
    teams: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
) -> StageOutcome:
    """Render the quarterly reviews of the quarter that ends on the business date: the
    company's and each team's (or only ``teams``'), in ``languages``, else
    ``reports.languages``, else each one's configured language. The quarter's data is
    gathered once for every review (:func:`crm_batch.app.quarter.gather_quarter`). A
    review that fails is a problem of its team; the others are written
    (:func:`crm_batch.jobs.scopes.render_each`)."""
    from crm_batch.app.quarter import gather_quarter
    from crm_batch.jobs.scopes import render_each
    from crm_batch.periods import period_containing
    from crm_batch.reports.quarterly import write_quarterly_reviews

    settings = context.settings
    quarter = period_containing(context.business_date, "quarter")
    # the company review's team table needs every team; a team review only its own
    data = gather_quarter(settings, context.engine, quarter, list(teams) if teams else None)
    chosen_languages = languages or settings.reports.languages or None
    scopes: list[str | None] = list(teams) if teams else [None, *data.teams()]
    rendered, problems = render_each(
        "quarterly review",
        scopes,
        lambda some: write_quarterly_reviews(settings, data, some, chosen_languages),
    )
    if context.send:  # the mails carry a summary of each review
        from crm_batch.jobs.summaries import review_files

        context.rendered.extend(review_files(settings, data, rendered))
    else:
        context.rendered.extend(rendered)
    return StageOutcome(len(rendered), f"{len(rendered)} reviews of {quarter.label}", problems)


#: The quarterly stages, in order.
QUARTERLY_STAGES: tuple[Stage, ...] = (
    Stage("reviews", write_reviews),
    Stage("delivery", deliver_reports, retry=False),
)


def run_quarterly(
    settings: Settings,
    quarter: Period,
    *,
    send: bool = False,
    resend: bool = False,
    dry_run: bool = False,
    stages: Sequence[Stage] = QUARTERLY_STAGES,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """The quarterly run of ``quarter`` (its business date is the quarter's last day);
    ``send`` mails the reviews (to the addresses in ``[email]``, never twice unless
    ``resend``; ``dry_run`` lists the messages and sends nothing).

    Raises :class:`ConfigError` before anything runs unless ``quarter`` is a quarter that
    ended by the default business date (:func:`crm_batch.periods.finished_quarter`).
    """
    try:
        finished_quarter(quarter, default_business_date(settings))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return run_stages(
        settings,
        "quarterly",
        quarter.end,
        stages,
        send=send or resend or dry_run,
        resend=resend,
        dry_run=dry_run,
        sleep=sleep,
    )


def quarterly_stages(
    teams: Sequence[str] | None = None, languages: Sequence[str] | None = None
) -> tuple[Stage, ...]:
    """:data:`QUARTERLY_STAGES` with the reviews limited to ``teams`` / ``languages``."""
    reviews = functools.partial(write_reviews, teams=teams, languages=languages)
    return (Stage("reviews", reviews), *QUARTERLY_STAGES[1:])
