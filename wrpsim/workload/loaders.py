"""Trace loaders: Azure LLM inference CSV, Mooncake JSONL, a generic column-mapped loader, and the
record loaders `ragpulse` (`wrpsim.workload.ragpulse`) and `agent_rounds` (`.agent`).

The three columnar kinds are one conversion (`wrpsim.workload.convert`) from a `RawTable` with a
column mapping and a timestamp unit; `azure` and `mooncake` are presets of it. Conversion is
vectorised. A trace with `hash_ids` gets `df.attrs["hash_block_tokens"]`: the file's block
size, 512 for Mooncake, `source.hash_block_tokens` (required) for a generic file that maps
`hash_ids`. Every bad value raises `TraceError` naming the file, the line (header = line 1),
the field and the value. Contract of the result: canonical form (`wrpsim.workload.request`),
`arrival_s = t - min(t)` in seconds, rows sorted by arrival with a *stable* sort (a trace whose
timestamps go backwards is reordered, not rejected; ties keep file order), token counts >= 1
(0 or negative is an error).

`load_columns` returns the trace as `TraceColumns`: a trace-cache hit (`wrpsim.workload.cache`)
is then read without pandas, which parsing (`convert`, the readers, the record kinds' modules)
imports when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wrpsim.errors import ConfigError, boolean, choice, unknown_choice, unknown_key
from wrpsim.workload.columns import OPTIONAL, REQUIRED, TraceColumns
from wrpsim.workload.files import FORMATS, require_file
from wrpsim.workload.prefix import check_block_tokens
from wrpsim.workload.request import TRACE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

COLUMN_KINDS = ("azure", "generic", "mooncake")
#: Record loaders: kind -> (module, its parameter resolver, its loader); the module (which
#: needs pandas) is imported when its kind is used (`record_kind`).
RECORD_KINDS = {
    "agent_rounds": ("wrpsim.workload.agent", "agent_params", "load_agent_rounds"),
    "ragpulse": ("wrpsim.workload.ragpulse", "ragpulse_params", "load_ragpulse"),
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


def record_kind(kind: str) -> tuple:
    """(options, parameter resolver, loader) of record kind `kind` (imports its module)."""
    module, resolve, load = RECORD_KINDS[kind]
    mod = import_module(module)
    return mod.OPTIONS, getattr(mod, resolve), getattr(mod, load)


def source_options(kind: str) -> tuple[str, ...]:
    """The `source:` options (besides kind and path) a trace kind accepts."""
    if kind in RECORD_KINDS:
        return record_kind(kind)[0]
    return LOADER_OPTIONS


def mapping_spec(columns: Mapping[str, Any] | None) -> dict[str, str | None]:
    """`columns:` as given, checked: canonical name -> file column, or None (do not read that
    column); `ConfigError` for a key that is no canonical column or a required one set null."""
    if columns is not None and not isinstance(columns, Mapping):
        raise ConfigError(f"columns must be a mapping {{canonical name: file column}}, e.g. "
                          f"{{arrival_s: ts, prompt_tokens: in}}, got {columns!r}")
    columns = dict(columns or {})
    for key, src in columns.items():
        if key not in TRACE_COLUMNS:
            raise unknown_key(f"columns.{key}", key, TRACE_COLUMNS)
        if src is None and key in REQUIRED:
            raise ConfigError(f"columns.{key}: a required column cannot be null; name the file "
                              f"column that holds {key}")
    return {k: None if columns[k] is None else str(columns[k])
            for k in TRACE_COLUMNS if k in columns}


#: a file column read as a canonical one without a mapping, besides its own name
ALIASES = {"trace_request_id": "request_id"}


def column_mapping(columns: Mapping[str, Any] | None,
                   found: Sequence[str] = ()) -> dict[str, str]:
    """The canonical name -> file column mapping to read, in `TRACE_COLUMNS` order.

    A required column not in `columns` is read from the file column of its own name; so is an
    optional one when the file (whose column names are `found`) has a column of exactly its
    name, or of its alias (`ALIASES`), that no other key maps. A key mapped to None is not
    read. `ConfigError` as `mapping_spec`.
    """
    spec = mapping_spec(columns)
    used = {src for src in spec.values() if src is not None}
    for key in REQUIRED:
        spec.setdefault(key, key)
    for key in OPTIONAL:
        if key not in spec and key in found and key not in used:
            spec[key] = key
    for key, alias in ALIASES.items():  # (request_id: the file's own ids; wrpsim's own
        if key not in spec and alias in found and alias not in used:  # is a row number)
            spec[key] = alias
    return {k: spec[k] for k in TRACE_COLUMNS if spec.get(k) is not None}


def loader_params(kind: str, **opts: Any) -> dict[str, Any]:
    """Resolve a columnar `kind` and options to the full parameter set (preset defaults + opts)."""
    if not isinstance(kind, str) or kind not in PRESETS:
        raise unknown_choice("kind", kind, KINDS)
    for key in opts:
        if key not in LOADER_OPTIONS:
            raise unknown_key(f"source.{key}", key, LOADER_OPTIONS)
    params = {k: v for k, v in PRESETS[kind].items()}
    given = {k: v for k, v in opts.items() if k != "cache" and v is not None}
    if isinstance(given.get("columns"), Mapping) and isinstance(params.get("columns"), Mapping):
        # a kind's preset names its file's columns; the user's entries add to or override
        # them (e.g. `columns: {complexity: null}` on an azure file), they do not replace them
        given["columns"] = {**params["columns"], **given["columns"]}
    params.update(given)
    if params.get("format") is not None and params["format"] not in FORMATS:
        raise unknown_choice("format", params["format"], FORMATS)
    choice("time_unit", params["time_unit"], TIME_UNITS)
    fmt = given.get("time_format")
    if fmt is not None:
        if not isinstance(fmt, str) or not fmt.strip():
            raise ConfigError(f"time_format must be a strptime format such as "
                              f"'%d/%m/%Y %H:%M:%S', got {fmt!r}")
        if params["time_unit"] != "datetime":  # (it would be ignored: numbers are read)
            raise ConfigError(f"time_format applies only to time_unit datetime; got "
                              f"time_format={fmt!r} with time_unit {params['time_unit']} "
                              f"(set time_unit datetime too, or leave time_format out)")
    params["columns"] = mapping_spec(params.get("columns"))
    if params.get("hash_block_tokens") is not None:
        params["hash_block_tokens"] = check_block_tokens(params["hash_block_tokens"],
                                                         "source.hash_block_tokens")
    elif params["columns"].get("hash_ids") is not None:
        raise ConfigError("source.hash_block_tokens: give the block size (tokens per id) of the "
                          "file's hash_ids, e.g. 512 for Mooncake-style ids")
    return params


def load_columns(path: str | Path, kind: str = "generic", **opts: Any) -> TraceColumns:
    """`load_trace` as `TraceColumns`: a trace-cache hit is read without pandas."""
    path = Path(path)
    use_cache = boolean("source.cache", opts.get("cache"), True)
    if kind in RECORD_KINDS:
        allowed, resolve, load = record_kind(kind)
        for key in opts:
            if key not in allowed:
                raise unknown_key(f"source.{key}", key, allowed)
        params = resolve(**{k: v for k, v in opts.items() if k != "cache"})
    else:
        params = loader_params(kind, **opts)
    require_file(path)

    def build() -> pd.DataFrame:
        if kind in RECORD_KINDS:
            return load(path, params)
        from wrpsim.workload.convert import convert
        from wrpsim.workload.readers import read_table

        raw = read_table(path, params.get("format"))
        return convert(raw, params["columns"], params["time_unit"], params.get("time_format"),
                       params.get("hash_block_tokens"), kind=kind)

    if not use_cache:
        return TraceColumns.from_frame(build())
    from wrpsim.workload.cache import cached

    try:
        return cached(path, {"kind": kind, **params}, build)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read trace: {e}") from None


def load_trace(path: str | Path, kind: str = "generic", **opts: Any) -> pd.DataFrame:
    """Load a trace file into the canonical frame (cached as Parquet unless `cache=False`).

    `kind`: azure (Azure LLM inference CSV), mooncake (Mooncake JSONL), generic, ragpulse
    (`ragpulse.load_ragpulse`) or agent_rounds (`agent.load_agent_rounds`). Columnar options:
    `format` (csv|jsonl|parquet; default from the suffix), `columns` (canonical name -> file
    column), `time_unit` (s|ms|us|datetime), `time_format` (strptime format for datetime),
    `hash_block_tokens` (block size of the file's hash ids); record kinds take the options of
    their module. All take `cache` (bool, default True). Raises `TraceError` for any bad file
    content and `ConfigError` for unknown kinds or options. (`load_columns` gives the same
    trace as `TraceColumns`.)
    """
    return load_columns(path, kind, **opts).to_frame()
