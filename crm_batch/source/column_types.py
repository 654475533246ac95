"""What a mapped column really holds, against the type its mapping file promises.

``check-source`` reads a sample of each mapped relation as the database driver returns
it (before any conversion of crm-batch's) and asks, per column: do these values have
the kind the canonical data model expects? The answer is a :class:`ColumnVerdict`:
fine, a warning (the KPIs handle it, but it is worth fixing), or an error (the KPIs
would be wrong or the run would fail) with the change to make in the mapping file.

The rules are the ones the KPI queries depend on: dates must compare as dates (text
dates compare as text and move window boundaries, a time of day on an order date drops
the day's later orders from ``<= T``), money must be numbers, ids must be integers or
text (a decimal id turns ``1`` into ``1.0`` and stops matching).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

Severity = Literal["ok", "warning", "error"]

#: The kinds a sample value can have (what the driver returned).
KINDS = ("bool", "int", "float", "decimal", "date", "timestamp", "text", "bytes", "other")


def value_kind(value: Any) -> str | None:
    """The kind of one driver value (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return None if value != value else "float"  # NaN is how some drivers say NULL
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    return "other"


@dataclass(frozen=True)
class ColumnVerdict:
    """One column of one mapped relation: what was expected, what was found, and what to
    do about a difference."""

    table: str
    column: str
    expected: str
    found: str  # kinds seen, e.g. "int", "text", "int+text"; "all NULL" when no value
    severity: Severity
    problem: str = ""
    fix: str = ""
    example: str = ""

    def line(self) -> str:
        """One line for the check-source report."""
        head = f"{self.table}.{self.column}: expected {self.expected}, found {self.found}"
        if self.severity == "ok":
            return head
        parts = [f"{self.severity.upper()} {head}: {self.problem}"]
        if self.example:
            parts.append(f"e.g. {self.example}")
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return "; ".join(parts)


_NUMBER = {"int", "float", "decimal"}


def judge_column(
    table: str,
    column: str,
    expected: str,
    values: Iterable[Any],
    *,
    show: Any = repr,
    dialect: str = "",
) -> ColumnVerdict:
    """The verdict on a column whose sample is ``values`` and whose mapping header
    promises ``expected`` (an sql/ column type: id, text, date, timestamp, int, float,
    money, bool). ``show`` renders an offending example value (escaped by the caller's
    rule for untrusted text); ``dialect`` words the fix in the source's SQL."""
    kinds: Counter[str] = Counter()
    first_of: dict[str, Any] = {}
    late_time = None
    fractional = None
    for value in values:
        kind = value_kind(value)
        if kind is None:
            continue
        kinds[kind] += 1
        first_of.setdefault(kind, value)
        if kind == "timestamp" and late_time is None and value.time() != dt.time(0):
            late_time = value
        if kind in {"float", "decimal"} and fractional is None and not _whole(value):
            fractional = value
    found = "+".join(k for k in KINDS if k in kinds) or "all NULL"

    def verdict(severity: Severity, problem: str = "", fix: str = "", example: Any = None):
        shown = "" if example is None else show(example)
        return ColumnVerdict(table, column, expected, found, severity, problem, fix, shown)

    seen = set(kinds)
    if not seen:
        return verdict("ok")
    cast = cast_sql(expected, column, dialect)
    if expected == "id":
        if seen <= {"int"} or seen <= {"text"}:
            return verdict("ok")
        if seen <= {"int", "text"}:
            return verdict(
                "error",
                "ids are partly numbers and partly text, so equal-looking keys may not match",
                f"make every id text in the mapping: cast(... as varchar) as {column}",
                first_of["int"],
            )
        odd = next(k for k in KINDS if k in seen - {"int", "text"})
        return verdict(
            "error",
            f"ids arrive as {odd} values (1 would become 1.0 and stop matching)",
            f"cast(... as bigint) as {column}, or cast to varchar for text ids",
            first_of[odd],
        )
    if expected in {"date", "timestamp"}:
        if "text" in seen:
            return verdict(
                "error",
                "dates stored as text compare as text, which moves every window boundary",
                cast,
                first_of["text"],
            )
        if not seen <= {"date", "timestamp"}:
            odd = next(k for k in KINDS if k in seen - {"date", "timestamp"})
            return verdict("error", f"{odd} values where dates belong", cast, first_of[odd])
        if expected == "date" and late_time is not None:
            return verdict(
                "error",
                "a date column holds times of day, so orders after midnight on the "
                "business date fall outside '<= T'",
                cast,
                late_time,
            )
        return verdict("ok")
    if expected in {"money", "float"}:
        if seen <= _NUMBER:
            return verdict("ok")
        odd = next(k for k in KINDS if k in seen - _NUMBER)
        return verdict("error", f"{odd} values where numbers belong", cast, first_of[odd])
    if expected == "int":
        if seen <= {"int", "bool"}:
            return verdict("ok")
        if seen <= _NUMBER | {"bool"} and fractional is None:
            return verdict("ok")
        if seen <= _NUMBER | {"bool"}:
            return verdict("error", "fractions where whole numbers belong", cast, fractional)
        odd = next(k for k in KINDS if k in seen - {"int", "bool"})
        return verdict("error", f"{odd} values where whole numbers belong", cast, first_of[odd])
    if expected == "bool":
        if seen <= {"bool", "int"}:
            return verdict("ok")
        odd = next(k for k in KINDS if k in seen - {"bool", "int"})
        return verdict(
            "error",
            f"{odd} values where true/false belongs",
            f"case when ... then true else false end as {column}",
            first_of[odd],
        )
    # text
    if seen <= {"text"}:
        return verdict("ok")
    if seen <= _NUMBER | {"text"}:
        return verdict(
            "warning",
            "numbers where text belongs (a phone number or code loses its leading zeros)",
            f"cast(... as varchar) as {column}",
            first_of[next(k for k in KINDS if k in seen - {"text"})],
        )
    odd = next(k for k in KINDS if k in seen - {"text"})
    return verdict("warning", f"{odd} values where text belongs", cast, first_of[odd])


def cast_sql(expected: str, column: str, dialect: str = "") -> str:
    """The mapping-file expression that gives ``column`` the ``expected`` kind. SQLite
    has no date type: SQLAlchemy's stored text shapes compare like dates there, and
    ``cast(... as date)`` would give a number."""
    if dialect == "sqlite" and expected == "date":
        return f"date(...) as {column}"
    if dialect == "sqlite" and expected == "timestamp":
        return f"strftime('%Y-%m-%d %H:%M:%S', ...) || '.000000' as {column}"
    return f"cast(... as {_SQL_TYPE.get(expected, expected)}) as {column}"


def _whole(value: float | Decimal) -> bool:
    return math.isfinite(value) and value == int(value)


_SQL_TYPE = {
    "id": "bigint",
    "text": "varchar",
    "date": "date",
    "timestamp": "timestamp",
    "int": "integer",
    "float": "double precision",
    "money": "decimal(14, 2)",
    "bool": "boolean",
}
