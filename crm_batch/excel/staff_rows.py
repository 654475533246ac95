"""Staff input cells as follow-ups: the one validator of what staff type.

The nightly harvest (:mod:`crm_batch.excel.harvest`) and the Save and Refresh buttons
read a Follow-ups row as cells by column key and turn it into a
:class:`~crm_batch.app.followups.StaffInput` here, with the same rules: text by
:func:`stored_text`, dates by :func:`parse_date_cell`, outcomes by their label in either
language. A row that cannot be stored (unknown outcome, a date that is not a date, ...)
keeps its cells and gets a ``problem`` in the workbook's language, so nothing staff
typed is ever lost.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime

from crm_batch.app.followups import StaffInput
from crm_batch.excel import layout
from crm_batch.i18n.characters import normalize_characters
from crm_batch.i18n.workbook_texts import HARVEST_TEXTS

#: The table columns a harvest needs; any other column may be missing.
REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", *layout.INPUT_COLUMNS)
#: Longest customer id the followups table holds.
CUSTOMER_ID_MAX_LENGTH = 64
#: Longest note stored. Excel holds 32,767 characters per cell, so only a workbook written
#: by another program gets near this; the database's long-text column holds it.
NOTE_STORE_MAX_LENGTH = 1_000_000


def stored_text(value: object) -> str | None:
    """A cell's value as the text stored: the character rules of
    :mod:`crm_batch.i18n.characters` (the writer's, so text reads back as it was
    written), outer blanks stripped; None if empty. Numbers become their shortest text
    (``123``, ``1.5``), dates ISO text.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    return normalize_characters(text).strip() or None


def _id_text(value: object) -> str | None:
    """A customer id cell as text (Excel may have turned a retyped id into a number)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return stored_text(value)


_DATE_TEXT = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]00:00(?::00(?:\.0+)?)?)?"
)
#: Excel serial numbers of 1900-01-01 .. 9999-12-31.
_SERIAL_RANGE = (1, 2_958_465)


def parse_date_cell(value: object) -> date | None:
    """A date from a cell: an Excel date, an Excel serial number, or text as year, month,
    day (``2026-07-15``, ``2026/7/15``, ``2026.7.15``, ``2026年7月15日``).

    Day-first and month-first text (``07/15/2026``) is refused: it cannot be told apart.
    Raises ValueError for anything that is not a real date.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (math.isfinite(value) and _SERIAL_RANGE[0] <= value <= _SERIAL_RANGE[1]):
            raise ValueError("out of range")
        from openpyxl.utils.datetime import from_excel

        return from_excel(int(value)).date()
    if isinstance(value, str):
        match = _DATE_TEXT.fullmatch(unicodedata.normalize("NFKC", value).strip())
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
    raise ValueError("not a date")


def is_blank(value: object) -> bool:
    """Whether a cell is empty (None, or text of blanks only)."""
    return value is None or (isinstance(value, str) and not value.strip())


def has_input(cells: Mapping[str, object]) -> bool:
    """Whether any staff input cell of a row is filled."""
    return any(not is_blank(cells.get(key)) for key in layout.INPUT_COLUMNS)


def parse_staff_row(cells: Mapping[str, object], sheet_row: int, language: str) -> StaffInput:
    """Validate one Follow-ups row (cells by column key) into a :class:`StaffInput`.

    The one validator of staff input: harvest and the Save button both use it. Problems
    are phrased in ``language`` for the workbook's ``save_problem`` column; the first
    problem found is reported, and ``raw`` keeps every cell as read.
    """
    raw = dict(cells)
    language = language if language in layout.LANGUAGES else "en"
    problems: list[str] = []
    customer_id = _id_text(cells.get("customer_id")) or ""
    if not customer_id:
        problems.append(HARVEST_TEXTS.text("no_customer", language))
    elif len(customer_id) > CUSTOMER_ID_MAX_LENGTH:
        problems.append(
            HARVEST_TEXTS.text("customer_too_long", language, limit=CUSTOMER_ID_MAX_LENGTH)
        )

    outcome_cell = cells.get("outcome")
    outcome: str | None = None
    if not is_blank(outcome_cell):
        outcome = layout.outcome_key(outcome_cell if isinstance(outcome_cell, str) else None)
        if outcome is None:
            problems.append(
                HARVEST_TEXTS.text(
                    "unknown_outcome",
                    language,
                    value=_short(stored_text(outcome_cell)),
                    choices=", ".join(layout.outcome_labels(language)),
                )
            )

    note = stored_text(cells.get("note"))
    if note is not None and len(note) > NOTE_STORE_MAX_LENGTH:
        problems.append(
            HARVEST_TEXTS.text("note_too_long", language, limit=f"{NOTE_STORE_MAX_LENGTH:,}")
        )

    date_cell = cells.get("next_contact_date")
    next_contact: date | None = None
    if not is_blank(date_cell):
        try:
            next_contact = parse_date_cell(date_cell)
        except (ValueError, OverflowError):
            problems.append(
                HARVEST_TEXTS.text("bad_date", language, value=_short(stored_text(date_cell)))
            )

    entered_by = stored_text(cells.get("entered_by"))
    if entered_by is not None and len(entered_by) > layout.ENTERED_BY_MAX_LENGTH:
        problems.append(
            HARVEST_TEXTS.text("entered_by_too_long", language, limit=layout.ENTERED_BY_MAX_LENGTH)
        )

    if not problems and outcome is None and note is None and next_contact is None:
        problems.append(HARVEST_TEXTS.text("nothing", language))
    return StaffInput(
        customer_id=customer_id,
        outcome=outcome,
        note=note,
        next_contact_date=next_contact,
        entered_by=entered_by,
        raw=raw,
        sheet_row=sheet_row,
        problem=problems[0] if problems else None,
    )


def _short(text: str | None, limit: int = 40) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
