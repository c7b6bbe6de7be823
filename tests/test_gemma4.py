"""Gemma 4: full-attention layers of their own shape (`global_head_dim` 512-wide heads, their
own KV heads, no V projection with `attention_k_eq_v`) beside 1,024-token sliding-window
layers, and the 26B-A4B's experts beside a dense MLP (`enable_moe_block`) — what the config.json
gives, the weights and KV vLLM holds, and the attention each kind of layer is timed with."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from wrpsim.pool import window
from wrpsim.pool.catalog import get_gpu, get_model
from wrpsim.pool.engines import get_engine, kernels_for
from wrpsim.pool.hfconfig import read_hf_config
from wrpsim.pool.kernels.model import EngineConstants, KernelLatency
from wrpsim.pool.kernels.tables import Grid
from wrpsim.pool.modelspec import ModelSpec

#: google/gemma-4-31B-it config.json text_config, the keys that shape the model
G31 = {"model_type": "gemma4_text", "attention_k_eq_v": True, "enable_moe_block": False,
       "expert_intermediate_size": None, "global_head_dim": 512, "head_dim": 256,
       "hidden_size": 5376, "hidden_size_per_layer_input": 0, "intermediate_size": 21504,
       "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 10,
       "max_position_embeddings": 262144, "num_attention_heads": 32, "num_experts": None,
       "num_global_key_value_heads": 4, "num_hidden_layers": 60, "num_key_value_heads": 16,
       "num_kv_shared_layers": 0, "sliding_window": 1024, "tie_word_embeddings": True,
       "top_k_experts": None, "use_bidirectional_attention": "vision", "vocab_size": 262144,
       "vocab_size_per_layer_input": 262144}
#: google/gemma-4-26B-A4B-it config.json text_config: the same attention, narrower, and MoE
G26 = {**G31, "enable_moe_block": True, "hidden_size": 2816, "intermediate_size": 2112,
       "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 5,
       "moe_intermediate_size": 704, "num_attention_heads": 16, "num_experts": 128,
       "num_global_key_value_heads": 2, "num_hidden_layers": 30, "num_key_value_heads": 8,
       "top_k_experts": 8}


def _lat(spec, tp=1, gpu="h100-80gb"):
    kernels = kernels_for(get_engine("vllm-0.24"), gpu)
    return KernelLatency(spec, get_gpu(gpu), tp, kernels, EngineConstants())


def _uniform_twin(spec):
    """The same model with every layer of the sliding layers' shape (Gemma 3's attention)."""
    return dataclasses.replace(spec, name=spec.name + "-uniform", global_head_dim=0,
                               global_kv_heads=0, global_k_eq_v=False)


def test_config_json_reads_the_global_layers_and_matches_the_catalog():
    for cfg, name in ((G31, "gemma-4-31b"), (G26, "gemma-4-26b-a4b")):
        fields, unread = read_hf_config(cfg)
        assert unread == []
        assert (fields["global_head_dim"], fields["global_k_eq_v"]) == (512, True)
        assert fields["global_kv_heads"] == cfg["num_global_key_value_heads"]
        assert (fields["sliding_layers"], fields["sliding_window"]) == (
            cfg["num_hidden_layers"] * 5 // 6, 1024)
        m = get_model(name)
        assert all(getattr(m, k) == v for k, v in fields.items())
        assert m.split_attention and m.full_attn_layers == cfg["num_hidden_layers"] // 6


def test_parameters_are_googles_published_sizes():
    """Google: 30.7 B (31B), 25.2 B total and 3.8 B active (26B-A4B), text model. Closed form:
    sliding layers Q, K, V, O at 256 wide; global layers Q, K, O at 512 (no V); the MoE
    model's dense MLP beside 128 experts (8 active) and the router; tied embeddings."""
    m = get_model("gemma-4-31b")
    h, H = 5376, 32
    slide = 2 * h * H * 256 + 2 * h * 16 * 256
    glob = 2 * h * H * 512 + h * 4 * 512
    mlp = 3 * h * 21504
    assert m.params == 50 * slide + 10 * glob + 60 * mlp + 262144 * h
    assert round(m.params / 1e9, 1) == 30.7
    moe = get_model("gemma-4-26b-a4b")
    h, H = 2816, 16
    attn = 25 * (2 * h * H * 256 + 2 * h * 8 * 256) + 5 * (2 * h * H * 512 + h * 2 * 512)
    dense, expert, router = 3 * h * 2112, 3 * h * 704, h * 128
    assert moe.shared_intermediate == 2112
    assert moe.params == attn + 30 * (dense + 128 * expert + router) + 262144 * h
    assert moe.active_params == attn + 30 * (dense + 8 * expert + router) + 262144 * h
    assert (round(moe.params / 1e9, 1), round(moe.active_params / 1e9, 1)) == (25.2, 3.8)


def test_kv_bytes_count_each_kind_of_layer_with_its_heads():
    """A token's KV: 50 sliding layers of 2 x 16 x 256 and 10 global ones of 2 x 4 x 512 (K
    and V both kept although V is K's projection) — half the uniform twin's in the global
    layers. On one GPU of tp: each kind's KV heads split (or replicated: 4 heads over 8
    GPUs leave one each)."""
    m = get_model("gemma-4-31b")
    assert m.kv_bytes_per_token == (50 * 2 * 16 * 256 + 10 * 2 * 4 * 512) * 2
    assert _uniform_twin(m).kv_bytes_per_token - m.kv_bytes_per_token == 10 * 2 * (
        2 * 16 * 256 - 2 * 4 * 512)
    for tp, slide, glob in ((1, 16, 4), (2, 8, 2), (8, 2, 1), (16, 1, 1)):
        lat = _lat(m, tp=tp, gpu="h200-141gb")
        assert (lat.kv_heads_per_gpu, lat.full_kv_heads_per_gpu) == (slide, glob)
        assert lat.kv_bytes_per_token_per_gpu == (50 * 2 * slide * 256
                                                  + 10 * 2 * glob * 512) * 2


@pytest.mark.parametrize("name, tp", [("gemma-4-31b", 1), ("gemma-4-31b", 8),
                                      ("gemma-4-26b-a4b", 1), ("gemma-4-26b-a4b", 4)])
def test_window_ledger_holds_each_kinds_bytes(name, tp):
    """vLLM pages both kinds out of one pool (pages made one size): a sequence's ledger
    blocks, times a ledger block's bytes, are its global layers' KV of every token plus its
    sliding groups' window pages — the memory the capacity's blocks of every layer hold."""
    m = get_model(name)
    lat = _lat(m, tp=tp, gpu="h200-141gb")
    w = window.for_pool(lat, m, 16)
    per_token = lat.kv_bytes_per_token_per_gpu  # every layer, one GPU
    full_b = m.full_attn_layers * 2 * lat.full_kv_heads_per_gpu * m.full_head_dim * 2
    slide_b = 2 * lat.kv_heads_per_gpu * m.head_dim * 2  # one sliding layer
    ledger_block = 16 * per_token * w.unit_layers / w.all_layers
    g = window.group_size(m.full_attn_layers, m.sliding_layers)
    assert g == m.full_attn_layers  # (10 or 5 global layers: one group)
    for tokens in (16, 1000, 1040, 5000, 100_000):
        blocks = -(-tokens // 16)
        win = min(blocks, w.window_blocks)
        expect = blocks * 16 * full_b + -(-m.sliding_layers // g) * g * win * 16 * slide_b
        assert w.seq_blocks(tokens) * ledger_block == pytest.approx(expect, rel=1e-12, abs=1)
    assert w.capacity(1000) * ledger_block == pytest.approx(1000 * 16 * per_token, rel=1e-9)


def test_each_kind_of_layer_is_timed_with_its_own_attention_kernel():
    """Decode attention: 10 global layers on the measured 512-wide, 4-KV-head kernel over the
    whole context, 50 sliding layers on the 256-wide, 16-KV-head kernel over at most the
    window (vLLM 0.24 attention tables, H100)."""
    m = get_model("gemma-4-31b")
    lat = _lat(m)
    k = lat.kernels
    full = k.attn_decode("bf16", 32, 4, 512)
    slide = k.attn_decode("bf16", 32, 16, 256)

    def at(g: Grid, b: int, c: float) -> float:
        return float(np.interp(c, g.s, g.row(float(b))))

    for b, c in ((1, 500.0), (16, 3000.0), (64, 20000.0)):
        if c > full.s[-1] or c > slide.s[-1]:
            continue
        expect = 10 * at(full, b, c) + 50 * at(slide, b, min(c, 1024.0))
        assert lat._decode_attn1(b, c) == pytest.approx(expect, rel=1e-6)
    # decoding reads the KV: the global layers hold half the uniform twin's (4 heads x 512
    # against 16 x 256), so at long context their attention takes about half as long
    twin = _lat(_uniform_twin(m))
    slide_w = 50 * at(slide, 32, 1024.0)
    ratio = (lat._decode_attn1(32, 16000.0) - slide_w) / (twin._decode_attn1(32, 16000.0)
                                                          - slide_w)
    assert 0.4 < ratio < 0.75


def test_decode_runs_match_their_steps():
    """The closed-form decode run and the vectorised one equal the step-by-step sum: inside
    a segment of the context grid, across the window and past it."""
    lat = _lat(get_model("gemma-4-26b-a4b"))
    for b, c0, n in ((32, 600, 200), (32, 1000, 100), (8, 5000, 100), (4, 3000, 1)):
        steps = np.array([lat.decode_step_s(b, c0 + k) for k in range(n)])
        assert lat.decode_run_cum_s(b, b * c0, n) == pytest.approx(np.cumsum(steps), rel=1e-9)
        assert lat.decode_run_s(b, b * c0, n) == pytest.approx(steps, rel=1e-9)


def test_prefill_times_the_global_layers_on_their_kernel():
    """A fresh prompt's attention: the 50 sliding layers as the uniform twin's (the same
    kernel), the 10 global layers on the 512-wide one (the larger of its time over the
    prompt's pairs and its time reading the context, `_prefill_attn`)."""
    from wrpsim.pool.kernels.model import _interp1, _pairs_time

    m = get_model("gemma-4-31b")
    lat, twin = _lat(m), _lat(_uniform_twin(m))
    for n in (512, 4096, 16384):
        pairs = n * (n + 1) / 2
        ctx = pairs / n + n / 2

        def glob(x, pre, dec, pairs=pairs, ctx=ctx):
            t_pairs = _pairs_time(pre.row(1.0).tolist(), x._pre_s, 1.0, pairs)
            return 10 * max(t_pairs, _interp1(ctx, x._dec_sl, dec.row(1.0).tolist()))

        assert lat._prefill_attn(1, n, pairs) - glob(lat, lat._pre_f, lat._dec_f) == (
            pytest.approx(twin._prefill_attn(1, n, pairs) - glob(twin, twin._pre, twin._dec),
                          rel=1e-9))
        assert glob(lat, lat._pre_f, lat._dec_f) > glob(twin, twin._pre, twin._dec)


def test_a_model_without_windows_takes_the_global_shape_and_unmodelled_keys_are_named():
    """No sliding layers: every layer has the global shape. Layers that reuse another's KV
    (Gemma 3n's `num_kv_shared_layers`) and per-layer input embeddings are not modelled:
    named as unread when present."""
    cfg = {**G31, "layer_types": ["full_attention"] * 60}
    fields, _ = read_hf_config(cfg)
    assert (fields["head_dim"], fields["kv_heads"]) == (512, 4)
    assert "global_head_dim" not in fields and "sliding_layers" not in fields
    spec = ModelSpec(name="g", **fields)
    assert not spec.split_attention
    _, unread = read_hf_config({**G31, "num_kv_shared_layers": 20,
                                "hidden_size_per_layer_input": 256})
    assert {"num_kv_shared_layers", "hidden_size_per_layer_input",
            "vocab_size_per_layer_input"} <= set(unread)
