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


#: (intermediate, hidden) multiples vLLM pads MXFP4 experts to under the kernels the
#: precisions name (`Mxfp4MoEMethod.create_weights`): Marlin's (VLLM_MXFP4_USE_MARLIN=1) and
#: FlashInfer's TensorRT-LLM MXFP8-activation kernel's (Blackwell); `mxfp4` is the GPU's default
#: backend (`GpuSpec.mxfp4_pad_inter` / `mxfp4_pad_hidden`)
MXFP4_PADS = {"mxfp4_marlin": (128, 256), "mxfp4_mxfp8": (256, 256)}


def mxfp4_pad(lat) -> float:
    """The factor by which vLLM's padding of MXFP4 experts to its kernel's multiples
    (`MXFP4_PADS`, the GPU's default for `mxfp4`) enlarges the routed experts' weights on one
    GPU: (round_up(I_gpu, a_i) x round_up(H, a_h)) / (I_gpu x H), I_gpu the intermediate
    width one GPU holds of an expert (I / tp without expert parallelism, I with it). gpt-oss's
    2,880 pads to 3,072 on B200: 1.14 at TP 1, 1.48 at TP 8 (360 of each expert's width a GPU
    → 512); 1 for other precisions."""
    if lat.moe_dtype not in ("mxfp4", "mxfp4_marlin", "mxfp4_mxfp8") or not lat.model.moe:
        return 1.0
    a_i, a_h = MXFP4_PADS.get(lat.moe_dtype, (lat.gpu.mxfp4_pad_inter,
                                               lat.gpu.mxfp4_pad_hidden))
    m = lat.model
    inter = m.intermediate / (1 if lat.ep > 1 else lat.tp)
    hidden = m.expert_hidden

    def up(x: float, a: float) -> float:
        return math.ceil(x / a) * a if a > 1 else x

    return up(inter, a_i) * up(hidden, a_h) / (inter * hidden)


def weight_bytes_per_gpu(lat) -> float:
    """Bytes of weights held by each GPU: experts in the expert precision (MXFP4 experts
    padded as vLLM's kernel pads them: `mxfp4_pad`), embeddings and LM head in BF16,
    everything else in the dense precision, all sharded over `tp` (with `attn_dp`, all but
    the experts over one group's `tp / attn_dp`). Replicated on every GPU of the group instead
    (vLLM `ReplicatedLinear`, or a linear layer built with `disable_tp`): a DSA model's
    indexer, a latent MoE's projections to and from the experts' width, an MLA layer's fused
    q / kv down-projection (`mla_replicated_params`), all in the dense precision, and an MoE
    layer's router, in BF16 (unquantized)."""
    m = lat.model
    embed = m.embedding_params
    router = m.moe_layers * m.hidden * m.experts if m.moe else 0
    dense = m.params - m.expert_params - embed - router
    experts = m.expert_params * mxfp4_pad(lat)
    rep = (m.indexer_layers * m.index_params_per_layer
           + m.moe_layers * m.latent_params_per_layer + mla_replicated_params(m))
    return (sharded_weight_bytes(lat, dense - rep, experts, embed)
            + rep * rl.WEIGHT_BYTES[lat.dense_dtype] + router * 2.0
            + attn_extra_bytes_per_gpu(lat))


def mla_replicated_params(m) -> int:
    """An MLA model's fused q / kv down-projections (hidden -> q_lora_rank + kv_lora_rank +
    qk_rope_head_dim, every attention layer), which vLLM's DeepSeek layers build with
    `disable_tp` — every GPU holds and reads them whole (0.92 B weights of DeepSeek-V3); 0
    for other models."""
    if not m.mla:
        return 0
    return m.attn_layers * (m.q_lora_rank + m.kv_lora_rank + m.qk_rope_head_dim) * m.hidden


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
    precision would give them (0 unless `attn_dtype` differs from `dense_dtype`): each
    projection as one GPU holds it (`operators.attn_gemms`: an MLA layer's fused q / kv
    down-projection and a DSA indexer's projections whole, replicated as
    `weight_bytes_per_gpu` charges them)."""
    if lat.attn_dtype == lat.dense_dtype:
        return 0.0
    wb, extra = rl.WEIGHT_BYTES, 0.0
    for n_l, dt, n, k in operators.attn_gemms(lat):
        if dt == lat.attn_dtype:
            extra += n_l * n * k * (wb[dt] - wb[lat.dense_dtype])
    return extra


#: vLLM's start-up memory profile (V1 engine, `gpu_worker.determine_available_memory`): the
#: KV cache gets the GPU's memory as CUDA reports it x `gpu_memory_utilization`, less the
#: weights, the peak of PyTorch's allocations during a profiling pass, and the memory
#: allocated outside PyTorch. The profiling pass is a forward pass of `max_num_batched_tokens`
#: dummy tokens, then a dummy sampler pass over min(`max_num_seqs`, tokens) rows of logits of
#: the whole vocabulary with the pass's hidden states still held. Fitted on the vLLM logs of
#: six H100 servers at vLLM's defaults there (8,192 tokens, 1,024 sequences:
#: github.com/llm-d/llm-d-benchmark `config_explorer/empirical-vllm-memory-results.md`), where
#: the sampler pass is the peak: its activation peak less the hidden states (tokens x hidden x
#: 2 bytes) is 38.25–38.55 bytes per (sequence, vocabulary entry) for vocabularies of 128 k to
#: 201 k entries and hidden sizes of 1,024 to 8,192 — the float32 logits and the sampler's
#: copies of them (softmax, top-k / top-p sort values and int64 indices, cumulative sum),
#: about ten float32 values per logit (docs/validation.md, "KV capacity").
SAMPLER_BYTES_PER_LOGIT = 38.3
#: GiB a GPU's vLLM worker allocates outside PyTorch (cuBLAS workspaces, CUDA allocator
#: overhead) with one GPU: 0.13–0.14 in the same logs
NON_TORCH_GIB = 0.13
#: GiB more with tensor parallelism (NCCL and custom all-reduce buffers): 0.55 at TP 2 there
NON_TORCH_TP_GIB = 0.42
#: bytes per activation value (BF16 activations, whatever the weights' precision)
ACT_BYTES = 2.0


def forward_peak_values(lat) -> float:
    """Activation values per token live at once in one layer of the profiling forward pass on
    one GPU: the residual stream and the normed input (2 x hidden) beside the widest of the
    attention projections' outputs (query, key and value heads, then the output heads), a
    dense MLP's gate / up and activation outputs (3 x its intermediate / tp; 2 x without a
    gate) and a MoE layer's fused-expert buffers (per routed expert: gate / up, activation and
    down outputs) with its shared expert's."""
    m, tp = lat.model, lat.atp
    gate = 3 if m.gated_mlp else 2
    attn = (m.heads + 2 * m.kv_heads) * m.head_dim / tp
    dense_i = m.dense_intermediate if m.moe else m.intermediate
    mlp = gate * dense_i / tp if (not m.moe or m.dense_layers) else 0.0
    if m.moe:
        moe = m.active_experts * (gate * m.intermediate / tp + m.hidden)
        moe += gate * m.shared_intermediate / tp
        mlp = max(mlp, moe)
    return 2.0 * m.hidden + max(attn, mlp)


def profile_reserve_gib(lat, max_seqs: int, token_budget: int) -> float:
    """GiB per GPU that vLLM's start-up profile keeps from the KV cache beside the weights, for
    a scheduler of `max_seqs` sequences and `token_budget` batched tokens (its
    `max_num_seqs` / `max_num_batched_tokens`; with data-parallel attention each of the
    `attn_dp` ranks profiles its share): the memory outside PyTorch plus the larger peak of the
    profiling pass — the forward pass (`forward_peak_values` x tokens) or the sampler pass
    (`SAMPLER_BYTES_PER_LOGIT` x min(sequences, tokens) x vocabulary, beside the hidden states
    of the tokens). See `SAMPLER_BYTES_PER_LOGIT` for the sources."""
    m, adp = lat.model, lat.adp
    tokens = -(-int(token_budget) // adp)
    rows = min(-(-int(max_seqs) // adp), tokens)
    sampler = SAMPLER_BYTES_PER_LOGIT * rows * m.vocab + tokens * m.hidden * ACT_BYTES
    forward = tokens * forward_peak_values(lat) * ACT_BYTES
    non_torch = NON_TORCH_GIB + (NON_TORCH_TP_GIB if lat.tp > 1 else 0.0)
    return non_torch + max(sampler, forward) / GIB


def kv_capacity_blocks(lat, block_size: int, gpu_mem_util: float = 0.9,
                       reserve_gib: float | None = None, max_seqs: int = 0,
                       sched_seqs: int = 256, token_budget: int = 2048) -> int:
    """KV blocks per instance: floor((GPU memory x util - weights/tp - reserve - Mamba state
    of `max_seqs` sequences) / (block_size x KV bytes per token per GPU)), times `attn_dp`
    (each data-parallel group holds its own sequences' KV). The memory is what CUDA reports
    (`GpuSpec.visible_gib`); the reserve is `reserve_gib` where given, else vLLM's profiled
    one for a scheduler of `sched_seqs` sequences and `token_budget` tokens
    (`profile_reserve_gib`). `FitError` when nothing is left for one block (message gives the
    sizes in GiB)."""
    if reserve_gib is None:
        reserve_gib = lat.reserve_gib(sched_seqs, token_budget)
    if block_size < 1 or not 0.0 < gpu_mem_util <= 1.0 or not 0 <= reserve_gib < math.inf:
        raise ConfigError(f"kv capacity needs block_size >= 1, 0 < gpu_mem_util <= 1 and "
                          f"reserve_gib >= 0; got {block_size}, {gpu_mem_util}, {reserve_gib}")
    mem = lat.gpu.visible_gib
    usable = mem * gpu_mem_util - reserve_gib
    weights = lat.weight_bytes_per_gpu / GIB
    state = max_seqs * lat.mamba_state_bytes / lat.tp / GIB
    per_block = block_size * lat.kv_bytes_per_token_per_gpu
    blocks = math.floor((usable - weights - state) * GIB / per_block)
    if blocks < 1:
        from wrpsim.errors import FitError

        raise FitError(
            f"{lat.model.name} needs {weights:.1f} GiB of weights per GPU at tp={lat.tp} "
            f"({lat.precision}) on {lat.gpu.name} ({mem:g} GiB x "
            f"gpu_mem_util {gpu_mem_util:.2f} - reserve {reserve_gib:.2f} GiB = "
            f"{usable:.1f} GiB usable)"
            + (f" and {state:.1f} GiB of Mamba state for max_seqs = {max_seqs} "
               f"sequences" if state else "")
            + f", leaving no room for one KV block of {block_size} tokens: more GPUs "
            f"(tp), a narrower precision or a GPU with more memory")
    return blocks * lat.adp
