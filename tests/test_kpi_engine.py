"""The KPI engine end to end on the canonical data, on four databases and two id types.

T = 2026-06-30, period 2026Q2 (tests/fixtures/canonical.py describes every row). The
expected values are worked out by hand from the fixture rows in the comments; the
period sql/ files are also checked against independent pandas versions of each query.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SQL_DIR, LoadedDb
from fixtures.canonical import customer_key

from crm_batch.config import ThresholdSettings
from crm_batch.kpi import engine
from crm_batch.kpi.definitions import registry
from crm_batch.periods import Period, parse_period
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.extract import extract_as_of
from crm_batch.source.extract_period import (
    PERIOD_QUERIES,
    clip_period,
    extract_period,
    period_params,
)
from crm_batch.source.sql_files import SqlCatalog

CATALOG = SqlCatalog(SQL_DIR)
SETTINGS = ThresholdSettings()
Q2 = parse_period("2026Q2")
T = date(2026, 6, 30)
NAN = float("nan")

_PREPARED: dict[tuple[str, str, str, date], engine.PreparedPeriod] = {}


def prepared(db: LoadedDb, period: Period = Q2, as_of: date = T) -> engine.PreparedPeriod:
    """The extracted, prepared period, once per database and date (as run_kpis does)."""
    key = (db.backend, db.id_type, period.label, as_of)
    if key not in _PREPARED:
        frames = extract_period(db.engine, CATALOG, period, as_of, SETTINGS)
        _PREPARED[key] = engine.prepare(frames, SETTINGS)
    return _PREPARED[key]


def reports(db: LoadedDb, period: Period = Q2, as_of: date = T) -> dict[str | None, Any]:
    """Overall (key None) and per-team reports of every team in the register."""
    ready = prepared(db, period, as_of)
    teams = sorted(ready.frames.register["team"].dropna().unique())
    return {None: engine.period_report(ready)} | {
        team: engine.period_report(ready, team) for team in teams
    }


def assert_values(got: dict[str, float], want: dict[str, float]) -> None:
    wrong = {}
    for name, value in want.items():
        same = math.isnan(got[name]) if math.isnan(value) else got[name] == pytest.approx(value)
        if not same:
            wrong[name] = (got[name], value)
    assert not wrong, f"(got, want): {wrong}"


#: 2026Q2 as of T, everyone (arithmetic from the fixture rows).
OVERALL_Q2 = {
    # paid orders in Q2: Alice 101 + 102, Bob 201, Guo 606, Jiang 801, Kong 901, #11 1101
    "period_buyers": 6.0,
    "repurchase_rate": 1 / 6,  # only Alice has two
    "new_customers": 3.0,  # first orders in Q2: Jiang, Kong, #11
    "repeat_rate_90d": 0.0,  # none of them bought again
    # not churned on 03-31: Alice (03-31), Bob (12-12), Guo (12-31), He (03-30); none
    # is churned on 06-30 (He: 92 days); #17 (2024) was churned and did not return
    "churn_rate": 0.0,
    "winback_customers": 0.0,
    "winback_rate": 0.0,
    # leads in Q2: 1 (04-01 00:00), 2 (06-30 23:59:59), 5 (04-15); 1 -> Kong bought
    # 05-31 (day 60), 5 -> Jiang bought 05-01; lead 2 has no customer
    "leads_created": 3.0,
    "leads_converted": 2.0,
    "lead_conversion_rate": 2 / 3,
    # new: Jiang and Kong were referred by He, #11 was not
    "referral_share_new": 2 / 3,
    "successful_referrals": 2.0,
    "advocates": 1.0,  # He: Jiang and Kong bought; Guo: only He; Jiang: Lin never bought
    "advocate_candidates": 1.0,  # He: 3 orders in 12 months, silver
    # active on 03-31 (order within 90 days): Alice, He, Guo (12-31 is day 90) -> 2/3
    "viral_coefficient": 2 / 3,
    # 7 buyers in 12 months, top ceil(1.4) = 2: Guo 180,000 + Bob 799.75 of 182,314.25
    "pareto_revenue_share": 180_799.75 / 182_314.25,
    # complaints opened in Q2: tickets 1, 2, 3, 4, 5, 8; within 24 h: 4 only
    "complaints": 6.0,
    "complaint_resolved_24h_rate": 1 / 6,
    "open_complaints": 4.0,  # 1, 2, 3 and 8 (resolved 07-02)
    "satisfaction_mean": 11 / 3,  # tickets 4 (4), 5 (2), 6 (5)
    # touches 1..7; opened 1 3 4 5 7; clicked 1 4 5; opted out 2
    "campaign_touches": 7.0,
    "campaign_open_rate": 5 / 7,
    "campaign_click_rate": 3 / 7,
    # order 201 (06-20) is 7 days after touch 5; order 606 (06-29) 4 days after touch 6
    "campaign_conversion_rate": 2 / 7,
    "campaign_revenue": 31_000.0,
    "campaign_cost": 1_700.0,  # 500 + 1200 + 0
    "campaign_roi": (31_000 - 1_700) / 1_700,
    "opt_out_rate": 1 / 7,
    "tier_upgrades": 3.0,  # Jiang, Kong, #11: none -> C
    "tier_downgrades": 0.0,
    "care_events_7d": 2.0,  # birthdays of Alice (07-02) and He (07-05)
    "care_greetings_due": 1.0,  # Alice's greeting is due on 06-30
}

#: 2026Q2 as of T, team North (Alice, Bob, Kong, Lin; leads 1, 2, 6).
NORTH_Q2 = {
    "period_buyers": 3.0,  # Alice (2 orders), Bob, Kong
    "repurchase_rate": 1 / 3,
    "new_customers": 1.0,
    "churn_rate": 0.0,  # base Alice, Bob
    "winback_customers": 0.0,
    "winback_rate": NAN,  # nobody in North was churned on 03-31
    "leads_created": 2.0,  # leads 1 and 2
    "lead_conversion_rate": 0.5,
    "referral_share_new": 1.0,  # Kong, referred by He (East)
    "successful_referrals": 0.0,  # credited to He's team East
    "viral_coefficient": 0.0,  # 0 / Alice
    "advocates": 0.0,
    # Alice 600, Bob 799.75, Kong 66.60; top ceil(0.6) = 1
    "pareto_revenue_share": 799.75 / 1_466.35,
    "complaints": 3.0,  # tickets 1, 3, 4
    "complaint_resolved_24h_rate": 1 / 3,
    "open_complaints": 2.0,
    "satisfaction_mean": 4.0,
    "campaign_touches": 5.0,  # touches 1-5
    "campaign_open_rate": 4 / 5,
    "campaign_click_rate": 3 / 5,
    "campaign_conversion_rate": 1 / 5,
    "campaign_revenue": 1_000.0,
    "campaign_cost": 250 + 250 + 400 + 400 + 400,
    "campaign_roi": (1_000 - 1_700) / 1_700,
    "opt_out_rate": 1 / 5,
    "tier_upgrades": 1.0,  # Kong
    "care_events_7d": 1.0,
}


def test_overall_kpis_by_hand(canonical_db: LoadedDb) -> None:
    assert_values(reports(canonical_db)[None].kpis, OVERALL_Q2)


def test_team_kpis_by_hand(canonical_db: LoadedDb) -> None:
    assert_values(reports(canonical_db)["North"].kpis, NORTH_Q2)


def test_every_registry_kpi_has_a_value_in_registry_order(canonical_db: LoadedDb) -> None:
    kpis = reports(canonical_db)[None].kpis
    assert list(kpis) == list(registry())
    assert all(isinstance(v, float) for v in kpis.values())


def test_a_team_without_customers_gives_zeros_and_nans(canonical_db: LoadedDb) -> None:
    report = engine.period_report(prepared(canonical_db), "Nowhere")
    kpis = report.kpis
    assert list(kpis) == list(registry())
    for name, kpi in registry().items():
        if kpi.unit == "count":
            assert kpis[name] == 0.0, name
        elif kpi.unit == "money":  # sums are 0, averages (aov_12m) NaN
            assert kpis[name] == 0.0 or math.isnan(kpis[name]), name
    for name in ("repurchase_rate", "churn_rate", "lead_conversion_rate", "campaign_roi"):
        assert math.isnan(kpis[name])
    for table in report.tables().values():
        assert table.empty or table.to_numpy().sum() == 0  # the migration matrix is zeros


def test_tables_by_hand(canonical_db: LoadedDb) -> None:
    report = reports(canonical_db)[None]
    key = lambda n: customer_key(n, canonical_db.id_type)  # noqa: E731
    funnel = report.funnel_by_channel.set_index("channel")
    assert funnel["touches"].to_dict() == {"email": 2, "sms": 2, "wechat": 3}
    assert funnel["revenue"].to_dict() == {"email": 30_000.0, "sms": 0.0, "wechat": 1_000.0}
    assert math.isnan(funnel.loc["email", "roi"])  # campaign 3 cost nothing
    # value tiers on 03-31: Guo diamond, Alice silver, Bob bronze; Kong, #11 iron
    segments = report.funnel_by_segment.set_index("segment")["touches"].to_dict()
    assert segments == {"bronze": 2, "diamond": 1, "iron": 2, "silver": 2}
    # cohorts: He 2025-09 (bought again in 2026-03), Bob 2025-12 (2026-06), Jiang, Kong
    # and #11 2026-05 (nobody in June)
    matrix = report.cohort_matrix
    assert matrix.index.tolist() == ["2025-09", "2025-12", "2026-05"]
    assert matrix.loc["2025-09", 6] == 1.0
    assert matrix.loc["2025-12", 6] == 1.0
    assert matrix.loc["2026-05", "cohort_size"] == 3
    assert matrix.loc["2026-05", 1] == 0.0
    assert math.isnan(matrix.loc["2026-05", 2])
    # migration: Guo A -> A; Alice, Bob, He, #17 C -> C; Jiang, Kong, #11 none -> C
    migration = report.tier_migration
    assert (migration.loc["A", "A"], migration.loc["C", "C"]) == (1, 4)
    assert migration.loc["none", "C"] == 3
    assert migration.loc["none", "none"] == 8
    care = report.care_calendar
    assert care["customer_id"].tolist() == [key(1), key(7)]
    assert care["event_date"].tolist() == [pd.Timestamp("2026-07-02"), pd.Timestamp("2026-07-05")]
    assert report.advocate_candidates["customer_id"].tolist() == [key(7)]
    assert set(report.churn_warnings["customer_id"]) == {key(2), key(3), key(7)}


def test_same_kpis_on_every_database(canonical_db: LoadedDb, loaded_db_factory: Any) -> None:
    reference = reports(loaded_db_factory("duckdb", "int"))
    for scope, report in reports(canonical_db).items():
        want = reference[scope].kpis
        assert report.kpis.keys() == want.keys()
        assert_values(report.kpis, want)
        pd.testing.assert_frame_equal(report.cohort_matrix, reference[scope].cohort_matrix)
        pd.testing.assert_frame_equal(report.tier_migration, reference[scope].tier_migration)
        funnel = reference[scope].funnel_by_channel
        pd.testing.assert_frame_equal(report.funnel_by_channel, funnel)


def test_quarter_to_date_is_clipped_at_as_of(canonical_db: LoadedDb) -> None:
    as_of = date(2026, 5, 31)
    report = reports(canonical_db, Q2, as_of)[None]
    assert report.period == Period(date(2026, 4, 1), as_of, "quarter")
    assert_values(
        report.kpis,
        {
            # paid orders 04-01 .. 05-31: Alice 102, Jiang 801, Kong 901, #11 1101
            "period_buyers": 4.0,
            "repurchase_rate": 0.0,
            "new_customers": 3.0,
            # leads 1 (Kong bought 05-31) and 5 (Jiang 05-01), both converted
            "lead_conversion_rate": 1.0,
            # ticket 5 (30 h) is the only complaint; tickets 5 (2) and 6 (5) rated
            "complaints": 1.0,
            "complaint_resolved_24h_rate": 0.0,
            "open_complaints": 0.0,
            "satisfaction_mean": 3.5,
            # touches 1 and 2 only; campaign 1 has 2 touches up to 05-31: cost 500
            "campaign_touches": 2.0,
            "campaign_cost": 500.0,
            "campaign_roi": -1.0,
            "opt_out_rate": 0.5,
            "care_events_7d": 0.0,  # 06-01 .. 06-07: no birthdays (Kong's is 06-30)
        },
    )


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def test_start_frames_equal_a_full_as_of_extraction(canonical_db: LoadedDb) -> None:
    # extract_period runs only customer_facts.sql for the day before the period and cuts
    # the end's register; that must be what customers.sql and customer_facts.sql return
    day = date(2026, 3, 31)
    frames = extract_period(canonical_db.engine, CATALOG, Q2, T, SETTINGS)
    full = extract_as_of(canonical_db.engine, CATALOG, day, SETTINGS)
    assert frames.start.as_of == day
    # row order is not part of a query's contract (DuckDB's parallel aggregation varies)
    pd.testing.assert_frame_equal(by_customer(frames.start.customers), by_customer(full.customers))
    pd.testing.assert_frame_equal(by_customer(frames.start.facts), by_customer(full.facts))
    assert frames.start.service.empty
    assert list(frames.start.service.columns) == list(full.service.columns)


def test_a_period_after_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="after the business date"):
        clip_period(parse_period("2026Q3"), T)


# -- the period sql/ files against independent pandas versions ------------------------


def _reference_period_orders(f: dict[str, pd.DataFrame], p: dict[str, Any]) -> pd.DataFrame:
    o = f["orders"]
    o = o[
        o["status"].isin(["paid", "refunded"]) & (o["order_date"] <= pd.Timestamp(p["period_end"]))
    ]
    paid = o["status"] == "paid"
    start = pd.Timestamp(p["period_start"])
    net = o["amount"].where(paid, -o["amount"])
    rows = []
    for customer, g in o.groupby("customer_id"):
        g_paid = g[g["status"] == "paid"]
        inside = g["order_date"] >= start
        rows.append(
            (
                customer,
                g_paid.loc[g_paid["order_date"] < start, "order_date"].max(),
                g_paid["order_date"].max(),
                int(((g["status"] == "paid") & inside).sum()),
                float(net[g.index][inside].sum()),
                g_paid.loc[g_paid["order_date"] >= start, "order_date"].nunique(),
            )
        )
    columns = [
        "customer_id",
        "last_order_before_date",
        "last_order_date",
        "orders_in_period",
        "revenue_in_period",
        "order_days_in_period",
    ]
    return pd.DataFrame(rows, columns=columns)


def _reference_first_orders(f: dict[str, pd.DataFrame], p: dict[str, Any]) -> pd.DataFrame:
    o = f["orders"]
    o = o[(o["status"] == "paid") & (o["order_date"] <= pd.Timestamp(p["as_of"]))]
    rows = []
    for customer, g in o.groupby("customer_id"):
        days = sorted(g["order_date"])
        rows.append((customer, days[0], days[1] if len(days) > 1 else pd.NaT))
    return pd.DataFrame(rows, columns=["customer_id", "first_order_date", "second_order_date"])


def _reference_leads(f: dict[str, pd.DataFrame], p: dict[str, Any]) -> pd.DataFrame:
    leads = f["leads"]
    leads = leads[
        (leads["created_at"] >= p["period_start_at"]) & (leads["created_at"] < p["period_end_at"])
    ]
    o = f["orders"]
    paid = o[(o["status"] == "paid") & (o["order_date"] <= pd.Timestamp(p["as_of"]))]
    firsts = paid.groupby("customer_id")["order_date"].min()
    result = leads[["lead_id", "created_at", "source", "team", "customer_id"]].copy()
    result["first_order_date"] = [
        firsts.get(c, pd.NaT) if not pd.isna(c) else pd.NaT for c in result["customer_id"]
    ]
    return result


def _reference_tickets(f: dict[str, pd.DataFrame], p: dict[str, Any]) -> pd.DataFrame:
    t = f["tickets"]
    keep = (t["opened_at"] < p["period_end_at"]) & (
        t["resolved_at"].isna() | (t["resolved_at"] >= p["period_start_at"])
    )
    return t[keep]


def _reference_campaigns(f: dict[str, pd.DataFrame], p: dict[str, Any]) -> pd.DataFrame:
    t = f["touches"]
    t = t[(t["sent_at"] < p["as_of_end_at"]) & ~t["is_control"].astype(bool)]  # sent only
    inside = (t["sent_at"] >= p["period_start_at"]) & (t["sent_at"] < p["period_end_at"])
    total = t.groupby("campaign_id").size()
    in_period = t[inside].groupby("campaign_id").size()
    c = f["campaigns"].rename(columns={"name": "campaign_name"})
    c["touches_total"] = [int(total.get(i, 0)) for i in c["campaign_id"]]
    c["touches_in_period"] = [int(in_period.get(i, 0)) for i in c["campaign_id"]]
    started = (c["started_at"] >= p["period_start_at"]) & (c["started_at"] < p["period_end_at"])
    return c[(c["touches_in_period"] > 0) | started]


def _reference_touches(f: dict[str, pd.DataFrame], p: dict[str, Any]) -> pd.DataFrame:
    t = f["touches"]
    return t[(t["sent_at"] >= p["period_start_at"]) & (t["sent_at"] < p["attribution_end_at"])]


def _reference_campaign_orders(f: dict[str, pd.DataFrame], p: dict[str, Any]) -> pd.DataFrame:
    t = f["touches"]
    touched = set(
        t.loc[
            (t["sent_at"] >= p["period_start_at"]) & (t["sent_at"] < p["period_end_at"]),
            "customer_id",
        ]
    )
    o = f["orders"]
    keep = (
        (o["status"] == "paid")
        & (o["order_date"] >= pd.Timestamp(p["period_start"]))
        & (o["order_date"] <= pd.Timestamp(p["attribution_end"]))
        & o["customer_id"].isin(touched)
    )
    return o.loc[keep, ["order_id", "customer_id", "order_date", "amount"]]


REFERENCES: dict[str, Callable[[dict[str, pd.DataFrame], dict[str, Any]], pd.DataFrame]] = {
    "period_orders": _reference_period_orders,
    "first_orders": _reference_first_orders,
    "leads": _reference_leads,
    "tickets": _reference_tickets,
    "campaigns": _reference_campaigns,
    "touches": _reference_touches,
    "campaign_orders": _reference_campaign_orders,
}


@pytest.mark.parametrize(
    ("label", "as_of"),
    [("2026Q2", T), ("2026Q2", date(2026, 5, 31)), ("2026-06", date(2026, 7, 3))],
    ids=["quarter", "quarter-to-date", "month-plus-3-days"],
)
@pytest.mark.parametrize("field", sorted(REFERENCES))
def test_period_queries_equal_a_pandas_version(
    canonical_db: LoadedDb, field: str, label: str, as_of: date
) -> None:
    period = clip_period(parse_period(label), as_of)
    params = period_params(period, as_of, SETTINGS)
    query = CATALOG.get(PERIOD_QUERIES[field], dialect_name(canonical_db.engine))
    got = run_query(canonical_db.engine, query, params)
    want = REFERENCES[field](canonical_db.frames, params)[list(got.columns)]
    key = got.columns[0]
    got = got.sort_values(key, ignore_index=True)
    want = want.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_index_type=False)


def test_attribution_end_is_capped_at_as_of() -> None:
    june = parse_period("2026-06")
    params = period_params(june, date(2026, 7, 3), SETTINGS)
    assert params["attribution_end"] == date(2026, 7, 3)
    assert params["attribution_end_at"] == datetime(2026, 7, 4)
    later = period_params(june, date(2026, 9, 1), SETTINGS)
    assert later["attribution_end"] == date(2026, 6, 30) + timedelta(days=7)
    assert np.datetime64(later["period_end_at"]) == np.datetime64("2026-07-01")


def test_registry_labels_are_unique_per_language() -> None:
    """Two KPIs with one label would be indistinguishable in a workbook or a report."""
    from crm_batch.kpi.definitions import registry

    for attribute in ("label_en", "label_zh"):
        labels = [getattr(kpi, attribute) for kpi in registry().values()]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        assert duplicates == [], attribute
