"""The team workbook as written: read back with openpyxl (an independent reader) and zipfile.

A small demo company (1,000 customers) is computed once; each test builds a workbook from
its KPI run and checks what a person and the harvest code would find: tables by name
with headers in the workbook's language, real dates and money, validation and
conditional formats on the right columns, buttons bound to the macros, the VBA project,
values equal to the KPI run's, hostile text as literal text, staff inputs on the right
customer whatever the row order, orphaned notes, and a read-back check that fails on a
damaged file.
"""

from __future__ import annotations

import math
import re
import warnings
import zipfile
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from crm_batch.app.followups import StaffInput
from crm_batch.app.kpis import KpiRun, run_kpis, snapshot_period
from crm_batch.config import Settings, load_settings
from crm_batch.excel import layout, printing
from crm_batch.excel.cells import MAX_CELL_CHARS, WorkbookError
from crm_batch.excel.layout import OrphanedNote
from crm_batch.excel.sheet_values import sheet_rows
from crm_batch.excel.staff_merge import company_customers, merge_staff_inputs, orphaned_notes
from crm_batch.excel.teamdata import (
    TeamWorkbookData,
    team_workbook_data,
)
from crm_batch.excel.workbook import (
    build_team_workbook,
    dashboard_cells,
    money_format,
    verify_workbook,
)
from crm_batch.kpi.playbook import label
from crm_batch.source.db import make_engine
from crm_batch.source.demo import generate_demo, load_demo

AS_OF = date(2026, 6, 30)
GENERATED = datetime(2026, 7, 1, 2, 30)
TABLE_SHEETS = ("customers", "watchlist", "care", "advocates", "followups")

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1",
    "-2",
    "@SUM(1)",
    "\t=1+2",
    "<script>alert(1)</script>",
    "王\n小明",
    "x" * 40_000,
    "",
    None,
    "bad \ud800 half",
    "ctl\x00\x07\x1b\x7f\x85chars",
    "_x0041_ escaped?",
]
#: What each hostile name must read back as.
HOSTILE_READ = [
    "=cmd|' /C calc'!A0",
    "+1",
    "-2",
    "@SUM(1)",
    " =1+2",
    "<script>alert(1)</script>",
    "王\n小明",
    None,  # checked separately (truncated)
    None,  # empty text: no cell
    None,
    "bad \ufffd half",
    "ctlchars",
    "_x0041_ escaped?",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("workbook_demo")
    url = f"duckdb:///{(folder / 'demo.duckdb').as_posix()}"
    engine = make_engine(url)
    try:
        load_demo(engine, generate_demo(customers=1000, orders=10_000, seed=11, end_date=AS_OF))
    finally:
        engine.dispose()
    return load_settings(None, database_url=url, environ={}, cwd=folder)


@pytest.fixture(scope="module")
def run(settings: Settings) -> KpiRun:
    engine = make_engine(settings.database_url)
    try:
        return run_kpis(settings, engine, AS_OF, snapshot_period(AS_OF), all_teams=True)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def team(run: KpiRun) -> str:
    """A team whose every sheet and Follow-ups group has rows (high warnings, greetings
    due, advocate candidates), the one with the most warnings among those."""

    def coverage(name: str) -> tuple:
        report = run.reports[name]
        return (
            bool((report.churn_warnings["level"] == "high").any()),
            bool(report.care_calendar["is_due"].any()),
            len(report.advocate_candidates) > 0,
            len(report.churn_warnings),
            name,
        )

    chosen = max((t for t in run.reports if t is not None), key=coverage)
    assert all(coverage(chosen)[:3]), "the demo lost a case these tests rely on"
    return chosen


def _data(run: KpiRun, team: str, settings: Settings, language: str, **kw) -> TeamWorkbookData:  # type: ignore[no-untyped-def]
    return team_workbook_data(
        run, team, kw.pop("followups", None), settings, language=language,
        generated_at=GENERATED, **kw,
    )  # fmt: skip


def _open(path: Path) -> openpyxl.Workbook:
    with warnings.catch_warnings():  # openpyxl does not know data-bar extensions
        warnings.simplefilter("ignore", UserWarning)
        return openpyxl.load_workbook(path, keep_vba=True)


def _table_rows(book: openpyxl.Workbook, table_name: str) -> tuple[list[str], list[list]]:
    """Header and data rows of an Excel table found by name, on whichever sheet."""
    for sheet in book.worksheets:
        if table_name in sheet.tables:
            ref = sheet.tables[table_name].ref
            cells = [[c.value for c in row] for row in sheet[ref]]
            return cells[0], cells[1:]
    raise AssertionError(f"table {table_name} not found")


def _widths(sheet) -> dict[int, float]:  # type: ignore[no-untyped-def]
    """Column number -> width (XlsxWriter writes equal neighbours as one range)."""
    widths = {}
    for dimension in sheet.column_dimensions.values():
        for number in range(dimension.min, dimension.max + 1):
            widths[number] = dimension.width
    return widths


def _sheet_of(book: openpyxl.Workbook, table_name: str):  # type: ignore[no-untyped-def]
    return next(s for s in book.worksheets if table_name in s.tables)


# -- structure --------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_tables_names_headers_and_conventions(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path, language: str
) -> None:
    data = _data(run, team, settings, language)
    path = tmp_path / "team.xlsm"
    summary = build_team_workbook(data, path)
    book = _open(path)
    assert book.sheetnames == [
        layout.sheet_title(k, language) for k in layout.SHEETS if k != "orphaned"
    ]
    report = run.reports[team]
    expected_rows = {
        "customers": len(report.customers),
        "watchlist": len(report.churn_warnings),
        "care": len(report.care_calendar),
        "followups": len(report.customers),
    }
    for key in TABLE_SHEETS:
        sheet = _sheet_of(book, layout.TABLE_NAMES[key])
        assert sheet.title == layout.sheet_title(key, language)
        table = sheet.tables[layout.TABLE_NAMES[key]]
        cols = layout.columns(key)
        rows = expected_rows.get(key, summary.tables[key].rows)
        assert table.ref == f"A1:{get_column_letter(len(cols))}{max(rows, 1) + 1}"
        assert table.autoFilter is not None
        assert table.tableStyleInfo.showRowStripes
        header = [c.value for c in sheet[1][: len(cols)]]
        assert header == [c.label(language) for c in cols]
        assert [layout.header_key(key, h) for h in header] == [c.key for c in cols]
        assert sheet.freeze_panes in {"B2", "C2"}
        # widths fit the header at least (CJK counted double) and stay within the cap
        widths = _widths(sheet)
        for i, column in enumerate(cols, start=1):
            width = widths[i]
            assert 6 <= width <= 61  # XlsxWriter adds its padding of under a character
            assert width >= min(60, len(column.label(language)) + 3)
    names = {name: value.attr_text for name, value in book.defined_names.items()}
    assert names[layout.NAME_TEAM] == f'"{team}"'
    assert names[layout.NAME_LANGUAGE] == f'"{language}"'
    assert names[layout.NAME_AS_OF] == '"2026-06-30"'
    assert names[layout.NAME_LAYOUT] == f'"{layout.LAYOUT_VERSION}"'
    assert book.vba_archive is not None
    assert "xl/vbaProject.bin" in book.vba_archive.namelist()
    # properties carry no personal data
    props = book.properties
    assert props.creator == "crm-batch"
    assert team in (props.title or "")


def test_number_formats_validation_and_conditional_formats(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    data = _data(run, team, settings, "zh-CN")
    path = tmp_path / "team.xlsm"
    build_team_workbook(data, path)
    book = _open(path)
    customers = _sheet_of(book, "Customers")
    header = [c.value for c in customers[1]]
    last_order = header.index("最近下单") + 1
    revenue = header.index("近12个月销售额") + 1
    dated = [
        customers.cell(r, last_order)
        for r in range(2, customers.max_row + 1)
        if customers.cell(r, last_order).value is not None
    ]
    assert dated
    assert all(isinstance(c.value, datetime) and c.is_date for c in dated)
    assert all(c.number_format == "yyyy-mm-dd" for c in dated)
    money = customers.cell(2, revenue)
    assert isinstance(money.value, float)
    assert money.number_format == money_format("CNY")
    assert "¥" in money.number_format
    # risk: level colours and revenue-at-risk data bars
    rules = {str(r.sqref): [x.type for x in r.rules] for r in customers.conditional_formatting}
    level_col = get_column_letter(header.index("流失预警") + 1)
    assert rules[f"{level_col}2:{level_col}{customers.max_row}"] == ["cellIs"] * 3
    risk_col = get_column_letter(header.index("风险销售额") + 1)
    assert "dataBar" in rules[f"{risk_col}2:{risk_col}{customers.max_row}"]
    # follow-ups: validation on the input columns only, input fill as a conditional format
    followups = _sheet_of(book, "FollowUps")
    head = [c.value for c in followups[1]]
    col = {key: get_column_letter(head.index(c.label("zh-CN")) + 1) for key, c in
           ((c.key, c) for c in layout.columns("followups"))}  # fmt: skip
    last = followups.max_row
    validations = {str(dv.sqref): dv for dv in followups.data_validations.dataValidation}
    outcome = validations[f"{col['outcome']}2:{col['outcome']}{last}"]
    assert outcome.type == "list"
    assert outcome.formula1 == '"' + ",".join(layout.outcome_labels("zh-CN")) + '"'
    when = validations[f"{col['next_contact_date']}2:{col['next_contact_date']}{last}"]
    assert when.type == "date"
    assert when.operator == "greaterThanOrEqual"
    assert int(when.formula1) == (date(2026, 5, 31) - date(1899, 12, 30)).days
    who = validations[f"{col['entered_by']}2:{col['entered_by']}{last}"]
    assert (who.type, who.formula1) == ("textLength", str(layout.ENTERED_BY_MAX_LENGTH))
    assert len(validations) == 3
    fills = {str(r.sqref): r for r in followups.conditional_formatting}
    input_range = f"{col['outcome']}2:{col['entered_by']}{last}"
    assert input_range in fills
    assert followups.freeze_panes == "C2"


def test_buttons_chart_and_vba_modules(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "team.xlsm"
    build_team_workbook(_data(run, team, settings, "en"), path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        vml = "".join(
            archive.read(n).decode() for n in names if n.startswith("xl/drawings/vmlDrawing")
        )
        workbook_xml = archive.read("xl/workbook.xml").decode()
        sheet1 = archive.read("xl/worksheets/sheet1.xml").decode()
        content_types = archive.read("[Content_Types].xml").decode()
    macros = re.findall(r"<x:FmlaMacro>\[0\]!(\w+)</x:FmlaMacro>", vml)
    assert macros == list(layout.BUTTON_MACROS)
    for macro in layout.BUTTON_MACROS:
        assert layout.text(f"button.{macro}", "en") in vml
    assert any(n.startswith("xl/charts/chart") for n in names)
    assert "macroEnabled" in content_types
    # the sheets' code names match the document modules of the VBA project
    assert 'codeName="ThisWorkbook"' in workbook_xml
    assert f'codeName="{layout.SHEET_CODE_NAMES["dashboard"]}"' in sheet1


def test_dashboard_tiles_and_trend_from_snapshots(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    """Previous values come from the snapshot at the same point of the previous quarter."""
    history = pd.DataFrame(
        {
            "as_of": pd.to_datetime(
                ["2026-03-31", "2026-03-31", "2026-03-20", "2026-05-31", "2026-05-10",
                 "2026-03-31"]
            ),
            "scope": "team",
            "team": [team] * 5 + ["someone else"],
            "kpi": ["revenue_12m", "new_customers", "active_count", "revenue_12m",
                    "revenue_12m", "revenue_12m"],
            "value": [1000.0, 7.0, 40.0, 1500.0, 1400.0, 99.0],
        }
    )  # fmt: skip
    data = _data(run, team, settings, "en", history=history)
    tiles = {tile.name: tile for tile in data.tiles}
    current = run.reports[team].kpis
    revenue = tiles["revenue_12m"]
    assert revenue.previous == 1000.0  # the same day of the previous quarter (Q1's end)
    assert revenue.previous_as_of == date(2026, 3, 31)
    assert revenue.change == pytest.approx((current["revenue_12m"] - 1000.0) / 1000.0)
    assert tiles["new_customers"].previous == 7.0
    # point-in-time KPI: the latest earlier snapshot of the previous quarter serves
    assert tiles["active_count"].previous == 40.0
    assert tiles["customers_total"].previous is None
    repurchase = tiles["repurchase_rate"]
    assert repurchase.change is None
    trend = data.trend.set_index(data.trend["month"].dt.strftime("%Y-%m"))
    assert len(trend) == 12
    assert trend.index[0] == "2025-07"
    assert trend.loc["2026-03", "revenue_12m"] == 1000.0
    assert trend.loc["2026-05", "revenue_12m"] == 1500.0  # the month's last snapshot
    assert trend.loc["2026-06", "revenue_12m"] == current["revenue_12m"]  # the run itself
    assert math.isnan(trend.loc["2026-04", "revenue_12m"])
    path = tmp_path / "team.xlsm"
    build_team_workbook(data, path)
    dashboard = _open(path)[layout.sheet_title("dashboard", "en")]
    values = [c.value for row in dashboard.iter_rows() for c in row]
    numbers = [v for v in values if isinstance(v, float)]
    assert any(v == pytest.approx(current["revenue_12m"]) for v in numbers)
    assert any(v == pytest.approx(revenue.change) for v in numbers)


# -- values -------------------------------------------------------------------------


def test_values_match_the_kpi_run(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "team.xlsm"
    build_team_workbook(_data(run, team, settings, "en"), path)
    book = _open(path)
    report = run.reports[team]
    header, rows = _table_rows(book, "Customers")
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    table = report.customers.set_index(report.customers["customer_id"].astype(str))
    assert set(by_id) == set(table.index)
    for cid, row in by_id.items():
        fact = table.loc[cid]
        assert row["Revenue, 12 months"] == pytest.approx(fact["revenue_12m"])
        assert row["Tier"] == (label(fact["tier"], "en") if pd.notna(fact["tier"]) else None)
        assert row["Lifecycle"] == label(fact["lifecycle"], "en")
        if pd.isna(fact["last_order_date"]):
            assert row["Last order"] is None
        else:
            assert row["Last order"] == fact["last_order_date"].to_pydatetime()
        if pd.notna(fact["r_score"]):
            assert row["R score"] == fact["r_score"]
    # watchlist: every warning, in calling order: highest expected 12-month revenue
    # (what a call can still save) first
    header, rows = _table_rows(book, "Watchlist")
    expected = [row[header.index("Expected revenue, next 12 months")] for row in rows]
    assert len(rows) == len(report.churn_warnings)
    assert None not in expected
    assert expected == sorted(expected, reverse=True)
    assert expected[0] == pytest.approx(report.churn_warnings["expected_revenue_12m"].max())
    # care: the calendar's events with their dates
    header, rows = _table_rows(book, "Care")
    assert len(rows) == max(len(report.care_calendar), 1)
    # advocates: everyone with enough successful referrals
    header, rows = _table_rows(book, "Advocates")
    advocates = report.customers[
        report.customers["referrals_successful"] >= settings.thresholds.advocate_min_referrals
    ]
    got = {row[0] for row in rows if row[0] is not None}
    assert got == set(advocates["customer_id"].astype(str))
    candidates = list(report.advocate_candidates["customer_id"].astype(str))
    assert [row[0] for row in rows[: len(candidates)]] == candidates  # invite these first
    status = header.index("Status")
    assert {row[status] for row in rows[: len(candidates)]} == {"Candidate: invite"}
    assert {row[status] for row in rows[len(candidates) :]} <= {"Advocate"}
    # follow-ups: one row per customer, high-level warnings first
    header, rows = _table_rows(book, "FollowUps")
    ids = [row[0] for row in rows]
    assert sorted(ids) == sorted(table.index)
    high = {
        str(c)
        for c in report.churn_warnings.loc[report.churn_warnings["level"] == "high", "customer_id"]
    }
    assert set(ids[: len(high)]) == high
    calendar = report.care_calendar
    due = {str(c) for c in calendar.loc[calendar["is_due"].astype(bool), "customer_id"]} - high
    assert set(ids[len(high) : len(high) + len(due)]) == due  # greetings due come next
    warned = {str(c) for c in report.churn_warnings["customer_id"]}
    rest = ids[len(high) + len(due) :]
    medium_low = [cid for cid in rest if cid in warned]
    assert rest[: len(medium_low)] == medium_low  # then the other warnings


def test_sheet_rows_are_what_the_workbook_holds(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    data = _data(run, team, settings, "zh-CN")
    path = tmp_path / "team.xlsm"
    build_team_workbook(data, path)
    book = _open(path)
    for key in ("customers", "watchlist"):
        columns, rows = sheet_rows(data, key, "zh-CN")
        header, written = _table_rows(book, layout.TABLE_NAMES[key])
        assert header == [c.label("zh-CN") for c in columns]
        for expected, got in zip(rows, written, strict=True):
            for value, cell in zip(expected, got, strict=True):
                if isinstance(value, date) and not isinstance(value, datetime):
                    assert cell == datetime.combine(value, datetime.min.time())
                elif isinstance(value, float):
                    assert cell == pytest.approx(value)
                else:
                    assert cell == value


# -- hostile text -------------------------------------------------------------------


def test_hostile_text_reads_back_as_literal_text(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    report = run.reports[team]
    customers = report.customers.copy()
    customers["name"] = customers["name"].astype("object")
    customers["owner"] = customers["owner"].astype("object")
    chosen = customers.sort_values("customer_id").index[: len(HOSTILE)]
    customers.loc[chosen, "name"] = HOSTILE
    customers.loc[chosen[0], "owner"] = "@owner"
    hostile_run = replace(run, reports={**run.reports, team: replace(report, customers=customers)})
    hostile_team = '=HYPERLINK("x") "team"'
    data = replace(_data(hostile_run, team, settings, "en"), team=hostile_team)
    path = tmp_path / "team.xlsm"
    summary = build_team_workbook(data, path)
    assert summary.cell_changes["truncated"] >= 1
    book = _open(path)
    sheet = _sheet_of(book, "Customers")
    header = [c.value for c in sheet[1]]
    name_col = header.index("Customer") + 1
    cells = {sheet.cell(r, 1).value: sheet.cell(r, name_col) for r in range(2, sheet.max_row + 1)}
    ids = list(customers.loc[chosen, "customer_id"].astype(str))
    for cid, raw, expected in zip(ids, HOSTILE, HOSTILE_READ, strict=True):
        cell = cells[cid]
        if raw is None or raw == "":
            assert cell.value is None
            continue
        assert cell.data_type == "s", raw
        if expected is not None:
            assert cell.value == expected
    long_cell = cells[ids[HOSTILE.index("x" * 40_000)]]
    assert len(long_cell.value) == MAX_CELL_CHARS
    assert long_cell.value.endswith(layout.text("truncated", "en"))
    owners = [sheet.cell(r, header.index("Owner") + 1) for r in range(2, sheet.max_row + 1)]
    assert any(c.value == "@owner" and c.data_type == "s" for c in owners)
    # no formula anywhere in the workbook
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/sheet"):
                assert "<f>" not in archive.read(name).decode()
    names = {n: v.attr_text for n, v in book.defined_names.items()}
    assert names[layout.NAME_TEAM] == '"=HYPERLINK(""x"") ""team"""'


# -- staff inputs -------------------------------------------------------------------


def _input(cid: str, row: int, note: str, **kw) -> StaffInput:  # type: ignore[no-untyped-def]
    return StaffInput(
        customer_id=cid,
        outcome=kw.get("outcome", "call_back"),
        note=note,
        next_contact_date=kw.get("next_contact_date", date(2026, 7, 8)),
        entered_by=kw.get("entered_by", "李雷"),
        raw=kw.get("raw", {}),
        sheet_row=row,
        problem=kw.get("problem"),
    )


def _followup_cells(path: Path, language: str) -> dict[str, dict[str, object]]:
    header, rows = _table_rows(_open(path), "FollowUps")
    keys = [layout.header_key("followups", h) for h in header]
    return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}


def test_staff_inputs_land_on_their_customer_whatever_the_order(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    stored = pd.DataFrame(
        {
            "followup_id": ["a", "b"],
            "customer_id": [None, None],
            "entered_at": pd.to_datetime(["2026-06-01 10:00", "2026-06-20 09:30"]),
            "entered_by": ["韩梅梅", "韩梅梅"],
            "outcome": ["no_answer", "reached"],
            "note": ["first try", "spoke to the buyer"],
            "next_contact_date": [None, date(2026, 7, 2)],
            "source_workbook": ["x.xlsm", "x.xlsm"],
        }
    )
    data = _data(run, team, settings, "zh-CN")
    ids = list(data.frames["followups"]["customer_id"])
    stored["customer_id"] = [ids[5], ids[5]]
    data = _data(run, team, settings, "zh-CN", followups=stored)
    inputs = {
        ids[1]: _input(ids[1], 3, "客户要求下周回电"),
        ids[-1]: _input(ids[-1], 4, "=not a formula", outcome="ordered"),
        ids[5]: _input(ids[5], 9, "spoke to the buyer", outcome="reached",
                       next_contact_date=date(2026, 7, 2), entered_by="韩梅梅"),
        ids[7]: _input(ids[7], 12, None, outcome=None, next_contact_date=None,
                       raw={"outcome": "maybe later", "next_contact_date": "next week"},
                       problem="outcome 'maybe later' is not in the list"),
    }  # fmt: skip
    # the rows in the new workbook come in the reverse order of the previous one
    frames = dict(data.frames)
    frames["followups"] = frames["followups"].iloc[::-1].reset_index(drop=True)
    reordered = replace(data, frames=frames)
    path = tmp_path / "team.xlsm"
    summary = build_team_workbook(reordered, path, staff_inputs=inputs)
    assert summary.merged_inputs == 4
    cells = _followup_cells(path, "zh-CN")
    first = cells[ids[1]]
    assert first["outcome"] == layout.outcome_label("call_back", "zh-CN")
    assert first["note"] == "客户要求下周回电"
    assert first["next_contact_date"] == datetime(2026, 7, 8)
    assert first["entered_by"] == "李雷"
    assert first["saved_at"] is None  # not stored yet
    assert cells[ids[-1]]["note"] == "=not a formula"
    same = cells[ids[5]]  # identical to the stored follow-up: shown as saved
    assert same["saved_at"] == datetime(2026, 6, 20, 9, 30)
    assert same["last_outcome"] == layout.outcome_label("reached", "zh-CN")
    assert same["last_contact_at"] == datetime(2026, 6, 20, 9, 30)
    broken = cells[ids[7]]  # an invalid row keeps what was typed and its problem
    assert broken["outcome"] == "maybe later"
    assert broken["next_contact_date"] == "next week"
    assert broken["save_problem"] == "outcome 'maybe later' is not in the list"
    untouched = [cid for cid in ids if cid not in inputs]
    assert all(cells[cid]["note"] is None for cid in untouched)
    # the input columns are also where the table put them after the reorder
    assert list(cells) == list(frames["followups"]["customer_id"])


def test_stored_follow_up_fills_the_inputs_without_a_staff_input(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    data = _data(run, team, settings, "en")
    cid = data.frames["followups"]["customer_id"].iloc[3]
    stored = pd.DataFrame(
        {
            "customer_id": [cid],
            "entered_at": [pd.Timestamp("2026-06-29 16:45")],
            "entered_by": ["Li Lei"],
            "outcome": ["interested"],
            "note": ["send a quote"],
            "next_contact_date": [pd.Timestamp("2026-07-03")],
        }
    )
    path = tmp_path / "team.xlsm"
    build_team_workbook(_data(run, team, settings, "en", followups=stored), path)
    row = _followup_cells(path, "en")[cid]
    assert row["outcome"] == "Interested"
    assert row["note"] == "send a quote"
    assert row["next_contact_date"] == datetime(2026, 7, 3)
    assert row["saved_at"] == datetime(2026, 6, 29, 16, 45)


def test_notes_of_customers_who_left_go_to_the_orphaned_sheet(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    data = _data(run, team, settings, "en")
    other = next(t for t in run.reports if t not in (None, team))
    moved = str(run.reports[other].customers["customer_id"].iloc[0])
    mine = data.frames["followups"]["customer_id"].iloc[0]
    inputs = [
        _input(mine, 2, "older note on the same customer"),
        _input(mine, 5, "latest note"),
        _input(moved, 3, "customer moved to another team"),
        _input("no-such-customer", 4, "customer deleted"),
    ]
    merged = merge_staff_inputs(inputs, set(data.frames["followups"]["customer_id"]))
    matched = merged.shown
    orphaned = orphaned_notes(merged.orphaned, company_customers(run))
    assert list(matched) == [mine]
    assert matched[mine].note == "latest note"  # the last unsaved row of the customer
    by_note = {note.note: note for note in orphaned}
    assert by_note["customer moved to another team"].current_team == other
    assert by_note["customer deleted"].current_team is None
    assert by_note["older note on the same customer"].current_team == team
    path = tmp_path / "team.xlsm"
    extra = OrphanedNote("gone-2", "Old Name", None, "complaint", "kept", None, "ops", 0)
    summary = build_team_workbook(data, path, staff_inputs=matched, orphaned=[*orphaned, extra])
    assert summary.orphaned == 4
    book = _open(path)
    sheet = _sheet_of(book, "OrphanedNotes")
    assert sheet.title == "Orphaned notes"
    assert book.sheetnames[-1] == "Orphaned notes"
    header, rows = _table_rows(book, "OrphanedNotes")
    assert header == [c.label("en") for c in layout.columns("orphaned")]
    notes = {row[header.index("Note")]: row for row in rows}
    assert set(notes) == {
        "customer moved to another team", "customer deleted",
        "older note on the same customer", "kept",
    }  # fmt: skip
    assert notes["customer moved to another team"][header.index("Current team")] == other
    assert notes["kept"][header.index("Outcome")] == "Complaint"
    assert _followup_cells(path, "en")[mine]["note"] == "latest note"


# -- limits and read-back -----------------------------------------------------------


def test_too_many_rows_fail_with_team_and_sheet(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_batch.excel import cells, teamdata

    def small_limit(team_name: str, sheet: str, rows: int, *, limit: int = 5) -> None:
        cells.check_row_limit(team_name, sheet, rows, limit=5)

    monkeypatch.setattr(teamdata, "check_row_limit", small_limit)
    with pytest.raises(WorkbookError, match=rf"team '{team}': sheet customers .* 5 below"):
        _data(run, team, settings, "en")
    assert not list(tmp_path.iterdir())


def test_verify_catches_a_damaged_or_different_file(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "team.xlsm"
    summary = build_team_workbook(_data(run, team, settings, "en"), path)
    verify_workbook(path, summary)
    wrong_ids = replace(
        summary,
        tables={
            **summary.tables,
            "customers": replace(summary.tables["customers"], ids_sha256="0"),
        },
    )
    with pytest.raises(WorkbookError, match=r"Customers: .* customer ids"):
        verify_workbook(path, wrong_ids)
    wrong_team = replace(summary, defined_names={**summary.defined_names, "crm_team": "Other"})
    with pytest.raises(WorkbookError, match="crm_team"):
        verify_workbook(path, wrong_team)
    # a copy without the VBA project
    stripped = tmp_path / "stripped.xlsm"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stripped, "w") as target:
        for item in source.infolist():
            if item.filename != "xl/vbaProject.bin":
                target.writestr(item, source.read(item.filename))
    with pytest.raises(WorkbookError, match=r"vbaProject\.bin is missing"):
        verify_workbook(stripped, summary)
    # a file cut short, as by a crash while writing
    cut = tmp_path / "cut.xlsm"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WorkbookError, match="cannot be read back"):
        verify_workbook(cut, summary)

    # a shared-string table that lost an item (ids would be read from the wrong strings)
    shrunk = tmp_path / "shrunk.xlsm"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(shrunk, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/sharedStrings.xml":
                cut_at = data.rindex(b"<si>")
                data = data[:cut_at] + data[data.index(b"</si>", cut_at) + len(b"</si>") :]
            target.writestr(item, data)
    with pytest.raises(WorkbookError):
        verify_workbook(shrunk, summary)


def test_money_formats() -> None:
    assert money_format("CNY") == '"¥"#,##0.00;[Red]-"¥"#,##0.00'
    assert money_format("jpy") == '"¥"#,##0;[Red]-"¥"#,##0'
    assert money_format("CHF") == '#,##0.00 "CHF";[Red]-#,##0.00 "CHF"'


def test_a_write_failure_is_a_workbook_error_and_leaves_no_file(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "no such folder" / "team.xlsm"
    with pytest.raises(WorkbookError, match=rf"team '{team}': cannot write workbook"):
        build_team_workbook(_data(run, team, settings, "en"), path)
    assert not path.exists()
    assert not path.parent.exists()


def test_a_team_without_customers_gets_empty_tables(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    report = run.reports[team]
    empty = replace(
        report,
        customers=report.customers.iloc[:0],
        churn_warnings=report.churn_warnings.iloc[:0],
        care_calendar=report.care_calendar.iloc[:0],
        advocate_candidates=report.advocate_candidates.iloc[:0],
    )
    data = _data(replace(run, reports={"New team": empty}), "New team", settings, "en")
    path = tmp_path / "team.xlsm"
    summary = build_team_workbook(data, path)
    assert summary.customers == 0
    book = _open(path)
    for key in TABLE_SHEETS:
        header, rows = _table_rows(book, layout.TABLE_NAMES[key])
        assert header == [c.label("en") for c in layout.columns(key)]
        assert rows == [[None] * len(header)]  # one empty row: Excel needs a data row


def test_the_dashboard_is_exactly_its_cell_list(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    """What the Refresh button rewrites (dashboard_cells) is what the writer wrote."""
    history = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2026-03-31", "2026-03-31"]),
            "scope": "team",
            "team": team,
            "kpi": ["revenue_12m", "churn_warnings_count"],
            "value": [1.0, 10_000.0],
        }
    )
    data = _data(run, team, settings, "zh-CN", history=history)
    path = tmp_path / "team.xlsm"
    build_team_workbook(data, path)
    sheet = _open(path)[layout.sheet_title("dashboard", "zh-CN")]
    cells = dashboard_cells(data, "zh-CN")
    assert len({(c.row, c.col) for c in cells}) == len(cells)
    for item in cells:
        got = sheet.cell(item.row + 1, item.col + 1)
        if item.num_format == "yyyy-mm":
            assert got.value == datetime(1899, 12, 30) + timedelta(days=item.value)
        elif isinstance(item.value, float):
            assert got.value == pytest.approx(item.value)
        else:
            assert got.value == item.value
        if item.num_format:
            assert got.number_format == item.num_format
        if item.font_color:
            assert got.font.color.rgb == "FF" + item.font_color.lstrip("#")
    by_text = {c.value: c for c in cells if isinstance(c.value, str)}
    revenue = next(c for c in cells if c.value == by_text["近12个月净销售额"].value)
    tile_value = next(c for c in cells if (c.row, c.col) == (revenue.row + 1, revenue.col))
    assert tile_value.value == pytest.approx(run.reports[team].kpis["revenue_12m"])
    change = next(c for c in cells if (c.row, c.col) == (revenue.row + 2, revenue.col))
    assert change.font_color == "#007A33"  # revenue went up from 1.0: good, green
    warnings_label = by_text["流失预警客户数"]
    warning_change = next(
        c for c in cells if (c.row, c.col) == (warnings_label.row + 2, warnings_label.col)
    )
    assert warning_change.value < 0
    assert warning_change.font_color == "#007A33"  # fewer warnings: good although down
    assert sheet.merged_cells.ranges  # tiles and the hint are merged ranges


def test_text_typed_into_a_date_column_survives_sheet_rows(
    run: KpiRun, team: str, settings: Settings
) -> None:
    data = _data(run, team, settings, "en")
    cid = data.frames["followups"]["customer_id"].iloc[0]
    typo = _input(cid, 2, "call", next_contact_date=None,
                  raw={"next_contact_date": "next tuesday"}, problem="not a date")  # fmt: skip
    columns, rows = sheet_rows(data, "followups", "en", staff_inputs={cid: typo})
    keys = [c.key for c in columns]
    row = next(r for r in rows if r[0] == cid)
    assert row[keys.index("next_contact_date")] == "next tuesday"
    assert row[keys.index("save_problem")] == "not a date"


def test_sheets_print_readably_with_the_header_row_on_every_page(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "team.xlsm"
    build_team_workbook(_data(run, team, settings, "en"), path)
    book = _open(path)
    dashboard = book[layout.sheet_title("dashboard", "en")]
    assert dashboard.page_setup.orientation == "landscape"
    assert dashboard.sheet_properties.pageSetUpPr.fitToPage
    # 1 x 1 page (1 is the file format's default, left out of the file: read back as None)
    assert (dashboard.page_setup.fitToWidth or 1, dashboard.page_setup.fitToHeight or 1) == (1, 1)
    wide: dict[str, int] = {}
    for key in ("customers", "watchlist", "followups", "care", "advocates"):
        sheet = book[layout.sheet_title(key, "en")]
        setup = sheet.page_setup
        assert setup.orientation == "landscape", key
        assert setup.paperSize == 9, key  # A4
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, key
        assert setup.fitToHeight == 0, key  # pages tall: as many as it needs
        assert sheet.print_title_rows == "$1:$1", key
        # read back: the printed scale stays readable (>= 60 %), measured independently
        # from the stored column widths (Calibri 11: 7 px a character + 5 px, 96 px/in)
        inches = [
            (sheet.column_dimensions[get_column_letter(c)].width * 7 + 5) / 96
            for c in range(1, sheet.max_column + 1)
        ]
        printable = 297 / 25.4 - 0.8
        across = setup.fitToWidth or 1
        repeated = sum(inches[:2] if key in ("customers", "watchlist", "followups") else inches[:1])
        if across == 1:
            assert sum(inches) * 0.6 <= printable, key
            assert sheet.print_title_cols is None, key
        else:  # the fewest pages across that keep 60 %, ID and name on each page
            assert (sum(inches) + (across - 1) * repeated) * 0.6 <= across * printable, key
            assert (sum(inches) + (across - 2) * repeated) * 0.6 > (across - 1) * printable, key
            assert sheet.print_title_cols == "$A:$B", key
            assert setup.pageOrder == "overThenDown", key
        wide[key] = across
        corner = f"${get_column_letter(sheet.max_column)}${sheet.max_row}"
        assert sheet.print_area == f"'{sheet.title}'!$A$1:{corner}", key
        # the page header holds Excel codes only: no team or customer text
        assert sheet.oddHeader.left.text == "&F · &A", key
    assert wide["customers"] >= 2  # 21 columns: at one page wide it printed at ~half size
    assert wide["care"] == 1


def test_the_dashboard_labels_its_grey_previous_values_on_the_sheet(
    run: KpiRun, team: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "team.xlsm"
    build_team_workbook(_data(run, team, settings, "zh-CN"), path)
    sheet = _open(path)[layout.sheet_title("dashboard", "zh-CN")]
    texts = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert layout.text("dashboard.tiles_legend", "zh-CN") in texts


def test_money_tiles_show_whole_units_like_the_pdfs() -> None:
    from crm_batch.excel.styles import tile_formats, whole_money_format

    assert whole_money_format("CNY") == '"¥"#,##0'
    assert whole_money_format("XYZ") == '#,##0 "XYZ"'  # an unknown code stays a code
    assert tile_formats("CNY")["money"] == whole_money_format("CNY")


@pytest.mark.parametrize(("columns", "across"), [(20, 1), (23, 1), (24, 2), (30, 2), (60, 3)])
def test_pages_across_keep_the_print_scale_readable(columns: int, across: int) -> None:
    """Hand-worked: a 10-character column prints 75/96 inch wide; A4 landscape holds
    10.89 inches between the margins, 18.16 inches at 60 %: 23 columns (17.97 in) fit
    on one page, 24 (18.75 in) do not. Each further page adds 18.16 in less the two
    repeated columns (1.56 in): 30 columns need 2 pages, 60 columns (46.88 in) need 3."""
    assert printing.pages_wide([10.0] * columns, 2) == across
