"""The Refresh button's rewrite of the open workbook's Dashboard.

The cells come from :func:`crm_batch.excel.dashboard.dashboard_cells`, the list the
workbook writer writes, so the Dashboard after a Refresh is the one the nightly rebuild
would write; it is rewritten only once its fixed labels are found in place.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crm_batch.buttons.settings import WorkbookLayoutError
from crm_batch.buttons.tables import cell_value
from crm_batch.excel import layout
from crm_batch.excel.dashboard import dashboard_cells
from crm_batch.excel.styles import PREVIOUS_COLOUR
from crm_batch.excel.teamdata import TeamWorkbookData
from crm_batch.kpi.definitions import registry

if TYPE_CHECKING:
    import xlwings

log = logging.getLogger(__name__)


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
        target.value = cell_value(cell.value)
        colour = cell.font_color or (PREVIOUS_COLOUR if cell.value == no_previous else None)
        if colour:
            target.font.color = colour
        if cell.note is not None or cell.style == "tile_blank":
            _set_note(target, cell.note)  # a tile's previous value and its date
    return True


def _fixed_labels(language: str) -> set[str]:
    """The Dashboard's fixed texts: the workbook's texts and the KPI names."""
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


def set_name(book: xlwings.Book, name: str, value: str) -> None:
    """Make the workbook-scope name ``name`` hold the text constant ``value``."""
    constant = '="' + value.replace('"', '""') + '"'
    for defined in book.names:
        if defined.name == name:
            defined.refers_to = constant
            return
    book.names.add(name, constant)
