"""Write a team's ``.xlsm``: Dashboard, the table sheets, buttons, VBA project, then verify.

XlsxWriter writes the file (about twice as fast as openpyxl, and the only Python writer
that creates VBA projects, form-control buttons, tables, data validation and conditional
formats together). Its ``constant_memory`` mode cannot hold tables, so each sheet is
kept in memory until the file is closed: about 10 KB per customer (200 MB for a
20,000-customer team) on top of the interpreter.

Safety: every text cell is written with ``write_string`` after
:func:`~crm_batch.excel.cells.cell_text`, and XlsxWriter's string guessing (formulas,
numbers, URLs) is off, so database text is never a formula. Dates are Excel serial
numbers with a date format (real dates for Excel and for openpyxl).

The workbook is read back by :func:`~crm_batch.excel.verify.verify_workbook` before
:func:`build_team_workbook` returns; callers replace the live workbook only after that.
Staff-input cells are not locked and the sheets are not protected: protected sheets
cannot be sorted or filtered, and staff need both (inputs are merged back by customer
id, not position, so sorting is safe).
"""

from __future__ import annotations

import gc
import io
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from types import MethodType

import pandas as pd
import xlsxwriter
from xlsxwriter.exceptions import XlsxWriterException

from crm_batch import resources
from crm_batch.app.followups import StaffInput
from crm_batch.excel import layout
from crm_batch.excel.cells import (
    CellReport,
    WorkbookError,
    check_row_limit,
    formula_text,
)
from crm_batch.excel.dashboard import DashboardCell, dashboard_cells, write_dashboard
from crm_batch.excel.layout import Column, OrphanedNote
from crm_batch.excel.printing import setup_table_print
from crm_batch.excel.sheet_values import display_width, sheet_columns, sheet_rows
from crm_batch.excel.styles import Formats, money_format, number_format
from crm_batch.excel.teamdata import TeamWorkbookData
from crm_batch.excel.vba.project import (
    VbaModule,
    build_vba_project,
    excel_document_modules,
    read_module_file,
    standalone_xlwings_modules,
)
from crm_batch.excel.verify import TableSummary, WorkbookSummary, ids_checksum, verify_workbook
from crm_batch.kpi.playbook import label

__all__ = [
    "SHIPPED_VBA_DIR",
    "DashboardCell",
    "TableSummary",
    "WorkbookSummary",
    "build_team_workbook",
    "dashboard_cells",
    "default_vba_modules",
    "money_format",
    "number_format",
    "sheet_rows",
    "verify_workbook",
]

log = logging.getLogger(__name__)

#: The VBA sources shipped with crm-batch (located by :mod:`crm_batch.resources`).
SHIPPED_VBA_DIR = resources.VBA_DIR
VBA_PROJECT_NAME = "CrmTeamWorkbook"
TABLE_STYLE = "Table Style Medium 2"
MAX_WIDTH = 60
MIN_WIDTH = 6
#: Rows of text considered when fitting a column's width (the widest of a sample is
#: close enough; scanning a million notes is not worth it).
WIDTH_SAMPLE = 1_000
#: Teams up to this many customers are assembled in memory (see :func:`_write_book`).
IN_MEMORY_MAX_ROWS = 5_000
#: Next-contact dates accepted by the data validation: from this many days before T.
NEXT_CONTACT_PAST_DAYS = 30


def default_vba_modules(vba_dir: Path | None = None) -> list[VbaModule]:
    """The button modules (every ``*.bas``/``*.cls`` in ``vba_dir``, default
    :data:`SHIPPED_VBA_DIR`) and xlwings' own standalone modules."""
    return list(_default_modules(vba_dir or SHIPPED_VBA_DIR))


@cache
def _default_modules(vba_dir: Path) -> tuple[VbaModule, ...]:
    files = sorted(p for p in vba_dir.glob("*") if p.suffix.lower() in {".bas", ".cls"})
    if not any(p.name == "Buttons.bas" for p in files):
        raise WorkbookError(
            f"{vba_dir / 'Buttons.bas'} not found: the team workbooks' button macros ship "
            "in the crm-batch repository's workbooks/vba/ folder and in its wheel; "
            "reinstall crm-batch"
        )
    return (*(read_module_file(p) for p in files), *standalone_xlwings_modules())


@cache
def _vba_project(modules: tuple[VbaModule, ...]) -> bytes:
    """The vbaProject.bin of ``modules`` plus the workbook's document modules (cached:
    every team workbook has the same project)."""
    documents = excel_document_modules([layout.SHEET_CODE_NAMES[k] for k in layout.SHEETS])
    return build_vba_project([*documents, *modules], VBA_PROJECT_NAME)


@contextmanager
def _without_cycle_collector() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a workbook is built.

    XlsxWriter stores every cell as a small tuple in a dict per row: a 20,000-customer
    team allocates about a million container objects, and each 700 allocations trigger
    a collection that walks the young ones again (about 15 % of the build's CPU time),
    for nothing: cells hold no reference cycles. The workbook object graph itself is
    cyclic, so it is collected on the way out, before the next team's workbook takes
    the memory: a collection of the youngest generation suffices (everything allocated
    meanwhile is still in it) and does not walk the long-lived objects of the process
    (a full collection there costs about 60 ms per workbook). The previous collector
    state is restored even on errors.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect(0)


def _orphaned_frame(notes: Sequence[OrphanedNote]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([n.customer_id for n in notes], dtype="object"),
            "customer_name": pd.Series([n.customer_name for n in notes], dtype="object"),
            "current_team": pd.Series([n.current_team for n in notes], dtype="object"),
            "outcome": pd.Series([n.outcome for n in notes], dtype="object"),
            "note": pd.Series([n.note for n in notes], dtype="object"),
            "next_contact_date": pd.Series([n.next_contact_date for n in notes], dtype="object"),
            "entered_by": pd.Series([n.entered_by for n in notes], dtype="object"),
        }
    )


def build_team_workbook(
    data: TeamWorkbookData,
    path: str | Path,
    *,
    language: str | None = None,
    staff_inputs: Mapping[str, StaffInput] | None = None,
    orphaned: Sequence[OrphanedNote] = (),
    vba_modules: Sequence[VbaModule] | None = None,
    verify: bool = True,
) -> WorkbookSummary:
    """Write ``data`` as a complete ``.xlsm`` at ``path`` (only there) and verify it.

    ``staff_inputs`` (by customer id) fill the Follow-ups input columns; inputs of
    customers not in the team and ``orphaned`` notes go to the Orphaned notes sheet.
    ``vba_modules`` replaces :func:`default_vba_modules` (tests use a fake xlwings). Safe
    to call on a temp path: nothing else is touched. Raises :class:`WorkbookError` when
    the workbook cannot be written or does not read back as written.
    """
    started = time.perf_counter()
    language = layout.check_language(language or data.language)
    staff_inputs = dict(staff_inputs or {})
    team_ids = set(data.frames["followups"]["customer_id"])
    notes = list(orphaned)
    for cid, item in staff_inputs.items():
        if cid not in team_ids:
            notes.append(
                OrphanedNote(
                    cid, None, None, item.outcome, item.note, item.next_contact_date,
                    item.entered_by, item.sheet_row,
                )
            )  # fmt: skip
    frames = dict(data.frames)
    if notes:
        frames["orphaned"] = _orphaned_frame(notes)
    data = replace(data, frames=frames)
    modules = tuple(vba_modules) if vba_modules is not None else tuple(default_vba_modules())
    vba_bin = _vba_project(modules)
    report = CellReport()
    path = Path(path)
    defined = {
        layout.NAME_TEAM: data.team,
        layout.NAME_LANGUAGE: language,
        layout.NAME_AS_OF: data.as_of.isoformat(),
        layout.NAME_LAYOUT: str(layout.LAYOUT_VERSION),
    }
    with _without_cycle_collector():
        tables = _write_book(path, data, language, report, staff_inputs, defined, vba_bin)
        report.log(data.team)
        merged = sum(1 for cid in staff_inputs if cid in team_ids)
        summary = _summary(path, data, language, tables, defined, len(notes), merged, report)
        if verify:
            verify_workbook(path, summary)
    return replace(summary, seconds=time.perf_counter() - started)


def _summary(
    path: Path,
    data: TeamWorkbookData,
    language: str,
    tables: dict[str, TableSummary],
    defined: dict[str, str],
    orphaned: int,
    merged_inputs: int,
    report: CellReport,
) -> WorkbookSummary:
    """What was written: the expectation :func:`verify_workbook` checks the file against."""
    return WorkbookSummary(
        path=path,
        team=data.team,
        language=language,
        tables=tables,
        defined_names=defined,
        has_vba=True,
        buttons=layout.BUTTON_MACROS,
        orphaned=orphaned,
        merged_inputs=merged_inputs,
        cell_changes={k: report.count(k) for k in ("truncated", "surrogate", "control")},
    )


def _write_book(
    path: Path,
    data: TeamWorkbookData,
    language: str,
    report: CellReport,
    staff_inputs: Mapping[str, StaffInput],
    defined: Mapping[str, str],
    vba_bin: bytes,
) -> dict[str, TableSummary]:
    """Write the workbook file at ``path`` and return its tables as written.

    XlsxWriter writes each of the about 30 XML parts to a temp file and zips those into
    ``path`` in ``close()``; for a small team that costs about 8 ms per workbook more than
    assembling the parts in memory (``in_memory``), for a big one in memory holds every
    sheet as Python text until it is zipped (50 MB more peak for 20,000 customers) and is
    no faster, so only teams up to :data:`IN_MEMORY_MAX_ROWS` customers are built in
    memory. ``path`` itself is written only by ``close()``.
    """
    book = xlsxwriter.Workbook(
        str(path),
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "in_memory": len(data.frames["customers"]) <= IN_MEMORY_MAX_ROWS,
        },
    )
    try:
        formats = Formats(book, data.currency)
        dashboard = book.add_worksheet(layout.sheet_title("dashboard", language))
        dashboard.set_vba_name(layout.SHEET_CODE_NAMES["dashboard"])
        tables: dict[str, TableSummary] = {}
        sheets = [k for k in layout.SHEETS if k != "dashboard" and k in data.frames]
        for key in sheets:
            tables[key] = _write_table_sheet(
                book, formats, data, key, language, report, staff_inputs
            )
        write_dashboard(book, dashboard, formats, data, language)
        for name, value in defined.items():
            book.define_name(name, "=" + formula_text(value, f"{name} ({value[:40]!r})"))
        book.set_properties(
            {
                "title": f"{layout.text('dashboard.title', language)}: {data.team}"[:250],
                "subject": f"{data.period_label} / {data.as_of.isoformat()}",
                "author": "crm-batch",
                "company": data.company_name[:250],
                "keywords": "crm-batch",
                "comments": f"crm-batch layout {layout.LAYOUT_VERSION}",
                "created": data.generated_at,
            }
        )
        book.set_custom_property("crm_layout_version", layout.LAYOUT_VERSION)
        book.add_vba_project(io.BytesIO(vba_bin), is_stream=True)
        book.set_vba_name("ThisWorkbook")
        dashboard.activate()
    except XlsxWriterException as exc:
        raise WorkbookError(f"team {data.team!r}: cannot build workbook {path}: {exc}") from exc
    try:  # nothing is written to disk before close()
        book.close()
    except (XlsxWriterException, OSError) as exc:
        path.unlink(missing_ok=True)  # a half-written file is no workbook
        raise WorkbookError(f"team {data.team!r}: cannot write workbook {path}: {exc}") from exc
    _release_cells(book)
    return tables


def _release_cells(book: xlsxwriter.Workbook) -> None:
    """Free the cells of a closed workbook now, by reference counting.

    XlsxWriter keeps each sheet's cells (``table``) and a table's cell-by-cell overlap
    map (``table_cells``) in plain dicts, and the workbook object graph is cyclic, so
    without this they wait for the cycle collector, which would first walk all of them
    (about 7 % of a 20,000-customer build). Only dicts are cleared, after ``close()``
    wrote the file; an XlsxWriter without these attributes is left to the collector.
    """
    for sheet in book.worksheets():
        for name in ("table", "table_cells"):
            store = getattr(sheet, name, None)
            if isinstance(store, dict):
                store.clear()


def _write_table_sheet(
    book: xlsxwriter.Workbook,
    formats: Formats,
    data: TeamWorkbookData,
    key: str,
    language: str,
    report: CellReport,
    staff_inputs: Mapping[str, StaffInput],
) -> TableSummary:
    title = layout.sheet_title(key, language)
    sheet = book.add_worksheet(title)
    sheet.set_vba_name(layout.SHEET_CODE_NAMES[key])
    cols, values = sheet_columns(
        data,
        key,
        language,
        report=report,
        staff_inputs=staff_inputs if key == "followups" else None,
    )
    rows = len(values[0]) if values else 0
    check_row_limit(data.team, title, rows)
    write_string, write_number = _fast_writers(sheet)
    for c, (column, column_values) in enumerate(zip(cols, values, strict=True)):
        fmt = formats.kind[column.kind]
        if column.kind == "text":
            for r, value in enumerate(column_values, start=1):
                if value is not None:
                    write_string(r, c, value)  # type: ignore[arg-type]
        else:
            for r, value in enumerate(column_values, start=1):
                if type(value) is float:
                    if value == value:  # not NaN
                        write_number(r, c, value, fmt)
                elif isinstance(value, str):  # an input that is not a date, kept as typed
                    write_string(r, c, value)
                elif value is not None and not (isinstance(value, float) and math.isnan(value)):
                    write_number(r, c, float(value), fmt)  # type: ignore[arg-type]
    headers = tuple(column.label(language) for column in cols)
    last_row = max(rows, 1)
    table_columns = []
    for column, header in zip(cols, headers, strict=True):
        entry: dict[str, object] = {"header": header}
        if column.input and key == "followups":
            entry["header_format"] = formats.input_header
        elif column.key in layout.STATUS_COLUMNS and key == "followups":
            entry["header_format"] = formats.status_header
        if formats.kind[column.kind] is not None:
            entry["format"] = formats.kind[column.kind]
        table_columns.append(entry)
    sheet.add_table(
        0,
        0,
        last_row,
        len(cols) - 1,
        {
            "name": layout.TABLE_NAMES[key],
            "style": TABLE_STYLE,
            "autofilter": True,
            "columns": table_columns,
        },
    )
    # the identifying columns (ID, and the name where it is wide): frozen on screen,
    # repeated on every printed page across
    fixed = 2 if key in {"customers", "followups", "watchlist"} else 1
    sheet.freeze_panes(1, fixed)
    widths = [
        _width(column, header, column_values, formats)
        for column, header, column_values in zip(cols, headers, values, strict=True)
    ]
    for c, width in enumerate(widths):
        sheet.set_column(c, c, width)
    setup_table_print(sheet, last_row, widths, fixed)
    by_key = {column.key: i for i, column in enumerate(cols)}
    _conditional_formats(sheet, formats, key, by_key, rows, language, data)
    if key == "followups":
        _input_validation(sheet, formats, by_key, last_row, language, data)
    ids = values[0] if values else []
    return TableSummary(
        name=layout.TABLE_NAMES[key],
        sheet_key=key,
        sheet_title=title,
        ref=xlsxwriter.utility.xl_range(0, 0, last_row, len(cols) - 1),
        rows=rows,
        headers=headers,
        ids_sha256=ids_checksum(ids),
    )


def _fast_writers(
    sheet: xlsxwriter.worksheet.Worksheet,
) -> tuple[Callable[..., object], Callable[..., object]]:
    """``write_string`` and ``write_number`` of ``sheet`` without the decorator that
    accepts "A1" cell names (``functools.wraps`` keeps the plain method as
    ``__wrapped__``): row/column numbers only, about 10 % faster per cell."""
    kind = type(sheet)
    plain_string = getattr(kind.write_string, "__wrapped__", None)
    plain_number = getattr(kind.write_number, "__wrapped__", None)
    if plain_string is None or plain_number is None:
        return sheet.write_string, sheet.write_number
    return MethodType(plain_string, sheet), MethodType(plain_number, sheet)


def _width(column: Column, header: str, values: list[object], formats: Formats) -> float:
    """Fit to the header (plus the filter button) and the content, within limits."""
    widest = display_width(header) + 3
    if column.kind == "text":
        sample = values if len(values) <= WIDTH_SAMPLE else values[:WIDTH_SAMPLE]
        # longest first: a text is at most twice as wide as long, so once that cannot
        # beat the widest so far, no shorter one can either
        for value in sorted({v for v in sample if v is not None}, key=len, reverse=True):  # type: ignore[arg-type]
            if widest >= MAX_WIDTH or 2 * min(len(value), MAX_WIDTH) + 1 <= widest:  # type: ignore[arg-type]
                break
            widest = max(widest, display_width(value[:MAX_WIDTH]) + 1)  # type: ignore[index]
    elif column.kind == "money":
        finite = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v)]
        biggest = max(finite, default=0.0)
        widest = max(widest, len(f"{biggest:,.2f}") + 4)
    elif column.kind in {"date"}:
        widest = max(widest, 11)
    elif column.kind == "datetime":
        widest = max(widest, 17)
    else:
        widest = max(widest, column.width)
    if column.input:
        widest = max(widest, column.width)
    return float(min(max(widest, MIN_WIDTH), MAX_WIDTH))


def _conditional_formats(
    sheet: xlsxwriter.worksheet.Worksheet,
    formats: Formats,
    key: str,
    by_key: Mapping[str, int],
    rows: int,
    language: str,
    data: TeamWorkbookData,
) -> None:
    if rows == 0:
        return
    level_column = by_key.get("churn_warning_level", by_key.get("level"))
    if level_column is not None and key in {"customers", "watchlist"}:
        for level, fmt in formats.level.items():
            text = label(level, language)
            sheet.conditional_format(
                1, level_column, rows, level_column,
                {"type": "cell", "criteria": "==", "value": formula_text(text, "label"),
                 "format": fmt},
            )  # fmt: skip
    if "revenue_at_risk" in by_key:
        c = by_key["revenue_at_risk"]
        sheet.conditional_format(
            1, c, rows, c, {"type": "data_bar", "bar_color": "#F8696B", "bar_solid": True}
        )
    if key == "customers":
        c = by_key["recency_days"]
        sheet.conditional_format(
            1, c, rows, c,
            {"type": "3_color_scale", "min_color": "#63BE7B", "mid_color": "#FFEB84",
             "max_color": "#F8696B"},
        )  # fmt: skip
    if key == "care":
        c = by_key["is_due"]
        sheet.conditional_format(
            1, c, rows, c,
            {"type": "cell", "criteria": "==",
             "value": formula_text(layout.text("yes", language), "label"), "format": formats.due},
        )  # fmt: skip
    if key == "followups":
        first, last = by_key["outcome"], by_key["entered_by"]
        sheet.conditional_format(
            1, first, rows, last, {"type": "no_errors", "format": formats.input_fill}
        )
        c = by_key["save_problem"]
        sheet.conditional_format(1, c, rows, c, {"type": "no_blanks", "format": formats.problem})
        c = by_key["next_contact_date"]
        sheet.conditional_format(
            1, c, rows, c,
            {"type": "cell", "criteria": "between", "minimum": 1,
             "maximum": _serial(data.as_of), "format": formats.overdue},
        )  # fmt: skip


def _serial(day: object) -> int:
    return (pd.Timestamp(day) - pd.Timestamp("1899-12-30")).days


def _input_validation(
    sheet: xlsxwriter.worksheet.Worksheet,
    formats: Formats,
    by_key: Mapping[str, int],
    last_row: int,
    language: str,
    data: TeamWorkbookData,
) -> None:
    """Drop-down, date and length rules on the Follow-ups input columns."""
    c = by_key["outcome"]
    sheet.data_validation(
        1, c, last_row, c,
        {"validate": "list", "source": layout.outcome_labels(language), "ignore_blank": True,
         "input_title": layout.text("validation.outcome.title", language),
         "input_message": layout.text("validation.outcome.message", language),
         "error_title": layout.text("validation.outcome.title", language),
         "error_message": layout.text("validation.outcome.message", language)},
    )  # fmt: skip
    c = by_key["next_contact_date"]
    earliest = datetime.combine(data.as_of, datetime.min.time()) - timedelta(
        days=NEXT_CONTACT_PAST_DAYS
    )
    sheet.data_validation(
        1, c, last_row, c,
        {"validate": "date", "criteria": ">=", "value": earliest, "ignore_blank": True,
         "error_type": "warning",
         "input_title": layout.text("validation.date.title", language),
         "input_message": layout.text("validation.date.message", language),
         "error_title": layout.text("validation.date.title", language),
         "error_message": layout.text("validation.date.message", language)},
    )  # fmt: skip
    c = by_key["entered_by"]
    sheet.data_validation(
        1, c, last_row, c,
        {"validate": "length", "criteria": "<=", "value": layout.ENTERED_BY_MAX_LENGTH,
         "ignore_blank": True,
         "input_title": layout.text("validation.entered_by.title", language),
         "input_message": layout.text("validation.entered_by.message", language),
         "error_title": layout.text("validation.entered_by.title", language),
         "error_message": layout.text("validation.entered_by.message", language)},
    )  # fmt: skip
