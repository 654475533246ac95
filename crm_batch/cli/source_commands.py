"""Bringing a company's own data: ``init`` writes the starting files, ``check-source``
says whether the mapped data is ready for a nightly run."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from crm_batch.cli.group import main
from crm_batch.cli.options import common_options, default_as_of, handle_errors
from crm_batch.config import load_settings
from crm_batch.errors import ExitCode


@main.command("init")
@click.argument("folder", type=click.Path(file_okay=False), default=".")
@click.option(
    "--company",
    metavar="NAME",
    default=None,
    help="Company name for the report covers (default: the folder's name).",
)
@handle_errors
def init(folder: str, company: str | None) -> None:
    """Write a starter crm_batch.toml and the six mapping files (mapping/*.sql) into
    FOLDER (default: here) for a new company. Existing files are never overwritten."""
    from crm_batch.app.starter import write_starter

    target = Path(folder).resolve()
    written = write_starter(target, company or target.name)
    for path in written:
        click.echo(f"wrote {path}")
    config = target / written[0].name
    click.echo(
        "next: say where your data is in the settings file, edit the mapping files, then "
        f"`crm-batch check-source --config {config}`"
    )


@main.command("check-source")
@common_options
@handle_errors
def check_source(config_file: str | None, database_url: str | None, as_of: date | None) -> None:
    """Check the company's data through its mapping files: per canonical table mapped or
    absent, rows, date range, each column's kind, and the data checks with sample rows
    and fixes. Exit 0 when a nightly run can go ahead (warnings allowed), 4 when not."""
    from crm_batch.app.source_check import check_source_report

    settings = load_settings(config_file, database_url=database_url)
    verdict = check_source_report(settings, as_of or default_as_of(settings))
    click.echo(verdict.render_text())
    if verdict.blocking:
        sys.exit(int(ExitCode.DATA))
