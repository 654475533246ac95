"""Build a source-only VBA project (``xl/vbaProject.bin``) from plain-text modules.

Implements [MS-OVBA] 2.3: the ``PROJECT`` stream (2.3.1), ``PROJECTwm`` (2.3.3), and the
``VBA`` storage with ``_VBA_PROJECT`` (2.3.4.1, version 0xFFFF so Office ignores the
absent performance caches and compiles from source), the compressed ``dir`` stream
(2.3.4.2) and one module stream per module holding only its compressed source at
offset 0 (2.3.4.3). The container is written by :mod:`crm_batch.excel.vba.cfb` and
compressed with :mod:`crm_batch.excel.vba.compression`.

Module text is declared as code page 1252 (PROJECTCODEPAGE, as xlwings' own standalone
workbook) and restricted to ASCII, which every Windows ANSI code page reads the same, so
a module opens identically on zh-CN (936) and en (1252) machines; anything else is
rejected with the module, line and column. Labels for staff belong in cells, not VBA.
"""

from __future__ import annotations

import enum
import hashlib
import importlib.metadata
import importlib.util
import re
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crm_batch.errors import CrmBatchError, ExitCode
from crm_batch.excel.vba.cfb import write_compound_file
from crm_batch.excel.vba.compression import CHUNK_SIZE, compress

CODE_PAGE = 1252
LCID_EN_US = 0x0409
SYSKIND_WIN64 = 3  # as in xlwings' quickstart_standalone.xlsm; Office recompiles anyway

WORKBOOK_BASE = "0{00020819-0000-0000-C000-000000000046}"
WORKSHEET_BASE = "0{00020820-0000-0000-C000-000000000046}"
CLASS_BASE = "0{FCFB3D2A-A0FA-1068-A738-08002B3371B5}"

# Registered type-library references (2.3.4.2.2.5): OLE Automation and the Office
# object library, the libraries Office puts in every new Excel project.
REFERENCES: tuple[tuple[str, str], ...] = (
    (
        "stdole",
        "*\\G{00020430-0000-0000-C000-000000000046}#2.0#0"
        "#C:\\Windows\\System32\\stdole2.tlb#OLE Automation",
    ),
    (
        "Office",
        "*\\G{2DF8D04C-5BFA-101B-BDE5-00AA0044DE52}#2.0#0"
        "#C:\\Program Files\\Common Files\\Microsoft Shared\\OFFICE16\\MSO.DLL"
        "#Microsoft Office 16.0 Object Library",
    ),
)

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}\Z")
_VB_NAME = re.compile(r'Attribute VB_Name = "([^"]*)"\Z')


class VbaProjectError(CrmBatchError):
    """A VBA module or project that cannot be built; the message names the module."""

    exit_code = ExitCode.DATA


class ModuleKind(enum.Enum):
    """The three module types of MS-OVBA 2.3.4.2.3.2.8 (MODULETYPE)."""

    PROCEDURAL = "procedural"
    CLASS = "class"
    DOCUMENT = "document"


@dataclass(frozen=True)
class VbaModule:
    """One module: its name, kind and the source text exactly as stored in its stream.

    ``source`` starts with the ``Attribute`` lines (``Attribute VB_Name = "..."`` first)
    and uses CRLF line ends; build modules with :meth:`from_bas`, :meth:`from_cls` or
    :meth:`document` rather than by hand.
    """

    name: str
    kind: ModuleKind
    source: str

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.name):
            raise VbaProjectError(
                f"VBA module name {self.name!r}: use a letter, then up to 30 letters, "
                "digits or underscores"
            )
        first = self.source.split("\r\n", 1)[0]
        match = _VB_NAME.match(first)
        if not match or match.group(1) != self.name:
            raise VbaProjectError(
                f"VBA module {self.name}: the source must start with "
                f'Attribute VB_Name = "{self.name}"'
            )
        bare = self.source.replace("\r\n", "")
        if "\r" in bare or "\n" in bare:
            raise VbaProjectError(f"VBA module {self.name}: line ends must be CRLF")
        _check_ascii(self.name, self.source)

    @property
    def stream_text(self) -> bytes:
        """The module text encoded in the project code page (ASCII, see module docs)."""
        return self.source.encode("ascii")

    @classmethod
    def from_bas(cls, text: str, *, origin: str = "<text>") -> VbaModule:
        """A standard module from an exported ``.bas`` file's text."""
        source = _crlf(text)
        return cls(_vb_name(source, origin), ModuleKind.PROCEDURAL, source)

    @classmethod
    def from_cls(cls, text: str, *, origin: str = "<text>") -> VbaModule:
        """A class module from an exported ``.cls`` file's text.

        The export header (``VERSION 1.0 CLASS`` ... ``END``) is dropped and the
        attributes Office stores for a class (VB_Base, VB_TemplateDerived,
        VB_Customizable) are added where the export leaves them out.
        """
        lines = _crlf(text).split("\r\n")
        if lines and lines[0].startswith("VERSION "):
            try:
                lines = lines[lines.index("END") + 1 :]
            except ValueError:
                raise VbaProjectError(f"{origin}: class header without END line") from None
        attributes: dict[str, str] = {}
        while lines and lines[0].startswith("Attribute "):
            key, _, value = lines.pop(0)[len("Attribute ") :].partition(" = ")
            attributes[key] = value
        defaults = {
            "VB_Base": f'"{CLASS_BASE}"',
            "VB_GlobalNameSpace": "False",
            "VB_Creatable": "False",
            "VB_PredeclaredId": "False",
            "VB_Exposed": "False",
            "VB_TemplateDerived": "False",
            "VB_Customizable": "False",
        }
        if "VB_Name" not in attributes:
            raise VbaProjectError(f'{origin}: no Attribute VB_Name = "..." line')
        ordered = {"VB_Name": attributes.pop("VB_Name")}
        for key, value in defaults.items():
            ordered[key] = attributes.pop(key, value)
        ordered.update(attributes)
        header = [f"Attribute {key} = {value}" for key, value in ordered.items()]
        source = "\r\n".join(header + lines)
        return cls(_vb_name(source, origin), ModuleKind.CLASS, source)

    @classmethod
    def document(cls, name: str, base: str = WORKSHEET_BASE, code: str = "") -> VbaModule:
        """A document module (ThisWorkbook: ``base=WORKBOOK_BASE``; a worksheet)."""
        lines = [
            f'Attribute VB_Name = "{name}"',
            f'Attribute VB_Base = "{base}"',
            "Attribute VB_GlobalNameSpace = False",
            "Attribute VB_Creatable = False",
            "Attribute VB_PredeclaredId = True",
            "Attribute VB_Exposed = True",
            "Attribute VB_TemplateDerived = False",
            "Attribute VB_Customizable = True",
        ]
        return cls(name, ModuleKind.DOCUMENT, "\r\n".join(lines) + "\r\n" + _crlf(code))


def _crlf(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return text if not text or text.endswith("\r\n") else text + "\r\n"


def _vb_name(source: str, origin: str) -> str:
    match = _VB_NAME.match(source.split("\r\n", 1)[0])
    if not match:
        raise VbaProjectError(f'{origin}: the first line must be Attribute VB_Name = "..."')
    return match.group(1)


def _check_ascii(name: str, source: str) -> None:
    for number, line in enumerate(source.split("\r\n"), start=1):
        for column, char in enumerate(line, start=1):
            if not (" " <= char <= "~" or char == "\t"):
                raise VbaProjectError(
                    f"VBA module {name}, line {number}, column {column}: character "
                    f"{char!r} (U+{ord(char):04X}) is not printable ASCII; VBA source is "
                    "stored in the machine's ANSI code page, so keep it ASCII and put "
                    "translated labels in cells"
                )


def read_module_file(path: str | Path) -> VbaModule:
    """A module from a ``.bas`` or ``.cls`` file (ASCII text, any line ends)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError as exc:
        raise VbaProjectError(f"{path}: byte {exc.start} is not ASCII") from None
    if path.suffix.lower() == ".cls":
        return VbaModule.from_cls(text, origin=str(path))
    if path.suffix.lower() == ".bas":
        return VbaModule.from_bas(text, origin=str(path))
    raise VbaProjectError(f"{path}: expected a .bas or .cls file")


def excel_document_modules(sheet_code_names: Sequence[str]) -> list[VbaModule]:
    """``ThisWorkbook`` and one document module per worksheet code name."""
    modules = [VbaModule.document("ThisWorkbook", WORKBOOK_BASE)]
    return modules + [VbaModule.document(name) for name in sheet_code_names]


def standalone_xlwings_modules() -> list[VbaModule]:
    """xlwings' own VBA module and the ``Dictionary`` class it needs, from the installed
    xlwings, so a workbook runs without the add-in and matches the installed version."""
    spec = importlib.util.find_spec("xlwings")
    if spec is None or not spec.submodule_search_locations:
        raise VbaProjectError("xlwings is not installed: pip install xlwings")
    package = Path(next(iter(spec.submodule_search_locations)))
    version = importlib.metadata.version("xlwings")
    wanted = [package / "xlwings.bas", package / "addin" / "Dictionary.cls"]
    missing = [str(p) for p in wanted if not p.is_file()]
    if missing:
        raise VbaProjectError(
            f"the installed xlwings {version} lacks its VBA sources {', '.join(missing)}; "
            "install an xlwings release that ships them (0.33 or later)"
        )
    return [read_module_file(path) for path in wanted]


def build_vba_project(modules: Sequence[VbaModule], project_name: str) -> bytes:
    """The bytes of a source-only ``vbaProject.bin`` holding ``modules`` in order."""
    if not _IDENTIFIER.match(project_name):
        raise VbaProjectError(
            f"VBA project name {project_name!r}: use a letter, then up to 30 letters, "
            "digits or underscores"
        )
    if not modules:
        raise VbaProjectError("a VBA project needs at least one module")
    upper = [module.name.upper() for module in modules]
    clashes = sorted({m.name for m in modules if upper.count(m.name.upper()) > 1})
    if clashes:
        raise VbaProjectError(f"VBA module names used twice (case-insensitively): {clashes}")
    if "DIR" in upper:
        raise VbaProjectError("a VBA module cannot be named 'dir': the dir stream has it")

    digest = hashlib.sha256("\0".join([project_name, *(m.name for m in modules)]).encode()).digest()
    project_id = "{" + str(uuid.UUID(bytes=digest[:16], version=4)).upper() + "}"
    streams = {
        "PROJECT": _project_stream(modules, project_name, project_id, digest[16:]),
        "PROJECTwm": _projectwm_stream(modules),
        "VBA/_VBA_PROJECT": struct.pack("<HHBH", 0x61CC, 0xFFFF, 0x00, 0x0001),
        "VBA/dir": compress(_dir_stream(modules, project_name)),
    }
    for module in modules:
        streams[f"VBA/{module.name}"] = module_stream(module.stream_text)
    return write_compound_file(streams)


def module_stream(text: bytes) -> bytes:
    """A module stream: the compressed source at offset 0 (2.3.4.3), exact on read.

    The spec stores an incompressible last chunk raw and pads it with zero bytes to 4096
    (2.4.1.3.10), which would add NULs to the source. When that happens the text gets
    trailing blank lines up to the chunk boundary instead, so it reads back unpadded.
    """
    container = compress(text)
    tail = len(text) % CHUNK_SIZE
    if tail and _last_chunk_is_raw(container):
        missing = CHUNK_SIZE - tail
        container = compress(text + b" " * (missing % 2) + b"\r\n" * (missing // 2))
    return container


def _last_chunk_is_raw(container: bytes) -> bool:
    """Whether the last chunk of a CompressedContainer is raw (flag bit 0, 2.4.1.1.5)."""
    position, raw = 1, False
    while position < len(container):
        header = int.from_bytes(container[position : position + 2], "little")
        raw = not header & 0x8000
        position += (header & 0x0FFF) + 3
    return raw


def _project_stream(
    modules: Sequence[VbaModule], project_name: str, project_id: str, salt: bytes
) -> bytes:
    """The PROJECT stream (2.3.1) of an unprotected, visible project."""
    lines = [f'ID="{project_id}"']
    for module in modules:
        if module.kind is ModuleKind.DOCUMENT:
            lines.append(f"Document={module.name}/&H00000000")
        elif module.kind is ModuleKind.CLASS:
            lines.append(f"Class={module.name}")
        else:
            lines.append(f"Module={module.name}")
    seeds = iter(salt)
    cmg = encrypt_data(bytes(4), project_id, next(seeds)).hex().upper()
    dpb = encrypt_data(bytes(1), project_id, next(seeds)).hex().upper()
    gc = encrypt_data(bytes([0xFF]), project_id, next(seeds)).hex().upper()
    lines += [
        f'Name="{project_name}"',
        'HelpContextID="0"',
        'VersionCompatible32="393222000"',
        # 2.3.1.15-17: protection state none, no password, visible (Data Encryption 2.4.3)
        f'CMG="{cmg}"',
        f'DPB="{dpb}"',
        f'GC="{gc}"',
        "",
        "[Host Extender Info]",
        "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000",
        "",
        "[Workspace]",
        *(f"{module.name}=0, 0, 0, 0, C" for module in modules),
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def encrypt_data(data: bytes, project_id: str, seed: int) -> bytes:
    """Data Encryption (MS-OVBA 2.4.3.2) of ``data`` for the project ``project_id``."""
    version = 2
    project_key = sum(project_id.encode("ascii")) & 0xFF
    out = bytearray([seed, seed ^ version, seed ^ project_key])
    unencrypted_1, encrypted_1, encrypted_2 = project_key, out[2], out[1]
    ignored = bytes([0x07]) * ((seed & 6) // 2)  # any value; 0x07 as the spec example
    for byte in ignored + struct.pack("<I", len(data)) + data:
        byte_enc = byte ^ ((encrypted_2 + unencrypted_1) & 0xFF)
        out.append(byte_enc)
        encrypted_2, encrypted_1, unencrypted_1 = encrypted_1, byte_enc, byte
    return bytes(out)


def decrypt_data(encrypted: bytes) -> tuple[int, bytes]:
    """Data Decryption (MS-OVBA 2.4.3.3): ``(project_key, data)``."""
    seed, version_enc, key_enc = encrypted[0], encrypted[1], encrypted[2]
    if seed ^ version_enc != 2:
        raise VbaProjectError("encrypted project data: version is not 2")
    project_key = seed ^ key_enc
    unencrypted_1, encrypted_1, encrypted_2 = project_key, key_enc, version_enc
    plain = bytearray()
    for byte_enc in encrypted[3:]:
        byte = byte_enc ^ ((encrypted_2 + unencrypted_1) & 0xFF)
        plain.append(byte)
        encrypted_2, encrypted_1, unencrypted_1 = encrypted_1, byte_enc, byte
    skip = (seed & 6) // 2
    length = int.from_bytes(plain[skip : skip + 4], "little")
    data = bytes(plain[skip + 4 :])
    if len(data) != length:
        raise VbaProjectError("encrypted project data: length does not match")
    return project_key, data


def _projectwm_stream(modules: Sequence[VbaModule]) -> bytes:
    """PROJECTwm (2.3.3): each module name in MBCS and UTF-16, then a terminator."""
    out = bytearray()
    for module in modules:
        out += module.name.encode("ascii") + b"\x00"
        out += module.name.encode("utf-16-le") + b"\x00\x00"
    return bytes(out + b"\x00\x00")


def _record(record_id: int, data: bytes) -> bytes:
    return struct.pack("<HI", record_id, len(data)) + data


def _text_record(record_id: int, unicode_id: int, text: str) -> bytes:
    return _record(record_id, text.encode("ascii")) + _record(unicode_id, text.encode("utf-16-le"))


def _dir_stream(modules: Sequence[VbaModule], project_name: str) -> bytes:
    """The decompressed ``dir`` stream (2.3.4.2)."""
    out = bytearray()
    # PROJECTINFORMATION (2.3.4.2.1)
    out += _record(0x0001, struct.pack("<I", SYSKIND_WIN64))
    out += _record(0x0002, struct.pack("<I", LCID_EN_US))
    out += _record(0x0014, struct.pack("<I", LCID_EN_US))
    out += _record(0x0003, struct.pack("<H", CODE_PAGE))
    out += _record(0x0004, project_name.encode("ascii"))
    out += _text_record(0x0005, 0x0040, "")  # PROJECTDOCSTRING
    out += _text_record(0x0006, 0x003D, "")  # PROJECTHELPFILEPATH (both paths)
    out += _record(0x0007, struct.pack("<I", 0))  # PROJECTHELPCONTEXT
    out += _record(0x0008, struct.pack("<I", 0))  # PROJECTLIBFLAGS
    out += struct.pack("<HIIH", 0x0009, 4, 1, 0)  # PROJECTVERSION 1.0
    out += _text_record(0x000C, 0x003C, "")  # PROJECTCONSTANTS
    # PROJECTREFERENCES (2.3.4.2.2): REFERENCENAME + REFERENCEREGISTERED each
    for name, libid in REFERENCES:
        out += _text_record(0x0016, 0x003E, name)
        encoded = libid.encode("ascii")
        body = struct.pack("<I", len(encoded)) + encoded + struct.pack("<IH", 0, 0)
        out += _record(0x000D, body)
    # PROJECTMODULES (2.3.4.2.3)
    out += _record(0x000F, struct.pack("<H", len(modules)))
    out += _record(0x0013, struct.pack("<H", 0xFFFF))  # PROJECTCOOKIE
    for module in modules:
        out += _record(0x0019, module.name.encode("ascii"))  # MODULENAME
        out += _record(0x0047, module.name.encode("utf-16-le"))  # MODULENAMEUNICODE
        out += _text_record(0x001A, 0x0032, module.name)  # MODULESTREAMNAME
        out += _text_record(0x001C, 0x0048, "")  # MODULEDOCSTRING
        out += _record(0x0031, struct.pack("<I", 0))  # MODULEOFFSET: source at 0
        out += _record(0x001E, struct.pack("<I", 0))  # MODULEHELPCONTEXT
        out += _record(0x002C, struct.pack("<H", 0xFFFF))  # MODULECOOKIE
        type_id = 0x0021 if module.kind is ModuleKind.PROCEDURAL else 0x0022
        out += _record(type_id, b"")  # MODULETYPE
        out += _record(0x002B, b"")  # module terminator
    out += _record(0x0010, b"")  # dir terminator
    return bytes(out)
