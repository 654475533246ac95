"""What every command shares: the common options, the business date default and the
mapping of expected failures to a one-line message and an exit code."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

import click

from crm_batch.config import Settings
from crm_batch.errors import CrmBatchError, ExitCode
from crm_batch.logs import json_lines, mask_secrets

log = logging.getLogger("crm_batch")


def parse_date_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> date | None:
    """Click callback: ``--as-of`` as a date."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD") from None


#: ``--config FILE``: every command that reads the settings takes it.
config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: $CRM_BATCH_CONFIG, else ./crm_batch.toml, else "
    "built-in defaults).",
)


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config, --db and --as-of to a command."""
    options = [
        config_option,
        click.option(
            "--db",
            "database_url",
            metavar="URL",
            default=None,
            help="Database URL, overriding $CRM_BATCH_DATABASE_URL and the file, e.g. "
            "postgresql://user@host/db. Prefer the environment for passwords.",
        ),
        click.option(
            "--as-of",
            "as_of",
            metavar="YYYY-MM-DD",
            callback=parse_date_option,
            default=None,
            help="Business date T (default: yesterday in the configured timezone).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Map expected failures to a one-line message and their exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CrmBatchError as exc:
            if json_lines():  # a log shipper reads stderr: keep every line JSON
                log.error("crm-batch: error: %s (exit %d)", exc, int(exc.exit_code))
            else:
                click.echo(f"crm-batch: error: {mask_secrets(str(exc))}", err=True)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("crm-batch: interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            log.exception("unexpected error")
            click.echo(
                f"crm-batch: internal error: {type(exc).__name__}: {mask_secrets(str(exc))} "
                "(traceback above; please report it)",
                err=True,
            )
            sys.exit(int(ExitCode.INTERNAL))

    return wrapper


def default_as_of(settings: Settings) -> date:
    """The default business date (:func:`crm_batch.app.dates.default_business_date`)."""
    from crm_batch.app.dates import default_business_date

    return default_business_date(settings)


def parse_period_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """Click callback: ``--period`` / ``--quarter`` as a :class:`~crm_batch.periods.Period`."""
    if value is None:
        return None
    from crm_batch.periods import parse_period

    try:
        return parse_period(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
