"""Building and checking the canonical trace frame.

`canonical_frame` assembles the canonical DataFrame (see `wrpsim.workload.request.TRACE_COLUMNS`)
from column arrays with the exact dtypes the rest of wrpsim relies on: `arrival_s` float64,
token counts int64, optional text columns as `object` holding `str` or None (never pandas' `str`
dtype, never NaN), `hash_ids` as `object` holding `list[int]` or None, optional numbers
(`complexity`, `think_s`) as float64 with NaN for unknown, the `images` count as int64 (0:
none). `validate_trace` checks a frame against that contract and raises `TraceError` naming
the first offending row and field.
A frame with hash ids may carry `attrs["hash_block_tokens"]` (B, see `wrpsim.workload.prefix`);
when it does, B must be a positive multiple of 16 and every id list must have ceil(P / B) ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from wrpsim.errors import ConfigError, TraceError
from wrpsim.workload.prefix import ATTR, check_block_tokens, n_blocks
from wrpsim.workload.request import TRACE_COLUMNS, TRACE_SCHEMA

REQUIRED = tuple(c for c, (_, req) in TRACE_COLUMNS.items() if req)
OPTIONAL = tuple(c for c, (_, req) in TRACE_COLUMNS.items() if not req)
TEXT_COLUMNS = ("model", "session_id", "category", "semantic_cluster", "tags", "intent", "pii",
                "language", "modality")
FLOAT_COLUMNS = tuple(c for c, (dtype, req) in TRACE_COLUMNS.items()
                      if dtype == "float64" and not req)


def _text(values: Sequence | np.ndarray) -> pd.Series:
    """Object series of `str` or None (NaN and None become None, other values str())."""
    out = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
    return pd.Series(out, dtype=object)


def _floats(values: Sequence | np.ndarray) -> np.ndarray:
    """float64 array (None becomes NaN)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _hashes(values: Sequence | np.ndarray) -> pd.Series:
    """Object series of `list[int]` or None (lists are kept as given, arrays become lists)."""
    out = [v if (v is None or isinstance(v, list)) else np.asarray(v).tolist() for v in values]
    return pd.Series(out, dtype=object)


def _ints(values: Sequence | np.ndarray) -> np.ndarray:
    """int64 array of counts (None and NaN become 0); a fractional count is a `TraceError`."""
    out = np.array([0.0 if v is None or (isinstance(v, float) and np.isnan(v)) else v
                    for v in values], dtype=np.float64)
    bad = np.flatnonzero(out != np.round(out))
    if bad.size:
        raise TraceError(f"row {bad[0]}: images must be a whole number, got {out[bad[0]]}")
    return out.astype(np.int64)


def canonical_frame(
    arrival_s: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    optional: Mapping[str, Sequence | np.ndarray] | None = None,
) -> pd.DataFrame:
    """Return a canonical frame from column arrays (not sorted or checked; see `validate_trace`).

    `optional` maps optional canonical column names to per-row values; only the columns given
    appear in the result, in `TRACE_COLUMNS` order.
    """
    cols: dict[str, pd.Series | np.ndarray] = {
        "arrival_s": np.asarray(arrival_s, dtype=np.float64),
        "prompt_tokens": np.asarray(prompt_tokens, dtype=np.int64),
        "output_tokens": np.asarray(output_tokens, dtype=np.int64),
    }
    optional = optional or {}
    for name in OPTIONAL:
        if name in optional:
            conv = (_hashes if name == "hash_ids" else _floats if name in FLOAT_COLUMNS
                    else _ints if name == "images" else _text)
            cols[name] = conv(optional[name])
    return pd.DataFrame(cols)


def sort_by_arrival(df: pd.DataFrame) -> pd.DataFrame:
    """Stable sort by `arrival_s` (ties keep file order), index reset to 0..n-1."""
    a = df["arrival_s"].to_numpy()
    if len(a) > 1 and not bool(np.all(a[1:] >= a[:-1])):
        df = df.iloc[np.argsort(a, kind="stable")]
    return df.reset_index(drop=True)


def arrow_schema(df: pd.DataFrame) -> pa.Schema:
    """The subset of `TRACE_SCHEMA` for the columns `df` carries (metadata kept)."""
    return pa.schema([TRACE_SCHEMA.field(c) for c in df.columns], metadata=TRACE_SCHEMA.metadata)


def validate_trace(df: pd.DataFrame, source: str = "trace") -> pd.DataFrame:
    """Check `df` is in canonical form and return it unchanged; raise `TraceError` otherwise.

    Checks: required columns present, no unknown columns, dtypes as in `TRACE_COLUMNS`,
    `arrival_s` finite, >= 0 and sorted ascending, token counts >= 1, optional text columns hold
    `str` or None, `hash_ids` holds lists or None (of ceil(P / B) ids when the frame's
    `attrs["hash_block_tokens"]` = B is set), `think_s` NaN or finite and >= 0, `images` >= 0.
    `source` names the trace in messages.
    """
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise TraceError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"columns found: {', '.join(map(str, df.columns))}"
        )
    unknown = [c for c in df.columns if c not in TRACE_COLUMNS]
    if unknown:
        raise TraceError(
            f"{source}: unknown column(s) {', '.join(map(str, unknown))}; "
            f"valid columns: {', '.join(TRACE_COLUMNS)}"
        )
    for c in df.columns:
        want = TRACE_COLUMNS[c][0]
        if str(df[c].dtype) != want:
            raise TraceError(f"{source}: column {c} has dtype {df[c].dtype}, expected {want}")
    a = df["arrival_s"].to_numpy()
    bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
    if bad.size:
        i = bad[0]
        raise TraceError(f"{source}: row {i}: arrival_s must be finite and >= 0, got {a[i]}")
    dec = np.flatnonzero(a[1:] < a[:-1])
    if dec.size:
        raise TraceError(f"{source}: row {dec[0] + 1}: arrival_s decreases (not sorted)")
    for c in ("prompt_tokens", "output_tokens"):
        v = df[c].to_numpy()
        bad = np.flatnonzero(v < 1)
        if bad.size:
            raise TraceError(f"{source}: row {bad[0]}: {c} must be >= 1, got {v[bad[0]]}")
    for c in TEXT_COLUMNS:
        if c in df.columns:
            for i, v in enumerate(df[c].tolist()):
                if v is not None and not isinstance(v, str):
                    raise TraceError(f"{source}: row {i}: {c} must be a string or None, got {v!r}")
    if "think_s" in df.columns:
        v = df["think_s"].to_numpy()
        bad = np.flatnonzero(np.isinf(v) | (v < 0))
        if bad.size:
            raise TraceError(f"{source}: row {bad[0]}: think_s must be NaN or a finite number "
                             f">= 0, got {v[bad[0]]}")
    if "semantic_similarity" in df.columns:
        v = df["semantic_similarity"].to_numpy()
        bad = np.flatnonzero(np.isinf(v) | (v < -1) | (v > 1))
        if bad.size:
            raise TraceError(f"{source}: row {bad[0]}: semantic_similarity must be NaN or a "
                             f"cosine similarity in [-1, 1], got {v[bad[0]]}")
    if "images" in df.columns:
        v = df["images"].to_numpy()
        bad = np.flatnonzero(v < 0)
        if bad.size:
            raise TraceError(f"{source}: row {bad[0]}: images must be >= 0, got {v[bad[0]]}")
    if "jailbreak" in df.columns:
        v = df["jailbreak"].to_numpy()
        bad = np.flatnonzero(~np.isnan(v) & (v != 0) & (v != 1))
        if bad.size:
            raise TraceError(f"{source}: row {bad[0]}: jailbreak must be NaN, 0 or 1, got "
                             f"{v[bad[0]]}")
    if "hash_ids" in df.columns:
        for i, v in enumerate(df["hash_ids"].tolist()):
            if v is not None and not isinstance(v, list):
                raise TraceError(f"{source}: row {i}: hash_ids must be a list or None, got {v!r}")
        if df.attrs.get(ATTR) is not None:
            _check_block_counts(df, source)
    return df


def _check_block_counts(df: pd.DataFrame, source: str) -> None:
    try:
        b = check_block_tokens(df.attrs[ATTR], "attrs hash_block_tokens")
    except ConfigError as e:
        raise TraceError(f"{source}: {e}") from None
    for i, (h, p) in enumerate(zip(df["hash_ids"].tolist(), df["prompt_tokens"].tolist())):
        if h is not None and len(h) != n_blocks(p, b):
            raise TraceError(f"{source}: row {i}: hash_ids has {len(h)} ids but prompt_tokens "
                             f"{p} spans ceil({p} / {b}) = {n_blocks(p, b)} blocks of "
                             f"hash_block_tokens {b}")
