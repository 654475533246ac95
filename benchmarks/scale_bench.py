"""Benchmark: how the full KPI set's cost grows with the data, on DuckDB, PostgreSQL and Spark.

    .venv/bin/python benchmarks/scale_bench.py                      # 1M, 10M and 30M order rows
    .venv/bin/python benchmarks/scale_bench.py --sizes 1M           # one size
    .venv/bin/python benchmarks/scale_bench.py --sizes 200k,1M --engines duckdb,spark
    .venv/bin/python benchmarks/scale_bench.py --spark-url sc://spark.example:15002

What it does, for each size N (order rows; customers = N / 10):

1. Data: the demo company (seed 42, ending 2026-06-30) in a DuckDB file and a PostgreSQL
   schema, built or reused exactly as benchmarks/kpi_bench.py does (its ``ensure_data``);
   Spark gets the same rows copied from that DuckDB file into Parquet tables of the
   database ``crm_scale_<N>`` (reused when its demo marker matches).
2. Spark: unless ``--spark-url`` names a running server, the benchmark starts one with
   scripts/spark-local.sh on a free port, as ``local-cluster[2,1,2048]`` by default: a
   driver plus two executor processes of one core and 2 GB each, so the queries really
   run on separate executors and the results cross process boundaries as on a cluster.
   Its warehouse is ``var/bench/spark``; it is stopped at the end.
3. One child process per (size, engine): the full KPI set as ``run_batch.py kpis
   --by-team`` computes it (data checks, extraction, KPIs of every team, reconciliation)
   for the quarter of 2026-06-30 to date. Printed per run: wall seconds, the peak resident
   memory of that crm-batch process (VmHWM: numpy and Arrow buffers count; the database
   server's memory does not), its CPU seconds, and order rows per wall second. The
   engines alternate within each size, so they see the same machine load.

The database servers' own CPU and memory are theirs: on this machine they share the
same cores, so the figures show the growth of cost, not what a cluster would do. Never
part of the unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import kpi_bench  # noqa: E402  (the data generator and the database setup)

RESULT_PREFIX = "SCALE_BENCH_RESULT "
END_DATE = date(2026, 6, 30)
SEED = 42
ENGINES = ("duckdb", "postgresql", "spark")
SPARK_DIR = kpi_bench.BENCH_DIR / "spark"
DEFAULT_MASTER = "local-cluster[2,1,2048]"


def parse_size(text: str) -> int:
    """``1M``, ``200k``, ``30000000`` -> a number of order rows."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1M, 200k, 5000000)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def spec_for(orders: int) -> kpi_bench.DataSpec:
    return kpi_bench.DataSpec(max(orders // 10, 100), orders, SEED, END_DATE)


# -- Spark: a server, and the demo copied from DuckDB -----------------------------------


def start_spark(master: str) -> tuple[str, dict[str, str]]:
    """A local Spark Connect server (scripts/spark-local.sh); its URL and environment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CRM_BATCH_SPARK_PORT": str(port),
        "CRM_BATCH_SPARK_DIR": str(SPARK_DIR),
        "CRM_BATCH_SPARK_MASTER": master,
        "PYTHON": sys.executable,
    }
    subprocess.run([str(REPO / "scripts" / "spark-local.sh"), "start"], env=env, check=True)
    return f"sc://127.0.0.1:{port}", env


def stop_spark(env: dict[str, str]) -> None:
    subprocess.run([str(REPO / "scripts" / "spark-local.sh"), "stop"], env=env, check=False)


def spark_url(base: str, spec: kpi_bench.DataSpec) -> str:
    return f"{base}{'&' if '?' in base else '?'}schema=crm_scale_{spec.orders}"


def ensure_spark(base: str, spec: kpi_bench.DataSpec) -> str:
    """Copy the demo of ``spec`` from its DuckDB file into Spark unless it is there."""
    import duckdb

    from crm_batch.source.demo import DEMO_INFO_TABLE
    from crm_batch.source.spark import SparkSource
    from crm_batch.source.spark_tables import table_names, write_table

    schema = f"crm_scale_{spec.orders}"
    admin = SparkSource(base, statement_timeout=None)
    try:
        admin.session().sql(f"create database if not exists {schema}").collect()
    finally:
        admin.dispose()
    source = SparkSource(spark_url(base, spec), statement_timeout=None)
    try:
        if DEMO_INFO_TABLE in table_names(source):
            row = source.session().sql(f"select orders, customers from {DEMO_INFO_TABLE}")
            found = row.collect()
            if found and (found[0][0], found[0][1]) == (spec.orders, spec.customers):
                return f"reused database {schema}"
        started = time.perf_counter()
        with duckdb.connect(str(spec.duckdb_path), read_only=True) as conn:
            for table in (
                "customers",
                "leads",
                "orders",
                "tickets",
                "campaigns",
                "touches",
                DEMO_INFO_TABLE,
            ):
                reader = conn.sql(f"select * from {table}").to_arrow_reader(256_000)
                write_table(source, table, reader, reader.schema)
        return f"copied from DuckDB in {time.perf_counter() - started:.1f} s"
    finally:
        source.dispose()


# -- the measured child ----------------------------------------------------------------


def worker(url: str, as_of: date) -> dict[str, Any]:
    """The full KPI set on ``url`` (the CLI's ``kpis --by-team``), measured."""
    started = time.perf_counter()
    from crm_batch.app.engines import build_engine
    from crm_batch.app.kpis import run_kpis, snapshot_period
    from crm_batch.config import load_settings

    settings = load_settings(REPO / "crm_batch.toml", database_url=url, environ={}, cwd=REPO)
    source = build_engine(settings)
    try:
        run = run_kpis(settings, source, as_of, snapshot_period(as_of), all_teams=True)
    finally:
        source.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": kpi_bench._status_kib("VmHWM") / 1024,
        "customers": len(run.reports[None].customers),
        "scopes": len(run.reports),
    }


def spawn(url: str, as_of: date) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--url", url]
    command += ["--as-of", as_of.isoformat()]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CRM_BATCH_")},
        **kpi_bench.NUMPY_ENVIRONMENT,
    }
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise SystemExit(f"the KPI run on {url} failed (exit {done.returncode})")


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="1M,10M,30M",
        help="order rows per run, comma-separated (1M, 200k, ...; customers = rows / 10)",
    )
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help=f"some of {', '.join(ENGINES)}"
    )
    parser.add_argument("--spark-url", help="a running Spark Connect server (else one is started)")
    parser.add_argument(
        "--spark-master",
        default=DEFAULT_MASTER,
        help=f"master of the started server (default {DEFAULT_MASTER}: two executor processes)",
    )
    parser.add_argument("--pg-url", default=kpi_bench.DEFAULT_PG_URL)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=date.fromisoformat, default=END_DATE)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(args.url, args.as_of)), flush=True)
        return 0
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)} (known: {', '.join(ENGINES)})")
    spark_env: dict[str, str] | None = None
    base = args.spark_url
    if "spark" in engines and base is None:
        base, spark_env = start_spark(args.spark_master)
    rows: list[tuple[int, str, dict[str, Any], str]] = []
    try:
        for orders in sizes:
            spec = spec_for(orders)
            pg_schema = f"crm_scale_{orders}"
            pg = args.pg_url if "postgresql" in engines else None
            notes = kpi_bench.ensure_data(spec, pg, pg_schema)  # DuckDB always: Spark copies it
            urls = {"duckdb": spec.duckdb_url()}
            if pg is not None:
                urls["postgresql"] = kpi_bench.postgres_url(pg, pg_schema)
            if "spark" in engines:
                assert base is not None
                notes["spark"] = ensure_spark(base, spec)
                urls["spark"] = spark_url(base, spec)
            for engine in engines:
                result = spawn(urls[engine], args.as_of)
                rows.append((orders, engine, result, notes.get(engine, "")))
                print(f"{orders:,} rows on {engine}: {result['seconds']:.1f} s", file=sys.stderr)
    finally:
        if spark_env is not None:
            stop_spark(spark_env)
    load = os.getloadavg()
    print()
    print(
        f"crm-batch scale benchmark, {date.today().isoformat()}: full KPI set (kpis --by-team, "
        f"as of {args.as_of}), {os.cpu_count()} CPUs, load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        + (f"; Spark master {args.spark_master}" if spark_env is not None else "")
    )
    header = (
        f"{'order rows':>12} {'customers':>10} {'engine':<11} {'wall s':>8} {'CPU s':>7} "
        f"{'peak MB':>8} {'rows/s':>10}  data"
    )
    print(header)
    print("-" * len(header))
    for orders, engine, result, note in rows:
        print(
            f"{orders:>12,} {result['customers']:>10,} {engine:<11} {result['seconds']:8.1f} "
            f"{result['cpu_seconds']:7.1f} {result['peak_mb']:8.0f} "
            f"{orders / result['seconds']:>10,.0f}  {note}"
        )
    print()
    print(
        "wall s: the crm-batch process from start to the last KPI; CPU s and peak MB: that "
        "process only (the database servers' work is theirs); rows/s: order rows / wall s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
