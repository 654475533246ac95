"""Excel tables of the open workbook through xlwings: found by name, read, rewritten.

Tables are found by their Excel table names and columns by their headers in either
language (:mod:`crm_batch.excel.layout`), so staff may sort, filter, move columns and
rename tabs.

Text cells: a string written through xlwings is parsed like typed input, so ``=1+1``,
``+``/``-``/``@`` prefixes and ``00123`` would become formulas or numbers. Every text
column's cells get the Text number format (``@``) before their values are written, and
a string that lands in a non-text column gets ``@`` on its own cell first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from crm_batch.buttons.settings import WorkbookLayoutError
from crm_batch.excel import layout, styles
from crm_batch.excel.cells import cell_text
from crm_batch.excel.staff_rows import is_blank

if TYPE_CHECKING:
    import xlwings

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
    "decimal": "0.00",
}


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
    if all(is_blank(value) for row in rows for value in row):
        rows = []  # an empty table keeps one blank body row: it holds no data
    return TableView(sheet, table, sheet_key, header.row, header.column, keys, rows)


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
        [cell_value(row[position[key]]) if key in position else None for key in view.keys]
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
    return {
        kind: styles.number_format(kind, currency) or NUMBER_FORMATS[kind]
        for kind in NUMBER_FORMATS
    }


def cell_value(value: Any) -> Any:
    """A Python value as xlwings should write it: text cleaned, NaN/NA empty."""
    if value is None:
        return None
    if isinstance(value, str):
        return cell_text(value)
    try:
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
    target.options(ndim=2).value = [[cell_value(v)] for v in values]
