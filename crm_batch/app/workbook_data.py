"""What a team workbook needs from the database besides the KPI run: the stored snapshots
of its Dashboard (previous values, trend) and the latest stored follow-ups.

Both live in the state database. The workbook code (:mod:`crm_batch.excel`) receives
these as frames and never opens a database. The nightly job reads them on its run's
state engine (:func:`read_history`, :func:`crm_batch.app.followups.latest_followups`);
the Refresh button, which has no engine, asks :func:`saved_state`, which opens its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Engine

from crm_batch.app.engines import open_state
from crm_batch.app.followups import latest_followups
from crm_batch.app.snapshots import NO_TEAM_SCOPE, read_snapshots
from crm_batch.config import Settings
from crm_batch.source.teams import UNASSIGNED


def history_start(as_of: date) -> date:
    """The first day of snapshots a Dashboard may show for ``as_of``: 12 months of trend,
    and a previous quarter's comparison day before them."""
    return date(as_of.year - 1, as_of.month, 1) - timedelta(days=92)


def read_history(engine: Engine, as_of: date, kpis: Iterable[str]) -> pd.DataFrame:
    """The stored team snapshots of ``kpis`` from :func:`history_start` up to ``as_of``,
    every team's (pass it to :func:`crm_batch.excel.teamdata.team_workbook_data` as
    ``history``); the customers without a team as scope ``team`` of the run's
    ``(unassigned)`` key."""
    wanted = sorted(set(kpis))
    start = history_start(as_of)
    teams = read_snapshots(engine, kpis=wanted, scope="team", start=start, end=as_of)
    nobody = read_snapshots(engine, kpis=wanted, scope=NO_TEAM_SCOPE, start=start, end=as_of)
    if nobody.empty:
        return teams
    nobody = nobody.assign(
        scope=pd.Series("team", index=nobody.index, dtype="string"),
        team=pd.Series(UNASSIGNED, index=nobody.index, dtype="string"),
    )
    return pd.concat([teams, nobody], ignore_index=True)


@dataclass(frozen=True)
class SavedState:
    """The stored data a team workbook shows next to a KPI run."""

    followups: pd.DataFrame  # latest stored follow-up of each customer asked for
    history: pd.DataFrame  # :func:`read_history`'s frame


def saved_state(
    settings: Settings, as_of: date, customer_ids: Iterable[str], kpis: Iterable[str]
) -> SavedState:
    """The latest follow-ups of ``customer_ids`` and the snapshots of ``kpis`` (see
    :func:`read_history`), read on a connection of its own."""
    with open_state(settings) as engine:
        return SavedState(latest_followups(engine, customer_ids), read_history(engine, as_of, kpis))
