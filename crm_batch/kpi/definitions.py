"""The KPI registry: one entry per KPI, read by the workbooks, the PDFs and the README.

Each KPI module declares its entries in a module-level ``KPIS`` tuple next to the code
that computes them; :func:`registry` collects them (and rejects duplicates), so a KPI's
definition lives once, beside its implementation.

Rates are stored as fractions (0.25 = 25 %) and formatted only at the edges.

Optional tables: a KPI declares here, once, which optional canonical tables
(:data:`~crm_batch.source.frames.OPTIONAL_TABLES`) its computation reads. ``needs``:
without one of them the KPI has no data and is null (:func:`missing_kpis`), never a
false 0. ``partial_without``: the KPI is still meaningful without that table but loses
a signal (churn warnings without the complaint signal when tickets are not mapped);
outputs say so (:func:`partial_kpis`). A test computes every KPI with each optional
table emptied and checks that exactly the declared KPIs move.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import Literal

from crm_batch.source.frames import OPTIONAL_TABLES

Unit = Literal["ratio", "count", "money", "days", "score", "ratio_delta"]
Direction = Literal["up", "down", "neutral"]  # which way is good

#: ``needs`` / ``partial_without`` values of the KPI declarations.
LEADS = frozenset({"leads"})
TICKETS = frozenset({"tickets"})
TOUCHES = frozenset({"touches"})
CAMPAIGNS_AND_TOUCHES = frozenset({"campaigns", "touches"})

#: Modules that declare ``KPIS``; add a module here when it adds KPIs.
KPI_MODULES: tuple[str, ...] = (
    "crm_batch.kpi.facts",
    "crm_batch.kpi.segments",
    "crm_batch.kpi.churn",
    "crm_batch.kpi.predict",
    "crm_batch.kpi.repurchase",
    "crm_batch.kpi.conversion",
    "crm_batch.kpi.referral",
    "crm_batch.kpi.pareto",
    "crm_batch.kpi.service",
    "crm_batch.kpi.campaigns",
    "crm_batch.kpi.migration",
    "crm_batch.kpi.care",
)


@dataclass(frozen=True)
class KpiDefinition:
    """What a KPI is called, how it is shown and what it means."""

    name: str  # the stable key: JSON output, snapshots, targets settings
    label_zh: str
    label_en: str
    unit: Unit
    direction: Direction
    definition_en: str  # one line
    definition_zh: str  # one line
    decimals: int = 1  # shown decimals (percent points for ratios)
    needs: frozenset[str] = frozenset()  # optional tables without which it is null
    partial_without: frozenset[str] = frozenset()  # optional tables it can do without

    def label(self, language: str) -> str:
        """The label in ``zh-CN`` or ``en``."""
        return self.label_zh if language == "zh-CN" else self.label_en

    def definition(self, language: str) -> str:
        """The one-line definition in ``zh-CN`` or ``en``."""
        return self.definition_zh if language == "zh-CN" else self.definition_en


@cache
def registry() -> dict[str, KpiDefinition]:
    """All KPIs by name, in declaration order."""
    found: dict[str, KpiDefinition] = {}
    for module_name in KPI_MODULES:
        module = importlib.import_module(module_name)
        for kpi in module.KPIS:
            if kpi.name in found:
                raise ValueError(f"KPI {kpi.name!r} is declared twice (again in {module_name})")
            unknown = (kpi.needs | kpi.partial_without) - set(OPTIONAL_TABLES)
            if unknown:
                raise ValueError(
                    f"KPI {kpi.name!r} declares {', '.join(sorted(unknown))}: not an optional "
                    f"table (one of {', '.join(OPTIONAL_TABLES)})"
                )
            found[kpi.name] = kpi
    return found


def _in_table_order(tables: Collection[str]) -> tuple[str, ...]:
    return tuple(t for t in OPTIONAL_TABLES if t in tables)


def missing_kpis(absent_tables: Collection[str]) -> dict[str, tuple[str, ...]]:
    """KPIs without data when ``absent_tables`` are not mapped: name -> the absent tables
    it needs (in :data:`OPTIONAL_TABLES` order), registry order."""
    return {
        kpi.name: _in_table_order(kpi.needs & set(absent_tables))
        for kpi in registry().values()
        if kpi.needs & set(absent_tables)
    }


def partial_kpis(absent_tables: Collection[str]) -> dict[str, tuple[str, ...]]:
    """KPIs computed without a signal when ``absent_tables`` are not mapped: name -> the
    absent tables left out (KPIs already in :func:`missing_kpis` are not repeated)."""
    missing = missing_kpis(absent_tables)
    return {
        kpi.name: _in_table_order(kpi.partial_without & set(absent_tables))
        for kpi in registry().values()
        if kpi.partial_without & set(absent_tables) and kpi.name not in missing
    }
