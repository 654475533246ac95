"""Tier migration: tier A/B/C at the start of a period x tier at its end (counts).

Inputs: two segmented customer tables (:func:`crm_batch.kpi.segments.segment_customers`),
one as of the day before the period starts and one as of its (clipped) last day.

Definition (DESIGN.md "Migration"): every customer in either table is counted once, in
row = tier at the start, column = tier at the end. ``none`` stands for "no tier": a
registered customer without a paid order (prospect) or a customer not yet registered at
the start. An **upgrade** is a move to a better tier (none < C < B < A), a
**downgrade** a move to a worse one; a buyer never loses the C tier (it covers every
lifetime buyer), so downgrades end in C or B.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_batch.kpi.definitions import KpiDefinition
from crm_batch.kpi.keys import positions

NONE_LABEL = "none"
#: Row and column order of :func:`tier_migration`, best first.
TIER_ORDER = ("A", "B", "C", NONE_LABEL)

KPIS = (
    KpiDefinition(
        "tier_upgrades",
        "客户升级数",
        "Tier upgrades",
        "count",
        "up",
        "Customers whose tier (none < C < B < A) is higher at the period's end than at its start.",
        "期末等级(无 < C < B < A)高于期初等级的客户数。",
        0,
    ),
    KpiDefinition(
        "tier_downgrades",
        "客户降级数",
        "Tier downgrades",
        "count",
        "down",
        "Customers whose tier is lower at the period's end than at its start.",
        "期末等级低于期初等级的客户数。",
        0,
    ),
)


def _codes(values: pd.Series, order: tuple[str, ...]) -> np.ndarray:
    """Position of each tier in ``order``; missing or unknown values are ``none``."""
    none = order.index(NONE_LABEL)
    if isinstance(values.dtype, pd.CategoricalDtype):  # segments' tiers: map categories only
        labels = [str(c) for c in values.cat.categories]
        # one entry per category, then ``none`` for the missing code -1
        of_code = np.array([order.index(c) if c in order else none for c in labels] + [none])
        return of_code[values.cat.codes.to_numpy(dtype="int64")]
    labels = values.astype("string").fillna(NONE_LABEL)
    codes = pd.Categorical(labels, categories=list(order)).codes.astype("int64")
    return np.where(codes < 0, none, codes)


def tier_migration(
    start: pd.DataFrame,
    end: pd.DataFrame,
    column: str = "tier",
    order: tuple[str, ...] = TIER_ORDER,
    *,
    where: np.ndarray | None = None,
) -> pd.DataFrame:
    """Counts of customers by tier at the start (rows) and at the end (columns).

    ``start`` and ``end`` hold one row per customer (``customer_id`` and ``column``).
    ``column`` may be ``value_tier`` with ``order=("diamond", "silver", "bronze",
    "iron", "none")``; missing values become ``none``. Every label of ``order`` is a
    row and a column, even when empty. ``where``, when the caller already knows it, is
    the position of each start row's customer in ``end`` (-1: absent), saving the id
    lookup.
    """
    none = order.index(NONE_LABEL)
    start_codes = _codes(start[column], order)
    end_codes = _codes(end[column], order)
    if where is None:
        where = positions(start["customer_id"], end["customer_id"])
    found = where >= 0
    seen_at_end = np.zeros(len(end), dtype=bool)
    seen_at_end[where[found]] = True
    rows = np.concatenate([start_codes, np.full((~seen_at_end).sum(), none)])
    columns = np.concatenate(
        [np.where(found, end_codes[np.maximum(where, 0)], none), end_codes[~seen_at_end]]
    )
    size = len(order)
    counts = np.bincount(rows * size + columns, minlength=size * size).reshape(size, size)
    matrix = pd.DataFrame(counts.astype("int64"), index=list(order), columns=list(order))
    matrix.index.name = f"{column}_start"
    matrix.columns.name = f"{column}_end"
    return matrix


def migration_kpis(matrix: pd.DataFrame) -> dict[str, float]:
    """Upgrades (below the diagonal of a best-first matrix) and downgrades (above it)."""
    counts = matrix.to_numpy()
    # rows/columns are ordered best first: row i -> column j is an upgrade when j < i
    upgrades = np.tril(counts, k=-1).sum()
    downgrades = np.triu(counts, k=1).sum()
    return {"tier_upgrades": float(upgrades), "tier_downgrades": float(downgrades)}
