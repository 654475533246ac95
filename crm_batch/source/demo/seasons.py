"""The demo's calendar: the history window, seasonal demand and times of day.

Chinese retail and B2B demand dips around the Spring Festival (the lunar new year,
whose date moves between 21 January and 20 February), peaks at the 618 mid-year sale
(18 June) and at Double 11 (11 November), with a smaller Double 12. Dates are sampled
by inverse transform on the cumulative daily weights, so any number of events in any
per-row interval is drawn in one vectorised step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

#: Lunar new year's day (the first day of the Spring Festival), 2010-2040.
LUNAR_NEW_YEAR: dict[int, date] = {
    year: date(year, month, day)
    for year, month, day in (
        (2010, 2, 14), (2011, 2, 3), (2012, 1, 23), (2013, 2, 10), (2014, 1, 31),
        (2015, 2, 19), (2016, 2, 8), (2017, 1, 28), (2018, 2, 16), (2019, 2, 5),
        (2020, 1, 25), (2021, 2, 12), (2022, 2, 1), (2023, 1, 22), (2024, 2, 10),
        (2025, 1, 29), (2026, 2, 17), (2027, 2, 6), (2028, 1, 26), (2029, 2, 13),
        (2030, 2, 3), (2031, 1, 23), (2032, 2, 11), (2033, 1, 31), (2034, 2, 19),
        (2035, 2, 8), (2036, 1, 28), (2037, 2, 15), (2038, 2, 4), (2039, 1, 24),
        (2040, 2, 12),
    )
}  # fmt: skip

#: Monday..Sunday demand (a B2B-heavy mix: quieter weekends).
_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 1.05, 0.85, 0.7])
#: Hour-of-day profiles for timestamps: office hours, and office hours plus evenings.
_OFFICE_HOURS = np.array(
    [0, 0, 0, 0, 0, 0, 0, 1, 4, 9, 10, 9, 5, 7, 9, 9, 8, 5, 2, 1, 1, 0.5, 0.2, 0], dtype=float
)
_CONSUMER_HOURS = np.array(
    [0.3, 0.1, 0, 0, 0, 0, 0.2, 1, 3, 6, 7, 7, 5, 6, 6, 6, 5, 4, 4, 6, 8, 8, 5, 1.5], dtype=float
)


def lunar_new_year(year: int) -> date:
    """Lunar new year's day of ``year``; 4 February (its average) outside the table."""
    return LUNAR_NEW_YEAR.get(year, date(year, 2, 4))


@dataclass(frozen=True)
class Window:
    """The demo's history: ``days`` calendar days ending at ``end`` (inclusive).

    Days are numbered from 0 (``start``); generators work on these small integers and
    turn them into dates only when the frames are assembled.
    """

    start: date
    end: date

    @classmethod
    def ending(cls, end: date, years: int) -> Window:
        """The ``years`` calendar years up to and including ``end``."""
        try:
            first = end.replace(year=end.year - years)
        except ValueError:  # 29 February
            first = end.replace(year=end.year - years, day=28)
        return cls(first + timedelta(days=1), end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def last(self) -> int:
        """The index of ``end``."""
        return self.days - 1

    def dates(self, day: np.ndarray) -> np.ndarray:
        """Day indices -> ``datetime64[ns]`` dates."""
        return (np.datetime64(self.start, "D") + day.astype("timedelta64[D]")).astype(
            "datetime64[ns]"
        )

    def timestamps(self, seconds: np.ndarray) -> np.ndarray:
        """Seconds since the start of the window -> ``datetime64[ns]`` timestamps."""
        return (np.datetime64(self.start, "s") + seconds.astype("timedelta64[s]")).astype(
            "datetime64[ns]"
        )


def demand(window: Window) -> np.ndarray:
    """Relative order demand for each day of ``window`` (1.0 is an ordinary weekday)."""
    days = np.datetime64(window.start, "D") + np.arange(window.days)
    epoch_day = days.astype("int64")
    weight = _WEEKDAY[(epoch_day + 3) % 7]  # 1970-01-01 was a Thursday
    months = days.astype("datetime64[M]")
    month = months.astype("int64") % 12 + 1
    mday = (days - months.astype("datetime64[D]")).astype("int64") + 1

    # Spring Festival: New Year goods before it, the holiday itself, a slow restart
    years = days.astype("datetime64[Y]").astype("int64") + 1970
    festival = np.array([np.datetime64(lunar_new_year(int(y)), "D").astype("int64") for y in years])
    offset = epoch_day - festival
    for low, high, factor in ((-21, -8, 1.15), (-7, 7, 0.3), (8, 15, 0.6), (16, 21, 0.85)):
        weight = np.where((offset >= low) & (offset <= high), weight * factor, weight)

    # 618: a two-week run-up and the peak day; Double 11: three weeks and the peak
    for m, low, high, factor in (
        (6, 1, 15, 1.4),
        (6, 16, 17, 2.2),
        (6, 18, 18, 2.8),
        (6, 19, 20, 1.2),
        (10, 21, 31, 1.3),
        (11, 1, 9, 1.3),
        (11, 10, 10, 1.8),
        (11, 11, 11, 3.5),
        (11, 12, 13, 1.4),
        (12, 12, 12, 1.6),
    ):
        weight = np.where((month == m) & (mday >= low) & (mday <= high), weight * factor, weight)
    return weight


def cumulative(weight: np.ndarray) -> np.ndarray:
    """Cumulative weights with a leading 0, the table :func:`sample_days` draws from."""
    return np.concatenate(([0.0], np.cumsum(weight, dtype=np.float64)))


def sample_days(
    rng: np.random.Generator, cum: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """One day per row in ``[low, high]`` (inclusive), in proportion to the weights.

    ``cum`` comes from :func:`cumulative`; ``low`` and ``high`` are day-index arrays (or
    scalars) with ``low <= high``.
    """
    low = np.asarray(low, dtype=np.int64)
    high = np.asarray(high, dtype=np.int64)
    size = np.broadcast(low, high).shape
    u = cum[low] + rng.random(size) * (cum[high + 1] - cum[low])
    day = np.searchsorted(cum, u, side="right") - 1
    return np.clip(day, low, high).astype(np.int32)


def seconds_of_day(rng: np.random.Generator, size: int, *, consumer: bool = False) -> np.ndarray:
    """Random times of day in seconds, following office (or consumer) hours."""
    hours = _CONSUMER_HOURS if consumer else _OFFICE_HOURS
    hour = rng.choice(24, size=size, p=hours / hours.sum())
    return hour * 3600 + rng.integers(0, 3600, size=size)
