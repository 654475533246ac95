"""The Python behind the team workbook's buttons: Refresh data, Save follow-ups, Make my PDF.

Each Dashboard button runs a macro of ``workbooks/vba/Buttons.bas`` that calls xlwings'
``RunPython "import crm_batch.buttons as b; b.<action>()"``. xlwings starts Python;
the handler gets the open workbook from ``xlwings.Book.caller()`` and changes it through
xlwings only: the workbook is open in Excel, so it is never written as a file here, and
what staff typed but did not save yet stays in place. Buttons are an entry point: they
open no database themselves but call services of :mod:`crm_batch.app`.

The package's rooms:

* :mod:`~crm_batch.buttons.handlers`: the three handlers and their error handling
  (every failure a message box in the workbook's language, tracebacks in the log);
* :mod:`~crm_batch.buttons.settings`: what the open workbook says about itself (team,
  language, data date) and which settings file a button uses;
* :mod:`~crm_batch.buttons.tables`: the xlwings adapter for the workbook's Excel tables;
* :mod:`~crm_batch.buttons.refresh_data`, :mod:`~crm_batch.buttons.dashboard`,
  :mod:`~crm_batch.buttons.followups`, :mod:`~crm_batch.buttons.pdf`: what each button
  does.
"""

from __future__ import annotations

from crm_batch.runtime import prepare_process

prepare_process()  # an entry point: Excel's Python imports this first (if NumPy is not loaded)

from crm_batch.buttons.handlers import (  # noqa: E402
    ButtonResult,
    make_pdf,
    refresh,
    save_followups,
)
from crm_batch.buttons.refresh_data import COMPUTED_SHEETS  # noqa: E402
from crm_batch.buttons.settings import config_file_for, formula_constant  # noqa: E402

__all__ = [
    "COMPUTED_SHEETS",
    "ButtonResult",
    "config_file_for",
    "formula_constant",
    "make_pdf",
    "refresh",
    "save_followups",
]
