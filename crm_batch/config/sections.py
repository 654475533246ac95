"""The sections of ``crm_batch.toml``: every key, its type, default and validation.

Each section is a strict, frozen pydantic model: unknown keys and wrong types are
rejected (:func:`crm_batch.config.settings.load_settings` turns pydantic's report into
lines naming the file and the key). :class:`FileSettings` is the whole file.
"""

from __future__ import annotations

import codecs
import re
from datetime import time
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crm_batch.i18n import Language

#: Paths and times are written as strings in TOML, so these two accept strings.
LaxPath = Annotated[Path, Strict(False)]
LaxTime = Annotated[time, Strict(False)]


class _Section(BaseModel):
    """Base for every settings section: strict types, no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_url(value: str | None) -> str | None:
    """``value`` if it parses as a SQLAlchemy URL; the error never echoes it (it may
    contain a password)."""
    if value is None:
        return value
    try:
        make_url(value)
    except (ArgumentError, ValueError) as exc:
        raise ValueError("not a valid SQLAlchemy database URL") from exc
    return value


class DatabaseSettings(_Section):
    """Where the sales data lives (the source, only ever read) and how long we wait for it."""

    url: str | None = None
    password_file: LaxPath | None = None
    connect_timeout_seconds: float = Field(10.0, gt=0)
    statement_timeout_seconds: float = Field(900.0, gt=0)
    # the source must not be written (a replica, a warehouse user with SELECT only): the
    # state then goes to the embedded state.duckdb unless [state] url names a database
    read_only: bool = False

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: str | None) -> str | None:
        return _check_url(value)


class StateSettings(_Section):
    """Where crm-batch writes (snapshots, run log, follow-ups, deliveries, value models,
    locks). Unset: the source database when it is writable, else ``state.duckdb`` in
    ``paths.data_dir`` (resolved by :func:`crm_batch.app.engines.state_url`)."""

    url: str | None = None
    password_file: LaxPath | None = None

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: str | None) -> str | None:
        return _check_url(value)


class SourceFileSettings(_Section):
    """How to read one file of the exports folder: ``[source.files."NAME.csv"]``.

    Only files that need it get a block; every key has a default that fits most exports.
    """

    # CSV only: "auto" = a BOM (UTF-8, UTF-16 LE/BE), else UTF-8, else GB18030; or any
    # Python codec name ("gb18030", "gbk", "utf-16", "big5", "latin-1", ...)
    encoding: str = "auto"
    # CSV only: the one character between fields; default: the most frequent of
    # , TAB ; | in the header line
    delimiter: str | None = None
    # the line (CSV) or row (Excel) holding the column names, counted from 1; the lines
    # above it (a report title, an export date) are skipped
    header_row: int = Field(1, ge=1, le=1000)
    # Excel only: the sheet to read (default: the first)
    sheet: str | None = Field(None, min_length=1)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (e.g. 'auto', 'utf-8', 'gb18030', 'utf-16')"
            ) from None

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in '"\r\n'):
            raise ValueError(f"{value!r}: one character other than a quote or a line break")
        return value


class SourceSettings(_Section):
    """A folder of exports as the source instead of a database (``[source]``)."""

    # relative to the settings file's folder; absolute allowed
    folder: LaxPath | None = None
    # per-file reading options, keyed by the file's name in the folder
    files: dict[str, SourceFileSettings] = Field(default_factory=dict)


class GeneralSettings(_Section):
    """Company-wide conventions."""

    timezone: str = "Asia/Shanghai"
    language: Language = "zh-CN"
    currency: str = "CNY"
    company_name: str = "Demo Trading Co."

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. 'Asia/Shanghai')") from exc
        return value


class PathSettings(_Section):
    """Folders; relative paths are resolved against the config file's folder."""

    data_dir: LaxPath = Path("var")
    workbooks_dir: LaxPath = Path("output/workbooks")
    reports_dir: LaxPath = Path("output/reports")
    sql_dir: LaxPath | None = None  # default: ./sql next to the file, else the shipped sql/
    source_dir: LaxPath | None = None  # the six mapping files; default: source/ in sql_dir


class TeamSettings(_Section):
    """One sales/service team: gets its own workbook and diagnosis report."""

    name: str = Field(min_length=1)
    manager_email: str | None = None
    language: Language = "zh-CN"

    @field_validator("manager_email")
    @classmethod
    def _manager_address(cls, value: str | None) -> str | None:
        return None if value is None else check_email_address(value)


class ThresholdSettings(_Section):
    """Every threshold of the KPI definitions (../shared/DESIGN.md); all are settings."""

    # tiers A/B/C
    tier_a_revenue_12m: float = Field(100_000.0, ge=0)
    tier_a_active_quarters: int = Field(3, ge=1, le=4)
    tier_b_revenue_12m: float = Field(20_000.0, ge=0)
    tier_b_orders_12m: int = Field(4, ge=1)
    # value tiers: shares of buyers ranked by 12-month revenue
    diamond_share: float = Field(0.20, gt=0, lt=1)
    silver_share: float = Field(0.30, gt=0, lt=1)
    # lifecycle (days since first / last paid order)
    new_customer_days: int = Field(90, ge=1)
    active_days: int = Field(90, ge=1)
    dormant_days: int = Field(180, ge=1)
    # RFM and rolling windows
    rfm_window_days: int = Field(365, ge=1)
    repeat_window_days: int = Field(90, ge=1)
    # churn warning
    churn_quiet_months: int = Field(3, ge=1)
    churn_lookback_months: int = Field(12, ge=1)
    complaint_open_hours: float = Field(24.0, gt=0)
    # conversion and campaigns
    lead_conversion_days: int = Field(90, ge=1)
    campaign_attribution_days: int = Field(7, ge=1)
    opt_out_rate_max: float = Field(0.03, ge=0, le=1)
    # referral
    advocate_min_referrals: int = Field(2, ge=1)
    # Pareto
    pareto_top_share: float = Field(0.20, gt=0, lt=1)
    # care calendar
    care_lookahead_days: int = Field(7, ge=1)
    care_lead_days: int = Field(2, ge=0)
    # service
    complaint_resolution_hours: float = Field(24.0, gt=0)
    # predicted customer value: a 12-month buyer below this P(alive) is likely lost
    likely_lost_p_alive: float = Field(0.5, gt=0, lt=1)

    @field_validator("dormant_days")
    @classmethod
    def _dormant_after_active(cls, value: int, info: Any) -> int:
        active = info.data.get("active_days", 90)
        if value <= active:
            raise ValueError(f"must be greater than active_days ({active})")
        return value

    @field_validator("silver_share")
    @classmethod
    def _tiers_within_buyers(cls, value: float, info: Any) -> float:
        diamond = info.data.get("diamond_share", 0.20)
        if diamond + value > 1:
            raise ValueError(
                f"diamond_share ({diamond}) + silver_share ({value}) is more than all buyers "
                "(must be at most 1)"
            )
        return value


class TargetSettings(_Section):
    """A KPI target: a relative change against a baseline period, or an absolute bound."""

    change: float | None = None  # +0.35 = 35 % better than the baseline
    max: float | None = None  # absolute upper bound (e.g. opt-out rate <= 0.03)
    min: float | None = None  # absolute lower bound
    baseline_period: str | None = None  # e.g. "2025Q3"; default: same period a year earlier


def _default_targets() -> dict[str, TargetSettings]:
    """Targets from the seeds' plans (conversion +40 %, repurchase +35 %, ...)."""
    return {
        "lead_conversion_rate": TargetSettings(change=0.40),
        "repurchase_rate": TargetSettings(change=0.35),
        "satisfaction_mean": TargetSettings(change=0.50),
        "campaign_roi": TargetSettings(change=0.50),
        "opt_out_rate": TargetSettings(max=0.03),
    }


class ScheduleSettings(_Section):
    """When ``serve`` runs the jobs (local time in ``general.timezone``)."""

    nightly_at: LaxTime = time(2, 30)
    quarterly_at: LaxTime = time(6, 0)
    catch_up: Literal["all", "latest", "none"] = "all"
    max_catch_up_days: int = Field(31, ge=0)


class ReportSettings(_Section):
    """PDF rendering."""

    # WeasyPrint has no timeout of its own: each PDF renders in a worker process that is
    # stopped after this long, so a pathological report cannot hang the night
    render_timeout_seconds: float = Field(300.0, gt=0)
    # the nightly run renders the diagnosis report of the company and of every team
    nightly_diagnosis: bool = True
    # languages to render every report in; empty = each report in its scope's language
    # (a team's `language`, the company's `general.language`)
    languages: list[Language] = Field(default_factory=list)
    # the nightly run also renders a call sheet per account owner of every team (its
    # customers to call, care calendar and follow-ups due; crm_batch.reports.callsheets),
    # in the team's language. Off by default: it is one more PDF per sales rep per night
    # (a render each), and each sheet lists customers' phone numbers, which a company
    # should choose to put in its reports folder
    per_owner: bool = False
    # the nightly diagnosis reports and call sheets of the last keep_days business dates
    # are kept in paths.reports_dir, older ones removed after each nightly run (0: keep
    # all); quarterly reviews are always kept (crm_batch.reports.retention)
    keep_days: int = Field(90, ge=0, le=36500)


class WorkbookSettings(_Section):
    """Team workbooks (paths.workbooks_dir)."""

    # dated copies of each team's previous workbook kept in <workbooks_dir>/backup/
    keep_backups: int = Field(7, ge=1, le=1000)


class RetrySettings(_Section):
    """Retries of transient failures (a database restarting, a dropped connection, an SMTP
    4xx reply): capped exponential backoff with jitter, inside a time budget. Permanent
    failures (bad credentials, a rejected query, bad data, a timeout) are never retried."""

    attempts: int = Field(4, ge=1, le=20)
    first_wait_seconds: float = Field(5.0, ge=0)
    max_wait_seconds: float = Field(120.0, ge=0)
    budget_seconds: float = Field(600.0, ge=0)


class EmailSettings(_Section):
    """SMTP delivery of PDF reports; addresses come only from here, never from data."""

    enabled: bool = False
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password_file: LaxPath | None = None
    starttls: bool = True
    # implicit TLS from the first byte (SMTPS, usually port 465) instead of STARTTLS
    ssl: bool = False
    # PEM file of a private CA that signed the server's certificate (system CAs otherwise)
    ca_file: LaxPath | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    from_address: str | None = None
    management: list[str] = Field(default_factory=list)
    # also mail the nightly diagnosis reports (quarterly reviews are mailed by `serve`
    # and by `quarterly --send`); off by default: a daily PDF is a lot of mail
    nightly_diagnosis: bool = False
    # every message goes to this one address instead (subject marked with the real
    # recipient); for trying the set-up. Recorded apart in the ledger, so turning it off
    # later still sends the real messages
    redirect_to: str | None = None
    # skip a report whose data equals that of the last one sent to the same recipient
    only_if_changed: bool = False
    # receive one message when a run fails (stage, error, last log lines)
    ops_recipients: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _ssl_replaces_starttls(cls, data: Any) -> Any:
        # ssl = true alone means implicit TLS; STARTTLS inside TLS makes no sense
        if isinstance(data, dict) and data.get("ssl") is True:
            if data.get("starttls") is True:
                raise ValueError("set either ssl (implicit TLS, port 465) or starttls, not both")
            data = {**data, "starttls": False}
        return data

    @field_validator("from_address", "redirect_to")
    @classmethod
    def _from_address(cls, value: str | None) -> str | None:
        return None if value is None else check_email_address(value)

    @field_validator("management", "ops_recipients")
    @classmethod
    def _management_addresses(cls, value: list[str]) -> list[str]:
        return [check_email_address(address) for address in value]

    @field_validator("smtp_host")
    @classmethod
    def _host_name(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.fullmatch(value):
            raise ValueError(f"{value!r} is not a host name or IP address")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> EmailSettings:
        if self.enabled and (self.smtp_host is None or self.from_address is None):
            raise ValueError("enabled = true needs smtp_host and from_address")
        if self.smtp_user is not None and not (self.starttls or self.ssl):
            raise ValueError(
                "smtp_user is set but neither starttls nor ssl is on: the password would "
                "cross the network in clear text"
            )
        return self


#: An e-mail address as crm-batch accepts it: a plain ASCII ``local@domain`` (no display
#: name, no comments, no quoting), so it is safe in any header and any SMTP command.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")


def check_email_address(value: str) -> str:
    """``value`` if it is a plain ``local@domain`` address, else ValueError saying why."""
    local, at, domain = value.rpartition("@")
    if (
        not at
        or len(value) > 254
        or parseaddr(value) != ("", value)
        or not _LOCAL_PART.fullmatch(local)
        or not _DOMAIN.fullmatch(domain)
    ):
        raise ValueError(
            f"{value!r} is not a plain e-mail address (expected name@example.com: ASCII, "
            "no display name, spaces or line breaks)"
        )
    return value


class FileSettings(_Section):
    """The whole file, section by section."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    general: GeneralSettings = Field(default_factory=GeneralSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    teams: list[TeamSettings] = Field(default_factory=list)
    thresholds: ThresholdSettings = Field(default_factory=ThresholdSettings)
    targets: dict[str, TargetSettings] = Field(default_factory=_default_targets)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    workbooks: WorkbookSettings = Field(default_factory=WorkbookSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
