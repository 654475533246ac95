"""Who is still with us: P(alive) by value tier, and the valuable customers most likely lost.

Both read the scored customer table (:func:`crm_batch.kpi.predict.with_scores`). P(alive)
is the BG/NBD probability that a buyer has not dropped out for good; buyers only (a
customer without a paid order has no P(alive)). Without a fitted model every P(alive) is
missing and both tables are empty: the diagnosis then says the model could not be fitted
instead of showing zeros.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: P(alive) bands of the distribution, as (low, high] bounds except the first, [0, 0.25].
ALIVE_BANDS = (0.25, 0.5, 0.75)
#: Names of the band columns, lowest band first.
BAND_COLUMNS = ("alive_to_25", "alive_25_50", "alive_50_75", "alive_over_75")
#: Value tiers with buyers, in report order (iron = no paid order, so no P(alive)).
BUYER_TIERS = ("diamond", "silver", "bronze")
#: The tiers whose loss the diagnosis lists customer by customer.
VALUABLE_TIERS = ("diamond", "silver")
#: Columns of :func:`likely_lost_valuable`.
LOST_COLUMNS = (
    "customer_id",
    "name",
    "team",
    "owner",
    "value_tier",
    "revenue_12m",
    "last_order_date",
    "p_alive",
    "expected_revenue_12m",
)


def alive_by_value_tier(table: pd.DataFrame, likely_lost_p_alive: float) -> pd.DataFrame:
    """Per buyer value tier: buyers scored, mean P(alive), how many fall in each band of
    :data:`ALIVE_BANDS`, and the likely lost (P(alive) below ``likely_lost_p_alive``)
    with their 12-month revenue. Tiers without a scored buyer are left out."""
    alive = table["p_alive"].to_numpy(dtype="float64", na_value=np.nan)
    scored = ~np.isnan(alive)
    value_tier = table["value_tier"]
    revenue = table["revenue_12m"].to_numpy(dtype="float64", na_value=0.0)
    band = np.searchsorted(np.asarray(ALIVE_BANDS), alive, side="left")  # (low, high]
    rows = []
    for tier in BUYER_TIERS:
        members = scored & (value_tier == tier).to_numpy(dtype=bool)  # codes when categorical
        count = int(members.sum())
        if count == 0:
            continue
        lost = members & (alive < likely_lost_p_alive)
        bands = np.bincount(band[members], minlength=len(BAND_COLUMNS))
        rows.append(
            {
                "value_tier": tier,
                "buyers": count,
                "p_alive_mean": float(alive[members].mean()),
                **{name: int(n) for name, n in zip(BAND_COLUMNS, bands, strict=True)},
                "likely_lost": int(lost.sum()),
                "likely_lost_revenue_12m": float(revenue[lost].sum()),
            }
        )
    columns = [
        "value_tier",
        "buyers",
        "p_alive_mean",
        *BAND_COLUMNS,
        "likely_lost",
        "likely_lost_revenue_12m",
    ]
    return pd.DataFrame(rows, columns=columns)


def likely_lost_valuable(
    table: pd.DataFrame, likely_lost_p_alive: float, limit: int | None = None
) -> pd.DataFrame:
    """Diamond and silver customers whose P(alive) is below ``likely_lost_p_alive``,
    biggest 12-month revenue first (then lowest P(alive), then id): the valuable
    customers the models think have already gone, worth a personal call."""
    alive = table["p_alive"].astype("float64")
    wanted = table["value_tier"].isin(VALUABLE_TIERS) & (alive < likely_lost_p_alive)
    chosen = table.loc[wanted, list(LOST_COLUMNS)]  # only the columns shown (and sorted by)
    ranked = chosen.assign(_revenue=chosen["revenue_12m"].astype("float64")).sort_values(
        ["_revenue", "p_alive", "customer_id"], ascending=[False, True, True], kind="stable"
    )
    result = ranked.loc[:, list(LOST_COLUMNS)].reset_index(drop=True)
    return result if limit is None else result.head(limit)
