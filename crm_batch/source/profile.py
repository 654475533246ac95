"""What each mapped relation holds: rows, date range and its columns' kinds.

``check-source`` shows this per canonical relation before the data checks: whether the
company mapped it (an absent optional relation makes its KPIs null), how many rows the
mapping returns over which dates, and whether each column's values have the kind the
canonical data model expects (:mod:`crm_batch.source.column_types`). The nightly run
reads the same column sample first, so a text date or a decimal id stops it with the
fix instead of moving window boundaries without a word.

The queries are generated here (a count, a min/max and a sample of rows per relation)
and run through the mapping like every other query, so they read only ``mapped_*``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from crm_batch.source.column_types import ColumnVerdict, judge_column
from crm_batch.source.db import dialect_name
from crm_batch.source.mapping import (
    ORDER,
    PREFIX,
    REQUIRED,
    SourceMapping,
    canonical_columns,
    run_statement,
)

#: The column that dates each relation (its date range in the report).
DATE_COLUMNS = {
    "customers": "signup_date",
    "orders": "order_date",
    "leads": "created_at",
    "tickets": "opened_at",
    "campaigns": "started_at",
    "touches": "sent_at",
}
#: Rows read per relation to judge its columns' kinds.
SAMPLE_ROWS = 500
#: Longest example value shown (escaped characters count).
MAX_EXAMPLE_CHARS = 60


@dataclass(frozen=True)
class RelationProfile:
    """One canonical relation as the mapping delivers it."""

    name: str
    required: bool
    path: Path | None  # the mapping file; None when the optional relation is absent
    rows: int | None = None  # None when not counted (the nightly only samples)
    first: dt.date | None = None
    last: dt.date | None = None
    columns: tuple[ColumnVerdict, ...] = ()

    @property
    def mapped(self) -> bool:
        return self.path is not None

    @property
    def date_column(self) -> str:
        return DATE_COLUMNS[self.name]

    def problems(self) -> list[ColumnVerdict]:
        """Columns whose values do not have the expected kind (errors first)."""
        flagged = [c for c in self.columns if c.severity != "ok"]
        return sorted(flagged, key=lambda c: c.severity != "error")


def profile_relations(
    engine: Engine, mapping: SourceMapping, *, count: bool = True, sample_rows: int = SAMPLE_ROWS
) -> list[RelationProfile]:
    """Profile every canonical relation (absent ones included, unmeasured). ``count``:
    also count the rows and find the date range (one scan per relation; the nightly
    leaves it out). Run :meth:`SourceMapping.check_columns` first: this assumes the
    mappings return the canonical columns."""
    dialect = dialect_name(engine)
    profiles = []
    for name in ORDER:
        relation = mapping.relations.get(name)
        if relation is None:
            profiles.append(RelationProfile(name, name in REQUIRED, None))
            continue
        rows = first = last = None
        if count:
            rows, first, last = _count(engine, mapping, dialect, name, relation.path)
        sample = _sample(engine, mapping, dialect, name, relation.path, sample_rows)
        columns = tuple(
            judge_column(
                name,
                column.name,
                column.kind,
                _as_stored(sample.get(column.name, ()), column.kind, dialect),
                show=_show,
                dialect=dialect,
            )
            for column in canonical_columns()[name]
        )
        profiles.append(
            RelationProfile(name, name in REQUIRED, relation.path, rows, first, last, columns)
        )
    return profiles


def _count(
    engine: Engine, mapping: SourceMapping, dialect: str, name: str, path: Path
) -> tuple[int, dt.date | None, dt.date | None]:
    column = DATE_COLUMNS[name]
    body = (
        f"select count(*) as row_count, min({column}) as first_at, max({column}) as last_at "
        f"from {PREFIX}{name}"
    )
    row = _run(engine, mapping.apply(body, dialect), path)[0]
    return int(row[0]), _day(row[1]), _day(row[2])


def _sample(
    engine: Engine, mapping: SourceMapping, dialect: str, name: str, path: Path, rows: int
) -> dict[str, list[Any]]:
    names = [column.name for column in canonical_columns()[name]]
    body = f"select {', '.join(names)} from {PREFIX}{name} limit {int(rows)}"
    fetched = _run(engine, mapping.apply(body, dialect), path)
    return {column: [row[i] for row in fetched] for i, column in enumerate(names)}


def _run(engine: Engine, statement: str, path: Path) -> Sequence[Any]:
    """Rows of a profile query; a rejection names the mapping file behind it."""
    return run_statement(engine, statement, path)[1]


#: How SQLAlchemy stores dates and timestamps on SQLite (which has no date type): text
#: in exactly these shapes sorts and compares like the dates it holds.
_SQLITE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SQLITE_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}")


def _as_stored(values: list[Any], kind: str, dialect: str) -> list[Any]:
    """Sample values as the KPI queries see them: on SQLite, text in SQLAlchemy's date or
    timestamp shape is that date (any other text stays text, and is reported)."""
    if dialect != "sqlite" or kind not in {"date", "timestamp"}:
        return values
    shape = _SQLITE_DATE if kind == "date" else _SQLITE_TIMESTAMP
    parse = dt.date.fromisoformat if kind == "date" else dt.datetime.fromisoformat
    return [parse(v) if isinstance(v, str) and shape.fullmatch(v) else v for v in values]


def _day(value: Any) -> dt.date | None:
    """A date from a min/max value (SQLite: its stored text; other text is no date and
    is reported by the column check)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _SQLITE_DATE.fullmatch(value[:10]):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _show(value: Any) -> str:
    from crm_batch.source.quality import escape_text

    shown = escape_text(repr(value))
    return shown if len(shown) <= MAX_EXAMPLE_CHARS else shown[:MAX_EXAMPLE_CHARS] + "..."
