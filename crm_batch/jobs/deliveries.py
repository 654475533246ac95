"""The ``delivery`` commands' jobs: ledger work as one recorded run under the run lock,
so a resend never races a nightly run that is sending the same messages."""

from __future__ import annotations

from crm_batch.app.dates import default_business_date
from crm_batch.config import Settings
from crm_batch.jobs.runs import RunContext, RunResult, Stage, StageOutcome, run_stages


def run_resend_failed(settings: Settings, *, dry_run: bool = False) -> RunResult:
    """Send the ledger's failed messages again (:func:`crm_batch.delivery.resend.
    resend_failed`), recorded in ``batch_runs`` as kind ``delivery``."""

    def stage(context: RunContext) -> StageOutcome:
        from crm_batch.app.ledger import SentLedger
        from crm_batch.delivery.resend import resend_failed

        report, dropped = resend_failed(
            context.settings, SentLedger(context.state), dry_run=dry_run
        )
        lines = [report.summary()]
        lines += [f"    {line}" for line in report.plan_lines()]
        lines += [f"    not sent: {line}" for line in dropped]
        return StageOutcome(len(report.sent), "\n".join(lines))

    return run_stages(
        settings,
        "delivery",
        default_business_date(settings),
        [Stage("resend", stage, retry=False)],
    )
