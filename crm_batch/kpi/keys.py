"""Lookups by opaque text keys, fast on a million customers; and the NaN-safe ratio.

Ids are text (``string`` dtype) everywhere. Hash lookups on a million text keys through
``Series.map``, ``isin`` or ``reindex`` cost one to two seconds each in pandas 3 with
Arrow strings; :func:`positions` uses Arrow's C++ hash table instead (about 0.5 s) and
falls back to :meth:`pandas.Index.get_indexer` without pyarrow. The period KPI modules
therefore align frames once (:func:`lookup`) and filter by plain column comparisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

try:  # pandas' Arrow-backed strings come with pyarrow
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - pyarrow is installed with pandas here
    pa = None
    pc = None


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0 (an empty population)."""
    return float(numerator) / float(denominator) if denominator else float("nan")


def _arrow(values: pd.Series | pd.Index) -> object:
    array = pa.array(pd.Series(values).astype("string").array)  # type: ignore[union-attr]
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array  # type: ignore[union-attr]


def positions(keys: pd.Series | pd.Index, values: pd.Series | pd.Index) -> np.ndarray:
    """For each key, the position of its first occurrence in ``values``; -1 when absent.

    Missing keys never match (not even missing values).
    """
    if len(keys) == 0:
        return np.empty(0, dtype="int64")
    if len(values) == 0:
        return np.full(len(keys), -1, dtype="int64")
    if pc is not None:
        found = pc.index_in(_arrow(keys), value_set=_arrow(values), skip_nulls=True)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
    index = pd.Index(pd.Series(values).astype(object))
    first = ~index.duplicated()
    located = pd.Index(index[first]).get_indexer(pd.Series(keys).astype(object))
    original = np.flatnonzero(first)
    result = np.where(located >= 0, original[np.maximum(located, 0)], -1)
    missing = pd.Series(keys).isna().to_numpy()
    return np.where(missing, -1, result).astype("int64")


def lookup(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """``mapping[key]`` for every key (NA when absent), like ``reindex``.

    ``mapping`` is indexed by id; for a duplicated id its first value wins. Dates stay
    dates (``keys.map(mapping)`` loses them when ``mapping`` is empty).
    """
    found = positions(keys, mapping.index)
    values = mapping.array
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        values = values.to_numpy()  # numpy's take upcasts ints to float for the NaN fill
    taken = pd.api.extensions.take(values, found, allow_fill=True)
    return pd.Series(taken, index=keys.index, name=mapping.name)


def member(keys: pd.Series, values: pd.Series | pd.Index) -> np.ndarray:
    """True where the key occurs in ``values`` (a fast ``isin`` for text ids)."""
    return positions(keys, values) >= 0
