"""A Hugging Face `config.json` read as wrpsim's model fields (`ModelSpec`'s).

A catalog entry (pools/catalog/models.yaml) is either wrpsim's own field names or a
`config.json` given inline (`hf_config: {...}`) or by path (`config_json: file`); this module
converts the latter (`from_hf_config`, `read_hf_config`: the fields and the keys it did not
read, `unread_keys`), so a new model needs nothing but its config.json numbers. It reads the
dialects of the architectures `wrpsim.pool.modelspec` covers — layer counts from hybrid
patterns and per-layer type lists (Nemotron-H, Jamba, Granite 4, Qwen3-Next / 3.5, Falcon-H1,
Gemma), MoE layer placement, MLA and DeepSeek Sparse Attention, sliding windows, Mamba /
Gated DeltaNet shapes, vision encoders — and refuses, with one line naming the key, a value
it cannot read or a key that looks like a misspelt shape key.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError, near_miss


def _pattern_counts(pattern, layers: int, key: str = "hybrid_override_pattern"
                    ) -> tuple[int, int, int]:
    """(attention, mamba, mlp) layer counts of a Nemotron-H `hybrid_override_pattern`
    ('*' attention, 'M' Mamba-2, '-' MLP, 'E' MoE), one character per layer of
    `num_hidden_layers`; `ConfigError` naming the key (`key`: the config.json key the pattern
    was read from) otherwise, and for a stack without an attention layer."""
    if not isinstance(pattern, str) or len(pattern) != layers:
        got = (f"{len(pattern)} layers" if key == "layers_block_type" and isinstance(pattern, str)
               else repr(pattern))
        raise ConfigError(f"config.json key {key!r} must have one "
                          f"{'entry' if key == 'layers_block_type' else 'character'} "
                          f"per layer (num_hidden_layers {layers}), got {got}")
    bad = sorted(set(pattern) - set("*M-E"))
    if bad:
        raise ConfigError(f"config.json key 'hybrid_override_pattern': unknown layer kind(s) "
                          f"{', '.join(map(repr, bad))}; valid: '*' attention, 'M' Mamba-2, "
                          f"'-' MLP, 'E' MoE")
    if "*" not in pattern:
        what = "'attention'" if key == "layers_block_type" else "'*' attention"
        raise ConfigError(f"config.json describes a purely recurrent model (no {what} layer "
                          f"in {key}); wrpsim models stacks with at least one attention layer")
    return pattern.count("*"), pattern.count("M"), pattern.count("-") + pattern.count("E")


def _layer_kinds(c: dict, key: str, layers: int | None, valid, noun: str = "kind") -> list | None:
    """config.json key `key`: one of `valid` per layer (None when absent); `ConfigError`
    naming the key for a list of the wrong length (of any length but empty when `layers` is
    None: a list that itself counts the layers) or another kind (`noun`: the message's word for
    an entry)."""
    kinds = c.get(key)
    if kinds is None:
        return None
    if layers is None:
        if not isinstance(kinds, list) or not kinds:
            raise ConfigError(f"config.json key {key!r} must be a list of {noun}s "
                              f"({', '.join(valid)}), got {kinds!r}")
    elif not isinstance(kinds, list) or len(kinds) != layers:
        got = f"{len(kinds)} entries" if isinstance(kinds, list) else repr(kinds)
        raise ConfigError(f"config.json key {key!r} must be a list of num_hidden_layers "
                          f"({layers}) {noun}s ({', '.join(valid)}), got {got}")
    bad = sorted({str(k) for k in kinds} - set(valid))
    if bad:
        raise ConfigError(f"config.json key {key!r}: unknown {noun} {bad[0]!r}; valid: "
                          f"{', '.join(valid)}")
    return kinds


def _indexer_layers(c: dict, layers: int) -> int:
    """Layers with a DSA indexer of their own where config.json's `indexer_types` ("full" /
    "shared", one per layer: GLM-5's IndexShare, whose shared layers reuse the previous
    layer's top-k and hold no indexer) names fewer than all; 0 otherwise (every layer).
    `ConfigError` naming the key for a list of the wrong length or another kind."""
    kinds = _layer_kinds(c, "indexer_types", layers, ("full", "shared"))
    if kinds is None:  # (an `index_topk_freq` alone stays unread: named by `unread_keys`)
        return 0
    # (the rule the list spells out layer by layer)
    c.get("index_topk_freq"), c.get("index_skip_topk_offset")
    full = kinds.count("full")
    if not full:
        raise ConfigError("config.json key 'indexer_types' names no 'full' layer: the shared "
                          "layers would have no top-k to reuse")
    return full if full < layers else 0


#: Nemotron-H `layers_block_type` kinds -> their `hybrid_override_pattern` letters
#: (transformers NemotronHConfig, which derives the one from the other)
_BLOCK_LETTERS = {"mamba": "M", "attention": "*", "mlp": "-", "moe": "E"}


def _nemotron_pattern(c: dict):
    """A Nemotron-H stack's layer pattern (`_pattern_counts`): `hybrid_override_pattern`, or
    the `layers_block_type` list that newer config.json files give instead (Nemotron 3 Ultra:
    one of mamba / attention / mlp / moe per layer); None for other models. `ConfigError`
    naming `layers_block_type` for a kind outside those four, or for a list that disagrees
    with a pattern given beside it."""
    pattern = c.get("hybrid_override_pattern")
    blocks = _layer_kinds(c, "layers_block_type", None, tuple(_BLOCK_LETTERS), "layer kind")
    if blocks is None:
        return pattern
    derived = "".join(_BLOCK_LETTERS[b] for b in blocks)
    if pattern is not None and pattern != derived:
        raise ConfigError("config.json keys 'layers_block_type' and 'hybrid_override_pattern' "
                          "describe different layer stacks; give one of them")
    return derived


#: Hugging Face config-class defaults, per `model_type`, of the keys `from_hf_config` reads, for
#: a config.json that leaves them out (transformers fills them from the class's `__init__`):
#: tie_word_embeddings False in LlamaConfig, MistralConfig, MixtralConfig, Qwen2Config,
#: Qwen2MoeConfig, Qwen3Config, Qwen3MoeConfig, Phi3Config, DeepseekV3Config, GptOssConfig,
#: NemotronHConfig; True in GemmaConfig, Gemma2Config, Gemma3TextConfig (and PretrainedConfig,
#: which is not taken for a model_type not listed: it keeps False). Qwen2/Qwen3(-MoE)Config:
#: use_sliding_window False. Gemma2: every other layer sliding, the first one sliding
#: (modeling_gemma2 `is_sliding = not bool(layer_idx % 2)`; newer Gemma2Config `layer_types`
#: "sliding_attention" if (i + 1) % 2) = pattern 2; Gemma3TextConfig sliding_window_pattern=6
#: (5 local : 1 global). Llama4TextConfig: 16 experts, top-1, MoE in every layer
#: (interleave_moe_layer_step 1), dense width 16384, chunks of 8192 on all but every 4th layer
#: (no_rope_layer_interval 4).
#: Sources: transformers src/transformers/models/<type>/configuration_*.py.
_UNTIED = {"tie_word_embeddings": False}
_QWEN = {"tie_word_embeddings": False, "use_sliding_window": False}
_LLAMA4 = {"tie_word_embeddings": False, "num_local_experts": 16, "num_experts_per_tok": 1,
           "interleave_moe_layer_step": 1, "intermediate_size_mlp": 16384,
           "attention_chunk_size": 8192, "no_rope_layer_interval": 4}
HF_DEFAULTS: dict[str, dict] = {
    **{t: _UNTIED for t in ("nemotron_h",)},
    # max_position_embeddings and the MoE counts of the config classes that have defaults for
    # them (LlamaConfig 2048, MistralConfig / MixtralConfig 4096 x 32, Phi3Config 4096,
    # DeepseekV3Config 4096, GptOssConfig 131072; MixtralConfig 8 experts, top 2)
    "llama": {**_UNTIED, "max_position_embeddings": 2048},
    "mistral": {**_UNTIED, "max_position_embeddings": 131072},
    "mixtral": {**_UNTIED, "max_position_embeddings": 131072, "num_local_experts": 8,
                "num_experts_per_tok": 2},
    "phi3": {**_UNTIED, "max_position_embeddings": 4096},
    "deepseek_v3": {**_UNTIED, "max_position_embeddings": 4096},
    "gpt_oss": {**_UNTIED, "max_position_embeddings": 131072},
    # Qwen2Config / Qwen3Config / their MoE configs: 32768 positions; Qwen2MoeConfig 60
    # experts of 1408, top 4, a shared expert of 5632; Qwen3MoeConfig 128 of 768, top 8
    **{t: {**_QWEN, "max_position_embeddings": 32768} for t in ("qwen2", "qwen3")},
    "qwen2_moe": {**_QWEN, "max_position_embeddings": 32768, "num_experts": 60,
                  "num_experts_per_tok": 4, "moe_intermediate_size": 1408,
                  "shared_expert_intermediate_size": 5632, "decoder_sparse_step": 1},
    "qwen3_moe": {**_QWEN, "max_position_embeddings": 32768, "num_experts": 128,
                  "num_experts_per_tok": 8, "moe_intermediate_size": 768,
                  "decoder_sparse_step": 1},
    **{t: _LLAMA4 for t in ("llama4", "llama4_text")},
    # GemmaConfig / Gemma2Config 8192 positions, Gemma3TextConfig 131072
    "gemma": {"tie_word_embeddings": True, "max_position_embeddings": 8192},
    "gemma2": {"tie_word_embeddings": True, "sliding_window_pattern": 2,
               "max_position_embeddings": 8192},
    "gemma3_text": {"tie_word_embeddings": True, "sliding_window_pattern": 6,
                    "max_position_embeddings": 131072},
    "gemma3": {"tie_word_embeddings": True, "sliding_window_pattern": 6},
    # Qwen3-Next's attention is always gated (its config.json has no key for it)
    "qwen3_next": {"tie_word_embeddings": False, "attn_output_gate": True},
    # CohereConfig and Starcoder2Config keep PretrainedConfig's tied default (Command-R's and
    # StarCoder2-7B's config.json files do not say)
    **{t: {"tie_word_embeddings": True} for t in ("cohere", "cohere2", "starcoder2")},
}
#: model types whose MLP is two matrices (up, down: no gate), whatever their activation —
#: transformers' GPTNeoXMLP, GPTBigCodeMLP, Starcoder2MLP (c_fc, c_proj), PhiMLP (fc1, fc2),
#: GPTJMLP, OPT's fc1 / fc2, MptMLP, PersimmonMLP, NemotronMLP (relu2), GPT2MLP, CodeGenMLP,
#: BloomMLP; every other type is read as gated (gate, up, down), as Llama's
NON_GATED_MLP = frozenset({"bloom", "gpt_neox", "gpt_bigcode", "starcoder2", "phi", "gptj",
                           "opt", "mpt", "persimmon", "nemotron", "gpt2", "codegen"})
#: config.json layer-count keys of dialects wrpsim does not read (ChatGLM / EXAONE 3: num_layers
#: with multi_query_group_num or their own MLP names; DBRX: n_layers with nested ffn_config /
#: attn_config; GPT-2 style: n_layer, n_embd, n_inner), refused by name
_OTHER_LAYER_KEYS = ("num_layers", "n_layers", "n_layer")


#: model types that are not decoder-only language models (encoders, encoder-decoders, vision
#: and speech towers): refused, for wrpsim would time them as a decoder's prompt and decode
ENCODER_TYPES = frozenset({
    "bert", "roberta", "xlm-roberta", "xlm_roberta", "camembert", "distilbert", "albert",
    "electra", "deberta", "deberta-v2", "mpnet", "modernbert", "nomic_bert", "t5", "mt5",
    "umt5", "bart", "mbart", "pegasus", "marian", "whisper", "clip", "siglip", "vit",
    "encoder-decoder", "longformer", "funnel", "ernie_m"})
#: the config.json keys whose absence changes a model most (heads, widths, depth): a key the
#: file gives that nearly spells one of them, absent, is a misspelling (`misspelt`)
CORE_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads",
             "num_key_value_heads", "head_dim", "intermediate_size", "moe_intermediate_size",
             "vocab_size", "max_position_embeddings", "num_experts", "num_local_experts",
             "n_routed_experts", "num_experts_per_tok", "kv_lora_rank", "sliding_window",
             "tie_word_embeddings", "first_k_dense_replace")


def divisors(n: int) -> str:
    """'1, 2, 3, 4, 6, 8, 12, 24': the KV-head counts `n` attention heads can share."""
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def misspelt(merged: dict, seen) -> tuple[str, str] | None:
    """(key the file gives, the `CORE_KEYS` key it nearly spells) for the first config.json key
    that wrpsim did not read (not in `seen`) within two typed characters of a core key the
    file lacks (`num_key_values_heads`: read without it, the model would have as many KV heads
    as attention heads), else None. (Keys it reads, such as MLA's `v_head_dim` beside
    `head_dim`, and other dialects' keys, such as Phi-3-small's `ff_intermediate_size`, are
    not misspellings.)"""
    absent = [k for k in CORE_KEYS if k not in merged]
    for k in sorted(x for x in merged if isinstance(x, str) and x not in seen):
        near = [a for a in absent if near_miss(k, a)]
        if near:
            return k, near[0]
    return None


def _slip_error(merged: dict, seen) -> ConfigError | None:
    """The error for a misspelt core key (`misspelt`), or None."""
    slip = misspelt(merged, seen)
    if slip is None:
        return None
    return ConfigError(f"config.json key {slip[0]!r} is not one wrpsim reads: did you mean "
                       f"{slip[1]!r}? (without it the model would be read with that key's "
                       f"default, or not at all)")


#: config.json `mamba_ssm_cache_dtype` -> bytes per element
_SSM_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


#: largest integer a config.json count may take (layers, widths, vocabulary, context)
MAX_HF_INT = 1 << 40


def _hf_int(c: dict, key: str, lo: int = 0) -> int | None:
    """config.json key `key` as an integer >= `lo`, None when absent or null; `ConfigError`
    naming the key otherwise (32.9 is not truncated, "thirty" not guessed). A list of one
    value per layer (Hunyuan's `moe_topk`, `moe_intermediate_size`) is that value when every
    layer has it; layers that differ are refused, for wrpsim's layers are uniform."""
    v = c.get(key)
    if v is None:
        return None
    if isinstance(v, list) and v:
        if any(x != v[0] for x in v):
            raise ConfigError(f"config.json key {key!r} gives its layers different values "
                              f"({', '.join(map(str, sorted(set(map(str, v)))))}), which wrpsim's "
                              f"uniform layers cannot hold")
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"config.json key {key!r} must be an integer >= {lo}, got {v!r}")
    if v > MAX_HF_INT:  # (a count no model has; a range over it overflows)
        raise ConfigError(f"config.json key {key!r} must be an integer >= {lo} and at most "
                          f"2^40, got {v!r}")
    return v


def _hf_req(c: dict, key: str) -> int:
    """A required config.json integer >= 1 (`KeyError` naming it when absent)."""
    v = _hf_int(c, key, 1)
    if v is None:
        raise KeyError(key)
    return v


#: RoPE scalings whose factor vLLM does not multiply into the context: the configs of models
#: that use them already give the scaled length in max_position_embeddings
ROPE_UNSCALED = ("su", "longrope", "llama3")


def _context(c: dict, mtype: str) -> tuple[int, int]:
    """(the longest sequence vLLM accepts for the model — `--max-model-len` at most —, the one
    it serves at when not given one: 0 where it is the first), both 0 when the config gives
    no length, as vLLM's `_get_and_verify_max_len` derives them: `max_position_embeddings`,
    times the RoPE scaling's `factor` (`rope_parameters`, one per layer type in transformers 5,
    else `rope_scaling`; a null factor is 1, as vLLM takes it) for every type but longrope /
    su / llama3, whose configs give the scaled length already — for YaRN times its
    `original_max_position_embeddings` instead —, and not for Gemma 3, whose length is the
    scaled one; a LongRoPE model (Phi-3's legacy `su` too) is served at its
    `original_max_position_embeddings` — top-level, else in its scaling (transformers 5) —
    unless told otherwise. `ConfigError` naming the key for a scaling that is not a mapping, a
    `type` and `rope_type` that disagree, or a factor that is not a finite number > 0."""
    base = _hf_int(c, "max_position_embeddings", 1) or 0
    key = "rope_parameters" if c.get("rope_parameters") is not None else "rope_scaling"
    rope = c.get(key)
    if rope is None or "gemma3" in mtype:
        return base, 0
    if not isinstance(rope, dict):
        raise ConfigError(f"config.json key {key!r} must be a mapping (rope_type, factor, ...), "
                          f"got {rope!r}")
    flat = "rope_type" in rope or "type" in rope or not rope or not all(
        isinstance(v, dict) for v in rope.values())
    factor, longrope, lr_orig = 1.0, False, None
    for rp in [rope] if flat else list(rope.values()):
        a, b = rp.get("rope_type"), rp.get("type")
        if a is not None and b is not None and a != b:
            raise ConfigError(f"config.json key {key!r}: 'rope_type' ({a!r}) and 'type' "
                              f"({b!r}) disagree")
        rtype = str(a or b or "default")
        longrope = longrope or rtype in ("longrope", "su")  # (vLLM renames Phi-3's su)
        if rtype in ROPE_UNSCALED:
            if rtype != "llama3":  # (transformers 5 keeps LongRoPE's original length here)
                lr_orig = _original_length(rp, key) or lr_orig
            continue
        f = rp.get("factor")
        if f is not None:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) \
                    or not f > 0:
                raise ConfigError(f"config.json key {key!r}: 'factor' must be a finite number "
                                  f"> 0, got {f!r}")
            factor = float(f)
        if rtype == "yarn":
            base = _original_length(rp, key) or base
    most = int(base * factor)
    served = (_hf_int(c, "original_max_position_embeddings", 1) or lr_orig) if longrope else None
    return most, (served if served and most and served < most else 0)


def _original_length(rp: dict, key: str) -> int | None:
    """A RoPE scaling's `original_max_position_embeddings` (None when absent); `ConfigError`
    naming `key` for anything but an integer >= 1."""
    orig = rp.get("original_max_position_embeddings")
    if orig is None:
        return None
    if isinstance(orig, bool) or not isinstance(orig, int) or orig < 1:
        raise ConfigError(f"config.json key {key!r}: 'original_max_position_embeddings' must "
                          f"be an integer >= 1, got {orig!r}")
    return orig


def _hf_bool(c: dict, key: str, default: bool) -> bool:
    v = c.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"config.json key {key!r} must be true or false, got {v!r}")
    return v


class _Seen(dict):
    """A config.json mapping that records which keys were looked up (`unread_keys`)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.seen: set = set()

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)


#: name parts of config.json keys that shape a model's compute, memory or KV cache; such a key
#: that `from_hf_config` does not read is reported by `unread_keys` (wrpsim models without it)
SHAPE_WORDS = ("expert", "moe", "layer", "window", "attention", "attn", "head", "linear",
               "chunk", "interleave", "mamba", "ssm", "conv", "lora", "sparse", "index",
               "nextn", "mtp", "kv", "state", "dense", "shared", "intermediate", "hidden",
               "group", "dim", "block", "vision", "encoder", "mm_")
#: keys with those parts that change no time, memory or KV size (regularisation, numerics,
#: initialisation, position encoding, the vision tower's own config)
IGNORED = {"attention_dropout", "attention_bias", "hidden_act", "hidden_dropout",
           "layer_norm_eps", "rms_norm_eps", "initializer_range", "mlp_bias", "head_dim_scale",
           "attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar",
           "norm_topk_prob", "output_router_logits", "router_aux_loss_coef", "use_qk_norm",
           "qk_layernorm", "attention_multiplier", "router_jitter_noise", "moe_layer_freq",
           "vision_feature_layer", "encoder_hidden_size", "mlp_hidden_act",
           "hidden_size_per_head", "residual_in_fp32", "layernorm_epsilon", "use_mamba_kernels",
           "attention_in_multiplier", "topk_group", "n_group", "scoring_func", "topk_method",
           "routed_scaling_factor", "moe_router_enable_expert_bias", "layer_norm_epsilon",
           "embedding_multiplier", "dense_act_fn", "no_rope_layers",
           "attn_scale", "attn_temperature_tuning", "floor_scale", "hidden_activation",
           "mamba_chunk_size", "chunk_size", "mamba_conv_bias", "mamba_proj_bias",
           "use_conv_bias", "mamba_hidden_act", "lm_head_bias", "attention_out_multiplier",
           "lm_head_multiplier", "mamba_norm_before_gate", "mamba_rms_norm",
           "ssm_in_multiplier", "ssm_multipliers", "ssm_out_multiplier",
           "moe_shared_expert_overlap", "moe_drop_tokens", "moe_random_routing_dropped_token",
           "group_limited_greedy", "add_classification_head",
           # Gemma 4: images' tokens attend to each other both ways (a mask, no time)
           "use_bidirectional_attention",
           # GLM-5: RoPE's element order (position encoding), the router's FP32 logits
           "rope_interleave", "indexer_rope_interleave", "moe_router_dtype",
           # kernels chosen, biases, softmax precision, position order, width scaling
           "attn_implementation", "_attn_implementation", "use_qkv_bias", "scale_attn_weights",
           "attention_softmax_in_fp32", "rope_interleaved", "attention_out_bias",
           "dim_model_base"}


def unread_keys(cfg: dict) -> list[str]:
    """config.json keys (top level and `text_config`) that shape the model (`SHAPE_WORDS`) but
    that `from_hf_config` does not read, sorted: features wrpsim does not model for this model
    (e.g. interleaved MoE layers, linear-attention layers, multi-token-prediction heads), so
    its times and memory leave them out. Empty when every such key is read or ignorable
    (`read_hf_config` gives both at once)."""
    return read_hf_config(cfg)[1]


def read_hf_config(cfg: dict) -> tuple[dict, list[str]]:
    """(`from_hf_config(cfg)`, `unread_keys(cfg)`) from one pass over the config.json."""
    merged = _merged(cfg)
    c = _Seen(_with_defaults(merged))
    try:
        fields = _fields(c)
    except KeyError:  # a required key absent: misspelt, maybe (`num_hiden_layers`)
        slip = _slip_error(merged, c.seen)
        if slip is not None:
            raise slip from None
        raise
    slip = _slip_error(merged, c.seen)
    if slip is not None:
        raise slip
    unread = sorted(k for k in merged if k not in c.seen and k not in IGNORED
                    and merged[k] is not None  # (null: the feature is not there)
                    and k != "text_config" and not k.endswith(("_token_id", "_token_index"))
                    and (any(w in k.lower() for w in SHAPE_WORDS)
                         or k == "quantization_config"))
    return fields, unread


def from_hf_config(cfg: dict) -> dict:
    """wrpsim model fields from a Hugging Face `config.json` mapping (text config of a
    multimodal model). Raises `KeyError` naming a config.json key that is required but absent,
    `ConfigError` naming a key whose value is not an integer (or true / false) as required.
    A key the file leaves out takes its Hugging Face config class's default for the file's
    `model_type` (`HF_DEFAULTS`; Gemma-2's alternating windows, Gemma's tied embeddings).

    Read: num_hidden_layers, hidden_size, num_attention_heads, num_key_value_heads, head_dim
    (default hidden / heads), intermediate_size, moe_intermediate_size (expert width),
    dense_intermediate_size (the dense layers' width, MiniMax-M3),
    num_experts / n_routed_experts / num_local_experts, num_experts_per_tok, n_shared_experts or
    shared_expert_intermediate_size, first_k_dense_replace, Llama 4's interleaved MoE layers
    (interleave_moe_layer_step / moe_layers, intermediate_size_mlp; its one shared expert) and
    chunked attention (attention_chunk_size, as a sliding window), vocab_size,
    tie_word_embeddings, max_position_embeddings, sliding_window with layer_types /
    sliding_window_pattern, MLA
    (kv_lora_rank, q_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim) and its
    DeepSeek Sparse Attention (index_topk, index_n_heads, index_head_dim; `layer_types`
    "deepseek_sparse_attention"), Nemotron-H hybrids (hybrid_override_pattern or its
    layers_block_type list, mamba_num_heads, mamba_head_dim, ssm_state_size,
    n_groups / mamba_num_groups, conv_kernel) and the other hybrid stacks of
    `_recurrent_layers` (Granite 4 / Qwen3.5 `layer_types`, Qwen3-Next
    `full_attention_interval` and `linear_*`, Jamba `attn_layer_period` / `_offset` and
    `mamba_*`, Falcon-H1), and the MoE dialects: Jamba `expert_layer_period` / `_offset`, ERNIE
    4.5 `moe_num_experts` / `moe_k` / `moe_num_shared_experts` / `moe_layer_start_index` ...,
    Qwen-MoE `decoder_sparse_step` / `mlp_only_layers`, GLM-5 `mlp_layer_types` and its shared
    indexers' `indexer_types`, shared-expert widths under
    `moe_shared_expert_intermediate_size` x `n_shared_experts` (Nemotron 3; its latent MoE's
    expert width `moe_latent_size`) and
    `shared_intermediate_size` (Granite 4; of a dense Granite 4, its MLP), `top_k_experts`.
    Gemma 4's full-attention layers of their own shape (global_head_dim,
    num_global_key_value_heads with attention_k_eq_v) and its experts beside a dense MLP
    (enable_moe_block: the MLP as a shared expert), the recurrent state's dtype
    (mamba_ssm_cache_dtype, Qwen3.5's mamba_ssm_dtype). Refused with one line: DeepSeek-V4's
    compressed attention (`compress_ratios`, `o_lora_rank`), Kimi Linear's KDA layers
    (`linear_attn_config`), per-layer widths
    (`block_configs`), a purely recurrent stack, unknown `layer_types` kinds."""
    return _fields(_with_defaults(_merged(cfg)))


def model_type(cfg: dict) -> str:
    """The config.json's `model_type` (its text config's, for a multimodal model), or '';
    `ConfigError` for one that is not a name."""
    v = _merged(cfg).get("model_type")
    if v is not None and not isinstance(v, str):
        raise ConfigError(f"config.json key 'model_type' must be a name (a string), got {v!r}")
    return v or ""


def _merged(cfg: dict) -> dict:
    """A config.json's keys with its `text_config`'s (a multimodal model's) over them."""
    return {**cfg, **(cfg.get("text_config") or {})}


def _with_defaults(c: dict) -> dict:
    """`c` with its `model_type`'s Hugging Face defaults (`HF_DEFAULTS`) for keys it lacks."""
    return {**HF_DEFAULTS.get(str(c.get("model_type")), {}), **c}


def _layer_ids(c: dict, key: str, layers: int) -> list:
    """config.json key `key`: a list of distinct layer indices below `layers` ([] when absent);
    `ConfigError` naming it otherwise."""
    ids = c.get(key)
    if ids is None:
        return []
    if (not isinstance(ids, list) or len(set(ids)) != len(ids) or any(
            isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < layers for i in ids)):
        raise ConfigError(f"config.json key {key!r} must be a list of distinct layer "
                          f"indices 0 ... {layers - 1} (num_hidden_layers {layers}), got "
                          f"{ids!r}")
    return ids


def _moe_layer_count(c: dict, layers: int) -> int:
    """Layers with routed experts: GLM-5's `mlp_layer_types` ("sparse" ones); Llama 4's
    `moe_layers` (distinct indices below
    num_hidden_layers) or, without it, every `interleave_moe_layer_step`-th layer (transformers
    Llama4TextConfig: range(step - 1, layers, step)); Jamba's every `expert_layer_period`-th
    from `expert_layer_offset`; the 1s of a list-valued `moe_layer_freq` (an integer one,
    DeepSeek's 1, changes nothing); ERNIE 4.5's layers i from `moe_layer_start_index` to
    `moe_layer_end_index` with (i + 1) % `moe_layer_interval` == 0; Qwen-MoE's every
    `decoder_sparse_step`-th layer not in `mlp_only_layers` (transformers
    Qwen2MoeDecoderLayer); every layer for other models. Read
    here (not `.get` alone) so that a key the file gives is checked, not silently counted."""
    kinds = _layer_kinds(c, "mlp_layer_types", layers, ("dense", "sparse"))
    if kinds is not None:  # one "dense" / "sparse" per layer (GLM-5): the sparse ones
        return kinds.count("sparse")
    ids = c.get("moe_layers")
    step = _hf_int(c, "interleave_moe_layer_step", 1) or 1
    freq = c.get("moe_layer_freq")
    if isinstance(freq, list):  # one 0 / 1 per layer (MiMo-V2): the 1s have experts
        if len(freq) != layers or any(v not in (0, 1) or isinstance(v, bool) for v in freq):
            raise ConfigError(f"config.json key 'moe_layer_freq' as a list must hold one 0 or "
                              f"1 per layer (num_hidden_layers {layers}), got {freq!r}")
        return sum(freq)
    if _hf_int(c, "expert_layer_period", 1):
        return len(range(_hf_int(c, "expert_layer_offset") or 0, layers,
                         _hf_int(c, "expert_layer_period", 1)))
    if str(c.get("model_type")).startswith("ernie4_5") or "moe_layer_start_index" in c:
        # transformers Ernie4_5_MoeDecoderLayer: experts where (i + 1) % interval == 0 and
        # start <= i <= end (Ernie4_5_MoeConfig defaults: start 1, end -1 = the last layer)
        start = _hf_int(c, "moe_layer_start_index")
        start = 1 if start is None else start
        end = c.get("moe_layer_end_index")
        end = layers - 1 if end is None or end == -1 else _hf_int(c, "moe_layer_end_index")
        every = _hf_int(c, "moe_layer_interval", 1) or 1
        return sum(1 for i in range(layers) if start <= i <= end and (i + 1) % every == 0)
    sparse = _hf_int(c, "decoder_sparse_step", 1)
    if sparse or "mlp_only_layers" in c:
        dense = set(_layer_ids(c, "mlp_only_layers", layers))
        return sum(1 for i in range(layers) if i not in dense and (i + 1) % (sparse or 1) == 0)
    if ids is None:
        return len(range(step - 1, layers, step))
    return len(_layer_ids(c, "moe_layers", layers))  # ([]: no MoE layer at all)


#: `layer_types` entries: attention layers (a KV cache per token) and recurrent ones (a
#: fixed state per sequence: Mamba, or linear attention such as Qwen3-Next's Gated DeltaNet)
ATTENTION_TYPES = ("full_attention", "attention", "sliding_attention", "chunked_attention",
                   "deepseek_sparse_attention")
RECURRENT_TYPES = ("mamba", "linear_attention")


def _recurrent_layers(c: dict, layers: int, hidden: int) -> dict:
    """The fields of a stack with recurrent layers beside its attention layers, every layer
    with its FFN (Nemotron-H's pattern, which places FFNs as layers of their own, is read by
    the caller); {} for a model without recurrent layers. Which layers are recurrent:
    `layer_types` (Granite 4 hybrids "mamba", Qwen3.5 "linear_attention"), else every layer
    but each `full_attention_interval`-th (Qwen3-Next), else all but Jamba's every
    `attn_layer_period`-th from `attn_layer_offset`; Falcon-H1 runs a Mamba-2 mixer beside the
    attention in every layer. The recurrent mixer in Mamba-2's shape (heads x head_dim channels,
    a state of ssm_state per channel, shared by groups, a conv window): Mamba-2 keys
    `mamba_n_heads` / `mamba_d_head` / `mamba_d_state` / `mamba_n_groups` / `mamba_d_conv`;
    a Gated DeltaNet's value heads x value head dim channels each holding a key-head-dim state,
    its key heads as the groups (`linear_*`: the same state, conv and projections within 0.3 %);
    Jamba's Mamba-1 (`mamba_expand` x hidden channels, `mamba_d_state`) as 64-wide heads of one
    group (its dt projection, about 4 % of the mixer's weights, taken as Mamba-2's)."""
    types = c.get("layer_types")
    c.get("full_attention_interval")  # (given beside layer_types too: the same layers)
    if types is not None:
        _layer_kinds(c, "layer_types", layers, ATTENTION_TYPES + RECURRENT_TYPES, "layer kind")
        rec = sum(1 for t in types if t in RECURRENT_TYPES)
        attn = layers - rec
    elif _hf_int(c, "full_attention_interval", 1) and types is None:
        attn = layers // _hf_int(c, "full_attention_interval", 1)
        rec = layers - attn
    elif _hf_int(c, "attn_layer_period", 1):
        attn = len(range(_hf_int(c, "attn_layer_offset") or 0, layers,
                         _hf_int(c, "attn_layer_period", 1)))
        rec = layers - attn
    elif str(c.get("model_type")) == "falcon_h1":
        ids = _layer_ids(c, "attn_layer_indices", layers)  # (null: attention in every layer)
        attn, rec = (len(ids) if ids else layers), layers
    else:
        return {}
    if not rec:
        return {}
    if not attn:
        raise ConfigError(f"config.json describes a purely recurrent model ({rec} Mamba / "
                          f"linear-attention layers, no attention layer); wrpsim models "
                          f"stacks with at least one attention layer")
    if "linear_num_value_heads" in c:  # Gated DeltaNet
        mixer = {"mamba_heads": _hf_req(c, "linear_num_value_heads"),
                 "mamba_head_dim": _hf_req(c, "linear_value_head_dim"),
                 "ssm_state": _hf_req(c, "linear_key_head_dim"),
                 "mamba_groups": _hf_req(c, "linear_num_key_heads"),
                 "conv_kernel": _hf_int(c, "linear_conv_kernel_dim", 1) or 4,
                 "gated_delta": True}
    elif "mamba_n_heads" in c:  # Mamba-2 (mamba_expand, mamba_d_ssm: implied by the heads)
        c.get("mamba_expand"), c.get("mamba_d_ssm")
        mixer = {"mamba_heads": _hf_req(c, "mamba_n_heads"),
                 "mamba_head_dim": _hf_req(c, "mamba_d_head"),
                 "ssm_state": _hf_req(c, "mamba_d_state"),
                 "mamba_groups": _hf_int(c, "mamba_n_groups", 1) or 1,
                 "conv_kernel": _hf_int(c, "mamba_d_conv", 1) or 4}
    elif "mamba_d_state" in c:  # Mamba-1
        channels = (_hf_int(c, "mamba_expand", 1) or 2) * hidden
        c.get("mamba_dt_rank")  # (its dt projection: taken as Mamba-2's)
        mixer = {"mamba_heads": max(1, channels // 64), "mamba_head_dim": 64,
                 "ssm_state": _hf_req(c, "mamba_d_state"), "mamba_groups": 1,
                 "conv_kernel": _hf_int(c, "mamba_d_conv", 1) or 4}
    else:
        raise ConfigError(f"config.json has {rec} recurrent (Mamba / linear-attention) layers "
                          f"but no keys for their size (mamba_n_heads / mamba_d_head / "
                          f"mamba_d_state, linear_num_value_heads / linear_value_head_dim / "
                          f"linear_key_head_dim / linear_num_key_heads, or mamba_d_state / "
                          f"mamba_expand)")
    return {"attention_layers": attn, "mamba_layers": rec, "mlp_layers": layers, **mixer}


#: Gemma 3n / Gemma 4 keys whose 0 means the feature is absent (read then; a non-zero value —
#: per-layer input embeddings, layers that reuse an earlier layer's KV — is not modelled and
#: is named by `unread_keys`)
_ZERO_MEANS_NONE = ("num_kv_shared_layers", "hidden_size_per_layer_input")


def _global_attention(c: dict, out: dict) -> dict:
    """Gemma 4's full-attention layers of their own shape: `global_head_dim` wide heads and,
    with `attention_k_eq_v` (no V projection: V from the key projection),
    `num_global_key_value_heads` KV heads (transformers Gemma4TextAttention: those heads only
    with k = v). A model without sliding-window layers takes them as its one shape. Also reads
    `_ZERO_MEANS_NONE` where 0."""
    for key in _ZERO_MEANS_NONE:
        if dict.get(c, key) in (0, None):
            c.get(key)
    if dict.get(c, "hidden_size_per_layer_input") in (0, None):
        c.get("vocab_size_per_layer_input")  # (the size of per-layer inputs it has not)
    dim = _hf_int(c, "global_head_dim", 1)
    k_eq_v = _hf_bool(c, "attention_k_eq_v", False)
    kv = _hf_int(c, "num_global_key_value_heads", 1) if k_eq_v else None
    c.get("num_global_key_value_heads")  # (without k = v the layers keep num_key_value_heads)
    if not out.get("sliding_layers"):
        return {k: v for k, v in (("head_dim", dim), ("kv_heads", kv)) if v}
    fields: dict = {}
    if dim and dim != out["head_dim"]:
        fields["global_head_dim"] = dim
    if kv and kv != out["kv_heads"]:
        fields["global_kv_heads"] = kv
    if k_eq_v:
        fields["global_k_eq_v"] = True
    return fields


def _fields(c: dict) -> dict:
    """`from_hf_config`'s fields from the merged config.json with its defaults."""
    if "compress_ratios" in c or "o_lora_rank" in c:
        raise ConfigError("config.json describes DeepSeek-V4's attention (compressed KV "
                          "'compress_ratios', grouped low-rank output 'o_lora_rank'), which wrpsim "
                          "does not model; its numbers would be read as another architecture's")
    if c.get("linear_attn_config"):
        raise ConfigError("config.json describes Kimi Linear's KDA (Kimi Delta Attention) "
                          "layers ('linear_attn_config'), which wrpsim does not model; its "
                          "numbers would be read as another architecture's")
    if c.get("block_configs"):
        raise ConfigError("config.json gives each layer its own attention and FFN widths "
                          "('block_configs', DeciLM / Nemotron NAS models), which wrpsim's "
                          "uniform layers cannot hold; give the model as wrpsim's own fields "
                          "(pools/README.md) with its average widths")
    mtype = model_type(c)  # (a name, checked)
    if mtype != mtype.lower() and mtype.lower() in HF_DEFAULTS:  # a known type, miscased
        # (a remote-code model may have a type of its own in capitals: "RefinedWebModel")
        raise ConfigError(f"config.json model_type {mtype!r} is not a Hugging Face model type "
                          f"(they are lowercase); did you mean {mtype.lower()!r}?")
    if mtype in ENCODER_TYPES:
        raise ConfigError(f"config.json describes a model_type {mtype!r}, not a decoder-only "
                          f"language model (an encoder, encoder-decoder or vision / speech "
                          f"tower): wrpsim serves decoder-only LLMs")
    if mtype in ("mamba", "mamba2", "falcon_mamba"):
        raise ConfigError(f"config.json describes a purely recurrent model (model_type "
                          f"{mtype!r}, no attention layer); wrpsim models stacks with at least "
                          f"one attention layer")
    if _hf_bool(c, "use_cla", False):
        raise ConfigError("config.json shares each KV cache across layers ('use_cla', "
                          f"cross-layer attention, cla_share_factor {c.get('cla_share_factor')}), "
                          "which wrpsim does not model: it would hold that many times the KV")
    if _hf_bool(c, "parallel_attn_mlp_res", False):
        raise ConfigError("config.json adds a dense residual MLP beside every MoE layer "
                          "('parallel_attn_mlp_res', Arctic), which wrpsim does not model: its "
                          "weights and time would be left out")
    if c.get("num_hidden_layers") is None:
        other = [k for k in _OTHER_LAYER_KEYS if c.get(k) is not None]
        if other:
            raise ConfigError(f"config.json counts its layers as {other[0]!r}, not "
                              f"'num_hidden_layers' (model_type {mtype or 'not given'}): a "
                              f"dialect whose attention and MLP keys wrpsim does not read; give "
                              f"the model as wrpsim's own fields (pools/README.md)")
    pattern = _nemotron_pattern(c)
    if c.get("num_hidden_layers") is None and isinstance(pattern, str) and pattern:
        layers = len(pattern)  # (Nemotron 3 Ultra: null, its pattern has one letter a layer)
    else:
        layers = _hf_req(c, "num_hidden_layers")
    hidden = _hf_req(c, "hidden_size")
    heads = _hf_req(c, "num_attention_heads")
    most, served = _context(c, mtype)
    out: dict = {"layers": layers, "hidden": hidden, "heads": heads,
                 "kv_heads": _hf_int(c, "num_key_value_heads", 1) or heads,
                 "vocab": _hf_req(c, "vocab_size"),
                 "tied_embeddings": _hf_bool(c, "tie_word_embeddings", False),
                 # (absent, and no default for the model_type: no limit is enforced)
                 "max_context": most}
    if served:  # (a LongRoPE model: vLLM serves its original length unless told otherwise)
        out["default_context"] = served
    if heads % out["kv_heads"]:
        raise ConfigError(f"config.json key 'num_key_value_heads' ({out['kv_heads']}) must "
                          f"divide num_attention_heads ({heads}); valid: {divisors(heads)}")
    head_dim = _hf_int(c, "head_dim", 1) or _hf_int(c, "attention_head_dim", 1) \
        or hidden // heads
    experts = (_hf_int(c, "num_experts") or _hf_int(c, "n_routed_experts")
               or _hf_int(c, "num_local_experts") or _hf_int(c, "moe_num_experts") or 1)
    inter = _hf_int(c, "intermediate_size") or 0
    if not inter and experts <= 1 and not (_hf_int(c, "shared_intermediate_size")
                                           or _hf_int(c, "intermediate_size_mlp")):
        if c.get("intermediate_size") == 0:
            raise ConfigError("config.json key 'intermediate_size' must be an integer >= 1 (the "
                              "MLP width), got 0")
        named = [k for k in c if isinstance(k, str) and k != "intermediate_size"
                 and ("ff" in k or "inner" in k or "intermediate" in k)]
        raise ConfigError("config.json gives no MLP width ('intermediate_size')"
                          + (f"; it names {named[0]!r} instead" if named else "")
                          + f" (model_type {mtype or 'not given'}): a dialect wrpsim does not "
                          "read; give the model as wrpsim's own fields (pools/README.md)")
    n_moe = _moe_layer_count(c, layers) if experts > 1 else 0
    if experts > 1 and n_moe == 0 and not mtype.startswith("llama4"):
        raise ConfigError(f"config.json gives {experts} experts but places them in none of its "
                          f"{layers} layers (decoder_sparse_step, mlp_only_layers, "
                          f"moe_layers ...): set the MoE layers, or give a dense model without "
                          f"experts")
    if experts > 1 and n_moe == 0:  # Llama 4 with no MoE layer: every layer a dense MLP
        experts, inter = 1, _hf_int(c, "intermediate_size_mlp") or inter
        c.get("num_experts_per_tok")  # (no experts to route to: read, and not modelled)
    if experts > 1:
        out["experts"] = experts
        out["active_experts"] = (_hf_int(c, "moe_k", 1) if "moe_k" in c  # (ERNIE 4.5)
                                 else _hf_int(c, "top_k_experts", 1) if "top_k_experts" in c
                                 else _hf_int(c, "moe_topk", 1) if "moe_topk" in c  # Hunyuan
                                 else _hf_req(c, "num_experts_per_tok"))
        moe_inter = _hf_int(c, "moe_intermediate_size", 1) or inter
        out["intermediate"] = moe_inter
        # the dense layers' width where a config names it apart (MiniMax-M3)
        dense_w = _hf_int(c, "dense_intermediate_size") or inter
        # leading dense layers (Hunyuan calls them `moe_layer_num_skipped`)
        lead = _hf_int(c, "first_k_dense_replace") or _hf_int(c, "moe_layer_num_skipped")
        if lead and lead >= layers:
            key = ("first_k_dense_replace" if _hf_int(c, "first_k_dense_replace")
                   else "moe_layer_num_skipped")
            raise ConfigError(f"config.json key {key!r} ({lead}) must be below "
                              f"num_hidden_layers ({layers}): the leading dense layers would "
                              f"leave no layer for the {experts} experts")
        if c.get("mlp_layer_types") is not None:  # (the list names every layer: it wins)
            lead = layers - n_moe
        if lead:
            out["dense_layers"] = lead
            out["dense_intermediate"] = dense_w
        dense_mlp = _hf_int(c, "intermediate_size_mlp")  # (Llama 4: read even if unused)
        if n_moe < layers:  # Llama 4's interleaved dense layers, `intermediate_size_mlp` wide
            # (which layers are dense does not change a step's time: counted, not placed)
            out["dense_layers"] = layers - n_moe
            out["dense_intermediate"] = dense_mlp or dense_w
        shared = (_hf_int(c, "shared_expert_intermediate_size")
                  or _hf_int(c, "shared_intermediate_size") or 0)  # (Granite 4 hybrids)
        n_shared = _hf_int(c, "n_shared_experts")
        n_shared = _hf_int(c, "moe_num_shared_experts") if n_shared is None else n_shared
        if n_shared is None and "num_shared_expert" in c:  # (Hunyuan: with its mixed MLP)
            n_shared = (_hf_int(c, "num_shared_expert")
                        if _hf_bool(c, "use_mixed_mlp_moe", False) else 0)
        one = _hf_int(c, "moe_shared_expert_intermediate_size")  # (Nemotron 3: one expert's)
        if one is not None:  # n_shared_experts of that width (vLLM NemotronHMoE), none at 0
            shared = one * (1 if n_shared is None else n_shared)
        elif not shared and n_shared:
            shared = n_shared * moe_inter
        if not shared and str(c.get("model_type")).startswith("llama4"):
            # every Llama 4 MoE layer has one shared expert of the routed width
            # (transformers Llama4TextMoe.shared_expert); its config.json has no key for it
            shared = moe_inter
        if not shared and _hf_bool(c, "enable_moe_block", False):
            # Gemma 4 MoE: every layer runs its dense MLP (`intermediate_size`) beside the
            # routed experts, as a shared expert of that width
            shared = inter
        out["shared_intermediate"] = shared
        if _hf_int(c, "moe_latent_size"):  # (Nemotron 3 Super / Ultra: a latent MoE)
            out["moe_latent"] = _hf_int(c, "moe_latent_size")
    else:
        dense_mlp = _hf_int(c, "shared_intermediate_size")
        if str(c.get("model_type")) == "granitemoehybrid" and dense_mlp:
            # a dense Granite 4 (num_local_experts 0): its MLP is the "shared" one
            # (transformers GraniteMoeHybridDecoderLayer.shared_mlp)
            inter = dense_mlp
        out["intermediate"] = inter
        # (no experts: nothing to place, none to route to)
        c.get("mlp_only_layers"), c.get("decoder_sparse_step"), c.get("num_experts_per_tok")
        c.get("enable_moe_block")
    if _hf_int(c, "kv_lora_rank", 1):  # (0 is refused: null or absent means no MLA)
        rope = _hf_req(c, "qk_rope_head_dim")
        out.update(kv_lora_rank=_hf_int(c, "kv_lora_rank"),
                   q_lora_rank=_hf_int(c, "q_lora_rank") or 0, qk_rope_head_dim=rope,
                   v_head_dim=_hf_req(c, "v_head_dim"), kv_heads=heads)
        head_dim = _hf_req(c, "qk_nope_head_dim") + rope
        qk = _hf_int(c, "qk_head_dim")  # (GLM-5 states the sum too: it must agree)
        if qk is not None and qk != head_dim:
            raise ConfigError(f"config.json key 'qk_head_dim' ({qk}) must be qk_nope_head_dim "
                              f"+ qk_rope_head_dim ({head_dim})")
        if _hf_int(c, "index_topk"):  # DeepSeek Sparse Attention (DeepSeek-V3.2)
            out.update(index_topk=_hf_int(c, "index_topk"),
                       index_heads=_hf_req(c, "index_n_heads"),
                       index_head_dim=_hf_req(c, "index_head_dim"))
            shared = _indexer_layers(c, layers)
            if shared:
                out["index_layers"] = shared
    out["head_dim"] = int(head_dim)
    if _hf_bool(c, "use_qk_norm", False) and str(c.get("qk_norm_type")) == "per_layer":
        out["qk_norm_allreduce"] = True  # (MiniMax-M2's norm over every head at once)
    if "attention_output_gate" in c:  # (MiniMax-M3's name for it)
        out["attn_gate"] = _hf_bool(c, "attention_output_gate", False)
    else:
        out["attn_gate"] = _hf_bool(c, "attn_output_gate", False)
    window = _hf_int(c, "sliding_window")
    alias = _hf_int(c, "sliding_window_size")  # (Gemma 2's config.json repeats the window)
    if alias is not None and window is not None and alias != window:
        raise ConfigError(f"config.json keys 'sliding_window' ({window}) and "
                          f"'sliding_window_size' ({alias}) disagree")
    use_window = _hf_bool(c, "use_sliding_window", True)
    first_windowed = _hf_int(c, "max_window_layers")
    if window and use_window and first_windowed is not None and mtype.startswith("qwen") \
            and not c.get("layer_types"):
        # Qwen's config classes slide the layers from max_window_layers on (transformers'
        # `layer_types`, which vLLM's models read); vLLM's Qwen2 model refuses a window on some
        # layers only ("Sliding window for some but all layers is not supported")
        if 0 < first_windowed < layers:
            raise ConfigError(f"config.json keys 'use_sliding_window' (true) and "
                              f"'max_window_layers' ({first_windowed}) put a sliding window on "
                              f"the layers from {first_windowed} on, some of the {layers} layers "
                              f"only, which vLLM refuses to serve; valid: max_window_layers 0 "
                              f"(every layer windowed), {layers} (none), or use_sliding_window "
                              f"false (as published Qwen configs have it)")
        if first_windowed >= layers:
            window = None
    if window and use_window:
        if c.get("layer_types"):
            n = sum(1 for t in c["layer_types"] if "sliding" in str(t))
        elif isinstance(c.get("sliding_window_pattern"), str):
            # EXAONE 4: one letter a layer of the repeating period, L local (the window), G
            # global ("LLLG": three sliding layers, then a full one)
            pat = c["sliding_window_pattern"]
            if not pat or set(pat) - {"L", "G"}:
                raise ConfigError(f"config.json key 'sliding_window_pattern' must be an integer "
                                  f">= 1 or a string of L (sliding) and G (global) layers, got "
                                  f"{pat!r}")
            n = sum(1 for i in range(layers) if pat[i % len(pat)] == "L")
        elif c.get("sliding_window_pattern"):
            p = _hf_int(c, "sliding_window_pattern", 1)
            n = layers - layers // p
        else:
            n = layers
        if n:
            out["sliding_window"], out["sliding_layers"] = int(window), int(n)
    out.update(_global_attention(c, out))
    chunk = _hf_int(c, "attention_chunk_size")
    if chunk:
        # Llama 4's chunked local attention (a token sees its own `chunk`-token chunk) on its
        # RoPE layers: `layer_types` "chunked_attention", else `no_rope_layers` 1, else all but
        # every `no_rope_layer_interval`-th layer. Taken as a sliding window of `chunk` tokens:
        # the same attention up to `chunk` tokens of context; beyond it a window attends to
        # `chunk` tokens where a chunk averages chunk / 2, so long contexts are timed high
        # there. The KV cache counts those layers in full per token, as for windows (vLLM 0.11
        # keeps them whole too: its hybrid KV-cache manager is off for chunked attention).
        types, nope = c.get("layer_types"), c.get("no_rope_layers")
        if types:
            n = sum(1 for t in types if "chunked" in str(t))
        elif nope:
            n = sum(1 for v in nope if v)
        else:
            interval = _hf_int(c, "no_rope_layer_interval", 1) or 4
            n = layers - layers // interval
        if n and out.get("sliding_layers"):
            raise ConfigError(f"config.json has both sliding-window ({out['sliding_layers']}) "
                              f"and chunked-attention ({n}) layers; wrpsim models one window "
                              f"size per model: give one of sliding_window / "
                              f"attention_chunk_size")
        if n:
            out["sliding_window"], out["sliding_layers"] = int(chunk), int(n)
            out["chunked_attention"] = True
    if pattern:
        a, m, f = _pattern_counts(pattern, layers, "hybrid_override_pattern"
                                  if c.get("hybrid_override_pattern") else "layers_block_type")
        out.update(attention_layers=a, mamba_layers=m, mlp_layers=f,
                   mamba_heads=_hf_req(c, "mamba_num_heads"),
                   mamba_head_dim=_hf_req(c, "mamba_head_dim"),
                   ssm_state=_hf_req(c, "ssm_state_size"),
                   mamba_groups=_hf_int(c, "n_groups") or _hf_int(c, "mamba_num_groups") or 1,
                   conv_kernel=_hf_int(c, "conv_kernel") or 4)
        act = c.get("mlp_hidden_act", "silu")
        if not isinstance(act, str):
            raise ConfigError(f"config.json key 'mlp_hidden_act' must be an activation's name "
                              f"(relu2, silu ...), got {act!r}")
        out["gated_mlp"] = act not in ("relu2", "gelu")
    else:
        out.update(_recurrent_layers(c, layers, hidden))
        if mtype in NON_GATED_MLP:
            out["gated_mlp"] = False
    if out.get("mamba_layers"):
        # the SSM state's dtype the checkpoint asks for, which vLLM's `auto` takes: Nemotron-H
        # `mamba_ssm_cache_dtype` (NemotronHForCausalLMConfig), Qwen3.5 `mamba_ssm_dtype`
        # (Qwen3_5ForConditionalGenerationConfig; its conv state stays BF16)
        key = ("mamba_ssm_cache_dtype" if c.get("mamba_ssm_cache_dtype") is not None
               else "mamba_ssm_dtype")
        ssm = c.get(key)
        if ssm is not None:
            if ssm not in _SSM_BYTES:
                raise ConfigError(f"config.json key {key!r} must be one of "
                                  f"{', '.join(_SSM_BYTES)}, got {ssm!r}")
            out["mamba_ssm_bytes"] = _SSM_BYTES[ssm]
    return out
