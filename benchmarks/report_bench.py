"""Benchmark: seconds per PDF report and per page, on the demo and the 1M-customer database.

    .venv/bin/python benchmarks/report_bench.py                 # demo (20k customers) and 1M
    .venv/bin/python benchmarks/report_bench.py --size demo     # the demo company only
    .venv/bin/python benchmarks/report_bench.py --size 1m --repeat 3

What it does, per database size (each in a fresh process, so nothing is shared between
them):

1. Data: the demo company as ``run_batch.py demo`` builds it (20,000 customers,
   200,000 order rows, seed 42, ending 2026-06-30) or the 1M-customer / 10M-order
   company of ``benchmarks/kpi_bench.py``, as DuckDB files under ``var/bench/`` (built
   by kpi_bench's ``ensure_data`` and reused by both benchmarks). The KPI snapshots of
   the last 8 quarter ends are stored once, as the nightly runs would have left them
   (not timed).
2. The KPI run the diagnosis reports share (``run_kpis``, every team), timed once.
3. The diagnosis report of one team and of the company (zh-CN): its HTML (context,
   charts, template) and its PDF (WeasyPrint), each ``--repeat`` times, median seconds,
   in this process so CPU seconds are measured too (the library renders the PDF in a
   worker process with a time limit: the same work plus a one-off worker start).
4. The company quarterly review of the last finished quarter: gathering its data
   (one extraction for every scope, 8 quarters from the snapshots, targets), timed
   once, and its HTML and PDF as above.

Targets (issue 5): a team diagnosis report in under 5 s, the company quarterly review in
under 20 s (its data gathering and rendering together). Prints a table and one PASS/MISS
line per target. Never part of the unit tests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

RESULT_PREFIX = "REPORT_BENCH_RESULT "
END_DATE = date(2026, 6, 30)
TEAM = "Shanghai"
SIZES = {"demo": (20_000, 200_000), "1m": (1_000_000, 10_000_000)}
TEAM_DIAGNOSIS_TARGET = 5.0
COMPANY_QUARTERLY_TARGET = 20.0


def _timed(repeat: int, job: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """Median wall and CPU seconds of ``repeat`` runs of ``job``, and the last result.

    CPU seconds (this process) are shown beside wall seconds because the machine is
    shared: when other jobs compete for the cores, wall time grows and CPU time does not.
    """
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = job()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"seconds": statistics.median(walls), "cpu": statistics.median(cpus)}, result


def _report(repeat: int, build_html: Callable[[], str], folder: Path) -> dict[str, Any]:
    """Time one report: its HTML (context, charts, template) and its PDF (WeasyPrint),
    both in this process so CPU time is measured (the library renders PDFs in a worker
    process with a time limit; the work is the same)."""
    import io

    from pypdf import PdfReader

    from crm_batch.reports.render import html_to_pdf

    html_timing, page = _timed(repeat, build_html)
    pdf_timing, pdf = _timed(repeat, lambda: html_to_pdf(page))
    (folder / f"report_{len(list(folder.iterdir()))}.pdf").write_bytes(pdf)
    return {
        "seconds": html_timing["seconds"] + pdf_timing["seconds"],
        "cpu": html_timing["cpu"] + pdf_timing["cpu"],
        "html_seconds": html_timing["seconds"],
        "pdf_seconds": pdf_timing["seconds"],
        "pages": len(PdfReader(io.BytesIO(pdf)).pages),
    }


def worker(size: str, repeat: int) -> dict[str, Any]:
    """Child-process entry: build or reuse the data, time every report."""
    from benchmarks.kpi_bench import DataSpec, ensure_data
    from crm_batch.app.kpis import backfill_snapshots, run_kpis, snapshot_dates, snapshot_period
    from crm_batch.app.quarter import gather_quarter
    from crm_batch.app.snapshots import read_snapshots
    from crm_batch.config import load_settings
    from crm_batch.periods import last_complete_quarter
    from crm_batch.reports.diagnosis import diagnosis_html
    from crm_batch.reports.quarterly import quarterly_html
    from crm_batch.source.db import make_engine

    customers, orders = SIZES[size]
    spec = DataSpec(customers, orders, 42, END_DATE)
    data_note = ensure_data(spec, None, "unused")["duckdb"]
    reports = Path(tempfile.mkdtemp(prefix="report_bench_"))
    settings = load_settings(None, database_url=spec.duckdb_url(), environ={}).model_copy(
        update={"reports_dir": reports}
    )
    engine = make_engine(spec.duckdb_url())
    result: dict[str, Any] = {"size": size, "customers": customers, "orders": orders}
    try:
        stored = set(read_snapshots(engine, kpis=["customers_total"], scope="all")["as_of"].dt.date)
        missing = [day for day in snapshot_dates(END_DATE, 8) if day not in stored]
        if missing:
            started = time.perf_counter()
            backfill_snapshots(settings, engine, missing, datetime.now())
            data_note += (
                f"; stored {len(missing)} snapshot dates in {time.perf_counter() - started:.0f} s"
            )
        result["data"] = data_note

        timing, run = _timed(
            1,
            lambda: run_kpis(settings, engine, END_DATE, snapshot_period(END_DATE), all_teams=True),
        )
        result["kpi_run"] = timing

        for label, scope in (("diagnosis_team", TEAM), ("diagnosis_company", None)):
            result[label] = _report(
                repeat, lambda scope=scope: diagnosis_html(settings, run, scope, "zh-CN"), reports
            )

        quarter = last_complete_quarter(END_DATE)
        timing, data = _timed(1, lambda: gather_quarter(settings, engine, quarter))
        result["quarterly_data"] = timing
        result["quarterly_recomputed"] = [q.label for q in data.recomputed()]
        result["quarterly_company"] = _report(
            repeat, lambda: quarterly_html(settings, data, None, "zh-CN"), reports
        )
    finally:
        engine.dispose()
        shutil.rmtree(reports, ignore_errors=True)
    return result


def spawn(size: str, repeat: int) -> dict[str, Any]:
    """Run the worker of ``size`` in a fresh interpreter; its JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", size]
    command += ["--repeat", str(repeat)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise SystemExit(f"worker {size} failed (exit {done.returncode}):\n{done.stdout[-2000:]}")


def print_report(results: list[dict[str, Any]], repeat: int) -> bool:
    """The table and the targets' verdicts (on wall seconds); True when all are met."""
    print(f"PDF reports, zh-CN, median of {repeat} render(s); data steps timed once")
    header = f"{'database':<26} {'step':<38} {'wall s':>7} {'CPU s':>7} {'pages':>6} {'s/page':>7}"
    print(header)
    print("-" * len(header))
    ok = True

    def line(name: str, title: str, row: dict[str, Any]) -> None:
        pages = row.get("pages")
        per_page = f"{row['seconds'] / pages:>7.2f}" if pages else ""
        shown = f"{pages:>6}" if pages else " " * 6
        split = (
            f"  (HTML {row['html_seconds']:.1f} + PDF {row['pdf_seconds']:.1f})"
            if "pdf_seconds" in row
            else ""
        )
        print(
            f"{name:<26} {title:<38} {row['seconds']:>7.1f} {row['cpu']:>7.1f} {shown} "
            f"{per_page}{split}"
        )

    for result in results:
        line(
            f"{result['size']} ({result['customers']:,} cust.)",
            "KPI run, every team",
            result["kpi_run"],
        )
        line("", f"diagnosis, team {TEAM}: HTML + PDF", result["diagnosis_team"])
        line("", "diagnosis, company: HTML + PDF", result["diagnosis_company"])
        line("", "quarterly data (gather_quarter)", result["quarterly_data"])
        line("", "quarterly review, company: HTML + PDF", result["quarterly_company"])
        data, render = result["quarterly_data"], result["quarterly_company"]
        total = {"seconds": data["seconds"] + render["seconds"], "cpu": data["cpu"] + render["cpu"]}
        line("", "quarterly review, company: total", total)
        if result["quarterly_recomputed"]:
            print(f"{'':<26} (recomputed: {', '.join(result['quarterly_recomputed'])})")
        team = result["diagnosis_team"]["seconds"]
        team_ok = team < TEAM_DIAGNOSIS_TARGET
        quarterly_ok = total["seconds"] < COMPANY_QUARTERLY_TARGET
        ok = ok and team_ok and quarterly_ok
        print(
            f"  {'PASS' if team_ok else 'MISS'} team diagnosis {team:.1f} s "
            f"< {TEAM_DIAGNOSIS_TARGET:.0f} s; {'PASS' if quarterly_ok else 'MISS'} company "
            f"quarterly review {total['seconds']:.1f} s < {COMPANY_QUARTERLY_TARGET:.0f} s "
            "(data + render)"
        )
        print(f"  data: {result['data']}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=["demo", "1m", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1, help="renders per report (median)")
    parser.add_argument("--worker", choices=sorted(SIZES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.repeat)
        print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
        return 0
    sizes = ["demo", "1m"] if args.size == "both" else [args.size]
    results = [spawn(size, args.repeat) for size in sizes]
    return 0 if print_report(results, args.repeat) else 1


if __name__ == "__main__":
    sys.exit(main())
