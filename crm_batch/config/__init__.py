"""Settings: the file's sections (:mod:`.sections`) resolved with the environment and
the CLI into one frozen :class:`Settings` (:mod:`.settings`).

Everything public is importable from here (``from crm_batch.config import Settings``).
"""

from crm_batch.config.sections import (
    DatabaseSettings,
    EmailSettings,
    FileSettings,
    GeneralSettings,
    PathSettings,
    ReportSettings,
    RetrySettings,
    ScheduleSettings,
    TargetSettings,
    TeamSettings,
    ThresholdSettings,
    WorkbookSettings,
    check_email_address,
)
from crm_batch.config.settings import (
    CONFIG_FILE_NAME,
    ENV_CONFIG,
    ENV_DATA_DIR,
    ENV_DATABASE_PASSWORD,
    ENV_DATABASE_URL,
    ENV_REPORTS_DIR,
    ENV_SMTP_PASSWORD,
    ENV_SQL_DIR,
    ENV_TIMEZONE,
    ENV_WORKBOOKS_DIR,
    SHIPPED_SQL_DIR,
    Settings,
    default_demo_url,
    find_config_file,
    load_settings,
)

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_CONFIG",
    "ENV_DATABASE_PASSWORD",
    "ENV_DATABASE_URL",
    "ENV_DATA_DIR",
    "ENV_REPORTS_DIR",
    "ENV_SMTP_PASSWORD",
    "ENV_SQL_DIR",
    "ENV_TIMEZONE",
    "ENV_WORKBOOKS_DIR",
    "SHIPPED_SQL_DIR",
    "DatabaseSettings",
    "EmailSettings",
    "FileSettings",
    "GeneralSettings",
    "PathSettings",
    "ReportSettings",
    "RetrySettings",
    "ScheduleSettings",
    "Settings",
    "TargetSettings",
    "TeamSettings",
    "ThresholdSettings",
    "WorkbookSettings",
    "check_email_address",
    "default_demo_url",
    "find_config_file",
    "load_settings",
]
