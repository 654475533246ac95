"""Calendar periods as users type them."""

from datetime import date

import pytest

from crm_batch.periods import last_complete_quarter, parse_period, period_containing


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("2026Q3", date(2026, 7, 1), date(2026, 9, 30), "2026Q3"),
        ("2026-q1", date(2026, 1, 1), date(2026, 3, 31), "2026Q1"),
        ("2024Q1", date(2024, 1, 1), date(2024, 3, 31), "2024Q1"),
        ("2026Q4", date(2026, 10, 1), date(2026, 12, 31), "2026Q4"),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29), "2024-02"),  # leap year
        ("2025-02", date(2025, 2, 1), date(2025, 2, 28), "2025-02"),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31), "2026-12"),
        ("2026", date(2026, 1, 1), date(2026, 12, 31), "2026"),
    ],
)
def test_parse_period(text: str, start: date, end: date, label: str) -> None:
    period = parse_period(text)
    assert (period.start, period.end, period.label) == (start, end, label)


@pytest.mark.parametrize("text", ["2026Q5", "2026-13", "26Q1", "Q3 2026", "", "2026-7"])
def test_parse_period_rejects_with_the_input_named(text: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        parse_period(text)


def test_neighbours() -> None:
    q1 = parse_period("2026Q1")
    assert q1.previous().label == "2025Q4"
    assert q1.next().label == "2026Q2"
    assert q1.year_before().label == "2025Q1"
    assert parse_period("2024-02").year_before().end == date(2023, 2, 28)
    assert parse_period("2026-01").previous().label == "2025-12"
    assert q1.days == 31 + 28 + 31


def test_containing_and_last_complete_quarter() -> None:
    assert period_containing(date(2026, 11, 24), "quarter").label == "2026Q4"
    assert last_complete_quarter(date(2026, 11, 24)).label == "2026Q3"
    assert last_complete_quarter(date(2026, 9, 30)).label == "2026Q3"
    assert last_complete_quarter(date(2026, 10, 1)).label == "2026Q3"
    assert period_containing(date(2026, 3, 31), "quarter").contains(date(2026, 1, 1))
