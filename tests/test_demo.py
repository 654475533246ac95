"""The demo generator and loader: determinism, integrity, realism (as shares), loading.

Realism checks compute what they need from the frames with plain pandas, on purpose
independently of crm_batch.kpi, and assert broad bands rather than exact rows.
Server tests use a schema (PostgreSQL) or database (MariaDB) of their own per session
and are skipped with the reason when the server cannot be reached.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from crm_batch.errors import DataError
from crm_batch.schema import (
    CAMPAIGN_CHANNELS,
    ORDER_STATUSES,
    SOURCE_TABLES,
    TICKET_KINDS,
    build_metadata,
)
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.demo import (
    DEMO_INFO_TABLE,
    HOSTILE_NAMES,
    TEAMS,
    DemoData,
    generate_demo,
    load_demo,
)
from crm_batch.source.demo import load as demo_load
from crm_batch.source.demo.model import LEAD_CONVERSION, LEAD_SOURCES
from crm_batch.source.demo.seasons import LUNAR_NEW_YEAR
from crm_batch.source.params import standard_params
from crm_batch.source.sql_files import SqlCatalog

END = date(2026, 6, 30)
T = pd.Timestamp(END)
SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
SESSION = f"crm_demo_{os.getpid()}"


@pytest.fixture(scope="module")
def demo() -> DemoData:
    """The default-sized company: big enough for stable shares, generated in ~1 s."""
    return generate_demo(customers=20_000, orders=200_000, seed=7, end_date=END)


@pytest.fixture(scope="module")
def small() -> DemoData:
    """A small company for load round trips."""
    return generate_demo(customers=300, orders=3_000, seed=11, end_date=END)


def paid(data: DemoData) -> pd.DataFrame:
    return data.orders[data.orders.status == "paid"]


def net_revenue_12m(data: DemoData) -> pd.Series:
    """Paid minus refunded amounts per customer in (T-365, T]."""
    o = data.orders
    recent = o[(o.order_date > T - pd.Timedelta(days=365)) & (o.status != "cancelled")]
    signed = np.where(recent.status == "paid", recent.amount, -recent.amount)
    return pd.Series(signed, index=recent.index).groupby(recent.customer_id).sum()


def lifecycle(data: DemoData) -> pd.Series:
    """new / active / dormant / churned / prospect per customer as of the end date."""
    p = paid(data)
    first = p.groupby("customer_id").order_date.min()
    last = p.groupby("customer_id").order_date.max()
    stage = pd.Series("prospect", index=data.customers.customer_id)
    recency, age = (T - last).dt.days, (T - first).dt.days
    stage[last.index] = np.select(
        [age <= 90, recency <= 90, recency <= 180], ["new", "active", "dormant"], "churned"
    )
    return stage


# -- determinism and shape ------------------------------------------------------------


def test_same_seed_and_end_date_give_identical_frames(small: DemoData) -> None:
    again = generate_demo(customers=300, orders=3_000, seed=11, end_date=END)
    for name in SOURCE_TABLES:
        pd.testing.assert_frame_equal(getattr(small, name), getattr(again, name))


def test_another_seed_gives_another_company(small: DemoData) -> None:
    other = generate_demo(customers=300, orders=3_000, seed=12, end_date=END)
    assert not small.orders.equals(other.orders)
    assert not small.customers.name.equals(other.customers.name)


@pytest.mark.parametrize("name", SOURCE_TABLES)
def test_columns_are_the_schemas_in_order(demo: DemoData, name: str) -> None:
    expected = [c.name for c in build_metadata().tables[name].columns]
    assert list(demo.tables()[name].columns) == expected


def test_sizes_are_exact_and_every_table_has_rows(demo: DemoData) -> None:
    assert len(demo.customers) == 20_000
    assert len(demo.orders) == 200_000
    assert all(count > 0 for count in demo.row_counts().values())


@pytest.mark.parametrize(("customers", "orders"), [(50, 20), (40, 0), (1, 5)])
def test_tiny_companies_still_generate_and_load(
    tmp_path: Path, customers: int, orders: int
) -> None:
    data = generate_demo(customers=customers, orders=orders, end_date=END)
    assert len(data.customers) == customers
    assert len(data.orders) == orders
    engine = create_engine(f"duckdb:///{tmp_path / 'tiny.duckdb'}")
    assert load_demo(engine, data) == data.row_counts()
    engine.dispose()


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="customers"):
        generate_demo(customers=0, end_date=END)
    with pytest.raises(ValueError, match="orders"):
        generate_demo(orders=-1, end_date=END)


# -- integrity ------------------------------------------------------------------------


def test_primary_keys_are_unique(demo: DemoData) -> None:
    for name, frame in demo.tables().items():
        key = build_metadata().tables[name].primary_key.columns.keys()[0]
        assert frame[key].is_unique, name


def test_references_point_to_existing_rows(demo: DemoData) -> None:
    customers = set(demo.customers.customer_id)
    for name in ("orders", "tickets", "touches"):
        assert set(demo.tables()[name].customer_id) <= customers, name
    assert set(demo.leads.customer_id.dropna()) <= customers
    assert set(demo.touches.campaign_id) <= set(demo.campaigns.campaign_id)


def test_referrers_are_earlier_customers_who_had_bought(demo: DemoData) -> None:
    c = demo.customers.set_index("customer_id")
    referred = c[c.referred_by.notna()]
    referrer = c.loc[referred.referred_by.astype("int64")]
    assert (referred.referred_by.to_numpy() < referred.index.to_numpy()).all()
    assert (referrer.signup_date.to_numpy() < referred.signup_date.to_numpy()).all()
    first = paid(demo).groupby("customer_id").order_date.min()
    first_of_referrer = first.reindex(referred.referred_by.astype("int64")).to_numpy()
    assert (first_of_referrer < referred.signup_date.to_numpy()).all()


def test_value_sets_are_the_canonical_ones(demo: DemoData) -> None:
    assert set(demo.orders.status) == set(ORDER_STATUSES)
    assert set(demo.tickets.kind) == set(TICKET_KINDS)
    assert set(demo.campaigns.channel) == set(CAMPAIGN_CHANNELS)
    assert set(demo.leads.source) == set(LEAD_SOURCES)
    teams = {team.name: team for team in TEAMS}
    c = demo.customers
    assert set(c.team) == set(teams)
    for team, owner, region in c[["team", "owner", "region"]].drop_duplicates().itertuples(False):
        assert owner in teams[team].owners
        assert region == teams[team].region


def test_events_happen_in_a_plausible_order(demo: DemoData) -> None:
    o, c = demo.orders, demo.customers.set_index("customer_id")
    assert o.order_date.max() <= T
    assert (o.order_date.to_numpy() >= c.signup_date.loc[o.customer_id].to_numpy()).all()
    assert o.order_date.is_monotonic_increasing  # ids follow time
    assert (o.amount > 0).all()
    # a refund is dated after a paid order of the same customer
    first_paid = paid(demo).groupby("customer_id").order_date.min()
    refunds = o[o.status == "refunded"]
    assert (refunds.order_date.to_numpy() > first_paid.loc[refunds.customer_id].to_numpy()).all()
    t = demo.tickets
    assert (t.resolved_at.dropna() > t.opened_at[t.resolved_at.notna()]).all()
    assert t.opened_at.max() < T + pd.Timedelta(days=1)
    assert (demo.touches.sent_at.to_numpy() >= c.signup_date.loc[demo.touches.customer_id]).all()


# -- realism: shares in broad bands ---------------------------------------------------


def test_lifecycle_mix_is_real(demo: DemoData) -> None:
    shares = lifecycle(demo).value_counts(normalize=True)
    bands = {
        "prospect": (0.05, 0.30),
        "new": (0.03, 0.20),
        "active": (0.10, 0.45),
        "dormant": (0.03, 0.20),
        "churned": (0.20, 0.60),
    }
    for stage, (low, high) in bands.items():
        assert low <= shares[stage] <= high, (stage, shares[stage])


def test_some_churned_customers_come_back(demo: DemoData) -> None:
    p = paid(demo).sort_values(["customer_id", "order_date"])
    gap = p.groupby("customer_id").order_date.diff().dt.days
    came_back = p.customer_id[gap > 180].nunique()
    assert came_back >= 0.01 * p.customer_id.nunique()


def test_tiers_a_and_b_exist_in_sensible_shares(demo: DemoData) -> None:
    p = paid(demo)
    recent = p[p.order_date > T - pd.Timedelta(days=365)]
    orders_12m = recent.groupby("customer_id").size()
    quarter = np.minimum((T - recent.order_date).dt.days // 91, 3)
    quarters = recent.assign(q=quarter).groupby("customer_id").q.nunique()
    revenue = net_revenue_12m(demo).reindex(orders_12m.index).fillna(0)
    tier_a = (revenue >= 100_000) & (quarters >= 3)
    tier_b = ~tier_a & ((revenue >= 20_000) | (orders_12m >= 4))
    assert 0.01 <= tier_a.mean() <= 0.08
    assert 0.15 <= tier_b.mean() <= 0.60


def test_revenue_is_concentrated(demo: DemoData) -> None:
    revenue = net_revenue_12m(demo)
    buyers = paid(demo)[paid(demo).order_date > T - pd.Timedelta(days=365)].customer_id.unique()
    revenue = revenue.reindex(buyers).sort_values(ascending=False)
    top = revenue.iloc[: int(np.ceil(0.2 * len(revenue)))]
    assert top.sum() / revenue.sum() > 0.5


def test_spend_and_order_counts_are_heavy_tailed(demo: DemoData) -> None:
    p = paid(demo)
    counts = p.groupby("customer_id").size()
    assert counts.max() >= 10 * counts.median()
    assert p.amount.quantile(0.99) >= 5 * p.amount.median()
    assert 500 <= p.amount.median() <= 5_000


def test_refunds_and_cancellations(demo: DemoData) -> None:
    shares = demo.orders.status.value_counts(normalize=True)
    assert 0.01 <= shares["refunded"] <= 0.06
    assert 0.01 <= shares["cancelled"] <= 0.04


def test_seasonality_spring_festival_618_double_11(demo: DemoData) -> None:
    p = paid(demo)
    per_day = (
        p.groupby("order_date").size().reindex(pd.date_range(p.order_date.min(), T), fill_value=0)
    )
    by_month = per_day.groupby(per_day.index.month).mean()
    assert by_month[2] < by_month[6]
    assert by_month[2] < by_month[11]
    assert per_day[per_day.index.strftime("%m-%d") == "11-11"].mean() > 2 * per_day.mean()
    festival = [pd.Timestamp(d) for d in LUNAR_NEW_YEAR.values()]
    festival = [d for d in festival if per_day.index[3] <= d <= per_day.index[-4]]
    around = [per_day[d - pd.Timedelta(days=3) : d + pd.Timedelta(days=3)].mean() for d in festival]
    assert festival
    assert max(around) < 0.6 * per_day.mean()


def test_leads_convert_by_source(demo: DemoData) -> None:
    leads = demo.leads
    rate = leads.customer_id.notna().groupby(leads.source, observed=True).mean()
    assert rate.between(0.10, 0.30).all()
    assert rate.max() - rate.min() >= 0.1  # it depends on the source
    assert set(rate.index) == set(LEAD_CONVERSION)
    converted = leads.dropna(subset=["customer_id"])
    customers = demo.customers.set_index("customer_id")
    signup = customers.signup_date.loc[converted.customer_id.astype("int64")].to_numpy()
    assert (converted.created_at.to_numpy() < signup).all()
    # leads of the window (older ones belong to customers whose first order predates it)
    recent = converted[converted.created_at >= T - pd.Timedelta(days=3 * 365 - 100)]
    signup = customers.signup_date.loc[recent.customer_id.astype("int64")].to_numpy()
    first = paid(demo).groupby("customer_id").order_date.min()
    lag = (first.reindex(recent.customer_id.astype("int64")).to_numpy() - signup) / np.timedelta64(
        1, "D"
    )
    assert np.nanmedian(lag) <= 28  # first orders follow within weeks
    assert np.mean(lag <= 90) >= 0.8


def test_referrals_and_advocates(demo: DemoData) -> None:
    c = demo.customers
    joined = c[c.signup_date > T - pd.Timedelta(days=3 * 365)]
    assert 0.08 <= joined.referred_by.notna().mean() <= 0.25
    buyers = set(paid(demo).customer_id)
    successful = c[c.referred_by.notna() & c.customer_id.isin(buyers)].groupby("referred_by").size()
    assert (successful >= 2).sum() >= 20  # advocates
    assert successful.max() >= 10  # a few refer many


def test_tickets_complaints_and_satisfaction(demo: DemoData) -> None:
    t = demo.tickets
    complaints = t[t.kind == "complaint"]
    assert complaints.resolved_at.isna().sum() >= 10
    hours = (complaints.resolved_at - complaints.opened_at).dt.total_seconds() / 3600
    assert 0.1 <= (hours.dropna() > 24).mean() <= 0.6
    scores = t.satisfaction.dropna()
    assert set(scores) == {1, 2, 3, 4, 5}
    assert 0.1 <= t.satisfaction.isna().mean() <= 0.8


def test_unresolved_complaints_make_customers_stop_buying(demo: DemoData) -> None:
    t = demo.tickets
    open_ = t[
        (t.kind == "complaint") & t.resolved_at.isna() & (t.opened_at < T - pd.Timedelta(days=90))
    ]
    opened = open_.groupby("customer_id").opened_at.min().dt.normalize()
    p = paid(demo)
    p = p[p.customer_id.isin(opened.index)]
    days = (p.order_date.to_numpy() - opened.loc[p.customer_id].to_numpy()) / np.timedelta64(1, "D")
    bought_before = p.customer_id[(days >= -90) & (days < 0)].nunique()
    bought_after = p.customer_id[(days > 14) & (days <= 104)].nunique()
    assert len(opened) >= 50
    assert bought_after < 0.6 * bought_before


def test_campaign_touches_opt_outs_and_attribution(demo: DemoData) -> None:
    touches = demo.touches
    assert 0.005 <= touches.opted_out.mean() <= 0.05
    assert not (touches.clicked & ~touches.opened).any()
    assert (demo.campaigns.cost > 0).all()
    started = demo.campaigns.set_index("campaign_id").started_at.loc[touches.campaign_id]
    assert (touches.sent_at.to_numpy() >= started.to_numpy()).all()
    # nobody is touched after opting out, and opting out is remembered
    out_at = touches[touches.opted_out].groupby("customer_id").sent_at.min()
    later = touches[touches.customer_id.isin(out_at.index)]
    assert (later.sent_at <= out_at.loc[later.customer_id].to_numpy()).all()
    opted = demo.customers.set_index("customer_id").marketing_opt_out
    assert opted.loc[out_at.index].all()

    def buy_rate(shift_days: int) -> float:
        sent = touches[["customer_id", "sent_at"]].assign(
            day=touches.sent_at.dt.normalize() - pd.Timedelta(days=shift_days)
        )
        pairs = sent.merge(paid(demo)[["customer_id", "order_date"]], on="customer_id")
        hit = (pairs.order_date > pairs.day) & (
            pairs.order_date <= pairs.day + pd.Timedelta(days=7)
        )
        return pairs[hit].drop_duplicates(["customer_id", "sent_at"]).shape[0] / len(touches)

    assert buy_rate(0) > 1.1 * buy_rate(30)  # touched customers buy a bit more often


def test_contacts_birthdays_and_names(demo: DemoData) -> None:
    c = demo.customers
    assert 0.1 <= c.birthday.isna().mean() <= 0.5
    assert (c.birthday.dropna() < T - pd.DateOffset(years=18)).all()
    assert c.phone.notna().mean() > 0.9
    assert c.email.dropna().str.contains("@", regex=False).all()
    names = c.name.dropna()
    chinese = names.str.contains(r"^[\u4e00-\u9fff]{2,4}$")
    assert chinese.mean() > 0.6
    assert names.str.contains("有限公司").mean() > 0.03
    assert names.str.contains(r"^[A-Z][a-zé-ü'\-]+ [A-Z]").mean() > 0.05  # Latin script
    assert 0.005 <= c.marketing_opt_out.mean() <= 0.2


def test_teams_vary_in_size_and_one_is_small(demo: DemoData) -> None:
    shares = demo.customers.team.value_counts(normalize=True)
    assert len(TEAMS) == 8
    assert len(shares) == 8
    assert shares.min() < 0.06
    assert shares.max() > 2 * shares.median() * 0.8


@pytest.mark.parametrize("customers", [300, 20_000])
def test_hostile_names_are_planted(customers: int, demo: DemoData, small: DemoData) -> None:
    data = small if customers == 300 else demo
    names = list(data.customers.name)
    for hostile in HOSTILE_NAMES:
        assert names.count(hostile) >= 1, repr(hostile[:40])
    assert max(len(n) for n in names if isinstance(n, str)) == 40_000


# -- loading --------------------------------------------------------------------------


def check_loaded(engine: Engine, data: DemoData, loaded: dict[str, int], id_type: str) -> None:
    """Row counts, hostile names, text ids and the sql/ summary on the loaded database."""
    assert loaded == data.row_counts()
    with engine.connect() as conn:
        for name, rows in loaded.items():
            assert conn.execute(text(f"select count(*) from {name}")).scalar_one() == rows
        stored = dict(conn.execute(text("select customer_id, name from customers")).all())
        info = conn.execute(text(f"select seed, id_type from {DEMO_INFO_TABLE}")).one()
        joined = conn.execute(
            text("select count(*) from orders o join customers c on c.customer_id = o.customer_id")
        ).scalar_one()
    assert tuple(info) == (data.seed, id_type)
    assert joined == len(data.orders)
    key = (lambda i: f"C{i:07d}") if id_type == "text" else int
    frame = data.customers.set_index("customer_id").name
    for customer_id, name in frame[frame.isin(HOSTILE_NAMES)].items():
        assert stored[key(customer_id)] == name
    query = SqlCatalog(SQL_DIR).get("revenue_by_team_year", dialect_name(engine))
    summary = run_query(engine, query, standard_params(data.end_date))
    assert summary.orders.sum() == (data.orders.status == "paid").sum()
    signed = np.where(data.orders.status == "paid", data.orders.amount, -data.orders.amount)
    expected = signed[data.orders.status != "cancelled"].sum()
    assert summary.revenue.sum() == pytest.approx(expected, abs=0.01 * len(data.orders))


@pytest.mark.parametrize("id_type", ["int", "text"])
def test_load_into_duckdb(tmp_path: Path, small: DemoData, id_type: str) -> None:
    engine = create_engine(f"duckdb:///{tmp_path / 'demo.duckdb'}")
    check_loaded(engine, small, load_demo(engine, small, id_type=id_type), id_type)
    engine.dispose()


@pytest.mark.parametrize("id_type", ["int", "text"])
def test_load_into_sqlite(tmp_path: Path, small: DemoData, id_type: str) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    check_loaded(engine, small, load_demo(engine, small, id_type=id_type), id_type)
    engine.dispose()


def test_reloading_replaces_an_earlier_demo(tmp_path: Path, small: DemoData) -> None:
    engine = create_engine(f"duckdb:///{tmp_path / 'demo.duckdb'}")
    load_demo(engine, generate_demo(customers=100, orders=500, end_date=END))
    check_loaded(engine, small, load_demo(engine, small), "int")
    engine.dispose()


def with_duplicate_order(data: DemoData) -> DemoData:
    """The demo with one order row twice: its primary key cannot be built."""
    return replace(data, orders=pd.concat([data.orders, data.orders.tail(1)], ignore_index=True))


def test_failed_sqlite_load_leaves_the_previous_demo(tmp_path: Path, small: DemoData) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    load_demo(engine, small)
    with pytest.raises(DataError, match="UNIQUE"):
        load_demo(engine, with_duplicate_order(small))
    check_loaded(engine, small, small.row_counts(), "int")
    engine.dispose()


def test_failed_duckdb_load_is_still_replaced_as_a_demo(tmp_path: Path, small: DemoData) -> None:
    engine = create_engine(f"duckdb:///{tmp_path / 'demo.duckdb'}")
    with pytest.raises(DataError):
        load_demo(engine, with_duplicate_order(small))
    check_loaded(engine, small, load_demo(engine, small), "int")
    engine.dispose()


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_refuses_to_overwrite_tables_it_did_not_make(
    tmp_path: Path, small: DemoData, backend: str
) -> None:
    engine = create_engine(f"{backend}:///{tmp_path / 'company.db'}")
    with engine.begin() as conn:
        conn.execute(text("create table orders (order_id integer, amount integer)"))
        conn.execute(text("insert into orders values (1, 100)"))
    with pytest.raises(DataError, match=r"orders.*refusing") as error:
        load_demo(engine, small)
    assert "company.db" in str(error.value)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from orders")).scalar_one() == 1
    check_loaded(engine, small, load_demo(engine, small, replace=True), "int")
    engine.dispose()


# -- PostgreSQL and MariaDB -------------------------------------------------------------


def reachable(url: str) -> str | None:
    """None when the server answers, else the reason to skip."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except SQLAlchemyError as exc:
        return f"{url.split('@')[-1]} unreachable: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="module")
def postgres() -> Iterator[Engine]:
    """An engine whose search_path is a schema of this test session, dropped afterwards."""
    if reason := reachable(PG_URL):
        pytest.skip(reason)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"drop schema if exists {SESSION} cascade"))
        conn.execute(text(f"create schema {SESSION}"))
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={SESSION}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"drop schema if exists {SESSION} cascade"))
        admin.dispose()


@pytest.fixture(scope="module")
def mariadb() -> Iterator[Engine]:
    """An engine on a database of this test session, dropped afterwards."""
    if reason := reachable(MARIADB_URL):
        pytest.skip(reason)
    admin = create_engine(MARIADB_URL)
    with admin.begin() as conn:
        conn.execute(text(f"drop database if exists {SESSION}"))
        conn.execute(text(f"create database {SESSION} character set utf8mb4"))
    engine = create_engine(MARIADB_URL.rsplit("/", 1)[0] + f"/{SESSION}?charset=utf8mb4")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"drop database if exists {SESSION}"))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("id_type", ["int", "text"])
def test_load_into_postgres(postgres: Engine, small: DemoData, id_type: str) -> None:
    check_loaded(postgres, small, load_demo(postgres, small, id_type=id_type), id_type)


@pytest.mark.postgres
def test_failed_postgres_load_leaves_the_previous_demo(postgres: Engine, small: DemoData) -> None:
    load_demo(postgres, small)
    with pytest.raises(DataError):
        load_demo(postgres, with_duplicate_order(small))
    check_loaded(postgres, small, small.row_counts(), "int")


@pytest.mark.mariadb
@pytest.mark.parametrize("id_type", ["int", "text"])
def test_load_into_mariadb(mariadb: Engine, small: DemoData, id_type: str) -> None:
    check_loaded(mariadb, small, load_demo(mariadb, small, id_type=id_type), id_type)


@pytest.mark.mariadb
def test_failed_mariadb_load_is_still_replaced_as_a_demo(mariadb: Engine, small: DemoData) -> None:
    with pytest.raises(DataError, match="Duplicate"):
        load_demo(mariadb, with_duplicate_order(small))
    check_loaded(mariadb, small, load_demo(mariadb, small), "int")


@pytest.mark.mariadb
def test_mariadb_without_local_files_falls_back_to_inserts(
    mariadb: Engine, small: DemoData, monkeypatch: pytest.MonkeyPatch
) -> None:
    def without_local_files(engine: Engine) -> Engine:
        return create_engine(engine.url, connect_args={"local_infile": False})

    monkeypatch.setattr(demo_load, "_mysql_loader_engine", without_local_files)
    check_loaded(mariadb, small, load_demo(mariadb, small, id_type="text"), "text")


def test_demo_history_covers_quarter_ends_month_ends_and_the_tiles_comparison_day() -> None:
    from crm_batch.app.demo import demo_history_dates

    dates = demo_history_dates(date(2026, 11, 24), 2)
    # the 12 month ends before November 2026 (they include the quarter ends of Q3 and Q2,
    # the two quarters of history asked for) and day 55 of Q3 (2026-11-24 is day 55 of Q4)
    month_ends = [date(2025, 11, 30), date(2025, 12, 31)] + [
        date(2026, month + 1, 1) - timedelta(days=1) for month in range(1, 11)
    ]
    assert dates == sorted([*month_ends, date(2026, 8, 24)])
    assert {date(2026, 6, 30), date(2026, 9, 30)} <= set(dates)
    assert demo_history_dates(date(2026, 11, 24), 0) == []


def test_the_demo_renders_both_languages_unless_the_settings_choose(tmp_path: Path) -> None:
    """A first look shows the zh-CN and the English reports; ``reports.languages`` wins
    (the CLI tests use it to render one language only)."""
    from crm_batch.app.demo import demo_settings
    from crm_batch.config import load_settings

    defaults = load_settings(environ={}, cwd=tmp_path)
    assert defaults.reports.languages == []  # each report in its scope's language
    assert demo_settings(defaults).reports.languages == ["zh-CN", "en"]
    (tmp_path / "crm_batch.toml").write_text('[reports]\nlanguages = ["en"]\n', encoding="utf-8")
    chosen = load_settings(environ={}, cwd=tmp_path)
    assert demo_settings(chosen).reports.languages == ["en"]


#: The demo's prices, written out again by hand (crm_batch/source/demo/marketing.py says
#: why): channel -> (per message or guest, setup before its random 0.6-1.6 spread).
PRICES = {
    "sms": (0.10, 1_500.0),
    "email": (0.005, 3_000.0),
    "wechat": (0.30, 4_000.0),
    "call": (15.0, 500.0),
    "event": (300.0, 30_000.0),
}
OFFERS = {"618 Mid-year Sale": 0.20, "Double 11": 0.20, "We Miss You": 0.18,
          "Repurchase Coupon": 0.18, "Member Day": 0.15, "Spring Festival": 0.15,
          "VIP Appreciation": 0.12, "Refer a Friend": 0.12, "New Arrivals": 0.10,
          "Customer Survey": 0.10}  # fmt: skip


def test_campaign_costs_are_setup_messages_and_the_offer_on_the_week_after(
    demo: DemoData,
) -> None:
    """Recomputed with pandas from the frames: a campaign costs its setup, a price per
    message (or guest) sent and its offer on every paid order its sent customers place
    on the 7 days after their touch; a control costs nothing."""
    sent = demo.touches[~demo.touches.is_control]
    orders = paid(demo)[["customer_id", "order_date", "amount"]]
    pairs = sent[["touch_id", "campaign_id", "customer_id", "sent_at"]].merge(
        orders, on="customer_id"
    )
    days = (pairs.order_date - pairs.sent_at.dt.normalize()).dt.days
    redeemed = pairs[(days >= 1) & (days <= 7)].groupby("campaign_id").amount.sum()
    campaigns = demo.campaigns.set_index("campaign_id")
    messages = sent.groupby("campaign_id").size().reindex(campaigns.index, fill_value=0)
    theme = campaigns.name.str.extract(r"^\d{4} \S+ (.+) \(\w+\)$")[0]
    offer = theme.map(OFFERS)
    assert offer.notna().all()
    channel = campaigns.channel.astype(str)
    per_message = channel.map(lambda c: PRICES[c][0])
    setup = channel.map(lambda c: PRICES[c][1])
    rest = (
        campaigns.cost
        - per_message * messages
        - offer * redeemed.reindex(campaigns.index, fill_value=0.0)
    )
    spread = rest / setup
    assert spread.between(0.6 - 1e-6, 1.6 + 1e-6).all(), spread.describe()
    # the offer is what mostly costs: over half of all campaign money
    assert (offer * redeemed.reindex(campaigns.index, fill_value=0.0)).sum() > 0.5 * (
        campaigns.cost.sum()
    )
