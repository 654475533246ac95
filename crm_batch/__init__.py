"""crm-batch: batch reporting suite for customer marketing and relationship management.

Data flows one way: ``source`` (SQL extraction) -> ``kpi`` (pure pandas) -> outputs
(workbooks, reports, delivery). The CLI in :mod:`crm_batch.cli` is the composition root.

Importing the package sets one process default before NumPy loads:
``NUMPY_MADVISE_HUGEPAGE=0`` unless the environment already sets it. NumPy asks Linux
for transparent huge pages for every array of 4 MB and more; a batch run allocates
hundreds of fresh million-row arrays, and on kernels that compact memory to satisfy
that request (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, as on the
2-core virtual machines this was measured on) the first touch of each array cost up to
twice as long: the full KPI set on 10 M orders took 12.8 s with huge pages and 10.7 s
without (README "Performance"). Set ``NUMPY_MADVISE_HUGEPAGE=1`` to keep NumPy's
default. NumPy reads the variable once, when it is first imported, so a program that
imports NumPy before crm_batch keeps its own setting.
"""

import os

os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

__version__ = "0.1.0"
