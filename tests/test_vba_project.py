"""The VBA project writer: MS-OVBA compression, the MS-CFB container, the project streams.

Every output is read back by an independent implementation: oletools' decompressor and
``olevba`` for the VBA side, olefile for the compound file; and where xlwings' own
``quickstart_standalone.xlsm`` is installed, its streams serve as reference bytes.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import math
import random
import re
import struct
import warnings
import zipfile
from pathlib import Path

import olefile
import openpyxl
import pytest
import xlsxwriter

with warnings.catch_warnings():  # oletools uses pyparsing's deprecated camelCase names
    warnings.simplefilter("ignore", DeprecationWarning)
    from oletools.olevba import VBA_Parser, decompress_stream

from crm_batch.excel.vba import cfb
from crm_batch.excel.vba import compression as ovba_compression
from crm_batch.excel.vba import project as vba_project
from crm_batch.excel.vba.cfb import CfbError, write_compound_file
from crm_batch.excel.vba.compression import CompressionError, compress, decompress
from crm_batch.excel.vba.project import (
    ModuleKind,
    VbaModule,
    VbaProjectError,
    build_vba_project,
    decrypt_data,
    encrypt_data,
    excel_document_modules,
    read_module_file,
    standalone_xlwings_modules,
)

REPO_DIR = Path(__file__).resolve().parent.parent
BUTTONS_BAS = REPO_DIR / "workbooks" / "vba" / "Buttons.bas"
BUTTON_MACROS = {
    "RefreshData": "b.refresh()",
    "SaveFollowups": "b.save_followups()",
    "MakeMyPdf": "b.make_pdf()",
}
XLWINGS_DIR = Path(next(iter(importlib.util.find_spec("xlwings").submodule_search_locations)))
QUICKSTART = XLWINGS_DIR / "quickstart_standalone.xlsm"

# MS-OVBA 3.2 (compression example): input and the spec's compressed container.
SPEC_EXAMPLE_INPUT = b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
SPEC_EXAMPLE_OUTPUT = bytes.fromhex(
    "012FB00023616161626364658266007061676869"
    "6A013808616B6C00306D6E6F70067102700410727374757610777879"
    "7A003C"
)


def _vba_text(size: int, seed: int = 1) -> bytes:
    """Realistic VBA-like text with CRLF line ends, about ``size`` bytes."""
    rng = random.Random(seed)
    words = ["Dim", "As", "Long", "String", "If", "Then", "End", "Sub", "Set", "Range"]
    lines = []
    while sum(len(line) + 2 for line in lines) < size:
        indent = " " * 4 * rng.randrange(3)
        lines.append(indent + " ".join(rng.choice(words) for _ in range(rng.randrange(1, 9))))
    return ("\r\n".join(lines) + "\r\n").encode()[:size]


def _walk_chunks(container: bytes) -> list[tuple[int, bool, list[tuple]]]:
    """Split a container into (size, compressed, tokens) without the module's decoder.

    Copy tokens are decoded with the bit split computed here from the spec's formula
    (2.4.1.3.19.1), so a wrong split in the module would show as a broken invariant.
    """
    chunks = []
    pos = 1
    while pos < len(container):
        header = int.from_bytes(container[pos : pos + 2], "little")
        size = (header & 0x0FFF) + 3
        assert (header >> 12) & 0b111 == 0b011, "chunk signature"
        compressed = bool(header & 0x8000)
        tokens: list[tuple] = []
        end = pos + size
        pos += 2
        if not compressed:
            pos += 4096
            chunks.append((size, False, tokens))
            continue
        done = 0
        while pos < end:
            flags = container[pos]
            pos += 1
            for bit in range(8):
                if pos >= end:
                    break
                if flags >> bit & 1:
                    token = int.from_bytes(container[pos : pos + 2], "little")
                    bit_count = max(math.ceil(math.log2(done)), 4)
                    length = (token & (0xFFFF >> bit_count)) + 3
                    offset = (token >> (16 - bit_count)) + 1
                    tokens.append(("copy", done, offset, length, bit_count))
                    done += length
                    pos += 2
                else:
                    tokens.append(("literal", done))
                    done += 1
                    pos += 1
        chunks.append((size, True, tokens))
    return chunks


# -- MS-OVBA compression ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x",
        b"ab",
        b"abc" * 1365 + b"a",  # 4096
        _vba_text(4095),
        _vba_text(4096),
        _vba_text(4097),
        _vba_text(8192),
        _vba_text(8193),
        _vba_text(20000, seed=2),
        b"a" * 10000,
        b"\x00" * 4096,
        bytes(range(256)) * 40,
        random.Random(3).randbytes(8192),  # incompressible: two raw chunks
        random.Random(4).randbytes(4096 + 900),  # raw chunk, then a compressed tail
        SPEC_EXAMPLE_INPUT,
    ],
    ids=lambda d: f"{len(d)}b",
)
def test_compression_round_trip_and_independent_decoder(data: bytes) -> None:
    container = compress(data)
    assert decompress(container) == data
    assert bytes(decompress_stream(bytearray(container))) == data


def test_round_trip_of_real_vba_sources() -> None:
    for path in [XLWINGS_DIR / "xlwings.bas", XLWINGS_DIR / "addin" / "Dictionary.cls"]:
        data = path.read_bytes()
        container = compress(data)
        assert len(container) < len(data) // 2
        assert bytes(decompress_stream(bytearray(container))) == data


def test_incompressible_short_last_chunk_is_raw_and_padded_as_the_spec_says() -> None:
    data = random.Random(5).randbytes(4000)
    container = compress(data)
    assert len(container) == 1 + 2 + 4096
    assert decompress(container) == data + bytes(96)


@pytest.mark.parametrize(
    "data",
    [_vba_text(30000, seed=6), b"ab" * 9000, b"a" * 9000, random.Random(7).randbytes(9000)],
    ids=["text", "pairs", "run", "random"],
)
def test_chunk_and_copy_token_invariants(data: bytes) -> None:
    chunks = _walk_chunks(compress(data))
    assert len(chunks) == math.ceil(len(data) / 4096)
    for index, (size, compressed, tokens) in enumerate(chunks):
        expected = min(4096, len(data) - index * 4096)
        assert 3 <= size <= 4098
        if not compressed:
            assert size == 4098
            continue
        produced = 0
        for token in tokens:
            if token[0] == "copy":
                _, position, offset, length, bit_count = token
                assert 1 <= offset <= position
                assert 3 <= length <= (0xFFFF >> bit_count) + 3
                assert position + length <= expected
                produced = position + length
            else:
                produced = token[1] + 1
        assert produced == expected


@pytest.mark.parametrize(
    ("difference", "bit_count", "max_length"),
    [(1, 4, 4098), (16, 4, 4098), (17, 5, 2050), (32, 5, 2050), (33, 6, 1026),
     (2048, 11, 34), (2049, 12, 18), (4095, 12, 18)],
)  # fmt: skip
def test_copy_token_help_follows_the_spec(difference: int, bit_count: int, max_length: int) -> None:
    # 2.4.1.3.19.1: the further into the chunk, the more offset bits, the shorter a copy
    assert ovba_compression.copy_token_help(difference)[2:] == (bit_count, max_length)


def test_copy_token_packing() -> None:
    token = ovba_compression.pack_copy_token(offset=7, length=3, difference=24)
    assert token == 0x3000  # the third token sequence of the spec example
    assert ovba_compression.unpack_copy_token(token, 24) == (7, 3)
    with pytest.raises(ValueError, match="out of range"):
        ovba_compression.pack_copy_token(offset=1, length=19, difference=3000)


def test_spec_example_decompresses_and_we_compress_it_as_small() -> None:
    assert decompress(SPEC_EXAMPLE_OUTPUT) == SPEC_EXAMPLE_INPUT
    assert len(compress(SPEC_EXAMPLE_INPUT)) == len(SPEC_EXAMPLE_OUTPUT)


@pytest.mark.parametrize(
    "container",
    [b"", b"\x02", b"\x01\x00", b"\x01\xff\x0f", b"\x01\x01\xb0\x01\x00\x00"],
    ids=["empty", "signature", "truncated", "bad-chunk-signature", "copy-before-chunk"],
)
def test_decompress_rejects_broken_containers(container: bytes) -> None:
    with pytest.raises(CompressionError):
        decompress(container)


@pytest.fixture(scope="module")
def quickstart_project() -> olefile.OleFileIO:
    if not QUICKSTART.is_file():
        pytest.skip(f"xlwings' reference workbook is not installed: {QUICKSTART}")
    with zipfile.ZipFile(QUICKSTART) as archive:
        return olefile.OleFileIO(archive.read("xl/vbaProject.bin"))


def test_output_equals_xlwings_reference_streams_byte_for_byte(quickstart_project) -> None:
    for stream in ["VBA/dir", "VBA/xlwings"]:  # both compressed from text offset 0
        reference = quickstart_project.openstream(stream).read()
        assert compress(decompress(reference)) == reference


# -- MS-CFB container ---------------------------------------------------------------


def _read_all(data: bytes) -> olefile.OleFileIO:
    return olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)


def test_cfb_streams_read_back_identical_across_the_mini_stream_cutoff() -> None:
    rng = random.Random(8)
    sizes = [0, 1, 63, 64, 65, 511, 512, 4095, 4096, 4097, 8192, 70000]
    streams = {f"S/s{size}": rng.randbytes(size) for size in sizes}
    streams["top"] = b"top-level"
    data = write_compound_file(streams)
    assert data[:8] == bytes.fromhex("D0CF11E0A1B11AE1")
    assert struct.unpack_from("<HHHHH", data, 24) == (0x3E, 3, 0xFFFE, 9, 6)
    assert len(data) % 512 == 0
    ole = _read_all(data)
    for path, content in streams.items():
        assert ole.get_size(path) == len(content)
        assert ole.openstream(path).read() == content
    assert sorted(ole.listdir(storages=True))[0] == ["S"]
    for size in (4096, 4097, 8192):  # regular sectors: the data sits in the file itself
        start = ole.direntries[ole._find(f"S/s{size}")].isectStart
        assert data[(start + 1) * 512 : (start + 1) * 512 + size] == streams[f"S/s{size}"]
    root = ole.direntries[0]
    mini = sum(-(-s // 64) * 64 for s in sizes if 0 < s < 4096) + 64  # + "top"
    assert root.size == mini


def test_cfb_sibling_trees_are_ordered_by_length_then_uppercase() -> None:
    rng = random.Random(9)
    names = {
        "".join(rng.choice("abcXYZ_09") for _ in range(rng.randint(1, 31))) for _ in range(400)
    }
    names = list({name.upper(): name for name in names}.values())
    streams = {f"VBA/{name}": name.encode() * rng.randint(1, 200) for name in names}
    ole = _read_all(write_compound_file(streams))
    for path, content in streams.items():
        assert ole.openstream(path).read() == content

    def in_order(sid: int) -> list[str]:
        if sid == olefile.NOSTREAM:
            return []
        entry = ole.direntries[sid]
        return [*in_order(entry.sid_left), entry.name, *in_order(entry.sid_right)]

    storage = ole.direntries[ole._find("VBA")]
    ordered = in_order(storage.sid_child)
    assert ordered == sorted(names, key=cfb.name_sort_key)
    assert [len(n) for n in ordered] == sorted(len(n) for n in names)


def test_cfb_large_stream_needs_difat_sectors() -> None:
    content = random.Random(10).randbytes(8_000_000)  # 15,625 sectors: 123 FAT sectors
    data = write_compound_file({"big": content, "small": b"s"})
    fat_sectors, difat_count = struct.unpack_from("<I", data, 44)[0], data[72:76]
    assert fat_sectors > 109
    assert int.from_bytes(difat_count, "little") == 1
    ole = _read_all(data)
    assert ole.openstream("big").read() == content
    assert ole.openstream("small").read() == b"s"


def test_cfb_several_fat_sectors() -> None:
    content = random.Random(11).randbytes(300_000)
    data = write_compound_file({"a": content, "b": content[:4096]})
    assert struct.unpack_from("<I", data, 44)[0] == 5
    ole = _read_all(data)
    assert ole.openstream("a").read() == content
    assert ole.openstream("b").read() == content[:4096]


@pytest.mark.parametrize(
    ("streams", "message"),
    [
        ({"x" * 32: b""}, "1 to 31"),
        ({"a/b": b"", "A/c": b"", "a": b""}, "clashes"),
        ({"dir": b"1", "DIR": b"2"}, "clashes"),
        ({"bad!name": b""}, "cannot contain"),
    ],
)
def test_cfb_rejects_names_it_cannot_hold(streams: dict[str, bytes], message: str) -> None:
    with pytest.raises(CfbError, match=message):
        write_compound_file(streams)


# -- the VBA project ---------------------------------------------------------------


@pytest.fixture(scope="module")
def team_modules() -> list[VbaModule]:
    return [
        *excel_document_modules(["Sheet1", "Sheet2"]),
        *standalone_xlwings_modules(),
        read_module_file(BUTTONS_BAS),
    ]


def _extracted(data: bytes, filename: str = "vbaProject.bin") -> dict[str, str]:
    parser = VBA_Parser(filename, data=data)
    try:
        return {stream.split("/")[-1]: code for _, stream, _, code in parser.extract_all_macros()}
    finally:
        parser.close()


def test_olevba_extracts_exactly_our_sources(team_modules: list[VbaModule]) -> None:
    data = build_vba_project(team_modules, "CrmTeam")
    assert _extracted(data) == {module.name: module.source for module in team_modules}
    assert len(next(m for m in team_modules if m.name == "xlwings").source) > 45_000


def test_project_streams_follow_the_spec(team_modules: list[VbaModule]) -> None:
    ole = _read_all(build_vba_project(team_modules, "CrmTeam"))
    assert sorted("/".join(p) for p in ole.listdir()) == sorted(
        ["PROJECT", "PROJECTwm", "VBA/_VBA_PROJECT", "VBA/dir"]
        + [f"VBA/{m.name}" for m in team_modules]
    )
    assert ole.openstream("VBA/_VBA_PROJECT").read() == bytes.fromhex("CC61FFFF000100")
    project = ole.openstream("PROJECT").read().decode("ascii")
    lines = project.split("\r\n")
    assert lines[1:7] == [
        "Document=ThisWorkbook/&H00000000",
        "Document=Sheet1/&H00000000",
        "Document=Sheet2/&H00000000",
        "Module=xlwings",
        "Class=Dictionary",
        "Module=Buttons",
    ]
    assert 'Name="CrmTeam"' in lines
    assert "[Host Extender Info]" in lines
    assert "[Workspace]" in lines
    project_id = re.match(r'ID="(\{[0-9A-F-]{36}\})"', lines[0]).group(1)
    values = dict(line.split("=", 1) for line in lines if line[:4] in {"CMG=", "DPB=", 'GC="'})
    expected = {"CMG": bytes(4), "DPB": b"\x00", "GC": b"\xff"}
    for key, plain in expected.items():
        key_byte, data = decrypt_data(bytes.fromhex(values[key].strip('"')))
        assert (key_byte, data) == (sum(project_id.encode()) & 0xFF, plain)
    wm = ole.openstream("PROJECTwm").read()
    assert wm.startswith(b"ThisWorkbook\x00T\x00h\x00i\x00s\x00")
    assert wm.endswith(b"B\x00u\x00t\x00t\x00o\x00n\x00s\x00\x00\x00\x00\x00")
    directory = decompress(ole.openstream("VBA/dir").read())
    assert directory.count(struct.pack("<HII", 0x0031, 4, 0)) == len(team_modules)
    assert directory.endswith(struct.pack("<HI", 0x0010, 0))
    assert b"stdole" in directory
    assert b"Office" in directory


def test_build_is_deterministic(team_modules: list[VbaModule]) -> None:
    assert build_vba_project(team_modules, "CrmTeam") == build_vba_project(team_modules, "CrmTeam")


def test_data_encryption_reproduces_the_spec_example() -> None:
    project_id = "{917DED54-440B-4FD1-A5C1-74ACF261E600}"  # MS-OVBA 3.1.6
    assert encrypt_data(bytes(4), project_id, 0x07).hex().upper() == (
        "0705D8E3D8EDDBF1DBF1DBF1DBF1"
    )
    assert encrypt_data(b"\x00", project_id, 0x0E).hex().upper() == "0E0CD1ECDFF4E7F5E7F5E7"
    assert encrypt_data(b"\xff", project_id, 0x15).hex().upper() == "1517CAF1D6F9D7F9D706"


def test_modules_match_what_office_stored_in_xlwings_reference(quickstart_project) -> None:
    def stored(name: str) -> str:
        # Office put a performance cache before the source; the source is the last
        # compressed container in the stream, found at its chunk header.
        raw = quickstart_project.openstream(f"VBA/{name}").read()
        for offset in range(len(raw)):
            try:
                return decompress(raw[offset:]).decode("ascii")
            except (CompressionError, UnicodeDecodeError, IndexError):
                continue
        raise AssertionError(name)

    documents = {m.name: m for m in excel_document_modules(["Sheet1"])}
    assert documents["ThisWorkbook"].source == stored("ThisWorkbook")
    assert documents["Sheet1"].source == stored("Sheet1")
    xlwings_module, dictionary = standalone_xlwings_modules()
    assert dictionary.kind is ModuleKind.CLASS
    reference = stored("Dictionary")
    lines = reference.split("\r\n")
    header = list(itertools.takewhile(lambda line: line.startswith("Attribute "), lines))
    assert len(header) == 9
    assert dictionary.source.split("\r\n")[: len(header)] == header
    # the VBA editor re-cases identifiers it knows (err.Raise -> Err.Raise) when saving
    assert dictionary.source.lower() == reference.lower()
    assert xlwings_module.source == stored("xlwings").replace("\n", "\r\n")


def test_buttons_module_calls_one_python_action_per_button() -> None:
    module = read_module_file(BUTTONS_BAS)
    assert (module.name, module.kind) == ("Buttons", ModuleKind.PROCEDURAL)
    subs = re.findall(r'Public Sub (\w+)\(\)\r\n    RunPython "([^"]+)"\r\nEnd Sub', module.source)
    assert dict(subs) == {
        macro: f"import crm_batch.buttons as b; {call}" for macro, call in BUTTON_MACROS.items()
    }


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_module_sets_round_trip_through_olevba(seed: int) -> None:
    rng = random.Random(seed)
    modules = []
    for index in range(rng.randint(1, 12)):
        name = rng.choice("ABCmxz") + "".join(
            rng.choice("abc_019") for _ in range(rng.randint(0, 30))
        )
        name = f"{name[:28]}{index}"
        body = "\r\n".join(
            "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, 120)))
            for _ in range(rng.randint(0, 400))
        )
        kind = rng.choice(["bas", "cls"])
        text = f'Attribute VB_Name = "{name}"\r\n{body}'
        module = VbaModule.from_bas(text) if kind == "bas" else VbaModule.from_cls(text)
        modules.append(module)
    data = build_vba_project(modules, "Fuzz")
    extracted = _extracted(data)
    assert sorted(extracted) == sorted(module.name for module in modules)
    for module in modules:
        assert _same_source(extracted[module.name], module.source)


def _same_source(stored: str, source: str) -> bool:
    """Identical, or (incompressible last chunk) padded with blank lines to 4096 bytes."""
    filler = stored[len(source) :]
    return stored.startswith(source) and (
        not filler or (len(stored) % 4096 == 0 and not filler.strip(" \r\n"))
    )


def test_incompressible_module_tail_is_filled_with_blank_lines_not_nuls() -> None:
    rng = random.Random(12)
    body = "".join(chr(rng.randint(33, 126)) for _ in range(3900))
    module = VbaModule.from_bas(f'Attribute VB_Name = "Noise"\r\n\'{body}\r\n')
    stored = decompress(vba_project.module_stream(module.stream_text)).decode("ascii")
    assert len(stored) == 4096
    assert stored != module.source
    assert _same_source(stored, module.source)
    assert _extracted(build_vba_project([module], "P"))["Noise"] == stored


def test_non_ascii_source_is_rejected_with_its_place() -> None:
    text = 'Attribute VB_Name = "Labels"\nSub Hello()\n    MsgBox "客户"\nEnd Sub\n'
    with pytest.raises(VbaProjectError, match=r"Labels, line 3, column 13: .*U\+5BA2"):
        VbaModule.from_bas(text)


def test_non_ascii_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "Bad.bas"
    path.write_bytes(b'Attribute VB_Name = "Bad"\r\n\xe9\r\n')
    with pytest.raises(VbaProjectError, match=r"Bad\.bas: byte 27 is not ASCII"):
        read_module_file(path)


@pytest.mark.parametrize(
    ("modules", "project", "message"),
    [
        ([], "P", "at least one module"),
        (["A", "a"], "P", "used twice"),
        (["dir"], "P", "cannot be named 'dir'"),
        (["A"], "1P", "project name"),
    ],
)
def test_project_errors(modules: list[str], project: str, message: str) -> None:
    built = [VbaModule.from_bas(f'Attribute VB_Name = "{name}"\r\n') for name in modules]
    with pytest.raises(VbaProjectError, match=message):
        build_vba_project(built, project)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Sub A()\r\nEnd Sub\r\n", "first line must be"),
        ('Attribute VB_Name = "Has Space"\r\n', "module name"),
        ('Attribute VB_Name = "' + "x" * 32 + '"\r\n', "module name"),
    ],
)
def test_module_errors(text: str, message: str) -> None:
    with pytest.raises(VbaProjectError, match=message):
        VbaModule.from_bas(text)


def test_missing_xlwings_sources_are_named(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "xlwings.bas").write_text('Attribute VB_Name = "xlwings"\n')

    spec = importlib.util.spec_from_loader("xlwings", loader=None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(vba_project.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(VbaProjectError, match=r"lacks its VBA sources .*Dictionary\.cls"):
        standalone_xlwings_modules()


# -- integration: an .xlsm written by XlsxWriter, kept by openpyxl --------------------


def test_xlsm_with_buttons_survives_openpyxl_and_olevba(
    tmp_path: Path, team_modules: list[VbaModule]
) -> None:
    vba_bin = build_vba_project(team_modules, "CrmTeam")
    path = tmp_path / "team.xlsm"
    workbook = xlsxwriter.Workbook(path)
    workbook.add_vba_project(io.BytesIO(vba_bin), is_stream=True)
    workbook.set_vba_name("ThisWorkbook")
    dashboard = workbook.add_worksheet("Dashboard")
    dashboard.set_vba_name("Sheet1")
    workbook.add_worksheet("Customers").set_vba_name("Sheet2")
    for row, macro in enumerate(BUTTON_MACROS):
        dashboard.insert_button(row * 3, 1, {"macro": macro, "caption": macro, "width": 160})
    workbook.define_name("CrmTeam", '="North"')
    workbook.close()

    with zipfile.ZipFile(path) as archive:
        assert archive.read("xl/vbaProject.bin") == vba_bin
        # each document module has its workbook part, found by code name
        assert 'codeName="ThisWorkbook"' in archive.read("xl/workbook.xml").decode()
        for number in (1, 2):
            sheet = archive.read(f"xl/worksheets/sheet{number}.xml").decode()
            assert f'codeName="Sheet{number}"' in sheet
    assert _extracted(path.read_bytes(), str(path)) == {m.name: m.source for m in team_modules}

    loaded = openpyxl.load_workbook(path, keep_vba=True)
    assert loaded.defined_names["CrmTeam"].attr_text == '"North"'
    saved = tmp_path / "saved.xlsm"
    loaded.save(saved)
    with zipfile.ZipFile(saved) as archive:
        assert archive.read("xl/vbaProject.bin") == vba_bin
        vml = b"".join(
            archive.read(name) for name in archive.namelist() if name.endswith(".vml")
        ).decode()
        assert "vbaProject" in archive.read("[Content_Types].xml").decode()
    for macro in BUTTON_MACROS:
        assert f"<x:FmlaMacro>[0]!{macro}</x:FmlaMacro>" in vml
    assert openpyxl.load_workbook(saved).defined_names["CrmTeam"].attr_text == '"North"'
