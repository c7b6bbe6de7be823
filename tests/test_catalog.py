"""The GPU and model catalogs: loading, validation, KV sizes (oracles.md) and KV capacity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import (
    CALIBRATION_FIELDS,
    catalog_path,
    get_gpu,
    get_model,
    gpus,
    load_gpus,
    load_models,
    models,
)
from wrpsim.pool.perf import AnalyticalLatency

GPUS = ["a10g-24gb", "l4-24gb", "l40s-48gb", "a100-80gb", "h100-80gb", "h200-141gb",
        "b200-180gb", "mi300x-192gb"]
KIB = 1024

# oracles.md, "KV cache sizes": 2 x layers x kv_heads x head_dim x bytes.
# BLOOM-176B: oracles.md writes "3.5 MiB", but its own formula with BLOOM's config (70 layers,
# 112 heads x 128, MHA) gives 2*70*112*128*2 = 4,014,080 B = 3920 KiB = 3.83 MiB; we test the
# formula (3.5 MiB would need 64 layers).
KV_ORACLE = {
    "llama3.1-8b": 128 * KIB, "llama3.1-70b": 320 * KIB, "llama2-70b": 320 * KIB,
    "mixtral-8x7b": 128 * KIB, "bloom-176b": 2 * 70 * 112 * 128 * 2,
    "llama2-7b": 512 * KIB, "codellama-34b": 192 * KIB,
    "llama3.1-405b": 504 * KIB, "qwen2.5-7b": 56 * KIB,
}
# published parameter counts (billions)
PARAMS_B = {"llama3.1-8b": 8.03, "llama3.1-70b": 70.55, "llama2-70b": 68.98,
            "mixtral-8x7b": 46.70, "bloom-176b": 176.2, "llama3.1-405b": 405.8, "qwen2.5-7b": 7.62,
            "llama2-7b": 6.74, "codellama-34b": 33.74}


def test_catalog_holds_the_contract_names():
    assert set(GPUS) <= set(gpus())
    assert {"llama3.1-8b", "llama3.1-70b", "llama2-70b", "bloom-176b", "mixtral-8x7b"} <= set(
        models())


@pytest.mark.parametrize("name", GPUS)
def test_every_gpu_loads_with_sane_figures(name):
    g = get_gpu(name)
    assert 0 < g.idle_w < g.tdp_w
    assert g.bf16_tflops > 0 and g.mem_gib > 0 and g.mem_bw_gbs > 0 and g.link_gbs > 0
    assert g.price_per_hour_usd > 0
    for k in CALIBRATION_FIELDS:
        assert getattr(g, k) >= 0, k
    assert 0 < g.eff_compute <= 1 and 0 < g.eff_mem <= 1 and 0 < g.eff_link <= 1
    assert g.calibration_source


@pytest.mark.parametrize("name", sorted(KV_ORACLE))
def test_kv_bytes_per_token_matches_oracle(name):
    assert get_model(name).kv_bytes_per_token == KV_ORACLE[name]


@pytest.mark.parametrize("name", sorted(PARAMS_B))
def test_parameter_counts(name):
    assert get_model(name).params / 1e9 == pytest.approx(PARAMS_B[name], rel=0.01)


def test_mixtral_active_params():
    m = get_model("mixtral-8x7b")
    assert m.active_params / 1e9 == pytest.approx(12.9, rel=0.01)
    assert m.experts == 8 and m.active_experts == 2


def test_kv_capacity_against_hand_computation():
    lat = AnalyticalLatency(get_model("llama3.1-70b"), get_gpu("h100-80gb"), 4)
    weights = 70_552_387_584 * 2 / 4                     # bytes per GPU
    free = 80 * 0.9 * 2**30 - 3.5 * 2**30 - weights      # HBM x util - reserve - weights
    per_block = 16 * (320 * KIB / 4)                     # block tokens x KV bytes / tp
    assert lat.kv_capacity_blocks(16) == math.floor(free / per_block) == 29201
    assert lat.kv_capacity_blocks(16, gpu_mem_util=0.5, reserve_gib=0.0) == math.floor(
        (40 * 2**30 - weights) / per_block)


def test_model_does_not_fit_message():
    lat = AnalyticalLatency(get_model("llama3.1-70b"), get_gpu("a10g-24gb"), 2)
    with pytest.raises(ConfigError, match=r"llama3\.1-70b needs 65\.7 GiB of weights per GPU at "
                       r"tp=2 on a10g-24gb \(mem_gib 24 GiB x gpu_mem_util 0\.90 - reserve_gib "
                       r"3\.5 GiB = 18\.1 GiB usable\)"):
        lat.kv_capacity_blocks(16)


def test_unknown_names_list_choices():
    with pytest.raises(ConfigError, match=r"gpu: unknown value 'h900'.*a100-80gb.*mi300x-192gb"):
        get_gpu("h900")
    with pytest.raises(ConfigError, match=r"model: unknown value 'gpt5'.*bloom-176b.*llama2-70b"):
        get_model("gpt5")


def _gpu_yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gpus.yaml"
    p.write_text(text)
    return p


BASE = """x-gpu:
  bf16_tflops: 100
  mem_gib: 16
  mem_bw_gbs: 500
  tdp_w: 200
  idle_w: 20
  link_gbs: 32
  price_per_hour_usd: 1.0
  calibration: {from: a100}
a100:
  bf16_tflops: 312
  mem_gib: 80
  mem_bw_gbs: 2039
  tdp_w: 400
  idle_w: 63
  link_gbs: 300
  price_per_hour_usd: 2.21
  calibration:
""" + "".join(f"    {k}: 0.5\n" for k in CALIBRATION_FIELDS)


def test_gpu_yaml_loads_and_copies_calibration(tmp_path):
    specs = load_gpus(_gpu_yaml(tmp_path, BASE))
    # another GPU's 2023 fit on this GPU's peaks is labelled as a roofline estimate, as the
    # kernel engines label a GPU without tables (runview's note reads the first clause)
    assert specs["x-gpu"].eff_compute == 0.5 and specs["x-gpu"].calibration_source.startswith(
        "uncalibrated: roofline (the 2023 fit of a100: ")
    assert not specs["a100"].calibration_source.startswith("uncalibrated")


@pytest.mark.parametrize("edit, field", [
    (("  mem_gib: 16\n", ""), "mem_gib"),
    (("  mem_gib: 16\n", "  mem_gib: -16\n"), "mem_gib"),
    (("  tdp_w: 200\n", "  tdp_w: fast\n"), "tdp_w"),
    (("    eff_mem: 0.5\n", "    eff_mem: -1\n"), "calibration.eff_mem"),
    (("    eff_link: 0.5\n", ""), "calibration.eff_link"),
    (("  link_gbs: 32\n", "  link_gbs: 32\n  colour: red\n"), "colour"),
    (("{from: a100}", "{from: b100}"), "calibration.from"),
    # a bridge joining GPUs in pairs is a PCIe server's (NVLink servers link every GPU)
    (("  link_gbs: 32\n", "  link_gbs: 32\n  pair_link_gbs: 300\n"), "pair_link_gbs"),
    (("  link_gbs: 32\n", "  link_gbs: 32\n  scaleup: pcie\n  pair_link_gbs: -3\n"),
     "pair_link_gbs"),
    # an NVLink domain is a whole number of GPUs
    (("  link_gbs: 32\n", "  link_gbs: 32\n  scaleup_gpus: 8.5\n"), "scaleup_gpus"),
    (("  link_gbs: 32\n", "  link_gbs: 32\n  scaleup_gpus: 0\n"), "scaleup_gpus"),
])
def test_gpu_yaml_validation_names_file_entry_field(tmp_path, edit, field):
    path = _gpu_yaml(tmp_path, BASE.replace(*edit, 1))
    with pytest.raises(ConfigError, match=rf"gpus\.yaml: entry '(x-gpu|a100)'.*'{field}'"):
        load_gpus(path)


def test_model_yaml_validation(tmp_path):
    good = ("m:\n  layers: 2\n  hidden: 64\n  heads: 4\n  kv_heads: 2\n  head_dim: 16\n"
            "  intermediate: 128\n  vocab: 100\n")
    p = tmp_path / "models.yaml"
    p.write_text(good)
    assert load_models(p)["m"].kv_bytes_per_token == 2 * 2 * 2 * 16 * 2
    for bad, field in ((good.replace("  heads: 4\n", ""), "heads"),
                       (good.replace("vocab: 100", "vocab: 0"), "vocab"),
                       (good + "  experts: 2\n  active_experts: 3\n", "active_experts"),
                       # a count too large for a C integer (the kernel model overflowed)
                       (good.replace("layers: 2", "layers: 1000000000000000000000"), "layers")):
        p.write_text(bad)
        with pytest.raises(ConfigError, match=rf"models\.yaml: entry 'm'.*'{field}'"):
            load_models(p)


def test_catalog_lives_in_repo():
    assert (catalog_path() / "profiles" / "splitwise_llama2_70b.csv").is_file()


# google/gemma-2-9b-it config.json as published (no layer_types, no sliding_window_pattern, no
# tie_word_embeddings: Gemma2Config's defaults fill them)
GEMMA2_9B_CONFIG_JSON = {
    "architectures": ["Gemma2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid",
    "eos_token_id": 1, "final_logit_softcapping": 30.0, "head_dim": 256,
    "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 16,
    "num_hidden_layers": 42, "num_key_value_heads": 8, "pad_token_id": 0,
    "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
    "sliding_window": 4096, "sliding_window_size": 4096, "torch_dtype": "float32",
    "transformers_version": "4.42.0.dev0", "use_cache": True, "vocab_size": 256000}


def _user_models(tmp_path, monkeypatch, text: str):
    from wrpsim.pool import catalog

    (tmp_path / "models.yaml").write_text(text)
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    catalog.models.cache_clear()
    return catalog


def test_gemma2s_own_config_json_is_the_shipped_gemma_2_9b(tmp_path, monkeypatch):
    import dataclasses
    import json

    from wrpsim.pool.engines import build_latency_model

    (tmp_path / "gemma2.json").write_text(json.dumps(GEMMA2_9B_CONFIG_JSON))
    cat = _user_models(tmp_path, monkeypatch, "my-gemma2:\n  config_json: gemma2.json\n")
    try:
        mine, ship = cat.get_model("my-gemma2"), cat.get_model("gemma-2-9b")
        # alternate layers sliding (21 of 42), tied embeddings: the same weights and KV
        assert (mine.sliding_layers, mine.sliding_window, mine.tied_embeddings) == (21, 4096,
                                                                                    True)
        assert dataclasses.replace(mine, name=ship.name, source=ship.source) == ship
        a = build_latency_model("my-gemma2", "h100-80gb", 1)
        b = build_latency_model("gemma-2-9b", "h100-80gb", 1)
        assert a.kv_bytes_per_token_per_gpu == b.kv_bytes_per_token_per_gpu
        for step in ((6000, 6000 * 6001 / 2, 0, 0, 1), (0, 0.0, 64, 7000, 1),
                     (512, 512 * 513 / 2, 32, 5000, 1)):
            assert a.iteration_s(*step) == b.iteration_s(*step)
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        cat.models.cache_clear()


@pytest.mark.parametrize("model_type, tied, sliding", [
    ("gemma2", True, 21), ("gemma3_text", True, 42 - 7), ("gemma", True, None),
    ("llama", False, None), ("mistral", False, 42), ("qwen2", False, 0), ("phi3", False, 42),
    (None, False, 42)])  # no model_type: as before (untied, every layer windowed)
def test_a_config_json_key_left_out_takes_the_hf_class_default(model_type, tied, sliding):
    from wrpsim.pool.hfconfig import from_hf_config

    cfg = {"num_hidden_layers": 42, "hidden_size": 512, "num_attention_heads": 8,
           "vocab_size": 1000, "intermediate_size": 1024, "sliding_window": 4096}
    if model_type:
        cfg["model_type"] = model_type
    out = from_hf_config(cfg)
    assert out["tied_embeddings"] is tied
    if sliding is not None:  # Qwen2Config: use_sliding_window False unless the file says so
        assert out.get("sliding_layers", 0) == sliding
    # a key the file gives wins over the class default
    assert from_hf_config({**cfg, "tie_word_embeddings": not tied})["tied_embeddings"] is not tied


@pytest.mark.parametrize("key, value, rule", [
    ("num_hidden_layers", 32.9, "an integer >= 1"),
    ("num_hidden_layers", "thirty", "an integer >= 1"),
    ("num_key_value_heads", 0, "an integer >= 1"),
    ("tie_word_embeddings", "false", "true or false"),
])
def test_a_bad_config_json_value_is_one_line_naming_model_and_key(tmp_path, monkeypatch, key,
                                                                 value, rule):
    import json

    cfg = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
           "vocab_size": 100, "intermediate_size": 128, key: value}
    p = tmp_path / "models.yaml"
    p.write_text(f"m:\n  hf_config: {json.dumps(cfg)}\n")
    with pytest.raises(ConfigError) as e:
        load_models(p)
    assert str(e.value) == (f"{p}: entry 'm': config.json key {key!r} must be {rule}, "
                            f"got {value!r}")


def test_a_misspelt_model_type_is_refused_or_its_missing_context_said(tmp_path):
    """Hugging Face's model types are lowercase registry keys: 'Llama' is a typo, refused with
    the right one. A type wrpsim has no defaults for ('llamaa') loses the family's defaults, so
    a file without max_position_embeddings would run without a context limit: said (once, when
    the model is used), with the nearest known type."""
    import json

    from wrpsim.pool import catalog

    base = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
            "vocab_size": 100, "intermediate_size": 128}
    p = tmp_path / "models.yaml"
    p.write_text(f"m:\n  hf_config: {json.dumps({**base, 'model_type': 'Llama'})}\n")
    with pytest.raises(ConfigError, match=r"entry 'm': config\.json model_type 'Llama' is not a "
                                          r"Hugging Face model type \(they are lowercase\); "
                                          r"did you mean 'llama'\?$"):
        load_models(p)
    # a type of its own in capitals (remote code: Falcon's "RefinedWebModel") is not refused
    p.write_text(f"m:\n  hf_config: {json.dumps({**base, 'model_type': 'Yi'})}\n")
    assert load_models(p)["m"].layers == 2
    catalog.NO_CONTEXT.pop("m", None)
    p.write_text(f"m:\n  hf_config: {json.dumps({**base, 'model_type': 'llamaa'})}\n")
    assert load_models(p)["m"].max_context == 0
    msg = catalog.NO_CONTEXT.pop("m")
    assert msg.endswith("config.json gives no max_position_embeddings and model_type 'llamaa' "
                        "has no default wrpsim knows, so no context limit is enforced for it "
                        "(add max_context: N to the entry); did you mean 'llama'?")
    # its own max_context, or the family's default, and nothing is said
    for extra in ({"model_type": "llamaa", "max_position_embeddings": 4096},
                  {"model_type": "llama"}):
        p.write_text(f"m:\n  hf_config: {json.dumps({**base, **extra})}\n")
        assert load_models(p)["m"].max_context in (4096, 2048) and "m" not in catalog.NO_CONTEXT


def test_llama4_maverick_from_its_config_json():
    """Llama 4 (interleaved MoE, one shared expert, chunked attention) from config.json keys:
    Meta publishes Maverick as 400B total / 17B active; every other layer of 48 is MoE, and
    by hand: 24 MoE layers x (128 + 1 shared) x 3 x 5120 x 8192 + 24 dense x 3 x 5120 x
    16384 + 48 x attention (5120 x (40 + 16) x 128 + 40 x 128 x 5120) + 2 x 202048 x 5120."""
    m = get_model("llama4-maverick")
    assert (m.dense_layers, m.dense_intermediate, m.shared_intermediate) == (24, 16384, 8192)
    assert (m.experts, m.active_experts, m.intermediate) == (128, 1, 8192)
    assert (m.sliding_window, m.sliding_layers) == (8192, 36)  # all but every 4th layer
    by_hand = (24 * 129 * 3 * 5120 * 8192 + 24 * 3 * 5120 * 16384
               + 48 * (5120 * 56 * 128 + 40 * 128 * 5120) + 2 * 202048 * 5120)
    assert m.params == pytest.approx(by_hand, rel=1e-3)
    assert m.params / 1e9 == pytest.approx(400, rel=0.01)
    assert m.active_params / 1e9 == pytest.approx(17, rel=0.02)
    assert get_model("nemotron-nano-12b-v2").params / 1e9 == pytest.approx(12.3, rel=0.01)


def test_llama4_scout_from_its_config_json():
    """Scout is Maverick's layer with 16 experts in every layer: Meta publishes 109B total /
    17B active; by hand 48 MoE layers x (16 + 1 shared) x 3 x 5120 x 8192 + 48 x attention
    + 2 x 202048 x 5120."""
    m = get_model("llama4-scout")
    assert (m.dense_layers, m.shared_intermediate, m.experts, m.active_experts) == (0, 8192, 16, 1)
    by_hand = (48 * 17 * 3 * 5120 * 8192 + 48 * (5120 * 56 * 128 + 40 * 128 * 5120)
               + 2 * 202048 * 5120)
    assert m.params == pytest.approx(by_hand, rel=1e-3)
    assert m.params / 1e9 == pytest.approx(109, rel=0.015)
    assert m.active_params / 1e9 == pytest.approx(17, rel=0.02)


@pytest.mark.parametrize("extra, dense, chunked", [
    ({}, 0, 36),  # Llama4TextConfig defaults: MoE every layer (Scout), every 4th layer global
    ({"interleave_moe_layer_step": 2}, 24, 36),
    ({"moe_layers": [1, 5, 9]}, 45, 36),  # an explicit list wins over the step
    ({"no_rope_layers": [1, 0] * 24}, 0, 24),
    ({"layer_types": ["chunked_attention", "full_attention", "full_attention"] * 16}, 0, 16),
    ({"attention_chunk_size": None}, 0, 0),
])
def test_llama4_layer_rules_follow_the_hf_config_class(extra, dense, chunked):
    from wrpsim.pool.hfconfig import read_hf_config

    cfg = {"model_type": "llama4", "text_config": {
        "model_type": "llama4_text", "num_hidden_layers": 48, "hidden_size": 512,
        "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000,
        "intermediate_size": 256, "num_local_experts": 16, "num_experts_per_tok": 1, **extra}}
    out, unread = read_hf_config(cfg)
    assert out.get("dense_layers", 0) == dense and out.get("sliding_layers", 0) == chunked
    assert out["shared_intermediate"] == 256  # Llama 4's one shared expert
    if dense:
        assert out["dense_intermediate"] == 16384  # the class default intermediate_size_mlp
    assert unread == []


@pytest.mark.parametrize("extra, dense_width", [
    ({"moe_layers": []}, 16384),  # transformers: every layer a dense MLP, no experts
    ({"interleave_moe_layer_step": 49}, 16384),  # range(48, 48, 49) is empty: the same
])
def test_llama4_without_moe_layers_is_a_dense_model(extra, dense_width):
    from wrpsim.pool.hfconfig import read_hf_config

    cfg = {"model_type": "llama4_text", "num_hidden_layers": 48, "hidden_size": 512,
           "num_attention_heads": 8, "vocab_size": 1000, "intermediate_size": 256, **extra}
    out, unread = read_hf_config(cfg)
    assert "experts" not in out and out["intermediate"] == dense_width
    assert unread == []


@pytest.mark.parametrize("extra, message", [
    ({"moe_layers": [1, 1]}, "config.json key 'moe_layers' must be a list of distinct layer "
                             "indices 0 ... 47 (num_hidden_layers 48), got [1, 1]"),
    ({"moe_layers": [3, 48]}, "got [3, 48]"),
    ({"moe_layers": "1,3"}, "got '1,3'"),
    ({"interleave_moe_layer_step": 0}, "'interleave_moe_layer_step' must be an integer >= 1"),
    ({"sliding_window": 4096}, "config.json has both sliding-window (48) and chunked-attention "
                               "(36) layers; wrpsim models one window size per model"),
])
def test_bad_llama4_layer_keys_are_one_line_naming_the_key(tmp_path, extra, message):
    import json

    cfg = {"model_type": "llama4_text", "num_hidden_layers": 48, "hidden_size": 512,
           "num_attention_heads": 8, "vocab_size": 1000, "intermediate_size": 256, **extra}
    p = tmp_path / "models.yaml"
    p.write_text(f"m:\n  hf_config: {json.dumps(cfg)}\n")
    with pytest.raises(ConfigError) as e:
        load_models(p)
    assert str(e.value).startswith(f"{p}: entry 'm': ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_maverick_as_published_loads_through_the_catalog(tmp_path, monkeypatch):
    """Maverick's own text_config (no_rope_layers [] as published: the class default applies)
    in a user's catalog gives the shipped entry's architecture."""
    import dataclasses

    import yaml

    from wrpsim.pool import catalog

    cfg = {"model_type": "llama4", "text_config": {
        "model_type": "llama4_text", "num_hidden_layers": 48, "hidden_size": 5120,
        "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
        "intermediate_size": 8192, "intermediate_size_mlp": 16384, "num_local_experts": 128,
        "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "attention_chunk_size": 8192,
        "no_rope_layers": [], "use_qk_norm": False, "vocab_size": 202048,
        "max_position_embeddings": 1048576, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "tie_word_embeddings": False}, "vision_config": {"hidden_size": 1408}}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"my-maverick": {"hf_config": cfg}}))
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    catalog.models.cache_clear()
    try:
        mine = catalog.get_model("my-maverick")
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.models.cache_clear()
        ship = catalog.get_model("llama4-maverick")
        assert dataclasses.replace(mine, name=ship.name, source=ship.source) == ship
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG", raising=False)
        catalog.models.cache_clear()


def test_a_bridged_pair_all_reduces_over_its_bridge_and_a_larger_group_over_pcie():
    """H100 NVL (sold in NVLink-bridged pairs) against H100 PCIe (no bridge): the same
    reference curves (the SXM's), the bandwidth part moved to 300 GB/s for a pair on the NVL
    and to the 64 GB/s PCIe link otherwise; four GPUs on either run over PCIe."""
    from wrpsim.pool.engines import get_engine, kernels_for

    nvl = kernels_for(get_engine("vllm-0.24"), "h100-nvl-94gb")
    pcie = kernels_for(get_engine("vllm-0.24"), "h100-pcie-80gb")
    assert (get_gpu("h100-nvl-94gb").link_for(2), get_gpu("h100-nvl-94gb").link_for(4)) == (300, 64)
    assert get_gpu("h100-pcie-80gb").link_for(2) == 64
    big = 64e6  # elements: bandwidth-bound
    a2, b2 = float(nvl.allreduce(2, True)(big)), float(pcie.allreduce(2, True)(big))
    assert 4.0 < b2 / a2 < 300 / 64 * 1.01  # (the fixed latency is the same on both)
    assert float(nvl.allreduce(4, True)(big)) == pytest.approx(float(pcie.allreduce(4, True)(big)))
