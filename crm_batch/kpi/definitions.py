"""The KPI registry: one entry per KPI, read by the workbooks, the PDFs and the README.

Each KPI module declares its entries in a module-level ``KPIS`` tuple next to the code
that computes them; :func:`registry` collects them (and rejects duplicates), so a KPI's
definition lives once, beside its implementation.

Rates are stored as fractions (0.25 = 25 %) and formatted only at the edges.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Literal

Unit = Literal["ratio", "count", "money", "days", "score", "ratio_delta"]
Direction = Literal["up", "down", "neutral"]  # which way is good

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
            found[kpi.name] = kpi
    return found
