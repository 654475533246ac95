"""Staff inputs out of a team workbook file, read-only.

Before a workbook is rebuilt, and whenever ``harvest`` runs, the rows staff typed into
its Follow-ups table (and its Orphaned notes table) are read back here and validated by
:func:`crm_batch.excel.staff_rows.parse_staff_row`, the validator the Save button uses
too; the caller stores them (:func:`crm_batch.app.followups.store_followups`).

Reading finds everything by stable names (:mod:`crm_batch.excel.layout`): the team from
the ``crm_team`` defined name, the table by its Excel table name (``FollowUps``), the
columns by their headers in either language. Staff may sort, filter, hide, move or add
rows and rename the tab; a renamed or deleted input column is an error naming the file
and the column, never a silent loss. openpyxl's read-only mode parses only the
Follow-ups sheet (0.5 s for an 8,668-customer team workbook where a full load takes
4.4 s) but does not load table definitions, so the table's range and headers come from
the table part of the file itself.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from openpyxl.utils.exceptions import InvalidFileException

from crm_batch.app.followups import StaffInput
from crm_batch.errors import DataError
from crm_batch.excel import layout
from crm_batch.excel.staff_rows import REQUIRED_COLUMNS, has_input, is_blank, parse_staff_row

log = logging.getLogger(__name__)

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

    @property
    def all_rows(self) -> list[StaffInput]:
        """The Follow-ups rows, then the Orphaned notes rows: what is stored."""
        return [*self.rows, *self.orphaned_rows]


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
        if sheet_key == "orphaned" and all(is_blank(v) for v in cells.values()):
            continue
        rows.append(parse_staff_row(cells, first + offset, language))
    return rows
