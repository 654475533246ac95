"""A real office suite opens a team workbook and presses its buttons: LibreOffice headless.

LibreOffice imports the workbook's VBA project and its form-control buttons (the VML
shapes XlsxWriter writes) and runs the bound macros in its VBA-compatible Basic. It
cannot compile xlwings' own module, and one uncompilable module silently disables every
macro, so the workbook under test is the generated one with xlwings' module replaced by
a test module whose ``RunPython`` writes its command into a cell: pressing each button
must leave exactly the command the issue specifies there. Each command is then executed
in Python, the way xlwings would run it, against the same workbook on xlwings' remote
engine and the demo database, and must succeed.

Needs ``soffice`` (Debian: libreoffice-calc-nogui) and the system Python's UNO bridge
(python3-uno); ``scripts/bootstrap.sh --test`` installs both. Without them the test is
skipped with the reason, or fails when ``CRM_BATCH_TEST_REQUIRE_SERVERS=1`` (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlwings
from fixtures.batch import demo_folder, folder_settings
from fixtures.team_workbook import TEAM, build_demo_workbook, workbook_path
from fixtures.xlremote import actions, remote_book, remote_engine
from sqlalchemy import text

from crm_batch.app.engines import build_engine
from crm_batch.excel import layout
from crm_batch.excel.vba.project import VbaModule, read_module_file
from crm_batch.excel.workbook import SHIPPED_VBA_DIR, VBA_PROJECT_NAME

PRESS_SCRIPT = Path(__file__).resolve().parent / "libreoffice" / "press_buttons.py"
#: The Python with LibreOffice's UNO bridge (Debian's python3-uno installs for it).
UNO_PYTHON = os.environ.get("CRM_BATCH_TEST_UNO_PYTHON", "/usr/bin/python3")
HOSTILE_NAMES = ("=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(1,2)")
WATCHED_CELL = "ZZ1"  # on the first sheet (the Dashboard); empty in a team workbook

#: What each button must run (issue 4: one macro per button calling RunPython).
EXPECTED_COMMANDS = {
    "RefreshData": "import crm_batch.buttons as b; b.refresh()",
    "SaveFollowups": "import crm_batch.buttons as b; b.save_followups()",
    "MakeMyPdf": "import crm_batch.buttons as b; b.make_pdf()",
}

FAKE_XLWINGS = f"""Attribute VB_Name = "xlwings"
' Test double of xlwings' VBA module for LibreOffice: RunPython records its command in
' a cell of the first sheet instead of starting Python.
Option Explicit

Public Function RunPython(PythonCommand As String)
    ThisWorkbook.Worksheets(1).Range("{WATCHED_CELL}").Value = PythonCommand
End Function
"""


def _missing_office() -> str | None:
    """Why LibreOffice cannot be driven here, or None when it can."""
    if shutil.which("soffice") is None:
        return "LibreOffice (soffice) is not installed: run scripts/bootstrap.sh --test"
    try:
        probe = subprocess.run(
            [UNO_PYTHON, "-c", "import uno"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{UNO_PYTHON} cannot run ({exc}); set CRM_BATCH_TEST_UNO_PYTHON"
    if probe.returncode != 0:
        return (
            f"{UNO_PYTHON} has no LibreOffice UNO bridge (python3-uno): run "
            "scripts/bootstrap.sh --test, or set CRM_BATCH_TEST_UNO_PYTHON"
        )
    return None


@pytest.fixture(scope="module")
def office() -> None:
    reason = _missing_office()
    if reason is not None:
        if os.environ.get("CRM_BATCH_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def _test_modules() -> list[VbaModule]:
    """The shipped button modules with xlwings' module replaced by the test double."""
    buttons = [read_module_file(SHIPPED_VBA_DIR / "Buttons.bas")]
    return [*buttons, VbaModule.from_bas(FAKE_XLWINGS, origin="test double of xlwings.bas")]


@pytest.fixture(scope="module")
def pressed(office: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The demo folder, and what pressing every button of the test variant did."""
    folder = demo_folder(tmp_path_factory.mktemp("libreoffice") / "demo")
    engine = build_engine(folder_settings(folder))
    try:
        with engine.begin() as conn:
            ids = (
                conn.execute(
                    text("select customer_id from customers where team = :t order by customer_id"),
                    {"t": TEAM},
                )
                .scalars()
                .all()
            )
            for customer, name in zip(ids, HOSTILE_NAMES, strict=False):
                conn.execute(
                    text("update customers set name = :n where customer_id = :id"),
                    {"n": name, "id": customer},
                )
    finally:
        engine.dispose()
    path = build_demo_workbook(folder, vba_modules=_test_modules())
    generated = openpyxl.load_workbook(path, read_only=True)
    try:
        assert generated.worksheets[0][WATCHED_CELL].value is None  # only a press fills it
    finally:
        generated.close()
    run = subprocess.run(
        [UNO_PYTHON, str(PRESS_SCRIPT), str(path), "--cell", WATCHED_CELL],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, json.loads(run.stdout)


@pytest.mark.slow
def test_pressing_each_button_runs_its_macro_with_the_right_command(
    pressed: tuple[Path, dict[str, Any]],
) -> None:
    _, result = pressed
    modules = result["libraries"].get(VBA_PROJECT_NAME)
    assert modules is not None, f"no VBA project imported: {result['libraries']}"
    assert {"Buttons", "xlwings", "ThisWorkbook"} <= set(modules)

    buttons = result["buttons"]
    dashboard = layout.sheet_title("dashboard", "en")
    assert [b["sheet"] for b in buttons] == [dashboard] * len(layout.BUTTON_MACROS)
    assert [b["label"] for b in buttons] == [
        layout.text(f"button.{macro}", "en") for macro in layout.BUTTON_MACROS
    ]
    for button, macro in zip(buttons, layout.BUTTON_MACROS, strict=True):
        url = (
            f"vnd.sun.star.script:{VBA_PROJECT_NAME}.Buttons.{macro}"
            "?language=Basic&location=document"
        )
        assert button["events"] == [["XActionListener", "actionPerformed", "Script", url]]
        assert "press" in button["actions"]
        assert button["before"] == ""
        assert button["after"] == EXPECTED_COMMANDS[macro], macro


@pytest.mark.slow
def test_formula_looking_names_arrive_as_text_in_libreoffice(
    pressed: tuple[Path, dict[str, Any]],
) -> None:
    _, result = pressed
    cells = result["cells"]
    for key in ("customers", "watchlist", "care", "advocates", "followups"):
        assert cells[layout.sheet_title(key, "en")]["formula_cells"] == 0, key
    shown = cells[layout.sheet_title("customers", "en")]["formula_looking_text"]
    assert set(HOSTILE_NAMES) <= set(shown)


@pytest.mark.slow
def test_the_pressed_commands_run_in_python(
    pressed: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, result = pressed
    monkeypatch.setenv("CRM_BATCH_CONFIG", str(folder / "crm_batch.toml"))
    for name in ("CRM_BATCH_DATABASE_URL", "CRM_BATCH_REPORTS_DIR", "CRM_BATCH_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    outcomes: dict[str, list[dict[str, Any]]] = {}
    with remote_engine(monkeypatch):
        for button in result["buttons"]:
            book = remote_book(workbook_path(folder, TEAM))
            monkeypatch.setattr(xlwings.Book, "caller", classmethod(lambda cls, b=book: b))
            exec(button["after"], {})  # what xlwings' RunPython runs
            outcomes[button["label"]] = actions(book)

    for label, done in outcomes.items():
        shown = [a["args"] for a in done if a["func"] == "alert"]
        assert len(shown) == 1, (label, done)
        prompt, title, _, mode, _ = shown[0]
        assert (title, mode) == (label, "info"), prompt
    refresh = outcomes[layout.text("button.RefreshData", "en")]
    assert {a["func"] for a in refresh} >= {"resizeTable", "setValues", "setNameRefersTo"}
    save = outcomes[layout.text("button.SaveFollowups", "en")]
    assert save[0]["args"][0].startswith("Nothing to save")
    pdf = outcomes[layout.text("button.MakeMyPdf", "en")][0]["args"][0]
    path = Path(pdf.split(": ", 1)[1])
    assert path.parent == folder / "output" / "reports"
    assert path.read_bytes().startswith(b"%PDF-")
