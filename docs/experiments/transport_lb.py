"""Load balancing under real transports on the 16×16×16 permutation (issue 13, items 1–2).

Run from the repository root: `python docs/experiments/transport_lb.py [seeds] [out_dir]`
(default 3 seeds, `docs/experiments/`). It simulates, with wrpsim's public API (`run_scenario`,
the engine of `python -m wrpsim.net engine=packet`):

- `cube`: 16 leaves × 16 hosts × 16 spines at 400 Gb/s, 4 MiB per flow, every host sending to
  a host on another leaf (a random permutation per seed), the default transport (`uec`), each
  load-balancing mode; the same seeds for every mode;
- `transports`: the 8 × 8 × 8 fabric, seeds 0–2, every transport with ECMP, oblivious
  spraying, REPS and split (go-back-N with spraying is slow to simulate at 16 × 16 × 16).

It prints one JSON line per row and writes `transport_lb.json` into `out_dir`; docs/network.md
("Transports and load balancing: the study") quotes it. About 5 minutes on one core for 3
seeds. Times are relative to ideal spraying's fluid completion time M/C = 83.9 µs (the packet
engine also carries 64 header bytes per 4096-byte packet and the ACKs, so 1.03–1.07 is the
floor of every mode).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.network.config import NetConfig
from wrpsim.network.scenario import run_scenario

M = 4 << 20
CUBE_LBS = ("ecmp", "ecmp_subflows", "spray", "reps", "bitmap", "flowlet", "split")
SMALL_LBS = ("ecmp", "spray", "reps", "split")
TRANSPORTS = ("uec", "dctcp", "roce")


def row(size: int, seeds, **kw) -> dict:
    """Mean over `seeds` (and the per-seed values) of the CCT and mean FCT over ideal, and the
    packet counters."""
    cube = {"leaves": size, "hosts_per_leaf": size, "spines": size, "host_gbps": 400}
    rows = [run_scenario(NetConfig(kind="packet", **cube, **kw), "permutation", M, s).summary
            for s in seeds]
    cct = [r["cct_ratio"] for r in rows]
    fct = [r["mean_fct_s"] / r["ideal_cct_s"] for r in rows]
    out = {"size": size, **kw, "seeds": len(rows), "cct": round(float(np.mean(cct)), 3),
           "cct_per_seed": [round(c, 3) for c in cct],
           "mean_fct": round(float(np.mean(fct)), 3)}
    for key in ("retransmits", "trims", "drops", "ecn_marks", "out_of_order_packets"):
        out[key] = int(np.mean([r[key] for r in rows]))
    out["engine_wall_s"] = round(float(np.mean([r["engine_wall_s"] for r in rows])), 1)
    print(json.dumps(out), flush=True)
    return out


def main(argv: list[str]) -> None:
    seeds = range(int(argv[0]) if argv else 3)
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent
    res = {"cube": [row(16, seeds, lb=lb) for lb in CUBE_LBS],
           "transports": [row(8, range(3), lb=lb, transport=tr)
                          for tr in TRANSPORTS for lb in SMALL_LBS]}
    out_dir.mkdir(parents=True, exist_ok=True)  # (a new folder: the rows were lost at the end)
    (out_dir / "transport_lb.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
