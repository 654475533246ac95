"""``crm-batch delivery resend --failed``: send again the messages the ledger records as
``failed`` (the mail server was down, a recipient was refused), once that is fixed.

Each failed row names its report file and key; the report is planned again from the
settings (recipients still come only from there) and only the messages whose key is a
failed row go out, under their stable Message-ID. A row whose file is gone or whose
recipient is no longer configured is reported, not sent. The scope check, the ledger and
the retry policy are those of every delivery (:func:`crm_batch.delivery.send_planned`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from crm_batch.app.ledger import SentLedger
from crm_batch.config import Settings
from crm_batch.delivery.mail import message_id, sender_domain
from crm_batch.delivery.plan import ReportFile, plan_deliveries
from crm_batch.delivery.send import DeliveryReport, check_ready, send_planned

log = logging.getLogger(__name__)


def resend_failed(
    settings: Settings,
    ledger: SentLedger,
    *,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[DeliveryReport, list[str]]:
    """Send the ledger's failed messages again; the report and the failed rows that
    could not be planned (one line each: which and why)."""
    check_ready(settings)
    ledger.ensure()
    rows = ledger.failed()
    domain = sender_domain(settings)
    redirect_to = settings.email.redirect_to
    files: dict[ReportFile, None] = {}
    dropped: list[str] = []
    for row in rows:
        report = ReportFile(
            str(row["report_kind"]),
            str(row["team"]) or None,
            str(row["period"]),
            str(row["language"]),
            Path(str(row["report_path"])),
            row.get("content_sha256"),  # type: ignore[arg-type]
        )
        if not report.pdf.is_file():
            dropped.append(f"{row['message_id']}: {report.pdf} no longer exists")
            continue
        files[report] = None
    wanted = {str(row["message_id"]) for row in rows}
    chosen, planned = [], set()
    for delivery in plan_deliveries(settings, files):
        key = message_id(delivery.report, delivery.recipient, domain, redirect_to=redirect_to)
        if key in wanted:
            chosen.append(delivery)
            planned.add(key)
    for row in rows:
        key = str(row["message_id"])
        if key not in planned and not any(key in line for line in dropped):
            dropped.append(
                f"{key}: {row['recipient']} is no longer configured for {row['report_path']}"
            )
    for line in dropped:
        log.warning("delivery resend: not sent: %s", line)
    result = DeliveryReport(dry_run=dry_run)
    return send_planned(settings, ledger, chosen, result, sleep=sleep), dropped
