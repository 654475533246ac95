"""Process-wide defaults an entry point sets before the heavy libraries load.

``NUMPY_MADVISE_HUGEPAGE=0`` unless the environment already sets it. NumPy asks Linux
for transparent huge pages for every array of 4 MB and more; a batch run allocates
hundreds of fresh million-row arrays, and on kernels that compact memory to satisfy
that request (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, as on the
2-core virtual machines this was measured on) the first touch of each array cost up to
twice as long: the full KPI set on 10 M orders took 12.8 s with huge pages and 10.7 s
without (README "Performance"). Set ``NUMPY_MADVISE_HUGEPAGE=1`` to keep NumPy's
default. NumPy reads the variable once, when it is first imported, so entry points
(the CLI, the workbook buttons, the benchmarks) call :func:`prepare_process` before
anything imports NumPy; importing the package itself changes nothing.
"""

from __future__ import annotations

import os


def prepare_process() -> None:
    """Set the process defaults above (a value already in the environment wins)."""
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
