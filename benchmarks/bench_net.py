"""Benchmark: network engine speed on the 16×16×16, 400 Gb/s, 4 MiB permutation.

Usage: `python benchmarks/bench_net.py [--repeat 3] [--engines packet fluid]
[--lb ecmp spray split] [--set key=value ...]` (`--set` takes network config fields, e.g.
`--set spray=random`).

Pins itself to one core, builds the scenario once per run (`wrpsim.network.scenario`), and prints
one JSON line per engine and load-balancing mode: for the packet engine the data packets moved
per wall-second of the event loop (target >= 100,000) and of the whole scenario; for the fluid
engine the wall time of the whole scenario (target < 0.1 s). Best and median of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lb", nargs="*", default=["ecmp", "spray", "split"])
    ap.add_argument("--engines", nargs="*", default=["packet", "fluid"])
    ap.add_argument("--set", nargs="*", default=[], dest="overrides")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    import yaml

    from wrpsim import _native
    from wrpsim.network.config import NetConfig
    from wrpsim.network.scenario import run_scenario

    extra = {}
    for o in args.overrides:
        k, _, v = o.partition("=")
        extra[k] = yaml.safe_load(v)
    for engine in args.engines:
        for lb in args.lb:
            cfg = NetConfig.from_dict({"kind": engine, "leaves": 16, "hosts_per_leaf": 16,
                                       "spines": 16, "host_gbps": 400, "lb": lb, **extra})
            runs = [run_scenario(cfg, "permutation", 4 << 20, seed=1).summary
                    for _ in range(args.repeat)]
            eng = [r["engine_wall_s"] for r in runs]
            whole = [r["sim_wall_s"] for r in runs]
            out = {"engine": engine, "lb": lb, **extra, "cct_ratio": runs[0]["cct_ratio"],
                   "sim_wall_s_best": min(whole), "sim_wall_s_median": statistics.median(whole),
                   "engine_wall_s_best": min(eng)}
            if engine == "packet":
                n = runs[0]["data_packets"]
                out.update({"data_packets": n,
                            "packets_per_s_best": n / min(eng),
                            "packets_per_s_median": n / statistics.median(eng),
                            "packets_per_s_whole_best": n / min(whole),
                            "drops": runs[0]["drops"],
                            "out_of_order_packets": runs[0]["out_of_order_packets"]})
            out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            out["python"] = platform.python_version()
            out["compiled"] = _native.COMPILED  # the Cython build in use (setup.py)
            print(json.dumps(out), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
