"""One standalone collective on a fabric: `python -m wrpsim.net pattern=allreduce_ring ...`.

`run_collective(cfg, kind, nbytes, seed, group, ranks, alpha_us, chunks)` picks the group's
endpoints (`group_endpoints`), runs the collective (`collectives.py`) alone on the fabric of
`cfg` from t = 0 in a SimPy environment through the transfer API — the same path a fleet run
takes — and returns a `ScenarioResult`: one row per flow (`COLLECTIVE_FLOW_SCHEMA`), one per
port (`LINK_SCHEMA`) and the summary.

Groups: `spread` (rank i on leaf i mod L, the next free port there: ranks on distinct leaves
while ranks <= leaves), `leaf` (the first `ranks` endpoints of leaf 0), `pack` (endpoints
0 .. ranks − 1: whole servers and leaves in order), or a list of endpoint ids (in ring order;
`ranks` is then not read: the CLI refuses a non-default one, `wrpsim.net.check_pattern_keys`).

Summary keys: those of `scenario.py` (`cct_s` is the collective's completion time;
`max_link_load` is over rate × this `ideal_cct_s`; `initial_rate_frac` is null: the flows do not
all start at t = 0), plus `ranks`, `group`, `alpha_us`, `chunks`, `steps` (flows on the longest
dependency chain of the DAG, `Collective.depth`), `bottleneck_gbps` (the slowest link the
group's flows use: the NIC rate, or the GPU link when every flow stays in a server),
`ideal_cct_s` (`ideal_s`: the larger of the heaviest dependency chain with every flow α after
its inputs and then alone at its link's rate, and α + ideal spraying's time for all the
collective's fabric bytes over the working paths — `theory.py`'s closed forms where those are
exact: the rings, the unpipelined tree of 2^k ranks, all-to-all's NIC and bisection bounds on a
healthy fabric), `algbw_gbps` (S / CCT) and `busbw_gbps` (algbw × NCCL's bus factor) and
`nvlink_flows`. `ideal_cct_s` is a lower bound on the completion time in both engines on a
healthy fabric or one whose failed links are down; it is not always reached (a tree of other
than 2^k ranks receives two children at once: 3 ranks take 3α + 4S/B against 3(α + S/B)).
With a degraded link or a link down in one direction only, its second term is ideal *even*
spraying's time, which a split that weighs the paths unevenly can beat.
"""

from __future__ import annotations

import math
import time

import simpy

from wrpsim.errors import ConfigError
from wrpsim.network import theory
from wrpsim.network.collectives import Collective, longest_chain, start_collective
from wrpsim.network.config import NetConfig, check_packets
from wrpsim.network.packet import PacketEngine
from wrpsim.network.paths import ideal_cct_s, offered_bytes
from wrpsim.network.records import COLLECTIVE_FLOW_SCHEMA, LINK_SCHEMA, to_table
from wrpsim.network.scenario import ScenarioResult, fabric_port_figures, port_rows
from wrpsim.network.topology import LeafSpine
from wrpsim.network.transfer import Fabric

GROUPS = ("leaf", "pack", "spread")


def group_endpoints(topo: LeafSpine, group, ranks) -> list[int]:
    """Endpoint ids of the group (module docstring); ConfigError naming `group` or `ranks`."""
    if isinstance(group, (list, tuple)):
        ids = list(group)
        for e in ids:
            if isinstance(e, bool) or not isinstance(e, int) or not 0 <= e < topo.n:
                raise ConfigError(f"group: endpoint {e!r} is not an endpoint id in "
                                  f"0..{topo.n - 1}")
        dup = sorted({e for e in ids if ids.count(e) > 1})
        if dup:
            raise ConfigError(f"group: endpoint {dup[0]} listed twice")
        if len(ids) < 2:
            raise ConfigError(f"group needs at least 2 endpoints, got {ids}")
        return ids
    if group not in GROUPS:
        raise ConfigError(f"group: unknown value {group!r}; valid choices: leaf, pack, spread, "
                          f"or a list of endpoint ids like [0, 5, 10]")
    limit = topo.H if group == "leaf" else topo.n
    if limit < 2:
        where = "hosts_per_leaf" if group == "leaf" else "leaves x hosts_per_leaf"
        raise ConfigError(f"group={group}: a collective needs at least 2 endpoints and this "
                          f"fabric has {limit} ({where})")
    if isinstance(ranks, bool) or not isinstance(ranks, int) or not 2 <= ranks <= limit:
        where = "hosts_per_leaf" if group == "leaf" else "endpoints"
        raise ConfigError(f"ranks must be an integer in 2..{limit} ({where}) with group={group},"
                          f" got {ranks!r}")
    if group == "pack":
        return list(range(ranks))
    by_leaf: dict[int, list[int]] = {}
    for e in range(topo.n):
        by_leaf.setdefault(topo.leaf_of[e], []).append(e)
    if group == "leaf":
        return by_leaf[0][:ranks]
    order = [by_leaf[leaf][k] for k in range(topo.H) for leaf in sorted(by_leaf)]
    return order[:ranks]


#: the most pieces a tree message is cut into (`chunks`): each piece is a flow on every edge of
#: the tree, both ways (2 (ranks - 1) chunks flows): 4096 keeps an 8-rank tree to seconds and a
#: piece of a 1 GiB buffer at 256 KiB; past it the DAG alone took minutes to build.
MAX_CHUNKS = 4096


def _check(alpha_us, chunks, nbytes: int) -> None:
    if isinstance(alpha_us, bool) or not isinstance(alpha_us, (int, float)) or \
            not 0 <= alpha_us <= 1e9:
        raise ConfigError(f"alpha_us must be a finite number in [0, 1e+09] (microseconds), got "
                          f"{alpha_us!r}")
    top = min(MAX_CHUNKS, max(nbytes, 1))
    if isinstance(chunks, bool) or not isinstance(chunks, int) or not 1 <= chunks <= top:
        raise ConfigError(f"chunks must be an integer in 1..{top} (at most {MAX_CHUNKS:,} and "
                          f"at most flow_bytes={nbytes:,}: no empty pieces), got {chunks!r}")


def ideal_s(topo: LeafSpine, coll: Collective) -> float:
    """The ideal completion time of `coll` alone on the fabric of `topo` (module docstring):
    the larger of its heaviest dependency chain — every flow α after its inputs, then alone at
    its link's rate (fabric: the NIC rate; same server: bytes / `nvlink_gbps`, 0 when null) —
    and α + ideal spraying's time for all its fabric bytes over the working paths."""
    ranks, a = coll.ranks, coll.alpha_s
    server = topo.server_of
    nv = topo.cfg.nvlink_gbps
    steps = coll.steps()
    fabric = [(ranks[s.src], ranks[s.dst], s.nbytes) for s in steps
              if server[ranks[s.src]] != server[ranks[s.dst]]]

    def alone(_i, s) -> float:
        if server[ranks[s.src]] != server[ranks[s.dst]]:
            return a + s.nbytes * 8 / topo.host_bps
        return a + (0.0 if nv is None else s.nbytes * 8 / (nv * 1e9))

    chain = longest_chain(steps, alone)
    return max(chain, a + ideal_cct_s(topo, fabric)) if fabric else chain


def run_collective(cfg: NetConfig, kind: str, nbytes: int, seed: int, group="spread",
                   ranks=8, alpha_us: float = 0.0, chunks: int = 1) -> ScenarioResult:
    """Simulate one collective alone on the fabric of `cfg` (module docstring)."""
    t0 = time.perf_counter()
    _check(alpha_us, chunks, nbytes)
    fabric = Fabric(cfg, seed)
    topo = fabric.topo
    members = group_endpoints(topo, group, ranks)
    coll = Collective(kind, tuple(members), nbytes, alpha_us * 1e-6, chunks)
    server = topo.server_of
    check_packets(cfg, (s.nbytes for s in coll.steps()
                        if server[members[s.src]] != server[members[s.dst]]),
                  f"the fabric flows of {kind} over {len(members)} ranks")
    fabric.conn_log = []
    env = simpy.Environment()
    fabric.attach(env)
    run = start_collective(fabric, coll)
    t1 = time.perf_counter()
    env.run()
    t2 = time.perf_counter()
    eng = fabric.engine
    packet = isinstance(eng, PacketEngine)
    cct = run.finish - run.start
    conns = fabric.conn_log
    by_flow = fabric.flow_conns()
    rows, nvlink, fcts = [], 0, []
    for i, s in enumerate(run.steps):
        src, dst = members[s.src], members[s.dst]
        (fid,) = fabric.flow_ids(run.xfer[i])
        _, _, _, start, fin = fabric.flow(fid)
        cids = by_flow.get(fid, [])
        link = "fabric" if cids else "nvlink" if s.nbytes > 0 else "none"
        nvlink += link == "nvlink"
        cs = [conns[c] for c in cids]
        spray = any(c.spray for c in cs)
        spines = [] if spray or topo.same_leaf(src, dst) else \
            [(c.paths[0][1] - 2 * topo.n) % topo.S for c in cs]
        pk = [None] * 5
        if packet and cids:
            pk = [sum(eng.sent(c) for c in cids), sum(eng.conns[c].retx for c in cids),
                  sum(eng.conns[c].drops for c in cids), sum(eng.conns[c].ooo for c in cids),
                  max(eng.conns[c].maxdist for c in cids)]
        fcts.append(fin - start)
        rows.append((i, s.step, s.src, s.dst, src, dst, topo.leaf_of[src], topo.leaf_of[dst],
                     s.nbytes, link, list(s.deps), len(cids), spines, spray,
                     run.ready_s[i] - run.start, start - run.start, fin - run.start,
                     fin - start, *pk))
    fabric_flows = len(rows) - nvlink
    rate = topo.host_bps if fabric_flows else (cfg.nvlink_gbps or math.inf) * 1e9
    ideal = ideal_s(topo, coll)
    port_bytes = [float(b) for b in (eng.pbytes if packet else eng.port_bytes)]
    offered = offered_bytes(topo, conns)
    max_load, carried_ratio = fabric_port_figures(topo, offered, port_bytes, ideal)
    links = port_rows(topo, eng, port_bytes, offered, cct)
    algbw = nbytes * 8 / cct / 1e9 if cct > 0 else None
    summary = {
        "engine": cfg.kind, "pattern": kind, "lb": cfg.lb, "leaves": cfg.leaves,
        "hosts_per_leaf": cfg.hosts_per_leaf, "spines": cfg.spines,
        "host_gbps": cfg.host_gbps, "uplink_gbps": topo.uplink_bps / 1e9,
        "oversubscription": topo.oversubscription, "flow_bytes": nbytes, "seed": seed,
        "group": group if isinstance(group, str) else list(group), "ranks": coll.n,
        "alpha_us": alpha_us, "chunks": chunks, "steps": coll.depth(),
        "down_ports": len(topo.down_ports), "degraded_ports": len(topo.degraded),
        "flows": len(rows), "nvlink_flows": nvlink, "conns": len(conns),
        "bottleneck_gbps": rate / 1e9 if rate < math.inf else None,
        "cct_s": cct, "ideal_cct_s": ideal, "cct_ratio": cct / ideal if ideal > 0 else None,
        "max_link_load": max_load, "max_link_carried_ratio": carried_ratio,
        "initial_rate_frac": None,  # flows start at different times: no single t = 0 rate
        "algbw_gbps": algbw,
        "busbw_gbps": algbw * theory.collective_bus_factor(kind, coll.n) if algbw else None,
        "mean_fct_s": sum(fcts) / len(fcts) if fcts else 0.0, "max_fct_s": max(fcts, default=0.0),
        "data_packets": None, "out_of_order_packets": None, "retransmits": None, "drops": None,
        "trims": None, "ecn_marks": None, "control_packets": None, "max_reorder_distance": None,
        "transport": cfg.transport if packet else None,
    }
    if packet:
        summary.update(eng.stats())
    summary["engine_wall_s"] = t2 - t1
    summary["sim_wall_s"] = time.perf_counter() - t0
    return ScenarioResult(to_table(rows, COLLECTIVE_FLOW_SCHEMA), to_table(links, LINK_SCHEMA),
                          summary)
