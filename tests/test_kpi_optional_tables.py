"""Optional tables (issue 12 point 2): an absent one makes exactly its KPIs null.

The canonical data (tests/fixtures/canonical.py, 2026Q2 as of 2026-06-30) is extracted
three ways per optional table: complete, with the table mapped but empty, and with it
empty and named absent (as the loader does). The registry's declarations
(``needs`` / ``partial_without``) must account for every KPI that moves when the table
is emptied, so a KPI that reads an optional frame without declaring it fails here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from fixtures.optional import SETTINGS, as_absent, extract
from sqlalchemy.engine import URL

from crm_batch.i18n.messages import absent_reason, partial_reason
from crm_batch.kpi import engine
from crm_batch.kpi.definitions import missing_kpis, partial_kpis, registry
from crm_batch.source.frames import OPTIONAL_TABLES, PeriodFrames
from crm_batch.source.sql_files import SqlCatalog

Values = dict[str | None, dict[str, float]]
#: Declared readers whose value the canonical data does not move, and why they read it.
NOT_EXERCISED = {
    # high = tier A or both signals; no quiet customer there has an open complaint
    ("tickets", "churn_warnings_high"),
}
_FRAMES: dict[str | None, PeriodFrames] = {}


@pytest.fixture(scope="module")
def frames_of(
    db_url_factory: Callable[[str], URL], sql_catalog: SqlCatalog
) -> Callable[[str | None], PeriodFrames]:
    """The extracted frames with table ``emptied`` (None: complete data), once each."""

    def get(emptied: str | None) -> PeriodFrames:
        if emptied not in _FRAMES:
            _FRAMES[emptied] = extract(db_url_factory, sql_catalog, emptied)
        return _FRAMES[emptied]

    return get


def values_of(frames: PeriodFrames) -> tuple[Values, dict[str | None, engine.PeriodReport]]:
    """Every scope's KPI values (company = None, then each team) and the reports."""
    prepared = engine.prepare(frames, SETTINGS)
    teams = sorted(frames.register["team"].dropna().unique())
    reports = {None: engine.period_report(prepared)}
    reports |= {team: engine.period_report(prepared, team) for team in teams}
    return {scope: dict(r.kpis) for scope, r in reports.items()}, reports


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-9)


def changed(before: Values, after: Values) -> set[str]:
    """KPIs whose value differs in some scope."""
    return {
        name
        for scope, kpis in before.items()
        for name, value in kpis.items()
        if not same(value, after[scope][name])
    }


def declared(table: str) -> set[str]:
    return {n for n, k in registry().items() if table in k.needs | k.partial_without}


@pytest.mark.parametrize("table", OPTIONAL_TABLES)
def test_emptying_a_table_moves_exactly_the_kpis_that_declare_it(
    table: str, frames_of: Callable[[str | None], PeriodFrames]
) -> None:
    full, _ = values_of(frames_of(None))
    emptied, _ = values_of(frames_of(table))
    moved = changed(full, emptied)
    undeclared = moved - declared(table)
    assert not undeclared, f"KPIs read {table} but do not declare it: {sorted(undeclared)}"
    # and no KPI declares a table it does not read (the canonical data exercises each)
    assert {n for n in declared(table) - moved if (table, n) not in NOT_EXERCISED} == set()


@pytest.mark.parametrize("table", OPTIONAL_TABLES)
def test_an_absent_table_nulls_its_kpis_and_keeps_every_other_value(
    table: str, frames_of: Callable[[str | None], PeriodFrames]
) -> None:
    full, _ = values_of(frames_of(None))
    emptied, _ = values_of(frames_of(table))
    absent, reports = values_of(as_absent(frames_of(table), table))
    needing = {n for n, k in registry().items() if table in k.needs}
    for scope, kpis in absent.items():
        nulls = {name for name, value in kpis.items() if math.isnan(value)}
        # every KPI needing the table is null; other nulls are those of the full data
        assert needing <= nulls, scope
        full_nulls = {n for n, v in full[scope].items() if math.isnan(v)}
        assert nulls - needing <= full_nulls, scope
        for name, value in kpis.items():
            if name in needing:
                continue
            # partial KPIs are computed without the table: the emptied value
            want = emptied if table in registry()[name].partial_without else full
            assert same(value, want[scope][name]), (scope, name, value, want[scope][name])
    for report in reports.values():
        assert report.absent_tables == frozenset({table})
        assert dict(report.missing) == {n: (table,) for n in registry() if n in needing}
        assert set(report.partial) == declared(table) - needing


def test_mapped_but_empty_tables_give_real_zeros(
    frames_of: Callable[[str | None], PeriodFrames],
) -> None:
    """A mapped table without rows is a true 0, not missing data (0 tickets opened)."""
    values = {table: values_of(frames_of(table))[0][None] for table in OPTIONAL_TABLES}
    assert values["leads"]["leads_created"] == 0.0
    assert values["leads"]["leads_converted"] == 0.0
    assert math.isnan(values["leads"]["lead_conversion_rate"])  # 0 / 0 stays undefined
    assert values["tickets"]["complaints"] == 0.0
    assert values["tickets"]["open_complaints"] == 0.0
    assert values["touches"]["campaign_touches"] == 0.0
    assert values["touches"]["campaign_revenue"] == 0.0
    for table in OPTIONAL_TABLES:
        _, reports = values_of(frames_of(table))
        assert reports[None].missing == {}
        assert reports[None].partial == {}


def test_declarations_by_hand() -> None:
    """The dependencies read from each computation (not from the names)."""
    assert set(missing_kpis({"leads"})) == {
        "leads_created",
        "leads_converted",
        "lead_conversion_rate",
    }
    assert set(missing_kpis({"tickets"})) == {
        "complaints",
        "complaint_resolved_24h_rate",
        "open_complaints",
        "satisfaction_mean",
    }
    # cost is spread over touches and booked from the campaign rows: both are needed
    assert set(missing_kpis({"campaigns"})) == {"campaign_cost", "campaign_roi"}
    assert set(missing_kpis({"touches"})) == {
        "campaign_touches",
        "campaign_open_rate",
        "campaign_click_rate",
        "campaign_conversion_rate",
        "campaign_revenue",
        "campaign_cost",
        "campaign_roi",
        "opt_out_rate",
    }
    # churn warnings keep the quiet signal; only the complaint signal is lost
    assert set(partial_kpis({"tickets"})) == {
        "churn_warnings_count",
        "churn_warnings_high",
        "revenue_at_risk",
        "expected_value_at_risk",
    }
    assert missing_kpis({"campaigns", "touches"})["campaign_roi"] == ("campaigns", "touches")
    assert missing_kpis(()) == {}
    assert partial_kpis(()) == {}


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_every_reason_has_a_text_in_both_languages(language: str) -> None:
    for table in OPTIONAL_TABLES:
        assert absent_reason([table], language).strip()
    for kpi in registry().values():
        for table in kpi.partial_without:
            assert partial_reason([table], language).strip()
    assert absent_reason(["campaigns", "touches"], "en") == (
        "no campaigns mapped; no touches mapped"
    )
    assert absent_reason(["leads"], "zh-CN") == "未映射线索表"
