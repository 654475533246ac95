"""The KPI service: the KPI set of a period as of a date, for the company and teams.

:func:`run_kpis` is the one path from a database to KPI reports: the data checks, the
extraction (:func:`load_frames`), the pure KPI engine (:mod:`crm_batch.kpi.engine`) and
the revenue reconciliation (:mod:`crm_batch.app.reconciliation`). It also stores
snapshots and computes target tables; the renderers live in :mod:`crm_batch.exports.kpis`.
Snapshot convention: the values stored for business date T are those of the quarter
containing T measured up to T (quarter to date), so the snapshot of a quarter's last
day holds that quarter's final figures. A KPI without data because an optional table is
not mapped (:attr:`PeriodReport.missing`) gets no snapshot row at all, so a trend or a
tile comparison never shows it as a measured value (a null row means "measured, but
undefined", e.g. a rate over an empty base).

Scopes: the company (key ``None``), every team and, when some customers have no team,
the ``(unassigned)`` scope (:data:`crm_batch.source.teams.UNASSIGNED`), which gets its
own report and workbook like a team. A team whose name cannot be a scope (too long,
control characters: :func:`crm_batch.source.teams.team_name_problem`) or whose KPIs fail
gets no report: it is one :class:`~crm_batch.app.problems.Problem` of the run, and the
other teams are computed as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Engine

from crm_batch.app.engines import Databases, open_databases
from crm_batch.app.frames import load_frames, source_mapping
from crm_batch.app.problems import Problem, show_team
from crm_batch.app.reconciliation import log_reconciliation
from crm_batch.app.snapshots import scope_of, scope_problem, write_snapshots
from crm_batch.app.source_check import inspect_source, raise_for_blocking
from crm_batch.app.targets import target_tables
from crm_batch.app.value_models import stored_value_model, write_value_model
from crm_batch.config import Settings
from crm_batch.errors import ConfigError
from crm_batch.kpi.definitions import OPTIONAL_TABLES
from crm_batch.kpi.engine import (
    PeriodReport,
    PreparedPeriod,
    period_report,
    period_reports,
    prepare,
)
from crm_batch.kpi.predict import ValueModel
from crm_batch.periods import Period, period_containing
from crm_batch.progress import track
from crm_batch.source.extract_period import clip_period
from crm_batch.source.teams import UNASSIGNED, team_name_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KpiRun:
    """The reports of one computation: key ``None`` is the whole company."""

    as_of: date
    period: Period  # as measured: clipped to as_of
    reports: dict[str | None, PeriodReport]
    requested: Period | None = None  # as asked for (targets compare like for like)
    # the extracted and prepared period, kept only when asked (run_kpis keep_prepared):
    # the quarterly review's account lists read it; everyone else lets it go
    prepared: PreparedPeriod | None = None
    # the company's fitted value models (BG/NBD, Gamma-Gamma) as of the period's end
    value_model: ValueModel | None = None
    problems: tuple[Problem, ...] = ()  # teams left out: unusable names, failed KPIs
    unassigned: int = 0  # customers without a team (the (unassigned) scope)
    unassigned_sample: tuple[str, ...] = ()  # a few of their ids

    def notes(self) -> list[str]:
        """Lines worth knowing that need no action tonight: optional tables not mapped,
        customers without a team."""
        notes = []
        company = next(iter(self.reports.values()), None)
        if company is not None and company.absent_tables:
            absent = [t for t in OPTIONAL_TABLES if t in company.absent_tables]
            names = ", ".join(company.missing)
            notes.append(
                f"optional tables not mapped: {', '.join(absent)}; the KPIs that need them "
                f"have no data (null, not 0): {names}"
            )
        if not self.unassigned:
            return notes
        sample = ", ".join(self.unassigned_sample)
        return [
            *notes,
            f"{self.unassigned:,} customers have no team (e.g. ids {sample}): they are the "
            f"{UNASSIGNED} scope, with its own workbook and report; set their team at the "
            "source (customers.team)",
        ]


#: Customer ids shown for the customers without a team.
UNASSIGNED_SAMPLE = 5


def snapshot_period(as_of: date) -> Period:
    """The period whose values a snapshot of ``as_of`` stores: its quarter."""
    return period_containing(as_of, "quarter")


def run_kpis(
    settings: Settings,
    engine: Engine,
    as_of: date,
    period: Period | None = None,
    *,
    teams: Sequence[str] | None = None,
    all_teams: bool = False,
    include_company: bool | None = None,
    verify: bool = True,
    keep_prepared: bool = False,
    state: Engine | None = None,
) -> KpiRun:
    """Compute the company's reports and those of ``teams`` (or every team) in one pass.

    ``period`` defaults to the business date's quarter (:func:`snapshot_period`), measured
    up to ``as_of``. The company's report is included when no team is named, with ``all_teams``, or
    when ``include_company`` says so. ``verify``: run the data checks first (errors stop
    the run with one report, warnings are logged). Pass False only when the same source
    was just checked (:func:`run_data_checks`), e.g. for the other dates of a backfill or
    a target's baseline: the error checks do not depend on the date. ``keep_prepared``
    keeps the extracted, prepared period on the result (:attr:`KpiRun.prepared`).
    ``state``: the state database, whose stored value models of the period's last day
    are reused when they were fitted on the same buyers (else they are fitted again).
    """
    period = period or snapshot_period(as_of)
    try:
        measured = clip_period(period, as_of)
    except ValueError as exc:
        raise ConfigError(f"--period {period.label}: {exc}") from None
    if verify:  # data checks first: errors stop the run with one report
        run_data_checks(settings, engine, as_of)
    started = time.perf_counter()
    frames = load_frames(settings, engine, period, as_of)
    extracted = time.perf_counter()
    stored = stored_value_model(state, measured.end) if state is not None else None
    prepared = prepare(frames, settings.thresholds, stored)
    if stored is not None:
        reused = prepared.value_model is stored
        log.info(
            "value models of %s: %s",
            measured.end.isoformat(),
            "reused (fitted on the same buyers)" if reused else "fitted again (the data changed)",
        )
    log.info(
        "%s as of %s: extracted %s customers in %.1fs, computed in %.1fs",
        measured.label,
        as_of.isoformat(),
        f"{len(prepared.end_table):,}",
        extracted - started,
        time.perf_counter() - extracted,
    )
    log_reconciliation(
        engine,
        settings.sql_dir,
        measured.end,
        frames.end.facts,
        prepared.end_table,
        source_mapping(settings),
    )
    register = prepared.frames.register
    data_teams = sorted(set(register["team"].dropna().unique()) - {UNASSIGNED})
    problems = [_unusable(name, register) for name in data_teams if team_name_problem(name)]
    unusable = {problem.team for problem in problems}
    known = list(dict.fromkeys([t.name for t in settings.teams] + data_teams))
    known = [name for name in known if name not in unusable]
    nobody = register.loc[register["team"] == UNASSIGNED, "customer_id"].astype("string")
    if len(nobody):
        known.append(UNASSIGNED)
    wanted = known if all_teams else list(teams or [])
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ConfigError(
            f"unknown team {unknown[0]!r}: teams in the settings and the data are "
            f"{', '.join(repr(t) for t in known) or '(none)'}"
        )
    company = include_company if include_company is not None else (not teams or all_teams)
    reports, failed = _reports(prepared, wanted, company)
    problems.extend(failed)
    for problem in problems:
        log.error("%s", problem.line())
    run = KpiRun(
        as_of=as_of,
        period=measured,
        reports=reports,
        requested=period,
        prepared=prepared if keep_prepared else None,
        value_model=prepared.value_model,
        problems=tuple(problems),
        unassigned=len(nobody),
        unassigned_sample=tuple(nobody.sort_values().head(UNASSIGNED_SAMPLE).tolist()),
    )
    for line in run.notes():
        log.warning("%s", line)
    return run


def _reports(
    prepared: PreparedPeriod, teams: list[str], include_company: bool
) -> tuple[dict[str | None, PeriodReport], list[Problem]]:
    """The company's report (when asked) and every team's, in one pass
    (:func:`period_reports`). One team's failure is that team's: when the pass fails,
    the company and each team are computed on their own, so the failing team is the one
    left out (a Problem) and the others go on; the company's failure stops the run."""
    try:
        return period_reports(prepared, teams, include_company), []
    except Exception:
        log.warning("KPIs of every team in one pass failed; computing each team on its own")
    reports: dict[str | None, PeriodReport] = {}
    problems: list[Problem] = []
    if include_company:
        reports[None] = period_report(prepared)
    for name in track(teams, "KPIs by team", "team"):
        try:
            reports[name] = period_report(prepared, name)
        except Exception as exc:  # one team's failure is that team's: the others go on
            log.exception("KPIs of team %s failed", show_team(name))
            problems.append(
                Problem(
                    name,
                    f"its KPIs could not be computed ({type(exc).__name__}: {exc}); it gets "
                    "no snapshot, workbook or report tonight",
                    "report the error and the log's traceback to the maintainers",
                )
            )
    return reports, problems


def _unusable(name: str, register: pd.DataFrame) -> Problem:
    customers = int((register["team"] == name).sum())
    return Problem(
        name,
        f"{team_name_problem(name)}; the team gets no snapshot, workbook or report (its "
        f"{customers:,} customers count in the company's KPIs)",
        "fix the name in the source (customers.team, leads.team); the data check "
        "customers_team_not_normal lists the rows",
    )


@dataclass(frozen=True)
class KpiResult:
    """What :func:`compute` returns: the run and, when asked, its target tables."""

    run: KpiRun
    targets: dict[str | None, pd.DataFrame] | None = None


def compute(
    settings: Settings,
    as_of: date,
    period: Period | None = None,
    *,
    teams: Sequence[str] = (),
    all_teams: bool = False,
    snapshot: bool = False,
    with_targets: bool = False,
    verify: bool = True,
) -> KpiResult:
    """The KPI set of ``period`` (default: the quarter of ``as_of``, to date) for the
    company or ``teams`` (every team with ``all_teams``), on connections of its own (the
    source read, the snapshots written to the state database).

    ``snapshot`` also stores the business date's rows for the company and every team
    (only for the default period); ``with_targets`` adds the target tables
    (:func:`target_tables`); ``verify`` runs the data checks first (:func:`run_kpis`).
    """
    chosen = period or snapshot_period(as_of)
    if snapshot and chosen != snapshot_period(as_of):
        raise ConfigError(
            f"snapshots hold the business date's quarter ({snapshot_period(as_of).label}), "
            f"not {chosen.label}: drop --period"
        )
    with open_databases(settings) as databases:
        run = run_kpis(
            settings,
            databases.source,
            as_of,
            chosen,
            teams=list(teams),
            all_teams=all_teams or snapshot,
            verify=verify,
            state=databases.state,
        )
        if snapshot:
            rows = store_snapshots(databases.state, run, datetime.now(settings.tz)).rows
            log.info("stored %d snapshot rows for %s", rows, as_of.isoformat())
            if not (all_teams or teams):  # stored for everyone, shown for the company
                run = replace(run, reports={None: run.reports[None]}, prepared=None)
        goals = target_tables(settings, databases.source, run) if with_targets else None
    return KpiResult(run, goals)


def run_data_checks(settings: Settings, engine: Engine, as_of: date) -> None:
    """The checks of ``check-source`` for business date ``as_of``, without its row counts
    (:mod:`crm_batch.app.source_check`): one :class:`~crm_batch.errors.DataError` lists
    every blocking problem with its fix (exit code 4); each warning is logged."""
    raise_for_blocking(inspect_source(settings, engine, as_of, count=False))


@dataclass(frozen=True)
class StoredSnapshots:
    """What :func:`store_snapshots` wrote: rows, and the scopes it could not store."""

    rows: int
    problems: tuple[Problem, ...] = ()


def store_snapshots(engine: Engine, run: KpiRun, computed_at: datetime) -> StoredSnapshots:
    """Write the run's values as the snapshots of its business date (company, teams and
    the customers without a team, :func:`crm_batch.app.snapshots.scope_of`), and its fitted
    value models as the date's ``value_model_parameters`` row. A scope that cannot be
    stored is left out as a problem of its team; the others are written."""
    expected = clip_period(snapshot_period(run.as_of), run.as_of)
    if run.period != expected:
        raise ConfigError(
            f"snapshots of {run.as_of.isoformat()} hold the quarter to date "
            f"({expected.label}); they cannot be taken from period {run.period.label}"
        )
    values: dict[tuple[str, str], dict[str, float]] = {}
    problems: list[Problem] = []
    for team, report in run.reports.items():
        scope, name = scope_of(team)
        problem = scope_problem(scope, name)
        if problem is not None and team is not None:
            problems.append(
                Problem(
                    team,
                    f"its KPI snapshot cannot be stored ({problem})",
                    "fix the team name in the source (customers.team)",
                )
            )
            log.error("%s", problems[-1].line())
            continue
        values[(scope, name)] = {k: v for k, v in report.kpis.items() if k not in report.missing}
    rows = write_snapshots(engine, run.as_of, values, computed_at)
    if run.value_model is not None:
        write_value_model(engine, run.as_of, run.value_model, computed_at)
    return StoredSnapshots(rows, tuple(problems))


def snapshot_dates(as_of: date, history_quarters: int) -> list[date]:
    """``as_of`` and the last days of the ``history_quarters`` quarters before it, oldest first."""
    dates = [as_of]
    quarter = snapshot_period(as_of)
    for _ in range(history_quarters):
        quarter = quarter.previous()
        dates.append(quarter.end)
    return sorted(set(dates))


def backfill_snapshots(
    settings: Settings, databases: Databases, dates: Sequence[date], computed_at: datetime
) -> int:
    """Store the snapshots of each business date (company and every team), computed from
    the source, in the state database; rows written.

    The data checks run once, for the latest date (the error checks do not depend on
    the date; the warnings of the latest date cover the most orders), not once per
    date; every date still logs its own revenue reconciliation.
    """
    if dates:
        run_data_checks(settings, databases.source, max(dates))
    rows = 0
    for day in track(dates, "KPI snapshots", "date"):
        started = datetime.now()
        run = run_kpis(
            settings, databases.source, day, all_teams=True, verify=False, state=databases.state
        )
        rows += store_snapshots(databases.state, run, computed_at).rows
        log.info(
            "snapshots of %s (%s to date): %d scopes in %.1fs",
            day.isoformat(),
            run.period.label,
            len(run.reports),
            (datetime.now() - started).total_seconds(),
        )
    return rows
