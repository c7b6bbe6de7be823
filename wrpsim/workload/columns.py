"""The canonical trace as plain columns, without pandas: `TraceColumns`.

A run carries its workload from the trace cache to `to_requests` in this form, so a run whose
workload needs no pandas-only step never imports pandas (about a third of a short run's wall
time). It holds the same canonical form as the canonical DataFrame
(`wrpsim.workload.request.TRACE_COLUMNS`): each numeric column (float64 / int64 there) is a
numpy array of that dtype, each `object` column (text, `hash_ids`, `outcomes`) a Python list
of the row values (`str` / `list[int]` / dict, or None), plus `attrs` (`hash_block_tokens`,
`session_on_drop`).

Contract: every column has `len(trace)` values; columns are never modified in place (the
methods return new `TraceColumns`, which may share column objects with the old one; callers do
not mutate the arrays or lists they read). `attrs` is a plain dict, copied by every method;
whoever makes a new trace may set it before handing the trace on (`prefix.set_block_tokens`).
`to_frame` / `from_frame` convert to and from the canonical DataFrame, importing pandas only
there; `as_columns` accepts either form. `columnwise` lets one implementation of a transform
serve both forms (DataFrame in, DataFrame out).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from wrpsim.errors import TraceError
from wrpsim.workload.request import TRACE_COLUMNS

REQUIRED = tuple(c for c, (_, req) in TRACE_COLUMNS.items() if req)
OPTIONAL = tuple(c for c, (_, req) in TRACE_COLUMNS.items() if not req)
#: canonical columns held as numpy arrays (name -> dtype); the others are lists
NUMERIC = {c: dtype for c, (dtype, _) in TRACE_COLUMNS.items() if dtype != "object"}
FLOAT_COLUMNS = tuple(c for c, (dtype, req) in TRACE_COLUMNS.items()
                      if dtype == "float64" and not req)


class TraceColumns:
    """A canonical trace as named columns (module docstring): arrays for numbers, lists else."""

    __slots__ = ("_cols", "_n", "attrs")

    def __init__(self, cols: Mapping[str, np.ndarray | list], attrs: Mapping | None = None):
        """`cols`: column name -> values, all of one length (`TraceError` otherwise); `attrs`
        is copied. Values are kept as given (see `canonical_columns` for converting raw ones)."""
        self._cols = dict(cols)
        lengths = {len(v) for v in self._cols.values()}
        if len(lengths) > 1:
            raise TraceError(f"trace columns of different lengths: "
                             f"{ {k: len(v) for k, v in self._cols.items()} }")
        self._n = lengths.pop() if lengths else 0
        self.attrs = dict(attrs or {})

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, name: str) -> np.ndarray | list:
        """The values of column `name` (KeyError if absent); read-only by contract."""
        return self._cols[name]

    def __repr__(self) -> str:
        return f"TraceColumns({self._n} rows: {', '.join(self._cols)}; attrs {self.attrs})"

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, in their order."""
        return tuple(self._cols)

    def take(self, rows: np.ndarray | Sequence[int] | Sequence[bool]) -> TraceColumns:
        """The rows selected by a boolean mask (of len(self)) or by indices, in that order."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.intp, copy=False)
        pick = idx.tolist()
        return TraceColumns({k: v[idx] if isinstance(v, np.ndarray) else [v[i] for i in pick]
                             for k, v in self._cols.items()}, self.attrs)

    def head(self, n: int) -> TraceColumns:
        """The first `n` rows."""
        return TraceColumns({k: v[:n] for k, v in self._cols.items()}, self.attrs)

    def with_columns(self, cols: Mapping[str, np.ndarray | list]) -> TraceColumns:
        """A copy with `cols` set (a new column is added after the existing ones)."""
        return TraceColumns({**self._cols, **cols}, self.attrs)

    def select(self, names: Sequence[str]) -> TraceColumns:
        """A copy with only the columns `names` that it has, in that order."""
        return TraceColumns({k: self._cols[k] for k in names if k in self._cols}, self.attrs)

    def with_attrs(self, attrs: Mapping) -> TraceColumns:
        """A copy (sharing the columns) whose `attrs` are `attrs`."""
        return TraceColumns(self._cols, attrs)

    def to_frame(self):
        """The canonical DataFrame of these columns (lists become `object` columns; attrs kept)."""
        import pandas as pd

        df = pd.DataFrame({k: pd.Series(v, dtype=object) if isinstance(v, list) else v
                           for k, v in self._cols.items()})
        df.attrs = dict(self.attrs)
        return df

    @classmethod
    def from_frame(cls, df) -> TraceColumns:
        """The columns of a canonical DataFrame: `object` columns as lists, others as arrays."""
        return cls({str(k): df[k].tolist() if df[k].dtype == object else df[k].to_numpy()
                    for k in df.columns}, df.attrs)


def as_columns(trace) -> TraceColumns:
    """`trace` (a `TraceColumns` or a canonical DataFrame) as `TraceColumns`."""
    return trace if isinstance(trace, TraceColumns) else TraceColumns.from_frame(trace)


def columnwise(fn: Callable[..., TraceColumns]) -> Callable:
    """Let a transform written on `TraceColumns` take a DataFrame too, returning a DataFrame
    then (the one implementation serves both forms)."""

    @functools.wraps(fn)
    def wrapper(trace, *args, **kwargs):
        if isinstance(trace, TraceColumns):
            return fn(trace, *args, **kwargs)
        return fn(TraceColumns.from_frame(trace), *args, **kwargs).to_frame()

    return wrapper


def present(values: Sequence | np.ndarray) -> np.ndarray:
    """Boolean mask of the values that are neither None nor a float NaN."""
    return np.fromiter((v is not None and not (isinstance(v, float) and v != v) for v in values),
                       dtype=bool, count=len(values))


def _text(values: Sequence | np.ndarray) -> list:
    """`str` or None per value (NaN, None and a blank string — an empty CSV cell — become None:
    a missing value, e.g. a request that names no model; other values str())."""
    out = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
           for v in values]
    return [None if v is not None and not v.strip() else v for v in out]


def _ids(values: Sequence | np.ndarray) -> list:
    """`_text`, but a whole number read as a float (an id column with a blank cell, which a
    JSON or Parquet reader turns into floats) is written as the integer it was: 1000, not
    1000.0, so the ids join back to the file's."""
    return _text([int(v) if isinstance(v, (float, np.floating)) and np.isfinite(v)
                  and float(v).is_integer() else v for v in values])


def _floats(values: Sequence | np.ndarray) -> np.ndarray:
    """float64 array (None becomes NaN)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _hashes(values: Sequence | np.ndarray) -> list:
    """`list[int]` or None per value (lists are kept as given, arrays become lists)."""
    return [v if (v is None or isinstance(v, list)) else np.asarray(v).tolist() for v in values]


def _maps(values: Sequence | np.ndarray) -> list:
    """`dict` or None per value (an Arrow map read back as (key, value) pairs becomes a dict)."""
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else dict(v)
            for v in values]


def _ints(values: Sequence | np.ndarray) -> np.ndarray:
    """int64 array of counts (None and NaN become 0); a fractional count is a `TraceError`."""
    out = np.array([0.0 if v is None or (isinstance(v, float) and np.isnan(v)) else v
                    for v in values], dtype=np.float64)
    bad = np.flatnonzero(out != np.round(out))
    if bad.size:
        raise TraceError(f"row {bad[0]}: images must be a whole number, got {out[bad[0]]}")
    return out.astype(np.int64)


def canonical_columns(
    arrival_s: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    optional: Mapping[str, Sequence | np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> TraceColumns:
    """Canonical columns from raw column values (not sorted or checked; see `validate_columns`).

    `optional` maps optional canonical column names to per-row values; only the columns given
    appear in the result, in `TRACE_COLUMNS` order. Text values become `str` or None, optional
    numbers float64 with NaN for None, `hash_ids` lists, `outcomes` dicts, `images` int64 counts.
    """
    cols: dict[str, np.ndarray | list] = {
        "arrival_s": np.asarray(arrival_s, dtype=np.float64),
        "prompt_tokens": np.asarray(prompt_tokens, dtype=np.int64),
        "output_tokens": np.asarray(output_tokens, dtype=np.int64),
    }
    optional = optional or {}
    for name in OPTIONAL:
        if name in optional:
            conv = (_hashes if name == "hash_ids" else _maps if name == "outcomes"
                    else _floats if name in FLOAT_COLUMNS else _ints if name == "images"
                    else _ids if name == "trace_request_id" else _text)
            cols[name] = conv(optional[name])
    return TraceColumns(cols, attrs)
