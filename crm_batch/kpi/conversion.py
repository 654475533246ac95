"""Lead conversion: leads created in a period that became buyers within 90 days.

Input: ``leads`` (leads.sql), one row per lead with ``created_at``, ``team``,
``customer_id`` (NULL until converted) and that customer's ``first_order_date`` as seen
up to the business date T.

Definition (DESIGN.md, details chosen here):

* a lead counts in P when ``created_at`` falls in P (timestamps, half-open
  ``[first day 00:00, day after the last 00:00)``);
* it **converted** when its customer's first paid order is dated from the lead's
  creation day to ``lead_conversion_days`` (90) days after it, both inclusive, and on or
  before T. A lead whose customer had already bought before the lead was created did
  not convert (it was an existing buyer, not a new one);
* **lead_conversion_rate** = converted leads / leads created in P. For a period that
  ended less than 90 days before T the rate is still maturing; target baselines are
  computed at the same distance from their own period's end.

The "new -> repeat within 90 days" step of the funnel is ``repeat_rate_90d`` in
:mod:`crm_batch.kpi.repurchase`. Per team, leads count for the team on the lead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm_batch.kpi.definitions import LEADS, KpiDefinition
from crm_batch.kpi.keys import count_by_team, ratio, team_codes
from crm_batch.periods import Period

KPIS = (
    KpiDefinition(
        "leads_created",
        "新增线索数",
        "Leads created",
        "count",
        "up",
        "Leads created in the period.",
        "期内新建的销售线索数。",
        0,
        needs=LEADS,
    ),
    KpiDefinition(
        "leads_converted",
        "线索转化数",
        "Leads converted",
        "count",
        "up",
        "Leads of the period whose customer placed a first paid order within 90 days.",
        "本期线索中,客户在90天内完成首笔已付款订单的数量。",
        0,
        needs=LEADS,
    ),
    KpiDefinition(
        "lead_conversion_rate",
        "新客户转化率",
        "Lead conversion rate",
        "ratio",
        "up",
        "Leads created in the period with a first paid order within 90 days / leads "
        "created in the period.",
        "期内新建线索中90天内完成首单的数量 / 期内新建线索数。",
        needs=LEADS,
    ),
)


def converted_mask(leads: pd.DataFrame, as_of: date, window_days: int = 90) -> pd.Series:
    """True for leads whose customer's first paid order is within the window (see module)."""
    created_day = leads["created_at"].dt.normalize()
    first = leads["first_order_date"]
    return (
        first.notna()
        & (first >= created_day)
        & (first <= created_day + pd.Timedelta(days=window_days))
        & (first <= pd.Timestamp(as_of))
    )


def lead_conversion_kpis(
    leads: pd.DataFrame, period: Period, as_of: date, window_days: int = 90
) -> dict[str, float]:
    """Leads created in ``period``, those converted, and the conversion rate."""
    created, converted = _lead_masks(leads, period, as_of, window_days)
    return _lead_values(int(created.sum()), int(converted.sum()))


def lead_conversion_kpis_by_team(
    leads: pd.DataFrame, period: Period, as_of: date, window_days: int, teams: Sequence[str]
) -> dict[str, dict[str, float]]:
    """:func:`lead_conversion_kpis` of each of ``teams`` (the lead's team) in one pass:
    each count is one ``np.bincount`` over team codes."""
    teams = list(teams)
    codes = team_codes(leads["team"], teams)
    created, converted = (
        count_by_team(codes, mask, len(teams))
        for mask in _lead_masks(leads, period, as_of, window_days)
    )
    return {team: _lead_values(int(created[i]), int(converted[i])) for i, team in enumerate(teams)}


def _lead_masks(
    leads: pd.DataFrame, period: Period, as_of: date, window_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Leads created in ``period``, and those of them converted."""
    start = pd.Timestamp(period.start)
    end = pd.Timestamp(period.end + timedelta(days=1))
    in_period = (leads["created_at"] >= start) & (leads["created_at"] < end)
    converted = in_period & converted_mask(leads, as_of, window_days)
    return in_period.to_numpy(dtype=bool), converted.to_numpy(dtype=bool)


def _lead_values(created: int, converted: int) -> dict[str, float]:
    return {
        "leads_created": float(created),
        "leads_converted": float(converted),
        "lead_conversion_rate": ratio(converted, created),
    }
