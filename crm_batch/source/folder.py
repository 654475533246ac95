"""A folder of exports as the source: its files loaded into a cached DuckDB file.

Every ``NAME.csv``, ``NAME.xlsx``/``NAME.xls`` (the first sheet) and ``NAME.parquet``
directly in the folder becomes the table ``"NAME"`` (any characters, Chinese too;
DuckDB compares names case-insensitively, so ``Orders.csv`` and ``orders.parquet`` are
the same name and an error). Hidden files, Excel's ``~$`` lock files, sub-folders and
other extensions are ignored.

The tables live in one DuckDB file under the cache folder, named by the folder and the
folder's fingerprint (``<data_dir>/source-cache/<hash of the folder's path>-<fingerprint>
.duckdb``). The fingerprint covers the files' names, sizes and modification times, their
reading options and this module's format version, so "is the cache up to date" is one
``stat`` of that name, without opening a database. A rebuild writes a temporary file
beside it and renames it to its final name in one step, so a failed load leaves the
previous cache as it was and a reader never sees half a cache; the folder's older
caches are deleted after a rebuild (one still open elsewhere, which Windows does not
let go, is deleted after a later one). A cache of other content never has the same
name: a process that still has an older cache open (DuckDB keeps one database instance
per path) cannot mistake it for the new one. The source engine opens the cache
read-only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_batch.config import SourceFileSettings
from crm_batch.errors import ConfigError, DataError
from crm_batch.source.folder_csv import load_csv, quoted
from crm_batch.source.folder_excel import read_sheet

log = logging.getLogger(__name__)

#: File extensions read from the folder and how (lower case, with the dot).
KINDS = {".csv": "csv", ".xlsx": "excel", ".xls": "excel", ".parquet": "parquet"}
#: Changes whenever the way files are loaded changes, so old caches are rebuilt.
FORMAT_VERSION = 1
#: The schema of the cache's own bookkeeping (mapping files read the main schema).
META_SCHEMA = "crm_batch"
_CSV_ONLY = ("encoding", "delimiter")
_EXCEL_ONLY = ("sheet",)


@dataclass(frozen=True)
class SourceFile:
    """One file of the folder and the table it becomes."""

    table: str
    path: Path
    kind: str  # "csv", "excel" or "parquet"
    size: int
    modified_ns: int


def prepare_folder_source(
    folder: Path,
    cache_dir: Path,
    options: Mapping[str, SourceFileSettings] | None = None,
) -> Path:
    """The DuckDB file holding one table per file of ``folder``, built if out of date.

    ``options`` are the per-file reading options keyed by file name
    (``[source.files."NAME.csv"]``). Raises :class:`ConfigError` for a missing or empty
    folder or options naming no file in it, :class:`DataError` naming the file (and the
    line) for a file that cannot be read or two files with the same table name.
    """
    options = dict(options or {})
    files = scan_folder(folder, options)
    fingerprint = folder_fingerprint(files, options)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_path(folder, cache_dir, fingerprint)
    if cache.is_file():
        return cache
    started = time.perf_counter()
    _build(files, options, cache)
    _remove_older_caches(cache)
    log.info(
        "loaded %d file(s) of %s into %s in %.1f s",
        len(files),
        folder,
        cache,
        time.perf_counter() - started,
    )
    return cache


def cache_path(folder: Path, cache_dir: Path, fingerprint: str) -> Path:
    """The cache file of ``folder`` with the content ``fingerprint`` describes."""
    return cache_dir / f"{folder_key(folder)}-{fingerprint[:20]}.duckdb"


def folder_key(folder: Path) -> str:
    """The part of the cache files' names that stands for ``folder`` (its path's hash)."""
    return hashlib.sha256(str(folder.resolve()).encode("utf-8")).hexdigest()[:16]


#: Temporary files of a build that died with its process are removed after this long.
_ABANDONED_SECONDS = 24 * 3600


def _remove_older_caches(cache: Path) -> None:
    """Delete the folder's other caches and long-abandoned temporary files (best effort)."""
    key = cache.name.split("-", 1)[0]
    now = time.time()
    for path in cache.parent.iterdir():
        try:
            if path.name.startswith(f"{key}-") and path != cache:
                path.unlink()
            elif path.name.startswith(".") and now - path.stat().st_mtime > _ABANDONED_SECONDS:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        except OSError:
            continue  # open in another process (Windows): removed after a later rebuild


def scan_folder(folder: Path, options: Mapping[str, SourceFileSettings]) -> list[SourceFile]:
    """The readable files of ``folder``, sorted by table name, checked for clashes."""
    if not folder.is_dir():
        raise ConfigError(
            f"source.folder: {folder} is not a folder (check the path; a relative path is "
            "relative to the settings file's folder)"
        )
    by_name: dict[str, list[SourceFile]] = {}
    for path in sorted(folder.iterdir()):
        kind = KINDS.get(path.suffix.lower())
        if kind is None or path.name.startswith((".", "~$")) or not path.is_file():
            continue
        stat = path.stat()
        entry = SourceFile(path.stem, path, kind, stat.st_size, stat.st_mtime_ns)
        by_name.setdefault(path.stem.casefold(), []).append(entry)
    clashes = [
        sorted(e.path.name for e in entries) for entries in by_name.values() if len(entries) > 1
    ]
    if clashes:
        pairs = "; ".join(" and ".join(names) for names in clashes)
        raise DataError(
            f"source folder {folder}: {pairs} would be the same table (a table is named by "
            "the file name without its extension, case-insensitively): keep one, or rename "
            "the other"
        )
    files = sorted((entries[0] for entries in by_name.values()), key=lambda e: e.table)
    if not files:
        raise ConfigError(f"source.folder: {folder} holds no .csv, .xlsx, .xls or .parquet file")
    _check_options(folder, files, options)
    return files


def _check_options(
    folder: Path, files: list[SourceFile], options: Mapping[str, SourceFileSettings]
) -> None:
    """Options must name a file of the folder and suit its kind (a typo is an error)."""
    kinds = {entry.path.name: entry.kind for entry in files}
    for name, option in options.items():
        kind = kinds.get(name)
        if kind is None:
            raise ConfigError(
                f'source.files."{name}": there is no file {name} in {folder} (the key is the '
                "file's name with its extension)"
            )
        wrong = [key for key in _CSV_ONLY if kind != "csv" and key in option.model_fields_set]
        wrong += [key for key in _EXCEL_ONLY if kind != "excel" and key in option.model_fields_set]
        if kind == "parquet" and "header_row" in option.model_fields_set:
            wrong.append("header_row")
        if wrong:
            raise ConfigError(
                f'source.files."{name}": {", ".join(wrong)} does not apply to a {kind} file'
            )


def folder_fingerprint(files: list[SourceFile], options: Mapping[str, SourceFileSettings]) -> str:
    """A hash of what the cache is built from: names, sizes, times, options, version."""
    record = {
        "version": FORMAT_VERSION,
        "files": [[e.path.name, e.size, e.modified_ns] for e in files],
        "options": {name: options[name].model_dump() for name in sorted(options)},
    }
    text = json.dumps(record, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _build(files: list[SourceFile], options: Mapping[str, SourceFileSettings], cache: Path) -> None:
    """Load every file into a temporary DuckDB file, then rename it to ``cache``."""
    building = cache.with_name(f".{cache.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.building")
    work_dir = Path(tempfile.mkdtemp(prefix=".transcode-", dir=cache.parent))
    try:
        with duckdb.connect(str(building)) as con:
            # DuckDB draws a progress bar on long statements, even into a cron log
            con.execute("set enable_progress_bar = false")
            con.execute(f"create schema {META_SCHEMA}")
            con.execute(
                f"create table {META_SCHEMA}.files (table_name varchar, file_name varchar, "
                "kind varchar, encoding varchar, row_count bigint)"
            )
            for entry in files:
                option = options.get(entry.path.name, SourceFileSettings())
                try:
                    encoding = _load_file(con, entry, option, work_dir)
                except OSError as exc:
                    raise DataError(
                        f"{entry.path.name}: cannot be read: {exc.strerror or exc}"
                    ) from None
                rows = con.execute(f"select count(*) from {quoted(entry.table)}").fetchone()
                con.execute(
                    f"insert into {META_SCHEMA}.files values (?, ?, ?, ?, ?)",
                    [entry.table, entry.path.name, entry.kind, encoding, rows[0] if rows else 0],
                )
        try:
            os.replace(building, cache)
        except OSError as exc:
            if cache.is_file():  # another process built the same content meanwhile
                return
            raise DataError(f"cannot write the source cache {cache}: {exc.strerror}") from None
    finally:
        building.unlink(missing_ok=True)
        building.with_name(building.name + ".wal").unlink(missing_ok=True)
        shutil.rmtree(work_dir, ignore_errors=True)


def _load_file(
    con: duckdb.DuckDBPyConnection,
    entry: SourceFile,
    option: SourceFileSettings,
    work_dir: Path,
) -> str | None:
    """Load one file into its table; the CSV encoding used (None for other kinds)."""
    table = quoted(entry.table)
    if entry.kind == "csv":
        return load_csv(con, table, entry.path, option, work_dir)
    try:
        if entry.kind == "excel":
            sheet = read_sheet(entry.path, option)
            con.register("excel_sheet", sheet)
            con.execute(f"create table {table} as select * from excel_sheet")
            con.unregister("excel_sheet")
        else:
            con.execute(f"create table {table} as select * from read_parquet(?)", [str(entry.path)])
    except duckdb.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{entry.path.name}: cannot be read: {reason}") from None
    return None
