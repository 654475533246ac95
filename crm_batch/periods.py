"""Calendar periods (month, quarter, year) named as users type them.

``2026Q3``, ``2026-07`` and ``2026`` parse to a :class:`Period` with inclusive first
and last dates. Periods are calendar periods in the configured timezone; because
business dates are already local dates, no timezone arithmetic is needed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

PeriodKind = Literal["month", "quarter", "year"]

_QUARTER = re.compile(r"^(?P<year>\d{4})-?[Qq](?P<q>[1-4])$")
_MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^(?P<year>\d{4})$")


@dataclass(frozen=True, order=True)
class Period:
    """A calendar period: ``start`` and ``end`` are both inclusive dates."""

    start: date
    end: date
    kind: PeriodKind

    @property
    def label(self) -> str:
        """The canonical name: ``2026Q3``, ``2026-07`` or ``2026``."""
        if self.kind == "quarter":
            return f"{self.start.year}Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        return f"{self.start.year}"

    def __str__(self) -> str:
        return self.label

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return period_containing(self.start - timedelta(days=1), self.kind)

    def next(self) -> Period:
        """The period of the same kind just after this one."""
        return period_containing(self.end + timedelta(days=1), self.kind)

    def year_before(self) -> Period:
        """The same period one year earlier."""
        return period_containing(self.start.replace(year=self.start.year - 1), self.kind)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_period(text: str) -> Period:
    """Parse ``2026Q3`` / ``2026-q3``, ``2026-07`` or ``2026``; ValueError names the input."""
    value = text.strip()
    if match := _QUARTER.match(value):
        year, quarter = int(match["year"]), int(match["q"])
        return period_containing(date(year, 3 * quarter - 2, 1), "quarter")
    if match := _MONTH.match(value):
        return period_containing(date(int(match["year"]), int(match["month"]), 1), "month")
    if match := _YEAR.match(value):
        return period_containing(date(int(match["year"]), 1, 1), "year")
    raise ValueError(f"not a period: {text!r} (use 2026Q3, 2026-07 or 2026)")


def period_containing(day: date, kind: PeriodKind) -> Period:
    """The month, quarter or year that contains ``day``."""
    if kind == "year":
        return Period(date(day.year, 1, 1), date(day.year, 12, 31), "year")
    if kind == "quarter":
        first_month = 3 * ((day.month - 1) // 3) + 1
        start = date(day.year, first_month, 1)
    elif kind == "month":
        start = date(day.year, day.month, 1)
    else:
        raise ValueError(f"unknown period kind {kind!r}")
    months = 3 if kind == "quarter" else 1
    month_after = start.month + months
    year_after = start.year + (month_after - 1) // 12
    month_after = (month_after - 1) % 12 + 1
    return Period(start, date(year_after, month_after, 1) - timedelta(days=1), kind)


def last_complete_quarter(as_of: date) -> Period:
    """The last quarter that ended on or before ``as_of``."""
    current = period_containing(as_of, "quarter")
    return current if current.end == as_of else current.previous()
