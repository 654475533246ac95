"""Per-owner call sheets: content worked out by hand, escaping, file names, isolation of
one owner's failure, and the nightly stage on and off."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings
from fixtures.layout import cell_overflows
from fixtures.render import InProcessPool

from crm_batch.config import Settings, load_settings
from crm_batch.errors import DataError
from crm_batch.files import _safe_stem
from crm_batch.jobs.pipeline import NIGHTLY_STAGES, run_nightly
from crm_batch.jobs.scopes import render_each_owner
from crm_batch.kpi import care
from crm_batch.kpi.churn import rank_for_calls
from crm_batch.reports import callsheets, render

AS_OF = date(2026, 6, 30)  # T; follow-ups due up to 7 July, care events 1-7 July
GENERATED = datetime(2026, 7, 1, 2, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
SCRIPT = "<script>alert(1)</script>"


def _customers() -> pd.DataFrame:
    """Owner 王芳: c1 c2 c3 c4 c7; owner Kevin: c5; c6 has no owner."""
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6", "c7"],
            "name": ["赵一", "钱二", "孙三", "李四", "周五", "吴六", "郑七"],
            "team": "Shanghai",
            "owner": ["王芳", "王芳", "王芳", "王芳", "Kevin", None, "王芳"],
            "phone": ["13800000001", "13800000002", "13800000003", None, "5", "6", "7"],
            "birthday": pd.to_datetime(
                ["1980-07-01", None, "1990-07-07", "1990-08-15", "1985-07-02", "1970-07-01", None]
            ),
            "first_order_date": pd.to_datetime(
                ["2020-01-10", "2024-07-05", "2023-03-01", "2022-02-02", None, None, None]
            ),
            "marketing_opt_out": [False, False, True, False, False, False, False],
        }
    )


def _warnings() -> pd.DataFrame:
    """Warnings in the engine's first order (revenue at risk); rank_for_calls puts them
    in calling order: c3 (expected 9,000), c5 (7,000), c1 (5,000), c2 (no prediction)."""
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c5"],
            "name": ["赵一", "钱二", "孙三", "周五"],
            "team": "Shanghai",
            "owner": ["王芳", "王芳", "王芳", "Kevin"],
            "tier": ["B", "C", "A", "B"],
            "signal_quiet": [True, True, True, True],
            "signal_complaint": [False, False, True, False],
            "level": pd.Categorical(
                ["medium", "low", "high", "medium"], categories=["high", "medium", "low"]
            ),
            "revenue_at_risk": [30_000.0, 20_000.0, 10_000.0, 5_000.0],
            "expected_revenue_12m": [5_000.0, float("nan"), 9_000.0, 7_000.0],
        }
    )
    return rank_for_calls(frame)


def _followups() -> pd.DataFrame:
    """The latest follow-up of c1, c2, c3, c4, c5, c6, c7 (as latest_followups returns)."""
    return pd.DataFrame(
        {
            "customer_id": pd.Series(["c1", "c2", "c3", "c4", "c5", "c6", "c7"], dtype="string"),
            "followup_id": list("abcdefg"),
            "entered_at": pd.to_datetime(
                [
                    "2026-06-20",
                    "2026-06-21",
                    "2026-06-22",
                    "2026-06-23",
                    "2026-06-24",
                    "2026-06-25",
                    "2026-06-26",
                ]
            ),
            "entered_by": "王芳",
            "outcome": [
                "call_back",
                "no_answer",
                "interested",
                "reached",
                "reached",
                "reached",
                "retired_key",
            ],
            "note": ["after 3pm", None, "wants a quote", SCRIPT, None, None, None],
            "next_contact_date": [
                date(2026, 7, 3),  # this week
                date(2026, 6, 28),  # overdue
                date(2026, 7, 7),  # the last day of the week: due
                date(2026, 6, 30),  # T itself: overdue (T's day is over)
                date(2026, 6, 1),  # Kevin's
                date(2026, 6, 1),  # nobody's
                date(2026, 7, 8),  # after the week: not due
            ],
            "source_workbook": "Shanghai.xlsm",
        }
    )


def _report(customers: pd.DataFrame | None = None, warnings: pd.DataFrame | None = None):
    """What a sheet reads of a PeriodReport (team, as_of, customers, warnings, care)."""
    customers = _customers() if customers is None else customers
    return SimpleNamespace(
        team="Shanghai",
        as_of=AS_OF,
        customers=customers,
        churn_warnings=_warnings() if warnings is None else warnings,
        care_calendar=care.care_calendar(customers, AS_OF, 7, 2),
    )


def _context(owner: str, language: str = "en", **changes):
    return callsheets.sheet_context(
        _report(**changes),
        owner,
        _followups(),
        language=language,
        currency="CNY",
        company_name="Demo",
        generated_at=GENERATED,
    )


def test_the_sheet_lists_the_owners_calls_care_and_due_follow_ups_worked_by_hand() -> None:
    sheet = _context("王芳")

    # calls: the owner's warnings in calling order (c5 is Kevin's)
    assert [row["customer_id"] for row in sheet["calls"]] == ["c3", "c1", "c2"]
    first = sheet["calls"][0]
    assert first["customer"] == "孙三"
    assert first["phone"] == "13800000003"
    assert first["tier"] == "A"
    assert first["why"] == "High · no orders and an open complaint"
    assert first["expected_12m"] == "CNY 9,000"
    assert first["last_followup"] == ("Interested", "22 Jun 2026")
    assert first["next_contact"] == "7 Jul 2026"
    assert sheet["calls"][2]["expected_12m"] == "–"  # no prediction yet
    assert sheet["calls"][2]["why"] == "Low · no order for 3 months"

    # care: c1's birthday on 1 July (greet on 29 June: now), c2's 2nd anniversary on
    # 5 July (greet 3 July), c3's birthday on 7 July (greet 5 July, opted out)
    assert [(r["customer_id"], r["event"], r["due_date"]) for r in sheet["care"]] == [
        ("c1", "Birthday (46)", "29 Jun 2026"),
        ("c2", "First-order anniversary (2)", "3 Jul 2026"),
        ("c3", "Birthday (36)", "5 Jul 2026"),
    ]
    assert [r["greet_now"] for r in sheet["care"]] == [True, False, False]
    assert [r["no_offers"] for r in sheet["care"]] == [False, False, True]

    # due: next contact up to 7 July, earliest (most overdue) first; c7's 8 July is not
    assert [(r["customer_id"], r["overdue"]) for r in sheet["due"]] == [
        ("c2", True),
        ("c4", True),
        ("c1", False),
        ("c3", False),
    ]
    assert sheet["due"][1]["phone"] == "–"
    assert sheet["summary"] == (
        "3 to call · 3 care events (1 to greet now) · 4 follow-ups due (2 overdue)"
    )
    assert sheet["nothing"] is False
    assert sheet["calls_more"] == ""


def test_another_owner_sees_only_their_own_customers() -> None:
    sheet = _context("Kevin")
    assert [row["customer_id"] for row in sheet["calls"]] == ["c5"]
    assert [row["customer_id"] for row in sheet["care"]] == ["c5"]
    assert [row["customer_id"] for row in sheet["due"]] == ["c5"]


def test_an_owner_with_nothing_to_do_gets_one_line_saying_so() -> None:
    customers = _customers()
    customers.loc[customers["customer_id"] == "c7", "owner"] = "林娜"
    sheet = _context("林娜", customers=customers)
    assert (sheet["calls"], sheet["care"], sheet["due"]) == ([], [], [])  # c7's date: 8 July
    assert sheet["nothing"] is True
    html = render.render_html(callsheets.TEMPLATE, {**sheet, "scope_record": "team:Shanghai"})
    assert "Nothing to do today" in html
    assert "<table" not in html


def test_a_long_call_list_is_cut_and_says_how_many_more() -> None:
    count = callsheets.CALLS_PER_SHEET + 3
    ids = [f"x{i:02d}" for i in range(count)]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "name": ids,
            "team": "Shanghai",
            "owner": "王芳",
            "phone": "1",
            "birthday": pd.NaT,
            "first_order_date": pd.NaT,
            "marketing_opt_out": False,
        }
    )
    warnings = pd.DataFrame(
        {
            "customer_id": ids,
            "name": ids,
            "owner": "王芳",
            "tier": "C",
            "signal_quiet": True,
            "signal_complaint": False,
            "level": pd.Categorical(["low"] * count, categories=["high", "medium", "low"]),
            "revenue_at_risk": 1.0,
        }
    )
    sheet = _context("王芳", "zh-CN", customers=customers, warnings=warnings)
    assert [row["customer_id"] for row in sheet["calls"]] == ids[: callsheets.CALLS_PER_SHEET]
    assert sheet["calls_more"] == "另有 3 位预警客户:见团队工作簿的“流失预警”表。"
    assert sheet["summary"].startswith(f"待联系 {count} 位")


def test_hostile_names_are_cleaned_and_escaped() -> None:
    customers = _customers()
    customers["name"] = customers["name"].astype("object")
    customers.loc[customers["customer_id"] == "c2", "name"] = "=cmd|' /C calc'!A0"
    customers.loc[customers["customer_id"] == "c1", "name"] = "V" * 40_000
    customers["owner"] = customers["owner"].replace("王芳", SCRIPT)
    warnings = _warnings()
    warnings["owner"] = warnings["owner"].replace("王芳", SCRIPT)
    warnings["name"] = warnings["name"].astype("object")
    warnings.loc[warnings["customer_id"] == "c3", "name"] = '</td><img src="http://x/y">\n王'
    sheet = _context(SCRIPT, customers=customers, warnings=warnings)
    html = render.render_html(callsheets.TEMPLATE, {**sheet, "scope_record": "team:Shanghai"})

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    assert "&lt;/td&gt;&lt;img" in html
    assert "V" * 60 not in html
    assert "V" * 59 + "…" in html
    assert "&lt;/td&gt;&lt;img src=&#34;http://x/y&#34;&gt; 王" in html  # one line
    assert "after 3pm" in html
    assert "&lt;script&gt;" in html


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None).model_copy(update={"reports_dir": tmp_path / "reports"})


def test_file_names_are_safe_distinct_and_short(settings: Settings) -> None:
    owners = [
        "王芳",
        "Kevin Lin",
        "kevin lin",  # one file with "Kevin Lin" on Windows and macOS
        "../../etc/passwd",
        "CON",
        "a/b",
        "王" * 80,  # 240 bytes of UTF-8 on its own
        "\x1b[31m",
        "",
    ]
    units = [("Shanghai", owner) for owner in owners] + [("Team A/B", "王芳"), ("all", "王芳")]
    paths = callsheets.sheet_paths(
        settings, units, "2026-06-30", {"Shanghai": "zh-CN", "Team A/B": "en", "all": "en"}
    )
    names = [pdf.name for pdf, _html in paths.values()]
    assert len({name.casefold() for name in names}) == len(units)
    for pdf, html in paths.values():
        assert pdf.parent == html.parent == settings.reports_dir
        assert _safe_stem(pdf.stem), pdf.name
        assert len(pdf.name.encode("utf-8")) <= 200
        assert html == pdf.with_suffix(".html")
    assert paths[("Shanghai", "王芳")][0].name == "callsheet_Shanghai_王芳_2026-06-30_zh-CN.pdf"
    plain, lower = paths[("Shanghai", "Kevin Lin")][0], paths[("Shanghai", "kevin lin")][0]
    assert plain.name.startswith("callsheet_Shanghai_Kevin Lin-")  # both hashed
    assert lower.name.startswith("callsheet_Shanghai_kevin lin-")
    assert paths[("all", "王芳")][0].name.startswith("callsheet_all-team-")


def test_sheet_owners_leave_out_customers_without_an_owner() -> None:
    report = _report()
    report.customers.loc[report.customers["customer_id"] == "c7", "owner"] = "  "
    assert callsheets.sheet_owners(report) == ["Kevin", "王芳"]
    units = callsheets.sheet_units({None: report, "Shanghai": report})
    assert units == [("Shanghai", "Kevin"), ("Shanghai", "王芳")]


def test_one_owners_failed_sheet_is_its_teams_problem_and_the_others_are_written(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "render_pool", InProcessPool)
    monkeypatch.setattr(render, "html_to_pdf", lambda html, *_: b"%PDF-1.7 " + html[:40].encode())
    real_html = callsheets.sheet_html

    def sheet_html(settings, report, owner, followups, language):
        if owner == "Kevin":
            raise DataError("report not rendered: refused to fetch 'http://x'")
        return real_html(settings, report, owner, followups, language)

    monkeypatch.setattr(callsheets, "sheet_html", sheet_html)
    report = _report()
    customers = report.customers
    customers.loc[customers["customer_id"] == "c7", "owner"] = "林娜"
    reports = {"Shanghai": report}
    units = callsheets.sheet_units(reports)
    assert units == [("Shanghai", "Kevin"), ("Shanghai", "林娜"), ("Shanghai", "王芳")]
    language_of = {"Shanghai": "zh-CN"}
    paths = callsheets.sheet_paths(settings, units, "2026-06-30", language_of)

    done, problems = render_each_owner(
        "call sheet",
        units,
        lambda some: callsheets.write_call_sheets(
            settings, reports, some, _followups(), paths, language_of
        ),
    )

    assert [(sheet.owner, sheet.pdf.is_file()) for sheet in done] == [
        ("林娜", True),
        ("王芳", True),
    ]
    assert not paths[("Shanghai", "Kevin")][0].exists()
    [problem] = problems
    assert problem.team == "Shanghai"
    assert problem.line().startswith(
        "team 'Shanghai': its call sheet of owner 'Kevin' could not be written (report not "
        "rendered: refused to fetch 'http://x')"
    )


def _nightly(tmp_path: Path, per_owner: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(render, "render_pool", InProcessPool)
    monkeypatch.setattr(render, "html_to_pdf", lambda html, *_: b"%PDF-1.7 fake")
    settings = folder_settings(demo_folder(tmp_path))
    reports = settings.reports.model_copy(update={"per_owner": per_owner})
    settings = settings.model_copy(update={"reports": reports})
    stages = (NIGHTLY_STAGES[0], *[s for s in NIGHTLY_STAGES if s.name == "callsheets"])
    return settings, run_nightly(settings, DEMO_DAY, stages=stages)


def test_the_nightly_stage_writes_one_sheet_per_owner_of_every_team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, result = _nightly(tmp_path, True, monkeypatch)
    from crm_batch.source.demo import TEAMS

    stage = result.stages[1]
    sheets = sorted(p.name for p in settings.reports_dir.glob("callsheet_*.pdf"))
    owners = {(team.name, owner) for team in TEAMS for owner in team.owners}
    assert stage.rows == len(sheets) == len(owners)  # every demo rep has customers
    assert f"{len(sheets)} call sheets of 8 teams" in stage.summary
    assert "callsheet_Xiamen_Kevin Lin_2026-06-30_zh-CN.pdf" in sheets
    assert not result.problems


def test_the_setting_off_renders_no_sheet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(None).reports.per_owner is False  # the default
    settings, result = _nightly(tmp_path, False, monkeypatch)
    assert result.stages[1].rows == 0
    assert result.stages[1].summary == "off (reports.per_owner = false)"
    assert not list(settings.reports_dir.glob("callsheet_*"))


def test_the_setting_takes_a_boolean_only(tmp_path: Path) -> None:
    from crm_batch.errors import ConfigError

    path = tmp_path / "crm_batch.toml"
    path.write_text('[reports]\nper_owner = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="per_owner"):
        load_settings(path)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_every_table_cell_of_a_sheet_holds_its_text(language: str) -> None:
    """December dates (two-digit months: 2026年12月28日), a long international phone
    number, a text id and a seven-figure value stay inside their cells in all three
    lists, laid out by WeasyPrint."""
    from weasyprint import HTML

    as_of = date(2026, 12, 24)
    customers = _customers().assign(
        customer_id=[f"C{n:07d}" for n in range(1, 8)],
        phone="+86 15488458132",
        birthday=pd.to_datetime(["1980-12-28"] * 7),
    )
    warnings = _warnings().assign(
        customer_id=lambda f: "C000000" + f["customer_id"].str[1:],
        expected_revenue_12m=1_234_567.89,
    )
    followups = _followups().assign(
        customer_id=pd.Series([f"C{n:07d}" for n in range(1, 8)], dtype="string"),
        entered_at=pd.Timestamp("2026-12-23 17:05"),
        outcome="wrong_contact",
        next_contact_date=date(2026, 12, 28),
    )
    report = SimpleNamespace(
        team="Shanghai",
        as_of=as_of,
        customers=customers,
        churn_warnings=warnings,
        care_calendar=care.care_calendar(customers, as_of, 7, 2),
    )
    context = callsheets.sheet_context(
        report,
        "王芳",
        followups,
        language=language,
        currency="CNY",
        company_name="Demo",
        generated_at=GENERATED,
    )
    html = render.render_html(callsheets.TEMPLATE, {**context, "scope_record": "team:x"})
    assert ("2026年12月28日" if language == "zh-CN" else "28 Dec 2026") in html
    assert len(context["calls"]) == 3
    assert context["due"]
    assert context["care"]
    document = HTML(string=html, base_url=str(render.TEMPLATES_DIR)).render()
    overflows = [item for page in document.pages for item in cell_overflows(page._page_box)]
    assert overflows == []
