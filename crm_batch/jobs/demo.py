"""The ``demo`` command's job: the demo company built, then run as ``serve`` would run it.

Database building and history live in :mod:`crm_batch.app.demo`; this module chains
them with the nightly and quarterly runs and hands what a first look needs to ``show``
(the CLI prints it), as soon as each part is ready.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from crm_batch.app.demo import build_demo_database, demo_history, demo_settings, demo_summary
from crm_batch.app.frames import source_catalog
from crm_batch.app.kpis import compute
from crm_batch.config import Settings
from crm_batch.exports.kpis import as_table
from crm_batch.jobs.pipeline import RunResult, run_nightly, run_quarterly
from crm_batch.periods import last_complete_quarter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoSize:
    """What the generated company looks like (the ``demo`` command's options)."""

    customers: int
    orders: int
    seed: int
    years: int
    id_type: str


def run_demo(
    settings: Settings,
    as_of: date,
    size: DemoSize,
    *,
    replace: bool,
    history_quarters: int,
    database_only: bool,
    show: Callable[[str], object],
    progress: bool = False,
) -> None:
    """Build the demo database ending at ``as_of``, show its summary, then (unless
    ``database_only``) store ``history_quarters`` of snapshot history, run the nightly
    job of ``as_of`` and the quarterly review of the last finished quarter, and show the
    company's KPIs, each run's stages and where the outputs are."""
    source_catalog(settings)  # a missing sql/ or mapping folder: say so before building
    started = time.perf_counter()
    counts = build_demo_database(
        settings,
        end_date=as_of,
        customers=size.customers,
        orders=size.orders,
        seed=size.seed,
        years=size.years,
        id_type=size.id_type,
        replace=replace,
        progress=progress,
    )
    log.info(
        "demo database ready in %.1fs: %s",
        time.perf_counter() - started,
        ", ".join(f"{table} {rows:,}" for table, rows in counts.items()),
    )
    show(demo_summary(settings, as_of))
    if database_only:
        return
    demo_history(settings, as_of, history_quarters)
    runs = demo_runs(demo_settings(settings), as_of)
    show("")
    show(demo_kpis(settings, as_of))
    show("")
    for result in runs:
        show(result.summary())
    show("")
    show(f"Team workbooks: {settings.workbooks_dir}")
    show(f"PDF reports:    {settings.reports_dir}")


def demo_runs(settings: Settings, as_of: date) -> list[RunResult]:
    """The nightly run of ``as_of`` and the quarterly run of the last finished quarter,
    as ``serve`` would run them (run lock, run log), without sending e-mail."""
    nightly = run_nightly(settings, as_of)
    quarterly = run_quarterly(settings, last_complete_quarter(as_of), send=False)
    return [nightly, quarterly]


def demo_kpis(settings: Settings, as_of: date) -> str:
    """The company's KPI table of ``as_of`` (quarter to date), in the settings' language."""
    run = compute(settings, as_of, verify=False).run  # the nightly run just checked it
    return as_table(run, settings.language, settings.currency)
