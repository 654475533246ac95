"""The ``delivery`` command group: work on the e-mail sent-ledger."""

from __future__ import annotations

from datetime import date

import click

from crm_batch.cli.group import main
from crm_batch.cli.options import common_options, handle_errors
from crm_batch.config import load_settings


@main.group()
def delivery() -> None:
    """E-mail delivery: send again what failed (see README "E-mail delivery")."""


@delivery.command()
@common_options
@click.option(
    "--failed",
    is_flag=True,
    help="Send again every message the ledger records as failed (required: the only "
    "kind of resend; a report already sent is resent by `nightly`/`quarterly --resend`).",
)
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
@handle_errors
def resend(
    config_file: str | None,
    database_url: str | None,
    as_of: date | None,
    failed: bool,
    dry_run: bool,
) -> None:
    """Send again the e-mails whose delivery failed (server down, recipient refused).

    \b
    Each failed message of the deliveries table is planned again from the settings
    (the recipient must still be configured, the PDF still there and recording its
    team) and sent under its stable Message-ID; the ledger records the outcome.
    One run at a time, recorded in batch_runs as kind "delivery".
    Exit codes: 0 ok, 3 configuration, 4 a file records another team, 5 mail server
    or database unavailable, 6 already running, 7 timeout.
    """
    from crm_batch.jobs.deliveries import run_resend_failed

    if not failed:
        raise click.UsageError("say what to resend: --failed")
    if as_of is not None:
        raise click.UsageError("resend works on the ledger as it is; drop --as-of")
    settings = load_settings(config_file, database_url=database_url)
    click.echo(run_resend_failed(settings, dry_run=dry_run).summary())
