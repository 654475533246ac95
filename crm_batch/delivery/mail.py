"""The e-mail of one delivery: localized subject and body (plain text and HTML, with the
report's summary), the PDF, a stable Message-ID.

The Message-ID is a hash of the report's identity (kind, scope, period, language and
the recipient; with ``email.redirect_to`` also the test address) under the sender's
domain, never of the PDF's bytes: a report rendered again (a new generation time) is the
same message, the sent-ledger skips it, and a mail client that still gets it twice (a
crash between the server's "250" and the ledger write) can tell it is the same message.
A resend asked for on purpose (``--resend``) goes out under that id plus a resend tag,
because mail servers that drop a Message-ID they already delivered would swallow it.

Header values that come from data or settings (team names, the company name) are
checked before anything is sent: a line break or other control character is a
:class:`~crm_batch.errors.DataError`, never a new header line.
"""

from __future__ import annotations

import hashlib
import html
import json
import unicodedata
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from crm_batch.config import Settings
from crm_batch.delivery.plan import Delivery, ReportFile
from crm_batch.delivery.summary import summary_html, summary_text
from crm_batch.errors import ConfigError, DataError

#: Subject and body texts per language (zh-CN, en); ``{...}`` are filled from the report.
_TEXTS: dict[str, tuple[str, str]] = {
    "kind.diagnosis": ("客户现状诊断报告", "Customer status diagnosis"),
    "kind.quarterly": ("季度复盘报告", "Quarterly review"),
    "scope.all": ("全公司", "company-wide"),
    "scope.team": ("{team}", "team {team}"),
    "period.diagnosis": ("数据截至 {period}", "as of {period}"),
    "period.quarterly": ("{period}", "{period}"),
    "subject": ("【{company}】{title}({scope},{period})", "[{company}] {title}: {scope}, {period}"),
    "redirected": ("【测试,原收件人 {recipient}】", "[TEST for {recipient}] "),
    "intro": (
        "您好:\n\n附件是《{title}》({scope},{period})的 PDF 文件。\n\n",
        "Hello,\n\nattached is the {title} ({scope}, {period}) as a PDF file.\n\n",
    ),
    "footer": (
        "本报告由 {company} 的 crm-batch 批处理自动生成并发送。报告含客户名称等内部信息,"
        "仅供管理人员使用,请勿转发至公司外部。\n\n"
        "附件:{filename}({size})\n",
        # the company name never ends a sentence: "Demo Trading Co." would end in ".."
        "It was produced and sent automatically by the crm-batch run of {company}; the "
        "report contains customer names and other internal information: it is for managers "
        "only, please do not forward it outside the company.\n\n"
        "Attachment: {filename} ({size})\n",
    ),
}


def text(key: str, language: str, **values: object) -> str:
    """The text of ``key`` in ``language`` (zh-CN or en) with ``values`` filled in."""
    zh, en = _TEXTS[key]
    return (zh if language == "zh-CN" else en).format(**values)


def check_header_text(value: str, what: str) -> str:
    """``value`` if it can go into a header as it is; a DataError naming ``what`` if it
    holds a line break or any other control character (header injection)."""
    for char in value:
        if char in "\r\n" or unicodedata.category(char) in {"Cc", "Zl", "Zp"}:
            raise DataError(
                f"{what} {value[:80]!r} contains a line break or control character "
                f"(U+{ord(char):04X}); it cannot go into an e-mail header"
            )
    return value


def pdf_digest(path: Path) -> str:
    """The SHA-256 of the file at ``path`` as hex."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the report to send: {exc.strerror}") from None
    return digest.hexdigest()


def sender_domain(settings: Settings) -> str:
    """The domain of ``email.from_address`` (Message-IDs are made under it)."""
    address = settings.email.from_address
    if not address:
        raise ConfigError("email.from_address is not set; it is needed to send e-mail")
    return address.rpartition("@")[2].lower()


def message_id(
    report: ReportFile, recipient: str, domain: str, *, redirect_to: str | None = None
) -> str:
    """The stable Message-ID of ``report`` to ``recipient`` (redirected to
    ``redirect_to``, if set): ``<crm-batch.<hash>@<domain>>``, the sent-ledger's key."""
    identity = [report.kind, report.team, report.period, report.language, recipient.lower()]
    if redirect_to:
        identity.append(f"redirect:{redirect_to.lower()}")
    text = json.dumps(identity, ensure_ascii=False)
    token = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return f"<crm-batch.{token}@{domain}>"


def resent_id(stable_id: str, tag: str) -> str:
    """The Message-ID of a resend asked for on purpose: ``stable_id`` with ``tag``."""
    local, _, domain = stable_id.strip("<>").partition("@")
    return f"<{local}.resent-{tag}@{domain}>"


def envelope_recipient(settings: Settings, delivery: Delivery) -> str:
    """Where ``delivery`` really goes: ``email.redirect_to`` when set, else its recipient."""
    return settings.email.redirect_to or delivery.recipient


def _html_body(intro: str, summary: str, footer: str, language: str) -> str:
    """The HTML alternative: the plain paragraphs escaped, the summary fragment between."""

    def paragraphs(value: str) -> str:
        return "".join(
            f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>"
            for block in value.strip().split("\n\n")
        )

    return (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8"></head>'
        f"<body>{paragraphs(intro)}{summary}{paragraphs(footer)}</body></html>"
    )


def _size_text(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(size, 1) / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def build_message(
    settings: Settings,
    delivery: Delivery,
    *,
    now: datetime,
    sha256: str | None = None,
    resend_tag: str | None = None,
) -> EmailMessage:
    """The complete message of ``delivery``, dated ``now`` (timezone-aware); with
    ``email.redirect_to`` it goes to that address with the real recipient in the subject,
    with ``resend_tag`` under a resend's Message-ID (:func:`resent_id`).

    Raises DataError when a header value holds a line break, the PDF cannot be read, or
    ``sha256`` (if given) no longer matches the file.
    """
    report = delivery.report
    language = report.language
    try:
        data = report.pdf.read_bytes()
    except OSError as exc:
        raise DataError(f"{report.pdf}: cannot read the report to send: {exc.strerror}") from None
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise DataError(f"{report.pdf}: the file changed while it was being sent")
    company = check_header_text(settings.company_name, "general.company_name")
    if report.team is None:
        scope = text("scope.all", language)
    else:
        scope = text("scope.team", language, team=check_header_text(report.team, "team name"))
    title = text(f"kind.{report.kind}", language)
    period = text(
        f"period.{report.kind}", language, period=check_header_text(report.period, "period")
    )
    filename = check_header_text(report.pdf.name, "report file name")
    subject = text("subject", language, company=company, title=title, scope=scope, period=period)
    sender = settings.email.from_address
    if not sender:
        raise ConfigError("email.from_address is not set; it is needed to send e-mail")
    redirect_to = settings.email.redirect_to
    if redirect_to:
        subject = text("redirected", language, recipient=delivery.recipient) + subject
    stable_id = message_id(
        report, delivery.recipient, sender_domain(settings), redirect_to=redirect_to
    )

    message = EmailMessage()
    message["Subject"] = check_header_text(subject, "subject")
    message["From"] = sender
    message["To"] = envelope_recipient(settings, delivery)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = stable_id if resend_tag is None else resent_id(stable_id, resend_tag)
    # RFC 3834: an automatic message; out-of-office replies should not answer it
    message["Auto-Submitted"] = "auto-generated"
    values = {
        "company": company,
        "title": title,
        "scope": scope,
        "period": period,
        "filename": filename,
        "size": _size_text(len(data)),
    }
    intro, footer = text("intro", language, **values), text("footer", language, **values)
    summary = report.summary
    middle = summary_text(summary, language) if summary else ""
    message.set_content(intro + middle + footer)
    message.add_alternative(
        _html_body(intro, summary_html(summary, language) if summary else "", footer, language),
        subtype="html",
    )
    # the default policy writes a non-ASCII file name as RFC 2231 filename*=utf-8''...
    message.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    # after add_attachment: making the message multipart moves Content-* headers inward
    message["Content-Language"] = language
    return message
