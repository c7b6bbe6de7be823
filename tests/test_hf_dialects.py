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
from wrpsim.pool.hfconfig import read_hf_config
from wrpsim.pool.modelspec import ModelSpec

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


LLAMA_3B = {  # meta-llama/Llama-3.2-3B: 3.21B, embeddings tied
    "model_type": "llama", "hidden_size": 3072, "intermediate_size": 8192,
    "num_attention_heads": 24, "num_key_value_heads": 8, "num_hidden_layers": 28,
    "vocab_size": 128256, "tie_word_embeddings": True, "max_position_embeddings": 131072,
    "head_dim": 128}
V2_LITE = {  # deepseek-ai/DeepSeek-V2-Lite: 15.7B, 64 experts of 1408, top 6, MLA
    "model_type": "deepseek_v2", "hidden_size": 2048, "intermediate_size": 10944,
    "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16,
    "num_key_value_heads": 16, "n_routed_experts": 64, "num_experts_per_tok": 6,
    "n_shared_experts": 2, "first_k_dense_replace": 1, "kv_lora_rank": 512,
    "q_lora_rank": None, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
    "vocab_size": 102400, "max_position_embeddings": 163840, "tie_word_embeddings": False}


def _without(cfg: dict, key: str) -> dict:
    return {k: v for k, v in cfg.items() if k != key}


@pytest.mark.parametrize("cfg, message", [
    # a nonsense count gave negative parameters (and negative MoE seconds) and ran
    ({**V2_LITE, "first_k_dense_replace": 100}, r"'first_k_dense_replace' \(100\) must be below "
     r"num_hidden_layers \(27\)"),
    ({**V2_LITE, "first_k_dense_replace": 27}, r"must be below num_hidden_layers \(27\)"),
    # zeros that turned a feature off or fell back to another width without a word
    ({**V2_LITE, "kv_lora_rank": 0}, r"'kv_lora_rank' must be an integer >= 1, got 0"),
    ({**V2_LITE, "moe_intermediate_size": 0},
     r"'moe_intermediate_size' must be an integer >= 1, got 0"),
    ({**LLAMA_3B, "intermediate_size": 0}, r"'intermediate_size' must be an integer >= 1 \(the "
     r"MLP width\), got 0"),
    ({**LLAMA_3B, "max_position_embeddings": 0},
     r"'max_position_embeddings' must be an integer >= 1, got 0"),
    # misspelt keys: read as absent, the model came out with full multi-head KV (3 x)
    ({**_without(LLAMA_3B, "num_key_value_heads"), "num_key_values_heads": 8},
     r"key 'num_key_values_heads' is not one wrpsim reads: did you mean "
     r"'num_key_value_heads'\?"),
    ({**_without(LLAMA_3B, "num_hidden_layers"), "num_hiden_layers": 28},
     r"key 'num_hiden_layers' is not one wrpsim reads: did you mean 'num_hidden_layers'\?"),
    ({**LLAMA_3B, "num_key_value_heads": 7}, r"'num_key_value_heads' \(7\) must divide "
     r"num_attention_heads \(24\); valid: 1, 2, 3, 4, 6, 8, 12, 24"),
    # experts placed in no layer
    ({**V2_LITE, "model_type": "qwen2_moe", "decoder_sparse_step": 100},
     r"gives \d+ experts but places them in none of its 27 layers"),
    # found by fuzzing: a count too large for a C integer (a traceback), a number for a name
    ({**LLAMA_3B, "num_hidden_layers": 10**21},
     r"'num_hidden_layers' must be an integer >= 1 and at most 2\^40, got 10{21}"),
    ({**LLAMA_3B, "model_type": -0.5}, r"'model_type' must be a name \(a string\), got -0\.5"),
    # not a decoder-only LLM
    ({"model_type": "bert", "hidden_size": 768, "intermediate_size": 3072,
      "num_attention_heads": 12, "num_hidden_layers": 12, "vocab_size": 30522},
     r"model_type 'bert', not a decoder-only language model"),
])
def test_config_json_nonsense_is_refused_by_key(cfg, message):
    """Values no model has, misspelt core keys and encoders are refused by key (a review of
    2026-12-06 found each loaded, some with negative sizes that a fleet then ran on)."""
    with pytest.raises(ConfigError, match=message):
        read_hf_config(cfg)


def test_a_key_the_type_defaults_is_taken_from_its_config_class():
    """Keys a config.json leaves out take their config class's defaults: Mixtral's 8 experts
    (top 2) and Qwen2-MoE's 60 (a Mixtral without `num_local_experts` loaded dense), Llama's
    2,048 positions (an absent max_position_embeddings enforced no context limit)."""
    mixtral = {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
               "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
               "vocab_size": 32000}
    f, _ = read_hf_config(mixtral)
    assert (f["experts"], f["active_experts"], f["max_context"]) == (8, 2, 131072)
    assert round(ModelSpec(name="m", **f).params / 1e9, 1) == 46.7  # Mixtral-8x7B
    qwen = {"model_type": "qwen2_moe", "hidden_size": 2048, "intermediate_size": 5632,
            "num_attention_heads": 16, "num_key_value_heads": 16, "num_hidden_layers": 24,
            "vocab_size": 151936}
    f, _ = read_hf_config(qwen)
    assert (f["experts"], f["active_experts"], f["intermediate"]) == (60, 4, 1408)
    assert round(ModelSpec(name="m", **f).params / 1e9, 1) == 14.3  # Qwen1.5-MoE-A2.7B
    assert read_hf_config(_without(LLAMA_3B, "max_position_embeddings"))[0][
        "max_context"] == 2048


def test_gemma2s_repeated_window_key_is_read_not_reported():
    """Gemma 2's config.json gives its window twice (`sliding_window`, `sliding_window_size`):
    the second was reported as a shape key wrpsim does not model."""
    g = {"model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
         "num_attention_heads": 16, "num_key_value_heads": 8, "num_hidden_layers": 42,
         "head_dim": 256, "vocab_size": 256000, "sliding_window": 4096,
         "sliding_window_size": 4096, "max_position_embeddings": 8192}
    f, unread = read_hf_config(g)
    assert unread == [] and f["sliding_window"] == 4096 and f["sliding_layers"] == 21
    with pytest.raises(ConfigError, match=r"'sliding_window' \(4096\) and 'sliding_window_size' "
                                          r"\(2048\) disagree"):
        read_hf_config({**g, "sliding_window_size": 2048})


QWEN25_3B = {  # Qwen/Qwen2.5-3B-Instruct: 3.09B, tied, 32,768 positions, window off
    "model_type": "qwen2", "hidden_size": 2048, "intermediate_size": 11008,
    "num_attention_heads": 16, "num_key_value_heads": 2, "num_hidden_layers": 36,
    "vocab_size": 151936, "tie_word_embeddings": True, "max_position_embeddings": 32768,
    "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 36}
YARN4 = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}


@pytest.mark.parametrize("cfg, context", [
    (QWEN25_3B, 32768),
    # Qwen's model cards: add YaRN (factor 4) for 131,072 tokens; vLLM serves that long
    ({**QWEN25_3B, "rope_scaling": YARN4}, 131072),
    ({**QWEN25_3B, "rope_scaling": {**YARN4, "type": None, "rope_type": "yarn"}}, 131072),
    # YaRN scales its original length, not max_position_embeddings (gpt-oss: 4,096 x 32)
    ({**QWEN25_3B, "max_position_embeddings": 131072,
      "rope_scaling": {"rope_type": "yarn", "factor": 32.0,
                       "original_max_position_embeddings": 4096}}, 131072),
    # linear / dynamic scale max_position_embeddings; "default" has no factor
    ({**QWEN25_3B, "rope_scaling": {"type": "linear", "factor": 2}}, 65536),
    ({**QWEN25_3B, "rope_scaling": {"rope_type": "dynamic", "factor": 1.5}}, 49152),
    ({**QWEN25_3B, "rope_scaling": {"rope_type": "default"}}, 32768),
    # Llama 3.1's and LongRoPE's max_position_embeddings is the scaled length already
    ({**LLAMA_3B, "rope_scaling": {"rope_type": "llama3", "factor": 32.0,
                                   "original_max_position_embeddings": 8192}}, 131072),
    ({**LLAMA_3B, "rope_scaling": {"type": "longrope", "long_factor": [1.0],
                                   "short_factor": [1.0]}}, 131072),
    # transformers 5: one rope_parameters per layer type
    ({**QWEN25_3B, "rope_parameters": {"full_attention": {"rope_type": "default"},
                                       "sliding_attention": YARN4}}, 131072),
    # a null factor is 1 (vLLM warns and takes 1.0); a null rope_type leaves `type` to say it
    ({**QWEN25_3B, "rope_scaling": {"rope_type": "linear", "factor": None}}, 32768),
    ({**QWEN25_3B, "rope_scaling": {**YARN4, "rope_type": None,
                                    "original_max_position_embeddings": 8192}}, 32768),
    # YaRN without max_position_embeddings: its own original length, scaled
    ({**_without(QWEN25_3B, "max_position_embeddings"), "model_type": "x-unknown",
      "rope_scaling": YARN4}, 131072),
])
def test_the_context_is_vllms_derived_length_with_rope_scaling(cfg, context):
    """The longest prompt is the length vLLM derives from config.json (`_get_and_verify_max_len`):
    a YaRN-scaled Qwen2.5 was refused beyond its 32,768 positions (review of 2026-12-07)."""
    assert read_hf_config(cfg)[0]["max_context"] == context


def test_a_longrope_model_is_served_at_its_original_length_unless_told_otherwise(tmp_path,
                                                                                monkeypatch):
    """vLLM serves a LongRoPE model (Phi-3 / 3.5 / 4-mini) at its top-level
    `original_max_position_embeddings` when `--max-model-len` is not given, and accepts up to
    max_position_embeddings (review of 2026-12-07): a pool without max_context drops a longer
    prompt; one with max_context up to 131,072 serves it."""
    import json

    from wrpsim.pool import catalog
    from wrpsim.pool.fleet import parse_pool

    phi = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
           "num_attention_heads": 24, "num_key_value_heads": 8, "num_hidden_layers": 32,
           "vocab_size": 200064, "tie_word_embeddings": True,
           "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
           "rope_scaling": {"type": "longrope", "long_factor": [1.0], "short_factor": [1.0]}}
    f, _ = read_hf_config(phi)
    assert (f["max_context"], f["default_context"]) == (131072, 4096)
    (tmp_path / "models.yaml").write_text(f"phi-4-mini:\n  hf_config: {json.dumps(phi)}\n")
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    catalog.models.cache_clear()  # (a worker may have read the shipped catalog already)
    try:
        pool = {"gpu": "h100-80gb", "model": "phi-4-mini", "tp": 1, "count": 1}
        assert parse_pool("p", pool).max_context == 4096
        assert parse_pool("p", {**pool, "max_context": 131072}).max_context == 131072
        with pytest.raises(ConfigError, match=r"max_context \(131073\) exceeds phi-4-mini's "
                                              r"maximum"):
            parse_pool("p", {**pool, "max_context": 131073})
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.models.cache_clear()


def test_phi3s_legacy_su_scaling_is_longrope_and_an_entrys_own_context_bounds_the_default(
        tmp_path, monkeypatch):
    """vLLM renames Phi-3's legacy `su` RoPE type to longrope, so such a model is served at its
    original length too; a catalog entry that sets its own, smaller max_context keeps the
    derived default within it (it was refused, naming default_context, a field the entry never
    wrote; diff review, 2026-12-07)."""
    import json

    from wrpsim.pool import catalog

    phi = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
           "num_attention_heads": 32, "num_key_value_heads": 32, "num_hidden_layers": 32,
           "vocab_size": 32064, "max_position_embeddings": 131072,
           "original_max_position_embeddings": 4096, "rope_scaling": {"type": "su"}}
    f, _ = read_hf_config(phi)
    assert (f["max_context"], f["default_context"]) == (131072, 4096)
    t5 = {k: v for k, v in phi.items() if k not in ("rope_scaling",
                                                    "original_max_position_embeddings")}
    t5["rope_parameters"] = {"rope_type": "longrope", "original_max_position_embeddings": 4096}
    assert read_hf_config(t5)[0]["default_context"] == 4096  # (transformers 5 keeps it there)
    (tmp_path / "models.yaml").write_text(
        f"phi-small:\n  hf_config: {json.dumps(phi)}\n  max_context: 2048\n")
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    catalog.models.cache_clear()
    try:
        m = catalog.get_model("phi-small")
        assert (m.max_context, m.default_context) == (2048, 2048)
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.models.cache_clear()


def test_gemma3s_length_is_taken_as_already_scaled():
    g = {"model_type": "gemma3_text", "hidden_size": 3840, "intermediate_size": 15360,
         "num_attention_heads": 16, "num_key_value_heads": 8, "num_hidden_layers": 48,
         "head_dim": 256, "vocab_size": 262208, "max_position_embeddings": 131072,
         "rope_scaling": {"rope_type": "linear", "factor": 8.0}}
    assert read_hf_config(g)[0]["max_context"] == 131072


@pytest.mark.parametrize("rope, message", [
    ({"type": "yarn", "factor": "four"}, r"'rope_scaling': 'factor' must be a finite number > 0"),
    ({"type": "linear", "factor": 0}, r"'factor' must be a finite number > 0, got 0$"),
    # (JSON's Infinity, YAML's .inf: a traceback in int())
    ({"type": "linear", "factor": float("inf")}, r"'factor' must be a finite number > 0, got inf"),
    ({"type": "yarn", "rope_type": "linear", "factor": 2},
     r"'rope_scaling': 'rope_type' \('linear'\) and 'type' \('yarn'\) disagree"),
    ({**YARN4, "original_max_position_embeddings": 0.5},
     r"'original_max_position_embeddings' must be an integer >= 1, got 0\.5"),
    ("yarn", r"'rope_scaling' must be a mapping"),
    ({"rope_type": "longrope", "original_max_position_embeddings": -5},
     r"'rope_scaling': 'original_max_position_embeddings' must be an integer >= 1, got -5"),
    ({"rope_type": "longrope", "original_max_position_embeddings": True},
     r"'original_max_position_embeddings' must be an integer >= 1, got True"),
])
def test_a_nonsense_rope_scaling_is_refused_by_key(rope, message):
    with pytest.raises(ConfigError, match=message):
        read_hf_config({**QWEN25_3B, "rope_scaling": rope})


def test_a_window_on_some_qwen_layers_only_is_refused_as_vllm_refuses_it():
    """Qwen's config classes slide the layers from `max_window_layers` on (transformers'
    `layer_types`, which vLLM's models read): 0 windows every layer, the layer count none;
    vLLM's Qwen2 model refuses a window on some layers only. wrpsim windowed every layer
    whatever `max_window_layers` said (reviews of 2026-12-07)."""
    on = {**QWEN25_3B, "use_sliding_window": True, "sliding_window": 4096}
    with pytest.raises(ConfigError, match=r"'max_window_layers' \(28\) put a sliding window on "
                                          r"the layers from 28 on, some of the 36 layers only, "
                                          r"which vLLM refuses"):
        read_hf_config({**on, "max_window_layers": 28})
    f, _ = read_hf_config({**on, "max_window_layers": 0})
    assert (f["sliding_window"], f["sliding_layers"]) == (4096, 36)
    assert "sliding_window" not in read_hf_config(on)[0]  # (max_window_layers 36: none)
    assert "sliding_window" not in read_hf_config(QWEN25_3B)[0]
    # another type's max_window_layers is not Qwen's rule
    f, _ = read_hf_config({**on, "model_type": "mistral", "max_window_layers": 28})
    assert f["sliding_layers"] == 36


OLMOE_1B_7B = {  # allenai/OLMoE-1B-7B-0924: 6.92B, 64 experts of 1,024, top 8
    "model_type": "olmoe", "hidden_size": 2048, "intermediate_size": 1024,
    "max_position_embeddings": 4096, "num_attention_heads": 16, "num_experts": 64,
    "num_experts_per_tok": 8, "num_hidden_layers": 16, "num_key_value_heads": 16,
    "tie_word_embeddings": False, "vocab_size": 50304}
GRANITE_31_3B_MOE = {  # ibm-granite/granite-3.1-3b-a800m: 3.30B, 40 experts of 512, top 8
    "model_type": "granitemoe", "hidden_size": 1536, "intermediate_size": 512,
    "max_position_embeddings": 131072, "num_attention_heads": 24, "num_experts_per_tok": 8,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 40,
    "tie_word_embeddings": True, "vocab_size": 49155}
QWEN2_57B_A14B = {  # Qwen/Qwen2-57B-A14B: 57.41B, 64 experts of 2,560, top 8, shared 20,480
    "model_type": "qwen2_moe", "decoder_sparse_step": 1, "hidden_size": 3584,
    "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28,
    "moe_intermediate_size": 2560, "num_attention_heads": 28, "num_experts": 64,
    "num_experts_per_tok": 8, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "shared_expert_intermediate_size": 20480, "sliding_window": 131072,
    "tie_word_embeddings": False, "use_sliding_window": False, "vocab_size": 151936}


@pytest.mark.parametrize("cfg, total, kv_bytes", [
    (OLMOE_1B_7B, 6.919e9, 16 * 16 * 128 * 2 * 2),
    (GRANITE_31_3B_MOE, 3.299e9, 32 * 8 * 64 * 2 * 2),
    (QWEN2_57B_A14B, 57.409e9, 28 * 4 * 128 * 2 * 2),
], ids=["olmoe", "granite-3.1-moe", "qwen2-57b-a14b"])
def test_moe_configs_nobody_fitted_on_load_their_published_size(cfg, total, kv_bytes):
    """Three MoE dialects outside the catalog against their published parameter counts
    (safetensors totals) and the KV bytes a token takes in BF16 (layers x KV heads x head dim
    x K and V x 2 B), from a review of 2026-12-07 that checked 16 such models by hand."""
    m = _spec(cfg)
    assert m.params == pytest.approx(total, rel=0.001)
    assert m.layers * m.kv_heads * m.head_dim * 2 * 2 == kv_bytes
    assert m.kv_bytes_per_token == kv_bytes
