"""Data-parallel attention with expert-parallel MoE (`attn_dp`): the busiest group's share of
the attention, LM head and dense layers, every token through the MoE layers, one group's KV
times the groups, decode runs equal to stepping, a fleet run, and one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wrpsim.errors import ConfigError
from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.kernels import operators
from wrpsim.pool.kernels.sizes import profile_reserve_gib

MODEL, GPU = "qwen3-30b-a3b", "h100-80gb"


def _dp(tp=4, attn_dp=2, ep=4):
    return build_latency_model(MODEL, GPU, tp, ep=ep, attn_dp=attn_dp)


@pytest.mark.parametrize("tp, attn_dp", [(2, 2), (4, 2), (4, 4), (8, 4)])
def test_attention_and_head_are_the_busiest_groups_share(tp, attn_dp):
    """Each group runs attention and the LM head tensor-parallel over tp / attn_dp GPUs for its
    own sequences; the iteration waits for the group holding ceil(n / attn_dp) of them."""
    dp = _dp(tp, attn_dp, tp)
    group = build_latency_model(MODEL, GPU, tp // attn_dp)
    for batch in (1, 3, 16, 64, 255):
        per = math.ceil(batch / attn_dp)
        for ctx in (100.0, 1500.0, 20000.0):
            assert dp._decode_attn1(batch, ctx) == pytest.approx(group._decode_attn1(per, ctx),
                                                                 rel=1e-12)
        assert dp._head_at(batch) == pytest.approx(group._head_at(per), rel=1e-12)
    # a prefill of `seqs` equal chunks: the busiest group's chunks, their causal pairs
    for seqs, chunk in ((1, 2048), (4, 512), (7, 300)):
        pairs = seqs * chunk * (chunk + 1) / 2.0
        per = math.ceil(seqs / attn_dp)
        assert dp._prefill_attn(seqs, seqs * chunk, pairs) == pytest.approx(
            group._prefill_attn(per, per * chunk, per * chunk * (chunk + 1) / 2.0), rel=1e-9)


def test_kv_cache_is_one_groups_times_the_groups():
    """A group's GPUs hold that group's sequences: per GPU, KV of tp / attn_dp sharding, and
    weights of the group's dense shard plus 1 / tp of the experts (and every MoE router
    whole, BF16, as vLLM replicates it)."""
    dp, group = _dp(4, 2, 4), build_latency_model(MODEL, GPU, 2)
    m = dp.model
    assert dp.kv_bytes_per_token_per_gpu == group.kv_bytes_per_token_per_gpu
    router = m.moe_layers * m.hidden * m.experts
    dense = m.params - m.expert_params - m.embedding_params - router
    want = ((dense * 2.0 + m.embedding_params * 2.0) / 2 + m.expert_params * 2.0 / 4
            + router * 2.0)
    assert dp.weight_bytes_per_gpu == pytest.approx(want, rel=1e-12)
    # each of the 2 groups profiles its share of the 256 sequences and 2,048 tokens
    assert profile_reserve_gib(dp, 256, 2048) == pytest.approx(profile_reserve_gib(
        build_latency_model(MODEL, GPU, 2), 128, 1024), rel=1e-12)
    usable = (dp.gpu.visible_gib * 0.9 - profile_reserve_gib(dp, 256, 2048)) * (1 << 30)
    blocks = math.floor((usable - dp.weight_bytes_per_gpu) / (16 * dp.kv_bytes_per_token_per_gpu))
    assert dp.kv_capacity_blocks(16) == 2 * blocks


def test_moe_layers_see_every_token_of_the_instance():
    """The per-token curve is the group's dense work at ceil(T / attn_dp) plus the MoE layers
    at all T tokens: doubling the groups at a fixed T (same GPUs, same experts per GPU) only
    shrinks the dense part, so the difference from the MoE-free part is the same MoE time."""
    T = np.array([64.0, 512.0, 2048.0])
    dp2, dp4 = _dp(4, 2, 4), _dp(4, 4, 4)
    k = dp2.kernels
    m = dp2.model
    moe = m.moe_layers * k.moe(dp2.moe_dtype, m.hidden, m.intermediate, m.active_experts,
                               m.experts, 1, 4, m.gated_mlp)(T)
    coll = m.moe_layers * (k.nccl("all_gather", 4)(T * m.hidden)
                           + k.nccl("reduce_scatter", 4)(T * m.hidden))
    for lat in (dp2, dp4):
        Tr = np.ceil(T / lat.adp)
        dense = sum(n_l * k.gemm(dt, n, kk)(Tr) for n_l, dt, n, kk in operators.gemms(lat))
        dense = dense + Tr * operators.stream_bytes_per_token(lat) / lat._stream
        if lat.atp > 1:
            ar = np.where(Tr <= lat.c.cudagraph_max_tokens, k.allreduce(lat.atp, True)(
                Tr * m.hidden), k.allreduce(lat.atp, False)(Tr * m.hidden))
            if operators.fusion_mb(lat) > 0:  # (vLLM's all-reduce + RMSNorm fusion, within a group)
                e = Tr * m.hidden
                ar = np.where(e <= operators.fusion_mb(lat) * (1 << 20) / 2,
                              np.minimum(k.allreduce_fused(lat.atp)(e), ar), ar)
            dense = dense + (lat._layers_total - m.moe_layers) * ar
        np.testing.assert_allclose(operators.linear_curve(lat, T), dense + moe + coll, rtol=1e-12)


def test_decode_runs_equal_stepping_and_times_grow_with_load():
    lat = _dp(4, 2, 4)
    for batch, ctx0, n in ((5, 5 * 700, 40), (64, 64 * 2000, 30)):
        run = lat.decode_run_s(batch, ctx0, n)
        step = [lat.iteration_s(0, 0.0, batch, ctx0 + k * batch) for k in range(n)]
        np.testing.assert_allclose(run, step, rtol=1e-12)
        cum = lat.decode_run_cum_s(batch, ctx0, n)
        np.testing.assert_allclose(cum, np.cumsum(step), rtol=1e-9)
    dec = [lat.decode_step_s(b, 1000) for b in (1, 8, 64, 256)]
    assert dec == sorted(dec)
    assert lat.idle_power_w() < lat.power_w(0, 64, 64 * 1000, dec[2]) <= lat.gpu.tdp_w


def test_default_is_plain_tensor_parallelism():
    a = build_latency_model(MODEL, GPU, 4, ep=4)
    b = build_latency_model(MODEL, GPU, 4, ep=4, attn_dp=1)
    assert a is b  # the same cached model: attn_dp 1 changes nothing


@pytest.mark.parametrize("kwargs, pattern", [
    ({"model": MODEL, "tp": 4, "attn_dp": 3}, r"attn_dp must be an integer >= 1 that divides tp "
                                              r"\(4\), got 3"),
    ({"model": "llama3.1-8b", "tp": 2, "attn_dp": 2},
     "attn_dp > 1 needs a mixture-of-experts model; llama3.1-8b is dense"),
    ({"model": MODEL, "tp": 2, "attn_dp": 2, "engine": "splitwise-2023"},
     "knows only precision bf16, kv_dtype auto, ep 1 and attn_dp 1"),
])
def test_bad_settings_fail_with_one_line(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_latency_model(kwargs.pop("model"), GPU, kwargs.pop("tp"), **kwargs)


def test_pool_field_is_checked_and_a_fleet_runs(trace_factory, tmp_path):
    from wrpsim.pool.fleet import parse_pool
    from wrpsim.sim import run

    base = {"gpu": GPU, "model": MODEL, "tp": 2, "ep": 2,
            "scheduler": {"policy": "sarathi", "token_budget": 4096, "max_seqs": 256}}
    with pytest.raises(ConfigError, match=r"pool.pools.p.attn_dp must divide tp \(2\), got 4"):
        parse_pool("p", {**base, "attn_dp": 4})
    with pytest.raises(ConfigError, match=r"pool.pools.p.attn_dp: llama3.1-8b is not a "
                                          r"mixture-of-experts model"):
        parse_pool("p", {**base, "model": "llama3.1-8b", "ep": 1, "attn_dp": 2})
    assert parse_pool("p", {**base, "attn_dp": 2}).attn_dp == 2
    trace = trace_factory(np.arange(40) * 0.05, [600] * 40, [120] * 40)
    cfg = {"seed": 0, "slo": {"ttft_s": 2.0, "tpot_s": 0.1}, "pue": 1.0,
           "pool": {"name": "t", "pools": {"p": {**base, "attn_dp": 2}}},
           "router": {"_target_": "wrpsim.router.RoundRobin"}}
    summary = run(cfg, tmp_path, trace)
    assert summary["requests_completed"] == 40 and summary["requests_dropped"] == 0


def test_a_prompt_chunk_stays_on_one_group():
    """A request lives on one data-parallel rank: its prompt chunk goes through one group's
    dense layers whole (not split over the groups), while the MoE layers see every token."""
    lat = _dp(4, 2, 4)
    one = operators.split_linear(lat, 2048, 1, 0)
    want = (operators.group_curve(lat, np.array([2048.0]))[0]
            + operators.moe_curve(lat, np.array([2048.0]))[0])
    assert one == pytest.approx(want, rel=1e-12)
    assert one > lat._lin_at(2048)  # the even split would be too fast
    # two chunks: one per group; with 8 decodes besides, 4 on the busiest group
    two = operators.split_linear(lat, 2048, 2, 8)
    want = (operators.group_curve(lat, np.array([1024.0 + 4]))[0]
            + operators.moe_curve(lat, np.array([2056.0]))[0])
    assert two == pytest.approx(want, rel=1e-12)


def test_one_sequence_fits_in_one_groups_kv_and_transfers_from_its_gpus(trace_factory,
                                                                         tmp_path):
    """The KV of a sequence is held by one group: a request longer than one group's share is
    dropped, and a KV transfer is sent by that group's GPUs only."""
    from wrpsim.pool.transfer import kv_gpus
    from wrpsim.sim import Simulation

    pool = {"gpu": GPU, "model": MODEL, "tp": 2, "ep": 2, "attn_dp": 2,
            "scheduler": {"policy": "sarathi", "token_budget": 4096, "max_seqs": 64,
                          "gpu_mem_util": 0.42}}
    cfg = {"seed": 0, "slo": {"ttft_s": 2.0, "tpot_s": 0.1}, "pue": 1.0,
           "pool": {"name": "t", "pools": {"p": pool}},
           "router": {"_target_": "wrpsim.router.RoundRobin"}}
    sim = Simulation(cfg, trace_factory([0.0], [10], [10]))
    inst = sim.fleet.instances[0]
    group = inst.kv.capacity // 2 * inst.kv.block_size
    assert kv_gpus(inst) == 1 and sim.fleet.max_tokens[MODEL] == group
    from wrpsim.sim import run

    n = group - 100  # fits one group; and one longer than a group, shorter than the instance
    trace = trace_factory([0.0, 0.1], [n - 10, group + 100], [10, 10])
    summary = run(cfg, tmp_path, trace)
    assert summary["requests_completed"] == 1 and summary["requests_dropped"] == 1


def test_constant_pools_reject_attention_groups():
    from wrpsim.pool.fleet import build_latency, parse_pool

    spec = parse_pool("p", {"gpu": GPU, "model": MODEL, "tp": 2, "attn_dp": 2,
                            "kv_blocks": 100, "latency": {"kind": "constant",
                                                          "decode_step_s": 0.01}})
    with pytest.raises(ConfigError, match="attn_dp: a constant latency model has no attention"):
        build_latency(spec)


def test_the_ranks_per_step_sync_stalls_async_scheduling_where_the_engine_says_so():
    """vLLM's data-parallel ranks all-reduce their token counts before every forward pass,
    which stalls async scheduling (`EngineConstants.dp_sync_stalls_async`, set in the vLLM
    0.19 / 0.24 engines): with attn_dp > 1 an iteration takes its GPU time plus the engine's
    CPU time (each rank's own: its share of the sequences), not the longer of the two; plain
    tensor parallelism, and an engine without the property, keep the overlap; the schedule is
    fixed an iteration ahead either way, and the label says so."""
    import dataclasses

    from wrpsim.pool.catalog import get_gpu, get_model
    from wrpsim.pool.engines import get_engine, kernels_for
    from wrpsim.pool.kernels.model import KernelLatency

    eng = get_engine("vllm-0.24")
    c = eng.constants
    assert c.dp_sync_stalls_async and c.async_scheduling
    spec, gpu, k = get_model(MODEL), get_gpu(GPU), kernels_for(eng, GPU)
    dp = KernelLatency(spec, gpu, 4, k, c, ep=4, attn_dp=2)
    tp = KernelLatency(spec, gpu, 4, k, c, ep=4)
    off = KernelLatency(spec, gpu, 4, k, dataclasses.replace(c, dp_sync_stalls_async=False),
                        ep=4, attn_dp=2)
    for lat in (dp, tp, off):
        assert lat.schedule_lag
    n, ctx = 64, 64 * 1000
    cpu = (c.iter_overhead_us + c.seq_overhead_us * n / 2) * 1e-6
    g = dp.gpu_s(0, 0.0, n, ctx)
    assert dp.iteration_s(0, 0.0, n, ctx) == pytest.approx(g + cpu, rel=1e-12)
    assert off.iteration_s(0, 0.0, n, ctx) == pytest.approx(max(g, cpu), rel=1e-12)
    cpu_tp = (c.iter_overhead_us + c.seq_overhead_us * n) * 1e-6
    g_tp = tp.gpu_s(0, 0.0, n, ctx)
    assert tp.iteration_s(0, 0.0, n, ctx) == pytest.approx(max(g_tp, cpu_tp), rel=1e-12)
    assert "per-step sync stalls async scheduling" in dp.calibration
    assert "per-step sync" not in tp.calibration + off.calibration
    np.testing.assert_allclose(  # (decode runs step the same way)
        dp.decode_run_s(n, ctx, 5), [dp.iteration_s(0, 0.0, n, ctx + i * n) for i in range(5)],
        rtol=1e-12)
    # power: the GPU's share of the (longer) iteration is the same GPU work, so the same watts
    for lat in (dp, off):
        assert lat.power_w(0, n, ctx, lat.iteration_s(0, 0.0, n, ctx)) == pytest.approx(
            dp.power_w(0, n, ctx, dp.iteration_s(0, 0.0, n, ctx)), rel=1e-9)
        assert lat.decode_power_w(n, ctx, lat.iteration_s(0, 0.0, n, ctx)) == pytest.approx(
            dp.decode_power_w(n, ctx, dp.iteration_s(0, 0.0, n, ctx)), rel=1e-9)


def test_an_all_to_all_backend_moves_each_token_to_its_experts_gpus_only():
    """`moe_all2all` (vLLM's `--all2all-backend` DeepEP / pplx / FlashInfer): each of the g
    GPUs sends its T / g tokens to the d = g (1 - (1 - 1/g)^k) GPUs its top-k experts lie on
    and takes the outputs back — two all-to-alls of T / g x d x hidden elements, from the NCCL
    all-to-all table — instead of every token gathered on every GPU; only with data-parallel
    attention (a TP-attention group's tokens are already on every GPU), and the label says so."""
    assert operators.all2all_ranks(16, 8) == pytest.approx(16 * (1 - (15 / 16) ** 8))
    assert operators.all2all_ranks(1, 8) == 1.0 and operators.all2all_ranks(8, 1) == 1.0
    a2a = build_latency_model(MODEL, GPU, 8, ep=8, attn_dp=8, overrides={"moe_all2all": True})
    gather = build_latency_model(MODEL, GPU, 8, ep=8, attn_dp=8)
    m, T = a2a.model, np.array([64.0, 512.0, 4096.0])
    d = operators.all2all_ranks(8, m.active_experts)
    want = m.moe_layers * 2.0 * a2a.kernels.nccl("alltoall", 8)(T / 8 * d * m.expert_hidden)
    assert operators.dispatch_s(a2a, m.moe_layers, 8, T) == pytest.approx(want, rel=1e-12)
    e = T * m.expert_hidden
    assert operators.dispatch_s(gather, m.moe_layers, 8, T) == pytest.approx(
        m.moe_layers * (gather.kernels.nccl("all_gather", 8)(e)
                        + gather.kernels.nccl("reduce_scatter", 8)(e)), rel=1e-12)
    assert (operators.dispatch_s(a2a, m.moe_layers, 8, T)
            < operators.dispatch_s(gather, m.moe_layers, 8, T)).all()
    assert a2a.decode_step_s(512, 1000) < gather.decode_step_s(512, 1000)
    assert "MoE tokens moved all-to-all" in a2a.calibration
    assert "all-to-all" not in gather.calibration
    tp_attn = build_latency_model(MODEL, GPU, 8, ep=8, overrides={"moe_all2all": True})
    plain = build_latency_model(MODEL, GPU, 8, ep=8)
    assert tp_attn.decode_step_s(64, 1000) == plain.decode_step_s(64, 1000)
    assert "all-to-all" not in tp_attn.calibration
