"""`python -m wrpsim.calibrate`: kernel tables from the AIConfigurator layout, constants fitted
on step timings, the engine found through WRPSIM_CATALOG, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import made_up_engine_steps
from wrpsim.calibrate.aic import compact
from wrpsim.errors import ConfigError, WrpsimWarning

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pools" / "catalog" / "engines" / "vllm-0.24" / "h100-80gb"


def _aic_dir(tmp_path: Path, slower: float = 1.0) -> Path:
    """A small AIConfigurator-layout system folder rebuilt from the shipped H100 tables, with
    the raw quirks compaction must handle; GEMMs `slower` times the H100's (to pass as a
    slower GPU's: compaction refuses GEMMs far beyond the GPU's peak)."""
    sysdir = tmp_path / "h100_sxm"
    g = pd.read_parquet(SHIPPED / "gemm.parquet")
    g = g[g["dtype"] == "bf16"].rename(columns={"ms": "latency"})
    g["latency"] *= slower
    g = g.assign(gemm_dtype="bfloat16", kernel_source="torch.nn.functional.linear",
                 device="NVIDIA H100 80GB HBM3")
    odd = g[g["m"] == 16].assign(m=17, latency=g[g["m"] == 16]["latency"] * 1.05)
    slow = g[g["m"] <= 64].assign(gemm_dtype="fp8_block", kernel_source="Slow",
                                  latency=lambda d: d["latency"] * 8)
    fast = g[g["m"] > 64].assign(gemm_dtype="fp8_block", kernel_source="Slow",
                                 latency=lambda d: d["latency"] * 0.6)
    never = g[g["m"] <= 64].assign(gemm_dtype="fp8", kernel_source="Host",  # all slow: dropped
                                   latency=lambda d: d["latency"] * 90)
    spike = g[(g["m"] == 1)].assign(latency=lambda d: d["latency"] * 3)  # slow m = 1 kernel
    other = g[g["m"] == 1].assign(kernel_source="Other", latency=0.0001)  # fewer rows: dropped
    raw = pd.concat([g[g["m"] != 1], spike, odd, slow, fast, never, other.head(5)])
    _write(sysdir / "gemm" / "vllm" / "0.24.0" / "gemm_perf.parquet", raw)
    # another framework's table of a newer version number (AIConfigurator also times SGLang /
    # TensorRT-LLM): unread
    _write(sysdir / "gemm" / "sglang" / "1.0.0" / "gemm_perf.parquet",
           raw.assign(latency=raw["latency"] / 2))
    (sysdir / "gemm" / "vllm" / "0.22.0").mkdir(parents=True)
    (sysdir / "gemm" / "vllm" / "0.22.0" / "reuse.yaml").write_text("reuse: []\n")
    for name, stem, size in (("attn_prefill", "context_attention_perf", "isl"),
                             ("attn_decode", "generation_attention_perf", "ctx")):
        a = pd.read_parquet(SHIPPED / f"{name}.parquet")
        a = a[(a["heads"] == 16) & (a["kv_heads"] == 2)].rename(columns={
            "heads": "num_heads", "kv_heads": "num_key_value_heads", "window": "window_size",
            "batch": "batch_size", "ms": "latency"})
        a = a.assign(kv_cache_dtype=a["kv_dtype"].map({"bf16": "bfloat16", "fp8": "fp8"}),
                     kernel_source="fa3", device="NVIDIA H100 80GB HBM3")
        if size == "ctx":
            a = a.rename(columns={"ctx": "step"})
        _write(sysdir / "attention" / "vllm" / "0.24.0" / f"{stem}.parquet", a)
    return sysdir


def _write(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


def test_compact_keeps_measurements_and_cleans_them(tmp_path):
    out = tmp_path / "tables"
    meta = compact(_aic_dir(tmp_path), out)
    g = pd.read_parquet(out / "gemm.parquet")
    assert set(g["dtype"]) == {"bf16", "fp8_block"}  # measurements are all kept
    g = g[g["dtype"] == "bf16"]
    # fp8_block slower than BF16 up to m = 64 (kept, the model retimes those cells); fp8
    # slower everywhere: none of it timed on the engine's path, so left out of the table
    share = meta["tables"]["gemm"]["share_slower_than_bf16"]
    assert share["fp8"] == 1.0 and 0.0 < share["fp8_block"] < 1.0
    assert meta["tables"]["gemm"]["dtypes"] == ["bf16", "fp8_block"]
    assert meta["tables"]["gemm"]["kernels"] == {"bfloat16": "torch.nn.functional.linear",
                                                 "fp8": "Host", "fp8_block": "Slow"}
    assert meta["tables"]["gemm"]["framework"] == "vllm"
    assert 17 not in set(g["m"])  # tile-boundary points
    ref = pd.read_parquet(SHIPPED / "gemm.parquet")
    ref = ref[ref["dtype"] == "bf16"].set_index(["n", "k", "m"])["ms"]
    got = g.set_index(["n", "k", "m"])["ms"]
    rest = ref.index.get_level_values("m") > 1
    np.testing.assert_allclose(got.loc[ref.index[rest]], ref[rest], rtol=1e-6)
    # the 3x slow m = 1 kernel is replaced by the lower envelope: t(1) = t(2) where it spiked
    one = g[g["m"] == 1].set_index(["n", "k"])["ms"]
    two = g[g["m"] == 2].set_index(["n", "k"])["ms"]
    assert (one <= two.loc[one.index] * (1 + 1e-6)).all()
    assert meta["tables"]["gemm"]["version"] == "0.24.0"  # not the reuse-only 0.22.0 folder
    assert (out / "attn_decode.parquet").is_file() and "allreduce" not in meta["tables"]


def test_compact_names_a_missing_table(tmp_path):
    from wrpsim.errors import ConfigError

    (tmp_path / "x" / "gemm").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"has no gemm/<framework>/<version>/gemm_perf.parquet "
                                          r"of a framework read \(vllm, nccl;"):
        compact(tmp_path / "x", tmp_path / "out")


def _gemm_file(sysdir: Path) -> Path:
    return sysdir / "gemm" / "vllm" / "0.24.0" / "gemm_perf.parquet"


@pytest.mark.parametrize("spoil, pattern", [
    (lambda f: f.write_text("not parquet"), r"gemm_perf\.parquet: cannot read it as Parquet"),
    (lambda f: _write(f, pd.read_parquet(f).rename(columns={"latency": "latency_ms"})),
     r"gemm_perf\.parquet: missing column\(s\) \['latency'\]; AIConfigurator's gemm_perf has "
     r"gemm_dtype, m, n, k, latency"),
    (lambda f: _write(f, pd.read_parquet(f).assign(latency=lambda d: d["latency"].where(
        d.index % 7 != 3, -1.0))), r"rows have a latency that is not a number > 0 \(the "
     r"first, row 4: -1\.0\); latencies are milliseconds"),
    (lambda f: _write(f, pd.read_parquet(f).assign(latency=np.nan)),
     r"latency that is not a number > 0"),
    (lambda f: _write(f, pd.read_parquet(f).assign(gemm_dtype="bf16")),
     r"no row with gemm_dtype in bfloat16, fp8, fp8_block, nvfp4 \(AIConfigurator's names\), "
     r"got bf16"),
    (lambda f: _write(f, pd.read_parquet(f).assign(latency=lambda d: d["latency"] * 1000)),
     r"large BF16 GEMMs run at 0\.\d+ TFLOP/s .*latencies must be milliseconds of that GPU"),
    (lambda f: _write(f, pd.read_parquet(f).assign(latency=lambda d: d["latency"] / 1000)),
     r"large BF16 GEMMs run at 783,\d{3} TFLOP/s .* 792 x h100-80gb's peak of 989"),
])
def test_a_spoilt_kernel_table_is_one_error_and_writes_nothing(tmp_path, spoil, pattern):
    """A table that cannot be read, lacks a column, holds latencies that are no time, names its
    dtypes otherwise than AIConfigurator, or is in other units (microseconds or seconds written
    as ms: its big BF16 GEMMs run at a thousandth or a thousand times the GPU's peak) is refused
    by file, before any table is written (it was a traceback, or taken in: a table of -1 ms
    GEMMs, or one whose 8B prefill took 11 s)."""
    from wrpsim.pool.catalog import get_gpu

    sysdir = _aic_dir(tmp_path)
    spoil(_gemm_file(sysdir))
    with pytest.raises(ConfigError, match=pattern):
        compact(sysdir, tmp_path / "out", gpu=get_gpu("h100-80gb"))
    assert not (tmp_path / "out").exists()


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wrpsim.calibrate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def cli_here(capsys, monkeypatch):
    """`_cli` run in this process (`python -m wrpsim.calibrate`'s own `main`, from the
    checkout): for input the command refuses before it fits anything, where a new interpreter
    per case cost a second each; a traceback fails the test as it would the command."""
    from wrpsim.calibrate.__main__ import main

    def run(*args) -> subprocess.CompletedProcess:
        monkeypatch.chdir(ROOT)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["wrpsim.calibrate", *args], code, out, err)

    return run


def _unqueued_engine(out: Path, name: str = "x") -> None:
    """`out/<name>.yaml`: the shipped vllm-0.24 with no queued front end (frontend_us_serial 0),
    for made-up rows whose fits this file checks without the server's queue in them."""
    import re

    from wrpsim.pool.engines import get_engine

    out.mkdir(parents=True, exist_ok=True)
    text = get_engine("vllm-0.24").path.read_text()
    text, n = re.subn(r"^(  frontend_us_serial:).*$", r"\1 0", text, flags=re.M)
    assert n == 1
    (out / f"{name}.yaml").write_text(text)


def test_cli_builds_an_engine_and_fits_it_on_steps(tmp_path):
    # step timings of a made-up engine: the shipped one with a 30 us layer floor
    steps = made_up_engine_steps(tmp_path / "steps.csv")
    cat = tmp_path / "catalog"
    # 1. an engine based on vllm-0.24 refitted on the steps recovers the 30 us
    r = _cli("engine=fitted", f"steps={steps}", "fit=[layer_overhead_us]",
             f"out_dir={cat / 'engines'}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["fitted"]["layer_overhead_us"] == pytest.approx(30.0, rel=0.02)
    assert out["error_pct"]["after"]["median_pct"] < 0.5 < out["error_pct"]["before"][
        "median_pct"]
    assert "layer_overhead_us: 30" in (cat / "engines" / "fitted.yaml").read_text()
    # the calibration names the shipped tables it builds on by their place in the shipped
    # engines folder, so a moved (or shared) catalog keeps working
    assert "tables: vllm-0.24/h100-80gb" in (cat / "engines" / "fitted.yaml").read_text()
    moved = tmp_path / "elsewhere" / "deeper" / "catalog"
    shutil.copytree(cat, moved)
    p = subprocess.run([sys.executable, "-m", "wrpsim.perf", "engine=fitted",
                        "model=llama3.1-8b", "gpu=h100-80gb", "tp=1"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "WRPSIM_CATALOG": str(moved)})
    assert p.returncode == 0, p.stderr
    # 2. an engine with kernel tables of its own for the H100
    r = _cli("engine=my-vllm", f"out_dir={cat / 'engines'}", "gpu=h100-80gb",
             f"kernels={_aic_dir(tmp_path)}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["tables"]["gemm"] > 1000
    engine_yaml = cat / "engines" / "my-vllm.yaml"
    assert engine_yaml.is_file() and (cat / "engines" / "my-vllm" / "h100-80gb").is_dir()
    # the new engine is found through WRPSIM_CATALOG by every verb
    p = subprocess.run([sys.executable, "-m", "wrpsim.perf", "engine=my-vllm",
                        "model=llama3.1-8b", "gpu=h100-80gb", "tp=1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "WRPSIM_CATALOG": str(cat)})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["engine"] == "my-vllm"
    # its label names its file: a calibration of your own is never taken for a shipped one,
    # also under a shipped engine's name (which it then replaces)
    assert json.loads(p.stdout)["calibration"].startswith(f"my-vllm ({engine_yaml.resolve()}"
                                                          f"): kernels: ")
    r = _cli("engine=vllm-0.24", f"steps={steps}", "fit=[layer_overhead_us]",
             f"out_dir={cat / 'engines'}")
    assert r.returncode == 0, r.stderr
    p = subprocess.run([sys.executable, "-m", "wrpsim.perf", "engine=vllm-0.24",
                        "model=llama3.1-8b", "gpu=h100-80gb", "tp=1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "WRPSIM_CATALOG": str(cat / "engines")})
    assert p.returncode == 0, p.stderr  # (the engines folder named instead of the catalog)
    assert p.stderr.startswith(f"wrpsim: warning: WRPSIM_CATALOG={cat / 'engines'} looks like "
                               f"an engines folder itself") and p.stderr.count("\n") == 1
    assert json.loads(p.stdout)["calibration"].startswith("vllm-0.24: kernels: ")
    p = subprocess.run([sys.executable, "-m", "wrpsim.perf", "engine=vllm-0.24",
                        "model=llama3.1-8b", "gpu=h100-80gb", "tp=1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "WRPSIM_CATALOG": str(cat)})
    assert json.loads(p.stdout)["calibration"].startswith(
        f"vllm-0.24 ({(cat / 'engines' / 'vllm-0.24.yaml').resolve()}): kernels: ")


@pytest.mark.parametrize("args, pattern", [
    ((), "calibrate: engine=NAME is required"),
    (("engine=x",), "calibrate: give kernels=DIR gpu=GPU, steps=CSV, benchmarks=CSV and/or "
                    "validation=SET"),
    (("engine=x", "validation=imagenet"), "calibrate: validation: unknown value 'imagenet'; "
                                          "valid choices: llmservingsim, mlenergy, silicon"),
    (("engine=x", "validation=silicn"), "valid choices: llmservingsim, mlenergy, silicon, "
                                        "silicon_disagg; did you mean 'silicon'?"),
    (("engine=../../evil", "steps=s.csv"), "calibrate: engine must be a plain name of letters, "
                                           "digits, '.', '_' and '-' (the engine file's, "
                                           "without its folder or .yaml"),
    (("engine=my.yaml", "steps=s.csv"), "calibrate: engine must be a plain name"),
    # (a space would need quoting wherever the name is given back: engine:, overrides, errors)
    (("engine=my vllm", "steps=s.csv"), "calibrate: engine must be a plain name"),
    (("engine=x", "steps=s.csv", "fit=[layer_overhead_us,layer_overhead_us]"),
     "calibrate: fit names layer_overhead_us more than once"),
    (("engine=x", "validation=mlenergy", "mlenergy_dir=/nonexistent"),
     "calibrate: mlenergy_dir: /nonexistent has no llm_configs.csv"),
    (("engine=x", "validation=llmservingsim"),
     "calibrate: validation=llmservingsim: no cases to fit (it has no fit split)"),
    (("engine=x", "kernels=/tmp"), "calibrate: kernels=DIR needs gpu=GPU"),
    (("engine=x", "kernels=/tmp", "gpu=h900"), "calibrate: gpu: unknown value 'h900'; valid "
                                               "choices: a100-80gb"),
    (("engine=x", "benchmarks=b.csv", "gpu=h100-80gb"),
     "calibrate: gpu=h100-80gb is read by kernels= and validation= only"),
    (("engine=x", "steps=s.csv", "fit=[warp]"), "calibrate: fit: unknown field(s) ['warp']"),
    (("engine=x", "steps=s.csv", "fit=[layer_overhed_us]"),
     "frontend_us_serial, handover_us; did you mean 'layer_overhead_us'?"),
    (("engine=x", "validation=mlenergy", "silicon_csv=/tmp/x.csv"),
     "calibrate: silicon_csv is read by validation=silicon or silicon_disagg only"),
    (("engine=x", "validation=silicon", "silicon_csv=/nonexistent.csv"),
     "calibrate: silicon_csv: /nonexistent.csv names no file"),
    # the kernels folder's errors said as calibrate's, as its other errors are
    (("engine=x", "kernels=/nonexistent", "gpu=h100-80gb"),
     "calibrate: kernels: /nonexistent is not a directory"),
    # a kernels calibration under the 2023 analytical engine's name would replace it
    (("engine=splitwise-2023", "steps=s.csv"),
     "calibrate: engine: splitwise-2023 is a shipped engine of another kind"),
    (("engine=x", "steps=/nonexistent.csv", "write=false"),
     "calibrate: steps=/nonexistent.csv names no file"),
    (("engine=x", "benchmarks=/", "write=false"),
     "calibrate: benchmarks=/ is a folder, not a CSV file"),
    # an empty steps= is none given (not the current folder): the benchmarks file is the error
    (("engine=x", "steps=", "benchmarks=/nonexistent.csv", "write=false"),
     "calibrate: benchmarks=/nonexistent.csv names no file"),
])
def test_bad_input_is_one_line(args, pattern, tmp_path, cli_here):
    r = cli_here(*args, f"out_dir={tmp_path}")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and pattern in lines[0], r.stderr


def test_benchmark_rows_become_closed_loop_cases(tmp_path):
    from wrpsim.calibrate.measured import benchmark_cases

    csv = tmp_path / "b.csv"
    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms,tpot_ms,range_ratio,precision\n"
                   "llama3.1-70b,h100-80gb,4,8,1024,128,90,12,0.8,fp8\n")
    (case,) = benchmark_cases(csv)
    src = case.workload["source"]
    assert src["concurrency"] == 8 and src["num_requests"] == 80
    assert src["prompt_tokens"] == {"dist": "uniform", "low": 819, "high": 1024}
    assert case.measured == {"ttft_mean_s": 0.09, "tpot_mean_s": 0.012}
    assert case.pool["precision"] == "fp8"
    assert case.pool["scheduler"]["gpu_mem_util"] == 0.9  # vLLM's default
    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms,gpu_memory_utilization\n"
                   "llama3.1-8b,h100-80gb,1,4,128,8,20,0.5\n")
    (case,) = benchmark_cases(csv)
    assert case.pool["scheduler"]["gpu_mem_util"] == 0.5
    from wrpsim.errors import ConfigError

    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms,gpu_memory_utilization\n"
                   "llama3.1-8b,h100-80gb,1,4,128,8,20,50\n")
    with pytest.raises(ConfigError, match=r"b.csv: line 2: gpu_memory_utilization must be a "
                                          r"number in \(0, 1\], got 50"):
        benchmark_cases(csv)
    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms\nllama3.1-8b,h100-80gb,1,0,1,1,1\n")

    with pytest.raises(ConfigError, match=r"b.csv: line 2: concurrency must be an integer in "
                                          r"1\.\.65,536, got 0"):
        benchmark_cases(csv)


def test_fitted_constants_keep_the_engine_files_comments(tmp_path):
    import yaml

    from wrpsim.calibrate.__main__ import _write_constants

    path = tmp_path / "e.yaml"
    path.write_text("# header\nkind: kernels\nconstants:\n  # fitted on X\n"
                    "  layer_overhead_us: 15.2  # per layer\n  frontend_us: 100\n")
    _write_constants(path, yaml.safe_load(path.read_text()),
                     {"layer_overhead_us": 17.5, "frontend_us": 20000.0})
    text = path.read_text()
    assert "# header" in text and "# fitted on X" in text and "# per layer" in text
    assert yaml.safe_load(text)["constants"] == {"layer_overhead_us": 17.5,
                                                 "frontend_us": 20000.0}
    # a constant without a line of its own gets one at the end of the block, comments kept
    path.write_text(path.read_text() + "# the GPUs\ngpus:\n  h100-80gb: {tables: t}\n")
    _write_constants(path, yaml.safe_load(path.read_text()), {"sampling_passes": 2.0})
    text = path.read_text()
    assert "# header" in text and "# fitted on X" in text and "# the GPUs" in text
    assert "  frontend_us: 20000.0\n  sampling_passes: 2.0\n# the GPUs" in text
    assert yaml.safe_load(text)["constants"]["sampling_passes"] == 2.0
    assert yaml.safe_load(text)["gpus"] == {"h100-80gb": {"tables": "t"}}
    # a flow-style mapping has no line to add to: the file is rewritten
    path.write_text("kind: kernels\nconstants: {frontend_us: 100}\n")
    _write_constants(path, yaml.safe_load(path.read_text()), {"sampling_passes": 2.0})
    assert yaml.safe_load(path.read_text())["constants"] == {"frontend_us": 100,
                                                             "sampling_passes": 2.0}


def test_a_failed_calibration_leaves_a_shipped_engine_untouched(tmp_path):
    from wrpsim.pool.engines import get_engine

    shipped = get_engine("vllm-0.24").path
    before = shipped.read_bytes()
    r = _cli("engine=vllm-0.24", "validation=llmservingsim", "write=false")
    assert r.returncode == 2
    r = _cli("engine=vllm-0.24", "steps=/nonexistent.csv", "write=false")
    assert r.returncode == 2
    assert shipped.read_bytes() == before


def test_validation_fit_on_one_gpu_names_a_gpu_without_cases():
    """`validation=SET gpu=GPU` fits on that GPU's fit cases only; none is one clear line."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "wrpsim.calibrate", "engine=vllm-0.24",
                        "validation=silicon", "gpu=rtx4090-24gb", "write=false"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == ("wrpsim: error: calibrate: validation=silicon: no cases to fit "
                                "(none on gpu rtx4090-24gb)")


def test_moe_kernel_is_chosen_per_parallel_layout(tmp_path):
    """The engine picks an MoE kernel per layout (vLLM 0.24 on Hopper: block-FP8 experts run
    Triton under TP, FlashInfer CUTLASS under EP); the kernel with fewer rows overall must not
    be dropped for the layout only it measures."""
    sysdir = _aic_dir(tmp_path)
    rows = []
    for kernel, tp, ep, n in (("triton", 8, 1, 3), ("cutlass", 1, 8, 5), ("cutlass", 1, 4, 5)):
        for t in range(1, n + 1):
            rows.append({"moe_dtype": "fp8_block", "kernel_source": kernel, "num_tokens": t,
                         "hidden_size": 4096, "inter_size": 1536, "topk": 8, "num_experts": 128,
                         "moe_tp_size": tp, "moe_ep_size": ep, "distribution": "power_law_1.01",
                         "latency": 0.1 * t, "device": "NVIDIA H100 80GB HBM3"})
    _write(sysdir / "moe" / "vllm" / "0.24.0" / "moe_perf.parquet", pd.DataFrame(rows))
    meta = compact(sysdir, tmp_path / "out")
    assert meta["tables"]["moe"]["kernels"] == {"fp8_block/ep": "cutlass",
                                                "fp8_block/tp": "triton"}
    moe = pd.read_parquet(tmp_path / "out" / "moe.parquet")
    assert sorted(set(zip(moe["moe_tp"], moe["moe_ep"]))) == [(1, 4), (1, 8), (8, 1)]


def test_shipped_hopper_tables_time_tp_sharded_block_fp8_experts_from_triton():
    for gpu in ("h100-80gb", "h200-141gb"):
        d = SHIPPED.parent / gpu
        meta = json.loads((d / "meta.json").read_text())["tables"]["moe"]["kernels"]
        assert "triton" in meta["fp8_block/tp"] and "cutlass" in meta["fp8_block/ep"]
        moe = pd.read_parquet(d / "moe.parquet")
        blk = moe[moe["dtype"] == "fp8_block"]
        assert (blk["moe_ep"] == 1).any() and (blk["moe_ep"] > 1).any()


def test_moe_rows_faster_than_dram_are_retimed_from_the_nearest_valid_row(tmp_path):
    """A row faster than streaming a token's topk experts from DRAM was timed from L2 (the
    collector repeats one call): it is retimed from the nearest valid token count by the
    roofline ratio, never below its DRAM floor; the other rows are kept as measured; EP rows
    (a rank may hold none of a token's experts) have no floor."""
    from wrpsim.calibrate.aic import moe_dram_floor_s
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.kernels import roofline as rl

    gpu = get_gpu("l40s-48gb")
    sysdir = _aic_dir(tmp_path)
    shape = {"hidden_size": 2048, "inter_size": 768, "topk": 8, "num_experts": 128}
    # floor at one token: 8 experts x 2 matrices x 2048 x 768 x 2 B / 864 GB/s = 58.3 us
    times = {1: 0.034, 2: 0.220, 4: 0.420}
    rows = [{"moe_dtype": "bfloat16", "kernel_source": "triton", "num_tokens": t, **shape,
             "moe_tp_size": 1, "moe_ep_size": ep, "distribution": "power_law_1.01",
             "latency": ms, "device": "NVIDIA L40S"}
            for ep in (1, 8) for t, ms in times.items()]
    _write(sysdir / "moe" / "vllm" / "0.24.0" / "moe_perf.parquet", pd.DataFrame(rows))
    plain = compact(sysdir, tmp_path / "plain")
    assert "cache_resident_rows" not in plain["tables"]["moe"]  # no GPU given: no floor
    meta = compact(sysdir, tmp_path / "out", gpu=gpu)
    assert meta["tables"]["moe"]["cache_resident_rows"] == 1
    moe = pd.read_parquet(tmp_path / "out" / "moe.parquet").set_index(["moe_ep", "tokens"])
    r = rl.moe_roofline(np.array([1.0, 2.0]), 2048, 768, 8, 128, 1, 1, "bf16", gpu)
    assert moe.loc[(1, 1), "ms"] == pytest.approx(0.220 * r[0] / r[1], rel=1e-6)
    floor = moe_dram_floor_s(pd.DataFrame({"dtype": ["bf16"], "hidden": [2048], "inter": [768],
                                           "moe_tp": [1]}), [8], gpu)[0] * 1e3
    assert floor == pytest.approx(0.0583, abs=1e-4) and moe.loc[(1, 1), "ms"] > floor
    for t in (2, 4):
        assert moe.loc[(1, t), "ms"] == pytest.approx(times[t], rel=1e-6)
    for t, ms in times.items():
        assert moe.loc[(8, t), "ms"] == pytest.approx(ms, rel=1e-6)


def test_shipped_l40s_moe_table_has_no_row_faster_than_dram():
    from wrpsim.calibrate.aic import moe_dram_floor_s
    from wrpsim.pool.catalog import get_gpu

    d = SHIPPED.parent / "l40s-48gb"
    moe = pd.read_parquet(d / "moe.parquet")
    least = np.where(moe["moe_ep"] == 1, np.minimum(moe["topk"], moe["experts"]), 0)
    floor = moe_dram_floor_s(moe, least, get_gpu("l40s-48gb")) * 1e3
    assert np.all(moe["ms"].to_numpy(np.float64) >= floor * (1 - 1e-6))
    assert json.loads((d / "meta.json").read_text())["tables"]["moe"]["cache_resident_rows"] == 54
    qwen = moe[(moe["dtype"] == "bf16") & (moe["hidden"] == 2048) & (moe["inter"] == 768)
               & (moe["moe_tp"] == 1) & (moe["moe_ep"] == 1)].set_index("tokens")["ms"]
    assert 0.09 < qwen[1] < qwen[2]  # was 0.034 ms, an L2-resident measurement


BENCH_HEAD = "model,gpu,tp,concurrency,isl,osl,ttft_ms,tpot_ms\n"
STEP_HEAD = "model,gpu,tp,prefill_tokens,decode_seqs,decode_ctx,step_ms\n"


@pytest.mark.parametrize("head, row, pattern", [
    (BENCH_HEAD, "llama3.1-8b,h100-80gb,1,4,abc,128,90,12",
     r"line 2: isl must be an integer >= 1, got 'abc'"),
    (BENCH_HEAD, "llama3.1-8b,h100-80gb,1,4,1024,128,-80.5,12",
     r"line 2: ttft_ms must be a number > 0, got -80\.5"),
    (BENCH_HEAD, "llama3.1-8b,h100-80gb,1,4,1024,128,,",
     r"line 2: no measurement: needs at least one of ttft_ms, tpot_ms, itl_ms"),
    # only an empty cell is "not measured": pandas read 'nan', 'N/A', 'NULL' ... as empty too,
    # so the row was fitted on its TPOT alone without a word (and a required one was "empty")
    (BENCH_HEAD, "llama3.1-8b,h100-80gb,1,4,1024,128,nan,12",
     r"line 2: ttft_ms must be a number > 0, got 'nan'"),
    (BENCH_HEAD, "llama3.1-8b,h100-80gb,1,4,N/A,128,90,12",
     r"line 2: isl must be an integer >= 1, got 'N/A'"),
    (STEP_HEAD, "llama3.1-8b,h100-80gb,1,512,0,0,NULL", r"line 2: step_ms must be a number > 0"),
    (STEP_HEAD, "llama3.1-8b,h100-80gb,1,abc,0,0,10",
     r"line 2: prefill_tokens must be an integer >= 0, got 'abc'"),
    (STEP_HEAD, "llama3.1-8b,h100-80gb,1,-512,0,0,10",
     r"line 2: prefill_tokens must be an integer >= 0, got -512"),
    (STEP_HEAD, "llama3.1-8b,h100-80gb,1,512,0,0,-5", r"line 2: step_ms must be a number > 0"),
    (STEP_HEAD, "llama3.1-8b,h100-80gb,1,0,0,0,5",
     r"line 2: a step needs prefill_tokens or decode_seqs > 0"),
    # a misspelled column was left out of the fit without a word (fitted on TPOT alone, or
    # with the default max_num_seqs)
    (BENCH_HEAD.replace("ttft_ms,", "ttft_msec,"), "llama3.1-8b,h100-80gb,1,4,1024,128,90,12",
     r"unknown column 'ttft_msec'; required: model, gpu, tp, concurrency, isl, osl; "
     r"optional: ttft_ms, .*; did you mean 'ttft_ms'\?"),
    (BENCH_HEAD.replace("\n", ",max_num_seq\n"), "llama3.1-8b,h100-80gb,1,4,1024,128,90,12,8",
     r"unknown column 'max_num_seq'; .*did you mean 'max_num_seqs'\?"),
    (STEP_HEAD.replace("\n", ",prefill_seq\n"), "llama3.1-8b,h100-80gb,1,512,0,0,10,1",
     r"unknown column 'prefill_seq'; .*did you mean 'prefill_seqs'\?"),
    # a cell more than the header: pandas took the first column as the index (a traceback)
    (STEP_HEAD, "llama3.1-8b,h100-80gb,1,0,8,8000,9,5", r"line 2: 8 cells, the header has 7"),
    # rows that describe no step or no benchmark (they were fitted on)
    (STEP_HEAD.replace("\n", ",prefill_seqs\n"), "llama3.1-8b,h100-80gb,1,10,0,0,10,20",
     r"line 2: prefill_seqs \(20\) exceeds prefill_tokens \(10\)"),
    (STEP_HEAD, "llama3.1-8b,h100-80gb,1,0,8,4,10",
     r"line 2: decode_ctx \(4\) is below decode_seqs \(8\)"),
    (BENCH_HEAD.replace("\n", ",num_requests\n"), "llama3.1-8b,h100-80gb,1,8,1024,128,90,12,3",
     r"line 2: num_requests \(3\) is below the concurrency \(8\)"),
    (BENCH_HEAD, "llama3.1-8b,h100-80gb,1,100000,1024,128,90,12",
     r"line 2: concurrency must be an integer in 1\.\.65,536, got 100000"),
    (BENCH_HEAD.replace("\n", ",num_requests\n"), "llama3.1-8b,h100-80gb,1,8,1024,128,90,12,1e9",
     r"line 2: num_requests must be an integer in 1\.\.50,000,000"),
    # a model too big for its GPUs: the file and line, not an invented pool's name
    (BENCH_HEAD, "llama3.1-70b,h100-80gb,1,4,1024,128,90,12",
     r"line 2: llama3\.1-70b needs 131\.\d GiB of weights per GPU at tp=1"),
    (STEP_HEAD, "llama3.1-70b,h100-80gb,1,0,8,800,10",
     r"line 2: llama3\.1-70b needs 131\.\d GiB of weights per GPU at tp=1"),
])
def test_bad_measurement_cells_name_file_line_and_column(tmp_path, head, row, pattern):
    """Text, negative or empty measurements stop the fit with one line naming the cell (they
    used to end in a traceback, or were fitted on)."""
    from wrpsim.calibrate import __main__ as cal

    csv = tmp_path / "m.csv"
    csv.write_text(head + row + "\n")
    key = "steps" if head.startswith(STEP_HEAD[:-1]) else "benchmarks"
    with pytest.raises(ConfigError, match=rf"m\.csv: {pattern}"):
        cal.run(cal.parse_args(["engine=x", f"{key}={csv}", f"out_dir={tmp_path / 'out'}"]))


@pytest.mark.parametrize("text, pattern", [
    # pandas' "No columns to parse from file" was all an empty file got
    ("", r"m\.csv: empty file: a header line of column names comes first \(required: model, "
         r"gpu, tp, concurrency, isl, osl\)$"),
    ("\n\n", r"m\.csv: empty file: "),
    # a spreadsheet saved with ';' (or a tab) read as one column named 'model;gpu;...'
    (BENCH_HEAD.replace(",", ";") + "llama3.1-8b;h100-80gb;1;4;1024;128;90;12\n",
     r"m\.csv: the header is one column, 'model;gpu;tp;.*': the file is separated by ';', not "
     r"commas; save it as comma-separated \(required: "),
    (BENCH_HEAD.replace(",", "\t") + "llama3.1-8b\th100-80gb\t1\t4\t1024\t128\t90\t12\n",
     r"separated by '\\t', not commas"),
])
def test_an_empty_or_not_comma_separated_file_says_so(tmp_path, text, pattern):
    """A user walk-through: an empty benchmarks file and a semicolon-separated one each got a
    message that did not say what was wrong with the file."""
    from wrpsim.calibrate import __main__ as cal

    csv = tmp_path / "m.csv"
    csv.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        cal.run(cal.parse_args(["engine=x", f"benchmarks={csv}", f"out_dir={tmp_path / 'o'}"]))


def test_a_relative_csv_path_that_names_no_file_says_where_it_was_looked_for(tmp_path,
                                                                               cli_here):
    """docs' worked example names `benchmarks=docs/examples/...` relative to the checkout:
    run from anywhere else it said only 'names no file'. It now names the folder a relative
    path is read from (cli_here runs from the checkout)."""
    r = cli_here("engine=x", "benchmarks=examples/calibrate_benchmarks.csv",
                 f"out_dir={tmp_path}")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"wrpsim: error: calibrate: benchmarks=examples/calibrate_benchmarks.csv names no file "
        f"(a relative path is read from the current directory, {ROOT})")


def test_rows_are_named_by_their_line_in_the_file_blank_lines_counted(tmp_path):
    """A blank line between rows shifted every later row's line number by one (pandas skips
    it), in errors and in the per-row report alike."""
    from wrpsim.calibrate.fit import step_entries
    from wrpsim.calibrate.measured import read_steps

    csv = tmp_path / "s.csv"
    csv.write_text(STEP_HEAD + "llama3.1-8b,h100-80gb,1,0,8,8000,9\n\n"
                   "llama3.1-8b,h100-80gb,1,0,16,16000,10\n")
    assert [e[0] for e in step_entries(read_steps(csv), "vllm-0.24", {})] == [
        f"{csv}: line 2", f"{csv}: line 4"]
    csv.write_text(STEP_HEAD + "llama3.1-8b,h100-80gb,1,0,8,8000,9\n\n"
                   "llama3.1-8b,h100-80gb,1,0,16,16000,abc\n")
    with pytest.raises(ConfigError, match=r"s\.csv: line 4: step_ms must be a number > 0"):
        read_steps(csv)


@pytest.mark.parametrize("args, pattern", [
    (["benchmarks=[a.csv,b.csv]"], r"calibrate: benchmarks must be the path of one CSV file"),
    (["steps=s.csv", "fit=[]"], r"calibrate: fit must name at least one constant"),
    (["base=nope", f"benchmarks={ROOT / 'docs/examples/calibrate_benchmarks.csv'}"],
     r"^calibrate: base: unknown value 'nope'; valid choices: "),
    # values Hydra reads as numbers, lists or mappings (TypeErrors before)
    (["steps=s.csv", "fit=3"], r"^calibrate: fit must be a field name or a list of them "
                               r"\(iter_overhead_us, .*\), got 3$"),
    (["base={}", f"benchmarks={ROOT / 'docs/examples/calibrate_benchmarks.csv'}"],
     r"^calibrate: base: unknown value \{\}; valid choices: "),
    # a number, true or a list of numbers as kernels= (with gpu=) was a TypeError traceback;
    # kernels=0 or [] was taken as none given (tests/test_fuzz_verbs.py)
    (["gpu=h100-80gb", "kernels=5"], r"^calibrate: kernels must be a folder \(AIConfigurator's "
                                     r"systems/data/<gpu>, or an LLMServingSim profile\) or a "
                                     r"list of LLMServingSim profile folders, got 5$"),
    (["gpu=h100-80gb", "kernels=[1,2]"], r"^calibrate: kernels must be a folder .*got \[1, 2\]$"),
    (["gpu=h100-80gb", "kernels=true"], r"^calibrate: kernels must be a folder .*got True$"),
    (["gpu=h100-80gb", "kernels={a: 1}"],
     r"^calibrate: kernels must be a folder .*got \{'a': 1\}$"),
    (["steps=s.csv", "kernels=0"], r"^calibrate: kernels must be a folder .*got 0$"),
    (["steps=s.csv", "kernels=[]"], r"^calibrate: kernels must be a folder .*got \[\]$"),
    # 0, [] or {} was taken as null (the default folder next to the checkout)
    (["validation=mlenergy", "mlenergy_dir=0"], r"^mlenergy_dir must be a folder path, got 0; "),
    # a folder nothing reads was silently ignored
    (["validation=silicon", "mlenergy_dir=/tmp"],
     r"^calibrate: mlenergy_dir is read by validation=mlenergy only$"),
    (["steps=s.csv", "mlenergy_dir=/tmp"],
     r"^calibrate: mlenergy_dir is read by validation=mlenergy only$"),
])
def test_bad_calibrate_arguments(tmp_path, args, pattern):
    from wrpsim.calibrate import __main__ as cal

    with pytest.raises(ConfigError, match=pattern):
        cal.run(cal.parse_args(["engine=x", *args, f"out_dir={tmp_path / 'out'}"]))


def test_a_misspelt_base_is_refused_and_an_unused_one_said_when_the_engine_exists(tmp_path):
    """Refitting an engine that exists starts from its own tables: a misspelt `base` was
    ignored there silently; now it is refused, and a valid base other than the default that
    goes unused is said (the default is what a user who gave none has)."""
    from wrpsim.calibrate import __main__ as cal

    bench = f"benchmarks={ROOT / 'docs/examples/calibrate_benchmarks.csv'}"
    with pytest.raises(ConfigError,
                       match=r"^calibrate: base: unknown value 'bogus'; valid choices: "):
        cal.run(cal.parse_args(["engine=vllm-0.19", "base=bogus", bench, "write=false",
                                f"out_dir={tmp_path / 'out'}"]))
    with pytest.warns(WrpsimWarning, match=r"calibrate: base=vllm-0\.11 is not used: engine "
                                           r"vllm-0\.19 exists \(in the catalog\) and is "
                                           r"refitted from its own tables and constants"):
        cal._engine_yaml(tmp_path, "vllm-0.19", "vllm-0.11")


MISTRAL_ROW = "mistral-7b-v0.3,h100-80gb,1,4,{isl},{osl},{ttft},{tpot}\n"


def test_benchmark_rows_beyond_the_context_are_left_out_and_none_left_is_an_error(tmp_path):
    """A row no request of which the model can hold (isl 40,000 on a 32,768 context) used to
    be dropped silently, and a file of such rows 'fitted' with n: 0 and exit status 0."""
    bad = MISTRAL_ROW.format(isl=40000, osl=10, ttft=10, tpot=10)
    csv = tmp_path / "b.csv"
    csv.write_text(BENCH_HEAD + bad)
    r = _cli("engine=x", f"benchmarks={csv}", f"out_dir={tmp_path / 'out'}")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"wrpsim: warning: {csv}: line 2: row left out of the fit: isl + osl (40,010 tokens) "
        f"exceeds mistral-7b-v0.3's context of 32,768 tokens, so every request would be "
        f"dropped",
        f"wrpsim: error: {csv}: no usable row left to fit (each was left out: see the "
        f"warnings)"]
    assert not (tmp_path / "out").exists()
    # in a mixed file the row is left out, named, and the others fitted; a constant the rows do
    # not see (the per-sequence CPU time, hidden behind the GPU under async scheduling at these
    # batches) keeps the engine's value
    csv.write_text(BENCH_HEAD + bad + MISTRAL_ROW.format(isl=400, osl=100, ttft=30, tpot=8)
                   + MISTRAL_ROW.format(isl=1000, osl=100, ttft=50, tpot=9))
    r = _cli("engine=x", f"benchmarks={csv}", f"out_dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0].startswith(f"wrpsim: warning: {csv}: line 2: row left out")
    # a folder not named engines is no catalog's: said, not left to an 'unknown engine' later
    assert (f"wrpsim: warning: calibrate: out_dir {tmp_path / 'out'} is not a folder named "
            f"'engines', so no catalog finds 'x'") in r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "catalog" not in out
    assert out["error_pct"]["before"]["n"] == 4
    assert "seq_overhead_us" in out["error_pct"]["not_constrained"]
    assert "seq_overhead_us" not in out["fitted"]
    engine = (tmp_path / "out" / "x.yaml").read_text()
    from wrpsim.pool.engines import get_engine

    shipped = get_engine("vllm-0.24").constants.seq_overhead_us
    assert f"seq_overhead_us: {shipped}" in engine and "async_scheduling: true" in engine
    rows = pd.read_csv(out["rows_csv"])
    assert list(rows.columns) == ["row", "metric", "before_pct", "after_pct", "note"]
    assert list(rows["row"]) == [f"{csv}: line {i}" for i in (2, 3, 3, 4, 4)]
    assert list(rows["metric"].fillna("")) == ["", "ttft_ms", "tpot_ms", "ttft_ms", "tpot_ms"]
    assert rows["note"][0].startswith("left out: isl + osl (40,010 tokens) exceeds")
    assert rows["before_pct"][1:].notna().all() and pd.isna(rows["before_pct"][0])
    # the JSON's median is that of the fitted rows' absolute errors
    assert out["error_pct"]["after"]["median_pct"] == pytest.approx(
        np.median(np.abs(rows["after_pct"].dropna())), abs=0.1)


def test_a_fit_far_off_or_at_a_bound_is_warned_about(tmp_path):
    """Measurements 4-8x slower than any constant can explain: the median error stays > 50 %
    and the constants end at the top of their ranges. (At 200 x it is a unit mistake: below.)"""
    csv = tmp_path / "b.csv"
    csv.write_text(BENCH_HEAD + MISTRAL_ROW.format(isl=400, osl=100, ttft=400, tpot=60))
    _unqueued_engine(tmp_path / "engines")
    r = _cli("engine=x", f"benchmarks={csv}", f"out_dir={tmp_path / 'engines'}",
             "fit=[layer_overhead_us]")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["fitted"] == {"layer_overhead_us": pytest.approx(200.0, rel=1e-4)}
    assert out["error_pct"]["on_bound"] == ["layer_overhead_us"]
    rows_csv = out["rows_csv"]
    assert r.stderr.splitlines() == [
        f"wrpsim: warning: calibrate: median error after the fit is "
        f"{out['error_pct']['after']['median_pct']} % (> 50 %): the constants cannot explain "
        f"these measurements; per-row errors in {rows_csv}",
        f"wrpsim: warning: calibrate: layer_overhead_us sits on a bound of its range [0, 200]: "
        f"the data push it beyond; per-row errors in {rows_csv}"]


@pytest.mark.parametrize("head, row, message", [
    (BENCH_HEAD, "qwen3-8x,h100-80gb,1,4,100,10,10,10",
     "model: unknown value 'qwen3-8x'; valid choices: "),
    (BENCH_HEAD, "qwen3-8b,h100-8gb,1,4,100,10,10,10", "gpu: unknown value 'h100-8gb'"),
    (BENCH_HEAD, "qwen3-8b,h100-80gb,3,4,100,10,10,10",
     "tp must be an integer >= 1 that divides the attention heads of qwen3-8b (32) and splits "
     "or replicates its 8 KV heads evenly; valid: 1, 2, 4, 8 (16, 32 only as a group across "
     "servers, with its collectives on a fabric: network.collectives=true); got 3"),
    (STEP_HEAD, "qwen3-8x,h100-80gb,1,0,1,100,10",
     "model: unknown value 'qwen3-8x'; valid choices: "),
    (STEP_HEAD, "qwen3-8b,h100-80gb,3,0,1,100,10", "tp must be an integer >= 1 that divides"),
    # the rule of wrpsim.perf: no sequence beyond the model's context ...
    (STEP_HEAD, "mistral-7b-v0.3,h100-80gb,1,0,1,10000000,10",
     "decode_ctx / decode_seqs (10,000,000 / 1 tokens a sequence) exceeds mistral-7b-v0.3's "
     "context of 32,768 tokens"),
    (STEP_HEAD, "mistral-7b-v0.3,h100-80gb,1,40000,0,0,10",
     "prefill_tokens / prefill_seqs (40,000 / 1 tokens a sequence) exceeds mistral-7b-v0.3's "
     "context of 32,768 tokens"),
    # ... and no more KV than the GPU holds beside the weights: (80 GiB - 7.25 B x 2 B) /
    # 128 KiB a token
    (STEP_HEAD, "mistral-7b-v0.3,h100-80gb,1,0,256,8388608,10",
     "decode_ctx + prefill_tokens (8,388,608 KV tokens) exceeds the KV cache mistral-7b-v0.3 "
     "can have on tp=1 x h100-80gb ("),
])
def test_a_bad_row_names_file_line_and_column_not_a_pool_path(tmp_path, head, row, message,
                                                              cli_here):
    csv = tmp_path / "m.csv"
    csv.write_text(head + row + "\n")
    key = "steps" if head.startswith(STEP_HEAD[:-1]) else "benchmarks"
    r = cli_here("engine=x", f"{key}={csv}", f"out_dir={tmp_path / 'out'}")
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"wrpsim: error: {csv}: line 2: {message}"), line
    assert "pool.pools" not in line


def test_a_gpu_calibrated_from_gemm_and_attention_tables_borrows_the_rest(tmp_path):
    """A folder with GEMM and attention tables only (no collectives, no MoE) gave an engine
    that failed at TP 2 ('no all-reduce table'); the GPU now keeps its own measured tables of
    those operators from the engine (copied in, `carried_from`, named in the label): the L40S's
    PCIe all-reduce, not another GPU's. A GPU without tables of its own (the A10G) takes them
    from a reference GPU (labelled uncalibrated: roofline): the engine's for it (the L40S)."""
    cat = tmp_path / "catalog"
    r = _cli("engine=kv", f"out_dir={cat / 'engines'}", "gpu=l40s-48gb",
             f"kernels={_aic_dir(tmp_path)}")
    assert r.returncode == 0, r.stderr
    entry = yaml.safe_load((cat / "engines" / "kv.yaml").read_text())["gpus"]["l40s-48gb"]
    assert entry == {"tables": "kv/l40s-48gb"}
    said = json.loads(r.stdout.strip().splitlines()[-1])  # (the JSON line says so too)
    assert said["gpu_entry"] == entry and {"allreduce", "nccl", "moe"} <= set(
        said["carried_over"])
    meta = json.loads((cat / "engines" / "kv" / "l40s-48gb" / "meta.json").read_text())
    assert meta["tables"]["allreduce"]["carried_from"] == "vllm-0.24/l40s-48gb"
    assert "carried_from" not in meta["tables"]["gemm"]
    out = {}
    for engine in ("kv", "vllm-0.24"):
        p = subprocess.run([sys.executable, "-m", "wrpsim.perf", f"engine={engine}",
                            "model=llama3.1-8b", "gpu=l40s-48gb", "tp=2", "prompt_tokens=2048",
                            "breakdown=true"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, env={**os.environ, "WRPSIM_CATALOG": str(cat)})
        assert p.returncode == 0, p.stderr
        out[engine] = json.loads(p.stdout)
    assert "kept from vllm-0.24/l40s-48gb" in out["kv"]["calibration"]
    assert "uncalibrated" not in out["kv"]["calibration"]
    assert out["kv"]["prefill_breakdown_s"]["all_reduce"] == pytest.approx(
        out["vllm-0.24"]["prefill_breakdown_s"]["all_reduce"], rel=1e-12)
    r = _cli("engine=kv", f"out_dir={cat / 'engines'}", "gpu=a10g-24gb",
             f"kernels={_aic_dir(tmp_path / 'a10g', slower=989 / 125)}")
    assert r.returncode == 0, r.stderr
    entry = yaml.safe_load((cat / "engines" / "kv.yaml").read_text())["gpus"]["a10g-24gb"]
    assert entry == {"tables": "kv/a10g-24gb", "roofline": "l40s-48gb"}
    said = json.loads(r.stdout.strip().splitlines()[-1])
    assert said["gpu_entry"] == entry and "carried_over" not in said


def test_a_fit_records_what_it_was_fitted_on_in_the_engine_file(tmp_path):
    """The engine file said only 'calibrated with python -m wrpsim.calibrate (base …)': no data
    file, no error; its comments survive the note."""
    steps = made_up_engine_steps(tmp_path / "steps.csv", ((0, 1), (0, 16), (0, 128)))
    out = tmp_path / "cat" / "engines"
    r = _cli("engine=fitted", f"steps={steps}", "fit=[layer_overhead_us]", f"out_dir={out}")
    assert r.returncode == 0, r.stderr
    desc = yaml.safe_load((out / "fitted.yaml").read_text())["description"]
    assert desc.startswith("fitted: calibrated with python -m wrpsim.calibrate (base vllm-0.24); "
                           f"constants fitted on steps={steps}: 3 measurements, median error ")
    # a refit replaces the note instead of piling notes up
    r = _cli("engine=fitted", f"steps={steps}", "fit=[layer_overhead_us]", f"out_dir={out}")
    assert r.returncode == 0, r.stderr
    desc2 = yaml.safe_load((out / "fitted.yaml").read_text())["description"]
    assert desc2.count("constants fitted on") == 1


def test_measurements_in_the_wrong_unit_write_no_engine(tmp_path):
    """Step times in seconds where milliseconds are documented: a 70,000 % error after the fit,
    and the engine was written all the same (with its constant at 0)."""
    from wrpsim.pool.engines import build_latency_model

    t = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    rows = [{"model": "llama3.1-8b", "gpu": "h100-80gb", "tp": 1, "prefill_tokens": 0,
             "decode_seqs": b, "decode_ctx": b * 700,
             "step_ms": t.iteration_s(0, 0.0, b, b * 700)} for b in (1, 16, 128)]
    steps = tmp_path / "seconds.csv"
    pd.DataFrame(rows).to_csv(steps, index=False)
    out = tmp_path / "eng"
    r = _cli("engine=secs", f"steps={steps}", f"out_dir={out}")
    assert r.returncode == 2
    assert r.stderr.startswith("wrpsim: error: calibrate: after the fit the simulated times are "
                               "still ") and " x slower than measured (median)" in r.stderr
    assert "not seconds or microseconds)? Nothing written" in r.stderr
    assert not (out / "secs.yaml").exists()
    # microseconds written as ms: the simulated times 1,000 x faster (the guard looked one way
    # only, and this was written with every constant at the top of its range)
    pd.DataFrame(rows).assign(step_ms=lambda d: d["step_ms"] * 1e6).to_csv(steps, index=False)
    r = _cli("engine=us", f"steps={steps}", f"out_dir={out}")
    assert r.returncode == 2 and " x faster than measured (median)" in r.stderr
    assert not (out / "us.yaml").exists()


def test_one_row_in_other_units_is_named_and_a_refit_keeps_a_fit_no_better(tmp_path):
    """One row of steps in seconds among milliseconds was fitted on without a word; it is named
    now. A second run into the same out_dir refits the first run's engine: it moved the
    constants again, to a worse median, and wrote them; now a fit lowering neither error
    figure is kept out (`kept`), and the engine file is the first run's, byte for byte."""
    from wrpsim.pool.engines import build_latency_model

    t = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    rows = [{"model": "llama3.1-8b", "gpu": "h100-80gb", "tp": 1, "prefill_tokens": 0,
             "decode_seqs": b, "decode_ctx": b * 700,
             "step_ms": 1.2e3 * t.iteration_s(0, 0.0, b, b * 700)} for b in (1, 4, 16, 64, 128)]
    rows[2]["step_ms"] /= 1e3
    steps = tmp_path / "s.csv"
    pd.DataFrame(rows).to_csv(steps, index=False)
    out = tmp_path / "engines"
    r = _cli("engine=mine", f"steps={steps}", f"out_dir={out}", "fit=[layer_overhead_us]")
    assert r.returncode == 0, r.stderr
    assert f"{steps}: line 4: step_ms simulated " in r.stderr and "a unit slip" in r.stderr
    first = (out / "mine.yaml").read_bytes()
    assert json.loads(r.stdout.strip().splitlines()[-1])["fitted"]
    r = _cli("engine=mine", f"steps={steps}", f"out_dir={out}", "fit=[layer_overhead_us]")
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout.strip().splitlines()[-1])
    assert said["fitted"] == {} and said["error_pct"]["kept"] == ["layer_overhead_us"]
    assert said["error_pct"]["after"] == said["error_pct"]["before"]
    assert "are kept, nothing written" in r.stderr
    assert (out / "mine.yaml").read_bytes() == first


def test_a_fit_of_constants_the_data_cannot_see_says_so(tmp_path):
    """Front-end constants asked for on steps (which have no front end): nothing fitted, and
    a warning says why instead of a silent empty fit."""
    from wrpsim.pool.engines import build_latency_model

    t = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    steps = tmp_path / "s.csv"
    pd.DataFrame([{"model": "llama3.1-8b", "gpu": "h100-80gb", "tp": 1, "prefill_tokens": 0,
                   "decode_seqs": 8, "decode_ctx": 5600,
                   "step_ms": 1.1e3 * t.iteration_s(0, 0.0, 8, 5600)}]).to_csv(steps, index=False)
    r = _cli("engine=fe", f"steps={steps}", f"out_dir={tmp_path / 'engines'}",
             "fit=[frontend_us,frontend_us_per_token]")
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout.strip().splitlines()[-1])
    assert said["fitted"] == {}
    assert said["error_pct"]["not_constrained"] == ["frontend_us", "frontend_us_per_token"]
    assert ("none of fit=[frontend_us,frontend_us_per_token] moves any simulated time of these "
            "measurements, so nothing is fitted") in r.stderr


def test_a_cpu_time_hidden_at_its_start_is_fitted_where_the_rows_see_it(tmp_path):
    """Rows measured CPU-bound (TPOT well above the GPU's step at 64 and 128 clients) see
    `seq_overhead_us` only once it exceeds the GPU's step: at the engine's 59 µs, and a
    finite-difference step from it, nothing moves. The fit used to stop there (34 % median
    error, reported as fitted); it now scans the constant's range and fits from the best
    point (the TPOTs within a few %; these made-up TTFTs stay 10-20 % off)."""
    csv = tmp_path / "b.csv"
    csv.write_text(BENCH_HEAD + "llama3.1-8b,h100-80gb,1,128,128,64,200,30\n"
                   "llama3.1-8b,h100-80gb,1,64,128,64,120,15.5\n")
    _unqueued_engine(tmp_path / "out")
    r = _cli("engine=x", f"benchmarks={csv}", "fit=[seq_overhead_us]",
             f"out_dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["error_pct"]["before"]["median_pct"] > 30
    assert 150 < out["fitted"]["seq_overhead_us"] < 350
    assert out["error_pct"]["after"]["median_pct"] < 15
    rows = pd.read_csv(out["rows_csv"])
    assert (rows[rows.metric == "tpot_ms"]["after_pct"].abs() < 5).all()
    assert out["error_pct"]["not_constrained"] == []


@pytest.mark.parametrize("start", [30.0, 59.203, 70.0])
def test_a_constant_the_steps_only_cap_from_above_is_not_reported_fitted(start):
    """GPU-bound decode steps see `seq_overhead_us` only above about 81 µs (where the CPU's
    time would exceed the GPU's at 256 sequences): any smaller value fits them as well, so it
    is not constrained — from any start below that — and keeps the engine's value."""
    from wrpsim.calibrate.fit import fit_constants
    from wrpsim.pool.engines import build_latency_model

    lat = build_latency_model("llama3.1-8b", "h100-80gb", 1, "vllm-0.24")
    steps = pd.DataFrame([{"model": "llama3.1-8b", "gpu": "h100-80gb", "tp": 1,
                           "prefill_tokens": 0, "decode_seqs": b, "decode_ctx": b * 1000,
                           "step_ms": lat.gpu_s(0, 0.0, b, b * 1000) * 1e3}
                          for b in (256, 128, 64, 32)])
    fitted, report = fit_constants("vllm-0.24", steps=steps, fields=["seq_overhead_us"],
                                   start={"seq_overhead_us": start})
    assert fitted == {} and report["not_constrained"] == ["seq_overhead_us"]
    assert report["after"]["median_pct"] == 0.0


def test_a_fit_keeps_only_the_latency_models_of_its_current_point():
    """Every point of a fit builds its models anew (other constants), so those of earlier
    points are forgotten, not kept by the hundred: an ML.ENERGY fit grew to 24 GiB and was
    killed."""
    from wrpsim.calibrate.fit import fit_constants
    from wrpsim.pool.engines import _cached, build_latency_model

    steps = pd.DataFrame([{"model": m, "gpu": "h100-80gb", "tp": 1, "prefill_tokens": 0,
                           "decode_seqs": 64, "decode_ctx": 64_000, "step_ms": ms}
                          for m, ms in (("llama3.1-8b", 9.0), ("qwen3-8b", 9.5))])
    build_latency_model("llama3.1-8b", "h100-80gb", 1, "vllm-0.24")
    _, report = fit_constants("vllm-0.24", steps=steps, fields=["layer_overhead_us"])
    assert report["evaluations"] > 3
    assert _cached.cache_info().currsize <= 2  # the last point's two models


def test_a_queued_front_end_at_its_ceiling_is_named(tmp_path):
    """`frontend_us_serial` is the part of `frontend_us` queued in the API server: bursts of
    hundreds of tiny requests measured far slower than any split of the shipped 13.7 ms can
    make them push it to all of `frontend_us`, which the report lists in `on_bound` and a
    warning explains (fit `frontend_us` too)."""
    csv = tmp_path / "bursts.csv"
    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms,num_requests\n"
                   "qwen3-8b,h100-80gb,1,500,128,4,9000,500\n"
                   "qwen3-8b,h100-80gb,1,300,128,4,5500,300\n"
                   "qwen3-8b,h100-80gb,1,1,128,64,25,20\n")
    r = _cli("engine=x", f"benchmarks={csv}", "fit=[frontend_us_serial]",
             f"out_dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    top = out["fitted"]["frontend_us_serial"]
    from wrpsim.pool.engines import get_engine

    assert top == pytest.approx(get_engine("vllm-0.24").constants.frontend_us)
    assert out["error_pct"]["on_bound"] == ["frontend_us_serial"]
    assert (f"calibrate: frontend_us_serial sits at all of frontend_us ({top:g} us): the data "
            f"want more of it queued (fit frontend_us too: fit=[frontend_us,frontend_us_serial])"
            ) in r.stderr
    r = _cli("engine=x", f"benchmarks={csv}", "fit=[frontend_us,frontend_us_serial]",
             f"out_dir={tmp_path / 'out2'}")  # already fitting both: no such advice
    assert r.returncode == 0, r.stderr
    assert "fit frontend_us too" not in r.stderr


def test_the_reference_gpu_for_missing_operators_shares_the_link_kind():
    """Operators a new table folder lacks come from the engine's `roofline:` for the GPU, else
    its default where that is on the same kind of link (NVLink cards: the H100), else the
    nearest GPU in memory bandwidth with complete tables on that kind of link (PCIe cards: the
    L40S or RTX PRO 6000, whose collectives are PCIe ones), never a GPU timed partly by
    another."""
    from wrpsim.calibrate.__main__ import _reference
    from wrpsim.pool.engines import get_engine

    raw = yaml.safe_load(get_engine("vllm-0.24").path.read_text())
    got = {g: _reference(raw, g) for g in ("h200-141gb", "b200-180gb", "a100-80gb",
                                           "l40s-48gb", "a10g-24gb", "rtx4090-24gb",
                                           "b300-288gb")}
    assert got == {"h200-141gb": "h100-80gb", "b200-180gb": "h100-80gb",
                   "a100-80gb": "h100-80gb", "l40s-48gb": "rtxpro6000-96gb",
                   "a10g-24gb": "l40s-48gb", "rtx4090-24gb": "l40s-48gb",
                   "b300-288gb": "b200-180gb"}
    assert _reference(raw, "h100-80gb") == "h200-141gb"  # (itself excluded: the nearest)


def test_a_front_end_fitted_below_its_queued_part_takes_the_part_down_with_it(tmp_path):
    """`frontend_us_serial` is the queued part of `frontend_us`: rows whose TTFTs fit a front
    end shorter than the engine's queued part (vllm-0.24: 7.2 ms) lower that part to it, as
    the fit simulated (the 2 ms front end the row was simulated with is found), say so, and
    write an engine that loads."""
    from wrpsim.pool.engines import get_engine

    assert get_engine("vllm-0.24").constants.frontend_us_serial > 5000
    csv = tmp_path / "b.csv"  # one client, simulated with a 2 ms front end, all of it queued
    csv.write_text(BENCH_HEAD + "mistral-7b-v0.3,h100-80gb,1,1,400,100,14.999,6.6737\n")
    out_dir = tmp_path / "engines"
    r = _cli("engine=x", f"benchmarks={csv}", "fit=[frontend_us]", f"out_dir={out_dir}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    fe = out["fitted"]["frontend_us"]
    assert fe == pytest.approx(2000, rel=0.01) and "frontend_us_serial" not in out["fitted"]
    assert out["error_pct"]["lowered"] == {"frontend_us_serial": fe}
    assert ("calibrate: frontend_us_serial, the queued part of frontend_us, is lowered to the "
            "fitted frontend_us") in r.stderr
    written = yaml.safe_load((out_dir / "x.yaml").read_text())["constants"]
    assert written["frontend_us_serial"] == written["frontend_us"] == fe
    env = {"WRPSIM_CATALOG": str(tmp_path)}
    perf = [sys.executable, "-m", "wrpsim.perf", "model=mistral-7b-v0.3", "gpu=h100-80gb", "tp=1"]
    r = subprocess.run([*perf, "engine=x"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    # asked to fit both, one client's rows do not constrain the queued part (nothing queues):
    # it keeps the engine's value only up to the fitted front end, which it is part of
    r = _cli("engine=y", f"benchmarks={csv}", "fit=[frontend_us,frontend_us_serial]",
             f"out_dir={out_dir}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["error_pct"]["not_constrained"] == ["frontend_us_serial"]
    assert out["error_pct"]["lowered"] == {"frontend_us_serial": out["fitted"]["frontend_us"]}
    r = subprocess.run([*perf, "engine=y"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr


def test_an_empty_required_cell_or_a_repeated_column_is_named(tmp_path):
    """An empty required cell is named as empty (pandas reads it as NaN: it was 'nan'), a
    column the header names twice as such (pandas renames the second 'ttft_ms.1')."""
    from wrpsim.calibrate.measured import benchmark_cases
    from wrpsim.errors import ConfigError

    csv = tmp_path / "b.csv"
    csv.write_text(BENCH_HEAD + "qwen3-8b,,1,4,100,10,30,8\n")
    with pytest.raises(ConfigError, match=r"b\.csv: line 2: gpu is empty \(a required "
                                          r"column\)$"):
        benchmark_cases(csv)
    csv.write_text(BENCH_HEAD + "\nqwen3-8b,h100-80gb,,4,100,10,30,8\n")
    with pytest.raises(ConfigError, match=r"b\.csv: line 3: tp is empty"):
        benchmark_cases(csv)
    csv.write_text(BENCH_HEAD.strip() + ",ttft_ms\nqwen3-8b,h100-80gb,1,4,100,10,30,8,30\n")
    with pytest.raises(ConfigError, match=r"b\.csv: column 'ttft_ms' appears twice in the "
                                          r"header$"):
        benchmark_cases(csv)


def test_a_rate_row_is_vllm_bench_at_that_rate(tmp_path):
    """A row with request_rate is `vllm bench serve --request-rate`: Poisson arrivals at that
    rate, concurrency its --max-concurrency (blank: none), 1,000 requests and `vllm serve`'s
    batch limits for the GPU unless the row says; inf is a closed loop (an error says so)."""
    from wrpsim.calibrate.measured import benchmark_cases
    from wrpsim.errors import ConfigError
    from wrpsim.workload.build import build_trace

    csv = tmp_path / "b.csv"
    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms,request_rate,range_ratio\n"
                   "llama3.1-8b,h100-80gb,1,,700,200,40,12,\n"
                   "llama3.1-8b,a100-80gb,1,32,700,200,40,12,0.5\n"
                   "llama3.1-8b,h100-80gb,1,8,700,200,40,,\n")
    h100, a100, loop = benchmark_cases(csv)
    src = h100.workload["source"]
    assert src["kind"] == "synthetic" and src["arrivals"] == {"process": "poisson", "rate": 12}
    assert src["num_requests"] == 1000 and src["max_concurrency"] is None
    assert src["lengths"]["prompt"] == {"dist": "constant", "value": 700}
    assert h100.pool["scheduler"]["max_seqs"] == 1024
    assert h100.pool["scheduler"]["token_budget"] == 8192
    assert a100.workload["source"]["max_concurrency"] == 32
    assert a100.workload["source"]["lengths"]["output"] == {"dist": "uniform", "low": 100,
                                                           "high": 200}
    assert (a100.pool["scheduler"]["max_seqs"], a100.pool["scheduler"]["token_budget"]) == (
        256, 2048)
    assert loop.workload["source"]["kind"] == "closed_loop"
    trace = build_trace(h100.workload, 0)
    assert len(trace) == 1000 and set(trace["prompt_tokens"]) == {700}
    for bad in ("0", "-inf", "fast"):
        csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms,request_rate\n"
                       f"llama3.1-8b,h100-80gb,1,,700,200,40,{bad}\n")
        with pytest.raises(ConfigError, match=r"b\.csv: line 2: request_rate must be a number "
                                              r"> 0 \(requests per second\) or inf \(every "
                                              r"request at once: a closed loop"):
            benchmark_cases(csv)
    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms\nllama3.1-8b,h100-80gb,1,,7,2,4\n")
    with pytest.raises(ConfigError, match=r"line 2: concurrency is empty"):
        benchmark_cases(csv)


def test_the_queued_front_ends_bound_warning_names_the_end_it_hit():
    """A queued part fitted just inside 0 (the least-squares stops inside a bound) is at the
    bottom, not 'all of frontend_us'; at the top, the advice to fit frontend_us too is given
    only when it is not fitted already."""
    from wrpsim.calibrate.__main__ import _warn_fit
    from wrpsim.errors import WrpsimWarning

    report = {"after": {"median_pct": 5}, "on_bound": ["frontend_us_serial"],
              "serial_end": "bottom"}
    with pytest.warns(WrpsimWarning, match=r"frontend_us_serial sits at 0: the data want less"):
        _warn_fit(report, "x.csv", {"frontend_us_serial": 0.004, "frontend_us": 13000.0},
                  ["frontend_us", "frontend_us_serial"])
    report["serial_end"] = "top"
    with pytest.warns(WrpsimWarning, match=r"sits at all of frontend_us \(13000 us\): the data "
                                           r"want more of it queued; per-row"):
        _warn_fit(report, "x.csv", {"frontend_us_serial": 13000.0, "frontend_us": 13000.0},
                  ["frontend_us", "frontend_us_serial"])
    with pytest.warns(WrpsimWarning, match=r"queued \(fit frontend_us too"):
        _warn_fit(report, "x.csv", {"frontend_us_serial": 13000.0}, ["frontend_us_serial"])


def test_vllm_bench_serves_own_column_names_are_read(tmp_path):
    """A table with vllm bench serve's names (its arguments and --save-result fields) reads as
    the columns they name; its other statistics are refused with the ones compared; a name
    given twice (wrpsim's and vLLM's) is refused."""
    from wrpsim.calibrate.measured import benchmark_cases
    from wrpsim.errors import ConfigError

    csv = tmp_path / "b.csv"
    csv.write_text("model,gpu,tensor_parallel_size,max_concurrency,num_prompts,random_input_len,"
                   "random_output_len,mean_ttft_ms,mean_tpot_ms,median_itl_ms,request_rate\n"
                   "llama3.1-8b,h100-80gb,1,,500,512,128,38.9,2.39,2.1,16\n"
                   "llama3.1-8b,h100-80gb,2,8,80,512,128,30,2.0,,\n")
    rate, loop = benchmark_cases(csv)
    assert rate.workload["source"]["num_requests"] == 500
    assert rate.workload["source"]["lengths"]["prompt"] == {"dist": "constant", "value": 512}
    assert rate.measured == pytest.approx({"ttft_mean_s": 0.0389, "tpot_mean_s": 0.00239,
                                           "itl_p50_s": 0.0021})
    assert loop.pool["tp"] == 2 and loop.workload["source"]["concurrency"] == 8
    for col, message in (("median_ttft_ms", r"column 'median_ttft_ms': wrpsim compares the mean "
                                            r"TTFT and TPOT and the median ITL: give ttft_ms "
                                            r"\(vllm bench serve's mean_ttft_ms\) too"),
                         ("concurrency", r"columns 'concurrency' and 'max_concurrency' \(vllm "
                                         r"bench serve's name for it\) both given")):
        csv.write_text(f"model,gpu,tp,max_concurrency,isl,osl,tpot_ms,{col}\n"
                       "llama3.1-8b,h100-80gb,1,4,512,128,30,4\n")
        with pytest.raises(ConfigError, match=message):
            benchmark_cases(csv)


def test_a_vllm_bench_results_table_pastes_whole(tmp_path):
    """vllm bench serve's --save-result fields, flattened into a table, with the server's GPU,
    TP and the lengths it was asked for beside them: its labels, totals, throughputs and other
    statistics are read past (each was refused, one at a time), its Hugging Face model_id names
    the catalog model, and --request-rate inf (what it records for a burst) is a closed loop of
    max_concurrency clients, or of every request without one. Without gpu / tp / isl / osl,
    the error says the results do not record them."""
    from wrpsim.calibrate.measured import benchmark_cases
    from wrpsim.errors import ConfigError

    head = ("date,endpoint_type,label,model_id,tokenizer_id,num_prompts,request_rate,burstiness,"
            "max_concurrency,duration,completed,failed,total_input_tokens,total_output_tokens,"
            "request_throughput,request_goodput,output_throughput,total_token_throughput,"
            "max_output_tokens_per_s,max_concurrent_requests,mean_ttft_ms,median_ttft_ms,"
            "std_ttft_ms,p99_ttft_ms,mean_tpot_ms,median_tpot_ms,std_tpot_ms,p99_tpot_ms,"
            "mean_itl_ms,median_itl_ms,std_itl_ms,p99.9_itl_ms,mean_e2el_ms,median_e2el_ms,"
            "std_e2el_ms,p99_e2el_ms")
    run = ("20261207-101010,openai,openai,meta-llama/Llama-3.1-8B-Instruct,"
           "meta-llama/Llama-3.1-8B-Instruct,{n},inf,1.0,{c},60.1,200,0,204800,25600,3.3,,426,"
           "3833,500,16,45.2,44.0,5.0,60.0,9.1,9.0,0.5,10.2,9.0,8.8,2.0,15.0,1200,1190,50,1300")
    csv = tmp_path / "b.csv"
    csv.write_text(f"{head},gpu,tp,isl,osl\n" + run.format(n=200, c=16) + ",h100-80gb,1,1024,128\n"
                   + run.format(n=100, c="") + ",h100-80gb,1,1024,128\n")
    capped, burst = benchmark_cases(csv)
    assert capped.model == "llama3.1-8b" and capped.pool["model"] == "llama3.1-8b"
    assert capped.workload["source"]["kind"] == "closed_loop"
    assert (capped.workload["source"]["concurrency"], capped.workload["source"]["num_requests"]
            ) == (16, 200)
    assert (burst.workload["source"]["concurrency"], burst.workload["source"]["num_requests"]
            ) == (100, 100)
    assert capped.measured == pytest.approx({"ttft_mean_s": 0.0452, "tpot_mean_s": 0.0091,
                                             "itl_p50_s": 0.0088})
    csv.write_text(f"{head}\n" + run.format(n=200, c=16) + "\n")
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['gpu', 'tp', 'isl', 'osl'\]; "
                                          r".*; vllm bench serve's results do not record the "
                                          r"server's GPU and tensor parallelism or the lengths"):
        benchmark_cases(csv)


def test_a_benchmark_row_gives_its_servers_kernels(tmp_path):
    """Servers of one engine version ran different kernels (a 2025 vLLM did not fuse the
    all-reduce with the RMSNorm; a script turned FlashInfer's experts off): a row says so in
    `allreduce_fusion` / `moe_triton`, and its replay runs them; blank: the engine's."""
    from wrpsim.calibrate.measured import benchmark_cases
    from wrpsim.errors import ConfigError
    from wrpsim.validate.replay import case_config

    csv = tmp_path / "b.csv"
    csv.write_text("model,gpu,tp,concurrency,isl,osl,tpot_ms,allreduce_fusion,moe_triton\n"
                   "llama3.1-70b,h100-80gb,4,8,1024,128,12,false,\n"
                   "qwen3-235b-a22b,b200-180gb,4,8,1024,128,20,,true\n"
                   "llama3.1-70b,h100-80gb,4,8,1024,128,12,,\n")
    a, b, c = benchmark_cases(csv)
    assert a.pool["latency"] == {"kind": "engine", "allreduce_fusion": False}
    assert b.pool["latency"] == {"kind": "engine", "moe_triton": True}
    assert "latency" not in c.pool
    # kept under the constants a fit tries
    lat = case_config(b, None, {"layer_overhead_us": 3.0})["pool"]["pools"]
    assert next(iter(lat.values()))["latency"] == {
        "kind": "engine", "moe_triton": True, "layer_overhead_us": 3.0}
    csv.write_text("model,gpu,tp,concurrency,isl,osl,tpot_ms,moe_triton\n"
                   "qwen3-235b-a22b,b200-180gb,4,8,1024,128,20,maybe\n")
    with pytest.raises(ConfigError) as e:
        benchmark_cases(csv)
    assert str(e.value) == (f"{csv}: line 2: moe_triton must be true or false (blank: the "
                            f"engine's setting), got 'maybe'")
    # a kernel the GPU's tables lack: read (the engine the fit runs under may be the one the
    # same call compacts), then refused by its replay, naming the row
    from wrpsim.calibrate.fit import case_entries

    csv.write_text("model,gpu,tp,concurrency,isl,osl,tpot_ms,moe_triton\n"
                   "qwen3-30b-a3b,a100-80gb,1,8,1024,128,20,true\n")
    cases = benchmark_cases(csv)
    with pytest.raises(ConfigError) as e:
        case_entries(cases, "vllm-0.24", {})
    assert str(e.value).startswith(
        f"{csv}: line 2: latency.moe_triton: true asks for vLLM's Triton fused-MoE kernel, but "
        f"engine vllm-0.24's tables of a100-80gb do not time it")
    assert "\n" not in str(e.value)


def test_an_out_dir_read_as_true_names_no_folder_true(tmp_path, monkeypatch):
    """`out_dir=true` made a folder named 'True' (calibrate took str() of any value)."""
    from wrpsim.calibrate import __main__ as cal

    monkeypatch.chdir(tmp_path)
    bench = f"benchmarks={ROOT / 'docs/examples/calibrate_benchmarks.csv'}"
    with pytest.raises(ConfigError, match=r"^out_dir must be a folder path, got True; "):
        cal.run(cal.parse_args(["engine=x", bench, "out_dir=true"]))
    assert list(tmp_path.iterdir()) == []


def test_an_engine_refitted_into_another_folder_still_finds_the_shipped_tables(tmp_path,
                                                                               monkeypatch):
    """A calibration names the shipped tables it builds on from the shipped engines folder
    (`tables: vllm-0.24/h100-80gb`). Refitting it from the catalog it lives in into another
    out_dir read that entry as relative to its own folder and wrote
    `../../a/engines/vllm-0.24/h100-80gb`, which holds nothing: the refit, and every run of the
    new engine, stopped with 'no folder' (found while fuzzing the verbs)."""
    from wrpsim.calibrate import __main__ as cal
    from wrpsim.pool import engines as E

    monkeypatch.setattr(E, "_EXTRA_DIRS", [])  # (out_dir's engines are found in this process)
    E.clear_caches()
    steps = tmp_path / "steps.csv"
    steps.write_text(STEP_HEAD + "llama3.1-8b,h100-80gb,1,0,8,5600,9\n"
                     "llama3.1-8b,h100-80gb,1,512,0,0,30\n")
    try:
        for where in ("a", "b"):  # (a's engine is in the catalog when b's refit starts)
            cal.run(cal.parse_args(["engine=mine", f"steps={steps}", "fit=[layer_overhead_us]",
                                    f"out_dir={tmp_path / where / 'engines'}"]))
        text = (tmp_path / "b" / "engines" / "mine.yaml").read_text()
        assert "tables: vllm-0.24/h100-80gb" in text and "../" not in text
    finally:
        E.clear_caches()


def test_rows_whose_kernels_are_estimated_are_named_once_per_kind(tmp_path):
    """Rows on a GPU without kernel tables (MI300X: "uncalibrated: roofline") or in a precision
    its tables lack (FP8 GEMMs on an A100) were fitted without a word, the constants (CPU and
    launch floors) absorbing the estimate's error; each kind is now named once with its first
    line and the count of the others, as `wrpsim.perf` labels them. Measured rows are not."""
    csv = tmp_path / "b.csv"
    csv.write_text("model,gpu,tp,concurrency,isl,osl,ttft_ms,tpot_ms,precision\n"
                   "llama3.1-8b,mi300x-192gb,1,1,1024,128,30,7.6,bf16\n"
                   "llama3.1-8b,mi300x-192gb,1,4,1024,128,40,8.6,bf16\n"
                   "llama3.1-8b,a100-80gb,1,4,1024,128,40,8.6,fp8\n"
                   "llama3.1-8b,h100-80gb,1,4,1024,128,40,8.6,fp8\n")
    r = _cli("engine=x", f"benchmarks={csv}", "fit=[layer_overhead_us]", "write=false",
             f"out_dir={tmp_path / 'out' / 'engines'}")
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "estimated, not measured" in ln]
    assert said == [
        f"wrpsim: warning: {csv}: line 2 (and 1 more row(s) alike): mi300x-192gb bf16 kernels "
        f"are estimated, not measured, under engine x (uncalibrated: roofline (efficiencies of "
        f"kernels: vllm 0.24.0 (NVIDIA H100 80GB HBM3))): fitted on them, the constants (CPU "
        f"and launch floors) absorb the estimate's error; time the kernels first "
        f"(kernels=DIR gpu=mi300x-192gb)",
        f"wrpsim: warning: {csv}: line 4: a100-80gb fp8 kernels are estimated, not measured, "
        f"under engine x (fp8 GEMMs: uncalibrated, the bf16 table by the roofline ratio): "
        f"fitted on them, the constants (CPU and launch floors) absorb the estimate's error; "
        f"time the kernels first (kernels=DIR gpu=a100-80gb)"], r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # (both paths absolute, as `file` was already: rows_csv was given as out_dir was)
    assert Path(out["rows_csv"]).is_absolute() and Path(out["file"]).is_absolute()


def test_a_constant_the_rows_do_not_pin_is_reported_with_its_spread(tmp_path):
    """The report gives each fitted constant's `spread` (the least and greatest of 0, 0.5 x,
    1 x, 2 x the fit that fit the rows as well): the per-layer floor, which every decode step
    sees, is pinned; three closed loops of one server push the front end to the end of its
    range (their first tokens come late behind the loop's queue), which a warning names
    instead; a constant the rows leave free in its range gets a warning naming its spread."""
    from wrpsim.calibrate.__main__ import _warn_fit
    from wrpsim.calibrate.fit import fit_constants
    from wrpsim.calibrate.measured import benchmark_cases
    from wrpsim.errors import WrpsimWarning

    csv = tmp_path / "b.csv"
    rows = (ROOT / "docs/examples/calibrate_benchmarks.csv").read_text().splitlines()[:4]
    csv.write_text("\n".join(rows) + "\n")
    fitted, report = fit_constants("vllm-0.24", benchmark_cases(csv), None,
                                   ["layer_overhead_us", "frontend_us"])
    assert report["spread"]["layer_overhead_us"] == [fitted["layer_overhead_us"]] * 2
    assert report["on_bound"] == ["frontend_us"] and fitted["frontend_us"] < 1.0
    with pytest.warns(WrpsimWarning, match=r"frontend_us sits on a bound of its range"):
        _warn_fit(report, "x.fit.csv", fitted, ["layer_overhead_us", "frontend_us"])
    free = {**report, "on_bound": [], "spread": {**report["spread"],
                                                 "frontend_us": [0.0, 9819.6]}}
    with pytest.warns(WrpsimWarning, match=r"frontend_us is not pinned by these rows: any "
                                           r"value from 0 to 9819.6 fits them as well as "
                                           r"the fitted 4909.8 \(error_pct\.spread"):
        _warn_fit(free, "x.fit.csv", {**fitted, "frontend_us": 4909.8},
                  ["layer_overhead_us", "frontend_us"])


def test_a_kept_fit_of_a_new_engine_does_not_say_nothing_was_written(tmp_path):
    """A first calibration of a new engine whose fit beat nothing warned "they are kept,
    nothing written" while it had written the engine file (the JSON line's `file`, a copy of
    `base`; a user walk-through with docs/examples/calibrate_benchmarks.csv): it now says the
    new file holds the base engine's constants unchanged."""
    out = tmp_path / "engines"
    r = _cli("engine=fresh", f"benchmarks={ROOT / 'docs/examples/calibrate_benchmarks.csv'}",
             "fit=[layer_overhead_us]", f"out_dir={out}")
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout.strip().splitlines()[-1])
    assert said["fitted"] == {} and said["error_pct"]["kept"] == ["layer_overhead_us"]
    assert Path(said["file"]).is_file()
    assert "nothing written" not in r.stderr
    assert "the new engine file holds vllm-0.24's constants unchanged" in r.stderr, r.stderr


@pytest.mark.slow
def test_the_documented_worked_example_gives_the_documented_figures(tmp_path):
    """docs/validation.md's worked example, run as written (from the checkout, into a folder
    of one's own), gives the JSON it shows and the two warnings it names — the front end on a
    bound, its queued part lowered — and no 'not pinned' one: README's comment on the same
    command said calibrate warns "any value from 0 to the fitted one fits them as well",
    which it no longer does (a user walk-through; 15 s on 2 cores)."""
    out = tmp_path / "mycat" / "engines"
    r = _cli("engine=my-vllm", "benchmarks=docs/examples/calibrate_benchmarks.csv",
             "fit=[layer_overhead_us,frontend_us]", f"out_dir={out}")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["catalog"] == str(tmp_path / "mycat")
    assert got["fitted"] == {"layer_overhead_us": 14.436, "frontend_us": 1.035}
    err = got["error_pct"]
    assert (err["before"]["median_pct"], err["after"]["median_pct"]) == (11.6, 4.7)
    assert err["on_bound"] == ["frontend_us"] and err["lowered"] == {"frontend_us_serial": 1.035}
    assert "frontend_us sits on a bound of its range" in r.stderr
    assert "frontend_us_serial, the queued part of frontend_us, is lowered" in r.stderr
    assert "not pinned" not in r.stderr
    doc = (ROOT / "docs" / "validation.md").read_text()
    assert '"fitted": {"layer_overhead_us": 14.436, "frontend_us": 1.035}' in doc
    readme = (ROOT / "README.md").read_text()
    assert ("the front end is pushed to the end of its range (about 1 us; calibrate warns: it "
            "sits\n# on a bound") in readme


def test_a_fit_redraws_one_progress_line_on_a_terminal_and_nothing_elsewhere(tmp_path,
                                                                            monkeypatch):
    """A fit on a validation set's runs took minutes with nothing on the screen (a
    walkthrough stopped one at 100 s, thinking it hung): on a terminal one line is redrawn
    after every point simulated and cleared at the end; piped, stderr is as before."""
    import io

    from wrpsim.calibrate.fit import Progress, fit_constants
    from wrpsim.calibrate.measured import read_steps

    class Tty(io.StringIO):
        def isatty(self):
            return True

    steps = read_steps(made_up_engine_steps(tmp_path / "steps.csv"))
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    _, report = fit_constants("vllm-0.24", [], steps, ["layer_overhead_us"])
    text = tty.getvalue()
    points = text.count("\rwrpsim.calibrate: fit point ")
    assert points >= report["evaluations"] > 0, text
    assert "(5 measured runs or steps replayed each)" in text and text.endswith("\r\033[K")
    # cleared before each point, so a replay's warning starts on a line of its own
    assert text.count("\r\033[K") == points
    piped = Progress(5, stream=io.StringIO())
    piped.point()
    piped.clear()
    assert piped.stream.getvalue() == ""


def test_a_measured_run_whose_model_context_exceeds_the_kv_is_replayed_without_a_warning(
        tmp_path):
    """A benchmark row on a GPU whose KV holds fewer tokens than the model's context: the
    measured server started, so its own context fitted; the replay said it would not, with
    advice no benchmarks file can follow (set pool.pools.<gpu>.max_context), once per point
    the fit tried (26 times: a walkthrough found it)."""
    csv = tmp_path / "b.csv"
    csv.write_text("model,gpu,tp,precision,kv_dtype,concurrency,isl,osl,ttft_ms,tpot_ms\n"
                   "llama3.1-8b,l4-24gb,1,bf16,auto,4,512,64,200,70\n")
    r = _cli("engine=x", f"benchmarks={csv}", "fit=[layer_overhead_us]",
             f"out_dir={tmp_path / 'o'}")
    assert r.returncode == 0, r.stderr
    assert "replay of measured case" not in r.stderr and "max_context" not in r.stderr, r.stderr


def test_a_fit_on_a_silicon_sample_of_ones_own(tmp_path):
    """`validation=silicon silicon_csv=FILE`: the fit split of another copy of the silicon
    sample (here three H100 rows of the shipped one and an SGLang twin of one, which is not
    replayed) is what the constants are fitted on."""
    import pandas as pd

    from wrpsim.validate.sets import measured_dir

    rows = pd.read_csv(measured_dir() / "silicon_vllm.csv")
    rows = rows[rows["model_path"].str.contains("Llama-3.1-70B") & (rows["system"] == "h100_sxm")
                & (rows["batch_size"] == 4)].head(3)
    path = tmp_path / "mine.csv"
    pd.concat([rows, rows.head(1).assign(backend="sglang")]).to_csv(path, index=False)
    r = _cli("engine=x", "validation=silicon", f"silicon_csv={path}",
             "fit=[layer_overhead_us]", "write=false", f"out_dir={tmp_path / 'o'}")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["error_pct"]["before"]["n"] == 6  # (three rows, TTFT and TPOT each)
