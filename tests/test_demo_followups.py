"""The demo reps' follow-ups (crm_batch.source.demo.followups): who is called, when, with
what, and their storing in the state database as the Save button stores them."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fixtures.batch import demo_folder, folder_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_batch.app.demo import DEMO_WORKBOOK, store_demo_followups
from crm_batch.app.engines import open_state
from crm_batch.app.followups import latest_followups
from crm_batch.kpi.playbook import OUTCOME_LABELS
from crm_batch.source.demo import DemoData, draw_followups, generate_demo, load_demo
from crm_batch.source.demo.followups import DAYS, PER_OWNER, QUIET_DAYS

END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def company() -> DemoData:
    return generate_demo(customers=20_000, orders=200_000, seed=7, end_date=END)


def test_reps_call_their_own_quiet_customers_in_the_last_weeks(company: DemoData) -> None:
    calls = draw_followups(company)
    assert len(calls) > 100
    customers = company.customers.set_index("customer_id")
    called = customers.loc[calls["customer_id"]]
    # each rep calls customers of their own, in their team
    assert (called["owner"].astype(str).to_numpy() == calls["owner"].to_numpy()).all()
    assert (called["team"].astype(str).to_numpy() == calls["team"].to_numpy()).all()
    assert calls["customer_id"].is_unique
    assert calls.groupby("owner").size().max() <= PER_OWNER
    # quiet: a paid order in the last year, none in the last QUIET_DAYS days
    orders = company.orders
    last_paid = orders[orders["status"] == "paid"].groupby("customer_id")["order_date"].max()
    quiet_days = (pd.Timestamp(END) - last_paid.loc[calls["customer_id"]]).dt.days
    assert quiet_days.between(QUIET_DAYS + 1, 365).all()
    # entered on one of the DAYS days before the end date, in office hours
    entered = calls["entered_at"]
    assert entered.dt.date.between(END - timedelta(days=DAYS), END - timedelta(days=1)).all()
    assert entered.dt.hour.between(9, 17).all()
    assert entered.is_monotonic_increasing
    assert set(calls["outcome"]) <= set(OUTCOME_LABELS)
    assert {"ordered", "complaint"}.isdisjoint(calls["outcome"])  # no source row backs them
    assert calls["note"].str.len().gt(0).all()
    # a next contact after the call where the outcome calls for one, some already overdue
    later = calls.dropna(subset=["next_contact_date"])
    assert (later["next_contact_date"] > later["entered_at"].dt.date).all()
    assert (later["next_contact_date"] <= END).any()
    assert calls.loc[calls["outcome"] == "not_interested", "next_contact_date"].isna().all()


def test_the_same_demo_gives_the_same_calls_and_the_tables_stay_the_same(
    company: DemoData,
) -> None:
    again = generate_demo(customers=20_000, orders=200_000, seed=7, end_date=END)
    pd.testing.assert_frame_equal(draw_followups(company), draw_followups(again))
    other = generate_demo(customers=20_000, orders=200_000, seed=8, end_date=END)
    assert not draw_followups(other).equals(draw_followups(company))


@pytest.mark.parametrize("id_type", ["int", "text"])
def test_stored_like_the_save_button_once_under_the_loaded_ids(
    tmp_path: Path, id_type: str
) -> None:
    data = generate_demo(customers=600, orders=6_000, seed=3, end_date=END, years=2)
    url = make_url(f"duckdb:///{tmp_path / 'demo.duckdb'}")
    engine = create_engine(url)
    load_demo(engine, data, id_type=id_type)
    with engine.connect() as conn:
        ids = {str(row[0]) for row in conn.execute(text("select customer_id from customers"))}
    engine.dispose()
    settings = folder_settings(demo_folder(tmp_path / "folder"), url)

    calls = draw_followups(data)
    assert store_demo_followups(settings, data, id_type) == len(calls) > 0
    assert store_demo_followups(settings, data, id_type) == 0  # stored once

    with open_state(settings) as state:
        stored = latest_followups(state).set_index("customer_id")
    assert len(stored) == len(calls)
    assert set(stored.index) <= ids  # the ids the customers table holds
    assert set(stored["source_workbook"]) == {DEMO_WORKBOOK}
    for call in calls.head(20).itertuples(index=False):
        key = f"C{call.customer_id:07d}" if id_type == "text" else str(call.customer_id)
        row = stored.loc[key]
        assert (row["outcome"], row["note"], row["entered_by"]) == (
            call.outcome,
            call.note,
            call.owner,
        )
        assert row["next_contact_date"] == call.next_contact_date
        assert row["entered_at"] == call.entered_at
