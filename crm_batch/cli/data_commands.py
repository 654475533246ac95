"""Commands that compute and show: ``demo``, ``status``, ``kpis``, ``report diagnosis``."""

from __future__ import annotations

import logging
import sys
import time
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
from crm_batch.errors import ExitCode

log = logging.getLogger("crm_batch")


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
    from crm_batch.jobs.demo import DemoSize, run_demo

    settings = load_settings(config_file, database_url=database_url)
    run_demo(
        settings,
        as_of or default_as_of(settings),
        DemoSize(customers=customers, orders=orders, seed=seed, years=years, id_type=id_type),
        replace=replace,
        history_quarters=history_quarters,
        database_only=database_only,
        show=click.echo,
        progress=sys.stderr.isatty(),
    )


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


@main.command()
@common_options
@click.option(
    "--period",
    metavar="PERIOD",
    callback=parse_period_option,
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
            click.echo(targets_as_text(goals, language, settings.currency, run.reports))


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
    from crm_batch.app.report_extras import read_diagnosis_extras
    from crm_batch.reports.diagnosis import write_diagnoses

    if team and all_teams:
        raise click.UsageError("--team and --all-teams exclude each other")
    settings = load_settings(config_file, database_url=database_url)
    business_date = as_of or default_as_of(settings)
    run = compute(settings, business_date, teams=[team] if team else [], all_teams=all_teams).run
    extras = read_diagnosis_extras(settings, run)
    started = time.perf_counter()
    rendered = write_diagnoses(settings, run, languages=[lang] if lang else None, extras=extras)
    log.info("rendered %d reports in %.1fs", len(rendered), time.perf_counter() - started)
    for report_file in rendered:
        click.echo(str(report_file.pdf))
