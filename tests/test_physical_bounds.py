"""Physical lower bounds of the kernel-table latency model (engines vllm-0.24, vllm-0.19,
vllm-0.11), per GPU of a tp-GPU instance: a decode step cannot read its weights and KV cache
faster than the GPU's peak HBM bandwidth, a prefill cannot do its FLOPs faster than the GPU's
peak tensor-core rate, and more work never takes less time (decode in batch and context,
prefill in prompt length and batch).

One representative pool per catalog model — the smallest tp in 1, 2, 4, 8 that holds it,
spread over several GPUs, BF16 and FP8, the three engines — and a catalog model not listed in
`CASES` gets one on a B200 (`_cases`). Peaks are the catalog's nameplate figures
(`GpuSpec.mem_bw_gbs`, `roofline.peak_flops`), rounded, so a step may come within `TOL` of a
bound. Two bugs these tests found (2026-12-06): a MoE shape timed from another shape's curve
by the roofline ratio got faster with more tokens (gpt-oss-20b, DeepSeek-V3.2 16 layers x 64
experts), and the L40S's and RTX PRO 6000's tables read small weights from L2 faster than HBM
allows (`L2_CASES`).
"""

from __future__ import annotations

import math

import pytest

from wrpsim.perf import evaluate, parse_args
from wrpsim.pool.catalog import models
from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.kernels import roofline as rl

#: a step may come this close to a bound (the catalog's peaks are rounded figures)
TOL = 0.9
#: a step may be this much shorter than a smaller step's (float noise of interpolation)
MONO = 0.01

#: (model, gpu, tp, precision, engine): every catalog model once or more, the smallest tp
#: that holds it on that GPU in that precision
CASES = [
    ("llama3.1-8b", "h100-80gb", 1, "bf16", "vllm-0.24"),
    ("llama3.1-8b", "h100-80gb", 1, "fp8", "vllm-0.11"),
    ("llama3.1-70b", "h200-141gb", 1, "fp8", "vllm-0.24"),
    ("llama3.1-405b", "b200-180gb", 4, "fp8", "vllm-0.24"),
    ("llama2-70b", "a100-80gb", 4, "bf16", "vllm-0.24"),
    ("mixtral-8x7b", "h100-80gb", 2, "bf16", "vllm-0.24"),
    ("qwen2.5-7b", "rtx4090-24gb", 1, "bf16", "vllm-0.24"),
    ("bloom-176b", "h200-141gb", 4, "bf16", "vllm-0.24"),
    ("gpt4-class", "b300-288gb", 4, "bf16", "vllm-0.24"),
    ("llama3.3-70b", "b200-180gb", 1, "bf16", "vllm-0.24"),
    ("qwen3-8b", "l4-24gb", 1, "fp8", "vllm-0.24"),
    ("qwen3-14b", "rtxpro6000-96gb", 1, "bf16", "vllm-0.19"),
    ("qwen3-32b", "mi300x-192gb", 1, "bf16", "vllm-0.24"),
    ("qwen3-30b-a3b", "b200-180gb", 1, "fp8", "vllm-0.24"),
    ("qwen3-30b-a3b", "b200-180gb", 1, "bf16", "vllm-0.11"),
    ("qwen3-235b-a22b", "h200-141gb", 2, "fp8", "vllm-0.24"),
    ("qwen3.5-35b-a3b", "h200-141gb", 1, "bf16", "vllm-0.24"),
    ("qwen3.5-27b", "h100-80gb", 1, "fp8", "vllm-0.24"),
    ("qwen3.5-397b-a17b", "b300-288gb", 2, "fp8", "vllm-0.24"),
    ("qwen3-next-80b-a3b", "b200-180gb", 1, "bf16", "vllm-0.24"),
    ("qwen3-coder-480b-a35b", "b200-180gb", 4, "fp8", "vllm-0.24"),
    ("deepseek-v3", "h200-141gb", 8, "fp8", "vllm-0.24"),
    ("deepseek-r1", "b200-180gb", 8, "bf16", "vllm-0.24"),
    ("deepseek-v3.2", "b300-288gb", 4, "fp8", "vllm-0.24"),
    ("deepseek-v3.2-16l64e", "h100-80gb", 2, "bf16", "vllm-0.24"),
    ("glm-4.6", "b200-180gb", 4, "fp8", "vllm-0.24"),
    ("glm-4.5-air", "h100-80gb", 2, "fp8", "vllm-0.24"),
    ("glm-5.2", "b300-288gb", 4, "fp8", "vllm-0.24"),
    ("kimi-k2.5", "b200-180gb", 8, "fp8", "vllm-0.24"),
    ("gpt-oss-120b", "h100-80gb", 2, "fp8", "vllm-0.24"),
    ("gpt-oss-20b", "h100-80gb", 1, "bf16", "vllm-0.24"),
    ("gemma-3-12b", "a10g-24gb", 2, "bf16", "vllm-0.24"),
    ("gemma-3-27b", "l40s-48gb", 1, "fp8", "vllm-0.24"),
    ("gemma-4-31b", "b200-180gb", 1, "fp8", "vllm-0.24"),
    ("gemma-4-26b-a4b", "rtxpro6000-96gb", 1, "fp8", "vllm-0.24"),
    ("nemotron-nano-9b-v2", "a100-80gb", 1, "bf16", "vllm-0.24"),
    ("nemotron-nano-12b-v2", "h200-141gb", 1, "bf16", "vllm-0.24"),
    ("llama4-maverick", "mi300x-192gb", 4, "fp8", "vllm-0.24"),
    ("llama4-scout", "l40s-48gb", 4, "fp8", "vllm-0.24"),
    ("mistral-7b-v0.3", "b300-288gb", 1, "fp8", "vllm-0.24"),
    ("gemma-2-9b", "rtx4090-24gb", 1, "fp8", "vllm-0.24"),
    ("codegemma-7b", "l40s-48gb", 1, "bf16", "vllm-0.24"),
    ("nemotron-51b-class", "h100-80gb", 2, "bf16", "vllm-0.24"),
    # the PCIe / NVL H100s (timed from the SXM's tables), at more than two GPUs on PCIe
    ("qwen3-32b", "h100-pcie-80gb", 4, "fp8", "vllm-0.24"),
    ("qwen3-30b-a3b", "h100-nvl-94gb", 1, "bf16", "vllm-0.11"),
]

#: pools whose one-token GEMM and MoE terms read their weights faster than the HBM allows
#: unless floored (their tables' short loops re-read small weights from a 96 MB L2:
#: `Kernels.gemm`, `Kernels._moe`)
L2_CASES = [("qwen3-30b-a3b", "l40s-48gb", 2, "bf16", "vllm-0.24"),
            ("glm-4.5-air", "l40s-48gb", 4, "fp8", "vllm-0.24"),
            ("mixtral-8x7b", "l4-24gb", 8, "bf16", "vllm-0.24")]


def _fallback(name: str) -> tuple:
    """A pool for a catalog model `CASES` does not list: the smallest tp of 1, 2, 4, 8 that
    holds it on B200s in BF16 (else on B300s in FP8)."""
    m = models()[name]
    for gpu, prec in (("b200-180gb", "bf16"), ("b300-288gb", "fp8")):
        for tp in (1, 2, 4, 8):
            if m.fits_tp(tp) and _fits(name, gpu, tp, prec, "vllm-0.24"):
                return (name, gpu, tp, prec, "vllm-0.24")
    return (name, "b300-288gb", 8, "fp8", "vllm-0.24")


def _fits(model: str, gpu: str, tp: int, prec: str, engine: str) -> bool:
    try:
        _record(model, gpu, tp, prec, engine)
    except Exception:  # (FitError: the weights leave no room for KV)
        return False
    return True


def _record(model: str, gpu: str, tp: int, prec: str, engine: str) -> dict:
    """`python -m wrpsim.perf` for the pool (raises when it does not fit)."""
    return evaluate(parse_args([f"model={model}", f"gpu={gpu}", f"tp={tp}",
                                f"precision={prec}", f"engine={engine}"]))


def _cases(more: list | None = None) -> list:
    """`CASES` (and a pool for any catalog model they miss), then `more`, as pytest params."""
    listed = {c[0] for c in CASES}
    extra = [_fallback(n) for n in sorted(models()) if n not in listed]
    return [pytest.param(*c, id="-".join(map(str, c))) for c in CASES + extra + (more or [])]


def _lat(model, gpu, tp, prec, engine):
    """The pool's latency model, as `python -m wrpsim.perf` builds it (it must fit)."""
    rec = _record(model, gpu, tp, prec, engine)
    assert rec["kv_fits"], f"{model} on {tp} x {gpu} ({prec}): no room for one sequence"
    return build_latency_model(model, gpu, tp, engine, prec)


def _cmd(lat, **kw) -> str:
    """The perf command that shows a value (for failure messages)."""
    extra = " ".join(f"{k}={v}" for k, v in kw.items())
    return (f"python -m wrpsim.perf model={lat.model.name} gpu={lat.gpu.name} tp={lat.tp} "
            f"engine={lat.engine} precision={lat.precision} {extra}")


# ----------------------------------------------------------------------------- bounds
def _weight_read_bytes(lat) -> float:
    """Bytes of weights one GPU reads at least in any step: its share of every non-expert,
    non-embedding weight (the ones vLLM replicates — a DSA indexer, a latent MoE's projections
    — whole), of the LM head (BF16), and of the top-k routed experts of every MoE layer (a
    step's tokens go through at least that many; ep = 1 shards each over the tp GPUs). The
    input embedding is only gathered, a row a token."""
    m, tp = lat.model, lat.tp
    wd, we = rl.WEIGHT_BYTES[lat.dense_dtype], rl.WEIGHT_BYTES[lat.moe_dtype]
    dense = m.params - m.expert_params - m.embedding_params
    rep = m.indexer_layers * m.index_params_per_layer + m.moe_layers * m.latent_params_per_layer
    out = (dense - rep) * wd / tp + rep * wd + m.vocab * m.hidden * 2.0 / tp
    if m.moe:
        out += m.moe_layers * m.active_experts * m.expert_params_per_layer * we / tp
    return out


def _kv_read_bytes(lat, ctx: int) -> float:
    """Bytes of KV cache one GPU reads at least to decode one sequence at `ctx` cached
    tokens: every attention layer's keys and values of the GPU's KV heads (MLA: its latent,
    on every GPU) for the tokens a query sees — all of them, a window's in a sliding-window
    layer, `index_topk` latents in a DSA layer, whose indexer reads every token's key — and
    its Mamba state once."""
    m = lat.model
    kvb = 1.0 if lat.kv_dtype == "fp8" else 2.0
    if m.mla:
        per = m.kv_elems_per_token_layer() * kvb
        if m.dsa:
            kv = (m.attn_layers * per * min(ctx, m.index_topk)
                  + m.indexer_layers * m.index_bytes_per_token_layer * ctx)
        else:
            kv = m.attn_layers * per * ctx
    else:
        if m.split_attention:
            slide, full = m.split_kv_elems(lat.atp)
        else:
            slide = full = 2 * lat.kv_heads_per_gpu * m.head_dim
        seen = min(ctx, m.sliding_window or ctx)
        kv = ((m.attn_layers - m.sliding_layers) * full * ctx
              + m.sliding_layers * slide * seen) * kvb
    return kv + lat.mamba_state_bytes / lat.tp


def _prefill_flops_s(lat, batch: int, prompt: int) -> float:
    """Seconds one GPU needs at its peak FLOP/s for a prefill of `batch` fresh prompts of
    `prompt` tokens: 2 FLOPs per active non-embedding parameter per token over tp (the routed
    experts at the expert precision's peak, the rest at the dense precision's), the LM head on
    each prompt's last token, and causal attention — QK^T and PV, 2 x (qk + v head width) FLOPs
    per (query, key) pair and head (a window's or top-k's pairs in capped layers) — at the
    BF16 peak (BF16 KV)."""
    m, g, tp = lat.model, lat.gpu, lat.tp
    tokens = batch * prompt
    experts = m.moe_layers * m.active_experts * m.expert_params_per_layer if m.moe else 0
    dense = m.active_params - m.embedding_params - experts
    t = 2.0 * dense * tokens / tp / rl.peak_flops(g, lat.dense_dtype)
    if experts:
        t += 2.0 * experts * tokens / tp / rl.peak_flops(g, lat.moe_dtype)
    t += 2.0 * m.vocab * m.hidden * batch / tp / rl.peak_flops(g, "bf16")
    full = batch * prompt * (prompt + 1) / 2.0
    cap, capped = m.attn_cap, m.capped_layers
    part = batch * (prompt * (prompt + 1) / 2.0 if prompt <= cap
                    else cap * (cap + 1) / 2.0 + (prompt - cap) * cap) if capped else 0.0
    heads = m.heads / lat.atp
    if m.mla:
        per_pair = 2.0 * heads * (m.head_dim + (m.v_head_dim or m.head_dim))
        flops = per_pair * ((m.attn_layers - capped) * full + capped * part)
    else:
        flops = 4.0 * heads * (m.full_attn_layers * m.full_head_dim * full
                               + m.sliding_layers * m.head_dim * part)
    return t + flops / rl.peak_flops(g, "bf16")


def _first_drop(xs, ys) -> str:
    """'' when `ys` never falls more than `MONO` below an earlier value, else where it does."""
    top = 0
    for i in range(1, len(ys)):
        if ys[i] < (1.0 - MONO) * ys[top]:
            return f"{xs[top]} -> {xs[i]}: {ys[top]:.6g} s -> {ys[i]:.6g} s"
        if ys[i] > ys[top]:
            top = i
    return ""


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("model,gpu,tp,prec,engine", _cases())
def test_a_decode_step_reads_its_weights_and_kv_no_faster_than_hbm_peak(model, gpu, tp, prec,
                                                                       engine):
    """Every decode step reads each GPU's weights (the top-k experts of an MoE layer at
    least) and every sequence's KV cache from HBM: it takes at least those bytes over the
    GPU's peak bandwidth, whatever the batch and context; and it is a finite positive time."""
    lat = _lat(model, gpu, tp, prec, engine)
    bw = lat.gpu.mem_bw_gbs * 1e9
    top = lat.model.max_context or 131072
    weights = _weight_read_bytes(lat)
    for batch in (1, 8, 64, 512):
        for ctx in (c for c in (1, 1024, 32768) if c <= top):
            t = lat.decode_step_s(batch, ctx)
            bound = (weights + batch * _kv_read_bytes(lat, ctx)) / bw
            assert math.isfinite(t) and t > 0, _cmd(lat, batch=batch, ctx_tokens=ctx)
            assert t >= TOL * bound, (f"{_cmd(lat, batch=batch, ctx_tokens=ctx)}: decode "
                                      f"{t:.4g} s < {TOL} x {bound:.4g} s at HBM peak")


@pytest.mark.parametrize("model,gpu,tp,prec,engine", _cases())
def test_a_prefill_does_its_flops_no_faster_than_the_tensor_core_peak(model, gpu, tp, prec,
                                                                     engine):
    """A prefill multiplies every prompt token through the active weights and every causal
    (query, key) pair through attention: it takes at least those FLOPs over the GPU's peak
    rate in its precision; and per token, a 32k-token prompt takes at most 20 times as long
    as a 2k-token one (attention's quadratic part is a few times the linear part there, not
    more: the catalog's largest ratio is 2.6)."""
    lat = _lat(model, gpu, tp, prec, engine)
    top = lat.model.max_context or 131072
    for batch, prompt in ((1, 128), (1, 2048), (8, 2048), (32, 512), (1, 32768)):
        if prompt > top:
            continue
        t = lat.prefill_s(batch, prompt)
        bound = _prefill_flops_s(lat, batch, prompt)
        assert math.isfinite(t) and t > 0, _cmd(lat, batch=batch, prompt_tokens=prompt)
        assert t >= TOL * bound, (f"{_cmd(lat, batch=batch, prompt_tokens=prompt)}: prefill "
                                  f"{t:.4g} s < {TOL} x {bound:.4g} s at peak FLOP/s")
    if top >= 32768:
        ratio = (lat.prefill_s(1, 32768) / 32768) / (lat.prefill_s(1, 2048) / 2048)
        assert ratio <= 20.0, f"{_cmd(lat)}: per-token prefill at 32k is {ratio:.1f} x at 2k"


@pytest.mark.parametrize("model,gpu,tp,prec,engine", _cases())
def test_a_decode_step_is_no_shorter_with_more_sequences(model, gpu, tp, prec, engine):
    """One more decoding sequence adds work (its token through every layer, its KV read): the
    step never gets shorter from 1 to 1,024 sequences, at a short and a long context."""
    lat = _lat(model, gpu, tp, prec, engine)
    top = lat.model.max_context or 131072
    batches = list(range(1, 1025))
    for ctx in sorted({min(1024, top), min(16384, top)}):
        drop = _first_drop(batches, [lat.decode_step_s(b, ctx) for b in batches])
        assert not drop, f"{_cmd(lat, ctx_tokens=ctx)} batch={drop}"


@pytest.mark.parametrize("model,gpu,tp,prec,engine", _cases())
def test_a_decode_step_is_no_shorter_at_a_longer_context(model, gpu, tp, prec, engine):
    """More cached tokens are more KV to read: the step never gets shorter from 1 token to the
    model's context, at one, 16 and 256 sequences."""
    lat = _lat(model, gpu, tp, prec, engine)
    top = lat.model.max_context or 131072
    ctxs = sorted({*range(1, 257), *(int(256 * 1.2 ** i) for i in range(60))} - {0})
    ctxs = [c for c in ctxs if c <= top]
    for batch in (1, 16, 256):
        drop = _first_drop(ctxs, [lat.decode_step_s(batch, c) for c in ctxs])
        assert not drop, f"{_cmd(lat, batch=batch)} ctx_tokens={drop}"


@pytest.mark.parametrize("model,gpu,tp,prec,engine", _cases())
def test_a_prefill_is_no_shorter_for_a_longer_prompt(model, gpu, tp, prec, engine):
    """A longer prompt is more tokens through every layer and more attention pairs: one
    prompt's prefill never gets shorter from 1 to 32,768 tokens (8 prompts' to 8,192)."""
    lat = _lat(model, gpu, tp, prec, engine)
    top = lat.model.max_context or 131072
    prompts = sorted({*range(1, 257), *(int(256 * 1.2 ** i) for i in range(40))})
    for batch, longest in ((1, 32768), (8, 8192)):
        ps = [p for p in prompts if p <= min(top, longest)]
        drop = _first_drop(ps, [lat.prefill_s(batch, p) for p in ps])
        assert not drop, f"{_cmd(lat, batch=batch)} prompt_tokens={drop}"


@pytest.mark.parametrize("model,gpu,tp,prec,engine", _cases())
def test_a_prefill_is_no_shorter_for_more_prompts(model, gpu, tp, prec, engine):
    """Another prompt in the batch is more work: a prefill of 1 to 64 prompts of 256 and of
    2,048 tokens never gets shorter with the batch."""
    lat = _lat(model, gpu, tp, prec, engine)
    batches = list(range(1, 65))
    for prompt in (256, 2048):
        drop = _first_drop(batches, [lat.prefill_s(b, prompt) for b in batches])
        assert not drop, f"{_cmd(lat, prompt_tokens=prompt)} batch={drop}"


@pytest.mark.parametrize("model,gpu,tp,prec,engine", _cases(L2_CASES))
def test_the_weight_terms_of_a_one_token_step_read_from_hbm(model, gpu, tp, prec, engine):
    """The decode step's weight-bound terms alone — projection GEMMs, fused MoE layers, LM
    head (`LatencyModel.breakdown`: gemms, moe_experts, lm_head_sampling) — read every weight
    of a one-sequence step from HBM, so they take at least the weights over the peak
    bandwidth. (Bound 1 on the whole step can hold while this fails: the per-layer floor,
    sampling floor and CPU time make up for GEMMs timed faster than HBM allows.)"""
    lat = _lat(model, gpu, tp, prec, engine)
    bd = lat.breakdown(0, 0.0, 1, 128)
    t = bd["gemms"] + bd["moe_experts"] + bd["lm_head_sampling"]
    bound = _weight_read_bytes(lat) / (lat.gpu.mem_bw_gbs * 1e9)
    assert t >= TOL * bound, (f"{_cmd(lat, batch=1, ctx_tokens=128, breakdown='true')}: "
                              f"weight terms {t:.4g} s < {TOL} x {bound:.4g} s at HBM peak")
