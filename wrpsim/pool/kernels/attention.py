"""Attention of a `KernelLatency` instance from the kernel tables: its prefill and decode grids.

The latency model interpolates attention in two `tables.Grid`s (batch x prompt length for
prefill, batch x context for decode), built here once per model (`attention_grids`), by head
layout: multi-head / grouped-query attention from the attention tables (`mha_grids`; Gemma 4's
full layers on their own, `full_grids`), MLA composed from them (`composed_mla_grids`) or
taken from the measured MLA module (`mla_module_grids`), DeepSeek Sparse Attention's measured
module with its indexer and sparse kernel fitted per key and per pair (`dsa_fit`), or, without
it, their costs from FLOPs and bytes (`indexer_costs`, `sparse_prefill_pair_s`); a Gated
DeltaNet model's measured prefill kernels (`gdn_table`). Functions of a latency model `lat`
(`wrpsim.pool.kernels.model.KernelLatency`); the hot loop reads only the grids' rows.
"""

from __future__ import annotations

import numpy as np

from wrpsim.pool.kernels import operators
from wrpsim.pool.kernels import roofline as rl

#: the share of the BF16 peak DeepSeek's FlashMLA sparse prefill kernel reaches: 640 TFLOP/s on
#: an H800 SXM5 (989 dense BF16; deepseek-ai/FlashMLA README, 2025-09-29 release notes)
SPARSE_MLA_EFFICIENCY = 640.0 / 989.0
#: smallest step (prompt tokens) whose measured DSA module growth `dsa_fit` fits
DSA_FIT_MIN_TOKENS = 4096


def head_dim_note(lat) -> str:
    """For the calibration label: a KV dtype the GPU's attention tables did not measure at
    all (its attention timed from their BF16 KV rows by the roofline ratio, `Kernels._attn`),
    else the attention head widths of the model (its full-attention layers' own, Gemma 4)
    that they did not measure with this KV dtype, timed from the nearest measured shape by
    the roofline ratio; '' when all were measured, for MLA (its own tables) or where the
    tables do not say."""
    m = lat.model
    kvs = getattr(lat.kernels, "attn_kv_dtypes", lambda: None)()
    if kvs is not None and not m.mla and lat.kv_dtype not in kvs:  # (the tables' BF16 rows)
        return (f"; {lat.kv_dtype} KV attention: not measured, the bf16 KV rows by the "
                f"roofline ratio")
    get = getattr(lat.kernels, "attn_head_dims", None)
    dims = get(lat.kv_dtype) if get is not None and not m.mla else None
    if dims is None:
        return ""
    missing = sorted({m.head_dim, m.full_head_dim} - dims)
    if not missing:
        return ""
    return (f"; attention {', '.join(map(str, missing))} wide ({lat.kv_dtype} KV): not "
            f"measured, the nearest measured shape by the roofline ratio")


def indexer_costs(lat) -> tuple[float, float]:
    """DSA: seconds of the lightning indexer, all its layers (`ModelSpec.indexer_layers`:
    GLM-5's shared layers reuse the top-k of the layer before), on each GPU (vLLM
    replicates it over tensor parallelism), per (decoding sequence, cached key) and per
    prefill (query, key) pair; (0, 0) without DSA.

    Scoring a key is 2 x index_heads x index_head_dim FLOPs (one query's heads against
    the key, summed over heads in the kernel: DeepGEMM's `fp8_mqa_logits` writes one FP32
    logit per pair), at the rate the GPU's GEMM table gives a compute-bound GEMM (m = n = k
    = 8,192) in FP8 where the GPU has FP8 tensor cores, else BF16; the logit is written and
    read back by the top-k selection (8 bytes); in decode the query also reads the key's
    cache entry (`ModelSpec.index_bytes_per_token_layer`), once per sequence. Traffic at
    the streaming bandwidth; each key or pair takes the longer of its compute and its
    traffic."""
    m = lat.model
    if not m.dsa:
        return 0.0, 0.0
    dt = "fp8" if rl.has_math(lat.gpu, "fp8") else "bf16"
    n = 8192
    t = float(lat.kernels.gemm(dt, n, n)(np.array([float(n)]))[0])
    flops = 2.0 * m.index_heads * m.index_head_dim * t / rl.gemm_flops(n, n, n)
    read = (m.index_bytes_per_token_layer + 8.0) / lat._stream
    logits = 8.0 / lat._stream
    layers = m.indexer_layers
    return layers * max(flops, read), layers * max(flops, logits)


def sparse_mla_heads(lat) -> int:
    """Query heads a GPU's sparse MLA kernels compute: its own `heads / tp`, padded to the
    GPU's `mla_sparse_heads` (vLLM pads to the 64 or 128 FlashMLA's kernels are built for)."""
    return max(lat.model.heads // lat.atp, int(lat.gpu.mla_sparse_heads))


def sparse_prefill_pair_s(lat) -> float:
    """DSA: seconds of the sparse MLA prefill kernel per query's top-k slot (FP8 KV: vLLM
    gathers and dequantizes all `index_topk` of them for every query, however few keys
    precede it) or per picked key (BF16 KV), as the measured modules grow (`dsa_fit`),
    all attention layers, on each GPU; 0 without DSA.

    DeepSeek's FlashMLA sparse prefill runs MLA's absorbed (MQA) form: every query head
    against the picked key's latent (kv_lora_rank + rope wide) and latent value
    (kv_lora_rank), 2 x (2 x kv_lora_rank + rope) FLOPs a head, with the heads of one query
    as the kernel's rows — padded to the GPU's `mla_sparse_heads` (64 on Hopper, 128 on
    Blackwell: vLLM pads a GPU's fewer heads), each query reading its own picked keys'
    cache entries. A pair takes the longer of its FLOPs at 65 % of the GPU's BF16 peak (the
    640 TFLOP/s FlashMLA's README reports for the kernel on an H800, of 989) and its
    cache entry at the streaming bandwidth."""
    m = lat.model
    if not m.dsa:
        return 0.0
    flops = 2.0 * sparse_mla_heads(lat) * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
    rate = SPARSE_MLA_EFFICIENCY * rl.peak_flops(lat.gpu, "bf16")
    entry = (lat.kv_bytes_per_token_per_gpu
             - m.indexer_layers * m.index_bytes_per_token_layer) / m.attn_layers
    return m.attn_layers * max(flops / rate, entry / lat._stream)


def mla_module_applies(lat, kind: str = "mla") -> bool:
    """Whether the GPU's MLA (`kind` "mla") or DeepSeek Sparse Attention ("dsa") module
    tables time this model's attention: an MLA model (a DSA one for "dsa") of the tables'
    attention shape (`Kernels.mla_module`, `Kernels.dsa_module`), whose heads per GPU
    were measured."""
    m = lat.model
    if not m.mla or (kind == "dsa" and not m.dsa):
        return False
    shape = getattr(lat.kernels, f"{kind}_module", lambda: None)()
    if not shape:
        return False
    own = {"hidden": m.hidden, "q_lora_rank": m.q_lora_rank, "kv_lora_rank": m.kv_lora_rank,
           "qk_rope_head_dim": m.qk_rope_head_dim,
           "qk_nope_head_dim": m.head_dim - m.qk_rope_head_dim, "v_head_dim": m.v_head_dim,
           "index_topk": m.index_topk, "index_heads": m.index_heads,
           "index_head_dim": m.index_head_dim}
    if any(own.get(f) != v for f, v in shape.items()):
        return False
    heads = m.heads // lat.atp
    table = getattr(lat.kernels, kind)
    return all(table(ph, lat.kv_dtype, lat.attn_dtype, heads) is not None
               for ph in ("prefill", "decode"))


def dsa_module_applies(lat) -> bool:
    """`mla_module_applies` for DeepSeek Sparse Attention's measured module."""
    return mla_module_applies(lat, "dsa")


def mla_module_grids(lat, kind: str = "mla"):
    """The prefill and decode attention `Grid`s of an MLA model from the measured MLA module
    (`kind` "dsa": DeepSeek Sparse Attention's, whose projections include the indexer's).

    At each measured cell, the module's time minus its projection GEMMs at the cell's tokens
    (the linear term times those at T for the whole batch) is the rest of the module: the
    attention kernels, norms, RoPE and the KV-cache write (in decode the absorbed per-head
    products stand where the kv up-projection GEMM is subtracted: the same FLOPs).
    Its growth above the smallest measured cell (batch 1, shortest length) is taken as
    measured; its fixed part is not: the collector times one module per CUDA-graph launch,
    so the smallest cell holds a graph launch and every small kernel's minimum duration,
    which in an engine that runs the whole model in one graph are paid once per iteration
    or hidden (67 us on H200 but 30 us on B200 at one head). The smallest cell keeps the
    composed attention kernel's time there (`composed_mla_grids`), as without the tables,
    and the per-layer floor (`layer_overhead_us`) stands for the small kernels."""
    from wrpsim.pool.kernels.borrowed import short_loop
    from wrpsim.pool.kernels.tables import Grid

    k, heads = lat.kernels, lat.model.heads // lat.atp
    # the module was timed in short loops: take off its projections as such loops time
    # them, not at the sustained rate the model's own GEMM term runs them at
    loop = short_loop(k)
    out = []
    dtypes = [lat.attn_dtype]
    if operators.fp8_block_floored(lat, lat.attn_dtype):  # the module no faster than in BF16
        dtypes.append("bf16")
    m = lat.model
    table = getattr(k, kind)
    extra = []  # (projections in their own precision)
    if kind == "dsa":  # the indexer's query and key projections in the module's
        # precision, its per-head weights in BF16 (as `operators.gemms` times them)
        extra = [("bf16", m.index_heads, m.hidden)]
        projs = [*operators.mla_projections(lat), (m.index_heads * m.index_head_dim,
                                            m.q_lora_rank or m.hidden),
                 (m.index_head_dim, m.hidden)]
    else:
        projs = operators.mla_projections(lat)
    for phase, base in zip(("prefill", "decode"), composed_mla_grids(lat)):
        grid = t = None
        for dtype in dtypes:
            g, gemm = table(phase, lat.kv_dtype, dtype, heads)
            curves = [loop.gemm(gemm, n, kk) for n, kk in projs]
            curves += [loop.gemm(dt, n, kk) for dt, n, kk in extra]
            tokens = np.outer(g.b, g.s) if phase == "prefill" else np.repeat(
                g.b[:, None], len(g.s), axis=1)
            rest = g.t - sum(c(tokens) for c in curves)
            b0, s0 = float(g.b[0]), float(g.s[0])
            floor = float(np.interp(s0, base.s, base.row(b0)))
            tg = floor + np.maximum(rest - rest[0, 0], 0.0)
            if grid is None:
                grid, t = g, tg
            else:  # the BF16 module's rest, on the first grid's cells
                t = np.maximum(t, np.array([np.interp(grid.s, g.s, Grid(g.b, g.s, tg).row(b))
                                            for b in grid.b]))
        t = np.maximum.accumulate(np.maximum.accumulate(t, axis=0), axis=1)
        out.append(Grid(grid.b, grid.s, t, grid.measured))
    return tuple(out)


def attention_grids(lat):
    """The prefill and decode attention `Grid`s of this instance's head layout (one
    group's heads with `attn_dp`)."""
    if lat._dsa_tables:
        return mla_module_grids(lat, "dsa")
    if lat._mla_tables:
        return mla_module_grids(lat)
    return composed_mla_grids(lat) if lat.model.mla else mha_grids(lat)


def dsa_fit(lat, pre, dec):
    """DeepSeek Sparse Attention's constants from its measured module (`mla_module_grids`
    "dsa": per layer, projections out): ([1 (the flag: fitted), indexer seconds per
    decoding sequence and cached key (pooled over the batches), indexer seconds per prefill
    (query, key) pair scored, sparse MLA seconds per prefill query's top-k slot, and per
    (query, picked key) pair], the indexer's over its layers (`ModelSpec.indexer_layers`),
    the sparse kernel's over all attention layers; per batch of the decode grid the
    indexer's seconds per cached key of a step, its layers; the decode grid less the
    indexer's share).

    Decode: past `index_topk` cached keys the sparse kernel reads a fixed 2,048 keys, so
    a step grows by the indexer alone: its seconds per (sequence, key) are the
    least-squares slope of the measured growth beyond `index_topk`, per batch of the grid
    (interpolated between them, `KernelLatency._dec_row`; a small batch's scoring is
    latency-bound: on an H200 one sequence's step grows many times as much per key as one of
    256's); the grid
    keeps the rest (queried at up to `index_topk` keys, `KernelLatency._decode_attn`;
    the indexer term adds the whole context's scoring back). Prefill: the measured growth
    of fresh prompts above the grid's smallest cell (its fixed part is the composed floor,
    as for MLA), over the cells measured, fitted (least squares: the long prompts, where
    DSA's time goes, weigh most; non-negative) as a x top-k slots + b x picked pairs
    (query i picks min(i, `index_topk`) keys, `model._window_pairs`) + c x scored pairs (every
    causal pair). With FP8 KV the measured module takes as long for 256 prompts of 16
    tokens as for one of 4,096 — vLLM gathers and dequantizes all of a query's slots — so
    a carries it; with BF16 KV it grows with the picked keys, b. The uncalibrated model
    takes the same terms from FLOPs and bytes (`sparse_prefill_pair_s`,
    `indexer_costs`). With shared indexers (`ModelSpec.index_layers`, GLM-5) the fitted
    per-key and per-pair indexer terms count the indexer's layers only; the grid's fixed
    part, measured on a module whose every layer has an indexer, keeps the indexer's
    fixed kernels in every layer (no shipped model has both the measured module's shape
    and shared indexers)."""
    from wrpsim.pool.kernels.tables import Grid

    m, top = lat.model, float(lat.model.index_topk)
    bb, ss = np.meshgrid(dec.b, dec.s, indexing="ij")
    at_top = np.array([np.interp(top, dec.s, row) for row in dec.t])[:, None]
    # the measured cells only (a batch of long contexts the collector could not hold is
    # filled from rooflines)
    far = (ss > top) & (True if dec.measured is None else dec.measured)
    x = (bb * (ss - top))[far]
    slope = max(float(np.sum(x * (dec.t - at_top)[far]) / np.sum(x * x)), 0.0) \
        if far.any() else 0.0
    # each batch's own growth per key (a small batch's scoring runs far below the
    # bandwidth a large one reaches), the pooled per-sequence slope where a row has no
    # measured cell past the top-k
    rows = []
    for i, b in enumerate(dec.b):
        d = ss[i][far[i]] - top
        rows.append(max(float(np.sum(d * (dec.t[i] - at_top[i])[far[i]]) / np.sum(d * d)),
                        0.0) if far[i].any() else slope * float(b))
    k = np.array(rows)
    dec = Grid(dec.b, dec.s, np.maximum(dec.t - k[:, None] * ss, 0.0), dec.measured)
    slot, pick, score = dsa_prefill_fit(pre, top)
    # the sparse kernel runs in every attention layer, the indexer in its own layers
    n, n_idx = m.attn_layers, m.indexer_layers
    return (np.array([1.0, n_idx * slope, n_idx * score, n * slot, n * pick]), n_idx * k,
            dec)


def gdn_table(lat):
    """The measured prefill kernels of one of this model's Gated DeltaNet layers on one
    GPU (its value and key heads split over the group's `tp / attn_dp` GPUs, as vLLM
    shards them; `Kernels.gdn_prefill`), or None: not such a model, or no table. Read on
    a cache miss; stored with the curves (`_gdn`)."""
    m = lat.model
    if not m.gated_delta or not m.mamba_layers:
        return None
    get = getattr(lat.kernels, "gdn_prefill", None)
    if get is None:
        return None
    return get(max(1, m.mamba_groups // lat.atp), m.ssm_state,
               max(1, m.mamba_heads // lat.atp), m.mamba_head_dim)


def composed_mla_grids(lat):
    """MLA attention from the attention tables: prefill as multi-head attention over the
    q / k head dimension, decode as the absorbed multi-query form over the latent KV."""
    m, tp, k = lat.model, lat.atp, lat.kernels
    pre = k.attn_prefill(lat.kv_dtype, m.heads // tp, m.heads // tp, m.head_dim)
    dec = k.attn_decode(lat.kv_dtype, m.heads // tp, 1, m.kv_lora_rank + m.qk_rope_head_dim)
    return pre, dec


def mha_grids(lat):
    """Attention of the model's head layout on one GPU from the attention tables (of its
    sliding-window layers where the full layers have their own: `full_grids`)."""
    m, tp, k = lat.model, lat.atp, lat.kernels
    pre = k.attn_prefill(lat.kv_dtype, m.heads // tp, lat.kv_heads_per_gpu, m.head_dim)
    dec = k.attn_decode(lat.kv_dtype, m.heads // tp, lat.kv_heads_per_gpu, m.head_dim)
    return pre, dec


def full_grids(lat, pre, dec):
    """The full-attention layers' prefill and decode times (Gemma 4's wider heads and own
    KV heads: `ModelSpec.split_attention`) from the attention tables, on the batches and
    lengths of `pre` and `dec` (the other layers' grids) so that one context grid serves
    both: arrays like `pre.t` and `dec.t` (the table's times at those points, so linear
    between the other grid's points; grown as `_interp_tail` grows them beyond the table's
    last length)."""
    m, tp, k = lat.model, lat.atp, lat.kernels
    args = (lat.kv_dtype, m.heads // tp, lat.full_kv_heads_per_gpu, m.full_head_dim)
    return (on_grid(k.attn_prefill(*args), pre), on_grid(k.attn_decode(*args), dec))


def on_grid(g, ref) -> np.ndarray:
    """Grid `g`'s times at `ref`'s batches and lengths (`Grid.row` at each of ref.b, then
    `_interp_tail` at ref.s): an array shaped like `ref.t`."""
    from wrpsim.pool.kernels.model import _interp_tail

    return np.array([_interp_tail(ref.s.astype(np.float64), g.s, g.row(float(b)))
                     for b in ref.b])


def dsa_prefill_terms(b, s, top: float) -> np.ndarray:
    """The three prefill terms of a DSA layer for `b` fresh prompts of `s` tokens (arrays of
    one shape): top-k slots, picked keys, scored pairs, stacked on a last axis."""
    from wrpsim.pool.kernels.model import _window_pairs

    return np.stack([b * s * top, b * np.vectorize(_window_pairs)(s, top),
                     b * s * (s + 1.0) / 2.0], axis=-1)


def dsa_prefill_fit(pre, top: float, use=None) -> np.ndarray:
    """(seconds per top-k slot, per picked key, per scored pair) of one layer: the
    non-negative least-squares fit of a measured DSA module's prompt growth (`pre`, a
    `Grid` of `mla_module_grids(lat, "dsa")`: growth above its smallest cell) over its measured
    cells of `DSA_FIT_MIN_TOKENS` tokens and more (below, the collector's own launches, 1.5
    ms at TP 8, hide the GPU's work), and of `use` (a mask like `pre.t`) where given."""
    from scipy.optimize import nnls

    bp, sp = np.meshgrid(pre.b, pre.s, indexing="ij")
    ok = np.ones(bp.shape, bool) if pre.measured is None else pre.measured.copy()
    ok &= bp * sp >= DSA_FIT_MIN_TOKENS
    if use is not None:
        ok &= use
    grow = (pre.t - pre.t[0, 0])[ok]
    return nnls(dsa_prefill_terms(bp[ok], sp[ok], top), grow)[0]
