"""How the team workbook prints: A4 landscape, readable, the header row on every page.

Without a page setup, Excel and WPS print a wide table column block by column block
(the Xiamen workbook came out as 238 pages) and the Dashboard over 3 pages. Fitting a
wide table to one page wide made it unreadable instead: the Customers sheet's 21 columns
printed at about half size. So a table sheet prints one page wide only when that keeps
the print scale at :data:`MIN_SCALE` or more; a wider one spans as few pages across as
keep that scale (:func:`pages_wide`), each page repeating the header row and the
identifying columns (customer ID and name), printed row block by row block ("over, then
down"), so the pages of one block of customers come one after the other.

The page header and footer use Excel's codes only (file name, sheet name, page numbers),
never text from the database, so no team or customer name can inject a header code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xlsxwriter.worksheet import Worksheet

#: XlsxWriter's paper code for A4.
A4 = 9
#: Left: the workbook's file name and the sheet; right: page x of y.
HEADER = "&L&F · &A&R&P / &N"
#: Margins in inches (Excel's unit): narrow, so more columns fit a page.
MARGINS = {"left": 0.4, "right": 0.4, "top": 0.6, "bottom": 0.5}
#: Width of A4 landscape between the margins, in inches.
PRINTABLE_INCHES = 297 / 25.4 - MARGINS["left"] - MARGINS["right"]
#: Smallest print scale of a table sheet: below it the text (11 pt on screen) prints
#: under 7 pt, too small to read on paper.
MIN_SCALE = 0.6


def column_inches(width: float) -> float:
    """A column's printed width at 100 %: Excel's width in characters of the default
    font (Calibri 11: 7 pixels a character plus 5 of padding) at 96 pixels an inch."""
    return (width * 7 + 5) / 96


def pages_wide(widths: Sequence[float], repeat_columns: int) -> int:
    """Pages across that print columns of ``widths`` at :data:`MIN_SCALE` or more: 1
    when the whole table fits, else the fewest pages that fit it with the first
    ``repeat_columns`` printed again on every page after the first."""
    total = sum(column_inches(width) for width in widths)
    if total * MIN_SCALE <= PRINTABLE_INCHES:
        return 1
    repeated = sum(column_inches(width) for width in widths[:repeat_columns])
    room = PRINTABLE_INCHES / MIN_SCALE - repeated  # what a page adds after the first
    if room <= 0:
        return len(widths)
    return max(2, math.ceil((total - repeated) / room))


def setup_table_print(
    sheet: Worksheet, last_row: int, widths: Sequence[float], repeat_columns: int
) -> int:
    """A data sheet: its table (columns of ``widths``) as the print area, landscape, the
    header row on every page, as many pages tall as it needs and :func:`pages_wide`
    pages across; over one page across, the first ``repeat_columns`` columns print on
    every page and the pages go across, then down. Returns the pages across."""
    _page(sheet)
    sheet.print_area(0, 0, last_row, len(widths) - 1)
    sheet.repeat_rows(0)
    wide = pages_wide(widths, repeat_columns)
    sheet.fit_to_pages(wide, 0)
    if wide > 1:
        sheet.repeat_columns(0, repeat_columns - 1)
        sheet.print_across()
    return wide


def setup_dashboard_print(sheet: Worksheet) -> None:
    """The Dashboard: its tiles, trend table and chart on one landscape page."""
    _page(sheet)
    sheet.fit_to_pages(1, 1)


def _page(sheet: Worksheet) -> None:
    sheet.set_paper(A4)
    sheet.set_landscape()
    sheet.set_margins(**MARGINS)
    sheet.set_header(HEADER)
