"""A KPI beside its value in the previous period: the rule the workbook Dashboard's tiles
and the diagnosis report's KPI tiles share.

The previous value is the stored snapshot (``kpi_snapshots``) of the scope at the
comparison day: the run's date moved into the previous period at the same distance from
its start (:func:`crm_batch.kpi.targets.baseline_as_of`, the rule the target tables
use), so quarter-to-date is compared with the previous quarter to the same day.
Point-in-time KPIs (customers, revenue of the last 12 months, warnings) accept the latest
snapshot of the previous period up to that day when the exact day is missing; period
KPIs (repurchase rate, new customers, win-backs) need the exact day, else there is no
previous value. Nothing is recomputed: every nightly run writes the snapshots.

Pure (numpy and pandas frames in, plain values out): the snapshots are read by
:mod:`crm_batch.app`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from crm_batch.kpi import targets
from crm_batch.kpi.definitions import registry
from crm_batch.periods import Period

#: KPIs measured at a point in time (not summed over the period).
POINT_IN_TIME_KPIS = frozenset(
    {
        "customers_total",
        "buyers_12m",
        "revenue_12m",
        "aov_12m",
        "active_count",
        "churn_warnings_count",
        "churn_warnings_high",
        "revenue_at_risk",
        "advocates",
    }
)

#: One scope's snapshots of one KPI: (days, values) in snapshot order.
History = tuple[np.ndarray, np.ndarray]

NO_HISTORY: History = (np.array([], dtype="datetime64[D]"), np.array([], dtype="float64"))


@dataclass(frozen=True)
class KpiTile:
    """A registry KPI now and in the previous period."""

    name: str
    current: float
    previous: float | None
    previous_as_of: date | None
    #: why the KPI has no value or is partial (an optional table is not mapped), in the
    #: output's language; '' when it is measured from every table it reads
    note: str = ""
    missing: bool = False  # no data: the tile shows a dash and the note

    @property
    def change(self) -> float | None:
        """Relative change for counts and money, percentage points (as a fraction) for
        ratios; None when either value is missing or the base is 0."""
        if self.previous is None or not _finite(self.current) or not _finite(self.previous):
            return None
        if registry()[self.name].unit in {"ratio", "ratio_delta"}:
            return self.current - self.previous
        if self.previous == 0:
            return None
        return (self.current - self.previous) / abs(self.previous)

    @property
    def change_is_points(self) -> bool:
        """Whether :attr:`change` is a difference of rates (shown in points)."""
        return registry()[self.name].unit in {"ratio", "ratio_delta"}


def _finite(value: float | None) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def history_by_kpi(history: pd.DataFrame) -> dict[str, History]:
    """One scope's snapshots (columns as_of, kpi, value) per KPI as (day, value) arrays,
    in the frame's order."""
    days = history["as_of"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    values = history["value"].to_numpy(dtype="float64", na_value=np.nan)
    kpis = history["kpi"].to_numpy(dtype=object)
    result = {}
    for name in pd.unique(kpis):
        chosen = kpis == name
        result[str(name)] = (days[chosen], values[chosen])
    return result


def tile(name: str, current: float, history: History, start: date, day: date) -> KpiTile:
    """``name``'s tile: the snapshot of ``day``, else (point-in-time KPIs) the latest
    from ``start`` up to ``day``; the last in snapshot order when there are several."""
    days, values = history
    wanted = np.datetime64(day, "D")
    chosen = np.flatnonzero(days == wanted)
    if not len(chosen) and name in POINT_IN_TIME_KPIS:
        chosen = np.flatnonzero((days >= np.datetime64(start, "D")) & (days <= wanted))
    if not len(chosen) or not math.isfinite(float(values[chosen[-1]])):
        return KpiTile(name, float(current), None, None)
    last = chosen[-1]
    return KpiTile(name, float(current), float(values[last]), days[last].astype(date))


def kpi_tiles(
    names: Iterable[str],
    current: Mapping[str, float],
    history: pd.DataFrame,
    requested: Period,
    as_of: date,
) -> tuple[KpiTile, ...]:
    """The tiles of ``names``: ``current`` values (a run's KPIs of ``requested``, measured
    up to ``as_of``) beside one scope's snapshots ``history`` (as_of, kpi, value)."""
    previous = requested.previous()
    day = targets.baseline_as_of(requested, as_of, previous)
    by_kpi = history_by_kpi(history)
    return tuple(
        tile(name, current.get(name, math.nan), by_kpi.get(name, NO_HISTORY), previous.start, day)
        for name in names
    )
