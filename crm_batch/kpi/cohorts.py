"""Cohort retention: first-order month x months since, the share of the cohort buying.

Input: ``activity`` (cohort_activity.sql), counted inside the database: per team,
cohort month (the month of the customer's first paid order, as YYYYMM) and months since
it, the number of the cohort's customers with a paid order in that calendar month.

Definition (DESIGN.md "Cohorts"): cell (cohort *c*, month *k*) = customers of *c* with a
paid order in the *k*-th calendar month after *c*'s month / customers of *c*. Month 0 is
the cohort month itself, so its share is 1.0 by construction. Months that have not
started by T are NaN (not yet observable); the month containing T counts the orders up
to T. Refunds do not undo a purchase; cancelled rows are ignored. A customer's cohort
follows their current team.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crm_batch.periods import COHORT_MONTHS

#: The first column of :func:`cohort_matrix`; the others are months since (0, 1, ...).
SIZE_COLUMN = "cohort_size"


def _month_index(yyyymm: pd.Series | np.ndarray) -> np.ndarray:
    values = np.asarray(yyyymm, dtype="int64")
    return (values // 100) * 12 + (values % 100 - 1)


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def cohort_matrix(
    activity: pd.DataFrame, as_of: date, cohorts: int = COHORT_MONTHS
) -> pd.DataFrame:
    """The retention matrix of the last ``cohorts`` cohort months up to ``as_of``'s month.

    Index: cohort month ``YYYY-MM`` (named ``cohort_month``); columns: ``cohort_size``
    then months since 0 .. ``cohorts - 1`` (ints). Teams in ``activity`` are summed
    (filter it first for one team). Cohorts without customers are left out.
    """
    last = as_of.year * 12 + as_of.month - 1
    first = last - cohorts + 1
    months = list(range(cohorts))
    if activity.empty:
        empty = pd.DataFrame(columns=[SIZE_COLUMN, *months], dtype="float64")
        empty.index = pd.Index([], name="cohort_month", dtype="object")
        return empty
    cohort = _month_index(activity["cohort_month"])
    since = activity["months_since"].to_numpy(dtype="int64")
    counts = activity["customers"].to_numpy(dtype="int64")
    keep = (cohort >= first) & (cohort <= last) & (since < cohorts)
    grid = (
        pd.DataFrame({"cohort": cohort[keep], "since": since[keep], "customers": counts[keep]})
        .groupby(["cohort", "since"])["customers"]
        .sum()
        .unstack("since")
        .reindex(columns=months)
    )
    sizes = grid[0]
    grid = grid[sizes.notna() & (sizes > 0)]
    sizes = sizes[grid.index].astype("float64")
    shares = grid.fillna(0.0).div(sizes, axis=0)
    observable = (grid.index.to_numpy()[:, None] + np.array(months)[None, :]) <= last
    shares = shares.where(observable)
    shares.insert(0, SIZE_COLUMN, sizes)
    shares.index = pd.Index([_label(i) for i in grid.index], name="cohort_month")
    shares.columns = pd.Index([SIZE_COLUMN, *months], dtype="object")
    return shares
