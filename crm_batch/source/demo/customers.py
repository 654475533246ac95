"""Customers and their buying lives, referrals and leads, as numpy arrays.

A customer signs up on some day (30 % of them before the window, the others at a
growth of ~20 % a year), belongs to a team and an owner, and came through a lead
source, a referral or a walk-in / web-shop sign-up. Buyers have a first order shortly
after signing up and then an *episode* of activity: one-time buyers stop at once,
loyal customers stay to the end, the others leave after an exponential time. Some
churned customers come back for a second episode. An unresolved complaint makes a
customer likely to stop soon after it. Order counts and dates are drawn from these
episodes later (``orders.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_batch.source.demo import people
from crm_batch.source.demo.model import ACQUISITION_CHANNELS, LEAD_CONVERSION, TEAMS
from crm_batch.source.demo.seasons import Window, cumulative, sample_days, seconds_of_day

#: "Never" for day columns: later than any day of any window.
NEVER = np.int32(2**30)
#: Every team's owners, team after team.
OWNERS: tuple[str, ...] = tuple(owner for team in TEAMS for owner in team.owners)
#: Share of customers who signed up before the window (the company's existing base).
LEGACY_SHARE = 0.3
#: Yearly growth of sign-ups and leads.
GROWTH = 1.2

_SOURCE = {name: code for code, name in enumerate(ACQUISITION_CHANNELS)}
#: Lead sources of customers who came through a lead but not through a referral.
_LEAD_MIX = {
    "website": 0.30,
    "exhibition": 0.15,
    "wechat": 0.25,
    "cold_call": 0.15,
    "partner": 0.15,
}


@dataclass
class Customers:
    """Per-customer arrays; row ``i`` is customer id ``i + 1`` (ids follow sign-up order)."""

    signup: np.ndarray  # day index
    team: np.ndarray  # index into TEAMS
    owner: np.ndarray  # index into OWNERS
    kind: np.ndarray  # people.PERSON_CN ...
    size: np.ndarray  # spend multiplier, heavy-tailed
    rate: np.ndarray  # relative order frequency while active, heavy-tailed
    acquisition: np.ndarray  # index into ACQUISITION_CHANNELS
    has_lead: np.ndarray  # came through a (converted) lead
    first: np.ndarray  # day of the first order, NEVER for prospects
    end1: np.ndarray  # last active day of the first episode (NEVER: still active)
    back: np.ndarray  # first day of the comeback episode, NEVER if none
    end2: np.ndarray  # last active day of the comeback episode
    complaint: np.ndarray  # day of an unresolved complaint, NEVER if none
    referred_by: np.ndarray  # referrer's id, 0 if none
    opt_out: np.ndarray  # refused marketing at sign-up

    def __len__(self) -> int:
        return len(self.signup)

    def active_on(self, day: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether customers ``rows`` are in an active episode on ``day``."""
        in_first = (self.first[rows] <= day) & (day <= self.end1[rows])
        return in_first | ((self.back[rows] <= day) & (day <= self.end2[rows]))


def _growth(window: Window) -> np.ndarray:
    """Cumulative sign-up weights: the company grows by :data:`GROWTH` a year."""
    return cumulative(np.exp(np.log(GROWTH) * np.arange(window.days) / 365.0))


def draw_customers(rng: np.random.Generator, n: int, window: Window) -> Customers:
    """Sign-ups, teams, kinds, sizes and acquisition channels of ``n`` customers."""
    signup = sample_days(rng, _growth(window), np.zeros(n, np.int64), window.last)
    legacy = rng.random(n) < LEGACY_SHARE  # signed up before the window, in the last 5 years
    signup[legacy] = -1 - rng.integers(0, 5 * 365, size=int(legacy.sum()))
    signup = np.sort(signup)

    shares = np.array([team.share for team in TEAMS])
    team = rng.choice(len(TEAMS), size=n, p=shares / shares.sum()).astype(np.int8)
    owner = np.empty(n, dtype=np.int16)
    for t, spec in enumerate(TEAMS):
        rows = np.flatnonzero(team == t)
        book = 1.0 / np.arange(1, len(spec.owners) + 1) ** 0.5  # reps' books differ in size
        first_owner = OWNERS.index(spec.owners[0])
        owner[rows] = first_owner + rng.choice(
            len(spec.owners), size=len(rows), p=book / book.sum()
        )

    kind = rng.choice(4, size=n, p=people.KIND_SHARES).astype(np.int8)
    company = (kind == people.COMPANY_CN) | (kind == people.COMPANY_LATIN)
    size = rng.lognormal(0.0, 0.9, size=n) * np.where(company, 2.5, 1.0)
    rate = size**0.6 * rng.lognormal(0.0, 0.8, size=n)

    referred = (rng.random(n) < 0.15) & (signup > 14)
    lead_sources = np.array([_SOURCE[s] for s in _LEAD_MIX])
    lead_p = np.array(list(_LEAD_MIX.values()))
    acquisition = np.where(rng.random(n) < 0.55, _SOURCE["walk_in"], _SOURCE["online_shop"]).astype(
        np.int8
    )
    has_lead = ~referred & (rng.random(n) < 0.42)
    acquisition[has_lead] = rng.choice(lead_sources, size=int(has_lead.sum()), p=lead_p)
    acquisition[referred] = _SOURCE["referral"]
    has_lead |= referred & (rng.random(n) < 0.5)

    none = np.full(n, NEVER, dtype=np.int32)
    return Customers(
        signup=signup,
        team=team,
        owner=owner,
        kind=kind,
        size=size,
        rate=rate,
        acquisition=acquisition,
        has_lead=has_lead,
        first=none.copy(),
        end1=none.copy(),
        back=none.copy(),
        end2=none.copy(),
        complaint=none.copy(),
        referred_by=np.zeros(n, dtype=np.int64),
        opt_out=rng.random(n) < 0.025,
    )


def draw_lifecycles(rng: np.random.Generator, c: Customers, window: Window) -> None:
    """First orders, activity episodes, complaint-driven churn and comebacks (in place)."""
    n = len(c)
    company = (c.kind == people.COMPANY_CN) | (c.kind == people.COMPANY_LATIN)
    lead = c.has_lead
    prospect_p = np.where(lead, 0.04, np.where(c.acquisition == _SOURCE["referral"], 0.10, 0.17))
    buyer = rng.random(n) >= prospect_p
    lag = np.where(
        lead,
        1 + rng.exponential(14.0, size=n),  # leads buy within weeks of signing up
        np.where(
            (c.acquisition == _SOURCE["walk_in"]) & (rng.random(n) < 0.6),
            0,  # walk-ins register at the till
            rng.exponential(18.0, size=n),
        ),
    ).astype(np.int32)
    first = c.signup + lag
    buyer &= first <= window.last
    c.first[buyer] = first[buyer]

    # episode 1: one-time buyers, loyal customers, and the rest leave after a while;
    # the existing base (first order before the window) was still buying at its start
    before = c.first < 0
    loyal_p = np.clip(0.18 + 0.08 * np.log(c.size), 0.05, 0.6)
    one_time = ~before & (rng.random(n) < np.where(company, 0.12, 0.30))
    loyal = ~one_time & (rng.random(n) < loyal_p)
    life = rng.exponential(420.0, size=n).astype(np.int32)
    end1 = np.where(one_time, c.first, np.where(loyal, NEVER, np.maximum(c.first, 0) + life))
    c.end1[buyer] = end1[buyer]

    # an unresolved complaint in the last year; most of these customers stop soon after
    recent = max(0, window.days - 365)
    eligible = buyer & (c.first < window.last - 30) & (c.end1 >= recent + 30)
    unhappy = eligible & (rng.random(n) < 0.035)
    low = np.maximum(c.first + 1, recent)
    high = np.minimum(c.end1, window.last)
    c.complaint[unhappy] = (low + rng.random(n) * (high - low + 1)).astype(np.int32)[unhappy]
    stop = unhappy & (rng.random(n) < 0.75)
    c.end1[stop] = (c.complaint + rng.exponential(10.0, size=n).astype(np.int32))[stop]

    # comebacks: churned customers (> 180 quiet days) who return for a second episode
    gone = buyer & ~unhappy & (c.end1 < window.last - 240)
    back = c.end1 + 181 + rng.exponential(150.0, size=n).astype(np.int32)
    comeback = gone & (rng.random(n) < 0.15) & (back <= window.last)
    c.back[comeback] = back[comeback]
    stay = np.where(rng.random(n) < 0.4, NEVER, back + rng.exponential(200.0, size=n))
    c.end2[comeback] = stay.astype(np.int64).clip(max=NEVER)[comeback]


def draw_referrals(rng: np.random.Generator, c: Customers) -> None:
    """Pick a referrer for each referred customer (in place).

    The referrer is a customer whose first order (inside the window, so the data shows
    it) came before the referee's sign-up, chosen with heavy-tailed (Pareto) weights so
    that a few advocates refer many. Referred customers without any earlier buyer
    become walk-ins.
    """
    referred = np.flatnonzero(c.acquisition == _SOURCE["referral"])
    buyers = np.flatnonzero((c.first >= 0) & (c.first < NEVER))
    order = buyers[np.argsort(c.first[buyers], kind="stable")]
    advocacy = (rng.pareto(2.0, size=len(c)) + 0.01) * c.size**0.3
    cum = np.cumsum(advocacy[order])
    eligible = np.searchsorted(c.first[order], c.signup[referred], side="left")
    has = eligible > 0
    u = rng.random(len(referred)) * cum[np.maximum(eligible, 1) - 1]
    pick = np.minimum(np.searchsorted(cum, u, side="right"), np.maximum(eligible, 1) - 1)
    c.referred_by[referred[has]] = order[pick[has]] + 1
    orphans = referred[~has]
    c.acquisition[orphans] = _SOURCE["walk_in"]
    c.has_lead[orphans] = False


def draw_leads(rng: np.random.Generator, c: Customers, window: Window) -> dict[str, np.ndarray]:
    """Leads: one converted lead per lead customer plus the unconverted ones.

    A converted lead is created days to weeks before its customer's sign-up; for each
    source the unconverted leads make the source's conversion rate come out at
    :data:`~crm_batch.source.demo.model.LEAD_CONVERSION`. The lead table covers the
    window: customers who signed up before it keep their acquisition channel but have
    no lead row. Returns column arrays sorted by creation time: ``at`` (seconds since
    the window start), ``source``, ``team``, ``customer`` (row index, -1 when not
    converted).
    """
    converted = np.flatnonzero(c.has_lead & (c.signup >= 0))
    day = c.signup[converted] - 1 - rng.exponential(10.0, size=len(converted)).astype(np.int64)
    source = c.acquisition[converted].astype(np.int64)
    team = c.team[converted].astype(np.int64)
    customer = converted.astype(np.int64)

    counts = np.bincount(source, minlength=len(ACQUISITION_CHANNELS))
    open_counts = [
        round(counts[_SOURCE[name]] * (1 - rate) / rate) for name, rate in LEAD_CONVERSION.items()
    ]
    n_open = int(sum(open_counts))
    open_source = np.repeat([_SOURCE[name] for name in LEAD_CONVERSION], open_counts)
    open_day = sample_days(rng, _growth(window), np.zeros(n_open, np.int64), window.last)
    shares = np.array([t.share for t in TEAMS])
    open_team = rng.choice(len(TEAMS), size=n_open, p=shares / shares.sum())

    day = np.concatenate([day, open_day])
    at = day.astype(np.int64) * 86_400 + seconds_of_day(rng, len(day))
    order = np.argsort(at, kind="stable")
    return {
        "at": at[order],
        "source": np.concatenate([source, open_source])[order],
        "team": np.concatenate([team, open_team])[order],
        "customer": np.concatenate([customer, np.full(n_open, -1)])[order],
    }
