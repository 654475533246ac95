"""``load_demo_spark``: the demo company as Parquet tables in Spark (Spark Connect).

The frames are typed by the same DuckDB expressions as the other databases' loads
(:func:`crm_batch.source.demo.load._select_list`: text or integer ids, dates,
timestamps, ``decimal(14,2)`` money, booleans) and uploaded in batches
(:func:`crm_batch.source.spark_tables.write_table`). Spark tables have no keys or
indexes; the planner scans Parquet columns instead.

As everywhere, the demo never overwrites somebody's data: canonical tables in the
target database without the :data:`DEMO_INFO_TABLE` marker are refused unless
``replace=True``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Literal

import duckdb
import pyarrow as pa
from tqdm import tqdm

from crm_batch.errors import DataError
from crm_batch.schema import OUTPUT_TABLES, SOURCE_TABLES
from crm_batch.source.demo.load import DEMO_INFO_TABLE, _metadata, _select_list
from crm_batch.source.demo.model import DemoData
from crm_batch.source.spark import SparkSource
from crm_batch.source.spark_tables import drop_tables, table_names, write_table
from crm_batch.urls import safe_url

log = logging.getLogger(__name__)

#: Rows DuckDB hands over per Arrow batch while typing a frame.
_BATCH_ROWS = 256_000


def load_demo_spark(
    source: SparkSource,
    data: DemoData,
    *,
    id_type: Literal["int", "text"] = "int",
    replace: bool = False,
    progress: bool = False,
) -> dict[str, int]:
    """Write ``data`` as the canonical tables (plus the demo marker) into the Spark
    session's current database; returns table -> rows written."""
    if id_type not in ("int", "text"):
        raise ValueError(f"id_type must be 'int' or 'text', not {id_type!r}")
    existing = table_names(source)
    canonical = [name for name in (*SOURCE_TABLES, *OUTPUT_TABLES) if name in existing]
    if canonical and DEMO_INFO_TABLE not in existing and not replace:
        raise DataError(
            f"{safe_url(source.url)} already holds table {canonical[0]!r} and it was not made "
            f"by the demo (no {DEMO_INFO_TABLE} table): refusing to overwrite it. Point the "
            "demo at another schema (?schema=...), or add --replace."
        )
    # the marker first and dropped last: a failed load is still recognised as a demo
    drop_tables(source, [name for name in canonical if name in SOURCE_TABLES])
    metadata = _metadata(id_type, "spark")
    info = pa.table(
        {
            "seed": pa.array([data.seed], pa.int64()),
            "end_date": pa.array([data.end_date], pa.date32()),
            "years": pa.array([data.years], pa.int32()),
            "id_type": pa.array([id_type], pa.string()),
            "customers": pa.array([len(data.customers)], pa.int64()),
            "orders": pa.array([len(data.orders)], pa.int64()),
            "created_at": pa.array([datetime.now().replace(microsecond=0)], pa.timestamp("us")),
        }
    )
    write_table(source, DEMO_INFO_TABLE, info.to_batches(), info.schema)
    loaded: dict[str, int] = {}
    stage = duckdb.connect()
    total = sum(data.row_counts().values())
    try:
        with tqdm(
            total=total, desc="demo: load", unit="row", unit_scale=True, disable=not progress
        ) as bar:
            for name, frame in data.tables().items():
                bar.set_postfix_str(name)
                started = time.perf_counter()
                view = f"demo_frame_{name}"
                stage.register(view, frame)
                try:
                    select = _select_list(metadata.tables[name], frame, id_type, "spark")
                    reader = stage.sql(f"SELECT {select} FROM {view}").to_arrow_reader(_BATCH_ROWS)
                    loaded[name] = write_table(source, name, reader, reader.schema)
                finally:
                    stage.unregister(view)
                log.debug("demo: %s written in %.2fs", name, time.perf_counter() - started)
                bar.update(len(frame))
    finally:
        stage.close()
    counts = data.row_counts()
    short = {name: rows for name, rows in loaded.items() if rows != counts[name]}
    if short:
        raise DataError(f"{safe_url(source.url)}: rows written differ from the demo: {short}")
    return loaded
