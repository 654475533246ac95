"""Targets: baseline, target, attainment and ``met`` for each rule, worked out by hand."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pandas as pd
import pytest

from crm_batch.app.kpis import run_kpis
from crm_batch.app.targets import target_tables
from crm_batch.config import FileSettings, TargetSettings, load_settings
from crm_batch.errors import ConfigError
from crm_batch.kpi import targets
from crm_batch.kpi.definitions import registry
from crm_batch.periods import parse_period

NAN = float("nan")


def one_row(
    name: str, setting: TargetSettings, actual: float, baseline: float
) -> dict[str, object]:
    table = targets.target_table({name: actual}, {name: baseline}, {name: setting}, registry())
    assert list(table.columns) == list(targets.TARGET_COLUMNS)
    assert len(table) == 1
    return table.iloc[0].to_dict()


def check(row: dict[str, object], target: float, attainment: float, met: object) -> None:
    assert row["target"] == pytest.approx(target)
    if math.isnan(attainment):
        assert math.isnan(row["attainment"])  # type: ignore[arg-type]
    else:
        assert row["attainment"] == pytest.approx(attainment)
    assert pd.isna(row["met"]) if met is pd.NA else (row["met"] == met)


def test_seed_defaults_by_hand() -> None:
    actuals = {
        "lead_conversion_rate": 0.35,
        "repurchase_rate": 0.90,
        "satisfaction_mean": 4.5,
        "campaign_roi": 3.3,
        "opt_out_rate": 0.02,
    }
    baselines = {
        "lead_conversion_rate": 0.20,
        "repurchase_rate": 0.80,
        "satisfaction_mean": 3.6,
        "campaign_roi": 2.0,
        "opt_out_rate": 0.05,
    }
    table = targets.target_table(actuals, baselines, FileSettings().targets, registry())
    rows = table.set_index("kpi")
    # conversion: 0.20 x 1.4 = 0.28; 0.35 / 0.28 = 1.25
    check(rows.loc["lead_conversion_rate"].to_dict(), 0.28, 1.25, True)
    # repurchase: 0.80 x 1.35 = 1.08, a share cannot pass 1.0; 0.9 / 1.0
    check(rows.loc["repurchase_rate"].to_dict(), 1.0, 0.9, False)
    # satisfaction: 3.6 x 1.5 = 5.4, capped at the scale's 5; 4.5 / 5
    check(rows.loc["satisfaction_mean"].to_dict(), 5.0, 0.9, False)
    # ROI: 2.0 x 1.5 = 3.0 (not capped: ROI is not a share); 3.3 / 3.0
    check(rows.loc["campaign_roi"].to_dict(), 3.0, 1.1, True)
    # opt-out: the bound 3 % whatever the baseline; down is good: 0.03 / 0.02
    check(rows.loc["opt_out_rate"].to_dict(), 0.03, 1.5, True)
    assert rows.loc["opt_out_rate", "rule"] == "max"
    assert rows.loc["opt_out_rate", "direction"] == "down"
    assert rows.loc["repurchase_rate", "label_zh"] == "复购率"


def test_negative_baseline_improves_towards_zero() -> None:
    # ROI -0.2, +50 %: -0.2 + 0.5 x 0.2 = -0.1 (not -0.3); ratios of negatives mislead
    row = one_row("campaign_roi", TargetSettings(change=0.5), -0.05, -0.2)
    check(row, -0.1, NAN, True)
    row = one_row("campaign_roi", TargetSettings(change=0.5), -0.15, -0.2)
    check(row, -0.1, NAN, False)


def test_down_is_good_change() -> None:
    # churn rate 10 %, 20 % better = 8 %; 0.08 / 0.10 = 0.8, not met
    row = one_row("churn_rate", TargetSettings(change=0.2), 0.10, 0.10)
    check(row, 0.08, 0.8, False)
    assert row["direction"] == "down"


def test_min_bound() -> None:
    row = one_row("repurchase_rate", TargetSettings(min=0.3), 0.15, 0.9)
    check(row, 0.3, 0.5, False)
    assert row["rule"] == "min"


@pytest.mark.parametrize(
    ("actual", "attainment", "met"),
    [(0.0, NAN, True), (0.06, 0.5, False), (0.03, 1.0, True)],
    ids=["zero-actual", "twice-the-bound", "on-the-bound"],
)
def test_max_bound_zero_and_edges(actual: float, attainment: float, met: bool) -> None:
    # 0 % opt-outs meets the bound but target / 0 is undefined: NaN, met
    row = one_row("opt_out_rate", TargetSettings(max=0.03), actual, NAN)
    check(row, 0.03, attainment, met)


def test_zero_baseline_gives_zero_target_and_nan_attainment() -> None:
    # baseline 0 -> target 0 x 1.4 = 0; 0.1 / 0 undefined, but the target is met
    row = one_row("lead_conversion_rate", TargetSettings(change=0.4), 0.1, 0.0)
    check(row, 0.0, NAN, True)


def test_missing_baseline_or_actual_is_unknown() -> None:
    row = one_row("lead_conversion_rate", TargetSettings(change=0.4), 0.1, NAN)
    assert math.isnan(row["target"])  # type: ignore[arg-type]
    assert pd.isna(row["met"])
    assert math.isnan(row["attainment"])
    row = one_row("lead_conversion_rate", TargetSettings(change=0.4), NAN, 0.2)
    assert pd.isna(row["met"])
    table = targets.target_table(
        {}, {}, {"repurchase_rate": TargetSettings(change=0.1)}, registry()
    )
    assert str(table["met"].dtype) == "boolean"
    assert table["met"].isna().all()


@pytest.mark.parametrize(
    ("name", "setting", "message"),
    [
        ("no_such_kpi", TargetSettings(change=0.1), "no KPI of that name"),
        ("repurchase_rate", TargetSettings(change=0.1, max=0.5), "exactly one of"),
        ("repurchase_rate", TargetSettings(), "found: none"),
    ],
)
def test_bad_settings_are_config_errors(name: str, setting: TargetSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        targets.target_table({}, {}, {name: setting}, registry())
    assert f"targets.{name}" in str(caught.value)


def test_baseline_period_default_and_setting() -> None:
    q2 = parse_period("2026Q2")
    assert targets.baseline_period(q2, TargetSettings(change=0.1)).label == "2025Q2"
    chosen = targets.baseline_period(q2, TargetSettings(change=0.1, baseline_period="2025Q4"))
    assert chosen.label == "2025Q4"
    with pytest.raises(ConfigError, match="baseline_period"):
        targets.baseline_period(q2, TargetSettings(change=0.1, baseline_period="last year"))


@pytest.mark.parametrize(
    ("period", "as_of", "want"),
    [
        ("2026Q2", date(2026, 6, 30), date(2025, 6, 30)),  # at the period's end
        ("2026Q2", date(2026, 7, 10), date(2025, 7, 10)),  # 10 days after it
        ("2026Q2", date(2026, 5, 15), date(2025, 5, 15)),  # quarter to date: 44 days in
        ("2024Q1", date(2024, 3, 31), date(2023, 3, 31)),  # leap year: end to end
        ("2024Q1", date(2024, 3, 1), date(2023, 3, 2)),  # day 60 of 2024 (29 Feb counted)
        ("2026-02", date(2026, 3, 31), date(2025, 3, 31)),  # 31 days after February's end
    ],
)
def test_baseline_as_of_keeps_the_same_lag(period: str, as_of: date, want: date) -> None:
    current = parse_period(period)
    assert targets.baseline_as_of(current, as_of, current.year_before()) == want


def test_baseline_as_of_is_never_after_as_of() -> None:
    q2 = parse_period("2026Q2")
    later = parse_period("2026Q3")  # a strange but possible setting
    assert targets.baseline_as_of(q2, date(2026, 6, 30), later) == date(2026, 6, 30)


# --- the app's target tables on the canonical data (tests/fixtures/canonical.py) ----------

Q2 = parse_period("2026Q2")
T = date(2026, 6, 30)


def canonical_tables(loaded_db_factory: Any, known: dict | None = None) -> pd.DataFrame:
    """The company's target table of 2026Q2 as of its last day, as ``kpis --targets``
    and the quarterly review compute it."""
    db = loaded_db_factory("duckdb", "int")
    url = db.url.render_as_string(hide_password=False)
    settings = load_settings(None, database_url=url, environ={}).model_copy(update={"teams": ()})
    assert settings.targets == FileSettings().targets  # the seeds' defaults
    run = run_kpis(settings, db.engine, T, Q2)
    return target_tables(settings, db.engine, run, known)[None].set_index("kpi")


def test_target_table_against_last_year(loaded_db_factory: Any) -> None:
    table = canonical_tables(loaded_db_factory)
    assert set(table["period"]) == {"2026Q2"}
    assert set(table["baseline_period"]) == {"2025Q2"}
    assert set(table["baseline_as_of"]) == {date(2025, 6, 30)}
    # 2025Q2: Alice ordered twice (06-29, 06-30), Guo once (05-26) -> 0.5; x 1.35
    repurchase = table.loc["repurchase_rate"]
    assert repurchase["baseline"] == 0.5
    assert repurchase["target"] == pytest.approx(0.675)
    assert repurchase["attainment"] == pytest.approx((1 / 6) / 0.675)
    assert not repurchase["met"]
    # no leads, tickets or touches in 2025Q2: no baseline, no target, unknown
    for name in ("lead_conversion_rate", "satisfaction_mean", "campaign_roi"):
        assert math.isnan(table.loc[name, "target"])
        assert pd.isna(table.loc[name, "met"])
    opt_out = table.loc["opt_out_rate"]
    assert opt_out["target"] == 0.03
    assert opt_out["attainment"] == pytest.approx(0.03 / (1 / 7))


def test_known_baseline_values_are_used_instead_of_measuring_again(
    loaded_db_factory: Any,
) -> None:
    """The quarterly review hands in its history: a baseline quarter measured at its last
    day is read from there (a KPI missing from it is NaN), not extracted again."""
    known = {parse_period("2025Q2"): {None: {"repurchase_rate": 0.4}}}
    table = canonical_tables(loaded_db_factory, known)
    assert table.loc["repurchase_rate", "baseline"] == 0.4
    assert table.loc["repurchase_rate", "target"] == pytest.approx(0.54)  # 0.4 x 1.35
    assert math.isnan(table.loc["opt_out_rate", "baseline"])
    assert table.loc["opt_out_rate", "target"] == 0.03  # a bound needs no baseline
