"""The one staff-input merge: where each row staff typed goes when a Follow-ups table is
rebuilt, so that notes are never lost.

Both rebuilds of a Follow-ups table go through :func:`merge_staff_inputs`: the nightly
rebuild of the workbook file (:mod:`crm_batch.jobs.workbooks`, rows harvested from the
old file and just stored) and the Refresh button in the open workbook
(:mod:`crm_batch.buttons.refresh_data`, rows as typed, saved or not). The callers differ only
in *where* a row without a place in the table is shown: the nightly rebuild writes it
to the Orphaned notes sheet, the Refresh button appends it to the table as it was.

A row counts as saved when its ``saved_at`` cell is filled (:func:`is_saved`): at night
the store result sets it (:func:`crm_batch.app.followups.with_saved_at`); in an open
workbook it is what the Save button or the last rebuild wrote.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from crm_batch.app.followups import StaffInput
from crm_batch.app.kpis import KpiRun
from crm_batch.excel.layout import OrphanedNote
from crm_batch.excel.staff_rows import is_blank, stored_text


@dataclass(frozen=True)
class MergedInputs:
    """Every typed row, placed: ``shown`` (team customer id -> the row its Follow-ups row
    keeps), ``orphaned`` (rows kept outside the team's rows, in sheet order), ``stored``
    (saved rows that gave their customer's row to an unsaved one: they are in the
    database, and the row shows them again once the unsaved one is saved)."""

    shown: dict[str, StaffInput]
    orphaned: tuple[StaffInput, ...]
    stored: tuple[StaffInput, ...]


def is_saved(row: StaffInput) -> bool:
    """Whether the row is stored in the database (its ``saved_at`` cell is filled)."""
    return not is_blank(row.raw.get("saved_at"))


def merge_staff_inputs(
    rows: Iterable[StaffInput],
    team_ids: Collection[str],
    *,
    orphaned_before: Iterable[StaffInput] = (),
) -> MergedInputs:
    """Place every typed row of a Follow-ups table that is rebuilt for ``team_ids``.

    The rule, whoever rebuilds the table:

    * every typed row is kept: it stays on its customer's row, or is kept as an
      orphaned row, or it is saved (in the database, shown again as the customer's
      latest stored follow-up);
    * a row of a customer no longer in the team (moved or gone) is orphaned, saved or
      not, so staff see where the note went;
    * a team customer's row keeps the **last unsaved row** of that customer in sheet
      order, else the customer's last row. Unsaved beats saved because an unsaved row
      exists only in the workbook (staff must see it to correct or save it) while a
      saved one is safe in the database. Among several unsaved rows the last wins
      because a second row for a customer is added below the first (typed or pasted
      at the end of the table), so the lowest is the most recent; the others are
      orphaned, never dropped;
    * rows of the previous Orphaned notes sheet (``orphaned_before``) stay orphaned
      while unsaved; saved ones are in the database and follow their customer.
    """
    team = set(team_ids)
    groups: dict[str, list[StaffInput]] = {}
    orphaned: list[StaffInput] = []
    for row in sorted(rows, key=lambda r: r.sheet_row):
        if row.customer_id in team:
            groups.setdefault(row.customer_id, []).append(row)
        else:
            orphaned.append(row)
    shown: dict[str, StaffInput] = {}
    stored: list[StaffInput] = []
    for customer_id, group in groups.items():
        unsaved = [row for row in group if not is_saved(row)]
        winner = unsaved[-1] if unsaved else group[-1]
        shown[customer_id] = winner
        orphaned.extend(row for row in unsaved if row is not winner)
        stored.extend(row for row in group if is_saved(row) and row is not winner)
    orphaned.sort(key=lambda r: r.sheet_row)
    orphaned.extend(row for row in orphaned_before if not is_saved(row))
    return MergedInputs(shown, tuple(orphaned), tuple(stored))


def company_customers(run: KpiRun) -> pd.DataFrame:
    """customer_id (text) -> name, team of every customer in the run (the company's
    report when it has one, else its teams')."""
    if None in run.reports:
        frames = [run.reports[None].customers]
    else:
        frames = [report.customers for report in run.reports.values()]
    columns = [c for c in ("customer_id", "name", "team") if c in frames[0].columns]
    table = pd.concat([frame[columns] for frame in frames], ignore_index=True)
    table["customer_id"] = table["customer_id"].astype("string")
    return table.drop_duplicates("customer_id").set_index("customer_id")


def orphaned_notes(rows: Sequence[StaffInput], customers: pd.DataFrame) -> list[OrphanedNote]:
    """``rows`` as Orphaned notes rows, with each customer's name and current team from
    ``customers`` (:func:`company_customers`); an invalid row keeps what staff typed (an
    unknown outcome as text, a next contact "date" that is no date appended to the note
    in brackets)."""
    return [_orphaned_note(row, customers) for row in rows]


def _orphaned_note(row: StaffInput, customers: pd.DataFrame) -> OrphanedNote:
    known = row.customer_id in customers.index
    name = customers.at[row.customer_id, "name"] if known and "name" in customers else None
    team = customers.at[row.customer_id, "team"] if known and "team" in customers else None
    outcome = row.outcome
    note = row.note
    if row.problem:
        outcome = row.outcome or stored_text(row.raw.get("outcome"))
        typed_date = stored_text(row.raw.get("next_contact_date"))
        if row.next_contact_date is None and typed_date:
            note = f"{note}\n[{typed_date}]" if note else f"[{typed_date}]"
    return OrphanedNote(
        customer_id=row.customer_id,
        customer_name=None if pd.isna(name) else str(name),
        current_team=None if pd.isna(team) else str(team),
        outcome=outcome,
        note=note,
        next_contact_date=row.next_contact_date,
        entered_by=row.entered_by,
        sheet_row=row.sheet_row,
    )
