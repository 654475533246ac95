"""Database results typed by their sql/ header: the same pandas dtypes from every driver.

Column types of the sql/ headers come back as these pandas dtypes: ``id`` and ``text``
-> ``string`` (keys are opaque text: ``7`` becomes ``"7"``, ``"007"`` stays ``"007"``),
``date`` and ``timestamp`` -> ``datetime64[ns]`` (naive local time), ``int`` -> ``Int64``,
``float`` and ``money`` -> ``float64``, ``bool`` -> ``boolean``.

:func:`conform_arrow` types Arrow results (DuckDB, PostgreSQL through ADBC) column by
column in Arrow, without a Python object per value; :func:`conform_frame` types row
tuples (every other driver). Anything the Arrow path does not recognise goes through
the same per-value conversion as row tuples, so errors read alike on every database.
"""

from __future__ import annotations

import math
import numbers
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_batch.errors import DataError, SqlContractError
from crm_batch.source.failures import first_line
from crm_batch.source.ids import remember_integer_keys
from crm_batch.source.sql_files import SqlQuery


class ArrowUnsupportedError(Exception):
    """A result column of an Arrow type :func:`conform_arrow` cannot convert faithfully."""


def conform_frame(
    frame: pd.DataFrame, query: SqlQuery, *, timezone: str | None = None
) -> pd.DataFrame:
    """Check the columns against the header and cast each to its declared type.

    Timestamps with a time zone (PostgreSQL ``timestamptz``, DuckDB ``TIMESTAMPTZ``)
    become naive: converted to ``timezone`` when given, else each keeps the wall time
    the database sent (the session time zone), offsets that differ row by row
    (daylight saving) included.
    """
    returned = _returned_columns([str(c) for c in frame.columns], query)
    frame = frame.rename(columns={r: d for d, r in returned.items()})[list(returned)]
    typed = {
        spec.name: _cast(frame[spec.name], spec.type, query, spec.name, timezone)
        for spec in query.columns
    }
    return pd.DataFrame(typed, index=frame.index, copy=False)


def conform_arrow(table: pa.Table, query: SqlQuery, timezone: str | None = None) -> pd.DataFrame:
    """:func:`conform_frame` for an Arrow result: the same checks, dtypes and errors.

    Columns of the Arrow types databases send for each header type are converted in
    Arrow; any other column goes through the per-value conversion of row tuples.
    ``timezone`` also names the zone of ``timestamptz`` columns when no conversion
    zone is configured (the session time zone ADBC does not apply itself).
    """
    returned = _returned_columns(list(table.column_names), query)
    typed: dict[str, pd.Series] = {}
    for spec in query.columns:
        column = table.column(returned[spec.name])
        try:
            series = _arrow_series(column, spec.type, timezone)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            series = None  # out of range or unparsable: the generic path names the row
        if series is None:
            try:
                values = column.to_pandas()
            except (pa.ArrowException, ValueError, TypeError) as exc:
                raise ArrowUnsupportedError(f"column {spec.name}: {column.type}") from exc
            series = _cast(values, spec.type, query, spec.name, timezone)
        typed[spec.name] = series
    # copy=False: the typed columns are new; stacking them into 2-D blocks would copy all
    return pd.DataFrame(typed, index=pd.RangeIndex(table.num_rows), copy=False)


def _returned_columns(returned: list[str], query: SqlQuery) -> dict[str, str]:
    """Declared column -> returned column name (case-insensitive), in header order.

    Raises :class:`SqlContractError` for a repeated, missing or undeclared column.
    """
    lowered = [c.lower() for c in returned]
    repeated = sorted({c for c in returned if lowered.count(c.lower()) > 1})
    if repeated:
        raise SqlContractError(
            f"{query.path}: the query returns {', '.join(repeated)} more than once; give "
            "every output column its own alias"
        )
    by_lower = {c.lower(): c for c in returned}
    declared = list(query.column_names)
    missing = [c for c in declared if c.lower() not in by_lower]
    extra = [c for c in returned if c.lower() not in {d.lower() for d in declared}]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"declared but not returned: {', '.join(missing)}")
        if extra:
            parts.append(f"returned but not declared: {', '.join(extra)}")
        raise SqlContractError(f"{query.path}: columns differ from the header ({'; '.join(parts)})")
    return {d: by_lower[d.lower()] for d in declared}


def _string_series(column: pa.ChunkedArray) -> pd.Series:
    """A ``large_string`` column as pandas ``string``, sharing its buffers.

    The array always has a chunk (an empty one for no rows): some pandas operations,
    e.g. ``merge_asof`` on a text key, fail on an Arrow column without chunks.
    """
    if column.num_chunks == 0:
        column = pa.chunked_array([pa.array([], type=pa.large_string())])
    return pd.Series(pd.arrays.ArrowStringArray(column))


def _integer_id_series(column: pa.ChunkedArray) -> pd.Series:
    """Integer ids as text in one chunk, with the integers remembered for joins
    (:mod:`crm_batch.source.ids`: the KPI layer need not parse the text back)."""
    ints = pc.cast(column, pa.int64())
    ints = ints.combine_chunks() if ints.num_chunks else pa.array([], type=pa.int64())
    series = _string_series(pa.chunked_array([pc.cast(ints, pa.large_string())]))
    numbers = ints.fill_null(0).to_numpy(zero_copy_only=False)
    remember_integer_keys(series, (numbers, ints.is_null().to_numpy(zero_copy_only=False)))
    return series


def _arrow_series(column: pa.ChunkedArray, kind: str, timezone: str | None) -> pd.Series | None:
    """One Arrow column as its header type's pandas series; None for the generic path.

    Handled: text and integer ids, text; dates and timestamps (a time zone is dropped
    after converting to ``timezone``, else to the zone the column carries); integers
    and exact integral decimals (DuckDB sums) as Int64; numbers, decimals and
    PostgreSQL ``numeric`` text as float64; booleans and 0/1 integers as boolean.
    """
    if pa.types.is_dictionary(column.type):  # enums
        column = column.cast(column.type.value_type)
    if isinstance(column.type, pa.BaseExtensionType):  # ADBC: numeric and others as text
        storage = column.type.storage_type
        textual = pa.types.is_string(storage) or pa.types.is_large_string(storage)
        if not (textual and kind in {"int", "float", "money"}):
            # e.g. a numeric id "7.00", which the row path turns into "7"
            raise ArrowUnsupportedError(f"{column.type} read as {kind}")
        column = pa.chunked_array([chunk.storage for chunk in column.chunks], storage)
    kind_type = column.type
    if kind in {"id", "text"}:
        textual = pa.types.is_string(kind_type) or pa.types.is_large_string(kind_type)
        if kind == "id" and pa.types.is_integer(kind_type):
            return _integer_id_series(column)
        if not textual:
            return None
        return _string_series(pc.cast(column, pa.large_string()))
    if kind in {"date", "timestamp"}:
        if pa.types.is_timestamp(kind_type) and kind_type.tz:
            zone = timezone or kind_type.tz
            values = _naive(pd.Series(column.to_pandas()), zone).astype("datetime64[ns]")
        elif pa.types.is_date(kind_type) or pa.types.is_timestamp(kind_type):
            nanos = pc.cast(column, pa.timestamp("ns"))
            values = pd.Series(nanos.to_numpy(), dtype="datetime64[ns]")
        else:
            return None
        if kind == "date" and not pa.types.is_date(kind_type):  # a date type has no time
            return values.dt.normalize()
        return values
    if kind == "int":
        integral = pa.types.is_decimal(kind_type) and kind_type.scale == 0
        if not (pa.types.is_integer(kind_type) or integral):
            return None
        return pd.Series(pd.Int64Dtype().__from_arrow__(pc.cast(column, pa.int64())))
    if kind in {"float", "money"}:
        numeric = pa.types.is_integer(kind_type) or pa.types.is_floating(kind_type)
        textual = pa.types.is_string(kind_type) or pa.types.is_large_string(kind_type)
        if pa.types.is_decimal(kind_type):
            return pd.Series(decimal_floats(column), dtype="float64", copy=False)
        if not (numeric or textual):
            return None
        floats = pc.cast(column, pa.float64())
        return pd.Series(floats.to_numpy(zero_copy_only=False), dtype="float64")
    if kind == "bool":
        if pa.types.is_integer(kind_type):
            column = pc.not_equal(column, 0)
        elif not pa.types.is_boolean(kind_type):
            return None
        return pd.Series(pd.BooleanDtype().__from_arrow__(column))
    return None


def decimal_floats(column: pa.ChunkedArray) -> np.ndarray:
    """Decimal values as the nearest float64 each (NULL: NaN), like ``float(Decimal)``.

    Arrow's own decimal-to-float cast is not correctly rounded: ``19.99`` came out as
    ``19.990000000000002`` for about one value in eight, so money read through Arrow
    (DuckDB, PostgreSQL) differed in the last bit from the same money read as Python
    decimals (SQLite, MariaDB) and printed with a tail in CSV and JSON. Here the
    unscaled integer of each decimal is read from the Arrow buffer and divided by the
    power of ten in one float64 division, which is correctly rounded whenever the
    unscaled value is exact in a float64 (below 2**53: money under 90 trillion with
    cents); any other value goes through Python's Decimal.
    """
    parts = [_decimal_chunk_floats(chunk) for chunk in column.chunks]
    return np.concatenate(parts) if parts else np.empty(0, dtype="float64")


def _decimal_chunk_floats(chunk: pa.Array) -> np.ndarray:
    scale = chunk.type.scale
    unscaled = _unscaled_int64(chunk) if 0 <= scale <= 22 and len(chunk) else None
    if unscaled is None:  # decimal256, negative or huge scales: rare, Python per value
        return np.array([np.nan if v is None else float(v) for v in chunk.to_pylist()])
    values, fits = unscaled
    floats = values / float(10**scale)  # 10**22 is still exact in float64
    # exact where the integer is: below 2**53 in size (every amount under 90 trillion)
    exact = fits & (values <= 2**53) & (values >= -(2**53))
    if chunk.null_count:
        missing = chunk.is_null().to_numpy(zero_copy_only=False)
        floats[missing] = np.nan
        exact |= missing
    if not exact.all():
        for row in np.flatnonzero(~exact):
            floats[row] = float(chunk[int(row)].as_py())
    return floats


def _unscaled_int64(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """The unscaled integers of a decimal32/64/128 chunk as int64 and where they fit
    (little-endian two's complement in the data buffer); None for other widths."""
    data = chunk.buffers()[1]
    rows = slice(chunk.offset, chunk.offset + len(chunk))
    for width, dtype in (("decimal32", "<i4"), ("decimal64", "<i8")):  # pyarrow >= 18
        is_width = getattr(pa.types, f"is_{width}", None)
        if is_width is not None and is_width(chunk.type):
            values = np.frombuffer(data, dtype=dtype)[rows].astype("int64")
            return values, np.ones(len(values), dtype=bool)
    if not pa.types.is_decimal128(chunk.type):
        return None
    words = np.frombuffer(data, dtype="<i8").reshape(-1, 2)[rows]  # low word, high word
    low, high = words[:, 0], words[:, 1]
    return low, high == (low >> 63)  # the high word only extends the sign


def _cast(
    values: pd.Series, kind: str, query: SqlQuery, column: str, timezone: str | None
) -> pd.Series:
    try:
        if kind == "id":
            return id_series(values)
        if kind == "text":
            if _all_text(values):
                return values.astype("string")
            return values.map(_decoded, na_action="ignore").astype("string")
        if kind in {"date", "timestamp"}:
            converted = pd.to_datetime(_naive(values, timezone), errors="raise", format="mixed")
            # text with one offset ("...+08:00", SQLite) parses tz-aware: drop it too
            converted = _naive(converted, timezone).astype("datetime64[ns]")
            return converted.dt.normalize() if kind == "date" else converted
        if kind == "int":
            return pd.to_numeric(values, errors="raise").astype("Int64")
        if kind in {"float", "money"}:
            return pd.to_numeric(values, errors="raise").astype("float64")
        if kind == "bool":
            if pd.api.types.is_bool_dtype(values) or _inferred(values) == "boolean":
                return values.astype("boolean")
            return values.map(_to_bool, na_action="ignore").astype("boolean")
    except (ValueError, TypeError, OverflowError) as exc:
        bad = _first_bad_row(values, kind)
        raise DataError(
            f"{query.path.name}: column {column} should be {kind}: {bad} ({first_line(exc)})"
        ) from None
    raise SqlContractError(f"{query.path}: unknown column type {kind!r} for {column}")


def _naive(values: pd.Series, timezone: str | None) -> pd.Series:
    """Drop time zones: convert to ``timezone`` first when given."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return (values.dt.tz_convert(timezone) if timezone else values).dt.tz_localize(None)
    if values.dtype != object:
        return values
    zone = ZoneInfo(timezone) if timezone else None

    def naive(value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return (value.astimezone(zone) if zone else value).replace(tzinfo=None)
        return value

    return values.map(naive, na_action="ignore")


def _inferred(values: pd.Series) -> str:
    """pandas' inferred kind of an object column's values (one C-level pass)."""
    if values.dtype != object:
        return ""
    return pd.api.types.infer_dtype(values, skipna=True)


def _all_text(values: pd.Series) -> bool:
    """True when every value is already text (or missing): no per-value conversion."""
    return pd.api.types.is_string_dtype(values.dtype) and (
        values.dtype != object or _inferred(values) in {"string", "empty"}
    )


def _decoded(value: Any) -> Any:
    """Text as str: bytes (binary collations, BLOB-ish columns) decode as UTF-8."""
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


def id_series(values: pd.Series) -> pd.Series:
    """Opaque keys as text: integers lose no digits and gain no '.0'; NULL stays NULL.

    Text keys are kept as they are (``"007"`` stays ``"007"``, ``"1e3"`` stays text).
    """
    if pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").astype("string")
    if pd.api.types.is_float_dtype(values):
        return values.astype("Int64").astype("string")
    if _all_text(values):
        return values.astype("string")
    return values.map(_id_text, na_action="ignore").astype("string")


def _id_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, (float, Decimal, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (bytes, bytearray)) and len(value) == 1:  # MySQL BIT(1)
        return value != b"\x00"
    if isinstance(value, numbers.Number):  # tinyint(1), SQLite 0/1, Decimal sums
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "t", "yes", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "f", "no", "n"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _first_bad_row(values: pd.Series, kind: str) -> str:
    """Name the first row whose value does not convert (for the error message)."""
    for position, value in enumerate(values):
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        try:
            if kind in {"date", "timestamp"}:
                pd.Timestamp(value).as_unit("ns")
            elif kind == "int":
                if not float(value).is_integer():
                    raise ValueError("not a whole number")
            elif kind in {"float", "money"}:
                float(value)
            elif kind == "bool":
                _to_bool(value)
        except (ValueError, TypeError, OverflowError):
            return f"row {position + 1} has {str(value)[:60]!r}"
    return "a value does not convert"


def as_date(value: date | datetime | str) -> date:
    """A business date or a DATE column's value as a date.

    Dates pass through, datetimes lose their time, text is ISO: ``YYYY-MM-DD`` or a
    timestamp (SQLite returns DATE columns as text on raw selects).
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text).date()
