"""What the quarterly review reads: the quarter's KPIs and tables, history and targets.

:func:`gather_quarter` builds one :class:`QuarterData` for every scope's review (the
company and each team), so the source is extracted once per report run; the review
(:mod:`crm_batch.reports.quarterly`) only renders it:

* the quarter itself is computed from the source data as of its last day (every team
  in one pass, :func:`crm_batch.app.kpis.run_kpis`), keeping the prepared period: its
  start-of-quarter tiers feed the list of accounts that slipped, its per-customer
  quarter revenue the big-customer and win-back lists;
* earlier quarters (the trend lines' last 8 quarters, the previous quarter, the same
  quarter last year) come from ``kpi_snapshots``: the snapshot of a quarter's last day
  holds that quarter's values (:mod:`crm_batch.app.kpis`). A quarter whose snapshot is
  missing (or lacks a scope) is recomputed from the source data for every scope in one
  extraction (:func:`crm_batch.app.targets.scope_values`: a team created after that
  quarter gets zeros and dashes), and the report says which quarters were recomputed;
* targets are :func:`crm_batch.app.targets.target_tables`, given the history so a
  baseline quarter measured at its last day is not computed again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from sqlalchemy import Engine

from crm_batch.app.engines import Databases
from crm_batch.app.kpis import KpiRun, run_kpis
from crm_batch.app.snapshots import read_snapshots, team_of
from crm_batch.app.targets import Scope, ScopeValues, scope_values, target_tables
from crm_batch.config import Settings
from crm_batch.kpi.calibration import calibration_by_tier
from crm_batch.kpi.engine import PeriodReport, PreparedPeriod
from crm_batch.periods import Period

log = logging.getLogger(__name__)

#: Quarters on the trend lines, the reviewed quarter included.
TREND_QUARTERS = 8

Source = Literal["computed", "snapshot", "recomputed"]


@dataclass(frozen=True)
class QuarterValues:
    """The KPI values of one quarter for each scope, and where they came from."""

    period: Period
    source: Source
    values: ScopeValues

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
    target_tables: dict[Scope, pd.DataFrame]  # crm_batch.app.targets.target_tables
    #: the value models' forecast of the quarter against its purchase days, by value tier
    #: at the start (crm_batch.kpi.calibration); the company's, one population model
    calibration: pd.DataFrame

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


def trend_quarters(quarter: Period, count: int = TREND_QUARTERS) -> list[Period]:
    """``quarter`` and the ``count - 1`` quarters before it, oldest first."""
    quarters = [quarter]
    for _ in range(count - 1):
        quarters.append(quarters[-1].previous())
    return quarters[::-1]


def compute_quarter(
    settings: Settings,
    engine: Engine,
    quarter: Period,
    teams: Sequence[str] | None = None,
    state: Engine | None = None,
) -> KpiRun:
    """The quarter as of its last day for the company and ``teams`` (None: every team),
    keeping the prepared period the review's account lists need. ``state``: where the
    nightly run of the quarter's last day stored its value models; they are reused when
    fitted on the same buyers (:func:`crm_batch.app.kpis.run_kpis`)."""
    return run_kpis(
        settings,
        engine,
        quarter.end,
        quarter,
        teams=teams,
        all_teams=teams is None,
        include_company=True,
        keep_prepared=True,
        state=state,
    )


def _snapshot_values(
    engine: Engine, quarters: Sequence[Period], scopes: Sequence[Scope]
) -> dict[Period, ScopeValues]:
    """Stored values of each quarter's last day, for quarters holding every scope."""
    if not quarters:
        return {}
    stored = read_snapshots(
        engine, start=min(q.end for q in quarters), end=max(q.end for q in quarters)
    )
    found: dict[Period, ScopeValues] = {}
    if stored.empty:
        return found
    stored = stored.assign(day=stored["as_of"].dt.date)
    for quarter in quarters:
        rows = stored[stored["day"] == quarter.end]
        if rows.empty:
            continue
        values: ScopeValues = {}
        for (scope, team), group in rows.groupby(["scope", "team"], sort=False):
            key: Scope = team_of(str(scope), str(team))
            values[key] = dict(
                zip(group["kpi"].astype(str), group["value"].astype(float), strict=True)
            )
        if all(scope in values for scope in scopes):
            found[quarter] = {scope: values[scope] for scope in scopes}
    return found


def quarter_history(
    settings: Settings,
    databases: Databases,
    run: KpiRun,
    quarters: Sequence[Period],
) -> dict[Period, QuarterValues]:
    """Values of ``quarters`` for the run's scopes: the run's own quarter as computed,
    stored snapshots (state database) where every scope has them, else recomputed from
    the source (one run per quarter)."""
    scopes = list(run.reports)
    teams = [scope for scope in scopes if scope is not None]
    earlier = [q for q in quarters if q != run.period]
    stored = _snapshot_values(databases.state, earlier, scopes)
    history: dict[Period, QuarterValues] = {}
    for quarter in sorted(set(quarters)):
        if quarter == run.period:
            values = {scope: report.kpis for scope, report in run.reports.items()}
            history[quarter] = QuarterValues(quarter, "computed", values)
        elif quarter in stored:
            history[quarter] = QuarterValues(quarter, "snapshot", stored[quarter])
        else:
            started = time.perf_counter()
            values = scope_values(settings, databases.source, quarter, quarter.end, teams)
            history[quarter] = QuarterValues(quarter, "recomputed", values)
            log.info(
                "quarterly review: no snapshot of %s (%s), recomputed in %.1fs",
                quarter.label,
                quarter.end.isoformat(),
                time.perf_counter() - started,
            )
    return history


def gather_quarter(
    settings: Settings, databases: Databases, quarter: Period, teams: Sequence[str] | None = None
) -> QuarterData:
    """The data of the quarterly reviews of ``quarter`` for the company and ``teams``
    (None: every team; the company review's team table needs them all)."""
    started = time.perf_counter()
    run = compute_quarter(settings, databases.source, quarter, teams, databases.state)
    assert run.prepared is not None  # asked for with keep_prepared
    wanted = [*trend_quarters(quarter), quarter.previous(), quarter.year_before()]
    history = quarter_history(settings, databases, run, wanted)
    known = {period: values.values for period, values in history.items()}
    data = QuarterData(
        quarter=quarter,
        run=run,
        prepared=run.prepared,
        history=history,
        target_tables=target_tables(settings, databases.source, run, known),
        calibration=calibration_by_tier(
            run.prepared.start_table,
            run.prepared.period_orders,
            (quarter.end - quarter.start).days + 1,
        ),
    )
    log.info(
        "quarterly review %s: data ready in %.1fs", quarter.label, time.perf_counter() - started
    )
    return data
