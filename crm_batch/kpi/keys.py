"""Lookups by opaque text keys, fast on a million customers; and the NaN-safe ratio.

Ids are text (``string`` dtype) everywhere. Hash lookups on a million text keys through
``Series.map``, ``isin`` or ``reindex`` cost one to two seconds each in pandas 3 with
Arrow strings. :func:`positions_many` uses Arrow's C++ hash table instead and hashes the
searched ids once for any number of key columns (hashing a million ids costs about
0.35 s, probing a million keys a tenth of that); without pyarrow it falls back to
:meth:`pandas.Index.get_indexer`. The period KPI modules therefore align frames once and
then filter by plain column comparisons.

Keys of databases with integer ids arrive as canonical decimal text (``"7"``, never
``"007"``): :func:`integer_keys` recognises such a column (one Arrow parse and a
round-trip check) and the lookups then match int64 values by sorting, several times
faster than hashing text. Equal text is equal integers and vice versa, so the
positions are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_batch.source.ids import (
    IdentityCache,
    remember_integer_keys,
    remembered_integer_keys,
)

try:  # pandas' Arrow-backed strings come with pyarrow
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - pyarrow is installed with pandas here
    pa = None
    pc = None


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0 (an empty population)."""
    return float(numerator) / float(denominator) if denominator else float("nan")


def team_codes(values: pd.Series, teams: Sequence[str]) -> np.ndarray:
    """Each value's position in ``teams`` (-1: another team or none), int64; the
    distinct values are hashed, not every row."""
    codes, uniques = pd.factorize(values)
    return np.append(pd.Index(list(teams)).get_indexer(uniques), -1)[codes]


def count_by_team(codes: np.ndarray, chosen: np.ndarray, teams: int) -> np.ndarray:
    """How many ``chosen`` rows each of ``teams`` teams has (``codes``: :func:`team_codes`
    of the rows; -1 rows count for none)."""
    return np.bincount(codes[chosen & (codes >= 0)], minlength=teams)


def _arrow(values: pd.Series | pd.Index) -> object:
    array = pa.array(pd.Series(values).astype("string").array)  # type: ignore[union-attr]
    if isinstance(array, pa.ChunkedArray):  # type: ignore[union-attr]
        array = array.combine_chunks()
    return array.cast(pa.large_string())  # type: ignore[union-attr]


def integer_keys(values: pd.Series | pd.Index) -> tuple[np.ndarray, np.ndarray] | None:
    """The keys as int64 and a mask of missing keys, or None unless every present key is
    a canonical decimal integer (``"7"``, ``"-12"``; not ``"007"``, ``"+7"`` or ``"7.0"``).

    Canonical means the text is exactly what the integer prints as, so two keys are equal
    as text exactly when they are equal as integers. Ids the database sent as integers
    come with their integer form (:mod:`crm_batch.source.ids`); others are parsed once
    per Arrow-backed column and remembered.
    """
    if pc is None:  # pragma: no cover - pyarrow is installed with pandas here
        return None
    found, result = remembered_integer_keys(values)
    if found:
        return result
    result = _parse_integer_keys(_arrow(values))
    remember_integer_keys(values, result)
    return result


def _parse_integer_keys(array: object) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        ints = pc.cast(array, pa.int64())  # type: ignore[union-attr]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # type: ignore[union-attr]
        return None
    printed = pc.cast(ints, pa.large_string())  # type: ignore[union-attr]
    # min_count=0: an empty or all-missing column is vacuously canonical
    if not pc.all(pc.equal(printed, array), min_count=0).as_py():  # type: ignore[union-attr]
        return None
    missing = pc.is_null(array).to_numpy(zero_copy_only=False)  # type: ignore[union-attr]
    return ints.fill_null(0).to_numpy(zero_copy_only=False).astype("int64"), missing


#: The widest key range, per key, that :class:`_IntegerIndex` covers with a direct
#: table (4 slots of 8 bytes per key at most; ids of one register are usually dense).
_DENSE_SLOTS_PER_KEY = 4


@dataclass(frozen=True)
class _IntegerIndex:
    """Where each distinct integer key first occurs in a key column.

    Dense (``slots`` set): unique keys spanning a narrow range get a direct table,
    ``slots[key - low]`` = position or -1, so a lookup is one array access. Otherwise
    ``unique`` (ascending) and ``first_position`` for a binary search.
    """

    low: int = 0
    slots: np.ndarray | None = None
    unique: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))
    first_position: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))
    has_duplicates: bool = False

    def find(self, numbers: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Position of each key's first occurrence, -1 when absent or missing."""
        if self.slots is not None:
            # range checks on the keys themselves (key - low may wrap around near the
            # int64 limits; inside the range it never does), then one gather
            high = self.low + len(self.slots) - 1
            outside = (numbers < self.low) | (numbers > high) | missing
            offsets = numbers - self.low
            any_outside = bool(outside.any())
            if any_outside:
                offsets[outside] = 0
            found = self.slots.take(offsets)
            if any_outside:
                found[outside] = -1
            return found
        unique, first_position = self.unique, self.first_position
        if len(unique) == 0:
            return np.full(len(numbers), -1, dtype="int64")
        slot = np.minimum(np.searchsorted(unique, numbers), len(unique) - 1)
        hit = (unique[slot] == numbers) & ~missing
        return np.where(hit, first_position[slot], -1).astype("int64")


#: _integer_index results per (cached) int64 array of a key column.
_INDEXES = IdentityCache()


def _integer_index(values: tuple[np.ndarray, np.ndarray]) -> _IntegerIndex:
    """The :class:`_IntegerIndex` of an integer key column, cached per array (the
    register is searched by many frames, and indexing a million keys costs more than a
    search). Keys already strictly ascending (as customers.sql returns integer ids)
    are their own sorted unique values."""
    numbers, missing = values
    found, index = _INDEXES.get(numbers)
    if not found:
        index = _build_integer_index(numbers, missing)
        _INDEXES.put(numbers, index)
    return index


def _build_integer_index(numbers: np.ndarray, missing: np.ndarray) -> _IntegerIndex:
    present = np.flatnonzero(~missing) if missing.any() else None
    keys = numbers if present is None else numbers[present]
    positions_of_keys = np.arange(len(numbers), dtype="int64") if present is None else present
    low = int(keys.min()) if len(keys) else 0
    span = int(keys.max()) - low + 1 if len(keys) else 0
    if span and span <= max(_DENSE_SLOTS_PER_KEY * len(keys), 1024):
        slots = np.full(span, -1, dtype="int64")
        slots[keys - low] = positions_of_keys
        # with a repeated key only one of its writes survives (which one numpy does not
        # promise), so reading every key back finds the repeats
        if bool((slots[keys - low] == positions_of_keys).all()):
            return _IntegerIndex(low=low, slots=slots)
    if present is None and bool((numbers[1:] > numbers[:-1]).all()):
        return _IntegerIndex(unique=numbers, first_position=positions_of_keys)
    unique, first = np.unique(keys, return_index=True)
    return _IntegerIndex(
        unique=unique,
        first_position=positions_of_keys[first],
        has_duplicates=len(unique) < len(keys),
    )


def has_duplicate_keys(values: pd.Series | pd.Index) -> bool:
    """Whether a present (non-missing) key occurs more than once in ``values``."""
    numeric = integer_keys(values)
    if numeric is not None:
        return _integer_index(numeric).has_duplicates
    present = pd.Series(values).dropna()
    return bool(present.duplicated().any())


def _integer_positions(
    keys: list[tuple[np.ndarray, np.ndarray]], values: tuple[np.ndarray, np.ndarray]
) -> list[np.ndarray]:
    """:func:`positions_many` on integer keys: a direct table or a binary search."""
    index = _integer_index(values)
    return [index.find(numbers, missing) for numbers, missing in keys]


def positions_many(
    keys: Sequence[pd.Series | pd.Index], values: pd.Series | pd.Index
) -> list[np.ndarray]:
    """For each key of each series, the position of its first occurrence in ``values``.

    -1 when absent; a missing key never matches. ``values`` is hashed once.
    """
    lengths = [len(k) for k in keys]
    total = sum(lengths)
    if total == 0 or len(values) == 0:
        return [np.full(n, -1, dtype="int64") for n in lengths]
    numeric_values = integer_keys(values)
    if numeric_values is not None:
        numeric_keys = [integer_keys(k) for k in keys]
        if all(k is not None for k in numeric_keys):
            return _integer_positions(numeric_keys, numeric_values)  # type: ignore[arg-type]
    if pc is not None:
        batch = pa.concat_arrays([_arrow(k) for k in keys if len(k)])  # type: ignore[union-attr]
        found = pc.index_in(batch, value_set=_arrow(values), skip_nulls=True)
        flat = found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
    else:  # pragma: no cover - the pyarrow-less fallback
        index = pd.Index(pd.Series(values).astype(object))
        first = ~index.duplicated()
        batch = pd.concat([pd.Series(k).astype(object) for k in keys], ignore_index=True)
        located = pd.Index(index[first]).get_indexer(batch)
        flat = np.where(located >= 0, np.flatnonzero(first)[np.maximum(located, 0)], -1)
        flat = np.where(batch.isna().to_numpy(), -1, flat).astype("int64")
    return np.split(flat, np.cumsum(lengths)[:-1])


@dataclass(frozen=True)
class Alignment:
    """Where the rows of a register sit in another frame keyed by the same ids."""

    rows: np.ndarray  #: per register row, the frame row with its key (-1: none)
    repeated: bool  #: a present key occurs more than once in the frame


def align_to(register: pd.Series, keys: Sequence[pd.Series]) -> list[Alignment]:
    """For each key column, the row holding each register key, and whether a key repeats.

    One lookup per column in the register's index (built once): a key the column holds
    twice shows as two rows claiming one register row, so no separate index of the
    column is needed; only keys the register lacks (usually none) are checked apart.
    """
    found_per_column = positions_many(keys, register)
    alignments = []
    for column, found in zip(keys, found_per_column, strict=True):
        rows = np.full(len(register), -1, dtype="int64")
        registered = found >= 0
        everyone = bool(registered.all())
        claimants = np.arange(len(found)) if everyone else np.flatnonzero(registered)
        claimed = found if everyone else found[claimants]
        rows[claimed] = claimants
        repeated = not bool((rows[claimed] == claimants).all())
        if not repeated and not everyone:
            repeated = has_duplicate_keys(pd.Series(column).iloc[np.flatnonzero(~registered)])
        alignments.append(Alignment(rows, repeated))
    return alignments


def positions(keys: pd.Series | pd.Index, values: pd.Series | pd.Index) -> np.ndarray:
    """For each key, the position of its first occurrence in ``values``; -1 when absent."""
    return positions_many([keys], values)[0]


def take(values: pd.Series, where: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """``values`` at positions ``where`` (-1 gives NA), keeping dates and nullable dtypes."""
    array = values.array
    if isinstance(array, pd.arrays.NumpyExtensionArray):
        array = array.to_numpy()  # numpy's take upcasts ints to float for the NaN fill
    taken = pd.api.extensions.take(array, where, allow_fill=True)
    return pd.Series(taken, index=index, name=values.name)


def lookup(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """``mapping[key]`` for every key (NA when absent), like ``reindex``.

    ``mapping`` is indexed by id; for a duplicated id its first value wins. Dates stay
    dates (``keys.map(mapping)`` loses them when ``mapping`` is empty).
    """
    return take(mapping, positions(keys, mapping.index), keys.index)


def attach(
    frame: pd.DataFrame, other: pd.DataFrame, columns: Sequence[str], key: str = "customer_id"
) -> pd.DataFrame:
    """``frame`` with ``other``'s ``columns`` looked up by ``key`` (NA where absent)."""
    where = positions(frame[key], other[key])
    return frame.assign(**{c: take(other[c], where, frame.index) for c in columns})
