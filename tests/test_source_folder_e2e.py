"""A folder of exports end to end: the KPI set on the folder's cache, and mapping files
over foreign exports (an .xlsx customer list, GB18030 line items) giving the canonical
tables. The loader's own behaviour is tests/test_source_folder.py's.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from decimal import Decimal
from pathlib import Path

import duckdb
import xlsxwriter
from sqlalchemy.engine import URL

from crm_batch.app.engines import build_engine
from crm_batch.app.kpis import run_kpis
from crm_batch.config import Settings, SourceFileSettings, load_settings
from crm_batch.exports.kpis import as_json
from crm_batch.periods import parse_period
from crm_batch.schema import SOURCE_TABLES
from crm_batch.source.db import make_engine
from crm_batch.source.demo import generate_demo, load_demo
from crm_batch.source.folder import prepare_folder_source

AS_OF = dt.date(2026, 6, 30)


def demo_database(path: Path, seed: int) -> Path:
    """A small demo company with text ids in a DuckDB file."""
    demo = generate_demo(customers=300, orders=3_000, seed=seed, end_date=AS_OF)
    engine = make_engine(URL.create("duckdb", database=str(path)))
    try:
        load_demo(engine, demo, id_type="text")
    finally:
        engine.dispose()
    return path


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


#: Mapping files over the foreign exports :func:`write_foreign_exports` writes.
MAPPING_DIR = Path(__file__).parent / "fixtures" / "folder" / "mapping"
#: The most characters an Excel cell holds (longer names are cut in an .xlsx export).
EXCEL_CELL_CHARS = 32_767
STATUS_WORDS = {"paid": "已支付", "refunded": "已退款", "cancelled": "已取消"}


def write_foreign_exports(database: Path, folder: Path) -> None:
    """The demo company as a Chinese shop exports it: the customer list as an .xlsx with
    a title above its header, the orders as GB18030 line items (two lines per order,
    thousands separators, slash dates, Chinese statuses)."""
    with duckdb.connect(str(database), read_only=True) as con:
        customers = con.execute("select * from customers order by customer_id").fetchall()
        orders = con.execute("select * from orders order by order_id").fetchall()
    book = xlsxwriter.Workbook(str(folder / "客户名单.xlsx"))
    sheet = book.add_worksheet("客户")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_string(0, 0, "会员名单（导出）")
    header = ["会员编号", "姓名", "团队", "负责人", "地区", "来源渠道", "注册日期", "生日"]
    sheet.write_row(2, 0, [*header, "推荐人", "手机号", "邮箱", "拒收营销"])
    for row_number, row in enumerate(customers, start=3):
        values = [*row[:11], "是" if row[11] else "否"]
        values[1] = values[1][:EXCEL_CELL_CHARS]
        for column, value in enumerate(values):
            if isinstance(value, dt.date):
                sheet.write_datetime(row_number, column, value, date_format)
            elif value is not None:
                sheet.write_string(row_number, column, value)
    book.close()
    lines = ["订单号,行号,会员编号,下单时间,金额,状态,渠道,品类"]
    for order_id, customer_id, order_date, amount, status, channel, category in orders:
        first = (amount / 3).quantize(Decimal("0.01"))
        for number, part in enumerate((first, amount - first), start=1):
            stamp = order_date.strftime("%Y/%m/%d") + " 10:15:00"
            fields = [order_id, str(number), customer_id, stamp, f"{part:,.2f}"]
            fields += [STATUS_WORDS[status], channel, category]
            lines.append(",".join(f'"{field}"' if "," in field else field for field in fields))
    (folder / "订单明细.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))


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
