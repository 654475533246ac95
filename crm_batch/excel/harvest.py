"""Staff inputs out of team workbooks and into the ``followups`` table.

Staff type follow-ups (outcome, note, next contact date, who) into the Follow-ups table of
their team workbook. Before a workbook is rebuilt, and whenever ``harvest`` runs, those
rows are read back here and stored; the Save button of the workbook stores through the
same :func:`store_followups`, validated by the same :func:`parse_staff_row`.

Reading is read-only and finds everything by stable names (:mod:`crm_batch.excel.layout`):
the team from the ``crm_team`` defined name, the table by its Excel table name
(``FollowUps``), the columns by their headers in either language. Staff may sort, filter,
hide, move or add rows and rename the tab; a renamed or deleted input column is an error
naming the file and the column, never a silent loss. openpyxl's read-only mode parses
only the Follow-ups sheet (0.5 s for an 8,668-customer team workbook where a full load
takes 4.4 s) but does not load table definitions, so the table's range and headers come
from the table part of the file itself.

A row that cannot be stored (unknown outcome, a date that is not a date, ...) is not
stored but keeps its cells and gets a ``problem`` in the workbook's language; the nightly
rebuild writes it back with the problem shown, so nothing staff typed is ever lost.

Identity: a follow-up is the sha256 of its normalized (customer id, outcome, note, next
contact date, entered by). The same row harvested again (every night, from a workbook
prefilled with the latest stored follow-up) is stored once; ``entered_at`` is when it was
first stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import posixpath
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pandas as pd
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import Engine, Table, func, inspect, select
from sqlalchemy.exc import IntegrityError

from crm_batch.errors import DataError
from crm_batch.excel import layout
from crm_batch.excel.cells import TRUNCATION_MARKER
from crm_batch.excel.layout import StaffInput
from crm_batch.i18n.workbook_texts import HARVEST_TEXTS
from crm_batch.schema import build_metadata

log = logging.getLogger(__name__)

#: The table columns a harvest needs; any other column may be missing.
REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", *layout.INPUT_COLUMNS)
#: Longest customer id the followups table holds.
CUSTOMER_ID_MAX_LENGTH = 64
#: Longest note stored. Excel holds 32,767 characters per cell, so only a workbook written
#: by another program gets near this; the database's long-text column holds it.
NOTE_STORE_MAX_LENGTH = 1_000_000
#: Ids per ``IN (...)`` list (well under every backend's parameter limit).
_CHUNK = 500

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_REL_OFFICE_DOCUMENT = "/officeDocument"
_REL_TABLE = "/table"


class NotATeamWorkbookError(DataError):
    """The file is an Excel workbook but not a crm-batch team workbook (no ``crm_team``)."""


@dataclass(frozen=True)
class HarvestedWorkbook:
    """What one team workbook holds of staff input.

    ``rows`` are the Follow-ups rows with any input cell filled, in sheet order;
    ``orphaned_rows`` the rows of the workbook's Orphaned notes table, if it has one.
    """

    path: Path
    team: str
    language: str
    layout_version: int
    rows: tuple[StaffInput, ...]
    orphaned_rows: tuple[StaffInput, ...] = ()

    @property
    def invalid(self) -> tuple[StaffInput, ...]:
        """The rows that cannot be stored (their ``problem`` says why)."""
        return tuple(row for row in self.rows if row.problem)


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


# -- cleaning and validation -------------------------------------------------------------


def clean_text(value: object) -> str | None:
    """Cell or database text as stored: line ends as ``\\n``, a tab as a blank, other
    control characters and non-characters removed, a lone surrogate as U+FFFD (the rules
    of :func:`crm_batch.excel.cells.clean_text`, so text reads back as it was written),
    outer blanks stripped; None if empty. Numbers become their shortest text (``123``,
    ``1.5``), dates ISO text.
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
    text = _SURROGATE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text.replace("\t", " ")).strip()
    return text or None


_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ufffe\uffff]")


def _loose(text: str | None) -> str:
    """Text with every blank and control character removed (for echo comparison)."""
    if not text:
        return ""
    text = _SURROGATE.sub("\ufffd", text)
    return "".join(ch for ch in text if not (ch.isspace() or unicodedata.category(ch) == "Cc"))


def _id_text(value: object) -> str | None:
    """A customer id cell as text (Excel may have turned a retyped id into a number)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return clean_text(value)


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


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def has_input(cells: Mapping[str, object]) -> bool:
    """Whether any staff input cell of a row is filled."""
    return any(not _is_blank(cells.get(key)) for key in layout.INPUT_COLUMNS)


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
    if not _is_blank(outcome_cell):
        outcome = layout.outcome_key(outcome_cell if isinstance(outcome_cell, str) else None)
        if outcome is None:
            problems.append(
                HARVEST_TEXTS.text(
                    "unknown_outcome",
                    language,
                    value=_short(clean_text(outcome_cell)),
                    choices=", ".join(layout.outcome_labels(language)),
                )
            )

    note = clean_text(cells.get("note"))
    if note is not None and len(note) > NOTE_STORE_MAX_LENGTH:
        problems.append(
            HARVEST_TEXTS.text("note_too_long", language, limit=f"{NOTE_STORE_MAX_LENGTH:,}")
        )

    date_cell = cells.get("next_contact_date")
    next_contact: date | None = None
    if not _is_blank(date_cell):
        try:
            next_contact = parse_date_cell(date_cell)
        except (ValueError, OverflowError):
            problems.append(
                HARVEST_TEXTS.text("bad_date", language, value=_short(clean_text(date_cell)))
            )

    entered_by = clean_text(cells.get("entered_by"))
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


def staff_input_from_cells(
    cells: Mapping[str, object], sheet_row: int, language: str
) -> StaffInput | None:
    """:func:`parse_staff_row` for a row with any input cell filled, else None (for the
    Save button, which reads cells through xlwings rather than a file).

    There is deliberately no check against the data date: a row prefilled with an older
    stored follow-up carries its old next contact date and must stay valid.
    """
    return parse_staff_row(cells, sheet_row, language) if has_input(cells) else None


def _short(text: str | None, limit: int = 40) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


# -- reading a workbook ------------------------------------------------------------------


@dataclass(frozen=True)
class _TablePart:
    name: str
    sheet: str
    ref: str
    header_rows: int
    totals_rows: int
    headers: tuple[str, ...]


def _xml(archive: zipfile.ZipFile, part: str) -> ElementTree.Element:
    return ElementTree.fromstring(archive.read(part))


def _rels(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationships of ``part``: id -> (type, absolute part name)."""
    folder, name = posixpath.split(part)
    rels_part = posixpath.join(folder, "_rels", name + ".rels")
    if rels_part not in archive.NameToInfo:
        return {}
    found = {}
    for rel in _xml(archive, rels_part).iter(f"{_NS_PKG_REL}Relationship"):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        absolute = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        found[rel.get("Id", "")] = (rel.get("Type", ""), posixpath.normpath(absolute))
    return found


def _table_parts(archive: zipfile.ZipFile) -> dict[str, _TablePart]:
    """Every Excel table of the workbook by its (display) name."""
    workbook_part = next(
        (
            target
            for kind, target in _rels(archive, "").values()
            if kind.endswith(_REL_OFFICE_DOCUMENT)
        ),
        "xl/workbook.xml",
    )
    sheet_targets = _rels(archive, workbook_part)
    tables: dict[str, _TablePart] = {}
    for sheet in _xml(archive, workbook_part).iter(f"{_NS_MAIN}sheet"):
        rel = sheet_targets.get(sheet.get(f"{_NS_REL}id", ""))
        if rel is None:
            continue
        for kind, table_part in _rels(archive, rel[1]).values():
            if not kind.endswith(_REL_TABLE) or table_part not in archive.NameToInfo:
                continue
            root = _xml(archive, table_part)
            headers = tuple(
                column.get("name", "") for column in root.iter(f"{_NS_MAIN}tableColumn")
            )
            part = _TablePart(
                name=root.get("displayName") or root.get("name", ""),
                sheet=sheet.get("name", ""),
                ref=root.get("ref", ""),
                header_rows=int(root.get("headerRowCount", "1")),
                totals_rows=int(root.get("totalsRowCount", "0")),
                headers=headers,
            )
            for name in {part.name, root.get("name", "")}:
                if name:
                    tables[name.casefold()] = part
    return tables


def _defined_text(workbook: Any, name: str) -> str | None:
    """A workbook-scope defined name holding a text constant (``"Team A"``), or None."""
    defined = workbook.defined_names.get(name)
    if defined is None or defined.value is None:
        return None
    value = defined.value.strip().removeprefix("=").strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return value[1:-1].replace('""', '"')
    return None


#: What a damaged file raises while it is opened or read (openpyxl's own errors derive
#: from these or from InvalidFileException).
_UNREADABLE: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ElementTree.ParseError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    OSError,
    InvalidFileException,
)


def read_staff_inputs(path: Path | str, data: bytes | None = None) -> HarvestedWorkbook:
    """The staff input rows of one team workbook (read-only; the file is not changed).

    ``data`` is the file's content when the caller has read it already (the nightly
    refresh hashes exactly the bytes it harvests). Raises :class:`DataError` naming the
    file when it is not a team workbook or a needed column was renamed or deleted.
    """
    import openpyxl

    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read the workbook: {exc.strerror}") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            tables = _table_parts(archive)
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=False, keep_links=False
        )
    except _UNREADABLE as exc:
        raise DataError(f"{path}: not a readable Excel workbook ({exc})") from None
    try:
        team = _defined_text(workbook, layout.NAME_TEAM)
        if not team:
            raise NotATeamWorkbookError(
                f"{path}: not a crm-batch team workbook: it has no defined name "
                f"{layout.NAME_TEAM!r} holding the team name"
            )
        language = _defined_text(workbook, layout.NAME_LANGUAGE) or ""
        if language not in layout.LANGUAGES:
            log.warning(
                "%s: defined name %s is %r; problems are reported in English",
                path,
                layout.NAME_LANGUAGE,
                language,
            )
            language = "en"
        version_text = _defined_text(workbook, layout.NAME_LAYOUT)
        version = int(version_text) if version_text and version_text.isdigit() else 1
        if version > layout.LAYOUT_VERSION:
            raise DataError(
                f"{path}: workbook layout version {version} is newer than this crm-batch "
                f"understands ({layout.LAYOUT_VERSION}); upgrade crm-batch"
            )
        table = tables.get(layout.TABLE_NAMES["followups"].casefold())
        if table is None:
            raise DataError(
                f"{path}: the Follow-ups table ({layout.TABLE_NAMES['followups']!r}) is "
                "missing; it was deleted or renamed. Restore it from the backup folder"
            )
        try:
            rows = _read_table(workbook, table, "followups", path, language, REQUIRED_COLUMNS)
            orphan_table = tables.get(layout.TABLE_NAMES["orphaned"].casefold())
            orphaned: list[StaffInput] = []
            if orphan_table is not None:
                orphaned = _read_table(
                    workbook, orphan_table, "orphaned", path, language, ("customer_id",)
                )
        except _UNREADABLE as exc:  # a sheet part is parsed only while rows are read
            raise DataError(f"{path}: a sheet of the workbook is unreadable ({exc})") from None
    finally:
        workbook.close()
    return HarvestedWorkbook(path, team, language, version, tuple(rows), tuple(orphaned))


def _read_table(
    workbook: Any,
    table: _TablePart,
    sheet_key: str,
    path: Path,
    language: str,
    required: Sequence[str],
) -> list[StaffInput]:
    from openpyxl.utils.cell import range_boundaries

    where = f"{path}: table {table.name!r} on sheet {table.sheet!r}"
    if table.header_rows < 1:
        raise DataError(f"{where}: the header row was switched off; switch it back on")
    keys: list[str | None] = []
    for header in table.headers:
        key = layout.header_key(sheet_key, header)
        if key is not None and key in keys:
            raise DataError(f"{where}: two columns are headed {header!r}; rename one back")
        keys.append(key)
    missing = [key for key in required if key not in keys]
    if missing:
        column = next(c for c in layout.columns(sheet_key) if c.key == missing[0])
        raise DataError(
            f"{where}: no column {column.label(language)!r} ({column.key}): it was renamed or "
            "deleted. Restore its header, or copy the typed rows into a backup copy of the "
            "workbook"
        )
    try:
        min_col, min_row, max_col, max_row = range_boundaries(table.ref)
    except (TypeError, ValueError):
        raise DataError(f"{where}: unreadable table range {table.ref!r}") from None
    first = min_row + table.header_rows
    last = max_row - table.totals_rows
    if max_col - min_col + 1 != len(keys):
        raise DataError(f"{where}: range {table.ref} does not match its {len(keys)} columns")
    rows: list[StaffInput] = []
    if last < first:
        return rows
    sheet = workbook[table.sheet]
    values = sheet.iter_rows(
        min_row=first, max_row=last, min_col=min_col, max_col=max_col, values_only=True
    )
    for offset, row in enumerate(values):
        cells = {key: value for key, value in zip(keys, row, strict=False) if key is not None}
        if sheet_key == "followups" and not has_input(cells):
            continue
        if sheet_key == "orphaned" and all(_is_blank(v) for v in cells.values()):
            continue
        rows.append(parse_staff_row(cells, first + offset, language))
    return rows


# -- the followups table -------------------------------------------------------------------


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


#: Markers a cut text may end with (the writer's own, and the workbook texts' per language).
_MARKERS = tuple(
    dict.fromkeys(
        [TRUNCATION_MARKER, *(layout.text("truncated", lang) for lang in layout.LANGUAGES)]
    )
)


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


def with_saved_at(rows: Sequence[StaffInput], result: StoreResult) -> list[StaffInput]:
    """``rows`` with ``raw["saved_at"]`` as the rebuilt workbook shows it: when
    :func:`store_followups` stored the row (or first stored it), None for a rejected row
    (its old "saved at" cell belonged to what the row held before it was edited)."""
    return [
        replace(row, raw={**row.raw, "saved_at": saved, "save_problem": row.problem})
        for row, saved in zip(rows, result.saved_at, strict=True)
    ]
