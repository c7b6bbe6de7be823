"""Hypothesis invariants of both engines on random small fabrics and flow sets."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wrpsim.network.config import NetConfig
from wrpsim.network.fluid import FluidEngine
from wrpsim.network.packet import PacketEngine
from wrpsim.network.paths import LoadBalancer, ideal_cct_s
from wrpsim.network.topology import LeafSpine


@st.composite
def scenarios(draw):
    cfg = dict(
        leaves=draw(st.integers(1, 4)), hosts_per_leaf=draw(st.integers(1, 4)),
        spines=draw(st.integers(1, 4)),
        lb=draw(st.sampled_from(["ecmp", "ecmp_subflows", "spray", "reps", "bitmap", "flowlet",
                                 "split"])),
        subflows=draw(st.integers(1, 3)),
        spray=draw(st.sampled_from(["round_robin", "random"])),
        mtu_bytes=draw(st.sampled_from([1000, 4096])),
        buffer_bytes=draw(st.sampled_from([None, 5000, 20_000])),
        window_packets=draw(st.sampled_from([None, 1, 8, 40])),
        transport=draw(st.sampled_from(["uec", "dctcp", "roce"])),
        header_bytes=draw(st.sampled_from([0, 64])),
        entropies=draw(st.sampled_from([1, 5, 256])),
        reorder_window=draw(st.sampled_from([2, 256])),
        prop_delay_ns=draw(st.sampled_from([0, 100, 1000])),
        uplink_gbps=draw(st.sampled_from([None, 100.0])),
    )
    n = cfg["leaves"] * cfg["hosts_per_leaf"]
    flows = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                    st.integers(1, 60_000)), min_size=1, max_size=8))
    return cfg, flows, draw(st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_packet_engine_delivers_everything_once(sc):
    cfg, flows, seed = sc
    eng, topo, conns = _delivered(cfg, flows, seed)
    st_ = eng.stats()
    if cfg["transport"] == "uec":  # trimmed, never dropped; one resend per trim
        assert st_["drops"] == 0 and st_["retransmits"] == st_["trims"]
        # the bounded reorder window: nothing arrives reorder_window packets behind
        assert st_["max_reorder_distance"] < cfg["reorder_window"]
    else:  # every lost copy is sent again; reordering adds spurious resends
        assert st_["trims"] == 0 and st_["retransmits"] >= st_["drops"]
    assert st_["data_packets"] == sum(eng.column("npk")) + st_["retransmits"]
    assert eng.idle()  # nothing left in flight
    for cid, c in enumerate(conns):  # one path, equal rates: no faster than oracle 1
        if len(c.paths) == 1 and len({topo.rate[p] for p in c.paths[0]}) == 1:
            assert eng.conns[cid].finish >= topo.min_latency_ps(c.nbytes, c.src, c.dst)
    live = [f for f in flows if f[0] != f[1]]
    if live:
        assert max(eng.column("finish")) / 1e12 >= ideal_cct_s(topo, live) * (1 - 1e-9)


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_fluid_rates_feasible_and_work_conserving(sc):
    cfg, flows, seed = sc
    topo = LeafSpine(NetConfig(kind="fluid", **cfg))
    conns = LoadBalancer(topo, seed).connections(flows)
    eng = FluidEngine(topo)
    for c in conns:
        eng.add(c)
    while (t := eng.next_time()) is not None:
        load = np.bincount(eng.e_port, eng.e_coef * eng.rate[eng.e_idx],
                           minlength=topo.nports)
        cap = np.asarray(topo.rate) / 8
        assert (load <= cap * (1 + 1e-9)).all()
        # max-min: every connection crosses a saturated port
        sat = load >= cap * (1 - 1e-9)
        assert all(sat[eng.e_port[eng.e_idx == i]].any() for i in range(len(eng.act)))
        eng.advance(t)
    assert all(f == f for f in eng.finish_s)
    assert eng.port_bytes.sum() > 0 or not conns
    live = [f for f in flows if f[0] != f[1]]
    if live:
        assert eng.now >= ideal_cct_s(topo, live) * (1 - 1e-9)


def test_roce_never_stalls_when_a_nak_is_overtaken_or_suppressed():
    """Go-back-N regressions found by the invariant above: a two-packet sprayed flow whose
    second packet arrives first (NAK 0), then whose ACK 0 overtakes the NAK on another path (so
    the sender never goes back), or whose resent round is reordered again (no second NAK for
    the same expected sequence). The sender's retransmission timer must resend it."""
    base = dict(lb="spray", subflows=1, spray="round_robin", buffer_bytes=None,
                window_packets=None, transport="roce", header_bytes=0, reorder_window=2,
                prop_delay_ns=0)
    cases = [
        (dict(leaves=2, hosts_per_leaf=2, spines=2, mtu_bytes=4096, entropies=256,
              uplink_gbps=None), [(0, 1, 1)] * 4 + [(0, 3, 4097)], 1),
        (dict(leaves=2, hosts_per_leaf=3, spines=2, mtu_bytes=1000, entropies=5,
              uplink_gbps=100.0), [(0, 1, 1), (0, 4, 1140), (4, 0, 1001)], 3),
    ]
    for cfg, flows, seed in cases:
        _delivered({**base, **cfg}, flows, seed)


def _delivered(cfg: dict, flows: list, seed: int) -> tuple:
    """Run `flows` on the packet engine of `cfg`; assert every connection completed with every
    packet received once; return (engine, topology, connections)."""
    topo = LeafSpine(NetConfig(kind="packet", **cfg))
    conns = LoadBalancer(topo, seed).connections(flows)
    eng = PacketEngine(topo, seed)
    for c in conns:
        eng.add(c, 0)
    done = eng.run()
    assert sorted(c for _, c in done) == list(range(len(conns)))
    assert eng.column("rcv") == eng.column("npk")
    return eng, topo, conns
