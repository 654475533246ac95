"""Settings: one frozen object built from CLI options, environment, file and defaults.

The file's sections and their validation are :mod:`crm_batch.config.sections`; this
module resolves them with the environment and the CLI into :class:`Settings`.

Precedence, highest first: CLI option > environment variable > ``crm_batch.toml`` >
built-in defaults. The file is TOML; every key is validated (unknown keys and wrong
types are rejected with a message naming the key, the file and the expected type).

Secrets never live in the file: the database passwords and the SMTP password come from
the environment (``CRM_BATCH_DATABASE_URL`` / ``CRM_BATCH_DATABASE_PASSWORD``,
``CRM_BATCH_STATE_URL`` / ``CRM_BATCH_STATE_PASSWORD``, ``CRM_BATCH_SMTP_PASSWORD``) or
from a ``*_file`` setting that points outside the repo.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from crm_batch import resources
from crm_batch.config.sections import (
    DatabaseSettings,
    EmailSettings,
    FileSettings,
    ReportSettings,
    RetrySettings,
    ScheduleSettings,
    SourceFileSettings,
    StateSettings,
    TargetSettings,
    TeamSettings,
    ThresholdSettings,
    WorkbookSettings,
)
from crm_batch.errors import ConfigError
from crm_batch.i18n import Language
from crm_batch.urls import safe_url

CONFIG_FILE_NAME = "crm_batch.toml"

#: Environment variables read by :func:`load_settings` (documented in the README).
ENV_CONFIG = "CRM_BATCH_CONFIG"
ENV_DATABASE_URL = "CRM_BATCH_DATABASE_URL"
ENV_DATABASE_PASSWORD = "CRM_BATCH_DATABASE_PASSWORD"
ENV_STATE_URL = "CRM_BATCH_STATE_URL"
ENV_STATE_PASSWORD = "CRM_BATCH_STATE_PASSWORD"
ENV_TIMEZONE = "CRM_BATCH_TIMEZONE"
ENV_WORKBOOKS_DIR = "CRM_BATCH_WORKBOOKS_DIR"
ENV_REPORTS_DIR = "CRM_BATCH_REPORTS_DIR"
ENV_DATA_DIR = "CRM_BATCH_DATA_DIR"
ENV_SQL_DIR = "CRM_BATCH_SQL_DIR"
ENV_SOURCE_DIR = "CRM_BATCH_SOURCE_DIR"
ENV_SMTP_PASSWORD = "CRM_BATCH_SMTP_PASSWORD"


class Settings(BaseModel):
    """The resolved settings every command receives (immutable).

    ``database_url`` (the source, only read) and ``state_url`` (where crm-batch writes,
    when configured) are SQLAlchemy :class:`URL` objects (which render with the password
    hidden by default); paths are absolute. Which database holds the state when
    ``state_url`` is None is :func:`crm_batch.app.engines.state_url`'s rule.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str  # where the file settings came from: a path or "defaults"
    database_url: URL
    # [state] url / $CRM_BATCH_STATE_URL with its password; None: the default rule
    state_url: URL | None = None
    # [database] read_only: the source must not be written (state goes elsewhere)
    source_read_only: bool = False
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
    source_dir: Path  # the six mapping files (crm_batch.source.mapping)
    teams: tuple[TeamSettings, ...]
    thresholds: ThresholdSettings
    targets: dict[str, TargetSettings]
    schedule: ScheduleSettings
    retry: RetrySettings = Field(default_factory=RetrySettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    workbooks: WorkbookSettings = Field(default_factory=WorkbookSettings)
    email: EmailSettings
    # [source] folder, absolute: the source is that folder of exports (CSV, Excel,
    # Parquet) instead of database_url; None when a database is the source
    source_folder: Path | None = None
    source_files: dict[str, SourceFileSettings] = Field(default_factory=dict)

    @property
    def source_is_folder(self) -> bool:
        """Whether the source is a folder of exports (``[source] folder``), read through
        a DuckDB cache of its files, rather than a database."""
        return self.source_folder is not None

    @field_serializer("database_url", "state_url")
    def _hide_password(self, url: URL | None) -> str | None:
        """Dumps (``model_dump``, JSON) show the URLs as text without their password."""
        return None if url is None else safe_url(url)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            hide = name in {"database_url", "state_url"} and value is not None
            yield name, (safe_url(value) if hide else value)

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
    state = _resolve_state_url(env, file_settings.state, label, base_dir, cwd.resolve())
    _check_unique_team_names(file_settings.teams, label)
    sql_dir = _sql_dir(env, cwd, base_dir, paths.sql_dir)
    source_folder = _source_folder(file_settings, label, base_dir, database_url, env)
    return Settings(
        source=label,
        database_url=url,
        state_url=state,
        source_read_only=file_settings.database.read_only,
        connect_timeout_seconds=file_settings.database.connect_timeout_seconds,
        statement_timeout_seconds=file_settings.database.statement_timeout_seconds,
        timezone=timezone,
        language=file_settings.general.language,
        currency=file_settings.general.currency,
        company_name=file_settings.general.company_name,
        data_dir=data_dir,
        workbooks_dir=resolve(ENV_WORKBOOKS_DIR, paths.workbooks_dir),
        reports_dir=resolve(ENV_REPORTS_DIR, paths.reports_dir),
        sql_dir=sql_dir,
        source_dir=_source_dir(env, cwd, base_dir, paths.source_dir, sql_dir),
        teams=tuple(file_settings.teams),
        thresholds=file_settings.thresholds,
        targets=file_settings.targets,
        schedule=file_settings.schedule,
        retry=file_settings.retry,
        reports=file_settings.reports,
        workbooks=file_settings.workbooks,
        email=file_settings.email,
        source_folder=source_folder,
        source_files=file_settings.source.files if source_folder else {},
    )


def _source_folder(
    file_settings: FileSettings,
    label: str,
    base_dir: Path,
    cli_url: str | None,
    env: Mapping[str, str],
) -> Path | None:
    """``[source] folder`` made absolute (relative to the file's folder), or None.

    A database URL on the command line or in the environment outranks the file, so it
    replaces the folder as the source; the file itself may name only one of the two.
    """
    folder = file_settings.source.folder
    if folder is None:
        if file_settings.source.files:
            raise ConfigError(f"{label}: source.files is set but source.folder is not")
        return None
    if file_settings.database.url:
        raise ConfigError(
            f"{label}: both database.url and source.folder are set; the source is either a "
            "database or a folder of exports: remove one of them"
        )
    if cli_url or env.get(ENV_DATABASE_URL):
        return None
    return folder if folder.is_absolute() else base_dir / folder


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


#: The mapping folder's name inside the sql/ folder (default of ``paths.source_dir``).
SOURCE_DIR_NAME = "source"


def _source_dir(
    env: Mapping[str, str], cwd: Path, base_dir: Path, configured: Path | None, sql_dir: Path
) -> Path:
    """$CRM_BATCH_SOURCE_DIR, else paths.source_dir, else source/ inside the sql folder."""
    if env.get(ENV_SOURCE_DIR):
        value = Path(env[ENV_SOURCE_DIR])
        return value if value.is_absolute() else cwd.resolve() / value
    if configured is not None:
        return configured if configured.is_absolute() else base_dir / configured
    return sql_dir / SOURCE_DIR_NAME


def default_demo_url(data_dir: Path) -> URL:
    """The embedded demo database: a DuckDB file in the data folder."""
    return make_url(f"duckdb:///{(data_dir / 'demo.duckdb').as_posix()}")


def default_state_url(data_dir: Path) -> URL:
    """The embedded state database (when the source may not be written): a DuckDB file
    in the data folder, created on first use."""
    return make_url(f"duckdb:///{(data_dir / 'state.duckdb').as_posix()}")


def _resolve_database_url(
    cli_url: str | None,
    env: Mapping[str, str],
    section: DatabaseSettings,
    label: str,
    data_dir: Path,
    base_dir: Path,
    cwd: Path,
) -> URL:
    """The source URL by precedence, with the password from the environment or a file."""
    secrets = _Secrets("database", ENV_DATABASE_URL, ENV_DATABASE_PASSWORD)
    if section.url:
        # committed config must never hold a secret, even when something overrides it
        secrets.refuse_password(make_url(section.url), f"{label}: database.url")
    if cli_url:
        origin, text = "--db", cli_url
    elif env.get(ENV_DATABASE_URL):
        origin, text = f"${ENV_DATABASE_URL}", env[ENV_DATABASE_URL]
    elif section.url:
        origin, text = f"{label}: database.url", section.url
    else:
        return default_demo_url(data_dir)
    in_file = origin.endswith("database.url")
    return secrets.complete(text, origin, in_file, env, section.password_file, base_dir, cwd)


def _resolve_state_url(
    env: Mapping[str, str], section: StateSettings, label: str, base_dir: Path, cwd: Path
) -> URL | None:
    """The configured state URL ($CRM_BATCH_STATE_URL, else ``state.url``) with its
    password, by the same rules as the source's; None when neither is set."""
    secrets = _Secrets("state", ENV_STATE_URL, ENV_STATE_PASSWORD)
    if section.url:
        secrets.refuse_password(make_url(section.url), f"{label}: state.url")
    if env.get(ENV_STATE_URL):
        origin, text, in_file = f"${ENV_STATE_URL}", env[ENV_STATE_URL], False
    elif section.url:
        origin, text, in_file = f"{label}: state.url", section.url, True
    else:
        return None
    return secrets.complete(text, origin, in_file, env, section.password_file, base_dir, cwd)


class _Secrets:
    """The password rules of one database setting (``database`` or ``state``): never in
    the file's URL; from ``$<url env>``, ``$<password env>`` or ``<section>.password_file``."""

    def __init__(self, section: str, url_env: str, password_env: str) -> None:
        self.section, self.url_env, self.password_env = section, url_env, password_env

    def refuse_password(self, url: URL, origin: str) -> None:
        """A :class:`ConfigError` when ``url`` (from the file) holds a password."""
        secret_keys = {"password", "passwd", "pwd", "sslpassword"}
        if url.password or any(key.lower() in secret_keys for key in url.query):
            raise ConfigError(
                f"{origin}: the URL holds a password; committed config must not. Put the "
                f"password in ${self.password_env} or {self.section}.password_file, or the "
                f"whole URL in ${self.url_env}"
            )

    def complete(
        self,
        text: str,
        origin: str,
        in_file: bool,
        env: Mapping[str, str],
        password_file: Path | None,
        base_dir: Path,
        cwd: Path,
    ) -> URL:
        """``text`` parsed, its password added, a relative database file made absolute."""
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            raise ConfigError(f"{origin}: not a valid SQLAlchemy database URL") from None
        url = _password_out_of_query(url)
        if url.password is None:
            if env.get(self.password_env):
                url = url.set(password=env[self.password_env])
            elif password_file is not None:
                secret_path = password_file
                if not secret_path.is_absolute():
                    secret_path = base_dir / secret_path
                setting = f"{self.section}.password_file"
                url = url.set(password=_read_secret_file(secret_path, setting))
        # file-based embedded databases: a relative path in the file is relative to the
        # file's folder; one given with --db or in the environment to the working folder
        if url.get_backend_name() in {"duckdb", "sqlite"} and url.database not in (
            None,
            "",
            ":memory:",
        ):
            db_path = Path(url.database)
            if not db_path.is_absolute() and not url.database.startswith("file:"):
                url = url.set(database=str((base_dir if in_file else cwd) / db_path))
        return url


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
