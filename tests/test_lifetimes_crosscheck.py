"""Independent cross-check on real public data: CDNOW purchases against ``lifetimes``.

The CDNOW master file shipped inside the ``lifetimes`` package (69,659 purchase lines of
23,570 customers, 1997-01-01 .. 1998-06-30, loaded with ``lifetimes.datasets.load_dataset``)
goes into each database as canonical data, and our extraction (sql/ through
:func:`crm_batch.source.extract.extract_as_of`) plus
:func:`crm_batch.kpi.facts.customer_table` must agree, customer by customer, with
``lifetimes.utils.summary_data_from_transaction_data`` wherever the definitions coincide.

Mapping into the canonical schema:

* a customer per CDNOW id (integer key = the CDNOW id; signed up on the first purchase
  day); one ``paid`` order per purchase line, ``amount`` = ``dollar_value``. The 80
  lines worth $0.00 are left out of both sides (canonical amounts are positive), and
  with them the 68 customers who bought nothing else;
* T (``as_of``) = 1998-06-30, the last day of the data; lifetimes'
  ``observation_period_end`` = T.

Mapping of the definitions (lifetimes, ``freq="D"`` -> ours):

* ``T`` (days from the first purchase to T) == ``tenure_days``;
* ``recency`` (days from the first to the last purchase) == ``tenure_days -
  recency_days``;
* ``frequency`` counts distinct purchase *days* minus one, ours counts paid *orders*.
  On the "daily" dataset, where the lines of a customer's day are first summed into one
  order, ``frequency == orders_total - 1``; on the raw lines (several orders a day)
  ``orders_total >= frequency + 1``;
* ``frequency`` == ``order_days - 1`` (distinct paid-order days) on both datasets, and
  ``monetary_value`` (the mean daily total *excluding the first day*) x ``frequency`` ==
  ``repeat_paid``: the summary the value models (crm_batch.kpi.predict) fit on;
* with ``include_first_transaction=True`` ``monetary_value`` is the mean of all daily totals,
  so on the daily dataset it equals our ``aov`` (net lifetime revenue / paid orders), and
  on any dataset ``monetary_value * frequency`` (both with the first day) equals our
  ``revenue_total``.

Runs on DuckDB and SQLite, and on PostgreSQL and MariaDB when their servers answer
(skipped with the reason otherwise); text ids are checked on DuckDB.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import SQL_DIR
from sqlalchemy.engine import URL

from crm_batch.config import ThresholdSettings
from crm_batch.kpi.facts import customer_table
from crm_batch.source.db import make_engine
from crm_batch.source.demo import DemoData, generate_demo, load_demo
from crm_batch.source.extract import extract_as_of
from crm_batch.source.sql_files import SqlCatalog

try:
    with warnings.catch_warnings():  # lifetimes sets a pandas option pandas 3 deprecates
        warnings.simplefilter("ignore")
        from lifetimes.datasets import load_dataset
        from lifetimes.utils import summary_data_from_transaction_data
except Exception as exc:  # any failure to import: skip the module, saying why
    pytest.skip(
        f"lifetimes (test dependency, pip install -e '.[test]') cannot be imported: "
        f"{type(exc).__name__}: {exc}",
        allow_module_level=True,
    )

AS_OF = date(1998, 6, 30)
CDNOW_FILE = "CDNOW_master.txt"
#: Lines and customers of the CDNOW master file, its lines worth $0.00, and the customers
#: all of whose lines are worth $0.00 (left out with those lines).
CDNOW_LINES, CDNOW_CUSTOMERS, CDNOW_ZERO_LINES, CDNOW_ZERO_ONLY_CUSTOMERS = 69_659, 23_570, 80, 68


@dataclass(frozen=True)
class Purchases:
    """CDNOW purchases as lifetimes reads them: one row per order we load."""

    name: str  # "daily": one order per customer and day; "raw": one per purchase line
    orders: pd.DataFrame  # customer (int), date (datetime64), amount (float)


def cdnow_lines() -> pd.DataFrame:
    """The CDNOW master file through lifetimes' own loader (customer, date, amount)."""
    raw = load_dataset(
        CDNOW_FILE,
        sep=r"\s+",
        header=0,
        names=["customer", "day", "cds", "amount"],
        dtype={"customer": "int64", "day": "str", "cds": "int64", "amount": "float64"},
    )
    assert (len(raw), raw["customer"].nunique()) == (CDNOW_LINES, CDNOW_CUSTOMERS)
    assert int((raw["amount"] <= 0).sum()) == CDNOW_ZERO_LINES
    lines = raw.loc[raw["amount"] > 0, ["customer", "day", "amount"]]
    return lines.assign(date=pd.to_datetime(lines.pop("day"), format="%Y%m%d")).reset_index(
        drop=True
    )


@pytest.fixture(scope="module")
def datasets() -> dict[str, Purchases]:
    """Both datasets: the raw purchase lines and the lines summed per customer and day."""
    lines = cdnow_lines()[["customer", "date", "amount"]]
    daily = lines.groupby(["customer", "date"], as_index=False, sort=True)["amount"].sum()
    daily["amount"] = daily["amount"].round(2)
    return {"raw": Purchases("raw", lines), "daily": Purchases("daily", daily)}


@pytest.fixture(scope="module")
def empty_tables() -> DemoData:
    """A tiny demo whose frames give the canonical column dtypes of the empty tables."""
    return generate_demo(customers=5, orders=5, seed=1, end_date=AS_OF)


def canonical_data(purchases: Purchases, template: DemoData) -> DemoData:
    """Customers and paid orders in the demo loader's frames (other tables empty)."""
    orders = purchases.orders
    first = orders.groupby("customer")["date"].min()
    customers = pd.DataFrame(
        {
            "customer_id": first.index.to_numpy(dtype="int64"),
            "name": [f"CDNOW {n:05d}" for n in first.index],
            "team": "CDNOW",
            "owner": "cdnow",
            "region": "US",
            "acquisition_channel": "online_shop",
            "signup_date": first.to_numpy(),
            "birthday": pd.Series(pd.NaT, index=range(len(first)), dtype="datetime64[ns]"),
            "referred_by": pd.array([None] * len(first), dtype="Int64"),
            "phone": "",
            "email": "",
            "marketing_opt_out": False,
        }
    )
    paid = pd.DataFrame(
        {
            "order_id": np.arange(1, len(orders) + 1, dtype="int64"),
            "customer_id": orders["customer"].to_numpy(dtype="int64"),
            "order_date": orders["date"].to_numpy(),
            "amount": orders["amount"].to_numpy(dtype="float64"),
            "status": "paid",
            "channel": "online",
            "category": "Music",
        }
    )
    return DemoData(
        customers=customers,
        leads=template.leads.iloc[:0],
        orders=paid,
        tickets=template.tickets.iloc[:0],
        campaigns=template.campaigns.iloc[:0],
        touches=template.touches.iloc[:0],
        seed=0,
        end_date=AS_OF,
        years=2,
    )


def lifetimes_summary(purchases: Purchases, *, include_first: bool) -> pd.DataFrame:
    """lifetimes' per-customer summary as of T, in days, with the monetary value."""
    return summary_data_from_transaction_data(
        purchases.orders,
        "customer",
        "date",
        monetary_value_col="amount",
        observation_period_end=pd.Timestamp(AS_OF),
        freq="D",
        include_first_transaction=include_first,
    )


def our_table(url: URL, data: DemoData, id_type: str) -> pd.DataFrame:
    """Load ``data`` and return customer_table as of T, indexed by the CDNOW id."""
    engine = make_engine(url, connect_timeout=5, statement_timeout=300)
    try:
        load_demo(engine, data, id_type=id_type)  # type: ignore[arg-type]
        thresholds = ThresholdSettings()
        frames = extract_as_of(engine, SqlCatalog(SQL_DIR), AS_OF, thresholds)
    finally:
        engine.dispose()
    table = customer_table(frames, AS_OF)
    # text ids are "C" + the zero-padded integer (the demo loader's text id format)
    digits = table["customer_id"].str.lstrip("C") if id_type == "text" else table["customer_id"]
    return table.set_index(digits.astype("int64").rename("customer"))


CASES = [
    pytest.param(backend, dataset, "int", id=f"{backend}-{dataset}", marks=marks)
    for backend, marks in (
        ("duckdb", []),
        ("sqlite", []),
        ("postgres", [pytest.mark.postgres]),
        ("mariadb", [pytest.mark.mariadb]),
    )
    for dataset in ("daily", "raw")
]
CASES.append(pytest.param("duckdb", "daily", "text", id="duckdb-daily-text-ids"))


@pytest.mark.parametrize(("backend", "dataset", "id_type"), CASES)
def test_customer_facts_agree_with_lifetimes_on_cdnow(
    db_url_factory: Callable[[str], URL],
    datasets: dict[str, Purchases],
    empty_tables: DemoData,
    backend: str,
    dataset: str,
    id_type: str,
) -> None:
    purchases = datasets[dataset]
    ours = our_table(db_url_factory(backend), canonical_data(purchases, empty_tables), id_type)
    theirs = lifetimes_summary(purchases, include_first=False)
    with_first = lifetimes_summary(purchases, include_first=True)

    buyers = ours[ours["has_paid_order"]]
    # every customer we load has a paid order (68 CDNOW customers bought only $0.00 lines)
    assert len(ours) == len(buyers) == CDNOW_CUSTOMERS - CDNOW_ZERO_ONLY_CUSTOMERS
    assert sorted(buyers.index) == sorted(theirs.index)
    buyers = buyers.loc[theirs.index]
    tenure = buyers["tenure_days"].to_numpy(dtype="int64")
    recency = buyers["recency_days"].to_numpy(dtype="int64")
    orders = buyers["orders_total"].to_numpy(dtype="int64")
    revenue = buyers["revenue_total"].to_numpy(dtype="float64")

    np.testing.assert_array_equal(tenure, theirs["T"].to_numpy(dtype="int64"), "T")
    np.testing.assert_array_equal(
        tenure - recency, theirs["recency"].to_numpy(dtype="int64"), "recency"
    )
    frequency = theirs["frequency"].to_numpy(dtype="int64")
    if dataset == "daily":
        np.testing.assert_array_equal(orders - 1, frequency, "frequency")
        np.testing.assert_allclose(
            buyers["aov"].to_numpy(dtype="float64"),
            with_first["monetary_value"].to_numpy(dtype="float64"),
            rtol=1e-9,
            atol=1e-6,
            err_msg="mean daily total (first day included) vs aov",
        )
    else:
        assert (orders >= frequency + 1).all(), "several orders a day count as one day"
        assert (orders > frequency + 1).any(), "the raw lines hold same-day orders"
    # lifetimes' own frequency and monetary value (first day excluded), from the purchase
    # days our facts count (order_days, repeat_paid), on both datasets
    days = buyers["order_days"].to_numpy(dtype="int64")
    np.testing.assert_array_equal(days - 1, frequency, "order_days - 1 vs frequency")
    np.testing.assert_allclose(
        buyers["repeat_paid"].to_numpy(dtype="float64"),
        (theirs["monetary_value"] * theirs["frequency"]).to_numpy(dtype="float64"),
        rtol=1e-9,
        atol=1e-6,
        err_msg="repeat_paid vs monetary_value x frequency",
    )
    np.testing.assert_allclose(
        revenue,
        (with_first["monetary_value"] * with_first["frequency"]).to_numpy(dtype="float64"),
        rtol=1e-9,
        atol=1e-6,
        err_msg="sum of daily totals vs revenue_total",
    )


def test_daily_dataset_has_one_order_per_customer_and_day(datasets: dict[str, Purchases]) -> None:
    """The premise of the frequency mapping, and the size of the data compared."""
    daily = datasets["daily"].orders
    assert not daily.duplicated(["customer", "date"]).any()
    assert daily["amount"].gt(0).all()
    assert datasets["raw"].orders.duplicated(["customer", "date"]).any()
    assert len(datasets["raw"].orders) == CDNOW_LINES - CDNOW_ZERO_LINES
