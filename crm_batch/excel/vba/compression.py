"""MS-OVBA compression and decompression (MS-OVBA 2.4.1).

The VBA project stores its ``dir`` stream and every module's source as a
*CompressedContainer*: the signature byte 0x01 followed by chunks, each encoding up to
4096 bytes of input (a *DecompressedChunk*). A chunk is either compressed (token
sequences of one flag byte and up to eight literal bytes or two-byte copy tokens) or,
when compression would not fit, raw (exactly 4096 bytes).

:func:`compress` follows the spec's algorithm (2.4.1.3.6 to 2.4.1.3.10, the longest
match of 2.4.1.3.19.4, clamped to the maximum copy length of CopyToken Help
2.4.1.3.19.1 that shrinks as the position in the chunk grows). Of equally long matches
it takes the one furthest back in the chunk: with that tie-break its output is byte for
byte the ``dir`` and ``xlwings`` streams of xlwings' own ``quickstart_standalone.xlsm``.
A hash chain over three-byte prefixes only skips candidates that cannot match.
:func:`decompress` implements 2.4.1.3.1 to 2.4.1.3.5.
"""

from __future__ import annotations

CHUNK_SIZE = 4096
"""Bytes of input per DecompressedChunk (2.4.1.1.3)."""

_SIGNATURE = 0x01
_MAX_CHUNK_DATA = 4096  # a CompressedChunk is at most 4098 bytes: 2-byte header + data
_MIN_MATCH = 3


class CompressionError(ValueError):
    """A CompressedContainer that does not follow MS-OVBA 2.4.1.1."""


def copy_token_help(difference: int) -> tuple[int, int, int, int]:
    """CopyToken Help (2.4.1.3.19.1): ``(length_mask, offset_mask, bit_count, max_length)``.

    ``difference`` is the position inside the current chunk (DecompressedCurrent minus
    DecompressedChunkStart); the further into the chunk, the more bits the offset takes
    and the shorter a copy can be.
    """
    bit_count = max((difference - 1).bit_length(), 4)
    length_mask = 0xFFFF >> bit_count
    offset_mask = ~length_mask & 0xFFFF
    return length_mask, offset_mask, bit_count, length_mask + 3


def pack_copy_token(offset: int, length: int, difference: int) -> int:
    """Pack a CopyToken (2.4.1.3.19.3) for a copy ``offset`` bytes back, ``length`` long."""
    _, _, bit_count, max_length = copy_token_help(difference)
    if not 1 <= offset <= min(difference, 1 << bit_count) or not 3 <= length <= max_length:
        raise ValueError(f"copy token out of range: offset {offset}, length {length}")
    return ((offset - 1) << (16 - bit_count)) | (length - 3)


def unpack_copy_token(token: int, difference: int) -> tuple[int, int]:
    """Unpack a CopyToken (2.4.1.3.19.2) into ``(offset, length)``."""
    length_mask, offset_mask, bit_count, _ = copy_token_help(difference)
    return ((token & offset_mask) >> (16 - bit_count)) + 1, (token & length_mask) + 3


def _match_length(data: bytes, candidate: int, current: int, end: int) -> int:
    """How many bytes from ``current`` equal those from ``candidate`` (overlap allowed)."""
    limit = end - current
    length = 0
    step = 64
    while length < limit:
        size = min(step, limit - length)
        if (
            data[candidate + length : candidate + length + size]
            == data[current + length : current + length + size]
        ):
            length += size
            continue
        while data[candidate + length] == data[current + length]:
            length += 1
        return length
    return length


def _compress_chunk(data: bytes, start: int, end: int) -> bytes:
    """Compress one DecompressedChunk (2.4.1.3.7); returns header and data."""
    out = bytearray()
    chains: dict[bytes, list[int]] = {}
    indexed = start  # positions below this are in ``chains``
    current = start
    while current < end and len(out) <= _MAX_CHUNK_DATA:
        flag_index = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if current >= end:
                break
            while indexed < current:
                chains.setdefault(data[indexed : indexed + 3], []).append(indexed)
                indexed += 1
            best_length = 0
            best_candidate = 0
            if end - current >= _MIN_MATCH:
                longest_possible = end - current
                for candidate in chains.get(data[current : current + 3], ()):
                    if best_length and (
                        data[candidate + best_length] != data[current + best_length]
                    ):
                        continue
                    length = _match_length(data, candidate, current, end)
                    if length > best_length:
                        best_length, best_candidate = length, candidate
                        if length == longest_possible:
                            break
            if best_length >= _MIN_MATCH:
                difference = current - start
                length = min(best_length, copy_token_help(difference)[3])
                token = pack_copy_token(current - best_candidate, length, difference)
                out += token.to_bytes(2, "little")
                flags |= 1 << bit
                current += length
            else:
                out.append(data[current])
                current += 1
        out[flag_index] = flags
    if len(out) <= _MAX_CHUNK_DATA:
        header = 0x8000 | 0x3000 | (len(out) + 2 - 3)
        return header.to_bytes(2, "little") + bytes(out)
    # 2.4.1.3.10 Compressing a RawChunk: 4096 bytes, the last chunk padded with 0x00.
    raw = data[start:end]
    return (0x3000 | (4098 - 3)).to_bytes(2, "little") + raw + bytes(CHUNK_SIZE - len(raw))


def compress(data: bytes) -> bytes:
    """Compress ``data`` into a CompressedContainer (2.4.1.3.6).

    A final chunk shorter than 4096 bytes that does not compress is stored raw and padded
    with zero bytes, as the spec prescribes; text such as VBA source always compresses.
    """
    data = bytes(data)
    out = bytearray([_SIGNATURE])
    for start in range(0, len(data), CHUNK_SIZE):
        out += _compress_chunk(data, start, min(start + CHUNK_SIZE, len(data)))
    return bytes(out)


def decompress(container: bytes) -> bytes:
    """Decompress a CompressedContainer (2.4.1.3.1); raises :class:`CompressionError`."""
    if not container or container[0] != _SIGNATURE:
        raise CompressionError("a CompressedContainer starts with the signature byte 0x01")
    out = bytearray()
    pos = 1
    while pos < len(container):
        if pos + 2 > len(container):
            raise CompressionError(f"truncated chunk header at byte {pos}")
        header = int.from_bytes(container[pos : pos + 2], "little")
        if (header >> 12) & 0b111 != 0b011:
            raise CompressionError(f"bad chunk signature at byte {pos}")
        size = (header & 0x0FFF) + 3
        chunk_end = min(pos + size, len(container))
        chunk_start = len(out)
        pos += 2
        if not header & 0x8000:
            if size != 4098 or pos + CHUNK_SIZE > len(container):
                raise CompressionError(f"raw chunk at byte {pos - 2} is not 4096 bytes")
            out += container[pos : pos + CHUNK_SIZE]
            pos += CHUNK_SIZE
            continue
        while pos < chunk_end:
            flags = container[pos]
            pos += 1
            for bit in range(8):
                if pos >= chunk_end:
                    break
                if not flags >> bit & 1:
                    out.append(container[pos])
                    pos += 1
                    continue
                if pos + 2 > chunk_end:
                    raise CompressionError(f"truncated copy token at byte {pos}")
                token = int.from_bytes(container[pos : pos + 2], "little")
                pos += 2
                offset, length = unpack_copy_token(token, len(out) - chunk_start)
                source = len(out) - offset
                if source < chunk_start:
                    raise CompressionError(f"copy token before its chunk at byte {pos - 2}")
                for index in range(source, source + length):
                    out.append(out[index])
        if len(out) - chunk_start > CHUNK_SIZE:
            raise CompressionError(f"chunk ending at byte {pos} decompresses past 4096 bytes")
    return bytes(out)
