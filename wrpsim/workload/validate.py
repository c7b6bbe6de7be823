"""Building and checking the canonical trace frame.

`canonical_frame` assembles the canonical DataFrame (see `wrpsim.workload.request.TRACE_COLUMNS`)
from column arrays with the exact dtypes the rest of wrpsim relies on: `arrival_s` float64,
token counts int64, optional text columns as `object` holding `str` or None (never pandas' `str`
dtype, never NaN), `hash_ids` as `object` holding `list[int]` or None, optional numbers
(`complexity`, `think_s`) as float64 with NaN for unknown, the `images` count as int64 (0:
none). `validate_trace` checks a frame against that contract, `validate_columns` the same
contract in the column form (`wrpsim.workload.columns`), both with one set of value checks; they
raise `TraceError` naming the first offending row and field.
A frame with hash ids may carry `attrs["hash_block_tokens"]` (B, see `wrpsim.workload.prefix`);
when it does, B must be a positive multiple of 16 and every id list must have ceil(P / B) ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from wrpsim.errors import ConfigError, TraceError
from wrpsim.workload.columns import (
    FLOAT_COLUMNS,
    OPTIONAL,
    REQUIRED,
    TraceColumns,
    as_columns,
    canonical_columns,
)
from wrpsim.workload.prefix import ATTR, check_block_tokens, first_prefix_violation, n_blocks
from wrpsim.workload.request import TRACE_COLUMNS, TRACE_SCHEMA

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FLOAT_COLUMNS", "MODALITIES", "OPTIONAL", "REQUIRED", "TEXT_COLUMNS", "arrow_schema",
           "canonical_frame", "check_rows", "sort_by_arrival", "validate_columns", "validate_trace"]

TEXT_COLUMNS = ("model", "session_id", "category", "semantic_cluster", "tags", "intent", "pii",
                "language", "modality", "trace_request_id")
#: the values of the `modality` column (the modality detector's labels; None: see `Request`)
MODALITIES = ("text", "image", "both")


def canonical_frame(
    arrival_s: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    optional: Mapping[str, Sequence | np.ndarray] | None = None,
) -> pd.DataFrame:
    """Return a canonical frame from column arrays (not sorted or checked; see `validate_trace`).

    `optional` maps optional canonical column names to per-row values; only the columns given
    appear in the result, in `TRACE_COLUMNS` order (`columns.canonical_columns` converts them).
    """
    return canonical_columns(arrival_s, prompt_tokens, output_tokens, optional).to_frame()


def sort_by_arrival(df: pd.DataFrame) -> pd.DataFrame:
    """Stable sort by `arrival_s` (ties keep file order), index reset to 0..n-1."""
    a = df["arrival_s"].to_numpy()
    if len(a) > 1 and not bool(np.all(a[1:] >= a[:-1])):
        df = df.iloc[np.argsort(a, kind="stable")]
    return df.reset_index(drop=True)


def arrow_schema(df: pd.DataFrame) -> pa.Schema:
    """The subset of `TRACE_SCHEMA` for the columns `df` carries (metadata kept)."""
    return pa.schema([TRACE_SCHEMA.field(c) for c in df.columns], metadata=TRACE_SCHEMA.metadata)


def _check_names(columns: Sequence, source: str) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise TraceError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"columns found: {', '.join(map(str, columns))}"
        )
    unknown = [c for c in columns if c not in TRACE_COLUMNS]
    if unknown:
        raise TraceError(
            f"{source}: unknown column(s) {', '.join(map(str, unknown))}; "
            f"valid columns: {', '.join(TRACE_COLUMNS)}"
        )


def validate_trace(df: pd.DataFrame, source: str = "trace") -> pd.DataFrame:
    """Check `df` is in canonical form and return it unchanged; raise `TraceError` otherwise.

    Checks: required columns present, no unknown columns, dtypes as in `TRACE_COLUMNS`, then
    the values (`validate_columns`). `source` names the trace in messages.
    """
    _check_names(df.columns, source)
    for c in df.columns:
        want = TRACE_COLUMNS[c][0]
        if str(df[c].dtype) != want:
            raise TraceError(f"{source}: column {c} has dtype {df[c].dtype}, expected {want}")
    check_rows(as_columns(df), source)
    return df


def validate_columns(trace: TraceColumns, source: str = "trace") -> TraceColumns:
    """Check `trace` is in canonical form and return it unchanged; raise `TraceError` otherwise.

    Checks: required columns present, no unknown columns, numeric columns numpy arrays of the
    dtype in `TRACE_COLUMNS` and the others lists, `arrival_s` finite, >= 0 and sorted
    ascending, token counts >= 1, optional text columns hold `str` or None, `hash_ids` holds
    lists or None (of ceil(P / B) ids when `attrs["hash_block_tokens"]` = B is set), `think_s`
    NaN or finite and >= 0, `semantic_similarity` NaN or in [-1, 1], `images` >= 0,
    `jailbreak` NaN, 0 or 1. `source` names the trace in messages.
    """
    _check_names(trace.columns, source)
    for c in trace.columns:
        want, v = TRACE_COLUMNS[c][0], trace[c]
        got = "object" if isinstance(v, list) else str(getattr(v, "dtype", type(v).__name__))
        if got == "object" and not isinstance(v, list):
            got = "object array (a list is expected)"
        if got != want:
            raise TraceError(f"{source}: column {c} has dtype {got}, expected {want}")
    check_rows(trace, source)
    return trace


def _row(i: int) -> str:
    return f"row {i}"


def check_rows(t: TraceColumns, source: str, where: Callable[[int], str] = _row,
               ordered: bool = True, columns: Mapping[str, str] | None = None) -> None:
    """The value checks of `validate_columns` (the columns' kinds already checked): the first
    bad value raises `TraceError` "`source`: `where(i)`: ..." (default `row i`, 0-based; a
    loader passes the file line of row i, and `columns`, canonical name -> the file's column,
    so that the message names the file's column as "field <column> (<name>)").
    `ordered=False` skips the arrival order check (for rows still in file order)."""
    def fail(i, msg: str) -> TraceError:
        c = msg.split(" ", 1)[0]
        src = (columns or {}).get(c)
        field = f"field {src} ({c}): " if src is not None and src != c else ""
        return TraceError(f"{source}: {where(int(i))}: {field}{msg}")

    a = t["arrival_s"]
    bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
    if bad.size:
        raise fail(bad[0], f"arrival_s must be finite and >= 0, got {a[bad[0]]}")
    dec = np.flatnonzero(a[1:] < a[:-1])
    if ordered and dec.size:
        raise fail(dec[0] + 1, "arrival_s decreases (not sorted)")
    for c in ("prompt_tokens", "output_tokens"):
        v = t[c]
        bad = np.flatnonzero(v < 1)
        if bad.size:
            raise fail(bad[0], f"{c} must be >= 1, got {v[bad[0]]}")
    for c in TEXT_COLUMNS:
        if c in t.columns:
            for i, v in enumerate(t[c]):
                if v is not None and not isinstance(v, str):
                    raise fail(i, f"{c} must be a string or None, got {v!r}")
    if "modality" in t.columns:
        for i, v in enumerate(t["modality"]):
            if v is not None and v not in MODALITIES:
                raise fail(i, f"modality must be one of {', '.join(MODALITIES)} or empty, "
                              f"got {v!r}")
    if "think_s" in t.columns:
        v = t["think_s"]
        bad = np.flatnonzero(np.isinf(v) | (v < 0))
        if bad.size:
            raise fail(bad[0], f"think_s must be NaN or a finite number >= 0, got {v[bad[0]]}")
    if "semantic_similarity" in t.columns:
        v = t["semantic_similarity"]
        bad = np.flatnonzero(np.isinf(v) | (v < -1) | (v > 1))
        if bad.size:
            raise fail(bad[0], f"semantic_similarity must be NaN or a cosine similarity in "
                               f"[-1, 1], got {v[bad[0]]}")
    if "complexity" in t.columns:
        v = t["complexity"]
        bad = np.flatnonzero(np.isinf(v) | (v < 0) | (v > 1))
        if bad.size:
            raise fail(bad[0], f"complexity must be NaN or a task complexity in [0, 1], got "
                               f"{v[bad[0]]}")
    if "images" in t.columns:
        v = t["images"]
        bad = np.flatnonzero(v < 0)
        if bad.size:
            raise fail(bad[0], f"images must be >= 0, got {v[bad[0]]}")
    if "jailbreak" in t.columns:
        v = t["jailbreak"]
        bad = np.flatnonzero(~np.isnan(v) & (v != 0) & (v != 1))
        if bad.size:
            raise fail(bad[0], f"jailbreak must be NaN, 0 or 1, got {v[bad[0]]}")
    if "hash_ids" in t.columns:
        for i, v in enumerate(t["hash_ids"]):
            if v is not None and not isinstance(v, list):
                raise fail(i, f"hash_ids must be a list or None, got {v!r}")
            if v and not all(isinstance(x, Integral) and not isinstance(x, bool) for x in v):
                x = next(x for x in v if not isinstance(x, Integral) or isinstance(x, bool))
                raise fail(i, f"hash_ids must hold integers, got {x!r} in {v!r}")
        if t.attrs.get(ATTR) is not None:
            _check_block_counts(t, source, fail)
        bad = first_prefix_violation(t["hash_ids"])
        if bad is not None:  # an id names a whole prefix: a cache would hit unrelated blocks
            row, x, k, prev, (k0, prev0, row0) = bad

            def at(pos, before):
                return f"position {pos} " + ("(first)" if before is None else f"after id {before}")
            raise fail(row, f"hash_ids break prefix semantics: id {x} at {at(k, prev)}, but "
                            f"{where(row0)} has it at {at(k0, prev0)} (an id names the whole "
                            f"prefix up to its block, so it always sits at the same position "
                            f"after the same id)")


def _check_block_counts(t: TraceColumns, source: str, fail: Callable) -> None:
    try:
        b = check_block_tokens(t.attrs[ATTR], "attrs hash_block_tokens")
    except ConfigError as e:
        raise TraceError(f"{source}: {e}") from None
    for i, (h, p) in enumerate(zip(t["hash_ids"], t["prompt_tokens"].tolist())):
        if h is not None and len(h) != n_blocks(p, b):
            raise fail(i, f"hash_ids has {len(h)} ids but prompt_tokens {p} spans "
                          f"ceil({p} / {b}) = {n_blocks(p, b)} blocks of hash_block_tokens {b}")
