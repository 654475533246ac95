"""What the diagnosis reports show beside a KPI run, read from the database: each KPI
tile's value in the previous period and its target, and the latest follow-up of every
customer on a call list.

The rules are the ones the other outputs use, never copies: previous values follow
:mod:`crm_batch.kpi.tiles` (the workbook Dashboard's rule) over the stored snapshots,
targets are :func:`crm_batch.app.targets.target_tables`, follow-ups
:func:`crm_batch.app.followups.latest_followups`. The reports receive the result as plain
data (:class:`DiagnosisExtras`) and never open a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from crm_batch.app.engines import Databases, open_databases
from crm_batch.app.followups import latest_followups
from crm_batch.app.kpis import KpiRun
from crm_batch.app.snapshots import read_snapshots, scope_of
from crm_batch.app.targets import target_tables
from crm_batch.config import Settings
from crm_batch.kpi import targets
from crm_batch.kpi.tiles import KpiTile, kpi_tiles

Scope = str | None


@dataclass(frozen=True)
class ScopeExtras:
    """One scope's tiles (KPI name -> :class:`KpiTile`) and target table (rows of
    :func:`crm_batch.app.targets.target_tables`, indexed by KPI; empty without targets)."""

    tiles: Mapping[str, KpiTile] = field(default_factory=dict)
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class DiagnosisExtras:
    """Per scope of a run its :class:`ScopeExtras`; the latest follow-up of each customer
    on a call list (:func:`crm_batch.app.followups.latest_followups`' columns)."""

    scopes: Mapping[Scope, ScopeExtras]
    followups: pd.DataFrame

    def of(self, scope: Scope) -> ScopeExtras:
        """The extras of ``scope`` (empty ones for a scope not read)."""
        return self.scopes.get(scope, ScopeExtras())


def diagnosis_extras(settings: Settings, databases: Databases, run: KpiRun) -> DiagnosisExtras:
    """The extras of every scope of ``run``: the snapshots and follow-ups read on the state
    database, the targets' baselines measured on the source. Only the previous period's
    snapshots up to its comparison day are read; targets only when ``[targets]`` sets
    any."""
    requested = run.requested or run.period
    previous = requested.previous()
    day = targets.baseline_as_of(requested, run.as_of, previous)
    history = read_snapshots(databases.state, start=previous.start, end=day)
    goals = target_tables(settings, databases.source, run) if settings.targets else {}
    scopes = {}
    for scope, report in run.reports.items():
        stored_scope, stored_team = scope_of(scope)
        rows = history[(history["scope"] == stored_scope) & (history["team"] == stored_team)]
        tiles = kpi_tiles(report.kpis, report.kpis, rows, requested, run.as_of)
        table = goals.get(scope)
        scopes[scope] = ScopeExtras(
            {tile.name: tile for tile in tiles},
            table.set_index("kpi", drop=False) if table is not None else pd.DataFrame(),
        )
    called = set()
    for report in run.reports.values():
        called.update(str(i) for i in report.churn_warnings["customer_id"])
    return DiagnosisExtras(scopes, latest_followups(databases.state, sorted(called)))


def read_diagnosis_extras(settings: Settings, run: KpiRun) -> DiagnosisExtras:
    """:func:`diagnosis_extras` on connections of its own (the CLI and the buttons)."""
    with open_databases(settings) as databases:
        return diagnosis_extras(settings, databases, run)
