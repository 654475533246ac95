"""The ``demo`` command's job: the demo company built, then run as ``serve`` would run it.

Database building and history live in :mod:`crm_batch.app.demo`; this module chains
them with the nightly and quarterly runs and prints what a first look needs.
"""

from __future__ import annotations

from datetime import date

from crm_batch.app.kpis import compute
from crm_batch.config import Settings
from crm_batch.exports.kpis import as_table
from crm_batch.jobs.pipeline import RunResult, run_nightly, run_quarterly
from crm_batch.periods import last_complete_quarter


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
