"""Benchmark: wall time of a whole capacity plan (target: under 5 minutes).

Usage: `python benchmarks/bench_plan.py [--repeat 3] [overrides ...]`, e.g.
`python benchmarks/bench_plan.py plan.search_window_s=600`.

Runs `python -m wrpsim.plan <overrides>` as a user does — default: the Azure 2023 conversation
trace, Llama-3.1-70B on A100 (TP 4), H100 (TP 4) and H200 (TP 2) candidates, mixes allowed, the
fresh-seed recheck, one-fewer checks and ±20 % load sensitivity, report.html and report.md —
`--repeat` times in a subprocess pinned to one core, each into a fresh temporary directory, and
prints one JSON line: best and median wall seconds of the whole process, the number of
simulations (search and checks), the plan's fleet, cost and verdict, and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    times, record = [], None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "wrpsim.plan", f"hydra.run.dir={out}", "json=true",
                   *args.overrides]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=_pin)
            times.append(time.perf_counter() - t0)
            if p.returncode:
                sys.exit(f"plan failed ({p.returncode}): {p.stderr[-2000:]}")
            record = json.loads(p.stdout.strip().splitlines()[-1])
    search = record["search"]
    print(json.dumps({
        "scenario": " ".join(args.overrides) or "default",
        "best_s": min(times), "median_s": statistics.median(times),
        "simulations": search["evaluations"], "search_simulations": search["search_evaluations"],
        "search_trace": search["trace"], "fleet": record["fleet_label"],
        "cost_per_hour_usd": record["cost_per_hour_usd"], "slo_met": record["slo_met"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "python": sys.version.split()[0],
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
