"""Services: the only layer that opens databases (through :mod:`crm_batch.app.engines`).

Each module owns one kind of work on the databases: the KPI runs (``kpis``, ``frames``,
``targets``, ``quarter``, ``reconciliation``), the state tables crm-batch writes
(``snapshots``, ``followups``, ``runlog``, ``ledger``, ``locking``), what the workbooks
read back (``workbook_data``), ``status`` and the ``demo`` database. Outputs above this
layer receive their results as plain data.
"""
