"""Write tables into Spark through Spark Connect: Arrow batches in, Parquet tables out.

Only the demo and the tests write to Spark (crm-batch reads a company's tables and
writes nothing there). The rows travel from this process to the server in uploads of
at most :data:`UPLOAD_ROWS` rows, so a 30-million-row table never sits in the client's
memory (or in one gRPC message) at once; each upload is appended to a managed Parquet
table in the session's current catalog and database (the warehouse folder of a local
server, the metastore's location on a cluster).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa

from crm_batch.errors import DataError
from crm_batch.source.spark import SparkSource
from crm_batch.urls import safe_url

#: Rows per upload: about 50-100 MB of Arrow for the order table's columns.
UPLOAD_ROWS = 1_000_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def table_names(source: SparkSource) -> set[str]:
    """Names of the tables (and views) in the session's current database, lower case."""
    session = source.session()
    return {row.name.lower() for row in session.catalog.listTables()}


def drop_tables(source: SparkSource, names: Iterable[str]) -> None:
    """Drop these tables of the current database where they exist."""
    session = source.session()
    for name in names:
        session.sql(f"drop table if exists {_checked(name)}").collect()


def write_table(
    source: SparkSource, name: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema
) -> int:
    """Replace table ``name`` by the rows of ``batches`` (all of ``schema``), uploaded
    :data:`UPLOAD_ROWS` at a time and stored as Parquet; returns the rows written.

    An empty input still creates the table with its columns (an empty upload)."""
    session = source.session()
    target = _checked(name)
    pending: list[pa.RecordBatch] = []
    pending_rows = written = 0
    uploads = 0

    def upload() -> None:
        nonlocal pending, pending_rows, written, uploads
        table = pa.Table.from_batches(pending, schema=schema)
        frame = session.createDataFrame(table)
        mode = "overwrite" if uploads == 0 else "append"
        frame.write.format("parquet").mode(mode).saveAsTable(target)
        written += pending_rows
        uploads += 1
        pending, pending_rows = [], 0

    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= UPLOAD_ROWS:
            upload()
    if pending or uploads == 0:
        upload()
    (counted,) = session.sql(f"select count(*) from {target}").collect()[0]
    if counted != written:
        raise DataError(
            f"{safe_url(source.url)}: table {name} holds {counted} rows after writing {written}"
        )
    return written


def _checked(name: str) -> str:
    """A table name used in SQL text: letters, digits and underscores only."""
    if not _NAME.match(name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name
