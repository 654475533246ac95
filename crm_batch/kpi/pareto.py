"""Pareto (80/20): the share of net 12-month revenue that the top 20 % of buyers bring.

Definition (DESIGN.md): over the *N* customers with a paid order in the last 12 months
(``orders_12m > 0`` as of T), sort by net 12-month revenue (descending) and then by
``customer_id`` (ascending, as text) so that ties are cut deterministically; the top
*k* = ceil(``pareto_top_share`` x *N*) customers' revenue divided by the revenue of all
*N*. (Customers tied at the cut have the same revenue, so the tie rule decides who is
listed, never the share.) NaN when *N* = 0 or the total is zero or negative.

The seeds set "high-value customers bring 60 % of revenue" as a goal, so up is good.
Unlike ``high_value_revenue_share_12m`` (diamond + silver, where ties share a tier) this
counts exactly *k* customers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from crm_batch.kpi.definitions import KpiDefinition

KPIS = (
    KpiDefinition(
        "pareto_revenue_share",
        "头部20%客户销售额占比",
        "Top 20 % customers' revenue share",
        "ratio",
        "up",
        "Share of net 12-month revenue from the top ceil(20 % x N) of the N buyers of the "
        "last 12 months.",
        "近12个月N位购买客户中,净销售额前ceil(20%×N)位客户的销售额占比。",
    ),
)


def top_count(share: float, n: int) -> int:
    """ceil(share x n) without float noise (0.2 x 15 is 3.0000000000000004 -> 3, not 4)."""
    return math.ceil(round(share * n, 9))


def pareto_share(table: pd.DataFrame, top_share: float = 0.20) -> float:
    """Top ``top_share`` buyers' share of net 12-month revenue (see the module)."""
    buyers = table.loc[table["orders_12m"].fillna(0) > 0, ["customer_id", "revenue_12m"]]
    n = len(buyers)
    total = float(buyers["revenue_12m"].sum())
    if n == 0 or total <= 0:
        return float("nan")
    k = top_count(top_share, n)
    revenue = buyers["revenue_12m"].to_numpy(dtype="float64")
    # the k largest values: customers tied at the cut have equal revenue, so which of
    # them the customer_id order picks does not change the sum
    top = np.partition(revenue, n - k)[n - k :]
    return float(top.sum()) / total


def pareto_kpis(table: pd.DataFrame, top_share: float = 0.20) -> dict[str, float]:
    """The KPIs of :data:`KPIS` over the customer table at the period's end."""
    return {"pareto_revenue_share": pareto_share(table, top_share)}
