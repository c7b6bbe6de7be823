"""DeepSeek Sparse Attention (DeepSeek-V3.2): what the config.json gives, the KV and weights vLLM
holds for it, and the iteration time's closed forms — MLA attention capped at `index_topk`
keys, the lightning indexer's scoring of every key on top (`attention.indexer_costs`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import get_gpu, get_model, load_models
from wrpsim.pool.engines import get_engine, kernels_for
from wrpsim.pool.hfconfig import read_hf_config
from wrpsim.pool.kernels import attention, operators
from wrpsim.pool.kernels import roofline as rl
from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

#: deepseek-ai/DeepSeek-V3.2-Exp config.json, the keys that shape the model
V32_CONFIG = {
    "architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32",
    "first_k_dense_replace": 3, "hidden_size": 7168, "index_head_dim": 128,
    "index_n_heads": 64, "index_topk": 2048, "intermediate_size": 18432, "kv_lora_rank": 512,
    "max_position_embeddings": 163840, "moe_intermediate_size": 2048, "moe_layer_freq": 1,
    "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1, "num_attention_heads": 128,
    "num_experts_per_tok": 8, "num_hidden_layers": 61, "num_key_value_heads": 128,
    "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "topk_group": 4,
    "v_head_dim": 128, "vocab_size": 129280, "tie_word_embeddings": False}


def _lat(spec, gpu="h200-141gb", tp=8, **kw):
    kernels = kernels_for(get_engine("vllm-0.24"), gpu)
    return KernelLatency(spec, get_gpu(gpu), tp, kernels, EngineConstants(),
                         precision="fp8_block", **kw)


def _dense_twin(spec):
    """The same model without DSA (DeepSeek-V3's attention)."""
    return dataclasses.replace(spec, name=spec.name + "-dense", index_topk=0, index_heads=0,
                               index_head_dim=0)


def test_config_json_reads_the_indexer_and_matches_the_catalog_entry():
    fields, unread = read_hf_config(V32_CONFIG)
    assert (fields["index_topk"], fields["index_heads"], fields["index_head_dim"]) == (
        2048, 64, 128)
    assert not [k for k in unread if k.startswith("index")]
    m = get_model("deepseek-v3.2")
    assert all(getattr(m, k) == v for k, v in fields.items())
    # V3's shapes plus 61 indexers of 1536 x 8192 + 7168 x (128 + 64) weights
    v3 = get_model("deepseek-v3")
    assert m.params - v3.params == 61 * (1536 * 64 * 128 + 7168 * (128 + 64))
    assert (m.capped_layers, m.attn_cap) == (61, 2048)


def test_kv_bytes_are_vllms_pages():
    """vLLM 0.11+: the latent (576 values, BF16; `fp8_ds_mla` with kv fp8: 512 FP8 + 4 FP32
    scales + 64 BF16 RoPE = 656 bytes) plus the indexer's 128 FP8 keys + 1 FP32 scale (132
    bytes, `DeepseekV32IndexerCache`), per layer, on every GPU."""
    m = get_model("deepseek-v3.2")
    assert m.kv_bytes_per_token == 61 * (576 * 2 + 132)
    assert _lat(m).kv_bytes_per_token_per_gpu == 61 * (1152 + 132)
    assert _lat(m, kv_dtype="fp8").kv_bytes_per_token_per_gpu == 61 * (656 + 132)
    v3 = get_model("deepseek-v3")
    assert _lat(v3, kv_dtype="fp8").kv_bytes_per_token_per_gpu == 61 * 576


def test_indexer_weights_are_replicated_over_tensor_parallelism():
    m = get_model("deepseek-v3.2")
    idx = 61 * m.index_params_per_layer * rl.WEIGHT_BYTES["fp8_block"]
    for tp in (1, 8):
        twin = _lat(_dense_twin(m), tp=tp).weight_bytes_per_gpu
        assert _lat(m, tp=tp).weight_bytes_per_gpu == pytest.approx(twin + idx, rel=1e-12)


@pytest.mark.parametrize("gpu", ["h200-141gb", "b200-180gb", "rtxpro6000-96gb"])
def test_indexer_cost_is_its_flops_or_its_bytes(gpu):
    """Uncalibrated, per key and layer: 2 x 64 x 128 FLOPs at the rate the FP8 GEMM table
    gives a compute-bound GEMM (8,192 cubed), or the cache entry and logit (132 + 8 bytes
    decode, 8 prefill) at the streaming bandwidth; what the model uses on a GPU without
    DeepSeek-V3.2's measured module (the RTX PRO 6000)."""
    m = get_model("deepseek-v3.2")
    lat = _lat(m, gpu=gpu, tp=1 if gpu == "rtxpro6000-96gb" else 8, kv_dtype="fp8")
    t = float(lat.kernels.gemm("fp8", 8192, 8192)(np.array([8192.0]))[0])
    flops = 2 * 64 * 128 * t / (2 * 8192.0 ** 3)
    dec, pre = attention.indexer_costs(lat)
    assert dec == pytest.approx(61 * max(flops, 140 / lat._stream), rel=1e-12)
    assert pre == pytest.approx(61 * max(flops, 8 / lat._stream), rel=1e-12)
    assert 0 < pre <= dec
    assert ((lat._idx_dec, lat._idx_pre) == (dec, pre)) == (gpu == "rtxpro6000-96gb")
    twin = _lat(_dense_twin(m), gpu=gpu, tp=1 if gpu == "rtxpro6000-96gb" else 8)
    assert twin._idx_dec == twin._idx_pre == 0.0


def test_decode_past_top_k_grows_by_the_indexer_alone():
    """Beyond 2,048 cached tokens the MLA attention reads 2,048 keys whatever the context: a
    decode step then grows by the indexer's scoring of the extra keys, exactly; the dense twin
    keeps growing with its attention (many times faster at long context)."""
    m = get_model("deepseek-v3.2")
    b = 64
    for gpu in ("h200-141gb", "a100-80gb"):  # (measured module; uncalibrated)
        lat, twin = _lat(m, gpu=gpu), _lat(_dense_twin(m), gpu=gpu)
        for c1, c2 in ((4096, 8192), (16384, 100000)):
            grow = lat.decode_step_s(b, c2) - lat.decode_step_s(b, c1)
            # (measured module: the indexer's cost per key fitted for each batch, `_dec_row`)
            assert grow == pytest.approx(lat._dec_row(b)[4] * (c2 - c1), rel=1e-9)
            if gpu == "a100-80gb":
                assert lat._dec_row(b)[4] == lat._idx_dec * b
            assert twin.decode_step_s(b, c2) - twin.decode_step_s(b, c1) > 3 * grow
    # uncalibrated, below the cap the attention is the dense twin's, the indexer on top
    for c in (512, 2000):
        assert lat._decode_attn1(b, c) == pytest.approx(
            twin._decode_attn1(b, c) + lat._idx_dec * b * c, rel=1e-12)


def test_decode_runs_match_their_steps():
    """The closed-form decode run (a + b k) and the vectorised one equal the step-by-step sum,
    inside a segment and across the 2,048-key cap."""
    lat = _lat(get_model("deepseek-v3.2"))
    for b, c0, n in ((32, 700, 200), (32, 1950, 300), (8, 5000, 100)):
        steps = np.array([lat.decode_step_s(b, c0 + k) for k in range(n)])
        cum = lat.decode_run_cum_s(b, b * c0, n)
        assert cum == pytest.approx(np.cumsum(steps), rel=1e-9)
        assert lat.decode_run_s(b, b * c0, n) == pytest.approx(steps, rel=1e-9)


@pytest.mark.parametrize("gpu, tp, heads, kv", [("a100-80gb", 8, 16, "auto"),
                                                 ("a100-80gb", 8, 16, "fp8"),
                                                 ("rtxpro6000-96gb", 1, 128, "auto"),
                                                 ("rtxpro6000-96gb", 1, 128, "fp8")])
def test_uncalibrated_prefill_is_the_sparse_kernel_plus_the_indexer(gpu, tp, heads, kv):
    """Prefill attention of a DSA model on a GPU without its measured module: FlashMLA's
    sparse kernel in MLA's absorbed form, 2 x heads x (2 x 512 + 64) FLOPs at 640 / 989 of the
    BF16 peak or the latent cache entry at the streaming bandwidth, whichever is longer, with
    the GPU's heads padded as vLLM pads them (64 on Hopper, 128 on Blackwell; 16 a GPU at TP 8
    otherwise) — per top-k slot of every query with FP8 KV (vLLM gathers and dequantizes all
    2,048 of them), per picked key with BF16 KV (query i picks min(i, 2,048)), as the measured
    modules grow (`test_measured_module_sets_the_constants`); plus the indexer's scoring of
    all s (s + 1) / 2 pairs. The result does not depend on the chunking."""
    from wrpsim.pool.kernels.model import _window_pairs

    m = get_model("deepseek-v3.2")
    lat = _lat(m, gpu=gpu, tp=tp, kv_dtype=kv)
    assert not lat._dsa_tables
    flops = 2 * heads * 1088 / (640 / 989 * lat.gpu.bf16_tflops * 1e12)
    entry = (656 if kv == "fp8" else 1152) / lat._stream
    per = 61 * max(flops, entry)
    assert attention.sparse_prefill_pair_s(lat) == pytest.approx(per, rel=1e-12)
    slot, pick = (per, 0.0) if kv == "fp8" else (0.0, per)
    assert (lat._dsa_pair, lat._dsa_pick) == (slot, pick)
    for s in (1024, 8192, 32768):
        pairs = s * (s + 1) / 2.0
        got = lat._prefill_attn(1, s, pairs)
        assert got == pytest.approx(slot * s * 2048 + pick * _window_pairs(s, 2048)
                                    + lat._idx_pre * pairs, rel=1e-12)
        # the same prompt in 2,048-token chunks: the same slots and picks, the same time
        chunks = sum(lat._prefill_attn(1, 2048, 2048 * (p + 2049 / 2.0))
                     for p in range(0, s, 2048)) if s >= 2048 else got
        assert chunks == pytest.approx(got, rel=1e-9)


#: a small catalog entry (models.yaml text), the MLA fields that make it an MLA model, and the
#: indexer fields that give it DeepSeek Sparse Attention
ENTRY = ("m:\n  layers: 4\n  hidden: 1024\n  heads: 8\n  kv_heads: 8\n  head_dim: 128\n"
         "  intermediate: 2048\n  vocab: 1000\n")
MLA = "  kv_lora_rank: 128\n  qk_rope_head_dim: 32\n  v_head_dim: 64\n"
INDEXER = "  index_topk: 256\n  index_heads: 8\n  index_head_dim: 64\n"


def test_a_dsa_entry_must_be_mla_with_an_indexer(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(ENTRY + INDEXER)
    with pytest.raises(ConfigError, match=r"'index_topk'.*needs an MLA model"):
        load_models(path)
    path.write_text(ENTRY + MLA + "  index_topk: 256\n")
    with pytest.raises(ConfigError, match=r"'index_heads' and 'index_head_dim' must be > 0"):
        load_models(path)
    path.write_text(ENTRY + MLA + INDEXER)
    assert load_models(path)["m"].dsa


@pytest.mark.parametrize("gpu", ["h100-80gb", "h200-141gb", "b200-180gb"])
@pytest.mark.parametrize("kv", ["auto", "fp8"])
def test_measured_module_sets_the_constants(gpu, kv):
    """Where vLLM 0.24's tables measured DeepSeek-V3.2's attention module (FLASHMLA_SPARSE),
    its indexer and sparse-kernel constants are fitted to it (`attention.dsa_fit`) and
    the label says so: prompts of the measured module's growth (projections out) come back
    within 25 % from 8k tokens up, batched or not (B200: 50 %, its rows rising faster than
    the terms past 8k tokens and flat in places), and decode's growth from 2k to 128k cached
    keys within 10 % at a large batch. The indexer is replicated over the GPUs:
    its decode cost per key comes out alike at TP 8 and TP 4. (Below some 8,000 tokens the
    collector's module time is mostly its own launches, 1.5 ms at TP 8, under which the GPU's
    work hides: those cells are not compared.)"""
    from wrpsim.pool.kernels.borrowed import short_loop

    m = get_model("deepseek-v3.2")
    lat = _lat(m, gpu=gpu, kv_dtype=kv)
    kvd = "fp8" if kv == "fp8" else "bf16"
    assert "sparse attention (DSA) from its measured module" in lat.calibration
    assert lat._dsa_pair + lat._dsa_pick > 0 and lat._idx_pre > 0 and lat._idx_dec > 0
    grid, gemm = lat.kernels.dsa("prefill", kvd, "fp8_block", 16)
    loop = short_loop(lat.kernels)
    projs = [*operators.mla_projections(lat), (64 * 128, 1536), (128, 7168)]

    def module(b, s):  # measured, projections out, above the smallest cell
        t = float(np.interp(s, grid.s, grid.row(float(b))))
        t -= sum(float(loop.gemm(gemm, n, k)(np.array([float(b * s)]))[0]) for n, k in projs)
        return t - float(grid.t[0, 0])

    tol = 0.5 if gpu == "b200-180gb" else 0.25
    for b, s in ((1, 8192), (1, 32768), (4, 8192), (16, 2048)):
        got = lat._prefill_attn(b, b * s, b * s * (s + 1) / 2.0) / 61
        assert got == pytest.approx(module(b, s), rel=tol), (b, s)
    dec, _ = lat.kernels.dsa("decode", kvd, "fp8_block", 16)
    grow = float(np.interp(131072, dec.s, dec.row(256.0)) - np.interp(2048, dec.s,
                                                                      dec.row(256.0)))
    got = (lat._decode_attn1(256, 131072.0) - lat._decode_attn1(256, 2048.0)) / 61
    assert got == pytest.approx(grow, rel=0.1)
    tp4 = _lat(m, gpu=gpu, tp=4, kv_dtype=kv)
    assert tp4._idx_dec == pytest.approx(lat._idx_dec, rel=0.1)
    # one sequence's scoring is latency-bound: it costs more per key than a large batch's
    assert lat._dec_row(1)[4] > 3 * lat._dec_row(256)[4] / 256
    # the indexer's scoring is the same kernel whatever the latent cache's dtype
    other = _lat(m, gpu=gpu, kv_dtype="auto" if kv == "fp8" else "fp8")
    assert other._idx_pre == pytest.approx(lat._idx_pre, rel=0.1)


#: zai-org/GLM-5.2's `indexer_types` (IndexShare): its own indexer in layers 0-2 and every
#: fourth from 6, the other 57 of its 78 layers reusing the top-k of the layer before
GLM5_INDEXERS = ["full"] * 3 + (["shared"] * 3 + ["full"]) * 18 + ["shared"] * 3


def test_shared_indexer_layers_hold_no_indexer():
    """GLM-5's config.json names which layers run an indexer (`indexer_types`); the shared
    ones have no indexer weights or key cache and score nothing. Read as `index_layers`
    (21 of 78), the model loses 57 indexers' weights and key-cache bytes against the same
    file without the list, and keeps its latent KV and sparse attention in every layer."""
    cfg = {**V32_CONFIG, "num_hidden_layers": 78}
    shared, unread = read_hf_config({**cfg, "indexer_types": GLM5_INDEXERS,
                                     "index_topk_freq": 4})
    assert shared["index_layers"] == 21 and not {"indexer_types", "index_topk_freq"} & set(
        unread)
    plain, unread_plain = read_hf_config({**cfg, "index_topk_freq": 4})
    assert "index_layers" not in plain and "index_topk_freq" in unread_plain  # (not modelled)
    m = get_model("deepseek-v3.2").__class__(name="s", **shared)
    p = get_model("deepseek-v3.2").__class__(name="p", **plain)
    assert (m.indexer_layers, p.indexer_layers, m.capped_layers) == (21, 78, 78)
    assert p.params - m.params == 57 * m.index_params_per_layer
    assert p.kv_bytes_per_token - m.kv_bytes_per_token == 57 * 132
    for kv in ("auto", "fp8"):
        a, b = _lat(m, kv_dtype=kv), _lat(p, kv_dtype=kv)
        assert b.kv_bytes_per_token_per_gpu - a.kv_bytes_per_token_per_gpu == 57 * 132
        assert b.weight_bytes_per_gpu - a.weight_bytes_per_gpu == pytest.approx(
            57 * m.index_params_per_layer * rl.WEIGHT_BYTES["fp8_block"], rel=1e-9)
        # the sparse kernel runs in every layer; only the indexer's share shrinks
        assert attention.sparse_prefill_pair_s(a) == pytest.approx(
            attention.sparse_prefill_pair_s(b), rel=1e-12)


@pytest.mark.parametrize("gpu", ["h200-141gb", "rtxpro6000-96gb"])
def test_a_shared_indexer_scores_in_its_own_layers_only(gpu):
    """DeepSeek-V3.2 with an indexer in a quarter of its layers: the indexer's costs — from
    the measured module's fit on the H200, by roofline on the RTX PRO 6000 — are that
    quarter of the whole model's, the sparse kernel's are unchanged."""
    m = get_model("deepseek-v3.2")
    q = dataclasses.replace(m, name="v32-shared", index_layers=16)
    tp = 1 if gpu == "rtxpro6000-96gb" else 8
    a, b = _lat(m, gpu=gpu, tp=tp, kv_dtype="fp8"), _lat(q, gpu=gpu, tp=tp, kv_dtype="fp8")
    scale = 16 / 61
    assert b._idx_dec == pytest.approx(scale * a._idx_dec, rel=1e-9)
    assert b._idx_pre == pytest.approx(scale * a._idx_pre, rel=1e-9)
    assert b._dec_row(64)[4] == pytest.approx(scale * a._dec_row(64)[4], rel=1e-9)
    assert b._dsa_pair == pytest.approx(a._dsa_pair, rel=1e-9)
    assert b._dsa_pick == pytest.approx(a._dsa_pick, rel=1e-9)


@pytest.mark.parametrize("edit, message", [
    ({"indexer_types": ["full"] * 3}, r"^config\.json key 'indexer_types' must be a list of "
                                      r"num_hidden_layers \(78\) kinds \(full, shared\), "
                                      r"got 3 entries$"),
    ({"indexer_types": ["full", "mixed"] * 39},
     r"^config\.json key 'indexer_types': unknown kind 'mixed'; valid: full, shared$"),
    ({"indexer_types": ["shared"] * 78}, r"^config\.json key 'indexer_types' names no 'full'"),
])
def test_a_bad_indexer_list_is_one_line(edit, message):
    with pytest.raises(ConfigError, match=message):
        read_hf_config({**V32_CONFIG, "num_hidden_layers": 78, **edit})


def test_index_layers_in_a_catalog_entry_is_checked(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(ENTRY + MLA + "  index_layers: 2\n")
    with pytest.raises(ConfigError, match=r"'index_layers' .* needs index_topk > 0"):
        load_models(path)
    path.write_text(ENTRY + MLA + INDEXER + "  index_layers: 5\n")
    with pytest.raises(ConfigError, match=r"'index_layers' must be <= the attention layers "
                                          r"\(4\), got 5"):
        load_models(path)
    path.write_text(ENTRY + MLA + INDEXER + "  index_layers: 2\n")
    assert load_models(path)["m"].indexer_layers == 2
