"""The per-customer table as of T: the register joined with the aggregated facts.

Definitions (DESIGN.md "KPI definitions"; windows are half-open ``(T-N days, T]``):

* **paid orders only, refunds net out**: a ``paid`` row is an order; a ``refunded`` row
  is money returned on its date (it lowers revenue, it is not an order); ``cancelled``
  rows are ignored. Revenue is therefore net and may be zero or negative.
* **buyer**: a customer with at least one paid order on or before T
  (``has_paid_order``). A customer whose only row is a refund is not a buyer.
* ``recency_days`` = T - last paid order date; ``tenure_days`` = T - first paid order
  date (both in days, NA without a paid order).
* ``aov`` = lifetime net revenue / lifetime paid orders (NaN without orders).
* ``order_days`` / ``repeat_paid``: distinct days with a paid order, and the paid amounts
  after the first of them: lifetimes' frequency + 1 and monetary value x frequency, the
  summary the value models fit on (:mod:`crm_batch.kpi.predict`).
* ``tickets_open`` / ``complaints_open_over_limit``: tickets open at the end of T, and
  complaints open longer than ``complaint_open_hours`` then.
* ``referrals_made`` / ``referrals_successful``: customers who name this customer in
  ``referred_by``, and those of them with a paid order.

Rows come from the register (customers.sql): every customer signed up on or before T,
prospects included. Facts of ids missing from the register are not in the table.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crm_batch.errors import DataError
from crm_batch.kpi.definitions import KpiDefinition
from crm_batch.kpi.keys import align_to, has_duplicate_keys

if TYPE_CHECKING:
    from crm_batch.source.frames import SourceFrames

#: Threads that place the joined columns on the register's rows.
_SPREAD_THREADS = max(1, min(4, os.cpu_count() or 1))

#: Frames joined onto the register, with the sql/ file each comes from (for messages).
_JOINED = (
    ("facts", "customer_facts.sql"),
    ("service", "customer_service.sql"),
    ("referrals", "customer_referrals.sql"),
    ("churn_window", "customer_churn_window.sql"),
)
#: Columns of the joined queries that stay out of the table: the facts' row counts
#: serve the revenue reconciliation (crm_batch.app.reconciliation), not the KPIs.
_NOT_IN_TABLE = frozenset({"order_rows"})

KPIS = (
    KpiDefinition(
        "customers_total",
        "注册客户数",
        "Registered customers",
        "count",
        "up",
        "Customers signed up on or before the date, prospects included.",
        "截至当日已注册的客户数(含未成交的潜在客户)。",
        0,
    ),
    KpiDefinition(
        "buyers_total",
        "成交客户数",
        "Buyers (lifetime)",
        "count",
        "up",
        "Registered customers with at least one paid order on or before the date.",
        "截至当日至少有一笔已付款订单的客户数。",
        0,
    ),
    KpiDefinition(
        "buyers_12m",
        "近12个月购买客户数",
        "Buyers, last 12 months",
        "count",
        "up",
        "Customers with a paid order in the last 365 days.",
        "近365天内有已付款订单的客户数。",
        0,
    ),
    KpiDefinition(
        "orders_12m",
        "近12个月订单数",
        "Orders, last 12 months",
        "count",
        "up",
        "Paid orders in the last 365 days (refunds and cancellations are not orders).",
        "近365天已付款订单数(退款和取消不计)。",
        0,
    ),
    KpiDefinition(
        "revenue_12m",
        "近12个月净销售额",
        "Net revenue, last 12 months",
        "money",
        "up",
        "Paid minus refunded amounts dated in the last 365 days.",
        "近365天已付款金额减去退款金额。",
        0,
    ),
    KpiDefinition(
        "aov_12m",
        "近12个月客单价",
        "Average order value, last 12 months",
        "money",
        "up",
        "Net revenue of the last 365 days divided by the paid orders in them.",
        "近365天净销售额除以同期已付款订单数。",
        0,
    ),
)


def customer_table(frames: SourceFrames, as_of: date) -> pd.DataFrame:
    """One row per registered customer with facts, service and referral columns.

    Count columns without a source row become 0 and money columns 0.0; dates stay NaT.
    Raises :class:`DataError` when a query returns the same customer_id twice.
    """
    customers = frames.customers.reset_index(drop=True)
    if has_duplicate_keys(customers["customer_id"]):
        raise _duplicates_error(customers, "customers.sql")
    joined = [(getattr(frames, field), source) for field, source in _JOINED]
    alignments = align_to(customers["customer_id"], [frame["customer_id"] for frame, _ in joined])
    jobs: dict[str, tuple[pd.Series, np.ndarray, np.ndarray]] = {}
    for (frame, source), alignment in zip(joined, alignments, strict=True):
        if alignment.repeated:
            raise _duplicates_error(frame, source)
        absent = alignment.rows < 0
        for column in frame.columns.drop("customer_id"):
            if column not in _NOT_IN_TABLE:
                jobs[column] = (frame[column], alignment.rows, absent)
    # NumPy's gathers release the GIL, and on a million rows the time goes into them
    # and into first touching their new arrays: two threads do it in about half the time
    with ThreadPoolExecutor(max_workers=_SPREAD_THREADS) as pool:
        columns = dict(zip(jobs, pool.map(lambda job: _spread(*job), jobs.values()), strict=True))
    t = pd.Timestamp(as_of)
    orders = columns["orders_total"].to_numpy()
    has_orders = orders > 0
    aov = np.full(len(orders), np.nan)
    np.divide(columns["revenue_total"].to_numpy(), orders, out=aov, where=has_orders)
    derived = {
        "recency_days": _days_between(columns["last_order_date"], t),
        "tenure_days": _days_between(columns["first_order_date"], t),
        "aov": pd.Series(aov, copy=False),
        "has_paid_order": pd.Series(has_orders, copy=False),
    }
    # one frame without stacking the new columns into 2-D blocks (a copy of every column
    # of a million rows); copy-on-write keeps the register's frame safe from changes
    data = {name: customers[name] for name in customers.columns} | columns | derived
    return pd.DataFrame(data, index=customers.index, copy=False)


def fact_kpis(table: pd.DataFrame) -> dict[str, float]:
    """The KPIs of :data:`KPIS` over ``table`` (the whole table: filter it for a team)."""
    orders_12m = float(table["orders_12m"].sum())
    revenue_12m = float(table["revenue_12m"].sum())
    return {
        "customers_total": float(len(table)),
        "buyers_total": float(table["has_paid_order"].sum()),
        "buyers_12m": float((table["orders_12m"] > 0).sum()),
        "orders_12m": orders_12m,
        "revenue_12m": revenue_12m,
        "aov_12m": revenue_12m / orders_12m if orders_12m > 0 else float("nan"),
    }


def _duplicates_error(frame: pd.DataFrame, source: str) -> DataError:
    """The error for a query that returned a customer_id twice, with a sample of them."""
    ids = frame["customer_id"].dropna()
    repeated = ids[ids.duplicated(keep=False)].astype(str)
    extra = len(repeated) - repeated.nunique()
    sample = ", ".join(repeated.unique()[:5])
    return DataError(
        f"{source} returned {extra} duplicate customer_id row(s) (e.g. {sample}); it must "
        "return at most one row per customer"
    )


def _spread(values: pd.Series, rows: np.ndarray, absent: np.ndarray) -> pd.Series:
    """``values`` placed on the register's rows (``rows``: row in ``values``, -1 for
    none, ``absent`` = ``rows < 0``); counts 0, amounts 0.0, others missing.

    Numbers are gathered straight into the one new array the column needs and the
    absent rows zeroed in place: on a million rows each extra temporary array costs
    more (fresh memory) than the gather itself. pandas would copy the new array again,
    hence ``copy=False``.
    """
    numeric = pd.api.types.is_integer_dtype(values) or pd.api.types.is_float_dtype(values)
    if numeric and len(values) == 0:
        kind = "int64" if pd.api.types.is_integer_dtype(values) else "float64"
        return pd.Series(np.zeros(len(rows), dtype=kind), copy=False)
    if pd.api.types.is_integer_dtype(values):
        gathered = values.to_numpy(dtype="int64", na_value=0).take(rows)  # -1: last row
        gathered[absent] = 0
        return pd.Series(gathered, copy=False)
    if pd.api.types.is_float_dtype(values):
        gathered = values.to_numpy(dtype="float64").take(rows)
        gathered[absent] = 0.0
        if values.hasnans:
            np.nan_to_num(gathered, copy=False, nan=0.0)
        return pd.Series(gathered, copy=False)
    if values.dtype == "datetime64[ns]" and len(values):  # as numbers, NaT where absent
        nanos = values.to_numpy().view("int64").take(rows)
        nanos[absent] = np.datetime64("NaT", "ns").view("int64")
        return pd.Series(nanos.view("datetime64[ns]"), copy=False)
    # other dates and timestamps, text: take with -1 = missing
    return pd.Series(values.array.take(rows, allow_fill=True), copy=False)


def _days_between(dates: pd.Series, t: pd.Timestamp) -> pd.Series:
    """Whole days from each date to ``t`` (floored like ``Timedelta.days``), NA for NaT.

    Computed in one new int64 array (nanoseconds, then days in place)."""
    nanos = dates.to_numpy(dtype="datetime64[ns]").view("int64")
    missing = np.isnat(nanos.view("datetime64[ns]"))
    days = np.subtract(t.as_unit("ns").value, nanos)  # NaT wraps around; zeroed below
    days //= 86_400 * 10**9
    days[missing] = 0
    return pd.Series(pd.arrays.IntegerArray(days, missing), index=dates.index, copy=False)
