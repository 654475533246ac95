"""The extracted frames the KPI layer reads: one business date's, and one period's.

These are plain containers of typed pandas frames (each typed by its sql/ header), so
:mod:`crm_batch.kpi` can take them without depending on how they were fetched:
:func:`crm_batch.source.extract.extract_as_of` fills a :class:`SourceFrames`,
:func:`crm_batch.source.extract_period.extract_period` a :class:`PeriodFrames`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from crm_batch.periods import Period
from crm_batch.source.mapping import OPTIONAL

#: The canonical tables a company may leave unmapped (DESIGN.md "Canonical data model"):
#: an absent one reaches the queries as an empty relation and is named in
#: :attr:`SourceFrames.absent_tables`; customers and orders are always mapped.
OPTIONAL_TABLES = OPTIONAL


@dataclass(frozen=True)
class SourceFrames:
    """The frames of one business date, each typed by its sql/ header.

    * ``customers``: the register (customers.sql), one row per customer signed up by T;
    * ``facts``: order facts (customer_facts.sql), customers with a paid/refunded row;
    * ``service``: open tickets (customer_service.sql), customers with an open ticket;
    * ``referrals``: referrals made (customer_referrals.sql), customers who referred;
    * ``churn_window``: calendar-month order counts (customer_churn_window.sql).

    ``absent_tables``: the optional canonical tables (:data:`OPTIONAL_TABLES`) that are
    not mapped. Their relations were empty, so every frame read from them is empty; the
    KPI engine makes the KPIs that need them null (no data) instead of a false zero.
    """

    as_of: date
    customers: pd.DataFrame
    facts: pd.DataFrame
    service: pd.DataFrame
    referrals: pd.DataFrame
    churn_window: pd.DataFrame
    absent_tables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PeriodFrames:
    """Everything the period KPIs need, each frame typed by its sql/ header.

    ``period`` is already clipped to ``as_of``. ``end`` holds the as-of frames of the
    period's last day; ``start`` those of the day before the period, limited to the
    register and the order facts
    (:func:`crm_batch.source.extract_period.start_frames`). ``register`` is the customer
    register at ``as_of`` (the care calendar looks ahead from T, not from the period).
    ``cohort_activity`` is counted up to the period's end; ``first_orders`` and the
    conversion and attribution windows see orders up to ``as_of``.
    :attr:`absent_tables` is the end frames' (one extraction, one mapping).
    """

    period: Period
    as_of: date
    start: SourceFrames
    end: SourceFrames
    register: pd.DataFrame
    period_orders: pd.DataFrame
    first_orders: pd.DataFrame
    leads: pd.DataFrame
    tickets: pd.DataFrame
    campaigns: pd.DataFrame
    touches: pd.DataFrame
    campaign_orders: pd.DataFrame
    cohort_activity: pd.DataFrame

    @property
    def absent_tables(self) -> frozenset[str]:
        """The optional canonical tables that are not mapped (see :class:`SourceFrames`)."""
        return self.end.absent_tables
