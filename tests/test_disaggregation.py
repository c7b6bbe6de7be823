"""Disaggregated prefill/decode: closed-form KV-transfer exposure, hand-off, conservation."""

from __future__ import annotations

import pytest

from tests.conftest import make_trace
from wrpsim.errors import ConfigError
from wrpsim.pool.transfer import finish_time
from wrpsim.sim import Simulation

KV_8B = 131072  # llama3.1-8b KV bytes per token (all layers, all shards)
LAYERS_8B = 32


def disagg_cfg(mode="layerwise", nic_gbps=100.0, prefill_s=0.08, step_s=0.01, max_seqs=8,
               p_count=1, d_count=1, kv_blocks=100_000, network=None):
    lat = {"kind": "constant", "decode_step_s": step_s, "prefill_s_fixed": prefill_s}

    def pool(role, count):
        return {"gpu": "h100-80gb", "model": "llama3.1-8b", "tp": 1, "count": count,
                "kv_blocks": kv_blocks, "role": role, "latency": lat,
                "scheduler": {"max_seqs": max_seqs, "token_budget": 8192},
                "kv_transfer": {"mode": mode}}

    return {
        "seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
        "network": network or {"kind": "nic", "nic_gbps": nic_gbps},
        "pool": {"pools": {"pre": pool("prefill", p_count), "dec": pool("decode", d_count)}},
        "router": {"_target_": "wrpsim.router.LeastOutstanding"},
    }


def one(cfg, prompt=4096, output=3):
    sim = Simulation(cfg, make_trace([0.0], [prompt], [output]))
    req, inst, _ = sim.run()
    return req.to_pylist()[0], inst.to_pylist(), sim


@pytest.mark.parametrize("nic_gbps", [100.0, 10.0])
def test_serialized_transfer_exposes_all_bytes_over_bandwidth(nic_gbps):
    r, _, _ = one(disagg_cfg("serialized", nic_gbps))
    xfer = 4096 * KV_8B / (nic_gbps * 1e9 / 8)
    assert r["kv_transfer_bytes"] == 4096 * KV_8B
    assert r["kv_transfer_s"] == pytest.approx(xfer, rel=1e-9)
    assert r["ttft_s"] == pytest.approx(0.08 + xfer, rel=1e-9)  # TTFT includes the transfer
    assert r["pool"] == "dec" and r["prefill_pool"] == "pre"


def test_layerwise_transfer_exposes_one_layers_share_when_the_link_keeps_up():
    # 100 Gb/s: X = 43 ms < T = 80 ms, so each layer's share (X/32) leaves before the next
    # layer is computed and only the last layer's share is exposed
    r, _, _ = one(disagg_cfg("layerwise", 100.0))
    xfer = 4096 * KV_8B / 12.5e9
    assert r["kv_transfer_s"] == pytest.approx(xfer / LAYERS_8B, rel=1e-9)


def test_layerwise_transfer_on_a_slow_link_exposes_the_excess():
    # 10 Gb/s: X = 429 ms > T: finish = start + c + X, exposed = X - (L-1)·T/L
    r, _, _ = one(disagg_cfg("layerwise", 10.0))
    xfer = 4096 * KV_8B / 1.25e9
    assert r["kv_transfer_s"] == pytest.approx(xfer - 31 * 0.08 / 32, rel=1e-9)


def test_finish_time_closed_form_and_nic_queueing():
    assert finish_time("serialized", 0.0, 1.0, 10, 0.5, nic_free=0.0) == 1.5
    assert finish_time("serialized", 0.0, 1.0, 10, 0.5, nic_free=2.0) == 2.5
    assert finish_time("layerwise", 0.0, 1.0, 10, 0.5, nic_free=0.0) == pytest.approx(1.05)
    assert finish_time("layerwise", 0.0, 1.0, 10, 2.0, nic_free=0.0) == pytest.approx(2.1)
    assert finish_time("layerwise", 0.0, 1.0, 10, 0.5, nic_free=3.0) == pytest.approx(3.5)


def test_transfers_of_one_prefill_instance_queue_on_its_nic():
    cfg = disagg_cfg("serialized", 100.0, max_seqs=1)
    sim = Simulation(cfg, make_trace([0.0, 0.0], [4096, 4096], [2, 2]))
    req, _, _ = sim.run()
    a, b = req.to_pylist()
    xfer = 4096 * KV_8B / 12.5e9
    # prefills at [0, .08] and [.08, .16]; the first transfer occupies the NIC until .08 + X
    assert a["first_token_s"] == pytest.approx(0.08 + xfer)
    assert b["first_token_s"] == pytest.approx(max(0.16, 0.08 + xfer) + xfer)


def test_infinite_bandwidth_network_none_makes_the_transfer_free():
    r, insts, sim = one(disagg_cfg(network={"kind": "none"}))
    assert r["kv_transfer_s"] == 0.0
    assert r["ttft_s"] == pytest.approx(0.08)
    assert r["tt2t_s"] == pytest.approx(0.09)
    by = {row["pool"]: row for row in insts}
    assert by["pre"]["requests_handed_off"] == 1 and by["dec"]["requests_completed"] == 1
    assert by["pre"]["decode_tokens"] == 0 and by["dec"]["prefill_tokens"] == 0
    assert all(i.kv.used == 0 for i in sim.fleet.instances)


def test_many_requests_all_complete_and_every_block_returns():
    n = 200
    trace = make_trace([i * 0.01 for i in range(n)], [300 + 7 * (i % 50) for i in range(n)],
                       [1 + (i % 40) for i in range(n)])
    sim = Simulation(disagg_cfg("layerwise", 50.0, p_count=2, d_count=3, kv_blocks=400), trace)
    req, insts, _ = sim.run()
    assert set(req.column("status").to_pylist()) == {"completed"}
    assert all(i.kv.used == 0 for i in sim.fleet.instances)
    handed = sum(insts.column("requests_handed_off").to_pylist())
    assert handed == sum(1 for o in trace["output_tokens"] if o > 1)


def test_a_disaggregated_model_needs_both_roles():
    cfg = disagg_cfg()
    del cfg["pool"]["pools"]["dec"]
    with pytest.raises(ConfigError, match="role prefill and role decode"):
        Simulation(cfg, make_trace([0.0], [10], [2]))
    cfg = disagg_cfg()
    cfg["pool"]["pools"]["pre"]["role"] = "primary"
    with pytest.raises(ConfigError, match="valid choices: both, decode, prefill"):
        Simulation(cfg, make_trace([0.0], [10], [2]))


@pytest.mark.parametrize("kind", ["fluid", "packet"])
@pytest.mark.parametrize("mode", ["serialized", "layerwise"])
def test_a_lone_transfer_over_the_fabric_matches_the_nic_closed_form(kind, mode):
    net = {"kind": kind, "leaves": 2, "hosts_per_leaf": 2, "spines": 2, "gpus_per_host": 1,
           "host_gbps": 100.0}
    r, _, sim = one(disagg_cfg(mode, network=net))
    xfer = 4096 * KV_8B / 12.5e9
    expect = xfer if mode == "serialized" else xfer / LAYERS_8B
    # fluid: exact rates; packet: plus serialization of a packet per hop and propagation
    assert r["kv_transfer_s"] == pytest.approx(expect, rel=0.01 if kind == "fluid" else 0.05)
    assert sim.fleet.transfer.fabric.stats()["bytes_moved"] == pytest.approx(4096 * KV_8B, rel=1e-6)


def test_transfers_sharing_a_fabric_link_slow_each_other_down():
    # two prefill instances send to one decode instance at once: its NIC is
    # the bottleneck, so two simultaneous serialized transfers take about twice as long
    net = {"kind": "fluid", "leaves": 2, "hosts_per_leaf": 2, "spines": 2, "gpus_per_host": 1,
           "host_gbps": 100.0, "placement": "pack"}
    cfg = disagg_cfg("serialized", network=net, p_count=2, d_count=1)
    sim = Simulation(cfg, make_trace([0.0, 0.0], [4096, 4096], [2, 2]))
    req, _, _ = sim.run()
    xfer = 4096 * KV_8B / 12.5e9
    for r in req.to_pylist():
        assert r["kv_transfer_s"] == pytest.approx(2 * xfer, rel=0.01)
