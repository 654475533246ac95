"""The Refresh data button: the team's figures recomputed into the open workbook.

The KPI run comes from :func:`crm_batch.app.kpis.compute`, the stored follow-ups and
snapshots from :func:`crm_batch.app.workbook_data.saved_state`; the sheets are the ones
the nightly rebuild writes (:func:`crm_batch.excel.sheet_values.sheet_rows`), and what
staff typed is placed by the one staff-input merge
(:func:`crm_batch.excel.staff_merge.merge_staff_inputs`), as at night.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from crm_batch.app.dates import default_business_date
from crm_batch.app.followups import StaffInput
from crm_batch.app.kpis import compute
from crm_batch.app.workbook_data import saved_state
from crm_batch.buttons.dashboard import refresh_dashboard, set_name
from crm_batch.buttons.settings import ButtonContext
from crm_batch.buttons.tables import TableView, number_formats, read_table, write_table
from crm_batch.excel import layout, sheet_values, staff_merge
from crm_batch.excel.staff_rows import has_input, is_blank, parse_staff_row
from crm_batch.excel.teamdata import HISTORY_KPIS, TeamWorkbookData, team_workbook_data
from crm_batch.i18n.workbook_texts import BUTTON_TEXTS

#: The computed sheets Refresh rewrites (their tables are rebuilt from the database).
COMPUTED_SHEETS: tuple[str, ...] = ("customers", "watchlist", "care", "advocates")


def refresh_open_workbook(ctx: ButtonContext, as_of: date | None) -> str:
    """Recompute the team's data of ``as_of`` (default: the default business date) and
    rewrite the computed sheets, the Follow-ups table and the Dashboard; return the
    message for staff."""
    # read every table first: a workbook missing one fails before anything is computed
    views = {key: read_table(ctx.book, key) for key in (*COMPUTED_SHEETS, "followups")}
    views["followups"].require(("customer_id", *layout.INPUT_COLUMNS, *layout.STATUS_COLUMNS))
    day = as_of or default_business_date(ctx.settings)
    run = compute(ctx.settings, day, teams=[ctx.team]).run
    customers = run.reports[ctx.team].customers["customer_id"]
    saved = saved_state(ctx.settings, day, customers, HISTORY_KPIS)
    data = team_workbook_data(
        run, ctx.team, saved.followups, ctx.settings, history=saved.history, language=ctx.language
    )

    formats = number_formats(ctx.settings.currency)
    counts: dict[str, int] = {}
    for key in COMPUTED_SHEETS:
        columns, rows = sheet_values.sheet_rows(data, key, ctx.language)
        counts[key] = write_table(views[key], columns, rows, formats)
    columns, rows, kept = followup_rows(views["followups"], data, ctx.language)
    counts["followups"] = write_table(views["followups"], columns, rows, formats)
    dashboard = refresh_dashboard(ctx.book, data, ctx.language)
    set_name(ctx.book, layout.NAME_AS_OF, day.isoformat())
    message = BUTTON_TEXTS.text(
        "refresh.done",
        ctx.language,
        team=ctx.team,
        as_of=day.isoformat(),
        **{key: f"{count:,}" for key, count in counts.items()},
    )
    if kept:
        message += " " + BUTTON_TEXTS.text("refresh.kept", ctx.language, count=kept)
    if not dashboard:
        message += " " + BUTTON_TEXTS.text("refresh.dashboard_kept", ctx.language)
    return message


def followup_rows(
    view: TableView, data: TeamWorkbookData, language: str
) -> tuple[tuple[layout.Column, ...], list[list[Any]], int]:
    """The new Follow-ups rows with what staff typed in the open workbook merged back.

    The rules of the nightly rebuild: the input cells are parsed with
    :func:`crm_batch.excel.staff_rows.parse_staff_row` and placed by
    :func:`crm_batch.excel.staff_merge.merge_staff_inputs` (a customer's row keeps its
    input, else shows the latest stored follow-up). The rows the merge orphans
    (customers who left the team, a further unsaved row of the same customer), which
    the nightly rebuild moves to the Orphaned notes sheet, are appended at the end
    exactly as they were, so nothing typed is lost. Returns (columns, rows, appended
    count).
    """
    inputs = []
    original: dict[int, list[Any]] = {}
    for index, row in enumerate(view.rows):
        cells = view.cells(row)
        if has_input(cells):
            sheet_row = view.first_body_row + index
            inputs.append(parse_staff_row(cells, sheet_row, language))
            original[sheet_row] = row
    team_ids = set(data.frames["followups"]["customer_id"])
    merged = staff_merge.merge_staff_inputs(inputs, team_ids)
    # a typed next-contact "date" that is no date stays text; sheet_rows holds only dates
    # there, so such rows get their cells back as typed, with the problem shown
    as_typed = {cid: item for cid, item in merged.shown.items() if _unparsed_date(item)}
    shown = {cid: item for cid, item in merged.shown.items() if cid not in as_typed}
    columns, rows = sheet_values.sheet_rows(data, "followups", language, staff_inputs=shown)
    if as_typed:
        position = {column.key: i for i, column in enumerate(columns)}
        for row in rows:
            item = as_typed.get(str(row[position["customer_id"]]))
            if item is not None:
                cells = view.cells(original[item.sheet_row])
                for key in layout.INPUT_COLUMNS:
                    row[position[key]] = cells.get(key)
                row[position["saved_at"]] = None
                row[position["save_problem"]] = item.problem
    for item in merged.orphaned:
        cells = view.cells(original[item.sheet_row])
        rows.append([cells.get(column.key) for column in columns])
    return columns, rows, len(merged.orphaned)


def _unparsed_date(item: StaffInput) -> bool:
    """Whether the row's next-contact cell holds something that is not a date."""
    return item.next_contact_date is None and not is_blank(item.raw.get("next_contact_date"))
