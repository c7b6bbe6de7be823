"""What if an instance fails? SLO impact of crashes and of the retry / reroute / drop policies.

Run from the repository root: `python docs/experiments/failure_whatif.py [out_dir]`. It replays
the default scenario (Azure conversation trace, 4 × H100-TP4 Llama-3.1-70B, round robin) with
the failure settings below through `wrpsim.sim.run`, prints one JSON line per scenario and
writes `failure_whatif.json` into `out_dir` (default `docs/experiments/`). docs/failures.md
quotes its figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import compose_cfg
from wrpsim.sim import run

KEYS = ("requests_completed", "requests_lost", "requests_retried", "requests_interrupted",
        "slo_attainment", "slo_attainment_interrupted", "ttft_p99_s", "e2e_p99_s", "qoe_mean",
        "qoe_attainment", "instance_failures", "availability", "busy_cost_usd")

CRASH = [{"pool": "h100", "instance": 0, "at_s": 600, "down_s": 300}]
SCENARIOS = {
    "no failures": None,
    "1 crash (5 min), retry after 1 s": {"policy": "retry", "retry_delay_s": 1.0,
                                         "events": CRASH},
    "1 crash (5 min), retry after 10 s": {"policy": "retry", "retry_delay_s": 10.0,
                                          "events": CRASH},
    "1 crash (5 min), reroute": {"policy": "reroute", "events": CRASH},
    "1 crash (5 min), drop": {"policy": "drop", "events": CRASH},
    "MTBF 1 h, MTTR 10 min, reroute": {"policy": "reroute", "mtbf_s": 3600, "mttr_s": 600},
}


def main(out_dir: Path) -> None:
    results = {}
    for name, failures in SCENARIOS.items():
        cfg = compose_cfg("sim.progress=false")
        cfg["failures"] = failures
        with tempfile.TemporaryDirectory() as tmp:
            s = run(cfg, tmp)
        results[name] = {k: s.get(k) for k in KEYS}
        print(json.dumps({"scenario": name, **results[name]}))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "failure_whatif.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
