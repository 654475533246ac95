"""The stages of the nightly and quarterly runs, run by :func:`crm_batch.jobs.runs.run_stages`.

The nightly run of business date T (:data:`NIGHTLY_STAGES`): ``kpis`` (extraction, data
checks, the quarter-to-date KPIs of the company and every team), ``snapshots`` (T's rows
replaced in one transaction), ``harvest`` (staff inputs of the folder's other
workbooks), ``workbooks`` (each team's workbook harvested, rebuilt and replaced
atomically), ``reports`` (diagnosis PDFs), ``callsheets`` (a PDF per sales rep, when
``reports.per_owner`` is on), ``prune`` (nightly reports older than
``reports.keep_days`` removed) and ``delivery`` (e-mail, when asked). The
quarterly run of a quarter (:data:`QUARTERLY_STAGES`, business date = its last day):
``reviews`` and ``delivery``. Running a date twice gives the same outputs and sends
nothing twice; a run that dies between stages leaves every previous output as it was
(each is written to a temporary file or in a transaction and then put in place). The
output stages of a nightly run keep the current outputs for a backfill of an older date
(:func:`decide_outputs`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from crm_batch.app.runlog import local_now
from crm_batch.jobs.runs import RunContext, Stage, StageFunction, StageOutcome

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crm_batch.app.kpis import KpiRun

log = logging.getLogger(__name__)


def compute_kpis(context: RunContext) -> StageOutcome:
    """Extract and validate the source data and compute the quarter-to-date KPIs of the
    business date for the company and every team."""
    from crm_batch.app.kpis import run_kpis

    run = run_kpis(
        context.settings,
        context.source,
        context.business_date,
        all_teams=True,
        state=context.state,
    )
    context.kpis = run
    if context.outputs is None:
        context.outputs = decide_outputs(context.state, context.business_date)
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
    stored = store_snapshots(context.state, context.kpis, datetime.now(context.settings.tz))
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
    from crm_batch.excel.workbook_files import team_workbook_paths
    from crm_batch.jobs.workbooks import harvest_all

    teams = [team for team in _kpis_of(context, "harvest").reports if team is not None]
    current = team_workbook_paths(context.settings, teams)
    found = harvest_all(
        context.settings, context.state, local_now(context.settings.tz), skip=current.values()
    )
    context.unharvested = [path for path, _reason in found.failed]
    return StageOutcome(found.inserted, found.summary().splitlines()[-1], found.problems(current))


def refresh_workbooks(context: RunContext) -> StageOutcome:
    """Rebuild every team's workbook from the run's KPIs with the staff inputs merged back
    by customer id, and replace the old one atomically (with a backup). A team whose
    workbook fails or is left alone is a problem; the others are refreshed."""
    from crm_batch.jobs.workbooks import refresh_team_workbooks

    run = _kpis_of(context, "workbooks")
    report = refresh_team_workbooks(
        context.settings,
        context.state,
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
    from crm_batch.app.report_extras import diagnosis_extras
    from crm_batch.jobs.scopes import render_each
    from crm_batch.reports.diagnosis import write_diagnoses

    run = _kpis_of(context, "reports")
    languages = context.settings.reports.languages or None
    extras = diagnosis_extras(context.settings, context.databases, run)
    rendered, problems = render_each(
        "diagnosis report",
        list(run.reports),
        lambda scopes: write_diagnoses(context.settings, run, scopes, languages, extras=extras),
    )
    if context.send:  # the mails carry a summary of each report
        from crm_batch.jobs.summaries import diagnosis_files

        context.rendered.extend(diagnosis_files(context.settings, context.state, run, rendered))
    else:
        context.rendered.extend(rendered)
    return StageOutcome(len(rendered), f"{len(rendered)} diagnosis reports", problems)


def write_call_sheets(context: RunContext) -> StageOutcome:
    """Render a call sheet for every account owner of every team (their customers to
    call, care calendar and follow-ups due, in the team's language;
    :mod:`crm_batch.reports.callsheets`), when ``reports.per_owner`` is on. The
    follow-ups are read after the ``workbooks`` stage stored what staff typed. A sheet
    that fails is a problem of its team naming the owner; the others are written
    (:func:`crm_batch.jobs.scopes.render_each_owner`). Sheets are not mailed."""
    settings = context.settings
    if not settings.reports.per_owner:
        return StageOutcome(0, "off (reports.per_owner = false)")
    from crm_batch.app.followups import latest_followups
    from crm_batch.jobs.scopes import render_each_owner
    from crm_batch.reports import callsheets

    run = _kpis_of(context, "callsheets")
    units = callsheets.sheet_units(run.reports)
    language_of = {team: settings.language_of(team) for team, _owner in units}
    paths = callsheets.sheet_paths(settings, units, run.as_of.isoformat(), language_of)
    followups = latest_followups(context.databases.state)
    rendered, problems = render_each_owner(
        "call sheet",
        units,
        lambda some: callsheets.write_call_sheets(
            settings, run.reports, some, followups, paths, language_of
        ),
    )
    teams = len({sheet.team for sheet in rendered})
    return StageOutcome(len(rendered), f"{len(rendered)} call sheets of {teams} teams", problems)


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
        SentLedger(context.state),
        context.rendered,
        resend=context.resend,
        dry_run=context.dry_run,
    )
    if context.dry_run:
        lines = [report.summary(), *(f"    {line}" for line in report.plan_lines())]
        return StageOutcome(0, "\n".join(lines))
    return StageOutcome(len(report.sent), report.summary().splitlines()[0])


def prune_old_reports(context: RunContext) -> StageOutcome:
    """Remove the nightly reports (diagnosis, call sheets) of business dates
    ``reports.keep_days`` or more days before this run's from ``paths.reports_dir``,
    after this run wrote its own, so a run that failed earlier removes nothing. A file
    that cannot be removed is a note, not a failure (:mod:`crm_batch.reports.retention`).
    """
    from crm_batch.reports.retention import prune_nightly_reports

    keep_days = context.settings.reports.keep_days
    if keep_days == 0:
        return StageOutcome(0, "off (reports.keep_days = 0)")
    pruned = prune_nightly_reports(context.settings.reports_dir, context.business_date, keep_days)
    notes = tuple(
        f"cannot remove the old report {path.name}: {reason}" for path, reason in pruned.failed
    )
    summary = f"{len(pruned.removed)} nightly report files older than {keep_days} days removed"
    return StageOutcome(len(pruned.removed), summary, notes=notes)


def decide_outputs(engine: Engine, business_date: date) -> bool:
    """The backfill rule (from the run log on ``engine``, the state database): a nightly
    run of a date older than the latest successful nightly run computes KPIs and
    snapshots only, and never replaces the current workbooks and
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


#: The nightly stages, in order.
NIGHTLY_STAGES: tuple[Stage, ...] = (
    Stage("kpis", compute_kpis),
    Stage("snapshots", store_kpi_snapshots),
    Stage("harvest", current_outputs(harvest_workbooks)),
    Stage("workbooks", current_outputs(refresh_workbooks)),
    Stage("reports", current_outputs(write_diagnosis_reports)),
    Stage("callsheets", current_outputs(write_call_sheets)),
    Stage("prune", current_outputs(prune_old_reports), retry=False),
    Stage("delivery", current_outputs(deliver_reports), retry=False),
)


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
    data = gather_quarter(settings, context.databases, quarter, list(teams) if teams else None)
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


def quarterly_stages(
    teams: Sequence[str] | None = None, languages: Sequence[str] | None = None
) -> tuple[Stage, ...]:
    """:data:`QUARTERLY_STAGES` with the reviews limited to ``teams`` / ``languages``."""
    reviews = functools.partial(write_reviews, teams=teams, languages=languages)
    return (Stage("reviews", reviews), *QUARTERLY_STAGES[1:])
