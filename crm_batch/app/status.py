"""``status``: what a user or an ops person needs to know at a glance.

Shows where the settings came from, the source database and the state database
(passwords hidden; the state with why it is that one), whether they answer, how many
rows each canonical table (source) and output table (state) holds and the run log
(batch_runs, state): whether the last nightly run succeeded (or completed with problems:
then one line per problem, naming the team, the file and what to do), its notes
(customers without a team), the last run of each kind and the last runs. A run left
"running" by a process that died on this host is closed as failed on the way.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
from sqlalchemy import Connection, Engine, Row, Table, func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from crm_batch.app.engines import (
    SOURCE,
    STATE,
    Databases,
    StateChoice,
    build_engine,
    missing_database_file,
    resolve_state,
    source_url,
)
from crm_batch.app.locking import Holder, read_holder
from crm_batch.app.runlog import (
    COMPLETED,
    FAILED,
    NOTE_PREFIX,
    OK,
    PROBLEMS,
    RUN_STAGE,
    close_stale_runs,
    process_alive,
    runs_table,
    stale_runs,
)
from crm_batch.app.state_copy import history_left_behind
from crm_batch.config import Settings
from crm_batch.errors import DependencyError, SqlContractError
from crm_batch.logs import mask_secrets
from crm_batch.schema import OUTPUT_TABLES, SOURCE_TABLES, build_metadata
from crm_batch.source.db import check_connection
from crm_batch.source.failures import first_line
from crm_batch.source.mapping import SourceMapping, load_mapping
from crm_batch.source.quality import escape_text
from crm_batch.urls import safe_url


def status_report(settings: Settings, as_of: date, *, runs: int = 10) -> tuple[str, bool]:
    """The report text and whether the databases (source and state) answered."""
    lines = [
        f"settings:   {settings.source}",
        f"database:   {safe_url(source_url(settings))}",
    ]
    tail = [
        f"timezone:   {settings.timezone}   business date: {as_of.isoformat()}",
        f"workbooks:  {settings.workbooks_dir}",
        f"reports:    {settings.reports_dir}",
        f"sql folder: {settings.sql_dir}",
        f"mapping:    {settings.source_dir}",
    ]
    holder = running_holder(settings.data_dir, settings.tz)
    if holder is not None:
        tail.append(f"running:    {holder.describe()}")
    missing = missing_database_file(source_url(settings))
    if missing is not None:  # say so instead of creating an empty database file by looking
        lines += tail
        lines.append(
            f"connection: FAILED: there is no database file {missing}; "
            "`run_batch.py demo` builds the demo database there"
        )
        return "\n".join(lines), False
    try:
        choice = resolve_state(settings)
    except DependencyError as exc:  # a server source asked whether it is writable
        lines += ["state:      unknown until the source answers", *tail]
        lines.append(f"connection: FAILED: {exc}")
        return "\n".join(lines), False
    if choice.separate:
        lines[-1] += "   (source, opened read-only)"
        lines.append(f"state:      {safe_url(choice.url)} ({choice.why})")
    else:
        lines.append(f"state:      {choice.why}")
    lines += tail
    report, healthy = _databases_report(settings, choice, holder, runs)
    return "\n".join([*lines, *report]), healthy


def _databases_report(
    settings: Settings, choice: StateChoice, holder: Holder | None, runs: int
) -> tuple[list[str], bool]:
    """Connection, table counts and run log lines of the source and state databases."""
    source = build_engine(settings, read_only=choice.separate)
    engines = [(source, SOURCE)]
    state_missing = choice.separate and missing_database_file(choice.url) is not None
    if choice.separate and not state_missing:
        engines.append((build_engine(settings, choice.url), STATE))
    try:
        for engine, name in engines:
            try:
                check_connection(engine)
            except DependencyError as exc:
                file_db = engine.url.get_backend_name() == "duckdb"
                if holder is not None and file_db and "lock" in str(exc):
                    whose = f"the {name}'s" if choice.separate else "the"
                    return [
                        f"connection: busy: the run in progress has {whose} DuckDB file open "
                        "(DuckDB admits one process at a time); the run log can be read "
                        "when it has finished"
                    ], True
                where = f"{name}: " if choice.separate else ""
                return [f"connection: FAILED: {where}{exc}"], False
        state = engines[-1][0] if choice.separate and not state_missing else None
        lines = ["connection: ok (source and state)" if choice.separate else "connection: ok"]
        lines += ["", _relation_counts(source, settings.source_dir)]
        if not choice.separate:
            lines += ["", _table_counts(source, OUTPUT_TABLES, title="state tables (rows)")]
            lines += ["", _last_runs(source, settings.tz, runs, settings.data_dir)]
        elif state is None:
            lines += [
                "",
                f"last runs: none recorded yet ({choice.url.database} is created by the first run)",
            ]
        else:
            lines += ["", _table_counts(state, OUTPUT_TABLES, title="state tables (rows)")]
            left_behind = history_left_behind(Databases(source, state, choice))
            if left_behind is not None:
                lines.append(f"  WARNING: {left_behind}")
            lines += ["", _last_runs(state, settings.tz, runs, settings.data_dir)]
        return lines, True
    finally:
        for engine, _name in engines:
            engine.dispose()


def running_holder(data_dir: Path, tz: ZoneInfo) -> Holder | None:
    """The run holding the run lock now, if any: the recorded holder whose process is
    alive (a record left by a killed run is ignored; one from another host is trusted)."""
    holder = read_holder(data_dir)
    if holder is None:
        return None
    if holder.host != socket.gethostname():
        return holder
    try:
        started = datetime.fromisoformat(holder.started_at).replace(tzinfo=None)
    except ValueError:
        started = None
    return holder if process_alive(holder.pid, started, tz) else None


def _relation_counts(engine: Engine, source_dir: Path) -> str:
    """Rows of each canonical relation as its mapping file returns them (an optional one
    without a file says "not mapped", a mapping the database rejects its first error
    line)."""
    rows = []
    try:
        mapping: SourceMapping | None = load_mapping(source_dir)
    except SqlContractError as exc:
        mapping = None
        rows.append(f"  mapping files: FAILED: {one_line(str(exc), 400)}")
    with engine.connect() as conn:
        for name in SOURCE_TABLES if mapping is not None else ():
            if name in mapping.absent:
                rows.append(f"  {name:<22}{'(not mapped)':>14}")
                continue
            body = mapping.relations[name].body
            try:
                count = conn.execute(text(f"select count(*) from (\n{body}\n) as m"))
                rows.append(f"  {name:<22}{count.scalar_one():>14,}")
            except (SQLAlchemyError, duckdb.Error) as exc:
                conn.rollback()
                shown = escape_text(mask_secrets(one_line(first_line(exc), 200)))
                rows.append(f"  {name:<22}{'(error)':>14}  {name}.sql: {shown}")
    return f"source relations (rows, through the mapping files in {source_dir}):\n" + "\n".join(
        rows
    )


def _table_counts(engine: Engine, names: Sequence[str], *, title: str) -> str:
    """Rows of each of the tables ``names`` (crm-batch's own); a missing one says so."""
    inspector = inspect(engine)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    metadata = build_metadata()
    rows = []
    with engine.connect() as conn:
        for name in names:
            if name in present:
                count = conn.execute(select(func.count()).select_from(metadata.tables[name]))
                rows.append(f"  {name:<22}{count.scalar_one():>14,}")
            else:
                rows.append(f"  {name:<22}{'(missing)':>14}")
    return f"{title}:\n" + "\n".join(rows)


def _last_runs(engine: Engine, tz: ZoneInfo, limit: int, data_dir: Path | None = None) -> str:
    """The run log: stale runs closed, the last nightly's verdict, the last run of each
    kind and the last ``limit`` runs."""
    if "batch_runs" not in set(inspect(engine).get_table_names()):
        return "last runs: none recorded yet (batch_runs does not exist)"
    stale = _close_stale(engine, tz, data_dir)
    table = runs_table()
    columns = (
        table.c.run_id,
        table.c.kind,
        table.c.business_date,
        table.c.status,
        table.c.started_at,
        table.c.finished_at,
        table.c.error,
    )
    query = (
        select(*columns)
        .where(table.c.stage == RUN_STAGE)
        .order_by(table.c.started_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).fetchall(), columns=[c.name for c in columns])
        latest = _latest_per_kind(conn, table)
        last_ok = conn.execute(
            select(table.c.business_date, table.c.finished_at)
            .where(table.c.stage == RUN_STAGE, table.c.kind == "nightly", table.c.status == OK)
            .order_by(table.c.started_at.desc())
            .limit(1)
        ).first()
        nightly = latest.get("nightly")
        notes = _stage_notes(conn, table, nightly.run_id) if nightly is not None else []
    if frame.empty:
        return "\n".join([*stale, "last runs: none recorded yet"])
    if nightly is None:
        verdict = "last nightly run: none"
    else:
        verdict = f"last nightly run: {nightly.status} (business date {nightly.business_date})"
        if nightly.status == FAILED and nightly.error:
            verdict += f": {one_line(nightly.error, 400)}"
    lines = [*stale, verdict]
    if nightly is not None and nightly.status == PROBLEMS:
        problems = (nightly.error or "").splitlines()
        lines.append(f"  completed with {len(problems)} problem(s); the other teams are fine:")
        lines += [f"  PROBLEM: {line}" for line in problems]
    if nightly is not None and nightly.status in COMPLETED:
        lines += [f"  {note}" for note in notes]
    if last_ok is not None and (nightly is None or nightly.status != OK):
        lines.append(
            f"last successful nightly: business date {last_ok.business_date}, "
            f"finished {last_ok.finished_at:%Y-%m-%d %H:%M:%S}"
        )
    lines.append("last run of each kind:")
    for kind, row in sorted(latest.items()):
        finished = f"{row.finished_at:%Y-%m-%d %H:%M:%S}" if row.finished_at else "-"
        lines.append(
            f"  {kind:<10} {row.business_date}  {row.status:<8} "
            f"started {row.started_at:%Y-%m-%d %H:%M:%S}  finished {finished}"
        )
    frame["run_id"] = frame["run_id"].str[:8]
    frame["error"] = frame["error"].fillna("").map(lambda text: one_line(text, 60))
    frame["started_at"] = pd.to_datetime(frame["started_at"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    frame["finished_at"] = (
        pd.to_datetime(frame["finished_at"]).dt.strftime("%Y-%m-%d %H:%M:%S").fillna("-")
    )
    lines.append("last runs:")
    lines.append(frame.to_string(index=False))
    return "\n".join(lines)


def _stage_notes(conn: Connection, table: Table, run_id: str) -> list[str]:
    """The notes the stages of run ``run_id`` recorded (``note: ...`` lines)."""
    texts = conn.execute(
        select(table.c.error)
        .where(table.c.run_id == run_id, table.c.stage != RUN_STAGE, table.c.error.is_not(None))
        .order_by(table.c.started_at)
    ).scalars()
    return [line for text in texts for line in text.splitlines() if line.startswith(NOTE_PREFIX)]


def _latest_per_kind(conn: Connection, table: Table) -> dict[str, Row]:
    """The most recent run row of each kind."""
    kinds = conn.execute(select(table.c.kind).where(table.c.stage == RUN_STAGE).distinct())
    latest = {}
    for (kind,) in kinds.all():
        row = conn.execute(
            select(table)
            .where(table.c.stage == RUN_STAGE, table.c.kind == kind)
            .order_by(table.c.started_at.desc())
            .limit(1)
        ).first()
        if row is not None:
            latest[kind] = row
    return latest


def _close_stale(engine: Engine, tz: ZoneInfo, data_dir: Path | None) -> list[str]:
    """Close runs whose process died on this host (after writing the failures kept while
    the database was down, :func:`~crm_batch.app.runlog.apply_unrecorded`); lines saying
    what was found."""
    try:
        closed = close_stale_runs(engine, tz, data_dir=data_dir)
    except SQLAlchemyError as exc:  # e.g. a read-only database user: report, do not fail
        stale = stale_runs(engine, tz)
        reason = mask_secrets(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return [f"stale run (process died, not closed: {reason}): {r.describe()}" for r in stale]
    return [f"closed stale run {r.run_id[:8]} (process died): {r.describe()}" for r in closed]


def one_line(text: str, limit: int) -> str:
    """A stored error on one line (its lines joined with " | ", so a message that starts
    "1 failed:" still shows what failed), cut at ``limit`` characters with an ellipsis."""
    joined = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return joined if len(joined) <= limit else joined[: limit - 1].rstrip() + "…"
