"""Physical invariants of the power model (`wrpsim.pool.kernels.power`, the 2023 analytical
model's `power_at`) and of the KV-cache capacity (`KernelLatency.kv_capacity_blocks`,
`wrpsim.pool.window`), per GPU of a tp-GPU instance, on the pools of
tests/test_physical_bounds.py (one per catalog model, several GPUs, BF16 and FP8, the kernels
engines) and a few of the analytical engine `splitwise-2023` (`SPLITWISE`):

- power: a GPU running a step draws between its idle power and its TDP (decode, as
  `python -m wrpsim.perf` reports it and as the simulator charges it, and prefill); at a given
  step time more sequences or more context never lower it (more FLOPs and bytes); and the energy
  of an output token — power x step time / batch — never rises from 1 to 64 sequences
  (batching amortises the weight reads);
- memory: KV cache + weights + reserve fit the GPU's memory x `gpu_mem_util`, with less than
  one block left over; an FP8 KV cache holds the BF16 one's tokens x the ratio of their bytes
  (2, or DeepSeek's `fp8_ds_mla` latent's 1,152 / 656) to a block; weights per GPU halve when tp
  doubles (but for the few replicated ones) and FP8 weights are about half of BF16 (the
  embeddings and LM head stay BF16); the sequences of `ctx_tokens` the cache holds never grow
  with `ctx_tokens`, and never hold less KV than a sequence needs at least (its full-attention
  layers' KV of every token, a sliding layer's of its window, its Mamba state).

Not asserted, on purpose: decode power non-decreasing in the batch. The shape takes
utilisation as the step's counted FLOPs and bytes over its time, so the power falls wherever the
latency model makes a step longer than that work explains — a tensor-parallel all-reduce over
PCIe (4 x L40S Llama-4-Scout FP8: 239 W at batch 1, 134 W at 1,024), a kernel table's step (the
A100's GEMMs past 128 rows, 8 x A100 Llama-3.1-405B FP8: 400 W at batch 52, 327 W at 156; the
fused-MoE kernel past 4 tokens, 2 x H100 Mixtral: 490 W at 4, 470 W at 8), a compute-bound step
whose memory utilisation falls as the weights are amortised (1-3 % on the H100-shaped GPUs past
batch 500), and, in the simulator, an async step bound by the CPU. Each follows from the
model's definition; the A100-shaped fit (`w_memory` 0.84) amplifies them on A100, L40S, L4,
A10G and RTX 4090 pools.

Two bugs these tests found, both fixed (2026-12-06): `python -m wrpsim.perf` reported a
decode step's power over its GPU time, not over the step the simulator charges
(`test_perf_reports_the_decode_power_the_simulator_charges`); and a step's power counted one
prompt chunk as a sequence however many it held — one prompt's CPU time taken out of a
synchronous step, one LM-head row — where `iteration_s` counts every chunk
(`test_a_synchronous_batched_prefill_draws_the_power_of_its_gpu_time`).
"""

from __future__ import annotations

import math

import pytest

from tests.test_physical_bounds import _cases, _lat, _record
from wrpsim.perf import evaluate, parse_args
from wrpsim.pool import window
from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.kernels import power as pw
from wrpsim.pool.kernels.roofline import KV_BYTES
from wrpsim.pool.kernels.sizes import profile_reserve_gib

GIB = float(1 << 30)
#: the perf defaults the capacity is computed with (conf/perf.yaml)
BLOCK, RESERVE_GIB, MAX_SEQS = 16, 3.5, 256
#: energy per token may rise this much with the batch (interpolation between table points)
ENERGY_TOL = 0.02
#: decode batches and contexts the power is checked at
BATCHES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
CONTEXTS = (1, 1024, 32768)
#: prefill shapes (prompts, tokens each)
PREFILLS = ((1, 1), (1, 128), (1, 2048), (8, 2048), (64, 128), (1, 32768))

#: pools of the analytical 2023 engine (BF16 only; no MLA or Mamba models)
SPLITWISE = [("llama2-70b", "a100-80gb", 4, "bf16", "splitwise-2023"),
             ("llama3.1-8b", "h100-80gb", 1, "bf16", "splitwise-2023"),
             ("mixtral-8x7b", "h100-80gb", 2, "bf16", "splitwise-2023"),
             ("gpt-oss-20b", "h100-80gb", 1, "bf16", "splitwise-2023"),
             ("gemma-3-27b", "l40s-48gb", 2, "bf16", "splitwise-2023")]

POOLS = _cases(SPLITWISE)
KERNEL_POOLS = _cases()


def _cmd(lat, **kw) -> str:
    """The perf command that shows a value (for failure messages)."""
    extra = " ".join(f"{k}={v}" for k, v in kw.items())
    return (f"python -m wrpsim.perf model={lat.model.name} gpu={lat.gpu.name} tp={lat.tp} "
            f"engine={lat.engine} precision={getattr(lat, 'precision', 'bf16')} {extra}")


def _decode_power(lat, batch: int, ctx: int) -> tuple[float, float]:
    """(the decode power `python -m wrpsim.perf` reports, the power the simulator charges for
    that step: `LatencyModel.decode_power_w` over the step's duration, `instance.py`)."""
    if hasattr(lat, "power_at"):
        perf = lat.power_at(0, batch, ctx)
    else:
        perf = lat.power_w(0, batch, batch * ctx)
    return perf, lat.decode_power_w(batch, batch * ctx, lat.decode_step_s(batch, ctx))


def _prefill_power(lat, batch: int, prompt: int) -> float:
    """The prefill power `python -m wrpsim.perf` reports (`prefill_power_w`)."""
    return lat.power_w(batch * prompt, 0, None, lat.prefill_s(batch, prompt),
                       batch * prompt * (prompt + 1) / 2.0)


def _contexts(lat) -> list[int]:
    top = lat.model.max_context or 131072
    return sorted({min(c, top) for c in CONTEXTS})


# ----------------------------------------------------------------------------- power
@pytest.mark.parametrize("model,gpu,tp,prec,engine", POOLS)
def test_a_gpu_draws_between_its_idle_power_and_its_tdp(model, gpu, tp, prec, engine):
    """Decode (as perf reports it and as the simulator charges it, batch 1 to 1,024, short to
    long context) and prefill (1 to 64 prompts) power is finite and lies in [idle, TDP]; so do
    perf's own `power_w` and `prefill_power_w`."""
    lat = _lat(model, gpu, tp, prec, engine)
    idle, tdp = lat.idle_power_w(), lat.gpu.tdp_w
    assert 0 < idle < tdp

    def ok(p):
        return math.isfinite(p) and idle - 1e-9 <= p <= tdp + 1e-9

    for ctx in _contexts(lat):
        for b in BATCHES:
            perf, sim = _decode_power(lat, b, ctx)
            assert ok(perf) and ok(sim), (f"{_cmd(lat, batch=b, ctx_tokens=ctx)}: decode "
                                          f"{perf:.4g} W (simulator {sim:.4g} W) outside "
                                          f"[{idle:g}, {tdp:g}] W")
    top = lat.model.max_context or 131072
    for b, p in PREFILLS:
        if p <= top:
            w = _prefill_power(lat, b, p)
            assert ok(w), (f"{_cmd(lat, batch=b, prompt_tokens=p)}: prefill {w:.4g} W outside "
                           f"[{idle:g}, {tdp:g}] W")
    rec = _record(model, gpu, tp, prec, engine)
    for key in ("power_w", "prefill_power_w"):
        assert ok(rec[key]), f"{_cmd(lat)}: {key} {rec[key]:.4g} W outside [{idle:g}, {tdp:g}]"
    assert rec["idle_power_w"] == idle and rec["tdp_w"] == tdp


@pytest.mark.parametrize("model,gpu,tp,prec,engine", KERNEL_POOLS)
def test_more_work_in_the_same_step_time_never_lowers_the_power(model, gpu, tp, prec, engine):
    """At a given step time, another sequence (its token through every layer, its KV) or
    longer contexts (more KV read, more attention FLOPs) are more work: the power of a decode
    step of that duration never falls, batch 1 to 1,024 and context 1 to the model's."""
    lat = _lat(model, gpu, tp, prec, engine)
    top = lat.model.max_context or 131072
    for ctx in _contexts(lat):
        dur = lat.decode_step_s(BATCHES[-1], ctx)
        ps = [lat.power_w(0, b, b * ctx, dur) for b in BATCHES]
        for i in range(1, len(ps)):
            assert ps[i] >= ps[i - 1] - 1e-9, (
                f"{_cmd(lat, ctx_tokens=ctx)}: {ps[i - 1]:.6g} W at batch {BATCHES[i - 1]}, "
                f"{ps[i]:.6g} W at {BATCHES[i]}, both over {dur:.4g} s")
    ctxs = [c for c in (1, 128, 1024, 8192, 32768, 131072) if c <= top]
    for b in (1, 64):
        dur = lat.decode_step_s(b, ctxs[-1])
        ps = [lat.power_w(0, b, b * c, dur) for c in ctxs]
        for i in range(1, len(ps)):
            assert ps[i] >= ps[i - 1] - 1e-9, (
                f"{_cmd(lat, batch=b)}: {ps[i - 1]:.6g} W at ctx_tokens={ctxs[i - 1]}, "
                f"{ps[i]:.6g} W at {ctxs[i]}, both over {dur:.4g} s")


@pytest.mark.parametrize("model,gpu,tp,prec,engine", POOLS)
def test_an_output_token_costs_no_more_energy_in_a_larger_batch(model, gpu, tp, prec, engine):
    """Energy per output token, power x decode step / batch, never rises (by more than
    `ENERGY_TOL`) from 1 to 64 sequences: the weights read once a step are shared by more
    tokens. Both for perf's power and for the power the simulator charges."""
    lat = _lat(model, gpu, tp, prec, engine)
    for ctx in _contexts(lat):
        for which in (0, 1):
            best = math.inf
            for b in range(1, 65):
                e = _decode_power(lat, b, ctx)[which] * lat.decode_step_s(b, ctx) / b
                assert e <= best * (1 + ENERGY_TOL), (
                    f"{_cmd(lat, batch=b, ctx_tokens=ctx)}: {e:.4g} J a token "
                    f"({('perf', 'simulator')[which]} power) > {best:.4g} J at a smaller batch")
                best = min(best, e)


# ----------------------------------------------------------------------------- memory
def _batch(lat) -> tuple[int, int]:
    """(max_seqs, token_budget) perf takes where they are left out: `vllm serve`'s batch
    defaults for the GPU (8,192 tokens and 1,024 sequences from 70 GiB, not on an A100; else
    2,048 and 256), per data-parallel attention rank; the 2023 engine's scheduler defaults."""
    if not hasattr(lat, "adp"):
        return MAX_SEQS, 2048
    big = lat.gpu.mem_gib >= 70 and not lat.gpu.name.startswith("a100")
    seqs, tokens = (1024, 8192) if big else (256, 2048)
    return seqs * lat.adp, tokens * lat.adp


def _reserve_gib(lat) -> float:
    """The GiB a GPU keeps beside weights and KV: vLLM's profiled reserve for perf's batch
    (`sizes.profile_reserve_gib`), 3.5 under the 2023 engine."""
    return profile_reserve_gib(lat, *_batch(lat)) if hasattr(lat, "adp") else RESERVE_GIB


def _util(engine: str) -> float:
    """The fraction of memory perf sizes the KV in: the engine's default `gpu_mem_util` (vLLM's
    `--gpu-memory-utilization` of its version: 0.92 for vllm-0.24, 0.9 before)."""
    from wrpsim.pool.engines import get_engine

    return get_engine(engine).gpu_mem_util


def _capacity(lat, engine: str) -> tuple[int, object, int]:
    """(KV blocks as perf computes them, the pool's window or Mamba paging, sequences whose
    Mamba state is reserved up front)."""
    win = window.for_pool(lat, lat.model, BLOCK)
    seqs, tokens = _batch(lat)
    reserved = window.reserved_seqs(win, seqs)
    return (lat.kv_capacity_blocks(BLOCK, _util(engine), None, reserved, seqs, tokens), win,
            reserved)


@pytest.mark.parametrize("model,gpu,tp,prec,engine", POOLS)
def test_kv_cache_weights_and_reserve_fill_the_usable_memory(model, gpu, tp, prec, engine):
    """One GPU's KV blocks (an instance's blocks over its data-parallel attention groups) x
    block x KV bytes a token, plus its weights, the reserve and any Mamba state reserved up
    front, fit in memory x `gpu_mem_util` — and leave less than one more block free."""
    lat = _lat(model, gpu, tp, prec, engine)
    blocks, _win, reserved = _capacity(lat, engine)
    rec = _record(model, gpu, tp, prec, engine)
    assert rec["kv_capacity_blocks"] == blocks
    assert rec["kv_capacity_tokens"] == blocks * BLOCK
    per_block = BLOCK * lat.kv_bytes_per_token_per_gpu
    state = reserved * getattr(lat, "mamba_state_bytes", 0.0) / lat.tp
    assert rec["reserve_gib"] == pytest.approx(_reserve_gib(lat))
    used = (blocks / getattr(lat, "adp", 1) * per_block + lat.weight_bytes_per_gpu
            + _reserve_gib(lat) * GIB + state)
    mem = lat.gpu.visible_gib if hasattr(lat, "adp") else lat.gpu.mem_gib
    usable = mem * _util(engine) * GIB
    assert used <= usable, f"{_cmd(lat)}: {used / GIB:.3f} GiB used > {usable / GIB:.3f} usable"
    assert usable - used < per_block, (f"{_cmd(lat)}: {(usable - used) / GIB:.3f} GiB left, "
                                       f"more than one block of {per_block / GIB:.4f} GiB")
    assert rec["weight_gib_per_gpu"] == pytest.approx(lat.weight_bytes_per_gpu / GIB)


@pytest.mark.parametrize("model,gpu,tp,prec,engine", KERNEL_POOLS)
def test_an_fp8_kv_cache_holds_its_byte_ratio_more_tokens(model, gpu, tp, prec, engine):
    """An FP8 KV cache takes half the bytes a token of a BF16 one (DeepSeek's DSA latent: FP8
    values with FP32 scales and a BF16 RoPE part, 656 bytes against 1,152 a layer, plus the
    indexer's keys): the same memory holds that ratio more tokens, to a block, and at least as
    many sequences of any length."""
    lat = _lat(model, gpu, tp, prec, engine)
    lat8 = build_latency_model(model, gpu, tp, engine, prec, "fp8")
    ratio = lat.kv_bytes_per_token_per_gpu / lat8.kv_bytes_per_token_per_gpu
    if lat.model.dsa:
        assert 1.5 < ratio < 2.0, f"{_cmd(lat)}: DSA KV bytes BF16 / FP8 = {ratio:.3f}"
    else:
        assert ratio == 2.0, f"{_cmd(lat)}: KV bytes BF16 / FP8 = {ratio:.3f}"
    b16, b8 = _capacity(lat, engine)[0], _capacity(lat8, engine)[0]
    adp = getattr(lat, "adp", 1)
    assert math.floor(b16 / adp * ratio) * adp <= b8 <= (b16 / adp + 1) * ratio * adp, (
        f"{_cmd(lat, kv_dtype='fp8')}: {b8} FP8 blocks for {b16} BF16 blocks x {ratio:.3f}")
    for ctx in (1024, 32768):
        if ctx > (lat.model.max_context or 131072):
            continue
        args = [f"model={model}", f"gpu={gpu}", f"tp={tp}", f"precision={prec}",
                f"engine={engine}", f"ctx_tokens={ctx}"]
        s16 = evaluate(parse_args(args))["kv_seqs_at_ctx"]
        s8 = evaluate(parse_args([*args, "kv_dtype=fp8"]))["kv_seqs_at_ctx"]
        assert s8 >= s16, f"{_cmd(lat, ctx_tokens=ctx, kv_dtype='fp8')}: {s8} < {s16} sequences"


@pytest.mark.parametrize("model,gpu,tp,prec,engine", KERNEL_POOLS)
def test_weights_per_gpu_shrink_with_tp_and_precision(model, gpu, tp, prec, engine):
    """Sharding loses no weight and replicates few: the GPUs of a BF16 instance hold at least
    2 bytes a parameter between them and one GPU at most 5 % more than its 1 / tp share; doubling
    tp halves a GPU's weights (a DSA indexer and a latent MoE's projections, replicated, add at
    most 3 %); FP8 weights are half the BF16 ones, plus half the BF16 embeddings and LM head."""
    lat = _lat(model, gpu, tp, prec, engine)
    m = lat.model
    w16 = build_latency_model(model, gpu, tp, engine, "bf16").weight_bytes_per_gpu
    assert 2.0 * m.params / tp <= w16 * (1 + 1e-9) <= 2.0 * m.params / tp * 1.05, (
        f"{_cmd(lat)}: {w16 / GIB:.3f} GiB of BF16 weights a GPU, {m.params / 1e9:.2f} B params")
    w8 = build_latency_model(model, gpu, tp, engine, "fp8").weight_bytes_per_gpu
    top = 0.5 * (1 + m.embedding_params / m.params)
    assert 0.5 <= w8 / w16 <= top + 0.01, (f"{_cmd(lat)}: FP8 weights {w8 / w16:.3f} x BF16 "
                                           f"(embeddings' share {top:.3f})")
    other = tp * 2 if tp < 8 and m.fits_tp(tp * 2) else tp // 2
    if other >= 1 and m.fits_tp(other):
        w = {t: build_latency_model(model, gpu, t, engine, prec).weight_bytes_per_gpu
             for t in (tp, other)}
        lo, hi = min(tp, other), max(tp, other)
        r = w[hi] / w[lo]
        assert 0.5 - 1e-9 <= r <= 0.5 * 1.03, (f"{_cmd(lat)}: weights a GPU at tp={hi} are "
                                               f"{r:.4f} x those at tp={lo}")


def _seq_bytes_at_least(lat, win, ctx: int) -> float:
    """Bytes one GPU must hold at least for one sequence of `ctx` tokens (block rounding
    aside): every full-attention layer's KV of every token, a sliding layer's of its last
    `sliding_window` tokens where the pool pages windows apart, and its Mamba state."""
    m, kvb = lat.model, lat.kv_bytes_per_token_per_gpu
    if isinstance(win, window.WindowKV):
        if m.split_attention:
            slide_e, _full_e = m.split_kv_elems(lat.atp)
            slide = m.sliding_layers * slide_e * KV_BYTES[lat.kv_dtype]
        else:
            slide = kvb * m.sliding_layers / m.attn_layers
        return (kvb - slide) * ctx + slide * min(ctx, m.sliding_window)
    state = getattr(lat, "mamba_state_bytes", 0.0) / getattr(lat, "atp", lat.tp)
    return kvb * ctx + (state if window.pages_state(win) else 0.0)


@pytest.mark.parametrize("model,gpu,tp,prec,engine", POOLS)
def test_fewer_sequences_fit_at_a_longer_context(model, gpu, tp, prec, engine):
    """perf's `kv_seqs_at_ctx` never grows with `ctx_tokens` (1 to the model's context, across
    block, window and Mamba-page boundaries), and that many sequences never need more than the
    KV memory: each holds at least its full layers' KV of every token, a sliding layer's of
    its window and its Mamba state."""
    lat = _lat(model, gpu, tp, prec, engine)
    blocks, win, _ = _capacity(lat, engine)
    m = lat.model
    top = m.max_context or 131072
    ctxs = {1, BLOCK - 1, BLOCK, BLOCK + 1, *(int(BLOCK * 1.6 ** i) for i in range(30))}
    if m.sliding_window:
        ctxs |= {m.sliding_window + d for d in (-1, 0, 1, BLOCK)}
    if isinstance(win, window.MambaKV):
        ctxs |= {win.attn_block + d for d in (-1, 0, 1)}
    memory = blocks * BLOCK * lat.kv_bytes_per_token_per_gpu
    prev = None
    for ctx in sorted(c for c in ctxs if 1 <= c <= top):
        rec = evaluate(parse_args([f"model={model}", f"gpu={gpu}", f"tp={tp}",
                                   f"precision={prec}", f"engine={engine}",
                                   f"ctx_tokens={ctx}", f"prompt_tokens={min(512, top)}"]))
        seqs = rec["kv_seqs_at_ctx"]
        assert seqs >= 0
        if prev is not None:
            assert seqs <= prev[1], (f"{_cmd(lat, ctx_tokens=ctx)}: {seqs} sequences, "
                                     f"{prev[1]} at ctx_tokens={prev[0]}")
        need = seqs * _seq_bytes_at_least(lat, win, ctx)
        assert need <= memory * (1 + 1e-9), (
            f"{_cmd(lat, ctx_tokens=ctx)}: {seqs} sequences need at least {need / GIB:.3f} GiB "
            f"of KV, the cache holds {memory / GIB:.3f} GiB")
        prev = (ctx, seqs)


# ----------------------------------------------------------------------------- bugs
@pytest.mark.parametrize("model,gpu,tp,engine,batch,ctx", [
    ("llama3.1-8b", "h100-80gb", 1, "vllm-0.11", 512, 128),  # synchronous: GPU time
    ("llama3.1-8b", "h100-80gb", 1, "vllm-0.24", 8, 1024),  # async, GPU-bound
    # async, the CPU outlasting the GPU: perf took the power over the GPU's time alone
    # (998 W against the 734 W the simulator charges for the B300 step) until 2026-12-06
    ("llama3.1-8b", "h100-80gb", 1, "vllm-0.24", 512, 128),
    ("qwen2.5-7b", "b300-288gb", 1, "vllm-0.24", 1024, 128),
])
def test_perf_reports_the_decode_power_the_simulator_charges(model, gpu, tp, engine, batch,
                                                             ctx):
    """`power_w` x `decode_step_s` of `python -m wrpsim.perf` is the energy the simulator
    charges one GPU for that decode step (`decode_power_w` over the step's duration)."""
    rec = evaluate(parse_args([f"model={model}", f"gpu={gpu}", f"tp={tp}", f"engine={engine}",
                               f"batch={batch}", f"ctx_tokens={ctx}"]))
    lat = build_latency_model(model, gpu, tp, engine)
    sim = lat.decode_power_w(batch, batch * ctx, rec["decode_step_s"])
    assert rec["power_w"] == pytest.approx(sim, rel=0.01), (
        f"{_cmd(lat, batch=batch, ctx_tokens=ctx)}: perf {rec['power_w']:.1f} W, the simulator "
        f"{sim:.1f} W over the same {rec['decode_step_s'] * 1e3:.2f} ms step")


@pytest.mark.parametrize("model,gpu,engine,batch,prompt", [
    ("llama3.1-8b", "h100-80gb", "vllm-0.11", 1, 512),
    ("llama3.1-8b", "h100-80gb", "vllm-0.24", 256, 16),  # async: no CPU time taken out
    # synchronous, many prompts: one prompt's CPU time was taken out of the step, not every
    # one's (656 W where the GPU time gives 700 W for the first) until 2026-12-06
    ("llama3.1-8b", "h100-80gb", "vllm-0.11", 256, 16),
    ("qwen3-30b-a3b", "h100-80gb", "vllm-0.11", 64, 16),
])
def test_a_synchronous_batched_prefill_draws_the_power_of_its_gpu_time(model, gpu, engine,
                                                                      batch, prompt):
    """`KernelLatency.power_w`: "utilisation is taken over the GPU's share of the iteration
    ... the per-sequence time the engine adds does not lower the measured power". A prefill of
    `batch` prompts draws the power of its work over its GPU time (`gpu_s`), however many
    prompts the CPU handled (a GPU-bound step: the CPU time is hidden under async scheduling)."""
    rec = evaluate(parse_args([f"model={model}", f"gpu={gpu}", "tp=1", f"engine={engine}",
                               f"batch={batch}", f"prompt_tokens={prompt}"]))
    lat = build_latency_model(model, gpu, 1, engine)
    tokens, pairs = batch * prompt, batch * prompt * (prompt + 1) / 2.0
    gpu_s = lat.gpu_s(tokens, pairs, 0, 0, batch)
    want = lat._power.power_at(*pw.utilisation(lat, tokens, 0, 0.0, pairs, gpu_s, batch))
    assert rec["prefill_power_w"] == pytest.approx(want, rel=0.01), (
        f"{_cmd(lat, batch=batch, prompt_tokens=prompt)}: prefill {rec['prefill_power_w']:.1f} "
        f"W, {want:.1f} W over its {gpu_s * 1e3:.2f} ms of GPU time")
