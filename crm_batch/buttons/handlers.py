"""The three button handlers and the frame they share: the workbook that called, and
every failure turned into a message box in the workbook's language.

Expected failures (bad settings, database down, a table deleted) end in a message box
and a log line, never in a Python traceback; an unexpected error gets a short message
naming the log file, with the traceback in the log (``<data_dir>/logs/buttons.log``
when Excel started Python).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

from crm_batch.buttons.followups import save_typed_followups
from crm_batch.buttons.pdf import make_team_pdf
from crm_batch.buttons.refresh_data import refresh_open_workbook
from crm_batch.buttons.settings import (
    ButtonContext,
    book_name,
    language_or_default,
    workbook_context,
)
from crm_batch.config import Settings
from crm_batch.errors import CrmBatchError
from crm_batch.excel import layout
from crm_batch.i18n.workbook_texts import BUTTON_TEXTS
from crm_batch.logs import LOG_FORMAT, SecretMaskingFilter, mask_secrets

if TYPE_CHECKING:
    import xlwings

log = logging.getLogger(__name__)

_ACTIONS: dict[str, str] = {
    "refresh": "button.RefreshData",
    "save_followups": "button.SaveFollowups",
    "make_pdf": "button.MakeMyPdf",
}


@dataclass(frozen=True)
class ButtonResult:
    """What a button did: whether it succeeded and the message shown to staff."""

    ok: bool
    message: str


def refresh(book: xlwings.Book | None = None, *, as_of: date | None = None) -> ButtonResult:
    """Refresh data: recompute this team's figures and rewrite the computed sheets.

    The business date is ``as_of`` or the default business date
    (:func:`crm_batch.app.dates.default_business_date`, as the nightly run). The
    Customers, Watchlist, Care and Advocates tables are rewritten from
    :func:`crm_batch.excel.sheet_values.sheet_rows`; the Follow-ups table gets fresh
    computed columns while the staff input and status cells move with their customer
    (by id, :func:`crm_batch.buttons.refresh_data.followup_rows`); the Dashboard's
    computed cells (:func:`crm_batch.buttons.dashboard.refresh_dashboard`) and
    ``crm_as_of`` are updated.
    """
    return _run("refresh", book, lambda ctx: refresh_open_workbook(ctx, as_of))


def save_followups(
    book: xlwings.Book | None = None, *, now: datetime | None = None
) -> ButtonResult:
    """Save follow-ups: validate the Follow-ups rows and store them in the database.

    Uses the same row rules and insert as the nightly harvest
    (:mod:`crm_batch.excel.staff_rows`, :mod:`crm_batch.app.followups`), so a row saved
    here is never stored again at night. Each row with input gets ``saved_at`` (when
    it was first stored) or a ``save_problem`` saying what to correct.
    """
    return _run("save_followups", book, lambda ctx: save_typed_followups(ctx, now))


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
    return _run("make_pdf", book, lambda ctx: make_team_pdf(ctx, as_of, open_file))


# -- the frame every button shares -----------------------------------------------------


def _run(
    action: str, book: xlwings.Book | None, work: Callable[[ButtonContext], str]
) -> ButtonResult:
    """Run ``work`` on the calling workbook; turn every failure into a message box."""
    if book is None:
        import xlwings

        book = xlwings.Book.caller()
    language = language_or_default(book)
    title = layout.text(_ACTIONS[action], language)
    log_file: Path | None = None
    try:
        context = workbook_context(book)
        log_file = _log_to_file(context.settings)
        log.info("button %s: team %r, workbook %s", action, context.team, book_name(book))
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
