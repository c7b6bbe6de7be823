"""NVIDIA's ModelOpt NVFP4 releases of MoE models: precision `fp4_attn_bf16`."""

from __future__ import annotations

import pytest

from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.kernels import operators
from wrpsim.validate.silicon import silicon_cases


def test_nvidias_nvfp4_moe_releases_keep_attention_in_bf16():
    """`fp4_attn_bf16`: the attention projections in BF16 (their weights and GEMMs), every
    other layer as `fp4` — NVIDIA's ModelOpt NVFP4 releases of MoE models exclude `self_attn*`
    (nvidia/MiniMax-M2.5-NVFP4, Kimi-K2.5-NVFP4); MiniMax-M2.5's NVFP4 rows take it."""
    from wrpsim.pool.kernels import roofline as rl

    fp4 = build_latency_model("minimax-m2.5", "b200-180gb", 4, precision="fp4")
    mixed = build_latency_model("minimax-m2.5", "b200-180gb", 4, precision="fp4_attn_bf16")
    attn = operators.attn_gemms(mixed)
    assert attn and {dt for _, dt, _, _ in attn} == {"bf16"}
    assert {dt for _, dt, _, _ in operators.attn_gemms(fp4)} == {"fp4"}
    params = sum(n_l * n * k for n_l, _, n, k in attn)  # (one GPU's share; GQA: all sharded)
    assert mixed.weight_bytes_per_gpu == pytest.approx(
        fp4.weight_bytes_per_gpu + params * (2.0 - rl.WEIGHT_BYTES["fp4"]), rel=1e-12)
    on, off = mixed.breakdown(0, 0, 16, 16 * 1500), fp4.breakdown(0, 0, 16, 16 * 1500)
    assert on["gemms"] > off["gemms"] and on["moe_experts"] == off["moe_experts"]
    case = next(c for c in silicon_cases() if c.model == "minimax-m2.5" and "fp4" in c.name)
    assert case.pool["precision"] == "fp4_attn_bf16"
    assert case.pool["kv_dtype"] == "fp8"  # (its FP8 KV-cache scales, as plain fp4's)


def test_an_mla_models_replicated_down_projection_is_charged_whole_on_every_gpu():
    """Kimi-K2.5 (MLA): the fused q / kv down-projection, which vLLM builds whole on every GPU
    (`disable_tp`), is charged whole in its precision on each (until 2026-12-07 as its tp-th
    share of the dense weights: 1.1 GiB less a GPU at TP 8 in BF16), the other attention
    projections as their shares."""
    from wrpsim.pool.kernels import roofline as rl
    from wrpsim.pool.kernels.sizes import mla_replicated_params

    fp4 = build_latency_model("kimi-k2.5", "b200-180gb", 8, precision="fp4")
    mixed = build_latency_model("kimi-k2.5", "b200-180gb", 8, precision="fp4_attn_bf16")
    attn = operators.attn_gemms(mixed)
    (n_l, _, n, k), rest = attn[0], attn[1:]
    assert n_l * n * k == mla_replicated_params(mixed.model)
    params = n_l * n * k + sum(a * b * c for a, _, b, c in rest)
    assert mixed.weight_bytes_per_gpu - fp4.weight_bytes_per_gpu == pytest.approx(
        params * (2.0 - rl.WEIGHT_BYTES["fp4"]), rel=1e-12)


def test_a_qk_norm_over_every_head_all_reduces_its_variance_every_layer():
    """MiniMax-M2's `qk_norm_type: per_layer` norms Q and K over all heads at once: under TP
    vLLM all-reduces the (tokens, 2) FP32 variance in every layer (MiniMaxText01RMSNormTP),
    timed as the custom all-reduce of 4 x tokens bf16 elements; a per-head QK norm (Qwen3)
    needs none."""
    import numpy as np

    from wrpsim.pool.catalog import get_model
    from wrpsim.pool.hfconfig import from_hf_config

    assert get_model("minimax-m2.5").qk_norm_allreduce
    assert not get_model("qwen3-32b").qk_norm_allreduce
    base = {"num_hidden_layers": 2, "hidden_size": 512, "num_attention_heads": 8,
            "num_key_value_heads": 8, "intermediate_size": 1024, "vocab_size": 1000}
    assert from_hf_config({**base, "use_qk_norm": True, "qk_norm_type": "per_layer"})[
        "qk_norm_allreduce"]
    assert not from_hf_config({**base, "use_qk_norm": True,
                               "qk_norm_type": "per_head"}).get("qk_norm_allreduce")
    lat = build_latency_model("minimax-m2.5", "h200-141gb", 4, precision="fp8_block")
    T = np.array([4.0, 64.0])
    small = lat.kernels.allreduce(4, True)(4.0 * T)
    np.testing.assert_allclose(
        operators.dense_allreduce_s(lat, 10, T) - operators.allreduce_s(lat, 10, T),
        62 * small, rtol=1e-12)
