"""The ``harvest`` command's job: store what staff typed in every team workbook, as
one recorded run of kind ``harvest`` under the run lock."""

from __future__ import annotations

from collections.abc import Callable

from crm_batch.app.dates import default_business_date
from crm_batch.app.runlog import local_now
from crm_batch.config import Settings
from crm_batch.jobs.runs import RunContext, RunResult, Stage, StageOutcome, run_stages
from crm_batch.jobs.workbooks import HarvestReport, harvest_all


def run_harvest(settings: Settings, *, show: Callable[[str], object]) -> RunResult:
    """Harvest the folder's team workbooks (:func:`crm_batch.jobs.workbooks.harvest_all`).

    ``show`` receives the per-workbook summary, also when a workbook could not be read:
    the others are stored, then the run fails with that workbook's error (exit 4).
    """
    found: list[HarvestReport] = []

    def stage(context: RunContext) -> StageOutcome:
        report = harvest_all(context.settings, context.state, local_now(context.settings.tz))
        found[:] = [report]
        report.check()  # a workbook that could not be read fails the run (after the others)
        return StageOutcome(report.inserted, report.summary().splitlines()[-1])

    try:
        return run_stages(
            settings, "harvest", default_business_date(settings), [Stage("harvest", stage)]
        )
    finally:
        if found:
            show(found[0].summary())
