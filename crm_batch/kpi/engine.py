"""The KPI engine: the whole KPI set and the tables of one period, overall or per team.

Pure pandas: it takes the extracted :class:`~crm_batch.source.frames.PeriodFrames` of a
period (the service :func:`crm_batch.app.kpis.run_kpis` extracts them) and the
thresholds. :func:`prepare` aligns and segments the frames once for every team;
:func:`period_report` then gives a :class:`PeriodReport` per scope: every registry KPI
by name, and the campaign funnels, cohort matrix, tier migration matrix, care
calendar, advocate candidates and churn watchlist as frames.

Predicted value: BG/NBD and Gamma-Gamma (:mod:`crm_batch.kpi.predict`) are fitted once
on every buyer of the end table (population models) and score each customer; a team's
predicted KPIs sum its customers' scores.

Dates: the period is measured up to T (clipped: "this quarter" on a mid-quarter T is
quarter to date). Point-in-time KPIs (customer counts, tiers, lifecycle, churn
warnings, Pareto, advocates) are taken at the clipped period's last day; the care
calendar looks ahead from T itself.

Teams: a team's KPIs use its customers (the register's current ``team``), its leads
(the lead's ``team``) and the touches of its customers; referral credit goes to the
referrer's team (:mod:`crm_batch.kpi.referral`). A team without customers gets counts
of 0 and NaN rates, never an error. One prepared period serves every team.

Optional tables: when the frames name absent tables (``absent_tables``), every KPI whose
registry entry ``needs`` one of them is NaN (null in outputs) and listed in
:attr:`PeriodReport.missing`; those it can do without are listed in
:attr:`PeriodReport.partial` (:mod:`crm_batch.kpi.definitions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from crm_batch.config import ThresholdSettings
from crm_batch.i18n.messages import absent_reason, partial_reason
from crm_batch.kpi import (
    alive,
    campaigns,
    care,
    cohorts,
    conversion,
    migration,
    pareto,
    predict,
    referral,
    repurchase,
    service,
    uplift,
)
from crm_batch.kpi.campaigns import CAMPAIGN_COLUMNS
from crm_batch.kpi.churn import churn_warnings, rank_for_calls
from crm_batch.kpi.definitions import missing_kpis, partial_kpis, registry
from crm_batch.kpi.facts import customer_table
from crm_batch.kpi.keys import attach, positions, positions_many, take, team_codes
from crm_batch.kpi.segments import as_of_kpis, segment_customers
from crm_batch.periods import COHORT_MONTHS, Period
from crm_batch.source.frames import PeriodFrames, SourceFrames

#: Register columns kept in the start-of-period table: its tiers feed the migration
#: matrix and the touches' segments only, so names and contacts are not copied there.
START_COLUMNS = ("customer_id", "team", "signup_date")


class TeamViews:
    """Each team's rows of the prepared frames, grouped once per frame.

    A million-row frame is grouped by ``team`` once (integer codes), so each team's view
    is a positional take instead of a text comparison per team and frame; the rows and
    their order are those of ``frame[frame["team"] == team]``.
    """

    def __init__(self) -> None:
        self._groups: dict[int, tuple[pd.DataFrame, dict[object, np.ndarray]]] = {}
        self._start_in_end: np.ndarray | None = None
        self._start_tiers: pd.DataFrame | None = None

    def rows(self, frame: pd.DataFrame, team: str) -> np.ndarray:
        """Positions of ``team``'s rows in ``frame``, ascending (empty for no rows)."""
        entry = self._groups.get(id(frame))
        if entry is None or entry[0] is not frame:
            codes, uniques = pd.factorize(frame["team"])
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
            groups = {uniques[i]: order[bounds[i] : bounds[i + 1]] for i in range(len(uniques))}
            entry = (frame, groups)
            self._groups[id(frame)] = entry
        return entry[1].get(team, np.zeros(0, dtype="int64"))

    def of(self, frame: pd.DataFrame, team: str | None) -> pd.DataFrame:
        """``frame`` limited to ``team`` (None: the whole frame)."""
        if team is None:
            return frame
        return frame.take(self.rows(frame, team))

    def start_tiers(self, prepared: PreparedPeriod, team: str | None) -> pd.DataFrame:
        """The team's rows of the start table, limited to what tier migration reads."""
        return self.of(self.narrow_start(prepared), team)

    def narrow_start(self, prepared: PreparedPeriod) -> pd.DataFrame:
        """The start table's columns tier migration reads (customer_id, team, tier)."""
        if self._start_tiers is None:
            self._start_tiers = prepared.start_table.loc[:, ["customer_id", "team", "tier"]]
        return self._start_tiers

    def start_in_end(self, prepared: PreparedPeriod, team: str | None) -> np.ndarray:
        """For each row of the team's start table, its customer's row in the team's end
        table (-1: absent); customer ids are unique in both (they come from the register).
        """
        if self._start_in_end is None:
            self._start_in_end = positions(
                prepared.start_table["customer_id"], prepared.end_table["customer_id"]
            )
        if team is None:
            return self._start_in_end
        end_rows = self.rows(prepared.end_table, team)
        in_team = np.full(len(prepared.end_table), -1, dtype="int64")
        in_team[end_rows] = np.arange(len(end_rows))
        where = self._start_in_end[self.rows(self.narrow_start(prepared), team)]
        return np.where(where >= 0, in_team[np.maximum(where, 0)], -1)


@dataclass(frozen=True)
class PreparedPeriod:
    """A period's frames for all teams, aligned and segmented once.

    Every per-customer frame carries the customer's ``team`` (from the register), so a
    team's view is a plain column comparison (grouped once, see :class:`TeamViews`).
    """

    frames: PeriodFrames
    thresholds: ThresholdSettings
    period_orders: pd.DataFrame  # period_customer_orders.sql + team
    first_orders: pd.DataFrame  # customer_first_orders.sql + team
    tickets: pd.DataFrame  # tickets.sql + team
    people: pd.DataFrame  # the register for referral KPIs (referral.referral_people)
    start_table: pd.DataFrame  # segmented table the day before the period (START_COLUMNS)
    end_table: pd.DataFrame  # segmented customer table on the period's (clipped) last day
    warnings: pd.DataFrame  # churn watchlist on the period's last day
    touches: pd.DataFrame  # campaign touches of the period with attribution, cost and team
    untouched: pd.DataFrame  # campaigns started in the period without any touch
    care_calendar: pd.DataFrame  # events after T
    value_model: predict.ValueModel  # BG/NBD + Gamma-Gamma fitted on the end table's buyers
    views: TeamViews = field(default_factory=TeamViews, repr=False, compare=False)


@dataclass(frozen=True)
class PeriodReport:
    """The KPI set (registry name -> value) and the tables of one scope."""

    period: Period  # as measured: clipped to as_of
    as_of: date
    team: str | None
    kpis: dict[str, float]
    funnel_by_campaign: pd.DataFrame
    funnel_by_channel: pd.DataFrame
    funnel_by_segment: pd.DataFrame
    cohort_matrix: pd.DataFrame
    tier_migration: pd.DataFrame
    care_calendar: pd.DataFrame
    advocate_candidates: pd.DataFrame
    churn_warnings: pd.DataFrame
    customers: pd.DataFrame  # the segmented per-customer table at the period's end
    uplift_by_campaign: pd.DataFrame  # sent against control per campaign (kpi.uplift)
    uplift_by_channel: pd.DataFrame  # the same per channel, campaigns pooled
    alive_by_tier: pd.DataFrame  # P(alive) distribution per buyer value tier (kpi.alive)
    likely_lost: pd.DataFrame  # diamond/silver customers most likely lost, biggest first
    #: optional canonical tables not mapped (their frames were empty)
    absent_tables: frozenset[str] = frozenset()
    #: KPIs without data (NaN) -> the absent tables they need
    missing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: KPIs computed without a signal -> the absent tables they did without
    partial: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by a stable name (for writers that loop over them); the large
        per-customer table is :attr:`customers`, not listed here."""
        return {
            "funnel_by_campaign": self.funnel_by_campaign,
            "funnel_by_channel": self.funnel_by_channel,
            "funnel_by_segment": self.funnel_by_segment,
            "cohort_matrix": self.cohort_matrix,
            "tier_migration": self.tier_migration,
            "care_calendar": self.care_calendar,
            "advocate_candidates": self.advocate_candidates,
            "churn_warnings": self.churn_warnings,
            "uplift_by_campaign": self.uplift_by_campaign,
            "uplift_by_channel": self.uplift_by_channel,
            "alive_by_tier": self.alive_by_tier,
            "likely_lost": self.likely_lost,
        }


def _segmented(
    frames_as_of: SourceFrames, as_of: date, thresholds: ThresholdSettings
) -> pd.DataFrame:
    return segment_customers(customer_table(frames_as_of, as_of), thresholds)


def prepare(
    frames: PeriodFrames,
    thresholds: ThresholdSettings,
    stored_model: predict.ValueModel | None = None,
) -> PreparedPeriod:
    """Segment both ends of the period, attribute touches, list care events, add teams.

    ``stored_model``: the value models stored for the period's last day, used instead of
    a new fit when they were fitted on the same buyers (:func:`crm_batch.kpi.predict.fit`).
    """
    period = frames.period
    register = attach(frames.register, frames.first_orders, ["first_order_date"])
    start = replace(frames.start, customers=frames.start.customers.loc[:, list(START_COLUMNS)])
    start_table = _segmented(start, start.as_of, thresholds)
    end_table = _segmented(frames.end, period.end, thresholds)
    # one fit for the whole company (a population model); teams sum their customers' scores
    value_model = predict.fit(end_table, stored_model)
    end_table = predict.with_scores(end_table, value_model)
    warnings = rank_for_calls(
        attach(churn_warnings(end_table, period.end, thresholds), end_table, predict.SCORE_COLUMNS)
    )
    touches = campaigns.touch_table(
        frames.touches,
        frames.campaign_orders,
        frames.campaigns,
        period,
        thresholds.campaign_attribution_days,
        segments=start_table.set_index("customer_id")["value_tier"],
    )
    period_orders, first_orders, tickets, touches = _with_teams(
        register, [frames.period_orders, frames.first_orders, frames.tickets, touches]
    )
    return PreparedPeriod(
        frames=frames,
        thresholds=thresholds,
        period_orders=period_orders,
        first_orders=first_orders,
        tickets=tickets,
        people=referral.referral_people(register),
        start_table=start_table,
        end_table=end_table,
        warnings=warnings,
        touches=touches,
        untouched=campaigns.untouched_costs(frames.campaigns, period),
        care_calendar=care.care_calendar(
            register, frames.as_of, thresholds.care_lookahead_days, thresholds.care_lead_days
        ),
        value_model=value_model,
    )


def _with_teams(register: pd.DataFrame, frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Each frame with its customers' ``team`` from the register (one hash of the ids)."""
    found = positions_many([f["customer_id"] for f in frames], register["customer_id"])
    teams = register["team"].astype("string")
    return [f.assign(team=take(teams, w, f.index)) for f, w in zip(frames, found, strict=True)]


def period_report(prepared: PreparedPeriod, team: str | None = None) -> PeriodReport:
    """The KPI set and the tables of ``team`` (None = everyone) from a prepared period."""
    return period_reports(prepared, [] if team is None else [team], team is None)[team]


def period_reports(
    prepared: PreparedPeriod, teams: Sequence[str], include_company: bool = True
) -> dict[str | None, PeriodReport]:
    """The reports of the company (key None, when ``include_company``) and of ``teams``
    in one pass over the prepared frames; each equals :func:`period_report` of its scope.

    Each frame a step reads per team is split by team once (:class:`_Scopes`); the
    funnels and uplift tables are grouped by (team, columns) once and split, the
    advocate candidates and likely lost customers ranked once and split, the retention,
    lead conversion and referral flow KPIs counted by team in one pass
    (:func:`_by_team`); the other steps run on each team's slice. A team without rows
    gets the same empty tables as on its own. The company uses the whole frames.
    """
    teams = list(dict.fromkeys(teams))
    scopes = _Scopes(prepared, teams)
    grouped = _by_team(prepared, scopes) if len(teams) > 1 else None
    reports: dict[str | None, PeriodReport] = {}
    if include_company:
        reports[None] = _scope_report(prepared, None, scopes, None)
    for team in teams:
        reports[team] = _scope_report(prepared, team, scopes, grouped)
    return reports


@dataclass(frozen=True)
class _Split:
    """The requested teams' rows of one frame, sorted by team (stable)."""

    frame: pd.DataFrame
    by_team: pd.DataFrame  # the rows of the requested teams, team by team
    order: np.ndarray  # by_team's rows in frame
    codes: np.ndarray  # each row of frame: its team's position in the request (-1: none)
    bounds: np.ndarray  # team i's rows are by_team[bounds[i]:bounds[i + 1]]


class _Scopes:
    """Each requested team's rows of the prepared frames.

    For several teams a frame is sorted by team once (one take of its rows) and each
    team's rows are a slice of it (no copy); for one team its rows are taken directly
    (:class:`TeamViews`). Either way the rows, their order and index are those of
    ``frame[frame["team"] == team]``.
    """

    def __init__(self, prepared: PreparedPeriod, teams: Sequence[str]) -> None:
        self.prepared = prepared
        self.teams = list(teams)
        self.position = {team: i for i, team in enumerate(self.teams)}
        self._splits: dict[int, _Split] = {}
        self._end_positions: np.ndarray | None = None

    def of(self, frame: pd.DataFrame, team: str | None) -> pd.DataFrame:
        """``frame`` limited to ``team`` (None: the whole frame)."""
        if team is None:
            return frame
        if len(self.teams) < 2:
            return self.prepared.views.of(frame, team)
        split = self.split(frame)
        i = self.position[team]
        return split.by_team.iloc[split.bounds[i] : split.bounds[i + 1]]

    def split(self, frame: pd.DataFrame) -> _Split:
        """``frame``'s rows of the requested teams sorted by team; once per frame."""
        split = self._splits.get(id(frame))
        if split is None or split.frame is not frame:
            small = "int16" if len(self.teams) < 2**15 else "int64"  # int16: a radix sort
            codes = team_codes(frame["team"], self.teams).astype(small)
            order = np.argsort(codes, kind="stable")
            order = order[np.searchsorted(codes[order], 0) :]  # other teams' rows (-1) out
            bounds = np.searchsorted(codes[order], np.arange(len(self.teams) + 1))
            split = _Split(frame, frame.take(order), order, codes, bounds)
            self._splits[id(frame)] = split
        return split

    def start_tiers(self, team: str | None) -> pd.DataFrame:
        """The team's rows of the start table, limited to what tier migration reads."""
        if team is None or len(self.teams) < 2:
            return self.prepared.views.start_tiers(self.prepared, team)
        return self.of(self.prepared.views.narrow_start(self.prepared), team)

    def start_in_end(self, team: str | None) -> np.ndarray:
        """:meth:`TeamViews.start_in_end` from the split frames: for each row of the
        team's start table, its customer's row in the team's end table (-1: absent)."""
        views, prepared = self.prepared.views, self.prepared
        if team is None or len(self.teams) < 2:
            return views.start_in_end(prepared, team)
        end = self.split(prepared.end_table)
        if self._end_positions is None:  # each end row's position within its team's rows
            positions = np.full(len(end.codes), -1, dtype="int64")
            kept = end.codes[end.order].astype("int64")
            positions[end.order] = np.arange(len(end.order)) - end.bounds[kept]
            self._end_positions = positions
        i = self.position[team]
        start = self.split(views.narrow_start(prepared))
        where = views.start_in_end(prepared, None)[
            start.order[start.bounds[i] : start.bounds[i + 1]]
        ]
        found = np.maximum(where, 0)
        same = (where >= 0) & (end.codes[found] == i)
        return np.where(same, self._end_positions[found], -1)


@dataclass(frozen=True)
class _TeamTables:
    """The tables and KPIs :func:`period_reports` computes for every team at once."""

    tables: dict[str, dict[str, pd.DataFrame]]  # table name -> team -> table
    kpis: dict[str, dict[str, float]]  # team -> retention, lead conversion, referral flow


#: The funnel tables of a report and the columns they are grouped by.
FUNNELS = {
    "funnel_by_campaign": list(CAMPAIGN_COLUMNS),
    "funnel_by_channel": ["channel"],
    "funnel_by_segment": ["segment"],
}
#: The uplift tables of a report and the columns they are grouped by.
UPLIFTS = {"uplift_by_campaign": list(CAMPAIGN_COLUMNS), "uplift_by_channel": ["channel"]}


def _by_team(prepared: PreparedPeriod, scopes: _Scopes) -> _TeamTables:
    """Funnels and uplift tables grouped by (team, columns) in one pass each, split by
    team (a team's rows are those of its own computation: the same sums over the same
    rows in the same order); the advocate candidates and likely lost customers of every
    team ranked once, split by team; and every team's retention, lead conversion and
    referral flow KPIs (counts by team: the orders, first orders and leads are not split)."""
    teams = scopes.teams
    touches = scopes.split(prepared.touches).by_team
    sent = campaigns.sent_touches(touches)

    frames, thresholds, period = prepared.frames, prepared.thresholds, prepared.frames.period

    def by_team(table: pd.DataFrame, keep_team: bool = False) -> dict[str, pd.DataFrame]:
        """A table of every team as one table per team present in it (rows in order)."""
        codes = team_codes(table["team"], teams)
        rest = table if keep_team else table.drop(columns="team")
        present = np.unique(codes[codes >= 0])
        return {teams[i]: rest.loc[codes == i].reset_index(drop=True) for i in present}

    tables = {name: by_team(campaigns.funnel(sent, ["team", *by])) for name, by in FUNNELS.items()}
    for name, by in UPLIFTS.items():
        tables[name] = by_team(uplift.incremental_results(touches, ["team", *by]))
    # ranked lists of every team's customers: their sort keys end with the customer id
    # (unique), so a team's rows of the whole list, in order, are the team's own list
    customers = scopes.split(prepared.end_table).by_team
    tables["advocate_candidates"] = by_team(
        referral.advocate_candidates(customers, thresholds), keep_team=True
    )
    tables["likely_lost"] = by_team(
        alive.likely_lost_valuable(customers, thresholds.likely_lost_p_alive), keep_team=True
    )
    retention = repurchase.retention_kpis_by_team(
        prepared.period_orders, prepared.first_orders, period, frames.as_of, thresholds, teams
    )
    leads = conversion.lead_conversion_kpis_by_team(
        frames.leads, period, frames.as_of, thresholds.lead_conversion_days, teams
    )
    flows = referral.referral_flows(
        prepared.people, prepared.period_orders, period, thresholds, teams
    )
    return _TeamTables(
        tables, {team: retention[team] | leads[team] | flows[team] for team in teams}
    )


def _scope_report(
    prepared: PreparedPeriod, team: str | None, scopes: _Scopes, grouped: _TeamTables | None
) -> PeriodReport:
    """The report of one scope; ``grouped`` holds the team's grouped tables and KPIs
    (without it, or where the team has no rows, they are computed from its rows)."""
    frames, thresholds, period = prepared.frames, prepared.thresholds, prepared.frames.period
    scope = scopes.of
    end_table = scope(prepared.end_table, team)
    warnings = scope(prepared.warnings, team)
    touches = scope(prepared.touches, team)
    sent = campaigns.sent_touches(touches)  # once: the funnels and campaign KPIs read these
    untouched = prepared.untouched if team is None else None
    calendar = scope(prepared.care_calendar, team)
    matrix = migration.tier_migration(
        scopes.start_tiers(team), end_table, where=scopes.start_in_end(team)
    )
    tables = _team_tables(grouped, team)
    if "advocate_candidates" not in tables:
        tables["advocate_candidates"] = referral.advocate_candidates(end_table, thresholds)
    if "likely_lost" not in tables:
        tables["likely_lost"] = alive.likely_lost_valuable(
            end_table, thresholds.likely_lost_p_alive
        )
    advocates = tables["advocate_candidates"]
    if grouped is not None and team is not None:
        counted = grouped.kpis[team]
    else:
        period_orders = scope(prepared.period_orders, team)
        counted = {
            **repurchase.retention_kpis(
                period_orders, scope(prepared.first_orders, team), period, frames.as_of, thresholds
            ),
            **conversion.lead_conversion_kpis(
                scope(frames.leads, team), period, frames.as_of, thresholds.lead_conversion_days
            ),
            **referral.referral_flow(prepared.people, period_orders, period, thresholds, team),
        }

    values: dict[str, float] = {
        **as_of_kpis(end_table, warnings),
        **predict.prediction_kpis(
            end_table, warnings, thresholds.likely_lost_p_alive, prepared.value_model.fitted
        ),
        **counted,
        **referral.advocate_kpis(end_table, thresholds, advocates),
        **pareto.pareto_kpis(end_table, thresholds.pareto_top_share),
        **service.service_kpis(
            scope(prepared.tickets, team), period, thresholds.complaint_resolution_hours
        ),
        **campaigns.campaign_kpis(sent, untouched),
        **migration.migration_kpis(matrix),
        **care.care_kpis(calendar),
    }
    absent = frames.absent_tables
    missing = missing_kpis(absent)
    values.update(dict.fromkeys(missing, float("nan")))
    for name, by in FUNNELS.items():
        if name not in tables:  # the segments' funnel has no cost-only rows
            tables[name] = campaigns.funnel(
                sent, by, untouched if name != "funnel_by_segment" else None
            )
    for name, by in UPLIFTS.items():
        if name not in tables:
            tables[name] = uplift.incremental_results(touches, by)
    return PeriodReport(
        period=period,
        as_of=frames.as_of,
        team=team,
        kpis=_in_registry_order(values),
        funnel_by_campaign=tables["funnel_by_campaign"],
        funnel_by_channel=tables["funnel_by_channel"],
        funnel_by_segment=tables["funnel_by_segment"],
        cohort_matrix=cohorts.cohort_matrix(
            scope(frames.cohort_activity, team), period.end, COHORT_MONTHS
        ),
        tier_migration=matrix,
        care_calendar=calendar.reset_index(drop=True),
        advocate_candidates=advocates,
        churn_warnings=warnings.reset_index(drop=True),
        customers=end_table,
        uplift_by_campaign=tables["uplift_by_campaign"],
        uplift_by_channel=tables["uplift_by_channel"],
        alive_by_tier=alive.alive_by_value_tier(end_table, thresholds.likely_lost_p_alive),
        likely_lost=tables["likely_lost"],
        absent_tables=absent,
        missing=missing,
        partial=partial_kpis(absent),
    )


def _team_tables(grouped: _TeamTables | None, team: str | None) -> dict[str, pd.DataFrame]:
    """The tables of ``team`` computed for every team at once; a table where the team has
    no rows is left out (computed on its own: an empty grouping has its own dtypes)."""
    if grouped is None or team is None:
        return {}
    return {name: tables[team] for name, tables in grouped.tables.items() if team in tables}


def kpi_note(report: PeriodReport, name: str, language: str = "en") -> str:
    """Why KPI ``name`` of ``report`` has no value ("no leads mapped") or is partial
    ("without complaints (no tickets mapped)"); '' when neither. English by default:
    the text JSON and CSV carry."""
    if name in report.missing:
        return absent_reason(report.missing[name], language)
    if name in report.partial:
        return partial_reason(report.partial[name], language)
    return ""


def _in_registry_order(values: Mapping[str, float]) -> dict[str, float]:
    """Values keyed and ordered like the registry; a KPI missing from it is a bug."""
    known = registry()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise RuntimeError(f"KPIs computed but not in the registry: {', '.join(unknown)}")
    return {name: float(values[name]) for name in known if name in values}
