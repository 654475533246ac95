"""Period KPIs on tiny inline frames, each value worked out by hand in a comment.

Covers repurchase, repeat within 90 days, churn and win-back, lead conversion, referral,
Pareto, service and the care calendar. The reference period is 2026Q2
(2026-04-01 .. 2026-06-30); "the day before" is 2026-03-31. Ids come in two flavours
(integer-looking and text keys) to show that nothing depends on their form.
"""

from __future__ import annotations

import math
import random
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crm_batch.config import ThresholdSettings
from crm_batch.kpi import care, conversion, pareto, referral, repurchase, service
from crm_batch.kpi.definitions import registry
from crm_batch.kpi.keys import attach
from crm_batch.periods import parse_period

Q2 = parse_period("2026Q2")
T = date(2026, 6, 30)
SETTINGS = ThresholdSettings()
NAN = float("nan")

#: Two id styles: integer keys as text, and opaque text keys (one looks like a float).
ID_STYLES = {
    "int": lambda n: str(n),
    "text": lambda n: {1: "00001", 2: "1e3", 3: "C-3"}.get(n, f"K{n:03d}"),
}


@pytest.fixture(params=sorted(ID_STYLES))
def key(request: pytest.FixtureRequest):
    return ID_STYLES[request.param]


def ts(value: str | None) -> Any:
    return pd.NaT if value is None else pd.Timestamp(value)


def period_orders(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(customer_id, last_order_before_date, last_order_date, orders_in_period)."""
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "last_order_before_date": pd.to_datetime([ts(r[1]) for r in rows]).astype(
                "datetime64[ns]"
            ),
            "last_order_date": pd.to_datetime([ts(r[2]) for r in rows]).astype("datetime64[ns]"),
            "orders_in_period": pd.array([r[3] for r in rows], dtype="Int64"),
            "revenue_in_period": [0.0] * len(rows),
        }
    )


def first_orders(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(customer_id, first_order_date, second_order_date)."""
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "first_order_date": pd.to_datetime([ts(r[1]) for r in rows]).astype("datetime64[ns]"),
            "second_order_date": pd.to_datetime([ts(r[2]) for r in rows]).astype("datetime64[ns]"),
        }
    )


def assert_values(got: dict[str, float], want: dict[str, float]) -> None:
    for name, value in want.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got[name]), f"{name}: {got[name]} (want NaN)"
        else:
            assert got[name] == pytest.approx(value), f"{name}: {got[name]} (want {value})"


# -- registry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", [repurchase, conversion, referral, pareto, service, care], ids=lambda m: m.__name__
)
def test_kpis_are_registered_with_both_languages(module: Any) -> None:
    known = registry()
    for kpi in module.KPIS:
        assert known[kpi.name] is kpi
        assert kpi.label_zh
        assert kpi.label_en
        assert kpi.definition_zh
        assert kpi.definition_en
        assert "\n" not in kpi.definition_en + kpi.definition_zh


# -- repurchase and repeat ----------------------------------------------------------------


def test_repurchase_rate_counts_paid_orders_only(key: Any) -> None:
    frame = period_orders(
        [
            (key(1), "2026-01-05", "2026-05-01", 2),  # two paid orders: repeat buyer
            (key(2), None, "2026-06-30", 1),  # one order, on the period's last day
            (key(3), "2025-01-01", "2025-01-01", 0),  # only a refund in P: not a buyer
            (key(4), None, "2026-04-01", 3),  # three orders from the first day
        ]
    )
    # buyers 1, 2, 4 = 3; with >= 2 orders: 1, 4 = 2 -> 2/3
    assert repurchase.repurchase_rate(frame) == pytest.approx(2 / 3)


def test_repurchase_rate_of_an_empty_period_is_nan() -> None:
    assert math.isnan(repurchase.repurchase_rate(period_orders([])))


def test_repeat_within_90_days_by_hand(key: Any) -> None:
    frame = first_orders(
        [
            (key(1), "2026-04-01", "2026-06-30"),  # 90 days later (29+31+30): repeats
            (key(2), "2026-04-01", "2026-07-01"),  # 91 days later: too late
            (key(3), "2026-05-05", "2026-05-05"),  # second order the same day: repeats
            (key(4), "2026-06-30", None),  # a single order on the last day
            (key(5), "2026-03-31", "2026-04-02"),  # first order before P: not in the cohort
            (key(6), "2026-06-01", "2026-07-15"),  # repeats after 44 days, seen after T only
        ]
    )
    # as of T: cohort 1, 2, 3, 4, 6 = 5; repeated 1, 3 = 2 -> 0.4
    assert repurchase.repeat_rate_90d(frame, Q2, T, 90) == pytest.approx(2 / 5)
    # as of 2026-09-30 customer 6's second order is visible: 3/5
    assert repurchase.repeat_rate_90d(frame, Q2, date(2026, 9, 30), 90) == pytest.approx(3 / 5)


def test_churn_rate_and_win_back_by_hand(key: Any) -> None:
    # the day before Q2 is 2026-03-31; churned = more than 180 days since the last order
    frame = period_orders(
        [
            # 2025-10-02 is exactly 180 days before 03-31: not churned at the start;
            # no order in P, and 271 days before 06-30: churned at the end
            (key(1), "2025-10-02", "2025-10-02", 0),
            # 181 days before 03-31: churned at the start; orders in May: won back
            (key(2), "2025-10-01", "2026-05-01", 1),
            # 89 days before the start, exactly 180 days before 06-30: still not churned
            (key(3), "2026-01-01", "2026-01-01", 0),
            # 90 days before the start, 181 days before the end: churned in P
            (key(4), "2025-12-31", "2025-12-31", 0),
            (key(5), None, None, 0),  # a prospect (or refund-only): excluded
            (key(6), None, "2026-05-01", 1),  # first order in P: not in the base
            (key(7), "2025-01-01", "2025-01-01", 0),  # churned at the start, still churned
        ]
    )
    got = repurchase.churn_and_winback(frame, Q2, 180)
    # base (not churned at the start) = 1, 3, 4; churned at the end: 1, 4 -> 2/3
    # churned at the start = 2, 7; won back: 2 -> 1 customer, 1/2
    assert_values(got, {"churn_rate": 2 / 3, "winback_customers": 1.0, "winback_rate": 0.5})


def test_retention_kpis_of_nothing_are_zero_counts_and_nan_rates() -> None:
    got = repurchase.retention_kpis(period_orders([]), first_orders([]), Q2, T, SETTINGS)
    assert_values(
        got,
        {
            "period_buyers": 0.0,
            "new_customers": 0.0,
            "repurchase_rate": NAN,
            "repeat_rate_90d": NAN,
            "churn_rate": NAN,
            "winback_customers": 0.0,
            "winback_rate": NAN,
        },
    )


# -- lead conversion ------------------------------------------------------------------------


def leads_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(lead_id, created_at, customer_id, first_order_date)."""
    return pd.DataFrame(
        {
            "lead_id": pd.array([r[0] for r in rows], dtype="string"),
            "created_at": pd.to_datetime([ts(r[1]) for r in rows]).astype("datetime64[ns]"),
            "source": pd.array(["web"] * len(rows), dtype="string"),
            "team": pd.array(["North"] * len(rows), dtype="string"),
            "customer_id": pd.array([r[2] for r in rows], dtype="string"),
            "first_order_date": pd.to_datetime([ts(r[3]) for r in rows]).astype("datetime64[ns]"),
        }
    )


def test_lead_conversion_by_hand(key: Any) -> None:
    leads = leads_frame(
        [
            ("L1", "2026-04-01 00:00:00", key(1), "2026-04-01"),  # same day: converted
            ("L2", "2026-04-01 10:00:00", key(2), "2026-06-30"),  # day 90: converted
            ("L3", "2026-04-01 10:00:00", key(3), "2026-07-01"),  # day 91: not converted
            ("L4", "2026-06-30 23:59:59", None, None),  # last second of P, not converted
            ("L5", "2026-05-01 09:00:00", key(5), "2026-04-20"),  # bought before the lead
            ("L6", "2026-03-31 23:59:59", key(6), "2026-04-01"),  # created before P
            ("L7", "2026-07-01 00:00:00", key(7), "2026-07-01"),  # created after P
            ("L8", "2026-06-15 12:00:00", key(8), "2026-09-13"),  # day 90 (15+31+31+13)
        ]
    )
    # in P: L1, L2, L3, L4, L5, L8 = 6; converted as of 2026-09-30: L1, L2, L8 = 3
    got = conversion.lead_conversion_kpis(leads, Q2, date(2026, 9, 30), 90)
    assert_values(got, {"leads_created": 6.0, "leads_converted": 3.0, "lead_conversion_rate": 0.5})
    # as of 2026-08-31 L8's order has not happened yet: 2/6
    got = conversion.lead_conversion_kpis(leads, Q2, date(2026, 8, 31), 90)
    assert got["lead_conversion_rate"] == pytest.approx(2 / 6)


def test_lead_conversion_without_leads() -> None:
    got = conversion.lead_conversion_kpis(leads_frame([]), Q2, T)
    assert_values(got, {"leads_created": 0.0, "leads_converted": 0.0, "lead_conversion_rate": NAN})


# -- referral ---------------------------------------------------------------------------------


def register(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(customer_id, team, referred_by)."""
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "team": pd.array([r[1] for r in rows], dtype="string"),
            "referred_by": pd.array([r[2] for r in rows], dtype="string"),
        }
    )


@pytest.fixture
def referral_data(key: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    r1, r2, x, a, b, c, d, e, f, g = (key(n) for n in range(1, 11))
    customers = register(
        [
            (r1, "North", None),
            (r2, "North", None),
            (x, "South", None),
            (a, "South", r1),  # referred by a North customer
            (b, "North", r1),
            (c, "North", r2),  # first order before P
            (d, "North", d),  # names itself: not a referral
            (e, "North", r1),  # never bought
            (f, "North", None),
            (g, "South", "nobody"),  # referrer not in the register
        ]
    )
    firsts = first_orders(
        [
            (r1, "2025-01-10", None),
            (r2, "2026-03-20", None),
            (x, "2026-01-01", None),
            (a, "2026-04-05", None),
            (b, "2026-06-30", None),
            (c, "2026-03-31", None),
            (d, "2026-05-01", None),
            (f, "2026-05-02", None),
            (g, "2026-04-10", None),
        ]
    )
    # active on 2026-03-31 = a paid order within 90 days before it
    orders = period_orders(
        [
            (r1, "2026-01-01", "2026-01-01", 0),  # 89 days: active
            (r2, "2026-03-20", "2026-03-20", 0),  # active
            (x, "2025-12-31", "2025-12-31", 0),  # exactly 90 days: active
            (c, "2026-03-31", "2026-03-31", 0),  # active
            (a, None, "2026-04-05", 1),
            (b, None, "2026-06-30", 1),
            (d, None, "2026-05-01", 1),
            (f, None, "2026-05-02", 1),
            (g, None, "2026-04-10", 1),
        ]
    )
    return customers, firsts, orders


def team_orders(customers: pd.DataFrame, orders: pd.DataFrame, team: str) -> pd.DataFrame:
    """The period orders of ``team``'s customers (what the engine passes per team)."""
    members = customers.loc[customers["team"] == team, "customer_id"]
    return orders[orders["customer_id"].isin(members)]


def test_referral_people_aligns_first_orders_and_referrers(
    referral_data: tuple[pd.DataFrame, ...], key: Any
) -> None:
    customers, firsts, _ = referral_data
    people = referral.referral_people(attach(customers, firsts, ["first_order_date"])).set_index(
        "customer_id"
    )
    assert people.loc[key(4), "referrer_team"] == "North"  # a (South) was brought by r1
    assert not people.loc[key(7), "is_referred"]  # d names itself
    assert pd.isna(people.loc[key(10), "referrer_team"])  # g's referrer is unknown
    assert people.loc[key(10), "is_referred"]
    assert pd.isna(people.loc[key(8), "first_order_date"])  # e never bought


def test_referral_flow_overall(referral_data: tuple[pd.DataFrame, ...]) -> None:
    customers, firsts, orders = referral_data
    people = referral.referral_people(attach(customers, firsts, ["first_order_date"]))
    got = referral.referral_flow(people, orders, Q2, SETTINGS)
    # new in P: a, b, d, f, g = 5; referred by someone else: a, b, g -> 3/5
    # successful referrals in P: a, b, g = 3; active at the start: r1, r2, x, c = 4 -> K = 3/4
    assert_values(
        got, {"referral_share_new": 0.6, "successful_referrals": 3.0, "viral_coefficient": 0.75}
    )


def test_referral_flow_per_team_credits_the_referrer(
    referral_data: tuple[pd.DataFrame, ...],
) -> None:
    customers, firsts, orders = referral_data
    people = referral.referral_people(attach(customers, firsts, ["first_order_date"]))
    north_orders = team_orders(customers, orders, "North")
    north = referral.referral_flow(people, north_orders, Q2, SETTINGS, team="North")
    # North's new customers: b, d, f; referred: b -> 1/3. Referrers in North: r1 brought
    # a and b in P -> 2; North active at the start: r1, r2, c = 3 -> K = 2/3
    assert_values(
        north,
        {"referral_share_new": 1 / 3, "successful_referrals": 2.0, "viral_coefficient": 2 / 3},
    )
    south_orders = team_orders(customers, orders, "South")
    south = referral.referral_flow(people, south_orders, Q2, SETTINGS, team="South")
    # South's new: a, g, both referred -> 1.0; no South referrer -> 0; active: x -> 0/1
    assert_values(
        south, {"referral_share_new": 1.0, "successful_referrals": 0.0, "viral_coefficient": 0.0}
    )
    nowhere = team_orders(customers, orders, "Nowhere")
    nobody = referral.referral_flow(people, nowhere, Q2, SETTINGS, team="Nowhere")
    assert_values(
        nobody, {"referral_share_new": NAN, "successful_referrals": 0.0, "viral_coefficient": NAN}
    )


def test_advocates_and_candidates(key: Any) -> None:
    table = pd.DataFrame(
        {
            "customer_id": pd.array([key(n) for n in range(1, 6)], dtype="string"),
            "name": ["p", "q", "s", "t", "u"],
            "team": ["N", "N", "S", "S", "N"],
            "owner": ["o"] * 5,
            "referrals_successful": [2, 3, 2, 1, 4],
            "orders_12m": [2, 1, 5, 5, 3],
            "revenue_12m": [900.0, 800.0, 700.0, 600.0, 500.0],
            "value_tier": pd.array(["diamond", "diamond", "bronze", "silver", "silver"]),
        }
    )
    # advocates (>= 2 successful): 1, 2, 3, 5; candidates also repeat (>= 2 orders in 12
    # months) and diamond/silver: 1 and 5, most referrals first: 5 (4), then 1 (2)
    assert referral.advocate_mask(table, SETTINGS).sum() == 4
    candidates = referral.advocate_candidates(table, SETTINGS)
    assert candidates["customer_id"].tolist() == [key(5), key(1)]
    assert list(candidates.columns) == list(referral.CANDIDATE_COLUMNS)


# -- Pareto -----------------------------------------------------------------------------------


def revenue_table(revenues: list[float], orders: list[int] | None = None) -> pd.DataFrame:
    n = len(revenues)
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i:03d}" for i in range(n)], dtype="string"),
            "revenue_12m": revenues,
            "orders_12m": orders if orders is not None else [1] * n,
        }
    )


def test_pareto_top_count_has_no_float_noise() -> None:
    # 0.2 x 15 = 3.0000000000000004 in floating point: still 3 customers
    assert pareto.top_count(0.2, 15) == 3
    assert pareto.top_count(0.2, 16) == 4  # 3.2 -> 4
    assert pareto.top_count(0.2, 1) == 1


def test_pareto_share_by_hand() -> None:
    table = revenue_table([100.0 * r for r in range(1, 16)])
    # N = 15 -> top 3: 1500 + 1400 + 1300 = 4200 of 12000 -> 0.35
    assert pareto.pareto_share(table, 0.2) == pytest.approx(0.35)


def test_pareto_excludes_customers_without_an_order_in_12_months() -> None:
    # the refund-only customer (-50, no order) is not one of the N buyers
    table = revenue_table([300.0, 100.0, 100.0, 100.0, 100.0, -50.0], [2, 1, 1, 1, 1, 0])
    # N = 5 -> top 1: 300 of 700
    assert pareto.pareto_share(table, 0.2) == pytest.approx(300 / 700)


@pytest.mark.parametrize(
    ("revenues", "orders"),
    [([], []), ([0.0, 0.0], [1, 1]), ([-10.0, 5.0], [1, 1])],
    ids=["no-buyers", "zero-total", "negative-total"],
)
def test_pareto_share_is_nan_without_positive_revenue(
    revenues: list[float], orders: list[int]
) -> None:
    assert math.isnan(pareto.pareto_share(revenue_table(revenues, orders)))


def test_pareto_matches_a_plain_python_sort_with_ties() -> None:
    rng = random.Random(7)
    for _ in range(50):
        n = rng.randint(1, 40)
        revenues = [float(rng.choice([0, 10, 10, 20, 35, 50, 50, 80])) for _ in range(n)]
        table = revenue_table(revenues)
        table["customer_id"] = pd.array(
            [f"id{rng.randint(0, 999):03d}-{i}" for i in range(n)], dtype="string"
        )
        total = sum(revenues)
        ranked = sorted(
            zip(revenues, table["customer_id"], strict=True), key=lambda p: (-p[0], p[1])
        )
        k = math.ceil(round(0.2 * n, 9))
        want = sum(r for r, _ in ranked[:k]) / total if total > 0 else NAN
        got = pareto.pareto_share(table, 0.2)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


# -- service --------------------------------------------------------------------------------


def tickets_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(ticket_id, opened_at, resolved_at, kind, satisfaction)."""
    return pd.DataFrame(
        {
            "ticket_id": pd.array([r[0] for r in rows], dtype="string"),
            "customer_id": pd.array(["1"] * len(rows), dtype="string"),
            "opened_at": pd.to_datetime([ts(r[1]) for r in rows]).astype("datetime64[ns]"),
            "resolved_at": pd.to_datetime([ts(r[2]) for r in rows]).astype("datetime64[ns]"),
            "kind": pd.array([r[3] for r in rows], dtype="string"),
            "satisfaction": pd.array([r[4] for r in rows], dtype="Int64"),
        }
    )


def test_service_kpis_by_hand() -> None:
    tickets = tickets_frame(
        [
            ("t1", "2026-04-01 00:00", "2026-04-02 00:00", "complaint", 5),  # exactly 24 h
            ("t2", "2026-04-01 00:00", "2026-04-02 00:00:01", "complaint", 3),  # 24 h + 1 s
            ("t3", "2026-06-30 23:00", "2026-07-01 00:30", "complaint", 1),  # fixed after P
            ("t4", "2026-03-30 09:00", None, "complaint", None),  # older, still open
            ("t5", "2026-03-30 09:00", "2026-04-05 09:00", "complaint", 2),  # opened before P
            ("t6", "2026-05-01 09:00", None, "inquiry", 4),  # an open inquiry
            ("t7", "2026-06-01 09:00", None, "complaint", None),  # open
        ]
    )
    got = service.service_kpis(tickets, Q2, 24.0)
    # complaints opened in P: t1, t2, t3, t7 = 4; within 24 h and by the end: t1 -> 1/4
    # open complaints at the end: t3 (resolved after P), t4, t7 = 3
    # ratings of P's tickets, resolved by the end or open: t1 5, t2 3, t6 4 -> 4.0
    assert_values(
        got,
        {
            "complaints": 4.0,
            "complaint_resolved_24h_rate": 0.25,
            "open_complaints": 3.0,
            "satisfaction_mean": 4.0,
        },
    )


def test_service_kpis_without_tickets() -> None:
    got = service.service_kpis(tickets_frame([]), Q2)
    assert_values(
        got,
        {
            "complaints": 0.0,
            "complaint_resolved_24h_rate": NAN,
            "open_complaints": 0.0,
            "satisfaction_mean": NAN,
        },
    )


# -- care calendar -----------------------------------------------------------------------------


def care_register(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(customer_id, birthday, marketing_opt_out)."""
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "name": pd.array([f"name {r[0]}" for r in rows], dtype="string"),
            "team": pd.array(["North"] * len(rows), dtype="string"),
            "owner": pd.array(["wang"] * len(rows), dtype="string"),
            "birthday": pd.to_datetime([ts(r[1]) for r in rows]).astype("datetime64[ns]"),
            "marketing_opt_out": pd.array([r[2] for r in rows], dtype="boolean"),
        }
    )


def with_firsts(customers: pd.DataFrame, firsts: pd.DataFrame) -> pd.DataFrame:
    return attach(customers, firsts, ["first_order_date"])


def test_care_calendar_wraps_over_the_year_end(key: Any) -> None:
    customers = care_register(
        [
            (key(1), "1990-12-29", False),  # 2026-12-29, turns 36
            (key(2), "1985-01-04", True),  # 2027-01-04, turns 42 (opted out: still listed)
            (key(3), "1980-01-05", False),  # 2027-01-05: one day too late
            (key(4), "1970-12-28", False),  # today: not listed
            (key(5), None, False),  # unknown birthday
        ]
    )
    firsts = first_orders(
        [
            (key(3), "2025-01-02", None),  # 2nd anniversary on 2027-01-02
            (key(4), "2026-01-05", None),  # 1st anniversary on 2027-01-05: too late
            (key(5), "2024-12-31", None),  # 2nd anniversary on 2026-12-31
        ]
    )
    got = care.care_calendar(with_firsts(customers, firsts), date(2026, 12, 28), 7, 2)
    # window 2026-12-29 .. 2027-01-04; due 2 days before each event
    want = [
        (key(1), "birthday", "2026-12-29", "2026-12-27", True, 36),
        (key(5), "anniversary", "2026-12-31", "2026-12-29", False, 2),
        (key(3), "anniversary", "2027-01-02", "2026-12-31", False, 2),
        (key(2), "birthday", "2027-01-04", "2027-01-02", False, 42),
    ]
    rows = [
        (
            r.customer_id,
            r.event,
            r.event_date.date().isoformat(),
            r.due_date.date().isoformat(),
            bool(r.is_due),
            int(r.years),
        )
        for r in got.itertuples()
    ]
    assert rows == want
    assert list(got.columns) == list(care.CARE_COLUMNS)
    assert got.loc[got["customer_id"] == key(2), "marketing_opt_out"].tolist() == [True]
    assert care.care_kpis(got) == {"care_events_7d": 4.0, "care_greetings_due": 1.0}


@pytest.mark.parametrize(
    ("as_of", "want_date", "want_years"),
    [
        (date(2027, 2, 25), "2027-02-28", 27),  # no 29 February in 2027: the 28th
        (date(2028, 2, 25), "2028-02-29", 28),  # leap year: the day itself
        (date(2027, 2, 28), None, None),  # the 28th is today in 2027: not listed
        (date(2027, 2, 22), None, None),  # the window ends on 02-27
    ],
)
def test_care_calendar_feb_29_birthdays(
    as_of: date, want_date: str | None, want_years: int | None
) -> None:
    customers = care_register([("leap", "2000-02-29", False)])
    got = care.care_calendar(with_firsts(customers, first_orders([])), as_of, 5, 2)
    # lookahead 5 days: from 02-25 the window is 02-26 .. 03-02; from 02-22 it is
    # 02-23 .. 02-27, which ends before the 28th
    if want_date is None:
        assert got.empty
    else:
        assert got["event_date"].dt.date.astype(str).tolist() == [want_date]
        assert got["years"].tolist() == [want_years]


def test_care_calendar_feb_29_first_order_anniversary() -> None:
    customers = care_register([("buyer", None, False)])
    firsts = first_orders([("buyer", "2024-02-29", None)])
    got = care.care_calendar(with_firsts(customers, firsts), date(2027, 2, 26), 7, 2)
    # 3 years later, celebrated on 2027-02-28, greeting due 02-26 (today)
    assert got[["event", "years", "is_due"]].values.tolist() == [["anniversary", 3, True]]
    assert got["event_date"].iloc[0] == pd.Timestamp("2027-02-28")


def test_care_calendar_of_nobody_is_empty_and_typed() -> None:
    got = care.care_calendar(with_firsts(care_register([]), first_orders([])), T)
    assert got.empty
    assert list(got.columns) == list(care.CARE_COLUMNS)
    assert got["event_date"].dtype == np.dtype("datetime64[ns]")
    assert care.care_kpis(got) == {"care_events_7d": 0.0, "care_greetings_due": 0.0}
