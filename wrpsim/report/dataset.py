"""Write the sweep dataset: `results.parquet`, `requests_all.parquet` and `manifest.json`.

Schemas are in `wrpsim/report/schemas.py`. Every file is written atomically (temporary name,
then rename), so a report interrupted half-way never leaves a truncated dataset behind.
`requests_all.parquet` is streamed one run at a time: memory stays at one run's requests.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from wrpsim.io import atomic_path, write_json
from wrpsim.report.collect import REQUESTS, Run, swept_keys
from wrpsim.report.schemas import (
    SUMMARY_TYPES,
    SWEPT_PREFIX,
    conform,
    infer_type,
    requests_all_schema,
    results_schema,
    to_cell,
)

RESULTS, REQUESTS_ALL, MANIFEST = "results.parquet", "requests_all.parquet", "manifest.json"


def summary_fields(runs: list[Run]) -> list[tuple[str, pa.DataType]]:
    """Summary columns: the documented keys first (in `SUMMARY_TYPES` order), then any other."""
    present: dict[str, None] = {}
    for r in runs:
        for k in r.summary or {}:
            present.setdefault(k, None)
    known = [(k, t) for k, t in SUMMARY_TYPES.items() if k in present]
    extra = sorted(k for k in present if k not in SUMMARY_TYPES)
    return known + [(k, infer_type(k, [(r.summary or {}).get(k) for r in runs])) for k in extra]


def results_table(runs: list[Run]) -> pa.Table:
    """One row per run (see `schemas.results_schema`)."""
    swept = swept_keys(runs)
    sfields = summary_fields(runs)
    schema = results_schema(swept, sfields)
    rows = []
    for r in runs:
        err = r.error or {}
        row = {
            "run": r.name, "status": r.status, "reason": r.reason,
            "error_type": err.get("exception_type"), "error_message": err.get("message"),
            "overrides": " ".join(r.overrides), "config_sha256": r.config_sha256,
        }
        row.update({SWEPT_PREFIX + k: r.params.get(k) for k in swept})
        summary = r.summary or {}
        row.update({k: to_cell(summary.get(k), t) for k, t in sfields})
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def write_requests_all(runs: list[Run], path: Path) -> int:
    """Stream every completed run's requests into one Parquet file; return the row count."""
    schema = requests_all_schema()
    n = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        for r in runs:
            if r.status != "completed":
                continue
            t = pq.read_table(r.path / REQUESTS)
            t = t.add_column(0, "run", pa.array([r.name] * t.num_rows, pa.string()))
            w.write_table(conform(t, schema))
            n += t.num_rows
    return n


def manifest(runs: list[Run], sweep_dir: Path, files: dict[str, str]) -> dict:
    """The run manifest: one entry per run (dir, overrides, status, reason, error)."""
    entries = []
    for r in runs:
        err = r.error or {}
        entries.append({
            "run": r.name, "dir": str(r.path.resolve()), "status": r.status,
            "overrides": list(r.overrides), "reason": r.reason,
            "error": {"type": err.get("exception_type"), "message": err.get("message")}
            if r.error else None,
        })
    counts = {s: sum(r.status == s for r in runs) for s in ("completed", "failed", "incomplete")}
    return {"sweep_dir": str(Path(sweep_dir).resolve()), "swept": swept_keys(runs),
            "runs": entries, "counts": counts, "files": files}


def write_dataset(runs: list[Run], sweep_dir: Path, out_dir: Path,
                  with_requests: bool = True) -> dict[str, str]:
    """Write the dataset files into `out_dir`; return their paths by role."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"results": str(out_dir / RESULTS)}
    with atomic_path(out_dir / RESULTS) as tmp:
        pq.write_table(results_table(runs), tmp, compression="zstd")
    if with_requests:
        write_requests_all(runs, out_dir / REQUESTS_ALL)
        files["requests"] = str(out_dir / REQUESTS_ALL)
    files["manifest"] = str(out_dir / MANIFEST)
    write_json(out_dir / MANIFEST, manifest(runs, sweep_dir, files))
    return files
