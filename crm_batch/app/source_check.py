"""``check-source`` and the nightly's first step: can a run go ahead on this data?

One verdict from three layers of checks, all reading the company's data through its
mapping files: the mappings return the canonical columns
(:meth:`~crm_batch.source.mapping.SourceMapping.check_columns`), each column's values
have the kind the KPIs need (:mod:`crm_batch.source.profile`), and the data checks of
``sql/checks/`` (:mod:`crm_batch.source.quality`: duplicate ids, unknown customers,
statuses, future dates, ...). Errors block a run (exit code 4); warnings are data the
KPIs handle by a documented rule. ``check-source`` prints everything with rows, date
ranges and fixes; the nightly runs the same checks without the row counts and stops on
the same errors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from crm_batch.app.dates import today
from crm_batch.app.frames import source_mapping
from crm_batch.config import Settings
from crm_batch.errors import DataError
from crm_batch.source.column_types import ColumnVerdict
from crm_batch.source.profile import RelationProfile, profile_relations
from crm_batch.source.quality import QualityReport, check_source, checks_dir
from crm_batch.urls import safe_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceVerdict:
    """Everything check-source found for one business date."""

    database: str  # the source URL without its password
    mapping_dir: Path
    as_of: date
    relations: tuple[RelationProfile, ...]
    quality: QualityReport | None  # None: not run, a column holds the wrong kind

    def column_errors(self) -> list[ColumnVerdict]:
        return [c for r in self.relations for c in r.problems() if c.severity == "error"]

    def column_warnings(self) -> list[ColumnVerdict]:
        return [c for r in self.relations for c in r.problems() if c.severity == "warning"]

    def empty_required(self) -> list[RelationProfile]:
        """Required relations that return no row (every KPI would be zero)."""
        return [r for r in self.relations if r.required and r.rows == 0]

    @property
    def blocking(self) -> int:
        """How many problems stop a nightly run."""
        checks = len(self.quality.errors) if self.quality is not None else 0
        return len(self.column_errors()) + len(self.empty_required()) + checks

    @property
    def warnings(self) -> int:
        checks = len(self.quality.warnings) if self.quality is not None else 0
        return len(self.column_warnings()) + checks

    def render_text(self) -> str:
        """The report check-source prints."""
        lines = [
            f"source:   {self.database}",
            f"mapping:  {self.mapping_dir}",
            f"business date: {self.as_of.isoformat()}",
            "",
            f"{'relation':<10} {'mapping file':<16} {'rows':>12}  dates",
        ]
        for relation in self.relations:
            if not relation.mapped:
                kind = "required" if relation.required else "optional"
                lines.append(
                    f"{relation.name:<10} {'(absent)':<16} {'-':>12}  {kind}: its KPIs show "
                    "'no data' (null), never 0"
                )
                continue
            rows = "-" if relation.rows is None else f"{relation.rows:,}"
            span = "no dates"
            if relation.first is not None and relation.last is not None:
                span = f"{relation.first.isoformat()} .. {relation.last.isoformat()}"
            assert relation.path is not None
            lines.append(
                f"{relation.name:<10} {relation.path.name:<16} {rows:>12}  {span} "
                f"({relation.date_column})"
            )
        for relation in self.empty_required():
            lines.append(
                f"ERROR {relation.name}: the mapping returns no rows, so every KPI would be "
                f"0; fix: check the filters and table names in {relation.path}"
            )
        problems = [*self.column_errors(), *self.column_warnings()]
        lines.append("")
        if problems:
            lines.append("columns:")
            lines.extend(f"  {problem.line()}" for problem in problems)
        else:
            lines.append("columns: every mapped column holds the expected kind of value")
        lines.append("")
        if self.quality is None:
            lines.append(
                "data checks: not run: they compare dates and amounts, so they wait for the "
                "column fixes above"
            )
        else:
            lines.append(self.quality.render_text())
        lines.append("")
        if self.blocking:
            lines.append(
                f"result: NOT ready: {self.blocking} problem(s) stop a nightly run (the "
                "ERROR lines above, each with its fix)"
            )
        else:
            extra = f" ({self.warnings} warning(s) above)" if self.warnings else ""
            lines.append(f"result: ready for a nightly run{extra}")
        return "\n".join(lines)


def inspect_source(
    settings: Settings, engine: Engine, as_of: date, *, count: bool = True
) -> SourceVerdict:
    """Run every check on the source (see the module docstring). ``count``: also count
    rows and date ranges (check-source; the nightly leaves it out)."""
    started = time.perf_counter()
    mapping = source_mapping(settings)
    mapping.check_columns(engine)
    relations = profile_relations(engine, mapping, count=count)
    quality = None
    if not any(c.severity == "error" for r in relations for c in r.columns):
        # the data checks compare dates and amounts: with the wrong kinds they would fail
        # on their own terms (or pass wrongly), so they wait for the columns' fix
        quality = check_source(
            engine, checks_dir(settings.sql_dir), as_of, today=today(settings), mapping=mapping
        )
    verdict = SourceVerdict(safe_url(engine.url), mapping.folder, as_of, tuple(relations), quality)
    log.info(
        "%s; column kinds of %d mapped relation(s) checked in %.1fs",
        quality.summary() if quality is not None else "data checks not run",
        sum(r.mapped for r in relations),
        time.perf_counter() - started,
    )
    return verdict


def raise_for_blocking(verdict: SourceVerdict) -> None:
    """One :class:`DataError` with every blocking problem and its fix (the warnings are in
    its text); when nothing blocks, each warning is logged on one line."""
    if verdict.blocking:
        raise DataError(
            f"the source data is not ready ({verdict.blocking} blocking problem(s)); nothing "
            "was computed. `crm-batch check-source` shows them with rows and fixes.\n"
            + verdict.render_text()
        )
    for problem in verdict.column_warnings():
        log.warning("data warning %s", problem.line())
    for line in verdict.quality.warning_lines() if verdict.quality is not None else []:
        log.warning("%s", line)


def check_source_report(settings: Settings, as_of: date) -> SourceVerdict:
    """check-source: open the source (read-only where the state lives elsewhere),
    inspect it, close it."""
    from crm_batch.app.engines import open_databases

    with open_databases(settings) as databases:
        return inspect_source(settings, databases.source, as_of, count=True)
