"""Explicit Arrow schemas of the sweep dataset written by `wrpsim.report`.

`results.parquet` — one row per run, three blocks of columns in this order:

1. run identity: `run` (the run directory relative to the sweep directory, e.g. `"3"`),
   `status` (`completed` | `failed` | `incomplete`), `reason` (why a run is not completed),
   `error_type`, `error_message` (from the run's `error.json`), `overrides` (the run's Hydra
   overrides, space-joined), `config_sha256` (from the completion marker);
2. swept values: one `string` column `sweep.<override key>` per key that appears in any run's
   overrides (`collect.recorded_overrides`: its `_DONE`'s record, else
   `.hydra/overrides.yaml`; the value exactly as written in the override; null where a run
   lacks the key; never a print-only key, `collect.presentation`) — e.g. `sweep.router`,
   `sweep.pool.pools.h100.gpu`;
3. the summary: every `summary.json` key (see `wrpsim/metrics/summary.py`) with the type of
   `SUMMARY_TYPES`; a key not listed there is typed from its values (bool, int64, float64,
   string; anything else as a JSON string; see `infer_type`). Null where a run has no summary.

`requests_all.parquet` — every completed run's `requests.parquet` with a leading `run` column:
`run: string` followed by the fields of `wrpsim.metrics.records.REQUEST_SCHEMA` and
`trace_request_id: string` (the trace's own request ids, null for a run whose trace has none;
a run's columns are cast to it; a missing column is null, an extra one dropped).
"""

from __future__ import annotations

import json

import pyarrow as pa

VERSION = "1"
SWEPT_PREFIX = "sweep."

RUN_FIELDS = [
    ("run", pa.string()),
    ("status", pa.string()),
    ("reason", pa.string()),
    ("error_type", pa.string()),
    ("error_message", pa.string()),
    ("overrides", pa.string()),
    ("config_sha256", pa.string()),
]

_INT = ("requests_total", "requests_completed", "requests_dropped", "requests_in_flight",
        "requests_beyond_horizon", "preemptions", "gpu_count", "instance_count", "seed")
_STR = ("workload", "pool", "router")
_FLOAT = (
    "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_mean_s", "tpot_p50_s",
    "tpot_p90_s", "tpot_p99_s", "e2e_mean_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s",
    "queue_wait_mean_s", "slo_ttft_s", "slo_tpot_s", "slo_attainment", "goodput_rps",
    "throughput_tokens_per_s", "throughput_prompt_tokens_per_s", "duration_s", "gpu_hours",
    "cost_usd", "cost_per_hour_usd", "pue", "energy_it_kwh", "energy_kwh", "tokens_per_joule",
    "mean_utilization", "mean_token_budget_use", "mean_kv_use", "mean_decode_batch",
    "sim_wall_s",
    "prefix_hit_ratio_blocks", "prefix_hit_ratio_tokens",
    "qoe_mean", "qoe_p10", "qoe_attainment", "qoe_target", "qoe_ttft_s", "qoe_tokens_per_s",
)
_NUMERIC_HINTS = ("_s", "_usd", "_kwh", "_rps", "_per_s", "_per_joule")
SUMMARY_TYPES: dict[str, pa.DataType] = {
    **{k: pa.int64() for k in _INT}, **{k: pa.string() for k in _STR},
    **{k: pa.float64() for k in _FLOAT},
}


#: the summary keys a completed run must carry (the winner rule, the dashboard's front and
#: table read them); a summary lacking one (`{}`, a stub) is not a finished run's
REQUIRED = ("requests_total", "requests_completed", "slo_attainment", "cost_usd",
            "ttft_p99_s", "tpot_p99_s")


def summary_problem(summary: dict) -> str | None:
    """Why `summary` cannot be a completed run's (one phrase), or None: a `REQUIRED` key is
    missing, or a key of `SUMMARY_TYPES` holds a value of another type (`"cheap"` as a cost).
    Null stays allowed: a run without completed requests has no percentiles."""
    missing = [k for k in REQUIRED if k not in summary]
    if missing:
        return f"lacks {', '.join(missing)}"
    for k, typ in SUMMARY_TYPES.items():
        v = summary.get(k)
        if v is None:
            continue
        if pa.types.is_string(typ):
            ok = isinstance(v, str)
        elif pa.types.is_integer(typ):
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if not ok:
            kind = "text" if pa.types.is_string(typ) else "a number"
            return f"{k} is {json.dumps(v)[:40]}, not {kind}"
    return None


def infer_type(name: str, values: list) -> pa.DataType:
    """Arrow type for a summary key not in `SUMMARY_TYPES`, from its non-null values (all null:
    float64 when the name looks numeric — a unit suffix or `ratio` — else string)."""
    seen = [v for v in values if v is not None]
    if not seen:
        numeric = name.endswith(_NUMERIC_HINTS) or "ratio" in name
        return pa.float64() if numeric else pa.string()
    if seen and all(isinstance(v, bool) for v in seen):
        return pa.bool_()
    if seen and all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return pa.int64()
    if seen and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        return pa.float64()
    return pa.string()


def to_cell(value, typ: pa.DataType):
    """A summary value coerced for a column of type `typ` (non-scalars become JSON strings)."""
    if value is None:
        return None
    if pa.types.is_string(typ) and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if pa.types.is_floating(typ):
        return float(value)
    return value


def results_schema(swept: list[str], summary_fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """The `results.parquet` schema for these swept keys and summary columns."""
    fields = [pa.field(n, t) for n, t in RUN_FIELDS]
    fields += [pa.field(SWEPT_PREFIX + k, pa.string()) for k in swept]
    fields += [pa.field(n, t) for n, t in summary_fields]
    return pa.schema(fields, metadata={
        "wrpsim.table": "results", "wrpsim.version": VERSION,
        "wrpsim.swept": json.dumps(swept),
        "wrpsim.doc": "one row per run of a sweep; see wrpsim/report/schemas.py",
    })


#: the column a run's requests table ends with when its trace carries its own request ids
#: (`wrpsim.sim.with_trace_ids`); null for runs whose trace has none
TRACE_ID = "trace_request_id"


def requests_all_schema() -> pa.Schema:
    """The `requests_all.parquet` schema: `run` + the per-request schema of a run."""
    from wrpsim.metrics.records import REQUEST_SCHEMA

    meta = dict(REQUEST_SCHEMA.metadata or {})
    meta.update({b"wrpsim.table": b"requests_all", b"wrpsim.version": VERSION.encode()})
    return pa.schema([pa.field("run", pa.string()), *REQUEST_SCHEMA,
                      pa.field(TRACE_ID, pa.string())], metadata=meta)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` cast to `schema` by column name: missing columns null, extra columns dropped."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.table(cols, schema=schema)
