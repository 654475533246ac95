"""``status``: what a user or an ops person needs to know at a glance.

Shows where the settings came from, the database (password hidden), whether it
answers, how many rows each canonical table holds and the last runs in batch_runs.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Engine, func, inspect, select

from crm_batch.config import Settings
from crm_batch.errors import DependencyError
from crm_batch.schema import OUTPUT_TABLES, SOURCE_TABLES, build_metadata
from crm_batch.source.db import check_connection, engine_from_settings, safe_url


def status_report(settings: Settings, as_of: date, *, runs: int = 10) -> tuple[str, bool]:
    """The report text and whether the database answered."""
    lines = [
        f"settings:   {settings.source}",
        f"database:   {safe_url(settings.database_url)}",
        f"timezone:   {settings.timezone}   business date: {as_of.isoformat()}",
        f"workbooks:  {settings.workbooks_dir}",
        f"reports:    {settings.reports_dir}",
        f"sql folder: {settings.sql_dir}",
    ]
    engine = engine_from_settings(settings)
    try:
        check_connection(engine)
    except DependencyError as exc:
        lines.append(f"connection: FAILED: {exc}")
        return "\n".join(lines), False
    try:
        lines.append("connection: ok")
        lines.append("")
        lines.append(_table_counts(engine))
        lines.append("")
        lines.append(_last_runs(engine, runs))
    finally:
        engine.dispose()
    return "\n".join(lines), True


def _table_counts(engine: Engine) -> str:
    present = set(inspect(engine).get_table_names())
    metadata = build_metadata()
    rows = []
    with engine.connect() as conn:
        for name in (*SOURCE_TABLES, *OUTPUT_TABLES):
            if name in present:
                count = conn.execute(select(func.count()).select_from(metadata.tables[name]))
                rows.append(f"  {name:<14}{count.scalar_one():>14,}")
            else:
                rows.append(f"  {name:<14}{'(missing)':>14}")
    return "tables (rows):\n" + "\n".join(rows)


def _last_runs(engine: Engine, limit: int) -> str:
    if "batch_runs" not in set(inspect(engine).get_table_names()):
        return "last runs: none recorded yet (batch_runs does not exist)"
    table = build_metadata().tables["batch_runs"]
    query = (
        select(
            table.c.run_id,
            table.c.kind,
            table.c.business_date,
            table.c.status,
            table.c.started_at,
            table.c.finished_at,
            table.c.rows,
            table.c.error,
        )
        .where(table.c.stage == "run")
        .order_by(table.c.started_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).fetchall())
    if frame.empty:
        return "last runs: none recorded yet"
    frame["run_id"] = frame["run_id"].str[:8]
    frame["error"] = frame["error"].fillna("").str.slice(0, 60)
    nightly = frame[frame["kind"] == "nightly"]
    verdict = (
        "last nightly run: none"
        if nightly.empty
        else f"last nightly run: {nightly.iloc[0]['status']} "
        f"(business date {nightly.iloc[0]['business_date']})"
    )
    return f"{verdict}\nlast runs:\n{frame.to_string(index=False)}"
