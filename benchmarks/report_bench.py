"""Benchmark: seconds per PDF report, this code beside an earlier commit's, in one run.

    .venv/bin/python benchmarks/report_bench.py --against HEAD~2      # demo, 3 processes each
    .venv/bin/python benchmarks/report_bench.py --size 1m --processes 5
    .venv/bin/python benchmarks/report_bench.py --size both

What it does, per database size:

1. Data: the demo company as ``run_batch.py demo`` builds it (20,000 customers,
   200,000 order rows, seed 42, ending 2026-06-30) or the 1M-customer / 10M-order
   company of ``benchmarks/kpi_bench.py``, as DuckDB files under ``var/bench/`` (built
   by kpi_bench's ``ensure_data`` and reused by both benchmarks), with the KPI snapshots
   of the last 8 quarter ends stored as the nightly runs would have left them. Prepared
   once, in a process of its own, not timed.
2. ``--processes`` fresh processes per code version (``--against REV``: the commit's
   ``crm_batch``, ``report_templates``, ``sql``, ``workbooks/vba`` and
   ``crm_batch.toml`` exported with ``git archive`` into a temporary folder, put first on
   the worker's path and made its current folder, so it reads its own settings; the
   versions alternate, so both see the same machine load). Each process runs the KPI
   run the diagnosis reports share (timed, not counted), then renders, once each and in
   this order: the zh-CN diagnosis of one team and of the company (HTML: context,
   charts, template; PDF: WeasyPrint, in the process so CPU seconds are measured too),
   and the company quarterly review of the last finished quarter (its data gathered by
   ``gather_quarter``, then HTML and PDF). The table shows the median of the processes.

Targets (issue 14): a team diagnosis in at most 1.2 s, the company quarterly review in at
most 3 s (data + render), and with ``--against`` the code before the change: at least
3.5x faster on both. Prints a table and one PASS/MISS line per target. Never part of the
unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
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
TEAM_DIAGNOSIS_TARGET = 1.2
COMPANY_QUARTERLY_TARGET = 3.0
SPEEDUP_TARGET = 3.5
#: What a code version needs at run time (the worker takes the benchmarks from here); its
#: settings file too, since an older version refuses keys added after it.
CODE_FOLDERS = ("crm_batch", "report_templates", "sql", "workbooks/vba", "crm_batch.toml")
STEPS = ("kpi_run", "diagnosis_team", "diagnosis_company", "quarterly_data", "quarterly_company")


def _timed(job: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """Wall and CPU seconds (this process) of one run of ``job``, and its result.

    CPU seconds are shown beside wall seconds because the machine is shared: when other
    jobs compete for the cores, wall time grows and CPU time does not.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = job()
    return {"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu}, result


def _spec(size: str) -> Any:
    from benchmarks.kpi_bench import DataSpec

    customers, orders = SIZES[size]
    return DataSpec(customers, orders, 42, END_DATE)


def prepare(size: str) -> str:
    """Child-process entry: build or reuse the data and its snapshots; what was done."""
    from benchmarks.kpi_bench import ensure_data
    from crm_batch.app.engines import Databases
    from crm_batch.app.kpis import backfill_snapshots, snapshot_dates
    from crm_batch.app.snapshots import read_snapshots
    from crm_batch.config import load_settings
    from crm_batch.source.db import make_engine

    spec = _spec(size)
    note = ensure_data(spec, None, "unused")["duckdb"]
    settings = load_settings(None, database_url=spec.duckdb_url(), environ={})
    engine = make_engine(spec.duckdb_url())
    try:
        stored = set(read_snapshots(engine, kpis=["customers_total"], scope="all")["as_of"].dt.date)
        missing = [day for day in snapshot_dates(END_DATE, 8) if day not in stored]
        if missing:
            started = time.perf_counter()
            backfill_snapshots(settings, Databases.single(engine), missing, datetime.now())
            seconds = time.perf_counter() - started
            note += f"; stored {len(missing)} snapshot dates in {seconds:.0f} s"
    finally:
        engine.dispose()
    return note


def _report(build_html: Callable[[], str]) -> dict[str, Any]:
    """One report rendered once: its HTML (context, charts, template) and its PDF."""
    import io

    from pypdf import PdfReader

    from crm_batch.reports.render import html_to_pdf

    html_timing, page = _timed(build_html)
    pdf_timing, pdf = _timed(lambda: html_to_pdf(page))
    return {
        "seconds": html_timing["seconds"] + pdf_timing["seconds"],
        "cpu": html_timing["cpu"] + pdf_timing["cpu"],
        "html_seconds": html_timing["seconds"],
        "pdf_seconds": pdf_timing["seconds"],
        "pages": len(PdfReader(io.BytesIO(pdf)).pages),
    }


def _databases(engine: Any) -> Any:
    """What ``gather_quarter`` takes in the imported version: the source and state
    databases (one engine for both here) since the state database was split off, the
    engine before."""
    try:
        from crm_batch.app.engines import Databases
    except ImportError:  # a version before the state database
        return engine
    return Databases.single(engine)


def worker(size: str, code: Path | None) -> dict[str, Any]:
    """Child-process entry: time every step once with the code in ``code`` (default:
    this checkout)."""
    if code is not None:
        sys.path.insert(0, str(code))
        os.chdir(code)  # the version's own crm_batch.toml is found in the current folder
    import crm_batch

    expected = (code or REPO) / "crm_batch"
    if Path(crm_batch.__file__).resolve().parent != expected.resolve():
        raise SystemExit(f"imported {crm_batch.__file__}, expected the code in {expected}")

    from crm_batch.app.kpis import run_kpis, snapshot_period
    from crm_batch.app.quarter import gather_quarter
    from crm_batch.config import load_settings
    from crm_batch.periods import last_complete_quarter
    from crm_batch.reports.diagnosis import diagnosis_html
    from crm_batch.reports.quarterly import quarterly_html
    from crm_batch.source.db import make_engine

    spec = _spec(size)
    reports = Path(tempfile.mkdtemp(prefix="report_bench_"))
    settings = load_settings(None, database_url=spec.duckdb_url(), environ={}).model_copy(
        update={"reports_dir": reports}
    )
    engine = make_engine(spec.duckdb_url())
    result: dict[str, Any] = {}
    try:
        result["kpi_run"], run = _timed(
            lambda: run_kpis(settings, engine, END_DATE, snapshot_period(END_DATE), all_teams=True)
        )
        for label, scope in (("diagnosis_team", TEAM), ("diagnosis_company", None)):
            result[label] = _report(
                lambda scope=scope: diagnosis_html(settings, run, scope, "zh-CN")
            )
        quarter = last_complete_quarter(END_DATE)
        databases = _databases(engine)
        result["quarterly_data"], data = _timed(
            lambda: gather_quarter(settings, databases, quarter)
        )
        result["quarterly_company"] = _report(lambda: quarterly_html(settings, data, None, "zh-CN"))
    finally:
        engine.dispose()
        shutil.rmtree(reports, ignore_errors=True)
    return result


def _child(arguments: list[str]) -> Any:
    """Run this script with ``arguments`` in a fresh interpreter; its JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise SystemExit(f"{arguments} failed (exit {done.returncode}):\n{done.stdout[-2000:]}")


def export_code(revision: str, folder: Path) -> str:
    """The code of ``revision`` (its runtime folders) in ``folder``; the short commit id."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", revision],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, *CODE_FOLDERS],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return commit


def _median(samples: list[dict[str, Any]], step: str) -> dict[str, Any]:
    rows = [sample[step] for sample in samples]
    merged = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    if "pages" in merged:
        merged["pages"] = int(merged["pages"])
    return merged


def measure(size: str, processes: int, against: str | None) -> dict[str, Any]:
    """Prepare the data, then alternate fresh worker processes of each code version."""
    result: dict[str, Any] = {"size": size, "processes": processes, "versions": {}}
    result["data"] = _child(["--prepare", size])
    with tempfile.TemporaryDirectory(prefix="report_bench_code_") as folder:
        versions: list[tuple[str, list[str]]] = []
        if against:
            commit = export_code(against, Path(folder))
            versions.append((f"before ({commit})", ["--code", folder]))
        versions.append(("this code", []))
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in versions}
        for _ in range(processes):
            for name, extra in versions:
                samples[name].append(_child(["--worker", size, *extra]))
    for name, runs in samples.items():
        result["versions"][name] = {step: _median(runs, step) for step in STEPS}
    return result


def _total(version: dict[str, Any]) -> dict[str, float]:
    data, render = version["quarterly_data"], version["quarterly_company"]
    return {"seconds": data["seconds"] + render["seconds"], "cpu": data["cpu"] + render["cpu"]}


def print_report(results: list[dict[str, Any]]) -> bool:
    """The table and the targets' verdicts (on wall seconds); True when all are met."""
    ok = True
    for result in results:
        customers, _orders = SIZES[result["size"]]
        print(
            f"\nPDF reports, zh-CN, {result['size']} ({customers:,} customers): median of "
            f"{result['processes']} fresh processes per version; data: {result['data']}"
        )
        names = list(result["versions"])
        header = f"{'step':<40}" + "".join(f"{name:>26}" for name in names)
        print(header + ("   speed-up" if len(names) == 2 else ""))
        print("-" * (len(header) + (11 if len(names) == 2 else 0)))
        rows = [
            ("KPI run, every team (not counted)", "kpi_run"),
            (f"diagnosis, team {TEAM}: HTML + PDF", "diagnosis_team"),
            ("diagnosis, company: HTML + PDF", "diagnosis_company"),
            ("quarterly data (gather_quarter)", "quarterly_data"),
            ("quarterly review, company: HTML + PDF", "quarterly_company"),
            ("quarterly review, company: total", None),
        ]
        for title, step in rows:
            cells, walls = [], []
            for name in names:
                version = result["versions"][name]
                row = _total(version) if step is None else version[step]
                walls.append(row["seconds"])
                pages = f" {row['pages']}p" if "pages" in row else ""
                cells.append(f"{row['seconds']:>6.2f} s ({row['cpu']:.2f} CPU){pages}")
            line = f"{title:<40}" + "".join(f"{cell:>26}" for cell in cells)
            if len(walls) == 2:
                line += f"   {walls[0] / walls[1]:>6.1f}x"
            print(line)
        current = result["versions"][names[-1]]
        team = current["diagnosis_team"]["seconds"]
        quarterly = _total(current)["seconds"]
        verdicts = [
            (team <= TEAM_DIAGNOSIS_TARGET, f"team diagnosis {team:.2f} s <= 1.2 s"),
            (quarterly <= COMPANY_QUARTERLY_TARGET, f"quarterly review {quarterly:.2f} s <= 3 s"),
        ]
        if len(names) == 2:
            before = result["versions"][names[0]]
            for label, old, new in (
                ("team diagnosis", before["diagnosis_team"]["seconds"], team),
                ("quarterly review", _total(before)["seconds"], quarterly),
            ):
                verdicts.append((old / new >= SPEEDUP_TARGET, f"{label} {old / new:.1f}x >= 3.5x"))
        for passed, text in verdicts:
            ok = ok and passed
            print(f"  {'PASS' if passed else 'MISS'} {text}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=["demo", "1m", "both"], default="demo")
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per version")
    parser.add_argument("--against", metavar="REV", help="also time this git revision's code")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--worker", choices=sorted(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--prepare", choices=sorted(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare or args.worker:
        done = prepare(args.prepare) if args.prepare else worker(args.worker, args.code)
        print(RESULT_PREFIX + json.dumps(done, default=str), flush=True)
        return 0
    sizes = ["demo", "1m"] if args.size == "both" else [args.size]
    results = [measure(size, args.processes, args.against) for size in sizes]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if print_report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
