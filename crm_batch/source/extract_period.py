"""Extract the frames of one period through the sql/ files (period KPIs and tables).

A period (month, quarter, year) is measured up to the business date T: :func:`clip_period`
cuts it at T, so "this quarter" on a mid-quarter T means "quarter to date". Besides the
period queries, :func:`extract_period` runs the as-of queries
(:func:`crm_batch.source.extract.extract_as_of`) on the period's clipped last day ("at
the end"), except the order facts: customer_facts_ends.sql gives those of the last day
and of the day before the period (tiers "at the start") in one pass over the orders,
each end exactly as customer_facts.sql gives it (:func:`split_ends`).

Python computes every window boundary and passes it as a bind parameter, so the SQL
needs no dialect-specific date arithmetic (params.py). Extra parameters here:
``attribution_end`` / ``attribution_end_at``: the last day (and the midnight after it)
on which an order can still be attributed to a touch of the period: the period's
clipped end + ``campaign_attribution_days``, at most T; ``cohort_start`` (cohort_activity
only): first day of the oldest cohort month the matrix shows
(:func:`crm_batch.periods.cohort_start`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from crm_batch.config import ThresholdSettings
from crm_batch.periods import Period, cohort_start
from crm_batch.source.concurrent import query_workers, run_concurrently
from crm_batch.source.db import dialect_name
from crm_batch.source.extract import (
    AS_OF_QUERIES,
    as_of_params,
    as_of_tasks,
    contiguous,
    fetch_task,
)
from crm_batch.source.frames import PeriodFrames, SourceFrames
from crm_batch.source.params import standard_params
from crm_batch.source.sql_files import SqlCatalog

#: The sql/ queries of a period, by :class:`PeriodFrames` field.
PERIOD_QUERIES: dict[str, str] = {
    "period_orders": "period_customer_orders",
    "first_orders": "customer_first_orders",
    "leads": "leads",
    "tickets": "tickets",
    "campaigns": "period_campaigns",
    "touches": "campaign_touches",
    "campaign_orders": "campaign_orders",
    "cohort_activity": "cohort_activity",
}


def clip_period(period: Period, as_of: date) -> Period:
    """``period`` cut at ``as_of`` (a period that has not started yet is a ValueError)."""
    if as_of < period.start:
        raise ValueError(
            f"period {period.label} starts on {period.start.isoformat()}, after the business "
            f"date {as_of.isoformat()}: there is nothing to measure yet"
        )
    if period.end <= as_of:
        return period
    return Period(period.start, as_of, period.kind)


def attribution_end(period: Period, as_of: date, thresholds: ThresholdSettings) -> date:
    """The last day an order can be attributed to a touch of the (clipped) ``period``."""
    return min(period.end + timedelta(days=thresholds.campaign_attribution_days), as_of)


def period_params(period: Period, as_of: date, thresholds: ThresholdSettings) -> dict[str, Any]:
    """Bind parameters of the period queries (``period`` already clipped to ``as_of``)."""
    params = standard_params(
        as_of,
        period.start,
        period.end,
        complaint_open_hours=thresholds.complaint_open_hours,
    )
    last = attribution_end(period, as_of, thresholds)
    params.update(
        attribution_end=last,
        attribution_end_at=datetime.combine(last + timedelta(days=1), datetime.min.time()),
    )
    return params


#: The query giving the order facts of both ends of a period in one pass.
ENDS_QUERY = "customer_facts_ends"
#: Its columns of the facts at the start carry this prefix (the end's have none).
START_PREFIX = "start_"
#: Its column counting a customer's rows up to the start: 0 means no facts row there.
START_ROWS = "start_order_rows"


def ends_params(end: date, start_day: date, thresholds: ThresholdSettings) -> dict[str, Any]:
    """Bind parameters of customer_facts_ends.sql: the as-of set of ``end`` and the same
    windows of ``start_day`` under ``start_day*`` names."""
    params = as_of_params(end, thresholds)
    start = standard_params(start_day)
    params.update(
        start_day=start_day,
        start_day_12m=start["start_12m"],
        start_day_90d=start["start_90d"],
        start_day_q1_end=start["q1_end"],
        start_day_q2_end=start["q2_end"],
        start_day_q3_end=start["q3_end"],
    )
    return params


def split_ends(both: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """customer_facts_ends.sql's frame as the two frames customer_facts.sql gives at the
    period's end and at its start (``columns``: customer_facts.sql's, in order): the
    start's rows are the customers with a row up to the start day."""
    end = both.loc[:, list(columns)]
    named = {START_PREFIX + name: name for name in columns if name != "customer_id"}
    rows = np.flatnonzero(both[START_ROWS].to_numpy(dtype="int64") > 0)
    start = both.loc[:, ["customer_id", *named]].take(rows).rename(columns=named)
    return contiguous(end), contiguous(start.reset_index(drop=True))


def start_frames(facts: pd.DataFrame, day: date, end: SourceFrames) -> SourceFrames:
    """The start-of-period frames from its order ``facts`` and the end's frames."""
    customers = end.customers[end.customers["signup_date"] <= pd.Timestamp(day)]
    return SourceFrames(
        as_of=day,
        customers=customers.reset_index(drop=True),
        facts=facts,
        service=end.service.iloc[:0],
        referrals=end.referrals.iloc[:0],
        churn_window=end.churn_window.iloc[:0],
        absent_tables=end.absent_tables,
    )


#: Queries that read every order row: started first, so the short ones fill the gaps
#: and no long query starts last (keys of the tasks :func:`extract_period` builds).
FIRST_STARTED = (
    "ends.facts",
    "period.first_orders",
    "period.cohort_activity",
    "end.churn_window",
    "period.period_orders",
)


def extract_period(
    engine: Engine,
    catalog: SqlCatalog,
    period: Period,
    as_of: date,
    thresholds: ThresholdSettings,
    *,
    workers: int | None = None,
) -> PeriodFrames:
    """Run the period and as-of queries for ``period`` (clipped to ``as_of``).

    All of them are independent: up to ``workers`` run at the same time (default:
    :func:`~crm_batch.source.concurrent.query_workers`); the frames are the same
    whichever order they finish in.
    """
    clipped = clip_period(period, as_of)
    catalog.check_mapping(engine)
    dialect = dialect_name(engine)
    params = period_params(clipped, as_of, thresholds)
    tasks: list[tuple[str, Callable[[], pd.DataFrame]]] = []
    for field, query_name in PERIOD_QUERIES.items():
        query = catalog.get(query_name, dialect)
        # the cohort matrix ends with the period; every other query sees T (as_of)
        bound = params
        if field == "cohort_activity":
            bound = {**params, "as_of": clipped.end, "cohort_start": cohort_start(clipped.end)}
        tasks.append((f"period.{field}", fetch_task(engine, query, bound, f"for {clipped.label}")))
    end_tasks = as_of_tasks(engine, catalog, clipped.end, thresholds)
    tasks.extend((f"end.{field}", fetch) for field, fetch in end_tasks if field != "facts")
    start_day = clipped.start - timedelta(days=1)
    ends = catalog.get(ENDS_QUERY, dialect)
    bound = ends_params(clipped.end, start_day, thresholds)
    tasks.append(("ends.facts", fetch_task(engine, ends, bound, f"for {clipped.label}")))
    if clipped.end < as_of:
        customers = catalog.get("customers", dialect)
        register = fetch_task(engine, customers, {"as_of": as_of}, f"as of {as_of}")
        tasks.append(("register", register))
    results = run_concurrently(tasks, query_workers(engine, workers), start_first=FIRST_STARTED)
    facts_columns = catalog.get(AS_OF_QUERIES["facts"], dialect).column_names
    end_facts, start_facts = split_ends(results["ends.facts"], facts_columns)
    end = SourceFrames(
        as_of=clipped.end,
        absent_tables=catalog.absent_tables,
        facts=end_facts,
        **{field: results[f"end.{field}"] for field in AS_OF_QUERIES if field != "facts"},
    )
    start = start_frames(start_facts, start_day, end)
    frames = {field: results[f"period.{field}"] for field in PERIOD_QUERIES}
    return PeriodFrames(
        period=clipped,
        as_of=as_of,
        start=start,
        end=end,
        register=results.get("register", end.customers),
        **frames,
    )
