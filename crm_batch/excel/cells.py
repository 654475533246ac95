"""Cell safety: database text as Excel text that is always valid, literal and within limits.

Database text is hostile (names such as ``=cmd|' /C calc'!A0``, control characters from
copy-pasted data, broken encodings, 40,000-character notes). The workbook writer passes
every string through :func:`cell_text` and writes it with ``write_string``, so:

* **never a formula**: the text is stored as a string cell whatever it starts with
  (``=``, ``+``, ``-``, ``@``, tab); no apostrophe is added, the cell shows exactly the
  text. The writer also turns off XlsxWriter's string-to-formula/number/URL guessing;
* **characters**: the rules of :mod:`crm_batch.i18n.characters` (the one home of the
  character rules, shared with the read side): a tab becomes a space, CR LF and lone CR
  become LF, other control characters and U+FFFE/U+FFFF are removed, lone surrogates
  become U+FFFD "�". The counts are logged;
* **length**: Excel holds at most 32,767 characters (UTF-16 code units) in a cell;
  longer text is cut and ends with a visible marker such as "… [truncated]", and the
  count is logged.

Log messages carry counts, sheet and column, never the text (it may be personal data).
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate

import pandas as pd

from crm_batch.errors import CrmBatchError, ExitCode
from crm_batch.i18n.characters import (
    LONE_SURROGATE,
    SUSPECT,
    TRUNCATION_MARKER,
    normalize_controls,
    replace_surrogates,
)

log = logging.getLogger(__name__)

#: Excel's limits (specifications and limits of Excel 2007 and later).
MAX_CELL_CHARS = 32_767
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
#: Excel string constants in formulas and defined names hold at most 255 characters.
MAX_FORMULA_TEXT = 255

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_FORMULA_TEXT",
    "MAX_ROWS",
    "TRUNCATION_MARKER",
    "CellReport",
    "WorkbookError",
    "cell_text",
    "cell_texts",
    "check_row_limit",
    "formula_text",
    "utf16_length",
]


class WorkbookError(CrmBatchError):
    """A workbook that cannot be built or did not read back as written."""

    exit_code = ExitCode.DATA


@dataclass
class CellReport:
    """What :func:`cell_text` changed while building one workbook (counts only)."""

    changes: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, kind: str, where: tuple[str, str]) -> None:
        """Count one change of ``kind`` in (sheet, column)."""
        self.changes[(kind, *where)] += 1

    def count(self, kind: str) -> int:
        """Changes of ``kind`` ("truncated", "surrogate", "control") over all cells."""
        return sum(n for (k, _, _), n in self.changes.items() if k == kind)

    def log(self, team: str) -> None:
        """One warning per (kind, sheet, column) with its count; the text is never logged."""
        messages = {
            "truncated": f"cells cut at {MAX_CELL_CHARS:,} characters",
            "surrogate": "cells with lone surrogates (replaced with U+FFFD)",
            "control": "cells with control characters (removed)",
        }
        for (kind, sheet, column), count in sorted(self.changes.items()):
            log.warning(
                "workbook of team %r, sheet %s, column %s: %d %s",
                team,
                sheet,
                column,
                count,
                messages[kind],
            )


def utf16_length(value: str) -> int:
    """Length in UTF-16 code units, the unit of Excel's cell limit."""
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def cell_text(
    value: str,
    *,
    report: CellReport | None = None,
    where: tuple[str, str] = ("", ""),
    marker: str = TRUNCATION_MARKER,
    limit: int = MAX_CELL_CHARS,
) -> str:
    """``value`` made safe for a string cell (see the module docs); changes are counted."""
    if len(value) <= limit // 2 and not SUSPECT.search(value):
        return value  # the fast path: most text needs nothing
    if SUSPECT.search(value):
        if LONE_SURROGATE.search(value):
            value = replace_surrogates(value)
            if report is not None:
                report.add("surrogate", where)
        normal = value.replace("\r\n", "\n").replace("\r", "\n")
        cleaned = normalize_controls(normal)
        if cleaned != normal and report is not None:
            report.add("control", where)
        value = cleaned
    if utf16_length(value) > limit:
        value = _cut(value, limit - utf16_length(marker)) + marker
        if report is not None:
            report.add("truncated", where)
    return value


def cell_texts(
    values: list[object],
    *,
    report: CellReport | None = None,
    where: tuple[str, str] = ("", ""),
    marker: str = TRUNCATION_MARKER,
) -> list[str | None]:
    """:func:`cell_text` over a column: None, NA, NaN and "" become None (an empty cell),
    other values text.

    The whole column is checked at once (one regular-expression scan over its texts
    joined by a line feed, which is never suspect, and the longest length): a clean
    column, nearly every one, is converted by a list comprehension; only the values
    that are not text and the texts the scan or their length point at go one by one.
    """
    texts = [value for value in values if type(value) is str]
    joined = "\n".join(texts)
    lengths = list(map(len, texts))
    short = MAX_CELL_CHARS // 2
    clean = not texts or (max(lengths) <= short and not SUSPECT.search(joined))
    if clean and len(texts) == len(values):
        return [value or None for value in values]  # type: ignore[misc]
    out: list[str | None] = [value or None if type(value) is str else None for value in values]  # type: ignore[misc]
    if len(texts) != len(values):
        for index, value in enumerate(values):
            if type(value) is not str and value is not None:
                out[index] = _clean_value(value, report=report, where=where, marker=marker)
    if not clean:  # only the texts with a suspect character or a great length, in order
        ends = list(accumulate(length + 1 for length in lengths))  # each text and its "\n"
        dirty = {bisect_right(ends, match.start()) for match in SUSPECT.finditer(joined)}
        dirty.update(k for k, length in enumerate(lengths) if length > short)
        text_at = [index for index, value in enumerate(values) if type(value) is str]
        for k in sorted(dirty):
            index = text_at[k]
            out[index] = _clean_value(values[index], report=report, where=where, marker=marker)
    return out


def _clean_value(
    value: object, *, report: CellReport | None, where: tuple[str, str], marker: str
) -> str | None:
    """One value of :func:`cell_texts`."""
    if type(value) is str:
        if not value:
            return None
        if len(value) <= MAX_CELL_CHARS // 2 and not SUSPECT.search(value):
            return value
        return cell_text(value, report=report, where=where, marker=marker)
    if value is None or pd.isna(value):  # type: ignore[arg-type]
        return None
    return cell_text(str(value), report=report, where=where, marker=marker)


def _cut(value: str, units: int) -> str:
    """The longest prefix of ``value`` within ``units`` UTF-16 code units."""
    prefix = value[:units]
    while utf16_length(prefix) > units:
        prefix = prefix[: -max(1, (utf16_length(prefix) - units) // 2)]
    return prefix


def check_row_limit(team: str, sheet: str, rows: int, *, limit: int = MAX_ROWS - 1) -> None:
    """Raise :class:`WorkbookError` when ``rows`` data rows (below one header row) do not
    fit in a worksheet; ``limit`` is a parameter for tests."""
    if rows > limit:
        raise WorkbookError(
            f"team {team!r}: sheet {sheet} would need {rows:,} rows but an Excel sheet holds "
            f"{limit:,} below its header; split the team in the settings (teams) or the "
            "source data before building its workbook"
        )


def formula_text(value: str, what: str) -> str:
    """``value`` as an Excel formula string constant (``"..."``, quotes doubled).

    Used for defined names holding text; such a constant holds at most 255 characters,
    so a longer value is an error naming ``what``.
    """
    cleaned = cell_text(value).replace("\n", " ")
    if len(cleaned) > MAX_FORMULA_TEXT:
        raise WorkbookError(
            f"{what} is {len(cleaned):,} characters long; a workbook can store at most "
            f"{MAX_FORMULA_TEXT} in a defined name: shorten it in the settings or the data"
        )
    return '"' + cleaned.replace('"', '""') + '"'
