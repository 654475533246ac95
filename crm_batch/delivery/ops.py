"""The message to ``email.ops_recipients`` when a run fails: what, where, why.

Sent from the run frame (:func:`crm_batch.jobs.runs.run_stages`), so a failure under
cron, ``serve`` or the Windows task alike reaches the people who run the batch. It holds
the run (kind, business date, id), the stage, the error and the last log lines of the
run, passed through :func:`crm_batch.logs.mask_secrets` (no passwords); no report is
attached and nothing is read from the data. Sending it is best effort: a failure to send
is logged and returned, never raised, so it cannot mask the run's own error and exit code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from crm_batch.config import Settings
from crm_batch.delivery.mail import check_header_text, sender_domain
from crm_batch.delivery.smtp import SmtpSession
from crm_batch.logs import mask_secrets

log = logging.getLogger(__name__)

#: Longest error text and log line in the message.
MAX_ERROR_CHARS = 1000
MAX_LINE_CHARS = 300


def failure_message(
    settings: Settings,
    *,
    kind: str,
    business_date: str,
    run_id: str,
    stage: str,
    error: str,
    exit_code: int,
    log_lines: Sequence[str],
    now: datetime,
) -> EmailMessage:
    """The failure notice (plain text, English: the log it quotes is English too)."""
    company = check_header_text(settings.company_name, "general.company_name")
    message = EmailMessage()
    message["Subject"] = f"[{company}] crm-batch {kind} {business_date} failed at {stage}"
    message["From"] = settings.email.from_address or ""
    message["To"] = ", ".join(settings.email.ops_recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("crm-batch.ops", domain=sender_domain(settings))
    message["Auto-Submitted"] = "auto-generated"
    lines = [mask_secrets(line)[:MAX_LINE_CHARS] for line in log_lines]
    body = [
        f"The crm-batch {kind} run of business date {business_date} failed.",
        "",
        f"  run:       {run_id}",
        f"  stage:     {stage}",
        f"  exit code: {exit_code}",
        f"  error:     {mask_secrets(error)[:MAX_ERROR_CHARS]}",
        "",
        "What to do: read the error, fix its cause, and run the same command again; "
        "`crm-batch status` shows the runs and their stages.",
        "",
        f"The last {len(lines)} log lines of the run:" if lines else "No log lines.",
        *(f"  {line}" for line in lines),
        "",
    ]
    message.set_content("\n".join(body))
    return message


def notify_failure(settings: Settings, *, now: datetime, **details: object) -> bool:
    """Send :func:`failure_message` (``details`` are its keyword arguments) to every
    ``email.ops_recipients`` address; True when it went out. Never raises."""
    email = settings.email
    if not email.ops_recipients:
        return False
    if not (email.smtp_host and email.from_address):
        log.warning("email.ops_recipients is set but smtp_host/from_address are not: no notice")
        return False
    try:
        message = failure_message(settings, now=now, **details)  # type: ignore[arg-type]
        with SmtpSession(settings) as session:
            session.send(message, email.ops_recipients)
    except Exception as exc:
        log.error("could not send the failure notice to email.ops_recipients: %s", exc)
        return False
    log.info("failure notice sent to %s", ", ".join(email.ops_recipients))
    return True
