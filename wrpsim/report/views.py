"""Per-run data reduced for the dashboard: small enough to inline hundreds of runs in one page.

- latency CDFs (TTFT, TPOT, end-to-end) of completed requests, each downsampled to at most
  `points` (value, cumulative fraction) pairs taken at evenly spaced ranks (exact at the ends);
- requests in system over time: arrivals minus departures at `bins` evenly spaced instants over
  the run (a request counts from arrival until it finishes; unfinished ones until the end;
  dropped requests never enter) — the per-request view of fleet utilisation;
- the router's decision mix: how many requests went to each `pool/instance`, plus `dropped`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

COLUMNS = ("arrival_s", "finish_s", "ttft_s", "tpot_s", "e2e_s", "pool", "instance", "status")
LATENCIES = ("ttft_s", "tpot_s", "e2e_s")


def _round(x: np.ndarray, digits: int = 6) -> list[float]:
    """Floats rounded to `digits` significant digits (keeps the inlined JSON small)."""
    out = []
    for v in x.tolist():
        out.append(float(f"{v:.{digits}g}"))
    return out


def cdf(values: np.ndarray, points: int = 500) -> list[list[float]]:
    """`[xs, ps]`: the empirical CDF of the finite `values`, at most `points` pairs."""
    x = np.sort(values[np.isfinite(values)])
    n = x.size
    if n == 0:
        return [[], []]
    idx = np.arange(n) if n <= points else np.unique(
        np.round(np.linspace(0, n - 1, points)).astype(np.int64))
    return [_round(x[idx]), _round((idx + 1) / n)]


def in_system(arrival: np.ndarray, finish: np.ndarray, end: float,
              bins: int = 200) -> list[list[float]]:
    """`[ts, counts]`: requests in the system at `bins` instants in [0, end]."""
    ts = np.linspace(0.0, max(end, 0.0), bins)
    fin = np.where(np.isfinite(finish), finish, np.inf)
    arr_sorted, fin_sorted = np.sort(arrival), np.sort(fin)
    counts = (np.searchsorted(arr_sorted, ts, side="right")
              - np.searchsorted(fin_sorted, ts, side="right"))
    return [_round(ts), [int(c) for c in counts]]


def decision_mix(table) -> dict[str, int]:
    """Requests per `pool/instance` the router chose, and those that reached none: `dropped`,
    `semantic cache` (answered by the router's cache: completed without a pool) and `in flight`
    (between instances when the run ended); keys sorted."""
    import pyarrow.compute as pc

    status, pool = table.column("status"), table.column("pool")
    unplaced = pc.is_null(pool)
    where = pc.binary_join_element_wise(pool, pc.cast(table.column("instance"), "string"), "/")
    keys = pc.if_else(pc.and_(unplaced, pc.equal(status, "completed")), "semantic cache",
                      pc.if_else(unplaced, "in flight", where))
    keys = pc.if_else(pc.equal(status, "dropped"), "dropped", keys)
    counts = pc.value_counts(keys)
    return {str(k): int(n) for k, n in sorted(zip(counts.field("values").to_pylist(),
                                                   counts.field("counts").to_pylist()))}


def run_view(requests_path: Path, duration_s: float | None, points: int = 500,
             bins: int = 200) -> dict:
    """The reduced data of one completed run's `requests.parquet`."""
    t = pq.read_table(requests_path, columns=list(COLUMNS))
    status = t.column("status").to_pylist()
    done = np.asarray([s == "completed" for s in status], dtype=bool)
    served = np.asarray([s != "dropped" for s in status], dtype=bool)
    col = {c: t.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
           for c in ("arrival_s", "finish_s", *LATENCIES)}
    fin = col["finish_s"][served]
    end = duration_s if duration_s else float(np.nanmax(fin)) if np.isfinite(fin).any() else 0.0
    return {
        "cdf": {c.removesuffix("_s"): cdf(col[c][done], points) for c in LATENCIES},
        "insys": in_system(col["arrival_s"][served], fin, end, bins),
        "mix": decision_mix(t),
    }
