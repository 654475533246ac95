"""Where the folders crm-batch reads at run time are: the one place that locates them.

The queries (``sql/``), the report templates (``report_templates/``) and the workbook
button macros (``workbooks/vba/``) live at the top of the repository (its fixed layout),
not inside the package. A wheel carries a copy of each as package data in
``crm_batch/_data/<same relative path>`` (setup.py maps the folders there), so:

* installed from a wheel, the package's own copy is used;
* in a checkout (``pip install -e .`` or ``PYTHONPATH``) there is no ``_data`` folder and
  the checkout's folder is used, so edits to ``sql/`` take effect without a rebuild.

The SQL folder can still be replaced per installation (``paths.sql_dir`` or
``$CRM_BATCH_SQL_DIR``, resolved in :mod:`crm_batch.config`); :data:`SQL_DIR` is the
default behind those settings.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_FOLDERS", "REPORT_TEMPLATES_DIR", "SQL_DIR", "VBA_DIR", "locate"]

#: The folder of the installed (or checked-out) ``crm_batch`` package.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository folders shipped as package data, relative to the repository root
#: (setup.py reads this tuple, so the wheel and this module never disagree).
DATA_FOLDERS = ("sql", "report_templates", "workbooks/vba")
#: Where a wheel puts its copy of :data:`DATA_FOLDERS`, inside the package.
PACKAGE_DATA = "_data"


def locate(relative: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The folder ``relative`` (one of :data:`DATA_FOLDERS`): the package's own copy when
    installed from a wheel, else the checkout's folder beside the package.

    When neither exists (a broken installation) the package's copy is returned, so the
    error a reader then raises names the place the folder should be.
    """
    if relative not in DATA_FOLDERS:
        raise ValueError(f"{relative!r} is not a shipped folder ({', '.join(DATA_FOLDERS)})")
    shipped = package_dir / PACKAGE_DATA / relative
    if shipped.is_dir():
        return shipped
    checkout = package_dir.parent / relative
    return checkout if checkout.is_dir() else shipped


#: The queries shipped with crm-batch (default of ``paths.sql_dir``).
SQL_DIR = locate("sql")
#: The Jinja2 templates and print CSS of the PDF reports.
REPORT_TEMPLATES_DIR = locate("report_templates")
#: The VBA modules behind the team workbooks' buttons (``Buttons.bas``).
VBA_DIR = locate("workbooks/vba")
