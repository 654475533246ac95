"""The sent-ledger: which messages went out, so a re-run never sends a report twice.

One row per Message-ID in the ``deliveries`` table of the batch database, next to
``batch_runs``; it is created on first use. Why the database and not a file under
``paths.data_dir``: runs on different machines share the database (and its advisory
lock) but not a folder, every write is a short transaction, and the database already
holds the other records of a run.

A message is marked ``sending`` before the SMTP transaction and ``sent`` when the server
has accepted it, each in its own transaction. A ``sending`` row left by a killed process
means "maybe sent": the next run sends it again with the same Message-ID (at least once,
never silently lost) and says so in the log. ``failed`` rows are tried again too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, Table, select, update

from crm_batch.schema import build_metadata

log = logging.getLogger(__name__)

SENDING, SENT, FAILED = "sending", "sent", "failed"
#: Longest error text stored (a server reply, not a traceback).
MAX_ERROR_CHARS = 1000


def deliveries_table() -> Table:
    """The ``deliveries`` table (one row per Message-ID; times are naive local times),
    defined with the other output tables in :mod:`crm_batch.schema`."""
    return build_metadata().tables["deliveries"]


class SentLedger:
    """Reads and writes the ``deliveries`` rows through ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.table = deliveries_table()

    def ensure(self) -> None:
        """Create the table if it does not exist yet."""
        self.table.create(self.engine, checkfirst=True)

    def statuses(self, message_ids: Iterable[str]) -> dict[str, str]:
        """The recorded status of each of ``message_ids`` that has a row."""
        ids = list(dict.fromkeys(message_ids))
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    select(self.table.c.message_id, self.table.c.status).where(
                        self.table.c.message_id.in_(chunk)
                    )
                )
                found.update({row.message_id: row.status for row in rows})
        return found

    def mark_sending(self, message_id: str, values: dict[str, object], at: datetime) -> None:
        """Record that ``message_id`` is about to be handed to the server."""
        row = {**values, "status": SENDING, "updated_at": at, "sent_at": None, "error": None}
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(self.table.c.message_id).where(self.table.c.message_id == message_id)
            ).first()
            if exists:
                conn.execute(
                    update(self.table).where(self.table.c.message_id == message_id).values(row)
                )
            else:
                conn.execute(self.table.insert().values(message_id=message_id, attempts=0, **row))

    def mark_done(
        self, message_id: str, status: str, at: datetime, attempts: int, error: str | None = None
    ) -> None:
        """Record the outcome (``sent`` or ``failed``) of ``message_id``."""
        values: dict[str, object] = {
            "status": status,
            "updated_at": at,
            "attempts": self.table.c.attempts + attempts,
            "error": error[:MAX_ERROR_CHARS] if error else None,
        }
        if status == SENT:
            values["sent_at"] = at
        with self.engine.begin() as conn:
            conn.execute(
                update(self.table).where(self.table.c.message_id == message_id).values(values)
            )
