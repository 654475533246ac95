"""The sent-ledger: which messages went out, so a re-run never sends a report twice.

One row per message in the ``deliveries`` table of the batch database, next to
``batch_runs``; it is created on first use. The key (``message_id``) is the report's
identity - kind, scope, period, language, recipient - never its bytes
(:func:`crm_batch.delivery.mail.message_id`), so a report rendered again is still the
same message. Why the database and not a file under
``paths.data_dir``: runs on different machines share the database (and its advisory
lock) but not a folder, every write is a short transaction, and the database already
holds the other records of a run.

A message is marked ``sending`` before the SMTP transaction and ``sent`` when the server
has accepted it, each in its own transaction. A ``sending`` row left by a killed process
means "maybe sent": the next run sends it again with the same Message-ID (at least once,
never silently lost) and says so in the log. ``failed`` rows are tried again too, by
the next run or by ``crm-batch delivery resend --failed``. ``content_sha256`` holds the
digest of the data a sent report showed, for ``email.only_if_changed``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, Table, select, text, update
from sqlalchemy.exc import DBAPIError

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
        """Create the table if it does not exist yet, and add ``content_sha256`` to a
        table made by an older version (the only column added since)."""
        self.table.create(self.engine, checkfirst=True)
        try:  # a probe, not the inspector: DuckDB's cannot list a table's columns
            with self.engine.connect() as conn:
                conn.execute(select(self.table.c.content_sha256).limit(0))
        except DBAPIError:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE deliveries ADD COLUMN content_sha256 VARCHAR(64)"))
            log.info("deliveries: added the content_sha256 column")

    def last_sent_digest(
        self, kind: str, team: str | None, language: str, recipient: str
    ) -> str | None:
        """The content digest of the last report of ``kind`` for ``team`` in ``language``
        sent to ``recipient`` (any period), or None."""
        c = self.table.c
        query = (
            select(c.content_sha256)
            .where(
                c.status == SENT,
                c.report_kind == kind,
                c.team == (team or ""),
                c.language == language,
                c.recipient == recipient,
            )
            .order_by(c.sent_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def failed(self) -> list[dict[str, object]]:
        """The rows whose status is ``failed`` (oldest first), as dicts."""
        query = select(self.table).where(self.table.c.status == FAILED)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(self.table.c.updated_at)).mappings().all()
        return [dict(row) for row in rows]

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
