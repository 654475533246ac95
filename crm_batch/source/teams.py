"""Team names as read from the source: normalised once, where the rows arrive.

Every frame a sql/ query returns with a ``team`` column goes through
:func:`normalise_team_column` (:func:`crm_batch.source.extract.fetch_task`), so the KPI
engine, the workbooks, the reports and the snapshots all see the same name for a team,
night after night: surrounding whitespace is trimmed and every run of whitespace (line
breaks and tabs included) becomes one space. A customer (or lead) without a team, NULL,
``''`` or only whitespace, gets :data:`UNASSIGNED`, the scope of customers nobody owns;
a team literally named ``(unassigned)`` is that scope too.

A normalised name can still be unusable as a scope (:func:`team_name_problem`): control
or format characters (ESC, NUL, bidirectional overrides) or more than
:data:`MAX_TEAM_CHARS` characters (the width of the ``team`` columns of the output
tables). Such a team gets no snapshot, workbook or report; its customers still count in
the company's KPIs (:func:`crm_batch.app.kpis.run_kpis` reports it). The data check
``customers_team_not_normal`` lists the rows whose team is stored in another form.
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

#: The scope of customers and leads without a team (NULL, '' or only whitespace).
UNASSIGNED = "(unassigned)"
#: Longest usable team name: the ``team`` columns of kpi_snapshots and deliveries.
MAX_TEAM_CHARS = 64

_WHITESPACE = re.compile(r"\s+", re.UNICODE)


def normalise_team(value: object) -> str:
    """``value`` trimmed with its whitespace collapsed; :data:`UNASSIGNED` when it is
    missing or blank."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return UNASSIGNED
    text = _WHITESPACE.sub(" ", str(value)).strip()
    if not text or text.casefold() == UNASSIGNED.casefold():
        return UNASSIGNED
    return text


def team_name_problem(name: str) -> str | None:
    """Why the normalised team ``name`` cannot be a scope of its own (None: it can)."""
    if name == UNASSIGNED:
        return None
    if len(name) > MAX_TEAM_CHARS:
        return f"the name has {len(name)} characters, more than {MAX_TEAM_CHARS}"
    controls = sorted({char for char in name if unicodedata.category(char).startswith("C")})
    if controls:
        shown = ", ".join(f"U+{ord(char):04X}" for char in controls)
        return f"the name holds control or format characters ({shown})"
    return None


def normalise_team_column(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its ``team`` column normalised (:func:`normalise_team`); frames
    without one are returned as they are. Each distinct name is normalised once."""
    if "team" not in frame.columns:
        return frame
    codes, uniques = pd.factorize(frame["team"], use_na_sentinel=True)
    names = [normalise_team(value) for value in uniques] + [UNASSIGNED]
    dtype = frame["team"].dtype
    dtype = dtype if isinstance(dtype, pd.StringDtype) else pd.StringDtype()
    teams = pd.array(names, dtype=dtype).take(codes)  # code -1 (missing): the last
    return frame.assign(team=pd.Series(teams, index=frame.index, name="team"))
