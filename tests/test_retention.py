"""Old nightly reports removed after reports.keep_days (crm_batch.reports.retention) and
the nightly ``prune`` stage: which names count, the date boundary worked out by hand,
what is never touched, and a look-back folder kept whole."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings

from crm_batch.config import Settings, load_settings
from crm_batch.jobs.pipeline import NIGHTLY_STAGES, run_nightly
from crm_batch.reports.retention import expired_reports, prune_nightly_reports, report_date

RUN_DAY = date(2026, 12, 5)
# keep_days = 90: the dates 2026-09-07 .. 2026-12-05 are kept (90 dates, the run's
# included); 2026-09-06 is the newest date removed
KEPT_FIRST, REMOVED_LAST = "2026-09-07", "2026-09-06"

REMOVED = (
    f"diagnosis_all_{REMOVED_LAST}_zh-CN.pdf",
    f"diagnosis_all_{REMOVED_LAST}_zh-CN.html",
    "diagnosis_Shanghai_2026-01-31_en.pdf",
    "diagnosis_team-a-b-3f2a9c1d_2025-12-31_zh-CN.pdf",
    f"callsheet_Xiamen_Kevin Lin_{REMOVED_LAST}_zh-CN.pdf",
    "callsheet_华东_2026-01-01_王_2026-02-01_zh-CN.html",  # a date inside the owner's name
    ".diagnosis_all_2026-01-01_en.pdf.x1y2z3_9.tmp",  # left behind by a killed run
)
KEPT = (
    f"diagnosis_all_{KEPT_FIRST}_zh-CN.pdf",
    "diagnosis_all_2026-12-05_en.html",
    f"callsheet_Xiamen_Kevin Lin_{KEPT_FIRST}_zh-CN.pdf",
    "diagnosis_all_2026-12-06_zh-CN.pdf",  # newer than the run (a later run's)
    "quarterly_all_2025Q1_zh-CN.pdf",  # reviews are always kept
    "quarterly_Shanghai_2025Q1_en.html",
    "diagnosis_all_2026-01-01_fr.pdf",  # not a language of ours
    "diagnosis_all_2026-13-45_en.pdf",  # not a date
    "diagnosis_2026-01-01_en.pdf",  # no scope
    "diagnosis_all_2026-01-01_en.pdf.bak",
    "Diagnosis_all_2026-01-01_en.pdf",
    f".diagnosis_all_{KEPT_FIRST}_en.pdf.x1y2z3_9.tmp",  # a run writing it now
    ".diagnosis_all_2026-01-01_fr.pdf.x1y2z3_9.tmp",
    ".notes.txt.x1y2z3_9.tmp",
    "budget 2026-01-01.xlsx",
    "notes.txt",
)


def _fill(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in REMOVED + KEPT:
        (folder / name).write_text("x", encoding="utf-8")
    (folder / "diagnosis_all_2026-01-01_en.pdf.d").mkdir()  # a folder is never removed
    (folder / "diagnosis_old_2026-01-01_en.pdf").mkdir()
    (folder / "diagnosis_link_2026-01-01_en.pdf").symlink_to(folder / "notes.txt")


def _names(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


def test_a_nightly_report_name_gives_its_business_date() -> None:
    assert report_date("diagnosis_all_2026-09-06_zh-CN.pdf") == date(2026, 9, 6)
    assert report_date("callsheet_a_b_2026-09-06_en.html") == date(2026, 9, 6)
    assert report_date("callsheet_华东_2026-01-01_王_2026-02-01_zh-CN.html") == date(2026, 2, 1)
    assert report_date("quarterly_all_2026Q3_en.pdf") is None
    assert report_date("diagnosis_all_2026-02-30_en.pdf") is None
    assert report_date(".diagnosis_all_2026-09-06_en.pdf.k2_x9a.tmp") == date(2026, 9, 6)
    assert report_date(".diagnosis_all_2026-09-06_en.pdf") is None


def test_expired_reports_are_those_before_the_kept_dates(tmp_path: Path) -> None:
    _fill(tmp_path)
    expired = expired_reports(tmp_path, RUN_DAY, 90)
    assert sorted(path.name for path in expired) == sorted(REMOVED)
    # keep_days = 1 keeps the run's date and any newer one only
    one = {path.name for path in expired_reports(tmp_path, RUN_DAY, 1)}
    assert one == set(REMOVED) | {name for name in KEPT if KEPT_FIRST in name}
    assert expired_reports(tmp_path, RUN_DAY, 0) == []  # 0: keep everything
    assert expired_reports(tmp_path / "missing", RUN_DAY, 90) == []


def test_a_file_that_cannot_be_removed_is_reported_and_the_rest_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(tmp_path)
    stuck = tmp_path / REMOVED[0]
    unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path == stuck:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    pruned = prune_nightly_reports(tmp_path, RUN_DAY, 90)
    assert pruned.failed == ((stuck, "Permission denied"),)
    assert sorted(path.name for path in pruned.removed) == sorted(REMOVED[1:])
    assert _names(tmp_path) >= set(KEPT) | {stuck.name}


def _keeping(settings: Settings, keep_days: int) -> Settings:
    reports = settings.reports.model_copy(update={"keep_days": keep_days})
    return settings.model_copy(update={"reports": reports})


PRUNE = tuple(stage for stage in NIGHTLY_STAGES if stage.name == "prune")


def test_the_nightly_run_prunes_the_reports_folder(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).reports.keep_days == 90  # the default
    assert [s.name for s in NIGHTLY_STAGES].index("prune") == len(NIGHTLY_STAGES) - 2
    settings = folder_settings(demo_folder(tmp_path / "demo"))
    _fill(settings.reports_dir)
    before = _names(settings.reports_dir)

    result = run_nightly(settings, RUN_DAY, stages=PRUNE)

    stage = result.stages[0]
    assert stage.rows == len(REMOVED)
    assert stage.summary == f"{len(REMOVED)} nightly report files older than 90 days removed"
    assert _names(settings.reports_dir) == before - set(REMOVED)
    assert not result.problems


def test_keep_days_zero_and_a_look_back_folder_keep_everything(tmp_path: Path) -> None:
    settings = folder_settings(demo_folder(tmp_path / "demo"))
    _fill(settings.reports_dir)
    before = _names(settings.reports_dir)
    off = run_nightly(_keeping(settings, 0), RUN_DAY, stages=PRUNE)
    assert off.stages[0].summary == "off (reports.keep_days = 0)"
    assert _names(settings.reports_dir) == before

    look_back = tmp_path / "look-back"
    _fill(look_back / "reports")
    kept = _names(look_back / "reports")
    result = run_nightly(settings, DEMO_DAY, stages=PRUNE, outputs_to=look_back)
    assert result.stages[0].summary == "off (reports.keep_days = 0)"
    assert _names(look_back / "reports") == kept
    assert _names(settings.reports_dir) == before  # the configured folder is not its job
