"""Showing values to people: KPI numbers by unit and language, and spreadsheet-safe text.

Rates are stored as fractions and formatted only here, at the edges.
"""

from __future__ import annotations

import math

from crm_batch.kpi.definitions import KpiDefinition

#: A cell whose text starts with one of these is a formula in Excel/LibreOffice/Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def format_kpi(kpi: KpiDefinition, value: float | None, *, currency: str = "CNY") -> str:
    """``value`` as a reader expects it: 25.3 %, 1,234, CNY 12,345.67, 3.84, 12 d."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kpi.unit == "ratio":
        return f"{value * 100:,.{kpi.decimals}f} %"
    if kpi.unit == "ratio_delta":
        return f"{value * 100:+,.{kpi.decimals}f} pp"
    if kpi.unit == "count":
        return f"{value:,.0f}"
    if kpi.unit == "money":
        # cents matter on small amounts (order values), not on revenue totals
        return f"{currency} {value:,.{0 if abs(value) >= 100_000 else 2}f}"
    if kpi.unit == "days":
        return f"{value:,.0f} d"
    return f"{value:,.{max(kpi.decimals, 2)}f}"


def spreadsheet_safe(text: str | None) -> str | None:
    """Text that a spreadsheet will show as text, never run as a formula.

    A leading formula character gets a ``'`` in front (the OWASP advice for CSV
    injection); everything else is unchanged. Numbers must not pass through here.
    """
    if text is None:
        return None
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text
