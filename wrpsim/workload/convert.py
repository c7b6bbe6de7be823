"""Parsing a columnar trace file's raw columns into the canonical frame (`convert`).

Used by the columnar loader kinds (`wrpsim.workload.loaders`: azure, mooncake, generic) when a
trace is parsed, i.e. on a trace-cache miss; it needs pandas (vectorised number and timestamp
parsing), so it is imported only then. Contract of the result: see `wrpsim.workload.loaders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import TraceError, unknown_choice
from wrpsim.workload.loaders import TIME_UNITS, column_mapping
from wrpsim.workload.prefix import set_block_tokens
from wrpsim.workload.readers import RawTable
from wrpsim.workload.validate import FLOAT_COLUMNS, REQUIRED, canonical_frame, sort_by_arrival


def _fail(raw: RawTable, i: int, src: str, dst: str, what: str) -> TraceError:
    shape = raw.field_count_problem(i)
    detail = shape if shape else f"field {src} ({dst}): {what}"
    return TraceError(f"{raw.path}: {raw.where(i)}: {detail}")


def _show(v: Any) -> str:
    return repr(v.item() if isinstance(v, np.generic) else v)


def _numbers(raw: RawTable, src: str, dst: str) -> np.ndarray:
    """Numeric values of column `src` (int64 if all integral, else float64); error on bad ones."""
    s = raw.columns[src]
    if pd.api.types.is_bool_dtype(s.dtype):
        raise _fail(raw, 0, src, dst, f"not a number: {_show(s.iloc[0])}")
    if not pd.api.types.is_numeric_dtype(s.dtype):
        if s.dtype == object:
            bools = s.map(lambda v: isinstance(v, bool)).to_numpy(bool)
            if bools.any():
                i = int(np.flatnonzero(bools)[0])
                raise _fail(raw, i, src, dst, f"not a number: {_show(s.iloc[i])}")
        s = pd.to_numeric(s, errors="coerce")
    v = s.to_numpy(dtype=np.float64 if s.isna().any() or s.dtype.kind == "f" else np.int64)
    if v.dtype.kind == "f":
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            orig = raw.columns[src].iloc[i]
            blank = (isinstance(orig, str) and not orig.strip()) or (
                np.ndim(orig) == 0 and bool(pd.isna(orig)))
            what = "missing value" if blank else f"not a number: {_show(orig)}"
            raise _fail(raw, i, src, dst, what)
        if np.all(v == np.floor(v)) and np.all(np.abs(v) < 2**53):
            v = v.astype(np.int64)
    return v


def _counts(raw: RawTable, src: str, dst: str) -> np.ndarray:
    """Token counts of column `src` as int64, each an integer >= 1."""
    v = _numbers(raw, src, dst)
    if v.dtype.kind == "f":
        i = int(np.flatnonzero(v != np.floor(v))[0])
        raise _fail(raw, i, src, dst, f"not an integer: {_show(raw.columns[src].iloc[i])}")
    bad = np.flatnonzero(v < 1)
    if bad.size:
        i = int(bad[0])
        raise _fail(raw, i, src, dst, f"token count must be >= 1, got {v[i]}")
    return v


def _arrivals(raw: RawTable, src: str, unit: str, fmt: str | None) -> np.ndarray:
    """Seconds since the earliest timestamp, float64, in file order."""
    if unit == "datetime":
        s = raw.columns[src]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            t = s
        else:
            t = pd.to_datetime(s.astype(object), format=fmt or "ISO8601", errors="coerce")
        bad = np.flatnonzero(t.isna().to_numpy())
        if bad.size:
            i = int(bad[0])
            raise _fail(raw, i, src, "arrival_s",
                        f"cannot parse timestamp {_show(s.iloc[i])} (format {fmt or 'ISO8601'})")
        ns = t.astype("datetime64[ns]").to_numpy().astype(np.int64)
        return (ns - ns.min()) / 1e9
    v = _numbers(raw, src, "arrival_s")
    return (v - v.min()) / TIME_UNITS[unit]


def _optional_numbers(raw: RawTable, src: str, dst: str) -> np.ndarray:
    """float64 values of an optional numeric column (`think_s`, `complexity`); blank = NaN."""
    s = raw.columns[src]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64)
    blank = s.map(lambda v: v is None or (isinstance(v, str) and not v.strip()) or (
        isinstance(v, float) and np.isnan(v))).to_numpy(bool)
    v = pd.to_numeric(s.where(~blank), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(v) & ~blank | s.map(lambda x: isinstance(x, bool)).to_numpy(
        bool))
    if bad.size:
        i = int(bad[0])
        raise _fail(raw, i, src, dst, f"not a number: {_show(s.iloc[i])}")
    return v


def _hash_lists(raw: RawTable, src: str) -> list:
    vals = raw.columns[src].tolist()
    for i, h in enumerate(vals):
        ok = h is None or (isinstance(h, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in h))
        if not ok:
            raise _fail(raw, i, src, "hash_ids", f"expected a list of integers, got {h!r}")
    return vals


def convert(raw: RawTable, columns: Mapping[str, str] | None = None, time_unit: str = "s",
            time_format: str | None = None, hash_block_tokens: int | None = None) -> pd.DataFrame:
    """Map a `RawTable` to the canonical frame.

    `columns` maps canonical names to the file's column names (required ones default to their
    own name); `time_unit` is the unit of the arrival column: s, ms, us, or datetime (text parsed
    with `time_format`, strptime syntax, default ISO 8601; nanosecond precision is kept).
    `hash_block_tokens` (the block size of the file's hash ids) becomes the frame's attribute
    when it has a `hash_ids` column.
    """
    if time_unit not in TIME_UNITS:
        raise unknown_choice("time_unit", time_unit, TIME_UNITS)
    cols = column_mapping(columns)
    missing = [f"{src} (for {dst})" for dst, src in cols.items() if src not in raw.columns]
    if missing:
        raise TraceError(f"{raw.path}: missing column(s) {', '.join(missing)}; "
                         f"columns found: {', '.join(raw.columns)}")
    arrival = _arrivals(raw, cols["arrival_s"], time_unit, time_format)
    prompt = _counts(raw, cols["prompt_tokens"], "prompt_tokens")
    output = _counts(raw, cols["output_tokens"], "output_tokens")
    optional: dict[str, Any] = {}
    for dst, src in cols.items():
        if dst == "hash_ids":
            optional[dst] = _hash_lists(raw, src)
        elif dst in FLOAT_COLUMNS or dst == "images":
            optional[dst] = _optional_numbers(raw, src, dst)
        elif dst not in REQUIRED:
            optional[dst] = raw.columns[src].to_numpy(dtype=object)
    df = sort_by_arrival(canonical_frame(arrival, prompt, output, optional))
    return set_block_tokens(df, hash_block_tokens if "hash_ids" in df.columns else None)
