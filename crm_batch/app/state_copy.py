"""Copying the state tables (snapshots, follow-ups, value models, run log, delivery
ledger) from one database into the state database.

Why: where the state lives is a setting (``[state] url``, ``database.read_only``, a
folder source: :func:`crm_batch.app.engines.resolve_state`). A company that moves it,
for example from its source database to ``var/state.duckdb`` or to a PostgreSQL
server, would otherwise start with an empty history: the reports' trends and
comparisons go blank, the follow-ups staff typed are gone from the call lists, and the
delivery ledger forgets what was mailed, so a re-run of a date already sent mails it
again. ``crm-batch state copy --from URL`` carries the history over.

The copy never overwrites: a row whose primary key the state database already holds is
left as it is (the state database is the newer truth), so running it twice copies
nothing the second time. Everything is copied in one transaction, under the run lock,
so a failure leaves the state database as it was and no nightly writes meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Table, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from crm_batch.app.engines import Databases, build_engine
from crm_batch.app.ledger import SentLedger
from crm_batch.app.locking import Holder, database_lock, file_lock
from crm_batch.app.runlog import local_now
from crm_batch.config import Settings
from crm_batch.errors import ConfigError
from crm_batch.schema import OUTPUT_TABLES, build_metadata
from crm_batch.source.db import check_connection
from crm_batch.urls import normalize_url, safe_url

log = logging.getLogger(__name__)

#: Rows inserted per statement (small enough for every driver's parameter limits).
BATCH_ROWS = 2000


@dataclass(frozen=True)
class TableCopy:
    """What the copy did (or, in a dry run, would do) with one state table."""

    table: str
    found: bool  # the table exists in the database copied from
    rows: int  # rows there
    copied: int  # rows new to the state database (inserted unless a dry run)

    @property
    def kept(self) -> int:
        """Rows the state database already held under the same key (left untouched)."""
        return self.rows - self.copied

    def line(self) -> str:
        """One line for people: ``kpi_snapshots   12,345 rows, 12,000 new, 345 kept``."""
        if not self.found:
            return f"  {self.table:<24}not there"
        return (
            f"  {self.table:<24}{self.rows:>10,} rows {self.copied:>10,} new {self.kept:>10,} kept"
        )


def copy_state(
    settings: Settings, origin_url: URL, target: Engine, *, dry_run: bool = False
) -> list[TableCopy]:
    """Copy every state table from ``origin_url`` into ``target`` (the state database),
    under the run lock; rows whose key ``target`` already holds are kept as they are.

    ``dry_run`` counts what would be copied and writes nothing. Raises
    :class:`ConfigError` when both name the same database.
    """
    if normalize_url(origin_url).set(password=None) == normalize_url(target.url).set(password=None):
        raise ConfigError(
            f"state copy: {safe_url(origin_url)} is the state database itself; --from must "
            "name the database the history is in now"
        )
    origin = build_engine(settings, origin_url, read_only=True)
    try:
        check_connection(origin)  # an unreachable origin must not read as "no tables"
    except BaseException:
        origin.dispose()
        raise
    holder = Holder.this_process(
        "state-copy", "", local_now(settings.tz).isoformat(timespec="seconds")
    )
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(file_lock(settings.data_dir, holder))
            stack.enter_context(database_lock(target))
            return _copy_all(origin, target, dry_run=dry_run)
    finally:
        origin.dispose()


def _copy_all(origin: Engine, target: Engine, *, dry_run: bool) -> list[TableCopy]:
    """Every state table in one transaction on ``target`` (rolled back for a dry run)."""
    tables = build_metadata().tables
    results = []
    for name in OUTPUT_TABLES:  # DDL first: some databases end a transaction on DDL
        if name == "deliveries":
            SentLedger(target).ensure()  # also adds a column an older table lacks
        else:
            tables[name].create(target, checkfirst=True)
    found = {name: _columns_there(origin, name) for name in OUTPUT_TABLES}
    with origin.connect() as source, target.connect() as dest:
        transaction = dest.begin()
        try:
            for name in OUTPUT_TABLES:
                results.append(_copy_table(source, dest, tables[name], found[name]))
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    for result in results:
        if result.copied and not dry_run:
            log.info("state copy: %s: %d rows copied", result.table, result.copied)
    return results


def _copy_table(
    source: Connection, dest: Connection, table: Table, columns: set[str] | None
) -> TableCopy:
    """Copy the rows of ``table`` (whose ``columns`` the source has, None: no such
    table there) that ``dest`` lacks, by primary key."""
    if columns is None:
        return TableCopy(table.name, found=False, rows=0, copied=0)
    missing = [c.name for c in table.columns if c.name not in columns and not c.nullable]
    if missing:
        raise ConfigError(
            f"state copy: the table {table.name} in the database copied from has no "
            f"column {', '.join(missing)}: it is not a crm-batch state table"
        )
    common = [c for c in table.columns if c.name in columns]
    key = list(table.primary_key.columns)
    held = {_key(row) for row in dest.execute(select(*key))}
    rows = copied = 0
    batch: list[dict[str, Any]] = []
    result = source.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(
        select(*common)
    )
    for row in result.mappings():
        rows += 1
        ident = _key(tuple(row[c.name] for c in key))
        if ident in held:
            continue
        held.add(ident)
        batch.append(dict(row))
        copied += 1
        if len(batch) >= BATCH_ROWS:
            dest.execute(table.insert(), batch)
            batch = []
    if batch:
        dest.execute(table.insert(), batch)
    return TableCopy(table.name, found=True, rows=rows, copied=copied)


def _columns_there(engine: Engine, name: str) -> set[str] | None:
    """The columns of table ``name`` in ``engine``'s database, or None when it has no
    such table (a probe on its own connection, so a failed probe aborts nothing: DuckDB's
    inspector cannot list a table's columns)."""
    try:
        with engine.connect() as conn:
            return set(conn.execute(text(f"select * from {name} where 1 = 0")).keys())
    except DBAPIError:
        return None


def _key(values: Any) -> tuple[Any, ...]:
    """A primary key comparable across drivers (dates as dates, numbers as text)."""
    out = []
    for value in values:
        if isinstance(value, datetime):
            out.append(value.replace(microsecond=0))
        elif isinstance(value, date | str) or value is None:
            out.append(value)
        elif isinstance(value, Decimal | int | float):
            out.append(str(value))
        else:
            out.append(value)
    return tuple(out)


def history_left_behind(databases: Databases) -> str | None:
    """A warning when the state database is separate from the source and holds no KPI
    history while the source still holds state tables with rows (a state moved without
    ``crm-batch state copy``); None otherwise. Cheap: two probes and two counts."""
    if databases.shared or not isinstance(databases.source, Engine):
        return None  # shared, or a Spark source: Spark never held crm-batch's state
    if _count(databases.state, "kpi_snapshots") or _count(databases.state, "deliveries"):
        return None
    counts = {name: _count(databases.source, name) for name in OUTPUT_TABLES}
    left = {name: count for name, count in counts.items() if count}
    if not left:
        return None
    listed = ", ".join(f"{count:,} {name}" for name, count in left.items())
    return (
        f"the state database has no history yet, but the source database still holds "
        f"state rows from before ({listed}): copy them with `crm-batch state copy --from "
        f"{safe_url(databases.source.url)}`; until then the trends start empty and a "
        "re-run of a date already mailed mails it again"
    )


def _count(engine: Engine, name: str) -> int:
    """Rows of table ``name``, 0 when the database has no such table."""
    if _columns_there(engine, name) is None:
        return 0
    with engine.connect() as conn:
        return int(conn.execute(text(f"select count(*) from {name}")).scalar_one())


def iter_lines(results: list[TableCopy], *, dry_run: bool) -> Iterator[str]:
    """The copy's report for people, one line per table and a total."""
    yield "state copy (dry run: nothing written)" if dry_run else "state copy"
    yield from (result.line() for result in results)
    total = sum(result.copied for result in results)
    verb = "would be copied" if dry_run else "copied"
    yield f"{total:,} rows {verb}"
