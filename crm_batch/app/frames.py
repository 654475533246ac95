"""A period's frames from the source and the reports of several scopes from one
extraction: the building blocks :mod:`crm_batch.app.kpis` (a checked, current run) and
:mod:`crm_batch.app.targets` (baselines and past quarters) share.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Engine

from crm_batch.config import Settings
from crm_batch.kpi.engine import PeriodReport, period_reports, prepare
from crm_batch.periods import Period
from crm_batch.source.extract_period import extract_period
from crm_batch.source.frames import PeriodFrames
from crm_batch.source.mapping import SourceMapping, load_mapping
from crm_batch.source.sql_files import SqlCatalog


def source_mapping(settings: Settings) -> SourceMapping:
    """The configured mapping files (``paths.source_dir``)."""
    return load_mapping(settings.source_dir)


def source_catalog(settings: Settings) -> SqlCatalog:
    """The configured sql/ folder read through the configured mapping files."""
    return SqlCatalog(settings.sql_dir, source_mapping(settings))


def load_frames(settings: Settings, engine: Engine, period: Period, as_of: date) -> PeriodFrames:
    """Extract the frames of ``period`` (clipped to ``as_of``) through the configured
    sql/ folder and mapping files: every query of the period, run concurrently
    (:func:`~crm_batch.source.extract_period.extract_period`)."""
    return extract_period(engine, source_catalog(settings), period, as_of, settings.thresholds)


def team_reports(
    settings: Settings,
    engine: Engine,
    period: Period,
    as_of: date,
    teams: Sequence[str],
    *,
    include_company: bool = True,
) -> dict[str | None, PeriodReport]:
    """The company's report (key ``None``, unless ``include_company`` is False) and those
    of ``teams``, from one extraction.

    For measuring a past period for the scopes of a current run (target baselines,
    quarters without a snapshot): unlike :func:`crm_batch.app.kpis.run_kpis` it neither
    runs the data checks nor reconciles (the current run did), and a team without
    customers in that period (created later) gets counts of 0 and NaN rates instead of
    being rejected as unknown.
    """
    prepared = prepare(load_frames(settings, engine, period, as_of), settings.thresholds)
    return period_reports(prepared, list(teams), include_company)
