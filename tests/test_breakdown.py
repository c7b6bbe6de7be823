"""`LatencyModel.breakdown`: an iteration's seconds by term, summing to `iteration_s`."""

from __future__ import annotations

import json

import pytest

from wrpsim.perf import evaluate, main, parse_args
from wrpsim.pool.constant import ConstantLatency
from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.perf import AnalyticalLatency

#: (model, gpu, tp, precision, ep, attn_dp, engine): dense, MoE sharded and expert-parallel,
#: data-parallel attention, MLA, sliding windows, a Mamba hybrid, both CPU models
CASES = [
    ("llama3.1-8b", "h100-80gb", 1, "bf16", 1, 1, "vllm-0.24"),
    ("llama3.1-70b", "h100-80gb", 4, "fp8", 1, 1, "vllm-0.11"),
    ("qwen3-30b-a3b", "h100-80gb", 2, "bf16", 1, 1, "vllm-0.24"),
    ("qwen3-30b-a3b", "rtxpro6000-96gb", 2, "bf16", 2, 2, "vllm-0.24"),
    ("qwen3-235b-a22b", "b200-180gb", 4, "bf16", 4, 1, "vllm-0.11"),
    ("deepseek-v3", "h200-141gb", 8, "fp8_block", 8, 1, "vllm-0.24"),
    ("gemma-3-12b", "b200-180gb", 1, "bf16", 1, 1, "vllm-0.11"),
    ("gpt-oss-120b", "h100-80gb", 2, "mxfp4", 1, 1, "vllm-0.24"),
    ("nemotron-nano-9b-v2", "h100-80gb", 1, "bf16", 1, 1, "vllm-0.11"),
    ("llama3.1-8b", "l40s-48gb", 4, "bf16", 1, 1, "vllm-0.24"),
]
#: (prefill tokens, their attention pairs, decode sequences, decode context, prompt chunks)
STEPS = [
    (0, 0.0, 1, 1000, 1),             # one sequence decoding
    (0, 0.0, 256, 256 * 3000, 1),     # a large decode batch
    (8192, 8192 * 8193 / 2, 0, 0, 1),  # one fresh 8k prompt
    (2048, 2048 * (60_000 + 2049 / 2), 63, 63 * 1500, 1),  # a chunk deep in its prompt + decodes
    (96, 96 * 97 / 2 * 3, 0, 0, 3),    # three short prompts
    (3, 3.0, 0, 0, 3),                 # three one-token prompts: launch-bound when eager
]


def _lat(case):
    model, gpu, tp, precision, ep, adp, engine = case
    return build_latency_model(model, gpu, tp, engine, precision, "auto", ep, attn_dp=adp)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-tp{c[2]}-{c[6]}")
def test_terms_sum_to_the_iteration_and_are_never_negative(case):
    lat = _lat(case)
    for step in STEPS:
        parts = lat.breakdown(*step)
        assert all(v >= 0.0 for v in parts.values()), (step, parts)
        assert sum(parts.values()) == pytest.approx(lat.iteration_s(*step), rel=1e-9), step
    assert set(lat.breakdown(0, 0.0, 0, 0)) == set(parts)
    assert sum(lat.breakdown(0, 0.0, 0, 0).values()) == 0.0


def test_terms_are_the_operators_the_model_has():
    dense = _lat(CASES[0])
    d = dense.breakdown(0, 0.0, 32, 32 * 2000)
    assert d["all_reduce"] == d["moe_experts"] == d["moe_dispatch"] == d["mamba_state"] == 0.0
    assert d["prefill_attention"] == 0.0 < d["decode_attention"]
    # the per-layer floor is the engine constant times the model's layers (32 + 32 blocks)
    assert d["layer_floor"] == pytest.approx(64 * dense.c.layer_overhead_us * 1e-6)
    # a longer context costs attention only
    d2 = dense.breakdown(0, 0.0, 32, 32 * 8000)
    assert d2["decode_attention"] > 2 * d["decode_attention"]
    assert d2["gemms"] == d["gemms"] and d2["lm_head_sampling"] == d["lm_head_sampling"]
    # vLLM 0.24 schedules asynchronously: a GPU-bound step shows no CPU time
    assert d["cpu"] == 0.0

    tp = _lat(CASES[1]).breakdown(0, 0.0, 64, 64 * 1000)  # 4 GPUs, vLLM 0.11: CPU in series
    assert tp["all_reduce"] > 0 and tp["cpu"] > 0
    moe = _lat(CASES[2]).breakdown(0, 0.0, 64, 64 * 1000)
    assert moe["moe_experts"] > 0 and moe["all_reduce"] > 0 and moe["moe_dispatch"] == 0
    # experts spread over 4 GPUs, attention tensor-parallel: every GPU holds every token
    # already, and the experts' outputs are all-reduced as any block's (vLLM's FusedMoE
    # dispatches only across data-parallel ranks)
    ep = _lat(CASES[4]).breakdown(0, 0.0, 64, 64 * 1000)
    assert ep["moe_dispatch"] == 0.0 and ep["moe_experts"] > 0 and ep["all_reduce"] > 0
    adp = _lat(CASES[3]).breakdown(0, 0.0, 64, 64 * 1000)  # attn_dp 2: ranks gather tokens
    assert adp["moe_dispatch"] > 0 and adp["all_reduce"] == 0.0  # one GPU per attention group
    hybrid = _lat(CASES[8])
    h = hybrid.breakdown(0, 0.0, 16, 16 * 1000)
    assert h["mamba_state"] == pytest.approx(16 * hybrid._mamba_dec)
    assert h["mamba_state"] > 0


def test_a_launch_bound_eager_step_shows_its_wait_on_the_cpu():
    # FULL_DECODE_ONLY graphs: a step with prompt chunks is launched eagerly, layer by layer
    lat = build_latency_model("llama3.1-70b", "b200-180gb", 4, "vllm-0.24", overrides={
        "cudagraph_mixed": 0, "eager_layer_us": 100.0})
    parts = lat.breakdown(3, 3.0, 0, 0, 3)
    assert parts["eager_launch"] > 0
    gpu = sum(v for k, v in parts.items() if k not in ("eager_launch", "cpu"))
    assert gpu + parts["eager_launch"] == pytest.approx(lat._eager)


def test_splitwise_2023_terms():
    lat = AnalyticalLatency.from_names("llama2-70b", "a100-80gb", 4)
    for step in STEPS:
        parts = lat.breakdown(*step)
        assert set(parts) == {"linear", "collectives", "prefill_attention", "decode_attention",
                              "overhead"}
        assert sum(parts.values()) == pytest.approx(lat.iteration_s(*step), rel=1e-12)
    one = AnalyticalLatency.from_names("llama2-70b", "h100-80gb", 2)
    assert one.breakdown(0, 0.0, 8, 8000)["collectives"] > 0
    assert AnalyticalLatency.from_names("llama3.1-8b", "h100-80gb", 1).breakdown(
        0, 0.0, 8, 8000)["collectives"] == 0.0


def test_a_model_without_operators_reports_one_term():
    lat = ConstantLatency(decode_step_s=0.02, prefill_s_per_token=1e-4)
    assert lat.breakdown(100, 5050.0, 4, 400) == {"iteration": pytest.approx(0.03)}


def test_perf_prints_both_steps_by_term():
    out = evaluate(parse_args(["model=qwen3-30b-a3b", "gpu=h100-80gb", "tp=2", "batch=16",
                               "prompt_tokens=1024", "ctx_tokens=3000", "breakdown=true"]))
    assert sum(out["prefill_breakdown_s"].values()) == pytest.approx(out["prefill_s"])
    assert sum(out["decode_breakdown_s"].values()) == pytest.approx(out["decode_step_s"])
    assert out["decode_breakdown_s"]["moe_experts"] > 0
    json.dumps(out)  # plain floats
    plain = evaluate(parse_args(["model=qwen3-30b-a3b", "gpu=h100-80gb", "tp=2"]))
    assert "decode_breakdown_s" not in plain


def test_perf_breakdown_must_be_a_boolean(capsys):
    assert main(["breakdown=maybe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["wrpsim: error: perf: breakdown must be true or false, got 'maybe'"]
