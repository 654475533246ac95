"""E-mail delivery against a real SMTP server on 127.0.0.1 (aiosmtpd on an ephemeral port).

The handler below records every message and can be told to refuse a recipient, answer
DATA with 4xx/5xx replies, or require STARTTLS and a login; a "silent" server is a
listening socket that never says a word. Sleeping is injected, so nothing here waits for
backoff; the only real waits are the silent server's 0.5 s timeouts.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pypdf import PdfWriter
from sqlalchemy import select
from sqlalchemy.engine import URL

from crm_batch.app.engines import build_engine
from crm_batch.app.ledger import SENDING, deliveries_table
from crm_batch.config import Settings, load_settings
from crm_batch.delivery import (
    Delivery,
    DeliveryError,
    DeliveryTimeoutError,
    ReportFile,
    SentLedger,
    build_message,
    deliver,
    plan_deliveries,
    unaddressed_reports,
)
from crm_batch.delivery.mail import check_header_text, message_id
from crm_batch.errors import ConfigError, DataError, ExitCode
from crm_batch.files import SCOPE_PDF_KEY, report_scope
from crm_batch.source.db import make_engine

NOW = datetime(2026, 7, 1, 2, 40, tzinfo=ZoneInfo("Asia/Shanghai"))
PASSWORD = "s3cr3t-Pa55word!"
EAST, SOUTH = "East", "华南一部"

# --- a local SMTP server -------------------------------------------------------------------


@dataclass
class Handler:
    """Records what arrives; replies as told (``data_replies`` are used up in turn)."""

    refuse: dict[str, str] = field(default_factory=dict)  # RCPT address -> reply
    data_replies: list[str] = field(default_factory=list)
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    ehlo_count: int = 0
    data_count: int = 0
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlo_count += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_count += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"reports@example.com" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # the server replies 535

    def received(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default) for _, raw in self.messages]


class LocalController(Controller):
    """aiosmtpd's Controller on 127.0.0.1 and a port the OS picks (no port clashes)."""

    def _create_server(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        return self.loop.create_server(self._factory_invoker, sock=listener, ssl=self.ssl_context)


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Handler, int]]]:
    """Start servers with ``start(handler, **aiosmtpd SMTP options)`` -> (handler, port)."""
    controllers: list[LocalController] = []

    def start(handler: Handler | None = None, **options: Any) -> tuple[Handler, int]:
        handler = handler or Handler()
        controller = LocalController(handler, hostname="127.0.0.1", **options)
        controller.start()
        controllers.append(controller)
        return handler, controller.port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI): cert.pem and key.pem."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return {"cert": cert, "key": key}


def server_tls(certificates: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates["cert"], certificates["key"])
    return context


# --- settings and reports ------------------------------------------------------------------


def make_settings(
    tmp_path: Path, port: int, email: dict[str, str] | None = None, teams: str | None = None
) -> Settings:
    """Settings from a real TOML file: two managed teams, one without a manager, two
    management addresses, plain SMTP to 127.0.0.1; ``email`` overrides [email] keys
    (values are TOML literals)."""
    keys = {
        "enabled": "true",
        "smtp_host": '"127.0.0.1"',
        "smtp_port": str(port),
        "starttls": "false",
        "timeout_seconds": "5.0",
        "from_address": '"reports@crm.example.com"',
        "management": '["boss@example.com", "cfo@example.com"]',
        **(email or {}),
    }
    email_block = "\n".join(f"{key} = {value}" for key, value in keys.items())
    teams = (
        teams
        if teams is not None
        else f"""
[[teams]]
name = "{EAST}"
manager_email = "east.manager@example.com"
language = "en"

[[teams]]
name = "{SOUTH}"
manager_email = "south.manager@example.com"
language = "zh-CN"

[[teams]]
name = "North"
language = "en"
"""
    )
    path = tmp_path / "crm_batch.toml"
    path.write_text(
        f"""
[database]
url = "sqlite:///{(tmp_path / "batch.sqlite").as_posix()}"

[general]
company_name = "Demo Trading Co."
language = "zh-CN"

[retry]
attempts = 3
first_wait_seconds = 2.0
max_wait_seconds = 10.0
budget_seconds = 60.0

[email]
{email_block}
{teams}
""",
        encoding="utf-8",
    )
    return load_settings(path, environ={})


def pdf(path: Path, content: bytes, team: str | None = None) -> Path:
    """A one-page PDF recording ``team``'s scope as a rendered report does; ``content``
    changes its bytes (as a new generation time does)."""
    writer = PdfWriter()
    writer.add_blank_page(72, 72)
    writer.add_metadata({SCOPE_PDF_KEY: report_scope(team), "/Subject": content.decode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        writer.write(stream)
    return path


def reports(tmp_path: Path, version: bytes = b"v1") -> list[ReportFile]:
    folder = tmp_path / "reports"
    return [
        ReportFile(
            "diagnosis",
            None,
            "2026-06-30",
            "zh-CN",
            pdf(folder / "diagnosis_all_2026-06-30_zh-CN.pdf", b"company " + version, None),
        ),
        ReportFile(
            "diagnosis",
            EAST,
            "2026-06-30",
            "en",
            pdf(folder / "diagnosis_east_2026-06-30_en.pdf", b"east " + version, EAST),
        ),
        ReportFile(
            "diagnosis",
            SOUTH,
            "2026-06-30",
            "zh-CN",
            pdf(folder / f"diagnosis_{SOUTH}_2026-06-30_zh-CN.pdf", b"south " + version, SOUTH),
        ),
        ReportFile(
            "diagnosis",
            "North",
            "2026-06-30",
            "en",
            pdf(folder / "diagnosis_north_2026-06-30_en.pdf", b"north " + version, "North"),
        ),
    ]


def ledger_of(settings: Settings) -> SentLedger:
    """The sent-ledger on the settings' database, as the jobs layer builds it."""
    return SentLedger(build_engine(settings))


def ledger_rows(settings: Settings) -> dict[str, Any]:
    engine = build_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(deliveries_table())).mappings().all()
    finally:
        engine.dispose()
    return {row["recipient"]: row for row in rows}


class Waits(list):
    """An injected ``sleep`` that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- planning ------------------------------------------------------------------------------


def test_recipients_come_only_from_the_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, 25)
    files = reports(tmp_path)
    stranger = ReportFile(
        "diagnosis", "evil@attacker.example", "2026-06-30", "en", files[1].pdf
    )  # a team name from the data that looks like an address gets nobody

    planned = plan_deliveries(settings, [*files, stranger, files[0]])

    assert [(d.report.team, d.recipient, d.role) for d in planned] == [
        (None, "boss@example.com", "management"),
        (None, "cfo@example.com", "management"),
        (EAST, "east.manager@example.com", "manager"),
        (SOUTH, "south.manager@example.com", "manager"),
    ]
    assert unaddressed_reports(settings, [*files, stranger]) == [files[3], stranger]


def test_a_report_in_several_languages_goes_out_in_the_recipients_language(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, 25)
    folder = tmp_path / "reports"
    both = [
        ReportFile("quarterly", lang_team, "2026Q3", lang, pdf(folder / f"q_{n}.pdf", b"%d" % n))
        for n, (lang_team, lang) in enumerate(
            [(None, "en"), (None, "zh-CN"), (EAST, "en"), (EAST, "zh-CN"), (SOUTH, "en")]
        )
    ]

    planned = {
        (d.report.team, d.recipient): d.report.language for d in plan_deliveries(settings, both)
    }

    # management: general.language (zh-CN); East: its language (en); South has only an
    # English rendering, which it gets rather than nothing
    assert planned == {
        (None, "boss@example.com"): "zh-CN",
        (None, "cfo@example.com"): "zh-CN",
        (EAST, "east.manager@example.com"): "en",
        (SOUTH, "south.manager@example.com"): "en",
    }


def test_a_rendered_report_is_planned_with_its_own_kind_and_period(tmp_path: Path) -> None:
    """Delivery takes what the renderer says (kind, scope, period, language); it never
    reads them back from the file name, so any name will do."""
    from crm_batch.reports.diagnosis import RenderedReport, output_paths

    settings = make_settings(tmp_path, 25)
    _, html_path = output_paths(settings, SOUTH, "2026-06-30", "zh-CN")
    odd = pdf(tmp_path / "report.pdf", b"south")
    rendered = RenderedReport(
        kind="quarterly", team=SOUTH, period="2026Q2", language="zh-CN", pdf=odd, html=html_path
    )

    [planned] = plan_deliveries(settings, [rendered])

    assert planned.report == ReportFile("quarterly", SOUTH, "2026Q2", "zh-CN", odd)
    assert planned.recipient == "south.manager@example.com"
    unknown = dataclasses.replace(rendered, kind="memo")
    with pytest.raises(DataError, match="unknown report kind 'memo'"):
        plan_deliveries(settings, [unknown])


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ('[[teams]]\nname = "X"\nmanager_email = "x@example.com\\nBcc: evil@example.org"\n',
         "teams.0.manager_email"),
        ('[[teams]]\nname = "X"\nmanager_email = "Boss <boss@example.com>"\n',
         "teams.0.manager_email"),
        ('[email]\nmanagement = ["ok@example.com", "not an address"]\n', "email.management"),
        ('[email]\nfrom_address = "reports@"\n', "email.from_address"),
        ('[email]\nenabled = true\nfrom_address = "a@example.com"\n', "needs smtp_host"),
        ('[email]\nsmtp_user = "u"\nstarttls = false\n', "clear text"),
        ('[email]\nssl = true\nstarttls = true\n', "either ssl"),
    ],
    ids=["line-break", "display-name", "management", "from", "incomplete", "clear-text",
         "ssl-and-starttls"],
)  # fmt: skip
def test_addresses_and_email_settings_are_checked_when_settings_load(
    tmp_path: Path, block: str, key: str
) -> None:
    path = tmp_path / "crm_batch.toml"
    path.write_text(block, encoding="utf-8")

    with pytest.raises(ConfigError, match=key):
        load_settings(path, environ={})


def test_ssl_alone_means_implicit_tls(tmp_path: Path) -> None:
    path = tmp_path / "crm_batch.toml"
    path.write_text("[email]\nssl = true\nsmtp_port = 465\n", encoding="utf-8")

    email = load_settings(path, environ={}).email

    assert (email.ssl, email.starttls, email.smtp_port) == (True, False, 465)


# --- the message ---------------------------------------------------------------------------


def test_message_is_localized_with_the_pdf_and_a_stable_message_id(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, 25)
    south = reports(tmp_path)[2]
    delivery = Delivery(south, "south.manager@example.com", "manager")

    first = build_message(settings, delivery, now=NOW)
    again = build_message(settings, delivery, now=datetime.now(ZoneInfo("UTC")))
    parsed = message_from_bytes(first.as_bytes(), policy=policy.default)

    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"].endswith("@crm.example.com>")
    assert parsed["Subject"] == "【Demo Trading Co.】客户现状诊断报告(华南一部,数据截至 2026-06-30)"
    assert parsed["To"] == "south.manager@example.com"
    assert parsed["From"] == "reports@crm.example.com"
    assert parsed["Date"].datetime == NOW
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert (
        "附件是《客户现状诊断报告》(华南一部,数据截至 2026-06-30)的 PDF 文件。"
        in parsed.get_body(("plain",)).get_content()
    )
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == south.pdf.name
    assert attachment.get_content() == south.pdf.read_bytes()
    # the Chinese file name travels as an RFC 2231 parameter, not raw UTF-8
    # (possibly split into RFC 2231 continuations: filename*0*=..., filename*1*=...)
    raw = first.as_bytes()
    assert re.search(rb"filename\*(0\*)?=utf-8''diagnosis_%E5%8D%8E", raw)
    assert raw.isascii()

    # the id is the report's identity: a re-rendered PDF keeps it, another recipient not
    pdf(south.pdf, b"re-rendered", SOUTH)
    assert build_message(settings, delivery, now=NOW)["Message-ID"] == first["Message-ID"]
    other = Delivery(south, "boss@example.com", "management")
    assert build_message(settings, other, now=NOW)["Message-ID"] != again["Message-ID"]


def test_english_subject(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, 25)
    east = reports(tmp_path)[1]

    message = build_message(
        settings, Delivery(east, "east.manager@example.com", "manager"), now=NOW
    )

    assert (
        message["Subject"]
        == "[Demo Trading Co.] Customer status diagnosis: team East, as of 2026-06-30"
    )
    assert message["Content-Language"] == "en"


@pytest.mark.parametrize(
    "bad", ["East\r\nBcc: evil@example.org", "East\nX", "East\u2028X", "E\x00"]
)
def test_header_text_with_line_breaks_is_rejected(bad: str) -> None:
    with pytest.raises(DataError, match="line break or control character"):
        check_header_text(bad, "team name")
    assert check_header_text("华南一部 <b>&</b> =cmd|' /C calc'!A0", "team name")


# --- sending -------------------------------------------------------------------------------


def test_happy_path_delivers_each_pdf_once_and_a_rerun_sends_nothing(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler, port = smtp_server()
    settings = make_settings(tmp_path, port)
    files = reports(tmp_path)
    waits = Waits()

    report = deliver(settings, ledger_of(settings), files, now=NOW, sleep=waits)

    assert report.ok
    assert waits == []
    assert report.summary() == (
        "e-mail: 4 sent, 0 already sent before (skipped), 0 failed, "
        "1 report(s) without a configured recipient"
    )
    by_recipient = {m["To"]: m for m in handler.received()}
    assert sorted(by_recipient) == [
        "boss@example.com",
        "cfo@example.com",
        "east.manager@example.com",
        "south.manager@example.com",
    ]
    expected_pdf = {
        "boss@example.com": files[0],
        "cfo@example.com": files[0],
        "east.manager@example.com": files[1],
        "south.manager@example.com": files[2],
    }
    for recipient, message in by_recipient.items():
        [attachment] = list(message.iter_attachments())
        assert attachment.get_content() == expected_pdf[recipient].pdf.read_bytes()
        assert attachment.get_filename() == expected_pdf[recipient].pdf.name
    assert [rcpts for rcpts, _ in handler.messages] == [[m["To"]] for m in handler.received()]
    rows = ledger_rows(settings)
    assert {r: row["status"] for r, row in rows.items()} == dict.fromkeys(by_recipient, "sent")
    assert {r: row["message_id"] for r, row in rows.items()} == {
        r: m["Message-ID"] for r, m in by_recipient.items()
    }

    again = deliver(settings, SentLedger(build_engine(settings)), files, now=NOW)

    assert len(handler.messages) == 4  # nothing new arrived
    assert again.sent == []
    assert again.failed == []
    assert {o.message_id for o in again.skipped_already_sent} == {
        m["Message-ID"] for m in by_recipient.values()
    }

    # a re-rendered team PDF (new generation time, so new bytes) is the same report:
    # the ledger key is the report's identity, never its bytes
    pdf(files[1].pdf, b"east v2", EAST)
    third = deliver(settings, ledger_of(settings), files, now=NOW)
    assert third.sent == []
    assert len(handler.messages) == 4


def test_starttls_with_a_trusted_certificate_and_login_keeps_the_password_out_of_logs(
    tmp_path: Path,
    smtp_server: Callable[..., tuple[Handler, int]],
    certificates: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = Handler()
    handler, port = smtp_server(
        handler,
        tls_context=server_tls(certificates),
        require_starttls=True,
        authenticator=handler.authenticate,
        auth_required=True,
    )
    monkeypatch.setenv("CRM_BATCH_SMTP_PASSWORD", PASSWORD)
    settings = make_settings(
        tmp_path,
        port,
        {
            "starttls": "true",
            "smtp_user": '"reports@example.com"',
            "ca_file": f'"{certificates["cert"]}"',
        },
    )
    caplog.set_level(logging.DEBUG)

    report = deliver(settings, ledger_of(settings), reports(tmp_path), now=NOW)

    assert len(report.sent) == 4
    assert len(handler.messages) == 4
    assert handler.logins == [(b"reports@example.com", PASSWORD.encode())]  # one session
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("crm_batch"))
    assert "e-mail sent" in ours
    assert PASSWORD not in ours


def test_a_wrong_password_fails_at_once_without_leaking_it(
    tmp_path: Path,
    smtp_server: Callable[..., tuple[Handler, int]],
    certificates: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = Handler()
    handler, port = smtp_server(
        handler, tls_context=server_tls(certificates), authenticator=handler.authenticate
    )
    wrong = "wr0ng-" + PASSWORD
    monkeypatch.setenv("CRM_BATCH_SMTP_PASSWORD", wrong)
    settings = make_settings(
        tmp_path,
        port,
        {
            "starttls": "true",
            "smtp_user": '"reports@example.com"',
            "ca_file": f'"{certificates["cert"]}"',
        },
    )
    caplog.set_level(logging.DEBUG)
    waits = Waits()

    with pytest.raises(DeliveryError) as raised:
        deliver(settings, ledger_of(settings), reports(tmp_path), sleep=waits)

    assert raised.value.exit_code == ExitCode.DEPENDENCY
    assert "rejected the login" in str(raised.value)
    # one session (EHLO, STARTTLS, EHLO, AUTH; smtplib tries PLAIN, then LOGIN), no retry
    assert handler.ehlo_count == 2
    assert {login for login, _ in handler.logins} == {b"reports@example.com"}
    assert waits == []
    assert len(raised.value.report.failed) == 4
    assert handler.messages == []
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("crm_batch"))
    assert wrong not in ours
    assert wrong not in str(raised.value)


def test_an_untrusted_certificate_is_refused(
    tmp_path: Path,
    smtp_server: Callable[..., tuple[Handler, int]],
    certificates: dict[str, Path],
) -> None:
    handler, port = smtp_server(tls_context=server_tls(certificates), require_starttls=True)
    settings = make_settings(tmp_path, port, {"starttls": "true"})  # no ca_file: system CAs only
    waits = Waits()

    with pytest.raises(DeliveryError, match="does not verify") as raised:
        deliver(settings, ledger_of(settings), reports(tmp_path), sleep=waits)

    assert "email.ca_file" in str(raised.value)
    assert handler.ehlo_count == 1  # one attempt, nothing after
    assert waits == []
    assert handler.messages == []
    failed = raised.value.report.failed
    assert [o.attempts for o in failed] == [1, 0, 0, 0]
    assert all(o.error.startswith("not attempted") for o in failed[1:])


def test_implicit_tls_on_an_smtps_port(
    tmp_path: Path,
    smtp_server: Callable[..., tuple[Handler, int]],
    certificates: dict[str, Path],
) -> None:
    handler, port = smtp_server(ssl_context=server_tls(certificates))
    settings = make_settings(
        tmp_path, port, {"ssl": "true", "ca_file": f'"{certificates["cert"]}"'}
    )

    report = deliver(settings, ledger_of(settings), reports(tmp_path)[:1], now=NOW)

    assert [o.delivery.recipient for o in report.sent] == ["boss@example.com", "cfo@example.com"]
    assert len(handler.messages) == 2


def test_a_5xx_reply_fails_that_message_at_once(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler = Handler(data_replies=["554 5.7.1 message rejected as spam"])
    handler, port = smtp_server(handler)
    settings = make_settings(tmp_path, port)
    waits = Waits()

    with pytest.raises(DeliveryError) as raised:
        deliver(settings, ledger_of(settings), reports(tmp_path), sleep=waits)

    error = raised.value
    assert error.exit_code == ExitCode.DEPENDENCY
    assert waits == []
    assert handler.data_count == 4  # the refused one once, the three others
    [failed] = error.report.failed
    assert failed.attempts == 1
    assert "554 5.7.1 message rejected as spam" in failed.error
    assert len(error.report.sent) == 3
    assert len(handler.messages) == 3
    assert ledger_rows(settings)[failed.delivery.recipient]["status"] == "failed"


def test_a_4xx_reply_is_retried_and_delivered_exactly_once(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler = Handler(data_replies=["451 4.3.0 try again later"])
    handler, port = smtp_server(handler)
    settings = make_settings(tmp_path, port)
    waits = Waits()

    report = deliver(settings, ledger_of(settings), reports(tmp_path)[:1], sleep=waits)

    first = report.sent[0]
    assert (first.delivery.recipient, first.attempts) == ("boss@example.com", 2)
    assert [m["To"] for m in handler.received()] == ["boss@example.com", "cfo@example.com"]
    assert handler.data_count == 3
    # one wait: first_wait_seconds (2) plus up to 2 s of jitter
    assert len(waits) == 1
    assert 2.0 <= waits[0] <= 4.0
    assert ledger_rows(settings)["boss@example.com"]["attempts"] == 2


def test_a_server_closing_the_connection_is_reconnected(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    # 421: the server closes the channel; the next attempt opens a new connection
    handler = Handler(data_replies=["421 4.3.2 service shutting down"])
    handler, port = smtp_server(handler)
    settings = make_settings(tmp_path, port)
    waits = Waits()

    report = deliver(settings, ledger_of(settings), reports(tmp_path), sleep=waits)

    assert [o.attempts for o in report.sent] == [2, 1, 1, 1]
    assert len(waits) == 1
    assert handler.ehlo_count == 2  # a second session after the 421
    assert len(handler.messages) == 4


def test_retries_share_one_budget_across_messages(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    # real (short) waits: the budget is measured on the clock the waits spend
    handler = Handler(data_replies=["452 4.3.1 mailbox full"] * 100)
    handler, port = smtp_server(handler)
    settings = make_settings(tmp_path, port)
    policy = {"attempts": 10, "first_wait_seconds": 0.05, "max_wait_seconds": 0.2}
    settings = settings.model_copy(
        update={"retry": settings.retry.model_copy(update={**policy, "budget_seconds": 0.6})}
    )
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with pytest.raises(DeliveryError) as raised:
        deliver(settings, ledger_of(settings), reports(tmp_path), sleep=sleep)

    assert sum(waits) <= 0.6  # the waits of all four messages fit in one budget
    assert len(raised.value.report.failed) == 4  # each message still got its first attempt
    assert 4 <= handler.data_count < 4 * 10
    assert raised.value.exit_code == ExitCode.DEPENDENCY


def test_partial_recipient_refusal_is_reported_per_recipient(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler = Handler(refuse={"cfo@example.com": "550 5.1.1 no such user"})
    handler, port = smtp_server(handler)
    settings = make_settings(tmp_path, port)
    files = reports(tmp_path)
    waits = Waits()

    with pytest.raises(DeliveryError) as raised:
        deliver(settings, ledger_of(settings), files, now=NOW, sleep=waits)

    report = raised.value.report
    assert [o.delivery.recipient for o in report.failed] == ["cfo@example.com"]
    assert "cfo@example.com: 550 5.1.1 no such user" in report.failed[0].error
    assert "cfo@example.com" in str(raised.value)
    assert sorted(o.delivery.recipient for o in report.sent) == [
        "boss@example.com",
        "east.manager@example.com",
        "south.manager@example.com",
    ]
    assert waits == []
    assert {r: row["status"] for r, row in ledger_rows(settings).items()} == {
        "boss@example.com": "sent",
        "cfo@example.com": "failed",
        "east.manager@example.com": "sent",
        "south.manager@example.com": "sent",
    }

    # once the address works, a re-run sends only the missing message
    handler.refuse.clear()
    again = deliver(settings, ledger_of(settings), files, now=NOW)
    assert [o.delivery.recipient for o in again.sent] == ["cfo@example.com"]
    assert len(again.skipped_already_sent) == 3
    assert len(handler.messages) == 4


def test_a_silent_server_times_out_and_the_run_does_not_hang(tmp_path: Path) -> None:
    # a socket that listens but never answers: the kernel accepts, nobody speaks
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings = make_settings(tmp_path, silent.getsockname()[1], {"timeout_seconds": "2"})
        settings = settings.model_copy(
            update={"retry": settings.retry.model_copy(update={"attempts": 2})}
        )
        waits = Waits()
        started = time.monotonic()

        with pytest.raises(DeliveryTimeoutError) as raised:
            deliver(settings, ledger_of(settings), reports(tmp_path), sleep=waits)
        elapsed = time.monotonic() - started

    assert raised.value.exit_code == ExitCode.TIMEOUT
    assert "did not answer within 2 s" in str(raised.value)
    # two attempts of 2 s each (4 s), far from four messages' worth (16 s): the bound
    # separates the two even on a busy machine
    assert 3.9 <= elapsed < 12
    assert len(waits) == 1
    assert [o.attempts for o in raised.value.report.failed] == [2, 0, 0, 0]


def test_a_line_break_in_a_team_name_is_rejected_before_connecting(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler, port = smtp_server()
    injected = "East\\r\\nBcc: everyone@example.org"  # TOML escapes: a real CR LF
    settings = make_settings(
        tmp_path,
        port,
        teams=f'[[teams]]\nname = "{injected}"\nmanager_email = "east.manager@example.com"\n',
    )
    team = settings.teams[0].name
    assert "\r\n" in team
    file = pdf(tmp_path / "reports" / "diagnosis_east_2026-06-30_en.pdf", b"east", team)
    report = ReportFile("diagnosis", team, "2026-06-30", "en", file)

    with pytest.raises(DataError, match=r"team name .* line break") as raised:
        deliver(settings, ledger_of(settings), [report], now=NOW)

    assert raised.value.exit_code == ExitCode.DATA
    assert handler.ehlo_count == 0
    assert handler.messages == []


def test_an_interrupted_send_is_sent_again_with_the_same_message_id(
    tmp_path: Path,
    smtp_server: Callable[..., tuple[Handler, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, port = smtp_server()
    settings = make_settings(tmp_path, port)
    east = reports(tmp_path)[1]
    ledger = ledger_of(settings)
    ledger.ensure()
    delivery = Delivery(east, "east.manager@example.com", "manager")
    expected_id = build_message(settings, delivery, now=NOW)["Message-ID"]
    # what a run killed between "sending" and the server's reply leaves behind
    ledger.mark_sending(
        expected_id,
        {
            "recipient": delivery.recipient,
            "report_kind": "diagnosis",
            "team": EAST,
            "period": "2026-06-30",
            "language": "en",
            "report_path": str(east.pdf),
            "pdf_sha256": "0" * 64,
        },
        NOW.replace(tzinfo=None),
    )
    assert ledger.statuses([expected_id]) == {expected_id: SENDING}

    report = deliver(settings, ledger, [east], now=NOW)

    assert [o.message_id for o in report.sent] == [expected_id]
    assert [m["Message-ID"] for m in handler.received()] == [expected_id]
    assert "interrupted while sending" in caplog.text


def test_delivery_needs_email_enabled_and_a_password_for_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, 25)
    off = settings.model_copy(
        update={"email": settings.email.model_copy(update={"enabled": False})}
    )
    ledger = ledger_of(settings)
    with pytest.raises(ConfigError, match="enabled = true"):
        deliver(off, ledger, reports(tmp_path))

    monkeypatch.delenv("CRM_BATCH_SMTP_PASSWORD", raising=False)
    user = settings.model_copy(
        update={"email": settings.email.model_copy(update={"smtp_user": "u", "starttls": True})}
    )
    with pytest.raises(ConfigError, match="no password"):
        deliver(user, ledger, reports(tmp_path))

    missing_ca = settings.model_copy(
        update={"email": settings.email.model_copy(update={"ca_file": tmp_path / "none.pem"})}
    )
    with pytest.raises(ConfigError, match=r"email\.ca_file"):
        deliver(missing_ca, ledger, reports(tmp_path))


def test_message_id_ignores_the_case_of_the_recipient(tmp_path: Path) -> None:
    east = reports(tmp_path)[1]
    assert message_id(east, "East.Manager@Example.com", "x.example") == message_id(
        east, "east.manager@example.com", "x.example"
    )


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "duckdb",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_the_ledger_on_each_database(backend: str, db_url_factory: Callable[[str], URL]) -> None:
    engine = make_engine(db_url_factory(backend))
    try:
        ledger = SentLedger(engine)
        ledger.ensure()
        ledger.ensure()  # idempotent
        long_id = "<crm-batch." + "a" * 32 + "@" + "sub." * 60 + "example.com>"
        values = {
            "recipient": "south.manager@example.com",
            "report_kind": "quarterly",
            "team": SOUTH,
            "period": "2026Q3",
            "language": "zh-CN",
            "report_path": "/reports/quarterly_华南一部_2026Q3_zh-CN.pdf",
            "pdf_sha256": "f" * 64,
        }
        at = NOW.replace(tzinfo=None)
        ledger.mark_sending(long_id, values, at)
        ledger.mark_done(long_id, "failed", at, 3, "451 try later")
        ledger.mark_sending(long_id, values, at)  # the next run tries again
        ledger.mark_done(long_id, "sent", at, 1)

        assert ledger.statuses([long_id, "<unknown@x>"]) == {long_id: "sent"}
        with engine.connect() as conn:
            row = conn.execute(select(deliveries_table())).mappings().one()
        assert row["attempts"] == 4
        assert row["team"] == SOUTH
        assert row["error"] is None
        assert row["sent_at"] == at
    finally:
        engine.dispose()


# --- identity, resend, redirect, dry run, only_if_changed, scope check, summary -------------


def with_email(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"email": settings.email.model_copy(update=changes)})


def test_resend_sends_again_under_a_resend_message_id_and_keeps_one_ledger_row(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler, port = smtp_server()
    settings = make_settings(tmp_path, port)
    east = reports(tmp_path)[1]
    first = deliver(settings, ledger_of(settings), [east], now=NOW)
    [stable_id] = [o.message_id for o in first.sent]

    again = deliver(settings, ledger_of(settings), [east], now=NOW, resend=True)

    assert [o.delivery.recipient for o in again.sent] == ["east.manager@example.com"]
    ids = [m["Message-ID"] for m in handler.received()]
    assert ids[0] == stable_id
    assert ids[1] != stable_id
    assert ".resent-20260701024000@" in ids[1]
    rows = ledger_rows(settings)
    assert len(rows) == 1
    assert rows["east.manager@example.com"]["status"] == "sent"
    assert deliver(settings, ledger_of(settings), [east], now=NOW).sent == []


def test_redirect_to_sends_everything_to_one_address_and_keeps_the_real_ones_unsent(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler, port = smtp_server()
    settings = make_settings(tmp_path, port, email={"redirect_to": '"tester@example.com"'})
    files = reports(tmp_path)

    report = deliver(settings, ledger_of(settings), files, now=NOW)

    assert len(report.sent) == 4
    assert {rcpts[0] for rcpts, _ in handler.messages} == {"tester@example.com"}
    subjects = sorted(m["Subject"] for m in handler.received())
    assert any(s.startswith("[TEST for east.manager@example.com] ") for s in subjects)
    assert any(s.startswith("【测试,原收件人 boss@example.com】") for s in subjects)
    assert "redirected to tester@example.com" in report.sent[0].describe()
    # a re-run with the redirect sends nothing twice; without it the real messages go out
    assert deliver(settings, ledger_of(settings), files, now=NOW).sent == []
    real = deliver(with_email(settings, redirect_to=None), ledger_of(settings), files, now=NOW)
    assert sorted(o.delivery.recipient for o in real.sent) == [
        "boss@example.com",
        "cfo@example.com",
        "east.manager@example.com",
        "south.manager@example.com",
    ]
    assert handler.messages[-1][0] != ["tester@example.com"]


def test_dry_run_lists_who_would_get_what_and_sends_and_records_nothing(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler, port = smtp_server()
    settings = make_settings(tmp_path, port)
    files = reports(tmp_path)
    deliver(settings, ledger_of(settings), files[1:2], now=NOW)  # East's went out before

    report = deliver(settings, ledger_of(settings), files, now=NOW, dry_run=True)

    assert report.sent == []
    assert len(handler.messages) == 1
    assert sorted(report.plan_lines()) == [
        "would send diagnosis company 2026-06-30 zh-CN -> boss@example.com",
        "would send diagnosis company 2026-06-30 zh-CN -> cfo@example.com",
        f"would send diagnosis {SOUTH} 2026-06-30 zh-CN -> south.manager@example.com",
    ]
    assert report.summary().startswith("e-mail: dry run: 3 would be sent, 1 already sent")
    assert set(ledger_rows(settings)) == {"east.manager@example.com"}


def test_only_if_changed_skips_a_report_whose_data_equals_the_last_one_sent(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler, port = smtp_server()
    settings = make_settings(tmp_path, port, email={"only_if_changed": "true"})
    folder = tmp_path / "reports"

    def east(day: str, digest: str) -> ReportFile:
        path = pdf(folder / f"diagnosis_East_{day}_en.pdf", day.encode(), EAST)
        return ReportFile("diagnosis", EAST, day, "en", path, digest)

    first = deliver(settings, ledger_of(settings), [east("2026-06-29", "a" * 64)], now=NOW)
    same = deliver(settings, ledger_of(settings), [east("2026-06-30", "a" * 64)], now=NOW)
    changed = deliver(settings, ledger_of(settings), [east("2026-07-01", "b" * 64)], now=NOW)

    assert len(first.sent) == 1
    assert same.sent == []
    assert len(same.skipped_unchanged) == 1
    assert "1 unchanged since the last one (skipped)" in same.summary()
    assert len(changed.sent) == 1
    assert [m["Subject"][-10:] for m in handler.received()] == ["2026-06-29", "2026-07-01"]
    # off: the unchanged one goes out too
    off = with_email(settings, only_if_changed=False)
    assert len(deliver(off, ledger_of(settings), [east("2026-07-02", "b" * 64)]).sent) == 1


def test_a_file_recording_another_team_is_never_mailed_and_the_others_are(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    handler, port = smtp_server()
    settings = make_settings(tmp_path, port)
    files = reports(tmp_path)
    # South's file was overwritten by East's report (two teams that shared a file name)
    pdf(files[2].pdf, b"east", EAST)

    with pytest.raises(DataError, match=r"records 'team:East' but is about to be mailed as"):
        deliver(settings, ledger_of(settings), files, now=NOW)

    assert "south.manager@example.com" not in {m["To"] for m in handler.received()}
    assert {m["To"] for m in handler.received()} == {
        "boss@example.com",
        "cfo@example.com",
        "east.manager@example.com",
    }
    # a PDF that records nothing (not rendered by crm-batch) is refused the same way
    files[1].pdf.write_bytes(b"%PDF-1.7\n%%EOF\n")
    with pytest.raises(DataError, match=str(files[1].pdf.name)):
        deliver(settings, ledger_of(settings), files[1:2], now=NOW, resend=True)


def test_the_mail_carries_the_summary_as_plain_text_and_html_escaped(tmp_path: Path) -> None:
    from crm_batch.delivery import Headline, ReportSummary

    settings = make_settings(tmp_path, 25)
    summary = ReportSummary(
        (Headline("Revenue (12 months)", "¥1,234", "+¥56"), Headline("<b>Buyers</b>", "80")),
        ("Three A-tier customers are quiet & at risk.",),
        "2026-06-29",
    )
    east = dataclasses.replace(reports(tmp_path)[1], summary=summary)

    message = build_message(settings, Delivery(east, "east.manager@example.com", "x"), now=NOW)
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)

    plain = parsed.get_body(("plain",)).get_content()
    html_part = parsed.get_body(("html",)).get_content()
    assert "Headline figures (change vs 2026-06-29):" in plain
    assert "  Revenue (12 months): ¥1,234 (+¥56)" in plain
    assert "  - Three A-tier customers are quiet & at risk." in plain
    assert "&lt;b&gt;Buyers&lt;/b&gt;" in html_part
    assert "<b>Buyers</b>" not in html_part
    assert "quiet &amp; at risk" in html_part
    assert len(list(parsed.iter_attachments())) == 1


def test_resend_failed_sends_what_failed_once_the_server_takes_it(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    from crm_batch.delivery.resend import resend_failed

    handler, port = smtp_server(
        Handler(refuse={"east.manager@example.com": "550 5.1.1 mailbox unavailable"})
    )
    settings = make_settings(tmp_path, port)
    files = reports(tmp_path)
    with pytest.raises(DeliveryError):
        deliver(settings, ledger_of(settings), files, now=NOW)
    assert ledger_rows(settings)["east.manager@example.com"]["status"] == "failed"
    handler.refuse.clear()

    dry, _ = resend_failed(settings, ledger_of(settings), dry_run=True)
    report, dropped = resend_failed(settings, ledger_of(settings))

    assert dry.plan_lines() == [
        "would send diagnosis East 2026-06-30 en -> east.manager@example.com"
    ]
    assert [o.delivery.recipient for o in report.sent] == ["east.manager@example.com"]
    assert dropped == []
    assert ledger_rows(settings)["east.manager@example.com"]["status"] == "sent"
    assert resend_failed(settings, ledger_of(settings))[0].sent == []  # nothing failed now


def test_the_failure_notice_goes_to_ops_and_a_dead_server_never_raises(
    tmp_path: Path, smtp_server: Callable[..., tuple[Handler, int]]
) -> None:
    from crm_batch.delivery import notify_failure

    handler, port = smtp_server()
    settings = make_settings(tmp_path, port, email={"ops_recipients": '["ops@example.com"]'})
    details = {
        "kind": "nightly",
        "business_date": "2026-06-30",
        "run_id": "r-1",
        "stage": "workbooks",
        "error": "DependencyError: cannot connect to postgresql://crm:pw-123@db/sales",
        "exit_code": 5,
        "log_lines": ["INFO kpis: 300 customers", "ERROR workbooks failed"],
    }

    assert notify_failure(settings, now=NOW, **details)

    [notice] = handler.received()
    assert notice["To"] == "ops@example.com"
    assert (
        notice["Subject"] == "[Demo Trading Co.] crm-batch nightly 2026-06-30 failed at workbooks"
    )
    body = notice.get_content()
    assert "exit code: 5" in body
    assert "ERROR workbooks failed" in body
    assert "pw-123" not in body
    assert "crm:***@db" in body
    dead = make_settings(tmp_path, free_port(), email={"ops_recipients": '["ops@example.com"]'})
    assert not notify_failure(dead, now=NOW, **details)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_cli_options_are_checked_before_any_run(tmp_path: Path) -> None:
    from test_cli import run_cli

    (tmp_path / "crm_batch.toml").write_text('[paths]\ndata_dir = "var"\n', encoding="utf-8")

    nightly = run_cli("nightly", "--resend", cwd=tmp_path)
    quarterly = run_cli("quarterly", "--quarter", "2026Q1", "--dry-run", cwd=tmp_path)
    resend = run_cli("delivery", "resend", cwd=tmp_path)

    assert nightly.returncode == ExitCode.CONFIG
    assert "email.nightly_diagnosis" in nightly.stderr
    assert quarterly.returncode == ExitCode.CONFIG
    assert "--dry-run need e-mail turned on" in quarterly.stderr
    assert resend.returncode == 2
    assert "--failed" in resend.stderr
    assert not (tmp_path / "var").exists() or not list((tmp_path / "var").glob("*.duckdb"))


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_company_name_ending_in_a_full_stop_is_not_followed_by_another(language: str) -> None:
    """Issue 14: "Demo Trading Co.." in the mail footer."""
    from crm_batch.delivery.mail import text

    footer = text("footer", language, company="Demo Trading Co.", filename="r.pdf", size="1 MB")
    assert "Demo Trading Co." in footer
    assert "Co.." not in footer
    assert "Co.。" not in footer
