"""A company's own schema, mapped only through the six mapping files, gives the KPIs of
the canonical load (issue 12).

The canonical test data (tests/fixtures/canonical.py) is re-expressed in a foreign
schema: other table and column names, text ids with a prefix, amounts and costs in
cents as integers, timestamps where the canonical model has dates, Chinese status and
ticket-kind codes, flags as 'Y'/'N' or 0/1, and receipt lines instead of orders (each
order split over two or three lines that the mapping sums back). The KPI JSON of the
`kpis` service (data checks, the by-team results and the target tables included) must
be identical to the one of the canonical load on the same database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import BACKENDS, SERVER_BACKENDS, LoadedDb
from fixtures.canonical import AS_OF, PERIOD_LABEL
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.engine import URL

from crm_batch.app.kpis import compute
from crm_batch.config import ENV_SOURCE_DIR, load_settings
from crm_batch.exports.kpis import as_json
from crm_batch.periods import parse_period
from crm_batch.schema import LONG_TEXT
from crm_batch.source.db import make_engine

STATUS_CODES = {"paid": "已付款", "refunded": "已退款", "cancelled": "已取消"}
TICKET_KINDS = {"complaint": "投诉", "inquiry": "咨询"}
#: the time of day the foreign system stamps on what the canonical model keeps as a date
SALE_TIME = time(14, 35, 7)
SIGNUP_TIME = time(9, 15)


def foreign_metadata() -> MetaData:
    """The company's own tables (nothing in common with the canonical names)."""
    md = MetaData()
    code = String(16)
    Table(
        "crm_member",
        md,
        Column("member_code", code, primary_key=True),
        Column("member_name", LONG_TEXT),
        Column("sales_group", String(64)),
        Column("rep", String(64)),
        Column("area", String(64)),
        Column("came_from", String(32)),
        Column("joined_at", DateTime),
        Column("born_on", Date),
        Column("introduced_by", code),
        Column("mobile", String(32)),
        Column("mail", String(254)),
        Column("no_marketing", String(1)),
    )
    Table(
        "pos_receipt_line",
        md,
        Column("line_id", Integer, primary_key=True, autoincrement=False),
        Column("receipt_no", code, nullable=False),
        Column("member_code", code),
        Column("sold_at", DateTime),
        Column("qty", Integer, nullable=False),
        Column("unit_cents", BigInteger, nullable=False),
        Column("state", String(16)),
        Column("till", String(32)),
        Column("goods_group", String(64)),
    )
    Table(
        "crm_prospect",
        md,
        Column("prospect_no", code, primary_key=True),
        Column("logged_at", DateTime),
        Column("origin", String(32)),
        Column("sales_group", String(64)),
        Column("member_code", code),
    )
    Table(
        "svc_case",
        md,
        Column("case_no", code, primary_key=True),
        Column("member_code", code),
        Column("opened_ts", DateTime),
        Column("closed_ts", DateTime),
        Column("case_type", String(8)),
        Column("score", Integer),
    )
    Table(
        "mkt_activity",
        md,
        Column("act_code", code, primary_key=True),
        Column("title", LONG_TEXT),
        Column("medium", String(16)),
        Column("cost_cents", BigInteger),
        Column("launched_at", DateTime),
    )
    Table(
        "mkt_send",
        md,
        Column("send_no", code, primary_key=True),
        Column("act_code", code),
        Column("member_code", code),
        Column("sent_ts", DateTime),
        Column("was_opened", Integer),
        Column("was_clicked", Integer),
        Column("unsubscribed", Integer),
        Column("holdout", String(1)),  # 'Y' = control group member, not sent
    )
    return md


def mapping_files(dialect: str) -> dict[str, str]:
    """The six mapping files for the foreign schema, in ``dialect``'s SQL."""

    def day(expr: str) -> str:
        return f"date({expr})" if dialect == "sqlite" else f"cast({expr} as date)"

    def money(cents: str) -> str:
        return f"cast({cents} / 100.0 as decimal(14, 2))"

    status = " ".join(f"when '{code}' then '{name}'" for name, code in STATUS_CODES.items())
    kind = " ".join(f"when '{code}' then '{name}'" for name, code in TICKET_KINDS.items())
    return {
        "customers": f"""-- customers: our member register
select
    m.member_code as customer_id, m.member_name as name, m.sales_group as team,
    m.rep as owner, m.area as region, m.came_from as acquisition_channel,
    {day("m.joined_at")} as signup_date, m.born_on as birthday,
    m.introduced_by as referred_by, m.mobile as phone, m.mail as email,
    (m.no_marketing = 'Y') as marketing_opt_out
from crm_member as m
""",
        "orders": f"""-- orders: receipt lines summed per receipt, statuses recoded
select
    l.receipt_no as order_id,
    min(l.member_code) as customer_id,
    {day("min(l.sold_at)")} as order_date,
    {money("sum(l.qty * l.unit_cents)")} as amount,
    case min(l.state) {status} end as status,
    min(l.till) as channel,
    min(l.goods_group) as category
from pos_receipt_line as l
group by l.receipt_no;
""",
        "leads": """select p.prospect_no as lead_id, p.logged_at as created_at,
    p.origin as source, p.sales_group as team, p.member_code as customer_id
from crm_prospect as p  -- a trailing comment
""",
        "tickets": f"""select
    c.case_no as ticket_id, c.member_code as customer_id, c.opened_ts as opened_at,
    c.closed_ts as resolved_at, case c.case_type {kind} end as kind,
    c.score as satisfaction
from svc_case as c
""",
        "campaigns": f"""select a.act_code as campaign_id, a.title as name,
    a.medium as channel, {money("a.cost_cents")} as cost, a.launched_at as started_at
from mkt_activity as a
""",
        "touches": """select s.send_no as touch_id, s.act_code as campaign_id,
    s.member_code as customer_id, s.sent_ts as sent_at, (s.was_opened = 1) as opened,
    (s.was_clicked = 1) as clicked, (s.unsubscribed = 1) as opted_out,
    case when s.holdout = 'Y' then true else false end as is_control
from mkt_send as s
""",
    }


def _key(prefix: str, value: Any) -> str | None:
    return None if pd.isna(value) else f"{prefix}-{int(value):05d}"


def _value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _at(day: Any, clock: time) -> datetime | None:
    return None if pd.isna(day) else datetime.combine(pd.Timestamp(day).date(), clock)


def _cents(amount: Any) -> int:
    return round(float(amount) * 100)


def receipt_lines(orders: pd.DataFrame) -> list[dict[str, Any]]:
    """Each order as two lines (half and the rest), or one line of three equal units."""
    lines: list[dict[str, Any]] = []
    for order in orders.itertuples(index=False):
        cents = _cents(order.amount)
        parts = [(3, cents // 3)] if cents % 3 == 0 else [(1, cents // 2), (1, cents - cents // 2)]
        for qty, unit in parts:
            lines.append(
                {
                    "line_id": len(lines) + 1,
                    "receipt_no": _key("R", order.order_id),
                    "member_code": _key("C", order.customer_id),
                    "sold_at": _at(order.order_date, SALE_TIME),
                    "qty": qty,
                    "unit_cents": unit,
                    "state": STATUS_CODES.get(order.status, order.status),
                    "till": _value(order.channel),
                    "goods_group": _value(order.category),
                }
            )
    return lines


def foreign_rows(frames: dict[str, pd.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    """The canonical frames (integer ids) as rows of the foreign tables."""
    c, leads, t = frames["customers"], frames["leads"], frames["tickets"]
    m, s = frames["campaigns"], frames["touches"]
    flag = {True: "Y", False: "N"}
    return {
        "crm_member": [
            {
                "member_code": _key("C", r.customer_id),
                "member_name": _value(r.name),
                "sales_group": _value(r.team),
                "rep": _value(r.owner),
                "area": _value(r.region),
                "came_from": _value(r.acquisition_channel),
                "joined_at": _at(r.signup_date, SIGNUP_TIME),
                "born_on": None if pd.isna(r.birthday) else r.birthday.date(),
                "introduced_by": _key("C", r.referred_by),
                "mobile": _value(r.phone),
                "mail": _value(r.email),
                "no_marketing": flag[bool(r.marketing_opt_out)],
            }
            for r in c.itertuples(index=False)
        ],
        "pos_receipt_line": receipt_lines(frames["orders"]),
        "crm_prospect": [
            {
                "prospect_no": _key("L", r.lead_id),
                "logged_at": _value(r.created_at),
                "origin": _value(r.source),
                "sales_group": _value(r.team),
                "member_code": _key("C", r.customer_id),
            }
            for r in leads.itertuples(index=False)
        ],
        "svc_case": [
            {
                "case_no": _key("T", r.ticket_id),
                "member_code": _key("C", r.customer_id),
                "opened_ts": _value(r.opened_at),
                "closed_ts": _value(r.resolved_at),
                "case_type": TICKET_KINDS.get(r.kind, r.kind),
                "score": _value(r.satisfaction),
            }
            for r in t.itertuples(index=False)
        ],
        "mkt_activity": [
            {
                "act_code": _key("A", r.campaign_id),
                "title": _value(r.name),
                "medium": _value(r.channel),
                "cost_cents": _cents(r.cost),
                "launched_at": _value(r.started_at),
            }
            for r in m.itertuples(index=False)
        ],
        "mkt_send": [
            {
                "send_no": _key("S", r.touch_id),
                "act_code": _key("A", r.campaign_id),
                "member_code": _key("C", r.customer_id),
                "sent_ts": _value(r.sent_at),
                "was_opened": int(bool(r.opened)),
                "was_clicked": int(bool(r.clicked)),
                "unsubscribed": int(bool(r.opted_out)),
                "holdout": "Y" if r.is_control else "N",
            }
            for r in s.itertuples(index=False)
        ],
    }


def load_foreign(url: URL, frames: dict[str, pd.DataFrame]) -> None:
    """Create the foreign tables at ``url`` and fill them from the canonical frames."""
    metadata = foreign_metadata()
    engine = make_engine(url, connect_timeout=5, statement_timeout=120)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for name, rows in foreign_rows(frames).items():
                if rows:
                    conn.execute(metadata.tables[name].insert(), rows)
    finally:
        engine.dispose()


def write_mapping(folder: Path, dialect: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in mapping_files(dialect).items():
        (folder / f"{name}.sql").write_text(sql, encoding="utf-8")
    return folder


def kpi_json(url: URL, source_dir: Path | None) -> dict[str, Any]:
    """What `run_batch.py kpis --by-team --targets --format json` prints for 2026Q2 as of
    T, through the mapping folder ``source_dir`` (None: the shipped one)."""
    environ = {ENV_SOURCE_DIR: str(source_dir)} if source_dir is not None else {}
    database_url = url.render_as_string(hide_password=False)
    settings = load_settings(None, database_url=database_url, environ=environ)
    result = compute(settings, AS_OF, parse_period(PERIOD_LABEL), all_teams=True, with_targets=True)
    return json.loads(as_json(result.run, result.targets))


def _param(backend: str) -> object:
    marks = [getattr(pytest.mark, backend)] if backend in SERVER_BACKENDS else []
    return pytest.param(backend, id=backend, marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])
def test_a_foreign_schema_mapped_through_six_files_gives_the_canonical_kpis(
    backend: str,
    loaded_db_factory: Callable[..., LoadedDb],
    db_url_factory: Callable[[str], URL],
    tmp_path: Path,
) -> None:
    canonical = loaded_db_factory(backend, "int")
    url = db_url_factory(backend)
    load_foreign(url, canonical.frames)
    dialect = canonical.engine.dialect.name
    folder = write_mapping(tmp_path / "source", dialect)

    ours = kpi_json(url, folder)
    theirs = kpi_json(canonical.url, None)

    assert ours == theirs
    overall = ours["results"][0]
    assert overall["scope"] == "all"
    # the foreign data really went through the mapping: revenue and campaigns are there
    kpis = overall["kpis"]
    assert kpis["revenue_12m"] > 0
    assert kpis["leads_created"] > 0
    assert kpis["complaints"] > 0
    assert any(value for name, value in kpis.items() if name.startswith("campaign"))
    assert {r["team"] for r in ours["results"][1:]} >= {"North", "South", "East", "West"}


def test_the_foreign_rows_carry_no_canonical_key_or_date(
    loaded_db_factory: Callable[..., LoadedDb],
) -> None:
    """The fixture itself: prefixed text ids, cents, timestamps, Chinese codes, lines."""
    frames = loaded_db_factory("duckdb", "int").frames
    rows = foreign_rows(frames)
    lines = rows["pos_receipt_line"]
    assert len(lines) > len(frames["orders"])  # receipt lines, not orders
    assert {line["state"] for line in lines} == set(STATUS_CODES.values())
    assert all(line["member_code"].startswith("C-") for line in lines)
    assert all(isinstance(line["sold_at"], datetime) for line in lines)
    assert all(isinstance(line["unit_cents"], int) for line in lines)
    total = sum(line["qty"] * line["unit_cents"] for line in lines)
    assert total == sum(_cents(a) for a in frames["orders"]["amount"])
    assert all(r["joined_at"].time() == SIGNUP_TIME for r in rows["crm_member"])
    assert {r["case_type"] for r in rows["svc_case"]} == set(TICKET_KINDS.values())
