"""``generate_demo``: draw the whole demo company and assemble the canonical frames.

One ``numpy.random.Generator(PCG64(seed))`` feeds every step in a fixed order, so the
same seed and end date give identical frames. Every step is vectorised over customers
or orders; the only Python loops run over teams, customer kinds and campaigns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from crm_batch.schema import CAMPAIGN_CHANNELS, ORDER_STATUSES, TICKET_KINDS
from crm_batch.source.demo import people
from crm_batch.source.demo.customers import (
    OWNERS,
    Customers,
    draw_customers,
    draw_leads,
    draw_lifecycles,
    draw_referrals,
)
from crm_batch.source.demo.marketing import (
    attributable_orders,
    campaign_costs,
    draw_campaigns,
    draw_touches,
)
from crm_batch.source.demo.model import (
    ACQUISITION_CHANNELS,
    CATEGORIES,
    LEAD_SOURCES,
    ORDER_CHANNELS,
    TEAMS,
    DemoData,
)
from crm_batch.source.demo.orders import draw_orders
from crm_batch.source.demo.seasons import Window, cumulative, demand
from crm_batch.source.demo.tickets import draw_tickets

T = TypeVar("T")
TEAM_NAMES = tuple(team.name for team in TEAMS)
#: Touches per order row: 10 M orders come with about 4 M touches.
TOUCHES_PER_ORDER = 0.4
_STEPS = (
    "customers",
    "lifecycles",
    "referrals",
    "leads",
    "campaigns",
    "orders",
    "tickets",
    "frames",
)


def generate_demo(
    *,
    customers: int = 20_000,
    orders: int = 200_000,
    seed: int = 42,
    end_date: date,
    years: int = 3,
    progress: bool = False,
) -> DemoData:
    """A synthetic company with ``customers`` customers and ``orders`` order rows over
    the ``years`` years up to ``end_date``; deterministic for ``seed`` and ``end_date``.

    ``orders`` counts every row of the orders table (paid, cancelled and refund rows).
    ``progress`` shows a tqdm bar over the generation steps.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, not {customers}")
    if orders < 0:
        raise ValueError(f"orders must not be negative, not {orders}")
    if not 1 <= years <= 20:
        raise ValueError(f"years must be between 1 and 20, not {years}")
    rng = np.random.Generator(np.random.PCG64(seed))
    window = Window.ending(end_date, years)
    weights = demand(window)
    with tqdm(total=len(_STEPS), desc="demo: generate", disable=not progress) as bar:
        c = _step(bar, "customers", draw_customers, rng, customers, window)
        _step(bar, "lifecycles", draw_lifecycles, rng, c, window)
        _step(bar, "referrals", draw_referrals, rng, c)
        lead_cols = _step(bar, "leads", draw_leads, rng, c, window)
        camp_cols, touch_cols, attributed = _step(
            bar, "campaigns", _marketing, rng, c, window, weights, orders
        )
        order_cols = _step(
            bar, "orders", draw_orders, rng, c, window, cumulative(weights), orders, attributed
        )
        ticket_cols = _step(bar, "tickets", draw_tickets, rng, c, order_cols, window)
        tables = _step(
            bar,
            "frames",
            _frames,
            rng,
            c,
            window,
            {"leads": lead_cols, "orders": order_cols, "tickets": ticket_cols},
            camp_cols,
            touch_cols,
        )
    return DemoData(
        **tables,
        seed=seed,
        end_date=end_date,
        years=years,
        caused_orders=_caused_orders(order_cols["touch"]),
    )


def _step(bar: tqdm, name: str, run: Callable[..., T], *args: Any) -> T:
    """Run one generation step under the progress bar."""
    bar.set_postfix_str(name)
    result = run(*args)
    bar.update()
    return result


def _marketing(
    rng: np.random.Generator, c: Customers, window: Window, weights: np.ndarray, orders: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Campaigns, their touches and the orders the touches bring."""
    campaigns = draw_campaigns(rng, window, weights, len(c))
    touches = draw_touches(rng, c, campaigns, window, round(orders * TOUCHES_PER_ORDER))
    return campaigns, touches, attributable_orders(rng, c, touches, window)


def _frames(
    rng: np.random.Generator,
    c: Customers,
    window: Window,
    cols: dict[str, dict[str, np.ndarray]],
    campaigns: dict[str, np.ndarray],
    touches: dict[str, np.ndarray],
) -> dict[str, pd.DataFrame]:
    """The canonical frames from the drawn column arrays."""
    return {
        "customers": _customer_frame(rng, c, window),
        "leads": _lead_frame(cols["leads"], window),
        "orders": _order_frame(cols["orders"], window),
        "tickets": _ticket_frame(cols["tickets"], window),
        "campaigns": _campaign_frame(campaigns, touches, cols["orders"], window),
        "touches": _touch_frame(touches, window),
    }


def _caused_orders(touch: np.ndarray) -> pd.DataFrame:
    """order_id -> touch_id of every order a sent touch caused (ids as in the frames)."""
    rows = np.flatnonzero(touch >= 0)
    return pd.DataFrame({"order_id": rows + 1, "touch_id": touch[rows] + 1})


def _ids(n: int) -> np.ndarray:
    return np.arange(1, n + 1, dtype=np.int64)


def _labels(codes: np.ndarray, values: tuple[str, ...]) -> pd.Categorical:
    """Small integer codes -> a categorical over the whole value set."""
    return pd.Categorical.from_codes(codes.astype(np.int16), categories=list(values))


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """Integers with NA where ``missing``."""
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _customer_frame(rng: np.random.Generator, c: Customers, window: Window) -> pd.DataFrame:
    names, phones, emails = people.identities(
        rng,
        c.kind,
        np.array([t.area_code for t in TEAMS])[c.team],
        np.array([t.city_zh for t in TEAMS])[c.team],
    )
    regions = tuple(dict.fromkeys(t.region for t in TEAMS))
    region_of_team = np.array([regions.index(t.region) for t in TEAMS])
    return pd.DataFrame(
        {
            "customer_id": _ids(len(c)),
            "name": people.plant_hostile_names(names),
            "team": _labels(c.team, TEAM_NAMES),
            "owner": _labels(c.owner, OWNERS),
            "region": _labels(region_of_team[c.team], regions),
            "acquisition_channel": _labels(c.acquisition, ACQUISITION_CHANNELS),
            "signup_date": window.dates(c.signup),
            "birthday": people.birthdays(rng, c.kind, np.datetime64(window.end)),
            "referred_by": _nullable(c.referred_by, c.referred_by == 0),
            "phone": phones,
            "email": emails,
            "marketing_opt_out": c.opt_out,
        }
    )


def _lead_frame(cols: dict[str, np.ndarray], window: Window) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": _ids(len(cols["at"])),
            "created_at": window.timestamps(cols["at"]),
            "source": _labels(cols["source"], LEAD_SOURCES),
            "team": _labels(cols["team"], TEAM_NAMES),
            "customer_id": _nullable(cols["customer"] + 1, cols["customer"] < 0),
        }
    )


def _order_frame(cols: dict[str, np.ndarray], window: Window) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": _ids(len(cols["day"])),
            "customer_id": cols["customer"] + 1,
            "order_date": window.dates(cols["day"]),
            "amount": cols["amount"],
            "status": _labels(cols["status"], ORDER_STATUSES),
            "channel": _labels(cols["channel"], ORDER_CHANNELS),
            "category": _labels(cols["category"], CATEGORIES),
        }
    )


def _ticket_frame(cols: dict[str, np.ndarray], window: Window) -> pd.DataFrame:
    resolved = window.timestamps(np.maximum(cols["resolved"], 0))
    satisfaction = cols["satisfaction"]
    return pd.DataFrame(
        {
            "ticket_id": _ids(len(cols["opened"])),
            "customer_id": cols["customer"] + 1,
            "opened_at": window.timestamps(cols["opened"]),
            "resolved_at": np.where(cols["resolved"] >= 0, resolved, np.datetime64("NaT", "ns")),
            "kind": _labels(cols["kind"], TICKET_KINDS),
            "satisfaction": _nullable(satisfaction, satisfaction == 0),
        }
    )


def _campaign_frame(
    cols: dict[str, np.ndarray],
    touches: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    window: Window,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "campaign_id": _ids(len(cols["day"])),
            "name": pd.Series(cols["name"], dtype="str"),
            "channel": _labels(cols["channel"], CAMPAIGN_CHANNELS),
            "cost": campaign_costs(cols, touches, orders),
            "started_at": window.timestamps(cols["at"]),
        }
    )


def _touch_frame(cols: dict[str, np.ndarray], window: Window) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "touch_id": _ids(len(cols["at"])),
            "campaign_id": cols["campaign"] + 1,
            "customer_id": cols["customer"] + 1,
            "sent_at": window.timestamps(cols["at"]),
            "opened": cols["opened"],
            "clicked": cols["clicked"],
            "opted_out": cols["opted_out"],
            "is_control": cols["is_control"],
        }
    )
