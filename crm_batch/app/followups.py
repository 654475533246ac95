"""The ``followups`` table: what staff typed, stored once, and the latest per customer.

Staff type follow-ups (outcome, note, next contact date, who) into their team workbook.
The nightly refresh, the ``harvest`` command and the workbook's Save button read those
rows (:mod:`crm_batch.excel.harvest`, :mod:`crm_batch.excel.staff_rows`) into
:class:`StaffInput` rows and store them here with :func:`store_followups`; the workbook
rebuild shows :func:`latest_followups`. This is the only code that reads or writes the
table.

Identity: a follow-up is the sha256 of its normalized (customer id, outcome, note, next
contact date, entered by). The same row harvested again (every night, from a workbook
prefilled with the latest stored follow-up) is stored once; ``entered_at`` is when it was
first stored. A row that is how a stored follow-up looks in a cell (blanks or control
characters changed, or cut with the workbook's truncation marker) is an echo of it and
is not stored again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Table, func, inspect, select
from sqlalchemy.exc import IntegrityError

from crm_batch.app.engines import open_state
from crm_batch.config import Settings
from crm_batch.i18n.characters import TRUNCATION_MARKERS, replace_surrogates
from crm_batch.schema import build_metadata

log = logging.getLogger(__name__)

#: Ids per ``IN (...)`` list (well under every backend's parameter limit).
_CHUNK = 500


@dataclass(frozen=True)
class StaffInput:
    """One follow-up row staff typed, as read from a workbook and validated.

    ``raw`` keeps the cells as read so an invalid row is never lost; ``problem`` says
    why the row cannot be stored (None when it can); ``sheet_row`` is the 1-based Excel
    row for messages.
    """

    customer_id: str
    outcome: str | None
    note: str | None
    next_contact_date: date | None
    entered_by: str | None
    raw: dict[str, object] = field(default_factory=dict)
    sheet_row: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class StoreResult:
    """What :func:`store_followups` did; ``saved_at`` is parallel to its inputs:
    when each valid row was stored (now, or when it was first stored), None if rejected."""

    inserted: int
    already_stored: int
    rejected: int
    saved_at: tuple[datetime | None, ...]

    def __add__(self, other: StoreResult) -> StoreResult:
        return StoreResult(
            self.inserted + other.inserted,
            self.already_stored + other.already_stored,
            self.rejected + other.rejected,
            self.saved_at + other.saved_at,
        )


#: Nothing stored (no workbook, or nothing typed).
NOTHING_STORED = StoreResult(0, 0, 0, ())


def followup_id(row: StaffInput) -> str:
    """The stored identity of a follow-up: sha256 hex of its normalized fields."""
    fields = [
        row.customer_id,
        row.outcome,
        row.note,
        row.next_contact_date.isoformat() if row.next_contact_date else None,
        row.entered_by,
    ]
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def with_saved_at(rows: Sequence[StaffInput], result: StoreResult) -> list[StaffInput]:
    """``rows`` with ``raw["saved_at"]`` as the rebuilt workbook shows it: when
    :func:`store_followups` stored the row (or first stored it), None for a rejected row
    (its old "saved at" cell belonged to what the row held before it was edited)."""
    return [
        replace(row, raw={**row.raw, "saved_at": saved, "save_problem": row.problem})
        for row, saved in zip(rows, result.saved_at, strict=True)
    ]


def save_followups(
    settings: Settings,
    team: str | None,
    inputs: Sequence[StaffInput],
    source_workbook: str | None,
    now: datetime,
) -> StoreResult:
    """:func:`store_followups` on a connection of its own (the workbook's Save button)."""
    with open_state(settings) as engine:
        return store_followups(engine, team, inputs, source_workbook, now)


def followups_table() -> Table:
    """The ``followups`` table (schema in :mod:`crm_batch.schema`)."""
    return build_metadata().tables["followups"]


def ensure_followups_table(engine: Engine) -> Table:
    """Create ``followups`` if it does not exist yet; return it."""
    table = followups_table()
    table.create(engine, checkfirst=True)
    return table


def _naive_seconds(moment: datetime) -> datetime:
    """A naive wall time to the second (MariaDB's DATETIME keeps no fractions)."""
    return moment.replace(tzinfo=None, microsecond=0)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: Markers a cut text may end with (the workbook writer's, per language).
_MARKERS = tuple(dict.fromkeys(TRUNCATION_MARKERS.values()))


def _loose(text: str | None) -> str:
    """Text with every blank and control character removed (for echo comparison)."""
    if not text:
        return ""
    text = replace_surrogates(text)
    return "".join(ch for ch in text if not (ch.isspace() or unicodedata.category(ch) == "Cc"))


def _echo_of(row: StaffInput, stored: Mapping[str, Any]) -> bool:
    """Whether ``row`` is how the stored follow-up ``stored`` looks in a cell: the same
    fields, the note equal up to blanks and control characters, or cut with the
    workbook's "truncated" marker."""
    if (
        row.outcome != stored["outcome"]
        or row.next_contact_date != stored["next_contact_date"]
        or _loose(row.entered_by) != _loose(stored["entered_by"])
    ):
        return False
    mine, theirs = _loose(row.note), _loose(stored["note"])
    if mine == theirs:
        return True
    for marker in _MARKERS:
        loose_marker = _loose(marker)
        if mine.endswith(loose_marker):
            prefix = mine[: -len(loose_marker)]
            if prefix and len(theirs) > len(prefix) and theirs.startswith(prefix):
                return True
    return False


def store_followups(
    engine: Engine,
    team: str | None,
    inputs: Sequence[StaffInput],
    source_workbook: str | None,
    now: datetime,
) -> StoreResult:
    """Insert the valid ``inputs`` not stored yet into ``followups``, in one transaction.

    A row whose identity (:func:`followup_id`) is stored already, or that is how a stored
    follow-up of the same customer looks in a cell (cleaned or cut), counts as already
    stored. Rows with a ``problem`` are rejected (counted, never stored). Customers need
    not be in ``team``: a note belongs to its customer. ``now`` (naive local time, kept to
    the second) becomes ``entered_at`` of new rows.
    """
    entered_at = _naive_seconds(now)
    source = (source_workbook or "")[:255] or None
    ids = [None if row.problem else followup_id(row) for row in inputs]
    wanted = list(dict.fromkeys(i for i in ids if i is not None))
    table = ensure_followups_table(engine)
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                known: dict[str, datetime] = {}
                for chunk in _chunks(wanted):
                    query = select(table.c.followup_id, table.c.entered_at).where(
                        table.c.followup_id.in_(chunk)
                    )
                    known.update((fid, at) for fid, at in conn.execute(query))
                echoes = _echo_ids(conn, table, inputs, ids, known)
                new_rows: dict[str, dict[str, Any]] = {}
                for row, fid in zip(inputs, ids, strict=True):
                    if fid is None or fid in known or fid in echoes or fid in new_rows:
                        continue
                    new_rows[fid] = {
                        "followup_id": fid,
                        "customer_id": row.customer_id,
                        "entered_at": entered_at,
                        "entered_by": row.entered_by,
                        "outcome": row.outcome,
                        "note": row.note,
                        "next_contact_date": row.next_contact_date,
                        "source_workbook": source,
                    }
                if new_rows:
                    conn.execute(table.insert(), list(new_rows.values()))
            break
        except IntegrityError:
            # the Save button and a harvest stored the same row at the same moment
            if attempt == 2:
                raise
            log.info("followups: a concurrent save stored some rows first; retrying")
    saved: list[datetime | None] = []
    for fid in ids:
        if fid is None:
            saved.append(None)
        elif fid in known:
            saved.append(known[fid])
        elif fid in echoes:
            saved.append(echoes[fid])
        else:
            saved.append(entered_at)
    rejected = sum(1 for fid in ids if fid is None)
    result = StoreResult(
        inserted=len(new_rows),
        already_stored=len(inputs) - rejected - len(new_rows),
        rejected=rejected,
        saved_at=tuple(saved),
    )
    log.debug(
        "followups from %s (team %s): %d new, %d already stored, %d rejected",
        source,
        team,
        result.inserted,
        result.already_stored,
        result.rejected,
    )
    return result


def _echo_ids(
    conn: Any,
    table: Table,
    inputs: Sequence[StaffInput],
    ids: Sequence[str | None],
    known: Mapping[str, datetime],
) -> dict[str, datetime]:
    """Ids of rows (not stored under their own id) that are a stored follow-up as shown
    in a cell; mapped to that follow-up's ``entered_at``."""
    unknown = [(row, fid) for row, fid in zip(inputs, ids, strict=True) if fid and fid not in known]
    if not unknown:
        return {}
    customers = sorted({row.customer_id for row, _ in unknown})
    stored: dict[str, list[Mapping[str, Any]]] = {}
    columns = [
        table.c.customer_id,
        table.c.outcome,
        table.c.note,
        table.c.next_contact_date,
        table.c.entered_by,
        table.c.entered_at,
    ]
    for chunk in _chunks(customers):
        for record in conn.execute(select(*columns).where(table.c.customer_id.in_(chunk))):
            mapping = dict(record._mapping)
            if isinstance(mapping["next_contact_date"], datetime):
                mapping["next_contact_date"] = mapping["next_contact_date"].date()
            stored.setdefault(str(mapping["customer_id"]), []).append(mapping)
    echoes: dict[str, datetime] = {}
    for row, fid in unknown:
        for candidate in stored.get(row.customer_id, ()):
            if _echo_of(row, candidate):
                echoes[fid] = candidate["entered_at"]
                break
    return echoes


_FRAME_COLUMNS = (
    "customer_id",
    "followup_id",
    "entered_at",
    "entered_by",
    "outcome",
    "note",
    "next_contact_date",
    "source_workbook",
)


def latest_followups(engine: Engine, customer_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The latest stored follow-up of each customer (all customers, or ``customer_ids``).

    Columns: customer_id (text), followup_id, entered_at (datetime64), entered_by,
    outcome (key), note, next_contact_date (``datetime.date`` or None), source_workbook.
    Latest = the greatest ``entered_at``; ties go to the later next contact date, then the
    greater id, so the choice never depends on the database. Empty when the table is
    missing.
    """
    wanted = None if customer_ids is None else sorted({str(i) for i in customer_ids})
    empty = pd.DataFrame({name: pd.Series(dtype="object") for name in _FRAME_COLUMNS})
    if wanted == [] or not inspect(engine).has_table("followups"):
        return empty.astype({"customer_id": "string", "entered_at": "datetime64[ns]"})
    table = followups_table()
    rank = (
        func.row_number()
        .over(
            partition_by=table.c.customer_id,
            order_by=(
                table.c.entered_at.desc(),
                table.c.next_contact_date.desc(),
                table.c.followup_id.desc(),
            ),
        )
        .label("rank")
    )
    records: list[Any] = []
    with engine.connect() as conn:
        batches: list[Sequence[str] | None] = (
            list(_chunks(wanted)) if wanted is not None and len(wanted) <= 5 * _CHUNK else [None]
        )
        for chunk in batches:
            inner = select(*(table.c[name] for name in _FRAME_COLUMNS), rank)
            if chunk is not None:
                inner = inner.where(table.c.customer_id.in_(chunk))
            sub = inner.subquery()
            query = select(*(sub.c[name] for name in _FRAME_COLUMNS)).where(sub.c.rank == 1)
            records.extend(conn.execute(query).all())
    frame = pd.DataFrame.from_records(records, columns=list(_FRAME_COLUMNS))
    if frame.empty:
        return empty.astype({"customer_id": "string", "entered_at": "datetime64[ns]"})
    frame["customer_id"] = frame["customer_id"].map(str).astype("string")
    if wanted is not None and len(wanted) > 5 * _CHUNK:
        frame = frame[frame["customer_id"].isin(set(wanted))]
    frame["entered_at"] = pd.to_datetime(frame["entered_at"]).astype("datetime64[ns]")
    frame["next_contact_date"] = [
        value.date()
        if isinstance(value, datetime)
        else (value if isinstance(value, date) else None)
        for value in frame["next_contact_date"]
    ]
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
