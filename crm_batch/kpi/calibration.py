"""Did the value models predict the quarter? Predicted against actual purchase days.

The quarterly review checks the BG/NBD model the way its authors do (Fader, Hardie and
Lee 2005, the calibration/holdout comparison): fit it on the buyers as of the day before
the quarter, predict each one's purchase days in the quarter, and set the sum against
the purchase days they really had, per value tier at the quarter's start and in total.
A ratio near 1 means the expected figures the workbooks and reports show (expected
orders and revenue, value at risk) can be trusted; far from 1 means the customer base
changed in a way the model cannot see (a new product line, a price change, a campaign).

Purchase days, not orders: the model counts days with a paid order (lifetimes'
frequency), so two orders on one day count once on both sides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_batch.kpi import predict
from crm_batch.kpi.alive import BUYER_TIERS
from crm_batch.kpi.keys import positions

#: Columns of :func:`calibration_by_tier`.
CALIBRATION_COLUMNS = ("value_tier", "buyers", "predicted_days", "actual_days", "ratio")
#: The value_tier of the total row.
TOTAL = "all"


def calibration_by_tier(
    start_table: pd.DataFrame, actual_days: pd.DataFrame, horizon_days: int
) -> pd.DataFrame:
    """Per value tier at the start (diamond, silver, bronze) and ``all``: the buyers as of
    the start, their predicted purchase days in the next ``horizon_days`` (the quarter)
    and their actual ones (``actual_days``: ``customer_id`` and ``order_days_in_period``,
    customers without a row bought nothing), and actual / predicted. Empty when the model
    cannot be fitted on the start's buyers (too few repeat buyers)."""
    model = predict.fit_purchases(start_table)  # purchase days: no spend model needed
    if model is None:
        return pd.DataFrame(columns=list(CALIBRATION_COLUMNS))
    buyers, summary = predict.buyer_summary(start_table)
    predicted = predict.expected_purchases(
        model, horizon_days, summary.frequency, summary.recency, summary.T
    )
    ids = start_table["customer_id"][buyers]
    where = positions(ids, actual_days["customer_id"])
    days = actual_days["order_days_in_period"].to_numpy(dtype="float64", na_value=0.0)
    actual = np.zeros(len(where))
    found = where >= 0
    actual[found] = days[where[found]]
    tiers = start_table["value_tier"].astype("string").to_numpy(dtype=object, na_value=None)
    tiers = tiers[buyers]
    rows = []
    for tier in (*BUYER_TIERS, TOTAL):
        members = np.ones(len(tiers), dtype=bool) if tier == TOTAL else tiers == tier
        if not members.any():
            continue
        expected, seen = float(predicted[members].sum()), float(actual[members].sum())
        rows.append(
            {
                "value_tier": tier,
                "buyers": int(members.sum()),
                "predicted_days": expected,
                "actual_days": seen,
                "ratio": seen / expected if expected > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
