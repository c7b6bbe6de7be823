"""Topology numbering, rail optimisation, buffers and windows, placement, config validation."""

from __future__ import annotations

import math

import pytest

from wrpsim.errors import ConfigError
from wrpsim.network.config import NetConfig
from wrpsim.network.placement import place
from wrpsim.network.theory import oversubscription
from wrpsim.network.topology import LeafSpine, tx_ps


def topo(**kw) -> LeafSpine:
    return LeafSpine(NetConfig(**kw))


def test_port_numbering_and_paths():
    t = topo(leaves=4, hosts_per_leaf=3, spines=2)
    assert t.n == 12 and t.nports == 2 * 12 + 2 * 4 * 2
    assert t.leaf_of == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    p = t.path(0, 7, 1)
    assert p == (0, t.leaf_up(0, 1), t.spine_down(1, 2), 12 + 7)
    assert [t.kind[x] for x in p] == ["host_up", "leaf_up", "spine_down", "leaf_down"]
    assert t.src_node[p[1]] == "leaf0" and t.dst_node[p[1]] == "spine1"
    assert t.src_node[p[2]] == "spine1" and t.dst_node[p[2]] == "leaf2"
    assert t.path(0, 2, 1) == (0, 12 + 2)
    assert len(t.paths(0, 7)) == 2 and len(t.paths(0, 1)) == 1
    assert len(set(range(t.nports))) == len(t.kind)


def test_rail_optimized_mapping():
    """GPU k of each server of a rail group sits on leaf k of the group."""
    t = topo(leaves=8, hosts_per_leaf=2, spines=2, gpus_per_host=4, rail_optimized=True)
    assert t.servers == 4
    assert [t.leaf_of[e] for e in range(4)] == [0, 1, 2, 3]       # server 0
    assert [t.leaf_of[e] for e in range(4, 8)] == [0, 1, 2, 3]    # server 1, same group
    assert [t.leaf_of[e] for e in range(8, 12)] == [4, 5, 6, 7]   # server 2, next group
    flat = topo(leaves=8, hosts_per_leaf=4, spines=2, gpus_per_host=4)
    assert [flat.leaf_of[e] for e in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_rates_oversubscription_oracle9():
    t = topo(leaves=2, hosts_per_leaf=16, spines=4, host_gbps=400, oversubscription=2.0)
    assert t.uplink_bps == 800e9
    assert t.oversubscription == pytest.approx(2.0)
    assert oversubscription(16, 400e9, 4, 800e9) == 2.0
    t = topo(leaves=2, hosts_per_leaf=16, spines=4, host_gbps=400, uplink_gbps=400)
    assert t.oversubscription == 4.0
    assert topo(host_gbps=400).uplink_bps == 400e9


def test_serialization_and_bdp():
    assert tx_ps(4096, 400 * 10**9) == 81_920
    assert tx_ps(1, 3 * 10**9) == 2667  # rounded up
    t = topo(leaves=2, hosts_per_leaf=1, spines=1, host_gbps=400, prop_delay_ns=1000)
    assert t.base_rtt_ps == 4 * (83_200 + 1_280 + 2_000_000)  # 4096 + 64 header bytes out
    assert t.window_packets == -(-int(1.25 * t.bdp_bytes(t.host_bps)) // 4160)
    t0 = topo(leaves=2, hosts_per_leaf=1, spines=1, host_gbps=400, header_bytes=0)
    assert t0.base_rtt_ps == 4 * (81_920 + 1_280 + 2_000_000)
    assert t.buffer[0] is None and t.buffer[t.leaf_up(0, 0)] >= 2 * t.bdp_bytes(t.uplink_bps)
    t = topo(buffer_bytes=10_000, window_packets=7)
    assert set(t.buffer[t.n:]) == {10_000} and t.window_packets == 7


@pytest.mark.parametrize("kw, pattern", [
    ({"lb": "ecmpp"}, r"network\.lb: unknown value 'ecmpp'; valid choices: bitmap, ecmp, "
                      r"ecmp_subflows, flowlet, reps, split, spray"),
    ({"kind": "exact"}, r"network\.kind: unknown value 'exact'; valid choices: fluid, none, "
                        r"packet"),
    ({"leaves": 0}, r"network\.leaves must be an integer >= 1, got 0"),
    ({"host_gbps": -1}, r"network\.host_gbps must be a finite number in \[1e-06, 1e\+06\] "
                        r"\(Gb/s\), got -1"),
    # infinite, huge and tiny numbers: one line with the range, never an OverflowError or a
    # ZeroDivisionError in the topology (every rate a whole number of bits/s >= 1)
    ({"host_gbps": math.inf}, r"network\.host_gbps must be a finite number in \[1e-06, "),
    ({"host_gbps": 1e300}, r"network\.host_gbps must be a finite number in \[1e-06, "),
    ({"host_gbps": 1e-10}, r"network\.host_gbps must be a finite number in \[1e-06, "),
    ({"host_gbps": math.nan}, r"network\.host_gbps must be a finite number"),
    ({"uplink_gbps": 1e-12}, r"network\.uplink_gbps must be a finite number in \[1e-06, "),
    ({"nvlink_gbps": math.inf}, r"network\.nvlink_gbps .*\(Gb/s; null: instantaneous\)"),
    ({"oversubscription": math.inf}, r"network\.oversubscription must be a finite number > 0"),
    ({"oversubscription": 1e-300, "hosts_per_leaf": 4, "spines": 4},
     r"network\.oversubscription must be in \[0\.0004, 4e\+08\] here \(an uplink rate "),
    ({"prop_delay_ns": math.inf}, r"network\.prop_delay_ns must be a finite number in \[0, "
                                  r"1e\+09\] \(ns per link\), got inf"),
    ({"buffer_bdp": math.inf}, r"network\.buffer_bdp must be a finite number in \(0, 1e\+06\]"),
    ({"window_bdp": 1e300}, r"network\.window_bdp must be a finite number in \(0, 1e\+06\]"),
    ({"ecn_bdp": math.inf}, r"network\.ecn_bdp must be a finite number in \(0, 1e\+06\]"),
    ({"rto_us": math.inf}, r"network\.rto_us must be a finite number in \(0, 1e\+09\]"),
    ({"flowlet_gap_us": math.inf}, r"network\.flowlet_gap_us must be a finite number in \[0, "),
    # a buffer below one packet, given as a fraction of the BDP (as buffer_bytes is refused)
    ({"buffer_bdp": 0.001}, r"network\.buffer_bdp must give every switch port a buffer of at "
                            r"least one packet \(mtu_bytes \+ header_bytes = 4160 bytes\): "
                            r">= 0\.00998 here \(BDP 416896 bytes at 400 Gb/s\), got 0\.001$"),
    ({"uplink_gbps": 100, "oversubscription": 2}, r"give uplink_gbps or oversubscription"),
    ({"gpus_per_host": 8, "leaves": 4, "rail_optimized": True},
     r"leaves must be a multiple of gpus_per_host \(8\) when rail_optimized \(one leaf per "
     r"rail\), got 4; or network\.rail_optimized=false$"),
    ({"gpus_per_host": 3, "hosts_per_leaf": 4}, r"hosts_per_leaf must be a multiple of "
                                                r"gpus_per_host \(3\) unless rail_optimized "
                                                r"\(whole servers under a leaf\), got 4; or "
                                                r"network\.gpus_per_host=1$"),
    ({"spray": "zigzag"}, r"network\.spray: unknown value 'zigzag'; valid choices: random, "
                          r"round_robin"),
    ({"placement": "random"}, r"valid choices: pack, spread"),
    ({"transport": "tcp"}, r"network\.transport: unknown value 'tcp'; valid choices: dctcp, "
                           r"roce, uec"),
    ({"cc": "dctcp"}, r"network: unknown key\(s\) \['cc'\]; valid keys: .*transport"),
    ({"entropies": 0}, r"network\.entropies must be an integer >= 1, got 0"),
    ({"entropies": 70000}, r"network\.entropies must be an integer in 1\.\.65536"),
    ({"header_bytes": -1}, r"network\.header_bytes must be an integer >= 0, got -1"),
    ({"reorder_window": 0}, r"network\.reorder_window must be an integer >= 1"),
    ({"flowlet_gap_us": -1}, r"network\.flowlet_gap_us must be a finite number in \[0, "),
    ({"rail_optimized": "yes"}, r"rail_optimized must be true or false"),
    ({"dctcp_g": 2}, r"dctcp_g must be a number in \(0, 1\]"),
    ({"colour": 1}, r"network: unknown key\(s\) \['colour'\]; valid keys: kind, leaves"),
])
def test_bad_config_one_line_message(kw, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        NetConfig.from_dict(kw)
    assert "\n" not in str(e.value)


def test_config_defaults_and_none():
    assert NetConfig.from_dict(None).kind == "none"
    assert NetConfig.from_dict({"kind": "none"}).kind == "none"


def test_placement_pack_and_spread():
    t = topo(leaves=4, hosts_per_leaf=4, spines=2, gpus_per_host=2)  # 8 servers, 2 per leaf
    packed = place(t, [("p", 3, 2), ("d", 1, 1)], "pack")
    assert packed[("p", 0)] == [0, 1] and packed[("p", 1)] == [2, 3] and packed[("d", 0)] == [6]
    spread = place(t, [("p", 4, 2)], "spread")
    leaves = [t.leaf_of[spread[("p", i)][0]] for i in range(4)]
    assert sorted(leaves) == [0, 1, 2, 3]       # one instance per leaf
    big = place(t, [("p", 1, 4), ("q", 1, 3)], "pack")
    assert big[("p", 0)] == [0, 1, 2, 3] and len(big[("q", 0)]) == 3
    assert all(t.server_of[g] == t.server_of[big[("p", 0)][0]] for g in big[("p", 0)][:2])
    with pytest.raises(ConfigError, match=r"the fabric has 16 GPUs \(8 servers of 2\) but the "
                       r"pools need 18"):
        place(t, [("p", 9, 2)], "pack")
    one = topo(leaves=1, hosts_per_leaf=8, spines=1, gpus_per_host=8)
    with pytest.raises(ConfigError, match=r"the fabric has 8 GPUs \(1 server of 8\) but"):
        place(one, [("p", 3, 4)], "pack")
