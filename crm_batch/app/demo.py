"""The demo company: generate it, load it safely, summarise it, store its history.

A file database (DuckDB, SQLite) is built in a temporary file next to the target
and moved into place only when complete, so a failed or interrupted build leaves
the previous database intact. A database the demo did not create (no demo marker
table) is never overwritten without ``--replace``.
"""

from __future__ import annotations

import logging
import os
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import inspect
from sqlalchemy.engine import URL

from crm_batch.app.engines import build_engine, open_databases, open_state
from crm_batch.app.frames import source_catalog
from crm_batch.config import Settings
from crm_batch.errors import DataError
from crm_batch.periods import period_containing
from crm_batch.schema import SOURCE_TABLES
from crm_batch.source import demo as demo_data
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.demo.followups import DAYS as FOLLOWUP_DAYS
from crm_batch.source.demo.load_spark import load_demo_spark
from crm_batch.source.demo.model import text_id_format
from crm_batch.source.params import standard_params
from crm_batch.source.spark import SparkSource
from crm_batch.urls import safe_url

log = logging.getLogger(__name__)

#: What the demo's follow-ups name as the workbook they came from.
DEMO_WORKBOOK = "demo"


def build_demo_database(
    settings: Settings,
    *,
    end_date: date,
    customers: int,
    orders: int,
    seed: int,
    years: int,
    id_type: str,
    replace: bool,
    progress: bool,
) -> dict[str, int]:
    """Generate the demo and load it into ``settings.database_url``; rows per table."""
    url = settings.database_url
    target = _file_target(url)
    if target is not None and target.exists() and not replace:
        _refuse_foreign_database(settings, url)
    log.info(
        "generating demo: %s customers, %s orders, seed %s, ending %s",
        f"{customers:,}",
        f"{orders:,}",
        seed,
        end_date.isoformat(),
    )
    data = demo_data.generate_demo(
        customers=customers,
        orders=orders,
        seed=seed,
        end_date=end_date,
        years=years,
        progress=progress,
    )
    if target is None:
        engine = build_engine(settings, url)
        try:
            if isinstance(engine, SparkSource):  # Parquet tables through Spark Connect
                counts = load_demo_spark(
                    engine, data, id_type=id_type, replace=replace, progress=progress
                )
            else:
                counts = demo_data.load_demo(
                    engine, data, id_type=id_type, replace=replace, progress=progress
                )
        finally:
            engine.dispose()
        return {**counts, "followups": store_demo_followups(settings, data, id_type)}

    building = target.with_name(f"{target.name}.building-{os.getpid()}")
    _remove_database_files(building)
    engine = build_engine(settings, url.set(database=str(building)), create=True)
    try:
        counts = demo_data.load_demo(engine, data, id_type=id_type, replace=True, progress=progress)
    except BaseException:
        engine.dispose()
        _remove_database_files(building)
        raise
    engine.dispose()
    for leftover in _side_files(building):
        if leftover.exists():
            raise DataError(f"demo build left {leftover} behind; the database was not replaced")
    # a write-ahead log of the old file would be replayed onto the new one: drop it first
    for side in _side_files(target):
        side.unlink(missing_ok=True)
    os.replace(building, target)
    log.info("demo database written to %s", target)
    return {**counts, "followups": store_demo_followups(settings, data, id_type)}


def store_demo_followups(settings: Settings, data: demo_data.DemoData, id_type: str) -> int:
    """Store the demo reps' follow-ups (:func:`crm_batch.source.demo.draw_followups`) in
    the state database as their workbooks' Save button would, so the call lists, call
    sheets and tiles of a first look show them; rows stored. Storing the same demo
    again stores nothing twice (a follow-up is known by its content)."""
    from crm_batch.app.followups import StaffInput, store_followups

    followups = demo_data.draw_followups(data)
    if followups.empty:
        return 0
    largest = int(data.customers["customer_id"].max())
    prefix, width = text_id_format("customer_id", largest)

    def key(customer: int) -> str:
        return f"{prefix}{customer:0{width}d}" if id_type == "text" else str(customer)

    stored = 0
    with open_state(settings) as engine:
        for (team, entered_at), rows in followups.groupby(["team", "entered_at"], sort=True):
            inputs = [
                StaffInput(
                    customer_id=key(int(row.customer_id)),
                    outcome=row.outcome,
                    note=row.note,
                    next_contact_date=row.next_contact_date,
                    entered_by=row.owner,
                )
                for row in rows.itertuples(index=False)
            ]
            result = store_followups(
                engine, str(team), inputs, DEMO_WORKBOOK, entered_at.to_pydatetime()
            )
            stored += result.inserted
    log.info("demo: stored %d follow-ups of the sales reps' last %d days", stored, FOLLOWUP_DAYS)
    return stored


def demo_summary(settings: Settings, as_of: date) -> str:
    """Customers, orders and net revenue by team and year, as a text table."""
    engine = build_engine(settings)
    try:
        catalog = source_catalog(settings)
        catalog.check_mapping(engine)
        query = catalog.get("revenue_by_team_year", dialect_name(engine))
        frame = run_query(engine, query, standard_params(as_of))
    finally:
        engine.dispose()
    if frame.empty:
        return f"{safe_url(settings.database_url)}: no paid orders up to {as_of.isoformat()}"
    frame["team"] = frame["team"].fillna("(no team)")
    revenue = frame.pivot_table(
        index="team", columns="order_year", values="revenue", aggfunc="sum", fill_value=0.0
    )
    revenue["total"] = revenue.sum(axis=1)
    revenue.loc["all teams"] = revenue.sum(axis=0)
    orders = frame.groupby("order_year")["orders"].sum()
    buyers = frame.groupby("order_year")["customers"].sum()
    lines = [
        f"Demo database {safe_url(settings.database_url)} (business date {as_of.isoformat()})",
        "",
        f"Net revenue by team and year ({settings.currency}):",
        _format_money_table(revenue),
        "",
        "Paid orders and buying customers by year:",
        pd.DataFrame({"orders": orders, "buying customers": buyers})
        .rename_axis("year")
        .map(lambda v: f"{int(v):,}")
        .to_string(),
    ]
    return "\n".join(lines)


def demo_history_dates(as_of: date, history_quarters: int) -> list[date]:
    """The business dates whose snapshots nightly runs would have left before ``as_of``
    and the outputs read: the last ``history_quarters`` quarter ends (quarterly
    comparisons, 8-quarter trends), the last 12 month ends (the workbooks' monthly trend)
    and the same day of the previous quarter (the Dashboard tiles' previous values)."""
    from crm_batch.app.kpis import snapshot_dates, snapshot_period
    from crm_batch.kpi import targets

    dates = set(snapshot_dates(as_of, history_quarters))
    if history_quarters:
        quarter = snapshot_period(as_of)
        dates.add(targets.baseline_as_of(quarter, as_of, quarter.previous()))
        month = period_containing(as_of, "month")
        for _ in range(12):
            month = month.previous()
            dates.add(month.end)
    return sorted(day for day in dates if day < as_of)


def demo_history(settings: Settings, as_of: date, history_quarters: int) -> int:
    """Store the snapshots of :func:`demo_history_dates` (what months of nightly runs
    would have left), so the workbooks' tiles and trends and the quarterly review's
    comparisons have history; rows written."""
    from crm_batch.app.kpis import backfill_snapshots

    dates = demo_history_dates(as_of, history_quarters)
    with open_databases(settings) as databases:
        rows = backfill_snapshots(settings, databases, dates, datetime.now(settings.tz))
    log.info("stored %d KPI snapshot rows for %d past business dates", rows, len(dates))
    return rows


def demo_settings(settings: Settings) -> Settings:
    """The demo renders every report in both languages unless ``reports.languages`` says
    otherwise (so a first look shows the zh-CN and the English reports)."""
    if settings.reports.languages:
        return settings
    reports = settings.reports.model_copy(update={"languages": ["zh-CN", "en"]})
    return settings.model_copy(update={"reports": reports})


def _format_money_table(frame: pd.DataFrame) -> str:
    shown = frame.map(lambda v: f"{v:,.0f}")
    shown.columns = [str(c) for c in shown.columns]
    shown.index.name = "team"
    return shown.to_string()


def _file_target(url: URL) -> Path | None:
    """The database file for DuckDB/SQLite URLs, else None (a server database)."""
    if url.get_backend_name() in {"duckdb", "sqlite"} and url.database not in (
        None,
        "",
        ":memory:",
    ):
        return Path(url.database)
    return None


def _side_files(path: Path) -> list[Path]:
    """Write-ahead and journal files DuckDB and SQLite keep next to a database file."""
    return [path.with_name(path.name + suffix) for suffix in (".wal", "-wal", "-shm", "-journal")]


def _remove_database_files(path: Path) -> None:
    for candidate in (path, *_side_files(path)):
        candidate.unlink(missing_ok=True)


def _refuse_foreign_database(settings: Settings, url: URL) -> None:
    """Raise DataError if the target holds canonical tables the demo did not create."""
    engine = build_engine(settings, url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    canonical = sorted(tables & set(SOURCE_TABLES))
    if canonical and demo_data.DEMO_INFO_TABLE not in tables:
        raise DataError(
            f"{safe_url(url)} already holds tables ({', '.join(canonical)}) that the demo did "
            "not create; refusing to overwrite them. Use another --db, or add --replace."
        )
