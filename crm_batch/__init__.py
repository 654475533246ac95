"""crm-batch: batch reporting suite for customer marketing and relationship management.

Data flows one way: ``source`` (SQL extraction) -> ``kpi`` (pure pandas) -> outputs
(workbooks, reports, delivery). The CLI in :mod:`crm_batch.cli` is the composition root.
"""

__version__ = "0.1.0"
