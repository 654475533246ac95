"""Predicted customer value (crm_batch.kpi.predict): likelihoods, fits, scores, KPIs.

* the log-likelihoods against the papers' product forms, written out here with
  ``math.gamma`` (and two values worked out by hand);
* CDNOW as lifetimes ships it: the published parameters (Fader, Hardie and Lee 2005;
  Fader and Hardie's Gamma-Gamma note) within 1 %, and per-customer P(alive) and
  expected purchases against lifetimes' own fit within 0.01 / 3 %;
* a calibration/holdout split of the CDNOW purchases (fit up to 1997-09-30, predict the
  next 39 weeks) against the naive "same as last period" forecast;
* edge cases: one purchase, T = 0, no buyers, degenerate fits, P(alive) in [0, 1] and
  monotone in recency; the expected purchases' closed form against numerical
  integration.
"""

from __future__ import annotations

import itertools
import math
import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from crm_batch.kpi import predict

try:
    with warnings.catch_warnings():  # lifetimes sets a pandas option pandas 3 deprecates
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        from lifetimes.datasets import (
            load_cdnow_summary,
            load_cdnow_summary_data_with_monetary_value,
            load_dataset,
        )
except Exception as exc:  # any failure to import: skip the module, saying why
    pytest.skip(
        f"lifetimes (test dependency, pip install -e '.[test]') cannot be imported: "
        f"{type(exc).__name__}: {exc}",
        allow_module_level=True,
    )

#: Published CDNOW estimates (weeks): BG/NBD (FHL 2005, table 1) and Gamma-Gamma.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


# -- likelihoods --------------------------------------------------------------------------


def bgnbd_likelihood_by_the_paper(r, alpha, a, b, x, t_x, T) -> float:
    """FHL 2005 eq. 6 in its product form, Beta functions through math.gamma."""

    def beta(u: float, w: float) -> float:
        return math.gamma(u) * math.gamma(w) / math.gamma(u + w)

    head = math.gamma(r + x) * alpha**r / math.gamma(r)
    alive = beta(a, b + x) / beta(a, b) * head / (alpha + T) ** (r + x)
    gone = beta(a + 1, b + x - 1) / beta(a, b) * head / (alpha + t_x) ** (r + x) if x > 0 else 0
    return alive + gone


def gamma_gamma_density_by_the_note(p, q, v, x, m) -> float:
    """Fader and Hardie's Gamma-Gamma note, eq. 3, as a product."""
    return (
        math.gamma(p * x + q)
        / (math.gamma(p * x) * math.gamma(q))
        * v**q
        * m ** (p * x - 1)
        * x ** (p * x)
        / (v + x * m) ** (p * x + q)
    )


TINY = pd.DataFrame(
    {  # frequency, recency, T, monetary of six made-up buyers
        "x": [0, 1, 2, 5, 0, 3],
        "t_x": [0.0, 1.0, 30.0, 200.0, 0.0, 12.5],
        "T": [1.0, 2.0, 40.0, 210.0, 0.0, 90.0],
        "m": [0.0, 1.0, 25.0, 80.5, 0.0, 12.0],
    }
)


def test_bgnbd_log_likelihood_by_hand() -> None:
    ones = (1.0, 1.0, 1.0, 1.0)
    # x = 0, T = 1, every parameter 1: B(1,1)/B(1,1) x 1 / (1 + 1) = 1/2
    # x = 1, t_x = 1, T = 2: B(1,2)/B(1,1) / 3^2 + B(2,1)/B(1,1) / 2^2 = 1/18 + 1/8 = 13/72
    got = predict.bgnbd_log_likelihood(ones, TINY["x"][:2], TINY["t_x"][:2], TINY["T"][:2])
    np.testing.assert_allclose(got, [math.log(1 / 2), math.log(13 / 72)], rtol=1e-13)


@pytest.mark.parametrize("params", [(0.243, 4.414, 0.793, 2.426), (2.0, 30.0, 3.5, 0.7)])
def test_bgnbd_log_likelihood_matches_the_papers_product_form(params: tuple) -> None:
    got = predict.bgnbd_log_likelihood(params, TINY["x"], TINY["t_x"], TINY["T"])
    want = [
        math.log(bgnbd_likelihood_by_the_paper(*params, x, t_x, T))
        for x, t_x, T in TINY[["x", "t_x", "T"]].itertuples(index=False)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_gamma_gamma_log_likelihood_by_hand_and_by_the_note() -> None:
    # p = q = v = 1, x = 1, m = 1: Gamma(2) / (Gamma(1) Gamma(1)) x 1 / 2^2 = 1/4
    got = predict.gamma_gamma_log_likelihood((1.0, 1.0, 1.0), np.array([1]), np.array([1.0]))
    assert got[0] == pytest.approx(math.log(1 / 4), rel=1e-13)
    repeat = TINY[TINY["x"] > 0]
    for params in [(6.25, 3.74, 15.44), (0.8, 1.5, 200.0)]:
        got = predict.gamma_gamma_log_likelihood(params, repeat["x"], repeat["m"])
        want = [
            math.log(gamma_gamma_density_by_the_note(*params, x, m))
            for x, m in repeat[["x", "m"]].itertuples(index=False)
        ]
        np.testing.assert_allclose(got, want, rtol=1e-11)


def test_the_fit_maximises_the_likelihood() -> None:
    """The fitted parameters beat every nearby point (the gradient is analytic: a wrong
    derivative would stop the optimiser elsewhere)."""
    data = load_cdnow_summary()
    args = (data["frequency"], data["recency"], data["T"])
    fitted = predict.fit_bgnbd(*args)
    assert fitted is not None
    assert fitted.converged
    best = predict.bgnbd_log_likelihood(fitted, *args).sum()
    assert best == pytest.approx(fitted.log_likelihood)
    point = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    for i in range(4):
        for factor in (0.99, 1.01):
            moved = point.copy()
            moved[i] *= factor
            assert predict.bgnbd_log_likelihood(tuple(moved), *args).sum() < best


# -- CDNOW: published values and lifetimes' fit -------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """The CDNOW sample summary (2,357 customers, weeks, 39-week calibration) with the
    monetary values of the same customers."""
    summary = load_cdnow_summary_data_with_monetary_value()
    assert len(summary) == 2357
    return summary


def test_cdnow_parameters_match_the_published_values(cdnow: pd.DataFrame) -> None:
    bgnbd = predict.fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    gamma_gamma = predict.fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    assert bgnbd is not None
    assert gamma_gamma is not None
    for name, value in PUBLISHED_BGNBD.items():
        assert getattr(bgnbd, name) == pytest.approx(value, rel=0.01), name
    for name, value in PUBLISHED_GAMMA_GAMMA.items():
        assert getattr(gamma_gamma, name) == pytest.approx(value, rel=0.01), name
    assert gamma_gamma.customers == int((cdnow["frequency"] > 0).sum()) == 946


def test_cdnow_scores_match_lifetimes_own_fit(cdnow: pd.DataFrame) -> None:
    args = (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    ours = predict.fit_bgnbd(*args)
    theirs = BetaGeoFitter().fit(*args)
    np.testing.assert_allclose(
        predict.p_alive(ours, *args),
        theirs.conditional_probability_alive(*args),
        atol=0.01,
    )
    for weeks in (39, 52):
        np.testing.assert_allclose(
            predict.expected_purchases(ours, weeks, *args),
            theirs.conditional_expected_number_of_purchases_up_to_time(weeks, *args),
            rtol=0.03,
        )
    repeat = cdnow[cdnow["frequency"] > 0]
    spend = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    ours_gg = predict.fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    np.testing.assert_allclose(
        predict.expected_spend(ours_gg, cdnow["frequency"], cdnow["monetary_value"]),
        spend.conditional_expected_average_profit(cdnow["frequency"], cdnow["monetary_value"]),
        rtol=0.03,
    )


# -- calibration / holdout on the CDNOW purchases -----------------------------------------

CALIBRATION_END = date(1997, 9, 30)  # 39 weeks of 1997
HOLDOUT_END = date(1998, 6, 30)  # the next 39 weeks


def day_summary(days: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """lifetimes' summary in days from purchase days (customer, date, amount) up to T."""
    seen = days[days["date"] <= pd.Timestamp(as_of)]
    grouped = seen.groupby("customer")
    first, last = grouped["date"].min(), grouped["date"].max()
    frequency = grouped.size() - 1
    first_day = seen["date"].eq(seen["customer"].map(first))
    repeat_paid = seen.loc[~first_day].groupby("customer")["amount"].sum()
    t = pd.Timestamp(as_of)
    return pd.DataFrame(
        {
            "frequency": frequency.astype("float64"),
            "recency": (last - first).dt.days.astype("float64"),
            "T": (t - first).dt.days.astype("float64"),
            "monetary": (repeat_paid / frequency).reindex(frequency.index).fillna(0.0),
        }
    )


def holdout_errors(days: pd.DataFrame) -> dict[str, float]:
    """Fit on the calibration weeks, forecast the holdout's purchase days per customer;
    the naive forecast repeats each customer's purchase days of the previous 39 weeks."""
    summary = day_summary(days, CALIBRATION_END)
    horizon = (HOLDOUT_END - CALIBRATION_END).days
    model = predict.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    forecast = predict.expected_purchases(
        model, horizon, summary["frequency"], summary["recency"], summary["T"]
    )
    end, start = pd.Timestamp(HOLDOUT_END), pd.Timestamp(CALIBRATION_END)
    in_holdout = days[(days["date"] > start) & (days["date"] <= end)]
    actual = in_holdout.groupby("customer").size().reindex(summary.index, fill_value=0)
    before = days[(days["date"] > start - pd.Timedelta(days=horizon)) & (days["date"] <= start)]
    naive = before.groupby("customer").size().reindex(summary.index, fill_value=0)
    return {
        "model_mae": float(np.abs(forecast - actual.to_numpy()).mean()),
        "naive_mae": float(np.abs(naive - actual).mean()),
        "model_total": float(forecast.sum()),
        "naive_total": float(naive.sum()),
        "actual_total": float(actual.sum()),
    }


@pytest.fixture(scope="module")
def cdnow_days() -> pd.DataFrame:
    """The CDNOW master file (23,570 customers) as purchase days: one row per customer
    and day with the day's total, like lifetimes' summary sees them."""
    raw = load_dataset(
        "CDNOW_master.txt",
        sep=r"\s+",
        header=0,
        names=["customer", "day", "cds", "amount"],
        dtype={"customer": "int64", "day": "str", "cds": "int64", "amount": "float64"},
    )
    raw["date"] = pd.to_datetime(raw["day"], format="%Y%m%d")
    return raw.groupby(["customer", "date"], as_index=False)["amount"].sum()


def test_cdnow_holdout_beats_the_naive_forecast(cdnow_days: pd.DataFrame) -> None:
    errors = holdout_errors(cdnow_days)
    print(  # the figures the README quotes (pytest -s shows them)
        "CDNOW 39-week holdout: "
        + ", ".join(f"{name} {value:,.4f}" for name, value in errors.items())
    )
    assert errors["model_mae"] < errors["naive_mae"]
    assert abs(errors["model_total"] / errors["actual_total"] - 1) < abs(
        errors["naive_total"] / errors["actual_total"] - 1
    )
    # the model under-forecasts the holdout's total somewhat (README "Predicted customer
    # value" quotes the figures); the naive forecast is far further off
    assert 0.75 < errors["model_total"] / errors["actual_total"] < 1.1


# -- scores: edge cases and numerics ------------------------------------------------------

CDNOW_DAYS_MODEL = predict.BgNbd(0.243, 4.414 * 7, 0.793, 2.426, 0, 0.0, True)


def test_one_purchase_zero_repeat_days_and_t_zero() -> None:
    x = np.array([0.0, 0.0, 0.0])
    t_x = np.array([0.0, 0.0, 0.0])
    T = np.array([0.0, 10.0, 400.0])
    alive = predict.p_alive(CDNOW_DAYS_MODEL, x, t_x, T)
    assert (alive == 1.0).all(), "BG/NBD drops customers only after a repeat purchase"
    orders = predict.expected_purchases(CDNOW_DAYS_MODEL, 365, x, t_x, T)
    assert np.isfinite(orders).all()
    assert (orders > 0).all()
    assert orders[0] > orders[1] > orders[2], "the longer without a repeat, the slower"
    likelihood = predict.bgnbd_log_likelihood(CDNOW_DAYS_MODEL, x, t_x, T)
    assert np.isfinite(likelihood).all()
    # T = 0: only the "still alive" term, -r log(alpha) + r log(alpha) = 0
    assert likelihood[0] == pytest.approx(0.0, abs=1e-12)
    gamma_gamma = predict.GammaGamma(6.25, 3.74, 15.44, 0, 0.0, True)
    spend = predict.expected_spend(gamma_gamma, x, np.zeros(3))
    np.testing.assert_allclose(spend, 6.25 * 15.44 / 2.74)  # the population mean


def test_p_alive_is_a_probability_and_grows_with_recency() -> None:
    T = 400.0
    for x in (1.0, 3.0, 40.0):
        t_x = np.linspace(0.0, T, 401)
        alive = predict.p_alive(CDNOW_DAYS_MODEL, np.full_like(t_x, x), t_x, np.full_like(t_x, T))
        assert ((alive >= 0) & (alive <= 1)).all()
        assert (np.diff(alive) >= 0).all(), "a more recent purchase never lowers P(alive)"
        assert alive[-1] > 0.5 > alive[0], "bought just now vs. silent since the first day"


def integrated_by_quad(r: float, a: float, b: float, x: float, s: float) -> float:
    """E_p[(1 - (1 + p s)^-(r+x)) / p], p ~ Beta(a, b + x), by scipy's adaptive quad."""

    def integrand(p: float) -> float:
        log_density = (a - 1) * math.log(p) + (b + x - 1) * math.log1p(-p)
        gain = -math.expm1(-(r + x) * math.log1p(p * s)) / p
        return math.exp(log_density - special.betaln(a, b + x)) * gain

    mean = a / (a + b + x)
    cuts = sorted({0.0, 1.0, *(10.0**-k for k in range(1, 15)), mean / 10, mean, 10 * mean})
    cuts = [c for c in cuts if 0 <= c <= 1]
    return sum(
        integrate.quad(integrand, lo, hi, limit=400, epsabs=0, epsrel=1e-12)[0]
        for lo, hi in itertools.pairwise(cuts)
        if hi > lo
    )


@pytest.mark.parametrize(
    ("r", "a", "b"),
    [
        (0.243, 0.793, 2.426),  # CDNOW
        (0.8, 1.0 + 1e-9, 3.0),  # a = 1: the closed form's 0/0
        (3.0, 2.0, 10.0),  # integer a - b - r terms: scipy's 2F1 gives NaN
        (0.95, 4585.0, 177290.0),  # a degenerate fit (everyone drops alike)
        (3.0, 4585.0, 2.4),  # everyone drops after a purchase
    ],
)
def test_expected_purchases_of_the_alive_match_numerical_integration(
    r: float, a: float, b: float
) -> None:
    model = predict.BgNbd(r, 20.0, a, b, 0, 0.0, True)
    x = np.array([0.0, 1.0, 5.0, 50.0, 300.0, 0.0, 7.0])
    T = np.array([0.0, 30.0, 400.0, 1000.0, 1500.0, 3000.0, 5.0])
    got = predict._alive_purchases(model, 365.0, x, T)
    want = [
        integrated_by_quad(r, a, b, xi, 365.0 / (20.0 + ti)) for xi, ti in zip(x, T, strict=False)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    integrated = predict._integrated_alive_purchases(r, a, b, x, 365.0 / (20.0 + T))
    np.testing.assert_allclose(integrated, want, rtol=1e-5)


# -- the customer table and the KPIs ------------------------------------------------------


def customer_rows(count: int, seed: int = 3) -> pd.DataFrame:
    """A scored-table-shaped frame of ``count`` customers: BG/NBD-like buyers and a few
    prospects, with the facts columns predict reads."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 900, count)
    days = 1 + np.minimum(rng.poisson(tenure / 120), rng.geometric(0.3, count) - 1)
    first_to_last = np.where(days > 1, (tenure * rng.random(count)).astype("int64"), 0)
    buyer = rng.random(count) > 0.1
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(count)],
            "has_paid_order": buyer,
            "order_days": np.where(buyer, days, 0),
            "repeat_paid": np.where(buyer, (days - 1) * rng.gamma(6, 15, count), 0.0),
            "tenure_days": pd.Series(tenure, dtype="Int64").where(buyer, pd.NA),
            "recency_days": pd.Series(tenure - first_to_last, dtype="Int64").where(buyer, pd.NA),
            "orders_12m": np.where(buyer & (tenure - first_to_last < 365), days, 0),
        }
    )


def test_scores_and_kpis_on_a_customer_table() -> None:
    table = customer_rows(3000)
    model = predict.fit(table)
    assert model.fitted
    assert model.buyers == int(table["has_paid_order"].sum())
    scored = predict.with_scores(table, model)
    buyers = scored["has_paid_order"]
    assert scored.loc[~buyers, list(predict.SCORE_COLUMNS)].isna().all().all()
    assert scored.loc[buyers, list(predict.SCORE_COLUMNS)].notna().all().all()
    assert scored.loc[buyers, "p_alive"].between(0, 1).all()
    pd.testing.assert_frame_equal(scored[table.columns], table)
    warned = scored[scored["p_alive"] < 0.3]
    kpis = predict.prediction_kpis(scored, warned, 0.5, model.fitted)
    assert kpis["expected_revenue_12m"] == pytest.approx(scored["expected_revenue_12m"].sum())
    recent = scored[(scored["orders_12m"] > 0) & (scored["p_alive"] < 0.5)]
    assert kpis["likely_lost_customers"] == len(recent) > 0
    assert kpis["expected_value_at_risk"] == pytest.approx(warned["expected_revenue_12m"].sum())
    # the fit does not depend on the order of the rows
    shuffled = predict.fit(table.sample(frac=1.0, random_state=1))
    assert shuffled.parameters() == model.parameters()


def test_no_buyers_and_too_few_repeat_buyers_give_no_data_never_a_crash() -> None:
    table = customer_rows(50)
    nobody = table.assign(has_paid_order=False, order_days=0, orders_12m=0)
    for frame in (nobody, nobody.iloc[:0], table.iloc[:1]):
        model = predict.fit(frame)
        assert not model.fitted
        assert all(
            math.isnan(value) for key, value in model.parameters().items() if "buyers" not in key
        )
        scored = predict.with_scores(frame, model)
        assert scored[list(predict.SCORE_COLUMNS)].isna().all().all()
        kpis = predict.prediction_kpis(scored, scored.iloc[:0], 0.5, model.fitted)
        assert all(math.isnan(value) for value in kpis.values())
    # a fitted company, a team without buyers: no expected revenue, nobody likely lost
    model = predict.fit(table)
    scored = predict.with_scores(nobody, model)
    kpis = predict.prediction_kpis(scored, scored.iloc[:0], 0.5, model.fitted)
    assert math.isnan(kpis["expected_revenue_12m"])
    assert kpis["likely_lost_customers"] == 0
