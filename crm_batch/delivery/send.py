"""Deliver rendered reports by e-mail: plan, skip what was sent, send the rest, report.

:func:`deliver` is what ``quarterly --send`` and the nightly run call. In order:

1. plan the messages from the settings (:mod:`crm_batch.delivery.plan`);
2. compute each message's stable Message-ID and skip those the sent-ledger records as
   ``sent`` (a re-run sends nothing twice);
3. build every remaining message, so bad header text (a line break in a team name) is
   a DataError before any connection is made;
4. send them over one SMTP session, each message retried on transient failures under
   ``[retry]`` (capped exponential backoff with jitter); the retry budget is shared by
   the whole delivery, so a failing server cannot stretch the run by a budget per
   message. When the server itself is unusable (down, silent, bad login, untrusted
   certificate) the remaining messages are not attempted and fail with the same reason;
5. record every outcome and return a :class:`DeliveryReport` - or, when any message
   failed, raise :class:`DeliveryError` (exit 5) / :class:`DeliveryTimeoutError` (exit
   7, every failure a timeout) carrying that report, after the others went out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from crm_batch.app.ledger import FAILED, SENDING, SENT, SentLedger
from crm_batch.config import Settings
from crm_batch.delivery.mail import build_message, message_id, pdf_digest, sender_domain
from crm_batch.delivery.plan import (
    Deliverable,
    Delivery,
    ReportFile,
    as_report_file,
    plan_deliveries,
    unaddressed_reports,
)
from crm_batch.delivery.smtp import SmtpError, SmtpSession, SmtpTimeoutError, tls_context
from crm_batch.errors import ConfigError, PermanentDependencyError, StageTimeoutError
from crm_batch.retry import call_with_retries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to one planned message."""

    delivery: Delivery
    message_id: str
    attempts: int = 0
    error: str | None = None
    timed_out: bool = False  # the error was the server not answering in time

    def describe(self) -> str:
        """``kind scope period language -> recipient`` (and the error, if any)."""
        report = self.delivery.report
        scope = report.team if report.team is not None else "company"
        line = (
            f"{report.kind} {scope} {report.period} {report.language} -> {self.delivery.recipient}"
        )
        return f"{line}: {self.error}" if self.error else line


@dataclass
class DeliveryReport:
    """The outcome of one :func:`deliver` call."""

    sent: list[Outcome] = field(default_factory=list)
    skipped_already_sent: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    unaddressed: list[ReportFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no message failed."""
        return not self.failed

    def summary(self) -> str:
        """One line for the log and the run log."""
        parts = [
            f"{len(self.sent)} sent",
            f"{len(self.skipped_already_sent)} already sent before (skipped)",
            f"{len(self.failed)} failed",
        ]
        if self.unaddressed:
            parts.append(f"{len(self.unaddressed)} report(s) without a configured recipient")
        return "e-mail: " + ", ".join(parts)


class DeliveryError(PermanentDependencyError):
    """Some messages could not be delivered (the others were); not retried as a whole:
    every message was already retried as far as the policy allows."""

    def __init__(self, message: str, report: DeliveryReport) -> None:
        super().__init__(message)
        self.report = report


class DeliveryTimeoutError(StageTimeoutError):
    """Every failed message failed because the mail server did not answer in time."""

    transient = False

    def __init__(self, message: str, report: DeliveryReport) -> None:
        super().__init__(message)
        self.report = report


def deliver(
    settings: Settings,
    ledger: SentLedger,
    reports: Iterable[Deliverable],
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send each report to its recipients from the settings, at most once per message.

    ``ledger`` records what was sent (:class:`crm_batch.app.ledger.SentLedger`, built by
    the caller on the batch database); ``now`` (timezone-aware; default: the current time
    in ``general.timezone``) dates the messages; ``sleep`` waits between retries
    (injectable for tests). Raises ConfigError when e-mail is not enabled or incomplete,
    DataError for bad header text or an unreadable PDF (before connecting), and
    :class:`DeliveryError` / :class:`DeliveryTimeoutError` when messages failed.
    """
    email = settings.email
    if not email.enabled:
        raise ConfigError("e-mail delivery is off: set enabled = true in the [email] settings")
    if email.smtp_user and not settings.smtp_password():
        raise ConfigError(
            "email.smtp_user is set but there is no password: set $CRM_BATCH_SMTP_PASSWORD "
            "or email.smtp_password_file"
        )
    tls_context(settings)  # a bad ca_file is a ConfigError before anything else happens
    ledger.ensure()
    now = now or datetime.now(settings.tz)
    if now.tzinfo is None:  # a naive time is local time in general.timezone
        now = now.replace(tzinfo=settings.tz)
    files = [as_report_file(item) for item in reports]
    result = DeliveryReport(unaddressed=unaddressed_reports(settings, files))
    for report in result.unaddressed:
        log.warning(
            "e-mail: nobody is configured to receive %s (%s); set %s",
            report.pdf.name,
            report.team if report.team is not None else "company-wide",
            "email.management" if report.team is None else "the team's manager_email",
        )

    pending = _pending(settings, ledger, plan_deliveries(settings, files), now, result)
    if pending:
        _send_all(settings, ledger, pending, result, sleep=sleep)
    log.info("%s", result.summary())
    if result.failed:
        details = "\n  ".join(outcome.describe() for outcome in result.failed)
        text = f"{result.summary()}:\n  {details}"
        if all(outcome.timed_out for outcome in result.failed):
            raise DeliveryTimeoutError(text, result)
        raise DeliveryError(text, result)
    return result


@dataclass
class _Pending:
    delivery: Delivery
    message_id: str
    sha256: str
    message: EmailMessage


def _pending(
    settings: Settings,
    ledger: SentLedger,
    deliveries: Sequence[Delivery],
    now: datetime,
    result: DeliveryReport,
) -> list[_Pending]:
    """The messages still to send, built (header checks included) before connecting."""
    domain = sender_domain(settings)
    digests: dict[object, str] = {}
    keyed = []
    for delivery in deliveries:
        path = delivery.report.pdf
        if path not in digests:
            digests[path] = pdf_digest(path)
        sha = digests[path]
        keyed.append((delivery, message_id(delivery.report, delivery.recipient, sha, domain), sha))
    statuses = ledger.statuses(mid for _, mid, _ in keyed)
    pending = []
    planned: set[str] = set()
    for delivery, mid, sha in keyed:
        if mid in planned:  # the same PDF bytes under two names: one message
            continue
        planned.add(mid)
        status = statuses.get(mid)
        if status == SENT:
            result.skipped_already_sent.append(Outcome(delivery, mid))
            log.info("e-mail: %s already sent (%s)", Outcome(delivery, mid).describe(), mid)
            continue
        if status == SENDING:
            log.warning(
                "e-mail: an earlier run was interrupted while sending %s; sending it again "
                "with the same Message-ID %s (the recipient may see it twice)",
                Outcome(delivery, mid).describe(),
                mid,
            )
        message = build_message(settings, delivery, now=now, sha256=sha)
        pending.append(_Pending(delivery, mid, sha, message))
    return pending


def _send_all(
    settings: Settings,
    ledger: SentLedger,
    pending: Sequence[_Pending],
    result: DeliveryReport,
    *,
    sleep: Callable[[float], None],
) -> None:
    started = time.monotonic()
    server_down: SmtpError | None = None

    def local_now() -> datetime:
        return datetime.now(settings.tz).replace(tzinfo=None)

    with SmtpSession(settings) as session:
        for item in pending:
            delivery, report = item.delivery, item.delivery.report
            ledger.mark_sending(
                item.message_id,
                {
                    "recipient": delivery.recipient,
                    "report_kind": report.kind,
                    "team": report.team or "",
                    "period": report.period,
                    "language": report.language,
                    "report_path": str(report.pdf)[:1024],
                    "pdf_sha256": item.sha256,
                },
                local_now(),
            )
            if server_down is not None:
                error = f"not attempted: {server_down}"
                ledger.mark_done(item.message_id, FAILED, local_now(), 0, error)
                result.failed.append(
                    Outcome(delivery, item.message_id, 0, error, _timed_out(server_down))
                )
                continue
            attempts = 0

            def attempt(item: _Pending = item) -> None:
                nonlocal attempts
                attempts += 1
                session.send(item.message, item.delivery.recipient)

            remaining = max(0.0, settings.retry.budget_seconds - (time.monotonic() - started))
            policy = settings.retry.model_copy(update={"budget_seconds": remaining})
            outcome = Outcome(delivery, item.message_id)
            try:
                call_with_retries(attempt, policy, what=f"e-mail {outcome.describe()}", sleep=sleep)
            except SmtpError as exc:
                error = str(exc)
                ledger.mark_done(item.message_id, FAILED, local_now(), attempts, error)
                result.failed.append(
                    Outcome(delivery, item.message_id, attempts, error, _timed_out(exc))
                )
                log.error("e-mail not delivered: %s", result.failed[-1].describe())
                if exc.connection_level:
                    server_down = exc
                continue
            ledger.mark_done(item.message_id, SENT, local_now(), attempts)
            result.sent.append(Outcome(delivery, item.message_id, attempts))
            log.info("e-mail sent: %s (%s)", outcome.describe(), item.message_id)


def _timed_out(error: SmtpError) -> bool:
    return isinstance(error, SmtpTimeoutError)
