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
* ``tickets_open`` / ``complaints_open_over_limit``: tickets open at the end of T, and
  complaints open longer than ``complaint_open_hours`` then.
* ``referrals_made`` / ``referrals_successful``: customers who name this customer in
  ``referred_by``, and those of them with a paid order.

Rows come from the register (customers.sql): every customer signed up on or before T,
prospects included. Facts of ids missing from the register are not in the table.
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crm_batch.errors import DataError
from crm_batch.kpi.definitions import KpiDefinition
from crm_batch.kpi.keys import integer_keys

if TYPE_CHECKING:
    from crm_batch.source.extract import SourceFrames

#: Frames joined onto the register, with the sql/ file each comes from (for messages).
_JOINED = (
    ("facts", "customer_facts.sql"),
    ("service", "customer_service.sql"),
    ("referrals", "customer_referrals.sql"),
    ("churn_window", "customer_churn_window.sql"),
)

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
    joined = [(getattr(frames, field), source) for field, source in _JOINED]
    (register_codes, *frame_codes), n_codes = _key_codes([customers, *(f for f, _ in joined)])
    _check_unique(customers, register_codes, n_codes, "customers.sql")
    columns: dict[str, pd.Series] = {}
    for (frame, source), codes in zip(joined, frame_codes, strict=True):
        _check_unique(frame, codes, n_codes, source)
        # row of each register customer in ``frame`` (-1: none)
        row_of_code = np.full(n_codes + 1, -1, dtype="int64")
        row_of_code[codes] = np.arange(len(codes))
        row_of_code[-1] = -1  # a missing key (code -1) matches nothing
        rows = row_of_code[register_codes]
        for column in frame.columns.drop("customer_id"):
            columns[column] = _spread(frame[column], rows)
    t = pd.Timestamp(as_of)
    orders = columns["orders_total"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        aov = columns["revenue_total"].to_numpy(dtype="float64") / orders
    derived = {
        "recency_days": _days_between(columns["last_order_date"], t),
        "tenure_days": _days_between(columns["first_order_date"], t),
        "aov": pd.Series(np.where(orders > 0, aov, np.nan), copy=False),
        "has_paid_order": pd.Series(orders > 0, copy=False),
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


def _key_codes(frames: list[pd.DataFrame]) -> tuple[list[np.ndarray], int]:
    """customer_id of each frame as integer codes shared by all frames (-1 = missing).

    One factorization of all keys together: matching integers is much faster than
    hashing text keys once per join. Returns the codes per frame and the number of codes.
    """
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    numeric = [integer_keys(f["customer_id"]) for f in frames]
    if all(n is not None for n in numeric):  # integer ids: factorize int64, not text
        numbers = np.concatenate([n[0] for n in numeric])  # type: ignore[index]
        missing = np.concatenate([n[1] for n in numeric])  # type: ignore[index]
        codes = np.full(len(numbers), -1, dtype="int64")
        present_codes, uniques = pd.factorize(numbers[~missing])
        codes[~missing] = present_codes
        return [codes[a:b] for a, b in itertools.pairwise(bounds)], len(uniques)
    keys = pd.concat([f["customer_id"] for f in frames], ignore_index=True)
    codes, uniques = pd.factorize(keys)
    codes = codes.astype("int64")
    return [codes[a:b] for a, b in itertools.pairwise(bounds)], len(uniques)


def _check_unique(frame: pd.DataFrame, codes: np.ndarray, n_codes: int, source: str) -> None:
    counts = np.bincount(codes[codes >= 0], minlength=n_codes)
    if (counts <= 1).all():
        return
    duplicated = frame["customer_id"][counts[np.maximum(codes, 0)] > 1]
    sample = ", ".join(duplicated.astype(str).unique()[:5])
    raise DataError(
        f"{source} returned {int((counts[counts > 1] - 1).sum())} duplicate customer_id "
        f"row(s) (e.g. {sample}); it must return at most one row per customer"
    )


def _spread(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """``values`` placed on the register's rows (``rows``: row in ``values``, -1 for
    none); counts 0, amounts 0.0, others missing.

    Numbers are gathered in one pass from the values with the fill value appended, so
    row -1 picks the fill; pandas would copy each new million-row array again, hence
    ``copy=False``.
    """
    if pd.api.types.is_integer_dtype(values):
        source = values.to_numpy(dtype="int64", na_value=0)
        return pd.Series(np.append(source, 0)[rows], copy=False)
    if pd.api.types.is_float_dtype(values):
        source = np.nan_to_num(values.to_numpy(dtype="float64"), nan=0.0)
        return pd.Series(np.append(source, 0.0)[rows], copy=False)
    # dates, timestamps, text: take with -1 = missing
    return pd.Series(values.array.take(rows, allow_fill=True), copy=False)


def _days_between(dates: pd.Series, t: pd.Timestamp) -> pd.Series:
    """Whole days from each date to ``t`` (floored like ``Timedelta.days``), NA for NaT."""
    nanos = dates.to_numpy(dtype="datetime64[ns]")
    missing = np.isnat(nanos)
    days = (t.as_unit("ns").asm8 - nanos).astype("int64") // (86_400 * 10**9)
    return pd.Series(pd.arrays.IntegerArray(np.where(missing, 0, days), missing), index=dates.index)
