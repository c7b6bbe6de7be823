"""Multi-head latent attention timed from AIConfigurator's measured MLA module tables
(`mla_prefill` / `mla_decode`, `wrpsim.calibrate.aic`): which models they apply to, what the
model takes from them (the growth over batch and length, measured) and what it does not (the
single-module benchmark's fixed part), and the converter's rules."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from wrpsim.calibrate import aic
from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import catalog_path, get_gpu, get_model
from wrpsim.pool.engines import build_latency_model, get_engine, kernels_for
from wrpsim.pool.kernels import attention
from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

TABLES = catalog_path() / "engines" / "vllm-0.24"


def _module(gpu: str, phase: str, heads: int, kv="bf16", gemm="fp8_block") -> pd.DataFrame:
    t = pd.read_parquet(TABLES / gpu / f"mla_{phase}.parquet")
    return t[(t.kv_dtype == kv) & (t.gemm == gemm) & (t.heads == heads)]


@pytest.mark.parametrize("gpu", ["h100-80gb", "h200-141gb", "b200-180gb"])
def test_deepseek_attention_grows_as_the_measured_module(gpu):
    """Between two measured cells of one batch the module's projections are the same GEMMs, so
    the model's attention term differs by the measured module times' difference (up to the
    monotone fit's move of a cell out of order, `wrpsim.pool.kernels.monotone`: within 2 % of
    the module's time)."""
    lat = build_latency_model("deepseek-v3", gpu, 8, precision="fp8_block")
    assert lat._mla_tables
    rows = _module(gpu, "decode", 128 // 8)
    for b in (1, 16, 128):
        r = rows[rows.batch == b].set_index("ctx")["ms"]
        got = lat._dec.row(float(b))
        s = lat._dec.s.tolist()
        lo, hi = s.index(1024), s.index(16384)
        meas = (r[16384] - r[1024]) * 1e-3
        assert got[hi] - got[lo] == pytest.approx(meas, abs=0.02 * r[16384] * 1e-3)


def test_the_smallest_cell_keeps_the_composed_attention_kernel():
    """The module benchmark's fixed part (a CUDA-graph launch per module and every small
    kernel's minimum) is not added: at batch 1 and the shortest length the attention term is
    the composed one's (attention table), and it never falls below it elsewhere."""
    with_tables = build_latency_model("deepseek-v3", "h200-141gb", 8, precision="fp8_block")
    _, composed_dec = attention.composed_mla_grids(with_tables)
    dec = with_tables._dec
    b0, s0 = float(dec.b[0]), float(dec.s[0])
    assert dec.t[0, 0] == pytest.approx(float(np.interp(s0, composed_dec.s,
                                                         composed_dec.row(b0))))
    assert np.all(np.diff(dec.t, axis=0) >= 0) and np.all(np.diff(dec.t, axis=1) >= 0)
    # FlashMLA reads the latent KV far faster than an MHA kernel moved to 576-wide heads: at a
    # large batch and long context the measured growth is below the composed estimate
    i, j = list(dec.b).index(128.0), list(dec.s).index(8192.0)
    composed = float(np.interp(8192.0, composed_dec.s, composed_dec.row(128.0)))
    assert dec.t[i, j] < 0.8 * composed


def test_other_mla_shapes_and_gpus_without_tables_compose_the_module():
    """The tables time DeepSeek-V3's module: a model with another latent rank, or a GPU whose
    engine has no MLA tables (A100 on vLLM 0.14), composes it from GEMMs and attention."""
    assert build_latency_model("kimi-k2.5", "h200-141gb", 8, precision="int4")._mla_tables
    a100 = build_latency_model("deepseek-v3", "a100-80gb", 16)
    assert not a100._mla_tables
    spec = dataclasses.replace(get_model("deepseek-v3"), kv_lora_rank=256)
    kernels = kernels_for(get_engine("vllm-0.24"), "h200-141gb")
    other = KernelLatency(spec, get_gpu("h200-141gb"), 8, kernels, EngineConstants(),
                          precision="fp8_block")
    assert not other._mla_tables
    llama = build_latency_model("llama3.1-70b", "h200-141gb", 4)
    assert not llama._mla_tables


def test_converter_pools_prompt_backends_and_names_the_module():
    """Prompt rows of every backend are pooled (median per cell); decode rows come from one
    backend per dtype pair; an unknown module model fails with one line."""
    def row(src, isl, ms, phase="context"):
        return {"kernel_source": src, "model": "deepseek-ai/DeepSeek-V3", "mla_dtype": "bfloat16",
                "kv_cache_dtype": "bfloat16", "gemm_type": "bfloat16", "num_heads": 16,
                "batch_size": 1, "isl": isl if phase == "context" else 1,
                "step": 0 if phase == "context" else isl, "latency": ms}

    raw = pd.DataFrame([row("FLASH_ATTN_MLA", 512, 0.17), row("FLASH_ATTN", 512, 0.19),
                        row("FLASH_ATTN", 2048, 0.40)])
    tab, module = aic._mla(raw, decode=False)
    assert module["kv_lora_rank"] == 512 and module["hidden"] == 7168
    got = dict(zip(tab["isl"], tab["ms"]))
    assert got == {512: pytest.approx(0.18), 2048: pytest.approx(0.40)}
    assert aic._KERNEL_KEYS["mla_prefill"] == []
    assert aic._KERNEL_KEYS["mla_decode"] == ["kv_cache_dtype", "gemm_type"]
    bad = raw.assign(model="someone/Other-MLA")
    with pytest.raises(ConfigError, match=r"MLA module tables of .*known"):
        aic._mla(bad, decode=False)


def test_a_gpu_without_tables_moves_the_module_over_and_a_cache_hit_reads_no_table(
        tmp_path, monkeypatch):
    """B300 (no MLA-module tables of its own: its rows are left out) takes the B200's measured
    module by the roofline ratio; the decision is stored with the precomputed curves, so a
    cache hit does not read the MLA tables again."""
    b300 = build_latency_model("kimi-k2.5", "b300-288gb", 4, precision="fp4")
    assert b300._mla_tables and "uncalibrated: roofline" in b300.calibration
    monkeypatch.setenv("WRPSIM_MODEL_CACHE", str(tmp_path))
    spec, gpu = get_model("deepseek-v3"), get_gpu("h200-141gb")
    kernels = kernels_for(get_engine("vllm-0.24"), "h200-141gb")
    first = KernelLatency(spec, gpu, 8, kernels, EngineConstants(), precision="fp8_block")
    assert first._mla_tables and list(tmp_path.iterdir())

    def no_read(*_a, **_k):
        raise AssertionError("a cache hit read the MLA tables")

    monkeypatch.setattr(type(kernels), "mla", no_read)
    again = KernelLatency(spec, gpu, 8, kernels, EngineConstants(), precision="fp8_block")
    assert again._mla_tables
    np.testing.assert_array_equal(again._dec.t, first._dec.t)
