"""The team workbook's cell formats and number formats (one set per workbook)."""

from __future__ import annotations

import re

import xlsxwriter
from xlsxwriter.format import Format

_CURRENCY_SYMBOLS = {
    "CNY": ("¥", 2),
    "RMB": ("¥", 2),
    "JPY": ("¥", 0),
    "USD": ("$", 2),
    "EUR": ("€", 2),
    "GBP": ("£", 2),
    "HKD": ("HK$", 2),
    "TWD": ("NT$", 0),
    "SGD": ("S$", 2),
    "KRW": ("₩", 0),
}


#: Number formats of the column kinds of :mod:`crm_batch.excel.layout` (money: see
#: :func:`money_format`; text: None, the General format).
KIND_FORMATS: dict[str, str | None] = {
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
    "int": "#,##0",
    "score": "0",
    "decimal": "0.00",
    "percent": "0.0%",
    "text": None,
}


def number_format(kind: str, currency: str) -> str | None:
    """The Excel number format of a column kind (what the writer gives its cells)."""
    return money_format(currency) if kind == "money" else KIND_FORMATS[kind]


TILE_FILL = "#F2F2F2"
PREVIOUS_COLOUR = "#7F7F7F"
#: Number formats of a tile's change: relative (counts, money) or in points (rates).
CHANGE_FORMATS = {
    "relative": '"▲ "+0.0%;"▼ "-0.0%;"= "0.0%',
    "points": '"▲ "+0.0" pp";"▼ "-0.0" pp";"= "0.0" pp"',
}
#: Font colours of a change that goes the KPI's good way, its bad way, or neither.
MOOD_COLOURS = {"good": "#007A33", "bad": "#C00000", "neutral": "#595959"}


def tile_formats(currency: str) -> dict[str, str]:
    """Number formats of the KPI tiles by registry unit."""
    return {
        "money": whole_money_format(currency),  # tiles show whole units, like the PDFs
        "count": "#,##0",
        "ratio": "0.0%",
        "ratio_delta": '+0.0" pp";-0.0" pp"',
        "days": '#,##0" d"',
        "score": "0.00",
    }


def whole_money_format(currency: str) -> str:
    """:func:`money_format` without the cents (and its negative section): for figures
    read at a glance, the Dashboard's tiles and its chart axis."""
    return re.sub(r"\.0+", "", money_format(currency).split(";")[0])


def money_format(currency: str) -> str:
    """An Excel number format for amounts in ``currency`` (symbol when known, else code)."""
    symbol, decimals = _CURRENCY_SYMBOLS.get(currency.upper(), (None, 2))
    number = "#,##0" + ("." + "0" * decimals if decimals else "")
    if symbol is None:
        safe = currency.replace('"', "")
        return f'{number} "{safe}";[Red]-{number} "{safe}"'
    return f'"{symbol}"{number};[Red]-"{symbol}"{number}'


class Formats:
    """The workbook's cell formats, created once per workbook."""

    def __init__(self, book: xlsxwriter.Workbook, currency: str) -> None:
        add = book.add_format
        self.money_format = money_format(currency)
        self.kind = {
            kind: None if kind == "text" else add({"num_format": number_format(kind, currency)})
            for kind in ("money", "date", "datetime", "int", "score", "percent", "decimal", "text")
        }
        self.kind["score"].set_align("center")  # type: ignore[union-attr]
        self.input_date = add({"num_format": "yyyy-mm-dd"})
        self.input_header = add(
            {"bold": True, "bg_color": "#FFE699", "font_color": "#3A3A3A", "border": 1}
        )
        self.status_header = add({"bold": True, "bg_color": "#D9D9D9", "font_color": "#3A3A3A"})
        self.input_fill = add({"bg_color": "#FFF7D6"})  # conditional (dxf)
        self.level = {
            "high": add({"bg_color": "#F8CBAD", "font_color": "#9C0006", "bold": True}),
            "medium": add({"bg_color": "#FFE699", "font_color": "#7F6000"}),
            "low": add({"bg_color": "#E2EFDA", "font_color": "#375623"}),
        }
        self.due = add({"bg_color": "#C6EFCE", "font_color": "#006100", "bold": True})
        self.problem = add({"font_color": "#C00000", "bold": True})
        self.overdue = add({"font_color": "#C00000"})
        self.title = add({"bold": True, "font_size": 18, "font_color": "#1F3864"})
        self.subtitle = add({"font_size": 11, "font_color": "#595959"})
        self.label = add({"font_color": "#595959"})
        self.bold = add({"bold": True})
        self.hint = add({"italic": True, "font_color": "#595959", "text_wrap": True})
        self.section = add({"bold": True, "font_size": 12, "font_color": "#1F3864", "bottom": 2})
        self.tile_label = add(
            {"font_color": "#595959", "bg_color": TILE_FILL, "text_wrap": True, "valign": "top"}
        )
        self.tile_value: dict[str, Format] = {}
        self.tile_prev: dict[str, Format] = {}
        for unit, fmt in tile_formats(currency).items():
            self.tile_value[unit] = add(
                {"num_format": fmt, "bold": True, "font_size": 16, "bg_color": TILE_FILL}
            )
            self.tile_prev[unit] = add(
                {"num_format": fmt, "font_color": PREVIOUS_COLOUR, "bg_color": TILE_FILL}
            )
        self.tile_change = {
            (kind, mood): add(
                {"num_format": fmt, "font_color": colour, "bold": True, "bg_color": TILE_FILL}
            )
            for kind, fmt in CHANGE_FORMATS.items()
            for mood, colour in MOOD_COLOURS.items()
        }
        self.tile_blank = add({"bg_color": TILE_FILL, "font_color": PREVIOUS_COLOUR})
        self.month = add({"num_format": "yyyy-mm"})
        self.header = add({"bold": True, "text_wrap": True, "valign": "bottom"})
