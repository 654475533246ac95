"""``crm-batch state copy``: carry the history over when the state database moves."""

from __future__ import annotations

import click

from crm_batch.cli.group import main
from crm_batch.cli.options import config_option, handle_errors
from crm_batch.config import load_settings


@main.group("state")
def state() -> None:
    """The state database: KPI snapshots, follow-ups, value models, run log, ledger."""


@state.command("copy")
@config_option
@click.option(
    "--from",
    "origin",
    metavar="URL",
    required=True,
    envvar="CRM_BATCH_STATE_COPY_FROM",
    help="The database the history is in now, e.g. the source database the state lived "
    "in before ($CRM_BATCH_STATE_COPY_FROM; prefer it for a URL with a password).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be copied; write nothing.")
@handle_errors
def copy(config_file: str | None, origin: str, dry_run: bool) -> None:
    """Copy the state tables from --from into the configured state database (see
    `status`). Rows the state database already holds are kept as they are; everything
    is copied in one transaction under the run lock, so running it twice is harmless."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from crm_batch.app.engines import open_state
    from crm_batch.app.state_copy import copy_state, iter_lines
    from crm_batch.errors import ConfigError

    settings = load_settings(config_file)
    try:
        origin_url = make_url(origin)
    except ArgumentError:
        raise ConfigError("state copy: --from is not a database URL") from None
    with open_state(settings) as target:
        results = copy_state(settings, origin_url, target, dry_run=dry_run)
    for line in iter_lines(results, dry_run=dry_run):
        click.echo(line)
