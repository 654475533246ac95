"""The revenue reconciliation of a KPI run: the KPIs account for every paid and refunded amount.

Two checks, from numbers the run already has plus one light pass over the orders:

* the source's paid and refunded rows dated up to T (``sql/checks/revenue_totals.sql``:
  totals by date class, no join) equal the per-customer order facts of T summed over
  every customer_id, none and unknown ones included: the facts query lost or doubled
  nothing;
* those facts split into the amount attributed to the register of T, which must equal
  the per-customer table's total, and the documented exclusions: no customer, unknown
  customer, customer not yet registered (``sql/checks/customers_not_registered.sql`` tells
  the last two apart), plus the rows dated after T and the undated ones from the totals.

:func:`crm_batch.app.kpis.run_kpis` logs the result of every run on one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from crm_batch.errors import SqlContractError
from crm_batch.kpi.keys import positions
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.mapping import SourceMapping
from crm_batch.source.params import standard_params
from crm_batch.source.quality import NOT_REGISTERED_QUERY, TOTALS_QUERY, checks_dir
from crm_batch.source.sql_files import SqlCatalog

log = logging.getLogger(__name__)

#: Money totals reconcile when they differ by less than half a cent.
MONEY_TOLERANCE = 0.005
#: revenue_totals.sql's date classes: the rows the facts of T hold, and two exclusions.
UP_TO_AS_OF = "up_to_as_of"
DATE_CLASSES = (UP_TO_AS_OF, "after_as_of", "undated")

#: Reconciliation buckets in report order, with their labels; all but the first are
#: the documented exclusions.
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
    #: the source's rows dated up to T (revenue_totals.sql), which the facts must hold
    dated: SourceBucket

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
    def facts(self) -> SourceBucket:
        """What the order facts of T hold: the buckets of the rows dated up to T."""
        held = [b for key, b in self.buckets.items() if key not in DATE_CLASSES]
        return SourceBucket(
            sum(b.order_rows for b in held),
            sum(b.paid_orders for b in held),
            sum(b.net_revenue for b in held),
        )

    @property
    def facts_complete(self) -> bool:
        """Whether the facts hold exactly the source's rows dated up to T."""
        facts, dated = self.facts, self.dated
        return (facts.order_rows, facts.paid_orders) == (
            dated.order_rows,
            dated.paid_orders,
        ) and abs(facts.net_revenue - dated.net_revenue) < MONEY_TOLERANCE

    @property
    def ok(self) -> bool:
        return (
            self.facts_complete
            and abs(self.revenue_difference) < MONEY_TOLERANCE
            and self.orders_difference == 0
        )

    def render_text(self) -> str:
        """One line: source = KPIs + each exclusion (those with rows), revenue and orders."""
        shown = {k: b for k, b in self.buckets.items() if k == "attributed" or b.order_rows}
        parts = [f"{BUCKETS[k]} {b.net_revenue:,.2f}" for k, b in shown.items()]
        orders = [f"{BUCKETS[k]} {b.paid_orders:,}" for k, b in shown.items()]
        if self.ok:
            verdict = "reconciles"
        elif not self.facts_complete:
            facts, dated = self.facts, self.dated
            verdict = (
                f"does NOT reconcile (the customer facts hold {facts.order_rows:,} of the "
                f"source's {dated.order_rows:,} rows dated up to T, paid orders "
                f"{facts.paid_orders:,} of {dated.paid_orders:,}, revenue "
                f"{facts.net_revenue:,.2f} of {dated.net_revenue:,.2f})"
            )
        else:
            verdict = (
                f"does NOT reconcile (revenue differs by {self.revenue_difference:,.2f}, "
                f"orders by {self.orders_difference:,})"
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
    facts: pd.DataFrame,
    table: pd.DataFrame,
    mapping: SourceMapping | None = None,
) -> Reconciliation:
    """Source totals of ``as_of`` against its order ``facts`` (customer_facts.sql's rows,
    every customer_id) and ``table`` (customer_table of ``as_of``), read through
    ``mapping`` (default: the shipped mapping files)."""
    catalog = SqlCatalog(catalog_dir, mapping)
    catalog.check_mapping(engine)
    dialect = dialect_name(engine)
    params = standard_params(as_of)
    totals = _date_classes(engine, catalog, dialect, params)
    later = run_query(engine, catalog.get(NOT_REGISTERED_QUERY, dialect), params)
    buckets = _facts_buckets(facts, table["customer_id"], later["customer_id"])
    buckets["after_as_of"] = totals["after_as_of"]
    buckets["undated"] = totals["undated"]
    return Reconciliation(
        as_of=as_of,
        buckets={key: buckets[key] for key in BUCKETS},
        kpi_revenue=float(table["revenue_total"].sum()),
        kpi_orders=int(table["orders_total"].sum()),
        dated=totals[UP_TO_AS_OF],
    )


def _date_classes(
    engine: Engine, catalog: SqlCatalog, dialect: str, params: dict[str, Any]
) -> dict[str, SourceBucket]:
    """revenue_totals.sql's rows by date class (zeros for a class without rows)."""
    query = catalog.get(TOTALS_QUERY, dialect)
    frame = run_query(engine, query, params)
    unknown = sorted(set(frame["date_class"].dropna()) - set(DATE_CLASSES))
    if unknown or frame["date_class"].isna().any():
        raise SqlContractError(
            f"{query.path}: unknown date class(es) {', '.join(map(repr, unknown)) or 'NULL'} "
            f"(known: {', '.join(DATE_CLASSES)})"
        )
    by_class = frame.set_index("date_class")
    classes = {}
    for key in DATE_CLASSES:
        if key in by_class.index:
            row = by_class.loc[key]
            classes[key] = SourceBucket(
                int(_zero(row["order_rows"])),
                int(_zero(row["paid_orders"])),
                float(_zero(row["net_revenue"])),
            )
        else:
            classes[key] = SourceBucket(0, 0, 0.0)
    return classes


def _facts_buckets(
    facts: pd.DataFrame, registered: pd.Series, not_registered: pd.Series
) -> dict[str, SourceBucket]:
    """The facts' rows, paid orders and net revenue by who they belong to: the register
    of T (``registered``: its ids), no customer, a customer signed up after T or without
    a signup date (``not_registered``), or an id in no customers row."""
    ids = facts["customer_id"]
    missing = ids.isna().to_numpy()
    in_register = positions(ids, registered) >= 0
    in_customers = positions(ids, not_registered) >= 0
    owner = np.select(
        [missing, in_register, in_customers],
        ["no_customer", "attributed", "unregistered_customer"],
        "unknown_customer",
    )
    rows = facts["order_rows"].to_numpy(dtype="int64", na_value=0)
    orders = facts["orders_total"].to_numpy(dtype="int64", na_value=0)
    revenue = facts["revenue_total"].to_numpy(dtype="float64", na_value=0.0)
    buckets = {}
    for key in ("attributed", "no_customer", "unknown_customer", "unregistered_customer"):
        chosen = owner == key
        buckets[key] = SourceBucket(
            int(rows[chosen].sum()), int(orders[chosen].sum()), float(revenue[chosen].sum())
        )
    return buckets


def log_reconciliation(
    engine: Engine,
    sql_dir: Path,
    as_of: date,
    facts: pd.DataFrame,
    table: pd.DataFrame,
    mapping: SourceMapping | None = None,
) -> Reconciliation:
    """Reconcile ``facts`` and ``table`` and log the line (INFO when it reconciles, else
    WARNING)."""
    result = reconcile(engine, checks_dir(sql_dir), as_of, facts, table, mapping)
    log.log(logging.INFO if result.ok else logging.WARNING, "%s", result.render_text())
    return result


def _zero(value: Any) -> Any:
    return 0 if pd.isna(value) else value
