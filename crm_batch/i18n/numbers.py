"""Numbers, money, percentages and dates as a reader of zh-CN or English expects them:
the one formatter of every number a person reads (tables, workbooks tiles, PDFs).

Two locales only, so a small formatter instead of a locale library: both use ``,`` for
thousands and ``.`` for decimals; they differ in dates (``2026年6月30日`` / ``30 Jun
2026``), units (``天`` / ``d``) and the currency sign (``¥`` for CNY in zh-CN, the ISO
code elsewhere, so an English reader never mistakes yuan for yen).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Protocol


class Measured(Protocol):
    """What formatting needs of a KPI definition: its unit and decimals."""

    @property
    def unit(self) -> str: ...

    @property
    def decimals(self) -> int: ...


DASH = "–"
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIGNS_ZH = {"CNY": "¥", "RMB": "¥"}


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value: float | None, decimals: int = 0) -> str:
    """``1,234`` / ``1,234.5``; a dash for a missing value."""
    if _missing(value):
        return DASH
    return f"{value:,.{decimals}f}"


def percent(value: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage: 0.253 -> ``25.3%``."""
    if _missing(value):
        return DASH
    return f"{value * 100:,.{decimals}f}%"


def money(value: float | None, language: str, currency: str) -> str:
    """``¥12,346`` (zh-CN, CNY) or ``CNY 12,346``: whole units, cents below 100 (a cost
    per touch of 77.19); zero is ``CNY 0``, not ``CNY 0.00`` beside ``CNY 18,044``."""
    if _missing(value):
        return DASH
    decimals = 0 if abs(value) >= 100 or value == 0 else 2
    amount = f"{abs(value):,.{decimals}f}"
    sign = "-" if value < 0 else ""
    symbol = _SIGNS_ZH.get(currency.upper()) if language == "zh-CN" else None
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{currency} {amount}"


def day(value: date | datetime | None, language: str) -> str:
    """A date: ``2026年6月30日`` or ``30 Jun 2026``; a dash for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    try:
        if value != value:  # NaT
            return DASH
    except TypeError:
        return DASH
    if language == "zh-CN":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def moment(value: datetime, language: str) -> str:
    """A time of day with its date and timezone, for a report's generation time:
    ``2026年7月1日 06:00 (Asia/Shanghai, UTC+08:00)``. A naive ``value`` has no zone
    to show and is written without one."""
    text = f"{day(value, language)} {value:%H:%M}"
    offset = value.utcoffset()
    if offset is None:
        return text
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    utc = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    key = getattr(value.tzinfo, "key", None)  # zoneinfo's IANA name
    return f"{text} ({key}, {utc})" if key else f"{text} ({utc})"


def kpi_value(kpi: Measured, value: float | None, language: str, currency: str) -> str:
    """A registry KPI formatted by its unit for ``language``."""
    if _missing(value):
        return DASH
    if kpi.unit == "ratio":
        return percent(value, kpi.decimals)
    if kpi.unit == "ratio_delta":
        points = f"{value * 100:+,.{kpi.decimals}f}"
        return f"{points} 个百分点" if language == "zh-CN" else f"{points} pp"
    if kpi.unit == "count":
        return number(value)
    if kpi.unit == "money":
        return money(value, language, currency)
    if kpi.unit == "days":
        return f"{value:,.0f} 天" if language == "zh-CN" else f"{value:,.0f} d"
    return number(value, max(kpi.decimals, 2))
