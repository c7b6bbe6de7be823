"""Disaggregated prefill/decode: closed-form KV-transfer exposure, hand-off, conservation."""

from __future__ import annotations

import math

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
                **({"kv_transfer": {"mode": mode}} if role == "prefill" else {})}

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
    # the first token is the decode instance's: its first step with the sequence, once the KV
    # has arrived (TTFT includes the transfer); it then decodes every output token
    assert r["ttft_s"] == pytest.approx(0.08 + xfer + 0.01, rel=1e-9)
    assert r["e2e_s"] == pytest.approx(0.08 + xfer + 3 * 0.01, rel=1e-9)
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
    assert a["first_token_s"] == pytest.approx(0.08 + xfer + 0.01)
    assert b["first_token_s"] == pytest.approx(max(0.16, 0.08 + xfer) + xfer + 0.01)


def test_transfers_of_two_prefill_instances_into_one_decode_instance_queue_on_its_nic():
    """Two prefill instances finish at the same time and both send to the one decode instance:
    its NIC carries one transfer at a time, so the second arrives X after the first (they
    overlapped, both arriving after X)."""
    cfg = disagg_cfg("serialized", 100.0, p_count=2)
    sim = Simulation(cfg, make_trace([0.0, 0.0], [4096, 4096], [2, 2]))
    req, _, _ = sim.run()
    a, b = sorted(req.to_pylist(), key=lambda r: r["first_token_s"])
    xfer = 4096 * KV_8B / 12.5e9
    assert a["prefill_instance"] != b["prefill_instance"]
    assert a["first_token_s"] == pytest.approx(0.08 + xfer + 0.01)
    assert b["first_token_s"] == pytest.approx(0.08 + 2 * xfer + 0.01)


def test_infinite_bandwidth_network_none_makes_the_transfer_free():
    r, insts, sim = one(disagg_cfg(network={"kind": "none"}))
    assert r["kv_transfer_s"] == 0.0
    assert r["ttft_s"] == pytest.approx(0.09)  # the decode instance's first step
    assert r["tt2t_s"] == pytest.approx(0.10)
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


def engine_disagg_cfg(kv_pre="fp8", kv_dec="fp8", tp=2):
    """Llama-3.1-8B on the engine latency model (KV layout and dtype are the model's)."""
    def pool(role):
        return {"gpu": "h100-80gb", "model": "llama3.1-8b", "tp": tp, "count": 1, "role": role,
                "kv_dtype": kv_pre if role == "prefill" else kv_dec}

    return {"seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
            "network": {"kind": "nic", "nic_gbps": 100.0},
            "pool": {"pools": {"pre": pool("prefill"), "dec": pool("decode")}},
            "router": {"_target_": "wrpsim.router.LeastOutstanding"}}


@pytest.mark.parametrize("kv_dtype,width", [("fp8", 1), ("bf16", 2), ("auto", 2)])
def test_transfer_bytes_follow_the_kv_dtype(kv_dtype, width):
    # 8B at tp 2: 2 (K, V) x 32 layers x 4 KV heads per GPU x 128 x width bytes, on 2 GPUs
    r, _, _ = one(engine_disagg_cfg(kv_dtype, kv_dtype), prompt=1000, output=3)
    assert r["status"] == "completed"
    assert r["kv_transfer_bytes"] == 1000 * 2 * 32 * 4 * 128 * width * 2


def test_prefill_and_decode_pools_need_one_kv_dtype():
    with pytest.raises(ConfigError, match=r"^pool\.pools\.dec\.kv_dtype: fp8 differs .*"
                                          r"valid choices: auto, bf16$"):
        Simulation(engine_disagg_cfg("bf16", "fp8"), make_trace([0.0], [10], [2]))


def test_decode_pool_max_context_is_enforced():
    cfg = disagg_cfg()
    cfg["pool"]["pools"]["dec"]["max_context"] = 1000
    req, _, _ = Simulation(cfg, make_trace([0.0, 0.0, 0.0], [800, 800, 999], [200, 201, 1])).run()
    rows = {r["request_id"]: r for r in req.to_pylist()}
    assert [rows[i]["status"] for i in range(3)] == ["completed", "dropped", "completed"]
    assert rows[1]["drop_reason"] == "context"


def test_prefill_pool_max_context_bounds_the_prompt_and_first_token():
    cfg = disagg_cfg()
    cfg["pool"]["pools"]["pre"]["max_context"] = 1000
    req, _, _ = Simulation(cfg, make_trace([0.0, 0.0], [999, 1000], [500, 2])).run()
    a, b = req.to_pylist()
    assert a["status"] == "completed"  # 999 + 1 on the prefill instance, 1,499 on decode
    assert b["status"] == "dropped" and b["drop_reason"] == "context"


def test_a_prefill_instance_needs_only_the_prompts_kv():
    cfg = disagg_cfg()
    cfg["pool"]["pools"]["pre"]["kv_blocks"] = 10  # 160 tokens (block_size 16)
    req, _, _ = Simulation(cfg, make_trace([0.0, 0.0], [160, 161], [400, 2])).run()
    a, b = req.to_pylist()
    assert a["status"] == "completed" and a["kv_transfer_bytes"] == 160 * KV_8B
    assert b["status"] == "dropped" and b["drop_reason"] == "exceeds_kv_capacity"


@pytest.mark.parametrize("tp_pre,tp_dec", [(2, 1), (1, 2), (4, 2), (2, 2)])
def test_nic_transfer_runs_on_the_end_with_fewer_nics(tp_pre, tp_dec):
    cfg = disagg_cfg("serialized", 100.0)
    cfg["pool"]["pools"]["pre"]["tp"] = tp_pre
    cfg["pool"]["pools"]["dec"]["tp"] = tp_dec
    r, _, _ = one(cfg)
    xfer = 4096 * KV_8B / (min(tp_pre, tp_dec) * 12.5e9)
    assert r["kv_transfer_s"] == pytest.approx(xfer, rel=1e-9)


def test_a_request_in_kv_transfer_at_the_horizon_keeps_its_prefill_gpu_time():
    # prefill [0, .08] on 2 GPUs; the 0.43 s serialized transfer is under way at 0.2 s
    cfg = disagg_cfg("serialized", 100.0)
    cfg["pool"]["pools"]["pre"]["tp"] = 2
    cfg["pool"]["pools"]["dec"]["tp"] = 2
    cfg["sim"] = {"horizon_s": 0.1}
    cfg["network"]["nic_gbps"] = 10.0
    req, insts, _ = Simulation(cfg, make_trace([0.0], [4096], [3])).run()
    r = req.to_pylist()[0]
    assert r["status"] == "in_flight" and r["prefill_pool"] == "pre"
    assert r["gpu_s"] == pytest.approx(0.08 * 2, rel=1e-9)
    assert r["kv_transfer_bytes"] == 4096 * KV_8B
    busy = sum(i["busy_s"] * i["tp"] for i in insts.to_pylist())
    assert r["gpu_s"] == pytest.approx(busy, rel=1e-12)
    assert r["energy_j"] > 0 and r["cost_usd"] > 0


def test_kv_transfer_belongs_to_prefill_pools_and_pairs_name_the_pool():
    cfg = disagg_cfg()
    cfg["pool"]["pools"]["dec"]["kv_transfer"] = {"mode": "serialized"}
    with pytest.raises(ConfigError, match=r"^pool\.pools\.dec\.kv_transfer applies to pools "
                                          r"with role prefill"):
        Simulation(cfg, make_trace([0.0], [10], [2]))
    cfg = disagg_cfg()
    cfg["pool"]["pools"]["dec"]["model"] = "qwen3-8b"
    with pytest.raises(ConfigError, match=r"^pool\.pools\.dec\.model: qwen3-8b, but decode pool "
                                          r"dec must serve"):
        Simulation(cfg, make_trace([0.0], [10], [2]))


def test_a_hybrid_models_handoff_moves_its_recurrent_state_too():
    """Nemotron-Nano-9B-v2 (Mamba-2 hybrid): the decode instance needs the sequence's Mamba
    state as well as the attention layers' KV; the bytes moved were the KV alone."""
    from wrpsim.pool.engines import build_latency_model

    cfg = disagg_cfg("serialized", 100.0)
    for p in cfg["pool"]["pools"].values():
        p.pop("latency")
        p["model"] = "nemotron-nano-9b-v2"
    r, _, _ = one(cfg, prompt=2048, output=3)
    lat = build_latency_model("nemotron-nano-9b-v2", "h100-80gb", 1)
    state = lat.mamba_state_bytes
    assert state > 0
    assert r["kv_transfer_bytes"] == pytest.approx(2048 * lat.kv_bytes_per_token_per_gpu + state)


def test_the_fleets_longest_request_is_bounded_by_the_decode_side():
    """`max_tokens` (what a router sees as the longest request a model can take) counted the
    prefill pool's capacity, which holds the prompt only."""
    cfg = disagg_cfg("serialized", 100.0)
    cfg["pool"]["pools"]["pre"]["kv_blocks"] = 100_000
    cfg["pool"]["pools"]["dec"]["kv_blocks"] = 100
    _, _, sim = one(cfg, prompt=100, output=3)
    assert sim.fleet.max_tokens["llama3.1-8b"] == 100 * 16


@pytest.mark.parametrize("attn_dp", [1, 2])
def test_attention_groups_of_a_decode_instance_receive_on_their_own_nics(attn_dp):
    """Two prefill instances hand off at the same moment to one decode instance of two GPUs.
    With data-parallel attention (attn_dp 2) each sequence's KV goes to one group, whose NIC
    is its own: the two transfers run side by side. Without it both GPUs' NICs carry each
    transfer: the second waits for the first (FIFO), at twice the rate."""
    def pool(role, count, tp, extra):
        return {"gpu": "h100-80gb", "model": "qwen3-30b-a3b", "tp": tp, "count": count,
                "role": role, **extra,
                **({"kv_transfer": {"mode": "serialized"}} if role == "prefill" else {})}

    dec = {"attn_dp": attn_dp, "ep": 2} if attn_dp > 1 else {}
    cfg = {"seed": 0, "slo": {"ttft_s": 10.0, "tpot_s": 1.0}, "pue": 1.0,
           "network": {"kind": "nic", "nic_gbps": 10.0},
           "pool": {"pools": {"pre": pool("prefill", 2, 1, {}), "dec": pool("decode", 1, 2, dec)}},
           "router": {"_target_": "wrpsim.router.LeastOutstanding"}}
    sim = Simulation(cfg, make_trace([0.0, 0.0], [4096, 4096], [2, 2]))
    a, b = sorted(sim.run()[0].to_pylist(), key=lambda r: r["first_token_s"])
    assert a["prefill_instance"] != b["prefill_instance"]
    assert a["kv_transfer_bytes"] == b["kv_transfer_bytes"] > 0
    xfer = a["kv_transfer_bytes"] / (10e9 / 8)  # over one NIC (one GPU of a group)
    # (a serialized hand-off starts after the engine's orchestration, `handover_us`)
    handover = sim.fleet.latency["pre"].handover_s()
    assert handover > 0
    if attn_dp == 2:  # side by side, one NIC each
        assert a["kv_transfer_s"] == pytest.approx(handover + xfer, rel=1e-9)
        assert b["first_token_s"] == pytest.approx(a["first_token_s"], rel=1e-12)
    else:  # one after the other, each over the prefill GPU's one NIC (the narrower end)
        assert a["kv_transfer_s"] == pytest.approx(handover + xfer, rel=1e-9)
        assert b["first_token_s"] == pytest.approx(a["first_token_s"] + xfer, rel=1e-9)


def test_a_handed_off_sequence_gets_its_first_token_when_the_decode_batch_takes_it():
    """The decode side's batch is full (`max_seqs` 1): B's KV arrives at .16 while A decodes
    until .28, and B waits there for its place. The user sees B's first token only after the
    decode instance's first step with it (.29), as a vLLM decode engine samples it — not when
    its KV arrived — so B's TPOT is the step time, not the step time plus the wait."""
    cfg = disagg_cfg("serialized", max_seqs=1, network={"kind": "none"})
    sim = Simulation(cfg, make_trace([0.0, 0.0], [4096, 4096], [20, 5]))
    req, _, _ = sim.run()
    a, b = sorted(req.to_pylist(), key=lambda r: r["first_token_s"])
    assert a["first_token_s"] == pytest.approx(0.09)  # prefill .08, then its first step
    assert a["finish_s"] == pytest.approx(0.08 + 20 * 0.01)  # 20 steps: every output token
    assert b["kv_transfer_s"] == 0.0  # arrived at .16, the end of its prefill
    assert b["first_token_s"] == pytest.approx(0.28 + 0.01)
    assert b["tpot_s"] == pytest.approx(0.01)
    assert b["tt2t_s"] == pytest.approx(0.30)


@pytest.mark.parametrize("mode", ["serialized", "layerwise"])
def test_a_serialized_hand_off_waits_for_the_engines_orchestration(mode):
    """A kernel-table engine's `handover_us` (here set by the pool) delays a serialized
    hand-off's pull by exactly that much — the KV stays on the prefill instance meanwhile —
    and a layer-wise one not at all (its push is arranged before the prompt ends)."""
    def pool(role):
        return {"gpu": "h100-80gb", "model": "llama3.1-8b", "tp": 1, "count": 1, "role": role,
                "latency": {"kind": "engine", "handover_us": 50_000.0},
                **({"kv_transfer": {"mode": mode}} if role == "prefill" else {})}

    cfg = {"seed": 0, "slo": {"ttft_s": 10.0, "tpot_s": 1.0}, "pue": 1.0,
           "network": {"kind": "none"},
           "pool": {"pools": {"pre": pool("prefill"), "dec": pool("decode")}},
           "router": {"_target_": "wrpsim.router.LeastOutstanding"}}
    sim = Simulation(cfg, make_trace([0.0], [2048], [4]))
    assert sim.fleet.latency["pre"].handover_s() == pytest.approx(0.05, rel=1e-12)
    pre = next(i for i in sim.fleet.instances if i.role == "prefill")
    held = []  # (time, KV blocks the prefill instance holds) while its hand-off is pending

    def watch():
        while sim.env.now < 1.0:
            if pre.outgoing:
                held.append((sim.env.now, pre.kv.used))
            yield sim.env.timeout(0.001)

    sim.env.process(watch())
    r = sim.run()[0].to_pylist()[0]
    assert r["status"] == "completed"
    assert r["kv_transfer_s"] == pytest.approx(0.05 if mode == "serialized" else 0.0, abs=1e-12)
    assert r["kv_wait_s"] == 0.0  # (the decode side had room when asked, after the pull's start)
    if mode == "serialized":  # the prompt's KV stays on the prefill instance until the pull
        assert held[-1][0] - held[0][0] >= 0.048 and all(used > 0 for _, used in held)


def test_a_second_token_is_only_counted_from_a_step_that_runs():
    """A handed-off sequence's first token is its decode instance's first step with it; the
    end of the stretch's second step stands for its second token only if the stretch is not
    cut before it. Here (a decode instance of 60 blocks and 4 sequences, arrivals cutting its
    stretches) request 7 is preempted at the end of its first step (0.9612 s) and recomputed:
    its second token is the recompute's (1.0004 s), not the 0.9712 s of the step that never
    ran (a review's reproducer)."""
    def pool(role, count, blocks, ms):
        lat = {"kind": "constant", "decode_step_s": 0.01, "prefill_s_fixed": 0.08,
               "prefill_s_per_token": 1e-4}
        return {"gpu": "h100-80gb", "model": "llama3.1-8b", "tp": 1, "count": count,
                "kv_blocks": blocks, "role": role, "latency": lat,
                "scheduler": {"max_seqs": ms, "token_budget": 8192},
                **({"kv_transfer": {"mode": "serialized"}} if role == "prefill" else {})}

    cfg = {"seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
           "network": {"kind": "nic", "nic_gbps": 100.0},
           "pool": {"pools": {"pre": pool("prefill", 2, 100_000, 64),
                              "dec": pool("decode", 1, 60, 4)}},
           "router": {"_target_": "wrpsim.router.LeastOutstanding"}}
    rows = [(0, 527, 61), (.001, 231, 7), (.0626, 271, 2), (.0685, 445, 18), (.0927, 270, 2),
            (.1136, 152, 12), (.1409, 246, 36), (.1507, 191, 3), (.1736, 58, 3),
            (.1798, 494, 39)]
    req = Simulation(cfg, make_trace(*map(list, zip(*rows)))).run()[0].to_pylist()
    for r in req:
        assert r["status"] == "completed"
        second = r["arrival_s"] + r["tt2t_s"]
        assert r["first_token_s"] < second <= r["finish_s"] + 1e-12
    r7 = req[7]
    assert r7["preemptions"] == 2
    assert r7["first_token_s"] == pytest.approx(0.961188, abs=1e-6)
    assert r7["arrival_s"] + r7["tt2t_s"] == pytest.approx(1.000388, abs=1e-6)


def test_an_in_flight_row_has_no_token_planned_after_the_horizon():
    """A run cut by `sim.horizon_s` during a handed-off sequence's first decode step: its
    first token (that step's end) has not come, so the in-flight row has none."""
    cfg = disagg_cfg("serialized", network={"kind": "none"})
    cfg["sim"] = {"horizon_s": 0.085}
    r = Simulation(cfg, make_trace([0.0], [4096], [3])).run()[0].to_pylist()[0]
    assert r["status"] == "in_flight"
    assert r["first_token_s"] is None or math.isnan(r["first_token_s"])
    assert math.isnan(r["ttft_s"]) and math.isnan(r["tt2t_s"])
