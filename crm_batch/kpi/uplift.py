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
from typing import Any

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
    order_days = (orders["order_date"].to_numpy(dtype="datetime64[D]") - epoch).astype("int64")
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
    return pd.DataFrame({"window_orders": counts, "window_revenue": revenue}, index=touches.index)


def incremental_results(touches: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The figures of the module docstring per group of ``by`` (e.g. campaign or
    channel columns of ``touches``). ``touches`` has ``is_control``, ``cost`` (the
    booked cost of a sent touch; 0 for a control) and :func:`window_outcomes`' columns
    (:func:`crm_batch.kpi.campaigns.touch_table` gives all of them). Groups with fewer
    than :data:`MIN_CONTROL` control touches get NaN incremental figures (``control``
    says why). The groups are numbered once; every sum is one ``np.bincount`` over
    (group, arm) slots."""
    by = list(by)
    control = touches["is_control"].fillna(False).astype(bool).to_numpy()
    grouped = touches.groupby(by, sort=True, dropna=False, observed=True)
    group = grouped.ngroup().to_numpy()
    count = int(group.max()) + 1 if len(group) else 0
    first = np.unique(group, return_index=True)[1]
    # one slot per (group, arm): even = sent, odd = control; sums by np.bincount
    slot = group * 2 + control
    slots = 2 * count

    def sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(slot, weights=values, minlength=slots).reshape(count, 2)

    converted = (touches["window_orders"].to_numpy() > 0).astype("float64")
    measures = {
        "orders": touches["window_orders"].to_numpy(dtype="float64"),
        "revenue": touches["window_revenue"].to_numpy(dtype="float64"),
    }
    n = np.bincount(slot, minlength=slots).reshape(count, 2).astype("float64")
    totals = {"n": n, "converted": sums(converted)}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, values in measures.items():
            total = sums(values)
            mean = (total / n).reshape(-1)[slot]
            totals[name] = total
            # squared deviations from each (group, arm)'s own mean: the sample variances
            totals[name + "_sq"] = sums((values - mean) ** 2)
    totals["cost"] = sums(np.where(control, 0.0, touches["cost"].to_numpy(dtype="float64")))

    def arm(name: str, held: bool) -> np.ndarray:
        return totals[name][:, int(held)]

    result = touches[by].iloc[first].reset_index(drop=True)
    n_sent, n_ctrl = arm("n", False), arm("n", True)
    result["sent"], result["control"] = n_sent, n_ctrl
    with np.errstate(divide="ignore", invalid="ignore"):
        conv_sent = np.where(n_sent > 0, arm("converted", False) / n_sent, np.nan)
        conv_ctrl = np.where(n_ctrl > 0, arm("converted", True) / n_ctrl, np.nan)
        measured = (n_sent > 0) & (n_ctrl >= MIN_CONTROL)
        low, high = newcombe_interval(
            arm("converted", False), n_sent, arm("converted", True), n_ctrl
        )
        result["conversion_sent"], result["conversion_control"] = conv_sent, conv_ctrl
        result["uplift"] = np.where(measured, conv_sent - conv_ctrl, np.nan)
        result["uplift_low"] = np.where(measured, low, np.nan)
        result["uplift_high"] = np.where(measured, high, np.nan)
        for measure in ("orders", "revenue"):
            mean_sent = arm(measure, False) / n_sent
            mean_ctrl = arm(measure, True) / n_ctrl
            margin = _welch_margin(
                _sample_variance(arm(measure + "_sq", False), n_sent),
                n_sent,
                _sample_variance(arm(measure + "_sq", True), n_ctrl),
                n_ctrl,
            )
            difference = mean_sent - mean_ctrl
            result[f"incremental_{measure}"] = np.where(measured, difference * n_sent, np.nan)
            result[f"incremental_{measure}_low"] = np.where(
                measured, (difference - margin) * n_sent, np.nan
            )
            result[f"incremental_{measure}_high"] = np.where(
                measured, (difference + margin) * n_sent, np.nan
            )
        cost = arm("cost", False)
        result["cost"] = cost
        result["incremental_roi"] = np.where(
            measured & (cost > 0), (result["incremental_revenue"] - cost) / cost, np.nan
        )
    return result.loc[:, [*by, *UPLIFT_COLUMNS]]


def _sample_variance(squared_deviations: Any, n: Any) -> Any:
    """Sample variance (ddof 1) from summed squared deviations; 0 for fewer than 2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 1, squared_deviations / (n - 1), 0.0)


def _welch_margin(
    variance_a: Any,
    n_a: Any,
    variance_b: Any,
    n_b: Any,
    confidence: float = CONFIDENCE,
) -> Any:
    """Half-width of the normal interval on a difference of two means (Welch's
    standard error: the groups' variances are not assumed equal)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    return z * np.sqrt(variance_a / n_a + variance_b / n_b)


def wilson_interval(successes: Any, n: Any, confidence: float = CONFIDENCE) -> tuple[Any, Any]:
    """Wilson's score interval for a proportion (numbers, or arrays element-wise)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)


def newcombe_interval(
    successes_a: Any, n_a: Any, successes_b: Any, n_b: Any, confidence: float = CONFIDENCE
) -> tuple[Any, Any]:
    """Newcombe's hybrid score interval for p_a - p_b (his method 10, 1998); numbers, or
    arrays element-wise."""
    p_a, p_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = wilson_interval(successes_a, n_a, confidence)
    low_b, high_b = wilson_interval(successes_b, n_b, confidence)
    difference = p_a - p_b
    return (
        difference - np.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
        difference + np.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2),
    )


def mean_difference(
    a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """mean(a) - mean(b) and the half-width of its normal interval
    (:func:`_welch_margin`, the rule :func:`incremental_results` applies per group)."""
    n_a, n_b = np.float64(len(a)), np.float64(len(b))
    margin = _welch_margin(
        _sample_variance(((a - a.mean()) ** 2).sum(), n_a),
        n_a,
        _sample_variance(((b - b.mean()) ** 2).sum(), n_b),
        n_b,
        confidence,
    )
    return float(a.mean() - b.mean()), float(margin)
