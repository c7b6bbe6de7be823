"""Parquet cache of parsed traces.

Parsing a text trace is done once: the canonical frame is stored as Parquet (schema: the
columns' subset of `TRACE_SCHEMA`) under `$WRPSIM_CACHE` (default `~/.cache/wrpsim/traces`), in
a file named by a hash of the source's absolute path, size, modification and status-change times
(ns), inode and the loader parameters (the status-change time catches a rewrite that restored
the size and modification time). `WRPSIM_CACHE=off` disables the cache. Files are written
atomically (a temporary file in the same directory, then `os.replace`), so concurrent runs of a
sweep never read a partial file; a cache file that cannot be read back as a canonical trace is
ignored and rebuilt; a cache directory that cannot be written is ignored. The cache is
transparent: a hit returns the trace (as `TraceColumns`, read without pandas) equal in values
and dtypes to the one a fresh parse gives, with the same `attrs`: the frame's
`hash_block_tokens` is stored in the Parquet schema metadata (key `wrpsim.hash_block_tokens`).
The canonical schema's version (`TRACE_SCHEMA` metadata `wrpsim.version`; 2 since the optional
`think_s` column, 3 since `trace_request_id`) is part of the file name's hash and is checked on
reading, so a cache written under an older schema is never read (it is rebuilt under a new
name). The folder keeps the
`KEEP` most recently used trace files (`wrpsim.io.prune` after each write; a hit marks its file
as used): every edit of a trace or new loader parameter makes a new file.
"""

from __future__ import annotations

import hashlib
import json
import warnings as _warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from wrpsim.errors import WrpsimWarning, warn
from wrpsim.workload.cachedir import cache_dir
from wrpsim.workload.columns import REQUIRED, TraceColumns, canonical_columns
from wrpsim.workload.prefix import ATTR, set_block_tokens
from wrpsim.workload.request import TRACE_SCHEMA
from wrpsim.workload.validate import arrow_schema

if TYPE_CHECKING:
    import pandas as pd

CACHE_FORMAT = 5  # 3: optional columns of canonical name read by default, outcomes; 4: blank
# text cells are missing values, zoned times in UTC; 5: repeated request ids warned (a trace
# cached before would replay without the warning)
_ATTR_KEY = f"wrpsim.{ATTR}".encode()
_WARN_KEY = b"wrpsim.warnings"  # the parse's warnings, a JSON list of messages
#: parsed traces kept (the least recently used beyond this are removed after a write)
KEEP = 128


def cache_file(source: Path, params: Mapping) -> Path | None:
    """Cache file for `source` parsed with loader `params` (JSON-serialisable), or None if off."""
    d = cache_dir()
    if d is None:
        return None
    st = source.stat()
    # ctime too: a copy that restores the mtime (`cp -p`, `rsync -t`) cannot restore it, so
    # rewritten content of the same size is never taken for the parsed old one
    key = {"path": str(source.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
           "ctime_ns": st.st_ctime_ns, "ino": st.st_ino, "params": params, "format": CACHE_FORMAT,
           "schema": TRACE_SCHEMA.metadata[b"wrpsim.version"].decode()}
    payload = json.dumps(key, sort_keys=True, default=str)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:24]
    return d / f"{source.stem}-{digest}.parquet"


def read_cached(path: Path) -> TraceColumns | None:
    """The canonical trace stored in `path` (as `TraceColumns`), or None if it is absent or not
    a valid trace file."""
    from wrpsim.parquetio import read_table  # (not pq.read_table: it imports pyarrow.dataset)

    try:
        table = read_table(path)
    except (OSError, pa.ArrowException, ValueError):
        return None
    schema = table.schema
    names = schema.names
    meta = schema.metadata or {}
    if (meta.get(b"wrpsim.table") != b"trace" or not set(REQUIRED) <= set(names)
            or meta.get(b"wrpsim.version") != TRACE_SCHEMA.metadata[b"wrpsim.version"]):
        return None
    for name in names:
        if TRACE_SCHEMA.get_field_index(name) < 0 or not schema.field(name).type.equals(
            TRACE_SCHEMA.field(name).type
        ):
            return None
    if any(table.column(c).null_count for c in REQUIRED):
        return None
    optional = {name: table.column(name).to_pylist() for name in names if name not in REQUIRED}
    trace = canonical_columns(
        _dense(table.column("arrival_s"), np.float64),
        _dense(table.column("prompt_tokens"), np.int64),
        _dense(table.column("output_tokens"), np.int64),
        optional,
    )
    block = (schema.metadata or {}).get(_ATTR_KEY)
    for message in json.loads(meta.get(_WARN_KEY, b"[]")):  # what the parse said, said again
        warn(message)
    return set_block_tokens(trace, int(block) if block is not None else None)


def _dense(col: pa.ChunkedArray, dtype) -> np.ndarray:
    """The values of a null-free fixed-width column as a new numpy array. Read from the Arrow
    buffers: pyarrow's `to_numpy` imports pandas, which a cache hit must not."""
    parts = [np.frombuffer(c.buffers()[1], dtype=dtype)[c.offset:c.offset + len(c)]
             for c in col.chunks if len(c)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def write_cached(path: Path, df: pd.DataFrame, warnings: Sequence[str] = ()) -> bool:
    """Store canonical `df` in `path` atomically, with the `warnings` its parse gave (each said
    again on every hit: a near-miss column is not silent from the second run on); return False
    (and leave nothing) when it cannot be written or serialised (the run goes on uncached)."""
    import pyarrow.parquet as pq

    from wrpsim.io import atomic_path

    try:
        with atomic_path(path) as tmp:
            table = pa.Table.from_pandas(df, schema=arrow_schema(df), preserve_index=False)
            meta = dict(TRACE_SCHEMA.metadata)
            if df.attrs.get(ATTR) is not None:
                meta[_ATTR_KEY] = str(int(df.attrs[ATTR])).encode()
            if warnings:
                meta[_WARN_KEY] = json.dumps(list(warnings)).encode()
            pq.write_table(table.replace_schema_metadata(meta), tmp)
        return True
    except (OSError, pa.ArrowException, TypeError, ValueError):
        return False


def cached(source: Path, params: Mapping,
           build: Callable[[], pd.DataFrame]) -> TraceColumns:
    """Return the cached trace of (`source`, `params`), else `build()` its canonical frame, store
    it and return it as `TraceColumns`."""
    from wrpsim.io import prune, touch

    path = cache_file(source, params)
    if path is not None:
        trace = read_cached(path)
        if trace is not None:
            touch(path)  # used: `prune` keeps it
            return trace
    with _warnings.catch_warnings(record=True) as said:
        _warnings.simplefilter("always", WrpsimWarning)
        df = build()
    for w in said:  # (passed on as they came; WrpsimWarnings kept for the cache)
        _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    ours = [str(w.message) for w in said if issubclass(w.category, WrpsimWarning)]
    if path is not None and write_cached(path, df, ours):
        prune(path.parent, "*.parquet", KEEP)
    return TraceColumns.from_frame(df)
