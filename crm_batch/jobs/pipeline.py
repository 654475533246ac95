"""Batch runs by business date: the nightly run, a catch-up of missed nights and the
quarterly run, each one recorded run of :func:`crm_batch.jobs.runs.run_stages` with the
stages of :mod:`crm_batch.jobs.stages`.

The run frame's and the stages' names are re-exported here, so callers (the CLI, the
scheduler, the demo, tests) import a run's whole vocabulary from one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from crm_batch.app.dates import default_business_date
from crm_batch.config import Settings
from crm_batch.errors import ConfigError
from crm_batch.jobs.runs import (
    RunContext,
    RunResult,
    Stage,
    StageOutcome,
    StageResult,
    run_stages,
)
from crm_batch.jobs.stages import (
    NIGHTLY_STAGES,
    QUARTERLY_STAGES,
    compute_kpis,
    current_outputs,
    decide_outputs,
    deliver_reports,
    harvest_workbooks,
    quarterly_stages,
    refresh_workbooks,
    store_kpi_snapshots,
    write_diagnosis_reports,
    write_reviews,
)
from crm_batch.periods import Period, finished_quarter

log = logging.getLogger(__name__)

__all__ = [
    "NIGHTLY_STAGES",
    "QUARTERLY_STAGES",
    "RunContext",
    "RunResult",
    "Stage",
    "StageOutcome",
    "StageResult",
    "compute_kpis",
    "current_outputs",
    "decide_outputs",
    "deliver_reports",
    "harvest_workbooks",
    "quarterly_stages",
    "refresh_workbooks",
    "run_catch_up",
    "run_nightly",
    "run_quarterly",
    "run_stages",
    "store_kpi_snapshots",
    "write_diagnosis_reports",
    "write_reviews",
]


def run_nightly(
    settings: Settings,
    as_of: date,
    *,
    resend: bool = False,
    dry_run: bool = False,
    stages: Sequence[Stage] = NIGHTLY_STAGES,
    outputs: bool | None = None,
    outputs_to: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """The nightly run of business date ``as_of`` (see the module docstring); it mails
    the diagnosis reports when ``email.enabled`` and ``email.nightly_diagnosis`` are on
    (``resend``: again, even those already sent; ``dry_run``: list them, send nothing).

    ``outputs``: rebuild the team workbooks and reports (True), keep them (False: KPIs
    and snapshots only, e.g. the earlier dates of a catch-up), or decide by the backfill
    rule (None, :func:`decide_outputs`). ``outputs_to``: rebuild this date's workbooks
    and reports in ``<outputs_to>/workbooks`` and ``<outputs_to>/reports`` instead of the
    configured folders, never mailing them (an old date's outputs, for a look back).
    """
    send = settings.email.enabled and settings.email.nightly_diagnosis
    if (resend or dry_run) and not send:
        raise ConfigError(
            "--resend and --dry-run are about the nightly e-mail: set email.enabled and "
            "email.nightly_diagnosis to true"
        )
    if outputs_to is not None:
        folder = outputs_to.resolve()
        if folder in (settings.workbooks_dir.resolve(), settings.reports_dir.resolve()):
            raise ConfigError(
                f"--outputs-to {outputs_to}: choose a folder other than the configured "
                "workbooks and reports folders"
            )
        settings = settings.model_copy(
            update={
                "workbooks_dir": folder / "workbooks",
                "reports_dir": folder / "reports",
                # a folder for a look back keeps everything it is given
                "reports": settings.reports.model_copy(update={"keep_days": 0}),
            }
        )
        send, outputs = False, True
    return run_stages(
        settings,
        "nightly",
        as_of,
        stages,
        send=send,
        resend=resend,
        dry_run=dry_run,
        outputs=outputs,
        sleep=sleep,
    )


def run_catch_up(
    settings: Settings,
    dates: Sequence[date],
    *,
    show: Callable[[str], object],
    resend: bool = False,
    dry_run: bool = False,
) -> list[RunResult]:
    """The nightly runs of ``dates`` (oldest first), as a catch-up: every date's KPIs and
    snapshots, but the team workbooks and reports only once, for the last date, so a
    long catch-up neither rebuilds every workbook once per missed night nor pushes the
    useful backups out. ``show`` gets each run's summary; the first failure stops the
    catch-up (its exception, and exit code, are the caller's). ``resend`` and ``dry_run``
    as for :func:`run_nightly`."""
    results = []
    for index, day in enumerate(dates):
        last = index == len(dates) - 1
        outputs = None if last else False
        result = run_nightly(settings, day, outputs=outputs, resend=resend, dry_run=dry_run)
        show(result.summary())
        results.append(result)
    return results


def run_quarterly(
    settings: Settings,
    quarter: Period,
    *,
    send: bool = False,
    resend: bool = False,
    dry_run: bool = False,
    stages: Sequence[Stage] = QUARTERLY_STAGES,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """The quarterly run of ``quarter`` (its business date is the quarter's last day);
    ``send`` mails the reviews (to the addresses in ``[email]``, never twice unless
    ``resend``; ``dry_run`` lists the messages and sends nothing).

    Raises :class:`ConfigError` before anything runs unless ``quarter`` is a quarter that
    ended by the default business date (:func:`crm_batch.periods.finished_quarter`).
    """
    try:
        finished_quarter(quarter, default_business_date(settings))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return run_stages(
        settings,
        "quarterly",
        quarter.end,
        stages,
        send=send or resend or dry_run,
        resend=resend,
        dry_run=dry_run,
        sleep=sleep,
    )
