"""Mamba state paged with the KV cache, as vLLM's hybrid KV-cache manager pages it
(`wrpsim.pool.window.MambaKV`): the attention block grows until one block of a layer is at
least one sequence's state of a layer, layers are grouped and padded, and each sequence holds
one block of every Mamba group from admission to release — closed-form counts against vLLM's
page arithmetic, the concurrency that leaves (ML.ENERGY's measured batch at 256 clients), and
whole runs that return every block."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import make_trace
from wrpsim.pool import window
from wrpsim.pool.catalog import get_model
from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.fleet import kv_capacity
from wrpsim.pool.kernels.sizes import profile_reserve_gib
from wrpsim.pool.scheduler import SchedulerConfig
from wrpsim.sim import Simulation

GIB = 2**30


def _nemotron(model="nemotron-nano-12b-v2", gpu="h100-80gb"):
    return build_latency_model(model, gpu, 1, "vllm-0.11", overrides={"mamba_ssm_dtype": "fp32"})


def test_nemotron_12b_pages_as_vllm_computes_them():
    """Nemotron-Nano-12B-v2 (6 attention, 28 Mamba-2 layers; FP32 SSM state, as ML.ENERGY
    ran it): a layer's state is 128 heads x 80 x 128 x 4 B + the BF16 convolution state
    (10,240 + 2 x 8 x 128 channels x 3 x 2 B) = 5,316,608 B; a token of an attention layer is
    2 x 8 x 128 x 2 = 4,096 B, so vLLM sets the attention block to 16 x ceil(5,316,608 /
    (16 x 4,096)) = 1,312 tokens. Groups of 6 layers: one attention group, ceil(28 / 6) = 5
    Mamba groups; a vLLM block is 6 layers x 1,312 x 4,096 B. A 1,000-token chat holds one
    attention block and 5 state blocks: the H100's room beside the weights holds
    floor(room / block) // 6 of them — 257 here, 260 at that run's 256 sequences and 8,192
    tokens; ML.ENERGY's 256-client chat run averaged a batch of 241, its chats past 1,312
    tokens holding a second attention block each (so fewer at once than 1,000-token chats)."""
    lat = _nemotron()
    assert lat.mamba_state_bytes / 28 == 128 * 80 * 128 * 4 + (10240 + 2 * 8 * 128) * 3 * 2
    assert lat.kv_bytes_per_token_per_gpu == 6 * 4096
    w = window.for_pool(lat, lat.model, 16)
    assert isinstance(w, window.MambaKV)
    assert (w.attn_block, w.padded_layers, w.attn_layers) == (1312, 6, 6)
    assert w.state_blocks == math.ceil(5 * 6 * 1312 / (16 * 6)) == 410
    sched = SchedulerConfig(max_seqs=384)
    blocks = kv_capacity(lat, sched, w)  # no state reserved up front
    # the H100's memory as CUDA reports it x 0.9, less vLLM's profiled reserve for 384
    # sequences and 2,048 tokens (`sizes.profile_reserve_gib`) and the weights
    room = (79.18 * 0.9 - profile_reserve_gib(lat, 384, 2048)) * GIB - lat.weight_bytes_per_gpu
    assert blocks == math.floor(room / (16 * 6 * 4096))
    vllm_blocks = math.floor(room / (6 * 1312 * 4096))
    assert abs(blocks // w.seq_blocks(1000) - vllm_blocks // 6) <= 1
    assert 241 <= blocks // w.seq_blocks(1000) <= 241 * 1.1
    # a chat past one attention block takes a second one (1,312 tokens of all 6 layers)
    assert w.seq_blocks(1312) == 82 + 410 and w.seq_blocks(1313) == 164 + 410
    # the longest sequence: whole attention blocks of all that is left beside its state
    longest = w.max_tokens(blocks)
    assert longest == (blocks - 410) // 82 * 1312
    assert w.seq_blocks(longest) <= blocks < w.seq_blocks(longest + 16)


def _vllm(state_layer: float, token_layer: float, attn: int, mamba: int, room: float,
          tokens: int) -> tuple[int, int]:
    """vLLM's own page arithmetic (per GPU of an attention group): the grown attention block,
    and how many sequences of `tokens` tokens `room` bytes hold."""
    block = 16 * math.ceil(state_layer / (16 * token_layer))
    g = window.group_size(attn, mamba)
    num_blocks = math.floor(room / (g * block * token_layer))
    per_seq = math.ceil(mamba / g) + math.ceil(attn / g) * math.ceil(tokens / block)
    return block, num_blocks // per_seq


@pytest.mark.parametrize(("tp", "adp", "kv_dtype"), [(1, 1, "auto"), (2, 1, "auto"),
                                                     (2, 1, "fp8"), (4, 4, "auto"),
                                                     (8, 2, "fp8")])
@pytest.mark.parametrize(("attn", "mamba"), [(6, 28), (4, 27), (12, 36), (44, 44), (10, 3)])
def test_the_pages_follow_vllm_for_any_split_of_the_gpus(tp, adp, kv_dtype, attn, mamba):
    """Against vLLM's arithmetic for layer mixes of Nemotron-12B / 9B, Qwen3-Next (12 full
    attention + 36 Gated DeltaNet layers), Falcon-H1 (both in every layer) and more attention
    than Mamba layers (two attention groups), with TP, FP8 KV and data-parallel attention
    (each of `adp` groups holds its own sequences on tp / adp GPUs): the grown block and the
    sequences that fit, from 1 to 32k tokens."""
    state_layer_all = 5_316_608.0  # one sequence, one layer, summed over a group's GPUs
    token_layer_all = 4096.0 / (2 if kv_dtype == "fp8" else 1)
    atp = tp // adp
    model = replace(get_model("nemotron-nano-12b-v2"), attention_layers=attn,
                    mamba_layers=mamba)
    assert (model.attn_layers, model.mamba_layers) == (attn, mamba)
    lat = SimpleNamespace(mamba_state_bytes=state_layer_all * mamba, tp=tp, atp=atp,
                          kv_bytes_per_token_per_gpu=token_layer_all * attn / atp)
    w = window.mamba_kv(lat, model, 16)
    room = 40 * GIB  # per GPU
    blocks = math.floor(room / (16 * lat.kv_bytes_per_token_per_gpu))  # one group's ledger
    for tokens in (1, 1000, 1312, 1313, 5000, 32000):
        block, seqs = _vllm(state_layer_all / atp, token_layer_all / atp, attn, mamba, room,
                            tokens)
        assert w.attn_block == block
        assert abs(blocks // w.seq_blocks(tokens) - seqs) <= max(1, seqs // 200), tokens


def test_max_tokens_is_the_longest_sequence_that_fits():
    """`max_tokens(B)`: the largest whole-block length L with seq_blocks(L) <= B, by brute
    force, for attention blocks of one, several and many ledger blocks and padded groups."""
    for state, att, padded, layers in ((410, 1312, 6, 6), (3, 16, 4, 4), (7, 48, 8, 6)):
        w = window.MambaKV(state, att, padded, layers, 16)
        for blocks in range(0, 2000, 37):
            fits = [n * 16 for n in range(0, 3000) if w.seq_blocks(n * 16) <= blocks]
            assert w.max_tokens(blocks) == (max(fits) if fits else 0), (state, att, blocks)


def test_which_pools_page_mamba_state():
    """Kernel engines page it; the 2023 engine has no Mamba state; a KV connector (vLLM 0.11
    turns its hybrid manager off) and a model with sliding windows too keep the up-front
    reservation of max_seqs states."""
    lat = _nemotron()
    assert window.for_pool(lat, lat.model, 16, connector=True) is None
    llama = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    assert window.for_pool(llama, llama.model, 16) is None
    both = replace(lat.model, sliding_layers=2, sliding_window=4096)
    assert window.mamba_kv(lat, both, 16) is None
    sched = SchedulerConfig(max_seqs=64)
    reserved = lat.kv_capacity_blocks(16, 0.9, None, 64, 64, 2048)
    assert kv_capacity(lat, sched) == reserved
    assert kv_capacity(lat, sched, window.for_pool(lat, lat.model, 16)) == \
        lat.kv_capacity_blocks(16, 0.9, None, 0, 64, 2048) > reserved


def _cfg(**pool) -> dict:
    base = {"gpu": "h100-80gb", "model": "nemotron-nano-12b-v2", "tp": 1, "count": 1,
            "engine": "vllm-0.11", "latency": {"kind": "engine", "mamba_ssm_dtype": "fp32"},
            "scheduler": {"max_seqs": 384}}
    return {"seed": 0, "slo": {"ttft_s": 1e9, "tpot_s": 1e9}, "pue": 1.0,
            "pool": {"pools": {"n": {**base, **pool}}},
            "router": {"_target_": "wrpsim.router.LeastOutstanding"}}


def test_384_sequences_run_as_many_at_once_as_the_blocks_hold():
    """max_seqs 384 on one H100, which reserving 384 states up front refused (53.2 GiB of
    state beside 22.9 GiB of weights): 400 chats of 600 + 400 tokens at once run about 257 at
    a time (each 63 + 19 + 410 ledger blocks), never more than the cache holds; every block
    comes back; the outputs say how the state is counted."""
    n = 400
    trace = make_trace(np.zeros(n), np.full(n, 600), np.full(n, 400))
    sim = Simulation(_cfg(), trace)
    req, inst, _ = sim.run()
    assert all(r["status"] == "completed" for r in req.to_pylist())
    i = sim.fleet.instances[0]
    per_seq = i._win.seq_blocks(1000)
    assert i.kv.used == 0 and i.kv.peak <= i.kv.capacity
    assert 240 * per_seq <= i.kv.peak  # about as many as fit held their state at once
    assert inst.to_pylist()[0]["calibration"].endswith(
        "; Mamba state paged with the KV cache: 410 blocks a sequence, attention blocks of "
        "1312 tokens (vLLM's hybrid KV-cache manager)")


def _most_at_once(req) -> int:
    """The most requests between their first token and their finish at one time."""
    ev = sorted([(r["first_token_s"], 1) for r in req] + [(r["finish_s"], -1) for r in req])
    most = now = 0
    for _, d in ev:
        now += d
        most = max(most, now)
    return most


def test_preemption_returns_the_state_blocks(monkeypatch):
    """A cache too small for the burst (8,000 blocks): every sequence holds its state (410
    blocks) beside its tokens, so no more than 8,000 // (410 + 125) of 2k-token prompts decode
    at once, where without the state more than that would; sequences are preempted and
    recomputed, each admission holding its state again; at the end every block is free."""
    n = 60
    trace = make_trace(np.zeros(n), np.full(n, 2000), np.full(n, 1500))

    def run():
        sim = Simulation(_cfg(kv_blocks=8000), trace)
        req, inst, _ = sim.run()
        req = req.to_pylist()
        assert all(r["status"] == "completed" for r in req)
        kv = sim.fleet.instances[0].kv
        assert kv.used == 0 and kv.peak <= kv.capacity == 8000
        return inst.to_pylist()[0]["preemptions"], _most_at_once(req)

    preempted, most = run()
    assert preempted > 0 and 1 < most <= 8000 // (410 + 125)
    monkeypatch.setattr(window, "mamba_kv", lambda *a: None)
    _, most_free = run()  # no state held (as a reservation for max_seqs 0 would do)
    assert most_free > 8000 // (410 + 125)


def test_a_pool_vllm_would_not_run_as_set_says_so(monkeypatch, capsys):
    """max_seqs above the sequences whose state fits (vLLM 0.11 caps its batch there; later
    vLLM refuses to start) and a prefix cache (vLLM 0.11 turns it off for hybrids) each give
    one warning naming the pool's key."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    trace = make_trace([0.0], [100], [10])
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        Simulation(_cfg(), trace)
        Simulation(_cfg(scheduler={"max_seqs": 200}), trace)
        Simulation(_cfg(scheduler={"max_seqs": 200}, prefix_cache={"enabled": True}), trace)
    texts = [str(w.message) for w in got if issubclass(w.category, WrpsimWarning)]
    assert len(texts) == 2, texts
    assert texts[0].startswith("pool.pools.n.scheduler.max_seqs (384) exceeds the 257 "
                               "sequences whose Mamba state")
    assert texts[1].startswith("pool.pools.n.prefix_cache: vLLM 0.11 turns prefix caching "
                               "off for Mamba hybrids")


def test_labels_say_how_the_state_is_counted():
    """Paged (with its block counts), reserved for a connector pool, and reserved beside a
    sliding-window note for a model with both; nothing for a model without Mamba layers."""
    lat = _nemotron()
    m = lat.model
    assert window.label(m, window.for_pool(lat, m, 16), lat) == (
        "; Mamba state paged with the KV cache: 410 blocks a sequence, attention blocks of "
        "1312 tokens (vLLM's hybrid KV-cache manager)")
    assert window.label(m, None, lat) == (
        "; Mamba state reserved for max_seqs sequences (not paged with the KV cache)")
    both = replace(m, sliding_layers=2, sliding_window=4096)
    assert window.label(both, window.window_kv(both, 16), lat).endswith(
        "one window a sequence (vLLM's hybrid KV-cache manager); Mamba state reserved for "
        "max_seqs sequences (not paged with the KV cache)")
    llama = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    assert window.label(llama.model, None, llama) == ""
