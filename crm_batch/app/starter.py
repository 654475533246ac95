"""``init``: a starting point for a new company, a settings file and the six mapping files.

The company edits exactly these: ``crm_batch.toml`` (where the data is, the teams, the
language) and ``mapping/*.sql`` (its own tables onto the canonical relations). The
mapping templates are the shipped ones (the demo schema, every canonical column named),
so ``check-source`` shows at once which columns the company's tables do not have yet.
Nothing is overwritten: if any file exists, nothing is written.
"""

from __future__ import annotations

import re
from pathlib import Path

from crm_batch import resources
from crm_batch.config import CONFIG_FILE_NAME
from crm_batch.errors import ConfigError
from crm_batch.files import atomic_output

#: The mapping files, required ones first (DESIGN.md's canonical data model).
MAPPING_FILES = (
    "customers.sql",
    "orders.sql",
    "leads.sql",
    "tickets.sql",
    "campaigns.sql",
    "touches.sql",
)
#: The folder of the mapping files in a company's settings folder.
MAPPING_FOLDER = "mapping"
#: The folder ``init`` suggests for exported files (``[source] folder``).
EXPORTS_FOLDER = "exports"

_STARTER = """\
# crm-batch settings for {company_comment}, written by `crm-batch init`.
# Relative paths are relative to the folder of this file. Precedence, highest first:
# command-line option > environment variable > this file > built-in default. Every key
# is checked: a misspelt key is an error naming it. The full list of keys with their
# defaults is README "Configuration".
#
# Next steps:
#   1. Say where the data is: [database] url, or [source] folder for exported files.
#   2. Edit mapping/*.sql so each returns the canonical columns from your tables
#      (customers and orders are required; delete leads/tickets/campaigns/touches.sql
#      if you have no such data: their KPIs then show "no data", never a false 0).
#   3. crm-batch check-source --config {config_name}   (fix what it reports)
#   4. crm-batch kpis --config {config_name}
#   5. crm-batch nightly --config {config_name}       (then schedule it: README "Deployment")
#
# Secrets never go here: the database password comes from $CRM_BATCH_DATABASE_PASSWORD
# (or the whole URL from $CRM_BATCH_DATABASE_URL, or database.password_file pointing
# outside this folder's version control).

[general]
company_name = {company}
timezone = "Asia/Shanghai"  # IANA name: business dates and periods are local to it
language = "zh-CN"          # zh-CN or en: company-wide reports and the teams' default
currency = "CNY"

[database]
# SQLAlchemy URL of the sales database, read-only access is enough. Examples:
#   url = "postgresql://crm_reader@db.example.com:5432/sales"
#   url = "mysql://crm_reader@db.example.com:3306/sales"
#   url = "sqlite:///sales.sqlite"
#   url = "duckdb:///sales.duckdb"

[source]
# Or read exported files instead of a database: every NAME.csv / NAME.xlsx / NAME.parquet
# in this folder is the table "NAME" in the mapping files (which are then DuckDB SQL).
# CSV may be UTF-8, GB18030/GBK or UTF-16 (README "Use a folder of exports").
# folder = "{exports}"

[state]
# Where crm-batch keeps what it writes (KPI snapshots, run log, follow-ups, deliveries).
# Not set: the source database when it is writable, else var/state.duckdb.
# url = "postgresql://crm_batch@db.example.com:5432/crm_state"

[paths]
source_dir = "{mapping}"          # the six mapping files
data_dir = "var"                  # state file, locks, caches, logs
workbooks_dir = "output/workbooks"
reports_dir = "output/reports"

# One [[teams]] block per team (the value of customers.team). Teams found in the data
# but not listed get the defaults: general.language, no e-mail.
# [[teams]]
# name = "华东一组"
# manager_email = "east.manager@example.com"
# language = "zh-CN"
"""


def starter_files(folder: Path) -> list[Path]:
    """The files :func:`write_starter` creates in ``folder``."""
    return [folder / CONFIG_FILE_NAME, *(folder / MAPPING_FOLDER / n for n in MAPPING_FILES)]


def write_starter(folder: Path, company: str) -> list[Path]:
    """Write the starter settings file and mapping templates into ``folder`` (created
    when missing); returns the files written. Raises :class:`ConfigError` naming every
    file that already exists, and then writes nothing."""
    if not company.strip():
        raise ConfigError("init: the company name is empty (--company)")
    targets = starter_files(folder)
    existing = [path for path in targets if path.exists()]
    if existing:
        raise ConfigError(
            "init: not overwriting "
            + ", ".join(str(path) for path in existing)
            + " (move them away or choose another folder)"
        )
    shipped = resources.SQL_DIR / "source"
    templates = {}
    for name in MAPPING_FILES:
        source = shipped / name
        try:
            templates[name] = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"init: cannot read the shipped mapping template {source}: {exc.strerror}"
            ) from None
    (folder / MAPPING_FOLDER).mkdir(parents=True, exist_ok=True)
    settings_text = _STARTER.format(
        company=_toml_string(company.strip()),
        company_comment=_comment_text(company.strip()),
        config_name=CONFIG_FILE_NAME,
        exports=EXPORTS_FOLDER,
        mapping=MAPPING_FOLDER,
    )
    written = []
    with atomic_output(targets[0]) as stream:
        stream.write(settings_text)
    written.append(targets[0])
    for name, path in zip(MAPPING_FILES, targets[1:], strict=True):
        with atomic_output(path) as stream:
            stream.write(templates[name])
        written.append(path)
    return written


def _toml_string(value: str) -> str:
    """``value`` as a TOML basic string (quotes, backslashes and control characters
    escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


def _comment_text(value: str) -> str:
    """``value`` safe inside a one-line comment (no line breaks)."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value)
