"""What the quarterly review reads: the quarter's KPIs and tables, history and targets.

One :class:`QuarterData` serves every scope's review (the company and each team), so
the source is extracted once per report run:

* the quarter itself is computed from the source data as of its last day (every team
  in one pass, as :func:`crm_batch.app.kpis.run_kpis` does), keeping the prepared
  period: its start-of-quarter tiers feed the list of accounts that slipped, its
  per-customer quarter revenue the big-customer and win-back lists;
* earlier quarters (the trend lines' last 8 quarters, the previous quarter, the same
  quarter last year) come from ``kpi_snapshots``: the snapshot of a quarter's last day
  holds that quarter's values (:mod:`crm_batch.app.kpis`). A quarter whose snapshot is
  missing (or lacks a scope) is recomputed from the source data for every scope in one
  extraction (:func:`crm_batch.app.kpis.team_reports`: a team created after that
  quarter gets zeros and dashes, where ``run_kpis`` would reject it as unknown), and the
  report says which quarters were recomputed;
* targets use the KPI engine's rules (:func:`crm_batch.kpi.targets.target_table`) with
  the baselines of :func:`crm_batch.kpi.targets.baseline_periods`, measured at
  :func:`crm_batch.kpi.targets.baseline_as_of` exactly as
  :func:`crm_batch.app.kpis.target_tables` does; a baseline quarter measured at its
  last day is read from the same quarter values instead of being computed again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import pandas as pd
from sqlalchemy import Engine

from crm_batch.app.kpis import KpiRun, run_kpis, team_reports
from crm_batch.app.snapshots import read_snapshots
from crm_batch.config import Settings
from crm_batch.errors import ConfigError
from crm_batch.kpi import targets
from crm_batch.kpi.definitions import registry
from crm_batch.kpi.engine import PeriodReport, PreparedPeriod
from crm_batch.periods import Period, last_complete_quarter

log = logging.getLogger(__name__)

#: Quarters on the trend lines, the reviewed quarter included.
TREND_QUARTERS = 8

Scope = str | None
Source = Literal["computed", "snapshot", "recomputed"]


@dataclass(frozen=True)
class QuarterValues:
    """The KPI values of one quarter for each scope, and where they came from."""

    period: Period
    source: Source
    values: dict[Scope, dict[str, float]]

    def get(self, scope: Scope, kpi: str) -> float:
        """One value (NaN when the scope or KPI is absent)."""
        value = self.values.get(scope, {}).get(kpi, math.nan)
        return math.nan if value is None else float(value)


@dataclass(frozen=True)
class QuarterData:
    """Everything the quarterly reviews of one quarter show, for every scope."""

    quarter: Period
    run: KpiRun  # the quarter as of its last day: the company and every team
    prepared: PreparedPeriod  # the run's prepared period (start tiers, quarter orders)
    history: dict[Period, QuarterValues]  # oldest first; the quarter itself last
    target_tables: dict[Scope, pd.DataFrame]  # kpi_job.target_tables' columns

    @property
    def previous(self) -> Period:
        return self.quarter.previous()

    @property
    def year_before(self) -> Period:
        return self.quarter.year_before()

    def report(self, scope: Scope) -> PeriodReport:
        """The quarter's report of ``scope`` (None = the company)."""
        return self.run.reports[scope]

    def scopes(self) -> list[Scope]:
        """The company (None) and the teams, in the run's order."""
        return list(self.run.reports)

    def teams(self) -> list[str]:
        return [scope for scope in self.run.reports if scope is not None]

    def recomputed(self) -> list[Period]:
        """Earlier quarters without stored snapshots, recomputed for this report."""
        return [p for p, v in self.history.items() if v.source == "recomputed"]


def default_quarter(today: date) -> Period:
    """The last quarter that finished before ``today`` (a local date)."""
    return last_complete_quarter(today - timedelta(days=1))


def check_finished(quarter: Period, today: date) -> None:
    """Raise :class:`ConfigError` unless ``quarter`` ended before ``today``."""
    if quarter.kind != "quarter":
        raise ConfigError(f"{quarter.label} is not a quarter: use e.g. 2026Q3")
    if quarter.end >= today:
        raise ConfigError(
            f"quarter {quarter.label} has not finished (it ends {quarter.end.isoformat()}): "
            "the quarterly review covers finished quarters"
        )


def trend_quarters(quarter: Period, count: int = TREND_QUARTERS) -> list[Period]:
    """``quarter`` and the ``count - 1`` quarters before it, oldest first."""
    quarters = [quarter]
    for _ in range(count - 1):
        quarters.append(quarters[-1].previous())
    return quarters[::-1]


def compute_quarter(
    settings: Settings, engine: Engine, quarter: Period, teams: Sequence[str] | None = None
) -> tuple[KpiRun, PreparedPeriod]:
    """The quarter as of its last day for the company and ``teams`` (None: every team),
    with the prepared period the review's account lists need."""
    run = run_kpis(
        settings,
        engine,
        quarter.end,
        quarter,
        teams=teams,
        all_teams=teams is None,
        include_company=True,
        keep_prepared=True,
    )
    assert run.prepared is not None  # asked for with keep_prepared
    return run, run.prepared


def _snapshot_values(
    engine: Engine, quarters: Sequence[Period], scopes: Sequence[Scope]
) -> dict[Period, dict[Scope, dict[str, float]]]:
    """Stored values of each quarter's last day, for quarters holding every scope."""
    if not quarters:
        return {}
    stored = read_snapshots(
        engine, start=min(q.end for q in quarters), end=max(q.end for q in quarters)
    )
    found: dict[Period, dict[Scope, dict[str, float]]] = {}
    if stored.empty:
        return found
    stored = stored.assign(day=stored["as_of"].dt.date)
    for quarter in quarters:
        rows = stored[stored["day"] == quarter.end]
        if rows.empty:
            continue
        values: dict[Scope, dict[str, float]] = {}
        for (scope, team), group in rows.groupby(["scope", "team"], sort=False):
            key: Scope = None if scope == "all" else str(team)
            values[key] = dict(
                zip(group["kpi"].astype(str), group["value"].astype(float), strict=True)
            )
        if all(scope in values for scope in scopes):
            found[quarter] = {scope: values[scope] for scope in scopes}
    return found


def _recompute(
    settings: Settings, engine: Engine, period: Period, as_of: date, teams: Sequence[str]
) -> dict[Scope, dict[str, float]]:
    """The KPIs of ``period`` as of ``as_of`` for the company and ``teams`` (one
    extraction). A team without customers then (created later) gets counts of 0 and
    NaN rates, as the engine gives any empty team; the source was checked already."""
    reports = team_reports(settings, engine, period, as_of, teams)
    return {scope: report.kpis for scope, report in reports.items()}


def quarter_history(
    settings: Settings,
    engine: Engine,
    run: KpiRun,
    quarters: Sequence[Period],
) -> dict[Period, QuarterValues]:
    """Values of ``quarters`` for the run's scopes: the run's own quarter as computed,
    stored snapshots where every scope has them, else recomputed (one run per quarter)."""
    scopes = list(run.reports)
    teams = [scope for scope in scopes if scope is not None]
    earlier = [q for q in quarters if q != run.period]
    stored = _snapshot_values(engine, earlier, scopes)
    history: dict[Period, QuarterValues] = {}
    for quarter in sorted(set(quarters)):
        if quarter == run.period:
            values = {scope: report.kpis for scope, report in run.reports.items()}
            history[quarter] = QuarterValues(quarter, "computed", values)
        elif quarter in stored:
            history[quarter] = QuarterValues(quarter, "snapshot", stored[quarter])
        else:
            started = time.perf_counter()
            values = _recompute(settings, engine, quarter, quarter.end, teams)
            history[quarter] = QuarterValues(quarter, "recomputed", values)
            log.info(
                "quarterly review: no snapshot of %s (%s), recomputed in %.1fs",
                quarter.label,
                quarter.end.isoformat(),
                time.perf_counter() - started,
            )
    return history


def quarter_targets(
    settings: Settings,
    engine: Engine,
    run: KpiRun,
    history: dict[Period, QuarterValues],
) -> dict[Scope, pd.DataFrame]:
    """The target table of every scope (columns as :func:`crm_batch.app.kpis.target_tables`).

    A baseline that is a quarter measured at its last day comes from ``history`` (the
    snapshot of that day, or its recomputation); any other baseline period is computed
    once for all scopes at :func:`targets.baseline_as_of`; one before it starts is NaN.
    """
    quarter = run.period
    by_kpi = targets.baseline_periods(quarter, settings.targets)
    scopes = list(run.reports)
    teams = [scope for scope in scopes if scope is not None]
    baselines: dict[Period, tuple[date, dict[Scope, dict[str, float]]]] = {}
    for base in dict.fromkeys(by_kpi.values()):
        day = targets.baseline_as_of(quarter, run.as_of, base)
        if base in history and day == base.end:
            values = history[base].values
        elif day >= base.start:
            values = _recompute(settings, engine, base, day, teams)
        else:
            values = {}
        baselines[base] = (day, values)
    kpis = registry()
    tables: dict[Scope, pd.DataFrame] = {}
    for scope, report in run.reports.items():
        base_values = {
            name: baselines[base][1].get(scope, {}).get(name, math.nan)
            for name, base in by_kpi.items()
        }
        table = targets.target_table(report.kpis, base_values, settings.targets, kpis)
        table.insert(1, "period", quarter.label)
        table.insert(2, "baseline_period", [by_kpi[name].label for name in table["kpi"]])
        table.insert(3, "baseline_as_of", [baselines[by_kpi[name]][0] for name in table["kpi"]])
        tables[scope] = table
    return tables


def gather_quarter(
    settings: Settings, engine: Engine, quarter: Period, teams: Sequence[str] | None = None
) -> QuarterData:
    """The data of the quarterly reviews of ``quarter`` for the company and ``teams``
    (None: every team; the company review's team table needs them all)."""
    run, prepared = compute_quarter(settings, engine, quarter, teams)
    wanted = [*trend_quarters(quarter), quarter.previous(), quarter.year_before()]
    history = quarter_history(settings, engine, run, wanted)
    return QuarterData(
        quarter=quarter,
        run=run,
        prepared=prepared,
        history=history,
        target_tables=quarter_targets(settings, engine, run, history),
    )
