"""A folder of exports end to end: the KPI set on the folder's cache, and mapping files
over foreign exports (an .xlsx customer list, GB18030 line items) giving the canonical
tables. The loader's own behaviour is tests/test_source_folder.py's.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import duckdb
from fixtures.exports import (
    AS_OF,
    EXCEL_CELL_CHARS,
    MAPPING_DIR,
    demo_database,
    write_foreign_exports,
)

from crm_batch.app.engines import build_engine
from crm_batch.app.kpis import run_kpis
from crm_batch.config import Settings, SourceFileSettings, load_settings
from crm_batch.exports.kpis import as_json
from crm_batch.periods import parse_period
from crm_batch.schema import SOURCE_TABLES
from crm_batch.source.folder import prepare_folder_source


def write_settings(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "crm_batch.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_kpis_from_a_folder_of_parquet_exports_equal_the_database(tmp_path: Path) -> None:
    """The whole extraction and KPI set run on the folder's read-only cache: a demo company
    exported table by table to Parquet gives the KPI JSON its database gives."""
    database = demo_database(tmp_path / "sales.duckdb", seed=11)
    exports = tmp_path / "exports"
    exports.mkdir()
    with duckdb.connect(str(database), read_only=True) as con:
        for name in SOURCE_TABLES:
            target = exports / f"{name}.parquet"
            con.execute(f"copy {name} to '{target}' (format parquet)")

    def document(settings: Settings) -> dict[str, object]:
        source = build_engine(settings)
        try:
            run = run_kpis(settings, source, AS_OF, parse_period("2026Q2"))
            return json.loads(as_json(run))
        finally:
            source.dispose()

    db_config = write_settings(tmp_path / "db", f'[database]\nurl = "duckdb:///{database}"\n')
    from_database = load_settings(db_config, environ={}, cwd=tmp_path)
    config = write_settings(tmp_path, '[source]\nfolder = "exports"\n')
    from_folder = load_settings(config, environ={}, cwd=tmp_path)
    assert from_folder.source_is_folder
    expected = document(from_database)
    kpis = expected["results"][0]["kpis"]  # type: ignore[index]
    assert sum(value is not None for value in kpis.values()) > 40, kpis
    assert document(from_folder) == expected


def test_mapping_files_over_a_gb18030_line_item_csv_and_an_xlsx_give_the_canonical_tables(
    tmp_path: Path,
) -> None:
    database = demo_database(tmp_path / "sales.duckdb", seed=5)
    exports = tmp_path / "exports"
    exports.mkdir()
    write_foreign_exports(database, exports)
    options = {"客户名单.xlsx": SourceFileSettings(header_row=3)}
    cache = prepare_folder_source(exports, tmp_path / "cache", options)
    with duckdb.connect(str(cache), read_only=True) as con:
        encodings = dict(con.execute("select table_name, encoding from crm_batch.files").fetchall())
    assert encodings == {"订单明细": "gb18030", "客户名单": None}
    reference = {
        "customers": f"select * replace (left(name, {EXCEL_CELL_CHARS}) as name) from customers",
        "orders": "select * from orders",
    }
    for name, query in reference.items():
        with duckdb.connect(str(database), read_only=True) as con:
            expected = con.execute(query).fetchall()
        mapping = (MAPPING_DIR / f"{name}.sql").read_text(encoding="utf-8")
        with duckdb.connect(str(cache), read_only=True) as con:
            result = con.execute(mapping)
            columns = [column[0] for column in result.description]
            mapped = result.fetchall()
        assert columns == [column for column, _ in demo_columns(database, name)]
        assert len(mapped) == len(expected) > 100
        assert sorted(mapped, key=repr) == sorted(expected, key=repr), name


def demo_columns(database: Path, table_name: str) -> list[tuple[str, str]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return [(row[0], row[1]) for row in con.execute(f"describe {table_name}").fetchall()]
