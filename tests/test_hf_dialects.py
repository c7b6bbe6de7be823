"""config.json dialects of models outside the catalog: a model loads right from its
config.json numbers alone, or is refused with one line naming what wrpsim does not read —
never loaded silently wrong.

A review (2026-12-06) loaded 64 real config.json files of popular open models: six loaded with
a gated (three-matrix) MLP where theirs has two matrices (GPT-NeoX, StarCoder2, Phi-2,
Nemotron-4), Cohere's loaded untied (its config.json leaves `tie_word_embeddings` out and
`CohereConfig` defaults it to true), Hunyuan-Large with twice its KV (cross-layer attention)
and Arctic without its residual MLP; a dozen others were refused with a message naming the
wrong thing ("lacks 'num_hidden_layers'" for a config that counts its layers `num_layers`).
The dictionaries hold the shape keys of each published config.json (copies in public
repositories: mlc-ai/mlc-llm `python/mlc_llm/model/model_preset.py`, TensorRT-LLM's tests);
the totals are the published parameter counts."""

from __future__ import annotations

import pytest

from wrpsim.errors import ConfigError
from wrpsim.pool.modelspec import ModelSpec, read_hf_config

GPT_NEOX_20B = {  # EleutherAI/gpt-neox-20b: 20.55B, MLP dense_h_to_4h / dense_4h_to_h
    "model_type": "gpt_neox", "hidden_size": 6144, "intermediate_size": 24576,
    "num_attention_heads": 64, "num_hidden_layers": 44, "vocab_size": 50432,
    "tie_word_embeddings": False, "max_position_embeddings": 2048}
STARCODER2_7B = {  # bigcode/starcoder2-7b: 7.17B, MLP c_fc / c_proj, embeddings tied (default)
    "model_type": "starcoder2", "hidden_size": 4608, "intermediate_size": 18432,
    "num_attention_heads": 36, "num_key_value_heads": 4, "num_hidden_layers": 32,
    "vocab_size": 49152, "sliding_window": 4096, "max_position_embeddings": 16384}
PHI_2 = {  # microsoft/phi-2 (model_type phi): 2.78B, MLP fc1 / fc2
    "model_type": "phi", "hidden_size": 2560, "intermediate_size": 10240,
    "num_attention_heads": 32, "num_key_value_heads": 32, "num_hidden_layers": 32,
    "vocab_size": 51200, "tie_word_embeddings": False, "max_position_embeddings": 2048}
NEMOTRON_MINI_4B = {  # nvidia/Nemotron-Mini-4B-Instruct: 4.19B, relu2 up / down
    "model_type": "nemotron", "hidden_act": "relu2", "hidden_size": 3072,
    "intermediate_size": 9216, "num_hidden_layers": 32, "num_attention_heads": 24,
    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 256000,
    "max_position_embeddings": 4096, "tie_word_embeddings": False}
COMMAND_R = {  # CohereForAI/c4ai-command-r-v01: 35.0B, no tie_word_embeddings key
    "model_type": "cohere", "hidden_size": 8192, "intermediate_size": 22528,
    "num_attention_heads": 64, "num_key_value_heads": 64, "num_hidden_layers": 40,
    "vocab_size": 256000, "max_position_embeddings": 8192}
LLAMA_3_2_3B = {  # meta-llama/Llama-3.2-3B: 3.21B, gated MLP, tied
    "model_type": "llama", "hidden_size": 3072, "intermediate_size": 8192,
    "num_attention_heads": 24, "num_key_value_heads": 8, "num_hidden_layers": 28,
    "vocab_size": 128256, "tie_word_embeddings": True, "max_position_embeddings": 131072}


def _spec(cfg: dict) -> ModelSpec:
    fields, _ = read_hf_config(cfg)
    return ModelSpec(name="x", **fields)


@pytest.mark.parametrize("cfg, total, gated", [
    (GPT_NEOX_20B, 20.55e9, False), (STARCODER2_7B, 7.17e9, False), (PHI_2, 2.78e9, False),
    (NEMOTRON_MINI_4B, 4.19e9, False), (COMMAND_R, 35.0e9, True), (LLAMA_3_2_3B, 3.21e9, True),
])
def test_a_models_mlp_and_embeddings_are_read_as_its_type_builds_them(cfg, total, gated):
    """Two-matrix MLPs by model type (GPT-NeoX, StarCoder2, Phi, Nemotron-4: 27-41 % too many
    parameters when read as gated), tied embeddings where the type's config class ties them by
    default (Cohere: +2.1B untied); the totals within 1 % of the published ones."""
    m = _spec(cfg)
    assert m.gated_mlp is gated
    assert m.params == pytest.approx(total, rel=0.01)


@pytest.mark.parametrize("cfg, message", [
    ({"model_type": "chatglm", "num_layers": 28, "hidden_size": 4096,
      "num_attention_heads": 32, "multi_query_group_num": 2, "ffn_hidden_size": 13696,
      "padded_vocab_size": 65024},
     r"counts its layers as 'num_layers', not 'num_hidden_layers' \(model_type chatglm\)"),
    ({"model_type": "dbrx", "n_layers": 40, "d_model": 6144, "n_heads": 48,
      "vocab_size": 100352, "ffn_config": {"moe_num_experts": 16}},
     r"counts its layers as 'n_layers'.*\(model_type dbrx\)"),
    ({"model_type": "falcon", "num_hidden_layers": 32, "hidden_size": 4544,
      "num_attention_heads": 71, "multi_query": True, "vocab_size": 65024},
     r"gives no MLP width \('intermediate_size'\) \(model_type falcon\)"),
    ({"model_type": "phi3small", "num_hidden_layers": 32, "hidden_size": 4096,
      "num_attention_heads": 32, "num_key_value_heads": 8, "ff_intermediate_size": 14336,
      "vocab_size": 100352},
     r"gives no MLP width \('intermediate_size'\); it names 'ff_intermediate_size' instead"),
    ({"model_type": "falcon_mamba", "num_hidden_layers": 64, "hidden_size": 4096,
      "state_size": 16, "vocab_size": 65024},
     r"purely recurrent model \(model_type 'falcon_mamba'"),
    ({"model_type": "hunyuan", "num_hidden_layers": 64, "hidden_size": 6400,
      "num_attention_heads": 80, "num_key_value_heads": 8, "intermediate_size": 18304,
      "vocab_size": 128512, "use_cla": True, "cla_share_factor": 2},
     r"shares each KV cache across layers \('use_cla'.*cla_share_factor 2\)"),
    ({"model_type": "arctic", "num_hidden_layers": 35, "hidden_size": 7168,
      "num_attention_heads": 56, "num_key_value_heads": 8, "intermediate_size": 4864,
      "num_local_experts": 128, "num_experts_per_tok": 2, "vocab_size": 32000,
      "parallel_attn_mlp_res": True},
     r"dense residual MLP beside every MoE layer \('parallel_attn_mlp_res'"),
])
def test_a_dialect_wrpsim_does_not_read_is_refused_by_name(cfg, message):
    """Each used to end in "lacks 'num_hidden_layers'", "field 'intermediate' must be > 0" or
    "lacks 'num_attention_heads'" — or to load: Hunyuan with twice its KV, Arctic without its
    residual MLP (a warning only)."""
    with pytest.raises(ConfigError, match=message):
        read_hf_config(cfg)


EXAONE_4_32B = {  # LGAI-EXAONE/EXAONE-4.0-32B: 32.0B, 3 of every 4 layers a 4k window
    "model_type": "exaone4", "hidden_size": 5120, "intermediate_size": 27392,
    "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
    "num_hidden_layers": 64, "vocab_size": 102400, "sliding_window": 4096,
    "sliding_window_pattern": "LLLG", "tie_word_embeddings": False,
    "max_position_embeddings": 131072}


def test_a_sliding_window_pattern_of_letters_places_the_windows():
    """EXAONE 4 writes its pattern as letters (L local, G global): 48 of its 64 layers slide
    (it was refused: "must be an integer >= 1, got 'LLLG'"); another letter is refused."""
    m = _spec(EXAONE_4_32B)
    assert (m.sliding_layers, m.sliding_window) == (48, 4096)
    assert m.params == pytest.approx(32.0e9, rel=0.01)
    with pytest.raises(ConfigError, match=r"a string of L \(sliding\) and G \(global\) "
                                          r"layers, got 'LLXG'"):
        read_hf_config({**EXAONE_4_32B, "sliding_window_pattern": "LLXG"})


def test_keys_that_change_no_size_are_not_reported_as_unread():
    """Attention-kernel choices, biases, softmax precision and RoPE order buried the real
    'keys wrpsim does not read' warnings (Arctic's) under noise."""
    cfg = {**LLAMA_3_2_3B, "_attn_implementation": "sdpa", "use_qkv_bias": True,
           "scale_attn_weights": True, "attention_softmax_in_fp32": True,
           "rope_interleaved": False, "attention_out_bias": False, "dim_model_base": 256}
    assert read_hf_config(cfg)[1] == []
