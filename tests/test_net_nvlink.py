"""Standalone patterns with several GPUs per server: same-server flows take NVLink, never the
fabric, in both engines, and the ideal completion time counts only the fabric flows' bytes on
the fabric (docs/network.md "Topology": servers and NVLink)."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest

from wrpsim.net import parse_args, run
from wrpsim.network.config import NetConfig
from wrpsim.network.scenario import run_scenario

M = 64 << 10
C = 400e9
NV = 3600e9


def cfg(**kw) -> NetConfig:
    base = dict(kind="fluid", leaves=4, hosts_per_leaf=2, spines=2, gpus_per_host=2,
                host_gbps=400)
    return NetConfig.from_dict({**base, **kw})


def same_server(src, dst):
    return src // 2 == dst // 2


def test_all_to_all_fluid_meets_the_closed_form_without_the_same_server_flows():
    """8 GPUs on 4 servers of 2 (one server per leaf): each NIC sends 6 of its 7 flows over the
    fabric, so ideal spraying takes 6·M/C (not 7·M/C), and the fluid engine meets it exactly;
    the 8 same-server flows take M / nvlink_gbps and have no connection."""
    r = run_scenario(cfg(lb="spray"), "all_to_all", M, seed=0)
    s = r.summary
    assert s["flows"] == 56 and s["nvlink_flows"] == 8 and s["conns"] == 48
    assert s["ideal_cct_s"] == pytest.approx(6 * M * 8 / C, rel=1e-12)
    assert s["cct_s"] == pytest.approx(6 * M * 8 / C, rel=1e-12)
    assert s["max_link_load"] == pytest.approx(1.0)
    flows = r.flows.to_pylist()
    local = [f for f in flows if same_server(f["src"], f["dst"])]
    assert len(local) == 8 and all(f["conns"] == 0 and f["spines"] == [] for f in local)
    assert all(f["finish_s"] == pytest.approx(M * 8 / NV, rel=1e-12) for f in local)
    assert all(f["conns"] == 1 for f in flows if not same_server(f["src"], f["dst"]))
    # flows.parquet's `link` says which carried each flow
    assert all(f["link"] == ("nvlink" if same_server(f["src"], f["dst"]) else "fabric")
               for f in flows)
    links = r.links.to_pylist()
    host_up = [row["bytes"] for row in links if row["kind"] == "host_up"]
    assert host_up == [6 * M] * 8                    # 6 flows per NIC, not 7


def test_all_to_all_packet_sends_no_packet_between_gpus_of_one_server():
    r = run_scenario(cfg(kind="packet", lb="spray"), "all_to_all", M, seed=0)
    s = r.summary
    assert s["nvlink_flows"] == 8
    assert s["data_packets"] - s["retransmits"] == 48 * math.ceil(M / 4096)
    for f in r.flows.to_pylist():
        if same_server(f["src"], f["dst"]):
            assert f["data_packets"] == 0 and f["conns"] == 0
            assert f["finish_s"] == pytest.approx(M * 8 / NV, rel=1e-12)
        else:
            assert f["data_packets"] >= 16
    assert s["cct_s"] >= s["ideal_cct_s"] == pytest.approx(6 * M * 8 / C, rel=1e-12)


def test_rail_optimized_permutation_keeps_a_same_server_pair_off_the_spines(tmp_path):
    """Rail-optimised, GPU 0 and GPU 1 of a server hang off different leaves; the seed-1
    permutation sends GPU 2 -> GPU 3 (one server), which used to cross spine 0."""
    out = run(parse_args(["leaves=4", "hosts_per_leaf=2", "spines=2", "gpus_per_host=2",
                          "rail_optimized=true", "flow_bytes=64KiB", "seed=1",
                          f"out_dir={tmp_path}"]))
    flows = pq.read_table(tmp_path / "flows.parquet").to_pylist()
    local = [f for f in flows if same_server(f["src"], f["dst"])]
    assert local and out["nvlink_flows"] == len(local)
    assert any(f["src_leaf"] != f["dst_leaf"] for f in local)   # another leaf, same server
    assert all(f["conns"] == 0 and f["spines"] == [] for f in local)
    links = pq.read_table(tmp_path / "links.parquet").to_pylist()
    n = 8
    for f in local:   # a permutation: the pair's NIC ports carry nothing else
        assert links[f["src"]]["bytes"] == links[n + f["dst"]]["bytes"] == 0


@pytest.mark.parametrize("engine", ["fluid", "packet"])
def test_ring_with_instant_nvlink(engine):
    """The ring 0 -> 1 -> ... -> 7 -> 0 over 4 two-GPU servers: 4 NVLink flows (instant with
    nvlink_gbps null) and 4 fabric flows, one per NIC: ideal M/C, met exactly by the fluid
    engine."""
    r = run_scenario(cfg(kind=engine, nvlink_gbps=None), "ring_allreduce", M, seed=0)
    s = r.summary
    assert s["nvlink_flows"] == 4 and s["conns"] == 4
    assert s["ideal_cct_s"] == pytest.approx(M * 8 / C, rel=1e-12)
    local = [f for f in r.flows.to_pylist() if same_server(f["src"], f["dst"])]
    assert [f["finish_s"] for f in local] == [0.0] * 4
    if engine == "fluid":
        assert s["cct_s"] == pytest.approx(M * 8 / C, rel=1e-12)
    else:
        assert s["cct_s"] > s["ideal_cct_s"]


@pytest.mark.parametrize("engine", ["fluid", "packet"])
def test_a_gpus_concurrent_nvlink_flows_share_its_link(engine):
    """all_to_all on 2 servers of 4 GPUs at 10 Gb/s NVLink: each GPU sends 3 flows and receives
    3 at once, so each runs at a third of the link and all end at 3·M/R (they ended at M/R, a
    GPU sending 30 Gb/s over a 10 Gb/s link); ideal_cct_s is the busiest GPU port's bytes."""
    m, rate = 4 << 20, 10e9
    c = cfg(kind=engine, leaves=2, hosts_per_leaf=4, spines=2, gpus_per_host=4, nvlink_gbps=10,
            lb="spray")
    r = run_scenario(c, "all_to_all", m, seed=0)
    s = r.summary
    assert s["nvlink_flows"] == 24
    local = [f for f in r.flows.to_pylist() if f["src"] // 4 == f["dst"] // 4]
    assert len(local) == 24
    assert all(f["finish_s"] == pytest.approx(3 * m * 8 / rate, rel=1e-12) for f in local)
    assert s["cct_s"] == pytest.approx(3 * m * 8 / rate, rel=1e-12)
    assert s["ideal_cct_s"] == pytest.approx(3 * m * 8 / rate, rel=1e-12)


def test_nvlink_max_min_refills_when_a_flow_ends():
    """GPU 0 sends to 1, 2 and 3, GPU 4 sends to 1 (one server of 8, 1 bit/s links): GPU 0's
    egress gives each of its flows 1/3; GPU 1's ingress leaves 4 -> 1 the other 2/3. With
    3 bits each, 0's flows end at 9; 4 -> 1 has 3 bits: ends at 4.5. With 9 bits it has 3 left
    at 9 and then runs alone at 1: ends at 12."""
    from wrpsim.network.scenario import _max_min_times

    ports = [((0, 0), (1, 1)), ((0, 0), (2, 1)), ((0, 0), (3, 1)), ((4, 0), (1, 1))]
    assert _max_min_times(ports, [3.0, 3.0, 3.0, 3.0], 1.0) == pytest.approx([9, 9, 9, 4.5])
    assert _max_min_times(ports, [3.0, 3.0, 3.0, 9.0], 1.0) == pytest.approx([9, 9, 9, 12])
    # an unshared flow runs alone at the link rate
    assert _max_min_times([((0, 0), (1, 1))], [5.0], 2.0) == [2.5]
