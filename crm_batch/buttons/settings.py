"""What an open team workbook says about itself, and the settings a button runs under.

The workbook names its team in the workbook-scope name ``crm_team``, its language in
``crm_language`` and its data date in ``crm_as_of`` (never taken from the file name,
which staff may change). Settings come from ``$CRM_BATCH_CONFIG`` when set, else from
the nearest ``crm_batch.toml`` in the workbook's folder or one of its parents (the
default layout keeps workbooks in ``output/workbooks`` below the settings file). A
workbook opened from a web location (SharePoint/OneDrive URL) or through xlwings Server
has no folder: set ``CRM_BATCH_CONFIG`` there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from crm_batch.config import CONFIG_FILE_NAME, ENV_CONFIG, Settings, load_settings
from crm_batch.errors import CrmBatchError, ExitCode
from crm_batch.excel import layout

if TYPE_CHECKING:
    import xlwings


class WorkbookLayoutError(CrmBatchError):
    """The open workbook lacks a name, table or column the buttons need."""

    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class ButtonContext:
    """The open workbook and what it says about itself, with the settings it runs under."""

    book: xlwings.Book
    team: str
    language: str
    as_of: date | None  # the data date of the workbook (crm_as_of), None if absent
    settings: Settings


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


def language_or_default(book: xlwings.Book) -> str:
    """The workbook's language for messages; zh-CN when it cannot be read."""
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
    folder = book_folder(book)
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
        where = book_folder(book)
        raise WorkbookLayoutError(
            f"no settings found: set the environment variable {ENV_CONFIG} to your "
            f"{CONFIG_FILE_NAME}, or put {CONFIG_FILE_NAME} in the workbook's folder "
            f"{'(' + str(where) + ') ' if where else ''}or a folder above it"
        )
    if os.environ.get(ENV_CONFIG):
        return load_settings()  # reads $CRM_BATCH_CONFIG and names it in any error
    return load_settings(path, cwd=path.parent)


def book_folder(book: xlwings.Book) -> Path | None:
    """The folder of the workbook's file; None for an unsaved book or a web location."""
    try:
        fullname = book.fullname
    except Exception:
        return None
    if not fullname or "://" in fullname:
        return None
    path = Path(fullname)
    return path.parent if path.is_absolute() else None


def book_name(book: xlwings.Book) -> str:
    """The workbook's name for logs and the follow-ups' source column."""
    try:
        return str(book.name)
    except Exception:
        return "(unnamed)"
