"""Text from the database is cleaned the same way for the PDF reports as for the
workbooks: no NUL, ESC or other control characters, no bidirectional overrides (issue 13
point 7: they reached the HTML reports raw)."""

from __future__ import annotations

import pytest

from crm_batch.excel.cells import cell_text
from crm_batch.excel.staff_rows import stored_text
from crm_batch.reports.display import display_text

# a NUL, an ANSI escape sequence, and a right-to-left override that shows "gnahZ" as
# "Zhang" reversed: what a hostile or broken import leaves in a name
HOSTILE = [
    ("Li\x00 Lei", "Li Lei"),
    ("\x1b[31mWang\x1b[0m", "[31mWang[0m"),
    ("\u202egnahZ\u202c", "gnahZ"),
    ("\u2067Chen\u2069 Jie", "Chen Jie"),
]


@pytest.mark.parametrize(("raw", "clean"), HOSTILE)
def test_reports_and_workbooks_clean_names_alike(raw: str, clean: str) -> None:
    assert display_text(raw) == clean
    assert cell_text(raw) == clean
    assert stored_text(cell_text(raw)) == clean  # what a workbook holds reads back the same


def test_right_to_left_text_itself_is_kept() -> None:
    arabic = "\u0645\u062d\u0645\u062f"  # a right-to-left name needs no override to show
    assert display_text(arabic) == arabic
    assert cell_text(arabic) == arabic
