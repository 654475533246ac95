"""The Make my PDF button: the team's diagnosis report, rendered and opened.

The report is rendered by :func:`crm_batch.reports.diagnosis.write_diagnosis` from a KPI
run of :func:`crm_batch.app.kpis.compute`, written to the reports folder like the
nightly reports, and opened in the desktop's default PDF viewer when Excel runs on this
machine.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import webbrowser
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from crm_batch.app.dates import default_business_date
from crm_batch.app.kpis import compute
from crm_batch.app.report_extras import read_diagnosis_extras
from crm_batch.buttons.settings import ButtonContext
from crm_batch.i18n.workbook_texts import BUTTON_TEXTS

if TYPE_CHECKING:
    import xlwings

log = logging.getLogger(__name__)


def make_team_pdf(ctx: ButtonContext, as_of: date | None, open_file: bool) -> str:
    """Render the team's diagnosis report of ``as_of``, else the workbook's data date,
    else the default business date; open it (``open_file``) or name it in the message."""
    # the report renderer (WeasyPrint) loads only when this button is pressed
    from crm_batch.reports import diagnosis

    day = as_of or ctx.as_of or default_business_date(ctx.settings)
    run = compute(ctx.settings, day, teams=[ctx.team]).run
    extras = read_diagnosis_extras(ctx.settings, run)
    report = diagnosis.write_diagnosis(ctx.settings, run, ctx.team, ctx.language, extras)
    log.info("diagnosis report of %r written to %s", ctx.team, report.pdf)
    if open_file and _is_desktop(ctx.book) and open_document(report.pdf):
        return ""
    return BUTTON_TEXTS.text("pdf.ready", ctx.language, path=report.pdf)


def _is_desktop(book: xlwings.Book) -> bool:
    """Whether Excel runs on this machine (not xlwings Server's remote engine)."""
    try:
        return book.app.engine.name not in {"remote", "officejs", "calamine"}
    except Exception:
        return False


def open_document(path: Path) -> bool:
    """Open ``path`` in the desktop's default application; False when that failed."""
    try:
        if sys.platform.startswith("win"):
            os.startfile(path)  # type: ignore[attr-defined]
        elif sys.platform == "darwin":
            subprocess.run(["open", str(path)], check=True, timeout=30)
        else:
            return webbrowser.open(path.as_uri())
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not open %s: %s", path, exc)
        return False
    return True
