"""Read a written team workbook back and compare it with what it should contain.

:func:`verify_workbook` runs before a new workbook may replace the old one. It reads the
file with the standard library only (zip, XML), independently of the writer: every zip
member's checksum, the defined names, each table's name, range and headers, the
customer ids of the id column in row order (a checksum), and the VBA project's presence
and container signature. It is fast enough to run on every build (a 20,000-customer
workbook in well under a second): only the id column of each sheet is parsed.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from crm_batch.excel.cells import WorkbookError

_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "pr": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CFB_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_TABLE_PART = re.compile(rb'<tablePart\s+r:id="([^"]+)"')


@dataclass(frozen=True)
class TableSummary:
    """One table as written: name, sheet, range, data rows, headers, id checksum."""

    name: str
    sheet_key: str
    sheet_title: str
    ref: str
    rows: int
    headers: tuple[str, ...]
    ids_sha256: str  # of the first column (customer ids) in row order


@dataclass(frozen=True)
class WorkbookSummary:
    """What :func:`~crm_batch.excel.workbook.build_team_workbook` wrote: the expectation
    :func:`verify_workbook` checks a file against, and figures for the run log."""

    path: Path
    team: str
    language: str
    tables: dict[str, TableSummary]
    defined_names: dict[str, str]
    has_vba: bool
    buttons: tuple[str, ...]
    orphaned: int
    merged_inputs: int
    cell_changes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def customers(self) -> int:
        """Customer rows of the workbook (the Customers table)."""
        return self.tables["customers"].rows


def ids_checksum(ids: Sequence[object]) -> str:
    """sha256 of the ids in order (empty cells as ""), each followed by a NUL byte, as
    :func:`verify_workbook` reads them (hashed in one piece: the same digest as id by id)."""
    if not len(ids):
        return hashlib.sha256().hexdigest()
    text = "\0".join(["" if value is None else str(value) for value in ids]) + "\0"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _unescape(text: str) -> str:
    """OOXML's ``_xHHHH_`` escapes (ECMA-376 22.9.2.19), left to right."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _item_text(element: ElementTree.Element) -> str:
    """The text of a shared string item (plain ``<t>`` or rich-text runs)."""
    return _unescape("".join(t.text or "" for t in element.iter(f"{{{_NS['m']}}}t")))


class _Package:
    """The zip's members, each read once: reading checks its CRC (zipfile raises
    BadZipFile on a mismatch), so every member is read, the large sheets only once."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.parts = {name: archive.read(name) for name in archive.namelist()}

    def read(self, name: str) -> bytes:
        try:
            return self.parts[name]
        except KeyError:
            raise WorkbookError(f"part {name} is missing") from None

    def xml(self, name: str) -> ElementTree.Element:
        return ElementTree.fromstring(self.read(name))

    def rels(self, part: str) -> dict[str, str]:
        folder, name = posixpath.split(part)
        rels_name = posixpath.join(folder, "_rels", name + ".rels")
        if rels_name not in self.parts:
            return {}
        root = self.xml(rels_name)
        return {
            rel.get("Id", ""): posixpath.normpath(posixpath.join(folder, rel.get("Target", "")))
            for rel in root.findall("pr:Relationship", _NS)
        }


def verify_workbook(path: str | Path, expected: WorkbookSummary) -> None:
    """Raise :class:`WorkbookError` unless the file at ``path`` holds what ``expected``
    says: readable zip, defined names, tables (name, ref, headers, rows, id checksum),
    the VBA project and the buttons bound to their macros."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            package = _Package(archive)
        _verify(package, expected)
    except WorkbookError as exc:
        raise WorkbookError(
            f"workbook {path} of team {expected.team!r} does not read back as written: {exc}"
        ) from None
    except (zipfile.BadZipFile, ElementTree.ParseError, OSError) as exc:
        raise WorkbookError(
            f"workbook {path} of team {expected.team!r} cannot be read back: {exc}"
        ) from None


def _verify(package: _Package, expected: WorkbookSummary) -> None:
    workbook = package.xml("xl/workbook.xml")
    names = {
        item.get("name"): item.text or ""
        for item in workbook.findall("m:definedNames/m:definedName", _NS)
    }
    for name, value in expected.defined_names.items():
        stored = names.get(name)
        if stored is None:
            raise WorkbookError(f"defined name {name} is missing")
        text = stored[1:] if stored.startswith("=") else stored
        if not (text.startswith('"') and text.endswith('"')):
            raise WorkbookError(f"defined name {name} is not a text constant: {stored[:60]!r}")
        if text[1:-1].replace('""', '"') != value.replace("\n", " "):
            raise WorkbookError(f"defined name {name} holds {text[:60]!r}, not {value[:60]!r}")
    shared = _shared_strings(package)
    rels = package.rels("xl/workbook.xml")
    titles = {}
    for sheet in workbook.findall("m:sheets/m:sheet", _NS):
        titles[sheet.get("name")] = rels.get(sheet.get(_REL_ID, ""), "")
    found_tables = {}
    for title, part in titles.items():
        sheet_rels = package.rels(part)
        sheet_xml = package.read(part)
        # the tableParts element is the sheet's last; parsing the whole sheet would cost
        # more than writing it, so only the tail is read
        tail = sheet_xml[sheet_xml.rfind(b"<tableParts") :] if b"<tableParts" in sheet_xml else b""
        for rel_id in _TABLE_PART.findall(tail):
            table_path = sheet_rels.get(rel_id.decode("ascii"), "")
            table = package.xml(table_path)
            headers = tuple(
                _unescape(col.get("name", ""))
                for col in table.findall("m:tableColumns/m:tableColumn", _NS)
            )
            found_tables[table.get("name")] = (title, part, table.get("ref"), headers)
    for summary in expected.tables.values():
        if summary.name not in found_tables:
            raise WorkbookError(f"table {summary.name} is missing")
        title, part, ref, headers = found_tables[summary.name]
        if title != summary.sheet_title:
            raise WorkbookError(
                f"table {summary.name} is on sheet {title!r}, not {summary.sheet_title!r}"
            )
        if ref != summary.ref:
            raise WorkbookError(f"table {summary.name} spans {ref}, not {summary.ref}")
        if headers != summary.headers:
            raise WorkbookError(
                f"table {summary.name} has headers {headers}, not {summary.headers}"
            )
        ids = _first_column(package.read(part), shared, summary.rows)
        if len(ids) != summary.rows or ids_checksum(ids) != summary.ids_sha256:
            raise WorkbookError(
                f"table {summary.name}: {len(ids):,} rows of customer ids read back do not "
                f"match the {summary.rows:,} written"
            )
    if expected.has_vba:
        try:
            head = package.read("xl/vbaProject.bin")[:8]
        except KeyError:
            raise WorkbookError("the VBA project xl/vbaProject.bin is missing") from None
        if head != _CFB_SIGNATURE:
            raise WorkbookError("xl/vbaProject.bin is not a compound file")
    if expected.buttons:
        drawings = [n for n in package.parts if n.startswith("xl/drawings/vmlDrawing")]
        vml = b"".join(package.parts[n] for n in drawings).decode("utf-8", "replace")
        for macro in expected.buttons:
            if f"[0]!{macro}" not in vml:
                raise WorkbookError(f"no button is bound to macro {macro}")


class _SharedStrings:
    """The shared string table, decoded on demand: only the strings the id columns use.

    The items are located with one regular expression over the part; an item that is a
    single plain ``<t>`` (no markup, entity or CR inside) is its text after the
    ``_xHHHH_`` escapes, anything else (rich text runs, entities) goes through the XML
    parser. The number of items must match the part's ``uniqueCount``.
    """

    def __init__(self, xml: bytes | None) -> None:
        self.items: list[bytes] = []
        self.cache: dict[int, str] = {}
        if xml is None:
            return
        self.items = [m or b"" for m in _SI_ITEM.findall(xml)]
        head = _SST_COUNT.search(xml[:1000])
        if head is not None and int(head.group(1)) != len(self.items):
            raise WorkbookError(
                f"the shared string table lists {len(self.items):,} items, not the "
                f"{int(head.group(1)):,} it declares"
            )

    def texts(self, indexes: list[int]) -> list[str]:
        """The strings at ``indexes``, in order."""
        cache, decode = self.cache, self.__getitem__
        return [cache[i] if i in cache else decode(i) for i in indexes]

    def __getitem__(self, index: int) -> str:
        text = self.cache.get(index)
        if text is None:
            try:
                item = self.items[index]
            except IndexError:
                raise WorkbookError(f"shared string {index} does not exist") from None
            plain = _PLAIN_ITEM.fullmatch(item)
            if plain is not None:
                text = plain.group(1).decode("utf-8")
                if "_x" in text:
                    text = _unescape(text)
            else:
                element = ElementTree.fromstring(b'<si xmlns="%s">%s</si>' % (_NS_MAIN, item))
                text = _item_text(element)
            self.cache[index] = text
        return text


def _shared_strings(package: _Package) -> _SharedStrings:
    return _SharedStrings(package.parts.get("xl/sharedStrings.xml"))


_NS_MAIN = _NS["m"].encode("ascii")
_SI_ITEM = re.compile(rb"<si(?:>(.*?)</si>|\s*/>)", re.S)
_SST_COUNT = re.compile(rb'<sst\b[^>]*\buniqueCount="(\d+)"')
_PLAIN_ITEM = re.compile(rb'<t(?: xml:space="preserve")?>([^<&\r]*)</t>')
_A_SHARED = re.compile(rb'<c r="A(\d+)" t="s"><v>(\d+)</v></c>')
_A_CELL = re.compile(rb'<c r="A(\d+)"([^>]*?)(?:/>|>(.*?)</c>)', re.S)
_VALUE = re.compile(rb"<v>(.*?)</v>", re.S)
_INLINE = re.compile(rb"<is>(.*?)</is>", re.S)


def _first_column(sheet_xml: bytes, shared: _SharedStrings, rows: int) -> list[str | None]:
    """Column A of rows 2 .. rows + 1 as text (shared or inline strings, numbers)."""
    values: dict[int, str] = {}
    last = rows + 1
    strings = shared.__getitem__
    plain = _A_SHARED.findall(sheet_xml)
    if len(plain) == sheet_xml.count(b'<c r="A'):
        # every cell of column A (and none of AA, AB, ...) is a plain shared string, as
        # XlsxWriter writes text: no second look at attributes and body needed
        numbers = [int(number) for number, _ in plain]
        if numbers == list(range(1, rows + 2)):  # the header and every data row, in order
            return shared.texts([int(index) for _, index in plain[1:]])
        for number, index in plain:
            row = int(number)
            if 2 <= row <= last:
                values[row] = strings(int(index))
        return [values.get(row) for row in range(2, rows + 2)]
    for number, attributes, body in _A_CELL.findall(sheet_xml):
        row = int(number)
        if row < 2 or row > last:
            continue
        if body[:3] == b"<v>" and body[-4:] == b"</v>" and b"<" not in body[3:-4]:
            value = body[3:-4]  # the usual <v>..</v> body, without a second search
        else:
            found = _VALUE.search(body)
            value = found.group(1) if found else None
        if b't="s"' in attributes and value:
            values[row] = strings(int(value))
        elif b't="inlineStr"' in attributes:
            inline = _INLINE.search(body)
            element = ElementTree.fromstring(
                b'<is xmlns="%s">' % _NS_MAIN + (inline.group(1) if inline else b"") + b"</is>"
            )
            values[row] = _item_text(element)
        elif value:
            values[row] = _unescape(value.decode("utf-8"))
    return [values.get(row) for row in range(2, rows + 2)]
