"""Target tables: actual, baseline, target and attainment per targeted KPI, per scope.

The one implementation behind ``kpis --targets`` (:func:`crm_batch.app.kpis.compute`)
and the quarterly review (:mod:`crm_batch.app.quarter`). The table arithmetic (rules,
caps, attainment) is :func:`crm_batch.kpi.targets.target_table`; this module measures
the baselines. Each distinct baseline period is measured once for every scope, at the
same distance from its end as the run's date is from the run's period end
(:func:`crm_batch.kpi.targets.baseline_as_of`); a baseline before the period starts is
NaN. A caller that already holds a quarter's values as of its last day (the review's
history) passes them as ``known`` so that quarter is not extracted again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol

import pandas as pd
from sqlalchemy import Engine

from crm_batch.app.frames import team_reports
from crm_batch.config import Settings
from crm_batch.kpi import targets
from crm_batch.kpi.definitions import registry
from crm_batch.kpi.engine import PeriodReport
from crm_batch.periods import Period

Scope = str | None
#: KPI values by scope (None = the company): ``{scope: {kpi: value}}``.
ScopeValues = dict[Scope, dict[str, float]]


class MeasuredRun(Protocol):
    """What a target table needs of a run (:class:`crm_batch.app.kpis.KpiRun` is one;
    described here so that module can import this one)."""

    @property
    def as_of(self) -> date: ...
    @property
    def period(self) -> Period: ...
    @property
    def requested(self) -> Period | None: ...
    @property
    def reports(self) -> Mapping[Scope, PeriodReport]: ...


def scope_values(
    settings: Settings,
    engine: Engine,
    period: Period,
    as_of: date,
    teams: Sequence[str],
    *,
    include_company: bool = True,
) -> ScopeValues:
    """The KPIs of ``period`` as of ``as_of`` for the company and ``teams``, from one
    extraction and without the data checks (the caller's run was checked already).

    A team without customers then (created later) gets counts of 0 and NaN rates, as
    the engine gives any empty team, where :func:`crm_batch.app.kpis.run_kpis` would
    reject it as unknown.
    """
    reports = team_reports(settings, engine, period, as_of, teams, include_company=include_company)
    return {scope: report.kpis for scope, report in reports.items()}


def target_tables(
    settings: Settings,
    engine: Engine,
    run: MeasuredRun,
    known: Mapping[Period, ScopeValues] | None = None,
) -> dict[Scope, pd.DataFrame]:
    """The target table of each scope of ``run``: :data:`crm_batch.kpi.targets.TARGET_COLUMNS`
    with ``period``, ``baseline_period`` and ``baseline_as_of`` inserted after ``kpi``.

    ``known``: values of periods as of their last day for every scope of ``run``; a
    baseline measured at its period's last day is read from there when present.
    """
    requested = run.requested or run.period
    by_kpi = targets.baseline_periods(requested, settings.targets)
    teams = [scope for scope in run.reports if scope is not None]
    baselines: dict[Period, tuple[date, ScopeValues]] = {}
    for base in dict.fromkeys(by_kpi.values()):
        day = targets.baseline_as_of(requested, run.as_of, base)
        if known is not None and base in known and day == base.end:
            values = known[base]
        elif day >= base.start:
            values = scope_values(
                settings, engine, base, day, teams, include_company=None in run.reports
            )
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
        table.insert(1, "period", run.period.label)
        table.insert(2, "baseline_period", [by_kpi[name].label for name in table["kpi"]])
        table.insert(3, "baseline_as_of", [baselines[by_kpi[name]][0] for name in table["kpi"]])
        tables[scope] = table
    return tables
