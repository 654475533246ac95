"""How the team workbook prints: A4 landscape, one page wide, the header row on every page.

Without a page setup, Excel and WPS print a wide table column block by column block
(the Xiamen workbook came out as 238 pages) and the Dashboard over 3 pages. The page
header and footer use Excel's codes only (file name, sheet name, page numbers), never
text from the database, so no team or customer name can inject a header code.
"""

from __future__ import annotations

from xlsxwriter.worksheet import Worksheet

#: XlsxWriter's paper code for A4.
A4 = 9
#: Left: the workbook's file name and the sheet; right: page x of y.
HEADER = "&L&F · &A&R&P / &N"
#: Margins in inches (Excel's unit): narrow, so more columns fit a page.
MARGINS = {"left": 0.4, "right": 0.4, "top": 0.6, "bottom": 0.5}


def setup_table_print(sheet: Worksheet, last_row: int, last_column: int) -> None:
    """A data sheet: its table as the print area, fitted to one page wide (as many pages
    tall as it needs), landscape, the header row repeated on every page."""
    _page(sheet)
    sheet.print_area(0, 0, last_row, last_column)
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)


def setup_dashboard_print(sheet: Worksheet) -> None:
    """The Dashboard: its tiles, trend table and chart on one landscape page."""
    _page(sheet)
    sheet.fit_to_pages(1, 1)


def _page(sheet: Worksheet) -> None:
    sheet.set_paper(A4)
    sheet.set_landscape()
    sheet.set_margins(**MARGINS)
    sheet.set_header(HEADER)
