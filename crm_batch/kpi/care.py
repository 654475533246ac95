"""Care calendar (情感链接): birthdays and first-order anniversaries coming up after T.

Input: the register ``customers`` (customer_id, name, team, owner, birthday,
marketing_opt_out) with each buyer's ``first_order_date`` (up to T).

Definitions (DESIGN.md and the seeds' "greet 2 days before birthdays and holidays",
details chosen here):

* events are **birthdays** (any registered customer with a known birthday) and
  **anniversaries** of the first paid order (1 year and more; prospects have none);
* an event is listed when it falls in the next ``care_lookahead_days`` (7) days after
  T: T+1 .. T+7 (T itself is past: its greeting was due two days earlier, when it was
  listed). The window runs over the year end (28 Dec lists 1-4 Jan of the next year);
* a 29 February date is celebrated on **28 February** in years without it;
* the greeting is **due** ``care_lead_days`` (2) days before the event; ``is_due``
  marks greetings due on or before T (the ones to send today);
* ``years`` is the age turned (birthday) or the years since the first order;
* customers who opted out of marketing are listed with ``marketing_opt_out`` set, so
  staff can greet them without an offer.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm_batch.kpi.definitions import KpiDefinition

#: Columns of :func:`care_calendar`, in order.
CARE_COLUMNS = (
    "customer_id",
    "name",
    "team",
    "owner",
    "event",
    "event_date",
    "due_date",
    "is_due",
    "years",
    "marketing_opt_out",
)

KPIS = (
    KpiDefinition(
        "care_events_7d",
        "7天内关怀事件数",
        "Care events, next 7 days",
        "count",
        "neutral",
        "Birthdays and first-order anniversaries in the next 7 days (greeting 2 days before).",
        "未来7天内的客户生日与首单纪念日数(提前2天问候)。",
        0,
    ),
    KpiDefinition(
        "care_greetings_due",
        "今日应问候数",
        "Greetings due",
        "count",
        "neutral",
        "Listed care events whose greeting is due today or earlier.",
        "已列出的关怀事件中,问候日期为今天或更早的数量。",
        0,
    ),
)


def occurrence_in_year(dates: pd.Series, year: int) -> pd.Series:
    """The month/day of ``dates`` in ``year``; 29 February becomes 28 February if needed."""
    month = dates.dt.month.to_numpy(dtype="float64")
    day = dates.dt.day.to_numpy(dtype="float64")
    if not calendar.isleap(year):
        day = np.where((month == 2) & (day == 29), 28.0, day)
    known = ~np.isnan(month)
    result = pd.Series(pd.NaT, index=dates.index, dtype="datetime64[ns]")
    if known.any():
        parts = pd.DataFrame(
            {"year": year, "month": month[known].astype("int64"), "day": day[known].astype("int64")}
        )
        result.loc[known] = pd.to_datetime(parts).to_numpy()
    return result


def _events(
    dates: pd.Series, kind: str, as_of: date, lookahead_days: int, min_years: int
) -> pd.DataFrame:
    """Occurrences of ``dates`` in (as_of, as_of + lookahead]; one row per hit."""
    start = pd.Timestamp(as_of)
    stop = pd.Timestamp(as_of + timedelta(days=lookahead_days))
    found = []
    for year in range(as_of.year, stop.year + 1):
        when = occurrence_in_year(dates, year)
        years = year - dates.dt.year
        hit = (when > start) & (when <= stop) & (years >= min_years)
        found.append(
            pd.DataFrame(
                {"position": np.flatnonzero(hit.to_numpy()), "event_date": when[hit].to_numpy()}
            ).assign(years=years[hit].to_numpy(dtype="int64"), event=kind)
        )
    return pd.concat(found, ignore_index=True)


def care_calendar(
    customers: pd.DataFrame,
    as_of: date,
    lookahead_days: int = 7,
    lead_days: int = 2,
) -> pd.DataFrame:
    """Birthdays and anniversaries after ``as_of``, by due date (see the module).

    ``customers`` is the register with each buyer's ``first_order_date`` (NaT for
    prospects; :func:`crm_batch.kpi.keys.attach` adds it from ``first_orders``).
    """
    register = customers.reset_index(drop=True)
    first_dates = register["first_order_date"].astype("datetime64[ns]")
    events = pd.concat(
        [
            _events(register["birthday"], "birthday", as_of, lookahead_days, 0),
            _events(first_dates, "anniversary", as_of, lookahead_days, 1),
        ],
        ignore_index=True,
    )
    people = register.iloc[events["position"].to_numpy()].reset_index(drop=True)
    result = pd.DataFrame(
        {
            "customer_id": people["customer_id"].astype("string"),
            "name": people["name"].astype("string"),
            "team": people["team"].astype("string"),
            "owner": people["owner"].astype("string"),
            "event": events["event"].astype("string"),
            "event_date": events["event_date"].astype("datetime64[ns]"),
        }
    )
    result["due_date"] = result["event_date"] - pd.Timedelta(days=lead_days)
    result["is_due"] = result["due_date"] <= pd.Timestamp(as_of)
    result["years"] = events["years"].astype("int64")
    result["marketing_opt_out"] = people["marketing_opt_out"].astype("boolean")
    result = result.sort_values(
        ["due_date", "event", "customer_id"], kind="stable", ignore_index=True
    )
    return result[list(CARE_COLUMNS)]


def care_kpis(calendar_frame: pd.DataFrame) -> dict[str, float]:
    """The KPIs of :data:`KPIS` over a care calendar (filter it for a team)."""
    return {
        "care_events_7d": float(len(calendar_frame)),
        "care_greetings_due": float(calendar_frame["is_due"].sum()),
    }
