"""Extract the per-customer frames for one business date T through the sql/ files.

Every query runs inside the database (the heavy aggregation stays there) and returns at
most one row per customer; :func:`extract_as_of` bundles the results in a
:class:`SourceFrames`, from which :mod:`crm_batch.kpi` computes everything else without
touching the database again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy.engine import Engine

from crm_batch.config import ThresholdSettings
from crm_batch.periods import quiet_window
from crm_batch.source.concurrent import query_workers, run_concurrently
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.frames import SourceFrames
from crm_batch.source.params import standard_params
from crm_batch.source.sql_files import SqlCatalog, SqlQuery
from crm_batch.source.teams import normalise_team_column

log = logging.getLogger(__name__)

#: The sql/ queries :func:`extract_as_of` runs, by :class:`SourceFrames` field.
AS_OF_QUERIES: dict[str, str] = {
    "customers": "customers",
    "facts": "customer_facts",
    "service": "customer_service",
    "referrals": "customer_referrals",
    "churn_window": "customer_churn_window",
}


def as_of_params(as_of: date, thresholds: ThresholdSettings) -> dict[str, Any]:
    """The bind parameters of the as-of queries: the standard set plus the churn window."""
    params = standard_params(as_of, complaint_open_hours=thresholds.complaint_open_hours)
    window = quiet_window(as_of, thresholds.churn_quiet_months, thresholds.churn_lookback_months)
    params.update(
        lookback_start=window.lookback_start,
        quiet_start=window.quiet_start,
        quiet_end=window.quiet_end,
    )
    return params


def extract_as_of(
    engine: Engine,
    catalog: SqlCatalog,
    as_of: date,
    thresholds: ThresholdSettings,
    *,
    workers: int | None = None,
) -> SourceFrames:
    """Run the as-of queries on ``engine`` (dialect variants picked from ``catalog``).

    ``workers``: queries run at the same time (:func:`~crm_batch.source.concurrent.
    query_workers` picks the default). Logs each query's row count and wall time at
    DEBUG level.
    """
    tasks = as_of_tasks(engine, catalog, as_of, thresholds)
    frames = run_concurrently(tasks, query_workers(engine, workers))
    return SourceFrames(as_of=as_of, absent_tables=catalog.absent_tables, **frames)


def as_of_tasks(
    engine: Engine, catalog: SqlCatalog, as_of: date, thresholds: ThresholdSettings
) -> list[tuple[str, Callable[[], pd.DataFrame]]]:
    """The as-of queries as (SourceFrames field, fetch) pairs, in :data:`AS_OF_QUERIES`
    order, for :func:`~crm_batch.source.concurrent.run_concurrently`. The mapping files
    are checked first, so that a broken one is reported under its own name."""
    catalog.check_mapping(engine)
    dialect = dialect_name(engine)
    params = as_of_params(as_of, thresholds)
    return [
        (field, fetch_task(engine, catalog.get(name, dialect), params, f"as of {as_of}"))
        for field, name in AS_OF_QUERIES.items()
    ]


def fetch_task(
    engine: Engine, query: SqlQuery, params: Mapping[str, Any], scope: str
) -> Callable[[], pd.DataFrame]:
    """A call that runs ``query`` into a :func:`contiguous` frame and logs its time; a
    ``team`` column is normalised (:func:`crm_batch.source.teams.normalise_team_column`),
    the one place team names are read."""

    def fetch() -> pd.DataFrame:
        started = time.perf_counter()
        frame = normalise_team_column(contiguous(run_query(engine, query, params)))
        log.debug(
            "extract %s %s: %d rows in %.2fs",
            query.name,
            scope,
            len(frame),
            time.perf_counter() - started,
        )
        return frame

    return fetch


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
