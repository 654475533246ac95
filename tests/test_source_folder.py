"""A folder of exports as the source: files -> tables in a cached, read-only DuckDB file.

Each test writes its own folder of small files (every encoding, Excel, Parquet, Chinese
names), loads it with :func:`prepare_folder_source` and reads the tables back.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import re
import textwrap
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import xlsxwriter
from sqlalchemy import text

from crm_batch.app.engines import build_engine, source_url
from crm_batch.config import SourceFileSettings, load_settings
from crm_batch.errors import ConfigError, DataError
from crm_batch.source import folder_csv
from crm_batch.source.folder import cache_path, prepare_folder_source

#: A line-item export as Chinese POS systems write it: Chinese headers and statuses, ids
#: with leading zeros, an amount with a thousands separator inside quotes.
LINES = (
    "订单号,会员编号,手机号,商品,金额,状态,下单时间\n"
    "SO-001,00012,13800000001,乌龙茶,128.50,已支付,2024-01-02 10:00:00\n"
    'SO-002,00013,13800000002,"礼盒, 中秋","1,280.00",已退款,2024-01-03 11:30:00\n'
)
EXPECTED_COLUMNS = ["订单号", "会员编号", "手机号", "商品", "金额", "状态", "下单时间"]
EXPECTED_ROWS = [
    ("SO-001", "00012", "13800000001", "乌龙茶", "128.50", "已支付", "2024-01-02 10:00:00"),
    ("SO-002", "00013", "13800000002", "礼盒, 中秋", "1,280.00", "已退款", "2024-01-03 11:30:00"),
]


def load(folder: Path, cache_dir: Path, **options: SourceFileSettings) -> Path:
    return prepare_folder_source(folder, cache_dir, options)


def table(cache: Path, name: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """The columns and rows (in file order) of one table of the cache."""
    with duckdb.connect(str(cache), read_only=True) as con:
        result = con.execute(f'select * from "{name}"')
        columns = [column[0] for column in result.description]
        return columns, result.fetchall()


def encoding_used(cache: Path, name: str) -> str:
    with duckdb.connect(str(cache), read_only=True) as con:
        row = con.execute(
            "select encoding from crm_batch.files where table_name = ?", [name]
        ).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "source-cache"


ENCODED = {
    "utf-8": LINES.encode("utf-8"),
    "utf-8 BOM": codecs.BOM_UTF8 + LINES.encode("utf-8"),
    "gb18030": LINES.encode("gb18030"),
    "utf-16 LE BOM": codecs.BOM_UTF16_LE + LINES.replace("\n", "\r\n").encode("utf-16-le"),
    "utf-16 BE BOM": codecs.BOM_UTF16_BE + LINES.encode("utf-16-be"),
}
DETECTED = {
    "utf-8": "utf-8",
    "utf-8 BOM": "utf-8",
    "gb18030": "gb18030",
    "utf-16 LE BOM": "utf-16-le",
    "utf-16 BE BOM": "utf-16-be",
}


@pytest.mark.parametrize("encoding", list(ENCODED))
def test_each_encoding_is_detected_with_chinese_headers_and_text(
    exports: Path, cache_dir: Path, encoding: str
) -> None:
    (exports / "订单明细.csv").write_bytes(ENCODED[encoding])
    cache = load(exports, cache_dir)
    columns, rows = table(cache, "订单明细")
    assert columns == EXPECTED_COLUMNS
    assert rows == EXPECTED_ROWS  # every column text: leading zeros and phones kept
    assert encoding_used(cache, "订单明细") == DETECTED[encoding]


def test_gbk_bytes_after_an_ascii_first_mib_are_read_as_gb18030(
    exports: Path, cache_dir: Path
) -> None:
    filler = "".join(f"SO-{n:07d},{n:05d}\n" for n in range(folder_csv.SAMPLE_BYTES // 10))
    body = "order_id,note\n" + filler + "SO-LAST,会员\n"
    (exports / "orders.csv").write_bytes(body.encode("gbk"))
    cache = load(exports, cache_dir)
    _, rows = table(cache, "orders")
    assert rows[-1] == ("SO-LAST", "会员")
    assert len(rows) == body.count("\n") - 1
    assert encoding_used(cache, "orders") == "gb18030"


def test_an_encoding_setting_overrides_detection(exports: Path, cache_dir: Path) -> None:
    # Big5 bytes decode as GB18030 too (into other characters): only the setting helps
    (exports / "訂單.csv").write_bytes("客戶,金額\n王小明,10\n".encode("big5"))
    cache = load(exports, cache_dir, **{"訂單.csv": SourceFileSettings(encoding="big5")})
    assert table(cache, "訂單") == (["客戶", "金額"], [("王小明", "10")])
    assert encoding_used(cache, "訂單") == "big5"


def test_bytes_outside_the_encoding_name_the_line_the_encoding_and_the_setting(
    exports: Path, cache_dir: Path
) -> None:
    good = "名称,金额\n" + "茶,1\n" * 5
    (exports / "sales.csv").write_bytes(good.encode("gb18030") + b"\xff\xff,2\n")
    with pytest.raises(DataError) as caught:
        load(exports, cache_dir)
    message = str(caught.value)
    assert message.startswith("sales.csv, line 7: not valid GB18030")
    assert '[source.files."sales.csv"] encoding = "gb18030"' in message


def test_a_utf8_setting_on_a_gb18030_file_names_the_line(exports: Path, cache_dir: Path) -> None:
    (exports / "sales.csv").write_bytes(("id,name\n" + "1,a\n" * 3 + "2,茶\n").encode("gb18030"))
    with pytest.raises(DataError, match=r"sales\.csv, line 5: not valid UTF-8 \(the encoding "):
        load(exports, cache_dir, **{"sales.csv": SourceFileSettings(encoding="utf-8")})


def test_a_bad_utf16_sequence_names_its_line(exports: Path, cache_dir: Path) -> None:
    body = codecs.BOM_UTF16_LE + "a,b\n1,2\n3,4\n".encode("utf-16-le") + b"\x00\xdc,\x00\n\x00"
    (exports / "wide.csv").write_bytes(body)
    with pytest.raises(DataError, match=r"^wide\.csv, line 4: not valid UTF-16-LE"):
        load(exports, cache_dir)


def test_a_ragged_row_names_the_file_and_line(exports: Path, cache_dir: Path) -> None:
    rows = "".join(f"{n},x{n}\n" for n in range(20))
    (exports / "orders.csv").write_text("id,name\n" + rows + "21,x,extra\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load(exports, cache_dir)
    message = str(caught.value)
    assert message.startswith("orders.csv, line 22: cannot read this CSV row: Expected Number")
    assert "x,extra" not in message  # the row's own text stays out of the message


def test_a_short_row_in_a_transcoded_file_names_its_line(exports: Path, cache_dir: Path) -> None:
    body = "编号,名称,金额\n1,茶,2\n3\n"
    (exports / "订单.csv").write_bytes(body.encode("gb18030"))
    with pytest.raises(DataError, match=r"^订单\.csv, line 3: cannot read this CSV row"):
        load(exports, cache_dir)


def test_an_unterminated_quote_names_its_line(exports: Path, cache_dir: Path) -> None:
    (exports / "notes.csv").write_text('id,note\n1,ok\n2,"open\n3,x\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"^notes\.csv, line 3: .*unterminated quote"):
        load(exports, cache_dir)


def test_delimiter_header_row_and_repeated_or_empty_names(exports: Path, cache_dir: Path) -> None:
    body = "门店销售报表\n导出时间 2024-01-05\n编号;备注;;备注;ID;id\n1;a;b;c;d;e\n"
    (exports / "report.csv").write_text(body, encoding="utf-8")
    cache = load(exports, cache_dir, **{"report.csv": SourceFileSettings(header_row=3)})
    assert table(cache, "report") == (
        ["编号", "备注", "column3", "备注_2", "ID", "id_2"],
        [("1", "a", "b", "c", "d", "e")],
    )


def test_tab_delimiter_is_found_and_empty_fields_are_null(exports: Path, cache_dir: Path) -> None:
    (exports / "t.csv").write_text("a\tb\n1\t\n", encoding="utf-8")
    assert table(load(exports, cache_dir), "t") == (["a", "b"], [("1", None)])


def test_blank_lines_are_not_rows(exports: Path, cache_dir: Path) -> None:
    (exports / "two.csv").write_bytes(b"a,b\r\n1,x\r\n\r\n2,y\r\n\r\n\r\n")
    (exports / "one.csv").write_bytes(b"id\n1\n\n2\n\n")
    cache = load(exports, cache_dir)
    assert table(cache, "two")[1] == [("1", "x"), ("2", "y")]
    assert table(cache, "one")[1] == [("1",), ("2",)]


def write_workbook(path: Path) -> None:
    book = xlsxwriter.Workbook(str(path))
    first = book.add_worksheet("客户")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    stamp_format = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    first.write_row(0, 0, ["客户名单"])  # a title row above the header
    first.write_row(
        2, 0, ["会员编号", "姓名", "手机号", "注册日期", "最近下单", "积分", "余额", "备注"]
    )
    rows = [
        (
            "00012",
            "王小明",
            13800000001,
            dt.date(2023, 5, 1),
            dt.datetime(2024, 1, 2, 10, 30),
            120,
            10.5,
            "VIP",
        ),
        (
            "00013",
            "李华",
            13800000002,
            dt.date(2023, 6, 2),
            dt.datetime(2024, 1, 3, 9, 0),
            80,
            3,
            7,
        ),
    ]
    for offset, row in enumerate(rows, start=3):
        first.write_string(offset, 0, row[0])
        first.write_string(offset, 1, row[1])
        first.write_number(offset, 2, row[2])
        first.write_datetime(offset, 3, row[3], date_format)
        first.write_datetime(offset, 4, row[4], stamp_format)
        first.write_number(offset, 5, row[5])
        first.write_number(offset, 6, row[6])
        first.write(offset, 7, row[7])
    book.add_worksheet("说明").write_row(0, 0, ["not", "this", "sheet"])
    book.close()


def test_xlsx_first_sheet_keeps_cell_types_below_its_header_row(
    exports: Path, cache_dir: Path
) -> None:
    write_workbook(exports / "客户名单.xlsx")
    cache = load(exports, cache_dir, **{"客户名单.xlsx": SourceFileSettings(header_row=3)})
    columns, rows = table(cache, "客户名单")
    assert columns == ["会员编号", "姓名", "手机号", "注册日期", "最近下单", "积分", "余额", "备注"]
    assert rows == [
        (
            "00012",
            "王小明",
            13800000001,
            dt.date(2023, 5, 1),
            dt.datetime(2024, 1, 2, 10, 30),
            120,
            10.5,
            "VIP",
        ),
        (
            "00013",
            "李华",
            13800000002,
            dt.date(2023, 6, 2),
            dt.datetime(2024, 1, 3, 9, 0),
            80,
            3.0,
            "7",
        ),
    ]
    with duckdb.connect(str(cache), read_only=True) as con:
        types = [row[1] for row in con.execute('describe "客户名单"').fetchall()]
    # whole numbers BIGINT, a column with a fraction DOUBLE, a mixed column text
    assert types == [
        "VARCHAR",
        "VARCHAR",
        "BIGINT",
        "DATE",
        "TIMESTAMP",
        "BIGINT",
        "DOUBLE",
        "VARCHAR",
    ]


def test_xlsx_sheet_setting_and_unknown_sheet(exports: Path, cache_dir: Path) -> None:
    write_workbook(exports / "book.xlsx")
    cache = load(exports, cache_dir, **{"book.xlsx": SourceFileSettings(sheet="说明")})
    assert table(cache, "book") == (["not", "this", "sheet"], [])
    with pytest.raises(
        DataError, match=r"book\.xlsx: no sheet named '价格' \(its sheets: 客户, 说明\)"
    ):
        load(exports, cache_dir, **{"book.xlsx": SourceFileSettings(sheet="价格")})


def test_legacy_xls_is_read_like_xlsx(exports: Path, cache_dir: Path) -> None:
    # tests/fixtures/folder/customers.xls: an .xlsx saved as Excel 97-2003 by LibreOffice
    fixture = Path(__file__).parent / "fixtures" / "folder" / "customers.xls"
    (exports / "老客户.xls").write_bytes(fixture.read_bytes())
    assert table(load(exports, cache_dir), "老客户") == (
        ["会员编号", "姓名", "积分", "注册日期"],
        [
            ("00012", "王小明", 120.0, dt.date(2023, 5, 1)),
            ("00013", "李华", 80.5, dt.date(2023, 6, 2)),
        ],
    )


def test_parquet_file_is_a_table(exports: Path, cache_dir: Path) -> None:
    with duckdb.connect() as con:
        target = str(exports / "门店.parquet")
        row = "select 1::bigint as 门店编号, '南京西路店' as 名称"
        con.execute(f"copy ({row}) to '{target}' (format parquet)")
    assert table(load(exports, cache_dir), "门店") == (["门店编号", "名称"], [(1, "南京西路店")])


@pytest.mark.parametrize(
    ("name", "content"), [("bad.xlsx", b"not a zip"), ("bad.parquet", b"PAR1?")]
)
def test_an_unreadable_file_is_named(
    exports: Path, cache_dir: Path, name: str, content: bytes
) -> None:
    (exports / name).write_bytes(content)
    with pytest.raises(DataError, match="^" + re.escape(name) + ": "):
        load(exports, cache_dir)


def test_chinese_file_names_become_table_names_and_other_files_are_ignored(
    exports: Path, cache_dir: Path
) -> None:
    (exports / "订单明细.csv").write_bytes(LINES.encode("gb18030"))
    (exports / "会员.CSV").write_text("编号\n1\n", encoding="utf-8")
    (exports / "readme.txt").write_text("not data", encoding="utf-8")
    (exports / "~$会员.xlsx").write_bytes(b"an Excel lock file")
    (exports / ".hidden.csv").write_text("x\n1\n", encoding="utf-8")
    (exports / "old").mkdir()
    (exports / "old" / "orders.csv").write_text("x\n1\n", encoding="utf-8")
    cache = load(exports, cache_dir)
    with duckdb.connect(str(cache), read_only=True) as con:
        names = {row[0] for row in con.execute("show tables").fetchall()}
    assert names == {"订单明细", "会员"}


def test_two_files_with_one_name_are_one_error_naming_both(exports: Path, cache_dir: Path) -> None:
    (exports / "orders.csv").write_text("x\n1\n", encoding="utf-8")
    (exports / "Orders.xlsx").write_bytes(b"")
    with pytest.raises(DataError) as caught:
        load(exports, cache_dir)
    assert "Orders.xlsx and orders.csv would be the same table" in str(caught.value)


def test_missing_or_empty_folder_and_options_for_absent_files(
    exports: Path, cache_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="is not a folder"):
        load(exports / "nope", cache_dir)
    with pytest.raises(ConfigError, match=r"holds no \.csv, \.xlsx, \.xls or \.parquet file"):
        load(exports, cache_dir)
    (exports / "orders.csv").write_text("x\n1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r'source\.files\."order\.csv": there is no file'):
        load(exports, cache_dir, **{"order.csv": SourceFileSettings(encoding="gbk")})
    with duckdb.connect() as con:
        con.execute(f"copy (select 1 as a) to '{exports / 'p.parquet'}' (format parquet)")
    with pytest.raises(ConfigError, match="encoding does not apply to a parquet file"):
        load(exports, cache_dir, **{"p.parquet": SourceFileSettings(encoding="gbk")})


def identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_an_unchanged_folder_reuses_the_cache(exports: Path, cache_dir: Path) -> None:
    (exports / "orders.csv").write_text("id\n1\n", encoding="utf-8")
    cache = load(exports, cache_dir)
    before = identity(cache)
    assert load(exports, cache_dir) == cache
    assert identity(cache) == before


def test_a_changed_file_or_option_rebuilds_the_cache(exports: Path, cache_dir: Path) -> None:
    orders = exports / "orders.csv"
    orders.write_text("id\n1\n", encoding="utf-8")
    first = load(exports, cache_dir)
    orders.write_text("id\n1\n2\n", encoding="utf-8")
    second = load(exports, cache_dir)
    assert second != first
    assert not first.exists()  # the folder's older cache is removed
    assert table(second, "orders")[1] == [("1",), ("2",)]
    third = load(exports, cache_dir, **{"orders.csv": SourceFileSettings(header_row=2)})
    assert third != second
    assert table(third, "orders") == (["1"], [("2",)])
    (exports / "extra.csv").write_text("a\nb\n", encoding="utf-8")
    assert table(load(exports, cache_dir), "extra") == (["a"], [("b",)])
    assert len(list(cache_dir.iterdir())) == 1


def test_a_reader_of_the_old_cache_keeps_it_while_the_new_one_is_built(
    exports: Path, cache_dir: Path
) -> None:
    orders = exports / "orders.csv"
    orders.write_text("id\n1\n", encoding="utf-8")
    old = load(exports, cache_dir)
    with duckdb.connect(str(old), read_only=True) as reader:
        orders.write_text("id\n1\n2\n", encoding="utf-8")
        new = load(exports, cache_dir)
        assert reader.execute("select count(*) from orders").fetchone() == (1,)
    assert table(new, "orders")[1] == [("1",), ("2",)]


def test_a_failed_rebuild_keeps_the_previous_cache(exports: Path, cache_dir: Path) -> None:
    orders = exports / "orders.csv"
    orders.write_text("id,name\n1,a\n", encoding="utf-8")
    cache = load(exports, cache_dir)
    before = identity(cache)
    orders.write_text("id,name\n1,a\n2,b,c\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3"):
        load(exports, cache_dir)
    assert identity(cache) == before
    assert table(cache, "orders") == (["id", "name"], [("1", "a")])
    assert sorted(path.name for path in cache_dir.iterdir()) == [cache.name]  # no leftovers
    os.utime(orders, ns=(1, 1))  # still broken: it fails again instead of using the old cache
    with pytest.raises(DataError):
        load(exports, cache_dir)


def test_each_folder_has_its_own_cache(tmp_path: Path, cache_dir: Path) -> None:
    one = cache_path(tmp_path / "a", cache_dir, "f" * 64)
    assert one != cache_path(tmp_path / "b", cache_dir, "f" * 64)
    assert one != cache_path(tmp_path / "a", cache_dir, "e" * 64)
    assert one.parent == cache_dir


def write_settings(folder: Path, body: str) -> Path:
    path = folder / "crm_batch.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_settings_resolve_the_folder_and_the_source_opens_read_only(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "订单明细.csv").write_bytes(LINES.encode("gb18030"))
    config = write_settings(
        tmp_path,
        """
        [source]
        folder = "exports"
        [source.files."订单明细.csv"]
        encoding = "GBK"
        """,
    )
    settings = load_settings(config, environ={}, cwd=tmp_path)
    assert settings.source_is_folder
    assert settings.source_folder == tmp_path / "exports"
    assert settings.source_files["订单明细.csv"].encoding == "gbk"
    url = source_url(settings)
    assert url.query == {"access_mode": "read_only"}
    assert Path(url.database).parent == settings.data_dir / "source-cache"
    engine = build_engine(settings)
    try:
        with engine.connect() as con:
            total = con.execute(
                text('select count(*), min("会员编号") from "订单明细" where "状态" = :paid'),
                {"paid": "已支付"},
            ).one()
            assert tuple(total) == (1, "00012")
            with pytest.raises(Exception, match="read-only"):
                con.execute(text('create table "x" (a int)'))
    finally:
        engine.dispose()


def test_settings_refuse_a_database_and_a_folder_together(tmp_path: Path) -> None:
    config = write_settings(
        tmp_path,
        """
        [database]
        url = "duckdb:///sales.duckdb"
        [source]
        folder = "exports"
        """,
    )
    with pytest.raises(ConfigError, match=r"both database\.url and source\.folder are set"):
        load_settings(config, environ={}, cwd=tmp_path)


def test_a_database_url_from_the_environment_replaces_the_folder(tmp_path: Path) -> None:
    config = write_settings(tmp_path, '[source]\nfolder = "/srv/exports"\n')
    settings = load_settings(
        config, environ={"CRM_BATCH_DATABASE_URL": "duckdb:///other.duckdb"}, cwd=tmp_path
    )
    assert not settings.source_is_folder
    assert load_settings(config, environ={}, cwd=tmp_path).source_folder == Path("/srv/exports")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('[source.files."a.csv"]\nencoding = "klingon"\n', "unknown encoding 'klingon'"),
        ('[source]\nfolder = "x"\n[source.files."a.csv"]\ndelimiter = ",,"\n', "one character"),
        ('[source]\nfolder = "x"\n[source.files."a.csv"]\nheader_row = 0\n', "header_row"),
        ('[source.files."a.csv"]\nencoding = "gbk"\n', "source.files is set but source.folder"),
    ],
)
def test_bad_source_settings_name_the_key(tmp_path: Path, body: str, error: str) -> None:
    config = write_settings(tmp_path, body)
    with pytest.raises(ConfigError, match=error):
        load_settings(config, environ={}, cwd=tmp_path)


def readme_block(first_line: str) -> str:
    """The README's fenced block whose first line starts with ``first_line``."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", readme, flags=re.DOTALL)
    (block,) = [block for block in blocks if block.startswith(first_line)]
    return block


def test_the_readme_line_item_mapping_runs_on_its_gb18030_example(
    exports: Path, cache_dir: Path
) -> None:
    sample = readme_block("订单号,行号,会员编号")
    (exports / "订单明细.csv").write_bytes(sample.encode("gb18030"))
    mapping = readme_block("-- orders.sql over a folder of exports")
    cache = load(exports, cache_dir)
    with duckdb.connect(str(cache), read_only=True) as con:
        rows = con.execute(f"select * from ({mapping}) order by order_id").fetchall()
    # worked by hand: SO-001 = 1,280.00 + 95.50 with its largest line's category
    assert rows == [
        ("SO-001", "00012", dt.date(2024, 1, 2), Decimal("1375.50"), "paid", "store", "茶叶"),
        ("SO-002", "00013", dt.date(2024, 1, 5), Decimal("128.00"), "refunded", "store", "茶叶"),
    ]
