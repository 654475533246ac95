"""What a team workbook shows, as plain data: assembled from a KPI run, no database access.

:func:`team_workbook_data` takes a :class:`~crm_batch.app.kpis.KpiRun` (the nightly run),
the stored follow-ups and, optionally, the stored KPI snapshots (frames read by
:mod:`crm_batch.app.workbook_data`), and returns a
:class:`TeamWorkbookData`: the Dashboard's KPI tiles and trend, and one frame per table
sheet keyed by :mod:`crm_batch.excel.layout`'s column keys (raw category keys, not yet
translated). :mod:`crm_batch.excel.sheet_values` turns a sheet's frame into cell values
in a language.

Decisions (documented in the README's "Team workbooks" section):

* **Previous period** of a KPI tile: the stored snapshot of the team at the comparison
  day, as :mod:`crm_batch.kpi.tiles` rules (the diagnosis report's tiles use the same
  rule); no KPI is recomputed for this.
* **Trend**: the team's point-in-time KPIs ``revenue_12m`` (rolling 12-month net
  revenue) and ``active_count`` at the end of each of the last 12 calendar months, each
  month's value being its last stored snapshot (the current month: the run itself).
  Months without a snapshot stay empty: the chart fills in as nightly runs accumulate
  (``snapshots --backfill`` fills quarter ends).
* **Follow-ups order** (one row per team customer): churn warning ``high``, then
  greetings due (care events whose greeting date is today or past), then warnings
  ``medium`` and ``low``, then upcoming care events, then everyone else; inside a group
  by revenue at risk, else 12-month revenue (highest first), then customer id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import numpy as np
import pandas as pd

from crm_batch.app.kpis import KpiRun
from crm_batch.config import Settings
from crm_batch.excel import layout
from crm_batch.excel.cells import WorkbookError, check_row_limit
from crm_batch.kpi.engine import kpi_note
from crm_batch.kpi.tiles import NO_HISTORY, KpiTile, history_by_kpi, kpi_tiles

#: KPIs of the Dashboard chart (point-in-time, one value per month end).
TREND_KPIS: tuple[str, ...] = ("revenue_12m", "active_count")
TREND_MONTHS = 12
#: The stored snapshots a Dashboard reads: its tiles' KPIs and the trend's
#: (:func:`crm_batch.app.workbook_data.read_history`).
HISTORY_KPIS: tuple[str, ...] = tuple(sorted(set(layout.DASHBOARD_KPIS) | set(TREND_KPIS)))


@dataclass(frozen=True)
class TeamWorkbookData:
    """Everything one team workbook shows; frames are keyed by layout column keys."""

    team: str
    language: str
    as_of: date
    period_label: str
    period_start: date
    period_end: date
    currency: str
    company_name: str
    generated_at: datetime
    tiles: tuple[KpiTile, ...]
    trend: pd.DataFrame  # month (datetime64, first day), revenue_12m, active_count
    frames: Mapping[str, pd.DataFrame]  # customers, watchlist, care, advocates, followups
    #: latest stored follow-up per customer: customer_id -> (outcome, note,
    #: next_contact_date, entered_by, entered_at)
    latest_followups: Mapping[str, tuple[object, ...]] = field(default_factory=dict)

    def rows(self, sheet_key: str) -> int:
        """Data rows of a table sheet."""
        return len(self.frames[sheet_key])


def _ids(values: pd.Series) -> pd.Series:
    """Customer ids as Python text (ids are opaque keys: integer or text in the source)."""
    return pd.Series(values.astype(str).to_numpy(dtype=object), index=values.index)


#: Ids up to this long are sorted as a fixed-width numpy text array (n x length x 4 bytes).
_SORT_KEY_MAX_LENGTH = 64


def _sort_keys(ids: pd.Series) -> np.ndarray:
    """Customer ids (text) as a sort key in code point order, as Python compares text.

    A fixed-width unicode array sorts about 3x faster than Python objects; it drops
    trailing NUL characters, so ids with a NUL, or long ones (the array holds the
    longest length for every row), stay objects.
    """
    values = ids.to_numpy(dtype=object)
    if len(values):
        longest = max(map(len, values))
        if longest <= _SORT_KEY_MAX_LENGTH and "\0" not in "".join(values):
            return values.astype(f"U{longest or 1}")
    return values


def team_workbook_data(
    run: KpiRun,
    team: str,
    followups_frame: pd.DataFrame | None,
    settings: Settings,
    *,
    history: pd.DataFrame | None = None,
    generated_at: datetime | None = None,
    language: str | None = None,
) -> TeamWorkbookData:
    """Assemble ``team``'s workbook content from ``run`` (which must hold its report).

    ``followups_frame`` is the ``followups`` table (any teams; None or empty when there
    is none yet); ``history`` is :func:`crm_batch.app.workbook_data.read_history`'s
    frame (None: no previous values, and the trend shows the current month only).
    """
    report = run.reports.get(team)
    if report is None:
        raise WorkbookError(f"the KPI run has no report for team {team!r}: compute it first")
    language = layout.check_language(language or settings.team(team).language)
    generated_at = generated_at or datetime.now(settings.tz).replace(tzinfo=None)
    team_history = _team_history(history, team)
    requested = run.requested or run.period
    measured = kpi_tiles(layout.DASHBOARD_KPIS, report.kpis, team_history, requested, run.as_of)
    tiles = tuple(
        replace(t, note=kpi_note(report, t.name, language), missing=t.name in report.missing)
        for t in measured
    )
    customers = _customers(report.customers, report.churn_warnings)
    latest = _latest_followups(followups_frame, customers["customer_id"])
    frames = {
        "customers": customers,
        "watchlist": _watchlist(report.churn_warnings),
        "care": _care(report.care_calendar),
        "advocates": _advocates(
            report.customers, report.advocate_candidates, settings.thresholds.advocate_min_referrals
        ),
        "followups": _followups(customers, report.care_calendar, latest, run.as_of),
    }
    for key, frame in frames.items():
        check_row_limit(team, key, len(frame))
    return TeamWorkbookData(
        team=team,
        language=language,
        as_of=run.as_of,
        period_label=run.period.label,
        period_start=run.period.start,
        period_end=run.period.end,
        currency=settings.currency,
        company_name=settings.company_name,
        generated_at=generated_at,
        tiles=tiles,
        trend=_trend(history_by_kpi(team_history), run.as_of, report.kpis),
        frames=frames,
        latest_followups=latest,
    )


def _team_history(history: pd.DataFrame | None, team: str) -> pd.DataFrame:
    if history is None or history.empty:
        return pd.DataFrame({"as_of": pd.Series(dtype="datetime64[ns]"), "kpi": [], "value": []})
    rows = history[(history["scope"] == "team") & (history["team"] == team)]
    return rows.loc[:, ["as_of", "kpi", "value"]]


def _trend(
    history: Mapping[str, tuple[np.ndarray, np.ndarray]], as_of: date, current: Mapping[str, float]
) -> pd.DataFrame:
    """Last snapshot value per month of :data:`TREND_KPIS` (:func:`_history_by_kpi`'s
    arrays; missing values skipped), the run's own in as_of's month."""
    last_month = np.datetime64(as_of, "M")
    months = np.arange(last_month - (TREND_MONTHS - 1), last_month + 1)
    trend = pd.DataFrame({"month": months.astype("datetime64[ns]")})
    for kpi in TREND_KPIS:
        days, values = history.get(kpi, NO_HISTORY)
        known = ~np.isnan(values)
        order = np.argsort(days[known], kind="stable")
        month_of = days[known][order].astype("datetime64[M]")
        column = np.full(len(months), np.nan)
        if len(month_of):
            # the last snapshot of each month: the rightmost day at or before its end
            last = np.searchsorted(month_of, months, side="right") - 1
            found = (last >= 0) & (month_of[last.clip(0)] == months)
            column[found] = values[known][order][last[found]]
        column[-1] = float(current.get(kpi, math.nan))
        trend[kpi] = column
    return trend


def _customers(table: pd.DataFrame, warnings: pd.DataFrame) -> pd.DataFrame:
    keys = pd.Index(_ids(warnings["customer_id"]))
    ids = _ids(table["customer_id"])
    if keys.is_unique:  # one position look-up for the three columns
        position = keys.get_indexer(ids)
        level = _take(warnings["level"], position, "object", ids.index)
        at_risk = _take(warnings["revenue_at_risk"], position, "float64", ids.index)
        action = _take(warnings["warning_action_key"], position, "object", ids.index)
    else:  # Series.map names the problem (a customer warned twice)
        by_id = warnings.set_index(keys)
        level = ids.map(by_id["level"]).astype("object")
        at_risk = ids.map(by_id["revenue_at_risk"]).astype("float64")
        action = ids.map(by_id["warning_action_key"]).astype("object")
    action = action.where(action.notna(), table["next_action_key"].astype("object"))
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "customer_name": table["name"].astype("object"),
            "owner": table["owner"].astype("object"),
            "region": table["region"].astype("object"),
            "tier": table["tier"],
            "value_tier": table["value_tier"],
            "lifecycle": table["lifecycle"],
            "r_score": table["r_score"].astype("Float64").astype("float64"),
            "f_score": table["f_score"].astype("Float64").astype("float64"),
            "m_score": table["m_score"].astype("Float64").astype("float64"),
            "rfm_segment": table["rfm_segment"],
            "last_order_date": table["last_order_date"].astype("datetime64[ns]"),
            "recency_days": table["recency_days"].astype("Float64").astype("float64"),
            "orders_12m": table["orders_12m"].astype("float64"),
            "revenue_12m": table["revenue_12m"].astype("float64"),
            **_predicted(table),
            "churn_warning_level": level,
            "revenue_at_risk": at_risk,
            "next_action": action,  # action keys, translated per sheet language
        }
    )
    order = np.lexsort(
        (_sort_keys(frame["customer_id"]), -frame["revenue_12m"].fillna(0).to_numpy())
    )
    return frame.iloc[order].reset_index(drop=True)


def _predicted(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """The predicted-value columns (crm_batch.kpi.predict.SCORE_COLUMNS) as floats."""
    return {
        name: rows[name].astype("float64")
        for name in ("p_alive", "expected_orders_12m", "expected_revenue_12m")
    }


def _take(values: pd.Series, position: np.ndarray, dtype: str, index: pd.Index) -> pd.Series:
    """``values`` at ``position`` (-1: not there, NaN), as ``dtype``."""
    source = values.to_numpy(dtype=dtype, na_value=np.nan)
    out = np.full(len(position), np.nan, dtype=dtype)
    found = position >= 0
    out[found] = source[position[found]]
    return pd.Series(out, index=index, dtype=dtype)


def _watchlist(warnings: pd.DataFrame) -> pd.DataFrame:
    hours = warnings["complaint_hours_open"].astype("float64")
    return pd.DataFrame(
        {
            "customer_id": _ids(warnings["customer_id"]),
            "customer_name": warnings["name"].astype("object"),
            "owner": warnings["owner"].astype("object"),
            "level": warnings["level"].astype("object"),
            "signals": warnings["signals"].astype("object"),
            "revenue_at_risk": warnings["revenue_at_risk"].astype("float64"),
            "tier": warnings["tier"],
            "value_tier": warnings["value_tier"],
            "last_order_date": warnings["last_order_date"].astype("datetime64[ns]"),
            "recency_days": warnings["recency_days"].astype("Float64").astype("float64"),
            "revenue_12m": warnings["revenue_12m"].astype("float64"),
            **_predicted(warnings),
            "complaint_hours_open": np.floor(hours),
            "next_action": warnings["warning_action_key"].astype("object"),
        }
    ).reset_index(drop=True)  # already in calling order (kpi.churn.rank_for_calls)


def _care(calendar: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": _ids(calendar["customer_id"]),
            "customer_name": calendar["name"].astype("object"),
            "owner": calendar["owner"].astype("object"),
            "event": calendar["event"].astype("object"),
            "event_date": calendar["event_date"].astype("datetime64[ns]"),
            "due_date": calendar["due_date"].astype("datetime64[ns]"),
            "is_due": calendar["is_due"].astype("boolean"),
            "years": calendar["years"].astype("float64"),
            "marketing_opt_out": calendar["marketing_opt_out"].astype("boolean"),
        }
    ).reset_index(drop=True)  # by due date


def _advocates(table: pd.DataFrame, candidates: pd.DataFrame, min_referrals: int) -> pd.DataFrame:
    """Advocates (>= ``min_referrals`` successful referrals): candidates to invite first
    (in the KPI engine's order), then the others by referrals and 12-month revenue."""
    chosen = table[table["referrals_successful"].fillna(0) >= min_referrals]
    candidate_ids = list(_ids(candidates["customer_id"]))
    rank = {cid: i for i, cid in enumerate(candidate_ids)}
    ids = _ids(chosen["customer_id"])
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "customer_name": chosen["name"].astype("object"),
            "owner": chosen["owner"].astype("object"),
            "status": np.where(ids.isin(rank), "candidate", "advocate"),
            "referrals_successful": chosen["referrals_successful"].astype("float64"),
            "orders_12m": chosen["orders_12m"].astype("float64"),
            "revenue_12m": chosen["revenue_12m"].astype("float64"),
            "value_tier": chosen["value_tier"],
        }
    )
    order = np.lexsort(  # the last key sorts first; NaN (no revenue) last, as pandas does
        (
            _sort_keys(frame["customer_id"]),
            -frame["revenue_12m"].to_numpy(dtype="float64", na_value=np.nan),
            -frame["referrals_successful"].to_numpy(dtype="float64", na_value=np.nan),
            np.array([rank.get(cid, len(rank)) for cid in ids.tolist()], dtype="float64"),
        )
    )
    return frame.iloc[order].reset_index(drop=True)


def _latest_followups(
    followups: pd.DataFrame | None, team_ids: pd.Series
) -> dict[str, tuple[object, ...]]:
    """The latest stored follow-up (by ``entered_at``) of each of the team's customers."""
    if followups is None or followups.empty:
        return {}
    frame = followups.assign(customer_id=_ids(followups["customer_id"]))
    frame = frame[frame["customer_id"].isin(set(team_ids))]
    frame = frame.sort_values(["customer_id", "entered_at"], kind="stable")
    frame = frame.drop_duplicates("customer_id", keep="last")
    result = {}
    for row in frame.itertuples(index=False):
        result[str(row.customer_id)] = (
            none_if_missing(row.outcome),
            none_if_missing(row.note),
            _as_date(row.next_contact_date),
            none_if_missing(row.entered_by),
            _as_datetime(row.entered_at),
        )
    return result


def none_if_missing(value: object) -> object:
    """None for a missing value (None, NaN, NA, NaT), else the value itself."""
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _as_date(value: object) -> date | None:
    if none_if_missing(value) is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _as_datetime(value: object) -> datetime | None:
    if none_if_missing(value) is None:
        return None
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


_NO_FOLLOWUP: tuple[object, ...] = (None,) * 5


def _followups(
    customers: pd.DataFrame,
    calendar: pd.DataFrame,
    latest: Mapping[str, tuple[object, ...]],
    as_of: date,
) -> pd.DataFrame:
    """One row per customer in priority order (see the module docs); the computed
    columns only (the input and status columns are filled by :func:`followup_columns`)."""
    ids = customers["customer_id"]
    due = set(_ids(calendar.loc[calendar["is_due"].fillna(False).astype(bool), "customer_id"]))
    upcoming = set(_ids(calendar["customer_id"])) - due
    level = customers["churn_warning_level"]
    group = np.full(len(customers), 5)
    group[ids.isin(upcoming).to_numpy()] = 4
    group[(level == "low").to_numpy()] = 3
    group[(level == "medium").to_numpy()] = 2
    group[ids.isin(due).to_numpy() & (group > 1)] = 1
    group[(level == "high").to_numpy()] = 0
    money = customers["revenue_at_risk"].fillna(customers["revenue_12m"]).fillna(0).to_numpy()
    order = np.lexsort((_sort_keys(ids), -money, group))

    def pick(key: str) -> pd.Series:
        # object columns: an inferred Arrow string column cannot hold every text
        return pd.Series(customers[key].to_numpy(dtype=object)[order], dtype="object")

    chosen_ids = pick("customer_id")
    if latest:
        stored = [latest.get(cid, _NO_FOLLOWUP) for cid in chosen_ids.tolist()]
        last_outcome = pd.Series([entry[0] for entry in stored], dtype="object")
        last_at = pd.to_datetime(pd.Series([entry[4] for entry in stored], dtype="object"))
    else:
        last_outcome = pd.Series([None] * len(order), dtype="object")
        last_at = pd.Series(pd.NaT, index=range(len(order)), dtype="datetime64[ns]")
    return pd.DataFrame(
        {
            "customer_id": chosen_ids,
            "customer_name": pick("customer_name"),
            "owner": pick("owner"),
            "next_action": pick("next_action"),
            "last_outcome": last_outcome,
            "last_contact_at": last_at.astype("datetime64[ns]"),
        }
    )
