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
