"""Optional tables in the outputs (issue 12 point 2): null and the reason, never a false 0.

The KPI runs come from the canonical data (tests/fixtures/canonical.py, 2026Q2 as of
2026-06-30) extracted through the real sql/ files with one optional table empty and
named absent, as the loader hands them over (tests/fixtures/optional.py). Each output is
checked against the complete run: the KPIs needing the absent table are null with the
reason, every other value is unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from fixtures.canonical import canonical_frames, load_canonical
from fixtures.optional import Q2, SETTINGS, T, as_absent, extract
from sqlalchemy.engine import URL

from crm_batch.app.kpis import KpiRun, store_snapshots
from crm_batch.app.snapshots import read_snapshots
from crm_batch.config import Settings, TargetSettings, load_settings
from crm_batch.excel import layout
from crm_batch.excel.dashboard import TILE_FIRST_ROW, dashboard_cells
from crm_batch.excel.teamdata import team_workbook_data
from crm_batch.excel.workbook import build_team_workbook
from crm_batch.exports.kpis import as_csv, as_json, as_table, customer_rows, targets_as_text
from crm_batch.kpi import engine
from crm_batch.kpi.definitions import registry
from crm_batch.kpi.targets import target_table
from crm_batch.reports.diagnosis import diagnosis_html
from crm_batch.reports.quarterly_targets import target_rows
from crm_batch.source.db import make_engine
from crm_batch.source.sql_files import SqlCatalog

TEAM = "North"
_RUNS: dict[str | None, KpiRun] = {}


@pytest.fixture(scope="module")
def run_without(
    db_url_factory: Callable[[str], URL], sql_catalog: SqlCatalog
) -> Callable[[str | None], KpiRun]:
    """The run (company and every team) with table ``absent`` not mapped (None: all are)."""

    def get(absent: str | None) -> KpiRun:
        if absent not in _RUNS:
            frames = extract(db_url_factory, sql_catalog, absent)
            if absent is not None:
                frames = as_absent(frames, absent)
            prepared = engine.prepare(frames, SETTINGS)
            teams = sorted(frames.register["team"].dropna().unique())
            reports = {None: engine.period_report(prepared)}
            reports |= {team: engine.period_report(prepared, team) for team in teams}
            _RUNS[absent] = KpiRun(as_of=T, period=Q2, reports=reports, requested=Q2)
        return _RUNS[absent]

    return get


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("optional")
    return load_settings(None, database_url=f"duckdb:///{(folder / 'x.duckdb').as_posix()}")


def needing(table: str) -> list[str]:
    return [name for name, kpi in registry().items() if table in kpi.needs]


REASONS = {
    "leads": ("no leads mapped", "未映射线索表"),
    "tickets": ("no tickets mapped", "未映射工单表"),
    "campaigns": ("no campaigns mapped", "未映射营销活动表"),
    "touches": ("no touches mapped", "未映射营销触达表"),
}


@pytest.mark.parametrize("table", list(REASONS))
def test_json_has_null_and_the_reason_and_every_other_value(
    table: str, run_without: Callable[[str | None], KpiRun]
) -> None:
    full = json.loads(as_json(run_without(None)))
    document = json.loads(as_json(run_without(table)))
    assert full["absent_tables"] == []
    assert document["absent_tables"] == [table]
    for result, complete in zip(document["results"], full["results"], strict=True):
        assert complete["missing"] == {}
        assert list(result["kpis"]) == list(complete["kpis"])  # keys stay stable
        assert result["missing"] == dict.fromkeys(needing(table), REASONS[table][0])
        for name, value in result["kpis"].items():
            if name in needing(table):
                assert value is None, name
            elif name not in result["partial"]:
                assert value == complete["kpis"][name], (result["team"], name)


def test_json_partial_kpis_say_what_they_were_computed_without(
    run_without: Callable[[str | None], KpiRun],
) -> None:
    [company, *_] = json.loads(as_json(run_without("tickets")))["results"]
    assert company["partial"]["churn_warnings_count"] == "without complaints (no tickets mapped)"
    assert company["kpis"]["churn_warnings_count"] is not None
    assert set(company["partial"]) == {
        "churn_warnings_count",
        "churn_warnings_high",
        "revenue_at_risk",
        "expected_value_at_risk",
    }


@pytest.mark.parametrize("table", list(REASONS))
def test_csv_has_an_empty_value_and_the_reason_in_the_note_column(
    table: str, run_without: Callable[[str | None], KpiRun]
) -> None:
    full = list(csv.DictReader(io.StringIO(as_csv(run_without(None)))))
    rows = list(csv.DictReader(io.StringIO(as_csv(run_without(table)))))
    assert len(rows) == len(full)
    assert {row["note"] for row in full} == {""}
    for row, complete in zip(rows, full, strict=True):
        if row["kpi"] in needing(table):
            assert (row["value"], row["note"]) == ("", REASONS[table][0])
        elif row["note"] == "":
            assert row["value"] == complete["value"], row
    assert sum(row["note"] == REASONS[table][0] for row in rows) == len(needing(table)) * len(
        run_without(table).reports
    )


def test_table_shows_the_reason_in_place_of_the_value(
    run_without: Callable[[str | None], KpiRun],
) -> None:
    run = run_without("leads")
    for language, label_of, reason in (
        ("en", "label_en", "no leads mapped"),
        ("zh-CN", "label_zh", "未映射线索表"),
    ):
        lines = as_table(run, language, "CNY").splitlines()
        for name in needing("leads"):
            [line] = [ln for ln in lines if ln.startswith(getattr(registry()[name], label_of))]
            assert line.count(reason) == len(run.reports), line
            assert "0" not in line.replace(reason, ""), line
    complete = as_table(run_without(None), "en", "CNY")
    assert "mapped" not in complete
    assert "*" not in complete


def test_table_marks_partial_kpis_with_a_footnote(
    run_without: Callable[[str | None], KpiRun],
) -> None:
    text = as_table(run_without("tickets"), "en", "CNY")
    assert "* Churn warnings: without complaints (no tickets mapped)" in text
    [line] = [ln for ln in text.splitlines() if ln.startswith("Churn warnings *")]
    assert "no tickets mapped" not in line  # a value, not a reason


@pytest.mark.parametrize(
    ("table", "kpi"), [("leads", "lead_conversion_rate"), ("touches", "opt_out_rate")]
)
def test_targets_of_a_kpi_without_data_say_no_data_not_missed(
    table: str, kpi: str, run_without: Callable[[str | None], KpiRun]
) -> None:
    run = run_without(table)
    report = run.reports[None]
    # baselines as if the previous year had data: only the missing actual is in question
    goals = {kpi: TargetSettings(change=0.4) if kpi != "opt_out_rate" else TargetSettings(max=0.03)}
    table_ = target_table(report.kpis, {kpi: 0.5}, goals, registry())
    # the columns app.targets.target_tables adds
    table_.insert(1, "period", Q2.label)
    table_.insert(2, "baseline_period", "2025Q2")
    table_.insert(3, "baseline_as_of", T.replace(year=2025))
    assert table_["met"].isna().all()
    [row] = target_rows(table_, "en", "CNY", report)
    assert (row["met"], row["met_key"], row["actual"]) == ("no data", "", REASONS[table][0])
    [zh] = target_rows(table_, "zh-CN", "CNY", report)
    assert (zh["met"], zh["actual"]) == ("无数据", REASONS[table][1])
    text = targets_as_text({None: table_}, "en", "CNY", run.reports)
    assert "no data" in text
    assert "missed" not in text
    assert re.search(REASONS[table][0] + r"\s+–\s+no data$", text.splitlines()[-1])
    document = json.loads(as_json(run, dict.fromkeys(run.reports, table_)))
    [target] = document["results"][0]["targets"]
    assert (target["actual"], target["met"], target["missing"]) == (None, None, REASONS[table][0])


def test_snapshots_leave_out_kpis_without_data(
    db_url_factory: Callable[[str], URL], run_without: Callable[[str | None], KpiRun]
) -> None:
    """Not stored at all, so a trend or a tile comparison never reads a fake value."""
    state = make_engine(db_url_factory("duckdb"))
    try:
        store_snapshots(state, run_without("leads"), datetime(2026, 7, 1, 3, 0))
        stored = read_snapshots(state)
    finally:
        state.dispose()
    company = stored[stored["scope"] == "all"].set_index("kpi")["value"]
    assert not set(needing("leads")) & set(company.index)
    assert len(company) == len(registry()) - len(needing("leads"))
    full = run_without(None).reports[None].kpis
    assert company["repurchase_rate"] == pytest.approx(full["repurchase_rate"])


def test_dashboard_tile_shows_a_dash_and_the_reason(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings: Settings,
    run_without: Callable[[str | None], KpiRun],
) -> None:
    # put a conversion tile on the Dashboard (none of the default tiles needs leads)
    tiles = ("lead_conversion_rate", *layout.DASHBOARD_KPIS[1:])
    monkeypatch.setattr(layout, "DASHBOARD_KPIS", tiles)
    run = run_without("leads")
    data = team_workbook_data(run, TEAM, None, settings, language="en")
    [tile] = [t for t in data.tiles if t.name == "lead_conversion_rate"]
    assert tile.missing
    assert math.isnan(tile.current)
    assert tile.note == "no leads mapped"
    cells = {(c.row, c.col): c for c in dashboard_cells(data, "en")}
    assert cells[(TILE_FIRST_ROW + 1, 1)].value == "–"
    assert cells[(TILE_FIRST_ROW + 2, 1)].value == "no leads mapped"
    # the workbook itself: the tile reads "–" and the reason, no 0 and no change
    path = tmp_path / "North.xlsm"
    build_team_workbook(data, path)
    sheet = openpyxl.load_workbook(path, keep_vba=True)["Dashboard"]
    assert sheet.cell(TILE_FIRST_ROW + 2, 2).value == "–"
    assert sheet.cell(TILE_FIRST_ROW + 3, 2).value == "no leads mapped"
    assert sheet.cell(TILE_FIRST_ROW + 3, 3).value is None
    # with every table mapped the same tile has its value
    complete = team_workbook_data(run_without(None), TEAM, None, settings, language="en")
    [tile] = [t for t in complete.tiles if t.name == "lead_conversion_rate"]
    assert (tile.missing, tile.note) == (False, "")
    assert math.isfinite(tile.current)


def test_dashboard_churn_tiles_note_the_missing_complaint_signal(
    settings: Settings, run_without: Callable[[str | None], KpiRun]
) -> None:
    data = team_workbook_data(run_without("tickets"), TEAM, None, settings, language="zh-CN")
    [tile] = [t for t in data.tiles if t.name == "churn_warnings_count"]
    assert not tile.missing
    assert tile.note == "不含投诉信号(未映射工单表)"
    # count, high-level count and revenue at risk: values with the note on them
    cells = [c for c in dashboard_cells(data, "zh-CN") if c.note == tile.note]
    assert len(cells) == 3
    assert all(isinstance(c.value, float) for c in cells)
    assert tile.current in [c.value for c in cells]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_diagnosis_report_says_no_touches_mapped_instead_of_a_campaign_table(
    settings: Settings, run_without: Callable[[str | None], KpiRun]
) -> None:
    page = diagnosis_html(settings, run_without("touches"), None, "en")
    section = _text(page.split('id="campaigns"')[1].split('id="definitions"')[0])
    assert "no touches mapped" in section
    assert "<img" not in page.split('id="campaigns"')[1].split('id="definitions"')[0]
    assert "Campaign touches" not in section  # no cards
    assert "Channel" not in section  # no funnel table
    assert "%" not in section
    complete = diagnosis_html(settings, run_without(None), None, "en")
    whole = _text(complete.split('id="campaigns"')[1].split('id="definitions"')[0])
    assert "mapped" not in whole
    assert "Campaign touches" in whole
    assert "Channel" in whole


def test_diagnosis_report_marks_cost_and_roi_without_campaigns(
    settings: Settings, run_without: Callable[[str | None], KpiRun]
) -> None:
    page = diagnosis_html(settings, run_without("campaigns"), None, "zh-CN")
    section = page.split('id="campaigns"')[1].split('id="definitions"')[0]
    # the touch funnel cards stay; cost and ROI are dashes with the reason; the tables
    # by channel and campaign give way to the reason
    assert section.count("未映射营销活动表") == 3
    assert "<table>" not in section


def test_diagnosis_report_marks_conversion_and_service_cards(
    settings: Settings, run_without: Callable[[str | None], KpiRun]
) -> None:
    for table, reason in (("leads", "no leads mapped"), ("tickets", "no tickets mapped")):
        page = diagnosis_html(settings, run_without(table), None, "en")
        assert '<div class="note">' + reason + "</div>" in page
        assert '<div class="note">' not in diagnosis_html(settings, run_without(None), None, "en")


def test_customers_out_leaves_ticket_columns_empty_without_tickets(
    run_without: Callable[[str | None], KpiRun],
) -> None:
    rows = customer_rows(run_without("tickets").reports[None], "en")
    assert rows["tickets_open"].isna().all()
    assert rows["complaints_open_over_limit"].isna().all()
    complete = customer_rows(run_without(None).reports[None], "en")
    assert complete["tickets_open"].notna().all()
    assert complete["tickets_open"].sum() > 0
    # the other columns are those of the complete data
    assert rows["revenue_12m"].tolist() == complete["revenue_12m"].tolist()


def test_quarterly_review_without_touches_says_so_and_misses_no_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The whole review of the canonical company without touches, every quarter
    recomputed through the service with the loader's absent_tables."""
    from crm_batch.app import frames as app_frames
    from crm_batch.app import kpis as app_kpis
    from crm_batch.app.engines import Databases
    from crm_batch.app.quarter import gather_quarter
    from crm_batch.reports.quarterly import quarterly_html

    def without_touches(*args: object, **kwargs: object) -> object:
        return as_absent(load_frames(*args, **kwargs), "touches")

    load_frames = app_frames.load_frames
    monkeypatch.setattr(app_frames, "load_frames", without_touches)
    monkeypatch.setattr(app_kpis, "load_frames", without_touches)
    url = f"duckdb:///{(tmp_path / 'canonical.duckdb').as_posix()}"
    frames = canonical_frames("int")
    frames["touches"] = frames["touches"].iloc[:0]
    state = make_engine(url)
    try:
        load_canonical(state, frames, "int")
        chosen = load_settings(None, database_url=url, environ={})
        data = gather_quarter(chosen, Databases.single(state), Q2)
    finally:
        state.dispose()
    page = quarterly_html(chosen, data, None, "en", datetime(2026, 7, 1, 6, 0))
    section = _text(page.split('id="campaigns"')[1].split('id="big"')[0])
    assert "no touches mapped" in section
    assert "%" not in section
    targets = _text(page.split('id="targets"')[1].split('id="actions"')[0])
    # campaign_roi and opt_out_rate are targeted by default: not measured, not missed
    assert targets.count("no data") == 2
    assert targets.count("no touches mapped") == 2
    rows = {
        row["kpi"]: row
        for row in target_rows(data.target_tables[None], "en", "CNY", data.report(None))
    }
    assert rows["opt_out_rate"]["met"] == "no data"
    assert rows["repurchase_rate"]["met"] in {"met", "missed"}
    assert rows["repurchase_rate"]["actual"] != "no touches mapped"


def test_the_run_notes_the_tables_not_mapped(run_without: Callable[[str | None], KpiRun]) -> None:
    [note] = run_without("leads").notes()
    assert note.startswith("optional tables not mapped: leads;")
    assert note.endswith("leads_created, leads_converted, lead_conversion_rate")
    assert run_without(None).notes() == []
