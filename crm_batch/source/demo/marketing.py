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

A campaign costs what it would in China in 2026 (:data:`_CHANNELS`' prices and their
reasoning): its setup, a price per message, call or guest, and its offer on the orders
it is redeemed on (:data:`OFFER_SHARE`, :func:`campaign_costs`), so its attributed ROI
lands where real campaigns' do (a few hundred per cent; before, a campaign cost the
message alone and attributed ROI reached 39,196 %).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

import numpy as np

from crm_batch.schema import CAMPAIGN_CHANNELS, ORDER_STATUSES
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


#: What a campaign costs, in CNY (2026 prices in China; the reasoning, not quotes):
#:
#: * **sms**: bulk marketing SMS cost about ¥0.04-0.10 per 70-character segment sent,
#:   depending on volume and carrier; a promotion with a short link and the mandatory
#:   signature and opt-out text runs to two segments: ¥0.10 per message. Setup about
#:   ¥1,500: copy, the platform's template approval, list clean-up and tracking links,
#:   a day of a marketer's time.
#: * **email**: an e-mail service charges well under a cent per message (¥0.005); the
#:   cost is the fixed part, an HTML mailing designed, written and tested: ¥3,000.
#: * **wechat**: template and service-account messages are free to send but limited;
#:   reaching customers who do not open the account means Moments ads or paid pushes at
#:   ¥50-150 per thousand impressions: ¥0.30 per customer reached (several impressions
#:   each). Setup ¥4,000: an article or H5 page designed and approved.
#: * **call**: a sales rep costs about ¥9,000 a month with social insurance, ¥55 an hour,
#:   and makes about four calls an hour with notes: ¥15 a call; ¥500 for the script.
#: * **event**: ¥300 per guest (catering, gift, a share of the venue) and ¥30,000 fixed
#:   (venue, equipment, invitations, staff).
#:
#: Besides, each campaign carries its offer (coupon, discount, gift), paid on the orders
#: it is redeemed on: :data:`OFFER_SHARE`. The offer, not the message, is what a
#: campaign to existing customers mostly costs.
_CHANNELS: dict[str, _Channel] = {
    "sms": _Channel(0.30, 1.00, 1, 10, 0.10, 1_500.0, 0.30, 0.15, 0.025),
    "email": _Channel(0.25, 1.00, 2, 9, 0.005, 3_000.0, 0.22, 0.14, 0.012),
    "wechat": _Channel(0.30, 0.80, 1, 20, 0.30, 4_000.0, 0.45, 0.18, 0.020),
    "call": _Channel(0.10, 0.06, 14, 10, 15.0, 500.0, 0.60, 0.25, 0.035),
    "event": _Channel(0.05, 0.02, 1, 14, 300.0, 30_000.0, 0.50, 0.45, 0.005),
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
#: The offer of a campaign by its theme, as a share of the value of the orders it is
#: redeemed on: every paid order a sent customer places in the week after the touch
#: (the offer's validity, and the KPIs' attribution window), whether or not the
#: campaign caused it: a coupon is also used by those who would have bought anyway,
#: which is why attributed revenue overstates a campaign. Shares follow common Chinese
#: promotions: the 618 and Double 11 spend-and-save discounts (满300减60) about 20 %,
#: win-back and repurchase coupons 18 %, member days and the Spring Festival gift 15 %,
#: VIP gifts and referral rewards 12 %, a new-arrivals discount and the survey's
#: thank-you coupon 10 %. An offer of s caps a campaign's attributed ROI at 1/s - 1
#: (400-900 %), its fixed and per-message costs take it lower.
OFFER_SHARE: dict[str, float] = {
    "618 Mid-year Sale": 0.20,
    "Double 11": 0.20,
    "We Miss You": 0.18,
    "Repurchase Coupon": 0.18,
    "Member Day": 0.15,
    "Spring Festival": 0.15,
    "VIP Appreciation": 0.12,
    "Refer a Friend": 0.12,
    "New Arrivals": 0.10,
    "Customer Survey": 0.10,
}
#: Days after a touch in which its offer is redeemed (the KPIs' attribution window).
OFFER_DAYS = 7
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
    names, offers = [], []
    for ch, d in zip(channel, day, strict=True):
        start = window.start + timedelta(days=int(d))
        en, zh = _theme(start)
        names.append(f"{start.year} {zh} {en} ({CAMPAIGN_CHANNELS[ch]})")
        offers.append(OFFER_SHARE[en])
    fixed = _by_channel("fixed_cost")[channel]
    fixed = np.round(fixed * rng.uniform(0.6, 1.6, size=count), 2)
    return {
        "channel": channel,
        "day": day,
        "at": at,
        "name": np.array(names),
        "fixed": fixed,
        "offer": np.array(offers, dtype=np.float64),
    }


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


def campaign_costs(
    campaigns: dict[str, np.ndarray],
    touches: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
) -> np.ndarray:
    """Each campaign's cost: its fixed cost, the channel's cost per touch sent and its
    offer (:data:`OFFER_SHARE`) on the paid orders its sent customers
    place in the :data:`OFFER_DAYS` days after their touch. A control is not sent: no
    message, no offer, no cost."""
    count = len(campaigns["channel"])
    per_touch = _by_channel("cost_per_touch")[campaigns["channel"]]
    sent = ~touches["is_control"]
    messages = np.bincount(touches["campaign"][sent], minlength=count)
    redeemed = np.bincount(
        touches["campaign"][sent],
        weights=_week_after(touches, sent, orders),
        minlength=count,
    )
    return np.round(campaigns["fixed"] + per_touch * messages + campaigns["offer"] * redeemed, 2)


def _week_after(
    touches: dict[str, np.ndarray], sent: np.ndarray, orders: dict[str, np.ndarray]
) -> np.ndarray:
    """For each sent touch, the value of the paid orders of its customer on the
    :data:`OFFER_DAYS` days after the touch's day (one search over sorted keys)."""
    chosen = orders["status"] == ORDER_STATUSES.index("paid")
    key = orders["customer"][chosen].astype(np.int64) << 20 | orders["day"][chosen]
    order = np.argsort(key, kind="stable")
    key = key[order]
    cumulative = np.concatenate([[0.0], np.cumsum(orders["amount"][chosen][order])])
    customer = touches["customer"][sent].astype(np.int64) << 20
    day = touches["at"][sent] // 86_400
    low = np.searchsorted(key, customer | day, side="right")  # after the touch's day
    high = np.searchsorted(key, customer | (day + OFFER_DAYS), side="right")
    return cumulative[high] - cumulative[low]
