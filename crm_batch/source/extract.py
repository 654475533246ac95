"""Extract the per-customer frames for one business date T through the sql/ files.

Every query runs inside the database (the heavy aggregation stays there) and returns at
most one row per customer; :func:`extract_as_of` bundles the results in a
:class:`SourceFrames`, from which :mod:`crm_batch.kpi` computes everything else without
touching the database again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy.engine import Engine

from crm_batch.config import ThresholdSettings
from crm_batch.kpi.churn import quiet_window
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.params import standard_params
from crm_batch.source.sql_files import SqlCatalog

log = logging.getLogger(__name__)

#: The sql/ queries :func:`extract_as_of` runs, by :class:`SourceFrames` field.
AS_OF_QUERIES: dict[str, str] = {
    "customers": "customers",
    "facts": "customer_facts",
    "service": "customer_service",
    "referrals": "customer_referrals",
    "churn_window": "customer_churn_window",
}


@dataclass(frozen=True)
class SourceFrames:
    """The frames of one business date, each typed by its sql/ header.

    * ``customers``: the register (customers.sql), one row per customer signed up by T;
    * ``facts``: order facts (customer_facts.sql), customers with a paid/refunded row;
    * ``service``: open tickets (customer_service.sql), customers with an open ticket;
    * ``referrals``: referrals made (customer_referrals.sql), customers who referred;
    * ``churn_window``: calendar-month order counts (customer_churn_window.sql).
    """

    as_of: date
    customers: pd.DataFrame
    facts: pd.DataFrame
    service: pd.DataFrame
    referrals: pd.DataFrame
    churn_window: pd.DataFrame


def as_of_params(as_of: date, thresholds: ThresholdSettings) -> dict[str, Any]:
    """The bind parameters of the as-of queries: the standard set plus the churn window."""
    params = standard_params(as_of, complaint_open_hours=thresholds.complaint_open_hours)
    window = quiet_window(as_of, thresholds)
    params.update(
        lookback_start=window.lookback_start,
        quiet_start=window.quiet_start,
        quiet_end=window.quiet_end,
    )
    return params


def extract_as_of(
    engine: Engine, catalog: SqlCatalog, as_of: date, thresholds: ThresholdSettings
) -> SourceFrames:
    """Run the as-of queries on ``engine`` (dialect variants picked from ``catalog``).

    Logs each query's row count and wall time at INFO level.
    """
    dialect = dialect_name(engine)
    params = as_of_params(as_of, thresholds)
    frames: dict[str, pd.DataFrame] = {}
    for field, query_name in AS_OF_QUERIES.items():
        query = catalog.get(query_name, dialect)
        started = time.perf_counter()
        frames[field] = contiguous(run_query(engine, query, params))
        log.debug(
            "extract %s as of %s: %d rows in %.2fs",
            query_name,
            as_of.isoformat(),
            len(frames[field]),
            time.perf_counter() - started,
        )
    return SourceFrames(as_of=as_of, **frames)


def contiguous(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every Arrow-backed column (text, ids) in one chunk.

    Databases send Arrow results in batches, so a million-row text column arrives in
    a dozen chunks; taking rows from a chunked column (each team's view of the
    per-customer table) is about three times slower than from one chunk. Values and
    dtypes stay the same; columns already in one chunk are not copied.
    """
    joined: dict[str, pd.Series] = {}
    for name in frame.columns:
        array = frame[name].array
        chunked = getattr(array, "_pa_array", None)
        if not isinstance(chunked, pa.ChunkedArray) or chunked.num_chunks <= 1:
            continue
        single = type(array)(pa.chunked_array([chunked.combine_chunks()], chunked.type))
        if single.dtype == array.dtype:
            joined[name] = pd.Series(single, index=frame.index, name=name, copy=False)
    return frame.assign(**joined) if joined else frame
