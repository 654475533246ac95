"""Orders: how many each customer places, on which days, for how much; refunds and
cancellations.

Every buyer has its first order on its first-order day and every comeback its first
order on its return day; touches add their attributable orders. The remaining orders
are spread over the customers in proportion to their order rate times the length of
their active episodes (a multinomial draw, so the total is exact and the counts are
heavy-tailed), and each lands on a day of its episode in proportion to seasonal
demand. Order values are lognormal, scaled by the customer's size and the category.
About 2 % of orders are cancelled and 3 % of the rows are refunds: separate rows, dated
after the paid order they return money for.
"""

from __future__ import annotations

import numpy as np

from crm_batch.schema import ORDER_STATUSES
from crm_batch.source.demo import people
from crm_batch.source.demo.customers import NEVER, Customers
from crm_batch.source.demo.model import ACQUISITION_CHANNELS, CATEGORIES, ORDER_CHANNELS
from crm_batch.source.demo.seasons import Window, sample_days

PAID, REFUNDED, CANCELLED = (ORDER_STATUSES.index(s) for s in ("paid", "refunded", "cancelled"))
REFUND_SHARE = 0.03
CANCEL_SHARE = 0.02
#: Typical order value (median, CNY) before the customer's size, and the spread.
_MEDIAN_VALUE, _VALUE_SIGMA = 1_100.0, 0.85
#: Value factor and popularity of each category (same order as CATEGORIES).
_CATEGORY_VALUE = np.array([1.6, 1.1, 0.6, 0.8, 0.5, 0.7, 2.2, 1.8])
_CATEGORY_P = np.array([0.18, 0.16, 0.16, 0.12, 0.12, 0.10, 0.09, 0.07])
_CHANNEL_P = np.array([0.42, 0.25, 0.12, 0.15, 0.06])
assert len(_CATEGORY_VALUE) == len(_CATEGORY_P) == len(CATEGORIES)
assert len(_CHANNEL_P) == len(ORDER_CHANNELS)


def draw_orders(
    rng: np.random.Generator,
    c: Customers,
    window: Window,
    demand_cum: np.ndarray,
    total: int,
    attributed: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Exactly ``total`` order rows (purchases and refunds), sorted by day.

    ``attributed`` holds the campaign-driven orders (customer rows, days, causing touch
    rows). Returns column arrays ``customer`` (row index), ``day``, ``amount``,
    ``status`` (index into ORDER_STATUSES), ``channel`` (into ORDER_CHANNELS),
    ``category`` (into CATEGORIES) and ``touch`` (the causing touch's row, -1 for the
    orders no touch caused and for refunds).
    """
    refunds = round(total * REFUND_SHARE)
    purchases = total - refunds
    buyers = np.flatnonzero((c.first >= 0) & (c.first <= window.last))
    returns = np.flatnonzero(c.back <= window.last)
    att_customer, att_day, att_touch = attributed
    fixed = len(buyers) + len(returns)
    if fixed > purchases:  # fewer orders than buyers: the latest buyers stay prospects
        buyers = buyers[: max(purchases - len(returns), 0)]
        returns = returns[: purchases - len(buyers)]
        _demote(c, keep_buyers=buyers, keep_returns=returns)
        fixed = len(buyers) + len(returns)
    keep = rng.permutation(len(att_customer))[: purchases - fixed]
    keep = np.sort(keep)
    att_customer, att_day, att_touch = att_customer[keep], att_day[keep], att_touch[keep]

    customer, day = _regular_orders(rng, c, window, demand_cum, purchases - fixed - len(keep))
    customer = np.concatenate([buyers, returns, att_customer, customer]).astype(np.int64)
    day = np.concatenate([c.first[buyers], c.back[returns], att_day, day]).astype(np.int32)

    n = len(customer)
    category = _categories(rng, c, customer)
    amount = (
        rng.lognormal(np.log(_MEDIAN_VALUE), _VALUE_SIGMA, size=n)
        * c.size[customer] ** 0.45
        * _CATEGORY_VALUE[category]
    )
    amount = np.maximum(np.where(rng.random(n) < 0.55, np.round(amount), np.round(amount, 2)), 9.9)
    # first orders (and comeback orders) are paid, so they are what the data shows
    cancel_p = CANCEL_SHARE * n / max(n - fixed, 1)
    status = np.where(rng.random(n) < cancel_p, CANCELLED, PAID).astype(np.int8)
    status[:fixed] = PAID
    channel = _channels(rng, c, customer)

    # refunds: separate rows returning all or part of a paid order's amount, later on
    eligible = np.flatnonzero((status == PAID) & (day < window.last))
    source = np.sort(rng.choice(eligible, size=min(refunds, len(eligible)), replace=False))
    back_day = day[source] + 1 + rng.exponential(6.0, size=len(source)).astype(np.int32)
    partial = rng.random(len(source)) < 0.3
    refund = np.where(
        partial, np.round(amount[source] * rng.uniform(0.1, 0.9, len(source)), 2), amount[source]
    )

    cols = {
        "customer": np.concatenate([customer, customer[source]]),
        "day": np.concatenate([day, np.minimum(back_day, window.last)]),
        "amount": np.concatenate([amount, np.maximum(refund, 0.01)]),
        "status": np.concatenate([status, np.full(len(source), REFUNDED, np.int8)]),
        "channel": np.concatenate([channel, channel[source]]),
        "category": np.concatenate([category, category[source]]),
        "touch": np.concatenate(
            [
                np.full(fixed, -1),
                att_touch,
                np.full(n - fixed - len(att_touch), -1),
                np.full(len(source), -1),
            ]
        ).astype(np.int64),
    }
    order = np.argsort(cols["day"].astype(np.int16), kind="stable")  # a radix sort
    return {name: values[order] for name, values in cols.items()}


def _regular_orders(
    rng: np.random.Generator, c: Customers, window: Window, demand_cum: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` orders over the customers' active episodes: (customer rows, days).

    Episode 1 runs from the day after the first order (or from the window's start for
    the existing base) to its end; episode 2 from the day after the comeback order.
    """
    last = window.last
    low1 = np.where(c.first >= 0, c.first + 1, 0).astype(np.int64)
    high1 = np.minimum(c.end1, last).astype(np.int64)
    low2 = c.back.astype(np.int64) + 1
    high2 = np.minimum(c.end2, last).astype(np.int64)
    days1 = np.where(c.first <= last, np.clip(high1 - low1 + 1, 0, None), 0)
    days2 = np.where(c.back <= last, np.clip(high2 - low2 + 1, 0, None), 0)
    weight = c.rate * (days1 + days2)
    if count <= 0 or not (c.first <= last).any():
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    if weight.sum() == 0:  # nobody is active after the first order: repeat on that day
        weight = c.rate * (c.first <= last)
        low1, high1, days1 = np.maximum(c.first, 0), np.maximum(c.first, 0), np.ones(len(c))
    counts = rng.multinomial(count, weight / weight.sum())
    customer = np.repeat(np.arange(len(c)), counts)
    d1, d2 = days1[customer], days2[customer]
    second = rng.random(len(customer)) * (d1 + d2) >= d1
    low = np.where(second, low2[customer], low1[customer])
    high = np.where(second, high2[customer], high1[customer])
    return customer, sample_days(rng, demand_cum, low, high)


def _demote(c: Customers, *, keep_buyers: np.ndarray, keep_returns: np.ndarray) -> None:
    """Turn buyers (and comebacks) without an order left in the budget into prospects."""
    buyer = np.zeros(len(c), bool)
    buyer[keep_buyers] = True
    returns = np.zeros(len(c), bool)
    returns[keep_returns] = True
    c.first[~buyer] = NEVER
    c.end1[~buyer] = NEVER
    c.back[~returns] = NEVER
    c.end2[~returns] = NEVER


def _categories(rng: np.random.Generator, c: Customers, customer: np.ndarray) -> np.ndarray:
    """Each customer buys mostly from two favourite categories."""
    favourite = rng.choice(len(CATEGORIES), size=(len(c), 2), p=_CATEGORY_P)
    u = rng.random(len(customer))
    anything = rng.choice(len(CATEGORIES), size=len(customer), p=_CATEGORY_P)
    return np.where(
        u < 0.55, favourite[customer, 0], np.where(u < 0.8, favourite[customer, 1], anything)
    ).astype(np.int8)


def _channels(rng: np.random.Generator, c: Customers, customer: np.ndarray) -> np.ndarray:
    """Each customer mostly orders through one channel that fits how it came to us."""
    n = len(c)
    preferred = rng.choice(len(ORDER_CHANNELS), size=n, p=_CHANNEL_P)
    acquisition = np.array(ACQUISITION_CHANNELS)[c.acquisition]
    preferred[acquisition == "walk_in"] = ORDER_CHANNELS.index("store")
    preferred[acquisition == "online_shop"] = ORDER_CHANNELS.index("online")
    preferred[acquisition == "wechat"] = ORDER_CHANNELS.index("wechat")
    company = (c.kind == people.COMPANY_CN) | (c.kind == people.COMPANY_LATIN)
    phone, distributor = ORDER_CHANNELS.index("phone"), ORDER_CHANNELS.index("distributor")
    b2b = np.where(rng.random(n) < 0.5, phone, distributor)
    preferred = np.where(company & (rng.random(n) < 0.6), b2b, preferred)
    other = rng.choice(len(ORDER_CHANNELS), size=len(customer), p=_CHANNEL_P)
    return np.where(rng.random(len(customer)) < 0.7, preferred[customer], other).astype(np.int8)
