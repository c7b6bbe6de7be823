"""Check that two source trees simulate byte-identical standalone network scenarios (for speed
work on the packet engine; `check_identical.py` does the same for fleet runs).

Usage::

    python benchmarks/check_identical_net.py --base /path/to/base-tree [--head .] \
        [--random 400] [--pure]

Runs, in each tree (a subprocess with `PYTHONPATH` set to it), a fixed set of packet-engine
scenarios — every transport × load balancer on a permutation and on all-to-all with small
buffers, failed and degraded links, 16 × 16 × 16 permutations — and `--random` more drawn from a
seeded generator (topology sizes, transports, load balancers, buffers, windows, RTOs,
propagation delays, reorder windows, failed links, two-GPU hosts, packet sizes up to 4 MiB,
flow sizes, the three traffic patterns and the five collectives, which run through SimPy); each
case's summary (less its wall times) and a hash of its flows and links tables must be equal.
`--pure` runs the head tree with `WRPSIM_PURE=1`. Prints one line and exits 1 if any case differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

#: what each tree runs: prints {case: [config, summary, table hash] or [config, error]}
CHILD = r'''
import hashlib, json, random, sys
from wrpsim.network.collective_scenario import run_collective
from wrpsim.network.config import NetConfig
from wrpsim.network.scenario import run_scenario

WALL = {"sim_wall_s", "engine_wall_s"}
TRANSPORTS = ("uec", "dctcp", "roce")
LBS = ("ecmp", "ecmp_subflows", "spray", "reps", "bitmap", "flowlet", "split")


def fixed():
    base = {"kind": "packet", "leaves": 4, "hosts_per_leaf": 4, "spines": 4, "host_gbps": 400}
    for tr in TRANSPORTS:
        for lb in LBS:
            yield {**base, "transport": tr, "lb": lb}, "permutation", 1 << 20
            yield {**base, "transport": tr, "lb": lb, "buffer_bytes": 65536}, "all_to_all", 1 << 17
    for tr in TRANSPORTS:
        yield ({**base, "transport": tr, "lb": "spray", "spray": "random",
                "failed_links": ["leaf 0 - spine 1"]}, "permutation", 1 << 20)
        yield ({**base, "transport": tr, "lb": "reps",
                "failed_links": [{"leaf": 1, "spine": 2, "rate_factor": 0.5}]},
               "ring_allreduce", 1 << 20)
    big = {"kind": "packet", "leaves": 16, "hosts_per_leaf": 16, "spines": 16, "host_gbps": 400}
    for lb in ("ecmp", "spray", "split", "bitmap"):
        yield {**big, "lb": lb}, "permutation", 1 << 20


def drawn(i):
    r = random.Random(i)
    L, H, S = r.choice((2, 3, 4)), r.choice((1, 2, 3, 4)), r.choice((1, 2, 3, 4))
    d = {"kind": "packet", "leaves": L, "hosts_per_leaf": H, "spines": S,
         "host_gbps": r.choice((100, 400)), "transport": r.choice(TRANSPORTS),
         "lb": r.choice(LBS)}
    for key, p, values in (("buffer_bytes", 0.4, (16384, 40000, 100000)),
                           ("oversubscription", 0.3, (2.0, 4.0)), ("spray", 0.3, ("random",)),
                           ("window_packets", 0.3, (4, 16, 64)), ("rto_us", 0.2, (5.0, 20.0)),
                           ("prop_delay_ns", 0.2, (10, 300)), ("reorder_window", 0.2, (8, 32)),
                           ("gpus_per_host", 0.2, (2,)),
                           ("mtu_bytes", 0.3, (1500, 9000, 262144, 4 << 20))):
        if r.random() < p:
            d[key] = r.choice(values)
    if d.get("buffer_bytes", 1 << 62) < d.get("mtu_bytes", 0) * 2:
        del d["buffer_bytes"]  # (a buffer must hold a packet: keep the large-packet cases)
    if r.random() < 0.2 and S > 1:
        d["failed_links"] = [f"leaf 0 - spine {S - 1}"]
    nbytes = r.choice((1, 3000, 50_000, 300_000, 6 << 20 if d.get("mtu_bytes", 0) > 9000 else 1))
    if r.random() < 0.35:
        kind = r.choice(("allreduce_ring", "allreduce_tree", "allgather", "reducescatter",
                         "alltoall"))
        return d, kind, nbytes, {"ranks": min(4, L * H), "chunks": r.choice((1, 2))}
    return d, r.choice(("permutation", "all_to_all", "ring_allreduce")), nbytes, None


out = {}
cases = [(d, p, n, None) for d, p, n in fixed()]
cases += [drawn(i) for i in range(int(sys.argv[1]))]
for i, (d, pattern, nbytes, coll) in enumerate(cases):
    try:
        cfg = NetConfig.from_dict(d)
        res = (run_collective(cfg, pattern, nbytes, seed=i, **coll) if coll else
               run_scenario(cfg, pattern, nbytes, seed=i))
    except Exception as exc:  # (a config the generator drew that the engine refuses)
        out[i] = [d, f"{type(exc).__name__}: {exc}"]
        continue
    h = hashlib.sha256()
    for table in (res.flows, res.links):
        h.update(json.dumps(table.to_pylist(), sort_keys=True, default=str).encode())
    out[i] = [d, {k: v for k, v in res.summary.items() if k not in WALL}, h.hexdigest()]
json.dump(out, sys.stdout, sort_keys=True, default=str)
'''


def run(tree: Path, n: int, pure: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    if pure:
        env["WRPSIM_PURE"] = "1"
    p = subprocess.run([sys.executable, "-c", CHILD, str(n)], cwd=tree, env=env,
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{tree}: the scenarios failed:\n{p.stderr}")
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, type=Path)
    ap.add_argument("--head", default=Path(__file__).resolve().parents[1], type=Path)
    ap.add_argument("--random", type=int, default=400)
    ap.add_argument("--pure", action="store_true")
    args = ap.parse_args()
    for flag, tree in (("--base", args.base), ("--head", args.head)):
        if not (tree / "wrpsim" / "network" / "packet.py").is_file():
            ap.error(f"{flag} {tree}: not a wrpsim source tree (no wrpsim/network/packet.py)")
    if args.random < 0:
        ap.error(f"--random must be >= 0, got {args.random}")
    base = run(args.base.resolve(), args.random, False)
    head = run(args.head.resolve(), args.random, args.pure)
    differ = sorted((k for k in base if base[k] != head.get(k)), key=int)
    ran = sum(1 for v in head.values() if len(v) == 3)
    print(f"{len(base) - len(differ)}/{len(base)} cases identical ({ran} ran, "
          f"{len(base) - ran} refused by both); base {args.base}, head {args.head}"
          f"{' (pure)' if args.pure else ''}")
    for k in differ[:10]:
        print(f"  differs: case {k}: {json.dumps(base[k][0])}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
