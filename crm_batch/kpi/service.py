"""Service: complaints in a period, resolution within 24 h, open complaints, satisfaction.

Input: ``tickets`` (tickets.sql): one row per ticket opened in the period or still open
at its start, with ``opened_at``, ``resolved_at`` (NaT while open), ``kind`` and
``satisfaction`` (1..5).

Definitions (the seeds: "问题1小时内响应、24小时内解决"; details chosen here):

* **complaints** = complaints (``kind == 'complaint'``) opened in P;
* **complaint_resolved_24h_rate**: of those, the share resolved at most
  ``complaint_resolution_hours`` (24) hours after opening (exactly 24 h counts) and no
  later than the end of P's last day; a complaint still open counts as not resolved;
* **open_complaints**: complaints opened before the end of P's last day and not resolved
  by then, whenever they were opened;
* **satisfaction_mean**: mean rating (1..5) of the tickets of any kind opened in P that
  have a rating and were resolved (if at all) by the end of P; a rating on a ticket
  resolved after the period is treated as given after it and left out, so a past period
  gives the same answer later.

The period's end is the end of its last day (already clipped to the business date).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from crm_batch.kpi.definitions import TICKETS, KpiDefinition
from crm_batch.kpi.keys import ratio
from crm_batch.periods import Period

KPIS = (
    KpiDefinition(
        "complaints",
        "投诉数",
        "Complaints",
        "count",
        "down",
        "Complaints opened in the period.",
        "期内新增投诉数。",
        0,
        needs=TICKETS,
    ),
    KpiDefinition(
        "complaint_resolved_24h_rate",
        "投诉24小时解决率",
        "Complaints resolved within 24 h",
        "ratio",
        "up",
        "Share of the period's complaints resolved within 24 hours of opening.",
        "期内投诉中,24小时内解决的比例。",
        needs=TICKETS,
    ),
    KpiDefinition(
        "open_complaints",
        "未解决投诉数",
        "Open complaints",
        "count",
        "down",
        "Complaints not resolved at the end of the period.",
        "期末仍未解决的投诉数。",
        0,
        needs=TICKETS,
    ),
    KpiDefinition(
        "satisfaction_mean",
        "客户满意度",
        "Customer satisfaction",
        "score",
        "up",
        "Mean rating (1-5) of the tickets opened in the period.",
        "期内工单的平均满意度评分(1-5分)。",
        2,
        needs=TICKETS,
    ),
)


def service_kpis(
    tickets: pd.DataFrame, period: Period, resolution_hours: float = 24.0
) -> dict[str, float]:
    """Every KPI of :data:`KPIS` for ``period`` (see the module for the definitions)."""
    start = pd.Timestamp(period.start)
    end = pd.Timestamp(period.end + timedelta(days=1))  # midnight after the last day
    opened = tickets["opened_at"]
    resolved = tickets["resolved_at"]
    resolved_by_end = resolved.notna() & (resolved < end)
    complaint = (tickets["kind"] == "complaint").fillna(False).astype(bool)
    in_period = (opened >= start) & (opened < end)
    new_complaints = complaint & in_period
    fast = resolved_by_end & (resolved - opened <= pd.Timedelta(hours=resolution_hours))
    still_open = complaint & (opened < end) & ~resolved_by_end
    rated = in_period & tickets["satisfaction"].notna() & (resolved.isna() | resolved_by_end)
    ratings = tickets.loc[rated, "satisfaction"].astype("float64")
    return {
        "complaints": float(new_complaints.sum()),
        "complaint_resolved_24h_rate": ratio((new_complaints & fast).sum(), new_complaints.sum()),
        "open_complaints": float(still_open.sum()),
        "satisfaction_mean": float(ratings.mean()) if len(ratings) else float("nan"),
    }
