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


def finished_quarter(quarter: Period | None, business_date: date) -> Period:
    """The quarter a review of ``business_date`` covers: ``quarter``, or by default the
    last one that ended on or before ``business_date`` (:func:`last_complete_quarter`).

    The one check that a quarter is finished: ValueError (callers turn it into their
    own error) when ``quarter`` is not a quarter or ends after ``business_date``.
    """
    chosen = quarter or last_complete_quarter(business_date)
    if chosen.kind != "quarter":
        raise ValueError(f"{chosen.label} is not a quarter: use e.g. 2026Q3")
    if chosen.end > business_date:
        raise ValueError(
            f"quarter {chosen.label} ends {chosen.end.isoformat()}, after the business date "
            f"{business_date.isoformat()}: the quarterly review covers finished quarters"
        )
    return chosen


# -- calendar windows of the KPI definitions ---------------------------------------------
# Computed here, below both layers, because the SQL extraction binds them and the KPI
# layer reads what the SQL returned with the same boundaries.

#: Cohorts (months) shown in the cohort matrix.
COHORT_MONTHS = 12


def months_before(first_of_month: date, months: int) -> date:
    """The first day of the month ``months`` months before ``first_of_month``'s month."""
    index = first_of_month.year * 12 + first_of_month.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class QuietWindow:
    """Calendar boundaries of the churn warning for one T (all first days of months).

    Lookback ``[lookback_start, quiet_start)``, quiet months ``[quiet_start, quiet_end)``,
    the incomplete month of T ``[quiet_end, T]`` (empty when T is a month's last day).
    """

    lookback_start: date
    quiet_start: date
    quiet_end: date


def quiet_window(as_of: date, quiet_months: int, lookback_months: int) -> QuietWindow:
    """The ``quiet_months`` full calendar months completed by ``as_of`` and the
    ``lookback_months`` before them (settings ``thresholds.churn_quiet_months`` and
    ``thresholds.churn_lookback_months``)."""
    next_day = as_of + timedelta(days=1)
    quiet_end = next_day if next_day.day == 1 else as_of.replace(day=1)
    quiet_start = months_before(quiet_end, quiet_months)
    return QuietWindow(months_before(quiet_start, lookback_months), quiet_start, quiet_end)


def cohort_start(as_of: date, cohorts: int = COHORT_MONTHS) -> date:
    """First day of the oldest of the last ``cohorts`` cohort months up to ``as_of``'s month.

    cohort_activity.sql counts only customers whose first paid order is on or after
    this day: older cohorts are not in the matrix, and leaving them out spares the
    database most of the (customer, month) rows.
    """
    return months_before(date(as_of.year, as_of.month, 1), cohorts - 1)
