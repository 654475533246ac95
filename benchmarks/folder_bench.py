"""Benchmark: load a folder of exports into the source cache; seconds and peak memory.

    .venv/bin/python benchmarks/folder_bench.py                  # 3M GB18030 + 5M UTF-8 lines
    .venv/bin/python benchmarks/folder_bench.py --gb-lines 300000 --utf8-lines 500000

Generates (not timed) a line-item export of ``--gb-lines`` lines in GB18030 with Chinese
headers and text, and one of ``--utf8-lines`` lines in UTF-8, each alone in a folder.
Each measurement runs in a fresh process (so its peak memory is its own) and is
repeated ``--runs`` times; the median is printed:

* ``build``: :func:`prepare_folder_source` on an empty cache folder (transcoding,
  ``read_csv``, the atomic rename);
* ``reuse``: the same call with the cache up to date (the fingerprint check every
  command pays);
* ``xlsx``: a ``--xlsx-rows`` sheet (Chinese headers, text ids, numbers, dates) read by
  python-calamine, the reader the loader uses, beside openpyxl's read-only mode (the
  reader the project had);
* ``read_csv_auto``: for the UTF-8 file, DuckDB's own ``create table ... as select *
  from read_csv_auto(...)`` into a new file, the way the README suggested before this
  loader (it cannot read GB18030 without downloading an extension).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HEADER = "订单号,行号,会员编号,手机号,商品名称,数量,单价,金额,状态,门店,下单时间"
#: One DuckDB expression per column of HEADER over i (the line number).
COLUMNS = (
    "'SO' || lpad((i // 3)::varchar, 9, '0')",
    "(i % 3 + 1)::varchar",
    "lpad((i % 250000)::varchar, 8, '0')",
    "'1' || lpad((i % 999999937)::varchar, 10, '3')",
    "['乌龙茶', '龙井绿茶 250g', '普洱礼盒, 中秋', '红茶'][i % 4 + 1]",
    "(i % 5 + 1)::varchar",
    "round((i % 997) * 1.37 + 5, 2)::varchar",
    "round((i % 5 + 1) * ((i % 997) * 1.37 + 5), 2)::varchar",
    "['已支付', '已支付', '已支付', '已退款', '已取消'][i % 5 + 1]",
    "'门店' || (i % 120)::varchar",
    "strftime(timestamp '2021-01-01' + to_seconds(i * 17), '%Y-%m-%d %H:%M:%S')",
)


def generate(folder: Path, name: str, lines: int, encoding: str) -> Path:
    """Write ``lines`` data lines (plus the header) to ``folder/name`` in ``encoding``."""
    folder.mkdir(parents=True, exist_ok=True)
    utf8 = folder / (name + ".utf-8.tmp")
    select = ", ".join(f"{expr} as c{n}" for n, expr in enumerate(COLUMNS))
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        con.execute(
            f"copy (select {select} from range({lines}) t(i)) to '{utf8}' "
            "(header false, delimiter ',', quote '\"')"
        )
    target = folder / name
    with utf8.open("r", encoding="utf-8", newline="") as src, target.open("wb") as out:
        out.write((HEADER + "\n").encode(encoding))
        while chunk := src.read(1 << 22):
            out.write(chunk.encode(encoding))
    utf8.unlink()
    return target


def generate_xlsx(path: Path, rows: int) -> Path:
    """A customer list of ``rows`` rows as Excel writes one (constant memory)."""
    import datetime as dt

    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("客户")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, ["会员编号", "姓名", "手机号", "注册日期", "积分", "门店"])
    for n in range(1, rows + 1):
        sheet.write_string(n, 0, f"{n:08d}")
        sheet.write_string(n, 1, f"客户{n}")
        sheet.write_string(n, 2, f"138{n:08d}")
        sheet.write_datetime(
            n, 3, dt.datetime(2020, 1, 1) + dt.timedelta(days=n % 1000), date_format
        )
        sheet.write_number(n, 4, n * 1.25)
        sheet.write_string(n, 5, f"门店{n % 30}")
    book.close()
    return path


def time_xlsx(path: Path, runs: int) -> None:
    """Median seconds to read the whole first sheet with each reader."""
    import openpyxl

    from crm_batch.config import SourceFileSettings
    from crm_batch.source.folder_excel import read_sheet

    def with_openpyxl() -> None:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        list(book.worksheets[0].iter_rows(values_only=True))
        book.close()

    readers = {
        "calamine (read_sheet -> Arrow)": lambda: read_sheet(path, SourceFileSettings()),
        "openpyxl read_only (rows only)": with_openpyxl,
    }
    for label, read in readers.items():
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            read()
            seconds.append(time.perf_counter() - started)
        print(f"xlsx     {label:32} {statistics.median(seconds):7.2f} s")


def measure(kind: str, folder: Path, cache_dir: Path) -> dict[str, float]:
    """One measurement in this process (run through ``--child``); imports not timed."""
    from crm_batch.source.folder import prepare_folder_source

    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    if kind == "read_csv_auto":
        (file,) = folder.iterdir()
        with duckdb.connect(str(cache_dir / "plain.duckdb")) as con:
            con.execute(f"create table t as select * from read_csv_auto('{file}')")
    else:
        prepare_folder_source(folder, cache_dir)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": seconds, "cpu": cpu, "peak_mb": peak_mb}


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (DuckDB reads in parallel):
    less sensitive than wall time to other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(kind: str, folder: Path, cache_dir: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(folder), str(cache_dir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb-lines", type=int, default=3_000_000)
    parser.add_argument("--utf8-lines", type=int, default=5_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, folder, cache_dir = args.child
        print(json.dumps(measure(kind, Path(folder), Path(cache_dir))))
        return 0

    with tempfile.TemporaryDirectory(prefix="crm_folder_bench_") as temp:
        root = Path(temp)
        cases = [
            ("GB18030", generate(root / "gb", "订单明细.csv", args.gb_lines, "gb18030")),
            ("UTF-8", generate(root / "utf8", "order_lines.csv", args.utf8_lines, "utf-8")),
        ]
        print(
            f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, runs {args.runs}, "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        for label, file in cases:
            lines = args.gb_lines if label == "GB18030" else args.utf8_lines
            size_mb = file.stat().st_size / 2**20
            kinds = ["build", "reuse"] + (["read_csv_auto"] if label == "UTF-8" else [])
            for kind in kinds:
                results = []
                for _ in range(args.runs):
                    cache_dir = root / "cache"
                    if kind != "reuse":
                        shutil.rmtree(cache_dir, ignore_errors=True)
                    cache_dir.mkdir(exist_ok=True)
                    if kind == "reuse" and not any(cache_dir.glob("*.duckdb")):
                        run_child("build", file.parent, cache_dir)
                    results.append(run_child(kind, file.parent, cache_dir))
                seconds = statistics.median(r["seconds"] for r in results)
                peak = statistics.median(r["peak_mb"] for r in results)
                cpu = statistics.median(r["cpu"] for r in results)
                rate = "" if kind == "reuse" else f"{lines / seconds:12,.0f} lines/s"
                print(
                    f"{label:8} {lines:>10,} lines {size_mb:7.0f} MiB  {kind:14} "
                    f"{seconds:7.2f} s  (CPU {cpu:6.2f} s)  {rate:>20}  peak {peak:6.0f} MiB"
                )
            shutil.rmtree(root / "cache", ignore_errors=True)
            file.unlink()
        xlsx = generate_xlsx(root / "客户名单.xlsx", args.xlsx_rows)
        print(f"xlsx     {args.xlsx_rows:,} rows, {xlsx.stat().st_size / 2**20:.0f} MiB")
        time_xlsx(xlsx, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
