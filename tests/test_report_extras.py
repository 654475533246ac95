"""Issue 14, "reading it as a manager": the diagnosis report's KPI tiles say their change
on the previous period and their target, and its call list gives each customer's id,
phone and latest saved follow-up.

The database part (:func:`crm_batch.app.report_extras.diagnosis_extras`) is checked on
a small DuckDB demo against independent computations: the previous values against a KPI
run of the comparison day stored as snapshots, the follow-up against the one stored.
The report part receives hand-made plain data.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pandas as pd
import pytest
from fixtures.layout import broken_words, cell_overflows, table_cells

from crm_batch.app.engines import Databases
from crm_batch.app.followups import StaffInput, store_followups
from crm_batch.app.kpis import KpiRun, run_kpis, snapshot_period, store_snapshots
from crm_batch.app.report_extras import DiagnosisExtras, ScopeExtras, diagnosis_extras
from crm_batch.config import Settings, TargetSettings, load_settings
from crm_batch.i18n import numbers as fmt
from crm_batch.kpi import targets
from crm_batch.kpi.definitions import registry
from crm_batch.kpi.tiles import KpiTile
from crm_batch.reports import render
from crm_batch.reports.context import diagnosis_context
from crm_batch.source.db import make_engine
from crm_batch.source.demo import generate_demo, load_demo

AS_OF = date(2026, 6, 30)
#: The comparison day of 2026-06-30 in the previous quarter (same distance from its start).
COMPARED = date(2026, 3, 31)
TEAM = "Shanghai"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("extras")
    url = f"duckdb:///{(folder / 'demo.duckdb').as_posix()}"
    engine = make_engine(url)
    try:
        load_demo(engine, generate_demo(customers=400, orders=4000, seed=5, end_date=AS_OF))
    finally:
        engine.dispose()
    loaded = load_settings(None, database_url=url, environ={})
    return loaded.model_copy(
        update={
            "reports_dir": folder / "reports",
            "targets": {"repurchase_rate": TargetSettings(change=0.35)},
        }
    )


@pytest.fixture(scope="module")
def runs(settings: Settings) -> tuple[KpiRun, KpiRun, str]:
    """The run of AS_OF, the previous quarter's run stored as snapshots, and the id of
    the top call-list customer with one stored follow-up."""
    engine = make_engine(settings.database_url)
    try:
        before = run_kpis(
            settings,
            engine,
            COMPARED,
            snapshot_period(COMPARED),
            teams=[TEAM],
            include_company=True,
        )
        store_snapshots(engine, before, datetime(2026, 4, 1, 2, 30))
        run = run_kpis(
            settings, engine, AS_OF, snapshot_period(AS_OF), teams=[TEAM], include_company=True
        )
        warnings = run.reports[None].churn_warnings  # in calling order (rank_for_calls)
        top = str(warnings["customer_id"].iloc[0])
        store_followups(
            engine,
            TEAM,
            [StaffInput(top, "call_back", "asked to call after the fair", date(2026, 7, 8), "Li")],
            "Shanghai.xlsm",
            datetime(2026, 6, 29, 17, 5),
        )
        return run, before, top
    finally:
        engine.dispose()


def test_extras_read_the_stored_previous_values_targets_and_follow_ups(
    settings: Settings, runs: tuple[KpiRun, KpiRun, str]
) -> None:
    run, before, top = runs
    engine = make_engine(settings.database_url)
    try:
        extras = diagnosis_extras(settings, Databases.single(engine), run)
    finally:
        engine.dispose()
    for scope in (None, TEAM):
        tiles = extras.of(scope).tiles
        for name in ("customers_total", "repurchase_rate", "revenue_12m"):
            assert tiles[name].previous == pytest.approx(before.reports[scope].kpis[name])
            assert tiles[name].previous_as_of == COMPARED
            assert tiles[name].current == pytest.approx(run.reports[scope].kpis[name])
    # the target: +35 % on the same quarter a year earlier (the default baseline)
    row = extras.of(None).targets.loc["repurchase_rate"]
    assert row["actual"] == pytest.approx(run.reports[None].kpis["repurchase_rate"])
    assert row["target"] == pytest.approx(
        targets.uncapped_target("up", 0.35, float(row["baseline"]))
    )
    followed = extras.followups.set_index("customer_id")
    assert followed.loc[top, "outcome"] == "call_back"
    assert followed.loc[top, "next_contact_date"] == date(2026, 7, 8)


def test_tiles_and_call_list_show_the_extras(runs: tuple[KpiRun, KpiRun, str]) -> None:
    run, _before, top = runs
    report = run.reports[None]
    now = report.kpis["customers_total"]
    table = targets.target_table(
        {"churn_rate": 0.2},
        {"churn_rate": 0.25},
        {"churn_rate": TargetSettings(max=0.15)},
        registry(),
    ).set_index("kpi", drop=False)
    extras = DiagnosisExtras(
        {
            None: ScopeExtras(
                {
                    "customers_total": KpiTile("customers_total", now, now - 12, COMPARED),
                    "churn_rate": KpiTile("churn_rate", 0.2, 0.18, COMPARED),
                },
                table,
            )
        },
        pd.DataFrame(
            {
                "customer_id": [top],
                "entered_at": [pd.Timestamp("2026-06-29 17:05")],
                "outcome": ["call_back"],
                "next_contact_date": [date(2026, 7, 8)],
            }
        ),
    )
    context = diagnosis_context(
        report,
        language="en",
        currency="CNY",
        company_name="Co",
        generated_at=datetime(2026, 7, 1),
        extras=extras,
    )
    cards = {row["name"]: row for row in context["headline"]}
    assert cards["customers_total"]["change"] == "+12 vs 2026Q1 to the same day"
    assert cards["customers_total"]["change_class"] == "better"
    churn = {row["name"]: row for row in context["churn"]["kpis"]}["churn_rate"]
    assert churn["change"] == "+2.0 pp vs 2026Q1 to the same day"
    assert churn["change_class"] == "worse"  # churn going up is bad
    assert churn["target"] == "Target: at most 15.0% · missed"
    assert churn["target_class"] == "missed"
    assert cards["buyers_12m"]["change"] == ""  # no previous value: nothing invented
    first = context["churn"]["top"][0]
    customers = report.customers.set_index(report.customers["customer_id"].astype(str))
    assert first["customer_id"] == top
    assert first["phone"] == customers.loc[top, "phone"]
    assert (first["contacted"], first["outcome"], first["next_contact"]) == (
        "29 Jun 2026",
        "Call back",
        "8 Jul 2026",
    )
    assert all(row["outcome"] == fmt.DASH for row in context["churn"]["top"][1:])
    titles = [entry["title"] for entry in context["churn"]["actions"]]
    assert len(titles) == len(set(titles))
    assert {row["action"] for row in context["churn"]["top"]} == set(titles)
    page = render.render_html("diagnosis.html", context)
    assert "+12 vs 2026Q1 to the same day" in page
    assert "Call back" in page
    # a tile with a comparison leaves its definition to the glossary at the end
    definition = registry()["customers_total"].definition("en")
    assert page.count(definition) == 1


def test_without_extras_the_tiles_keep_their_definitions(runs: tuple[KpiRun, KpiRun, str]) -> None:
    run, _before, _top = runs
    context = diagnosis_context(
        run.reports[None],
        language="zh-CN",
        currency="CNY",
        company_name="Co",
        generated_at=datetime(2026, 7, 1),
    )
    assert all(row["change"] == "" and row["target"] == "" for row in context["headline"])
    assert all(row["contacted"] == fmt.DASH for row in context["churn"]["top"])
    page = render.render_html("diagnosis.html", context)
    definition = registry()["customers_total"].definition("zh-CN")
    assert page.count(definition) == 2  # the tile and the glossary


def test_owner_follow_ups_count_high_warnings_contacted_in_the_last_7_days(
    runs: tuple[KpiRun, KpiRun, str],
) -> None:
    """Issue 14: per owner, the share of high warnings contacted within 7 days and the
    outcomes; counted here by hand from the frames."""
    from datetime import timedelta

    from crm_batch.reports.context import CONTACT_DAYS, owner_followups

    run, _before, _top = runs
    warnings = run.reports[None].churn_warnings.reset_index(drop=True).copy()
    warnings["level"] = warnings["level"].astype("object")
    warnings["owner"] = warnings["owner"].astype("object")
    warnings.loc[:2, ["level", "owner"]] = ["high", "Li Na"]  # three high warnings of one owner
    warnings.loc[3, "level"] = "medium"
    report = dataclasses.replace(run.reports[None], churn_warnings=warnings)
    high = warnings[warnings["level"] == "high"]
    owner = "Li Na"
    mine = warnings.loc[:2, "customer_id"].astype(str).tolist()
    medium = warnings.loc[[3]]
    last_day = pd.Timestamp(report.as_of)
    followups = pd.DataFrame(
        {
            "customer_id": [mine[0], mine[1], str(medium["customer_id"].iloc[0])],
            "entered_at": [
                last_day - timedelta(days=CONTACT_DAYS - 1, hours=-9),  # first day in
                last_day - timedelta(days=CONTACT_DAYS, hours=-9),  # a day too early
                last_day,  # not a high warning: not counted
            ],
            "outcome": ["call_back", "reached", "ordered"],
            "next_contact_date": [None, None, None],
        }
    )
    rows = {row["owner"]: row for row in owner_followups(report, followups, "en")}
    assert rows[owner]["high"] == fmt.number(len(mine))
    assert rows[owner]["contacted"] == "1"
    assert rows[owner]["share"] == fmt.percent(1 / len(mine), 0)
    assert rows[owner]["outcomes"] == "Call back 1"
    others = [row for name, row in rows.items() if name != owner]
    assert all(row["contacted"] == "0" and row["outcomes"] == fmt.DASH for row in others)
    assert sum(int(row["high"].replace(",", "")) for row in rows.values()) == len(high)
    assert list(rows)[-1] == owner  # the least followed-up owners first
    assert owner_followups(report, None, "en") == []  # follow-ups not read: no table


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("team", [None, TEAM], ids=["company", "team"])
def test_every_call_list_cell_holds_its_text(
    settings: Settings, runs: tuple[KpiRun, KpiRun, str], language: str, team: str | None
) -> None:
    """Dates with two-digit months and days in the follow-up columns ("2026年11月23日"
    ran 3 mm into the outcome beside it) and every other cell of the call list stay
    inside their cells, in the company's list (one column more: team) and a team's, and
    no Latin word or number breaks inside itself ("Medium", "Guangzhou" did)."""
    from weasyprint import HTML

    from crm_batch.reports.diagnosis import diagnosis_html

    run, _before, _top = runs
    called = run.reports[team].churn_warnings["customer_id"].astype(str).head(20)
    followups = pd.DataFrame(
        {
            "customer_id": called.to_numpy(),
            "entered_at": pd.Timestamp("2025-12-23 17:05"),
            "outcome": "wrong_contact",  # the longest outcome label in both languages
            "next_contact_date": date(2026, 12, 28),
        }
    )
    extras = DiagnosisExtras({}, followups)
    html = diagnosis_html(settings, run, team, language, extras)
    assert ("2025年12月23日" if language == "zh-CN" else "23 Dec 2025") in html
    document = HTML(string=html, base_url=str(render.TEMPLATES_DIR)).render()
    cells = sum(1 for page in document.pages for _ in table_cells(page._page_box, "calls"))
    overflows = [
        item for page in document.pages for item in cell_overflows(page._page_box, "calls")
    ]
    assert overflows == []
    # a customer's name may break where it is wider than its column (the hostile ones)
    names = " ".join(run.reports[team].customers["name"].dropna().astype(str))
    broken = [
        word
        for page in document.pages
        for word in broken_words(page._page_box, "calls")
        if word not in names
    ]
    assert broken == []  # "Mediu" / "m", "Guangzho" / "u"
    assert cells >= 13 * 10  # ten rows or more, headings included
