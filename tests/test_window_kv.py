"""Sliding-window layers' KV (vLLM's hybrid KV-cache manager, `wrpsim.pool.window`): the
ledger counts the full-attention layers' blocks and each sequence holds its window's blocks
beside them, from admission to release — closed-form block counts against vLLM's layer
grouping, the capacity in the same memory, whole runs that return every block (colocated,
preempting), and the pools that keep every layer whole (KV connectors, chunked attention,
the 2023 engine)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import make_trace
from wrpsim.pool import window
from wrpsim.pool.catalog import get_model
from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.fleet import kv_capacity
from wrpsim.pool.scheduler import SchedulerConfig
from wrpsim.sim import Simulation


def test_gemma3_window_blocks_in_closed_form():
    """Gemma-3-12B: 8 full + 40 sliding layers, window 1,024: a ledger block is 16 tokens of
    the 8 full layers; the 40 sliding layers hold at most ceil(1023 / 16) + 1 = 65 blocks
    each, 5 ledger blocks per block of window."""
    m = get_model("gemma-3-12b")
    assert (m.attn_layers, m.sliding_layers, m.sliding_window) == (48, 40, 1024)
    w = window.window_kv(m, 16)
    assert (w.unit_layers, w.win_num, w.win_den, w.window_blocks) == (8, 5, 1, 65)
    assert w.blocks(1) == 5 and w.blocks(16) == 5 and w.blocks(17) == 10
    assert w.blocks(1024) == 5 * 64 and w.blocks(1040) == w.blocks(10**6) == 5 * 65
    assert w.seq_blocks(4000) == 250 + 325
    assert w.capacity(7950) == 7950 * 6  # the same bytes hold 6x the full layers' blocks


def test_max_tokens_is_the_longest_sequence_that_fits():
    """`max_tokens(B)`: the largest whole-block length L with seq_blocks(L) <= B, by brute
    force over lengths, for windows of 2 / 65 blocks and whole and fractional window shares."""
    for num, den, wb in ((5, 1, 65), (1, 1, 9), (1, 1, 2), (5, 2, 3), (6, 1, 65)):
        w = window.WindowKV(48, 8, num, den, wb, 16)
        for blocks in range(0, 800, 7):
            lengths = [n * 16 for n in range(0, 1000)]
            best = max(n for n in lengths if w.seq_blocks(n) <= blocks)
            assert w.max_tokens(blocks) == best, (num, den, wb, blocks)


def test_which_models_and_engines_page_windows_apart():
    """Full attention, Llama 4's chunked attention (vLLM keeps it whole) and an all-windowed
    stack count every layer; so do the analytical 2023 engine and constant latency models."""
    assert window.window_kv(get_model("llama3.1-8b"), 16) is None
    maverick = get_model("llama4-maverick")
    assert maverick.sliding_layers and maverick.chunked_attention
    assert window.window_kv(maverick, 16) is None
    gemma = get_model("gemma-3-12b")
    assert window.window_kv(replace(gemma, sliding_layers=gemma.attn_layers), 16) is None
    gpt = window.window_kv(get_model("gpt-oss-120b"), 16)
    assert (gpt.unit_layers, gpt.win_num, gpt.win_den, gpt.window_blocks) == (18, 1, 1, 9)
    kern = build_latency_model("gemma-3-12b", "h100-80gb", 1)
    old = build_latency_model("gemma-3-12b", "h100-80gb", 1, engine="splitwise-2023")
    assert window.for_pool(kern, gemma, 16) is not None
    assert window.for_pool(old, gemma, 16) is None
    assert window.for_pool(kern, gemma, 16, connector=True) is None
    sched = SchedulerConfig()
    blocks = kern.kv_capacity_blocks(sched.block_size, sched.gpu_mem_util, sched.reserve_gib,
                                     sched.max_seqs)
    assert kv_capacity(kern, sched, window.window_kv(gemma, 16)) == blocks * 48 // 8
    assert kv_capacity(kern, sched) == blocks


def test_vllm_groups_layers_and_pads_the_last_group():
    """vLLM's hybrid manager groups each kind's layers by the smaller count (the larger where
    under 1.25 x the smaller), padding the last group: Gemma-3-27B's 10 full and 52 sliding
    layers make groups of 10, so its window takes 6 groups (390 blocks at most), not 5.2;
    18 / 18 (gpt-oss) and 10 / 12 take one group of 18 / 12 each; more full than sliding
    layers fall back to whole-full-layer blocks and a fractional window."""
    assert window.group_size(10, 52) == 10 and window.group_size(10, 12) == 12
    assert window.group_size(18, 18) == 18 and window.group_size(30, 6) == 6
    g27 = get_model("gemma-3-27b")
    assert (g27.attn_layers - g27.sliding_layers, g27.sliding_layers) == (10, 52)
    w = window.window_kv(g27, 16)
    assert (w.unit_layers, w.win_num, w.win_den) == (10, 6, 1)
    assert w.blocks(10**6) == 6 * 65 and w.capacity(1000) == 6200
    more_full = replace(get_model("gemma-3-12b"), sliding_layers=12)  # 36 full, 12 sliding
    w = window.window_kv(more_full, 16)
    assert (w.unit_layers, w.win_num, w.win_den) == (36, 12, 36)
    assert w.blocks(16 * 10) == 4 and w.capacity(360) == 480


def _gemma_cfg(**pool) -> dict:
    base = {"gpu": "h100-80gb", "model": "gemma-3-12b", "tp": 1, "count": 1,
            "engine": "vllm-0.11", "scheduler": {"max_seqs": 256}}
    return {"seed": 0, "slo": {"ttft_s": 1e9, "tpot_s": 1e9}, "pue": 1.0,
            "pool": {"pools": {"g": {**base, **pool}}},
            "router": {"_target_": "wrpsim.router.LeastOutstanding"}}


def _burst(n: int, prompt: int, output: int):
    return make_trace(np.zeros(n), np.full(n, prompt), np.full(n, output))


def _run(cfg, trace, monkeypatch=None, whole=False):
    if whole:  # every layer counted for every token (wrpsim before the window accounting)
        monkeypatch.setattr(window, "for_pool", lambda *a: None)
    sim = Simulation(cfg, trace)
    req, inst, _ = sim.run()
    return req.to_pylist(), inst.to_pylist(), sim


def test_a_burst_of_long_chats_fits_as_vllm_pages_it(monkeypatch):
    """80 chats of 3k + 500 tokens on one H100 (KV room at 256 sequences and 8,192 tokens:
    7,981 blocks of all 48 layers): counted in full the cache holds 36 of them at a time and
    preempts; paged as vLLM pages Gemma-3 (the 8 full layers per token, the 40 windows once:
    219 + 325 of 47,886 ledger blocks, 88 sequences) all 80 run at once. Every block comes
    back when they are done."""
    trace = _burst(80, 3000, 500)
    reqs, inst, sim = _run(_gemma_cfg(), trace)
    assert all(r["status"] == "completed" for r in reqs)
    assert inst[0]["preemptions"] == 0
    kv = sim.fleet.instances[0].kv
    assert kv.used == 0 and kv.peak <= kv.capacity
    per_seq = window.window_kv(get_model("gemma-3-12b"), 16).seq_blocks(3500)
    assert kv.peak >= 78 * per_seq  # (almost) all of them held their KV at once
    _, inst0, sim0 = _run(_gemma_cfg(), trace, monkeypatch, whole=True)
    assert inst0[0]["preemptions"] > 0
    assert sim0.fleet.instances[0].kv.used == 0
    assert inst[0]["calibration"].endswith(
        "; sliding-window KV: one window a sequence (vLLM's hybrid KV-cache manager)")


def test_preemption_returns_the_window_blocks():
    """A cache too small for the burst: sequences are preempted and recomputed, each
    admission holding its window again; at the end every block is free."""
    trace = _burst(120, 3000, 800)
    reqs, inst, sim = _run(_gemma_cfg(kv_blocks=6000), trace)
    assert all(r["status"] == "completed" for r in reqs)
    assert inst[0]["preemptions"] > 0
    kv = sim.fleet.instances[0].kv
    assert kv.used == 0 and kv.peak <= kv.capacity == 6000


def test_pools_with_a_kv_connector_keep_every_layer_whole():
    """vLLM 0.11 turns its hybrid manager off when a KV connector is set: prefill / decode
    roles (and a prefix cache with KV tiers) count every layer per token, and a hand-off of
    a prompt shorter than the window still completes (it once waited for window blocks the
    prefill side charged for prompt plus output)."""
    pools = {
        "pre": {"gpu": "h100-80gb", "model": "gemma-3-12b", "tp": 1, "count": 1,
                "role": "prefill", "engine": "vllm-0.11", "kv_blocks": 380,
                "kv_transfer": {"mode": "serialized"}},
        "dec": {"gpu": "h100-80gb", "model": "gemma-3-12b", "tp": 1, "count": 1,
                "role": "decode", "engine": "vllm-0.11", "scheduler": {"max_seqs": 256}},
    }
    cfg = {**_gemma_cfg(), "pool": {"pools": pools},
           "network": {"kind": "nic", "nic_gbps": 400.0}}
    reqs, _, sim = _run(cfg, make_trace([0.0], [1000], [100]))
    assert reqs[0]["status"] == "completed"
    for i in sim.fleet.instances:
        assert i._win is None and i.kv.used == 0
        assert sim.fleet.kv_notes[i.pool] == (
            "; windowed layers' KV counted for every token (a KV connector, with which vLLM "
            "0.11 turns its hybrid manager off)")
    old = _gemma_cfg(engine="splitwise-2023")
    assert Simulation(old, make_trace([0.0], [10], [2])).fleet.kv_notes["g"] == ""
    blocks = sim.fleet.instances[1].latency.kv_capacity_blocks(16, 0.9, None, 256, 256, 8192)
    assert sim.fleet.instances[1].kv.capacity == blocks  # every layer, no paging apart


@pytest.mark.parametrize("length", [20_000, 60_000])
def test_a_sequence_longer_than_the_full_layer_room_is_dropped_not_stuck(length):
    """The longest sequence an instance holds counts its window (`max_tokens`): a request
    beyond it is dropped (`exceeds_kv_capacity`), one within it completes."""
    cfg = _gemma_cfg(kv_blocks=3000)
    w = window.window_kv(get_model("gemma-3-12b"), 16)
    longest = w.max_tokens(3000)
    assert longest == (3000 - 325) * 16
    reqs, _, _ = _run(cfg, make_trace([0.0], [length], [10]))
    want = "completed" if length + 10 <= longest else "dropped"
    assert reqs[0]["status"] == want


def test_perf_counts_each_sequences_window():
    """`python -m wrpsim.perf` for Gemma-3-12B on one H100 (vLLM 0.24's defaults there: 0.92 of
    the memory, 1,024 sequences, whose sampler profile over its 262k-entry vocabulary keeps
    9.8 GiB): the cache holds 112,400 tokens of every layer (vLLM's "GPU KV cache size"), yet 77
    sequences of 3.5k tokens at once (219 full-layer blocks + 325 window blocks each, of 42,150
    such blocks): 77 fit, 78 do not; a model without windows holds its blocks over a sequence's
    whole blocks."""
    from wrpsim.perf import evaluate, parse_args

    args = ["model=gemma-3-12b", "gpu=h100-80gb", "tp=1", "ctx_tokens=3500"]
    fit = evaluate(parse_args([*args, "batch=77"]))
    assert (fit["kv_capacity_blocks"], fit["kv_capacity_tokens"]) == (7025, 112400)
    assert fit["reserve_gib"] == pytest.approx(9.766, abs=1e-3)
    assert fit["kv_seqs_at_ctx"] == 42150 // (219 + 325) == 77 and fit["kv_fits"]
    assert not evaluate(parse_args([*args, "batch=78"]))["kv_fits"]
    llama = evaluate(parse_args(["model=llama3.1-8b", "tp=1", "ctx_tokens=3500"]))
    assert llama["kv_seqs_at_ctx"] == llama["kv_capacity_blocks"] // 219  # whole blocks
    none = evaluate(parse_args(["model=llama3.1-8b", "tp=1", "ctx_tokens=0"]))
    assert none["kv_seqs_at_ctx"] is None and none["kv_fits"]


def test_calibrate_accepts_a_step_whose_windows_fit():
    """A measured Gemma-3-12B step of 96 sequences x 3,500 tokens on one H100 holds 336k
    tokens of its 8 full layers plus one window (5 x 1,024) a sequence, 827k of its 952k
    room — a memory that, every layer counted per token, holds only 159k: `calibrate` takes
    the row; a step beyond even the paged room is still refused in one line."""
    from wrpsim.calibrate.measured import _check_step_context
    from wrpsim.errors import ConfigError

    lat = build_latency_model("gemma-3-12b", "h100-80gb", 1)
    _check_step_context("steps.csv: line 2", lat, 0, 0, 96, 96 * 3500)
    with pytest.raises(ConfigError, match=r"^steps\.csv: line 3: decode_ctx \+ prefill_tokens "
                                          r".*sliding-window layers hold one window"):
        _check_step_context("steps.csv: line 3", lat, 0, 0, 512, 512 * 3500)
