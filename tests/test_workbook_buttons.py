"""The button handlers against real xlwings objects, without Excel.

xlwings' remote engine (the engine of xlwings Server) builds an ``xlwings.Book`` from
the JSON an Excel client sends and records every change as an action for the client.
The payload here is made from a team workbook built the nightly way
(:mod:`fixtures.xlremote`), the handlers run on it against a real demo database, and
the tests check the recorded actions and the database. The engine needs an xlwings PRO
licence key; ``noncommercial`` is set for these tests only (see the README's "Workbook
buttons" on licensing).
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import xlwings
from fixtures.batch import DEMO_DAY, url_text
from fixtures.team_workbook import TEAM, copy_demo, demo_with_workbook, workbook_path
from fixtures.xlremote import actions, book_payload, remote_engine
from sqlalchemy import text

from crm_batch import buttons
from crm_batch.buttons import config_file_for, formula_constant, handlers
from crm_batch.config import load_settings
from crm_batch.excel import layout
from crm_batch.source.db import make_engine

ENV_OVERRIDES = (
    "CRM_BATCH_DATABASE_URL",
    "CRM_BATCH_DATABASE_PASSWORD",
    "CRM_BATCH_DATA_DIR",
    "CRM_BATCH_WORKBOOKS_DIR",
    "CRM_BATCH_REPORTS_DIR",
    "CRM_BATCH_SQL_DIR",
    "CRM_BATCH_TIMEZONE",
)
HOSTILE_NAMES = ('=HYPERLINK("http://x.example","click")', "+1+1", "-2", "@SUM(1,2)", "00123")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo folder (DuckDB, settings) with the Shanghai workbook built in English."""
    return demo_with_workbook(tmp_path_factory.mktemp("buttons") / "demo")


@dataclass
class Demo:
    """A private copy of the demo, the settings file the buttons find, and its workbook."""

    folder: Path
    config: Path
    workbook: Path
    url: str

    def payload(self) -> dict[str, Any]:
        return book_payload(self.workbook)

    def query(self, sql: str, **params: Any) -> list[tuple]:
        engine = make_engine(self.url)
        try:
            with engine.begin() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        finally:
            engine.dispose()


@pytest.fixture
def demo(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    folder = copy_demo(pristine, tmp_path / "demo")
    config = folder / "crm_batch.toml"
    for name in ENV_OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRM_BATCH_CONFIG", str(config))
    settings = load_settings(config, environ={}, cwd=folder)
    with remote_engine(monkeypatch):
        yield Demo(folder, config, workbook_path(folder), url_text(settings.database_url))


def book(payload: dict[str, Any]) -> Any:
    """A fresh remote Book of ``payload`` (a deep copy: the engine keeps the dict)."""
    return xlwings.Book(json=copy.deepcopy(payload))


# -- reading the payload and the actions ------------------------------------------------


def table_location(payload: dict[str, Any], table_name: str) -> tuple[int, dict[str, Any]]:
    for index, sheet in enumerate(payload["sheets"]):
        for table in sheet["tables"]:
            if table["name"] == table_name:
                return index, table
    raise AssertionError(f"no table {table_name}")


def edit_body(
    payload: dict[str, Any], sheet_key: str, edit: Callable[[list[dict[str, Any]]], None]
) -> None:
    """Let ``edit`` change the table's body rows given as dicts by column key (same row
    count); headers are matched with the layout, as staff's Excel would show them."""
    index, table = table_location(payload, layout.TABLE_NAMES[sheet_key])
    values = payload["sheets"][index]["values"]
    keys = [layout.header_key(sheet_key, h) for h in values[0][: table["column_count"]]]
    body = [dict(zip(keys, row, strict=False)) for row in values[1 : table["row_count"]]]
    edit(body)
    for offset, cells in enumerate(body, start=1):
        values[offset][: len(keys)] = [cells[key] for key in keys]


def column_keys(payload: dict[str, Any], sheet_key: str) -> list[str]:
    index, table = table_location(payload, layout.TABLE_NAMES[sheet_key])
    headers = payload["sheets"][index]["values"][0][: table["column_count"]]
    return [layout.header_key(sheet_key, h) for h in headers]


def written_rows(
    done: list[dict[str, Any]], payload: dict[str, Any], sheet_key: str
) -> list[dict[str, Any]]:
    """The rows the handler wrote into a table's body, as dicts by column key."""
    index, _ = table_location(payload, layout.TABLE_NAMES[sheet_key])
    keys = column_keys(payload, sheet_key)
    writes = [a for a in done if a["func"] == "setValues" and a["sheet_position"] == index]
    if not writes:  # an empty table: its one blank row is cleared instead
        assert any(a["func"] == "rangeClearContents" and a["sheet_position"] == index for a in done)
        return []
    assert len(writes) == 1, writes
    write = writes[0]
    assert (write["start_row"], write["start_column"]) == (1, 0)
    assert write["column_count"] == len(keys)
    return [dict(zip(keys, row, strict=True)) for row in write["values"]]


def alerts(done: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        dict(zip(("prompt", "title", "buttons", "mode", "callback"), a["args"], strict=True))
        for a in done
        if a["func"] == "alert"
    ]


def text_format_index(done: list[dict[str, Any]], sheet: int, column: int, rows: int) -> int:
    """Index of the action that made ``column`` (all ``rows`` body rows) Text."""
    for position, action in enumerate(done):
        if (
            action["func"] == "setNumberFormat"
            and action["args"] == ["@"]
            and action["sheet_position"] == sheet
            and action["start_row"] == 1
            and action["row_count"] >= rows
            and action["start_column"] <= column < action["start_column"] + action["column_count"]
        ):
            return position
    raise AssertionError(f"column {column} of sheet {sheet} never got the Text format")


# -- Refresh ------------------------------------------------------------------------------


def test_refresh_rereads_the_database_and_writes_ids_as_text(demo: Demo) -> None:
    payload = demo.payload()
    before = {row["customer_id"] for row in _body(payload, "customers")}
    # after the workbook was made: two customers move away, another one arrives
    arriving = demo.query("select min(customer_id) from customers where team = 'Beijing'")[0][0]
    leaving = sorted(before)[:2]
    for customer in leaving:
        demo.query("update customers set team = 'Beijing' where customer_id = :id", id=customer)
    demo.query("update customers set team = :team where customer_id = :id", team=TEAM, id=arriving)
    for index, name in enumerate(HOSTILE_NAMES):
        demo.query(
            "update customers set name = :name where customer_id = :id",
            name=name,
            id=sorted(before)[index + 2],
        )
    expected_ids = {
        str(row[0])
        for row in demo.query("select customer_id from customers where team = :t", t=TEAM)
    }

    workbook = book(payload)
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert result.ok, result.message
    done = actions(workbook)
    customers = written_rows(done, payload, "customers")
    assert {row["customer_id"] for row in customers} == expected_ids
    assert str(arriving) in expected_ids
    assert not set(leaving) & expected_ids
    assert len(customers) == len(before) - 1
    assert all(isinstance(row["customer_id"], str) for row in customers)
    names = {row["customer_name"] for row in customers}
    assert set(HOSTILE_NAMES) <= names  # exactly as stored: no apostrophe, no evaluation

    sheet, _ = table_location(payload, "Customers")
    keys = column_keys(payload, "customers")
    values_at = next(
        i for i, a in enumerate(done) if a["func"] == "setValues" and a["sheet_position"] == sheet
    )
    for key in ("customer_id", "customer_name", "next_action"):
        assert text_format_index(done, sheet, keys.index(key), len(customers)) < values_at
    resize = [a for a in done if a["func"] == "resizeTable" and a["sheet_position"] == sheet]
    width = len(layout.columns("customers"))
    last_column = chr(ord("A") + width - 1)
    assert (width, last_column) == (21, "U")
    assert resize[0]["args"] == [0, f"$A$1:${last_column}${len(customers) + 1}"]
    # the row the table gave up is cleared (values and formats), nothing else
    (cleared,) = [a for a in done if a["func"] == "rangeClear" and a["sheet_position"] == sheet]
    assert (cleared["start_row"], cleared["start_column"]) == (len(customers) + 1, 0)
    assert (cleared["row_count"], cleared["column_count"]) == (1, width)

    names_set = {a["args"][0]: a["args"][3] for a in done if a["func"] == "setNameRefersTo"}
    assert names_set == {layout.NAME_AS_OF: f'="{DEMO_DAY.isoformat()}"'}
    (shown,) = alerts(done)
    assert shown["mode"] == "info"
    assert shown["title"] == "Refresh data"
    assert f"{len(expected_ids)} customers" in shown["prompt"]
    assert shown["prompt"] == result.message


def _body(payload: dict[str, Any], sheet_key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    edit_body(payload, sheet_key, lambda body: rows.extend(dict(r) for r in body))
    return rows


def test_refresh_keeps_typed_followups_with_their_customer(demo: Demo) -> None:
    payload = demo.payload()
    typed: dict[str, dict[str, Any]] = {}

    def type_and_sort(body: list[dict[str, Any]]) -> None:
        body[0].update(outcome="Reached", note="called, wants a quote", entered_by="王芳")
        body[1].update(
            outcome="call_back",
            note="=1+1 is not a formula",
            next_contact_date="2026-07-03T00:00:00.000Z",
        )
        for row in body[:2]:
            typed[row["customer_id"]] = dict(row)
        # a customer who has left the team, with an unsaved note
        body[-1].update(customer_id="GONE-1", customer_name="Left Co.", note="keep me", outcome="")
        body.reverse()  # staff sorted the table

    edit_body(payload, "followups", type_and_sort)
    workbook = book(payload)
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert result.ok, result.message
    rows = written_rows(actions(workbook), payload, "followups")
    by_id = {row["customer_id"]: row for row in rows}
    first, second = typed.values()
    assert by_id[first["customer_id"]]["note"] == "called, wants a quote"
    assert by_id[first["customer_id"]]["outcome"] == "Reached"
    assert by_id[first["customer_id"]]["entered_by"] == "王芳"
    assert by_id[second["customer_id"]]["note"] == "=1+1 is not a formula"
    assert by_id[second["customer_id"]]["outcome"] == "Call back"
    assert by_id[second["customer_id"]]["next_contact_date"] == "2026-07-03"
    assert rows[-1]["customer_id"] == "GONE-1"
    assert rows[-1]["note"] == "keep me"
    untouched = [r for r in rows if r["customer_id"] not in typed and r["customer_id"] != "GONE-1"]
    assert all(r["note"] == "" for r in untouched)  # no stored follow-ups in the demo
    assert "kept at the end" in result.message


def test_refresh_places_rows_through_the_one_merge_and_keeps_every_row(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_batch.excel import staff_merge

    payload = demo.payload()
    customer: list[str] = []

    def two_rows_of_one_customer(body: list[dict[str, Any]]) -> None:
        customer.append(body[0]["customer_id"])
        body[0].update(note="one of two")
        body[1].update(customer_id=customer[0], note="two of two")  # typed below the first
        body[-1].update(customer_id="GONE-2", note="customer is gone")

    edit_body(payload, "followups", two_rows_of_one_customer)
    calls: list[Any] = []
    real = staff_merge.merge_staff_inputs

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(staff_merge, "merge_staff_inputs", spy)
    workbook = book(payload)
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert result.ok, result.message
    (merged,) = calls
    assert merged.shown[customer[0]].note == "two of two"  # the last unsaved row
    rows = written_rows(actions(workbook), payload, "followups")
    notes = [row["note"] for row in rows]
    assert {"one of two", "two of two", "customer is gone"} <= set(notes)
    shown = next(row for row in rows if row["customer_id"] == customer[0])
    assert shown["note"] == "two of two"
    assert [row["note"] for row in rows[-2:]] == ["one of two", "customer is gone"]


# -- Save follow-ups --------------------------------------------------------------------


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def save_demo(request: pytest.FixtureRequest, demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Demo:
    """The demo on DuckDB, or the same demo data loaded into a PostgreSQL schema."""
    if request.param == "duckdb":
        return demo
    from fixtures.batch import demo_folder

    url = request.getfixturevalue("postgres_url_factory")()
    demo_folder(demo.folder / "pg", url)  # same seed: the same customers as the workbook
    monkeypatch.setenv("CRM_BATCH_DATABASE_URL", url_text(url))
    return Demo(demo.folder, demo.config, demo.workbook, url_text(url))


def test_save_followups_stores_valid_rows_once_and_marks_every_row(save_demo: Demo) -> None:
    payload = save_demo.payload()
    ids: list[str] = []

    def fill(body: list[dict[str, Any]]) -> None:
        body[2].update(outcome="Reached", note="will order next week", entered_by="李强",
                       next_contact_date="2026-07-05T00:00:00.000Z")  # fmt: skip
        body[5].update(outcome="interested", note="=cmd|' /C calc'!A0", entered_by="")
        body[7].update(outcome="maybe", note="typo in the outcome")
        ids.extend(body[i]["customer_id"] for i in (2, 5, 7))

    edit_body(payload, "followups", fill)
    keys = column_keys(payload, "followups")
    first = book(payload)
    result = buttons.save_followups(first, now=datetime(2026, 7, 1, 9, 30, 15, 999))

    assert result.ok, result.message
    stored = save_demo.query(
        "select customer_id, outcome, note, entered_by, next_contact_date, entered_at "
        "from followups order by customer_id"
    )
    expected = sorted(
        [
            (ids[0], "reached", "will order next week", "李强", date(2026, 7, 5)),
            (ids[1], "interested", "=cmd|' /C calc'!A0", None, None),
        ]
    )
    assert [row[:5] for row in stored] == expected
    assert {row[5] for row in stored} == {datetime(2026, 7, 1, 9, 30, 15)}

    done = actions(first)
    sheet, _ = table_location(payload, "FollowUps")
    column = {a["start_column"]: a for a in done if a["func"] == "setValues"}
    saved = [row[0] for row in column[keys.index("saved_at")]["values"]]
    problems = [row[0] for row in column[keys.index("save_problem")]["values"]]
    assert saved[2] == saved[5] == "2026-07-01 09:30:15"
    assert saved[7] == ""
    assert "maybe" in problems[7]
    assert problems[2] == problems[5] == ""
    assert [i for i, v in enumerate(saved) if v] == [2, 5]
    problem_at = next(
        i
        for i, a in enumerate(done)
        if a["func"] == "setValues" and a["start_column"] == keys.index("save_problem")
    )
    assert text_format_index(done, sheet, keys.index("save_problem"), len(saved)) < problem_at
    (shown,) = alerts(done)
    assert "Saved 2 follow-ups" in shown["prompt"]
    assert "(0 were saved before)" in shown["prompt"]
    assert "1 rows could not be saved" in shown["prompt"]
    assert "rows 9" in shown["prompt"]

    # pressing again (the same rows, later) stores nothing new and keeps the first time
    again = book(payload)
    second = buttons.save_followups(again, now=datetime(2026, 7, 2, 8, 0))
    assert "Saved 0 follow-ups" in second.message
    assert "(2 were saved before)" in second.message
    assert len(save_demo.query("select followup_id from followups")) == 2
    column = {a["start_column"]: a for a in actions(again) if a["func"] == "setValues"}
    assert column[keys.index("saved_at")]["values"][2] == ["2026-07-01 09:30:15"]


def test_save_with_nothing_typed_says_so_and_changes_nothing(demo: Demo) -> None:
    workbook = book(demo.payload())
    result = buttons.save_followups(workbook)
    assert result.ok
    assert result.message.startswith("Nothing to save")
    assert [a["func"] for a in actions(workbook)] == ["alert"]


# -- Make my PDF ------------------------------------------------------------------------


@pytest.mark.slow
def test_make_pdf_writes_the_team_report_and_names_it(demo: Demo) -> None:
    workbook = book(demo.payload())
    result = buttons.make_pdf(workbook)  # of the workbook's data date, crm_as_of

    assert result.ok, result.message
    pdf = demo.folder / "output" / "reports" / f"diagnosis_Shanghai_{DEMO_DAY}_en.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    (shown,) = alerts(actions(workbook))
    assert shown["mode"] == "info"
    assert str(pdf) in shown["prompt"]


# -- failures become messages ------------------------------------------------------------


def _only_alert(workbook: Any) -> dict[str, str]:
    done = actions(workbook)
    assert [a["func"] for a in done] == ["alert"], "nothing may change before the failure"
    return alerts(done)[0]


def test_database_down_is_a_message_not_a_traceback(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "down.toml"
    config.write_text(
        '[database]\nurl = "postgresql+psycopg://nobody@127.0.0.1:9/none"\n'
        "connect_timeout_seconds = 2.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CRM_BATCH_CONFIG", str(config))
    workbook = book(demo.payload())
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert not result.ok
    shown = _only_alert(workbook)
    assert shown["mode"] == "critical"
    assert shown["title"] == "Refresh data"
    assert shown["prompt"].startswith("Refresh data did not finish: ")
    assert "127.0.0.1" in shown["prompt"]
    assert "Traceback" not in shown["prompt"]


def test_workbook_problems_name_what_is_missing_in_the_workbook_language(demo: Demo) -> None:
    payload = demo.payload()
    for name in payload["names"]:
        if name["name"] == layout.NAME_LANGUAGE:
            name["refers_to"] = '="zh-CN"'
    no_team = copy.deepcopy(payload)
    no_team["names"] = [n for n in no_team["names"] if n["name"] != layout.NAME_TEAM]
    workbook = book(no_team)
    assert not buttons.save_followups(workbook).ok
    shown = _only_alert(workbook)
    assert shown["title"] == "保存跟进记录"
    assert layout.NAME_TEAM in shown["prompt"]
    assert shown["prompt"].startswith("保存跟进记录未完成")

    no_table = copy.deepcopy(payload)
    sheet, _ = table_location(no_table, "FollowUps")
    no_table["sheets"][sheet]["tables"] = []
    workbook = book(no_table)
    assert not buttons.refresh(workbook, as_of=DEMO_DAY).ok
    assert "FollowUps" in _only_alert(workbook)["prompt"]


def test_without_settings_the_message_says_where_to_put_them(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_BATCH_CONFIG")
    workbook = book(demo.payload())  # xlwings Server: the book has a name, no folder
    assert not buttons.make_pdf(workbook).ok
    assert "CRM_BATCH_CONFIG" in _only_alert(workbook)["prompt"]

    missing = demo.folder / "moved.toml"
    monkeypatch.setenv("CRM_BATCH_CONFIG", str(missing))
    workbook = book(demo.payload())
    assert not buttons.save_followups(workbook).ok
    prompt = _only_alert(workbook)["prompt"]
    assert f"config file not found: {missing} (given in $CRM_BATCH_CONFIG)" in prompt


# -- small parts ----------------------------------------------------------------------


def test_config_file_is_found_above_the_workbook(tmp_path: Path) -> None:
    (tmp_path / "crm_batch.toml").write_text("", encoding="utf-8")
    folder = tmp_path / "output" / "workbooks"
    folder.mkdir(parents=True)
    stub = SimpleNamespace(fullname=str(folder / "North.xlsm"))
    assert config_file_for(stub, environ={}) == tmp_path / "crm_batch.toml"
    (folder / "crm_batch.toml").write_text("", encoding="utf-8")
    assert config_file_for(stub, environ={}) == folder / "crm_batch.toml"
    chosen = tmp_path / "elsewhere.toml"
    assert config_file_for(stub, environ={"CRM_BATCH_CONFIG": str(chosen)}) == chosen
    web = SimpleNamespace(fullname="https://contoso.sharepoint.com/sites/x/North.xlsm")
    assert config_file_for(web, environ={}) is None
    assert config_file_for(SimpleNamespace(fullname="North.xlsm"), environ={}) is None


@pytest.mark.parametrize(
    ("refers_to", "expected"),
    [('="North"', "North"), ('="say ""hi"""', 'say "hi"'), ("=1", "1"), ('=""', ""), (None, None)],
)
def test_formula_constant(refers_to: str | None, expected: str | None) -> None:
    assert formula_constant(refers_to) == expected


def test_a_locked_report_file_is_a_message(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/reports/diagnosis_shanghai.pdf")

    monkeypatch.setattr("crm_batch.reports.diagnosis.write_diagnosis", locked)
    workbook = book(demo.payload())
    assert not buttons.make_pdf(workbook, as_of=DEMO_DAY).ok
    prompt = _only_alert(workbook)["prompt"]
    assert "/reports/diagnosis_shanghai.pdf: Permission denied" in prompt
    assert "open in another program" in prompt


def test_an_unexpected_error_is_logged_with_its_traceback_and_shown_briefly(
    demo: Demo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug, with customer data in it: 王芳 138-0000-0000")

    monkeypatch.setattr("crm_batch.excel.sheet_values.sheet_rows", broken)
    workbook = book(demo.payload())
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert not result.ok
    shown = _only_alert(workbook)
    assert shown["mode"] == "critical"
    assert "unexpected error (RuntimeError)" in shown["prompt"]
    assert "王芳" not in shown["prompt"]  # details go to the log, not into a dialog
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row as read from the payload or as written by the remote engine, in one form:
    dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DD HH:MM:SS``, numbers rounded to cents."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str) and value.endswith("Z") and "T" in value:
            moment = datetime.fromisoformat(value[:-1])
            value = moment.date().isoformat() if moment.time() == time() else str(moment)
        elif isinstance(value, float | int) and not isinstance(value, bool):
            value = round(float(value), 2)
        out[key] = value
    return out


def test_refresh_of_a_chinese_workbook_finds_its_columns_by_chinese_headers(demo: Demo) -> None:
    from fixtures.team_workbook import build_demo_workbook

    path = build_demo_workbook(demo.folder, language="zh-CN", path=demo.folder / "zh.xlsm")
    payload = book_payload(path)
    index, _ = table_location(payload, "Customers")
    assert payload["sheets"][index]["values"][0][0] == "客户编号"
    workbook = book(payload)
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert result.ok, result.message
    members = demo.query("select customer_id from customers where team = :t", t=TEAM)
    rows = written_rows(actions(workbook), payload, "customers")
    assert {row["customer_id"] for row in rows} == {str(row[0]) for row in members}
    # Refresh for the workbook's own date writes exactly what the nightly build wrote
    for key in (*buttons.COMPUTED_SHEETS, "followups"):
        built = [_comparable(row) for row in _body(payload, key)]
        refreshed = [_comparable(row) for row in written_rows(actions(workbook), payload, key)]
        assert refreshed == built, key
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in row["lifecycle"]) for row in rows)
    dashboard = _dashboard_writes(actions(workbook))
    assert {"value": DEMO_DAY.isoformat(), "format": "@"} in dashboard.values()  # 数据截至
    no_previous = layout.text("dashboard.no_previous", "zh-CN")  # no snapshots stored yet
    found = [cell for cell in dashboard.values() if cell.get("value") == no_previous]
    assert len(found) == len(layout.DASHBOARD_KPIS)  # every tile found by its Chinese label
    (shown,) = alerts(actions(workbook))
    assert shown["title"] == "刷新数据"
    assert shown["prompt"].startswith(f"已刷新{TEAM}的数据")


def test_refresh_keeps_a_typo_in_a_date_cell_as_text(demo: Demo) -> None:
    payload = demo.payload()
    customer: list[str] = []

    def typo(body: list[dict[str, Any]]) -> None:
        body[0].update(note="call", next_contact_date="next tuesday")
        customer.append(body[0]["customer_id"])

    edit_body(payload, "followups", typo)
    workbook = book(payload)
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert result.ok, result.message
    done = actions(workbook)
    rows = written_rows(done, payload, "followups")
    (row,) = [r for r in rows if r["customer_id"] == customer[0]]
    assert row["next_contact_date"] == "next tuesday"
    assert row["note"] == "call"
    assert "next tuesday" in row["save_problem"]  # why it cannot be saved, as Save says
    assert row["saved_at"] == ""
    sheet, _ = table_location(payload, "FollowUps")
    column = column_keys(payload, "followups").index("next_contact_date")
    line = rows.index(row) + 1
    assert any(
        a["func"] == "setNumberFormat"
        and a["args"] == ["@"]
        and (a["sheet_position"], a["start_row"], a["start_column"]) == (sheet, line, column)
        for a in done
    )


def test_started_by_excel_the_traceback_goes_to_the_buttons_log(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in the Python process Excel starts
    for logger in (root, *map(logging.getLogger, handlers._NOISY_LOGGERS)):
        monkeypatch.setattr(logger, "level", logger.level)  # restored afterwards

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the bug's own words")

    monkeypatch.setattr("crm_batch.excel.sheet_values.sheet_rows", broken)
    workbook = book(demo.payload())
    try:
        assert not buttons.refresh(workbook, as_of=DEMO_DAY).ok
    finally:
        for handler in root.handlers:
            handler.close()
    log_file = demo.folder / "var" / "logs" / "buttons.log"
    assert str(log_file) in _only_alert(workbook)["prompt"]
    logged = log_file.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in logged
    assert "RuntimeError: the bug's own words" in logged


def _dashboard_writes(done: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, Any]]:
    """Per Dashboard cell (1-based row, column): the value, number format and font colour
    the actions leave it with."""
    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for action in done:
        if action["sheet_position"] != 0 or action["func"] not in {
            "setValues",
            "setNumberFormat",
            "setFontProperty",
            "setNoteText",
            "deleteNote",
        }:
            continue
        assert (action["row_count"], action["column_count"]) == (1, 1), action
        cell = cells.setdefault((action["start_row"] + 1, action["start_column"] + 1), {})
        if action["func"] == "setValues":
            value = action["values"][0][0]
            cell["value"] = None if value == "" else value
        elif action["func"] == "setNumberFormat":
            cell["format"] = action["args"][0]
        elif action["func"] == "setNoteText":
            cell["note"] = action["args"][1]
        elif action["func"] == "deleteNote":
            cell["note"] = None
        elif action["args"][0] == "color":
            cell["color"] = action["args"][1]
    return cells


def _built_dashboard(path: Path) -> dict[tuple[int, int], Any]:
    import openpyxl

    with warnings.catch_warnings():  # extensions openpyxl does not model (data bars, ...)
        warnings.filterwarnings("ignore", "(Unknown|Conditional Formatting) extension")
        sheet = openpyxl.load_workbook(path).worksheets[0]
    return {
        (cell.row, cell.column): cell
        for row in sheet.iter_rows(max_row=sheet.max_row, max_col=sheet.max_column)
        for cell in row
    }


@pytest.mark.slow
def test_refresh_rewrites_the_dashboard_as_the_nightly_build_would(demo: Demo) -> None:
    from fixtures.team_workbook import build_demo_workbook, store_history

    # earlier nights left snapshots: previous-quarter values and a trend to show
    nights = [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31)]
    store_history(demo.folder, nights)
    old = build_demo_workbook(demo.folder, as_of=date(2026, 5, 31), path=demo.folder / "old.xlsm")
    fresh = build_demo_workbook(demo.folder, path=demo.folder / "fresh.xlsm")  # DEMO_DAY
    workbook = book(book_payload(old))
    result = buttons.refresh(workbook, as_of=DEMO_DAY)
    assert result.ok, result.message

    written = _dashboard_writes(actions(workbook))
    before, after = _built_dashboard(old), _built_dashboard(fresh)
    generated = next(
        (r, c + 1)
        for (r, c), cell in after.items()
        if cell.value == layout.text("dashboard.generated", "en")
    )
    changed = {
        key for key, cell in after.items() if cell.value != before[key].value and key != generated
    }
    assert changed, "the two dates must differ on the Dashboard"
    assert changed <= set(written), sorted(changed - set(written))
    for key, cell in written.items():
        if key == generated:
            continue
        expected = after[key]
        value = expected.value
        if isinstance(value, datetime):  # months are written as Excel serial day numbers
            value = (value - datetime(1899, 12, 30)).days
        if isinstance(value, float | int) and cell["value"] is not None:
            assert cell["value"] == pytest.approx(value), key
        else:
            assert cell["value"] == value, key
        if "format" in cell and cell["value"] is not None and not isinstance(value, str):
            assert cell["format"] == expected.number_format, key
        if "color" in cell:
            assert cell["color"].lstrip("#").upper() == expected.font.color.rgb[-6:], key
        if "note" in cell:
            assert cell["note"] == (expected.comment.text if expected.comment else None), key
    changes = [c for c in written.values() if "▲" in c.get("format", "")]
    assert changes, "some tiles must show a change against the previous quarter"
    recoloured = [
        key
        for key, cell in after.items()
        if cell.font.color is not None
        and before[key].font.color is not None
        and cell.font.color.rgb != before[key].font.color.rgb
    ]
    assert recoloured  # grey "no previous period" became a green or red change, ...
    assert all("color" in written[key] for key in recoloured)  # ... checked above
    # tooltips naming the comparison date follow (the old workbook had some already)
    renamed = [
        key
        for key, cell in after.items()
        if cell.comment and before[key].comment and cell.comment.text != before[key].comment.text
    ]
    assert renamed
    assert all(written[key]["note"] == after[key].comment.text for key in renamed)


def test_a_dashboard_laid_out_differently_is_left_for_the_nightly_rebuild(demo: Demo) -> None:
    payload = demo.payload()
    dashboard = payload["sheets"][0]["values"]
    dashboard.insert(5, [""] * len(dashboard[0]))  # staff inserted a row below the header
    workbook = book(payload)
    result = buttons.refresh(workbook, as_of=DEMO_DAY)

    assert result.ok, result.message
    assert "Dashboard is laid out differently" in result.message
    assert not _dashboard_writes(actions(workbook))  # not one cell written there
    assert written_rows(actions(workbook), payload, "customers")  # the tables still are
