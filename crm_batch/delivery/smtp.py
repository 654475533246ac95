"""One SMTP session: TLS with certificate checking, a timeout on every socket operation,
login only when a user is set, and every failure translated into a crm-batch error that
says whether trying again can help.

* STARTTLS (default) or implicit TLS (``email.ssl``, port 465) with
  :func:`ssl.create_default_context`: the certificate must chain to a trusted CA (the
  system's, or ``email.ca_file``) and name the configured host.
* ``email.timeout_seconds`` bounds connecting and every read and write of the session.
* Transient (retried by the caller): connection refused or dropped, a timeout, a 4xx
  reply. Permanent (never retried): a 5xx reply, bad credentials, a certificate that
  does not verify, a server without STARTTLS.
* ``connection_level`` on an error means the server itself is unusable, so the other
  messages of the run cannot go out either; otherwise only this message failed.

The password is read from the settings at login and never logged or put in an error.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from types import TracebackType

from crm_batch.config import Settings
from crm_batch.errors import (
    ConfigError,
    CrmBatchError,
    DependencyError,
    PermanentDependencyError,
    StageTimeoutError,
)

log = logging.getLogger(__name__)


class SmtpError(CrmBatchError):
    """Mixin data of the SMTP errors: whether the whole server is unusable."""

    connection_level: bool = False


class SmtpTransientError(DependencyError, SmtpError):
    """The mail server is unreachable or answered 4xx: trying again later can help."""

    transient = True


class SmtpPermanentError(PermanentDependencyError, SmtpError):
    """The mail server refused for good (5xx, bad credentials, untrusted certificate)."""

    transient = False


class SmtpTimeoutError(StageTimeoutError, SmtpError):
    """The mail server did not answer within ``email.timeout_seconds``: retried."""

    transient = True


def _error(cls: type[SmtpError], message: str, *, connection_level: bool) -> SmtpError:
    error = cls(message)
    error.connection_level = connection_level
    return error


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}".strip()


def _timed_out(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TimeoutError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify(exc: BaseException, server: str, timeout: float) -> SmtpError:
    """The crm-batch error for ``exc`` raised while talking to ``server``."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = {addr: (code, reply) for addr, (code, reply) in exc.recipients.items()}
        return refused_error(replies, server)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _error(
            SmtpPermanentError,
            f"SMTP server {server} rejected the login of email.smtp_user "
            f"({_reply_text(exc.smtp_code, exc.smtp_error)}); check the user and "
            "$CRM_BATCH_SMTP_PASSWORD / email.smtp_password_file",
            connection_level=True,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return _error(
            SmtpPermanentError,
            f"SMTP server {server} does not support what crm-batch needs ({exc}); with "
            "email.starttls = true the server must offer STARTTLS",
            connection_level=True,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        reply = _reply_text(code, exc.smtp_error)
        whole_server = isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPHeloError) or (
            code == 421  # "service not available, closing transmission channel"
        )
        if 500 <= code <= 599:
            return _error(
                SmtpPermanentError,
                f"SMTP server {server} refused: {reply}",
                connection_level=whole_server,
            )
        return _error(
            SmtpTransientError,
            f"SMTP server {server} answered {reply} (temporary)",
            connection_level=whole_server,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _error(
            SmtpPermanentError,
            f"the TLS certificate of SMTP server {server} does not verify "
            f"({exc.verify_message or exc.reason}); if a private CA signed it, set "
            "email.ca_file to that CA's PEM file",
            connection_level=True,
        )
    if isinstance(exc, ssl.SSLError):
        return _error(
            SmtpPermanentError,
            f"TLS with SMTP server {server} failed ({exc.reason or exc}); check email.ssl / "
            "email.starttls and email.smtp_port",
            connection_level=True,
        )
    if _timed_out(exc):
        return _error(
            SmtpTimeoutError,
            f"SMTP server {server} did not answer within {timeout:g} s (email.timeout_seconds)",
            connection_level=True,
        )
    if isinstance(exc, OSError | smtplib.SMTPException):
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return _error(
            SmtpTransientError,
            f"cannot talk to SMTP server {server}: {detail}",
            connection_level=True,
        )
    raise exc


def refused_error(replies: dict[str, tuple[int, bytes | str]], server: str) -> SmtpError:
    """The error for recipients the server refused: permanent if any reply is 5xx."""
    described = "; ".join(
        f"{address}: {_reply_text(code, reply)}" for address, (code, reply) in replies.items()
    )
    permanent = any(code >= 500 for code, _ in replies.values())
    cls = SmtpPermanentError if permanent else SmtpTransientError
    return _error(
        cls, f"SMTP server {server} refused the recipient ({described})", connection_level=False
    )


class SmtpSession:
    """A connection to the configured server, opened on first use and reopened after a
    failure; use as a context manager (closes politely, within the timeout)."""

    def __init__(self, settings: Settings) -> None:
        email = settings.email
        if not email.smtp_host or not email.from_address:
            raise ConfigError("email.smtp_host and email.from_address must be set to send e-mail")
        self.settings = settings
        self.email = email
        self.server = f"{email.smtp_host}:{email.smtp_port}"
        self.context = tls_context(settings)
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        email = self.email
        host, port, timeout = email.smtp_host, email.smtp_port, email.timeout_seconds
        assert host is not None
        client: smtplib.SMTP
        if email.ssl:
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self.context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            client.ehlo()
            if email.starttls:
                client.starttls(context=self.context)  # raises if not offered
                client.ehlo()
            if email.smtp_user:
                client.login(email.smtp_user, self.settings.smtp_password() or "")
        except BaseException:
            client.close()
            raise
        log.debug(
            "connected to SMTP server %s (%s)",
            self.server,
            "TLS" if email.ssl else ("STARTTLS" if email.starttls else "no TLS"),
        )
        return client

    def send(self, message: EmailMessage, recipient: str | Sequence[str]) -> None:
        """Send ``message`` to ``recipient`` (one address or several); raises an
        :class:`SmtpError` subclass."""
        recipients = [recipient] if isinstance(recipient, str) else list(recipient)
        try:
            if self._client is None:
                self._client = self._connect()
            refused = self._client.send_message(
                message, from_addr=self.email.from_address, to_addrs=recipients
            )
        except Exception as exc:
            self.close()
            if isinstance(exc, CrmBatchError):
                raise
            raise classify(exc, self.server, self.email.timeout_seconds) from exc
        if refused:
            # only possible with several recipients (the failure notice)
            raise refused_error(dict(refused), self.server)

    def close(self) -> None:
        """Say QUIT (bounded by the timeout) and close; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            client.close()


def tls_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context that checks the certificate chain and the host name, trusting
    the system CAs plus ``email.ca_file`` when set."""
    ca_file = settings.email.ca_file
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"email.ca_file: {ca_file} is not a file (a PEM CA certificate)")
    try:
        context = ssl.create_default_context()
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"email.ca_file: {ca_file} is not a readable PEM certificate ({exc})"
        ) from None
    return context
