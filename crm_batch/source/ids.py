"""The integer form of text customer ids, remembered where the database sent integers.

Ids are text everywhere in crm-batch (``"007"`` and ``"7"`` are different customers).
Most databases key customers by integers, though, and joining a million keys is several
times faster on int64 than on text. :func:`crm_batch.kpi.keys.integer_keys` therefore
parses a text id column back into integers when every id is a canonical decimal. When
the column came from an integer column of the database, that parse is redundant: the
extraction already held the integers. :func:`remember_integer_keys` records them for
the Arrow array behind the text column, and :func:`remembered_integer_keys` finds them
again, for as long as that array lives (a weak reference drops the entry with it).

Only the module that converts database columns (crm_batch.source.conform) records; the KPI
layer reads. The cache is per process and holds at most one entry per live column.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd


class IdentityCache:
    """Values kept per live object, looked up by identity, dropped when the object goes.

    For objects that cannot be dict keys or whose equality is not identity (Arrow and
    NumPy arrays): the entry is keyed by ``id(obj)`` and holds a weak reference that
    proves the id still names the same object. It must not hold the object itself, or
    the entry would keep it alive.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref, Any]] = {}

    def get(self, obj: Any) -> tuple[bool, Any]:
        """(found, value) for ``obj``."""
        entry = self._entries.get(id(obj))
        if entry is None or entry[0]() is not obj:
            return False, None
        return True, entry[1]

    def put(self, obj: Any, value: Any) -> None:
        """Keep ``value`` for ``obj`` until ``obj`` is garbage collected."""
        key = id(obj)
        self._entries[key] = (weakref.ref(obj, lambda _: self._entries.pop(key, None)), value)


#: (int64 keys, missing mask) or None (not integers) per Arrow array behind a string
#: column.
_KEYS = IdentityCache()


def arrow_backing(values: pd.Series | pd.Index) -> Any:
    """The immutable Arrow array behind an Arrow-backed column, or None."""
    return getattr(pd.Series(values, copy=False).array, "_pa_array", None)


def remember_integer_keys(
    values: pd.Series | pd.Index, keys: tuple[np.ndarray, np.ndarray] | None
) -> None:
    """Record ``keys`` (int64 values and missing mask, or None for "not integers") as
    the integer form of the text column ``values``. Columns not backed by Arrow are
    not recorded (their arrays are mutable)."""
    backing = arrow_backing(values)
    if backing is not None:
        _KEYS.put(backing, keys)


def remembered_integer_keys(
    values: pd.Series | pd.Index,
) -> tuple[bool, tuple[np.ndarray, np.ndarray] | None]:
    """(found, keys): whether ``values`` has a recorded integer form, and that form."""
    backing = arrow_backing(values)
    if backing is None:
        return False, None
    return _KEYS.get(backing)
