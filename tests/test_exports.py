"""Honest KPI exports: money to the cent, and the day stock KPIs are measured at."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from types import SimpleNamespace

from crm_batch.exports.kpis import as_csv, as_json, as_table
from crm_batch.periods import parse_period

Q3 = parse_period("2011Q3")


def run(as_of: date, kpis: dict[str, float]) -> SimpleNamespace:
    """What the exports read of a KpiRun: the dates, the period and each scope's KPIs."""
    report = SimpleNamespace(kpis=kpis, absent_tables=frozenset(), missing={}, partial={})
    return SimpleNamespace(as_of=as_of, period=Q3, reports={None: report}, requested=Q3)


# a float sum of order amounts, as pandas gives it; and a rate kept exact
VALUES = {"revenue_12m": 7995442.459999999, "repurchase_rate": 0.123456789, "customers_total": 3}


def test_json_gives_money_to_the_cent_and_the_day_stock_kpis_are_measured_at() -> None:
    document = json.loads(as_json(run(date(2011, 12, 9), VALUES)))
    kpis = document["results"][0]["kpis"]
    assert kpis["revenue_12m"] == 7995442.46
    assert kpis["repurchase_rate"] == 0.123456789  # rates stay exact fractions
    assert kpis["customers_total"] == 3
    assert document["as_of"] == "2011-12-09"
    assert document["measured_at"] == "2011-09-30"


def test_csv_gives_money_to_the_cent() -> None:
    rows = {
        r["kpi"]: r["value"]
        for r in csv.DictReader(io.StringIO(as_csv(run(date(2011, 12, 9), VALUES))))
    }
    assert rows["revenue_12m"] == "7995442.46"
    assert rows["repurchase_rate"] == "0.123456789"


def test_the_table_title_says_when_stock_kpis_are_of_an_earlier_day() -> None:
    later = as_table(run(date(2011, 12, 9), VALUES), "en", "CNY").splitlines()[0]
    assert "stock KPIs measured 2011-09-30" in later
    same = as_table(run(date(2011, 9, 30), VALUES), "en", "CNY").splitlines()[0]
    assert "measured" not in same
