"""Deliver rendered reports by e-mail: plan, skip what was sent, send the rest, report.

:func:`deliver` is what ``quarterly --send`` and the nightly run call;
:func:`send_planned` is its second half, which ``delivery resend --failed`` calls with
the failed messages of the ledger. In order:

1. plan the messages from the settings (:mod:`crm_batch.delivery.plan`);
2. compute each message's stable Message-ID - the report's identity (kind, scope,
   period, language, recipient), never its bytes - and skip those the sent-ledger
   records as ``sent`` (a re-run sends nothing twice) unless ``resend`` asks to send
   them again; with ``email.only_if_changed`` also skip a report whose data digest
   equals the last one sent to that recipient;
3. check that each PDF records the scope it is mailed for
   (:mod:`crm_batch.delivery.scope`): a mismatch fails that file, never misroutes it;
4. build every remaining message, so bad header text (a line break in a team name) is
   a DataError before any connection is made; a dry run stops here and reports what
   would be sent to whom;
5. send them over one SMTP session, each message retried on transient failures under
   ``[retry]`` (capped exponential backoff with jitter); the retry budget is shared by
   the whole delivery, so a failing server cannot stretch the run by a budget per
   message. When the server itself is unusable (down, silent, bad login, untrusted
   certificate) the remaining messages are not attempted and fail with the same reason;
6. record every outcome and return a :class:`DeliveryReport` - or raise, after the
   others went out: :class:`DeliveryScopeError` (exit 4) when a file records another
   scope, :class:`DeliveryError` (exit 5) / :class:`DeliveryTimeoutError` (exit 7,
   every failure a timeout) when messages failed.
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
from crm_batch.delivery.mail import (
    build_message,
    envelope_recipient,
    message_id,
    pdf_digest,
    sender_domain,
)
from crm_batch.delivery.plan import (
    Deliverable,
    Delivery,
    ReportFile,
    as_report_file,
    plan_deliveries,
    unaddressed_reports,
)
from crm_batch.delivery.scope import check_scope
from crm_batch.delivery.smtp import SmtpError, SmtpSession, SmtpTimeoutError, tls_context
from crm_batch.errors import (
    ConfigError,
    DataError,
    PermanentDependencyError,
    StageTimeoutError,
)
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
    redirected_to: str | None = None  # email.redirect_to, when set

    def describe(self) -> str:
        """``kind scope period language -> recipient`` (and the error, if any)."""
        report = self.delivery.report
        scope = report.team if report.team is not None else "company"
        line = (
            f"{report.kind} {scope} {report.period} {report.language} -> {self.delivery.recipient}"
        )
        if self.redirected_to:
            line += f" (redirected to {self.redirected_to})"
        return f"{line}: {self.error}" if self.error else line


@dataclass
class DeliveryReport:
    """The outcome of one :func:`deliver` call."""

    sent: list[Outcome] = field(default_factory=list)
    skipped_already_sent: list[Outcome] = field(default_factory=list)
    skipped_unchanged: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    wrong_scope: list[Outcome] = field(default_factory=list)  # not sent: the file's scope
    unaddressed: list[ReportFile] = field(default_factory=list)
    would_send: list[Outcome] = field(default_factory=list)  # a dry run's plan
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when no message failed or was held back for its file's scope."""
        return not self.failed and not self.wrong_scope

    def summary(self) -> str:
        """One line for the log and the run log (a dry run: what would be sent)."""
        if self.dry_run:
            parts = [f"dry run: {len(self.would_send)} would be sent"]
        else:
            parts = [f"{len(self.sent)} sent"]
        parts.append(f"{len(self.skipped_already_sent)} already sent before (skipped)")
        if self.skipped_unchanged:
            parts.append(f"{len(self.skipped_unchanged)} unchanged since the last one (skipped)")
        if not self.dry_run:
            parts.append(f"{len(self.failed)} failed")
        if self.wrong_scope:
            parts.append(f"{len(self.wrong_scope)} not sent: the file records another scope")
        if self.unaddressed:
            parts.append(f"{len(self.unaddressed)} report(s) without a configured recipient")
        return "e-mail: " + ", ".join(parts)

    def plan_lines(self) -> list[str]:
        """A dry run's messages, one line each (``would send ...``)."""
        return [f"would send {outcome.describe()}" for outcome in self.would_send]


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


class DeliveryScopeError(DataError):
    """A report file records another scope than the one it was to be mailed for: it was
    not sent (the others were)."""

    def __init__(self, message: str, report: DeliveryReport) -> None:
        super().__init__(message)
        self.report = report


def check_ready(settings: Settings) -> None:
    """ConfigError unless e-mail is enabled and complete (password, CA file)."""
    email = settings.email
    if not email.enabled:
        raise ConfigError("e-mail delivery is off: set enabled = true in the [email] settings")
    if email.smtp_user and not settings.smtp_password():
        raise ConfigError(
            "email.smtp_user is set but there is no password: set $CRM_BATCH_SMTP_PASSWORD "
            "or email.smtp_password_file"
        )
    tls_context(settings)  # a bad ca_file is a ConfigError before anything else happens


def deliver(
    settings: Settings,
    ledger: SentLedger,
    reports: Iterable[Deliverable],
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resend: bool = False,
    dry_run: bool = False,
) -> DeliveryReport:
    """Send each report to its recipients from the settings, at most once per message.

    ``ledger`` records what was sent (:class:`crm_batch.app.ledger.SentLedger`, built by
    the caller on the batch database); ``now`` (timezone-aware; default: the current time
    in ``general.timezone``) dates the messages; ``sleep`` waits between retries
    (injectable for tests); ``resend`` sends messages the ledger records as sent again;
    ``dry_run`` sends and records nothing and lists what would be sent
    (:meth:`DeliveryReport.plan_lines`). Raises ConfigError when e-mail is not enabled or
    incomplete, DataError for bad header text or an unreadable PDF (before connecting),
    and :class:`DeliveryScopeError` / :class:`DeliveryError` /
    :class:`DeliveryTimeoutError` as the module docstring says.
    """
    check_ready(settings)
    files = [as_report_file(item) for item in reports]
    result = DeliveryReport(unaddressed=unaddressed_reports(settings, files), dry_run=dry_run)
    for report in result.unaddressed:
        log.warning(
            "e-mail: nobody is configured to receive %s (%s); set %s",
            report.pdf.name,
            report.team if report.team is not None else "company-wide",
            "email.management" if report.team is None else "the team's manager_email",
        )
    return send_planned(
        settings,
        ledger,
        plan_deliveries(settings, files),
        result,
        now=now,
        sleep=sleep,
        resend=resend,
    )


def send_planned(
    settings: Settings,
    ledger: SentLedger,
    deliveries: Sequence[Delivery],
    result: DeliveryReport,
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resend: bool = False,
) -> DeliveryReport:
    """Steps 2-6 of the module docstring for ``deliveries``, into ``result``."""
    check_ready(settings)
    ledger.ensure()
    now = now or datetime.now(settings.tz)
    if now.tzinfo is None:  # a naive time is local time in general.timezone
        now = now.replace(tzinfo=settings.tz)
    pending = _pending(settings, ledger, deliveries, now, result, resend=resend)
    if result.dry_run:
        for line in result.plan_lines():
            log.info("e-mail: %s", line)
    elif pending:
        _send_all(settings, ledger, pending, result, sleep=sleep)
    log.info("%s", result.summary())
    if result.failed:
        details = "\n  ".join(outcome.describe() for outcome in result.failed + result.wrong_scope)
        text = f"{result.summary()}:\n  {details}"
        if all(outcome.timed_out for outcome in result.failed):
            raise DeliveryTimeoutError(text, result)
        raise DeliveryError(text, result)
    if result.wrong_scope:
        details = "\n  ".join(outcome.describe() for outcome in result.wrong_scope)
        raise DeliveryScopeError(f"{result.summary()}:\n  {details}", result)
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
    *,
    resend: bool,
) -> list[_Pending]:
    """The messages still to send, built (header checks included) before connecting."""
    domain = sender_domain(settings)
    redirect_to = settings.email.redirect_to
    keyed = [
        (d, message_id(d.report, d.recipient, domain, redirect_to=redirect_to)) for d in deliveries
    ]
    statuses = ledger.statuses(mid for _, mid in keyed)
    scopes: dict[object, str | None] = {}  # pdf -> the scope error, None when it matches
    digests: dict[object, str] = {}
    pending = []
    planned: set[str] = set()
    for delivery, mid in keyed:
        if mid in planned:
            continue
        planned.add(mid)
        report = delivery.report
        outcome = Outcome(delivery, mid, redirected_to=redirect_to)
        status = statuses.get(mid)
        if status == SENT and not resend:
            result.skipped_already_sent.append(outcome)
            log.info("e-mail: %s already sent (%s)", outcome.describe(), mid)
            continue
        if _unchanged(settings, ledger, delivery):
            result.skipped_unchanged.append(outcome)
            log.info("e-mail: %s unchanged since the last one sent (skipped)", outcome.describe())
            continue
        if report.pdf not in scopes:
            try:
                check_scope(report.pdf, report.team)
                scopes[report.pdf] = None
            except DataError as exc:
                scopes[report.pdf] = str(exc)
                log.error("e-mail: %s", exc)
        if scopes[report.pdf] is not None:
            result.wrong_scope.append(
                Outcome(delivery, mid, error=scopes[report.pdf], redirected_to=redirect_to)
            )
            continue
        if status == SENDING:
            log.warning(
                "e-mail: an earlier run was interrupted while sending %s; sending it again "
                "with the same Message-ID %s (the recipient may see it twice)",
                outcome.describe(),
                mid,
            )
        if report.pdf not in digests:
            digests[report.pdf] = pdf_digest(report.pdf)
        tag = now.strftime("%Y%m%d%H%M%S") if status == SENT else None
        message = build_message(
            settings, delivery, now=now, sha256=digests[report.pdf], resend_tag=tag
        )
        if result.dry_run:
            result.would_send.append(outcome)
            continue
        pending.append(_Pending(delivery, mid, digests[report.pdf], message))
    return pending


def _unchanged(settings: Settings, ledger: SentLedger, delivery: Delivery) -> bool:
    """With ``email.only_if_changed``: the report's data digest equals that of the last
    report of its kind and scope sent to the same address."""
    report = delivery.report
    if not settings.email.only_if_changed or not report.content_sha256:
        return False
    last = ledger.last_sent_digest(
        report.kind, report.team, report.language, envelope_recipient(settings, delivery)
    )
    return last == report.content_sha256


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
    redirect_to = settings.email.redirect_to

    def local_now() -> datetime:
        return datetime.now(settings.tz).replace(tzinfo=None)

    with SmtpSession(settings) as session:
        for item in pending:
            delivery, report = item.delivery, item.delivery.report
            ledger.mark_sending(
                item.message_id,
                {
                    "recipient": envelope_recipient(settings, delivery),
                    "report_kind": report.kind,
                    "team": report.team or "",
                    "period": report.period,
                    "language": report.language,
                    "report_path": str(report.pdf)[:1024],
                    "pdf_sha256": item.sha256,
                    "content_sha256": report.content_sha256,
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
                session.send(item.message, envelope_recipient(settings, item.delivery))

            remaining = max(0.0, settings.retry.budget_seconds - (time.monotonic() - started))
            policy = settings.retry.model_copy(update={"budget_seconds": remaining})
            outcome = Outcome(delivery, item.message_id, redirected_to=redirect_to)
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
            result.sent.append(
                Outcome(delivery, item.message_id, attempts, redirected_to=redirect_to)
            )
            log.info("e-mail sent: %s (%s)", outcome.describe(), item.message["Message-ID"])


def _timed_out(error: SmtpError) -> bool:
    return isinstance(error, SmtpTimeoutError)
