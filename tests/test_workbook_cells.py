"""Cell safety and the layout contract: text that stays text, limits, labels in both languages."""

from __future__ import annotations

import logging

import pytest

from crm_batch.errors import ExitCode
from crm_batch.excel import layout
from crm_batch.excel.cells import (
    MAX_CELL_CHARS,
    TRUNCATION_MARKER,
    CellReport,
    WorkbookError,
    cell_text,
    check_row_limit,
    formula_text,
    utf16_length,
)

# -- cell_text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(1)", "<script>alert(1)</script>", "王小明", ""],
)
def test_ordinary_and_formula_looking_text_is_unchanged(text: str) -> None:
    # text is written with write_string, so nothing needs an apostrophe or escaping here
    assert cell_text(text) == text


@pytest.mark.parametrize(
    ("raw", "expected", "kind"),
    [
        ("\t=1+1", " =1+1", "control"),  # a leading tab is the classic trick
        ("a\x00b\x07c\x1bd", "abcd", "control"),
        ("DEL\x7f and C1\x85\x9f", "DEL and C1", "control"),
        ("non\ufffechar\uffff", "nonchar", "control"),
        ("line 1\r\nline 2\rline 3\nline 4", "line 1\nline 2\nline 3\nline 4", None),
        ("half \ud83d pair", "half \ufffd pair", "surrogate"),
        ("\udc00", "\ufffd", "surrogate"),
    ],
)
def test_control_characters_and_surrogates(raw: str, expected: str, kind: str | None) -> None:
    report = CellReport()
    assert cell_text(raw, report=report, where=("customers", "customer_name")) == expected
    if kind is None:
        assert not report.changes
    else:
        assert report.count(kind) == 1
        assert next(iter(report.changes))[1:] == ("customers", "customer_name")
    expected.encode("utf-8")  # always encodable: a lone surrogate would raise here


def test_long_text_is_cut_with_a_visible_marker_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = CellReport()
    secret = "客户隐私" * 10_000  # 40,000 characters
    cut = cell_text(secret, report=report, where=("followups", "note"))
    assert utf16_length(cut) == MAX_CELL_CHARS
    assert cut.endswith(TRUNCATION_MARKER)
    assert cut.startswith(secret[:1000])
    assert report.count("truncated") == 1
    with caplog.at_level(logging.WARNING, logger="crm_batch.excel.cells"):
        report.log("Beijing")
    assert "1 cells cut at 32,767 characters" in caplog.text
    assert "followups" in caplog.text
    assert "客户隐私" not in caplog.text  # counts, never content


def test_the_limit_counts_utf16_units() -> None:
    emoji = "😀" * 20_000  # 40,000 UTF-16 units in 20,000 code points
    cut = cell_text(emoji, marker="…")
    assert utf16_length(cut) <= MAX_CELL_CHARS
    assert cut.endswith("…")
    assert "\ud83d" not in cut  # never half a pair
    exact = "x" * MAX_CELL_CHARS
    assert cell_text(exact) == exact


def test_row_limit_names_team_and_sheet() -> None:
    check_row_limit("Beijing", "Customers", 10, limit=10)
    with pytest.raises(WorkbookError, match=r"team 'Beijing': sheet Customers .*11 rows") as info:
        check_row_limit("Beijing", "Customers", 11, limit=10)
    assert info.value.exit_code == ExitCode.DATA


def test_formula_text_quotes_and_limits() -> None:
    assert formula_text('a "b" =c', "team") == '"a ""b"" =c"'
    assert formula_text("two\nlines", "team") == '"two lines"'
    with pytest.raises(WorkbookError, match="team"):
        formula_text("x" * 256, "team")


# -- layout -------------------------------------------------------------------------


def test_every_label_exists_in_both_languages_and_maps_back() -> None:
    for sheet in layout.SHEETS:
        titles = {layout.sheet_title(sheet, lang) for lang in layout.LANGUAGES}
        for title in titles:
            assert 0 < len(title) <= 31
            assert not set(title) & set("[]:*?/\\")
        for column in layout.columns(sheet):
            assert set(column.labels) == set(layout.LANGUAGES)
            for name in (column.key, *column.labels.values()):
                assert layout.header_key(sheet, name) == column.key
                assert layout.header_key(sheet, f"  {name.upper()} ") == column.key
    assert layout.header_key("followups", "no such header") is None
    assert layout.header_key("followups", None) is None  # type: ignore[arg-type]
    for key, (zh, en) in layout.texts().items():
        assert zh, key
        assert en, key


def test_followups_columns_follow_the_contract() -> None:
    keys = [c.key for c in layout.columns("followups")]
    assert keys == [
        "customer_id", "customer_name", "owner", "next_action", "last_outcome",
        "last_contact_at", "outcome", "note", "next_contact_date", "entered_by",
        "saved_at", "save_problem",
    ]  # fmt: skip
    assert [c.key for c in layout.columns("followups") if c.input] == list(layout.INPUT_COLUMNS)
    assert set(layout.TABLE_NAMES) == set(layout.SHEETS) - {"dashboard"}


def test_outcomes_round_trip_in_both_languages() -> None:
    for key in layout.OUTCOMES:
        for language in layout.LANGUAGES:
            assert layout.outcome_key(layout.outcome_label(key, language)) == key
        assert layout.outcome_key(key) == key
    assert layout.outcome_key("maybe") is None
    assert layout.outcome_key(3) is None
    for language in layout.LANGUAGES:
        labels = layout.outcome_labels(language)
        assert len(set(labels)) == len(labels)
        assert not any("," in label for label in labels)  # they form a list validation
        assert len(",".join(labels)) <= 255  # Excel's limit for an inline list


def test_unknown_language_is_a_config_error() -> None:
    with pytest.raises(Exception, match="workbook language 'fr'") as info:
        layout.sheet_title("customers", "fr")
    assert info.value.exit_code == ExitCode.CONFIG  # type: ignore[attr-defined]
