"""The fitted value models per business date (crm_batch.app.value_models) on every database,
and the KPI run storing them beside its snapshots."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine
from test_kpi_facts import BACKEND_PARAMS

from crm_batch.app.engines import Databases
from crm_batch.app.kpis import run_kpis, store_snapshots
from crm_batch.app.quarter import gather_quarter
from crm_batch.app.value_models import read_value_models, write_value_model
from crm_batch.config import load_settings
from crm_batch.kpi import predict
from crm_batch.kpi.predict import BgNbd, GammaGamma, ValueModel
from crm_batch.periods import parse_period
from crm_batch.schema import VALUE_MODEL_FIGURES
from crm_batch.source.db import make_engine
from crm_batch.source.demo import generate_demo, load_demo

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 7, 1, 2, 30, 15, 999)
FITTED = ValueModel(
    buyers=23_570,
    repeat_buyers=8_000,
    bgnbd=BgNbd(0.2425928983381185, 30.894719, 0.7928859922468166, 2.425752931, 1, -9582.4, True),
    gamma_gamma=GammaGamma(6.248802407739446, 3.7445886, 15.447749110918782, 946, -4055.9, True),
)
UNFITTED = ValueModel(buyers=3, repeat_buyers=1, bgnbd=None, gamma_gamma=None)


@pytest.fixture(params=BACKEND_PARAMS)
def engine(
    request: pytest.FixtureRequest, db_url_factory: Callable[[str], URL]
) -> Iterator[Engine]:
    engine = make_engine(db_url_factory(request.param), connect_timeout=5, statement_timeout=60)
    yield engine
    engine.dispose()


def test_write_read_replace_and_nulls(engine: Engine) -> None:
    assert read_value_models(engine).empty  # before the table exists
    write_value_model(engine, date(2026, 6, 30), UNFITTED, AT)
    write_value_model(engine, date(2026, 3, 31), FITTED, AT)
    write_value_model(engine, date(2026, 6, 30), FITTED, AT)  # replaces, never duplicates
    write_value_model(engine, date(2026, 9, 30), UNFITTED, AT)
    rows = read_value_models(engine)
    dates = [date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30)]
    assert [d.date() for d in rows["as_of"]] == dates
    for row, model in zip(rows.to_dict("records"), (FITTED, FITTED, UNFITTED), strict=True):
        for name, value in model.parameters().items():
            if math.isnan(value):
                assert math.isnan(row[name]), name  # NULL read back as NaN
            else:
                assert row[name] == value, name  # 8-byte floats: every digit back
        assert row["computed_at"] == datetime(2026, 7, 1, 2, 30, 15)
    only = read_value_models(engine, start=date(2026, 4, 1), end=date(2026, 6, 30))
    assert list(only["as_of"].dt.date) == [date(2026, 6, 30)]
    assert list(rows.columns) == ["as_of", *VALUE_MODEL_FIGURES, "computed_at"]


def test_the_snapshot_of_a_run_stores_its_fitted_models(
    db_url_factory: Callable[[str], URL], tmp_path: Path
) -> None:
    url = db_url_factory("duckdb")
    engine = make_engine(url, connect_timeout=5, statement_timeout=300)
    try:
        as_of = date(2026, 6, 30)
        load_demo(engine, generate_demo(customers=400, orders=4_000, seed=5, end_date=as_of))
        settings = load_settings(
            REPO / "crm_batch.toml", database_url=str(url), environ={}, cwd=tmp_path
        )
        run = run_kpis(settings, engine, as_of, all_teams=True)
        assert run.value_model is not None
        assert run.value_model.fitted
        store_snapshots(engine, run, AT)
        stored = read_value_models(engine).to_dict("records")
        assert len(stored) == 1
        assert stored[0]["as_of"].date() == as_of
        assert {name: stored[0][name] for name in VALUE_MODEL_FIGURES} == (
            run.value_model.parameters()
        )
        company = run.reports[None]
        assert company.kpis["expected_revenue_12m"] == pytest.approx(
            company.customers["expected_revenue_12m"].sum()
        )
        teams = [report for team, report in run.reports.items() if team is not None]
        assert sum(r.kpis["expected_revenue_12m"] for r in teams) == pytest.approx(
            company.kpis["expected_revenue_12m"]
        ), "one company-wide fit: the teams' predictions add up to the company's"
    finally:
        engine.dispose()


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per BG/NBD fit made while the test runs (a fit, not a reuse)."""
    made: list[int] = []
    original = predict.fit_bgnbd

    def counted(*args: object) -> object:
        made.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(predict, "fit_bgnbd", counted)
    return made


def test_a_second_run_of_the_date_reuses_the_stored_models_only_on_the_same_buyers(
    db_url_factory: Callable[[str], URL], tmp_path: Path, fits: list[int]
) -> None:
    """The models stored for a date are read back and used instead of a new fit when the
    buyers are the same (same scores, same KPIs, no fit); after one paid amount changes
    they are fitted again and differ."""
    url = db_url_factory("duckdb")
    engine = make_engine(url, connect_timeout=5, statement_timeout=300)
    try:
        as_of = date(2026, 6, 30)
        load_demo(engine, generate_demo(customers=400, orders=4_000, seed=5, end_date=as_of))
        settings = load_settings(
            REPO / "crm_batch.toml", database_url=str(url), environ={}, cwd=tmp_path
        )
        first = run_kpis(settings, engine, as_of, all_teams=True, state=engine)
        assert len(fits) == 1  # nothing stored yet: fitted
        store_snapshots(engine, first, AT)
        again = run_kpis(settings, engine, as_of, all_teams=True, state=engine)
        assert len(fits) == 1, "the stored models were fitted on the same buyers: reused"
        assert again.value_model is not None
        assert first.value_model is not None
        assert again.value_model.parameters() == first.value_model.parameters()
        for team, report in first.reports.items():
            assert pd.Series(again.reports[team].kpis).equals(pd.Series(report.kpis))
            scores = list(predict.SCORE_COLUMNS)
            assert again.reports[team].customers[scores].equals(report.customers[scores])
        with engine.begin() as conn:  # one repeat buyer's later order costs a cent more
            conn.execute(
                text(
                    "update orders set amount = amount + 0.01 where order_id = ("
                    " select max(order_id) from orders where status = 'paid'"
                    " and order_date <= '2026-06-30')"
                )
            )
        changed = run_kpis(settings, engine, as_of, all_teams=True, state=engine)
        assert len(fits) == 2, "one amount changed: fitted again"
        assert changed.value_model is not None
        assert changed.value_model.parameters() != first.value_model.parameters()
    finally:
        engine.dispose()


def test_the_quarterly_review_reuses_the_models_the_nightly_stored_for_its_last_day(
    db_url_factory: Callable[[str], URL], tmp_path: Path, fits: list[int]
) -> None:
    """gather_quarter computes the quarter as of its last day: the models the nightly of
    that day stored are used (no fit), and the review's scores are those of the fit."""
    url = db_url_factory("duckdb")
    engine = make_engine(url, connect_timeout=5, statement_timeout=300)
    try:
        quarter_end = date(2026, 6, 30)
        load_demo(engine, generate_demo(customers=400, orders=4_000, seed=5, end_date=quarter_end))
        settings = load_settings(
            REPO / "crm_batch.toml", database_url=str(url), environ={}, cwd=tmp_path
        )
        # earlier quarters without snapshots are recomputed (and fitted) by both reviews
        fresh = gather_quarter(settings, Databases.single(engine), parse_period("2026Q2"))
        fitted_fresh = len(fits)
        nightly = run_kpis(settings, engine, quarter_end, all_teams=True, state=engine)
        store_snapshots(engine, nightly, AT)
        fits.clear()
        review = gather_quarter(settings, Databases.single(engine), parse_period("2026Q2"))
        assert len(fits) == fitted_fresh - 1, "the quarter's own models: the nightly's, reused"
        assert review.run.value_model is not None
        assert fresh.run.value_model is not None
        assert review.run.value_model.parameters() == fresh.run.value_model.parameters()
        scores = list(predict.SCORE_COLUMNS)
        company = review.run.reports[None].customers[scores]
        assert company.equals(fresh.run.reports[None].customers[scores])
    finally:
        engine.dispose()


def test_stored_parameters_read_back_as_the_same_model() -> None:
    """from_parameters inverts ValueModel.parameters (NaN parts: not fitted)."""
    for model in (FITTED, UNFITTED):
        assert predict.from_parameters(model.parameters()).parameters() == pytest.approx(
            model.parameters(), nan_ok=True
        )
