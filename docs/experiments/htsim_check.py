"""wrpsim's packet engine against an independent packet simulator (htsim) on the same permutation.

Run from the repository root:

    python docs/experiments/htsim_check.py HTSIM_DATACENTER_DIR [seeds] [out_dir]

`HTSIM_DATACENTER_DIR` is the `sim/datacenter` folder of a built htsim (github.com/Broadcom/
csg-htsim, BSD-2-Clause; `cd sim && make && cd datacenter && make`; not a wrpsim dependency and
not shipped). Default 5 seeds, `docs/experiments/`.

For each seed it takes the permutation wrpsim draws for `python -m wrpsim.net
pattern=permutation` (16 leaves × 16 hosts × 16 spines, 400 Gb/s, 4 MiB per flow, 1 µs per
link), writes it as an htsim connection matrix, and runs:

- htsim's NDP and EQDS transports (trimming at full queues, receiver-driven; the transports
  the UEC work grew from) with its load balancers: `ecmp_host -paths 1` (one hashed path per
  flow: ECMP), `ecmp_host -paths 256` (every packet on one of 256 hashed entropy values:
  oblivious spraying), and for NDP also `rand` (a uniformly random path per packet) and `perm`
  (each source cycles through a random permutation of the 16 paths: perfectly balanced
  spraying);
- wrpsim's packet engine (`engine=packet`, default transport `uec`) with `lb` = `ecmp`,
  `spray` (256 entropies, round robin), `spray` with `spray=random`, `reps` and `split`.

Same topology, 4096-byte packets (htsim counts them as payload; wrpsim adds 64 header bytes),
2-BDP port buffers (200 packets), a 1.25-BDP window (125 packets). ECMP hashes differ between
the two simulators, so ECMP compares as a distribution over seeds, not seed by seed. Writes
`htsim_check.json` into `out_dir` and prints one JSON line per row; docs/network.md ("An
independent check: htsim") quotes it. About 15 minutes on one core for 5 seeds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.network.config import NetConfig
from wrpsim.network.patterns import flows as pattern_flows
from wrpsim.network.scenario import run_scenario
from wrpsim.network.topology import LeafSpine

M = 4 << 20
CUBE = {"leaves": 16, "hosts_per_leaf": 16, "spines": 16, "host_gbps": 400}
IDEAL_US = M * 8 / 400e9 * 1e6
TOPO = """Nodes 256
Tiers 2
Podsize 256

Tier 0
Downlink_speed_Gbps 400
Radix_Down 16
Radix_Up 16
Downlink_Latency_ns 1000
Switch_Latency_ns 0
Oversubscribed 1

Tier 1
Downlink_speed_Gbps 400
Radix_Down 16
Downlink_Latency_ns 1000
Switch_Latency_ns 0
"""
HTSIM_LBS = {"ecmp": ["-strat", "ecmp_host", "-paths", "1"],
             "spray_hashed_256": ["-strat", "ecmp_host", "-paths", "256"],
             "spray_random": ["-strat", "rand"],
             "spray_permutation": ["-strat", "perm"]}
#: htsim's EQDS driver knows only the hashed strategies (it reads `-strat rand` / `perm` as its
#: default, 64 hashed entropies), so it runs ECMP and hashed spraying only
HTSIM_CELLS = {"ndp": tuple(HTSIM_LBS), "eqds": ("ecmp", "spray_hashed_256")}
WRPSIM_LBS = {"ecmp": {"lb": "ecmp"}, "spray": {"lb": "spray"},
              "spray_random": {"lb": "spray", "spray": "random"}, "reps": {"lb": "reps"},
              "split": {"lb": "split"}}


def _stats(fcts_us: list[float]) -> tuple[float, float]:
    """(CCT, mean FCT) over the ideal M / C."""
    return max(fcts_us) / IDEAL_US, float(np.mean(fcts_us)) / IDEAL_US


def htsim_run(binary: Path, topo: Path, cm: Path, lb: list[str], seed: int) -> dict:
    """One htsim run; the flows' finish times (µs) parsed from its log."""
    cmd = [str(binary), "-nodes", "256", "-topo", str(topo), "-tm", str(cm), "-mtu", "4096",
           "-linkspeed", "400000", "-q", "200", "-cwnd", "125", "-hop_latency", "1",
           "-end", "100000", "-seed", str(seed + 1), *lb]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         cwd=topo.parent).stdout  # htsim writes its logs into the cwd
    fct = [float(x) for x in re.findall(r"finished at ([0-9.]+)", out)]
    if len(fct) != 256:
        raise RuntimeError(f"{' '.join(cmd)}: {len(fct)} of 256 flows finished")
    rtx = re.search(r"Rtx: (\d+)", out)
    cct, mean = _stats(fct)
    return {"cct": cct, "mean_fct": mean, "resends": int(rtx.group(1)) if rtx else None}


def main() -> None:
    htsim = Path(sys.argv[1])
    seeds = range(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    out_dir = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).parent
    cells: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / "leafspine16.topo"
        topo.write_text(TOPO)
        for seed in seeds:
            flows = pattern_flows(LeafSpine(NetConfig(**CUBE)), "permutation", M, seed)
            cm = Path(tmp) / f"perm{seed}.cm"
            lines = ["Nodes 256", f"Connections {len(flows)}"]
            lines += [f"{src}->{dst} id {i + 1} start 0 size {nbytes}"
                      for i, (src, dst, nbytes) in enumerate(flows)]
            cm.write_text("\n".join(lines) + "\n")
            for transport, lbs in HTSIM_CELLS.items():
                for lb in lbs:
                    args = HTSIM_LBS[lb]
                    r = htsim_run(htsim / f"htsim_{transport}", topo, cm, args, seed)
                    cells.setdefault(f"htsim {transport} {lb}", []).append(r)
            for lb, kw in WRPSIM_LBS.items():
                s = run_scenario(NetConfig(kind="packet", **CUBE, **kw), "permutation", M,
                                 seed).summary
                cells.setdefault(f"wrpsim uec {lb}", []).append(
                    {"cct": s["cct_ratio"], "mean_fct": s["mean_fct_s"] / s["ideal_cct_s"],
                     "resends": s.get("retransmits")})
    rows = []
    for name, rs in cells.items():
        row = {"cell": name, "seeds": len(rs),
               "cct": round(float(np.mean([r["cct"] for r in rs])), 3),
               "cct_per_seed": [round(r["cct"], 3) for r in rs],
               "mean_fct": round(float(np.mean([r["mean_fct"] for r in rs])), 3),
               "resends": [r["resends"] for r in rs]}
        rows.append(row)
        print(json.dumps(row))
    (out_dir / "htsim_check.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
