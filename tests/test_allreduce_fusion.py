"""vLLM's all-reduce + RMSNorm fusion (`allreduce_fusion`): the measured TensorRT-LLM kernel up
to vLLM's size limits, where the engine and GPU run it, and clear errors where they cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from wrpsim.calibrate import aic
from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import catalog_path
from wrpsim.pool.engines import build_latency_model, get_engine, kernels_for, load_engine
from wrpsim.pool.kernels import operators
from wrpsim.validate.silicon import _fusion_setting, silicon_cases

TABLES = catalog_path() / "engines" / "vllm-0.24"
HIDDEN = 8192  # Llama-3.1-70B


def _measured(gpu: str, tp: int, elements: int) -> float:
    t = pq.read_table(TABLES / gpu / "allreduce_fused.parquet").to_pandas()
    row = t[(t.tp == tp) & (t.elements == elements)]
    assert len(row) == 1
    return float(row.ms.iloc[0]) * 1e-3


def _ar(lat, tokens: int) -> float:
    return float(operators.allreduce_s(lat, 1, np.array([float(tokens)]))[0])


@pytest.mark.parametrize("gpu", ["h100-80gb", "h200-141gb", "b200-180gb", "b300-288gb"])
def test_the_fused_kernel_is_measured_on_hopper_and_blackwell(gpu):
    k = kernels_for(get_engine("vllm-0.24"), gpu)
    assert k.measures_fused_allreduce()
    # a measured point comes back as measured (4 tokens of Llama-70B over 8 GPUs)
    assert k.allreduce_fused(8)(np.array([4.0 * HIDDEN]))[0] == pytest.approx(
        _measured(gpu, 8, 4 * HIDDEN), rel=1e-6)


@pytest.mark.parametrize("gpu", ["a100-80gb", "l40s-48gb", "mi300x-192gb"])
def test_gpus_without_it_keep_the_custom_all_reduce(gpu):
    """vLLM fuses on Hopper and Blackwell only; a GPU timed from another's tables (MI300X
    from H100's) is not taken to run a kernel measured elsewhere."""
    assert not kernels_for(get_engine("vllm-0.24"), gpu).measures_fused_allreduce()
    tp = 2 if gpu == "l40s-48gb" else 8
    lat = build_latency_model("llama3.1-70b", gpu, tp)
    assert "all-reduce fused" not in lat.calibration
    off = build_latency_model("llama3.1-70b", gpu, tp, overrides={"allreduce_fusion": False})
    assert _ar(lat, 4) == _ar(off, 4)


def test_a_decode_step_all_reduces_with_the_fused_kernel_up_to_the_limit():
    """B200, TP 8: vLLM's limit is 1 MiB of bf16 input, 64 tokens of 8,192 values: up to it
    the all-reduce takes the TensorRT-LLM kernel's measured time, above it vLLM's own."""
    on = build_latency_model("llama3.1-70b", "b200-180gb", 8, precision="fp8")
    off = build_latency_model("llama3.1-70b", "b200-180gb", 8, precision="fp8",
                              overrides={"allreduce_fusion": False})
    assert on.calibration.endswith("; all-reduce fused with RMSNorm up to 1 MiB (FlashInfer)")
    assert "all-reduce fused" not in off.calibration
    custom = off.kernels.allreduce(8, True)
    assert _ar(off, 4) == pytest.approx(float(custom(np.array([4.0 * HIDDEN]))[0]))
    assert _ar(on, 4) == pytest.approx(_measured("b200-180gb", 8, 4 * HIDDEN), rel=1e-6)
    assert _ar(on, 4) < 0.8 * _ar(off, 4)  # 6.0 vs 8.6 us, measured
    # a whole step: 160 all-reduces (attention and MLP of 80 layers) faster, nothing else
    b_on = on.breakdown(0, 0, 4, 4 * 1500)
    b_off = off.breakdown(0, 0, 4, 4 * 1500)
    assert b_on["all_reduce"] == pytest.approx(160 * _ar(on, 4))
    assert {k: v for k, v in b_on.items() if k != "all_reduce"} == {
        k: v for k, v in b_off.items() if k != "all_reduce"}


def test_the_limit_is_mib_of_the_bf16_input():
    """H100, TP 2: vLLM's limit is 64 MiB, 4,096 tokens of 8,192 bf16 values; 4,096 are fused
    (the kernel measured faster there), 4,097 are not."""
    on = build_latency_model("llama3.1-70b", "h100-80gb", 2)
    off = build_latency_model("llama3.1-70b", "h100-80gb", 2,
                              overrides={"allreduce_fusion": False})
    assert "up to 64 MiB" in on.calibration
    assert _ar(on, 4096) < 0.8 * _ar(off, 4096)
    assert _ar(on, 4097) == _ar(off, 4097)


def test_no_fusion_across_servers_or_for_other_group_sizes():
    """FlashInfer's fused all-reduce runs on one server's groups of 2, 4 or 8 GPUs: a group
    spanning servers, or of 16, keeps vLLM's own all-reduce, and asking for it there is one
    line saying so."""
    span = build_latency_model("llama3.1-70b", "h100-80gb", 16, scaleup=8)
    assert "all-reduce fused" not in span.calibration
    sixteen = build_latency_model("llama3.1-405b", "b200-180gb", 16)
    assert "all-reduce fused" not in sixteen.calibration
    with pytest.raises(ConfigError, match=r"^pool\.pools\.a\.latency\.allreduce_fusion: true "
                       r"asks for vLLM's all-reduce \+ RMSNorm fusion, but the all-reduce group "
                       r"spans servers"):
        build_latency_model("llama3.1-70b", "h100-80gb", 16, scaleup=8,
                            overrides={"allreduce_fusion": True}, where="pool.pools.a.latency")
    with pytest.raises(ConfigError, match=r"groups of 2, 4, 8 GPUs, this one has 16"):
        build_latency_model("llama3.1-405b", "b200-180gb", 16, overrides={"allreduce_fusion_mb": 4})


def test_a_pool_sets_the_limit():
    """`allreduce_fusion_mb` is vLLM's `fi_allreduce_fusion_max_size_mb`: at 0.125 MiB (8
    tokens of 8,192 values) 8 tokens are fused and 16 not, where the default 1 MiB fuses both;
    and above the tables' crossing (~64 tokens here) the fused kernel is never taken slower
    than vLLM's own (InferenceMAX's B200 scripts set 8 MiB at TP 8)."""
    lat = build_latency_model("llama3.1-70b", "b200-180gb", 8,
                              overrides={"allreduce_fusion_mb": 0.125})
    default = build_latency_model("llama3.1-70b", "b200-180gb", 8)
    off = build_latency_model("llama3.1-70b", "b200-180gb", 8,
                              overrides={"allreduce_fusion": False})
    assert "up to 0.125 MiB" in lat.calibration
    assert _ar(lat, 8) == _ar(default, 8) < _ar(off, 8)
    assert _ar(lat, 16) == _ar(off, 16) > _ar(default, 16)
    wide = build_latency_model("llama3.1-70b", "b200-180gb", 8,
                               overrides={"allreduce_fusion_mb": 8})
    assert _ar(wide, 512) == _ar(off, 512)  # measured 55 us fused, 39 us vLLM's own


def test_fusion_needs_a_group_on_one_gpu_kind_that_runs_it():
    """TP 1 has no all-reduce (no label, no error); asking for it on a GPU without the kernel
    is one line naming the field and the GPUs that have it."""
    assert "all-reduce fused" not in build_latency_model("llama3.1-8b", "h100-80gb", 1).calibration
    build_latency_model("llama3.1-8b", "a100-80gb", 1, overrides={"allreduce_fusion": True})
    with pytest.raises(ConfigError) as e:
        build_latency_model("llama3.1-70b", "a100-80gb", 4, overrides={"allreduce_fusion": True},
                            where="pool.pools.a.latency")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("pool.pools.a.latency.allreduce_fusion: true asks for vLLM's "
                          "all-reduce + RMSNorm fusion, but a100-80gb's kernel tables do not")
    assert "b200-180gb, b300-288gb, gb200-186gb, h100-80gb, h200-141gb" in msg


def test_vllm_0_11_does_not_fuse_unless_asked_with_a_limit():
    """The fusion became -O2's default in vLLM 0.16 (vllm-project/vllm#34299); under
    vllm-0.11 a pool gives the limit it ran with (its engine file has none)."""
    lat = build_latency_model("llama3.1-70b", "h100-80gb", 8, engine="vllm-0.11")
    assert "all-reduce fused" not in lat.calibration
    mine = build_latency_model("llama3.1-70b", "h100-80gb", 8, engine="vllm-0.11",
                               overrides={"allreduce_fusion_mb": 1})
    assert "all-reduce fused with RMSNorm up to 1 MiB" in mine.calibration
    with pytest.raises(ConfigError, match=r"engine vllm-0\.11 gives no size limit for h100-80gb "
                       r"at a group of 8: give one as allreduce_fusion_mb"):
        build_latency_model("llama3.1-70b", "h100-80gb", 8, engine="vllm-0.11",
                            overrides={"allreduce_fusion": True})


def test_an_engine_file_with_bad_limits_is_one_line(tmp_path):
    base = (catalog_path() / "engines" / "vllm-0.24.yaml").read_text()
    bad = base.replace("allreduce_fusion_mb: {2: 64, 4: 32, 8: 1}",
                       "allreduce_fusion_mb: {8: fast}")
    assert bad != base
    path = tmp_path / "mine.yaml"
    path.write_text(bad)
    with pytest.raises(ConfigError) as e:
        load_engine(path)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"{path}: gpus.b200-180gb.allreduce_fusion_mb must map")


def test_the_kernel_table_is_read_from_tensorrt_llm_folders(tmp_path):
    """AIConfigurator times vLLM's own all-reduce under `comm/vllm/`; the kernel FlashInfer's
    fusion runs is TensorRT-LLM's, under `comm/trtllm/` (the newest release candidate)."""
    for version, ms in (("1.3.0rc10", 0.01), ("1.3.0rc20", 0.02), ("1.2.0rc5", 0.03)):
        d = tmp_path / "comm" / "trtllm" / version
        d.mkdir(parents=True)
        rows = pd.DataFrame({"num_gpus": [2, 2], "message_size": [128, 256],
                             "latency": [ms, ms], "device": ["NVIDIA B200"] * 2})
        rows.to_parquet(d / "custom_allreduce_perf.parquet")
    tab, entry = aic.read_table(tmp_path, "allreduce_fused")
    assert list(tab.columns) == ["tp", "elements", "ms"]
    assert tab.ms.tolist() == pytest.approx([0.02, 0.02])
    assert entry["framework"] == "trtllm" and entry["version"] == "1.3.0rc20"
    assert aic.read_table(tmp_path, "allreduce") is None  # (vLLM's own: not under trtllm)
    assert sorted(["1.3.0", "1.3.0rc20", "1.3.0rc10", "1.2.0"], key=aic._version_key) == [
        "1.2.0", "1.3.0rc10", "1.3.0rc20", "1.3.0"]


def test_silicon_rows_fuse_as_their_vllm_did():
    """The script's limits for InferenceMAX's B200 Llama; the default from vLLM 0.16 (B300:
    0.18); off before and where the version was not recorded (2025 runs)."""
    assert _fusion_setting("llama3.1-70b", "b200_sxm", float("nan"), 8) == {
        "allreduce_fusion": True, "allreduce_fusion_mb": 8}
    assert _fusion_setting("gpt-oss-120b", "h100_sxm", "0.18.0", 2) == {}
    assert _fusion_setting("kimi-k2.5", "b200_sxm", "0.16.0", 8) == {}
    assert _fusion_setting("kimi-k2.5", "b200_sxm", "0.15.1", 8) == {"allreduce_fusion": False}
    assert _fusion_setting("kimi-k2.5", "b300_sxm", "0.17.0", 8) == {"allreduce_fusion": False}
    assert _fusion_setting("kimi-k2.5", "b300_sxm", "0.19.0", 8) == {}
    assert _fusion_setting("gpt-oss-120b", "h100_sxm", float("nan"), 2) == {
        "allreduce_fusion": False}
    b200 = [c for c in silicon_cases() if c.model == "llama3.1-70b" and c.gpu == "b200-180gb"
            and c.pool["tp"] == 8]
    assert b200 and all(c.pool["latency"]["allreduce_fusion_mb"] == 8 for c in b200)


def test_an_invalid_attn_dp_is_named_even_when_the_fusion_is_asked_for():
    """The all-reduce group is tp / attn_dp: with an attn_dp that does not divide tp there is
    none, and the error is about attn_dp, not about the fusion's group spanning servers."""
    with pytest.raises(ConfigError) as e:
        build_latency_model("qwen3-30b-a3b", "h100-80gb", 4, attn_dp=3,
                            overrides={"allreduce_fusion": True},
                            where="pool.pools.p.latency", prefix="pool.pools.p.")
    assert str(e.value) == ("pool.pools.p.attn_dp must be an integer >= 1 that divides tp (4), "
                            "got 3")


def test_kimi_rows_fuse_where_their_script_asked_and_their_vllm_could():
    """InferenceMAX's Kimi-K2.5 scripts pass `fuse_allreduce_rms true` in every version: the
    B200 INT4 rows of vLLM 0.15.1 fuse (before the default), the B300 rows of 0.17 do not (no
    SM 10.3 fusion before 0.18), those of 0.19 do."""
    kimi = [c for c in silicon_cases() if c.model == "kimi-k2.5"]
    b200_int4 = [c for c in kimi if c.gpu == "b200-180gb" and c.pool["precision"] == "int4"]
    assert b200_int4 and all("allreduce_fusion" not in c.pool["latency"] for c in b200_int4)
    b300 = {(c.info["vllm"], c.pool["latency"].get("allreduce_fusion"))
            for c in kimi if c.gpu == "b300-288gb"}
    assert b300 == {("v0.17.0-cu130", False), ("v0.19.0-cu130", None)}
    # its own memory share (0.95 for INT4, where the silicon set's default is 0.90) and, from
    # 04-16 on B200, FP8 KV, 2,048-token graphs and 2 x ISL batched tokens
    assert {c.pool["scheduler"]["gpu_mem_util"] for c in b200_int4} == {0.95}
    new = [c for c in kimi if c.gpu == "b200-180gb" and c.pool["precision"] == "fp4"
           and c.pool["latency"]["cudagraph_max_tokens"] == 2048]
    assert new and all(c.pool["scheduler"]["token_budget"] == 2 * c.info["isl"] for c in new)
