"""Dirty source data: the sql/checks/ checks on four databases, one report, reconciliation.

Two dirty databases are built from the canonical data (text ids) plus the rows planted
below, each commented with the checks it fails; every expected count is hand-counted
from these lists.

* ``warnings``: only data the KPIs handle by a documented rule (NULL, unknown and not
  yet registered customers, case variants of ids, refunds without an original order,
  future-dated orders, bad referrers, tickets/touches/leads of unknown customers). The
  run goes through and revenue reconciles exactly.
* ``errors``: the same plus data no rule can fix (duplicate ids, unknown statuses, bad
  amounts, a missing date, whitespace in ids). The run stops with one DataError that
  lists every failing check.

Tables are created without primary keys (duplicates must load) and, on MariaDB, with a
binary no-pad collation for ids so that MariaDB compares ids exactly like the others; a
separate test keeps MariaDB's default case-insensitive collation and expects the error
made for it. The canonical data itself (integer and text ids) must pass.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import BACKENDS, SERVER_BACKENDS, SQL_DIR, LoadedDb
from fixtures.canonical import AS_OF, canonical_frames, customer_key, load_canonical
from sqlalchemy import Column, MetaData, String, Table, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Engine

from crm_batch.app.engines import Databases
from crm_batch.app.kpis import backfill_snapshots, run_kpis
from crm_batch.app.reconciliation import BUCKETS, Reconciliation, SourceBucket, reconcile
from crm_batch.config import ThresholdSettings, load_settings
from crm_batch.errors import DataError, ExitCode, SqlContractError
from crm_batch.kpi.facts import customer_table
from crm_batch.periods import parse_period
from crm_batch.schema import SOURCE_TABLES, build_metadata
from crm_batch.source.db import make_engine
from crm_batch.source.extract import extract_as_of
from crm_batch.source.frames import SourceFrames
from crm_batch.source.quality import (
    CHECK_RULES,
    MAX_VALUE_CHARS,
    NOT_REGISTERED_QUERY,
    RECONCILIATION_QUERIES,
    TOTALS_QUERY,
    CheckResult,
    QualityReport,
    check_names,
    check_params,
    check_source,
    rules_markdown,
    show_value,
)
from crm_batch.source.sql_files import KNOWN_DIALECTS, SqlCatalog

CHECKS_DIR = SQL_DIR / "checks"
CATALOG = SqlCatalog(CHECKS_DIR)
#: The day of the run in these tests: "future-dated" means after 2026-07-15.
TODAY = date(2026, 7, 15)

_D = date
_TS = datetime


def _customer(
    customer_id: str | None,
    signup_date: date | None,
    referred_by: str | None = None,
    team: str = "North",
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "name": f"Planted {customer_id}",
        "team": team,
        "owner": "wang.lei",
        "region": "华北",
        "acquisition_channel": "web",
        "signup_date": signup_date,
        "birthday": None,
        "referred_by": referred_by,
        "phone": None,
        "email": None,
        "marketing_opt_out": False,
    }


def _order(
    order_id: str | None,
    customer_id: str | None,
    order_date: date | None,
    amount: float | None,
    status: str | None = "paid",
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "order_date": order_date,
        "amount": amount,
        "status": status,
        "channel": "web",
        "category": "tea",
    }


# Canonical text ids: customers "00001".."00017" except 9 = "1e3" and 10 = "C-10";
# "00016" signs up on T+1; "00005" is a prospect; "00003" (Chen) has only a refund.
# fmt: off
WARNING_ROWS: dict[str, list[dict[str, Any]]] = {
    "customers": [
        _customer("c-10", _D(2026, 1, 1)),                # case variant of "C-10"
        _customer("00018", None, team="South"),          # customers_missing_signup
        _customer("00019", _D(2026, 2, 1), "00019"),      # customers_bad_referrer (self)
        _customer("00020", _D(2026, 2, 1), "99999"),      # customers_bad_referrer (unknown)
        _customer("00022", _D(2026, 2, 1), team=""),             # customers_team_not_normal
        _customer("00023", _D(2026, 2, 1), team=" North "),      # customers_team_not_normal
        _customer("00024", _D(2026, 2, 1), team="North\nEast"),  # customers_team_not_normal
        _customer("00025", _D(2026, 2, 1), team="North  East"),  # customers_team_not_normal
        _customer("00026", _D(2026, 2, 1), team="North East"),   # fine: normal form
    ],
    "orders": [
        _order("W-1", None, _D(2026, 6, 1), 70.00),                  # orders_missing_customer
        _order("W-2", None, _D(2026, 6, 2), 20.00, "refunded"),      # orders_missing_customer
        _order("W-3", None, _D(2026, 6, 3), 5.00, "cancelled"),      # ignored: cancelled
        _order("W-4", "ZZZ-404", _D(2026, 5, 5), 300.00),            # orders_unknown_customer
        _order("W-5", "1E3", _D(2026, 5, 6), 11.00),                 # unknown (1e3 in another case)
        _order("W-6", "c-10", _D(2026, 6, 10), 33.00),               # c-10's own order
        _order("W-7", "00018", _D(2026, 5, 1), 40.00),               # unregistered (no signup)
        _order("W-8", "00016", _D(2026, 6, 15), 25.00),              # unregistered (signs up T+1)
        _order("W-9", "00001", _D(2099, 1, 1), 500.00),              # orders_future_dated
        _order("W-10", "00005", _D(2026, 6, 30), 9.90, "refunded"),  # refunds_without_order
        _order("W-11", "00004", _D(2026, 7, 10), 60.00),             # after T, not future
    ],
    "tickets": [
        {"ticket_id": "TK-W1", "customer_id": None, "opened_at": _TS(2026, 6, 1, 9),
         "resolved_at": None, "kind": "complaint", "satisfaction": None},
        {"ticket_id": "TK-W2", "customer_id": "ZZZ-404", "opened_at": _TS(2026, 6, 2, 10),
         "resolved_at": None, "kind": "inquiry", "satisfaction": None},
    ],
    "touches": [
        {"touch_id": "TC-W1", "campaign_id": "CMP-1", "customer_id": "ZZZ-404",
         "sent_at": _TS(2026, 4, 5, 9), "opened": False, "clicked": False, "opted_out": False},
    ],
    "leads": [
        {"lead_id": "L-W1", "created_at": _TS(2026, 4, 20, 10), "source": "web",
         "team": "North", "customer_id": "ZZZ-404"},                 # leads_unknown_customer
        {"lead_id": "L-W2", "created_at": _TS(2026, 4, 21, 10), "source": "web",
         "team": "North", "customer_id": None},                      # fine: not converted
    ],
}

ERROR_ROWS: dict[str, list[dict[str, Any]]] = {
    "customers": [
        _customer("00006", _D(2023, 3, 1), team="East"),  # customers_duplicate_id (x2)
        _customer(None, _D(2026, 1, 1)),                  # customers_duplicate_id (NULL id)
        _customer("00021 ", _D(2026, 1, 1)),              # customer_ids_whitespace
    ],
    "orders": [
        _order("O-101", "00001", _D(2026, 6, 30), 100.00),            # orders_duplicate_id (x2)
        _order(None, "00002", _D(2026, 6, 1), 10.00),                 # orders_duplicate_id (NULL)
        _order("E-3", "00001", _D(2026, 6, 1), 10.00, "shipped"),     # orders_unknown_status
        _order("E-4", "00001", _D(2026, 6, 2), 10.00, None),          # orders_unknown_status
        _order("E-5", "00001", _D(2026, 6, 3), 10.00, "PAID"),        # orders_unknown_status
        _order("E-6", "00007", _D(2026, 6, 5), -50.00),               # orders_bad_amount
        _order("E-7", "00001", _D(2026, 6, 20), 0.00, "refunded"),    # orders_bad_amount
        _order("E-8", "00008", _D(2026, 6, 6), None),                 # orders_bad_amount
        _order("E-9", "00001", _D(2026, 6, 7), -5.00, "cancelled"),   # fine: cancelled
        _order("E-10", "00001", None, 10.00),                         # orders_missing_date
        _order("E-11", " 00001", _D(2026, 6, 8), 10.00),              # orphan (padded id)
        _order("E-12", "00002\t", _D(2026, 6, 9), 10.00),             # orphan (padded id)
        _order("E-13", "", _D(2026, 6, 10), 10.00),                   # orphan (empty id)
    ],
}
# fmt: on

#: Failing rows per check in the ``warnings`` database; every other check finds 0.
EXPECTED_WARNINGS = {
    "customers_missing_signup": 1,  # 00018
    "customers_bad_referrer": 2,  # 00019 (self), 00020 (unknown)
    "customer_ids_case_variants": 2,  # C-10, c-10 (the order keyed 1E3 is an orphan)
    "orders_missing_customer": 2,  # W-1, W-2 (W-3 is cancelled)
    "orders_unknown_customer": 2,  # W-4, W-5
    "orders_unregistered_customer": 2,  # W-7, W-8
    "orders_future_dated": 1,  # W-9 (W-11 and canonical 106 are after T, not future)
    "refunds_without_order": 2,  # canonical 301 (Chen), W-10
    "tickets_unknown_customer": 2,  # TK-W1, TK-W2
    "touches_unknown_customer": 1,  # TC-W1
    "leads_unknown_customer": 1,  # L-W1
    "customers_team_not_normal": 4,  # 00022 '', 00023 padded, 00024 line feed, 00025 2 spaces
}
#: Failing rows per check in the ``errors`` database (the warnings' rows are there too).
EXPECTED_ERRORS = {
    **EXPECTED_WARNINGS,
    "customers_duplicate_id": 3,  # 00006 twice, NULL
    "customer_ids_whitespace": 1,  # "00021 " (orders' " 00001", "00002\t", "" are orphans)
    "orders_duplicate_id": 3,  # O-101 twice, NULL
    "orders_unknown_status": 3,  # shipped, NULL, PAID
    "orders_bad_amount": 3,  # E-6, E-7, E-8
    "orders_missing_date": 1,  # E-10
    "orders_unknown_customer": 5,  # W-4, W-5, E-11, E-12, E-13
}
ERROR_CHECKS = {name for name, rule in CHECK_RULES.items() if rule.severity == "error"}

#: Reconciliation of the ``warnings`` database as of T: (rows, paid orders, net revenue).
#: Canonical: 21 paid + 3 refunded rows of registered customers, net 196,551.03, and
#: order 106 (T+1, 999.00).
EXPECTED_BUCKETS = {
    "attributed": SourceBucket(26, 22, 196_551.03 + 33.00 - 9.90),  # + W-6, - W-10
    "no_customer": SourceBucket(2, 1, 70.00 - 20.00),  # W-1, W-2
    "unknown_customer": SourceBucket(2, 2, 300.00 + 11.00),  # W-4, W-5
    "unregistered_customer": SourceBucket(2, 2, 40.00 + 25.00),  # W-7, W-8
    "after_as_of": SourceBucket(3, 3, 999.00 + 500.00 + 60.00),  # 106, W-9, W-11
    "undated": SourceBucket(0, 0, 0.0),
}


def dirty_frames(kind: str) -> dict[str, pd.DataFrame]:
    """Canonical frames (text ids) plus the warning rows, and the error rows for 'errors'."""
    frames = canonical_frames("text")
    planted = [WARNING_ROWS] + ([ERROR_ROWS] if kind == "errors" else [])
    for rows_by_table in planted:
        for table, rows in rows_by_table.items():
            frame = frames[table]
            extra = pd.DataFrame(rows, columns=frame.columns).astype(frame.dtypes.to_dict())
            frames[table] = pd.concat([frame, extra], ignore_index=True)
    return frames


def create_loose_tables(engine: Engine, *, exact_ids: bool) -> None:
    """The canonical tables with every column nullable and no keys or indexes.

    ``exact_ids``: on MySQL/MariaDB, id columns compare bytes (utf8mb4_nopad_bin) as on
    the other databases; otherwise they keep the server's default collation.
    """
    id_type: Any = String(64)
    if exact_ids:
        id_type = id_type.with_variant(
            mysql.VARCHAR(64, collation="utf8mb4_nopad_bin"), "mysql", "mariadb"
        )
    strict = build_metadata(id_type)
    loose = MetaData()
    for name in SOURCE_TABLES:
        columns = [Column(c.name, c.type, nullable=True) for c in strict.tables[name].columns]
        Table(name, loose, *columns)
    loose.create_all(engine)


@dataclass
class DirtyDb:
    backend: str
    url: URL
    engine: Engine
    frames: dict[str, pd.DataFrame]


@pytest.fixture(scope="session")
def dirty_db_factory(
    db_url_factory: Callable[[str], URL],
) -> Iterator[Callable[[str, str], DirtyDb]]:
    """``get(backend, kind)``: a database with the ``warnings`` or ``errors`` rows, cached.

    kind ``case_insensitive`` is ``warnings`` with the server's default id collation.
    """
    cache: dict[tuple[str, str], DirtyDb] = {}

    def get(backend: str, kind: str) -> DirtyDb:
        if (backend, kind) not in cache:
            url = db_url_factory(backend)
            engine = make_engine(url, connect_timeout=5, statement_timeout=120)
            frames = dirty_frames("errors" if kind == "errors" else "warnings")
            create_loose_tables(engine, exact_ids=kind != "case_insensitive")
            load_canonical(engine, frames, "text")  # inserts into the tables made above
            cache[backend, kind] = DirtyDb(backend, url, engine, frames)
        return cache[backend, kind]

    yield get
    for db in cache.values():
        db.engine.dispose()


def _backend_params() -> list[Any]:
    return [
        pytest.param(b, id=b, marks=[getattr(pytest.mark, b)] if b in SERVER_BACKENDS else [])
        for b in BACKENDS
    ]


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    """Each of duckdb, sqlite, postgres, mariadb (servers skip when down)."""
    return request.param


def _all_counts(expected: dict[str, int]) -> dict[str, int]:
    return {name: expected.get(name, 0) for name in check_names(CATALOG)}


def _table_as_of(engine: Engine) -> pd.DataFrame:
    return customer_table(_frames_as_of(engine), AS_OF)


def _frames_as_of(engine: Engine) -> SourceFrames:
    return extract_as_of(engine, SqlCatalog(SQL_DIR), AS_OF, ThresholdSettings())


def _reconcile(engine: Engine) -> Reconciliation:
    frames = _frames_as_of(engine)
    return reconcile(engine, CHECKS_DIR, AS_OF, frames.facts, customer_table(frames, AS_OF))


def _settings(url: URL, tmp_path: Path) -> Any:
    return load_settings(
        database_url=url.render_as_string(hide_password=False), environ={}, cwd=tmp_path
    )


# -- the files -------------------------------------------------------------------------


def test_every_check_file_keeps_the_check_contract() -> None:
    """Each check (and each dialect variant) starts with failing_rows and binds sample_rows;
    every shipped check has a registered rule, and every rule a file (the README table)."""
    names = check_names(CATALOG)
    assert set(names) == set(CHECK_RULES)
    assert not set(RECONCILIATION_QUERIES) & set(names)
    for name in names:
        for dialect in ("", *KNOWN_DIALECTS):
            query = CATALOG.get(name, dialect)
            assert (query.columns[0].name, query.columns[0].type) == ("failing_rows", "int")
            assert "sample_rows" in query.param_names, query.path
    assert [c.name for c in CATALOG.get(NOT_REGISTERED_QUERY).columns] == ["customer_id"]
    assert [c.name for c in CATALOG.get(TOTALS_QUERY).columns] == [
        "date_class",
        "order_rows",
        "paid_orders",
        "net_revenue",
    ]


def test_future_means_after_the_later_of_t_plus_one_and_today() -> None:
    assert check_params(AS_OF)["future_after"] == date(2026, 7, 1)
    assert check_params(AS_OF, TODAY)["future_after"] == TODAY
    assert check_params(AS_OF, date(2026, 1, 1))["future_after"] == date(2026, 7, 1)  # backfill


def test_a_check_without_failing_rows_first_is_a_contract_error(tmp_path: Path) -> None:
    (tmp_path / "odd.sql").write_text(
        "-- odd: A check that forgot its count.\n-- columns:\n--   customer_id id: x\n"
        "select customer_id from customers\n",
        encoding="utf-8",
    )
    engine = make_engine(f"duckdb:///{(tmp_path / 'x.duckdb').as_posix()}")
    with pytest.raises(SqlContractError, match="failing_rows int"):
        check_source(engine, tmp_path, AS_OF)
    engine.dispose()


# -- clean data ------------------------------------------------------------------------


def test_canonical_data_passes(canonical_db: LoadedDb) -> None:
    """No error; the one finding is Chen's refund without an order, a canonical edge case
    that the KPIs handle by rule (and that the KPI tests rely on)."""
    report = check_source(canonical_db.engine, CHECKS_DIR, AS_OF, today=TODAY)
    assert report.errors == []
    assert report.counts() == _all_counts({"refunds_without_order": 1})
    [finding] = report.warnings
    assert finding.sample["customer_id"].tolist() == [customer_key(3, canonical_db.id_type)]
    report.raise_for_errors()  # does not raise

    result = _reconcile(canonical_db.engine)
    assert result.ok, result.render_text()
    assert result.buckets["attributed"].net_revenue == pytest.approx(196_551.03, abs=1e-6)
    assert result.buckets["after_as_of"] == SourceBucket(1, 1, 999.00)
    assert result.source_revenue == pytest.approx(196_551.03 + 999.00, abs=1e-6)


# -- dirty data ------------------------------------------------------------------------


def test_team_names_not_in_normal_form_are_named_by_the_check(
    backend: str, dirty_db_factory: Callable[[str, str], DirtyDb]
) -> None:
    """Empty, padded, multi-line and double-spaced team names are listed with their
    customer; a clean name and NULL (no team: the unassigned scope) are not."""
    db = dirty_db_factory(backend, "warnings")
    report = check_source(db.engine, CHECKS_DIR, AS_OF, today=TODAY)
    [result] = [r for r in report.warnings if r.name == "customers_team_not_normal"]
    assert result.sample["customer_id"].tolist() == ["00022", "00023", "00024", "00025"]
    lines = result.sample_lines()
    assert "customer_id='00024', team='North\\x0aEast'" in lines
    assert "team=' North '" in lines[1]
    assert any(
        line.startswith("data warning customers_team_not_normal: 4 found")
        for line in (report.warning_lines())
    )


def test_every_check_finds_exactly_the_planted_rows(
    backend: str, dirty_db_factory: Callable[[str, str], DirtyDb]
) -> None:
    db = dirty_db_factory(backend, "errors")
    report = check_source(db.engine, CHECKS_DIR, AS_OF, today=TODAY)
    assert report.counts() == _all_counts(EXPECTED_ERRORS)
    samples = {r.name: r.sample for r in report.results}
    assert sorted(samples["orders_unknown_status"]["status"].fillna("NULL")) == [
        "NULL",
        "PAID",
        "shipped",
    ]
    assert samples["customer_ids_whitespace"]["customer_id"].tolist() == ["00021 "]
    [variants] = samples["customer_ids_case_variants"].to_dict("records")
    assert {variants["customer_id"], variants["other_id"]} == {"C-10", "c-10"}
    assert variants["variants"] == 2
    assert sorted(samples["orders_unknown_customer"]["customer_id"]) == [
        "",
        " 00001",
        "00002\t",
        "1E3",
        "ZZZ-404",
    ]
    assert sorted(samples["orders_bad_amount"]["order_id"]) == ["E-6", "E-7", "E-8"]
    duplicates = samples["orders_duplicate_id"]
    assert duplicates["order_id"].isna().sum() == 1
    assert duplicates.fillna({"order_id": "NULL"}).set_index("order_id")[
        "order_rows"
    ].to_dict() == {"O-101": 2, "NULL": 1}
    customers = samples["customers_duplicate_id"]
    assert customers.fillna({"customer_id": "NULL"}).set_index("customer_id")[
        "customer_rows"
    ].to_dict() == {"00006": 2, "NULL": 1}
    referrers = samples["customers_bad_referrer"].set_index("customer_id")["problem"]
    assert referrers.to_dict() == {"00019": "self", "00020": "unknown"}


def test_dirty_data_is_rejected_with_one_report(
    backend: str, dirty_db_factory: Callable[[str, str], DirtyDb], tmp_path: Path
) -> None:
    db = dirty_db_factory(backend, "errors")
    report = check_source(db.engine, CHECKS_DIR, AS_OF, today=TODAY)
    assert {r.name for r in report.errors} == {n for n in EXPECTED_ERRORS if n in ERROR_CHECKS}
    with pytest.raises(DataError) as raised:
        report.raise_for_errors()
    message = str(raised.value)
    assert raised.value.exit_code == ExitCode.DATA
    for name in EXPECTED_ERRORS:  # every failing check, errors and warnings, in one message
        assert f" {name}: " in message
    assert "order_id='O-101', order_rows=2" in message
    assert "customer_id='00002\\x09'" in message  # the tab is shown, not sent to the terminal
    assert "status=NULL" in message

    # the KPI run stops before extracting anything, with the same report
    with pytest.raises(DataError, match="orders_duplicate_id") as stopped:
        run_kpis(_settings(db.url, tmp_path), db.engine, AS_OF, parse_period("2026Q2"))
    for name in EXPECTED_ERRORS:
        assert f" {name}: " in str(stopped.value)


def test_warnings_only_data_runs_with_the_documented_handling(
    backend: str,
    dirty_db_factory: Callable[[str, str], DirtyDb],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = dirty_db_factory(backend, "warnings")
    report = check_source(db.engine, CHECKS_DIR, AS_OF, today=TODAY)
    assert report.errors == []
    assert report.counts() == _all_counts(EXPECTED_WARNINGS)
    report.raise_for_errors()

    table = _table_as_of(db.engine).set_index("customer_id")
    # ids are case-sensitive: c-10 is its own customer, C-10 (Lin) still never bought
    assert table.loc["c-10", "revenue_total"] == pytest.approx(33.00)
    assert table.loc["C-10", "revenue_total"] == 0
    # a refund without an original order lowers revenue; the customer is not a buyer
    assert table.loc["00005", "revenue_total"] == pytest.approx(-9.90)
    assert not table.loc["00005", "has_paid_order"]
    # customers not registered on T and unknown ids are not in the table
    assert not {"00016", "00018", "ZZZ-404", "1E3"} & set(table.index)
    # a future-dated order changes no window
    assert table.loc["00001", "revenue_total"] == pytest.approx(1500.00)

    with caplog.at_level(logging.INFO, logger="crm_batch"):  # checks and reconciliation
        run = run_kpis(
            _settings(db.url, tmp_path), db.engine, AS_OF, parse_period("2026Q2"), all_teams=True
        )
    # 16 after T; 18 unsigned; 19, 20 and the five planted teams' customers registered
    assert run.reports[None].kpis["customers_total"] == 17 - 1 + 3 + 5
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    nobody = [line for line in lines if "have no team" in line]
    assert nobody == [
        "2 customers have no team (e.g. ids 00015, 00022): they are the (unassigned) scope, "
        "with its own workbook and report; set their team at the source (customers.team)"
    ]
    assert sorted(line.split(":")[0] for line in lines if line not in nobody) == sorted(
        f"data warning {name}" for name in EXPECTED_WARNINGS
    )
    # one team whatever the spelling; the customers without a team are their own scope
    teams = set(run.reports) - {None}
    assert {"North", "North East", "(unassigned)"} <= teams
    assert not any(name != name.strip() or "\n" in name or "  " in name for name in teams)
    assert run.unassigned == 2
    assert any("reconciles" in r.getMessage() for r in caplog.records)


def test_a_backfill_checks_the_source_once_and_reconciles_every_date(
    dirty_db_factory: Callable[[str, str], DirtyDb],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """N backfill dates: the checks run once (errors stop it before any snapshot), while
    each date still logs its reconciliation line."""
    computed_at = datetime(2026, 7, 1, 2, 0)
    dates = [date(2025, 12, 31), date(2026, 3, 31), AS_OF]
    bad = dirty_db_factory("duckdb", "errors")
    with pytest.raises(DataError, match="orders_duplicate_id") as stopped:
        backfill_snapshots(
            _settings(bad.url, tmp_path), Databases.single(bad.engine), dates, computed_at
        )
    assert stopped.value.exit_code == ExitCode.DATA
    with bad.engine.connect() as conn:  # stopped before the first date's snapshots
        assert conn.execute(text("select count(*) from kpi_snapshots")).scalar() == 0

    db = dirty_db_factory("duckdb", "warnings")
    with caplog.at_level(logging.INFO, logger="crm_batch"):  # checks and reconciliation
        rows = backfill_snapshots(
            _settings(db.url, tmp_path), Databases.single(db.engine), dates, computed_at
        )
    assert rows > 0
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if m.startswith("data checks as of")] == [
        m for m in messages if m.startswith(f"data checks as of {AS_OF.isoformat()}")
    ]
    assert sum(m.startswith("data checks as of") for m in messages) == 1
    warned = [m.split(":")[0] for m in messages if m.startswith("data warning")]
    assert sorted(warned) == sorted(f"data warning {name}" for name in EXPECTED_WARNINGS)
    reconciled = [m for m in messages if m.startswith("revenue as of")]
    assert [m.split(" ")[3] for m in reconciled] == [d.isoformat() for d in dates]


def test_totals_reconcile_with_the_source(
    backend: str, dirty_db_factory: Callable[[str, str], DirtyDb]
) -> None:
    """Source total = attributed (= the KPIs' total) + each documented exclusion."""
    db = dirty_db_factory(backend, "warnings")
    result = _reconcile(db.engine)
    assert result.ok, result.render_text()
    assert set(result.buckets) == set(BUCKETS)
    for key, expected in EXPECTED_BUCKETS.items():
        got = result.buckets[key]
        assert (got.order_rows, got.paid_orders) == (expected.order_rows, expected.paid_orders)
        assert got.net_revenue == pytest.approx(expected.net_revenue, abs=1e-6), key
    assert result.kpi_revenue == pytest.approx(196_574.13, abs=1e-6)
    assert result.kpi_orders == 22

    # the source total, computed here from the rows loaded, is fully accounted for
    orders = db.frames["orders"]
    counted = orders[orders["status"].isin(["paid", "refunded"]).fillna(False)]
    signed = counted["amount"].where(counted["status"] == "paid", -counted["amount"])
    assert result.source_revenue == pytest.approx(signed.sum(), abs=1e-6)
    assert result.source_revenue == pytest.approx(198_559.13, abs=1e-6)
    assert result.source_orders == int((counted["status"] == "paid").sum()) == 30
    when = pd.to_datetime(counted["order_date"])
    dated = counted[when.notna() & (when <= pd.Timestamp(AS_OF))]
    assert result.dated.order_rows == len(dated) == result.facts.order_rows

    # a facts row lost between the database and the KPIs is named, not hidden
    frames = _frames_as_of(db.engine)
    lost = reconcile(
        db.engine, CHECKS_DIR, AS_OF, frames.facts.iloc[1:], customer_table(frames, AS_OF)
    )
    assert not lost.ok
    assert "does NOT reconcile (the customer facts hold" in lost.render_text()


@pytest.mark.mariadb
def test_mariadb_case_insensitive_ids_are_an_error(
    dirty_db_factory: Callable[[str, str], DirtyDb],
) -> None:
    """With MariaDB's default collation the database itself merges C-10 and c-10, 1e3 and
    1E3, so its joins would disagree with crm-batch's exact keys: the run stops."""
    db = dirty_db_factory("mariadb", "case_insensitive")
    report = check_source(db.engine, CHECKS_DIR, AS_OF, today=TODAY)
    merged = {r.name: r for r in report.results}["customer_ids_merged_by_database"]
    assert merged.failing == 2
    pairs = {frozenset(pair) for pair in merged.sample[["customer_id", "other_id"]].values}
    assert pairs == {frozenset({"C-10", "c-10"}), frozenset({"1E3", "1e3"})}
    # for this database C-10 and c-10 are one key, held by two customer rows
    assert report.counts()["customers_duplicate_id"] == 2
    assert {r.name for r in report.errors} == {
        "customer_ids_merged_by_database",
        "customers_duplicate_id",
    }
    assert report.counts()["customer_ids_case_variants"] == 2  # as on the other databases
    with pytest.raises(DataError, match="customer_ids_merged_by_database"):
        report.raise_for_errors()


# -- the report's text -----------------------------------------------------------------


def _report(values: list[Any], kind: str = "text") -> QualityReport:
    sample = pd.DataFrame({"value": pd.Series(values, dtype="object")})
    result = CheckResult(
        name="hostile",
        severity="error",
        failing=len(values) + 10,
        sample=sample,
        column_types={"value": kind},
        description="Hostile\x1b[2J values.",
        rule="Stop.",
    )
    return QualityReport(AS_OF, "duckdb:///x", (result,))


def test_report_text_is_safe_for_terminals_and_bounded() -> None:
    long = "客" * 500
    report = _report(["\x1b[31mred\x1b[0m", "two\nlines", "\u202eevil", long, "it's", None])
    text = report.render_text()
    lines = text.split("\n")
    assert all(not unicodedata.category(ch).startswith("C") for line in lines for ch in line), (
        "control characters must be escaped"
    )
    assert "value='\\x1b[31mred\\x1b[0m'" in text
    assert "value='two\\x0alines'" in text
    assert "value='\\u202eevil'" in text
    assert "value='it\\'s'" in text
    assert "value=NULL" in text
    assert "Hostile\\x1b[2J values." in text
    assert f"'{'客' * MAX_VALUE_CHARS}'... (500 chars)" in text
    assert "(examples; 16 found in all)" in text
    assert len(max(lines, key=len)) < 200


def test_values_are_shown_by_their_column_type() -> None:
    assert show_value(12.5, "money") == "12.50"
    assert show_value(pd.Timestamp("2026-06-30"), "date") == "2026-06-30"
    assert show_value(pd.Timestamp("2026-06-30 08:15"), "timestamp") == "2026-06-30 08:15:00"
    assert show_value(pd.NaT, "date") == "NULL"
    assert show_value(float("nan"), "money") == "NULL"
    assert show_value(7, "int") == "7"
    assert show_value("", "id") == "''"


def test_reconciliation_text_names_a_difference() -> None:
    buckets = {key: SourceBucket(0, 0, 0.0) for key in BUCKETS}
    buckets["attributed"] = SourceBucket(3, 2, 100.0)
    buckets["no_customer"] = SourceBucket(1, 1, 5.0)
    dated = SourceBucket(4, 3, 105.0)
    good = Reconciliation(AS_OF, buckets, kpi_revenue=100.0, kpi_orders=2, dated=dated)
    assert good.ok
    assert good.render_text().startswith(
        "revenue as of 2026-06-30 reconciles: source 105.00 = registered customers 100.00 "
        "+ no customer 5.00; KPIs 100.00"
    )
    bad = Reconciliation(AS_OF, buckets, kpi_revenue=99.0, kpi_orders=2, dated=dated)
    assert not bad.ok
    assert "does NOT reconcile (revenue differs by 1.00, orders by 0)" in bad.render_text()


def test_rules_table_lists_every_check_with_its_severity() -> None:
    table = rules_markdown(CHECKS_DIR).splitlines()
    assert table[0] == "| check | severity | finds | rule |"
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ")[1] for line in table[2:]}
    assert rows == {name: rule.severity for name, rule in CHECK_RULES.items()}
