"""A writer for MS-CFB version 3 compound files (512-byte sectors).

Only what a VBA project needs: storages and streams given as paths (``"VBA/dir"``),
written in one pass into a byte string. Sections of [MS-CFB] implemented here: the
header (2.2), sector numbers and the FAT (2.3), the DIFAT (2.5), the mini FAT and mini
stream for streams shorter than the 4096-byte cutoff (2.4, 2.6.3), and directory entries
(2.6) whose siblings form a binary search tree in the spec's name order (2.6.4): shorter
names first, then names of equal length by their upper-cased UTF-16 code units. Every
node is black, which the spec allows ("the tree is simply a binary tree").
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

SECTOR_SIZE = 512
MINI_SECTOR_SIZE = 64
MINI_STREAM_CUTOFF = 4096
"""Streams shorter than this live in the mini stream (MS-CFB 2.2, 2.6.3)."""

_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
_MAXREGSECT = 0xFFFFFFFA
_DIFSECT = 0xFFFFFFFC
_FATSECT = 0xFFFFFFFD
_ENDOFCHAIN = 0xFFFFFFFE
_FREESECT = 0xFFFFFFFF
_NOSTREAM = 0xFFFFFFFF
_HEADER_DIFAT = 109
_PER_SECTOR = SECTOR_SIZE // 4
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_BLACK = 1


class CfbError(ValueError):
    """Paths or names that a compound file cannot hold."""


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: dict[str, _Entry] = field(default_factory=dict)
    sid: int = 0
    start: int = _ENDOFCHAIN
    left: int = _NOSTREAM
    right: int = _NOSTREAM
    child: int = _NOSTREAM


def name_sort_key(name: str) -> tuple[int, tuple[int, ...]]:
    """Directory order of MS-CFB 2.6.4: length in UTF-16 units, then upper-cased units."""
    upper = "".join(c.upper() if len(c.upper()) == 1 else c for c in name)
    units = upper.encode("utf-16-le")
    return len(units) // 2, struct.unpack(f"<{len(units) // 2}H", units)


def _check_name(name: str, path: str) -> None:
    if not name or len(name.encode("utf-16-le")) > 62:
        raise CfbError(f"{path!r}: each name must have 1 to 31 UTF-16 characters")
    if any(c in name for c in "/\\:!"):
        raise CfbError(f"{path!r}: names cannot contain / \\ : or !")


def _build_tree(streams: Mapping[str, bytes]) -> _Entry:
    root = _Entry("Root Entry", _ROOT)
    for path, data in streams.items():
        parts = path.split("/")
        node = root
        for depth, part in enumerate(parts):
            _check_name(part, path)
            key = name_sort_key(part)
            existing = next(
                (c for c in node.children.values() if name_sort_key(c.name) == key), None
            )
            last = depth == len(parts) - 1
            if existing is None:
                existing = _Entry(part, _STREAM if last else _STORAGE, bytes(data) if last else b"")
                node.children[part] = existing
            elif last or existing.kind != _STORAGE:
                raise CfbError(f"{path!r}: clashes with another stream or storage name")
            node = existing
    return root


def _flatten(root: _Entry) -> list[_Entry]:
    """Number the entries (root first) and link each storage's children as a BST."""
    entries = [root]

    def visit(node: _Entry) -> None:
        ordered = sorted(node.children.values(), key=lambda e: name_sort_key(e.name))
        for child in ordered:
            child.sid = len(entries)
            entries.append(child)
        node.child = _link(ordered)
        for child in ordered:
            visit(child)

    def _link(ordered: list[_Entry]) -> int:
        if not ordered:
            return _NOSTREAM
        middle = len(ordered) // 2
        top = ordered[middle]
        top.left = _link(ordered[:middle])
        top.right = _link(ordered[middle + 1 :])
        return top.sid

    visit(root)
    return entries


def _sectors(size: int, unit: int) -> int:
    return -(-size // unit)


def _chain(fat: list[int], first: int, count: int) -> None:
    for index in range(first, first + count):
        fat[index] = index + 1 if index + 1 < first + count else _ENDOFCHAIN


def write_compound_file(streams: Mapping[str, bytes]) -> bytes:
    """Write a version 3 compound file holding ``streams`` (path -> bytes).

    Paths use ``/`` between storage and stream names (``"VBA/dir"``); storages are
    created as needed. Names are 1 to 31 characters and unique per storage regardless
    of case (MS-CFB 2.6.1, 2.6.4).
    """
    root = _build_tree(streams)
    entries = _flatten(root)
    stream_entries = [e for e in entries if e.kind == _STREAM]

    mini_stream = bytearray()
    mini_fat: list[int] = []
    big = [e for e in stream_entries if len(e.data) >= MINI_STREAM_CUTOFF]
    for entry in stream_entries:
        if 0 < len(entry.data) < MINI_STREAM_CUTOFF:
            count = _sectors(len(entry.data), MINI_SECTOR_SIZE)
            entry.start = len(mini_fat)
            mini_fat.extend([0] * count)
            _chain(mini_fat, entry.start, count)
            mini_stream += entry.data.ljust(count * MINI_SECTOR_SIZE, b"\0")

    dir_count = _sectors(len(entries) * 128, SECTOR_SIZE)
    mini_fat_count = _sectors(len(mini_fat) * 4, SECTOR_SIZE)
    mini_stream_count = _sectors(len(mini_stream), SECTOR_SIZE)
    content = dir_count + mini_fat_count + mini_stream_count
    content += sum(_sectors(len(e.data), SECTOR_SIZE) for e in big)
    fat_count = difat_count = 0
    while True:  # FAT and DIFAT sectors also need FAT entries: find the fixed point
        total = content + fat_count + difat_count
        need_fat = _sectors(total, _PER_SECTOR)
        need_difat = _sectors(max(0, need_fat - _HEADER_DIFAT), _PER_SECTOR - 1)
        if (need_fat, need_difat) == (fat_count, difat_count):
            break
        fat_count, difat_count = need_fat, need_difat
    total = content + fat_count + difat_count

    fat = [_FREESECT] * (fat_count * _PER_SECTOR)
    fat[:fat_count] = [_FATSECT] * fat_count
    next_free = fat_count
    fat[next_free : next_free + difat_count] = [_DIFSECT] * difat_count
    difat_start = next_free if difat_count else _ENDOFCHAIN
    next_free += difat_count

    def allocate(count: int) -> int:
        nonlocal next_free
        if count == 0:
            return _ENDOFCHAIN
        first = next_free
        _chain(fat, first, count)
        next_free += count
        return first

    dir_start = allocate(dir_count)
    mini_fat_start = allocate(mini_fat_count)
    root.start = allocate(mini_stream_count)
    for entry in big:
        entry.start = allocate(_sectors(len(entry.data), SECTOR_SIZE))
    if next_free != total or total > _MAXREGSECT:
        raise CfbError("compound file too large for 512-byte sectors")

    body = bytearray(total * SECTOR_SIZE)

    def put(sector: int, data: bytes) -> None:
        if sector != _ENDOFCHAIN:
            body[sector * SECTOR_SIZE : sector * SECTOR_SIZE + len(data)] = data

    put(0, struct.pack(f"<{len(fat)}I", *fat))
    fat_sectors = list(range(fat_count))
    for index in range(difat_count):
        chunk = fat_sectors[_HEADER_DIFAT + index * 127 : _HEADER_DIFAT + (index + 1) * 127]
        nxt = difat_start + index + 1 if index + 1 < difat_count else _ENDOFCHAIN
        words = chunk + [_FREESECT] * (127 - len(chunk)) + [nxt]
        put(difat_start + index, struct.pack("<128I", *words))
    directory = b"".join(_directory_entry(e, len(mini_stream)) for e in entries)
    unused = struct.pack("<64sHBBIII", b"", 0, 0, 0, _NOSTREAM, _NOSTREAM, _NOSTREAM)
    unused = unused.ljust(128, b"\0")
    put(dir_start, directory + unused * (dir_count * 4 - len(entries)))
    if mini_fat:
        padded = mini_fat + [_FREESECT] * (mini_fat_count * _PER_SECTOR - len(mini_fat))
        put(mini_fat_start, struct.pack(f"<{len(padded)}I", *padded))
    put(root.start, bytes(mini_stream))
    for entry in big:
        put(entry.start, entry.data)

    header_difat = fat_sectors[:_HEADER_DIFAT]
    header_difat += [_FREESECT] * (_HEADER_DIFAT - len(header_difat))
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        _SIGNATURE,
        bytes(16),
        0x003E,  # minor version
        0x0003,  # major version 3: 512-byte sectors
        0xFFFE,  # byte order mark: little-endian
        9,  # sector shift: 2**9 = 512
        6,  # mini sector shift: 2**6 = 64
        bytes(6),
        0,  # number of directory sectors: 0 in version 3
        fat_count,
        dir_start,
        0,  # transaction signature
        MINI_STREAM_CUTOFF,
        mini_fat_start,
        mini_fat_count,
        difat_start,
        difat_count,
    ) + struct.pack(f"<{_HEADER_DIFAT}I", *header_difat)
    return header + bytes(body)


def _directory_entry(entry: _Entry, mini_stream_size: int) -> bytes:
    """One 128-byte directory entry (MS-CFB 2.6.1)."""
    encoded = (entry.name + "\0").encode("utf-16-le")
    if entry.kind == _ROOT:
        size = mini_stream_size
    elif entry.kind == _STREAM:
        size = len(entry.data)
    else:
        size = 0
    start = entry.start if entry.kind != _STORAGE else 0
    if size == 0 and entry.kind != _STORAGE:
        start = _ENDOFCHAIN
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        encoded,
        len(encoded),
        entry.kind,
        _BLACK,
        entry.left,
        entry.right,
        entry.child,
        bytes(16),
        0,
        0,
        0,
        start,
        size,
    )
