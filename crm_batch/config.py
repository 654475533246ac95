"""Settings: one frozen object built from CLI options, environment, file and defaults.

Precedence, highest first: CLI option > environment variable > ``crm_batch.toml`` >
built-in defaults. The file is TOML; every key is validated (unknown keys and wrong
types are rejected with a message naming the key, the file and the expected type).

Secrets never live in the file: the database password and the SMTP password come from
the environment (``CRM_BATCH_DATABASE_URL`` / ``CRM_BATCH_DATABASE_PASSWORD``,
``CRM_BATCH_SMTP_PASSWORD``) or from a ``*_file`` setting that points outside the repo.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from crm_batch import resources
from crm_batch.errors import ConfigError
from crm_batch.i18n import Language
from crm_batch.urls import safe_url

CONFIG_FILE_NAME = "crm_batch.toml"

#: Environment variables read by :func:`load_settings` (documented in the README).
ENV_CONFIG = "CRM_BATCH_CONFIG"
ENV_DATABASE_URL = "CRM_BATCH_DATABASE_URL"
ENV_DATABASE_PASSWORD = "CRM_BATCH_DATABASE_PASSWORD"
ENV_TIMEZONE = "CRM_BATCH_TIMEZONE"
ENV_WORKBOOKS_DIR = "CRM_BATCH_WORKBOOKS_DIR"
ENV_REPORTS_DIR = "CRM_BATCH_REPORTS_DIR"
ENV_DATA_DIR = "CRM_BATCH_DATA_DIR"
ENV_SQL_DIR = "CRM_BATCH_SQL_DIR"
ENV_SMTP_PASSWORD = "CRM_BATCH_SMTP_PASSWORD"

#: Paths and times are written as strings in TOML, so these two accept strings.
LaxPath = Annotated[Path, Strict(False)]
LaxTime = Annotated[time, Strict(False)]


class _Section(BaseModel):
    """Base for every settings section: strict types, no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DatabaseSettings(_Section):
    """Where the sales data lives and how long we wait for it."""

    url: str | None = None
    password_file: LaxPath | None = None
    connect_timeout_seconds: float = Field(10.0, gt=0)
    statement_timeout_seconds: float = Field(900.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            make_url(value)
        except (ArgumentError, ValueError) as exc:
            # never echo the value: it may contain a password
            raise ValueError("not a valid SQLAlchemy database URL") from exc
        return value


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

    @field_validator("dormant_days")
    @classmethod
    def _dormant_after_active(cls, value: int, info: Any) -> int:
        active = info.data.get("active_days", 90)
        if value <= active:
            raise ValueError(f"must be greater than active_days ({active})")
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

    @model_validator(mode="before")
    @classmethod
    def _ssl_replaces_starttls(cls, data: Any) -> Any:
        # ssl = true alone means implicit TLS; STARTTLS inside TLS makes no sense
        if isinstance(data, dict) and data.get("ssl") is True:
            if data.get("starttls") is True:
                raise ValueError("set either ssl (implicit TLS, port 465) or starttls, not both")
            data = {**data, "starttls": False}
        return data

    @field_validator("from_address")
    @classmethod
    def _from_address(cls, value: str | None) -> str | None:
        return None if value is None else check_email_address(value)

    @field_validator("management")
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


class Settings(BaseModel):
    """The resolved settings every command receives (immutable).

    ``database_url`` is a SQLAlchemy :class:`URL` (which renders with the password
    hidden by default); paths are absolute.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str  # where the file settings came from: a path or "defaults"
    database_url: URL
    connect_timeout_seconds: float
    statement_timeout_seconds: float
    timezone: str
    language: Language
    currency: str
    company_name: str
    data_dir: Path
    workbooks_dir: Path
    reports_dir: Path
    sql_dir: Path
    teams: tuple[TeamSettings, ...]
    thresholds: ThresholdSettings
    targets: dict[str, TargetSettings]
    schedule: ScheduleSettings
    retry: RetrySettings = Field(default_factory=RetrySettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    workbooks: WorkbookSettings = Field(default_factory=WorkbookSettings)
    email: EmailSettings

    @field_serializer("database_url")
    def _hide_password(self, url: URL) -> str:
        """Dumps (``model_dump``, JSON) show the URL as text without its password."""
        return safe_url(url)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (safe_url(value) if name == "database_url" else value)

    @property
    def tz(self) -> ZoneInfo:
        """The configured timezone as a :class:`ZoneInfo`."""
        return ZoneInfo(self.timezone)

    def team(self, name: str) -> TeamSettings:
        """The settings of team ``name``: its ``[[teams]]`` entry, else the defaults for
        a team found only in the data (the general language, no manager address)."""
        for entry in self.teams:
            if entry.name == name:
                return entry
        return TeamSettings(name=name, language=self.language)

    def language_of(self, team: str | None) -> Language:
        """The language of a team's workbook and reports; None (the company): the
        general language."""
        return self.language if team is None else self.team(team).language

    def smtp_password(self) -> str | None:
        """The SMTP password from the environment or the password file (never logged)."""
        if os.environ.get(ENV_SMTP_PASSWORD):
            return os.environ[ENV_SMTP_PASSWORD]
        if self.email.smtp_password_file is not None:
            return _read_secret_file(self.email.smtp_password_file, "email.smtp_password_file")
        return None


def find_config_file(
    explicit: str | os.PathLike[str] | None,
    cwd: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The config file to read: --config, else $CRM_BATCH_CONFIG, else ./crm_batch.toml.

    An explicitly named file that does not exist is an error; the implicit
    ``./crm_batch.toml`` is optional (built-in defaults apply without it).
    ``environ`` defaults to the process environment.
    """
    env = os.environ if environ is None else environ
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (given with --config)")
        return path
    env_value = env.get(ENV_CONFIG)
    if env_value:
        path = Path(env_value)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (given in ${ENV_CONFIG})")
        return path
    implicit = (cwd or Path.cwd()) / CONFIG_FILE_NAME
    return implicit if implicit.is_file() else None


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    database_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build :class:`Settings` from CLI options, environment, file and defaults."""
    env = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    path = find_config_file(config_file, cwd, environ=env)
    raw: dict[str, Any] = _read_toml(path) if path else {}
    label = str(path) if path else "defaults"
    try:
        file_settings = FileSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, label)) from None

    base_dir = path.parent.resolve() if path else cwd.resolve()
    paths = file_settings.paths

    def resolve(env_name: str, configured: Path) -> Path:
        # a path from the environment is relative to where the command runs,
        # a path from the file relative to the file's folder
        if env.get(env_name):
            value = Path(env[env_name])
            return value if value.is_absolute() else (cwd.resolve() / value)
        return configured if configured.is_absolute() else (base_dir / configured)

    data_dir = resolve(ENV_DATA_DIR, paths.data_dir)
    timezone = env.get(ENV_TIMEZONE) or file_settings.general.timezone
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"${ENV_TIMEZONE}: unknown IANA timezone {timezone!r}") from None

    url = _resolve_database_url(
        database_url, env, file_settings.database, label, data_dir, base_dir, cwd.resolve()
    )
    _check_unique_team_names(file_settings.teams, label)
    return Settings(
        source=label,
        database_url=url,
        connect_timeout_seconds=file_settings.database.connect_timeout_seconds,
        statement_timeout_seconds=file_settings.database.statement_timeout_seconds,
        timezone=timezone,
        language=file_settings.general.language,
        currency=file_settings.general.currency,
        company_name=file_settings.general.company_name,
        data_dir=data_dir,
        workbooks_dir=resolve(ENV_WORKBOOKS_DIR, paths.workbooks_dir),
        reports_dir=resolve(ENV_REPORTS_DIR, paths.reports_dir),
        sql_dir=_sql_dir(env, cwd, base_dir, paths.sql_dir),
        teams=tuple(file_settings.teams),
        thresholds=file_settings.thresholds,
        targets=file_settings.targets,
        schedule=file_settings.schedule,
        retry=file_settings.retry,
        reports=file_settings.reports,
        workbooks=file_settings.workbooks,
        email=file_settings.email,
    )


#: The queries shipped with crm-batch (located by :mod:`crm_batch.resources`).
SHIPPED_SQL_DIR = resources.SQL_DIR


def _sql_dir(env: Mapping[str, str], cwd: Path, base_dir: Path, configured: Path | None) -> Path:
    """$CRM_BATCH_SQL_DIR, else paths.sql_dir, else ./sql beside the file, else shipped sql/."""
    if env.get(ENV_SQL_DIR):
        value = Path(env[ENV_SQL_DIR])
        return value if value.is_absolute() else cwd.resolve() / value
    if configured is not None:
        return configured if configured.is_absolute() else base_dir / configured
    local = base_dir / "sql"
    return local if local.is_dir() else SHIPPED_SQL_DIR


def default_demo_url(data_dir: Path) -> URL:
    """The embedded demo database: a DuckDB file in the data folder."""
    return make_url(f"duckdb:///{(data_dir / 'demo.duckdb').as_posix()}")


def _resolve_database_url(
    cli_url: str | None,
    env: Mapping[str, str],
    section: DatabaseSettings,
    label: str,
    data_dir: Path,
    base_dir: Path,
    cwd: Path,
) -> URL:
    """Pick the URL by precedence and add the password from the environment or a file."""
    if section.url:
        # committed config must never hold a secret, even when something overrides it
        _refuse_password(make_url(section.url), f"{label}: database.url")
    if cli_url:
        origin, text = "--db", cli_url
    elif env.get(ENV_DATABASE_URL):
        origin, text = f"${ENV_DATABASE_URL}", env[ENV_DATABASE_URL]
    elif section.url:
        origin, text = f"{label}: database.url", section.url
    else:
        return default_demo_url(data_dir)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ConfigError(f"{origin}: not a valid SQLAlchemy database URL") from None
    url = _password_out_of_query(url)
    if url.password is None:
        if env.get(ENV_DATABASE_PASSWORD):
            url = url.set(password=env[ENV_DATABASE_PASSWORD])
        elif section.password_file is not None:
            secret_path = section.password_file
            if not secret_path.is_absolute():
                secret_path = base_dir / secret_path
            url = url.set(password=_read_secret_file(secret_path, "database.password_file"))
    # file-based embedded databases: a relative path in the file is relative to the
    # file's folder; one given with --db or in the environment to the working folder
    if url.get_backend_name() in {"duckdb", "sqlite"} and url.database not in (
        None,
        "",
        ":memory:",
    ):
        db_path = Path(url.database)
        if not db_path.is_absolute():
            anchor = base_dir if origin.endswith("database.url") else cwd
            url = url.set(database=str(anchor / db_path))
    return url


def _refuse_password(url: URL, origin: str) -> None:
    secret_keys = {"password", "passwd", "pwd", "sslpassword"}
    if url.password or any(key.lower() in secret_keys for key in url.query):
        raise ConfigError(
            f"{origin}: the URL holds a password; committed config must not. Put the password "
            f"in ${ENV_DATABASE_PASSWORD} or database.password_file, or the whole URL in "
            f"${ENV_DATABASE_URL}"
        )


def _password_out_of_query(url: URL) -> URL:
    """Move ``?password=`` into the URL's password slot, where every rendering hides it."""
    keys = [key for key in url.query if key.lower() in {"password", "passwd"}]
    if not keys:
        return url
    value = url.query[keys[0]]
    password = value[0] if isinstance(value, tuple) else value
    url = url.difference_update_query(keys)
    return url if url.password else url.set(password=password)


def _read_secret_file(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _check_unique_team_names(teams: list[TeamSettings], label: str) -> None:
    seen: set[str] = set()
    for team in teams:
        if team.name in seen:
            raise ConfigError(f"{label}: teams: the team name {team.name!r} appears twice")
        seen.add(team.name)


_TYPE_WORDS = {
    "int_type": "integer",
    "int_parsing": "integer",
    "float_type": "number",
    "float_parsing": "number",
    "string_type": "string",
    "bool_type": "boolean (true/false)",
    "time_type": "time of day (e.g. 02:30:00)",
    "time_parsing": "time of day (e.g. 02:30:00)",
    "list_type": "list",
    "dict_type": "table",
    "model_type": "table",
    "model_attributes_type": "table",
    "path_type": "path string",
    "literal_error": "one of the allowed values",
}


def _describe_validation_error(exc: ValidationError, label: str) -> str:
    """Turn pydantic's report into lines naming file, key and expected type."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        kind = error["type"]
        if kind == "extra_forbidden":
            lines.append(f"{label}: unknown key '{key}' (check the spelling; see the README)")
            continue
        expected = _TYPE_WORDS.get(kind)
        got = type(error.get("input")).__name__
        if expected:
            detail = f"expected {expected}, got {got}"
            if kind == "literal_error":
                detail = error["msg"].replace("Input should be", "expected")
        else:
            detail = error["msg"].replace("Value error, ", "")
        lines.append(f"{label}: {key}: {detail}")
    return "invalid settings:\n  " + "\n  ".join(lines)
