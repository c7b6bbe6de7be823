"""Benchmark: simulation speed of the default scenario (requests simulated per wall-second).

Usage: `python benchmarks/bench_default.py [--repeat 5] [overrides ...]`, e.g.
`python benchmarks/bench_default.py router=least-outstanding`.

Composes the run config exactly as `python -m wrpsim` does, builds the workload once (its parse
is cached as Parquet and excluded), then times `Simulation(cfg).run()` — fleet construction,
routing and the event loop — `--repeat` times on one core, and prints one JSON line with the best
and median requests per wall-second and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from wrpsim import _native
    from wrpsim.app import register_catalogs
    from wrpsim.paths import catalog_dir
    from wrpsim.sim import Simulation
    from wrpsim.workload import build_workload

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    register_catalogs()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config", overrides=args.overrides), resolve=True)
    trace = build_workload(cfg["workload"], cfg.get("seed", 0))
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        sim = Simulation(cfg, trace)
        req, _, _ = sim.run()
        times.append(time.perf_counter() - t0)
    n = req.num_rows
    out = {
        "scenario": " ".join(args.overrides) or "default",
        "requests": n,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "requests_per_s_best": n / min(times),
        "requests_per_s_median": n / statistics.median(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "python": sys.version.split()[0],
        "compiled": _native.COMPILED,  # the Cython build in use, or pure Python (setup.py)
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
