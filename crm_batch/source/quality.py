"""Source data checks, run inside the database.

Every file in ``sql/checks/`` (same header contract as ``sql/``, dialect variants
included) is one check, except :data:`RECONCILIATION_QUERIES` (what the revenue reconciliation,
:mod:`crm_batch.app.reconciliation`, reads). A check returns at most
``:sample_rows`` example rows, each carrying ``failing_rows``, the number of rows that
fail it; no rows means it passed. The counting and the sampling (a window function,
portable to DuckDB, PostgreSQL, MySQL/MariaDB and SQLite) happen in the database, so
only a handful of rows ever reach Python, whatever the table sizes.

Each check has a severity and a handling rule (:data:`CHECK_RULES`, the README's "Data
checks" table): an **error** rejects the run, because no rule can make the KPIs right;
a **warning** is data the KPIs handle by its documented rule, reported so that someone
can clean it. :func:`check_source` runs them all and returns one
:class:`QualityReport`; :meth:`QualityReport.raise_for_errors` raises a single
:class:`DataError` listing every failing check with sample rows.
"""

from __future__ import annotations

import functools
import logging
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from crm_batch.errors import DataError, SqlContractError
from crm_batch.source.concurrent import query_workers, run_concurrently
from crm_batch.source.db import dialect_name, run_query
from crm_batch.source.mapping import SourceMapping
from crm_batch.source.params import standard_params
from crm_batch.source.sql_files import SqlCatalog, SqlQuery
from crm_batch.urls import safe_url

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]

#: The checks' folder inside the sql/ folder.
CHECKS_DIR_NAME = "checks"
#: The queries in sql/checks/ that are not checks but feed the revenue reconciliation
#: (crm_batch.app.reconciliation): the source's totals by date class, and the customer
#: ids outside the register of T.
TOTALS_QUERY = "revenue_totals"
NOT_REGISTERED_QUERY = "customers_not_registered"
RECONCILIATION_QUERIES = (TOTALS_QUERY, NOT_REGISTERED_QUERY)
#: Queries in sql/checks/ that are not checks but give several checks' rows in one pass
#: over a table, with the checks they give (each row names its check in ``check_name``).
#: :func:`check_source` runs one in place of its checks when all of them are in the
#: folder; each check is still reported on its own, exactly as its file would give it.
FUSED_QUERIES: dict[str, tuple[str, ...]] = {
    "orders_row_checks": (
        "orders_bad_amount",
        "orders_future_dated",
        "orders_missing_customer",
        "orders_missing_date",
        "orders_unknown_customer",
        "orders_unknown_status",
        "orders_unregistered_customer",
    ),
}
#: The column of a fused query naming the check of each row.
CHECK_NAME_COLUMN = "check_name"
#: Example rows per failing check.
SAMPLE_ROWS = 5
#: Longest sample value shown (escaped characters count); longer ones are cut.
MAX_VALUE_CHARS = 60


@dataclass(frozen=True)
class CheckRule:
    """What a failing check means for the run: its severity and how the KPIs handle it."""

    severity: Severity
    rule: str


#: Severity and handling rule of each shipped check (the README's "Data checks" table).
CHECK_RULES: dict[str, CheckRule] = {
    "customers_duplicate_id": CheckRule(
        "error",
        "The run stops: a customer id must name exactly one customer, or orders and "
        "tiers would be credited to the wrong person. Remove the duplicate or NULL ids.",
    ),
    "dates_stored_as_text": CheckRule(
        "error",
        "The run stops: SQLite compares these dates as text, so they would move every "
        "window boundary by a day without a word. Store dates as SQLAlchemy and the demo "
        "do: 'YYYY-MM-DD' in date columns (update orders set order_date = "
        "date(order_date)), 'YYYY-MM-DD HH:MM:SS.ffffff' in timestamp columns (update leads "
        "set created_at = strftime('%Y-%m-%d %H:%M:%S', created_at) || '.000000'), or "
        "convert them in the mapping file (date(order_date) as order_date in orders.sql).",
    ),
    "customers_missing_signup": CheckRule(
        "warning",
        "The register of T holds customers signed up on or before T, so these customers "
        "are in no KPI; their orders count as 'unregistered customer' in the "
        "reconciliation.",
    ),
    "customers_bad_referrer": CheckRule(
        "warning",
        "A self-referral is not a referral. A referrer missing from customers credits no "
        "one: the customer still counts as referred (referral share, successful "
        "referrals), but no customer or team gets the credit.",
    ),
    "customers_team_not_normal": CheckRule(
        "warning",
        "Team names are normalised when read: trimmed, every run of whitespace made one "
        "space. NULL or blank teams form the '(unassigned)' scope (its own workbook and "
        "report). A name still over 64 characters or holding control characters gets no "
        "snapshot, workbook or report (its customers count for the company) and the run "
        "completes with problems (exit 8). Clean the names at the source.",
    ),
    "customer_ids_whitespace": CheckRule(
        "error",
        "The run stops: an empty or space-padded customer id is a broken key (exports "
        "and other systems drop the spaces, so orders stop matching it, and MySQL/MariaDB "
        "ignore trailing spaces where the other databases do not). Clean the ids at the "
        "source, or trim them in the mapping files (customers.sql and every file that "
        "returns a customer_id).",
    ),
    "customer_ids_case_variants": CheckRule(
        "warning",
        "Ids are opaque and case-sensitive: 'C-10' and 'c-10' are two customers, each "
        "with its own orders.",
    ),
    "customer_ids_merged_by_database": CheckRule(
        "error",
        "The run stops: the database compares these different ids as equal (a "
        "case-insensitive or space-padding collation, the MySQL/MariaDB default), so its "
        "joins would merge customers that crm-batch keeps apart. Give the id columns a "
        "binary collation (utf8mb4_nopad_bin, utf8mb4_0900_bin) or clean the ids.",
    ),
    "orders_duplicate_id": CheckRule(
        "error",
        "The run stops: an order id must identify one row; a repeated id counts the "
        "order's money twice (or hides a conflicting edit). Remove the duplicates.",
    ),
    "orders_unknown_status": CheckRule(
        "error",
        "The run stops: the KPIs know only 'paid', 'refunded' and 'cancelled' (lower "
        "case) and would silently drop any other row. Map your statuses onto these three.",
    ),
    "orders_bad_amount": CheckRule(
        "error",
        "The run stops: a paid or refunded row needs a positive amount. A refund is a "
        "'refunded' row with a positive amount; a negative 'paid' amount is a return "
        "mapped the wrong way, a zero one a free order to map as 'cancelled'.",
    ),
    "orders_missing_date": CheckRule(
        "error",
        "The run stops: a paid or refunded row without a date falls in no window.",
    ),
    "orders_missing_customer": CheckRule(
        "warning",
        "Left out of every per-customer KPI; their net amount is shown as 'no customer' "
        "in the reconciliation.",
    ),
    "orders_unknown_customer": CheckRule(
        "warning",
        "Left out of every per-customer KPI; their net amount is shown as 'unknown "
        "customer' in the reconciliation. Ids are compared exactly, so an id that differs "
        "from a customer's only by letter case or spaces lands here too.",
    ),
    "orders_unregistered_customer": CheckRule(
        "warning",
        "The register of T does not hold the customer yet, so these orders are left out "
        "of T's KPIs and shown as 'unregistered customer' in the reconciliation.",
    ),
    "orders_future_dated": CheckRule(
        "warning",
        "Every window ends at T, so these rows change no KPI (shown as 'after T' in the "
        "reconciliation); usually a typing error in the date.",
    ),
    "refunds_without_order": CheckRule(
        "warning",
        "The refund still lowers that customer's net revenue (which may become "
        "negative); the customer is not a buyer until a paid order.",
    ),
    "tickets_unknown_customer": CheckRule(
        "warning",
        "Counted in the company's service KPIs, in no team's and in no churn warning.",
    ),
    "touches_unknown_customer": CheckRule(
        "warning",
        "Counted in the company's campaign funnel (touches, opens, clicks, opt-outs), in "
        "no team's.",
    ),
    "leads_unknown_customer": CheckRule(
        "warning",
        "The lead counts as created; it counts as converted only if paid orders carry "
        "the same customer id.",
    ),
}

#: Severity and rule of a check file that no rule is registered for.
UNREGISTERED_RULE = CheckRule(
    "error", "No rule is registered for this check, so a failing row rejects the run."
)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: how many rows fail it and a few of them."""

    name: str
    severity: Severity
    failing: int
    sample: pd.DataFrame  # at most SAMPLE_ROWS rows, the query's columns but failing_rows
    column_types: Mapping[str, str]  # sample column -> sql/ header type
    description: str  # what the check finds (its sql/checks header)
    rule: str  # how the run handles it (CHECK_RULES)

    @property
    def failed(self) -> bool:
        return self.failing > 0

    def sample_lines(self) -> list[str]:
        """The sample rows as ``column=value`` lines, safe for a terminal."""
        return [
            ", ".join(
                f"{column}={show_value(row[column], self.column_types.get(column, 'text'))}"
                for column in self.sample.columns
            )
            for _, row in self.sample.iterrows()
        ]


@dataclass(frozen=True)
class QualityReport:
    """Every check's result for one business date on one database."""

    as_of: date
    database: str  # the URL without password
    results: tuple[CheckResult, ...]

    @property
    def errors(self) -> list[CheckResult]:
        """Failing checks that reject the run."""
        return [r for r in self.results if r.failed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failing checks handled by their documented rule."""
        return [r for r in self.results if r.failed and r.severity == "warning"]

    def counts(self) -> dict[str, int]:
        """Failing rows per check name (0 for checks that pass)."""
        return {r.name: r.failing for r in self.results}

    def summary(self) -> str:
        """One line: how many checks ran and failed."""
        return (
            f"data checks as of {self.as_of.isoformat()} on {self.database}: "
            f"{len(self.results)} checks, {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s)"
        )

    def render_text(self) -> str:
        """The whole report: every failing check with its rule and sample rows."""
        lines = [self.summary()]
        for result in [*self.errors, *self.warnings]:
            lines.append(
                f"{result.severity.upper()} {result.name}: {result.failing:,} found: "
                f"{escape_text(result.description)}"
            )
            lines.append(f"  rule: {result.rule}")
            lines.extend(f"  - {line}" for line in result.sample_lines())
            if len(result.sample) < result.failing:
                lines.append(f"  (examples; {result.failing:,} found in all)")
        return "\n".join(lines)

    def warning_lines(self) -> list[str]:
        """One log line per warning: count, first sample row, rule."""
        lines = []
        for result in self.warnings:
            first = result.sample_lines()[:1]
            example = f" (e.g. {first[0]})" if first else ""
            lines.append(
                f"data warning {result.name}: {result.failing:,} found{example}; {result.rule}"
            )
        return lines

    def raise_for_errors(self) -> None:
        """Raise one :class:`DataError` holding the whole report if any error check fails."""
        if self.errors:
            names = ", ".join(r.name for r in self.errors)
            raise DataError(
                f"the source data fails {len(self.errors)} data check(s) ({names}); "
                f"nothing was computed. Fix the rows below or the mapping files "
                f"(README, 'Data checks').\n{self.render_text()}"
            )


def rules_markdown(catalog_dir: Path) -> str:
    """The README's "Data checks" table: check, severity, what it finds, the rule."""
    catalog = SqlCatalog(catalog_dir)
    lines = ["| check | severity | finds | rule |", "|---|---|---|---|"]
    for name in check_names(catalog):
        rule = CHECK_RULES.get(name, UNREGISTERED_RULE)
        finds = catalog.get(name).description.replace("|", "\\|")
        handling = rule.rule.replace("|", "\\|")
        lines.append(f"| `{name}` | {rule.severity} | {finds} | {handling} |")
    return "\n".join(lines)


def checks_dir(sql_dir: Path) -> Path:
    """The checks' folder of a sql/ folder."""
    return sql_dir / CHECKS_DIR_NAME


def check_names(catalog: SqlCatalog) -> list[str]:
    """The checks of a sql/checks catalog: every query but the reconciliation's and the
    fused queries (:data:`FUSED_QUERIES`)."""
    return [
        name
        for name in catalog.names()
        if name not in RECONCILIATION_QUERIES and name not in FUSED_QUERIES
    ]


def fused_tasks(
    catalog: SqlCatalog, dialect: str, checks: list[str]
) -> dict[str, tuple[SqlQuery, tuple[str, ...]]]:
    """The fused queries to run in place of some of ``checks``: name -> (query, the
    checks it gives); only those whose checks are all in ``checks``."""
    present = set(catalog.names())
    chosen = {}
    for name, given in FUSED_QUERIES.items():
        if name in present and set(given) <= set(checks):
            query = catalog.get(name, dialect)
            first = [column.name for column in query.columns[:2]]
            if first != [CHECK_NAME_COLUMN, "failing_rows"]:
                raise SqlContractError(
                    f"{query.path}: a fused check query's first columns must be "
                    f"'{CHECK_NAME_COLUMN} text' and 'failing_rows int'"
                )
            chosen[name] = (query, given)
    return chosen


def split_fused(frame: pd.DataFrame, checks: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """A fused query's rows as each check's own frame (without ``check_name``)."""
    names = frame[CHECK_NAME_COLUMN].astype("string").to_numpy(dtype=object, na_value=None)
    rest = frame.drop(columns=CHECK_NAME_COLUMN)
    return {
        check: rest.take(np.flatnonzero(names == check)).reset_index(drop=True) for check in checks
    }


def check_params(
    as_of: date, today: date | None = None, sample_rows: int = SAMPLE_ROWS
) -> dict[str, Any]:
    """Bind parameters of the checks: the standard set plus the checks' own.

    ``future_after`` is the last plausible order date: the later of T + 1 day (the
    nightly run closes yesterday while today's orders arrive) and ``today``. The
    whitespace characters are binds because SQL dialects spell them differently.
    """
    future_after = as_of + timedelta(days=1)
    if today is not None:
        future_after = max(future_after, today)
    params = standard_params(as_of)
    params.update(
        future_after=future_after,
        sample_rows=sample_rows,
        tab="\t",
        line_feed="\n",
        carriage_return="\r",
        no_break_space="\u00a0",
    )
    return params


def check_source(
    engine: Engine,
    catalog_dir: Path,
    as_of: date,
    *,
    today: date | None = None,
    sample_rows: int = SAMPLE_ROWS,
    workers: int | None = None,
    mapping: SourceMapping | None = None,
) -> QualityReport:
    """Run every check of ``catalog_dir`` on ``engine`` for business date ``as_of``.

    ``today``: the day of the run, for future-dated orders (see :func:`check_params`).
    ``workers``: checks run at the same time (default:
    :func:`~crm_batch.source.concurrent.query_workers`); the report lists them in file
    order either way. A check that the database rejects raises
    :class:`SqlContractError` naming its file. ``mapping``: the mapping files the checks
    read (default: the shipped ones); their columns are checked first.
    """
    catalog = SqlCatalog(catalog_dir, mapping)
    dialect = dialect_name(engine)
    params = check_params(as_of, today, sample_rows)
    started = time.perf_counter()
    queries = {name: catalog.get(name, dialect) for name in check_names(catalog)}
    for query in queries.values():
        first = query.columns[0]  # the header contract guarantees at least one column
        if (first.name, first.type) != ("failing_rows", "int"):
            raise SqlContractError(
                f"{query.path}: a check's first column must be 'failing_rows int' (the "
                "number of failing rows, repeated on every sample row)"
            )
    catalog.check_mapping(engine)
    fused = fused_tasks(catalog, dialect, list(queries))
    in_fused = {check for _, given in fused.values() for check in given}
    tasks = [
        (name, functools.partial(run_query, engine, q, params)) for name, (q, _) in fused.items()
    ]
    tasks += [
        (name, functools.partial(run_query, engine, q, params))
        for name, q in queries.items()
        if name not in in_fused
    ]
    frames = run_concurrently(tasks, query_workers(engine, workers))
    for name, (_, given) in fused.items():
        frames.update(split_fused(frames.pop(name), given))
    results = []
    for name, query in queries.items():
        frame = frames[name]
        failing = 0
        if len(frame):
            first = frame["failing_rows"].iloc[0]
            failing = len(frame) if pd.isna(first) else max(int(first), len(frame))
        rule = CHECK_RULES.get(name, UNREGISTERED_RULE)
        results.append(
            CheckResult(
                name=name,
                severity=rule.severity,
                failing=failing,
                sample=frame.drop(columns="failing_rows").head(sample_rows),
                column_types={c.name: c.type for c in query.columns[1:]},
                description=query.description,
                rule=rule.rule,
            )
        )
    report = QualityReport(as_of, safe_url(engine.url), tuple(results))
    log.debug("%s in %.2fs", report.summary(), time.perf_counter() - started)
    return report


# -- safe text ---------------------------------------------------------------------------


def escape_text(text: str) -> str:
    """``text`` with control, format and unassigned characters written as escapes.

    Terminal escape sequences, line breaks and bidirectional overrides in source data
    can then neither move the cursor nor reorder what a reader sees.
    """
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char).startswith("C"):
            code = ord(char)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return "".join(out)


def show_value(value: Any, kind: str) -> str:
    """One sample value for the report: typed, escaped, at most MAX_VALUE_CHARS long."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "NULL"
    if isinstance(value, float) and value != value:
        return "NULL"
    if kind == "money":
        return f"{float(value):.2f}"
    if kind in {"date", "timestamp"}:
        stamp = pd.Timestamp(value)
        if kind == "date" or stamp == stamp.normalize():
            return stamp.date().isoformat()
        return stamp.isoformat(sep=" ")
    if kind in {"int", "float", "bool"}:
        return escape_text(str(value))[:MAX_VALUE_CHARS]
    raw = str(value)
    shown = escape_text(raw).replace("'", "\\'")
    if len(shown) > MAX_VALUE_CHARS:
        return f"'{shown[:MAX_VALUE_CHARS]}'... ({len(raw):,} chars)"
    return f"'{shown}'"


if __name__ == "__main__":  # python -m crm_batch.source.quality: the README's checks table
    from crm_batch.config import SHIPPED_SQL_DIR

    print(rules_markdown(checks_dir(SHIPPED_SQL_DIR)))
