"""Character rules for text that crosses a workbook cell, in one place for both directions.

Text written into a cell (:func:`crm_batch.excel.cells.cell_text`) and text read back
out of one (:func:`crm_batch.excel.staff_rows.stored_text`) follow the same rules, so a
note reads back as it was written and the nightly harvest recognises its own output:

* a lone surrogate (half of a UTF-16 pair, left by a broken driver or import) becomes
  U+FFFD: one of them makes a whole .xlsx unreadable, replacing keeps the rest;
* CR LF and a lone CR become LF (line breaks in notes are kept);
* a tab becomes a blank (tabs do not render in cells; a leading tab is a formula trick);
* every other C0/C1 control character and the non-characters U+FFFE/U+FFFF are removed
  (XML 1.0 cannot carry them);
* the bidirectional embedding, override and isolate controls (U+202A-U+202E,
  U+2066-U+2069) are removed: they make a name display in another order than it is
  stored (a "Trojan source" trick) and right-to-left names render right without them.

The PDF reports' text follows the same rules
(:func:`crm_batch.reports.display.display_text`), so a name reads the same in a workbook
and in a report.

The truncation markers a cut text ends with live here too: the writer appends one, and
the follow-up store must recognise a cut note as the stored one it came from.
"""

from __future__ import annotations

import re

#: Any character :func:`normalize_characters` may change (controls but LF, DEL, C1,
#: surrogates, non-characters): text without a match needs no work.
SUSPECT = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
#: Half of a UTF-16 surrogate pair on its own.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Control characters and non-characters removed (LF kept; tab and CR are turned into a
#: blank and LF before this applies).
_REMOVED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]")

#: What a text cut at a cell's length limit ends with, per language (zh-CN, en).
TRUNCATION_MARKERS: dict[str, str] = {"zh-CN": "… [已截断]", "en": "… [truncated]"}
#: The marker when no language is known.
TRUNCATION_MARKER = TRUNCATION_MARKERS["en"]


def replace_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD."""
    return LONE_SURROGATE.sub("\ufffd", text)


def normalize_controls(text: str) -> str:
    """``text`` with LF line ends, tabs as blanks and other control characters removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _REMOVED.sub("", text)


def normalize_characters(text: str) -> str:
    """Every rule of the module docs applied to ``text`` (nothing stripped or cut)."""
    return normalize_controls(replace_surrogates(text))
