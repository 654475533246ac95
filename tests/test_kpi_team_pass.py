"""Every scope's report in one pass (issue 17): :func:`engine.period_reports` against
each scope computed on its own.

The one pass splits each prepared frame by team once, groups the funnels and uplift
tables by team, counts retention, lead conversion and referral flow by team and ranks
the advocate candidates and likely lost customers of every team at once; the reference
is :func:`engine.period_report` per scope, which takes the team's rows directly and
computes every table and KPI from them alone. Both run on the demo company (600
customers, 8 teams), on the canonical data with a team whose customers have no orders
("Quiet") and a requested team without customers ("Nowhere"), and on the canonical
data without each optional table. Values must be equal (NaN equals NaN) and every
table equal with its dtypes, row order and index.
"""

from __future__ import annotations

import logging
import math
from datetime import date

import pandas as pd
import pytest
from conftest import SQL_DIR
from fixtures.canonical import canonical_frames, load_canonical
from fixtures.optional import as_absent, extract
from pandas.testing import assert_frame_equal

from crm_batch.app import kpis as app_kpis
from crm_batch.config import ThresholdSettings
from crm_batch.kpi import engine
from crm_batch.periods import parse_period
from crm_batch.source.db import make_engine
from crm_batch.source.demo import generate_demo, load_demo
from crm_batch.source.extract_period import extract_period
from crm_batch.source.frames import OPTIONAL_TABLES
from crm_batch.source.sql_files import SqlCatalog

SETTINGS = ThresholdSettings()
Q2 = parse_period("2026Q2")
T = date(2026, 6, 30)


def _prepared(url: object, load: object) -> engine.PreparedPeriod:
    db = make_engine(url)
    try:
        load(db)  # type: ignore[operator]
        return engine.prepare(extract_period(db, SqlCatalog(SQL_DIR), Q2, T, SETTINGS), SETTINGS)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def demo(db_url_factory) -> engine.PreparedPeriod:  # type: ignore[no-untyped-def]
    """2026Q2 as of T of a small demo company (8 teams)."""
    data = generate_demo(customers=600, orders=6_000, seed=7, end_date=T)
    return _prepared(db_url_factory("duckdb"), lambda db: load_demo(db, data, id_type="int"))


@pytest.fixture(scope="module")
def canonical(db_url_factory) -> engine.PreparedPeriod:  # type: ignore[no-untyped-def]
    """The canonical data plus team Quiet: two customers without any order, one of
    them with an open ticket and a lead of the team."""
    frames = canonical_frames("int")
    customers = frames["customers"]
    quiet = customers.iloc[:2].copy()
    quiet["customer_id"] = pd.array(["901", "902"], dtype="string")
    quiet["team"] = pd.array(["Quiet", "Quiet"], dtype="string")
    quiet["referred_by"] = pd.array([None, "901"], dtype="string")
    frames["customers"] = pd.concat([customers, quiet], ignore_index=True)
    leads = frames["leads"]
    lead = leads.iloc[:1].copy()
    lead["lead_id"] = pd.array(["9001"], dtype="string")
    lead["team"] = pd.array(["Quiet"], dtype="string")
    lead["customer_id"] = pd.array([None], dtype="string")
    frames["leads"] = pd.concat([leads, lead], ignore_index=True)
    return _prepared(db_url_factory("duckdb"), lambda db: load_canonical(db, frames, "int"))


def _teams(prepared: engine.PreparedPeriod, *extra: str) -> list[str]:
    return sorted(prepared.frames.register["team"].dropna().unique()) + list(extra)


def assert_same_report(got: engine.PeriodReport, want: engine.PeriodReport) -> None:
    """Equal values (NaN = NaN), in the same order, and equal tables with their dtypes."""
    assert list(got.kpis) == list(want.kpis)
    wrong = {
        name: (got.kpis[name], value)
        for name, value in want.kpis.items()
        if not (got.kpis[name] == value or (math.isnan(got.kpis[name]) and math.isnan(value)))
    }
    assert not wrong, f"(one pass, own) for {want.team!r}: {wrong}"
    for name, table in want.tables().items():
        assert_frame_equal(got.tables()[name], table, check_dtype=True, obj=f"{want.team}:{name}")
    assert_frame_equal(got.customers, want.customers, check_dtype=True)
    assert (got.team, got.period, got.as_of) == (want.team, want.period, want.as_of)
    assert (got.missing, got.partial, got.absent_tables) == (
        want.missing,
        want.partial,
        want.absent_tables,
    )


@pytest.mark.parametrize("data", ["demo", "canonical"])
def test_one_pass_equals_each_scope_on_its_own(data: str, request: pytest.FixtureRequest) -> None:
    prepared = request.getfixturevalue(data)
    teams = _teams(prepared, "Nowhere")
    reports = engine.period_reports(prepared, teams)
    assert list(reports) == [None, *teams]
    for scope, report in reports.items():
        assert_same_report(report, engine.period_report(prepared, scope))


@pytest.mark.parametrize("table", OPTIONAL_TABLES)
def test_one_pass_equals_each_scope_without_an_optional_table(
    table: str, db_url_factory, sql_catalog: SqlCatalog
) -> None:  # type: ignore[no-untyped-def]
    """An optional table not mapped (empty, named absent): the same reports either way."""
    prepared = engine.prepare(
        as_absent(extract(db_url_factory, sql_catalog, table), table), SETTINGS
    )
    teams = _teams(prepared, "Nowhere")
    reports = engine.period_reports(prepared, teams)
    assert reports[None].missing  # the table's KPIs are missing, not computed
    for scope, report in reports.items():
        assert_same_report(report, engine.period_report(prepared, scope))


def test_the_fixture_has_the_edge_cases(canonical: engine.PreparedPeriod) -> None:
    """Quiet has customers and a lead but no orders or touches; Nowhere has no rows."""
    reports = engine.period_reports(canonical, _teams(canonical, "Nowhere"))
    quiet, nowhere = reports["Quiet"], reports["Nowhere"]
    assert len(quiet.customers) == 2
    assert quiet.customers["orders_total"].eq(0).all()
    assert quiet.kpis["period_buyers"] == 0
    assert quiet.funnel_by_channel.empty
    assert quiet.kpis["leads_created"] == 1
    assert len(nowhere.customers) == 0
    assert nowhere.kpis["period_buyers"] == 0
    # the teams with touches get their funnel from the grouped pass, with rows
    assert any(not r.funnel_by_campaign.empty for t, r in reports.items() if t is not None)


def test_the_demo_fills_every_grouped_table(demo: engine.PreparedPeriod) -> None:
    """The comparison above is not of empty tables: on the demo every table the one pass
    groups by team has rows in at least two teams."""
    reports = engine.period_reports(demo, _teams(demo))
    grouped = [*engine.FUNNELS, *engine.UPLIFTS, "advocate_candidates", "likely_lost"]
    for name in grouped:
        filled = [t for t, r in reports.items() if t is not None and len(r.tables()[name])]
        assert len(filled) >= 2, name


def test_team_order_and_company_are_as_asked(demo: engine.PreparedPeriod) -> None:
    """Teams in the order asked (duplicates once); the company only when asked."""
    teams = _teams(demo)
    reports = engine.period_reports(demo, [teams[2], teams[0], teams[2]], include_company=False)
    assert list(reports) == [teams[2], teams[0]]
    assert_same_report(reports[teams[0]], engine.period_report(demo, teams[0]))


def test_a_failing_team_is_that_teams_problem(
    demo: engine.PreparedPeriod, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When the one pass fails, run_kpis' reports fall back to one scope at a time: the
    failing team is a Problem, the company and the other teams are computed."""
    teams = _teams(demo)
    broken = teams[1]
    own_report = engine._scope_report

    def scope_report(prepared, team, scopes, grouped):  # type: ignore[no-untyped-def]
        if team == broken:
            raise ValueError("broken on purpose")
        return own_report(prepared, team, scopes, grouped)

    monkeypatch.setattr(engine, "_scope_report", scope_report)
    with caplog.at_level(logging.ERROR):
        reports, problems = app_kpis._reports(demo, teams, include_company=True)
    assert list(reports) == [None, *[t for t in teams if t != broken]]
    assert [p.team for p in problems] == [broken]
    assert "broken on purpose" in problems[0].what
