"""Trace loaders: Azure LLM inference CSV, Mooncake JSONL, a generic column-mapped loader, and the
record loaders `ragpulse` (`wrpsim.workload.ragpulse`) and `agent_rounds` (`.agent`).

The three columnar kinds are one conversion (`convert`) from a `RawTable` with a column mapping
and a timestamp unit; `azure` and `mooncake` are presets of it. Conversion is vectorised. A
trace with `hash_ids` gets `df.attrs["hash_block_tokens"]`: the file's block size, 512 for
Mooncake, `source.hash_block_tokens` (required) for a generic file that maps `hash_ids`. Every
bad value raises `TraceError` naming the file, the line (header = line 1), the field and the
value. Contract of the result: canonical form (`wrpsim.workload.request`),
`arrival_s = t - min(t)` in seconds, rows sorted by arrival with a *stable* sort (a trace whose
timestamps go backwards is reordered, not rejected; ties keep file order), token counts >= 1
(0 or negative is an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, TraceError, unknown_choice
from wrpsim.workload import agent, ragpulse
from wrpsim.workload.cache import cached
from wrpsim.workload.prefix import check_block_tokens, set_block_tokens
from wrpsim.workload.readers import FORMATS, RawTable, read_table, require_file
from wrpsim.workload.request import TRACE_COLUMNS
from wrpsim.workload.validate import FLOAT_COLUMNS, REQUIRED, canonical_frame, sort_by_arrival

COLUMN_KINDS = ("azure", "generic", "mooncake")
#: Record loaders: kind -> (options, parameter resolver, loader).
RECORD_KINDS = {
    "agent_rounds": (agent.OPTIONS, agent.agent_params, agent.load_agent_rounds),
    "ragpulse": (ragpulse.OPTIONS, ragpulse.ragpulse_params, ragpulse.load_ragpulse),
}
KINDS = tuple(sorted((*COLUMN_KINDS, *RECORD_KINDS)))
#: Kinds whose loader generates hash ids at the workload's `hash_block_tokens`.
GENERATING_KINDS = tuple(sorted(RECORD_KINDS))
TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "datetime": None}
LOADER_OPTIONS = ("cache", "columns", "format", "hash_block_tokens", "time_format", "time_unit")

#: Loader presets: the defaults each `kind` passes to `convert`.
PRESETS: dict[str, dict[str, Any]] = {
    "azure": {
        "format": "csv",
        "columns": {"arrival_s": "TIMESTAMP", "prompt_tokens": "ContextTokens",
                    "output_tokens": "GeneratedTokens"},
        "time_unit": "datetime",
        "time_format": "%Y-%m-%d %H:%M:%S.%f",
    },
    "mooncake": {
        "format": "jsonl",
        "columns": {"arrival_s": "timestamp", "prompt_tokens": "input_length",
                    "output_tokens": "output_length", "hash_ids": "hash_ids"},
        "time_unit": "ms",
        "hash_block_tokens": 512,
    },
    "generic": {"format": None, "columns": {}, "time_unit": "s"},
}


def source_options(kind: str) -> tuple[str, ...]:
    """The `source:` options (besides kind and path) a trace kind accepts."""
    if kind in RECORD_KINDS:
        return RECORD_KINDS[kind][0]
    return LOADER_OPTIONS


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


def _mapping(columns: Mapping[str, str] | None) -> dict[str, str]:
    columns = dict(columns or {})
    for key in columns:
        if key not in TRACE_COLUMNS:
            raise unknown_choice(f"columns.{key}", key, TRACE_COLUMNS)
    for key in REQUIRED:
        columns.setdefault(key, key)
    return {k: str(columns[k]) for k in TRACE_COLUMNS if k in columns}


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
    cols = _mapping(columns)
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


def loader_params(kind: str, **opts: Any) -> dict[str, Any]:
    """Resolve a columnar `kind` and options to the full parameter set (preset defaults + opts)."""
    if kind not in PRESETS:
        raise unknown_choice("kind", kind, KINDS)
    for key in opts:
        if key not in LOADER_OPTIONS:
            raise unknown_choice(f"source.{key}", key, LOADER_OPTIONS)
    params = {k: v for k, v in PRESETS[kind].items()}
    params.update({k: v for k, v in opts.items() if k != "cache" and v is not None})
    if params.get("format") is not None and params["format"] not in FORMATS:
        raise unknown_choice("format", params["format"], FORMATS)
    if params["time_unit"] not in TIME_UNITS:
        raise unknown_choice("time_unit", params["time_unit"], TIME_UNITS)
    params["columns"] = _mapping(params.get("columns"))
    if params.get("hash_block_tokens") is not None:
        params["hash_block_tokens"] = check_block_tokens(params["hash_block_tokens"],
                                                         "source.hash_block_tokens")
    elif "hash_ids" in params["columns"]:
        raise ConfigError("source.hash_block_tokens: give the block size (tokens per id) of the "
                          "file's hash_ids, e.g. 512 for Mooncake-style ids")
    return params


def load_trace(path: str | Path, kind: str = "generic", **opts: Any) -> pd.DataFrame:
    """Load a trace file into the canonical frame (cached as Parquet unless `cache=False`).

    `kind`: azure (Azure LLM inference CSV), mooncake (Mooncake JSONL), generic, ragpulse
    (`ragpulse.load_ragpulse`) or agent_rounds (`agent.load_agent_rounds`). Columnar options:
    `format` (csv|jsonl|parquet; default from the suffix), `columns` (canonical name -> file
    column), `time_unit` (s|ms|us|datetime), `time_format` (strptime format for datetime),
    `hash_block_tokens` (block size of the file's hash ids); record kinds take the options of
    their module. All take `cache` (bool, default True). Raises `TraceError` for any bad file
    content and `ConfigError` for unknown kinds or options.
    """
    path = Path(path)
    use_cache = bool(opts.get("cache", True))
    if kind in RECORD_KINDS:
        allowed, resolve, load = RECORD_KINDS[kind]
        for key in opts:
            if key not in allowed:
                raise unknown_choice(f"source.{key}", key, allowed)
        params = resolve(**{k: v for k, v in opts.items() if k != "cache"})
    else:
        params = loader_params(kind, **opts)
    require_file(path)

    def build() -> pd.DataFrame:
        if kind in RECORD_KINDS:
            return load(path, params)
        raw = read_table(path, params.get("format"))
        return convert(raw, params["columns"], params["time_unit"], params.get("time_format"),
                       params.get("hash_block_tokens"))

    if not use_cache:
        return build()
    try:
        return cached(path, {"kind": kind, **params}, build)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read trace: {e}") from None
