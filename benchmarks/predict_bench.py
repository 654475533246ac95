"""Benchmark: the value models (crm_batch.kpi.predict) on 1M customers, and their accuracy.

    .venv/bin/python benchmarks/predict_bench.py                  # 1M customers, 3 runs
    .venv/bin/python benchmarks/predict_bench.py --customers 200000 --repeat 1

What it does:

1. Speed: a customer table of ``--customers`` buyers (the columns
   :func:`crm_batch.kpi.facts.customer_table` gives: order days, repeat spend, tenure,
   recency) drawn from BG/NBD and Gamma-Gamma with known parameters (r 0.8, alpha 60
   days, a 0.8, b 3; p 6, q 3.5, v 20) over up to 4 years, integer days as the SQL gives
   them. Each run (``--repeat``) times :func:`predict.fit` (both maximum-likelihood
   fits) and :func:`predict.with_scores` (P(alive), expected orders and revenue for
   every customer), and measures the extra peak resident memory of the two (VmHWM of
   /proc/self/status, reset before the fit, minus the resident memory before it). It
   prints the medians and checks the targets of issue 15: fit + score under 10 s, under
   1 GB extra; the recovered parameters show the fit finds the truth.
2. Accuracy: a calibration/holdout split (fit on the summary up to a date, forecast each
   customer's purchase days in the next 39 weeks), against the naive forecast "as many
   purchase days as in the previous 39 weeks": mean absolute error per customer and the
   total, on CDNOW (the master file inside lifetimes, when lifetimes is installed) and
   on the demo company (``generate_demo``, ``--demo-customers``), whose orders are not
   drawn from BG/NBD.

Never part of the unit tests (tests/test_kpi_predict.py pins the accuracy on CDNOW).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from crm_batch.kpi import predict  # noqa: E402

SECONDS_TARGET = 10.0
EXTRA_MB_TARGET = 1024.0
TRUE_BGNBD = {"r": 0.8, "alpha": 60.0, "a": 0.8, "b": 3.0}
TRUE_GAMMA_GAMMA = {"p": 6.0, "q": 3.5, "v": 20.0}
HOLDOUT_DAYS = 39 * 7


# -- memory -------------------------------------------------------------------------------


def _status_mb(field_name: str) -> float:
    """A ``Vm*`` field of /proc/self/status in MiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> None:
    """Reset the kernel's peak RSS (VmHWM) to the current RSS (where allowed)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass


# -- synthetic customers ------------------------------------------------------------------


def synthetic_table(customers: int, seed: int) -> pd.DataFrame:
    """Buyers drawn from the two models, as customer_table's columns (integer days).

    While alive a customer buys at a Poisson rate lambda ~ Gamma(r, 1/alpha); after each
    repeat purchase they drop out with probability p ~ Beta(a, b). The repeat purchases
    seen by T are min(Poisson(lambda T), Geometric(p)); the last of them falls at the
    order statistic of uniform times. Spends per day are Gamma(p, nu), nu ~ Gamma(q, v).
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE_BGNBD["r"], 1 / TRUE_BGNBD["alpha"], customers)
    dropout = rng.beta(TRUE_BGNBD["a"], TRUE_BGNBD["b"], customers)
    tenure = rng.integers(0, 4 * 365 + 1, customers)
    arrivals = rng.poisson(rate * tenure)
    repeat = np.minimum(arrivals, rng.geometric(dropout))
    bought = repeat > 0
    last = np.zeros(customers)
    last[bought] = tenure[bought] * rng.beta(repeat[bought], arrivals[bought] - repeat[bought] + 1)
    first_to_last = np.floor(last).astype("int64")
    nu = rng.gamma(TRUE_GAMMA_GAMMA["q"], 1 / TRUE_GAMMA_GAMMA["v"], customers)
    spend = np.zeros(customers)
    shape = TRUE_GAMMA_GAMMA["p"] * repeat[bought]
    spend[bought] = rng.gamma(shape, 1 / nu[bought])  # the sum of the repeat days' spends
    return pd.DataFrame(
        {
            "customer_id": np.arange(customers).astype(str),
            "has_paid_order": np.ones(customers, dtype=bool),
            "order_days": repeat + 1,
            "repeat_paid": np.round(spend, 2),
            "tenure_days": pd.array(tenure, dtype="Int64"),
            "recency_days": pd.array(tenure - first_to_last, dtype="Int64"),
            "orders_12m": np.where(tenure - first_to_last < 365, repeat + 1, 0),
        }
    )


def speed(customers: int, repeat: int) -> None:
    table = synthetic_table(customers, seed=1)
    fits, scores, extras = [], [], []
    model = None
    for _ in range(repeat):
        _reset_peak()
        before = _status_mb("VmRSS")
        started = time.perf_counter()
        model = predict.fit(table)
        fitted = time.perf_counter()
        scored = predict.with_scores(table, model)
        done = time.perf_counter()
        extras.append(_status_mb("VmHWM") - before)
        fits.append(fitted - started)
        scores.append(done - fitted)
        del scored
    assert model is not None
    assert model.fitted
    fit_s, score_s, extra = (statistics.median(v) for v in (fits, scores, extras))
    print(f"Value models on {customers:,} customers, median of {repeat} run(s)")
    print(f"  fit (BG/NBD + Gamma-Gamma)   {fit_s:6.2f} s   runs: {_list(fits)}")
    print(f"  score (3 columns)            {score_s:6.2f} s   runs: {_list(scores)}")
    print(f"  extra peak memory            {extra:6.0f} MB  runs: {_list(extras, 0)}")
    bg, gg = model.bgnbd, model.gamma_gamma
    print(
        "  recovered: "
        + ", ".join(f"{k} {getattr(bg, k):.3f} ({v})" for k, v in TRUE_BGNBD.items())
        + "; "
        + ", ".join(f"{k} {getattr(gg, k):.3f} ({v})" for k, v in TRUE_GAMMA_GAMMA.items())
    )
    total = fit_s + score_s
    print(f"  {'PASS' if total < SECONDS_TARGET else 'MISS'} fit + score {total:.2f} s < 10 s")
    print(f"  {'PASS' if extra < EXTRA_MB_TARGET else 'MISS'} extra memory {extra:.0f} MB < 1 GB")


def _list(values: list[float], decimals: int = 2) -> str:
    return ", ".join(f"{v:.{decimals}f}" for v in values)


# -- accuracy -----------------------------------------------------------------------------


def holdout(days: pd.DataFrame, calibration_end: date) -> dict[str, float]:
    """Fit up to ``calibration_end`` on purchase days (customer, date, amount), forecast
    the next 39 weeks per customer; the naive forecast repeats the previous 39 weeks."""
    end = pd.Timestamp(calibration_end)
    seen = days[days["date"] <= end]
    grouped = seen.groupby("customer")["date"]
    first, last, count = grouped.min(), grouped.max(), grouped.size()
    x = (count - 1).to_numpy(dtype="float64")
    t_x = (last - first).dt.days.to_numpy(dtype="float64")
    t = (end - first).dt.days.to_numpy(dtype="float64")
    model = predict.fit_bgnbd(x, t_x, t)
    forecast = predict.expected_purchases(model, HOLDOUT_DAYS, x, t_x, t)
    later = days[(days["date"] > end) & (days["date"] <= end + timedelta(days=HOLDOUT_DAYS))]
    actual = later.groupby("customer").size().reindex(count.index, fill_value=0).to_numpy()
    earlier = seen[seen["date"] > end - timedelta(days=HOLDOUT_DAYS)]
    naive = earlier.groupby("customer").size().reindex(count.index, fill_value=0).to_numpy()
    return {
        "customers": float(len(x)),
        "model_mae": float(np.abs(forecast - actual).mean()),
        "naive_mae": float(np.abs(naive - actual).mean()),
        "model_total": float(forecast.sum()),
        "naive_total": float(naive.sum()),
        "actual_total": float(actual.sum()),
    }


def _print_holdout(name: str, errors: dict[str, float]) -> None:
    actual = errors["actual_total"]
    print(
        f"  {name}: {errors['customers']:,.0f} customers; MAE per customer model "
        f"{errors['model_mae']:.3f} vs naive {errors['naive_mae']:.3f}; total purchase days "
        f"model {errors['model_total']:,.0f} ({errors['model_total'] / actual - 1:+.1%}), "
        f"naive {errors['naive_total']:,.0f} ({errors['naive_total'] / actual - 1:+.1%}), "
        f"actual {actual:,.0f}"
    )


def cdnow_days() -> pd.DataFrame | None:
    """CDNOW purchase days (customer, date, amount) from lifetimes, or None without it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes.datasets import load_dataset
    except Exception as exc:  # lifetimes is a test extra
        print(f"  CDNOW: skipped (lifetimes cannot be imported: {exc})")
        return None
    raw = load_dataset(
        "CDNOW_master.txt",
        sep=r"\s+",
        header=0,
        names=["customer", "day", "cds", "amount"],
        dtype={"customer": "int64", "day": "str", "cds": "int64", "amount": "float64"},
    )
    raw["date"] = pd.to_datetime(raw["day"], format="%Y%m%d")
    return raw.groupby(["customer", "date"], as_index=False)["amount"].sum()


def demo_days(customers: int, end: date) -> pd.DataFrame:
    """The demo company's paid orders as purchase days."""
    from crm_batch.source.demo import generate_demo

    demo = generate_demo(customers=customers, orders=customers * 10, seed=42, end_date=end)
    paid = demo.orders[demo.orders["status"] == "paid"]
    days = paid.rename(columns={"customer_id": "customer", "order_date": "date"})
    days = days.assign(date=pd.to_datetime(days["date"]))
    return days.groupby(["customer", "date"], as_index=False)["amount"].sum()


def accuracy(demo_customers: int) -> None:
    print("Holdout: fit up to a date, forecast purchase days in the next 39 weeks")
    cdnow = cdnow_days()
    if cdnow is not None:
        _print_holdout("CDNOW (fit to 1997-09-30)", holdout(cdnow, date(1997, 9, 30)))
    end = date(2026, 6, 30)
    calibration_end = end - timedelta(days=HOLDOUT_DAYS)
    errors = holdout(demo_days(demo_customers, end), calibration_end)
    _print_holdout(f"demo (fit to {calibration_end.isoformat()})", errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--demo-customers", type=int, default=20_000)
    args = parser.parse_args()
    speed(args.customers, args.repeat)
    accuracy(args.demo_customers)


if __name__ == "__main__":
    main()
