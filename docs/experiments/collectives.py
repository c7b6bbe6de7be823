"""The collectives table of docs/network.md: CCT over the closed form, 8 and 16 ranks spread
over 8 leaves (8 × 2 hosts × 2 spines, 400 Gb/s, non-blocking), S = 8 MiB, ECMP vs spray,
fluid vs packet (uec), seed 0. Writes collectives.json next to this file; about a minute."""

from __future__ import annotations

import json
from pathlib import Path

from wrpsim.network.collective_scenario import run_collective
from wrpsim.network.config import NetConfig

KINDS = ("allreduce_ring", "allreduce_tree", "allgather", "alltoall")


def main() -> None:
    rows = []
    for ranks in (8, 16):
        for kind in KINDS:
            row = {"ranks": ranks, "kind": kind}
            for engine in ("fluid", "packet"):
                for lb in ("ecmp", "spray"):
                    cfg = NetConfig.from_dict({"kind": engine, "leaves": 8, "hosts_per_leaf": 2,
                                               "spines": 2, "host_gbps": 400, "lb": lb})
                    s = run_collective(cfg, kind, 8 << 20, 0, "spread", ranks).summary
                    row["ideal_us"] = s["ideal_cct_s"] * 1e6
                    row[f"{engine}_{lb}"] = s["cct_ratio"]
                    row[f"{engine}_{lb}_busbw"] = s["busbw_gbps"]
            rows.append(row)
            print(json.dumps(row))
    Path(__file__).with_name("collectives.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
