"""The Save follow-ups button: what staff typed in the open workbook, stored now.

The rows are read and validated with the nightly harvest's rules
(:func:`crm_batch.excel.staff_rows.parse_staff_row`) and stored by
:func:`crm_batch.app.followups.save_followups` (the harvest's insert), so a row saved
here is never stored again at night. Each row with input gets ``saved_at`` (when it was
first stored) or a ``save_problem`` saying what to correct.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm_batch.app.followups import save_followups
from crm_batch.buttons.settings import ButtonContext, book_name
from crm_batch.buttons.tables import NUMBER_FORMATS, read_table, write_column
from crm_batch.excel import layout
from crm_batch.excel.staff_rows import has_input, parse_staff_row
from crm_batch.i18n.workbook_texts import BUTTON_TEXTS


def save_typed_followups(ctx: ButtonContext, now: datetime | None) -> str:
    """Store the typed Follow-ups rows (``now``: the save time, default the clock) and
    mark each with its ``saved_at`` or ``save_problem``; return the message."""
    view = read_table(ctx.book, "followups")
    view.require(("customer_id", *layout.INPUT_COLUMNS, *layout.STATUS_COLUMNS))
    inputs = []
    for index, row in enumerate(view.rows):
        cells = view.cells(row)
        if has_input(cells):
            sheet_row = view.first_body_row + index
            inputs.append(parse_staff_row(cells, sheet_row, ctx.language))
    if not inputs:
        return BUTTON_TEXTS.text("save.nothing", ctx.language)
    stamp = (now or datetime.now(ctx.settings.tz)).replace(tzinfo=None, microsecond=0)
    result = save_followups(
        ctx.settings, ctx.team, inputs, source_workbook=book_name(ctx.book), now=stamp
    )

    outcome = {
        staff.sheet_row: (saved, staff.problem)
        for staff, saved in zip(inputs, result.saved_at, strict=True)
    }
    saved_column = view.column_of("saved_at")
    problem_column = view.column_of("save_problem")
    saved_at: list[Any] = []
    problems: list[Any] = []
    for index, row in enumerate(view.rows):
        if view.first_body_row + index in outcome:
            saved, problem = outcome[view.first_body_row + index]
            saved_at.append(saved)
            problems.append(problem)
        else:  # no input: the row's status stays as it is
            saved_at.append(row[saved_column] if saved_column is not None else None)
            problems.append(row[problem_column] if problem_column is not None else None)
    write_column(view, "saved_at", saved_at, NUMBER_FORMATS["datetime"])
    write_column(view, "save_problem", problems, NUMBER_FORMATS["text"])

    bad = [staff.sheet_row for staff in inputs if staff.problem]
    message = BUTTON_TEXTS.text(
        "save.done", ctx.language, inserted=result.inserted, already=result.already_stored
    )
    if bad:
        rows = ", ".join(str(n) for n in bad[:20]) + (" …" if len(bad) > 20 else "")
        message += " " + BUTTON_TEXTS.text("save.problems", ctx.language, count=len(bad), rows=rows)
    return message
