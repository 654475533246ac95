"""Open a workbook in headless LibreOffice and press every form-control button in it.

Run by the system Python that has LibreOffice's UNO bridge (Debian: python3-uno), not by
the project's virtual environment: ``/usr/bin/python3 press_buttons.py BOOK.xlsm --cell
ZZ1``. Prints one JSON object on stdout:

* ``libraries``: the document's Basic libraries and their modules (the imported VBA
  project shows up as one library; an uncompilable module makes LibreOffice drop macros
  silently, so the test looks here first);
* ``cells``: per sheet, the number of formula cells and the texts that look like a
  formula (start with ``=``, ``+``, ``-``, ``@``), read before any button is pressed;
* ``buttons``: for each form control, in draw-page order: ``sheet``, ``label``,
  ``events`` (the script bindings LibreOffice imported from the workbook, as
  [listener, method, script type, script URL]), ``before`` (the watched cell's text
  before the press, after clearing it) and ``after`` (its text after the press).

A press is a real one: the control's view (what a user clicks) performs its
accessibility "press" action, which fires the same action event a mouse click fires,
and LibreOffice runs whatever macro the workbook bound to the button. The watched cell
(``--cell`` on ``--sheet``, default the first sheet) is where the workbook's test
variant of ``RunPython`` writes its command.

One soffice process with a throw-away profile serves the whole run and is always ended.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uno  # type: ignore[import-not-found]  # the system python3-uno
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]

#: com.sun.star.document.MacroExecMode.ALWAYS_EXECUTE_NO_WARN: a throw-away profile has
#: no trusted locations, and the test is about the workbook's own macros.
ALWAYS_EXECUTE_NO_WARN = 4


def _property(name: str, value: object) -> PropertyValue:
    prop = PropertyValue()
    prop.Name, prop.Value = name, value
    return prop


def _connect(pipe: str, process: subprocess.Popen, timeout: float):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            return resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
        except Exception:  # NoConnectException until soffice listens
            if process.poll() is not None:
                raise RuntimeError(f"soffice exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"soffice did not accept a connection in {timeout}s") from None
            time.sleep(0.2)


def _libraries(document) -> dict[str, list[str]]:
    libraries = document.BasicLibraries
    result: dict[str, list[str]] = {}
    for name in libraries.ElementNames:
        libraries.loadLibrary(name)
        result[name] = sorted(libraries.getByName(name).ElementNames)
    return result


def _wait_for_text(cell, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = cell.String
        if text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


#: com.sun.star.sheet.CellFlags.FORMULA
FORMULA_CELLS = 16
FORMULA_STARTS = ("=", "+", "-", "@")


def cell_kinds(document) -> dict[str, dict]:
    """Per sheet: how many formula cells it has and its text cells that look like one.

    A formula-looking name the workbook stores as text must arrive as text: with no
    formula cell on the sheet, every such string seen here is plain text.
    """
    result: dict[str, dict] = {}
    sheets = document.Sheets
    for index in range(sheets.Count):
        sheet = sheets.getByIndex(index)
        formulas = 0
        enumeration = sheet.queryContentCells(FORMULA_CELLS).getCells().createEnumeration()
        while enumeration.hasMoreElements():
            enumeration.nextElement()
            formulas += 1
        cursor = sheet.createCursor()
        cursor.gotoEndOfUsedArea(False)
        end = cursor.getRangeAddress()
        area = sheet.getCellRangeByPosition(0, 0, end.EndColumn, end.EndRow)
        looking = sorted(
            {
                value
                for row in area.getDataArray()
                for value in row
                if isinstance(value, str) and value.startswith(FORMULA_STARTS)
            }
        )
        result[sheet.Name] = {"formula_cells": formulas, "formula_looking_text": looking}
    return result


def press_all(document, sheet_name: str | None, cell_name: str, timeout: float) -> list[dict]:
    """Press every button of every sheet; the watched cell is cleared before each press."""
    sheets = document.Sheets
    watched_sheet = sheets.getByName(sheet_name) if sheet_name else sheets.getByIndex(0)
    cell = watched_sheet.getCellRangeByName(cell_name)
    controller = document.CurrentController
    pressed: list[dict] = []
    for index in range(sheets.Count):
        sheet = sheets.getByIndex(index)
        forms = sheet.DrawPage.Forms
        if forms.Count == 0:
            continue
        controller.setActiveSheet(sheet)  # control views exist for the shown sheet
        for form_index in range(forms.Count):
            form = forms.getByIndex(form_index)
            for control_index in range(form.Count):
                model = form.getByIndex(control_index)
                events = [
                    [e.ListenerType, e.EventMethod, e.ScriptType, e.ScriptCode]
                    for e in form.getScriptEvents(control_index)
                ]
                cell.String = ""
                before = cell.String
                view = controller.getControl(model)
                context = view.getAccessibleContext()
                actions = [
                    context.getAccessibleActionDescription(i)
                    for i in range(context.getAccessibleActionCount())
                ]
                if "press" in actions:
                    context.doAccessibleAction(actions.index("press"))
                after = _wait_for_text(cell, timeout)
                pressed.append(
                    {
                        "sheet": sheet.Name,
                        "name": model.Name,
                        "label": getattr(model, "Label", None),
                        "actions": actions,
                        "events": events,
                        "before": before,
                        "after": after,
                    }
                )
    return pressed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workbook", type=Path)
    parser.add_argument("--cell", default="ZZ1", help="the cell the test RunPython writes")
    parser.add_argument("--sheet", default=None, help="its sheet (default: the first)")
    parser.add_argument("--soffice", default=shutil.which("soffice") or "soffice")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per press")
    args = parser.parse_args()

    profile = Path(tempfile.mkdtemp(prefix="crm_lo_profile_"))
    pipe = f"crm_batch_test_{os.getpid()}"
    process = subprocess.Popen(
        [
            args.soffice,
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            "--nodefault",
            "--nolockcheck",
            f"-env:UserInstallation={profile.as_uri()}",
            f"--accept=pipe,name={pipe};urp;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    desktop = None
    try:
        context = _connect(pipe, process, timeout=60)
        desktop = context.ServiceManager.createInstanceWithContext(
            "com.sun.star.frame.Desktop", context
        )
        document = desktop.loadComponentFromURL(
            uno.systemPathToFileUrl(str(args.workbook.resolve())),
            "_blank",
            0,
            (_property("Hidden", True), _property("MacroExecutionMode", ALWAYS_EXECUTE_NO_WARN)),
        )
        if document is None:
            raise RuntimeError(f"LibreOffice could not open {args.workbook}")
        try:
            result = {
                "libraries": _libraries(document),
                "sheets": list(document.Sheets.ElementNames),
                "cells": cell_kinds(document),
                "buttons": press_all(document, args.sheet, args.cell, args.timeout),
            }
        finally:
            document.close(True)
    finally:
        if desktop is not None:
            with contextlib.suppress(Exception):  # the bridge drops while soffice quits
                desktop.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    json.dump(result, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
