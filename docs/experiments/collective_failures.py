"""Collectives with failed spine links: ring all-reduce and all-to-all under ECMP, spraying and
split singlepath, with 0, 1 and 2 of leaf 0's uplinks down — the seed study's question for the
collective patterns (docs/network.md, "Collectives with failed links").

Run from the repository root: `python docs/experiments/collective_failures.py [--seeds N]`.
Fabric: 8 leaves × 4 hosts × 4 spines at 400 Gb/s (non-blocking: a leaf's 4 hosts fill its 4
uplinks), 32 ranks, one per host (`group=spread`), S = 8 MiB per rank, no per-step latency;
failed cables `leaf0-spine0` (f = 1) and also `leaf0-spine1` (f = 2), both directions. Each
cell is the completion time over the healthy closed form (`ideal_cct_s` of
`python -m wrpsim.net pattern=...`), the mean over `--seeds` seeds (default 5) for the fluid
engine and seed 0 for the packet engine (default transport `uec`). Writes
`collective_failures.json` next to this file; about two minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.network.collective_scenario import run_collective
from wrpsim.network.config import NetConfig

FABRIC = {"leaves": 8, "hosts_per_leaf": 4, "spines": 4, "host_gbps": 400}
KINDS = ("allreduce_ring", "alltoall")
LBS = ("ecmp", "spray", "split")
FAILED = {0: [], 1: ["leaf0-spine0"], 2: ["leaf0-spine0", "leaf0-spine1"]}
S = 8 << 20


def ratio(engine: str, lb: str, kind: str, failed: list, seed: int) -> float:
    """Completion time over the healthy fabric's closed form (the failed fabric's own ideal is
    larger: normalising by it would hide what the failure costs)."""
    def run(links):
        cfg = NetConfig.from_dict({"kind": engine, **FABRIC, "lb": lb, "failed_links": links})
        return run_collective(cfg, kind, S, seed, "spread", 32).summary

    s = run(failed)
    healthy_ideal = s["ideal_cct_s"] if not failed else run([])["ideal_cct_s"]
    return s["cct_s"] / healthy_ideal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for kind in KINDS:
        for lb in LBS:
            row = {"kind": kind, "lb": lb}
            for f, failed in FAILED.items():
                vals = [ratio("fluid", lb, kind, failed, s) for s in range(args.seeds)]
                row[f"fluid_f{f}"] = sum(vals) / len(vals)
                row[f"packet_f{f}"] = ratio("packet", lb, kind, failed, 0)
            rows.append(row)
            print(json.dumps(row), flush=True)
    Path(__file__).with_name("collective_failures.json").write_text(
        json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
