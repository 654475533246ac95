"""Benchmark: build every team workbook, for the demo company and for 1M customers / 50 teams.

    .venv/bin/python benchmarks/workbook_bench.py              # both scenarios
    .venv/bin/python benchmarks/workbook_bench.py --only demo  # the demo company only
    .venv/bin/python benchmarks/workbook_bench.py --only 1m

What is timed: for each team, :func:`crm_batch.excel.teamdata.team_workbook_data` (KPI
run -> workbook data) plus :func:`crm_batch.excel.workbook.build_team_workbook` (write
the .xlsm with its VBA project and buttons, then read it back with ``verify_workbook``),
the whole of what the nightly workbook stage does per team except harvesting the old
workbook. The KPI run itself is not timed here (``benchmarks/kpi_bench.py`` does that).

Scenarios:

* ``demo``: the company of ``run_batch.py demo`` (20,000 customers, 200,000 order rows,
  8 teams, seed 42, ending 2026-06-30, with 8 quarters of KPI snapshots so the Dashboard
  tiles have previous values and the chart has points), built in a temp folder.
* ``1m``: the 1,000,000-customer / 10,000,000-order demo of ``kpi_bench.py`` (reused from
  ``var/bench/`` or built there). The KPI engine runs once for the company; its
  per-customer tables are then split into 50 synthetic teams of about 20,000 customers by
  a hash of the customer id (the demo has 8 real teams). The split reports keep the
  company's KPI values for the tiles: only the rows differ, which is what the writer's
  cost depends on.

Each scenario's workbooks are built in one child process (one core; the data of one team
is loaded at a time), which reports wall time, CPU time and its peak resident set
(``VmHWM``), so the peak is the workbook stage's own, without the KPI run. "Rows per
second per core" = customer rows (the Customers tables) / CPU seconds of the child.
Targets (issue 4): >= 10,000 customer rows/s per core, < 500 MB peak.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

RESULT_PREFIX = "WORKBOOK_BENCH_RESULT "
AS_OF = date(2026, 6, 30)
ROWS_PER_CORE_TARGET = 10_000
PEAK_MB_TARGET = 500


def _peak_mb() -> float:
    """This process's peak resident set (VmHWM) in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(job_dir: Path, out_dir: Path) -> None:
    """Build the workbook of every pickled team in ``job_dir``; print one JSON result."""
    from crm_batch.excel.teamdata import team_workbook_data
    from crm_batch.excel.workbook import build_team_workbook, default_vba_modules

    default_vba_modules()  # read the module files once, as a long-running stage would
    jobs = sorted(job_dir.glob("team_*.pickle"))
    rows = 0
    wall = cpu = 0.0
    per_team = []
    for job in jobs:
        with job.open("rb") as stream:
            run, team, settings, history = pickle.load(stream)
        started, started_cpu = time.perf_counter(), time.process_time()
        data = team_workbook_data(run, team, None, settings, history=history, generated_at=None)
        summary = build_team_workbook(data, out_dir / f"{job.stem}.xlsm")
        spent, spent_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        wall += spent
        cpu += spent_cpu
        rows += summary.customers
        per_team.append((team, summary.customers, round(spent, 3)))
        del run, data
    sizes = sum(p.stat().st_size for p in out_dir.glob("*.xlsm"))
    result = {
        "teams": len(jobs),
        "rows": rows,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_mb": _peak_mb(),
        "bytes": sizes,
        "slowest": max(per_team, key=lambda t: t[2]) if per_team else None,
    }
    print(RESULT_PREFIX + json.dumps(result))


def _run_child(job_dir: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="wb-out-") as out:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(job_dir), "--out", out],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the benchmark child failed with exit code {done.returncode}")
    line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX) :])


def _dump_jobs(job_dir: Path, run, teams, settings, history) -> None:  # type: ignore[no-untyped-def]
    for index, team in enumerate(teams):
        one = replace(run, reports={team: run.reports[team]})
        with (job_dir / f"team_{index:03d}.pickle").open("wb") as stream:
            pickle.dump((one, team, settings, history), stream, protocol=pickle.HIGHEST_PROTOCOL)


def scenario_demo(work: Path) -> dict:
    """The demo company of ``run_batch.py demo``, with 8 quarters of snapshots."""
    from crm_batch.app.kpis import backfill_snapshots, run_kpis, snapshot_dates, snapshot_period
    from crm_batch.app.workbook_data import read_history
    from crm_batch.config import load_settings
    from crm_batch.excel.teamdata import HISTORY_KPIS
    from crm_batch.source.db import make_engine
    from crm_batch.source.demo import generate_demo, load_demo

    url = f"duckdb:///{work / 'demo.duckdb'}"
    started = time.perf_counter()
    engine = make_engine(url)
    load_demo(engine, generate_demo(customers=20_000, orders=200_000, seed=42, end_date=AS_OF))
    settings = load_settings(None, database_url=url, environ={}, cwd=work)
    backfill_snapshots(settings, engine, snapshot_dates(AS_OF, 8), computed_at=_now())
    run = run_kpis(settings, engine, AS_OF, snapshot_period(AS_OF), all_teams=True)
    history = read_history(engine, AS_OF, HISTORY_KPIS)
    engine.dispose()
    print(f"demo data and KPIs ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    teams = [team for team in run.reports if team is not None]
    job_dir = work / "demo-jobs"
    job_dir.mkdir()
    _dump_jobs(job_dir, run, teams, settings, history)
    return _run_child(job_dir)


def _now():  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime(2026, 7, 1, 2, 0)


def scenario_million(work: Path, teams: int) -> dict:
    """1M customers split into ``teams`` synthetic teams (see the module docs)."""
    from benchmarks.kpi_bench import DataSpec, ensure_data
    from crm_batch.app.kpis import run_kpis, snapshot_period
    from crm_batch.config import load_settings
    from crm_batch.source.db import make_engine

    spec = DataSpec(customers=1_000_000, orders=10_000_000, seed=42, end_date=AS_OF)
    print(ensure_data(spec, None, ""), file=sys.stderr)
    settings = load_settings(None, database_url=spec.duckdb_url(), environ={}, cwd=work)
    engine = make_engine(spec.duckdb_url())
    started = time.perf_counter()
    run = run_kpis(settings, engine, AS_OF, snapshot_period(AS_OF), include_company=True)
    engine.dispose()
    print(f"1M KPI run (not timed below) {time.perf_counter() - started:.1f} s", file=sys.stderr)
    company = run.reports[None]
    names = [f"Team {i + 1:02d}" for i in range(teams)]

    def team_of(ids):  # type: ignore[no-untyped-def]
        return ids.astype("string").map(
            lambda v: names[int(hashlib.blake2b(v.encode(), digest_size=4).hexdigest(), 16) % teams]
        )

    customers = company.customers.assign(team=team_of(company.customers["customer_id"]))
    lookup = dict(zip(customers["customer_id"].astype("string"), customers["team"], strict=True))
    tables = {
        "churn_warnings": company.churn_warnings,
        "care_calendar": company.care_calendar,
        "advocate_candidates": company.advocate_candidates,
    }
    split = {
        name: frame.assign(team=frame["customer_id"].astype("string").map(lookup))
        for name, frame in tables.items()
    }
    job_dir = work / "million-jobs"
    job_dir.mkdir()
    for index, name in enumerate(names):
        report = replace(
            company,
            team=name,
            customers=customers[customers["team"] == name].reset_index(drop=True),
            **{k: v[v["team"] == name].reset_index(drop=True) for k, v in split.items()},
        )
        one = replace(run, reports={name: report})
        with (job_dir / f"team_{index:03d}.pickle").open("wb") as stream:
            pickle.dump((one, name, settings, None), stream, protocol=pickle.HIGHEST_PROTOCOL)
    del run, company, customers, split
    return _run_child(job_dir)


def _line(name: str, result: dict) -> str:
    per_core = result["rows"] / result["cpu_s"] if result["cpu_s"] else float("nan")
    wall = result["rows"] / result["wall_s"] if result["wall_s"] else float("nan")
    ok_rows = "PASS" if per_core >= ROWS_PER_CORE_TARGET else "MISS"
    ok_peak = "PASS" if result["peak_mb"] < PEAK_MB_TARGET else "MISS"
    return (
        f"{name:>6}: {result['teams']} workbooks, {result['rows']:,} customer rows, "
        f"wall {result['wall_s']:.1f} s, CPU {result['cpu_s']:.1f} s, "
        f"{per_core:,.0f} rows/s per core ({wall:,.0f} rows/s wall) [{ok_rows}], "
        f"peak {result['peak_mb']:.0f} MB [{ok_peak}], "
        f"{result['bytes'] / 1e6:.1f} MB of .xlsm; slowest team {result['slowest']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["demo", "1m"], default=None)
    parser.add_argument("--teams", type=int, default=50, help="teams of the 1M scenario")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.out)
        return 0
    lines = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "demo"):
            lines.append(_line("demo", scenario_demo(work)))
            print(lines[-1], flush=True)
        if args.only in (None, "1m"):
            lines.append(_line("1M", scenario_million(work, args.teams)))
            print(lines[-1], flush=True)
    print(
        f"(machine: {os.cpu_count()} cores; targets >= {ROWS_PER_CORE_TARGET:,} rows/s per "
        f"core, < {PEAK_MB_TARGET} MB peak)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
