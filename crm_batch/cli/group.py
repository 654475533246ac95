"""The ``crm-batch`` command group: logging options and the process defaults."""

from __future__ import annotations

import click

from crm_batch import __version__
from crm_batch.logs import setup_logging
from crm_batch.runtime import prepare_process


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="crm-batch")
@click.option("-v", "--verbose", count=True, help="More detail in the log (-v: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors in the log.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="CRM_BATCH_LOG_FORMAT",
    show_default=True,
    help="Log lines for people, or JSON lines for a log shipper ($CRM_BATCH_LOG_FORMAT).",
)
def main(verbose: int, quiet: bool, log_format: str) -> None:
    """crm-batch: customer KPIs from your sales database into team workbooks and PDF reports.

    \b
    Start with `demo` (builds a demo database and shows what it holds), then point
    the suite at your own database with --db or $CRM_BATCH_DATABASE_URL.
    Exit codes: 0 ok, 1 internal error, 2 usage, 3 configuration, 4 data invalid,
    5 dependency unavailable, 6 already running, 7 timeout, 8 completed with problems
    (some team's output failed, the others were made; `status` says what to do).
    """
    prepare_process()  # before any command loads NumPy
    setup_logging(-1 if quiet else verbose, log_format)
