"""Commands that run jobs under the run lock: ``nightly``, ``harvest``, ``quarterly``,
``serve``."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import click

from crm_batch.cli.group import main
from crm_batch.cli.options import (
    common_options,
    default_as_of,
    handle_errors,
    parse_period_option,
)
from crm_batch.config import load_settings
from crm_batch.errors import ConfigError

log = logging.getLogger("crm_batch")


@main.command()
@common_options
@click.option(
    "--catch-up",
    is_flag=True,
    help="Run every business date `serve` would run now (missed nights included, as "
    "schedule.catch_up says), oldest first; for cron and systemd timers. The team "
    "workbooks and reports are rebuilt once, for the latest date.",
)
@click.option(
    "--outputs-to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write this date's team workbooks and reports into DIR/workbooks and DIR/reports "
    "instead of the configured folders, and mail nothing (to look at an old date).",
)
@click.option(
    "--resend",
    is_flag=True,
    help="Mail the diagnosis reports again even if the ledger records them as sent "
    "(needs email.nightly_diagnosis).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the e-mails the run would send and to whom; send none (the rest of the "
    "run is done as usual).",
)
@handle_errors
def nightly(
    config_file: str | None,
    database_url: str | None,
    as_of: date | None,
    catch_up: bool,
    outputs_to: Path | None,
    resend: bool,
    dry_run: bool,
) -> None:
    """Run the nightly job for the business date: extract, validate, KPIs and snapshots.

    \b
    One run at a time: while another run (cron, manual or serve) is in progress this
    one stops at once with exit code 6. Every run and stage is recorded in batch_runs
    (see `status`). Running a date again replaces that date's outputs and sends no
    e-mail twice (--resend: again on purpose; --dry-run: list the e-mails only). A date
    older than the latest successful nightly run (a backfill) computes KPIs and
    snapshots only and keeps the current workbooks and reports; --outputs-to rebuilds
    them elsewhere. One team's failure (its workbook or report, a team name that cannot
    be used) does not stop the others: the run completes with problems, listed with what
    to do in the output and in `status`.
    Exit codes: 0 ok, 3 configuration, 4 data invalid (or a report file records another
    team than its recipient's), 5 database or mail server unavailable, 6 already
    running, 7 timeout, 8 completed with problems.
    """
    from crm_batch.jobs.pipeline import run_catch_up, run_nightly

    if catch_up and (as_of is not None or outputs_to is not None):
        raise click.UsageError(
            "--catch-up picks the business dates itself and rebuilds the outputs of the "
            "latest; drop --as-of and --outputs-to"
        )
    settings = load_settings(config_file, database_url=database_url)
    if catch_up:
        from crm_batch.scheduler import due_business_dates

        dates = due_business_dates(settings)
        if not dates:
            click.echo("nightly: nothing to catch up (the latest business date ran)")
        # the first failure stops; problems do not stop the catch-up, they set exit 8
        results = run_catch_up(settings, dates, show=click.echo, resend=resend, dry_run=dry_run)
        for done in results:
            done.raise_for_problems()
        return
    result = run_nightly(
        settings,
        as_of or default_as_of(settings),
        outputs_to=outputs_to,
        resend=resend,
        dry_run=dry_run,
    )
    click.echo(result.summary())
    result.raise_for_problems()


@main.command()
@common_options
@handle_errors
def harvest(config_file: str | None, database_url: str | None, as_of: date | None) -> None:
    """Store the follow-ups staff typed in the team workbooks in the followups table.

    \b
    Reads every team workbook (*.xlsm with the crm_team name) in paths.workbooks_dir
    without changing it; backups, Excel owner files (~$...) and other workbooks are
    skipped. Valid Follow-ups rows not stored yet are inserted: running it twice stores
    nothing twice. Rows with a problem (an unknown outcome, a date that is not a date)
    are not stored; the next nightly run shows the problem in the workbook's
    "Save problem" column. Recorded in batch_runs as kind "harvest"; one run at a time.
    Exit codes: 0 ok, 3 configuration, 4 a workbook could not be read (the others were
    stored), 5 database unavailable, 6 already running.
    """
    from crm_batch.jobs.harvest import run_harvest

    if as_of is not None:
        raise click.UsageError("harvest reads the workbooks as they are now; drop --as-of")
    run_harvest(load_settings(config_file, database_url=database_url), show=click.echo)


@main.command()
@common_options
@click.option(
    "--quarter",
    metavar="QUARTER",
    callback=parse_period_option,
    default=None,
    help="The quarter to review, e.g. 2026Q3 (default: the last quarter that ended on or "
    "before the business date, i.e. the last finished quarter).",
)
@click.option(
    "--team",
    "team",
    metavar="TEAM",
    default=None,
    help="Only this team's review (default: the company-wide review and one per team).",
)
@click.option(
    "--lang",
    type=click.Choice(["zh-CN", "en"]),
    default=None,
    help="Language of every review (default: general.language for the company, the "
    "team's language for a team).",
)
@click.option(
    "--send",
    is_flag=True,
    help="E-mail the reviews: each team's to its manager_email, the company's to "
    "email.management (needs email.enabled; never sends the same review twice).",
)
@click.option(
    "--resend",
    is_flag=True,
    help="Like --send, and mail again the reviews the ledger records as sent.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the e-mails --send would send and to whom; send none.",
)
@handle_errors
def quarterly(
    config_file: str | None,
    database_url: str | None,
    as_of: date | None,
    quarter: Any,
    team: str | None,
    lang: str | None,
    send: bool,
    resend: bool,
    dry_run: bool,
) -> None:
    """Quarterly review (季度复盘报告) of a finished quarter, company-wide and per team.

    \b
    Every KPI against the previous quarter, the same quarter last year, the baseline
    and the target with attainment; tier migration, cohort retention, win-back,
    campaigns, big-customer screening, the team comparison and next quarter's actions.
    Earlier quarters come from kpi_snapshots (recomputed where a snapshot is missing).
    Writes quarterly_<scope>_<quarter>_<lang>.pdf and .html into paths.reports_dir.
    --send mails each team's review to its manager and the company's to the management
    list ([email]); a re-run sends nothing twice (--resend: again on purpose;
    --dry-run: list the messages, send none). One run at a time, recorded in
    batch_runs as kind "quarterly". Exit codes as for nightly.
    Examples:
      run_batch.py quarterly                         the last finished quarter
      run_batch.py quarterly --quarter 2026Q2 --team Shanghai --lang en
      run_batch.py quarterly --send
    """
    from crm_batch.jobs.pipeline import quarterly_stages, run_quarterly
    from crm_batch.periods import finished_quarter

    settings = load_settings(config_file, database_url=database_url)
    business_date = as_of or default_as_of(settings)
    try:
        chosen = finished_quarter(quarter, business_date)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if (send or resend or dry_run) and not settings.email.enabled:
        raise ConfigError(
            "--send/--resend/--dry-run need e-mail turned on: set email.enabled = true in [email]"
        )
    result = run_quarterly(
        settings,
        chosen,
        send=send,
        resend=resend,
        dry_run=dry_run,
        stages=quarterly_stages(teams=[team] if team else None, languages=[lang] if lang else None),
    )
    click.echo(result.summary())
    result.raise_for_problems()


@main.command()
@common_options
@handle_errors
def serve(config_file: str | None, database_url: str | None, as_of: date | None) -> None:
    """Run the nightly job every day at schedule.nightly_at, until stopped.

    \b
    Local time in general.timezone; missed business dates are caught up at start-up
    as schedule.catch_up says (all, latest, none). A failing run is logged and the
    loop goes on; a run in progress elsewhere is waited for. SIGTERM or Ctrl-C stops
    it after the run in progress. Business dates come from the clock: no --as-of.
    """
    import threading

    from crm_batch import progress
    from crm_batch.scheduler import serve as serve_loop
    from crm_batch.scheduler import stop_on_signals

    if as_of is not None:
        raise click.UsageError("serve picks the business dates from the clock; drop --as-of")
    settings = load_settings(config_file, database_url=database_url)
    progress.set_enabled(False)  # a long-running service logs lines, never bars
    stop = threading.Event()
    stop_on_signals(stop)
    serve_loop(settings, stop)
