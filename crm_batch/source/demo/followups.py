"""The demo sales reps' follow-ups: what they typed into their workbooks in the last weeks.

A real company's follow-ups come from the team workbooks (the Follow-ups sheet, saved by
the Save button or harvested at night); a fresh demo would have none, and its call lists,
call sheets and "contacted" tiles would show only dashes. So the demo's reps have called
some of their quiet customers (a paid order, none in the last two months: the customers
the churn warnings list) over the :data:`DAYS` days before the end date: at most
:data:`PER_OWNER` each, with an outcome, a short note in Chinese and, where the call
calls for one, the next contact date (some already overdue).

The rows are drawn from their own random stream (the demo's seed and a salt), so the
six source tables are the same with or without them. The caller stores them in the
state database as the Save button would (:func:`crm_batch.app.demo.store_demo_followups`).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm_batch.source.demo.model import DemoData

#: Days before the end date the reps' calls fall on (the end date itself excluded).
DAYS = 20
#: Follow-ups per sales rep at most.
PER_OWNER = 12
#: The quiet customers a rep calls: a paid order, but none in this many days.
QUIET_DAYS = 60
#: Salt of the follow-ups' random stream.
_SALT = 7_0601

#: Outcome, its share of calls, the days until the next contact (None: no next contact)
#: and the notes a rep writes for it. No "ordered" or "complaint": those would need an
#: order or a ticket in the source tables to be true.
_OUTCOMES: tuple[tuple[str, float, tuple[int, int] | None, tuple[str, ...]], ...] = (
    ("no_answer", 0.26, (1, 4), ("电话无人接听,已发短信留言。", "两次拨打未接通,改日再试。")),
    (
        "call_back",
        0.20,
        (3, 10),
        ("客户在外地出差,约下周回电。", "客户本周较忙,约定周五再联系。"),
    ),
    (
        "reached",
        0.18,
        (14, 30),
        ("已联系上,客户近期暂无采购计划。", "已确认收货地址和联系人无变化。"),
    ),
    (
        "interested",
        0.14,
        (2, 7),
        ("对新品有兴趣,已发送报价单。", "客户询问批量采购折扣,待确认价格后回复。"),
    ),
    ("not_interested", 0.09, None, ("客户已转向其他供应商,暂不考虑。", "预算缩减,今年不再采购。")),
    ("wrong_contact", 0.04, None, ("电话为空号,需向客户确认新号码。",)),
)


def draw_followups(data: DemoData) -> pd.DataFrame:
    """The reps' follow-ups: ``customer_id`` (the demo's integer id), ``team``, ``owner``
    (who entered it), ``outcome``, ``note``, ``next_contact_date`` (a date or None) and
    ``entered_at`` (naive local time), oldest first."""
    rng = np.random.default_rng([data.seed, _SALT])
    customers = data.customers[["customer_id", "team", "owner"]].dropna()
    paid = data.orders.loc[data.orders["status"] == "paid", ["customer_id", "order_date"]]
    last_paid = paid.groupby("customer_id", sort=True)["order_date"].max()
    end = pd.Timestamp(data.end_date)
    quiet_since = end - pd.Timedelta(days=QUIET_DAYS)
    quiet = last_paid[(last_paid < quiet_since) & (last_paid >= end - pd.Timedelta(days=365))]
    candidates = customers[customers["customer_id"].isin(quiet.index)]
    chosen = []
    for _owner, group in candidates.groupby("owner", sort=True, observed=True):
        take = min(PER_OWNER, len(group))
        chosen.append(group.iloc[np.sort(rng.choice(len(group), size=take, replace=False))])
    if not chosen:
        return _empty()
    calls = pd.concat(chosen, ignore_index=True)
    shares = np.array([share for _key, share, _next, _notes in _OUTCOMES])
    picks = rng.choice(len(_OUTCOMES), size=len(calls), p=shares / shares.sum())
    days_back = rng.integers(1, DAYS + 1, size=len(calls))
    minutes = rng.integers(9 * 60, 18 * 60, size=len(calls))
    rows = []
    for (customer, team, owner), pick, back, minute in zip(
        calls[["customer_id", "team", "owner"]].itertuples(index=False, name=None),
        picks,
        days_back,
        minutes,
        strict=True,
    ):
        outcome, _share, wait, notes = _OUTCOMES[pick]
        day = data.end_date - timedelta(days=int(back))
        next_contact: date | None = None
        if wait is not None:
            next_contact = day + timedelta(days=int(rng.integers(wait[0], wait[1] + 1)))
        rows.append(
            {
                "customer_id": int(customer),
                "team": str(team),
                "owner": str(owner),
                "outcome": outcome,
                "note": notes[int(rng.integers(len(notes)))],
                "next_contact_date": next_contact,
                "entered_at": pd.Timestamp(day) + pd.Timedelta(minutes=int(minute)),
            }
        )
    return pd.DataFrame(rows).sort_values("entered_at", kind="stable", ignore_index=True)


def _empty() -> pd.DataFrame:
    columns = ["customer_id", "team", "owner", "outcome", "note", "next_contact_date"]
    frame = pd.DataFrame({name: pd.Series(dtype="object") for name in columns})
    frame["entered_at"] = pd.Series(dtype="datetime64[ns]")
    return frame
