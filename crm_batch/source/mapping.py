"""The six mapping files: the company's own schema as the canonical relations.

A company describes its data once, in the folder ``[paths] source_dir`` (default
``sql/source/``): ``customers.sql`` and ``orders.sql`` (required), ``leads.sql``,
``tickets.sql``, ``campaigns.sql`` and ``touches.sql`` (optional). Each holds one SELECT
in the source database's dialect, without bind parameters, returning exactly the
canonical columns of its relation (:func:`canonical_columns`, the demo schema of
:mod:`crm_batch.schema`).

Every other query (sql/*.sql, their dialect variants, sql/checks/) reads the relations
as ``mapped_customers``, ``mapped_orders``, ... (distinct from the physical names:
SQLite rejects ``with orders as (select ... from orders)`` as a circular reference).
:meth:`SourceMapping.apply` prepends the relations a query references as CTEs
(``NOT MATERIALIZED`` where the dialect has the hint, so the planner keeps pushing
filters into the company's tables and using their indexes: DuckDB materializes a CTE
referenced twice by default, which made cohort_activity.duckdb.sql half again as slow
at 2M orders, while with the hint every query ran as fast as on the tables themselves);
an absent optional file becomes an empty relation of the same typed columns
(:meth:`SourceMapping.empty_sql`), so every query still runs and
:attr:`SourceMapping.absent` tells the KPI layer which relations have no data.
:meth:`SourceMapping.check_columns` runs each mapping once per engine with ``where 1 = 0
limit 0`` (nothing is read) and reports every missing or extra column in one error naming
the files, before any KPI query could fail on them under its own name.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, Numeric, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from crm_batch import resources
from crm_batch.config import SOURCE_DIR_NAME
from crm_batch.errors import SqlContractError
from crm_batch.schema import SOURCE_TABLES, build_metadata
from crm_batch.source.failures import first_line, rejected_error, statement_error
from crm_batch.source.spark import SparkSource
from crm_batch.source.sql_text import read_sql_text

#: The relations a company must map; the others may be left out.
REQUIRED = ("customers", "orders")
OPTIONAL = tuple(name for name in SOURCE_TABLES if name not in REQUIRED)
#: Prefix of the relations' names inside the queries.
PREFIX = "mapped_"
#: Canonical relations in CTE order: the required ones first (empty relations of absent
#: files take their key types from them), then in :data:`crm_batch.schema.SOURCE_TABLES`.
ORDER = (*REQUIRED, *OPTIONAL)

_REFERENCE = re.compile(r"\bmapped_(" + "|".join(SOURCE_TABLES) + r")\b", re.IGNORECASE)
# a query's leading WITH (after comments and blank space): the CTEs are merged into it
_LEADING_WITH = re.compile(
    r"\A(?P<lead>(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*)with(?P<recursive>\s+recursive)?\b",
    re.IGNORECASE | re.DOTALL,
)
_TRAILING = re.compile(r"(?:\s+|--[^\n]*\Z|;)+\Z")

#: Canonical column kinds (the sql/ header types) -> SQL type of an empty relation's
#: NULL column, per dialect; MySQL/MariaDB's CAST knows only a few type names.
_CAST_TYPES: dict[str, dict[str, str]] = {
    "default": {
        "id": "varchar(64)",
        "text": "varchar(255)",
        "date": "date",
        "timestamp": "timestamp",
        "money": "decimal(14, 2)",
        "int": "integer",
        "bool": "boolean",
    },
    "mysql": {
        "id": "char(64)",
        "text": "char(255)",
        "date": "date",
        "timestamp": "datetime(6)",
        "money": "decimal(14, 2)",
        "int": "signed",
        "bool": "signed",
    },
}
#: Key columns of an empty relation that other relations join on, with the relations
#: whose same-named column types them (an integer key compared with a text NULL is an
#: error on PostgreSQL); the first one mapped wins.
_KEY_SOURCES: dict[str, tuple[str, ...]] = {
    "customer_id": ("customers",),
    "campaign_id": ("campaigns", "touches"),
}


@dataclass(frozen=True)
class CanonicalColumn:
    """One column a mapping file must return, with its sql/ header type."""

    name: str
    kind: str


@cache
def canonical_columns() -> dict[str, tuple[CanonicalColumn, ...]]:
    """Relation -> its columns in order, read from the demo schema (the one home of the
    canonical data model, :func:`crm_batch.schema.build_metadata`)."""
    metadata = build_metadata()
    return {
        name: tuple(
            CanonicalColumn(column.name, _kind(column.type))
            for column in metadata.tables[name].columns
        )
        for name in SOURCE_TABLES
    }


def _kind(sql_type: object) -> str:
    # order matters: BigInteger is an Integer, DateTime is not a Date
    for klass, kind in (
        (BigInteger, "id"),
        (Integer, "int"),
        (Numeric, "money"),
        (DateTime, "timestamp"),
        (Date, "date"),
        (Boolean, "bool"),
    ):
        if isinstance(sql_type, klass):
            return kind
    return "text"


@dataclass(frozen=True)
class MappedRelation:
    """One mapping file: the relation it defines and its SELECT."""

    name: str
    path: Path
    body: str


class SourceMapping:
    """The mapping folder: the relations present and the optional ones absent."""

    def __init__(self, folder: Path, relations: dict[str, MappedRelation]) -> None:
        self.folder = folder
        self.relations = relations
        self.absent: frozenset[str] = frozenset(n for n in SOURCE_TABLES if n not in relations)
        digest = hashlib.sha256(str(folder).encode())
        for name in ORDER:
            if name in relations:
                digest.update(f"\0{name}\0{relations[name].body}".encode())
        self.fingerprint = digest.hexdigest()

    @classmethod
    def load(cls, folder: Path) -> SourceMapping:
        """Read the folder; a missing required file or a file that is not one SELECT
        without bind parameters is a :class:`SqlContractError` naming the file."""
        if not folder.is_dir():
            setting = "setting paths.source_dir"
            if not folder.parent.is_dir():  # the default, source/ in a sql folder not there
                setting += f"; its folder {folder.parent} is missing too: check paths.sql_dir"
            raise SqlContractError(
                f"mapping folder not found: {folder} ({setting}): it must hold "
                f"{', '.join(n + '.sql' for n in REQUIRED)} and may hold "
                f"{', '.join(n + '.sql' for n in OPTIONAL)}"
            )
        missing = [f"{name}.sql" for name in REQUIRED if not (folder / f"{name}.sql").is_file()]
        if missing:
            raise SqlContractError(
                f"{folder}: required mapping file(s) missing: {', '.join(missing)} (the "
                "customers and orders mappings are required; README, 'Pointing it at your "
                "own database')"
            )
        relations = {}
        for name in ORDER:
            path = folder / f"{name}.sql"
            if path.is_file():
                relations[name] = MappedRelation(name, path, _mapping_body(path))
        return cls(folder, relations)

    def referenced(self, body: str) -> list[str]:
        """Canonical relations ``body`` needs, in CTE order, with what empty relations
        of absent files read (their key types come from mapped relations)."""
        needed = {match.lower() for match in _REFERENCE.findall(body)}
        for name in list(needed):
            if name in self.absent:
                needed |= set(self._key_sources(name).values())
        # mapped relations first: the empty ones of absent files read their key types
        present = [name for name in ORDER if name in needed and name in self.relations]
        return present + [name for name in ORDER if name in needed and name in self.absent]

    def apply(self, body: str, dialect: str) -> str:
        """``body`` with the relations it references prepended as CTEs, merged into its
        own leading ``WITH`` / ``WITH RECURSIVE`` if it has one."""
        names = self.referenced(body)
        if not names:
            return body
        hint = " not materialized" if _has_materialized_hint(dialect) else ""
        ctes = ",\n".join(
            f"{PREFIX}{name} as{hint} (\n{self.relation_sql(name, dialect)}\n)" for name in names
        )
        leading = _LEADING_WITH.match(body)
        if leading is None:
            return f"with {ctes}\n{body}"
        keyword = "with recursive" if leading.group("recursive") else "with"
        rest = body[leading.end() :]
        return f"{leading.group('lead')}{keyword} {ctes},\n{rest.lstrip()}"

    def relation_sql(self, name: str, dialect: str) -> str:
        """The SELECT behind ``mapped_<name>``: the mapping file's, or the empty relation."""
        if name in self.relations:
            return self.relations[name].body
        return self.empty_sql(name, dialect)

    def empty_sql(self, name: str, dialect: str) -> str:
        """An empty relation with ``name``'s canonical columns, typed: NULL casts, and
        keys other relations join on read from the mapped relation they join (no rows:
        ``where 1 = 0``, a FROM every dialect accepts)."""
        casts = _CAST_TYPES["mysql" if dialect in {"mysql", "mariadb"} else "default"]
        sources = self._key_sources(name)
        columns = []
        for column in canonical_columns()[name]:
            source = sources.get(column.name)
            if column.name == "customer_id":
                columns.append("k.customer_id as customer_id")
            elif source is not None:
                columns.append(
                    f"(select s.{column.name} from {PREFIX}{source} as s where 1 = 0) "
                    f"as {column.name}"
                )
            else:
                columns.append(f"cast(null as {casts[column.kind]}) as {column.name}")
        return (
            "select\n    " + ",\n    ".join(columns) + "\nfrom mapped_customers as k\nwhere 1 = 0"
        )

    def _key_sources(self, name: str) -> dict[str, str]:
        """Key column of the empty relation ``name`` -> the mapped relation typing it."""
        found = {}
        names = {c.name for c in canonical_columns()[name]}
        for column, candidates in _KEY_SOURCES.items():
            if column not in names:
                continue
            for relation in candidates:
                if relation != name and relation in self.relations:
                    found[column] = relation
                    break
        found.setdefault("customer_id", "customers")
        return found

    def check_columns(self, engine: Engine | SparkSource) -> None:
        """Run every mapping with ``where 1 = 0 limit 0`` and compare its columns with the
        canonical ones; one :class:`SqlContractError` lists every missing, extra or
        repeated column, each line naming its file. Done once per engine and mapping."""
        checked = _CHECKED.setdefault(engine, set())
        if self.fingerprint in checked:
            return
        problems = []
        for relation in self.relations.values():
            returned = _returned_columns(engine, relation)
            problems.extend(_column_problems(relation, returned))
        if problems:
            raise SqlContractError(
                "the mapping files do not return the canonical columns (README, 'Pointing it "
                "at your own database'):\n" + "\n".join(problems)
            )
        checked.add(self.fingerprint)


#: Engine -> fingerprints of the mappings already checked on it.
_CHECKED: weakref.WeakKeyDictionary[Engine | SparkSource, set[str]] = weakref.WeakKeyDictionary()


def load_mapping(folder: Path) -> SourceMapping:
    """The mapping of ``folder`` (see :meth:`SourceMapping.load`)."""
    return SourceMapping.load(folder)


#: The mapping folder shipped with crm-batch: the identity over the demo schema.
SHIPPED_SOURCE_DIR = resources.SQL_DIR / SOURCE_DIR_NAME


@cache
def shipped_mapping() -> SourceMapping:
    """The shipped mapping (read once): what a catalog reads without a mapping given."""
    return SourceMapping.load(SHIPPED_SOURCE_DIR)


def _mapping_body(path: Path) -> str:
    """The file's SELECT without a trailing semicolon or comment; refuses bind
    parameters (a mapping runs inside every query, whose parameters it cannot know)."""
    lines = read_sql_text(path).splitlines()
    # the header (leading comments) documents the file; the queries need only the SELECT
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    body = _TRAILING.sub("", "\n".join(lines))
    if not body:
        raise SqlContractError(f"{path}: the mapping file holds no SELECT")
    binds = sorted(text(body).compile().params)
    if binds:
        raise SqlContractError(
            f"{path}: a mapping file takes no bind parameters, found "
            f"{', '.join(':' + b for b in binds)} (write a literal colon as \\:)"
        )
    return body


def _has_materialized_hint(dialect: str) -> bool:
    """Whether the dialect takes ``AS NOT MATERIALIZED`` (SQLite from 3.35)."""
    if dialect in {"postgresql", "duckdb"}:
        return True
    if dialect == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 35, 0)
    return False


def _returned_columns(engine: Engine | SparkSource, relation: MappedRelation) -> list[str]:
    """The column names the mapping returns, from an empty run of it."""
    # limit 0 as well: MySQL/MariaDB may materialize a grouped derived table otherwise
    statement = f"select * from (\n{relation.body}\n) as m where 1 = 0 limit 0"
    keys, _ = run_statement(engine, statement, relation.path)
    return keys


def run_statement(
    engine: Engine | SparkSource, statement: str, path: Path
) -> tuple[list[str], list[Any]]:
    """The column names and rows of ``statement``, which the file ``path`` is behind: a
    statement the database rejects is a :class:`SqlContractError` naming that file (a
    mapping file, not the query it was merged into)."""
    if isinstance(engine, SparkSource):
        return engine.run_statement(statement, path)
    try:
        with engine.connect() as conn:
            result = conn.execute(text(statement))
            return list(map(str, result.keys())), list(result.fetchall())
    except DBAPIError as exc:
        raise statement_error(exc, path, engine) from None
    except duckdb.Error as exc:  # DuckDB's own errors come through duckdb_engine unwrapped
        raise rejected_error(path, first_line(exc)) from None


def _column_problems(relation: MappedRelation, returned: list[str]) -> list[str]:
    """One line per problem: missing, extra or repeated columns (case-insensitive, as
    the queries name them unquoted)."""
    expected = [c.name for c in canonical_columns()[relation.name]]
    got = [name.lower() for name in returned]
    missing = [name for name in expected if name not in got]
    extra = sorted({name for name in got if name not in expected})
    repeated = sorted({name for name in got if got.count(name) > 1})
    lines = []
    if missing:
        lines.append(f"{relation.path}: missing column(s): {', '.join(missing)}")
    if extra:
        lines.append(f"{relation.path}: unexpected column(s): {', '.join(extra)}")
    if repeated:
        lines.append(f"{relation.path}: column(s) returned twice: {', '.join(repeated)}")
    if lines:
        lines.append(f"  {relation.name} must return exactly: {', '.join(expected)}")
    if missing:
        lines.append(
            f"  a column your data does not have is returned as NULL: null as {missing[0]}"
        )
    return lines


def columns_markdown() -> str:
    """The README's table of the six relations: file, required or optional, columns."""
    lines = ["| file | read as | needed | columns (type) |", "|---|---|---|---|"]
    for name in ORDER:
        need = "required" if name in REQUIRED else "optional"
        columns = ", ".join(f"`{c.name}` {c.kind}" for c in canonical_columns()[name])
        lines.append(f"| `{name}.sql` | `{PREFIX}{name}` | {need} | {columns} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m crm_batch.source.mapping: the README's table
    print(columns_markdown())
