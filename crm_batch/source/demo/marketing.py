"""Campaigns over sms / email / wechat / call / event, their touches, and the orders
they bring.

Campaigns cluster before the seasonal peaks (their start days follow demand shifted
earlier) and are named after the season. Each campaign reaches a sample of customers
who had signed up and not opted out (calls and events favour big customers). Opens,
clicks and opt-outs follow per-channel rates scaled by each customer's engagement; no
one is touched again after opting out. A touch makes a buyer more likely to order in
the following week: those *attributable* orders are drawn here, before the regular
orders, so that the total order count stays exact.

Mass campaigns (sms, email, wechat) hold out a random control group
(:data:`CONTROL_SHARE` of the selected customers, ``is_control``): selected, not sent,
no cost, and no order caused. The orders a sent touch causes are known (the third
array of :func:`attributable_orders`), so the demo carries the true incremental effect
that the uplift estimates (:mod:`crm_batch.kpi.uplift`) must recover.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

import numpy as np

from crm_batch.schema import CAMPAIGN_CHANNELS
from crm_batch.source.demo.customers import Customers
from crm_batch.source.demo.seasons import (
    Window,
    cumulative,
    lunar_new_year,
    sample_days,
    seconds_of_day,
)


class _Channel(NamedTuple):
    """How a campaign channel behaves (costs in CNY, rates per touch)."""

    share: float  # of all campaigns
    audience: float  # relative audience size
    spread_days: int  # sends spread over this many days
    send_hour: int
    cost_per_touch: float
    fixed_cost: float
    open_rate: float
    click_rate: float  # of the opened touches
    opt_out_rate: float


_CHANNELS: dict[str, _Channel] = {
    "sms": _Channel(0.30, 1.00, 1, 10, 0.06, 500.0, 0.30, 0.15, 0.025),
    "email": _Channel(0.25, 1.00, 2, 9, 0.01, 800.0, 0.22, 0.14, 0.012),
    "wechat": _Channel(0.30, 0.80, 1, 20, 0.03, 1_500.0, 0.45, 0.18, 0.020),
    "call": _Channel(0.10, 0.06, 14, 10, 6.00, 0.0, 0.60, 0.25, 0.035),
    "event": _Channel(0.05, 0.02, 1, 14, 120.0, 20_000.0, 0.50, 0.45, 0.005),
}
assert tuple(_CHANNELS) == CAMPAIGN_CHANNELS
#: Share of each channel's selected customers held out as a control group (not sent):
#: the mass channels only; a call or an event is personal and has no holdout.
CONTROL_SHARE: dict[str, float] = {
    "sms": 0.10,
    "email": 0.10,
    "wechat": 0.10,
    "call": 0.0,
    "event": 0.0,
}
#: Chance that a touched buyer orders in the following 7 days, by engagement.
_BUY_CLICKED, _BUY_OPENED, _BUY_IGNORED = 0.10, 0.03, 0.008


def _by_channel(field: str) -> np.ndarray:
    """One attribute of every channel, indexed like CAMPAIGN_CHANNELS."""
    return np.array([getattr(spec, field) for spec in _CHANNELS.values()])


_THEMES = (
    ("New Arrivals", "新品上市"),
    ("Member Day", "会员日"),
    ("We Miss You", "老客回归"),
    ("VIP Appreciation", "VIP答谢"),
    ("Repurchase Coupon", "复购券"),
    ("Refer a Friend", "老带新"),
    ("Customer Survey", "满意度回访"),
)


def _theme(day: date) -> tuple[str, str]:
    """The season a campaign starting on ``day`` belongs to, or an everyday theme."""
    for peak, label in (
        (date(day.year, 6, 18), ("618 Mid-year Sale", "618年中大促")),
        (date(day.year, 11, 11), ("Double 11", "双11")),
        (lunar_new_year(day.year), ("Spring Festival", "新春")),
        (lunar_new_year(day.year + 1), ("Spring Festival", "新春")),
    ):
        if timedelta(0) <= peak - day <= timedelta(days=28):
            return label
    return _THEMES[day.toordinal() % len(_THEMES)]


def draw_campaigns(
    rng: np.random.Generator, window: Window, demand: np.ndarray, n_customers: int
) -> dict[str, np.ndarray]:
    """Campaign columns: ``channel`` (index), ``day``, ``at`` (seconds), ``name``, ``fixed``."""
    years = window.days / 365.0
    count = int(np.clip(round(40 * years * (n_customers / 20_000) ** 0.3), 6, 600))
    share = _by_channel("share")
    channel = rng.choice(len(_CHANNELS), size=count, p=share / share.sum())
    # campaigns run ahead of demand: sample on demand, start ~10 days earlier
    day = sample_days(rng, cumulative(demand), np.zeros(count, np.int64), window.last)
    day = np.clip(day - rng.integers(5, 16, size=count), 0, window.last)
    order = np.lexsort((channel, day))
    channel, day = channel[order], day[order]
    send_hour = _by_channel("send_hour")[channel]
    at = day.astype(np.int64) * 86_400 + send_hour * 3600
    names = []
    for ch, d in zip(channel, day, strict=True):
        start = window.start + timedelta(days=int(d))
        en, zh = _theme(start)
        names.append(f"{start.year} {zh} {en} ({CAMPAIGN_CHANNELS[ch]})")
    fixed = _by_channel("fixed_cost")[channel]
    fixed = np.round(fixed * rng.uniform(0.6, 1.6, size=count), 2)
    return {"channel": channel, "day": day, "at": at, "name": np.array(names), "fixed": fixed}


def draw_touches(
    rng: np.random.Generator,
    c: Customers,
    campaigns: dict[str, np.ndarray],
    window: Window,
    total: int,
) -> dict[str, np.ndarray]:
    """About ``total`` touches over the campaigns; also sets ``c.opt_out`` for opt-outs.

    Returns column arrays sorted by send time: ``campaign`` (row index), ``customer``
    (row index), ``at`` (seconds), ``opened``, ``clicked``, ``opted_out``, ``is_control``
    (held out, not sent: never opened, clicked or opted out).
    """
    channel = campaigns["channel"]
    audience = _by_channel("audience")[channel]
    audience = np.round(total * audience / max(audience.sum(), 1e-9)).astype(np.int64)
    reachable = np.flatnonzero(~c.opt_out)  # in sign-up order
    reachable_signup = c.signup[reachable]
    weight = np.cumsum(c.size[reachable])
    engagement = np.clip(rng.lognormal(0.0, 0.4, size=len(c)), 0.2, 3.0)

    parts_campaign, parts_customer = [], []
    for k, (ch, day, size) in enumerate(zip(channel, campaigns["day"], audience, strict=True)):
        pool = int(np.searchsorted(reachable_signup, day, side="left"))
        if pool == 0 or size == 0:
            continue
        if CAMPAIGN_CHANNELS[ch] in ("call", "event"):  # the expensive channels target value
            pick = np.searchsorted(weight[:pool], rng.random(size) * weight[pool - 1], "right")
            pick = np.minimum(pick, pool - 1)
        else:
            pick = rng.integers(0, pool, size=min(size, pool))
        who = np.unique(reachable[pick])
        parts_campaign.append(np.full(len(who), k))
        parts_customer.append(who)
    campaign = np.concatenate(parts_campaign) if parts_campaign else np.zeros(0, np.int64)
    customer = np.concatenate(parts_customer) if parts_customer else np.zeros(0, np.int64)

    touch_channel = channel[campaign]
    spread_days = _by_channel("spread_days")[touch_channel]
    spread = (rng.random(len(campaign)) * spread_days).astype(np.int64)
    day = np.minimum(campaigns["day"][campaign] + spread, window.last).astype(np.int64)
    at = day * 86_400 + np.where(
        spread_days > 1,
        seconds_of_day(rng, len(campaign)),
        _by_channel("send_hour")[touch_channel] * 3600,
    )
    at = np.maximum(at, campaigns["at"][campaign]) + rng.integers(0, 1800, size=len(campaign))
    at = np.minimum(at, window.days * 86_400 - 1)  # nothing after the window's last second
    eng = engagement[customer]
    open_rate = _by_channel("open_rate")[touch_channel]
    click_rate = _by_channel("click_rate")[touch_channel]
    opened = rng.random(len(campaign)) < np.minimum(open_rate * eng, 0.95)
    clicked = opened & (rng.random(len(campaign)) < np.minimum(click_rate * eng, 0.9))
    opted_out = rng.random(len(campaign)) < _by_channel("opt_out_rate")[touch_channel]
    control_share = np.array([CONTROL_SHARE[name] for name in CAMPAIGN_CHANNELS])
    is_control = rng.random(len(campaign)) < control_share[touch_channel]
    opened &= ~is_control
    clicked &= ~is_control
    opted_out &= ~is_control

    # after opting out nobody is contacted again: drop that customer's later touches
    order = np.argsort(customer.astype(np.int64) << 32 | at)
    customer, campaign, at = customer[order], campaign[order], at[order]
    opened, clicked, opted_out = opened[order], clicked[order], opted_out[order]
    is_control = is_control[order]
    seen = np.cumsum(opted_out) - opted_out  # opt-outs strictly before each row
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(customer)]))
    keep = seen - seen[group_start] == 0
    c.opt_out[customer[keep & opted_out]] = True

    cols = {
        "campaign": campaign[keep],
        "customer": customer[keep],
        "at": at[keep],
        "opened": opened[keep],
        "clicked": clicked[keep],
        "opted_out": opted_out[keep],
        "is_control": is_control[keep],
    }
    by_time = np.argsort(cols["at"])
    return {name: values[by_time] for name, values in cols.items()}


def attributable_orders(
    rng: np.random.Generator, c: Customers, touches: dict[str, np.ndarray], window: Window
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orders placed 1..6 days after a touch because of it: (customer rows, days, the
    causing touch's row in ``touches``).

    Only buyers are tempted (a prospect's first order comes from its own life); an
    active customer is more receptive than a lapsed one, an opt-out not at all, and a
    control (not sent) never.
    """
    customer = touches["customer"]
    day = touches["at"] // 86_400
    chance = np.where(
        touches["clicked"], _BUY_CLICKED, np.where(touches["opened"], _BUY_OPENED, _BUY_IGNORED)
    )
    chance = chance * np.where(c.active_on(day, customer), 1.0, 0.4)
    chance[touches["opted_out"] | (c.first[customer] > day) | (c.complaint[customer] < day)] = 0
    chance[touches["is_control"]] = 0
    buys = rng.random(len(customer)) < chance
    order_day = day + rng.integers(1, 7, size=len(customer))
    buys &= order_day <= window.last
    return customer[buys], order_day[buys].astype(np.int32), np.flatnonzero(buys)


def campaign_costs(campaigns: dict[str, np.ndarray], touches: dict[str, np.ndarray]) -> np.ndarray:
    """Each campaign's cost: its fixed cost plus the channel's cost per touch sent (a
    control is not sent and costs nothing)."""
    per_touch = _by_channel("cost_per_touch")[campaigns["channel"]]
    sent_rows = touches["campaign"][~touches["is_control"]]
    sent = np.bincount(sent_rows, minlength=len(campaigns["channel"]))
    return np.round(campaigns["fixed"] + per_touch * sent, 2)
