"""Gated DeltaNet (Qwen3-Next / Qwen3.5 linear attention) prefill from vLLM 0.24's measured
kernels: the causal convolution and the chunked delta rule of one GPU's heads (the compacted
`gdn_prefill` tables), against the raw AIConfigurator rows where they are here, and how a
step charges them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import get_gpu, get_model, load_models
from wrpsim.pool.engines import get_engine, kernels_for
from wrpsim.pool.hfconfig import read_hf_config
from wrpsim.pool.kernels import operators
from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

RAW = Path(__file__).resolve().parents[2] / "shared/data/measured/aiconfigurator/systems/data"


def _lat(spec, gpu="h200-141gb", tp=1, **kw):
    kernels = kernels_for(get_engine("vllm-0.24"), gpu)
    return KernelLatency(spec, get_gpu(gpu), tp, kernels, EngineConstants(), **kw)


def test_config_json_marks_gated_deltanet_layers():
    base = {"hidden_size": 2048, "intermediate_size": 5120, "num_hidden_layers": 8,
            "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 1000,
            "full_attention_interval": 4}
    gdn = {"linear_num_key_heads": 16, "linear_num_value_heads": 32,
           "linear_key_head_dim": 128, "linear_value_head_dim": 128}
    mamba2 = {"mamba_n_heads": 48, "mamba_d_head": 64, "mamba_d_state": 128}
    assert read_hf_config({**base, **gdn})[0]["gated_delta"] is True
    assert "gated_delta" not in read_hf_config({**base, **mamba2})[0]
    assert get_model("qwen3.5-35b-a3b").gated_delta
    assert not get_model("nemotron-nano-9b-v2").gated_delta


@pytest.mark.skipif(not RAW.is_dir(), reason="raw AIConfigurator tables not here")
@pytest.mark.parametrize("gpu, system", [("h200-141gb", "h200_sxm"), ("l40s-48gb", "l40s")])
def test_table_is_the_raw_kernels_summed(gpu, system):
    """The compacted cell = the convolution + the delta rule as measured (one head layout,
    the median over the models that share it)."""
    import pandas as pd

    raw = pd.read_parquet(RAW / system / "linear_attention/vllm/0.24.0/gdn_perf.parquet")
    raw = raw[(raw.phase == "context") & (raw.num_k_heads == 16) & (raw.num_v_heads == 32)]
    g = kernels_for(get_engine("vllm-0.24"), gpu).gdn_prefill(16, 128, 32, 128)
    for b, s in ((1, 1024), (1, 8192), (8, 1024), (4, 4096)):
        cell = raw[(raw.batch_size == b) & (raw.seq_len == s)]
        want = cell.groupby(cell.kernel_source.str.contains("conv1d"))["latency"].median().sum()
        got = g.t[list(g.b).index(b), list(g.s).index(s)]
        assert got == pytest.approx(want * 1e-3, rel=0.02), (b, s)


def test_a_step_charges_the_measured_kernels_per_chunk():
    """30 Gated DeltaNet layers of Qwen3.5-35B-A3B on one H200: a step's prompt chunks cost
    the measured time of that many fresh prompts of their mean length (a recurrent layer
    carries a fixed state: what is cached before a chunk does not change it); one long
    prompt is slower than eight short ones of the same tokens (the kernel parallelises
    over sequences and heads); at TP 2 the GPU holds half the heads."""
    m = get_model("qwen3.5-35b-a3b")
    lat = _lat(m)
    g = lat.kernels.gdn_prefill(16, 128, 32, 128)
    one = lat._gdn_prefill(1, 8192)
    assert one == pytest.approx(30 * g.t[0, list(g.s).index(8192)], rel=1e-12)
    assert lat._gdn_prefill(8, 8192) < 0.7 * one
    fresh = lat._prefill_attn(1, 8192, 8192 * 8193 / 2)
    after = lat._prefill_attn(1, 8192, 8192 * (24576 + 8193 / 2))
    gdn_part = lat._gdn_prefill(1, 8192)
    assert fresh - gdn_part < after - gdn_part  # (attention grows with the prefix, GDN not)
    half = lat.kernels.gdn_prefill(8, 128, 16, 128)
    assert _lat(m, tp=2)._gdn_prefill(1, 8192) == pytest.approx(
        30 * half.t[0, list(half.s).index(8192)], rel=1e-12)
    # beyond the longest measured prompt the time grows with the tokens
    assert lat._gdn_prefill(1, 65536) == pytest.approx(2 * lat._gdn_prefill(1, 32768),
                                                        rel=1e-12)


def test_breakdown_and_stream_bytes():
    """The kernels are the breakdown's `linear_attention`; the scan's bytes then leave the
    element-wise term (the kernels move them) but stay in the power model's byte count; a
    Mamba-2 hybrid and a model without the table keep the streamed scan."""
    m = get_model("qwen3.5-35b-a3b")
    lat = _lat(m)
    d = lat.breakdown(8192, 8192 * 8193 / 2, 0, 0, 1)
    assert d["linear_attention"] == pytest.approx(lat._gdn_prefill(1, 8192), rel=1e-12)
    assert sum(d.values()) == pytest.approx(lat.iteration_s(8192, 8192 * 8193 / 2, 0, 0),
                                            rel=1e-9)
    scan = 30 * 6 * 32 * 128 * 2.0
    assert (operators.stream_bytes_per_token(lat, all_bytes=True)
            - operators.stream_bytes_per_token(lat, all_bytes=False)) >= scan
    plain = _lat(dataclasses.replace(m, gated_delta=False))
    assert plain._gdn is None and plain.breakdown(8192, 1.0, 0, 0)["linear_attention"] == 0.0
    assert _lat(get_model("nemotron-nano-9b-v2"), gpu="h100-80gb")._gdn is None
    assert _lat(m, gpu="a100-80gb", tp=2)._gdn is None  # (no A100 table: streamed scan)


def test_catalog_checks_the_flag(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("m:\n  layers: 4\n  hidden: 1024\n  heads: 8\n  kv_heads: 8\n"
                    "  head_dim: 128\n  intermediate: 2048\n  vocab: 1000\n  gated_delta: true\n")
    with pytest.raises(ConfigError, match=r"'gated_delta' .* needs mamba_layers > 0"):
        load_models(path)
    assert np.isfinite(_lat(get_model("qwen3.5-35b-a3b")).prefill_s(1, 4096))


def test_label_says_where_the_kernels_come_from():
    m = get_model("qwen3.5-35b-a3b")
    assert "Gated DeltaNet prefill from its measured kernels" in _lat(m).calibration
    moved = _lat(m, gpu="rtx4090-24gb").calibration  # (its tables lack them: the L40S's)
    assert "Gated DeltaNet prefill from another GPU's measured kernels" in moved
    assert "Gated DeltaNet prefill as its scan's bytes (no kernel table)" in _lat(
        m, gpu="a100-80gb", tp=2).calibration
