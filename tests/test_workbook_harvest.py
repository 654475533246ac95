"""Harvesting staff inputs from team workbooks and storing them in ``followups``.

Workbooks here are written with XlsxWriter exactly as the layout contract describes (the
FollowUps table, the crm_* defined names) and edited with openpyxl the way a staff member
edits in Excel: typing, sorting, filtering, hiding, moving columns, renaming the tab. The
storing tests run on DuckDB, SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from sqlalchemy import func, select
from sqlalchemy.engine import URL, Engine
from test_kpi_facts import BACKEND_PARAMS

from crm_batch.app.followups import (
    StaffInput,
    StoreResult,
    followup_id,
    followups_table,
    latest_followups,
    store_followups,
    with_saved_at,
)
from crm_batch.errors import DataError
from crm_batch.excel import layout
from crm_batch.excel.cells import MAX_CELL_CHARS, TRUNCATION_MARKER
from crm_batch.excel.harvest import read_staff_inputs
from crm_batch.excel.staff_rows import has_input, parse_date_cell, parse_staff_row
from crm_batch.source.db import make_engine

NOW = datetime(2026, 7, 1, 2, 30, 15, 123456)
LATER = datetime(2026, 7, 2, 2, 30, 0)

#: Hostile text a note or a name may hold.
FORMULA_NOTE = "=cmd|' /C calc'!A0"
HTML_NOTE = "<script>alert('x')</script> & <b>bold</b>"


def write_followups_workbook(
    path: Path,
    rows: Sequence[Mapping[str, object]],
    *,
    team: str | None = "North",
    language: str = "en",
    headers: Sequence[str] | None = None,
    sheet_title: str | None = None,
    orphaned: Sequence[Mapping[str, object]] = (),
) -> Path:
    """A workbook with the contract's FollowUps table (and OrphanedNotes when given).

    ``rows`` map column keys to cell values; ``headers`` (default: the column labels in
    ``language``) lets a test rename or reorder columns: each header is a label, and the
    cells follow :func:`layout.header_key` of it.
    """
    book = xlsxwriter.Workbook(
        str(path), {"strings_to_formulas": False, "strings_to_numbers": False}
    )
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    cols = layout.columns("followups")
    titles = list(headers) if headers is not None else [c.label(language) for c in cols]

    def table(sheet_key: str, title: str, records: Sequence[Mapping[str, object]], heads):
        sheet = book.add_worksheet(title)
        row_keys = [layout.header_key(sheet_key, h) for h in heads]
        for r, record in enumerate(records, start=1):
            for c, key in enumerate(row_keys):
                value = record.get(key) if key else None
                if value is None:
                    continue
                if isinstance(value, (date, datetime)):
                    sheet.write_datetime(r, c, value, date_format)
                elif isinstance(value, str):
                    sheet.write_string(r, c, value)
                else:
                    sheet.write_number(r, c, value)
        sheet.add_table(
            0,
            0,
            max(len(records), 1),
            len(heads) - 1,
            {
                "name": layout.TABLE_NAMES[sheet_key],
                "columns": [{"header": h} for h in heads],
            },
        )

    book.add_worksheet(layout.sheet_title("dashboard", language))
    table("followups", sheet_title or layout.sheet_title("followups", language), rows, titles)
    if orphaned:
        heads = [c.label(language) for c in layout.columns("orphaned")]
        table("orphaned", layout.sheet_title("orphaned", language), orphaned, heads)
    if team is not None:
        book.define_name(layout.NAME_TEAM, '="' + team.replace('"', '""') + '"')
    book.define_name(layout.NAME_LANGUAGE, f'="{language}"')
    book.define_name(layout.NAME_LAYOUT, f'="{layout.LAYOUT_VERSION}"')
    book.close()
    return path


def customer_row(customer_id: str, **inputs: object) -> dict[str, object]:
    """A Follow-ups row: computed columns filled, inputs as given."""
    return {
        "customer_id": customer_id,
        "customer_name": f"Customer {customer_id}",
        "owner": "Li",
        "next_action": "call",
        **inputs,
    }


# -- reading --------------------------------------------------------------------------------


def test_reads_only_rows_with_input_by_customer(tmp_path: Path) -> None:
    rows = [
        customer_row("C1", outcome="Reached", note="asked for catalogue", entered_by="Ann"),
        customer_row("C2"),  # nothing typed: not harvested
        customer_row("C3", next_contact_date=datetime(2026, 7, 15)),
        customer_row("C4", note="  spaces around  "),
    ]
    harvested = read_staff_inputs(write_followups_workbook(tmp_path / "n.xlsm", rows))
    assert (harvested.team, harvested.language, harvested.layout_version) == ("North", "en", 1)
    by_id = {row.customer_id: row for row in harvested.rows}
    assert sorted(by_id) == ["C1", "C3", "C4"]
    assert by_id["C1"].outcome == "reached"
    assert by_id["C1"].note == "asked for catalogue"
    assert by_id["C1"].entered_by == "Ann"
    assert by_id["C1"].sheet_row == 2
    assert by_id["C1"].raw["customer_name"] == "Customer C1"
    assert by_id["C3"].next_contact_date == date(2026, 7, 15)
    assert by_id["C3"].sheet_row == 4
    assert by_id["C4"].note == "spaces around"
    assert all(row.problem is None for row in harvested.rows)


def test_staff_sorting_filtering_hiding_and_moving_rows_do_not_matter(tmp_path: Path) -> None:
    rows = [customer_row(f"C{i}") for i in range(1, 9)]
    path = write_followups_workbook(tmp_path / "n.xlsx", rows)
    # a staff member types two follow-ups, sorts the table descending by customer,
    # filters it and hides a row, and renames the tab
    book = openpyxl.load_workbook(path)
    sheet = book[layout.sheet_title("followups", "en")]
    headers = [cell.value for cell in sheet[1]]
    col = {layout.header_key("followups", h): i + 1 for i, h in enumerate(headers)}
    body = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2, max_row=9)]
    body.sort(key=lambda r: r[0], reverse=True)
    for r, values in enumerate(body, start=2):
        for c, value in enumerate(values, start=1):
            sheet.cell(r, c, value)
    typed = {"C2": ("Interested", "wants a quote"), "C7": ("已下单", "ordered 3 boxes")}
    for r in range(2, 10):
        customer = sheet.cell(r, col["customer_id"]).value
        if customer in typed:
            sheet.cell(r, col["outcome"], typed[customer][0])
            sheet.cell(r, col["note"], typed[customer][1])
    table = sheet.tables[layout.TABLE_NAMES["followups"]]
    table.autoFilter.add_filter_column(col["owner"] - 1, ["Li"])
    sheet.row_dimensions[3].hidden = True  # C7 after the sort: hidden rows count too
    sheet.title = "My calls"
    book.save(path)

    harvested = read_staff_inputs(path)
    got = {row.customer_id: (row.outcome, row.note, row.sheet_row) for row in harvested.rows}
    assert got == {
        "C7": ("ordered", "ordered 3 boxes", 3),
        "C2": ("interested", "wants a quote", 8),
    }


def test_columns_found_by_header_in_either_language_and_any_order(tmp_path: Path) -> None:
    en = {c.key: c.label("en") for c in layout.columns("followups")}
    zh = {c.key: c.label("zh-CN") for c in layout.columns("followups")}
    headers = [
        zh["note"],
        "customer_id",  # the key itself
        en["entered_by"],
        "xtra column staff added",
        zh["outcome"],
        en["next_contact_date"],
    ]
    rows = [
        {
            "customer_id": "7",
            "note": "备注",
            "outcome": "有意向",
            "entered_by": "王",
            "next_contact_date": "2026年7月15日",
        }
    ]
    path = write_followups_workbook(tmp_path / "z.xlsx", rows, language="zh-CN", headers=headers)
    (row,) = read_staff_inputs(path).rows
    assert (row.customer_id, row.outcome, row.note, row.entered_by) == (
        "7",
        "interested",
        "备注",
        "王",
    )
    assert row.next_contact_date == date(2026, 7, 15)


def test_a_renamed_input_column_is_an_error_naming_file_and_column(tmp_path: Path) -> None:
    headers = [c.label("en") for c in layout.columns("followups")]
    headers[headers.index("Note")] = "Comments"
    path = write_followups_workbook(
        tmp_path / "renamed.xlsx", [customer_row("C1")], headers=headers
    )
    with pytest.raises(DataError, match=r"renamed\.xlsx.*'Note' \(note\).*renamed or deleted"):
        read_staff_inputs(path)


def test_a_workbook_without_team_name_or_table_is_refused(tmp_path: Path) -> None:
    path = write_followups_workbook(tmp_path / "noteam.xlsx", [customer_row("C1")], team=None)
    with pytest.raises(DataError, match=r"noteam\.xlsx.*crm_team"):
        read_staff_inputs(path)
    other = tmp_path / "plain.xlsx"
    book = xlsxwriter.Workbook(str(other))
    book.add_worksheet().write(0, 0, "hello")
    book.define_name(layout.NAME_TEAM, '="North"')
    book.close()
    with pytest.raises(DataError, match=r"plain\.xlsx.*Follow-ups table.*missing"):
        read_staff_inputs(other)
    broken = tmp_path / "broken.xlsm"
    broken.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"broken\.xlsm: not a readable Excel workbook"):
        read_staff_inputs(broken)


def test_team_name_with_quotes_and_chinese(tmp_path: Path) -> None:
    path = write_followups_workbook(
        tmp_path / "q.xlsx", [customer_row("1", note="x")], team='华东 "一组"/B'
    )
    assert read_staff_inputs(path).team == '华东 "一组"/B'


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (datetime(2026, 7, 15, 0, 0), date(2026, 7, 15)),
        (date(2026, 7, 15), date(2026, 7, 15)),
        ("2026-07-15", date(2026, 7, 15)),
        (" 2026/7/5 ", date(2026, 7, 5)),
        ("2026.07.15", date(2026, 7, 15)),
        ("2026年7月15日", date(2026, 7, 15)),
        ("２０２６－０７－１５", date(2026, 7, 15)),  # full-width digits from a Chinese IME
        ("2026-07-15 00:00:00", date(2026, 7, 15)),
        (46218, date(2026, 7, 15)),  # Excel serial number (pasted as a value)
        (46218.0, date(2026, 7, 15)),
    ],
)
def test_dates_staff_may_type(cell: object, expected: date) -> None:
    assert parse_date_cell(cell) == expected


@pytest.mark.parametrize(
    "cell", ["07/15/2026", "15/07/2026", "2026-02-30", "tomorrow", "=TODAY()+7", -3, 1e12, True]
)
def test_non_dates_are_refused(cell: object) -> None:
    with pytest.raises((ValueError, OverflowError)):
        parse_date_cell(cell)


def test_problems_are_phrased_in_the_workbook_language() -> None:
    zh = parse_staff_row({"customer_id": "1", "outcome": "maybe"}, 5, "zh-CN")
    assert zh.problem is not None
    assert "未知的跟进结果“maybe”" in zh.problem
    assert "有意向" in zh.problem
    en = parse_staff_row({"customer_id": "1", "outcome": "maybe"}, 5, "en")
    assert en.problem is not None
    assert en.problem.startswith("unknown outcome “maybe”")
    assert "Interested" in en.problem
    assert en.raw == {"customer_id": "1", "outcome": "maybe"}
    assert en.sheet_row == 5


@pytest.mark.parametrize(
    ("cells", "fragment"),
    [
        ({"customer_id": "1", "next_contact_date": "31/12/2026"}, "is not a date"),
        ({"customer_id": "1", "note": "x", "entered_by": "y" * 61}, "longer than 60"),
        ({"customer_id": "1", "entered_by": "Ann"}, "nothing to save"),
        ({"customer_id": None, "note": "x"}, "no customer ID"),
        ({"customer_id": "9" * 65, "note": "x"}, "longer than 64"),
    ],
)
def test_invalid_rows_get_a_problem_and_keep_their_cells(cells: dict, fragment: str) -> None:
    row = parse_staff_row(cells, 3, "en")
    assert row.problem is not None
    assert fragment in row.problem
    assert row.raw == cells


def test_cells_are_normalized_before_storing() -> None:
    row = parse_staff_row(
        {
            "customer_id": 1001.0,  # Excel turned a retyped id into a number
            "outcome": " call back ",
            "note": "line 1\r\nline 2\x00\x07\ttabbed",
            "entered_by": 42,
        },
        2,
        "en",
    )
    assert row.problem is None
    assert (row.customer_id, row.outcome, row.entered_by) == ("1001", "call_back", "42")
    assert row.note == "line 1\nline 2 tabbed"
    assert not has_input({"customer_id": "1", "owner": "Li"})  # no input cell filled


def test_identity_ignores_what_normalization_ignores_and_nothing_else() -> None:
    a = parse_staff_row({"customer_id": "1", "outcome": "Reached", "note": "hi "}, 2, "en")
    b = parse_staff_row({"customer_id": "1", "outcome": "已联系上", "note": "hi"}, 9, "zh-CN")
    assert followup_id(a) == followup_id(b)
    for changed in (
        {"customer_id": "2", "outcome": "Reached", "note": "hi"},
        {"customer_id": "1", "outcome": "Interested", "note": "hi"},
        {"customer_id": "1", "outcome": "Reached", "note": "hi!"},
        {"customer_id": "1", "outcome": "Reached", "note": "hi", "entered_by": "Ann"},
        {"customer_id": "1", "outcome": "Reached", "note": "hi", "next_contact_date": "2026-07-01"},
    ):
        assert followup_id(parse_staff_row(changed, 2, "en")) != followup_id(a), changed
    assert len(followup_id(a)) == 64


# -- storing --------------------------------------------------------------------------------


@pytest.fixture(params=BACKEND_PARAMS)
def engine(
    request: pytest.FixtureRequest, db_url_factory: Callable[[str], URL]
) -> Iterator[Engine]:
    engine = make_engine(db_url_factory(request.param), connect_timeout=5, statement_timeout=60)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> list[dict]:
    table = followups_table()
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.customer_id, table.c.entered_at))
        return [dict(row._mapping) for row in rows]


def inputs(*cells: dict, language: str = "en") -> list[StaffInput]:
    return [parse_staff_row(c, i + 2, language) for i, c in enumerate(cells)]


def test_store_is_idempotent_and_keeps_hostile_text_exactly(engine: Engine) -> None:
    long_note = "长" * 40_000
    rows = inputs(
        {
            "customer_id": "1",
            "outcome": "Reached",
            "note": FORMULA_NOTE,
            "entered_by": "Ann",
            "next_contact_date": datetime(2026, 7, 15),
        },
        {"customer_id": "2", "note": HTML_NOTE},
        {"customer_id": "3", "outcome": "Complaint", "note": long_note},
        {"customer_id": "4", "note": "line\r\nbreak\x1b[31m red"},
        {"customer_id": "5", "outcome": "perhaps"},  # invalid: rejected, not stored
        {
            "customer_id": "1",
            "outcome": "Reached",
            "note": FORMULA_NOTE,
            "entered_by": "Ann",
            "next_contact_date": "2026-07-15",
        },  # the same follow-up typed twice
    )
    result = store_followups(engine, "North", rows, "North.xlsm", NOW)
    assert (result.inserted, result.already_stored, result.rejected) == (4, 1, 1)
    at = NOW.replace(microsecond=0)
    assert result.saved_at == (at, at, at, at, None, at)
    table = stored(engine)
    assert [r["customer_id"] for r in table] == ["1", "2", "3", "4"]
    assert table[0]["note"] == FORMULA_NOTE
    assert table[0]["entered_by"] == "Ann"
    assert table[0]["next_contact_date"] == date(2026, 7, 15)
    assert table[0]["entered_at"] == at
    assert table[0]["source_workbook"] == "North.xlsm"
    assert table[0]["followup_id"] == followup_id(rows[0])
    assert table[1]["note"] == HTML_NOTE
    assert table[1]["outcome"] is None
    assert table[2]["note"] == long_note
    assert table[3]["note"] == "line\nbreak[31m red"

    again = store_followups(engine, "North", rows, "North.xlsm", LATER)
    assert (again.inserted, again.already_stored, again.rejected) == (0, 5, 1)
    assert again.saved_at[0] == at  # when it was first stored
    assert stored(engine) == table


def test_a_stored_note_shown_cut_or_cleaned_in_a_cell_is_not_stored_again(
    engine: Engine,
) -> None:
    long_note = "备注" * 20_000  # 40,000 characters: more than a cell holds
    first = inputs({"customer_id": "1", "outcome": "Reached", "note": long_note})
    store_followups(engine, "North", first, "a.xlsm", NOW)
    # what the rebuilt workbook shows: cut to the cell limit with the marker
    for marker in (TRUNCATION_MARKER, layout.text("truncated", "zh-CN")):
        shown = long_note[: MAX_CELL_CHARS - len(marker)] + marker
        echo = inputs({"customer_id": "1", "outcome": "Reached", "note": shown})
        result = store_followups(engine, "North", echo, "a.xlsm", LATER)
        assert (result.inserted, result.already_stored) == (0, 1)
        assert result.saved_at == (NOW.replace(microsecond=0),)
    # a genuinely new note that happens to start the same way is stored
    different = inputs({"customer_id": "1", "outcome": "Ordered", "note": long_note[:100]})
    assert store_followups(engine, "North", different, "a.xlsm", LATER).inserted == 1
    assert len(stored(engine)) == 2


def test_latest_followup_per_customer(engine: Engine) -> None:
    store_followups(
        engine,
        "North",
        inputs({"customer_id": "1", "note": "old"}, {"customer_id": "2", "note": "only"}),
        "a.xlsm",
        NOW,
    )
    store_followups(
        engine,
        "North",
        inputs(
            {"customer_id": "1", "note": "new", "next_contact_date": "2026-08-01"},
            {"customer_id": "3", "note": "other team"},
        ),
        "b.xlsm",
        LATER,
    )
    frame = latest_followups(engine, ["1", "2", "9"])
    assert list(frame["customer_id"]) == ["1", "2"]
    assert list(frame["note"]) == ["new", "only"]
    assert list(frame["next_contact_date"]) == [date(2026, 8, 1), None]
    assert list(frame["source_workbook"]) == ["b.xlsm", "a.xlsm"]
    assert list(frame["entered_at"]) == [LATER, NOW.replace(microsecond=0)]
    assert list(latest_followups(engine)["customer_id"]) == ["1", "2", "3"]
    assert latest_followups(engine, []).empty


def test_latest_followups_before_any_harvest_is_empty(engine: Engine) -> None:
    frame = latest_followups(engine, ["1"])
    assert frame.empty
    assert "note" in frame.columns


def test_with_saved_at_marks_stored_rows_only() -> None:
    rows = inputs(
        {"customer_id": "1", "note": "x", "saved_at": datetime(2026, 1, 1)},
        {"customer_id": "2", "outcome": "??", "saved_at": datetime(2026, 1, 1)},
    )
    marked = with_saved_at(rows, StoreResult(1, 0, 1, (NOW, None)))
    assert marked[0].raw["saved_at"] == NOW
    assert marked[0].raw["save_problem"] is None
    # edited into something invalid since it was saved: no longer "saved"
    assert marked[1].raw["saved_at"] is None
    assert marked[1].raw["save_problem"] == rows[1].problem
    assert marked[1].problem == rows[1].problem


# -- a large workbook -----------------------------------------------------------------------


@pytest.mark.slow
def test_twenty_thousand_rows_read_back_exactly(tmp_path: Path) -> None:
    rows = [
        customer_row(
            str(100_000 + i),
            **(
                {
                    "outcome": layout.outcome_label(layout.OUTCOMES[i % 8], "zh-CN"),
                    "note": f"note {i}",
                    "next_contact_date": datetime(2026, 7, 1 + i % 28),
                }
                if i % 3 == 0
                else {}
            ),
        )
        for i in range(20_000)
    ]
    path = write_followups_workbook(tmp_path / "big.xlsm", rows, language="zh-CN")
    harvested = read_staff_inputs(path)
    assert len(harvested.rows) == 6_667
    expected = {
        str(100_000 + i): (layout.OUTCOMES[i % 8], f"note {i}", date(2026, 7, 1 + i % 28))
        for i in range(0, 20_000, 3)
    }
    got = {r.customer_id: (r.outcome, r.note, r.next_contact_date) for r in harvested.rows}
    assert got == expected


def test_count_helper_sanity(engine: Engine) -> None:
    """store_followups creates the table on a database that has none."""
    store_followups(engine, None, inputs({"customer_id": "1", "note": "x"}), None, NOW)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(followups_table())).scalar() == 1


def test_a_damaged_sheet_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    import zipfile

    good = write_followups_workbook(tmp_path / "good.xlsm", [customer_row("1", note="x")])
    damaged = tmp_path / "damaged.xlsm"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":  # the Follow-ups sheet
                data = data[: len(data) // 2]
            target.writestr(item, data)
    with pytest.raises(DataError, match=r"damaged\.xlsm: .*unreadable"):
        read_staff_inputs(damaged)
