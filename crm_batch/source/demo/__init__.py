"""The demo database: a realistic synthetic company in the canonical schema.

:func:`generate_demo` draws customers, leads, orders, tickets, campaigns and touches
as canonical frames (deterministic for a seed and an end date); :func:`load_demo` bulk
loads them into DuckDB, PostgreSQL, MariaDB/MySQL or SQLite, refusing to overwrite
tables it did not make. :func:`draw_followups` draws what the demo's sales reps typed
into their workbooks (stored in the state database, not a source table).
"""

from crm_batch.source.demo.followups import draw_followups
from crm_batch.source.demo.generate import generate_demo
from crm_batch.source.demo.load import DEMO_INFO_TABLE, load_demo
from crm_batch.source.demo.model import TEAMS, DemoData, DemoTeam
from crm_batch.source.demo.people import HOSTILE_NAMES

__all__ = [
    "DEMO_INFO_TABLE",
    "HOSTILE_NAMES",
    "TEAMS",
    "DemoData",
    "DemoTeam",
    "draw_followups",
    "generate_demo",
    "load_demo",
]
