"""crm-batch: batch reporting suite for customer marketing and relationship management.

Data flows one way: ``source`` (SQL extraction) -> ``kpi`` (pure pandas) -> ``app``
(services: engines, KPI runs, snapshots, follow-ups) -> outputs (``excel``, ``reports``,
``exports``, ``delivery``) -> ``jobs`` (nightly, quarterly, demo) -> entry points (``cli``,
``scheduler``, ``buttons``). README "Architecture" draws the layers; ``lint-imports``
enforces them.
"""

__version__ = "0.1.0"
