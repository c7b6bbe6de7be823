"""Packet engine: oracle 1 to the picosecond, fair share, losses, ECN, reordering,
determinism, agreement with the fluid engine (oracle 10) and the permutation ratio (oracle 5)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from wrpsim.metrics.records import write_parquet
from wrpsim.network.config import NetConfig
from wrpsim.network.packet import PacketEngine
from wrpsim.network.paths import Conn, LoadBalancer
from wrpsim.network.scenario import run_scenario
from wrpsim.network.theory import one_flow_latency_s
from wrpsim.network.topology import LeafSpine

MIB = 1 << 20
CUBE = {"leaves": 16, "hosts_per_leaf": 16, "spines": 16}
CUBE8 = {"leaves": 8, "hosts_per_leaf": 8, "spines": 8}


def packet(**kw) -> NetConfig:
    return NetConfig(kind="packet", **kw)


def run_flows(cfg, flows, seed=0):
    topo = LeafSpine(cfg)
    eng = PacketEngine(topo, seed)
    conns = LoadBalancer(topo, seed).connections(flows)
    for c in conns:
        eng.add(c, 0)
    done = eng.run()
    return topo, eng, conns, done


def test_one_flow_latency_oracle1_exact():
    """Oracle 1: 4 MiB at 400 Gb/s in 4 KiB packets through 4 queues with 4 × 1 µs of
    propagation takes M/C + 3·S_pkt/C + 4 µs = 88.13184 µs, to the picosecond."""
    cfg = packet(leaves=2, hosts_per_leaf=1, spines=1, host_gbps=400, prop_delay_ns=1000,
                 mtu_bytes=4096)
    topo, eng, _, done = run_flows(cfg, [(0, 1, 4 * MIB)])
    assert done == [(88_131_840, 0)]
    assert eng.c_finish[0] == topo.min_latency_ps(4 * MIB, 0, 1) == 88_131_840
    assert one_flow_latency_s(4 * MIB, 400e9, 4096, 4, [1e-6] * 4) == \
        pytest.approx(88.13184e-6, abs=1e-15)
    assert eng.stats()["data_packets"] == 1024


@pytest.mark.parametrize("nbytes, mtu, gbps, prop", [(4 * MIB + 100, 4096, 400, 1000),
                                                      (1_000_000, 1500, 100, 250),
                                                      (3000, 9000, 200, 0)])
def test_one_flow_latency_general(nbytes, mtu, gbps, prop):
    """The same closed form with a short last packet, other rates and delays, 2 and 4 hops."""
    cfg = packet(leaves=2, hosts_per_leaf=2, spines=3, host_gbps=gbps, prop_delay_ns=prop,
                 mtu_bytes=mtu)
    for dst in (1, 2):  # same leaf (2 queues), other leaf (4 queues)
        topo, eng, _, _ = run_flows(cfg, [(0, dst, nbytes)])
        assert eng.c_finish[0] == topo.min_latency_ps(nbytes, 0, dst)


@pytest.mark.parametrize("k", [2, 4])
def test_fair_share_oracle2(k):
    """Oracle 2: k long flows into one receiver each finish at ≈ k·M/C."""
    cfg = packet(leaves=2, hosts_per_leaf=k, spines=1, host_gbps=400, buffer_bdp=8)
    M = 8 * MIB
    _, eng, _, _ = run_flows(cfg, [(i, k, M) for i in range(k)])
    ideal = k * M * 8 / 400e9
    fin = np.array(eng.c_finish) / 1e12
    assert fin.max() == pytest.approx(ideal, rel=0.03)
    assert fin.min() > 0.9 * ideal  # fair: nobody finishes far ahead
    assert eng.stats()["drops"] == 0


def test_drops_are_recovered_and_bytes_conserved():
    """A small buffer forces drops; every packet still arrives exactly once."""
    cfg = packet(leaves=2, hosts_per_leaf=4, spines=1, buffer_bytes=40_000, window_packets=64)
    _, eng, _, done = run_flows(cfg, [(i, 4, 2 * MIB) for i in range(4)])
    st = eng.stats()
    assert st["drops"] > 0 and st["retransmits"] == st["drops"]
    assert len(done) == 4
    assert eng.c_rcv == eng.c_npk
    assert st["data_packets"] == sum(eng.c_npk) + st["retransmits"]


def test_trim_recovers_faster_than_drop():
    base = dict(leaves=2, hosts_per_leaf=4, spines=1, buffer_bytes=40_000, window_packets=64,
                rto_us=200)
    flows = [(i, 4, 2 * MIB) for i in range(4)]
    _, drop, _, _ = run_flows(packet(overflow="drop", **base), flows)
    _, trim, _, _ = run_flows(packet(overflow="trim", **base), flows)
    assert trim.stats()["trims"] > 0 and trim.stats()["drops"] == 0
    assert max(trim.c_finish) < max(drop.c_finish)
    assert trim.c_rcv == trim.c_npk


def test_dctcp_marks_and_shrinks_windows():
    """Four 2-BDP windows into one port: DCTCP-like control reacts to ECN marks by cutting the
    windows well below the fixed window, without losing throughput."""
    base = dict(leaves=2, hosts_per_leaf=4, spines=1, buffer_bdp=8, window_bdp=2)
    flows = [(i, 4, 16 * MIB) for i in range(4)]
    _, fixed, _, _ = run_flows(packet(cc="fixed", **base), flows)
    _, dctcp, _, _ = run_flows(packet(cc="dctcp", ecn_bdp=0.5, **base), flows)
    assert dctcp.stats()["ecn_marks"] > 0 and fixed.stats()["ecn_marks"] == 0
    assert max(dctcp.c_wnd) < 0.5 * dctcp.window and set(fixed.c_wnd) == {fixed.window}
    assert 0 < min(dctcp.c_alpha) and max(dctcp.c_alpha) < 1
    ideal = 4 * 16 * MIB * 8 / 400e9 * 1e12
    assert max(dctcp.c_finish) == pytest.approx(ideal, rel=0.10)
    assert dctcp.c_rcv == dctcp.c_npk and dctcp.stats()["drops"] == 0


def test_random_spray_reorders_and_ecmp_does_not():
    """Per-packet random spraying over uneven queues reorders packets; a single path never
    does (FIFO ports)."""
    base = dict(leaves=4, hosts_per_leaf=4, spines=4, buffer_bdp=8)
    spray = run_scenario(packet(lb="spray", spray="random", **base), "permutation", MIB, 0)
    ecmp = run_scenario(packet(lb="ecmp", **base), "permutation", MIB, 0)
    assert spray.summary["out_of_order_packets"] > 0
    assert spray.flows.column("max_reorder").to_pylist() != [0] * 16
    assert ecmp.summary["out_of_order_packets"] == 0


def test_engine_rejects_time_travel():
    topo = LeafSpine(packet(leaves=2, hosts_per_leaf=1, spines=1))
    eng = PacketEngine(topo)
    eng.add(Conn(0, 0, 1, 10_000, (topo.path(0, 1, 0),), False, 0), 1000)
    with pytest.raises(ValueError, match="back in time"):
        eng.add(Conn(0, 0, 1, 10_000, (topo.path(0, 1, 0),), False, 1), 10)


def test_calendar_equals_heap_order_under_stops():
    """Running in slices (as the SimPy driver does) gives exactly the one-go result."""
    cfg = packet(lb="spray", spray="random", leaves=4, hosts_per_leaf=4, spines=4, buffer_bdp=1)
    topo = LeafSpine(cfg)
    conns = LoadBalancer(topo, 3).connections([(e, (e + 5) % 16, 300_000) for e in range(16)])
    one = PacketEngine(topo, 3)
    sliced = PacketEngine(topo, 3)
    for c in conns:
        one.add(c, 0)
        sliced.add(c, 0)
    one.run()
    t, done = 0, []
    while sliced.peek() is not None:
        t += 777_777
        done += sliced.run(t, inclusive=False, stop_at_done=True)
    assert sorted(done) == sorted(zip(one.c_finish, range(16)))
    assert sliced.c_finish == one.c_finish and sliced.pbytes == one.pbytes
    assert sliced.c_ooo == one.c_ooo


@pytest.mark.parametrize("kind", ["packet", "fluid"])
def test_same_seed_same_flows_parquet(tmp_path, kind):
    """Determinism: same seed → byte-identical flows.parquet; another seed differs."""
    def write(seed, name):
        cfg = NetConfig(kind=kind, lb="ecmp" if kind == "fluid" else "spray", spray="random",
                        leaves=4, hosts_per_leaf=4, spines=4, buffer_bdp=1)
        r = run_scenario(cfg, "permutation", MIB // 2, seed)
        write_parquet(r.flows, tmp_path / name)
        return (tmp_path / name).read_bytes()

    assert write(5, "a.parquet") == write(5, "b.parquet")
    assert write(6, "c.parquet") != write(5, "d.parquet")
    t = pq.read_table(tmp_path / "a.parquet")
    assert t.schema.metadata[b"wrpsim.table"] == b"flows"


@pytest.mark.parametrize("lb", ["ecmp", "spray", "split"])
def test_fluid_and_packet_agree_for_long_flows_oracle10(lb):
    """Oracle 10: completion times within 5 % for long flows (64 MiB: 16384 packets per flow,
    chunk ≪ flow/(8·S))."""
    kw = dict(leaves=4, hosts_per_leaf=4, spines=4, lb=lb, buffer_bdp=4)
    f = run_scenario(NetConfig(kind="fluid", **kw), "permutation", 64 * MIB, 2).summary
    p = run_scenario(NetConfig(kind="packet", **kw), "permutation", 64 * MIB, 2).summary
    assert p["cct_s"] == pytest.approx(f["cct_s"], rel=0.05)
    assert p["mean_fct_s"] == pytest.approx(f["mean_fct_s"], rel=0.05)


def test_ring_allreduce_no_penalty_packet_oracle8():
    kw = dict(leaves=8, hosts_per_leaf=4, spines=4)
    e = run_scenario(packet(lb="ecmp", **kw), "ring_allreduce", 4 * MIB, 1).summary
    s = run_scenario(packet(lb="spray", **kw), "ring_allreduce", 4 * MIB, 1).summary
    assert e["cct_s"] == pytest.approx(s["cct_s"], rel=0.01)


@pytest.mark.slow
def test_permutation_ecmp_vs_spray_packet_oracle5():
    """Oracle 5 at packet level (8×8×8, 400 Gb/s, 4 MiB): mean ECMP / spray CCT within 15 %
    of 3.94 (the table's L = 8 row) over 10 seeds, each within 10 % of the fluid engine's ratio.

    8×8×8, not 16×16×16: a quarter of the hosts and packets, 0.4 s a seed instead of 3 s (the
    fluid engine checks 16×16×16 over 100 seeds in test_net_fluid). A seed's ratio varies with
    s.d. 0.65 at either size (400 fluid seeds), so the mean of 10 has s.d. 0.2 and 15 % of 3.94
    is 2.9 s.d. — as 15 % of 4.85 was for the mean of 6 at 16×16×16."""
    ratios = []
    for seed in range(10):
        r = {}
        for kind in ("packet", "fluid"):
            for lb in ("ecmp", "spray"):
                s = run_scenario(NetConfig(kind=kind, lb=lb, **CUBE8), "permutation", 4 * MIB,
                                 seed).summary
                r[kind, lb] = s["cct_s"]
        ratio = r["packet", "ecmp"] / r["packet", "spray"]
        assert ratio == pytest.approx(r["fluid", "ecmp"] / r["fluid", "spray"], rel=0.10)
        ratios.append(ratio)
    assert np.mean(ratios) == pytest.approx(3.94, rel=0.15)


@pytest.mark.slow
def test_split_equals_spray_packet_oracle7():
    """On 8×8×8 (the fluid engine checks 16×16×16 and two other fabrics in test_net_fluid)."""
    s = run_scenario(packet(lb="split", **CUBE8), "permutation", 4 * MIB, 0).summary
    p = run_scenario(packet(lb="spray", **CUBE8), "permutation", 4 * MIB, 0).summary
    assert s["cct_s"] / p["cct_s"] == pytest.approx(1.0, abs=0.03)
    assert s["out_of_order_packets"] == 0
