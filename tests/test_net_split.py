"""`split` mode: König edge colouring and Theorem 1 of Addanki et al. (oracle 7)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wrpsim.network.coloring import edge_coloring, max_degree
from wrpsim.network.config import NetConfig
from wrpsim.network.paths import LoadBalancer, ideal_cct_s, offered_bytes
from wrpsim.network.topology import LeafSpine

edges_st = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(edges_st)
def test_konig_colouring_is_proper_with_max_degree_colours(edges):
    colors = edge_coloring(edges)
    d = max_degree(edges)
    assert all(0 <= c < d for c in colors)
    seen = set()
    for (u, v), c in zip(edges, colors):
        assert ("L", u, c) not in seen and ("R", v, c) not in seen
        seen.add(("L", u, c))
        seen.add(("R", v, c))


def test_colouring_rejects_too_few_colours():
    with pytest.raises(ValueError, match="maximum degree 2"):
        edge_coloring([(0, 0), (0, 1)], 1)


def _fabric_loads(topo, conns):
    load = offered_bytes(topo, conns)
    return {p: load[p] for p in range(topo.nports) if topo.kind[p] in ("leaf_up", "spine_down")}


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(1, 8), st.sampled_from([2, 3, 4, 6, 8]),
       st.data())
def test_split_matches_ideal_spraying_for_any_leaf_pattern(leaves, hosts, spines, data):
    """Oracle 7 generalised: for an arbitrary set of equal inter-leaf flows, `split` loads
    every uplink and downlink at most r·M/S (r = most flows at a leaf), and the most loaded one
    exactly as ideal spraying's most loaded one."""
    topo = LeafSpine(NetConfig(leaves=leaves, hosts_per_leaf=hosts, spines=spines, lb="split"))
    n = topo.n
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                               min_size=1, max_size=40))
    M = 4096 * spines  # divisible into S pieces
    flows = [(s, d, M) for s, d in pairs if topo.leaf_of[s] != topo.leaf_of[d]]
    if not flows:
        return
    conns = LoadBalancer(topo, 0).connections(flows)
    assert sum(c.nbytes for c in conns) == M * len(flows)
    out_deg, in_deg = {}, {}
    for s, d, _ in flows:
        out_deg[topo.leaf_of[s]] = out_deg.get(topo.leaf_of[s], 0) + 1
        in_deg[topo.leaf_of[d]] = in_deg.get(topo.leaf_of[d], 0) + 1
    r = max([*out_deg.values(), *in_deg.values()])
    pieces = spines // math.gcd(r, spines)
    assert all(sum(1 for c in conns if c.flow == i) == pieces for i in range(len(flows)))
    loads = _fabric_loads(topo, conns)
    assert max(loads.values()) == pytest.approx(r * M / spines)
    spray = LeafSpine(NetConfig(leaves=leaves, hosts_per_leaf=hosts, spines=spines, lb="spray"))
    sloads = _fabric_loads(spray, LoadBalancer(spray, 0).connections(flows))
    assert max(loads.values()) == pytest.approx(max(sloads.values()))


@pytest.mark.parametrize("r, s", [(16, 16), (12, 16), (16, 12), (6, 4), (5, 3)])
def test_theorem1_piece_counts(r, s):
    """Oracle 7: r flows per leaf, s spines → s/gcd(r, s) pieces per flow, r/gcd(r, s) pieces on
    each uplink; the maximum uplink load equals ideal spraying's (ratio 1.0)."""
    topo = LeafSpine(NetConfig(leaves=2, hosts_per_leaf=r, spines=s, lb="split"))
    M = 3 << 20  # divisible by every piece count here
    flows = [(e, r + e, M) for e in range(r)]
    conns = LoadBalancer(topo, 0).connections(flows)
    g = math.gcd(r, s)
    assert len(conns) == r * (s // g)
    per_uplink = {}
    for c in conns:
        per_uplink[c.paths[0][1]] = per_uplink.get(c.paths[0][1], 0) + 1
    assert set(per_uplink.values()) == {r // g} and len(per_uplink) == s
    assert max(_fabric_loads(topo, conns).values()) == pytest.approx(r * M / s)
    fabric_time = max(_fabric_loads(topo, conns).values()) * 8 / topo.uplink_bps
    assert fabric_time <= ideal_cct_s(topo, flows) * (1 + 1e-12)
