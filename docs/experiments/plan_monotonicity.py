"""Is "more instances never hurt" true? (docs/planning.md, "Monotonicity").

Runs the default scenario (Azure 2023 conversation trace) with least-outstanding and round-robin
on A100 (TP 4), H100 (TP 4) and H200 (TP 2) fleets of 2 to 10 instances, one `python -m wrpsim`
per point (about a minute on 2 cores), and prints every step where p99 TTFT or p99 TPOT grows
or SLO attainment falls as an instance is added.

    python docs/experiments/plan_monotonicity.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        for router in ("least-outstanding", "round-robin"):
            for gpu, tp in (("a100-80gb", 4), ("h100-80gb", 4), ("h200-141gb", 2)):
                prev = None
                for n in range(2, 11):
                    run = subprocess.run(
                        [sys.executable, "-m", "wrpsim", "json=true", f"router={router}",
                         f"pool.pools.h100.gpu={gpu}", f"pool.pools.h100.tp={tp}",
                         f"pool.pools.h100.count={n}", "sim.progress=false",
                         f"hydra.run.dir={out}/{router}-{gpu}-{n}"],
                        capture_output=True, text=True, check=True)
                    s = json.loads(run.stdout.strip().splitlines()[-1])
                    cur = (s["ttft_p99_s"], s["tpot_p99_s"], s["slo_attainment"])
                    if prev and (cur[0] > prev[0] or cur[1] > prev[1] or cur[2] < prev[2]):
                        print(f"{router} {gpu} {n - 1} -> {n}: p99 TTFT {prev[0]:.4f} -> "
                              f"{cur[0]:.4f} s, p99 TPOT {prev[1]:.5f} -> {cur[1]:.5f} s, "
                              f"attainment {prev[2]:.5f} -> {cur[2]:.5f}", flush=True)
                    prev = cur


if __name__ == "__main__":
    main()
