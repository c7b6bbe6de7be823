"""vLLM's Triton fused-MoE kernel (`moe_triton`): compacted from the newest AIConfigurator
version that timed it, chosen by the engine (vllm-0.11) or a pool, never for precisions it
does not run, and one clear line where a GPU's tables lack it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wrpsim.calibrate import aic
from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import catalog_path
from wrpsim.pool.engines import build_latency_model, get_engine, kernels_for, triton_moe_dtypes
from wrpsim.validate.silicon import silicon_cases

TABLES = catalog_path() / "engines" / "vllm-0.24"
QWEN235 = (4096, 1536, 8, 128)  # Qwen3-235B-A22B's experts: hidden, inter, top-k, experts


def _moe_rows(kernel: str, dtype: str, ms: float) -> list[dict]:
    return [{"moe_dtype": dtype, "kernel_source": kernel, "num_tokens": t, "hidden_size": 4096,
             "inter_size": 1536, "topk": 8, "num_experts": 128, "moe_tp_size": 1,
             "moe_ep_size": 1, "distribution": "power_law_1.01", "latency": ms * t,
             "device": "NVIDIA B200"} for t in (1, 2, 4)]


def test_the_table_comes_from_the_newest_version_that_timed_triton(tmp_path):
    """0.24 timed FlashInfer's experts only; 0.22 and 0.19 timed Triton's (and 0.22 Marlin's
    INT4 kernel, which is not Triton's): 0.22's Triton rows are kept, in its precisions."""
    for version, rows in (
            ("0.24.0", _moe_rows("vllm_fp8moe_flashinfer_trtllm", "fp8_block", 0.01)),
            ("0.22.0", _moe_rows("vllm_fused_moe", "bfloat16", 0.02)
             + _moe_rows("vllm_fused_moe", "fp8_block", 0.03)
             + _moe_rows("vllm_marlin_int4_moe", "int4_wo", 0.04)),
            ("0.19.0", _moe_rows("vllm_fused_moe", "bfloat16", 0.05))):
        d = tmp_path / "moe" / "vllm" / version
        d.mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(d / "moe_perf.parquet")
    tab, entry = aic.read_table(tmp_path, "moe_triton")
    assert entry["version"] == "0.22.0"
    assert sorted(set(tab["dtype"])) == ["bf16", "fp8_block"]
    assert tab[tab.dtype == "bf16"].ms.tolist() == pytest.approx([0.02, 0.04, 0.08])
    assert set(entry["kernels"].values()) == {"vllm_fused_moe"}
    default, _ = aic.read_table(tmp_path, "moe")  # (the engine's own table: the newest)
    assert set(default["dtype"]) == {"fp8_block"}


def test_an_older_folder_without_kernel_labels_or_unreadable_holds_none(tmp_path):
    """The table is optional: a version whose file names no kernel, or is no Parquet, is
    passed over (the default MoE table reads such a file as before)."""
    rows = pd.DataFrame(_moe_rows("vllm_fused_moe", "bfloat16", 0.02)).drop(
        columns="kernel_source")
    (tmp_path / "moe" / "vllm" / "0.19.0").mkdir(parents=True)
    rows.to_parquet(tmp_path / "moe" / "vllm" / "0.19.0" / "moe_perf.parquet")
    (tmp_path / "moe" / "vllm" / "0.12.0").mkdir(parents=True)
    (tmp_path / "moe" / "vllm" / "0.12.0" / "moe_perf.parquet").write_text("not parquet")
    assert aic.read_table(tmp_path, "moe_triton") is None
    tab, _ = aic.read_table(tmp_path, "moe")
    assert len(tab) == 3


def test_no_table_where_no_version_timed_triton(tmp_path):
    d = tmp_path / "moe" / "vllm" / "0.24.0"
    d.mkdir(parents=True)
    pd.DataFrame(_moe_rows("vllm_fp8moe_flashinfer_trtllm", "fp8_block", 0.01)).to_parquet(
        d / "moe_perf.parquet")
    assert aic.read_table(tmp_path, "moe_triton") is None


@pytest.mark.parametrize("gpu", ["h100-80gb", "h200-141gb", "b200-180gb", "b300-288gb"])
def test_shipped_triton_tables_are_measurements(gpu):
    """A measured point comes back as measured (Qwen3-235B-A22B's experts, BF16, EP 1)."""
    t = pd.read_parquet(TABLES / gpu / "moe_triton.parquet")
    assert set(t["dtype"]) == {"bf16", "fp8", "fp8_block"}
    row = t[(t.dtype == "bf16") & (t.hidden == QWEN235[0]) & (t.inter == QWEN235[1])
            & (t.moe_tp == 4) & (t.moe_ep == 1) & (t.tokens == 64)]
    assert len(row) == 1
    k = kernels_for(get_engine("vllm-0.24"), gpu, "moe_triton")
    got = k.moe("bf16", *QWEN235, 4, 1)(np.array([64.0]))[0]
    assert got == pytest.approx(float(row.ms.iloc[0]) * 1e-3, rel=1e-6)
    assert triton_moe_dtypes(get_engine("vllm-0.24"), gpu) == {"bf16", "fp8", "fp8_block"}


def test_on_b200_triton_is_slower_than_flashinfer():
    """AIConfigurator's B200 tables: Triton's BF16 experts take 1.2-1.6 x FlashInfer's
    TensorRT-LLM experts for Qwen3-235B-A22B at TP 4 (64 to 8,192 tokens)."""
    eng = get_engine("vllm-0.24")
    x = np.array([64.0, 512.0, 8192.0])
    tri = kernels_for(eng, "b200-180gb", "moe_triton").moe("bf16", *QWEN235, 4, 1)(x)
    fi = kernels_for(eng, "b200-180gb").moe("bf16", *QWEN235, 4, 1)(x)
    assert np.all(tri > 1.1 * fi) and np.all(tri < 2.0 * fi)


def test_vllm_0_11_times_moe_layers_from_triton_and_nothing_else():
    """vllm-0.11 sets `moe_triton`: an MoE model's MoE term is Triton's, every other term as
    with the engine's default kernel; a dense model is untouched and its label says nothing."""
    on = build_latency_model("qwen3-235b-a22b", "b200-180gb", 4, engine="vllm-0.11")
    off = build_latency_model("qwen3-235b-a22b", "b200-180gb", 4, engine="vllm-0.11",
                              overrides={"moe_triton": False})
    assert "; MoE layers: Triton fused MoE (vllm 0.22.0)" in on.calibration
    assert "Triton" not in off.calibration
    b_on, b_off = on.breakdown(0, 0, 64, 64 * 1024), off.breakdown(0, 0, 64, 64 * 1024)
    assert b_on["moe_experts"] > 1.1 * b_off["moe_experts"]
    assert {k: v for k, v in b_on.items() if k != "moe_experts"} == pytest.approx(
        {k: v for k, v in b_off.items() if k != "moe_experts"})
    dense = build_latency_model("llama3.1-70b", "b200-180gb", 4, engine="vllm-0.11")
    assert "Triton" not in dense.calibration


def test_precisions_triton_does_not_run_keep_the_default_kernel():
    """gpt-oss's MXFP4 experts are not Triton's fused MoE: asking for it changes nothing."""
    on = build_latency_model("gpt-oss-120b", "h100-80gb", 1, engine="vllm-0.11",
                             precision="mxfp4")
    off = build_latency_model("gpt-oss-120b", "h100-80gb", 1, engine="vllm-0.11",
                              precision="mxfp4", overrides={"moe_triton": False})
    assert on.breakdown(0, 0, 32, 32 * 1024) == off.breakdown(0, 0, 32, 32 * 1024)
    assert "Triton" not in on.calibration
    with pytest.raises(ConfigError) as e:  # (asked for by a pool: why not)
        build_latency_model("gpt-oss-120b", "h100-80gb", 1, precision="mxfp4",
                            overrides={"moe_triton": True}, where="latency")
    assert str(e.value) == (
        "latency.moe_triton: true asks for vLLM's Triton fused-MoE kernel, but its tables "
        "time it for bf16, fp8, fp8_block experts, and precision mxfp4's experts are mxfp4 "
        "(a kernel of their own)")


def test_a_pool_asks_for_it_and_gets_one_line_where_the_gpu_lacks_it():
    lat = build_latency_model("qwen3-235b-a22b", "b200-180gb", 4,
                              overrides={"moe_triton": True})
    assert "MoE layers: Triton fused MoE" in lat.calibration
    with pytest.raises(ConfigError) as e:
        build_latency_model("qwen3-30b-a3b", "a100-80gb", 1, overrides={"moe_triton": True},
                            where="pool.pools.p.latency")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("pool.pools.p.latency.moe_triton: true")
    assert "b200-180gb, b300-288gb, gb200-186gb, h100-80gb, h200-141gb" in msg
    # the engine's own setting on such a GPU: the default kernel, silently
    a100 = build_latency_model("qwen3-30b-a3b", "a100-80gb", 1, engine="vllm-0.11")
    assert "Triton" not in a100.calibration


def test_minimax_rows_of_the_triton_script_run_triton_with_expert_parallelism():
    """InferenceMAX's B200 MiniMax-M2.5 FP8 script of 2026-03-11 turned FlashInfer's and
    DeepGEMM's experts off and passed --enable-expert-parallel at every EP size; from
    2026-04-03 neither."""
    b200 = [c for c in silicon_cases() if c.model == "minimax-m2.5" and c.gpu == "b200-180gb"
            and c.pool["precision"] == "fp8_block"]
    old = [c for c in b200 if c.info["osl"] == 8192]  # (1k / 8k: measured in March only)
    new = [c for c in b200 if c.pool["kv_dtype"] == "fp8"]  # (FP8 KV: the April script)
    assert old and new
    assert all(c.pool["latency"].get("moe_triton") and c.pool["ep"] == c.pool["tp"]
               for c in old)
    assert not any(c.pool["latency"].get("moe_triton") for c in new)


def test_minimax_h200_rows_after_the_ep_change_ran_expert_parallel():
    """InferenceMAX's H200 MiniMax-M2.5 script passed --enable-expert-parallel at every EP
    size from 2026-03-05 (`-ge 1`): its TP 8 rows (measured 03-28) ran EP 8; its TP 4 rows
    (03-01, before the change) did not."""
    h200 = [c for c in silicon_cases() if c.model == "minimax-m2.5" and c.gpu == "h200-141gb"]
    assert {(c.pool["tp"], c.pool["ep"]) for c in h200} == {(4, 1), (8, 8)}
    assert not any(c.pool["latency"].get("moe_triton") for c in h200)


def test_kimi_rows_ran_tensor_parallel_experts_whatever_their_label():
    """InferenceMAX's Kimi-K2.5 scripts passed no --enable-expert-parallel before 2026-06-03:
    rows labelled EP 4 (B200 of 03-11, B300 of 04-03) replay with EP 1."""
    import pandas as pd

    from wrpsim.validate.sets import measured_dir

    df = pd.read_csv(measured_dir() / "silicon_vllm.csv")
    kimi = df[df.model_path.str.contains("Kimi") & (df.attention_dp_size.fillna(1) == 1)]
    assert (kimi.moe_ep_size > 1).any()  # (the labels say EP 4)
    cases = [c for c in silicon_cases() if c.model == "kimi-k2.5"]
    assert cases and all(c.pool["ep"] == 1 for c in cases)


def test_the_triton_source_keeps_its_table_through_its_variants_and_its_cache_key():
    """`short_loop` / `loop_timed` (held-out checks, the MLA module's parts) time MoE layers
    from the same table; the model cache tells the two tables apart by the table itself."""
    from wrpsim.pool.kernels.borrowed import loop_timed, short_loop
    from wrpsim.pool.kernels.precomputed import source_key

    e = get_engine("vllm-0.24")
    tri = kernels_for(e, "b200-180gb", "moe_triton")
    assert short_loop(tri).moe_table == "moe_triton" == loop_timed(tri).moe_table
    assert kernels_for(e, "b200-180gb").moe_table == "moe"
    a = source_key(tri)
    b = dict(source_key(kernels_for(e, "b200-180gb")), label=a["label"])
    assert a != b and {k: v for k, v in a.items() if k != "moe_table"} == {
        k: v for k, v in b.items() if k != "moe_table"}
