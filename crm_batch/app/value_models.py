"""The fitted value models per business date: one row of ``value_model_parameters``.

The nightly run (and ``kpis --snapshot``, the backfill) stores the company's BG/NBD and
Gamma-Gamma parameters of each business date beside its KPI snapshots, so reports can
show how the buying rate, dropout and spend distributions move. Like the snapshots, a
date's row is replaced in one transaction (re-running a date never duplicates it); a
model that could not be fitted is stored as NULLs and read back as NaN.

A later run for the same date reads its row back (:func:`stored_value_model`) and uses
it instead of fitting again when it was fitted on the same buyers
(:func:`crm_batch.kpi.predict.fitted_on`): a workbook refresh or a report of the same
night costs one likelihood evaluation per model instead of a fit (about 4.5 s per
million buyers).
"""

from __future__ import annotations

import math
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Table, delete, inspect, select
from sqlalchemy.engine import Engine

from crm_batch.kpi.predict import ValueModel, from_parameters
from crm_batch.schema import VALUE_MODEL_FIGURES, build_metadata
from crm_batch.source.conform import as_date

TABLE = "value_model_parameters"


def _table() -> Table:
    return build_metadata().tables[TABLE]


def write_value_model(
    engine: Engine, as_of: date, model: ValueModel, computed_at: datetime
) -> None:
    """Replace the row of ``as_of`` with ``model``'s figures (creates the table if missing).

    ``computed_at`` is stored as naive local time to the second, like the snapshots.
    """
    figures = model.parameters()
    row: dict[str, object] = {
        name: figures[name] if math.isfinite(figures[name]) else None
        for name in VALUE_MODEL_FIGURES
    }
    moment = pd.Timestamp(computed_at).to_pydatetime()
    row |= {"as_of": as_date(as_of), "computed_at": moment.replace(tzinfo=None, microsecond=0)}
    table = _table()
    table.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.as_of == row["as_of"]))
        conn.execute(table.insert(), [row])


def read_value_models(
    engine: Engine, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Stored rows (``start`` and ``end`` inclusive), oldest first: ``as_of`` and
    ``computed_at`` as datetime64, every figure float64 with NaN for NULL; an empty frame
    when the table does not exist yet."""
    names = ("as_of", *VALUE_MODEL_FIGURES, "computed_at")
    records: list[object] = []
    if inspect(engine).has_table(TABLE):
        table = _table()
        query = select(*(table.c[name] for name in names)).order_by(table.c.as_of)
        if start is not None:
            query = query.where(table.c.as_of >= as_date(start))
        if end is not None:
            query = query.where(table.c.as_of <= as_date(end))
        with engine.connect() as conn:
            records = list(conn.execute(query).all())
    frame = pd.DataFrame.from_records(records, columns=list(names))
    typed = {name: pd.to_numeric(frame[name]).astype("float64") for name in VALUE_MODEL_FIGURES}
    return pd.DataFrame(
        {
            "as_of": pd.to_datetime(frame["as_of"]).astype("datetime64[ns]"),
            **typed,
            "computed_at": pd.to_datetime(frame["computed_at"]).astype("datetime64[ns]"),
        }
    )


def stored_value_model(engine: Engine, as_of: date) -> ValueModel | None:
    """The models stored for ``as_of`` (None: no row, or no table yet)."""
    rows = read_value_models(engine, as_of, as_of)
    if rows.empty:
        return None
    figures = rows.iloc[-1]
    return from_parameters({name: float(figures[name]) for name in VALUE_MODEL_FIGURES})
