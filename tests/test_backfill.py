"""Backfill is safe: an older date never replaces the current workbooks and reports, and
a catch-up rebuilds them once, for its last date (issue: "A backfill regresses the
current workbooks")."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings

from crm_batch.app.engines import build_engine
from crm_batch.app.snapshots import read_snapshots
from crm_batch.config import ScheduleSettings, Settings
from crm_batch.errors import ConfigError
from crm_batch.jobs.pipeline import run_catch_up, run_nightly
from crm_batch.scheduler import NightlyScheduler, nightly_slot

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return folder_settings(demo_folder(tmp_path / "company"))


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (backups included) by relative path, with its bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def stage_summaries(result: object) -> dict[str, str]:
    return {stage.name: stage.summary for stage in result.stages}  # type: ignore[attr-defined]


def snapshot_dates(settings: Settings) -> set[date]:
    engine = build_engine(settings)
    try:
        return {stamp.date() for stamp in read_snapshots(engine, scope="all")["as_of"]}
    finally:
        engine.dispose()


@pytest.mark.parametrize("older", [DEMO_DAY - timedelta(days=45), date(1899, 12, 31)])
def test_an_older_date_keeps_the_current_workbooks_and_stores_its_snapshots(
    settings: Settings, older: date
) -> None:
    run_nightly(settings, DEMO_DAY)
    current = folder_state(settings.workbooks_dir)
    assert any(name.endswith(".xlsm") for name in current)

    result = run_nightly(settings, older)

    assert folder_state(settings.workbooks_dir) == current  # not one byte, no new backup
    summaries = stage_summaries(result)
    for stage in ("harvest", "workbooks", "reports", "callsheets", "prune", "delivery"):
        assert "kept the current outputs" in summaries[stage]
    assert older in snapshot_dates(settings)  # the backfill's own product is stored


def test_the_same_or_a_newer_date_rebuilds_the_workbooks(settings: Settings) -> None:
    run_nightly(settings, DEMO_DAY - timedelta(days=1))
    result = run_nightly(settings, DEMO_DAY)
    assert "team workbooks" in stage_summaries(result)["workbooks"]
    again = run_nightly(settings, DEMO_DAY)  # a re-run of the latest date rebuilds too
    assert "team workbooks" in stage_summaries(again)["workbooks"]


def test_outputs_to_rebuilds_an_old_date_in_a_folder_of_its_own(
    settings: Settings, tmp_path: Path
) -> None:
    run_nightly(settings, DEMO_DAY)
    current = folder_state(settings.workbooks_dir)
    elsewhere = tmp_path / "look-back"

    run_nightly(settings, DEMO_DAY - timedelta(days=45), outputs_to=elsewhere)

    assert folder_state(settings.workbooks_dir) == current
    assert sorted(p.suffix for p in (elsewhere / "workbooks").glob("*.xlsm"))
    with pytest.raises(ConfigError, match="--outputs-to"):
        run_nightly(settings, DEMO_DAY, outputs_to=settings.workbooks_dir)


def test_a_catch_up_rebuilds_the_workbooks_once_for_its_last_date(settings: Settings) -> None:
    dates = [DEMO_DAY - timedelta(days=n) for n in (3, 2, 1, 0)]
    shown: list[str] = []

    results = run_catch_up(settings, dates, show=shown.append)

    workbooks = [stage_summaries(r)["workbooks"] for r in results]
    assert all("kept the current outputs" in s for s in workbooks[:-1])
    assert "team workbooks" in workbooks[-1]
    backups = list((settings.workbooks_dir / "backup").glob("*.xlsm"))
    assert backups == []  # built once: nothing was replaced, so no backup pushed out
    assert set(dates) <= snapshot_dates(settings)
    assert len(shown) == len(dates)


def test_serve_runs_the_earlier_dates_of_a_catch_up_without_outputs() -> None:
    latest = date(2026, 7, 10)
    full: list[date] = []
    catch_up: list[date] = []
    scheduler = NightlyScheduler(
        ScheduleSettings(catch_up="all", max_catch_up_days=31),
        SHANGHAI,
        job=full.append,
        catch_up_job=catch_up.append,
        ok_dates=lambda: {latest - timedelta(days=4)},
        clock=lambda: nightly_slot(latest, clock_time(2, 30), SHANGHAI) + timedelta(minutes=1),
        stop=threading.Event(),
    )
    scheduler.start()
    assert catch_up == [latest - timedelta(days=n) for n in (3, 2, 1)]
    assert full == [latest]
