"""`candidates.parquet`: one row per simulated candidate fleet, with an explicit Arrow schema.

Fixed columns (`CANDIDATE_FIELDS`), then one `count.<pool>` int32 column per planned pool in the
plan's pool order:

- identity: `index` (order of simulation), `phase` (bisect | descent | final | recheck |
  one-fewer | sensitivity | best-effort), `trace` (search | full | recheck | load-<f>), `seed`,
  `trace_description`, `trace_start_s` / `trace_end_s` (the window of the original trace),
  `fleet` (e.g. `2 × h100 + 1 × h200`), `chosen` (the recommended fleet);
- the fleet: `cost_per_hour_usd`, `gpu_count`, `instance_count`;
- the run: `energy_kwh` (facility, over the replayed trace), `ttft_p50_s`, `ttft_p99_s`,
  `tpot_p50_s`, `tpot_p99_s`, `e2e_p99_s`, `queue_wait_mean_s`, `slo_attainment`,
  `unserved_frac`, `throughput_tokens_per_s`, `duration_s`, `sim_wall_s`;
- the verdict: `slo_met`, `worst_target`, `worst_margin`, `margins_json` (all margins, JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

VERSION = "1"
_F, _I, _S, _B = pa.float64(), pa.int64(), pa.string(), pa.bool_()
RUN_METRICS = ("energy_kwh", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "e2e_p99_s",
               "queue_wait_mean_s", "slo_attainment", "unserved_frac", "throughput_tokens_per_s",
               "duration_s")
CANDIDATE_FIELDS = [
    ("index", _I), ("phase", _S), ("trace", _S), ("seed", _I), ("trace_description", _S),
    ("trace_start_s", _F), ("trace_end_s", _F), ("fleet", _S), ("chosen", _B),
    ("cost_per_hour_usd", _F), ("gpu_count", _I), ("instance_count", _I),
    *[(k, _F) for k in RUN_METRICS], ("sim_wall_s", _F),
    ("slo_met", _B), ("worst_target", _S), ("worst_margin", _F), ("margins_json", _S),
]


def candidate_schema(pool_names) -> pa.Schema:
    """The table's schema for a plan with these pools."""
    fields = [pa.field(n, t) for n, t in CANDIDATE_FIELDS]
    fields += [pa.field(f"count.{p}", pa.int32()) for p in pool_names]
    return pa.schema(fields, metadata={"wrpsim.table": "plan_candidates",
                                       "wrpsim.version": VERSION})


def candidate_table(ev, chosen: tuple) -> pa.Table:
    """Every simulated evaluation of `ev` (an `Evaluator`) as one table."""
    names = [p.name for p in ev.pools]
    schema = candidate_schema(names)
    rows = []
    for e in ev.rows:
        run = ev.traces[e.trace]
        key, margin = ev.slo.worst(e.margins) if e.margins else (None, None)
        row = {"index": e.index, "phase": e.phase, "trace": e.trace, "seed": e.seed,
               "trace_description": run.description, "trace_start_s": run.start_s,
               "trace_end_s": run.end_s, "fleet": ev.label(e.counts),
               "chosen": e.counts == tuple(chosen),
               "cost_per_hour_usd": ev.cost(e.counts), "gpu_count": ev.gpus(e.counts),
               "instance_count": int(sum(e.counts)), "sim_wall_s": e.wall_s,
               "slo_met": e.slo_met, "worst_target": key, "worst_margin": margin,
               "margins_json": json.dumps(e.margins, sort_keys=True)}
        row.update({k: e.summary.get(k) for k in RUN_METRICS})
        row.update({f"count.{p}": n for p, n in zip(names, e.counts)})
        rows.append(row)
    cols = {f.name: pa.array([r[f.name] for r in rows], type=f.type) for f in schema}
    return pa.Table.from_pydict(cols, schema=schema)


def write_candidates(table: pa.Table, path: Path) -> None:
    """Write the table atomically as Parquet."""
    from wrpsim.metrics.records import write_parquet

    write_parquet(table, path)
