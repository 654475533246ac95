"""Incremental campaign results: what the campaign caused, measured against its control.

Attributed figures (:mod:`crm_batch.kpi.campaigns`) credit a campaign with every order a
touched customer places within 7 days, including the orders they would have placed
anyway. A campaign that holds out a random **control group** (touches with
``is_control``: customers selected like the others but deliberately not sent) shows
what it really changed: the control customers' orders are the ones that would have
happened anyway.

Per campaign (and per channel, pooling its campaigns), over the touches of the period
(sent or held out in it):

* **7-day conversion** of each group: the share of its touches whose customer has a paid
  order dated from the touch's day to ``campaign_attribution_days`` (7) days after it,
  both inclusive; every order in the window counts for every touch of that customer
  (no last-touch rule here: the two groups are treated the same way, which is what the
  comparison needs);
* **uplift** = conversion(sent) - conversion(control), in points, with a 95 % interval
  (Newcombe's hybrid score interval from two Wilson intervals, which keeps its coverage
  for rates near 0 where the plain normal interval does not);
* **incremental orders / revenue** = (mean paid orders / revenue per sent touch - the
  same per control touch) x sent touches, with a 95 % normal interval on the difference
  of the two means (Welch), and **incremental ROI** = (incremental revenue - cost) /
  cost, the campaign's cost booked to the period's sent touches.

Assumptions, said plainly: the control was chosen at random from the same selection
(otherwise the difference is not the campaign's effect); the window is the same 7 days
as attribution; revenue is paid amounts (refunds are not linked to orders). Campaigns
without a control group get no incremental figures: reports call their figures
"attributed, not incremental".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: Two-sided confidence level of the intervals.
CONFIDENCE = 0.95
#: Fewest control touches for incremental figures (below, the interval says nothing).
MIN_CONTROL = 30
#: Columns of :func:`incremental_results` after the grouping columns.
UPLIFT_COLUMNS = (
    "sent",
    "control",
    "conversion_sent",
    "conversion_control",
    "uplift",
    "uplift_low",
    "uplift_high",
    "incremental_orders",
    "incremental_orders_low",
    "incremental_orders_high",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
    "cost",
    "incremental_roi",
)


def window_outcomes(
    touches: pd.DataFrame, orders: pd.DataFrame, attribution_days: int
) -> pd.DataFrame:
    """Per touch: the customer's paid orders and revenue dated from the touch's day to
    ``attribution_days`` after it (both inclusive). ``orders`` are paid orders
    (``customer_id``, ``order_date``, ``amount``); the result has ``window_orders`` and
    ``window_revenue`` aligned with ``touches``' rows."""
    codes, _ = pd.factorize(
        pd.concat([touches["customer_id"], orders["customer_id"]], ignore_index=True),
        use_na_sentinel=True,
    )
    touch_codes = codes[: len(touches)].astype("int64")
    order_codes = codes[len(touches) :].astype("int64")
    epoch = np.datetime64("1970-01-01", "D")
    order_days = (
        orders["order_date"].to_numpy(dtype="datetime64[D]") - epoch
    ).astype("int64")
    touch_days = (
        touches["sent_at"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]") - epoch
    ).astype("int64")
    span = 1 << 32  # days since 1970 fit far below this
    keys = order_codes * span + order_days
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    amounts = orders["amount"].to_numpy(dtype="float64", na_value=0.0)[order]
    cumulative = np.concatenate([[0.0], np.cumsum(amounts)])
    low = np.searchsorted(keys, touch_codes * span + touch_days, side="left")
    high = np.searchsorted(keys, touch_codes * span + touch_days + attribution_days, side="right")
    unknown = touch_codes < 0  # a touch without a customer id matches nothing
    counts = np.where(unknown, 0, high - low)
    revenue = np.where(unknown, 0.0, cumulative[high] - cumulative[low])
    return pd.DataFrame(
        {"window_orders": counts, "window_revenue": revenue}, index=touches.index
    )


def incremental_results(touches: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The figures of the module docstring per group of ``by`` (e.g. campaign or
    channel columns of ``touches``). ``touches`` has ``is_control``, ``cost`` (the
    booked cost of a sent touch; 0 for a control) and :func:`window_outcomes`' columns
    (:func:`crm_batch.kpi.campaigns.touch_table` gives all of them). Groups with fewer
    than :data:`MIN_CONTROL` control touches get NaN incremental figures (``control``
    says why)."""
    by = list(by)
    control = touches["is_control"].fillna(False).astype(bool).to_numpy()
    frame = touches[by].copy()
    frame["_control"] = control
    frame["_converted"] = touches["window_orders"].to_numpy() > 0
    frame["_orders"] = touches["window_orders"].to_numpy(dtype="float64")
    frame["_revenue"] = touches["window_revenue"].to_numpy(dtype="float64")
    frame["_cost"] = np.where(control, 0.0, touches["cost"].to_numpy(dtype="float64"))
    rows = []
    for key, group in frame.groupby(by, sort=True, dropna=False, observed=True):
        values = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, values, strict=True)), **_compare(group)})
    return pd.DataFrame(rows, columns=[*by, *UPLIFT_COLUMNS])


def _compare(group: pd.DataFrame) -> dict[str, float]:
    """The figures of one group of touches (sent and control rows)."""
    held = group["_control"].to_numpy()
    sent, ctrl = group.loc[~held], group.loc[held]
    n_sent, n_ctrl = len(sent), len(ctrl)
    cost = float(sent["_cost"].sum())
    nan = float("nan")
    result = dict.fromkeys(UPLIFT_COLUMNS, nan)
    result.update(sent=float(n_sent), control=float(n_ctrl), cost=cost)
    if n_sent:
        result["conversion_sent"] = float(sent["_converted"].mean())
    if n_ctrl:
        result["conversion_control"] = float(ctrl["_converted"].mean())
    if n_sent == 0 or n_ctrl < MIN_CONTROL:
        return result
    low, high = newcombe_interval(
        int(sent["_converted"].sum()), n_sent, int(ctrl["_converted"].sum()), n_ctrl
    )
    result.update(
        uplift=result["conversion_sent"] - result["conversion_control"],
        uplift_low=low,
        uplift_high=high,
    )
    for measure, column in (("orders", "_orders"), ("revenue", "_revenue")):
        difference, margin = mean_difference(sent[column].to_numpy(), ctrl[column].to_numpy())
        result[f"incremental_{measure}"] = difference * n_sent
        result[f"incremental_{measure}_low"] = (difference - margin) * n_sent
        result[f"incremental_{measure}_high"] = (difference + margin) * n_sent
    if cost > 0:
        result["incremental_roi"] = (result["incremental_revenue"] - cost) / cost
    return result


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for a proportion."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


def newcombe_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_a - p_b (his method 10, 1998)."""
    p_a, p_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = wilson_interval(successes_a, n_a, confidence)
    low_b, high_b = wilson_interval(successes_b, n_b, confidence)
    difference = p_a - p_b
    return (
        difference - float(np.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)),
        difference + float(np.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)),
    )


def mean_difference(
    a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """mean(a) - mean(b) and the half-width of its normal interval (Welch's standard
    error: the groups' variances are not assumed equal)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    difference = float(a.mean() - b.mean())
    variance = (a.var(ddof=1) if len(a) > 1 else 0.0) / len(a) + (
        b.var(ddof=1) if len(b) > 1 else 0.0
    ) / len(b)
    return difference, z * float(np.sqrt(variance))


