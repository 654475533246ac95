"""The revenue reconciliation of a KPI run: the KPIs account for every paid and refunded amount.

The source total (``sql/checks/revenue_reconciliation.sql``, one full scan of the orders
inside the database) splits into the amount attributed to registered customers, which
must equal the per-customer table's total, and the documented exclusions (no customer,
unknown customer, customer not yet registered, dated after T, undated).
:func:`crm_batch.app.kpis.run_kpis` logs the result of every run on one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from crm_batch.errors import SqlContractError
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.mapping import SourceMapping
from crm_batch.source.params import standard_params
from crm_batch.source.quality import RECONCILIATION_QUERY, checks_dir
from crm_batch.source.sql_files import SqlCatalog

log = logging.getLogger(__name__)

#: Money totals reconcile when they differ by less than half a cent.
MONEY_TOLERANCE = 0.005

#: Reconciliation buckets in report order, with their labels; all but the first are
#: the documented exclusions (see sql/checks/revenue_reconciliation.sql).
BUCKETS: dict[str, str] = {
    "attributed": "registered customers",
    "no_customer": "no customer",
    "unknown_customer": "unknown customer",
    "unregistered_customer": "unregistered customer",
    "after_as_of": "after T",
    "undated": "undated",
}


@dataclass(frozen=True)
class SourceBucket:
    """Paid and refunded rows of one reconciliation bucket."""

    order_rows: int
    paid_orders: int
    net_revenue: float


@dataclass(frozen=True)
class Reconciliation:
    """Source totals by bucket next to the per-customer table's totals."""

    as_of: date
    buckets: dict[str, SourceBucket]  # every key of BUCKETS, zeros when empty
    kpi_revenue: float  # sum of the table's revenue_total
    kpi_orders: int  # sum of the table's orders_total

    @property
    def source_revenue(self) -> float:
        """Net revenue of every paid and refunded row in the source."""
        return sum(b.net_revenue for b in self.buckets.values())

    @property
    def source_orders(self) -> int:
        """Paid rows in the source."""
        return sum(b.paid_orders for b in self.buckets.values())

    @property
    def revenue_difference(self) -> float:
        """Attributed source revenue minus the KPIs' revenue: 0 when they reconcile."""
        return self.buckets["attributed"].net_revenue - self.kpi_revenue

    @property
    def orders_difference(self) -> int:
        """Attributed paid rows minus the KPIs' paid orders: 0 when they reconcile."""
        return self.buckets["attributed"].paid_orders - self.kpi_orders

    @property
    def ok(self) -> bool:
        return abs(self.revenue_difference) < MONEY_TOLERANCE and self.orders_difference == 0

    def render_text(self) -> str:
        """One line: source = KPIs + each exclusion (those with rows), revenue and orders."""
        shown = {k: b for k, b in self.buckets.items() if k == "attributed" or b.order_rows}
        parts = [f"{BUCKETS[k]} {b.net_revenue:,.2f}" for k, b in shown.items()]
        orders = [f"{BUCKETS[k]} {b.paid_orders:,}" for k, b in shown.items()]
        verdict = (
            "reconciles"
            if self.ok
            else (
                f"does NOT reconcile (revenue differs by {self.revenue_difference:,.2f}, "
                f"orders by {self.orders_difference:,})"
            )
        )
        return (
            f"revenue as of {self.as_of.isoformat()} {verdict}: source "
            f"{self.source_revenue:,.2f} = {' + '.join(parts)}; KPIs {self.kpi_revenue:,.2f}; "
            f"paid orders: source {self.source_orders:,} = {' + '.join(orders)}; "
            f"KPIs {self.kpi_orders:,}"
        )


def reconcile(
    engine: Engine,
    catalog_dir: Path,
    as_of: date,
    table: pd.DataFrame,
    mapping: SourceMapping | None = None,
) -> Reconciliation:
    """Source totals of ``as_of`` by bucket against ``table`` (customer_table of ``as_of``),
    read through ``mapping`` (default: the shipped mapping files)."""
    catalog = SqlCatalog(catalog_dir, mapping)
    catalog.check_mapping(engine)
    query = catalog.get(RECONCILIATION_QUERY, dialect_name(engine))
    frame = run_query(engine, query, standard_params(as_of))
    unknown = sorted(set(frame["bucket"].dropna()) - set(BUCKETS))
    if unknown or frame["bucket"].isna().any():
        raise SqlContractError(
            f"{query.path}: unknown bucket(s) {', '.join(map(repr, unknown)) or 'NULL'} "
            f"(known: {', '.join(BUCKETS)})"
        )
    by_bucket = frame.set_index("bucket")
    buckets = {}
    for key in BUCKETS:
        if key in by_bucket.index:
            row = by_bucket.loc[key]
            buckets[key] = SourceBucket(
                int(_zero(row["order_rows"])),
                int(_zero(row["paid_orders"])),
                float(_zero(row["net_revenue"])),
            )
        else:
            buckets[key] = SourceBucket(0, 0, 0.0)
    return Reconciliation(
        as_of=as_of,
        buckets=buckets,
        kpi_revenue=float(table["revenue_total"].sum()),
        kpi_orders=int(table["orders_total"].sum()),
    )


def _zero(value: Any) -> Any:
    return 0 if pd.isna(value) else value


def log_reconciliation(
    engine: Engine,
    sql_dir: Path,
    as_of: date,
    table: pd.DataFrame,
    mapping: SourceMapping | None = None,
) -> Reconciliation:
    """Reconcile ``table`` and log the line (INFO when it reconciles, else WARNING)."""
    result = reconcile(engine, checks_dir(sql_dir), as_of, table, mapping)
    log.log(logging.INFO if result.ok else logging.WARNING, "%s", result.render_text())
    return result
