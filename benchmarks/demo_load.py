"""Benchmark: generate the demo and bulk load it; prints seconds, rows/s and peak memory.

    .venv/bin/python benchmarks/demo_load.py                       # 1M customers, 10M orders
    .venv/bin/python benchmarks/demo_load.py --customers 20000 --orders 200000 \\
        --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Without ``--db`` the demo goes into a fresh DuckDB file in a temporary folder (the
embedded default). With ``--db`` the target must be empty or hold an earlier demo.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from crm_batch.source.db import make_engine
from crm_batch.source.demo import generate_demo, load_demo
from crm_batch.urls import safe_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end-date", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--id-type", choices=("int", "text"), default="int")
    parser.add_argument("--db", help="SQLAlchemy URL (default: a temporary DuckDB file)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="crm_demo_bench_") as folder:
        url = args.db or f"duckdb:///{Path(folder) / 'demo.duckdb'}"
        started = time.perf_counter()
        data = generate_demo(
            customers=args.customers,
            orders=args.orders,
            seed=args.seed,
            end_date=args.end_date,
            progress=not args.no_progress,
        )
        generated = time.perf_counter() - started
        rows = sum(data.row_counts().values())

        engine = make_engine(url)
        started = time.perf_counter()
        loaded = load_demo(engine, data, id_type=args.id_type, progress=not args.no_progress)
        engine.dispose()
        load_seconds = time.perf_counter() - started
        size = Path(url.removeprefix("duckdb:///")).stat().st_size if not args.db else None

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"target      {safe_url(url) if args.db else 'temporary DuckDB file'}")
    print("rows        " + ", ".join(f"{name} {count:,}" for name, count in loaded.items()))
    print(f"generate    {generated:6.1f} s  {rows / generated:12,.0f} rows/s")
    print(f"load        {load_seconds:6.1f} s  {rows / load_seconds:12,.0f} rows/s")
    print(f"total       {generated + load_seconds:6.1f} s")
    print(f"peak memory {peak_mb:,.0f} MiB (max RSS)")
    if size is not None:
        print(f"file size   {size / 2**20:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
