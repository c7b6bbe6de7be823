"""config.json of hybrid (Mamba / linear-attention) stacks and MoE key dialects: parameter
counts against the published totals, KV and recurrent-state bytes against hand arithmetic.

The dictionaries hold the shape keys of each model's published config.json (Hugging Face
model repositories; copies found in ai-dynamo/aiconfigurator `model_configs/` and other public
repositories); keys that change no size are left out."""

from __future__ import annotations

import pytest

from wrpsim.errors import ConfigError
from wrpsim.pool.hfconfig import read_hf_config
from wrpsim.pool.kernels import operators
from wrpsim.pool.modelspec import ModelSpec

QWEN3_NEXT = {  # Qwen/Qwen3-Next-80B-A3B-Thinking: 80B total, 3B active
    "model_type": "qwen3_next", "hidden_size": 2048, "intermediate_size": 5120,
    "moe_intermediate_size": 512, "num_hidden_layers": 48, "num_attention_heads": 16,
    "num_key_value_heads": 2, "head_dim": 256, "num_experts": 512, "num_experts_per_tok": 10,
    "shared_expert_intermediate_size": 512, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "vocab_size": 151936, "full_attention_interval": 4, "linear_num_key_heads": 16,
    "linear_num_value_heads": 32, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
    "linear_conv_kernel_dim": 4, "use_sliding_window": False, "tie_word_embeddings": False,
    "max_position_embeddings": 262144}
GRANITE_4_H_TINY = {  # ibm-granite/granite-4.0-h-tiny: 7B total, 1B active
    "model_type": "granitemoehybrid", "hidden_size": 1536, "num_hidden_layers": 40,
    "num_attention_heads": 12, "num_key_value_heads": 4, "intermediate_size": 512,
    "shared_intermediate_size": 1024, "num_local_experts": 64, "num_experts_per_tok": 6,
    "vocab_size": 100352, "tie_word_embeddings": True, "mamba_d_state": 128,
    "mamba_n_groups": 1, "mamba_n_heads": 48, "mamba_d_head": 64, "mamba_expand": 2,
    "mamba_d_conv": 4, "mamba_chunk_size": 256, "max_position_embeddings": 131072,
    "layer_types": (["mamba"] * 5 + ["attention"] + ["mamba"] * 4) * 4}
JAMBA_MINI = {  # ai21labs/AI21-Jamba-1.5-Mini: 52B total, 12B active
    "model_type": "jamba", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "num_experts": 16, "num_experts_per_tok": 2, "vocab_size": 65536,
    "attn_layer_offset": 4, "attn_layer_period": 8, "expert_layer_offset": 1,
    "expert_layer_period": 2, "mamba_d_conv": 4, "mamba_d_state": 16, "mamba_dt_rank": 256,
    "mamba_expand": 2, "mamba_conv_bias": True, "mamba_proj_bias": False,
    "tie_word_embeddings": False, "max_position_embeddings": 262144}
FALCON_H1_7B = {  # tiiuae/Falcon-H1-7B-Instruct: 7.6B (attention beside Mamba-2 in every layer)
    "model_type": "falcon_h1", "hidden_size": 3072, "num_hidden_layers": 44,
    "num_attention_heads": 12, "num_key_value_heads": 2, "head_dim": 128,
    "intermediate_size": 12288, "vocab_size": 130048, "tie_word_embeddings": False,
    "mamba_d_state": 256, "mamba_n_groups": 1, "mamba_n_heads": 24, "mamba_d_head": 128,
    "mamba_d_ssm": 3072, "mamba_expand": 2, "mamba_d_conv": 4,
    "max_position_embeddings": 262144}
ERNIE_45_21B = {  # baidu/ERNIE-4.5-21B-A3B-PT: 21B total, 3B active
    "model_type": "ernie4_5_moe", "hidden_size": 2560, "intermediate_size": 12288,
    "moe_intermediate_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 20,
    "num_key_value_heads": 4, "head_dim": 128, "moe_num_experts": 64,
    "moe_num_shared_experts": 2, "moe_k": 6, "moe_layer_start_index": 1,
    "moe_layer_end_index": 27, "moe_layer_interval": 1, "vocab_size": 103424,
    "tie_word_embeddings": True, "max_position_embeddings": 131072}


def _spec(cfg: dict) -> tuple[ModelSpec, list]:
    fields, unread = read_hf_config(cfg)
    return ModelSpec(name="x", **fields), unread


@pytest.mark.parametrize("cfg, total_b, active_b, attn, rec", [
    (QWEN3_NEXT, 80, 3.0, 12, 36),
    (GRANITE_4_H_TINY, 7, 1.0, 4, 36),
    (JAMBA_MINI, 52, 12, 4, 28),
    (FALCON_H1_7B, 7.6, 7.6, 44, 44),
    (ERNIE_45_21B, 21, 3.0, 28, 0),
], ids=["qwen3-next", "granite-4-h", "jamba", "falcon-h1", "ernie-4.5"])
def test_published_totals_and_layer_kinds(cfg, total_b, active_b, attn, rec):
    m, unread = _spec(cfg)
    assert unread == []  # every shape key read
    assert m.params / 1e9 == pytest.approx(total_b, rel=0.05)
    # the published active figures are rounded ("A3B") and leave the embeddings out
    assert (m.active_params - m.embedding_params) / 1e9 == pytest.approx(active_b, rel=0.35)
    assert (m.attn_layers, m.mamba_layers) == (attn, rec)


def test_hybrid_kv_and_state_by_hand():
    nxt, _ = _spec(QWEN3_NEXT)
    # 12 full-attention layers x K and V x 2 KV heads x 256 x 2 bytes
    assert nxt.kv_bytes_per_token == 12 * 2 * 2 * 256 * 2
    # 36 Gated DeltaNet layers: 32 value heads x 128 x a 128-wide key state (BF16) and the
    # conv window over q, k, v (2 x 16 x 128 + 32 x 128 channels) x 3 taps
    assert nxt.mamba_state_bytes == 36 * (32 * 128 * 128 * 2 + 3 * (2 * 16 * 128 + 32 * 128) * 2)
    jamba, _ = _spec(JAMBA_MINI)
    assert jamba.kv_bytes_per_token == 4 * 2 * 8 * 128 * 2
    # 16 MoE FFNs (every other layer from 1), 16 dense ones of the same width
    assert (jamba.moe_layers, jamba.dense_layers, jamba.dense_intermediate) == (16, 16, 14336)
    # Mamba-1: 2 x 4096 channels x a 16-wide state, conv window of 3
    assert jamba.mamba_state_bytes == 28 * (8192 * 16 * 2 + 3 * (8192 + 2 * 16) * 2)
    granite, _ = _spec(GRANITE_4_H_TINY)
    assert granite.kv_bytes_per_token == 4 * 2 * 4 * 128 * 2
    assert granite.shared_intermediate == 1024 and granite.intermediate == 512
    ernie, _ = _spec(ERNIE_45_21B)
    # layer 0 a dense 12,288-wide FFN; layers 1-27 MoE with two 1,536-wide shared experts
    assert (ernie.experts, ernie.active_experts, ernie.moe_layers) == (64, 6, 27)
    assert (ernie.dense_layers, ernie.dense_intermediate, ernie.shared_intermediate) == (
        1, 12288, 3072)


def test_layer_types_naming_linear_attention_and_sliding_windows():
    qwen35 = {**QWEN3_NEXT, "num_hidden_layers": 40,
              "layer_types": (["linear_attention"] * 3 + ["full_attention"]) * 10}
    m, _ = _spec(qwen35)
    assert (m.attn_layers, m.mamba_layers) == (10, 30)
    smol = {"model_type": "smollm3", "hidden_size": 2048, "intermediate_size": 11008,
            "num_hidden_layers": 4, "num_attention_heads": 16, "num_key_value_heads": 4,
            "vocab_size": 128256, "layer_types": ["full_attention"] * 4}
    m, unread = _spec(smol)
    assert (m.attn_layers, m.mamba_layers, unread) == (4, 0, [])


@pytest.mark.parametrize("edit, message", [
    ({"layer_types": ["mamba", "cross_attention"] * 20},
     r"'layer_types': unknown layer kind 'cross_attention'; valid: full_attention, "),
    ({"layer_types": ["mamba"] * 3}, r"'layer_types' must be a list of num_hidden_layers \(40\)"),
    ({"layer_types": ["mamba"] * 40}, r"purely recurrent model \(40 Mamba / linear-attention"),
    ({"mamba_n_heads": None, "mamba_d_head": None, "mamba_d_state": None},
     r"36 recurrent \(Mamba / linear-attention\) layers but no keys for their size"),
])
def test_bad_hybrid_keys_are_one_line(edit, message):
    cfg = {k: v for k, v in {**GRANITE_4_H_TINY, **edit}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        read_hf_config(cfg)


def test_per_layer_widths_are_refused_with_a_way_out():
    decilm = {"model_type": "nemotron-nas", "hidden_size": 8192, "num_hidden_layers": 80,
              "num_attention_heads": 64, "num_key_value_heads": None,
              "intermediate_size": None, "vocab_size": 128256,
              "block_configs": [{"attention": {"n_heads_in_group": 8}, "ffn": {"ffn_mult": 5}}]}
    with pytest.raises(ConfigError, match=r"'block_configs', DeciLM .* give the model as "
                                          r"wrpsim's own fields"):
        read_hf_config(decilm)


def test_a_quantized_checkpoint_is_named_with_the_precision_to_set(tmp_path, monkeypatch):
    import yaml

    from wrpsim.errors import WrpsimWarning
    from wrpsim.pool import catalog

    fp8 = {**QWEN3_NEXT, "quantization_config": {"quant_method": "fp8",
                                                 "weight_block_size": [128, 128]}}
    assert read_hf_config(fp8)[1] == ["quantization_config"]
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"next-fp8": {"hf_config": fp8}}))
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    catalog.models.cache_clear()
    try:
        with pytest.warns(WrpsimWarning, match=r"does not read: quantization_config; .*sized "
                                               r"by the pool's precision \(default bf16\).*set "
                                               r"precision= to its format"):
            catalog.get_model("next-fp8")
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.models.cache_clear()


def test_a_list_valued_moe_layer_freq_places_the_dense_layers():
    cfg = {**ERNIE_45_21B}
    for k in ("moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval"):
        cfg.pop(k)
    m, _ = _spec({**cfg, "moe_layer_freq": [0] * 2 + [1] * 26})
    assert (m.moe_layers, m.dense_layers) == (26, 2)
    with pytest.raises(ConfigError, match=r"'moe_layer_freq' as a list must hold one 0 or 1 "
                                          r"per layer \(num_hidden_layers 28\)"):
        read_hf_config({**cfg, "moe_layer_freq": [1, 2]})


def test_shared_expert_width_times_their_count_and_ernies_layer_rule():
    nemotron3 = {"model_type": "nemotron_h", "hidden_size": 2688, "num_hidden_layers": 4,
                 "hybrid_override_pattern": "ME*E", "num_attention_heads": 32,
                 "num_key_value_heads": 2, "head_dim": 128, "intermediate_size": 1856,
                 "moe_intermediate_size": 1856, "moe_shared_expert_intermediate_size": 3712,
                 "n_routed_experts": 128, "num_experts_per_tok": 6, "vocab_size": 131072,
                 "mamba_num_heads": 64, "mamba_head_dim": 64, "ssm_state_size": 128,
                 "n_groups": 8, "conv_kernel": 4, "mlp_hidden_act": "relu2"}
    # vLLM's NemotronHMoE: n_shared_experts of moe_shared_expert_intermediate_size, none at 0
    for n, width in ((0, 0), (1, 3712), (2, 7424)):
        m, unread = _spec({**nemotron3, "n_shared_experts": n})
        assert (m.shared_intermediate, unread) == (width, [])
    # transformers Ernie4_5_MoeDecoderLayer: (i + 1) % interval == 0 and start <= i <= end
    every3 = {**ERNIE_45_21B, "moe_layer_start_index": 0, "moe_layer_interval": 3}
    assert _spec(every3)[0].moe_layers == 9  # layers 2, 5, ..., 26
    no_start = {k: v for k, v in ERNIE_45_21B.items() if k != "moe_layer_start_index"}
    assert _spec(no_start)[0].moe_layers == 27  # the config class's start: 1


def test_a_dense_granite_4_hybrid_uses_its_shared_mlp():
    dense = {**GRANITE_4_H_TINY, "num_local_experts": 0, "intermediate_size": 8192,
             "shared_intermediate_size": 8192}
    m, unread = _spec(dense)
    assert (m.experts, m.intermediate, unread) == (1, 8192, [])


NEMOTRON_3_SUPER = {  # nvidia/NVIDIA-Nemotron-3-Super-120B-A12B: 120B total, 12B active
    "model_type": "nemotron_h", "hidden_size": 4096, "intermediate_size": 2688,
    "hybrid_override_pattern": "MEMEMEM*EMEMEMEM*EMEMEMEM*EMEMEMEMEM*EMEMEMEMEM*EMEMEMEMEM*"
                               "EMEMEMEMEM*EMEMEMEM*EMEMEMEME",
    "mamba_head_dim": 64, "mamba_num_heads": 128, "n_groups": 8, "ssm_state_size": 128,
    "conv_kernel": 4, "mlp_hidden_act": "relu2", "moe_intermediate_size": 2688,
    "moe_latent_size": 1024, "moe_shared_expert_intermediate_size": 5376,
    "n_routed_experts": 512, "n_shared_experts": 1, "num_experts_per_tok": 22,
    "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128,
    "num_hidden_layers": 88, "vocab_size": 131072, "tie_word_embeddings": False,
    "max_position_embeddings": 262144}


def test_a_latent_moe_runs_its_experts_at_the_latent_width():
    """Nemotron 3 Super's 512 experts work at `moe_latent_size` 1,024, not the hidden 4,096:
    each MoE layer projects its tokens down before them and up after (fc1 / fc2_latent_proj),
    the shared expert and the router stay at 4,096. Read as hidden-wide experts the model was
    459 B parameters for its published 120 B. The latency model runs the experts at the latent
    width, dispatches latent-wide tokens between expert-parallel GPUs, and holds the two
    projections on every GPU (vLLM `ReplicatedLinear`)."""
    import numpy as np

    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import get_engine, kernels_for
    from wrpsim.pool.kernels import roofline as rl
    from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

    fields, unread = read_hf_config(NEMOTRON_3_SUPER)
    assert "moe_latent_size" not in unread
    m = ModelSpec(name="nemotron-3-super", **fields)
    assert (m.moe_layers, m.expert_hidden, m.gated_mlp) == (40, 1024, False)
    assert m.expert_params == 40 * 512 * 2 * 1024 * 2688
    assert m.params / 1e9 == pytest.approx(120.7, abs=0.1)
    assert m.active_params / 1e9 == pytest.approx(12.8, abs=0.1)
    kernels = kernels_for(get_engine("vllm-0.24"), "h200-141gb")
    for tp, ep in ((8, 1), (8, 8)):
        lat = KernelLatency(m, get_gpu("h200-141gb"), tp, kernels, EngineConstants(), ep=ep)
        T = np.array([1.0, 64.0, 4096.0])
        moe_tp, moe_ep = (1, tp) if ep > 1 else (tp, 1)
        want = 40 * kernels.moe("bf16", 1024, 2688, 22, 512, moe_tp, moe_ep, False)(T)
        assert np.allclose(operators.moe_layers_s(lat, T), want, rtol=1e-12)
        assert ((40, "bf16", 1024, 4096) in operators.gemms(lat)
                and (40, "bf16", 4096, 1024) in operators.gemms(lat))
        if ep > 1:
            e = T * 1024
            got = operators.dispatch_s(lat, 40, 8, T)
            assert np.allclose(got, 40 * (kernels.nccl("all_gather", 8)(e)
                                          + kernels.nccl("reduce_scatter", 8)(e)), rtol=1e-12)
        # replicated on every GPU: the latent projections and the router (BF16)
        router = m.moe_layers * m.hidden * m.experts
        rep = (40 * m.latent_params_per_layer + router) * rl.WEIGHT_BYTES["bf16"]
        dense = (m.params - m.expert_params - m.embedding_params
                 - 40 * m.latent_params_per_layer - router)
        assert lat.weight_bytes_per_gpu == pytest.approx(
            (dense * 2.0 + m.embedding_params * 2.0 + m.expert_params * 2.0) / tp + rep,
            rel=1e-12)


def test_dense_layers_width_named_apart_deepseek_v4_refused_and_a_vision_tower_named():
    """MiniMax-M3 gives its three leading dense layers their own width
    (`dense_intermediate_size` 12,288 beside `intermediate_size` 3,072); DeepSeek-V4's
    compressed attention would be read as another architecture's, so its config.json is refused
    with one line; a multimodal config.json's `vision_config` is named as not read (the text
    model is what is modelled unless the entry gives a `vision:` block)."""
    from wrpsim.pool.hfconfig import unread_keys

    minimax = {"model_type": "minimax_m3", "hidden_size": 6144, "num_hidden_layers": 60,
               "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128,
               "intermediate_size": 3072, "moe_intermediate_size": 3072,
               "dense_intermediate_size": 12288, "first_k_dense_replace": 3,
               "moe_layer_freq": [0, 0, 0] + [1] * 57, "num_local_experts": 128,
               "num_experts_per_tok": 4, "n_shared_experts": 1,
               "shared_intermediate_size": 3072, "vocab_size": 200064}
    fields, unread = read_hf_config(minimax)
    assert (fields["dense_layers"], fields["dense_intermediate"]) == (3, 12288)
    assert "dense_intermediate_size" not in unread
    v4 = {"model_type": "deepseek_v4", "hidden_size": 4096, "num_hidden_layers": 43,
          "num_attention_heads": 64, "num_key_value_heads": 1, "head_dim": 512,
          "q_lora_rank": 1024, "o_lora_rank": 1024, "o_groups": 8,
          "compress_ratios": [0] * 44, "vocab_size": 129280}
    with pytest.raises(ConfigError, match=r"^config\.json describes DeepSeek-V4's attention "
                                          r"\(compressed KV 'compress_ratios'.*\n?$") as e:
        read_hf_config(v4)
    assert "\n" not in str(e.value)
    # Kimi Linear (Kimi-K3's text config): KDA recurrent layers beside MLA ones, described in
    # `linear_attn_config`; it was refused for lacking `num_experts_per_tok` (its dialect says
    # `num_experts_per_token`), which named the wrong problem
    kimi = {"model_type": "kimi_linear", "hidden_size": 7168, "num_hidden_layers": 93,
            "num_attention_heads": 96, "num_key_value_heads": 96, "kv_lora_rank": 512,
            "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
            "v_head_dim": 128, "num_experts": 896, "num_experts_per_token": 16,
            "vocab_size": 163840, "linear_attn_config": {
                "full_attn_layers": [4, 8], "kda_layers": [1, 2, 3], "num_heads": 96,
                "head_dim": 128, "short_conv_kernel_size": 4}}
    with pytest.raises(ConfigError, match=r"^config\.json describes Kimi Linear's KDA \(Kimi "
                                          r"Delta Attention\) layers \('linear_attn_config'\)"):
        read_hf_config({"model_type": "kimi_k3", "text_config": kimi})
    vl = {"model_type": "qwen3_vl_moe", "text_config": {
        "model_type": "qwen3_vl_moe_text", "hidden_size": 2048, "num_hidden_layers": 48,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
        "intermediate_size": 6144, "moe_intermediate_size": 768, "num_experts": 128,
        "num_experts_per_tok": 8, "vocab_size": 151936}, "vision_config": {"depth": 27}}
    assert unread_keys(vl) == ["vision_config"]


def test_gated_attention_doubles_the_query_projection():
    """Qwen3-Next (always) and Qwen3.5 (`attn_output_gate: true`) gate each head's attention
    output with a sigmoid of a second query-wide projection: the QKV projection is H x
    head_dim wider (vLLM `QKVParallelLinear(..., total_num_heads * (1 + attn_output_gate))`),
    its weights and GEMM with it; KV unchanged."""
    import dataclasses

    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import get_engine, kernels_for
    from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

    nxt, _ = _spec(QWEN3_NEXT)
    assert nxt.attn_gate
    plain = dataclasses.replace(nxt, attn_gate=False)
    assert nxt.params - plain.params == 12 * 2048 * 16 * 256
    assert nxt.kv_bytes_per_token == plain.kv_bytes_per_token
    fields, _ = read_hf_config({**QWEN3_NEXT, "model_type": "qwen3_5_moe",
                                "attn_output_gate": False})
    assert not fields["attn_gate"]
    kernels = kernels_for(get_engine("vllm-0.24"), "h100-80gb")
    for spec, q in ((nxt, 2 * 16 // 2), (plain, 16 // 2)):
        lat = KernelLatency(spec, get_gpu("h100-80gb"), 2, kernels, EngineConstants())
        assert (12, "bf16", (q + 2 * 1) * 256, 2048) in operators.gemms(lat)


HUNYUAN_A13B = {  # tencent/Hunyuan-A13B-Instruct: 80B total, 13B active
    "model_type": "hunyuan", "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "attention_head_dim": 128,
    "intermediate_size": 3072, "num_experts": 64, "moe_topk": [8] * 32,
    "moe_intermediate_size": [3072] * 32, "num_shared_expert": [1] * 32,
    "use_mixed_mlp_moe": True, "moe_layer_num_skipped": 0, "vocab_size": 128167,
    "tie_word_embeddings": True, "max_position_embeddings": 32768, "use_cla": False,
    "kv_lora_rank": None, "q_lora_rank": None, "use_mla": False}


def test_per_layer_lists_of_one_value_are_that_value():
    """Hunyuan gives its MoE keys one value per layer (`moe_topk`, `moe_intermediate_size`,
    `num_shared_expert` lists) and its shared expert under its own name with
    `use_mixed_mlp_moe`: read as the uniform value, 80.4 B / 12.8 B active as published (it
    failed with "lacks 'num_experts_per_tok'"); null keys (its unused MLA ones) are not named as
    unread; layers that differ are refused in one line."""
    m, unread = _spec(HUNYUAN_A13B)
    assert unread == []
    assert (m.active_experts, m.intermediate, m.shared_intermediate) == (8, 3072, 3072)
    assert m.params / 1e9 == pytest.approx(80.4, abs=0.1)
    assert m.active_params / 1e9 == pytest.approx(12.8, abs=0.1)
    off = {**HUNYUAN_A13B, "use_mixed_mlp_moe": False}
    assert _spec(off)[0].shared_intermediate == 0
    bad = {**HUNYUAN_A13B, "moe_topk": [8] * 31 + [4]}
    with pytest.raises(ConfigError, match=r"^config\.json key 'moe_topk' gives its layers "
                                          r"different values \(4, 8\), which wrpsim's uniform "
                                          r"layers cannot hold$"):
        read_hf_config(bad)


def test_the_checkpoints_ssm_state_dtype_is_vllms_auto():
    """Nemotron 3's config.json asks for a float32 Mamba SSM state (`mamba_ssm_cache_dtype`),
    which vLLM's `--mamba-ssm-cache-dtype auto` takes: wrpsim's `auto` does too (it held BF16,
    twice the sequences per GiB of state); a pool's explicit setting still wins, in wrpsim's
    or vLLM's spelling; a dtype that is not one is refused in one line."""
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import get_engine, kernels_for
    from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

    fields, unread = read_hf_config({**NEMOTRON_3_SUPER, "mamba_ssm_cache_dtype": "float32"})
    assert fields["mamba_ssm_bytes"] == 4 and "mamba_ssm_cache_dtype" not in unread
    m = ModelSpec(name="n3s", **fields)
    kernels = kernels_for(get_engine("vllm-0.24"), "h200-141gb")

    def state(**kw):
        return KernelLatency(m, get_gpu("h200-141gb"), 2, kernels, EngineConstants(**kw),
                             precision="fp8").mamba_state_bytes

    assert state() == m.mamba_state_bytes_at(4.0) == state(mamba_ssm_dtype="float32")
    assert state(mamba_ssm_dtype="bf16") == m.mamba_state_bytes_at(2.0)
    assert state(mamba_ssm_dtype="bfloat16") == m.mamba_state_bytes_at(2.0)
    assert ModelSpec(name="x", **read_hf_config(NEMOTRON_3_SUPER)[0]).mamba_ssm_bytes == 0
    with pytest.raises(ConfigError, match=r"^config\.json key 'mamba_ssm_cache_dtype' must be "
                                          r"one of float32, bfloat16, float16, got 'fp64'$"):
        read_hf_config({**NEMOTRON_3_SUPER, "mamba_ssm_cache_dtype": "fp64"})


@pytest.mark.parametrize("pattern, message", [
    ("MMMM", r"^config\.json describes a purely recurrent model \(no '\*' attention layer"),
    ("M*MX", r"^config\.json key 'hybrid_override_pattern': unknown layer kind\(s\) 'X'; "
             r"valid: '\*' attention"),
    ("M*M", r"^config\.json key 'hybrid_override_pattern' must have one character per layer "
            r"\(num_hidden_layers 4\), got 'M\*M'$"),
])
def test_a_nemotron_h_pattern_is_checked(pattern, message):
    """A Nemotron-H `hybrid_override_pattern` without attention loaded with its Mamba layers'
    KV counted as attention; an unknown character or a missing layer was dropped silently."""
    cfg = {"model_type": "nemotron_h", "hidden_size": 1024, "num_hidden_layers": 4,
           "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 128,
           "intermediate_size": 4096, "mamba_num_heads": 16, "mamba_head_dim": 64,
           "ssm_state_size": 128, "vocab_size": 1000, "hybrid_override_pattern": pattern}
    with pytest.raises(ConfigError, match=message) as e:
        read_hf_config(cfg)
    assert "\n" not in str(e.value)


def test_a_null_layer_count_is_the_patterns_length():
    """Nemotron 3 Ultra's config.json has `num_hidden_layers: null`; its
    `hybrid_override_pattern` has one letter a layer, as vLLM reads it."""
    m, _ = _spec({**NEMOTRON_3_SUPER, "num_hidden_layers": None})
    assert m.layers == len(NEMOTRON_3_SUPER["hybrid_override_pattern"]) == 88


def test_qwen35_asks_for_a_float32_state_in_its_own_key():
    """Qwen3.5's config.json names its state dtype `mamba_ssm_dtype` (float32), which vLLM's
    `auto` takes for it (Qwen3_5ForConditionalGenerationConfig): read as the checkpoint's
    dtype, so the catalog entry's Gated DeltaNet state is FP32 (twice Qwen3-Next's BF16);
    a bad value is refused naming that key."""
    fields, unread = read_hf_config({**QWEN3_NEXT, "model_type": "qwen3_5_moe_text",
                                     "mamba_ssm_dtype": "float32"})
    assert fields["mamba_ssm_bytes"] == 4 and "mamba_ssm_dtype" not in unread
    assert "mamba_ssm_bytes" not in read_hf_config(QWEN3_NEXT)[0]
    from wrpsim.pool.catalog import get_model

    m = get_model("qwen3.5-35b-a3b")
    assert m.mamba_ssm_bytes == 4
    # 30 Gated DeltaNet layers: 32 value heads x 128 x a 128-wide key state, FP32, plus the
    # BF16 convolution window over 3 positions of (32 + 2 x 16) x 128 channels
    assert m.mamba_state_bytes_at(4.0) == 30 * (4 * 32 * 128 * 128 + 2 * 3 * 64 * 128)
    with pytest.raises(ConfigError, match=r"^config\.json key 'mamba_ssm_dtype' must be one "
                                          r"of float32, bfloat16, float16, got 'fp64'$"):
        read_hf_config({**QWEN3_NEXT, "mamba_ssm_dtype": "fp64"})


NEMOTRON_3_ULTRA = {  # nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16: 550B total, 55B active
    "model_type": "nemotron_h", "hidden_size": 8192, "intermediate_size": 5120,
    "head_dim": 128, "mamba_head_dim": 64, "mamba_num_heads": 256, "n_groups": 8,
    "ssm_state_size": 128, "conv_kernel": 4, "mlp_hidden_act": "relu2",
    "moe_intermediate_size": 5120, "moe_latent_size": 2048,
    "moe_shared_expert_intermediate_size": 10240, "n_routed_experts": 512,
    "n_shared_experts": 1, "num_experts_per_tok": 22, "num_attention_heads": 64,
    "num_key_value_heads": 2, "vocab_size": 131072, "tie_word_embeddings": False,
    "max_position_embeddings": 262144, "mamba_ssm_cache_dtype": "float32",
    # no num_hidden_layers and no hybrid_override_pattern: one kind per layer instead
    "layers_block_type": [{"M": "mamba", "E": "moe", "*": "attention", "-": "mlp"}[ch] for ch in
                          "MEMEMEM*EMEMEM*EMEMEMEM*EMEMEMEM*EMEMEM*EMEMEMEM*EMEMEMEM*EMEMEM*"
                          "EMEMEMEM*EMEMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"]}


def test_a_layer_list_stands_for_the_nemotron_pattern():
    """Nemotron 3 Ultra's config.json gives `layers_block_type` (one of mamba / attention /
    mlp / moe per layer) where earlier Nemotron-H files give `hybrid_override_pattern` and
    `num_hidden_layers`; it was refused ("lacks 'num_hidden_layers'"). Read as the pattern it
    stands for, the model comes out at its published 550 B parameters, 55 B active."""
    m, unread = _spec(NEMOTRON_3_ULTRA)
    assert (m.layers, m.attn_layers, m.mamba_layers, m.moe_layers) == (108, 12, 48, 48)
    assert "layers_block_type" not in unread
    assert m.params / 1e9 == pytest.approx(550, rel=0.01)
    assert m.active_params / 1e9 == pytest.approx(56, rel=0.01)
    pattern = "".join({"mamba": "M", "moe": "E", "attention": "*", "mlp": "-"}[b]
                      for b in NEMOTRON_3_ULTRA["layers_block_type"])
    same, _ = _spec({**NEMOTRON_3_ULTRA, "hybrid_override_pattern": pattern,
                     "num_hidden_layers": 108})
    assert same == m
    # Nemotron-3.5-Lightning's file gives num_hidden_layers and the list, no pattern: it
    # loaded silently as 108 attention layers, each with experts
    counted, _ = _spec({**NEMOTRON_3_ULTRA, "num_hidden_layers": 108})
    assert counted == m


@pytest.mark.parametrize("edit, message", [
    ({"layers_block_type": ["mamba", "cross"] * 3},
     r"^config\.json key 'layers_block_type': unknown layer kind 'cross'; valid: mamba, "
     r"attention, mlp, moe$"),
    ({"layers_block_type": ["mamba", "moe"] * 3},
     r"^config\.json describes a purely recurrent model \(no 'attention' layer in "
     r"layers_block_type\)"),
    ({"layers_block_type": ["mamba", "attention"] * 3, "num_hidden_layers": 8},
     r"^config\.json key 'layers_block_type' must have one entry per layer \(num_hidden_layers "
     r"8\), got 6 layers$"),
    ({"layers_block_type": ["mamba", "attention"], "hybrid_override_pattern": "*M"},
     r"^config\.json keys 'layers_block_type' and 'hybrid_override_pattern' describe "
     r"different layer stacks; give one of them$"),
    ({"layers_block_type": "M*"},
     r"^config\.json key 'layers_block_type' must be a list of layer kinds"),
])
def test_a_bad_layer_list_is_one_line(edit, message):
    with pytest.raises(ConfigError, match=message) as e:
        read_hf_config({**NEMOTRON_3_ULTRA, **edit})
    assert "\n" not in str(e.value)


def test_deepseek_sparse_attention_layers_are_attention_layers():
    """transformers 5's GLM-5 config.json (NVIDIA's NVFP4 GLM-5.2) names every layer
    'deepseek_sparse_attention' in `layer_types`; it was refused as an unknown kind. They are
    attention layers (a KV cache per token; the sparse attention itself is read from the
    `index_*` keys), so the model is the one the same file without `layer_types` describes."""
    from wrpsim.pool.catalog import get_model

    glm = {"model_type": "glm_moe_dsa", "hidden_size": 6144, "num_hidden_layers": 4,
           "num_attention_heads": 64, "num_key_value_heads": 64, "kv_lora_rank": 512,
           "q_lora_rank": 2048, "qk_nope_head_dim": 192, "qk_rope_head_dim": 64,
           "v_head_dim": 256, "intermediate_size": 12288, "moe_intermediate_size": 2048,
           "n_routed_experts": 256, "num_experts_per_tok": 8, "n_shared_experts": 1,
           "first_k_dense_replace": 1, "index_topk": 2048, "index_n_heads": 32,
           "index_head_dim": 128, "vocab_size": 154880}
    plain, _ = _spec(glm)
    typed, _ = _spec({**glm, "layer_types": ["deepseek_sparse_attention"] * 4})
    assert typed == plain and typed.attn_layers == 4 and typed.index_topk == 2048
    assert get_model("deepseek-v3.2").index_topk == 2048  # (the shipped DSA model, unchanged)


def test_mlp_layer_types_say_which_layers_have_experts():
    """GLM-5's config.json lists each layer's FFN as "dense" or "sparse" (`mlp_layer_types`,
    beside `first_k_dense_replace`); it was named as unread. Its sparse layers are the MoE
    layers; a list that disagrees with the leading-dense count wins (it names every layer),
    and a bad one is refused naming the key."""
    glm = {"model_type": "glm_moe_dsa", "hidden_size": 6144, "num_hidden_layers": 8,
           "num_attention_heads": 64, "num_key_value_heads": 64, "head_dim": 128,
           "intermediate_size": 12288, "moe_intermediate_size": 2048, "n_routed_experts": 256,
           "num_experts_per_tok": 8, "n_shared_experts": 1, "first_k_dense_replace": 3,
           "vocab_size": 154880}
    plain, _ = _spec(glm)
    typed, unread = _spec({**glm, "mlp_layer_types": ["dense"] * 3 + ["sparse"] * 5})
    assert typed == plain and (typed.moe_layers, typed.dense_layers) == (5, 3)
    assert "mlp_layer_types" not in unread
    more, _ = _spec({**glm, "mlp_layer_types": ["dense"] * 4 + ["sparse"] * 4})
    assert (more.moe_layers, more.dense_layers) == (4, 4)
    every, _ = _spec({**glm, "mlp_layer_types": ["sparse"] * 8})
    assert (every.moe_layers, every.dense_layers) == (8, 0)
    with pytest.raises(ConfigError, match=r"^config\.json key 'mlp_layer_types': unknown kind "
                                          r"'moe'; valid: dense, sparse$"):
        read_hf_config({**glm, "mlp_layer_types": ["dense", "moe"] * 4})
    with pytest.raises(ConfigError, match=r"^config\.json key 'mlp_layer_types' must be a list "
                                          r"of num_hidden_layers \(8\) kinds \(dense, sparse\), "
                                          r"got 3 entries$"):
        read_hf_config({**glm, "mlp_layer_types": ["dense"] * 3})


def test_glm5_keys_without_a_shape_are_not_named_and_qk_head_dim_is_checked():
    """GLM-5's config.json also gives RoPE's element order (`rope_interleave`,
    `indexer_rope_interleave`), the router's logit dtype and `qk_head_dim` (the nope + rope
    sum): the first three change no time or memory and are not named as unread; the last
    must agree with its parts, else one line."""
    glm = {"model_type": "glm_moe_dsa", "hidden_size": 6144, "num_hidden_layers": 4,
           "num_attention_heads": 64, "num_key_value_heads": 64, "kv_lora_rank": 512,
           "q_lora_rank": 2048, "qk_nope_head_dim": 192, "qk_rope_head_dim": 64,
           "v_head_dim": 256, "intermediate_size": 12288, "vocab_size": 154880,
           "rope_interleave": True, "indexer_rope_interleave": True,
           "moe_router_dtype": "float32", "qk_head_dim": 256}
    _, unread = read_hf_config(glm)
    assert unread == []
    with pytest.raises(ConfigError, match=r"^config\.json key 'qk_head_dim' \(200\) must be "
                                          r"qk_nope_head_dim \+ qk_rope_head_dim \(256\)$"):
        read_hf_config({**glm, "qk_head_dim": 200})
