"""The Dashboard sheet: title, KPI tiles with the change on the previous period, the
buttons bound to the VBA macros, and a native chart of the monthly trend.

:func:`dashboard_cells` is the single list of every cell the Dashboard shows (value,
number format, font colour, merge); the writer writes exactly that list, and the xlwings
Refresh button rewrites the same cells in an open workbook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from crm_batch.excel import layout
from crm_batch.excel.cells import cell_text
from crm_batch.excel.printing import setup_dashboard_print
from crm_batch.excel.styles import (
    CHANGE_FORMATS,
    MOOD_COLOURS,
    PREVIOUS_COLOUR,
    Formats,
    number_format,
    tile_formats,
    whole_money_format,
)
from crm_batch.excel.teamdata import TeamWorkbookData
from crm_batch.kpi.definitions import registry

TILE_COLUMNS = 4  # tiles per row; each tile is 2 columns wide, 3 rows high + a gap row
TILE_FIRST_ROW = 7
BUTTON_COLUMN = 10  # column K
TREND_FIRST_COLUMN = 1  # column B: month, then revenue and active customers


@dataclass(frozen=True)
class DashboardCell:
    """One Dashboard cell: 0-based row/column, value (text, number, or None = blank),
    Excel number format and font colour (None = General / the theme's), the last row and
    column when the cell is merged over a range, the writer's style role, and a note."""

    row: int
    col: int
    value: str | float | None
    num_format: str | None = None
    font_color: str | None = None
    merge_to_col: int | None = None
    merge_to_row: int | None = None
    style: str = "plain"
    note: str | None = None


def trend_rows(data: TeamWorkbookData) -> tuple[int, int, int]:
    """(header row, first data row, last data row) of the trend block (0-based)."""
    tiles_rows = math.ceil(len(data.tiles) / TILE_COLUMNS) * 4
    header = TILE_FIRST_ROW + tiles_rows + 2
    return header, header + 1, header + len(data.trend)


def dashboard_cells(data: TeamWorkbookData, language: str) -> list[DashboardCell]:
    """Every cell of the Dashboard computed from ``data``, in ``language``."""
    t = lambda key: layout.text(key, language)  # noqa: E731
    cell = DashboardCell
    period = (
        f"{data.period_label} ({data.period_start.isoformat()} – {data.period_end.isoformat()})"
    )
    cells = [
        cell(0, 1, t("dashboard.title"), style="title"),
        cell(2, 1, t("dashboard.team"), style="label"),
        cell(2, 2, cell_text(data.team), style="bold"),
        cell(3, 1, t("dashboard.as_of"), style="label"),
        cell(3, 2, data.as_of.isoformat(), style="bold"),
        cell(4, 1, t("dashboard.period"), style="label"),
        cell(4, 2, period),
        cell(2, 5, t("dashboard.generated"), style="label"),
        cell(2, 6, data.generated_at.strftime("%Y-%m-%d %H:%M")),
        cell(TILE_FIRST_ROW - 1, 1, t("dashboard.kpis"), style="section"),
        cell(TILE_FIRST_ROW - 1, BUTTON_COLUMN, t("dashboard.buttons"), style="section"),
        cell(
            TILE_FIRST_ROW + 6, BUTTON_COLUMN, t("dashboard.hint"), style="hint",
            merge_to_row=TILE_FIRST_ROW + 9, merge_to_col=BUTTON_COLUMN + 2,
        ),
    ]  # fmt: skip
    kpis = registry()
    units = tile_formats(data.currency)
    for index, tile in enumerate(data.tiles):
        kpi = kpis[tile.name]
        row = TILE_FIRST_ROW + (index // TILE_COLUMNS) * 4
        col = 1 + (index % TILE_COLUMNS) * 2
        unit = kpi.unit if kpi.unit in units else "score"
        cells.append(cell(row, col, kpi.label(language), merge_to_col=col + 1, style="tile_label"))
        current = tile.current if math.isfinite(tile.current) else "–"
        cells.append(
            cell(
                row + 1, col, current, units[unit], merge_to_col=col + 1,
                style=f"tile_value:{unit}", note=None if tile.missing else tile.note or None,
            )
        )  # fmt: skip
        if tile.missing:  # no data (an optional table is not mapped): say why, no change
            cells.append(
                cell(row + 2, col, tile.note, font_color=PREVIOUS_COLOUR, style="tile_blank")
            )
            cells.append(cell(row + 2, col + 1, None, style="tile_blank"))
            continue
        change = tile.change
        if change is None:
            cells.append(cell(row + 2, col, t("dashboard.no_previous"), style="tile_blank"))
            cells.append(cell(row + 2, col + 1, None, style="tile_blank"))
            continue
        mood = _mood(change, kpi.direction)
        kind = "points" if tile.change_is_points else "relative"
        shown = change * 100 if tile.change_is_points else change
        cells.append(
            cell(row + 2, col, shown, CHANGE_FORMATS[kind], MOOD_COLOURS[mood],
                 style=f"tile_change:{kind}:{mood}")
        )  # fmt: skip
        when = tile.previous_as_of.isoformat() if tile.previous_as_of else ""
        cells.append(
            cell(row + 2, col + 1, tile.previous, units[unit], PREVIOUS_COLOUR,
                 style=f"tile_prev:{unit}", note=f"{t('dashboard.previous')}: {when}")
        )  # fmt: skip
    header, first, _ = trend_rows(data)
    # the grey figures are labelled on the sheet, not only in their hover notes
    legend_row = TILE_FIRST_ROW + math.ceil(len(data.tiles) / TILE_COLUMNS) * 4
    cells.append(
        cell(legend_row, 1, t("dashboard.tiles_legend"), style="hint",
             merge_to_col=2 * TILE_COLUMNS)
    )  # fmt: skip
    c = TREND_FIRST_COLUMN
    cells += [
        cell(header - 1, c, t("dashboard.trend"), style="section"),
        cell(header, c, t("dashboard.month"), style="header"),
        cell(header, c + 1, t("dashboard.trend_revenue"), style="header"),
        cell(header, c + 2, t("dashboard.trend_active"), style="header"),
    ]
    money, count = number_format("money", data.currency), number_format("int", data.currency)
    for i, record in enumerate(data.trend.itertuples(index=False)):
        r = first + i
        revenue = record.revenue_12m if math.isfinite(record.revenue_12m) else None
        active = record.active_count if math.isfinite(record.active_count) else None
        cells += [
            cell(r, c, float(_serial(record.month)), "yyyy-mm", style="month"),
            cell(r, c + 1, revenue, money, style="kind:money"),
            cell(r, c + 2, active, count, style="kind:int"),
        ]
    return cells


def _serial(day: object) -> int:
    """A date as an Excel serial day number."""
    return (pd.Timestamp(day) - pd.Timestamp("1899-12-30")).days


def _style(formats: Formats, role: str) -> object:
    """The XlsxWriter format of a style role of :class:`DashboardCell`."""
    kind, _, rest = role.partition(":")
    if kind == "tile_value":
        return formats.tile_value[rest]
    if kind == "tile_prev":
        return formats.tile_prev[rest]
    if kind == "tile_change":
        change, _, mood = rest.partition(":")
        return formats.tile_change[(change, mood)]
    if kind == "kind":
        return formats.kind[rest]
    return None if kind == "plain" else getattr(formats, kind)


def write_dashboard(
    book: xlsxwriter.Workbook,
    sheet: Worksheet,
    formats: Formats,
    data: TeamWorkbookData,
    language: str,
) -> None:
    """Fill the Dashboard ``sheet``: :func:`dashboard_cells`, the buttons of
    :data:`layout.BUTTON_MACROS` and the trend chart."""
    sheet.hide_gridlines(2)
    setup_dashboard_print(sheet)
    sheet.set_column(0, 0, 2)
    # tiles and the trend table share columns B..I: one width that fits both
    sheet.set_column(1, 2 * TILE_COLUMNS, 16)
    sheet.set_column(BUTTON_COLUMN, BUTTON_COLUMN + 2, 14)
    for row in range(
        TILE_FIRST_ROW, TILE_FIRST_ROW + math.ceil(len(data.tiles) / TILE_COLUMNS) * 4, 4
    ):
        sheet.set_row(row, 30)  # tile labels may wrap to two lines
    for item in dashboard_cells(data, language):
        fmt = _style(formats, item.style)
        if item.merge_to_col is not None or item.merge_to_row is not None:
            last_row = item.merge_to_row if item.merge_to_row is not None else item.row
            last_col = item.merge_to_col if item.merge_to_col is not None else item.col
            sheet.merge_range(item.row, item.col, last_row, last_col, "", fmt)
        if isinstance(item.value, str):
            sheet.write_string(item.row, item.col, item.value, fmt)
        elif item.value is None:
            sheet.write_blank(item.row, item.col, None, fmt)
        else:
            sheet.write_number(item.row, item.col, item.value, fmt)
        if item.note:
            sheet.write_comment(item.row, item.col, item.note)
    t = lambda key: layout.text(key, language)  # noqa: E731
    for index, macro in enumerate(layout.BUTTON_MACROS):
        sheet.insert_button(
            TILE_FIRST_ROW + index * 2, BUTTON_COLUMN,
            {"macro": macro, "caption": t(f"button.{macro}"), "width": 200, "height": 32,
             "x_offset": 2, "y_offset": 2},
        )  # fmt: skip
    header, first, last = trend_rows(data)
    sheet.set_row(header, 30)  # the trend headers wrap
    name = sheet.get_name()
    month, revenue, active = TREND_FIRST_COLUMN, TREND_FIRST_COLUMN + 1, TREND_FIRST_COLUMN + 2
    column = book.add_chart({"type": "column"})
    column.add_series(
        {
            "name": [name, header, revenue],
            "categories": [name, first, month, last, month],
            "values": [name, first, revenue, last, revenue],
            "fill": {"color": "#5B9BD5"},
        }
    )
    line = book.add_chart({"type": "line"})
    line.add_series(
        {
            "name": [name, header, active],
            "categories": [name, first, month, last, month],
            "values": [name, first, active, last, active],
            "y2_axis": True,
            "marker": {"type": "circle", "size": 5},
            "line": {"color": "#ED7D31", "width": 2.25},
        }
    )
    column.combine(line)
    column.set_title({"name": t("dashboard.trend"), "name_font": {"size": 12}})
    column.set_x_axis({"date_axis": False, "num_format": "yyyy-mm"})
    column.set_y_axis(
        {
            "num_format": whole_money_format(data.currency),
            "major_gridlines": {"visible": True, "line": {"color": "#E7E6E6"}},
        }
    )
    line.set_y2_axis({"num_format": "#,##0"})
    column.set_legend({"position": "bottom"})
    column.show_blanks_as("gap")
    column.set_size({"width": 820, "height": 300})
    sheet.insert_chart(header - 1, TREND_FIRST_COLUMN + 4, column, {"x_offset": 10, "y_offset": 0})


def _mood(change: float, direction: str) -> str:
    if change == 0 or direction == "neutral":
        return "neutral"
    good = (change > 0) == (direction == "up")
    return "good" if good else "bad"
