"""A team workbook's sheets as cell values: translated, cleaned for cells, merged with
what staff typed.

:func:`sheet_columns` (column by column, dates as Excel serial numbers, for the workbook
writer) and :func:`sheet_rows` (row by row, Python values, for the xlwings Refresh button)
turn a sheet's frame of :class:`~crm_batch.excel.teamdata.TeamWorkbookData` into values
in a language, so a sheet shows the same thing whoever writes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from crm_batch.app.followups import StaffInput
from crm_batch.excel import layout
from crm_batch.excel.cells import CellReport, cell_text, cell_texts
from crm_batch.excel.layout import Column
from crm_batch.excel.teamdata import TeamWorkbookData, none_if_missing
from crm_batch.kpi.playbook import action_text, label

#: Excel's day 0 for serial dates (the 1900 date system as Excel counts it).
_EXCEL_EPOCH = np.datetime64("1899-12-30", "ns")
_DAY = np.timedelta64(1, "D")

# Columns holding category keys, shown through the playbook's labels.
_CATEGORY = frozenset({"tier", "value_tier", "lifecycle", "rfm_segment", "level"})
_CATEGORY_SOURCE = {"churn_warning_level": "level"}


def _labels(values: pd.Series, language: str) -> pd.Series:
    """Category keys shown as the playbook's labels (one lookup per distinct key)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # map the categories, not the rows
        names = [label(str(key), language) for key in values.cat.categories]
        table = np.array([*names, None], dtype=object)  # code -1 (missing) -> None
        return pd.Series(table[values.cat.codes.to_numpy()], index=values.index, dtype="object")
    keys = values.astype("object")
    names = {key: label(str(key), language) for key in keys.dropna().unique()}
    return _lookup(keys, names)


def _actions(keys: pd.Series, language: str) -> pd.Series:
    texts = {key: action_text(key, language) for key in keys.dropna().unique()}
    return _lookup(keys, texts)


def _lookup(keys: pd.Series, texts: Mapping[object, object]) -> pd.Series:
    """``keys`` replaced by ``texts`` (missing keys and keys not in it: None): what
    ``Series.map(dict)`` does, as plain dict look-ups (a few keys over many rows)."""
    get = texts.get
    return pd.Series([get(key) for key in keys.tolist()], index=keys.index, dtype="object")


def excel_serial(values: pd.Series) -> list[float]:
    """datetime64 values as Excel serial day numbers (NaN for missing): a date cell is a
    number with a date format, so this is what the writer stores."""
    raw = values.to_numpy(dtype="datetime64[ns]")
    serial = (raw - _EXCEL_EPOCH) / _DAY
    return serial.tolist()


def serial_to_datetime(value: float) -> datetime:
    """An Excel serial day number back to a datetime (for :func:`sheet_rows`)."""
    return datetime(1899, 12, 30) + timedelta(days=value)


_WIDE = re.compile(
    "[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]"
)


def display_width(value: str) -> int:
    """Columns ``value`` takes in a cell: East Asian wide characters count two."""
    return len(value) + len(_WIDE.findall(value))


def sheet_columns(
    data: TeamWorkbookData,
    sheet_key: str,
    language: str | None = None,
    *,
    report: CellReport | None = None,
    staff_inputs: Mapping[str, StaffInput] | None = None,
) -> tuple[tuple[Column, ...], list[list[object]]]:
    """The sheet's columns and its values column by column, ready for cells.

    Text is cleaned (:func:`~crm_batch.excel.cells.cell_text`) and translated; numbers
    are floats (NaN = empty); dates and datetimes are Excel serial numbers (NaN = empty).
    For the Follow-ups sheet the input and status columns are filled from
    ``staff_inputs`` (by customer id), else from the latest stored follow-up.
    """
    language = layout.check_language(language or data.language)
    cols = layout.columns(sheet_key)
    frame = data.frames[sheet_key]
    marker = layout.text("truncated", language)
    values: list[list[object]] = []
    extra = (
        _followup_inputs(data, frame["customer_id"], staff_inputs or {}, language)
        if sheet_key == "followups"
        else {}
    )
    for column in cols:
        key = column.key
        series = extra[key] if key in extra else frame[key]
        if column.kind in {"date", "datetime"} and series.dtype == object:
            values.append(_mixed_dates(series, sheet_key, key, marker, report))
        elif column.kind in {"date", "datetime"}:
            values.append(excel_serial(series))
        elif column.kind in {"int", "money", "percent", "score", "decimal"}:
            values.append(series.to_numpy(dtype="float64", na_value=np.nan).tolist())
        else:
            values.append(_text_values(series, sheet_key, key, language, marker, report))
    return cols, values


def _mixed_dates(
    series: pd.Series, sheet_key: str, key: str, marker: str, report: CellReport | None
) -> list[object]:
    """Dates as serial numbers; text (an input that is not a date) kept as cleaned text."""
    if series.isna().all():  # no input typed and nothing stored: the usual case
        return [math.nan] * len(series)
    out: list[object] = []
    for value in series:
        if isinstance(value, str):
            out.append(cell_text(value, report=report, where=(sheet_key, key), marker=marker))
        elif none_if_missing(value) is None:
            out.append(math.nan)
        else:
            out.append(excel_serial(pd.Series([pd.Timestamp(value)]))[0])
    return out


def _text_values(
    series: pd.Series,
    sheet_key: str,
    key: str,
    language: str,
    marker: str,
    report: CellReport | None,
) -> list[object]:
    if key in _CATEGORY or key in _CATEGORY_SOURCE:
        series = _labels(series, language)
    elif key == "next_action":
        series = _actions(series.astype("object"), language)
    elif key == "signals":
        names = {
            combo: "; ".join(
                layout.text(f"signal.{part}", language) for part in str(combo).split(",")
            )
            for combo in series.dropna().unique()
        }
        series = _lookup(series, names)
    elif key == "event":
        series = _lookup(
            series, {k: layout.text(f"care.{k}", language) for k in ("birthday", "anniversary")}
        )
    elif key in {"is_due", "marketing_opt_out"}:
        yes, no = layout.text("yes", language), layout.text("no", language)
        series = _lookup(series, {True: yes, False: no})
    elif key == "status":
        series = _lookup(
            series, {k: layout.text(f"advocate.{k}", language) for k in ("candidate", "advocate")}
        )
    elif key in {"last_outcome", "outcome"}:
        series = series.map(lambda v: _outcome_text(v, language), na_action="ignore")
    # every text is cleaned (database text is hostile; our own labels pass the fast path)
    out = series.tolist()  # missing values (None, NaN, NA) become empty cells
    return cell_texts(out, report=report, where=(sheet_key, key), marker=marker)


def _outcome_text(value: object, language: str) -> object:
    key = layout.outcome_key(value)
    return layout.outcome_label(key, language) if key else value


def _followup_inputs(
    data: TeamWorkbookData,
    ids: pd.Series,
    staff_inputs: Mapping[str, StaffInput],
    language: str,
) -> dict[str, pd.Series]:
    """Input and status columns of the Follow-ups rows, merged by customer id.

    A staff input from the previous workbook wins; it counts as saved when the latest
    stored follow-up holds the same values (saved_at = when it was stored), else its
    ``saved_at``/``save_problem`` cells are carried over as they were. Without a staff
    input the latest stored follow-up fills the input cells, saved at its time.
    """
    keys = (*layout.INPUT_COLUMNS, *layout.STATUS_COLUMNS)
    if not staff_inputs and not data.latest_followups:  # a team without follow-ups yet
        empty = {key: pd.Series([None] * len(ids), dtype="object") for key in keys}
        empty["saved_at"] = pd.Series(pd.NaT, index=range(len(ids)), dtype="datetime64[ns]")
        return empty
    columns: dict[str, list[object]] = {key: [] for key in keys}
    for cid in ids:
        stored = data.latest_followups.get(cid)
        given = staff_inputs.get(cid)
        if given is not None:
            entry = (
                given.outcome or _raw(given, "outcome"),
                given.note,
                given.next_contact_date or _raw(given, "next_contact_date"),
                given.entered_by,
            )
            same = stored is not None and tuple(_norm(v) for v in entry) == tuple(
                _norm(v) for v in stored[:4]
            )
            saved_at = stored[4] if same else _raw_datetime(given)
            problem = None if same else given.problem
        elif stored is not None:
            entry, saved_at, problem = stored[:4], stored[4], None
        else:
            entry, saved_at, problem = (None, None, None, None), None, None
        for key, value in zip(layout.INPUT_COLUMNS, entry, strict=True):
            columns[key].append(value)
        columns["saved_at"].append(saved_at)
        columns["save_problem"].append(problem)
    result = {key: pd.Series(vals, dtype="object") for key, vals in columns.items()}
    result["saved_at"] = pd.to_datetime(result["saved_at"]).astype("datetime64[ns]")
    return result  # next_contact_date stays object: a date, or the text as typed


def _raw(given: StaffInput, key: str) -> object:
    """An input cell as typed when it could not be parsed (kept, never lost)."""
    value = given.raw.get(key)
    return None if value in ("", None) else value


def _raw_datetime(given: StaffInput) -> datetime | None:
    value = given.raw.get("saved_at")
    return value if isinstance(value, datetime) else None


def _norm(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        return layout.outcome_key(value) or value or None
    if isinstance(value, datetime):
        return value.date()
    return value


def sheet_rows(
    data: TeamWorkbookData,
    sheet_key: str,
    language: str | None = None,
    *,
    staff_inputs: Mapping[str, StaffInput] | None = None,
) -> tuple[tuple[Column, ...], list[list[object]]]:
    """The sheet's columns and rows of Python values (str, float, int, date, datetime,
    None), cleaned for cells: what xlwings' Refresh writes into an open workbook."""
    cols, values = sheet_columns(data, sheet_key, language, staff_inputs=staff_inputs)
    converted = [
        _python_values(column, column_values)
        for column, column_values in zip(cols, values, strict=True)
    ]
    return cols, [list(row) for row in zip(*converted, strict=True)] if converted else []


def _python_values(column: Column, values: list[object]) -> list[object]:
    """Serial numbers back to dates, floats to ints where the kind says so; text kept
    as it is (an input typed into a date column that is not a date stays visible)."""
    convert = {
        "date": lambda v: serial_to_datetime(v).date(),
        "datetime": serial_to_datetime,
        "int": int,
        "score": int,
        "money": float,
        "percent": float,
        "decimal": float,
    }.get(column.kind)
    if convert is None:
        return values
    return [
        v if isinstance(v, str) else None if v is None or v != v else convert(v)  # type: ignore[operator]
        for v in values
    ]
