"""Kernel tables from an LLMServingSim layer profile (`wrpsim.calibrate.llmss`) and a GPU whose
own tables cover only some operators (`wrpsim.pool.kernels.borrowed.Partial`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wrpsim.calibrate.llmss import compact, is_profile
from wrpsim.errors import ConfigError
from wrpsim.pool.kernels import operators

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "pools" / "catalog" / "engines" / "vllm-0.24"
#: the RTX 4090's engine tables: LLMServingSim's Llama-3.1-8B TP 1 profile on it
SHIPPED = ENGINES / "rtx4090-24gb"
#: the shipped compactions of LLMServingSim's six RTX PRO 6000 profiles (the held-out check's)
LAYOUTS = ROOT / "pools" / "measured" / "llmservingsim" / "kernels" / "rtxpro6000-96gb"
LLAMA_TP1 = LAYOUTS / "Llama-3.1-8B-tp1"
#: (n, k) of Llama-3.1-8B's projections at TP 1 (config.json: hidden 4096, 32 / 8 heads of 128,
#: intermediate 14336, vocab 128256)
SHAPES = {"qkv_proj": (6144, 4096), "o_proj": (4096, 4096), "gate_up_proj": (28672, 4096),
          "down_proj": (4096, 14336), "lm_head": (128256, 4096)}
META = """profiler_version: 1.0.0
vllm_version: 0.19.0
gpu: NVIDIA RTX PRO 6000 Blackwell Server Edition
hardware: RTXPRO6000
model: meta-llama/Llama-3.1-8B
variant: {variant}
tp_degrees: [1]
"""


def _profile(tmp_path: Path, variant: str = "bf16", model: str = "") -> Path:
    """An LLMServingSim-layout profile rebuilt from the shipped Llama-3.1-8B TP 1 tables, with
    what compaction
    must leave out (element-wise layers, sampling, mixed and prefix attention rows) and a slow
    m = 1 kernel the lower envelope removes."""
    d = tmp_path / "Llama-3.1-8B" / variant
    (d / "tp1").mkdir(parents=True)
    meta = META.format(variant=variant)
    if model:
        meta = meta.replace("meta-llama/Llama-3.1-8B", model)
    (d / "meta.yaml").write_text(meta)
    g = pd.read_parquet(LLAMA_TP1 / "gemm.parquet")
    dense, per_seq = [], []
    for layer, (n, k) in SHAPES.items():
        rows = g[(g["n"] == n) & (g["k"] == k)]
        us = rows["ms"].to_numpy() * 1e3
        if layer == "o_proj":
            us = np.where(rows["m"] == 1, us * 3, us)  # slow m = 1 kernel
        frame = pd.DataFrame({"layer": layer, "tokens": rows["m"], "time_us": us})
        (per_seq if layer == "lm_head" else dense).append(frame)
    dense.append(pd.DataFrame({"layer": "act_fn", "tokens": [1, 2], "time_us": [2.7, 2.8]}))
    pd.concat(dense).to_csv(d / "tp1" / "dense.csv", index=False)
    per_seq.append(pd.DataFrame({"layer": "sampler", "tokens": [1], "time_us": [24.7]}))
    pd.concat(per_seq).rename(columns={"tokens": "sequences"}).to_csv(
        d / "tp1" / "per_sequence.csv", index=False)
    dec = pd.read_parquet(LLAMA_TP1 / "attn_decode.parquet")
    pre = pd.read_parquet(LLAMA_TP1 / "attn_prefill.parquet")
    att = pd.concat([
        pd.DataFrame({"prefill_chunk": 0, "kv_prefill": 0, "n_decode": dec["batch"],
                      "kv_decode": dec["ctx"], "time_us": dec["ms"] * 1e3}),
        pd.DataFrame({"prefill_chunk": pre["isl"], "kv_prefill": 0, "n_decode": 0,
                      "kv_decode": 0, "time_us": pre["ms"] * 1e3}),
        pd.DataFrame({"prefill_chunk": [512, 512], "kv_prefill": [0, 1024], "n_decode": [8, 0],
                      "kv_decode": [1024, 0], "time_us": [999.0, 999.0]}),  # mixed, prefix
    ])
    att.to_csv(d / "tp1" / "attention.csv", index=False)
    return d


def test_compact_maps_the_profile_onto_the_models_shapes(tmp_path):
    src = _profile(tmp_path)
    assert is_profile(src) and not is_profile(tmp_path)
    out = tmp_path / "tables"
    meta = compact(src, out)
    assert sorted(meta["tables"]) == ["attn_decode", "attn_prefill", "gemm"]
    gemm = meta["tables"]["gemm"]
    assert (gemm["version"], gemm["device"]) == ("0.19.0", "NVIDIA RTX PRO 6000 Blackwell "
                                                            "Server Edition")
    for name in ("gemm", "attn_prefill", "attn_decode"):
        got = pd.read_parquet(out / f"{name}.parquet")
        ref = pd.read_parquet(LLAMA_TP1 / f"{name}.parquet")
        assert list(got.columns) == list(ref.columns)
        keys = [c for c in ref.columns if c != "ms"]
        m = got.merge(ref, on=keys, suffixes=("", "_ref"), how="outer", indicator=True)
        assert (m["_merge"] == "both").all(), name  # the same rows: nothing extra, none lost
        np.testing.assert_allclose(m["ms"], m["ms_ref"], rtol=1e-5)  # the 3x spike is gone
    dec = pd.read_parquet(out / "attn_decode.parquet")
    assert set(dec["heads"]) == {32} and set(dec["kv_heads"]) == {8}
    # the attention tables say which KV dtype they measured (a BF16 profile: BF16 KV), so
    # that an FP8 KV cache timed from them is named in the label; GEMMs name no kernel
    for name in ("attn_prefill", "attn_decode"):
        assert list(meta["tables"][name]["kernels"]) == ["bfloat16"], name
    assert meta["tables"]["gemm"]["kernels"] == {}


@pytest.mark.parametrize("kind, pattern", [
    ("variant", "variant 'int3' not supported; valid: bf16, fp16"),
    ("model", "model 'acme/Unknown-7B' is in no catalog entry's source"),
    ("empty", "is not an LLMServingSim profile"),
])
def test_bad_profiles_fail_with_one_line(tmp_path, kind, pattern):
    if kind == "variant":
        src = _profile(tmp_path, variant="int3")
    elif kind == "model":
        src = _profile(tmp_path, model="acme/Unknown-7B")
    else:
        src = tmp_path
    with pytest.raises(ConfigError, match=pattern):
        compact(src, tmp_path / "out")


@pytest.mark.parametrize("edit, pattern", [
    (lambda d: (d / "tp1" / "per_sequence.csv").unlink(),
     r"tp1/per_sequence\.csv: file not found \(a layer profile's tp<N> folder holds dense\.csv, "
     r"per_sequence\.csv, attention\.csv\)$"),
    (lambda d: _rewrite(d / "tp1" / "dense.csv", "time_us", "t_us"),
     r"tp1/dense\.csv: missing column\(s\) \['time_us'\]; found \['layer', 'tokens', 't_us'\]$"),
    (lambda d: (d / "tp1" / "attention.csv").write_text(""),
     r"tp1/attention\.csv: cannot read it as CSV: No columns to parse from file$"),
    (lambda d: _time(d, "abc"),
     r"tp1/dense\.csv: line 2: time_us must be a number > 0, got 'abc'$"),
    (lambda d: _time(d, "-5"), r"tp1/dense\.csv: line 2: time_us must be a number > 0, got -5$"),
    (lambda d: _time(d, "nan"), r"tp1/dense\.csv: line 2: time_us must be a number > 0, got nan$"),
], ids=["no-file", "no-column", "empty", "text", "negative", "nan"])
def test_a_broken_profile_file_is_one_line_naming_file_and_line(tmp_path, edit, pattern):
    """A missing file or column, an empty file were tracebacks; a negative or NaN time was
    compacted into the engine's tables (a GEMM of -0.005 ms), where the AIConfigurator reader
    refuses them."""
    src = _profile(tmp_path)
    edit(src)
    with pytest.raises(ConfigError, match=pattern):
        compact(src, tmp_path / "out")


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def _time(src: Path, value: str) -> None:
    """The first data row of tp1/dense.csv with its time replaced by `value`."""
    path = src / "tp1" / "dense.csv"
    lines = path.read_text().splitlines()
    lines[1] = ",".join([*lines[1].split(",")[:-1], value])
    path.write_text("\n".join(lines) + "\n")


def test_partial_tables_answer_gemms_themselves_and_moe_from_the_reference():
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import get_engine, kernels_for
    from wrpsim.pool.kernels.borrowed import Partial, Transferred
    from wrpsim.pool.kernels.tables import load_kernels

    k = kernels_for(get_engine("vllm-0.24"), "rtx4090-24gb")
    assert isinstance(k, Partial)
    assert "LLMServingSim" in k.label
    assert "MoE, all-reduce, NCCL: uncalibrated: roofline" in k.label
    # a measured GEMM cell is answered as measured (gate_up_proj, one token: 247.3 us)
    g = pd.read_parquet(SHIPPED / "gemm.parquet")
    cell = g[(g["n"] == 28672) & (g["k"] == 4096) & (g["m"] == 1)]["ms"].iloc[0]
    assert k.gemm("bf16", 28672, 4096)(1.0) == pytest.approx(cell * 1e-3, rel=1e-6)
    # all-reduce and MoE layers: the L40S tables moved over by the roofline ratio
    x = np.array([1.0, 64.0, 512.0])
    ref = Transferred(load_kernels(str(ENGINES / "l40s-48gb"), get_gpu("l40s-48gb")),
                      get_gpu("rtx4090-24gb"))
    np.testing.assert_allclose(k.allreduce(2, True)(x * 4096), ref.allreduce(2, True)(x * 4096))
    args = ("bf16", 2048, 768, 8, 128, 1, 1)
    np.testing.assert_allclose(k.moe(*args)(x), ref.moe(*args)(x))
    # the streaming bandwidth is the GPU's own, measured in its decode-attention table on KV
    # caches larger than any L2 (its fastest cell, 1,185 GB/s, read from the 72 MB L2 cache)
    assert k.stream_bw() == k.own.stream_bw()
    assert 0.9 * 1008e9 < k.stream_bw() < 0.97 * 1008e9


def test_rtxpro6000_times_moe_layers_and_collectives_from_its_own_tables():
    """The RTX PRO 6000's engine tables are AIConfigurator's measurements on it (vLLM 0.24 and
    0.19): its MoE layers and PCIe collectives come from there, not from the L40S."""
    from wrpsim.pool.catalog import get_gpu, models
    from wrpsim.pool.engines import get_engine, kernels_for
    from wrpsim.pool.kernels.borrowed import Transferred
    from wrpsim.pool.kernels.model import KernelLatency
    from wrpsim.pool.kernels.tables import Kernels, load_kernels

    m = models()["qwen3-30b-a3b"]
    args = ("bf16", m.hidden, m.intermediate, m.active_experts, m.experts, 1, 1)
    l40s = Transferred(load_kernels(str(ENGINES / "l40s-48gb"), get_gpu("l40s-48gb")),
                       get_gpu("rtxpro6000-96gb"))
    for engine in ("vllm-0.24", "vllm-0.19"):
        k = kernels_for(get_engine(engine), "rtxpro6000-96gb")
        assert isinstance(k, Kernels) and "RTX PRO 6000" in k.label
        assert "uncalibrated" not in k.label and "LLMServingSim" not in k.label
        moe = pd.read_parquet(k.dir / "moe.parquet")
        own = moe[(moe["dtype"] == "bf16") & (moe["hidden"] == m.hidden)
                  & (moe["inter"] == m.intermediate) & (moe["experts"] == m.experts)
                  & (moe["moe_tp"] == 1) & (moe["moe_ep"] == 1)]
        x = own["tokens"].to_numpy(np.float64)
        assert len(x) >= 20
        assert not np.allclose(k.moe(*args)(x), l40s.moe(*args)(x), rtol=0.02)
        e = np.array([2.0 ** 19])
        assert not np.allclose(k.allreduce(2, True)(e), l40s.allreduce(2, True)(e), rtol=0.05)
        lat = KernelLatency(m, get_gpu("rtxpro6000-96gb"), 1, k, get_engine(engine).constants,
                            max_tokens=4096)
        np.testing.assert_allclose(operators.moe_layers_s(lat, x), m.moe_layers * k.moe(*args)(x))
    # vLLM 0.19's custom all-reduce over PCIe is the slower (measured 91 against 30 us)
    ar = {e: float(kernels_for(get_engine(e), "rtxpro6000-96gb").allreduce(2, True)(
        np.array([2.0 ** 19]))[0]) for e in ("vllm-0.19", "vllm-0.24")}
    assert ar["vllm-0.19"] == pytest.approx(91.5e-6, rel=0.02)
    assert ar["vllm-0.24"] == pytest.approx(30.1e-6, rel=0.02)


def _moe_profile(tmp_path: Path) -> Path:
    """An LLMServingSim profile of Qwen3-30B-A3B with a synthetic MoE block: time_us = 10 +
    6 x activated + 0.1 x tokens, on the profiler's grid (powers of two, activated from top-k
    to min(experts, tokens x top-k))."""
    d = tmp_path / "Qwen3-30B-A3B" / "bf16"
    (d / "tp1").mkdir(parents=True)
    (d / "meta.yaml").write_text(META.replace("meta-llama/Llama-3.1-8B",
                                              "Qwen/Qwen3-30B-A3B-Instruct-2507")
                                 .replace("variant: {variant}", "variant: bf16"))
    rows = [{"tokens": t, "activated_experts": a, "time_us": 10 + 6 * a + 0.1 * t}
            for t in (2 ** i for i in range(12)) for a in (8, 16, 32, 64, 128) if a <= 8 * t]
    pd.DataFrame(rows).to_csv(d / "tp1" / "moe.csv", index=False)
    return d


def test_an_moe_profile_adds_its_moe_block_at_the_expected_activated_experts(tmp_path):
    from wrpsim.calibrate.llmss import expected_experts
    from wrpsim.pool.catalog import get_gpu

    dense, moe_src = _profile(tmp_path), _moe_profile(tmp_path)
    meta = compact([dense, moe_src], tmp_path / "out", gpu=get_gpu("rtxpro6000-96gb"))
    assert sorted(meta["tables"]) == ["attn_decode", "attn_prefill", "gemm", "moe"]
    info = meta["tables"]["moe"]
    assert "Qwen3-30B-A3B" in info["profile"] and info["sources"][0]["cache_resident_rows"] == 0
    # GEMMs are the dense profile's only (this MoE profile has no tp1/dense.csv)
    assert "Llama-3.1-8B" in meta["tables"]["gemm"]["profile"]
    assert "Qwen3-30B-A3B" not in meta["tables"]["gemm"]["profile"]
    moe = pd.read_parquet(tmp_path / "out" / "moe.parquet")
    assert list(moe.columns) == ["dtype", "hidden", "inter", "topk", "experts", "moe_tp",
                                 "moe_ep", "tokens", "ms"]
    assert set(zip(moe["dtype"], moe["hidden"], moe["inter"], moe["topk"], moe["experts"],
                   moe["moe_tp"], moe["moe_ep"])) == {("bf16", 2048, 768, 8, 128, 1, 1)}
    t = moe["tokens"].to_numpy(np.float64)
    a = expected_experts(t, 8, 128)  # linear in activated: exact at the expected count
    assert a[0] == pytest.approx(8.0) and 111 < a[5] < 112  # 1 token: 8; 32 tokens: 111.7
    np.testing.assert_allclose(moe["ms"] * 1e3, 10 + 6 * a + 0.1 * t, rtol=1e-5)
    # a profile of the MoE block alone has no GEMM or attention rows: one line
    with pytest.raises(ConfigError, match=r"at least one layer profile with tp<N>/dense\.csv"):
        compact(moe_src, tmp_path / "out2")
    # rows faster than streaming their experts from DRAM are dropped (L2-resident)
    csv = moe_src / "tp1" / "moe.csv"
    raw = pd.read_csv(csv)
    raw.loc[(raw["tokens"] == 1), "time_us"] = 1.0
    raw.to_csv(csv, index=False)
    meta = compact([dense, moe_src], tmp_path / "out3", gpu=get_gpu("rtxpro6000-96gb"))
    assert meta["tables"]["moe"]["sources"][0]["cache_resident_rows"] == 1
    assert 1 not in set(pd.read_parquet(tmp_path / "out3" / "moe.parquet")["tokens"])


def test_merging_the_shipped_profiles_keeps_every_measurement(tmp_path):
    """The RTX PRO 6000's six shipped LLMServingSim layouts merged (`merge`, what the
    leave-one-profile-out check builds): every measured key, none lost or invented; the only
    key measured twice is the 32 / 4-head attention layout (Qwen3-32B TP 2, Qwen3-30B-A3B TP 1),
    which holds the two measurements' mean; every other row is one measurement."""
    from wrpsim.calibrate.llmss import KEYS, merge

    layouts = sorted(p for p in LAYOUTS.iterdir() if (p / "meta.json").is_file())
    assert [p.name for p in layouts] == [f"{m}-tp{tp}" for m in ("Llama-3.1-8B",
                                                                 "Qwen3-30B-A3B", "Qwen3-32B")
                                         for tp in (1, 2)]
    sources = {json.loads((p / "meta.json").read_text())["source"] for p in layouts}
    meta = merge(layouts, tmp_path / "merged")
    for name, keys in KEYS.items():
        got = pd.read_parquet(tmp_path / "merged" / f"{name}.parquet")
        parts = pd.concat([pd.read_parquet(p / f"{name}.parquet") for p in layouts])
        twice = parts[parts.duplicated(keys, keep=False)]
        if name == "gemm":
            assert twice.empty
        else:
            assert set(zip(twice["heads"], twice["kv_heads"])) == {(32, 4)}
            assert len(twice) == 2 * (got["heads"].eq(32) & got["kv_heads"].eq(4)).sum()
        m = got.merge(parts.groupby(keys, as_index=False)["ms"].mean(), on=keys,
                      suffixes=("", "_layouts"), how="outer", indicator=True)
        assert (m["_merge"] == "both").all(), name
        np.testing.assert_allclose(m["ms"], m["ms_layouts"], rtol=1e-6)
        assert {x["source"] for x in meta["tables"][name]["layouts"]} == sources, name
        # the merged attention tables still say which KV dtype they measured (BF16 profiles)
        assert list(meta["tables"][name]["kernels"]) == (
            [] if name == "gemm" else ["bfloat16"]), name
    dec = pd.read_parquet(tmp_path / "merged" / "attn_decode.parquet")
    assert sorted(set(zip(dec["heads"], dec["kv_heads"]))) == [(16, 2), (16, 4), (32, 4),
                                                                (32, 8), (64, 8)]


def test_layouts_merge_by_the_median_of_a_key_measured_twice(tmp_path):
    """Every TP degree of a profile is a layout of its own; a `tp<N>` folder names one. Two
    profiles measuring one key keep the median of their times (of two: the mean), then the
    lower envelope; `merge` of the compacted folders gives what `compact` gives from the raw
    profiles; folders of another engine version do not merge."""
    from wrpsim.calibrate.llmss import merge

    src = _profile(tmp_path)
    tp1, tp2 = src / "tp1", src / "tp2"
    tp2.mkdir()
    for f in ("dense.csv", "per_sequence.csv", "attention.csv"):
        (tp2 / f).write_text((tp1 / f).read_text())
    meta = compact(src, tmp_path / "both")  # TP 2: half the heads and widths, other keys
    assert meta["tables"]["gemm"]["profile"].endswith("meta-llama/Llama-3.1-8B bf16, TP [1, 2]")
    assert [x["source"].rsplit("/", 1)[1] for x in meta["tables"]["gemm"]["layouts"]] == [
        "tp1", "tp2"]
    dec = pd.read_parquet(tmp_path / "both" / "attn_decode.parquet")
    assert sorted(set(zip(dec["heads"], dec["kv_heads"]))) == [(16, 4), (32, 8)]
    one = compact(tp1, tmp_path / "one")
    assert "layouts" not in one["tables"]["gemm"] and one["source"].endswith("tp1")
    # a twin profile of the same model and TP whose attention took three times as long
    twin = tmp_path / "twin" / "bf16"
    (twin / "tp1").mkdir(parents=True)
    (twin / "meta.yaml").write_text((src / "meta.yaml").read_text())
    for f in ("dense.csv", "per_sequence.csv"):
        (twin / "tp1" / f).write_text((tp1 / f).read_text())
    att = pd.read_csv(tp1 / "attention.csv")
    att["time_us"] *= 3.0
    att.to_csv(twin / "tp1" / "attention.csv", index=False)
    compact(twin / "tp1", tmp_path / "twin_tables")
    meta = compact([tp1, twin / "tp1"], tmp_path / "merged")
    assert len(meta["tables"]["gemm"]["layouts"]) == 2
    for name in ("attn_decode", "attn_prefill"):
        a = pd.read_parquet(tmp_path / "one" / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / "merged" / f"{name}.parquet")
        assert len(a) == len(b)
        np.testing.assert_allclose(b["ms"], a["ms"] * 2.0, rtol=1e-6)  # mean of 1x and 3x
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "merged" / "gemm.parquet"),
                                  pd.read_parquet(tmp_path / "one" / "gemm.parquet"))
    again = merge([tmp_path / "one", tmp_path / "twin_tables"], tmp_path / "again")
    for name in ("gemm", "attn_prefill", "attn_decode"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again" / f"{name}.parquet"),
                                      pd.read_parquet(tmp_path / "merged" / f"{name}.parquet"))
    assert len(again["tables"]["attn_decode"]["layouts"]) == 2
    other = tmp_path / "other"
    other.mkdir()
    for f in ("gemm", "attn_prefill", "attn_decode"):
        (other / f"{f}.parquet").write_bytes((tmp_path / "one" / f"{f}.parquet").read_bytes())
    m = json.loads((tmp_path / "one" / "meta.json").read_text())
    m["tables"]["gemm"]["version"] = "0.11.0"
    (other / "meta.json").write_text(json.dumps(m))
    with pytest.raises(ConfigError, match="one engine's tables come from one GPU and engine"):
        merge([tmp_path / "one", other], tmp_path / "bad")
    with pytest.raises(ConfigError, match=r"no readable meta\.json"):
        merge([tmp_path / "one", tmp_path / "twin"], tmp_path / "bad")


def test_cli_builds_an_engine_from_a_profile_keeping_what_it_lacks(tmp_path):
    """A profile (GEMMs and attention) of a GPU with complete tables of its own keeps the GPU's
    other measured tables (collectives, MoE: copied in, `carried_from`); of a GPU the engine
    times partly from a reference GPU (the RTX 4090: the L40S), it keeps that reference."""
    import yaml

    cat = tmp_path / "catalog"
    for gpu in ("rtxpro6000-96gb", "rtx4090-24gb"):
        r = subprocess.run([sys.executable, "-m", "wrpsim.calibrate", "engine=my-rtx",
                            f"gpu={gpu}", f"kernels={_profile(tmp_path / gpu)}",
                            f"out_dir={cat / 'engines'}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    raw = yaml.safe_load((cat / "engines" / "my-rtx.yaml").read_text())
    assert raw["gpus"]["rtxpro6000-96gb"] == {"tables": "my-rtx/rtxpro6000-96gb"}
    assert raw["gpus"]["rtx4090-24gb"] == {"tables": "my-rtx/rtx4090-24gb",
                                           "roofline": "l40s-48gb"}
    meta = json.loads((cat / "engines" / "my-rtx" / "rtxpro6000-96gb" / "meta.json").read_text())
    assert meta["format"] == "llmservingsim" and "LLMServingSim" in meta["tables"]["gemm"][
        "profile"]
    assert {n for n, t in meta["tables"].items() if t.get("carried_from")} >= {
        "allreduce", "nccl", "moe"}
    assert meta["tables"]["moe"]["carried_from"] == "vllm-0.24/rtxpro6000-96gb"
    # an MoE model runs on it: its experts are the GPU's measured ones, and the label says so
    p = subprocess.run([sys.executable, "-m", "wrpsim.perf", "engine=my-rtx",
                        "model=qwen3-30b-a3b", "gpu=rtxpro6000-96gb", "tp=1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "WRPSIM_CATALOG": str(cat)})
    assert p.returncode == 0, p.stderr
    label = json.loads(p.stdout)["calibration"]
    assert "LLMServingSim" in label and "moe, nccl kept from vllm-0.24/rtxpro6000-96gb" in label
    assert "uncalibrated" not in label


def test_an_engine_gpu_entry_with_an_unknown_key_is_one_line(tmp_path):
    from wrpsim.pool.engines import load_engine

    f = tmp_path / "e.yaml"
    f.write_text("kind: kernels\ngpus:\n  h100-80gb: {tables: x, speed: 2}\n")
    with pytest.raises(ConfigError, match=r"gpus.h100-80gb must be \{tables: DIR\}, "
                                          r"\{roofline: GPU\} or \{tables: DIR, roofline: GPU\}"):
        load_engine(f)
