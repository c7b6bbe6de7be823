"""One standalone network scenario: a traffic pattern on a fabric, simulated by one engine.

`run_scenario(cfg, pattern, flow_bytes, seed)` builds the topology, the pattern's flows (all
started at t = 0) and their connections (`cfg.lb`), runs `cfg.kind` (fluid or packet) to the
end and returns a `ScenarioResult`: the flows and links tables (`records.py`) and the summary.
A flow between two GPUs of one server (`gpus_per_host` > 1) never touches the fabric, in
either engine: it takes the GPU link, whose `nvlink_gbps` each way a GPU's concurrent NVLink
flows share max-min fairly (`nvlink_times`), and its row has 0 connections and 0 packets.

Summary keys: `cct_s` (collective completion time: the last flow's finish), `ideal_cct_s`
(the larger of ideal spraying's time for the fabric flows over the working paths,
`paths.ideal_cct_s`, and the most NVLink bytes one GPU sends or receives over `nvlink_gbps`,
`nvlink_port_bound_s`), `cct_ratio`, `nvlink_flows`,
`max_link_load` (the most loaded fabric port's offered bytes over rate × ideal spraying's time
for the fabric flows: 1.0 means as balanced as ideal spraying; offered bytes spread a sprayed
connection evenly over its paths),
`max_link_carried_ratio` (the busiest working fabric port's bytes as the engine carried them —
on the packet engine headers, ACKs and resends included — over the mean of the working fabric
ports': 1.0 when the traffic spread evenly, whatever the load balancer), `mean_fct_s`,
`max_fct_s`, `down_ports` and `degraded_ports` (`failed_links`:
ports down, ports up at a reduced rate), `initial_rate_frac` (fluid: mean max-min flow rate at
t = 0 over the host rate), `data_packets`, `out_of_order_packets`, `retransmits`, `drops`,
`trims`, `ecn_marks`, `control_packets`, `max_reorder_distance` and `transport` (packet; null
for fluid), `sim_wall_s` (whole scenario) and `engine_wall_s` (the event
loop).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from wrpsim.network.config import NetConfig, check_flows, check_packets
from wrpsim.network.fluid import FluidEngine
from wrpsim.network.packet import PacketEngine
from wrpsim.network.paths import LoadBalancer, ideal_cct_s, offered_bytes
from wrpsim.network.patterns import flows as pattern_flows
from wrpsim.network.records import FLOW_SCHEMA, LINK_SCHEMA, to_table
from wrpsim.network.topology import PS_PER_S, LeafSpine


@dataclass
class ScenarioResult:
    """Tables and summary of one scenario."""

    flows: pa.Table
    links: pa.Table
    summary: dict


def run_scenario(cfg: NetConfig, pattern: str, flow_bytes: int, seed: int) -> ScenarioResult:
    """Simulate `pattern` with `flow_bytes` per flow on the fabric of `cfg` (module docstring)."""
    t0 = time.perf_counter()
    topo = LeafSpine(cfg)
    flows = pattern_flows(topo, pattern, flow_bytes, seed)
    nvlink_s = nvlink_times(topo, flows)
    net = [i for i, (s, d, _) in enumerate(flows) if topo.server_of[s] != topo.server_of[d]]
    check_flows(cfg, len(net), f"the {len(net):,} fabric flows of {pattern}")
    check_packets(cfg, (flows[i][2] for i in net), f"the {len(net):,} fabric flows of {pattern}")
    conns = [c._replace(flow=net[c.flow])  # index into `flows`, not into the fabric's subset
             for c in LoadBalancer(topo, seed).connections([flows[i] for i in net])]
    fabric_ideal = ideal_cct_s(topo, [flows[i] for i in net]) if net else 0.0
    ideal = max(fabric_ideal, nvlink_port_bound_s(topo, flows))
    packet = cfg.kind == "packet"
    extra: dict = {}
    t1 = time.perf_counter()
    if packet:
        eng = PacketEngine(topo, seed)
        for c in conns:
            eng.add(c, 0)
        eng.run()
        t2 = time.perf_counter()
        finish = [f / PS_PER_S for f in eng.column("finish")]
        port_bytes = [float(b) for b in eng.pbytes]
        extra = eng.stats()
    else:
        eng = FluidEngine(topo)
        for c in conns:
            eng.add(c)
        eng.next_time()
        flow_rate = np.bincount([c.flow for c in conns], eng.rate, minlength=len(flows))
        inter = [i for i in net if flows[i][2] > 0]
        extra["initial_rate_frac"] = float(flow_rate[inter].mean() * 8 / topo.host_bps) \
            if inter else None
        eng.run()
        t2 = time.perf_counter()
        finish = list(eng.finish_s)
        port_bytes = [float(b) for b in eng.port_bytes]
    flow_fin = [nvlink_s.get(i, 0.0) for i in range(len(flows))]
    by_flow: dict[int, list[int]] = {}
    for cid, c in enumerate(conns):
        flow_fin[c.flow] = max(flow_fin[c.flow], finish[cid])
        by_flow.setdefault(c.flow, []).append(cid)
    cct = max(flow_fin, default=0.0)
    offered = offered_bytes(topo, conns)
    max_load, carried_ratio = fabric_port_figures(topo, offered, port_bytes, fabric_ideal)
    flow_rows = _flow_rows(topo, flows, conns, by_flow, flow_fin, eng if packet else None)
    link_rows = port_rows(topo, eng, port_bytes, offered, cct)
    fcts = [flow_fin[i] for i in [*by_flow, *nvlink_s]]
    summary = {
        "engine": cfg.kind, "pattern": pattern, "lb": cfg.lb, "leaves": cfg.leaves,
        "hosts_per_leaf": cfg.hosts_per_leaf, "spines": cfg.spines,
        "host_gbps": cfg.host_gbps, "uplink_gbps": topo.uplink_bps / 1e9,
        "oversubscription": topo.oversubscription, "flow_bytes": flow_bytes, "seed": seed,
        "down_ports": len(topo.down_ports), "degraded_ports": len(topo.degraded),
        "flows": len(flows), "nvlink_flows": len(nvlink_s), "conns": len(conns),
        "cct_s": cct, "ideal_cct_s": ideal, "cct_ratio": cct / ideal if ideal > 0 else None,
        "max_link_load": max_load, "max_link_carried_ratio": carried_ratio,
        "mean_fct_s": float(np.mean(fcts)) if fcts else 0.0, "max_fct_s": max(fcts, default=0.0),
        "initial_rate_frac": None, "data_packets": None, "out_of_order_packets": None,
        "retransmits": None, "drops": None, "trims": None, "ecn_marks": None,
        "control_packets": None, "max_reorder_distance": None,
        "transport": cfg.transport if packet else None,
    }
    summary.update(extra)
    summary["engine_wall_s"] = t2 - t1
    summary["sim_wall_s"] = time.perf_counter() - t0
    return ScenarioResult(to_table(flow_rows, FLOW_SCHEMA), to_table(link_rows, LINK_SCHEMA),
                          summary)


def fabric_port_figures(topo: LeafSpine, offered: list[float], port_bytes: list[float],
                        ideal: float) -> tuple[float, float | None]:
    """(`max_link_load`, `max_link_carried_ratio`) over the fabric ports (leaf_up,
    spine_down): the largest offered bytes × 8 / (rate × `ideal`) (0 when `ideal` is 0), and
    the busiest working port's carried bytes over the mean of the working ports' (None when
    they carried nothing)."""
    fabric = [p for p in range(topo.nports) if topo.kind[p] in ("leaf_up", "spine_down")]
    max_load = max((8 * offered[p] / (topo.rate[p] * ideal) for p in fabric),
                   default=0.0) if ideal > 0 else 0.0
    working = [port_bytes[p] for p in fabric if topo.port_up[p]]
    mean_carried = sum(working) / len(working) if working else 0.0
    return max_load, max(working) / mean_carried if mean_carried > 0 else None


def nvlink_times(topo: LeafSpine, flows: list[tuple[int, int, int]]) -> dict[int, float]:
    """{flow index: completion time} of the flows between two GPUs of one server: they take the
    server's scale-up link without touching the fabric. A GPU's link runs at `nvlink_gbps` each
    way, and the NVLink flows it sends (receives) at once share its egress (ingress) max-min
    fairly, as the fluid fabric shares a port: the rates are water-filled over the GPUs' out
    and in ports and filled again whenever a flow ends (`_max_min_times`); all of them start
    at t = 0. `nvlink_gbps: null`: instantaneous (0)."""
    rate = topo.cfg.nvlink_gbps
    local = [(i, s, d, b) for i, (s, d, b) in enumerate(flows)
             if topo.server_of[s] == topo.server_of[d] and s != d and b > 0]
    if rate is None:
        return {i: 0.0 for i, _, _, _ in local}
    fin = _max_min_times([((s, 0), (d, 1)) for _, s, d, _ in local],
                         [b * 8.0 for _, _, _, b in local], rate * 1e9)
    return {i: t for (i, _, _, _), t in zip(local, fin)}


def nvlink_port_bound_s(topo: LeafSpine, flows: list[tuple[int, int, int]]) -> float:
    """A lower bound on the NVLink flows' completion: the most bytes one GPU sends or receives
    over NVLink, at `nvlink_gbps` (0 when null or without such flows). `nvlink_times` meets it
    when every GPU's busiest direction carries the same bytes (all_to_all, rings)."""
    rate = topo.cfg.nvlink_gbps
    load: dict[tuple[int, int], int] = {}
    for s, d, b in flows:
        if topo.server_of[s] == topo.server_of[d] and s != d and b > 0:
            load[s, 0] = load.get((s, 0), 0) + b
            load[d, 1] = load.get((d, 1), 0) + b
    if rate is None or not load:
        return 0.0
    return max(load.values()) * 8 / (rate * 1e9)


def _max_min_times(ports: list[tuple], bits: list[float], cap: float) -> list[float]:
    """Completion times of flows that all start at t = 0, flow k crossing the ports `ports[k]`
    (each of capacity `cap` bit/s) with `bits[k]` bits, under max-min fair rates recomputed at
    every completion (progressive filling: the port with the smallest fair share fixes the rate
    of its unfixed flows, whose rates leave the others' ports)."""
    n = len(bits)
    left = list(bits)
    fin = [0.0] * n
    active = set(range(n))
    t = 0.0
    while active:
        rate: dict[int, float] = {}
        room: dict = {}
        users: dict = {}
        for k in active:
            for p in ports[k]:
                room[p] = cap
                users.setdefault(p, set()).add(k)
        while len(rate) < len(active):
            p = min((q for q in users if users[q]), key=lambda q: (room[q] / len(users[q]), q))
            share = room[p] / len(users[p])
            for k in list(users[p]):
                rate[k] = share
                for q in ports[k]:
                    room[q] -= share
                    users[q].discard(k)
        dt = min(left[k] / rate[k] for k in active)
        t += dt
        done = [k for k in active if left[k] / rate[k] <= dt * (1 + 1e-12)]
        for k in active:
            left[k] -= rate[k] * dt
        for k in done:
            fin[k] = t
            active.discard(k)
    return fin


def port_rows(topo: LeafSpine, eng, port_bytes: list[float], offered: list[float],
              cct: float) -> list[tuple]:
    """Rows of the links table (`LINK_SCHEMA`) from an engine after its run. Utilisation is
    the share of the time to `cct` (the last flow's end) the port was sending: its bytes over
    rate x `cct`, at most 1 — the packet engine also counts the bytes of duplicates still
    draining after the last flow ended (a sprayed resend queued behind a degraded link), which
    a port sent after `cct`, since it cannot send more than rate x `cct` before it."""
    packet = isinstance(eng, PacketEngine)
    pc = eng.port_counters() if packet else None
    rows = []
    for p in range(topo.nports):
        util = 8 * port_bytes[p] / (topo.rate[p] * cct) if cct > 0 else 0.0
        util = util if util < 1.0 else 1.0
        rate_gbps = topo.rate[p] / 1e9 if topo.port_up[p] else 0.0  # 0: the port is down
        rows.append((
            p, topo.kind[p], topo.src_node[p], topo.dst_node[p], rate_gbps, offered[p],
            port_bytes[p], util,
            None if packet else int(eng.port_max_conns[p]),
            pc["maxq_ps"][p] * topo.rate[p] / (8 * PS_PER_S) if packet else None,
            pc["drops"][p] if packet else None, pc["trims"][p] if packet else None,
            pc["marks"][p] if packet else None,
        ))
    return rows


def _flow_rows(topo, flows, conns, by_flow, flow_fin, eng) -> list[tuple]:
    rows = []
    S = topo.S
    for i, (src, dst, nbytes) in enumerate(flows):
        cids = by_flow.get(i, [])
        cs = [conns[c] for c in cids]
        spray = any(c.spray for c in cs)
        spines = [] if spray or topo.same_leaf(src, dst) else \
            [(c.paths[0][1] - 2 * topo.n) % S for c in cs]
        pk = [None] * 5
        if eng is not None:
            pk = [sum(eng.sent(c) for c in cids), sum(eng.conns[c].retx for c in cids),
                  sum(eng.conns[c].drops for c in cids), sum(eng.conns[c].ooo for c in cids),
                  max((eng.conns[c].maxdist for c in cids), default=0)]
        fin = flow_fin[i]  # an NVLink flow's too (no connection); 0 for a zero-byte flow
        link = ("none" if not nbytes else
                "nvlink" if topo.server_of[src] == topo.server_of[dst] else "fabric")
        rows.append((i, src, dst, topo.leaf_of[src], topo.leaf_of[dst], nbytes, link, len(cids),
                     spines, spray, 0.0, fin, fin, *pk))
    return rows
