"""KPI snapshots: one row per (as_of, scope, team, kpi) in the ``kpi_snapshots`` table.

Quarterly reports compare periods from stored snapshots instead of recomputing history.
Writing is idempotent: :func:`write_snapshots` deletes every row of the business date and
inserts the new set in one transaction, so re-running a date replaces it (never
duplicates) and a failed write leaves the previous set in place. Scope ``all`` (the
company) has team ``''``; scope ``team`` names the team; scope ``noteam`` (the customers
without a team, the KPI run's ``(unassigned)`` report) has team ``''`` too, so it can
never collide with a real team, whatever it is called (:func:`scope_of`). A NaN or
infinite value (a rate with no denominator) is stored as NULL and read back as NaN.
``computed_at`` is stored to the second (MariaDB's DATETIME keeps no fractions), so
every database reads back the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Table, delete, inspect, select
from sqlalchemy.engine import Engine

from crm_batch.schema import build_metadata
from crm_batch.source.conform import as_date
from crm_batch.source.teams import MAX_TEAM_CHARS, UNASSIGNED

SCOPES = ("all", "team", "noteam")
#: The scope of the customers without a team.
NO_TEAM_SCOPE = "noteam"
SNAPSHOT_COLUMNS = ("as_of", "scope", "team", "kpi", "value", "computed_at")

SnapshotValues = Mapping[tuple[str, str], Mapping[str, float]] | pd.DataFrame


def scope_of(team: str | None) -> tuple[str, str]:
    """The stored ``(scope, team)`` of a KPI run's report key: None is the company,
    :data:`~crm_batch.source.teams.UNASSIGNED` the customers without a team."""
    if team is None:
        return ("all", "")
    if team == UNASSIGNED:
        return (NO_TEAM_SCOPE, "")
    return ("team", team)


def team_of(scope: str, team: str) -> str | None:
    """The KPI run's report key of a stored ``(scope, team)`` (:func:`scope_of` reversed)."""
    if scope == "all":
        return None
    return UNASSIGNED if scope == NO_TEAM_SCOPE else team


def scope_problem(scope: object, team: object) -> str | None:
    """Why ``(scope, team)`` cannot be stored (None: it can)."""
    if scope not in SCOPES:
        return (
            f"snapshot scope must be 'all' or 'team' (or '{NO_TEAM_SCOPE}', the customers "
            f"without a team), got {scope!r}"
        )
    if (scope == "team") == (team == ""):
        return (
            f"snapshot scope {scope!r} with team {team!r}: scope 'all' has team '' (so "
            f"does '{NO_TEAM_SCOPE}'), scope 'team' names the team"
        )
    if len(str(team)) > MAX_TEAM_CHARS:
        return (
            f"snapshot team of {len(str(team))} characters: kpi_snapshots.team holds at "
            f"most {MAX_TEAM_CHARS}"
        )
    return None


def _table() -> Table:
    return build_metadata().tables["kpi_snapshots"]


def write_snapshots(
    engine: Engine, as_of: date, values: SnapshotValues, computed_at: datetime
) -> int:
    """Replace the snapshots of ``as_of`` with ``values``; return the number of rows.

    ``values`` is either ``{(scope, team): {kpi: value}}`` or a frame with columns
    ``scope, team, kpi, value``. ``computed_at`` is a naive local timestamp (a timezone
    is dropped, keeping the wall time). Creates ``kpi_snapshots`` if it is missing.
    """
    as_of = as_date(as_of)
    rows = _rows(as_of, values, _naive(computed_at))
    table = _table()
    table.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.as_of == as_of))
        if rows:
            conn.execute(table.insert(), rows)
    return len(rows)


def read_snapshots(
    engine: Engine,
    kpis: Iterable[str] | None = None,
    scope: str | None = None,
    team: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """Stored snapshots, filtered; ``start`` and ``end`` are inclusive business dates.

    Columns as in the table (``as_of`` and ``computed_at`` as datetime64, ``value``
    float with NaN for NULL), sorted by as_of, scope, team, kpi. An empty frame when the
    table does not exist yet.
    """
    if not inspect(engine).has_table("kpi_snapshots"):
        return _frame([])
    table = _table()
    query = select(*(table.c[name] for name in SNAPSHOT_COLUMNS))
    if kpis is not None:
        query = query.where(table.c.kpi.in_(list(kpis)))
    if scope is not None:
        query = query.where(table.c.scope == scope)
    if team is not None:
        query = query.where(table.c.team == team)
    if start is not None:
        query = query.where(table.c.as_of >= start)
    if end is not None:
        query = query.where(table.c.as_of <= end)
    query = query.order_by(table.c.as_of, table.c.scope, table.c.team, table.c.kpi)
    with engine.connect() as conn:
        records = conn.execute(query).all()
    return _frame(records)


def _frame(records: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(SNAPSHOT_COLUMNS))
    return pd.DataFrame(
        {
            "as_of": pd.to_datetime(frame["as_of"]).astype("datetime64[ns]"),
            "scope": frame["scope"].astype("string"),
            "team": frame["team"].astype("string"),
            "kpi": frame["kpi"].astype("string"),
            "value": pd.to_numeric(frame["value"]).astype("float64"),
            "computed_at": pd.to_datetime(frame["computed_at"]).astype("datetime64[ns]"),
        }
    )


def _rows(as_of: date, values: SnapshotValues, computed_at: datetime) -> list[dict[str, Any]]:
    """Validate and flatten ``values`` into insert rows."""
    if isinstance(values, pd.DataFrame):
        missing = {"scope", "team", "kpi", "value"} - set(values.columns)
        if missing:
            raise ValueError(f"snapshot frame lacks column(s) {', '.join(sorted(missing))}")
        flat = list(
            zip(
                values["scope"].tolist(),
                values["team"].tolist(),
                values["kpi"].tolist(),
                values["value"].tolist(),
                strict=True,
            )
        )
    else:
        flat = [
            (scope, team, kpi, value)
            for (scope, team), kpis in values.items()
            for kpi, value in kpis.items()
        ]
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for scope, team, kpi, value in flat:
        team = "" if team is None or (isinstance(team, float) and math.isnan(team)) else team
        problem = scope_problem(scope, team)
        if problem is not None:
            raise ValueError(problem)
        key = (scope, str(team), str(kpi))
        if key in seen:
            raise ValueError(f"snapshot {key} appears twice for {as_of.isoformat()}")
        seen.add(key)
        rows.append(
            {
                "as_of": as_of,
                "scope": scope,
                "team": str(team),
                "kpi": str(kpi),
                "value": _number(value),
                "computed_at": computed_at,
            }
        )
    return rows


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _naive(moment: datetime) -> datetime:
    moment = pd.Timestamp(moment).to_pydatetime()
    return moment.replace(tzinfo=None, microsecond=0)
