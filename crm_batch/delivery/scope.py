"""The check that a PDF is the report of the scope it is about to be mailed for.

Every rendered report records its scope in the PDF's document information
(:func:`crm_batch.files.report_scope` under :data:`crm_batch.files.SCOPE_PDF_KEY`).
Before a message is built the recorded scope is compared with the delivery's team, so a
file overwritten by another team's report (two look-alike team names that once shared a
file name) or put there by hand is an error naming the file, never a misrouted mail.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from crm_batch.errors import DataError
from crm_batch.files import SCOPE_PDF_KEY, report_scope

log = logging.getLogger(__name__)
# pypdf warns on harmless oddities of a file (e.g. trailing bytes) through logging
logging.getLogger("pypdf").setLevel(logging.ERROR)


def recorded_scope(pdf: Path) -> str | None:
    """The scope recorded in ``pdf`` (None when it records none); DataError naming the
    file when it cannot be read as a PDF."""
    try:
        metadata = PdfReader(pdf).metadata
    except (OSError, PyPdfError, ValueError) as exc:
        raise DataError(f"{pdf}: cannot read the report to send ({exc})") from None
    value = None if metadata is None else metadata.get(SCOPE_PDF_KEY)
    return None if value is None else str(value)


def check_scope(pdf: Path, team: str | None) -> None:
    """Raise DataError naming ``pdf`` unless it records the scope of ``team``."""
    expected = report_scope(team)
    found = recorded_scope(pdf)
    if found != expected:
        recorded = "no scope" if found is None else repr(found)
        raise DataError(
            f"{pdf}: the file records {recorded} but is about to be mailed as {expected!r}; "
            "not sent (render the report again; two teams may have shared its file name)"
        )
