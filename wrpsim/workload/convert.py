"""Parsing a columnar trace file's raw columns into the canonical frame (`convert`).

Used by the columnar loader kinds (`wrpsim.workload.loaders`: azure, mooncake, generic) when a
trace is parsed, i.e. on a trace-cache miss; it needs pandas (vectorised number and timestamp
parsing), so it is imported only then. Contract of the result: see `wrpsim.workload.loaders`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, TraceError, choice, closest, warn
from wrpsim.workload.columns import TRACE_COLUMNS, canonical_columns
from wrpsim.workload.lengths import MAX_TOKENS
from wrpsim.workload.loaders import TIME_UNITS, column_mapping
from wrpsim.workload.outcomes import in_unit
from wrpsim.workload.prefix import set_block_tokens
from wrpsim.workload.readers import RawTable, other_delimiter
from wrpsim.workload.validate import FLOAT_COLUMNS, REQUIRED, check_rows, sort_by_arrival


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
    """Token counts of column `src` as int64, each an integer in [1, `MAX_TOKENS`]."""
    v = _numbers(raw, src, dst)
    frac = np.flatnonzero(v != np.floor(v)) if v.dtype.kind == "f" else ()
    if len(frac):
        i = int(frac[0])
        raise _fail(raw, i, src, dst, f"not an integer: {_show(raw.columns[src].iloc[i])}")
    bad = np.flatnonzero((v < 1) | (v > MAX_TOKENS))
    if bad.size:
        i = int(bad[0])
        what = (f"token count must be >= 1, got {_show(v[i])}" if v[i] < 1 else
                f"token count too large: {_show(raw.columns[src].iloc[i])}; at most {MAX_TOKENS}")
        raise _fail(raw, i, src, dst, what)
    return v.astype(np.int64)


def _arrivals(raw: RawTable, src: str, unit: str, fmt: str | None) -> np.ndarray:
    """Seconds since the earliest timestamp, float64, in file order. A column the file stores
    as timestamps (Parquet) is read as such whatever `unit` says; times with a zone are
    compared in UTC."""
    s = raw.columns[src]
    if unit == "datetime" or pd.api.types.is_datetime64_any_dtype(s.dtype):
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            t = s
        else:
            # utc: a zone-qualified time (…Z, +02:00) is moved to UTC, a plain one read as UTC
            try:
                t = pd.to_datetime(s.astype(object), format=fmt or "ISO8601", errors="coerce",
                                   utc=True)
            except ValueError as e:  # a format pandas cannot compile ('%Q': a bad directive)
                raise ConfigError(f"time_format: {e}") from None
        if getattr(t.dtype, "tz", None) is not None:
            t = t.dt.tz_convert("UTC").dt.tz_localize(None)
        bad = np.flatnonzero(t.isna().to_numpy())
        if bad.size:
            i = int(bad[0])
            raise _fail(raw, i, src, "arrival_s",
                        f"cannot parse timestamp {_show(s.iloc[i])} (format {fmt or 'ISO8601'})")
        ns = t.astype("datetime64[ns]").to_numpy().astype(np.int64)
        return (ns - ns.min()) / 1e9
    try:
        v = _numbers(raw, src, "arrival_s")
    except TraceError as e:  # a date and time where a number was expected: say which unit
        first = next((x for x in s if isinstance(x, str) and x.strip()), None)
        if first is None or pd.isna(pd.to_datetime(first, errors="coerce", utc=True,
                                                   format="ISO8601")):
            raise
        raise TraceError(f"{e} (a date and time: set ++workload.source.time_unit=datetime, "
                         f"with ++workload.source.time_format=... if it is not ISO 8601)"
                         ) from None
    _epoch_unit(raw, src, v, unit)
    return (v - v.min()) / TIME_UNITS[unit]


#: units a Unix time may be written in, by how many of them make a second
_EPOCH_UNITS = (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9))


def _epoch_unit(raw: RawTable, src: str, v: np.ndarray, unit: str) -> None:
    """`TraceError` for arrival numbers that, read in `unit`, put the first request after the
    year 5,000 — a Unix time of a finer unit (1.7e12: milliseconds since 1970), which read as
    seconds made ten minutes of trace a week of simulation — naming the unit they fit (the
    one that puts them between 2001 and 5138)."""
    if not v.size:
        return
    low = float(np.min(v))
    if low / TIME_UNITS[unit] <= 1e11:  # (a Unix time in seconds, or a relative one)
        return
    fits = next((name for name, k in _EPOCH_UNITS if 1e9 <= low / k <= 1e11), None)
    i = int(np.argmin(v))
    guess = (f": it reads as a Unix time in {fits} (set ++workload.source.time_unit={fits})"
             if fits in TIME_UNITS else
             f": it reads as a Unix time in {fits}: convert the column to s, ms or us" if fits
             else "")
    raise TraceError(f"{raw.path}: {raw.where(i)}: field {src} (arrival_s): {_show(v[i])} "
                     f"read as {unit} would be {low / TIME_UNITS[unit] / 3.15576e7:,.0f} years "
                     f"after 1970{guess}")


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


def _json_cells(raw: RawTable, src: str, dst: str, want: str) -> list:
    """The values of column `src`; a text cell (CSV) is parsed as JSON, a blank one is None."""
    vals = raw.columns[src].tolist()
    for i, v in enumerate(vals):
        if isinstance(v, str):
            if not v.strip():
                vals[i] = None
                continue
            try:
                vals[i] = json.loads(v)
            except json.JSONDecodeError:
                raise _fail(raw, i, src, dst, f"expected {want} (JSON), got {v!r}") from None
    return vals


def _hash_lists(raw: RawTable, src: str) -> list:
    """`hash_ids` values: a list of integers or None per row."""
    want = "a list of signed 64-bit integers, e.g. [1, 2]"
    vals = _json_cells(raw, src, "hash_ids", want)
    for i, h in enumerate(vals):
        ok = h is None or (isinstance(h, list) and all(
            isinstance(x, int) and not isinstance(x, bool) and -2**63 <= x < 2**63
            for x in h))
        if not ok:
            raise _fail(raw, i, src, "hash_ids", f"expected {want}, got {h!r}")
    return vals


def _outcome_maps(raw: RawTable, src: str) -> list:
    """`outcomes` values: {model name: score in [0, 1]} or None per row."""
    want = 'an object {model name: score in [0, 1]}, e.g. {"llama3.1-70b": 1.0}'
    vals = _json_cells(raw, src, "outcomes", want)
    for i, o in enumerate(vals):
        ok = o is None or (isinstance(o, dict) and all(
            isinstance(k, str) and in_unit(x) for k, x in o.items()))
        if not ok:
            raise _fail(raw, i, src, "outcomes", f"expected {want}, got {o!r}")
    return [None if o is None else {k: float(x) for k, x in o.items()} for o in vals]


def _whole(raw: RawTable, src: str, dst: str, v: np.ndarray) -> np.ndarray:
    """`v` (float64, NaN = blank) unchanged; `TraceError` for a fractional value."""
    bad = np.flatnonzero(~np.isnan(v) & (v != np.floor(v)))
    if bad.size:
        i = int(bad[0])
        orig = _show(raw.columns[src].iloc[i])
        raise _fail(raw, i, src, dst, f"must be a whole number, got {orig}")
    return v


#: file column names that usually hold a request's id (lower case, '-' / ' ' as '_'): not read
#: unless mapped to `trace_request_id`, which a warning says (`_warn_near_misses`)
ID_NAMES = ("id", "req_id", "requestid", "request_uuid", "uuid", "rid", "trace_id",
            "request_key", "record_id")


def _warn_near_misses(raw: RawTable, cols: dict, off=()) -> None:
    """A warning for each file column not read whose name nearly spells a trace column that is
    not read either (`sesion_id`: the run went on without sessions, without a word), or names
    a request id (`id`, `req_id`, ...) while the trace reads none; `off`: the trace columns the
    mapping turns off (`columns: {name: null}`), which no warning offers back."""
    free = [c for c in TRACE_COLUMNS if c not in cols and c not in off]
    for col in raw.columns:
        if col in cols.values():
            continue
        near = closest(str(col), free)
        key = str(col).strip().lower().replace("-", "_").replace(" ", "_")
        if (near is None or near == col) and "trace_request_id" in free and key in ID_NAMES:
            near = "trace_request_id"
        if near is not None and near != col:
            warn(f"{raw.path}: column {col!r} is not read (did you mean the trace column "
                 f"{near!r}? map it with ++workload.source.columns.{near}={col})")


def convert(raw: RawTable, columns: Mapping[str, str] | None = None, time_unit: str = "s",
            time_format: str | None = None, hash_block_tokens: int | None = None,
            kind: str = "generic") -> pd.DataFrame:
    """Map a `RawTable` to the canonical frame.

    `columns` maps canonical names to the file's column names (required ones default to their
    own name); `time_unit` is the unit of the arrival column: s, ms, us, or datetime (text parsed
    with `time_format`, strptime syntax, default ISO 8601; nanosecond precision is kept).
    `hash_block_tokens` (the block size of the file's hash ids) becomes the frame's attribute
    when it has a `hash_ids` column. `kind`: the loader preset whose names `columns` holds
    (a file with wrpsim's own names under another preset is told to say generic).
    """
    choice("time_unit", time_unit, TIME_UNITS)
    cols = column_mapping(columns, tuple(raw.columns))
    if "hash_ids" in cols and hash_block_tokens is None:
        raise TraceError(f"{raw.path}: column {cols['hash_ids']} (hash_ids) found: give "
                         "++workload.source.hash_block_tokens=<tokens per id> (e.g. 512 for "
                         "Mooncake-style ids), or ignore the column with "
                         "++workload.source.columns.hash_ids=null")
    defaulted = {k for k in cols if k not in REQUIRED and k not in (columns or {})}
    missing = [f"{src} (for {dst})" for dst, src in cols.items() if src not in raw.columns]
    if missing:
        key = next(dst for dst, src in cols.items() if src not in raw.columns)
        found = ", ".join(repr(c) for c in raw.columns)
        sep = other_delimiter(raw.columns)
        hint = (f"; the header looks separated by {sep[0]}, and CSV traces are read "
                f"comma-separated" if sep else "")
        if kind != "generic" and all(dst in raw.columns for dst in REQUIRED):  # wrpsim's own
            # names under another preset: a generic file
            raise TraceError(f"{raw.path}: missing column(s) {', '.join(missing)}; its columns "
                             f"are wrpsim's own trace fields ({found}): read it with "
                             f"workload.source.kind=generic (arrivals in seconds; "
                             f"workload.source.time_unit for ms / us)")
        skip = (f", or read none with ++workload.source.columns.{key}=null"
                if key not in REQUIRED else "")  # (an optional one a preset maps: mooncake's ids)
        raise TraceError(f"{raw.path}: missing column(s) {', '.join(missing)}; "
                         f"columns found: {found} (name the file's column: "
                         f"++workload.source.columns.{key}=<column>{skip}){hint}")
    shared = {}
    for dst, src in cols.items():
        shared.setdefault(src, []).append(dst)
    twice = next(((src, dsts) for src, dsts in shared.items() if len(dsts) > 1), None)
    if twice is not None:  # (e.g. prompt_tokens and output_tokens both read 'inp')
        raise TraceError(f"{raw.path}: column {twice[0]} is mapped to {' and '.join(twice[1])}; "
                         f"each trace field reads its own column (workload.source.columns)")
    _warn_near_misses(raw, cols, {k for k, v in (columns or {}).items() if v is None})
    arrival = _arrivals(raw, cols["arrival_s"], time_unit, time_format)
    prompt = _counts(raw, cols["prompt_tokens"], "prompt_tokens")
    output = _counts(raw, cols["output_tokens"], "output_tokens")
    optional: dict[str, Any] = {}
    for dst, src in cols.items():
        try:
            if dst == "hash_ids":
                optional[dst] = _hash_lists(raw, src)
            elif dst == "outcomes":
                optional[dst] = _outcome_maps(raw, src)
            elif dst == "images":
                optional[dst] = _whole(raw, src, dst, _optional_numbers(raw, src, dst))
            elif dst in FLOAT_COLUMNS:
                optional[dst] = _optional_numbers(raw, src, dst)
            elif dst not in REQUIRED:
                optional[dst] = raw.columns[src].to_numpy(dtype=object)
        except TraceError as e:
            if dst not in defaulted:
                raise
            raise TraceError(f"{e} (the column was read because it has the name of a trace "
                             f"column; ignore it with ++workload.source.columns.{dst}=null)"
                             ) from None
    block = hash_block_tokens if "hash_ids" in optional else None
    trace = set_block_tokens(canonical_columns(arrival, prompt, output, optional), block)
    check_rows(trace, str(raw.path), raw.where, ordered=False,  # file lines, before sorting
               columns=cols)
    if "trace_request_id" in trace.columns:
        _warn_repeated_ids(raw, cols["trace_request_id"], trace["trace_request_id"])
    return set_block_tokens(sort_by_arrival(trace.to_frame()), block)


def _warn_repeated_ids(raw: RawTable, src: str, ids) -> None:
    """One warning where rows share a request id: requests.parquet's `trace_request_id`, the
    join back to the file's rows, then names several (the first repeat and the count said)."""
    first: dict = {}
    repeats, example = 0, None
    for i, v in enumerate(ids):
        if v is None:
            continue
        if v in first:
            repeats += 1
            if example is None:
                example = (v, first[v], i)
        else:
            first[v] = i
    if repeats:
        v, a, b = example
        warn(f"{raw.path}: column {src} (trace_request_id): {repeats:,} row(s) repeat an id of "
             f"an earlier row (first {v!r}: {raw.where(a)} and {raw.where(b)}); "
             f"requests.parquet's trace_request_id then joins back to several rows")
