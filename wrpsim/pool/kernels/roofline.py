"""Roofline times of single operators, used to carry a measured time to an unmeasured case.

A measured kernel time t_ref at shape s_ref on GPU g_ref is moved to shape s on GPU g (or to
another precision) as `t = t_ref * R(s, g) / R(s_ref, g_ref)`, where R is the roofline time
max(FLOPs / peak FLOP/s, bytes / peak bandwidth): the fraction of the roofline that the kernel
reached where it was measured (its efficiency) is assumed to hold where it was not. This is the
documented fallback for shapes outside a table, precisions a GPU's table lacks, and GPUs without
kernel tables ("uncalibrated: roofline"). Peaks are the catalog's dense figures
(`GpuSpec.tflops`, `mem_bw_gbs`).
"""

from __future__ import annotations

import numpy as np

#: bytes per weight element by GEMM precision, scales included: block FP8 an FP32 scale per
#: 128 x 128 block (DeepSeek-V3's `weight_scale_inv`, [out / 128, in / 128] float32:
#: 1 + 4 / 16384; 1 + 1 / 128, a scale per 128 weights, until 2026-12-07), NVFP4 an FP8 scale
#: per 16 (0.5625), MXFP4 an E8M0 scale per 32 (0.53125), INT4 as Kimi-K2 / K2.5 ship it
#: (compressed-tensors `pack-quantized`, symmetric, group 32, a BF16 scale per group: 4.5 bits,
#: 0.5625; an 8-bit scale's 0.53125 until 2026-12-07)
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp8_block": 1.0 + 4.0 / 16384, "fp4": 0.5625,
                "mxfp4": 0.53125, "mxfp4_marlin": 0.53125, "mxfp4_mxfp8": 0.53125,
                "int4": 0.5625}
#: bytes per KV-cache element by KV dtype (`auto` is BF16)
KV_BYTES = {"bf16": 2.0, "fp8": 1.0}
#: bytes per activation element entering the GEMM (quantised activations for W8A8 / W4A4;
#: MXFP8 carries one 8-bit scale per 32 values)
ACT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp8_block": 1.0, "fp4": 0.5625, "mxfp4": 2.0,
             "mxfp4_marlin": 2.0, "mxfp4_mxfp8": 1.03125, "int4": 2.0}
#: the tensor-core rate a precision computes at (weight-only formats dequantise to bf16; MXFP4
#: weights with MXFP8 activations run on the FP8 tensor cores)
MATH = {"bf16": "bf16", "fp8": "fp8", "fp8_block": "fp8", "fp4": "fp4", "mxfp4": "bf16",
        "mxfp4_marlin": "bf16", "mxfp4_mxfp8": "fp8", "int4": "bf16"}


def peak_flops(gpu, dtype: str) -> float:
    """Dense FLOP/s of `gpu` for GEMMs in `dtype`; a GPU without tensor cores for the
    precision's math runs it weight-only at the BF16 rate (`math_on`)."""
    return {"bf16": gpu.bf16_tflops, "fp8": gpu.fp8_tflops,
            "fp4": gpu.fp4_tflops}[math_on(gpu, dtype)] * 1e12


def math_on(gpu, dtype: str) -> str:
    """The tensor-core math `gpu` computes `dtype`'s GEMMs in: the precision's own (`MATH`)
    where the GPU has it, else BF16 — vLLM runs an FP8 checkpoint on a GPU without FP8 tensor
    cores (Ampere), and an FP4 one on a GPU without FP4 tensor cores (Hopper, Ada), weight-only
    through its Marlin kernels (W8A16 / W4A16: weights dequantised to BF16 in the kernel; its
    NVFP4 kernel-selection notes, vllm-project/vllm#49376)."""
    math = MATH[dtype]
    if (math == "fp4" and not gpu.fp4_tflops) or (math == "fp8" and not gpu.fp8_tflops):
        return "bf16"
    return math


def sustained_flops(gpu, dtype: str) -> float:
    """The FLOP/s `gpu` sustains in `dtype`'s tensor-core math at its power limit (0: not
    measured). The kernel tables time each GEMM in a short loop, at the clocks of a GPU below
    its power limit; a serving engine that runs compute-bound steps back to back holds the GPU
    at that limit, where the SM clock drops (H200, 700 W: 1,980 MHz idle, 1,380-1,455 MHz
    under BF16 / FP8 GEMMs, `pools/measured/device/power/`) and no GEMM runs faster than the
    measured sustained rate. Weight-only formats compute at the BF16 rate (`math_on`)."""
    return getattr(gpu, f"{math_on(gpu, dtype)}_sustained_tflops", 0.0) * 1e12


def has_math(gpu, dtype: str) -> bool:
    """Whether `gpu` has tensor cores for the math `dtype` computes in (`MATH`): an FP8 or FP4
    GEMM on a GPU without them runs weight-only at the BF16 rate (`math_on`)."""
    return math_on(gpu, dtype) == MATH[dtype]


def gemm_flops(m, n, k):
    """FLOPs of y[m, n] = x[m, k] W[n, k]^T: a multiply and an add per (m, n, k)."""
    return 2.0 * m * n * k


def gemm_roofline(m, n: float, k: float, dtype: str, gpu) -> np.ndarray:
    """Roofline seconds of y[m, n] = x[m, k] W[n, k]^T (vectorised over m)."""
    m, n, k = np.asarray(m, dtype=np.float64), float(n), float(k)
    flops = gemm_flops(m, n, k)
    nbytes = n * k * WEIGHT_BYTES[dtype] + m * k * ACT_BYTES[dtype] + 2.0 * m * n
    return np.maximum(flops / peak_flops(gpu, dtype), nbytes / (gpu.mem_bw_gbs * 1e9))


def attn_prefill_roofline(batch, isl, heads: int, kv_heads: int, head_dim: int, gpu,
                          kv_bytes: float = 2.0) -> np.ndarray:
    """Roofline seconds of causal prefill attention of `batch` prompts of `isl` tokens (one
    layer, one GPU's heads): 4 d H isl (isl+1)/2 FLOPs per prompt at bf16 rate; Q, K, V, O."""
    b, s = np.asarray(batch, dtype=np.float64), np.asarray(isl, dtype=np.float64)
    flops = 4.0 * head_dim * heads * b * s * (s + 1) / 2
    nbytes = b * s * head_dim * (2 * heads * 2.0 + 2 * kv_heads * kv_bytes)
    return np.maximum(flops / (gpu.bf16_tflops * 1e12), nbytes / (gpu.mem_bw_gbs * 1e9))


def attn_decode_roofline(batch, ctx, heads: int, kv_heads: int, head_dim: int, gpu,
                         kv_bytes: float = 2.0) -> np.ndarray:
    """Roofline seconds of one decode step of attention: every sequence reads its K and V."""
    b, c = np.asarray(batch, dtype=np.float64), np.asarray(ctx, dtype=np.float64)
    flops = 4.0 * head_dim * heads * b * (c + 1)
    nbytes = b * (c + 1) * 2 * kv_heads * head_dim * kv_bytes
    return np.maximum(flops / (gpu.bf16_tflops * 1e12), nbytes / (gpu.mem_bw_gbs * 1e9))


def expert_weights(hidden: int, inter: int, moe_tp: int, gated: bool = True) -> float:
    """Weights of one expert on one GPU: its gated (3 matrices) or plain (2) FFN, hidden x
    inter each, 1/moe_tp of them."""
    return (3.0 if gated else 2.0) * hidden * inter / moe_tp


def moe_roofline(tokens, hidden: int, inter: int, topk: int, experts: int, moe_tp: int,
                 moe_ep: int, dtype: str, gpu, gated: bool = True) -> np.ndarray:
    """Roofline seconds of one fused MoE layer on one GPU: the experts it holds that the tokens
    touch (uniform routing: E_local (1 - (1 - k/E)^tokens)) are read once; every routed token
    goes through its experts' FFN (local share 1/moe_ep of the token-expert pairs)."""
    t = np.asarray(tokens, dtype=np.float64)
    per_expert = expert_weights(hidden, inter, moe_tp, gated)
    local = experts / moe_ep
    touched = local * (1.0 - (1.0 - topk / experts) ** t)
    flops = moe_flops(t, hidden, inter, topk, moe_tp, moe_ep, gated)
    nbytes = touched * per_expert * WEIGHT_BYTES[dtype] + 4.0 * t * hidden * 2.0
    return np.maximum(flops / peak_flops(gpu, dtype), nbytes / (gpu.mem_bw_gbs * 1e9))


def moe_stream_floor(tokens, hidden: int, inter: int, topk: int, moe_tp: int, moe_ep: int,
                     dtype: str, gpu, gated: bool = True) -> np.ndarray:
    """Seconds below which one GPU's share of a fused MoE layer cannot run in serving: reading
    the weights of the fewest experts its tokens can touch, whatever the routing (a token's
    top-k experts, topk / moe_ep of them on the GPU; more tokens may touch the same ones), and
    the tokens' activations, at the GPU's peak HBM bandwidth. A kernel table's short loop can
    beat it (a few experts stay in L2 between iterations); a serving step, which streams every
    layer's weights through L2 in turn, cannot."""
    t = np.asarray(tokens, dtype=np.float64)
    per_expert = expert_weights(hidden, inter, moe_tp, gated)
    nbytes = topk / moe_ep * per_expert * WEIGHT_BYTES[dtype] + 4.0 * t * hidden * 2.0
    return nbytes / (gpu.mem_bw_gbs * 1e9)


def moe_flops(tokens, hidden: int, inter: int, topk: int, moe_tp: int, moe_ep: int,
              gated: bool = True):
    """FLOPs of one GPU's share of a fused MoE layer: every routed token through its experts'
    gated (3 matrices) or plain (2) FFN, 1/moe_ep of the token-expert pairs, 1/moe_tp of each."""
    per_expert = expert_weights(hidden, inter, moe_tp, gated)
    return 2.0 * tokens * topk / moe_ep * per_expert
