"""Service tickets: inquiries and complaints about orders, resolution times, scores.

Tickets follow paid orders (busy customers have more of them), opened a few days after
the order. Inquiries are answered within hours; complaints take longer, so a good share
is resolved after more than 24 hours, and slow answers get worse satisfaction scores
(1..5, asked of about 60 % of resolved tickets). Tickets still unanswered at the end of
the window stay open (``resolved_at`` NULL), and so do the complaints that drive
customers away (``Customers.complaint``): every older open complaint is one of those.
"""

from __future__ import annotations

import numpy as np

from crm_batch.schema import TICKET_KINDS
from crm_batch.source.demo.customers import NEVER, Customers
from crm_batch.source.demo.orders import PAID
from crm_batch.source.demo.seasons import Window, seconds_of_day

COMPLAINT, INQUIRY = TICKET_KINDS.index("complaint"), TICKET_KINDS.index("inquiry")
TICKETS_PER_ORDER = 0.055
#: Satisfaction 1..5 probabilities: slow complaint, fast complaint, inquiry.
_SCORES = np.array(
    [
        [0.25, 0.30, 0.25, 0.15, 0.05],
        [0.05, 0.10, 0.25, 0.35, 0.25],
        [0.02, 0.03, 0.15, 0.35, 0.45],
    ]
)


def draw_tickets(
    rng: np.random.Generator, c: Customers, orders: dict[str, np.ndarray], window: Window
) -> dict[str, np.ndarray]:
    """Ticket columns sorted by opening time: ``customer`` (row index), ``opened`` and
    ``resolved`` (seconds since the window start; -1 = not resolved), ``kind``,
    ``satisfaction`` (0 = none)."""
    paid = np.flatnonzero(orders["status"] == PAID)
    count = round(len(paid) * TICKETS_PER_ORDER)
    about = np.sort(rng.choice(paid, size=count)) if len(paid) else np.zeros(0, np.int64)
    customer = orders["customer"][about]
    day = np.minimum(orders["day"][about] + rng.exponential(3.0, size=count), window.last)
    kind = np.where(rng.random(count) < 0.38, COMPLAINT, INQUIRY)

    unhappy = np.flatnonzero(c.complaint < NEVER)
    customer = np.concatenate([customer, unhappy])
    day = np.concatenate([day.astype(np.int64), c.complaint[unhappy]])
    kind = np.concatenate([kind, np.full(len(unhappy), COMPLAINT)]).astype(np.int8)
    n = len(customer)
    opened = day * 86_400 + seconds_of_day(rng, n, consumer=True)

    hours = np.where(
        kind == COMPLAINT,
        rng.lognormal(np.log(16.0), 1.0, size=n),
        rng.lognormal(np.log(3.0), 1.0, size=n),
    )
    resolved = opened + (hours * 3600).astype(np.int64)
    still_open = resolved >= window.days * 86_400
    still_open[count:] = True  # the complaints that drove customers away
    resolved = np.where(still_open, -1, resolved)

    profile = np.where(kind == INQUIRY, 2, np.where(hours > 24, 0, 1))
    cum = np.cumsum(_SCORES, axis=1)[profile]
    score = 1 + (rng.random((n, 1)) >= cum).sum(axis=1)
    asked = ~still_open & (rng.random(n) < 0.6)
    satisfaction = np.where(asked, np.minimum(score, 5), 0).astype(np.int8)

    order = np.lexsort((customer, opened))
    cols = {
        "customer": customer,
        "opened": opened,
        "resolved": resolved,
        "kind": kind,
        "satisfaction": satisfaction,
    }
    return {name: values[order] for name, values in cols.items()}
