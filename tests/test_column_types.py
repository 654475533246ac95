"""check-source's column rules: what a driver returned against what the mapping promises."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm_batch.source.column_types import judge_column, value_kind


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, None),
        (float("nan"), None),
        (True, "bool"),
        (3, "int"),
        (2.5, "float"),
        (Decimal("1.10"), "decimal"),
        (dt.date(2026, 1, 2), "date"),
        (dt.datetime(2026, 1, 2, 3, 4), "timestamp"),
        ("x", "text"),
        (b"x", "bytes"),
        (object(), "other"),
    ],
)
def test_value_kind(value, kind):
    assert value_kind(value) == kind


def judge(expected, values):
    return judge_column("orders", "col", expected, values)


@pytest.mark.parametrize(
    ("expected", "values"),
    [
        ("id", [1, 2, None]),
        ("id", ["C-1", "c-1"]),
        ("text", ["a", None]),
        ("date", [dt.date(2026, 1, 1)]),
        ("date", [dt.datetime(2026, 1, 1)]),  # midnight timestamps compare like dates
        ("timestamp", [dt.datetime(2026, 1, 1, 9), dt.date(2026, 1, 2)]),
        ("money", [1, 2.5, Decimal("3.10")]),
        ("int", [1, True, 2.0, Decimal("4")]),
        ("bool", [True, 0, 1]),
        ("date", [None, None]),
    ],
)
def test_compatible_values_pass(expected, values):
    verdict = judge(expected, values)
    assert verdict.severity == "ok", verdict.line()


def test_text_dates_are_an_error_with_the_cast():
    verdict = judge("date", [dt.date(2026, 1, 1), "2026-01-02 00:00:00"])
    assert verdict.severity == "error"
    assert verdict.found == "date+text"
    assert "cast(... as date) as col" in verdict.fix
    assert "'2026-01-02 00:00:00'" in verdict.line()


def test_times_of_day_on_a_date_column_are_an_error():
    late = dt.datetime(2026, 1, 1, 15, 30)
    verdict = judge("date", [dt.datetime(2026, 1, 1), late])
    assert verdict.severity == "error"
    assert "after midnight" in verdict.problem
    assert repr(late) in verdict.line()


def test_decimal_ids_and_mixed_ids_are_errors():
    assert judge("id", [1.0, 2.0]).severity == "error"
    mixed = judge("id", [1, "C-2"])
    assert mixed.severity == "error"
    assert "varchar" in mixed.fix


def test_numbers_as_text_only_warn_for_text_columns():
    verdict = judge("text", ["138", 13800000000])
    assert verdict.severity == "warning"
    assert "leading zeros" in verdict.problem


def test_money_as_text_and_fractional_counts_are_errors():
    assert judge("money", ["12.50"]).severity == "error"
    fraction = judge("int", [1, 2.5])
    assert fraction.severity == "error"
    assert "2.5" in fraction.line()
    assert judge("int", [float("inf")]).severity == "error"


def test_bool_from_text_flags_are_errors():
    verdict = judge("bool", ["Y", "N"])
    assert verdict.severity == "error"
    assert "case when" in verdict.fix


def test_the_fix_is_worded_for_sqlite_which_has_no_date_type():
    from crm_batch.source.column_types import cast_sql

    stored = ["2011-12-09 00:00:00"]
    verdict = judge_column("orders", "order_date", "date", stored, dialect="sqlite")
    assert verdict.fix == "date(...) as order_date"
    assert cast_sql("timestamp", "sent_at", "sqlite").startswith("strftime(")
    assert cast_sql("date", "order_date", "postgresql") == "cast(... as date) as order_date"
