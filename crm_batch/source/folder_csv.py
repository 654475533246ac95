"""One CSV file of the exports folder loaded into a DuckDB table, every column as text.

Encodings: a BOM names UTF-8 or UTF-16 (LE/BE); without one, the first MiB is decoded
as strict UTF-8 (a character cut by the sample's end is not an error) and, failing
that, the file is GB18030 (a superset of GBK and GB2312: what Chinese POS and ERP
exports write). A setting (``[source.files."NAME.csv"] encoding``) overrides this.
UTF-8 files go to DuckDB's ``read_csv`` as they are; any other encoding is first
transcoded to a UTF-8 temporary file in streaming chunks (Python's incremental
decoders, bounded memory), because DuckDB reads GB18030 only through an extension it
would download.

DuckDB's dialect sniffer is not used: a single ragged row made it pick another header
row and load one row without an error. The header line is parsed here (the delimiter
is the most frequent of ``, TAB ; |`` in it unless set), the columns are given to
``read_csv`` by name, and its strict mode turns a ragged row, an unterminated quote or
an invalid byte into an error naming the file and the line. Every column is VARCHAR:
sniffed types come from a sample, so an id such as ``00123`` past the sample became
the number 123 and a late ``n/a`` failed the load; the mapping files cast instead.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_batch.config import SourceFileSettings
from crm_batch.errors import DataError

#: Bytes sampled to tell UTF-8 from GB18030 when no BOM says which.
SAMPLE_BYTES = 1 << 20
#: Bytes decoded and written per step while transcoding (memory stays about 4x this).
CHUNK_BYTES = 4 << 20
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DELIMITERS = (",", "\t", ";", "|")
_LINE = re.compile(r"CSV Error on Line: (\d+)")


@dataclass(frozen=True)
class Encoding:
    """How a file's bytes are read: the codec, the BOM bytes to skip and why."""

    codec: str  # a Python codec name; "utf-8" is read by DuckDB directly
    skip: int  # bytes of BOM at the start
    origin: str  # "a BOM", "detected", "set in [source.files]"
    ascii_sample: bool = False  # detected UTF-8 from a sample without a byte >= 0x80


def option_hint(file_name: str, key: str, example: str) -> str:
    """The settings lines that set ``key`` for one file (quoted for TOML)."""
    return f'[source.files."{file_name}"] {key} = {example}'


def detect_encoding(path: Path, setting: str) -> Encoding:
    """The encoding of a CSV file: the setting, else a BOM, else UTF-8 or GB18030."""
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    bom = next(((mark, codec) for mark, codec in _BOMS if head.startswith(mark)), None)
    if setting != "auto":
        codec = codecs.lookup(setting).name
        if codec in {"utf-16", "utf-8-sig", "utf-8"} and bom is not None:
            return Encoding(bom[1], len(bom[0]), "set in [source.files] (its BOM)")
        if codec == "utf-16":  # no BOM: Windows writes little-endian
            codec = "utf-16-le"
        return Encoding("utf-8" if codec == "utf-8-sig" else codec, 0, "set in [source.files]")
    if bom is not None:
        return Encoding(bom[1], len(bom[0]), "a BOM")
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return Encoding("gb18030", 0, "detected (not UTF-8)")
    return Encoding("utf-8", 0, "detected", ascii_sample=head.isascii())


def transcode(source: Path, encoding: Encoding, target: Path, file_name: str) -> None:
    """Write ``source`` decoded with ``encoding`` to ``target`` as UTF-8, chunk by chunk.

    A byte sequence the codec rejects is a :class:`DataError` naming the file, the line
    and the encoding tried, with the setting that picks another.
    """
    decoder = codecs.getincrementaldecoder(encoding.codec)("strict")
    lines = 1
    with source.open("rb") as raw, target.open("w", encoding="utf-8", newline="") as out:
        raw.seek(encoding.skip)
        while True:
            chunk = raw.read(CHUNK_BYTES)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                good = codecs.decode(exc.object[: exc.start], encoding.codec, "replace")
                raise DataError(
                    encoding_problem(file_name, lines + good.count("\n"), encoding)
                ) from None
            out.write(text)
            lines += text.count("\n")
            if not chunk:
                return


def encoding_problem(file_name: str, line: int, encoding: Encoding) -> str:
    """The message for bytes that are not in the encoding that was tried."""
    return (
        f"{file_name}, line {line}: not valid {encoding.codec.upper()} (the encoding was "
        f"{encoding.origin}); if the file is in another encoding, set it: "
        + option_hint(file_name, "encoding", '"gb18030"')
        + ' (or "utf-8", "utf-16", "big5", ...)'
    )


@dataclass(frozen=True)
class Header:
    """The column names of a CSV file and the delimiter between its fields."""

    names: tuple[str, ...]
    delimiter: str


def read_header(path: Path, file_name: str, options: SourceFileSettings) -> Header:
    """Parse the header line (``options.header_row``) of a UTF-8 file.

    Names are stripped; an empty name becomes ``column<N>``; a repeated name (DuckDB
    compares names case-insensitively) gets ``_2``, ``_3``, ... so every column loads.
    """
    # only these lines are decoded: a bad byte further down is reported with its own line
    with path.open("rb") as handle:
        for _ in range(options.header_row - 1):
            handle.readline()
        line = handle.readline().decode("utf-8-sig")
    if not line.strip():
        raise DataError(
            f"{file_name}, line {options.header_row}: no column names there (an empty file, "
            "or the header is on another line: "
            + option_hint(file_name, "header_row", "<line number>")
            + ")"
        )
    delimiter = options.delimiter or max(_DELIMITERS, key=line.count)
    fields = next(csv.reader(io.StringIO(line), delimiter=delimiter))
    names: list[str] = []
    seen: set[str] = set()
    for number, raw_name in enumerate(fields, start=1):
        name = raw_name.strip() or f"column{number}"
        unique, suffix = name, 2
        while unique.casefold() in seen:
            unique, suffix = f"{name}_{suffix}", suffix + 1
        seen.add(unique.casefold())
        names.append(unique)
    return Header(tuple(names), delimiter)


def quoted(name: str) -> str:
    """``name`` as a DuckDB identifier (any characters)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_csv_sql(path: Path, header: Header, header_row: int) -> str:
    """The ``read_csv`` call that loads the rows below the header, all as VARCHAR."""
    columns = ", ".join(f"{_literal(name)}: 'VARCHAR'" for name in header.names)
    return (
        f"read_csv({_literal(str(path))}, auto_detect = false, header = false, "
        f"skip = {header_row}, delim = {_literal(header.delimiter)}, quote = '\"', "
        "escape = '\"', strict_mode = true, null_padding = false, "
        f"columns = {{{columns}}})"
    )


def load_csv(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    options: SourceFileSettings,
    work_dir: Path,
) -> str:
    """Load ``path`` into ``table`` (a quoted identifier); the encoding used is returned.

    Temporary UTF-8 copies go to ``work_dir`` (beside the cache, not a small /tmp) and
    are removed afterwards.
    """
    encoding = detect_encoding(path, options.encoding)
    try:
        _load_as(con, table, path, encoding, options, work_dir)
    except _NotUtf8 as exc:
        if not encoding.ascii_sample:
            raise DataError(encoding_problem(path.name, exc.line, encoding)) from None
        # the first MiB was plain ASCII and told nothing: a byte past it is not UTF-8
        encoding = Encoding("gb18030", 0, "detected (not UTF-8 past the first MiB)")
        _load_as(con, table, path, encoding, options, work_dir)
    return encoding.codec


class _NotUtf8(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _load_as(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    encoding: Encoding,
    options: SourceFileSettings,
    work_dir: Path,
) -> None:
    readable = path
    if encoding.codec != "utf-8":
        readable = work_dir / f"{path.stem}.utf-8.csv"
        transcode(path, encoding, readable, path.name)
    try:
        try:
            header = read_header(readable, path.name, options)
        except UnicodeDecodeError:
            raise _NotUtf8(options.header_row) from None
        # in a one-column file a blank line reads as an empty value: such rows are skipped
        # (with more columns DuckDB skips blank lines itself)
        blank = f" where {quoted(header.names[0])} is not null" if len(header.names) == 1 else ""
        con.execute(
            f"create table {table} as select * from "
            + read_csv_sql(readable, header, options.header_row)
            + blank
        )
    except duckdb.Error as exc:
        message = str(exc)
        found = _LINE.search(message)
        line = int(found.group(1)) if found else None
        if "Invalid unicode" in message and line is not None:
            raise _NotUtf8(line) from None
        raise DataError(_csv_problem(path.name, line, message)) from None
    finally:
        if readable != path:
            readable.unlink(missing_ok=True)


def _csv_problem(file_name: str, line: int | None, message: str) -> str:
    """DuckDB's CSV error as one line naming the file and the line (no row content)."""
    reason = next(
        (
            text.strip()
            for text in message.splitlines()
            for phrase in _KNOWN_PROBLEMS
            if text.strip().startswith(phrase)
        ),
        message.strip().splitlines()[0] if message.strip() else "unreadable",
    )
    where = f"{file_name}, line {line}" if line is not None else file_name
    if reason.startswith("Expected Number of Columns"):
        reason += " (this row has more or fewer fields than the header)"
    return f"{where}: cannot read this CSV row: {reason}"


#: The lines of DuckDB's CSV errors that say what is wrong (the rest is advice on
#: DuckDB options and the row's own text, which is data and stays out of the message).
_KNOWN_PROBLEMS = (
    "Expected Number of Columns",
    "Value with unterminated quote",
    "Maximum line size",
)
