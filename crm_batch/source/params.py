"""The standard bind parameters every sql/ query may use, derived from a business date.

Python computes window boundaries so that the SQL needs no dialect-specific date
arithmetic. Conventions (see the README's sql/ section):

* rolling windows ending at T are half-open ``(start, T]``: ``order_date > :start_12m
  and order_date <= :as_of``;
* calendar periods are closed on dates, ``order_date between :period_start and
  :period_end``, and half-open on timestamps, ``created_at >= :period_start_at and
  created_at < :period_end_at``;
* ``:as_of_end_at`` is midnight after T: a timestamp ``< :as_of_end_at`` happened on or
  before T.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

#: The four rolling "quarters" of the last 365 days end at T-273, T-182, T-91 and T:
#: (T-365, T-273] (T-273, T-182] (T-182, T-91] (T-91, T] = 92 + 91 + 91 + 91 days.
ROLLING_QUARTER_ENDS = (273, 182, 91)


def standard_params(
    as_of: date,
    period_start: date | None = None,
    period_end: date | None = None,
    *,
    complaint_open_hours: float = 24.0,
) -> dict[str, Any]:
    """All standard parameters for business date ``as_of`` and an optional period."""
    params: dict[str, Any] = {
        "as_of": as_of,
        "as_of_end_at": datetime.combine(as_of + timedelta(days=1), time.min),
        "start_12m": as_of - timedelta(days=365),
        "start_90d": as_of - timedelta(days=90),
        "q1_end": as_of - timedelta(days=ROLLING_QUARTER_ENDS[0]),
        "q2_end": as_of - timedelta(days=ROLLING_QUARTER_ENDS[1]),
        "q3_end": as_of - timedelta(days=ROLLING_QUARTER_ENDS[2]),
    }
    params["complaint_cutoff_at"] = params["as_of_end_at"] - timedelta(hours=complaint_open_hours)
    if period_start is not None and period_end is not None:
        params.update(
            period_start=period_start,
            period_end=period_end,
            period_start_at=datetime.combine(period_start, time.min),
            period_end_at=datetime.combine(period_end + timedelta(days=1), time.min),
        )
    return params
