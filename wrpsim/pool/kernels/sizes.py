"""What one GPU of a `KernelLatency` instance holds: KV-cache bytes per token, weight bytes,
and the KV blocks its memory leaves beside them.

Functions of a latency model `lat` (`wrpsim.pool.kernels.model.KernelLatency`: its model
spec, GPU, tensor-parallel layout, precisions and KV dtype): byte counts from the model's
config.json numbers, and the block count they leave in the GPU's memory; computed when a model
or a pool is built, never in the hot loop.
`KernelLatency.kv_bytes_per_token_per_gpu`, `weight_bytes_per_gpu` and `kv_capacity_blocks`
are these, as the rest of wrpsim asks for them.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError
from wrpsim.pool.kernels import operators
from wrpsim.pool.kernels import roofline as rl
from wrpsim.pool.modelspec import fp8_scaled_bytes

GIB = float(1 << 30)


def kv_bytes_per_token_per_gpu(lat) -> float:
    """KV-cache bytes of one token on each GPU (MLA's latent KV is replicated on every
    GPU; every attention layer counted, see `ModelSpec.kv_bytes_per_token`; an instance
    pages sliding-window layers apart, `wrpsim.pool.window`). A DSA model adds its
    indexer's key cache (`ModelSpec.index_bytes_per_token_layer`, in the layers with an
    indexer: `ModelSpec.indexer_layers`) and stores an FP8 latent as
    vLLM's `fp8_ds_mla` does: the latent in FP8 with an FP32 scale per 128 values, its RoPE
    part in BF16 (656 bytes a layer for DeepSeek-V3.2, against 576)."""
    m = lat.model
    if m.dsa:
        if lat.kv_dtype == "fp8":
            per = fp8_scaled_bytes(m.kv_lora_rank) + 2 * m.qk_rope_head_dim
        else:
            per = m.kv_elems_per_token_layer() * rl.KV_BYTES[lat.kv_dtype]
        return float(m.attn_layers * per
                     + m.indexer_layers * m.index_bytes_per_token_layer)
    if m.split_attention:  # (Gemma 4: the full layers' own heads)
        slide, full = m.split_kv_elems(lat.atp)
        return (m.sliding_layers * slide + m.full_attn_layers * full
                ) * rl.KV_BYTES[lat.kv_dtype]
    per_layer = (m.kv_elems_per_token_layer() if m.mla
                 else 2 * lat.kv_heads_per_gpu * m.head_dim)
    return m.attn_layers * per_layer * rl.KV_BYTES[lat.kv_dtype]


def weight_bytes_per_gpu(lat) -> float:
    """Bytes of weights held by each GPU: experts in the expert precision, embeddings and
    LM head in BF16, everything else in the dense precision, all sharded over `tp` (with
    `attn_dp`, all but the experts over one group's `tp / attn_dp`). A DSA model's indexer
    and a latent MoE's projections to and from the experts' width are replicated on every
    GPU of the group instead (vLLM `ReplicatedLinear`)."""
    m = lat.model
    experts = m.expert_params
    embed = m.embedding_params
    dense = m.params - experts - embed
    rep = (m.indexer_layers * m.index_params_per_layer
           + m.moe_layers * m.latent_params_per_layer)
    extra = attn_extra_bytes_per_gpu(lat)
    if rep:
        return (sharded_weight_bytes(lat, dense - rep, experts, embed)
                + rep * rl.WEIGHT_BYTES[lat.dense_dtype] + extra)
    return sharded_weight_bytes(lat, dense, experts, embed) + extra


def sharded_weight_bytes(lat, dense: float, experts: float, embed: float) -> float:
    """`weight_bytes_per_gpu` of weights split over the GPUs (dense, expert, embedding
    parameters)."""
    if lat.adp > 1:
        return ((dense * rl.WEIGHT_BYTES[lat.dense_dtype] + embed * 2.0) / lat.atp
                + experts * rl.WEIGHT_BYTES[lat.moe_dtype] / lat.tp)
    return (dense * rl.WEIGHT_BYTES[lat.dense_dtype]
            + experts * rl.WEIGHT_BYTES[lat.moe_dtype] + embed * 2.0) / lat.tp


def attn_extra_bytes_per_gpu(lat) -> float:
    """Bytes the attention projections' weights on one GPU take beyond what the dense
    precision would give them (0 unless `attn_dtype` differs from `dense_dtype`), by
    `weight_bytes_per_gpu`'s convention: an MLA layer's fused q / kv down-projection, which
    every GPU reads whole, is charged as its share of the sharded dense weights; a DSA
    indexer's replicated projections in full (`rep` there)."""
    if lat.attn_dtype == lat.dense_dtype:
        return 0.0
    wb, extra = rl.WEIGHT_BYTES, 0.0
    for i, (n_l, dt, n, k) in enumerate(operators.attn_gemms(lat)):
        if dt != lat.attn_dtype:
            continue
        share = n_l * n * k / (lat.atp if lat.model.mla and i == 0 else 1)
        extra += share * (wb[dt] - wb[lat.dense_dtype])
    return extra


def kv_capacity_blocks(lat, block_size: int, gpu_mem_util: float = 0.9,
                       reserve_gib: float = 3.5, max_seqs: int = 0) -> int:
    """KV blocks per instance: floor((HBM x util - weights/tp - reserve - Mamba state of
    `max_seqs` sequences) / (block_size x KV bytes per token per GPU)), times `attn_dp`
    (each data-parallel group holds its own sequences' KV). `ConfigError` when nothing is
    left for one block (message gives the sizes in GiB)."""
    if block_size < 1 or not 0.0 < gpu_mem_util <= 1.0 or reserve_gib < 0:
        raise ConfigError(f"kv capacity needs block_size >= 1, 0 < gpu_mem_util <= 1 and "
                          f"reserve_gib >= 0; got {block_size}, {gpu_mem_util}, {reserve_gib}")
    usable = lat.gpu.mem_gib * gpu_mem_util - reserve_gib
    weights = lat.weight_bytes_per_gpu / GIB
    state = max_seqs * lat.mamba_state_bytes / lat.tp / GIB
    per_block = block_size * lat.kv_bytes_per_token_per_gpu
    blocks = math.floor((usable - weights - state) * GIB / per_block)
    if blocks < 1:
        from wrpsim.errors import FitError

        raise FitError(
            f"{lat.model.name} needs {weights:.1f} GiB of weights per GPU at tp={lat.tp} "
            f"({lat.precision}) on {lat.gpu.name} (mem_gib {lat.gpu.mem_gib:g} GiB x "
            f"gpu_mem_util {gpu_mem_util:.2f} - reserve_gib {reserve_gib:g} GiB = "
            f"{usable:.1f} GiB usable)"
            + (f" and {state:.1f} GiB of Mamba state for max_seqs = {max_seqs} "
               f"sequences" if state else "")
            + f", leaving no room for one KV block of {block_size} tokens: more GPUs "
            f"(tp), a narrower precision or a GPU with more memory")
    return blocks * lat.adp
