"""The command line: ``crm-batch`` / ``python run_batch.py``.

Each command builds :class:`~crm_batch.config.Settings` from its common options
(``--config``, ``--db``, ``--as-of``), calls library code and turns a
:class:`~crm_batch.errors.CrmBatchError` into a one-line reason on stderr and the
error's documented exit code. Library modules never print; this module does.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from crm_batch import __version__
from crm_batch.config import Settings, load_settings
from crm_batch.errors import ConfigError, CrmBatchError, ExitCode
from crm_batch.logs import json_lines, mask_secrets, setup_logging
from crm_batch.runtime import prepare_process

log = logging.getLogger("crm_batch")


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD") from None


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config, --db and --as-of to a command."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            default=None,
            help="Settings file (default: $CRM_BATCH_CONFIG, else ./crm_batch.toml, else "
            "built-in defaults).",
        ),
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
            callback=_parse_date,
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
    5 dependency unavailable, 6 already running, 7 timeout.
    """
    prepare_process()  # before any command loads NumPy
    setup_logging(-1 if quiet else verbose, log_format)


@main.command()
@common_options
@click.option(
    "--customers",
    type=click.IntRange(min=10),
    default=20_000,
    show_default=True,
    help="Number of customers to generate.",
)
@click.option(
    "--orders",
    type=click.IntRange(min=10),
    default=200_000,
    show_default=True,
    help="Number of order rows (paid, refunded, cancelled) to generate.",
)
@click.option(
    "--seed",
    type=int,
    default=42,
    show_default=True,
    help="Random seed: the same seed and date give the same database.",
)
@click.option(
    "--years",
    type=click.IntRange(1, 10),
    default=3,
    show_default=True,
    help="Years of history ending at the business date.",
)
@click.option(
    "--id-type",
    type=click.Choice(["int", "text"]),
    default="int",
    show_default=True,
    help="Integer keys, or text keys such as C0000123 (both are supported).",
)
@click.option(
    "--replace", is_flag=True, help="Overwrite tables in a database that the demo did not create."
)
@click.option(
    "--history-quarters",
    type=click.IntRange(0, 40),
    default=8,
    show_default=True,
    help="Also store KPI snapshots for the ends of this many past quarters (trends for the "
    "quarterly reports).",
)
@click.option(
    "--database-only",
    is_flag=True,
    help="Only build and load the demo database: no snapshots, workbooks or reports.",
)
@handle_errors
def demo(
    config_file: str | None,
    database_url: str | None,
    as_of: date | None,
    customers: int,
    orders: int,
    seed: int,
    years: int,
    id_type: str,
    replace: bool,
    history_quarters: int,
    database_only: bool,
) -> None:
    """Build the demo database, compute its KPIs and print what it holds.

    \b
    Generates a realistic synthetic company (8 teams, customers, leads, orders with
    seasonality, refunds, referrals, complaints, campaigns) ending at the business
    date, loads it into the configured database (default: a DuckDB file in the data
    folder; --db loads it into PostgreSQL, MariaDB/MySQL or SQLite instead), and
    prints customers, orders and revenue by team and year. Then stores the KPI
    snapshots of the past quarter ends (history for trends and comparisons), runs the
    nightly job of the business date (KPIs, team workbooks, diagnosis reports) and the
    quarterly reviews of the last finished quarter, both languages, no e-mail; prints
    the company's KPIs and where the workbooks and reports are. --database-only
    stops after loading the database.
    """
    from crm_batch.app.demo import (
        build_demo_database,
        demo_history,
        demo_settings,
        demo_summary,
    )
    from crm_batch.jobs.demo import demo_kpis, demo_runs

    settings = load_settings(config_file, database_url=database_url)
    business_date = as_of or default_as_of(settings)
    started = time.perf_counter()
    counts = build_demo_database(
        settings,
        end_date=business_date,
        customers=customers,
        orders=orders,
        seed=seed,
        years=years,
        id_type=id_type,
        replace=replace,
        progress=sys.stderr.isatty(),
    )
    log.info(
        "demo database ready in %.1fs: %s",
        time.perf_counter() - started,
        ", ".join(f"{table} {rows:,}" for table, rows in counts.items()),
    )
    click.echo(demo_summary(settings, business_date))
    if database_only:
        return
    demo_history(settings, business_date, history_quarters)
    runs = demo_runs(demo_settings(settings), business_date)
    click.echo("")
    click.echo(demo_kpis(settings, business_date))
    click.echo("")
    for result in runs:
        click.echo(result.summary())
    click.echo("")
    click.echo(f"Team workbooks: {settings.workbooks_dir}")
    click.echo(f"PDF reports:    {settings.reports_dir}")


@main.command()
@common_options
@click.option(
    "--runs",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many recent runs to list.",
)
@handle_errors
def status(
    config_file: str | None, database_url: str | None, as_of: date | None, runs: int
) -> None:
    """Show the settings in use, the database, what it holds and the last runs."""
    from crm_batch.app.status import status_report

    settings = load_settings(config_file, database_url=database_url)
    report, healthy = status_report(settings, as_of or default_as_of(settings), runs=runs)
    click.echo(report)
    if not healthy:
        sys.exit(int(ExitCode.DEPENDENCY))


def _parse_period(_ctx: click.Context, _param: click.Parameter, value: str | None):
    if value is None:
        return None
    from crm_batch.periods import parse_period

    try:
        return parse_period(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@common_options
@click.option(
    "--period",
    metavar="PERIOD",
    callback=_parse_period,
    default=None,
    help="2026Q3, 2026-07 or 2026 (default: the quarter of the business date). "
    "Measured up to the business date.",
)
@click.option(
    "--team",
    "teams",
    metavar="TEAM",
    multiple=True,
    help="Only this team (repeatable). Default: the whole company.",
)
@click.option("--by-team", is_flag=True, help="The whole company and every team side by side.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people; json (stable, keys = KPI names) or csv for tools.",
)
@click.option(
    "--lang",
    type=click.Choice(["zh-CN", "en"]),
    default=None,
    help="Language of the table (default: general.language).",
)
@click.option(
    "--customers-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the per-customer table (facts, RFM, tiers, segment, lifecycle, "
    "churn warning, next action) to this CSV file.",
)
@click.option(
    "--snapshot",
    is_flag=True,
    help="Store the quarter-to-date KPIs of the business date for the company and "
    "every team in kpi_snapshots (replacing that date's rows).",
)
@click.option(
    "--targets",
    "with_targets",
    is_flag=True,
    help="Also show actual, baseline, target and attainment of each targeted KPI.",
)
@handle_errors
def kpis(
    config_file: str | None,
    database_url: str | None,
    as_of: date | None,
    period: Any,
    teams: tuple[str, ...],
    by_team: bool,
    output_format: str,
    lang: str | None,
    customers_out: Path | None,
    snapshot: bool,
    with_targets: bool,
) -> None:
    """Compute and print the KPI set for a period as of the business date.

    \b
    Examples:
      run_batch.py kpis                              this quarter to date, whole company
      run_batch.py kpis --period 2026Q3 --by-team    a past quarter, every team
      run_batch.py kpis --team Shanghai --format json
      run_batch.py kpis --customers-out customers.csv
      run_batch.py kpis --period 2026Q3 --targets     against the [targets] settings
    """
    from crm_batch.app.kpis import compute
    from crm_batch.exports.kpis import (
        as_csv,
        as_json,
        as_table,
        targets_as_text,
        write_customers_csv,
    )

    settings = load_settings(config_file, database_url=database_url)
    business_date = as_of or default_as_of(settings)
    started = time.perf_counter()
    result = compute(
        settings,
        business_date,
        period,
        teams=teams,
        all_teams=by_team,
        snapshot=snapshot,
        with_targets=with_targets,
    )
    run, goals = result.run, result.targets
    log.info(
        "kpis %s as of %s: %d scope(s) in %.1fs",
        run.period.label,
        business_date.isoformat(),
        len(run.reports),
        time.perf_counter() - started,
    )
    language = lang or settings.language
    if customers_out is not None:
        scope = teams[0] if len(teams) == 1 else None
        count = write_customers_csv(run.reports[scope], customers_out, language)
        log.info("wrote %d customers to %s", count, customers_out)
    if output_format == "json":
        click.echo(as_json(run, goals))
    elif output_format == "csv":
        click.echo(as_csv(run), nl=False)
    else:
        click.echo(as_table(run, language, settings.currency))
        if goals is not None:
            click.echo("")
            click.echo(targets_as_text(goals, language, settings.currency))


@main.command()
@common_options
@click.option(
    "--catch-up",
    is_flag=True,
    help="Run every business date `serve` would run now (missed nights included, as "
    "schedule.catch_up says), oldest first; for cron and systemd timers.",
)
@handle_errors
def nightly(
    config_file: str | None, database_url: str | None, as_of: date | None, catch_up: bool
) -> None:
    """Run the nightly job for the business date: extract, validate, KPIs and snapshots.

    \b
    One run at a time: while another run (cron, manual or serve) is in progress this
    one stops at once with exit code 6. Every run and stage is recorded in batch_runs
    (see `status`). Running a date again replaces that date's outputs.
    Exit codes: 0 ok, 3 configuration, 4 data invalid, 5 database unavailable,
    6 already running, 7 timeout.
    """
    from crm_batch.jobs.pipeline import run_nightly

    if catch_up and as_of is not None:
        raise click.UsageError("--catch-up picks the business dates itself; drop --as-of")
    settings = load_settings(config_file, database_url=database_url)
    if catch_up:
        from crm_batch.scheduler import due_business_dates

        dates = due_business_dates(settings)
        if not dates:
            click.echo("nightly: nothing to catch up (the latest business date ran)")
        for day in dates:  # the first failure stops: its exit code is the command's
            click.echo(run_nightly(settings, day).summary())
        return
    result = run_nightly(settings, as_of or default_as_of(settings))
    click.echo(result.summary())


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
    from crm_batch.app.runlog import local_now
    from crm_batch.jobs.pipeline import RunContext, Stage, StageOutcome, run_stages
    from crm_batch.jobs.workbooks import HarvestReport, harvest_all

    if as_of is not None:
        raise click.UsageError("harvest reads the workbooks as they are now; drop --as-of")
    settings = load_settings(config_file, database_url=database_url)
    reports: list[HarvestReport] = []

    def stage(context: RunContext) -> StageOutcome:
        found = harvest_all(context.settings, context.engine, local_now(context.settings.tz))
        reports[:] = [found]
        found.check()  # a workbook that could not be read fails the run (after the others)
        return StageOutcome(found.inserted, found.summary().splitlines()[-1])

    try:
        run_stages(settings, "harvest", default_as_of(settings), [Stage("harvest", stage)])
    finally:
        if reports:
            click.echo(reports[0].summary())


@main.group()
def report() -> None:
    """Render PDF reports (and the same report as standalone HTML) into paths.reports_dir."""


@report.command("diagnosis")
@common_options
@click.option(
    "--team",
    "team",
    metavar="TEAM",
    default=None,
    help="This team's report (default: the company-wide report).",
)
@click.option("--all-teams", is_flag=True, help="The company-wide report and one per team.")
@click.option(
    "--lang",
    type=click.Choice(["zh-CN", "en"]),
    default=None,
    help="Report language (default: the team's configured language, else general.language).",
)
@handle_errors
def report_diagnosis(
    config_file: str | None,
    database_url: str | None,
    as_of: date | None,
    team: str | None,
    all_teams: bool,
    lang: str | None,
) -> None:
    """Customer status diagnosis report (客户现状诊断报告) as of the business date.

    \b
    Writes diagnosis_<scope>_<date>_<lang>.pdf and .html (scope: all or the team).
    Examples:
      run_batch.py report diagnosis --as-of 2026-06-30
      run_batch.py report diagnosis --team Shanghai --lang en
      run_batch.py report diagnosis --all-teams
    """
    from crm_batch.app.kpis import compute
    from crm_batch.reports.diagnosis import write_diagnoses

    if team and all_teams:
        raise click.UsageError("--team and --all-teams exclude each other")
    settings = load_settings(config_file, database_url=database_url)
    business_date = as_of or default_as_of(settings)
    run = compute(settings, business_date, teams=[team] if team else [], all_teams=all_teams).run
    started = time.perf_counter()
    rendered = write_diagnoses(settings, run, languages=[lang] if lang else None)
    log.info("rendered %d reports in %.1fs", len(rendered), time.perf_counter() - started)
    for report_file in rendered:
        click.echo(str(report_file.pdf))


@main.command()
@common_options
@click.option(
    "--quarter",
    metavar="QUARTER",
    callback=_parse_period,
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
@handle_errors
def quarterly(
    config_file: str | None,
    database_url: str | None,
    as_of: date | None,
    quarter: Any,
    team: str | None,
    lang: str | None,
    send: bool,
) -> None:
    """Quarterly review (季度复盘报告) of a finished quarter, company-wide and per team.

    \b
    Every KPI against the previous quarter, the same quarter last year, the baseline
    and the target with attainment; tier migration, cohort retention, win-back,
    campaigns, big-customer screening, the team comparison and next quarter's actions.
    Earlier quarters come from kpi_snapshots (recomputed where a snapshot is missing).
    Writes quarterly_<scope>_<quarter>_<lang>.pdf and .html into paths.reports_dir.
    --send mails each team's review to its manager and the company's to the management
    list ([email]); a re-run sends nothing twice. One run at a time, recorded in
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
    if send and not settings.email.enabled:
        raise ConfigError("--send needs e-mail turned on: set email.enabled = true in [email]")
    result = run_quarterly(
        settings,
        chosen,
        send=send,
        stages=quarterly_stages(teams=[team] if team else None, languages=[lang] if lang else None),
    )
    click.echo(result.summary())


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
    import signal
    import threading

    from crm_batch import progress
    from crm_batch.scheduler import serve as serve_loop

    if as_of is not None:
        raise click.UsageError("serve picks the business dates from the clock; drop --as-of")
    settings = load_settings(config_file, database_url=database_url)
    progress.set_enabled(False)  # a long-running service logs lines, never bars
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serve_loop(settings, stop)
