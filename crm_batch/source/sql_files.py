"""sql/ files: parse each file's header contract and pick the dialect variant.

Every extraction query lives in one file whose name is the query name. Its header is
the contract the loader enforces::

    -- customer_facts: One row per customer with a paid or refunded order up to :as_of.
    --   (more description lines, indented)
    -- params:
    --   as_of date: the business date T (inclusive)
    -- columns:
    --   customer_id id: the customer's key
    --   revenue_12m money: paid minus refunded amounts in (T-365, T]
    -- notes: how the query works, why a dialect variant exists (optional).

Column types: ``id`` (opaque key, returned as text), ``text``, ``date``, ``timestamp``,
``int``, ``float``, ``money``, ``bool``. Parameter types: ``date``, ``timestamp``,
``int``, ``float``, ``text``.

The queries read the company's data only through the canonical relations
``mapped_customers``, ``mapped_orders``, ... that the six mapping files define
(:mod:`crm_batch.source.mapping`); :meth:`SqlCatalog.get` returns a query with the
relations it references prepended as CTEs. A company edits those six files, not these.

A file ``<name>.<dialect>.sql`` (``sqlite``, ``postgresql``, ``mysql``, ``mariadb``,
``duckdb``, ``spark``) replaces ``<name>.sql`` on that dialect; it must declare the same params and
columns. ``mariadb`` falls back to a ``mysql`` variant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from crm_batch.errors import SqlContractError
from crm_batch.source.sql_text import read_sql_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from crm_batch.source.mapping import SourceMapping
    from crm_batch.source.spark import SparkSource

COLUMN_TYPES = frozenset({"id", "text", "date", "timestamp", "int", "float", "money", "bool"})
PARAM_TYPES = frozenset({"date", "timestamp", "int", "float", "text"})
KNOWN_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "duckdb", "spark")

_SECTION = re.compile(r"^--\s?(?P<key>[a-z_][a-z0-9_]*):\s?(?P<rest>.*)$")
_ENTRY = re.compile(r"^--\s{2,}(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>[a-z]+)\s*:\s*(?P<desc>.*)$")
_CONTINUATION = re.compile(r"^--\s{2,}(?P<rest>.*)$")


@dataclass(frozen=True)
class FieldSpec:
    """One declared parameter or output column."""

    name: str
    type: str
    description: str


@dataclass(frozen=True)
class SqlQuery:
    """A parsed sql/ file: its contract and its body."""

    name: str
    path: Path
    description: str
    params: tuple[FieldSpec, ...]
    columns: tuple[FieldSpec, ...]
    notes: str
    body: str

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def used_params(self) -> frozenset[str]:
        """Bind parameters the body really uses, as SQLAlchemy's ``text()`` sees them."""
        return frozenset(text(self.body).compile().params)


def parse_sql_file(path: Path) -> SqlQuery:
    """Parse one file; raise :class:`SqlContractError` naming the file and line at fault."""
    source = read_sql_text(path)
    lines = source.splitlines()
    query_name = path.name.split(".", 1)[0]
    sections: dict[str, list[str]] = {}
    entries: dict[str, list[FieldSpec]] = {"params": [], "columns": []}
    current: str | None = None
    body_start = len(lines)
    for number, line in enumerate(lines, start=1):
        stripped = line.rstrip()
        if not stripped.startswith("--"):
            if stripped.strip() == "" and current is None:
                continue
            body_start = number - 1
            break
        if stripped.strip() == "--":
            continue
        section = _SECTION.match(stripped)
        if section and section.group("key") in {"params", "columns", "notes", "adapt", "variants"}:
            # 'adapt' is the old name of 'notes' (folders written for earlier versions)
            current = "notes" if section.group("key") == "adapt" else section.group("key")
            sections.setdefault(current, [])
            if section.group("rest").strip() and current in entries:
                raise SqlContractError(
                    f"{path}:{number}: list the {current} one per line below '-- {current}:'"
                )
            if section.group("rest").strip():
                sections[current].append(section.group("rest").strip())
            continue
        if current is None and section and section.group("key") == query_name:
            current = "description"
            sections["description"] = [section.group("rest").strip()]
            continue
        if current is None:
            raise SqlContractError(
                f"{path}:{number}: the header must start with '-- {query_name}: <description>'"
            )
        if current in entries:
            entry = _ENTRY.match(stripped)
            if entry is None:
                raise SqlContractError(
                    f"{path}:{number}: expected '--   <name> <type>: <description>' under "
                    f"'-- {current}:', got {stripped!r}"
                )
            allowed = COLUMN_TYPES if current == "columns" else PARAM_TYPES
            if entry.group("type") not in allowed:
                raise SqlContractError(
                    f"{path}:{number}: unknown {current[:-1]} type {entry.group('type')!r} "
                    f"(allowed: {', '.join(sorted(allowed))})"
                )
            entries[current].append(
                FieldSpec(entry.group("name"), entry.group("type"), entry.group("desc").strip())
            )
            continue
        continuation = _CONTINUATION.match(stripped)
        if continuation is None:
            raise SqlContractError(f"{path}:{number}: unexpected header line {stripped!r}")
        sections[current].append(continuation.group("rest").strip())

    if "description" not in sections:
        raise SqlContractError(
            f"{path}: missing header: the first line must be '-- {query_name}: <description>'"
        )
    if not entries["columns"]:
        raise SqlContractError(f"{path}: the header declares no '-- columns:'")
    for kind in ("params", "columns"):
        names = [spec.name for spec in entries[kind]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SqlContractError(f"{path}: {kind} declared twice: {', '.join(duplicates)}")
    body = "\n".join(lines[body_start:]).strip()
    if not body:
        raise SqlContractError(f"{path}: the file has a header but no query")
    query = SqlQuery(
        name=query_name,
        path=path,
        description=" ".join(sections["description"]),
        params=tuple(entries["params"]),
        columns=tuple(entries["columns"]),
        notes=" ".join(sections.get("notes", [])),
        body=body,
    )
    check_params(query)
    return query


def check_params(query: SqlQuery) -> None:
    """Declared parameters must be exactly the ones the body binds."""
    declared = set(query.param_names)
    undeclared = sorted(query.used_params - declared)
    unused = sorted(declared - query.used_params)
    if undeclared:
        raise SqlContractError(
            f"{query.path}: the query binds {', '.join(':' + n for n in undeclared)} but the "
            f"header does not declare it under '-- params:'"
        )
    if unused:
        raise SqlContractError(
            f"{query.path}: the header declares {', '.join(':' + n for n in unused)} under "
            f"'-- params:' but the query never uses it"
        )


class SqlCatalog:
    """The queries of one sql/ folder, with per-dialect variants, read through a mapping.

    ``mapping``: the company's mapping folder (:class:`~crm_batch.source.mapping.
    SourceMapping`); default: the shipped one, the identity over the demo schema.
    """

    def __init__(self, sql_dir: Path, mapping: SourceMapping | None = None) -> None:
        if not sql_dir.is_dir():
            raise SqlContractError(f"sql folder not found: {sql_dir} (setting paths.sql_dir)")
        if mapping is None:
            # imported here: the mapping module reads .sql files with this module's helpers
            from crm_batch.source.mapping import shipped_mapping

            mapping = shipped_mapping()
        self.sql_dir = sql_dir
        self.mapping = mapping
        self._cache: dict[tuple[str, str], SqlQuery] = {}

    @property
    def absent_tables(self) -> frozenset[str]:
        """Canonical relations without a mapping file (read as empty relations)."""
        return self.mapping.absent

    def check_mapping(self, engine: Engine | SparkSource) -> None:
        """Check the mapping files' columns on ``engine`` (once per engine and mapping),
        so that a broken mapping is reported under its own file name."""
        self.mapping.check_columns(engine)

    def names(self) -> list[str]:
        """Query names: one per ``<name>.sql`` base file."""
        return sorted(p.stem for p in self.sql_dir.glob("*.sql") if "." not in p.stem)

    def variant_paths(self, name: str) -> dict[str, Path]:
        """Dialect -> variant file for ``name`` (base file excluded)."""
        found = {}
        for path in self.sql_dir.glob(f"{name}.*.sql"):
            dialect = path.name[len(name) + 1 : -len(".sql")]
            if dialect not in KNOWN_DIALECTS:
                raise SqlContractError(
                    f"{path}: unknown dialect {dialect!r} in the file name "
                    f"(known: {', '.join(KNOWN_DIALECTS)})"
                )
            found[dialect] = path
        return found

    def get(self, name: str, dialect: str = "") -> SqlQuery:
        """The query ``name`` for ``dialect``: its variant file if any, else the base file,
        with the mapped relations it reads prepended (:meth:`SourceMapping.apply`)."""
        key = (name, dialect)
        if key not in self._cache:
            base_path = self.sql_dir / f"{name}.sql"
            if not base_path.is_file():
                raise SqlContractError(f"{base_path}: no such query file in {self.sql_dir}")
            base = parse_sql_file(base_path)
            variants = self.variant_paths(name)
            chosen_path = variants.get(dialect) or (
                variants.get("mysql") if dialect == "mariadb" else None
            )
            query = base
            if chosen_path is not None:
                query = parse_sql_file(chosen_path)
                _check_same_contract(base, query)
            self._cache[key] = replace(query, body=self.mapping.apply(query.body, dialect))
        return self._cache[key]


def _check_same_contract(base: SqlQuery, variant: SqlQuery) -> None:
    """A dialect variant must keep the base file's params and columns."""
    for kind in ("params", "columns"):
        ours = [(s.name, s.type) for s in getattr(base, kind)]
        theirs = [(s.name, s.type) for s in getattr(variant, kind)]
        if ours != theirs:
            raise SqlContractError(
                f"{variant.path}: its '-- {kind}:' differ from {base.path.name}: "
                f"a dialect variant must declare the same {kind}"
            )
