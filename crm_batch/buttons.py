"""The Python behind the team workbook's buttons: Refresh data, Save follow-ups, Make my PDF.

Each Dashboard button runs a macro of ``workbooks/vba/Buttons.bas`` that calls xlwings'
``RunPython "import crm_batch.buttons as b; b.<action>()"``. xlwings starts Python;
the handler gets the open workbook from ``xlwings.Book.caller()`` and changes it through
xlwings only: the workbook is open in Excel, so it is never written as a file here, and
what staff typed but did not save yet stays in place.

* The workbook names its team in the workbook-scope name ``crm_team`` and its language in
  ``crm_language`` (never taken from the file name, which staff may change).
* Settings come from ``$CRM_BATCH_CONFIG`` when set, else from the nearest
  ``crm_batch.toml`` in the workbook's folder or one of its parents (the default layout
  keeps workbooks in ``output/workbooks`` below the settings file). A workbook opened
  from a web location (SharePoint/OneDrive URL) or through xlwings Server has no folder:
  set ``CRM_BATCH_CONFIG`` there.
* Expected failures (bad settings, database down, a table deleted) end in a message box
  in the workbook's language and a log line, never in a Python traceback; an unexpected
  error gets a short message naming the log file, with the traceback in the log
  (``<data_dir>/logs/buttons.log`` when Excel started Python).

Tables are found by their Excel table names and columns by their headers in either
language, so staff may sort, filter, move columns and rename tabs; the Dashboard is
rewritten from the workbook writer's own cell list once its labels are found in place.

Text cells: a string written through xlwings is parsed like typed input, so ``=1+1``,
``+``/``-``/``@`` prefixes and ``00123`` would become formulas or numbers. Every text
column's cells get the Text number format (``@``) before their values are written, and
a string that lands in a non-text column gets ``@`` on its own cell first.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import webbrowser
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_batch.config import CONFIG_FILE_NAME, ENV_CONFIG, Settings, load_settings
from crm_batch.errors import CrmBatchError, ExitCode
from crm_batch.excel import layout
from crm_batch.excel.cells import clean_text
from crm_batch.excel.layout import StaffInput
from crm_batch.i18n.workbook_texts import BUTTON_TEXTS
from crm_batch.logs import LOG_FORMAT, SecretMaskingFilter, mask_secrets

if TYPE_CHECKING:
    import xlwings

    from crm_batch.app.kpis import KpiRun
    from crm_batch.excel.teamdata import TeamWorkbookData

log = logging.getLogger(__name__)

#: The computed sheets Refresh rewrites (their tables are rebuilt from the database).
COMPUTED_SHEETS: tuple[str, ...] = ("customers", "watchlist", "care", "advocates")

#: Excel number formats by column kind, set on the cells the buttons write: Text for text
#: (ids stay "00123", names never become formulas), real dates and numbers otherwise.
#: Refresh uses the workbook writer's formats where it has one (:func:`number_formats`).
NUMBER_FORMATS: dict[str, str] = {
    "text": "@",
    "int": "#,##0",
    "money": "#,##0.00",
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
    "percent": "0.0%",
    "score": "0",
}


_ACTIONS: dict[str, str] = {
    "refresh": "button.RefreshData",
    "save_followups": "button.SaveFollowups",
    "make_pdf": "button.MakeMyPdf",
}


class WorkbookLayoutError(CrmBatchError):
    """The open workbook lacks a name, table or column the buttons need."""

    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class ButtonResult:
    """What a button did: whether it succeeded and the message shown to staff."""

    ok: bool
    message: str


@dataclass(frozen=True)
class ButtonContext:
    """The open workbook and what it says about itself, with the settings it runs under."""

    book: xlwings.Book
    team: str
    language: str
    as_of: date | None  # the data date of the workbook (crm_as_of), None if absent
    settings: Settings


# -- the three buttons -----------------------------------------------------------------


def refresh(book: xlwings.Book | None = None, *, as_of: date | None = None) -> ButtonResult:
    """Refresh data: recompute this team's figures and rewrite the computed sheets.

    The business date is ``as_of`` or yesterday in the configured timezone (as the
    nightly run). The Customers, Watchlist, Care and Advocates tables are rewritten from
    :func:`crm_batch.excel.teamdata.sheet_rows`; the Follow-ups table gets fresh computed
    columns while the staff input and status cells move with their customer (by id);
    the Dashboard's computed cells (:func:`dashboard_cells`) and ``crm_as_of`` are
    updated.
    """
    return _run("refresh", book, lambda ctx: _refresh(ctx, as_of))


def save_followups(
    book: xlwings.Book | None = None, *, now: datetime | None = None
) -> ButtonResult:
    """Save follow-ups: validate the Follow-ups rows and store them in the database.

    Uses the same row rules and insert as the nightly harvest
    (:mod:`crm_batch.excel.harvest`), so a row saved here is never stored again at
    night. Each row with input gets ``saved_at`` (when it was first stored) or a
    ``save_problem`` saying what to correct.
    """
    return _run("save_followups", book, lambda ctx: _save_followups(ctx, now))


def make_pdf(
    book: xlwings.Book | None = None, *, as_of: date | None = None, open_file: bool = True
) -> ButtonResult:
    """Make my PDF: render this team's diagnosis report and open it.

    The report is of ``as_of``, else of the workbook's data date (``crm_as_of``, so it
    matches what the workbook shows), else of yesterday; rendered afresh from the
    database and written to the reports folder like the nightly reports. On a desktop it
    opens in the default PDF viewer; with xlwings Server (no desktop next to Python) the
    message names the file instead.
    """
    return _run("make_pdf", book, lambda ctx: _make_pdf(ctx, as_of, open_file))


# -- the frame every button shares -----------------------------------------------------


def _run(
    action: str, book: xlwings.Book | None, work: Callable[[ButtonContext], str]
) -> ButtonResult:
    """Run ``work`` on the calling workbook; turn every failure into a message box."""
    if book is None:
        import xlwings

        book = xlwings.Book.caller()
    language = _language_or_default(book)
    title = layout.text(_ACTIONS[action], language)
    log_file: Path | None = None
    try:
        context = workbook_context(book)
        log_file = _log_to_file(context.settings)
        log.info("button %s: team %r, workbook %s", action, context.team, _book_name(book))
        message = work(context)
    except CrmBatchError as exc:
        return _fail(book, title, language, str(exc))
    except OSError as exc:
        # a file that cannot be written (report open in a viewer, folder missing, full
        # disk): the message names the file
        reason = f"{exc.filename or ''}: {exc.strerror or exc}"
        if isinstance(exc, PermissionError):
            reason += " (is the file open in another program? Close it and try again)"
        return _fail(book, title, language, reason)
    except Exception as exc:
        database = _database_error(exc)
        if database is not None:
            return _fail(book, title, language, database)
        log.exception("button %s failed unexpectedly", action)
        where = str(log_file) if log_file else BUTTON_TEXTS.text("error.no_log", language)
        message = BUTTON_TEXTS.text(
            "error.unexpected", language, action=title, kind=type(exc).__name__, log=where
        )
        _alert(book, message, title, critical=True)
        return ButtonResult(False, message)
    log.info("button %s done: %s", action, message or "(no message)")
    if message:
        _alert(book, message, title)
    return ButtonResult(True, message)


def _fail(book: xlwings.Book, title: str, language: str, reason: str) -> ButtonResult:
    reason = mask_secrets(reason)
    log.error("%s: %s", title, reason)
    message = BUTTON_TEXTS.text("error.expected", language, action=title, reason=reason)
    _alert(book, message, title, critical=True)
    return ButtonResult(False, message)


def _database_error(exc: Exception) -> str | None:
    """A one-line reason for a database driver error (server down, lost connection)."""
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(exc, SQLAlchemyError):
        return None
    origin = getattr(exc, "orig", None) or exc
    lines = str(origin).strip().splitlines()
    return f"database error: {lines[0] if lines else type(origin).__name__}"


def _alert(book: xlwings.Book, message: str, title: str, *, critical: bool = False) -> None:
    """A message box in Excel (an ``alert`` action with xlwings Server)."""
    try:
        book.app.alert(message, title=title, mode="critical" if critical else "info")
    except Exception:  # no Excel to show it (a script, a test double): the log has it
        log.warning("could not show a message box; message was: %s", message)


_NOISY_LOGGERS = ("fontTools", "weasyprint", "matplotlib", "PIL")


def _log_to_file(settings: Settings) -> Path | None:
    """Log to ``<data_dir>/logs/buttons.log`` when nothing else configured logging.

    Excel starts Python without a console, so without this the log would be lost; under
    the CLI or pytest the existing handlers stay in charge.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    if root.handlers:
        return None
    path = settings.data_dir / "logs" / "buttons.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.addFilter(SecretMaskingFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in _NOISY_LOGGERS:  # as the CLI's logging set-up: their INFO is chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


# -- what the workbook says about itself -----------------------------------------------


def workbook_context(book: xlwings.Book) -> ButtonContext:
    """Team, language and data date from the workbook's names, and the settings."""
    team = defined_text(book, layout.NAME_TEAM)
    if not team:
        raise WorkbookLayoutError(
            f"this workbook has no team: the name {layout.NAME_TEAM} is missing or empty "
            "(was the workbook made by crm-batch? Formulas > Name Manager shows it)"
        )
    language = layout.check_language(defined_text(book, layout.NAME_LANGUAGE) or "zh-CN")
    as_of_text = defined_text(book, layout.NAME_AS_OF)
    try:
        as_of = date.fromisoformat(as_of_text) if as_of_text else None
    except ValueError:
        raise WorkbookLayoutError(
            f"the name {layout.NAME_AS_OF} holds {as_of_text!r}, not a date (YYYY-MM-DD)"
        ) from None
    settings = button_settings(book)
    return ButtonContext(book, team, language, as_of, settings)


def _language_or_default(book: xlwings.Book) -> str:
    try:
        language = defined_text(book, layout.NAME_LANGUAGE)
    except Exception:  # the message language must never be the reason a button fails
        return "zh-CN"
    return language if language in layout.LANGUAGES else "zh-CN"


def defined_text(book: xlwings.Book, name: str) -> str | None:
    """The text constant a workbook-scope name holds (``="North"`` -> ``North``)."""
    for defined in book.names:
        if defined.name == name:
            return formula_constant(defined.refers_to)
    return None


def formula_constant(refers_to: str | None) -> str | None:
    """The text of a name's constant: ``="North"`` gives ``North`` (doubled quotes undone);
    anything else (a number, a formula) is returned without its ``=``."""
    if refers_to is None:
        return None
    text = refers_to[1:] if refers_to.startswith("=") else refers_to
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def config_file_for(book: xlwings.Book, environ: Mapping[str, str] | None = None) -> Path | None:
    """The settings file a button uses: ``$CRM_BATCH_CONFIG``, else the nearest
    ``crm_batch.toml`` in the workbook's folder or a parent folder; None if neither."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    folder = _book_folder(book)
    if folder is None:
        return None
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE_NAME
        if path.is_file():
            return path
    return None


def button_settings(book: xlwings.Book) -> Settings:
    """The settings for a button press (see :func:`config_file_for`)."""
    path = config_file_for(book)
    if path is None:
        where = _book_folder(book)
        raise WorkbookLayoutError(
            f"no settings found: set the environment variable {ENV_CONFIG} to your "
            f"{CONFIG_FILE_NAME}, or put {CONFIG_FILE_NAME} in the workbook's folder "
            f"{'(' + str(where) + ') ' if where else ''}or a folder above it"
        )
    if os.environ.get(ENV_CONFIG):
        return load_settings()  # reads $CRM_BATCH_CONFIG and names it in any error
    return load_settings(path, cwd=path.parent)


def _book_folder(book: xlwings.Book) -> Path | None:
    """The folder of the workbook's file; None for an unsaved book or a web location."""
    try:
        fullname = book.fullname
    except Exception:
        return None
    if not fullname or "://" in fullname:
        return None
    path = Path(fullname)
    return path.parent if path.is_absolute() else None


def _book_name(book: xlwings.Book) -> str:
    try:
        return str(book.name)
    except Exception:
        return "(unnamed)"


def business_date(settings: Settings) -> date:
    """Yesterday in the configured timezone: the last complete day, as the nightly run."""
    return datetime.now(settings.tz).date() - timedelta(days=1)


# -- tables in the open workbook -------------------------------------------------------


@dataclass
class TableView:
    """One Excel table of the open workbook as read through xlwings.

    ``keys`` has the column key of each table column (by its header, in either language;
    None for a column the layout does not know, e.g. one staff added); ``rows`` every
    body row in sheet order, so ``rows[i]`` is sheet row ``first_body_row + i`` (empty
    when the body holds no value at all).
    """

    sheet: Any
    table: Any
    sheet_key: str
    header_row: int
    first_column: int
    keys: list[str | None]
    rows: list[list[Any]]

    @property
    def first_body_row(self) -> int:
        return self.header_row + 1

    def column_of(self, key: str) -> int | None:
        """0-based position of column ``key`` in the table, None when absent."""
        return self.keys.index(key) if key in self.keys else None

    def require(self, keys: Iterable[str]) -> None:
        missing = [key for key in keys if key not in self.keys]
        if missing:
            labels = ", ".join(_column_label(self.sheet_key, key) for key in missing)
            raise WorkbookLayoutError(
                f"the table {self.table.name} lacks its column(s) {labels}: was a column "
                "deleted or its header changed? Restore the header or use a fresh workbook"
            )

    def cells(self, row: Sequence[Any]) -> dict[str, Any]:
        """One body row by column key (unknown columns left out)."""
        return {key: value for key, value in zip(self.keys, row, strict=False) if key}


def _column_label(sheet_key: str, key: str) -> str:
    for column in layout.columns(sheet_key):
        if column.key == key:
            return f"'{column.labels['en']}' ({column.labels['zh-CN']})"
    return key


def read_table(book: xlwings.Book, sheet_key: str) -> TableView:
    """The table of ``sheet_key`` found by its stable name (tabs may be renamed)."""
    table_name = layout.TABLE_NAMES[sheet_key]
    for sheet in book.sheets:
        for table in sheet.tables:
            if table.name == table_name:
                return _view(sheet, table, sheet_key)
    raise WorkbookLayoutError(
        f"this workbook has no table named {table_name} (the {layout.sheet_title(sheet_key, 'en')}"
        " sheet's table): was it deleted or renamed? Use a fresh workbook from the nightly run"
    )


def _view(sheet: Any, table: Any, sheet_key: str) -> TableView:
    header = table.header_row_range
    if header is None:
        raise WorkbookLayoutError(f"the table {table.name} has its header row turned off")
    headers = header.options(ndim=2).value[0]
    keys = [layout.header_key(sheet_key, h) if isinstance(h, str) else None for h in headers]
    body = table.data_body_range
    rows: list[list[Any]] = [] if body is None else body.options(ndim=2).value
    rows = [list(row) for row in rows]
    if all(_blank(value) for row in rows for value in row):
        rows = []  # an empty table keeps one blank body row: it holds no data
    return TableView(sheet, table, sheet_key, header.row, header.column, keys, rows)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def write_table(
    view: TableView,
    columns: Sequence[layout.Column],
    rows: Sequence[Sequence[Any]],
    formats: Mapping[str, str] = NUMBER_FORMATS,
) -> int:
    """Replace the body of ``view``'s table with ``rows`` (values in ``columns`` order).

    Columns are matched by key, so a table whose columns staff reordered is written
    correctly; a table column not in ``columns`` is written empty. The table is resized
    to the new row count (one blank row when there are none), rows it gives up are
    cleared, and each column gets its kind's number format (``formats``) before the
    values are written: Text for text columns, so no string is ever taken for a formula
    or a number. Returns the number of rows written.
    """
    position = {column.key: i for i, column in enumerate(columns)}
    kinds = {column.key: column.kind for column in columns}
    ordered = [
        [_cell_value(row[position[key]]) if key in position else None for key in view.keys]
        for row in rows
    ]
    width = len(view.keys)
    body_rows = max(len(ordered), 1)
    sheet, top, left = view.sheet, view.first_body_row, view.first_column
    old_rows = 0 if view.table.data_body_range is None else view.table.data_body_range.shape[0]
    bottom = top + body_rows - 1
    view.table.resize(sheet.range((view.header_row, left), (bottom, left + width - 1)))
    if old_rows > body_rows:
        sheet.range((bottom + 1, left), (top + old_rows - 1, left + width - 1)).clear()
    column_formats = [formats[kinds.get(key or "", "text")] for key in view.keys]
    for first, last, number_format in _runs(column_formats):
        sheet.range((top, left + first), (bottom, left + last)).number_format = number_format
    for offset, number_format in enumerate(column_formats):
        if number_format != "@":
            # a string in a numeric or date column (hostile data, a kept typo) stays text
            for index, row in enumerate(ordered):
                if isinstance(row[offset], str):
                    sheet.range((top + index, left + offset)).number_format = "@"
    if ordered:
        sheet.range((top, left), (top + len(ordered) - 1, left + width - 1)).value = ordered
    else:
        sheet.range((top, left), (top, left + width - 1)).clear_contents()
    return len(ordered)


def _runs(values: Sequence[str]) -> list[tuple[int, int, str]]:
    """Runs of equal neighbours as (first index, last index, value): one format call per
    run of columns instead of one per column (each call is a round trip to Excel)."""
    runs: list[tuple[int, int, str]] = []
    for index, value in enumerate(values):
        if runs and runs[-1][2] == value and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index, value)
        else:
            runs.append((index, index, value))
    return runs


def number_formats(currency: str) -> dict[str, str]:
    """The number format of each column kind: the workbook writer's
    (:func:`crm_batch.excel.styles.number_format`), except Text (``@``) for text, which
    the writer gets by writing strings as strings and xlwings only by the format."""
    from crm_batch.excel.styles import number_format

    return {kind: number_format(kind, currency) or NUMBER_FORMATS[kind] for kind in NUMBER_FORMATS}


def _cell_value(value: Any) -> Any:
    """A Python value as xlwings should write it: text cleaned, NaN/NA empty."""
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    try:
        import pandas as pd

        if pd.isna(value):
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item") and not isinstance(value, (date, datetime)):
        return value.item()  # numpy scalars
    return value


def write_column(view: TableView, key: str, values: Sequence[Any], number_format: str) -> None:
    """Write one column of ``view``'s current body rows (``values`` in row order)."""
    offset = view.column_of(key)
    if offset is None or not values:
        return
    column = view.first_column + offset
    top = view.first_body_row
    target = view.sheet.range((top, column), (top + len(values) - 1, column))
    target.number_format = number_format
    target.options(ndim=2).value = [[_cell_value(v)] for v in values]


# -- Refresh ---------------------------------------------------------------------------


def _refresh(ctx: ButtonContext, as_of: date | None) -> str:
    from crm_batch.app.engines import build_engine
    from crm_batch.app.kpis import run_kpis, snapshot_period
    from crm_batch.excel import harvest, teamdata

    # read every table first: a workbook missing one fails before anything is computed
    views = {key: read_table(ctx.book, key) for key in (*COMPUTED_SHEETS, "followups")}
    views["followups"].require(("customer_id", *layout.INPUT_COLUMNS, *layout.STATUS_COLUMNS))
    day = as_of or business_date(ctx.settings)
    engine = build_engine(ctx.settings)
    try:
        run = run_kpis(ctx.settings, engine, day, snapshot_period(day), teams=[ctx.team])
        customers = run.reports[ctx.team].customers["customer_id"]
        followups = harvest.latest_followups(engine, customers)
        history = teamdata.read_history(engine, day)
    finally:
        engine.dispose()
    data = teamdata.team_workbook_data(
        run, ctx.team, followups, ctx.settings, history=history, language=ctx.language
    )

    formats = number_formats(ctx.settings.currency)
    counts: dict[str, int] = {}
    for key in COMPUTED_SHEETS:
        columns, rows = teamdata.sheet_rows(data, key, ctx.language)
        counts[key] = write_table(views[key], columns, rows, formats)
    columns, rows, kept = followup_rows(views["followups"], data, run, ctx.language)
    counts["followups"] = write_table(views["followups"], columns, rows, formats)
    dashboard = refresh_dashboard(ctx.book, data, ctx.language)
    _set_name(ctx.book, layout.NAME_AS_OF, day.isoformat())
    message = BUTTON_TEXTS.text(
        "refresh.done",
        ctx.language,
        team=ctx.team,
        as_of=day.isoformat(),
        **{key: f"{count:,}" for key, count in counts.items()},
    )
    if kept:
        message += " " + BUTTON_TEXTS.text("refresh.kept", ctx.language, count=kept)
    if not dashboard:
        message += " " + BUTTON_TEXTS.text("refresh.dashboard_kept", ctx.language)
    return message


def followup_rows(
    view: TableView, data: TeamWorkbookData, run: KpiRun, language: str
) -> tuple[tuple[layout.Column, ...], list[list[Any]], int]:
    """The new Follow-ups rows with what staff typed in the open workbook merged back.

    The same rules as the nightly rebuild: the workbook's input cells are parsed with
    :func:`crm_batch.excel.harvest.parse_staff_row` and merged by customer id through
    :func:`crm_batch.excel.teamdata.sheet_rows` (a customer's row keeps its input, else
    shows the latest stored follow-up). Unsaved rows the new table has no place for
    (customers who left the team, a second row of the same customer) are appended at
    the end exactly as they were, so nothing typed is lost before it is saved. Returns
    (columns, rows, appended count).
    """
    from crm_batch.excel import harvest, teamdata

    inputs = []
    original: dict[int, list[Any]] = {}
    for index, row in enumerate(view.rows):
        cells = view.cells(row)
        if harvest.has_input(cells):
            sheet_row = view.first_body_row + index
            inputs.append(harvest.parse_staff_row(cells, sheet_row, language))
            original[sheet_row] = row
    matched, orphaned = teamdata.split_staff_inputs(data, inputs, run)
    # a typed next-contact "date" that is no date stays text; sheet_rows holds only dates
    # there, so such rows get their cells back as typed, with the problem shown
    as_typed = {cid: item for cid, item in matched.items() if _unparsed_date(item)}
    shown = {cid: item for cid, item in matched.items() if cid not in as_typed}
    columns, rows = teamdata.sheet_rows(data, "followups", language, staff_inputs=shown)
    if as_typed:
        position = {column.key: i for i, column in enumerate(columns)}
        for row in rows:
            item = as_typed.get(str(row[position["customer_id"]]))
            if item is not None:
                cells = view.cells(original[item.sheet_row])
                for key in layout.INPUT_COLUMNS:
                    row[position[key]] = cells.get(key)
                row[position["saved_at"]] = None
                row[position["save_problem"]] = item.problem
    kept = 0
    for note in orphaned:
        cells = view.cells(original.get(note.sheet_row, []))
        if note.sheet_row in original and _blank(cells.get("saved_at")):
            rows.append([cells.get(column.key) for column in columns])
            kept += 1
    return columns, rows, kept


def _unparsed_date(item: StaffInput) -> bool:
    """Whether the row's next-contact cell holds something that is not a date."""
    return item.next_contact_date is None and not _blank(item.raw.get("next_contact_date"))


# -- the Dashboard -----------------------------------------------------------------------

_LANGUAGE_INDEX = {language: index for index, language in enumerate(layout.LANGUAGES)}


def refresh_dashboard(book: xlwings.Book, data: TeamWorkbookData, language: str) -> bool:
    """Rewrite the Dashboard's cells from :func:`crm_batch.excel.dashboard.dashboard_cells`
    (the list the workbook writer writes): values, number formats, font colours and the
    notes on previous values. The chart reads the trend cells, so it follows by itself.

    The list places cells by position, so it is used only when the open Dashboard has
    every fixed label (titles, captions, KPI names) where the list expects it: a
    workbook made by another crm-batch version, or one whose Dashboard staff changed,
    keeps its Dashboard until the nightly rebuild (returns False, logged).
    """
    from crm_batch.excel.dashboard import dashboard_cells
    from crm_batch.excel.styles import PREVIOUS_COLOUR

    sheet = _dashboard_sheet(book, language)
    cells = dashboard_cells(data, language)
    used = sheet.used_range
    grid = used.options(ndim=2).value

    def shown(row: int, column: int) -> Any:  # 0-based, as the list counts
        r, c = row + 1 - used.row, column + 1 - used.column
        return grid[r][c] if 0 <= r < len(grid) and 0 <= c < len(grid[r]) else None

    no_previous = layout.text("dashboard.no_previous", language)
    fixed = _fixed_labels(language) - {no_previous}
    moved = [c for c in cells if c.value in fixed and shown(c.row, c.col) != c.value]
    if moved:
        log.warning(
            "Dashboard of this workbook is laid out differently (e.g. %r not at row %d, "
            "column %d): left for the nightly rebuild",
            moved[0].value,
            moved[0].row + 1,
            moved[0].col + 1,
        )
        return False
    for cell in cells:
        if cell.value in fixed:
            continue  # a label, already in place
        target = sheet.range((cell.row + 1, cell.col + 1))
        if isinstance(cell.value, str):
            target.number_format = "@"
        elif cell.num_format:
            target.number_format = cell.num_format
        target.value = _cell_value(cell.value)
        colour = cell.font_color or (PREVIOUS_COLOUR if cell.value == no_previous else None)
        if colour:
            target.font.color = colour
        if cell.note is not None or cell.style == "tile_blank":
            _set_note(target, cell.note)  # a tile's previous value and its date
    return True


def _fixed_labels(language: str) -> set[str]:
    """The Dashboard's fixed texts: the workbook's texts and the KPI names."""
    from crm_batch.kpi.definitions import registry

    texts = {pair[_LANGUAGE_INDEX[language]] for pair in layout.texts().values()}
    return texts | {kpi.label(language) for kpi in registry().values()}


def _set_note(target: Any, text: str | None) -> None:
    """Give ``target`` the note ``text`` (None: no note)."""
    note = target.note
    if text is None:
        if note is not None:
            note.delete()
    elif note is not None:
        note.text = text
    else:
        try:
            target.add_note(text)
        except NotImplementedError:  # xlwings Server with a client that cannot add notes
            log.debug("cannot add a note to %s on this engine", target.address)


def _dashboard_sheet(book: xlwings.Book, language: str) -> Any:
    """The Dashboard: the sheet holding the workbook's title text (tabs may be renamed)."""
    title = layout.text("dashboard.title", language)
    for sheet in book.sheets:
        if sheet.name == layout.sheet_title("dashboard", language):
            return sheet
    for sheet in book.sheets:
        values = sheet.range("A1:C3").options(ndim=2).value
        if any(value == title for row in values for value in row):
            return sheet
    raise WorkbookLayoutError(
        f"this workbook has no Dashboard sheet (a sheet with {title!r} at its top)"
    )


def _set_name(book: xlwings.Book, name: str, value: str) -> None:
    constant = '="' + value.replace('"', '""') + '"'
    for defined in book.names:
        if defined.name == name:
            defined.refers_to = constant
            return
    book.names.add(name, constant)


# -- Save follow-ups -------------------------------------------------------------------


def _save_followups(ctx: ButtonContext, now: datetime | None) -> str:
    from crm_batch.app.engines import build_engine
    from crm_batch.excel import harvest

    view = read_table(ctx.book, "followups")
    view.require(("customer_id", *layout.INPUT_COLUMNS, *layout.STATUS_COLUMNS))
    inputs = []
    for index, row in enumerate(view.rows):
        cells = view.cells(row)
        if harvest.has_input(cells):
            sheet_row = view.first_body_row + index
            inputs.append(harvest.parse_staff_row(cells, sheet_row, ctx.language))
    if not inputs:
        return BUTTON_TEXTS.text("save.nothing", ctx.language)
    stamp = (now or datetime.now(ctx.settings.tz)).replace(tzinfo=None, microsecond=0)
    engine = build_engine(ctx.settings)
    try:
        result = harvest.store_followups(
            engine, ctx.team, inputs, source_workbook=_book_name(ctx.book), now=stamp
        )
    finally:
        engine.dispose()

    outcome = {
        staff.sheet_row: (saved, staff.problem)
        for staff, saved in zip(inputs, result.saved_at, strict=True)
    }
    saved_column = view.column_of("saved_at")
    problem_column = view.column_of("save_problem")
    saved_at: list[Any] = []
    problems: list[Any] = []
    for index, row in enumerate(view.rows):
        if view.first_body_row + index in outcome:
            saved, problem = outcome[view.first_body_row + index]
            saved_at.append(saved)
            problems.append(problem)
        else:  # no input: the row's status stays as it is
            saved_at.append(row[saved_column] if saved_column is not None else None)
            problems.append(row[problem_column] if problem_column is not None else None)
    write_column(view, "saved_at", saved_at, NUMBER_FORMATS["datetime"])
    write_column(view, "save_problem", problems, NUMBER_FORMATS["text"])

    bad = [staff.sheet_row for staff in inputs if staff.problem]
    message = BUTTON_TEXTS.text(
        "save.done", ctx.language, inserted=result.inserted, already=result.already_stored
    )
    if bad:
        rows = ", ".join(str(n) for n in bad[:20]) + (" …" if len(bad) > 20 else "")
        message += " " + BUTTON_TEXTS.text("save.problems", ctx.language, count=len(bad), rows=rows)
    return message


# -- Make my PDF -----------------------------------------------------------------------


def _make_pdf(ctx: ButtonContext, as_of: date | None, open_file: bool) -> str:
    from crm_batch.app.engines import build_engine
    from crm_batch.app.kpis import run_kpis, snapshot_period
    from crm_batch.reports.diagnosis import write_diagnosis

    day = as_of or ctx.as_of or business_date(ctx.settings)
    engine = build_engine(ctx.settings)
    try:
        run = run_kpis(ctx.settings, engine, day, snapshot_period(day), teams=[ctx.team])
    finally:
        engine.dispose()
    report = write_diagnosis(ctx.settings, run, ctx.team, ctx.language)
    log.info("diagnosis report of %r written to %s", ctx.team, report.pdf)
    if open_file and _is_desktop(ctx.book) and open_document(report.pdf):
        return ""
    return BUTTON_TEXTS.text("pdf.ready", ctx.language, path=report.pdf)


def _is_desktop(book: xlwings.Book) -> bool:
    """Whether Excel runs on this machine (not xlwings Server's remote engine)."""
    try:
        return book.app.engine.name not in {"remote", "officejs", "calamine"}
    except Exception:
        return False


def open_document(path: Path) -> bool:
    """Open ``path`` in the desktop's default application; False when that failed."""
    try:
        if sys.platform.startswith("win"):
            os.startfile(path)  # type: ignore[attr-defined]
        elif sys.platform == "darwin":
            subprocess.run(["open", str(path)], check=True, timeout=30)
        else:
            return webbrowser.open(path.as_uri())
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not open %s: %s", path, exc)
        return False
    return True
