"""The per-token operators of a `KernelLatency` iteration, timed from the kernel tables.

Everything in an iteration whose time depends on its T tokens (or m sequences) alone, not on
their contexts: the projection GEMMs (`gemms`: QKV / MLA factors, output, dense and shared-expert
MLPs, the router, Mamba in / out projections, in the pool's precision), the fused MoE layers,
tensor-parallel all-reduces (vLLM's custom one in or out of a CUDA graph, fused with RMSNorm,
NCCL's on PCIe-only servers), expert-parallel dispatch (NCCL all-gather + reduce-scatter), the
element-wise kernels' traffic, and the LM head with sampling. Functions of a latency model `lat`
(`wrpsim.pool.kernels.model.KernelLatency`): the `*_s` and `*_curve` ones take an array of
token counts and return seconds per GPU; the others give what those are made of (GEMM shapes,
the element-wise bytes per token, the fusion's size limit, whether a layer is floored or a
shape measured). `linear_curve` and `head_curve` are the two curves the model precomputes for
T = 0 .. `max_tokens` (`wrpsim.pool.kernels.precomputed.compute`) and evaluates beyond, as
`KernelLatency._lin_at` / `_head_at` do (and `split_linear` for a data-parallel-attention
step with prompt chunks, `linear_parts` for `breakdown`). With
data-parallel attention (`attn_dp` > 1) the dense work is the busiest group's, the MoE work
all tokens' (`group_curve`, `moe_curve`, `split_linear`). See the model module's docstring
for what each term stands for.
"""

from __future__ import annotations

import numpy as np

from wrpsim.pool.kernels import roofline as rl


def moe_shape_measured(lat) -> bool:
    """False when the GPU's own MoE table lacks this model's expert shape (hidden, expert
    width, top-k, experts) in the precision its layers are timed from, which `Kernels.moe`
    then takes from the nearest measured shape by the roofline ratio (named in the
    calibration label); True otherwise, and where the tables do not say (another GPU's
    moved over, no table: the label says so already). Read on a cache miss (it reads the
    MoE table), stored with the curves."""
    m = lat.model
    get = getattr(lat.kernels, "moe_shapes", None)
    shapes = get(lat.moe_dtype) if get is not None and m.moe else None
    return not shapes or (m.expert_hidden, m.intermediate, m.active_experts,
                          m.experts) in shapes


def gemms(lat) -> list[tuple[int, str, int, int]]:
    """(layers, dtype, n, k) of every per-token projection GEMM on one GPU."""
    m, tp, d = lat.model, lat.atp, lat.dense_dtype
    h = m.hidden
    out = attn_gemms(lat)
    g = 2 if m.gated_mlp else 1
    dense_layers = m.dense_layers if m.moe else m.ffn_layers
    width = (m.dense_intermediate or m.intermediate) if m.moe else m.intermediate
    if dense_layers:
        out.append((dense_layers, d, g * width // tp, h))
        out.append((dense_layers, d, h, width // tp))
    if m.moe and m.shared_intermediate:
        out.append((m.moe_layers, d, g * m.shared_intermediate // tp, h))
        out.append((m.moe_layers, d, h, m.shared_intermediate // tp))
    if m.moe:
        out.append((m.moe_layers, "bf16", m.experts, h))
    if m.moe_latent:  # the projections to the experts' width and back (replicated)
        out.append((m.moe_layers, d, m.moe_latent, h))
        out.append((m.moe_layers, d, h, m.moe_latent))
    if m.mamba_layers:
        d_in = m.mamba_heads * m.mamba_head_dim
        n_in = 2 * d_in + 2 * m.mamba_groups * m.ssm_state + m.mamba_heads
        out.append((m.mamba_layers, d, n_in // tp, h))
        out.append((m.mamba_layers, d, h, d_in // tp))
    return [(n_l, dt, max(1, n), max(1, k)) for n_l, dt, n, k in out if n_l]


def attn_gemms(lat) -> list[tuple[int, str, int, int]]:
    """(layers, dtype, n, k) of the attention projections on one GPU (QKV / MLA factors,
    output, a DSA indexer's), in the attention dtype (`attn_dtype`)."""
    m, tp, a = lat.model, lat.atp, lat.attn_dtype
    h, H = m.hidden, m.heads
    out = []
    if m.mla:
        out.extend((m.attn_layers, a, n, k) for n, k in mla_projections(lat))
        if m.dsa:  # the indexer's query, key and head-weight projections (replicated)
            n_idx = m.indexer_layers
            out.append((n_idx, a, m.index_heads * m.index_head_dim, m.q_lora_rank or h))
            out.append((n_idx, a, m.index_head_dim, h))
            out.append((n_idx, "bf16", m.index_heads, h))
    else:
        q = H // tp * (2 if m.attn_gate else 1)  # (a gated attention's gate beside Q)
        if m.split_attention:  # (Gemma 4: the full layers' own QKV and output shapes)
            kv = (1 if m.global_k_eq_v else 2) * lat.full_kv_heads_per_gpu
            out.append((m.full_attn_layers, a, (q + kv) * m.full_head_dim, h))
            out.append((m.full_attn_layers, a, h, H // tp * m.full_head_dim))
        n = m.sliding_layers if m.split_attention else m.attn_layers
        out.append((n, a, (q + 2 * lat.kv_heads_per_gpu) * m.head_dim, h))
        out.append((n, a, h, H // tp * m.head_dim))
    return out


def mla_projections(lat) -> list[tuple[int, int]]:
    """(n, k) of an MLA layer's projection GEMMs on one GPU: the fused q / kv
    down-projection, q up-projection, kv up-projection, output projection."""
    m, tp = lat.model, lat.atp
    h, H, qk = m.hidden, m.heads, m.head_dim
    nope = qk - m.qk_rope_head_dim
    out = [(m.q_lora_rank + m.kv_lora_rank + m.qk_rope_head_dim, h)]
    if m.q_lora_rank:
        out.append((H // tp * qk, m.q_lora_rank))
    out.append((H // tp * (nope + m.v_head_dim), m.kv_lora_rank))
    out.append((h, H // tp * m.v_head_dim))
    return out


def linear_curve(lat, T: np.ndarray) -> np.ndarray:
    """Seconds of the per-token terms (GEMMs, MoE, all-reduce, element-wise) at T tokens of
    the instance (with `attn_dp`, when the tokens are one per sequence: the busiest group's
    ceil(T / attn_dp) through its dense layers, all T through the MoE layers; a step with
    prompt chunks is split by `split_linear`)."""
    if lat.adp > 1:
        return np.where(T > 0, group_curve(lat, np.ceil(T / lat.adp))
                        + moe_curve(lat, T), 0.0)
    m = lat.model
    t = gemms_s(lat, T)
    if m.moe:
        t += moe_layers_s(lat, T)
    if lat.coll_tp > 1:  # (expert-parallel or not, the MoE output is all-reduced like any)
        t += dense_allreduce_s(lat, lat._layers_total, T)
    t += stream_s(lat, T)
    return np.where(T > 0, t, 0.0)


def group_curve(lat, Tg: np.ndarray) -> np.ndarray:
    """attn_dp: seconds of one group's dense work at Tg tokens on that group: projection
    GEMMs, the all-reduce inside the group, element-wise traffic."""
    t = gemms_s(lat, Tg)
    if lat.coll_tp > 1:
        t += dense_allreduce_s(lat, lat._layers_total - lat.model.moe_layers, Tg)
    return t + stream_s(lat, Tg)


def moe_curve(lat, T: np.ndarray) -> np.ndarray:
    """attn_dp: seconds of the MoE layers over all T tokens of the instance on all tp GPUs,
    the tokens gathered from every group and scattered back."""
    return (moe_layers_s(lat, T)
            + dispatch_s(lat, lat.model.moe_layers, lat.tp, T))


def gemms_s(lat, T: np.ndarray) -> np.ndarray:
    """Seconds of every projection GEMM (`gemms`) at T tokens."""
    k = lat.kernels
    t = np.zeros(len(T))
    for n_l, dt, n, kk in gemms(lat):
        t += n_l * fp8_block_floor(lat, dt, k.gemm(dt, n, kk)(T),
                                         lambda n=n, kk=kk: k.gemm("bf16", n, kk)(T))
    return t


def fp8_block_floor(lat, dtype: str, t: np.ndarray, bf16) -> np.ndarray:
    """`t`, seconds of a layer in `dtype`, no shorter than `bf16()` (the same layer in
    BF16) where `dtype` is block FP8 and the engine runs such layers no faster than BF16
    (`EngineConstants.fp8_block_no_faster_than_bf16`)."""
    if not fp8_block_floored(lat, dtype):
        return t
    return np.maximum(t, bf16())


def fp8_block_floored(lat, dtype: str) -> bool:
    """Whether `dtype` layers are floored at BF16 (`fp8_block_floor`): block FP8 under an
    engine that runs it no faster than BF16, on a GPU with FP8 tensor cores (without them
    vLLM runs FP8 weight-only through Marlin, a kernel the setting says nothing about)."""
    return (dtype == "fp8_block" and lat.c.fp8_block_no_faster_than_bf16
            and rl.has_math(lat.gpu, dtype))


def moe_layers_s(lat, T: np.ndarray) -> np.ndarray:
    """Seconds of the fused MoE layers at T tokens (experts spread by `ep` = tp, else
    sharded by tensor parallelism)."""
    m = lat.model
    moe_tp, moe_ep = (1, lat.tp) if lat.ep > 1 else (lat.tp, 1)
    shape = (m.expert_hidden, m.intermediate, m.active_experts, m.experts, moe_tp, moe_ep,
             m.gated_mlp)
    t = lat.kernels.moe(lat.moe_dtype, *shape)(T)
    return m.moe_layers * fp8_block_floor(
        lat, lat.moe_dtype, t, lambda: lat.kernels.moe("bf16", *shape)(T))


def allreduce_s(lat, layers: int, T: np.ndarray) -> np.ndarray:
    """Seconds of `layers` all-reduces of T x hidden over the all-reduce group: vLLM's
    custom all-reduce in a CUDA graph up to `cudagraph_max_tokens`, eagerly above; NCCL's
    for more than two GPUs without a scale-up fabric (`GpuSpec.scaleup` pcie: vLLM turns
    its custom all-reduce off there, for it needs every GPU pair linked)."""
    k, g, e = lat.kernels, lat.coll_tp, T * lat.model.hidden
    if nccl_only(lat.gpu, lat.coll_tp):
        return layers * k.nccl("all_reduce", g)(e)
    t = unfused_allreduce_s(lat, e, T)
    mb = fusion_mb(lat)
    if mb > 0:
        # the fused kernel up to vLLM's size limit, which vLLM tuned to where it stops
        # being the faster (vllm-project/vllm#24248): no slower than the custom all-reduce
        # there, so that a table whose crossing lies below the limit cannot make a larger
        # step the faster one
        limit = mb * 1024 * 1024 / 2.0  # bf16 elements
        t = np.where(e <= limit, np.minimum(k.allreduce_fused(g)(e), t), t)
    return layers * t


def nccl_only(gpu, group: int) -> bool:
    """Whether an all-reduce group of `group` `gpu`s runs NCCL's all-reduce, not vLLM's custom
    one (nor its fusion with RMSNorm): more than two GPUs without a scale-up fabric
    (`GpuSpec.scaleup` pcie), where vLLM turns the custom all-reduce off (it needs every GPU
    pair linked)."""
    return group > 2 and gpu.scaleup == "pcie"


def dense_allreduce_s(lat, layers: int, T: np.ndarray) -> np.ndarray:
    """`allreduce_s` of `layers` blocks' outputs, plus, for a model whose QK norm spans
    every head (`ModelSpec.qk_norm_allreduce`), one all-reduce per attention layer of its
    norm's variance: T x 2 FP32 values (as 4T bf16 elements of the tables), not fused."""
    t = allreduce_s(lat, layers, T)
    if lat.model.qk_norm_allreduce:
        e, g = 4.0 * T, lat.coll_tp
        small = (lat.kernels.nccl("all_reduce", g)(e) if nccl_only(lat.gpu, lat.coll_tp)
                 else unfused_allreduce_s(lat, e, T))
        t = t + lat.model.attn_layers * small
    return t


def unfused_allreduce_s(lat, e: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Seconds of one all-reduce of `e` bf16 elements over the group, vLLM's custom one:
    in a CUDA graph when the step's T tokens are within `cudagraph_max_tokens`, else
    eagerly."""
    k, g = lat.kernels, lat.coll_tp
    return np.where(T <= lat.c.cudagraph_max_tokens, k.allreduce(g, True)(e),
                    k.allreduce(g, False)(e))


def fusion_mb(lat) -> float:
    """The all-reduce + RMSNorm fusion's size limit in MiB, 0 when it is off: on with a
    limit (`engines._fusion` resolves the engine's default for the GPU and group) where
    the GPU's tables measure the fused kernel."""
    c = lat.c
    if not (c.allreduce_fusion and c.allreduce_fusion_mb > 0):
        return 0.0
    return c.allreduce_fusion_mb if lat.kernels.measures_fused_allreduce() else 0.0


def dispatch_s(lat, layers: int, g: int, T: np.ndarray) -> np.ndarray:
    """Seconds of `layers` MoE dispatches of T tokens over g GPUs (NCCL all-gather, then
    reduce-scatter of the expert outputs, T x the experts' width each: `hidden`, or a
    latent MoE's `moe_latent`). With data-parallel attention and an all-to-all backend
    (`EngineConstants.moe_all2all`) each GPU instead sends its T / g tokens to the GPUs
    holding their top-k experts and takes their outputs back: two all-to-alls of
    T / g x d x width elements a GPU, d = g (1 - (1 - 1/g)^k) the distinct GPUs a token's k
    experts lie on under uniform routing (`all2all_ranks`)."""
    k, m = lat.kernels, lat.model
    if lat.c.moe_all2all and lat.adp > 1:
        e = T / g * all2all_ranks(g, m.active_experts) * m.expert_hidden
        return layers * 2.0 * k.nccl("alltoall", g)(e)
    e = T * m.expert_hidden
    return layers * (k.nccl("all_gather", g)(e) + k.nccl("reduce_scatter", g)(e))


def all2all_ranks(g: int, topk: int) -> float:
    """Expected distinct GPUs among g holding a token's `topk` experts, experts spread evenly
    and routed uniformly: g (1 - (1 - 1/g)^topk) (a token sends one copy to each)."""
    return g * (1.0 - (1.0 - 1.0 / g) ** topk)


def stream_bytes_per_token(lat, all_bytes: bool = False) -> float:
    """Bytes the element-wise kernels move per token of its group (all layers, one GPU);
    without those the measured MLA module already times (RoPE, KV-cache write) unless
    `all_bytes` (the power model counts every byte the GPU moves)."""
    m, tp = lat.model, lat.atp
    h = m.hidden
    norms = lat._layers_total * 4 * h * 2.0  # residual add + RMSNorm: read 2h, write 2h
    if lat._mla_tables and not all_bytes:  # RoPE, KV-cache write: in the measured module
        rope = kv = 0.0
    elif m.mla:
        rope = m.attn_layers * (m.heads // tp + 1) * m.qk_rope_head_dim * 2 * 2.0
    elif m.split_attention:
        rope = (m.sliding_layers * (m.heads // tp + lat.kv_heads_per_gpu) * m.head_dim
                + m.full_attn_layers * (m.heads // tp + lat.full_kv_heads_per_gpu)
                * m.full_head_dim) * 2 * 2.0
    else:
        rope = m.attn_layers * (m.heads // tp + lat.kv_heads_per_gpu) * m.head_dim * 2 * 2.0
    if all_bytes or not lat._mla_tables:
        kv = lat.kv_bytes_per_token_per_gpu * (1.0 + 2.0 / rl.KV_BYTES[lat.kv_dtype])
    dense_layers = m.dense_layers if m.moe else m.ffn_layers
    width = (m.dense_intermediate or m.intermediate) if m.moe else m.intermediate
    act = dense_layers * 3 * width / tp * 2.0
    if m.moe and m.shared_intermediate:
        act += m.moe_layers * 3 * m.shared_intermediate / tp * 2.0
    # (a Gated DeltaNet layer's scan over its prompt tokens is in its measured prefill
    # kernels where the tables have them, `attention.gdn_table`; the power model counts its bytes)
    scan = 0.0 if lat._gdn is not None and not all_bytes else (
        m.mamba_layers * 6 * m.mamba_heads * m.mamba_head_dim / tp * 2.0)
    return norms + rope + kv + act + scan


def stream_s(lat, T: np.ndarray) -> np.ndarray:
    """Seconds of the element-wise kernels' traffic at T tokens."""
    return T * stream_bytes_per_token(lat) / lat._stream


def busy_tokens(lat, prefill_tokens: int, pre_seqs: int, decode_seqs: int) -> int:
    """attn_dp: tokens of the busiest group in a step with prompt chunks. A request lives
    on one group, so a chunk is never split: that group holds ceil(chunks / attn_dp) of the
    chunks (their share of the prompt tokens) and ceil(decodes / attn_dp) decodes."""
    return (-(-prefill_tokens * -(-pre_seqs // lat.adp) // pre_seqs)
            + -(-decode_seqs // lat.adp))


def split_linear(lat, prefill_tokens: int, pre_seqs: int, decode_seqs: int) -> float:
    """attn_dp: per-token seconds of a step with prompt chunks: the busiest group's dense
    work (`busy_tokens`), the MoE work of all tokens."""
    busy = busy_tokens(lat, prefill_tokens, pre_seqs, decode_seqs)
    x = np.array([float(busy), float(prefill_tokens + decode_seqs)])
    return float(group_curve(lat, x[:1])[0] + moe_curve(lat, x[1:])[0])


def head_curve(lat, M: np.ndarray) -> np.ndarray:
    """Seconds of LM head and sampling for M sequences (the busiest group's share)."""
    m = lat.model
    M = M if lat.adp == 1 else np.ceil(M / lat.adp)
    t = lat.kernels.gemm("bf16", -(-m.vocab // lat.atp), m.hidden)(M)
    t = t + (lat.c.sampling_floor_us * 1e-6
             + lat.c.sampling_passes * M * m.vocab * 4.0 / lat._stream)
    return np.where(M > 0, t, 0.0)


def linear_parts(lat, busy: float, total: float) -> dict[str, float]:
    """`linear_curve`'s terms by operator (see `breakdown`): the dense layers' work at
    `busy` tokens (the busiest attention group's; all tokens without `attn_dp`), the MoE
    layers' at `total`."""
    m, b, a = lat.model, np.array([busy]), np.array([total])
    out = {"gemms": float(gemms_s(lat, b)[0]), "elementwise": float(stream_s(lat, b)[0])}
    # (tensor-parallel attention, expert-parallel or not: the MoE output is all-reduced like
    # any block's; data-parallel attention: the MoE layers' tokens are dispatched instead)
    dp = lat.adp > 1
    dense_ar, moe_at = (lat._layers_total - m.moe_layers, a) if dp else (lat._layers_total, b)
    if m.moe:
        out["moe_experts"] = float(moe_layers_s(lat, moe_at)[0])
    if lat.coll_tp > 1:
        out["all_reduce"] = float(dense_allreduce_s(lat, dense_ar, b)[0])
    if dp and m.moe_layers:
        out["moe_dispatch"] = float(dispatch_s(lat, m.moe_layers, lat.tp, a)[0])
    return out
